//! Free appointment slots of an office: the officials' working patterns resolved to UTC, minus
//! absences, busy times and booked appointments (with the service's buffers), cut to the notice and
//! the horizon, sampled on a local-time grid per day.

use std::collections::{BTreeSet, HashMap};

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Span, Timestamp};

use crate::interval::{Interval, IntervalSet};
use crate::pattern::{ContactWindow, PatternError, WorkMode, WorkingPattern};

/// An official's id as the database knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OfficialId(pub u64);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MeetingMode {
    Video,
    InPerson,
}

/// A set of meeting modes: what a service allows, or what a slot offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Modes {
    pub video: bool,
    pub in_person: bool,
}

impl Modes {
    pub const VIDEO: Modes = Modes { video: true, in_person: false };
    pub const IN_PERSON: Modes = Modes { video: false, in_person: true };
    pub const BOTH: Modes = Modes { video: true, in_person: true };

    pub fn allows(&self, mode: MeetingMode) -> bool {
        match mode {
            MeetingMode::Video => self.video,
            MeetingMode::InPerson => self.in_person,
        }
    }

    pub fn is_empty(&self) -> bool {
        !self.video && !self.in_person
    }

    fn union(self, other: Modes) -> Modes {
        Modes { video: self.video || other.video, in_person: self.in_person || other.in_person }
    }

