//! The citizen side of booking, as pure rules: who may book (requester validation), the booking
//! code, the window in which the join link opens, whether the citizen may still cancel or move an
//! appointment, office opening hours and stored working patterns as [`WorkingPattern`]s, and the
//! Italian/English labels of a slot.
//!
//! No I/O, no clock: `now` and random bytes are passed in.

use std::collections::BTreeMap;

use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::availability::Slot;
use crate::pattern::{DayPlan, PatternError, TimeRange, WorkMode, WorkingPattern};

/// The join link opens this long before the start …
pub const JOIN_OPENS_BEFORE: SignedDuration = SignedDuration::from_mins(15);
/// … and stays valid this long after the end (a meeting that runs late).
pub const JOIN_CLOSES_AFTER: SignedDuration = SignedDuration::from_mins(30);

pub const NAME_MAX_CHARS: usize = 100;
pub const EMAIL_MAX_LEN: usize = 254;
pub const DETAILS_MAX_CHARS: usize = 2000;

// --- requester ------------------------------------------------------------------------------------

/// What the citizen typed in steps 3–4, before validation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequesterInput<'a> {
    pub first_name: &'a str,
    pub last_name: &'a str,
    pub email: &'a str,
    pub details: &'a str,
}

/// A validated requester: trimmed names, email as typed (trimmed), details trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requester {
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub details: String,
}

/// The form field an error belongs to (the page shows the message next to it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    FirstName,
    LastName,
    Email,
    Details,
}

impl Field {
    /// Stable name, as in the JSON body.
    pub fn as_str(self) -> &'static str {
        match self {
            Field::FirstName => "first_name",
            Field::LastName => "last_name",
            Field::Email => "email",
            Field::Details => "details",
        }
    }
}

/// One invalid field, with why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RequesterError {
    #[error("{} is required", .0.as_str())]
    Missing(Field),
    #[error("{} is longer than allowed", .0.as_str())]
    TooLong(Field),
    #[error("{} contains control characters", .0.as_str())]
    ControlChars(Field),
    #[error("the email address is not valid")]
    InvalidEmail,
}

impl RequesterError {
    pub fn field(&self) -> Field {
        match *self {
            RequesterError::Missing(f) | RequesterError::TooLong(f) | RequesterError::ControlChars(f) => f,
            RequesterError::InvalidEmail => Field::Email,
        }
    }
}

/// Validates every field; returns all errors (one per field at most), in form order.
pub fn validate_requester(input: &RequesterInput<'_>) -> Result<Requester, Vec<RequesterError>> {
    let mut errors = Vec::new();
    let first_name = check_name(input.first_name, Field::FirstName).map_err(|e| errors.push(e)).ok();
    let last_name = check_name(input.last_name, Field::LastName).map_err(|e| errors.push(e)).ok();
    let email = check_email(input.email).map_err(|e| errors.push(e)).ok();
    let details = check_details(input.details).map_err(|e| errors.push(e)).ok();
    match (first_name, last_name, email, details) {
        (Some(first_name), Some(last_name), Some(email), Some(details)) if errors.is_empty() => {
            Ok(Requester { first_name, last_name, email, details })
        }
        _ => Err(errors),
    }
}

fn check_name(raw: &str, field: Field) -> Result<String, RequesterError> {
    let s = raw.trim();
    if s.is_empty() {
        return Err(RequesterError::Missing(field));
    }
    if s.chars().count() > NAME_MAX_CHARS {
        return Err(RequesterError::TooLong(field));
    }
    if s.chars().any(|c| c.is_control() || is_hidden_format(c)) {
        return Err(RequesterError::ControlChars(field));
    }
    Ok(s.to_owned())
}

/// Characters that change how the text around them is shown without being seen themselves:
/// bidirectional overrides, embeddings and isolates (a name «Anna\u{202E}ossoR» reads «Anna Rosso»
/// backwards to the official), zero-width and invisible characters, the byte-order mark, soft
/// hyphens. A person's name never needs them; emoji joiners (U+200D) are not among them.
pub fn is_hidden_format(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}'
        | '\u{200B}' | '\u{200C}' | '\u{200E}' | '\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{2069}'
        | '\u{FEFF}')
}

