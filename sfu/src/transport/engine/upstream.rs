//! An edge's program: the same outputs as any program (its viewers, mirrors and keyframe path are
//! the ordinary ones), fed by one relay leg — a peer connection of OUR offer to the origin node's
//! program, answered there like any WHEP viewer. Each m-line of the leg feeds the output of the
//! same index (video, then the audio slots) through its [`ProgramSwitch`](crate::forward::ProgramSwitch),
//! so a leg replaced by one to a new origin is switched to at its first keyframe, hidden from
//! viewers by the outputs' mungers as any switch is. A viewer's keyframe request reaches the leg's
//! video as a source's would: through the router's throttle, at most one PLI a second upstream.

use super::*;

/// The relay leg feeding an edge program.
pub(crate) struct Upstream {
    peer: PeerId,
    /// mid of each of our m-lines → the output it feeds.
    mids: HashMap<String, usize>,
    /// Per output, the track the leg's m-line became once media flowed on it.
    inputs: Vec<Option<TrackKey>>,
    state: PeerState,
}

impl Upstream {
    /// The leg's track for output `i`, once media flows on it.
    pub(super) fn input(&self, i: usize) -> Option<TrackKey> {
        self.inputs.get(i).copied().flatten()
    }
}

impl Engine {
    /// Opens `program` as an edge program if it is not open (a program open here already keeps
    /// its viewers), replaces its relay leg with a new one, and returns that leg's offer for the
    /// origin to answer: receive-only, one video and `audio_slots` audio m-lines.
    pub(super) fn upstream_offer(
        &mut self,
        program: &RoomId,
        audio_slots: usize,
        now: Instant,
    ) -> Result<String, SfuError> {
        match self.programs.get(program) {
            None => self.open_program(program.clone(), audio_slots, None, now)?,
            Some(p) if p.is_mirror() => return Err(SfuError::ProgramExists(program.to_string())),
            Some(_) => self.upstream_close(program, now),
        }
        let Some(p) = self.programs.get(program) else { return Err(SfuError::UnknownProgram(program.to_string())) };
        let (owner, kinds) = (p.owner(), p.output_kinds());
        let err = |e: rtc::shared::error::Error| SfuError::Transport(format!("relay leg: {e}"));
        let (ufrag, mut pc) = self.new_offering_connection(now)?;
        use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
        for kind in &kinds {
            let kind = match kind {
                MediaKind::Video => RtpCodecKind::Video,
                MediaKind::Audio => RtpCodecKind::Audio,
            };
            let init = RTCRtpTransceiverInit {
                direction: RTCRtpTransceiverDirection::Recvonly,
                streams: vec![],
                send_encodings: vec![],
            };
            pc.add_transceiver_from_kind(kind, Some(init)).map_err(err)?;
        }
        let offer = pc.create_offer(None).map_err(err)?;
        let sdp = offer.sdp.clone();
        pc.set_local_description(now, offer).map_err(err)?;
        // Transceivers were added in output order.
        let mids: HashMap<String, usize> = pc
            .get_transceivers()
            .collect::<Vec<_>>()
            .into_iter()
            .enumerate()
            .filter_map(|(i, t)| Some((pc.rtp_transceiver(t)?.mid().clone()?, i)))
            .collect();
        let id = self.id();
        let leg = PublishLeg { upstream: Some(program.clone()), ..PublishLeg::default() };
        let mut peer = Peer::new(pc, owner, ufrag, Leg::Publish(leg));
        peer.handshake = None; // we are the DTLS client: no server flight to repeat
        self.insert_peer(id, peer);
        if let Some(p) = self.programs.get_mut(program) {
            p.upstream =
                Some(Upstream { peer: id, mids, inputs: vec![None; kinds.len()], state: PeerState::Connecting });
        }
        info!(program = %program, "relay leg offered to the origin");
        Ok(sdp)
    }

    /// The origin's answer to the relay leg's offer: ICE checks start towards its candidates,
    /// whose address is learned now (the origin, a lite agent, only ever answers our requests).
    pub(super) fn upstream_answer(&mut self, program: &RoomId, sdp: String, now: Instant) -> Result<(), SfuError> {
        let peer_id = self
            .programs
            .get(program)
            .and_then(|p| p.upstream.as_ref())
            .map(|u| u.peer)
            .ok_or_else(|| SfuError::UnknownProgram(program.to_string()))?;
        let answer = RTCSessionDescription::answer(sdp.clone()).map_err(|e| SfuError::InvalidSdp(e.to_string()))?;
        let Some(peer) = self.peers.get_mut(&peer_id) else { return Err(SfuError::NoPendingOffer) };
        peer.pc.set_remote_description(now, answer).map_err(|e| SfuError::InvalidSdp(e.to_string()))?;
        for addr in udp_candidates(&sdp) {
            let via = Transport::Udp(addr);
            if peer.addrs.len() < MAX_ADDRS_PER_PEER && !peer.addrs.contains(&via) {
                peer.addrs.push(via);
                self.by_addr.insert(via, peer_id);
                self.shard.learned(via);
            }
        }
        self.mark_dirty(peer_id);
        Ok(())
    }

