//! Signing in through OpenID providers (docs/identity.md): what the administrator configured (the
//! `identity.*` settings), how a directory's claims become a staff role and offices, the staff
//! login once the edge has verified the provider's ID token (find, link or create the account),
//! and the key a logged-in citizen's appointments are filed under.
//!
//! The edge speaks OpenID Connect (`server/src/oidc.rs`); this module sees only verified claims.

use std::collections::BTreeMap;

use hmac::{Hmac, Mac};
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::Sha256;
use sportello_domain::fiscal_code::FiscalCode;
use sportello_store::{NewUser, StaffRole, Store, StoreError, User, UserUpdate};

use crate::settings::sign_in as keys;
use crate::token::{KeyError, TokenKey};

/// The staff directory (Keycloak, Entra ID, Google, …) as the administrator configured it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StaffProvider {
    pub issuer: String,
    pub client_id: String,
    /// Empty: a public client (PKCE alone).
    pub client_secret: String,
    /// The login button's words, e.g. «Account del Comune».
    pub label: String,
    /// The claim that carries groups or roles (`groups`, `roles`, `realm_access.roles`).
    pub role_claim: String,
    pub admin_values: Vec<String>,
    pub official_values: Vec<String>,
    pub councillor_values: Vec<String>,
    /// The claim that names offices; empty: offices are the administrator's to assign.
    pub offices_claim: String,
    /// Claim value → office id.
    pub office_map: BTreeMap<String, String>,
}

/// The citizens' gateway (SPID/CIE through an OIDC proxy such as IAM Proxy Italia).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CitizenProvider {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    /// e.g. «SPID o CIE».
    pub label: String,
}

/// Every sign-in setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentitySettings {
    /// Whether staff may log in with a password (administrators always may: the break-glass way
    /// in while the directory is down).
    pub local_passwords: bool,
    pub staff: Option<StaffProvider>,
    pub citizen: Option<CitizenProvider>,
}

impl IdentitySettings {
    /// The settings as stored; a provider without an issuer is not configured.
    pub async fn load(store: &Store) -> Result<IdentitySettings, StoreError> {
        let mut values = store.settings_with_prefix("identity.").await?;
        let mut take = |key: &str| values.remove(key).map(|v| v.trim().to_owned()).unwrap_or_default();
        let local_passwords = take(keys::LOCAL_PASSWORDS) != "false";
        let staff = StaffProvider {
            issuer: take(keys::STAFF_ISSUER),
            client_id: take(keys::STAFF_CLIENT_ID),
            client_secret: take(keys::STAFF_CLIENT_SECRET),
            label: take(keys::STAFF_LABEL),
            role_claim: take(keys::STAFF_ROLE_CLAIM),
            admin_values: list(&take(keys::STAFF_ADMIN_VALUES)),
            official_values: list(&take(keys::STAFF_OFFICIAL_VALUES)),
            councillor_values: list(&take(keys::STAFF_COUNCILLOR_VALUES)),
            offices_claim: take(keys::STAFF_OFFICES_CLAIM),
            office_map: serde_json::from_str(&take(keys::STAFF_OFFICE_MAP)).unwrap_or_default(),
        };
        let citizen = CitizenProvider {
            issuer: take(keys::CITIZEN_ISSUER),
            client_id: take(keys::CITIZEN_CLIENT_ID),
            client_secret: take(keys::CITIZEN_CLIENT_SECRET),
            label: take(keys::CITIZEN_LABEL),
        };
        Ok(IdentitySettings {
            local_passwords,
            staff: (!staff.issuer.is_empty()).then_some(staff),
            citizen: (!citizen.issuer.is_empty()).then_some(citizen),
        })
    }

    /// Writes every setting (already checked by the caller); a provider set to `None` loses all
    /// its keys.
    pub async fn save(&self, store: &Store) -> Result<(), StoreError> {
        store.set_setting(keys::LOCAL_PASSWORDS, if self.local_passwords { "true" } else { "false" }).await?;
        match &self.staff {
            Some(s) => {
                for (key, value) in [
                    (keys::STAFF_ISSUER, s.issuer.clone()),
                    (keys::STAFF_CLIENT_ID, s.client_id.clone()),
                    (keys::STAFF_CLIENT_SECRET, s.client_secret.clone()),
                    (keys::STAFF_LABEL, s.label.clone()),
                    (keys::STAFF_ROLE_CLAIM, s.role_claim.clone()),
                    (keys::STAFF_ADMIN_VALUES, json(&s.admin_values)),
                    (keys::STAFF_OFFICIAL_VALUES, json(&s.official_values)),
                    (keys::STAFF_COUNCILLOR_VALUES, json(&s.councillor_values)),
                    (keys::STAFF_OFFICES_CLAIM, s.offices_claim.clone()),
                    (keys::STAFF_OFFICE_MAP, json(&s.office_map)),
                ] {
                    store.set_setting(key, &value).await?;
                }
            }
            None => delete_prefix(store, keys::STAFF_PREFIX).await?,
        }
        match &self.citizen {
            Some(c) => {
                for (key, value) in [
                    (keys::CITIZEN_ISSUER, &c.issuer),
                    (keys::CITIZEN_CLIENT_ID, &c.client_id),
                    (keys::CITIZEN_CLIENT_SECRET, &c.client_secret),
                    (keys::CITIZEN_LABEL, &c.label),
                ] {
                    store.set_setting(key, value).await?;
                }
            }
            None => delete_prefix(store, keys::CITIZEN_PREFIX).await?,
        }
        Ok(())
    }
}

