//! The public archive of council recordings (no account, like the sessions themselves — TUEL art. 38):
//! `/archivio` lists the sessions that have recordings, `/archivio/{session}` plays each recording
//! with the agenda items as chapters and shows its SHA-256, size, duration and the day it will be
//! deleted; `/archivio/media/{id}.webm` serves the file with HTTP ranges (seeking). The same data as
//! JSON under `/api/archive`. Pages are rendered here with every text escaped; their only script is
//! `web/archive.js` (the CSP allows no inline script).

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use sportello_domain::booking::Lang;
use sportello_store::{ArchivedSession, CouncilBody, CouncilSession, Recording};
use tower::ServiceExt;
use tower_http::services::ServeFile;
use utoipa::{OpenApi, ToSchema};

use super::ApiError;
use super::error::request_lang;
use super::error::{Path, Query};
use crate::page::HttpError;
use crate::state::AppState;
use sportello_backoffice::recordings::{self as recording, Chapter};

pub fn routes() -> Router<AppState> {
    Router::new().route("/archive", get(list)).route("/archive/{session_id}", get(session))
}

/// The pages and the media files (outside `/api`).
pub fn page_routes() -> Router<AppState> {
    Router::new()
        .route("/archivio", get(list_page))
        .route("/archivio/{session_id}", get(session_page))
        .route("/archivio/media/{file}", get(media))
}

#[derive(OpenApi)]
#[openapi(
    paths(list, session),
    components(schemas(ArchiveEntry, ArchiveSession, RecordingView, Chapter)),
    tags((name = "archive", description = "Public archive of council recordings (no account)"))
)]
struct ArchiveApi;

/// This module's part of `/api/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ArchiveApi::openapi()
}

// --- shapes -----------------------------------------------------------------------------------------

/// A session in the archive.
#[derive(Debug, Serialize, ToSchema)]
pub struct ArchiveEntry {
    pub session_id: String,
    pub title: String,
    /// `consiglio` or `giunta`.
    pub body: String,
    /// Unix seconds.
    pub scheduled_at: i64,
    pub recordings: i64,
    pub duration_ms: i64,
    /// The session's archive page.
    pub url: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ArchiveSession {
    pub session_id: String,
    pub title: String,
    pub body: String,
    pub scheduled_at: i64,
    /// In the order they were made.
    pub recordings: Vec<RecordingView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RecordingView {
    pub id: String,
    /// The WebM file (VP8 + Opus), served with HTTP range support.
    pub url: String,
    /// Unix seconds.
    pub started_at: i64,
    pub ended_at: i64,
    pub duration_ms: i64,
    pub bytes: i64,
    /// Lowercase hex SHA-256 of the file as served.
    pub sha256: String,
    /// The agenda items, in milliseconds from the start of the recording.
    pub chapters: Vec<Chapter>,
    /// Unix seconds: when the retention pass deletes the recording.
    pub delete_at: i64,
}

fn entry(a: ArchivedSession) -> ArchiveEntry {
    ArchiveEntry {
        url: format!("/archivio/{}", a.session_id),
        session_id: a.session_id,
        title: a.title,
        body: a.body.as_str().to_owned(),
        scheduled_at: a.scheduled_at,
        recordings: a.recordings,
        duration_ms: a.duration_ms,
    }
}

fn view(state: &AppState, r: &Recording) -> RecordingView {
    let retention = i64::try_from(state.config.recording_retention.as_secs()).unwrap_or(i64::MAX);
    RecordingView {
        id: r.id.clone(),
        url: media_url(r),
        started_at: r.started_at,
        ended_at: r.ended_at,
        duration_ms: r.duration_ms,
        bytes: r.bytes,
        sha256: r.sha256.clone(),
        chapters: recording::chapters(r),
        delete_at: r.ended_at.saturating_add(retention),
    }
}

fn media_url(r: &Recording) -> String {
    format!("/archivio/media/{}.webm", r.id)
}

/// A session with its recordings; `None` if it does not exist or has no recording (then it is not
/// in the archive).
async fn load(state: &AppState, session_id: &str) -> Result<Option<(CouncilSession, Vec<Recording>)>, ApiError> {
    let Some(session) = state.store.council_session(session_id).await? else { return Ok(None) };
    let recordings = state.store.recordings_for_session(session_id).await?;
    Ok((!recordings.is_empty()).then_some((session, recordings)))
}

// --- JSON -------------------------------------------------------------------------------------------

/// Sessions with recordings, latest first.
#[utoipa::path(get, path = "/api/archive", tag = "archive",
    responses((status = 200, body = [ArchiveEntry])))]
