//! One port for everything: nginx running `deploy/nginx-443.conf` (the `stream` front, `ssl_preread`)
//! in front of a real Sportello, a real coturn with TLS and Sportello's ICE-TCP listener, with UDP
//! dropped by nftables except coturn's relay ports (coturn ↔ SFU), so that the front's one TCP port
//! carries everything a citizen sends:
//! - (a) HTTPS with ALPN http/1.1 (and h2) through the front gets Sportello's page;
//! - (b) TCP-only sans-IO `rtc` clients publish and subscribe over ICE-TCP through the front: the
//!   SFU's answer names the front's port, and the subscriber gets video with keyframes;
//! - (c) a relay-only aiortc publisher (`tests/aiortc/turn_relay.py`) reaches coturn over `turns:`
//!   through the front (its certificate checked against the test's), and its video reaches the room;
//! - (d) bytes that are not TLS go to the SFU's ICE-TCP listener, which closes them — garbage at
//!   once, an unfinished frame at its first-STUN deadline — and nothing answers them (a web server
//!   would).
//!
//! Runs inside a loopback-only network namespace (own `main`, see `sportello_tests::netns`); coturn
//! and nginx are started here with their own pids, logs and ports and stopped by their PIDs.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sportello_rooms::turn::TurnSecret;
use sportello_tests::aiortc::RelayPublisher;
use sportello_tests::coturn::{Coturn, CoturnConfig};
use sportello_tests::netns::Firewall;
use sportello_tests::nginx::{FrontConfig, Nginx};
use sportello_tests::rtc_client::{Client, pump};
use sportello_tests::server::{Role, TestServer, WsClient};
use sportello_tests::tls::self_signed_cert;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::Command;

type Result<T> = std::result::Result<T, String>;

const SECRET: &str = "5a4b3c2d1e0f5a4b3c2d1e0f5a4b3c2d";
/// Below the kernel's ephemeral range (32768–60999), so no client socket can take them first.
const FRONT: u16 = 24430;
const PLAIN_HTTP: u16 = 24080;
const SITE: u16 = 24431;
const ICE_TCP: u16 = 24443;
/// coturn: TURN on UDP/TCP (dropped / unused), TLS behind the front; each also opens port + 1.
const TURN_PORT: u16 = 24478;
const TURN_TLS: u16 = 24349;
/// How long the relay-only publisher sends after its answer.
const SEND_SECONDS: u64 = 8;

fn main() {
    let _ = env_logger::try_init();
    sportello_tests::netns::run_scenario("front_443", scenario());
}

fn check(cond: bool, what: impl Into<String>) -> Result<()> {
    if cond { Ok(()) } else { Err(what.into()) }
}

async fn scenario() -> Result<()> {
    let certs = tempfile::tempdir().map_err(|e| e.to_string())?;
    let (cert, key) = self_signed_cert(certs.path(), &["sportello.test"])?;
    // Only coturn's relay ports may carry UDP (relay ↔ SFU): every citizen path is the front's TCP port.
    let firewall = Firewall::install(&[
        "udp sport 20000-20199 accept",
        "udp dport 20000-20199 accept",
        "meta l4proto udp counter drop",
    ])
    .map_err(|e| e.to_string())?;
    let coturn = Coturn::start(&CoturnConfig {
        tls: Some((TURN_TLS, cert.clone(), key.clone())),
        ..CoturnConfig::new(SECRET, TURN_PORT)
    })
    .await?;
    let server = TestServer::start_with(|c| {
        c.media_tcp_bind = Some(SocketAddr::from(([127, 0, 0, 1], ICE_TCP)));
        c.media_tcp_announced = Some(SocketAddr::from(([127, 0, 0, 1], FRONT)));
        c.turn_urls = vec![format!("turns:127.0.0.1:{FRONT}?transport=tcp")];
        c.turn_secret = TurnSecret::new(SECRET);
    })
    .await;
    let front = FrontConfig {
        front: FRONT,
        plain_http: PLAIN_HTTP,
        site: SITE,
        sportello: server.server.http_addr,
        coturn_tls: TURN_TLS,
        ice_tcp: ICE_TCP,
        cert: cert.clone(),
        key,
    };
    let nginx = match Nginx::start(&front).await {
        Ok(nginx) => nginx,
        Err(e) => {
            server.shutdown().await;
            return Err(e);
        }
    };
    let outcome = async {
        https_reaches_the_site(&cert).await?;
        ice_tcp_through_the_front(&server).await?;
        turn_tls_through_the_front(&server, &cert).await?;
        not_tls_goes_to_ice_tcp().await?;
        the_front_logged_each_path(&nginx).await
    }
    .await;
    println!("firewall: {} UDP datagrams dropped", firewall.dropped().unwrap_or(0));
    let logs = format!("{}\n--- coturn log ---\n{}", nginx.log_text(), coturn.log_text());
    drop(nginx);
    coturn.stop().await;
    server.shutdown().await;
    outcome.map_err(|e| format!("{e}\n{logs}"))
}

