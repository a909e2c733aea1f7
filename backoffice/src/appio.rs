//! App IO notifications (docs/appio.md): a citizen who chose them when booking gets the booking,
//! a move, a cancellation and the reminder in the IO app as well as by email; councillors get
//! council convocations. Optional per municipality ([`AppioSettings`]), off until an administrator
//! gives the IO service's API key.
//!
//! Messages are composed when their event happens ([`compose_appointment`], [`compose_convocation`]:
//! pure, within IO's limits) and queued in the store's outbox; one task ([`spawn`]) sends what is
//! due, following IO's services API: `POST /profiles` first (404 or `sender_allowed: false`: the
//! citizen is not on IO or turned the service off, nothing is sent), then `POST /messages`. 429, 5xx
//! and network failures are retried after [`RETRY_DELAYS`], then given up; any other refusal is
//! final. Everything is logged and counted (`sportello_appio_messages_total{outcome}`); nothing here
//! ever holds up a booking, and email stays the primary channel.
//!
//! Privacy: a message carries the office, service, time, mode and booking code — never the fiscal
//! code (it addresses the message), the citizen's name or their details text. The one-click cancel
//! link's secret is not stored in the outbox: the row holds [`SECRET_SLOT`], replaced at sending
//! time by the derived manage secret (`links::derived_secret`).

use std::sync::Arc;
use std::time::Duration;

use sportello_domain::FiscalCode;
use sportello_domain::booking::{Lang, date_label, slot_label};
use sportello_store::{
    AppioKind, AppioMessage, Appointment, CouncilBody, Mode, NewAppioMessage, Office, Service, Store, StoreError,
};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::context::BackOffice;
use crate::links;
use crate::outbox::{self, Slots};
use crate::settings::{Municipality, appio as keys};
use crate::time::{rome, ts};

/// Seconds to wait after failed attempt 1, 2, …; after the last one the message is given up
/// (seven attempts over about a day: a message about an appointment is worth little later).
pub const RETRY_DELAYS: [i64; 6] = [30, 2 * 60, 10 * 60, 60 * 60, 6 * 60 * 60, 12 * 60 * 60];
/// One request to IO: connect, send and the answer.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// How often the outbox is looked at.
const POLL: Duration = Duration::from_secs(1);
/// A claimed message is not claimed again for this long (two requests at most, each bounded).
const LEASE_SECS: i64 = 60;
/// Messages in flight at once.
const IN_FLIGHT: usize = 8;
/// IO's answers are a few hundred bytes; more is not read.
const MAX_ANSWER: usize = 64 * 1024;

/// Stands for the manage secret in a stored message (see the module's documentation).
pub const SECRET_SLOT: &str = "{{sportello:manage-secret}}";

/// IO's limits on a message's content (`MessageContentBase`), in characters.
pub const SUBJECT_MIN: usize = 10;
pub const SUBJECT_MAX: usize = 120;
pub const MARKDOWN_MIN: usize = 80;
pub const MARKDOWN_MAX: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum AppioError {
    /// Off, or no API key.
    #[error("App IO is not enabled")]
    Disabled,
    #[error("not found")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

// --- settings ----------------------------------------------------------------------------------------

/// What the administrator set (`settings` keys in [`crate::settings::appio`]).
#[derive(Clone, PartialEq, Eq)]
pub struct AppioSettings {
    pub enabled: bool,
    pub api_key: Option<String>,
    /// Without a trailing slash; `/profiles` and `/messages` are appended.
    pub base_url: String,
}

/// The key stays out of logs.
impl std::fmt::Debug for AppioSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppioSettings")
            .field("enabled", &self.enabled)
            .field("api_key_set", &self.api_key.is_some())
            .field("base_url", &self.base_url)
            .finish()
    }
}

impl AppioSettings {
    pub async fn load(store: &Store) -> Result<AppioSettings, StoreError> {
        let values = store.settings_with_prefix("appio.").await?;
        let value = |key: &str| values.get(key).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        Ok(AppioSettings {
            enabled: value(keys::ENABLED).as_deref() == Some("true"),
            api_key: value(keys::API_KEY),
            base_url: value(keys::BASE_URL)
                .and_then(|u| valid_base_url(&u))
                .unwrap_or_else(|| keys::DEFAULT_BASE_URL.to_owned()),
        })
    }

    /// Whether messages are queued and sent: enabled with a key.
    pub fn active(&self) -> bool {
        self.enabled && self.api_key.is_some()
    }

