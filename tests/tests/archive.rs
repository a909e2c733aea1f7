//! Council recordings (issue 5, recording and archive) with the real ffmpeg and ffprobe: raw files
//! as the SFU's recorder writes them (VP8 in IVF with a 1/90000 timebase and RTP-based presentation
//! times that leave a gap where filming was suspended; Opus in Ogg) are remuxed without re-encoding
//! into a WebM with the agenda items as chapters; the public archive shows and serves it (ranges),
//! with its SHA-256; the retention pass deletes file and row. Loopback only.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use sha2::{Digest, Sha256};
use sportello_backoffice::recordings::Chapter;
use sportello_backoffice::retention;
use sportello_rooms::recording::{self, RecordingError};
use sportello_sfu::{MediaKind, RecordedFile};
use sportello_store::{CouncilBody, CouncilSession, NewCouncilSession, NewUser, StaffRole, Store};
use sportello_tests::server::{Clock, TestServer};

/// The IVF timebase the recorder writes (RTP's 90 kHz video clock).
const RTP_HZ: u64 = 90_000;
/// Frames of the test video: 25 per second.
const FRAME_TICKS: u64 = RTP_HZ / 25;
/// An RTP-like first timestamp: the file does not start at zero.
const RTP_BASE: u64 = 1_234_567_890;

fn run(what: &str, command: &mut Command) {
    let output = command.output().unwrap_or_else(|e| panic!("{what}: cannot start ({e}); is ffmpeg installed?"));
    assert!(output.status.success(), "{what} failed: {}", String::from_utf8_lossy(&output.stderr));
}

fn ffmpeg(args: &[&str]) -> Command {
    let mut command = Command::new("ffmpeg");
    command.args(["-nostdin", "-hide_banner", "-loglevel", "error", "-y"]).args(args);
    command
}

/// 4 s of `testsrc` as VP8 (a keyframe every second) rewritten as the recorder writes it: timebase
/// 1/90000, PTS from an RTP-like base, frames 0–1.96 s then 4.00–5.96 s (filming suspended 2–4 s).
fn video_with_gap(dir: &Path) -> (PathBuf, u64) {
    let source = dir.join("source.ivf");
    run(
        "ffmpeg (VP8 source)",
        ffmpeg(&["-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-t", "4", "-c:v", "libvpx"])
            .args(["-deadline", "realtime", "-b:v", "300k", "-g", "25", "-f", "ivf"])
            .arg(&source),
    );
    let data = std::fs::read(&source).expect("source ivf");
    std::fs::remove_file(&source).expect("remove source");
    assert_eq!(&data[..4], b"DKIF");
    let mut out = data[..32].to_vec();
    out[16..20].copy_from_slice(&(RTP_HZ as u32).to_le_bytes()); // rate (timebase denominator)
    out[20..24].copy_from_slice(&1u32.to_le_bytes()); // scale (numerator)
    let (mut offset, mut frame) = (32usize, 0u64);
    while offset + 12 <= data.len() {
        let size = u32::from_le_bytes(data[offset..offset + 4].try_into().expect("4 bytes")) as usize;
        let pts = if frame < 50 { frame * FRAME_TICKS } else { 4 * RTP_HZ + (frame - 50) * FRAME_TICKS };
        out.extend_from_slice(&data[offset..offset + 4]);
        out.extend_from_slice(&(RTP_BASE + pts).to_le_bytes());
        out.extend_from_slice(&data[offset + 12..offset + 12 + size]);
        offset += 12 + size;
        frame += 1;
    }
    assert_eq!(frame, 100, "4 s at 25 fps");
    let path = dir.join("video.ivf");
    std::fs::write(&path, out).expect("write video.ivf");
    (path, frame)
}

fn opus(dir: &Path, seconds: u32) -> PathBuf {
    let path = dir.join("audio-0.ogg");
    run(
        "ffmpeg (Opus)",
        ffmpeg(&["-f", "lavfi", "-i", &format!("sine=frequency=440:duration={seconds}"), "-ar", "48000"])
            .args(["-c:a", "libopus", "-f", "ogg"])
            .arg(&path),
    );
    path
}

fn probe(path: &Path, args: &[&str]) -> Value {
    let output =
        Command::new("ffprobe").args(["-v", "error", "-of", "json"]).args(args).arg(path).output().expect("ffprobe");
    assert!(output.status.success(), "ffprobe: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("ffprobe json")
}

fn sha256_of(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).expect("read recording")))
}

