//! Calendar feeds out: `/feeds/<secret>.ics`, one per official and one per office, for Outlook,
//! Google and Thunderbird subscriptions.
//!
//! The secret in the URL is derived, not drawn: an HMAC (the HS256 signature made with the
//! server's token key) of `(kind, subject, generation)`. So the URL can be shown again at any time
//! while the database holds only its SHA-256; rotating bumps the generation, which replaces the
//! stored hash and kills the old URL. Secrets are never logged (the span has the subject only).
//!
//! Privacy: an event names the service and the citizen's surname initial only; the staff join
//! link never goes into a feed (a feed may be shared or synced to third-party clouds).

use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use jiff::civil::Date;
use serde::Serialize;
use sportello_domain::ics::{FeedEvent, FeedKind, feed};
use sportello_domain::{WorkMode, WorkingPattern};
use sportello_store::{Appointment, FeedSubject, Mode, Office, Service, Status, StoreError};
use tracing::Instrument;

use crate::api::ApiError;
use crate::api::auth::sha256_hex;
use crate::api::calendar::{day_bounds, holiday_names, rome, working_pattern};
use crate::state::AppState;
use crate::token::TokenKey;

/// On-site/remote days published ahead.
pub const DAYS_AHEAD: i64 = 60;
/// Past appointments kept in a feed (clients drop events that vanish).
const PAST_DAYS: i64 = 30;
/// Future appointments in a feed.
const FUTURE_DAYS: i64 = 366;

#[derive(Serialize)]
struct FeedClaims<'a> {
    feed: &'a str,
    sub: &'a str,
    generation: i64,
}

/// The URL secret of a feed at a generation (HMAC-SHA256 with the token key, base64url).
pub fn secret(tokens: &TokenKey, kind: FeedSubject, subject: &str, generation: i64) -> Result<String, ApiError> {
    let token =
        tokens.sign(&FeedClaims { feed: kind.as_str(), sub: subject, generation }).map_err(ApiError::internal)?;
    Ok(token.rsplit('.').next().unwrap_or_default().to_owned())
}

fn url_of(state: &AppState, secret: &str) -> String {
    format!("{}/feeds/{secret}.ics", state.config.public_url)
}

/// The feed's URL, creating its token (generation 0) on first use.
pub async fn url(state: &AppState, kind: FeedSubject, subject: &str) -> Result<String, ApiError> {
    if let Some(t) = state.store.feed_token(kind, subject).await? {
        return Ok(url_of(state, &secret(&state.tokens, kind, subject, t.generation)?));
    }
    let s = secret(&state.tokens, kind, subject, 0)?;
    match state.store.set_feed_token(kind, subject, &sha256_hex(&s), 0, state.clock.now()).await {
        // A concurrent first call stored the same generation: the same secret.
        Ok(()) | Err(StoreError::Conflict(_)) => Ok(url_of(state, &s)),
        Err(e) => Err(e.into()),
    }
}

/// A new URL for the feed; the previous one answers 404 from now on.
pub async fn rotate(state: &AppState, kind: FeedSubject, subject: &str) -> Result<String, ApiError> {
    let generation = state.store.feed_token(kind, subject).await?.map_or(0, |t| t.generation + 1);
    let s = secret(&state.tokens, kind, subject, generation)?;
    state.store.set_feed_token(kind, subject, &sha256_hex(&s), generation, state.clock.now()).await?;
    Ok(url_of(state, &s))
}

/// `GET /feeds/{secret}.ics`.
pub async fn serve(State(state): State<AppState>, Path(file): Path<String>) -> Response {
    let Some(secret) = file.strip_suffix(".ics").filter(|s| !s.is_empty() && s.len() <= 100) else {
        return ApiError::NotFound.into_response();
    };
    let token = match state.store.feed_token_by_hash(&sha256_hex(secret)).await {
        Ok(Some(t)) => t,
        Ok(None) => return ApiError::NotFound.into_response(),
        Err(e) => return ApiError::from(e).into_response(),
    };
    let span = tracing::info_span!("feed", kind = %token.kind, subject = %token.subject_id);
    let body = async {
        match token.kind {
            FeedSubject::Official => official_feed(&state, &token.subject_id).await,
            FeedSubject::Office => office_feed(&state, &token.subject_id).await,
        }
    }
    .instrument(span)
    .await;
    match body {
        Ok(text) => {
            let mut r = text.into_response();
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/calendar; charset=utf-8"));
            // Subscribed clients poll; nothing personal should sit in shared caches.
            r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=300"));
            r
        }
        Err(e) => e.into_response(),
    }
}