    /// Stores the administrator's choice; `api_key: None` keeps the stored one.
    pub async fn save(store: &Store, enabled: bool, base_url: &str, api_key: Option<&str>) -> Result<(), StoreError> {
        if let Some(key) = api_key {
            store.set_setting(keys::API_KEY, key).await?;
        }
        store.set_setting(keys::BASE_URL, base_url).await?;
        store.set_setting(keys::ENABLED, if enabled { "true" } else { "false" }).await
    }
}

/// IO's base URL as an administrator may set it: `https://` anywhere, or `http://` to a loopback
/// address only (a test double on the same machine: the API key never crosses a network in clear);
/// no credentials, query or fragment. Returned without a trailing slash.
pub fn valid_base_url(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url.trim()).ok()?;
    let loopback = match parsed.host()? {
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
        url::Host::Domain(name) => name.eq_ignore_ascii_case("localhost"),
    };
    let ok = (parsed.scheme() == "https" || (parsed.scheme() == "http" && loopback))
        && parsed.username().is_empty()
        && parsed.password().is_none()
        && parsed.query().is_none()
        && parsed.fragment().is_none();
    ok.then(|| parsed.as_str().trim_end_matches('/').to_owned())
}

// --- composing -------------------------------------------------------------------------------------

/// A message ready for the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Composed {
    pub subject: String,
    pub markdown: String,
    pub due_date: Option<i64>,
}

/// What an appointment's message says. No personal data of the citizen: the fiscal code only
/// addresses the message.
pub struct AppointmentFacts<'a> {
    pub kind: AppioKind,
    /// The booking's language: English for `en`, Italian otherwise.
    pub lang: Lang,
    pub municipality: &'a str,
    pub office: &'a Office,
    pub service: &'a Service,
    pub starts_at: i64,
    pub mode: Mode,
    pub code: &'a str,
    /// The call to action's target: the one-click cancel link (a cancellation: book again).
    pub link: &'a str,
}

/// One line of text from a name or title typed by staff: no line breaks, Markdown's marks escaped.
fn inline(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '#' | '<' | '>' | '|' | '~' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out.trim().to_owned()
}

/// `text` cut to `max` characters, an ellipsis marking the cut.
fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// A subject within IO's 10–120 characters: `prefix` and as much of `tail` as fits.
fn subject(prefix: &str, tail: &str) -> String {
    let tail: String = tail.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let room = SUBJECT_MAX.saturating_sub(prefix.chars().count());
    let text = format!("{prefix}{}", clip(tail.trim(), room));
    // Every prefix is longer than the minimum; an empty tail still reads as a subject.
    if text.chars().count() < SUBJECT_MIN { format!("{text} - Sportello") } else { text }
}

