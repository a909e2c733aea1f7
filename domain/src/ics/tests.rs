use jiff::civil::date;
use jiff::{Timestamp, tz::TimeZone};
use proptest::prelude::*;

use super::*;
use crate::interval::{Interval, IntervalSet};

fn rome() -> TimeZone {
    crate::europe_rome().expect("bundled tzdb has Europe/Rome")
}

/// An instant from Rome wall-clock time.
fn at(y: i16, mo: i8, d: i8, h: i8, mi: i8) -> Timestamp {
    date(y, mo, d).at(h, mi, 0, 0).to_zoned(rome()).expect("valid local time").timestamp()
}

fn iv(a: Timestamp, b: Timestamp) -> Interval {
    Interval::new(a, b).expect("non-empty")
}

fn window(a: Timestamp, b: Timestamp) -> Interval {
    iv(a, b)
}

fn cal(body: &str) -> String {
    format!("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n{body}END:VCALENDAR\r\n")
}

fn limits() -> ImportLimits {
    ImportLimits::default()
}

#[test]
fn weekly_recurrence_with_exdate_and_moved_instance() {
    // Mondays 09:00–10:00 Rome from 2025-03-03, across the DST change of 30 March; 17 March is
    // excluded, 24 March moved to Tuesday 25 at 14:00, 31 March cancelled by an override.
    let text = cal(concat!(
        "BEGIN:VEVENT\r\nUID:weekly@x\r\nDTSTART;TZID=Europe/Rome:20250303T090000\r\n",
        "DTEND;TZID=Europe/Rome:20250303T100000\r\nRRULE:FREQ=WEEKLY;BYDAY=MO;UNTIL=20250414T235959Z\r\n",
        "EXDATE;TZID=Europe/Rome:20250317T090000\r\nSUMMARY:Team\\, weekly\r\nEND:VEVENT\r\n",
        "BEGIN:VEVENT\r\nUID:weekly@x\r\nRECURRENCE-ID;TZID=Europe/Rome:20250324T090000\r\n",
        "DTSTART;TZID=Europe/Rome:20250325T140000\r\nDTEND;TZID=Europe/Rome:20250325T150000\r\nEND:VEVENT\r\n",
        "BEGIN:VEVENT\r\nUID:weekly@x\r\nRECURRENCE-ID:20250331T070000Z\r\nSTATUS:CANCELLED\r\n",
        "DTSTART;TZID=Europe/Rome:20250331T090000\r\nDTEND;TZID=Europe/Rome:20250331T100000\r\nEND:VEVENT\r\n",
    ));
    let busy = busy_from_ics(&text, window(at(2025, 3, 1, 0, 0), at(2025, 5, 1, 0, 0)), &limits()).expect("valid");
    let hour = |y, m, d, h| iv(at(y, m, d, h, 0), at(y, m, d, h + 1, 0));
    let expected = IntervalSet::from_intervals([
        hour(2025, 3, 3, 9),
        hour(2025, 3, 10, 9),
        hour(2025, 3, 25, 14),
        hour(2025, 4, 7, 9), // 09:00 local after DST: 07:00 UTC, not 08:00
        hour(2025, 4, 14, 9),
    ]);
    assert_eq!(busy, expected);
    assert_eq!(busy.as_slice()[3].start().to_string(), "2025-04-07T07:00:00Z");
}

#[test]
fn window_clips_and_transparent_events_are_ignored() {
    let text = cal(concat!(
        "BEGIN:VEVENT\r\nUID:a\r\nDTSTART:20250505T080000Z\r\nDURATION:PT2H\r\nEND:VEVENT\r\n",
        "BEGIN:VEVENT\r\nUID:b\r\nDTSTART:20250505T120000Z\r\nDURATION:PT1H\r\nTRANSP:TRANSPARENT\r\nEND:VEVENT\r\n",
        "BEGIN:VEVENT\r\nUID:c\r\nDTSTART:20250505T130000Z\r\nDTEND:20250505T140000Z\r\nSTATUS:CANCELLED\r\nEND:VEVENT\r\n",
    ));
    let w = window("2025-05-05T09:00:00Z".parse().unwrap(), "2025-05-06T00:00:00Z".parse().unwrap());
    let busy = busy_from_ics(&text, w, &limits()).unwrap();
    assert_eq!(
        busy,
        IntervalSet::from_intervals([iv(
            "2025-05-05T09:00:00Z".parse().unwrap(),
            "2025-05-05T10:00:00Z".parse().unwrap()
        )])
    );
}

