//! The citizens' booking API, no account: services, offices, free slots, booking, and managing a
//! booking by code + secret (summary, cancel, reschedule, `.ics`, rating). See `docs/booking.md`.
//!
//! The handlers extract, rate-limit and check the fields, then call the use cases in
//! `sportello_backoffice::booking` with `state.clock`'s now. A booking's secret arrives in the
//! `X-Booking-Secret` header or the JSON body and is never logged; a wrong secret and an unknown
//! code give the same 404.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Extension, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use sportello_domain::booking::{Lang, YearMonth, months_with_slots};
use sportello_domain::{
    FiscalCode, RequesterError, RequesterInput, Slot, booking_code, slot_label, validate_requester,
};
use sportello_store::{Appointment, Mode, Modes, Office, Service, Status};
use tracing::Instrument;
use utoipa::{IntoParams, OpenApi, ToSchema};

use super::ApiError;
use super::citizen::CitizenSession;
use super::error::{Path, Query};
use crate::client_addr::AddressKey;
use crate::client_addr::ClientIp;
use crate::state::AppState;
use sportello_backoffice::appio::AppioSettings;
use sportello_backoffice::booking::offer::offer;
use sportello_backoffice::booking::{self, BookingError, NewBooking};
use sportello_backoffice::booking_mail::appointment_ics;
use sportello_backoffice::links;
use sportello_backoffice::settings::{SETTING_RATE_LIMIT, SETTING_RATE_LIMIT_DAY, parsed};
use sportello_backoffice::time::{rome, ts};

const DEFAULT_RATE_LIMIT: u32 = 10;
const DEFAULT_RATE_LIMIT_DAY: u32 = 30;
const SECRET_HEADER: &str = "x-booking-secret";

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
    /// Whether the office has a walk-in video desk (`/sportello/<id>`).
    pub has_desk: bool,
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
    #[param(pattern = "^([0-9]{4}-(0[1-9]|1[0-2]))?$")]
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
    /// The citizen asks for App IO notifications too (ignored while App IO is off: see
    /// `GET /api/public/appio`).
    pub appio: bool,
    /// With `appio`: the fiscal code the messages go to; absent, a logged-in citizen's own.
    pub fiscal_code: Option<String>,
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
    /// App IO notifications are on for this booking.
    pub appio: bool,
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
    #[schema(minimum = 1, maximum = 5)]
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

// --- App IO's side of a booking ---------------------------------------------------------------------

/// The fiscal code a new booking's App IO messages go to: `None` unless App IO is on and the
/// citizen asked for it; then the one typed, else the logged-in citizen's, else 400.
pub async fn booking_fiscal_code(
    state: &AppState,
    body: &BookingBody,
    session: Option<FiscalCode>,
) -> Result<Option<FiscalCode>, ApiError> {
    if !body.appio || !AppioSettings::load(&state.store).await?.active() {
        return Ok(None);
    }
    match body.fiscal_code.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
        Some(typed) => FiscalCode::parse(typed).map(Some).map_err(ApiError::from),
        None => session.map(Some).ok_or_else(|| {
            ApiError::bad_request(
                "fiscal_code_required",
                (
                    "Per ricevere le notifiche su app IO indica il tuo codice fiscale.",
                    "To get App IO notifications, enter your fiscal code.",
                ),
            )
        }),
    }
}

/// Whether App IO messages go out for this booking: the citizen chose it and App IO is on.
pub async fn notifications_on(state: &AppState, appt: &Appointment) -> Result<bool, ApiError> {
    Ok(state.store.appointment_appio_fiscal_code(&appt.id).await?.is_some()
        && AppioSettings::load(&state.store).await?.active())
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
        has_desk: sportello_domain::booking::parse_opening_hours(&o.desk_hours)
            .is_ok_and(|week| week.iter().any(|day| !day.is_empty())),
    }
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

