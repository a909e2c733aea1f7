//! Scenarios `network_paths` and `live_paths`: every citizen gets in, whatever their network lets
//! through (issue 13). A real coturn (TURN over UDP, and over TLS on 443) and the SFU's ICE-TCP
//! listener run beside the server; nftables rules in the test's namespace (both hooks, so both
//! directions) play the citizen's network. For each case the browsers join afresh, must decode
//! each other's camera, and `getStats()`'s selected candidate pair must be the expected path:
//! (a) open → UDP; (b) only the SFU's UDP port open → UDP; (c) UDP blocked → ICE-TCP;
//! (d) only TCP 443 → TURN over TLS through coturn. On (a) each camera's uplink estimate must also
//! climb past 600 kbit/s: the SFU's transport-cc feedback reaches the browser. `live_paths`: a WHEP viewer of a council
//! stream under (c) and (d). Case (e), nothing allowed, is the network check's (`network_check`).
//!
//! On one loopback, "only 443" is played as: every UDP datagram dropped except coturn's relay leg
//! to the SFU (its relay ports, 20000–20199, which no browser socket uses), and TCP to the SFU's
//! ICE-TCP port and to coturn's plain port dropped. The page and WebDriver stay on their ports.
//! Join → first frame per path is printed for BENCHMARKS.md (not asserted).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sportello_rooms::turn::TurnSecret;
use sportello_tests::browser::{Browser, Result, err};
use sportello_tests::coturn::{Coturn, CoturnConfig};
use sportello_tests::netns::Firewall;
use sportello_tests::server::{Role, TestServer};
use sportello_tests::tls::self_signed_cert;

use super::{Ctx, MEDIA_TIMEOUT, app, media_condition, wait_camera_progress};

const ROOM: &str = "sportello-rete";
const SECRET: &str = "7e6d5c4b3a29180f7e6d5c4b3a291800";
pub(super) const TURN_PORT: u16 = 3478;
/// TURN over TLS on 443, as `deploy/coturn.conf` (coturn also opens 444 as its "alt" TLS port).
pub(super) const TURNS_PORT: u16 = 443;
pub(super) const ICE_TCP: &str = "127.0.0.1:4453";
const FRONT_ICE_TCP: &str = "127.0.0.1:4463";
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
            // Not `udp sport != P udp dport != P drop`: nft merges the two adjacent header fields
            // into one comparison, which then means "not both equal" and drops everything.
            rules: vec![
                format!("udp sport {sfu_udp} accept"),
                format!("udp dport {sfu_udp} accept"),
                "meta l4proto udp counter drop".to_owned(),
            ],
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
async fn coturn(dir: &std::path::Path) -> Result<Coturn> {
    let (cert, key) = self_signed_cert(dir, &["turn.sportello.test"]).map_err(err)?;
    let mut config = CoturnConfig::new(SECRET, TURN_PORT);
    config.tls = Some((TURNS_PORT, cert, key));
    Coturn::start(&config).await.map_err(err)
}

