//! The browser client's routes: the pages (`page.rs` puts each in its frame), the server-written
//! legal pages and landing pages, the calendar feeds, and the embedded files under `/web/`.

use axum::Router;
use axum::body::Body;
use axum::extract::Path;
use axum::extract::State;
use axum::http::header;
use axum::response::Response;
use axum::routing::get;

use crate::page::{Assets, HttpError, page};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    // A page served from its file in `web/`, in the frame, in the municipality's name.
    fn at(name: &'static str) -> axum::routing::MethodRouter<AppState> {
        get(move |State(state): State<AppState>| async move { page(&state, name).await })
    }
    Router::new()
        .route("/", at("citizen/index.html"))
        .route("/join", at("room/join.html"))
        .route("/privacy", get(crate::legal::privacy))
        .route("/note-legali", get(crate::legal::notes))
        .route("/crest", get(crate::legal::crest))
        .route("/servizi", at("citizen/servizi.html"))
        .route("/prenota", at("citizen/prenota.html"))
        .route("/appuntamento", at("citizen/appuntamento.html"))
        // A citizen logged in with SPID/CIE: their appointments (the page asks `/api/citizen/…`).
        .route("/le-mie-prenotazioni", at("citizen/prenotazioni.html"))
        // The walk-in video desk: the offices that have one, and one office's desk (the page asks
        // `/api/public/offices/{id}/desk`, so an unknown office gets the page, which says so).
        .route("/sportello", at("citizen/sportello.html"))
        .route("/sportello/{office}", at("citizen/sportello.html"))
        .route("/a/{token}", get(crate::landing::page))
        // A council session's public live stream (no account); the page asks `/api/live/{id}`,
        // so an unknown session gets the page, which says so.
        .route("/live/{session}", at("public/live.html"))
        // Calendar feeds (secret URL; see `feeds`).
        .route("/feeds/{file}", get(crate::api::calendar::serve_feed))
        // Staff pages; `/staff/setup` carries its one-time secret in the fragment, never sent here.
        .route("/staff", at("staff/staff.html"))
        .route("/staff/admin", at("staff/admin.html"))
        .route("/staff/calendario", at("staff/calendar.html"))
        .route("/staff/dati", at("staff/figures.html"))
        .route("/staff/setup", at("staff/setup.html"))
        .route("/web/{*path}", get(|Path(path): Path<String>| async move { file(&path) }))
        // Signing in through OpenID providers: redirects to and from them (docs/identity.md).
        .merge(crate::api::identity::page_routes())
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
    use crate::page::{framed, not_found_page};
    use sportello_backoffice::settings::Municipality;

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

    /// Every page route answers its page inside the frame: one skip link, header, `<main>` and
    /// footer, the language switch, the page's own head lines, no
    /// template marker left.
    #[tokio::test]
    async fn pages_come_in_their_frame() {
        for (uri, name, script) in [
            ("/", "citizen/index.html", "/web/citizen/home.js"),
            ("/join?t=abc", "room/join.html", "/web/room/app.js"),
            ("/servizi", "citizen/servizi.html", "/web/citizen/services.js"),
            ("/prenota", "citizen/prenota.html", "/web/citizen/booking.js"),
            ("/appuntamento", "citizen/appuntamento.html", "/web/citizen/manage.js"),
            ("/le-mie-prenotazioni", "citizen/prenotazioni.html", "/web/citizen/my-bookings.js"),
            ("/live/s1", "public/live.html", "/web/public/live.js"),
            ("/staff", "staff/staff.html", "/web/staff/staff.js"),
            ("/staff/admin", "staff/admin.html", "/web/staff/admin.js"),
            ("/staff/calendario", "staff/calendar.html", "/web/staff/calendar.js"),
            ("/staff/setup", "staff/setup.html", "/web/staff/setup.js"),
            ("/staff/dati", "staff/figures.html", "/web/staff/figures.js"),
            ("/sportello", "citizen/sportello.html", "/web/citizen/sportello.js"),
            ("/sportello/o1", "citizen/sportello.html", "/web/citizen/sportello.js"),
        ] {
            let response = get(uri).await;
            assert_eq!(response.status(), StatusCode::OK, "{uri}");
            assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store", "{uri}");
            assert_eq!(response.headers()[header::CONTENT_TYPE], "text/html; charset=utf-8", "{uri}");
            let html = String::from_utf8(to_bytes(response.into_body(), usize::MAX).await.unwrap().to_vec()).unwrap();
            assert_eq!(html, framed(name, &Municipality::unnamed()).unwrap(), "{uri}");
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
            assert_eq!(html.matches("<footer class=\"site-footer\">").count(), 1, "{uri}");
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
        let join = framed("room/join.html", &Municipality::unnamed()).unwrap();
        let (header, after) = join.split_once("</header>").unwrap();
        assert!(header.contains("<p id=\"status\" role=\"status\">") && header.contains("id=\"alert\""));
        assert!(!after.contains("id=\"status\""));
        let desk = framed("staff/staff.html", &Municipality::unnamed()).unwrap();
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
            html.contains(
                "<a href=\"/privacy\" data-element=\"privacy-policy-link\">Informativa privacy <span lang=\"en\">/ Privacy notice</span></a>"
            )
        );
    }

    async fn get_text(app: &Router, uri: &str) -> (StatusCode, axum::http::HeaderMap, String) {
        let response = app.clone().oneshot(Request::get(uri).body(Body::empty()).unwrap()).await.unwrap();
        let (parts, body) = response.into_parts();
        let body = String::from_utf8_lossy(&to_bytes(body, usize::MAX).await.unwrap()).into_owned();
        (parts.status, parts.headers, body)
    }

    /// What the administrator sets is what every page says, escaped; the privacy notice names the
    /// controller, the DPO and this server's retention periods; the crest is served with a policy
    /// of its own and its URL changes with it.
    #[tokio::test]
    async fn the_municipality_speaks_on_every_page() {
        use sportello_backoffice::settings::{SETTING_NAME, identity, set_crest};
        let (state, _dir) = crate::state::test_state().await;
        let store = state.store.clone();
        let app: Router = routes().with_state(state);
        store.set_setting(SETTING_NAME, "Comune di Roccabella <b>").await.unwrap();
        store.set_setting(identity::OWNER_NAME, "Regione Esempio").await.unwrap();
        store.set_setting(identity::OWNER_URL, "https://regione.example").await.unwrap();
        store.set_setting(identity::CONTROLLER, "Comune di Roccabella, il Sindaco pro tempore").await.unwrap();
        store.set_setting(identity::DPO_EMAIL, "rpd@roccabella.example").await.unwrap();
        store.set_setting(identity::PEC, "protocollo@pec.roccabella.example").await.unwrap();
        store.set_setting(identity::PHONE, "+39 0000 000000").await.unwrap();
        for uri in ["/", "/prenota", "/join?t=x", "/staff", "/privacy", "/note-legali", "/live/s1"] {
            let (status, _, html) = get_text(&app, uri).await;
            assert_eq!(status, StatusCode::OK, "{uri}");
            assert!(html.contains("Comune di Roccabella &lt;b&gt;") && !html.contains("<b>"), "{uri}: escaped name");
            assert!(
                html.contains("<a class=\"owner-link\" href=\"https://regione.example\">Regione Esempio</a>"),
                "{uri}"
            );
            assert!(html.contains("protocollo@pec.roccabella.example"), "{uri}: footer contacts");
            assert!(
                html.contains("<a href=\"/note-legali#accessibilita\" data-element=\"accessibility-link\""),
                "{uri}: the accessibility statement's fallback"
            );
            assert!(!html.contains("brand-crest") && !html.contains("{{"), "{uri}");
        }
        // A page without script (a join link's landing page) says its footer in both languages.
        let (status, _, landing) = get_text(&app, "/a/not-a-token").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            landing.contains("<li>Telefono <span lang=\"en\">/ Phone</span>: <a href=\"tel:+39 0000 000000\">"),
            "{landing}"
        );
        assert!(!landing.contains("data-i18n=\"footer.phone\""), "{landing}");
        let (_, _, privacy) = get_text(&app, "/privacy").await;
        // Identity and App IO (issue 19): what each gives and sends, in both languages.
        for said in [
            "Comune di Roccabella, il Sindaco pro tempore",
            "rpd@roccabella.example",
            "30 giorni",
            "1 anno",
            "art. 6",
            "Accesso con SPID o CIE (facoltativo)",
            "Avvisi nell'app IO (facoltativi)",
            "Logging in with SPID or CIE (optional)",
            "Notices in the IO app (optional)",
            "PagoPA S.p.A.",
        ] {
            assert!(privacy.contains(said), "{said}");
        }
        assert_eq!(get_text(&app, "/crest").await.0, StatusCode::NOT_FOUND);
        set_crest(&store, Some(("image/svg+xml", b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>"))).await.unwrap();
        store.set_setting(identity::ACCESSIBILITY_URL, "https://form.agid.gov.it/view/x").await.unwrap();
        let (_, _, home) = get_text(&app, "/").await;
        let at = home.find("<img class=\"brand-crest\" src=\"/crest?v=").expect("the crest in the header");
        let src = &home[at + "<img class=\"brand-crest\" src=\"".len()..];
        let src = &src[..src.find('"').unwrap()];
        assert!(home.contains("href=\"https://form.agid.gov.it/view/x\" data-element=\"accessibility-link\""));
        let (status, headers, body) = get_text(&app, src).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "<svg xmlns=\"http://www.w3.org/2000/svg\"/>"));
        assert_eq!(headers[header::CONTENT_TYPE], "image/svg+xml");
        assert!(headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap().starts_with("default-src 'none'"));
        set_crest(&store, Some(("image/svg+xml", b"<svg xmlns=\"http://www.w3.org/2000/svg\"><g/></svg>")))
            .await
            .unwrap();
        assert!(!get_text(&app, "/").await.2.contains(src), "a new crest, a new URL");
    }

    #[tokio::test]
    async fn traversal_and_unknown_files_are_404() {
        for uri in ["/web/", "/web/../server/Cargo.toml", "/web/%2e%2e/Cargo.toml", "/web/nope.js"] {
            assert_eq!(get(uri).await.status(), StatusCode::NOT_FOUND, "{uri}");
        }
    }
}
