//! App IO notifications over REST (docs/appio.md): whether the booking page offers them, the
//! administrator's settings and message log, a citizen turning them off for a booking, and a
//! council's convocation. Composing and sending are `backoffice::appio`; the rows `store::appio`.
//!
//! The API key is write-only: no answer carries it. The log shows fiscal codes masked, whatever
//! state a message is in.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use sportello_backoffice::appio::{self as io, AppioError, AppioSettings};
use sportello_store::{AppioMessage, StaffRole};
use tracing::Instrument;
use utoipa::{OpenApi, ToSchema};

use super::ApiError;
use super::auth::Staff;
use super::error::{ErrorBody, Path};
use super::public::{BookingOut, SecretBody};
use crate::state::AppState;

/// Rows the log shows.
const LOG_ROWS: i64 = 200;
/// An API key is a header value: printable ASCII without spaces.
const API_KEY_MAX: usize = 200;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/public/appio", get(public_state))
        .route("/public/appointments/{code}/appio-off", post(opt_out))
        .route("/admin/appio", get(get_settings).put(put_settings))
        .route("/admin/appio/messages", get(messages))
        .route("/council/sessions/{id}/convocation", post(convocation))
}

#[derive(OpenApi)]
#[openapi(
    paths(public_state, opt_out, get_settings, put_settings, messages, convocation),
    components(schemas(PublicAppio, AppioView, AppioBody, AppioMessageView, Convocation)),
    tags((name = "appio", description = "App IO notifications: settings, log, opting out, convocations"))
)]
struct AppioApi;

/// This module's part of `/api/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    AppioApi::openapi()
}

// --- shapes -------------------------------------------------------------------------------------

