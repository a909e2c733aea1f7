//! One room, run as an actor task: it owns the participants, their tracks and mute states, calls the
//! SFU, and turns SFU events into messages for the right websockets.
//!
//! Why an actor and not a shared `Mutex`: the room must order its SFU calls (a `leave` racing a
//! re-`join` of the same identity would otherwise tear down the fresh session) and must not announce
//! a participant before the SFU accepted it. One task processing one input at a time gives both, with
//! no lock held across `.await`. The room never waits for a websocket: every connection has a bounded
//! queue, and a connection whose queue is full is closed (it then counts as a dropped connection and
//! may come back within the grace period) rather than slowing the room down.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use sportello_sfu::{
    IceCandidate, ParticipantId, PcKind, PeerState, PublishedMid, RoomId, Sfu, SfuEvent, SubscribedTrack, TrackInfo,
};
use tokio::sync::{Notify, mpsc, oneshot};

use sportello_store::{NewChat, Status, StoreError};

use crate::council::{self, CouncilJob, CouncilRoom};
use crate::error::{Lang, ProtocolError};
use crate::persist::{Job, Persister};
use crate::protocol::IceServer;
use crate::protocol::{self, ChatInfo, ClientMessage, DocumentInfo, LobbyEntry, Muted, ParticipantInfo, ServerMessage};
use crate::recording::{self, Finished};
use crate::rooms::Rooms;
use sportello_backoffice::clock::Clock;
use sportello_backoffice::desk::{WALKIN_ROOM_PREFIX, citizen_identity};
use sportello_backoffice::token::{Claims, Role};

/// Close code after `declined` (see "Errors" in `docs/signaling.md`).
pub const CLOSE_DECLINED: u16 = 4013;
/// People waiting in one lobby at most; more get `room_full`.
const MAX_WAITING: usize = 50;

/// Identifies one websocket, so that a stale connection (replaced, timed out) cannot act for the
/// participant that has since reconnected.
pub type ConnId = u64;

/// Frames queued for one websocket.
#[derive(Debug, Clone, PartialEq)]
pub enum Outgoing {
    Text(SharedText),
    Close(u16, &'static str),
}

/// A message serialized once and queued for many websockets: a clone is a reference count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedText(Bytes);

impl SharedText {
    pub fn as_str(&self) -> &str {
        // Only ever built from a `String`.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The UTF-8 bytes, for the websocket library's own text type.
    pub fn into_bytes(self) -> Bytes {
        self.0
    }
}

impl From<String> for SharedText {
    fn from(text: String) -> SharedText {
        SharedText(Bytes::from(text))
    }
}

/// The websocket is closed or could not keep up; nothing more will reach it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gone;

/// A handle on one websocket's outgoing queue. Sending never waits.
#[derive(Debug, Clone)]
pub struct Connection {
    pub id: ConnId,
    pub lang: Lang,
    tx: mpsc::Sender<Outgoing>,
    kill: Arc<Notify>,
}

/// The websocket writer's side of a [`Connection`].
#[derive(Debug)]
pub struct Outbox {
    pub rx: mpsc::Receiver<Outgoing>,
    /// Notified when the queue overflowed: the writer closes the socket at once.
    pub kill: Arc<Notify>,
}

impl Connection {
    pub fn new(id: ConnId, lang: Lang, capacity: usize) -> (Connection, Outbox) {
        let (tx, rx) = mpsc::channel(capacity);
        let kill = Arc::new(Notify::new());
        (Connection { id, lang, tx, kill: kill.clone() }, Outbox { rx, kill })
    }

    /// Queues a frame. A full queue means the client is not reading: it is cut off instead of
    /// letting its backlog grow or its slowness reach the room.
    pub fn push(&self, out: Outgoing) -> Result<(), Gone> {
        match self.tx.try_send(out) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!(conn = self.id, "websocket cannot keep up; closing it");
                self.kill.notify_one();
                Err(Gone)
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(Gone),
        }
    }

    pub fn send(&self, message: &ServerMessage) -> Result<(), Gone> {
        self.push(Outgoing::Text(message.to_json().into()))
    }

    /// Sends `error`; a fatal one is followed by its close code.
    pub fn send_error(&self, error: &ProtocolError) -> Result<(), Gone> {
        // Client mistakes are the client's business (and a flood of them must not flood the
        // logs); refused joins and server failures are worth seeing.
        match error {
            ProtocolError::Internal(_) => tracing::error!(code = error.code(), %error, "error sent to client"),
            e if e.is_fatal() => tracing::info!(code = error.code(), %error, "error sent to client"),
            _ => tracing::debug!(code = error.code(), %error, "error sent to client"),
        }
        self.send(&ServerMessage::Error(error.to_wire(self.lang)))?;
        match error.close_code() {
            Some(code) => self.close(code, error.code()),
            None => Ok(()),
        }
    }

    pub fn close(&self, code: u16, reason: &'static str) -> Result<(), Gone> {
        self.push(Outgoing::Close(code, reason))
    }
}

/// What every room is configured with.
#[derive(Debug, Clone)]
pub struct RoomSettings {
    pub reconnect_grace: Duration,
    pub max_participants: usize,
    pub ice_servers: Vec<IceServer>,
    /// TURN servers with credentials of their own for each participant, added to `ice_servers`.
    pub turn: Option<crate::turn::Turn>,
    /// For `since` and chat timestamps.
    pub clock: Clock,
    /// How long chat is kept.
    pub retention: Duration,
    /// Where chat and appointment events go (the room never awaits the database).
    pub persist: Persister<Control>,
    /// The public state of council sessions, written by council rooms.
    pub live: crate::live::LiveBoard,
    /// Where council recordings are written (`<data_dir>/recordings`).
    pub data_dir: std::path::PathBuf,
}

/// Someone waiting in a room's lobby, as the officials' dashboard sees them (also between nodes).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WaitingInfo {
    /// The participant id (= the token identity).
    pub id: String,
    pub identity: String,
    pub name: String,
    /// Unix seconds (server clock).
    pub since: i64,
    pub appt: Option<String>,
}