/// (a) curl (OpenSSL, certificate checked) through the front, with ALPN http/1.1 and then h2.
async fn https_reaches_the_site(cert: &std::path::Path) -> Result<()> {
    for (flag, version) in [("--http1.1", "1.1"), ("--http2", "2")] {
        let out = Command::new("curl")
            .args(["-sS", flag, "--max-time", "10", "-w", "\n%{http_version} %{http_code}"])
            .arg("--cacert")
            .arg(cert)
            .arg(format!("https://127.0.0.1:{FRONT}/"))
            .output()
            .await
            .map_err(|e| format!("cannot run curl: {e}"))?;
        let body = String::from_utf8_lossy(&out.stdout);
        check(out.status.success(), format!("curl {flag}: {}", String::from_utf8_lossy(&out.stderr)))?;
        check(body.ends_with(&format!("\n{version} 200")), format!("curl {flag}: not HTTP {version} 200: {body}"))?;
        check(
            body.contains("Uffici virtuali realizzati con Sportello"),
            format!("curl {flag}: not Sportello's page: {body}"),
        )?;
    }
    Ok(())
}

/// Waits for the server's `offer` on `ws` while pumping `clients` (a publisher must keep up ICE).
async fn offer_while_pumping(ws: &mut WsClient, clients: &mut [&mut Client]) -> Result<Value> {
    let end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end {
        pump(clients, Duration::from_millis(30), |_| false).await;
        if let Some(message) = ws.try_recv_json(Duration::from_millis(5)).await
            && message["type"] == "offer"
        {
            return Ok(message);
        }
    }
    Err("no subscribe offer within 10 s".into())
}

/// Video packets and keyframes `client` got from `publisher`'s tracks.
fn video_from(client: &Client, publisher: &str) -> (u64, u64) {
    let prefix = format!("{publisher}/");
    client
        .received
        .iter()
        .filter(|(k, _)| k.starts_with(&prefix))
        .fold((0, 0), |(p, f), (k, n)| (p + n, f + client.keyframes.get(k).copied().unwrap_or(0)))
}

/// The SFU's ICE-TCP candidates in `sdp` as (address, port).
fn tcp_candidates(sdp: &str) -> Vec<(String, String)> {
    sdp.lines()
        .filter(|l| l.starts_with("a=candidate") && l.contains("tcptype passive"))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some((f.get(4)?.to_string(), f.get(5)?.to_string()))
        })
        .collect()
}

/// Subscribes `viewer` for `official` (answers the next offer) while pumping `others`.
async fn subscribe(official: &mut WsClient, viewer: &mut Client, others: &mut [&mut Client]) -> Result<()> {
    let offer = offer_while_pumping(official, others).await?;
    let sdp = viewer.answer(offer["sdp"].as_str().unwrap_or_default().to_owned()).map_err(|e| e.to_string())?;
    official.send_json(&json!({"v": 1, "type": "answer", "pc": "subscribe", "sdp": sdp})).await;
    Ok(())
}

