//! [`ApiError`]: the one place where REST failures become a status and the JSON body
//! `{"error": {"code": "...", "message": "..."}}` (message in Italian, or English with `Accept-Language: en`
//! — the code is what programs match on).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use sportello_store::StoreError;

/// A failed API request. Variants carry the machine code; the message is chosen in [`ApiError::message`].
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400 with a specific code and message (validation of one field, malformed body…).
    #[error("{code}: {message}")]
    BadRequest { code: &'static str, message: String },
    #[error("authentication required")]
    Unauthenticated,
    /// 401 on a failed login (the same for an unknown email and a wrong password).
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error("forbidden")]
    Forbidden,
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
    #[error("too many requests")]
    RateLimited,
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
            ApiError::Forbidden => {
                (StatusCode::FORBIDDEN, "forbidden", "Non hai i permessi per questa operazione.".into())
            }
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
            ApiError::RateLimited => {
                (StatusCode::TOO_MANY_REQUESTS, "rate_limited", "Troppe richieste: riprova tra qualche minuto.".into())
            }
            ApiError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Errore interno: riprova più tardi o contatta l'ufficio.".into(),
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(detail) = &self {
            tracing::error!(%detail, "request failed");
        }
        let (status, code, message) = self.parts();
        (status, Json(ErrorBody { error: ErrorDetail { code: code.to_owned(), message } })).into_response()
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