/// What the registry may read about a room without asking its actor (kept current by the actor).
#[derive(Debug, Default)]
pub struct RoomView {
    pub lobby: Vec<WaitingInfo>,
    /// Identities admitted to the room (including those within the reconnection grace).
    pub admitted: Vec<String>,
}

/// Answers to a lobby decision taken from outside the room (the dashboard).
pub type LobbyReply = oneshot::Sender<Result<(), ProtocolError>>;

/// Inputs that do not come from a joined session's websocket, or must not wait behind it.
#[derive(Debug)]
pub enum Control {
    Join {
        claims: Claims,
        conn: Connection,
        /// The store says a host let this identity in and it has not left since (the server
        /// restarted meanwhile): it skips the lobby (`Store::is_admitted`).
        admitted: bool,
        reply: oneshot::Sender<Result<(), ProtocolError>>,
    },
    Sfu(SfuEvent),
    GraceOver {
        participant: ParticipantId,
        generation: u64,
    },
    /// A host decision taken outside the room (the officials' dashboard).
    Admit {
        participant: String,
        reply: LobbyReply,
    },
    Decline {
        participant: String,
        reply: LobbyReply,
    },
    /// The persistence task stored a chat message: relay it.
    ChatStored(ChatInfo),
    /// It could not: tell the sender.
    ChatFailed {
        participant: ParticipantId,
        conn: ConnId,
    },
    /// A document was uploaded over HTTP: announce it.
    Document(DocumentInfo),
    /// A council room's session, loaded from the database (`None`: no such session).
    Council(Option<council::Loaded>),
}

/// Inputs from a joined session, in the order its websocket delivered them.
#[derive(Debug)]
pub enum Command {
    Client {
        conn: ConnId,
        participant: ParticipantId,
        message: ClientMessage,
    },
    /// The websocket ended without `leave`.
    Disconnected {
        conn: ConnId,
        participant: ParticipantId,
    },
}

#[derive(Debug)]
struct Participant {
    id: ParticipantId,
    name: String,
    role: Role,
    muted: Muted,
    /// Tracks the SFU reported as published; they stay through a reconnection.
    tracks: Vec<TrackInfo>,
    /// `None` while in the reconnection grace period.
    conn: Option<Connection>,
    /// Bumped on every detach and re-attach, so that an old grace timer cannot remove a
    /// participant who came back.
    generation: u64,
    /// A subscribe `offer` was delivered and not answered yet.
    subscribe_offer_pending: bool,
    /// The person the room is for: the appointment's own link (its `appt` claim) or the walk-in's
    /// citizen — not a guest an official invited. Only their coming counts as the citizen's.
    citizen: bool,
    /// Chat messages this participant may still send now.
    chat_budget: ChatBudget,
    /// Came in through the lobby (a `wait` token): its admission is stored while it is here.
    held: bool,
}

/// A token bucket for chat: [`ChatBudget::BURST`] messages at once, then one per
/// [`ChatBudget::EVERY`] — a person typing never meets it; a script storing a thousand messages in
/// half a second does.
#[derive(Debug)]
struct ChatBudget {
    tokens: f64,
    at: std::time::Instant,
}

impl ChatBudget {
    const BURST: f64 = 10.0;
    const EVERY: Duration = Duration::from_secs(2);

    fn new(now: std::time::Instant) -> ChatBudget {
        ChatBudget { tokens: Self::BURST, at: now }
    }

