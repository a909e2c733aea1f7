//! An official's working pattern (lavoro agile): per weekday on site, remote or off, with working
//! hours and a contact band, plus per-date exceptions; and the rules every pattern is held to
//! whatever it says: the no-work band 22:00–06:00 and 11 consecutive hours of rest after the
//! previous day's end of work.
//!
//! Plans are written in local civil time ("09:00") and turned into UTC intervals one day at a
//! time, so a 23- or 25-hour day (DST) still has its 09:00 at 09:00 local.

use std::collections::{BTreeMap, BTreeSet};

use jiff::civil::{Date, DateTime, Time, time};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use crate::interval::{Interval, IntervalSet};

/// Start of the no-work band (fascia di inoperabilità): no work from 22:00 …
pub const NO_WORK_START: Time = time(22, 0, 0, 0);
/// … to 06:00 the next morning.
pub const NO_WORK_END: Time = time(6, 0, 0, 0);
/// Minimum rest between the end of one day's work and the next day's first slot.
pub const MIN_DAILY_REST: SignedDuration = SignedDuration::from_hours(11);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WorkMode {
    OnSite,
    Remote,
    Off,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("time range {start}..{end} is empty or reversed")]
    EmptyRange { start: Time, end: Time },
    #[error("{hour}:{minute} is not a time of day")]
    InvalidTime { hour: i8, minute: i8 },
    #[error("a working day needs at least one range of working hours")]
    NoHours,
    #[error("working hours {first} and {second} overlap or are out of order")]
    OverlappingHours { first: TimeRange, second: TimeRange },
    #[error("contact band {contact} is longer than the working hours ({hours_minutes} min)")]
    ContactBandTooLong { contact: TimeRange, hours_minutes: i64 },
    #[error("an off day has neither hours nor a contact band: use DayPlan::off()")]
    OffDayWithHours,
    #[error("local time {0} cannot be placed in the time zone")]
    Unrepresentable(DateTime),
    #[error("date range {first}..={last} is reversed or leaves the calendar")]
    DateRange { first: Date, last: Date },
}

/// A local time range `[start, end)` within one day (never across midnight: the no-work band
/// forbids work there anyway).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimeRange {
    start: Time,
    end: Time,
}

impl std::fmt::Display for TimeRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}–{}", self.start.strftime("%H:%M"), self.end.strftime("%H:%M"))
    }
}

impl TimeRange {
    pub fn new(start: Time, end: Time) -> Result<Self, PatternError> {
        if start < end { Ok(TimeRange { start, end }) } else { Err(PatternError::EmptyRange { start, end }) }
    }

    /// Convenience: `TimeRange::hm(8, 0, 14, 0)` is 08:00–14:00.
    pub fn hm(start_hour: i8, start_minute: i8, end_hour: i8, end_minute: i8) -> Result<Self, PatternError> {
        let t = |hour, minute| Time::new(hour, minute, 0, 0).map_err(|_| PatternError::InvalidTime { hour, minute });
        TimeRange::new(t(start_hour, start_minute)?, t(end_hour, end_minute)?)
    }

    pub fn start(&self) -> Time {
        self.start
    }

    pub fn end(&self) -> Time {
        self.end
    }

    fn minutes(&self) -> i64 {
        self.end.duration_since(self.start).as_mins()
    }

    fn intersect(&self, other: &TimeRange) -> Option<TimeRange> {
        TimeRange::new(self.start.max(other.start), self.end.min(other.end)).ok()
    }
}

/// What one day looks like for an official.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayPlan {
    mode: WorkMode,
    /// Sorted, non-overlapping; possibly split (08:00–14:00, 15:00–18:00).
    hours: Vec<TimeRange>,
    /// When citizens may be given appointments; only its overlap with `hours` is ever offered.
    contact: Option<TimeRange>,
}

impl DayPlan {
    pub fn off() -> Self {
        DayPlan { mode: WorkMode::Off, hours: Vec::new(), contact: None }
    }

