//! Program feeds inside the engine: their output tracks, WHEP viewers (the SFU answers a
//! receive-only offer), WHIP encoders (an ordinary publisher whose m-lines are named by kind) and
//! the recorder sink. Which packet feeds an output is decided by the pure
//! [`ProgramSwitch`](crate::forward::ProgramSwitch); outputs are ordinary router tracks, so the
//! mungers hide every switch from viewers and the recorder.

use super::*;
use crate::forward::{Accept, ProgramSwitch};
use crate::transport::recorder::{Recorder, StopReply};

/// Participant id of the program's own (virtual) publisher.
const PROGRAM_OWNER: &str = "program";

pub(super) struct Program {
    owner: PartId,
    /// Output 0 is the video, output `1 + n` audio slot `n`.
    outputs: Vec<Output>,
    selection: ProgramSelection,
    recorder: Option<(SubscriberKey, Recorder)>,
    /// A mirror of the program whose home is this engine ([`shard`](super::shard)): its packets
    /// come from there, its keyframe requests go there.
    home: Option<usize>,
    /// The engines that mirror this program (on its home).
    mirrors: Vec<Mirror>,
    /// An edge's program: fed by a relay leg from the origin node's program, not by a selection.
    pub(super) upstream: Option<super::upstream::Upstream>,
}

/// An engine that mirrors a program, as its home sees it.
pub(super) struct Mirror {
    pub(super) engine: usize,
    /// Per output, the feed generation whose header extensions the mirror was last given: a
    /// mirror opened after a switch learns them with its next packet, as do all at a switch.
    told: Vec<Option<u64>>,
}

impl Program {
    pub(super) fn owner(&self) -> PartId {
        self.owner
    }

    /// Each output's kind, in order (video first, then the audio slots).
    pub(super) fn output_kinds(&self) -> Vec<MediaKind> {
        self.outputs.iter().map(|o| o.kind).collect()
    }

    pub(super) fn output_track(&self, output: usize) -> Option<TrackKey> {
        self.outputs.get(output).map(|o| o.track)
    }

    /// A mirror of a program whose home is another engine.
    pub(super) fn is_mirror(&self) -> bool {
        self.home.is_some()
    }
}

struct Output {
    track: TrackKey,
    kind: MediaKind,
    slot: usize,
    switch: ProgramSwitch,
}

impl Output {
    fn name(&self) -> String {
        match self.kind {
            MediaKind::Video => format!("{PROGRAM_OWNER}/video"),
            MediaKind::Audio => format!("{PROGRAM_OWNER}/audio-{}", self.slot),
        }
    }
}

impl Engine {
    pub(super) fn program_open(&mut self, program: RoomId, audio_slots: usize, now: Instant) -> Result<(), SfuError> {
        self.open_program(program, audio_slots, None, now)
    }

    /// A program, or the mirror of one whose `home` is another engine.
    pub(super) fn open_program(
        &mut self,
        program: RoomId,
        audio_slots: usize,
        home: Option<usize>,
        now: Instant,
    ) -> Result<(), SfuError> {
        if self.programs.contains_key(&program) {
            return Err(SfuError::ProgramExists(program.to_string()));
        }
        let owner = self.id();
        let mut outputs = vec![Output {
            track: TrackKey(0),
            kind: MediaKind::Video,
            slot: 0,
            switch: ProgramSwitch::new(MediaKind::Video),
        }];
        outputs.extend((0..audio_slots).map(|slot| Output {
            track: TrackKey(0),
            kind: MediaKind::Audio,
            slot,
            switch: ProgramSwitch::new(MediaKind::Audio),
        }));
        for (i, out) in outputs.iter_mut().enumerate() {
            out.track = TrackKey(self.id());
            self.router.add_track(out.track, out.kind, peer::clock_rate(out.kind));
            let source = if out.kind == MediaKind::Audio { TrackSource::Microphone } else { TrackSource::Camera };
            let info = TrackInfo { id: out.name(), participant: PROGRAM_OWNER.into(), source, kind: out.kind };
            self.tracks.insert(
                out.track,
                Track {
                    info,
                    room: program.clone(),
                    owner,
                    feed: None,
                    feed_gen: 0,
                    extensions: Vec::new(),
                    history: None,
                },
            );
            self.program_outputs.insert(out.track, (program.clone(), i));
        }
        info!(program = %program, audio_slots, mirror_of = ?home, "program feed opened");
        let selection = ProgramSelection::default();
        self.programs.insert(
            program,
            Program { owner, outputs, selection, recorder: None, home, mirrors: Vec::new(), upstream: None },
        );
        self.program_refresh(now);
        Ok(())
    }

