//! The citizen's links: the join link `<public_url>/a/<token>` and its landing page, the manage
//! link `<public_url>/appuntamento?codice=<code>#<secret>` and the reminder's one-click cancel link.
//!
//! The landing page judges the appointment (tampered, cancelled, too early, over) before handing
//! the token to the room page, so the citizen reads a clear sentence instead of a websocket error.
//! It is server-rendered HTML (no script needed) in Italian with English below.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use sportello_domain::booking::{JOIN_CLOSES_AFTER, JOIN_OPENS_BEFORE, JoinTiming, Lang, join_timing, opening_label};
use sportello_store::{Appointment, Office, Status};
use tracing::Instrument;

use crate::api::auth::sha256_hex;
use crate::state::AppState;
use crate::token::{Claims, KeyError, Role, TokenKey};

/// The room of an appointment (shared naming contract).
pub fn room_of(appointment_id: &str) -> String {
    format!("appt-{appointment_id}")
}

/// The citizen's join claims: valid from 15 minutes before the start to 30 minutes after the end;
/// they wait in the lobby until the official admits them.
pub fn citizen_claims(appt: &Appointment, now: i64) -> Claims {
    let nbf = appt.starts_at - JOIN_OPENS_BEFORE.as_secs();
    let exp = appt.ends_at + JOIN_CLOSES_AFTER.as_secs();
    Claims {
        room: room_of(&appt.id),
        sub: format!("citizen-{}", appt.id),
        name: format!("{} {}", appt.first_name, appt.last_name),
        role: Role::Participant,
        nbf: u64::try_from(nbf).unwrap_or(0),
        exp: u64::try_from(exp).unwrap_or(0),
        iat: u64::try_from(now).unwrap_or(0),
        appt: Some(appt.id.clone()),
        wait: true,
    }
}

fn base(public_url: &str) -> &str {
    public_url.trim_end_matches('/')
}

/// The join link the citizen's emails and pages show: only for a confirmed video appointment
/// (a signing failure is logged and leaves the link out rather than failing the email).
pub fn video_join_link(state: &AppState, appt: &Appointment, now: i64) -> Option<String> {
    if appt.mode != sportello_store::Mode::Video || appt.status != Status::Confirmed {
        return None;
    }
    join_link(&state.tokens, &state.config.public_url, appt, now)
        .inspect_err(|error| tracing::error!(%error, "cannot sign a join link"))
        .ok()
}

/// `<public_url>/a/<token>` for the appointment as it is now (times included).
pub fn join_link(tokens: &TokenKey, public_url: &str, appt: &Appointment, now: i64) -> Result<String, KeyError> {
    let token = tokens.issue(&citizen_claims(appt, now))?;
    Ok(format!("{}/a/{token}", base(public_url)))
}

/// Where the citizen reviews, cancels or moves the booking. The secret rides in the fragment: the
/// browser never sends it in a request line, so it stays out of every log.
pub fn manage_link(public_url: &str, code: &str, secret: &str) -> String {
    format!("{}/appuntamento?codice={code}#{secret}", base(public_url))
}

/// The reminder's one-click cancel: the manage page with the cancel confirmation preselected
/// (the cancel itself is a button press: link scanners must not cancel by GET).
pub fn cancel_link(public_url: &str, code: &str, secret: &str) -> String {
    format!("{}/appuntamento?codice={code}&azione=annulla#{secret}", base(public_url))
}

/// The booking page with the same service chosen (in the cancellation email).
pub fn book_again_link(public_url: &str, service_id: &str) -> String {
    format!("{}/prenota?servizio={service_id}", base(public_url))
}

/// A second manage secret the server can derive again at any time, for emails sent after the
/// booking (reminders): the random booking secret is stored only as a hash, so it cannot be
/// re-sent. It is the HS256 signature of fixed, already-expired claims naming the appointment, i.e.
/// a MAC under the token key; the full token it belongs to never passes a join (expired, own room).
pub fn derived_secret(tokens: &TokenKey, appt: &Appointment) -> Result<String, KeyError> {
    let claims = Claims {
        room: format!("manage-{}", appt.id),
        sub: format!("manage-{}", appt.id),
        name: appt.code.clone(),
        role: Role::Viewer,
        nbf: 0,
        exp: 0,
        iat: 0,
        appt: Some(appt.id.clone()),
        wait: true,
    };
    let token = tokens.issue(&claims)?;
    Ok(token.rsplit('.').next().unwrap_or_default().to_owned())
}