fn reach(c: &mut sportello_server::Config) -> Result<(), String> {
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

/// Every candidate pair of the publish connection with its state (for a failure message).
const PAIRS: &str = "window.sportello.pcs.publish.getStats().then(r => { const out = []; r.forEach(s => { \
    if (s.type !== 'candidate-pair') return; const l = r.get(s.localCandidateId), m = r.get(s.remoteCandidateId); \
    out.push(`${l?.candidateType}/${l?.protocol}/${l?.relayProtocol ?? '-'}:${l?.port} -> ${m?.protocol}:${m?.port} \
    ${s.state} nominated=${s.nominated} req=${s.requestsSent} resp=${s.responsesReceived}`); }); return out; })";

async fn close_browsers(ctx: &mut Ctx) {
    for b in ctx.browsers.drain(..) {
        let _ = tokio::time::timeout(Duration::from_secs(10), b.close()).await;
    }
}

/// Both click «Entra» at once and decode each other's camera; returns how long that took from
/// the click — the lobby's network check, which runs before it (seconds where UDP is blocked: it
/// waits out the UDP probe), is not part of the join.
async fn join_both(anna: &Browser, bruno: &Browser) -> Result<Duration> {
    tokio::try_join!(super::netcheck_spoken(anna), super::netcheck_spoken(bruno))?;
    let t0 = Instant::now();
    tokio::try_join!(super::join(anna), super::join(bruno))?;
    let (anna_sees, bruno_sees) = (media_condition(&["bruno/camera"], &[]), media_condition(&["anna/camera"], &[]));
    tokio::try_join!(anna.wait_for(&anna_sees, MEDIA_TIMEOUT), bruno.wait_for(&bruno_sees, MEDIA_TIMEOUT))?;
    Ok(t0.elapsed())
}

/// Not one lucky keyframe: 30 more frames of the other's camera on each side.
async fn keep_decoding(anna: &Browser, bruno: &Browser) -> Result<()> {
    tokio::try_join!(
        wait_camera_progress(anna, "bruno", 30, MEDIA_TIMEOUT),
        wait_camera_progress(bruno, "anna", 30, MEDIA_TIMEOUT),
    )?;
    Ok(())
}

/// coturn, and a server that hands it out with ICE-TCP on ([`reach`]).
pub(super) async fn reachable_server(dir: &std::path::Path) -> Result<(Coturn, app::App)> {
    let coturn = coturn(dir).await?;
    let mut bad = None;
    let server = app::App::start_with(|c| bad = reach(c).err()).await?;
    match bad {
        Some(why) => Err(err(why)),
        None => Ok((coturn, server)),
    }
}

pub async fn network_paths(ctx: &mut Ctx) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (coturn, server) = reachable_server(dir.path()).await?;
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
            let first_frame = join_both(anna, bruno).await.map_err(|e| err(format!("{}: {e}", case.name)))?;
            keep_decoding(anna, bruno).await?;
            for b in [anna, bruno] {
                // What the citizen reads in the status line.
                b.wait_for(&status_says(status_words(case.path)), MEDIA_TIMEOUT)
                    .await
                    .map_err(|e| err(format!("{}: [{}] status line: {e}", case.name, b.label())))?;
                let (p, s) = room_paths(b).await?;
                if p != case.path || s != case.path {
                    let pairs: serde_json::Value = b.eval_async(PAIRS).await.unwrap_or_default();
                    return Err(err(format!(
                        "{}: [{}] publishes over {p} and receives over {s}, expected {}; candidate pairs: {pairs:#}",
                        case.name,
                        b.label(),
                        case.path
                    )));
                }
            }
            if case.rules.is_empty() {
                // On an open network each camera's uplink estimate climbs from Chromium's start
                // (300 kbit/s) as the SFU's transport-cc feedback comes back, probes included.
                for b in [anna, bruno] {
                    let (ok, u) = super::wait_uplink(b, UPLINK_WAIT, |u| u.estimate > UPLINK_FLOOR).await?;
                    println!("    [{}] uplink estimate {:.0} kbit/s", b.label(), u.estimate / 1000.0);
                    if !ok {
                        return Err(err(format!(
                            "{}: [{}] the uplink estimate is {:.0} kbit/s (Chromium starts at 300): no transport-cc feedback from the SFU? {u:?}",
                            case.name,
                            b.label(),
                            u.estimate / 1000.0
                        )));
                    }
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
        ladder(ctx, &urls).await?;
        let udp = timings.first().map(|(_, t)| t.as_secs_f64()).unwrap_or(1.0);
        let line: Vec<String> = timings
            .iter()
            .map(|(path, t)| format!("{path} {:.0} ms ({:.2}×)", t.as_secs_f64() * 1000.0, t.as_secs_f64() / udp))
            .collect();
        println!("  join → first frame both ways: {}", line.join(", "));
        Ok(())
    }
    .await;
    stop_coturn(coturn, outcome).await
}

/// How long a camera's uplink estimate gets to pass [`UPLINK_FLOOR`]: Chromium probes at twice
/// and six times its start within the first seconds when feedback answers.
const UPLINK_WAIT: Duration = Duration::from_secs(15);
/// Twice Chromium's start estimate (300 kbit/s); without transport-cc feedback from the SFU the
/// estimate fell below the start instead (83 kbit/s when the engine's recorder was left out).
const UPLINK_FLOOR: f64 = 600_000.0;

/// The status line's words for a path (web/room/strings.js).
fn status_words(path: &str) -> &'static str {
    match path {
        "tcp" => "percorso di riserva (TCP)",
        "udp" => "Connesso",
        _ => "server di inoltro cifrato",
    }
}

fn status_says(words: &str) -> String {
    format!("document.getElementById('status').textContent.includes({words:?})")
}

