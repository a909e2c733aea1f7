//! Signing in through OpenID providers (docs/identity.md): the administrator's settings
//! (`/api/admin/identity`), what the login pages offer (`/api/public/login-options`), and the
//! browser's round trip — `/auth/staff/login` and `/auth/citizen/login` send it to the provider,
//! `/auth/oidc/callback` brings it back, `/auth/staff/logout` to the provider's end of session.
//!
//! A login on its way is a row (`oidc_logins`: the hash of its `state`, the PKCE verifier, the
//! nonce, where to return), taken once by the callback on whichever node gets it, ten minutes at
//! most. The browser that started it also holds a cookie naming it (`sportello_oidc`, SameSite=Lax
//! so that the provider's redirect carries it): a callback URL opened in another browser — someone
//! else's code handed to a victim — is refused, so nobody can be logged in as someone else.
//!
//! Refusals send staff to `/staff?sso_error=<code>` and citizens to their page with
//! `login_error=<code>`: `unknown_user`, `inactive`, `provider`, `expired`, `invalid_fiscal_code`;
//! each is logged with its reason, never with a token or a whole fiscal code.

use std::collections::BTreeMap;
use std::net::IpAddr;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use sportello_backoffice::secrets::sha256_hex;
use sportello_backoffice::sign_in::{
    self, CitizenProvider, DirectoryAccount, IdentitySettings, SignInError, StaffProvider, claim_values,
};
use sportello_domain::fiscal_code::FiscalCode;
use sportello_store::{OidcLoginKind, PendingOidcLogin, StaffRole};
use utoipa::{OpenApi, ToSchema};

use super::ApiError;
use super::auth::{Staff, cookie, session_headers};
use super::citizen::{CitizenSession, citizen_cookie};
use super::error::Query;
use crate::oidc::{Provider, VerifiedLogin};
use crate::page::HttpError;
use crate::state::AppState;

/// How long a login may take at the provider (SPID's own pages included).
pub const PENDING_SECS: i64 = 600;
/// The cookie binding a login on its way to the browser that started it.
const BINDING_COOKIE: &str = "sportello_oidc";
/// Where the provider sends the browser back.
pub const CALLBACK_PATH: &str = "/auth/oidc/callback";
/// The eID fiscal number: `TINIT-<codice fiscale>`.
pub const FISCAL_NUMBER_CLAIM: &str = "https://attributes.eid.gov.it/fiscal_number";
const STAFF_HOME: &str = "/staff";
const CITIZEN_HOME: &str = "/prenota";
const STAFF_SCOPES: [&str; 3] = ["openid", "email", "profile"];
const CITIZEN_SCOPES: [&str; 3] = ["openid", "profile", "email"];
const DEFAULT_STAFF_LABEL: &str = "Account del Comune";
const DEFAULT_CITIZEN_LABEL: &str = "SPID o CIE";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/identity", get(get_identity).put(put_identity))
        .route("/public/login-options", get(login_options))
}

/// The browser's side: pages, not `/api` (redirects, no JSON).
pub fn page_routes() -> Router<AppState> {
    Router::new()
        .route("/auth/staff/login", get(staff_login))
        .route("/auth/citizen/login", get(citizen_login))
        .route(CALLBACK_PATH, get(callback))
        .route("/auth/staff/logout", get(staff_logout))
}

#[derive(OpenApi)]
#[openapi(
    paths(get_identity, put_identity, login_options),
    components(schemas(
        IdentityView,
        StaffOidcView,
        CitizenOidcView,
        IdentityBody,
        StaffOidcBody,
        CitizenOidcBody,
        LoginOptions,
        LoginLabel
    ))
)]
struct IdentityApi;

/// This module's part of `/api/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    IdentityApi::openapi()
}

// --- administrator's settings ------------------------------------------------------------------

