//! Scenario `council_session`: a chaired council session in real Chromium.
//!
//! The chair and a councillor open their personal links for room `council-<id>`; both see the
//! privacy notice and the council panel; the councillor asks to speak («Chiedi la parola»), the chair
//! sees the queue and gives the floor («Dai la parola a …»), the councillor's panel shows it and the
//! live region announces it; the chair takes it back and the councillor is announced as muted.

use std::time::Duration;

use sportello_tests::browser::{Browser, Result, err};
use sportello_tests::server::{Role, TestServer};

use super::Ctx;

const STEP: Duration = Duration::from_secs(30);

/// Clicks the first button whose text starts with `text` (the panel's buttons have no ids).
pub(super) async fn click_button(b: &Browser, text: &str) -> Result<()> {
    let found: bool = b
        .eval(&format!(
            "(() => {{ const b = [...document.querySelectorAll('.council-panel button')].find(b => b.textContent.startsWith({text:?})); if (b) b.click(); return !!b; }})()"
        ))
        .await?;
    if found { Ok(()) } else { Err(err(format!("[{}] no button {text:?}", b.label()))) }
}

/// Audio packets `b` has received on `track` so far (0 when it has no receiver for it yet).
async fn audio_packets(b: &Browser, track: &str) -> Result<u64> {
    let track = serde_json::to_string(track)?;
    b.eval_async(&format!(
        "window.sportello.inboundStats().then(s => s.filter(e => e.trackId === {track} && e.kind === 'audio')\
           .reduce((n, e) => n + (e.packetsReceived || 0), 0))"
    ))
    .await
}

/// How many audio packets of `track` reach `b` in `window`.
async fn audio_flow(b: &Browser, track: &str, window: Duration) -> Result<u64> {
    let before = audio_packets(b, track).await?;
    tokio::time::sleep(window).await;
    Ok(audio_packets(b, track).await?.saturating_sub(before))
}

pub async fn council_session(ctx: &mut Ctx) -> Result<()> {
    let server = TestServer::start().await;
    let e = |e: sportello_store::StoreError| err(format!("seeding the store: {e}"));
    let seeded = server.seed_council(&["Anna"], &["Bilancio"]).await.map_err(e)?;
    let anna = &seeded.councillors[0];
    let (chair_url, anna_url) =
        (seeded.link(&server, &seeded.chair, Role::Host), seeded.link(&server, anna, Role::Participant));

    let c = ctx.open("chair", &chair_url).await?;
    let a = ctx.open("anna", &anna_url).await?;
    for i in [c, a] {
        let b = &ctx.browsers[i];
        b.click("#join-btn").await?;
        b.wait_for("window.sportello && window.sportello.state === 'in-room'", STEP).await?;
        b.wait_for(
            "document.querySelector('.council-notice')?.textContent.includes('Questa seduta è trasmessa in diretta e registrata') \
             && document.querySelector('.council-panel h2')?.textContent.includes('Consiglio comunale')",
            STEP,
        )
        .await?;
    }
    let (chair_b, anna_b) = (&ctx.browsers[c], &ctx.browsers[a]);
    println!("  chair and councillor see the notice and the panel");

    anna_b
        .wait_for(
            "[...document.querySelectorAll('.council-panel button')].some(b => b.textContent === 'Chiedi la parola')",
            STEP,
        )
        .await?;
    click_button(anna_b, "Chiedi la parola").await?;
    chair_b.wait_for("document.querySelector('.council-queue')?.textContent.includes('Anna')", STEP).await?;
    click_button(chair_b, "Dai la parola a Anna").await?;
    anna_b
        .wait_for(
            "document.querySelector('.council-floor')?.textContent.includes('Anna') \
             && [...document.querySelectorAll('[aria-live]')].some(r => r.textContent.includes('La parola passa a Anna'))",
            STEP,
        )
        .await?;
    println!("  the floor went to the councillor, announced");
    // Her microphone is forwarded now that she has the floor.
    let anna_mic = format!("user-{}/microphone", anna.id);
    let cond = format!(
        "window.sportello.inboundStats().then(s => s.some(e => e.trackId === {} && e.kind === 'audio' && e.packetsReceived > 0))",
        serde_json::to_string(&anna_mic)?
    );
    chair_b.wait_for(&cond, STEP).await?;

    click_button(chair_b, "Togli la parola").await?;
    anna_b
        .wait_for("[...document.querySelectorAll('[aria-live]')].some(r => r.textContent.includes('microfono'))", STEP)
        .await?;
    println!("  taken back: the councillor is told her microphone was turned off");
    // The browser mutes by disabling its track, which still sends (silent) RTP: only the SFU's gate
    // stops it. Give the gate a moment, then nothing of her microphone may reach the chair.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let leaked = audio_flow(chair_b, &anna_mic, Duration::from_secs(2)).await?;
    if leaked > 0 {
        return Err(err(format!("{leaked} audio packets of {anna_mic} reached the chair after the floor was taken")));
    }
    println!("  without the floor her microphone reaches nobody (gated in the SFU)");
    drop(server);
    Ok(())
}