#[derive(Debug, Serialize, ToSchema)]
pub struct PublicAppio {
    /// The booking form offers App IO notifications.
    pub enabled: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AppioView {
    /// Messages go out (needs an API key).
    pub enabled: bool,
    /// IO's API root; `/profiles` and `/messages` are appended.
    pub base_url: String,
    /// Whether an API key is stored (the key itself is never shown).
    pub api_key_set: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct AppioBody {
    pub enabled: bool,
    /// `https://…`, or `http://` to a loopback address (a test double); absent: unchanged (the
    /// default is `https://api.io.pagopa.it/api/v1`).
    #[serde(default)]
    #[schema(max_length = 500)]
    pub base_url: Option<String>,
    /// The IO service's API key (`Ocp-Apim-Subscription-Key`); empty or absent keeps the stored one.
    #[serde(default)]
    #[schema(max_length = 200)]
    pub api_key: Option<String>,
}

/// One message of the log. The fiscal code is masked (`RSSMRA*********S`), blank after 30 days.
#[derive(Debug, Serialize, ToSchema)]
pub struct AppioMessageView {
    pub id: String,
    /// `booked`, `moved`, `cancelled`, `reminder`, `convocation`.
    pub kind: String,
    /// `queued`, `sent`, `refused` (not on IO, or the service turned off), `failed`, `cancelled`.
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub subject: String,
    pub fiscal_code: String,
    /// Unix seconds.
    pub created_at: i64,
    pub updated_at: i64,
    /// While queued: when it is tried (again).
    pub next_attempt_at: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Convocation {
    /// Messages queued: one per member with a fiscal code.
    pub queued: usize,
    /// Members without a fiscal code (display names): they get no message; set their code in the
    /// users' administration.
    pub without_fiscal_code: Vec<String>,
}

/// `RSSMRA*********S` from a whole or already masked code; anything else shows nothing.
fn masked(code: &str) -> String {
    let chars: Vec<char> = code.chars().collect();
    if chars.len() != 16 {
        return String::new();
    }
    format!("{}*********{}", chars[..6].iter().collect::<String>(), chars[15])
}

impl From<AppioMessage> for AppioMessageView {
    fn from(m: AppioMessage) -> Self {
        AppioMessageView {
            fiscal_code: masked(&m.fiscal_code),
            id: m.id,
            kind: m.kind.to_string(),
            status: m.status.to_string(),
            attempts: m.attempts,
            last_error: m.last_error,
            subject: m.subject,
            created_at: m.created_at,
            updated_at: m.updated_at,
            next_attempt_at: m.next_attempt_at,
        }
    }
}

fn view(settings: &AppioSettings) -> AppioView {
    AppioView {
        enabled: settings.enabled,
        base_url: settings.base_url.clone(),
        api_key_set: settings.api_key.is_some(),
    }
}

fn appio_error(error: AppioError) -> ApiError {
    match error {
        AppioError::Disabled => ApiError::conflict(
            "appio_disabled",
            (
                "Le notifiche su app IO non sono attive: attivale nell'amministrazione con la chiave del servizio IO.",
                "App IO notifications are off: turn them on in the administration with the IO service's key.",
            ),
        ),
        AppioError::NotFound => ApiError::NotFound,
        AppioError::Store(error) => error.into(),
    }
}

// --- handlers -----------------------------------------------------------------------------------

/// Whether the booking form offers App IO notifications.
#[utoipa::path(get, path = "/api/public/appio", tag = "appio", responses((status = 200, body = PublicAppio)))]
async fn public_state(State(state): State<AppState>) -> Result<Json<PublicAppio>, ApiError> {
    Ok(Json(PublicAppio { enabled: AppioSettings::load(&state.store).await?.active() }))
}

/// The citizen turns App IO off for this booking: the fiscal code is forgotten and what is still
/// queued is withdrawn; emails go on.
#[utoipa::path(post, path = "/api/public/appointments/{code}/appio-off", tag = "appio",
    params(("code" = String, Path), ("X-Booking-Secret" = Option<String>, Header,
        description = "The booking's secret, or `secret` in the body; missing or wrong: 404, as for an unknown code")),
    request_body(content = Option<SecretBody>, description = "Optional: the secret may come in the header instead"),
    responses((status = 200, body = BookingOut), (status = 404, body = ErrorBody)))]
async fn opt_out(
    State(state): State<AppState>,
    Path(code): Path<String>,
    headers: HeaderMap,
    body: Result<Json<Option<serde_json::Map<String, serde_json::Value>>>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<BookingOut>, ApiError> {
    async move {
        // As for a cancel: the body is optional; one that is there must be a `SecretBody` object
        // (read through a map: a derived struct would also take a JSON array).
        let body = match body {
            Ok(Json(None)) => None,
            Ok(Json(Some(map))) => {
                serde_json::from_value::<SecretBody>(serde_json::Value::Object(map))
                    .map_err(|e| {
                        ApiError::bad_request(
                            "invalid_body",
                            (format!("Richiesta non valida: {e}"), format!("Invalid request: {e}")),
                        )
                    })?
                    .secret
            }
            Err(axum::extract::rejection::JsonRejection::MissingJsonContentType(_)) => None,
            Err(e) => return Err(e.into()),
        };
        let secret = super::public::header_secret(&headers).or(body);
        let appt = super::public::authorised(&state, &code, secret.as_deref()).await?;
        let now = state.clock.now();
        let withdrawn = state.store.appio_opt_out(&appt.id, now).await?;
        tracing::info!(appointment = %appt.id, withdrawn, "App IO turned off by the citizen");
        let (office, service, services) = super::public::context(&state, &appt).await?;
        Ok(Json(super::public::booking_out(&state, &appt, &office, &service, &services, now)))
    }
    .instrument(tracing::info_span!("public_appio_off"))
    .await
}

#[utoipa::path(get, path = "/api/admin/appio", tag = "appio", responses((status = 200, body = AppioView)))]
async fn get_settings(State(state): State<AppState>, staff: Staff) -> Result<Json<AppioView>, ApiError> {
    staff.require(&[StaffRole::Admin])?;
    Ok(Json(view(&AppioSettings::load(&state.store).await?)))
}

/// Turns App IO on or off, sets IO's address and the API key (write-only).
#[utoipa::path(put, path = "/api/admin/appio", tag = "appio", request_body = AppioBody,
    responses((status = 200, body = AppioView),
        (status = 400, description = "`invalid_base_url`, `invalid_api_key`, or `api_key_required` to enable without a key",
            body = ErrorBody)))]