/// Whether staff may log in with a password (`identity.local_passwords`: on unless `false`).
/// Administrators may whatever it says (the break-glass way in while the directory is down).
pub async fn local_passwords(store: &Store) -> Result<bool, StoreError> {
    Ok(store.setting(keys::LOCAL_PASSWORDS).await?.is_none_or(|v| v.trim() != "false"))
}

/// JSON text of a list or the office map (plain strings: serialising cannot fail).
fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

async fn delete_prefix(store: &Store, prefix: &str) -> Result<(), StoreError> {
    for key in store.settings_with_prefix(prefix).await?.into_keys() {
        store.delete_setting(&key).await?;
    }
    Ok(())
}

/// A stored JSON list of strings; anything else is empty.
fn list(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_default()
}

// --- claims ----------------------------------------------------------------------------------

/// The values of claim `name`: a string is one value, an array its strings. A name that is not a
/// claim itself may be a dotted path into nested objects (Keycloak's `realm_access.roles`); names
/// with dots (`https://…`) are looked up whole first.
pub fn claim_values(claims: &Map<String, Value>, name: &str) -> Vec<String> {
    let name = name.trim();
    if name.is_empty() {
        return Vec::new();
    }
    let found = claims.get(name).or_else(|| {
        let mut parts = name.split('.');
        let first = claims.get(parts.next()?)?;
        parts.try_fold(first, |value, part| value.get(part))
    });
    match found {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
        _ => Vec::new(),
    }
}

/// The role the directory gives: the highest of administrator, official, councillor whose values
/// the role claim carries; `None` when none does (values compared exactly, as the directory writes
/// them).
pub fn mapped_role(provider: &StaffProvider, claims: &Map<String, Value>) -> Option<StaffRole> {
    let values = claim_values(claims, &provider.role_claim);
    let has = |wanted: &[String]| wanted.iter().any(|w| values.contains(w));
    if has(&provider.admin_values) {
        Some(StaffRole::Admin)
    } else if has(&provider.official_values) {
        Some(StaffRole::Official)
    } else if has(&provider.councillor_values) {
        Some(StaffRole::Councillor)
    } else {
        None
    }
}

/// The offices the directory says, as office ids (values without a mapping ignored); `None` when
/// no offices claim is configured.
pub fn mapped_offices(provider: &StaffProvider, claims: &Map<String, Value>) -> Option<Vec<String>> {
    if provider.offices_claim.trim().is_empty() {
        return None;
    }
    let mut ids: Vec<String> = claim_values(claims, &provider.offices_claim)
        .iter()
        .filter_map(|value| provider.office_map.get(value).cloned())
        .collect();
    ids.sort();
    ids.dedup();
    Some(ids)
}

// --- staff login -----------------------------------------------------------------------------

/// A directory account as the verified ID token (and userinfo) describe it.
#[derive(Debug, Clone)]
pub struct DirectoryAccount {
    pub issuer: String,
    pub subject: String,
    pub email: Option<String>,
    /// `None` when the provider does not say (Entra ID, many directories).
    pub email_verified: Option<bool>,
    /// `name`, else given and family name.
    pub display_name: Option<String>,
    /// Every claim, for the role and office claims.
    pub claims: Map<String, Value>,
}

/// Why a staff login is refused (the code the login page shows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No account, and the directory gives no role to create one; or a linked account the
    /// directory no longer gives a role.
    UnknownUser,
    /// The account is deactivated.
    Inactive,
}

