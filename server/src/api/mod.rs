//! The JSON REST API under `/api` (OpenAPI document at `/api/openapi.json`).
//!
//! One module per audience, each returning its own `Router`:
//! - [`public`]: citizens, no account — offices, services, free slots, booking, cancel/reschedule,
//!   `.ics`, rating.
//! - [`auth`]: staff login/logout/password and the one-time setup links; the session extractor.
//! - [`admin`]: administrators manage offices, services and staff.
//! - [`staff`]: officials' dashboard — appointments, waiting citizens, admit, virtual office, invitations.
//! - [`live`]: the public live stream of council sessions — state, WHEP playback (no account), WHIP
//!   ingest for the chamber encoder (bearer token).
//! - [`network_check`]: the pre-join network check — TURN credentials and throwaway probe
//!   connections to the SFU (no account, rate-limited per address).
//! - [`archive`]: the public archive of council recordings (no account): sessions, files, chapters, hashes.
//! - [`webhooks`]: administrators' webhook endpoints (Standard Webhooks) and their delivery log.
//! - [`appio`]: App IO notifications — whether the booking form offers them, the administrator's
//!   settings and log, a citizen turning them off, council convocations.
//! - [`identity`]: signing in through OpenID providers — the administrator's settings, the login
//!   options, and the browser's round trip under `/auth` (pages, see `page_routes`).
//! - [`citizen`]: a citizen logged in with SPID/CIE — the signed cookie, who they are, their appointments.
//! - [`rooms`]: what happens inside a room over HTTP — documents (upload/download) and chat history,
//!   authorised by the room's join token.
//!
//! Errors: every handler returns `Result<_, ApiError>`; [`error`] maps them to statuses and the JSON
//! error shape once.

pub mod admin;
pub mod appio;
pub mod archive;
pub mod auth;
pub mod calendar;
pub mod citizen;
pub mod council;
pub mod desk;
pub mod error;
pub mod identity;
pub mod live;
pub mod login_guard;
pub mod network_check;
pub mod openapi;
pub mod public;
pub mod rooms;
pub mod staff;
pub mod webhooks;

use axum::Router;

pub use error::ApiError;

use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .merge(public::routes())
        .merge(auth::routes())
        .merge(admin::routes())
        .merge(staff::routes())
        .merge(calendar::routes())
        .merge(rooms::routes())
        .merge(council::routes())
        .merge(archive::routes())
        .merge(live::routes())
        .merge(network_check::routes())
        .merge(webhooks::routes())
        .merge(desk::routes())
        .merge(appio::routes())
        .merge(identity::routes())
        .merge(citizen::routes())
        .merge(openapi::routes())
        // Error messages in the request's language (Accept-Language).
        .layer(axum::middleware::from_fn(error::localize))
}
