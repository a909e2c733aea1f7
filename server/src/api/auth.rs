//! Staff authentication: argon2 passwords, a session JWT in an HttpOnly SameSite=Strict cookie, the
//! [`Staff`] extractor every staff endpoint takes, and one-time setup links (the first administrator,
//! new staff, password resets).
//!
//! Why a JWT in a cookie and still database reads per request: the cookie proves which session it
//! is; the session row says it has not ended (logout deletes it; a password change or a deactivation
//! deletes all of the user's rows), and the user row decides what they may do *now* (role changes
//! apply at once; a session issued before the last password change is void).
//!
//! Logins are limited per client address and per (address, account), and every Argon2 computation
//! waits for one of a few permits (`login_guard.rs`): an anonymous flood can neither exhaust memory
//! nor lock a person out of their account.
//!
//! CSRF: the cookie is SameSite=Strict, and every state-changing request from a browser must come
//! from our own origin (`crate::origin`, a middleware on all of `/api`).
//!
//! Single sign-on (`api/identity.rs`, docs/identity.md) ends in the same session: an account that
//! logs in through the directory may have no password at all. With local passwords switched off
//! (`identity.local_passwords`), a password login or a setup link works for administrators only:
//! the break-glass way in while the directory is down.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use sportello_store::{NewUser, Office, StaffRole, User};

use super::ApiError;
use super::login_guard::{Saturated, run_hashing};
use crate::client_addr::ClientIp;
use crate::state::AppState;
use sportello_backoffice::secrets::{base64_salt, hash_password_blocking, new_secret, sha256_hex};
use sportello_backoffice::sign_in::local_passwords;

pub const SESSION_COOKIE: &str = "sportello_session";
/// A working day and then some; the dashboard re-logs in after that.
pub const SESSION_SECS: i64 = 12 * 3600;
/// Setup links for new staff and resets.
pub const SETUP_LINK_SECS: i64 = 7 * 86_400;
/// Settings key holding the hash of the first-administrator setup secret.
const FIRST_ADMIN_KEY: &str = "setup.first_admin";
pub const MIN_PASSWORD: usize = 10;
pub const MAX_PASSWORD: usize = 256;

#[derive(Serialize, Deserialize)]
struct SessionClaims {
    sub: String,
    /// The `staff_sessions` row this cookie stands for.
    sid: String,
    /// Always "staff": join tokens have no `typ`, so neither kind can pass for the other.
    typ: String,
    iat: i64,
    exp: i64,
}

/// A logged-in, active staff member (the row as of this request).
#[derive(Debug, Clone)]
pub struct Staff {
    pub user: User,
}

impl Staff {
    /// `Forbidden` unless the user has one of `roles` (admins pass every check).
    pub fn require(&self, roles: &[StaffRole]) -> Result<(), ApiError> {
        if self.user.role == StaffRole::Admin || roles.contains(&self.user.role) {
            Ok(())
        } else {
            Err(ApiError::Forbidden)
        }
    }

    pub fn is_admin(&self) -> bool {
        self.user.role == StaffRole::Admin
    }

    /// How audit rows name this user.
    pub fn actor(&self) -> String {
        format!("user:{}", self.user.id)
    }
}

impl FromRequestParts<AppState> for Staff {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Staff, ApiError> {
        let token = session_cookie(&parts.headers).ok_or(ApiError::Unauthenticated)?;
        let claims: SessionClaims = state.tokens.decode(token).map_err(|_| ApiError::Unauthenticated)?;
        let now = state.clock.now();
        if claims.typ != "staff" || claims.exp <= now {
            return Err(ApiError::Unauthenticated);
        }
        if state.store.session_user(&claims.sid, now).await?.as_deref() != Some(claims.sub.as_str()) {
            return Err(ApiError::Unauthenticated);
        }
        let user = state.store.user(&claims.sub).await?.ok_or(ApiError::Unauthenticated)?;
        // No password is no refusal: a directory account has none, and a session row exists
        // only after a login (password or single sign-on).
        if !user.active || claims.iat < user.password_changed_at {
            return Err(ApiError::Unauthenticated);
        }
        tracing::Span::current().record("user", user.id.as_str());
        Ok(Staff { user })
    }
}

fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    cookie(headers, SESSION_COOKIE)
}

/// The value of the request's cookie `name` (the staff session, the citizen's, a login's binding).
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value)
}

pub async fn hash_password(password: &str) -> Result<String, ApiError> {
    let password = password.to_owned();
    run_hashing(move || hash_password_blocking(&password).map_err(ApiError::internal)).await.map_err(busy)?
}

