//! Scenario `walkin_desk`: the walk-in video desk (docs/walkin.md) through the pages, in real
//! Chromium with fake devices.
//!
//! Two citizens queue at office A's desk on `/sportello/<A>` (form, privacy acknowledgement, the
//! camera/microphone and network check) and read their place in the live region; Anna (official of
//! A) sees both on `/staff`, presses «Prossimo»: her room opens in a new tab, citizen 1's page goes
//! into the room by itself, both decode each other's camera and hear each other's microphone, and
//! citizen 2 is now first. Anna hands citizen 1 to Bruno (official of office B) with a note: the
//! citizen's room says they are being transferred; Bruno accepts on his desk, his room tab opens,
//! he and the citizen decode each other — the citizen's page never left the room (same document,
//! no queue). Bruno finishes (confirmed), the ticket is `done` and the room page forgets it.
//! axe-core (WCAG 2.1 A/AA) finds nothing on the desk page's form, check and waiting views, nor on
//! `/staff` with the queue and with a transfer.
//!
//! The server's clock is 10:00 (Europe/Rome) of the next working day: the offices are open
//! 08:00–18:00 on weekdays, A's video desk too, and the officials have no pattern of their own, so
//! both are on duty.

use std::time::Duration;

use fantoccini::wd::WindowHandle;
use serde_json::Value;
use sportello_store::{NewUser, StaffRole};
use sportello_tests::axe::violations;
use sportello_tests::browser::{Browser, Result, err, poll_until};
use sportello_tests::server::{Clock, TestServer};

use super::Ctx;

const STEP: Duration = Duration::from_secs(30);
const PASSWORD: &str = "una-password-lunga";
const ANNA: &str = "anna.rossi@comune.example";
const BRUNO: &str = "bruno.bianchi@comune.example";
const WEEKDAYS: &str = r#"[["08:00-18:00"],["08:00-18:00"],["08:00-18:00"],["08:00-18:00"],["08:00-18:00"],[],[]]"#;
const NOTE: &str = "Chiede della TARI: è una pratica dei Tributi";
/// The live region's words for the first place and the others (web/citizen/strings.js).
const FIRST: &str = "Sei il primo in coda: un operatore ti chiamerà a breve.";
const SECOND: &str = "Sei il numero 2 in coda.";

struct Seeded {
    office_a: String,
    bruno: String,
}

/// Anna in office A (with a video desk), Bruno in office B; both with a password.
async fn seed(server: &TestServer) -> Result<Seeded> {
    let store = &server.server.store;
    let now = server.server.tokens.clock().now();
    let e = |e: sportello_store::StoreError| err(format!("seeding the store: {e}"));
    let hash = sportello_backoffice::secrets::hash_password_blocking(PASSWORD).map_err(|e| err(e.to_string()))?;
    let mut ids = Vec::new();
    for (email, name) in [(ANNA, "Anna Rossi"), (BRUNO, "Bruno Bianchi")] {
        let user = store
            .create_user(&NewUser { email: email.into(), display_name: name.into(), role: StaffRole::Official }, now)
            .await
            .map_err(e)?;
        store.set_password(&user.id, &hash, now - 1).await.map_err(e)?;
        ids.push(user.id);
    }
    let a = server.seed_office("Ufficio Anagrafe", &["08:00-18:00"], &ids[..1]).await.map_err(e)?;
    server.seed_office("Ufficio Tributi", &["08:00-18:00"], &ids[1..]).await.map_err(e)?;
    store.set_desk_hours(&a.id, WEEKDAYS).await.map_err(e)?;
    Ok(Seeded { office_a: a.id, bruno: ids[1].clone() })
}

/// Zero axe-core violations (WCAG 2.0/2.1 A and AA, any impact) on the page as it is now.
async fn axe_clean(b: &Browser, what: &str) -> Result<()> {
    let found = violations(b).await?;
    if found.is_empty() {
        return Ok(());
    }
    let list: Vec<String> =
        found.iter().map(|v| format!("{} ({}): {} at {}", v.id, v.impact, v.help, v.targets.join(", "))).collect();
    Err(err(format!("axe on {what}: {}", list.join("; "))))
}

