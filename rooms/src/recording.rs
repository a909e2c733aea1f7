//! Finishing a council recording: the SFU writes the program feed as raw frames (VP8 in IVF, Opus in
//! Ogg, see `sportello_sfu::RecordedFile`) into `<data_dir>/recordings/<session>/<id>.raw/`; here
//! `ffmpeg -c copy` remuxes them — never re-encoding — into one WebM with the agenda items as
//! chapters, the file is hashed (SHA-256, published in the archive) and its row stored.
//!
//! Timing: each raw file starts at its own first frame; `-itsoffset first_frame_ms` puts it back in
//! place on the recording's clock. Inside a file, presentation times come from RTP timestamps, so a
//! suspended part of the session stays a gap (no `-fflags +genpts`, which would close it).
//! If ffmpeg is missing or fails, the raw files stay where they are (the error says where).

use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use sha2::{Digest, Sha256};
use sportello_backoffice::recordings::{Chapter, FilesError, session_dir};
use sportello_sfu::{MediaKind, RecordedFile};
use sportello_store::{NewRecording, Recording, Store, StoreError};
use tokio::process::Command;
use tracing::Instrument;

/// What ffmpeg's stderr may contribute to an error message.
const STDERR_LIMIT: usize = 4000;

/// A recording about to start: the SFU writes its raw files into `raw_dir`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedRecording {
    pub id: String,
    pub raw_dir: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    #[error(transparent)]
    Files(#[from] FilesError),
    #[error("recorded file {file} is not inside the recording's directory {raw_dir}")]
    ForeignFile { file: PathBuf, raw_dir: PathBuf },
    #[error("cannot {action} {path}: {source}")]
    Io { action: &'static str, path: PathBuf, source: std::io::Error },
    #[error("{tool} cannot be started ({source}); is it installed? The raw files are kept in {raw_dir}")]
    ToolMissing { tool: &'static str, source: std::io::Error, raw_dir: PathBuf },
    #[error("ffmpeg failed ({status}): {stderr}. The raw files are kept in {raw_dir}")]
    Remux { status: String, stderr: String, raw_dir: PathBuf },
    #[error("cannot store the recording (the raw files are kept in {raw_dir}): {source}")]
    Store { source: StoreError, raw_dir: PathBuf },
    #[error("background task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> RecordingError {
    let path = path.to_owned();
    move |source| RecordingError::Io { action, path, source }
}

/// Picks a random id and creates `<data_dir>/recordings/<session_id>/<id>.raw/` for the SFU.
pub fn prepare(data_dir: &Path, session_id: &str) -> Result<PreparedRecording, RecordingError> {
    let id = hex::encode(rand::random::<[u8; 16]>());
    let raw_dir = session_dir(data_dir, session_id)?.join(format!("{id}.raw"));
    sportello_backoffice::private::create_dir(&raw_dir).map_err(io_error("create", &raw_dir))?;
    tracing::info!(session = session_id, recording = %id, dir = %raw_dir.display(), "recording prepared");
    Ok(PreparedRecording { id, raw_dir })
}

/// A recording of this session that another process began and never finished — its node died,
/// or this node restarted — adopted by the room's new owner and archived as one more segment of
/// the session ([`adopt_orphans`]).
#[derive(Debug)]
pub struct Orphan {
    pub prepared: PreparedRecording,
    pub files: Vec<RecordedFile>,
    /// When its directory was made and when a file was last written (Unix seconds).
    pub started_at: i64,
    pub ended_at: i64,
}

/// The recorder closed the files of `prepared`: its directory becomes `<id>.closed`, which no
/// other owner adopts ([`adopt_orphans`] takes `.raw` ones only) while the persistence task
/// finishes it. The files' paths follow; if the rename fails, nothing moves.
pub fn closed(prepared: PreparedRecording, files: Vec<RecordedFile>) -> (PreparedRecording, Vec<RecordedFile>) {
    let closed = prepared.raw_dir.with_extension("closed");
    if let Err(error) = std::fs::rename(&prepared.raw_dir, &closed) {
        tracing::warn!(%error, dir = %prepared.raw_dir.display(), "closed recording not renamed");
        return (prepared, files);
    }
    let files = files
        .into_iter()
        .map(|mut f| {
            if let Ok(rest) = f.path.strip_prefix(&prepared.raw_dir) {
                f.path = closed.join(rest);
            }
            f
        })
        .collect();
    (PreparedRecording { id: prepared.id, raw_dir: closed }, files)
}

/// Claims every unfinished raw recording of `session_id` but `ours`: only the room's owner records
/// and this node owns the room now, so any other is its dead (or fenced) predecessor's. A claim
/// is a rename of the directory (`<id>.raw` → `<id>.adopted`), atomic on one file system, so two
/// nodes never both take it. The video file's header — written on close, which never came — is
/// rebuilt from its frames, a truncated last frame cut off. Audio and video both start at 0 on the
/// segment's clock: the recorder's offsets died with it (they differ by a frame or two).
pub fn adopt_orphans(data_dir: &Path, session_id: &str, ours: Option<&Path>) -> Vec<Orphan> {
    let Ok(dir) = session_dir(data_dir, session_id) else { return Vec::new() };
    let Ok(entries) = std::fs::read_dir(&dir) else { return Vec::new() };
    let mut orphans = Vec::new();
    for entry in entries.flatten() {
        let raw = entry.path();
        let Some(id) = raw.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".raw")) else { continue };
        if ours == Some(raw.as_path()) || !raw.is_dir() {
            continue;
        }
        let adopted = dir.join(format!("{id}.adopted"));
        if let Err(error) = std::fs::rename(&raw, &adopted) {
            tracing::debug!(%error, dir = %raw.display(), "raw recording not claimed (another node took it)");
            continue;
        }
        let started_at = modified(&adopted).unwrap_or(0);
        let mut files = Vec::new();
        let mut ended_at = started_at;
        for file in std::fs::read_dir(&adopted).into_iter().flatten().flatten() {
            let path = file.path();
            ended_at = ended_at.max(modified(&path).unwrap_or(0));
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
            let recorded = if name == "video.ivf" {
                repair_ivf(&path).map(|(frames, last_ms)| (MediaKind::Video, 0, frames, last_ms))
            } else if let Some(slot) = name.strip_prefix("audio-").and_then(|n| n.strip_suffix(".ogg")) {
                ogg_pages(&path).map(|pages| (MediaKind::Audio, slot.parse().unwrap_or(0), pages, 0))
            } else {
                continue;
            };
            match recorded {
                Ok((kind, slot, frames, last_ms)) => files.push(RecordedFile {
                    path,
                    kind,
                    slot,
                    frames,
                    first_frame_ms: Some(0),
                    last_frame_ms: Some(last_ms),
                }),
                Err(error) => tracing::warn!(%error, file = %path.display(), "unreadable raw file left out"),
            }
        }
        tracing::info!(session = session_id, recording = id, "an unfinished recording adopted as a segment");
        orphans.push(Orphan {
            prepared: PreparedRecording { id: id.to_owned(), raw_dir: adopted },
            files,
            started_at,
            ended_at,
        });
    }
    orphans
}

