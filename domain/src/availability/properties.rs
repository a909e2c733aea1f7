//! Property tests: for random patterns, calendars and services, every offered slot obeys every
//! rule, checked against the plain rules rather than the engine's interval algebra.

use super::*;
use crate::pattern::{DayPlan, MIN_DAILY_REST, NO_WORK_END, NO_WORK_START, TimeRange};
use jiff::civil::{DateTime, Time};
use proptest::prelude::*;

fn rome() -> TimeZone {
    crate::europe_rome().expect("bundled tzdb has Europe/Rome")
}

fn local(tz: &TimeZone, d: Date, t: Time) -> Timestamp {
    tz.to_timestamp(d.to_datetime(t)).expect("time in range")
}

fn time_of(minutes: i64) -> Time {
    Time::midnight().checked_add(SignedDuration::from_mins(minutes)).expect("minutes within the day")
}

/// Minutes of the day → range, clamped before midnight. Starts from 04:00 and ends up to 23:45 so
/// patterns reach into the no-work band.
fn range(start: i64, len: i64) -> Option<TimeRange> {
    let end = (start + len).min(23 * 60 + 45);
    if start >= end {
        return None;
    }
    TimeRange::new(time_of(start), time_of(end)).ok()
}

fn arb_day() -> impl Strategy<Value = DayPlan> {
    (0u8..4, 16i64..80, 1i64..40, 1i64..16, 1i64..30, 0i64..40, 1i64..40).prop_map(
        |(mode, start, len1, gap, len2, c_off, c_len)| {
            let mode = match mode {
                0 => return DayPlan::off(),
                1 => WorkMode::Remote,
                _ => WorkMode::OnSite,
            };
            // 15-minute units; a gap of at least 15 minutes keeps the two ranges apart.
            let q = 15;
            let first = range(start * q, len1 * q);
            let second = range((start + len1 + gap) * q, len2 * q);
            let hours: Vec<TimeRange> = [first, second].into_iter().flatten().collect();
            let contact = range((start + c_off) * q, c_len * q);
            match contact {
                Some(c) => DayPlan::working(mode, hours, c).unwrap_or_else(|_| DayPlan::off()),
                None => DayPlan::off(),
            }
        },
    )
}

/// Instants in 2027, biased towards the weeks around both DST changes.
fn arb_now() -> impl Strategy<Value = Timestamp> {
    let base = prop_oneof![
        Just("2027-01-04T00:00Z"),
        Just("2027-03-22T00:00Z"),
        Just("2027-10-25T00:00Z"),
        Just("2027-06-01T00:00Z")
    ];
    (base, 0i64..14 * 24 * 60)
        .prop_map(|(b, m)| b.parse::<Timestamp>().expect("base instant") + SignedDuration::from_mins(m))
}

fn arb_intervals(now: Timestamp, max: usize) -> impl Strategy<Value = Vec<Interval>> {
    prop::collection::vec((0i64..18 * 24 * 60, 5i64..600), 0..max).prop_map(move |v| {
        v.into_iter()
            .filter_map(|(off, len)| {
                let start = now + SignedDuration::from_mins(off - 24 * 60);
                Interval::starting_at(start, SignedDuration::from_mins(len)).ok()
            })
            .collect()
    })
}

fn arb_official(id: u64, now: Timestamp) -> impl Strategy<Value = Official> {
    (
        prop::array::uniform7(arb_day()),
        prop::collection::vec((0i64..16, arb_day()), 0..3),
        arb_intervals(now, 3),
        arb_intervals(now, 25),
        arb_intervals(now, 10),
    )
        .prop_map(move |(week, exceptions, absences, busy, appointments)| {
            let tz = rome();
            let today = tz.to_datetime(now).date();
            let mut pattern = WorkingPattern::new(week);
            for (off, plan) in exceptions {
                if let Ok(d) = today.checked_add(Span::new().days(off)) {
                    pattern.set_exception(d, plan);
                }
            }
            Official { id: OfficialId(id), pattern, absences, busy, appointments }
        })
}

fn arb_request() -> impl Strategy<Value = AvailabilityRequest> {
    arb_now().prop_flat_map(|now| {
        let officials =
            (1usize..4).prop_flat_map(move |n| (0..n).map(|i| arb_official(i as u64 + 1, now)).collect::<Vec<_>>());
        let service = (
            prop::sample::select(vec![15i64, 20, 30, 45, 60, 90]),
            0i64..7,
            0i64..7,
            0u8..3,
            prop::option::of(prop::sample::select(vec![10i64, 15, 30])),
        )
            .prop_map(|(d, bb, ba, m, step)| Service {
                duration: SignedDuration::from_mins(d),
                buffer_before: SignedDuration::from_mins(bb * 5),
                buffer_after: SignedDuration::from_mins(ba * 5),
                modes: [Modes::VIDEO, Modes::IN_PERSON, Modes::BOTH][m as usize],
                step: step.map(SignedDuration::from_mins),
            });
        let holidays = prop::collection::btree_set(0i64..16, 0..4);
        (officials, service, holidays, 0i64..48 * 60, 1u16..15).prop_map(
            move |(officials, service, holiday_offsets, notice, horizon_days)| {
                let tz = rome();
                let today = tz.to_datetime(now).date();
                let holidays =
                    holiday_offsets.into_iter().filter_map(|o| today.checked_add(Span::new().days(o)).ok()).collect();
                AvailabilityRequest {
                    tz,
                    now,
                    officials,
                    service,
                    holidays,
                    min_notice: SignedDuration::from_mins(notice),
                    horizon_days,
                }
            },
        )
    })
}

