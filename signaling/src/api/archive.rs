//! The public archive of council recordings (no account, like the sessions themselves — TUEL art. 38):
//! `/archivio` lists the sessions that have recordings, `/archivio/{session}` plays each recording
//! with the agenda items as chapters and shows its SHA-256, size, duration and the day it will be
//! deleted; `/archivio/media/{id}.webm` serves the file with HTTP ranges (seeking). The same data as
//! JSON under `/api/archive`. Pages are rendered here with every text escaped; their only script is
//! `web/archive.js` (the CSP allows no inline script).

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use sportello_store::{ArchivedSession, CouncilBody, CouncilSession, Recording};
use tower::ServiceExt;
use tower_http::services::ServeFile;
use utoipa::{OpenApi, ToSchema};

use super::ApiError;
use crate::recording::{self, Chapter};
use crate::server::{AppState, HttpError};

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

async fn list_page(State(state): State<AppState>) -> Result<Response, HttpError> {
    let sessions = state.store.archived_sessions().await.map_err(|e| HttpError::Internal(e.to_string()))?;
    Ok(html(render_list(&sessions)))
}

async fn session_page(State(state): State<AppState>, Path(session_id): Path<String>) -> Result<Response, HttpError> {
    let found = load(&state, &session_id).await.map_err(|e| HttpError::Internal(e.to_string()))?;
    let (session, recordings) = found.ok_or(HttpError::NotFound)?;
    let views: Vec<RecordingView> = recordings.iter().map(|r| view(&state, r)).collect();
    Ok(html(render_session(&session, &views)))
}