/// A citizen on the desk page: the form, the check, the queue. Returns the stored ticket `(id, secret)`.
async fn queue_up(b: &Browser, name: &str, axe: bool) -> Result<(String, String)> {
    b.wait_for("document.querySelector('#walkin-form') && document.querySelector('#privacy-ack')", STEP).await?;
    if axe {
        axe_clean(b, "/sportello/<office>, the form").await?;
    }
    b.fill("#walkin-name", name).await?;
    b.click("#privacy-ack").await?;
    b.click("#walkin-next").await?;
    // The check: the camera's preview is on and the network check says UDP gets through.
    b.wait_for(
        "!document.querySelector('#check').hidden && document.querySelector('#preview-off').hidden \
         && document.querySelector('#netcheck-result').dataset.verdict === 'ok'",
        STEP,
    )
    .await?;
    if axe {
        axe_clean(b, "/sportello/<office>, the device and network check").await?;
    }
    b.click("#queue-join").await?;
    b.wait_for("!document.querySelector('#queue').hidden && localStorage.getItem('sportello.walkin')", STEP).await?;
    let stored: Value = b.eval("JSON.parse(localStorage.getItem('sportello.walkin'))").await?;
    match (stored["id"].as_str(), stored["secret"].as_str()) {
        (Some(id), Some(secret)) => Ok((id.to_owned(), secret.to_owned())),
        _ => Err(err(format!("[{}] the stored ticket is {stored}", b.label()))),
    }
}

/// Waits until the live region says exactly `words` as the citizen's place.
async fn place_is(b: &Browser, words: &str) -> Result<()> {
    let cond = format!(
        "document.querySelector('#queue-live[aria-live=\"polite\"] #queue-position')?.textContent === {}",
        serde_json::to_string(words)?
    );
    b.wait_for(&cond, STEP).await.map_err(|e| err(format!("{e}; wanted the place {words:?}")))
}

async fn login(b: &Browser, email: &str) -> Result<()> {
    b.fill("#login-email", email).await?;
    b.fill("#login-password", PASSWORD).await?;
    b.click("#login-submit").await?;
    b.wait_for("!document.querySelector('#desk').hidden", STEP).await
}

/// Clicks `css` on the desk (which opens a room in a new tab from the click), switches to the new
/// tab and enters the room. Returns the desk's window, to come back to.
async fn open_room_from(b: &Browser, css: &str) -> Result<WindowHandle> {
    let desk = b.client().window().await.map_err(|e| err(format!("[{}] window: {e}", b.label())))?;
    let before = b.client().windows().await.map_err(|e| err(format!("[{}] windows: {e}", b.label())))?;
    b.click(css).await?;
    let tab = poll_until(&format!("[{}] a room tab opened by `{css}`", b.label()), STEP, || async {
        let now = b.client().windows().await.map_err(|e| err(format!("windows: {e}")))?;
        Ok(now.into_iter().find(|w| !before.contains(w)))
    })
    .await?;
    b.client().switch_to_window(tab).await.map_err(|e| err(format!("[{}] switch to the room: {e}", b.label())))?;
    b.wait_for("location.pathname === '/join' && new URLSearchParams(location.search).has('t')", STEP).await?;
    super::join(b).await?;
    Ok(desk)
}

async fn back_to(b: &Browser, window: WindowHandle) -> Result<()> {
    b.client().switch_to_window(window).await.map_err(|e| err(format!("[{}] back to the desk: {e}", b.label())))
}

/// `a` and `b` (participant ids `a_id`, `b_id`) decode each other's camera and receive each
/// other's microphone.
async fn both_ways(a: &Browser, a_id: &str, b: &Browser, b_id: &str) -> Result<()> {
    let sees = |id: &str| super::media_condition(&[&format!("{id}/camera")], &[&format!("{id}/microphone")]);
    let (a_sees_b, b_sees_a) = (sees(b_id), sees(a_id));
    tokio::try_join!(a.wait_for(&a_sees_b, super::MEDIA_TIMEOUT), b.wait_for(&b_sees_a, super::MEDIA_TIMEOUT))?;
    Ok(())
}

