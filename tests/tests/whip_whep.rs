//! The public live stream with an independent WebRTC stack (aiortc, Python): an encoder publishes
//! VP8 + Opus into a council session by WHIP, a viewer plays the program by WHEP and decodes it,
//! and the session's recording is a WebM that `ffprobe` reads — one VP8 stream, Opus audio, as
//! long as the session was on air (± 1 s).
//!
//! The chair is in the council room by websocket only (no media), so the program shows the
//! chamber's camera, i.e. the WHIP encoder. The recording runs from the chair's arrival to
//! `council.end`; the encoder is still sending when the session ends, so the last recorded frame
//! is at the end.
//!
//! Needs `python3` with aiortc (`scripts/test` installs it) and ffmpeg/ffprobe. Runs inside a
//! loopback-only network namespace (own `main`, see `sportello_tests::netns`); the Python client
//! gathers 127.0.0.1 only and uses no STUN server (shared/testing.md §4).

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sportello_backoffice::secrets::hash_password_blocking;
use sportello_tests::server::{Claims, Role, TestServer, WsClient};
use tokio::process::Command;

type Result<T> = std::result::Result<T, String>;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/aiortc/whip_whep.py");
const PASSWORD: &str = "diretta-di-prova-2027";
/// How long the encoder publishes (from its POST): outlasts the player and `council.end`.
const PUBLISH_SECONDS: u64 = 12;
/// The longest either script may run before it is killed and the test fails.
const SCRIPT_LIMIT: Duration = Duration::from_secs(60);
/// When the player starts, after the encoder.
const PLAYER_AFTER: Duration = Duration::from_secs(2);
/// How long the player decodes (from its answer).
const PLAY_SECONDS: u64 = 4;

fn main() {
    sportello_tests::netns::run_scenario("whip_whep", scenario());
}

fn check(cond: bool, what: impl Into<String>) -> Result<()> {
    if cond { Ok(()) } else { Err(what.into()) }
}

