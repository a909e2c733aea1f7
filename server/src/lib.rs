//! Sportello's HTTP edge and the `sportello` binary: the only crate that knows axum.
//!
//! Layout (each module holds one thing):
//! - [`config`]: [`Config`](config::Config), layered defaults < TOML file < `SPORTELLO_*` env < CLI flags.
//! - [`state`]: [`AppState`](state::AppState), what every handler, websocket session and background
//!   task shares (the rooms, the back office, the limits kept in memory), built once per server.
//! - [`api`]: the JSON REST API (booking, staff, admin, calendars, rooms, council, live, archive), its
//!   OpenAPI document and the one mapping of errors to HTTP statuses and bilingual messages.
//! - [`ws`]: one websocket session (limits, join deadline, pings) handing parsed messages to a room.
//! - [`web`]: the embedded browser client, its pages assembled in the one frame, security headers.
//! - [`landing`]: the join link's server-rendered landing page.
//! - [`client_addr`]: the client's address (IPv6 by /64) and the per-address websocket gate.
//! - [`origin`]: the same-origin check of state-changing requests.
//! - [`forward`]: several nodes — a council's live-stream requests forwarded to the node that runs it,
//!   except WHEP viewers, which [`cascade`] serves from this node (an edge) over one relay leg.
//! - [`node_http`]: the one HTTP client a node asks another with.
//! - [`oidc`]: the OpenID Connect relying party (staff single sign-on, citizens through a SPID/CIE
//!   gateway): discovery, PKCE, the ID token verified; the only module that knows `openidconnect`.
//! - [`metrics`]: `/metrics` (Prometheus) on its own `metrics_bind` listener, the HTTP request
//!   counts by route pattern, the media engine's counts read at scrape time.
//! - [`logging`]: the binary's log filter (websocket payloads never logged, whatever `RUST_LOG` says).
//! - [`server`]: the axum [`Router`](axum::Router), the background passes, and [`start`](server::start).
//!
//! Below: `sportello-rooms` (the realtime part) and `sportello-backoffice` (the municipal use cases).
//! Invariants: library errors are typed (`thiserror`) and mapped to HTTP statuses here only
//! (`api::error`); handlers parse and authorize, then call the crates below.

pub mod api;
pub mod cascade;
pub mod client_addr;
pub mod config;
pub mod forward;
pub mod landing;
pub mod legal;
pub mod logging;
pub mod metrics;
pub mod node_http;
pub mod oidc;
pub mod origin;
pub mod page;
pub mod server;
pub mod state;
pub mod web;
pub mod ws;

pub use config::Config;
pub use server::{RunningServer, ServerError, app, start, start_with_clock};
