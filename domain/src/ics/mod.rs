//! iCalendar (RFC 5545): officials' own calendars in (busy times), Sportello's feeds out.
//!
//! Pure like the rest of the crate: text in, text out; no I/O, no network, no clock (the feed's
//! `DTSTAMP` is passed in). Parsing uses the `icalendar` crate's parser, recurrence expansion the
//! `rrule` crate (chrono only at that boundary, converted to jiff straight away). The feed writer is
//! our own, small and exact about folding and escaping (see `export.rs`).

mod export;
mod import;

pub use export::{FeedEvent, FeedKind, Invite, appointment_message, feed};
pub use import::{ImportLimits, busy_from_ics};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IcsError {
    /// Not iCalendar, or iCalendar we cannot read faithfully (bad dates, bad RRULE …).
    #[error("invalid iCalendar data: {0}")]
    Invalid(String),
    /// One of the [`ImportLimits`] was exceeded; nothing is returned rather than a partial result.
    #[error("iCalendar data exceeds the {what} limit ({limit})")]
    LimitExceeded { what: &'static str, limit: usize },
}

#[cfg(test)]
mod tests;