/// A YAML double-quoted scalar.
fn yaml_quoted(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// IO's call to action: a front matter before the body, one button per language, the link opened
/// in the browser (`iohandledlink://` + the full `https://…` address).
pub fn front_matter(text_it: &str, text_en: &str, link: &str) -> String {
    let action = yaml_quoted(&format!("iohandledlink://{link}"));
    format!(
        "---\nit:\n    cta_1:\n        text: {}\n        action: {action}\nen:\n    cta_1:\n        text: {}\n        action: {action}\n---\n",
        yaml_quoted(text_it),
        yaml_quoted(text_en),
    )
}

/// The front matter and the body, within IO's 80–10 000 characters (the body is cut, never the
/// front matter; every body ends with why the message came, so it is never too short).
fn markdown(front: &str, body: &str) -> String {
    let room = MARKDOWN_MAX.saturating_sub(front.chars().count());
    let mut text = format!("{front}{}", clip(body, room));
    while text.chars().count() < MARKDOWN_MIN {
        text.push('\n');
    }
    text
}

/// `2018-10-13T00:00:00.000Z`: the instant in UTC as IO's `Timestamp` has it.
pub fn due_date_text(secs: i64) -> String {
    ts(secs).strftime("%Y-%m-%dT%H:%M:%S.000Z").to_string()
}

/// The message of an appointment's event, in the booking's language.
pub fn compose_appointment(f: &AppointmentFacts<'_>) -> Composed {
    let en = f.lang == Lang::En;
    let when = slot_label(ts(f.starts_at), &rome(), f.lang);
    let office = inline(&f.office.name);
    let service_line = inline(&f.service.name);
    let (prefix, opening) = match (f.kind, en) {
        (AppioKind::Booked, false) => {
            ("Appuntamento confermato: ", format!("Il tuo appuntamento con l'ufficio **{office}** è confermato."))
        }
        (AppioKind::Booked, true) => {
            ("Appointment confirmed: ", format!("Your appointment with the office **{office}** is confirmed."))
        }
        (AppioKind::Moved, false) => (
            "Appuntamento spostato: ",
            format!("Il tuo appuntamento con l'ufficio **{office}** è stato spostato: ecco il nuovo orario."),
        ),
        (AppioKind::Moved, true) => (
            "Appointment moved: ",
            format!("Your appointment with the office **{office}** has been moved: here is the new time."),
        ),
        (AppioKind::Cancelled, false) => {
            ("Appuntamento annullato: ", format!("Il tuo appuntamento con l'ufficio **{office}** è stato annullato."))
        }
        (AppioKind::Cancelled, true) => {
            ("Appointment cancelled: ", format!("Your appointment with the office **{office}** has been cancelled."))
        }
        (_, false) => {
            ("Promemoria appuntamento: ", format!("Ti ricordiamo il tuo appuntamento con l'ufficio **{office}**."))
        }
        (_, true) => {
            ("Appointment reminder: ", format!("A reminder of your appointment with the office **{office}**."))
        }
    };
    let mode = match (f.mode, en) {
        (Mode::Video, false) => "videochiamata (il link per entrare è nell'email)".to_owned(),
        (Mode::Video, true) => "video call (the link to join is in the email)".to_owned(),
        (Mode::InPerson, false) if !f.office.address.trim().is_empty() => {
            format!("in presenza, {}", inline(&f.office.address))
        }
        (Mode::InPerson, true) if !f.office.address.trim().is_empty() => {
            format!("in person, {}", inline(&f.office.address))
        }
        (Mode::InPerson, false) => "in presenza".to_owned(),
        (Mode::InPerson, true) => "in person".to_owned(),
    };
    let labels = if en {
        ["Service", "When", "How", "Booking code"]
    } else {
        ["Servizio", "Quando", "Modalità", "Codice prenotazione"]
    };
    let details = format!(
        "* **{}:** {service_line}\n* **{}:** {when}\n* **{}:** {mode}\n* **{}:** {}\n",
        labels[0],
        labels[1],
        labels[2],
        labels[3],
        inline(f.code)
    );
    let municipality = inline(f.municipality);
    let (advice, why) = match (f.kind, en) {
        (AppioKind::Cancelled, false) => (
            "Se ti serve ancora, puoi prenotare un nuovo appuntamento.",
            format!(
                "Ricevi questo messaggio da {municipality} perché hai scelto le notifiche su app IO per questo appuntamento."
            ),
        ),
        (AppioKind::Cancelled, true) => (
            "If you still need it, you can book a new appointment.",
            format!(
                "You receive this message from {municipality} because you chose App IO notifications for this appointment."
            ),
        ),
        (_, false) => (
            "Se non puoi esserci, annulla l'appuntamento: l'orario tornerà disponibile per altre persone.",
            format!(
                "Ricevi questo messaggio da {municipality} perché hai scelto le notifiche su app IO per questo appuntamento; puoi disattivarle dalla pagina dell'appuntamento."
            ),
        ),
        (_, true) => (
            "If you cannot make it, cancel the appointment: the time becomes free for someone else.",
            format!(
                "You receive this message from {municipality} because you chose App IO notifications for this appointment; you can turn them off on the appointment's page."
            ),
        ),
    };
    let body = format!("{opening}\n\n{details}\n{advice}\n\n_{why}_\n");
    let front = match f.kind {
        AppioKind::Cancelled => front_matter("Prenota di nuovo", "Book again", f.link),
        _ => front_matter("Annulla", "Cancel", f.link),
    };
    Composed {
        subject: subject(prefix, &f.service.name),
        markdown: markdown(&front, &body),
        // A cancelled appointment is no date to keep.
        due_date: (f.kind != AppioKind::Cancelled).then_some(f.starts_at),
    }
}

/// A council convocation (Italian: councillors are the municipality's own), with the agenda.
pub fn compose_convocation(
    municipality: &str,
    body: CouncilBody,
    title: &str,
    scheduled_at: i64,
    agenda: &[String],
    link: &str,
) -> Composed {
    let start = ts(scheduled_at).to_zoned(rome());
    let when = format!("{}, ore {}", date_label(start.date(), Lang::It), start.strftime("%H:%M"));
    let organ = match body {
        CouncilBody::Consiglio => "Consiglio comunale",
        CouncilBody::Giunta => "Giunta comunale",
    };
    let head = format!(
        "Sei convocato/a alla seduta **{}** ({organ}) di {}.\n\n* **Quando:** {when}\n\n**Ordine del giorno**\n\n",
        inline(title),
        inline(municipality)
    );
    let tail = "\nIl link personale per partecipare è nella tua area riservata di Sportello.\n\n_Ricevi questo \
                messaggio perché l'amministratore ha registrato il tuo codice fiscale per le convocazioni su app IO._\n";
    let front = front_matter("Apri la seduta", "Open the session", link);
    // The agenda fills what IO allows; items that do not fit are counted.
    let room = MARKDOWN_MAX
        .saturating_sub(front.chars().count() + head.chars().count() + tail.chars().count())
        .saturating_sub(60);
    let mut items = String::new();
    let mut listed = 0;
    for (i, item) in agenda.iter().enumerate() {
        let line = format!("{}. {}\n", i + 1, inline(&clip(item, 500)));
        if items.chars().count() + line.chars().count() > room {
            break;
        }
        items.push_str(&line);
        listed += 1;
    }
    if agenda.is_empty() {
        items.push_str("L'ordine del giorno sarà comunicato.\n");
    } else if listed < agenda.len() {
        items.push_str(&format!("\n…e altri {} punti.\n", agenda.len() - listed));
    }
    Composed {
        subject: subject("Convocazione: ", title),
        markdown: markdown(&front, &format!("{head}{items}{tail}")),
        due_date: Some(scheduled_at),
    }
}

// --- queueing ---------------------------------------------------------------------------------------

/// The message of `kind` for an appointment, the secret of its link left as [`SECRET_SLOT`].
async fn appointment_message(
    back: &BackOffice,
    kind: AppioKind,
    appt: &Appointment,
    office: &Office,
    service: &Service,
    fiscal_code: &str,
) -> Result<NewAppioMessage, StoreError> {
    let municipality = Municipality::load(&back.store).await?;
    let link = match kind {
        AppioKind::Cancelled => links::book_again_link(&back.public_url, &service.id),
        _ => links::cancel_link(&back.public_url, &appt.code, SECRET_SLOT),
    };
    let composed = compose_appointment(&AppointmentFacts {
        kind,
        lang: Lang::from_tag(&appt.lang),
        municipality: &municipality.name,
        office,
        service,
        starts_at: appt.starts_at,
        mode: appt.mode,
        code: &appt.code,
        link: &link,
    });
    Ok(NewAppioMessage {
        appointment_id: Some(appt.id.clone()),
        council_session_id: None,
        user_id: None,
        kind,
        fiscal_code: fiscal_code.to_owned(),
        subject: composed.subject,
        markdown: composed.markdown,
        due_date: composed.due_date,
    })
}

/// The citizen chose App IO when booking: the code is stored with the first message, after the
/// booking committed. A failure is logged, never returned: the booking stands, and email tells it.
pub async fn choose(
    back: &BackOffice,
    code: &FiscalCode,
    appt: &Appointment,
    office: &Office,
    service: &Service,
    now: i64,
) -> bool {
    let stored = async {
        let message = appointment_message(back, AppioKind::Booked, appt, office, service, code.as_str()).await?;
        back.store.choose_appio(&appt.id, &message, now).await
    };
    match stored.await {
        Ok(m) => {
            tracing::info!(appointment = %appt.id, message = %m.id, "App IO chosen; confirmation queued");
            true
        }
        Err(error) => {
            tracing::error!(appointment = %appt.id, %error, "App IO choice not stored; email only");
            false
        }
    }
}

/// Queues the message of `kind` when the appointment has a fiscal code and App IO is on. Never
/// fails: what the message tells has happened, and email tells it too.
pub async fn notify(
    back: &BackOffice,
    kind: AppioKind,
    appt: &Appointment,
    office: &Office,
    service: &Service,
    now: i64,
) {
    let queued = async {
        let Some(code) = back.store.appointment_appio_fiscal_code(&appt.id).await? else { return Ok(None) };
        if !AppioSettings::load(&back.store).await?.active() {
            return Ok(None);
        }
        let message = appointment_message(back, kind, appt, office, service, &code).await?;
        back.store.enqueue_appio_message(&message, now).await.map(Some)
    };
    match queued.await {
        Ok(Some(m)) => tracing::info!(appointment = %appt.id, kind = %kind, message = %m.id, "App IO message queued"),
        Ok(None) => {}
        Err(error) => tracing::error!(appointment = %appt.id, kind = %kind, %error, "App IO message not queued"),
    }
}

/// What a convocation did: how many messages were queued, and who has no fiscal code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Convened {
    pub queued: usize,
    pub without_fiscal_code: Vec<String>,
}

