//! The public side of a council session over HTTP: what the live page shows, WHEP playback of the
//! program feed for anyone (no account), and WHIP ingest for the chamber's encoder (bearer token
//! from `POST /api/council/sessions/{id}/encoder-token`). See "Live stream" in `docs/council.md`.
//!
//! - `GET /api/live/{session}`: title, body, time and the [`LiveState`] of the board (or, when the
//!   session is not running, `ended`/`scheduled` from the stored status). Polled by `/live/{id}`.
//! - `POST /api/live/{session}/whep` (`application/sdp`) → `201 Created`, the answer, `Location`
//!   of the viewer's session; `DELETE` on it ends it. No trickle ICE and no ICE restart (the SFU
//!   is ICE-lite and puts its one candidate in the answer), so `PATCH` is `405` (RFC 9725 §4.3.1,
//!   which the WHEP draft follows). Not on air yet: `409` with `Retry-After` (WHEP draft,
//!   "Session Management"); over: `410`; full: `503` with `Retry-After`.
//! - `POST /api/live/{session}/whip` with `Authorization: Bearer`: the encoder publishes into
//!   `chamber-<session>`; a new POST replaces the previous encoder session (an encoder that lost
//!   its connection comes back without having sent DELETE).
//!
//! Viewers are counted here (cap `max_live_viewers`, per-IP rate `live_viewers_per_ip_minute`).
//! A viewer that vanishes without DELETE stays counted until its session stops running.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Extension, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Serialize;
use sportello_store::{CouncilSession, CouncilStatus};
use utoipa::{OpenApi, ToSchema};

use super::ApiError;
use super::error::Path;
use super::public::RateLimiter;
use crate::cascade::EdgeOf;
use crate::client_addr::ClientIp;
use crate::state::AppState;
use sportello_backoffice::token::Role;
use sportello_rooms::live::{CHAMBER_PARTICIPANT, LiveStatus, chamber_room, program_room};

/// Largest SDP offer accepted (a browser's offer with three m-lines is ≈ 5 kB).
pub const MAX_SDP: usize = 64 * 1024;
pub(super) const SDP: &str = "application/sdp";
/// How long the public part of a session is served from memory: every viewer polls every 2 s.
const SESSION_CACHE_TTL: Duration = Duration::from_secs(5);
const SESSION_CACHE_MAX: usize = 10_000;
const MAX_ID_LEN: usize = 64;
const RESOURCE_ALLOW: &str = "DELETE, OPTIONS";
const ENDPOINT_ALLOW: &str = "POST, OPTIONS";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/live/{session}", get(live_state))
        .route("/live/{session}/whep", post(whep_post).options(whep_options).fallback(endpoint_other))
        .route(
            "/live/{session}/whep/{viewer}",
            delete(whep_delete).patch(no_patch).options(resource_options).fallback(resource_other),
        )
        .route("/live/{session}/whip", post(whip_post).options(endpoint_options).fallback(endpoint_other))
        .route(
            "/live/{session}/whip/{resource}",
            delete(whip_delete).patch(no_patch).options(resource_options).fallback(resource_other),
        )
        .layer(DefaultBodyLimit::max(MAX_SDP))
        // One registry per router, i.e. per server (tests run several servers in one process).
        .layer(Extension(Arc::new(LiveHttp::default())))
}

/// This module's part of `/api/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    #[derive(OpenApi)]
    #[openapi(
        paths(live_state, whep_post, whep_delete, whip_post, whip_delete),
        components(schemas(LiveView, LiveStatus)),
        tags((name = "live", description = "Council sessions' public live stream: state, WHEP playback, WHIP ingest"))
    )]
    struct LiveApi;
    LiveApi::openapi()
}

// --- shapes -----------------------------------------------------------------------------------------

