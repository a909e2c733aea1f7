//! The handle the signaling layer holds: every call becomes a command for the engine thread.

use std::net::SocketAddr;

use tokio::sync::{mpsc, oneshot};

use crate::api::*;
use crate::transport::driver::udp;
use crate::transport::engine::Command;

/// A handle to the running media engine. Cloning is cheap; the engine stops when every handle is
/// dropped, or at [`Sfu::stop`].
#[derive(Clone)]
pub struct Sfu {
    commands: mpsc::UnboundedSender<Command>,
    local_addr: SocketAddr,
}

impl Sfu {
    /// Binds the media socket and starts the engine on its own thread.
    pub fn start(config: SfuConfig) -> Result<(Sfu, mpsc::UnboundedReceiver<SfuEvent>), SfuError> {
        let (commands, events, local_addr) = udp::spawn(config)?;
        Ok((Sfu { commands, local_addr }, events))
    }

    /// The address of the media socket (the one UDP port to open in a firewall).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops the engine and waits until it has: its media socket and ICE-TCP listener are closed
    /// (their ports free again) when this returns. Every later call fails with [`SfuError::Stopped`].
    pub async fn stop(&self) {
        let _ = self.commands.send(Command::Stop);
        self.commands.closed().await;
    }

    async fn call<T>(&self, make: impl FnOnce(oneshot::Sender<Result<T, SfuError>>) -> Command) -> Result<T, SfuError> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(make(tx)).map_err(|_| SfuError::Stopped)?;
        rx.await.map_err(|_| SfuError::Stopped)?
    }

    /// Adds a participant to a room, or — if it is already there — starts a fresh session for it
    /// (reconnection): its old peer connections close, its published tracks stay announced but paused
    /// until the new publish connection carries them again, and a new subscribe offer follows.
    pub async fn join(&self, room: RoomId, participant: ParticipantId) -> Result<(), SfuError> {
        self.call(|reply| Command::Join { room, participant, reply }).await
    }

    /// Applies a publish offer from the browser and returns the SFU's answer.
    pub async fn publish_offer(
        &self,
        room: RoomId,
        participant: ParticipantId,
        sdp: String,
        mids: Vec<PublishedMid>,
    ) -> Result<String, SfuError> {
        self.call(|reply| Command::PublishOffer { room, participant, sdp, mids, reply }).await
    }

    /// Applies the browser's answer to the last [`SfuEvent::SubscribeOffer`].
    pub async fn subscribe_answer(
        &self,
        room: RoomId,
        participant: ParticipantId,
        sdp: String,
    ) -> Result<(), SfuError> {
        self.call(|reply| Command::SubscribeAnswer { room, participant, sdp, reply }).await
    }

    /// Adds a trickled remote ICE candidate to one of the participant's peer connections.
    pub async fn add_candidate(
        &self,
        room: RoomId,
        participant: ParticipantId,
        pc: PcKind,
        candidate: IceCandidate,
    ) -> Result<(), SfuError> {
        self.call(|reply| Command::AddCandidate { room, participant, pc, candidate, reply }).await
    }

    /// Removes a participant: closes its peer connections and unpublishes its tracks.
    pub async fn leave(&self, room: RoomId, participant: ParticipantId) -> Result<(), SfuError> {
        self.call(|reply| Command::Leave { room, participant, reply }).await
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
        self.call(|reply| Command::SetForwarding { room, participant, source, enabled, reply }).await
    }

    /// Opens a program feed: a receive-only room `program` whose tracks — one video and
    /// `audio_slots` audio tracks — are fed by whichever sources [`Sfu::program_select`] picks, from
    /// any room, without decoding. Viewers join it with [`Sfu::whep_offer`]; it can be recorded
    /// ([`Sfu::record_start`]). It starts with nothing selected.
    pub async fn program_open(&self, program: RoomId, audio_slots: usize) -> Result<(), SfuError> {
        self.call(|reply| Command::ProgramOpen { program, audio_slots, reply }).await
    }

    /// Changes what the program shows (see [`ProgramSelection`]). Audio slots beyond those opened
    /// are ignored.
    pub async fn program_select(&self, program: RoomId, selection: ProgramSelection) -> Result<(), SfuError> {
        self.call(|reply| Command::ProgramSelect { program, selection, reply }).await
    }

    /// Closes a program feed: its viewers' connections close and a running recording stops.
    pub async fn program_close(&self, program: RoomId) -> Result<(), SfuError> {
        self.call(|reply| Command::ProgramClose { program, reply }).await
    }

    /// WHEP: a receive-only viewer of a program feed. The viewer's offer (with its ICE candidates;
    /// no trickle) gets the answer; program tracks are attached to its audio/video m-lines in order.
    /// The viewer leaves with [`Sfu::leave`]`(program, viewer)`.
    pub async fn whep_offer(&self, program: RoomId, viewer: ParticipantId, sdp: String) -> Result<String, SfuError> {
        self.call(|reply| Command::WhepOffer { program, viewer, sdp, reply }).await
    }

    /// WHIP: an encoder publishes into `room` as `participant` (joined if needed): its first audio
    /// m-line becomes the microphone, its first video m-line the camera. Ends with [`Sfu::leave`].
    pub async fn whip_offer(&self, room: RoomId, participant: ParticipantId, sdp: String) -> Result<String, SfuError> {
        self.call(|reply| Command::WhipOffer { room, participant, sdp, reply }).await
    }

    /// Starts recording a program feed into `dir` (created if missing): `video.ivf` and
    /// `audio-<slot>.ogg`, written off the media thread. Nothing is written while nothing is
    /// selected, so a suspended part leaves a gap.
    pub async fn record_start(&self, program: RoomId, dir: std::path::PathBuf) -> Result<(), SfuError> {
        self.call(|reply| Command::RecordStart { program, dir, reply }).await
    }

    /// Stops the program's recording and returns what was written, once every file is closed.
    pub async fn record_stop(&self, program: RoomId) -> Result<Vec<RecordedFile>, SfuError> {
        let pending = self.call(|reply| Command::RecordStop { program, reply }).await?;
        pending.await.map_err(|_| SfuError::Recording("the recorder stopped unexpectedly".into()))?
    }

    /// Who is in a room now (HTTP-managed viewers vanish from here when their connection fails).
    pub async fn participants(&self, room: RoomId) -> Result<Vec<ParticipantId>, SfuError> {
        self.call(|reply| Command::Participants { room, reply }).await
    }

    /// Counts of live state.
    pub async fn stats(&self) -> Result<SfuStats, SfuError> {
        self.call(|reply| Command::Stats { reply }).await
    }
}
