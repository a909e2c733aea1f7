//! Council sessions over REST: an administrator or the session's chair creates and edits a session,
//! its agenda and its members; each member gets a personal join link for room `council-<id>`
//! (identity `user-<id>`, `host` for the chair, `participant` for councillors); after (or during)
//! the session, the minutes draft as JSON and as a printable page (`/consiglio/{id}/verbale`).
//!
//! Who may see a session: administrators and its members. Who may change it: administrators and
//! its chair. Anyone else gets 404 (no probing of sessions).

use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use sportello_domain::council::{Entry, Minutes, Quorum, build_minutes};
use sportello_store::{CouncilBody, CouncilSession, CouncilStatus, NewCouncilSession, StaffRole};
use utoipa::{OpenApi, ToSchema};

use super::ApiError;
use super::auth::Staff;
use super::error::Path;
use crate::state::AppState;
use sportello_backoffice::token::{Claims, Role, join_link};
use sportello_rooms::council::{self, event_from_row, identity, room_name, vote_record};
use sportello_rooms::live::{CHAMBER_PARTICIPANT, chamber_room};

type JsonBody<T> = Result<Json<T>, axum::extract::rejection::JsonRejection>;

/// Join links work from when they are issued until this long after the scheduled start.
const LINK_AFTER_START: i64 = 12 * 3600;
/// The chamber encoder's WHIP token lasts a day: set up before the session, used through it.
const ENCODER_TOKEN_SECS: u64 = 24 * 3600;
/// The encoder's display name in the chamber room.
const CHAMBER_NAME: &str = "Aula consiliare";
const MAX_ITEMS: usize = 100;
const MAX_MEMBERS: usize = 200;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/council/sessions", get(list_sessions).post(create_session))
        .route("/council/sessions/{id}", get(get_session).put(update_session))
        .route("/council/sessions/{id}/agenda", put(set_agenda))
        .route("/council/sessions/{id}/members", put(set_members))
        .route("/council/sessions/{id}/links", post(member_links))
        .route("/council/sessions/{id}/join", post(my_link))
        .route("/council/sessions/{id}/minutes", get(minutes))
        .route("/council/sessions/{id}/encoder-token", post(encoder_token))
}

/// The printable minutes page (outside `/api`).
pub fn page_routes() -> Router<AppState> {
    Router::new().route("/consiglio/{id}/verbale", get(minutes_page))
}

#[derive(OpenApi)]
#[openapi(
    paths(list_sessions, create_session, get_session, update_session, set_agenda, set_members, member_links, my_link, minutes, encoder_token),
    components(schemas(SessionBody, SessionView, AgendaBody, AgendaItemIn, MembersBody, MemberLink, SessionDetail, ItemView, MemberView, EncoderToken)),
    tags((name = "council", description = "Council sessions: agenda, members, join links, minutes"))
)]
struct CouncilApi;

/// This module's part of `/api/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    CouncilApi::openapi()
}

// --- shapes -----------------------------------------------------------------------------------------

#[derive(Debug, Deserialize, ToSchema)]
pub struct SessionBody {
    pub title: String,
    #[schema(value_type = BodyName)]
    pub body: String,
    /// Unix seconds, up to the end of the year 9999.
    #[schema(minimum = 1, maximum = 253_402_300_799_i64)]
    pub scheduled_at: i64,
    pub chair_id: String,
    /// `majority` (default), `one_third`, `at_least:N`.
    #[schema(pattern = "^(majority|one_third|at_least:[0-9]+)$")]
    pub quorum: Option<String>,
    /// Councillors (user ids); only on creation.
    #[serde(default)]
    pub members: Vec<String>,
    /// Agenda titles in order; only on creation.
    #[serde(default)]
    pub agenda: Vec<String>,
    /// Only on update.
    #[schema(value_type = Option<StatusName>)]
    pub status: Option<String>,
}

