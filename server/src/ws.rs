//! `GET /ws?room=R&lang=it|en`: the websocket in front of a signaling session. Here only what is
//! HTTP — the per-address gate, the upgrade, the library's read limit and its frames; the session
//! itself (join deadline, parsing, pings, close codes) is `sportello_rooms::session`.

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use sportello_rooms::error::Lang;
use sportello_rooms::session::{self, Inbound, Outbound};
use tracing::Instrument;

use crate::client_addr::{ClientIp, Ticket};
use crate::state::AppState;

/// A frame above `MAX_FRAME` but below this is read whole and answered with `too_large` by the
/// session; above this, the websocket library refuses it while reading.
const READ_LIMIT: usize = 1024 * 1024;

/// The websocket library's read buffer. Its default, 128 KiB, is zero-filled on the first read and
/// so stays resident for every participant, while most signaling messages are well under 4 KiB
/// (answers, candidates, chat, the room's events); a larger frame (a browser's offer, several KiB)
/// grows the buffer to its size as it arrives, up to `READ_LIMIT`. 16 KiB cost an office
/// participant about 6 KiB more (BENCHMARKS.md).
const READ_BUFFER: usize = 4 * 1024;

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
        .read_buffer_size(READ_BUFFER)
        .on_failed_upgrade(|error| tracing::info!(%error, "websocket upgrade failed"))
        .on_upgrade(move |socket| run(socket, state, query, ticket))
}

/// Counts an open session in `sportello_websocket_sessions` for as long as it lives.
struct OpenSession;

impl OpenSession {
    fn new() -> Self {
        metrics::counter!("sportello_websocket_sessions_total").increment(1);
        metrics::gauge!("sportello_websocket_sessions").increment(1.0);
        OpenSession
    }
}

impl Drop for OpenSession {
    fn drop(&mut self) {
        metrics::gauge!("sportello_websocket_sessions").decrement(1.0);
    }
}

async fn run(socket: WebSocket, state: AppState, query: WsQuery, ticket: Ticket) {
    let _open = OpenSession::new();
    let id = session::next_conn_id();
    let span =
        tracing::info_span!("session", conn = id, room = tracing::field::Empty, participant = tracing::field::Empty);
    let (sink, stream) = socket.split();
    let stream = stream.map(|frame| match frame {
        Ok(Message::Text(text)) => Ok(Inbound::Text(text.as_str().to_owned())),
        Ok(Message::Binary(_)) => Ok(Inbound::Binary),
        Ok(Message::Ping(_)) => Ok(Inbound::Ping),
        Ok(Message::Pong(_)) => Ok(Inbound::Pong),
        Ok(Message::Close(_)) => Ok(Inbound::Close),
        // The library refused a frame over READ_LIMIT; everything else is a dead socket.
        Err(error) if error.to_string().contains("Space limit exceeded") => Ok(Inbound::TooLarge(READ_LIMIT)),
        Err(error) => Err(error),
    });
    let sink = sink.with(|frame: Outbound| {
        std::future::ready(Ok::<_, axum::Error>(match frame {
            // Always UTF-8 (built from a String): the check does not copy.
            Outbound::Text(text) => Message::Text(Utf8Bytes::try_from(text.into_bytes()).unwrap_or_default()),
            Outbound::Close(code, reason) => Message::Close(Some(CloseFrame { code, reason: reason.into() })),
            Outbound::Ping => Message::Ping(Default::default()),
        }))
    });
    let context = state.session_context();
    let lang = Lang::from_query(query.lang.as_deref());
    let mut ticket = ticket;
    session::run(Box::pin(stream), Box::pin(sink), context, id, lang, query.room, move || ticket.joined())
        .instrument(span)
        .await
}