#[tracing::instrument(skip_all)]
pub async fn list(State(state): State<AppState>) -> Result<Json<Vec<ArchiveEntry>>, ApiError> {
    Ok(Json(state.store.archived_sessions().await?.into_iter().map(entry).collect()))
}

/// One session's recordings with chapters and hashes.
#[utoipa::path(get, path = "/api/archive/{session_id}", tag = "archive",
    params(("session_id" = String, Path, description = "Council session id")),
    responses((status = 200, body = ArchiveSession),
              (status = 404, description = "No such session, or nothing recorded", body = super::error::ErrorBody)))]
#[tracing::instrument(skip_all, fields(session = %session_id))]
pub async fn session(
    State(state): State<AppState>,
    Path(session_id): Path<String>,
) -> Result<Json<ArchiveSession>, ApiError> {
    let (session, recordings) = load(&state, &session_id).await?.ok_or(ApiError::NotFound)?;
    Ok(Json(ArchiveSession {
        session_id: session.id,
        title: session.title,
        body: session.body.as_str().to_owned(),
        scheduled_at: session.scheduled_at,
        recordings: recordings.iter().map(|r| view(&state, r)).collect(),
    }))
}

// --- media ------------------------------------------------------------------------------------------

/// The WebM file, with `Range` support (tower-http): browsers seek without downloading it whole.
#[tracing::instrument(skip_all, fields(file = %file))]
async fn media(
    State(state): State<AppState>,
    Path(file): Path<String>,
    request: Request,
) -> Result<Response, HttpError> {
    let id = file.strip_suffix(".webm").ok_or(HttpError::NotFound)?;
    let found = state.store.recording(id).await.map_err(|e| HttpError::Internal(e.to_string()))?;
    let found = found.ok_or(HttpError::NotFound)?;
    let path = recording::file_path(&state.config.data_dir, &found).map_err(|_| HttpError::NotFound)?;
    let Ok(response) = ServeFile::new(path).oneshot(request).await;
    let mut response = response.map(Body::new);
    if response.status().is_success() {
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("video/webm"));
        // Revalidate: a recording past its retention must not live on in caches.
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    }
    Ok(response)
}

// --- pages ------------------------------------------------------------------------------------------

/// `?lang=en|it`: the page's language switch (a link, so it works without script); without it the
/// language comes from `Accept-Language`, Italian by default.
#[derive(Debug, Deserialize)]
struct LangQuery {
    lang: Option<String>,
}

/// The page language, and the query that keeps a chosen language on the archive's own links.
fn page_lang(query: &LangQuery, headers: &HeaderMap) -> (Lang, &'static str) {
    match query.lang.as_deref() {
        Some("en") => (Lang::En, "?lang=en"),
        Some("it") => (Lang::It, "?lang=it"),
        _ => (request_lang(headers), ""),
    }
}

/// `it` or `en`.
fn tr<'a>(lang: Lang, it: &'a str, en: &'a str) -> &'a str {
    match lang {
        Lang::It => it,
        Lang::En => en,
    }
}

async fn list_page(
    State(state): State<AppState>,
    Query(query): Query<LangQuery>,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    let sessions = state.store.archived_sessions().await.map_err(|e| HttpError::Internal(e.to_string()))?;
    let m = crate::page::municipality(&state).await?;
    Ok(html(render_list(&m, &sessions, page_lang(&query, &headers))))
}

async fn session_page(
    State(state): State<AppState>,
    Path(session_id): Path<String>,
    Query(query): Query<LangQuery>,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    let found = load(&state, &session_id).await.map_err(|e| HttpError::Internal(e.to_string()))?;
    let (session, recordings) = found.ok_or(HttpError::NotFound)?;
    let views: Vec<RecordingView> = recordings.iter().map(|r| view(&state, r)).collect();
    let m = crate::page::municipality(&state).await?;
    Ok(html(render_session(&m, &session, &views, page_lang(&query, &headers))))
}

