//! `/api/staff/calendar`: an official's smart-working calendar — working pattern, absences, own
//! calendars (subscription URLs and uploads), the month at a glance and the feed URLs. See
//! `docs/calendars.md`.
//!
//! Every endpoint takes `?user=<id>`: default the signed-in user; an official may address only
//! themselves (403), an administrator anyone (404 for an unknown id). Calendar URLs are secrets:
//! responses show their host only and nothing here logs them.

use std::collections::{BTreeMap, BTreeSet};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use jiff::civil::{Date, Time};
use jiff::{Span, Timestamp};
use serde::{Deserialize, Serialize};
use sportello_domain::booking::{DayJson, ModeJson, PatternJson, YearMonth};
use sportello_domain::opening_week;
use sportello_domain::{TimeRange, WorkMode, pattern_from_json};
use sportello_store::{
    Absence, AbsenceKind, CalendarSource, FeedSubject, NewAbsence, NewSource, SourceKind, User, UserUpdate,
};
use tracing::Instrument;
use utoipa::{IntoParams, OpenApi, ToSchema};

use super::ApiError;
use super::auth::Staff;
use super::error::{Path, Query};
use crate::state::AppState;
use sportello_backoffice::booking::offer::{Offer, PatternOverride, offer, window};
use sportello_backoffice::calendar_fetch::{self, FetchError, UploadError};
use sportello_backoffice::feeds;

use sportello_backoffice::schedule::{holiday_names, working_pattern};
use sportello_backoffice::time::{day_bounds, local, rfc3339, rome, ts};
const LABEL_MAX_CHARS: usize = 100;
const NOTE_MAX_CHARS: usize = 500;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/staff/calendar/pattern", get(get_pattern).put(put_pattern))
        .route("/staff/calendar/pattern/preview", post(preview_pattern))
        .route("/staff/calendar/absences", get(list_absences).post(create_absence))
        .route("/staff/calendar/absences/{id}", delete(delete_absence))
        .route("/staff/calendar/sources", get(list_sources).post(create_source))
        .route("/staff/calendar/sources/{id}", delete(delete_source))
        .route("/staff/calendar/sources/{id}/refresh", post(refresh_source))
        .route(
            "/staff/calendar/upload",
            // One byte over the limit is enough to know it is too large.
            post(upload).layer(DefaultBodyLimit::max(calendar_fetch::MAX_BYTES + 1)),
        )
        .route("/staff/calendar/month", get(month))
        .route("/staff/calendar/feeds", get(feed_urls))
        .route("/staff/calendar/feeds/rotate", post(rotate_feed))
}

#[derive(OpenApi)]
#[openapi(
    paths(
        get_pattern, put_pattern, preview_pattern, list_absences, create_absence, delete_absence, list_sources, create_source,
        delete_source, refresh_source, upload, month, feed_urls, rotate_feed
    ),
    components(schemas(PatternOut, PatternBody, PreviewOut, PreviewService, AbsenceBody, AbsenceOut, SourceBody, SourceOut, MonthOut, DayOut,
        BusyOut, AppointmentOut, FeedsOut, OfficeFeed)),
    tags((name = "calendar", description = "Officials' smart-working calendars: pattern, absences, own calendars, feeds"))
)]
pub struct CalendarApi;

/// This module's part of `/api/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    CalendarApi::openapi()
}

// --- shapes ------------------------------------------------------------------------------------------