/// A name shown to other people (staff, guests, councillors): trimmed, 1..=`max` characters, no
/// control or hidden formatting characters ([`is_hidden_format`]).
pub fn clean_display_name(raw: &str, max: usize) -> Option<String> {
    let s = raw.trim();
    let ok = !s.is_empty() && s.chars().count() <= max && !s.chars().any(|c| c.is_control() || is_hidden_format(c));
    ok.then(|| s.to_owned())
}

fn check_details(raw: &str) -> Result<String, RequesterError> {
    let s = raw.trim();
    if s.chars().count() > DETAILS_MAX_CHARS {
        return Err(RequesterError::TooLong(Field::Details));
    }
    // Line breaks and tabs are text; other control characters and bidi overrides are not.
    if s.chars().any(|c| (c.is_control() && !matches!(c, '\n' | '\r' | '\t')) || is_hidden_format(c)) {
        return Err(RequesterError::ControlChars(Field::Details));
    }
    Ok(s.to_owned())
}

/// Deliberately simple (the confirmation email is the real check): one `@`, a local part of
/// printable non-space characters without quotes or angle brackets, a domain of dot-separated
/// labels (letters, digits, hyphens; not at a label's ends) with at least one dot.
pub fn check_email(raw: &str) -> Result<String, RequesterError> {
    let s = raw.trim();
    if s.is_empty() {
        return Err(RequesterError::Missing(Field::Email));
    }
    if s.len() > EMAIL_MAX_LEN {
        return Err(RequesterError::TooLong(Field::Email));
    }
    let (local, domain) = s.split_once('@').ok_or(RequesterError::InvalidEmail)?;
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local.chars().all(|c| c.is_ascii_graphic() && !"@\"<>()[]\\,;:".contains(c) || !c.is_ascii());
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_alphanumeric() || c == '-')
        });
    let no_space_or_control = !s.chars().any(|c| c.is_whitespace() || c.is_control());
    if local_ok && domain_ok && no_space_or_control { Ok(s.to_owned()) } else { Err(RequesterError::InvalidEmail) }
}

// --- booking code ---------------------------------------------------------------------------------

/// Crockford's base32: no I, L, O, U, so a code read over the phone cannot be misheard as another.
const CODE_ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Random bytes a code is drawn from: 40 bits, 8 symbols.
pub const CODE_BYTES: usize = 5;

/// `ABCD-2345`: eight Crockford symbols from 40 random bits, grouped by four.
pub fn booking_code(random: [u8; CODE_BYTES]) -> String {
    let mut bits: u64 = 0;
    for b in random {
        bits = (bits << 8) | u64::from(b);
    }
    let mut out = String::with_capacity(9);
    for i in 0..8 {
        if i == 4 {
            out.push('-');
        }
        let idx = ((bits >> (35 - 5 * i)) & 0x1f) as usize;
        out.push(char::from(CODE_ALPHABET[idx]));
    }
    out
}

/// A code as typed by a person (lower case, spaces, missing dash, O for 0, I/L for 1) in its
/// canonical form, or `None` when it cannot be a booking code.
pub fn normalize_code(typed: &str) -> Option<String> {
    let mut symbols = String::with_capacity(8);
    for c in typed.chars() {
        let c = match c.to_ascii_uppercase() {
            '-' | ' ' => continue,
            'O' => '0',
            'I' | 'L' => '1',
            c => c,
        };
        if !c.is_ascii() || !CODE_ALPHABET.contains(&(c as u8)) {
            return None;
        }
        symbols.push(c);
    }
    if symbols.len() != 8 {
        return None;
    }
    Some(format!("{}-{}", &symbols[..4], &symbols[4..]))
}

// --- time rules -----------------------------------------------------------------------------------

/// When the citizen's join link is valid: `(start − 15 min, end + 30 min)`.
pub fn join_window(start: Timestamp, end: Timestamp) -> (Timestamp, Timestamp) {
    let opens = start.checked_sub(JOIN_OPENS_BEFORE).unwrap_or(start);
    let closes = end.checked_add(JOIN_CLOSES_AFTER).unwrap_or(end);
    (opens, closes)
}

/// Where `now` stands relative to the join window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinTiming {
    /// The waiting room opens at the given instant.
    TooEarly {
        opens: Timestamp,
    },
    Open,
    Over,
}

