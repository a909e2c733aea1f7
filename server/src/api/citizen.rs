//! A citizen logged in through the SPID/CIE gateway (docs/identity.md): the signed cookie
//! `sportello_citizen` holding who they are, the [`CitizenSession`] extractor (optional wherever a
//! login only helps, as in booking), their own data and appointments.
//!
//! Nothing of the citizen is stored at login: the cookie (a JWT signed with the server's token key,
//! `typ: "citizen"` so that no other token of ours passes for it, two hours) carries their names,
//! email, fiscal code and `key`; an appointment booked while logged in keeps that key alone
//! (`appointments.citizen_key`, HMAC-SHA256 of the fiscal code under a key derived from the token
//! key: `sportello_backoffice::sign_in::citizen_key`). The cookie is SameSite=Lax: the gateway's
//! redirect, another site's, must carry it to the page it returns to.

use std::convert::Infallible;

use axum::extract::{FromRequestParts, OptionalFromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use sportello_domain::fiscal_code::FiscalCode;
use utoipa::{OpenApi, ToSchema};

use super::ApiError;
use super::auth::cookie;
use crate::state::AppState;

pub const CITIZEN_COOKIE: &str = "sportello_citizen";
/// A login lasts two hours: long enough to book, short on a shared computer.
pub const CITIZEN_SESSION_SECS: i64 = 2 * 3600;
/// The most appointments `/api/citizen/appointments` lists.
const APPOINTMENTS_LISTED: i64 = 100;

/// Who the gateway said the citizen is (as of their login).
#[derive(Debug, Clone)]
pub struct CitizenSession {
    pub given_name: String,
    pub family_name: String,
    pub email: Option<String>,
    pub fiscal_code: FiscalCode,
    /// What their appointments are filed under (`appointments.citizen_key`), lower-case hex.
    pub key: String,
}

#[derive(Serialize, Deserialize)]
struct CitizenClaims {
    /// Always "citizen": staff sessions say "staff", join tokens have none.
    typ: String,
    given_name: String,
    family_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    email: Option<String>,
    fiscal_code: String,
    key: String,
    iat: i64,
    exp: i64,
}

/// The `Set-Cookie` value of a citizen's login.
pub(crate) fn citizen_cookie(state: &AppState, session: &CitizenSession, now: i64) -> Result<HeaderValue, ApiError> {
    let claims = CitizenClaims {
        typ: "citizen".into(),
        given_name: session.given_name.clone(),
        family_name: session.family_name.clone(),
        email: session.email.clone(),
        fiscal_code: session.fiscal_code.as_str().to_owned(),
        key: session.key.clone(),
        iat: now,
        exp: now + CITIZEN_SESSION_SECS,
    };
    let token = state.tokens.sign(&claims).map_err(ApiError::internal)?;
    let secure = if state.config.public_url.starts_with("https://") { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{CITIZEN_COOKIE}={token}; HttpOnly; SameSite=Lax; Path=/; Max-Age={CITIZEN_SESSION_SECS}{secure}"
    ))
    .map_err(ApiError::internal)
}

/// The session in the request's cookie, if valid now.
fn session(parts: &Parts, state: &AppState) -> Option<CitizenSession> {
    let token = cookie(&parts.headers, CITIZEN_COOKIE)?;
    let claims: CitizenClaims = state.tokens.decode(token).ok()?;
    if claims.typ != "citizen" || claims.exp <= state.clock.now() {
        return None;
    }
    Some(CitizenSession {
        given_name: claims.given_name,
        family_name: claims.family_name,
        email: claims.email,
        fiscal_code: FiscalCode::parse(&claims.fiscal_code).ok()?,
        key: claims.key,
    })
}

/// Required: 401 without a valid login.
impl FromRequestParts<AppState> for CitizenSession {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<CitizenSession, ApiError> {
        session(parts, state).ok_or(ApiError::Unauthenticated)
    }
}

