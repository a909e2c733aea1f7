//! ICE-TCP's pure parts: RFC 4571 framing (a 2-byte length before every packet) with a bounded
//! decoder, and the bounded lossy write queue of one connection. No sockets here: the driver owns
//! those, the engine owns the peer connections.

use std::collections::VecDeque;

use bytes::{Buf, BufMut, BytesMut};

/// Largest frame we accept. WebRTC keeps packets under the path MTU; anything larger on this
/// surface is garbage or an attack, and closes the connection.
pub const MAX_FRAME: usize = 1600;

/// A connection, as the driver names it (accept order); the engine routes by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("frame of {0} bytes exceeds the {MAX_FRAME}-byte bound")]
    TooLarge(usize),
    #[error("empty frame")]
    Empty,
}

/// Accumulates bytes read from a stream and yields whole frames. Holds at most one frame plus its
/// header, so a peer cannot make it grow.
#[derive(Default)]
pub struct FrameDecoder {
    buf: BytesMut,
}

impl FrameDecoder {
    /// Appends `data` and returns every complete frame in it. An error means the stream is not
    /// RFC 4571 (or hostile): the caller closes the connection.
    pub fn push(&mut self, mut data: &[u8], frames: &mut Vec<BytesMut>) -> Result<(), FrameError> {
        loop {
            // Take only what completes the current header or frame, so the buffer stays bounded
            // however much one read returned.
            let want = match self.header() {
                None => 2 - self.buf.len(),
                Some(len) => 2 + len - self.buf.len(),
            };
            let take = want.min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if let Some(len) = self.header() {
                if len == 0 {
                    return Err(FrameError::Empty);
                }
                if len > MAX_FRAME {
                    return Err(FrameError::TooLarge(len));
                }
                if self.buf.len() == 2 + len {
                    self.buf.advance(2);
                    frames.push(self.buf.split());
                    continue;
                }
            }
            if data.is_empty() {
                return Ok(());
            }
        }
    }

    fn header(&self) -> Option<usize> {
        (self.buf.len() >= 2).then(|| u16::from_be_bytes([self.buf[0], self.buf[1]]) as usize)
    }
}

/// Appends `packet` framed (length prefix) to `out`. Packets over 65535 bytes cannot be framed.
pub fn encode(packet: &[u8], out: &mut BytesMut) -> Result<(), FrameError> {
    let len = u16::try_from(packet.len()).map_err(|_| FrameError::TooLarge(packet.len()))?;
    out.reserve(2 + packet.len());
    out.put_u16(len);
    out.put_slice(packet);
    Ok(())
}

/// What a packet on an ICE connection is, by its first bytes (RFC 7983, RFC 5761).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketClass {
    /// STUN, DTLS, RTCP: the connection's control; dropped only when nothing else can go.
    Control,
    /// Media: the first to go when the connection cannot keep up.
    Rtp,
}

pub fn classify(packet: &[u8]) -> PacketClass {
    match packet {
        [first, pt, ..] if (128..=191).contains(first) && !(192..=223).contains(pt) => PacketClass::Rtp,
        _ => PacketClass::Control,
    }
}

/// One connection's outgoing packets, bounded in bytes. Full, it drops whole RTP packets (the
/// oldest first: a late video packet is worth less than a fresh one); control packets are dropped
/// only when no RTP is left to drop. A stalled citizen thus costs the room nothing but this bound.
pub struct WriteQueue {
    queue: VecDeque<(PacketClass, BytesMut)>,
    bytes: usize,
    limit: usize,
    pub dropped: u64,
}

impl WriteQueue {
    pub fn new(limit: usize) -> Self {
        WriteQueue { queue: VecDeque::new(), bytes: 0, limit, dropped: 0 }
    }

    pub fn push(&mut self, packet: BytesMut) {
        let class = classify(&packet);
        while self.bytes + packet.len() > self.limit {
            let Some(i) = self.queue.iter().position(|(c, _)| *c == PacketClass::Rtp) else { break };
            if let Some((_, p)) = self.queue.remove(i) {
                self.bytes -= p.len();
                self.dropped += 1;
            }
        }
        if self.bytes + packet.len() > self.limit {
            // Only control left. A new RTP packet gives way; new control pushes out the oldest control.
            if class == PacketClass::Rtp {
                self.dropped += 1;
                return;
            }
            while self.bytes + packet.len() > self.limit {
                let Some((_, p)) = self.queue.pop_front() else { break };
                self.bytes -= p.len();
                self.dropped += 1;
            }
        }
        self.bytes += packet.len();
        self.queue.push_back((class, packet));
    }

