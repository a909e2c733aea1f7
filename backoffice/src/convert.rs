//! Store rows into the domain's types, in one place: the use cases read rows and hand the rules
//! `sportello-domain` values (meeting modes, intervals, the patron's day).

use sportello_domain::{Interval, MeetingMode, PatronDay};
use sportello_store::{Mode, Modes};

use crate::time::ts;

/// The modes a service offers.
pub fn modes(m: Modes) -> sportello_domain::Modes {
    match m {
        Modes::Video => sportello_domain::Modes::VIDEO,
        Modes::InPerson => sportello_domain::Modes::IN_PERSON,
        Modes::Both => sportello_domain::Modes::BOTH,
    }
}

/// The mode of one appointment.
pub fn meeting_mode(m: Mode) -> MeetingMode {
    match m {
        Mode::Video => MeetingMode::Video,
        Mode::InPerson => MeetingMode::InPerson,
    }
}

/// A row's `starts_at`..`ends_at` (Unix seconds); `None` when empty or reversed, which no rule can use.
pub fn interval(starts_at: i64, ends_at: i64) -> Option<Interval> {
    Interval::new(ts(starts_at), ts(ends_at)).ok()
}

/// The patron's day setting, `MM-DD`; `None` when empty or not a day.
pub fn patron_day(value: &str) -> Option<PatronDay> {
    let (m, d) = value.trim().split_once('-')?;
    PatronDay::new(m.parse().ok()?, d.parse().ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_become_domain_values() {
        assert!(patron_day("10-04").is_some());
        assert!(patron_day(" 02-30").is_none() && patron_day("").is_none() && patron_day("1004").is_none());
        assert!(interval(10, 20).is_some() && interval(20, 10).is_none());
        assert!(modes(Modes::Both).allows(meeting_mode(Mode::InPerson)));
        assert!(!modes(Modes::Video).allows(meeting_mode(Mode::InPerson)));
    }
}
