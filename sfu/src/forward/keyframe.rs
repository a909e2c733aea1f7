//! Keyframe-request throttling for one published video track. Every new or recovering subscriber
//! needs a keyframe, but a publisher asked for one per subscriber would spend its bitrate on
//! keyframes; so upstream requests (PLI) go out at most once per interval, and a request arriving
//! inside the interval is remembered, never lost.

use std::time::{Duration, Instant};

/// The default minimum spacing of upstream keyframe requests.
pub const DEFAULT_KEYFRAME_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct KeyframeThrottle {
    min_interval: Duration,
    last_sent: Option<Instant>,
    /// When the oldest unsatisfied request was recorded.
    pending_since: Option<Instant>,
}

impl Default for KeyframeThrottle {
    fn default() -> Self {
        KeyframeThrottle::new(DEFAULT_KEYFRAME_INTERVAL)
    }
}

impl KeyframeThrottle {
    pub fn new(min_interval: Duration) -> Self {
        KeyframeThrottle { min_interval, last_sent: None, pending_since: None }
    }

    /// Records demand for a keyframe (a subscriber joined, lost packets, or sent PLI/FIR).
    pub fn request(&mut self, now: Instant) {
        self.pending_since.get_or_insert(now);
    }

    /// True when a PLI should be sent upstream now; the request is then marked sent.
    pub fn poll(&mut self, now: Instant) -> bool {
        match self.next_timeout() {
            Some(at) if at <= now => {
                self.pending_since = None;
                self.last_sent = Some(now);
                true
            }
            _ => false,
        }
    }

    /// A keyframe arrived: whoever was waiting has it, so pending demand is dropped. The interval
    /// is not reset: a request right after a keyframe (e.g. it arrived damaged) is still sent on time.
    pub fn keyframe_received(&mut self, _now: Instant) {
        self.pending_since = None;
    }

    /// Whether a request is waiting to be sent.
    pub fn is_pending(&self) -> bool {
        self.pending_since.is_some()
    }

    /// When the pending request becomes sendable (possibly already past), or `None` if nothing is
    /// pending. An interval too large to add to an `Instant` means "never again".
    pub fn next_timeout(&self) -> Option<Instant> {
        let since = self.pending_since?;
        match self.last_sent {
            None => Some(since),
            Some(sent) => sent.checked_add(self.min_interval).map(|open| open.max(since)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    #[test]
    fn nothing_is_sent_without_a_request() {
        let t0 = Instant::now();
        let mut k = KeyframeThrottle::default();
        assert!(!k.poll(t0));
        assert_eq!(k.next_timeout(), None);
    }

    #[test]
    fn first_request_fires_immediately() {
        let t0 = Instant::now();
        let mut k = KeyframeThrottle::new(Duration::from_secs(1));
        k.request(t0);
        assert_eq!(k.next_timeout(), Some(t0));
        assert!(k.poll(t0));
        assert!(!k.poll(t0), "marked sent");
        assert_eq!(k.next_timeout(), None);
    }

    #[test]
    fn ten_requests_within_a_second_give_one_pli_then_another_when_the_interval_ends() {
        let t0 = Instant::now();
        let mut k = KeyframeThrottle::new(Duration::from_secs(1));
        let mut sent = Vec::new();
        for i in 0..10 {
            let now = ms(t0, i * 100);
            k.request(now);
            if k.poll(now) {
                sent.push(now);
            }
        }
        assert_eq!(sent, vec![t0]);
        assert_eq!(k.next_timeout(), Some(ms(t0, 1_000)));
        assert!(!k.poll(ms(t0, 999)));
        assert!(k.poll(ms(t0, 1_000)));
        assert!(!k.poll(ms(t0, 5_000)), "all ten were satisfied by the two PLIs");
    }

    #[test]
    fn keyframe_received_cancels_pending_demand() {
        let t0 = Instant::now();
        let mut k = KeyframeThrottle::new(Duration::from_secs(1));
        k.request(t0);
        assert!(k.poll(t0));
        k.request(ms(t0, 100));
        assert!(k.is_pending());
        k.keyframe_received(ms(t0, 200));
        assert!(!k.is_pending());
        assert_eq!(k.next_timeout(), None);
        assert!(!k.poll(ms(t0, 1_000)));
    }

    #[test]
    fn request_of_a_new_subscriber_fires_at_once_when_none_was_sent_for_an_interval() {
        let t0 = Instant::now();
        let mut k = KeyframeThrottle::new(Duration::from_secs(1));
        k.request(t0);
        assert!(k.poll(t0));
        let later = ms(t0, 1_500);
        k.request(later);
        assert_eq!(k.next_timeout(), Some(later));
        assert!(k.poll(later));
    }

    #[test]
    fn request_right_after_a_keyframe_still_respects_the_interval() {
        let t0 = Instant::now();
        let mut k = KeyframeThrottle::new(Duration::from_secs(1));
        k.request(t0);
        assert!(k.poll(t0));
        k.keyframe_received(ms(t0, 300));
        k.request(ms(t0, 400));
        assert!(!k.poll(ms(t0, 400)));
        assert!(k.poll(ms(t0, 1_000)));
    }

    #[test]
    fn huge_interval_never_overflows_the_clock() {
        let t0 = Instant::now();
        let mut k = KeyframeThrottle::new(Duration::MAX);
        k.request(t0);
        assert!(k.poll(t0));
        k.request(t0);
        assert_eq!(k.next_timeout(), None);
        assert!(!k.poll(ms(t0, 10_000)));
    }
}
