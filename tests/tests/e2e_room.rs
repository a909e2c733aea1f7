//! End-to-end: real headless Chromium (and, in `firefox_paths` and `firefox_journey`, Firefox ESR)
//! participants in a real room, inside a loopback-only network namespace, asserting what users see
//! (through the web client's `window.sportello` hooks).
//!
//! A `harness = false` binary: `main` first re-executes itself inside the namespace
//! ([`netns::ensure_loopback_namespace`]), then runs the scenarios one after the other and prints
//! `N passed, 0 failed` (CI reads that line). Pass a substring to run only matching scenarios:
//! `cargo test -p sportello-tests --test e2e_room -- smoke`.
//!
//! Scenarios:
//! - `environment_smoke`: Chromium through chromedriver gets fake camera + microphone, and a loopback
//!   peer connection inside one page decodes video. Tells a broken machine from a broken product.
//! - `room_three_participants`: the acceptance scenario (join, media both ways with no packet the
//!   browsers count as lost, the one participant making sound highlighted as the active speaker on
//!   every page, screen share, leave, reconnection without a duplicate tile, everything released).
//! - `office_appointment` (`e2e/office.rs`): a citizen books through the pages, opens the emailed
//!   link, waits; the official logs in, admits, both see each other, a PDF and a chat message cross.
//! - `calendar_month` (`e2e/calendar.rs`): an official edits their working pattern and an absence on
//!   `/staff/calendario` and the month grid shows remote, absent and holiday days.
//! - `council_session` (`e2e/council.rs`): a chaired council session — floor, roll call, votes.
//! - `council_live` (`e2e/live.rs`): the public side — a viewer's program follows the floor, votes,
//!   the slate while suspended, the archived recording with its gap.
//! - `citizen_pages` (`e2e/citizen.rs`): the booking and manage pages by keyboard — focus on every
//!   step and panel, the day-then-time slot picker, errors, reflow at 320 px, the paste field, the
//!   404 page — with axe-core on every page.
//! - `staff_pages` (`e2e/staff.rs`): the staff pages on a 390 px phone — the waiting item in words,
//!   no sideways scroll, «Fai entrare e apri la stanza», the pattern editor's start and its warning
//!   of lost bookable times, a new office in the service form, a new colleague's setup page.
//! - `english_pages` (`e2e/english.rs`): `/prenota` switched to English has an English title and
//!   breadcrumb label, and shows the server's error (slot taken meanwhile) in English; the choice
//!   holds on the home page, on «My bookings» (axe-core in English) and the server-rendered
//!   archive, whose own switch is remembered.
//! - `call_under_loss` (`e2e/loss.rs`): a two-party call with 5 % random UDP loss each way
//!   (nftables): both decode the other's camera and keep decoding it, and each camera's lost
//!   packets are NACKed by the SFU and sent again.
//! - `room_details` (`e2e/room_details.rs`): an appointment's room in words (no `appt-` id), the
//!   citizen alone told the official is coming, leaving the empty room keeps the appointment, admit
//!   from inside the room, the chat's unread count and list markup.
//!
//! - `network_paths` (`e2e/network.rs`): with a real coturn and ICE-TCP on, two participants join
//!   under each network a citizen may be on (open; one UDP port; UDP blocked; only TCP 443) and
//!   decode each other over the path `getStats()` says: UDP, UDP, ICE-TCP, TURN over TLS; on the
//!   open network each camera's uplink estimate climbs (the SFU's transport-cc feedback).
//! - `front_paths` (`e2e/network.rs`): behind the production nginx front (`deploy/nginx-443.conf`)
//!   with only TCP 443 and the relay leg open: the page over HTTPS and the Chromium call over
//!   TURN/TLS, both through the front; a Firefox participant joins over ICE-TCP through the front.
//! - `live_paths` (`e2e/network.rs`): a council stream's public WHEP viewer with UDP blocked
//!   (ICE-TCP) and with only TCP 443 (TURN over TLS, credentials from the endpoint's `Link`).
//! - `firefox_paths` (`e2e/firefox.rs`): a citizen on Firefox ESR (geckodriver) and an official on
//!   Chromium in one room decode each other, over UDP host candidates on an open network and over
//!   ICE-TCP with UDP blocked, as Firefox's `getStats()` says.
//! - `firefox_journey` (`e2e/firefox_journey.rs`): the citizen's journey in Firefox ESR, the
//!   official in Chromium — booking on `/prenota`, the emailed link, the lobby's device check, the
//!   waiting room, admitted; camera and microphone both ways, the citizen's screen shared from
//!   Firefox, chat both ways, the official's PDF downloaded byte for byte — then a council's
//!   `/live/<id>` page in Firefox decoding the program. Needs `Xvfb` (the screen Firefox shares).
//! - `network_check` (`e2e/netcheck.rs`): the lobby's network check under an open network, UDP
//!   blocked, only TURN over TLS (then entering goes through the relay) and nothing allowed: the
//!   verdict in words with its technical code, the join button's explanation, axe on the lobby.
//! - `tls_front` (`e2e/tls_front.rs`): through `deploy/nginx-https.conf`, then `deploy/Caddyfile`,
//!   on https://sportello.test with a test CA Chromium trusts: a citizen books, both join, signal
//!   over wss and decode each other's camera.
//! - `restart_call` (`e2e/restart.rs`): the real `sportello` binary `kill -9`ed during an
//!   appointment's call and restarted on the same data: the official and the admitted citizen are
//!   back by themselves (the citizen not through the waiting room), decoding each other within
//!   seconds of the restart (the time is printed). Needs `target/<profile>/sportello`.
//! - `look_and_access` (`e2e/look.rs`): every page and booking step, the lobby, the waiting room
//!   and the room with a chat message, in Chromium and Firefox at 1280 and 390 px: zero axe-core
//!   violations (WCAG 2.1 AA), no request outside the server's origin, the municipality's header
//!   (name, crest), title and footer links as configured through the admin API, the booking and
//!   the way in by keyboard only with visible focus; screenshots in `target/e2e-artifacts/look/`.
//! - `cluster_call` (`e2e/cluster.rs`): three `sportello` nodes on PostgreSQL and NATS behind a real
//!   nginx balancer; three participants whose websockets land on three nodes decode each other;
//!   the room's node `kill -9`ed, every page comes back through the balancer by itself and decodes
//!   the others again (the time is printed). Needs `target/<profile>/sportello`.
//! - `walkin_desk` (`e2e/walkin.rs`): the walk-in video desk — two citizens queue on
//!   `/sportello/<office>` (form, device and network check) and read their places; «Prossimo» on
//!   `/staff` opens the official's room and takes the first citizen's page into it by itself, media
//!   both ways, the second is now first; a hand-off with a note to an official of another office,
//!   the «being transferred» banner, «Accetta», media both ways with the citizen's page never out
//!   of the room; «Termina» and the ticket `done`; axe on the desk page's views and on `/staff`.
//! - `citizen_identity` (`e2e/identity.rs`): a citizen logs in with SPID/CIE (a real OpenID
//!   provider) from `/prenota`'s requester step, comes back to it with the fields filled in, books
//!   with App IO notices and finds the appointment on «Le mie prenotazioni»; axe on both pages.
//!
//! On failure: screenshots of every open browser in `target/e2e-artifacts/`, each browser's
//! `window.sportello.events`, and the SFU's counters are printed.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use serde::Deserialize;
use serde_json::Value;
use sportello_tests::browser::{
    Browser, Chromedriver, Geckodriver, Result, StaticPage, artifacts_dir, err, poll_until,
};
use sportello_tests::netns;

