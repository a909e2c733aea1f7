//! Scenario `staff_pages` (issue 11, items 3, 6, 7, 14, 15): what an official and an administrator
//! see on the staff pages of a 390 px phone, in real Chromium.
//!
//! A citizen waits (a websocket with a `wait` token) for an appointment of «Cambio di residenza»
//! at the Anagrafe, open 08:30–12:30 and 14:30–16:30. The official logs in on `/staff`: the waiting
//! item names the service, office and time (no `appt-…` id); nothing scrolls sideways and
//! «Entra nella stanza» is on screen; the history of the appointment is in words. «Fai entrare e apri
//! la stanza» opens the room in a new tab and admits the citizen in the same step. On
//! `/staff/calendario`, unticking «Segui l'orario…» shows the office's hours and a warning with the
//! number of bookable times lost; saving asks first, and saves only after «Salva comunque». The
//! administrator creates an office, which the service form lists at once, with «Chiuso» (not sample
//! hours) in the empty days; in «Impostazioni del Comune» a `javascript:` website is refused with a
//! message naming the field, then a PEC and an uploaded crest (SVG, through the file input) show
//! on the home page (issue 17); a new staff member's setup page has no «Primo amministratore» fields.

use std::time::Duration;

use serde_json::{Value, json};
use sportello_backoffice::token::{Claims, Role};
use sportello_store::{NewUser, StaffRole};
use sportello_tests::browser::{Browser, Result, err};
use sportello_tests::server::TestServer;

use super::Ctx;

const STEP: Duration = Duration::from_secs(30);
const PASSWORD: &str = "una-password-lunga";
const OFFICIAL: &str = "giulia.bianchi@comune.example";
const ADMIN: &str = "ada.admin@comune.example";

struct Seeded {
    appointment: String,
}

async fn seed(server: &TestServer) -> Result<Seeded> {
    let store = &server.server.store;
    let now = server.server.tokens.clock().now();
    let e = |e: sportello_store::StoreError| err(format!("seeding the store: {e}"));
    let hash = sportello_backoffice::secrets::hash_password_blocking(PASSWORD).map_err(|e| err(e.to_string()))?;
    let mut ids = Vec::new();
    for (email, name, role) in
        [(OFFICIAL, "Giulia Bianchi", StaffRole::Official), (ADMIN, "Ada Admin", StaffRole::Admin)]
    {
        let user = store
            .create_user(&NewUser { email: email.into(), display_name: name.into(), role }, now)
            .await
            .map_err(e)?;
        store.set_password(&user.id, &hash, now - 1).await.map_err(e)?;
        ids.push(user.id);
    }
    let office = server.seed_office("Anagrafe", &["08:30-12:30", "14:30-16:30"], &ids[..1]).await.map_err(e)?;
    let service = server
        .seed_service("Cambio di residenza", sportello_store::Modes::Both, std::slice::from_ref(&office.id))
        .await
        .map_err(e)?;
    let appointment = server.seed_booking(&office.id, &service.id, &ids[0], "RES123", 300).await.map_err(e)?;
    Ok(Seeded { appointment: appointment.id })
}

/// Nothing on the page scrolls sideways at the phone's width: not the page, not a table's wrapper.
async fn no_sideways_scroll(b: &Browser, page: &str) -> Result<()> {
    let wide: Value = b
        .eval(
            "[document.documentElement.scrollWidth > innerWidth ? `page ${document.documentElement.scrollWidth} > ${innerWidth}` : null,
              ...[...document.querySelectorAll('.table-wrap')].filter(w => w.offsetParent && w.scrollWidth > w.clientWidth)
                 .map(w => `${w.querySelector('table')?.id}: ${w.scrollWidth} > ${w.clientWidth}`)].filter(Boolean)",
        )
        .await?;
    if wide.as_array().is_some_and(|a| !a.is_empty()) {
        return Err(err(format!("{page} scrolls sideways at {} px: {wide}", b.eval::<i64>("innerWidth").await?)));
    }
    Ok(())
}