/// How staff and citizens sign in. Secrets are never shown: `client_secret_set` says whether one is
/// stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct IdentityView {
    /// Whether staff may log in with a password (administrators always may).
    pub local_passwords: bool,
    pub staff_oidc: Option<StaffOidcView>,
    pub citizen_oidc: Option<CitizenOidcView>,
    /// What to register at the provider as the redirect URI: `<public_url>/auth/oidc/callback`.
    pub redirect_uri: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StaffOidcView {
    pub issuer: String,
    pub client_id: String,
    pub client_secret_set: bool,
    pub label: String,
    pub role_claim: String,
    pub admin_values: Vec<String>,
    pub official_values: Vec<String>,
    pub councillor_values: Vec<String>,
    pub offices_claim: String,
    /// Claim value → office id.
    pub office_map: BTreeMap<String, String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CitizenOidcView {
    pub issuer: String,
    pub client_id: String,
    pub client_secret_set: bool,
    pub label: String,
}

/// The settings as the administrator saves them. `null` for a provider removes it.
#[derive(Debug, Deserialize, ToSchema)]
pub struct IdentityBody {
    pub local_passwords: bool,
    pub staff_oidc: Option<StaffOidcBody>,
    pub citizen_oidc: Option<CitizenOidcBody>,
}

/// The staff directory (Keycloak, Entra ID, Google …).
#[derive(Debug, Deserialize, ToSchema)]
pub struct StaffOidcBody {
    /// `https://…` (plain `http://` only on a loopback address), exactly as the provider's
    /// discovery document writes it.
    #[schema(max_length = 500)]
    pub issuer: String,
    #[schema(min_length = 1, max_length = 255)]
    pub client_id: String,
    /// Write-only: left out or empty keeps the stored one.
    #[serde(default)]
    #[schema(max_length = 1000)]
    pub client_secret: Option<String>,
    /// The login button's words («Accedi con …»); empty: «Account del Comune».
    #[serde(default)]
    #[schema(max_length = 80)]
    pub label: String,
    /// The claim with groups or roles: `groups`, `roles`, `realm_access.roles` …
    #[schema(min_length = 1, max_length = 200)]
    pub role_claim: String,
    #[serde(default)]
    pub admin_values: Vec<String>,
    #[serde(default)]
    pub official_values: Vec<String>,
    #[serde(default)]
    pub councillor_values: Vec<String>,
    /// The claim naming offices; empty: offices stay the administrator's to assign.
    #[serde(default)]
    #[schema(max_length = 200)]
    pub offices_claim: String,
    /// Claim value → office id (each an existing office).
    #[serde(default)]
    pub office_map: BTreeMap<String, String>,
}

/// The citizens' SPID/CIE gateway (IAM Proxy Italia or another OIDC proxy).
#[derive(Debug, Deserialize, ToSchema)]
pub struct CitizenOidcBody {
    #[schema(max_length = 500)]
    pub issuer: String,
    #[schema(min_length = 1, max_length = 255)]
    pub client_id: String,
    /// Write-only: left out or empty keeps the stored one.
    #[serde(default)]
    #[schema(max_length = 1000)]
    pub client_secret: Option<String>,
    /// The login button's words; empty: «SPID o CIE».
    #[serde(default)]
    #[schema(max_length = 80)]
    pub label: String,
}

fn redirect_uri(state: &AppState) -> String {
    format!("{}{CALLBACK_PATH}", state.config.public_url.trim_end_matches('/'))
}

fn view(state: &AppState, settings: &IdentitySettings) -> IdentityView {
    IdentityView {
        local_passwords: settings.local_passwords,
        staff_oidc: settings.staff.as_ref().map(|s| StaffOidcView {
            issuer: s.issuer.clone(),
            client_id: s.client_id.clone(),
            client_secret_set: !s.client_secret.is_empty(),
            label: s.label.clone(),
            role_claim: s.role_claim.clone(),
            admin_values: s.admin_values.clone(),
            official_values: s.official_values.clone(),
            councillor_values: s.councillor_values.clone(),
            offices_claim: s.offices_claim.clone(),
            office_map: s.office_map.clone(),
        }),
        citizen_oidc: settings.citizen.as_ref().map(|c| CitizenOidcView {
            issuer: c.issuer.clone(),
            client_id: c.client_id.clone(),
            client_secret_set: !c.client_secret.is_empty(),
            label: c.label.clone(),
        }),
        redirect_uri: redirect_uri(state),
    }
}

/// The sign-in settings (administrators).
#[utoipa::path(get, path = "/api/admin/identity", tag = "admin", responses((status = 200, body = IdentityView)))]
pub async fn get_identity(State(state): State<AppState>, staff: Staff) -> Result<Json<IdentityView>, ApiError> {
    staff.require(&[StaffRole::Admin])?;
    Ok(Json(view(&state, &IdentitySettings::load(&state.store).await?)))
}

/// Saves the sign-in settings; a provider's secret left out is kept. Discovery is not tried here:
/// a wrong issuer shows at the first login (`sso_error=provider`, with the reason in the log).
#[utoipa::path(put, path = "/api/admin/identity", tag = "admin", request_body = IdentityBody,
    responses((status = 200, body = IdentityView),
        (status = 400, description = "`invalid_issuer`, `invalid_field` or `unknown_office`", body = super::error::ErrorBody)))]