fn ts(secs: i64) -> Timestamp {
    Timestamp::from_second(secs).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// "Carta d'identità – R." : the service and the citizen's surname initial.
fn summary(appt: &Appointment, services: &[Service]) -> String {
    let service = services.iter().find(|s| s.id == appt.service_id).map_or("Appuntamento", |s| s.name.as_str());
    match appt.last_name.trim().chars().next() {
        Some(initial) => format!("{service} – {}.", initial.to_uppercase()),
        None => service.to_owned(),
    }
}

fn appointment_event(state: &AppState, appt: &Appointment, services: &[Service], offices: &[Office]) -> FeedEvent {
    let office = offices.iter().find(|o| o.id == appt.office_id);
    let (location, description) = match appt.mode {
        Mode::InPerson => {
            let location = office.map(|o| if o.address.is_empty() { o.name.clone() } else { o.address.clone() });
            (location, Some(format!("Codice prenotazione: {}", appt.code)))
        }
        // The staff dashboard, never the join link (which is a credential).
        Mode::Video => (
            Some("Ufficio virtuale".to_owned()),
            Some(format!("Codice prenotazione: {}\n{}/staff", appt.code, state.config.public_url)),
        ),
    };
    FeedEvent {
        // As in the appointment email's .ics: the clients recognise the same event.
        uid: format!("appt-{}@sportello", appt.id),
        start: ts(appt.starts_at),
        end: ts(appt.ends_at),
        summary: summary(appt, services),
        location,
        description,
        kind: FeedKind::Appointment,
    }
}

async fn official_feed(state: &AppState, user_id: &str) -> Result<String, ApiError> {
    let user = state.store.user(user_id).await?.ok_or(ApiError::NotFound)?;
    let now = state.clock.now();
    let mut appts =
        state.store.appointments_of_official(user_id, now - PAST_DAYS * 86_400, now + FUTURE_DAYS * 86_400).await?;
    appts.retain(|a| a.status == Status::Confirmed);
    let services = state.store.services().await?;
    let offices = state.store.offices().await?;
    let mut events: Vec<FeedEvent> = appts.iter().map(|a| appointment_event(state, a, &services, &offices)).collect();
    if let Some(pattern) = working_pattern(state, &user).await? {
        events.extend(day_events(state, &user.id, &pattern, now).await?);
    }
    Ok(feed(&format!("Sportello – {}", user.display_name), ts(now), &events))
}

/// The on-site and remote days of the next [`DAYS_AHEAD`] days (holidays and whole-day absences
/// are not working days).
async fn day_events(
    state: &AppState,
    user_id: &str,
    pattern: &WorkingPattern,
    now: i64,
) -> Result<Vec<FeedEvent>, ApiError> {
    let tz = rome();
    let today = ts(now).to_zoned(tz.clone()).date();
    let last = today.checked_add(jiff::Span::new().days(DAYS_AHEAD)).map_err(ApiError::internal)?;
    let holidays = holiday_names(state, today.year(), last.year()).await?;
    let (from, _) = day_bounds(today)?;
    let (_, to) = day_bounds(last)?;
    let absences = state.store.absences_of_users(&[user_id.to_owned()], from, to).await?;
    let mut events = Vec::new();
    let mut date: Date = today;
    while date <= last {
        let (start, end) = day_bounds(date)?;
        let absent = absences.iter().any(|a| a.starts_at <= start && a.ends_at >= end);
        let kind = match pattern.plan_for(date).mode() {
            _ if holidays.contains_key(&date) || absent => None,
            WorkMode::OnSite => Some((FeedKind::OnSiteDay, "In sede")),
            WorkMode::Remote => Some((FeedKind::RemoteDay, "Lavoro agile")),
            WorkMode::Off => None,
        };
        if let Some((kind, label)) = kind {
            events.push(FeedEvent {
                uid: format!("day-{user_id}-{}@sportello", date.strftime("%Y%m%d")),
                start: ts(start),
                end: ts(end),
                summary: label.to_owned(),
                location: None,
                description: None,
                kind,
            });
        }
        date = date.tomorrow().map_err(ApiError::internal)?;
    }
    Ok(events)
}

async fn office_feed(state: &AppState, office_id: &str) -> Result<String, ApiError> {
    let office = state.store.office(office_id).await?.ok_or(ApiError::NotFound)?;
    let now = state.clock.now();
    let mut appts = state
        .store
        .appointments_of_offices(std::slice::from_ref(&office.id), now - PAST_DAYS * 86_400, now + FUTURE_DAYS * 86_400)
        .await?;
    appts.retain(|a| a.status == Status::Confirmed);
    let services = state.store.services().await?;
    let offices = [office];
    let events: Vec<FeedEvent> = appts.iter().map(|a| appointment_event(state, a, &services, &offices)).collect();
    Ok(feed(&format!("Sportello – {}", offices[0].name), ts(now), &events))
}