#[test]
fn all_day_events_across_the_dst_change_are_whole_local_days() {
    // Saturday 29 – Monday 31 March 2025 (exclusive end 1 April); 30 March has 23 hours in Rome.
    // Plus a daily all-day series over the autumn change (25–27 October 2025, 27 October excluded).
    let text = cal(concat!(
        "BEGIN:VEVENT\r\nUID:holiday\r\nDTSTART;VALUE=DATE:20250329\r\nDTEND;VALUE=DATE:20250401\r\nEND:VEVENT\r\n",
        "BEGIN:VEVENT\r\nUID:daily\r\nDTSTART;VALUE=DATE:20251025\r\nRRULE:FREQ=DAILY;COUNT=3\r\n",
        "EXDATE;VALUE=DATE:20251027\r\nEND:VEVENT\r\n",
    ));
    let busy = busy_from_ics(&text, window(at(2025, 1, 1, 0, 0), at(2026, 1, 1, 0, 0)), &limits()).unwrap();
    let spring = iv(at(2025, 3, 29, 0, 0), at(2025, 4, 1, 0, 0));
    assert_eq!(spring.duration(), jiff::SignedDuration::from_hours(71));
    let autumn = iv(at(2025, 10, 25, 0, 0), at(2025, 10, 27, 0, 0));
    assert_eq!(autumn.duration(), jiff::SignedDuration::from_hours(49));
    assert_eq!(busy, IntervalSet::from_intervals([spring, autumn]));
}

#[test]
fn utc_floating_and_unknown_tzid() {
    let text = cal(concat!(
        "BEGIN:VEVENT\r\nUID:u\r\nDTSTART:20250106T080000Z\r\nDTEND:20250106T090000Z\r\nEND:VEVENT\r\n",
        "BEGIN:VEVENT\r\nUID:f\r\nDTSTART:20250107T090000\r\nDTEND:20250107T100000\r\nEND:VEVENT\r\n",
        "BEGIN:VEVENT\r\nUID:w\r\nDTSTART;TZID=W. Europe Standard Time:20250108T090000\r\n",
        "DTEND;TZID=W. Europe Standard Time:20250108T100000\r\nEND:VEVENT\r\n",
        "BEGIN:VEVENT\r\nUID:l\r\nDTSTART;TZID=Europe/London:20250109T090000\r\nDURATION:PT1H\r\nEND:VEVENT\r\n",
    ));
    let busy = busy_from_ics(&text, window(at(2025, 1, 1, 0, 0), at(2025, 2, 1, 0, 0)), &limits()).unwrap();
    let starts: Vec<String> = busy.iter().map(|i| i.start().to_string()).collect();
    assert_eq!(
        starts,
        ["2025-01-06T08:00:00Z", "2025-01-07T08:00:00Z", "2025-01-08T08:00:00Z", "2025-01-09T09:00:00Z"]
    );
}

#[test]
fn vfreebusy_busy_periods() {
    let text = cal(concat!(
        "BEGIN:VFREEBUSY\r\nUID:fb\r\nDTSTART:20250101T000000Z\r\nDTEND:20250201T000000Z\r\n",
        "FREEBUSY:20250110T080000Z/20250110T090000Z,20250111T080000Z/PT30M\r\n",
        "FREEBUSY;FBTYPE=FREE:20250112T080000Z/20250112T090000Z\r\n",
        "FREEBUSY;FBTYPE=BUSY-UNAVAILABLE:20250113T080000Z/PT1H\r\nEND:VFREEBUSY\r\n",
    ));
    let busy = busy_from_ics(&text, window(at(2025, 1, 1, 0, 0), at(2025, 2, 1, 0, 0)), &limits()).unwrap();
    let spans: Vec<String> = busy.iter().map(|i| format!("{}/{}", i.start(), i.end())).collect();
    assert_eq!(
        spans,
        [
            "2025-01-10T08:00:00Z/2025-01-10T09:00:00Z",
            "2025-01-11T08:00:00Z/2025-01-11T08:30:00Z",
            "2025-01-13T08:00:00Z/2025-01-13T09:00:00Z"
        ]
    );
}