    fn take(&mut self, now: std::time::Instant) -> bool {
        let refill = now.saturating_duration_since(self.at).as_secs_f64() / Self::EVERY.as_secs_f64();
        self.tokens = (self.tokens + refill).min(Self::BURST);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

impl Participant {
    fn info(&self) -> ParticipantInfo {
        ParticipantInfo {
            id: self.id.to_string(),
            name: self.name.clone(),
            role: self.role,
            tracks: self.tracks.clone(),
            muted: self.muted.clone(),
        }
    }
}

/// A participant whose token says `wait`: connected, but not in the SFU nor shown to anyone but
/// hosts until a host admits them.
#[derive(Debug)]
struct Waiting {
    id: ParticipantId,
    claims: Claims,
    conn: Connection,
    since: i64,
}

pub(crate) struct Room {
    id: RoomId,
    sfu: Sfu,
    settings: Arc<RoomSettings>,
    /// Join order; at most `max_participants`, so linear lookups are fine.
    participants: Vec<Participant>,
    /// The lobby, oldest first; at most [`MAX_WAITING`].
    waiting: Vec<Waiting>,
    /// The appointment this room belongs to (`appt-<id>`), for chat rows and status changes.
    appointment: Option<String>,
    /// The walk-in this room serves (`walkin-<id>`): it is done when the room ends after they met.
    walkin: Option<String>,
    /// A host and someone they receive (the citizen) were in the room together since it was last
    /// empty: only then does its emptying complete the appointment. A citizen admitted into an
    /// empty room who leaves before anyone came can come back with the same link.
    met: bool,
    view: Arc<Mutex<RoomView>>,
    /// The SFU only reports changes of the loudest participant, so the current one is kept here for
    /// whoever joins later (otherwise they see no speaker until it changes).
    active_speaker: Option<String>,
    /// For grace timers, which report back to the room.
    control: mpsc::UnboundedSender<Control>,
    /// Rooms `council-<id>`: the chaired session (floor, roll call, votes).
    council: Option<CouncilRoom>,
    /// Council rooms: the public stream and the recording of the session.
    on_air: Option<crate::broadcast::Broadcast>,
    /// This node's ownership epoch of the room, when several nodes share the database: every
    /// write the room queues is fenced with it.
    epoch: Option<i64>,
}

impl Room {
    pub(crate) fn new(
        id: RoomId,
        sfu: Sfu,
        settings: Arc<RoomSettings>,
        control: mpsc::UnboundedSender<Control>,
        view: Arc<Mutex<RoomView>>,
        epoch: Option<i64>,
    ) -> Room {
        let appointment = id.strip_prefix("appt-").filter(|a| !a.is_empty()).map(str::to_owned);
        let walkin = id.strip_prefix(WALKIN_ROOM_PREFIX).filter(|a| !a.is_empty()).map(str::to_owned);
        let council = CouncilRoom::for_room(&id).map(|(mut council, load)| {
            let load = fence(council_job(load, settings.clock.now()), &id, epoch);
            if settings.persist.submit(load).is_err() {
                council.load_not_queued();
            }
            council
        });
        let on_air = council.as_ref().map(|c| {
            crate::broadcast::Broadcast::new(
                id.clone(),
                c.session_id(),
                settings.live.clone(),
                settings.data_dir.clone(),
            )
        });
        Room {
            id,
            sfu,
            settings,
            participants: Vec::new(),
            waiting: Vec::new(),
            appointment,
            walkin,
            met: false,
            view,
            active_speaker: None,
            control,
            council,
            on_air,
            epoch,
        }
    }

    /// Runs until the room is empty and the registry agreed to forget it.
    pub(crate) async fn run(
        mut self,
        actor: u64,
        rooms: Rooms,
        mut control: mpsc::UnboundedReceiver<Control>,
        mut commands: mpsc::Receiver<Command>,
    ) {
        tracing::info!("room opened");
        loop {
            tokio::select! {
                Some(input) = control.recv() => self.on_control(input).await,
                Some(input) = commands.recv() => self.on_command(input).await,
                else => break,
            }
            if self.participants.is_empty() && self.waiting.is_empty() && rooms.retire(&self.id, actor, &control) {
                break;
            }
        }
        let finished = match (self.on_air.as_mut(), self.council.as_ref()) {
            (Some(on_air), Some(council)) => on_air.stop(&self.sfu, council, self.settings.clock.now()).await,
            _ => None,
        };
        self.archive(finished);
        tracing::info!("room closed");
    }

    fn waiting_index(&self, id: &str) -> Option<usize> {
        self.waiting.iter().position(|w| &*w.id == id)
    }

    fn index(&self, id: &str) -> Option<usize> {
        self.participants.iter().position(|p| &*p.id == id)
    }

    /// The participant whose current websocket is `conn`; stale connections get `None`.
    fn index_for(&self, id: &str, conn: ConnId) -> Option<usize> {
        self.index(id).filter(|&i| self.participants[i].conn.as_ref().is_some_and(|c| c.id == conn))
    }

    async fn on_control(&mut self, input: Control) {
        match input {
            Control::Join { claims, conn, admitted, reply } => {
                let result = self.join(claims, conn, admitted).await;
                // The session may have gone meanwhile; then its Disconnected command follows.
                let _ = reply.send(result);
            }
            Control::Sfu(event) => self.on_sfu_event(event),
            Control::GraceOver { participant, generation } => {
                if let Some(i) = self.index(&participant) {
                    let p = &self.participants[i];
                    if p.conn.is_none() && p.generation == generation {
                        tracing::info!(participant = %participant, "did not come back within the grace period");
                        self.remove(i).await;
                    }
                }
            }
            Control::Admit { participant, reply } => {
                let _ = reply.send(self.admit(&participant).await);
            }
            Control::Decline { participant, reply } => {
                let _ = reply.send(self.decline(&participant));
            }
            Control::ChatStored(chat) => self.broadcast(&ServerMessage::Chat(chat), None),
            Control::ChatFailed { participant, conn } => {
                if let Some(i) = self.index_for(&participant, conn) {
                    self.send_error(i, &ProtocolError::Internal("chat not stored".into()));
                }
            }
            Control::Document(document) => self.broadcast(&ServerMessage::Document(document), None),
            Control::Council(loaded) => {
                let now = self.settings.clock.now();
                if let Some(actions) = self.council.as_mut().map(|c| c.loaded(loaded, now)) {
                    self.council_actions(actions).await;
                }
            }
        }
    }

    async fn on_command(&mut self, input: Command) {
        match input {
            Command::Client { conn, participant, message } => {
                let Some(i) = self.index_for(&participant, conn) else {
                    if let Some(w) = self.waiting_index(&participant).filter(|&w| self.waiting[w].conn.id == conn) {
                        self.on_waiting_client(w, message);
                    } else {
                        tracing::debug!(participant = %participant, conn, "message from a stale connection ignored");
                    }
                    return;
                };
                if let Err(error) = self.on_client(i, message).await
                    && let Some(i) = self.index_for(&participant, conn)
                {
                    self.send_error(i, &error);
                }
            }
            Command::Disconnected { conn, participant } => {
                if let Some(i) = self.index_for(&participant, conn) {
                    tracing::info!(participant = %participant, grace = ?self.settings.reconnect_grace, "websocket dropped; waiting for it to come back");
                    self.detach(i);
                } else if let Some(w) = self.waiting_index(&participant).filter(|&w| self.waiting[w].conn.id == conn) {
                    // Nobody was shown this person: there is nothing to come back to.
                    tracing::info!(participant = %participant, "left the lobby");
                    self.waiting.remove(w);
                    self.lobby_changed();
                }
            }
        }
    }

    /// A join: into the lobby when the token says `wait` (unless this identity was admitted
    /// already and is coming back, within its grace or after a restart), else straight in.
    async fn join(&mut self, claims: Claims, conn: Connection, admitted: bool) -> Result<(), ProtocolError> {
        let must_wait = claims.wait && claims.role != Role::Host;
        if !must_wait || admitted || self.index(&claims.sub).is_some() {
            return self.enter(claims, conn).await;
        }
        let id: ParticipantId = claims.sub.as_str().into();
        let since = match self.waiting_index(&id) {
            Some(w) => {
                let old = std::mem::replace(&mut self.waiting[w].conn, conn.clone());
                tracing::info!(participant = %id, old = old.id, new = conn.id, "waiting again from a new connection");
                let _ = old.send_error(&ProtocolError::Replaced);
                self.waiting[w].claims = claims;
                self.waiting[w].since
            }
            None => {
                if self.waiting.len() >= MAX_WAITING {
                    return Err(ProtocolError::RoomFull);
                }
                let since = self.settings.clock.now();
                tracing::info!(participant = %id, "waiting in the lobby");
                if let Some(appointment) = claims.appt.clone().or_else(|| self.appointment.clone()) {
                    // Only the appointment's own link (its `appt` claim) is the citizen arriving;
                    // a guest the official invited waits without one.
                    let _ = self.persist(citizen_waiting(appointment, since, claims.appt.is_some()));
                }
                self.waiting.push(Waiting { id, claims, conn: conn.clone(), since });
                since
            }
        };
        let _ = conn.send(&ServerMessage::Waiting { since });
        self.lobby_changed();
        Ok(())
    }

    /// Lets a waiting participant in, exactly as if they had joined now.
    async fn admit(&mut self, participant: &str) -> Result<(), ProtocolError> {
        let Some(w) = self.waiting_index(participant) else { return Err(ProtocolError::NotWaiting) };
        let waiting = self.waiting.remove(w);
        self.lobby_changed();
        tracing::info!(participant, "admitted");
        let waited = self.settings.clock.now().saturating_sub(waiting.since).max(0);
        metrics::histogram!("sportello_waiting_room_wait_seconds").record(waited as f64);
        let conn = waiting.conn.clone();
        if let Err(error) = self.enter(waiting.claims, waiting.conn).await {
            // The person learns why (room full, media engine failure); the host only that it failed.
            let _ = conn.send_error(&error);
            if !error.is_fatal() {
                let _ = conn.close(1011, "admission failed");
            }
            return Err(error);
        }
        Ok(())
    }

    fn decline(&mut self, participant: &str) -> Result<(), ProtocolError> {
        let Some(w) = self.waiting_index(participant) else { return Err(ProtocolError::NotWaiting) };
        let waiting = self.waiting.remove(w);
        tracing::info!(participant, "declined");
        let error = ProtocolError::Declined;
        let _ = waiting.conn.send(&ServerMessage::Declined { message: error.message(waiting.conn.lang) });
        let _ = waiting.conn.close(CLOSE_DECLINED, error.code());
        self.lobby_changed();
        Ok(())
    }

    /// A waiting participant may only leave (or wait).
    fn on_waiting_client(&mut self, w: usize, message: ClientMessage) {
        match message {
            ClientMessage::Leave => {
                tracing::info!(participant = %self.waiting[w].id, "left the lobby");
                self.waiting.remove(w);
                self.lobby_changed();
            }
            ClientMessage::Join { .. } => {
                let _ = self.waiting[w].conn.send_error(&ProtocolError::AlreadyJoined);
            }
            _ => {
                let _ = self.waiting[w].conn.send_error(&ProtocolError::NotAdmitted);
            }
        }
    }

    /// Tells the hosts who is waiting, and refreshes what the registry sees.
    fn lobby_changed(&mut self) {
        let message = ServerMessage::Lobby { waiting: self.lobby_entries() };
        let hosts: Vec<usize> =
            (0..self.participants.len()).filter(|&i| self.participants[i].role == Role::Host).collect();
        for i in hosts {
            self.send_to(i, &message);
        }
        self.publish_view();
    }

    fn lobby_entries(&self) -> Vec<LobbyEntry> {
        self.waiting
            .iter()
            .map(|w| LobbyEntry { id: w.id.to_string(), name: w.claims.name.clone(), since: w.since })
            .collect()
    }

    fn publish_view(&self) {
        let lobby = self
            .waiting
            .iter()
            .map(|w| WaitingInfo {
                id: w.id.to_string(),
                identity: w.claims.sub.clone(),
                name: w.claims.name.clone(),
                since: w.since,
                appt: w.claims.appt.clone(),
            })
            .collect();
        let admitted = self.participants.iter().map(|p| p.id.to_string()).collect();
        let mut view = self.view.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        *view = RoomView { lobby, admitted };
    }

    async fn enter(&mut self, claims: Claims, conn: Connection) -> Result<(), ProtocolError> {
        let id: ParticipantId = claims.sub.as_str().into();
        let existing = self.index(&id);
        if existing.is_none() && self.participants.len() >= self.settings.max_participants {
            return Err(ProtocolError::RoomFull);
        }
        // The SFU first: nobody is told about a participant the media engine refused. On a
        // re-join the SFU starts a fresh session (new peer connections, a new subscribe offer).
        self.sfu.join(self.id.clone(), id.clone()).await?;
        let reconnected = match existing {
            Some(i) => {
                let p = &mut self.participants[i];
                if let Some(old) = p.conn.take() {
                    tracing::info!(participant = %id, old = old.id, new = conn.id, "replaced by a new connection");
                    let _ = old.send_error(&ProtocolError::Replaced);
                } else {
                    tracing::info!(participant = %id, "came back within the grace period");
                }
                p.conn = Some(conn);
                p.generation += 1;
                p.subscribe_offer_pending = false;
                true
            }
            None => {
                tracing::info!(participant = %id, role = %claims.role, "joined");
                let held = claims.wait && claims.role != Role::Host;
                if held {
                    let now = self.settings.clock.now();
                    let _ = self.persist(admission(self.id.clone(), id.clone(), Some(now)));
                }
                let walkin_citizen = self.walkin.as_ref().is_some_and(|w| claims.sub == citizen_identity(w));
                let citizen = claims.role != Role::Host && (claims.appt.is_some() || walkin_citizen);
                if citizen && let Some(appointment) = claims.appt.clone() {
                    let now = self.settings.clock.now();
                    let _ = self.persist(citizen_joined(appointment, now));
                }
                self.participants.push(Participant {
                    id: id.clone(),
                    name: claims.name,
                    role: claims.role,
                    muted: Muted::default(),
                    tracks: Vec::new(),
                    conn: Some(conn),
                    generation: 0,
                    subscribe_offer_pending: false,
                    chat_budget: ChatBudget::new(std::time::Instant::now()),
                    held,
                    citizen,
                });
                false
            }
        };
        if (self.appointment.is_some() || self.walkin.is_some()) && !self.met {
            self.met =
                self.participants.iter().any(|p| p.role == Role::Host) && self.participants.iter().any(|p| p.citizen);
        }
        let Some(i) = self.index(&id) else {
            return Err(ProtocolError::Internal("participant vanished during join".into()));
        };
        let welcome = ServerMessage::Welcome {
            room: self.id.to_string(),
            you: self.participants[i].info(),
            participants: self.participants.iter().filter(|p| p.id != id).map(Participant::info).collect(),
            ice_servers: crate::turn::ice_servers(
                &self.settings.ice_servers,
                self.settings.turn.as_ref(),
                &id,
                self.settings.clock.now(),
            ),
            reconnected,
        };
        self.send_to(i, &welcome);
        if let Some(speaker) = self.active_speaker.clone() {
            self.send_to(i, &ServerMessage::ActiveSpeaker { participant_id: Some(speaker) });
        }
        // A host learns who is already waiting (an empty lobby is not worth a message: rooms
        // without waiting people never see one).
        if self.participants[i].role == Role::Host && !self.waiting.is_empty() {
            self.send_to(i, &ServerMessage::Lobby { waiting: self.lobby_entries() });
        }
        if !reconnected {
            let joined = ServerMessage::ParticipantJoined { participant: self.participants[i].info() };
            self.broadcast(&joined, Some(&id));
            self.publish_view();
        }
        let (role, now) = (self.participants[i].role, self.settings.clock.now());
        let actions = match self.council.as_mut() {
            Some(c) if reconnected => c.state(),
            Some(c) => c.joined(&id, role, now),
            None => Vec::new(),
        };
        self.council_actions(actions).await;
        Ok(())
    }

    async fn on_client(&mut self, i: usize, message: ClientMessage) -> Result<(), ProtocolError> {
        let id = self.participants[i].id.clone();
        match message {
            // The session answers a second join itself; this is only a safety net.
            ClientMessage::Join { .. } => Err(ProtocolError::AlreadyJoined),
            // The session answers pings itself.
            ClientMessage::Ping => Ok(()),
            ClientMessage::Offer { pc, sdp, tracks } => self.publish_offer(i, pc, sdp, tracks).await,
            ClientMessage::Answer { pc, sdp } => {
                if pc != PcKind::Subscribe {
                    return Err(ProtocolError::WrongState("the server never offers on the publish connection"));
                }
                if !self.participants[i].subscribe_offer_pending {
                    return Err(ProtocolError::WrongState("no subscribe offer outstanding"));
                }
                let result = self.sfu.subscribe_answer(self.id.clone(), id.clone(), sdp).await;
                // Unless the SDP was bad (the client may retry), the offer is settled either way.
                if !matches!(result, Err(sportello_sfu::SfuError::InvalidSdp(_)))
                    && let Some(i) = self.index(&id)
                {
                    self.participants[i].subscribe_offer_pending = false;
                }
                Ok(result?)
            }
            ClientMessage::Candidate { pc, candidate } => self.add_candidate(i, pc, candidate).await,
            ClientMessage::Mute { source, muted } => {
                let role = self.participants[i].role;
                if !muted
                    && source == sportello_sfu::TrackSource::Microphone
                    && self.council.as_ref().is_some_and(|c| !c.may_unmute(&id, role))
                {
                    return Err(ProtocolError::FloorRequired);
                }
                self.participants[i].muted.set(source, muted);
                let message = ServerMessage::Mute { participant_id: id.to_string(), source, muted };
                self.broadcast(&message, Some(&id));
                Ok(())
            }
            ClientMessage::Leave => {
                tracing::info!(participant = %id, "left");
                // The session closes its websocket (1000) itself.
                self.participants[i].conn = None;
                self.remove(i).await;
                Ok(())
            }
            ClientMessage::Chat { text } => self.chat(i, &text),
            ClientMessage::Admit { participant_id } => {
                if self.participants[i].role != Role::Host {
                    return Err(ProtocolError::Forbidden);
                }
                self.admit(&participant_id).await
            }
            ClientMessage::Decline { participant_id } => {
                if self.participants[i].role != Role::Host {
                    return Err(ProtocolError::Forbidden);
                }
                self.decline(&participant_id)
            }
            ClientMessage::Council(command) => {
                let Some(council) = self.council.as_mut() else {
                    return Err(ProtocolError::UnknownType("council message outside a council room".into()));
                };
                let now = self.settings.clock.now();
                let actions = council.command(&id, self.participants[i].role, command, now)?;
                self.council_actions(actions).await;
                Ok(())
            }
        }
    }

    /// Carries out what the council part decided: jobs to store, state broadcasts and forced mutes.
    /// A forced mute is told to its participant (`force_mute`) and, as a `mute`, to everyone else.
    async fn council_actions(&mut self, actions: Vec<council::Action>) {
        // Jobs first, as decided (the minutes' order, and before a recording's archive job).
        let (stores, actions): (Vec<_>, Vec<_>) =
            actions.into_iter().partition(|a| matches!(a, council::Action::Store(_)));
        self.apply_council_actions(stores).await;
        // Gates and mutes first, then the public side, then `council.state`: whoever reads the
        // state (the chair's "suspended", "ended") finds the public page already saying so.
        let (states, others): (Vec<_>, Vec<_>) =
            actions.into_iter().partition(|a| matches!(a, council::Action::State(_)));
        self.apply_council_actions(others).await;
        // Whatever changed (floor, item, chair present, suspension, end) changes what the public sees.
        let finished = match (self.on_air.as_mut(), self.council.as_ref()) {
            (Some(on_air), Some(council)) => on_air.sync(&self.sfu, council, self.settings.clock.now()).await,
            _ => Vec::new(),
        };
        self.archive(finished);
        self.apply_council_actions(states).await;
    }

    /// Queues the archiving of a recording the public side stopped.
    fn archive(&self, finished: impl IntoIterator<Item = Finished>) {
        for finished in finished {
            if self.persist(archive_recording(finished)).is_err() {
                tracing::error!("persistence queue full: a recording was not archived");
            }
        }
    }

    async fn apply_council_actions(&mut self, actions: Vec<council::Action>) {
        for action in actions {
            match action {
                // A full queue is already logged by the persister; the meeting goes on.
                council::Action::Store(job) => {
                    let _ = self.persist(council_job(job, self.settings.clock.now()));
                }
                council::Action::State(state) => self.broadcast(&ServerMessage::CouncilState(state), None),
                council::Action::GateMicrophone { participant, enabled } => {
                    let source = sportello_sfu::TrackSource::Microphone;
                    if let Err(e) = self.sfu.set_forwarding(self.id.clone(), participant.clone(), source, enabled).await
                    {
                        tracing::warn!(%participant, error = %e, "microphone gate not applied");
                    }
                }
                council::Action::ForceMute(id) => {
                    let Some(i) = self.index(&id) else { continue };
                    let source = sportello_sfu::TrackSource::Microphone;
                    self.send_to(i, &ServerMessage::ForceMute { source });
                    let Some(i) = self.index(&id) else { continue };
                    if self.participants[i].muted.microphone != Some(true) {
                        self.participants[i].muted.set(source, true);
                        let message = ServerMessage::Mute { participant_id: id.to_string(), source, muted: true };
                        self.broadcast(&message, Some(&id));
                    }
                }
            }
        }
    }

    /// Validates and queues a chat message for storage; it is relayed once stored
    /// ([`Control::ChatStored`]), so everyone sees the id the history has.
    fn chat(&mut self, i: usize, text: &str) -> Result<(), ProtocolError> {
        let body = protocol::chat_text(text)?;
        if !self.participants[i].chat_budget.take(std::time::Instant::now()) {
            return Err(ProtocolError::ChatTooFast);
        }
        let p = &self.participants[i];
        let Some(conn) = p.conn.as_ref().map(|c| c.id) else { return Ok(()) };
        let now = self.settings.clock.now();
        let retention = i64::try_from(self.settings.retention.as_secs()).unwrap_or(i64::MAX);
        let chat = NewChat {
            room: self.id.to_string(),
            appointment_id: self.appointment.clone(),
            sender: p.id.to_string(),
            sender_name: p.name.clone(),
            body,
            delete_after: now.saturating_add(retention),
        };
        let job = store_chat(self.id.clone(), p.id.clone(), conn, chat, now);
        self.persist(job).map_err(|_| ProtocolError::Internal("persistence queue full".into()))
    }

    async fn publish_offer(
        &mut self,
        i: usize,
        pc: PcKind,
        sdp: String,
        tracks: Vec<PublishedMid>,
    ) -> Result<(), ProtocolError> {
        if self.participants[i].role == Role::Viewer {
            return Err(ProtocolError::Forbidden);
        }
        if pc != PcKind::Publish {
            return Err(ProtocolError::WrongState("the browser offers only on the publish connection"));
        }
        let id = self.participants[i].id.clone();
        let answer = self.sfu.publish_offer(self.id.clone(), id.clone(), sdp, tracks).await?;
        if let Some(i) = self.index(&id) {
            self.send_to(i, &ServerMessage::Answer { pc: PcKind::Publish, sdp: answer });
        }
        Ok(())
    }

    async fn add_candidate(&mut self, i: usize, pc: PcKind, candidate: IceCandidate) -> Result<(), ProtocolError> {
        // `""` marks the end of candidates: nothing to do (the SFU is ICE-lite).
        if candidate.candidate.trim().is_empty() {
            return Ok(());
        }
        if pc == PcKind::Publish && self.participants[i].role == Role::Viewer {
            return Err(ProtocolError::Forbidden);
        }
        if !looks_like_candidate(&candidate.candidate) {
            return Err(ProtocolError::InvalidCandidate(candidate.candidate.chars().take(80).collect()));
        }
        let id = self.participants[i].id.clone();
        Ok(self.sfu.add_candidate(self.id.clone(), id, pc, candidate).await?)
    }

    fn on_sfu_event(&mut self, event: SfuEvent) {
        match event {
            SfuEvent::TrackPublished { track, .. } => {
                let Some(i) = self.index(&track.participant) else { return };
                // Already announced: media resumed after a reconnection of the publisher.
                if self.participants[i].tracks.iter().any(|t| t.id == track.id) {
                    return;
                }
                tracing::info!(track = %track.id, "track published");
                self.participants[i].tracks.push(track.clone());
                let publisher = self.participants[i].id.clone();
                self.broadcast(&ServerMessage::TrackPublished { track }, Some(&publisher));
            }
            SfuEvent::TrackUnpublished { track, .. } => {
                let Some(i) = self.index(&track.participant) else { return };
                let before = self.participants[i].tracks.len();
                self.participants[i].tracks.retain(|t| t.id != track.id);
                if self.participants[i].tracks.len() == before {
                    return;
                }
                tracing::info!(track = %track.id, "track unpublished");
                let publisher = self.participants[i].id.clone();
                self.broadcast(&ServerMessage::TrackUnpublished { track }, Some(&publisher));
            }
            SfuEvent::SubscribeOffer { participant, sdp, tracks, .. } => self.deliver_offer(&participant, sdp, tracks),
            SfuEvent::LocalCandidate { participant, pc, candidate, .. } => {
                if let Some(i) = self.index(&participant) {
                    self.send_to(i, &ServerMessage::Candidate { pc, candidate });
                }
            }
            SfuEvent::ActiveSpeaker { participant, .. } => {
                self.active_speaker = participant.map(|p| p.to_string());
                let message = ServerMessage::ActiveSpeaker { participant_id: self.active_speaker.clone() };
                self.broadcast(&message, None);
            }
            SfuEvent::PeerState { participant, pc, state, .. } => match state {
                // A failed peer connection is the browser's to repair: it rejoins.
                PeerState::Failed => tracing::warn!(participant = %participant, %pc, "peer connection failed"),
                _ => tracing::debug!(participant = %participant, %pc, ?state, "peer connection state"),
            },
        }
    }

    fn deliver_offer(&mut self, participant: &str, sdp: String, tracks: Vec<SubscribedTrack>) {
        let Some(i) = self.index(participant) else { return };
        if self.participants[i].conn.is_none() {
            // Away in the grace period: its re-join starts a fresh SFU session with a new offer.
            tracing::debug!(participant, "subscribe offer dropped: participant away");
            return;
        }
        self.participants[i].subscribe_offer_pending = true;
        self.send_to(i, &ServerMessage::Offer { pc: PcKind::Subscribe, sdp, tracks });
    }

    /// The websocket is gone (or was cut off): keep the participant for the grace period.
    fn detach(&mut self, i: usize) {
        let p = &mut self.participants[i];
        p.conn = None;
        p.generation += 1;
        p.subscribe_offer_pending = false;
        let (participant, generation) = (p.id.clone(), p.generation);
        let control = self.control.clone();
        let grace = self.settings.reconnect_grace;
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            // The room may be gone already; then there is nothing left to remove.
            let _ = control.send(Control::GraceOver { participant, generation });
        });
    }