fn html(page: String) -> Response {
    let mut response = Html(page).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

fn esc(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

fn rome(unix: i64, pattern: &str) -> String {
    let Ok(tz) = sportello_domain::europe_rome() else { return unix.to_string() };
    jiff::Timestamp::from_second(unix).map(|t| t.to_zoned(tz).strftime(pattern).to_string()).unwrap_or_default()
}

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

fn body_label(body: CouncilBody) -> &'static str {
    match body {
        CouncilBody::Consiglio => "Consiglio comunale",
        CouncilBody::Giunta => "Giunta comunale",
    }
}

/// The page frame of the citizen pages (header, breadcrumb, footer), around `content`.
fn frame(title: &str, crumbs: &[(&str, Option<&str>)], content: &str) -> String {
    let mut h = String::from("<!doctype html><html lang=\"it\"><head><meta charset=\"utf-8\">");
    h.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
    h.push_str("<meta name=\"referrer\" content=\"no-referrer\">");
    h.push_str(&format!("<title>{} — Sportello</title>", esc(title)));
    h.push_str("<link rel=\"icon\" href=\"/web/favicon.svg\" type=\"image/svg+xml\">");
    h.push_str("<link rel=\"stylesheet\" href=\"/web/style.css\"><link rel=\"stylesheet\" href=\"/web/pages.css\">");
    h.push_str("<link rel=\"stylesheet\" href=\"/web/archive.css\">");
    h.push_str("<script type=\"module\" src=\"/web/archive.js\"></script></head><body data-page=\"archivio\">");
    h.push_str("<a class=\"skip-link\" href=\"#main\">Vai al contenuto principale <span lang=\"en\">/ Skip to content</span></a>");
    h.push_str("<header class=\"site-header\"><div class=\"header-bar\"><div class=\"container header-inner\">");
    h.push_str("<a class=\"brand\" href=\"/\"><span class=\"brand-mark\" aria-hidden=\"true\">S</span><span>Sportello</span></a>");
    h.push_str("</div></div></header><main id=\"main\" tabindex=\"-1\" class=\"container\">");
    h.push_str("<nav aria-label=\"Percorso\" data-element=\"breadcrumb\" class=\"breadcrumb\"><ol><li><a href=\"/\">Home</a></li>");
    for (label, href) in crumbs {
        match href {
            Some(href) => h.push_str(&format!("<li><a href=\"{}\">{}</a></li>", esc(href), label)),
            None => h.push_str(&format!("<li aria-current=\"page\">{label}</li>")),
        }
    }
    h.push_str("</ol></nav>");
    h.push_str(content);
    h.push_str("</main><footer class=\"site-footer\"><div class=\"container footer-inner\">");
    h.push_str("<a href=\"/privacy\">Informativa privacy <span lang=\"en\">/ Privacy notice</span></a>");
    h.push_str("</div></footer></body></html>");
    h
}

const ARCHIVE_CRUMB: &str = "Archivio delle sedute";

fn render_list(sessions: &[ArchivedSession]) -> String {
    let mut c = String::from("<section class=\"panel\" aria-labelledby=\"archive-title\">");
    c.push_str("<h1 id=\"archive-title\">Archivio delle sedute <span lang=\"en\">/ Session archive</span></h1>");
    c.push_str("<p class=\"lead\">Le registrazioni delle sedute pubbliche del Consiglio e della Giunta, con i punti all'ordine del giorno. ");
    c.push_str(
        "<span lang=\"en\">Recordings of the public council and executive sessions, with the agenda items.</span></p>",
    );
    if sessions.is_empty() {
        c.push_str("<p>Nessuna seduta registrata. <span lang=\"en\">No recorded sessions yet.</span></p>");
    } else {
        c.push_str("<ul class=\"cards\">");
        for s in sessions {
            let recordings = if s.recordings == 1 {
                "1 registrazione <span lang=\"en\">(1 recording)</span>".to_owned()
            } else {
                format!("{0} registrazioni <span lang=\"en\">({0} recordings)</span>", s.recordings)
            };
            c.push_str(&format!(
                "<li class=\"card\"><h2><a href=\"/archivio/{}\">{}</a></h2><p>{} – seduta del {}</p><p class=\"muted\">{}, durata <span lang=\"en\">/ duration</span> {}</p></li>",
                esc(&s.session_id),
                esc(&s.title),
                body_label(s.body),
                date(s.scheduled_at),
                recordings,
                clock(u64::try_from(s.duration_ms).unwrap_or(0)),
            ));
        }
        c.push_str("</ul>");
    }
    c.push_str("</section>");
    frame("Archivio delle sedute", &[(ARCHIVE_CRUMB, None)], &c)
}

fn render_session(session: &CouncilSession, recordings: &[RecordingView]) -> String {
    let mut c = String::from("<section class=\"panel\" aria-labelledby=\"session-title\">");
    c.push_str(&format!("<h1 id=\"session-title\">{}</h1>", esc(&session.title)));
    c.push_str(&format!(
        "<p class=\"lead\">{} – seduta del {} <span lang=\"en\">(session of {})</span></p>",
        body_label(session.body),
        rome(session.scheduled_at, "%d/%m/%Y %H:%M"),
        rome(session.scheduled_at, "%Y-%m-%d %H:%M")
    ));
    c.push_str("<p class=\"note\">I sottotitoli non sono ancora disponibili; il verbale approvato resta il documento ufficiale della seduta. ");
    c.push_str("<span lang=\"en\">Captions are not available yet; the approved minutes remain the official record of the session.</span></p>");
    c.push_str("</section>");
    for (n, r) in recordings.iter().enumerate() {
        let heading = if recordings.len() == 1 {
            "Registrazione <span lang=\"en\">/ Recording</span>".to_owned()
        } else {
            format!("Registrazione {0} <span lang=\"en\">/ Recording {0}</span>", n + 1)
        };
        let id = esc(&r.id);
        c.push_str(&format!("<section class=\"panel recording\" aria-labelledby=\"rec-{id}\">"));
        c.push_str(&format!(
            "<h2 id=\"rec-{id}\">{heading}</h2><p class=\"muted\">{} – {}</p>",
            rome(r.started_at, "%d/%m/%Y %H:%M"),
            rome(r.ended_at, "%H:%M")
        ));
        c.push_str(&format!(
            "<video id=\"video-{id}\" class=\"recording-video\" controls preload=\"metadata\" src=\"{}\" aria-labelledby=\"session-title rec-{id}\">",
            esc(&r.url)
        ));
        c.push_str(&format!(
            "<p>Il browser non riproduce il video: <a href=\"{0}\">scarica il file</a>. <span lang=\"en\">Your browser cannot play the video: <a href=\"{0}\">download the file</a>.</span></p></video>",
            esc(&r.url)
        ));
        if !r.chapters.is_empty() {
            c.push_str(&format!(
                "<h3 id=\"chapters-{id}\">Punti all'ordine del giorno <span lang=\"en\">/ Agenda items</span></h3><ol class=\"chapters\" aria-labelledby=\"chapters-{id}\">"
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
            "<dt>Impronta SHA-256 <span lang=\"en\">/ SHA-256 fingerprint</span></dt><dd><code class=\"sha256\">{}</code></dd>",
            esc(&r.sha256)
        ));
        c.push_str(&format!("<dt>Dimensione <span lang=\"en\">/ Size</span></dt><dd>{}</dd>", size(r.bytes)));
        c.push_str(&format!(
            "<dt>Durata <span lang=\"en\">/ Duration</span></dt><dd>{}</dd>",
            clock(u64::try_from(r.duration_ms).unwrap_or(0))
        ));
        c.push_str(&format!(
            "<dt>Sarà eliminata il <span lang=\"en\">/ To be deleted on</span></dt><dd><time datetime=\"{}\">{}</time></dd>",
            rome(r.delete_at, "%Y-%m-%d"),
            date(r.delete_at)
        ));
        c.push_str("</dl>");
        c.push_str(&format!(
            "<p><a href=\"{}\" download>Scarica il file WebM <span lang=\"en\">/ Download the WebM file</span></a></p></section>",
            esc(&r.url)
        ));
    }
    frame(&session.title, &[(ARCHIVE_CRUMB, Some("/archivio")), (&esc(&session.title), None)], &c)
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
        let page = render_session(&session, &[view]);
        assert!(!page.contains("<script>"));
        assert!(page.contains("Consiglio &lt;script&gt;"));
        assert!(page.contains("data-start-ms=\"65000\""));
        assert!(page.contains("<span class=\"chapter-time\">1:05</span> Bilancio &amp; &quot;varie&quot;"));
        assert!(page.contains(&format!("<code class=\"sha256\">{}</code>", "ab".repeat(32))));
        assert!(page.contains("<video id=\"video-r1\" class=\"recording-video\" controls preload=\"metadata\" src=\"/archivio/media/r1.webm\""));
        assert!(!page.contains("<script>") && !page.contains(" style="));
    }
}