/// `consiglio` (the council) or `giunta` (the executive).
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)] // documentation only: the handler parses the text into the store's `CouncilBody`
pub enum BodyName {
    Consiglio,
    Giunta,
}

/// A council session's status.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)] // documentation only: the handler parses the text into the store's `CouncilStatus`
pub enum StatusName {
    Scheduled,
    Live,
    Ended,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    pub id: String,
    pub title: String,
    pub body: String,
    pub scheduled_at: i64,
    pub chair_id: String,
    pub status: String,
    pub quorum: String,
    pub room: String,
}

impl From<&CouncilSession> for SessionView {
    fn from(s: &CouncilSession) -> Self {
        SessionView {
            id: s.id.clone(),
            title: s.title.clone(),
            body: s.body.as_str().into(),
            scheduled_at: s.scheduled_at,
            chair_id: s.chair_id.clone(),
            status: s.status.as_str().into(),
            quorum: s.quorum.clone(),
            room: room_name(&s.id),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ItemView {
    pub id: String,
    pub title: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MemberView {
    pub user_id: String,
    pub name: String,
    pub chair: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionDetail {
    pub session: SessionView,
    pub agenda: Vec<ItemView>,
    pub members: Vec<MemberView>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct AgendaItemIn {
    /// Keep an existing item (votes refer to it); omit for a new one.
    pub id: Option<String>,
    pub title: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct AgendaBody {
    pub items: Vec<AgendaItemIn>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct MembersBody {
    pub user_ids: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MemberLink {
    pub user_id: String,
    pub name: String,
    /// `host` for the chair, `participant` for councillors.
    pub role: String,
    pub url: String,
    pub expires_at: i64,
}

// --- checks -----------------------------------------------------------------------------------------

async fn visible(state: &AppState, staff: &Staff, id: &str) -> Result<CouncilSession, ApiError> {
    let session = state.store.council_session(id).await?.ok_or(ApiError::NotFound)?;
    if staff.is_admin() || state.store.council_members(id).await?.contains(&staff.user.id) {
        Ok(session)
    } else {
        Err(ApiError::NotFound)
    }
}

async fn managed(state: &AppState, staff: &Staff, id: &str) -> Result<CouncilSession, ApiError> {
    let session = visible(state, staff, id).await?;
    if staff.is_admin() || session.chair_id == staff.user.id { Ok(session) } else { Err(ApiError::Forbidden) }
}

fn text(value: &str, field: &'static str, max: usize) -> Result<String, ApiError> {
    let value = value.trim();
    if value.is_empty() || value.chars().count() > max || value.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            field,
            (
                format!("Campo «{field}» non valido (1–{max} caratteri)."),
                format!("Invalid field «{field}» (1–{max} characters)."),
            ),
        ));
    }
    Ok(value.to_owned())
}

/// The chair must be an active staff user with role chair (or an administrator).
async fn check_chair(state: &AppState, chair_id: &str) -> Result<(), ApiError> {
    match state.store.user(chair_id).await? {
        Some(u) if u.active && matches!(u.role, StaffRole::Chair | StaffRole::Admin) => Ok(()),
        _ => Err(ApiError::bad_request(
            "invalid_chair",
            ("Il presidente deve essere un utente con ruolo «chair».", "The chair must be a user with role «chair»."),
        )),
    }
}

/// Members are active users with role councillor or chair.
async fn check_members(state: &AppState, ids: &[String]) -> Result<(), ApiError> {
    if ids.len() > MAX_MEMBERS {
        return Err(ApiError::bad_request("invalid_members", ("Troppi componenti.", "Too many members.")));
    }
    for id in ids {
        match state.store.user(id).await? {
            Some(u) if u.active && matches!(u.role, StaffRole::Councillor | StaffRole::Chair) => {}
            _ => {
                return Err(ApiError::bad_request(
                    "invalid_members",
                    (
                        "I componenti devono essere utenti con ruolo «councillor» o «chair».",
                        "Members must be users with role «councillor» or «chair».",
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn parse_session(body: &SessionBody) -> Result<NewCouncilSession, ApiError> {
    let quorum = body.quorum.as_deref().unwrap_or("majority");
    let quorum: Quorum = quorum.parse().map_err(|_| {
        ApiError::bad_request(
            "invalid_quorum",
            ("Quorum: majority, one_third oppure at_least:N.", "Quorum: majority, one_third or at_least:N."),
        )
    })?;
    let kind: CouncilBody = body.body.parse().map_err(|_| {
        ApiError::bad_request(
            "invalid_body",
            ("Organo: consiglio oppure giunta.", "Body: consiglio (council) or giunta (executive)."),
        )
    })?;
    // Unix seconds a calendar can show (up to the year 9999): join links are valid until after it.
    if body.scheduled_at <= 0 || jiff::Timestamp::from_second(body.scheduled_at).is_err() {
        return Err(ApiError::bad_request("invalid_time", ("Data della seduta non valida.", "Invalid session date.")));
    }
    Ok(NewCouncilSession {
        title: text(&body.title, "title", 200)?,
        body: kind,
        scheduled_at: body.scheduled_at,
        chair_id: body.chair_id.clone(),
        quorum: quorum.to_text(),
    })
}

fn agenda_titles(
    titles: impl Iterator<Item = (Option<String>, String)>,
) -> Result<Vec<(Option<String>, String)>, ApiError> {
    let items: Vec<_> = titles.map(|(id, t)| Ok((id, text(&t, "agenda", 500)?))).collect::<Result<_, ApiError>>()?;
    if items.len() > MAX_ITEMS {
        return Err(ApiError::bad_request("agenda", ("Troppi punti all'ordine del giorno.", "Too many agenda items.")));
    }
    Ok(items)
}

async fn detail(state: &AppState, session: &CouncilSession) -> Result<SessionDetail, ApiError> {
    let agenda = state.store.council_items(&session.id).await?;
    let mut members = Vec::new();
    for user_id in state.store.council_members(&session.id).await? {
        let name = state.store.user(&user_id).await?.map(|u| u.display_name).unwrap_or_default();
        members.push(MemberView { chair: user_id == session.chair_id, user_id, name });
    }
    Ok(SessionDetail {
        session: session.into(),
        agenda: agenda.into_iter().map(|i| ItemView { id: i.id, title: i.title }).collect(),
        members,
    })
}

// --- handlers ---------------------------------------------------------------------------------------

/// Sessions this user may see, latest first.
#[utoipa::path(get, path = "/api/council/sessions", tag = "council",
    responses((status = 200, body = Vec<SessionView>), (status = 401, body = super::error::ErrorBody)))]
#[tracing::instrument(skip_all, fields(user = %staff.user.id))]
pub async fn list_sessions(State(state): State<AppState>, staff: Staff) -> Result<Json<Vec<SessionView>>, ApiError> {
    let mut out = Vec::new();
    for s in state.store.council_sessions().await? {
        if staff.is_admin() || state.store.council_members(&s.id).await?.contains(&staff.user.id) {
            out.push(SessionView::from(&s));
        }
    }
    Ok(Json(out))
}

#[utoipa::path(post, path = "/api/council/sessions", tag = "council", request_body = SessionBody,
    responses((status = 200, body = SessionDetail), (status = 400, body = super::error::ErrorBody),
              (status = 403, body = super::error::ErrorBody)))]
#[tracing::instrument(skip_all, fields(user = %staff.user.id))]
pub async fn create_session(
    State(state): State<AppState>,
    staff: Staff,
    body: JsonBody<SessionBody>,
) -> Result<Json<SessionDetail>, ApiError> {
    let Json(body) = body?;
    // An administrator creates any session; a chair only sessions they chair.
    staff.require(&[StaffRole::Chair])?;
    if !staff.is_admin() && body.chair_id != staff.user.id {
        return Err(ApiError::Forbidden);
    }
    let new = parse_session(&body)?;
    check_chair(&state, &new.chair_id).await?;
    check_members(&state, &body.members).await?;
    let agenda = agenda_titles(body.agenda.iter().map(|t| (None, t.clone())))?;
    let session = state.store.create_council_session(&new, state.clock.now()).await?;
    state.store.set_council_members(&session.id, &body.members).await?;
    state.store.set_council_items(&session.id, &agenda).await?;
    tracing::info!(session = %session.id, "council session created");
    Ok(Json(detail(&state, &session).await?))
}

#[utoipa::path(get, path = "/api/council/sessions/{id}", tag = "council",
    responses((status = 200, body = SessionDetail), (status = 404, body = super::error::ErrorBody)))]
#[tracing::instrument(skip_all, fields(user = %staff.user.id))]
pub async fn get_session(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
) -> Result<Json<SessionDetail>, ApiError> {
    let session = visible(&state, &staff, &id).await?;
    Ok(Json(detail(&state, &session).await?))
}

#[utoipa::path(put, path = "/api/council/sessions/{id}", tag = "council", request_body = SessionBody,
    responses((status = 200, body = SessionDetail), (status = 400, body = super::error::ErrorBody),
              (status = 403, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody)))]
#[tracing::instrument(skip_all, fields(user = %staff.user.id))]
pub async fn update_session(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
    body: JsonBody<SessionBody>,
) -> Result<Json<SessionDetail>, ApiError> {
    let current = managed(&state, &staff, &id).await?;
    let Json(body) = body?;
    let update = parse_session(&body)?;
    if update.chair_id != current.chair_id {
        check_chair(&state, &update.chair_id).await?;
    }
    let session = state.store.update_council_session(&id, &update).await?;
    if let Some(status) = body.status.as_deref() {
        let status: CouncilStatus = status.parse().map_err(|_| {
            ApiError::bad_request(
                "invalid_status",
                ("Stato: scheduled, live oppure ended.", "Status: scheduled, live or ended."),
            )
        })?;
        state.store.set_council_status(&id, status).await?;
    }
    let session = state.store.council_session(&session.id).await?.ok_or(ApiError::NotFound)?;
    Ok(Json(detail(&state, &session).await?))
}

#[utoipa::path(put, path = "/api/council/sessions/{id}/agenda", tag = "council", request_body = AgendaBody,
    responses((status = 200, body = SessionDetail), (status = 403, body = super::error::ErrorBody)))]
#[tracing::instrument(skip_all, fields(user = %staff.user.id))]
pub async fn set_agenda(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
    body: JsonBody<AgendaBody>,
) -> Result<Json<SessionDetail>, ApiError> {
    let session = managed(&state, &staff, &id).await?;
    let Json(body) = body?;
    let items = agenda_titles(body.items.into_iter().map(|i| (i.id, i.title)))?;
    state.store.set_council_items(&id, &items).await?;
    Ok(Json(detail(&state, &session).await?))
}

#[utoipa::path(put, path = "/api/council/sessions/{id}/members", tag = "council", request_body = MembersBody,
    responses((status = 200, body = SessionDetail), (status = 400, body = super::error::ErrorBody)))]
#[tracing::instrument(skip_all, fields(user = %staff.user.id))]
pub async fn set_members(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
    body: JsonBody<MembersBody>,
) -> Result<Json<SessionDetail>, ApiError> {
    let session = managed(&state, &staff, &id).await?;
    let Json(body) = body?;
    check_members(&state, &body.user_ids).await?;
    state.store.set_council_members(&id, &body.user_ids).await?;
    Ok(Json(detail(&state, &session).await?))
}

fn member_claims(state: &AppState, session: &CouncilSession, user_id: &str, name: &str) -> Claims {
    let now = state.clock.now();
    let until = (session.scheduled_at + LINK_AFTER_START).max(now + LINK_AFTER_START);
    let role = if user_id == session.chair_id { Role::Host } else { Role::Participant };
    let valid_for = Duration::from_secs(u64::try_from(until - now).unwrap_or(0));
    let now = u64::try_from(now).unwrap_or(0);
    Claims::new_at(now, &room_name(&session.id), &identity(user_id), name, role, valid_for)
}

fn member_link(state: &AppState, claims: &Claims, user_id: &str) -> Result<MemberLink, ApiError> {
    let token = state.tokens.issue(claims).map_err(ApiError::internal)?;
    Ok(MemberLink {
        user_id: user_id.to_owned(),
        name: claims.name.clone(),
        role: claims.role.as_str().into(),
        url: join_link(&state.config.public_url, &token),
        expires_at: i64::try_from(claims.exp).unwrap_or(i64::MAX),
    })
}

/// Every member's personal join link (to send them); administrators and the chair.
#[utoipa::path(post, path = "/api/council/sessions/{id}/links", tag = "council",
    responses((status = 200, body = Vec<MemberLink>), (status = 403, body = super::error::ErrorBody)))]
