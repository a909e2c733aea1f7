//! Subscriber feedback (PLI/FIR ask for a keyframe, REMB sets the pacer, receiver reports tell the
//! round trip that sizes a track's history) and keyframe requests sent upstream to publishers.

use rtc::rtcp::receiver_report::ReceiverReport;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;

use super::*;

impl Engine {
    pub(super) fn feedback_in(
        &mut self,
        peer_id: PeerId,
        sender_track: &str,
        packets: &[Box<dyn rtc::rtcp::Packet>],
        now: Instant,
    ) {
        let Some(Peer { leg: Leg::Subscribe(leg), .. }) = self.peers.get_mut(&peer_id) else { return };
        // `rtc` names a compound's track by the first SSRC of its first packet — in a receiver
        // report + NACK compound, a report block that may be another track's. Each feedback is
        // attributed by its own media SSRC first.
        let attributed = leg.by_sender_track.get(sender_track).copied();
        let by_ssrc = |ssrc: u32| leg.downs.iter().find(|(_, d)| d.ssrc == ssrc).map(|(k, _)| *k);
        let mut keyframes: Vec<TrackKey> = Vec::new();
        let mut nacks = std::mem::take(&mut self.nacked);
        let mut remb = None;
        let mut round_trips: Vec<(TrackKey, Duration)> = Vec::new();
        for p in packets {
            let any = p.as_any();
            if let Some(pli) = any.downcast_ref::<PictureLossIndication>() {
                keyframes.extend(by_ssrc(pli.media_ssrc).or(attributed));
            } else if let Some(fir) = any.downcast_ref::<FullIntraRequest>() {
                let ssrc = fir.fir.first().map_or(fir.media_ssrc, |e| e.ssrc);
                keyframes.extend(by_ssrc(ssrc).or(attributed));
            } else if let Some(r) = any.downcast_ref::<ReceiverEstimatedMaximumBitrate>() {
                remb = Some(r.bitrate);
            } else if let Some(nack) = any.downcast_ref::<TransportLayerNack>() {
                match by_ssrc(nack.media_ssrc) {
                    Some(key) => nacks.extend(nack.nacks.iter().flat_map(|p| p.packet_list()).map(|seq| (key, seq))),
                    None => debug!(ssrc = nack.media_ssrc, "NACK for an SSRC this subscriber does not receive"),
                }
            } else if let Some(rr) = any.downcast_ref::<ReceiverReport>() {
                for block in &rr.reports {
                    let rtt = self.wall.round_trip(now, block.last_sender_report, block.delay);
                    round_trips.extend(by_ssrc(block.ssrc).zip(rtt));
                }
            }
        }
        for (key, rtt) in round_trips {
            if let Some(history) = self.tracks.get_mut(&key).and_then(|t| t.history.as_mut()) {
                history.round_trip(rtt, now);
            }
        }
        if let Some(bitrate) = remb {
            // The browser's own estimate of what it can receive. Pace with headroom: REMB tracks the
            // incoming rate (≈1.05–1.5×), so pacing at exactly REMB would never let it ramp up.
            leg.pacer.set_bitrate(Some(((bitrate as f64 * 2.0) as u64).max(1_000_000)));
        }
        let subscriber = leg.sub;
        for track in keyframes {
            self.plis_received += 1;
            self.router.keyframe_requested(DownTrackKey { subscriber, track }, now);
        }
        if !nacks.is_empty() {
            self.retransmit(peer_id, &nacks, now);
            nacks.clear();
        }
        self.nacked = nacks;
    }

    pub(super) fn request_keyframes(&mut self, now: Instant) {
        let mut due = std::mem::take(&mut self.keyframe_tracks);
        due.clear();
        self.router.poll_keyframe_requests(now, &mut due);
        for &key in &due {
            if self.program_keyframe_request(key, now) {
                continue; // asked of its sources; their PLIs follow in this flush
            }
            let Some((peer_id, rtc_track)) = self.tracks.get(&key).and_then(|t| t.feed.clone()) else { continue };
            let Some(Peer { pc, leg: Leg::Publish(leg), .. }) = self.peers.get_mut(&peer_id) else { continue };
            let Some(inc) = leg.incoming.get(&rtc_track) else { continue };
            let pli = PictureLossIndication { sender_ssrc: 0, media_ssrc: inc.ssrc };
            match pc.rtp_receiver(inc.receiver).map(|mut r| r.write_rtcp(now, vec![Box::new(pli)])) {
                Some(Ok(())) => {
                    self.plis_sent += 1;
                    debug!(track = ?key, ssrc = inc.ssrc, "keyframe requested upstream (PLI)")
                }
                Some(Err(e)) => warn!(error = %e, "PLI upstream"),
                None => warn!(track = ?key, "PLI upstream: receiver gone"),
            }
            self.mark_dirty(peer_id);
        }
        self.keyframe_tracks = due;
    }
}
