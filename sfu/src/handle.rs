//! The handle the signaling layer holds: every call becomes a command for the engine thread of
//! its room (or, for a program's viewers, of each engine serving them).

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};

use crate::api::*;
use crate::transport::driver::udp;
use crate::transport::engine::{Command, MirrorOf};

/// A handle to the running media engine. Cloning is cheap; the engine stops when every handle is
/// dropped, or at [`Sfu::stop`].
///
/// With several media threads, each call goes to the engine of its room ([`placement_key`]); a
/// program's WHEP viewers are dealt to every engine in turn, each engine other than the program's
/// home serving them from a mirror of it (a viewer id is unique per engine only: the caller names
/// viewers uniquely).
#[derive(Clone)]
pub struct Sfu {
    engines: Arc<[mpsc::UnboundedSender<Command>]>,
    /// Open programs: their home engine, audio slots and mirrors.
    programs: Arc<Mutex<HashMap<RoomId, Placed>>>,
    local_addr: SocketAddr,
}

struct Placed {
    home: usize,
    audio_slots: usize,
    mirrors: Vec<usize>,
    /// Viewers are dealt to the engines in turn.
    next_viewer: usize,
}

impl Sfu {
    /// Binds the media sockets and starts the engines, each on its own thread.
    pub fn start(config: SfuConfig) -> Result<(Sfu, mpsc::UnboundedReceiver<SfuEvent>), SfuError> {
        let (engines, events, local_addr) = udp::spawn(config)?;
        Ok((Sfu { engines: engines.into(), programs: Arc::default(), local_addr }, events))
    }

    /// The address of the media socket (the one UDP port to open in a firewall).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops the engines and waits until they have: their media sockets and ICE-TCP listener are
    /// closed (their ports free again) when this returns. Every later call fails with
    /// [`SfuError::Stopped`].
    pub async fn stop(&self) {
        for e in self.engines.iter() {
            let _ = e.send(Command::Stop);
        }
        for e in self.engines.iter() {
            e.closed().await;
        }
    }

    /// The engine a room lives on (by its placement key; stable for the life of the process).
    fn engine_of(&self, room: &str) -> usize {
        if self.engines.len() == 1 {
            return 0;
        }
        let mut h = std::hash::DefaultHasher::new();
        placement_key(room).hash(&mut h);
        (h.finish() % self.engines.len() as u64) as usize
    }

    fn placed(&self) -> std::sync::MutexGuard<'_, HashMap<RoomId, Placed>> {
        // A panic while holding it leaves a consistent map: every update is one insert or remove.
        self.programs.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The engines that serve a program: its home, then its mirrors (empty if it is not open).
    fn program_engines(&self, program: &RoomId) -> Vec<usize> {
        self.placed()
            .get(program)
            .map(|p| std::iter::once(p.home).chain(p.mirrors.iter().copied()).collect())
            .unwrap_or_default()
    }

    async fn call_on<T>(
        &self,
        engine: usize,
        make: impl FnOnce(oneshot::Sender<Result<T, SfuError>>) -> Command,
    ) -> Result<T, SfuError> {
        let (tx, rx) = oneshot::channel();
        let engine = self.engines.get(engine).ok_or(SfuError::Stopped)?;
        engine.send(make(tx)).map_err(|_| SfuError::Stopped)?;
        rx.await.map_err(|_| SfuError::Stopped)?
    }

    /// A call about `room`, on its engine.
    async fn call<T>(
        &self,
        room: &RoomId,
        make: impl FnOnce(oneshot::Sender<Result<T, SfuError>>) -> Command,
    ) -> Result<T, SfuError> {
        self.call_on(self.engine_of(room), make).await
    }

    /// Adds a participant to a room, or — if it is already there — starts a fresh session for it
    /// (reconnection): its old peer connections close, its published tracks stay announced but paused
    /// until the new publish connection carries them again, and a new subscribe offer follows.
    pub async fn join(&self, room: RoomId, participant: ParticipantId) -> Result<(), SfuError> {
        self.call(&room.clone(), |reply| Command::Join { room, participant, reply }).await
    }

    /// Applies a publish offer from the browser and returns the SFU's answer.
    pub async fn publish_offer(
        &self,
        room: RoomId,
        participant: ParticipantId,
        sdp: String,
        mids: Vec<PublishedMid>,
    ) -> Result<String, SfuError> {
        self.call(&room.clone(), |reply| Command::PublishOffer { room, participant, sdp, mids, reply }).await
    }

