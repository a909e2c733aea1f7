//! Input: each datagram to its peer connection (STUN names it by ufrag, anything else by the
//! learned remote address), the dirty-peer set, and the timers.

use super::*;

/// A received datagram, still in the driver's receive buffer or already owned (handed over by
/// another engine). It is copied out of the buffer only for what keeps it — `rtc`, a hand-off —
/// not for a publisher's media, which the engine opens straight from the buffer.
pub(super) enum Received<'a> {
    Borrowed(&'a [u8]),
    Owned(BytesMut),
}

impl Received<'_> {
    fn as_slice(&self) -> &[u8] {
        match self {
            Received::Borrowed(data) => data,
            Received::Owned(data) => data,
        }
    }

    fn into_owned(self) -> BytesMut {
        match self {
            Received::Borrowed(data) => BytesMut::from(data),
            Received::Owned(data) => data,
        }
    }
}

impl Engine {
    /// One received datagram; what it causes is sent by the next [`Engine::flush`].
    pub(crate) fn datagram(&mut self, from: SocketAddr, data: &[u8], now: Instant) {
        let data = Received::Borrowed(data);
        self.receive(Transport::Udp(from), from, self.announced, TransportProtocol::UDP, data, now, false);
    }

    /// A new ICE-TCP connection from `remote`; nothing is routed to it until a STUN request names
    /// one of our peer connections.
    pub(crate) fn tcp_opened(&mut self, conn: ConnId, remote: SocketAddr) {
        if let Some(old) = self.tcp_conns.insert(conn, remote) {
            self.tcp_by_remote.remove(&old);
        }
        self.tcp_by_remote.insert(remote, conn);
    }

    /// One de-framed packet from an ICE-TCP connection. False when it belongs to no peer
    /// connection (unknown ufrag, or not STUN before the connection was claimed): the driver
    /// closes such a connection.
    pub(crate) fn tcp_packet(&mut self, conn: ConnId, data: &[u8], now: Instant) -> bool {
        if self.tcp_relayed(conn, data) {
            return true;
        }
        let (Some(&remote), Some(local)) = (self.tcp_conns.get(&conn), self.tcp_announced) else { return false };
        self.receive(Transport::Tcp(conn), remote, local, TransportProtocol::TCP, Received::Borrowed(data), now, false)
    }

    /// The connection is gone: forget its routes. `rtc` notices through ICE consent (or the
    /// citizen's other candidate pairs take over).
    pub(crate) fn tcp_closed(&mut self, conn: ConnId) {
        self.tcp_relay_closed(conn);
        if let Some(remote) = self.tcp_conns.remove(&conn)
            && self.tcp_by_remote.get(&remote) == Some(&conn)
        {
            self.tcp_by_remote.remove(&remote);
        }
        let via = Transport::Tcp(conn);
        if let Some(id) = self.by_addr.remove(&via)
            && let Some(p) = self.peers.get_mut(&id)
        {
            p.addrs.retain(|a| *a != via);
        }
    }

    /// One packet, UDP or TCP, to its peer connection. `local` is the candidate address `rtc`
    /// must see for that transport (the advertised one). A packet of another engine's connection
    /// is handed to it, unless it was `handed` to this one.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn receive(
        &mut self,
        via: Transport,
        from: SocketAddr,
        local: SocketAddr,
        protocol: TransportProtocol,
        data: Received<'_>,
        now: Instant,
        handed: bool,
    ) -> bool {
        // STUN names its peer connection by ufrag; anything else is routed by the learned address.
        let ufrag = stun::local_ufrag(data.as_slice());
        let peer_id = match ufrag.and_then(|u| self.by_ufrag.get(u)).copied() {
            Some(id) => {
                // Learned before `rtc` checks the message's integrity (the ufrag only appears in
                // that participant's SDP), and bounded so forged requests cannot grow the maps.
                if self.by_addr.get(&via) != Some(&id)
                    && let Some(p) = self.peers.get_mut(&id)
                    && p.addrs.len() < MAX_ADDRS_PER_PEER
                {
                    p.addrs.push(via);
                    self.by_addr.insert(via, id);
                    self.shard.learned(via);
                }
                id
            }
            None => {
                // A STUN request naming another engine's connection goes there even from an
                // address this engine knows (one remote address can reach two connections).
                let named = if handed { None } else { ufrag.and_then(|u| self.shard.ufrag_owner(u)) };
                match (named, self.by_addr.get(&via)) {
                    (None, Some(&id)) => id,
                    // Another engine's, or nobody's.
                    _ => return self.hand_off(via, from, data.into_owned(), named, handed),
                }
            }
        };
        let transport =
            TransportContext { local_addr: local, peer_addr: from, ecn: None, transport_protocol: protocol };
        // A publisher's media, once DTLS is up and `rtc` opened its stream, is the engine's to open.
        if let ingress::Opened::Done = self.open_media(peer_id, data.as_slice(), now) {
            return true;
        }
        let data = data.into_owned();
        let Some(peer) = self.peers.get_mut(&peer_id) else { return false };
        let replay = peer.handshake.as_mut().is_some_and(|r| r.received(&data, now));
        let msg = TaggedBytesMut { now, transport, message: data };
        if let Err(e) = peer.pc.handle_read(msg) {
            debug!(peer = peer_id, error = %e, "packet rejected");
        }
        if replay && let Some(replay) = &peer.handshake {
            debug!(peer = peer_id, "DTLS ClientHello repeated: our flight was lost; sending it again");
            for d in replay.flight() {
                match via {
                    Transport::Udp(to) => self.out.push(to, d.clone()),
                    Transport::Tcp(conn) => self.tcp_out.push((conn, d.clone())),
                }
            }
        }
        self.mark_dirty(peer_id);
        true
    }

    /// A subscriber's queue got packets: sent by the engine itself when the connection has its
    /// egress, else written into `rtc`, whose connection must then be polled.
    pub(super) fn mark_queued(&mut self, id: PeerId) {
        let Some(p) = self.peers.get_mut(&id) else { return };
        if !matches!(&p.leg, Leg::Subscribe(leg) if leg.egress.is_some()) {
            self.mark_dirty(id);
        } else if !p.queued {
            p.queued = true;
            self.queued.push(id);
        }
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
                if let Leg::Publish(leg) = &mut p.leg {
                    leg.reception.write_feedback(&mut p.pc, now);
                }
            }
            self.mark_dirty(id);
        }
        while let Some(&(t, id)) = self.paced.first() {
            if t > now {
                break;
            }
            self.paced.pop_first();
            if let Some(Peer { leg: Leg::Subscribe(leg), .. }) = self.peers.get_mut(&id) {
                leg.paced_until = None;
            }
            self.mark_queued(id);
        }
        if now >= self.next_speaker_tick {
            self.next_speaker_tick = now + SPEAKER_TICK;
            self.tick_speakers(now);
        }
        if now >= self.next_report {
            self.next_report = now + egress::REPORT_INTERVAL;
            self.send_reports(now);
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