    pub fn pop(&mut self) -> Option<BytesMut> {
        let (_, p) = self.queue.pop_front()?;
        self.bytes -= p.len();
        Some(p)
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.queue.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(packets: &[&[u8]]) -> Vec<u8> {
        let mut out = BytesMut::new();
        for p in packets {
            encode(p, &mut out).unwrap();
        }
        out.to_vec()
    }

    #[test]
    fn many_frames_in_one_read() {
        let mut d = FrameDecoder::default();
        let mut frames = Vec::new();
        d.push(&framed(&[b"one", b"two", b"three"]), &mut frames).unwrap();
        assert_eq!(frames, vec![&b"one"[..], &b"two"[..], &b"three"[..]]);
    }

    #[test]
    fn frames_split_across_reads_byte_by_byte() {
        let bytes = framed(&[&[7u8; 1200], b"x"]);
        let mut d = FrameDecoder::default();
        let mut frames = Vec::new();
        for b in &bytes {
            d.push(std::slice::from_ref(b), &mut frames).unwrap();
            assert!(d.buf.len() <= 2 + MAX_FRAME);
        }
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0].len(), 1200);
        assert_eq!(&frames[1][..], b"x");
    }

    #[test]
    fn hostile_lengths_are_refused_before_buffering() {
        let mut d = FrameDecoder::default();
        let mut frames = Vec::new();
        assert_eq!(d.push(&[0xFF, 0xFF, 1, 2, 3], &mut frames), Err(FrameError::TooLarge(0xFFFF)));
        let mut d = FrameDecoder::default();
        assert_eq!(d.push(&[0, 0], &mut frames), Err(FrameError::Empty));
        // HTTP on the ICE port: "GE" = 0x4745 = 18245 bytes, over the bound.
        let mut d = FrameDecoder::default();
        assert!(d.push(b"GET / HTTP/1.1\r\n", &mut frames).is_err());
        assert!(frames.is_empty());
    }

    #[test]
    fn a_flood_of_valid_frames_keeps_the_buffer_bounded() {
        let one = framed(&[&[1u8; MAX_FRAME]]);
        let flood: Vec<u8> = one.iter().copied().cycle().take(one.len() * 100 + 5).collect();
        let mut d = FrameDecoder::default();
        let mut frames = Vec::new();
        d.push(&flood, &mut frames).unwrap();
        assert_eq!(frames.len(), 100);
        assert_eq!(d.buf.len(), 5);
    }

    #[test]
    fn encode_refuses_what_two_bytes_cannot_say() {
        let mut out = BytesMut::new();
        assert!(encode(&vec![0; 70_000], &mut out).is_err());
        encode(b"ab", &mut out).unwrap();
        assert_eq!(&out[..], &[0, 2, b'a', b'b']);
    }

    fn rtp(n: u8) -> BytesMut {
        let mut p = BytesMut::from(&[0x80, 96, 0, n][..]);
        p.resize(100, 0);
        p
    }

    fn rtcp() -> BytesMut {
        let mut p = BytesMut::from(&[0x80, 200, 0, 6][..]);
        p.resize(100, 0);
        p
    }

    fn dtls() -> BytesMut {
        let mut p = BytesMut::from(&[22, 0xFE, 0xFD][..]);
        p.resize(100, 0);
        p
    }

    #[test]
    fn classifies_by_first_bytes() {
        assert_eq!(classify(&rtp(1)), PacketClass::Rtp);
        assert_eq!(classify(&rtcp()), PacketClass::Control);
        assert_eq!(classify(&dtls()), PacketClass::Control);
        assert_eq!(classify(&[0, 1, 0, 0]), PacketClass::Control);
        assert_eq!(classify(&[]), PacketClass::Control);
    }

    #[test]
    fn a_full_queue_drops_rtp_before_control() {
        let mut q = WriteQueue::new(300);
        q.push(rtp(1));
        q.push(dtls());
        q.push(rtp(2));
        q.push(rtcp()); // full: the oldest RTP goes
        assert_eq!(q.dropped, 1);
        q.push(rtp(3)); // rtp(2) goes
        let kept: Vec<BytesMut> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(kept, vec![dtls(), rtcp(), rtp(3)]);
        assert_eq!(q.dropped, 2);

        let mut q = WriteQueue::new(200);
        q.push(dtls());
        q.push(rtcp());
        q.push(rtp(4)); // only control queued: the new RTP gives way
        assert_eq!(q.len(), 2);
        q.push(dtls()); // control over control: the oldest goes
        assert_eq!(q.len(), 2);
        assert_eq!(q.dropped, 2);
    }
}
