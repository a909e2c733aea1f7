//! The flush: dirty peers are polled for events, media and outgoing datagrams; subscriber queues
//! are drained (into the engine's own egress, or into the connection); what leaves is queued for
//! the driver to send. A subscriber that only got packets to send is not polled.

use super::*;

impl Engine {
    /// Polls every peer that got input and queues what they send in [`Engine::transmits`].
    pub(crate) fn flush(&mut self, now: Instant) {
        // Draining a publisher can dirty subscribers; loop until quiet.
        // Keyframe requests due now dirty their publishers, so they leave in this same flush.
        for _ in 0..8 {
            self.request_keyframes(now);
            if self.dirty.is_empty() && self.queued.is_empty() {
                break;
            }
            let dirty = std::mem::take(&mut self.dirty);
            for &id in &dirty {
                if let Some(p) = self.peers.get_mut(&id) {
                    p.dirty = false;
                }
                self.drain_peer(id, now);
            }
            // After the dirty peers, whose media may have queued more. A peer in both lists is
            // drained twice: the second time finds its queue empty (or its pacer spent).
            let queued = std::mem::take(&mut self.queued);
            for &id in &queued {
                if let Some(p) = self.peers.get_mut(&id) {
                    p.queued = false;
                }
            }
            self.drain_queues(&dirty, now);
            self.drain_queues(&queued, now);
            for &id in &dirty {
                self.collect_writes(id, now);
            }
        }
        self.relay_tcp_out();
    }

    pub(super) fn drain_peer(&mut self, id: PeerId, now: Instant) {
        while let Some(ev) = self.peers.get_mut(&id).and_then(|p| p.pc.poll_event()) {
            self.peer_event(id, ev, now);
        }
        while let Some(msg) = self.peers.get_mut(&id).and_then(|p| p.pc.poll_read()) {
            self.peer_message(id, msg.message, msg.now, now);
        }
    }

    pub(super) fn collect_writes(&mut self, id: PeerId, now: Instant) {
        let Some(p) = self.peers.get_mut(&id) else { return };
        while let Some(w) = p.pc.poll_write() {
            if let Some(replay) = &mut p.handshake {
                replay.sent(&w.message, now);
            }
            Engine::emit(&mut self.out, &mut self.tcp_out, &self.tcp_by_remote, &w.transport, w.message);
        }
        if p.trim_queues_at.is_some_and(|at| now >= at) {
            self.trimmed_queue_bytes += p.pc.shrink_idle_queues(0) as u64;
            p.trim_queues_at = Some(now + QUEUE_TRIM_INTERVAL);
        }
        let mut next = p.pc.poll_timeout();
        if let Leg::Publish(leg) = &mut p.leg
            && let Some(t) = leg.reception.poll_timeout()
        {
            next = Some(next.map_or(t, |n| n.min(t)));
        }
        reschedule(&mut self.timers, id, &mut p.deadline, next);
    }

    pub(super) fn peer_event(&mut self, id: PeerId, ev: RTCPeerConnectionEvent, now: Instant) {
        match ev {
            RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) => {
                let Some(p) = self.peers.get(&id) else { return };
                let kind = match p.leg {
                    Leg::Publish(_) => PcKind::Publish,
                    Leg::Subscribe(_) => PcKind::Subscribe,
                };
                let state = match state {
                    RTCPeerConnectionState::Connected => PeerState::Connected,
                    RTCPeerConnectionState::Disconnected => PeerState::Disconnected,
                    RTCPeerConnectionState::Failed => PeerState::Failed,
                    RTCPeerConnectionState::Closed => PeerState::Closed,
                    _ => PeerState::Connecting,
                };
                let owner = p.owner;
                self.upstream_peer_state(id, state);
                if state == PeerState::Connected
                    && let Some(p) = self.peers.get_mut(&id)
                {
                    p.trim_queues_at = Some(now);
                    let round_trip = p.handshake.take().and_then(|h| h.round_trip());
                    debug!(peer = id, ?round_trip, "DTLS handshake done");
                    match (&mut p.leg, round_trip) {
                        (Leg::Subscribe(leg), Some(rtt)) => leg.round_trip = Some(rtt),
                        (Leg::Publish(leg), Some(rtt)) => leg.reception.set_round_trip(rtt),
                        (_, None) => {}
                    }
                }
                if kind == PcKind::Subscribe && state == PeerState::Connected {
                    if let Some(Peer { pc, leg: Leg::Subscribe(leg), .. }) = self.peers.get_mut(&id) {
                        leg.connected = true;
                        match &mut leg.egress {
                            Some(egress) => egress.refresh_path(pc),
                            None => {
                                leg.egress = egress::Egress::new(pc);
                                if leg.egress.is_none() {
                                    warn!(peer = id, "no SRTP context of our own: forwarding through rtc");
                                }
                            }
                        }
                    }
                    self.start_routing(id, now);
                }
                if let Some(part) = self.parts.get(&owner)
                    && part.transient
                    && matches!(state, PeerState::Failed | PeerState::Closed)
                {
                    let (room, participant) = (part.room.clone(), part.id.clone());
                    info!(room = %room, participant = %participant, ?state, "HTTP-managed connection ended; released");
                    let _ = self.leave(&room, &participant, now);
                    return;
                }
                if let Some(part) = self.parts.get(&owner) {
                    debug!(room = %part.room, participant = %part.id, pc = %kind, ?state, "peer connection state");
                    let _ = self.events.send(SfuEvent::PeerState {
                        room: part.room.clone(),
                        participant: part.id.clone(),
                        pc: kind,
                        state,
                    });
                }
            }
            RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnOpen(init)) => {
                self.track_opened(id, init.receiver_id, init.track_id, init.ssrc, now);
            }
            _ => {}
        }
    }

    /// What `rtc` read: media it opened (a stream's first packets, before the engine opens them
    /// itself: [`ingress`]) and RTCP. `received` is when its datagram arrived.
    pub(super) fn peer_message(&mut self, id: PeerId, msg: RTCMessage, received: Instant, now: Instant) {
        match (msg, self.peers.get_mut(&id).map(|p| &mut p.leg)) {
            (RTCMessage::RtpPacket(track_id, packet), Some(Leg::Publish(leg))) => {
                if let Some(packet) = leg.reception.opened_by_rtc(packet, received) {
                    self.media_in(id, &track_id, packet, now);
                }
            }
            (RTCMessage::RtcpPacket(_, packets), Some(Leg::Publish(leg))) => {
                leg.reception.rtcp_in(&packets, received);
            }
            (RTCMessage::RtcpPacket(track_id, packets), _) => self.feedback_in(id, &track_id, &packets, now),
            _ => {}
        }
    }
}

/// Moves `id`'s entry in an ordered set of deadlines from `current` to `next` (either may be none).
pub(super) fn reschedule(
    set: &mut BTreeSet<(Instant, PeerId)>,
    id: PeerId,
    current: &mut Option<Instant>,
    next: Option<Instant>,
) {
    if next == *current {
        return;
    }
    if let Some(old) = *current {
        set.remove(&(old, id));
    }
    if let Some(new) = next {
        set.insert((new, id));
    }
    *current = next;
}