/// Queues the convocation of a council session to each member with a fiscal code.
pub async fn convene(back: &BackOffice, session_id: &str, now: i64) -> Result<Convened, AppioError> {
    if !AppioSettings::load(&back.store).await?.active() {
        return Err(AppioError::Disabled);
    }
    let session = back.store.council_session(session_id).await?.ok_or(AppioError::NotFound)?;
    let agenda: Vec<String> = back.store.council_items(session_id).await?.into_iter().map(|i| i.title).collect();
    let members = back.store.council_members(session_id).await?;
    let codes = back.store.user_fiscal_codes(&members).await?;
    let municipality = Municipality::load(&back.store).await?;
    let link = format!("{}/staff?seduta={}", back.public_url.trim_end_matches('/'), session.id);
    let composed =
        compose_convocation(&municipality.name, session.body, &session.title, session.scheduled_at, &agenda, &link);
    let mut convened = Convened { queued: 0, without_fiscal_code: Vec::new() };
    for user_id in members {
        let Some(code) = codes.get(&user_id) else {
            let name = back.store.user(&user_id).await?.map(|u| u.display_name).unwrap_or(user_id);
            convened.without_fiscal_code.push(name);
            continue;
        };
        let message = NewAppioMessage {
            appointment_id: None,
            council_session_id: Some(session.id.clone()),
            user_id: Some(user_id.clone()),
            kind: AppioKind::Convocation,
            fiscal_code: code.clone(),
            subject: composed.subject.clone(),
            markdown: composed.markdown.clone(),
            due_date: composed.due_date,
        };
        back.store.enqueue_appio_message(&message, now).await?;
        convened.queued += 1;
    }
    tracing::info!(session = %session.id, queued = convened.queued, without = convened.without_fiscal_code.len(), "convocation queued");
    Ok(convened)
}

