//! The availability engine on a large office: 50 officials over a 60-day horizon.
//!
//! ```sh
//! cargo bench -p sportello-domain --bench availability
//! ```
//!
//! Each official has a mixed week (on site Mon/Wed/Fri with split hours, remote Tue/Thu, one
//! official in five with a different week), 2–4 busy blocks per working day, 0–3 booked
//! appointments per working day, two absences (a full day and a half day) and a swapped day;
//! national holidays and the patron's day. Calendars come from a fixed-seed generator, so every run
//! measures the same office. One iteration = one `free_slots` call for the whole office. The global
//! allocator is divan's `AllocProfiler` (allocations per call in the "alloc" rows).
//!
//! The machines are 2 shared cores: compare within one run; absolute numbers are noise.

use std::hint::black_box;
use std::time::Duration;

use divan::{AllocProfiler, Bencher};
use jiff::civil::{Date, date};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Span, Timestamp};
use sportello_domain::{
    AvailabilityRequest, DayPlan, Interval, Modes, Official, OfficialId, PatronDay, Service, TimeRange, WorkMode,
    WorkingPattern, europe_rome, free_slots, holiday_dates,
};

#[global_allocator]
static ALLOC: AllocProfiler = AllocProfiler::system();

fn main() {
    divan::Divan::default().sample_count(200).min_time(Duration::from_millis(500)).config_with_args().main();
}

const OFFICIALS: u64 = 50;
const HORIZON_DAYS: u16 = 60;

/// xorshift64*: deterministic calendars without a `rand` dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

fn r(a: i8, b: i8, c: i8, d: i8) -> TimeRange {
    TimeRange::hm(a, b, c, d).expect("valid range")
}

fn at(tz: &TimeZone, d: Date, h: i8, m: i8) -> Timestamp {
    tz.to_timestamp(d.at(h, m, 0, 0)).expect("in range")
}

fn pattern(variant: u64) -> WorkingPattern {
    let on_site = DayPlan::working(WorkMode::OnSite, vec![r(8, 0, 14, 0), r(14, 30, 17, 0)], r(9, 0, 13, 0));
    let remote = DayPlan::working(WorkMode::Remote, vec![r(8, 30, 14, 30)], r(9, 30, 12, 30));
    let short = DayPlan::working(WorkMode::OnSite, vec![r(7, 30, 13, 30)], r(8, 30, 12, 30));
    let (on_site, remote, short) = (on_site.expect("plan"), remote.expect("plan"), short.expect("plan"));
    let off = DayPlan::off();
    if variant.is_multiple_of(5) {
        WorkingPattern::new([remote.clone(), short.clone(), short, remote, on_site, off.clone(), off])
    } else {
        WorkingPattern::new([on_site.clone(), remote.clone(), on_site.clone(), remote, on_site, off.clone(), off])
    }
}

fn office(tz: &TimeZone, now: Timestamp) -> Vec<Official> {
    let mut rng = Rng(0x5EED_CAFE_F00D_1234);
    let today = tz.to_datetime(now).date();
    let day = |n: i64| today.checked_add(Span::new().days(n)).expect("in range");
    (0..OFFICIALS)
        .map(|i| {
            let mut busy = Vec::new();
            let mut appointments = Vec::new();
            for n in 0..i64::from(HORIZON_DAYS) + 2 {
                let d = day(n);
                if d.weekday().to_monday_zero_offset() >= 5 {
                    continue;
                }
                for _ in 0..2 + rng.below(3) {
                    // 30–120 minutes starting on the half hour between 08:00 and 16:00.
                    let start = at(tz, d, 8 + rng.below(8) as i8, 30 * rng.below(2) as i8);
                    let len = SignedDuration::from_mins(30 * (1 + rng.below(4) as i64));
                    busy.push(Interval::starting_at(start, len).expect("interval"));
                }
                for _ in 0..rng.below(4) {
                    let start = at(tz, d, 9 + rng.below(4) as i8, 30 * rng.below(2) as i8);
                    appointments.push(Interval::starting_at(start, SignedDuration::from_mins(30)).expect("interval"));
                }
            }
            let leave = day(3 + rng.below(50) as i64);
            let half = day(3 + rng.below(50) as i64);
            let absences = vec![
                Interval::new(at(tz, leave, 0, 0), at(tz, leave.tomorrow().expect("date"), 0, 0)).expect("interval"),
                Interval::new(at(tz, half, 8, 0), at(tz, half, 13, 0)).expect("interval"),
            ];
            let swapped = day(7 + rng.below(40) as i64);
            let remote_day = DayPlan::working(WorkMode::Remote, vec![r(9, 0, 15, 0)], r(9, 0, 12, 0)).expect("plan");
            Official {
                id: OfficialId(1000 + i),
                pattern: pattern(i).with_exception(swapped, remote_day),
                absences,
                busy,
                appointments,
            }
        })
        .collect()
}

fn request() -> AvailabilityRequest {
    let tz = europe_rome().expect("bundled zone");
    // A Monday morning in early 2027: the horizon crosses Easter, 25 April and the March DST change.
    let now = at(&tz, date(2027, 3, 1), 8, 0);
    let patron = PatronDay::new(3, 19).expect("date");
    AvailabilityRequest {
        officials: office(&tz, now),
        service: Service {
            duration: SignedDuration::from_mins(30),
            buffer_before: SignedDuration::from_mins(5),
            buffer_after: SignedDuration::from_mins(10),
            modes: Modes::BOTH,
            step: None,
        },
        holidays: holiday_dates(2027, 2027, Some(patron)).expect("holidays"),
        min_notice: SignedDuration::from_hours(24),
        horizon_days: HORIZON_DAYS,
        now,
        tz,
    }
}

/// 50 officials × 60 days, 30-minute slots with 5 + 10 minute buffers.
#[divan::bench]
fn office_50_officials_60_days(bencher: Bencher) {
    let req = request();
    let slots = free_slots(&req).expect("valid request");
    assert!(!slots.is_empty());
    bencher.bench(|| free_slots(black_box(&req)));
}

/// The same office with a 15-minute step (twice the candidate starts).
#[divan::bench]
fn office_50_officials_60_days_step_15(bencher: Bencher) {
    let mut req = request();
    req.service.step = Some(SignedDuration::from_mins(15));
    bencher.bench(|| free_slots(black_box(&req)));
}
