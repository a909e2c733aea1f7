//! The SFU with real WebRTC peers (sans-IO `rtc` clients, real ICE/DTLS/SRTP over loopback UDP), no
//! browser and no signaling server: forwarding to several subscribers, a subscriber leaving, a
//! publisher reconnecting behind the same track, and every resource released at the end.
//!
//! Runs inside a loopback-only network namespace (own `main`, see `sportello_tests::netns`).

use std::sync::Arc;
use std::time::Duration;

use sportello_sfu::{Sfu, SfuConfig, SfuEvent, SfuStats, TrackSource};
use sportello_tests::netns::ensure_loopback_namespace;
use sportello_tests::rtc_client::{Client, Error, missing_sequence_numbers, pump};
use tokio::sync::mpsc::UnboundedReceiver;

fn main() {
    ensure_loopback_namespace();
    let _ = env_logger::try_init();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    match rt.block_on(scenario()) {
        Ok(()) => println!("1 passed, 0 failed"),
        Err(e) => {
            eprintln!("sfu_media: FAILED: {e}");
            println!("0 passed, 1 failed");
            std::process::exit(1);
        }
    }
}

struct Room {
    sfu: Sfu,
    events: UnboundedReceiver<SfuEvent>,
    name: Arc<str>,
}

impl Room {
    /// Answers every pending subscribe offer with the matching client.
    async fn answer_offers(&mut self, subs: &mut [(&str, &mut Client)]) -> Result<(), Error> {
        while let Ok(ev) = self.events.try_recv() {
            if let SfuEvent::SubscribeOffer { participant, sdp, .. } = ev {
                let Some((_, client)) = subs.iter_mut().find(|(n, _)| **n == *participant) else { continue };
                let answer = client.answer(sdp)?;
                self.sfu.subscribe_answer(self.name.clone(), participant, answer).await?;
            }
        }
        Ok(())
    }

    async fn publish(&self, who: &str, client: &mut Client) -> Result<(), Error> {
        let (sdp, mids) = client.publish_offer()?;
        let answer = self.sfu.publish_offer(self.name.clone(), who.into(), sdp, mids).await?;
        client.apply_answer(answer)
    }

    async fn stats(&self) -> Result<SfuStats, Error> {
        Ok(self.sfu.stats().await?)
    }
}

fn check(cond: bool, what: &str) -> Result<(), Error> {
    if cond { Ok(()) } else { Err(what.to_string().into()) }
}

/// Pumps and answers offers until `done` or the timeout.
async fn run_until(
    room: &mut Room,
    publishers: &mut [&mut Client],
    subs: &mut [(&str, &mut Client)],
    timeout: Duration,
    done: impl Fn(&[(&str, &mut Client)]) -> bool,
) -> Result<bool, Error> {
    let end = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < end {
        room.answer_offers(subs).await?;
        {
            let mut all: Vec<&mut Client> = publishers.iter_mut().map(|c| &mut **c).collect();
            all.extend(subs.iter_mut().map(|(_, c)| &mut **c));
            pump(&mut all, Duration::from_millis(40), |_| false).await;
        }
        if done(subs) {
            return Ok(true);
        }
    }
    Ok(false)
}