#[test]
fn limits_exceeded_are_errors() {
    let text =
        cal("BEGIN:VEVENT\r\nUID:d\r\nDTSTART:20250101T080000Z\r\nDURATION:PT1H\r\nRRULE:FREQ=DAILY\r\nEND:VEVENT\r\n");
    let w = window(at(2025, 1, 1, 0, 0), at(2025, 2, 1, 0, 0));
    let small = |max_bytes, max_events, max_instances| ImportLimits { max_bytes, max_events, max_instances };
    assert!(busy_from_ics(&text, w, &small(10_000, 10, 31)).is_ok());
    assert!(matches!(busy_from_ics(&text, w, &small(10_000, 10, 30)), Err(IcsError::LimitExceeded { .. })));
    assert!(matches!(busy_from_ics(&text, w, &small(text.len() - 1, 10, 100)), Err(IcsError::LimitExceeded { .. })));
    assert!(matches!(busy_from_ics(&text, w, &small(10_000, 0, 100)), Err(IcsError::LimitExceeded { .. })));
    // A rule that would have to step through millions of occurrences before the window.
    let minutely = cal(
        "BEGIN:VEVENT\r\nUID:m\r\nDTSTART:19700101T000000Z\r\nRRULE:FREQ=MINUTELY\r\nDURATION:PT1M\r\nEND:VEVENT\r\n",
    );
    assert!(matches!(busy_from_ics(&minutely, w, &limits()), Err(IcsError::LimitExceeded { .. })));
}

#[test]
fn garbage_is_invalid() {
    let w = window(at(2025, 1, 1, 0, 0), at(2025, 2, 1, 0, 0));
    for text in [
        "",
        "hello world",
        "BEGIN:VCALENDAR\r\n",
        "BEGIN:VEVENT\r\nDTSTART:20250101T000000Z\r\nEND:VEVENT\r\n",
        &cal("BEGIN:VEVENT\r\nUID:x\r\nDTSTART:2025-01-01\r\nEND:VEVENT\r\n"),
        &cal("BEGIN:VEVENT\r\nUID:x\r\nDTSTART:20250101T250000Z\r\nEND:VEVENT\r\n"),
        &cal("BEGIN:VEVENT\r\nUID:x\r\nSUMMARY:no start\r\nEND:VEVENT\r\n"),
        &cal("BEGIN:VEVENT\r\nUID:x\r\nDTSTART:20250101T080000Z\r\nRRULE:FREQ=SOMETIMES\r\nEND:VEVENT\r\n"),
        &cal("BEGIN:VEVENT\r\nUID:x\r\nDTSTART:20250101T080000Z\r\nDURATION:an hour or so\r\nEND:VEVENT\r\n"),
        &"BEGIN:X\r\n".repeat(10_000),
    ] {
        assert!(matches!(busy_from_ics(text, w, &limits()), Err(IcsError::Invalid(_))), "{text:?}");
    }
}

fn appointment(uid: &str, start: Timestamp, minutes: i64) -> FeedEvent {
    FeedEvent {
        uid: uid.into(),
        start,
        end: start + jiff::SignedDuration::from_mins(minutes),
        summary: "Appuntamento: Carta d'identità elettronica, rinnovo; ufficio Anagrafe".into(),
        location: Some("Sala virtuale\nPiazza del Municipio, 1".into()),
        description: Some(format!("Codice {uid}\\prenotazione; {}", "dettagli lunghi ".repeat(12))),
        kind: FeedKind::Appointment,
    }
}

fn sample_feed() -> (Vec<FeedEvent>, String) {
    let mut events = vec![
        appointment("apt-1@sportello", at(2025, 3, 28, 10, 0), 30),
        appointment("apt-2@sportello", at(2025, 3, 31, 9, 30), 45), // after the DST change
        appointment("apt-3@sportello", at(2025, 10, 27, 15, 0), 60),
    ];
    events.push(FeedEvent {
        uid: "day-1@sportello".into(),
        start: at(2025, 3, 30, 0, 0),
        end: at(2025, 3, 31, 0, 0),
        summary: "In sede".into(),
        location: None,
        description: None,
        kind: FeedKind::OnSiteDay,
    });
    events.push(FeedEvent {
        uid: "day-2@sportello".into(),
        start: at(2025, 4, 1, 0, 0),
        end: at(2025, 4, 3, 0, 0),
        summary: "Lavoro agile".into(),
        location: None,
        description: None,
        kind: FeedKind::RemoteDay,
    });
    let text = feed("Agenda — Mario Rossi, Anagrafe", "2025-03-01T12:00:00Z".parse().unwrap(), &events);
    (events, text)
}

