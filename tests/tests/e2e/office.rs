//! Scenario `office_appointment`: the product's main job, through the pages, in real Chromium.
//!
//! A citizen books a video appointment on `/prenota`, the confirmation email lands in the outbox,
//! the citizen opens the join link from it and waits in the waiting room; the official logs in on
//! `/staff`, sees them waiting, admits them and enters the room; both decode each other's camera;
//! the official shares a PDF and the citizen downloads the very same bytes; a chat message arrives.
//!
//! The server runs on a clock shifted to 08:55 (Europe/Rome) of the next working day, so the office
//! is open and slots exist whenever CI runs.

use std::time::Duration;

use jiff::civil::Weekday;
use serde_json::Value;
use sportello_store::{Modes, NewService, NewUser, StaffRole};
use sportello_tests::browser::{Browser, Result, err, poll_until};
use sportello_tests::server::{Clock, TestServer};

use super::Ctx;

const STEP: Duration = Duration::from_secs(30);
pub(super) const OFFICIAL_EMAIL: &str = "anna.rossi@comune.example";
pub(super) const OFFICIAL_PASSWORD: &str = "una-password-lunga";

/// A tiny but well-formed one-page PDF.
pub(super) const PDF: &[u8] =
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n\
3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n";

/// Seconds from now to 08:55 Europe/Rome of the next working day (no weekend, no national holiday).
/// Not 09:00 itself: that is a slot's start, which the page offers while the clock reads 09:00:00
/// and the server refuses a second later (a slot must start after now), so the first slot a test
/// picks was sometimes gone by the time it confirmed. At 08:55 the first slot is 09:00, five
/// minutes away.
pub fn offset_to_next_working_morning() -> Result<i64> {
    let tz = sportello_domain::europe_rome().map_err(|e| err(e.to_string()))?;
    let now = jiff::Timestamp::now();
    let today = now.to_zoned(tz.clone()).date();
    let holidays =
        sportello_domain::holiday_dates(today.year(), today.year() + 1, None).map_err(|e| err(e.to_string()))?;
    let mut day = today.tomorrow().map_err(|e| err(e.to_string()))?;
    while matches!(day.weekday(), Weekday::Saturday | Weekday::Sunday) || holidays.contains(&day) {
        day = day.tomorrow().map_err(|e| err(e.to_string()))?;
    }
    let morning = day.at(8, 55, 0, 0).to_zoned(tz).map_err(|e| err(e.to_string()))?.timestamp();
    Ok(morning.as_second() - now.as_second())
}

/// The office, its official (with a password) and a video service, straight into the store.
pub async fn seed(server: &TestServer) -> Result<String> {
    let store = &server.server.store;
    let now = server.server.tokens.clock().now();
    let e = |e: sportello_store::StoreError| err(format!("seeding the store: {e}"));
    let official = store
        .create_user(
            &NewUser { email: OFFICIAL_EMAIL.into(), display_name: "Anna Rossi".into(), role: StaffRole::Official },
            now,
        )
        .await
        .map_err(e)?;
    let hash =
        sportello_backoffice::secrets::hash_password_blocking(OFFICIAL_PASSWORD).map_err(|e| err(e.to_string()))?;
    store.set_password(&official.id, &hash, now - 1).await.map_err(e)?;
    let office = server
        .seed_office("Ufficio Anagrafe", &["08:00-18:00"], std::slice::from_ref(&official.id))
        .await
        .map_err(e)?;
    let service = store
        .create_service(
            &NewService {
                name: "Cambio di residenza".into(),
                description: String::new(),
                duration_minutes: 30,
                what_to_bring: "Documento d'identità".into(),
                modes: Modes::Video,
                office_ids: vec![office.id.clone()],
            },
            now,
        )
        .await
        .map_err(e)?;
    // Bookable from now on (the default notice would push the first slot past the join window).
    store.set_setting("booking.min_notice_minutes", "0").await.map_err(e)?;
    Ok(service.id)
}

/// The join link (`…/a/<token>`) from the one email in the outbox addressed to `to`, decoded as a
/// mail client would (quoted-printable or base64 bodies).
pub(super) fn join_link_from_outbox(server: &TestServer, to: &str) -> Result<String> {
    let outbox = server.data_dir().join("outbox");
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&outbox)? {
        let path = entry?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("eml") {
            continue;
        }
        let raw = std::fs::read(&path)?;
        let mail = mailparse::parse_mail(&raw).map_err(|e| err(format!("{}: {e}", path.display())))?;
        let addressed =
            mail.headers.iter().any(|h| h.get_key().eq_ignore_ascii_case("to") && h.get_value().contains(to));
        if !addressed {
            continue;
        }
        let mut texts = vec![];
        collect_text(&mail, &mut texts);
        for text in texts {
            if let Some(start) = text.find("/a/") {
                let begin = text[..start].rfind("http").ok_or_else(|| err("join link without a scheme"))?;
                let end = text[start..]
                    .find(|c: char| c.is_whitespace() || c == '>' || c == ')')
                    .map_or(text.len(), |i| start + i);
                found.push(text[begin..end].to_owned());
            }
        }
    }
    match found.as_slice() {
        [link] => Ok(link.clone()),
        other => Err(err(format!("expected one join link in the outbox for {to}, found {other:?}"))),
    }
}

