//! The walk-in video desk (docs/walkin.md): when an office's desk is open, where each official is,
//! the queue's estimated wait, and the office's daily figures built from attendance records.
//!
//! Openings are set algebra on UTC instants, like availability: desk hours ∩ (⋃ officials' contact
//! windows − their absences). Figures take plain epoch seconds as the database stores them.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Span, Timestamp};

use crate::interval::{Interval, IntervalSet};
use crate::pattern::{PatternError, TimeRange, WorkMode, WorkingPattern, to_utc};

/// A waiting citizen not seen for this long loses their place.
pub const GRACE_SECS: i64 = 120;
/// Typical service time when the office has no history.
pub const DEFAULT_SERVICE_SECS: i64 = 600;
/// A callback is offered above this estimated wait.
pub const CALLBACK_OFFER_MINUTES: u32 = 20;
/// How far [`desk_opening`] looks for the next opening.
pub const LOOKAHEAD_DAYS: i64 = 14;

// --- queue ------------------------------------------------------------------------------------

/// Median (nearest rank) of recent walk-in service durations in seconds; `None` when empty.
/// Non-positive values are ignored: they are clock glitches, not services.
pub fn typical_service_secs(durations: &[i64]) -> Option<i64> {
    let mut positive: Vec<i64> = durations.iter().copied().filter(|&s| s > 0).collect();
    positive.sort_unstable();
    nearest_rank(&positive, 50)
}

/// Estimated wait in whole minutes, rounded up, for `position` (1-based): position × typical
/// service time ÷ officials on duty (at least 1). Position 0 (not queued) waits 0. A missing or
/// non-positive typical time counts as [`DEFAULT_SERVICE_SECS`]: "no wait" would be a false promise.
pub fn estimated_wait_minutes(position: u32, typical_service_secs: Option<i64>, on_duty: u32) -> u32 {
    if position == 0 {
        return 0;
    }
    let typical = typical_service_secs.filter(|&s| s > 0).unwrap_or(DEFAULT_SERVICE_SECS).unsigned_abs();
    // One rounding at the end, in u128 so that no input can overflow.
    let total = u128::from(position) * u128::from(typical);
    let per_minute = u128::from(on_duty.max(1)) * 60;
    u32::try_from(total.div_ceil(per_minute)).unwrap_or(u32::MAX)
}

/// Whether the citizen is offered a callback instead of waiting.
pub fn callback_offered(estimated_wait_minutes: u32) -> bool {
    estimated_wait_minutes > CALLBACK_OFFER_MINUTES
}

// --- when the desk is open --------------------------------------------------------------------

/// One official of the office as the desk sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeskOfficial {
    pub pattern: WorkingPattern,
    pub absences: Vec<Interval>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeskOpening {
    pub open: bool,
    /// When open: the end of the current open stretch (desk hours ∩ someone on duty), else None.
    pub closes_at: Option<Timestamp>,
    /// When closed: the next instant it opens within [`LOOKAHEAD_DAYS`], else None.
    pub opens_at: Option<Timestamp>,
    /// Officials on duty now (inside a contact window, not absent) — counted only while the desk
    /// hours hold now; 0 when closed.
    pub on_duty: u32,
}

/// The desk is open at an instant in the office's desk hours (`desk_hours[0]` = Monday, local times
/// in `tz`; not on a holiday) where at least one official is inside a contact window of their
/// pattern's schedule and not inside one of their absences. Computed over the local dates
/// today − 1 ..= today + [`LOOKAHEAD_DAYS`]; empty desk hours → never open.
pub fn desk_opening(
    desk_hours: &[Vec<TimeRange>; 7],
    officials: &[DeskOfficial],
    holidays: &BTreeSet<Date>,
    tz: &TimeZone,
    now: Timestamp,
) -> Result<DeskOpening, PatternError> {
    let closed = DeskOpening { open: false, closes_at: None, opens_at: None, on_duty: 0 };
    // No video desk: the officials' patterns are irrelevant, so not even resolved.
    if desk_hours.iter().all(Vec::is_empty) {
        return Ok(closed);
    }
    let today = tz.to_datetime(now).date();
    let range_err = || PatternError::DateRange { first: today, last: today };
    let first = today.yesterday().map_err(|_| range_err())?;
    let last = today.checked_add(Span::new().days(LOOKAHEAD_DAYS)).map_err(|_| range_err())?;

    let desk = desk_set(desk_hours, holidays, tz, first, last)?;
    let mut duty = Vec::with_capacity(officials.len());
    for official in officials {
        let schedule = official.pattern.schedule(first, last, tz, holidays)?;
        let contact = IntervalSet::from_intervals(schedule.contact.iter().map(|w| w.interval));
        duty.push(contact.subtract(&IntervalSet::from_intervals(official.absences.iter().copied())));
    }
    let anyone = duty.iter().fold(IntervalSet::new(), |acc, set| acc.union(set));
    let open = desk.intersect(&anyone);

    // The first member of `open` that ends after `now` either holds `now` or is the next opening.
    let next = open.as_slice().get(open.as_slice().partition_point(|iv| iv.end() <= now));
    Ok(match next {
        Some(iv) if iv.start() <= now => {
            // Open implies the desk hours hold now, so this counts only officials serving the desk.
            let on_duty = duty.iter().filter(|set| member_at(set, now).is_some()).count();
            DeskOpening { open: true, closes_at: Some(iv.end()), opens_at: None, on_duty: count_u32(on_duty) }
        }
        Some(iv) => DeskOpening { opens_at: Some(iv.start()), ..closed },
        None => closed,
    })
}