/// What `/live/{session}` shows.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LiveView {
    pub id: String,
    pub title: String,
    /// `consiglio` or `giunta`.
    pub body: String,
    /// Unix seconds.
    pub scheduled_at: i64,
    pub status: LiveStatus,
    /// With `scheduled`: the session is called for within [`STARTING_SOON_SECS`] (or its time has
    /// passed), so the page says it starts shortly rather than only when it is called for.
    pub starting_soon: bool,
    /// Title of the agenda item under discussion (the caption).
    pub item: Option<String>,
    /// Who has the floor.
    pub speaker: Option<String>,
    /// Unix seconds of the last change; absent when the session is not running.
    pub since: Option<i64>,
}

/// The public part of a stored session.
#[derive(Debug, Clone)]
struct PublicSession {
    id: String,
    title: String,
    body: String,
    scheduled_at: i64,
    stored: CouncilStatus,
}

impl From<&CouncilSession> for PublicSession {
    fn from(s: &CouncilSession) -> Self {
        PublicSession {
            id: s.id.clone(),
            title: s.title.clone(),
            body: s.body.as_str().into(),
            scheduled_at: s.scheduled_at,
            stored: s.status,
        }
    }
}

// --- per-server registry ----------------------------------------------------------------------------

/// Viewers and encoder sessions this server handed out, the per-IP limiter, and a short cache of
/// the sessions' public part.
#[derive(Default)]
pub struct LiveHttp {
    /// session id → viewer ids (participants of `live-<session>`).
    viewers: Mutex<HashMap<String, HashSet<String>>>,
    /// session id → the current WHIP resource id.
    encoders: Mutex<HashMap<String, String>>,
    limiter: RateLimiter,
    sessions: Mutex<HashMap<String, (Instant, Option<PublicSession>)>>,
}

