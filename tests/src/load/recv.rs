//! The light receiving path of subscriber connections: datagrams read in batches (`recvmmsg`), and
//! SRTP media counted from its cleartext RTP header instead of being decrypted by `rtc`.
//!
//! SRTP encrypts only the payload (RFC 3711 §3.1): version, sequence number, SSRC and header
//! extensions stay in clear, which is all the per-stream counters ([`super::peer`]'s `Incoming`)
//! need. What `rtc` still sees on a light connection: STUN (ICE consent), DTLS, RTCP (SRTCP, e.g.
//! the server's sender reports), every packet that may be a latency probe (by its size, see
//! [`may_be_probe`]) and a fixed sample of the others, whose decryption checks that what the light
//! path counted was genuine SRTP of the connection.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// Datagrams per `recvmmsg` call.
pub const BATCH: usize = 32;
/// Receive buffer per datagram: above any MTU on loopback paths we use (the server sends ≤ 1,200 B).
const BUF: usize = 2048;

/// What a datagram on a peer connection's socket carries, from its first two bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Stun,
    Dtls,
    Rtp,
    Rtcp,
    Other,
}

/// RFC 7983 §7 demultiplexes by the first byte (STUN 0–3, DTLS 20–63, RTP/RTCP 128–191); RFC 5761
/// §4 tells RTCP from RTP on one port by the second byte: RTCP packet types 192–223 are payload
/// types 64–95 once the marker bit is masked, a range RTP must not use when multiplexed.
pub fn classify(datagram: &[u8]) -> Kind {
    match datagram {
        [0..=3, ..] => Kind::Stun,
        [20..=63, ..] => Kind::Dtls,
        [128..=191, second, ..] if (64..96).contains(&(second & 0x7f)) => Kind::Rtcp,
        [128..=191, _, ..] => Kind::Rtp,
        _ => Kind::Other,
    }
}

/// The fields of an RTP fixed header (RFC 3550 §5.1) the counters need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpHeader {
    pub ssrc: u32,
    pub sequence_number: u16,
    pub payload_type: u8,
    /// Fixed header, CSRCs and header extension: where the (encrypted) payload starts.
    pub header_len: usize,
}

/// Parses an RTP header; `None` for anything that is not a whole one: shorter than 12 bytes, not
/// version 2, a CSRC list or extension running past the end, or a payload type in RTCP's range.
pub fn rtp_header(d: &[u8]) -> Option<RtpHeader> {
    if d.len() < 12 || d[0] >> 6 != 2 {
        return None;
    }
    let payload_type = d[1] & 0x7f;
    if (64..96).contains(&payload_type) {
        return None;
    }
    let mut len = 12 + 4 * (d[0] & 0x0f) as usize;
    if d[0] & 0x10 != 0 {
        // RFC 3550 §5.3.1: 16-bit profile, 16-bit length in 32-bit words, not counting this word.
        let ext = d.get(len..len + 4)?;
        len += 4 + 4 * u16::from_be_bytes([ext[2], ext[3]]) as usize;
    }
    if len > d.len() {
        return None;
    }
    Some(RtpHeader {
        ssrc: u32::from_be_bytes([d[8], d[9], d[10], d[11]]),
        sequence_number: u16::from_be_bytes([d[2], d[3]]),
        payload_type,
        header_len: len,
    })
}

/// Whether an SRTP packet of `len` bytes with this header may carry a latency probe: a payload of
/// `probe_len` bytes plus the SRTP authentication tag (10 bytes for AES_CM_128_HMAC_SHA1_80, 16 for
/// AEAD_AES_128_GCM). The clip's Opus packets (48 kbit/s, ≈ 120 B) and VP8 packets are larger, so
/// this picks the probes and nothing else, without decrypting.
pub fn may_be_probe(len: usize, header: &RtpHeader, probe_len: usize) -> bool {
    let rest = len.saturating_sub(header.header_len);
    (probe_len + 10..=probe_len + 16).contains(&rest)
}

/// Buffers and headers for one `recvmmsg` of up to [`BATCH`] datagrams, reused for every socket
/// (one set for the whole media thread, not per connection).
pub struct RecvBatch {
    bufs: Vec<[u8; BUF]>,
    addrs: Vec<libc::sockaddr_storage>,
    iovecs: Vec<libc::iovec>,
    msgs: Vec<libc::mmsghdr>,
}