/// In a call on UDP, the network closes to TCP 443 only: the connections stay disconnected, after
/// 10 s the page climbs the ladder (says so), rejoins through the relay over TLS and the call goes on.
async fn ladder(ctx: &mut Ctx, urls: &[(&str, String); 2]) -> Result<()> {
    println!("  (a) → (d) during the call");
    for (id, url) in urls {
        ctx.open_with(id, url, &extra()).await?;
    }
    let [anna, bruno] = [&ctx.browsers[0], &ctx.browsers[1]];
    join_both(anna, bruno).await?;
    let only_443 = cases(0).pop().map(|c| c.rules).unwrap_or_default();
    let fw = firewall(&only_443)?;
    let retrying = status_says("nuovo tentativo attraverso il server di inoltro cifrato");
    tokio::try_join!(anna.wait_for(&retrying, MEDIA_TIMEOUT), bruno.wait_for(&retrying, MEDIA_TIMEOUT))
        .map_err(|e| err(format!("the page never said it tries the relay: {e}")))?;
    println!("    both say the direct connection does not work and try the relay");
    let relayed = status_says(status_words("relay-tls"));
    tokio::try_join!(anna.wait_for(&relayed, MEDIA_TIMEOUT), bruno.wait_for(&relayed, MEDIA_TIMEOUT))?;
    keep_decoding(anna, bruno).await?;
    for b in [anna, bruno] {
        let (p, s) = room_paths(b).await?;
        let policy: String = b.eval("window.sportello.ladder.policy").await?;
        if p != "relay-tls" || s != "relay-tls" || policy != "relay" {
            return Err(err(format!("[{}] after the ladder: publish {p}, subscribe {s}, policy {policy}", b.label())));
        }
    }
    println!("    the call goes on through the relay over TLS (policy relay)");
    close_browsers(ctx).await;
    drop(fw);
    Ok(())
}

