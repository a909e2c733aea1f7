//! One test per rule, on a small office in Europe/Rome in 2027.

use super::*;
use crate::pattern::{DayPlan, TimeRange};
use jiff::civil::date;

fn rome() -> TimeZone {
    crate::europe_rome().expect("bundled tzdb has Europe/Rome")
}

fn r(a: i8, b: i8, c: i8, d: i8) -> TimeRange {
    TimeRange::hm(a, b, c, d).expect("valid test range")
}

fn mins(m: i64) -> SignedDuration {
    SignedDuration::from_mins(m)
}

/// Local Rome wall-clock time as an instant.
fn at(y: i16, mo: i8, d: i8, h: i8, mi: i8) -> Timestamp {
    date(y, mo, d).at(h, mi, 0, 0).to_zoned(rome()).expect("test time in range").timestamp()
}

fn iv(a: Timestamp, b: Timestamp) -> Interval {
    Interval::new(a, b).expect("test interval")
}

fn plan(mode: WorkMode, hours: Vec<TimeRange>, contact: TimeRange) -> DayPlan {
    DayPlan::working(mode, hours, contact).expect("valid test plan")
}

/// Monday–Friday on site 08:00–14:00, contact 09:00–12:00; weekend off.
fn weekdays(day: DayPlan) -> WorkingPattern {
    WorkingPattern::new([day.clone(), day.clone(), day.clone(), day.clone(), day, DayPlan::off(), DayPlan::off()])
}

fn office_hours() -> DayPlan {
    plan(WorkMode::OnSite, vec![r(8, 0, 14, 0)], r(9, 0, 12, 0))
}

fn official(id: u64, pattern: WorkingPattern) -> Official {
    Official { id: OfficialId(id), pattern, absences: vec![], busy: vec![], appointments: vec![] }
}

fn service(duration: i64) -> Service {
    Service { duration: mins(duration), buffer_before: mins(0), buffer_after: mins(0), modes: Modes::BOTH, step: None }
}

/// Now: Monday 8 March 2027 00:00 local, no notice, two weeks ahead, one office-hours official.
fn request() -> AvailabilityRequest {
    AvailabilityRequest {
        tz: rome(),
        now: at(2027, 3, 8, 0, 0),
        officials: vec![official(1, weekdays(office_hours()))],
        service: service(30),
        holidays: BTreeSet::new(),
        min_notice: mins(0),
        horizon_days: 14,
    }
}

fn slots(req: &AvailabilityRequest) -> Vec<Slot> {
    free_slots(req).expect("valid request")
}

/// Local start times ("HH:MM") of the slots on one date.
fn starts_on(slots: &[Slot], day: Date) -> Vec<String> {
    let tz = rome();
    slots
        .iter()
        .map(|s| tz.to_datetime(s.start))
        .filter(|dt| dt.date() == day)
        .map(|dt| dt.time().strftime("%H:%M").to_string())
        .collect()
}

#[test]
fn contact_band_bounds_the_day() {
    let all = slots(&request());
    assert_eq!(starts_on(&all, date(2027, 3, 8)), ["09:00", "09:30", "10:00", "10:30", "11:00", "11:30"]);
    // Weekend off.
    assert!(starts_on(&all, date(2027, 3, 13)).is_empty());
    assert!(starts_on(&all, date(2027, 3, 14)).is_empty());
    assert_eq!(all.len(), 10 * 6);
    assert!(all.iter().all(|s| s.end.duration_since(s.start) == mins(30)));
}

#[test]
fn split_hours_exclude_the_break_and_step_is_honoured() {
    let mut req = request();
    let split = plan(WorkMode::OnSite, vec![r(8, 0, 12, 0), r(13, 0, 16, 0)], r(11, 0, 14, 0));
    req.officials = vec![official(1, weekdays(split))];
    req.service.duration = mins(45);
    req.service.step = Some(mins(15));
    // Contact 11–14 minus the 12–13 break; 45-minute slots every 15 minutes.
    assert_eq!(starts_on(&slots(&req), date(2027, 3, 8)), ["11:00", "11:15", "13:00", "13:15"]);
}