#[derive(Debug, Deserialize, IntoParams)]
pub struct UserQuery {
    /// The official whose calendar this is (default: me; administrators only for others).
    pub user: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PatternOut {
    /// The personal pattern (`PatternJson`), or null when the office opening hours apply.
    #[schema(value_type = Option<Object>)]
    pub pattern: Option<PatternJson>,
    pub follows_office_hours: bool,
    /// The hours in force as a `PatternJson`: the personal pattern, else the opening hours of the
    /// first office (on site; with split hours the contact band spans them all, the breaks not
    /// counting). Null with neither. What the editor starts from.
    #[schema(value_type = Option<Object>)]
    pub in_force: Option<PatternJson>,
}

/// What a proposed pattern does to the citizens' offer, from today to the booking horizon.
#[derive(Debug, Serialize, ToSchema)]
pub struct PreviewOut {
    /// First and last day compared (YYYY-MM-DD, Rome).
    pub from: String,
    pub to: String,
    /// Bookable slots now and with the proposed pattern, summed over the services of the
    /// official's offices (a slot is a start time citizens can pick for a service at an office).
    pub before: usize,
    pub after: usize,
    /// Slots the change takes away from citizens (no other official covers them) and adds.
    pub removed: usize,
    pub added: usize,
    /// The same per office and service (only those the change touches or that offer something).
    pub services: Vec<PreviewService>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PreviewService {
    pub office_id: String,
    pub office_name: String,
    pub service_id: String,
    pub service_name: String,
    pub before: usize,
    pub after: usize,
    pub removed: usize,
    pub added: usize,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct PatternBody {
    #[schema(value_type = Option<Object>)]
    pub pattern: Option<serde_json::Value>,
}

/// A kind of absence.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)] // documentation only: the handler parses the text into the store's `AbsenceKind`
pub enum AbsenceKindName {
    Holiday,
    Sick,
    Training,
    Other,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct AbsenceBody {
    #[schema(value_type = AbsenceKindName)]
    pub kind: String,
    /// YYYY-MM-DD, a year from 1900 to 8999.
    #[schema(pattern = "^(19|[2-8][0-9])[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$")]
    pub start: String,
    /// YYYY-MM-DD, inclusive.
    #[schema(pattern = "^(19|[2-8][0-9])[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$")]
    pub end: String,
    /// HH:MM, with `end_time`, for hourly leave.
    #[schema(pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    pub start_time: Option<String>,
    #[schema(pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    pub end_time: Option<String>,
    #[serde(default)]
    #[schema(max_length = 500)]
    pub note: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AbsenceOut {
    pub id: String,
    pub kind: String,
    pub start: String,
    pub end: String,
    pub start_time: Option<String>,
    pub end_time: Option<String>,
    pub note: String,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct RangeQuery {
    pub user: Option<String>,
    /// YYYY-MM-DD, a year from 1900 to 8999 (default today).
    #[param(pattern = "^((19|[2-8][0-9])[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01]))?$")]
    pub from: Option<String>,
    /// YYYY-MM-DD inclusive (default a year after `from`).
    #[param(pattern = "^((19|[2-8][0-9])[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01]))?$")]
    pub to: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct SourceBody {
    #[serde(default)]
    pub label: String,
    /// http(s):// or webcal:// subscription address (secret; only its host is ever shown).
    pub url: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SourceOut {
    pub id: String,
    /// `url` or `upload`.
    pub kind: String,
    pub label: String,
    pub url_host: Option<String>,
    pub last_fetch_at: Option<String>,
    pub last_ok_at: Option<String>,
    /// Why the last fetch failed (Italian); the previous busy times stay in force.
    pub last_error: Option<String>,
    pub busy_count: i64,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct UploadQuery {
    pub user: Option<String>,
    pub label: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct MonthQuery {
    pub user: Option<String>,
    /// YYYY-MM, a year from 1900 to 8999.
    #[param(pattern = "^(19|[2-8][0-9])[0-9]{2}-(0[1-9]|1[0-2])$")]
    pub month: String,
}

/// Named apart from the booking API's `MonthOut` (one document, one namespace of schemas).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = CalendarMonth)]
pub struct MonthOut {
    pub month: String,
    pub days: Vec<DayOut>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DayOut {
    pub date: String,
    /// 1 = Monday … 7 = Sunday.
    pub weekday: i8,
    /// `on_site`, `remote`, `off`, `absent`, `holiday`.
    pub status: String,
    pub holiday: Option<String>,
    pub hours: Vec<String>,
    pub contact: Option<String>,
    pub absences: Vec<AbsenceOut>,
    pub busy: Vec<BusyOut>,
    pub appointments: Vec<AppointmentOut>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BusyOut {
    pub start: String,
    pub end: String,
    pub source: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AppointmentOut {
    pub id: String,
    pub code: String,
    pub start: String,
    pub end: String,
    pub citizen: String,
    pub service: String,
    pub status: String,
    pub mode: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FeedsOut {
    pub official_url: String,
    pub offices: Vec<OfficeFeed>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OfficeFeed {
    pub office_id: String,
    pub name: String,
    pub url: String,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct RotateQuery {
    pub user: Option<String>,
    /// Rotate this office's feed instead of the official's (a member of the office, or an administrator).
    pub office: Option<String>,
}

/// `GET /feeds/{secret}.ics`: a subscribed feed (`feeds`).
pub async fn serve_feed(State(state): State<AppState>, Path(file): Path<String>) -> Response {
    let Some(secret) = file.strip_suffix(".ics").filter(|s| !s.is_empty() && s.len() <= 100) else {
        return ApiError::NotFound.into_response();
    };
    match feeds::by_secret(&state.back_office, secret).await {
        Ok(Some(text)) => {
            let mut r = text.into_response();
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/calendar; charset=utf-8"));
            // Subscribed clients poll; nothing personal should sit in shared caches.
            r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=300"));
            r
        }
        Ok(None) => ApiError::NotFound.into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

// --- shared helpers (also used by `feeds`) -------------------------------------------------------------

fn hm(t: Time) -> String {
    t.strftime("%H:%M").to_string()
}

/// The user addressed by `?user=`: oneself, or anyone for an administrator.
async fn target(state: &AppState, staff: &Staff, user: Option<&str>) -> Result<User, ApiError> {
    match user.filter(|u| !u.is_empty()) {
        None => Ok(staff.user.clone()),
        Some(id) if id == staff.user.id => Ok(staff.user.clone()),
        Some(_) if !staff.is_admin() => Err(ApiError::Forbidden),
        Some(id) => state.store.user(id).await?.ok_or(ApiError::NotFound),
    }
}

/// Years the calendar works in: room on both sides for a day's bounds and a year's span, which
/// the date arithmetic needs (jiff stops at the year 9999); outside it a date is refused (400).
const YEARS: std::ops::RangeInclusive<i16> = 1900..=9000;

fn parse_date(s: &str, field: &str) -> Result<Date, ApiError> {
    s.trim().parse::<Date>().ok().filter(|d| YEARS.contains(&d.year())).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_date",
            (
                format!("Data non valida in «{field}» (formato AAAA-MM-GG)."),
                format!("Invalid date in «{field}» (format YYYY-MM-DD)."),
            ),
        )
    })
}

fn parse_time(s: &str, field: &str) -> Result<Time, ApiError> {
    let bad = || {
        ApiError::bad_request(
            "invalid_time",
            (
                format!("Orario non valido in «{field}» (formato HH:MM)."),
                format!("Invalid time in «{field}» (format HH:MM)."),
            ),
        )
    };
    let (h, m) = s.trim().split_once(':').ok_or_else(bad)?;
    let (h, m): (i8, i8) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    Time::new(h, m, 0, 0).map_err(|_| bad())
}

// --- pattern -------------------------------------------------------------------------------------------

const DAY_NAMES: [&str; 7] = ["Lunedì", "Martedì", "Mercoledì", "Giovedì", "Venerdì", "Sabato", "Domenica"];
const DAY_NAMES_EN: [&str; 7] = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];

async fn pattern_out(state: &AppState, user: &User) -> Result<PatternOut, ApiError> {
    let pattern = user.pattern.as_deref().and_then(|json| serde_json::from_str::<PatternJson>(json).ok());
    let in_force = match &pattern {
        Some(p) => Some(p.clone()),
        None => {
            let offices = state.store.offices_of_user(&user.id).await?;
            let hours: Vec<&str> = offices.iter().map(|o| o.opening_hours.as_str()).collect();
            (!offices.is_empty()).then(|| opening_week(&hours).ok().map(office_hours_pattern)).flatten()
        }
    };
    Ok(PatternOut { follows_office_hours: pattern.is_none(), pattern, in_force })
}

/// The offices' opening week as a personal pattern to start editing from: every open day on site
/// with the same hours. A single range is its own contact band; with split hours the band spans
/// them all (the breaks do not count against its length, `DayPlan::working`).
fn office_hours_pattern(week: [Vec<TimeRange>; 7]) -> PatternJson {
    let minutes = |t: Time| i32::from(t.hour()) * 60 + i32::from(t.minute());
    let clock = |m: i32| format!("{:02}:{:02}", m / 60, m % 60);
    let day = |ranges: &Vec<TimeRange>| {
        if ranges.is_empty() {
            return DayJson { mode: ModeJson::Off, hours: Vec::new(), contact: None };
        }
        let spans: Vec<(i32, i32)> = ranges.iter().map(|r| (minutes(r.start()), minutes(r.end()))).collect();
        let hours = spans.iter().map(|(a, b)| format!("{}-{}", clock(*a), clock(*b))).collect();
        // The band spans every opening range: the breaks between them do not count against its
        // length (`DayPlan::working`), so the official stays bookable whenever the office is open.
        let contact = (spans.len() > 1).then(|| format!("{}-{}", clock(spans[0].0), clock(spans[spans.len() - 1].1)));
        DayJson { mode: ModeJson::OnSite, hours, contact }
    };
    PatternJson { week: week.iter().map(day).collect(), exceptions: BTreeMap::new() }
}

fn invalid_pattern(it: String, en: String) -> ApiError {
    ApiError::bad_request("invalid_pattern", (it, en))
}

/// Checks a pattern day by day so the message names the day (or the date) and the problem.
fn validate_pattern(value: serde_json::Value) -> Result<PatternJson, ApiError> {
    let pattern: PatternJson = serde_json::from_value(value).map_err(|e| {
        invalid_pattern(format!("Piano di lavoro non leggibile: {e}."), format!("Unreadable working pattern: {e}."))
    })?;
    if pattern.week.len() != 7 {
        let days = pattern.week.len();
        return Err(invalid_pattern(
            format!("Il piano settimanale deve avere 7 giorni (dal lunedì), ne ha {days}."),
            format!("The weekly pattern must have 7 days (from Monday); it has {days}."),
        ));
    }
    let off = DayJson { mode: ModeJson::Off, hours: Vec::new(), contact: None };
    let check = |day: &DayJson, exception: Option<&str>| {
        let mut week = vec![off.clone(); 7];
        let mut exceptions = BTreeMap::new();
        match exception {
            Some(date) => {
                exceptions.insert(date.to_owned(), day.clone());
            }
            None => week[0] = day.clone(),
        }
        let json = serde_json::to_string(&PatternJson { week, exceptions }).map_err(|e| e.to_string())?;
        pattern_from_json(&json).map(|_| ()).map_err(|e| e.to_string())
    };
    for ((name, name_en), day) in DAY_NAMES.iter().zip(DAY_NAMES_EN).zip(&pattern.week) {
        check(day, None).map_err(|e| invalid_pattern(format!("{name}: {e}."), format!("{name_en}: {e}.")))?;
    }
    for (date, day) in &pattern.exceptions {
        if date.parse::<Date>().is_err() {
            return Err(invalid_pattern(
                format!("«{date}» non è una data (AAAA-MM-GG)."),
                format!("«{date}» is not a date (YYYY-MM-DD)."),
            ));
        }
        check(day, Some(date)).map_err(|e| {
            invalid_pattern(format!("Eccezione del {date}: {e}."), format!("Exception on {date}: {e}."))
        })?;
    }
    Ok(pattern)
}

#[utoipa::path(get, path = "/api/staff/calendar/pattern", tag = "calendar", params(UserQuery),
    responses((status = 200, body = PatternOut), (status = 403, body = super::error::ErrorBody)))]
async fn get_pattern(
    State(state): State<AppState>,
    staff: Staff,
    Query(q): Query<UserQuery>,
) -> Result<Json<PatternOut>, ApiError> {
    let user = target(&state, &staff, q.user.as_deref()).await?;
    Ok(Json(pattern_out(&state, &user).await?))
}

#[utoipa::path(put, path = "/api/staff/calendar/pattern", tag = "calendar", params(UserQuery), request_body = PatternBody,
    responses((status = 200, body = PatternOut), (status = 400, description = "invalid_pattern", body = super::error::ErrorBody)))]
async fn put_pattern(
    State(state): State<AppState>,
    staff: Staff,
    Query(q): Query<UserQuery>,
    body: Result<Json<PatternBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<PatternOut>, ApiError> {
    let Json(body) = body?;
    let user = target(&state, &staff, q.user.as_deref()).await?;
    let span = tracing::info_span!("calendar_pattern", user = %user.id, by = %staff.user.id);
    async move {
        let pattern = proposed_pattern(body)?;
        let update =
            UserUpdate { display_name: user.display_name.clone(), role: user.role, active: user.active, pattern };
        let updated = state.store.update_user(&user.id, &update).await?;
        tracing::info!(personal = updated.pattern.is_some(), "working pattern saved");
        Ok(Json(pattern_out(&state, &updated).await?))
    }
    .instrument(span)
    .await
}

/// The body's pattern, checked, as stored JSON (`None`: follow the office's hours).
fn proposed_pattern(body: PatternBody) -> Result<Option<String>, ApiError> {
    match body.pattern.filter(|v| !v.is_null()) {
        Some(v) => Ok(Some(serde_json::to_string(&validate_pattern(v)?).map_err(ApiError::internal)?)),
        None => Ok(None),
    }
}

/// What saving `pattern` would do to the citizens' offer: the slots of every service of the
/// official's offices, now and with the proposed pattern (nothing is saved).
#[utoipa::path(post, path = "/api/staff/calendar/pattern/preview", tag = "calendar", params(UserQuery), request_body = PatternBody,
    responses((status = 200, body = PreviewOut), (status = 400, description = "invalid_pattern", body = super::error::ErrorBody)))]
async fn preview_pattern(
    State(state): State<AppState>,
    staff: Staff,
    Query(q): Query<UserQuery>,
    body: Result<Json<PatternBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<PreviewOut>, ApiError> {
    let Json(body) = body?;
    let user = target(&state, &staff, q.user.as_deref()).await?;
    let proposed = proposed_pattern(body)?;
    let replace = PatternOverride { user_id: &user.id, pattern: proposed.as_deref() };
    let now = state.clock.now();
    let services = state.store.services().await?;
    let mut out = Vec::new();
    for office in state.store.offices_of_user(&user.id).await? {
        for service in services.iter().filter(|s| s.office_ids.contains(&office.id)) {
            let starts = |o: Offer| o.slots.into_iter().map(|s| s.start).collect::<BTreeSet<Timestamp>>();
            let before = starts(offer(&state.store, &office, service, now, None, None).await?);
            let after = starts(offer(&state.store, &office, service, now, None, Some(&replace)).await?);
            out.push(PreviewService {
                office_id: office.id.clone(),
                office_name: office.name.clone(),
                service_id: service.id.clone(),
                service_name: service.name.clone(),
                before: before.len(),
                after: after.len(),
                removed: before.difference(&after).count(),
                added: after.difference(&before).count(),
            });
        }
    }
    let (_, horizon) = window(&state.store).await?;
    let today = ts(now).to_zoned(rome()).date();
    let to = today.checked_add(Span::new().days(i64::from(horizon))).map_err(ApiError::internal)?;
    let sum = |f: fn(&PreviewService) -> usize| out.iter().map(f).sum();
    Ok(Json(PreviewOut {
        from: today.to_string(),
        to: to.to_string(),
        before: sum(|s| s.before),
        after: sum(|s| s.after),
        removed: sum(|s| s.removed),
        added: sum(|s| s.added),
        services: out,
    }))
}

// --- absences ------------------------------------------------------------------------------------------

fn absence_out(a: &Absence) -> AbsenceOut {
    let tz = rome();
    let start = ts(a.starts_at).to_zoned(tz.clone());
    let end = ts(a.ends_at).to_zoned(tz);
    let (end_date, times) = if a.all_day {
        // Stored up to the midnight after the last day.
        (ts(a.ends_at - 1).to_zoned(rome()).date(), None)
    } else {
        (end.date(), Some((hm(start.time()), hm(end.time()))))
    };
    AbsenceOut {
        id: a.id.clone(),
        kind: a.kind.to_string(),
        start: start.date().to_string(),
        end: end_date.to_string(),
        start_time: times.as_ref().map(|t| t.0.clone()),
        end_time: times.map(|t| t.1),
        note: a.note.clone(),
    }
}

fn new_absence(user_id: &str, body: &AbsenceBody) -> Result<NewAbsence, ApiError> {
    let kind: AbsenceKind = body.kind.trim().parse().map_err(|_| {
        ApiError::bad_request(
            "invalid_kind",
            (
                "Tipo di assenza non valido (holiday, sick, training, other).",
                "Invalid kind of absence (holiday, sick, training, other).",
            ),
        )
    })?;
    let start = parse_date(&body.start, "start")?;
    let end = parse_date(&body.end, "end")?;
    if end < start {
        return Err(ApiError::bad_request(
            "invalid_range",
            ("La fine dell'assenza precede l'inizio.", "The absence ends before it starts."),
        ));
    }
    if body.note.chars().count() > NOTE_MAX_CHARS {
        return Err(ApiError::bad_request("invalid_note", ("La nota è troppo lunga.", "The note is too long.")));
    }
    let (starts_at, ends_at, all_day) = match (body.start_time.as_deref(), body.end_time.as_deref()) {
        (None, None) => (local(start, Time::midnight())?, day_bounds(end)?.1, true),
        (Some(a), Some(b)) => {
            let (a, b) = (parse_time(a, "start_time")?, parse_time(b, "end_time")?);
            let (s, e) = (local(start, a)?, local(end, b)?);
            if e <= s {
                return Err(ApiError::bad_request(
                    "invalid_range",
                    ("L'orario di fine deve seguire quello di inizio.", "The end time must come after the start time."),
                ));
            }
            (s, e, false)
        }
        _ => {
            return Err(ApiError::bad_request(
                "invalid_time",
                (
                    "Indica sia l'orario di inizio sia quello di fine, oppure nessuno dei due (giornata intera).",
                    "Give both the start and the end time, or neither (whole day).",
                ),
            ));
        }
    };
    Ok(NewAbsence { user_id: user_id.to_owned(), kind, starts_at, ends_at, all_day, note: body.note.trim().to_owned() })
}

#[utoipa::path(get, path = "/api/staff/calendar/absences", tag = "calendar", params(RangeQuery),
    responses((status = 200, body = Vec<AbsenceOut>)))]
async fn list_absences(
    State(state): State<AppState>,
    staff: Staff,
    Query(q): Query<RangeQuery>,
) -> Result<Json<Vec<AbsenceOut>>, ApiError> {
    let user = target(&state, &staff, q.user.as_deref()).await?;
    let from = match q.from.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => parse_date(s, "from")?,
        None => ts(state.clock.now()).to_zoned(rome()).date(),
    };
    let to = match q.to.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => parse_date(s, "to")?,
        None => from.checked_add(Span::new().years(1)).map_err(ApiError::internal)?,
    };
    let (from_s, _) = day_bounds(from)?;
    let (_, to_s) = day_bounds(to)?;
    let list = state.store.absences_of_users(std::slice::from_ref(&user.id), from_s, to_s).await?;
    Ok(Json(list.iter().map(absence_out).collect()))
}

#[utoipa::path(post, path = "/api/staff/calendar/absences", tag = "calendar", params(UserQuery), request_body = AbsenceBody,
    responses((status = 201, body = AbsenceOut), (status = 400, body = super::error::ErrorBody)))]
async fn create_absence(
    State(state): State<AppState>,
    staff: Staff,
    Query(q): Query<UserQuery>,
    body: Result<Json<AbsenceBody>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<AbsenceOut>), ApiError> {
    let Json(body) = body?;
    let user = target(&state, &staff, q.user.as_deref()).await?;
    let new = new_absence(&user.id, &body)?;
    let created = state.store.create_absence(&new, state.clock.now()).await?;
    tracing::info!(user = %user.id, by = %staff.user.id, absence = %created.id, "absence added");
    Ok((StatusCode::CREATED, Json(absence_out(&created))))
}

#[utoipa::path(delete, path = "/api/staff/calendar/absences/{id}", tag = "calendar",
    params(("id" = String, Path, description = "Absence id"), UserQuery),
    responses((status = 204), (status = 404, body = super::error::ErrorBody)))]
async fn delete_absence(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
    Query(q): Query<UserQuery>,
) -> Result<StatusCode, ApiError> {
    let user = target(&state, &staff, q.user.as_deref()).await?;
    state.store.delete_absence(&user.id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// --- sources -------------------------------------------------------------------------------------------

fn source_out(s: &CalendarSource) -> SourceOut {
    SourceOut {
        id: s.id.clone(),
        kind: s.kind.to_string(),
        label: s.label.clone(),
        url_host: s.url.as_deref().and_then(|u| url::Url::parse(u).ok()).and_then(|u| u.host_str().map(str::to_owned)),
        last_fetch_at: s.last_fetch_at.map(rfc3339),
        last_ok_at: s.last_ok_at.map(rfc3339),
        last_error: s.last_error.clone(),
        busy_count: s.busy_count,
    }
}

fn label_or(label: &str, fallback: &str) -> Result<String, ApiError> {
    let label = label.trim();
    if label.chars().count() > LABEL_MAX_CHARS {
        return Err(ApiError::bad_request(
            "invalid_label",
            ("Il nome del calendario è troppo lungo.", "The calendar name is too long."),
        ));
    }
    Ok(if label.is_empty() { fallback.to_owned() } else { label.to_owned() })
}

/// Calendars one person may connect (subscriptions and uploads together): each is refreshed from
/// the outside periodically, so the count is bounded.
pub const MAX_SOURCES_PER_USER: usize = 10;
/// The shortest interval between two on-demand refreshes of one subscription.
pub const MIN_REFRESH_SECS: i64 = 60;

async fn room_for_another_source(state: &AppState, user: &User) -> Result<(), ApiError> {
    if state.store.sources_of_user(&user.id).await?.len() >= MAX_SOURCES_PER_USER {
        return Err(ApiError::conflict(
            "too_many_calendars",
            (
                format!(
                    "Puoi collegare al massimo {MAX_SOURCES_PER_USER} calendari: rimuovine uno per aggiungerne un altro."
                ),
                format!("You can connect at most {MAX_SOURCES_PER_USER} calendars: remove one to add another."),
            ),
        ));
    }
    Ok(())
}

async fn own_source(state: &AppState, user: &User, id: &str) -> Result<CalendarSource, ApiError> {
    match state.store.source(id).await? {
        Some(s) if s.user_id == user.id => Ok(s),
        _ => Err(ApiError::NotFound),
    }
}

#[utoipa::path(get, path = "/api/staff/calendar/sources", tag = "calendar", params(UserQuery),
    responses((status = 200, body = Vec<SourceOut>)))]
async fn list_sources(
    State(state): State<AppState>,
    staff: Staff,
    Query(q): Query<UserQuery>,
) -> Result<Json<Vec<SourceOut>>, ApiError> {
    let user = target(&state, &staff, q.user.as_deref()).await?;
    Ok(Json(state.store.sources_of_user(&user.id).await?.iter().map(source_out).collect()))
}

#[utoipa::path(post, path = "/api/staff/calendar/sources", tag = "calendar", params(UserQuery), request_body = SourceBody,
    responses((status = 201, description = "Created and fetched once; a failed fetch shows in last_error", body = SourceOut),
        (status = 400, description = "invalid_url", body = super::error::ErrorBody),
        (status = 409, description = "`too_many_calendars`", body = super::error::ErrorBody)))]