#[tracing::instrument(skip_all, fields(user = %staff.user.id))]
pub async fn put_identity(
    State(state): State<AppState>,
    staff: Staff,
    body: Result<Json<IdentityBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<IdentityView>, ApiError> {
    staff.require(&[StaffRole::Admin])?;
    let Json(body) = body?;
    let stored = IdentitySettings::load(&state.store).await?;
    let staff_provider = match &body.staff_oidc {
        Some(given) => Some(staff_provider(&state, given, stored.staff.as_ref()).await?),
        None => None,
    };
    let citizen_provider = match &body.citizen_oidc {
        Some(given) => Some(citizen_provider(given, stored.citizen.as_ref())?),
        None => None,
    };
    let settings =
        IdentitySettings { local_passwords: body.local_passwords, staff: staff_provider, citizen: citizen_provider };
    settings.save(&state.store).await?;
    tracing::info!(
        local_passwords = settings.local_passwords,
        staff_sso = settings.staff.as_ref().map(|s| s.issuer.as_str()),
        citizen_login = settings.citizen.as_ref().map(|c| c.issuer.as_str()),
        "sign-in settings saved"
    );
    Ok(Json(view(&state, &settings)))
}

fn invalid_field(field: &str) -> ApiError {
    ApiError::bad_request(
        "invalid_field",
        (
            format!("Il campo «{field}» è obbligatorio o non valido (troppo lungo o con caratteri di controllo)."),
            format!("The field «{field}» is required or invalid (too long or with control characters)."),
        ),
    )
}

/// Trimmed text of at most `max` characters, no control characters; `required`: not empty.
fn field(name: &str, value: &str, max: usize, required: bool) -> Result<String, ApiError> {
    let value = value.trim();
    if (required && value.is_empty()) || value.chars().count() > max || value.chars().any(char::is_control) {
        return Err(invalid_field(name));
    }
    Ok(value.to_owned())
}

fn values(name: &str, given: &[String]) -> Result<Vec<String>, ApiError> {
    if given.len() > 100 {
        return Err(invalid_field(name));
    }
    let mut out = Vec::new();
    for value in given {
        let value = field(name, value, 200, true)?;
        if !out.contains(&value) {
            out.push(value);
        }
    }
    Ok(out)
}

/// `https://…`, or `http://` on a loopback address (a provider on the same machine, tests); no
/// credentials, query or fragment.
fn issuer(given: &str) -> Result<String, ApiError> {
    let given = given.trim();
    let ok = given.chars().count() <= 500
        && url::Url::parse(given).is_ok_and(|u| {
            let loopback = match u.host() {
                Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
                Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
                Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
                None => false,
            };
            (u.scheme() == "https" || (u.scheme() == "http" && loopback))
                && u.has_host()
                && u.username().is_empty()
                && u.password().is_none()
                && u.query().is_none()
                && u.fragment().is_none()
        });
    if !ok {
        return Err(ApiError::bad_request(
            "invalid_issuer",
            (
                "L'emittente (issuer) deve essere un indirizzo https:// (http:// solo su un indirizzo di loopback), senza credenziali né parametri.",
                "The issuer must be an https:// address (http:// only on a loopback address), without credentials or parameters.",
            ),
        ));
    }
    Ok(given.to_owned())
}

/// The given secret, else the stored one.
fn secret(given: Option<&str>, stored: Option<&str>) -> Result<String, ApiError> {
    match given.map(str::trim).filter(|s| !s.is_empty()) {
        Some(secret) if secret.chars().count() > 1000 || secret.chars().any(char::is_control) => {
            Err(invalid_field("client_secret"))
        }
        Some(secret) => Ok(secret.to_owned()),
        None => Ok(stored.unwrap_or_default().to_owned()),
    }
}

async fn staff_provider(
    state: &AppState,
    given: &StaffOidcBody,
    stored: Option<&StaffProvider>,
) -> Result<StaffProvider, ApiError> {
    if given.office_map.len() > 500 {
        return Err(invalid_field("office_map"));
    }
    let offices: Vec<String> = state.store.offices().await?.into_iter().map(|o| o.id).collect();
    let mut office_map = BTreeMap::new();
    for (value, office) in &given.office_map {
        let value = field("office_map", value, 200, true)?;
        let office = office.trim();
        if !offices.iter().any(|o| o == office) {
            return Err(ApiError::bad_request(
                "unknown_office",
                (format!("Ufficio sconosciuto: {office}."), format!("Unknown office: {office}.")),
            ));
        }
        office_map.insert(value, office.to_owned());
    }
    Ok(StaffProvider {
        issuer: issuer(&given.issuer)?,
        client_id: field("client_id", &given.client_id, 255, true)?,
        client_secret: secret(given.client_secret.as_deref(), stored.map(|s| s.client_secret.as_str()))?,
        label: field("label", &given.label, 80, false)?,
        role_claim: field("role_claim", &given.role_claim, 200, true)?,
        admin_values: values("admin_values", &given.admin_values)?,
        official_values: values("official_values", &given.official_values)?,
        councillor_values: values("councillor_values", &given.councillor_values)?,
        offices_claim: field("offices_claim", &given.offices_claim, 200, false)?,
        office_map,
    })
}

fn citizen_provider(given: &CitizenOidcBody, stored: Option<&CitizenProvider>) -> Result<CitizenProvider, ApiError> {
    Ok(CitizenProvider {
        issuer: issuer(&given.issuer)?,
        client_id: field("client_id", &given.client_id, 255, true)?,
        client_secret: secret(given.client_secret.as_deref(), stored.map(|c| c.client_secret.as_str()))?,
        label: field("label", &given.label, 80, false)?,
    })
}

// --- what the login pages offer ----------------------------------------------------------------

#[derive(Debug, Serialize, ToSchema)]
pub struct LoginLabel {
    /// The button's words: «Accedi con <label>».
    pub label: String,
}

/// The ways in the login pages show.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoginOptions {
    /// Staff single sign-on (`/auth/staff/login`), when configured.
    pub staff_sso: Option<LoginLabel>,
    /// Whether the staff page shows the password form (administrators may use it regardless).
    pub local_passwords: bool,
    /// Citizens' SPID/CIE login (`/auth/citizen/login`), when configured.
    pub citizen_login: Option<LoginLabel>,
}

