//! A council program cascaded from an origin SFU to an edge SFU over a relay leg (the edge's own
//! offer, answered by the origin like a WHEP viewer: full ICE and DTLS client on the edge), with
//! real WebRTC peers (sans-IO `rtc` clients over loopback UDP) and no signaling server:
//! - viewers of the edge — one on each of its two media threads — see and hear the origin's
//!   program, and the origin serves one relay leg, not one connection per viewer;
//! - the edge's viewers cost the origin no keyframe request beyond one a second;
//! - the origin stops (its node died): the edge's viewers keep their connections on the slate,
//!   the edge relays a new origin, and the viewers see it without a sequence gap they would NACK;
//! - the edge becomes the origin itself (`program_select`): its viewers stay and see its own source.
//!
//! Runs inside a loopback-only network namespace (own `main`, see `sportello_tests::netns`).

use std::sync::Arc;
use std::time::Duration;

use sportello_sfu::{PeerState, ProgramSelection, Sfu, SfuConfig, SourceRef, TrackSource};
use sportello_tests::rtc_client::{Client, Error, missing_sequence_numbers, pump};

fn main() {
    sportello_tests::netns::run_scenario("program_cascade", scenario());
}

fn check(cond: bool, what: impl Into<String>) -> Result<(), Error> {
    if cond { Ok(()) } else { Err(what.into().into()) }
}

const VIDEO: &str = "program/program/video";
const VOICE: &str = "program/program/audio-0";

fn sfu() -> Result<Sfu, Error> {
    let config = SfuConfig { udp_bind: "127.0.0.1:0".parse()?, media_threads: 2, ..Default::default() };
    Ok(Sfu::start(config)?.0)
}

/// A councillor publishing into `council` on `sfu`, shown and heard by its program `program`.
async fn origin(sfu: &Sfu, council: &Arc<str>, program: &Arc<str>, fill: u8) -> Result<Client, Error> {
    sfu.join(council.clone(), "anna".into()).await?;
    let mut c = Client::new("anna").await?;
    // Like a browser: keyframes only at the start and when asked.
    c.keyframes_on_request_only = true;
    c.video_fill = fill;
    c.add_track(false)?;
    c.add_track(true)?;
    let (sdp, mids) = c.publish_offer()?;
    c.apply_answer(sfu.publish_offer(council.clone(), "anna".into(), sdp, mids).await?)?;
    sfu.program_open(program.clone(), 2).await?;
    let src = |source| SourceRef::new(council.clone(), "anna", source);
    let selection = ProgramSelection {
        video: vec![src(TrackSource::Camera)],
        audio: vec![vec![src(TrackSource::Microphone)], vec![]],
    };
    sfu.program_select(program.clone(), selection).await?;
    Ok(c)
}

/// The edge's relay leg to `origin`'s program, signaled in-process.
async fn relay(edge: &Sfu, origin: &Sfu, program: &Arc<str>) -> Result<(), Error> {
    let offer = edge.upstream_offer(program.clone(), 2).await?;
    let answer = origin.whep_offer(program.clone(), "relay-edge".into(), offer).await?;
    edge.upstream_answer(program.clone(), answer).await?;
    Ok(())
}

async fn viewer(edge: &Sfu, program: &Arc<str>, name: &str) -> Result<Client, Error> {
    let mut v = Client::new(name).await?;
    v.receive_only(2, 1)?;
    let (offer, _) = v.offer()?;
    v.apply_answer(edge.whep_offer(program.clone(), name.into(), offer).await?)?;
    Ok(v)
}

