//! The officials' dashboard: their offices' appointments, who is waiting, admitting and declining,
//! joining an appointment's room as host, their own virtual office and invitation links.
//!
//! Scope rule (checked on every endpoint): an official sees and acts on the appointments of the
//! offices they work in — any of them, so a colleague can take over when the assigned one is absent
//! — and on their own virtual office; administrators on everything.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use sportello_domain::booking::{Lang, slot_label};
use sportello_store::{Appointment, StaffRole, Status};

use super::ApiError;
use super::auth::Staff;
use super::error::{Path, Query};
use crate::state::AppState;
use sportello_backoffice::booking::notify::{Notice, notify};
use sportello_backoffice::token::{Claims, Role, join_link};
use sportello_rooms::rooms::LobbyError;

type JsonBody<T> = Result<Json<T>, axum::extract::rejection::JsonRejection>;

/// The waiting room opens this long before an appointment and stays this long after it
/// (the citizen's join link has the same window).
const OPENS_BEFORE: i64 = 15 * 60;
const CLOSES_AFTER: i64 = 30 * 60;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/staff/appointments", get(list_appointments))
        .route("/staff/appointments/{id}", get(appointment_detail))
        .route("/staff/appointments/{id}/status", post(set_status))
        .route("/staff/appointments/{id}/join", post(join_appointment))
        .route("/staff/waiting", get(waiting))
        .route("/staff/rooms/{room}/admit", post(admit))
        .route("/staff/rooms/{room}/decline", post(decline))
        .route("/staff/virtual-office", post(virtual_office))
        .route("/staff/offices/{id}/virtual-office", post(office_virtual_office))
        .route("/staff/invitations", post(invite))
}

pub fn appointment_room(id: &str) -> String {
    format!("appt-{id}")
}

pub fn virtual_office_room(user_id: &str) -> String {
    format!("vo-{user_id}")
}

/// The office's shared virtual office: any official who works there hosts it.
pub fn office_room(office_id: &str) -> String {
    format!("office-{office_id}")
}

pub(super) fn official(staff: &Staff) -> Result<(), ApiError> {
    staff.require(&[StaffRole::Official, StaffRole::Chair])
}

/// The office ids this staff member may see (`None` = every office, for administrators).
async fn scope(state: &AppState, staff: &Staff) -> Result<Vec<String>, ApiError> {
    let offices = if staff.is_admin() {
        state.store.offices().await?
    } else {
        state.store.offices_of_user(&staff.user.id).await?
    };
    Ok(offices.into_iter().map(|o| o.id).collect())
}

/// The appointment, if this staff member may act on it; 404 otherwise (no probing of other offices).
async fn scoped_appointment(state: &AppState, staff: &Staff, id: &str) -> Result<Appointment, ApiError> {
    let appt = state.store.appointment(id).await?.ok_or(ApiError::NotFound)?;
    if staff.is_admin() || scope(state, staff).await?.contains(&appt.office_id) {
        Ok(appt)
    } else {
        Err(ApiError::NotFound)
    }
}

/// Whether this staff member may host `room`: their own virtual office, or an appointment room of
/// one of their offices.
async fn may_host(state: &AppState, staff: &Staff, room: &str) -> Result<Option<Appointment>, ApiError> {
    if room == virtual_office_room(&staff.user.id) {
        return Ok(None);
    }
    if let Some(id) = room.strip_prefix("appt-") {
        return scoped_appointment(state, staff, id).await.map(Some);
    }
    if let Some(id) = room.strip_prefix("office-")
        && (staff.is_admin() || scope(state, staff).await?.iter().any(|o| o == id))
    {
        return Ok(None);
    }
    if staff.is_admin() && room.starts_with("vo-") {
        return Ok(None);
    }
    Err(ApiError::NotFound)
}