#[tracing::instrument(skip_all, fields(user = %staff.user.id))]
pub async fn member_links(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
) -> Result<Json<Vec<MemberLink>>, ApiError> {
    let session = managed(&state, &staff, &id).await?;
    let mut out = Vec::new();
    for m in detail(&state, &session).await?.members {
        out.push(member_link(&state, &member_claims(&state, &session, &m.user_id, &m.name), &m.user_id)?);
    }
    tracing::info!(session = %id, links = out.len(), "council join links issued");
    Ok(Json(out))
}

/// The caller's own join link (a member of the session).
#[utoipa::path(post, path = "/api/council/sessions/{id}/join", tag = "council",
    responses((status = 200, body = MemberLink), (status = 404, body = super::error::ErrorBody)))]
#[tracing::instrument(skip_all, fields(user = %staff.user.id))]
pub async fn my_link(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
) -> Result<Json<MemberLink>, ApiError> {
    let session = state.store.council_session(&id).await?.ok_or(ApiError::NotFound)?;
    if !state.store.council_members(&id).await?.contains(&staff.user.id) {
        return Err(ApiError::NotFound);
    }
    let claims = member_claims(&state, &session, &staff.user.id, &staff.user.display_name);
    Ok(Json(member_link(&state, &claims, &staff.user.id)?))
}

