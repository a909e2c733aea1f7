//! Scenarios `network_paths` and `live_paths`: every citizen gets in, whatever their network lets
//! through (issue 13). A real coturn (TURN over UDP, and over TLS on 443) and the SFU's ICE-TCP
//! listener run beside the server; nftables rules in the test's namespace (both hooks, so both
//! directions) play the citizen's network. For each case the browsers join afresh, must decode
//! each other's camera, and `getStats()`'s selected candidate pair must be the expected path:
//! (a) open → UDP; (b) only the SFU's UDP port open → UDP; (c) UDP blocked → ICE-TCP;
//! (d) only TCP 443 → TURN over TLS through coturn. `live_paths`: a WHEP viewer of a council
//! stream under (c) and (d). Case (e), nothing allowed, is the network check's (`network_check`,
//! `e2e/netcheck.rs`, which shares this file's coturn, server configuration and firewall helpers).
//!
//! On one loopback, "only 443" is played as: every UDP datagram dropped except coturn's relay leg
//! to the SFU (its relay ports, 20000–20199, which no browser socket uses), and TCP to the SFU's
//! ICE-TCP port and to coturn's plain port dropped. The page and WebDriver stay on their ports.
//! Join → first frame per path is printed for BENCHMARKS.md (not asserted).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sportello_rooms::turn::TurnSecret;
use sportello_tests::browser::{Browser, Result, err};
use sportello_tests::coturn::{Coturn, CoturnConfig, self_signed_cert};
use sportello_tests::netns::Firewall;
use sportello_tests::server::{Role, TestServer};

use super::{Ctx, MEDIA_TIMEOUT, app, media_condition, wait_camera_progress};

const ROOM: &str = "sportello-rete";
pub(super) const SECRET: &str = "7e6d5c4b3a29180f7e6d5c4b3a291800";
pub(super) const TURN_PORT: u16 = 3478;
/// TURN over TLS on 443, as `deploy/coturn.conf` (coturn also opens 444 as its "alt" TLS port).
pub(super) const TURNS_PORT: u16 = 443;
pub(super) const ICE_TCP: &str = "127.0.0.1:4443";
pub(super) const RELAY_PORTS: &str = "20000-20199";

/// One network a citizen may be on.
struct Case {
    name: &'static str,
    /// nftables rules (both directions); none: an open network.
    rules: Vec<String>,
    /// `pathKind` of the selected pair (shared/ice.js): `udp`, `tcp` or `relay-tls`.
    path: &'static str,
}

fn cases(sfu_udp: u16) -> Vec<Case> {
    let ice_tcp_port = ICE_TCP.rsplit(':').next().unwrap_or_default();
    let only_443 = vec![
        format!("udp sport {RELAY_PORTS} accept"),
        format!("udp dport {RELAY_PORTS} accept"),
        "meta l4proto udp counter drop".to_owned(),
        format!("tcp dport {{ {ice_tcp_port}, {TURN_PORT} }} counter drop"),
    ];
    vec![
        Case { name: "(a) open network", rules: vec![], path: "udp" },
        Case {
            name: "(b) only the SFU's UDP port open",
            rules: vec![format!("meta l4proto udp udp sport != {sfu_udp} udp dport != {sfu_udp} counter drop")],
            path: "udp",
        },
        Case { name: "(c) UDP blocked", rules: vec!["meta l4proto udp counter drop".to_owned()], path: "tcp" },
        Case { name: "(d) only TCP 443", rules: only_443, path: "relay-tls" },
    ]
}

pub(super) fn firewall(rules: &[String]) -> Result<Option<Firewall>> {
    if rules.is_empty() {
        return Ok(None);
    }
    let rules: Vec<&str> = rules.iter().map(String::as_str).collect();
    Firewall::install(&rules).map(Some).map_err(|e| err(e.to_string()))
}

