//! Administrators manage offices, services, staff and the municipality's booking settings.
//! Every handler takes [`Staff`] and requires the admin role.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use sportello_store::{Modes, NewOffice, NewService, NewUser, Office, Service, StaffRole, UserUpdate};

use super::ApiError;
use super::auth::{Staff, UserView, user_setup_link, valid_staff_email};
use super::error::Path;
use crate::state::AppState;
use sportello_backoffice::crest::{self, CrestError};
use sportello_backoffice::settings::{
    self as municipal, DEFAULT_HORIZON_DAYS, DEFAULT_MIN_NOTICE_MINUTES, Municipality, SETTING_HORIZON,
    SETTING_MIN_NOTICE, SETTING_NAME, SETTING_PATRON_DAY, identity,
};

type JsonBody<T> = Result<Json<T>, axum::extract::rejection::JsonRejection>;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/offices", get(list_offices).post(create_office))
        .route("/admin/offices/{id}", put(update_office).delete(delete_office))
        .route("/admin/services", get(list_services).post(create_service))
        .route("/admin/services/{id}", put(update_service).delete(delete_service))
        .route("/admin/users", get(list_users).post(create_user))
        .route("/admin/users/{id}", put(update_user))
        .route("/admin/users/{id}/setup-link", post(reset_link))
        .route("/admin/settings", get(get_settings).put(put_settings))
        .route("/admin/crest", put(put_crest).delete(delete_crest))
}

fn admin(staff: &Staff) -> Result<(), ApiError> {
    staff.require(&[StaffRole::Admin])
}

fn text(field: &'static str, value: &str, max: usize, required: bool) -> Result<String, ApiError> {
    let value = value.trim();
    if (required && value.is_empty())
        || value.chars().count() > max
        || value.chars().any(|c| c.is_control() && c != '\n')
    {
        return Err(ApiError::bad_request(
            "invalid_field",
            (
                format!("Il campo «{field}» è obbligatorio o non valido (al massimo {max} caratteri)."),
                format!("The field «{field}» is required or invalid (at most {max} characters)."),
            ),
        ));
    }
    Ok(value.to_owned())
}

/// A staff member's name as colleagues and citizens will read it (no hidden formatting characters).
fn display_name(value: &str) -> Result<String, ApiError> {
    sportello_domain::clean_display_name(value, 100).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_field",
            (
                "Il campo «nome» è obbligatorio o non valido (al massimo 100 caratteri, senza caratteri di controllo).",
                "The field «nome» is required or invalid (at most 100 characters, no control characters).",
            ),
        )
    })
}

