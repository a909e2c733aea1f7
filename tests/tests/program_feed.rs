//! The SFU's program feed with real WebRTC peers (sans-IO `rtc` clients over loopback UDP), no
//! signaling server: two councillors publish into a council room, an encoder publishes by WHIP into
//! the chamber room, a WHEP viewer receives the program; the program switches between sources at
//! keyframes (the viewer's picture changes owner, its numbering never jumps), a slate stops
//! everything at once, and the recording holds frames only while something was on air.
//!
//! The SFU runs two media threads, so one viewer is served from a mirror of the program.
//!
//! Runs inside a loopback-only network namespace (own `main`, see `sportello_tests::netns`).

use std::sync::Arc;
use std::time::Duration;

use sportello_sfu::{MediaKind, ProgramSelection, Sfu, SfuConfig, SfuError, SourceRef, TrackSource};
use sportello_tests::rtc_client::{Client, Error, missing_sequence_numbers, pump};

fn main() {
    sportello_tests::netns::run_scenario("program_feed", scenario());
}

fn check(cond: bool, what: impl Into<String>) -> Result<(), Error> {
    if cond { Ok(()) } else { Err(what.into().into()) }
}

const VIDEO: &str = "program/program/video";
const VOICE: &str = "program/program/audio-0";

async fn publish(sfu: &Sfu, room: &Arc<str>, who: &str, client: &mut Client) -> Result<(), Error> {
    let (sdp, mids) = client.publish_offer()?;
    let answer = sfu.publish_offer(room.clone(), who.into(), sdp, mids).await?;
    client.apply_answer(answer)
}

async fn publisher(name: &str, fill: u8) -> Result<Client, Error> {
    let mut c = Client::new(name).await?;
    // Like a browser: keyframes only at the start and when asked, so every switch needs the
    // SFU's keyframe request to reach the new source.
    c.keyframes_on_request_only = true;
    c.video_fill = fill;
    c.add_track(false)?;
    c.add_track(true)?;
    Ok(c)
}