async fn create_source(
    State(state): State<AppState>,
    staff: Staff,
    Query(q): Query<UserQuery>,
    body: Result<Json<SourceBody>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<SourceOut>), ApiError> {
    let Json(body) = body?;
    let user = target(&state, &staff, q.user.as_deref()).await?;
    let url = calendar_fetch::normalize_url(&body.url)
        .ok_or_else(|| ApiError::bad_request("invalid_url", FetchError::BadUrl.text()))?;
    let label = label_or(&body.label, url.host_str().unwrap_or("Calendario"))?;
    room_for_another_source(&state, &user).await?;
    let new = NewSource { user_id: user.id.clone(), kind: SourceKind::Url, label, url: Some(url.to_string()) };
    let source = state.store.create_source(&new, &[], state.clock.now()).await?;
    tracing::info!(user = %user.id, by = %staff.user.id, source = %source.id, "calendar subscription added");
    calendar_fetch::refresh(&state.back_office, &source).await?;
    let source = state.store.source(&source.id).await?.ok_or(ApiError::NotFound)?;
    Ok((StatusCode::CREATED, Json(source_out(&source))))
}

#[utoipa::path(post, path = "/api/staff/calendar/sources/{id}/refresh", tag = "calendar",
    params(("id" = String, Path, description = "Source id"), UserQuery),
    responses((status = 200, body = SourceOut), (status = 404, body = super::error::ErrorBody),
        (status = 429, description = "Refreshed less than a minute ago (`Retry-After`)",
            body = super::error::ErrorBody)))]
