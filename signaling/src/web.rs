//! The browser client, embedded in the binary from `web/` at compile time (also in debug builds):
//! no build step, no files to deploy next to the binary. `build.rs` makes Cargo rebuild when a
//! file in `web/` changes.

use axum::Router;
use axum::body::Body;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rust_embed::RustEmbed;

use crate::server::HttpError;
use crate::state::AppState;

#[derive(RustEmbed)]
#[folder = "../web/"]
struct Assets;

/// Assets that moved into `web/<audience>/` but are still named at their old flat address by the
/// pages rendered in Rust (`api/archive.rs`, `api/council.rs`, `links.rs`): served from the new
/// place until those pages name it. Old address → file.
const MOVED: [(&str, &str); 6] = [
    ("favicon.svg", "shared/favicon.svg"),
    ("style.css", "shared/style.css"),
    ("pages.css", "shared/pages.css"),
    ("archive.css", "public/archive.css"),
    ("archive.js", "public/archive.js"),
    ("council.css", "room/council.css"),
];

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { page("citizen/index.html") }))
        .route("/join", get(|| async { page("room/join.html") }))
        .route("/privacy", get(|| async { page("public/privacy.html") }))
        .route("/servizi", get(|| async { page("citizen/servizi.html") }))
        .route("/prenota", get(|| async { page("citizen/prenota.html") }))
        .route("/appuntamento", get(|| async { page("citizen/appuntamento.html") }))
        .route("/a/{token}", get(crate::links::landing))
        // A council session's public live stream (no account); the page asks `/api/live/{id}`,
        // so an unknown session gets the page, which says so.
        .route("/live/{session}", get(|| async { page("public/live.html") }))
        // Calendar feeds (secret URL; see `feeds`).
        .route("/feeds/{file}", get(crate::feeds::serve))
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
    let body = Assets::get("public/404.html")
        .map_or_else(|| b"Pagina non trovata / Page not found\n".to_vec(), |asset| asset.data.into_owned());
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-store")],
        body,
    )
        .into_response()
}

/// Pages are HTML documents; `/join` carries its token in the URL, so no page is cached.
fn page(name: &str) -> Result<Response, HttpError> {
    let mut response = file(name)?;
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

fn file(path: &str) -> Result<Response, HttpError> {
    let path = MOVED.iter().find(|(old, _)| *old == path).map_or(path, |(_, new)| new);
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
        let (state, _dir) = crate::server::test_state().await;
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

    /// The old flat addresses the Rust-rendered pages still use serve the moved files' bytes.
    #[tokio::test]
    async fn moved_assets_answer_at_their_old_address() {
        for (old, new) in MOVED {
            let response = get(&format!("/web/{old}")).await;
            assert_eq!(response.status(), StatusCode::OK, "{old}");
            let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
            assert_eq!(&body[..], &Assets::get(new).expect(new).data[..], "{old}");
        }
    }

    #[tokio::test]
    async fn pages_map_to_their_files() {
        for (uri, name) in [("/", "citizen/index.html"), ("/join?t=abc", "room/join.html")] {
            let response = get(uri).await;
            match Assets::get(name) {
                Some(asset) => {
                    assert_eq!(response.status(), StatusCode::OK, "{uri}");
                    assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
                    let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
                    assert_eq!(&body[..], &asset.data[..], "{uri}");
                }
                // web/ is written separately; until the page exists it is simply not found.
                None => assert_eq!(response.status(), StatusCode::NOT_FOUND, "{uri}"),
            }
        }
    }

    #[tokio::test]
    async fn traversal_and_unknown_files_are_404() {
        for uri in ["/web/", "/web/../signaling/Cargo.toml", "/web/%2e%2e/Cargo.toml", "/web/nope.js"] {
            assert_eq!(get(uri).await.status(), StatusCode::NOT_FOUND, "{uri}");
        }
    }
}