use sportello_backoffice::time::rfc3339_utc as rfc3339;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AppointmentView {
    pub id: String,
    pub code: String,
    pub office_id: String,
    pub office_name: String,
    pub service_id: String,
    pub service_name: String,
    pub official_id: String,
    pub official_name: String,
    /// RFC 3339, UTC.
    pub start: String,
    pub end: String,
    /// video or in_person
    pub mode: String,
    /// confirmed, cancelled, completed or no_show
    pub status: String,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub details: String,
    /// RFC 3339 of the first admission, if the citizen came.
    pub citizen_joined_at: Option<String>,
    /// RFC 3339: first time the citizen was in the waiting room.
    pub citizen_arrived_at: Option<String>,
    /// RFC 3339: when the meeting ended (the room emptied after they met).
    pub meeting_ended_at: Option<String>,
    /// Who is in the lobby of this appointment's room now.
    pub waiting: Vec<WaitingView>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WaitingView {
    pub room: String,
    pub participant_id: String,
    pub name: String,
    /// RFC 3339, UTC: in the lobby since.
    pub since: String,
    pub appointment_id: Option<String>,
    /// The appointment this person came for, in words (`GET /staff/waiting` only).
    pub appointment: Option<WaitingAppointment>,
    /// The office of an office's shared virtual office (`office-<id>` rooms).
    pub office_name: Option<String>,
    /// Whether the staff member asking is in this room now: if not, admitting should also bring
    /// them in, so nobody is let into an empty room (`GET /staff/waiting` only).
    pub host_here: bool,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WaitingAppointment {
    pub office_name: String,
    pub service_name: String,
    /// RFC 3339, UTC.
    pub start: String,
    pub end: String,
    pub citizen: String,
}

async fn waiting_in(state: &AppState, room: &str) -> Vec<WaitingView> {
    state
        .anywhere
        .lobby(room)
        .await
        .into_iter()
        .map(|w| WaitingView {
            room: room.to_owned(),
            participant_id: w.id,
            name: w.name,
            since: rfc3339(w.since),
            appointment_id: w.appt,
            appointment: None,
            office_name: None,
            host_here: false,
        })
        .collect()
}

/// Names of offices, services and officials, looked up once per listing.
struct Names {
    offices: HashMap<String, String>,
    services: HashMap<String, String>,
    users: HashMap<String, String>,
}

impl Names {
    async fn load(state: &AppState) -> Result<Names, ApiError> {
        Ok(Names {
            offices: state.store.offices().await?.into_iter().map(|o| (o.id, o.name)).collect(),
            services: state.store.services().await?.into_iter().map(|s| (s.id, s.name)).collect(),
            users: state.store.users().await?.into_iter().map(|u| (u.id, u.display_name)).collect(),
        })
    }

    /// An audit row in words: who (by name) and what, with the slots as Rome dates and times.
    fn audit(&self, appt: &Appointment, e: sportello_store::AuditEntry) -> AuditView {
        let (actor_kind, actor_name) = match e.actor.as_str() {
            "citizen" => ("citizen", format!("{} {}", appt.first_name, appt.last_name).trim().to_owned()),
            "system" => ("system", String::new()),
            other => {
                let id = other.strip_prefix("user:").unwrap_or(other);
                ("staff", self.users.get(id).cloned().unwrap_or_else(|| id.to_owned()))
            }
        };
        let [summary_it, summary_en] = [Lang::It, Lang::En].map(|lang| self.audit_summary(&e.action, &e.detail, lang));
        AuditView {
            at: rfc3339(e.at),
            actor: e.actor,
            action: e.action,
            detail: e.detail,
            actor_kind: actor_kind.to_owned(),
            actor_name,
            summary_it,
            summary_en,
        }
    }

    /// `"<start>..<end> official <id>"` (how the store writes a slot) → "lunedì 7 dicembre 2026,
    /// ore 09:30–10:00 con Giulia Bianchi"; anything else is returned as it is.
    fn slot_words(&self, detail: &str, lang: Lang) -> String {
        let parsed = detail.split_once(" official ").and_then(|(times, official)| {
            let (start, end) = times.split_once("..")?;
            let start = jiff::Timestamp::from_second(start.trim().parse().ok()?).ok()?;
            let end = jiff::Timestamp::from_second(end.trim().parse().ok()?).ok()?;
            Some((start, end, official.trim()))
        });
        let Some((start, end, official)) = parsed else { return detail.to_owned() };
        let tz = sportello_backoffice::time::rome();
        let end = end.to_zoned(tz.clone()).strftime("%H:%M").to_string();
        let who = self.users.get(official).cloned().unwrap_or_default();
        let with = match lang {
            Lang::It if !who.is_empty() => format!(" con {who}"),
            Lang::En if !who.is_empty() => format!(" with {who}"),
            _ => String::new(),
        };
        format!("{}–{end}{with}", slot_label(start, &tz, lang))
    }

    fn audit_summary(&self, action: &str, detail: &str, lang: Lang) -> String {
        let it = lang == Lang::It;
        let note = |it_label: &str, en_label: &str| {
            let label = if it { it_label } else { en_label };
            // Notes the server itself writes, in words; an official's own note is kept as typed.
            let detail = match (detail, it) {
                ("room ended", true) | ("ended", true) => "la stanza si è chiusa",
                ("room ended", false) | ("ended", false) => "the room closed",
                ("the citizen did not join", true) => "il cittadino non si è collegato",
                (other, _) => other,
            };
            if detail.is_empty() { label.to_owned() } else { format!("{label}: {detail}") }
        };
        match action {
            "booked" => {
                let slot = self.slot_words(detail, lang);
                if it { format!("Prenotato per {slot}") } else { format!("Booked for {slot}") }
            }
            "rescheduled" => {
                let (from, to) = detail.split_once(" -> ").unwrap_or((detail, ""));
                let (from, to) = (self.slot_words(from, lang), self.slot_words(to, lang));
                if it { format!("Spostato da {from} a {to}") } else { format!("Moved from {from} to {to}") }
            }
            "cancelled" => note("Annullato", "Cancelled"),
            "completed" => note("Concluso", "Completed"),
            "no_show" => note("Assente: il cittadino non si è presentato", "No-show: the citizen did not come"),
            "reminded" => (if it { "Promemoria inviato per email" } else { "Reminder emailed" }).to_owned(),
            "joined" => {
                (if it { "Il cittadino è entrato nella stanza" } else { "The citizen entered the room" }).to_owned()
            }
            "rated" => {
                if it {
                    format!("Valutazione: {detail} su 5")
                } else {
                    format!("Rating: {detail} out of 5")
                }
            }
            other => note(other, other),
        }
    }

    async fn view(&self, state: &AppState, a: Appointment) -> AppointmentView {
        let waiting = waiting_in(state, &appointment_room(&a.id)).await;
        let name = |map: &HashMap<String, String>, id: &str| map.get(id).cloned().unwrap_or_default();
        AppointmentView {
            office_name: name(&self.offices, &a.office_id),
            service_name: name(&self.services, &a.service_id),
            official_name: name(&self.users, &a.official_id),
            start: rfc3339(a.starts_at),
            end: rfc3339(a.ends_at),
            mode: a.mode.as_str().to_owned(),
            status: a.status.as_str().to_owned(),
            citizen_joined_at: a.citizen_joined_at.map(rfc3339),
            citizen_arrived_at: a.citizen_arrived_at.map(rfc3339),
            meeting_ended_at: a.meeting_ended_at.map(rfc3339),
            waiting,
            id: a.id,
            code: a.code,
            office_id: a.office_id,
            service_id: a.service_id,
            official_id: a.official_id,
            first_name: a.first_name,
            last_name: a.last_name,
            email: a.email,
            details: a.details,
        }
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct Range {
    /// Unix seconds; default: 24 hours ago.
    pub from: Option<i64>,
    /// Unix seconds; default: 30 days after `from`.
    pub to: Option<i64>,
}

/// Appointments of the offices this official works in (administrators: all), by start.
#[utoipa::path(get, path = "/api/staff/appointments", tag = "staff", params(Range),
    responses((status = 200, body = [AppointmentView]), (status = 401, body = super::error::ErrorBody)))]
pub async fn list_appointments(
    State(state): State<AppState>,
    staff: Staff,
    Query(range): Query<Range>,
) -> Result<Json<Vec<AppointmentView>>, ApiError> {
    official(&staff)?;
    let from = range.from.unwrap_or(state.clock.now() - 86_400);
    let to = range.to.unwrap_or(from.saturating_add(30 * 86_400));
    if to <= from || to.saturating_sub(from) > 366 * 86_400 {
        return Err(ApiError::bad_request(
            "invalid_range",
            ("Intervallo di date non valido (al massimo un anno).", "Invalid date range (at most one year)."),
        ));
    }
    let offices = scope(&state, &staff).await?;
    let appointments = state.store.appointments_of_offices(&offices, from, to).await?;
    let names = Names::load(&state).await?;
    let mut views = Vec::with_capacity(appointments.len());
    for a in appointments {
        views.push(names.view(&state, a).await);
    }
    Ok(Json(views))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditView {
    pub at: String,
    /// As stored: `citizen`, `system` or `user:<id>`.
    pub actor: String,
    pub action: String,
    /// As stored (instants as Unix seconds, ids); `summary_it`/`summary_en` say it in words.
    pub detail: String,
    /// `citizen`, `staff` or `system`.
    pub actor_kind: String,
    /// The citizen's or the staff member's name (empty for the system).
    pub actor_name: String,
    /// What happened, in words, with dates and times in Rome time.
    pub summary_it: String,
    pub summary_en: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AppointmentDetail {
    pub appointment: AppointmentView,
    /// Every change, oldest first.
    pub audit: Vec<AuditView>,
}

#[utoipa::path(get, path = "/api/staff/appointments/{id}", tag = "staff",
    responses((status = 200, body = AppointmentDetail), (status = 404, body = super::error::ErrorBody)))]
pub async fn appointment_detail(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
) -> Result<Json<AppointmentDetail>, ApiError> {
    official(&staff)?;
    let appt = scoped_appointment(&state, &staff, &id).await?;
    let names = Names::load(&state).await?;
    let audit = state.store.audit(&id).await?.into_iter().map(|e| names.audit(&appt, e)).collect();
    Ok(Json(AppointmentDetail { appointment: names.view(&state, appt).await, audit }))
}

/// How an official closes an appointment.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)] // documentation only: the handler parses the text into the store's `Status`
pub enum ClosingStatus {
    Completed,
    NoShow,
    Cancelled,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct StatusBody {
    #[schema(value_type = ClosingStatus)]
    pub status: String,
    #[serde(default)]
    pub note: String,
}

fn invalid_status() -> ApiError {
    ApiError::bad_request(
        "invalid_status",
        ("Stato non valido: completed, no_show o cancelled.", "Invalid status: completed, no_show or cancelled."),
    )
}

/// Closes a confirmed appointment by hand: completed, no-show or cancelled; or corrects a no-show
/// to completed (audited).
#[utoipa::path(post, path = "/api/staff/appointments/{id}/status", tag = "staff", request_body = StatusBody,
    responses((status = 200, body = AppointmentView), (status = 409, body = super::error::ErrorBody)))]
#[tracing::instrument(skip_all, fields(user = %staff.user.id, appointment = %id))]
pub async fn set_status(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
    body: JsonBody<StatusBody>,
) -> Result<Json<AppointmentView>, ApiError> {
    official(&staff)?;
    let Json(body) = body?;
    let to: Status = body.status.parse().map_err(|_| invalid_status())?;
    if to == Status::Confirmed {
        return Err(invalid_status());
    }
    scoped_appointment(&state, &staff, &id).await?;
    let note: String = body.note.trim().chars().take(500).collect();
    let now = state.clock.now();
    // A no-show the server marked by itself can be corrected: the citizen did come.
    let from: &[Status] =
        if to == Status::Completed { &[Status::Confirmed, Status::NoShow] } else { &[Status::Confirmed] };
    let appt = state.store.set_status(&id, from, to, &staff.actor(), &note, now).await?;
    tracing::info!(status = %to, "appointment closed by staff");
    match to {
        Status::Cancelled => metrics::counter!("sportello_booking_cancellations_total", "by" => "staff").increment(1),
        Status::NoShow => metrics::counter!("sportello_booking_no_shows_total", "by" => "staff").increment(1),
        _ => {}
    }
    // A citizen whose appointment the office cancels is told, as when they cancel themselves.
    if to == Status::Cancelled
        && let (Some(office), Some(service)) =
            (state.store.office(&appt.office_id).await?, state.store.service(&appt.service_id).await?)
    {
        notify(&state.back_office, Notice::Cancellation, &appt, &office, &service, now).await?;
    }
    Ok(Json(Names::load(&state).await?.view(&state, appt).await))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RoomLink {
    pub room: String,
    /// Open it to enter the room (as host for the official, as guest for invitees).
    pub url: String,
    /// Unix seconds after which the link stops working.
    pub expires_at: i64,
}

pub(super) fn link(state: &AppState, claims: &Claims) -> Result<RoomLink, ApiError> {
    let token = state.tokens.issue(claims).map_err(ApiError::internal)?;
    Ok(RoomLink {
        room: claims.room.clone(),
        url: join_link(&state.config.public_url, &token),
        expires_at: claims.exp as i64,
    })
}

pub(super) fn host_claims(state: &AppState, staff: &Staff, room: &str, valid_for: Duration) -> Claims {
    let now = u64::try_from(state.clock.now()).unwrap_or(0);
    Claims::new_at(now, room, &format!("user-{}", staff.user.id), &staff.user.display_name, Role::Host, valid_for)
}

/// A host link into the appointment's room (any official of its office).
#[utoipa::path(post, path = "/api/staff/appointments/{id}/join", tag = "staff",
    responses((status = 200, body = RoomLink), (status = 409, body = super::error::ErrorBody)))]