async fn refresh_source(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
    Query(q): Query<UserQuery>,
) -> Result<Json<SourceOut>, ApiError> {
    let user = target(&state, &staff, q.user.as_deref()).await?;
    let source = own_source(&state, &user, &id).await?;
    // Each fetch reaches out to someone else's server: «Aggiorna» pressed repeatedly (or scripted)
    // must not turn the server into a request cannon.
    let now = state.clock.now();
    if let Some(last) = source.last_fetch_at
        && now - last < MIN_REFRESH_SECS
    {
        return Err(ApiError::TooManyAttempts { retry_after: MIN_REFRESH_SECS - (now - last) });
    }
    calendar_fetch::refresh(&state.back_office, &source).await?;
    let source = state.store.source(&id).await?.ok_or(ApiError::NotFound)?;
    Ok(Json(source_out(&source)))
}

#[utoipa::path(delete, path = "/api/staff/calendar/sources/{id}", tag = "calendar",
    params(("id" = String, Path, description = "Source id"), UserQuery),
    responses((status = 204), (status = 404, body = super::error::ErrorBody)))]
async fn delete_source(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
    Query(q): Query<UserQuery>,
) -> Result<StatusCode, ApiError> {
    let user = target(&state, &staff, q.user.as_deref()).await?;
    state.store.delete_source(&user.id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/staff/calendar/upload", tag = "calendar", params(UploadQuery),
    request_body(content = String, content_type = "text/calendar"),
    responses((status = 201, body = SourceOut), (status = 400, description = "invalid_ics", body = super::error::ErrorBody),
        (status = 409, description = "`too_many_calendars`", body = super::error::ErrorBody),
        (status = 413, description = "too_large", body = super::error::ErrorBody)))]
