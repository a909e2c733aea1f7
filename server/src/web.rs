//! The browser client, embedded in the binary from `web/` at compile time (also in debug builds):
//! no build step, no files to deploy next to the binary. `build.rs` makes Cargo rebuild when a
//! file in `web/` changes.

use axum::Router;
use axum::body::Body;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rust_embed::RustEmbed;

use crate::state::AppState;

#[derive(RustEmbed)]
#[folder = "../web/"]
struct Assets;

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

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { page("citizen/index.html") }))
        .route("/join", get(|| async { page("room/join.html") }))
        .route("/privacy", get(|| async { page("public/privacy.html") }))
        .route("/servizi", get(|| async { page("citizen/servizi.html") }))
        .route("/prenota", get(|| async { page("citizen/prenota.html") }))
        .route("/appuntamento", get(|| async { page("citizen/appuntamento.html") }))
        .route("/a/{token}", get(crate::landing::page))
        // A council session's public live stream (no account); the page asks `/api/live/{id}`,
        // so an unknown session gets the page, which says so.
        .route("/live/{session}", get(|| async { page("public/live.html") }))
        // Calendar feeds (secret URL; see `feeds`).
        .route("/feeds/{file}", get(crate::api::calendar::serve_feed))
        // Staff pages; `/staff/setup` carries its one-time secret in the fragment, never sent here.
        .route("/staff", get(|| async { page("staff/staff.html") }))
        .route("/staff/admin", get(|| async { page("staff/admin.html") }))
        .route("/staff/calendario", get(|| async { page("staff/calendar.html") }))
        .route("/staff/setup", get(|| async { page("staff/setup.html") }))
        .route("/web/{*path}", get(|Path(path): Path<String>| async move { file(&path) }))
}

/// The page a browser gets for an unknown address (status 404): the site's header, a sentence in
/// Italian and English, and the way home. Never cached.
pub fn not_found_page() -> Response {
    let body = framed("public/404.html").unwrap_or_else(|| "Pagina non trovata / Page not found\n".to_owned());
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-store")],
        body,
    )
        .into_response()
}