/// Optional (`Option<CitizenSession>`): `None` without a valid login, never a refusal — booking
/// without an account works as before.
impl OptionalFromRequestParts<AppState> for CitizenSession {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Option<CitizenSession>, Infallible> {
        Ok(session(parts, state))
    }
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/citizen/me", get(me))
        .route("/citizen/logout", post(logout))
        .route("/citizen/appointments", get(appointments))
}

#[derive(OpenApi)]
#[openapi(
    paths(me, logout, appointments),
    components(schemas(CitizenMe, CitizenAppointmentView)),
    tags((name = "citizen", description = "A citizen logged in through SPID/CIE: who they are, their appointments"))
)]
struct CitizenApi;

/// This module's part of `/api/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    CitizenApi::openapi()
}

/// Who is logged in, for the booking form's requester fields.
#[derive(Debug, Serialize, ToSchema)]
pub struct CitizenMe {
    pub given_name: String,
    pub family_name: String,
    pub email: Option<String>,
    /// The codice fiscale, 16 characters, checked.
    #[schema(min_length = 16, max_length = 16)]
    pub fiscal_code: String,
}

/// The logged-in citizen (from the cookie; nothing is read from the database).
#[utoipa::path(get, path = "/api/citizen/me", tag = "citizen",
    responses((status = 200, body = CitizenMe), (status = 401, body = super::error::ErrorBody)))]
pub async fn me(citizen: CitizenSession) -> Json<CitizenMe> {
    Json(CitizenMe {
        given_name: citizen.given_name,
        family_name: citizen.family_name,
        email: citizen.email,
        fiscal_code: citizen.fiscal_code.into_string(),
    })
}

/// Ends the citizen's login on this browser (the cookie cleared). Without one: still 204.
#[utoipa::path(post, path = "/api/citizen/logout", tag = "citizen", responses((status = 204)))]
pub async fn logout(State(state): State<AppState>) -> Response {
    let secure = if state.config.public_url.starts_with("https://") { "; Secure" } else { "" };
    let mut headers = HeaderMap::new();
    if let Ok(clear) =
        HeaderValue::from_str(&format!("{CITIZEN_COOKIE}=; HttpOnly; SameSite=Lax; Path=/; Max-Age=0{secure}"))
    {
        headers.insert(header::SET_COOKIE, clear);
    }
    (StatusCode::NO_CONTENT, headers).into_response()
}

/// The status of an appointment as the API writes it (`Status`'s names).
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)] // documentation only: the field is `Status`, which the store crate owns
pub enum StatusName {
    Confirmed,
    Cancelled,
    Completed,
    NoShow,
}

/// The mode of an appointment as the API writes it (`Mode`'s names).
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)] // documentation only
pub enum ModeName {
    Video,
    InPerson,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CitizenAppointmentView {
    pub code: String,
    /// RFC 3339, Europe/Rome offset.
    pub start: String,
    pub end: String,
    #[schema(value_type = StatusName)]
    pub status: sportello_store::Status,
    #[schema(value_type = ModeName)]
    pub mode: sportello_store::Mode,
    pub office_name: String,
    pub service_name: String,
}

/// The appointments booked while logged in with this fiscal code, newest first (at most 100).
#[utoipa::path(get, path = "/api/citizen/appointments", tag = "citizen",
    responses((status = 200, body = [CitizenAppointmentView]), (status = 401, body = super::error::ErrorBody)))]
pub async fn appointments(
    State(state): State<AppState>,
    citizen: CitizenSession,
) -> Result<Json<Vec<CitizenAppointmentView>>, ApiError> {
    let listed = state.store.citizen_appointments(&citizen.key, APPOINTMENTS_LISTED).await?;
    Ok(Json(
        listed
            .into_iter()
            .map(|a| CitizenAppointmentView {
                code: a.code,
                start: sportello_backoffice::time::rfc3339(a.starts_at),
                end: sportello_backoffice::time::rfc3339(a.ends_at),
                status: a.status,
                mode: a.mode,
                office_name: a.office_name,
                service_name: a.service_name,
            })
            .collect(),
    ))
}