/// How one may sign in (no account needed).
#[utoipa::path(get, path = "/api/public/login-options", tag = "public", responses((status = 200, body = LoginOptions)))]
pub async fn login_options(State(state): State<AppState>) -> Result<Json<LoginOptions>, ApiError> {
    let settings = IdentitySettings::load(&state.store).await?;
    let label = |given: &str, default: &str| LoginLabel {
        label: if given.is_empty() { default.to_owned() } else { given.to_owned() },
    };
    Ok(Json(LoginOptions {
        staff_sso: settings.staff.as_ref().map(|s| label(&s.label, DEFAULT_STAFF_LABEL)),
        local_passwords: settings.local_passwords,
        citizen_login: settings.citizen.as_ref().map(|c| label(&c.label, DEFAULT_CITIZEN_LABEL)),
    }))
}

// --- the browser's round trip ------------------------------------------------------------------

/// A refusal: the code the page shows, and why (for the log).
struct Refused {
    code: &'static str,
    reason: String,
}

fn refused(code: &'static str, reason: impl Into<String>) -> Refused {
    Refused { code, reason: reason.into() }
}

#[derive(Debug, Deserialize)]
pub struct ReturnTo {
    #[serde(rename = "return")]
    to: Option<String>,
}

/// A path of this site to return to (`default` for anything else: another host, `//host`,
/// backslashes, control characters, a fragment).
fn return_path(given: Option<&str>, default: &'static str) -> String {
    match given.map(str::trim) {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && path.len() <= 512
                && !path.contains(['\\', '#'])
                && !path.chars().any(|c| c.is_control() || c.is_whitespace()) =>
        {
            path.to_owned()
        }
        _ => default.to_owned(),
    }
}