pub fn join_timing(now: Timestamp, start: Timestamp, end: Timestamp) -> JoinTiming {
    let (opens, closes) = join_window(start, end);
    if now < opens {
        JoinTiming::TooEarly { opens }
    } else if now > closes {
        JoinTiming::Over
    } else {
        JoinTiming::Open
    }
}

/// The citizen may cancel or move an appointment only before it starts (afterwards the official
/// may already be waiting; the office decides).
pub fn can_change(now: Timestamp, start: Timestamp) -> bool {
    now < start
}

// --- opening hours and patterns -------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HoursError {
    #[error("not valid JSON: {0}")]
    Json(String),
    #[error("opening hours need exactly 7 days (Monday first), got {0}")]
    Days(usize),
    #[error("{0:?} is not a range HH:MM-HH:MM")]
    Range(String),
    #[error("{0}")]
    Pattern(#[from] PatternError),
}

/// `"09:00-12:30"` → a [`TimeRange`].
pub fn parse_range(s: &str) -> Result<TimeRange, HoursError> {
    let bad = || HoursError::Range(s.to_owned());
    let (a, b) = s.trim().split_once('-').ok_or_else(bad)?;
    let hm = |t: &str| -> Result<Time, HoursError> {
        let (h, m) = t.trim().split_once(':').ok_or_else(bad)?;
        let h: i8 = h.parse().map_err(|_| bad())?;
        let m: i8 = m.parse().map_err(|_| bad())?;
        Time::new(h, m, 0, 0).map_err(|_| bad())
    };
    TimeRange::new(hm(a)?, hm(b)?).map_err(|_| bad())
}

/// An office's opening hours, JSON `[["09:00-12:00"], [], …]` (7 arrays, Monday first), as one
/// list of sorted ranges per weekday.
pub fn parse_opening_hours(json: &str) -> Result<[Vec<TimeRange>; 7], HoursError> {
    let days: Vec<Vec<String>> = serde_json::from_str(json).map_err(|e| HoursError::Json(e.to_string()))?;
    if days.len() != 7 {
        return Err(HoursError::Days(days.len()));
    }
    let mut week: [Vec<TimeRange>; 7] = Default::default();
    for (slot, day) in week.iter_mut().zip(days) {
        let mut ranges = day.iter().map(|s| parse_range(s)).collect::<Result<Vec<_>, _>>()?;
        ranges.sort_by_key(TimeRange::start);
        *slot = ranges;
    }
    Ok(week)
}

/// The pattern of an official without a personal one: on site whenever the office is open, every
/// opening range bookable (split hours too: 09–12 and 15–17 both offer slots).
pub fn pattern_from_opening_hours(json: &str) -> Result<WorkingPattern, HoursError> {
    pattern_from_offices_hours(&[json])
}

/// The working week of an official without a personal pattern who belongs to these offices: on site
/// whenever one of them is open (the union of their opening hours, overlaps merged). The one rule
/// for such an official: bookings for an office offer that office's hours
/// ([`pattern_from_opening_hours`]), which always lie inside this week, what the official's own
/// month view and calendar feed show.
pub fn pattern_from_offices_hours(jsons: &[&str]) -> Result<WorkingPattern, HoursError> {
    let mut plans: [DayPlan; 7] = std::array::from_fn(|_| DayPlan::off());
    for (plan, hours) in plans.iter_mut().zip(opening_week(jsons)?) {
        if !hours.is_empty() {
            *plan = DayPlan::opening_hours(hours)?;
        }
    }
    Ok(WorkingPattern::new(plans))
}

/// The hours, Monday first, when at least one of these offices (opening hours as JSON) is open:
/// each day's ranges sorted, overlapping or touching ones merged.
pub fn opening_week(jsons: &[&str]) -> Result<[Vec<TimeRange>; 7], HoursError> {
    let mut week: [Vec<TimeRange>; 7] = Default::default();
    for json in jsons {
        for (day, hours) in week.iter_mut().zip(parse_opening_hours(json)?) {
            day.extend(hours);
        }
    }
    for day in &mut week {
        day.sort_by_key(TimeRange::start);
        let mut merged: Vec<TimeRange> = Vec::with_capacity(day.len());
        for range in day.drain(..) {
            match merged.last_mut() {
                Some(last) if range.start() <= last.end() => {
                    if range.end() > last.end() {
                        *last = TimeRange::new(last.start(), range.end())?;
                    }
                }
                _ => merged.push(range),
            }
        }
        *day = merged;
    }
    Ok(week)
}