fn modified(path: &Path) -> Option<i64> {
    let at = std::fs::metadata(path).ok()?.modified().ok()?;
    Some(at.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs() as i64)
}

/// Rewrites an IVF file's header from its frames (size, count), cutting a truncated last frame
/// off; returns the frames and the last one's time in ms after the first.
fn repair_ivf(path: &Path) -> std::io::Result<(u64, u64)> {
    use std::io::{Seek, SeekFrom, Write};
    let mut data = Vec::new();
    std::fs::File::open(path)?.read_to_end(&mut data)?;
    if data.len() < 32 || &data[0..4] != b"DKIF" {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "not an IVF file"));
    }
    let (mut at, mut frames, mut size) = (32usize, 0u64, None);
    let (mut first, mut last) = (None, 0u64);
    while let Some(header) = data.get(at..at + 12) {
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let pts = u64::from_le_bytes(header[4..12].try_into().unwrap_or_default());
        let Some(frame) = data.get(at + 12..at + 12 + len) else { break };
        // A keyframe (tag bit 0 clear) carries the picture's size after its start code.
        if size.is_none() && frame.len() >= 10 && frame[0] & 0x01 == 0 {
            let w = u16::from_le_bytes([frame[6], frame[7]]) & 0x3fff;
            let h = u16::from_le_bytes([frame[8], frame[9]]) & 0x3fff;
            size = Some((w, h));
        }
        first.get_or_insert(pts);
        last = pts;
        frames += 1;
        at += 12 + len;
    }
    let mut file = std::fs::OpenOptions::new().write(true).open(path)?;
    file.set_len(at as u64)?;
    let (w, h) = size.unwrap_or((0, 0));
    file.seek(SeekFrom::Start(12))?;
    file.write_all(&w.to_le_bytes())?;
    file.write_all(&h.to_le_bytes())?;
    file.seek(SeekFrom::Start(24))?;
    file.write_all(&(frames as u32).to_le_bytes())?;
    Ok((frames, last.saturating_sub(first.unwrap_or(0)) / 90))
}

