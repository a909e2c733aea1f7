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
