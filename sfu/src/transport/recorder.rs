//! Recording a program feed without re-encoding: the munged RTP of each program output is
//! depacketized on a writer thread into VP8-in-IVF (presentation times from RTP timestamps, so a
//! suspended stretch is a gap in time, not a jump cut) and Opus-in-Ogg. The media loop only
//! `try_send`s into a bounded channel: a slow disk costs recorded frames, never forwarding.

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::Instant;

use rtc::media::io::Writer as _;
use rtc::media::io::ogg_writer::OggWriter;
use rtc::rtp;
use rtc::rtp::packetizer::Depacketizer;
use tokio::sync::oneshot;
use tracing::{info, warn};

use crate::api::{MediaKind, RecordedFile, SfuError};

/// Packets buffered between the media loop and the disk (≈ 10 s of a program's media).
const CHANNEL: usize = 8192;

pub(crate) type StopReply = oneshot::Sender<Result<Vec<RecordedFile>, SfuError>>;

enum Msg {
    Packet { file: usize, packet: rtp::Packet, at: Instant },
    Stop(StopReply),
}

/// The media loop's end of a recording.
pub(crate) struct Recorder {
    tx: SyncSender<Msg>,
    /// Packets lost to a full channel (the disk did not keep up).
    lost: u64,
}

impl Recorder {
    /// Creates `dir` and one file per output (`outputs[i]` = kind and slot of output `i`), and
    /// starts the writer thread. Times in the result are relative to `started`.
    pub(crate) fn start(dir: &Path, outputs: &[(MediaKind, usize)], started: Instant) -> Result<Recorder, SfuError> {
        let io = |e: std::io::Error| SfuError::Recording(format!("{}: {e}", dir.display()));
        std::fs::create_dir_all(dir).map_err(io)?;
        let mut files = Vec::new();
        for &(kind, slot) in outputs {
            files.push(match kind {
                MediaKind::Video => Track::Video(IvfFile::create(dir.join("video.ivf"), slot).map_err(io)?),
                MediaKind::Audio => Track::Audio(OggFile::create(dir.join(format!("audio-{slot}.ogg")), slot)?),
            });
        }
        let (tx, rx) = sync_channel(CHANNEL);
        std::thread::Builder::new()
            .name("sfu-recorder".into())
            .spawn(move || write_loop(rx, files, started))
            .map_err(io)?;
        info!(dir = %dir.display(), "program recording started");
        Ok(Recorder { tx, lost: 0 })
    }

    /// Queues one forwarded packet of output `file`.
    pub(crate) fn push(&mut self, file: usize, packet: rtp::Packet, at: Instant) {
        match self.tx.try_send(Msg::Packet { file, packet, at }) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.lost += 1;
                if self.lost.is_power_of_two() {
                    warn!(lost = self.lost, "recorder behind: packets dropped from the recording");
                }
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }

    /// Closes every file; `reply` gets the result once they are written.
    pub(crate) fn stop(self, reply: StopReply) {
        if let Err(e) = self.tx.send(Msg::Stop(reply))
            && let Msg::Stop(reply) = e.0
        {
            let _ = reply.send(Err(SfuError::Recording("the recorder thread stopped".into())));
        }
    }
}

fn write_loop(rx: Receiver<Msg>, mut files: Vec<Track>, started: Instant) {
    let mut failed: Option<String> = None;
    for msg in rx.iter() {
        match msg {
            Msg::Packet { file, packet, at } => {
                let Some(track) = files.get_mut(file) else { continue };
                let since = at.saturating_duration_since(started).as_millis() as u64;
                if let Err(e) = track.write(&packet, since)
                    && failed.is_none()
                {
                    warn!(error = %e, "recording write failed");
                    failed = Some(e);
                }
            }
            Msg::Stop(reply) => {
                let mut result = Vec::new();
                for track in files.drain(..) {
                    match track.close() {
                        Ok(f) => result.push(f),
                        Err(e) => failed = failed.or(Some(e)),
                    }
                }
                let _ = reply.send(match failed {
                    Some(e) => Err(SfuError::Recording(e)),
                    None => Ok(result),
                });
                return;
            }
        }
    }
    // The engine dropped the recorder without stopping it (program closed): still close the files.
    for track in files {
        let _ = track.close();
    }
}