// --- offices ---------------------------------------------------------------------------------------

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct OfficeBody {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub address: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub phone: String,
    /// Seven lists (Monday first) of "HH:MM-HH:MM".
    pub opening_hours: Vec<Vec<String>>,
    /// When the office's walk-in video desk may open: seven lists (Monday first) of
    /// "HH:MM-HH:MM", all empty for no desk (docs/walkin.md). Left out: no desk for a new office,
    /// kept for an existing one.
    pub desk_hours: Option<Vec<Vec<String>>>,
    /// Officials who work in this office.
    #[serde(default)]
    pub member_ids: Vec<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OfficeView {
    pub id: String,
    pub name: String,
    pub description: String,
    pub address: String,
    pub email: String,
    pub phone: String,
    pub opening_hours: Vec<Vec<String>>,
    /// The walk-in video desk's hours (all empty: none).
    pub desk_hours: Vec<Vec<String>>,
    pub member_ids: Vec<String>,
}

async fn office_view(state: &AppState, o: &Office) -> Result<OfficeView, ApiError> {
    let members = state.store.office_members(&o.id).await?;
    Ok(OfficeView {
        id: o.id.clone(),
        name: o.name.clone(),
        description: o.description.clone(),
        address: o.address.clone(),
        email: o.email.clone(),
        phone: o.phone.clone(),
        opening_hours: serde_json::from_str(&o.opening_hours).unwrap_or_default(),
        desk_hours: serde_json::from_str(&o.desk_hours).unwrap_or_default(),
        member_ids: members.into_iter().map(|u| u.id).collect(),
    })
}

/// "HH:MM-HH:MM" with start < end, within the day.
fn valid_range(range: &str) -> bool {
    let parse = |t: &str| -> Option<u32> {
        let (h, m) = t.trim().split_once(':')?;
        let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
        (h < 24 && m < 60 && t.trim().len() == 5).then_some(h * 60 + m)
    };
    match range.split_once('-') {
        Some((a, b)) => matches!((parse(a), parse(b)), (Some(a), Some(b)) if a < b),
        None => false,
    }
}

async fn new_office(state: &AppState, body: &OfficeBody) -> Result<NewOffice, ApiError> {
    if body.opening_hours.len() != 7 || body.opening_hours.iter().flatten().any(|r| !valid_range(r)) {
        return Err(ApiError::bad_request(
            "invalid_opening_hours",
            (
                "Orari di apertura non validi: servono 7 giorni (da lunedì) con fasce «HH:MM-HH:MM».",
                "Invalid opening hours: 7 days (from Monday) with ranges «HH:MM-HH:MM» are needed.",
            ),
        ));
    }
    if let Some(desk) = &body.desk_hours
        && (desk.len() != 7 || desk.iter().flatten().any(|r| !valid_range(r)))
    {
        return Err(ApiError::bad_request(
            "invalid_desk_hours",
            (
                "Orari dello sportello video non validi: servono 7 giorni (da lunedì) con fasce «HH:MM-HH:MM».",
                "Invalid video desk hours: 7 days (from Monday) with ranges «HH:MM-HH:MM» are needed.",
            ),
        ));
    }
    for id in &body.member_ids {
        if state.store.user(id).await?.is_none() {
            return Err(ApiError::bad_request(
                "unknown_user",
                (format!("Utente sconosciuto: {id}."), format!("Unknown user: {id}.")),
            ));
        }
    }
    Ok(NewOffice {
        name: text("nome", &body.name, 120, true)?,
        description: text("descrizione", &body.description, 2000, false)?,
        address: text("indirizzo", &body.address, 300, false)?,
        email: text("email", &body.email, 254, false)?,
        phone: text("telefono", &body.phone, 40, false)?,
        opening_hours: serde_json::to_string(&body.opening_hours).map_err(ApiError::internal)?,
    })
}

/// The desk hours the body gives (checked by `new_office`), if it gives any.
async fn set_desk_hours(state: &AppState, office: Office, body: &OfficeBody) -> Result<Office, ApiError> {
    let Some(desk) = &body.desk_hours else { return Ok(office) };
    let json = serde_json::to_string(desk).map_err(ApiError::internal)?;
    state.store.set_desk_hours(&office.id, &json).await?;
    Ok(Office { desk_hours: json, ..office })
}

#[utoipa::path(get, path = "/api/admin/offices", tag = "admin", responses((status = 200, body = [OfficeView])))]
pub async fn list_offices(State(state): State<AppState>, staff: Staff) -> Result<Json<Vec<OfficeView>>, ApiError> {
    admin(&staff)?;
    let mut out = Vec::new();
    for o in state.store.offices().await? {
        out.push(office_view(&state, &o).await?);
    }
    Ok(Json(out))
}

#[utoipa::path(post, path = "/api/admin/offices", tag = "admin", request_body = OfficeBody,
    responses((status = 201, body = OfficeView), (status = 400, body = super::error::ErrorBody)))]
#[tracing::instrument(skip_all, fields(user = %staff.user.id))]
pub async fn create_office(
    State(state): State<AppState>,
    staff: Staff,
    body: JsonBody<OfficeBody>,
) -> Result<(StatusCode, Json<OfficeView>), ApiError> {
    admin(&staff)?;
    let Json(body) = body?;
    let office = state.store.create_office(&new_office(&state, &body).await?, state.clock.now()).await?;
    state.store.set_office_members(&office.id, &body.member_ids).await?;
    let office = set_desk_hours(&state, office, &body).await?;
    Ok((StatusCode::CREATED, Json(office_view(&state, &office).await?)))
}

#[utoipa::path(put, path = "/api/admin/offices/{id}", tag = "admin", request_body = OfficeBody,
    responses((status = 200, body = OfficeView), (status = 404, body = super::error::ErrorBody)))]