async fn upload(
    State(state): State<AppState>,
    staff: Staff,
    Query(q): Query<UploadQuery>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<SourceOut>), ApiError> {
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge
        } else {
            ApiError::bad_request("invalid_body", ("Caricamento non riuscito.", "The upload failed."))
        }
    })?;
    let user = target(&state, &staff, q.user.as_deref()).await?;
    let label = label_or(q.label.as_deref().unwrap_or_default(), "Calendario caricato")?;
    room_for_another_source(&state, &user).await?;
    let now = state.clock.now();
    let busy = calendar_fetch::parse_upload(&state.back_office, &body, now).await.map_err(|e| match e {
        UploadError::Fetch(FetchError::TooLarge) => ApiError::TooLarge,
        UploadError::Fetch(e) => ApiError::bad_request("invalid_ics", e.text()),
        UploadError::Store(e) => e.into(),
    })?;
    let new = NewSource { user_id: user.id.clone(), kind: SourceKind::Upload, label, url: None };
    let source = state.store.create_source(&new, &busy, now).await?;
    tracing::info!(user = %user.id, by = %staff.user.id, source = %source.id, intervals = busy.len(), "calendar uploaded");
    Ok((StatusCode::CREATED, Json(source_out(&source))))
}

// --- month ---------------------------------------------------------------------------------------------