/// The `sportello_live_viewers` gauge, after every change of the viewers this server counts;
/// with several nodes, also what this node announces to the others (the cap is the cluster's).
fn publish_viewers(state: &AppState, viewers: &HashMap<String, HashSet<String>>) {
    let here = viewers.values().map(HashSet::len).sum::<usize>();
    metrics::gauge!("sportello_live_viewers").set(here as f64);
    if let Some(cluster) = &state.cluster {
        cluster.set_viewers(here as u64);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl LiveHttp {
    /// Reserves a viewer slot, or says the server is full. Forgets first the viewers of sessions
    /// that no longer run (their program was closed, and with it their connections).
    fn reserve_viewer(&self, state: &AppState, session: &str, viewer: &str) -> Result<(), ApiError> {
        let mut viewers = lock(&self.viewers);
        // A session runs here (its board) or is relayed here (an edge of its node).
        viewers.retain(|id, set| {
            !set.is_empty()
                && (state.live.get(id).is_some_and(|s| s.status != LiveStatus::Ended) || state.cascade.relays(id))
        });
        let elsewhere = state.cluster.as_ref().map_or(0, |c| c.viewers_elsewhere() as usize);
        let total: usize = viewers.values().map(HashSet::len).sum::<usize>() + elsewhere;
        if total >= state.config.max_live_viewers {
            return Err(ApiError::Unavailable("max_live_viewers reached"));
        }
        viewers.entry(session.to_owned()).or_default().insert(viewer.to_owned());
        publish_viewers(state, &viewers);
        Ok(())
    }

    /// Forgets viewers the SFU no longer has: a viewer whose tab vanished without a DELETE is
    /// released by the SFU when its connection fails, and must not hold a seat for ever.
    async fn forget_gone_viewers(&self, state: &AppState) {
        let sessions: Vec<String> = lock(&self.viewers).keys().cloned().collect();
        for session in sessions {
            let Ok(present) = state.rooms.sfu().participants(program_room(&session).into()).await else { continue };
            let present: HashSet<&str> = present.iter().map(|p| &**p).collect();
            if let Some(set) = lock(&self.viewers).get_mut(&session) {
                set.retain(|v| present.contains(v.as_str()));
            }
        }
        publish_viewers(state, &lock(&self.viewers));
    }

    fn release_viewer(&self, state: &AppState, session: &str, viewer: &str) -> bool {
        let mut viewers = lock(&self.viewers);
        let removed = viewers.get_mut(session).is_some_and(|set| set.remove(viewer));
        if viewers.get(session).is_some_and(HashSet::is_empty) {
            viewers.remove(session);
        }
        publish_viewers(state, &viewers);
        removed
    }

    async fn session(&self, state: &AppState, id: &str) -> Result<PublicSession, ApiError> {
        if !valid_id(id) {
            return Err(ApiError::NotFound);
        }
        if let Some((at, cached)) = lock(&self.sessions).get(id)
            && at.elapsed() < SESSION_CACHE_TTL
        {
            return cached.clone().ok_or(ApiError::NotFound);
        }
        let found = state.store.council_session(id).await?.as_ref().map(PublicSession::from);
        let mut sessions = lock(&self.sessions);
        if sessions.len() >= SESSION_CACHE_MAX {
            sessions.retain(|_, (at, _)| at.elapsed() < SESSION_CACHE_TTL);
            if sessions.len() >= SESSION_CACHE_MAX {
                sessions.clear();
            }
        }
        sessions.insert(id.to_owned(), (Instant::now(), found.clone()));
        found.ok_or(ApiError::NotFound)
    }
}

/// Session ids are ours (short, alphanumeric); anything else is not looked up or cached.
fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_ID_LEN && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// 128 random bits, hex: the capability that ends a viewer's or encoder's session.
fn resource_id(prefix: &str) -> String {
    format!("{prefix}-{}", hex::encode(rand::random::<[u8; 16]>()))
}

/// How long before its time a session not yet begun is announced as starting shortly.
pub const STARTING_SOON_SECS: i64 = 30 * 60;

fn status_of(state: &AppState, session: &PublicSession) -> LiveView {
    // The room's board is the truth while the room runs; without one, the stored status tells a
    // session that never began from one whose room emptied without the chair ending it.
    let (status, item, speaker, since) = match state.live.get(&session.id) {
        Some(live) => (live.status, live.item, live.speaker, Some(live.since)),
        None => match session.stored {
            CouncilStatus::Ended => (LiveStatus::Ended, None, None, None),
            CouncilStatus::Live => (LiveStatus::Interrupted, None, None, None),
            CouncilStatus::Scheduled => (LiveStatus::Scheduled, None, None, None),
        },
    };
    let starting_soon =
        status == LiveStatus::Scheduled && session.scheduled_at - state.clock.now() <= STARTING_SOON_SECS;
    LiveView {
        id: session.id.clone(),
        title: session.title.clone(),
        body: session.body.clone(),
        scheduled_at: session.scheduled_at,
        status,
        starting_soon,
        item,
        speaker,
        since,
    }
}

/// Whether the program may be played now: `409` before it starts (or while nobody runs it),
/// `410` once over.
fn on_air(state: &AppState, session: &PublicSession) -> Result<(), ApiError> {
    match status_of(state, session).status {
        LiveStatus::Live | LiveStatus::Suspended => Ok(()),
        LiveStatus::Scheduled | LiveStatus::Interrupted => Err(ApiError::NotOnAir),
        LiveStatus::Ended => Err(session_ended()),
    }
}

fn session_ended() -> ApiError {
    ApiError::gone("session_ended", ("La seduta è terminata.", "The session has ended."))
}

/// The body of an SDP request: the type must be `application/sdp` (parameters ignored).
pub(super) fn sdp_body(headers: &HeaderMap, body: Result<Bytes, BytesRejection>) -> Result<String, ApiError> {
    let is_sdp = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(SDP));
    if !is_sdp {
        return Err(ApiError::ContentType { expected: SDP });
    }
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge
        } else {
            ApiError::bad_request("invalid_body", ("Corpo della richiesta illeggibile.", "Unreadable request body."))
        }
    })?;
    let sdp = String::from_utf8(body.to_vec()).map_err(|_| {
        ApiError::bad_request("invalid_sdp", ("L'offerta SDP non è testo UTF-8.", "The SDP offer is not UTF-8 text."))
    })?;
    if !sdp.starts_with("v=0") {
        return Err(ApiError::bad_request(
            "invalid_sdp",
            (
                "Il corpo non è un'offerta SDP (deve iniziare con «v=0»).",
                "The body is not an SDP offer (it must start with «v=0»).",
            ),
        ));
    }
    Ok(sdp)
}