/// The JSON shape of a personal working pattern (`users.pattern`):
///
/// ```json
/// {"week": [{"mode": "on_site", "hours": ["08:00-14:00"], "contact": "09:00-12:00"},
///           {"mode": "remote", "hours": ["08:00-14:00"], "contact": "09:00-12:00"},
///           {"mode": "off"}, …7 entries, Monday first…],
///  "exceptions": {"2027-03-10": {"mode": "off"}}}
/// ```
///
/// `contact` defaults to the whole working time when it is a single range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatternJson {
    pub week: Vec<DayJson>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub exceptions: BTreeMap<String, DayJson>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayJson {
    pub mode: ModeJson,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hours: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModeJson {
    OnSite,
    Remote,
    Off,
}

impl DayJson {
    fn to_plan(&self) -> Result<DayPlan, HoursError> {
        let mode = match self.mode {
            ModeJson::Off => return Ok(DayPlan::off()),
            ModeJson::OnSite => WorkMode::OnSite,
            ModeJson::Remote => WorkMode::Remote,
        };
        let mut hours = self.hours.iter().map(|s| parse_range(s)).collect::<Result<Vec<_>, _>>()?;
        hours.sort_by_key(TimeRange::start);
        let contact = match (&self.contact, hours.as_slice()) {
            (Some(c), _) => parse_range(c)?,
            (None, [only]) => *only,
            (None, _) => return Err(HoursError::Range("contact".into())),
        };
        Ok(DayPlan::working(mode, hours, contact)?)
    }
}

/// A stored personal pattern ([`PatternJson`]) as a [`WorkingPattern`].
pub fn pattern_from_json(json: &str) -> Result<WorkingPattern, HoursError> {
    let p: PatternJson = serde_json::from_str(json).map_err(|e| HoursError::Json(e.to_string()))?;
    if p.week.len() != 7 {
        return Err(HoursError::Days(p.week.len()));
    }
    let mut plans: [DayPlan; 7] = std::array::from_fn(|_| DayPlan::off());
    for (plan, day) in plans.iter_mut().zip(&p.week) {
        *plan = day.to_plan()?;
    }
    let mut pattern = WorkingPattern::new(plans);
    for (date, day) in &p.exceptions {
        let date: Date = date.parse().map_err(|_| HoursError::Json(format!("{date:?} is not a date")))?;
        pattern.set_exception(date, day.to_plan()?);
    }
    Ok(pattern)
}

// --- labels ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Lang {
    #[default]
    It,
    En,
}

impl Lang {
    /// `"en"` (or `en-GB` …) is English, anything else Italian.
    pub fn from_tag(tag: &str) -> Lang {
        if tag.trim().to_ascii_lowercase().starts_with("en") { Lang::En } else { Lang::It }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Lang::It => "it",
            Lang::En => "en",
        }
    }
}

const WEEKDAYS_IT: [&str; 7] = ["lunedì", "martedì", "mercoledì", "giovedì", "venerdì", "sabato", "domenica"];
const WEEKDAYS_EN: [&str; 7] = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];
const MONTHS_IT: [&str; 12] = [
    "gennaio",
    "febbraio",
    "marzo",
    "aprile",
    "maggio",
    "giugno",
    "luglio",
    "agosto",
    "settembre",
    "ottobre",
    "novembre",
    "dicembre",
];
const MONTHS_EN: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// "giovedì 11 marzo 2027" / "Thursday 11 March 2027".
pub fn date_label(date: Date, lang: Lang) -> String {
    let wd = date.weekday().to_monday_zero_offset() as usize;
    let m = (date.month() - 1) as usize;
    match lang {
        Lang::It => format!("{} {} {} {}", WEEKDAYS_IT[wd], date.day(), MONTHS_IT[m], date.year()),
        Lang::En => format!("{} {} {} {}", WEEKDAYS_EN[wd], date.day(), MONTHS_EN[m], date.year()),
    }
}

/// "giovedì 11 marzo 2027, ore 10:00" / "Thursday 11 March 2027, 10:00" in `tz`.
pub fn slot_label(start: Timestamp, tz: &TimeZone, lang: Lang) -> String {
    let local = tz.to_datetime(start);
    let time = local.time().strftime("%H:%M");
    match lang {
        Lang::It => format!("{}, ore {time}", date_label(local.date(), lang)),
        Lang::En => format!("{}, {time}", date_label(local.date(), lang)),
    }
}

