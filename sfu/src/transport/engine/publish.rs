//! Publishing: a publish offer announces tracks; media arriving on them goes to the router.

use super::*;

impl Engine {
    pub(super) fn track_opened(
        &mut self,
        peer_id: PeerId,
        receiver: RTCRtpReceiverId,
        rtc_track: String,
        ssrc: u32,
        now: Instant,
    ) {
        let Some(peer) = self.peers.get_mut(&peer_id) else { return };
        let owner = peer.owner;
        let mid = peer.pc.get_transceivers().collect::<Vec<_>>().into_iter().find_map(|t| {
            let tr = peer.pc.rtp_transceiver(t)?;
            (tr.receiver() == Some(receiver)).then(|| tr.mid().clone()).flatten()
        });
        let Leg::Publish(leg) = &mut peer.leg else { return };
        if let Some(program) = leg.upstream.clone() {
            self.upstream_track_opened(peer_id, program, mid, receiver, rtc_track, ssrc, now);
            return;
        }
        let Some(source) = mid.as_ref().and_then(|m| leg.mids.get(m)).copied() else {
            debug!(peer = peer_id, ?mid, "media on an m-line the publisher did not describe; ignored");
            return;
        };
        let extensions = receiver_extensions(&mut peer.pc, receiver);
        let audio_level_id = extensions.iter().find(|(_, u)| u == URI_AUDIO_LEVEL).map(|(id, _)| *id);

        let Some(existing) = self.parts.get(&owner).map(|p| p.tracks.get(&source).copied()) else { return };
        let key = match existing {
            Some(key) => key,
            // Not announced by the publish offer (e.g. an m-line re-activated): announce it now.
            None => match self.publish_track(owner, source, now) {
                Some(key) => key,
                None => return,
            },
        };
        let kind = source.kind();
        if let Some(Peer { pc, leg: Leg::Publish(leg), .. }) = self.peers.get_mut(&peer_id) {
            let incoming = Incoming { track: key, receiver, kind, ssrc, audio_level_id };
            leg.open(pc, rtc_track.clone(), incoming, &extensions);
        }
        if let Some(t) = self.tracks.get_mut(&key) {
            let _span = info_span!("track", room = %t.room, track = %t.info.id).entered();
            info!(ssrc, "media flows on the track");
            t.feed = Some((peer_id, rtc_track));
            t.feed_gen += 1;
            t.extensions = extensions;
        }
    }

    /// Announces a participant's track to its room as soon as its publish offer describes it,
    /// before any media: subscribers negotiate while the publisher's connection is still being
    /// set up (their video waits for its first keyframe), which is what makes a join fast. The
    /// track is fed once media flows on it ([`Engine::track_opened`]).
    pub(super) fn publish_track(&mut self, owner: PartId, source: TrackSource, now: Instant) -> Option<TrackKey> {
        let part = self.parts.get(&owner)?;
        if let Some(&key) = part.tracks.get(&source) {
            return Some(key);
        }
        let (room, info) = (part.room.clone(), TrackInfo::new(part.id.clone(), source));
        let key = TrackKey(self.id());
        let kind = info.kind;
        let _span = info_span!("track", room = %room, track = %info.id).entered();
        info!("track published");
        self.router.add_track(key, kind, peer::clock_rate(kind));
        if let Some(p) = self.parts.get_mut(&owner) {
            p.tracks.insert(source, key);
            if p.gated.contains(&source) {
                // Gated before it was published: not one packet gets through.
                self.router.set_forwarding(key, false, now);
            }
        }
        self.tracks.insert(
            key,
            Track {
                info: info.clone(),
                room: room.clone(),
                owner,
                feed: None,
                feed_gen: 0,
                extensions: Vec::new(),
                history: None,
            },
        );
        let _ = self.events.send(SfuEvent::TrackPublished { room: room.clone(), track: info });
        let others: Vec<PartId> = self
            .rooms
            .get(&room)
            .map(|r| r.participants.iter().copied().filter(|&p| p != owner).collect())
            .unwrap_or_default();
        for other in others {
            self.add_downtrack(other, key, now);
        }
        self.program_refresh(now);
        Some(key)
    }