/// `201 Created` with the answer and the new session's URL (relative, as RFC 9110 allows).
fn created(location: String, answer: String) -> Result<Response, ApiError> {
    Response::builder()
        .status(StatusCode::CREATED)
        .header(header::CONTENT_TYPE, SDP)
        .header(header::LOCATION, location)
        .header(header::CACHE_CONTROL, "no-store")
        .body(answer.into())
        .map_err(ApiError::internal)
}

/// One `Link: <url>; rel="ice-server"` per TURN URL with the viewer's own credentials (RFC 9725
/// §4.6, which the WHEP draft follows). No trickle and no ICE restart here: the ones of the `201`
/// serve a player's next POST; the live page takes them from the endpoint's `OPTIONS` first.
fn ice_server_links(turn: &sportello_rooms::turn::Turn, viewer: &str, now: i64) -> Vec<HeaderValue> {
    let Some(server) = turn.ice_server(viewer, now) else { return Vec::new() };
    let (username, credential) = (server.username.unwrap_or_default(), server.credential.unwrap_or_default());
    server
        .urls
        .iter()
        .filter_map(|url| {
            let link = format!(
                r#"<{url}>; rel="ice-server"; username="{username}"; credential="{credential}"; credential-type="password""#
            );
            // A URL from the configuration that is not a valid header value is left out, not fatal.
            HeaderValue::from_str(&link).inspect_err(|_| tracing::warn!(%url, "TURN URL unfit for a Link header")).ok()
        })
        .collect()
}

// --- the state ----------------------------------------------------------------------------------------

/// The public state of a council session's live stream (no account; polled by `/live/{id}`).
#[utoipa::path(get, path = "/api/live/{session}", tag = "live",
    responses((status = 200, body = LiveView), (status = 404, body = super::error::ErrorBody)))]
#[tracing::instrument(skip_all, fields(session = %id))]
pub async fn live_state(
    State(state): State<AppState>,
    Extension(live): Extension<Arc<LiveHttp>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let session = live.session(&state, &id).await?;
    let mut response = Json(status_of(&state, &session)).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

// --- WHEP -----------------------------------------------------------------------------------------

/// WHEP: a public, receive-only viewer of the session's program feed. The body is the browser's
/// complete offer (all candidates gathered: no trickle).
#[utoipa::path(post, path = "/api/live/{session}/whep", tag = "live",
    request_body(content = String, content_type = "application/sdp"),
    responses(
        (status = 201, description = "The SDP answer; `Location` is the viewer's session", content_type = "application/sdp"),
        (status = 400, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody),
        (status = 409, description = "Not on air yet (`Retry-After`)", body = super::error::ErrorBody),
        (status = 410, description = "The session is over", body = super::error::ErrorBody),
        (status = 415, body = super::error::ErrorBody), (status = 429, body = super::error::ErrorBody),
        (status = 503, description = "Viewer limit reached (`Retry-After`)", body = super::error::ErrorBody)))]