fn effective_plan<'a>(req: &AvailabilityRequest, o: &'a Official, d: Date) -> Option<&'a DayPlan> {
    let plan = o.pattern.plan_for(d);
    (!req.holidays.contains(&d) && plan.mode() != WorkMode::Off).then_some(plan)
}

/// Hours of `d` clipped to 06:00–22:00, as instants.
fn clipped_hours(req: &AvailabilityRequest, plan: &DayPlan, d: Date) -> Vec<(Timestamp, Timestamp)> {
    let (lo, hi) = (NO_WORK_END, NO_WORK_START);
    plan.hours()
        .iter()
        .filter(|h| h.start() < hi && h.end() > lo)
        .map(|h| (local(&req.tz, d, h.start().max(lo)), local(&req.tz, d, h.end().min(hi))))
        .collect()
}

/// End of work on `d`, after the rest rule has trimmed its morning; days before `from` count as
/// unknown (the engine starts one day before the first requested date).
fn end_of_work(req: &AvailabilityRequest, o: &Official, d: Date, from: Date) -> Option<Timestamp> {
    if d < from {
        return None;
    }
    let plan = effective_plan(req, o, d)?;
    let rest_until = d.yesterday().ok().and_then(|y| end_of_work(req, o, y, from)).map(|e| e + MIN_DAILY_REST);
    clipped_hours(req, plan, d)
        .into_iter()
        .filter(|&(s, e)| rest_until.map_or(s, |r| s.max(r)) < e)
        .map(|(_, e)| e)
        .next_back()
}

fn check(req: &AvailabilityRequest, slots: &[Slot]) -> Result<(), TestCaseError> {
    let tz = &req.tz;
    let svc = &req.service;
    let earliest = req.now + req.min_notice;
    let horizon = req
        .now
        .to_zoned(tz.clone())
        .checked_add(Span::new().days(i64::from(req.horizon_days)))
        .expect("horizon")
        .timestamp();
    let first = tz.to_datetime(earliest).date();
    for pair in slots.windows(2) {
        prop_assert!(pair[0].start < pair[1].start, "slots out of order or duplicated");
    }
    for slot in slots {
        prop_assert!(!slot.officials.is_empty());
        prop_assert!(slot.officials.windows(2).all(|w| w[0] < w[1]), "officials not sorted");
        prop_assert!(slot.in_person.iter().all(|id| slot.officials.contains(id)));
        let allowed =
            (svc.modes.video || !slot.mode_options.video) && (svc.modes.in_person || !slot.mode_options.in_person);
        prop_assert!(allowed, "a mode the service does not allow");
        prop_assert_eq!(slot.end.duration_since(slot.start), svc.duration);
        prop_assert!(slot.start >= earliest, "before the notice");
        prop_assert!(slot.end <= horizon, "after the horizon");

        let (start_local, end_local): (DateTime, DateTime) = (tz.to_datetime(slot.start), tz.to_datetime(slot.end));
        let d = start_local.date();
        prop_assert!(!req.holidays.contains(&d), "slot on a holiday");
        let needed = Interval::new(slot.start - svc.buffer_before, slot.end + svc.buffer_after).expect("positive");
        // The no-work band, buffers included.
        prop_assert!(
            needed.start() >= local(tz, d, NO_WORK_END) && needed.end() <= local(tz, d, NO_WORK_START),
            "in the no-work band: {start_local}–{end_local}"
        );

        for id in &slot.officials {
            let o = req.officials.iter().find(|o| o.id == *id).expect("official of the request");
            for busy in o.absences.iter().chain(&o.busy).chain(&o.appointments) {
                prop_assert!(!busy.overlaps(&needed), "{id:?} busy/absent/booked during {start_local} (+buffers)");
            }
            let plan = effective_plan(req, o, d);
            prop_assert!(plan.is_some(), "{id:?} is off on {d}");
            let plan = plan.expect("checked");
            let band = plan.contact().expect("working day has a band");
            prop_assert!(
                slot.start >= local(tz, d, band.start()) && slot.end <= local(tz, d, band.end()),
                "{id:?} outside contact band at {start_local}"
            );
            prop_assert!(
                clipped_hours(req, plan, d).iter().any(|&(s, e)| s <= needed.start() && needed.end() <= e),
                "{id:?} outside working hours (with buffers) at {start_local}"
            );
            if plan.mode() == WorkMode::Remote {
                prop_assert!(!slot.in_person.contains(id), "{id:?} in person on a remote day");
            }
            let prev = d.yesterday().ok().and_then(|y| end_of_work(req, o, y, first.yesterday().unwrap_or(first)));
            if let Some(prev) = prev {
                prop_assert!(
                    needed.start() >= prev + MIN_DAILY_REST,
                    "{id:?} less than 11 h after previous day's end at {start_local}"
                );
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn offered_slots_obey_every_rule(req in arb_request()) {
        let slots = free_slots(&req).expect("generated requests are valid");
        check(&req, &slots)?;
    }

    /// Removing every busy interval, absence and appointment never removes a slot (monotonicity):
    /// catches an engine that hides slots for unrelated reasons.
    #[test]
    fn clearing_calendars_only_adds_slots(req in arb_request()) {
        let with = free_slots(&req).expect("valid");
        let mut cleared = req.clone();
        for o in &mut cleared.officials {
            o.absences.clear();
            o.busy.clear();
            o.appointments.clear();
        }
        let without = free_slots(&cleared).expect("valid");
        for s in &with {
            let wider = without.iter().find(|w| w.start == s.start);
            prop_assert!(wider.is_some_and(|w| s.officials.iter().all(|id| w.officials.contains(id))));
        }
    }
}
