//! The citizens' booking API, no account: services, offices, free slots, booking, and managing a
//! booking by code + secret (summary, cancel, reschedule, `.ics`, rating). See `docs/booking.md`.
//!
//! Every decision by time uses `state.clock`. A booking's secret is drawn here, mailed in the
//! manage link and stored only as its SHA-256; it arrives in the `X-Booking-Secret` header or the
//! JSON body and is never logged. A wrong secret and an unknown code give the same 404.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Extension, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use sportello_domain::booking::{Lang, YearMonth, months_with_slots};
use sportello_domain::{
    MeetingMode, RequesterError, RequesterInput, Slot, booking_code, normalize_code, slot_label, validate_requester,
};
use sportello_store::{
    Appointment, Mode, Modes, NewAppointment, Office, Reschedule, Service, Status, StoreError, User,
};
use tracing::Instrument;
use utoipa::{IntoParams, OpenApi, ToSchema};

use super::ApiError;
use super::offer::{domain_modes, offer};
use crate::client_addr::AddressKey;
use crate::client_addr::ClientIp;
use crate::state::AppState;
use sportello_backoffice::booking_mail::{BookingMail, appointment_ics};
use sportello_backoffice::links;
use sportello_backoffice::settings::{SETTING_MAX_ACTIVE, SETTING_RATE_LIMIT, SETTING_RATE_LIMIT_DAY};
use sportello_backoffice::time::{rome, ts};

const DEFAULT_RATE_LIMIT: u32 = 10;
const DEFAULT_RATE_LIMIT_DAY: u32 = 30;
const DEFAULT_MAX_ACTIVE: u32 = 3;
const SECRET_HEADER: &str = "x-booking-secret";
const COMMENT_MAX_CHARS: usize = 1000;
/// Attempts to draw an unused booking code (40 bits: a collision is already rare).
const CODE_ATTEMPTS: usize = 5;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/public/services", get(services))
        .route("/public/offices", get(offices))
        .route("/public/offices/{id}/slots", get(slots))
        .route("/public/offices/{id}/months", get(months))
        .route("/public/appointments", post(book))
        .route("/public/appointments/{code}", get(summary))
        .route("/public/appointments/{code}/cancel", post(cancel))
        .route("/public/appointments/{code}/reschedule", post(reschedule))
        .route("/public/appointments/{code}/ics", get(ics))
        .route("/public/appointments/{code}/rating", post(rate))
        // One set of limiters per router, i.e. per server (tests run several servers in one process).
        .layer(Extension(Arc::new(BookingLimits { minute: RateLimiter::per(60), day: RateLimiter::per(86_400) })))
}

#[derive(OpenApi)]
#[openapi(
    paths(services, offices, slots, months, book, summary, cancel, reschedule, ics, rate),
    components(schemas(
        ServiceOut,
        OfficeOut,
        SlotOut,
        SlotsOut,
        MonthOut,
        MonthsOut,
        BookingBody,
        BookingOut,
        RescheduleBody,
        SecretBody,
        RatingBody
    )),
    tags((name = "public", description = "Citizens' booking, no account"))
)]
pub struct PublicApi;

/// This module's part of `/api/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    PublicApi::openapi()
}

// --- shapes -----------------------------------------------------------------------------------------