    /// A working day (on site or remote). The contact band may be no longer than the day's
    /// working time (collective agreements: no longer than the average working day); a break
    /// between two working ranges inside the band does not count, so a band may span the lunch
    /// break of split hours (08:30–12:30 and 14:30–16:30 with a band 08:30–16:30: 6 hours).
    pub fn working(mode: WorkMode, hours: Vec<TimeRange>, contact: TimeRange) -> Result<Self, PatternError> {
        if mode == WorkMode::Off {
            return Err(PatternError::OffDayWithHours);
        }
        if hours.is_empty() {
            return Err(PatternError::NoHours);
        }
        for pair in hours.windows(2) {
            if pair[1].start < pair[0].end {
                return Err(PatternError::OverlappingHours { first: pair[0], second: pair[1] });
            }
        }
        let hours_minutes: i64 = hours.iter().map(TimeRange::minutes).sum();
        let minute = |t: Time| i64::from(t.hour()) * 60 + i64::from(t.minute());
        let breaks_in_band: i64 = hours
            .windows(2)
            .map(|pair| {
                let (from, to) =
                    (minute(pair[0].end).max(minute(contact.start)), minute(pair[1].start).min(minute(contact.end)));
                (to - from).max(0)
            })
            .sum();
        if contact.minutes() - breaks_in_band > hours_minutes {
            return Err(PatternError::ContactBandTooLong { contact, hours_minutes });
        }
        Ok(DayPlan { mode, hours, contact: Some(contact) })
    }

    /// An on-site day that follows an office's opening hours: citizens may be received whenever the
    /// office is open, so the contact band spans every opening range. The band-length limit of
    /// [`DayPlan::working`] is a smart-working rule (lavoro agile) and does not apply here.
    pub fn opening_hours(hours: Vec<TimeRange>) -> Result<Self, PatternError> {
        let (Some(first), Some(last)) = (hours.first(), hours.last()) else { return Err(PatternError::NoHours) };
        let span = TimeRange::new(first.start, last.end)?;
        let plan = DayPlan::working(WorkMode::OnSite, hours.clone(), TimeRange::new(first.start, first.end)?)?;
        Ok(DayPlan { contact: Some(span), ..plan })
    }

    pub fn mode(&self) -> WorkMode {
        self.mode
    }

    pub fn hours(&self) -> &[TimeRange] {
        &self.hours
    }

    pub fn contact(&self) -> Option<TimeRange> {
        self.contact
    }

    /// Working hours clipped to the day outside the no-work band.
    fn allowed_hours(&self) -> impl Iterator<Item = TimeRange> + '_ {
        let allowed = TimeRange { start: NO_WORK_END, end: NO_WORK_START };
        self.hours.iter().filter_map(move |h| h.intersect(&allowed))
    }
}

/// A weekly plan (Monday first) with per-date exceptions (a swapped office day, a training day).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkingPattern {
    week: [DayPlan; 7],
    exceptions: BTreeMap<Date, DayPlan>,
}

/// Contact time on one day, in UTC, with that day's mode (which decides video vs in person).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContactWindow {
    pub interval: Interval,
    pub mode: WorkMode,
}

/// A pattern resolved to UTC over a range of dates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Schedule {
    /// When the official works: hours − no-work band − rest − holidays.
    pub work: IntervalSet,
    /// Contact band ∩ `work`, sorted, one or more per working day.
    pub contact: Vec<ContactWindow>,
}

impl WorkingPattern {
    /// `week[0]` is Monday, `week[6]` Sunday.
    pub fn new(week: [DayPlan; 7]) -> Self {
        WorkingPattern { week, exceptions: BTreeMap::new() }
    }

    pub fn with_exception(mut self, date: Date, plan: DayPlan) -> Self {
        self.exceptions.insert(date, plan);
        self
    }

    pub fn set_exception(&mut self, date: Date, plan: DayPlan) {
        self.exceptions.insert(date, plan);
    }

    /// The plan for `date` before holidays are applied: the exception if any, else the weekday's.
    pub fn plan_for(&self, date: Date) -> &DayPlan {
        self.exceptions.get(&date).unwrap_or(&self.week[date.weekday().to_monday_zero_offset() as usize])
    }

    /// Resolves `first..=last` to UTC windows in `tz`. Holidays are off whatever the plan says.
    /// The day before `first` is resolved too, so the rest rule holds on `first`.
    pub fn schedule(
        &self,
        first: Date,
        last: Date,
        tz: &TimeZone,
        holidays: &BTreeSet<Date>,
    ) -> Result<Schedule, PatternError> {
        let range_err = || PatternError::DateRange { first, last };
        if last < first {
            return Err(range_err());
        }
        let mut work = Vec::new();
        let mut contact = Vec::new();
        let mut day_work = Vec::new();
        let mut prev_end: Option<Timestamp> = None;
        let mut date = first.yesterday().map_err(|_| range_err())?;
        loop {
            let plan = if holidays.contains(&date) { &OFF } else { self.plan_for(date) };
            day_work.clear();
            if plan.mode != WorkMode::Off {
                let rest_until = match prev_end {
                    Some(end) => Some(end.checked_add(MIN_DAILY_REST).map_err(|_| range_err())?),
                    None => None,
                };
                for h in plan.allowed_hours() {
                    let mut start = to_utc(tz, date, h.start)?;
                    let end = to_utc(tz, date, h.end)?;
                    if let Some(rest_until) = rest_until {
                        start = start.max(rest_until);
                    }
                    if let Ok(iv) = Interval::new(start, end) {
                        day_work.push(iv);
                    }
                }
            }
            prev_end = day_work.last().map(Interval::end);
            if date >= first {
                if let (Some(band), false) = (plan.contact, day_work.is_empty()) {
                    let band = Interval::new(to_utc(tz, date, band.start)?, to_utc(tz, date, band.end)?);
                    if let Ok(band) = band {
                        for w in &day_work {
                            if let Some(interval) = w.intersection(&band) {
                                contact.push(ContactWindow { interval, mode: plan.mode });
                            }
                        }
                    }
                }
                work.extend_from_slice(&day_work);
            }
            if date >= last {
                break;
            }
            date = date.tomorrow().map_err(|_| range_err())?;
        }
        Ok(Schedule { work: IntervalSet::from_intervals(work), contact })
    }
}