#[tracing::instrument(skip_all, fields(session = %id, viewer = tracing::field::Empty))]
pub async fn whep_post(
    State(state): State<AppState>,
    Extension(live): Extension<Arc<LiveHttp>>,
    edge: Option<Extension<EdgeOf>>,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let session = live.session(&state, &id).await?;
    let sdp = sdp_body(&headers, body)?;
    if let Some(from) = relay_claim(&state, &headers) {
        return relay_leg(&state, &id, &session, &from, sdp).await;
    }
    if state.cluster.as_ref().is_some_and(|c| c.is_draining()) {
        return Err(ApiError::Unavailable("this node drains"));
    }
    match edge {
        // The council runs on another node: its status is known there, and asked by the leg.
        Some(Extension(EdgeOf(origin))) => match state.edge_context() {
            Some(edge) => state.cascade.ensure(&edge, &id, &origin).await?,
            None => return Err(ApiError::NotOnAir),
        },
        None => on_air(&state, &session)?,
    }
    if !live.limiter.allow(ip, state.clock.now(), state.config.live_viewers_per_ip_minute) {
        tracing::info!("live viewer rate limit reached");
        return Err(ApiError::RateLimited);
    }
    // With several nodes a viewer's id names its node, where its DELETE is sent.
    let viewer = match &state.cluster {
        Some(cluster) => format!("{}.{}", resource_id("viewer"), cluster.id()),
        None => resource_id("viewer"),
    };
    tracing::Span::current().record("viewer", viewer.as_str());
    live.forget_gone_viewers(&state).await;
    live.reserve_viewer(&state, &id, &viewer)?;
    match state.rooms.sfu().whep_offer(program_room(&id).into(), viewer.as_str().into(), sdp).await {
        Ok(answer) => {
            tracing::info!("live viewer connected");
            let mut response = created(format!("/api/live/{id}/whep/{viewer}"), answer)?;
            if let Some(turn) = state.config.turn() {
                for link in ice_server_links(&turn, &viewer, state.clock.now()) {
                    response.headers_mut().append(header::LINK, link);
                }
            }
            Ok(response)
        }
        Err(e) => {
            live.release_viewer(&state, &id, &viewer);
            Err(e.into())
        }
    }
}

/// The node whose relay leg this request is (`x-sportello-relay`, signed with the cluster's key,
/// lately); anything else is an ordinary viewer.
fn relay_claim(state: &AppState, headers: &HeaderMap) -> Option<String> {
    state.cluster.as_ref()?;
    let value = headers.get(crate::cascade::RELAY_HEADER)?.to_str().ok()?;
    let claims = state.tokens.decode::<crate::cascade::RelayClaims>(value).ok()?;
    (claims.exp >= state.clock.now()).then_some(claims.sportello_relay_from)
}

/// An edge's relay leg: answered like a viewer, but counted for no cap or rate (it carries
/// every viewer of that node), one per edge — a new one replaces the last.
async fn relay_leg(
    state: &AppState,
    id: &str,
    session: &PublicSession,
    from: &str,
    sdp: String,
) -> Result<Response, ApiError> {
    on_air(state, session)?;
    let leg = format!("relay-{from}");
    let program: sportello_sfu::RoomId = program_room(id).into();
    let _ = state.rooms.sfu().leave(program.clone(), leg.as_str().into()).await;
    let answer = state.rooms.sfu().whep_offer(program, leg.as_str().into(), sdp).await?;
    tracing::info!(edge = from, "relay leg to an edge connected");
    created(format!("/api/live/{id}/whep/{leg}"), answer)
}

/// Ends a viewer's session (the page does it on `pagehide`).
#[utoipa::path(delete, path = "/api/live/{session}/whep/{viewer}", tag = "live",
    responses((status = 200, description = "Ended"), (status = 404, body = super::error::ErrorBody)))]
