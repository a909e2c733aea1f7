//! The keys of the `settings` table (what the administrator sets for the municipality), in one
//! place: the booking rules read them, the admin API writes them, the demo seeds them.

use sportello_store::{Store, StoreError};

pub const SETTING_NAME: &str = "municipality.name";
/// `MM-DD`, a holiday.
pub const SETTING_PATRON_DAY: &str = "municipality.patron_day";
/// No slot starts sooner (minutes).
pub const SETTING_MIN_NOTICE: &str = "booking.min_notice_minutes";
/// How far ahead slots are offered (days).
pub const SETTING_HORIZON: &str = "booking.horizon_days";
/// Bookings per client address per minute.
pub const SETTING_RATE_LIMIT: &str = "booking.rate_limit_per_minute";
/// Bookings per client address per day.
pub const SETTING_RATE_LIMIT_DAY: &str = "booking.rate_limit_per_day";
/// Confirmed appointments still to come that one email address may hold with one office.
pub const SETTING_MAX_ACTIVE: &str = "booking.max_active_per_email";

/// When the minimum notice is unset (minutes).
pub const DEFAULT_MIN_NOTICE_MINUTES: i64 = 60;
/// When the horizon is unset (days).
pub const DEFAULT_HORIZON_DAYS: u16 = 60;

/// A setting read as a number (any `FromStr`, surrounding spaces ignored); `None` when unset or
/// unreadable, so the caller's default applies.
pub async fn parsed<T: std::str::FromStr>(store: &Store, key: &str) -> Result<Option<T>, StoreError> {
    Ok(store.setting(key).await?.and_then(|v| v.trim().parse().ok()))
}

/// The municipality's identity (modello Comuni header and footer, titles, legal pages, emails).
pub mod identity {
    pub const OWNER_NAME: &str = "municipality.owner_name";
    pub const OWNER_URL: &str = "municipality.owner_url";
    pub const WEBSITE: &str = "municipality.website";
    pub const ADDRESS: &str = "municipality.address";
    pub const PHONE: &str = "municipality.phone";
    pub const EMAIL: &str = "municipality.email";
    pub const PEC: &str = "municipality.pec";
    pub const VAT_NUMBER: &str = "municipality.vat_number";
    pub const ACCESSIBILITY_URL: &str = "municipality.accessibility_url";
    /// The data controller as the privacy notice names it (e.g. «Comune di Esempio, nella persona
    /// del Sindaco pro tempore»); empty: the municipality's name.
    pub const CONTROLLER: &str = "privacy.controller";
    pub const DPO_EMAIL: &str = "privacy.dpo_email";
    /// The crest: `<content type>;<base64 bytes>`, already sanitised (kept apart from the
    /// `municipality.` keys so a page does not read it).
    pub const CREST: &str = "crest.image";
    /// A fingerprint of [`CREST`], written with it: pages name the crest's URL without reading it.
    pub const CREST_VERSION: &str = "crest.version";
}

/// Signing in through OpenID providers (`crate::sign_in`, docs/identity.md). A provider is
/// configured while its `issuer` is set; lists are JSON arrays of strings, the office map a JSON
/// object {claim value → office id}.
pub mod sign_in {
    /// `true` (default when unset) or `false`: whether staff may log in with a password.
    pub const LOCAL_PASSWORDS: &str = "identity.local_passwords";
    /// The staff directory: every key under this prefix.
    pub const STAFF_PREFIX: &str = "identity.staff.";
    pub const STAFF_ISSUER: &str = "identity.staff.issuer";
    pub const STAFF_CLIENT_ID: &str = "identity.staff.client_id";
    pub const STAFF_CLIENT_SECRET: &str = "identity.staff.client_secret";
    pub const STAFF_LABEL: &str = "identity.staff.label";
    pub const STAFF_ROLE_CLAIM: &str = "identity.staff.role_claim";
    pub const STAFF_ADMIN_VALUES: &str = "identity.staff.admin_values";
    pub const STAFF_OFFICIAL_VALUES: &str = "identity.staff.official_values";
    pub const STAFF_COUNCILLOR_VALUES: &str = "identity.staff.councillor_values";
    pub const STAFF_OFFICES_CLAIM: &str = "identity.staff.offices_claim";
    pub const STAFF_OFFICE_MAP: &str = "identity.staff.office_map";
    /// The citizens' gateway (SPID/CIE through an OIDC proxy): every key under this prefix.
    pub const CITIZEN_PREFIX: &str = "identity.citizen.";
    pub const CITIZEN_ISSUER: &str = "identity.citizen.issuer";
    pub const CITIZEN_CLIENT_ID: &str = "identity.citizen.client_id";
    pub const CITIZEN_CLIENT_SECRET: &str = "identity.citizen.client_secret";
    pub const CITIZEN_LABEL: &str = "identity.citizen.label";
}

