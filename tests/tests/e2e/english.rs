//! Scenario `english_pages`: a citizen who switches `/prenota` to English gets English all the way —
//! the page title and the breadcrumb's label, and a message the server wrote (the slot was taken by
//! someone else just before the confirmation: 409 `slot_taken`, sent with `Accept-Language: en`).
//! The choice then holds on the home page's buttons, on `/le-mie-prenotazioni` (its title, and
//! axe-core's WCAG 2.1 AA rules in English) and on the server-rendered `/archivio`, whose own switch
//! (a link) is remembered for the other pages.

use std::time::Duration;

use serde_json::json;
use sportello_tests::axe::violations;
use sportello_tests::browser::{Result, err};
use sportello_tests::server::{Clock, TestServer};

use super::Ctx;
use super::office::{choose_first_slot, offset_to_next_working_morning, seed};

const STEP: Duration = Duration::from_secs(30);

pub async fn english_pages(ctx: &mut Ctx) -> Result<()> {
    let server = TestServer::start_at(Clock::offset(offset_to_next_working_morning()?), |_| {}).await;
    let service_id = seed(&server).await?;
    let base = server.url();

    let i = ctx.open("citizen", &format!("{base}/prenota?servizio={service_id}")).await?;
    let b = &ctx.browsers[i];
    b.wait_for("document.querySelector('[data-office-id] .choose-office')", STEP).await?;
    b.click("#lang-switch").await?;
    b.wait_for("document.documentElement.lang === 'en'", STEP).await?;
    let (title, crumb): (String, String) = b
        .eval("[document.title, document.querySelector('[data-element=breadcrumb]').getAttribute('aria-label')]")
        .await?;
    if (title.as_str(), crumb.as_str()) != ("Book an appointment — Comune", "Breadcrumb") {
        return Err(err(format!("in English the title is {title:?} and the breadcrumb {crumb:?}")));
    }
    println!("  /prenota in English: title and breadcrumb label");

    let office_id: String = b.eval("document.querySelector('[data-office-id]').dataset.officeId").await?;
    choose_first_slot(b).await?;
    let start: String = b.eval("document.querySelector('input[name=slot]:checked').value").await?;
    b.click("#next").await?;
    b.wait_for("document.querySelector('#topic-select')", STEP).await?;
    b.click("#next").await?;
    b.fill("#first-name", "Mary").await?;
    b.fill("#last-name", "Green").await?;
    b.fill("#email", "mary.green@example.org").await?;
    b.click("#privacy-ack").await?;
    b.click("#next").await?;
    b.wait_for("document.querySelector('#confirm')", STEP).await?;

    // Someone else books that very slot first.
    let other = json!({
        "office_id": office_id, "service_id": service_id, "start": start, "mode": "video", "first_name": "Luca",
        "last_name": "Bianchi", "email": "luca.bianchi@example.org", "details": "", "lang": "it", "website": ""
    });
    let response = reqwest::Client::new()
        .post(format!("{base}/api/public/appointments"))
        .json(&other)
        .send()
        .await
        .map_err(|e| err(e.to_string()))?;
    if response.status() != 201 {
        return Err(err(format!("the other booking: {}", response.status())));
    }

    b.click("#confirm").await?;
    b.wait_for(
        "document.querySelector('#form-alert') && document.querySelector('#form-alert').textContent.trim() !== ''",
        STEP,
    )
    .await?;
    let alert: String = b.eval("document.querySelector('#form-alert').textContent.trim()").await?;
    if !alert.starts_with("The chosen time is no") {
        return Err(err(format!("the server's message on the English page reads {alert:?}")));
    }
    println!("  the server's error on the English page is in English: {alert:?}");

    // The choice holds on the home page (its buttons) and on the server-rendered archive.
    b.goto(&format!("{base}/")).await?;
    b.wait_for("document.documentElement.lang === 'en'", STEP).await?;
    let home: Vec<String> =
        b.eval("[document.title, ...[...document.querySelectorAll('.actions a')].map(a => a.textContent)]").await?;
    if home != ["Virtual offices — Comune", "Book an appointment", "Services", "Video desk without an appointment"] {
        return Err(err(format!("the English home page reads {home:?}")));
    }
    b.goto(&format!("{base}/le-mie-prenotazioni")).await?;
    b.wait_for("document.documentElement.lang === 'en' && document.querySelector('#mine-out')", STEP).await?;
    let (title, said): (String, String) =
        b.eval("[document.title, document.querySelector('#mine-out').textContent]").await?;
    if title != "My bookings — Comune" || !said.contains("SPID or CIE") {
        return Err(err(format!("the English «Le mie prenotazioni» reads {title:?}: {said:?}")));
    }
    let found = violations(b).await?;
    if !found.is_empty() {
        return Err(err(format!("axe on /le-mie-prenotazioni in English: {found:?}")));
    }
    b.goto(&format!("{base}/archivio")).await?;
    b.wait_for("document.documentElement.lang === 'en' && document.title === 'Session archive — Comune'", STEP).await?;
    b.click("#lang-switch").await?;
    b.wait_for("document.documentElement.lang === 'it' && document.title === 'Archivio delle sedute — Comune'", STEP)
        .await?;
    let stored: String = b.eval("localStorage.getItem('sportello.lang')").await?;
    if stored != "it" {
        return Err(err(format!("the archive's switch left the stored language at {stored:?}")));
    }
    // Chromium asks for English (Accept-Language), but the stored choice is now Italian.
    b.goto(&format!("{base}/archivio")).await?;
    b.wait_for("location.search === '?lang=it' && document.title === 'Archivio delle sedute — Comune'", STEP).await?;
    println!(
        "  the home page's buttons, «My bookings» (no axe violation) and the archive follow the choice; \
         the archive's switch is remembered"
    );
    server.shutdown().await;
    Ok(())
}
