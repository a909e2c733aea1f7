//! [`ApiError`]: the one place where REST failures become a status and the JSON body
//! `{"error": {"code": "...", "message": "..."}}` — the code is what programs match on; the message
//! is in the request's language ([`request_lang`]: `Accept-Language`, Italian by default). Every
//! message is a [`Text`] with both languages, so an untranslated message does not compile.

use axum::Json;
use axum::body::Body;
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use sportello_domain::booking::Lang;
use sportello_sfu::SfuError;
use sportello_store::StoreError;

/// Seconds a WHEP player waits before trying again while the session is not on air (sent as
/// `Retry-After` with 409, as the WHEP draft asks) and while the server is full (503).
pub const RETRY_NOT_ON_AIR_SECS: &str = "5";
pub const RETRY_BUSY_SECS: &str = "30";

/// A failed API request. Variants carry the machine code; the message is chosen in [`ApiError::message`].
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400 with a specific code and message (validation of one field, malformed body…).
    #[error("{code}: {message}")]
    BadRequest { code: &'static str, message: Text },
    #[error("authentication required")]
    Unauthenticated,
    /// 401 with `WWW-Authenticate: Bearer` (RFC 6750): no bearer token, or one that does not verify.
    #[error("bearer token required or invalid")]
    Bearer { invalid: bool },
    /// 401 on a failed login (the same for an unknown email and a wrong password).
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error("forbidden")]
    Forbidden,
    /// 403 with a specific code (e.g. `local_login_disabled`: passwords switched off for staff).
    #[error("{code}: {message}")]
    Refused { code: &'static str, message: Text },
    /// 403: a state-changing request that a browser sent from another site (`crate::origin`).
    #[error("cross-origin request")]
    CrossOrigin,
    #[error("not found")]
    NotFound,
    /// 409 with a specific code (slot taken, duplicate email…).
    #[error("{code}: {message}")]
    Conflict { code: &'static str, message: Text },
    /// 410: the thing existed but is over (cancelled appointment, used link).
    #[error("{code}: {message}")]
    Gone { code: &'static str, message: Text },
    #[error("payload too large")]
    TooLarge,
    /// 415: an upload whose content is not an accepted type.
    #[error("unsupported media type: {0}")]
    UnsupportedMedia(String),
    /// 415: the request body is not of the one accepted type (e.g. `application/sdp`).
    #[error("unsupported content type, expected {expected}")]
    ContentType { expected: &'static str },
    /// 405 with `Allow` (e.g. PATCH on a WHEP/WHIP session: we do not trickle, RFC 9725 §4.3.1).
    #[error("method not allowed")]
    MethodNotAllowed { allow: &'static str },
    /// 409 with `Retry-After`: the council session's program feed is not on air (yet).
    #[error("not on air")]
    NotOnAir,
    /// 503 with `Retry-After`: a capacity limit (live viewers) or the media engine is unavailable.
    #[error("service unavailable: {0}")]
    Unavailable(&'static str),
    #[error("too many requests")]
    RateLimited,
    /// 429 with `Retry-After`: too many login attempts from this address, or on this account from it.
    #[error("too many attempts, retry after {retry_after} s")]
    TooManyAttempts { retry_after: i64 },
    #[error("internal error: {0}")]
    Internal(String),
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `slot_taken`, `invalid_email`, `unauthenticated`.
    pub code: String,
    /// Human-readable explanation for the person using the page, in the request's language
    /// (`Accept-Language`: English or Italian, Italian by default; see `Content-Language`).
    pub message: String,
}

pub use sportello_backoffice::text::Text;

/// The language a request asks for in `Accept-Language` (RFC 9110 §12.5.4): of Italian and English,
/// the one with the higher weight (`q`), the first listed on a tie; Italian when neither is listed,
/// for `*`, or without the header.
pub fn request_lang(headers: &HeaderMap) -> Lang {
    let Some(value) = headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()) else {
        return Lang::It;
    };
    let mut best: Option<(Lang, u16)> = None;
    for range in value.split(',') {
        let mut parts = range.split(';');
        let tag = parts.next().unwrap_or_default().trim();
        let primary = tag.split('-').next().unwrap_or_default();
        let lang = if primary.eq_ignore_ascii_case("en") {
            Lang::En
        } else if primary.eq_ignore_ascii_case("it") {
            Lang::It
        } else {
            continue;
        };
        let q = parts
            .find_map(|p| p.trim().strip_prefix("q=").or_else(|| p.trim().strip_prefix("Q=")))
            .map_or(Some(1000), |q| {
                q.trim().parse::<f32>().ok().filter(|q| (0.0..=1.0).contains(q)).map(|q| (q * 1000.0).round() as u16)
            });
        match q {
            Some(q) if q > 0 && best.is_none_or(|(_, b)| q > b) => best = Some((lang, q)),
            _ => {}
        }
    }
    best.map_or(Lang::It, |(lang, _)| lang)
}

/// The English body of an error response, put in place of the Italian one by [`localize`].
#[derive(Clone)]
struct EnglishBody(Vec<u8>);

/// Middleware of the `/api` routes: an error response answers in the request's language.
pub async fn localize(request: Request, next: Next) -> Response {
    let lang = request_lang(request.headers());
    let mut response = next.run(request).await;
    if let Some(EnglishBody(english)) = response.extensions_mut().remove::<EnglishBody>() {
        if lang == Lang::En {
            *response.body_mut() = Body::from(english);
        }
        response.headers_mut().insert(header::CONTENT_LANGUAGE, HeaderValue::from_static(lang.as_str()));
    }
    response
}

impl ApiError {
    pub fn bad_request(code: &'static str, message: impl Into<Text>) -> ApiError {
        ApiError::BadRequest { code, message: message.into() }
    }

    pub fn conflict(code: &'static str, message: impl Into<Text>) -> ApiError {
        ApiError::Conflict { code, message: message.into() }
    }

    pub fn gone(code: &'static str, message: impl Into<Text>) -> ApiError {
        ApiError::Gone { code, message: message.into() }
    }

    pub fn forbidden(code: &'static str, message: impl Into<Text>) -> ApiError {
        ApiError::Refused { code, message: message.into() }
    }

    pub fn internal(detail: impl std::fmt::Display) -> ApiError {
        ApiError::Internal(detail.to_string())
    }

    fn parts(&self) -> (StatusCode, &str, Text) {
        let text = |it: &str, en: &str| Text::from((it, en));
        match self {
            ApiError::BadRequest { code, message } => (StatusCode::BAD_REQUEST, code, message.clone()),
            ApiError::Unauthenticated => (
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                text("Accesso richiesto: effettua il login.", "Sign-in required: please log in."),
            ),
            ApiError::InvalidCredentials => (
                StatusCode::UNAUTHORIZED,
                "invalid_credentials",
                text("Email o password non corretti.", "Wrong email or password."),
            ),
            ApiError::Bearer { .. } => (
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                text(
                    "Token di accesso (Authorization: Bearer) mancante, non valido o scaduto.",
                    "Access token (Authorization: Bearer) missing, invalid or expired.",
                ),
            ),
            ApiError::Forbidden => (
                StatusCode::FORBIDDEN,
                "forbidden",
                text("Non hai i permessi per questa operazione.", "You are not allowed to do this."),
            ),
            ApiError::Refused { code, message } => (StatusCode::FORBIDDEN, code, message.clone()),
            ApiError::CrossOrigin => (
                StatusCode::FORBIDDEN,
                "cross_origin",
                text(
                    "Richiesta inviata da un altro sito: rifiutata. Apri Sportello dal suo indirizzo e riprova.",
                    "A request sent from another site: refused. Open Sportello at its own address and try again.",
                ),
            ),
            ApiError::NotFound => (StatusCode::NOT_FOUND, "not_found", text("Risorsa non trovata.", "Not found.")),
            ApiError::Conflict { code, message } => (StatusCode::CONFLICT, code, message.clone()),
            ApiError::Gone { code, message } => (StatusCode::GONE, code, message.clone()),
            ApiError::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                text("Il file o la richiesta è troppo grande.", "The file or the request is too large."),
            ),
            ApiError::UnsupportedMedia(_) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_type",
                text(
                    "Tipo di file non ammesso: sono accettati PDF, immagini e documenti d'ufficio.",
                    "File type not allowed: PDF, images and office documents are accepted.",
                ),
            ),
            ApiError::ContentType { expected } => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_content_type",
                Text::from((
                    format!("La richiesta deve avere Content-Type: {expected}."),
                    format!("The request must have Content-Type: {expected}."),
                )),
            ),
            ApiError::MethodNotAllowed { allow } => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                Text::from((
                    format!("Metodo non consentito su questa risorsa (consentiti: {allow})."),
                    format!("Method not allowed on this resource (allowed: {allow})."),
                )),
            ),
            ApiError::NotOnAir => (
                StatusCode::CONFLICT,
                "not_on_air",
                text(
                    "La seduta non è in diretta in questo momento: riprova tra poco.",
                    "The session is not on air at the moment: try again shortly.",
                ),
            ),
            ApiError::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                text(
                    "Servizio momentaneamente al completo o non disponibile: riprova tra poco.",
                    "The service is full or unavailable at the moment: try again shortly.",
                ),
            ),
            ApiError::RateLimited => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                text("Troppe richieste: riprova tra qualche minuto.", "Too many requests: try again in a few minutes."),
            ),
            ApiError::TooManyAttempts { retry_after } => {
                let minutes = minutes(*retry_after);
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    "too_many_attempts",
                    Text {
                        it: format!("Troppi tentativi di accesso da questa rete: riprova tra {minutes} minuti."),
                        en: format!("Too many sign-in attempts from this network: try again in {minutes} minutes."),
                    },
                )
            }
            ApiError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                text(
                    "Errore interno: riprova più tardi o contatta l'ufficio.",
                    "Internal error: try again later or contact the office.",
                ),
            ),
        }
    }
}