    /// Another engine mirrors `program` now: it gets a copy of every packet its outputs accept.
    pub(super) fn mirror_wanted(&mut self, program: RoomId, engine: usize, now: Instant) {
        let Some(p) = self.programs.get_mut(&program).filter(|p| p.home.is_none()) else { return };
        if !p.mirrors.iter().any(|m| m.engine == engine) {
            p.mirrors.push(Mirror { engine, told: vec![None; p.outputs.len()] });
            debug!(program = %program, engine, "program mirrored");
            // Its first viewer waits for a keyframe.
            let video = p.output_track(0);
            if let Some(video) = video {
                self.program_keyframe_request(video, now);
            }
        }
    }

    pub(super) fn program_select(
        &mut self,
        program: &RoomId,
        selection: ProgramSelection,
        now: Instant,
    ) -> Result<(), SfuError> {
        let p = self.programs.get_mut(program).ok_or_else(|| SfuError::UnknownProgram(program.to_string()))?;
        if p.upstream.is_some() {
            // This node took the council over while relaying its program: it composes it now,
            // and the viewers it relayed stay (each output switches at its new source's keyframe).
            info!(program = %program, "edge program becomes the origin");
            self.upstream_close(program, now);
        }
        let Some(p) = self.programs.get_mut(program) else { return Ok(()) };
        if p.selection != selection {
            debug!(program = %program, ?selection, "program selection");
            p.selection = selection;
            self.program_refresh(now);
        }
        Ok(())
    }

    pub(super) fn program_close(&mut self, program: &RoomId, now: Instant) -> Result<(), SfuError> {
        self.upstream_close(program, now);
        let p = self.programs.remove(program).ok_or_else(|| SfuError::UnknownProgram(program.to_string()))?;
        let viewers: Vec<ParticipantId> = self
            .rooms
            .get(program)
            .map(|r| r.participants.iter().filter_map(|id| self.parts.get(id)).map(|p| p.id.clone()).collect())
            .unwrap_or_default();
        for viewer in viewers {
            let _ = self.leave(program, &viewer, now);
        }
        if let Some((sink, recorder)) = p.recorder {
            self.router.remove_subscriber(sink);
            self.sinks.remove(&sink);
            // Nobody waits for the files: the writer closes them on its own.
            let (reply, _) = oneshot::channel();
            recorder.stop(reply);
        }
        for out in &p.outputs {
            self.router.remove_track(out.track);
            self.tracks.remove(&out.track);
            self.program_outputs.remove(&out.track);
        }
        let _ = p.owner;
        self.program_refresh(now);
        info!(program = %program, "program feed closed");
        Ok(())
    }

    /// Re-resolves every program's wanted sources (the first published of each list) and the
    /// source → outputs index; asks for the keyframes pending video switches need.
    pub(super) fn program_refresh(&mut self, now: Instant) {
        let mut inputs: HashMap<TrackKey, Vec<(RoomId, usize)>> = HashMap::new();
        let mut keyframes = Vec::new();
        for (room, program) in &mut self.programs {
            for (i, out) in program.outputs.iter_mut().enumerate() {
                let list = if i == 0 { Some(&program.selection.video) } else { program.selection.audio.get(i - 1) };
                for gone in out.switch.inputs().filter(|k| !self.tracks.contains_key(k)).collect::<Vec<_>>() {
                    out.switch.source_gone(gone);
                }
                let wanted = match &program.upstream {
                    Some(up) => up.input(i),
                    None => list.into_iter().flatten().find_map(|s| {
                        let part = self.by_name.get(&(s.room.clone(), s.participant.clone()))?;
                        let key = *self.parts.get(part)?.tracks.get(&s.source)?;
                        (s.source.kind() == out.kind).then_some(key)
                    }),
                };
                if let Some(k) = out.switch.want(wanted) {
                    keyframes.push(k);
                }
                for input in out.switch.inputs() {
                    inputs.entry(input).or_default().push((room.clone(), i));
                }
            }
        }
        self.program_inputs = inputs;
        for k in keyframes {
            self.router.request_keyframe(k, now);
        }
    }