    /// Removes a participant for good: the others are told, then the SFU releases its media.
    async fn remove(&mut self, i: usize) {
        let p = self.participants.remove(i);
        if p.held {
            let _ = self.persist(admission(self.id.clone(), p.id.clone(), None));
        }
        self.broadcast(&ServerMessage::ParticipantLeft { participant_id: p.id.to_string() }, None);
        let now = self.settings.clock.now();
        if let Some(actions) = self.council.as_mut().map(|c| c.left(&p.id, now)) {
            self.council_actions(actions).await;
        }
        for track in p.tracks {
            self.broadcast(&ServerMessage::TrackUnpublished { track }, None);
        }
        if let Err(e) = self.sfu.leave(self.id.clone(), p.id.clone()).await {
            tracing::warn!(participant = %p.id, error = %e, "SFU leave failed");
        }
        self.publish_view();
        if self.participants.is_empty() && std::mem::take(&mut self.met) {
            let now = self.settings.clock.now();
            if let Some(appointment) = self.appointment.clone() {
                let _ = self.persist(room_ended(appointment, now));
            }
            if let Some(walkin) = self.walkin.clone() {
                let _ = self.persist(walkin_ended(walkin, now));
            }
        }
    }

    fn send_error(&mut self, i: usize, error: &ProtocolError) {
        let sent = match &self.participants[i].conn {
            Some(conn) => conn.send_error(error),
            None => return,
        };
        if sent.is_err() {
            self.detach(i);
        }
    }