/// A test clip for the encoder: 320x240 test pattern at 15 fps and a 440 Hz tone (MJPEG + PCM in
/// Matroska: quick to make; aiortc decodes it and encodes VP8/Opus itself); longer than the encoder publishes.
fn clip(dir: &Path) -> Result<String> {
    let path = dir.join("chamber.mkv");
    let status = std::process::Command::new("ffmpeg")
        .args(["-nostdin", "-loglevel", "error", "-y"])
        .args(["-f", "lavfi", "-i", "testsrc=size=320x240:rate=15:duration=20"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=20"])
        .args(["-c:v", "mjpeg", "-q:v", "5", "-pix_fmt", "yuvj420p", "-c:a", "pcm_s16le"])
        .arg(&path)
        .status()
        .map_err(|e| format!("ffmpeg: {e}"))?;
    check(status.success(), "ffmpeg could not make the test clip")?;
    Ok(path.display().to_string())
}

fn python(args: &[&str]) -> Command {
    let mut cmd = Command::new("python3");
    cmd.arg(SCRIPT).args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    cmd
}

/// The script's one JSON line, or an error with its exit status and stderr.
fn result_of(
    what: &str,
    out: std::result::Result<std::io::Result<Output>, tokio::time::error::Elapsed>,
) -> Result<Value> {
    let out = out
        .map_err(|_| format!("{what} did not finish within {SCRIPT_LIMIT:?} (killed)"))?
        .map_err(|e| format!("{what}: cannot run python3 {SCRIPT}: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!("{what} failed ({}):\n--- stderr ---\n{stderr}\n--- stdout ---\n{stdout}", out.status));
    }
    let line = stdout.lines().rev().find(|l| l.starts_with('{')).unwrap_or_default();
    serde_json::from_str(line)
        .map_err(|e| format!("{what}: no JSON result ({e}); stdout {stdout:?}, stderr:\n{stderr}"))
}

/// Reads (and drops) what the server sends the chair until `fut` is done, so that its socket
/// never backs up while the subprocesses run.
async fn draining<F: std::future::Future>(chair: &mut WsClient, fut: F) -> F::Output {
    tokio::pin!(fut);
    loop {
        tokio::select! {
            out = &mut fut => return out,
            _ = chair.try_recv_json(Duration::from_millis(500)) => {}
        }
    }
}

fn ffprobe(args: &[&str], file: &Path) -> Result<String> {
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error"])
        .args(args)
        .arg(file)
        .output()
        .map_err(|e| format!("ffprobe: {e}"))?;
    if !out.status.success() {
        return Err(format!("ffprobe {args:?}: {}", String::from_utf8_lossy(&out.stderr)));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

async fn scenario() -> Result<()> {
    let server = TestServer::start().await;
    let url = server.url();
    let store = &server.server.store;
    let now = server.server.tokens.clock().now();
    let e = |e: sportello_store::StoreError| format!("seeding the store: {e}");
    let seeded = server.seed_council(&["Anna"], &["Bilancio"]).await.map_err(e)?;
    let (chair, session) = (&seeded.chair, &seeded.session);
    let hash = hash_password_blocking(PASSWORD).map_err(|e| format!("hash: {e}"))?;
    store.set_password(&chair.id, &hash, now).await.map_err(e)?;
    let id = session.id.clone();

    // The encoder token, as the chair gets it from the council panel.
    let http = reqwest::Client::builder().cookie_store(true).build().map_err(|e| e.to_string())?;
    let login = http
        .post(format!("{url}/api/auth/login"))
        .json(&json!({"email": chair.email, "password": PASSWORD}))
        .send()
        .await
        .map_err(|e| format!("login: {e}"))?;
    check(login.status() == 200, format!("the chair logs in: {}", login.status()))?;
    let token: Value = http
        .post(format!("{url}/api/council/sessions/{id}/encoder-token"))
        .send()
        .await
        .map_err(|e| format!("encoder token: {e}"))?
        .json()
        .await
        .map_err(|e| format!("encoder token: {e}"))?;
    let token = token["token"].as_str().ok_or_else(|| format!("no encoder token in {token}"))?.to_owned();

    // The chair arrives (no media): the program opens and the recording starts.
    let room = format!("council-{id}");
    let claims = Claims::new(&room, &format!("user-{}", chair.id), "Presidente", Role::Host, Duration::from_secs(3600));
    let mut chair_ws = server.connect(&room).await;
    let recording_from = Instant::now();
    chair_ws.join(&server.sign(&claims)).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let state: Value = reqwest::get(format!("{url}/api/live/{id}"))
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        if state["status"] == "live" {
            break;
        }
        check(Instant::now() < deadline, format!("never on air: {state}"))?;
        draining(&mut chair_ws, tokio::time::sleep(Duration::from_millis(100))).await;
    }
    println!("  the chair is in the room: on air");

    let media = tempfile::tempdir().map_err(|e| e.to_string())?;
    let clip = clip(media.path())?;
    let whip = format!("{url}/api/live/{id}/whip");
    let whep = format!("{url}/api/live/{id}/whep");
    let mut publisher = python(&["publish", &whip, &token, &PUBLISH_SECONDS.to_string(), &clip])
        .spawn()
        .map_err(|e| format!("python3: {e}"))?;
    let publishing = Instant::now();
    let player_run = async {
        tokio::time::sleep(PLAYER_AFTER).await;
        tokio::time::timeout(SCRIPT_LIMIT, python(&["play", &whep, &PLAY_SECONDS.to_string()]).output()).await
    };
    let played = draining(&mut chair_ws, player_run).await;
    // An encoder that already failed explains an empty picture better than the player does.
    if publisher.try_wait().is_ok_and(|s| s.is_some_and(|s| !s.success())) {
        let failed = result_of("the WHIP publisher", Ok(publisher.wait_with_output().await));
        return Err(failed.err().unwrap_or_else(|| "the WHIP publisher failed".into()));
    }
    let played = result_of("the WHEP player", played)?;
    println!("  the WHEP player: {played}");
    let video_frames = played["video_frames"].as_u64().unwrap_or(0);
    let audio_frames = played["audio_frames"].as_u64().unwrap_or(0);
    check(video_frames >= 40, format!("the player decoded {video_frames} video frames (want ≥ 40): {played}"))?;
    check(audio_frames > 0, format!("the player decoded no audio: {played}"))?;
    check(
        played["width"] == 320 && played["height"] == 240,
        format!("the player's picture is not the encoder's 320x240: {played}"),
    )?;
    check(played["delete_status"] == 200, format!("the player's DELETE: {played}"))?;

    // The viewer's resource is its own: gone once deleted, and not reachable from another session
    // or by a guessed id.
    let resource = played["resource"].as_str().unwrap_or_default();
    let viewer = resource.rsplit('/').next().unwrap_or_default();
    for (what, target, want) in [
        ("the deleted viewer again", resource.to_owned(), 404),
        ("the viewer under another session", format!("{url}/api/live/altra-seduta/whep/{viewer}"), 404),
        ("a guessed viewer", format!("{url}/api/live/{id}/whep/viewer-{}", "0".repeat(32)), 404),
    ] {
        let status = http.delete(&target).send().await.map_err(|e| format!("{what}: {e}"))?.status();
        check(status == want, format!("DELETE {what} ({target}): {status}, want {want}"))?;
    }

    // The session ends while the encoder is still sending: the recording covers it all.
    check(
        publishing.elapsed() < Duration::from_secs(PUBLISH_SECONDS - 2),
        format!("the player took too long ({:?} since the encoder started)", publishing.elapsed()),
    )?;
    chair_ws.send_json(&json!({"v": 1, "type": "council.end"})).await;
    let on_air = recording_from.elapsed().as_secs_f64();
    println!("  council.end after {on_air:.1} s on air");
    let published = result_of(
        "the WHIP publisher",
        draining(&mut chair_ws, tokio::time::timeout(SCRIPT_LIMIT, publisher.wait_with_output())).await,
    )?;
    println!("  the WHIP publisher: {published}");
    check(published["delete_status"] == 200, format!("the encoder's DELETE: {published}"))?;

    // The recording is remuxed and archived by the server.
    let deadline = Instant::now() + Duration::from_secs(60);
    let rec = loop {
        let rows = store.recordings_for_session(&id).await.map_err(e)?;
        if let Some(r) = rows.into_iter().next() {
            break r;
        }
        check(Instant::now() < deadline, "no recording was archived within 60 s of council.end")?;
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let file = sportello_backoffice::recordings::file_path(&server.server.config.data_dir, &rec)
        .map_err(|e| format!("recording path: {e}"))?;
    let streams = ffprobe(&["-show_entries", "stream=codec_type,codec_name", "-of", "csv=p=0"], &file)?;
    let streams: Vec<&str> = streams.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let video: Vec<_> = streams.iter().filter(|s| s.ends_with(",video") || s.starts_with("video")).collect();
    let audio: Vec<_> = streams.iter().filter(|s| s.ends_with(",audio") || s.starts_with("audio")).collect();
    check(video.len() == 1 && video[0].contains("vp8"), format!("want one VP8 video stream: {streams:?}"))?;
    check(!audio.is_empty() && audio.iter().all(|a| a.contains("opus")), format!("want Opus audio: {streams:?}"))?;
    let duration: f64 = ffprobe(&["-show_entries", "format=duration", "-of", "csv=p=0"], &file)?
        .trim()
        .parse()
        .map_err(|e| format!("duration: {e}"))?;
    check(
        (duration - on_air).abs() <= 1.0,
        format!("the recording lasts {duration:.2} s, the session was on air {on_air:.2} s (± 1 s)"),
    )?;
    println!(
        "  archived: {duration:.2} s WebM ({}), on air {on_air:.2} s, sha256 {}…",
        streams.join(" "),
        &rec.sha256[..12]
    );
    drop(chair_ws);
    server.shutdown().await;
    Ok(())
}
