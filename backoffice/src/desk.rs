//! The walk-in video desk's use cases (docs/walkin.md): whether an office's desk is open, a
//! citizen's place in its queue, «Prossimo», hand-offs, callbacks, colleagues' presence and the
//! office figures. The rules are `sportello_domain::desk`'s; this module reads the rows they need
//! and writes the outcome through the store's compare-and-set changes.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Duration;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use sportello_domain::booking::{Lang, parse_opening_hours};
use sportello_domain::desk::{self, AppointmentOutcome, DayFigures, DeskOfficial, DeskOpening, Duty, WalkinOutcome};
use sportello_domain::{PatternError, holiday_dates};
use sportello_store::{
    NewWalkin, Office, StaffRole, Status, Store, StoreError, User, Walkin, WalkinChange, WalkinState,
};

use crate::context::BackOffice;
use crate::convert::interval;
use crate::mail::Email;
use crate::schedule::{patron_day, working_pattern};
use crate::secrets::{matches_hash, new_secret, sha256_hex};
use crate::settings::Municipality;
use crate::text::Text;
use crate::time::{rome, ts};
use crate::token::{Claims, KeyError, Role, join_link};

/// How long the office's recent service times are looked back on for the estimate.
const HISTORY_SECS: i64 = 14 * 86_400;
/// How long a citizen's room link is valid once an official took them.
const ROOM_LINK_VALID: Duration = Duration::from_secs(4 * 3600);
const NAME_MAX: usize = 100;
const TOPIC_MAX: usize = 200;
const NOTE_MAX: usize = 300;