/// Upper bound for one scenario (a hang becomes a failure with artifacts, not a stuck CI).
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(240);
const JOIN_TIMEOUT: Duration = Duration::from_secs(45);
const MEDIA_TIMEOUT: Duration = Duration::from_secs(45);
const RELEASE_TIMEOUT: Duration = Duration::from_secs(30);

type ScenarioFn = for<'a> fn(&'a mut Ctx) -> Pin<Box<dyn Future<Output = Result<()>> + 'a>>;

const SCENARIOS: &[(&str, ScenarioFn)] = &[
    ("environment_smoke", |ctx| Box::pin(environment_smoke(ctx))),
    ("room_three_participants", |ctx| Box::pin(room_three_participants(ctx))),
    ("office_appointment", |ctx| Box::pin(office::office_appointment(ctx))),
    ("calendar_month", |ctx| Box::pin(calendar::calendar_month(ctx))),
    ("council_session", |ctx| Box::pin(council::council_session(ctx))),
    ("council_live", |ctx| Box::pin(live::council_live(ctx))),
    ("citizen_pages", |ctx| Box::pin(citizen::citizen_pages(ctx))),
    ("staff_pages", |ctx| Box::pin(staff::staff_pages(ctx))),
    ("english_pages", |ctx| Box::pin(english::english_pages(ctx))),
    ("call_under_loss", |ctx| Box::pin(loss::call_under_loss(ctx))),
    ("room_details", |ctx| Box::pin(room_details::room_details(ctx))),
    ("network_paths", |ctx| Box::pin(network::network_paths(ctx))),
    ("live_paths", |ctx| Box::pin(network::live_paths(ctx))),
    ("front_paths", |ctx| Box::pin(network::front_paths(ctx))),
    ("firefox_paths", |ctx| Box::pin(firefox::firefox_paths(ctx))),
    ("firefox_journey", |ctx| Box::pin(firefox_journey::firefox_journey(ctx))),
    ("network_check", |ctx| Box::pin(netcheck::network_check(ctx))),
    ("tls_front", |ctx| Box::pin(tls_front::tls_front(ctx))),
    ("restart_call", |ctx| Box::pin(restart::restart_call(ctx))),
    ("cluster_call", |ctx| Box::pin(cluster::cluster_call(ctx))),
    ("look_and_access", |ctx| Box::pin(look::look_and_access(ctx))),
    ("walkin_desk", |ctx| Box::pin(walkin::walkin_desk(ctx))),
    ("citizen_identity", |ctx| Box::pin(identity::citizen_identity(ctx))),
];

#[path = "e2e/calendar.rs"]
mod calendar;
#[path = "e2e/citizen.rs"]
mod citizen;
#[path = "e2e/cluster.rs"]
mod cluster;
#[path = "e2e/council.rs"]
mod council;
#[path = "e2e/english.rs"]
mod english;
#[path = "e2e/firefox.rs"]
mod firefox;
#[path = "e2e/firefox_journey.rs"]
mod firefox_journey;
#[path = "e2e/identity.rs"]
mod identity;
#[path = "e2e/live.rs"]
mod live;
#[path = "e2e/look.rs"]
mod look;
#[path = "e2e/loss.rs"]
mod loss;
#[path = "e2e/netcheck.rs"]
mod netcheck;
#[path = "e2e/network.rs"]
mod network;
#[path = "e2e/office.rs"]
mod office;
#[path = "e2e/restart.rs"]
mod restart;
#[path = "e2e/room_details.rs"]
mod room_details;
#[path = "e2e/staff.rs"]
mod staff;
#[path = "e2e/tls_front.rs"]
mod tls_front;
#[path = "e2e/walkin.rs"]
mod walkin;

