//! The way in from a publish connection: a publisher's SRTP opened by the engine itself, and the
//! feedback the publisher needs about what it sends (NACKs, receiver reports, transport-cc).
//!
//! Read through `rtc`, every received packet moved through the connection's read pipeline — ICE,
//! DTLS and SRTP handlers, the interceptor chain, the endpoint's track lookup and statistics, a
//! queue at each stage — and was then polled out of it: a quarter of the media thread in the office
//! scenario, more than the whole way out. Once DTLS is up and `rtc` has opened a stream's track (its
//! first packets go through `rtc`, which is how the track is found), the engine decrypts that
//! stream's packets with an SRTP context of its own (`rtc` is patched for that: vendor/rtc/PATCH.md),
//! restores RTX retransmissions itself and routes them at once. `rtc` keeps ICE, DTLS, the
//! publisher's RTCP and every packet of a stream it has not opened.
//!
//! The feedback interceptors (`rtc_interceptor`'s NACK generator, receiver reports and transport-cc
//! recorder) run here as a chain of the connection's own, fed every packet whichever way it came
//! in; what they generate is written through `rtc`, which protects it. `rtc`'s own chain for a
//! publish connection has none of them, so nothing is reported twice.

use foldhash::{HashMap, HashMapExt};

use rtc::interceptor::{
    AttributedPacket, Interceptor, NackGeneratorBuilder, Packet, RTCPFeedback, RTPHeaderExtension,
    ReceiverReportBuilder, Registry, Slot, StreamInfo, TaggedPacket, TwccReceiverBuilder,
};
use rtc::shared::marshal::Unmarshal;
use rtc::srtp::context::Context;

use super::*;

/// How often a datagram the engine opened itself is also handed to `rtc`: ICE's consent freshness
/// counts received traffic, and a publisher may send little else (a browser's checks come every
/// 2.5–5 s against `rtc`'s 5 s disconnection timeout). `rtc`'s copy is recognised and dropped.
const SHOW_RTC_EVERY: Duration = Duration::from_millis(500);

/// A publish connection's reception: its feedback chain, and its own SRTP once DTLS is up.
pub(super) struct Reception {
    chain: Box<dyn Interceptor>,
    /// Our SRTP context for what the publisher sends, from DTLS up.
    srtp: Option<Context>,
    /// The streams `rtc` opened a track for, by SSRC (their RTX SSRCs too): the engine's own.
    streams: HashMap<u32, Stream>,
    /// A receiver of the connection, to write the chain's RTCP through (any one will do).
    writer: Option<RTCRtpReceiverId>,
    /// When a datagram the engine opened was last also handed to `rtc`.
    shown: Option<Instant>,
}

/// One stream of a publisher, as the engine routes it.
struct Stream {
    /// `rtc`'s track id (the key of [`PublishLeg::incoming`](super::PublishLeg)).
    rtc_track: Rc<str>,
    /// Set on an RTX stream: the SSRC it repairs and that stream's payload type.
    repairs: Option<(u32, u8)>,
    info: StreamInfo,
    /// Datagrams also handed to `rtc` ([`SHOW_RTC_EVERY`]) that it has not given back yet.
    shown: u32,
}

impl Default for Reception {
    fn default() -> Self {
        let chain = Registry::new()
            .with(Slot::ReceiverReport, ReceiverReportBuilder::new().build())
            .with(Slot::NackGenerator, NackGeneratorBuilder::new().build())
            .with(Slot::TwccReceiver, TwccReceiverBuilder::new().build())
            .build();
        Reception { chain: Box::new(chain), srtp: None, streams: HashMap::new(), writer: None, shown: None }
    }
}

/// RTP, not RTCP, STUN or DTLS (RFC 7983's first-byte ranges; RFC 5761 §4: a second byte of
/// 192–223 is RTCP, as `rtc` demultiplexes), long enough to name its SSRC.
fn rtp_ssrc(datagram: &[u8]) -> Option<u32> {
    let (&first, &second) = (datagram.first()?, datagram.get(1)?);
    let rtcp = (192..=223).contains(&second);
    if !(128..=191).contains(&first) || rtcp {
        return None;
    }
    Some(u32::from_be_bytes(datagram.get(8..12)?.try_into().ok()?))
}

/// What the interceptors must know of a stream: its codec (ours are fixed, `peer.rs`), its RTX
/// pairing and its header extensions (transport-cc's id for the recorder).
fn stream_info(kind: MediaKind, ssrc: u32, rtx: Option<u32>, extensions: &[(u8, String)]) -> StreamInfo {
    let (codec, payload_type) = match kind {
        MediaKind::Audio => (peer::opus_codec(), peer::OPUS_PT),
        MediaKind::Video => (peer::vp8_codec(), peer::VP8_PT),
    };
    StreamInfo {
        ssrc,
        ssrc_rtx: rtx,
        payload_type,
        payload_type_rtx: rtx.map(|_| peer::VP8_RTX_PT),
        rtp_header_extensions: extensions
            .iter()
            .map(|(id, uri)| RTPHeaderExtension { id: u16::from(*id), uri: uri.clone() })
            .collect(),
        mime_type: codec.mime_type,
        clock_rate: codec.clock_rate,
        channels: codec.channels,
        sdp_fmtp_line: codec.sdp_fmtp_line,
        rtcp_feedback: codec
            .rtcp_feedback
            .into_iter()
            .map(|f| RTCPFeedback { typ: f.typ, parameter: f.parameter })
            .collect(),
        ..Default::default()
    }
}

