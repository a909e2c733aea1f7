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

use jiff::civil::Date;
use serde::Serialize;
use sportello_domain::ics::{FeedEvent, FeedKind, feed};
use sportello_domain::{WorkMode, WorkingPattern};
use sportello_store::{Appointment, FeedSubject, Mode, Office, Service, Status, StoreError};
use tracing::Instrument;

use crate::context::{BackOffice, BackOfficeError};
use crate::schedule::{holiday_names, working_pattern};
use crate::secrets::sha256_hex;
use crate::time::{day_bounds, rome, ts};
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
pub fn secret(tokens: &TokenKey, kind: FeedSubject, subject: &str, generation: i64) -> Result<String, BackOfficeError> {
    let token = tokens.sign(&FeedClaims { feed: kind.as_str(), sub: subject, generation })?;
    Ok(token.rsplit('.').next().unwrap_or_default().to_owned())
}

fn url_of(back: &BackOffice, secret: &str) -> String {
    format!("{}/feeds/{secret}.ics", back.public_url)
}

/// The feed's URL, creating its token (generation 0) on first use.
pub async fn url(back: &BackOffice, kind: FeedSubject, subject: &str) -> Result<String, BackOfficeError> {
    if let Some(t) = back.store.feed_token(kind, subject).await? {
        return Ok(url_of(back, &secret(&back.tokens, kind, subject, t.generation)?));
    }
    let s = secret(&back.tokens, kind, subject, 0)?;
    match back.store.set_feed_token(kind, subject, &sha256_hex(&s), 0, back.clock.now()).await {
        // A concurrent first call stored the same generation: the same secret.
        Ok(()) | Err(StoreError::Conflict(_)) => Ok(url_of(back, &s)),
        Err(e) => Err(e.into()),
    }
}

/// A new URL for the feed; the previous one answers 404 from now on.
pub async fn rotate(back: &BackOffice, kind: FeedSubject, subject: &str) -> Result<String, BackOfficeError> {
    let generation = back.store.feed_token(kind, subject).await?.map_or(0, |t| t.generation + 1);
    let s = secret(&back.tokens, kind, subject, generation)?;
    back.store.set_feed_token(kind, subject, &sha256_hex(&s), generation, back.clock.now()).await?;
    Ok(url_of(back, &s))
}

/// The feed a secret opens, as `.ics` text; `None` for an unknown secret.
pub async fn by_secret(back: &BackOffice, secret: &str) -> Result<Option<String>, BackOfficeError> {
    let Some(token) = back.store.feed_token_by_hash(&sha256_hex(secret)).await? else { return Ok(None) };
    let span = tracing::info_span!("feed", kind = %token.kind, subject = %token.subject_id);
    async {
        match token.kind {
            FeedSubject::Official => official_feed(back, &token.subject_id).await,
            FeedSubject::Office => office_feed(back, &token.subject_id).await,
        }
    }
    .instrument(span)
    .await
    .map(Some)
}

/// "Carta d'identità – R." : the service and the citizen's surname initial.
fn summary(appt: &Appointment, services: &[Service]) -> String {
    let service = services.iter().find(|s| s.id == appt.service_id).map_or("Appuntamento", |s| s.name.as_str());
    match appt.last_name.trim().chars().next() {
        Some(initial) => format!("{service} – {}.", initial.to_uppercase()),
        None => service.to_owned(),
    }
}

fn appointment_event(back: &BackOffice, appt: &Appointment, services: &[Service], offices: &[Office]) -> FeedEvent {
    let office = offices.iter().find(|o| o.id == appt.office_id);
    let (location, description) = match appt.mode {
        Mode::InPerson => {
            let location = office.map(|o| if o.address.is_empty() { o.name.clone() } else { o.address.clone() });
            (location, Some(format!("Codice prenotazione: {}", appt.code)))
        }
        // The staff dashboard, never the join link (which is a credential).
        Mode::Video => (
            Some("Ufficio virtuale".to_owned()),
            Some(format!("Codice prenotazione: {}\n{}/staff", appt.code, back.public_url)),
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

async fn official_feed(back: &BackOffice, user_id: &str) -> Result<String, BackOfficeError> {
    let user = back.store.user(user_id).await?.ok_or(BackOfficeError::NotFound)?;
    let now = back.clock.now();
    let mut appts =
        back.store.appointments_of_official(user_id, now - PAST_DAYS * 86_400, now + FUTURE_DAYS * 86_400).await?;
    appts.retain(|a| a.status == Status::Confirmed);
    let services = back.store.services().await?;
    let offices = back.store.offices().await?;
    let mut events: Vec<FeedEvent> = appts.iter().map(|a| appointment_event(back, a, &services, &offices)).collect();
    if let Some(pattern) = working_pattern(&back.store, &user).await? {
        events.extend(day_events(back, &user.id, &pattern, now).await?);
    }
    Ok(feed(&format!("Sportello – {}", user.display_name), ts(now), &events))
}

/// The on-site and remote days of the next [`DAYS_AHEAD`] days (holidays and whole-day absences
/// are not working days).
async fn day_events(
    back: &BackOffice,
    user_id: &str,
    pattern: &WorkingPattern,
    now: i64,
) -> Result<Vec<FeedEvent>, BackOfficeError> {
    let tz = rome();
    let today = ts(now).to_zoned(tz.clone()).date();
    let last = today.checked_add(jiff::Span::new().days(DAYS_AHEAD))?;
    let holidays = holiday_names(&back.store, today.year(), last.year()).await?;
    let (from, _) = day_bounds(today)?;
    let (_, to) = day_bounds(last)?;
    let absences = back.store.absences_of_users(&[user_id.to_owned()], from, to).await?;
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
        date = date.tomorrow()?;
    }
    Ok(events)
}

async fn office_feed(back: &BackOffice, office_id: &str) -> Result<String, BackOfficeError> {
    let row = back.store.office(office_id).await?.ok_or(BackOfficeError::NotFound)?;
    let now = back.clock.now();
    let mut appts = back
        .store
        .appointments_of_offices(std::slice::from_ref(&row.id), now - PAST_DAYS * 86_400, now + FUTURE_DAYS * 86_400)
        .await?;
    appts.retain(|a| a.status == Status::Confirmed);
    let services = back.store.services().await?;
    let offices = [row];
    let events: Vec<FeedEvent> = appts.iter().map(|a| appointment_event(back, a, &services, &offices)).collect();
    Ok(feed(&format!("Sportello – {}", offices[0].name), ts(now), &events))
}
