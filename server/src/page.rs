//! Pages as the browser gets them: the files embedded from `web/` at compile time (also in debug
//! builds: no build step, no files to deploy next to the binary; `build.rs` makes Cargo rebuild
//! when a file in `web/` changes), a page wrapped in `web/shared/frame.html` in the
//! municipality's name, and the errors of plain HTTP requests. The routes are in `web.rs`; the
//! pages written on the server (`legal.rs`, `landing.rs`, the archive) use the same frame.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;
use sportello_backoffice::settings::Municipality;
use sportello_backoffice::text::escape_html;

use crate::state::AppState;

#[derive(RustEmbed)]
#[folder = "../web/"]
pub(crate) struct Assets;

/// Errors of plain HTTP requests, turned into responses in one place.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("not found")]
    NotFound,
    #[error("internal error: {0}")]
    Internal(String),
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        match self {
            HttpError::NotFound => not_found_page(),
            HttpError::Internal(detail) => {
                tracing::error!(%detail, "request failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "Errore interno / Internal error\n").into_response()
            }
        }
    }
}

/// The municipality as the last page read it, for the one page built without the state: the 404
/// of an error response ([`HttpError`] is mapped without it).
static LAST_KNOWN: std::sync::RwLock<Option<Municipality>> = std::sync::RwLock::new(None);

/// The municipality's settings for a page (a few rows, read for every page: an administrator's
/// change shows at once, on every node).
pub async fn municipality(state: &AppState) -> Result<Municipality, HttpError> {
    let m = Municipality::load(&state.store).await.map_err(|e| HttpError::Internal(e.to_string()))?;
    if let Ok(mut last) = LAST_KNOWN.write() {
        *last = Some(m.clone());
    }
    Ok(m)
}

/// The page a browser gets for an unknown address (status 404): the site's header, a sentence in
/// Italian and English, and the way home. Never cached.
pub fn not_found_page() -> Response {
    let m = LAST_KNOWN.read().ok().and_then(|m| m.clone()).unwrap_or_else(Municipality::unnamed);
    let body = framed("public/404.html", &m).unwrap_or_else(|| "Pagina non trovata / Page not found\n".to_owned());
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-store")],
        body,
    )
        .into_response()
}

/// Pages are HTML documents in their frame; `/join` carries its token in the URL, so no page is
/// cached.
pub(crate) async fn page(state: &AppState, name: &str) -> Result<Response, HttpError> {
    let m = municipality(state).await?;
    html_page(StatusCode::OK, framed(name, &m).ok_or(HttpError::NotFound)?)
}