/// Whether `secret` opens this appointment: the booking secret (hash compared) or the derived one.
pub fn secret_matches(tokens: &TokenKey, appt: &Appointment, secret: &str) -> bool {
    if secret.is_empty() || secret.len() > 200 {
        return false;
    }
    if constant_time_eq(sha256_hex(secret).as_bytes(), appt.secret_hash.as_bytes()) {
        return true;
    }
    derived_secret(tokens, appt).is_ok_and(|d| constant_time_eq(d.as_bytes(), secret.as_bytes()))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

// --- the landing page ------------------------------------------------------------------------------

/// `GET /a/{token}`: judge the link, then 303 to the room page (`/join#t=<token>`).
pub async fn landing(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    judge(state, token).instrument(tracing::info_span!("join_link")).await
}

async fn judge(state: AppState, token: String) -> Response {
    // Signature only: the window is judged here against the appointment, with clear pages.
    let claims = match state.tokens.decode::<Claims>(&token) {
        Ok(c) => c,
        Err(_) => return invalid(None),
    };
    let Some(appt_id) = claims.appt.clone() else { return invalid(None) };
    let appt = match state.store.appointment(&appt_id).await {
        Ok(Some(a)) => a,
        Ok(None) => return invalid(None),
        Err(e) => {
            tracing::error!(error = %e, "cannot load the appointment of a join link");
            return html(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Errore interno",
                "<p>Non è stato possibile verificare il link. Riprova tra qualche minuto.</p>",
                "Internal error",
                "<p>The link could not be checked. Please try again in a few minutes.</p>",
            );
        }
    };
    let office = state.store.office(&appt.office_id).await.ok().flatten();
    if claims.room != room_of(&appt.id) {
        return invalid(office.as_ref());
    }
    match appt.status {
        Status::Cancelled => return cancelled(),
        Status::Completed | Status::NoShow => return expired(office.as_ref()),
        Status::Confirmed => {}
    }
    // A link from before a reschedule names the old times: only the newest email's link works.
    let current = citizen_claims(&appt, 0);
    if claims.nbf != current.nbf || claims.exp != current.exp {
        return html(
            StatusCode::GONE,
            "Il link non è più valido",
            &format!(
                "<p>L'appuntamento è stato spostato: usa il link dell'email più recente.</p>{}",
                contacts_it(office.as_ref())
            ),
            "This link is no longer valid",
            "<p>The appointment was moved: please use the link in the most recent email.</p>",
        );
    }
    let now = Timestamp::from_second(state.clock.now()).unwrap_or(Timestamp::UNIX_EPOCH);
    let (start, end) = (ts(appt.starts_at), ts(appt.ends_at));
    match join_timing(now, start, end) {
        JoinTiming::TooEarly { opens } => too_early(opens),
        JoinTiming::Over => expired(office.as_ref()),
        JoinTiming::Open => {
            let mut response = StatusCode::SEE_OTHER.into_response();
            if let Ok(location) = HeaderValue::from_str(&format!("/join#t={token}")) {
                response.headers_mut().insert(header::LOCATION, location);
            }
            response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
    }
}

fn ts(secs: i64) -> Timestamp {
    Timestamp::from_second(secs).unwrap_or(Timestamp::UNIX_EPOCH)
}

fn invalid(office: Option<&Office>) -> Response {
    html(
        StatusCode::BAD_REQUEST,
        "Il link non è valido",
        &format!(
            "<p>Il link non è valido: potrebbe essere stato copiato in modo incompleto. Apri di nuovo il link \
             dall'email di conferma o di promemoria, senza modificarlo.</p><p>Se il problema continua, contatta \
             l'ufficio.</p>{}",
            contacts_it(office)
        ),
        "The link is not valid",
        "<p>The link is not valid: it may have been copied incompletely. Open the link from the confirmation \
         or reminder email again, without changing it. If the problem persists, contact the office.</p>",
    )
}

fn cancelled() -> Response {
    html(
        StatusCode::GONE,
        "Appuntamento annullato",
        "<p>Questo appuntamento è stato annullato. Se ti serve ancora, puoi \
         <a href=\"/prenota\">prenotare un nuovo appuntamento</a>.</p>",
        "Appointment cancelled",
        "<p>This appointment was cancelled. If you still need it, you can \
         <a href=\"/prenota\">book a new appointment</a>.</p>",
    )
}

fn expired(office: Option<&Office>) -> Response {
    html(
        StatusCode::GONE,
        "Il link è scaduto",
        &format!(
            "<p>L'appuntamento si è concluso e il link non è più valido. Per un nuovo incontro puoi \
             <a href=\"/prenota\">prenotare un appuntamento</a>.</p>{}",
            contacts_it(office)
        ),
        "The link has expired",
        "<p>The appointment is over and the link is no longer valid. You can \
         <a href=\"/prenota\">book a new appointment</a>.</p>",
    )
}

fn too_early(opens: Timestamp) -> Response {
    let tz = sportello_domain::europe_rome().unwrap_or(jiff::tz::TimeZone::UTC);
    let (it, en) = (opening_label(opens, &tz, Lang::It), opening_label(opens, &tz, Lang::En));
    html(
        StatusCode::OK,
        "La sala d'attesa non è ancora aperta",
        &format!(
            "<p>La sala d'attesa apre alle {} (15 minuti prima dell'appuntamento). Riapri questo link a \
             quell'ora: non serve installare nulla.</p>",
            escape(&it)
        ),
        "The waiting room is not open yet",
        &format!(
            "<p>The waiting room opens at {} (15 minutes before the appointment). Open this link again then.</p>",
            escape(&en)
        ),
    )
}

fn contacts_it(office: Option<&Office>) -> String {
    let Some(o) = office else { return String::new() };
    let mut items = Vec::new();
    if !o.email.is_empty() {
        items.push(format!("<li>Email: <a href=\"mailto:{0}\">{0}</a></li>", escape(&o.email)));
    }
    if !o.phone.is_empty() {
        items.push(format!("<li>Telefono: {}</li>", escape(&o.phone)));
    }
    if !o.address.is_empty() {
        items.push(format!("<li>Indirizzo: {}</li>", escape(&o.address)));
    }
    format!("<h2>{}</h2><ul>{}</ul>", escape(&o.name), items.join(""))
}

/// HTML text escaping for what comes from the database.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// One small page: Italian first, English below. `title_*` are plain text, `body_*` trusted HTML.
fn html(status: StatusCode, title_it: &str, body_it: &str, title_en: &str, body_en: &str) -> Response {
    let page = format!(
        "<!doctype html>\n<html lang=\"it\">\n<head>\n<meta charset=\"utf-8\">\n\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
<meta name=\"referrer\" content=\"no-referrer\">\n<title>{ti} — Sportello</title>\n\
<link rel=\"icon\" href=\"/web/favicon.svg\" type=\"image/svg+xml\">\n\
<link rel=\"stylesheet\" href=\"/web/style.css\">\n<link rel=\"stylesheet\" href=\"/web/pages.css\">\n</head>\n\
<body>\n<header class=\"site-header\"><div class=\"header-bar\"><div class=\"container header-inner\">\
<a class=\"brand\" href=\"/\"><span class=\"brand-mark\" aria-hidden=\"true\">S</span><span>Sportello</span></a>\
</div></div></header>\n<main id=\"main\" class=\"container\">\n<section class=\"panel\" aria-labelledby=\"t-it\">\
<h1 id=\"t-it\">{ti}</h1>\n{bi}\n</section>\n<section class=\"panel\" lang=\"en\" aria-labelledby=\"t-en\">\
<h2 id=\"t-en\">{te}</h2>\n{be}\n</section>\n</main>\n<footer class=\"site-footer\"><div class=\"container footer-inner\">\
<a href=\"/privacy\">Informativa privacy</a></div></footer>\n</body>\n</html>\n",
        ti = escape(title_it),
        te = escape(title_en),
        bi = body_it,
        be = body_en,
    );
    let mut response = (status, page).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn appt() -> Appointment {
        Appointment {
            id: "a1".into(),
            code: "ABCD-2345".into(),
            secret_hash: sha256_hex("s3cret"),
            office_id: "o".into(),
            service_id: "s".into(),
            official_id: "u".into(),
            starts_at: 1_800_000_000,
            ends_at: 1_800_001_800,
            mode: sportello_store::Mode::Video,
            first_name: "Anna".into(),
            last_name: "Rossi".into(),
            email: "anna@example.org".into(),
            details: String::new(),
            lang: "it".into(),
            status: Status::Confirmed,
            reminder_sent_at: None,
            citizen_joined_at: None,
            rating: None,
            rating_comment: None,
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn claims_follow_the_contract() {
        let c = citizen_claims(&appt(), 5);
        assert_eq!((c.room.as_str(), c.sub.as_str(), c.name.as_str()), ("appt-a1", "citizen-a1", "Anna Rossi"));
        assert_eq!((c.nbf, c.exp, c.iat), (1_800_000_000 - 900, 1_800_001_800 + 1800, 5));
        assert!(c.wait && c.appt.as_deref() == Some("a1") && c.role == Role::Participant);
    }

    #[test]
    fn secrets() {
        let key = TokenKey::random();
        let a = appt();
        assert!(secret_matches(&key, &a, "s3cret"));
        assert!(!secret_matches(&key, &a, "s3creT"));
        assert!(!secret_matches(&key, &a, ""));
        let derived = derived_secret(&key, &a).unwrap();
        assert!(secret_matches(&key, &a, &derived));
        assert!(!secret_matches(&TokenKey::random(), &a, &derived));
        assert_eq!(
            cancel_link("https://x.it/", "ABCD-2345", "zz"),
            "https://x.it/appuntamento?codice=ABCD-2345&azione=annulla#zz"
        );
        assert_eq!(escape("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
    }
}
