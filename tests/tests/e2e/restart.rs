//! Scenario `restart_call` (issue 14): the real `sportello` binary is `kill -9`ed during an
//! appointment's call and started again on the same data directory and ports. The official and the
//! citizen the official had admitted must be back in their room by themselves, the citizen without
//! passing through the waiting room again, each decoding the other's camera again within 5 s of the
//! server being up (the time is printed).
//!
//! The server stays down for 8 s, as a supervisor's restart delay would keep it: long enough that a
//! backoff growing towards 10 s (as the page's once did) would come back only seconds after the
//! server, which this scenario would see.

use std::time::{Duration, Instant};

use sportello_backoffice::links;
use sportello_backoffice::token::{Claims, Role, TokenKey};
use sportello_store::Store;
use sportello_tests::browser::{Browser, Result, err};
use sportello_tests::process::Sportello;

use super::{Ctx, JOIN_TIMEOUT, MEDIA_TIMEOUT, join, media_condition};

/// How long the server stays dead.
const DOWNTIME: Duration = Duration::from_secs(8);
/// The requirement: decoded video again within 5 s of the restart. Measured here 1.5–1.7 s (with a
/// load average of 16 on 2 cores): at most 2 s of backoff, then a join and two new connections. The
/// backoff the page had before (0.5 s doubling to 10 s, no jitter) retries 7.5 s and 15.5 s after
/// the kill, so with [`DOWNTIME`] it would be back about 7 s after the server, and fail here.
const BACK_WITHIN: Duration = Duration::from_secs(5);

pub async fn restart_call(ctx: &mut Ctx) -> Result<()> {
    let root = tempfile::tempdir()?;
    let data = root.path().join("data");
    std::fs::create_dir_all(&data)?;
    // The appointment, seeded before the first start; the key the server signs and checks with.
    let (appt, official) = seed(&data).await?;
    let tokens = TokenKey::load_or_create(&data).map_err(|e| err(e.to_string()))?;
    let mut server = Sportello::start(&data, &["--reconnect-grace".into(), "15s".into()]).map_err(err)?;
    let now = i64::try_from(sportello_backoffice::token::unix_now()).unwrap_or_default();
    let citizen_link = links::join_link(&tokens, &server.url(), &appt, now).map_err(|e| err(e.to_string()))?;
    let room = links::room_of(&appt.id);
    let host = Claims::new(&room, &format!("user-{official}"), "Olga", Role::Host, Duration::from_secs(3600));
    let host_link = format!("{}/join?t={}", server.url(), tokens.issue(&host).map_err(|e| err(e.to_string()))?);
    let (citizen_id, official_id) = (format!("citizen-{}", appt.id), format!("user-{official}"));

    // --- the official is in the room, the citizen waits and is admitted; media both ways.
    let o = ctx.open("official", &host_link).await?;
    join(&ctx.browsers[o]).await?;
    let c = ctx.open("citizen", &citizen_link).await?;
    let cb = &ctx.browsers[c];
    cb.wait_for("window.sportello && window.sportello.netcheck !== null", JOIN_TIMEOUT).await?;
    cb.click("#join-btn").await?;
    cb.wait_for("window.sportello.waiting === true", JOIN_TIMEOUT).await?;
    let ob = &ctx.browsers[o];
    ob.wait_for(
        "(document.querySelector('#room-lobby:not([hidden])') || {}).textContent?.includes('Carla')",
        JOIN_TIMEOUT,
    )
    .await?;
    ob.click("#room-lobby .admit").await?;
    cb.wait_for("window.sportello.state === 'in-room'", JOIN_TIMEOUT).await?;
    let (official_sees, citizen_sees) = (
        media_condition(&[&format!("{citizen_id}/camera")], &[&format!("{citizen_id}/microphone")]),
        media_condition(&[&format!("{official_id}/camera")], &[&format!("{official_id}/microphone")]),
    );
    tokio::try_join!(ob.wait_for(&official_sees, MEDIA_TIMEOUT), cb.wait_for(&citizen_sees, MEDIA_TIMEOUT))?;
    println!("  official and admitted citizen in a call with media");

    // --- kill -9, a few seconds down, the same binary on the same data and ports.
    let mark = "window.__e2eOld = { ws: window.sportello.ws, sub: window.sportello.pcs.subscribe, \
                events: window.sportello.events.length };";
    ob.exec(mark).await?;
    cb.exec(mark).await?;
    // The admission is written by the room's persistence queue right after the admit.
    wait_admitted(&data, &room, &citizen_id).await?;
    server.kill9().map_err(err)?;
    tokio::time::sleep(DOWNTIME).await;
    server.restart().map_err(err)?;
    let up = Instant::now();

    // Back in the room, on a new websocket and new peer connections, decoding the other again.
    let back = |who: &str| {
        format!(
            "(async () => {{ const s = window.sportello, old = window.__e2eOld; \
               if (s.state !== 'in-room' || !s.ws || s.ws === old.ws || !s.pcs.subscribe || s.pcs.subscribe === old.sub) return false; \
               const st = await s.inboundStats(); \
               return st.some(e => e.trackId === '{who}/camera' && e.kind === 'video' && e.framesDecoded > 0); }})()"
        )
    };
    let waited = tokio::try_join!(timed(ob, back(&citizen_id), up), timed(cb, back(&official_id), up));
    let (official_back, citizen_back) = waited.map_err(|e| err(format!("{e}\nserver log:\n{}", server.last_log())))?;
    println!(
        "  back with video {:.1} s (official) and {:.1} s (citizen) after the server was up again",
        official_back.as_secs_f64(),
        citizen_back.as_secs_f64()
    );
    // The citizen went straight back in: no `waiting` since the kill.
    let since: Vec<String> = cb.eval("window.sportello.events.slice(window.__e2eOld.events)").await?;
    if since.iter().any(|t| t == "waiting") || !since.iter().any(|t| t == "welcome") {
        return Err(err(format!("the admitted citizen's messages since the kill: {since:?}")));
    }
    if official_back.max(citizen_back) > BACK_WITHIN {
        return Err(err(format!(
            "back in the room with video only {:.1} s / {:.1} s after the restart (want ≤ {} s)",
            official_back.as_secs_f64(),
            citizen_back.as_secs_f64(),
            BACK_WITHIN.as_secs()
        )));
    }
    Ok(())
}

/// Waits for `cond` in `b`; returns the time since `since`.
async fn timed(b: &Browser, cond: String, since: Instant) -> Result<Duration> {
    b.wait_for(&cond, MEDIA_TIMEOUT).await?;
    Ok(since.elapsed())
}

/// Polls the store until the room's admission of `identity` is written.
async fn wait_admitted(data: &std::path::Path, room: &str, identity: &str) -> Result<()> {
    let store = Store::connect(&sqlite(data)).await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !store.is_admitted(room, identity).await? {
        if Instant::now() > deadline {
            return Err(err(format!("{identity}'s admission to {room} was never stored")));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    store.close().await;
    Ok(())
}

fn sqlite(data: &std::path::Path) -> String {
    format!("sqlite:{}", data.join("sportello.db").display())
}

/// Official "Olga" of office "Anagrafe", and Carla Rossi's video appointment starting now (its
/// join window is open); returns it with the official's id.
async fn seed(data: &std::path::Path) -> Result<(sportello_store::Appointment, String)> {
    let store = Store::connect(&sqlite(data)).await?;
    let now = i64::try_from(sportello_backoffice::token::unix_now()).unwrap_or_default();
    let appt = sportello_tests::server::seed_appointment(&store, now, now).await?;
    store.close().await;
    let official = appt.official_id.clone();
    Ok((appt, official))
}
