//! Administrators manage webhook endpoints and read their delivery log (`/api/admin/webhooks`).
//! Sending is `backoffice::webhooks`; what an event carries is `store::webhooks`. The secret of an
//! endpoint is shown once, in the answer that creates it.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use sportello_backoffice::webhooks as hooks;
use sportello_store::{NewWebhookEndpoint, StaffRole, WebhookDelivery, WebhookEndpoint, WebhookEventType};
use utoipa::{IntoParams, OpenApi, ToSchema};

use super::ApiError;
use super::auth::Staff;
use super::error::{ErrorBody, Path};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/webhooks", get(list).post(create))
        .route("/admin/webhooks/{id}", axum::routing::put(update).delete(remove))
        .route("/admin/webhooks/{id}/deliveries", get(deliveries))
        .route("/admin/webhook-event-types", get(event_types))
}

#[derive(OpenApi)]
#[openapi(
    paths(list, create, update, remove, deliveries, event_types),
    components(schemas(WebhookBody, WebhookView, CreatedWebhook, DeliveryView, AttemptView)),
    tags((name = "webhooks", description = "Signed webhooks (Standard Webhooks) and their delivery log (administrators)"))
)]
struct WebhooksApi;

/// This module's part of `/api/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    WebhooksApi::openapi()
}

// --- shapes -------------------------------------------------------------------------------------

/// An endpoint as an administrator sets it.
#[derive(Debug, Deserialize, ToSchema)]
pub struct WebhookBody {
    /// Absolute `http://` or `https://` URL that receives the POSTs, without credentials.
    #[schema(max_length = 2000, pattern = "^[Hh][Tt][Tt][Pp][Ss]?://")]
    pub url: String,
    #[serde(default)]
    #[schema(max_length = 200)]
    pub description: String,
    /// Event types to send (see `/api/admin/webhook-event-types`); empty or absent: every type.
    #[serde(default)]
    pub event_types: Vec<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookView {
    pub id: String,
    pub url: String,
    pub description: String,
    /// Empty: every type.
    pub event_types: Vec<String>,
    pub enabled: bool,
    /// RFC 3339.
    pub created_at: String,
}

/// A new endpoint with its signing secret, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedWebhook {
    #[serde(flatten)]
    pub endpoint: WebhookView,
    /// `whsec_<base64>`: the receiver checks `webhook-signature` with it (Standard Webhooks).
    pub secret: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptView {
    pub attempt: i64,
    /// RFC 3339.
    pub at: String,
    /// The receiver's HTTP status; absent when there was no answer.
    pub status_code: Option<i64>,
    /// Why it failed; absent when delivered.
    pub error: Option<String>,
    pub duration_ms: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryView {
    pub id: String,
    /// The `webhook-id` header: the same on every attempt.
    pub event_id: String,
    pub event_type: String,
    /// `pending` (will be tried again), `delivered` or `failed` (given up).
    pub status: String,
    /// RFC 3339; absent once delivered or given up.
    pub next_attempt_at: Option<String>,
    /// RFC 3339.
    pub created_at: String,
    /// Oldest first.
    pub attempts: Vec<AttemptView>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct DeliveriesQuery {
    /// At most this many deliveries, newest first (1–200, default 50).
    pub limit: Option<i64>,
}

fn rfc3339(secs: i64) -> String {
    jiff::Timestamp::from_second(secs).map(|t| t.to_string()).unwrap_or_default()
}

fn view(e: &WebhookEndpoint) -> WebhookView {
    WebhookView {
        id: e.id.clone(),
        url: e.url.clone(),
        description: e.description.clone(),
        event_types: e.event_types.iter().map(|t| t.as_str().to_owned()).collect(),
        enabled: e.enabled,
        created_at: rfc3339(e.created_at),
    }
}

fn delivery_view(d: WebhookDelivery) -> DeliveryView {
    DeliveryView {
        id: d.id,
        event_id: d.event_id,
        event_type: d.event_type,
        status: d.status.as_str().to_owned(),
        next_attempt_at: d.next_attempt_at.map(rfc3339),
        created_at: rfc3339(d.created_at),
        attempts: d
            .attempts
            .into_iter()
            .map(|a| AttemptView {
                attempt: a.attempt,
                at: rfc3339(a.at),
                status_code: a.status_code,
                error: a.error,
                duration_ms: a.duration_ms,
            })
            .collect(),
    }
}

fn admin(staff: &Staff) -> Result<(), ApiError> {
    staff.require(&[StaffRole::Admin])
}

fn endpoint(body: Result<Json<WebhookBody>, JsonRejection>) -> Result<NewWebhookEndpoint, ApiError> {
    let Json(body) = body?;
    let url = (body.url.chars().count() <= 2000).then(|| hooks::valid_url(&body.url)).flatten().ok_or_else(|| {
        ApiError::bad_request(
            "invalid_url",
            (
                "Indirizzo non valido: serve un URL http:// o https:// completo, senza credenziali.",
                "Invalid address: a complete http:// or https:// URL without credentials is needed.",
            ),
        )
    })?;
    let description = body.description.trim().to_owned();
    if description.chars().count() > 200 || description.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "invalid_field",
            (
                "Il campo «descrizione» non è valido (al massimo 200 caratteri).",
                "The field «descrizione» is invalid (at most 200 characters).",
            ),
        ));
    }
    let mut event_types = Vec::new();
    for name in &body.event_types {
        let kind: WebhookEventType = name.parse().map_err(|_| {
            ApiError::bad_request(
                "unknown_event_type",
                (format!("Tipo di evento sconosciuto: {name}."), format!("Unknown event type: {name}.")),
            )
        })?;
        if !event_types.contains(&kind) {
            event_types.push(kind);
        }
    }
    Ok(NewWebhookEndpoint { url, description, event_types, enabled: body.enabled })
}