/// Checks a password against a stored hash. A missing hash still costs one verification (against
/// a throwaway hash), so that timing does not tell which emails exist.
async fn password_matches(hash: Option<String>, password: &str) -> Result<bool, ApiError> {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let password = password.to_owned();
    run_hashing(move || {
        let exists = hash.is_some();
        let stored = match hash {
            Some(h) => h,
            None => DUMMY
                .get_or_init(|| {
                    SaltString::from_b64(&base64_salt())
                        .ok()
                        .and_then(|salt| {
                            Argon2::default().hash_password(new_secret().as_bytes(), &salt).ok().map(|h| h.to_string())
                        })
                        .unwrap_or_default()
                })
                .clone(),
        };
        let parsed = PasswordHash::new(&stored).map_err(ApiError::internal)?;
        let verified = Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok();
        Ok(exists && verified)
    })
    .await
    .map_err(busy)?
}

fn busy(_: Saturated) -> ApiError {
    ApiError::Unavailable("password hashing saturated")
}

fn check_password_policy(password: &str) -> Result<(), ApiError> {
    let n = password.chars().count();
    if n < MIN_PASSWORD {
        return Err(ApiError::bad_request(
            "weak_password",
            (
                format!("La password deve avere almeno {MIN_PASSWORD} caratteri."),
                format!("The password must have at least {MIN_PASSWORD} characters."),
            ),
        ));
    }
    if n > MAX_PASSWORD {
        return Err(ApiError::bad_request(
            "invalid_password",
            ("La password è troppo lunga.", "The password is too long."),
        ));
    }
    Ok(())
}

/// A new session row and the cookie that names it (password logins here, single sign-on in
/// `identity.rs`).
pub(crate) async fn session_headers(state: &AppState, user_id: &str) -> Result<HeaderMap, ApiError> {
    let now = state.clock.now();
    let sid = state.store.create_session(user_id, now, now + SESSION_SECS).await?;
    let claims = SessionClaims { sub: user_id.to_owned(), sid, typ: "staff".into(), iat: now, exp: now + SESSION_SECS };
    let token = state.tokens.sign(&claims).map_err(ApiError::internal)?;
    let secure = if state.config.public_url.starts_with("https://") { "; Secure" } else { "" };
    let cookie = format!("{SESSION_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={SESSION_SECS}{secure}");
    let mut headers = HeaderMap::new();
    headers.insert(header::SET_COOKIE, HeaderValue::from_str(&cookie).map_err(ApiError::internal)?);
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(headers)
}