#[tracing::instrument(skip_all, fields(user = %staff.user.id, appointment = %id))]
pub async fn join_appointment(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
) -> Result<Json<RoomLink>, ApiError> {
    official(&staff)?;
    let appt = scoped_appointment(&state, &staff, &id).await?;
    if appt.status != Status::Confirmed {
        return Err(ApiError::conflict(
            "appointment_closed",
            ("L'appuntamento è annullato o già concluso.", "The appointment is cancelled or already over."),
        ));
    }
    let now = state.clock.now();
    let until = (appt.ends_at + 2 * 3600).max(now + 3600);
    let mut claims =
        host_claims(&state, &staff, &appointment_room(&appt.id), Duration::from_secs((until - now) as u64));
    claims.appt = Some(appt.id.clone());
    Ok(Json(link(&state, &claims)?))
}

/// Everyone waiting now in the rooms this official may host: today's appointments of their offices
/// and their own virtual office. Oldest first.
#[utoipa::path(get, path = "/api/staff/waiting", tag = "staff", responses((status = 200, body = [WaitingView])))]
pub async fn waiting(State(state): State<AppState>, staff: Staff) -> Result<Json<Vec<WaitingView>>, ApiError> {
    official(&staff)?;
    let now = state.clock.now();
    let offices = scope(&state, &staff).await?;
    let appointments: HashMap<String, Appointment> = state
        .store
        .appointments_of_offices(&offices, now - CLOSES_AFTER - 4 * 3600, now + OPENS_BEFORE)
        .await?
        .into_iter()
        .filter(|a| a.status == Status::Confirmed)
        .map(|a| (appointment_room(&a.id), a))
        .collect();
    let mut rooms: Vec<String> = appointments.keys().cloned().collect();
    rooms.push(virtual_office_room(&staff.user.id));
    rooms.extend(offices.iter().map(|o| office_room(o)));
    let mut seen = HashSet::new();
    let mut out: Vec<WaitingView> = Vec::new();
    for room in rooms.iter().filter(|r| seen.insert(r.as_str())) {
        out.extend(waiting_in(&state, room).await);
    }
    if !out.is_empty() {
        let names = Names::load(&state).await?;
        let me = format!("user-{}", staff.user.id);
        let name = |map: &HashMap<String, String>, id: &str| map.get(id).cloned().unwrap_or_default();
        for w in &mut out {
            w.host_here = state.anywhere.is_admitted(&w.room, &me).await;
            w.office_name = w.room.strip_prefix("office-").map(|id| name(&names.offices, id));
            w.appointment = appointments.get(&w.room).map(|a| WaitingAppointment {
                office_name: name(&names.offices, &a.office_id),
                service_name: name(&names.services, &a.service_id),
                start: rfc3339(a.starts_at),
                end: rfc3339(a.ends_at),
                citizen: format!("{} {}", a.first_name, a.last_name).trim().to_owned(),
            });
        }
    }
    out.sort_by(|a, b| a.since.cmp(&b.since));
    Ok(Json(out))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ParticipantBody {
    pub participant_id: String,
}

fn lobby_error(e: LobbyError) -> ApiError {
    match e {
        LobbyError::RoomNotOpen | LobbyError::NotWaiting => ApiError::gone(
            "not_waiting",
            ("La persona non è più in sala d'attesa.", "The person is no longer waiting."),
        ),
        other => ApiError::internal(other),
    }
}

/// Admits a waiting participant into the room (as a host inside the room would).
#[utoipa::path(post, path = "/api/staff/rooms/{room}/admit", tag = "staff", request_body = ParticipantBody,
    responses((status = 204), (status = 410, body = super::error::ErrorBody)))]
