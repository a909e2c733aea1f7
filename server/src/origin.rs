//! Cross-site request forgery protection for `/api`, as a middleware on every state-changing
//! request (anything but GET, HEAD and OPTIONS). The staff session cookie is SameSite=Strict; this
//! is the second, independent line: a request that a browser marks as coming from another site is
//! refused with 403 `cross_origin`, whatever its body (several staff POSTs have none).
//!
//! The decision, in order (the algorithm of Go's `http.CrossOriginProtection`):
//! 1. `Origin` equal to `public_url`'s origin: ours.
//! 2. `Sec-Fetch-Site` present (every current browser sends it): `same-origin` or `none` (typed
//!    by the user) pass, anything else (`same-site`, `cross-site`) is refused.
//! 3. No `Origin` either: not a browser request from another site — curl, the chamber's WHIP
//!    encoder and other bearer-token clients, scripts — so it passes; such a client holds its
//!    credentials itself, nothing is sent on its behalf by another page.
//! 4. `Origin` with `public_url`'s scheme and the request's `Host` (a browser on another name of
//!    this server, e.g. `localhost` while `public_url` says `127.0.0.1`): passes; any other
//!    `Origin`, `null` included, is refused.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::api::ApiError;

/// The origin requests must come from, derived once from `public_url`.
#[derive(Debug, Clone)]
pub struct OriginPolicy {
    /// `scheme://host[:port]`, default port omitted (as browsers send `Origin`).
    trusted: String,
}

impl OriginPolicy {
    pub fn new(public_url: &str) -> OriginPolicy {
        let trusted = url::Url::parse(public_url).map(|u| u.origin().ascii_serialization()).unwrap_or_default();
        OriginPolicy { trusted }
    }

    /// Whether a request with this method and these headers may proceed (see the module doc).
    pub fn allows(&self, method: &Method, headers: &HeaderMap) -> bool {
        if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
            return true;
        }
        let text = |name| headers.get(name).and_then(|v: &header::HeaderValue| v.to_str().ok());
        let origin = text(header::ORIGIN);
        if origin.is_some_and(|o| !self.trusted.is_empty() && o.eq_ignore_ascii_case(&self.trusted)) {
            return true;
        }
        if let Some(site) = text(header::HeaderName::from_static("sec-fetch-site")) {
            return matches!(site, "same-origin" | "none");
        }
        let Some(origin) = origin else { return true };
        let Ok(url) = url::Url::parse(origin) else { return false };
        // The scheme must still be ours: plain http cannot speak for an https server.
        let Some(host) = url.host_str().filter(|_| self.trusted.starts_with(&format!("{}://", url.scheme()))) else {
            return false;
        };
        let authority = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        text(header::HOST).is_some_and(|h| h.eq_ignore_ascii_case(&authority))
    }
}

/// The middleware: 403 `cross_origin` for a state-changing request from another site.
pub async fn check(State(policy): State<Arc<OriginPolicy>>, request: Request, next: Next) -> Response {
    if policy.allows(request.method(), request.headers()) {
        return next.run(request).await;
    }
    let origin = request.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok()).unwrap_or("-");
    tracing::info!(%origin, method = %request.method(), path = %request.uri().path(), "cross-origin request refused");
    ApiError::CrossOrigin.into_response()
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn state_changing_requests_from_another_site_are_refused() {
        let policy = OriginPolicy::new("https://sportello.comune.example");
        let post = Method::POST;
        let host = ("host", "sportello.comune.example");
        for refused in [
            headers(&[host, ("origin", "https://evil.example")]),
            headers(&[host, ("origin", "https://evil.example"), ("sec-fetch-site", "cross-site")]),
            headers(&[host, ("origin", "null")]),
            headers(&[host, ("origin", "http://sportello.comune.example")]),
            headers(&[host, ("sec-fetch-site", "same-site")]),
            headers(&[host, ("sec-fetch-site", "cross-site")]),
            headers(&[("host", "evil.example"), ("origin", "https://other.example")]),
        ] {
            assert!(!policy.allows(&post, &refused), "{refused:?}");
            assert!(!policy.allows(&Method::DELETE, &refused), "{refused:?}");
            assert!(policy.allows(&Method::GET, &refused), "reads are never refused: {refused:?}");
        }
        for allowed in [
            // Our own pages.
            headers(&[host, ("origin", "https://sportello.comune.example"), ("sec-fetch-site", "same-origin")]),
            headers(&[host, ("origin", "https://sportello.comune.example")]),
            headers(&[host, ("sec-fetch-site", "same-origin")]),
            headers(&[host, ("sec-fetch-site", "none")]),
            // curl, the WHIP encoder with its bearer token: no Origin, no Sec-Fetch-Site.
            headers(&[host, ("authorization", "Bearer abc")]),
            headers(&[]),
        ] {
            assert!(policy.allows(&post, &allowed), "{allowed:?}");
            assert!(policy.allows(&Method::PUT, &allowed), "{allowed:?}");
        }
        // Another name of this very server (a browser without Sec-Fetch-Site).
        let local = OriginPolicy::new("http://127.0.0.1:8080");
        assert!(local.allows(&post, &headers(&[("host", "localhost:8080"), ("origin", "http://localhost:8080")])));
        assert!(!local.allows(&post, &headers(&[("host", "localhost:8080"), ("origin", "http://localhost:9090")])));
    }

    #[test]
    fn the_trusted_origin_drops_path_and_default_port() {
        assert_eq!(OriginPolicy::new("https://x.example:443/sportello").trusted, "https://x.example");
        assert_eq!(OriginPolicy::new("http://127.0.0.1:8080").trusted, "http://127.0.0.1:8080");
    }
}
