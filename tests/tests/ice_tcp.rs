//! ICE-TCP on real sockets: with UDP dropped by nftables, a TCP-only publisher and subscriber (sans-IO
//! `rtc` clients with an active TCP candidate) reach the SFU's passive candidate and media flows; and
//! the new surface gives hostile input nothing: garbage and silence are closed, the per-address cap holds;
//! a subscriber who stops reading does not slow the others and gets media again when it resumes.
//!
//! Runs inside a loopback-only network namespace (own `main`, see `sportello_tests::netns`), so the
//! firewall rules touch nothing outside it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sportello_sfu::{Sfu, SfuConfig, SfuEvent, TcpLimits};
use sportello_tests::rtc_client::{Client, Error, pump};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TCP_ADDR: &str = "127.0.0.1:4443";
const PER_ADDRESS: usize = 3;
const FIRST_STUN: Duration = Duration::from_millis(500);

fn main() {
    let _ = env_logger::try_init();
    sportello_tests::netns::run_scenario("ice_tcp", scenario());
}

fn check(cond: bool, what: &str) -> Result<(), Error> {
    if cond { Ok(()) } else { Err(what.to_string().into()) }
}

/// True when the server closes `s` (EOF or reset) within `within`.
async fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 64];
    let end = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(end, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

async fn hostile_input() -> Result<(), Error> {
    let addr: SocketAddr = TCP_ADDR.parse()?;
    // Not RFC 4571: an HTTP request on the ICE port.
    let mut garbage = TcpStream::connect(addr).await?;
    garbage.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await?;
    check(closed_within(&mut garbage, Duration::from_secs(2)).await, "a connection sending garbage stayed open")?;
    // Well framed, but not STUN.
    let mut not_stun = TcpStream::connect(addr).await?;
    not_stun.write_all(&[0, 4, 0x80, 96, 0, 1]).await?;
    check(closed_within(&mut not_stun, Duration::from_secs(2)).await, "a first frame that is not STUN was accepted")?;

    // Silent connections fill the per-address cap; one more is refused at once; the silent ones
    // are closed at the first-STUN deadline.
    let started = Instant::now();
    let mut silent = Vec::new();
    for _ in 0..PER_ADDRESS {
        silent.push(TcpStream::connect(addr).await?);
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut over = TcpStream::connect(addr).await?;
    check(
        closed_within(&mut over, FIRST_STUN / 2).await,
        "a connection over the per-address cap was not closed at once",
    )?;
    for s in &mut silent {
        check(closed_within(s, FIRST_STUN * 4).await, "a silent connection outlived the first-STUN deadline")?;
    }
    check(started.elapsed() >= FIRST_STUN / 2, "silent connections closed before their deadline")?;
    // The cap is free again once they are gone.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut again = TcpStream::connect(addr).await?;
    check(!closed_within(&mut again, FIRST_STUN / 4).await, "the per-address cap did not free up")?;
    Ok(())
}

async fn scenario() -> Result<(), Error> {
    let _udp_blocked = sportello_tests::netns::Firewall::block_udp()?;
    let config = SfuConfig {
        udp_bind: "127.0.0.1:0".parse()?,
        tcp_bind: Some(TCP_ADDR.parse()?),
        tcp_limits: TcpLimits {
            max_per_address: PER_ADDRESS,
            first_stun: FIRST_STUN,
            // Small, so a stalled subscriber reaches the lossy queue within seconds.
            write_queue_bytes: 16 * 1024,
            socket_send_buffer: 4096,
            ..Default::default()
        },
        ..Default::default()
    };
    let (sfu, mut events) = Sfu::start(config)?;
    hostile_input().await?;
    // Let the hostile connections' slots free up.
    tokio::time::sleep(FIRST_STUN * 2).await;

    let room: Arc<str> = "ufficio-tributi".into();
    for who in ["anna", "bruno", "carla"] {
        sfu.join(room.clone(), who.into()).await?;
    }
    let mut anna = Client::new_tcp("anna-pub").await?;
    anna.add_track(true)?;
    let (sdp, mids) = anna.publish_offer()?;
    let answer = sfu.publish_offer(room.clone(), "anna".into(), sdp, mids).await?;
    check(answer.contains("tcptype passive"), &format!("no passive TCP candidate in the answer: {answer}"))?;
    anna.apply_answer(answer)?;
    let mut bruno = Client::new_tcp("bruno-sub").await?;
    let mut carla = Client::new_tcp("carla-sub").await?;
    carla.tcp_recv_buffer = Some(4096);

    let end = Instant::now() + Duration::from_secs(15);
    let mut ok = false;
    while Instant::now() < end {
        while let Ok(ev) = events.try_recv() {
            if let SfuEvent::SubscribeOffer { participant, sdp, .. } = ev {
                let client = match &*participant {
                    "bruno" => &mut bruno,
                    "carla" => &mut carla,
                    _ => continue,
                };
                let answer = client.answer(sdp)?;
                sfu.subscribe_answer(room.clone(), participant, answer).await?;
            }
        }
        pump(&mut [&mut anna, &mut bruno, &mut carla], Duration::from_millis(40), |_| false).await;
        if bruno.received("anna/anna/camera") > 30 && carla.received("anna/anna/camera") > 30 {
            ok = true;
            break;
        }
    }
    check(
        ok,
        &format!(
            "bruno did not receive anna's video over ICE-TCP: {:?} (anna connected: {}, bruno connected: {})",
            bruno.received,
            anna.connected(),
            bruno.connected()
        ),
    )?;
    check(!anna.tcp_closed() && !bruno.tcp_closed(), "the SFU closed a legitimate ICE-TCP connection")?;

    // Carla stops reading for 3 s: her socket and then her queue at the SFU fill; bruno must not notice.
    let key = "anna/anna/camera";
    let (bruno_before, carla_before) = (bruno.received(key), carla.received(key));
    pump(&mut [&mut anna, &mut bruno], Duration::from_secs(3), |_| false).await;
    let bruno_during = bruno.received(key) - bruno_before;
    check(bruno_during >= 60, &format!("bruno got {bruno_during} video packets in 3 s while carla stalled"))?;
    // She resumes: what was dropped for her stays dropped, fresh media flows again. Counted by distinct
    // sequence numbers: over TCP her NACKs of what the lossy queue dropped bring many duplicates.
    let seqs_at = |c: &Client| c.video_seqs.get(key).map_or(0, Vec::len);
    let resumed = seqs_at(&carla);
    pump(&mut [&mut anna, &mut bruno, &mut carla], Duration::from_secs(3), |_| false).await;
    let after: &[u16] = carla.video_seqs.get(key).map_or(&[], |s| &s[resumed..]);
    let distinct = after.iter().collect::<std::collections::BTreeSet<_>>().len();
    println!(
        "stall: bruno {bruno_during} video packets during carla's 3 s stall; carla {carla_before} before, \
         {} after ({distinct} distinct) in 3 s",
        after.len()
    );
    check(distinct >= 30, &format!("carla got {distinct} distinct video packets in 3 s after her stall"))?;
    check(!carla.tcp_closed(), "the SFU closed the stalled subscriber's connection")?;
    Ok(())
}
