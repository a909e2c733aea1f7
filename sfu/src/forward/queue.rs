//! Per-subscriber output buffering: a bounded lossy FIFO, so a slow subscriber never blocks anyone
//! else, and a token-bucket pacer, so each queue drains no faster than its subscriber's estimated
//! bandwidth (REMB) allows.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// A bounded FIFO that evicts its oldest item on overflow. Old media is the least useful: by the
/// time it would be sent the receiver has likely given up on it.
#[derive(Debug, Clone)]
pub struct LossyQueue<T> {
    items: VecDeque<T>,
    capacity: usize,
    dropped: u64,
}

impl<T> LossyQueue<T> {
    /// Holds at most `cap` items, but allocates only as deep as the queue gets (growing by
    /// doubling, then never again): a subscriber that keeps up holds a few packets. A ring of all
    /// `cap` slots allocated up front is touched slot by slot as it turns, so every subscriber kept
    /// all of it resident (≈ 70 KiB at 512 forwarded packets). A capacity of 0 keeps nothing: every
    /// pushed item comes straight back as evicted.
    pub fn with_capacity(cap: usize) -> Self {
        LossyQueue { items: VecDeque::new(), capacity: cap, dropped: 0 }
    }

    /// Appends `item`; when full, the oldest item is evicted and returned (the caller learns which
    /// downtrack lost a packet, e.g. to resynchronise it at a keyframe).
    pub fn push(&mut self, item: T) -> Option<T> {
        if self.capacity == 0 {
            self.dropped += 1;
            return Some(item);
        }
        let evicted = if self.items.len() >= self.capacity { self.items.pop_front() } else { None };
        if evicted.is_some() {
            self.dropped += 1;
        }
        self.items.push_back(item);
        evicted
    }

    pub fn pop(&mut self) -> Option<T> {
        self.items.pop_front()
    }