impl Reception {
    /// `rtc` opened the track of `ssrc` (and of its RTX stream, if the offer paired one): the
    /// feedback chain follows it, and the engine opens its packets from now on.
    pub(super) fn open(
        &mut self,
        rtc_track: &str,
        receiver: RTCRtpReceiverId,
        kind: MediaKind,
        ssrc: u32,
        rtx: Option<u32>,
        extensions: &[(u8, String)],
    ) {
        self.close(rtc_track);
        let info = stream_info(kind, ssrc, rtx, extensions);
        self.chain.bind_remote_stream(&info);
        self.writer.get_or_insert(receiver);
        let rtc_track: Rc<str> = Rc::from(rtc_track);
        if let Some(rtx) = rtx {
            let rtx_info = StreamInfo { ssrc: rtx, ..info.clone() };
            let repairs = Some((ssrc, info.payload_type));
            self.streams.insert(rtx, Stream { rtc_track: Rc::clone(&rtc_track), repairs, info: rtx_info, shown: 0 });
        }
        self.streams.insert(ssrc, Stream { rtc_track, repairs: None, info, shown: 0 });
    }

    /// The track is gone (unpublished, or opened again on another SSRC).
    pub(super) fn close(&mut self, rtc_track: &str) {
        let chain = &mut self.chain;
        self.streams.retain(|_, s| {
            let keep = &*s.rtc_track != rtc_track;
            if !keep && s.repairs.is_none() {
                chain.unbind_remote_stream(&s.info);
            }
            keep
        });
    }

    /// One packet to the feedback chain, given back once it passed.
    fn feed(&mut self, packet: rtp::Packet, transport: TransportContext, now: Instant) -> Option<rtp::Packet> {
        let msg = TaggedPacket { now, transport, message: AttributedPacket::new(Packet::Rtp(packet)) };
        if let Err(e) = self.chain.handle_read(msg) {
            debug!(error = %e, "feedback chain refused a packet");
        }
        let mut back = None;
        while let Some(msg) = self.chain.poll_read() {
            if let Packet::Rtp(p) = msg.message.packet {
                back = Some(p);
            }
        }
        back
    }

    /// A packet `rtc` opened and hands to the engine: `None` if it is a copy shown to `rtc`
    /// ([`SHOW_RTC_EVERY`]) of one the engine already routed; otherwise the chain sees it first.
    pub(super) fn opened_by_rtc(
        &mut self,
        packet: rtp::Packet,
        transport: TransportContext,
        now: Instant,
    ) -> Option<rtp::Packet> {
        if let Some(s) = self.streams.get_mut(&packet.header.ssrc)
            && s.shown > 0
        {
            s.shown -= 1;
            return None;
        }
        self.feed(packet, transport, now)
    }

    /// The publisher's RTCP (its sender reports: the receiver reports' round-trip fields).
    pub(super) fn rtcp_in(
        &mut self,
        packets: Vec<Box<dyn rtc::rtcp::Packet>>,
        transport: TransportContext,
        now: Instant,
    ) {
        let msg = TaggedPacket { now, transport, message: AttributedPacket::new(Packet::Rtcp(packets)) };
        if let Err(e) = self.chain.handle_read(msg) {
            debug!(error = %e, "feedback chain refused RTCP");
        }
        while self.chain.poll_read().is_some() {}
    }

    /// The chain's timers.
    pub(super) fn poll_timeout(&mut self) -> Option<Instant> {
        self.chain.poll_timeout()
    }

    pub(super) fn handle_timeout(&mut self, now: Instant) {
        if let Err(e) = self.chain.handle_timeout(now) {
            debug!(error = %e, "feedback chain timer");
        }
    }

    /// What the chain generated (NACKs, receiver reports, transport-cc feedback), written through
    /// `rtc`, which protects it. `true` if anything was written.
    pub(super) fn write_feedback(&mut self, pc: &mut RTCPeerConnection, now: Instant) -> bool {
        let mut wrote = false;
        while let Some(msg) = self.chain.poll_write() {
            let Packet::Rtcp(packets) = msg.message.packet else { continue };
            let Some(mut receiver) = self.writer.and_then(|r| pc.rtp_receiver(r)) else { continue };
            match receiver.write_rtcp(now, packets) {
                Ok(()) => wrote = true,
                Err(e) => debug!(error = %e, "feedback not written"),
            }
        }
        wrote
    }
}

/// What [`Engine::open_media`] made of a datagram.
pub(super) enum Opened {
    /// `rtc` takes it: not the engine's to open, or opened and routed but also shown to `rtc`
    /// ([`SHOW_RTC_EVERY`]), which drops its copy.
    Rtc,
    /// Opened and routed (or dropped: a replay, a probe).
    Done,
}

