//! Input: each datagram to its peer connection (STUN names it by ufrag, anything else by the
//! learned remote address), the dirty-peer set, and the timers.

use super::*;

impl Engine {
    /// One received datagram; what it causes is sent by the next [`Engine::flush`].
    pub(crate) fn datagram(&mut self, from: SocketAddr, data: &[u8], now: Instant) {
        // STUN names its peer connection by ufrag; anything else is routed by the learned address.
        let peer_id = match stun::local_ufrag(data).and_then(|u| self.by_ufrag.get(u)) {
            Some(&id) => {
                // Learned before `rtc` checks the message's integrity (the ufrag only appears in
                // that participant's SDP), and bounded so forged requests cannot grow the maps.
                if self.by_addr.get(&from) != Some(&id)
                    && let Some(p) = self.peers.get_mut(&id)
                    && p.addrs.len() < MAX_ADDRS_PER_PEER
                {
                    p.addrs.push(from);
                    self.by_addr.insert(from, id);
                }
                id
            }
            None => match self.by_addr.get(&from) {
                Some(&id) => id,
                None => return, // unknown sender: not ours
            },
        };
        let local_addr = self.announced;
        let Some(peer) = self.peers.get_mut(&peer_id) else { return };
        let msg = TaggedBytesMut {
            now,
            transport: TransportContext {
                local_addr,
                peer_addr: from,
                ecn: None,
                transport_protocol: TransportProtocol::UDP,
            },
            message: BytesMut::from(data),
        };
        if let Err(e) = peer.pc.handle_read(msg) {
            debug!(peer = peer_id, error = %e, "datagram rejected");
        }
        if let Some(replay) = &peer.handshake
            && replay.wants_replay(data)
        {
            debug!(peer = peer_id, "DTLS ClientHello repeated: our flight was lost; sending it again");
            for d in replay.flight() {
                self.out.push(from, d.clone());
            }
        }
        self.mark_dirty(peer_id);
    }

    pub(super) fn mark_dirty(&mut self, id: PeerId) {
        if let Some(p) = self.peers.get_mut(&id)
            && !p.dirty
        {
            p.dirty = true;
            self.dirty.push(id);
        }
    }

    /// Runs the timers due at `now`.
    pub(crate) fn timeouts(&mut self, now: Instant) {
        while let Some(&(t, id)) = self.timers.first() {
            if t > now {
                break;
            }
            self.timers.pop_first();
            if let Some(p) = self.peers.get_mut(&id) {
                p.deadline = None;
                if let Err(e) = p.pc.handle_timeout(now) {
                    debug!(peer = id, error = %e, "timeout handling");
                }
            }
            self.mark_dirty(id);
        }
        if now >= self.next_speaker_tick {
            self.next_speaker_tick = now + SPEAKER_TICK;
            self.tick_speakers(now);
        }
    }

    pub(super) fn tick_speakers(&mut self, now: Instant) {
        for (room_id, room) in &mut self.rooms {
            if let Some(change) = room.speakers.tick(now) {
                let participant = change.and_then(|p| self.parts.get(&p)).map(|p| p.id.clone());
                let _ = self.events.send(SfuEvent::ActiveSpeaker { room: room_id.clone(), participant });
            }
        }
    }
}