/// Whole minutes, rounded up, for a person reading a wait.
fn minutes(secs: i64) -> i64 {
    (secs.max(1) + 59) / 60
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(detail) = &self {
            tracing::error!(%detail, "request failed");
        }
        if let ApiError::Unavailable(detail) = &self {
            tracing::warn!(%detail, "request refused: unavailable");
        }
        let headers = self.headers();
        let (status, code, message) = self.parts();
        let body =
            |lang| ErrorBody { error: ErrorDetail { code: code.to_owned(), message: message.get(lang).to_owned() } };
        let english = serde_json::to_vec(&body(Lang::En)).unwrap_or_default();
        let mut response = (status, Json(body(Lang::It))).into_response();
        response.extensions_mut().insert(EnglishBody(english));
        response.headers_mut().insert(header::VARY, HeaderValue::from_static("accept-language"));
        for (name, value) in headers {
            if let Ok(value) = HeaderValue::from_str(&value) {
                response.headers_mut().insert(name, value);
            }
        }
        response
    }
}

impl ApiError {
    /// Headers some statuses require (RFC 9110: `Allow` with 405; RFC 6750: `WWW-Authenticate`
    /// with a bearer 401) or that tell a client when to come back (`Retry-After`).
    fn headers(&self) -> Vec<(HeaderName, String)> {
        match self {
            ApiError::Bearer { invalid: false } => {
                vec![(header::WWW_AUTHENTICATE, "Bearer realm=\"sportello\"".into())]
            }
            ApiError::Bearer { invalid: true } => {
                vec![(header::WWW_AUTHENTICATE, "Bearer realm=\"sportello\", error=\"invalid_token\"".into())]
            }
            ApiError::MethodNotAllowed { allow } => vec![(header::ALLOW, (*allow).into())],
            ApiError::ContentType { expected } => vec![(HeaderName::from_static("accept-post"), (*expected).into())],
            ApiError::NotOnAir => vec![(header::RETRY_AFTER, RETRY_NOT_ON_AIR_SECS.into())],
            ApiError::Unavailable(_) => vec![(header::RETRY_AFTER, RETRY_BUSY_SECS.into())],
            // The limits count per clock minute.
            ApiError::RateLimited => vec![(header::RETRY_AFTER, "60".into())],
            ApiError::TooManyAttempts { retry_after } => vec![(header::RETRY_AFTER, retry_after.max(&1).to_string())],
            _ => Vec::new(),
        }
    }
}