/// App IO notifications (`crate::appio`, docs/appio.md). Messages go out while `enabled` is
/// `true` and an API key is set.
pub mod appio {
    /// `true` or `false` (unset: off).
    pub const ENABLED: &str = "appio.enabled";
    /// The IO service's subscription key (`Ocp-Apim-Subscription-Key`); never shown back.
    pub const API_KEY: &str = "appio.api_key";
    /// IO's API root without a trailing slash (unset: [`DEFAULT_BASE_URL`]).
    pub const BASE_URL: &str = "appio.base_url";
    pub const DEFAULT_BASE_URL: &str = "https://api.io.pagopa.it/api/v1";
}

/// Where the accessibility statement is when the administrator has not given AgID's URL: the
/// legal notes say who publishes it.
pub const ACCESSIBILITY_FALLBACK: &str = "/note-legali#accessibilita";

/// Who the citizen is dealing with: every page's header and footer, titles, the privacy notice and
/// the emails' sender and signature read this. Empty strings are unset settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Municipality {
    pub name: String,
    pub owner_name: String,
    pub owner_url: String,
    pub website: String,
    pub address: String,
    pub phone: String,
    pub email: String,
    pub pec: String,
    pub vat_number: String,
    /// As configured; [`Municipality::accessibility_statement`] applies the fallback.
    pub accessibility_url: String,
    pub controller: String,
    pub dpo_email: String,
    /// A short fingerprint of the crest, when there is one (its URL changes with it).
    pub crest_version: Option<String>,
}

/// When no name is set (a fresh installation before the administrator's first visit).
pub const DEFAULT_NAME: &str = "Comune";

impl Municipality {
    /// Before any setting is read: «Comune».
    pub fn unnamed() -> Municipality {
        Municipality { name: DEFAULT_NAME.to_owned(), ..Municipality::default() }
    }

    /// The settings as stored; unset ones empty, the name «Comune».
    pub async fn load(store: &Store) -> Result<Municipality, StoreError> {
        let mut values = store.settings_with_prefix("municipality.").await?;
        values.extend(store.settings_with_prefix("privacy.").await?);
        let mut take = |key: &str| values.remove(key).map(|v| v.trim().to_owned()).unwrap_or_default();
        let name = take(SETTING_NAME);
        Ok(Municipality {
            name: if name.is_empty() { DEFAULT_NAME.to_owned() } else { name },
            owner_name: take(identity::OWNER_NAME),
            owner_url: take(identity::OWNER_URL),
            website: take(identity::WEBSITE),
            address: take(identity::ADDRESS),
            phone: take(identity::PHONE),
            email: take(identity::EMAIL),
            pec: take(identity::PEC),
            vat_number: take(identity::VAT_NUMBER),
            accessibility_url: take(identity::ACCESSIBILITY_URL),
            controller: take(identity::CONTROLLER),
            dpo_email: take(identity::DPO_EMAIL),
            crest_version: store.setting(identity::CREST_VERSION).await?,
        })
    }

    /// The configured statement (AgID's form) or the legal notes' paragraph about it.
    pub fn accessibility_statement(&self) -> &str {
        if self.accessibility_url.is_empty() { ACCESSIBILITY_FALLBACK } else { &self.accessibility_url }
    }

    /// Who the privacy notice names as controller.
    pub fn controller(&self) -> &str {
        if self.controller.is_empty() { &self.name } else { &self.controller }
    }
}

/// The crest as stored: its content type and bytes.
pub async fn crest(store: &Store) -> Result<Option<(String, Vec<u8>)>, StoreError> {
    use base64::Engine as _;
    let Some(value) = store.setting(identity::CREST).await? else { return Ok(None) };
    let Some((content_type, data)) = value.split_once(';') else { return Ok(None) };
    let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(data) else { return Ok(None) };
    Ok(Some((content_type.to_owned(), bytes)))
}

/// Stores a crest already sanitised ([`crate::crest`]); `None` removes it.
pub async fn set_crest(store: &Store, crest: Option<(&str, &[u8])>) -> Result<(), StoreError> {
    use base64::Engine as _;
    match crest {
        Some((content_type, bytes)) => {
            use sha2::Digest as _;
            let value = format!("{content_type};{}", base64::engine::general_purpose::STANDARD.encode(bytes));
            let version = hex::encode(&sha2::Sha256::digest(bytes)[..6]);
            store.set_setting(identity::CREST, &value).await?;
            store.set_setting(identity::CREST_VERSION, &version).await
        }
        None => {
            store.delete_setting(identity::CREST_VERSION).await?;
            store.delete_setting(identity::CREST).await
        }
    }
}