fn collect_text(part: &mailparse::ParsedMail, out: &mut Vec<String>) {
    if part.subparts.is_empty() {
        if let (true, Ok(body)) = (part.ctype.mimetype == "text/plain", part.get_body()) {
            out.push(body);
        }
    } else {
        for p in &part.subparts {
            collect_text(p, out);
        }
    }
}

pub(super) async fn sha256_hex_in_page(b: &Browser, url_expr: &str) -> Result<String> {
    b.eval_async(&format!(
        "(async () => {{ const r = await fetch({url_expr}.url, {{ headers: {{ Authorization: 'Bearer ' + {url_expr}.token }} }}); \
           if (!r.ok) throw new Error('download ' + r.status); \
           const d = await crypto.subtle.digest('SHA-256', await r.arrayBuffer()); \
           return [...new Uint8Array(d)].map(x => x.toString(16).padStart(2, '0')).join(''); }})()"
    ))
    .await
}

/// The SHA-256 (hex) of what the shared document's own download button hands the browser.
pub(super) async fn saved_by_button(b: &Browser) -> Result<String> {
    b.exec(
        "window.__saved = null; const made = URL.createObjectURL; \
         URL.createObjectURL = (blob) => { blob.arrayBuffer().then(async a => { \
           const d = await crypto.subtle.digest('SHA-256', a); \
           window.__saved = [...new Uint8Array(d)].map(x => x.toString(16).padStart(2, '0')).join(''); }); \
           return made.call(URL, blob); };",
    )
    .await?;
    b.click("#doc-list .doc-download").await?;
    b.wait_for("window.__saved !== null", STEP).await?;
    b.eval("window.__saved").await
}

/// On `/prenota`: the first office, then the first slot of the first month offered.
/// Moves the server's clock to ten minutes before booking `code` (its waiting room opens 15 before).
pub(super) async fn ten_minutes_before(server: &TestServer, clock: &Clock, code: &str) -> Result<()> {
    let appt = server
        .server
        .store
        .appointment_by_code(code)
        .await
        .map_err(|e| err(e.to_string()))?
        .ok_or_else(|| err(format!("booking {code} is not in the store")))?;
    let wait = appt.starts_at - 600 - clock.now();
    if wait > 0 {
        clock.advance(wait);
    }
    Ok(())
}

pub async fn choose_first_slot(b: &Browser) -> Result<()> {
    b.click("[data-office-id] .choose-office").await?;
    b.wait_for(
        "document.querySelector('#month-select') && document.querySelector('#month-select').options.length > 0",
        STEP,
    )
    .await?;
    b.click("#next").await?;
    // The slot picker: a day with free times first, then one of its times.
    b.click("#day-calendar button[data-day]").await?;
    b.click("input[name=slot]").await?;
    Ok(())
}

/// From a service's booking page (open in `b`) to the booking code, as a citizen would: the first
/// free time, the request's details, the requester (`first`, `last`, `email`) with the privacy
/// acknowledgement, the summary, confirm.
pub(super) async fn book_on_pages(
    b: &Browser,
    details: &str,
    (first, last, email): (&str, &str, &str),
) -> Result<String> {
    choose_first_slot(b).await?;
    b.click("#next").await?;
    b.wait_for("document.querySelector('#topic-select')", STEP).await?;
    b.fill("#details", details).await?;
    b.click("#next").await?;
    b.fill("#first-name", first).await?;
    b.fill("#last-name", last).await?;
    b.fill("#email", email).await?;
    b.click("#privacy-ack").await?;
    b.click("#next").await?;
    b.click("#confirm").await?;
    b.wait_for(
        "document.querySelector('#booking-code') && document.querySelector('#booking-code').textContent.trim().length > 0",
        STEP,
    )
    .await?;
    b.eval("document.querySelector('#booking-code').textContent.trim()").await
}

