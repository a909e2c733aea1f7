//! Participants joining, offering, answering and leaving; tracks unpublished and connections
//! closed.

use super::*;

impl Engine {
    pub(super) fn join(&mut self, room: RoomId, participant: ParticipantId, now: Instant) -> Result<(), SfuError> {
        let _span = info_span!("join", room = %room, participant = %participant).entered();
        if let Ok(existing) = self.part_id(&room, &participant) {
            // Reconnection: a fresh pair of connections; published tracks stay announced (paused).
            info!("participant rejoins: old connections closed, tracks paused");
            // The subscriber key stays the participant's id: close_connections removed its old
            // downtracks from the router, the new ones start fresh streams (new SSRCs).
            self.close_connections(existing, now);
            self.subscribe_to_room(existing, now);
            return Ok(());
        }
        let id = self.id();
        let sub_key = SubscriberKey(id);
        self.parts.insert(
            id,
            Participant {
                room: room.clone(),
                id: participant.clone(),
                publish: None,
                subscribe: None,
                sub_key,
                tracks: HashMap::new(),
                gated: HashSet::new(),
                transient: false,
            },
        );
        self.by_name.insert((room.clone(), participant), id);
        self.rooms
            .entry(room)
            .or_insert_with(|| Room { participants: Vec::new(), speakers: ActiveSpeakerDetector::new() })
            .participants
            .push(id);
        self.subscribe_to_room(id, now);
        Ok(())
    }

    pub(super) fn subscribe_to_room(&mut self, part_id: PartId, now: Instant) {
        let Some(room) = self.parts.get(&part_id).map(|p| p.room.clone()) else { return };
        let mut keys: Vec<TrackKey> =
            self.tracks.iter().filter(|(_, t)| t.room == room && t.owner != part_id).map(|(k, _)| *k).collect();
        keys.sort();
        for key in keys {
            self.add_downtrack(part_id, key, now);
        }
    }

    pub(super) fn publish_offer(
        &mut self,
        room: &RoomId,
        participant: &ParticipantId,
        sdp: String,
        mids: Vec<PublishedMid>,
        now: Instant,
    ) -> Result<String, SfuError> {
        let part_id = self.part_id(room, participant)?;
        let offer = RTCSessionDescription::offer(sdp).map_err(|e| SfuError::InvalidSdp(e.to_string()))?;
        let peer_id = match self.parts.get(&part_id).and_then(|p| p.publish) {
            Some(id) => id,
            None => {
                let (ufrag, pc) = self.new_connection(PcKind::Publish, now)?;
                let id = self.id();
                self.insert_peer(id, Peer::new(pc, part_id, ufrag, Leg::Publish(PublishLeg::default())));
                if let Some(p) = self.parts.get_mut(&part_id) {
                    p.publish = Some(id);
                }
                id
            }
        };
        let Some(Peer { pc, leg: Leg::Publish(leg), .. }) = self.peers.get_mut(&peer_id) else {
            return Err(SfuError::Transport("publish connection vanished".into()));
        };
        let answer = pc
            .set_remote_description(now, offer)
            .and_then(|_| pc.create_answer(None))
            .map_err(|e| SfuError::InvalidSdp(e.to_string()))?;
        let sdp = answer.sdp.clone();
        pc.set_local_description(now, answer).map_err(|e| SfuError::InvalidSdp(e.to_string()))?;
        leg.mids = mids.iter().map(|m| (m.mid.clone(), m.source)).collect();
        let sources: HashSet<TrackSource> = mids.iter().map(|m| m.source).collect();
        self.mark_dirty(peer_id);
        // Sources the publisher no longer sends are unpublished.
        let gone: Vec<TrackKey> = self
            .parts
            .get(&part_id)
            .map(|p| p.tracks.iter().filter(|(s, _)| !sources.contains(s)).map(|(_, k)| *k).collect())
            .unwrap_or_default();
        for key in gone {
            self.unpublish(key, now);
        }
        let mut new: Vec<TrackSource> = sources.into_iter().collect();
        new.sort_by_key(|s| s.as_str());
        for source in new {
            self.publish_track(part_id, source, now);
        }
        Ok(sdp)
    }

    pub(super) fn subscribe_answer(
        &mut self,
        room: &RoomId,
        participant: &ParticipantId,
        sdp: String,
        now: Instant,
    ) -> Result<(), SfuError> {
        let part_id = self.part_id(room, participant)?;
        let peer_id = self.parts.get(&part_id).and_then(|p| p.subscribe).ok_or(SfuError::NoPendingOffer)?;
        let Some(Peer { pc, leg: Leg::Subscribe(leg), .. }) = self.peers.get_mut(&peer_id) else {
            return Err(SfuError::NoPendingOffer);
        };
        if !leg.offer_outstanding {
            return Err(SfuError::NoPendingOffer);
        }
        let answer = RTCSessionDescription::answer(sdp).map_err(|e| SfuError::InvalidSdp(e.to_string()))?;
        pc.set_remote_description(now, answer).map_err(|e| SfuError::InvalidSdp(e.to_string()))?;
        leg.offer_outstanding = false;
        // Now the payload types and extension ids of every new downtrack are known.
        for (key, down) in leg.downs.iter_mut() {
            // Only downtracks this answer negotiated (they got their mid in the offer): one added
            // while the offer was out would read not-yet-negotiated parameters (every codec and
            // extension of the engine) and keep them; it waits for the next offer instead.
            if down.pt.is_none() && down.mid.is_some() {
                let kind = self.tracks.get(key).map_or(MediaKind::Video, |t| t.info.kind);
                down.negotiated(pc, kind);
            }
        }
        let again = std::mem::take(&mut leg.renegotiate_after_answer);
        self.start_routing(peer_id, now);
        self.mark_dirty(peer_id);
        if again {
            self.negotiate(peer_id, now);
        }
        Ok(())
    }