/// The chamber encoder's WHIP credentials (OBS: Service "WHIP", Server = `whip_url`, Bearer Token = `token`).
#[derive(Debug, Serialize, ToSchema)]
pub struct EncoderToken {
    pub token: String,
    /// Absolute: `<public_url>/api/live/{id}/whip`.
    pub whip_url: String,
    /// Unix seconds.
    pub expires_at: i64,
}

/// A WHIP bearer token for the chamber's encoder (room `chamber-<id>`, 24 h); administrators and
/// the chair. Anyone holding it can publish the chamber's picture: hand it to the encoder only.
#[utoipa::path(post, path = "/api/council/sessions/{id}/encoder-token", tag = "council",
    responses((status = 200, body = EncoderToken), (status = 403, body = super::error::ErrorBody),
              (status = 404, body = super::error::ErrorBody)))]
#[tracing::instrument(skip_all, fields(user = %staff.user.id))]
pub async fn encoder_token(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
) -> Result<Json<EncoderToken>, ApiError> {
    let session = managed(&state, &staff, &id).await?;
    let now = u64::try_from(state.clock.now()).unwrap_or(0);
    let claims = Claims::new_at(
        now,
        &chamber_room(&session.id),
        CHAMBER_PARTICIPANT,
        CHAMBER_NAME,
        Role::Participant,
        Duration::from_secs(ENCODER_TOKEN_SECS),
    );
    let token = state.tokens.issue(&claims).map_err(ApiError::internal)?;
    tracing::info!(session = %session.id, "chamber encoder token issued");
    Ok(Json(EncoderToken {
        token,
        whip_url: format!("{}/api/live/{}/whip", state.config.public_url.trim_end_matches('/'), session.id),
        expires_at: i64::try_from(claims.exp).unwrap_or(i64::MAX),
    }))
}