#[tracing::instrument(skip_all, fields(user = %staff.user.id))]
pub async fn update_office(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
    body: JsonBody<OfficeBody>,
) -> Result<Json<OfficeView>, ApiError> {
    admin(&staff)?;
    let Json(body) = body?;
    let office = state.store.update_office(&id, &new_office(&state, &body).await?).await?;
    state.store.set_office_members(&office.id, &body.member_ids).await?;
    let office = set_desk_hours(&state, office, &body).await?;
    Ok(Json(office_view(&state, &office).await?))
}

#[utoipa::path(delete, path = "/api/admin/offices/{id}", tag = "admin",
    responses((status = 204), (status = 409, body = super::error::ErrorBody)))]
pub async fn delete_office(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    admin(&staff)?;
    state.store.delete_office(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// --- services --------------------------------------------------------------------------------------

/// The modes a service offers, as the API writes them (`Modes`'s names).
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)] // documentation only: the fields are `Modes`, which the store crate owns
pub enum ModesName {
    Video,
    InPerson,
    Both,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ServiceBody {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// 5–240, a multiple of 5.
    #[schema(minimum = 5, maximum = 240, multiple_of = 5)]
    pub duration_minutes: i64,
    #[serde(default)]
    pub what_to_bring: String,
    #[schema(value_type = ModesName)]
    pub modes: Modes,
    pub office_ids: Vec<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ServiceView {
    pub id: String,
    pub name: String,
    pub description: String,
    pub duration_minutes: i64,
    pub what_to_bring: String,
    #[schema(value_type = ModesName)]
    pub modes: Modes,
    pub office_ids: Vec<String>,
}

impl From<Service> for ServiceView {
    fn from(s: Service) -> ServiceView {
        ServiceView {
            id: s.id,
            name: s.name,
            description: s.description,
            duration_minutes: s.duration_minutes,
            what_to_bring: s.what_to_bring,
            modes: s.modes,
            office_ids: s.office_ids,
        }
    }
}

async fn new_service(state: &AppState, body: &ServiceBody) -> Result<NewService, ApiError> {
    if !(5..=240).contains(&body.duration_minutes) || body.duration_minutes % 5 != 0 {
        return Err(ApiError::bad_request(
            "invalid_duration",
            ("La durata va da 5 a 240 minuti, a multipli di 5.", "The duration is 5 to 240 minutes, in steps of 5."),
        ));
    }
    for id in &body.office_ids {
        if state.store.office(id).await?.is_none() {
            return Err(ApiError::bad_request(
                "unknown_office",
                (format!("Ufficio sconosciuto: {id}."), format!("Unknown office: {id}.")),
            ));
        }
    }
    Ok(NewService {
        name: text("nome", &body.name, 160, true)?,
        description: text("descrizione", &body.description, 4000, false)?,
        duration_minutes: body.duration_minutes,
        what_to_bring: text("cosa serve", &body.what_to_bring, 4000, false)?,
        modes: body.modes,
        office_ids: body.office_ids.clone(),
    })
}

#[utoipa::path(get, path = "/api/admin/services", tag = "admin", responses((status = 200, body = [ServiceView])))]
pub async fn list_services(State(state): State<AppState>, staff: Staff) -> Result<Json<Vec<ServiceView>>, ApiError> {
    admin(&staff)?;
    Ok(Json(state.store.services().await?.into_iter().map(ServiceView::from).collect()))
}

#[utoipa::path(post, path = "/api/admin/services", tag = "admin", request_body = ServiceBody,
    responses((status = 201, body = ServiceView), (status = 400, body = super::error::ErrorBody)))]
#[tracing::instrument(skip_all, fields(user = %staff.user.id))]
pub async fn create_service(
    State(state): State<AppState>,
    staff: Staff,
    body: JsonBody<ServiceBody>,
) -> Result<(StatusCode, Json<ServiceView>), ApiError> {
    admin(&staff)?;
    let Json(body) = body?;
    let service = state.store.create_service(&new_service(&state, &body).await?, state.clock.now()).await?;
    Ok((StatusCode::CREATED, Json(service.into())))
}