    /// Feeds one upstream packet of `key` to the program outputs it is selected for.
    pub(super) fn feed_programs(
        &mut self,
        key: TrackKey,
        packet: &Rc<rtp::Packet>,
        meta: &RtpMeta,
        now: Instant,
        forwards: &mut Vec<Forward>,
    ) {
        // Taken out and put back (nothing below changes the index; a switch rebuilds it after), so
        // the hot path neither allocates nor clones the list.
        let Some(targets) = self.program_inputs.remove(&key) else { return };
        // A gated source (a councillor without the floor) feeds no program either.
        let mut switched = false;
        if self.router.is_forwarding(key) {
            for (room, i) in &targets {
                let Some(out) = self.programs.get_mut(room).and_then(|p| p.outputs.get_mut(*i)) else { continue };
                let output = out.track;
                let mut switched_here = false;
                match out.switch.accept(key, meta.is_keyframe) {
                    Accept::No => continue,
                    Accept::Yes => {}
                    Accept::Switched => {
                        switched = true;
                        switched_here = true;
                        self.router.clear_stragglers(output);
                        let extensions = self.tracks.get(&key).map(|t| t.extensions.clone()).unwrap_or_default();
                        if let Some(t) = self.tracks.get_mut(&output) {
                            t.extensions = extensions;
                            t.feed_gen += 1;
                        }
                        debug!(program = %room, output = i, source = ?key, "program switched");
                    }
                }
                forwards.clear();
                self.router.route(output, meta, now, forwards);
                self.dispatch(packet, forwards, now);
                // Taken out and put back, as `targets` is.
                let mut mirrors =
                    self.programs.get_mut(room).map(|p| std::mem::take(&mut p.mirrors)).unwrap_or_default();
                for m in &mut mirrors {
                    let track = self.tracks.get(&output);
                    let generation = track.map(|t| t.feed_gen);
                    let told = m.told.get_mut(*i);
                    let extensions = match told {
                        Some(told) if *told != generation => {
                            *told = generation;
                            Some(track.map(|t| t.extensions.clone()).unwrap_or_default())
                        }
                        _ => None,
                    };
                    let copy = shard::MirrorCopy { output: *i, switched: switched_here, extensions };
                    self.copy_to_mirror(m.engine, room, copy, packet, meta);
                }
                if let Some(p) = self.programs.get_mut(room) {
                    p.mirrors = mirrors;
                }
            }
        }
        self.program_inputs.insert(key, targets);
        if switched {
            self.program_refresh(now);
        }
    }

    /// A program output's keyframe request goes to the sources that feed it (current and pending).
    pub(super) fn program_keyframe_request(&mut self, output: TrackKey, now: Instant) -> bool {
        let Some((room, i)) = self.program_outputs.get(&output) else { return false };
        let Some(program) = self.programs.get(room) else { return true };
        if let Some(home) = program.home {
            let (room, i) = (room.clone(), *i);
            self.mirror_keyframe_request(home, room, i);
            return true;
        }
        let sources: Vec<TrackKey> = program.outputs.get(*i).map(|o| o.switch.inputs().collect()).unwrap_or_default();
        for s in sources {
            self.router.request_keyframe(s, now);
        }
        true
    }

    /// A forwarded packet for a recorder sink (not a peer connection).
    pub(super) fn sink_packet(&mut self, f: &Forward, packet: rtp::Packet, now: Instant) -> bool {
        let Some(room) = self.sinks.get(&f.down.subscriber) else { return false };
        let Some(program) = self.programs.get_mut(room) else { return true };
        let Some(i) = program.outputs.iter().position(|o| o.track == f.down.track) else { return true };
        if let Some((_, recorder)) = program.recorder.as_mut() {
            recorder.push(i, packet, now);
        }
        true
    }

    pub(super) fn record_start(
        &mut self,
        program: &RoomId,
        dir: &std::path::Path,
        now: Instant,
    ) -> Result<(), SfuError> {
        let sink = SubscriberKey(self.id());
        let p = self.programs.get_mut(program).ok_or_else(|| SfuError::UnknownProgram(program.to_string()))?;
        if p.recorder.is_some() {
            return Err(SfuError::Recording("this program is already being recorded".into()));
        }
        let outputs: Vec<(MediaKind, usize)> = p.outputs.iter().map(|o| (o.kind, o.slot)).collect();
        p.recorder = Some((sink, Recorder::start(dir, &outputs, now)?));
        let tracks: Vec<TrackKey> = p.outputs.iter().map(|o| o.track).collect();
        self.sinks.insert(sink, program.clone());
        for track in tracks {
            self.router.subscribe(DownTrackKey { subscriber: sink, track }, rand::random::<u32>(), now);
        }
        Ok(())
    }

