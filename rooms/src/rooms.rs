//! The registry of live rooms: creates a room's actor on its first join, forgets it when it is
//! empty, and routes the SFU's events to the room they belong to.
//!
//! The map sits behind a std `Mutex` held only for lookups and channel sends, never across an
//! `.await`. A join is queued to its room while the lock is held, and an empty room retires only
//! while holding the lock and seeing no queued input: so a join can never land in a room that has
//! just decided to disappear.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use sportello_sfu::{ParticipantId, RoomId, Sfu, SfuEvent};
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

use crate::error::ProtocolError;
use crate::persist::{Deliver, Gone};
use crate::protocol::{ClientMessage, DocumentInfo};
use crate::room::{Command, ConnId, Connection, Control, Room, RoomSettings, RoomView, WaitingInfo};
use sportello_backoffice::token::Claims;

/// Commands a session may have in flight towards its room; beyond that the session's reading
/// waits (its own backpressure, nobody else's).
const ROOM_COMMAND_QUEUE: usize = 64;

#[derive(Clone)]
pub struct Rooms {
    inner: Arc<Inner>,
}

/// A [`Rooms`] that does not keep the registry alive (held by the persistence task, which the
/// registry itself feeds).
#[derive(Clone)]
pub struct WeakRooms {
    inner: Weak<Inner>,
}

impl WeakRooms {
    pub fn upgrade(&self) -> Option<Rooms> {
        self.inner.upgrade().map(|inner| Rooms { inner })
    }
}

/// The persistence task answers rooms through the registry.
impl Deliver for WeakRooms {
    type Message = Control;

    fn deliver(&self, room: &RoomId, message: Control) -> Result<(), Gone> {
        self.upgrade().ok_or(Gone)?.deliver(room, message);
        Ok(())
    }
}

/// Why a lobby decision taken from outside the room failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LobbyError {
    #[error("the room is not open")]
    RoomNotOpen,
    #[error("nobody with this id is waiting")]
    NotWaiting,
    #[error("admission failed: {0}")]
    Failed(ProtocolError),
}

struct Inner {
    map: Mutex<HashMap<RoomId, Entry>>,
    sfu: Sfu,
    settings: Arc<RoomSettings>,
    next_actor: AtomicU64,
    /// This node among several: a retired room's ownership is released for the next claim.
    cluster: std::sync::OnceLock<sportello_cluster::Cluster>,
}

struct Entry {
    actor: u64,
    /// The ownership epoch the room's actor writes under (several nodes).
    epoch: Option<i64>,
    control: mpsc::UnboundedSender<Control>,
    commands: mpsc::Sender<Command>,
    view: Arc<Mutex<RoomView>>,
}

/// A joined session's way to its room.
#[derive(Debug, Clone)]
pub struct RoomHandle {
    pub room: RoomId,
    pub participant: ParticipantId,
    pub conn: ConnId,
    commands: mpsc::Sender<Command>,
}

impl RoomHandle {
    /// Forwards a client message in order; `Err` if the room is gone.
    pub async fn send(&self, message: ClientMessage) -> Result<(), ProtocolError> {
        let command = Command::Client { conn: self.conn, participant: self.participant.clone(), message };
        self.commands.send(command).await.map_err(|_| ProtocolError::Internal("room stopped".into()))
    }

    /// The websocket ended without `leave`: the room starts the grace period.
    pub async fn disconnected(&self) {
        let command = Command::Disconnected { conn: self.conn, participant: self.participant.clone() };
        let _ = self.commands.send(command).await;
    }
}

impl Rooms {
    pub fn new(sfu: Sfu, settings: RoomSettings) -> Rooms {
        Rooms {
            inner: Arc::new(Inner {
                map: Mutex::new(HashMap::new()),
                sfu,
                settings: Arc::new(settings),
                next_actor: AtomicU64::new(1),
                cluster: std::sync::OnceLock::new(),
            }),
        }
    }

