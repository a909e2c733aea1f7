//! One signaling session in front of a room, over any message transport: the server adapts its
//! websocket library to [`Inbound`]/[`Outbound`] frames and calls [`run`].
//!
//! A reader (frames in → parse → room) and a writer (outgoing queue → frames out, pings) run in one
//! task; whichever ends first ends the session. The session enforces the transport rules of
//! `docs/signaling.md` (size limit, text only, join first and within 10 s) so that the room only
//! ever sees well-formed messages from authenticated participants.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{Sink, SinkExt, Stream, StreamExt};
use sportello_backoffice::token::{Role, TokenKey};
use sportello_cluster::{Cluster, Frame, Health, Placement, RelaySink};
use sportello_store::Store;
use tokio::sync::watch;
use tokio::time::{Instant, timeout, timeout_at};

use crate::error::{Lang, ProtocolError};
use crate::grants::Revoked;
use crate::protocol::{self, ClientMessage, MAX_FRAME, ServerMessage};
use crate::room::{ConnId, Connection, Gone, Outbox, Outgoing, SharedText};
use crate::rooms::{RoomHandle, Rooms};

pub const JOIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Often enough that a proxy may cut a websocket silent for 10 s (a balancer's read timeout that
/// also bounds its wait for a node that accepts connections but answers nothing: a frozen one).
const PING_INTERVAL: Duration = Duration::from_secs(5);
/// Browsers answer pings; a peer silent this long is gone.
const IDLE_TIMEOUT: Duration = Duration::from_secs(45);
/// A write that takes longer means the peer does not read: give up on it.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait for the peer's answer to our close frame.
const CLOSE_LINGER: Duration = Duration::from_secs(2);
/// Frames queued for one connection before it counts as too slow and is closed.
const OUTBOX_CAPACITY: usize = 256;

/// Close codes that are not protocol errors (see "Errors" in `docs/signaling.md`).
pub const CLOSE_NORMAL: u16 = 1000;
pub const CLOSE_GOING_AWAY: u16 = 1001;
pub const CLOSE_POLICY: u16 = 1008;
/// "Service restart": this node stopped serving the room (fenced, or the relay to its owner
/// ended); the client reconnects and its join is placed again.
pub const CLOSE_RESTART: u16 = 1012;

/// Sessions running in this process (websockets and sessions relayed here): a node's load.
static OPEN: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

/// How many sessions run here now (a node reports it as its load, `docs/cluster.md`).
pub fn open_sessions() -> i64 {
    OPEN.load(std::sync::atomic::Ordering::Relaxed)
}

/// Counts one running session.
struct Open;

impl Open {
    fn new() -> Open {
        OPEN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Open
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        OPEN.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Connection ids, unique in the process (websockets and sessions relayed from other nodes).
pub fn next_conn_id() -> ConnId {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// A frame from the peer, as the transport read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    Text(String),
    Binary,
    /// Pings (answered by the transport) and pongs: only proof of liveness.
    Ping,
    Pong,
    /// The peer's close; the transport answers it and then ends the stream.
    Close,
    /// The transport refused a frame above its read limit (this many bytes).
    TooLarge(usize),
}

/// A frame for the peer.
#[derive(Debug, Clone, PartialEq)]
pub enum Outbound {
    Text(SharedText),
    Close(u16, &'static str),
    Ping,
}

/// What a session needs from the server.
#[derive(Clone)]
pub struct Context {
    pub rooms: Rooms,
    pub tokens: Arc<TokenKey>,
    pub store: Store,
    /// Changes (or closes) when the server shuts down: the session closes with 1001.
    pub shutdown: watch::Receiver<bool>,
    /// This node among several (`docs/cluster.md`): a join is placed first — here, or relayed
    /// to the room's owner; a fenced node closes its sessions. `None`: the one node.
    pub cluster: Option<Cluster>,
}

/// Runs one session to its end. `expected_room`: when set, the token must be for this room.
/// `on_joined` is called when the peer is in a room (the per-address count of unjoined sockets);
/// it lives as long as the session (what it holds is released when the session ends).
/// A read error (`Err`) means the transport is dead.
pub async fn run<S, K, E>(
    stream: S,
    sink: K,
    context: Context,
    id: ConnId,
    lang: Lang,
    expected_room: Option<String>,
    on_joined: impl FnMut() + Send,
) where
    S: Stream<Item = Result<Inbound, E>> + Unpin,
    K: Sink<Outbound> + Unpin,
    E: std::fmt::Display,
{
    tracing::debug!("session opened");
    let _open = Open::new();
    let (conn, outbox) = Connection::new(id, lang, OUTBOX_CAPACITY);
    let mut session = Session {
        conn,
        context: context.clone(),
        expected_room,
        lang,
        on_joined: Box::new(on_joined),
        joined: None,
        relayed: None,
        left: false,
        closing: false,
    };
    let health = context.cluster.as_ref().map(|c| (c.watch_health(), c.watch_draining()));
    tokio::select! {
        () = write(sink, outbox, context.shutdown.clone(), health) => {}
        () = session.read(stream) => {}
    }
    if let (Some(room), false) = (&session.joined, session.left) {
        room.disconnected().await;
    }
    if let Some(relayed) = session.relayed.take() {
        // The owner's session ends too (its room starts the reconnection grace).
        let _ = relayed.to_owner.send(Frame::Close(CLOSE_GOING_AWAY)).await;
        relayed.from_owner.abort();
    }
    tracing::debug!("session closed");
}

struct Session<'a> {
    conn: Connection,
    context: Context,
    expected_room: Option<String>,
    lang: Lang,
    on_joined: Box<dyn FnMut() + Send + 'a>,
    joined: Option<RoomHandle>,
    /// The room runs on another node: frames go there and back (`cluster::relay`).
    relayed: Option<Relayed>,
    left: bool,
    /// A close frame is queued: frames are no longer processed.
    closing: bool,
}

/// A session relayed to the room's owner: where its frames go, and the task bringing the owner's.
struct Relayed {
    to_owner: RelaySink,
    from_owner: tokio::task::JoinHandle<()>,
}

impl Session<'_> {
    /// Returns when the peer is gone. After queuing a close it only drains the transport, waiting
    /// for the peer's closing handshake (or the writer's linger) to end the session.
    async fn read<S, E>(&mut self, mut stream: S)
    where
        S: Stream<Item = Result<Inbound, E>> + Unpin,
        E: std::fmt::Display,
    {
        self.read_frames(&mut stream).await;
        if self.closing {
            loop {
                match stream.next().await {
                    Some(Ok(Inbound::TooLarge(_))) | Some(Err(_)) => {
                        // Unreadable (e.g. after an oversized frame): let the writer finish alone.
                        std::future::pending::<()>().await
                    }
                    Some(Ok(_)) => continue,
                    None => return,
                }
            }
        }
    }

    async fn read_frames<S, E>(&mut self, stream: &mut S)
    where
        S: Stream<Item = Result<Inbound, E>> + Unpin,
        E: std::fmt::Display,
    {
        let join_deadline = Instant::now() + JOIN_TIMEOUT;
        loop {
            let joined = self.joined.is_some() || self.relayed.is_some();
            let next = match joined {
                false => timeout_at(join_deadline, stream.next()).await,
                true => timeout(IDLE_TIMEOUT, stream.next()).await,
            };
            let frame = match next {
                Err(_) if !joined => {
                    tracing::info!("no join within {JOIN_TIMEOUT:?}");
                    return self.start_closing(self.conn.close(CLOSE_POLICY, "join timeout"));
                }
                Err(_) => {
                    tracing::info!("peer silent for {IDLE_TIMEOUT:?}");
                    return self.start_closing(self.conn.close(CLOSE_GOING_AWAY, "idle"));
                }
                Ok(None) => return,
                Ok(Some(Err(error))) => {
                    tracing::debug!(%error, "transport read failed");
                    return;
                }
                Ok(Some(Ok(frame))) => frame,
            };
            let keep_going = match frame {
                Inbound::TooLarge(size) => {
                    return self.start_closing(self.conn.send_error(&ProtocolError::TooLarge(size)));
                }
                Inbound::Text(text) if text.len() > MAX_FRAME => {
                    return self.start_closing(self.conn.send_error(&ProtocolError::TooLarge(text.len())));
                }
                Inbound::Text(text) => self.on_text(&text).await,
                Inbound::Binary => self.error(ProtocolError::InvalidJson("binary frame".into())),
                // Pongs only prove liveness (the timeout above); pings are answered by the transport.
                Inbound::Ping | Inbound::Pong => true,
                // Keep reading: the transport answers the close and then ends the stream.
                Inbound::Close => true,
            };
            if !keep_going {
                return self.start_closing(Ok(()));
            }
        }
    }

    /// A close was queued (if the queue was full, the connection is being cut off anyway).
    fn start_closing(&mut self, _queued: Result<(), Gone>) {
        self.closing = true;
    }

    /// Sends a non-fatal or fatal error; `false` when the session must stop reading.
    fn error(&self, error: ProtocolError) -> bool {
        let fatal = error.is_fatal();
        self.conn.send_error(&error).is_ok() && !fatal
    }

    async fn on_text(&mut self, text: &str) -> bool {
        if let Some(relayed) = &self.relayed {
            // The owner's session parses and answers it.
            return relayed.to_owner.send(Frame::Text(text.to_owned())).await.is_ok();
        }
        let message = match protocol::parse(text) {
            Ok(message) => message,
            Err(error) => return self.error(error),
        };
        match (message, &self.joined) {
            // Answered here, joined or not: it proves this session's process runs.
            (ClientMessage::Ping, _) => self.conn.send(&ServerMessage::Pong).is_ok(),
            (ClientMessage::Join { token }, None) => self.join(&token, text).await,
            (ClientMessage::Join { .. }, Some(_)) => self.error(ProtocolError::AlreadyJoined),
            (_, None) => self.error(ProtocolError::NotJoined),
            (ClientMessage::Leave, Some(room)) => {
                self.left = true;
                let _ = room.send(ClientMessage::Leave).await;
                let _ = self.conn.close(CLOSE_NORMAL, "");
                false
            }
            (message, Some(room)) => match room.send(message).await {
                Ok(()) => true,
                Err(error) => self.error(error),
            },
        }
    }

    async fn join(&mut self, token: &str, text: &str) -> bool {
        let claims = match self.context.tokens.verify(token, self.expected_room.as_deref()) {
            Ok(claims) => claims,
            Err(error) => return self.error(error.into()),
        };
        let span = tracing::Span::current();
        span.record("room", claims.room.as_str());
        span.record("participant", claims.sub.as_str());
        if crate::live::is_http_room(&claims.room) {
            // The program feed and the chamber encoder's room belong to WHEP/WHIP (an encoder
            // token is a join token for `chamber-<id>`): not rooms one enters by websocket.
            return self.error(ProtocolError::Forbidden);
        }
        // Several nodes: the room runs where it is owned; a join elsewhere is relayed there.
        let mut epoch = None;
        if let Some(cluster) = self.context.cluster.clone() {
            match cluster.place(&claims.room).await {
                Ok(Placement::Local { epoch: e }) => epoch = Some(e),
                Ok(Placement::Remote { node }) => return self.relay(&cluster, &node, text).await,
                // Not fatal: the client tries again (by then the owner is placed or judged dead).
                Err(error) => return self.error(ProtocolError::Internal(format!("placing the room: {error}"))),
            }
        }
        if let Err(revoked) = crate::grants::check(&self.context.store, &claims).await {
            tracing::info!(%revoked, "room token refused");
            return self.error(match revoked {
                Revoked::Cancelled => ProtocolError::AppointmentCancelled,
                Revoked::Closed => ProtocolError::AppointmentClosed,
                Revoked::AppointmentNotFound => ProtocolError::AppointmentNotFound,
                Revoked::Moved | Revoked::Account | Revoked::Membership | Revoked::Walkin => ProtocolError::LinkRevoked,
                Revoked::Store(error) => ProtocolError::Internal(format!("checking the token: {error}")),
            });
        }
        // Someone a host let in before the server restarted does not wait again (`room_admissions`).
        let admitted = claims.wait
            && claims.role != Role::Host
            && match self.context.store.is_admitted(&claims.room, &claims.sub).await {
                Ok(admitted) => admitted,
                Err(error) => {
                    tracing::warn!(%error, "cannot read the admission: the lobby decides");
                    false
                }
            };
        match self.context.rooms.join(claims, self.conn.clone(), admitted, epoch).await {
            Ok(room) => {
                self.joined = Some(room);
                (self.on_joined)();
                true
            }
            // room_full is fatal; internal is not (the client may try again).
            Err(error) => self.error(error),
        }
    }

    /// The room runs on `owner`: relays this session there, its `join` frame first.
    async fn relay(&mut self, cluster: &Cluster, owner: &str, join: &str) -> bool {
        let lang = match self.lang {
            Lang::It => "it",
            Lang::En => "en",
        };
        match cluster.open_relay(owner, lang, self.expected_room.clone(), join.to_owned()).await {
            Ok(link) => {
                tracing::info!(owner, "session relayed to the room's owner");
                let (to_owner, frames) = link.split();
                let from_owner =
                    tokio::spawn(relay_to_browser(cluster.clone(), owner.to_owned(), frames, self.conn.clone()));
                self.relayed = Some(Relayed { to_owner, from_owner });
                (self.on_joined)();
                true
            }
            Err(error) => self.error(ProtocolError::Internal(format!("relaying to node {owner}: {error}"))),
        }
    }
}

/// Drains the outgoing queue into the transport and pings. Ends after a close frame, when cut off
/// (queue overflow), on server shutdown, or when the transport fails.
async fn write<K: Sink<Outbound> + Unpin>(
    mut sink: K,
    mut outbox: Outbox,
    mut shutdown: watch::Receiver<bool>,
    mut health: Option<(watch::Receiver<Health>, watch::Receiver<bool>)>,
) {
    let mut ping = tokio::time::interval_at(Instant::now() + PING_INTERVAL, PING_INTERVAL);
    loop {
        let moving = async {
            match health.as_mut() {
                // `is_ok()` at once: the watch's read guard must not live across an await.
                Some((health, draining)) => tokio::select! {
                    true = async { health.wait_for(|h| *h == Health::Fenced).await.is_ok() } => "node fenced",
                    true = async { draining.wait_for(|d| *d).await.is_ok() } => "node draining",
                    // The node left the cluster: the server's shutdown closes the session.
                    else => std::future::pending().await,
                },
                None => std::future::pending().await,
            }
        };
        let frame = tokio::select! {
            // This node gave its rooms up: the client reconnects, to the room's next owner.
            reason = moving => Outbound::Close(CLOSE_RESTART, reason),
            () = outbox.kill.notified() => {
                let _ = timeout(Duration::from_secs(1), sink.send(Outbound::Close(CLOSE_POLICY, "too slow"))).await;
                return;
            }
            // Fires on shutdown and when the server is dropped.
            _ = shutdown.changed() => Outbound::Close(CLOSE_GOING_AWAY, "server shutting down"),
            out = outbox.rx.recv() => match out {
                Some(Outgoing::Text(text)) => Outbound::Text(text),
                Some(Outgoing::Close(code, reason)) => Outbound::Close(code, reason),
                None => return,
            },
            _ = ping.tick() => Outbound::Ping,
        };
        let closing = matches!(frame, Outbound::Close(..));
        tokio::select! {
            sent = timeout(WRITE_TIMEOUT, sink.send(frame)) => {
                if !matches!(sent, Ok(Ok(()))) {
                    tracing::debug!("transport write failed or timed out");
                    return;
                }
            }
            () = outbox.kill.notified() => return,
        }
        if closing {
            // Give the peer a moment to answer the close (the reader ends the session then), so
            // that the transport is not torn down under frames it has not read yet.
            tokio::time::sleep(CLOSE_LINGER).await;
            return;
        }
    }
}

/// The relaying end: the owner's frames to the browser's connection, until the owner's session
/// closes, the browser is gone, or the owner's node is judged dead.
async fn relay_to_browser(
    cluster: Cluster,
    owner: String,
    mut frames: impl Stream<Item = Frame> + Unpin,
    conn: Connection,
) {
    let mut check = tokio::time::interval(sportello_cluster::relay::PEER_CHECK);
    loop {
        tokio::select! {
            frame = frames.next() => match frame {
                Some(Frame::Text(text)) => {
                    if conn.push(Outgoing::Text(SharedText::from(text))).is_err() {
                        return;
                    }
                }
                Some(Frame::Close(code)) => {
                    let _ = conn.close(code, "");
                    return;
                }
                Some(Frame::Ping) => {}
                None => {
                    let _ = conn.close(CLOSE_RESTART, "relay lost");
                    return;
                }
            },
            _ = check.tick() => {
                if cluster.is_dead(&owner) {
                    tracing::warn!(owner, "the room's owner is dead: the client reconnects");
                    let _ = conn.close(CLOSE_RESTART, "room moving");
                    return;
                }
            }
        }
    }
}
