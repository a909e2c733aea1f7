//! [`BackOffice`]: what the municipal use cases and their background passes share — the store, the
//! token key, the mailer, the clock and the public address — without the HTTP edge's state.

use std::sync::Arc;
use std::time::Duration;

use sportello_store::{Store, StoreError};

use crate::clock::Clock;
use crate::mail::Mailer;
use crate::token::{KeyError, TokenKey};

/// Cheap to clone; the HTTP edge keeps one in its state.
#[derive(Clone)]
pub struct BackOffice {
    pub store: Store,
    pub tokens: Arc<TokenKey>,
    pub mailer: Mailer,
    /// The server's "now" (shared with `tokens`).
    pub clock: Clock,
    /// How citizens and officials reach the server (`https://…`): every link and feed URL starts with it.
    pub public_url: String,
    pub calendars: CalendarPolicy,
    /// This node's id (`SPORTELLO_NODE_ID`; one name for a single node): who holds the leases of
    /// work one node does at a time ([`once`](crate::once)).
    pub node: Arc<str>,
}

/// How officials' subscribed calendars are fetched (`calendar_fetch`).
#[derive(Debug, Clone)]
pub struct CalendarPolicy {
    pub refresh: Duration,
    pub fetch_timeout: Duration,
    /// Test servers on loopback only: private and internal addresses are refused otherwise.
    pub allow_private: bool,
}

/// Failures of the back office's use cases; the HTTP edge maps them once (`api::error`).
#[derive(Debug, thiserror::Error)]
pub enum BackOfficeError {
    #[error("not found")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("signing: {0}")]
    Key(#[from] KeyError),
    #[error("date out of range: {0}")]
    Date(#[from] jiff::Error),
    #[error("holidays: {0}")]
    Holidays(#[from] sportello_domain::holidays::HolidayError),
    #[error("availability: {0}")]
    Availability(#[from] sportello_domain::AvailabilityError),
}