/// A refused or failed desk use case; refusals carry a code and the text the person reads, which
/// the HTTP edge maps once (`api::error`).
#[derive(Debug, thiserror::Error)]
pub enum DeskError {
    #[error("not found")]
    NotFound,
    #[error("the office has no video desk")]
    NoDesk,
    #[error("the desk is closed")]
    Closed,
    #[error("invalid {0}")]
    Invalid(&'static str),
    #[error("nobody is waiting")]
    QueueEmpty,
    #[error("the walk-in is {0}")]
    State(WalkinState),
    #[error("not a colleague who can take it")]
    NoColleague,
    #[error("no email to call back")]
    NoEmail,
    #[error(transparent)]
    Store(StoreError),
    #[error(transparent)]
    Pattern(#[from] PatternError),
    #[error(transparent)]
    Holiday(#[from] sportello_domain::HolidayError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("cannot send the email: {0}")]
    Mail(String),
}

impl From<StoreError> for DeskError {
    fn from(e: StoreError) -> DeskError {
        match e {
            StoreError::NotFound => DeskError::NotFound,
            StoreError::InvalidWalkin(state) => DeskError::State(state),
            other => DeskError::Store(other),
        }
    }
}

/// How the edge answers a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Invalid,
    Conflict,
    Gone,
}

impl DeskError {
    /// The refusal's kind, machine code and text; `None` for `NotFound` and failures.
    pub fn refusal(&self) -> Option<(Refusal, &'static str, Text)> {
        use DeskError as E;
        Some(match self {
            E::NoDesk => (
                Refusal::Conflict,
                "no_desk",
                ("Questo ufficio non ha uno sportello video.", "This office has no video desk.").into(),
            ),
            E::Closed => (
                Refusal::Conflict,
                "desk_closed",
                (
                    "Lo sportello video è chiuso in questo momento: puoi prenotare un appuntamento.",
                    "The video desk is closed right now: you can book an appointment.",
                )
                    .into(),
            ),
            E::Invalid("name") => (
                Refusal::Invalid,
                "invalid_name",
                ("Indica nome e cognome (al massimo 100 caratteri).", "Enter your name (at most 100 characters).")
                    .into(),
            ),
            E::Invalid("email") => (
                Refusal::Invalid,
                "invalid_email",
                ("L'indirizzo email non è valido.", "The email address is not valid.").into(),
            ),
            E::Invalid("topic") => (
                Refusal::Invalid,
                "invalid_topic",
                (
                    "L'argomento è troppo lungo (al massimo 200 caratteri).",
                    "The topic is too long (at most 200 characters).",
                )
                    .into(),
            ),
            E::Invalid("service") => (
                Refusal::Invalid,
                "unknown_service",
                (
                    "Questo ufficio non si occupa del servizio scelto.",
                    "This office does not handle the chosen service.",
                )
                    .into(),
            ),
            E::Invalid("note") => (
                Refusal::Invalid,
                "invalid_note",
                (
                    "La nota è troppo lunga (al massimo 300 caratteri).",
                    "The note is too long (at most 300 characters).",
                )
                    .into(),
            ),
            E::Invalid(_) => (Refusal::Invalid, "invalid_value", ("Valore non valido.", "Invalid value.").into()),
            E::QueueEmpty => (Refusal::Conflict, "queue_empty", ("Nessuno in coda.", "Nobody is waiting.").into()),
            E::State(state) if state.is_over() => (
                Refusal::Gone,
                "walkin_over",
                ("Questo accesso allo sportello è concluso.", "This visit to the desk is over.").into(),
            ),
            E::State(_) => (
                Refusal::Conflict,
                "walkin_state",
                (
                    "Non è possibile ora: la situazione è cambiata, aggiorna la pagina.",
                    "Not possible now: things changed, reload the page.",
                )
                    .into(),
            ),
            E::NoColleague => (
                Refusal::Invalid,
                "unknown_colleague",
                ("Scegli un collega in servizio attivo.", "Choose an active colleague.").into(),
            ),
            E::NoEmail => (
                Refusal::Invalid,
                "email_required",
                ("Per essere richiamati serve un indirizzo email.", "An email address is needed to be called back.")
                    .into(),
            ),
            _ => return None,
        })
    }
}

/// What a walk-in's room name starts with (shared naming contract with `rooms` and the edge).
pub const WALKIN_ROOM_PREFIX: &str = "walkin-";

/// The room of a walk-in.
pub fn room_of(walkin_id: &str) -> String {
    format!("{WALKIN_ROOM_PREFIX}{walkin_id}")
}

/// The citizen's identity in their room.
pub fn citizen_identity(walkin_id: &str) -> String {
    format!("walkin-{walkin_id}")
}

/// An office's desk as a citizen or an official sees it now.
#[derive(Debug, Clone)]
pub struct DeskState {
    pub has_desk: bool,
    pub opening: DeskOpening,
    /// Waiting citizens seen within the grace period.
    pub waiting: u32,
    /// Typical service time (seconds) from the recent history, if any.
    pub typical: Option<i64>,
}

impl DeskState {
    /// The estimated wait of the citizen at `position`.
    pub fn estimate(&self, position: u32) -> u32 {
        desk::estimated_wait_minutes(position, self.typical, self.opening.on_duty)
    }
}

fn desk_hours(office: &Office) -> Option<[Vec<sportello_domain::TimeRange>; 7]> {
    parse_opening_hours(&office.desk_hours)
        .map_err(|error| tracing::warn!(office = %office.id, %error, "unusable desk hours"))
        .ok()
        .filter(|week| week.iter().any(|day| !day.is_empty()))
}

async fn holidays_around(store: &Store, now: i64, tz: &TimeZone) -> Result<BTreeSet<Date>, DeskError> {
    let year = tz.to_datetime(ts(now)).year();
    Ok(holiday_dates(year - 1, year + 1, patron_day(store).await?)?)
}

/// Active officials of the office (not administrators, councillors or chairs).
async fn officials_of(store: &Store, office_id: &str) -> Result<Vec<User>, StoreError> {
    Ok(store
        .office_members(office_id)
        .await?
        .into_iter()
        .filter(|u| u.active && u.role == StaffRole::Official)
        .collect())
}

/// Absences of these users around `now` (a day back, `LOOKAHEAD_DAYS` + 1 ahead), by user.
async fn absences_by_user(
    store: &Store,
    ids: &[String],
    now: i64,
) -> Result<HashMap<String, Vec<sportello_domain::Interval>>, StoreError> {
    let mut out: HashMap<String, Vec<_>> = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let to = now + (desk::LOOKAHEAD_DAYS + 1) * 86_400;
    for absence in store.absences_of_users(ids, now - 86_400, to).await? {
        if let Some(iv) = interval(absence.starts_at, absence.ends_at) {
            out.entry(absence.user_id).or_default().push(iv);
        }
    }
    Ok(out)
}

/// Whether the office's desk is open at `now`, when it opens or closes, and its live queue.
pub async fn desk_state(store: &Store, office: &Office, now: i64) -> Result<DeskState, DeskError> {
    let Some(hours) = desk_hours(office) else {
        let opening = DeskOpening { open: false, closes_at: None, opens_at: None, on_duty: 0 };
        return Ok(DeskState { has_desk: false, opening, waiting: 0, typical: None });
    };
    let tz = rome();
    let holidays = holidays_around(store, now, &tz).await?;
    let users = officials_of(store, &office.id).await?;
    let ids: Vec<String> = users.iter().map(|u| u.id.clone()).collect();
    let mut absences = absences_by_user(store, &ids, now).await?;
    let mut officials = Vec::with_capacity(users.len());
    for user in &users {
        if let Some(pattern) = working_pattern(store, user).await? {
            officials.push(DeskOfficial { pattern, absences: absences.remove(&user.id).unwrap_or_default() });
        }
    }
    let opening = desk::desk_opening(&hours, &officials, &holidays, &tz, ts(now))?;
    let waiting = live_queue(store, &office.id, now).await?.len() as u32;
    let typical = desk::typical_service_secs(&store.walkin_service_durations(&office.id, now - HISTORY_SECS).await?);
    Ok(DeskState { has_desk: true, opening, waiting, typical })
}

/// The office's waiting citizens seen within the grace period, in queue order.
pub async fn live_queue(store: &Store, office_id: &str, now: i64) -> Result<Vec<Walkin>, StoreError> {
    let seen_after = now - desk::GRACE_SECS;
    Ok(store
        .walkins_in(&[office_id.to_owned()], &[WalkinState::Waiting])
        .await?
        .into_iter()
        .filter(|w| w.seen_at >= seen_after)
        .collect())
}

/// What a citizen asks to queue with.
#[derive(Debug, Clone, Default)]
pub struct JoinRequest {
    pub name: String,
    pub email: Option<String>,
    pub topic: Option<String>,
    pub service_id: Option<String>,
    pub lang: Lang,
}

fn clean_text(raw: Option<&str>, max: usize, what: &'static str) -> Result<String, DeskError> {
    let text = raw.unwrap_or_default().trim();
    if text.chars().count() > max || text.chars().any(|c| c.is_control() && c != '\n') {
        return Err(DeskError::Invalid(what));
    }
    Ok(text.to_owned())
}

fn clean_email(raw: Option<&str>) -> Result<String, DeskError> {
    match raw.map(str::trim).filter(|e| !e.is_empty()) {
        None => Ok(String::new()),
        Some(email) => sportello_domain::booking::check_email(email).map_err(|_| DeskError::Invalid("email")),
    }
}

/// Queues a citizen at the office's desk; refused while the desk is closed. Returns the walk-in
/// and the ticket's secret (shown once; only its hash is kept).
pub async fn join(
    store: &Store,
    office_id: &str,
    request: &JoinRequest,
    now: i64,
) -> Result<(Walkin, String), DeskError> {
    let office = store.office(office_id).await?.ok_or(DeskError::NotFound)?;
    let name = sportello_domain::clean_display_name(&request.name, NAME_MAX).ok_or(DeskError::Invalid("name"))?;
    let email = clean_email(request.email.as_deref())?;
    let topic = clean_text(request.topic.as_deref(), TOPIC_MAX, "topic")?;
    let service_id = match request.service_id.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(id) => match store.service(id).await? {
            Some(service) if service.office_ids.contains(&office.id) => Some(service.id),
            _ => return Err(DeskError::Invalid("service")),
        },
    };
    let state = desk_state(store, &office, now).await?;
    if !state.has_desk {
        return Err(DeskError::NoDesk);
    }
    if !state.opening.open {
        return Err(DeskError::Closed);
    }
    let secret = new_secret();
    let new = NewWalkin {
        office_id: office.id.clone(),
        secret_hash: sha256_hex(&secret),
        name,
        email,
        topic,
        service_id,
        lang: request.lang.as_str().to_owned(),
    };
    let walkin = store.create_walkin(&new, now).await?;
    tracing::info!(walkin = %walkin.id, office = %office.id, "walk-in queued");
    metrics::counter!("sportello_walkins_total", "event" => "queued").increment(1);
    Ok((walkin, secret))
}

/// The walk-in whose ticket secret this is; `NotFound` otherwise (no probing of ids).
pub async fn by_ticket(store: &Store, id: &str, secret: &str) -> Result<Walkin, DeskError> {
    let walkin = store.walkin(id).await?.ok_or(DeskError::NotFound)?;
    if !matches_hash(secret, &walkin.secret_hash) {
        return Err(DeskError::NotFound);
    }
    Ok(walkin)
}

/// A citizen's ticket as their page shows it.
#[derive(Debug, Clone)]
pub struct TicketState {
    pub walkin: Walkin,
    pub office: Office,
    /// 1-based, while waiting.
    pub position: Option<u32>,
    pub estimate_minutes: Option<u32>,
    pub callback_offered: bool,
    /// Into the room, once an official took them (serving or being transferred).
    pub join_url: Option<String>,
}

/// The citizen's page asked (a "seen"): their ticket now. A waiting citizen not seen within the
/// grace period has lost their place (`abandoned`).
pub async fn ticket(back: &BackOffice, id: &str, secret: &str, now: i64) -> Result<TicketState, DeskError> {
    let store = &back.store;
    let mut walkin = by_ticket(store, id, secret).await?;
    if walkin.state == WalkinState::Waiting && walkin.seen_at < now - desk::GRACE_SECS {
        store.abandon_unseen(&walkin.office_id, now - desk::GRACE_SECS, now).await?;
        walkin = by_ticket(store, id, secret).await?;
    }
    if matches!(walkin.state, WalkinState::Waiting | WalkinState::Callback) {
        store.touch_walkin(id, now).await?;
        walkin.seen_at = now;
    }
    let office = store.office(&walkin.office_id).await?.ok_or(DeskError::NotFound)?;
    let (mut position, mut estimate, mut offered) = (None, None, false);
    if walkin.state == WalkinState::Waiting {
        let queue = live_queue(store, &office.id, now).await?;
        let at = queue.iter().position(|w| w.id == walkin.id).map_or(queue.len() as u32 + 1, |i| i as u32 + 1);
        let state = desk_state(store, &office, now).await?;
        let minutes = state.estimate(at);
        position = Some(at);
        estimate = Some(minutes);
        offered = desk::callback_offered(minutes);
    }
    let join_url = match walkin.state {
        WalkinState::Serving | WalkinState::Transferring => Some(citizen_link(back, &walkin, now)?),
        _ => None,
    };
    Ok(TicketState { walkin, office, position, estimate_minutes: estimate, callback_offered: offered, join_url })
}

/// The citizen's link into their walk-in's room: straight in (only the officials who serve the
/// walk-in hold a host link to it).
pub fn citizen_link(back: &BackOffice, walkin: &Walkin, now: i64) -> Result<String, DeskError> {
    let claims = Claims::new_at(
        u64::try_from(now).unwrap_or(0),
        &room_of(&walkin.id),
        &citizen_identity(&walkin.id),
        &walkin.name,
        Role::Participant,
        ROOM_LINK_VALID,
    );
    Ok(join_link(&back.public_url, &back.tokens.issue(&claims)?))
}

/// The citizen leaves the queue (or their callback request).
pub async fn leave(store: &Store, walkin: &Walkin, now: i64) -> Result<Walkin, DeskError> {
    let change = WalkinChange { ended: true, ..Default::default() };
    let from = [WalkinState::Waiting, WalkinState::Callback];
    let left = store
        .change_walkin(&walkin.id, &from, WalkinState::Left, &|_| true, &change, "citizen", "left", "", now)
        .await?;
    metrics::counter!("sportello_walkins_total", "event" => "left").increment(1);
    Ok(left)
}

/// The citizen asks to be called back (by email) instead of waiting; needs an email.
pub async fn request_callback(
    store: &Store,
    walkin: &Walkin,
    email: Option<&str>,
    now: i64,
) -> Result<Walkin, DeskError> {
    let typed = clean_email(email)?;
    let email = if typed.is_empty() { walkin.email.clone() } else { typed };
    if email.is_empty() {
        return Err(DeskError::NoEmail);
    }
    let change = WalkinChange { email: Some(&email), ..Default::default() };
    let from = [WalkinState::Waiting];
    Ok(store
        .change_walkin(&walkin.id, &from, WalkinState::Callback, &|_| true, &change, "citizen", "callback", "", now)
        .await?)
}

/// «Prossimo»: the next live citizen of the office to this official.
pub async fn next(store: &Store, office_id: &str, official: &str, now: i64) -> Result<Walkin, DeskError> {
    let taken = store.take_next_walkin(office_id, official, now - desk::GRACE_SECS, now).await?;
    let walkin = taken.ok_or(DeskError::QueueEmpty)?;
    tracing::info!(walkin = %walkin.id, office = %office_id, official, "walk-in called");
    metrics::counter!("sportello_walkins_total", "event" => "called").increment(1);
    Ok(walkin)
}

fn actor(user: &str) -> String {
    format!("user:{user}")
}

/// The official hands the walk-in they serve to a colleague (any active official, same or another
/// office) with a note; the citizen stays in the room.
pub async fn hand_off(store: &Store, id: &str, by: &str, to: &str, note: &str, now: i64) -> Result<Walkin, DeskError> {
    let note = clean_text(Some(note), NOTE_MAX, "note")?;
    match store.user(to).await? {
        Some(u) if u.active && u.role == StaffRole::Official && u.id != by => {}
        _ => return Err(DeskError::NoColleague),
    }
    let change = WalkinChange { transfer_to: Some(Some(to)), transfer_note: Some(&note), ..Default::default() };
    let guard = |w: &Walkin| w.official_id.as_deref() == Some(by);
    let from = [WalkinState::Serving];
    let handed = store
        .change_walkin(
            id,
            &from,
            WalkinState::Transferring,
            &guard,
            &change,
            &actor(by),
            "handed_off",
            &format!("to user:{to}"),
            now,
        )
        .await?;
    tracing::info!(walkin = %id, from = by, to, "walk-in handed off");
    Ok(handed)
}

/// The colleague named by a hand-off takes the walk-in (and a host link into its room).
pub async fn accept(store: &Store, id: &str, by: &str, now: i64) -> Result<Walkin, DeskError> {
    let change = WalkinChange { official_id: Some(by), transfer_to: Some(None), ..Default::default() };
    let guard = |w: &Walkin| w.transfer_to.as_deref() == Some(by);
    let from = [WalkinState::Transferring];
    Ok(store.change_walkin(id, &from, WalkinState::Serving, &guard, &change, &actor(by), "accepted", "", now).await?)
}

/// An official of the office calls a citizen back: the citizen is emailed a link into the room,
/// then the walk-in is theirs. The email goes first: when it cannot be sent nothing changes and the
/// official is told; when a colleague called back meanwhile, the citizen's link leads to the same room.
pub async fn call_back(back: &BackOffice, id: &str, by: &str, now: i64) -> Result<Walkin, DeskError> {
    let store = &back.store;
    let walkin = store.walkin(id).await?.ok_or(DeskError::NotFound)?;
    if walkin.state != WalkinState::Callback {
        return Err(DeskError::State(walkin.state));
    }
    let office = store.office(&walkin.office_id).await?.ok_or(DeskError::NotFound)?;
    let link = citizen_link(back, &walkin, now)?;
    let municipality = Municipality::load(store).await?;
    let (subject, text) = match Lang::from_tag(&walkin.lang) {
        Lang::It => (
            format!("{}: lo sportello video ti richiama", office.name),
            format!(
                "Buongiorno {},\n\nl'ufficio {} ti aspetta ora nello sportello video. Entra da questo link \
                 (valido 4 ore):\n\n{link}\n\n{}\n",
                walkin.name, office.name, municipality.name
            ),
        ),
        Lang::En => (
            format!("{}: the video desk is calling you back", office.name),
            format!(
                "Hello {},\n\nthe {} office is waiting for you now at its video desk. Enter through this link \
                 (valid for 4 hours):\n\n{link}\n\n{}\n",
                walkin.name, office.name, municipality.name
            ),
        ),
    };
    let email = Email {
        to: walkin.email.clone(),
        subject,
        text,
        html: None,
        sender_name: Some(municipality.name.clone()),
        attachments: Vec::new(),
    };
    back.mailer.send(&email).await.map_err(|e| DeskError::Mail(e.to_string()))?;
    let change = WalkinChange { official_id: Some(by), called: true, ..Default::default() };
    let from = [WalkinState::Callback];
    Ok(store
        .change_walkin(id, &from, WalkinState::Serving, &|_| true, &change, &actor(by), "called_back", "", now)
        .await?)
}

/// The official closes the walk-in they serve (or hand off): done.
pub async fn finish(store: &Store, id: &str, by: &str, now: i64) -> Result<Walkin, DeskError> {
    let change = WalkinChange { ended: true, ..Default::default() };
    let guard = |w: &Walkin| w.official_id.as_deref() == Some(by) || w.transfer_to.as_deref() == Some(by);
    let from = [WalkinState::Serving, WalkinState::Transferring];
    let done = store.change_walkin(id, &from, WalkinState::Done, &guard, &change, &actor(by), "done", "", now).await?;
    metrics::counter!("sportello_walkins_total", "event" => "served").increment(1);
    Ok(done)
}

/// The citizen never came into the room: the walk-in is abandoned.
pub async fn absent(store: &Store, id: &str, by: &str, now: i64) -> Result<Walkin, DeskError> {
    let change = WalkinChange { ended: true, ..Default::default() };
    let guard = |w: &Walkin| w.official_id.as_deref() == Some(by);
    let from = [WalkinState::Serving];
    let gone = store
        .change_walkin(
            id,
            &from,
            WalkinState::Abandoned,
            &guard,
            &change,
            &actor(by),
            "abandoned",
            "not in the room",
            now,
        )
        .await?;
    metrics::counter!("sportello_walkins_total", "event" => "abandoned").increment(1);
    Ok(gone)
}

/// One official's presence now.
#[derive(Debug, Clone)]
pub struct Presence {
    pub user: User,
    pub office_names: Vec<String>,
    pub duty: Duty,
    pub in_call: bool,
    pub available: bool,
}

/// Every active official's presence at `now`, by name: from their working pattern, absences,
/// holidays and `in_call` (officials in a live room with someone, which only the rooms know),
/// plus those serving a walk-in.
pub async fn presence(store: &Store, in_call: &HashSet<String>, now: i64) -> Result<Vec<Presence>, DeskError> {
    let tz = rome();
    let holidays = holidays_around(store, now, &tz).await?;
    let mut users: Vec<User> =
        store.users().await?.into_iter().filter(|u| u.active && u.role == StaffRole::Official).collect();
    users.sort_by(|a, b| a.display_name.cmp(&b.display_name).then_with(|| a.id.cmp(&b.id)));
    let ids: Vec<String> = users.iter().map(|u| u.id.clone()).collect();
    let mut absences = absences_by_user(store, &ids, now).await?;
    let serving: HashSet<String> = store.officials_serving().await?.into_iter().collect();
    let mut out = Vec::with_capacity(users.len());
    for user in users {
        let pattern = working_pattern(store, &user).await?;
        let absent = absences.remove(&user.id).unwrap_or_default();
        let duty = desk::duty_at(pattern.as_ref(), &absent, &holidays, &tz, ts(now))?;
        let busy = in_call.contains(&user.id) || serving.contains(&user.id);
        let office_names = store.offices_of_user(&user.id).await?.into_iter().map(|o| o.name).collect();
        out.push(Presence { available: desk::available(duty, busy), office_names, duty, in_call: busy, user });
    }
    Ok(out)
}

/// The office figures per day and office for `first..=last` (Europe/Rome dates).
pub async fn figures(
    store: &Store,
    office_ids: &[String],
    first: Date,
    last: Date,
) -> Result<Vec<DayFigures>, DeskError> {
    let tz = rome();
    let from =
        tz.to_timestamp(first.to_datetime(jiff::civil::Time::midnight())).map_err(|_| DeskError::Invalid("from"))?;
    let until = last.tomorrow().map_err(|_| DeskError::Invalid("to"))?;
    let to = tz.to_timestamp(until.to_datetime(jiff::civil::Time::midnight())).map_err(|_| DeskError::Invalid("to"))?;
    let (from, to) = (from.as_second(), to.as_second());
    let appointments: Vec<desk::AppointmentRecord> = store
        .appointments_of_offices(office_ids, from, to)
        .await?
        .into_iter()
        .filter(|a| a.starts_at >= from && a.starts_at < to)
        .map(|a| desk::AppointmentRecord {
            outcome: match a.status {
                Status::Completed => AppointmentOutcome::Completed,
                Status::NoShow => AppointmentOutcome::NoShow,
                Status::Confirmed | Status::Cancelled => AppointmentOutcome::Other,
            },
            office_id: a.office_id,
            service_id: a.service_id,
            starts_at: a.starts_at,
            arrived_at: a.citizen_arrived_at,
            joined_at: a.citizen_joined_at,
            ended_at: a.meeting_ended_at,
        })
        .collect();
    let walkins: Vec<desk::WalkinRecord> = store
        .walkins_queued_between(office_ids, from, to)
        .await?
        .into_iter()
        .map(|w| desk::WalkinRecord {
            outcome: match w.state {
                WalkinState::Done => WalkinOutcome::Served,
                WalkinState::Left | WalkinState::Abandoned => WalkinOutcome::Abandoned,
                _ => WalkinOutcome::Open,
            },
            office_id: w.office_id,
            service_id: w.service_id,
            queued_at: w.queued_at,
            called_at: w.called_at,
            ended_at: w.ended_at,
        })
        .collect();
    Ok(desk::figures(&appointments, &walkins, &tz, first, last))
}