    /// The relay leg's connection state (`None`: not an edge program, or no leg now).
    pub(super) fn upstream_state(&self, program: &RoomId) -> Option<PeerState> {
        self.programs.get(program)?.upstream.as_ref().map(|u| u.state)
    }

    /// Closes the relay leg and forgets its tracks; the outputs and their viewers stay (they get
    /// nothing — the slate — until a new leg or a selection feeds them).
    pub(super) fn upstream_close(&mut self, program: &RoomId, now: Instant) {
        let Some(up) = self.programs.get_mut(program).and_then(|p| p.upstream.take()) else { return };
        self.close_peer(up.peer);
        for key in up.inputs.into_iter().flatten() {
            self.router.remove_track(key);
            self.tracks.remove(&key);
        }
        self.program_refresh(now);
        info!(program = %program, "relay leg closed");
    }

    /// The leg's connection changed state.
    pub(super) fn upstream_peer_state(&mut self, peer_id: PeerId, state: PeerState) {
        let Some(Peer { leg: Leg::Publish(PublishLeg { upstream: Some(program), .. }), .. }) = self.peers.get(&peer_id)
        else {
            return;
        };
        let program = program.clone();
        if let Some(up) =
            self.programs.get_mut(&program).and_then(|p| p.upstream.as_mut()).filter(|u| u.peer == peer_id)
        {
            info!(program = %program, ?state, "relay leg");
            up.state = state;
        }
    }

    /// Media flows on one of the leg's m-lines: it becomes a track feeding its output.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn upstream_track_opened(
        &mut self,
        peer_id: PeerId,
        program: RoomId,
        mid: Option<String>,
        receiver: RTCRtpReceiverId,
        rtc_track: String,
        ssrc: u32,
        now: Instant,
    ) {
        let Some(p) = self.programs.get(&program) else { return };
        let owner = p.owner();
        let Some(up) = p.upstream.as_ref().filter(|u| u.peer == peer_id) else { return };
        let Some(&i) = mid.as_ref().and_then(|m| up.mids.get(m)) else { return };
        let Some(&kind) = p.output_kinds().get(i) else { return };
        let extensions = self
            .peers
            .get_mut(&peer_id)
            .map(|peer| super::publish::receiver_extensions(&mut peer.pc, receiver))
            .unwrap_or_default();
        let key = TrackKey(self.id());
        self.router.add_track(key, kind, peer::clock_rate(kind));
        let source = if kind == MediaKind::Audio { TrackSource::Microphone } else { TrackSource::Camera };
        let info = TrackInfo { id: format!("upstream/{i}"), participant: "upstream".into(), source, kind };
        self.tracks.insert(
            key,
            Track {
                info,
                room: program.clone(),
                owner,
                feed: Some((peer_id, rtc_track.clone())),
                feed_gen: 1,
                extensions: extensions.clone(),
                history: None,
            },
        );
        if let Some(Peer { pc, leg: Leg::Publish(leg), .. }) = self.peers.get_mut(&peer_id) {
            let incoming = Incoming { track: key, receiver, kind, ssrc, audio_level_id: None };
            leg.open(pc, rtc_track, incoming, &extensions);
        }
        let old = self.programs.get_mut(&program).and_then(|p| p.upstream.as_mut()).and_then(|u| {
            let slot = u.inputs.get_mut(i)?;
            slot.replace(key)
        });
        if let Some(old) = old {
            self.router.remove_track(old);
            self.tracks.remove(&old);
        }
        info!(program = %program, output = i, ssrc, "relay leg media flows");
        self.program_refresh(now);
    }
}

/// The UDP candidates' addresses in an SDP.
fn udp_candidates(sdp: &str) -> Vec<SocketAddr> {
    sdp.lines()
        .filter_map(|l| l.trim_end().strip_prefix("a=candidate:"))
        .filter_map(|c| {
            let f: Vec<&str> = c.split(' ').collect();
            if f.get(2)?.eq_ignore_ascii_case("udp") {
                Some(SocketAddr::new(f.get(4)?.parse().ok()?, f.get(5)?.parse().ok()?))
            } else {
                None
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn udp_candidates_of_an_answer() {
        let sdp = "v=0\r\na=candidate:1 1 udp 2130706431 10.0.0.2 3478 typ host\r\n\
                   a=candidate:2 1 tcp 1671430143 10.0.0.2 3479 typ host tcptype passive\r\n\
                   a=candidate:3 1 UDP 2130706431 bad 1 typ host\r\n";
        assert_eq!(udp_candidates(sdp), vec!["10.0.0.2:3478".parse::<SocketAddr>().unwrap()]);
    }
}