#[allow(clippy::large_enum_variant)] // two or three per recording
enum Track {
    Video(IvfFile),
    Audio(OggFile),
}

impl Track {
    fn write(&mut self, packet: &rtp::Packet, since_ms: u64) -> Result<(), String> {
        match self {
            Track::Video(f) => f.write(packet, since_ms).map_err(|e| e.to_string()),
            Track::Audio(f) => f.write(packet, since_ms),
        }
    }

    fn close(self) -> Result<RecordedFile, String> {
        match self {
            Track::Video(f) => f.close().map_err(|e| e.to_string()),
            Track::Audio(f) => f.close(),
        }
    }
}

/// RTP timestamps unwrapped to 64 bits, relative to the first one.
#[derive(Default)]
struct Timeline {
    first: Option<i64>,
    last: i64,
}

impl Timeline {
    /// Ticks since the first timestamp (wraparound-safe).
    fn place(&mut self, ts: u32) -> i64 {
        let Some(first) = self.first else {
            self.first = Some(i64::from(ts));
            self.last = i64::from(ts);
            return 0;
        };
        let delta = ts.wrapping_sub(self.last as u32) as i32;
        self.last += i64::from(delta);
        self.last - first
    }
}

/// VP8 frames in IVF. Frames are rebuilt from packets sharing a timestamp; a frame with a missing
/// packet is dropped and the file resumes at the next keyframe (a damaged frame would smear until then).
struct IvfFile {
    out: BufWriter<File>,
    path: PathBuf,
    slot: usize,
    frames: u64,
    size: (u16, u16),
    timeline: Timeline,
    last_pts: i64,
    first_ms: Option<u64>,
    frame: Vec<u8>,
    frame_ts: Option<u32>,
    frame_at: u64,
    frame_ok: bool,
    next_seq: Option<u16>,
    need_keyframe: bool,
}

/// IVF header: "DKIF", version 0, 32 bytes, VP80, size, timebase 1/90000, frame count.
const IVF_HEADER: usize = 32;

impl IvfFile {
    fn create(path: PathBuf, slot: usize) -> std::io::Result<IvfFile> {
        let mut out = BufWriter::new(File::create(&path)?);
        let mut header = [0u8; IVF_HEADER];
        header[0..4].copy_from_slice(b"DKIF");
        header[6..8].copy_from_slice(&(IVF_HEADER as u16).to_le_bytes());
        header[8..12].copy_from_slice(b"VP80");
        header[16..20].copy_from_slice(&90_000u32.to_le_bytes()); // timebase denominator
        header[20..24].copy_from_slice(&1u32.to_le_bytes()); // timebase numerator
        out.write_all(&header)?;
        Ok(IvfFile {
            out,
            path,
            slot,
            frames: 0,
            size: (0, 0),
            timeline: Timeline::default(),
            last_pts: -1,
            first_ms: None,
            frame: Vec::new(),
            frame_ts: None,
            frame_at: 0,
            frame_ok: false,
            next_seq: None,
            need_keyframe: true,
        })
    }

    fn write(&mut self, packet: &rtp::Packet, since_ms: u64) -> std::io::Result<()> {
        let h = &packet.header;
        let in_order = self.next_seq.is_none_or(|n| n == h.sequence_number);
        self.next_seq = Some(h.sequence_number.wrapping_add(1));
        if !in_order {
            // Something was lost: the next delta frames may reference it.
            self.need_keyframe = true;
        }
        if self.frame_ts != Some(h.timestamp) {
            // A new frame; an unfinished previous one (its marker packet lost) is dropped.
            self.frame.clear();
            self.frame_ts = Some(h.timestamp);
            self.frame_at = since_ms;
            self.frame_ok = true;
        } else if !in_order {
            self.frame_ok = false;
        }
        let mut vp8 = rtp::codec::vp8::Vp8Packet::default();
        let Ok(payload) = vp8.depacketize(&packet.payload) else {
            self.frame_ok = false;
            return Ok(());
        };
        if self.frame.is_empty() && !vp8.is_partition_head(&packet.payload) {
            self.frame_ok = false; // the frame's start is missing
        }
        if !self.frame_ok {
            self.need_keyframe = true;
            return Ok(());
        }
        self.frame.extend_from_slice(&payload);
        if h.marker {
            self.emit(h.timestamp)?;
        }
        Ok(())
    }