/// (b) ICE-TCP through the front, both ways.
async fn ice_tcp_through_the_front(server: &TestServer) -> Result<()> {
    let room = "tributi";
    let (mut official, _) = server.join(room, "official", Role::Host).await;
    let (mut citizen, _) = server.join(room, "citizen", Role::Participant).await;
    let mut publisher = Client::new_tcp("citizen-pub").await.map_err(|e| e.to_string())?;
    publisher.add_track(true).map_err(|e| e.to_string())?;
    let (sdp, mids) = publisher.offer().map_err(|e| e.to_string())?;
    let tracks: Vec<Value> = mids
        .iter()
        .map(|(mid, video)| json!({"mid": mid, "source": if *video { "camera" } else { "microphone" }}))
        .collect();
    citizen.send_json(&json!({"v": 1, "type": "offer", "pc": "publish", "sdp": sdp, "tracks": tracks})).await;
    let answer = citizen.recv_until("answer").await;
    let answer = answer["sdp"].as_str().ok_or("answer without sdp")?.to_owned();
    let candidates = tcp_candidates(&answer);
    check(
        !candidates.is_empty() && candidates.iter().all(|(ip, port)| ip == "127.0.0.1" && *port == FRONT.to_string()),
        format!("the SFU's TCP candidates are {candidates:?}, not the front's 127.0.0.1:{FRONT}: {answer}"),
    )?;
    publisher.apply_answer(answer).map_err(|e| e.to_string())?;

    let mut viewer = Client::new_tcp("official-sub").await.map_err(|e| e.to_string())?;
    subscribe(&mut official, &mut viewer, &mut [&mut publisher]).await?;
    let flowed = pump(
        &mut [&mut publisher, &mut viewer],
        Duration::from_secs(15),
        |cs| matches!(video_from(cs[1], "citizen"), (p, k) if p >= 50 && k >= 1),
    )
    .await;
    check(
        flowed,
        format!(
            "the official got too little of the citizen's video over ICE-TCP (packets, keyframes): {:?} \
             (publisher connected: {}, viewer connected: {})",
            video_from(&viewer, "citizen"),
            publisher.connected(),
            viewer.connected()
        ),
    )?;
    check(!publisher.tcp_closed() && !viewer.tcp_closed(), "an ICE-TCP connection through the front was closed")?;
    println!("ice-tcp: {:?} (video packets, keyframes) through the front", video_from(&viewer, "citizen"));
    publisher.close();
    viewer.close();
    citizen.leave().await;
    official.leave().await;
    Ok(())
}

/// (c) TURN over TLS through the front: relay-only aiortc publishes, a TCP-only viewer receives.
async fn turn_tls_through_the_front(server: &TestServer, cert: &std::path::Path) -> Result<()> {
    let room = "anagrafe";
    let (mut official, _) = server.join(room, "official", Role::Host).await;
    let (mut citizen, welcome) = server.join(room, "visitor", Role::Participant).await;
    let turns = welcome["ice_servers"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["urls"][0].as_str().is_some_and(|u| u.starts_with("turns:"))))
        .cloned()
        .ok_or_else(|| format!("the welcome has no turns: server: {welcome}"))?;
    let (mut publisher, offer) = RelayPublisher::start(&json!([turns]), SEND_SECONDS, Some(cert)).await?;
    let relays = &offer["relay_candidates"];
    check(relays.as_u64() > Some(0), format!("coturn allocated no relay over turns: ({relays} relay candidates)"))?;
    citizen
        .send_json(&json!({
            "v": 1, "type": "offer", "pc": "publish", "sdp": offer["offer"],
            "tracks": [{ "mid": offer["mid"], "source": "camera" }]
        }))
        .await;
    let answer = citizen.recv_until("answer").await;
    publisher.answer(answer["sdp"].as_str().ok_or("answer without sdp")?).await?;

    let mut viewer = Client::new_tcp("official-sub2").await.map_err(|e| e.to_string())?;
    subscribe(&mut official, &mut viewer, &mut []).await?;
    let flowed = pump(
        &mut [&mut viewer],
        Duration::from_secs(SEND_SECONDS),
        |cs| matches!(video_from(cs[0], "visitor"), (p, k) if p >= 50 && k >= 1),
    )
    .await;
    publisher.relayed().await?;
    check(
        flowed,
        format!(
            "the official got too little of the relayed video (packets, keyframes): {:?}",
            video_from(&viewer, "visitor")
        ),
    )?;
    println!("turns: {:?} (video packets, keyframes) relayed through the front", video_from(&viewer, "visitor"));
    viewer.close();
    citizen.leave().await;
    official.leave().await;
    Ok(())
}