/// Desk hours of `first..=last` in UTC, holidays left out (the officials' schedules are off on
/// holidays too; this keeps the desk's own rule true on its own).
fn desk_set(
    desk_hours: &[Vec<TimeRange>; 7],
    holidays: &BTreeSet<Date>,
    tz: &TimeZone,
    first: Date,
    last: Date,
) -> Result<IntervalSet, PatternError> {
    let mut out = Vec::new();
    let mut date = first;
    while date <= last {
        if !holidays.contains(&date) {
            for range in &desk_hours[date.weekday().to_monday_zero_offset() as usize] {
                // A range swallowed by a DST gap is simply not there.
                if let Ok(iv) = Interval::new(to_utc(tz, date, range.start())?, to_utc(tz, date, range.end())?) {
                    out.push(iv);
                }
            }
        }
        date = date.tomorrow().map_err(|_| PatternError::DateRange { first, last })?;
    }
    Ok(IntervalSet::from_intervals(out))
}

/// The member of `set` holding `at`, if any.
fn member_at(set: &IntervalSet, at: Timestamp) -> Option<&Interval> {
    let items = set.as_slice();
    items.get(items.partition_point(|iv| iv.end() <= at)).filter(|iv| iv.start() <= at)
}

fn holds(iv: &Interval, at: Timestamp) -> bool {
    iv.start() <= at && at < iv.end()
}

// --- presence ---------------------------------------------------------------------------------

/// Where an official is: the mode of the working interval they are in, or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Location {
    OnSite,
    Remote,
    Off,
}

