//! One websocket session: `GET /ws?room=R&lang=it|en`.
//!
//! A reader (frames in → parse → room) and a writer (outgoing queue → frames out, pings) run in one
//! task; whichever ends first ends the session. The session enforces the transport rules of
//! `docs/signaling.md` (size limit, text only, join first and within 10 s) so that the room only
//! ever sees well-formed messages from authenticated participants.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::sync::watch;
use tokio::time::{Instant, timeout, timeout_at};
use tracing::Instrument;

use crate::client_addr::{ClientIp, Ticket};
use crate::state::AppState;
use sportello_rooms::error::{Lang, ProtocolError};
use sportello_rooms::grants::Revoked;
use sportello_rooms::protocol::{self, ClientMessage, MAX_FRAME};
use sportello_rooms::room::{Connection, Outbox, Outgoing};
use sportello_rooms::rooms::RoomHandle;

/// A frame above [`MAX_FRAME`] but below this is read whole and answered with `too_large`;
/// above this, the websocket library refuses it while reading.
const READ_LIMIT: usize = 1024 * 1024;
const JOIN_TIMEOUT: Duration = Duration::from_secs(10);
const PING_INTERVAL: Duration = Duration::from_secs(15);
/// Browsers answer pings; three silent intervals mean the peer is gone.
const IDLE_TIMEOUT: Duration = Duration::from_secs(45);
/// A write that takes longer means the peer does not read: give up on it.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait for the peer's answer to our close frame.
const CLOSE_LINGER: Duration = Duration::from_secs(2);
/// Frames queued for one websocket before it counts as too slow and is closed.
const OUTBOX_CAPACITY: usize = 256;

/// Close codes that are not protocol errors (see "Errors" in `docs/signaling.md`).
const CLOSE_NORMAL: u16 = 1000;
const CLOSE_GOING_AWAY: u16 = 1001;
const CLOSE_POLICY: u16 = 1008;

static NEXT_CONN: AtomicU64 = AtomicU64::new(1);

#[derive(Debug, Deserialize)]
pub struct WsQuery {
    /// Optional; when present the token must be for this room (`wrong_room` otherwise).
    pub room: Option<String>,
    pub lang: Option<String>,
}

pub async fn handler(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Query(query): Query<WsQuery>,
    ws: WebSocketUpgrade,
) -> Response {
    let Some(ticket) = state.sockets.admit(ip, state.config.ws_unjoined_per_ip) else {
        tracing::info!("websocket refused: too many open from this address");
        let headers = [(axum::http::header::RETRY_AFTER, "10")];
        return (axum::http::StatusCode::TOO_MANY_REQUESTS, headers, "too many websockets from this address")
            .into_response();
    };
    ws.max_message_size(READ_LIMIT)
        .max_frame_size(READ_LIMIT)
        .on_failed_upgrade(|error| tracing::info!(%error, "websocket upgrade failed"))
        .on_upgrade(move |socket| run(socket, state, query, ticket))
}

async fn run(socket: WebSocket, state: AppState, query: WsQuery, ticket: Ticket) {
    let id = NEXT_CONN.fetch_add(1, Ordering::Relaxed);
    let span =
        tracing::info_span!("session", conn = id, room = tracing::field::Empty, participant = tracing::field::Empty);
    async move {
        tracing::debug!("websocket opened");
        let (conn, outbox) = Connection::new(id, Lang::from_query(query.lang.as_deref()), OUTBOX_CAPACITY);
        let (sink, stream) = socket.split();
        let mut session = Session {
            conn,
            state: state.clone(),
            expected_room: query.room,
            ticket,
            joined: None,
            left: false,
            closing: false,
        };
        tokio::select! {
            () = write(sink, outbox, state.shutdown.clone()) => {}
            () = session.read(stream) => {}
        }
        if let (Some(room), false) = (&session.joined, session.left) {
            room.disconnected().await;
        }
        tracing::debug!("websocket closed");
    }
    .instrument(span)
    .await
}

struct Session {
    conn: Connection,
    state: AppState,
    expected_room: Option<String>,
    /// This socket's place in the per-address count.
    ticket: Ticket,
    joined: Option<RoomHandle>,
    left: bool,
    /// A close frame is queued: frames are no longer processed.
    closing: bool,
}

impl Session {
    /// Returns when the peer is gone. After queuing a close it only drains the socket, waiting for
    /// the peer's closing handshake (or the writer's linger) to end the session.
    async fn read(&mut self, mut stream: SplitStream<WebSocket>) {
        self.read_frames(&mut stream).await;
        if self.closing {
            loop {
                match stream.next().await {
                    Some(Ok(_)) => continue,
                    None => return,
                    // Unreadable (e.g. after an oversized frame): let the writer finish alone.
                    Some(Err(_)) => std::future::pending::<()>().await,
                }
            }
        }
    }