// --- handlers -----------------------------------------------------------------------------------

#[utoipa::path(get, path = "/api/admin/webhooks", tag = "webhooks",
    responses((status = 200, description = "Every endpoint, without secrets", body = Vec<WebhookView>),
        (status = 401, description = "not logged in", body = ErrorBody),
        (status = 403, description = "not an administrator", body = ErrorBody)))]
pub async fn list(State(state): State<AppState>, staff: Staff) -> Result<Json<Vec<WebhookView>>, ApiError> {
    admin(&staff)?;
    Ok(Json(state.store.webhook_endpoints().await?.iter().map(view).collect()))
}

#[utoipa::path(post, path = "/api/admin/webhooks", tag = "webhooks", request_body = WebhookBody,
    responses((status = 201, description = "Created; the secret is shown this once", body = CreatedWebhook),
        (status = 400, description = "invalid_body, invalid_url, invalid_field, unknown_event_type", body = ErrorBody),
        (status = 401, description = "not logged in", body = ErrorBody),
        (status = 403, description = "not an administrator, or a request from another site", body = ErrorBody)))]
#[tracing::instrument(skip_all, fields(user = %staff.user.id))]
pub async fn create(
    State(state): State<AppState>,
    staff: Staff,
    body: Result<Json<WebhookBody>, JsonRejection>,
) -> Result<(StatusCode, Json<CreatedWebhook>), ApiError> {
    admin(&staff)?;
    let new = endpoint(body)?;
    let secret = hooks::new_secret();
    let created = state.store.create_webhook_endpoint(&new, &secret, state.clock.now()).await?;
    tracing::info!(endpoint = %created.id, "webhook endpoint created");
    Ok((StatusCode::CREATED, Json(CreatedWebhook { endpoint: view(&created), secret })))
}

#[utoipa::path(put, path = "/api/admin/webhooks/{id}", tag = "webhooks", request_body = WebhookBody,
    params(("id" = String, Path, description = "Endpoint id")),
    responses((status = 200, description = "Changed (the secret stays)", body = WebhookView),
        (status = 400, description = "invalid_body, invalid_url, invalid_field, unknown_event_type", body = ErrorBody),
        (status = 401, description = "not logged in", body = ErrorBody),
        (status = 403, description = "not an administrator, or a request from another site", body = ErrorBody),
        (status = 404, description = "no such endpoint", body = ErrorBody)))]
#[tracing::instrument(skip_all, fields(user = %staff.user.id))]
pub async fn update(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
    body: Result<Json<WebhookBody>, JsonRejection>,
) -> Result<Json<WebhookView>, ApiError> {
    admin(&staff)?;
    let update = endpoint(body)?;
    Ok(Json(view(&state.store.update_webhook_endpoint(&id, &update, state.clock.now()).await?)))
}

#[utoipa::path(delete, path = "/api/admin/webhooks/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "Endpoint id")),
    responses((status = 204, description = "Deleted with its deliveries and their log"),
        (status = 401, description = "not logged in", body = ErrorBody),
        (status = 403, description = "not an administrator, or a request from another site", body = ErrorBody),
        (status = 404, description = "no such endpoint", body = ErrorBody)))]
#[tracing::instrument(skip_all, fields(user = %staff.user.id))]
pub async fn remove(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    admin(&staff)?;
    state.store.delete_webhook_endpoint(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/admin/webhooks/{id}/deliveries", tag = "webhooks",
    params(("id" = String, Path, description = "Endpoint id"), DeliveriesQuery),
    responses((status = 200, description = "The delivery log, newest first, each with every attempt", body = Vec<DeliveryView>),
        (status = 400, description = "invalid_limit", body = ErrorBody),
        (status = 401, description = "not logged in", body = ErrorBody),
        (status = 403, description = "not an administrator", body = ErrorBody),
        (status = 404, description = "no such endpoint", body = ErrorBody)))]
pub async fn deliveries(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
    query: Result<Query<DeliveriesQuery>, QueryRejection>,
) -> Result<Json<Vec<DeliveryView>>, ApiError> {
    admin(&staff)?;
    let invalid = || {
        ApiError::bad_request(
            "invalid_limit",
            ("«limit» deve essere un numero da 1 a 200.", "«limit» must be a number from 1 to 200."),
        )
    };
    let Query(query) = query.map_err(|_| invalid())?;
    let limit = query.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(invalid());
    }
    if state.store.webhook_endpoint(&id).await?.is_none() {
        return Err(ApiError::NotFound);
    }
    let log = state.store.webhook_deliveries(&id, limit).await?;
    Ok(Json(log.into_iter().map(delivery_view).collect()))
}

#[utoipa::path(get, path = "/api/admin/webhook-event-types", tag = "webhooks",
    responses((status = 200, description = "Every event type an endpoint can ask for", body = Vec<String>),
        (status = 401, description = "not logged in", body = ErrorBody),
        (status = 403, description = "not an administrator", body = ErrorBody)))]
pub async fn event_types(staff: Staff) -> Result<Json<Vec<&'static str>>, ApiError> {
    admin(&staff)?;
    Ok(Json(WebhookEventType::ALL.iter().map(|t| t.as_str()).collect()))
}