pub async fn staff_pages(ctx: &mut Ctx) -> Result<()> {
    let server = TestServer::start().await;
    let seeded = seed(&server).await?;
    let base = server.url();
    let room = format!("appt-{}", seeded.appointment);

    // --- a citizen waits in the lobby of the appointment's room.
    let mut citizen = server.connect(&room).await;
    let claims = Claims {
        wait: true,
        appt: Some(seeded.appointment.clone()),
        ..Claims::new(&room, "mario", "Mario Rossi", Role::Participant, Duration::from_secs(3600))
    };
    citizen.send_json(&json!({"v": 1, "type": "join", "token": server.sign(&claims)})).await;
    let first = citizen.recv_json().await;
    if first["type"] != "waiting" {
        return Err(err(format!("the citizen should wait, got {first}")));
    }

    // --- the official's desk on a 390 px phone.
    let i = ctx.open("official", &format!("{base}/staff")).await?;
    let b = &ctx.browsers[i];
    b.client().set_window_size(390, 844).await.map_err(|e| err(format!("window size: {e}")))?;
    let width: i64 = b.eval("innerWidth").await?;
    if width > 400 {
        return Err(err(format!("the window is {width} px wide, not a phone's 390")));
    }
    b.fill("#login-email", OFFICIAL).await?;
    b.fill("#login-password", PASSWORD).await?;
    b.click("#login-submit").await?;
    b.wait_for(
        "document.querySelector('#waiting-list .waiting-item') && document.querySelector('#appointments tbody tr')",
        STEP,
    )
    .await?;
    let item: String = b.eval("document.querySelector('#waiting-list .waiting-item').innerText").await?;
    for words in ["Mario Rossi", "Cambio di residenza", "Anagrafe"] {
        if !item.contains(words) {
            return Err(err(format!("the waiting item lacks {words:?}: {item:?}")));
        }
    }
    if item.contains("appt-") || item.contains(&seeded.appointment) {
        return Err(err(format!("the waiting item shows an internal id: {item:?}")));
    }
    println!("  the desk's waiting item: {:?}", item.replace('\n', " | "));

    no_sideways_scroll(b, "/staff").await?;
    let join_visible: bool = b
        .eval(
            "(r => r.width > 0 && r.left >= 0 && r.right <= innerWidth)(document.querySelector('#appointments .join-room').getBoundingClientRect())",
        )
        .await?;
    if !join_visible {
        return Err(err("«Entra nella stanza» is off-screen on a 390 px phone"));
    }
    // The narrowest phone WCAG 1.4.10 asks for.
    b.client().set_window_size(320, 844).await.map_err(|e| err(format!("window size: {e}")))?;
    b.wait_for("innerWidth <= 330", STEP).await?;
    no_sideways_scroll(b, "/staff").await?;
    b.client().set_window_size(390, 844).await.map_err(|e| err(format!("window size: {e}")))?;
    println!("  /staff does not scroll sideways at {width} or 320 px; «Entra nella stanza» is on screen");

    // --- the appointment's history, in words.
    b.click("#appointments tbody tr .details").await?;
    b.wait_for("document.querySelector('#detail-body .audit-table tbody tr')", STEP).await?;
    let audit: String = b.eval("document.querySelector('#detail-body .audit-table tbody').innerText").await?;
    if !audit.contains("Prenotato per")
        || !audit.contains("Mario Rossi (cittadino)")
        || !audit.contains("con Giulia Bianchi")
    {
        return Err(err(format!("the history is not in words: {audit:?}")));
    }
    let seconds = audit.as_bytes().windows(6).any(|w| w.iter().all(u8::is_ascii_digit));
    if audit.contains("..") || audit.contains("official") || seconds {
        return Err(err(format!("the history shows stored ids or seconds: {audit:?}")));
    }
    println!("  history: {:?}", audit.replace('\n', " | "));

    // --- one action admits the citizen and opens the room for the official.
    let button: String = b.eval("document.querySelector('#waiting-list .admit').textContent").await?;
    if button != "Fai entrare e apri la stanza" {
        return Err(err(format!("the admit button reads {button:?}")));
    }
    let desk = b.client().window().await.map_err(|e| err(format!("window: {e}")))?;
    b.click("#waiting-list .admit").await?;
    citizen.recv_until("welcome").await;
    let mut tabs = Vec::new();
    for _ in 0..100 {
        tabs = b.client().windows().await.map_err(|e| err(format!("windows: {e}")))?;
        if tabs.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if tabs.len() != 2 {
        return Err(err(format!("admitting opened no room tab ({} windows)", tabs.len())));
    }
    b.switch_to_newest_window().await?;
    b.wait_for("location.pathname.startsWith('/a/') || location.pathname.startsWith('/join')", STEP).await?;
    let url: String = b.eval("location.pathname").await?;
    b.client().close_window().await.map_err(|e| err(format!("close tab: {e}")))?;
    b.client().switch_to_window(desk).await.map_err(|e| err(format!("back to the desk: {e}")))?;
    println!("  «Fai entrare e apri la stanza» admitted the citizen and opened {url}");
    citizen.leave().await;

    // --- the working pattern starts from the office's hours; the loss is said before saving.
    b.goto(&format!("{base}/staff/calendario")).await?;
    b.wait_for("!document.querySelector('#cal-view').hidden && document.querySelector('#day-0-hours')", STEP).await?;
    no_sideways_scroll(b, "/staff/calendario").await?;
    if !b.eval::<bool>("document.querySelector('#follow-office').checked").await? {
        return Err(err("a new official does not follow the office's hours"));
    }
    b.click("#follow-office").await?;
    let shown: Value = b
        .eval("[0, 5].map(d => [document.querySelector(`#day-${d}-mode`).value, document.querySelector(`#day-${d}-hours`).value])")
        .await?;
    if shown != json!([["on_site", "08:30-12:30, 14:30-16:30"], ["off", ""]]) {
        return Err(err(format!("unticking shows {shown}, not the office's hours")));
    }
    // The office's own hours cost nothing; marking Wednesday a day off costs its times, and the
    // page says how many before saving.
    b.wait_for("/non cambia/.test(document.querySelector('#pattern-preview').textContent)", STEP).await?;
    b.exec(
        "const m = document.querySelector('#day-2-mode'); m.value = 'off'; \
         m.dispatchEvent(new Event('change', { bubbles: true }));",
    )
    .await?;
    b.wait_for("/perderebbero \\d+ orari/.test(document.querySelector('#pattern-preview').textContent)", STEP).await?;
    let warning: String = b.eval("document.querySelector('#pattern-preview').innerText").await?;
    println!("  unticked: office hours shown, no loss; Wednesday off: {:?}", warning.replace('\n', " | "));
    b.click("#pattern-save").await?;
    b.wait_for("document.querySelector('#pattern-confirm') && document.activeElement.id === 'pattern-preview'", STEP)
        .await?;
    let probe = "fetch('/api/staff/calendar/pattern').then(r => r.json())";
    let before: Value = b.eval_async(probe).await?;
    if before["follows_office_hours"] != true {
        return Err(err(format!("the pattern was saved before the official confirmed: {before}")));
    }
    b.click("#pattern-confirm").await?;
    b.wait_for("document.querySelector('#pattern-preview').hidden", STEP).await?;
    let after: Value = b.eval_async(probe).await?;
    if after["follows_office_hours"] != false
        || after["pattern"]["week"][0]["hours"] != json!(["08:30-12:30", "14:30-16:30"])
        || after["pattern"]["week"][2]["mode"] != "off"
    {
        return Err(err(format!("«Salva comunque» did not save the pattern shown: {after}")));
    }
    println!("  saving asked first, «Salva comunque» saved");

    // --- the administrator: a new office in the service form at once, «Chiuso» for empty days.
    b.eval_async::<Value>(&format!(
        "fetch('/api/auth/logout', {{method: 'POST'}}).then(() => fetch('/api/auth/login', {{method: 'POST', \
         headers: {{'Content-Type': 'application/json'}}, body: JSON.stringify({{email: '{ADMIN}', password: '{PASSWORD}'}})}})) \
         .then(r => r.status)"
    ))
    .await?;
    b.goto(&format!("{base}/staff/admin")).await?;
    b.wait_for(
        "!document.querySelector('#admin-view').hidden && document.querySelector('#service-offices input')",
        STEP,
    )
    .await?;
    no_sideways_scroll(b, "/staff/admin").await?;
    let placeholder: Value =
        b.eval("[0, 5].map(d => document.querySelector(`#office-hours-${d}`).placeholder)").await?;
    if placeholder != json!(["Chiuso", "Chiuso"]) {
        return Err(err(format!("the opening-hours placeholders read {placeholder}")));
    }
    b.fill("#office-name", "Ufficio Tributi").await?;
    b.click("#office-submit").await?;
    b.wait_for("document.querySelector('#offices-table').textContent.includes('Ufficio Tributi')", STEP).await?;
    let listed: bool =
        b.eval("document.querySelector('#service-offices').textContent.includes('Ufficio Tributi')").await?;
    if !listed {
        return Err(err("the new office is missing from the service form until a reload"));
    }
    println!("  the new office is in the service form at once; empty days read «Chiuso»");

    // --- the municipality's identity from the settings form: a bad link is refused with its
    // message and nothing saved; then the PEC and the crest are on every page.
    b.fill("#set-website", "javascript:alert(1)").await?;
    b.click("#settings-submit").await?;
    b.wait_for("!document.querySelector('#settings-error').hidden", STEP).await?;
    let message: String = b.eval("document.querySelector('#settings-error').textContent").await?;
    if !message.contains("sito istituzionale") {
        return Err(err(format!("the refused link is not named: {message:?}")));
    }
    b.eval::<Value>("document.querySelector('#set-website').value = ''").await?;
    b.fill("#set-pec", "protocollo@pec.comune.example").await?;
    b.click("#settings-submit").await?;
    b.wait_for("document.querySelector('#settings-error').hidden", STEP).await?;
    let crest_dir = tempfile::tempdir()?;
    let crest = crest_dir.path().join("stemma.svg");
    std::fs::write(
        &crest,
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 40 48" width="40" height="48"><path d="M2 2h36v24c0 12-18 20-18 20S2 38 2 26z" fill="#0066cc"/></svg>"##,
    )?;
    b.fill("#crest-file", &crest.display().to_string()).await?;
    b.wait_for(
        "!document.querySelector('#crest-preview').hidden && document.querySelector('#crest-preview').naturalWidth > 0",
        STEP,
    )
    .await?;
    b.goto(&format!("{base}/")).await?;
    b.wait_for(
        "[...document.querySelectorAll('img.brand-crest')].some(i => i.complete && i.naturalWidth > 0) \
         && document.querySelector('footer').textContent.includes('protocollo@pec.comune.example')",
        STEP,
    )
    .await?;
    println!("  the settings form refuses a bad link by name; the PEC and the uploaded crest are on the home page");

    // --- a new staff member's setup page: no first-administrator fields.
    let created: Value = b
        .eval_async(
            "fetch('/api/admin/users', {method: 'POST', headers: {'Content-Type': 'application/json'}, \
             body: JSON.stringify({email: 'nuovo@comune.example', display_name: 'Nuovo Collega', role: 'official'})}).then(r => r.json())",
        )
        .await?;
    let setup = created["setup_url"].as_str().ok_or_else(|| err(format!("no setup link: {created}")))?;
    b.goto(setup).await?;
    b.wait_for("document.querySelector('#setup-password')", STEP).await?;
    let text: String = b.eval("document.body.innerText").await?;
    if text.contains("Primo amministratore") || text.contains("primo amministratore") {
        return Err(err(format!("a new staff member's setup page shows the first administrator's fields: {text:?}")));
    }
    b.fill("#setup-password", PASSWORD).await?;
    b.fill("#setup-password2", PASSWORD).await?;
    b.click("#setup-submit").await?;
    b.wait_for("location.pathname === '/staff' && !document.querySelector('#dash-view').hidden", STEP).await?;
    println!("  the setup page of a new staff member asks only for the password");
    server.shutdown().await;
    Ok(())
}