/// For the failure report: connection states and RTP counters of a client's two peer connections.
const RTP_PROBE: &str = r#"(async () => {
  const s = window.sportello; if (!s) return null;
  const out = {};
  for (const [name, pc] of Object.entries(s.pcs || {})) {
    if (!pc) { out[name] = null; continue; }
    const report = await pc.getStats(), rtp = [];
    const codec = id => { const c = id && report.get(id); return c ? `${c.mimeType}/${c.payloadType}` : '?'; };
    report.forEach(r => {
      if (r.type === 'outbound-rtp') rtp.push(`out mid=${r.mid} ${r.kind} ${codec(r.codecId)} ssrc=${r.ssrc} pkts=${r.packetsSent} enc=${r.framesEncoded ?? '-'} kf=${r.keyFramesEncoded ?? '-'} pli=${r.pliCount ?? '-'} nack=${r.nackCount ?? '-'} ${r.frameWidth ?? ''}x${r.frameHeight ?? ''}`);
      if (r.type === 'inbound-rtp') rtp.push(`in mid=${r.mid} ${r.kind} ${codec(r.codecId)} ssrc=${r.ssrc} pkts=${r.packetsReceived} lost=${r.packetsLost} dec=${r.framesDecoded ?? '-'} kf=${r.keyFramesDecoded ?? '-'} pli=${r.pliCount ?? '-'} nack=${r.nackCount ?? '-'}`);
    });
    out[name] = { connection: pc.connectionState, signaling: pc.signalingState, rtp,
                  transceivers: pc.getTransceivers().map(t => `${t.mid}:${t.direction}/${t.currentDirection}`) };
  }
  return out;
})()"#;

/// What a scenario leaves behind for the failure report.
struct Ctx {
    driver: Option<Chromedriver>,
    /// Firefox's driver, found on first use (each Firefox gets a geckodriver of its own).
    gecko: Option<Geckodriver>,
    browsers: Vec<Browser>,
    server: Option<app::App>,
}

impl Ctx {
    async fn driver(&mut self) -> Result<&Chromedriver> {
        if self.driver.is_none() {
            self.driver = Some(Chromedriver::start().await?);
        }
        Ok(self.driver.as_ref().unwrap())
    }

    /// Opens a new participant browser with extra Chromium flags; returns its index in `browsers`.
    async fn open_with(&mut self, label: &str, url: &str, extra: &[String]) -> Result<usize> {
        let b = self.driver().await?.open_with(label, url, extra).await?;
        self.browsers.push(b);
        Ok(self.browsers.len() - 1)
    }

    /// Opens a new participant browser; returns its index in `browsers`.
    async fn open(&mut self, label: &str, url: &str) -> Result<usize> {
        let b = self.driver().await?.open(label, url).await?;
        self.browsers.push(b);
        Ok(self.browsers.len() - 1)
    }

    /// Opens a new participant browser on Firefox ESR; returns its index in `browsers`.
    async fn open_firefox(&mut self, label: &str, url: &str) -> Result<usize> {
        if self.gecko.is_none() {
            self.gecko = Some(Geckodriver::find()?);
        }
        let b = self.gecko.as_ref().unwrap().open(label, url).await?;
        self.browsers.push(b);
        Ok(self.browsers.len() - 1)
    }

    /// Screenshots, client events and server counters, for a failed scenario.
    async fn dump(&self, scenario: &str) {
        let dir = artifacts_dir();
        for b in &self.browsers {
            let path = dir.join(format!("{scenario}-{}.png", b.label()));
            match tokio::time::timeout(Duration::from_secs(10), b.screenshot(&path)).await {
                Ok(Ok(())) => eprintln!("  screenshot: {}", path.display()),
                Ok(Err(e)) => eprintln!("  screenshot of {} failed: {e}", b.label()),
                Err(_) => eprintln!("  screenshot of {} timed out", b.label()),
            }
            let probe = "(() => { const s = window.sportello; if (!s) return {missing: true, url: location.href}; \
                 let parts = null; try { parts = s.participants(); } catch (e) { parts = String(e); } \
                 return {url: location.href, state: s.state, participantId: s.participantId, participants: parts, \
                         events: (s.events || []).slice(-200)}; })()";
            match tokio::time::timeout(Duration::from_secs(10), b.eval::<Value>(probe)).await {
                Ok(Ok(v)) => {
                    eprintln!(
                        "  [{}] url={} state={} participants={}",
                        b.label(),
                        v["url"],
                        v["state"],
                        v["participants"]
                    );
                    if let Some(events) = v["events"].as_array() {
                        eprintln!("  [{}] window.sportello.events (last {}):", b.label(), events.len());
                        for e in events {
                            eprintln!("    {e}");
                        }
                    }
                }
                Ok(Err(e)) => eprintln!("  [{}] cannot read window.sportello: {e}", b.label()),
                Err(_) => eprintln!("  [{}] reading window.sportello timed out", b.label()),
            }
            // Raw RTP counters of both peer connections: tells "not sent" from "not forwarded" from
            // "not decoded".
            match tokio::time::timeout(Duration::from_secs(10), b.eval_async::<Value>(RTP_PROBE)).await {
                Ok(Ok(v)) => eprintln!("  [{}] rtp: {v}", b.label()),
                Ok(Err(e)) => eprintln!("  [{}] rtp stats unavailable: {e}", b.label()),
                Err(_) => eprintln!("  [{}] rtp stats timed out", b.label()),
            }
        }
        if let Some(server) = &self.server {
            match server.stats().await {
                Ok(s) => eprintln!("  SFU stats: {s:?}"),
                Err(e) => eprintln!("  SFU stats unavailable: {e}"),
            }
        }
        if let Some(d) = &self.driver {
            eprintln!("  chromedriver log: {}", d.log_path().display());
        }
        for b in &self.browsers {
            if let Some(log) = b.driver_log() {
                eprintln!("  [{}] {} geckodriver log: {}", b.label(), b.engine(), log.display());
            }
        }
    }