#[test]
fn feed_is_well_formed() {
    let (_, text) = sample_feed();
    assert!(text.starts_with("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:"));
    assert!(text.ends_with("END:VCALENDAR\r\n"));
    for needle in ["CALSCALE:GREGORIAN\r\n", "METHOD:PUBLISH\r\n", "DTSTAMP:20250301T120000Z\r\n"] {
        assert!(text.contains(needle), "{needle}");
    }
    assert!(text.contains("DTSTART:20250331T073000Z\r\n"));
    assert!(text.contains("DTSTART;VALUE=DATE:20250330\r\nDTEND;VALUE=DATE:20250331\r\n"));
    assert!(text.contains("DTSTART;VALUE=DATE:20250401\r\nDTEND;VALUE=DATE:20250403\r\n"));
    assert!(text.contains("LOCATION:Sala virtuale\\nPiazza del Municipio\\, 1\r\n"));
    assert!(!text.replace("\r\n", "").contains('\n'), "bare LF");
    for line in text.split("\r\n") {
        assert!(line.len() <= 75, "{line:?}");
    }
}

#[test]
fn round_trip_appointments() {
    let (events, text) = sample_feed();
    let w = window(at(2025, 1, 1, 0, 0), at(2026, 1, 1, 0, 0));
    let busy = busy_from_ics(&text, w, &limits()).expect("our own feed parses");
    let expected = IntervalSet::from_intervals(
        events.iter().filter(|e| e.kind == FeedKind::Appointment).map(|e| iv(e.start, e.end)),
    );
    assert_eq!(busy, expected, "day events are transparent, appointments busy");
}

/// An independent reader (Python's `icalendar`) must see the same events. Installed by
/// `scripts/test` ("System packages"); missing, the test fails rather than skipping.
#[test]
fn python_icalendar_reads_the_feed() {
    let probe = std::process::Command::new("python3").args(["-c", "import icalendar"]).output();
    match probe {
        Ok(o) if o.status.success() => {}
        other => panic!(
            "python3 with the `icalendar` package is required for this test \
             (install: python3 -m pip install icalendar, or run scripts/test): {other:?}"
        ),
    }
    let (events, text) = sample_feed();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("feed.ics");
    std::fs::write(&path, &text).expect("write feed");
    let script = r#"
import icalendar, sys
cal = icalendar.Calendar.from_ical(open(sys.argv[1], 'rb').read())
for ev in cal.walk('VEVENT'):
    s, e = ev.decoded('DTSTART'), ev.decoded('DTEND')
    fmt = lambda d: d.strftime('%Y%m%dT%H%M%SZ') if hasattr(d, 'hour') else d.strftime('%Y%m%d')
    print(str(ev['UID']), fmt(s), fmt(e), str(ev['SUMMARY']), sep='|')
"#;
    let out = std::process::Command::new("python3").args(["-c", script]).arg(&path).output().expect("run python3");
    assert!(out.status.success(), "python icalendar failed: {}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), events.len(), "VEVENT count: {stdout}");
    let utc = |t: Timestamp| t.strftime("%Y%m%dT%H%M%SZ").to_string();
    let expected = [
        format!("apt-1@sportello|{}|{}|{}", utc(events[0].start), utc(events[0].end), events[0].summary),
        format!("apt-2@sportello|{}|{}|{}", utc(events[1].start), utc(events[1].end), events[1].summary),
        format!("apt-3@sportello|{}|{}|{}", utc(events[2].start), utc(events[2].end), events[2].summary),
        "day-1@sportello|20250330|20250331|In sede".to_string(),
        "day-2@sportello|20250401|20250403|Lavoro agile".to_string(),
    ];
    assert_eq!(lines, expected);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let text = String::from_utf8_lossy(&bytes);
        let w = window(at(2025, 1, 1, 0, 0), at(2025, 2, 1, 0, 0));
        let _ = busy_from_ics(&text, w, &limits());
    }

    #[test]
    fn random_rules_never_panic(rule in "(FREQ=(DAILY|WEEKLY|MONTHLY|YEARLY|HOURLY|SECONDLY|X);?)?([A-Z]{2,8}=[-+0-9A-Z,]{0,12};?){0,4}", start in "[0-9]{8}(T[0-9]{6}Z?)?") {
        let text = cal(&format!("BEGIN:VEVENT\r\nUID:r\r\nDTSTART:{start}\r\nDURATION:PT1H\r\nRRULE:{rule}\r\nEND:VEVENT\r\n"));
        let w = window(at(2025, 1, 1, 0, 0), at(2025, 2, 1, 0, 0));
        let _ = busy_from_ics(&text, w, &limits());
    }

    #[test]
    fn truncated_and_mutated_calendars_never_panic(cut in 0usize..2000, pos in 0usize..2000, byte in any::<u8>()) {
        let (_, feed_text) = sample_feed();
        let rich = cal(concat!(
            "BEGIN:VEVENT\r\nUID:weekly@x\r\nDTSTART;TZID=Europe/Rome:20250303T090000\r\n",
            "DTEND;TZID=Europe/Rome:20250303T100000\r\nRRULE:FREQ=WEEKLY;BYDAY=MO;UNTIL=20250414T235959Z\r\n",
            "EXDATE;TZID=Europe/Rome:20250317T090000\r\nEND:VEVENT\r\n",
            "BEGIN:VFREEBUSY\r\nFREEBUSY:20250110T080000Z/PT30M\r\nEND:VFREEBUSY\r\n",
        ));
        let w = window(at(2025, 1, 1, 0, 0), at(2026, 1, 1, 0, 0));
        for source in [feed_text.as_bytes(), rich.as_bytes()] {
            let mut bytes = source[..cut.min(source.len())].to_vec();
            let _ = busy_from_ics(&String::from_utf8_lossy(&bytes), w, &limits());
            if !bytes.is_empty() {
                let i = pos % bytes.len();
                bytes[i] = byte;
                let _ = busy_from_ics(&String::from_utf8_lossy(&bytes), w, &limits());
            }
            let mut mutated = source.to_vec();
            let i = pos % mutated.len();
            mutated[i] = byte;
            let _ = busy_from_ics(&String::from_utf8_lossy(&mutated), w, &limits());
        }
    }
}