impl Default for RecvBatch {
    fn default() -> Self {
        Self::new()
    }
}

impl RecvBatch {
    pub fn new() -> RecvBatch {
        // SAFETY: all-zero is a valid sockaddr_storage and mmsghdr (null pointers, zero lengths).
        let mut b = RecvBatch {
            bufs: vec![[0; BUF]; BATCH],
            addrs: vec![unsafe { std::mem::zeroed() }; BATCH],
            iovecs: Vec::with_capacity(BATCH),
            msgs: vec![unsafe { std::mem::zeroed() }; BATCH],
        };
        // The vectors never grow again, so the pointers into their heap buffers stay valid.
        for buf in b.bufs.iter_mut() {
            b.iovecs.push(libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: BUF });
        }
        for i in 0..BATCH {
            let h = &mut b.msgs[i].msg_hdr;
            h.msg_name = (&mut b.addrs[i] as *mut libc::sockaddr_storage).cast();
            h.msg_iov = &mut b.iovecs[i];
            h.msg_iovlen = 1;
        }
        b
    }

    /// Receives the datagrams waiting on non-blocking socket `fd`, at most [`BATCH`]; returns how
    /// many (0 when none, or on an error — ICMP errors on an unconnected socket are not ours).
    pub fn recv(&mut self, fd: i32) -> usize {
        for m in &mut self.msgs {
            m.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            m.msg_hdr.msg_flags = 0;
            m.msg_len = 0;
        }
        // SAFETY: every header points at a buffer, an iovec and an address slot owned by `self`,
        // sized as declared; MSG_DONTWAIT never blocks.
        let n = unsafe {
            libc::recvmmsg(fd, self.msgs.as_mut_ptr(), BATCH as libc::c_uint, libc::MSG_DONTWAIT, std::ptr::null_mut())
        };
        n.max(0) as usize
    }

    /// Datagram `i` of the last [`RecvBatch::recv`] and its sender.
    pub fn get(&self, i: usize) -> (&[u8], Option<SocketAddr>) {
        let len = (self.msgs[i].msg_len as usize).min(BUF);
        (&self.bufs[i][..len], sockaddr(&self.addrs[i]))
    }
}

