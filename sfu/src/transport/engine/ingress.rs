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
//! The feedback the publisher needs ([`feedback`]) is made by the engine from every packet, whichever
//! way it came in, and written through `rtc`, which protects it. `rtc`'s own chain for a publish
//! connection has no feedback interceptors, so nothing is reported twice.

mod feedback;
mod twcc;

use foldhash::{HashMap, HashMapExt};

use rtc::shared::marshal::Unmarshal;
use rtc::srtp::context::Context;

use super::*;

/// How often a datagram the engine opened itself is also handed to `rtc`: ICE's consent freshness
/// counts received traffic, and a publisher may send little else (a browser's checks come every
/// 2.5–5 s against `rtc`'s 5 s disconnection timeout). `rtc`'s copy is recognised and dropped.
const SHOW_RTC_EVERY: Duration = Duration::from_millis(500);

/// A publish connection's reception: the feedback it gets, and its own SRTP once DTLS is up.
pub(super) struct Reception {
    /// Boxed: a publish leg would otherwise be twice a subscribe leg's size.
    feedback: Box<feedback::Feedback>,
    /// Our SRTP context for what the publisher sends, from DTLS up.
    srtp: Option<Context>,
    /// The streams `rtc` opened a track for, by SSRC (their RTX SSRCs too): the engine's own.
    streams: HashMap<u32, Stream>,
    /// A receiver of the connection, to write the feedback through (any one will do).
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
    /// Datagrams also handed to `rtc` ([`SHOW_RTC_EVERY`]) that it has not given back yet.
    shown: u32,
}

impl Default for Reception {
    fn default() -> Self {
        Reception {
            feedback: Box::new(feedback::Feedback::new()),
            srtp: None,
            streams: HashMap::new(),
            writer: None,
            shown: None,
        }
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

impl Reception {
    /// `rtc` opened the track of `ssrc` (and of its RTX stream, if the offer paired one): the
    /// feedback follows it, and the engine opens its packets from now on.
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
        // Our codecs are fixed (`peer.rs`); only video asks for what it lost.
        let (clock_rate, payload_type) = match kind {
            MediaKind::Audio => (peer::opus_codec().clock_rate, peer::OPUS_PT),
            MediaKind::Video => (peer::vp8_codec().clock_rate, peer::VP8_PT),
        };
        let twcc_id = extensions.iter().find(|(_, uri)| uri == peer::URI_TRANSPORT_CC).map(|(id, _)| *id);
        self.feedback.open(ssrc, clock_rate, kind == MediaKind::Video, twcc_id);
        self.writer.get_or_insert(receiver);
        let rtc_track: Rc<str> = Rc::from(rtc_track);
        if let Some(rtx) = rtx {
            let repairs = Some((ssrc, payload_type));
            self.streams.insert(rtx, Stream { rtc_track: Rc::clone(&rtc_track), repairs, shown: 0 });
        }
        self.streams.insert(ssrc, Stream { rtc_track, repairs: None, shown: 0 });
    }

    /// The track is gone (unpublished, or opened again on another SSRC).
    pub(super) fn close(&mut self, rtc_track: &str) {
        let feedback = &mut self.feedback;
        self.streams.retain(|&ssrc, s| {
            let keep = &*s.rtc_track != rtc_track;
            if !keep && s.repairs.is_none() {
                feedback.close(ssrc);
            }
            keep
        });
    }

    /// A packet `rtc` opened and hands to the engine: `None` if it is a copy shown to `rtc`
    /// ([`SHOW_RTC_EVERY`]) of one the engine already routed; otherwise the feedback counts it.
    pub(super) fn opened_by_rtc(&mut self, packet: rtp::Packet, received: Instant) -> Option<rtp::Packet> {
        if let Some(s) = self.streams.get_mut(&packet.header.ssrc)
            && s.shown > 0
        {
            s.shown -= 1;
            return None;
        }
        self.feedback.arrived(&packet, false, received);
        Some(packet)
    }

    /// The publisher's RTCP (its sender reports: the receiver reports' round-trip fields).
    pub(super) fn rtcp_in(&mut self, packets: &[Box<dyn rtc::rtcp::Packet>], received: Instant) {
        self.feedback.rtcp_in(packets, received);
    }

    /// The connection's round trip, from its DTLS handshake: how long a NACK waits for an answer.
    pub(super) fn set_round_trip(&mut self, rtt: Duration) {
        self.feedback.set_round_trip(rtt);
    }

    /// When feedback is next due.
    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        self.feedback.poll_timeout()
    }

    /// The feedback due at `now` (receiver reports, NACKs, transport-cc), written through `rtc`,
    /// which protects it. `true` if anything was written.
    pub(super) fn write_feedback(&mut self, pc: &mut RTCPeerConnection, now: Instant) -> bool {
        let mut wrote = false;
        for packets in self.feedback.due(now) {
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
    pub(super) fn open_media(&mut self, peer_id: PeerId, data: &[u8], now: Instant) -> Opened {
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
                r.feedback.arrived(&packet, true, now);
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
        r.feedback.arrived(&packet, stream.repairs.is_some(), now);
        // The feedback armed a timer (its first packet): the peer's wake-up must come no later.
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
}