    /// Applies the browser's answer to the last [`SfuEvent::SubscribeOffer`].
    pub async fn subscribe_answer(
        &self,
        room: RoomId,
        participant: ParticipantId,
        sdp: String,
    ) -> Result<(), SfuError> {
        self.call(&room.clone(), |reply| Command::SubscribeAnswer { room, participant, sdp, reply }).await
    }

    /// Adds a trickled remote ICE candidate to one of the participant's peer connections.
    pub async fn add_candidate(
        &self,
        room: RoomId,
        participant: ParticipantId,
        pc: PcKind,
        candidate: IceCandidate,
    ) -> Result<(), SfuError> {
        self.call(&room.clone(), |reply| Command::AddCandidate { room, participant, pc, candidate, reply }).await
    }

    /// Removes a participant: closes its peer connections and unpublishes its tracks.
    pub async fn leave(&self, room: RoomId, participant: ParticipantId) -> Result<(), SfuError> {
        let engines = self.program_engines(&room);
        if engines.is_empty() {
            return self.call(&room.clone(), |reply| Command::Leave { room, participant, reply }).await;
        }
        // A program's viewer is on one of its engines.
        let mut result = Err(SfuError::UnknownParticipant(participant.to_string()));
        for engine in engines {
            let (r, p) = (room.clone(), participant.clone());
            match self.call_on(engine, |reply| Command::Leave { room: r, participant: p, reply }).await {
                Err(SfuError::UnknownParticipant(_)) => {}
                other => result = other,
            }
        }
        result
    }

    /// Server-side gate of one published source: while `enabled` is false the SFU forwards none of
    /// its packets to anyone (whatever the client sends), dropping them in the router before any
    /// queue. The setting belongs to the participant, so it also applies to a track published
    /// later and survives reconnections; re-enabling a video source waits for (and requests) a
    /// keyframe. Every source starts enabled.
    pub async fn set_forwarding(
        &self,
        room: RoomId,
        participant: ParticipantId,
        source: TrackSource,
        enabled: bool,
    ) -> Result<(), SfuError> {
        self.call(&room.clone(), |reply| Command::SetForwarding { room, participant, source, enabled, reply }).await
    }

    /// Opens a program feed: a receive-only room `program` whose tracks — one video and
    /// `audio_slots` audio tracks — are fed by whichever sources [`Sfu::program_select`] picks, from
    /// any room, without decoding. Viewers join it with [`Sfu::whep_offer`]; it can be recorded
    /// ([`Sfu::record_start`]). It starts with nothing selected.
    pub async fn program_open(&self, program: RoomId, audio_slots: usize) -> Result<(), SfuError> {
        let home = self.engine_of(&program);
        let p = program.clone();
        self.call_on(home, |reply| Command::ProgramOpen { program: p, audio_slots, reply }).await?;
        self.placed().insert(program, Placed { home, audio_slots, mirrors: Vec::new(), next_viewer: 0 });
        Ok(())
    }

    /// Changes what the program shows (see [`ProgramSelection`]). Audio slots beyond those opened
    /// are ignored.
    pub async fn program_select(&self, program: RoomId, selection: ProgramSelection) -> Result<(), SfuError> {
        self.call(&program.clone(), |reply| Command::ProgramSelect { program, selection, reply }).await
    }

    /// Closes a program feed: its viewers' connections close and a running recording stops.
    pub async fn program_close(&self, program: RoomId) -> Result<(), SfuError> {
        let engines = self.placed().remove(&program).map(|p| p.mirrors);
        // Its mirrors first (their viewers leave), then its home.
        for engine in engines.into_iter().flatten() {
            let p = program.clone();
            let _ = self.call_on(engine, |reply| Command::ProgramClose { program: p, reply }).await;
        }
        self.call(&program.clone(), |reply| Command::ProgramClose { program, reply }).await
    }

    /// An edge's program (several nodes, `docs/cluster.md`): opens `program` here if it is not
    /// open, fed by a relay leg from the origin node's program instead of a selection; returns the
    /// leg's offer, which the origin answers as it answers a WHEP viewer
    /// ([`Sfu::upstream_answer`]). Called again, it replaces the leg (a new origin): the outputs
    /// and their viewers stay, and switch to the new leg at its first keyframe.
    /// [`Sfu::program_select`] turns it into an ordinary program (this node became the origin).
    pub async fn upstream_offer(&self, program: RoomId, audio_slots: usize) -> Result<String, SfuError> {
        let home = self.engine_of(&program);
        let p = program.clone();
        let offer = self.call_on(home, |reply| Command::UpstreamOffer { program: p, audio_slots, reply }).await?;
        self.placed().entry(program).or_insert(Placed { home, audio_slots, mirrors: Vec::new(), next_viewer: 0 });
        Ok(offer)
    }