/// An edge that could not relay the council's stream (several nodes).
impl From<crate::cascade::CascadeError> for ApiError {
    fn from(e: crate::cascade::CascadeError) -> ApiError {
        use crate::cascade::CascadeError;
        match e {
            CascadeError::NotOnAir => ApiError::NotOnAir,
            CascadeError::Ended => {
                ApiError::gone("session_ended", ("La seduta è terminata.", "The session has ended."))
            }
            CascadeError::Busy => ApiError::Unavailable("relaying another session from the council's node"),
            CascadeError::Origin(detail) => {
                tracing::warn!(%detail, "live stream not relayed from the council's node");
                ApiError::Unavailable("the council's node did not answer")
            }
            CascadeError::Sfu(e) => e.into(),
        }
    }
}

/// The SFU's answers to WHEP/WHIP offers and leaves, mapped once.
impl From<SfuError> for ApiError {
    fn from(e: SfuError) -> ApiError {
        match e {
            SfuError::UnknownProgram(_) => ApiError::NotOnAir,
            SfuError::InvalidSdp(detail) | SfuError::UnusableOffer(detail) => ApiError::bad_request(
                "invalid_sdp",
                (format!("Offerta SDP non utilizzabile: {detail}"), format!("Unusable SDP offer: {detail}")),
            ),
            SfuError::UnknownParticipant(_) => ApiError::NotFound,
            SfuError::AlreadyJoined(_) => ApiError::conflict(
                "already_connected",
                ("Questa sessione è già collegata.", "This session is already connected."),
            ),
            SfuError::Stopped => ApiError::Unavailable("the media engine has stopped"),
            other => ApiError::internal(other),
        }
    }
}