pub async fn admit(
    State(state): State<AppState>,
    staff: Staff,
    Path(room): Path<String>,
    body: JsonBody<ParticipantBody>,
) -> Result<axum::http::StatusCode, ApiError> {
    decide(&state, &staff, &room, body, true).await
}

/// Turns a waiting participant away.
#[utoipa::path(post, path = "/api/staff/rooms/{room}/decline", tag = "staff", request_body = ParticipantBody,
    responses((status = 204), (status = 410, body = super::error::ErrorBody)))]
pub async fn decline(
    State(state): State<AppState>,
    staff: Staff,
    Path(room): Path<String>,
    body: JsonBody<ParticipantBody>,
) -> Result<axum::http::StatusCode, ApiError> {
    decide(&state, &staff, &room, body, false).await
}

#[tracing::instrument(skip_all, fields(user = %staff.user.id, room = %room, admit))]
async fn decide(
    state: &AppState,
    staff: &Staff,
    room: &str,
    body: JsonBody<ParticipantBody>,
    admit: bool,
) -> Result<axum::http::StatusCode, ApiError> {
    official(staff)?;
    let Json(body) = body?;
    may_host(state, staff, room).await?;
    state.anywhere.decide(room, &body.participant_id, admit).await.map_err(lobby_error)?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// A host link into this official's own virtual office (ad-hoc meetings), valid for 12 hours.
#[utoipa::path(post, path = "/api/staff/virtual-office", tag = "staff", responses((status = 200, body = RoomLink)))]
pub async fn virtual_office(State(state): State<AppState>, staff: Staff) -> Result<Json<RoomLink>, ApiError> {
    official(&staff)?;
    let claims = host_claims(&state, &staff, &virtual_office_room(&staff.user.id), Duration::from_secs(12 * 3600));
    Ok(Json(link(&state, &claims)?))
}

/// A host link into the office's shared virtual office (for officials who work there), 12 hours.
#[utoipa::path(post, path = "/api/staff/offices/{id}/virtual-office", tag = "staff",
    responses((status = 200, body = RoomLink), (status = 404, body = super::error::ErrorBody)))]