static OFF: DayPlan = DayPlan { mode: WorkMode::Off, hours: Vec::new(), contact: None };

/// Local civil time on `date` → instant. Within 06:00–22:00 no Italian DST transition can make this
/// ambiguous; elsewhere jiff's "compatible" rule (later offset in a gap, earlier in a fold) applies.
pub(crate) fn to_utc(tz: &TimeZone, date: Date, t: Time) -> Result<Timestamp, PatternError> {
    let dt = date.to_datetime(t);
    tz.to_timestamp(dt).map_err(|_| PatternError::Unrepresentable(dt))
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn rome() -> TimeZone {
        crate::europe_rome().expect("bundled tzdb has Europe/Rome")
    }

    fn r(a: i8, b: i8, c: i8, d: i8) -> TimeRange {
        TimeRange::hm(a, b, c, d).expect("valid test range")
    }

    fn week_of(plan: DayPlan) -> WorkingPattern {
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

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("test timestamp")
    }

    #[test]
    fn plan_validation() {
        assert!(TimeRange::hm(9, 0, 9, 0).is_err());
        assert!(TimeRange::hm(25, 0, 26, 0).is_err());
        assert_eq!(DayPlan::working(WorkMode::OnSite, vec![], r(9, 0, 10, 0)), Err(PatternError::NoHours));
        assert!(matches!(
            DayPlan::working(WorkMode::OnSite, vec![r(8, 0, 14, 0), r(13, 0, 18, 0)], r(9, 0, 10, 0)),
            Err(PatternError::OverlappingHours { .. })
        ));
        assert!(matches!(
            DayPlan::working(WorkMode::Remote, vec![r(9, 0, 12, 0)], r(8, 0, 12, 0)),
            Err(PatternError::ContactBandTooLong { .. })
        ));
        // A personal band may span the lunch break of split hours: the break does not count.
        let split = DayPlan::working(WorkMode::OnSite, vec![r(8, 30, 12, 30), r(14, 30, 16, 30)], r(8, 30, 16, 30));
        assert_eq!(split.map(|p| p.contact()), Ok(Some(r(8, 30, 16, 30))));
        assert!(matches!(
            DayPlan::working(WorkMode::OnSite, vec![r(8, 30, 12, 30), r(14, 30, 16, 30)], r(8, 0, 16, 30)),
            Err(PatternError::ContactBandTooLong { .. })
        ));
        // Split opening hours: the band spans both ranges (only the overlap with hours is offered).
        let open = DayPlan::opening_hours(vec![r(9, 0, 12, 0), r(15, 0, 17, 0)]).unwrap();
        assert_eq!(open.contact(), Some(r(9, 0, 17, 0)));
        assert_eq!(open.mode(), WorkMode::OnSite);
        assert_eq!(DayPlan::opening_hours(vec![]), Err(PatternError::NoHours));
        assert_eq!(
            DayPlan::working(WorkMode::Off, vec![r(9, 0, 12, 0)], r(9, 0, 10, 0)),
            Err(PatternError::OffDayWithHours)
        );
    }

    #[test]
    fn exception_overrides_weekday() {
        let remote = DayPlan::working(WorkMode::Remote, vec![r(9, 0, 13, 0)], r(9, 0, 12, 0)).expect("plan");
        let p = week_of(DayPlan::off()).with_exception(date(2027, 3, 10), remote.clone());
        assert_eq!(p.plan_for(date(2027, 3, 10)), &remote);
        assert_eq!(p.plan_for(date(2027, 3, 11)).mode(), WorkMode::Off);
    }

    #[test]
    fn split_hours_and_contact_band_in_utc() {
        let plan =
            DayPlan::working(WorkMode::OnSite, vec![r(8, 0, 14, 0), r(15, 0, 18, 0)], r(9, 0, 17, 0)).expect("plan");
        // Wednesday 10 March 2027, CET (UTC+1).
        let s =
            week_of(plan).schedule(date(2027, 3, 10), date(2027, 3, 10), &rome(), &BTreeSet::new()).expect("schedule");
        let work: Vec<_> = s.work.iter().map(|iv| (iv.start(), iv.end())).collect();
        assert_eq!(
            work,
            [(ts("2027-03-10T07:00Z"), ts("2027-03-10T13:00Z")), (ts("2027-03-10T14:00Z"), ts("2027-03-10T17:00Z"))]
        );
        let contact: Vec<_> = s.contact.iter().map(|c| (c.interval.start(), c.interval.end())).collect();
        assert_eq!(
            contact,
            [(ts("2027-03-10T08:00Z"), ts("2027-03-10T13:00Z")), (ts("2027-03-10T14:00Z"), ts("2027-03-10T16:00Z"))]
        );
    }

    #[test]
    fn no_work_band_clips_hours() {
        let plan =
            DayPlan::working(WorkMode::Remote, vec![r(5, 0, 9, 0), r(20, 0, 23, 30)], r(5, 0, 9, 0)).expect("plan");
        let s =
            week_of(plan).schedule(date(2027, 3, 10), date(2027, 3, 10), &rome(), &BTreeSet::new()).expect("schedule");
        let work: Vec<_> = s.work.iter().map(|iv| (iv.start(), iv.end())).collect();
        // 06:00–09:00 and 20:00–22:00 local. The previous day ended at 22:00, so the rest rule
        // also pushes the morning to 09:00 — nothing remains of it.
        assert_eq!(work, [(ts("2027-03-10T19:00Z"), ts("2027-03-10T21:00Z"))]);
        assert!(s.contact.is_empty());
    }

    #[test]
    fn eleven_hours_rest_after_previous_day() {
        let late = DayPlan::working(WorkMode::OnSite, vec![r(14, 0, 21, 0)], r(14, 0, 21, 0)).expect("plan");
        let early = DayPlan::working(WorkMode::OnSite, vec![r(7, 0, 13, 0)], r(7, 0, 13, 0)).expect("plan");
        let p = week_of(early).with_exception(date(2027, 3, 9), late);
        let s = p.schedule(date(2027, 3, 10), date(2027, 3, 10), &rome(), &BTreeSet::new()).expect("schedule");
        // Work ended 21:00 on the 9th, so nothing before 08:00 on the 10th.
        assert_eq!(s.work.as_slice()[0].start(), ts("2027-03-10T07:00Z"));
        assert_eq!(s.contact[0].interval.start(), ts("2027-03-10T07:00Z"));
        // Without the late day the 10th starts at 07:00 local.
        let holidays = BTreeSet::from([date(2027, 3, 9)]);
        let s = p.schedule(date(2027, 3, 10), date(2027, 3, 10), &rome(), &holidays).expect("schedule");
        assert_eq!(s.work.as_slice()[0].start(), ts("2027-03-10T06:00Z"));
    }

    #[test]
    fn holiday_is_off_even_with_an_exception() {
        let plan = DayPlan::working(WorkMode::OnSite, vec![r(8, 0, 14, 0)], r(9, 0, 12, 0)).expect("plan");
        let p = week_of(plan.clone()).with_exception(date(2027, 4, 26), plan);
        let holidays = BTreeSet::from([date(2027, 4, 26)]);
        let s = p.schedule(date(2027, 4, 26), date(2027, 4, 26), &rome(), &holidays).expect("schedule");
        assert!(s.work.is_empty() && s.contact.is_empty());
    }

    #[test]
    fn dst_days_keep_local_hours() {
        let plan = DayPlan::working(WorkMode::OnSite, vec![r(9, 0, 12, 0)], r(9, 0, 12, 0)).expect("plan");
        let every_day = WorkingPattern::new(std::array::from_fn(|_| plan.clone()));
        let s = every_day.schedule(date(2027, 3, 27), date(2027, 3, 29), &rome(), &BTreeSet::new()).expect("schedule");
        let starts: Vec<_> = s.work.iter().map(|iv| iv.start()).collect();
        // Saturday CET, Sunday 28 March (23 h) and Monday CEST.
        assert_eq!(starts, [ts("2027-03-27T08:00Z"), ts("2027-03-28T07:00Z"), ts("2027-03-29T07:00Z")]);
    }
}