impl Refusal {
    pub fn code(self) -> &'static str {
        match self {
            Refusal::UnknownUser => "unknown_user",
            Refusal::Inactive => "inactive",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// A refusal with the reason for the log (never shown to the person).
    #[error("refused ({}): {reason}", refusal.code())]
    Refused { refusal: Refusal, reason: &'static str },
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn refused(refusal: Refusal, reason: &'static str) -> SignInError {
    SignInError::Refused { refusal, reason }
}

/// How the account was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// By its directory identity (every login after the first).
    Linked,
    /// An existing account with the directory's verified email, now linked.
    LinkedByEmail,
    /// A new account.
    Created,
}

/// The staff login of a verified directory account: the linked account, else the account with
/// its email (linked now: only when the provider does not say the email is unverified — a
/// directory that omits `email_verified` is trusted, as the administrator chose it as the staff
/// directory), else a new account when the role mapping gives a role. Then the role and offices
/// the directory gives are applied (it is the source of truth; an administrator's «chair» stays
/// while the directory says councillor). Returns the account as it is now.
pub async fn staff_login(
    store: &Store,
    provider: &StaffProvider,
    account: &DirectoryAccount,
    now: i64,
) -> Result<(User, Found), SignInError> {
    let role = mapped_role(provider, &account.claims);
    // An email the provider says is unverified is never used: not to link, not to create.
    let email = account
        .email
        .as_deref()
        .map(|e| e.trim().to_lowercase())
        .filter(|e| !e.is_empty() && account.email_verified != Some(false));
    let (user, found) = match store.user_by_identity(&account.issuer, &account.subject).await? {
        Some(user) => (user, Found::Linked),
        None => match &email {
            Some(email) => match store.user_by_email(email).await? {
                Some(user) => {
                    if !store.identities_of_user(&user.id, &account.issuer).await?.is_empty() {
                        return Err(refused(
                            Refusal::UnknownUser,
                            "the email's account is linked to another account of this directory",
                        ));
                    }
                    if !user.active {
                        return Err(refused(Refusal::Inactive, "the email's account is deactivated"));
                    }
                    if role.is_none() {
                        return Err(refused(Refusal::UnknownUser, "the directory gives the account no role"));
                    }
                    store.link_identity(&account.issuer, &account.subject, &user.id, now).await.map_err(
                        |e| match e {
                            StoreError::Conflict(_) => {
                                refused(Refusal::UnknownUser, "the directory account was linked meanwhile")
                            }
                            other => other.into(),
                        },
                    )?;
                    (user, Found::LinkedByEmail)
                }
                None => (create(store, account, email, role, now).await?, Found::Created),
            },
            None if role.is_none() => {
                return Err(refused(Refusal::UnknownUser, "no account and no role in the directory"));
            }
            None => return Err(refused(Refusal::UnknownUser, "no account, and no verified email to create one")),
        },
    };
    if !user.active {
        return Err(refused(Refusal::Inactive, "the account is deactivated"));
    }
    let Some(role) = role else {
        return Err(refused(Refusal::UnknownUser, "the directory no longer gives the account a role"));
    };
    let role = if role == StaffRole::Councillor && user.role == StaffRole::Chair { StaffRole::Chair } else { role };
    let user = if user.role == role {
        user
    } else {
        let update =
            UserUpdate { display_name: user.display_name.clone(), role, active: true, pattern: user.pattern.clone() };
        store.update_user(&user.id, &update).await?
    };
    if let Some(member_of) = mapped_offices(provider, &account.claims) {
        // Offices deleted since the mapping was saved are skipped, not a failed login.
        let existing: Vec<String> = store.offices().await?.into_iter().map(|o| o.id).collect();
        let mut managed: Vec<String> =
            provider.office_map.values().filter(|id| existing.contains(id)).cloned().collect();
        managed.sort();
        managed.dedup();
        store.set_user_offices_within(&user.id, &managed, &member_of).await?;
    }
    Ok((user, found))
}

async fn create(
    store: &Store,
    account: &DirectoryAccount,
    email: &str,
    role: Option<StaffRole>,
    now: i64,
) -> Result<User, SignInError> {
    let Some(role) = role else {
        return Err(refused(Refusal::UnknownUser, "no account and no role in the directory"));
    };
    let display_name = account
        .display_name
        .as_deref()
        .and_then(|n| sportello_domain::clean_display_name(n, 100))
        .or_else(|| sportello_domain::clean_display_name(email.split('@').next().unwrap_or(email), 100))
        .unwrap_or_else(|| email.to_owned());
    let new = NewUser { email: email.to_owned(), display_name, role };
    match store.create_user_with_identity(&new, &account.issuer, &account.subject, now).await {
        Ok(user) => Ok(user),
        // A first login in two tabs at once: the other one created it.
        Err(StoreError::Conflict("identity")) => store
            .user_by_identity(&account.issuer, &account.subject)
            .await?
            .ok_or_else(|| refused(Refusal::UnknownUser, "the directory account vanished while linking")),
        Err(StoreError::Conflict(_)) => Err(refused(Refusal::UnknownUser, "the email was taken meanwhile")),
        Err(other) => Err(other.into()),
    }
}

// --- citizens --------------------------------------------------------------------------------

#[derive(Serialize)]
struct CitizenKeyLabel {
    sportello_key: &'static str,
}

/// The key a logged-in citizen's appointments are filed under: HMAC-SHA256 of the fiscal code
/// (lower-case hex) under a key derived from the token key (`jwt.key`: the same on every node of
/// a cluster; a new token key files the same citizen under a new key, so their earlier bookings
/// no longer show under «my appointments»). Not reversible without the server's key.
pub fn citizen_key(tokens: &TokenKey, fiscal_code: &FiscalCode) -> Result<String, KeyError> {
    // The subkey is a MAC of a fixed label under the token key (as `feeds::secret` derives its
    // secrets): no other use of the key signs this label.
    let token = tokens.sign(&CitizenKeyLabel { sportello_key: "citizen_appointments" })?;
    let subkey = token.rsplit('.').next().unwrap_or_default();
    // HMAC accepts keys of any length: `new_from_slice` cannot fail here.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(subkey.as_bytes()).expect("HMAC takes any key length");
    mac.update(fiscal_code.as_str().as_bytes());
    Ok(hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn provider() -> StaffProvider {
        StaffProvider {
            issuer: "https://login.comune.example".into(),
            client_id: "sportello".into(),
            role_claim: "groups".into(),
            admin_values: vec!["sportello-admin".into()],
            official_values: vec!["sportello-uffici".into(), "anagrafe".into()],
            councillor_values: vec!["consiglio".into()],
            offices_claim: "groups".into(),
            office_map: [("anagrafe".to_owned(), "o1".to_owned()), ("tributi".to_owned(), "o2".to_owned())].into(),
            ..StaffProvider::default()
        }
    }

    fn claims(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn claim_values_read_strings_arrays_and_paths() {
        let c = claims(json!({
            "groups": ["a", "b", 3],
            "role": "x",
            "realm_access": {"roles": ["r1"]},
            "https://attributes.eid.gov.it/fiscal_number": "TINIT-X",
            "flag": true
        }));
        assert_eq!(claim_values(&c, "groups"), ["a", "b"]);
        assert_eq!(claim_values(&c, " role "), ["x"]);
        assert_eq!(claim_values(&c, "realm_access.roles"), ["r1"]);
        assert_eq!(claim_values(&c, "https://attributes.eid.gov.it/fiscal_number"), ["TINIT-X"]);
        assert!(claim_values(&c, "flag").is_empty());
        assert!(claim_values(&c, "missing.path").is_empty());
        assert!(claim_values(&c, "").is_empty());
    }

    #[test]
    fn the_highest_mapped_role_wins() {
        let p = provider();
        let role = |groups: Value| mapped_role(&p, &claims(json!({ "groups": groups })));
        assert_eq!(role(json!(["consiglio", "sportello-admin"])), Some(StaffRole::Admin));
        assert_eq!(role(json!(["consiglio", "anagrafe"])), Some(StaffRole::Official));
        assert_eq!(role(json!("consiglio")), Some(StaffRole::Councillor));
        assert_eq!(role(json!(["Sportello-Admin"])), None, "values compared exactly");
        assert_eq!(role(json!([])), None);
        assert_eq!(mapped_role(&p, &claims(json!({}))), None);
    }

    #[test]
    fn offices_come_from_the_map() {
        let p = provider();
        let offices = |groups: Value| mapped_offices(&p, &claims(json!({ "groups": groups })));
        assert_eq!(offices(json!(["tributi", "anagrafe", "tributi", "other"])), Some(vec!["o1".into(), "o2".into()]));
        assert_eq!(offices(json!([])), Some(vec![]));
        let none = StaffProvider { offices_claim: String::new(), ..provider() };
        assert_eq!(mapped_offices(&none, &claims(json!({"groups": ["anagrafe"]}))), None);
    }

    #[test]
    fn the_citizen_key_is_a_keyed_hash() {
        let code = FiscalCode::parse("RSSMRA85T10A562S").unwrap();
        let key = TokenKey::from_secret(&[3u8; 32]);
        let a = citizen_key(&key, &code).unwrap();
        assert_eq!(a, citizen_key(&TokenKey::from_secret(&[3u8; 32]), &code).unwrap(), "stable for a key");
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(a, citizen_key(&TokenKey::from_secret(&[4u8; 32]), &code).unwrap(), "another server key");
        let other = FiscalCode::parse("BNCLRA90E41H501N").unwrap();
        assert_ne!(a, citizen_key(&key, &other).unwrap());
    }
}
