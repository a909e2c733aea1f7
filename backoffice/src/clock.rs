//! The server's one notion of "now", in Unix seconds. Everything that decides by time (token
//! windows, free slots, reminders, retention) asks the [`Clock`], never the system directly, so that
//! tests can run the whole server at a chosen time of day (booking hours do not depend on when CI runs).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// System time plus an offset (zero outside tests). Cheap to clone; clones share the offset.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset_secs: Arc<AtomicI64>,
}

impl Clock {
    pub fn system() -> Clock {
        Clock::default()
    }

    /// A clock running `offset_secs` ahead of the system (behind when negative).
    pub fn offset(offset_secs: i64) -> Clock {
        Clock { offset_secs: Arc::new(AtomicI64::new(offset_secs)) }
    }

    /// Moves this clock (and its clones) by `secs` more.
    pub fn advance(&self, secs: i64) {
        self.offset_secs.fetch_add(secs, Ordering::Relaxed);
    }

    pub fn now(&self) -> i64 {
        let system = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
        system.saturating_add(self.offset_secs.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_the_offset() {
        let clock = Clock::offset(3600);
        let clone = clock.clone();
        let before = Clock::system().now();
        clock.advance(60);
        let shifted = clone.now();
        assert!((3660..=3662).contains(&(shifted - before)), "shifted by {}", shifted - before);
    }
}