#[tracing::instrument(skip_all, fields(user = %staff.user.id))]
async fn put_settings(
    State(state): State<AppState>,
    staff: Staff,
    body: Result<Json<AppioBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<AppioView>, ApiError> {
    staff.require(&[StaffRole::Admin])?;
    let Json(body) = body?;
    let current = AppioSettings::load(&state.store).await?;
    let base_url = match body.base_url.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
        None => current.base_url.clone(),
        Some(url) => io::valid_base_url(url).filter(|u| u.chars().count() <= 500).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_base_url",
                (
                    "Indirizzo di IO non valido: serve un indirizzo https:// (http:// solo verso questo stesso computer).",
                    "Invalid IO address: an https:// address is needed (http:// only to this same computer).",
                ),
            )
        })?,
    };
    let api_key = body.api_key.as_deref().map(str::trim).filter(|k| !k.is_empty());
    if let Some(key) = api_key
        && (key.len() > API_KEY_MAX || !key.bytes().all(|b| b.is_ascii_graphic()))
    {
        return Err(ApiError::bad_request(
            "invalid_api_key",
            (
                "Chiave API non valida: copiala dal back office di IO, senza spazi.",
                "Invalid API key: copy it from IO's back office, without spaces.",
            ),
        ));
    }
    if body.enabled && api_key.is_none() && current.api_key.is_none() {
        return Err(ApiError::bad_request(
            "api_key_required",
            (
                "Per attivare le notifiche su app IO serve la chiave API del servizio IO del Comune.",
                "To turn App IO notifications on, the API key of the municipality's IO service is needed.",
            ),
        ));
    }
    AppioSettings::save(&state.store, body.enabled, &base_url, api_key).await?;
    let saved = AppioSettings::load(&state.store).await?;
    tracing::info!(enabled = saved.enabled, key_changed = api_key.is_some(), base_url = %saved.base_url, "App IO settings changed");
    Ok(Json(view(&saved)))
}

/// The newest messages first (at most 200), fiscal codes masked.
#[utoipa::path(get, path = "/api/admin/appio/messages", tag = "appio",
    responses((status = 200, body = [AppioMessageView])))]
async fn messages(State(state): State<AppState>, staff: Staff) -> Result<Json<Vec<AppioMessageView>>, ApiError> {
    staff.require(&[StaffRole::Admin])?;
    Ok(Json(state.store.recent_appio_messages(LOG_ROWS).await?.into_iter().map(AppioMessageView::from).collect()))
}

/// Queues the session's convocation in App IO for every member with a fiscal code: the date and
/// time, the agenda, and a button to the session. Administrators and the session's chair.
#[utoipa::path(post, path = "/api/council/sessions/{id}/convocation", tag = "appio",
    params(("id" = String, Path, description = "Council session id")),
    responses((status = 200, body = Convocation), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "`appio_disabled`: App IO is off", body = ErrorBody)))]
#[tracing::instrument(skip_all, fields(user = %staff.user.id, session = %id))]
async fn convocation(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
) -> Result<Json<Convocation>, ApiError> {
    // As `council`'s own checks: sessions one may not see are 404, changes the chair's and admins'.
    let session = state.store.council_session(&id).await?.ok_or(ApiError::NotFound)?;
    let member = state.store.council_members(&id).await?.contains(&staff.user.id);
    if !staff.is_admin() && !member && session.chair_id != staff.user.id {
        return Err(ApiError::NotFound);
    }
    if !staff.is_admin() && session.chair_id != staff.user.id {
        return Err(ApiError::Forbidden);
    }
    let convened = io::convene(&state.back_office, &id, state.clock.now()).await.map_err(appio_error)?;
    Ok(Json(Convocation { queued: convened.queued, without_fiscal_code: convened.without_fiscal_code }))
}

#[cfg(test)]
mod tests {
    use super::masked;

    #[test]
    fn the_log_never_shows_a_whole_code() {
        assert_eq!(masked("RSSMRA85T10A562S"), "RSSMRA*********S");
        assert_eq!(masked("RSSMRA*********S"), "RSSMRA*********S");
        assert_eq!(masked(""), "");
        assert_eq!(masked("RSSMRA85T10A562SX"), "");
    }
}