pub(super) fn booking_out(
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
        appio: false,
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
    responses((status = 200, body = [OfficeOut]),
        (status = 404, description = "`service` names no service", body = super::error::ErrorBody)))]
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
    // On these read-only addresses an unknown office or service is a missing page.
    booking::office_and_service(&state.back_office, office_id, service_id).await.map_err(|e| match e {
        BookingError::UnknownOffice | BookingError::UnknownService => ApiError::NotFound,
        other => other.into(),
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
        let offer = offer(&state.store, &office, &service, state.clock.now(), None, None).await?;
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
        let offer = offer(&state.store, &office, &service, state.clock.now(), None, None).await?;
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
    citizen: Option<CitizenSession>,
    body: Result<Json<BookingBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let span = tracing::info_span!("public_book", code = tracing::field::Empty);
    async move {
        let now = state.clock.now();
        let per_minute = parsed::<u32>(&state.store, SETTING_RATE_LIMIT).await?.unwrap_or(DEFAULT_RATE_LIMIT);
        let per_day = parsed::<u32>(&state.store, SETTING_RATE_LIMIT_DAY).await?.unwrap_or(DEFAULT_RATE_LIMIT_DAY);
        if !limits.minute.allow(ip, now, per_minute) || !limits.day.allow(ip, now, per_day) {
            tracing::info!("booking rate limit reached");
            return Err(ApiError::RateLimited);
        }
        let Json(body) = body?;
        let (office, service) =
            booking::office_and_service(&state.back_office, body.office_id.trim(), body.service_id.trim()).await?;
        let requester = validate_requester(&RequesterInput {
            first_name: &body.first_name,
            last_name: &body.last_name,
            email: &body.email,
            details: &body.details,
        })
        .map_err(|errors| {
            errors.into_iter().next().map(requester_error).unwrap_or_else(|| ApiError::internal("no error"))
        })?;
        let asked = match body.mode.as_deref().map(str::trim).filter(|m| !m.is_empty()) {
            Some(m) => Some(
                m.parse::<Mode>()
                    .map_err(|_| ApiError::bad_request("invalid_mode", ("Modalità non valida.", "Invalid mode.")))?,
            ),
            None => None,
        };
        let mode = booking::mode_for(&service, asked)?;
        let start = parse_start(&body.start)?;
        let lang = Lang::from_tag(&body.lang);
        // A citizen logged in with SPID/CIE: App IO may use their own code, and the booking is
        // listed among theirs.
        let session_fiscal_code = citizen.as_ref().map(|c| c.fiscal_code.clone());
        let appio_fiscal_code = booking_fiscal_code(&state, &body, session_fiscal_code).await?;
        let citizen_key = citizen.map(|c| c.key);
        let services = state.store.services().await?;

        if !body.website.trim().is_empty() {
            // Honeypot: a bot filled the hidden field. Look like a success, keep nothing.
            tracing::info!("honeypot filled; nothing booked");
            return Ok(honeypot_reply(&office, &service, &services, start, &requester, mode));
        }
        let new = NewBooking { office, service, requester, mode, start, lang, appio_fiscal_code, citizen_key };
        let booked = booking::book(&state.back_office, new, now).await?;
        let mut out = booking_out(&state, &booked.appointment, &booked.office, &booked.service, &services, now);
        out.secret = Some(booked.secret);
        out.appio = booked.appio;
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
        appio: false,
    };
    (StatusCode::CREATED, Json(out)).into_response()
}

// --- managing a booking -------------------------------------------------------------------------------

pub(super) fn header_secret(headers: &HeaderMap) -> Option<String> {
    headers.get(SECRET_HEADER).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// The office and service of an appointment, and every service (its page lists the office's).
pub(super) async fn context(state: &AppState, appt: &Appointment) -> Result<(Office, Service, Vec<Service>), ApiError> {
    let (office, service) = booking::context(&state.back_office, appt).await?;
    let services = state.store.services().await?;
    Ok((office, service, services))
}

pub(super) async fn authorised(state: &AppState, code: &str, secret: Option<&str>) -> Result<Appointment, ApiError> {
    Ok(booking::open(&state.back_office, code, secret).await?)
}

#[utoipa::path(get, path = "/api/public/appointments/{code}", tag = "public",
    params(("code" = String, Path), ("X-Booking-Secret" = Option<String>, Header,
        description = "The booking's secret; missing or wrong, the answer is the 404 of an unknown code")),
    responses((status = 200, body = BookingOut), (status = 404, body = super::error::ErrorBody)))]
