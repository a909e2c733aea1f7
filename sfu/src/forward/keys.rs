//! Identifiers the engine assigns; the core only compares and hashes them.

/// A published track (one source of one participant), stable across the publisher's reconnections.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TrackKey(pub u64);

/// A receiving participant (its subscribe peer connection).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubscriberKey(pub u64);

/// One subscriber's copy of one track: the unit that owns a sequence/timestamp rewriter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DownTrackKey {
    pub subscriber: SubscriberKey,
    pub track: TrackKey,
}

impl DownTrackKey {
    pub fn new(subscriber: SubscriberKey, track: TrackKey) -> Self {
        DownTrackKey { subscriber, track }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downtrack_keys_order_by_subscriber_then_track() {
        let a = DownTrackKey::new(SubscriberKey(1), TrackKey(9));
        let b = DownTrackKey::new(SubscriberKey(2), TrackKey(0));
        assert!(a < b);
        assert_eq!(a, DownTrackKey { subscriber: SubscriberKey(1), track: TrackKey(9) });
    }
}