async fn scenario() -> Result<(), Error> {
    let (sfu, events) = Sfu::start(SfuConfig { udp_bind: "127.0.0.1:0".parse()?, ..Default::default() })?;
    let mut room = Room { sfu, events, name: "ufficio-anagrafe".into() };
    for who in ["anna", "bruno", "carla"] {
        room.sfu.join(room.name.clone(), who.into()).await?;
    }

    let mut anna = Client::new("anna-pub").await?;
    // Like a browser: one keyframe at the start, then only when asked. Subscribers who answer their
    // offer after that first keyframe see video only if the SFU's keyframe request (PLI) reaches anna.
    anna.keyframes_on_request_only = true;
    // 5% loss of anna's video on the way to the SFU, and of carla's on the way from it: the SFU's
    // NACKs (publisher leg) and its NACK responder (subscriber leg) must repair both.
    anna.drop_outgoing_video_every = 20;
    anna.add_track(false)?;
    anna.add_track(true)?;
    room.publish("anna", &mut anna).await?;
    let mut bruno = Client::new("bruno-sub").await?;
    let mut carla = Client::new("carla-sub").await?;
    carla.drop_incoming_video_every = 20;

    // Both subscribers receive anna's audio and video, starting with a keyframe.
    let ok = run_until(
        &mut room,
        &mut [&mut anna],
        &mut [("bruno", &mut bruno), ("carla", &mut carla)],
        Duration::from_secs(15),
        |subs| {
            subs.iter().all(|(_, c)| {
                c.received("anna/anna/microphone") > 50
                    && c.received("anna/anna/camera") > 30
                    && c.keyframes.contains_key("anna/anna/camera")
            })
        },
    )
    .await?;
    check(
        ok,
        &format!("subscribers did not receive anna's media: bruno {:?} carla {:?}", bruno.received, carla.received),
    )?;
    // Her tracks were announced with her publish offer, so bruno and carla negotiated while her
    // connection came up and could start at her very first keyframe; the keyframe request path
    // (PLI reaching a publisher that sends keyframes only when asked) is checked below, when her
    // gated camera is re-enabled.

    // Lost video packets are retransmitted on both legs: after a while no hole is left (the most
    // recent packets may still be on their way).
    run_until(
        &mut room,
        &mut [&mut anna],
        &mut [("bruno", &mut bruno), ("carla", &mut carla)],
        Duration::from_secs(3),
        |_| false,
    )
    .await?;
    for (who, c) in [("bruno", &bruno), ("carla", &carla)] {
        let seqs = c.video_seqs.get("anna/anna/camera").cloned().unwrap_or_default();
        let holes = missing_sequence_numbers(&seqs, 15);
        check(
            seqs.len() > 60 && holes == 0,
            &format!("{who}: {holes} video packets never repaired out of {}", seqs.len()),
        )?;
    }
    let s = room.stats().await?;
    check(
        s.participants == 3 && s.published_tracks == 2 && s.subscriptions == 4 && s.peer_connections == 3,
        &format!("stats with three: {s:?}"),
    )?;
    check(s.forwarded_packets > 100, &format!("forwarded: {s:?}"))?;

    // The server-side gate (a council member without the floor): anna's client keeps sending her
    // microphone, yet nobody receives it while it is disabled; her camera is unaffected. Re-enabled,
    // the audio flows again; a re-enabled camera resumes at a keyframe the SFU asks anna for.
    let mic = "anna/anna/microphone";
    room.sfu.set_forwarding(room.name.clone(), "anna".into(), TrackSource::Microphone, false).await?;
    // Let what was already queued or on the wire arrive.
    run_until(
        &mut room,
        &mut [&mut anna],
        &mut [("bruno", &mut bruno), ("carla", &mut carla)],
        Duration::from_millis(400),
        |_| false,
    )
    .await?;
    let gated_from = room.stats().await?.gated_packets;
    let (bruno_mic, carla_mic, bruno_cam) =
        (bruno.received(mic), carla.received(mic), bruno.received("anna/anna/camera"));
    run_until(
        &mut room,
        &mut [&mut anna],
        &mut [("bruno", &mut bruno), ("carla", &mut carla)],
        Duration::from_secs(2),
        |_| false,
    )
    .await?;
    let s = room.stats().await?;
    check(
        bruno.received(mic) == bruno_mic && carla.received(mic) == carla_mic,
        &format!(
            "a gated microphone was forwarded: bruno {} -> {}, carla {} -> {}",
            bruno_mic,
            bruno.received(mic),
            carla_mic,
            carla.received(mic)
        ),
    )?;
    // anna kept sending: the router counted (and dropped) her packets.
    check(s.gated_packets > gated_from + 50, &format!("gated packets not counted: {s:?}"))?;
    check(bruno.received("anna/anna/camera") > bruno_cam + 30, "the camera stopped with the microphone")?;
    room.sfu.set_forwarding(room.name.clone(), "anna".into(), TrackSource::Microphone, true).await?;
    let ok = run_until(
        &mut room,
        &mut [&mut anna],
        &mut [("bruno", &mut bruno), ("carla", &mut carla)],
        Duration::from_secs(5),
        |subs| subs.iter().all(|(_, c)| c.received(mic) > bruno_mic.max(carla_mic) + 50),
    )
    .await?;
    check(ok, &format!("the re-enabled microphone did not flow again: {:?} {:?}", bruno.received, carla.received))?;
    let cam = "anna/anna/camera";
    room.sfu.set_forwarding(room.name.clone(), "anna".into(), TrackSource::Camera, false).await?;
    run_until(&mut room, &mut [&mut anna], &mut [("bruno", &mut bruno)], Duration::from_millis(500), |_| false).await?;
    let (kf, plis) = (bruno.keyframes.get(cam).copied().unwrap_or(0), anna.plis);
    room.sfu.set_forwarding(room.name.clone(), "anna".into(), TrackSource::Camera, true).await?;
    let ok = run_until(&mut room, &mut [&mut anna], &mut [("bruno", &mut bruno)], Duration::from_secs(5), |subs| {
        subs[0].1.keyframes.get(cam).copied().unwrap_or(0) > kf
    })
    .await?;
    check(
        ok && anna.plis > plis,
        &format!("the re-enabled camera did not resume at a requested keyframe (plis {plis} -> {})", anna.plis),
    )?;

    // carla leaves: her subscriptions and connection are released, bruno is unaffected.
    room.sfu.leave(room.name.clone(), "carla".into()).await?;
    carla.close();
    let s = room.stats().await?;
    check(
        s.participants == 2 && s.subscriptions == 2 && s.peer_connections == 2,
        &format!("stats after carla left: {s:?}"),
    )?;
    let before = bruno.received("anna/anna/camera");
    let ok = run_until(&mut room, &mut [&mut anna], &mut [("bruno", &mut bruno)], Duration::from_secs(5), |subs| {
        subs[0].1.received("anna/anna/camera") > before + 30
    })
    .await?;
    check(ok, "bruno stopped receiving after carla left")?;

    // anna reconnects with a brand-new connection (new SSRCs): bruno keeps the same track and
    // resumes at a keyframe, without a new subscribe offer for it.
    anna.close();
    room.sfu.join(room.name.clone(), "anna".into()).await?;
    let mut anna2 = Client::new("anna-pub2").await?;
    anna2.keyframes_on_request_only = true;
    anna2.add_track(false)?;
    anna2.add_track(true)?;
    room.publish("anna", &mut anna2).await?;
    let (before, kf_before) =
        (bruno.received("anna/anna/camera"), bruno.keyframes.get("anna/anna/camera").copied().unwrap_or(0));
    let ok = run_until(&mut room, &mut [&mut anna2], &mut [("bruno", &mut bruno)], Duration::from_secs(15), |subs| {
        let c = &subs[0].1;
        c.received("anna/anna/camera") > before + 30
            && c.keyframes.get("anna/anna/camera").copied().unwrap_or(0) > kf_before
    })
    .await?;
    check(ok, &format!("bruno did not get anna's media after her reconnection: {:?}", bruno.received))?;
    let s = room.stats().await?;
    check(s.published_tracks == 2 && s.subscriptions == 2, &format!("stats after anna reconnected: {s:?}"))?;

    // bruno reconnects too (a new subscribe connection): he is offered anna's tracks again and
    // receives them on the new connection.
    bruno.close();
    room.sfu.join(room.name.clone(), "bruno".into()).await?;
    let mut bruno2 = Client::new("bruno-sub2").await?;
    let ok = run_until(&mut room, &mut [&mut anna2], &mut [("bruno", &mut bruno2)], Duration::from_secs(15), |subs| {
        let c = &subs[0].1;
        c.received("anna/anna/camera") > 30 && c.received("anna/anna/microphone") > 50
    })
    .await?;
    check(ok, &format!("bruno's new connection did not receive anna's media: {:?}", bruno2.received))?;
    let s = room.stats().await?;
    check(s.peer_connections == 2 && s.subscriptions == 2, &format!("stats after bruno reconnected: {s:?}"))?;

    // Everyone leaves: nothing is left behind.
    room.sfu.leave(room.name.clone(), "anna".into()).await?;
    room.sfu.leave(room.name.clone(), "bruno".into()).await?;
    let s = room.stats().await?;
    check(
        s.rooms == 0
            && s.participants == 0
            && s.peer_connections == 0
            && s.published_tracks == 0
            && s.subscriptions == 0,
        &format!("stats after everyone left: {s:?}"),
    )?;
    println!("sfu_media: forwarded {} packets, dropped {}", s.forwarded_packets, s.dropped_packets);
    Ok(())
}