/// A 20-minute service in an office open 08:30–12:30 and 14:30–16:30 starts at the opening of each
/// band (08:30, 14:30), not on a grid counted from midnight (08:40, 14:40); with 25 minutes, the
/// afternoon still starts at 14:30 (its own grid, not the morning's).
#[test]
fn candidate_starts_count_from_each_opening() {
    let mut req = request();
    let split = DayPlan::opening_hours(vec![r(8, 30, 12, 30), r(14, 30, 16, 30)]).expect("office hours");
    req.officials = vec![official(1, weekdays(split))];
    req.service.duration = mins(20);
    let day = starts_on(&slots(&req), date(2027, 3, 8));
    assert_eq!(&day[..3], ["08:30", "08:50", "09:10"]);
    assert_eq!(day.iter().position(|t| t == "14:30"), Some(12), "{day:?}");
    assert_eq!(day.len(), 12 + 6, "{day:?}");
    req.service.duration = mins(25);
    let day = starts_on(&slots(&req), date(2027, 3, 8));
    let expected = ["08:30", "08:55", "09:20", "09:45", "10:10", "10:35", "11:00", "11:25", "11:50"]
        .into_iter()
        .chain(["14:30", "14:55", "15:20", "15:45"])
        .collect::<Vec<_>>();
    assert_eq!(day, expected);
    // A second official opening at another time: each band keeps its own grid, no start repeats.
    let late = plan(WorkMode::OnSite, vec![r(9, 0, 12, 0)], r(9, 0, 12, 0));
    req.officials.push(official(2, weekdays(late)));
    let day = starts_on(&slots(&req), date(2027, 3, 8));
    assert_eq!(&day[..4], ["08:30", "08:55", "09:00", "09:20"]);
    let mut distinct = day.clone();
    distinct.dedup();
    assert_eq!(distinct, day);
}

#[test]
fn holiday_is_excluded() {
    let mut req = request();
    req.holidays = BTreeSet::from([date(2027, 3, 9)]);
    let all = slots(&req);
    assert!(starts_on(&all, date(2027, 3, 9)).is_empty());
    assert_eq!(starts_on(&all, date(2027, 3, 10)).len(), 6);
}

#[test]
fn holidays_module_feeds_the_engine() {
    // Easter Monday 2027 is 29 March; the patron (here 1 April) is off too.
    let mut req = request();
    req.now = at(2027, 3, 29, 0, 0);
    req.holidays =
        crate::holidays::holiday_dates(2027, 2027, Some(crate::PatronDay::new(4, 1).expect("date"))).expect("2027");
    let all = slots(&req);
    assert!(starts_on(&all, date(2027, 3, 29)).is_empty());
    assert!(starts_on(&all, date(2027, 4, 1)).is_empty());
    assert_eq!(starts_on(&all, date(2027, 3, 30)).len(), 6);
}

#[test]
fn remote_day_is_video_only() {
    let mut req = request();
    let remote = plan(WorkMode::Remote, vec![r(8, 0, 14, 0)], r(9, 0, 12, 0));
    let pattern = weekdays(office_hours()).with_exception(date(2027, 3, 9), remote);
    req.officials = vec![official(1, pattern)];
    let all = slots(&req);
    for s in &all {
        let remote_day = rome().to_datetime(s.start).date() == date(2027, 3, 9);
        let expected = if remote_day { Modes::VIDEO } else { Modes::BOTH };
        assert_eq!(s.mode_options, expected);
        assert_eq!(s.in_person.is_empty(), remote_day);
    }
    // An in-person-only service has nothing on the remote day.
    req.service.modes = Modes::IN_PERSON;
    let all = slots(&req);
    assert!(starts_on(&all, date(2027, 3, 9)).is_empty());
    assert_eq!(starts_on(&all, date(2027, 3, 10)).len(), 6);
    assert!(all.iter().all(|s| s.mode_options == Modes::IN_PERSON));
}

#[test]
fn video_only_service_on_site_offers_video() {
    let mut req = request();
    req.service.modes = Modes::VIDEO;
    let all = slots(&req);
    assert!(!all.is_empty());
    assert!(all.iter().all(|s| s.mode_options == Modes::VIDEO && s.in_person.is_empty()));
}

#[test]
fn eleven_hours_rest_after_a_late_day() {
    let mut req = request();
    // Tuesday's work ends 21:30: Wednesday may start no earlier than 08:30, so 09:00 survives
    // but a 06:00 start would not. Make the contact band start early to see the cut.
    let late = plan(WorkMode::OnSite, vec![r(13, 0, 21, 30)], r(13, 0, 16, 0));
    let early = plan(WorkMode::OnSite, vec![r(6, 0, 12, 0)], r(6, 0, 10, 0));
    let pattern = weekdays(early).with_exception(date(2027, 3, 9), late);
    req.officials = vec![official(1, pattern)];
    let all = slots(&req);
    assert_eq!(starts_on(&all, date(2027, 3, 10)), ["08:30", "09:00", "09:30"]);
    // Thursday follows a 12:00 end: the full band.
    assert_eq!(starts_on(&all, date(2027, 3, 11)).first().map(String::as_str), Some("06:00"));
}