fn html(page: String) -> Response {
    let mut response = Html(page).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // The language may come from Accept-Language.
    response.headers_mut().insert(header::VARY, HeaderValue::from_static("accept-language"));
    response
}

use crate::landing::escape as esc;
use sportello_backoffice::settings::Municipality;

use sportello_backoffice::time::local_text as rome;

fn date(unix: i64) -> String {
    rome(unix, "%d/%m/%Y")
}

/// `h:mm:ss`, or `m:ss` under an hour.
fn clock(ms: u64) -> String {
    let s = ms / 1000;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

fn size(bytes: i64) -> String {
    let mb = bytes as f64 / 1_000_000.0;
    if mb >= 1.0 { format!("{mb:.1} MB") } else { format!("{:.0} kB", (bytes as f64 / 1000.0).ceil()) }
}

fn body_label(body: CouncilBody, lang: Lang) -> &'static str {
    match body {
        CouncilBody::Consiglio => tr(lang, "Consiglio comunale", "City council"),
        CouncilBody::Giunta => tr(lang, "Giunta comunale", "Municipal executive"),
    }
}

/// The page in the site's frame (`web::frame`, variant `static`: the server writes the language),
/// with the archive's own language switch (a link: `?lang=`), the breadcrumb and `content`.
fn frame(m: &Municipality, title: &str, crumbs: &[(&str, Option<&str>)], content: &str, lang: Lang) -> String {
    let mut h = format!("<head>\n<title>{} — {{{{m.name}}}}</title>\n", esc(title));
    h.push_str("<link rel=\"stylesheet\" href=\"/web/shared/pages.css\">\n");
    h.push_str("<link rel=\"stylesheet\" href=\"/web/public/archive.css\">\n");
    h.push_str("<script type=\"module\" src=\"/web/public/archive.js\"></script>\n</head>\n");
    h.push_str("<body data-page=\"archivio\" data-frame=\"static\">\n<header>\n");
    // The switch names the other language in that language.
    let (other, other_name) = match lang {
        Lang::It => ("en", "English"),
        Lang::En => ("it", "Italiano"),
    };
    h.push_str(&format!(
        "<div class=\"container archive-lang\"><a id=\"lang-switch\" class=\"lang-switch\" href=\"?lang={other}\" hreflang=\"{other}\" lang=\"{other}\" data-lang=\"{other}\">{other_name}</a></div>\n"
    ));
    h.push_str("</header>\n<main id=\"main\" tabindex=\"-1\" class=\"container\">");
    h.push_str(&format!(
        "<nav aria-label=\"{}\" data-element=\"breadcrumb\" class=\"breadcrumb\"><ol><li><a href=\"/\">Home</a></li>",
        tr(lang, "Percorso", "Breadcrumb")
    ));
    for (label, href) in crumbs {
        match href {
            Some(href) => h.push_str(&format!("<li><a href=\"{}\">{}</a></li>", esc(href), label)),
            None => h.push_str(&format!("<li aria-current=\"page\">{label}</li>")),
        }
    }
    h.push_str("</ol></nav>");
    h.push_str(content);
    h.push_str("</main>\n</body>\n");
    let page = crate::page::frame(&h, m).unwrap_or(h);
    page.replacen("<html lang=\"it\">", &format!("<html lang=\"{}\">", lang.as_str()), 1)
}

fn archive_title(lang: Lang) -> &'static str {
    tr(lang, "Archivio delle sedute", "Session archive")
}