    fn send_to(&mut self, i: usize, message: &ServerMessage) {
        let sent = match &self.participants[i].conn {
            Some(conn) => conn.send(message),
            None => return,
        };
        if sent.is_err() {
            self.detach(i);
        }
    }

    /// Sends to every connected participant but `except`. Serialized once.
    fn broadcast(&mut self, message: &ServerMessage, except: Option<&ParticipantId>) {
        let text = SharedText::from(message.to_json());
        let mut gone = Vec::new();
        for (i, p) in self.participants.iter().enumerate() {
            if except.is_some_and(|e| *e == p.id) {
                continue;
            }
            if let Some(conn) = &p.conn
                && conn.push(Outgoing::Text(text.clone())).is_err()
            {
                gone.push(i);
            }
        }
        for i in gone {
            self.detach(i);
        }
    }
}

// --- what rooms queue for the persistence task ---------------------------------------------------

/// `job`, fenced with the room's ownership epoch when it has one.
fn fence(job: Job<Control>, room: &RoomId, epoch: Option<i64>) -> Job<Control> {
    match epoch {
        Some(epoch) => job.fenced(room.clone(), epoch),
        None => job,
    }
}

impl Room {
    /// Queues `job` for the persistence task, fenced with this room's ownership.
    fn persist(&self, job: Job<Control>) -> Result<(), crate::persist::Busy> {
        self.settings.persist.submit(fence(job, &self.id, self.epoch))
    }
}