    pub(super) fn record_stop(&mut self, program: &RoomId, reply: StopReply) {
        let recorder = self.programs.get_mut(program).and_then(|p| p.recorder.take());
        let Some((sink, recorder)) = recorder else {
            let _ = reply.send(Err(SfuError::Recording(format!("{program} is not being recorded"))));
            return;
        };
        self.router.remove_subscriber(sink);
        self.sinks.remove(&sink);
        recorder.stop(reply);
        info!(program = %program, "program recording stopped");
    }

    /// WHEP: answers a viewer's receive-only offer, attaching the program's outputs to its
    /// m-lines in order (the video to the first video m-line, audio slots to the audio ones).
    pub(super) fn whep_offer(
        &mut self,
        program: &RoomId,
        viewer: &ParticipantId,
        sdp: String,
        mirror: Option<MirrorOf>,
        now: Instant,
    ) -> Result<String, SfuError> {
        if let Some(of) = mirror {
            self.open_mirror(program, of, now)?;
        }
        let outputs: Vec<(TrackKey, MediaKind, String)> = self
            .programs
            .get(program)
            .ok_or_else(|| SfuError::UnknownProgram(program.to_string()))?
            .outputs
            .iter()
            .map(|o| (o.track, o.kind, o.name()))
            .collect();
        if self.by_name.contains_key(&(program.clone(), viewer.clone())) {
            return Err(SfuError::AlreadyJoined(viewer.to_string()));
        }
        // Only as many outputs as the offer has receiving m-lines of their kind: an answer adds none.
        let (mut video_lines, mut audio_lines) = receiving_lines(&sdp);
        let offer = RTCSessionDescription::offer(sdp).map_err(|e| SfuError::InvalidSdp(e.to_string()))?;
        let (ufrag, mut pc) = self.new_connection(PcKind::Subscribe, now)?;
        pc.set_remote_description(now, offer).map_err(|e| SfuError::InvalidSdp(e.to_string()))?;
        let mut downs = HashMap::new();
        let mut by_sender_track = HashMap::new();
        for (track, kind, name) in outputs {
            let lines = if kind == MediaKind::Video { &mut video_lines } else { &mut audio_lines };
            if *lines == 0 {
                continue;
            }
            *lines -= 1;
            let ssrc = rand::random::<u32>();
            let media = Down::media_track(PROGRAM_OWNER.to_owned(), name.clone(), kind, ssrc);
            let sender = pc.add_track(media).map_err(|e| SfuError::UnusableOffer(e.to_string()))?;
            downs.insert(track, Down::new(sender, ssrc));
            by_sender_track.insert(name, track);
        }
        if downs.is_empty() {
            return Err(SfuError::UnusableOffer("no receive-only audio or video m-line".into()));
        }
        let answer = pc.create_answer(None).map_err(|e| SfuError::InvalidSdp(e.to_string()))?;
        let answer_sdp = answer.sdp.clone();
        pc.set_local_description(now, answer).map_err(|e| SfuError::InvalidSdp(e.to_string()))?;
        // Payload types, MIDs and extension ids as negotiated by this answer.
        for t in pc.get_transceivers().collect::<Vec<_>>() {
            let Some(tr) = pc.rtp_transceiver(t) else { continue };
            let (Some(sender), mid) = (tr.sender(), tr.mid().clone()) else { continue };
            let Some(down) = downs.values_mut().find(|d| d.sender == sender) else { continue };
            down.mid = mid.map(|m| Bytes::from(m.into_bytes()));
        }
        for (key, down) in downs.iter_mut() {
            let kind = self.tracks.get(key).map_or(MediaKind::Video, |t| t.info.kind);
            down.negotiated(&mut pc, kind);
        }
        if downs.values().all(|d| d.pt.is_none()) {
            return Err(SfuError::UnusableOffer("the offer has neither VP8 nor Opus".into()));
        }

        let id = self.id();
        let peer_id = self.id();
        let sub_key = SubscriberKey(id);
        self.parts.insert(
            id,
            Participant {
                room: program.clone(),
                id: viewer.clone(),
                publish: None,
                subscribe: Some(peer_id),
                sub_key,
                tracks: HashMap::new(),
                gated: HashSet::new(),
                transient: true,
            },
        );
        self.by_name.insert((program.clone(), viewer.clone()), id);
        self.rooms
            .entry(program.clone())
            .or_insert_with(|| Room { participants: Vec::new(), speakers: ActiveSpeakerDetector::new() })
            .participants
            .push(id);
        let leg = SubscribeLeg::new(sub_key, downs, by_sender_track, self.config.subscriber_queue, now);
        self.insert_peer(peer_id, Peer::new(pc, id, ufrag, Leg::Subscribe(leg)));
        self.mark_dirty(peer_id);
        info!(program = %program, viewer = %viewer, "WHEP viewer joined");
        Ok(answer_sdp)
    }