pub async fn office_virtual_office(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
) -> Result<Json<RoomLink>, ApiError> {
    official(&staff)?;
    let room = office_room(&id);
    may_host(&state, &staff, &room).await?;
    if state.store.office(&id).await?.is_none() {
        return Err(ApiError::NotFound);
    }
    let claims = host_claims(&state, &staff, &room, Duration::from_secs(12 * 3600));
    Ok(Json(link(&state, &claims)?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct InvitationBody {
    /// The room: the official's virtual office (default), their office's (`office-<id>`) or an
    /// appointment room of their office.
    pub room: Option<String>,
    /// The guest's name as others will see it (colleague, technician, external person).
    pub name: String,
    /// 1–72, default 24.
    #[schema(minimum = 1, maximum = 72)]
    pub valid_hours: Option<u64>,
}

/// A personal guest link for someone else (they wait in the lobby until admitted).
#[utoipa::path(post, path = "/api/staff/invitations", tag = "staff", request_body = InvitationBody,
    responses((status = 200, body = RoomLink), (status = 400, body = super::error::ErrorBody),
        (status = 404, description = "A room this official may not host", body = super::error::ErrorBody)))]
#[tracing::instrument(skip_all, fields(user = %staff.user.id))]
pub async fn invite(
    State(state): State<AppState>,
    staff: Staff,
    body: JsonBody<InvitationBody>,
) -> Result<Json<RoomLink>, ApiError> {
    official(&staff)?;
    let Json(body) = body?;
    let room = body.room.unwrap_or_else(|| virtual_office_room(&staff.user.id));
    let appt = may_host(&state, &staff, &room).await?;
    let Some(name) = sportello_domain::clean_display_name(&body.name, 100) else {
        return Err(ApiError::bad_request(
            "invalid_name",
            (
                "Indica il nome dell'invitato (al massimo 100 caratteri).",
                "Enter the guest's name (at most 100 characters).",
            ),
        ));
    };
    let hours = body.valid_hours.unwrap_or(24);
    if !(1..=72).contains(&hours) {
        return Err(ApiError::bad_request(
            "invalid_validity",
            ("La validità va da 1 a 72 ore.", "The validity is 1 to 72 hours."),
        ));
    }
    let now = u64::try_from(state.clock.now()).unwrap_or(0);
    let identity = format!("guest-{}", &sportello_backoffice::secrets::new_secret()[..12]);
    let mut claims = Claims::new_at(now, &room, &identity, &name, Role::Participant, Duration::from_secs(hours * 3600));
    claims.wait = true;
    // No `appt` claim: admitting a guest must not count as the citizen having come.
    let _ = appt;
    tracing::info!(room = %room, "invitation issued");
    Ok(Json(link(&state, &claims)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_details_read_in_words_and_rome_time() {
        let names = Names {
            offices: HashMap::new(),
            services: HashMap::new(),
            users: [("u1".to_owned(), "Giulia Bianchi".to_owned()), ("u2".to_owned(), "Paolo Verdi".to_owned())].into(),
        };
        // 2026-12-07 (a Monday) 09:30–10:00 and 2026-12-09 15:00–15:30 in Rome (UTC+1).
        let (a, b) = (1_796_632_200, 1_796_824_800);
        let moved = format!("{a}..{} official u1 -> {b}..{} official u2", a + 1800, b + 1800);
        assert_eq!(
            names.audit_summary("rescheduled", &moved, Lang::It),
            "Spostato da lunedì 7 dicembre 2026, ore 09:30–10:00 con Giulia Bianchi \
             a mercoledì 9 dicembre 2026, ore 15:00–15:30 con Paolo Verdi"
        );
        assert_eq!(
            names.audit_summary("booked", &format!("{a}..{} official u1", a + 1800), Lang::En),
            "Booked for Monday 7 December 2026, 09:30–10:00 with Giulia Bianchi"
        );
        assert_eq!(names.audit_summary("completed", "room ended", Lang::It), "Concluso: la stanza si è chiusa");
        assert_eq!(names.audit_summary("no_show", "", Lang::En), "No-show: the citizen did not come");
        assert_eq!(names.audit_summary("rated", "4", Lang::It), "Valutazione: 4 su 5");
    }
}