    /// The oldest item, without removing it (e.g. to ask the pacer whether it fits).
    pub fn front(&self) -> Option<&T> {
        self.items.front()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Empties the queue; keeps its allocation. Cleared items are not counted as dropped.
    pub fn clear(&mut self) {
        self.items.clear();
    }

    /// Items evicted by overflow since creation.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

/// Credit unit: one bit-nanosecond, so refills at any bitrate are exact integers.
const CREDIT_PER_BYTE: i128 = 8 * 1_000_000_000;

/// A token bucket: `burst_bytes` of credit, refilled at the bitrate. A packet is sent when the
/// bucket holds its size (or is full, for packets larger than the burst); the credit may go negative
/// so the long-run rate stays exact.
#[derive(Debug, Clone)]
pub struct Pacer {
    bitrate_bps: Option<u64>,
    burst_bytes: usize,
    /// Current credit in bit-nanoseconds; at most `burst_bytes * CREDIT_PER_BYTE`.
    credit: i128,
    /// When `credit` was last brought up to date; `None` until first used.
    updated: Option<Instant>,
}

impl Pacer {
    /// `None` = unlimited. The bucket starts full.
    pub fn new(bitrate_bps: Option<u64>, burst_bytes: usize) -> Self {
        Pacer { bitrate_bps, burst_bytes, credit: Self::full(burst_bytes), updated: None }
    }

    /// Changes the rate (e.g. on a new REMB). Credit earned since the last send is counted at the
    /// new rate when next used; from unlimited the bucket starts full.
    pub fn set_bitrate(&mut self, bitrate_bps: Option<u64>) {
        if self.bitrate_bps.is_none() {
            self.credit = Self::full(self.burst_bytes);
        }
        self.bitrate_bps = bitrate_bps;
    }

    pub fn bitrate(&self) -> Option<u64> {
        self.bitrate_bps
    }

    /// True (and the credit is spent) when `bytes` may be sent now.
    pub fn try_consume(&mut self, bytes: usize, now: Instant) -> bool {
        if self.bitrate_bps.is_none() {
            return true;
        }
        self.refill(now);
        if self.credit < self.cost(bytes) {
            return false;
        }
        self.credit -= Self::bytes_to_credit(bytes);
        true
    }

    /// When `try_consume(bytes, ..)` will succeed: `now` if it would now, `None` if never (a zero
    /// bitrate). Lets the engine sleep until the next packet of a paced queue fits.
    pub fn ready_at(&mut self, bytes: usize, now: Instant) -> Option<Instant> {
        let Some(bps) = self.bitrate_bps else {
            return Some(now);
        };
        self.refill(now);
        let missing = self.cost(bytes) - self.credit;
        if missing <= 0 {
            return Some(now);
        }
        if bps == 0 {
            return None;
        }
        let nanos = (missing + i128::from(bps) - 1) / i128::from(bps);
        let nanos = u64::try_from(nanos).unwrap_or(u64::MAX);
        now.checked_add(Duration::from_nanos(nanos))
    }

    fn refill(&mut self, now: Instant) {
        let bps = self.bitrate_bps.unwrap_or(0);
        if let Some(updated) = self.updated {
            let elapsed = now.saturating_duration_since(updated).as_nanos();
            let earned = i128::try_from(elapsed).unwrap_or(i128::MAX / 2).saturating_mul(i128::from(bps));
            self.credit = self.credit.saturating_add(earned).min(Self::full(self.burst_bytes));
        }
        // A clock that went backwards must not make us earn the same time twice.
        if self.updated.is_none_or(|updated| now > updated) {
            self.updated = Some(now);
        }
    }

    /// Credit needed to send `bytes`: its size, capped at the burst so big packets still pass.
    fn cost(&self, bytes: usize) -> i128 {
        Self::bytes_to_credit(bytes.min(self.burst_bytes))
    }

    fn full(burst_bytes: usize) -> i128 {
        Self::bytes_to_credit(burst_bytes)
    }

    fn bytes_to_credit(bytes: usize) -> i128 {
        (bytes as i128).saturating_mul(CREDIT_PER_BYTE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_come_out_in_order() {
        let mut q = LossyQueue::with_capacity(4);
        assert!(q.is_empty());
        for i in 0..3 {
            assert_eq!(q.push(i), None);
        }
        assert_eq!(q.len(), 3);
        assert_eq!(q.front(), Some(&0));
        assert_eq!((q.pop(), q.pop(), q.pop(), q.pop()), (Some(0), Some(1), Some(2), None));
    }

    #[test]
    fn overflow_evicts_and_returns_the_oldest() {
        let mut q = LossyQueue::with_capacity(3);
        for i in 0..3 {
            q.push(i);
        }
        assert_eq!(q.push(3), Some(0));
        assert_eq!(q.push(4), Some(1));
        assert_eq!(q.len(), 3);
        assert_eq!(q.dropped(), 2);
        assert_eq!(q.pop(), Some(2));
    }

    #[test]
    fn queue_allocates_only_as_deep_as_it_gets_and_never_beyond_its_bound() {
        let mut q = LossyQueue::with_capacity(512);
        // A subscriber that keeps up: two packets in, two out, for a long time.
        for i in 0..10_000 {
            q.push(i);
            q.push(i);
            q.pop();
            q.pop();
        }
        assert!(q.items.capacity() <= 8, "allocated {} slots for a depth of 2", q.items.capacity());
        // One that does not: the bound holds, and the allocation stops growing at it.
        for i in 0..10_000 {
            q.push(i);
        }
        let allocated = q.items.capacity();
        assert_eq!(q.len(), 512);
        for i in 0..10_000 {
            q.push(i);
        }
        assert_eq!(q.items.capacity(), allocated);
        assert!(allocated < 1024);
    }

    #[test]
    fn clear_empties_without_counting_drops() {
        let mut q = LossyQueue::with_capacity(2);
        q.push(1);
        q.push(2);
        q.clear();
        assert!(q.is_empty());
        assert_eq!(q.dropped(), 0);
    }

    #[test]
    fn zero_capacity_queue_hands_every_item_back() {
        let mut q = LossyQueue::with_capacity(0);
        assert_eq!(q.push(7), Some(7));
        assert!(q.is_empty());
        assert_eq!(q.dropped(), 1);
    }

    #[test]
    fn unlimited_pacer_always_allows() {
        let t0 = Instant::now();
        let mut p = Pacer::new(None, 1_000);
        for _ in 0..100 {
            assert!(p.try_consume(1_500, t0));
        }
        assert_eq!(p.ready_at(1_500, t0), Some(t0));
    }

    #[test]
    fn pacer_allows_the_burst_then_the_bitrate() {
        let t0 = Instant::now();
        // 1 Mbit/s = 125 000 bytes/s; burst of 10 packets of 1 000 bytes.
        let mut p = Pacer::new(Some(1_000_000), 10_000);
        for _ in 0..10 {
            assert!(p.try_consume(1_000, t0));
        }
        assert!(!p.try_consume(1_000, t0));
        assert_eq!(p.ready_at(1_000, t0), Some(t0 + Duration::from_millis(8)));
        assert!(!p.try_consume(1_000, t0 + Duration::from_micros(7_999)));
        assert!(p.try_consume(1_000, t0 + Duration::from_millis(8)));
        // Over one second at steady state: exactly 125 packets of 1 000 bytes.
        let mut sent = 0;
        for step in 1..=1_000u64 {
            let now = t0 + Duration::from_millis(8 + step);
            while p.try_consume(1_000, now) {
                sent += 1;
            }
        }
        assert_eq!(sent, 125);
    }

    #[test]
    fn idle_pacer_refills_only_up_to_the_burst() {
        let t0 = Instant::now();
        let mut p = Pacer::new(Some(8_000), 100); // 1 000 bytes/s
        assert!(p.try_consume(100, t0));
        let later = t0 + Duration::from_secs(60);
        assert!(p.try_consume(100, later));
        assert!(!p.try_consume(100, later));
    }

    #[test]
    fn packet_larger_than_the_burst_passes_on_a_full_bucket_and_leaves_a_debt() {
        let t0 = Instant::now();
        let mut p = Pacer::new(Some(8_000), 100); // 1 000 bytes/s
        assert!(p.try_consume(1_100, t0));
        // Debt of 1 000 bytes, then 100 more for the next packet: 1.1 s.
        assert_eq!(p.ready_at(100, t0), Some(t0 + Duration::from_millis(1_100)));
    }

    #[test]
    fn lowering_the_bitrate_slows_the_drain() {
        let t0 = Instant::now();
        let mut p = Pacer::new(Some(8_000_000), 1_000);
        assert!(p.try_consume(1_000, t0));
        p.set_bitrate(Some(8_000)); // REMB: 1 000 bytes/s
        assert!(!p.try_consume(1_000, t0 + Duration::from_millis(500)));
        assert!(p.try_consume(1_000, t0 + Duration::from_millis(1_000)));
        p.set_bitrate(None);
        assert!(p.try_consume(1_000_000, t0 + Duration::from_millis(1_000)));
    }

    #[test]
    fn zero_bitrate_is_never_ready_once_the_burst_is_spent() {
        let t0 = Instant::now();
        let mut p = Pacer::new(Some(0), 10);
        assert!(p.try_consume(10, t0));
        assert_eq!(p.ready_at(10, t0), None);
    }

    #[test]
    fn clock_going_backwards_earns_nothing() {
        let t0 = Instant::now() + Duration::from_secs(10);
        let mut p = Pacer::new(Some(8_000), 100);
        assert!(p.try_consume(100, t0));
        assert!(!p.try_consume(100, t0 - Duration::from_secs(5)));
        assert!(!p.try_consume(100, t0 + Duration::from_millis(50)));
        assert!(p.try_consume(100, t0 + Duration::from_millis(100)));
    }
}