    fn emit(&mut self, ts: u32) -> std::io::Result<()> {
        let frame = std::mem::take(&mut self.frame);
        self.frame_ok = false;
        let Some(&tag) = frame.first() else { return Ok(()) };
        let keyframe = tag & 0x01 == 0;
        if self.need_keyframe && !keyframe {
            self.frame = frame;
            self.frame.clear();
            return Ok(());
        }
        if keyframe && frame.len() >= 10 {
            // Key frame header: 3-byte tag, start code, 14-bit width and height.
            let w = u16::from_le_bytes([frame[6], frame[7]]) & 0x3fff;
            let h = u16::from_le_bytes([frame[8], frame[9]]) & 0x3fff;
            if self.size == (0, 0) {
                self.size = (w, h);
            }
        }
        self.need_keyframe = false;
        let pts = self.timeline.place(ts);
        if pts <= self.last_pts {
            // Not after the previous frame (a reordered late frame): a container needs increasing times.
            self.frame = frame;
            self.frame.clear();
            return Ok(());
        }
        self.last_pts = pts;
        self.first_ms.get_or_insert(self.frame_at);
        self.out.write_all(&(frame.len() as u32).to_le_bytes())?;
        self.out.write_all(&(pts as u64).to_le_bytes())?;
        self.out.write_all(&frame)?;
        self.frames += 1;
        self.frame = frame;
        self.frame.clear();
        Ok(())
    }

    fn close(mut self) -> std::io::Result<RecordedFile> {
        self.out.flush()?;
        let mut file = self.out.into_inner().map_err(|e| e.into_error())?;
        file.seek(SeekFrom::Start(12))?;
        file.write_all(&self.size.0.to_le_bytes())?;
        file.write_all(&self.size.1.to_le_bytes())?;
        file.seek(SeekFrom::Start(24))?;
        file.write_all(&(self.frames as u32).to_le_bytes())?;
        file.sync_all()?;
        Ok(RecordedFile {
            path: self.path,
            kind: MediaKind::Video,
            slot: self.slot,
            frames: self.frames,
            first_frame_ms: self.first_ms,
            last_frame_ms: (self.frames > 0).then_some(self.last_pts as u64 / 90),
        })
    }
}

/// Opus packets in Ogg (granule positions follow the RTP timestamps, so gaps stay gaps).
struct OggFile {
    writer: OggWriter<BufWriter<File>>,
    path: PathBuf,
    slot: usize,
    frames: u64,
    timeline: Timeline,
    last: i64,
    first_ms: Option<u64>,
}

impl OggFile {
    fn create(path: PathBuf, slot: usize) -> Result<OggFile, SfuError> {
        let err = |e: String| SfuError::Recording(format!("{}: {e}", path.display()));
        let file = File::create(&path).map_err(|e| err(e.to_string()))?;
        let writer = OggWriter::new(BufWriter::new(file), 48_000, 2).map_err(|e| err(e.to_string()))?;
        Ok(OggFile { writer, path, slot, frames: 0, timeline: Timeline::default(), last: -1, first_ms: None })
    }

    fn write(&mut self, packet: &rtp::Packet, since_ms: u64) -> Result<(), String> {
        if packet.payload.is_empty() {
            return Ok(());
        }
        let at = self.timeline.place(packet.header.timestamp);
        if at <= self.last {
            return Ok(()); // late or duplicate: granule positions must grow
        }
        self.last = at;
        self.writer.write_rtp(packet).map_err(|e| e.to_string())?;
        self.first_ms.get_or_insert(since_ms);
        self.frames += 1;
        Ok(())
    }