/// `path` with `name=code` added to its query.
fn with_param(path: &str, name: &str, code: &str) -> String {
    let separator = if path.contains('?') { '&' } else { '?' };
    format!("{path}{separator}{name}={code}")
}

fn secure(state: &AppState) -> &'static str {
    if state.config.public_url.starts_with("https://") { "; Secure" } else { "" }
}

fn binding_cookie(state: &AppState, value: &str, max_age: i64) -> Option<HeaderValue> {
    let secure = secure(state);
    HeaderValue::from_str(&format!(
        "{BINDING_COOKIE}={value}; HttpOnly; SameSite=Lax; Path={CALLBACK_PATH}; Max-Age={max_age}{secure}"
    ))
    .ok()
}

/// A 302 to `location` (never cached), with `headers` (cookies).
fn redirect(location: &str, mut headers: HeaderMap) -> Response {
    match HeaderValue::from_str(location) {
        Ok(value) => {
            headers.insert(header::LOCATION, value);
        }
        Err(_) => {
            headers.insert(header::LOCATION, HeaderValue::from_static("/"));
        }
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    (StatusCode::FOUND, headers).into_response()
}

fn staff_refusal(refusal: Refused, headers: HeaderMap) -> Response {
    tracing::info!(code = refusal.code, reason = %refusal.reason, "staff sign-in refused");
    redirect(&with_param(STAFF_HOME, "sso_error", refusal.code), headers)
}

fn citizen_refusal(refusal: Refused, return_to: &str, headers: HeaderMap) -> Response {
    tracing::info!(code = refusal.code, reason = %refusal.reason, "citizen sign-in refused");
    redirect(&with_param(return_to, "login_error", refusal.code), headers)
}

/// `GET /auth/staff/login?return=<path>`: to the staff directory.
#[tracing::instrument(skip_all)]
pub async fn staff_login(State(state): State<AppState>, Query(query): Query<ReturnTo>) -> Result<Response, HttpError> {
    let settings = IdentitySettings::load(&state.store).await.map_err(internal)?;
    let Some(provider) = settings.staff else {
        return Ok(staff_refusal(refused("provider", "staff single sign-on is not configured"), HeaderMap::new()));
    };
    let return_to = return_path(query.to.as_deref(), STAFF_HOME);
    let provider =
        Provider { issuer: &provider.issuer, client_id: &provider.client_id, client_secret: &provider.client_secret };
    match start(&state, provider, OidcLoginKind::Staff, &STAFF_SCOPES, return_to).await {
        Ok(response) => Ok(response),
        Err(Start::Refused(refusal)) => Ok(staff_refusal(refusal, HeaderMap::new())),
        Err(Start::Internal(error)) => Err(error),
    }
}

/// `GET /auth/citizen/login?return=<path>`: to the SPID/CIE gateway.
#[tracing::instrument(skip_all)]
pub async fn citizen_login(
    State(state): State<AppState>,
    Query(query): Query<ReturnTo>,
) -> Result<Response, HttpError> {
    let settings = IdentitySettings::load(&state.store).await.map_err(internal)?;
    let return_to = return_path(query.to.as_deref(), CITIZEN_HOME);
    let Some(provider) = settings.citizen else {
        return Ok(citizen_refusal(
            refused("provider", "citizen login is not configured"),
            &return_to,
            HeaderMap::new(),
        ));
    };
    let provider =
        Provider { issuer: &provider.issuer, client_id: &provider.client_id, client_secret: &provider.client_secret };
    match start(&state, provider, OidcLoginKind::Citizen, &CITIZEN_SCOPES, return_to.clone()).await {
        Ok(response) => Ok(response),
        Err(Start::Refused(refusal)) => Ok(citizen_refusal(refusal, &return_to, HeaderMap::new())),
        Err(Start::Internal(error)) => Err(error),
    }
}

enum Start {
    Refused(Refused),
    Internal(HttpError),
}

fn internal(error: impl std::fmt::Display) -> HttpError {
    HttpError::Internal(error.to_string())
}

/// The authorization request: the pending row, the binding cookie, the redirect.
async fn start(
    state: &AppState,
    provider: Provider<'_>,
    kind: OidcLoginKind,
    scopes: &[&str],
    return_path: String,
) -> Result<Response, Start> {
    let authorization = state
        .oidc
        .authorize(provider, &redirect_uri(state), scopes)
        .await
        .map_err(|e| Start::Refused(refused("provider", e.to_string())))?;
    let now = state.clock.now();
    let pending = PendingOidcLogin {
        kind,
        pkce_verifier: authorization.pkce_verifier,
        nonce: authorization.nonce,
        return_path,
        expires_at: now + PENDING_SECS,
    };
    state
        .store
        .create_oidc_login(&sha256_hex(&authorization.state), &pending, now)
        .await
        .map_err(|e| Start::Internal(internal(e)))?;
    let mut headers = HeaderMap::new();
    if let Some(cookie) = binding_cookie(state, &format!("{kind}.{}", authorization.state), PENDING_SECS) {
        headers.insert(header::SET_COOKIE, cookie);
    }
    tracing::info!(%kind, issuer = provider.issuer, "sign-in sent to the provider");
    Ok(redirect(authorization.url.as_str(), headers))
}

#[derive(Debug, Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    /// The provider's refusal (`access_denied` when the person cancelled …).
    error: Option<String>,
}