    /// Applies the origin's answer to the relay leg's offer: the leg connects.
    pub async fn upstream_answer(&self, program: RoomId, sdp: String) -> Result<(), SfuError> {
        self.call(&program.clone(), |reply| Command::UpstreamAnswer { program, sdp, reply }).await
    }

    /// The relay leg's connection state (`None`: no leg).
    pub async fn upstream_state(&self, program: RoomId) -> Result<Option<PeerState>, SfuError> {
        self.call(&program.clone(), |reply| Command::UpstreamState { program, reply }).await
    }

    /// Closes the relay leg; the program and its viewers stay, on the slate.
    pub async fn upstream_close(&self, program: RoomId) -> Result<(), SfuError> {
        self.call(&program.clone(), |reply| Command::UpstreamClose { program, reply }).await
    }

    /// WHEP: a receive-only viewer of a program feed. The viewer's offer (with its ICE candidates;
    /// no trickle) gets the answer; program tracks are attached to its audio/video m-lines in order.
    /// The viewer leaves with [`Sfu::leave`]`(program, viewer)`.
    pub async fn whep_offer(&self, program: RoomId, viewer: ParticipantId, sdp: String) -> Result<String, SfuError> {
        let (engine, mirror) = {
            let count = self.engines.len();
            let mut placed = self.placed();
            match placed.get_mut(&program) {
                Some(p) => {
                    let engine = p.next_viewer % count;
                    p.next_viewer = p.next_viewer.wrapping_add(1);
                    if engine == p.home {
                        (engine, None)
                    } else {
                        if !p.mirrors.contains(&engine) {
                            p.mirrors.push(engine);
                        }
                        (engine, Some(MirrorOf { home: p.home, audio_slots: p.audio_slots }))
                    }
                }
                // Not open: its home says so.
                None => (self.engine_of(&program), None),
            }
        };
        self.call_on(engine, |reply| Command::WhepOffer { program, viewer, sdp, mirror, reply }).await
    }

    /// WHIP: an encoder publishes into `room` as `participant` (joined if needed): its first audio
    /// m-line becomes the microphone, its first video m-line the camera. Ends with [`Sfu::leave`].
    pub async fn whip_offer(&self, room: RoomId, participant: ParticipantId, sdp: String) -> Result<String, SfuError> {
        self.call(&room.clone(), |reply| Command::WhipOffer { room, participant, sdp, reply }).await
    }

    /// Starts recording a program feed into `dir` (created if missing): `video.ivf` and
    /// `audio-<slot>.ogg`, written off the media thread. Nothing is written while nothing is
    /// selected, so a suspended part leaves a gap.
    pub async fn record_start(&self, program: RoomId, dir: std::path::PathBuf) -> Result<(), SfuError> {
        self.call(&program.clone(), |reply| Command::RecordStart { program, dir, reply }).await
    }

    /// Stops the program's recording and returns what was written, once every file is closed.
    pub async fn record_stop(&self, program: RoomId) -> Result<Vec<RecordedFile>, SfuError> {
        let pending = self.call(&program.clone(), |reply| Command::RecordStop { program, reply }).await?;
        pending.await.map_err(|_| SfuError::Recording("the recorder stopped unexpectedly".into()))?
    }

    /// Who is in a room now (HTTP-managed viewers vanish from here when their connection fails).
    pub async fn participants(&self, room: RoomId) -> Result<Vec<ParticipantId>, SfuError> {
        let engines = self.program_engines(&room);
        if engines.is_empty() {
            return self.call(&room.clone(), |reply| Command::Participants { room, reply }).await;
        }
        let mut all = Vec::new();
        for engine in engines {
            let r = room.clone();
            all.extend(self.call_on(engine, |reply| Command::Participants { room: r, reply }).await?);
        }
        Ok(all)
    }

    /// Counts of live state, summed over the engines (`busy` too: it can exceed wall time).
    pub async fn stats(&self) -> Result<SfuStats, SfuError> {
        let mut total = SfuStats::default();
        for s in self.engine_stats().await? {
            total += s;
        }
        Ok(total)
    }

    /// Counts of live state per engine (media thread), in engine order.
    pub async fn engine_stats(&self) -> Result<Vec<SfuStats>, SfuError> {
        let mut all = Vec::with_capacity(self.engines.len());
        for engine in 0..self.engines.len() {
            all.push(self.call_on(engine, |reply| Command::Stats { reply }).await?);
        }
        Ok(all)
    }
}