/// Stops coturn after a scenario; a failure carries the tail of its log.
pub(super) async fn stop_coturn(coturn: Coturn, outcome: Result<()>) -> Result<()> {
    let log = coturn.log_text();
    coturn.stop().await;
    outcome.map_err(|e| err(format!("{e}\n--- coturn log (tail) ---\n{}", tail(&log, 40))))
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Behind `deploy/nginx-443.conf` (the production front, rendered by `tests/src/nginx.rs`): the page
/// comes over HTTPS on 443, the SFU announces its ICE-TCP candidate as 443 and TURN is `turns:` on
/// 443 — so with every UDP datagram dropped but the relay leg, port 443 is all the browser knows
/// over TCP: (d) through the front. The page and the Chromium participants' call both cross the
/// front, the call over TURN/TLS (nginx → coturn): Chromium 156 opened no ICE-TCP connection to a
/// candidate on 443 here (it did on other ports: `deploy/README.md`). A Firefox participant joins
/// the same call over ICE-TCP through the front (nginx → the SFU's listener).
pub async fn front_paths(ctx: &mut Ctx) -> Result<()> {
    use sportello_tests::nginx::{FrontConfig, Nginx};
    const FRONT: u16 = 443;
    const COTURN_TLS: u16 = 5349;
    let dir = tempfile::tempdir()?;
    let (cert, key) = self_signed_cert(dir.path(), &["sportello.test"]).map_err(err)?;
    let mut turn = CoturnConfig::new(SECRET, TURN_PORT);
    turn.tls = Some((COTURN_TLS, cert.clone(), key.clone()));
    let coturn = Coturn::start(&turn).await.map_err(err)?;
    let mut bad = None;
    let server = app::App::start_with(|c| {
        bad = reach(c).err();
        c.media_tcp_announced = Some(SocketAddr::from(([127, 0, 0, 1], FRONT)));
        c.turn_urls[1] = format!("turns:127.0.0.1:{FRONT}?transport=tcp");
        c.media_tcp_per_ip = 400;
        c.media_tcp_bind = FRONT_ICE_TCP.parse().ok();
        c.public_url = format!("https://127.0.0.1:{FRONT}");
        // UDP GSO was off by default for a while because this scenario failed with it on; the
        // cause was rtc-ice leaving Firefox's early ICE-TCP nomination unanswered
        // (vendor/rtc-ice/PATCH.md). `E2E_MEDIA_UDP_GSO=false` runs it with GSO off, to compare.
        if let Ok(v) = std::env::var("E2E_MEDIA_UDP_GSO") {
            c.media_udp_gso = v != "false";
        }
    })
    .await?;
    if let Some(why) = bad {
        return Err(err(why));
    }
    let ice_tcp: u16 = FRONT_ICE_TCP.rsplit(':').next().and_then(|p| p.parse().ok()).unwrap_or_default();
    let front = FrontConfig {
        front: FRONT,
        // Fixed, below the ephemeral range: two `free_port()`s may return the same port.
        plain_http: 24180,
        site: 24531,
        sportello: server.http_addr(),
        coturn_tls: COTURN_TLS,
        ice_tcp,
        cert,
        key,
    };
    // Through the front: `https://127.0.0.1/join?t=…` (443 is the scheme's port).
    let urls = [("anna", "host"), ("bruno", "participant")].map(|(id, role)| {
        (
            id,
            server.join_url(ROOM, id, role).replacen(
                &format!("http://{}", server.http_addr()),
                &format!("https://127.0.0.1:{FRONT}"),
                1,
            ),
        )
    });
    // Firefox (no way to accept a self-signed page certificate in this harness) loads the page
    // from Sportello itself; its media has the same ways as the others'.
    let felice = server.join_url(ROOM, "felice", "participant");
    ctx.server = Some(server);
    let nginx = Nginx::start(&front).await.map_err(err)?;
    let outcome = async {
        let rules = [
            format!("udp sport {RELAY_PORTS} accept"),
            format!("udp dport {RELAY_PORTS} accept"),
            "meta l4proto udp counter drop".to_owned(),
        ];
        let _only_443 = firewall(&rules)?;
        for (id, url) in &urls {
            ctx.open_with(id, url, &extra()).await?;
        }
        let [anna, bruno] = [&ctx.browsers[0], &ctx.browsers[1]];
        join_both(anna, bruno).await?;
        keep_decoding(anna, bruno).await?;
        for b in [anna, bruno] {
            let (p, s) = room_paths(b).await?;
            if p != "relay-tls" || s != "relay-tls" {
                let pairs: serde_json::Value = b.eval_async(PAIRS).await.unwrap_or_default();
                return Err(err(format!(
                    "[{}] publish {p}, subscribe {s}: not TURN/TLS through the front; pairs {pairs:#}",
                    b.label()
                )));
            }
            b.wait_for(&status_says(status_words("relay-tls")), MEDIA_TIMEOUT).await?;
        }
        // The browsers' one `turns:` URL is the front's 443 (coturn listens on 5349 only): a relay
        // over TLS can only have come through the front.
        println!("  the page over HTTPS and the call over TURN/TLS, both through the front on 443");
        let fx = ctx.open_firefox("felice", &felice).await?;
        let fx = &ctx.browsers[fx];
        super::join(fx).await?;
        fx.wait_for(&media_condition(&["anna/camera", "bruno/camera"], &[]), MEDIA_TIMEOUT).await?;
        let sees_felice = media_condition(&["felice/camera"], &[]);
        let [anna, bruno] = [&ctx.browsers[0], &ctx.browsers[1]];
        tokio::try_join!(anna.wait_for(&sees_felice, MEDIA_TIMEOUT), bruno.wait_for(&sees_felice, MEDIA_TIMEOUT))?;
        let (p, s) = room_paths(fx).await?;
        let port: u16 = fx.eval_async("window.sportello.paths().then(p => p.publish.remote.port)").await?;
        if p != "tcp" || s != "tcp" || port != FRONT {
            return Err(err(format!(
                "[felice] publish {p}, subscribe {s} to port {port}: not ICE-TCP through the front"
            )));
        }
        println!("  Firefox joins over ICE-TCP through the same front on 443; all three decode each other");
        Ok(())
    }
    .await;
    let nginx_log = nginx.log_text();
    drop(nginx);
    let outcome = outcome.map_err(|e| err(format!("{e}\n--- nginx ---\n{}", tail(&nginx_log, 30))));
    stop_coturn(coturn, outcome).await
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
            // On its first offer: the TURN servers came from the endpoint's `OPTIONS`, not from a
            // failed attempt's `201` (the ladder did not have to climb).
            let step: u64 = viewer.eval("window.sportello.live.ladder()").await?;
            if step != 0 {
                return Err(err(format!("{}: the viewer got in only on ladder step {step}", case.name)));
            }
            close_browsers(ctx).await;
            drop(fw);
        }
        Ok(())
    }
    .await;
    let _ = tokio::time::timeout(Duration::from_secs(10), server.shutdown()).await;
    stop_coturn(coturn, outcome).await
}