#[derive(Debug, Serialize)]
pub struct MinutesOut {
    pub session: SessionView,
    /// Until when open speeches and items were counted (Unix seconds).
    pub until: i64,
    pub minutes: Minutes,
}

async fn build(state: &AppState, session: &CouncilSession) -> Result<MinutesOut, ApiError> {
    let loaded = council::load(&state.store, &session.id).await?.ok_or(ApiError::NotFound)?;
    let rows = state.store.council_events(&session.id).await?;
    let log: Vec<Entry> = rows.iter().filter_map(|r| Some(Entry { at: r.at, event: event_from_row(r)? })).collect();
    let votes: Vec<_> = state.store.council_votes(&session.id).await?.iter().filter_map(vote_record).collect();
    let until = match session.status {
        CouncilStatus::Ended => log.last().map_or(session.scheduled_at, |e| e.at),
        _ => state.clock.now(),
    };
    let minutes = build_minutes(&loaded.members, &loaded.items, &log, &votes, until);
    Ok(MinutesOut { session: session.into(), until, minutes })
}

/// The minutes draft: attendance, roll calls, items with times, speakers with durations, votes.
#[utoipa::path(get, path = "/api/council/sessions/{id}/minutes", tag = "council",
    responses((status = 200, description = "The minutes draft", content_type = "application/json"),
              (status = 404, body = super::error::ErrorBody)))]