#[utoipa::path(get, path = "/api/staff/calendar/month", tag = "calendar", params(MonthQuery),
    responses((status = 200, body = MonthOut), (status = 400, body = super::error::ErrorBody)))]
async fn month(
    State(state): State<AppState>,
    staff: Staff,
    Query(q): Query<MonthQuery>,
) -> Result<Json<MonthOut>, ApiError> {
    let user = target(&state, &staff, q.user.as_deref()).await?;
    let ym = YearMonth::parse(q.month.trim()).filter(|m| YEARS.contains(&m.year)).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_month",
            ("Mese non valido (formato AAAA-MM).", "Invalid month (format YYYY-MM)."),
        )
    })?;
    let first = Date::new(ym.year, ym.month, 1).map_err(ApiError::internal)?;
    let last = first.last_of_month();
    let (from, _) = day_bounds(first)?;
    let (_, to) = day_bounds(last)?;
    let ids = [user.id.clone()];
    let pattern = working_pattern(&state.store, &user).await?;
    let holidays = holiday_names(&state.store, first.year(), first.year()).await?;
    let absences = state.store.absences_of_users(&ids, from, to).await?;
    let busy = state.store.busy_of_users(&ids, from, to).await?;
    let sources = state.store.sources_of_user(&user.id).await?;
    let appts = state.store.appointments_of_official(&user.id, from, to).await?;
    let services = state.store.services().await?;
    let mut days = Vec::new();
    let mut date = first;
    while date <= last {
        let (start, end) = day_bounds(date)?;
        let plan = pattern.as_ref().map(|p| p.plan_for(date));
        let holiday = holidays.get(&date).map(|n| (*n).to_owned());
        let day_absences: Vec<&Absence> = absences.iter().filter(|a| a.starts_at < end && a.ends_at > start).collect();
        let whole_day_absent = day_absences.iter().any(|a| a.starts_at <= start && a.ends_at >= end);
        let status = match plan.map(|p| p.mode()) {
            _ if holiday.is_some() => "holiday",
            _ if whole_day_absent => "absent",
            Some(WorkMode::OnSite) => "on_site",
            Some(WorkMode::Remote) => "remote",
            Some(WorkMode::Off) | None => "off",
        };
        days.push(DayOut {
            date: date.to_string(),
            weekday: date.weekday().to_monday_one_offset(),
            status: status.to_owned(),
            holiday,
            hours: plan.map_or_else(Vec::new, |p| {
                p.hours().iter().map(|r| format!("{}-{}", hm(r.start()), hm(r.end()))).collect()
            }),
            contact: plan.and_then(|p| p.contact()).map(|r| format!("{}-{}", hm(r.start()), hm(r.end()))),
            absences: day_absences.into_iter().map(absence_out).collect(),
            busy: busy
                .iter()
                .filter(|b| b.starts_at < end && b.ends_at > start)
                .map(|b| BusyOut {
                    start: rfc3339(b.starts_at),
                    end: rfc3339(b.ends_at),
                    source: sources.iter().find(|s| s.id == b.source_id).map(|s| s.label.clone()).unwrap_or_default(),
                })
                .collect(),
            appointments: appts
                .iter()
                .filter(|a| a.starts_at >= start && a.starts_at < end)
                .map(|a| AppointmentOut {
                    id: a.id.clone(),
                    code: a.code.clone(),
                    start: rfc3339(a.starts_at),
                    end: rfc3339(a.ends_at),
                    citizen: format!("{} {}", a.first_name, a.last_name),
                    service: services.iter().find(|s| s.id == a.service_id).map(|s| s.name.clone()).unwrap_or_default(),
                    status: a.status.to_string(),
                    mode: a.mode.to_string(),
                })
                .collect(),
        });
        date = date.tomorrow().map_err(ApiError::internal)?;
    }
    Ok(Json(MonthOut { month: ym.to_string(), days }))
}