/// Ogg pages past the two header pages (Opus packets are in them): 0 means nothing to remux.
fn ogg_pages(path: &Path) -> std::io::Result<u64> {
    let data = std::fs::read(path)?;
    let pages = data.windows(4).filter(|w| w == b"OggS").count() as u64;
    Ok(pages.saturating_sub(2))
}

/// Remuxes the raw files into `<data_dir>/recordings/<session_id>/<id>.webm`, hashes it, stores its
/// row and deletes the raw directory. `Ok(None)` when no frame was recorded (the raw directory is
/// removed). `started_at`/`ended_at` are Unix seconds; chapter times are relative to the start.
#[allow(clippy::too_many_arguments)]
pub async fn finish(
    store: &Store,
    data_dir: &Path,
    session_id: &str,
    prepared: PreparedRecording,
    started_at: i64,
    ended_at: i64,
    files: Vec<RecordedFile>,
    chapters: Vec<Chapter>,
) -> Result<Option<Recording>, RecordingError> {
    let span = tracing::info_span!("recording_finish", session = session_id, recording = %prepared.id);
    finish_inner(store, data_dir, session_id, prepared, (started_at, ended_at), files, chapters).instrument(span).await
}

async fn finish_inner(
    store: &Store,
    data_dir: &Path,
    session_id: &str,
    prepared: PreparedRecording,
    (started_at, ended_at): (i64, i64),
    files: Vec<RecordedFile>,
    chapters: Vec<Chapter>,
) -> Result<Option<Recording>, RecordingError> {
    let dir = session_dir(data_dir, session_id)?;
    let raw_dir = prepared.raw_dir.clone();
    let inputs = inputs(files, &raw_dir)?;
    if inputs.is_empty() {
        tracing::info!("nothing was recorded; removing the raw directory");
        remove_dir(&raw_dir).await;
        return Ok(None);
    }
    let metadata = raw_dir.join("chapters.ffmeta");
    tokio::fs::write(&metadata, ffmetadata(&chapters)).await.map_err(io_error("write", &metadata))?;
    let title = match store.council_session(session_id).await {
        Ok(session) => session.map(|s| s.title),
        Err(source) => return Err(RecordingError::Store { source, raw_dir }),
    };
    let file_name = format!("{}.webm", prepared.id);
    let output = dir.join(&file_name);
    // Written under a temporary name, renamed once complete: a half file never looks published.
    let partial = dir.join(format!(".{}.webm.part", prepared.id));
    let args = remux_args(&inputs, &metadata, &partial, title.as_deref());
    if let Err(error) = run_ffmpeg(args, &raw_dir).await {
        let _ = tokio::fs::remove_file(&partial).await;
        tracing::error!(%error, raw_dir = %raw_dir.display(), "remux failed; raw files kept");
        return Err(error);
    }
    let hashed = partial.clone();
    let (sha256, bytes) = tokio::task::spawn_blocking(move || hash_file(&hashed)).await??;
    let duration_ms = match probe_duration_ms(&partial).await {
        Some(ms) => ms,
        None => {
            let fallback = inputs.iter().map(|i| i.offset_ms + i.last_ms).max().unwrap_or(0);
            tracing::warn!(fallback, "ffprobe gave no duration; using the recorder's");
            fallback
        }
    };
    // ffmpeg created it under the umask: the published file is private like the rest of the data dir.
    sportello_backoffice::private::restrict_file(&partial).map_err(io_error("restrict", &partial))?;
    tokio::fs::rename(&partial, &output).await.map_err(io_error("rename", &partial))?;
    let new = NewRecording {
        id: prepared.id.clone(),
        session_id: session_id.to_owned(),
        file_name,
        started_at,
        ended_at: ended_at.max(started_at),
        duration_ms: i64::try_from(duration_ms).unwrap_or(i64::MAX),
        bytes: i64::try_from(bytes).unwrap_or(i64::MAX),
        sha256,
        chapters: serde_json::to_string(&chapters).unwrap_or_else(|_| "[]".into()),
    };
    let stored = match store.insert_recording(&new, ended_at).await {
        Ok(stored) => stored,
        Err(source) => {
            // No row, no file: the raw files stay so that the remux can be done again.
            let _ = tokio::fs::remove_file(&output).await;
            tracing::error!(error = %source, raw_dir = %raw_dir.display(), "cannot store the recording; raw files kept");
            return Err(RecordingError::Store { source, raw_dir });
        }
    };
    remove_dir(&raw_dir).await;
    tracing::info!(bytes, duration_ms, sha256 = %stored.sha256, file = %output.display(), "recording stored");
    Ok(Some(stored))
}