    async fn read_frames(&mut self, stream: &mut SplitStream<WebSocket>) {
        let join_deadline = Instant::now() + JOIN_TIMEOUT;
        loop {
            let next = match self.joined {
                None => timeout_at(join_deadline, stream.next()).await,
                Some(_) => timeout(IDLE_TIMEOUT, stream.next()).await,
            };
            let frame = match next {
                Err(_) if self.joined.is_none() => {
                    tracing::info!("no join within {JOIN_TIMEOUT:?}");
                    return self.start_closing(self.conn.close(CLOSE_POLICY, "join timeout"));
                }
                Err(_) => {
                    tracing::info!("peer silent for {IDLE_TIMEOUT:?}");
                    return self.start_closing(self.conn.close(CLOSE_GOING_AWAY, "idle"));
                }
                Ok(None) => return,
                Ok(Some(Err(error))) => {
                    // The library refused a frame over READ_LIMIT; everything else is a dead socket.
                    if error.to_string().contains("Space limit exceeded") {
                        return self.start_closing(self.conn.send_error(&ProtocolError::TooLarge(READ_LIMIT)));
                    }
                    tracing::debug!(%error, "websocket read failed");
                    return;
                }
                Ok(Some(Ok(frame))) => frame,
            };
            let keep_going = match frame {
                Message::Text(text) if text.len() > MAX_FRAME => {
                    return self.start_closing(self.conn.send_error(&ProtocolError::TooLarge(text.len())));
                }
                Message::Text(text) => self.on_text(text.as_str()).await,
                Message::Binary(_) => self.error(ProtocolError::InvalidJson("binary frame".into())),
                // Pongs only prove liveness (the timeout above); pings are answered by the library.
                Message::Ping(_) | Message::Pong(_) => true,
                // Keep reading: the library answers the close and then ends the stream.
                Message::Close(_) => true,
            };
            if !keep_going {
                return self.start_closing(Ok(()));
            }
        }
    }

    /// A close was queued (if the queue was full, the connection is being cut off anyway).
    fn start_closing(&mut self, _queued: Result<(), sportello_rooms::room::Gone>) {
        self.closing = true;
    }

    /// Sends a non-fatal or fatal error; `false` when the session must stop reading.
    fn error(&self, error: ProtocolError) -> bool {
        let fatal = error.is_fatal();
        self.conn.send_error(&error).is_ok() && !fatal
    }

    async fn on_text(&mut self, text: &str) -> bool {
        let message = match protocol::parse(text) {
            Ok(message) => message,
            Err(error) => return self.error(error),
        };
        match (message, &self.joined) {
            (ClientMessage::Join { token }, None) => self.join(&token).await,
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

    async fn join(&mut self, token: &str) -> bool {
        let claims = match self.state.tokens.verify(token, self.expected_room.as_deref()) {
            Ok(claims) => claims,
            Err(error) => return self.error(error.into()),
        };
        let span = tracing::Span::current();
        span.record("room", claims.room.as_str());
        span.record("participant", claims.sub.as_str());
        if sportello_rooms::live::is_http_room(&claims.room) {
            // The program feed and the chamber encoder's room belong to WHEP/WHIP (an encoder
            // token is a join token for `chamber-<id>`): not rooms one enters by websocket.
            return self.error(ProtocolError::Forbidden);
        }
        if let Err(revoked) = sportello_rooms::grants::check(&self.state.store, &claims).await {
            tracing::info!(%revoked, "room token refused");
            return self.error(match revoked {
                Revoked::Cancelled => ProtocolError::AppointmentCancelled,
                Revoked::Closed => ProtocolError::AppointmentClosed,
                Revoked::AppointmentNotFound => ProtocolError::AppointmentNotFound,
                Revoked::Moved | Revoked::Account | Revoked::Membership => ProtocolError::LinkRevoked,
                Revoked::Store(error) => ProtocolError::Internal(format!("checking the token: {error}")),
            });
        }
        match self.state.rooms.join(claims, self.conn.clone()).await {
            Ok(room) => {
                self.joined = Some(room);
                self.ticket.joined();
                true
            }
            // room_full is fatal; internal is not (the client may try again).
            Err(error) => self.error(error),
        }
    }
}

/// Drains the outgoing queue into the socket and pings. Ends after a close frame, when cut off
/// (queue overflow), on server shutdown, or when the socket fails.
async fn write(mut sink: SplitSink<WebSocket, Message>, mut outbox: Outbox, mut shutdown: watch::Receiver<bool>) {
    let mut ping = tokio::time::interval_at(Instant::now() + PING_INTERVAL, PING_INTERVAL);
    loop {
        let frame = tokio::select! {
            () = outbox.kill.notified() => {
                let _ = timeout(Duration::from_secs(1), sink.send(close(CLOSE_POLICY, "too slow"))).await;
                return;
            }
            // Fires on shutdown and when the server is dropped.
            _ = shutdown.changed() => close(CLOSE_GOING_AWAY, "server shutting down"),
            out = outbox.rx.recv() => match out {
                // Always UTF-8 (built from a String): the check does not copy.
                Some(Outgoing::Text(text)) => Message::Text(Utf8Bytes::try_from(text.into_bytes()).unwrap_or_default()),
                Some(Outgoing::Close(code, reason)) => close(code, reason),
                None => return,
            },
            _ = ping.tick() => Message::Ping(Default::default()),
        };
        let closing = matches!(frame, Message::Close(_));
        tokio::select! {
            sent = timeout(WRITE_TIMEOUT, sink.send(frame)) => {
                if !matches!(sent, Ok(Ok(()))) {
                    tracing::debug!("websocket write failed or timed out");
                    return;
                }
            }
            () = outbox.kill.notified() => return,
        }
        if closing {
            // Give the peer a moment to answer the close (the reader ends the session then), so
            // that the socket is not torn down under frames it has not read yet.
            tokio::time::sleep(CLOSE_LINGER).await;
            return;
        }
    }
}

fn close(code: u16, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame { code, reason: reason.into() }))
}
