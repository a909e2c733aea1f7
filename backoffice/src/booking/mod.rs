//! The citizens' booking use cases, with no account: [`book`], [`reschedule`], [`cancel`] and
//! [`rate`], and opening a booking by code + secret ([`open`]). The HTTP edge parses and checks the
//! request's fields, then calls these with `now`; the rules (free slots, codes, when a booking can
//! still change) are `sportello-domain`'s, and this module does the reads, writes and emails around
//! them. Every refusal is a [`BookingError`] with its code and the text the citizen reads.
//!
//! A booking's secret is drawn here, mailed in the manage link and stored only as its SHA-256; it
//! is never logged. A wrong secret and an unknown code are the same [`BookingError::NotFound`].

pub mod notify;
pub mod offer;

use jiff::Timestamp;
use sportello_domain::booking::Lang;
use sportello_domain::{FiscalCode, Requester, booking_code, normalize_code};
use sportello_store::{
    Appointment, Mode, Modes, NewAppointment, Office, Reschedule, Service, Status, StoreError, User,
};

use self::notify::{Notice, notify};
use self::offer::offer;
use crate::appio;
use crate::context::{BackOffice, BackOfficeError};
use crate::convert::{meeting_mode, modes};
use crate::links;
use crate::secrets::{new_secret, sha256_hex};
use crate::settings::{SETTING_MAX_ACTIVE, parsed};
use crate::text::Text;
use crate::time::ts;

const DEFAULT_MAX_ACTIVE: u32 = 3;
/// Attempts to draw an unused booking code (40 bits: a collision is already rare).
const CODE_ATTEMPTS: usize = 5;
const COMMENT_MAX_CHARS: usize = 1000;

/// A refused or failed booking use case. Refusals carry a stable [`code`](BookingError::code) and
/// the [`text`](BookingError::text) the citizen reads; the HTTP edge maps them once (`api::error`).
#[derive(Debug, thiserror::Error)]
pub enum BookingError {
    /// Unknown code, or a secret that does not open it.
    #[error("not found")]
    NotFound,
    #[error("unknown office")]
    UnknownOffice,
    #[error("unknown service")]
    UnknownService,
    #[error("the office does not handle the service")]
    ServiceNotOffered,
    #[error("the service is not offered in this mode")]
    ModeNotOffered,
    #[error("the time is not one of the free slots")]
    SlotUnavailable,
    #[error("the email holds {max_active} upcoming appointments with the office")]
    TooManyBookings { max_active: u32 },
    #[error("already cancelled")]
    AlreadyCancelled,
    #[error("the appointment is over")]
    Over,
    #[error("the appointment has started")]
    Started,
    #[error("rating out of range")]
    InvalidRating,
    #[error("comment too long or with control characters")]
    InvalidComment,
    #[error("already rated")]
    AlreadyRated,
    #[error("no unused booking code after several draws")]
    NoFreeCode,
    #[error("{0} missing")]
    Missing(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    BackOffice(#[from] BackOfficeError),
}

/// How the edge answers a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The request names something that does not exist or is not allowed (400).
    Invalid,
    /// The booking's state or the calendar does not allow it now (409).
    Conflict,
}

impl BookingError {
    /// The refusal's kind, machine code and text; `None` for `NotFound` and failures.
    pub fn refusal(&self) -> Option<(Refusal, &'static str, Text)> {
        use BookingError as E;
        let (kind, code, text): (_, _, Text) = match self {
            E::UnknownOffice => {
                (Refusal::Invalid, "unknown_office", ("L'ufficio indicato non esiste.", "The office does not exist.").into())
            }
            E::UnknownService => (
                Refusal::Invalid,
                "unknown_service",
                ("Il servizio indicato non esiste.", "The service does not exist.").into(),
            ),
            E::ServiceNotOffered => (
                Refusal::Invalid,
                "service_not_offered",
                ("Questo ufficio non si occupa del servizio scelto.", "This office does not handle the chosen service.")
                    .into(),
            ),
            E::ModeNotOffered => (
                Refusal::Invalid,
                "invalid_mode",
                ("Questo servizio non prevede la modalità scelta.", "This service is not offered in the chosen mode.")
                    .into(),
            ),
            E::SlotUnavailable => (
                Refusal::Conflict,
                "slot_unavailable",
                (
                    "L'orario scelto non è disponibile: scegline uno tra quelli proposti.",
                    "The chosen time is not available: choose one of the times offered.",
                )
                    .into(),
            ),
            E::TooManyBookings { max_active } => (
                Refusal::Conflict,
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
                )
                    .into(),
            ),
            E::AlreadyCancelled => (
                Refusal::Conflict,
                "already_cancelled",
                ("L'appuntamento è già stato annullato.", "The appointment was already cancelled.").into(),
            ),
            E::Over => (
                Refusal::Conflict,
                "too_late",
                ("L'appuntamento si è già concluso.", "The appointment is already over.").into(),
            ),
            E::Started => (
                Refusal::Conflict,
                "too_late",
                (
                    "L'appuntamento è già iniziato: non si può più annullare o spostare online. Contatta l'ufficio.",
                    "The appointment has already started: it can no longer be cancelled or moved online. Please contact the office.",
                )
                    .into(),
            ),
            E::InvalidRating => {
                (Refusal::Invalid, "invalid_rating", ("Scegli un voto da 1 a 5.", "Choose a rating from 1 to 5.").into())
            }
            E::InvalidComment => (
                Refusal::Invalid,
                "invalid_comment",
                (
                    "Il commento può contenere al massimo 1000 caratteri.",
                    "The comment can have at most 1000 characters.",
                )
                    .into(),
            ),
            E::AlreadyRated => (
                Refusal::Conflict,
                "already_rated",
                ("Hai già lasciato una valutazione: grazie!", "You have already left a rating: thank you!").into(),
            ),
            E::NotFound | E::NoFreeCode | E::Missing(_) | E::Store(_) | E::BackOffice(_) => return None,
        };
        Some((kind, code, text))
    }
}