async fn remove_dir(dir: &Path) {
    match tokio::fs::remove_dir_all(dir).await {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
            tracing::warn!(%error, dir = %dir.display(), "cannot remove the raw recording directory");
        }
        _ => {}
    }
}

/// One raw file that has frames, with its place on the recording's clock.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Input {
    path: PathBuf,
    kind: MediaKind,
    slot: usize,
    offset_ms: u64,
    last_ms: u64,
}

/// The files worth remuxing, video first, then audio by slot.
fn inputs(files: Vec<RecordedFile>, raw_dir: &Path) -> Result<Vec<Input>, RecordingError> {
    let mut inputs = Vec::new();
    for file in files {
        let Some(offset_ms) = file.first_frame_ms.filter(|_| file.frames > 0) else { continue };
        // The raw directory is deleted afterwards: only what is inside it is ours to read.
        if !file.path.starts_with(raw_dir) {
            return Err(RecordingError::ForeignFile { file: file.path, raw_dir: raw_dir.to_owned() });
        }
        inputs.push(Input {
            path: file.path,
            kind: file.kind,
            slot: file.slot,
            offset_ms,
            last_ms: file.last_frame_ms.unwrap_or(0),
        });
    }
    inputs.sort_by_key(|i| (i.kind != MediaKind::Video, i.slot));
    Ok(inputs)
}

/// ffmpeg's metadata file (`;FFMETADATA1`) with one `[CHAPTER]` per agenda item.
fn ffmetadata(chapters: &[Chapter]) -> String {
    let mut text = String::from(";FFMETADATA1\n");
    for chapter in chapters {
        let end = chapter.end_ms.max(chapter.start_ms);
        text.push_str(&format!(
            "[CHAPTER]\nTIMEBASE=1/1000\nSTART={}\nEND={}\ntitle={}\n",
            chapter.start_ms,
            end,
            escape_metadata(&chapter.title)
        ));
    }
    text
}