// --- sending ----------------------------------------------------------------------------------------

/// When to try again after failed attempt number `attempt` (1-based), or `None`: give up.
pub fn retry_at(attempt: i64, now: i64) -> Option<i64> {
    outbox::retry_at(&RETRY_DELAYS, attempt, now)
}

/// The HTTP client of the sender.
pub fn client() -> reqwest::Client {
    outbox::client("Sportello-AppIO", TIMEOUT)
}

/// What became of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// IO's message id.
    Sent(String),
    /// Nothing may be sent to this citizen (not final in IO, final here).
    Refused(&'static str),
    /// Worth trying again (429, 5xx, no answer).
    Retry(String),
    /// IO refused the request itself.
    Failed(String),
}

impl Outcome {
    fn label(&self) -> &'static str {
        match self {
            Outcome::Sent(_) => "sent",
            Outcome::Refused(_) => "refused",
            Outcome::Retry(_) => "retry",
            Outcome::Failed(_) => "failed",
        }
    }
}

/// One POST of JSON to IO: the status and the answer's first bytes, or why there was no answer.
async fn post(
    client: &reqwest::Client,
    settings: &AppioSettings,
    key: &str,
    path: &str,
    body: &serde_json::Value,
) -> Result<(u16, Vec<u8>), String> {
    let request = client
        .post(format!("{}{path}", settings.base_url))
        .header("content-type", "application/json")
        .header("accept", "application/json")
        .header("Ocp-Apim-Subscription-Key", key)
        .body(body.to_string());
    let mut response = match request.send().await {
        Ok(r) => r,
        Err(e) if e.is_timeout() => return Err(format!("{path}: timed out")),
        Err(e) if e.is_connect() => return Err(format!("{path}: cannot connect")),
        Err(_) => return Err(format!("{path}: request failed")),
    };
    let status = response.status().as_u16();
    let mut answer = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        answer.extend_from_slice(&chunk);
        if answer.len() > MAX_ANSWER {
            break;
        }
    }
    Ok((status, answer))
}

/// A refusal worth logging: the status and the problem's title (IO's `ProblemJson`), never the
/// request (which holds the fiscal code).
fn refusal(path: &str, status: u16, answer: &[u8]) -> String {
    let title = serde_json::from_slice::<serde_json::Value>(answer)
        .ok()
        .and_then(|v| v.get("title").and_then(|t| t.as_str()).map(|t| clip(t, 120)));
    match title {
        Some(title) => format!("{path}: HTTP {status} {title}"),
        None => format!("{path}: HTTP {status}"),
    }
}

fn retryable(status: u16) -> bool {
    status == 429 || status >= 500
}