async fn session(store: &Store, title: &str) -> CouncilSession {
    let new = NewUser {
        email: "presidente@comune.example".into(),
        display_name: "Presidente".into(),
        role: StaffRole::Chair,
    };
    let chair = match store.user_by_email(&new.email).await.expect("user lookup") {
        Some(chair) => chair,
        None => store.create_user(&new, 0).await.expect("chair"),
    };
    let new = NewCouncilSession {
        title: title.into(),
        body: CouncilBody::Consiglio,
        scheduled_at: 1_800_000_000,
        chair_id: chair.id,
        quorum: "majority".into(),
    };
    store.create_council_session(&new, 0).await.expect("session")
}

fn chapters() -> Vec<Chapter> {
    vec![
        Chapter { title: "1. Bilancio; art. 3 = ok #1".into(), start_ms: 0, end_ms: 2_000 },
        Chapter { title: "2. Varie ed eventuali".into(), start_ms: 2_000, end_ms: 6_000 },
    ]
}

async fn get(url: &str) -> (u16, String) {
    let response = reqwest::get(url).await.expect("GET");
    (response.status().as_u16(), response.text().await.expect("body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remux_archive_ranges_and_retention() {
    let clock = Clock::offset(0);
    let server = TestServer::start_at(clock.clone(), |_| {}).await;
    let store = server.server.store.clone();
    let data_dir = server.data_dir().to_owned();
    let council = session(&store, "Consiglio comunale <di prova>").await;

    let prepared = recording::prepare(&data_dir, &council.id).expect("prepare");
    let raw_dir = prepared.raw_dir.clone();
    let (video, frames) = video_with_gap(&raw_dir);
    let audio = opus(&raw_dir, 6);
    let files = vec![
        RecordedFile {
            path: video,
            kind: MediaKind::Video,
            slot: 0,
            frames,
            // The first picture came half a second after the recording (and the audio) started.
            first_frame_ms: Some(500),
            last_frame_ms: Some(5_960),
        },
        RecordedFile {
            path: audio,
            kind: MediaKind::Audio,
            slot: 0,
            frames: 300,
            first_frame_ms: Some(0),
            last_frame_ms: Some(5_980),
        },
        // The chair's slot never carried a packet: not an input.
        RecordedFile {
            path: raw_dir.join("audio-1.ogg"),
            kind: MediaKind::Audio,
            slot: 1,
            frames: 0,
            first_frame_ms: None,
            last_frame_ms: None,
        },
    ];
    let started_at = clock.now() - 6;
    let stored =
        recording::finish(&store, &data_dir, &council.id, prepared, started_at, clock.now(), files, chapters())
            .await
            .expect("finish")
            .expect("something was recorded");

    // The files: the WebM in the session's directory, the raw directory gone.
    let webm = data_dir.join("recordings").join(&council.id).join(format!("{}.webm", stored.id));
    assert!(webm.is_file(), "{webm:?}");
    assert!(!raw_dir.exists(), "the raw directory is removed after a successful remux");
    let head = std::fs::read(&webm).expect("webm");
    assert_eq!(&head[..4], &[0x1a, 0x45, 0xdf, 0xa3], "EBML");
    assert!(head[..64].windows(4).any(|w| w == b"webm"), "DocType webm");

    // Streams: one VP8 (copied, never re-encoded), Opus with its title; duration; chapters.
    let info = probe(&webm, &["-show_streams", "-show_format", "-show_chapters"]);
    let streams = info["streams"].as_array().expect("streams");
    let codecs: Vec<&str> = streams.iter().map(|s| s["codec_name"].as_str().unwrap_or("")).collect();
    assert_eq!(codecs, ["vp8", "opus"], "{info}");
    assert_eq!(streams[1]["tags"]["title"], "voce / voice");
    let duration: f64 = info["format"]["duration"].as_str().expect("duration").parse().expect("seconds");
    assert!((duration - 6.5).abs() <= 1.0, "duration {duration}");
    assert!((stored.duration_ms - 6_500).abs() <= 1_000, "stored duration {}", stored.duration_ms);
    let found: Vec<(String, f64, f64)> = info["chapters"]
        .as_array()
        .expect("chapters")
        .iter()
        .map(|c| {
            let t = |k: &str| c[k].as_str().and_then(|v| v.parse::<f64>().ok()).expect("chapter time");
            (c["tags"]["title"].as_str().unwrap_or("").to_owned(), t("start_time"), t("end_time"))
        })
        .collect();
    assert_eq!(
        found,
        [("1. Bilancio; art. 3 = ok #1".to_owned(), 0.0, 2.0), ("2. Varie ed eventuali".to_owned(), 2.0, 6.0)],
        "{info}"
    );
    assert_eq!(info["format"]["tags"]["title"], "Consiglio comunale <di prova>");

    // The video starts 0.5 s in (-itsoffset), and the gap survives: every frame is there, none
    // between 2.5 s and 4.5 s, the second part at 4.5 s.
    let packets = probe(&webm, &["-select_streams", "v", "-show_entries", "packet=pts_time"]);
    let times: Vec<f64> = packets["packets"]
        .as_array()
        .expect("packets")
        .iter()
        .map(|p| p["pts_time"].as_str().and_then(|t| t.parse().ok()).expect("pts"))
        .collect();
    assert_eq!(times.len() as u64, frames);
    assert!((0.45..0.6).contains(&times[0]), "the first picture at 0.5 s: {times:?}");
    assert!(times.iter().all(|t| !(2.55..4.45).contains(t)), "a video packet inside the gap: {times:?}");
    assert!(times.iter().any(|t| (4.45..4.6).contains(t)), "the second part starts at 4.5 s: {times:?}");
    assert!(times.iter().all(|t| *t < 6.6), "{times:?}");

    // The row: the hash and size of the very file.
    assert_eq!(stored.sha256, sha256_of(&webm));
    assert_eq!(stored.bytes as usize, head.len());
    assert_eq!(store.recordings_for_session(&council.id).await.expect("rows"), std::slice::from_ref(&stored));

    // The public archive, JSON and pages.
    let base = server.url();
    let (status, list) = get(&format!("{base}/api/archive")).await;
    assert_eq!(status, 200, "{list}");
    let list: Value = serde_json::from_str(&list).expect("json");
    assert_eq!(list[0]["session_id"], council.id.as_str());
    assert_eq!(list[0]["recordings"], 1);
    let (status, detail) = get(&format!("{base}/api/archive/{}", council.id)).await;
    assert_eq!(status, 200, "{detail}");
    let detail: Value = serde_json::from_str(&detail).expect("json");
    let rec = &detail["recordings"][0];
    assert_eq!(rec["sha256"], stored.sha256.as_str());
    assert_eq!(rec["url"], format!("/archivio/media/{}.webm", stored.id));
    assert_eq!(rec["chapters"][0]["title"], "1. Bilancio; art. 3 = ok #1");
    assert_eq!(rec["chapters"][1]["start_ms"], 2_000);
    let retention = server.server.config.recording_retention.as_secs() as i64;
    assert_eq!(rec["delete_at"], stored.ended_at + retention);

    let (status, page) = get(&format!("{base}/archivio/{}", council.id)).await;
    assert_eq!(status, 200);
    assert!(page.contains("Consiglio comunale &lt;di prova&gt;"), "{page}");
    assert!(page.contains(&format!("<code class=\"sha256\">{}</code>", stored.sha256)), "{page}");
    assert!(page.contains("1. Bilancio; art. 3 = ok #1") && page.contains("2. Varie ed eventuali"), "{page}");
    assert!(page.contains("data-start-ms=\"2000\""), "{page}");
    assert!(page.contains(&format!("preload=\"metadata\" src=\"/archivio/media/{}.webm\"", stored.id)), "{page}");
    assert!(page.contains("<script type=\"module\" src=\"/web/public/archive.js\">"), "{page}");
    let (status, index) = get(&format!("{base}/archivio")).await;
    assert_eq!(status, 200);
    assert!(index.contains(&format!("href=\"/archivio/{}\"", council.id)), "{index}");
    let (status, _) = get(&format!("{base}/web/public/archive.js")).await;
    assert_eq!(status, 200);

    // The media: ranges (seeking) and the type.
    let client = reqwest::Client::new();
    let media = format!("{base}/archivio/media/{}.webm", stored.id);
    let response = client.get(&media).header("Range", "bytes=0-99").send().await.expect("range GET");
    assert_eq!(response.status().as_u16(), 206);
    assert_eq!(response.headers()["content-type"], "video/webm");
    assert_eq!(response.headers()["content-range"], format!("bytes 0-99/{}", head.len()).as_str());
    let body = response.bytes().await.expect("body");
    assert_eq!(&body[..], &head[..100]);
    let whole = client.get(&media).send().await.expect("GET");
    assert_eq!(whole.status().as_u16(), 200);
    assert_eq!(whole.bytes().await.expect("body").len(), head.len());
    for unknown in ["/archivio/media/nope.webm", "/archivio/media/nope", "/api/archive/nope", "/archivio/nope"] {
        assert_eq!(get(&format!("{base}{unknown}")).await.0, 404, "{unknown}");
    }

    // Retention: nothing goes before its time; past it, the file and then the row.
    let sweep =
        retention::pass(&store, &data_dir, clock.now(), server.server.config.recording_retention).await.expect("pass");
    assert_eq!(sweep.recordings_deleted, 0);
    assert!(webm.is_file());
    clock.advance(retention + 60);
    let sweep =
        retention::pass(&store, &data_dir, clock.now(), server.server.config.recording_retention).await.expect("pass");
    assert_eq!(sweep.recordings_deleted, 1);
    assert!(!webm.exists(), "the file is deleted");
    assert_eq!(store.recording(&stored.id).await.expect("lookup"), None);
    assert_eq!(get(&format!("{base}/api/archive/{}", council.id)).await.0, 404);
    assert_eq!(get(&media).await.0, 404);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_recorded_or_a_failed_remux() {
    let server = TestServer::start().await;
    let store = server.server.store.clone();
    let data_dir = server.data_dir().to_owned();
    let council = session(&store, "Giunta").await;

    // No frame at all: no file, no row, no raw directory.
    let prepared = recording::prepare(&data_dir, &council.id).expect("prepare");
    let raw_dir = prepared.raw_dir.clone();
    let empty = RecordedFile {
        path: raw_dir.join("video.ivf"),
        kind: MediaKind::Video,
        slot: 0,
        frames: 0,
        first_frame_ms: None,
        last_frame_ms: None,
    };
    let result = recording::finish(&store, &data_dir, &council.id, prepared, 0, 1, vec![empty], chapters()).await;
    assert!(matches!(result, Ok(None)), "{result:?}");
    assert!(!raw_dir.exists());

    // ffmpeg refuses the input: a clear error naming the kept raw directory, no row, no WebM.
    let prepared = recording::prepare(&data_dir, &council.id).expect("prepare");
    let raw_dir = prepared.raw_dir.clone();
    let broken = raw_dir.join("video.ivf");
    std::fs::write(&broken, b"DKIF not really a video").expect("write");
    let file = RecordedFile {
        path: broken.clone(),
        kind: MediaKind::Video,
        slot: 0,
        frames: 10,
        first_frame_ms: Some(0),
        last_frame_ms: Some(400),
    };
    let error = recording::finish(&store, &data_dir, &council.id, prepared, 0, 1, vec![file], chapters())
        .await
        .expect_err("ffmpeg fails");
    assert!(matches!(error, RecordingError::Remux { .. }), "{error}");
    assert!(error.to_string().contains(&raw_dir.display().to_string()), "{error}");
    assert!(broken.is_file(), "the raw files are kept");
    assert!(store.recordings_for_session(&council.id).await.expect("rows").is_empty());
    let session_dir = data_dir.join("recordings").join(&council.id);
    let webms: Vec<_> = std::fs::read_dir(&session_dir)
        .expect("session dir")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".webm"))
        .collect();
    assert!(webms.is_empty(), "no (partial) WebM left: {webms:?}");

    // A file outside the recording's directory is refused before anything runs.
    let prepared = recording::prepare(&data_dir, &council.id).expect("prepare");
    let outside = RecordedFile { path: data_dir.join("sportello.db"), ..empty_video() };
    let error = recording::finish(&store, &data_dir, &council.id, prepared, 0, 1, vec![outside], vec![])
        .await
        .expect_err("refused");
    assert!(matches!(error, RecordingError::ForeignFile { .. }), "{error}");
    server.shutdown().await;
}

fn empty_video() -> RecordedFile {
    RecordedFile {
        path: PathBuf::new(),
        kind: MediaKind::Video,
        slot: 0,
        frames: 1,
        first_frame_ms: Some(0),
        last_frame_ms: Some(0),
    }
}