#[test]
fn absence_removes_slots() {
    let mut req = request();
    req.officials[0].absences =
        vec![iv(at(2027, 3, 8, 10, 0), at(2027, 3, 8, 11, 0)), iv(at(2027, 3, 9, 0, 0), at(2027, 3, 10, 0, 0))];
    let all = slots(&req);
    assert_eq!(starts_on(&all, date(2027, 3, 8)), ["09:00", "09:30", "11:00", "11:30"]);
    assert!(starts_on(&all, date(2027, 3, 9)).is_empty());
}

#[test]
fn busy_time_removes_overlapping_slots() {
    let mut req = request();
    req.officials[0].busy = vec![iv(at(2027, 3, 8, 10, 15), at(2027, 3, 8, 10, 45))];
    assert_eq!(starts_on(&slots(&req), date(2027, 3, 8)), ["09:00", "09:30", "11:00", "11:30"]);
}

#[test]
fn buffers_keep_distance_from_appointments_and_stay_in_working_time() {
    let mut req = request();
    req.officials[0].appointments = vec![iv(at(2027, 3, 8, 10, 0), at(2027, 3, 8, 10, 30))];
    req.service.buffer_before = mins(10);
    req.service.buffer_after = mins(15);
    // 09:30 would end at 10:00 with 15 min after it; 10:30 needs 10 min before it. Hours start at
    // 08:00, so 09:00's buffer before is in working time.
    assert_eq!(starts_on(&slots(&req), date(2027, 3, 8)), ["09:00", "11:00", "11:30"]);
    // Hours equal to the band: the first slot's buffer before would fall outside working time,
    // the last slot's buffer after too.
    let tight = plan(WorkMode::OnSite, vec![r(9, 0, 12, 0)], r(9, 0, 12, 0));
    req.officials = vec![official(1, weekdays(tight))];
    assert_eq!(starts_on(&slots(&req), date(2027, 3, 8)), ["09:30", "10:00", "10:30", "11:00"]);
}

#[test]
fn minimum_notice_is_respected() {
    let mut req = request();
    req.now = at(2027, 3, 8, 10, 10);
    req.min_notice = SignedDuration::from_hours(24);
    let all = slots(&req);
    assert!(starts_on(&all, date(2027, 3, 8)).is_empty());
    assert_eq!(starts_on(&all, date(2027, 3, 9)), ["10:30", "11:00", "11:30"]);
}

#[test]
fn horizon_is_respected() {
    let mut req = request();
    req.now = at(2027, 3, 8, 10, 10);
    req.horizon_days = 2;
    let all = slots(&req);
    assert_eq!(starts_on(&all, date(2027, 3, 10)), ["09:00", "09:30"]);
    assert!(all.iter().all(|s| s.end <= at(2027, 3, 10, 10, 10)));
    req.horizon_days = 0;
    assert!(slots(&req).is_empty());
}

fn every_day(hours: TimeRange) -> WorkingPattern {
    let day = plan(WorkMode::OnSite, vec![hours], hours);
    WorkingPattern::new(std::array::from_fn(|_| day.clone()))
}

/// Four days from `before` 00:00 with a 09:00–18:00 band every day.
fn dst_slots(before: Date) -> Vec<Slot> {
    let mut req = request();
    req.now = at(before.year(), before.month(), before.day(), 0, 0);
    req.horizon_days = 4;
    req.officials = vec![official(1, every_day(r(9, 0, 18, 0)))];
    slots(&req)
}

fn dst_check(before: Date, change: Date, after: Date, nine_utc: [&str; 3]) {
    let all = dst_slots(before);
    // The same 18 local starts, 09:00 to 17:30, on the day before, the day of and the day after.
    let expected: Vec<String> = (0..18).map(|i| format!("{:02}:{:02}", 9 + i / 2, 30 * (i % 2))).collect();
    for day in [before, change, after] {
        assert_eq!(starts_on(&all, day), expected, "{day}");
    }
    for (d, utc) in [before, change, after].into_iter().zip(nine_utc) {
        assert!(all.iter().any(|s| s.start.to_string() == utc), "no 09:00 slot at {utc} on {d}");
    }
    // Strictly increasing instants: nothing duplicated.
    assert!(all.windows(2).all(|w| w[0].start < w[1].start));
}

#[test]
fn dst_spring_forward_march_2027() {
    // Sunday 28 March 2027 has 23 hours: 09:00 is 08:00Z before, 07:00Z from that day on.
    let utc = ["2027-03-27T08:00:00Z", "2027-03-28T07:00:00Z", "2027-03-29T07:00:00Z"];
    dst_check(date(2027, 3, 27), date(2027, 3, 28), date(2027, 3, 29), utc);
}

