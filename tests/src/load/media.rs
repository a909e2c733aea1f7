//! The media every load publisher sends: a VP8 IVF (640x360, 30 fps, ≈1.5 Mbps, a keyframe every 2 s)
//! and an Ogg/Opus file (20 ms frames), made once with ffmpeg into a cache directory and packetised
//! into RTP payloads ahead of time, so the send path only copies bytes.

use std::path::{Path, PathBuf};
use std::process::Command;

use bytes::Bytes;

use super::err;

/// Largest RTP payload we produce (VP8 descriptor included): leaves room for SRTP and extensions.
const MAX_PAYLOAD: usize = 1150;
/// Length of the generated clips.
const CLIP_SECONDS: u32 = 10;

/// One encoded frame, already split into RTP payloads.
pub struct Frame {
    pub payloads: Vec<Bytes>,
    pub keyframe: bool,
}

/// The packetised clips, shared by every publisher.
pub struct Media {
    /// 30 fps: frame `i` is due at `i * 1/30 s`, RTP timestamp step 3000.
    pub video: Vec<Frame>,
    /// 20 ms Opus packets, RTP timestamp step 960.
    pub audio: Vec<Bytes>,
}

impl Media {
    /// Generates (if missing) and loads the clips under `cache`.
    pub fn load(cache: &Path) -> Result<Media, String> {
        let (ivf, ogg) = generate(cache)?;
        let video = vp8_frames(&std::fs::read(&ivf).map_err(err("reading the IVF"))?)?;
        let audio = opus_packets(&std::fs::read(&ogg).map_err(err("reading the Ogg file"))?)?;
        if video.is_empty() || audio.is_empty() {
            return Err("the generated media is empty".into());
        }
        Ok(Media { video, audio })
    }

    /// Average bit rate of the video clip, for the report.
    pub fn video_kbps(&self) -> f64 {
        let bytes: usize = self.video.iter().flat_map(|f| &f.payloads).map(|p| p.len()).sum();
        bytes as f64 * 8.0 / (self.video.len() as f64 / 30.0) / 1000.0
    }

    /// RTP packets per second one publisher sends (video + audio).
    pub fn packets_per_second(&self) -> f64 {
        let video: usize = self.video.iter().map(|f| f.payloads.len()).sum();
        video as f64 / (self.video.len() as f64 / 30.0) + 50.0
    }
}

fn generate(cache: &Path) -> Result<(PathBuf, PathBuf), String> {
    std::fs::create_dir_all(cache).map_err(err("creating the media cache"))?;
    let ivf = cache.join("load-640x360-1500k.ivf");
    let ogg = cache.join("load-opus-48k.ogg");
    let secs = CLIP_SECONDS.to_string();
    let jobs: [(&PathBuf, Vec<&str>); 2] = [
        (
            &ivf,
            vec![
                "-f",
                "lavfi",
                "-i",
                "testsrc2=size=640x360:rate=30",
                "-t",
                &secs,
                "-c:v",
                "libvpx",
                "-b:v",
                "1500k",
                "-minrate",
                "1500k",
                "-maxrate",
                "1500k",
                "-g",
                "60",
                "-keyint_min",
                "60",
                "-deadline",
                "realtime",
                "-cpu-used",
                "8",
                "-an",
                "-f",
                "ivf",
            ],
        ),
        (
            &ogg,
            vec![
                "-f",
                "lavfi",
                "-i",
                "sine=frequency=440:sample_rate=48000",
                "-t",
                &secs,
                "-ac",
                "2",
                "-c:a",
                "libopus",
                "-b:a",
                "48k",
                "-frame_duration",
                "20",
                "-vn",
                "-f",
                "ogg",
            ],
        ),
    ];
    for (out, args) in jobs {
        if out.exists() {
            continue;
        }
        // Write beside and rename, so an interrupted run never leaves a truncated cache entry.
        let tmp = out.with_extension("part");
        let status = Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-y"])
            .args(&args)
            .arg(&tmp)
            .status()
            .map_err(err("running ffmpeg (Debian package `ffmpeg`)"))?;
        if !status.success() {
            return Err(format!("ffmpeg failed ({status}) making {}", out.display()));
        }
        std::fs::rename(&tmp, out).map_err(err("renaming the generated media"))?;
    }
    Ok((ivf, ogg))
}

/// IVF: 32-byte file header, then per frame a 12-byte header (size u32 LE, pts u64 LE) and the data.
fn vp8_frames(ivf: &[u8]) -> Result<Vec<Frame>, String> {
    if ivf.len() < 32 || &ivf[..4] != b"DKIF" || &ivf[8..12] != b"VP80" {
        return Err("not a VP8 IVF file".into());
    }
    let header_len = u16::from_le_bytes([ivf[6], ivf[7]]) as usize;
    let mut at = header_len;
    let mut frames = Vec::new();
    while at + 12 <= ivf.len() {
        let size = u32::from_le_bytes([ivf[at], ivf[at + 1], ivf[at + 2], ivf[at + 3]]) as usize;
        let data = ivf.get(at + 12..at + 12 + size).ok_or("truncated IVF frame")?;
        at += 12 + size;
        if data.is_empty() {
            continue;
        }
        frames.push(Frame { payloads: packetise_vp8(data), keyframe: data[0] & 0x01 == 0 });
    }
    Ok(frames)
}

/// RFC 7741: a one-byte payload descriptor per packet, S=1 (start of partition 0) on the first.
fn packetise_vp8(frame: &[u8]) -> Vec<Bytes> {
    frame
        .chunks(MAX_PAYLOAD - 1)
        .enumerate()
        .map(|(i, chunk)| {
            let mut p = Vec::with_capacity(chunk.len() + 1);
            p.push(if i == 0 { 0x10 } else { 0x00 });
            p.extend_from_slice(chunk);
            Bytes::from(p)
        })
        .collect()
}

/// Ogg pages → Opus packets (one frame per packet), without the OpusHead and OpusTags headers.
fn opus_packets(ogg: &[u8]) -> Result<Vec<Bytes>, String> {
    let mut packets = Vec::new();
    let mut current = Vec::new();
    let mut at = 0;
    while at + 27 <= ogg.len() {
        if &ogg[at..at + 4] != b"OggS" {
            return Err(format!("bad Ogg page at byte {at}"));
        }
        let segments = ogg[at + 26] as usize;
        let table = ogg.get(at + 27..at + 27 + segments).ok_or("truncated Ogg page")?;
        let mut body = at + 27 + segments;
        for &lacing in table {
            let seg = ogg.get(body..body + lacing as usize).ok_or("truncated Ogg segment")?;
            current.extend_from_slice(seg);
            body += lacing as usize;
            // A lacing value below 255 ends a packet.
            if lacing < 255 {
                packets.push(Bytes::from(std::mem::take(&mut current)));
            }
        }
        at = body;
    }
    Ok(packets.into_iter().filter(|p| !p.starts_with(b"OpusHead") && !p.starts_with(b"OpusTags")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vp8_descriptor_marks_only_the_first_packet_as_a_start() {
        let payloads = packetise_vp8(&vec![0u8; 3000]);
        assert_eq!(payloads.len(), 3);
        assert_eq!(payloads[0][0], 0x10);
        assert!(payloads[1..].iter().all(|p| p[0] == 0x00));
        assert_eq!(payloads.iter().map(|p| p.len() - 1).sum::<usize>(), 3000);
    }
}