/// A framed page as the response (never cached: settings change, tokens ride in URLs).
pub fn html_page(status: StatusCode, html: String) -> Result<Response, HttpError> {
    Ok((status, [(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-store")], html)
        .into_response())
}

/// An embedded page file in the frame.
pub(crate) fn framed(name: &str, m: &Municipality) -> Option<String> {
    let page = Assets::get(name)?;
    frame(std::str::from_utf8(&page.data).ok()?, m)
}

/// A page as the browser gets it: `shared/frame.html` (the head's common lines, skip link, header
/// with the language switch, footer — written once) around the parts of the page's own file, which
/// holds, in this order: `<head>…</head>` (title, styles, script), `<body …>` (its attributes; the
/// words of `data-frame="…"` choose the frame's variants and are not sent), an optional
/// `<header>…</header>` (added inside the site header), `<main …>…</main>`, and an optional
/// `<footer>…</footer>` (lines after the privacy link). Variants: `staff` (the brand leads to
/// `/staff`), `static` (a page without script: no language switch, the footer link in both
/// languages), `no-footer`. Assembled on the server, so every page has its landmarks without script.
///
/// The municipality speaks through tokens, in the frame and in the page: `{{m.name}}`,
/// `{{m.owner}}`, `{{m.owner_url}}`, `{{m.website}}`, `{{m.address}}`, `{{m.phone}}`, `{{m.email}}`,
/// `{{m.pec}}`, `{{m.vat}}`, `{{m.accessibility_url}}`, `{{m.crest_url}}` (HTML-escaped), and
/// variants that hold when a value is set: `m-crest`, `m-owner`, `m-website`, `m-address`,
/// `m-phone`, `m-email`, `m-pec`, `m-vat`.
pub fn frame(page: &str, m: &Municipality) -> Option<String> {
    let frame = Assets::get("shared/frame.html")?;
    let frame = std::str::from_utf8(&frame.data).ok()?;
    // The text between `open` and the next `close` within `page[from..to]`.
    let part = |open: &str, close: &str, from: usize, to: usize| -> Option<&str> {
        let start = from + page[from..to].find(open)? + open.len();
        Some(&page[start..start + page[start..to].find(close)?])
    };
    let body_at = page.find("<body")?;
    let main_at = page.find("<main")?;
    let main_start = page[..main_at].rfind('\n').map_or(0, |i| i + 1);
    let main_end = page.rfind("</main>")? + "</main>".len();
    let head = part("<head>", "</head>", 0, body_at).unwrap_or_default();
    let mut body = part("<body", ">", body_at, main_at)?.to_owned();
    let header = part("<header>", "</header>", body_at, main_at).unwrap_or_default();
    let main = &page[main_start..main_end];
    let footer = part("<footer>", "</footer>", main_end, page.len()).unwrap_or_default();
    let mut variants = Vec::new();
    if let Some(at) = body.find(" data-frame=\"") {
        let start = at + " data-frame=\"".len();
        let end = start + body[start..].find('"')?;
        variants = body[start..end].split_whitespace().map(str::to_owned).collect();
        body.replace_range(at..=end, "");
    }
    let crest_url = m.crest_version.as_ref().map(|v| format!("/crest?v={v}")).unwrap_or_default();
    let tokens = [
        ("m.name", m.name.as_str()),
        ("m.owner", &m.owner_name),
        ("m.owner_url", &m.owner_url),
        ("m.website", &m.website),
        ("m.address", &m.address),
        ("m.phone", &m.phone),
        ("m.email", &m.email),
        ("m.pec", &m.pec),
        ("m.vat", &m.vat_number),
        ("m.accessibility_url", m.accessibility_statement()),
        ("m.crest_url", &crest_url),
    ];
    for (variant, value) in [
        ("m-crest", crest_url.as_str()),
        // The owning body is shown as a link: both are needed.
        ("m-owner", if m.owner_url.is_empty() { "" } else { &m.owner_name }),
        ("m-website", &m.website),
        ("m-address", &m.address),
        ("m-phone", &m.phone),
        ("m-email", &m.email),
        ("m-pec", &m.pec),
        ("m-vat", &m.vat_number),
    ] {
        if !value.is_empty() {
            variants.push(variant.to_owned());
        }
    }
    // The frame line by line: `{{#v}}` … `{{/v}}` keeps its lines with variant `v`, `{{^v}}` …
    // `{{/v}}` without it; a line `{{head}}` (`header`, `main`, `footer`) is the page's part.
    let mut out = String::with_capacity(frame.len() + page.len());
    let mut shown: Vec<bool> = Vec::new();
    for line in frame.lines() {
        let tag = line.trim().strip_prefix("{{").and_then(|t| t.strip_suffix("}}"));
        if let Some(variant) = tag.and_then(|t| t.strip_prefix('#')) {
            shown.push(variants.iter().any(|v| v == variant));
        } else if let Some(variant) = tag.and_then(|t| t.strip_prefix('^')) {
            shown.push(!variants.iter().any(|v| v == variant));
        } else if tag.is_some_and(|t| t.starts_with('/')) {
            shown.pop();
        } else if shown.contains(&false) {
            continue;
        } else if let Some(part) = match tag {
            Some("head") => Some(head),
            Some("header") => Some(header),
            Some("main") => Some(main),
            Some("footer") => Some(footer),
            _ => None,
        } {
            let part = part.trim_matches('\n').trim_end();
            if !part.is_empty() {
                out.push_str(part);
                out.push('\n');
            }
        } else {
            out.push_str(&line.replace("{{body}}", &body));
            out.push('\n');
        }
    }
    for (token, value) in tokens {
        out = out.replace(&format!("{{{{{token}}}}}"), &escape_html(value));
    }
    Some(out)
}