#[tracing::instrument(skip_all, fields(session = %id, viewer = %viewer))]
pub async fn whep_delete(
    State(state): State<AppState>,
    Extension(live): Extension<Arc<LiveHttp>>,
    Path((id, viewer)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    if !live.release_viewer(&state, &id, &viewer) {
        return Err(ApiError::NotFound);
    }
    match state.rooms.sfu().leave(program_room(&id).into(), viewer.as_str().into()).await {
        // Already gone with its program: the session is over either way.
        Ok(()) | Err(sportello_sfu::SfuError::UnknownParticipant(_) | sportello_sfu::SfuError::UnknownProgram(_)) => {
            Ok(StatusCode::OK)
        }
        Err(e) => Err(e.into()),
    }
}

// --- WHIP -----------------------------------------------------------------------------------------

/// The encoder's token: valid (signature, time), for `chamber-<session>`, role host or participant.
fn authorize_encoder(state: &AppState, headers: &HeaderMap, session: &str) -> Result<(), ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(ApiError::Bearer { invalid: false })?;
    let claims = state.tokens.verify(token, None).map_err(|_| ApiError::Bearer { invalid: true })?;
    if claims.room != chamber_room(session) || !matches!(claims.role, Role::Host | Role::Participant) {
        return Err(ApiError::Forbidden);
    }
    Ok(())
}

/// WHIP: the chamber's encoder (OBS, a hardware encoder) publishes into `chamber-<session>`.
#[utoipa::path(post, path = "/api/live/{session}/whip", tag = "live",
    request_body(content = String, content_type = "application/sdp"),
    responses(
        (status = 201, description = "The SDP answer; `Location` is the encoder's session", content_type = "application/sdp"),
        (status = 400, body = super::error::ErrorBody),
        (status = 401, description = "No or invalid bearer token (`WWW-Authenticate: Bearer`)", body = super::error::ErrorBody),
        (status = 403, description = "A token for another room or a viewer", body = super::error::ErrorBody),
        (status = 404, body = super::error::ErrorBody), (status = 410, body = super::error::ErrorBody),
        (status = 415, body = super::error::ErrorBody)),
    security(("encoder_token" = [])))]