/// The email attachments: a move carries a higher SEQUENCE under the same UID, a cancellation is
/// `METHOD:CANCEL` + `STATUS:CANCELLED` with the organizer and the attendee (RFC 5546 §3.2.5) — read
/// back by an independent parser (Python's `icalendar`).
#[test]
fn appointment_messages_update_and_cancel_the_same_entry() {
    let event = appointment("appt-7@sportello", at(2025, 3, 28, 10, 0), 30);
    let stamp: Timestamp = "2025-03-01T12:00:00Z".parse().unwrap();
    let invite = |sequence, cancelled| Invite {
        organizer_name: "Anagrafe \"centrale\"",
        organizer_email: "anagrafe@comune.example.it",
        attendee_name: "Maria Bianchi",
        attendee_email: "maria@example.org",
        sequence,
        cancelled,
    };
    let moved = appointment_message(&event, stamp, &invite(1, false));
    let cancelled = appointment_message(&event, stamp, &invite(2, true));
    assert!(moved.contains("METHOD:PUBLISH\r\n") && moved.contains("STATUS:CONFIRMED\r\n"), "{moved}");
    assert!(cancelled.contains("METHOD:CANCEL\r\n") && !cancelled.contains("STATUS:CONFIRMED"), "{cancelled}");
    for line in cancelled.split("\r\n") {
        assert!(line.len() <= 75, "{line:?}");
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let script = r#"
import icalendar, sys
for path in sys.argv[1:]:
    cal = icalendar.Calendar.from_ical(open(path, 'rb').read())
    ev = next(iter(cal.walk('VEVENT')))
    print(str(cal['METHOD']), str(ev['UID']), int(ev['SEQUENCE']), str(ev['STATUS']),
          str(ev['ORGANIZER']), str(ev['ORGANIZER'].params['CN']), str(ev['ATTENDEE']), sep='|')
"#;
    let mut paths = Vec::new();
    for (name, text) in [("moved.ics", &moved), ("cancelled.ics", &cancelled)] {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        paths.push(path);
    }
    let out = std::process::Command::new("python3").args(["-c", script]).args(&paths).output().expect("run python3");
    assert!(out.status.success(), "python icalendar failed: {}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "PUBLISH|appt-7@sportello|1|CONFIRMED|mailto:anagrafe@comune.example.it|Anagrafe centrale|mailto:maria@example.org",
            "CANCEL|appt-7@sportello|2|CANCELLED|mailto:anagrafe@comune.example.it|Anagrafe centrale|mailto:maria@example.org",
        ]
    );
}