#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceOut {
    pub id: String,
    pub name: String,
    pub description: String,
    pub duration_minutes: i64,
    /// "Cosa serve": documents and information to have at hand.
    pub what_to_bring: String,
    /// `video`, `in_person`.
    pub modes: Vec<String>,
    pub office_ids: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OfficeOut {
    pub id: String,
    pub name: String,
    pub description: String,
    pub address: String,
    pub email: String,
    pub phone: String,
    /// 7 arrays, Monday first, of "HH:MM-HH:MM".
    pub opening_hours: Vec<Vec<String>>,
    pub service_ids: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SlotOut {
    /// RFC 3339 with the Europe/Rome offset.
    pub start: String,
    pub end: String,
    /// "giovedì 11 marzo 2027, ore 10:00".
    pub label_it: String,
    pub label_en: String,
    pub modes: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SlotsOut {
    pub office_id: String,
    pub service_id: String,
    pub month: Option<String>,
    pub slots: Vec<SlotOut>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MonthOut {
    /// `YYYY-MM`.
    pub month: String,
    pub label_it: String,
    pub label_en: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MonthsOut {
    pub months: Vec<MonthOut>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct OfficesQuery {
    /// Only the offices competent for this service.
    pub service: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct SlotsQuery {
    pub service: String,
    /// `YYYY-MM`; all months of the horizon when absent.
    pub month: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct MonthsQuery {
    pub service: String,
}

/// Every field is optional here so that a missing one gets its own clear error.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(default)]
pub struct BookingBody {
    pub office_id: String,
    pub service_id: String,
    /// RFC 3339, one of the offered slots' `start`.
    pub start: String,
    /// `video` or `in_person`; defaults to what the service offers (video first).
    pub mode: Option<String>,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub details: String,
    /// `it` (default) or `en`: the language of the emails.
    pub lang: String,
    /// Leave empty (anti-spam field hidden from people).
    pub website: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BookingOut {
    pub code: String,
    /// Only in the reply to the booking itself: the manage secret (also in the emailed link).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// `confirmed`, `cancelled`, `completed`, `no_show`.
    pub status: String,
    pub start: String,
    pub end: String,
    pub label_it: String,
    pub label_en: String,
    pub mode: String,
    pub office: OfficeOut,
    pub service: ServiceOut,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub details: String,
    /// `GET` with the `X-Booking-Secret` header.
    pub ics_url: String,
    /// Video appointments: `<public_url>/a/<token>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub join_url: Option<String>,
    /// Cancel and reschedule are allowed until the start.
    pub can_change: bool,
    pub rating: Option<i64>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(default)]
pub struct SecretBody {
    /// Alternative to the `X-Booking-Secret` header.
    pub secret: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(default)]
pub struct RescheduleBody {
    pub start: String,
    pub secret: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(default)]
pub struct RatingBody {
    pub rating: i64,
    pub comment: Option<String>,
    pub secret: Option<String>,
}

// --- rate limit -------------------------------------------------------------------------------------

/// Requests per client address per fixed window (a clock minute by default; an IPv6 address counts
/// by its /64, which one subscriber gets whole): bookings here, new live viewers in `live`. Behind a
/// reverse proxy every client shares the proxy's address: raise `booking.rate_limit_per_minute`,
/// `booking.rate_limit_per_day` (and `live_viewers_per_ip_minute`) there.
pub struct RateLimiter {
    window_secs: i64,
    windows: Mutex<HashMap<AddressKey, (i64, u32)>>,
}

impl Default for RateLimiter {
    fn default() -> Self {
        RateLimiter::per(60)
    }
}

impl RateLimiter {
    /// A limiter counting per window of `window_secs` seconds.
    pub fn per(window_secs: i64) -> RateLimiter {
        RateLimiter { window_secs: window_secs.max(1), windows: Mutex::default() }
    }

    pub(crate) fn allow(&self, ip: Option<IpAddr>, now: i64, limit: u32) -> bool {
        let window = now.div_euclid(self.window_secs);
        let Ok(mut windows) = self.windows.lock() else { return true };
        if windows.len() > 10_000 {
            windows.retain(|_, (w, _)| *w == window);
        }
        let entry = windows.entry(AddressKey::of(ip)).or_insert((window, 0));
        if entry.0 != window {
            *entry = (window, 0);
        }
        entry.1 += 1;
        entry.1 <= limit
    }
}

/// The booking limits per client address: per minute and per day.
struct BookingLimits {
    minute: RateLimiter,
    day: RateLimiter,
}

// --- helpers ----------------------------------------------------------------------------------------

fn rfc3339(t: Timestamp) -> String {
    sportello_backoffice::time::rfc3339(t.as_second())
}

fn modes_of(m: Modes) -> Vec<String> {
    match m {
        Modes::Video => vec!["video".into()],
        Modes::InPerson => vec!["in_person".into()],
        Modes::Both => vec!["video".into(), "in_person".into()],
    }
}

fn service_out(s: &Service) -> ServiceOut {
    ServiceOut {
        id: s.id.clone(),
        name: s.name.clone(),
        description: s.description.clone(),
        duration_minutes: s.duration_minutes,
        what_to_bring: s.what_to_bring.clone(),
        modes: modes_of(s.modes),
        office_ids: s.office_ids.clone(),
    }
}

fn office_out(o: &Office, services: &[Service]) -> OfficeOut {
    OfficeOut {
        id: o.id.clone(),
        name: o.name.clone(),
        description: o.description.clone(),
        address: o.address.clone(),
        email: o.email.clone(),
        phone: o.phone.clone(),
        opening_hours: serde_json::from_str(&o.opening_hours).unwrap_or_default(),
        service_ids: services.iter().filter(|s| s.office_ids.contains(&o.id)).map(|s| s.id.clone()).collect(),
    }
}

async fn setting<T: std::str::FromStr>(state: &AppState, key: &str) -> Result<Option<T>, ApiError> {
    Ok(state.store.setting(key).await?.and_then(|v| v.trim().parse().ok()))
}

/// The office and service of a booking; the service must be one the office handles.
async fn office_and_service(
    state: &AppState,
    office_id: &str,
    service_id: &str,
) -> Result<(Office, Service), ApiError> {
    let office = match state.store.office(office_id).await? {
        Some(o) if !office_id.is_empty() => o,
        _ => {
            return Err(ApiError::bad_request(
                "unknown_office",
                ("L'ufficio indicato non esiste.", "The office does not exist."),
            ));
        }
    };
    let service = match state.store.service(service_id).await? {
        Some(s) if !service_id.is_empty() => s,
        _ => {
            return Err(ApiError::bad_request(
                "unknown_service",
                ("Il servizio indicato non esiste.", "The service does not exist."),
            ));
        }
    };
    if !service.office_ids.contains(&office.id) {
        return Err(ApiError::bad_request(
            "service_not_offered",
            ("Questo ufficio non si occupa del servizio scelto.", "This office does not handle the chosen service."),
        ));
    }
    Ok((office, service))
}

fn slot_out(s: &Slot) -> SlotOut {
    let tz = rome();
    let mut modes = Vec::new();
    if s.mode_options.video {
        modes.push("video".to_owned());
    }
    if s.mode_options.in_person {
        modes.push("in_person".to_owned());
    }
    SlotOut {
        start: rfc3339(s.start),
        end: rfc3339(s.end),
        label_it: slot_label(s.start, &tz, Lang::It),
        label_en: slot_label(s.start, &tz, Lang::En),
        modes,
    }
}

fn month_out(m: YearMonth) -> MonthOut {
    MonthOut { month: m.to_string(), label_it: m.label(Lang::It), label_en: m.label(Lang::En) }
}

fn requester_error(e: RequesterError) -> ApiError {
    use sportello_domain::Field;
    let (code, what, what_en) = match e.field() {
        Field::FirstName => ("invalid_first_name", "il nome", "the first name"),
        Field::LastName => ("invalid_last_name", "il cognome", "the last name"),
        Field::Email => ("invalid_email", "l'email", "the email"),
        Field::Details => ("invalid_details", "i dettagli", "the details"),
    };
    let message: (String, String) = match e {
        RequesterError::Missing(_) => {
            (format!("Inserisci {what}: è obbligatorio."), format!("Enter {what_en}: it is required."))
        }
        RequesterError::TooLong(sportello_domain::Field::Details) => (
            "I dettagli possono contenere al massimo 2000 caratteri.".to_owned(),
            "The details can have at most 2000 characters.".to_owned(),
        ),
        RequesterError::TooLong(_) => {
            (format!("Controlla {what}: è troppo lungo."), format!("Check {what_en}: it is too long."))
        }
        RequesterError::ControlChars(_) => (
            format!("Controlla {what}: contiene caratteri non ammessi."),
            format!("Check {what_en}: it contains characters that are not allowed."),
        ),
        RequesterError::InvalidEmail => (
            "Indirizzo email non valido: controlla di averlo scritto per intero, ad esempio nome@esempio.it."
                .to_owned(),
            "Invalid email address: check that you wrote it in full, for example name@example.com.".to_owned(),
        ),
    };
    ApiError::bad_request(code, message)
}

fn parse_start(s: &str) -> Result<Timestamp, ApiError> {
    s.trim().parse::<Timestamp>().map_err(|_| {
        ApiError::bad_request(
            "invalid_start",
            ("Scegli un orario tra quelli proposti.", "Choose one of the times offered."),
        )
    })
}

fn slot_unavailable() -> ApiError {
    ApiError::conflict(
        "slot_unavailable",
        (
            "L'orario scelto non è disponibile: scegline uno tra quelli proposti.",
            "The chosen time is not available: choose one of the times offered.",
        ),
    )
}

fn meeting_mode(m: Mode) -> MeetingMode {
    match m {
        Mode::Video => MeetingMode::Video,
        Mode::InPerson => MeetingMode::InPerson,
    }
}

fn booking_out(
    state: &AppState,
    appt: &Appointment,
    office: &Office,
    service: &Service,
    services: &[Service],
    now: i64,
) -> BookingOut {
    let (start, end) = (ts(appt.starts_at), ts(appt.ends_at));
    BookingOut {
        code: appt.code.clone(),
        secret: None,
        status: appt.status.to_string(),
        start: rfc3339(start),
        end: rfc3339(end),
        label_it: slot_label(start, &rome(), Lang::It),
        label_en: slot_label(start, &rome(), Lang::En),
        mode: appt.mode.to_string(),
        office: office_out(office, services),
        service: service_out(service),
        first_name: appt.first_name.clone(),
        last_name: appt.last_name.clone(),
        email: appt.email.clone(),
        details: appt.details.clone(),
        ics_url: format!("/api/public/appointments/{}/ics", appt.code),
        join_url: links::video_join_link(&state.back_office, appt, now),
        can_change: appt.status == Status::Confirmed && now < appt.starts_at,
        rating: appt.rating,
    }
}

/// Sends a booking email; a failure is logged and the booking stands (the page shows everything).
/// The cancellation email (a link to book again, the `.ics` that removes the calendar entry), for
/// a cancellation by the citizen or by the office.
pub(crate) async fn send_cancellation(
    state: &AppState,
    appt: &Appointment,
    office: &Office,
    service: &Service,
    now: i64,
) -> Result<(), ApiError> {
    let mail = BookingMail { appt, office, service, join_link: None, manage_link: None, cancel_link: None };
    let sequence = state.store.calendar_sequence(&appt.id).await?;
    let book_again = links::book_again_link(&state.config.public_url, &service.id);
    send(state, mail.cancellation(now, sequence, &book_again), "cancellation").await;
    Ok(())
}

async fn send(state: &AppState, email: sportello_backoffice::mail::Email, what: &'static str) {
    if let Err(error) = state.mailer.send(&email).await {
        tracing::error!(%error, what, "booking email not sent");
    }
}

// --- catalogue ----------------------------------------------------------------------------------------

#[utoipa::path(get, path = "/api/public/services", tag = "public",
    responses((status = 200, body = [ServiceOut])))]
async fn services(State(state): State<AppState>) -> Result<Json<Vec<ServiceOut>>, ApiError> {
    async move {
        let services = state.store.services().await?;
        Ok(Json(services.iter().filter(|s| !s.office_ids.is_empty()).map(service_out).collect()))
    }
    .instrument(tracing::info_span!("public_services"))
    .await
}

#[utoipa::path(get, path = "/api/public/offices", tag = "public", params(OfficesQuery),
    responses((status = 200, body = [OfficeOut])))]
async fn offices(
    State(state): State<AppState>,
    Query(q): Query<OfficesQuery>,
) -> Result<Json<Vec<OfficeOut>>, ApiError> {
    async move {
        let services = state.store.services().await?;
        let offices = state.store.offices().await?;
        let wanted = match q.service.as_deref().filter(|s| !s.is_empty()) {
            Some(id) => match services.iter().find(|s| s.id == id) {
                Some(s) => Some(s.office_ids.clone()),
                None => return Err(ApiError::NotFound),
            },
            None => None,
        };
        Ok(Json(
            offices
                .iter()
                .filter(|o| wanted.as_ref().is_none_or(|ids| ids.contains(&o.id)))
                .map(|o| office_out(o, &services))
                .collect(),
        ))
    }
    .instrument(tracing::info_span!("public_offices"))
    .await
}

async fn office_service_or_404(
    state: &AppState,
    office_id: &str,
    service_id: &str,
) -> Result<(Office, Service), ApiError> {
    office_and_service(state, office_id, service_id).await.map_err(|e| match e {
        ApiError::BadRequest { code: "service_not_offered", message } => {
            ApiError::BadRequest { code: "service_not_offered", message }
        }
        ApiError::BadRequest { .. } => ApiError::NotFound,
        other => other,
    })
}

#[utoipa::path(get, path = "/api/public/offices/{id}/slots", tag = "public",
    params(("id" = String, Path, description = "Office id"), SlotsQuery),
    responses((status = 200, body = SlotsOut), (status = 404, body = super::error::ErrorBody)))]
async fn slots(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<SlotsQuery>,
) -> Result<Json<SlotsOut>, ApiError> {
    let span = tracing::info_span!("public_slots", office = %id, service = %q.service);
    async move {
        let month = match q.month.as_deref().filter(|m| !m.is_empty()) {
            Some(m) => Some(YearMonth::parse(m).ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_month",
                    ("Mese non valido (formato AAAA-MM).", "Invalid month (format YYYY-MM)."),
                )
            })?),
            None => None,
        };
        let (office, service) = office_service_or_404(&state, &id, &q.service).await?;
        let offer = offer(&state, &office, &service, state.clock.now(), None, None).await?;
        let tz = rome();
        let slots = offer
            .slots
            .iter()
            .filter(|s| month.is_none_or(|m| YearMonth::of(tz.to_datetime(s.start).date()) == m))
            .map(slot_out)
            .collect();
        Ok(Json(SlotsOut { office_id: office.id, service_id: service.id, month: month.map(|m| m.to_string()), slots }))
    }
    .instrument(span)
    .await
}