impl Location {
    pub fn as_str(self) -> &'static str {
        match self {
            Location::OnSite => "on_site",
            Location::Remote => "remote",
            Location::Off => "off",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Duty {
    pub location: Location,
    pub in_contact_band: bool,
}

/// Where an official is at `now`: inside a working interval of the day's schedule and not absent →
/// that day's mode (on site / remote); else off. `in_contact_band`: inside one of the schedule's
/// contact windows and not absent. No pattern → off.
pub fn duty_at(
    pattern: Option<&WorkingPattern>,
    absences: &[Interval],
    holidays: &BTreeSet<Date>,
    tz: &TimeZone,
    now: Timestamp,
) -> Result<Duty, PatternError> {
    let off = Duty { location: Location::Off, in_contact_band: false };
    let Some(pattern) = pattern else { return Ok(off) };
    if absences.iter().any(|a| holds(a, now)) {
        return Ok(off);
    }
    // Working hours lie within 06:00–22:00 local, so only today's schedule can hold `now`.
    let today = tz.to_datetime(now).date();
    let schedule = pattern.schedule(today, today, tz, holidays)?;
    let location = if schedule.work.iter().any(|iv| holds(iv, now)) {
        // `work` is empty on holidays, so the plan's mode is only read on a working day.
        match pattern.plan_for(today).mode() {
            WorkMode::OnSite => Location::OnSite,
            WorkMode::Remote => Location::Remote,
            WorkMode::Off => Location::Off,
        }
    } else {
        Location::Off
    };
    let in_contact_band = schedule.contact.iter().any(|w| holds(&w.interval, now));
    Ok(Duty { location, in_contact_band })
}

/// Whether the official can take a walk-in or a colleague's call now.
pub fn available(duty: Duty, in_call: bool) -> bool {
    duty.location != Location::Off && duty.in_contact_band && !in_call
}

// --- figures (no personal data) ---------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppointmentOutcome {
    Completed,
    NoShow,
    /// Still confirmed, or cancelled.
    Other,
}

/// An appointment's attendance; instants in epoch seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppointmentRecord {
    pub office_id: String,
    pub service_id: String,
    pub starts_at: i64,
    pub outcome: AppointmentOutcome,
    pub arrived_at: Option<i64>,
    pub joined_at: Option<i64>,
    pub ended_at: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalkinOutcome {
    /// `done`.
    Served,
    /// `left` or `abandoned`.
    Abandoned,
    /// Still waiting, serving, in a callback or a hand-off.
    Open,
}

/// A walk-in's attendance; instants in epoch seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalkinRecord {
    pub office_id: String,
    pub service_id: Option<String>,
    pub queued_at: i64,
    pub called_at: Option<i64>,
    pub ended_at: Option<i64>,
    pub outcome: WalkinOutcome,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Spread {
    pub count: u32,
    pub p50_secs: Option<i64>,
    pub p90_secs: Option<i64>,
}

/// Service time of one service (`None`: walk-ins without a service, «Senza appuntamento»).
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceTime {
    pub service_id: Option<String>,
    pub count: u32,
    pub mean_secs: i64,
    pub p50_secs: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DayFigures {
    pub date: Date,
    pub office_id: String,
    pub appointment_wait: Spread,
    pub walkin_wait: Spread,
    /// Sorted by service id, walk-ins without a service last.
    pub services: Vec<ServiceTime>,
    pub appointments_closed: u32,
    pub no_shows: u32,
    pub no_show_rate: Option<f64>,
    pub walkins_served: u32,
    pub walkins_abandoned: u32,
}

/// Nearest-rank percentile of a SORTED slice: index ⌈p/100 × n⌉ − 1, with `p` clamped to
/// 1..=100. `None` when empty.
pub fn nearest_rank(sorted: &[i64], p: u32) -> Option<i64> {
    let n = sorted.len();
    let p = usize::try_from(p.clamp(1, 100)).unwrap_or(100);
    let rank = (p * n).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

#[derive(Default)]
struct DayAcc {
    appointment_waits: Vec<i64>,
    walkin_waits: Vec<i64>,
    services: BTreeMap<Option<String>, Vec<i64>>,
    completed: u32,
    no_shows: u32,
    served: u32,
    abandoned: u32,
}

/// Per (local date in `tz`, office) for the days `first..=last`, sorted by date then office id. An
/// appointment counts on the day of its start, a walk-in on the day it queued; a day appears for an
/// office as soon as it has any record. See docs/walkin.md, «Figures», for each figure.
pub fn figures(
    appointments: &[AppointmentRecord],
    walkins: &[WalkinRecord],
    tz: &TimeZone,
    first: Date,
    last: Date,
) -> Vec<DayFigures> {
    let mut days: BTreeMap<(Date, String), DayAcc> = BTreeMap::new();
    let day_of = |secs: i64| {
        // A record whose instant jiff cannot represent is garbage: it belongs to no day.
        let date = tz.to_datetime(Timestamp::from_second(secs).ok()?).date();
        (first..=last).contains(&date).then_some(date)
    };

    for a in appointments {
        let Some(date) = day_of(a.starts_at) else { continue };
        let acc = days.entry((date, a.office_id.clone())).or_default();
        if let (Some(arrived), Some(joined)) = (a.arrived_at, a.joined_at) {
            // Time the citizen waited for us: arriving early is not waiting.
            acc.appointment_waits.push(joined.saturating_sub(arrived.max(a.starts_at)).max(0));
        }
        if let (Some(joined), Some(ended)) = (a.joined_at, a.ended_at) {
            push_positive(acc.services.entry(Some(a.service_id.clone())).or_default(), ended.saturating_sub(joined));
        }
        match a.outcome {
            AppointmentOutcome::Completed => acc.completed += 1,
            AppointmentOutcome::NoShow => acc.no_shows += 1,
            AppointmentOutcome::Other => {}
        }
    }
    for w in walkins {
        let Some(date) = day_of(w.queued_at) else { continue };
        let acc = days.entry((date, w.office_id.clone())).or_default();
        if let Some(called) = w.called_at {
            // Clamped like appointment waits: clock skew must not pull the percentiles below zero.
            acc.walkin_waits.push(called.saturating_sub(w.queued_at).max(0));
        }
        if let (Some(called), Some(ended)) = (w.called_at, w.ended_at) {
            push_positive(acc.services.entry(w.service_id.clone()).or_default(), ended.saturating_sub(called));
        }
        match w.outcome {
            WalkinOutcome::Served => acc.served += 1,
            WalkinOutcome::Abandoned => acc.abandoned += 1,
            WalkinOutcome::Open => {}
        }
    }

    days.into_iter()
        .map(|((date, office_id), acc)| {
            let closed = acc.completed + acc.no_shows;
            let mut services: Vec<ServiceTime> = acc
                .services
                .into_iter()
                .filter(|(_, durations)| !durations.is_empty())
                .map(|(service_id, durations)| service_time(service_id, durations))
                .collect();
            services.sort_by(|a, b| by_service_none_last(&a.service_id, &b.service_id));
            DayFigures {
                date,
                office_id,
                appointment_wait: spread(acc.appointment_waits),
                walkin_wait: spread(acc.walkin_waits),
                services,
                appointments_closed: closed,
                no_shows: acc.no_shows,
                no_show_rate: (closed > 0).then(|| f64::from(acc.no_shows) / f64::from(closed)),
                walkins_served: acc.served,
                walkins_abandoned: acc.abandoned,
            }
        })
        .collect()
}

fn push_positive(durations: &mut Vec<i64>, secs: i64) {
    if secs > 0 {
        durations.push(secs);
    }
}

fn count_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn spread(mut secs: Vec<i64>) -> Spread {
    secs.sort_unstable();
    Spread { count: count_u32(secs.len()), p50_secs: nearest_rank(&secs, 50), p90_secs: nearest_rank(&secs, 90) }
}

/// `durations` is non-empty and positive.
fn service_time(service_id: Option<String>, mut durations: Vec<i64>) -> ServiceTime {
    durations.sort_unstable();
    let n = i128::try_from(durations.len()).unwrap_or(i128::MAX);
    let sum: i128 = durations.iter().map(|&d| i128::from(d)).sum();
    // Positive values: half up is round-to-nearest.
    let mean = (2 * sum + n) / (2 * n);
    ServiceTime {
        service_id,
        count: count_u32(durations.len()),
        mean_secs: i64::try_from(mean).unwrap_or(i64::MAX),
        p50_secs: nearest_rank(&durations, 50).unwrap_or(0),
    }
}

fn by_service_none_last(a: &Option<String>, b: &Option<String>) -> Ordering {
    match (a, b) {
        (Some(a), Some(b)) => a.cmp(b),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pattern::DayPlan;
    use jiff::civil::date;
    use proptest::prelude::*;

    fn rome() -> TimeZone {
        crate::europe_rome().expect("bundled tzdb has Europe/Rome")
    }

    fn r(a: i8, b: i8, c: i8, d: i8) -> TimeRange {
        TimeRange::hm(a, b, c, d).expect("valid test range")
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("test timestamp")
    }

    fn secs(s: &str) -> i64 {
        ts(s).as_second()
    }

    fn iv(a: &str, b: &str) -> Interval {
        Interval::new(ts(a), ts(b)).expect("test interval")
    }

    /// Monday to Friday `plan`, weekend off.
    fn weekdays(plan: DayPlan) -> WorkingPattern {
        WorkingPattern::new([
            plan.clone(),
            plan.clone(),
            plan.clone(),
            plan.clone(),
            plan,
            DayPlan::off(),
            DayPlan::off(),
        ])
    }

    /// Works 08:00–14:00 local Monday to Friday in `mode`, receiving citizens in `band`.
    fn official(mode: WorkMode, band: TimeRange) -> DeskOfficial {
        let plan = DayPlan::working(mode, vec![r(8, 0, 14, 0)], band).expect("plan");
        DeskOfficial { pattern: weekdays(plan), absences: Vec::new() }
    }

    /// Desk hours Monday to Friday.
    fn desk(ranges: &[TimeRange]) -> [Vec<TimeRange>; 7] {
        std::array::from_fn(|day| if day < 5 { ranges.to_vec() } else { Vec::new() })
    }

    fn opening(
        hours: &[Vec<TimeRange>; 7],
        officials: &[DeskOfficial],
        holidays: &BTreeSet<Date>,
        now: &str,
    ) -> DeskOpening {
        desk_opening(hours, officials, holidays, &rome(), ts(now)).expect("desk opening")
    }

    fn open_until(closes_at: &str, on_duty: u32) -> DeskOpening {
        DeskOpening { open: true, closes_at: Some(ts(closes_at)), opens_at: None, on_duty }
    }

    fn closed_until(opens_at: Option<&str>) -> DeskOpening {
        DeskOpening { open: false, closes_at: None, opens_at: opens_at.map(ts), on_duty: 0 }
    }

    const NO_HOLIDAYS: &BTreeSet<Date> = &BTreeSet::new();

    // Wednesday 10 March 2027 is in CET (UTC+1): 10:30 local is 09:30Z.

    #[test]
    fn open_in_desk_hours_with_an_official_in_contact_band() {
        assert_eq!(date(2027, 3, 10).weekday(), jiff::civil::Weekday::Wednesday);
        let hours = desk(&[r(9, 0, 12, 0)]);
        for mode in [WorkMode::Remote, WorkMode::OnSite] {
            let officials = [official(mode, r(10, 0, 13, 0))];
            assert_eq!(
                opening(&hours, &officials, NO_HOLIDAYS, "2027-03-10T09:30Z"),
                open_until("2027-03-10T11:00Z", 1)
            );
        }
    }

    #[test]
    fn closed_while_the_only_official_is_absent() {
        let hours = desk(&[r(9, 0, 12, 0)]);
        let mut o = official(WorkMode::Remote, r(10, 0, 13, 0));
        // Hourly leave 10:00–11:00 local: the desk opens again when it ends, still in desk hours.
        o.absences = vec![iv("2027-03-10T09:00Z", "2027-03-10T10:00Z")];
        let officials = [o.clone()];
        assert_eq!(
            opening(&hours, &officials, NO_HOLIDAYS, "2027-03-10T09:30Z"),
            closed_until(Some("2027-03-10T10:00Z"))
        );
        assert_eq!(opening(&hours, &officials, NO_HOLIDAYS, "2027-03-10T10:00Z"), open_until("2027-03-10T11:00Z", 1));
        // Leave past the desk hours: next is tomorrow's 10:00 local.
        o.absences = vec![iv("2027-03-10T09:00Z", "2027-03-10T11:30Z")];
        assert_eq!(opening(&hours, &[o], NO_HOLIDAYS, "2027-03-10T09:30Z"), closed_until(Some("2027-03-11T09:00Z")));
    }

    #[test]
    fn closed_on_a_holiday() {
        let hours = desk(&[r(9, 0, 12, 0)]);
        let officials = [official(WorkMode::OnSite, r(10, 0, 13, 0))];
        let holidays = BTreeSet::from([date(2027, 3, 10)]);
        assert_eq!(
            opening(&hours, &officials, &holidays, "2027-03-10T09:30Z"),
            closed_until(Some("2027-03-11T09:00Z"))
        );
    }

    #[test]
    fn closed_at_night_opens_where_desk_hours_and_band_first_meet() {
        // Desk from 09:00, band from 10:00: the desk opens at 10:00 local (09:00Z in CET).
        let hours = desk(&[r(9, 0, 12, 0)]);
        let officials = [official(WorkMode::Remote, r(10, 0, 13, 0))];
        assert_eq!(
            opening(&hours, &officials, NO_HOLIDAYS, "2027-03-10T22:00Z"),
            closed_until(Some("2027-03-11T09:00Z"))
        );
        // Just after midnight local (23:30Z is 00:30 on the 11th): same morning.
        assert_eq!(
            opening(&hours, &officials, NO_HOLIDAYS, "2027-03-10T23:30Z"),
            closed_until(Some("2027-03-11T09:00Z"))
        );
        // Early in desk hours, before the band: closed although desk hours hold.
        assert_eq!(
            opening(&hours, &officials, NO_HOLIDAYS, "2027-03-11T08:30Z"),
            closed_until(Some("2027-03-11T09:00Z"))
        );
        // Friday after closing: Monday 15 March.
        assert_eq!(
            opening(&hours, &officials, NO_HOLIDAYS, "2027-03-12T12:00Z"),
            closed_until(Some("2027-03-15T09:00Z"))
        );
    }

    #[test]
    fn closes_at_is_the_end_of_the_stretch() {
        let hours = desk(&[r(9, 0, 12, 0)]);
        // Band outlasts the desk: the desk hours end it.
        let late_band = [official(WorkMode::Remote, r(10, 0, 13, 0))];
        assert_eq!(opening(&hours, &late_band, NO_HOLIDAYS, "2027-03-10T09:00Z"), open_until("2027-03-10T11:00Z", 1));
        // Band ends first: it ends the stretch.
        let early_band = [official(WorkMode::Remote, r(9, 0, 10, 30))];
        assert_eq!(opening(&hours, &early_band, NO_HOLIDAYS, "2027-03-10T08:15Z"), open_until("2027-03-10T09:30Z", 1));
        // At the end instant the desk is closed (half-open).
        assert_eq!(
            opening(&hours, &early_band, NO_HOLIDAYS, "2027-03-10T09:30Z"),
            closed_until(Some("2027-03-11T08:00Z"))
        );
    }

    #[test]
    fn two_officials_bands_are_united() {
        let hours = desk(&[r(9, 0, 12, 0)]);
        let overlapping = [official(WorkMode::Remote, r(9, 0, 10, 30)), official(WorkMode::OnSite, r(10, 0, 13, 0))];
        // 09:15 local: only the first is on duty, but the stretch runs on with the second to 12:00.
        assert_eq!(opening(&hours, &overlapping, NO_HOLIDAYS, "2027-03-10T08:15Z"), open_until("2027-03-10T11:00Z", 1));
        assert_eq!(opening(&hours, &overlapping, NO_HOLIDAYS, "2027-03-10T09:15Z"), open_until("2027-03-10T11:00Z", 2));
        // A gap between the bands closes the desk in between.
        let gap = [official(WorkMode::Remote, r(9, 0, 10, 0)), official(WorkMode::Remote, r(10, 30, 13, 0))];
        assert_eq!(opening(&hours, &gap, NO_HOLIDAYS, "2027-03-10T08:15Z"), open_until("2027-03-10T09:00Z", 1));
        assert_eq!(opening(&hours, &gap, NO_HOLIDAYS, "2027-03-10T09:15Z"), closed_until(Some("2027-03-10T09:30Z")));
    }

    #[test]
    fn on_duty_is_counted_only_inside_desk_hours() {
        let hours = desk(&[r(9, 0, 12, 0), r(15, 0, 17, 0)]);
        let officials = [official(WorkMode::OnSite, r(10, 0, 13, 0))];
        // 12:30 local: the official is in their band, but the desk hours do not hold.
        assert_eq!(
            opening(&hours, &officials, NO_HOLIDAYS, "2027-03-10T11:30Z"),
            closed_until(Some("2027-03-11T09:00Z"))
        );
    }

    #[test]
    fn empty_desk_hours_never_open() {
        let hours: [Vec<TimeRange>; 7] = Default::default();
        let officials = [official(WorkMode::OnSite, r(10, 0, 13, 0))];
        for now in ["2027-03-10T09:30Z", "2027-03-10T22:00Z"] {
            assert_eq!(opening(&hours, &officials, NO_HOLIDAYS, now), closed_until(None));
        }
        // Desk hours but nobody in the office: closed with nothing to announce.
        assert_eq!(opening(&desk(&[r(9, 0, 12, 0)]), &[], NO_HOLIDAYS, "2027-03-10T09:30Z"), closed_until(None));
    }

    #[test]
    fn dst_days_keep_local_hours() {
        let hours = desk(&[r(9, 0, 12, 0)]);
        let officials = [official(WorkMode::Remote, r(10, 0, 13, 0))];
        // Friday 26 March 2027 in CET; Monday 29 is in CEST (clocks moved on Sunday 28): 10:00 is 08:00Z.
        assert_eq!(
            opening(&hours, &officials, NO_HOLIDAYS, "2027-03-26T19:00Z"),
            closed_until(Some("2027-03-29T08:00Z"))
        );
        // Friday 29 October 2027 in CEST; clocks go back on Sunday 31; Monday 1 November is a
        // holiday, so Tuesday 2 November 10:00 CET = 09:00Z.
        let holidays = BTreeSet::from([date(2027, 11, 1)]);
        assert_eq!(
            opening(&hours, &officials, &holidays, "2027-10-29T12:00Z"),
            closed_until(Some("2027-11-02T09:00Z"))
        );
        // On the 23-hour day itself, with a desk and a pattern every day.
        let plan = DayPlan::working(WorkMode::Remote, vec![r(8, 0, 14, 0)], r(10, 0, 13, 0)).expect("plan");
        let every_day =
            [DeskOfficial { pattern: WorkingPattern::new(std::array::from_fn(|_| plan.clone())), absences: vec![] }];
        let all_week: [Vec<TimeRange>; 7] = std::array::from_fn(|_| vec![r(9, 0, 12, 0)]);
        assert_eq!(
            opening(&all_week, &every_day, NO_HOLIDAYS, "2027-03-28T08:30Z"),
            open_until("2027-03-28T10:00Z", 1)
        );
        assert_eq!(
            opening(&all_week, &every_day, NO_HOLIDAYS, "2027-03-28T01:30Z"),
            closed_until(Some("2027-03-28T08:00Z"))
        );
        // The 25-hour day: 10:00 local is 09:00Z again.
        assert_eq!(
            opening(&all_week, &every_day, NO_HOLIDAYS, "2027-10-31T01:30Z"),
            closed_until(Some("2027-10-31T09:00Z"))
        );
    }

    proptest! {
        /// Whatever `now`, the answer agrees with itself: open ⇔ someone on duty, the announced
        /// opening is open and the instant before it closed, the announced closing closed.
        #[test]
        fn desk_opening_is_consistent(minute in 0i64..(21 * 24 * 60), leave_start in 0i64..(7 * 24 * 4), leave_len in 1i64..40) {
            let hours = desk(&[r(9, 0, 12, 0), r(15, 0, 17, 0)]);
            let base = ts("2027-03-20T00:00Z");
            let at = |mins: i64| base.checked_add(jiff::SignedDuration::from_mins(mins)).expect("in range");
            let mut a = official(WorkMode::Remote, r(9, 30, 12, 30));
            a.absences = vec![Interval::new(at(leave_start * 15), at((leave_start + leave_len) * 15)).expect("leave")];
            let b = official(WorkMode::OnSite, r(11, 0, 14, 0));
            let officials = [a, b];
            let tz = rome();
            let check = |t: Timestamp| desk_opening(&hours, &officials, NO_HOLIDAYS, &tz, t).expect("desk opening");
            let now = at(minute);
            let o = check(now);
            prop_assert_eq!(o.open, o.on_duty > 0);
            prop_assert_eq!(o.open, o.closes_at.is_some());
            prop_assert!(!(o.open && o.opens_at.is_some()));
            let second = jiff::SignedDuration::from_secs(1);
            if let Some(t) = o.opens_at {
                prop_assert!(t > now);
                prop_assert!(check(t).open);
                prop_assert!(!check(t - second).open);
            }
            if let Some(t) = o.closes_at {
                prop_assert!(t > now);
                prop_assert!(!check(t).open);
                prop_assert!(check(t - second).open);
            }
        }
    }

    #[test]
    fn duty_on_site_remote_off_and_absent() {
        let tz = rome();
        let on_site = DayPlan::working(WorkMode::OnSite, vec![r(8, 0, 14, 0)], r(10, 0, 13, 0)).expect("plan");
        let remote = DayPlan::working(WorkMode::Remote, vec![r(8, 0, 14, 0)], r(10, 0, 13, 0)).expect("plan");
        // Monday on site, Tuesday remote, off otherwise.
        let mut week: [DayPlan; 7] = std::array::from_fn(|_| DayPlan::off());
        week[0] = on_site;
        week[1] = remote;
        let pattern = WorkingPattern::new(week);
        let duty = |absences: &[Interval], holidays: &BTreeSet<Date>, now: &str| {
            duty_at(Some(&pattern), absences, holidays, &tz, ts(now)).expect("duty")
        };
        let d = |location, in_contact_band| Duty { location, in_contact_band };
        // Monday 8 March 2027: 09:00 local working, before the band; 10:30 in the band.
        assert_eq!(duty(&[], NO_HOLIDAYS, "2027-03-08T08:00Z"), d(Location::OnSite, false));
        assert_eq!(duty(&[], NO_HOLIDAYS, "2027-03-08T09:30Z"), d(Location::OnSite, true));
        // Tuesday remote; after 14:00 off.
        assert_eq!(duty(&[], NO_HOLIDAYS, "2027-03-09T09:30Z"), d(Location::Remote, true));
        assert_eq!(duty(&[], NO_HOLIDAYS, "2027-03-09T13:30Z"), d(Location::Off, false));
        // Wednesday is an off day.
        assert_eq!(duty(&[], NO_HOLIDAYS, "2027-03-10T09:30Z"), d(Location::Off, false));
        // Absent, or a holiday: off.
        let leave = [iv("2027-03-08T09:00Z", "2027-03-08T10:00Z")];
        assert_eq!(duty(&leave, NO_HOLIDAYS, "2027-03-08T09:30Z"), d(Location::Off, false));
        assert_eq!(duty(&leave, NO_HOLIDAYS, "2027-03-08T10:00Z"), d(Location::OnSite, true));
        assert_eq!(duty(&[], &BTreeSet::from([date(2027, 3, 8)]), "2027-03-08T09:30Z"), d(Location::Off, false));
        // No pattern at all.
        assert_eq!(duty_at(None, &[], NO_HOLIDAYS, &tz, ts("2027-03-08T09:30Z")), Ok(d(Location::Off, false)));
        assert_eq!(
            [Location::OnSite, Location::Remote, Location::Off].map(Location::as_str),
            ["on_site", "remote", "off"]
        );
    }

    #[test]
    fn available_needs_a_location_the_band_and_no_call() {
        let d = |location, in_contact_band| Duty { location, in_contact_band };
        assert!(available(d(Location::Remote, true), false));
        assert!(available(d(Location::OnSite, true), false));
        assert!(!available(d(Location::OnSite, true), true));
        assert!(!available(d(Location::OnSite, false), false));
        assert!(!available(d(Location::Off, true), false));
    }

    #[test]
    fn estimated_wait_arithmetic() {
        assert_eq!(estimated_wait_minutes(0, Some(300), 1), 0);
        // No history: 10 minutes each.
        assert_eq!(estimated_wait_minutes(1, None, 1), 10);
        assert_eq!(estimated_wait_minutes(3, None, 1), 30);
        // 3 × 250 s ÷ 2 = 375 s = 6.25 min → 7.
        assert_eq!(estimated_wait_minutes(3, Some(250), 2), 7);
        // Exact minutes are not rounded up: 2 × 90 s = 3 min.
        assert_eq!(estimated_wait_minutes(2, Some(90), 1), 3);
        // Nobody on duty counts as one.
        assert_eq!(estimated_wait_minutes(2, Some(300), 0), 10);
        assert_eq!(estimated_wait_minutes(2, Some(300), 0), estimated_wait_minutes(2, Some(300), 1));
        // A nonsensical typical time falls back to the default; huge inputs saturate.
        assert_eq!(estimated_wait_minutes(1, Some(0), 1), 10);
        assert_eq!(estimated_wait_minutes(u32::MAX, Some(i64::MAX), 1), u32::MAX);
        assert!(!callback_offered(20));
        assert!(callback_offered(21));
        assert!(callback_offered(estimated_wait_minutes(3, None, 1)));
    }

    #[test]
    fn typical_service_is_the_nearest_rank_median() {
        assert_eq!(typical_service_secs(&[]), None);
        assert_eq!(typical_service_secs(&[0, -5]), None);
        assert_eq!(typical_service_secs(&[300, 100, 200]), Some(200));
        assert_eq!(typical_service_secs(&[200, 100]), Some(100));
        assert_eq!(typical_service_secs(&[-1, 0, 500]), Some(500));
    }

    #[test]
    fn nearest_rank_p50_p90() {
        assert_eq!(nearest_rank(&[], 50), None);
        assert_eq!((nearest_rank(&[7], 50), nearest_rank(&[7], 90)), (Some(7), Some(7)));
        assert_eq!((nearest_rank(&[1, 2], 50), nearest_rank(&[1, 2], 90)), (Some(1), Some(2)));
        let ten: Vec<i64> = (1..=10).map(|i| i * 10).collect();
        assert_eq!((nearest_rank(&ten, 50), nearest_rank(&ten, 90)), (Some(50), Some(90)));
        assert_eq!((nearest_rank(&ten, 1), nearest_rank(&ten, 100)), (Some(10), Some(100)));
        // Out-of-range p is clamped.
        assert_eq!((nearest_rank(&ten, 0), nearest_rank(&ten, 250)), (Some(10), Some(100)));
    }

    fn appt(office: &str, service: &str, starts: &str, outcome: AppointmentOutcome) -> AppointmentRecord {
        AppointmentRecord {
            office_id: office.into(),
            service_id: service.into(),
            starts_at: secs(starts),
            outcome,
            arrived_at: None,
            joined_at: None,
            ended_at: None,
        }
    }

    fn attended(mut a: AppointmentRecord, arrived: &str, joined: &str, ended: &str) -> AppointmentRecord {
        (a.arrived_at, a.joined_at, a.ended_at) = (Some(secs(arrived)), Some(secs(joined)), Some(secs(ended)));
        a
    }

    fn walkin(office: &str, service: Option<&str>, queued: &str, outcome: WalkinOutcome) -> WalkinRecord {
        WalkinRecord {
            office_id: office.into(),
            service_id: service.map(Into::into),
            queued_at: secs(queued),
            called_at: None,
            ended_at: None,
            outcome,
        }
    }

    fn served(mut w: WalkinRecord, called: &str, ended: &str) -> WalkinRecord {
        (w.called_at, w.ended_at) = (Some(secs(called)), Some(secs(ended)));
        w
    }

    #[test]
    fn figures_two_days_two_offices() {
        use AppointmentOutcome::{Completed, NoShow, Other};
        use WalkinOutcome::{Abandoned, Open, Served};
        // January: CET, UTC+1.
        let appointments = [
            // Arrived 5 min early, admitted 3 min after the start: waited 180 s; served 900 s.
            attended(
                appt("A", "s1", "2027-01-11T09:00Z", Completed),
                "2027-01-11T08:55Z",
                "2027-01-11T09:03Z",
                "2027-01-11T09:18Z",
            ),
            // Admitted before the start: waited 0; served 1200 s.
            attended(
                appt("A", "s1", "2027-01-11T10:00Z", Completed),
                "2027-01-11T09:50Z",
                "2027-01-11T09:58Z",
                "2027-01-11T10:18Z",
            ),
            appt("A", "s2", "2027-01-11T11:00Z", NoShow),
            appt("A", "s2", "2027-01-11T12:00Z", Other),
            // 23:30Z on the 10th is 00:30 on the 11th in Rome.
            appt("B", "s1", "2027-01-10T23:30Z", NoShow),
            // 22:59Z on the 10th is still the 10th in Rome: outside the range.
            appt("B", "s1", "2027-01-10T22:59Z", NoShow),
            // 23:00Z on the 12th is the 13th in Rome: outside the range.
            appt("A", "s1", "2027-01-12T23:00Z", Completed),
        ];
        let walkins = [
            // Waited 300 s, served 600 s.
            served(walkin("A", None, "2027-01-11T08:00Z", Served), "2027-01-11T08:05Z", "2027-01-11T08:15Z"),
            // Waited 1200 s, served 421 s.
            served(walkin("A", None, "2027-01-11T08:10Z", Served), "2027-01-11T08:30Z", "2027-01-11T08:37:01Z"),
            // Waited 120 s, served 600 s under s1.
            served(walkin("A", Some("s1"), "2027-01-11T09:00Z", Served), "2027-01-11T09:02Z", "2027-01-11T09:12Z"),
            walkin("A", None, "2027-01-11T09:30Z", Abandoned),
            walkin("A", None, "2027-01-11T09:40Z", Open),
            // Queued 23:30Z on the 11th: the 12th in Rome. Waited 60 s, served 600 s.
            served(walkin("A", None, "2027-01-11T23:30Z", Served), "2027-01-11T23:31Z", "2027-01-11T23:41Z"),
            walkin("B", Some("s3"), "2027-01-12T10:00Z", Abandoned),
        ];
        let got = figures(&appointments, &walkins, &rome(), date(2027, 1, 11), date(2027, 1, 12));
        let none = Spread::default();
        let st = |service_id: Option<&str>, count, mean_secs, p50_secs| ServiceTime {
            service_id: service_id.map(Into::into),
            count,
            mean_secs,
            p50_secs,
        };
        let expected = vec![
            DayFigures {
                date: date(2027, 1, 11),
                office_id: "A".into(),
                // [0, 180]
                appointment_wait: Spread { count: 2, p50_secs: Some(0), p90_secs: Some(180) },
                // [120, 300, 1200]
                walkin_wait: Spread { count: 3, p50_secs: Some(300), p90_secs: Some(1200) },
                services: vec![
                    // [600, 900, 1200]: mean 900, median 900.
                    st(Some("s1"), 3, 900, 900),
                    // [421, 600]: mean 510.5 → 511, median 421.
                    st(None, 2, 511, 421),
                ],
                appointments_closed: 3,
                no_shows: 1,
                no_show_rate: Some(1.0 / 3.0),
                walkins_served: 3,
                walkins_abandoned: 1,
            },
            DayFigures {
                date: date(2027, 1, 11),
                office_id: "B".into(),
                appointment_wait: none,
                walkin_wait: none,
                services: vec![],
                appointments_closed: 1,
                no_shows: 1,
                no_show_rate: Some(1.0),
                walkins_served: 0,
                walkins_abandoned: 0,
            },
            DayFigures {
                date: date(2027, 1, 12),
                office_id: "A".into(),
                appointment_wait: none,
                walkin_wait: Spread { count: 1, p50_secs: Some(60), p90_secs: Some(60) },
                services: vec![st(None, 1, 600, 600)],
                appointments_closed: 0,
                no_shows: 0,
                no_show_rate: None,
                walkins_served: 1,
                walkins_abandoned: 0,
            },
            DayFigures {
                date: date(2027, 1, 12),
                office_id: "B".into(),
                appointment_wait: none,
                walkin_wait: none,
                services: vec![],
                appointments_closed: 0,
                no_shows: 0,
                no_show_rate: None,
                walkins_served: 0,
                walkins_abandoned: 1,
            },
        ];
        assert_eq!(got, expected);
    }

    #[test]
    fn figures_follow_local_days_in_summer_and_skip_garbage() {
        // July: CEST, UTC+2. 22:30Z is 00:30 the next day; 21:59Z is still the same day.
        let walkins = [
            walkin("A", None, "2027-07-05T22:30Z", WalkinOutcome::Abandoned),
            walkin("A", None, "2027-07-05T21:59Z", WalkinOutcome::Abandoned),
            WalkinRecord { queued_at: i64::MAX, ..walkin("A", None, "2027-07-05T10:00Z", WalkinOutcome::Served) },
        ];
        // Negative or zero durations are not services; a called-before-queued clock glitch waits 0.
        let glitch = served(
            walkin("B", None, "2027-07-05T10:00Z", WalkinOutcome::Served),
            "2027-07-05T09:59Z",
            "2027-07-05T09:59Z",
        );
        let got = figures(&[], &[walkins.as_slice(), &[glitch]].concat(), &rome(), date(2027, 7, 5), date(2027, 7, 6));
        let keys: Vec<_> = got.iter().map(|f| (f.date, f.office_id.as_str(), f.walkins_abandoned)).collect();
        assert_eq!(keys, [(date(2027, 7, 5), "A", 1), (date(2027, 7, 5), "B", 0), (date(2027, 7, 6), "A", 1)]);
        assert_eq!(got[1].walkin_wait, Spread { count: 1, p50_secs: Some(0), p90_secs: Some(0) });
        assert!(got[1].services.is_empty());
        assert_eq!(got[1].walkins_served, 1);
        // A reversed range is empty.
        assert!(figures(&[], &walkins, &rome(), date(2027, 7, 6), date(2027, 7, 5)).is_empty());
    }
}