impl From<sportello_backoffice::context::BackOfficeError> for ApiError {
    fn from(error: sportello_backoffice::context::BackOfficeError) -> ApiError {
        use sportello_backoffice::context::BackOfficeError as E;
        match error {
            E::NotFound => ApiError::NotFound,
            E::Store(error) => error.into(),
            other => ApiError::internal(other),
        }
    }
}

/// The booking use cases' refusals carry their own code and text; failures become 404 or 500.
impl From<sportello_backoffice::booking::BookingError> for ApiError {
    fn from(error: sportello_backoffice::booking::BookingError) -> ApiError {
        use sportello_backoffice::booking::{BookingError as E, Refusal};
        if let Some((kind, code, message)) = error.refusal() {
            return match kind {
                Refusal::Invalid => ApiError::BadRequest { code, message },
                Refusal::Conflict => ApiError::Conflict { code, message },
            };
        }
        match error {
            E::NotFound => ApiError::NotFound,
            E::Store(error) => error.into(),
            E::BackOffice(error) => error.into(),
            other => ApiError::internal(other),
        }
    }
}

/// Date arithmetic out of range: only rows no one can write get there.
/// The 400 for a fiscal code that cannot be one, saying what is wrong with it.
impl From<sportello_domain::FiscalCodeError> for ApiError {
    fn from(error: sportello_domain::FiscalCodeError) -> ApiError {
        use sportello_domain::FiscalCodeError;
        let message: (String, String) = match error {
            FiscalCodeError::Length(n) => (
                format!("Il codice fiscale ha 16 caratteri: ne hai scritti {n}."),
                format!("A fiscal code has 16 characters: you wrote {n}."),
            ),
            FiscalCodeError::Layout { .. } => (
                "Il codice fiscale non è scritto correttamente: controlla lettere e cifre.".to_owned(),
                "The fiscal code is not written correctly: check its letters and digits.".to_owned(),
            ),
            FiscalCodeError::Checksum => (
                "Il codice fiscale non è valido: controlla di averlo copiato senza errori.".to_owned(),
                "The fiscal code is not valid: check that you copied it without mistakes.".to_owned(),
            ),
        };
        ApiError::bad_request("invalid_fiscal_code", message)
    }
}