    pub(super) fn adopt_receiver(&mut self, peer_id: PeerId, rtc_track: &str, ssrc: u32, now: Instant) {
        let Some(peer) = self.peers.get_mut(&peer_id) else { return };
        let receiver = peer
            .pc
            .get_receivers()
            .collect::<Vec<_>>()
            .into_iter()
            .find(|&r| peer.pc.rtp_receiver(r).is_some_and(|r| r.track().track_id() == rtc_track));
        if let Some(receiver) = receiver {
            self.track_opened(peer_id, receiver, rtc_track.to_owned(), ssrc, now);
        }
    }

    pub(super) fn media_in(&mut self, peer_id: PeerId, rtc_track: &str, packet: rtp::Packet, now: Instant) {
        let Some(Peer { leg: Leg::Publish(leg), owner, .. }) = self.peers.get(&peer_id) else { return };
        let owner = *owner;
        let Some(inc) = leg.incoming.get(rtc_track) else {
            // A receiver whose m-line was made inactive and then active again (a screen share stopped
            // and restarted) gets no new OnTrack from `rtc`: adopt it on its first packet.
            self.adopt_receiver(peer_id, rtc_track, packet.header.ssrc, now);
            return;
        };
        let key = inc.track;
        // RTX retransmissions arrive here already restored to the primary stream (by the engine,
        // `ingress`, or by `rtc`), so a repaired packet is forwarded like a late original.
        if let Some(level_id) = inc.audio_level_id
            && let Some(ext) = packet.header.extensions.iter().find(|e| e.id == level_id)
            && let Some(&b) = ext.payload.first()
        {
            let room = self.tracks.get(&key).map(|t| t.room.clone());
            if let Some(room) = room.and_then(|r| self.rooms.get_mut(&r)) {
                room.speakers.record(owner, b & 0x7f, now);
            }
        }
        let is_keyframe = inc.kind == MediaKind::Video && is_vp8_keyframe(&packet.payload);
        let meta = RtpMeta {
            ssrc: packet.header.ssrc,
            seq: packet.header.sequence_number,
            timestamp: packet.header.timestamp,
            is_keyframe,
        };
        let packet = Rc::new(packet);
        let mut forwards = std::mem::take(&mut self.forwards);
        forwards.clear();
        self.router.route(key, &meta, now, &mut forwards);
        self.dispatch(&packet, &forwards, now);
        if self.program_inputs.contains_key(&key) {
            self.feed_programs(key, &packet, &meta, now, &mut forwards);
        }
        self.forwards = forwards;
    }
}

impl PublishLeg {
    /// `rtc` opened a track: media on it is routed to `incoming.track`, and its SSRCs (the RTX one
    /// too, if the offer paired it) are the engine's to open from now on ([`ingress`]).
    pub(super) fn open(
        &mut self,
        pc: &mut RTCPeerConnection,
        rtc_track: String,
        incoming: Incoming,
        extensions: &[(u8, String)],
    ) {
        let rtx = receiver_rtx(pc, incoming.receiver, incoming.ssrc);
        self.reception.open(&rtc_track, incoming.receiver, incoming.kind, incoming.ssrc, rtx, extensions);
        self.incoming.insert(rtc_track, incoming);
    }

    /// The track is gone.
    pub(super) fn close(&mut self, rtc_track: &str) {
        self.reception.close(rtc_track);
        self.incoming.remove(rtc_track);
    }
}

/// The RTX SSRC the publisher's offer paired with `ssrc` (`a=ssrc-group:FID`), if any.
fn receiver_rtx(pc: &mut RTCPeerConnection, receiver: RTCRtpReceiverId, ssrc: u32) -> Option<u32> {
    let receiver = pc.rtp_receiver(receiver)?;
    let coding = receiver.track().codings().iter().find(|c| c.rtp_coding_parameters.ssrc == Some(ssrc))?;
    coding.rtp_coding_parameters.rtx.as_ref().map(|rtx| rtx.ssrc)
}

/// The header extensions (id, URI) negotiated for what arrives on `receiver`.
pub(super) fn receiver_extensions(pc: &mut RTCPeerConnection, receiver: RTCRtpReceiverId) -> Vec<(u8, String)> {
    pc.rtp_receiver(receiver)
        .map(|mut r| {
            r.get_parameters().rtp_parameters.header_extensions.iter().map(|h| (h.id as u8, h.uri.clone())).collect()
        })
        .unwrap_or_default()
}