/// "9:45 del 12 marzo 2027" / "9:45 on 12 March 2027": when a waiting room opens.
pub fn opening_label(at: Timestamp, tz: &TimeZone, lang: Lang) -> String {
    let local = tz.to_datetime(at);
    let (h, min) = (local.hour(), local.minute());
    let (d, m, y) = (local.day(), (local.month() - 1) as usize, local.year());
    match lang {
        Lang::It => format!("{h}:{min:02} del {d} {} {y}", MONTHS_IT[m]),
        Lang::En => format!("{h}:{min:02} on {d} {} {y}", MONTHS_EN[m]),
    }
}

/// A calendar month, e.g. `2027-03`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct YearMonth {
    pub year: i16,
    pub month: i8,
}

impl YearMonth {
    pub fn of(date: Date) -> YearMonth {
        YearMonth { year: date.year(), month: date.month() }
    }

    /// `"2027-03"`; `None` unless exactly that shape with a month 1–12.
    pub fn parse(s: &str) -> Option<YearMonth> {
        let (y, m) = s.split_once('-')?;
        if y.len() != 4 || m.len() != 2 {
            return None;
        }
        let (year, month) = (y.parse().ok()?, m.parse().ok()?);
        (1..=12).contains(&month).then_some(YearMonth { year, month })
    }

    /// "marzo 2027" / "March 2027".
    pub fn label(&self, lang: Lang) -> String {
        let m = (self.month.clamp(1, 12) - 1) as usize;
        match lang {
            Lang::It => format!("{} {}", MONTHS_IT[m], self.year),
            Lang::En => format!("{} {}", MONTHS_EN[m], self.year),
        }
    }
}

impl std::fmt::Display for YearMonth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