/// What a connection got before the other side closed it, or `None` if still open after `within`.
async fn read_until_closed(s: &mut TcpStream, within: Duration) -> Option<Vec<u8>> {
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    let end = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(end, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(got),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => return None,
        }
    }
}

/// (d) Not TLS: to ICE-TCP, whose listener closes it without a word.
async fn not_tls_goes_to_ice_tcp() -> Result<()> {
    // Plain HTTP on the front: a web server would answer 400; the SFU's listener closes it (not
    // RFC 4571 STUN).
    let mut garbage = TcpStream::connect(("127.0.0.1", FRONT)).await.map_err(|e| e.to_string())?;
    garbage.write_all(b"GET / HTTP/1.1\r\nHost: sportello.test\r\n\r\n").await.map_err(|e| e.to_string())?;
    match read_until_closed(&mut garbage, Duration::from_secs(10)).await {
        Some(got) => {
            check(got.is_empty(), format!("plain HTTP on the front was answered: {:?}", String::from_utf8_lossy(&got)))?
        }
        None => return Err("plain HTTP on the front stayed open".into()),
    }
    // The start of a STUN binding request (a 20-byte frame, 3 bytes of it): not TLS (nginx decides on
    // the first 5 bytes), so it goes to ICE-TCP at once; the listener waits for the rest and closes
    // the connection at its first-STUN deadline (5 s), with nothing sent.
    let mut partial = TcpStream::connect(("127.0.0.1", FRONT)).await.map_err(|e| e.to_string())?;
    partial.write_all(&[0x00, 0x14, 0x00, 0x01, 0x00]).await.map_err(|e| e.to_string())?;
    check(
        read_until_closed(&mut partial, Duration::from_secs(1)).await.is_none(),
        "an unfinished frame was closed at once, not at the first-STUN deadline",
    )?;
    match read_until_closed(&mut partial, Duration::from_secs(15)).await {
        Some(got) => check(got.is_empty(), format!("an unfinished frame was answered: {got:?}"))?,
        None => return Err("an unfinished frame outlived the first-STUN deadline".into()),
    }
    Ok(())
}

/// The front's own record: each path went to the upstream the map chose (nginx writes a line when
/// a connection ends).
async fn the_front_logged_each_path(nginx: &Nginx) -> Result<()> {
    let wanted = [
        ("HTTPS (ALPN http/1.1) to the site", format!("alpn=\"http/1.1\" upstream=127.0.0.1:{SITE} ")),
        ("HTTPS (ALPN h2) to the site", format!("alpn=\"h2,http/1.1\" upstream=127.0.0.1:{SITE} ")),
        ("TLS without ALPN to coturn", format!("alpn=\"\" upstream=127.0.0.1:{TURN_TLS} ")),
        ("not TLS to ICE-TCP", format!("tls=\"-\" alpn=\"-\" upstream=127.0.0.1:{ICE_TCP} ")),
    ];
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let log = nginx.access_log();
        let missing: Vec<&str> = wanted.iter().filter(|(_, l)| !log.contains(l.as_str())).map(|(w, _)| *w).collect();
        if missing.is_empty() {
            return Ok(());
        }
        if Instant::now() > end {
            return Err(format!("the front's log has no line for: {missing:?}"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