    /// What a day in `mode` can offer of these modes: a remote official meets by video only.
    fn on(self, mode: WorkMode) -> Modes {
        match mode {
            WorkMode::OnSite => self,
            WorkMode::Remote => Modes { video: self.video, in_person: false },
            WorkMode::Off => Modes::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Official {
    pub id: OfficialId,
    pub pattern: WorkingPattern,
    /// Leave, sickness, hourly leave (which lifts the contact obligation).
    pub absences: Vec<Interval>,
    /// Busy times from the official's own calendars (free-busy).
    pub busy: Vec<Interval>,
    /// Appointments already booked with this official.
    pub appointments: Vec<Interval>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Service {
    pub duration: SignedDuration,
    /// Free time the official needs before and after the meeting; it must fall in working time and
    /// clear of anything busy, but may lie outside the contact band.
    pub buffer_before: SignedDuration,
    pub buffer_after: SignedDuration,
    pub modes: Modes,
    /// Distance between candidate starts, counted from the opening of each contact window;
    /// `None` = duration.
    pub step: Option<SignedDuration>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvailabilityRequest {
    /// Europe/Rome in production (`crate::europe_rome`).
    pub tz: TimeZone,
    /// Passed in, never read from a clock: the engine is pure.
    pub now: Timestamp,
    pub officials: Vec<Official>,
    pub service: Service,
    /// National holidays and the patron's day (`crate::holidays::holiday_dates`).
    pub holidays: BTreeSet<Date>,
    /// No slot starts before `now + min_notice`.
    pub min_notice: SignedDuration,
    /// No slot ends after `now` plus this many calendar days (in `tz`).
    pub horizon_days: u16,
}

/// An offered slot: at least one official is free for it with its buffers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub start: Timestamp,
    pub end: Timestamp,
    pub mode_options: Modes,
    /// Every official free for the slot, sorted by id; all of them can meet by video when
    /// `mode_options.video`.
    pub officials: Vec<OfficialId>,
    /// Those of `officials` who are on site and can meet in person (empty unless
    /// `mode_options.in_person`).
    pub in_person: Vec<OfficialId>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AvailabilityError {
    #[error("the service duration must be positive")]
    NonPositiveDuration,
    #[error("buffers must not be negative")]
    NegativeBuffer,
    #[error("the slot step must be at least one minute")]
    StepTooSmall,
    #[error("the minimum notice must not be negative")]
    NegativeNotice,
    #[error("the service allows no meeting mode")]
    NoModes,
    #[error("official {0:?} appears twice")]
    DuplicateOfficial(OfficialId),
    #[error("the requested range leaves the representable calendar")]
    OutOfRange,
    #[error("working pattern of official {official:?}: {source}")]
    Pattern { official: OfficialId, source: PatternError },
}

/// One official's calendar prepared for the sweep over candidate starts.
struct Calendar {
    id: OfficialId,
    free: IntervalSet,
    contact: Vec<ContactWindow>,
    // Cursors: candidates are visited in increasing time, so each list is walked once.
    next_free: usize,
    next_contact: usize,
}

/// All slots of the office between `now + min_notice` and the horizon, in increasing start order.
pub fn free_slots(req: &AvailabilityRequest) -> Result<Vec<Slot>, AvailabilityError> {
    let svc = &req.service;
    let step = svc.step.unwrap_or(svc.duration);
    validate(req, step)?;

    let earliest = req.now.checked_add(req.min_notice).map_err(|_| AvailabilityError::OutOfRange)?;
    // Calendar days, not 24-hour multiples: "60 days" ends at the same wall-clock time across DST.
    let horizon_end = req
        .now
        .to_zoned(req.tz.clone())
        .checked_add(Span::new().days(i64::from(req.horizon_days)))
        .map_err(|_| AvailabilityError::OutOfRange)?
        .timestamp();
    if horizon_end <= earliest {
        return Ok(Vec::new());
    }
    let first = req.tz.to_datetime(earliest).date();
    let last = req.tz.to_datetime(horizon_end).date();

    let mut calendars = Vec::with_capacity(req.officials.len());
    for official in &req.officials {
        calendars.push(calendar(req, official, first, last)?);
    }
    calendars.sort_unstable_by_key(|c| c.id);
    if let Some(pair) = calendars.windows(2).find(|p| p[0].id == p[1].id) {
        return Err(AvailabilityError::DuplicateOfficial(pair[0].id));
    }

    let candidates = candidate_starts(&calendars, step, svc.duration, earliest, horizon_end)?;
    let mut slots = Vec::new();
    let mut free_now: Vec<OfficialId> = Vec::with_capacity(calendars.len());
    let mut in_person_now: Vec<OfficialId> = Vec::with_capacity(calendars.len());
    for start in candidates {
        let slot = Interval::starting_at(start, svc.duration).map_err(|_| AvailabilityError::OutOfRange)?;
        let needed = slot.widened(svc.buffer_before, svc.buffer_after).map_err(|_| AvailabilityError::OutOfRange)?;
        free_now.clear();
        in_person_now.clear();
        let mut offered = Modes::default();
        for cal in &mut calendars {
            if let Some(modes) = cal.offers(&slot, &needed, svc.modes) {
                free_now.push(cal.id);
                if modes.in_person {
                    in_person_now.push(cal.id);
                }
                offered = offered.union(modes);
            }
        }
        if !free_now.is_empty() {
            slots.push(Slot {
                start: slot.start(),
                end: slot.end(),
                mode_options: offered,
                officials: free_now.clone(),
                in_person: in_person_now.clone(),
            });
        }
    }
    Ok(slots)
}

/// Candidate starts, increasing and distinct: from the opening of each contact window, every `step`,
/// while the slot fits in the window — a 20-minute service in an office that opens at 08:30 and 14:30
/// starts at 08:30, 08:50 … and 14:30, 14:50 …, never on a grid counted from midnight. Contact
/// windows lie inside 06:00–22:00, so no DST change falls within one: stepping in absolute time is
/// stepping in local time.
fn candidate_starts(
    calendars: &[Calendar],
    step: SignedDuration,
    duration: SignedDuration,
    earliest: Timestamp,
    horizon_end: Timestamp,
) -> Result<Vec<Timestamp>, AvailabilityError> {
    let mut starts = Vec::new();
    for window in calendars.iter().flat_map(|c| &c.contact) {
        let mut start = window.interval.start();
        loop {
            let end = start.checked_add(duration).map_err(|_| AvailabilityError::OutOfRange)?;
            if end > window.interval.end() || end > horizon_end {
                break;
            }
            if start >= earliest {
                starts.push(start);
            }
            start = start.checked_add(step).map_err(|_| AvailabilityError::OutOfRange)?;
        }
    }
    starts.sort_unstable();
    starts.dedup();
    Ok(starts)
}

impl Calendar {
    /// The modes this official can offer for `slot` (occupying `needed` with buffers), if free.
    fn offers(&mut self, slot: &Interval, needed: &Interval, service: Modes) -> Option<Modes> {
        let contact = &self.contact;
        while self.next_contact < contact.len() && contact[self.next_contact].interval.end() < slot.end() {
            self.next_contact += 1;
        }
        let window = contact.get(self.next_contact)?;
        if window.interval.start() > slot.start() {
            return None;
        }
        let free = self.free.as_slice();
        while self.next_free < free.len() && free[self.next_free].end() < needed.end() {
            self.next_free += 1;
        }
        if free.get(self.next_free)?.start() > needed.start() {
            return None;
        }
        let modes = service.on(window.mode);
        (!modes.is_empty()).then_some(modes)
    }
}

fn validate(req: &AvailabilityRequest, step: SignedDuration) -> Result<(), AvailabilityError> {
    let svc = &req.service;
    if !svc.duration.is_positive() {
        return Err(AvailabilityError::NonPositiveDuration);
    }
    if svc.buffer_before.is_negative() || svc.buffer_after.is_negative() {
        return Err(AvailabilityError::NegativeBuffer);
    }
    // Bounds the sweep to at most 1,440 candidates per day.
    if step < SignedDuration::from_mins(1) {
        return Err(AvailabilityError::StepTooSmall);
    }
    if req.min_notice.is_negative() {
        return Err(AvailabilityError::NegativeNotice);
    }
    if svc.modes.is_empty() {
        return Err(AvailabilityError::NoModes);
    }
    Ok(())
}

fn calendar(req: &AvailabilityRequest, o: &Official, first: Date, last: Date) -> Result<Calendar, AvailabilityError> {
    let schedule = o
        .pattern
        .schedule(first, last, &req.tz, &req.holidays)
        .map_err(|source| AvailabilityError::Pattern { official: o.id, source })?;
    let blocked = IntervalSet::from_intervals(o.absences.iter().chain(&o.busy).chain(&o.appointments).copied());
    let free = schedule.work.subtract(&blocked);
    // Remote days offer nothing to an in-person-only service.
    let contact = schedule.contact.into_iter().filter(|w| !req.service.modes.on(w.mode).is_empty()).collect();
    Ok(Calendar { id: o.id, free, contact, next_free: 0, next_contact: 0 })
}

/// The least-loaded official free for `slot` (ties: smallest id), for a booking in any mode the
/// slot offers. `load` counts appointments per official (missing = 0).
pub fn assign_fairly(slot: &Slot, load: &HashMap<OfficialId, usize>) -> Option<OfficialId> {
    least_loaded(&slot.officials, load)
}

/// As [`assign_fairly`], for a booking in `mode`: in person needs an official on site.
pub fn assign_fairly_for(slot: &Slot, mode: MeetingMode, load: &HashMap<OfficialId, usize>) -> Option<OfficialId> {
    match mode {
        MeetingMode::Video if slot.mode_options.video => least_loaded(&slot.officials, load),
        MeetingMode::InPerson if slot.mode_options.in_person => least_loaded(&slot.in_person, load),
        _ => None,
    }
}

fn least_loaded(candidates: &[OfficialId], load: &HashMap<OfficialId, usize>) -> Option<OfficialId> {
    candidates.iter().copied().min_by_key(|id| (load.get(id).copied().unwrap_or(0), *id))
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod properties;