    /// Closes browsers, chromedriver and the server (also what drop does, more politely).
    async fn shutdown(&mut self) {
        for b in self.browsers.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(10), b.close()).await;
        }
        self.driver = None;
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
    }
}

fn main() {
    netns::ensure_loopback_namespace();
    // `E2E_LOG=sportello_server=info` shows the server's log (diagnosis; off by default).
    if let Ok(filter) = std::env::var("E2E_LOG") {
        let _ = tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::new(filter)).try_init();
    }

    let args: Vec<String> = std::env::args().skip(1).collect();
    // libtest-compatible enough for `cargo test -- --list` and filters; other flags are ignored.
    if args.iter().any(|a| a == "--list") {
        for (name, _) in SCENARIOS {
            println!("{name}: test");
        }
        return;
    }
    // Filters as libtest reads them: substrings (or exact names with `--exact`), `--skip S`; the
    // values of other libtest options (`--test-threads N`, ...) are not filters.
    let (mut filters, mut skips, mut exact) = (Vec::new(), Vec::new(), false);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--exact" => exact = true,
            "--skip" => skips.extend(it.next().cloned()),
            "--test-threads" | "--format" | "--color" | "--logfile" | "-Z" | "--shuffle-seed" => {
                it.next();
            }
            _ if a.starts_with('-') => {}
            _ => filters.push(a.clone()),
        }
    }
    let matches = |name: &str, f: &String| if exact { name == f } else { name.contains(f.as_str()) };
    let selected: Vec<_> = SCENARIOS
        .iter()
        .filter(|(name, _)| filters.is_empty() || filters.iter().any(|f| matches(name, f)))
        .filter(|(name, _)| !skips.iter().any(|f| matches(name, f)))
        .collect();

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio runtime");
    let started = Instant::now();
    let mut failed = Vec::new();
    let mut passed = 0usize;
    println!("running {} e2e scenarios (loopback-only network namespace)", selected.len());
    for (name, scenario) in selected {
        let t0 = Instant::now();
        println!("scenario {name} ...");
        let outcome = rt.block_on(async {
            let mut ctx = Ctx { driver: None, gecko: None, browsers: Vec::new(), server: None };
            let run = AssertUnwindSafe(tokio::time::timeout(SCENARIO_TIMEOUT, scenario(&mut ctx))).catch_unwind().await;
            let outcome = match run {
                Ok(Ok(Ok(()))) => Ok(()),
                Ok(Ok(Err(e))) => Err(e.to_string()),
                Ok(Err(_)) => Err(format!("did not finish within {} s", SCENARIO_TIMEOUT.as_secs())),
                Err(panic) => Err(format!(
                    "panicked: {}",
                    panic
                        .downcast_ref::<String>()
                        .map(String::as_str)
                        .or_else(|| panic.downcast_ref::<&str>().copied())
                        .unwrap_or("(non-string panic)")
                )),
            };
            if let Err(why) = &outcome {
                eprintln!("scenario {name} FAILED: {why}");
                ctx.dump(name).await;
            }
            ctx.shutdown().await;
            outcome
        });
        match outcome {
            Ok(()) => {
                passed += 1;
                println!("scenario {name} ... ok ({:.1} s)", t0.elapsed().as_secs_f64());
            }
            Err(why) => {
                println!("scenario {name} ... FAILED ({:.1} s)", t0.elapsed().as_secs_f64());
                failed.push((name, why));
            }
        }
    }
    rt.shutdown_timeout(Duration::from_secs(5));
    let leftovers = netns::kill_leftover_processes();
    if leftovers > 0 {
        println!("(killed {leftovers} leftover processes of this test's namespace)");
    }
    for (name, why) in &failed {
        println!("failed: {name}: {why}");
    }
    println!("{passed} passed, {} failed ({:.1} s)", failed.len(), started.elapsed().as_secs_f64());
    if !failed.is_empty() {
        std::process::exit(1);
    }
}

// ---------------------------------------------------------------------------------------------------
// Scenario 1: the environment.