#[utoipa::path(get, path = "/api/public/offices/{id}/months", tag = "public",
    params(("id" = String, Path, description = "Office id"), MonthsQuery),
    responses((status = 200, body = MonthsOut), (status = 404, body = super::error::ErrorBody)))]
async fn months(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<MonthsQuery>,
) -> Result<Json<MonthsOut>, ApiError> {
    let span = tracing::info_span!("public_months", office = %id, service = %q.service);
    async move {
        let (office, service) = office_service_or_404(&state, &id, &q.service).await?;
        let offer = offer(&state, &office, &service, state.clock.now(), None, None).await?;
        let months = months_with_slots(&offer.slots, &rome()).into_iter().map(month_out).collect();
        Ok(Json(MonthsOut { months }))
    }
    .instrument(span)
    .await
}

// --- booking ------------------------------------------------------------------------------------------

#[utoipa::path(post, path = "/api/public/appointments", tag = "public", request_body = BookingBody,
    responses((status = 201, body = BookingOut), (status = 400, body = super::error::ErrorBody),
        (status = 409, description = "slot_taken or slot_unavailable", body = super::error::ErrorBody),
        (status = 429, body = super::error::ErrorBody)))]
async fn book(
    State(state): State<AppState>,
    Extension(limits): Extension<Arc<BookingLimits>>,
    ClientIp(ip): ClientIp,
    body: Result<Json<BookingBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let span = tracing::info_span!("public_book", code = tracing::field::Empty);
    async move {
        let now = state.clock.now();
        let per_minute = setting::<u32>(&state, SETTING_RATE_LIMIT).await?.unwrap_or(DEFAULT_RATE_LIMIT);
        let per_day = setting::<u32>(&state, SETTING_RATE_LIMIT_DAY).await?.unwrap_or(DEFAULT_RATE_LIMIT_DAY);
        if !limits.minute.allow(ip, now, per_minute) || !limits.day.allow(ip, now, per_day) {
            tracing::info!("booking rate limit reached");
            return Err(ApiError::RateLimited);
        }
        let Json(body) = body?;
        let (office, service) = office_and_service(&state, body.office_id.trim(), body.service_id.trim()).await?;
        let requester = validate_requester(&RequesterInput {
            first_name: &body.first_name,
            last_name: &body.last_name,
            email: &body.email,
            details: &body.details,
        })
        .map_err(|errors| {
            errors.into_iter().next().map(requester_error).unwrap_or_else(|| ApiError::internal("no error"))
        })?;
        let mode = match body.mode.as_deref().map(str::trim).filter(|m| !m.is_empty()) {
            Some(m) => m
                .parse::<Mode>()
                .map_err(|_| ApiError::bad_request("invalid_mode", ("Modalità non valida.", "Invalid mode.")))?,
            None if matches!(service.modes, Modes::InPerson) => Mode::InPerson,
            None => Mode::Video,
        };
        if !domain_modes(service.modes).allows(meeting_mode(mode)) {
            return Err(ApiError::bad_request(
                "invalid_mode",
                ("Questo servizio non prevede la modalità scelta.", "This service is not offered in the chosen mode."),
            ));
        }
        let start = parse_start(&body.start)?;
        let lang = Lang::from_tag(&body.lang);
        let services = state.store.services().await?;

        if !body.website.trim().is_empty() {
            // Honeypot: a bot filled the hidden field. Look like a success, keep nothing.
            tracing::info!("honeypot filled; nothing booked");
            return Ok(honeypot_reply(&office, &service, &services, start, &requester, mode));
        }
        if start.as_second() <= now {
            return Err(slot_unavailable());
        }
        let max_active = setting::<u32>(&state, SETTING_MAX_ACTIVE).await?.unwrap_or(DEFAULT_MAX_ACTIVE);
        if state.store.active_bookings_of_email(&office.id, &requester.email, now).await? >= i64::from(max_active) {
            tracing::info!("booking refused: the email holds the most appointments allowed with this office");
            return Err(ApiError::conflict(
                "too_many_bookings",
                (
                    format!(
                        "Con questo indirizzo email hai già {max_active} appuntamenti da svolgere con questo \
                         ufficio: per prenotarne un altro annullane uno dal link ricevuto per email."
                    ),
                    format!(
                        "This email address already has {max_active} upcoming appointments with this office: to \
                         book another, cancel one through the link in its email."
                    ),
                ),
            ));
        }
        let offer = offer(&state, &office, &service, now, None, None).await?;
        let slot = offer.slot_at(start).ok_or_else(slot_unavailable)?;
        let candidates = offer.candidates(slot, meeting_mode(mode));
        if candidates.is_empty() {
            return Err(slot_unavailable());
        }
        let secret = sportello_backoffice::secrets::new_secret();
        let mut booked = None;
        'officials: for official in candidates {
            for _ in 0..CODE_ATTEMPTS {
                let new = NewAppointment {
                    code: booking_code(rand::random()),
                    secret_hash: sportello_backoffice::secrets::sha256_hex(&secret),
                    office_id: office.id.clone(),
                    service_id: service.id.clone(),
                    official_id: official.id.clone(),
                    starts_at: slot.start.as_second(),
                    ends_at: slot.end.as_second(),
                    mode,
                    first_name: requester.first_name.clone(),
                    last_name: requester.last_name.clone(),
                    email: requester.email.clone(),
                    details: requester.details.clone(),
                    lang: lang.as_str().to_owned(),
                };
                match state.store.book(&new, now).await {
                    Ok(appt) => {
                        booked = Some(appt);
                        break 'officials;
                    }
                    Err(StoreError::Conflict("code")) => continue,
                    // Taken meanwhile for this official: another free one may still take it.
                    Err(StoreError::SlotTaken) => continue 'officials,
                    Err(other) => return Err(other.into()),
                }
            }
            return Err(ApiError::internal("no unused booking code after several draws"));
        }
        let appt = booked.ok_or(StoreError::SlotTaken)?;
        tracing::Span::current().record("code", appt.code.as_str());
        tracing::info!(appointment = %appt.id, "booked");

        let join = links::video_join_link(&state.back_office, &appt, now);
        let manage = links::manage_link(&state.config.public_url, &appt.code, &secret);
        let mail = BookingMail {
            appt: &appt,
            office: &office,
            service: &service,
            join_link: join.as_deref(),
            manage_link: Some(&manage),
            cancel_link: None,
        };
        send(&state, mail.confirmation(now), "confirmation").await;
        let mut out = booking_out(&state, &appt, &office, &service, &services, now);
        out.secret = Some(secret);
        Ok((StatusCode::CREATED, Json(out)).into_response())
    }
    .instrument(span)
    .await
}