    /// Joins this registry to a cluster: rooms that retire give their ownership back.
    pub fn attach_cluster(&self, cluster: sportello_cluster::Cluster) {
        let _ = self.inner.cluster.set(cluster);
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<RoomId, Entry>> {
        // A panic while holding this lock cannot leave the map half-updated (single inserts and
        // removes), so a poisoned lock is still usable.
        self.inner.map.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Joins the room named in `claims` (created on demand). On success the room has already
    /// queued `welcome` on `conn` (or `waiting`). `admitted`: the store says a host let this
    /// identity in and it has not left since, so it skips the lobby. `epoch`: the room's ownership
    /// as this node placed it (several nodes; `None` for the one node).
    pub async fn join(
        &self,
        claims: Claims,
        conn: Connection,
        admitted: bool,
        epoch: Option<i64>,
    ) -> Result<RoomHandle, ProtocolError> {
        let room: RoomId = claims.room.as_str().into();
        let participant: ParticipantId = claims.sub.as_str().into();
        let conn_id = conn.id;
        let (reply, answer) = oneshot::channel();
        let commands = {
            let mut map = self.lock();
            let mut join = Control::Join { claims, conn, admitted, reply };
            let mut attempt = 0;
            loop {
                if map.get(&room).is_some_and(|e| e.epoch != epoch) {
                    // An actor of an ownership this node lost and claimed again: its writes are
                    // refused; the new one's are not. It ends with its sessions.
                    tracing::warn!(room = %room, ?epoch, "room owned again under a new epoch: a new actor");
                    map.remove(&room);
                }
                let entry = map.entry(room.clone()).or_insert_with(|| self.spawn_room(room.clone(), epoch));
                match entry.control.send(join) {
                    Ok(()) => break entry.commands.clone(),
                    // The actor died (it only stops by retiring, which removes its entry first):
                    // replace it once.
                    Err(mpsc::error::SendError(returned)) if attempt == 0 => {
                        tracing::error!(room = %room, "room actor stopped unexpectedly; restarting it");
                        map.remove(&room);
                        join = returned;
                        attempt += 1;
                    }
                    Err(_) => return Err(ProtocolError::Internal("room actor stopped".into())),
                }
            }
        };
        answer.await.map_err(|_| ProtocolError::Internal("room stopped during join".into()))??;
        Ok(RoomHandle { room, participant, conn: conn_id, commands })
    }

    fn spawn_room(&self, id: RoomId, epoch: Option<i64>) -> Entry {
        let actor = self.inner.next_actor.fetch_add(1, Ordering::Relaxed);
        let (control_tx, control_rx) = mpsc::unbounded_channel();
        let (commands_tx, commands_rx) = mpsc::channel(ROOM_COMMAND_QUEUE);
        let view = Arc::new(Mutex::new(RoomView::default()));
        let room = Room::new(
            id.clone(),
            self.inner.sfu.clone(),
            self.inner.settings.clone(),
            control_tx.clone(),
            view.clone(),
            epoch,
        );
        let span = tracing::info_span!("room", room = %id);
        tokio::spawn(room.run(actor, self.clone(), control_rx, commands_rx).instrument(span));
        Entry { actor, epoch, control: control_tx, commands: commands_tx, view }
    }

    /// The media engine (program feeds, WHEP/WHIP need it outside any room actor).
    pub fn sfu(&self) -> &Sfu {
        &self.inner.sfu
    }

    pub fn downgrade(&self) -> WeakRooms {
        WeakRooms { inner: Arc::downgrade(&self.inner) }
    }

    /// Hands `control` to the room's actor if the room is open; dropped otherwise.
    pub fn deliver(&self, room: &str, control: Control) {
        if let Some(entry) = self.lock().get(room) {
            let _ = entry.control.send(control);
        }
    }

    fn view<T>(&self, room: &str, read: impl FnOnce(&RoomView) -> T) -> Option<T> {
        let view = self.lock().get(room).map(|e| e.view.clone())?;
        let view = view.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        Some(read(&view))
    }

    /// Who is waiting in `room`'s lobby, oldest first (empty when the room is not open).
    pub fn lobby(&self, room: &str) -> Vec<WaitingInfo> {
        self.view(room, |v| v.lobby.clone()).unwrap_or_default()
    }

    /// Identities inside a room of this node together with someone else (presence's "in a call").
    pub fn in_company(&self) -> std::collections::HashSet<String> {
        let views: Vec<_> = self.lock().values().map(|e| e.view.clone()).collect();
        let mut out = std::collections::HashSet::new();
        for view in views {
            let view = view.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if view.admitted.len() >= 2 {
                out.extend(view.admitted.iter().cloned());
            }
        }
        out
    }

    /// Whether `identity` is admitted in `room` now (in it, or within its reconnection grace).
    pub fn is_admitted(&self, room: &str, identity: &str) -> bool {
        self.view(room, |v| v.admitted.iter().any(|a| a == identity)).unwrap_or(false)
    }

    /// Admits a waiting participant, as a host in the room would (the officials' dashboard).
    pub async fn admit(&self, room: &str, participant_id: &str) -> Result<(), LobbyError> {
        self.decide(room, participant_id, true).await
    }

    /// Turns a waiting participant away (`declined`, then close 4013).
    pub async fn decline(&self, room: &str, participant_id: &str) -> Result<(), LobbyError> {
        self.decide(room, participant_id, false).await
    }

    async fn decide(&self, room: &str, participant_id: &str, admit: bool) -> Result<(), LobbyError> {
        let (reply, answer) = oneshot::channel();
        let participant = participant_id.to_owned();
        let control =
            if admit { Control::Admit { participant, reply } } else { Control::Decline { participant, reply } };
        {
            let map = self.lock();
            let entry = map.get(room).ok_or(LobbyError::RoomNotOpen)?;
            entry.control.send(control).map_err(|_| LobbyError::RoomNotOpen)?;
        }
        match answer.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(ProtocolError::NotWaiting)) => Err(LobbyError::NotWaiting),
            Ok(Err(error)) => Err(LobbyError::Failed(error)),
            Err(_) => Err(LobbyError::RoomNotOpen),
        }
    }