    /// WHIP: an encoder's offer becomes an ordinary publish connection; its first audio and first
    /// video m-lines are the microphone and the camera.
    pub(super) fn whip_offer(
        &mut self,
        room: RoomId,
        participant: ParticipantId,
        sdp: String,
        now: Instant,
    ) -> Result<String, SfuError> {
        let mids = mids_by_kind(&sdp);
        if mids.is_empty() {
            return Err(SfuError::UnusableOffer("no audio or video m-line with a mid".into()));
        }
        self.join(room.clone(), participant.clone(), now)?;
        if let Some(part) = self.by_name.get(&(room.clone(), participant.clone())).and_then(|id| self.parts.get_mut(id))
        {
            part.transient = true;
        }
        let answer = self.publish_offer(&room, &participant, sdp, mids, now);
        if answer.is_err() {
            let _ = self.leave(&room, &participant, now);
        }
        answer
    }
}

/// How many video and audio m-lines of an offer can receive (not `sendonly`/`inactive`, not port 0).
fn receiving_lines(sdp: &str) -> (usize, usize) {
    let mut sections: Vec<(&str, bool)> = Vec::new();
    for line in sdp.lines().map(str::trim_end) {
        if let Some(m) = line.strip_prefix("m=") {
            let mut parts = m.split(' ');
            let kind = parts.next().unwrap_or("");
            let port_zero = parts.next() == Some("0");
            sections.push((kind, !port_zero));
        } else if (line == "a=sendonly" || line == "a=inactive")
            && let Some(last) = sections.last_mut()
        {
            last.1 = false;
        }
    }
    let count = |kind: &str| sections.iter().filter(|(k, ok)| *k == kind && *ok).count();
    (count("video"), count("audio"))
}

/// The first audio and the first video m-line of an offer, as microphone and camera.
fn mids_by_kind(sdp: &str) -> Vec<PublishedMid> {
    let mut out: Vec<PublishedMid> = Vec::new();
    let mut kind: Option<TrackSource> = None;
    for line in sdp.lines().map(str::trim_end) {
        if let Some(m) = line.strip_prefix("m=") {
            kind = match m.split(' ').next() {
                Some("audio") => Some(TrackSource::Microphone),
                Some("video") => Some(TrackSource::Camera),
                _ => None,
            };
        } else if let (Some(mid), Some(source)) = (line.strip_prefix("a=mid:"), kind)
            && !out.iter().any(|m| m.source == source)
        {
            out.push(PublishedMid { mid: mid.to_owned(), source });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whip_mids_take_the_first_audio_and_video_lines() {
        let sdp = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\n\
                   m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:2\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:3\r\n";
        let mids = mids_by_kind(sdp);
        assert_eq!(
            mids,
            vec![
                PublishedMid { mid: "0".into(), source: TrackSource::Microphone },
                PublishedMid { mid: "1".into(), source: TrackSource::Camera },
            ]
        );
        assert_eq!(receiving_lines(sdp), (2, 1));
        let sdp = "v=0\r\nm=audio 9 X 111\r\na=sendonly\r\nm=video 0 X 96\r\nm=video 9 X 96\r\na=recvonly\r\n";
        assert_eq!(receiving_lines(sdp), (1, 0));
        assert!(mids_by_kind("v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:0\r\n").is_empty());
    }
}
