//! Sportello's realtime rooms: everything between a websocket frame and the SFU. No HTTP (the edge
//! adapts its websocket library to [`session`]'s frames), no mail, no HTTP client.
//!
//! Layout:
//! - [`session`]: one signaling session over any message transport (limits, join deadline, pings).
//! - [`protocol`]: the websocket messages of `docs/signaling.md` and their parser; `protocol::council`
//!   holds the `council.*` messages and the council room and identity names.
//! - [`error`]: [`ProtocolError`](error::ProtocolError): wire codes, Italian/English messages, close codes.
//! - [`room`]: one room as an actor task: participants, lobby, tracks, reconnection grace, SFU calls.
//! - [`rooms`]: the registry of live rooms and the router of [`SfuEvent`](sportello_sfu::SfuEvent)s;
//!   [`anywhere`]: what REST asks of a live room, answered on whichever node runs it.
//! - [`council`]: the chaired council session inside a `council-<id>` room: `council::room` the rules
//!   as the room applies them (floor, roll call, votes, stream), `council::jobs` its loading and storing.
//! - [`broadcast`]: a council room's public side — program feed selection, recording.
//! - [`recording`]: finishing a council recording (ffmpeg remux, chapters, hash, row), run by the
//!   persistence task.
//! - [`live`]: the public state board of council sessions.
//! - [`persist`]: the queue through which rooms store chat and events without awaiting the store;
//!   it runs the jobs rooms hand it and returns their answers through the registry, knowing no
//!   room, chat or council type.
//! - [`turn`]: per-participant TURN REST credentials (coturn `use-auth-secret`) and their secret.
//! - [`grants`]: whether a join token still opens its room (appointment, membership, account).
//! - [`relay`]: sessions whose room runs on another node (several nodes): both ends of the relay.
//!
//! Invariants: a room never awaits a websocket (per-connection bounded queues; a full queue closes
//! that connection) nor the store (the persistence queue); nothing here knows RTP or ICE internals.

pub mod anywhere;
pub mod broadcast;
pub mod council;
pub mod error;
pub mod grants;
pub mod live;
pub mod persist;
pub mod protocol;
pub mod recording;
pub mod relay;
pub mod room;
pub mod rooms;
pub mod session;
pub mod turn;