/// A reply shaped like a booking, for bots: same status and fields, nothing stored.
fn honeypot_reply(
    office: &Office,
    service: &Service,
    services: &[Service],
    start: Timestamp,
    r: &sportello_domain::Requester,
    mode: Mode,
) -> Response {
    let end = start.checked_add(SignedDuration::from_mins(service.duration_minutes.max(0))).unwrap_or(start);
    let code = booking_code(rand::random());
    let out = BookingOut {
        ics_url: format!("/api/public/appointments/{code}/ics"),
        code,
        secret: Some(sportello_backoffice::secrets::new_secret()),
        status: Status::Confirmed.to_string(),
        start: rfc3339(start),
        end: rfc3339(end),
        label_it: slot_label(start, &rome(), Lang::It),
        label_en: slot_label(start, &rome(), Lang::En),
        mode: mode.to_string(),
        office: office_out(office, services),
        service: service_out(service),
        first_name: r.first_name.clone(),
        last_name: r.last_name.clone(),
        email: r.email.clone(),
        details: r.details.clone(),
        join_url: None,
        can_change: true,
        rating: None,
    };
    (StatusCode::CREATED, Json(out)).into_response()
}

// --- managing a booking -------------------------------------------------------------------------------

/// The appointment behind `code` if `secret` opens it; one 404 for every failure.
async fn authorised(state: &AppState, code: &str, secret: Option<&str>) -> Result<Appointment, ApiError> {
    let code = normalize_code(code).ok_or(ApiError::NotFound)?;
    let secret = secret.map(str::trim).filter(|s| !s.is_empty()).ok_or(ApiError::NotFound)?;
    let appt = state.store.appointment_by_code(&code).await?.ok_or(ApiError::NotFound)?;
    if !links::secret_matches(&state.tokens, &appt, secret) {
        tracing::info!("wrong booking secret");
        return Err(ApiError::NotFound);
    }
    Ok(appt)
}