impl Engine {
    /// A datagram on any connection: opened by the engine if it is RTP of a publisher's stream
    /// `rtc` has opened and DTLS is up, else handed back for `rtc`.
    pub(super) fn open_media(
        &mut self,
        peer_id: PeerId,
        transport: &TransportContext,
        data: &[u8],
        now: Instant,
    ) -> Opened {
        let Some(ssrc) = rtp_ssrc(data) else { return Opened::Rtc };
        let Some(Peer { pc, leg: Leg::Publish(leg), .. }) = self.peers.get_mut(&peer_id) else {
            return Opened::Rtc;
        };
        let r = &mut leg.reception;
        let Some(stream) = r.streams.get(&ssrc) else { return Opened::Rtc };
        if r.srtp.is_none() {
            let transport = leg.incoming.get(&*stream.rtc_track).and_then(|inc| pc.rtp_receiver(inc.receiver));
            r.srtp = transport.and_then(|rec| rec.transport()?.new_srtp_contexts()).map(|(_, remote)| remote);
        }
        let Some(srtp) = r.srtp.as_mut() else { return Opened::Rtc };
        // Only a media stream's packets are shown: `rtc` gives an RTX one back as its primary's.
        let show = stream.repairs.is_none() && r.shown.is_none_or(|t| now >= t + SHOW_RTC_EVERY);
        let mut clear = match srtp.decrypt_rtp(data) {
            Ok(clear) => clear,
            Err(e) => {
                debug!(peer = peer_id, ssrc, error = %e, "SRTP packet not opened");
                return Opened::Done;
            }
        };
        let Ok(mut packet) = rtp::Packet::unmarshal(&mut clear) else { return Opened::Done };
        let Some(stream) = r.streams.get_mut(&ssrc) else { return Opened::Done };
        let outcome = if show {
            stream.shown += 1;
            r.shown = Some(now);
            Opened::Rtc
        } else {
            Opened::Done
        };
        if let Some((primary, payload_type)) = stream.repairs {
            // RFC 4588: [OSN][original payload]. Without the OSN it is a padding-only bandwidth probe:
            // the transport-cc recorder must count it all the same (the publisher's estimate needs it).
            if packet.payload.len() < 2 {
                r.feed(packet, *transport, now);
                return outcome;
            }
            packet.header.sequence_number = u16::from_be_bytes([packet.payload[0], packet.payload[1]]);
            packet.header.ssrc = primary;
            packet.header.payload_type = payload_type;
            packet.header.padding = false;
            packet.payload = packet.payload.slice(2..);
            self.rtcp.rtx_received.fetch_add(1, Ordering::Relaxed);
        }
        let rtc_track = Rc::clone(&stream.rtc_track);
        let Some(packet) = r.feed(packet, *transport, now) else { return outcome };
        // The chain armed a timer (its first packet): the peer's wake-up must come no later.
        if let Some(t) = r.poll_timeout()
            && let Some(p) = self.peers.get_mut(&peer_id)
            && p.deadline.is_none_or(|d| t < d)
        {
            flush::reschedule(&mut self.timers, peer_id, &mut p.deadline, Some(t));
        }
        self.media_in(peer_id, &rtc_track, packet, now);
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_rtp_is_opened_by_the_engine() {
        let mut rtp = vec![0x80, 96, 0, 1, 0, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef];
        assert_eq!(rtp_ssrc(&rtp), Some(0xdead_beef));
        rtp[1] = 0x80 | 111; // marker bit set: still RTP
        assert_eq!(rtp_ssrc(&rtp), Some(0xdead_beef));
        let mut rtcp = rtp.clone();
        rtcp[1] = 200; // a sender report
        assert_eq!(rtp_ssrc(&rtcp), None);
        let mut dtls = rtp.clone();
        dtls[0] = 22; // a DTLS handshake record
        assert_eq!(rtp_ssrc(&dtls), None);
        let stun = [0u8, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42, 0, 0, 0, 0];
        assert_eq!(rtp_ssrc(&stun), None);
        assert_eq!(rtp_ssrc(&rtp[..11]), None, "too short to name its SSRC");
    }

    #[test]
    fn a_stream_tells_the_chain_its_codec_rtx_and_transport_cc_id() {
        let ext = vec![(3, "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01".to_owned())];
        let video = stream_info(MediaKind::Video, 1, Some(2), &ext);
        assert_eq!(
            (video.ssrc, video.ssrc_rtx, video.payload_type, video.payload_type_rtx),
            (1, Some(2), 96, Some(97))
        );
        assert_eq!(video.clock_rate, 90_000);
        assert!(video.rtcp_feedback.iter().any(|f| f.typ == "nack" && f.parameter.is_empty()), "NACKs asked for");
        assert_eq!(video.rtp_header_extensions[0].id, 3);
        let audio = stream_info(MediaKind::Audio, 5, None, &[]);
        assert_eq!((audio.payload_type, audio.clock_rate, audio.payload_type_rtx), (111, 48_000, None));
    }
}
