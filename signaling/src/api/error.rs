//! [`ApiError`]: the one place where REST failures become a status and the JSON body
//! `{"error": {"code": "...", "message": "..."}}` (message in Italian, or English with `Accept-Language: en`
//! — the code is what programs match on).

use axum::Json;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
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
    BadRequest { code: &'static str, message: String },
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
    /// 403: a state-changing request that a browser sent from another site (`crate::origin`).
    #[error("cross-origin request")]
    CrossOrigin,
    #[error("not found")]
    NotFound,
    /// 409 with a specific code (slot taken, duplicate email…).
    #[error("{code}: {message}")]
    Conflict { code: &'static str, message: String },
    /// 410: the thing existed but is over (cancelled appointment, used link).
    #[error("{code}: {message}")]
    Gone { code: &'static str, message: String },
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
    /// Human-readable explanation for the person using the page.
    pub message: String,
}

impl ApiError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::BadRequest { code, message: message.into() }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::Conflict { code, message: message.into() }
    }

    pub fn gone(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::Gone { code, message: message.into() }
    }

    pub fn internal(detail: impl std::fmt::Display) -> ApiError {
        ApiError::Internal(detail.to_string())
    }

    fn parts(&self) -> (StatusCode, &str, String) {
        match self {
            ApiError::BadRequest { code, message } => (StatusCode::BAD_REQUEST, code, message.clone()),
            ApiError::Unauthenticated => {
                (StatusCode::UNAUTHORIZED, "unauthenticated", "Accesso richiesto: effettua il login.".into())
            }
            ApiError::InvalidCredentials => {
                (StatusCode::UNAUTHORIZED, "invalid_credentials", "Email o password non corretti.".into())
            }
            ApiError::Bearer { .. } => (
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "Token di accesso (Authorization: Bearer) mancante, non valido o scaduto.".into(),
            ),
            ApiError::Forbidden => {
                (StatusCode::FORBIDDEN, "forbidden", "Non hai i permessi per questa operazione.".into())
            }
            ApiError::CrossOrigin => (
                StatusCode::FORBIDDEN,
                "cross_origin",
                "Richiesta inviata da un altro sito: rifiutata. Apri Sportello dal suo indirizzo e riprova.".into(),
            ),
            ApiError::NotFound => (StatusCode::NOT_FOUND, "not_found", "Risorsa non trovata.".into()),
            ApiError::Conflict { code, message } => (StatusCode::CONFLICT, code, message.clone()),
            ApiError::Gone { code, message } => (StatusCode::GONE, code, message.clone()),
            ApiError::TooLarge => {
                (StatusCode::PAYLOAD_TOO_LARGE, "too_large", "Il file o la richiesta è troppo grande.".into())
            }
            ApiError::UnsupportedMedia(_) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_type",
                "Tipo di file non ammesso: sono accettati PDF, immagini e documenti d'ufficio.".into(),
            ),
            ApiError::ContentType { expected } => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_content_type",
                format!("La richiesta deve avere Content-Type: {expected}."),
            ),
            ApiError::MethodNotAllowed { allow } => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                format!("Metodo non consentito su questa risorsa (consentiti: {allow})."),
            ),
            ApiError::NotOnAir => (
                StatusCode::CONFLICT,
                "not_on_air",
                "La seduta non è in diretta in questo momento: riprova tra poco.".into(),
            ),
            ApiError::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Servizio momentaneamente al completo o non disponibile: riprova tra poco.".into(),
            ),
            ApiError::RateLimited => {
                (StatusCode::TOO_MANY_REQUESTS, "rate_limited", "Troppe richieste: riprova tra qualche minuto.".into())
            }
            ApiError::TooManyAttempts { retry_after } => (
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_attempts",
                format!("Troppi tentativi di accesso da questa rete: riprova tra {} minuti.", minutes(*retry_after)),
            ),
            ApiError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Errore interno: riprova più tardi o contatta l'ufficio.".into(),
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
        let mut response =
            (status, Json(ErrorBody { error: ErrorDetail { code: code.to_owned(), message } })).into_response();
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

/// The SFU's answers to WHEP/WHIP offers and leaves, mapped once.
impl From<SfuError> for ApiError {
    fn from(e: SfuError) -> ApiError {
        match e {
            SfuError::UnknownProgram(_) => ApiError::NotOnAir,
            SfuError::InvalidSdp(detail) | SfuError::UnusableOffer(detail) => {
                ApiError::bad_request("invalid_sdp", format!("Offerta SDP non utilizzabile: {detail}"))
            }
            SfuError::UnknownParticipant(_) => ApiError::NotFound,
            SfuError::AlreadyJoined(_) => ApiError::conflict("already_connected", "Questa sessione è già collegata."),
            SfuError::Stopped => ApiError::Unavailable("the media engine has stopped"),
            other => ApiError::internal(other),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::NotFound => ApiError::NotFound,
            StoreError::SlotTaken => {
                ApiError::conflict("slot_taken", "L'orario scelto non è più disponibile: scegline un altro.")
            }
            StoreError::Conflict(what) => ApiError::conflict("conflict", format!("Esiste già: {what}.")),
            StoreError::InvalidTransition { from, to } => ApiError::conflict(
                "invalid_status",
                format!("Un appuntamento nello stato «{from}» non può passare a «{to}»."),
            ),
            StoreError::Invalid(what) => ApiError::bad_request("invalid_value", format!("Valore non valido: {what}.")),
            other => ApiError::internal(other),
        }
    }
}

impl From<axum::extract::rejection::JsonRejection> for ApiError {
    fn from(e: axum::extract::rejection::JsonRejection) -> ApiError {
        ApiError::bad_request("invalid_body", format!("Richiesta non valida: {}", e.body_text()))
    }
}