#[test]
fn dst_fall_back_october_2027() {
    // Sunday 31 October 2027 has 25 hours: 09:00 is 07:00Z before, 08:00Z from that day on.
    let utc = ["2027-10-30T07:00:00Z", "2027-10-31T08:00:00Z", "2027-11-01T08:00:00Z"];
    dst_check(date(2027, 10, 30), date(2027, 10, 31), date(2027, 11, 1), utc);
}

#[test]
fn rest_is_eleven_real_hours_across_dst() {
    // Work until 22:00 every day. Across the 23-hour night the rest ends at 10:00 local, across
    // the 25-hour night at 08:00; on ordinary days at 09:00.
    let mut req = request();
    req.officials = vec![official(1, every_day(r(6, 0, 22, 0)))];
    req.horizon_days = 3;
    let first_start = |now: Timestamp, day: Date| {
        let mut req = req.clone();
        req.now = now;
        starts_on(&slots(&req), day).first().cloned()
    };
    assert_eq!(first_start(at(2027, 3, 27, 0, 0), date(2027, 3, 27)).as_deref(), Some("09:00"));
    assert_eq!(first_start(at(2027, 3, 27, 0, 0), date(2027, 3, 28)).as_deref(), Some("10:00"));
    assert_eq!(first_start(at(2027, 10, 30, 0, 0), date(2027, 10, 31)).as_deref(), Some("08:00"));
}

#[test]
fn a_slot_needs_any_official_and_lists_all_free_ones() {
    let mut req = request();
    let mut a = official(7, weekdays(office_hours()));
    a.busy = vec![iv(at(2027, 3, 8, 9, 0), at(2027, 3, 8, 10, 0))];
    let remote = plan(WorkMode::Remote, vec![r(8, 0, 14, 0)], r(9, 0, 12, 0));
    let b = official(3, weekdays(remote));
    req.officials = vec![a, b];
    let all = slots(&req);
    let monday: Vec<&Slot> = all.iter().filter(|s| rome().to_datetime(s.start).date() == date(2027, 3, 8)).collect();
    assert_eq!(monday.len(), 6);
    assert_eq!(monday[0].officials, [OfficialId(3)]);
    assert_eq!(monday[0].mode_options, Modes::VIDEO);
    assert_eq!(monday[2].officials, [OfficialId(3), OfficialId(7)]);
    assert_eq!(monday[2].in_person, [OfficialId(7)]);
    assert_eq!(monday[2].mode_options, Modes::BOTH);
}

#[test]
fn fair_assignment_prefers_least_loaded_then_smallest_id() {
    let slot = Slot {
        start: at(2027, 3, 8, 9, 0),
        end: at(2027, 3, 8, 9, 30),
        mode_options: Modes::BOTH,
        officials: vec![OfficialId(2), OfficialId(5), OfficialId(9)],
        in_person: vec![OfficialId(9)],
    };
    let load = HashMap::from([(OfficialId(2), 3), (OfficialId(5), 1)]);
    assert_eq!(assign_fairly(&slot, &load), Some(OfficialId(9)));
    let load = HashMap::from([(OfficialId(2), 1), (OfficialId(5), 1), (OfficialId(9), 1)]);
    assert_eq!(assign_fairly(&slot, &load), Some(OfficialId(2)));
    assert_eq!(assign_fairly_for(&slot, MeetingMode::InPerson, &load), Some(OfficialId(9)));
    let video_only = Slot { mode_options: Modes::VIDEO, in_person: vec![], ..slot.clone() };
    assert_eq!(assign_fairly_for(&video_only, MeetingMode::InPerson, &load), None);
    let empty = Slot { officials: vec![], ..slot };
    assert_eq!(assign_fairly(&empty, &load), None);
}

#[test]
fn invalid_requests_are_rejected() {
    let check = |f: &dyn Fn(&mut AvailabilityRequest), err: AvailabilityError| {
        let mut req = request();
        f(&mut req);
        assert_eq!(free_slots(&req), Err(err));
    };
    check(&|r| r.service.duration = mins(0), AvailabilityError::NonPositiveDuration);
    check(&|r| r.service.buffer_after = mins(-5), AvailabilityError::NegativeBuffer);
    check(&|r| r.service.step = Some(SignedDuration::from_secs(30)), AvailabilityError::StepTooSmall);
    check(&|r| r.min_notice = mins(-1), AvailabilityError::NegativeNotice);
    check(&|r| r.service.modes = Modes::default(), AvailabilityError::NoModes);
    check(&|r| r.officials.push(r.officials[0].clone()), AvailabilityError::DuplicateOfficial(OfficialId(1)));
}