pub async fn office_appointment(ctx: &mut Ctx) -> Result<()> {
    let clock = Clock::offset(offset_to_next_working_morning()?);
    let server = TestServer::start_at(clock.clone(), |c| c.reconnect_grace = Duration::from_secs(15)).await;
    let service_id = seed(&server).await?;
    let base = server.url();
    let pdf_path = server.data_dir().join("modulo-residenza.pdf");
    std::fs::write(&pdf_path, PDF)?;
    let pdf_sha = sportello_tests::sha256_hex(PDF);

    // --- the citizen books through the pages, starting from the service.
    let citizen = ctx.open("citizen", &format!("{base}/prenota?servizio={service_id}")).await?;
    let b = &ctx.browsers[citizen];
    let code = book_on_pages(b, "Trasferimento da altro comune", ("Mario", "Verdi", "mario.verdi@example.org")).await?;
    println!("  the citizen booked through the pages: {code}");

    // --- the email is in the outbox, with the join link.
    let link = poll_until("the confirmation email in the outbox", STEP, || async {
        Ok(join_link_from_outbox(&server, "mario.verdi@example.org").ok())
    })
    .await?;
    if !link.starts_with(&base) {
        return Err(err(format!("the join link {link} does not point at {base}")));
    }
    println!("  the confirmation email is in the outbox with the join link");

    // --- time passes until ten minutes before the appointment (the waiting room opens 15 minutes before).
    ten_minutes_before(&server, &clock, &code).await?;

    // --- the citizen opens the link, checks devices, asks to enter and waits.
    b.goto(&link).await?;
    b.click("#join-btn").await?;
    b.wait_for(
        "window.sportello && window.sportello.waiting === true && !document.querySelector('#waiting-screen').hidden",
        STEP,
    )
    .await?;
    println!("  the citizen waits in the waiting room");

    // --- the official logs in and sees them waiting; admits; enters the room.
    let official = ctx.open("official", &format!("{base}/staff")).await?;
    let o = &ctx.browsers[official];
    o.fill("#login-email", OFFICIAL_EMAIL).await?;
    o.fill("#login-password", OFFICIAL_PASSWORD).await?;
    o.click("#login-submit").await?;
    o.wait_for("document.querySelectorAll('#waiting-list [data-waiting-id]').length === 1", STEP).await?;
    let waiting_text: String = o.eval("document.querySelector('#waiting-list [data-waiting-id]').textContent").await?;
    if !waiting_text.contains("Mario Verdi") {
        return Err(err(format!("the waiting entry reads {waiting_text:?}, without the citizen's name")));
    }
    o.click("#waiting-list [data-waiting-id] .admit").await?;
    let b = &ctx.browsers[citizen];
    b.wait_for("window.sportello.state === 'in-room' && window.sportello.waiting === false", STEP).await?;
    println!("  the official admitted the citizen from the dashboard");
    let o = &ctx.browsers[official];
    o.click("#appointments [data-appointment-id] .join-room").await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let on_join: bool = o.eval("location.pathname === '/join'").await.unwrap_or(false);
    if !on_join {
        o.switch_to_newest_window().await?;
    }
    o.click("#join-btn").await?;
    o.wait_for("window.sportello && window.sportello.state === 'in-room'", STEP).await?;

    // --- both decode each other's camera.
    let citizen_id: String = ctx.browsers[citizen].eval("window.sportello.participantId").await?;
    let official_id: String = ctx.browsers[official].eval("window.sportello.participantId").await?;
    let sees = |who: &str| {
        format!(
            "window.sportello.inboundStats().then(s => s.some(e => e.trackId === '{who}/camera' && e.kind === 'video' && e.framesDecoded > 0))"
        )
    };
    let (b, o) = (&ctx.browsers[citizen], &ctx.browsers[official]);
    let (sees_official, sees_citizen) = (sees(&official_id), sees(&citizen_id));
    tokio::try_join!(b.wait_for(&sees_official, STEP), o.wait_for(&sees_citizen, STEP))?;
    println!("  citizen and official decode each other's camera");

    // --- the official shares a PDF; the citizen gets it and downloads the same bytes.
    o.fill("#doc-input", &pdf_path.display().to_string()).await?;
    b.wait_for("(window.sportello.documents || []).length === 1", STEP).await?;
    let doc: Value = b.eval("window.sportello.documents[0]").await?;
    let got = sha256_hex_in_page(b, "window.sportello.documentDownload(window.sportello.documents[0].id)").await?;
    if got != pdf_sha {
        return Err(err(format!("the citizen downloaded {got}, the official shared {pdf_sha} ({doc})")));
    }
    b.wait_for("document.querySelectorAll('#doc-list [data-document-id]').length === 1", STEP).await?;
    // The document's own button: the blob it hands the browser holds the same bytes.
    let saved = saved_by_button(b).await?;
    if saved != pdf_sha {
        return Err(err(format!("the download button saved {saved}, the official shared {pdf_sha}")));
    }
    println!("  the citizen downloaded exactly the shared PDF ({} bytes), also by its button", PDF.len());

    // --- a chat message from the citizen reaches the official.
    b.fill("#chat-input", "Buongiorno, ho caricato il modulo").await?;
    b.click("#chat-send").await?;
    o.wait_for("(window.sportello.chat || []).some(m => m.text === 'Buongiorno, ho caricato il modulo')", STEP).await?;
    println!("  the chat message arrived");
    Ok(())
}