fn header_secret(headers: &HeaderMap) -> Option<String> {
    headers.get(SECRET_HEADER).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

async fn context(state: &AppState, appt: &Appointment) -> Result<(Office, Service, Vec<Service>), ApiError> {
    let office = state.store.office(&appt.office_id).await?.ok_or_else(|| ApiError::internal("office missing"))?;
    let service = state.store.service(&appt.service_id).await?.ok_or_else(|| ApiError::internal("service missing"))?;
    let services = state.store.services().await?;
    Ok((office, service, services))
}

fn not_changeable(appt: &Appointment, now: i64) -> Option<ApiError> {
    match appt.status {
        Status::Cancelled => Some(ApiError::conflict(
            "already_cancelled",
            ("L'appuntamento è già stato annullato.", "The appointment was already cancelled."),
        )),
        Status::Completed | Status::NoShow => Some(ApiError::conflict(
            "too_late",
            ("L'appuntamento si è già concluso.", "The appointment is already over."),
        )),
        Status::Confirmed if !sportello_domain::booking::can_change(ts(now), ts(appt.starts_at)) => {
            Some(ApiError::conflict(
                "too_late",
                (
                    "L'appuntamento è già iniziato: non si può più annullare o spostare online. Contatta l'ufficio.",
                    "The appointment has already started: it can no longer be cancelled or moved online. Please contact the office.",
                ),
            ))
        }
        Status::Confirmed => None,
    }
}

#[utoipa::path(get, path = "/api/public/appointments/{code}", tag = "public",
    params(("code" = String, Path), ("X-Booking-Secret" = String, Header)),
    responses((status = 200, body = BookingOut), (status = 404, body = super::error::ErrorBody)))]