pub async fn walkin_desk(ctx: &mut Ctx) -> Result<()> {
    let clock = Clock::offset(super::office::offset_to_next_working_morning()? + 65 * 60);
    let server = TestServer::start_at(clock, |c| c.reconnect_grace = Duration::from_secs(15)).await;
    let seeded = seed(&server).await?;
    let base = server.url();
    let desk_page = format!("{base}/sportello/{}", seeded.office_a);

    // --- two citizens queue at office A's desk, and read their places.
    let c1 = ctx.open("citizen1", &desk_page).await?;
    let (w1, secret1) = queue_up(&ctx.browsers[c1], "Mario Verdi", true).await?;
    place_is(&ctx.browsers[c1], FIRST).await?;
    let c2 = ctx.open("citizen2", &desk_page).await?;
    let (w2, _) = queue_up(&ctx.browsers[c2], "Giulia Neri", false).await?;
    place_is(&ctx.browsers[c2], SECOND).await?;
    axe_clean(&ctx.browsers[c2], "/sportello/<office>, waiting second in the queue").await?;
    place_is(&ctx.browsers[c1], FIRST).await?;
    println!("  two citizens queued through the page: «{FIRST}» and «{SECOND}»");

    // --- Anna sees both in her office's queue, in order.
    let anna = ctx.open("anna", &format!("{base}/staff")).await?;
    let a = &ctx.browsers[anna];
    login(a, ANNA).await?;
    let queue =
        format!("#desk-offices .desk-office[data-office=\"{}\"] .desk-waiting-row[data-walkin]", seeded.office_a);
    a.wait_for(&format!("document.querySelectorAll('{queue}').length === 2"), STEP).await?;
    let rows: Vec<Vec<String>> = a
        .eval(&format!(
            "[...document.querySelectorAll('{queue}')].map(r => [r.dataset.walkin, r.querySelector('.desk-who').textContent])"
        ))
        .await?;
    let in_order = rows.len() == 2
        && rows[0][0] == w1
        && rows[0][1].contains("Mario Verdi")
        && rows[1][0] == w2
        && rows[1][1].contains("Giulia Neri");
    if !in_order {
        return Err(err(format!("Anna's queue reads {rows:?}, expected Mario Verdi ({w1}) then Giulia Neri ({w2})")));
    }
    axe_clean(a, "/staff with two citizens in the desk's queue").await?;
    println!("  Anna's desk lists Mario Verdi then Giulia Neri");

    // --- «Prossimo»: Anna's room opens in a new tab; citizen 1's page goes into the room by itself.
    let anna_desk = open_room_from(a, &format!(".desk-next[data-office=\"{}\"]", seeded.office_a)).await?;
    let c = &ctx.browsers[c1];
    c.wait_for("location.pathname === '/join' && new URLSearchParams(location.search).has('t')", STEP).await?;
    super::join(c).await?;
    // A mark in the room's document: if the page ever navigated (back to a queue, a reload), it goes.
    c.exec("window.__e2eSameRoomPage = true;").await?;
    let citizen_id: String = c.eval("window.sportello.participantId").await?;
    let anna_id: String = a.eval("window.sportello.participantId").await?;
    if citizen_id != format!("walkin-{w1}") {
        return Err(err(format!("citizen 1 is {citizen_id:?} in the room, not walkin-{w1}")));
    }
    both_ways(a, &anna_id, c, &citizen_id).await?;
    println!("  «Prossimo» opened Anna's room; citizen 1 went in by itself; camera and microphone both ways");
    place_is(&ctx.browsers[c2], FIRST).await?;
    println!("  citizen 2 is now first");

    // --- Anna hands citizen 1 to Bruno with a note; the citizen's room says so.
    back_to(a, anna_desk).await?;
    let mine = format!("#desk-mine .desk-mine-row[data-walkin=\"{w1}\"]");
    a.click(&format!("{mine} .desk-handoff")).await?;
    a.wait_for("!document.querySelector('#handoff-form').hidden", STEP).await?;
    let option = format!("#handoff-to option[value=\"{}\"]", seeded.bruno);
    a.wait_for(&format!("document.querySelector('{option}')"), STEP).await?;
    a.click(&option).await?;
    a.wait_for(&format!("document.querySelector('#handoff-to').value === '{}'", seeded.bruno), STEP).await?;
    a.fill("#handoff-note", NOTE).await?;
    a.click("#handoff-send").await?;
    a.wait_for(&format!("document.querySelector('{mine}')?.dataset.state === 'transferring'"), STEP).await?;
    let banner = "document.querySelector('#walkin-banner')?.textContent.includes('Ti stiamo trasferendo a un collega')";
    c.wait_for(banner, STEP).await?;
    println!("  Anna handed citizen 1 to Bruno; the citizen's room says «Ti stiamo trasferendo a un collega»");

    // --- Bruno sees the transfer with the note, accepts: his room opens; he and the citizen meet.
    let bruno = ctx.open("bruno", &format!("{base}/staff")).await?;
    let b = &ctx.browsers[bruno];
    login(b, BRUNO).await?;
    let transfer = format!(".desk-transfer-row[data-walkin=\"{w1}\"]");
    b.wait_for(&format!("document.querySelector('{transfer}')"), STEP).await?;
    let row: String = b.eval(&format!("document.querySelector('{transfer}').innerText")).await?;
    if !row.contains(NOTE) || !row.contains("Mario Verdi") || !row.contains("Anna Rossi") {
        return Err(err(format!("Bruno's transfer row lacks the citizen, Anna or the note: {row:?}")));
    }
    axe_clean(b, "/staff with a transfer").await?;
    let bruno_desk = open_room_from(b, &format!("{transfer} .desk-accept")).await?;
    let bruno_id: String = b.eval("window.sportello.participantId").await?;
    let c = &ctx.browsers[c1];
    both_ways(b, &bruno_id, c, &citizen_id).await?;
    // The same room page all along: never back in a queue, the banner gone once Bruno took them.
    let stayed: Value = c
        .eval(
            "({ mark: window.__e2eSameRoomPage === true, path: location.pathname, state: window.sportello.state, \
               queue: !!document.querySelector('#queue, #queue-position, #walkin-form') })",
        )
        .await?;
    if stayed["mark"] != true || stayed["path"] != "/join" || stayed["state"] != "in-room" || stayed["queue"] != false {
        return Err(err(format!("citizen 1's page left the room during the transfer: {stayed}")));
    }
    c.wait_for("document.querySelector('#walkin-banner')?.textContent === ''", STEP).await?;
    println!("  Bruno accepted: he and citizen 1 decode each other; the citizen's page never left the room");

    // --- Bruno finishes (confirming): the ticket is done, and the room page forgets it.
    back_to(b, bruno_desk).await?;
    b.exec(
        "window.__e2eConfirms = []; window.confirm = (m) => { window.__e2eConfirms.push(String(m)); return true; };",
    )
    .await?;
    b.click(&format!("#desk-mine .desk-mine-row[data-walkin=\"{w1}\"] .desk-finish")).await?;
    b.wait_for("document.querySelectorAll('#desk-mine .desk-mine-row').length === 0", STEP).await?;
    let asked: Vec<String> = b.eval("window.__e2eConfirms").await?;
    if asked.len() != 1 || !asked[0].contains("Mario Verdi") {
        return Err(err(format!("«Termina» asked {asked:?}, expected one confirmation naming Mario Verdi")));
    }
    let ticket: Value = reqwest::Client::new()
        .get(format!("{base}/api/public/walkins/{w1}"))
        .header("X-Walkin-Secret", &secret1)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    if ticket["state"] != "done" {
        return Err(err(format!("after «Termina» the ticket reads {ticket}")));
    }
    c.wait_for("localStorage.getItem('sportello.walkin') === null", STEP).await?;
    println!("  Bruno finished: the ticket is done and citizen 1's room page forgot it");
    Ok(())
}