/// ffmpeg's metadata escaping: `=`, `;`, `#`, `\` and newlines take a backslash.
fn escape_metadata(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '=' | ';' | '#' | '\\' | '\n' => {
                out.push('\\');
                out.push(c);
            }
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

fn audio_title(slot: usize) -> String {
    match slot {
        0 => "voce / voice".into(),
        1 => "presidenza / chair".into(),
        n => format!("audio {n}"),
    }
}

/// `file:` keeps a path from being read as an option (a leading `-`) or a protocol (`x:`).
fn file_arg(path: &Path) -> OsString {
    let mut arg = OsString::from("file:");
    arg.push(path.as_os_str());
    arg
}

fn remux_args(inputs: &[Input], metadata: &Path, output: &Path, title: Option<&str>) -> Vec<OsString> {
    let mut args: Vec<OsString> = ["-nostdin", "-hide_banner", "-loglevel", "error", "-y"].map(Into::into).to_vec();
    for input in inputs {
        args.push("-itsoffset".into());
        args.push(format!("{}.{:03}", input.offset_ms / 1000, input.offset_ms % 1000).into());
        args.push("-i".into());
        args.push(file_arg(&input.path));
    }
    args.push("-i".into());
    args.push(file_arg(metadata));
    for n in 0..inputs.len() {
        args.push("-map".into());
        args.push(n.to_string().into());
    }
    let meta = inputs.len().to_string();
    for arg in ["-map_metadata", &meta, "-map_chapters", &meta, "-c", "copy"] {
        args.push(arg.into());
    }
    if let Some(title) = title {
        args.push("-metadata".into());
        args.push(format!("title={title}").into());
    }
    for (n, input) in inputs.iter().filter(|i| i.kind == MediaKind::Audio).enumerate() {
        args.push(format!("-metadata:s:a:{n}").into());
        args.push(format!("title={}", audio_title(input.slot)).into());
        args.push(format!("-metadata:s:a:{n}").into());
        args.push("language=ita".into());
    }
    args.push("-f".into());
    args.push("webm".into());
    args.push(file_arg(output));
    args
}

async fn run_ffmpeg(args: Vec<OsString>, raw_dir: &Path) -> Result<(), RecordingError> {
    tracing::debug!(?args, "ffmpeg");
    let output = Command::new("ffmpeg")
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|source| RecordingError::ToolMissing { tool: "ffmpeg", source, raw_dir: raw_dir.to_owned() })?;
    if output.status.success() {
        return Ok(());
    }
    let mut stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
    if stderr.len() > STDERR_LIMIT {
        let cut = (0..=STDERR_LIMIT).rev().find(|&i| stderr.is_char_boundary(i)).unwrap_or(0);
        stderr.truncate(cut);
        stderr.push('…');
    }
    Err(RecordingError::Remux { status: output.status.to_string(), stderr, raw_dir: raw_dir.to_owned() })
}

/// The container's duration according to ffprobe, or `None` if it cannot say.
async fn probe_duration_ms(path: &Path) -> Option<u64> {
    let output = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "format=duration", "-of", "json"])
        .arg(file_arg(path))
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .inspect_err(|error| tracing::warn!(%error, "ffprobe cannot be started"))
        .ok()?;
    if !output.status.success() {
        tracing::warn!(stderr = %String::from_utf8_lossy(&output.stderr), "ffprobe failed");
        return None;
    }
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).ok()?;
    let seconds: f64 = json["format"]["duration"].as_str()?.parse().ok()?;
    (seconds.is_finite() && seconds >= 0.0).then(|| (seconds * 1000.0).round() as u64)
}