async fn summary(
    State(state): State<AppState>,
    Path(code): Path<String>,
    headers: HeaderMap,
) -> Result<Json<BookingOut>, ApiError> {
    async move {
        let appt = authorised(&state, &code, header_secret(&headers).as_deref()).await?;
        let (office, service, services) = context(&state, &appt).await?;
        Ok(Json(booking_out(&state, &appt, &office, &service, &services, state.clock.now())))
    }
    .instrument(tracing::info_span!("public_summary"))
    .await
}

#[utoipa::path(post, path = "/api/public/appointments/{code}/cancel", tag = "public",
    params(("code" = String, Path)), request_body = SecretBody,
    responses((status = 200, body = BookingOut), (status = 404, body = super::error::ErrorBody),
        (status = 409, body = super::error::ErrorBody)))]
async fn cancel(
    State(state): State<AppState>,
    Path(code): Path<String>,
    headers: HeaderMap,
    body: Option<Json<SecretBody>>,
) -> Result<Json<BookingOut>, ApiError> {
    async move {
        let secret = header_secret(&headers).or(body.and_then(|b| b.0.secret));
        let appt = authorised(&state, &code, secret.as_deref()).await?;
        let now = state.clock.now();
        if let Some(e) = not_changeable(&appt, now) {
            return Err(e);
        }
        let appt =
            state.store.set_status(&appt.id, &[Status::Confirmed], Status::Cancelled, "citizen", "", now).await?;
        tracing::info!(appointment = %appt.id, "cancelled by the citizen");
        let (office, service, services) = context(&state, &appt).await?;
        send_cancellation(&state, &appt, &office, &service, now).await?;
        Ok(Json(booking_out(&state, &appt, &office, &service, &services, now)))
    }
    .instrument(tracing::info_span!("public_cancel"))
    .await
}