/// Sends one message as IO's API asks: the profile first, then the message.
pub async fn attempt(
    client: &reqwest::Client,
    settings: &AppioSettings,
    fiscal_code: &str,
    subject: &str,
    markdown: &str,
    due_date: Option<i64>,
) -> Outcome {
    let Some(key) = settings.api_key.as_deref() else { return Outcome::Retry("no API key".to_owned()) };
    let profile = serde_json::json!({ "fiscal_code": fiscal_code });
    match post(client, settings, key, "/profiles", &profile).await {
        Err(error) => return Outcome::Retry(error),
        Ok((200, answer)) => {
            match serde_json::from_slice::<serde_json::Value>(&answer).ok().and_then(|v| v["sender_allowed"].as_bool())
            {
                Some(true) => {}
                Some(false) => return Outcome::Refused("the citizen turned the service off"),
                None => return Outcome::Retry("/profiles: unreadable answer".to_owned()),
            }
        }
        Ok((404, _)) => return Outcome::Refused("the citizen is not on IO"),
        Ok((status, answer)) if retryable(status) => return Outcome::Retry(refusal("/profiles", status, &answer)),
        Ok((status, answer)) => return Outcome::Failed(refusal("/profiles", status, &answer)),
    }
    let mut content = serde_json::json!({ "subject": subject, "markdown": markdown });
    if let Some(due) = due_date {
        content["due_date"] = serde_json::Value::String(due_date_text(due));
    }
    let message = serde_json::json!({ "fiscal_code": fiscal_code, "content": content });
    match post(client, settings, key, "/messages", &message).await {
        Err(error) => Outcome::Retry(error),
        Ok((201, answer)) => Outcome::Sent(
            serde_json::from_slice::<serde_json::Value>(&answer)
                .ok()
                .and_then(|v| v["id"].as_str().map(str::to_owned))
                .unwrap_or_default(),
        ),
        Ok((status, answer)) if retryable(status) => Outcome::Retry(refusal("/messages", status, &answer)),
        Ok((status, answer)) => Outcome::Failed(refusal("/messages", status, &answer)),
    }
}

/// The markdown as it goes out: the manage secret put in its slot (derived again from the token
/// key), still within IO's limit.
async fn with_secret(back: &BackOffice, m: &AppioMessage) -> Result<String, String> {
    if !m.markdown.contains(SECRET_SLOT) {
        return Ok(m.markdown.clone());
    }
    let appointment_id = m.appointment_id.as_deref().ok_or("a secret slot without an appointment")?;
    let appt = match back.store.appointment(appointment_id).await {
        Ok(Some(a)) => a,
        Ok(None) => return Err("the appointment is gone".to_owned()),
        Err(error) => return Err(error.to_string()),
    };
    let secret = links::derived_secret(&back.tokens, &appt).map_err(|e| e.to_string())?;
    Ok(clip(&m.markdown.replace(SECRET_SLOT, &secret), MARKDOWN_MAX))
}

/// One claimed message through to its recorded outcome.
async fn send(back: &BackOffice, client: &reqwest::Client, settings: &AppioSettings, m: AppioMessage) {
    let attempt_no = m.attempts + 1;
    let now = back.clock.now();
    let outcome = if m.due_date.is_some_and(|due| due <= now) {
        // The appointment or session has begun: a message about it now would only confuse.
        metrics::counter!("sportello_appio_messages_total", "outcome" => "expired").increment(1);
        Outcome::Failed("expired before it could be sent".to_owned())
    } else {
        match with_secret(back, &m).await {
            Err(error) => Outcome::Failed(error),
            Ok(markdown) => attempt(client, settings, &m.fiscal_code, &m.subject, &markdown, m.due_date).await,
        }
    };
    let at = back.clock.now();
    metrics::counter!("sportello_appio_messages_total", "outcome" => outcome.label()).increment(1);
    let recorded = match &outcome {
        Outcome::Sent(id) => {
            tracing::info!(io_message = %id, "App IO message sent");
            back.store.record_appio_sent(&m.id, attempt_no, id, at).await
        }
        Outcome::Refused(reason) => {
            tracing::info!(reason, "App IO message not sent: the citizen does not receive it");
            back.store.record_appio_refused(&m.id, attempt_no, reason, at).await
        }
        Outcome::Retry(error) => match retry_at(attempt_no, at) {
            Some(next) => {
                tracing::info!(%error, retry_at = next, "App IO attempt failed; retried later");
                back.store.record_appio_retry(&m.id, attempt_no, error, next, at).await
            }
            None => {
                tracing::warn!(%error, "App IO message given up after its last attempt");
                back.store.record_appio_failed(&m.id, attempt_no, &format!("gave up: {error}"), at).await
            }
        },
        Outcome::Failed(error) => {
            tracing::warn!(%error, "App IO message refused by IO; not retried");
            back.store.record_appio_failed(&m.id, attempt_no, error, at).await
        }
    };
    match recorded {
        // Withdrawn while it was being sent (the citizen opted out): nothing left to record.
        Ok(()) | Err(StoreError::NotFound) => {}
        Err(error) => tracing::error!(%error, "App IO outcome not recorded"),
    }
}