#[utoipa::path(put, path = "/api/admin/services/{id}", tag = "admin", request_body = ServiceBody,
    responses((status = 200, body = ServiceView), (status = 404, body = super::error::ErrorBody)))]
#[tracing::instrument(skip_all, fields(user = %staff.user.id))]
pub async fn update_service(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
    body: JsonBody<ServiceBody>,
) -> Result<Json<ServiceView>, ApiError> {
    admin(&staff)?;
    let Json(body) = body?;
    Ok(Json(state.store.update_service(&id, &new_service(&state, &body).await?).await?.into()))
}

#[utoipa::path(delete, path = "/api/admin/services/{id}", tag = "admin",
    responses((status = 204), (status = 409, body = super::error::ErrorBody)))]
pub async fn delete_service(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    admin(&staff)?;
    state.store.delete_service(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// --- staff -----------------------------------------------------------------------------------------

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct NewUserBody {
    pub email: String,
    pub display_name: String,
    #[schema(value_type = super::auth::RoleName)]
    pub role: StaffRole,
    /// For App IO convocations (councillors); empty or absent: none.
    #[serde(default)]
    #[schema(max_length = 40)]
    pub fiscal_code: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct UserBody {
    pub display_name: String,
    #[schema(value_type = super::auth::RoleName)]
    pub role: StaffRole,
    pub active: bool,
    /// For App IO convocations: absent keeps it, empty clears it.
    #[serde(default)]
    #[schema(max_length = 40)]
    pub fiscal_code: Option<String>,
}

/// A staff member's fiscal code as given: `None` when absent, `Some(None)` to clear it.
fn staff_fiscal_code(value: Option<&str>) -> Result<Option<Option<String>>, ApiError> {
    match value.map(str::trim) {
        None => Ok(None),
        Some("") => Ok(Some(None)),
        Some(code) => {
            sportello_domain::FiscalCode::parse(code).map(|c| Some(Some(c.into_string()))).map_err(ApiError::from)
        }
    }
}

/// The view of a user with their fiscal code (administrators only).
async fn user_view(state: &AppState, user: &sportello_store::User) -> Result<UserView, ApiError> {
    Ok(UserView { fiscal_code: state.store.user_fiscal_code(&user.id).await?, ..UserView::from(user) })
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedUser {
    pub user: UserView,
    /// One-time link (7 days) where the new user sets their password. Send it to them.
    pub setup_url: String,
}

#[utoipa::path(get, path = "/api/admin/users", tag = "admin", responses((status = 200, body = [UserView])))]
pub async fn list_users(State(state): State<AppState>, staff: Staff) -> Result<Json<Vec<UserView>>, ApiError> {
    admin(&staff)?;
    let users = state.store.users().await?;
    let ids: Vec<String> = users.iter().map(|u| u.id.clone()).collect();
    let mut codes = state.store.user_fiscal_codes(&ids).await?;
    Ok(Json(users.iter().map(|u| UserView { fiscal_code: codes.remove(&u.id), ..UserView::from(u) }).collect()))
}

#[utoipa::path(post, path = "/api/admin/users", tag = "admin", request_body = NewUserBody,
    responses((status = 201, body = CreatedUser), (status = 409, body = super::error::ErrorBody)))]
#[tracing::instrument(skip_all, fields(user = %staff.user.id))]
pub async fn create_user(
    State(state): State<AppState>,
    staff: Staff,
    body: JsonBody<NewUserBody>,
) -> Result<(StatusCode, Json<CreatedUser>), ApiError> {
    admin(&staff)?;
    let Json(body) = body?;
    let email = body.email.trim().to_lowercase();
    if !valid_staff_email(&email) {
        return Err(ApiError::bad_request(
            "invalid_email",
            ("Indica un indirizzo email valido.", "Enter a valid email address."),
        ));
    }
    let new = NewUser { email, display_name: display_name(&body.display_name)?, role: body.role };
    let fiscal_code = staff_fiscal_code(body.fiscal_code.as_deref())?.flatten();
    let user = state.store.create_user(&new, state.clock.now()).await.map_err(|e| match e {
        sportello_store::StoreError::Conflict(_) => ApiError::conflict(
            "email_taken",
            ("Esiste già un utente con questa email.", "A user with this email already exists."),
        ),
        other => other.into(),
    })?;
    if let Some(code) = &fiscal_code {
        state.store.set_user_fiscal_code(&user.id, Some(code)).await?;
    }
    let setup_url = user_setup_link(&state, &user.id).await?;
    Ok((StatusCode::CREATED, Json(CreatedUser { user: user_view(&state, &user).await?, setup_url })))
}

#[utoipa::path(put, path = "/api/admin/users/{id}", tag = "admin", request_body = UserBody,
    responses((status = 200, body = UserView), (status = 404, body = super::error::ErrorBody),
        (status = 409, description = "`self_demotion`: one's own account deactivated or demoted",
            body = super::error::ErrorBody)))]
