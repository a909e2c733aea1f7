//! Commands from the [`Sfu`](crate::Sfu) handle, and the dispatch of each to its handler.

use super::*;

type Reply<T> = oneshot::Sender<Result<T, SfuError>>;

/// What the [`Sfu`](crate::Sfu) handle asks of the engine.
pub enum Command {
    Join {
        room: RoomId,
        participant: ParticipantId,
        reply: Reply<()>,
    },
    PublishOffer {
        room: RoomId,
        participant: ParticipantId,
        sdp: String,
        mids: Vec<PublishedMid>,
        reply: Reply<String>,
    },
    SubscribeAnswer {
        room: RoomId,
        participant: ParticipantId,
        sdp: String,
        reply: Reply<()>,
    },
    AddCandidate {
        room: RoomId,
        participant: ParticipantId,
        pc: PcKind,
        candidate: IceCandidate,
        reply: Reply<()>,
    },
    Leave {
        room: RoomId,
        participant: ParticipantId,
        reply: Reply<()>,
    },
    SetForwarding {
        room: RoomId,
        participant: ParticipantId,
        source: TrackSource,
        enabled: bool,
        reply: Reply<()>,
    },
    Stats {
        reply: Reply<SfuStats>,
    },
    Participants {
        room: RoomId,
        reply: Reply<Vec<ParticipantId>>,
    },
    ProgramOpen {
        program: RoomId,
        audio_slots: usize,
        reply: Reply<()>,
    },
    ProgramSelect {
        program: RoomId,
        selection: ProgramSelection,
        reply: Reply<()>,
    },
    ProgramClose {
        program: RoomId,
        reply: Reply<()>,
    },
    WhepOffer {
        program: RoomId,
        viewer: ParticipantId,
        sdp: String,
        /// The program's home is another engine: this one serves the viewer from a mirror.
        mirror: Option<MirrorOf>,
        reply: Reply<String>,
    },
    WhipOffer {
        room: RoomId,
        participant: ParticipantId,
        sdp: String,
        reply: Reply<String>,
    },
    RecordStart {
        program: RoomId,
        dir: std::path::PathBuf,
        reply: Reply<()>,
    },
    /// Answered at once with a receiver that resolves when the files are closed (the writer
    /// thread finishes without holding up the media loop).
    RecordStop {
        program: RoomId,
        reply: Reply<oneshot::Receiver<Result<Vec<RecordedFile>, SfuError>>>,
    },
    UpstreamOffer {
        program: RoomId,
        audio_slots: usize,
        reply: Reply<String>,
    },
    UpstreamAnswer {
        program: RoomId,
        sdp: String,
        reply: Reply<()>,
    },
    UpstreamState {
        program: RoomId,
        reply: Reply<Option<PeerState>>,
    },
    UpstreamClose {
        program: RoomId,
        reply: Reply<()>,
    },
    /// What another engine of the node hands to this one ([`Handoff`]).
    Handoff(Box<Handoff>),
    /// The server shuts down: the driver ends the engine loop, closing its socket and ICE-TCP
    /// listener, even while other handles still exist (background tasks may outlive the server).
    Stop,
}