async fn scenario() -> Result<(), Error> {
    let council: Arc<str> = "council-s1".into();
    let program: Arc<str> = "live-s1".into();
    let first = sfu()?;
    let edge = sfu()?;
    let mut anna = origin(&first, &council, &program, 0xA1).await?;
    relay(&edge, &first, &program).await?;
    let mut v1 = viewer(&edge, &program, "v1").await?;
    let mut v2 = viewer(&edge, &program, "v2").await?;

    let shows = |c: &Client, fill: u8| c.last_video_fill.get(VIDEO) == Some(&fill);
    let mut all = [&mut anna, &mut v1, &mut v2];
    let ok = pump(&mut all, Duration::from_secs(15), |cs| {
        cs[1..].iter().all(|c| shows(c, 0xA1) && c.received(VOICE) > 25 && c.received(VIDEO) > 20)
    })
    .await;
    check(ok, format!("the edge's viewers see and hear the origin: {:?}, {:?}", all[1].received, all[2].received))?;
    check(edge.upstream_state(program.clone()).await? == Some(PeerState::Connected), "the relay leg is connected")?;
    let watching = first.participants(program.clone()).await?;
    check(watching == ["relay-edge".into()], format!("the origin serves one relay leg: {watching:?}"))?;
    let per_thread = edge.engine_stats().await?;
    check(
        per_thread.iter().all(|s| s.forwarded_packets > 0),
        format!("both of the edge's media threads forward: {per_thread:?}"),
    )?;

    // A third viewer joins the edge: its keyframe request goes upstream through the throttle.
    let before = first.stats().await?.plis_received;
    let mut v3 = viewer(&edge, &program, "v3").await?;
    let mut all = [&mut anna, &mut v1, &mut v2, &mut v3];
    let ok = pump(&mut all, Duration::from_secs(10), |cs| shows(cs[3], 0xA1)).await;
    check(ok, "a late viewer of the edge starts")?;
    pump(&mut all, Duration::from_secs(2), |_| false).await;
    let asked = first.stats().await?.plis_received - before;
    check(asked <= 4, format!("keyframe requests the origin got for one late viewer in ≈ 3 s: {asked}"))?;

    // The origin's node dies. The edge's viewers keep their connections, on the slate.
    first.stop().await;
    drop(first);
    check(edge.participants(program.clone()).await?.len() == 3, "the edge keeps its viewers while no origin feeds it")?;
    // A new origin (another node took the council over): the edge relays it.
    let second = sfu()?;
    let mut anna2 = origin(&second, &council, &program, 0xB2).await?;
    relay(&edge, &second, &program).await?;
    let mut all = [&mut anna2, &mut v1, &mut v2, &mut v3];
    let ok = pump(&mut all, Duration::from_secs(15), |cs| cs[1..].iter().all(|c| shows(c, 0xB2))).await;
    check(ok, "the edge's viewers see the new origin")?;
    pump(&mut all, Duration::from_secs(1), |_| false).await;
    for v in &all[1..] {
        let seqs = v.video_seqs.get(VIDEO).cloned().unwrap_or_default();
        let missing = missing_sequence_numbers(&seqs, 0);
        check(missing == 0, format!("{missing} sequence numbers missing across the change of origin"))?;
    }

    // This edge becomes the origin (the council's room moved here): its viewers stay.
    edge.join(council.clone(), "carla".into()).await?;
    let mut carla = Client::new("carla").await?;
    carla.keyframes_on_request_only = true;
    carla.video_fill = 0xC3;
    carla.add_track(true)?;
    let (sdp, mids) = carla.publish_offer()?;
    carla.apply_answer(edge.publish_offer(council.clone(), "carla".into(), sdp, mids).await?)?;
    let selection = ProgramSelection {
        video: vec![SourceRef::new(council.clone(), "carla", TrackSource::Camera)],
        audio: vec![vec![], vec![]],
    };
    edge.program_select(program.clone(), selection).await?;
    check(edge.upstream_state(program.clone()).await?.is_none(), "the relay leg is closed")?;
    let mut all = [&mut carla, &mut v1, &mut v2, &mut v3];
    let ok = pump(&mut all, Duration::from_secs(10), |cs| cs[1..].iter().all(|c| shows(c, 0xC3))).await;
    check(ok, "the viewers see the edge's own source")?;
    edge.program_close(program.clone()).await?;
    let stats = edge.stats().await?;
    check(stats.subscriptions == 0 && stats.participants == 1, format!("released: {stats:?}"))?;
    Ok(())
}