/// Stores a chat message, then hands it back to the room to broadcast (so everyone sees the stored id).
fn store_chat(room: RoomId, sender: ParticipantId, conn: ConnId, chat: NewChat, now: i64) -> Job<Control> {
    Job::new("chat", move |store| async move {
        let control = match store.add_chat(&chat, now).await {
            Ok(stored) => Control::ChatStored(ChatInfo {
                id: stored.id,
                participant_id: stored.sender,
                name: stored.sender_name,
                text: stored.body,
                at: stored.created_at,
            }),
            Err(error) => {
                tracing::error!(room = %room, %error, "chat message not stored");
                Control::ChatFailed { participant: sender, conn }
            }
        };
        Some((room, control))
    })
}

/// The citizen of an appointment was admitted.
fn citizen_joined(appointment: String, now: i64) -> Job<Control> {
    Job::new("citizen joined", move |store| async move {
        if let Err(error) = store.mark_citizen_joined(&appointment, now).await {
            tracing::error!(%appointment, %error, "cannot record that the citizen joined");
        }
        None
    })
}

/// Someone began waiting in an appointment's lobby (`appointment.citizen_waiting`); `citizen`:
/// with the appointment's own link (attendance), not a guest's.
fn citizen_waiting(appointment: String, now: i64, citizen: bool) -> Job<Control> {
    Job::new("citizen waiting", move |store| async move {
        // Attendance: the first time the citizen was in the waiting room.
        if citizen && let Err(error) = store.mark_citizen_arrived(&appointment, now).await {
            tracing::error!(%appointment, %error, "cannot record that the citizen arrived");
        }
        let kind = sportello_store::WebhookEventType::AppointmentCitizenWaiting;
        match store.emit_appointment_event(&appointment, kind, now).await {
            Ok(()) | Err(StoreError::NotFound) => {}
            Err(error) => tracing::error!(%appointment, %error, "webhook event not stored"),
        }
        None
    })
}

