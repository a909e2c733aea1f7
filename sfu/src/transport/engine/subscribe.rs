//! Subscribing: a participant's subscribe connection, its downtracks and (re)negotiation.

use super::*;

impl Engine {
    pub(super) fn subscribe_peer(&mut self, part_id: PartId, now: Instant) -> Result<PeerId, SfuError> {
        let Some(part) = self.parts.get(&part_id) else {
            return Err(SfuError::UnknownParticipant(part_id.to_string()));
        };
        if let Some(id) = part.subscribe {
            return Ok(id);
        }
        let sub = part.sub_key;
        let (ufrag, pc) = self.new_connection(PcKind::Subscribe, now)?;
        let id = self.id();
        let leg = SubscribeLeg::new(sub, HashMap::new(), HashMap::new(), self.config.subscriber_queue, now);
        self.insert_peer(id, Peer::new(pc, part_id, ufrag, Leg::Subscribe(leg)));
        if let Some(p) = self.parts.get_mut(&part_id) {
            p.subscribe = Some(id);
        }
        Ok(id)
    }

    /// Registers with the router every downtrack of this subscriber that is negotiated, once the
    /// connection is up (the router then asks for a keyframe for each new video downtrack).
    pub(super) fn start_routing(&mut self, peer_id: PeerId, now: Instant) {
        let Some(Peer { leg: Leg::Subscribe(leg), .. }) = self.peers.get_mut(&peer_id) else { return };
        if !leg.connected {
            return;
        }
        let sub = leg.sub;
        for (key, down) in leg.downs.iter_mut() {
            if down.pt.is_some() && !down.routed {
                down.routed = true;
                self.router.subscribe(DownTrackKey { subscriber: sub, track: *key }, down.ssrc, now);
                // Its handshake's round trip, so that the track keeps what this subscriber can
                // still ask for from the start: not the half second kept while no round trip is
                // known, nor too short a time for a subscriber farther away than the others.
                if let (Some(rtt), Some(track)) = (leg.round_trip, self.tracks.get_mut(key))
                    && track.info.kind == MediaKind::Video
                {
                    track.history.get_or_insert_with(History::default).round_trip(rtt, now);
                }
            }
        }
    }

    pub(super) fn insert_peer(&mut self, id: PeerId, peer: Peer) {
        self.by_ufrag.insert(peer.ufrag.clone(), id);
        self.peers.insert(id, peer);
    }

    pub(super) fn add_downtrack(&mut self, subscriber: PartId, key: TrackKey, now: Instant) {
        let Some(track) = self.tracks.get(&key) else { return };
        let info = track.info.clone();
        let peer_id = match self.subscribe_peer(subscriber, now) {
            Ok(id) => id,
            Err(e) => {
                warn!(error = %e, "cannot create a subscribe connection");
                return;
            }
        };
        let Some(Peer { pc, leg: Leg::Subscribe(leg), .. }) = self.peers.get_mut(&peer_id) else { return };
        let ssrc = rand::random::<u32>();
        let track = Down::media_track(info.participant.to_string(), info.id.clone(), info.kind, ssrc);
        match pc.add_track(track) {
            Ok(sender) => {
                leg.downs.insert(key, Down::new(sender, ssrc));
                leg.by_sender_track.insert(info.id.clone(), key);
                self.negotiate(peer_id, now);
            }
            Err(e) => warn!(error = %e, track = %info.id, "cannot add a track to a subscriber"),
        }
    }

    pub(super) fn remove_downtrack(&mut self, subscriber: PartId, key: TrackKey, now: Instant) {
        let Some(peer_id) = self.parts.get(&subscriber).and_then(|p| p.subscribe) else { return };
        let Some(Peer { pc, leg: Leg::Subscribe(leg), .. }) = self.peers.get_mut(&peer_id) else { return };
        let Some(down) = leg.downs.remove(&key) else { return };
        leg.by_sender_track.retain(|_, k| *k != key);
        self.router.unsubscribe(DownTrackKey { subscriber: leg.sub, track: key });
        if let Err(e) = pc.remove_track(down.sender) {
            debug!(error = %e, "remove_track");
        }
        self.negotiate(peer_id, now);
    }

    /// Sends a new subscribe offer, or remembers to once the outstanding one is answered.
    pub(super) fn negotiate(&mut self, peer_id: PeerId, now: Instant) {
        let Some(Peer { pc, leg: Leg::Subscribe(leg), owner, .. }) = self.peers.get_mut(&peer_id) else { return };
        if leg.offer_outstanding {
            leg.renegotiate_after_answer = true;
            return;
        }
        let offer = match pc.create_offer(None) {
            Ok(o) => o,
            Err(e) => {
                warn!(error = %e, "create_offer");
                return;
            }
        };
        let sdp = offer.sdp.clone();
        if let Err(e) = pc.set_local_description(now, offer) {
            warn!(error = %e, "set_local_description(offer)");
            return;
        }
        leg.offer_outstanding = true;
        // Which mid carries which track: the browser maps its receivers with this.
        let mut tracks = Vec::new();
        for t in pc.get_transceivers().collect::<Vec<_>>() {
            let Some(tr) = pc.rtp_transceiver(t) else { continue };
            let (Some(sender), Some(mid)) = (tr.sender(), tr.mid().clone()) else { continue };
            if let Some(key) = leg.downs.iter().find(|(_, d)| d.sender == sender).map(|(k, _)| *k)
                && let Some(track) = self.tracks.get(&key)
            {
                tracks.push(SubscribedTrack { mid: mid.clone(), track: track.info.clone() });
                if let Some(d) = leg.downs.get_mut(&key) {
                    d.mid = Some(Bytes::from(mid.into_bytes()));
                }
            }
        }
        let owner = *owner;
        if let Some(part) = self.parts.get(&owner) {
            let _ = self.events.send(SfuEvent::SubscribeOffer {
                room: part.room.clone(),
                participant: part.id.clone(),
                sdp,
                tracks,
            });
        }
        self.mark_dirty(peer_id);
    }
}