/// The months (local time) in which at least one slot starts, in order, without repeats.
pub fn months_with_slots(slots: &[Slot], tz: &TimeZone) -> Vec<YearMonth> {
    let mut out: Vec<YearMonth> = Vec::new();
    for s in slots {
        let ym = YearMonth::of(tz.to_datetime(s.start).date());
        if !out.contains(&ym) {
            out.push(ym);
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::availability::{Modes, OfficialId};
    use jiff::civil::date;

    fn rome() -> TimeZone {
        crate::europe_rome().expect("bundled tzdb")
    }

    fn input<'a>(first: &'a str, last: &'a str, email: &'a str, details: &'a str) -> RequesterInput<'a> {
        RequesterInput { first_name: first, last_name: last, email, details }
    }

    /// «Anna\u{202E}ossoR» would read «Anna Rosso» backwards on the official's desk.
    #[test]
    fn hidden_formatting_is_refused_in_names_and_details() {
        for bad in ["Anna\u{202E}ossoR", "Ma\u{200B}rio", "\u{2066}Luca\u{2069}", "Ros\u{00AD}si", "\u{FEFF}Bea"] {
            let errors = validate_requester(&input(bad, "Rossi", "a@b.it", "")).expect_err(bad);
            assert_eq!(errors, [RequesterError::ControlChars(Field::FirstName)], "{bad:?}");
            assert_eq!(clean_display_name(bad, 100), None, "{bad:?}");
        }
        let details =
            validate_requester(&input("Anna", "Rossi", "a@b.it", "riga 1\n\u{202E}riga 2")).expect_err("bidi");
        assert_eq!(details, [RequesterError::ControlChars(Field::Details)]);
        // Accents, apostrophes, other scripts and emoji with joiners are names.
        for good in ["Nicolò D'Amico", "Zoë", "Мария", "محمد", "👩\u{200D}💻 Ada"] {
            assert!(validate_requester(&input(good, "Rossi", "a@b.it", "")).is_ok(), "{good:?}");
            assert_eq!(clean_display_name(&format!("  {good} "), 100).as_deref(), Some(good));
        }
    }

    #[test]
    fn a_good_requester_is_trimmed() {
        let r =
            validate_requester(&input("  Anna ", "Rossi", " anna.rossi@example.org ", " ISEE\n2026 ")).expect("valid");
        assert_eq!(r.first_name, "Anna");
        assert_eq!(r.email, "anna.rossi@example.org");
        assert_eq!(r.details, "ISEE\n2026");
        assert!(validate_requester(&input("Zoë", "D'Àngelo-Nuñez", "z@comune.milano.it", "")).is_ok());
    }

    #[test]
    fn every_bad_field_is_reported_once_in_form_order() {
        let long = "x".repeat(101);
        let errors = validate_requester(&input(" ", &long, "nope", &"d".repeat(2001))).unwrap_err();
        assert_eq!(
            errors,
            [
                RequesterError::Missing(Field::FirstName),
                RequesterError::TooLong(Field::LastName),
                RequesterError::InvalidEmail,
                RequesterError::TooLong(Field::Details),
            ]
        );
        assert_eq!(validate_requester(&input("A\u{7}", "B", "a@b.it", "")).unwrap_err()[0].field(), Field::FirstName);
        assert!(validate_requester(&input("A", "B", "a@b.it", &"d".repeat(2000))).is_ok());
        assert!(validate_requester(&input(&"a".repeat(100), "B", "a@b.it", "")).is_ok());
    }

    #[test]
    fn email_rules() {
        let ok = ["a@b.it", "anna.rossi+cie@comune.example.org", "x_y@sub-domain.example.com"];
        for e in ok {
            assert!(check_email(e).is_ok(), "{e}");
        }
        let bad = [
            "plain",
            "a@b",
            "a@@b.it",
            "a@b@c.it",
            "a b@c.it",
            "@b.it",
            "a@.it",
            "a@b..it",
            "a@-b.it",
            ".a@b.it",
            "a..b@c.it",
            "a<b>@c.it",
            "a\n@b.it",
        ];
        for e in bad {
            assert!(check_email(e).is_err(), "{e:?}");
        }
        let long = format!("{}@{}.it", "a".repeat(60), "b".repeat(200));
        assert_eq!(check_email(&long), Err(RequesterError::TooLong(Field::Email)));
        assert_eq!(check_email(""), Err(RequesterError::Missing(Field::Email)));
    }

    #[test]
    fn booking_codes() {
        assert_eq!(booking_code([0; 5]), "0000-0000");
        assert_eq!(booking_code([0xff; 5]), "ZZZZ-ZZZZ");
        let code = booking_code([0x12, 0x34, 0x56, 0x78, 0x9a]);
        assert_eq!(code.len(), 9);
        assert!(code.chars().all(|c| c == '-' || CODE_ALPHABET.contains(&(c as u8))));
        assert!(!code.contains(['I', 'L', 'O', 'U']));
        assert_eq!(normalize_code(&code.to_lowercase().replace('-', " ")), Some(code.clone()));
        assert_eq!(normalize_code("abcd-2345"), Some("ABCD-2345".into()));
        assert_eq!(normalize_code("oil0-1111"), Some("0110-1111".into()));
        assert_eq!(normalize_code("ABCD-234"), None);
        assert_eq!(normalize_code("ABCD-23U5"), None);
        assert_eq!(normalize_code("ÀBCD-2345"), None);
    }

    #[test]
    fn join_window_and_changes() {
        let start: Timestamp = "2027-03-12T09:00:00Z".parse().unwrap();
        let end: Timestamp = "2027-03-12T09:30:00Z".parse().unwrap();
        let (opens, closes) = join_window(start, end);
        assert_eq!(opens, "2027-03-12T08:45:00Z".parse().unwrap());
        assert_eq!(closes, "2027-03-12T10:00:00Z".parse().unwrap());
        let minus = |t: Timestamp, s: i64| t.checked_sub(SignedDuration::from_secs(s)).unwrap();
        let plus = |t: Timestamp, s: i64| t.checked_add(SignedDuration::from_secs(s)).unwrap();
        assert_eq!(join_timing(minus(opens, 1), start, end), JoinTiming::TooEarly { opens });
        assert_eq!(join_timing(opens, start, end), JoinTiming::Open);
        assert_eq!(join_timing(closes, start, end), JoinTiming::Open);
        assert_eq!(join_timing(plus(closes, 1), start, end), JoinTiming::Over);
        assert!(can_change(minus(start, 1), start));
        assert!(!can_change(start, start));
    }

    #[test]
    fn opening_hours_become_an_on_site_pattern() {
        let json = r#"[["09:00-12:00"],["09:00-12:00","15:00-17:30"],[],[],["08:30-13:00"],[],[]]"#;
        let p = pattern_from_opening_hours(json).expect("pattern");
        let monday = p.plan_for(date(2027, 3, 8));
        assert_eq!(monday.mode(), WorkMode::OnSite);
        assert_eq!(monday.contact(), Some(TimeRange::hm(9, 0, 12, 0).unwrap()));
        let tuesday = p.plan_for(date(2027, 3, 9));
        assert_eq!(tuesday.hours().len(), 2);
        // Split hours: both the morning and the afternoon are bookable.
        assert_eq!(tuesday.contact(), Some(TimeRange::hm(9, 0, 17, 30).unwrap()));
        let tz = crate::europe_rome().unwrap();
        let s = p.schedule(date(2027, 3, 9), date(2027, 3, 9), &tz, &Default::default()).unwrap();
        let windows: Vec<String> = s.contact.iter().map(|c| format!("{:?}", c.interval)).collect();
        assert_eq!(s.contact.len(), 2, "{windows:?}");
        assert_eq!(p.plan_for(date(2027, 3, 10)).mode(), WorkMode::Off);
        assert!(matches!(pattern_from_opening_hours("[[]]"), Err(HoursError::Days(1))));
        assert!(matches!(pattern_from_opening_hours(r#"[["9-12"],[],[],[],[],[],[]]"#), Err(HoursError::Range(_))));
        assert!(matches!(pattern_from_opening_hours("{"), Err(HoursError::Json(_))));
    }

    #[test]
    fn personal_pattern_json() {
        let json = r#"{"week":[
            {"mode":"on_site","hours":["08:00-14:00"],"contact":"09:00-12:00"},
            {"mode":"remote","hours":["08:00-14:00"]},
            {"mode":"off"},{"mode":"off"},{"mode":"off"},{"mode":"off"},{"mode":"off"}],
            "exceptions":{"2027-03-08":{"mode":"off"}}}"#;
        let p = pattern_from_json(json).expect("pattern");
        assert_eq!(p.plan_for(date(2027, 3, 8)).mode(), WorkMode::Off);
        assert_eq!(p.plan_for(date(2027, 3, 15)).contact(), Some(TimeRange::hm(9, 0, 12, 0).unwrap()));
        assert_eq!(p.plan_for(date(2027, 3, 9)).mode(), WorkMode::Remote);
        let round: PatternJson = serde_json::from_str(json).unwrap();
        assert_eq!(serde_json::from_str::<PatternJson>(&serde_json::to_string(&round).unwrap()).unwrap(), round);
        assert!(pattern_from_json(r#"{"week":[]}"#).is_err());
    }

    #[test]
    fn labels() {
        let start = date(2027, 3, 11).at(10, 0, 0, 0).to_zoned(rome()).unwrap().timestamp();
        assert_eq!(slot_label(start, &rome(), Lang::It), "giovedì 11 marzo 2027, ore 10:00");
        assert_eq!(slot_label(start, &rome(), Lang::En), "Thursday 11 March 2027, 10:00");
        let opens = date(2027, 3, 12).at(9, 45, 0, 0).to_zoned(rome()).unwrap().timestamp();
        assert_eq!(opening_label(opens, &rome(), Lang::It), "9:45 del 12 marzo 2027");
        assert_eq!(Lang::from_tag("en-GB"), Lang::En);
        assert_eq!(Lang::from_tag("fr"), Lang::It);
    }

    #[test]
    fn months() {
        let at = |m: i8, d: i8| date(2027, m, d).at(10, 0, 0, 0).to_zoned(rome()).unwrap().timestamp();
        let slot = |t: Timestamp| Slot {
            start: t,
            end: t,
            mode_options: Modes::BOTH,
            officials: vec![OfficialId(1)],
            in_person: vec![],
        };
        let slots = [slot(at(3, 30)), slot(at(3, 31)), slot(at(5, 2))];
        let months = months_with_slots(&slots, &rome());
        assert_eq!(months, [YearMonth { year: 2027, month: 3 }, YearMonth { year: 2027, month: 5 }]);
        assert_eq!(months[0].to_string(), "2027-03");
        assert_eq!(YearMonth::parse("2027-03"), Some(months[0]));
        assert_eq!(YearMonth::parse("2027-13"), None);
        assert_eq!(YearMonth::parse("27-03"), None);
        assert_eq!(months[1].label(Lang::It), "maggio 2027");
    }
}