impl Engine {
    pub(crate) fn command(&mut self, c: Command, now: Instant) {
        match c {
            Command::Join { room, participant, reply } => {
                let _ = reply.send(self.join(room, participant, now));
            }
            Command::PublishOffer { room, participant, sdp, mids, reply } => {
                let _ = reply.send(self.publish_offer(&room, &participant, sdp, mids, now));
            }
            Command::SubscribeAnswer { room, participant, sdp, reply } => {
                let _ = reply.send(self.subscribe_answer(&room, &participant, sdp, now));
            }
            Command::AddCandidate { room, participant, pc, candidate, reply } => {
                let _ = reply.send(self.add_candidate(&room, &participant, pc, candidate));
            }
            Command::Leave { room, participant, reply } => {
                let _ = reply.send(self.leave(&room, &participant, now));
            }
            Command::SetForwarding { room, participant, source, enabled, reply } => {
                let _ = reply.send(self.set_forwarding(&room, &participant, source, enabled, now));
            }
            // Ends the loop in the driver; nothing for the engine itself to do.
            Command::Stop => {}
            Command::Stats { reply } => {
                let _ = reply.send(Ok(SfuStats {
                    rooms: self.rooms.len(),
                    participants: self.parts.len(),
                    peer_connections: self.peers.len(),
                    published_tracks: self.tracks.len(),
                    subscriptions: self.router.subscription_count(),
                    forwarded_packets: self.forwarded,
                    forwarded_bytes: self.forwarded_bytes,
                    dropped_packets: self.dropped,
                    gated_packets: self.router.gated_packets(),
                    nacks_received: self.rtcp.nacks_received.load(Ordering::Relaxed),
                    nacks_sent: self.rtcp.nacks_sent.load(Ordering::Relaxed),
                    plis_received: self.plis_received,
                    plis_sent: self.plis_sent,
                    rtx_sent: self.rtcp.rtx_sent.load(Ordering::Relaxed),
                    rtx_received: self.rtcp.rtx_received.load(Ordering::Relaxed),
                    trimmed_queue_bytes: self.trimmed_queue_bytes,
                    busy: self.busy,
                }));
            }
            Command::Participants { room, reply } => {
                let ids = self
                    .rooms
                    .get(&room)
                    .map(|r| r.participants.iter().filter_map(|p| self.parts.get(p)).map(|p| p.id.clone()).collect());
                let _ = reply.send(Ok(ids.unwrap_or_default()));
            }
            Command::ProgramOpen { program, audio_slots, reply } => {
                let _ = reply.send(self.program_open(program, audio_slots, now));
            }
            Command::ProgramSelect { program, selection, reply } => {
                let _ = reply.send(self.program_select(&program, selection, now));
            }
            Command::ProgramClose { program, reply } => {
                let _ = reply.send(self.program_close(&program, now));
            }
            Command::WhepOffer { program, viewer, sdp, mirror, reply } => {
                let _ = reply.send(self.whep_offer(&program, &viewer, sdp, mirror, now));
            }
            Command::Handoff(h) => self.handoff(*h, now),
            Command::UpstreamOffer { program, audio_slots, reply } => {
                let _ = reply.send(self.upstream_offer(&program, audio_slots, now));
            }
            Command::UpstreamAnswer { program, sdp, reply } => {
                let _ = reply.send(self.upstream_answer(&program, sdp, now));
            }
            Command::UpstreamState { program, reply } => {
                let _ = reply.send(Ok(self.upstream_state(&program)));
            }
            Command::UpstreamClose { program, reply } => {
                self.upstream_close(&program, now);
                let _ = reply.send(Ok(()));
            }
            Command::WhipOffer { room, participant, sdp, reply } => {
                let _ = reply.send(self.whip_offer(room, participant, sdp, now));
            }
            Command::RecordStart { program, dir, reply } => {
                let _ = reply.send(self.record_start(&program, &dir, now));
            }
            Command::RecordStop { program, reply } => {
                let (done, pending) = oneshot::channel();
                self.record_stop(&program, done);
                let _ = reply.send(Ok(pending));
            }
        }
    }

    pub(super) fn set_forwarding(
        &mut self,
        room: &RoomId,
        participant: &ParticipantId,
        source: TrackSource,
        enabled: bool,
        now: Instant,
    ) -> Result<(), SfuError> {
        let part_id = self.part_id(room, participant)?;
        let Some(part) = self.parts.get_mut(&part_id) else {
            return Err(SfuError::UnknownParticipant(participant.to_string()));
        };
        let changed = if enabled { part.gated.remove(&source) } else { part.gated.insert(source) };
        if changed {
            info!(room = %room, participant = %participant, source = source.as_str(), enabled, "forwarding gate");
        }
        if let Some(&key) = part.tracks.get(&source) {
            self.router.set_forwarding(key, enabled, now);
        }
        Ok(())
    }

    pub(super) fn part_id(&self, room: &RoomId, participant: &ParticipantId) -> Result<PartId, SfuError> {
        self.by_name
            .get(&(room.clone(), participant.clone()))
            .copied()
            .ok_or_else(|| SfuError::UnknownParticipant(participant.to_string()))
    }
}