/// SHA-256 (hex) and size of a file, read in blocks (recordings are large).
fn hash_file(path: &Path) -> Result<(String, u64), RecordingError> {
    let mut file = std::fs::File::open(path).map_err(io_error("open", path))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    let mut bytes = 0u64;
    loop {
        let n = file.read(&mut buffer).map_err(io_error("read", path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        bytes += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), bytes))
}

/// A recording whose files are closed, for [`archive`].
#[derive(Debug)]
pub struct Finished {
    pub data_dir: PathBuf,
    pub session: String,
    pub prepared: PreparedRecording,
    pub started_at: i64,
    pub ended_at: i64,
    pub files: Vec<RecordedFile>,
    pub chapters: Vec<Chapter>,
}

/// Remuxes, hashes and archives a finished recording (the persistence task runs this).
pub async fn archive(store: &Store, f: Finished) {
    let session = f.session.clone();
    match finish(store, &f.data_dir, &f.session, f.prepared, f.started_at, f.ended_at, f.files, f.chapters).await {
        Ok(Some(stored)) => {
            tracing::info!(%session, "session recording archived");
            if let Err(error) = store.emit_recording_published_event(&stored, stored.created_at).await {
                tracing::error!(%session, %error, "webhook event not stored");
            }
        }
        Ok(None) => tracing::info!(%session, "nothing was on air: no recording kept"),
        Err(error) => tracing::error!(%session, %error, "recording not archived"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, kind: MediaKind, slot: usize, frames: u64, first: Option<u64>) -> RecordedFile {
        RecordedFile {
            path: PathBuf::from("/d/recordings/s/r.raw").join(name),
            kind,
            slot,
            frames,
            first_frame_ms: first,
            last_frame_ms: first.map(|_| 1000),
        }
    }

    #[test]
    fn an_unfinished_recording_is_adopted_once_with_its_video_header_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        let dead = prepare(dir.path(), "s1").unwrap();
        let ours = prepare(dir.path(), "s1").unwrap();
        // What a killed recorder leaves: the header as created, two whole frames and half a third.
        let mut ivf = vec![0u8; 32];
        ivf[0..4].copy_from_slice(b"DKIF");
        let keyframe = [0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01, 0xAB];
        for (pts, frame) in [(0u64, &keyframe[..]), (90 * 40, &[0x01, 0xAB][..])] {
            ivf.extend_from_slice(&(frame.len() as u32).to_le_bytes());
            ivf.extend_from_slice(&pts.to_le_bytes());
            ivf.extend_from_slice(frame);
        }
        let whole = ivf.len();
        ivf.extend_from_slice(&100u32.to_le_bytes());
        ivf.extend_from_slice(&[0; 20]);
        std::fs::write(dead.raw_dir.join("video.ivf"), &ivf).unwrap();
        std::fs::write(dead.raw_dir.join("audio-1.ogg"), b"OggS....OggS....OggS....OggS").unwrap();
        std::fs::write(dead.raw_dir.join("stray.txt"), b"x").unwrap();

        let orphans = adopt_orphans(dir.path(), "s1", Some(&ours.raw_dir));
        assert_eq!(orphans.len(), 1, "ours is not adopted: {orphans:?}");
        let o = &orphans[0];
        assert_eq!(o.prepared.id, dead.id);
        assert!(!dead.raw_dir.exists() && o.prepared.raw_dir.extension().unwrap() == "adopted");
        let mut files = o.files.clone();
        files.sort_by_key(|f| f.kind != MediaKind::Video);
        assert_eq!((files[0].kind, files[0].frames, files[0].last_frame_ms), (MediaKind::Video, 2, Some(40)));
        assert_eq!((files[1].kind, files[1].slot, files[1].frames), (MediaKind::Audio, 1, 2));
        let repaired = std::fs::read(&files[0].path).unwrap();
        assert_eq!(repaired.len(), whole, "the truncated frame is cut off");
        assert_eq!(u16::from_le_bytes([repaired[12], repaired[13]]), 640);
        assert_eq!(u16::from_le_bytes([repaired[14], repaired[15]]), 480);
        assert_eq!(u32::from_le_bytes(repaired[24..28].try_into().unwrap()), 2);
        assert!(adopt_orphans(dir.path(), "s1", Some(&ours.raw_dir)).is_empty(), "adopted once");

        // A recording closed by its recorder is its node's to finish, not an orphan.
        let (closed, _) = closed(ours.clone(), Vec::new());
        assert!(closed.raw_dir.ends_with(format!("{}.closed", ours.id)) && closed.raw_dir.is_dir());
        assert!(adopt_orphans(dir.path(), "s1", None).is_empty());
    }

    #[test]
    fn prepare_makes_the_raw_dir() {
        let dir = tempfile::tempdir().unwrap();
        let a = prepare(dir.path(), "s1").unwrap();
        let b = prepare(dir.path(), "s1").unwrap();
        assert_ne!(a.id, b.id);
        assert!(a.raw_dir.is_dir());
        assert_eq!(a.raw_dir, dir.path().join("recordings/s1").join(format!("{}.raw", a.id)));
        assert!(prepare(dir.path(), "../x").is_err());
    }

    #[test]
    fn metadata_escapes_titles() {
        let chapters = vec![Chapter { title: "1. Bilancio; a=b #x \\ y\nz".into(), start_ms: 0, end_ms: 1500 }];
        assert_eq!(
            ffmetadata(&chapters),
            ";FFMETADATA1\n[CHAPTER]\nTIMEBASE=1/1000\nSTART=0\nEND=1500\ntitle=1. Bilancio\\; a\\=b \\#x \\\\ y\\\nz\n"
        );
    }

    #[test]
    fn inputs_skip_empty_files_and_put_video_first() {
        let raw = Path::new("/d/recordings/s/r.raw");
        let files = vec![
            file("audio-1.ogg", MediaKind::Audio, 1, 10, Some(5)),
            file("audio-0.ogg", MediaKind::Audio, 0, 10, Some(0)),
            file("video.ivf", MediaKind::Video, 0, 10, Some(1234)),
            file("audio-2.ogg", MediaKind::Audio, 2, 0, None),
        ];
        let inputs = inputs(files, raw).unwrap();
        let names: Vec<_> = inputs.iter().map(|i| i.path.file_name().unwrap().to_str().unwrap()).collect();
        assert_eq!(names, ["video.ivf", "audio-0.ogg", "audio-1.ogg"]);
        let args = remux_args(&inputs, &raw.join("c.ffmeta"), Path::new("/d/out.webm"), Some("Consiglio"));
        let args: Vec<String> = args.iter().map(|a| a.to_string_lossy().into_owned()).collect();
        let text = args.join(" ");
        assert!(text.starts_with("-nostdin -hide_banner -loglevel error -y -itsoffset 1.234 -i file:/d/recordings/s/r.raw/video.ivf -itsoffset 0.000 -i file:"), "{text}");
        assert!(text.contains("-map_metadata 3 -map_chapters 3 -c copy"), "{text}");
        assert!(text.contains("-metadata:s:a:0 title=voce / voice"), "{text}");
        assert!(text.contains("-metadata:s:a:1 title=presidenza / chair"), "{text}");
        assert!(text.ends_with("-f webm file:/d/out.webm"), "{text}");
        assert!(!text.contains("genpts"));
        let outside = vec![file("x", MediaKind::Video, 0, 1, Some(0))];
        assert!(matches!(inputs_outside(outside), Err(RecordingError::ForeignFile { .. })));
    }

    fn inputs_outside(files: Vec<RecordedFile>) -> Result<Vec<Input>, RecordingError> {
        inputs(files, Path::new("/elsewhere"))
    }
}