/// `GET /auth/oidc/callback?code&state` (or `?error&state`): the provider's answer.
#[tracing::instrument(skip_all)]
pub async fn callback(
    State(state): State<AppState>,
    request_headers: HeaderMap,
    Query(query): Query<CallbackQuery>,
) -> Result<Response, HttpError> {
    let mut headers = HeaderMap::new();
    let binding = cookie(&request_headers, BINDING_COOKIE).and_then(|v| v.split_once('.'));
    // Without a row the kind is the cookie's guess: a citizen whose login expired goes back to
    // the booking page, not to the staff's.
    let guessed_kind = binding.and_then(|(kind, _)| kind.parse::<OidcLoginKind>().ok()).unwrap_or(OidcLoginKind::Staff);
    let refuse_unknown = |refusal: Refused, headers: HeaderMap| match guessed_kind {
        OidcLoginKind::Staff => staff_refusal(refusal, headers),
        OidcLoginKind::Citizen => citizen_refusal(refusal, CITIZEN_HOME, headers),
    };
    let Some(login_state) = query.state.as_deref().filter(|s| !s.is_empty() && s.len() <= 512) else {
        return Ok(refuse_unknown(refused("expired", "callback without state"), headers));
    };
    if binding.map(|(_, bound)| bound) != Some(login_state) {
        // Not this browser's login (someone else's callback URL, a tampered state): refused, and
        // the login this browser may have on its way is left alone.
        return Ok(refuse_unknown(refused("expired", "the state is not this browser's login"), headers));
    }
    // This browser's login: its binding cookie goes, whatever happens next.
    if let Some(clear) = binding_cookie(&state, "", 0) {
        headers.insert(header::SET_COOKIE, clear);
    }
    let now = state.clock.now();
    let Some(pending) = state.store.take_oidc_login(&sha256_hex(login_state), now).await.map_err(internal)? else {
        return Ok(refuse_unknown(refused("expired", "unknown, used or expired state"), headers));
    };
    let refuse = |refusal: Refused, headers: HeaderMap| match pending.kind {
        OidcLoginKind::Staff => staff_refusal(refusal, headers),
        OidcLoginKind::Citizen => citizen_refusal(refusal, &pending.return_path, headers),
    };
    if let Some(error) = &query.error {
        // The provider's code only (a short token of ASCII), never its free text.
        let error: String = error.chars().filter(|c| c.is_ascii_graphic()).take(64).collect();
        return Ok(refuse(refused("provider", format!("the provider answered {error}")), headers));
    }
    let Some(code) = query.code.as_deref().filter(|c| !c.is_empty()) else {
        return Ok(refuse(refused("provider", "callback without code"), headers));
    };
    let settings = IdentitySettings::load(&state.store).await.map_err(internal)?;
    match pending.kind {
        OidcLoginKind::Staff => {
            let Some(provider) = settings.staff else {
                return Ok(refuse(refused("provider", "staff single sign-on was switched off meanwhile"), headers));
            };
            let login =
                match finish(&state, &provider.issuer, &provider.client_id, &provider.client_secret, code, &pending)
                    .await
                {
                    Ok(login) => login,
                    Err(refusal) => return Ok(refuse(refusal, headers)),
                };
            staff_signed_in(&state, &provider, &login, &pending.return_path, headers).await
        }
        OidcLoginKind::Citizen => {
            let Some(provider) = settings.citizen else {
                return Ok(refuse(refused("provider", "citizen login was switched off meanwhile"), headers));
            };
            let login =
                match finish(&state, &provider.issuer, &provider.client_id, &provider.client_secret, code, &pending)
                    .await
                {
                    Ok(login) => login,
                    Err(refusal) => return Ok(refuse(refusal, headers)),
                };
            citizen_signed_in(&state, &login, &pending.return_path, headers)
        }
    }
}