// --- feeds ---------------------------------------------------------------------------------------------

#[utoipa::path(get, path = "/api/staff/calendar/feeds", tag = "calendar", params(UserQuery),
    responses((status = 200, body = FeedsOut)))]
async fn feed_urls(
    State(state): State<AppState>,
    staff: Staff,
    Query(q): Query<UserQuery>,
) -> Result<Json<FeedsOut>, ApiError> {
    let user = target(&state, &staff, q.user.as_deref()).await?;
    let official_url = feeds::url(&state.back_office, FeedSubject::Official, &user.id).await?;
    let mut offices = Vec::new();
    for office in state.store.offices_of_user(&user.id).await? {
        let url = feeds::url(&state.back_office, FeedSubject::Office, &office.id).await?;
        offices.push(OfficeFeed { office_id: office.id, name: office.name, url });
    }
    Ok(Json(FeedsOut { official_url, offices }))
}

#[utoipa::path(post, path = "/api/staff/calendar/feeds/rotate", tag = "calendar", params(RotateQuery),
    responses((status = 200, description = "The feeds with the new URL", body = FeedsOut)))]
async fn rotate_feed(
    State(state): State<AppState>,
    staff: Staff,
    Query(q): Query<RotateQuery>,
) -> Result<Json<FeedsOut>, ApiError> {
    let user = target(&state, &staff, q.user.as_deref()).await?;
    match q.office.as_deref().filter(|o| !o.is_empty()) {
        None => {
            feeds::rotate(&state.back_office, FeedSubject::Official, &user.id).await?;
        }
        Some(office) => {
            let member = state.store.offices_of_user(&staff.user.id).await?.iter().any(|o| o.id == office);
            if !member && !staff.is_admin() {
                return Err(ApiError::Forbidden);
            }
            state.store.office(office).await?.ok_or(ApiError::NotFound)?;
            feeds::rotate(&state.back_office, FeedSubject::Office, office).await?;
        }
    }
    tracing::info!(user = %user.id, by = %staff.user.id, office = ?q.office, "feed URL rotated");
    feed_urls(State(state), staff, Query(UserQuery { user: q.user })).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_errors_name_the_day() {
        let day = |mode: &str, hours: &[&str]| serde_json::json!({"mode": mode, "hours": hours});
        let mut week = vec![day("off", &[]); 7];
        week[2] = day("remote", &["14:00-09:00"]);
        let e = validate_pattern(serde_json::json!({ "week": week })).unwrap_err();
        assert!(e.to_string().contains("Mercoledì"), "{e}");
        week[2] = day("remote", &["08:00-12:00", "13:00-15:00"]);
        let e = validate_pattern(serde_json::json!({ "week": week })).unwrap_err();
        assert!(e.to_string().contains("Mercoledì"), "contact needed with split hours: {e}");
        week[2] = day("remote", &["08:00-12:00"]);
        assert!(validate_pattern(serde_json::json!({ "week": week })).is_ok());
        assert!(validate_pattern(serde_json::json!({ "week": [] })).is_err());
    }

    #[test]
    fn office_hours_become_a_valid_pattern() {
        let hours = r#"[["08:30-12:30","14:30-16:30"],["09:00-12:00"],[],[],[],[],[]]"#;
        let p = office_hours_pattern(opening_week(&[hours]).unwrap());
        assert_eq!(p.week[0].hours, ["08:30-12:30", "14:30-16:30"]);
        // The band spans both ranges: the lunch break does not count against its length.
        assert_eq!(p.week[0].contact.as_deref(), Some("08:30-16:30"));
        assert_eq!((p.week[1].mode, p.week[1].contact.as_deref()), (ModeJson::OnSite, None));
        assert_eq!(p.week[2].mode, ModeJson::Off);
        let afternoon_long = r#"[["08:00-09:00","14:00-18:00"],[],[],[],[],[],[]]"#;
        let p2 = office_hours_pattern(opening_week(&[afternoon_long]).unwrap());
        assert_eq!(p2.week[0].contact.as_deref(), Some("08:00-18:00"));
        assert!(validate_pattern(serde_json::to_value(&p).unwrap()).is_ok());
    }

    #[test]
    fn absences_whole_days_and_hours() {
        let body = |st: Option<&str>, et: Option<&str>| AbsenceBody {
            kind: "holiday".into(),
            start: "2027-03-27".into(),
            end: "2027-03-28".into(),
            start_time: st.map(str::to_owned),
            end_time: et.map(str::to_owned),
            note: String::new(),
        };
        // Across the spring DST change: 24 + 23 hours.
        let a = new_absence("u", &body(None, None)).unwrap();
        assert!(a.all_day);
        assert_eq!(a.ends_at - a.starts_at, 47 * 3600);
        let out = absence_out(&Absence {
            id: "x".into(),
            user_id: "u".into(),
            kind: a.kind,
            starts_at: a.starts_at,
            ends_at: a.ends_at,
            all_day: true,
            note: String::new(),
            created_at: 0,
        });
        assert_eq!((out.start.as_str(), out.end.as_str(), out.start_time), ("2027-03-27", "2027-03-28", None));
        assert!(new_absence("u", &body(Some("09:00"), None)).is_err());
        let h = new_absence("u", &body(Some("09:00"), Some("11:00"))).unwrap();
        assert!(!h.all_day);
        let mut single = body(Some("11:00"), Some("09:00"));
        single.end = single.start.clone();
        assert!(new_absence("u", &single).is_err());
    }
}