/// A staff member as the API shows them (never the hash).
/// A staff role as the API writes it (`StaffRole`'s names); the schema of the `role` fields.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)] // documentation only: the fields are `StaffRole`, which the store crate owns
pub enum RoleName {
    Admin,
    Official,
    Councillor,
    Chair,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserView {
    pub id: String,
    pub email: String,
    pub display_name: String,
    #[schema(value_type = RoleName)]
    pub role: StaffRole,
    pub active: bool,
    /// False until the user has set a password through their setup link.
    pub has_password: bool,
    /// For App IO convocations; only in the administrators' user list and answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fiscal_code: Option<String>,
}

impl From<&User> for UserView {
    fn from(u: &User) -> UserView {
        UserView {
            id: u.id.clone(),
            email: u.email.clone(),
            display_name: u.display_name.clone(),
            role: u.role,
            active: u.active,
            has_password: u.password_hash.is_some(),
            fiscal_code: None,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OfficeRef {
    pub id: String,
    pub name: String,
}

impl From<&Office> for OfficeRef {
    fn from(o: &Office) -> OfficeRef {
        OfficeRef { id: o.id.clone(), name: o.name.clone() }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Me {
    pub user: UserView,
    /// The offices this user works in (admins manage all of them).
    pub offices: Vec<OfficeRef>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct LoginBody {
    pub email: String,
    pub password: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct PasswordBody {
    pub current_password: String,
    #[schema(min_length = 10, max_length = 256)]
    pub new_password: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct SetupBody {
    /// The secret from the setup link (the part after `#`).
    pub token: String,
    #[schema(min_length = 10, max_length = 256)]
    pub password: String,
    /// First administrator only: their email and name.
    pub email: Option<String>,
    pub display_name: Option<String>,
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/auth/login", post(login))
        .route("/auth/logout", post(logout))
        .route("/auth/me", get(me))
        .route("/auth/password", post(change_password))
        .route("/auth/setup", post(setup))
}

async fn me_of(state: &AppState, user: &User) -> Result<Me, ApiError> {
    let offices = state.store.offices_of_user(&user.id).await?;
    Ok(Me { user: user.into(), offices: offices.iter().map(OfficeRef::from).collect() })
}

/// Log in with email and password; sets the session cookie. Limited per client address and per
/// (address, account) before any hashing (`api::login_guard`): 429 with `Retry-After`; 503 with
/// `Retry-After` while the password hashing is saturated.
#[utoipa::path(post, path = "/api/auth/login", tag = "auth", request_body = LoginBody,
    responses((status = 200, body = Me), (status = 401, body = super::error::ErrorBody),
        (status = 403, description = "`local_login_disabled`: passwords are switched off for staff other than administrators (docs/identity.md)", body = super::error::ErrorBody),
        (status = 429, description = "Too many attempts from this address (`Retry-After`)", body = super::error::ErrorBody),
        (status = 503, description = "Too many logins at once (`Retry-After`)", body = super::error::ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    body: Result<Json<LoginBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body?;
    let email = body.email.trim().to_lowercase();
    let now = state.clock.now();
    let attempt = state.login_guard.admit(ip, &email, now).map_err(|retry| {
        tracing::info!(retry_after = retry.0, "login refused before hashing: too many attempts");
        ApiError::TooManyAttempts { retry_after: retry.0 }
    })?;
    let user = state.store.user_by_email(&email).await?;
    let matches = password_matches(user.as_ref().and_then(|u| u.password_hash.clone()), &body.password).await?;
    let now = state.clock.now();
    let user = match user {
        Some(u) if matches && u.active => u,
        _ => {
            attempt.finish(false, now);
            tracing::info!("login refused");
            return Err(ApiError::InvalidCredentials);
        }
    };
    attempt.finish(true, now);
    // Checked once the password is known to be right: the refusal tells nothing to a guesser.
    if user.role != StaffRole::Admin && !local_passwords(&state.store).await? {
        tracing::info!(user = %user.id, "password login refused: local passwords are switched off");
        return Err(local_login_disabled());
    }
    tracing::info!(user = %user.id, "logged in");
    let headers = session_headers(&state, &user.id).await?;
    Ok((headers, Json(me_of(&state, &user).await?)).into_response())
}

/// Log out: ends the session on the server (a copy of the cookie no longer works) and clears the
/// cookie. Without a valid session there is nothing to end: still 204.
#[utoipa::path(post, path = "/api/auth/logout", tag = "auth", responses((status = 204)))]
pub async fn logout(State(state): State<AppState>, request_headers: HeaderMap) -> Result<Response, ApiError> {
    let session = session_cookie(&request_headers).and_then(|token| state.tokens.decode::<SessionClaims>(token).ok());
    if let Some(claims) = session {
        state.store.delete_session(&claims.sid).await?;
        tracing::info!(user = %claims.sub, "logged out");
    }
    let cookie = format!("{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        headers.insert(header::SET_COOKIE, v);
    }
    Ok((axum::http::StatusCode::NO_CONTENT, headers).into_response())
}

/// The logged-in user and their offices.
#[utoipa::path(get, path = "/api/auth/me", tag = "auth",
    responses((status = 200, body = Me), (status = 401, body = super::error::ErrorBody)))]
pub async fn me(State(state): State<AppState>, staff: Staff) -> Result<Json<Me>, ApiError> {
    Ok(Json(me_of(&state, &staff.user).await?))
}

/// Change one's own password (every session ends, outstanding setup links stop working; this
/// browser gets a fresh session).
#[utoipa::path(post, path = "/api/auth/password", tag = "auth", request_body = PasswordBody,
    responses((status = 204), (status = 400, body = super::error::ErrorBody), (status = 401, body = super::error::ErrorBody)))]
#[tracing::instrument(skip_all, fields(user = %staff.user.id))]
pub async fn change_password(
    State(state): State<AppState>,
    staff: Staff,
    body: Result<Json<PasswordBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body?;
    if !password_matches(staff.user.password_hash.clone(), &body.current_password).await? {
        return Err(ApiError::bad_request(
            "wrong_password",
            ("La password attuale non è corretta.", "The current password is not correct."),
        ));
    }
    check_password_policy(&body.new_password)?;
    let hash = hash_password(&body.new_password).await?;
    state.store.set_password(&staff.user.id, &hash, state.clock.now()).await?;
    let headers = session_headers(&state, &staff.user.id).await?;
    Ok((axum::http::StatusCode::NO_CONTENT, headers).into_response())
}

/// Set a password through a one-time setup link; logs in. For the first administrator the link
/// also creates the account (email and name required).
#[utoipa::path(post, path = "/api/auth/setup", tag = "auth", request_body = SetupBody,
    responses((status = 200, body = Me), (status = 400, body = super::error::ErrorBody),
        (status = 403, description = "`local_login_disabled`: passwords are switched off (the link is used up)", body = super::error::ErrorBody),
        (status = 410, body = super::error::ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn setup(
    State(state): State<AppState>,
    body: Result<Json<SetupBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body?;
    check_password_policy(&body.password)?;
    let now = state.clock.now();
    let token_hash = sha256_hex(body.token.trim());
    let user_id = match state.store.take_setup_token(&token_hash, now).await? {
        Some(user_id) => user_id,
        None => first_admin(&state, &body, &token_hash, now).await?,
    };
    // Passwords switched off: the link is used up, the account keeps signing in through the
    // directory (administrators excepted, as for the login).
    let role = state.store.user(&user_id).await?.ok_or(ApiError::NotFound)?.role;
    if role != StaffRole::Admin && !local_passwords(&state.store).await? {
        tracing::info!(user = %user_id, "setup link refused: local passwords are switched off");
        return Err(local_login_disabled());
    }
    let hash = hash_password(&body.password).await?;
    state.store.set_password(&user_id, &hash, now).await?;
    let user = state.store.user(&user_id).await?.ok_or(ApiError::NotFound)?;
    tracing::info!(user = %user.id, "password set through a setup link");
    let headers = session_headers(&state, &user.id).await?;
    Ok((headers, Json(me_of(&state, &user).await?)).into_response())
}

fn local_login_disabled() -> ApiError {
    ApiError::forbidden(
        "local_login_disabled",
        (
            "L'accesso con password è disattivato: accedi con l'account del Comune.",
            "Password sign-in is switched off: sign in with the municipality's account.",
        ),
    )
}

fn link_used() -> ApiError {
    ApiError::gone(
        "setup_link_invalid",
        (
            "Il link non è valido, è scaduto o è già stato usato. Chiedi un nuovo link all'amministratore.",
            "The link is not valid, has expired or was already used. Ask the administrator for a new link.",
        ),
    )
}

/// The first-administrator link: valid while no staff exists, once.
async fn first_admin(state: &AppState, body: &SetupBody, token_hash: &str, now: i64) -> Result<String, ApiError> {
    let Some(stored) = state.store.setting(FIRST_ADMIN_KEY).await? else { return Err(link_used()) };
    let (hash, expires) = stored.split_once(':').ok_or_else(link_used)?;
    if hash != token_hash || expires.parse::<i64>().map_or(true, |e| e < now) || state.store.count_users().await? > 0 {
        return Err(link_used());
    }
    let email = body.email.as_deref().map(str::trim).unwrap_or_default().to_lowercase();
    if !valid_staff_email(&email) {
        return Err(ApiError::bad_request(
            "invalid_email",
            ("Indica un indirizzo email valido.", "Enter a valid email address."),
        ));
    }
    let Some(name) = sportello_domain::clean_display_name(body.display_name.as_deref().unwrap_or_default(), 100) else {
        return Err(ApiError::bad_request(
            "invalid_name",
            ("Indica il nome (al massimo 100 caratteri).", "Enter the name (at most 100 characters)."),
        ));
    };
    let user = state.store.create_user(&NewUser { email, display_name: name, role: StaffRole::Admin }, now).await?;
    state.store.set_setting(FIRST_ADMIN_KEY, "").await?;
    Ok(user.id)
}

pub fn valid_staff_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else { return false };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>')
        && !domain.contains('@')
}

/// On a start with no staff at all: a fresh first-administrator link (the previous one, if any,
/// stops working — only its hash was kept). `None` once an administrator exists.
pub async fn first_admin_link(
    state_store: &sportello_store::Store,
    public_url: &str,
    now: i64,
) -> Result<Option<String>, sportello_store::StoreError> {
    if state_store.count_users().await? > 0 {
        return Ok(None);
    }
    let secret = new_secret();
    let expires = now + SETUP_LINK_SECS;
    state_store.set_setting(FIRST_ADMIN_KEY, &format!("{}:{expires}", sha256_hex(&secret))).await?;
    Ok(Some(format!("{public_url}/staff/setup#{secret}")))
}

/// A setup link for an existing user (new staff, password reset).
pub async fn user_setup_link(state: &AppState, user_id: &str) -> Result<String, ApiError> {
    Ok(setup_link(&state.store, &state.config.public_url, user_id, state.clock.now()).await?)
}

/// A one-time link, valid [`SETUP_LINK_SECS`], with which `user_id` sets a password (also used by
/// `sportello admin create`).
pub async fn setup_link(
    store: &sportello_store::Store,
    public_url: &str,
    user_id: &str,
    now: i64,
) -> Result<String, sportello_store::StoreError> {
    let secret = new_secret();
    store.create_setup_token(user_id, &sha256_hex(&secret), now + SETUP_LINK_SECS).await?;
    Ok(format!("{public_url}/staff/setup#{secret}"))
}
