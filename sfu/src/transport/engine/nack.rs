//! Subscribers' NACKs, answered from the track's one [`History`] and the downtrack's [`SentLog`]
//! rather than by an `rtc` NACK responder per subscriber, which kept its own copy of every packet.

use super::*;

impl Engine {
    /// Sends again what `peer_id` lost, by downtrack: the original packet, re-headed exactly as it
    /// first went out (SSRC, sequence number, timestamp, payload type, extensions), on the primary
    /// stream, so every browser takes it as the late packet it is.
    pub(super) fn retransmit(&mut self, peer_id: PeerId, lost: &[(TrackKey, u16)], now: Instant) {
        let Some(Peer { pc, leg: Leg::Subscribe(leg), .. }) = self.peers.get_mut(&peer_id) else { return };
        let mut way = downtrack::Way {
            egress: leg.egress.as_deref_mut(),
            pc,
            out: &mut self.out,
            tcp_out: &mut self.tcp_out,
            tcp_by_remote: &self.tcp_by_remote,
        };
        let mut sent = 0;
        for &(key, seq) in lost {
            let (Some(down), Some(track)) = (leg.downs.get_mut(&key), self.tracks.get(&key)) else { continue };
            let (Some(pt), Some(history)) = (down.pt, track.history.as_ref()) else { continue };
            let Some(s) = down.sent.as_ref().and_then(|log| log.find(seq)) else {
                debug!(ssrc = down.ssrc, seq, "NACK for a packet this downtrack never sent, or long ago");
                continue;
            };
            let Some(original) = history.get(s.origin_ssrc, s.origin_seq) else {
                debug!(ssrc = down.ssrc, seq, origin = s.origin_seq, "NACK for a packet no longer kept");
                continue;
            };
            let mut packet = rtp::Packet::clone(original);
            packet.header.ssrc = down.ssrc;
            packet.header.sequence_number = s.out_seq;
            packet.header.timestamp = s.timestamp;
            packet.header.payload_type = pt;
            downtrack::remap_extensions(&mut packet, down, track);
            let bytes = packet.payload.len();
            match way.send(&packet, now) {
                Ok(()) => {
                    down.counts.sent(bytes, None, now);
                    sent += 1;
                }
                Err(e) => debug!(error = %e, "retransmission refused"),
            }
        }
        debug!(asked = lost.len(), sent, "NACK answered");
        if sent > 0 {
            self.rtcp.rtx_sent.fetch_add(sent, Ordering::Relaxed);
            self.mark_dirty(peer_id);
        }
    }
}