    fn close(mut self) -> Result<RecordedFile, String> {
        if self.frames > 0 {
            self.writer.close().map_err(|e| e.to_string())?;
        }
        Ok(RecordedFile {
            path: self.path,
            kind: MediaKind::Audio,
            slot: self.slot,
            frames: self.frames,
            first_frame_ms: self.first_ms,
            last_frame_ms: (self.frames > 0).then_some(self.last as u64 / 48),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeline_unwraps_and_is_relative_to_the_first_timestamp() {
        let mut t = Timeline::default();
        assert_eq!(t.place(u32::MAX - 10), 0);
        assert_eq!(t.place(5), 16);
        assert_eq!(t.place(3_005), 3_016);
    }

    fn vp8_packet(seq: u16, ts: u32, start: bool, marker: bool, body: &[u8]) -> rtp::Packet {
        // VP8 payload descriptor: one byte, S bit on a frame's first packet, partition 0.
        let mut payload = vec![if start { 0x10 } else { 0x00 }];
        payload.extend_from_slice(body);
        rtp::Packet {
            header: rtp::header::Header {
                version: 2,
                sequence_number: seq,
                timestamp: ts,
                marker,
                ssrc: 1,
                payload_type: 96,
                ..Default::default()
            },
            payload: payload.into(),
        }
    }

    /// A keyframe (tag bit 0 clear) of 320×240, or a delta frame, split in two packets.
    fn frame(seq: u16, ts: u32, key: bool) -> [rtp::Packet; 2] {
        let first: &[u8] =
            if key { &[0x00, 0x00, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00] } else { &[0x01, 0x00, 0x00, 0xaa] };
        [vp8_packet(seq, ts, true, false, first), vp8_packet(seq.wrapping_add(1), ts, false, true, &[0xbb; 20])]
    }

    fn read_ivf(path: &Path) -> (Vec<u8>, Vec<(u64, usize)>) {
        let data = std::fs::read(path).expect("ivf written");
        let mut frames = Vec::new();
        let mut at = IVF_HEADER;
        while at + 12 <= data.len() {
            let len = u32::from_le_bytes(data[at..at + 4].try_into().expect("4 bytes")) as usize;
            let pts = u64::from_le_bytes(data[at + 4..at + 12].try_into().expect("8 bytes"));
            frames.push((pts, len));
            at += 12 + len;
        }
        (data[..IVF_HEADER].to_vec(), frames)
    }

    #[test]
    fn ivf_starts_at_a_keyframe_keeps_gaps_and_drops_damaged_frames() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut f = IvfFile::create(dir.path().join("v.ivf"), 0).expect("create");
        let mut seq = 100u16;
        let mut write = |f: &mut IvfFile, ts: u32, key: bool, skip_second: bool, ms: u64| {
            let [a, b] = frame(seq, ts, key);
            seq = seq.wrapping_add(2);
            f.write(&a, ms).expect("write");
            if !skip_second {
                f.write(&b, ms).expect("write");
            }
        };
        write(&mut f, 0, false, false, 0); // delta before any keyframe: not recorded
        write(&mut f, 3_000, true, false, 40); // keyframe: the file starts here
        write(&mut f, 6_000, false, false, 70);
        write(&mut f, 9_000, false, true, 100); // its marker packet is lost: dropped
        write(&mut f, 12_000, false, false, 130); // delta after damage: dropped until a keyframe
        write(&mut f, 15_000 + 90_000 * 5, true, false, 5_200); // after a 5 s suspension
        write(&mut f, 18_000 + 90_000 * 5, false, false, 5_230);
        let rec = f.close().expect("close");
        let (header, frames) = read_ivf(&rec.path);
        assert_eq!(&header[0..4], b"DKIF");
        assert_eq!(&header[8..12], b"VP80");
        assert_eq!(u16::from_le_bytes([header[12], header[13]]), 320);
        assert_eq!(u16::from_le_bytes([header[14], header[15]]), 240);
        assert_eq!(u32::from_le_bytes(header[16..20].try_into().expect("4")), 90_000);
        assert_eq!(u32::from_le_bytes(header[24..28].try_into().expect("4")), 4);
        let pts: Vec<u64> = frames.iter().map(|(p, _)| *p).collect();
        assert_eq!(pts, vec![0, 3_000, 12_000 + 450_000, 15_000 + 450_000]);
        assert_eq!(rec.frames, 4);
        assert_eq!(rec.first_frame_ms, Some(40));
        assert_eq!(rec.last_frame_ms, Some((15_000 + 450_000) / 90));
    }
}