/// A held participant entered (`Some(now)`) or left (`None`): what a restart must remember of the
/// lobby's decisions. Queued after the room acted, so the room never waits for the database; a
/// failure only means that person waits again after a restart.
fn admission(room: RoomId, participant: ParticipantId, entered: Option<i64>) -> Job<Control> {
    Job::new("admission", move |store| async move {
        let done = match entered {
            Some(now) => store.record_admission(&room, &participant, now).await,
            None => store.forget_admission(&room, &participant).await,
        };
        if let Err(error) = done {
            tracing::error!(%room, %participant, %error, "cannot store the admission");
        }
        None
    })
}

/// The last participant left an appointment room where the official and the citizen had met.
fn room_ended(appointment: String, now: i64) -> Job<Control> {
    Job::new("room ended", move |store| async move {
        match store.set_status(&appointment, &[Status::Confirmed], Status::Completed, "system", "room ended", now).await
        {
            Ok(_) => tracing::info!(%appointment, "appointment completed: its room ended"),
            // Already completed, cancelled meanwhile…: nothing to do.
            Err(StoreError::InvalidTransition { .. } | StoreError::NotFound) => {}
            Err(error) => tracing::error!(%appointment, %error, "cannot complete the appointment"),
        }
        // After the status: whoever sees the meeting's end also sees the appointment completed.
        if let Err(error) = store.mark_meeting_ended(&appointment, now).await {
            tracing::error!(%appointment, %error, "cannot record the end of the meeting");
        }
        None
    })
}