#[utoipa::path(post, path = "/api/public/appointments/{code}/reschedule", tag = "public",
    params(("code" = String, Path)), request_body = RescheduleBody,
    responses((status = 200, body = BookingOut), (status = 404, body = super::error::ErrorBody),
        (status = 409, body = super::error::ErrorBody)))]
async fn reschedule(
    State(state): State<AppState>,
    Path(code): Path<String>,
    headers: HeaderMap,
    body: Result<Json<RescheduleBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<BookingOut>, ApiError> {
    async move {
        let Json(body) = body?;
        let secret = header_secret(&headers).or(body.secret.clone()).unwrap_or_default();
        let appt = authorised(&state, &code, Some(&secret)).await?;
        let now = state.clock.now();
        if let Some(e) = not_changeable(&appt, now) {
            return Err(e);
        }
        let start = parse_start(&body.start)?;
        if start.as_second() <= now {
            return Err(slot_unavailable());
        }
        let (office, service, services) = context(&state, &appt).await?;
        let offer = offer(&state, &office, &service, now, Some(&appt.id), None).await?;
        let slot = offer.slot_at(start).ok_or_else(slot_unavailable)?;
        let candidates = offer.candidates(slot, meeting_mode(appt.mode));
        if candidates.is_empty() {
            return Err(slot_unavailable());
        }
        // The current official first when free: the citizen keeps their contact.
        let mut ordered: Vec<&User> = candidates.iter().copied().filter(|u| u.id == appt.official_id).collect();
        ordered.extend(candidates.iter().copied().filter(|u| u.id != appt.official_id));
        let mut moved = None;
        for official in ordered {
            let to = Reschedule {
                starts_at: slot.start.as_second(),
                ends_at: slot.end.as_second(),
                official_id: official.id.clone(),
                mode: appt.mode,
            };
            match state.store.reschedule(&appt.id, &to, "citizen", now).await {
                Ok(a) => {
                    moved = Some(a);
                    break;
                }
                Err(StoreError::SlotTaken) => continue,
                Err(other) => return Err(other.into()),
            }
        }
        let appt = moved.ok_or(StoreError::SlotTaken)?;
        tracing::info!(appointment = %appt.id, "rescheduled by the citizen");
        let join = links::video_join_link(&state.back_office, &appt, now);
        let manage = links::manage_link(&state.config.public_url, &appt.code, &secret);
        let mail = BookingMail {
            appt: &appt,
            office: &office,
            service: &service,
            join_link: join.as_deref(),
            manage_link: Some(&manage),
            cancel_link: None,
        };
        let sequence = state.store.calendar_sequence(&appt.id).await?;
        send(&state, mail.rescheduled(now, sequence), "rescheduled").await;
        Ok(Json(booking_out(&state, &appt, &office, &service, &services, now)))
    }
    .instrument(tracing::info_span!("public_reschedule"))
    .await
}

#[utoipa::path(get, path = "/api/public/appointments/{code}/ics", tag = "public",
    params(("code" = String, Path), ("X-Booking-Secret" = String, Header)),
    responses((status = 200, content_type = "text/calendar", body = String),
        (status = 404, body = super::error::ErrorBody)))]