async fn summary(
    State(state): State<AppState>,
    Path(code): Path<String>,
    headers: HeaderMap,
) -> Result<Json<BookingOut>, ApiError> {
    async move {
        let appt = authorised(&state, &code, header_secret(&headers).as_deref()).await?;
        let (office, service, services) = context(&state, &appt).await?;
        let mut out = booking_out(&state, &appt, &office, &service, &services, state.clock.now());
        out.appio = notifications_on(&state, &appt).await?;
        Ok(Json(out))
    }
    .instrument(tracing::info_span!("public_summary"))
    .await
}

#[utoipa::path(post, path = "/api/public/appointments/{code}/cancel", tag = "public",
    params(("code" = String, Path), ("X-Booking-Secret" = Option<String>, Header,
        description = "The booking's secret, or `secret` in the body; missing or wrong: 404, as for an unknown code")),
    request_body(content = Option<SecretBody>, description = "Optional: the secret may come in the header instead"),
    responses((status = 200, body = BookingOut), (status = 404, body = super::error::ErrorBody),
        (status = 409, body = super::error::ErrorBody)))]
async fn cancel(
    State(state): State<AppState>,
    Path(code): Path<String>,
    headers: HeaderMap,
    body: Result<Json<Option<SecretBody>>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<BookingOut>, ApiError> {
    async move {
        // The body is optional (the secret may come in the header); one that is there must be JSON.
        let body = match body {
            Ok(Json(body)) => body.and_then(|b| b.secret),
            Err(axum::extract::rejection::JsonRejection::MissingJsonContentType(_)) => None,
            Err(e) => return Err(e.into()),
        };
        let secret = header_secret(&headers).or(body);
        let appt = authorised(&state, &code, secret.as_deref()).await?;
        let now = state.clock.now();
        let cancelled = booking::cancel(&state.back_office, appt, now).await?;
        let services = state.store.services().await?;
        let mut out =
            booking_out(&state, &cancelled.appointment, &cancelled.office, &cancelled.service, &services, now);
        out.appio = notifications_on(&state, &cancelled.appointment).await?;
        Ok(Json(out))
    }
    .instrument(tracing::info_span!("public_cancel"))
    .await
}

#[utoipa::path(post, path = "/api/public/appointments/{code}/reschedule", tag = "public",
    params(("code" = String, Path), ("X-Booking-Secret" = Option<String>, Header,
        description = "The booking's secret, or `secret` in the body; missing or wrong: 404, as for an unknown code")),
    request_body = RescheduleBody,
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
        // A booking that cannot move is refused before its new time is read, as it always was.
        booking::changeable(&appt, now)?;
        let start = parse_start(&body.start)?;
        let moved = booking::reschedule(&state.back_office, appt, &secret, start, now).await?;
        let services = state.store.services().await?;
        let mut out = booking_out(&state, &moved.appointment, &moved.office, &moved.service, &services, now);
        out.appio = notifications_on(&state, &moved.appointment).await?;
        Ok(Json(out))
    }
    .instrument(tracing::info_span!("public_reschedule"))
    .await
}

#[utoipa::path(get, path = "/api/public/appointments/{code}/ics", tag = "public",
    params(("code" = String, Path), ("X-Booking-Secret" = Option<String>, Header,
        description = "The booking's secret; missing or wrong, the answer is the 404 of an unknown code")),
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
    params(("code" = String, Path), ("X-Booking-Secret" = Option<String>, Header,
        description = "The booking's secret, or `secret` in the body; missing or wrong: 404, as for an unknown code")),
    request_body = RatingBody,
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
        booking::rate(&state.back_office, &appt, body.rating, body.comment.as_deref(), state.clock.now()).await?;
        Ok(StatusCode::NO_CONTENT)
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