/// The last participant left a walk-in's room after the citizen and an official met: the walk-in
/// is done (unless an official closed it already).
fn walkin_ended(walkin: String, now: i64) -> Job<Control> {
    Job::new("walk-in ended", move |store| async move {
        use sportello_store::{WalkinChange, WalkinState};
        let from = [WalkinState::Serving, WalkinState::Transferring];
        let change = WalkinChange { ended: true, ..Default::default() };
        match store
            .change_walkin(&walkin, &from, WalkinState::Done, &|_| true, &change, "system", "done", "room ended", now)
            .await
        {
            Ok(_) => tracing::info!(%walkin, "walk-in done: its room ended"),
            Err(StoreError::InvalidWalkin(_) | StoreError::NotFound) => {}
            Err(error) => tracing::error!(%walkin, %error, "cannot close the walk-in"),
        }
        None
    })
}

/// A council room's log, votes and ballots; a loaded session comes back as [`Control::Council`].
fn council_job(job: CouncilJob, now: i64) -> Job<Control> {
    Job::new("council", move |store| async move {
        let (room, loaded) = council::run_job(&store, job, now).await?;
        Some((room, Control::Council(loaded)))
    })
}

/// Remuxes, hashes and archives a council recording whose files are closed.
fn archive_recording(finished: Finished) -> Job<Control> {
    Job::new("recording", move |store| async move {
        recording::archive(&store, finished).await;
        None
    })
}

/// A cheap sanity check before bothering the SFU: `candidate:<foundation> <component> <transport>
/// <priority> <address> <port> typ <type> ...` (RFC 8839), with or without the `a=` prefix.
fn looks_like_candidate(text: &str) -> bool {
    let text = text.strip_prefix("a=").unwrap_or(text);
    let fields: Vec<&str> = text.split_ascii_whitespace().collect();
    text.len() <= 1024
        && fields.len() >= 8
        && fields[0].strip_prefix("candidate:").is_some_and(|f| !f.is_empty())
        && fields[1].parse::<u16>().is_ok()
        && fields[3].parse::<u32>().is_ok()
        && fields[5].parse::<u16>().is_ok()
        && fields[6] == "typ"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidate_sanity_check() {
        assert!(looks_like_candidate(
            "candidate:842163049 1 udp 1677729535 192.0.2.1 46154 typ srflx raddr 0.0.0.0 rport 0"
        ));
        assert!(looks_like_candidate("a=candidate:1 1 UDP 2130706431 10.0.0.1 3478 typ host"));
        assert!(looks_like_candidate("candidate:1 1 udp 2130706431 abcd.local 3478 typ host"));
        for bad in [
            "candidate:",
            "hello",
            "candidate:1 1 udp x 1.2.3.4 5 typ host",
            "candidate:1 1 udp 1 1.2.3.4 99999 typ host",
            "candidate:1 1 udp 1 1.2.3.4 5 type host",
        ] {
            assert!(!looks_like_candidate(bad), "{bad}");
        }
    }

    #[tokio::test]
    async fn a_full_queue_cuts_the_connection_off() {
        let (conn, mut outbox) = Connection::new(1, Lang::It, 2);
        assert_eq!(conn.close(1000, ""), Ok(()));
        assert_eq!(conn.close(1000, ""), Ok(()));
        assert_eq!(conn.close(1000, ""), Err(Gone));
        // The writer is told at once, even though it has not waited yet.
        tokio::time::timeout(Duration::from_secs(1), outbox.kill.notified()).await.unwrap();
        assert_eq!(outbox.rx.recv().await, Some(Outgoing::Close(1000, "")));
        drop(outbox);
        assert_eq!(conn.close(1000, ""), Err(Gone));
    }

    #[tokio::test]
    async fn fatal_errors_are_followed_by_their_close_code() {
        let (conn, mut outbox) = Connection::new(1, Lang::En, 8);
        conn.send_error(&ProtocolError::RoomFull).unwrap();
        conn.send_error(&ProtocolError::Forbidden).unwrap();
        let Some(Outgoing::Text(text)) = outbox.rx.recv().await else { panic!("no error frame") };
        assert_eq!(text.as_str(), r#"{"v":1,"type":"error","code":"room_full","message":"The room is full."}"#);
        assert_eq!(outbox.rx.recv().await, Some(Outgoing::Close(4029, "room_full")));
        assert!(matches!(outbox.rx.recv().await, Some(Outgoing::Text(t)) if t.as_str().contains("forbidden")));
    }
}