impl From<jiff::Error> for ApiError {
    fn from(error: jiff::Error) -> ApiError {
        ApiError::internal(error)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::NotFound => ApiError::NotFound,
            StoreError::SlotTaken => ApiError::conflict(
                "slot_taken",
                (
                    "L'orario scelto non è più disponibile: scegline un altro.",
                    "The chosen time is no longer available: please choose another one.",
                ),
            ),
            StoreError::Conflict(what) => {
                ApiError::conflict("conflict", (format!("Esiste già: {what}."), format!("Already exists: {what}.")))
            }
            StoreError::InvalidTransition { from, to } => ApiError::conflict(
                "invalid_status",
                (
                    format!("Un appuntamento nello stato «{from}» non può passare a «{to}»."),
                    format!("An appointment in status «{from}» cannot change to «{to}»."),
                ),
            ),
            StoreError::Invalid(what) => ApiError::bad_request(
                "invalid_value",
                (format!("Valore non valido: {what}."), format!("Invalid value: {what}.")),
            ),
            other => ApiError::internal(other),
        }
    }
}

impl From<axum::extract::rejection::JsonRejection> for ApiError {
    fn from(e: axum::extract::rejection::JsonRejection) -> ApiError {
        let detail = e.body_text();
        ApiError::bad_request(
            "invalid_body",
            (format!("Richiesta non valida: {detail}"), format!("Invalid request: {detail}")),
        )
    }
}

impl From<axum::extract::rejection::QueryRejection> for ApiError {
    fn from(e: axum::extract::rejection::QueryRejection) -> ApiError {
        let detail = e.body_text();
        ApiError::bad_request(
            "invalid_query",
            (format!("Parametri non validi: {detail}"), format!("Invalid parameters: {detail}")),
        )
    }
}

impl From<axum::extract::rejection::PathRejection> for ApiError {
    fn from(e: axum::extract::rejection::PathRejection) -> ApiError {
        let detail = e.body_text();
        ApiError::bad_request(
            "invalid_path",
            (format!("Indirizzo non valido: {detail}"), format!("Invalid address: {detail}")),
        )
    }
}

/// axum's `Query`, refusing a malformed or incomplete query string with our JSON 400
/// (`invalid_query`) instead of axum's plain-text one. Same name and shape, so handlers and the
/// `utoipa` parameter inference read it as axum's.
pub struct Query<T>(pub T);

impl<T: serde::de::DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let axum::extract::Query(value) = axum::extract::Query::<T>::from_request_parts(parts, state).await?;
        Ok(Query(value))
    }
}

/// axum's `Path`, refusing a segment that does not decode (e.g. `%FF`) with our JSON 400
/// (`invalid_path`) instead of axum's plain-text one.
pub struct Path<T>(pub T);

