//! `GET /a/{token}`: the landing page of the citizen's join link (`links`). It judges the
//! appointment (tampered, cancelled, too early, over) before handing the token to the room page, so
//! the citizen reads a clear sentence instead of a websocket error. It is server-rendered HTML (no
//! script needed) in Italian with English below.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use sportello_domain::booking::{JoinTiming, Lang, join_timing, opening_label};
use sportello_store::{Office, Status};
use tracing::Instrument;

use crate::state::AppState;
use sportello_backoffice::links::{citizen_claims, room_of};
use sportello_backoffice::settings::Municipality;
use sportello_backoffice::time::ts;
use sportello_backoffice::token::Claims;

/// `GET /a/{token}`: judge the link, then 303 to the room page (`/join#t=<token>`).
pub async fn page(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    judge(state, token).instrument(tracing::info_span!("join_link")).await
}

async fn judge(state: AppState, token: String) -> Response {
    let m = crate::page::municipality(&state).await.unwrap_or_else(|_| Municipality::unnamed());
    let m = &m;
    // Signature only: the window is judged here against the appointment, with clear pages.
    let claims = match state.tokens.decode::<Claims>(&token) {
        Ok(c) => c,
        Err(_) => return invalid(m, None),
    };
    let Some(appt_id) = claims.appt.clone() else { return invalid(m, None) };
    let appt = match state.store.appointment(&appt_id).await {
        Ok(Some(a)) => a,
        Ok(None) => return invalid(m, None),
        Err(e) => {
            tracing::error!(error = %e, "cannot load the appointment of a join link");
            return html(
                m,
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
        return invalid(m, office.as_ref());
    }
    match appt.status {
        Status::Cancelled => return cancelled(m),
        Status::Completed | Status::NoShow => return expired(m, office.as_ref()),
        Status::Confirmed => {}
    }
    // A link from before a reschedule names the old times: only the newest email's link works.
    let current = citizen_claims(&appt, 0);
    if claims.nbf != current.nbf || claims.exp != current.exp {
        return html(
            m,
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
        JoinTiming::TooEarly { opens } => too_early(m, opens),
        JoinTiming::Over => expired(m, office.as_ref()),
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

fn invalid(m: &Municipality, office: Option<&Office>) -> Response {
    html(
        m,
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

fn cancelled(m: &Municipality) -> Response {
    html(
        m,
        StatusCode::GONE,
        "Appuntamento annullato",
        "<p>Questo appuntamento è stato annullato. Se ti serve ancora, puoi \
         <a href=\"/prenota\">prenotare un nuovo appuntamento</a>.</p>",
        "Appointment cancelled",
        "<p>This appointment was cancelled. If you still need it, you can \
         <a href=\"/prenota\">book a new appointment</a>.</p>",
    )
}

fn expired(m: &Municipality, office: Option<&Office>) -> Response {
    html(
        m,
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

fn too_early(m: &Municipality, opens: Timestamp) -> Response {
    let tz = sportello_domain::europe_rome().unwrap_or(jiff::tz::TimeZone::UTC);
    let (it, en) = (opening_label(opens, &tz, Lang::It), opening_label(opens, &tz, Lang::En));
    html(
        m,
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
pub use sportello_backoffice::text::escape_html as escape;

/// One small page in the site's frame: Italian first, English below. `title_*` are plain text,
/// `body_*` trusted HTML.
fn html(
    m: &Municipality,
    status: StatusCode,
    title_it: &str,
    body_it: &str,
    title_en: &str,
    body_en: &str,
) -> Response {
    let source = format!(
        "<head>\n<title>{ti} — {{{{m.name}}}}</title>\n<link rel=\"stylesheet\" href=\"/web/shared/pages.css\">\n</head>\n\
<body data-frame=\"static\">\n<main id=\"main\" tabindex=\"-1\" class=\"container\">\n<section class=\"panel\" aria-labelledby=\"t-it\">\
<h1 id=\"t-it\">{ti}</h1>\n{bi}\n</section>\n<section class=\"panel\" lang=\"en\" aria-labelledby=\"t-en\">\
<h2 id=\"t-en\">{te}</h2>\n{be}\n</section>\n</main>\n</body>\n",
        ti = escape(title_it),
        te = escape(title_en),
        bi = body_it,
        be = body_en,
    );
    let page = crate::page::frame(&source, m).unwrap_or(source);
    let mut response = (status, page).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escapes_what_comes_from_the_database() {
        assert_eq!(escape("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
    }
}
