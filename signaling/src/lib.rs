//! Sportello's edge: HTTP, the signaling websocket, tokens, configuration and room orchestration.
//!
//! Layout (each module holds one thing):
//! - [`config`]: [`Config`](config::Config), layered defaults < TOML file < `SPORTELLO_*` env < CLI flags.
//! - [`token`]: HS256 join tokens and the key file they are signed with.
//! - [`protocol`]: the websocket messages of `docs/signaling.md` and their parser.
//! - [`error`]: [`ProtocolError`](error::ProtocolError), the one place errors become wire codes,
//!   human messages (Italian/English) and close codes.
//! - [`persist`]: the queue through which rooms store chat and appointment events without awaiting.
//! - [`retention`]: the background pass deleting expired documents and chat, closing past appointments.
//! - [`broadcast`]: a council room's public side — program feed selection, live board, recording.
//! - [`council_room`]: the chaired council session inside a `council-<id>` room (floor, roll call, votes).
//! - [`room`]: one room as an actor task: participants, tracks, reconnection grace, SFU calls.
//! - [`rooms`]: the registry of live rooms and the router of [`SfuEvent`](sportello_sfu::SfuEvent)s.
//! - [`ws`]: one websocket session (limits, join deadline, pings) in front of a room.
//! - [`web`]: the embedded browser client and its security headers.
//! - [`clock`]: the server's "now" (shifted in tests), used by every time-based decision.
//! - [`mail`]: outgoing email — SMTP, or `.eml` files in `<data_dir>/outbox` by default.
//! - [`links`]: the citizen's join, manage and cancel links, and the join link's landing page.
//! - [`live`]: the public side of council sessions (live state board, program/chamber room names).
//! - [`booking_mail`]: the booking emails (confirmation, new time, cancellation, reminder) and `.ics`.
//! - [`reminders`]: the reminder pass, run every minute.
//! - [`calendar_fetch`]: officials' own calendars in (subscription URLs, uploads), refreshed periodically.
//! - [`feeds`]: the officials' and offices' `.ics` feeds at secret URLs.
//! - [`logging`]: the binary's log filter (websocket payloads never logged, whatever `RUST_LOG` says).
//! - [`demo`]: `--demo` sample offices, services and accounts.
//! - [`api`]: the JSON REST API (booking, staff, admin, rooms) and its OpenAPI document.
//! - [`server`]: the axum [`Router`](axum::Router) and [`start`](server::start) for the binary and tests.
//!
//! Invariants: nothing here knows about RTP or ICE internals (that is `sportello-sfu`); library errors
//! are typed (`thiserror`) and mapped to wire codes or HTTP statuses only at the edge (`error`, `server`);
//! a room never awaits a websocket (per-connection bounded queues; a full queue closes that connection).

pub mod api;
pub mod booking_mail;
pub mod broadcast;
pub mod calendar_fetch;
pub mod client_addr;
pub mod clock;
pub mod config;
pub mod context;
pub mod council_room;
pub mod demo;
pub mod documents;
pub mod error;
pub mod feeds;
pub mod grants;
pub mod landing;
pub mod links;
pub mod live;
pub mod logging;
pub mod mail;
pub mod origin;
pub mod persist;
pub mod private;
pub mod protocol;
pub mod recording;
pub mod reminders;
pub mod retention;
pub mod room;
pub mod rooms;
pub mod schedule;
pub mod secrets;
pub mod server;
pub mod settings;
pub mod state;
pub mod text;
pub mod time;
pub mod token;
pub mod web;
pub mod ws;

pub use config::Config;
pub use server::{RunningServer, ServerError, app, start, start_with_clock};