    pub(super) fn add_candidate(
        &mut self,
        room: &RoomId,
        participant: &ParticipantId,
        kind: PcKind,
        c: IceCandidate,
    ) -> Result<(), SfuError> {
        let part_id = self.part_id(room, participant)?;
        if c.candidate.is_empty() {
            return Ok(()); // end of candidates
        }
        let peer_id = self.parts.get(&part_id).and_then(|p| match kind {
            PcKind::Publish => p.publish,
            PcKind::Subscribe => p.subscribe,
        });
        let Some(peer) = peer_id.and_then(|id| self.peers.get_mut(&id)) else {
            // A candidate for a connection that is not there (yet, or any more): nothing to do.
            return Ok(());
        };
        let init = RTCIceCandidateInit {
            candidate: c.candidate,
            sdp_mid: c.sdp_mid,
            sdp_mline_index: c.sdp_mline_index,
            username_fragment: None,
            url: None,
        };
        // We are ICE-lite: the browser's checks reach us anyway; a bad candidate is still an error.
        peer.pc.add_remote_candidate(init).map_err(|e| SfuError::InvalidCandidate(e.to_string()))
    }

    pub(super) fn leave(&mut self, room: &RoomId, participant: &ParticipantId, now: Instant) -> Result<(), SfuError> {
        let part_id = self.part_id(room, participant)?;
        let _span = info_span!("leave", room = %room, participant = %participant).entered();
        let keys: Vec<TrackKey> =
            self.parts.get(&part_id).map(|p| p.tracks.values().copied().collect()).unwrap_or_default();
        for key in keys {
            self.unpublish(key, now);
        }
        self.close_connections(part_id, now);
        self.parts.remove(&part_id);
        self.by_name.remove(&(room.clone(), participant.clone()));
        if let Some(r) = self.rooms.get_mut(room) {
            r.participants.retain(|&p| p != part_id);
            r.speakers.remove(&part_id);
            if r.participants.is_empty() {
                self.rooms.remove(room);
            }
        }
        info!("participant left; its connections and tracks are released");
        Ok(())
    }

    /// Removes a published track from the room: router, every subscriber connection, the announcement.
    pub(super) fn unpublish(&mut self, key: TrackKey, now: Instant) {
        let Some(track) = self.tracks.remove(&key) else { return };
        let downs = self.router.remove_track(key);
        for down in downs {
            self.remove_downtrack(down.subscriber.0, key, now);
        }
        // Subscribers whose answer had not arrived yet are not in the router: clean them too.
        let others: Vec<PartId> = self
            .rooms
            .get(&track.room)
            .map(|r| r.participants.iter().copied().filter(|&p| p != track.owner).collect())
            .unwrap_or_default();
        for other in others {
            self.remove_downtrack(other, key, now);
        }
        if let Some(p) = self.parts.get_mut(&track.owner) {
            p.tracks.retain(|_, k| *k != key);
        }
        if let Some((peer_id, rtc_track)) = &track.feed
            && let Some(Peer { leg: Leg::Publish(leg), .. }) = self.peers.get_mut(peer_id)
        {
            leg.close(rtc_track);
        }
        if !self.programs.is_empty() {
            self.program_refresh(now);
        }
        info!(track = %track.info.id, "track unpublished");
        let _ = self.events.send(SfuEvent::TrackUnpublished { room: track.room, track: track.info });
    }

    /// Closes a participant's peer connections (leave or reconnection) and forgets their addresses.
    /// Closes one peer connection (its goodbyes sent) and forgets its routes and timer.
    pub(super) fn close_peer(&mut self, peer_id: PeerId) {
        let Some(mut peer) = self.peers.remove(&peer_id) else { return };
        if let Err(e) = peer.pc.close() {
            debug!(error = %e, "close");
        }
        // Send the goodbyes (DTLS close_notify) the close produced.
        while let Some(w) = peer.pc.poll_write() {
            Engine::emit(&mut self.out, &mut self.tcp_out, &self.tcp_by_remote, &w.transport, w.message);
        }
        self.by_ufrag.remove(&peer.ufrag);
        for a in &peer.addrs {
            if self.by_addr.get(a) == Some(&peer_id) {
                self.by_addr.remove(a);
                self.shard.forgot(*a);
            }
        }
        if let Some(d) = peer.deadline {
            self.timers.remove(&(d, peer_id));
        }
    }

    pub(super) fn close_connections(&mut self, part_id: PartId, _now: Instant) {
        let Some(part) = self.parts.get_mut(&part_id) else { return };
        let peers = [part.publish.take(), part.subscribe.take()];
        let sub_key = part.sub_key;
        self.router.remove_subscriber(sub_key);
        for peer_id in peers.into_iter().flatten() {
            self.close_peer(peer_id);
        }
        // Tracks fed by the closed publish connection are paused until a new one carries them.
        for t in self.tracks.values_mut() {
            if t.owner == part_id {
                t.feed = None;
            }
        }
    }
}