async fn finish(
    state: &AppState,
    issuer: &str,
    client_id: &str,
    client_secret: &str,
    code: &str,
    pending: &PendingOidcLogin,
) -> Result<VerifiedLogin, Refused> {
    let provider = Provider { issuer, client_id, client_secret };
    state
        .oidc
        .finish(provider, &redirect_uri(state), code, &pending.pkce_verifier, &pending.nonce)
        .await
        .map_err(|e| refused("provider", e.to_string()))
}

/// The directory vouched for someone: their account, role and offices, then a staff session.
async fn staff_signed_in(
    state: &AppState,
    provider: &StaffProvider,
    login: &VerifiedLogin,
    return_path: &str,
    mut headers: HeaderMap,
) -> Result<Response, HttpError> {
    let display_name = login.text("name").map(str::to_owned).or_else(|| {
        let name = [login.text("given_name"), login.text("family_name")].into_iter().flatten().collect::<Vec<_>>();
        (!name.is_empty()).then(|| name.join(" "))
    });
    let account = DirectoryAccount {
        issuer: login.issuer.clone(),
        subject: login.subject.clone(),
        email: login.text("email").map(str::to_owned),
        email_verified: login.email_verified(),
        display_name,
        claims: login.claims.clone(),
    };
    let (user, found) = match sign_in::staff_login(&state.store, provider, &account, state.clock.now()).await {
        Ok(signed_in) => signed_in,
        Err(SignInError::Refused { refusal, reason }) => {
            tracing::info!(issuer = %login.issuer, subject = %login.subject, "directory account refused");
            return Ok(staff_refusal(refused(refusal.code(), reason), headers));
        }
        Err(SignInError::Store(error)) => return Err(internal(error)),
    };
    let session = session_headers(state, &user.id).await.map_err(|e| internal(format!("{e:?}")))?;
    // Beside the binding cookie's removal.
    for value in session.get_all(header::SET_COOKIE) {
        headers.append(header::SET_COOKIE, value.clone());
    }
    tracing::info!(user = %user.id, role = %user.role, ?found, issuer = %login.issuer, "logged in through single sign-on");
    Ok(redirect(return_path, headers))
}

