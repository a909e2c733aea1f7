//! The walk-in video desk over REST (docs/walkin.md): citizens queue without an account and follow
//! their ticket; officials take the next citizen, hand them to a colleague, call colleagues, see
//! their presence and the office figures. The rules are `sportello_domain::desk`, the use cases
//! `sportello_backoffice::desk`; here: extraction, scope, limits, JSON.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use sportello_backoffice::desk::{self as use_case, DeskError, DeskState, JoinRequest};
use sportello_backoffice::time::rfc3339_utc as rfc3339;
use sportello_domain::booking::{Lang, opening_label};
use sportello_domain::desk::DayFigures;
use sportello_store::{Office, StaffRole, Walkin, WalkinState};
use utoipa::{IntoParams, OpenApi, ToSchema};

use super::ApiError;
use super::auth::Staff;
use super::error::{ErrorBody, Path, Query};
use super::public::RateLimiter;
use super::staff::{RoomLink, host_claims, link, official};
use crate::client_addr::ClientIp;
use crate::state::AppState;

type JsonBody<T> = Result<Json<T>, axum::extract::rejection::JsonRejection>;

/// The header a citizen's page sends its ticket's secret in (never in a URL, so never in a log).
pub const SECRET_HEADER: &str = "x-walkin-secret";
/// Tickets one client address may take per minute (a family may queue for two; a script not).
const JOINS_PER_MINUTE: u32 = 5;
/// Calls ringing longer than this are not shown any more.
const CALL_RINGS: i64 = 10 * 60;
/// A host link into a walk-in's or a staff room is valid this long.
const HOST_LINK: Duration = Duration::from_secs(4 * 3600);

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/public/offices/{id}/desk", get(desk_status))
        .route("/public/offices/{id}/walkins", post(join))
        .route("/public/walkins/{id}", get(ticket))
        .route("/public/walkins/{id}/leave", post(leave))
        .route("/public/walkins/{id}/callback", post(callback_request))
        .route("/staff/desk", get(staff_desk))
        .route("/staff/offices/{id}/next", post(next))
        .route("/staff/walkins/{id}/handoff", post(handoff))
        .route("/staff/walkins/{id}/accept", post(accept))
        .route("/staff/walkins/{id}/join", post(rejoin))
        .route("/staff/walkins/{id}/callback", post(call_back))
        .route("/staff/walkins/{id}/finish", post(finish))
        .route("/staff/walkins/{id}/absent", post(absent))
        .route("/staff/calls", post(call))
        .route("/staff/calls/{id}/answer", post(answer))
        .route("/staff/calls/{id}/decline", post(decline))
        .route("/staff/figures", get(figures))
        .route("/staff/figures.csv", get(figures_csv))
        .layer(Extension(Arc::new(RateLimiter::per(60))))
}

#[derive(OpenApi)]
#[openapi(
    paths(desk_status, join, ticket, leave, callback_request, staff_desk, next, handoff, accept, rejoin, call_back, finish,
        absent, call, answer, decline, figures, figures_csv),
    components(schemas(DeskStatus, Label, ServiceRef, JoinBody, Ticket, CallbackBody, Desk, OfficeQueue, QueueEntry,
        ServingEntry, MineEntry, TransferEntry, CallEntry, Colleague, Called, HandoffBody, CallBody, DayFiguresView,
        SpreadView, ServiceTimeView)),
    tags((name = "desk", description = "The walk-in video desk: the citizens' queue (no account) and the officials' side"))
)]
struct DeskApi;

/// This module's part of `/api/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    DeskApi::openapi()
}

impl From<DeskError> for ApiError {
    fn from(error: DeskError) -> ApiError {
        use sportello_backoffice::desk::Refusal;
        if let Some((kind, code, message)) = error.refusal() {
            return match kind {
                Refusal::Invalid => ApiError::BadRequest { code, message },
                Refusal::Conflict => ApiError::Conflict { code, message },
                Refusal::Gone => ApiError::Gone { code, message },
            };
        }
        match error {
            DeskError::NotFound => ApiError::NotFound,
            DeskError::Store(e) => e.into(),
            other => ApiError::internal(other),
        }
    }
}

// --- shapes -------------------------------------------------------------------------------------