/// coturn with TURN over UDP and over TLS (a self-signed certificate: Chromium runs with
/// `--ignore-certificate-errors`), and the server configuration that hands it out.
pub(super) async fn coturn(dir: &std::path::Path) -> Result<Coturn> {
    let (cert, key) = self_signed_cert(dir, &["turn.sportello.test"]).map_err(err)?;
    let mut config = CoturnConfig::new(SECRET, TURN_PORT);
    config.tls = Some((TURNS_PORT, cert, key));
    Coturn::start(&config).await.map_err(err)
}

pub(super) fn reach(c: &mut sportello_server::Config) -> Result<(), String> {
    c.media_tcp_bind = Some(ICE_TCP.parse::<SocketAddr>().map_err(|e| e.to_string())?);
    c.turn_urls = vec![
        format!("turn:127.0.0.1:{TURN_PORT}?transport=udp"),
        format!("turns:127.0.0.1:{TURNS_PORT}?transport=tcp"),
    ];
    c.turn_secret = TurnSecret::new(SECRET);
    Ok(())
}

const CHROMIUM_EXTRA: &[&str] = &["--ignore-certificate-errors"];

pub(super) fn extra() -> Vec<String> {
    CHROMIUM_EXTRA.iter().map(|s| s.to_string()).collect()
}

/// The path kind of both peer connections of a room page (`window.sportello.paths()`).
pub(super) async fn room_paths(b: &Browser) -> Result<(String, String)> {
    let v: serde_json::Value = b
        .eval_async(
            "import('/web/shared/ice.js').then(async m => { const p = await window.sportello.paths(); \
               return { publish: m.pathKind(p.publish), subscribe: m.pathKind(p.subscribe), raw: p }; })",
        )
        .await?;
    let kind = |k: &str| v[k].as_str().unwrap_or("none").to_owned();
    let (p, s) = (kind("publish"), kind("subscribe"));
    println!("    [{}] publish {p}, subscribe {s}: {}", b.label(), v["raw"]);
    Ok((p, s))
}

async fn close_browsers(ctx: &mut Ctx) {
    for b in ctx.browsers.drain(..) {
        let _ = tokio::time::timeout(Duration::from_secs(10), b.close()).await;
    }
}

pub async fn network_paths(ctx: &mut Ctx) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let coturn = coturn(dir.path()).await?;
    let mut bad = None;
    let server = app::App::start_with(|c| bad = reach(c).err()).await?;
    if let Some(why) = bad {
        return Err(err(why));
    }
    let sfu_udp = server.media_addr().port();
    let urls =
        [("anna", server.join_url(ROOM, "anna", "host")), ("bruno", server.join_url(ROOM, "bruno", "participant"))];
    ctx.server = Some(server);
    let outcome = async {
        let mut timings = Vec::new();
        for case in cases(sfu_udp) {
            println!("  {}", case.name);
            let fw = firewall(&case.rules)?;
            for (id, url) in &urls {
                ctx.open_with(id, url, &extra()).await?;
            }
            let [anna, bruno] = [&ctx.browsers[0], &ctx.browsers[1]];
            let t0 = Instant::now();
            tokio::try_join!(super::join(anna), super::join(bruno))?;
            let (sees_bruno, sees_anna) =
                (media_condition(&["bruno/camera"], &[]), media_condition(&["anna/camera"], &[]));
            tokio::try_join!(anna.wait_for(&sees_bruno, MEDIA_TIMEOUT), bruno.wait_for(&sees_anna, MEDIA_TIMEOUT))
                .map_err(|e| err(format!("{}: {e}", case.name)))?;
            let first_frame = t0.elapsed();
            tokio::try_join!(
                wait_camera_progress(anna, "bruno", 30, MEDIA_TIMEOUT),
                wait_camera_progress(bruno, "anna", 30, MEDIA_TIMEOUT),
            )?;
            for b in [anna, bruno] {
                let (p, s) = room_paths(b).await?;
                if p != case.path || s != case.path {
                    return Err(err(format!(
                        "{}: [{}] publishes over {p} and receives over {s}, expected {}",
                        case.name,
                        b.label(),
                        case.path
                    )));
                }
            }
            if let Some(fw) = &fw {
                let dropped = fw.dropped().map_err(|e| err(e.to_string()))?;
                if dropped == 0 {
                    return Err(err(format!("{}: the rules dropped nothing: the case was not played", case.name)));
                }
            }
            println!("    both decode each other over {} (join → first frames both ways {:?})", case.path, first_frame);
            timings.push((case.path, first_frame));
            close_browsers(ctx).await;
            drop(fw);
        }
        let udp = timings.first().map(|(_, t)| t.as_secs_f64()).unwrap_or(1.0);
        let line: Vec<String> = timings
            .iter()
            .map(|(path, t)| format!("{path} {:.0} ms ({:.2}×)", t.as_secs_f64() * 1000.0, t.as_secs_f64() / udp))
            .collect();
        println!("  join → first frame both ways: {}", line.join(", "));
        Ok(())
    }
    .await;
    let log = coturn.log_text();
    coturn.stop().await;
    outcome.map_err(|e: sportello_tests::browser::Error| {
        err(format!("{e}\n--- coturn log (tail) ---\n{}", tail(&log, 40)))
    })
}

