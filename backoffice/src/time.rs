//! The one place that turns Unix seconds into the municipality's local time (Europe/Rome) and
//! back. Rules in `sportello-domain` take a time zone; here it is fixed once for the server.

use jiff::Timestamp;
use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;

/// Europe/Rome from the bundled tz database (UTC if it were ever missing, which is logged nowhere:
/// the database is compiled in).
pub fn rome() -> TimeZone {
    sportello_domain::europe_rome().unwrap_or(TimeZone::UTC)
}

/// A Unix second as a timestamp (the epoch for the out-of-range values no row holds).
pub fn ts(secs: i64) -> Timestamp {
    Timestamp::from_second(secs).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// `2026-03-02T09:30:00+01:00`: local time with its offset.
pub fn rfc3339(secs: i64) -> String {
    ts(secs).to_zoned(rome()).strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
}

/// `2026-03-02T08:30:00Z`: the instant in UTC (empty when out of range).
pub fn rfc3339_utc(secs: i64) -> String {
    Timestamp::from_second(secs).map(|t| t.to_string()).unwrap_or_default()
}

/// Local time formatted with a `strftime` pattern (the bare number if the zone were missing).
pub fn local_text(secs: i64, pattern: &str) -> String {
    let Ok(tz) = sportello_domain::europe_rome() else { return secs.to_string() };
    Timestamp::from_second(secs).map(|t| t.to_zoned(tz).strftime(pattern).to_string()).unwrap_or_default()
}

/// Unix seconds of `date` at `time` in Europe/Rome (a time in the spring-forward gap moves later).
pub fn local(date: Date, time: Time) -> Result<i64, jiff::Error> {
    Ok(date.to_datetime(time).to_zoned(rome())?.timestamp().as_second())
}

/// Local midnight of `date` and of the day after (23 or 25 hours apart on DST days).
pub fn day_bounds(date: Date) -> Result<(i64, i64), jiff::Error> {
    let next = date.tomorrow()?;
    Ok((local(date, Time::midnight())?, local(next, Time::midnight())?))
}