#[tracing::instrument(skip_all, fields(user = %staff.user.id))]
pub async fn update_user(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
    body: JsonBody<UserBody>,
) -> Result<Json<UserView>, ApiError> {
    admin(&staff)?;
    let Json(body) = body?;
    // An administrator cannot lock themselves out (there may be no other).
    if id == staff.user.id && (!body.active || body.role != StaffRole::Admin) {
        return Err(ApiError::conflict(
            "self_demotion",
            (
                "Non puoi disattivare o declassare il tuo stesso account.",
                "You cannot deactivate or demote your own account.",
            ),
        ));
    }
    let current = state.store.user(&id).await?.ok_or(ApiError::NotFound)?;
    let fiscal_code = staff_fiscal_code(body.fiscal_code.as_deref())?;
    let update = UserUpdate {
        display_name: display_name(&body.display_name)?,
        role: body.role,
        active: body.active,
        pattern: current.pattern,
    };
    let user = state.store.update_user(&id, &update).await?;
    if let Some(code) = fiscal_code {
        state.store.set_user_fiscal_code(&id, code.as_deref()).await?;
    }
    Ok(Json(user_view(&state, &user).await?))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SetupLink {
    pub setup_url: String,
}

/// A new one-time link to set the password (e.g. a forgotten password).
#[utoipa::path(post, path = "/api/admin/users/{id}/setup-link", tag = "admin", responses((status = 200, body = SetupLink)))]
pub async fn reset_link(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
) -> Result<Json<SetupLink>, ApiError> {
    admin(&staff)?;
    state.store.user(&id).await?.ok_or(ApiError::NotFound)?;
    Ok(Json(SetupLink { setup_url: user_setup_link(&state, &id).await? }))
}

// --- settings --------------------------------------------------------------------------------------

/// The municipality's settings: its name and booking rules, and who it is on every page, title
/// and email (modello Comuni header and footer, privacy notice, legal notes). The identity fields
/// are optional in a `PUT`: one left out keeps its value; an empty string clears it.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Settings {
    pub municipality_name: String,
    /// The patron saint's day, "MM-DD", a local holiday; empty if none.
    #[schema(pattern = "^((0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01]))?$")]
    pub patron_day: String,
    /// How long before a slot booking closes (up to a week).
    #[schema(minimum = 0, maximum = 10080)]
    pub min_notice_minutes: i64,
    /// How many days ahead citizens can book.
    #[schema(minimum = 1, maximum = 366)]
    pub horizon_days: i64,
    /// The owning body shown in the slim header (e.g. the region), with `owner_url`.
    #[serde(default)]
    pub owner_name: Option<String>,
    /// `https://…`
    #[serde(default)]
    pub owner_url: Option<String>,
    /// The municipality's institutional website, `https://…`.
    #[serde(default)]
    pub website: Option<String>,
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    /// Certified email (PEC).
    #[serde(default)]
    pub pec: Option<String>,
    /// Codice fiscale / partita IVA.
    #[serde(default)]
    pub vat_number: Option<String>,
    /// The data controller as the privacy notice names it; empty: the municipality.
    #[serde(default)]
    pub controller: Option<String>,
    /// The data protection officer's email.
    #[serde(default)]
    pub dpo_email: Option<String>,
    /// The accessibility statement on AgID's form (`https://form.agid.gov.it/view/…`); empty: the
    /// legal notes' paragraph about it.
    #[serde(default)]
    pub accessibility_url: Option<String>,
    /// Whether a crest is uploaded (`PUT /api/admin/crest`); read only.
    #[serde(default)]
    pub has_crest: bool,
}

