//! Scenario `room_details` (issue 11, items 1, 6, 7, 9): what a citizen and an official read in an
//! appointment's room, in real Chromium.
//!
//! The citizen opens the emailed link: the device check, the waiting room and the room name the
//! service, office, time and official, never `appt-…`. Admitted from the dashboard into an empty
//! room, the citizen is told the official is coming; leaving and pressing «Rientra» leads back to
//! the waiting room (the appointment did not end). The official enters, admits from inside the room,
//! and the notice goes. With the chat closed, the official's message shows as an unread count on the
//! chat button; opening the chat clears it; the chat is a real list inside a log.

use std::time::Duration;

use sportello_tests::browser::{Browser, Result, err};
use sportello_tests::server::{Claims, Role, TestServer};

use super::Ctx;

const STEP: Duration = Duration::from_secs(30);

/// Fails when the page shows an internal room id anywhere in its text.
async fn no_internal_id(b: &Browser, when: &str) -> Result<()> {
    let text: String = b.eval("document.body.innerText").await?;
    if text.contains("appt-") || text.contains("vo-") {
        return Err(err(format!("{when}: an internal id is shown: {text:?}")));
    }
    Ok(())
}

async fn text_of(b: &Browser, css: &str) -> Result<String> {
    b.eval(&format!("(document.querySelector({}) || {{}}).textContent || ''", serde_json::to_string(css)?)).await
}

pub async fn room_details(ctx: &mut Ctx) -> Result<()> {
    let server = TestServer::start_with(|c| c.reconnect_grace = Duration::from_secs(15)).await;
    let now = server.server.tokens.clock().now();
    let appt = server.seed_appointment(now).await.map_err(|e| err(e.to_string()))?;
    let room = format!("appt-{}", appt.id);
    let link = sportello_backoffice::links::join_link(&server.server.tokens, &server.url(), &appt, now)
        .map_err(|e| err(e.to_string()))?;

    // --- the device check names the appointment.
    let citizen = ctx.open("citizen", &link).await?;
    let b = &ctx.browsers[citizen];
    b.wait_for("(document.querySelector('#room-name').textContent || '').includes('Olga')", STEP).await?;
    let title = text_of(b, "#room-name").await?;
    for part in ["Appuntamento", "Carta d'identità", "Anagrafe"] {
        if !title.contains(part) {
            return Err(err(format!("the device check reads {title:?}, without {part:?}")));
        }
    }
    no_internal_id(b, "device check").await?;
    println!("  the device check reads {title:?}");

    // --- the waiting room.
    b.click("#join-btn").await?;
    b.wait_for("window.sportello.waiting === true", STEP).await?;
    no_internal_id(b, "waiting room").await?;

    // --- admitted from the dashboard into an empty room: told that the official is coming.
    let citizen_id = format!("citizen-{}", appt.id);
    server.server.rooms.admit(&room, &citizen_id).await.map_err(|e| err(format!("admit: {e:?}")))?;
    b.wait_for("window.sportello.state === 'in-room'", STEP).await?;
    b.wait_for("document.querySelector('#room-notice').textContent.includes(\"L'operatore sta arrivando\")", STEP)
        .await?;
    let live: String = b.eval("document.querySelector('#room-notice').getAttribute('role')").await?;
    if live != "status" {
        return Err(err(format!("the notice is not a polite live region (role {live:?})")));
    }
    let heading = text_of(b, "#room-title").await?;
    if !heading.contains("Carta d'identità") {
        return Err(err(format!("the room's heading reads {heading:?}")));
    }
    no_internal_id(b, "room").await?;
    println!("  alone in the room, the citizen reads that the official is coming");

    // --- leaving the empty room does not end the appointment: «Rientra» leads back to the waiting room.
    b.click("#btn-leave").await?;
    b.wait_for("window.sportello.state === 'left'", STEP).await?;
    b.click("#rejoin-btn").await?;
    b.wait_for("window.sportello.waiting === true && !!document.querySelector('#waiting-screen').offsetParent", STEP)
        .await?;
    println!("  after leaving the empty room the citizen can come back");

    // --- the official enters and admits from inside the room; the notice goes.
    let host = Claims::new(&room, &format!("user-{}", appt.official_id), "Olga", Role::Host, Duration::from_secs(3600));
    let official = ctx.open("official", &server.join_link(&server.sign(&host))).await?;
    let o = &ctx.browsers[official];
    o.click("#join-btn").await?;
    o.wait_for("window.sportello.state === 'in-room'", STEP).await?;
    o.wait_for(
        "(document.querySelector('#room-lobby:not([hidden])') || {}).textContent?.includes('Carla Rossi')",
        STEP,
    )
    .await?;
    o.click("#room-lobby .admit").await?;
    let b = &ctx.browsers[citizen];
    b.wait_for("window.sportello.state === 'in-room'", STEP).await?;
    b.wait_for("!document.querySelector('#room-notice').textContent", STEP).await?;
    no_internal_id(o, "official's room").await?;
    println!("  the official admitted the citizen from inside the room");

    // --- a message while the citizen's chat is closed: an unread count on the chat button.
    b.click("#btn-chat").await?;
    b.wait_for("document.querySelector('#room-side').hidden", STEP).await?;
    o.fill("#chat-input", "Buongiorno, sono Olga").await?;
    o.click("#chat-send").await?;
    b.wait_for("document.querySelector('#btn-chat .ctl-badge').textContent === '1'", STEP).await?;
    let button = text_of(b, "#btn-chat").await?;
    if !button.contains("1 messaggio non letto") {
        return Err(err(format!("the chat button reads {button:?}")));
    }
    b.click("#btn-chat").await?;
    b.wait_for(
        "!document.querySelector('#room-side').hidden && document.querySelector('#btn-chat .ctl-badge').hidden",
        STEP,
    )
    .await?;
    let markup: String = b
        .eval(
            "(() => { const l = document.querySelector('#chat-list'); \
               return [l.tagName, l.getAttribute('role'), l.parentElement.getAttribute('role'), \
                       [...l.children].every(c => c.tagName === 'LI'), l.textContent.includes('Buongiorno, sono Olga')].join(','); })()",
        )
        .await?;
    if markup != "OL,,log,true,true" {
        return Err(err(format!("chat markup (list tag, list role, parent role, all li, message): {markup}")));
    }
    println!("  the unread count showed and cleared; the chat is a list inside a log");
    Ok(())
}