/// A booking the edge has checked field by field: the requester is valid, the time parsed.
pub struct NewBooking {
    pub office: Office,
    pub service: Service,
    pub requester: Requester,
    pub mode: Mode,
    pub start: Timestamp,
    /// The language of the emails.
    pub lang: Lang,
    /// The citizen chose App IO notifications with this fiscal code (`crate::appio`); `None` when
    /// they did not or App IO is off.
    pub appio_fiscal_code: Option<FiscalCode>,
    /// The citizen logged in with SPID/CIE (a keyed hash of their fiscal code), so that they find
    /// the booking among theirs; `None` without login.
    pub citizen_key: Option<String>,
}

/// A booking made: the appointment and the secret that manages it (shown once, and mailed).
pub struct Booked {
    pub appointment: Appointment,
    pub office: Office,
    pub service: Service,
    pub secret: String,
    /// App IO notifications are on for this booking.
    pub appio: bool,
}

/// An appointment after a change, with what its page shows.
pub struct Changed {
    pub appointment: Appointment,
    pub office: Office,
    pub service: Service,
}

/// The office and service of a booking; the service must be one the office handles.
pub async fn office_and_service(
    back: &BackOffice,
    office_id: &str,
    service_id: &str,
) -> Result<(Office, Service), BookingError> {
    let office = match back.store.office(office_id).await? {
        Some(o) if !office_id.is_empty() => o,
        _ => return Err(BookingError::UnknownOffice),
    };
    let service = match back.store.service(service_id).await? {
        Some(s) if !service_id.is_empty() => s,
        _ => return Err(BookingError::UnknownService),
    };
    if !service.office_ids.contains(&office.id) {
        return Err(BookingError::ServiceNotOffered);
    }
    Ok((office, service))
}