pub async fn settings(state: &AppState) -> Result<Settings, ApiError> {
    let get = |k| state.store.setting(k);
    let m = Municipality::load(&state.store).await?;
    Ok(Settings {
        municipality_name: m.name,
        patron_day: get(SETTING_PATRON_DAY).await?.unwrap_or_default(),
        min_notice_minutes: get(SETTING_MIN_NOTICE)
            .await?
            .and_then(|v| v.parse().ok())
            .unwrap_or(DEFAULT_MIN_NOTICE_MINUTES),
        horizon_days: get(SETTING_HORIZON)
            .await?
            .and_then(|v| v.parse().ok())
            .unwrap_or(i64::from(DEFAULT_HORIZON_DAYS)),
        has_crest: m.crest_version.is_some(),
        owner_name: Some(m.owner_name),
        owner_url: Some(m.owner_url),
        website: Some(m.website),
        address: Some(m.address),
        phone: Some(m.phone),
        email: Some(m.email),
        pec: Some(m.pec),
        vat_number: Some(m.vat_number),
        controller: Some(m.controller),
        dpo_email: Some(m.dpo_email),
        accessibility_url: Some(m.accessibility_url),
    })
}

/// An identity setting as given: `None` leaves it, text is checked by its kind.
enum Kind {
    Text(usize),
    Url,
    Email,
}

fn identity_value(field: &'static str, value: &str, kind: Kind) -> Result<String, ApiError> {
    let value = value.trim();
    let ok = value.is_empty()
        || match kind {
            Kind::Text(_) => true,
            // Shown as links on every page: absolute http(s) only, never `javascript:` and the like.
            Kind::Url => url::Url::parse(value).is_ok_and(|u| matches!(u.scheme(), "https" | "http") && u.has_host()),
            Kind::Email => valid_staff_email(value),
        };
    let max = match kind {
        Kind::Text(max) => max,
        Kind::Url => 500,
        Kind::Email => 254,
    };
    if !ok {
        return Err(ApiError::bad_request(
            "invalid_field",
            (
                format!("Il campo «{field}» non è valido (un indirizzo web https://… o un'email, secondo il campo)."),
                format!("The field «{field}» is not valid (an https://… address or an email, as the field says)."),
            ),
        ));
    }
    text(field, value, max, false)
}

#[utoipa::path(get, path = "/api/admin/settings", tag = "admin", responses((status = 200, body = Settings)))]
pub async fn get_settings(State(state): State<AppState>, staff: Staff) -> Result<Json<Settings>, ApiError> {
    admin(&staff)?;
    Ok(Json(settings(&state).await?))
}

#[utoipa::path(put, path = "/api/admin/settings", tag = "admin", request_body = Settings,
    responses((status = 200, body = Settings), (status = 400, body = super::error::ErrorBody)))]