const SMOKE_PAGE: &str = r#"<!doctype html><meta charset="utf-8"><title>smoke</title>
<script>
// Fake camera, microphone and screen, then one loopback peer connection pair inside the page: the
// receiver must decode both videos and receive audio. Proves: secure context, fake devices, loopback
// ICE, codecs. No server involved.
window.smoke = async () => {
  const stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
  const kinds = stream.getTracks().map(t => t.kind).sort();
  const screen = await navigator.mediaDevices.getDisplayMedia({ video: true });
  const screenKinds = screen.getTracks().map(t => t.kind);
  const a = new RTCPeerConnection({ iceServers: [] }), b = new RTCPeerConnection({ iceServers: [] });
  a.onicecandidate = e => e.candidate && b.addIceCandidate(e.candidate);
  b.onicecandidate = e => e.candidate && a.addIceCandidate(e.candidate);
  for (const t of stream.getTracks()) a.addTrack(t, stream);
  for (const t of screen.getTracks()) a.addTrack(t, screen);
  await a.setLocalDescription(); await b.setRemoteDescription(a.localDescription);
  await b.setLocalDescription(); await a.setRemoteDescription(b.localDescription);
  window.smokePcs = [a, b];
  return { kinds, screenKinds };
};
window.smokeDecoded = async () => {
  const frames = [], candidates = [];
  let audio = 0;
  (await window.smokePcs[1].getStats()).forEach(s => {
    if (s.type === 'inbound-rtp' && s.kind === 'video') frames.push(s.framesDecoded || 0);
    if (s.type === 'inbound-rtp' && s.kind === 'audio') audio += s.packetsReceived || 0;
    if (s.type === 'local-candidate') candidates.push(s.address || s.ip);
  });
  return { frames, audio, candidates };
};
</script>"#;

async fn environment_smoke(ctx: &mut Ctx) -> Result<()> {
    let page = StaticPage::serve(SMOKE_PAGE).await?;
    let i = ctx.open("smoke", page.url()).await?;
    let b = &ctx.browsers[i];
    let got: Value = b.eval_async("window.smoke()").await?;
    if got["kinds"] != serde_json::json!(["audio", "video"]) || got["screenKinds"] != serde_json::json!(["video"]) {
        return Err(err(format!(
            "fake devices: getUserMedia + getDisplayMedia gave {got}, expected audio+video and one screen video"
        )));
    }
    // Camera and screen both decoded, microphone received.
    b.wait_for(
        "window.smokeDecoded().then(s => s.frames.length === 2 && s.frames.every(f => f > 0) && s.audio > 0)",
        Duration::from_secs(20),
    )
    .await?;
    let s: Value = b.eval_async("window.smokeDecoded()").await?;
    let candidates = s["candidates"].as_array().cloned().unwrap_or_default();
    if candidates.iter().any(|c| c.as_str().is_some_and(|ip| ip != "127.0.0.1" && ip != "::1")) {
        return Err(err(format!("Chromium gathered non-loopback candidates: {candidates:?}")));
    }
    println!("  fake camera, microphone and screen ok; loopback peer connection decoded {} frames", s["frames"]);
    Ok(())
}

// ---------------------------------------------------------------------------------------------------
// Scenario 2: the acceptance test of a room.

const ROOM: &str = "ufficio-anagrafe";

/// One entry of `window.sportello.inboundStats()`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct Inbound {
    track_id: String,
    participant_id: Option<String>,
    source: Option<String>,
    kind: String,
    #[serde(default)]
    frames_decoded: Option<u64>,
    #[serde(default)]
    packets_received: Option<u64>,
    #[serde(default)]
    packets_lost: Option<i64>,
    #[serde(default)]
    sender_reports: Option<u64>,
    #[serde(default)]
    remote_packets_sent: Option<u64>,
}

async fn inbound(b: &Browser) -> Result<Vec<Inbound>> {
    b.eval_async("window.sportello.inboundStats()").await
}

/// JS condition: `b` decodes video (framesDecoded > 0) on each track of `video` and receives audio
/// (packetsReceived > 0) on each track of `audio`.
fn media_condition(video: &[&str], audio: &[&str]) -> String {
    format!(
        "window.sportello.inboundStats().then(s => {v}.every(id => s.some(e => e.trackId === id && e.kind === 'video' && e.framesDecoded > 0)) \
           && {a}.every(id => s.some(e => e.trackId === id && e.kind === 'audio' && e.packetsReceived > 0)))",
        v = serde_json::to_string(video).unwrap(),
        a = serde_json::to_string(audio).unwrap(),
    )
}

/// What the SFU told a page about the camera it publishes, as its publish connection's
/// `getStats()` shows it: the uplink estimate (`availableOutgoingBitrate`, which only transport-cc
/// feedback raises above Chromium's 300 kbit/s start), NACKs received, packets retransmitted.
const UPLINK: &str = "window.sportello.pcs.publish.getStats().then(r => { const o = { estimate: 0, nacks: 0, retransmitted: 0 }; \
    r.forEach(s => { if (s.type === 'candidate-pair' && s.nominated && s.availableOutgoingBitrate) o.estimate = Math.max(o.estimate, s.availableOutgoingBitrate); \
    if (s.type === 'outbound-rtp' && s.kind === 'video') { o.nacks += s.nackCount || 0; o.retransmitted += s.retransmittedPacketsSent || 0; } }); return o; })";

#[derive(Debug, serde::Deserialize)]
struct Uplink {
    estimate: f64,
    nacks: u64,
    retransmitted: u64,
}