    /// Announces an uploaded document to everyone admitted in `room` (if it is open).
    pub fn announce_document(&self, room: &str, document: DocumentInfo) {
        self.deliver(room, Control::Document(document));
    }

    /// Called by an empty room: forgets it unless input is still queued for it (then it goes on).
    pub(crate) fn retire(&self, id: &RoomId, actor: u64, pending: &mpsc::UnboundedReceiver<Control>) -> bool {
        let mut map = self.lock();
        if !pending.is_empty() {
            return false;
        }
        if map.get(id).is_some_and(|e| e.actor == actor)
            && let Some(entry) = map.remove(id)
            && let (Some(epoch), Some(cluster)) = (entry.epoch, self.inner.cluster.get())
        {
            let (cluster, room) = (cluster.clone(), id.to_string());
            tokio::spawn(async move { cluster.release(&room, epoch).await });
        }
        true
    }

    /// Delivers one SFU event to its room; events for rooms that are gone are dropped.
    pub fn route(&self, event: SfuEvent) {
        let room = match &event {
            SfuEvent::TrackPublished { room, .. }
            | SfuEvent::TrackUnpublished { room, .. }
            | SfuEvent::SubscribeOffer { room, .. }
            | SfuEvent::LocalCandidate { room, .. }
            | SfuEvent::PeerState { room, .. }
            | SfuEvent::ActiveSpeaker { room, .. } => room.clone(),
        };
        let map = self.lock();
        match map.get(&room) {
            Some(entry) => {
                let _ = entry.control.send(Control::Sfu(event));
            }
            None => tracing::debug!(room = %room, ?event, "SFU event for a room that is gone"),
        }
    }

    /// Consumes the SFU's event stream until the SFU stops.
    pub async fn route_events(self, mut events: mpsc::UnboundedReceiver<SfuEvent>) {
        while let Some(event) = events.recv().await {
            self.route(event);
        }
        tracing::debug!("SFU event stream ended");
    }

    /// Rooms currently open (tests, metrics).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