#[tracing::instrument(skip_all, fields(user = %staff.user.id))]
pub async fn put_settings(
    State(state): State<AppState>,
    staff: Staff,
    body: JsonBody<Settings>,
) -> Result<Json<Settings>, ApiError> {
    admin(&staff)?;
    let Json(body) = body?;
    let patron = body.patron_day.trim();
    let patron_ok = patron.is_empty()
        || patron
            .split_once('-')
            .and_then(|(m, d)| Some((m.parse::<i8>().ok()?, d.parse::<i8>().ok()?)))
            .is_some_and(|(m, d)| jiff::civil::Date::new(2024, m, d).is_ok() && patron.len() == 5);
    if !patron_ok {
        return Err(ApiError::bad_request(
            "invalid_patron_day",
            ("Il giorno del santo patrono va scritto «MM-GG».", "The patron saint's day is written «MM-DD»."),
        ));
    }
    if !(0..=7 * 24 * 60).contains(&body.min_notice_minutes) || !(1..=366).contains(&body.horizon_days) {
        return Err(ApiError::bad_request(
            "invalid_booking_window",
            (
                "Preavviso tra 0 minuti e 7 giorni, orizzonte tra 1 e 366 giorni.",
                "Notice between 0 minutes and 7 days, horizon between 1 and 366 days.",
            ),
        ));
    }
    // Every value is checked before any is stored: a refused request changes nothing.
    let mut identity_values = Vec::new();
    for (key, field, value, kind) in [
        (identity::OWNER_NAME, "ente di appartenenza", &body.owner_name, Kind::Text(120)),
        (identity::OWNER_URL, "sito dell'ente di appartenenza", &body.owner_url, Kind::Url),
        (identity::WEBSITE, "sito istituzionale", &body.website, Kind::Url),
        (identity::ADDRESS, "indirizzo", &body.address, Kind::Text(200)),
        (identity::PHONE, "telefono", &body.phone, Kind::Text(40)),
        (identity::EMAIL, "email", &body.email, Kind::Email),
        (identity::PEC, "PEC", &body.pec, Kind::Email),
        (identity::VAT_NUMBER, "codice fiscale / partita IVA", &body.vat_number, Kind::Text(20)),
        (identity::CONTROLLER, "titolare del trattamento", &body.controller, Kind::Text(200)),
        (identity::DPO_EMAIL, "email del RPD", &body.dpo_email, Kind::Email),
        (identity::ACCESSIBILITY_URL, "dichiarazione di accessibilità", &body.accessibility_url, Kind::Url),
    ] {
        if let Some(value) = value {
            identity_values.push((key, identity_value(field, value, kind)?));
        }
    }
    let name = text("nome del comune", &body.municipality_name, 120, true)?;
    let s = &state.store;
    s.set_setting(SETTING_NAME, &name).await?;
    s.set_setting(SETTING_PATRON_DAY, patron).await?;
    s.set_setting(SETTING_MIN_NOTICE, &body.min_notice_minutes.to_string()).await?;
    s.set_setting(SETTING_HORIZON, &body.horizon_days.to_string()).await?;
    for (key, value) in identity_values {
        s.set_setting(key, &value).await?;
    }
    Ok(Json(settings(&state).await?))
}

/// `PUT /api/admin/crest`: the body is the image itself (`image/svg+xml` or `image/png`, up to
/// 512 KiB). An SVG is stored as it is written back with only drawing elements and presentation
/// attributes (no script, handler, link, style or external reference).
#[utoipa::path(put, path = "/api/admin/crest", tag = "admin",
    request_body(content = Vec<u8>, content_type = "image/svg+xml", description = "An SVG or PNG image (Content-Type image/svg+xml or image/png)"),
    responses((status = 204, description = "Stored; every page shows it"), (status = 400, body = super::error::ErrorBody)))]
#[tracing::instrument(skip_all, fields(user = %staff.user.id))]
pub async fn put_crest(
    State(state): State<AppState>,
    staff: Staff,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Result<StatusCode, ApiError> {
    admin(&staff)?;
    let content_type =
        headers.get(axum::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let clean = crest::sanitise(&content_type, &body).map_err(|error| {
        let (it, en) = match &error {
            CrestError::TooLarge => ("Lo stemma supera i 512 KiB.", "The crest is larger than 512 KiB."),
            CrestError::Type(_) => ("Lo stemma va caricato come SVG o PNG.", "Upload the crest as SVG or PNG."),
            CrestError::NotPng | CrestError::PngSize => (
                "Il file non è un'immagine PNG valida (al massimo 4096×4096 pixel).",
                "The file is not a valid PNG image (at most 4096×4096 pixels).",
            ),
            CrestError::NotSvg(_) => ("Il file non è un'immagine SVG valida.", "The file is not a valid SVG image."),
        };
        tracing::info!(%error, "crest refused");
        ApiError::bad_request("invalid_crest", (it, en))
    })?;
    let kind = if content_type.starts_with(crest::PNG) { crest::PNG } else { crest::SVG };
    municipal::set_crest(&state.store, Some((kind, &clean))).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /api/admin/crest`: pages show the name alone again.
#[utoipa::path(delete, path = "/api/admin/crest", tag = "admin", responses((status = 204)))]
pub async fn delete_crest(State(state): State<AppState>, staff: Staff) -> Result<StatusCode, ApiError> {
    admin(&staff)?;
    municipal::set_crest(&state.store, None).await?;
    Ok(StatusCode::NO_CONTENT)
}