#[derive(Debug, Serialize, ToSchema)]
pub struct Label {
    pub it: String,
    pub en: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceRef {
    pub id: String,
    pub name: String,
}

/// An office's video desk now.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeskStatus {
    pub office_id: String,
    pub office_name: String,
    /// Whether the office has desk hours at all.
    pub has_desk: bool,
    pub open: bool,
    /// RFC 3339, UTC: when it opens next (closed only; within 14 days).
    pub opens_at: Option<String>,
    /// `opens_at` in words, Rome time.
    pub opens_label: Option<Label>,
    /// RFC 3339, UTC: the end of the current open stretch.
    pub closes_at: Option<String>,
    /// Citizens waiting now.
    pub waiting: u32,
    /// What someone joining now would wait, in minutes.
    pub estimated_wait_minutes: u32,
    /// Officials on duty at the desk now.
    pub on_duty: u32,
    /// The office's services, for the optional topic.
    pub services: Vec<ServiceRef>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct JoinBody {
    /// Name and surname as the official will see them (1–100 characters).
    pub name: String,
    /// Optional; needed for a callback.
    pub email: Option<String>,
    /// Optional, at most 200 characters.
    pub topic: Option<String>,
    /// Optional: one of the office's services.
    pub service_id: Option<String>,
    /// `it` (default) or `en`: the language of the emails.
    #[serde(default)]
    pub lang: String,
    /// Must stay empty (a field people do not see).
    #[serde(default)]
    pub website: String,
}

/// A citizen's place at the desk.
#[derive(Debug, Serialize, ToSchema)]
pub struct Ticket {
    pub id: String,
    /// Only in the answer that creates the ticket: send it back in `X-Walkin-Secret`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    pub office_id: String,
    pub office_name: String,
    pub name: String,
    /// waiting, serving, transferring, callback, done, left or abandoned
    pub state: String,
    /// 1-based, while waiting.
    pub position: Option<u32>,
    pub estimated_wait_minutes: Option<u32>,
    /// Whether the wait is long enough to offer a callback.
    pub callback_offered: bool,
    pub email_given: bool,
    /// Into the room, once an official took the citizen.
    pub join_url: Option<String>,
    /// RFC 3339, UTC.
    pub queued_at: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CallbackBody {
    /// Needed unless one was given when queueing.
    pub email: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QueueEntry {
    pub id: String,
    pub position: u32,
    pub name: String,
    pub topic: String,
    pub service_name: Option<String>,
    pub queued_at: String,
    pub email_given: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ServingEntry {
    pub id: String,
    pub name: String,
    pub topic: String,
    /// serving or transferring
    pub state: String,
    pub official_id: Option<String>,
    pub official_name: String,
    pub called_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OfficeQueue {
    pub office_id: String,
    pub office_name: String,
    pub has_desk: bool,
    pub open: bool,
    pub opens_at: Option<String>,
    pub estimated_wait_minutes: u32,
    pub waiting: Vec<QueueEntry>,
    pub callbacks: Vec<QueueEntry>,
    pub serving: Vec<ServingEntry>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MineEntry {
    pub id: String,
    pub name: String,
    pub topic: String,
    pub state: String,
    pub office_name: String,
    pub called_at: Option<String>,
    pub transfer_note: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TransferEntry {
    pub id: String,
    pub name: String,
    pub topic: String,
    pub from_name: String,
    pub office_name: String,
    pub note: String,
    pub since: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CallEntry {
    pub id: String,
    pub from_user: String,
    pub from_name: String,
    pub room: String,
    pub note: String,
    pub at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Colleague {
    pub user_id: String,
    pub name: String,
    pub offices: Vec<String>,
    /// on_site, remote or off
    pub location: String,
    pub in_call: bool,
    pub available: bool,
}

/// The official's desk: their offices' queues, what is theirs, and their colleagues.
#[derive(Debug, Serialize, ToSchema)]
pub struct Desk {
    pub offices: Vec<OfficeQueue>,
    /// Walk-ins this official serves now.
    pub mine: Vec<MineEntry>,
    /// Walk-ins handed to this official, to accept.
    pub transfers: Vec<TransferEntry>,
    /// Colleagues calling this official into a room.
    pub calls: Vec<CallEntry>,
    pub colleagues: Vec<Colleague>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Called {
    pub walkin: MineEntry,
    pub link: RoomLink,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct HandoffBody {
    /// The colleague (an active official, same or another office).
    pub to_user: String,
    /// For the colleague, at most 300 characters.
    #[serde(default)]
    pub note: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CallBody {
    pub to_user: String,
    /// A room the caller may host (`walkin-<id>` they serve); default: a new staff room.
    pub room: Option<String>,
    #[serde(default)]
    pub note: String,
}

// --- citizens -------------------------------------------------------------------------------------

async fn office(state: &AppState, id: &str) -> Result<Office, ApiError> {
    state.store.office(id).await?.ok_or(ApiError::NotFound)
}

fn status_of(office: &Office, desk: &DeskState, services: Vec<ServiceRef>) -> DeskStatus {
    let tz = sportello_backoffice::time::rome();
    DeskStatus {
        office_id: office.id.clone(),
        office_name: office.name.clone(),
        has_desk: desk.has_desk,
        open: desk.opening.open,
        opens_at: desk.opening.opens_at.map(|t| rfc3339(t.as_second())),
        opens_label: desk
            .opening
            .opens_at
            .map(|t| Label { it: opening_label(t, &tz, Lang::It), en: opening_label(t, &tz, Lang::En) }),
        closes_at: desk.opening.closes_at.map(|t| rfc3339(t.as_second())),
        waiting: desk.waiting,
        estimated_wait_minutes: if desk.opening.open || desk.waiting > 0 { desk.estimate(desk.waiting + 1) } else { 0 },
        on_duty: desk.opening.on_duty,
        services,
    }
}

/// Whether the office's video desk is open, when it opens next, and how long the queue is.
#[utoipa::path(get, path = "/api/public/offices/{id}/desk", tag = "desk",
    responses((status = 200, body = DeskStatus), (status = 404, body = ErrorBody)))]
async fn desk_status(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<DeskStatus>, ApiError> {
    let office = office(&state, &id).await?;
    let desk = use_case::desk_state(&state.store, &office, state.clock.now()).await?;
    let services = state
        .store
        .services()
        .await?
        .into_iter()
        .filter(|s| s.office_ids.contains(&office.id))
        .map(|s| ServiceRef { id: s.id, name: s.name })
        .collect();
    Ok(Json(status_of(&office, &desk, services)))
}

fn ticket_out(t: use_case::TicketState, secret: Option<String>) -> Ticket {
    Ticket {
        id: t.walkin.id.clone(),
        secret,
        office_id: t.office.id,
        office_name: t.office.name,
        name: t.walkin.name.clone(),
        state: t.walkin.state.as_str().to_owned(),
        position: t.position,
        estimated_wait_minutes: t.estimate_minutes,
        callback_offered: t.callback_offered,
        email_given: !t.walkin.email.is_empty(),
        join_url: t.join_url,
        queued_at: rfc3339(t.walkin.queued_at),
    }
}

/// Takes a place in the office's queue (no account). The answer holds the ticket's secret, once.
#[utoipa::path(post, path = "/api/public/offices/{id}/walkins", tag = "desk", request_body = JoinBody,
    responses((status = 201, body = Ticket), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "desk_closed or no_desk", body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn join(
    State(state): State<AppState>,
    Extension(limiter): Extension<Arc<RateLimiter>>,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
    body: JsonBody<JoinBody>,
) -> Result<Response, ApiError> {
    let now = state.clock.now();
    if !limiter.allow(ip, now, JOINS_PER_MINUTE) {
        return Err(ApiError::RateLimited);
    }
    let Json(body) = body?;
    if !body.website.trim().is_empty() {
        // A robot filled the field people do not see: nothing is queued, nothing is said.
        tracing::info!("honeypot filled; nobody queued");
        return Err(ApiError::NotFound);
    }
    let request = JoinRequest {
        name: body.name,
        email: body.email,
        topic: body.topic,
        service_id: body.service_id,
        lang: Lang::from_tag(&body.lang),
    };
    let (walkin, secret) = use_case::join(&state.store, &id, &request, now).await?;
    let ticket = use_case::ticket(&state.back_office, &walkin.id, &secret, now).await?;
    Ok((StatusCode::CREATED, Json(ticket_out(ticket, Some(secret)))).into_response())
}

fn secret(headers: &HeaderMap) -> &str {
    headers.get(SECRET_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default()
}

/// The citizen's ticket now: position, estimated wait, or the link into the room. Each call tells
/// the server the citizen is still there (the grace period restarts).
#[utoipa::path(get, path = "/api/public/walkins/{id}", tag = "desk",
    params(("X-Walkin-Secret" = String, Header, description = "The ticket's secret")),
    responses((status = 200, body = Ticket), (status = 404, body = ErrorBody)))]
async fn ticket(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Ticket>, ApiError> {
    let ticket = use_case::ticket(&state.back_office, &id, secret(&headers), state.clock.now()).await?;
    Ok(Json(ticket_out(ticket, None)))
}

/// Leaves the queue.
#[utoipa::path(post, path = "/api/public/walkins/{id}/leave", tag = "desk",
    params(("X-Walkin-Secret" = String, Header, description = "The ticket's secret")),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 410, body = ErrorBody)))]
async fn leave(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let walkin = use_case::by_ticket(&state.store, &id, secret(&headers)).await?;
    use_case::leave(&state.store, &walkin, state.clock.now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Asks to be called back by email instead of waiting.
#[utoipa::path(post, path = "/api/public/walkins/{id}/callback", tag = "desk", request_body = CallbackBody,
    params(("X-Walkin-Secret" = String, Header, description = "The ticket's secret")),
    responses((status = 200, body = Ticket), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 410, body = ErrorBody)))]
async fn callback_request(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: JsonBody<CallbackBody>,
) -> Result<Json<Ticket>, ApiError> {
    let Json(body) = body?;
    let now = state.clock.now();
    let walkin = use_case::by_ticket(&state.store, &id, secret(&headers)).await?;
    use_case::request_callback(&state.store, &walkin, body.email.as_deref(), now).await?;
    let ticket = use_case::ticket(&state.back_office, &id, secret(&headers), now).await?;
    Ok(Json(ticket_out(ticket, None)))
}

// --- officials ------------------------------------------------------------------------------------

/// The offices this staff member works in (administrators: all).
async fn scope(state: &AppState, staff: &Staff) -> Result<Vec<Office>, ApiError> {
    Ok(if staff.is_admin() {
        state.store.offices().await?
    } else {
        state.store.offices_of_user(&staff.user.id).await?
    })
}

async fn scoped_office(state: &AppState, staff: &Staff, id: &str) -> Result<Office, ApiError> {
    scope(state, staff).await?.into_iter().find(|o| o.id == id).ok_or(ApiError::NotFound)
}

fn host_link(state: &AppState, staff: &Staff, room: &str) -> Result<RoomLink, ApiError> {
    link(state, &host_claims(state, staff, room, HOST_LINK))
}

fn entry(w: &Walkin, position: u32, services: &HashMap<String, String>) -> QueueEntry {
    QueueEntry {
        id: w.id.clone(),
        position,
        name: w.name.clone(),
        topic: w.topic.clone(),
        service_name: w.service_id.as_ref().and_then(|s| services.get(s).cloned()),
        queued_at: rfc3339(w.queued_at),
        email_given: !w.email.is_empty(),
    }
}

fn mine(w: &Walkin, offices: &HashMap<String, String>) -> MineEntry {
    MineEntry {
        id: w.id.clone(),
        name: w.name.clone(),
        topic: w.topic.clone(),
        state: w.state.as_str().to_owned(),
        office_name: offices.get(&w.office_id).cloned().unwrap_or_default(),
        called_at: w.called_at.map(rfc3339),
        transfer_note: (w.state == WalkinState::Transferring).then(|| w.transfer_note.clone()),
    }
}

/// The official's desk: the queues of their offices, the walk-ins they serve or are handed,
/// colleagues calling them, and every colleague's presence.
#[utoipa::path(get, path = "/api/staff/desk", tag = "desk", responses((status = 200, body = Desk)))]
async fn staff_desk(State(state): State<AppState>, staff: Staff) -> Result<Json<Desk>, ApiError> {
    official(&staff)?;
    let now = state.clock.now();
    let store = &state.store;
    let offices = scope(&state, &staff).await?;
    let office_names: HashMap<String, String> = store.offices().await?.into_iter().map(|o| (o.id, o.name)).collect();
    let services: HashMap<String, String> = store.services().await?.into_iter().map(|s| (s.id, s.name)).collect();
    let users: HashMap<String, String> = store.users().await?.into_iter().map(|u| (u.id, u.display_name)).collect();
    let ids: Vec<String> = offices.iter().map(|o| o.id.clone()).collect();
    let live = [WalkinState::Waiting, WalkinState::Callback, WalkinState::Serving, WalkinState::Transferring];
    let all = store.walkins_in(&ids, &live).await?;
    let mut queues = Vec::with_capacity(offices.len());
    for office in &offices {
        let desk = use_case::desk_state(store, office, now).await?;
        let of_office = || all.iter().filter(|w| w.office_id == office.id);
        let seen_after = now - sportello_domain::desk::GRACE_SECS;
        let waiting: Vec<QueueEntry> = of_office()
            .filter(|w| w.state == WalkinState::Waiting && w.seen_at >= seen_after)
            .enumerate()
            .map(|(i, w)| entry(w, i as u32 + 1, &services))
            .collect();
        if !desk.has_desk && waiting.is_empty() {
            continue;
        }
        queues.push(OfficeQueue {
            office_id: office.id.clone(),
            office_name: office.name.clone(),
            has_desk: desk.has_desk,
            open: desk.opening.open,
            opens_at: desk.opening.opens_at.map(|t| rfc3339(t.as_second())),
            estimated_wait_minutes: desk.estimate(desk.waiting + 1),
            callbacks: of_office()
                .filter(|w| w.state == WalkinState::Callback)
                .map(|w| entry(w, 0, &services))
                .collect(),
            serving: of_office()
                .filter(|w| matches!(w.state, WalkinState::Serving | WalkinState::Transferring))
                .map(|w| ServingEntry {
                    id: w.id.clone(),
                    name: w.name.clone(),
                    topic: w.topic.clone(),
                    state: w.state.as_str().to_owned(),
                    official_id: w.official_id.clone(),
                    official_name: w.official_id.as_ref().and_then(|u| users.get(u).cloned()).unwrap_or_default(),
                    called_at: w.called_at.map(rfc3339),
                })
                .collect(),
            waiting,
        });
    }
    let me = staff.user.id.as_str();
    let (mut own, mut transfers) = (Vec::new(), Vec::new());
    for w in store.walkins_of_official(me).await? {
        if w.state == WalkinState::Transferring && w.transfer_to.as_deref() == Some(me) {
            transfers.push(TransferEntry {
                id: w.id.clone(),
                name: w.name.clone(),
                topic: w.topic.clone(),
                from_name: w.official_id.as_ref().and_then(|u| users.get(u).cloned()).unwrap_or_default(),
                office_name: office_names.get(&w.office_id).cloned().unwrap_or_default(),
                note: w.transfer_note.clone(),
                since: rfc3339(w.updated_at),
            });
        } else if w.official_id.as_deref() == Some(me) {
            own.push(mine(&w, &office_names));
        }
    }
    let calls = store
        .ringing_calls(me, now - CALL_RINGS)
        .await?
        .into_iter()
        .map(|c| CallEntry {
            from_name: users.get(&c.from_user).cloned().unwrap_or_default(),
            id: c.id,
            from_user: c.from_user,
            room: c.room,
            note: c.note,
            at: rfc3339(c.created_at),
        })
        .collect();
    let in_company: HashSet<String> =
        state.rooms.in_company().into_iter().filter_map(|i| i.strip_prefix("user-").map(str::to_owned)).collect();
    let colleagues = use_case::presence(store, &in_company, now)
        .await?
        .into_iter()
        .filter(|p| p.user.id != me)
        .map(|p| Colleague {
            user_id: p.user.id,
            name: p.user.display_name,
            offices: p.office_names,
            location: p.duty.location.as_str().to_owned(),
            in_call: p.in_call,
            available: p.available,
        })
        .collect();
    Ok(Json(Desk { offices: queues, mine: own, transfers, calls, colleagues }))
}

/// «Prossimo»: the next citizen of the office's queue, with a host link into their room. Two
/// officials pressing together get two different citizens.
#[utoipa::path(post, path = "/api/staff/offices/{id}/next", tag = "desk",
    responses((status = 200, body = Called), (status = 404, body = ErrorBody),
        (status = 409, description = "queue_empty", body = ErrorBody)))]
#[tracing::instrument(skip_all, fields(user = %staff.user.id, office = %id))]
async fn next(State(state): State<AppState>, staff: Staff, Path(id): Path<String>) -> Result<Json<Called>, ApiError> {
    official(&staff)?;
    let office = scoped_office(&state, &staff, &id).await?;
    let walkin = use_case::next(&state.store, &office.id, &staff.user.id, state.clock.now()).await?;
    let link = host_link(&state, &staff, &use_case::room_of(&walkin.id))?;
    let names = HashMap::from([(office.id.clone(), office.name.clone())]);
    Ok(Json(Called { walkin: mine(&walkin, &names), link }))
}

/// Hands the walk-in this official serves to a colleague with a note; the citizen stays in the room.
#[utoipa::path(post, path = "/api/staff/walkins/{id}/handoff", tag = "desk", request_body = HandoffBody,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 410, body = ErrorBody)))]
#[tracing::instrument(skip_all, fields(user = %staff.user.id, walkin = %id))]
async fn handoff(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
    body: JsonBody<HandoffBody>,
) -> Result<StatusCode, ApiError> {
    official(&staff)?;
    let Json(body) = body?;
    serving_or_404(&state, &staff, &id).await?;
    use_case::hand_off(&state.store, &id, &staff.user.id, body.to_user.trim(), &body.note, state.clock.now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The walk-in, if this official serves it or is handed it (404 otherwise: no probing).
async fn serving_or_404(state: &AppState, staff: &Staff, id: &str) -> Result<Walkin, ApiError> {
    let w = state.store.walkin(id).await?.ok_or(ApiError::NotFound)?;
    let me = Some(staff.user.id.as_str());
    if w.official_id.as_deref() == me || w.transfer_to.as_deref() == me { Ok(w) } else { Err(ApiError::NotFound) }
}

/// Accepts a walk-in handed to this official: they serve it now, with a host link into its room.
#[utoipa::path(post, path = "/api/staff/walkins/{id}/accept", tag = "desk",
    responses((status = 200, body = RoomLink), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 410, body = ErrorBody)))]
#[tracing::instrument(skip_all, fields(user = %staff.user.id, walkin = %id))]
async fn accept(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
) -> Result<Json<RoomLink>, ApiError> {
    official(&staff)?;
    serving_or_404(&state, &staff, &id).await?;
    let walkin = use_case::accept(&state.store, &id, &staff.user.id, state.clock.now()).await?;
    Ok(Json(host_link(&state, &staff, &use_case::room_of(&walkin.id))?))
}

/// A new host link into the room of a walk-in this official serves (after closing its tab).
#[utoipa::path(post, path = "/api/staff/walkins/{id}/join", tag = "desk",
    responses((status = 200, body = RoomLink), (status = 404, body = ErrorBody)))]
async fn rejoin(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
) -> Result<Json<RoomLink>, ApiError> {
    official(&staff)?;
    let w = serving_or_404(&state, &staff, &id).await?;
    if w.state != WalkinState::Serving || w.official_id.as_deref() != Some(staff.user.id.as_str()) {
        return Err(ApiError::NotFound);
    }
    Ok(Json(host_link(&state, &staff, &use_case::room_of(&w.id))?))
}

/// Calls back a citizen who asked for it: the citizen is emailed a link into the room, the official
/// gets a host link.
#[utoipa::path(post, path = "/api/staff/walkins/{id}/callback", tag = "desk",
    responses((status = 200, body = RoomLink), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 410, body = ErrorBody)))]