/// The meeting mode of a booking: the one asked for if the service offers it, else what the
/// service offers (video first).
pub fn mode_for(service: &Service, asked: Option<Mode>) -> Result<Mode, BookingError> {
    let mode = match asked {
        Some(m) => m,
        None if matches!(service.modes, Modes::InPerson) => Mode::InPerson,
        None => Mode::Video,
    };
    if !modes(service.modes).allows(meeting_mode(mode)) {
        return Err(BookingError::ModeNotOffered);
    }
    Ok(mode)
}

/// Books `booking.start` with the least loaded free official, draws the code and the secret, and
/// mails the confirmation.
pub async fn book(back: &BackOffice, booking: NewBooking, now: i64) -> Result<Booked, BookingError> {
    let NewBooking { office, service, requester, mode, start, lang, appio_fiscal_code, citizen_key } = booking;
    if start.as_second() <= now {
        return Err(BookingError::SlotUnavailable);
    }
    let max_active = parsed::<u32>(&back.store, SETTING_MAX_ACTIVE).await?.unwrap_or(DEFAULT_MAX_ACTIVE);
    if back.store.active_bookings_of_email(&office.id, &requester.email, now).await? >= i64::from(max_active) {
        tracing::info!("booking refused: the email holds the most appointments allowed with this office");
        return Err(BookingError::TooManyBookings { max_active });
    }
    let offer = offer(&back.store, &office, &service, now, None, None).await?;
    let slot = offer.slot_at(start).ok_or(BookingError::SlotUnavailable)?;
    let candidates = offer.candidates(slot, meeting_mode(mode));
    if candidates.is_empty() {
        return Err(BookingError::SlotUnavailable);
    }
    let secret = new_secret();
    let mut booked = None;
    'officials: for official in candidates {
        for _ in 0..CODE_ATTEMPTS {
            let new = NewAppointment {
                code: booking_code(rand::random()),
                secret_hash: sha256_hex(&secret),
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
            match back.store.book(&new, now).await {
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
        return Err(BookingError::NoFreeCode);
    }
    let appt = booked.ok_or(StoreError::SlotTaken)?;
    tracing::Span::current().record("code", appt.code.as_str());
    tracing::info!(appointment = %appt.id, "booked");
    if let Some(key) = &citizen_key {
        // Only their list reads it: the booking stands (and is mailed) without it.
        if let Err(error) = back.store.set_appointment_citizen_key(&appt.id, key).await {
            tracing::error!(%error, "booking not linked to the logged-in citizen");
        }
    }
    metrics::counter!("sportello_bookings_total").increment(1);
    notify::confirm(back, &secret, &appt, &office, &service, now).await?;
    // After the commit and the email: App IO never holds up or undoes a booking.
    let appio = match &appio_fiscal_code {
        Some(code) => appio::choose(back, code, &appt, &office, &service, now).await,
        None => false,
    };
    Ok(Booked { appointment: appt, office, service, secret, appio })
}

/// The appointment behind `code` if `secret` opens it; one [`BookingError::NotFound`] for every failure.
pub async fn open(back: &BackOffice, code: &str, secret: Option<&str>) -> Result<Appointment, BookingError> {
    let code = normalize_code(code).ok_or(BookingError::NotFound)?;
    let secret = secret.map(str::trim).filter(|s| !s.is_empty()).ok_or(BookingError::NotFound)?;
    let appt = back.store.appointment_by_code(&code).await?.ok_or(BookingError::NotFound)?;
    if !links::secret_matches(&back.tokens, &appt, secret) {
        tracing::info!("wrong booking secret");
        return Err(BookingError::NotFound);
    }
    Ok(appt)
}

/// The office and service an appointment was booked with.
pub async fn context(back: &BackOffice, appt: &Appointment) -> Result<(Office, Service), BookingError> {
    let office = back.store.office(&appt.office_id).await?.ok_or(BookingError::Missing("office"))?;
    let service = back.store.service(&appt.service_id).await?.ok_or(BookingError::Missing("service"))?;
    Ok((office, service))
}

/// Whether the citizen may still cancel or move the appointment online (until it starts).
pub fn changeable(appt: &Appointment, now: i64) -> Result<(), BookingError> {
    match appt.status {
        Status::Cancelled => Err(BookingError::AlreadyCancelled),
        Status::Completed | Status::NoShow => Err(BookingError::Over),
        Status::Confirmed if !sportello_domain::booking::can_change(ts(now), ts(appt.starts_at)) => {
            Err(BookingError::Started)
        }
        Status::Confirmed => Ok(()),
    }
}

/// The citizen cancels: the slot is free again and the cancellation is mailed.
pub async fn cancel(back: &BackOffice, appt: Appointment, now: i64) -> Result<Changed, BookingError> {
    changeable(&appt, now)?;
    let appt = back.store.set_status(&appt.id, &[Status::Confirmed], Status::Cancelled, "citizen", "", now).await?;
    tracing::info!(appointment = %appt.id, "cancelled by the citizen");
    metrics::counter!("sportello_booking_cancellations_total", "by" => "citizen").increment(1);
    let (office, service) = context(back, &appt).await?;
    notify(back, Notice::Cancellation, &appt, &office, &service, now).await?;
    Ok(Changed { appointment: appt, office, service })
}

/// The citizen moves the appointment to another free slot of the same office and service (the
/// current official first when free, so the citizen keeps their contact) and gets the new time
/// by email; `secret` is the one they opened it with, for the email's links.
pub async fn reschedule(
    back: &BackOffice,
    appt: Appointment,
    secret: &str,
    start: Timestamp,
    now: i64,
) -> Result<Changed, BookingError> {
    changeable(&appt, now)?;
    if start.as_second() <= now {
        return Err(BookingError::SlotUnavailable);
    }
    let (office, service) = context(back, &appt).await?;
    let offer = offer(&back.store, &office, &service, now, Some(&appt.id), None).await?;
    let slot = offer.slot_at(start).ok_or(BookingError::SlotUnavailable)?;
    let candidates = offer.candidates(slot, meeting_mode(appt.mode));
    if candidates.is_empty() {
        return Err(BookingError::SlotUnavailable);
    }
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
        match back.store.reschedule(&appt.id, &to, "citizen", now).await {
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
    metrics::counter!("sportello_booking_reschedules_total").increment(1);
    notify(back, Notice::Rescheduled { secret }, &appt, &office, &service, now).await?;
    Ok(Changed { appointment: appt, office, service })
}

/// The citizen's rating (1–5) with an optional comment, once per appointment.
pub async fn rate(
    back: &BackOffice,
    appt: &Appointment,
    rating: i64,
    comment: Option<&str>,
    now: i64,
) -> Result<(), BookingError> {
    if !(1..=5).contains(&rating) {
        return Err(BookingError::InvalidRating);
    }
    let comment = comment.map(str::trim).filter(|c| !c.is_empty());
    if comment
        .is_some_and(|c| c.chars().count() > COMMENT_MAX_CHARS || c.chars().any(|ch| ch.is_control() && ch != '\n'))
    {
        return Err(BookingError::InvalidComment);
    }
    match back.store.rate(&appt.id, rating, comment, now).await {
        Ok(()) => Ok(()),
        Err(StoreError::Conflict(_)) => Err(BookingError::AlreadyRated),
        Err(other) => Err(other.into()),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use sportello_store::{NewOffice, NewService, NewUser, StaffRole, Store};

    use super::*;
    use crate::clock::Clock;
    use crate::context::CalendarPolicy;
    use crate::mail::Mailer;
    use crate::token::TokenKey;

    const HOURS: &str = r#"[["09:00-12:00"],["09:00-12:00"],["09:00-12:00"],["09:00-12:00"],["09:00-12:00"],[],[]]"#;
    /// Monday 1 March 2027, 07:00 in Rome.
    const NOW: i64 = 1_803_880_800;

    struct World {
        back: BackOffice,
        office: Office,
        service: Service,
        _dir: tempfile::TempDir,
    }

    /// One office open weekday mornings, one official, one 30-minute video service; mail to the outbox.
    async fn world() -> World {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::connect(&format!("sqlite:{}", dir.path().join("s.db").display())).await.expect("store");
        let office = store
            .create_office(
                &NewOffice {
                    name: "Anagrafe".into(),
                    description: String::new(),
                    address: String::new(),
                    email: String::new(),
                    phone: String::new(),
                    opening_hours: HOURS.into(),
                },
                NOW,
            )
            .await
            .expect("office");
        let official = store
            .create_user(
                &NewUser {
                    email: "mario@comune.example".into(),
                    display_name: "Mario".into(),
                    role: StaffRole::Official,
                },
                NOW,
            )
            .await
            .expect("official");
        store.set_office_members(&office.id, std::slice::from_ref(&official.id)).await.expect("members");
        let service = store
            .create_service(
                &NewService {
                    name: "Carta d'identità".into(),
                    description: String::new(),
                    duration_minutes: 30,
                    what_to_bring: String::new(),
                    modes: Modes::Video,
                    office_ids: vec![office.id.clone()],
                },
                NOW,
            )
            .await
            .expect("service");
        let mailer = Mailer::new(None, "sportello@comune.example", dir.path()).expect("mailer");
        let back = BackOffice {
            store,
            tokens: Arc::new(TokenKey::random()),
            mailer,
            clock: Clock::system(),
            public_url: "https://sportello.example".into(),
            calendars: CalendarPolicy {
                refresh: Duration::from_secs(3600),
                fetch_timeout: Duration::from_secs(5),
                allow_private: false,
            },
            node: "test".into(),
        };
        World { back, office, service, _dir: dir }
    }

    fn sent(w: &World) -> usize {
        let outbox = w.back.mailer.outbox().expect("outbox");
        std::fs::read_dir(outbox).map_or(0, |d| d.count())
    }

    fn booking(w: &World, email: &str, start: Timestamp) -> NewBooking {
        NewBooking {
            office: w.office.clone(),
            service: w.service.clone(),
            requester: Requester {
                first_name: "Anna".into(),
                last_name: "Rossi".into(),
                email: email.into(),
                details: String::new(),
            },
            mode: Mode::Video,
            start,
            lang: Lang::It,
            appio_fiscal_code: None,
            citizen_key: None,
        }
    }

    #[tokio::test]
    async fn a_taken_slot_is_refused_and_sends_no_mail() {
        let w = world().await;
        let offer = offer(&w.back.store, &w.office, &w.service, NOW, None, None).await.expect("offer");
        let start = offer.slots.first().expect("a free slot").start;

        let booked = book(&w.back, booking(&w, "anna@example.org", start), NOW).await.expect("booked");
        assert_eq!(booked.appointment.starts_at, start.as_second());
        assert_eq!(sent(&w), 1, "the confirmation");

        let again = book(&w.back, booking(&w, "bruno@example.org", start), NOW).await;
        assert!(matches!(again, Err(BookingError::SlotUnavailable)), "{:?}", again.as_ref().err());
        assert_eq!(sent(&w), 1, "no mail for a refused booking");

        let past = book(&w.back, booking(&w, "bruno@example.org", ts(NOW)), NOW).await;
        assert!(matches!(past, Err(BookingError::SlotUnavailable)), "{:?}", past.as_ref().err());
    }

    #[tokio::test]
    async fn a_confirmation_lost_after_the_commit_is_sent_by_the_pass() {
        let w = world().await;
        let offer = offer(&w.back.store, &w.office, &w.service, NOW, None, None).await.expect("offer");
        let (first, second) = (offer.slots[0].start, offer.slots[1].start);
        // One booking as usual: its confirmation goes out and is recorded.
        book(&w.back, booking(&w, "anna@example.org", first), NOW).await.expect("booked");
        assert_eq!(sent(&w), 1);
        // One committed by a process that died before its email (what `book` stores, and no more).
        let lost = w
            .back
            .store
            .book(
                &NewAppointment {
                    code: "BCDF-2345".into(),
                    secret_hash: sha256_hex("never mailed"),
                    office_id: w.office.id.clone(),
                    service_id: w.service.id.clone(),
                    official_id: offer.candidates(&offer.slots[1], meeting_mode(Mode::Video))[0].id.clone(),
                    starts_at: second.as_second(),
                    ends_at: second.as_second() + 1800,
                    mode: Mode::Video,
                    first_name: "Bruno".into(),
                    last_name: "Verdi".into(),
                    email: "bruno@example.org".into(),
                    details: String::new(),
                    lang: "it".into(),
                },
                NOW,
            )
            .await
            .expect("stored");
        let mut back = w.back.clone();
        back.clock = Clock::offset(NOW + 60 - Clock::system().now());
        assert_eq!(notify::send_unsent_confirmations(&back).await.expect("pass"), 0, "its request may still send it");
        back.clock.advance(120);
        assert_eq!(notify::send_unsent_confirmations(&back).await.expect("pass"), 1, "only the lost one");
        assert_eq!(sent(&w), 2);
        assert_eq!(notify::send_unsent_confirmations(&back).await.expect("pass"), 0, "sent once");
        // The late email goes to that citizen; its manage link carries the derived secret, which opens it.
        let outbox = w.back.mailer.outbox().expect("outbox");
        let to_bruno = std::fs::read_dir(outbox)
            .expect("outbox")
            .filter(|e| {
                let eml = std::fs::read_to_string(e.as_ref().expect("entry").path()).expect("eml");
                eml.contains("To: bruno@example.org")
            })
            .count();
        assert_eq!(to_bruno, 1);
        let derived = links::derived_secret(&w.back.tokens, &lost).expect("derived secret");
        assert_eq!(open(&w.back, "BCDF-2345", Some(&derived)).await.expect("opens").id, lost.id);
    }

    #[tokio::test]
    async fn a_cancelled_booking_cannot_change_again() {
        let w = world().await;
        let offer = offer(&w.back.store, &w.office, &w.service, NOW, None, None).await.expect("offer");
        let start = offer.slots.first().expect("a free slot").start;
        let booked = book(&w.back, booking(&w, "anna@example.org", start), NOW).await.expect("booked");
        let opened = open(&w.back, &booked.appointment.code, Some(&booked.secret)).await.expect("opened");
        assert!(matches!(open(&w.back, &booked.appointment.code, Some("wrong")).await, Err(BookingError::NotFound)));

        let cancelled = cancel(&w.back, opened, NOW).await.expect("cancelled");
        assert_eq!(cancelled.appointment.status, Status::Cancelled);
        assert_eq!(sent(&w), 2, "confirmation and cancellation");
        let again = cancel(&w.back, cancelled.appointment.clone(), NOW).await;
        assert!(matches!(again, Err(BookingError::AlreadyCancelled)), "{:?}", again.as_ref().err());
        let moved = reschedule(&w.back, cancelled.appointment, &booked.secret, start, NOW).await;
        assert!(matches!(moved, Err(BookingError::AlreadyCancelled)), "{:?}", moved.as_ref().err());
        assert_eq!(sent(&w), 2);
    }

    #[test]
    fn every_refusal_has_a_code_and_english() {
        use BookingError as E;
        let refusals = [
            E::UnknownOffice,
            E::UnknownService,
            E::ServiceNotOffered,
            E::ModeNotOffered,
            E::SlotUnavailable,
            E::TooManyBookings { max_active: 3 },
            E::AlreadyCancelled,
            E::Over,
            E::Started,
            E::InvalidRating,
            E::InvalidComment,
            E::AlreadyRated,
        ];
        for e in refusals {
            let (_, code, text) = e.refusal().expect("a refusal");
            assert!(!code.is_empty() && !text.en.is_empty() && text.en != text.it, "{code}: {text:?}");
        }
        assert!(E::NotFound.refusal().is_none() && E::NoFreeCode.refusal().is_none());
    }
}