async fn scenario() -> Result<(), Error> {
    // Two media threads: the council rooms and the program live on one (same placement key), and
    // the viewers are spread over both — one served from the other thread's mirror of the program.
    let config = SfuConfig { udp_bind: "127.0.0.1:0".parse()?, media_threads: 2, ..Default::default() };
    let (sfu, _events) = Sfu::start(config)?;
    let council: Arc<str> = "council-s1".into();
    let chamber: Arc<str> = "chamber-s1".into();
    let program: Arc<str> = "live-s1".into();
    let recording = tempfile::tempdir()?;

    // Nothing to watch before the program is open.
    let mut early = Client::new("early").await?;
    early.receive_only(2, 1)?;
    let (offer, _) = early.offer()?;
    let refused = sfu.whep_offer(program.clone(), "early".into(), offer).await;
    check(matches!(refused, Err(SfuError::UnknownProgram(_))), format!("WHEP before the program: {refused:?}"))?;

    for who in ["chair", "anna"] {
        sfu.join(council.clone(), who.into()).await?;
    }
    let mut chair = publisher("chair", 0xC1).await?;
    let mut anna = publisher("anna", 0xA1).await?;
    publish(&sfu, &council, "chair", &mut chair).await?;
    publish(&sfu, &council, "anna", &mut anna).await?;
    // The chamber's encoder, by WHIP (first audio and video m-lines).
    let mut encoder = publisher("encoder", 0xE1).await?;
    let (offer, _) = encoder.offer()?;
    let answer = sfu.whip_offer(chamber.clone(), "chamber".into(), offer).await?;
    encoder.apply_answer(answer)?;
    check(
        matches!(
            sfu.whip_offer(chamber.clone(), "chamber2".into(), "v=0\r\n".into()).await,
            Err(SfuError::UnusableOffer(_) | SfuError::InvalidSdp(_))
        ),
        "an offer without media is refused",
    )?;

    sfu.program_open(program.clone(), 2).await?;
    let src = |room: &Arc<str>, who: &str, source| SourceRef::new(room.clone(), who, source);
    let select = |video: Vec<SourceRef>, voice: Vec<SourceRef>| ProgramSelection { video, audio: vec![voice, vec![]] };
    // Anna has the floor; a source that does not exist is skipped.
    sfu.program_select(
        program.clone(),
        select(
            vec![src(&council, "nobody", TrackSource::Camera), src(&council, "anna", TrackSource::Camera)],
            vec![src(&council, "anna", TrackSource::Microphone)],
        ),
    )
    .await?;
    sfu.record_start(program.clone(), recording.path().to_path_buf()).await?;

    // A WHEP viewer (one video and two audio m-lines) and a minimal player (one of each).
    let mut viewer = Client::new("viewer").await?;
    viewer.receive_only(2, 1)?;
    let (offer, _) = viewer.offer()?;
    viewer.apply_answer(sfu.whep_offer(program.clone(), "v1".into(), offer).await?)?;
    let mut player = Client::new("player").await?;
    player.receive_only(1, 1)?;
    let (offer, _) = player.offer()?;
    player.apply_answer(sfu.whep_offer(program.clone(), "v2".into(), offer).await?)?;
    check(
        matches!(
            sfu.whep_offer(program.clone(), "v3".into(), "v=0\r\n".into()).await,
            Err(SfuError::UnusableOffer(_) | SfuError::InvalidSdp(_))
        ),
        "a WHEP offer without receiving m-lines is refused",
    )?;

    let shows = |c: &Client, fill: u8| c.last_video_fill.get(VIDEO) == Some(&fill);
    let mut all = [&mut chair, &mut anna, &mut encoder, &mut viewer, &mut player];
    let ok = pump(&mut all, Duration::from_secs(15), |cs| {
        cs[3..].iter().all(|c| shows(c, 0xA1) && c.received(VOICE) > 25 && c.received(VIDEO) > 20)
    })
    .await;
    check(ok, format!("viewers see and hear anna: viewer {:?}, player {:?}", all[3].received, all[4].received))?;
    let per_thread = sfu.engine_stats().await?;
    check(
        per_thread.len() == 2 && per_thread.iter().all(|s| s.participants > 0 && s.forwarded_packets > 0),
        format!("both media threads serve someone: {per_thread:?}"),
    )?;
    // The program's viewers, wherever they are served, are its participants.
    let mut watching = sfu.participants(program.clone()).await?;
    watching.sort();
    check(watching == ["v1".into(), "v2".into()], format!("the program's participants: {watching:?}"))?;

    // The floor goes to the chair: the picture switches (at the chair's keyframe, requested).
    sfu.program_select(
        program.clone(),
        select(
            vec![src(&council, "chair", TrackSource::Camera)],
            vec![src(&council, "chair", TrackSource::Microphone)],
        ),
    )
    .await?;
    let ok = pump(&mut all, Duration::from_secs(10), |cs| cs[3..].iter().all(|c| shows(c, 0xC1))).await;
    check(ok, "the program switched to the chair")?;
    check(all[0].plis > 0, "the chair was asked for a keyframe")?;

    // Nobody chosen any more, the chamber camera is the fallback.
    sfu.program_select(
        program.clone(),
        select(
            vec![src(&council, "nobody", TrackSource::Camera), src(&chamber, "chamber", TrackSource::Camera)],
            vec![src(&chamber, "chamber", TrackSource::Microphone)],
        ),
    )
    .await?;
    let ok = pump(&mut all, Duration::from_secs(10), |cs| cs[3..].iter().all(|c| shows(c, 0xE1))).await;
    check(ok, "the program fell back to the chamber's WHIP camera")?;

    // Suspended: not one more packet reaches the viewers.
    sfu.program_select(program.clone(), ProgramSelection::default()).await?;
    pump(&mut all, Duration::from_millis(300), |_| false).await;
    let before = (all[3].received(VIDEO), all[3].received(VOICE));
    pump(&mut all, Duration::from_secs(2), |_| false).await;
    let after = (all[3].received(VIDEO), all[3].received(VOICE));
    check(before == after, format!("packets during the slate: {before:?} → {after:?}"))?;

    // Back on air with anna: the numbering goes on without a gap the viewer would NACK.
    sfu.program_select(
        program.clone(),
        select(vec![src(&council, "anna", TrackSource::Camera)], vec![src(&council, "anna", TrackSource::Microphone)]),
    )
    .await?;
    let ok = pump(&mut all, Duration::from_secs(10), |cs| cs[3..].iter().all(|c| shows(c, 0xA1))).await;
    check(ok, "back on air after the slate")?;
    pump(&mut all, Duration::from_secs(1), |_| false).await;
    let seqs = all[3].video_seqs.get(VIDEO).cloned().unwrap_or_default();
    let missing = missing_sequence_numbers(&seqs, 0);
    check(missing == 0, format!("{missing} sequence numbers missing across four switches"))?;

    let files = sfu.record_stop(program.clone()).await?;
    let video = files.iter().find(|f| f.kind == MediaKind::Video).ok_or("no video file")?;
    let voice = files.iter().find(|f| f.kind == MediaKind::Audio && f.slot == 0).ok_or("no voice file")?;
    check(video.frames > 40, format!("video frames recorded: {video:?}"))?;
    let heard = all[3].received(VOICE);
    check(voice.frames * 10 >= heard * 8, format!("voice packets recorded: {voice:?}, the viewer heard {heard}"))?;
    // The slate (≥ 2 s) is a gap in the recording's time, not a cut.
    let wall = video.last_frame_ms.unwrap_or(0);
    check(wall >= (video.frames * 33).saturating_sub(500) + 1_500, format!("no gap in the recorded times: {video:?}"))?;
    let header = std::fs::read(&video.path)?;
    check(header.starts_with(b"DKIF") && &header[8..12] == b"VP80", "an IVF file of VP8")?;

    // Viewers leave (each from the thread that serves it); closing the program releases everything.
    sfu.leave(program.clone(), "v1".into()).await?;
    let left = sfu.participants(program.clone()).await?;
    check(left == ["v2".into()], format!("after v1 left: {left:?}"))?;
    check(
        matches!(sfu.leave(program.clone(), "v1".into()).await, Err(SfuError::UnknownParticipant(_))),
        "leaving twice is an unknown participant",
    )?;
    sfu.program_close(program.clone()).await?;
    let stats = sfu.stats().await?;
    check(stats.subscriptions == 0, format!("subscriptions left: {stats:?}"))?;
    Ok(())
}