async fn ics(
    State(state): State<AppState>,
    Path(code): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    async move {
        let appt = authorised(&state, &code, header_secret(&headers).as_deref()).await?;
        let (office, service, _) = context(&state, &appt).await?;
        let now = state.clock.now();
        let join = links::video_join_link(&state.back_office, &appt, now);
        let text = appointment_ics(&appt, &office, &service, join.as_deref(), now);
        let mut response = text.into_response();
        let h = response.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/calendar; charset=utf-8"));
        h.insert(header::CONTENT_DISPOSITION, HeaderValue::from_static("attachment; filename=\"appuntamento.ics\""));
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        Ok(response)
    }
    .instrument(tracing::info_span!("public_ics"))
    .await
}

#[utoipa::path(post, path = "/api/public/appointments/{code}/rating", tag = "public",
    params(("code" = String, Path)), request_body = RatingBody,
    responses((status = 204), (status = 400, body = super::error::ErrorBody),
        (status = 404, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)))]
async fn rate(
    State(state): State<AppState>,
    Path(code): Path<String>,
    headers: HeaderMap,
    body: Result<Json<RatingBody>, axum::extract::rejection::JsonRejection>,
) -> Result<StatusCode, ApiError> {
    async move {
        let Json(body) = body?;
        let secret = header_secret(&headers).or(body.secret.clone());
        let appt = authorised(&state, &code, secret.as_deref()).await?;
        if !(1..=5).contains(&body.rating) {
            return Err(ApiError::bad_request(
                "invalid_rating",
                ("Scegli un voto da 1 a 5.", "Choose a rating from 1 to 5."),
            ));
        }
        let comment = body.comment.as_deref().map(str::trim).filter(|c| !c.is_empty());
        if comment
            .is_some_and(|c| c.chars().count() > COMMENT_MAX_CHARS || c.chars().any(|ch| ch.is_control() && ch != '\n'))
        {
            return Err(ApiError::bad_request(
                "invalid_comment",
                (
                    "Il commento può contenere al massimo 1000 caratteri.",
                    "The comment can have at most 1000 characters.",
                ),
            ));
        }
        match state.store.rate(&appt.id, body.rating, comment, state.clock.now()).await {
            Ok(()) => Ok(StatusCode::NO_CONTENT),
            Err(StoreError::Conflict(_)) => Err(ApiError::conflict(
                "already_rated",
                ("Hai già lasciato una valutazione: grazie!", "You have already left a rating: thank you!"),
            )),
            Err(other) => Err(other.into()),
        }
    }
    .instrument(tracing::info_span!("public_rating"))
    .await
}

#[cfg(test)]
mod limiter_tests {
    use super::RateLimiter;

    #[test]
    fn an_ipv6_64_counts_as_one_address_and_windows_roll() {
        let day = RateLimiter::per(86_400);
        let ip = |s: &str| Some(s.parse().expect("address"));
        assert!(day.allow(ip("2001:db8:5:6::1"), 0, 2));
        assert!(day.allow(ip("2001:db8:5:6:abcd::2"), 10, 2), "same /64, second of two");
        assert!(!day.allow(ip("2001:db8:5:6:ffff::3"), 20, 2), "a fresh address in the /64 is no fresh limit");
        assert!(day.allow(ip("2001:db8:5:7::1"), 20, 2), "another /64");
        assert!(day.allow(ip("2001:db8:5:6::1"), 86_400, 2), "the next day");
    }
}