/// Pages are HTML documents in their frame; `/join` carries its token in the URL, so no page is
/// cached.
fn page(name: &str) -> Result<Response, HttpError> {
    let html = framed(name).ok_or(HttpError::NotFound)?;
    Ok(([(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-store")], html)
        .into_response())
}

/// A page as the browser gets it: `shared/frame.html` (the head's common lines, skip link, header
/// with the language switch, footer — written once) around the parts of the page's own file, which
/// holds, in this order: `<head>…</head>` (title, styles, script), `<body …>` (its attributes; the
/// words of `data-frame="…"` choose the frame's variants and are not sent), an optional
/// `<header>…</header>` (added inside the site header), `<main …>…</main>`, and an optional
/// `<footer>…</footer>` (lines after the privacy link). Variants: `staff` (the brand leads to
/// `/staff`), `static` (a page without script: no language switch, the footer link in both
/// languages), `no-footer`. Assembled on the server, so every page has its landmarks without script.
fn framed(name: &str) -> Option<String> {
    let page = Assets::get(name)?;
    let page = std::str::from_utf8(&page.data).ok()?;
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
    Some(out)
}

fn file(path: &str) -> Result<Response, HttpError> {
    let asset = Assets::get(path).ok_or(HttpError::NotFound)?;
    let mime = asset.metadata.mimetype();
    // Text types get an explicit charset so the browser never has to guess.
    let content_type = if (mime.starts_with("text/") || mime.ends_with("javascript") || mime.ends_with("json"))
        && !mime.contains("charset")
    {
        format!("{mime}; charset=utf-8")
    } else {
        mime.to_owned()
    };
    Response::builder()
        .header(header::CONTENT_TYPE, content_type)
        // Revalidate every time: the client and the server are one binary and must match.
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from(asset.data.into_owned()))
        .map_err(|e| HttpError::Internal(e.to_string()))
}

#[cfg(test)]
mod tests {
    use axum::body::to_bytes;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    use super::*;

    async fn get(uri: &str) -> Response {
        let (state, _dir) = crate::state::test_state().await;
        let app: Router = routes().with_state(state);
        app.oneshot(Request::get(uri).body(Body::empty()).unwrap()).await.unwrap()
    }

    /// Every embedded file is served at `/web/<name>` with its own bytes and a fitting type.
    #[tokio::test]
    async fn every_embedded_file_is_served_with_its_type() {
        for name in Assets::iter() {
            let response = get(&format!("/web/{name}")).await;
            assert_eq!(response.status(), StatusCode::OK, "{name}");
            let content_type = response.headers()[header::CONTENT_TYPE].to_str().unwrap().to_owned();
            let expected = match name.rsplit('.').next() {
                Some("html") => Some("text/html; charset=utf-8"),
                Some("js" | "mjs") => Some("text/javascript; charset=utf-8"),
                Some("css") => Some("text/css; charset=utf-8"),
                Some("svg") => Some("image/svg+xml"),
                _ => None,
            };
            if let Some(expected) = expected {
                assert_eq!(content_type, expected, "{name}");
            }
            let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
            assert_eq!(&body[..], &Assets::get(&name).unwrap().data[..], "{name}");
        }
    }

    /// Every page route answers its page inside the frame: one skip link, header, `<main>` and (but
    /// for the privacy notice) footer, the language switch, the page's own head lines, no
    /// template marker left.
    #[tokio::test]
    async fn pages_come_in_their_frame() {
        for (uri, name, script) in [
            ("/", "citizen/index.html", "/web/citizen/home.js"),
            ("/join?t=abc", "room/join.html", "/web/room/app.js"),
            ("/privacy", "public/privacy.html", "/web/citizen/home.js"),
            ("/servizi", "citizen/servizi.html", "/web/citizen/services.js"),
            ("/prenota", "citizen/prenota.html", "/web/citizen/booking.js"),
            ("/appuntamento", "citizen/appuntamento.html", "/web/citizen/manage.js"),
            ("/live/s1", "public/live.html", "/web/public/live.js"),
            ("/staff", "staff/staff.html", "/web/staff/staff.js"),
            ("/staff/admin", "staff/admin.html", "/web/staff/admin.js"),
            ("/staff/calendario", "staff/calendar.html", "/web/staff/calendar.js"),
            ("/staff/setup", "staff/setup.html", "/web/staff/setup.js"),
        ] {
            let response = get(uri).await;
            assert_eq!(response.status(), StatusCode::OK, "{uri}");
            assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store", "{uri}");
            assert_eq!(response.headers()[header::CONTENT_TYPE], "text/html; charset=utf-8", "{uri}");
            let html = String::from_utf8(to_bytes(response.into_body(), usize::MAX).await.unwrap().to_vec()).unwrap();
            assert_eq!(html, framed(name).unwrap(), "{uri}");
            assert!(
                html.starts_with("<!doctype html>\n<html lang=\"it\">\n<head>\n  <meta charset=\"utf-8\">"),
                "{uri}"
            );
            for once in [
                "<title",
                "class=\"skip-link\" href=\"#main\"",
                "<header class=\"site-header\">",
                "<main id=\"main\"",
                "</main>",
                "id=\"lang-switch\"",
                "/web/shared/style.css",
                "<body",
            ] {
                assert_eq!(html.matches(once).count(), 1, "{uri}: {once}");
            }
            assert!(html.contains(&format!("<script type=\"module\" src=\"{script}\"></script>")), "{uri}");
            // The room's code (media, signaling) is the join page's alone.
            assert_eq!(html.contains("/web/room/app.js"), uri.starts_with("/join"), "{uri}");
            assert_eq!(html.matches("<footer class=\"site-footer\">").count(), usize::from(uri != "/privacy"), "{uri}");
            assert!(
                !html.contains("{{") && !html.contains("data-frame") && !html.contains("<!-- A page body"),
                "{uri}"
            );
            let staff = uri.starts_with("/staff");
            assert_eq!(html.contains("<a class=\"brand\" href=\"/staff\">"), staff, "{uri}");
            assert_eq!(html.contains("data-i18n=\"app.staff\""), staff, "{uri}");
        }
    }

    /// The join page's status line and alert sit inside the site header, after its bar.
    #[tokio::test]
    async fn a_page_adds_to_the_header_and_the_footer() {
        let join = framed("room/join.html").unwrap();
        let (header, after) = join.split_once("</header>").unwrap();
        assert!(header.contains("<p id=\"status\" role=\"status\">") && header.contains("id=\"alert\""));
        assert!(!after.contains("id=\"status\""));
        let desk = framed("staff/staff.html").unwrap();
        let footer = &desk[desk.find("<footer class=\"site-footer\">").unwrap()..];
        assert!(footer.find("footer.privacy").unwrap() < footer.find("footer.note").unwrap());
    }

    /// The 404 page has no script: no language switch, the footer link in both languages.
    #[tokio::test]
    async fn the_not_found_page_is_static() {
        let response = get("/nope").await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        let response = not_found_page();
        let html = String::from_utf8(to_bytes(response.into_body(), usize::MAX).await.unwrap().to_vec()).unwrap();
        assert!(
            html.contains("<main id=\"main\"")
                && html.contains("Pagina non trovata <span lang=\"en\">/ Page not found</span>")
        );
        assert!(!html.contains("lang-switch") && !html.contains("<script"));
        assert!(
            html.contains("<a href=\"/privacy\">Informativa privacy <span lang=\"en\">/ Privacy notice</span></a>")
        );
    }

    #[tokio::test]
    async fn traversal_and_unknown_files_are_404() {
        for uri in ["/web/", "/web/../server/Cargo.toml", "/web/%2e%2e/Cargo.toml", "/web/nope.js"] {
            assert_eq!(get(uri).await.status(), StatusCode::NOT_FOUND, "{uri}");
        }
    }
}
