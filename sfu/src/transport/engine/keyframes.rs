//! Subscriber feedback (PLI/FIR ask for a keyframe, REMB sets the pacer) and keyframe requests
//! sent upstream to publishers.

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
        let Some(&key) = leg.by_sender_track.get(sender_track) else { return };
        let down = DownTrackKey { subscriber: leg.sub, track: key };
        for p in packets {
            let any = p.as_any();
            if any.is::<PictureLossIndication>() || any.is::<FullIntraRequest>() {
                self.plis_received += 1;
                self.router.keyframe_requested(down, now);
            } else if let Some(remb) = any.downcast_ref::<ReceiverEstimatedMaximumBitrate>() {
                // The browser's own estimate of what it can receive. Pace with headroom: REMB tracks the
                // incoming rate (≈1.05–1.5×), so pacing at exactly REMB would never let it ramp up.
                leg.pacer.set_bitrate(Some(((remb.bitrate as f64 * 2.0) as u64).max(1_000_000)));
            }
        }
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