/// Starts sending each message due now, as many as `slots` has free; returns how many it started.
pub async fn deliver_due(back: &BackOffice, client: &reqwest::Client, slots: &Slots) -> Result<usize, StoreError> {
    let settings = AppioSettings::load(&back.store).await?;
    if !settings.active() {
        return Ok(0); // queued messages wait for App IO to be on again (or expire)
    }
    let free = slots.free();
    if free == 0 {
        return Ok(0);
    }
    let due = back.store.claim_due_appio_messages(back.clock.now(), LEASE_SECS, free).await?;
    let span =
        |m: &AppioMessage| tracing::info_span!("appio", message = %m.id, kind = %m.kind, attempt = m.attempts + 1);
    Ok(slots.start(due, span, |m| {
        let (back, client, settings) = (back.clone(), client.clone(), settings.clone());
        async move { send(&back, &client, &settings, m).await }
    }))
}

/// The sender: looks at the outbox every second until shutdown.
pub fn spawn(back: BackOffice, shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
    let (client, slots) = (Arc::new(client()), Arc::new(Slots::new(IN_FLIGHT)));
    outbox::every(POLL, shutdown, move || {
        let (back, client, slots) = (back.clone(), client.clone(), slots.clone());
        async move {
            if let Err(error) = deliver_due(&back, &client, &slots).await {
                tracing::error!(%error, "App IO pass failed");
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn office(address: &str) -> Office {
        Office {
            id: "o1".into(),
            name: "Anagrafe *centrale*".into(),
            description: String::new(),
            address: address.into(),
            email: String::new(),
            phone: String::new(),
            opening_hours: String::new(),
            desk_hours: String::new(),
            created_at: 0,
        }
    }

    fn service(name: &str) -> Service {
        Service {
            id: "s1".into(),
            name: name.into(),
            description: String::new(),
            duration_minutes: 30,
            what_to_bring: String::new(),
            modes: sportello_store::Modes::Both,
            office_ids: vec!["o1".into()],
            created_at: 0,
        }
    }

    /// Thursday 11 March 2027, 10:00 in Rome (09:00 UTC).
    const START: i64 = 1_804_755_600;
    const LINK: &str = "https://sportello.example/appuntamento?codice=ABCD-2345&azione=annulla#s3cret";

    fn facts<'a>(kind: AppioKind, lang: Lang, office: &'a Office, service: &'a Service) -> AppointmentFacts<'a> {
        AppointmentFacts {
            kind,
            lang,
            municipality: "Comune di Esempio",
            office,
            service,
            starts_at: START,
            mode: Mode::InPerson,
            code: "ABCD-2345",
            link: LINK,
        }
    }

    #[test]
    fn a_confirmation_carries_the_cancel_button_and_no_personal_data() {
        let (o, s) = (office("Piazza Municipio 1"), service("Carta d'identità"));
        let m = compose_appointment(&facts(AppioKind::Booked, Lang::It, &o, &s));
        assert_eq!(m.subject, "Appuntamento confermato: Carta d'identità");
        let front = format!(
            "---\nit:\n    cta_1:\n        text: \"Annulla\"\n        action: \"iohandledlink://{LINK}\"\nen:\n    \
             cta_1:\n        text: \"Cancel\"\n        action: \"iohandledlink://{LINK}\"\n---\n"
        );
        assert!(m.markdown.starts_with(&front), "{}", m.markdown);
        assert!(m.markdown.contains("giovedì 11 marzo 2027, ore 10:00"), "{}", m.markdown);
        assert!(m.markdown.contains("in presenza, Piazza Municipio 1"), "{}", m.markdown);
        assert!(m.markdown.contains("**Codice prenotazione:** ABCD-2345"), "{}", m.markdown);
        assert!(m.markdown.contains("**Anagrafe \\*centrale\\***"), "staff text cannot format: {}", m.markdown);
        assert_eq!(m.due_date, Some(START));
        assert_eq!(due_date_text(START), "2027-03-11T09:00:00.000Z");
    }

    #[test]
    fn english_bookings_read_english_and_cancellations_offer_to_book_again() {
        let (o, s) = (office(""), service("Identity card"));
        let m = compose_appointment(&facts(AppioKind::Moved, Lang::En, &o, &s));
        assert_eq!(m.subject, "Appointment moved: Identity card");
        assert!(m.markdown.contains("Thursday 11 March 2027, 10:00"), "{}", m.markdown);
        assert!(m.markdown.contains("**How:** in person\n"), "{}", m.markdown);
        let c = compose_appointment(&facts(AppioKind::Cancelled, Lang::It, &o, &s));
        assert!(c.markdown.contains("text: \"Prenota di nuovo\""), "{}", c.markdown);
        assert_eq!(c.due_date, None, "a cancelled appointment is no date to keep");
        let r = compose_appointment(&facts(AppioKind::Reminder, Lang::It, &o, &s));
        assert_eq!(r.subject, "Promemoria appuntamento: Identity card");
    }

    #[test]
    fn lengths_stay_within_ios_limits() {
        let o = office(&"via ".repeat(3000));
        for name in ["", "X", &"Servizio molto lungo ".repeat(20)] {
            let s = service(name);
            for kind in [AppioKind::Booked, AppioKind::Moved, AppioKind::Cancelled, AppioKind::Reminder] {
                for lang in [Lang::It, Lang::En] {
                    let m = compose_appointment(&facts(kind, lang, &o, &s));
                    let (subject, markdown) = (m.subject.chars().count(), m.markdown.chars().count());
                    assert!((SUBJECT_MIN..=SUBJECT_MAX).contains(&subject), "{subject}: {}", m.subject);
                    assert!((MARKDOWN_MIN..=MARKDOWN_MAX).contains(&markdown), "{markdown}");
                    assert!(m.markdown.starts_with("---\nit:\n"), "the front matter is never cut");
                }
            }
        }
        let agenda: Vec<String> = (0..100).map(|i| format!("Punto {i} {}", "x".repeat(480))).collect();
        let title = "Seduta ".repeat(40);
        let c =
            compose_convocation("Comune", CouncilBody::Consiglio, &title, START, &agenda, "https://x.example/staff");
        assert!(c.subject.starts_with("Convocazione: Seduta") && c.subject.chars().count() == SUBJECT_MAX);
        assert!((MARKDOWN_MIN..=MARKDOWN_MAX).contains(&c.markdown.chars().count()));
        assert!(c.markdown.contains("…e altri "), "the items that do not fit are counted");
        assert!(c.markdown.contains("area riservata"), "the end of the body is kept");
    }

    #[test]
    fn a_convocation_lists_the_agenda() {
        let agenda = vec!["Bilancio di previsione".to_owned(), "Mozione #3".to_owned()];
        let c = compose_convocation(
            "Comune di Esempio",
            CouncilBody::Consiglio,
            "Seduta ordinaria",
            START,
            &agenda,
            "https://sportello.example/staff?seduta=x",
        );
        assert_eq!(c.subject, "Convocazione: Seduta ordinaria");
        assert!(c.markdown.contains("* **Quando:** giovedì 11 marzo 2027, ore 10:00"), "{}", c.markdown);
        assert!(c.markdown.contains("1. Bilancio di previsione\n2. Mozione \\#3\n"), "{}", c.markdown);
        assert!(c.markdown.contains("action: \"iohandledlink://https://sportello.example/staff?seduta=x\""));
        assert_eq!(c.due_date, Some(START));
    }

    #[test]
    fn yaml_and_base_urls() {
        assert_eq!(yaml_quoted("a\"b\\c\n"), "\"a\\\"b\\\\c\"");
        assert_eq!(
            valid_base_url("https://api.io.pagopa.it/api/v1/").as_deref(),
            Some("https://api.io.pagopa.it/api/v1")
        );
        assert_eq!(valid_base_url(" http://127.0.0.1:4010 ").as_deref(), Some("http://127.0.0.1:4010"));
        assert!(valid_base_url("http://[::1]:4010").is_some());
        assert!(valid_base_url("http://localhost:4010").is_some());
        for bad in
            ["http://api.io.pagopa.it/api/v1", "http://10.0.0.1/", "ftp://x/", "https://u:p@x/", "https://x/?a=1", ""]
        {
            assert!(valid_base_url(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn retries_back_off_then_give_up() {
        assert_eq!(retry_at(1, 1000), Some(1030));
        assert_eq!(retry_at(6, 0), Some(12 * 3600));
        assert_eq!(retry_at(7, 0), None, "seven attempts, then given up");
        assert_eq!(retry_at(0, 0), None);
    }
}