fn render_list(m: &Municipality, sessions: &[ArchivedSession], (lang, keep): (Lang, &str)) -> String {
    let mut c = String::from("<section class=\"panel\" aria-labelledby=\"archive-title\">");
    c.push_str(&format!("<h1 id=\"archive-title\">{}</h1>", archive_title(lang)));
    c.push_str(&format!(
        "<p class=\"lead\">{}</p>",
        tr(
            lang,
            "Le registrazioni delle sedute pubbliche del Consiglio e della Giunta, con i punti all'ordine del giorno.",
            "Recordings of the public sessions of the council and the executive, with the agenda items."
        )
    ));
    if sessions.is_empty() {
        c.push_str(&format!("<p>{}</p>", tr(lang, "Nessuna seduta registrata.", "No recorded sessions yet.")));
    } else {
        c.push_str("<ul class=\"cards\">");
        for s in sessions {
            let recordings = match (s.recordings, lang) {
                (1, Lang::It) => "1 registrazione".to_owned(),
                (1, Lang::En) => "1 recording".to_owned(),
                (n, Lang::It) => format!("{n} registrazioni"),
                (n, Lang::En) => format!("{n} recordings"),
            };
            c.push_str(&format!(
                "<li class=\"card\"><h2><a href=\"/archivio/{}{keep}\">{}</a></h2><p>{} – {} {}</p><p class=\"muted\">{recordings}, {} {}</p></li>",
                esc(&s.session_id),
                esc(&s.title),
                body_label(s.body, lang),
                tr(lang, "seduta del", "session of"),
                date(s.scheduled_at),
                tr(lang, "durata", "duration"),
                clock(u64::try_from(s.duration_ms).unwrap_or(0)),
            ));
        }
        c.push_str("</ul>");
    }
    c.push_str("</section>");
    frame(m, archive_title(lang), &[(archive_title(lang), None)], &c, lang)
}