#[tracing::instrument(skip_all, fields(user = %staff.user.id, walkin = %id))]
async fn call_back(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
) -> Result<Json<RoomLink>, ApiError> {
    official(&staff)?;
    let w = state.store.walkin(&id).await?.ok_or(ApiError::NotFound)?;
    scoped_office(&state, &staff, &w.office_id).await?;
    let walkin = use_case::call_back(&state.back_office, &id, &staff.user.id, state.clock.now()).await?;
    Ok(Json(host_link(&state, &staff, &use_case::room_of(&walkin.id))?))
}

/// Closes the walk-in this official serves: done.
#[utoipa::path(post, path = "/api/staff/walkins/{id}/finish", tag = "desk",
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 410, body = ErrorBody)))]
#[tracing::instrument(skip_all, fields(user = %staff.user.id, walkin = %id))]
async fn finish(State(state): State<AppState>, staff: Staff, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    official(&staff)?;
    serving_or_404(&state, &staff, &id).await?;
    use_case::finish(&state.store, &id, &staff.user.id, state.clock.now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The citizen this official called never came into the room: abandoned.
#[utoipa::path(post, path = "/api/staff/walkins/{id}/absent", tag = "desk",
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 410, body = ErrorBody)))]
#[tracing::instrument(skip_all, fields(user = %staff.user.id, walkin = %id))]
async fn absent(State(state): State<AppState>, staff: Staff, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    official(&staff)?;
    serving_or_404(&state, &staff, &id).await?;
    use_case::absent(&state.store, &id, &staff.user.id, state.clock.now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Calls a colleague into a room: a new staff room, or the walk-in's room this official serves.
/// The caller gets their own host link; the colleague's desk rings.
#[utoipa::path(post, path = "/api/staff/calls", tag = "desk", request_body = CallBody,
    responses((status = 200, body = RoomLink), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
#[tracing::instrument(skip_all, fields(user = %staff.user.id))]
async fn call(
    State(state): State<AppState>,
    staff: Staff,
    body: JsonBody<CallBody>,
) -> Result<Json<RoomLink>, ApiError> {
    official(&staff)?;
    let Json(body) = body?;
    let to = body.to_user.trim();
    match state.store.user(to).await? {
        // Someone who can answer: the desk is officials' (and chairs').
        Some(u) if u.active && matches!(u.role, StaffRole::Official | StaffRole::Chair) && u.id != staff.user.id => {}
        _ => return Err(DeskError::NoColleague.into()),
    }
    let note: String = body.note.trim().chars().take(300).collect();
    let room = match body.room.as_deref().map(str::trim).filter(|r| !r.is_empty()) {
        None => format!("staff-{}", sportello_backoffice::secrets::new_secret().get(..16).unwrap_or("room")),
        Some(room) => {
            let id = room.strip_prefix("walkin-").ok_or(ApiError::NotFound)?;
            let w = serving_or_404(&state, &staff, id).await?;
            if w.state.is_over() {
                return Err(ApiError::NotFound);
            }
            room.to_owned()
        }
    };
    let c = state.store.create_call(&room, &staff.user.id, to, &note, state.clock.now()).await?;
    tracing::info!(call = %c.id, room = %room, to, "colleague called");
    Ok(Json(host_link(&state, &staff, &room)?))
}

/// Answers a call: a host link into the room one was called into.
#[utoipa::path(post, path = "/api/staff/calls/{id}/answer", tag = "desk",
    responses((status = 200, body = RoomLink), (status = 404, body = ErrorBody)))]
async fn answer(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
) -> Result<Json<RoomLink>, ApiError> {
    official(&staff)?;
    let c =
        state.store.settle_call(&id, &staff.user.id, sportello_store::CallState::Answered, state.clock.now()).await?;
    Ok(Json(host_link(&state, &staff, &c.room)?))
}

/// Declines a call.
#[utoipa::path(post, path = "/api/staff/calls/{id}/decline", tag = "desk",
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn decline(State(state): State<AppState>, staff: Staff, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    official(&staff)?;
    state.store.settle_call(&id, &staff.user.id, sportello_store::CallState::Declined, state.clock.now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

// --- figures --------------------------------------------------------------------------------------

#[derive(Debug, Deserialize, IntoParams)]
pub struct FiguresQuery {
    /// First day, YYYY-MM-DD (Rome); default: 30 days before `to`.
    pub from: Option<String>,
    /// Last day, YYYY-MM-DD (Rome); default: today.
    pub to: Option<String>,
    /// One office (default: every office this official works in).
    pub office: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SpreadView {
    pub count: u32,
    pub p50_seconds: Option<i64>,
    pub p90_seconds: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceTimeView {
    /// null: walk-ins without a service.
    pub service_id: Option<String>,
    pub service_name: String,
    pub count: u32,
    pub mean_seconds: i64,
    pub p50_seconds: i64,
}

/// One office's day: no personal data.
#[derive(Debug, Serialize, ToSchema)]
pub struct DayFiguresView {
    /// YYYY-MM-DD, Rome.
    pub date: String,
    pub office_id: String,
    pub office_name: String,
    /// Appointments: admitted − max(arrived, start).
    pub appointment_wait: SpreadView,
    /// Walk-ins: called − queued.
    pub walkin_wait: SpreadView,
    pub services: Vec<ServiceTimeView>,
    /// Completed + no-show.
    pub appointments_closed: u32,
    pub no_shows: u32,
    /// no_shows / appointments_closed; null without closed appointments.
    pub no_show_rate: Option<f64>,
    pub walkins_served: u32,
    pub walkins_abandoned: u32,
}

fn bad_range() -> ApiError {
    ApiError::bad_request(
        "invalid_range",
        (
            "Intervallo di date non valido (AAAA-MM-GG, al massimo un anno).",
            "Invalid date range (YYYY-MM-DD, at most one year).",
        ),
    )
}

async fn figures_of(state: &AppState, staff: &Staff, q: &FiguresQuery) -> Result<Vec<DayFiguresView>, ApiError> {
    official(staff)?;
    let tz = sportello_backoffice::time::rome();
    let today = tz.to_datetime(sportello_backoffice::time::ts(state.clock.now())).date();
    let day = |s: &Option<String>| -> Result<Option<jiff::civil::Date>, ApiError> {
        s.as_deref().map(|s| s.trim().parse::<jiff::civil::Date>().map_err(|_| bad_range())).transpose()
    };
    let last = day(&q.to)?.unwrap_or(today);
    let first = match day(&q.from)? {
        Some(d) => d,
        None => last.checked_sub(jiff::Span::new().days(30)).map_err(|_| bad_range())?,
    };
    if first > last || (last - first).get_days() > 366 {
        return Err(bad_range());
    }
    let offices = scope(state, staff).await?;
    let offices: Vec<Office> = match q.office.as_deref().filter(|o| !o.is_empty()) {
        Some(id) => vec![offices.into_iter().find(|o| o.id == id).ok_or(ApiError::NotFound)?],
        None => offices,
    };
    let ids: Vec<String> = offices.iter().map(|o| o.id.clone()).collect();
    let names: HashMap<String, String> = offices.into_iter().map(|o| (o.id, o.name)).collect();
    let services: HashMap<String, String> = state.store.services().await?.into_iter().map(|s| (s.id, s.name)).collect();
    let rows = use_case::figures(&state.store, &ids, first, last).await?;
    Ok(rows.into_iter().map(|d| day_view(d, &names, &services)).collect())
}

fn day_view(d: DayFigures, offices: &HashMap<String, String>, services: &HashMap<String, String>) -> DayFiguresView {
    let spread = |s: sportello_domain::desk::Spread| SpreadView {
        count: s.count,
        p50_seconds: s.p50_secs,
        p90_seconds: s.p90_secs,
    };
    DayFiguresView {
        date: d.date.to_string(),
        office_name: offices.get(&d.office_id).cloned().unwrap_or_default(),
        office_id: d.office_id,
        appointment_wait: spread(d.appointment_wait),
        walkin_wait: spread(d.walkin_wait),
        services: d
            .services
            .into_iter()
            .map(|s| ServiceTimeView {
                service_name: match &s.service_id {
                    Some(id) => services.get(id).cloned().unwrap_or_default(),
                    None => "Senza appuntamento".to_owned(),
                },
                service_id: s.service_id,
                count: s.count,
                mean_seconds: s.mean_secs,
                p50_seconds: s.p50_secs,
            })
            .collect(),
        appointments_closed: d.appointments_closed,
        no_shows: d.no_shows,
        no_show_rate: d.no_show_rate,
        walkins_served: d.walkins_served,
        walkins_abandoned: d.walkins_abandoned,
    }
}

/// The office figures per day and office: waits, service times per service, no-shows, walk-ins.
#[utoipa::path(get, path = "/api/staff/figures", tag = "desk", params(FiguresQuery),
    responses((status = 200, body = [DayFiguresView]), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn figures(
    State(state): State<AppState>,
    staff: Staff,
    Query(q): Query<FiguresQuery>,
) -> Result<Json<Vec<DayFiguresView>>, ApiError> {
    Ok(Json(figures_of(&state, &staff, &q).await?))
}

/// The same figures as CSV: one row per day, office and service (the day's totals repeated).
#[utoipa::path(get, path = "/api/staff/figures.csv", tag = "desk", params(FiguresQuery),
    responses((status = 200, content_type = "text/csv", body = String), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn figures_csv(
    State(state): State<AppState>,
    staff: Staff,
    Query(q): Query<FiguresQuery>,
) -> Result<Response, ApiError> {
    let rows = figures_of(&state, &staff, &q).await?;
    let body = csv(&rows);
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"sportello-dati.csv\""),
        ],
        body,
    )
        .into_response())
}

/// RFC 4180: every field quoted when it holds a comma, quote or line break; a field a
/// spreadsheet would run as a formula (`=`, `+`, `-`, `@`) starts with an apostrophe.
fn field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@']) { format!("'{s}") } else { s.to_owned() };
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s }
}

fn csv(rows: &[DayFiguresView]) -> String {
    let opt = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
    let mut out = String::from(
        "date,office_id,office_name,appointment_wait_count,appointment_wait_p50_s,appointment_wait_p90_s,\
         walkin_wait_count,walkin_wait_p50_s,walkin_wait_p90_s,appointments_closed,no_shows,no_show_rate,\
         walkins_served,walkins_abandoned,service_id,service_name,service_count,service_mean_s,service_p50_s\r\n",
    );
    for d in rows {
        let day = format!(
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            d.date,
            field(&d.office_id),
            field(&d.office_name),
            d.appointment_wait.count,
            opt(d.appointment_wait.p50_seconds),
            opt(d.appointment_wait.p90_seconds),
            d.walkin_wait.count,
            opt(d.walkin_wait.p50_seconds),
            opt(d.walkin_wait.p90_seconds),
            d.appointments_closed,
            d.no_shows,
            d.no_show_rate.map(|r| format!("{r:.4}")).unwrap_or_default(),
            d.walkins_served,
            d.walkins_abandoned,
        );
        if d.services.is_empty() {
            out.push_str(&format!("{day},,,,,\r\n"));
        }
        for s in &d.services {
            out.push_str(&format!(
                "{day},{},{},{},{},{}\r\n",
                field(s.service_id.as_deref().unwrap_or_default()),
                field(&s.service_name),
                s.count,
                s.mean_seconds,
                s.p50_seconds
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        assert_eq!(field("Anagrafe"), "Anagrafe");
        assert_eq!(field("Tributi, IMU"), "\"Tributi, IMU\"");
        assert_eq!(field("=SUM(A1)"), "'=SUM(A1)");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