#[tracing::instrument(skip_all, fields(session = %id))]
pub async fn whip_post(
    State(state): State<AppState>,
    Extension(live): Extension<Arc<LiveHttp>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    authorize_encoder(&state, &headers, &id)?;
    let session = live.session(&state, &id).await?;
    if status_of(&state, &session).status == LiveStatus::Ended {
        return Err(session_ended());
    }
    let sdp = sdp_body(&headers, body)?;
    let sfu = state.rooms.sfu();
    let room = chamber_room(&id);
    // One encoder per chamber: a new session replaces the previous one.
    let previous = lock(&live.encoders).remove(&id);
    if previous.is_some() {
        tracing::info!("a new encoder session replaces the previous one");
        match sfu.leave(room.as_str().into(), CHAMBER_PARTICIPANT.into()).await {
            Ok(()) | Err(sportello_sfu::SfuError::UnknownParticipant(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let answer = sfu.whip_offer(room.as_str().into(), CHAMBER_PARTICIPANT.into(), sdp).await?;
    let resource = resource_id("encoder");
    lock(&live.encoders).insert(id.clone(), resource.clone());
    tracing::info!("chamber encoder connected");
    created(format!("/api/live/{id}/whip/{resource}"), answer)
}

/// Ends the encoder's session (same bearer token).
#[utoipa::path(delete, path = "/api/live/{session}/whip/{resource}", tag = "live",
    responses((status = 200, description = "Ended"), (status = 401, body = super::error::ErrorBody),
              (status = 403, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody)),
    security(("encoder_token" = [])))]
#[tracing::instrument(skip_all, fields(session = %id))]
pub async fn whip_delete(
    State(state): State<AppState>,
    Extension(live): Extension<Arc<LiveHttp>>,
    Path((id, resource)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    authorize_encoder(&state, &headers, &id)?;
    {
        let mut encoders = lock(&live.encoders);
        // Only the current session: a stale DELETE must not cut the encoder that replaced it.
        if encoders.get(&id) != Some(&resource) {
            return Err(ApiError::NotFound);
        }
        encoders.remove(&id);
    }
    match state.rooms.sfu().leave(chamber_room(&id).into(), CHAMBER_PARTICIPANT.into()).await {
        Ok(()) | Err(sportello_sfu::SfuError::UnknownParticipant(_)) => Ok(StatusCode::OK),
        Err(e) => Err(e.into()),
    }
}

// --- methods we do not support --------------------------------------------------------------------

/// No trickle ICE, no ICE restart: "If the WHIP session does not support the PATCH method for any
/// purpose, it MUST return a 405" (RFC 9725 §4.3.1), with `Allow` (RFC 9110 §15.5.6).
async fn no_patch() -> ApiError {
    ApiError::MethodNotAllowed { allow: RESOURCE_ALLOW }
}

async fn resource_other() -> ApiError {
    ApiError::MethodNotAllowed { allow: RESOURCE_ALLOW }
}

/// "405 for any method other than OPTIONS and POST on the endpoint URL" (WHEP/WHIP).
async fn endpoint_other() -> ApiError {
    ApiError::MethodNotAllowed { allow: ENDPOINT_ALLOW }
}

/// OPTIONS on the endpoints (CORS preflight and discovery, RFC 9725 / WHEP): `Accept-Post`.
async fn endpoint_options() -> impl IntoResponse {
    (StatusCode::NO_CONTENT, [(header::ALLOW, ENDPOINT_ALLOW), (HeaderName::from_static("accept-post"), SDP)])
}

/// `OPTIONS` on the WHEP endpoint also hands out TURN (`Link`, with a credential of its own), so
/// that a player gathers relay candidates for its very first offer: with no trickle, ICE servers
/// learnt only from the `201` could serve its next attempt alone (the WHIP drafts' pre-flight).
async fn whep_options(State(state): State<AppState>) -> Response {
    let mut response = endpoint_options().await.into_response();
    if let Some(turn) = state.config.turn() {
        for link in ice_server_links(&turn, &resource_id("viewer"), state.clock.now()) {
            response.headers_mut().append(header::LINK, link);
        }
    }
    response
}

async fn resource_options() -> impl IntoResponse {
    (StatusCode::NO_CONTENT, [(header::ALLOW, RESOURCE_ALLOW)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_content_types() {
        assert!(valid_id("01hx3k9a7q2m4n6p8r0t"));
        for bad in ["", "../x", "a b", &"x".repeat(65), "é"] {
            assert!(!valid_id(bad), "{bad:?}");
        }
        let id = resource_id("viewer");
        assert!(id.starts_with("viewer-") && id.len() == 7 + 32);
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("Application/SDP; charset=utf-8"));
        assert_eq!(sdp_body(&headers, Ok(Bytes::from_static(b"v=0\r\n"))).unwrap(), "v=0\r\n");
        assert!(matches!(sdp_body(&headers, Ok(Bytes::from_static(b"hello"))), Err(ApiError::BadRequest { .. })));
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        assert!(matches!(sdp_body(&headers, Ok(Bytes::from_static(b"v=0"))), Err(ApiError::ContentType { .. })));
    }

    #[test]
    fn turn_urls_become_ice_server_links() {
        use sportello_rooms::turn::{Turn, TurnSecret, credentials};
        let secret = TurnSecret::new("0123456789abcdef").unwrap();
        let turn = Turn {
            urls: vec!["turn:203.0.113.11:3478?transport=udp".into(), "turns:turn.example:443?transport=tcp".into()],
            ttl: Duration::from_secs(60),
            secret: secret.clone(),
        };
        let links = ice_server_links(&turn, "viewer-1", 1_000);
        let (_, credential) = credentials(&secret, 1_060, "viewer-1");
        assert_eq!(links.len(), 2);
        assert_eq!(
            links[1].to_str().unwrap(),
            format!(
                r#"<turns:turn.example:443?transport=tcp>; rel="ice-server"; username="1060:viewer-1"; credential="{credential}"; credential-type="password""#
            )
        );
        assert!(ice_server_links(&Turn { urls: vec![], ..turn }, "viewer-1", 1_000).is_empty());
    }
}