impl<T: serde::de::DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let axum::extract::Path(value) = axum::extract::Path::<T>::from_request_parts(parts, state).await?;
        Ok(Path(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lang(value: &str) -> Lang {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT_LANGUAGE, HeaderValue::from_str(value).expect("header"));
        request_lang(&headers)
    }

    #[test]
    fn accept_language_with_weights() {
        assert_eq!(request_lang(&HeaderMap::new()), Lang::It);
        assert_eq!(lang("en"), Lang::En);
        assert_eq!(lang("en-GB,it;q=0.5"), Lang::En);
        assert_eq!(lang("it-IT,it;q=0.9,en-US;q=0.8,en;q=0.7"), Lang::It);
        assert_eq!(lang("it;q=0.4, EN-us;q=0.6"), Lang::En);
        assert_eq!(lang("fr-FR,fr;q=0.9,en;q=0.8"), Lang::En);
        assert_eq!(lang("en,it"), Lang::En, "a tie goes to the first listed");
        assert_eq!(lang("en;q=0"), Lang::It, "q=0 means not acceptable");
        assert_eq!(lang("de, *"), Lang::It);
        assert_eq!(lang("english"), Lang::It);
        assert_eq!(lang("en;q=abc"), Lang::It);
    }

    /// Italian letters and words that have no place in an English message.
    fn looks_italian(text: &str) -> bool {
        text.contains(['à', 'è', 'é', 'ì', 'ò', 'ù'])
            || [" non ", " il ", " della ", " del ", " per ", " un "].iter().any(|w| text.contains(w))
    }

    #[test]
    fn fixed_messages_have_english() {
        let errors = [
            ApiError::Unauthenticated,
            ApiError::Bearer { invalid: true },
            ApiError::InvalidCredentials,
            ApiError::Forbidden,
            ApiError::CrossOrigin,
            ApiError::NotFound,
            ApiError::TooLarge,
            ApiError::UnsupportedMedia("x".into()),
            ApiError::ContentType { expected: "application/sdp" },
            ApiError::MethodNotAllowed { allow: "POST" },
            ApiError::NotOnAir,
            ApiError::Unavailable("x"),
            ApiError::RateLimited,
            ApiError::TooManyAttempts { retry_after: 90 },
            ApiError::internal("x"),
            StoreError::SlotTaken.into(),
            StoreError::Conflict("email").into(),
            StoreError::Invalid("x").into(),
            StoreError::InvalidTransition {
                from: sportello_store::Status::Cancelled,
                to: sportello_store::Status::Completed,
            }
            .into(),
            SfuError::AlreadyJoined("x".into()).into(),
        ];
        for e in errors {
            let (_, code, text) = e.parts();
            assert!(!text.en.is_empty() && text.en != text.it, "{code}: {text:?}");
            assert!(!looks_italian(&text.en), "{code}: English text looks Italian: {}", text.en);
        }
    }

    /// Every `ApiError::bad_request/conflict/gone` call in the crate's source, with its code and, where
    /// they are written out, the Italian and English texts: the English one is there and is English.
    /// (A message without English does not compile: the argument is a `Text`.)
    #[test]
    fn every_error_code_in_the_source_has_an_english_text() {
        let mut files = Vec::new();
        let mut dirs = vec![std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(dir).expect("src") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    files.push(path);
                }
            }
        }
        let mut codes = std::collections::BTreeSet::new();
        for path in files {
            let source = std::fs::read_to_string(&path).expect("source");
            for call in ["ApiError::bad_request(", "ApiError::conflict(", "ApiError::gone(", "ApiError::forbidden("] {
                for (at, _) in source.match_indices(call) {
                    let args = call_args(&source[at + call.len()..]);
                    let literals = string_literals(args);
                    let Some(code) = args.trim_start().starts_with('"').then(|| literals[0].clone()) else {
                        continue; // the code is a variable (e.g. the field name in council.rs)
                    };
                    let texts = &literals[1..];
                    if let [it, en] = texts {
                        assert_ne!(it, en, "{code} in {path:?}: the English text is the Italian one");
                        assert!(!looks_italian(en), "{code} in {path:?}: English text looks Italian: {en}");
                    }
                    assert!(texts.len() != 1, "{code} in {path:?}: one text only: {args}");
                    codes.insert(code);
                }
            }
        }
        assert!(codes.len() > 40, "the scan finds the calls: {codes:?}");
        assert!(codes.contains("invalid_first_name") || codes.contains("invalid_start"), "{codes:?}");
    }

    /// The text up to the parenthesis that closes a call (strings skipped).
    fn call_args(rest: &str) -> &str {
        let (mut depth, mut in_string, mut escaped) = (1, false, false);
        for (i, c) in rest.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' if in_string => escaped = true,
                '"' => in_string = !in_string,
                '(' if !in_string => depth += 1,
                ')' if !in_string => {
                    depth -= 1;
                    if depth == 0 {
                        return &rest[..i];
                    }
                }
                _ => {}
            }
        }
        rest
    }

    fn string_literals(args: &str) -> Vec<String> {
        args.split('"').skip(1).step_by(2).map(str::to_owned).collect()
    }
}