/// The gateway vouched for a citizen: their fiscal code checked, the signed cookie, back to their
/// page. Nothing of them is written to the database here.
fn citizen_signed_in(
    state: &AppState,
    login: &VerifiedLogin,
    return_path: &str,
    mut headers: HeaderMap,
) -> Result<Response, HttpError> {
    let refuse = |refusal: Refused, headers| Ok(citizen_refusal(refusal, return_path, headers));
    let Some(claimed) = claim_values(&login.claims, FISCAL_NUMBER_CLAIM).into_iter().next() else {
        return refuse(refused("provider", "the gateway sent no fiscal number"), headers);
    };
    let fiscal_code = match FiscalCode::parse(&claimed) {
        Ok(code) => code,
        Err(error) => return refuse(refused("invalid_fiscal_code", error.to_string()), headers),
    };
    let key = sign_in::citizen_key(&state.tokens, &fiscal_code).map_err(internal)?;
    let session = CitizenSession {
        given_name: login.text("given_name").unwrap_or_default().to_owned(),
        family_name: login.text("family_name").unwrap_or_default().to_owned(),
        email: login.text("email").map(str::to_owned),
        fiscal_code,
        key,
    };
    let cookie = citizen_cookie(state, &session, state.clock.now()).map_err(|e| internal(format!("{e:?}")))?;
    headers.append(header::SET_COOKIE, cookie);
    tracing::info!(fiscal_code = %session.fiscal_code.masked(), issuer = %login.issuer, "citizen logged in");
    Ok(redirect(return_path, headers))
}

/// `GET /auth/staff/logout`: to the directory's end of session (its `end_session_endpoint`, with
/// our client id and `<public_url>/staff` to come back to), else to `/staff`. The page has ended
/// Sportello's own session first (`POST /api/auth/logout`).
#[tracing::instrument(skip_all)]
pub async fn staff_logout(State(state): State<AppState>) -> Result<Response, HttpError> {
    let settings = IdentitySettings::load(&state.store).await.map_err(internal)?;
    let back = format!("{}{STAFF_HOME}", state.config.public_url.trim_end_matches('/'));
    let Some(provider) = settings.staff else { return Ok(redirect(STAFF_HOME, HeaderMap::new())) };
    let provider =
        Provider { issuer: &provider.issuer, client_id: &provider.client_id, client_secret: &provider.client_secret };
    match state.oidc.end_session_url(provider, &back).await {
        Ok(Some(url)) => Ok(redirect(url.as_str(), HeaderMap::new())),
        Ok(None) => Ok(redirect(STAFF_HOME, HeaderMap::new())),
        Err(error) => {
            tracing::warn!(%error, "the directory's end of session is unknown: back to the staff page");
            Ok(redirect(STAFF_HOME, HeaderMap::new()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_of_this_site_are_returned_to() {
        for (given, expected) in [
            (None, "/staff"),
            (Some("/staff/admin"), "/staff/admin"),
            (Some("/prenota?servizio=x&ufficio=y"), "/prenota?servizio=x&ufficio=y"),
            (Some("https://evil.example/"), "/staff"),
            (Some("//evil.example/x"), "/staff"),
            (Some("/\\evil.example"), "/staff"),
            (Some("/a#frag"), "/staff"),
            (Some("/a b"), "/staff"),
            (Some("/a\nLocation: x"), "/staff"),
            (Some("staff"), "/staff"),
            (Some(""), "/staff"),
        ] {
            assert_eq!(return_path(given, "/staff"), expected, "{given:?}");
        }
        assert_eq!(return_path(Some(&format!("/{}", "a".repeat(600))), "/x"), "/x");
    }

    #[test]
    fn refusal_codes_join_the_query() {
        assert_eq!(with_param("/staff", "sso_error", "inactive"), "/staff?sso_error=inactive");
        assert_eq!(with_param("/prenota?s=1", "login_error", "expired"), "/prenota?s=1&login_error=expired");
    }

    #[test]
    fn issuers_are_https_or_loopback_http() {
        for ok in [
            "https://login.comune.example/realms/sportello",
            "http://127.0.0.1:8080",
            "http://localhost:9000/",
            "http://[::1]:9000",
        ] {
            assert!(issuer(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://login.comune.example",
            "http://10.0.0.1",
            "ftp://login.example",
            "https://user:pw@login.example",
            "https://login.example/?a=b",
            "https://login.example/#x",
            "not a url",
            "",
        ] {
            assert!(issuer(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_secret_left_out_is_kept() {
        assert_eq!(secret(None, Some("old")).unwrap(), "old");
        assert_eq!(secret(Some("  "), Some("old")).unwrap(), "old");
        assert_eq!(secret(Some("new"), Some("old")).unwrap(), "new");
        assert_eq!(secret(None, None).unwrap(), "");
        assert!(secret(Some("a\u{0}b"), None).is_err());
    }
}