pub(super) fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A council stream's public viewer (WHEP, `/live/<id>`) under (c) and (d): the chair joins the
/// room under the same network (the program feed is the chair's camera), the viewer decodes it.
pub async fn live_paths(ctx: &mut Ctx) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let coturn = coturn(dir.path()).await?;
    let mut bad = None;
    let server = TestServer::start_with(|c| bad = reach(c).err()).await;
    if let Some(why) = bad {
        return Err(err(why));
    }
    let outcome = async {
        let seeded = server
            .seed_council(&["Anna"], &["Bilancio"])
            .await
            .map_err(|e| err(format!("seeding the store: {e}")))?;
        let live_url = format!("{}/live/{}", server.url(), seeded.session.id);
        let chair_url = seeded.link(&server, &seeded.chair, Role::Host);
        let sfu_udp = server.server.sfu.local_addr().port();
        for case in cases(sfu_udp).into_iter().filter(|c| c.path != "udp") {
            println!("  viewer, {}", case.name);
            let fw = firewall(&case.rules)?;
            let chair = ctx.open_with("chair", &chair_url, &extra()).await?;
            super::join(&ctx.browsers[chair]).await?;
            let viewer = ctx.open_with("viewer", &live_url, &extra()).await?;
            let viewer = &ctx.browsers[viewer];
            viewer
                .wait_for(
                    "window.sportello.live.status() === 'live' && window.sportello.live.framesDecoded().then(n => n > 10)",
                    MEDIA_TIMEOUT,
                )
                .await
                .map_err(|e| err(format!("{}: the viewer decodes no program: {e}", case.name)))?;
            let path: serde_json::Value = viewer
                .eval_async(
                    "import('/web/shared/ice.js').then(async m => { const p = await window.sportello.live.path(); \
                       return { kind: m.pathKind(p), raw: p }; })",
                )
                .await?;
            println!("    the viewer decodes the program over {}: {}", path["kind"], path["raw"]);
            if path["kind"] != case.path {
                return Err(err(format!("{}: the viewer's path is {}, expected {}", case.name, path["kind"], case.path)));
            }
            close_browsers(ctx).await;
            drop(fw);
        }
        Ok(())
    }
    .await;
    let log = coturn.log_text();
    coturn.stop().await;
    let _ = tokio::time::timeout(Duration::from_secs(10), server.shutdown()).await;
    outcome.map_err(|e: sportello_tests::browser::Error| {
        err(format!("{e}\n--- coturn log (tail) ---\n{}", tail(&log, 40)))
    })
}