/// Waits until `ok` holds of the page's [`Uplink`]; the last reading either way.
async fn wait_uplink(b: &Browser, timeout: Duration, ok: impl Fn(&Uplink) -> bool) -> Result<(bool, Uplink)> {
    let deadline = Instant::now() + timeout;
    loop {
        let u: Uplink = b.eval_async(UPLINK).await?;
        if ok(&u) || Instant::now() >= deadline {
            return Ok((ok(&u), u));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// `#tiles for id`, as anna sees them.
fn tiles(id: &str) -> String {
    format!("document.querySelectorAll('[data-participant-id=\"{id}\"]').length")
}

async fn join(b: &Browser) -> Result<()> {
    // As a citizen would: after the lobby's network check has spoken (its verdict changes the
    // layout above the button, and on a relay-only network it picks the first ICE policy).
    netcheck_spoken(b).await?;
    b.click("#join-btn").await?;
    b.wait_for("window.sportello && window.sportello.state === 'in-room'", JOIN_TIMEOUT).await
}

/// The lobby's network check has given its verdict.
async fn netcheck_spoken(b: &Browser) -> Result<()> {
    b.wait_for("window.sportello && window.sportello.netcheck !== null", JOIN_TIMEOUT).await
}

async fn room_three_participants(ctx: &mut Ctx) -> Result<()> {
    let server = app::App::start().await?;
    let urls: Vec<(String, String)> = [("anna", "host"), ("bruno", "participant"), ("carla", "participant")]
        .iter()
        .map(|(id, role)| (id.to_string(), server.join_url(ROOM, id, role)))
        .collect();
    ctx.server = Some(server);
    ctx.driver().await?;

    // --- three participants open their link and join; each reaches "in-room".
    // anna keeps Chromium's fake microphone (200 ms of tone every 500 ms, like words with pauses);
    // bruno's and carla's microphones play silence: anna is the one the highlight must follow.
    let audio = tempfile::tempdir()?;
    let silence = silent_wav(audio.path())?;
    for (id, url) in &urls {
        if id == "anna" {
            ctx.open(id, url).await?;
        } else {
            ctx.open_with(id, url, std::slice::from_ref(&silence)).await?;
        }
    }
    let [anna, bruno, carla] = [&ctx.browsers[0], &ctx.browsers[1], &ctx.browsers[2]];
    let server = ctx.server.as_ref().unwrap();
    tokio::try_join!(join(anna), join(bruno), join(carla))?;
    for (b, id) in [(anna, "anna"), (bruno, "bruno"), (carla, "carla")] {
        let me: String = b.eval("window.sportello.participantId").await?;
        if me != id {
            return Err(err(format!("[{id}] window.sportello.participantId is {me:?}")));
        }
        b.wait_for(
            &format!(
                "{} === 1 && document.querySelector('[data-participant-id=\"{id}\"]').dataset.self === 'true'",
                tiles(id)
            ),
            JOIN_TIMEOUT,
        )
        .await?;
    }
    println!("  3 participants in the room");

    // --- everyone decodes both others' cameras and receives both others' microphones.
    let everyone = ["anna", "bruno", "carla"];
    for (b, id) in [(anna, "anna"), (bruno, "bruno"), (carla, "carla")] {
        let others: Vec<&str> = everyone.iter().copied().filter(|o| *o != id).collect();
        let video: Vec<String> = others.iter().map(|o| format!("{o}/camera")).collect();
        let audio: Vec<String> = others.iter().map(|o| format!("{o}/microphone")).collect();
        let video: Vec<&str> = video.iter().map(String::as_str).collect();
        let audio: Vec<&str> = audio.iter().map(String::as_str).collect();
        b.wait_for(&media_condition(&video, &audio), MEDIA_TIMEOUT).await?;
        // Exactly one decoded camera per other participant (no duplicate receiver), none of our own.
        let stats = inbound(b).await?;
        for o in &others {
            let n = stats.iter().filter(|e| e.kind == "video" && e.track_id == format!("{o}/camera")).count();
            if n != 1 {
                return Err(err(format!("[{id}] {n} inbound video entries for {o}/camera, expected 1: {stats:?}")));
            }
        }
        if let Some(own) = stats.iter().find(|e| e.track_id.starts_with(&format!("{id}/"))) {
            return Err(err(format!("[{id}] receives its own track {own:?}")));
        }
        // What the user sees: one tile per other participant, showing that participant's camera.
        for o in &others {
            b.wait_for(
                &format!(
                    "{} === 1 && document.querySelectorAll('video[data-track-id=\"{o}/camera\"]').length === 1",
                    tiles(o)
                ),
                MEDIA_TIMEOUT,
            )
            .await?;
        }
    }
    println!("  everyone decodes both other cameras and hears both other microphones");
    // No packet is missing from what the SFU forwards: a sequence-number discontinuity it emitted
    // (a drop it did not hide, a munging error) stays in the browser's `packetsLost` for good, while
    // a packet really lost on the way is repaired by a NACK and counts as received again.
    for (b, id) in [(anna, "anna"), (bruno, "bruno"), (carla, "carla")] {
        let none_lost =
            "window.sportello.inboundStats().then(s => s.length === 4 && s.every(e => e.packetsLost === 0))";
        if b.wait_for(none_lost, Duration::from_secs(10)).await.is_err() {
            let stats = inbound(b).await?;
            return Err(err(format!("[{id}] the browser counts lost packets: {stats:?}")));
        }
    }
    println!("  no browser counts a lost packet");
    // The SFU encrypts what it forwards and makes the sender reports itself: every browser decrypted
    // reports for every stream, and they count what was sent.
    for (b, id) in [(anna, "anna"), (bruno, "bruno"), (carla, "carla")] {
        let reported = "window.sportello.inboundStats().then(s => s.length === 4 \
            && s.every(e => e.senderReports > 0 && e.remotePacketsSent > 0))";
        if b.wait_for(reported, Duration::from_secs(10)).await.is_err() {
            let stats = inbound(b).await?;
            return Err(err(format!("[{id}] a stream without the SFU's sender reports: {stats:?}")));
        }
    }
    println!("  every stream has the SFU's sender reports");
    // The active speaker: the SFU's detector follows the audio levels in the RTP header extension
    // and every page highlights the tile of the one participant making sound — anna, also on her
    // own page — and nobody else's, and keeps it so.
    let anna_highlighted = "document.querySelectorAll('[data-participant-id][data-speaking=\"true\"]').length === 1 \
        && document.querySelector('[data-participant-id=\"anna\"]')?.dataset.speaking === 'true'";
    let t0 = Instant::now();
    tokio::try_join!(
        anna.wait_for(anna_highlighted, MEDIA_TIMEOUT),
        bruno.wait_for(anna_highlighted, MEDIA_TIMEOUT),
        carla.wait_for(anna_highlighted, MEDIA_TIMEOUT)
    )?;
    let waited = t0.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    for (b, id) in [(anna, "anna"), (bruno, "bruno"), (carla, "carla")] {
        if !b.eval::<bool>(anna_highlighted).await? {
            let shown: Vec<String> = b
                .eval("[...document.querySelectorAll('[data-participant-id][data-speaking=\"true\"]')].map(e => e.dataset.participantId)")
                .await?;
            return Err(err(format!("[{id}] the highlight left anna, who is still speaking: now on {shown:?}")));
        }
    }
    println!("  every page highlights anna, the one speaking ({waited:.1} s after the media checks), and keeps her");
    // Model: every participant has 2 peer connections, publishes microphone + camera, and subscribes
    // to every track of the others: (participants, peer_connections, published_tracks, subscriptions).
    wait_stats(server, (3, 6, 6, 12), "with 3 participants").await?;

    // --- anna shares her screen; bruno and carla decode it.
    anna.click("#btn-screen").await?;
    let screen = format!(
        "document.querySelectorAll('video[data-track-id=\"anna/screen\"]').length === 1 && {}",
        media_condition(&["anna/screen"], &[])
    );
    tokio::try_join!(bruno.wait_for(&screen, MEDIA_TIMEOUT), carla.wait_for(&screen, MEDIA_TIMEOUT))?;
    println!("  bruno and carla decode anna's screen");
    wait_stats(server, (3, 6, 7, 14), "after anna's screen share").await?;

    // --- carla leaves: her tile and her tracks disappear for anna and bruno; the SFU releases her.
    carla.click("#btn-leave").await?;
    // Gone for the others: her tile, her video elements, her participant entry, her inbound tracks.
    let carla_gone = format!(
        "window.sportello.inboundStats().then(s => {} === 0 && !document.querySelector('video[data-track-id^=\"carla/\"]') \
           && !window.sportello.participants().some(p => p.id === 'carla' || (p.tracks || []).some(t => String(t).startsWith('carla/'))) \
           && !s.some(e => e.participantId === 'carla' || e.trackId.startsWith('carla/')))",
        tiles("carla")
    );
    tokio::try_join!(anna.wait_for(&carla_gone, RELEASE_TIMEOUT), bruno.wait_for(&carla_gone, RELEASE_TIMEOUT))?;
    // anna: mic+camera+screen, bruno: mic+camera = 5 published; anna gets bruno's 2, bruno gets anna's 3.
    let s = wait_stats(server, (2, 4, 5, 5), "after carla left").await?;
    println!("  carla left and was released: {s:?}");

    // --- bruno's websocket is cut; he comes back by himself; anna never sees two bruno tiles.
    let before_bruno = camera_frames(anna, "bruno").await?;
    if before_bruno == 0 {
        return Err(err("[anna] decodes no frame of bruno/camera before the reconnection"));
    }
    bruno.exec("window.__e2eOldWs = window.sportello.ws; window.sportello.dropConnection();").await?;
    let stop = AtomicBool::new(false);
    let samples = AtomicUsize::new(0);
    let sampler = async {
        // Sample anna's view of bruno's tiles as fast as WebDriver allows, until told to stop.
        let mut bad: Option<String> = None;
        while !stop.load(Ordering::Relaxed) {
            match anna.eval::<u64>(&tiles("bruno")).await {
                Ok(1) => {}
                Ok(n) => {
                    bad.get_or_insert(format!("[anna] saw {n} tiles for bruno during his reconnection"));
                }
                Err(e) => {
                    bad.get_or_insert(e.to_string());
                }
            }
            samples.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bad
    };
    let reconnect = async {
        let r = async {
            bruno
                .wait_for(
                    "window.sportello.ws !== window.__e2eOldWs && window.sportello.ws && window.sportello.ws.readyState === 1 \
                     && window.sportello.state === 'in-room'",
                    JOIN_TIMEOUT,
                )
                .await?;
            // anna decodes bruno's camera again: frames keep increasing after the reconnection.
            wait_camera_progress(anna, "bruno", 15, MEDIA_TIMEOUT).await?;
            Ok::<(), sportello_tests::browser::Error>(())
        }
        .await;
        stop.store(true, Ordering::Relaxed);
        r
    };
    let (bad, r) = tokio::join!(sampler, reconnect);
    r?;
    if let Some(bad) = bad {
        return Err(err(bad));
    }
    println!(
        "  bruno reconnected by himself; anna saw one tile for him in {} samples and decodes him again",
        samples.load(Ordering::Relaxed)
    );
    let bruno_gets_anna = media_condition(&["anna/camera", "anna/screen"], &["anna/microphone"]);
    let one_bruno = format!("{} === 1", tiles("bruno"));
    tokio::try_join!(bruno.wait_for(&bruno_gets_anna, MEDIA_TIMEOUT), anna.wait_for(&one_bruno, MEDIA_TIMEOUT))?;
    // Back in the room, bruno's page was told who is speaking (the SFU reports only changes).
    bruno.wait_for(anna_highlighted, MEDIA_TIMEOUT).await?;

    // --- everyone leaves; the SFU is back to zero.
    tokio::try_join!(anna.click("#btn-leave"), bruno.click("#btn-leave"))?;
    let s = wait_stats(server, (0, 0, 0, 0), "after everyone left").await?;
    println!("  everyone left; SFU stats back to zero: {s:?}");
    Ok(())
}

/// A second of silence as a WAV file, for Chromium's `--use-file-for-fake-audio-capture` (it loops);
/// returns the flag.
fn silent_wav(dir: &std::path::Path) -> Result<String> {
    let path = dir.join("silence.wav");
    let status = std::process::Command::new("ffmpeg")
        .args(["-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "anullsrc=r=48000:cl=mono", "-t", "1"])
        .args(["-c:a", "pcm_s16le"])
        .arg(&path)
        .status()?;
    if !status.success() {
        return Err(err(format!("ffmpeg could not make {}", path.display())));
    }
    Ok(format!("--use-file-for-fake-audio-capture={}", path.display()))
}

/// Polls the SFU's counters until (participants, peer_connections, published_tracks, subscriptions)
/// equal `want` (released resources may take a moment); the error shows the last counters.
async fn wait_stats(
    server: &app::App,
    want: (usize, usize, usize, usize),
    when: &str,
) -> Result<sportello_sfu::SfuStats> {
    let last = std::cell::RefCell::new(None);
    poll_until(
        &format!("SFU stats {when} to be (participants, peer_connections, published_tracks, subscriptions) = {want:?}"),
        RELEASE_TIMEOUT,
        || async {
            let s = server.stats().await?;
            *last.borrow_mut() = Some(s);
            Ok(((s.participants, s.peer_connections, s.published_tracks, s.subscriptions) == want).then_some(s))
        },
    )
    .await
    .map_err(|e| err(format!("{e}; last stats: {:?}", last.borrow())))
}

/// Frames decoded on `<who>/camera` by `b` (sum over entries, normally exactly one).
async fn camera_frames(b: &Browser, who: &str) -> Result<u64> {
    let id = format!("{who}/camera");
    Ok(inbound(b).await?.iter().filter(|e| e.track_id == id).filter_map(|e| e.frames_decoded).sum())
}

/// Waits until `b` has decoded `frames` more frames of `<who>/camera` from now on. Counts progress
/// between samples, so a receiver replaced by a fresh one (counter back to 0) still counts.
async fn wait_camera_progress(b: &Browser, who: &str, frames: u64, timeout: Duration) -> Result<()> {
    let mut prev = camera_frames(b, who).await?;
    let mut progress = 0u64;
    let mut last = String::new();
    let deadline = Instant::now() + timeout;
    while progress < frames {
        if Instant::now() > deadline {
            return Err(err(format!(
                "[{}] decoded only {progress} new frames of {who}/camera in {} s (wanted {frames}){last}",
                b.label(),
                timeout.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        match camera_frames(b, who).await {
            Ok(cur) => {
                progress += if cur >= prev { cur - prev } else { cur };
                prev = cur;
            }
            Err(e) => last = format!(" (last error: {e})"),
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------------
// The product under test, through the signaling crate's in-process harness (`tests/src/server.rs`).

mod app {
    use std::time::Duration;

    use sportello_server::config::Config;
    use sportello_sfu::SfuStats;
    use sportello_tests::browser::{Result, err};
    use sportello_tests::server::{Role, TestServer};

    /// A Sportello server in this process: HTTP on 127.0.0.1:0, media on 127.0.0.1:0.
    pub struct App {
        server: TestServer,
    }

    impl App {
        /// With the production reconnection grace (15 s), not the harness's short test grace: the
        /// browser's first retry comes after 0.5 s, and a reconnection within the grace is what the
        /// scenario checks (the others must not see the participant leave and come back).
        pub async fn start() -> Result<App> {
            App::start_with(|_| {}).await
        }

        /// The same with more of the configuration set by the scenario (TURN, ICE-TCP, …).
        pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> Result<App> {
            let server = TestServer::start_with(|c| {
                c.reconnect_grace = Duration::from_secs(15);
                adjust(c);
            })
            .await;
            Ok(App { server })
        }

        /// The server's HTTP listener.
        pub fn http_addr(&self) -> std::net::SocketAddr {
            self.server.server.http_addr
        }

        /// The SFU's UDP address.
        pub fn media_addr(&self) -> std::net::SocketAddr {
            self.server.server.sfu.local_addr()
        }

        /// `http://127.0.0.1:PORT/join?t=<token>` for this identity (display name: the identity,
        /// capitalised).
        pub fn join_url(&self, room: &str, id: &str, role: &str) -> String {
            let role = match role {
                "host" => Role::Host,
                "viewer" => Role::Viewer,
                _ => Role::Participant,
            };
            self.server.join_link(&self.server.token(room, id, role))
        }

        pub async fn stats(&self) -> Result<SfuStats> {
            self.server.server.sfu.stats().await.map_err(|e| err(format!("SFU stats: {e}")))
        }

        pub async fn shutdown(self) {
            let _ = tokio::time::timeout(Duration::from_secs(10), self.server.server.shutdown()).await;
        }
    }
}