#[tracing::instrument(skip_all, fields(user = %staff.user.id))]
pub async fn minutes(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
) -> Result<Json<MinutesOut>, ApiError> {
    let session = visible(&state, &staff, &id).await?;
    Ok(Json(build(&state, &session).await?))
}

/// The printable minutes page (Italian; print it from the browser).
pub async fn minutes_page(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let session = visible(&state, &staff, &id).await?;
    let out = build(&state, &session).await?;
    let municipality = sportello_backoffice::settings::Municipality::load(&state.store).await?;
    let mut response = Html(render(&out, &municipality.name)).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

use crate::landing::escape as esc;

fn when(unix: i64) -> String {
    sportello_backoffice::time::local_text(unix, "%d/%m/%Y %H:%M:%S")
}

fn duration(seconds: i64) -> String {
    format!("{}:{:02}", seconds / 60, seconds % 60)
}

/// The draft minutes, a document of `municipality` to print.
fn render(out: &MinutesOut, municipality: &str) -> String {
    let m = &out.minutes;
    let name = |user: &str| {
        m.attendance.iter().find(|a| a.user == user).map(|a| a.name.clone()).unwrap_or_else(|| user.to_owned())
    };
    let mut h = String::new();
    h.push_str("<!doctype html><html lang=\"it\"><head><meta charset=\"utf-8\">");
    h.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
    h.push_str(&format!("<title>Bozza di verbale – {} – {}</title>", esc(&out.session.title), esc(municipality)));
    h.push_str("<link rel=\"stylesheet\" href=\"/web/room/council.css\"></head><body class=\"verbale\"><main>");
    h.push_str(&format!(
        "<p class=\"sub\">{}</p><h1>Bozza di verbale</h1><p class=\"sub\">{} – {} – seduta del {}</p>",
        esc(municipality),
        esc(&out.session.title),
        if out.session.body == "giunta" { "Giunta comunale" } else { "Consiglio comunale" },
        when(out.session.scheduled_at)
    ));
    h.push_str("<p class=\"note\">Documento di lavoro generato automaticamente: il verbale è redatto e approvato secondo il regolamento.</p>");
    h.push_str("<h2>Presenze</h2><table><caption>Componenti e presenze</caption><thead><tr><th scope=\"col\">Componente</th><th scope=\"col\">Appelli (presente)</th><th scope=\"col\">Ingressi</th><th scope=\"col\">Uscite</th><th scope=\"col\">Note</th></tr></thead><tbody>");
    for a in &m.attendance {
        let note = match (a.absent, a.late, a.chair) {
            (true, _, _) => "Assente",
            (false, true, _) => "Arrivo in ritardo",
            (false, false, true) => "Presidente",
            _ => "",
        };
        h.push_str(&format!(
            "<tr><th scope=\"row\">{}</th><td>{} / {}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&a.name),
            a.roll_calls_present,
            m.roll_calls.len(),
            a.arrivals.iter().map(|t| when(*t)).collect::<Vec<_>>().join(", "),
            a.departures.iter().map(|t| when(*t)).collect::<Vec<_>>().join(", "),
            note
        ));
    }
    h.push_str("</tbody></table>");
    h.push_str("<h2>Ordine del giorno</h2>");
    for (n, item) in m.items.iter().enumerate() {
        h.push_str(&format!("<section><h3>{}. {}</h3>", n + 1, esc(&item.title)));
        match (item.started_at, item.ended_at) {
            (Some(s), Some(e)) => h.push_str(&format!("<p>Trattato dalle {} alle {}.</p>", when(s), when(e))),
            _ => h.push_str("<p>Non trattato.</p>"),
        }
        if !item.speaking.is_empty() {
            h.push_str("<table><caption>Interventi</caption><thead><tr><th scope=\"col\">Consigliere</th><th scope=\"col\">Durata (min:s)</th></tr></thead><tbody>");
            for s in &item.speaking {
                h.push_str(&format!(
                    "<tr><th scope=\"row\">{}</th><td>{}</td></tr>",
                    esc(&s.name),
                    duration(s.seconds)
                ));
            }
            h.push_str("</tbody></table>");
        }
        for vote in m.votes.iter().filter(|v| v.item == item.id) {
            h.push_str(&format!(
                "<p><strong>Votazione {}</strong> ({} – {}): favorevoli {}, contrari {}, astenuti {} su {} aventi diritto. Esito: <strong>{}</strong>.</p>",
                if vote.secret { "a scrutinio segreto" } else { "palese" },
                when(vote.opened_at),
                when(vote.closed_at),
                vote.tally.favourable,
                vote.tally.contrary,
                vote.tally.abstained,
                vote.eligible.len(),
                if vote.outcome.as_str() == "approved" { "approvato" } else { "respinto" },
            ));
            if vote.secret {
                let voters: Vec<String> = vote.voters.iter().map(|u| esc(&name(u))).collect();
                h.push_str(&format!("<p>Hanno votato: {}.</p>", voters.join(", ")));
            } else {
                h.push_str("<ul>");
                for (user, choice) in &vote.by_name {
                    let choice = match choice.as_str() {
                        "favourable" => "favorevole",
                        "contrary" => "contrario",
                        _ => "astenuto",
                    };
                    h.push_str(&format!("<li>{}: {}</li>", esc(&name(user)), choice));
                }
                h.push_str("</ul>");
            }
        }
        h.push_str("</section>");
    }
    h.push_str("<h2>Tempi di intervento</h2><table><caption>Tempo di parola per persona</caption><thead><tr><th scope=\"col\">Consigliere</th><th scope=\"col\">Durata (min:s)</th></tr></thead><tbody>");
    for s in &m.speakers {
        h.push_str(&format!("<tr><th scope=\"row\">{}</th><td>{}</td></tr>", esc(&s.name), duration(s.seconds)));
    }
    h.push_str("</tbody></table></main></body></html>");
    h
}