fn sockaddr(s: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match s.ss_family as i32 {
        libc::AF_INET => {
            // SAFETY: the kernel wrote a sockaddr_in for AF_INET; storage is large and aligned enough.
            let a = unsafe { &*(s as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Some(SocketAddr::V4(SocketAddrV4::new(ip, u16::from_be(a.sin_port))))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for AF_INET6.
            let a = unsafe { &*(s as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            let ip = Ipv6Addr::from(a.sin6_addr.s6_addr);
            Some(SocketAddr::V6(SocketAddrV6::new(ip, u16::from_be(a.sin6_port), a.sin6_flowinfo, a.sin6_scope_id)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An RTP header: version 2, `csrcs` CSRCs, an extension of `ext_words` words if `Some`.
    fn packet(pt: u8, marker: bool, csrcs: u8, ext_words: Option<u16>, payload: usize) -> Vec<u8> {
        let mut p = vec![0x80 | csrcs | if ext_words.is_some() { 0x10 } else { 0 }];
        p.push(pt | if marker { 0x80 } else { 0 });
        p.extend_from_slice(&0xBEEFu16.to_be_bytes());
        p.extend_from_slice(&1234u32.to_be_bytes());
        p.extend_from_slice(&0xDEADBEEFu32.to_be_bytes());
        p.extend(std::iter::repeat_n(0xCC, 4 * csrcs as usize));
        if let Some(words) = ext_words {
            p.extend_from_slice(&[0xBE, 0xDE]);
            p.extend_from_slice(&words.to_be_bytes());
            p.extend(std::iter::repeat_n(0x11, 4 * words as usize));
        }
        p.extend(std::iter::repeat_n(0xAA, payload));
        p
    }

    #[test]
    fn parses_fixed_header_csrcs_and_extension() {
        let h = rtp_header(&packet(96, true, 0, None, 100)).expect("plain");
        assert_eq!((h.ssrc, h.sequence_number, h.payload_type, h.header_len), (0xDEADBEEF, 0xBEEF, 96, 12));
        assert_eq!(rtp_header(&packet(111, false, 2, Some(3), 10)).map(|h| h.header_len), Some(12 + 8 + 4 + 12));
        // A header with nothing after it is still a header (an empty payload).
        assert_eq!(rtp_header(&packet(96, false, 0, Some(1), 0)).map(|h| h.header_len), Some(20));
    }

    #[test]
    fn rejects_short_and_garbage_datagrams() {
        assert_eq!(rtp_header(&[]), None);
        assert_eq!(rtp_header(&packet(96, false, 0, None, 0)[..11]), None, "11 bytes");
        let mut v1 = packet(96, false, 0, None, 20);
        v1[0] = 0x40 | (v1[0] & 0x3f);
        assert_eq!(rtp_header(&v1), None, "version 1");
        assert_eq!(rtp_header(&packet(96, false, 15, None, 0)[..12 + 4 * 14]), None, "15 CSRCs past the end");
        // An extension header cut short, and one whose length runs past the end.
        assert_eq!(rtp_header(&packet(96, false, 0, Some(0), 0)[..14]), None);
        let mut long = packet(96, false, 0, Some(1), 0);
        long[14..16].copy_from_slice(&100u16.to_be_bytes());
        assert_eq!(rtp_header(&long), None);
        assert_eq!(rtp_header(&packet(72, false, 0, None, 20)), None, "payload type in RTCP's range");
    }

    #[test]
    fn demultiplexes_like_rfc_7983_and_5761() {
        assert_eq!(classify(&[0x00, 0x01, 0, 0]), Kind::Stun, "binding request");
        assert_eq!(classify(&[22, 0xfe, 0xfd]), Kind::Dtls, "handshake");
        assert_eq!(classify(&[23, 0xfe, 0xfd]), Kind::Dtls, "application data");
        assert_eq!(classify(&packet(96, false, 0, None, 10)), Kind::Rtp);
        assert_eq!(classify(&packet(111, true, 0, None, 10)), Kind::Rtp, "marker set, PT 111");
        // RTCP packet types: SR 200, RR 201, SDES 202, BYE 203, RTPFB 205, PSFB 206.
        for pt in [200u8, 201, 202, 203, 205, 206] {
            assert_eq!(classify(&[0x80, pt, 0, 1]), Kind::Rtcp, "RTCP type {pt}");
        }
        assert_eq!(classify(&[0x81, 192, 0, 1]), Kind::Rtcp, "lowest of 192–223");
        assert_eq!(classify(&[0x81, 223, 0, 1]), Kind::Rtcp, "highest of 192–223");
        assert_eq!(classify(&[0x80, 224, 0, 1]), Kind::Rtp, "PT 96 with the marker");
        assert_eq!(classify(&[0x80]), Kind::Other, "one byte");
        assert_eq!(classify(&[64, 0]), Kind::Other, "TURN channel");
        assert_eq!(classify(&[]), Kind::Other);
    }

    #[test]
    fn probe_sized_packets_only() {
        let probe = packet(111, true, 0, Some(1), 16 + 16);
        let h = rtp_header(&probe).expect("header");
        assert!(may_be_probe(probe.len(), &h, 16), "GCM tag");
        let probe = packet(111, true, 0, Some(1), 16 + 10);
        assert!(may_be_probe(probe.len(), &rtp_header(&probe).expect("header"), 16), "HMAC-SHA1-80 tag");
        let opus = packet(111, true, 0, Some(1), 120 + 16);
        assert!(!may_be_probe(opus.len(), &rtp_header(&opus).expect("header"), 16));
    }

    #[test]
    fn batch_receives_several_datagrams_and_their_sender() {
        use std::os::fd::AsRawFd;
        let rx = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let mut batch = RecvBatch::new();
        assert_eq!(batch.recv(rx.as_raw_fd()), 0, "nothing waiting: no block");
        for i in 0..3u8 {
            tx.send_to(&[i; 5], rx.local_addr().expect("addr")).expect("send");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(batch.recv(rx.as_raw_fd()), 3);
        for i in 0..3u8 {
            let (d, from) = batch.get(i as usize);
            assert_eq!(d, &[i; 5]);
            assert_eq!(from, Some(tx.local_addr().expect("addr")));
        }
    }
}