fn render_session(
    m: &Municipality,
    session: &CouncilSession,
    recordings: &[RecordingView],
    (lang, keep): (Lang, &str),
) -> String {
    let mut c = String::from("<section class=\"panel\" aria-labelledby=\"session-title\">");
    c.push_str(&format!("<h1 id=\"session-title\">{}</h1>", esc(&session.title)));
    c.push_str(&format!(
        "<p class=\"lead\">{} – {} {}</p>",
        body_label(session.body, lang),
        tr(lang, "seduta del", "session of"),
        rome(session.scheduled_at, "%d/%m/%Y %H:%M"),
    ));
    c.push_str(&format!(
        "<p class=\"note\">{}</p>",
        tr(
            lang,
            "I sottotitoli non sono ancora disponibili; il verbale approvato resta il documento ufficiale della seduta.",
            "Captions are not available yet; the approved minutes remain the official record of the session."
        )
    ));
    c.push_str("</section>");
    for (n, r) in recordings.iter().enumerate() {
        let heading = tr(lang, "Registrazione", "Recording");
        let heading = if recordings.len() == 1 { heading.to_owned() } else { format!("{heading} {}", n + 1) };
        let id = esc(&r.id);
        let url = esc(&r.url);
        c.push_str(&format!("<section class=\"panel recording\" aria-labelledby=\"rec-{id}\">"));
        c.push_str(&format!(
            "<h2 id=\"rec-{id}\">{heading}</h2><p class=\"muted\">{} – {}</p>",
            rome(r.started_at, "%d/%m/%Y %H:%M"),
            rome(r.ended_at, "%H:%M")
        ));
        c.push_str(&format!(
            "<video id=\"video-{id}\" class=\"recording-video\" controls preload=\"metadata\" src=\"{url}\" aria-labelledby=\"session-title rec-{id}\">"
        ));
        c.push_str(&match lang {
            Lang::It => {
                format!("<p>Il browser non riproduce il video: <a href=\"{url}\">scarica il file</a>.</p></video>")
            }
            Lang::En => {
                format!("<p>Your browser cannot play the video: <a href=\"{url}\">download the file</a>.</p></video>")
            }
        });
        if !r.chapters.is_empty() {
            c.push_str(&format!(
                "<h3 id=\"chapters-{id}\">{}</h3><ol class=\"chapters\" aria-labelledby=\"chapters-{id}\">",
                tr(lang, "Punti all'ordine del giorno", "Agenda items")
            ));
            for chapter in &r.chapters {
                c.push_str(&format!(
                    "<li><button type=\"button\" class=\"btn chapter\" data-video=\"video-{id}\" data-start-ms=\"{}\" aria-controls=\"video-{id}\"><span class=\"chapter-time\">{}</span> {}</button></li>",
                    chapter.start_ms,
                    clock(chapter.start_ms),
                    esc(&chapter.title)
                ));
            }
            c.push_str("</ol>");
        }
        c.push_str("<dl class=\"summary\">");
        c.push_str(&format!(
            "<dt>{}</dt><dd><code class=\"sha256\">{}</code></dd>",
            tr(lang, "Impronta SHA-256", "SHA-256 fingerprint"),
            esc(&r.sha256)
        ));
        c.push_str(&format!("<dt>{}</dt><dd>{}</dd>", tr(lang, "Dimensione", "Size"), size(r.bytes)));
        c.push_str(&format!(
            "<dt>{}</dt><dd>{}</dd>",
            tr(lang, "Durata", "Duration"),
            clock(u64::try_from(r.duration_ms).unwrap_or(0))
        ));
        c.push_str(&format!(
            "<dt>{}</dt><dd><time datetime=\"{}\">{}</time></dd>",
            tr(lang, "Sarà eliminata il", "To be deleted on"),
            rome(r.delete_at, "%Y-%m-%d"),
            date(r.delete_at)
        ));
        c.push_str("</dl>");
        c.push_str(&format!(
            "<p><a href=\"{url}\" download>{}</a></p></section>",
            tr(lang, "Scarica il file WebM", "Download the WebM file")
        ));
    }
    let back = format!("/archivio{keep}");
    frame(m, &session.title, &[(archive_title(lang), Some(&back)), (&esc(&session.title), None)], &c, lang)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_and_size() {
        assert_eq!(clock(0), "0:00");
        assert_eq!(clock(61_999), "1:01");
        assert_eq!(clock(3_723_000), "1:02:03");
        assert_eq!(size(1234), "2 kB");
        assert_eq!(size(12_345_678), "12.3 MB");
    }

    #[test]
    fn session_page_escapes_and_lists_chapters() {
        let session = CouncilSession {
            id: "s1".into(),
            title: "Consiglio <script>".into(),
            body: CouncilBody::Consiglio,
            scheduled_at: 1_800_000_000,
            chair_id: "u".into(),
            status: sportello_store::CouncilStatus::Ended,
            quorum: "majority".into(),
            created_at: 0,
        };
        let view = RecordingView {
            id: "r1".into(),
            url: "/archivio/media/r1.webm".into(),
            started_at: 1_800_000_000,
            ended_at: 1_800_003_600,
            duration_ms: 3_600_000,
            bytes: 10,
            sha256: "ab".repeat(32),
            chapters: vec![Chapter { title: "Bilancio & \"varie\"".into(), start_ms: 65_000, end_ms: 70_000 }],
            delete_at: 1_831_539_600,
        };
        let m = Municipality::unnamed();
        let page = render_session(&m, &session, std::slice::from_ref(&view), (Lang::It, ""));
        assert!(!page.contains("<script>"));
        assert!(page.contains("Consiglio &lt;script&gt;"));
        assert!(page.contains("data-start-ms=\"65000\""));
        assert!(page.contains("<span class=\"chapter-time\">1:05</span> Bilancio &amp; &quot;varie&quot;"));
        assert!(page.contains(&format!("<code class=\"sha256\">{}</code>", "ab".repeat(32))));
        assert!(page.contains("<video id=\"video-r1\" class=\"recording-video\" controls preload=\"metadata\" src=\"/archivio/media/r1.webm\""));
        assert!(!page.contains("<script>") && !page.contains(" style="));
        assert!(page.starts_with("<!doctype html>\n<html lang=\"it\">") && page.contains("Scarica il file WebM"));

        let page = render_session(&m, &session, &[view], (Lang::En, "?lang=en"));
        assert!(page.starts_with("<!doctype html>\n<html lang=\"en\">"), "{page}");
        assert!(page.contains("<title>Consiglio &lt;script&gt; — Comune</title>"));
        assert!(page.contains("<nav aria-label=\"Breadcrumb\""));
        assert!(page.contains("<a href=\"/archivio?lang=en\">Session archive</a>"));
        assert!(page.contains("City council – session of") && page.contains("Download the WebM file"));
        assert!(page.contains("href=\"?lang=it\" hreflang=\"it\" lang=\"it\" data-lang=\"it\">Italiano</a>"));
        assert!(!page.contains("Scarica") && !page.contains("Registrazione"), "no Italian left: {page}");
    }
}
