//! Retransmission history, kept once per published track instead of once per subscriber.
//!
//! A subscriber's NACK names sequence numbers of *its* downtrack, which the munger rewrote. The
//! [`SentLog`] of each downtrack remembers, per outgoing sequence number, which original packet it
//! was (SSRC and sequence number of the feed) and the timestamp it went out with; the track's
//! [`History`] keeps the last original packets. Together they rebuild the exact packet the
//! subscriber missed, with a few bytes per subscriber rather than a copy of every packet.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Original packets kept per track at most: ≈ 4 s of a 1.5 Mbit/s video; longer than any downtrack's log.
pub const HISTORY_PACKETS: usize = 512;
/// How long a packet is kept at most. A retransmission later than this reaches a browser whose
/// jitter buffer has long given the packet up (libwebrtc keeps its own send history for about as
/// long); keeping 4 s of every published video cost ≈ 600 KiB per publisher.
pub const HISTORY_AGE: Duration = Duration::from_secs(1);
/// How long a packet is kept until a subscriber's round trip is known: time for a first NACK over
/// a round trip of up to half a second (Janus keeps 200 ms from the start). A subscriber's DTLS
/// handshake tells its round trip as it connects (`transport::dtls_replay`), its receiver reports
/// a second or two later; this holds only for a track whose subscribers' handshakes went untimed.
/// Keeping the longest until then cost more than those packets: the allocator kept their pages
/// resident after the history had shrunk (≈ 100 KiB per participant of an office of 5 × 3,
/// BENCHMARKS.md).
pub const HISTORY_FIRST_AGE: Duration = Duration::from_millis(500);
/// How long a packet is kept at least, however short the round trips: a browser asks for a lost
/// packet once the next one shows the gap, and asks again a round trip later (Janus keeps 200 ms).
pub const HISTORY_MIN_AGE: Duration = Duration::from_millis(300);
/// Round trips of the slowest subscriber a packet is kept for: the first NACK and three more tries.
pub const HISTORY_ROUND_TRIPS: u32 = 4;
/// How long the slowest round trip heard stands before a faster one may replace it: browsers report
/// about once a second, so the slowest subscriber still watching speaks again well within this.
pub const ROUND_TRIP_MEMORY: Duration = Duration::from_secs(10);
/// Outgoing packets remembered per downtrack at most: ≈ 2 s of such a video, as `rtc`'s responder
/// kept.
pub const SENT_PACKETS: usize = 256;
/// The fewest slots of a history or a sent log. Both grow with what the track's history keeps —
/// ≈ 50 packets of a 1.4 Mbit/s video at 0.3 s — instead of holding the most from the start: a
/// history's 512 slots and two downtracks' 256 were ≈ 16 KiB of each office participant.
pub const MIN_SLOTS: usize = 64;

/// A kept packet, with the SSRC and sequence number it arrived with.
type Kept<T> = (u32, u16, T);

/// The last packets of one track, by the SSRC and sequence number they arrived with: those of the
/// last [`HISTORY_ROUND_TRIPS`] round trips of its slowest subscriber (between [`HISTORY_MIN_AGE`]
/// and [`HISTORY_AGE`]; [`HISTORY_FIRST_AGE`] until a round trip is known), at most
/// [`HISTORY_PACKETS`]. On a city's network (round trips of 20–80 ms) that is a third of a second of
/// video: memory per published video follows the round trip instead of the worst case.
pub struct History<T> {
    /// A slot holds the packet's handle (the engine keeps an `Rc`: 16 bytes a slot), not the
    /// packet. A power of two from [`MIN_SLOTS`] to [`HISTORY_PACKETS`], grown before three
    /// quarters are taken (but the largest): the kept packets' sequence numbers run on, so they
    /// do not share a slot.
    slots: Box<[Option<Kept<T>>]>,
    /// Which slot each kept packet went to, and when, oldest first: how old ones are let go.
    arrivals: VecDeque<(Instant, u32, u16)>,
    /// The slowest subscriber's round trip heard lately, and when.
    slowest: Option<(Duration, Instant)>,
}

impl<T> Default for History<T> {
    fn default() -> Self {
        History { slots: empty_slots(MIN_SLOTS), arrivals: VecDeque::new(), slowest: None }
    }
}

/// The slot of a sequence number among `n`, a power of two (a mask, not a division, on the
/// forwarding path).
fn slot_of(seq: u16, n: usize) -> usize {
    debug_assert!(n.is_power_of_two());
    usize::from(seq) & (n - 1)
}

fn empty_slots<T>(n: usize) -> Box<[Option<T>]> {
    (0..n).map(|_| None).collect()
}

impl<T> History<T> {
    /// Its slots now: how many packets a downtrack of this track need remember ([`SentLog::record`]).
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    fn slot(&self, seq: u16) -> usize {
        slot_of(seq, self.slots.len())
    }

    /// Moves the kept packets into `n` slots, oldest first (a newer one takes a shared slot).
    fn resize(&mut self, n: usize) {
        let mut old = std::mem::replace(&mut self.slots, empty_slots(n));
        for &(_, ssrc, seq) in &self.arrivals {
            let from = slot_of(seq, old.len());
            if matches!(old[from].as_ref(), Some((s, q, _)) if *s == ssrc && *q == seq) {
                let to = self.slot(seq);
                self.slots[to] = old[from].take();
            }
        }
    }

    /// A subscriber of this track measured `rtt` (from its receiver report). The slowest one heard
    /// within [`ROUND_TRIP_MEMORY`] sets how long packets are kept.
    pub fn round_trip(&mut self, rtt: Duration, now: Instant) {
        match self.slowest {
            Some((slowest, at)) if rtt < slowest && now.saturating_duration_since(at) < ROUND_TRIP_MEMORY => {}
            _ => self.slowest = Some((rtt, now)),
        }
    }

    /// How long a packet is kept now.
    pub fn age(&self) -> Duration {
        match self.slowest {
            Some((rtt, _)) => (rtt * HISTORY_ROUND_TRIPS).clamp(HISTORY_MIN_AGE, HISTORY_AGE),
            None => HISTORY_FIRST_AGE,
        }
    }

    /// Keeps `packet`, replacing whatever had its slot (a sequence number as many slots earlier),
    /// and lets go of what arrived longer than [`History::age`] before `now`.
    pub fn push(&mut self, ssrc: u32, seq: u16, packet: T, now: Instant) {
        let age = self.age();
        while let Some(&(at, old_ssrc, old_seq)) = self.arrivals.front() {
            if now.saturating_duration_since(at) <= age && self.arrivals.len() < HISTORY_PACKETS {
                break;
            }
            self.arrivals.pop_front();
            let at = self.slot(old_seq);
            let slot = &mut self.slots[at];
            if matches!(slot.as_ref(), Some((s, q, _)) if *s == old_ssrc && *q == old_seq) {
                *slot = None;
            }
        }
        // Grown before three quarters are taken, shrunk below a quarter (not back and forth).
        let (kept, n) = (self.arrivals.len() + 1, self.slots.len());
        if kept * 4 > n * 3 && n < HISTORY_PACKETS {
            self.resize(n * 2);
        } else if kept * 4 < n && n > MIN_SLOTS {
            self.resize(n / 2);
        }
        let at = self.slot(seq);
        self.slots[at] = Some((ssrc, seq, packet));
        self.arrivals.push_back((now, ssrc, seq));
    }

    /// The packet with this SSRC and sequence number, if it is still kept.
    pub fn get(&self, ssrc: u32, seq: u16) -> Option<&T> {
        match self.slots[self.slot(seq)].as_ref() {
            Some((s, q, packet)) if *s == ssrc && *q == seq => Some(packet),
            _ => None,
        }
    }
}

/// One packet a downtrack sent: what it was originally, and the timestamp it carried.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sent {
    pub out_seq: u16,
    pub origin_ssrc: u32,
    pub origin_seq: u16,
    pub timestamp: u32,
}

/// What one downtrack sent lately, by outgoing sequence number (16 bytes a packet): as many
/// packets as its track's history has slots, up to [`SENT_PACKETS`] — an older one could not be
/// sent again anyway.
pub struct SentLog {
    slots: Box<[Option<Sent>]>,
}

impl Default for SentLog {
    fn default() -> Self {
        SentLog { slots: vec![None; MIN_SLOTS].into_boxed_slice() }
    }
}

impl SentLog {
    /// Remembers `sent`, first resized to `remember` packets (the track history's
    /// [`History::capacity`]) if it has another size.
    pub fn record(&mut self, sent: Sent, remember: usize) {
        let n = remember.clamp(MIN_SLOTS, SENT_PACKETS).next_power_of_two();
        if n != self.slots.len() {
            // Oldest first (the farthest behind the one being sent): where two share a slot, the
            // one sent last wins, as it would have.
            let mut kept: Vec<Sent> = self.slots.iter().flatten().copied().collect();
            kept.sort_by_key(|s| std::cmp::Reverse(sent.out_seq.wrapping_sub(s.out_seq)));
            self.slots = vec![None; n].into_boxed_slice();
            for s in kept {
                self.slots[slot_of(s.out_seq, n)] = Some(s);
            }
        }
        let at = slot_of(sent.out_seq, n);
        self.slots[at] = Some(sent);
    }

    /// The packet sent with `out_seq`, if it is recent enough to be remembered.
    pub fn find(&self, out_seq: u16) -> Option<Sent> {
        self.slots[slot_of(out_seq, self.slots.len())].filter(|s| s.out_seq == out_seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_history_returns_only_the_packet_asked_for() {
        let now = Instant::now();
        let mut h = History::default();
        for seq in 0..600u16 {
            h.push(7, seq, seq, now);
        }
        assert_eq!(h.get(7, 599), Some(&599));
        assert_eq!(h.get(7, 100), Some(&100), "the last HISTORY_PACKETS are kept");
        assert_eq!(h.get(7, 50), None, "overwritten by 562");
        assert_eq!(h.get(8, 599), None, "another stream's packet in the same slot is not this one");
        // Across the wrap of the 16-bit sequence number.
        h.push(7, 65_535, 1, now);
        h.push(7, 0, 2, now);
        assert_eq!((h.get(7, 65_535), h.get(7, 0)), (Some(&1), Some(&2)));
    }

    #[test]
    fn a_history_lets_go_of_packets_older_than_its_age() {
        let t0 = Instant::now();
        let mut h = History::default();
        // 150 packets a second for two seconds.
        for i in 0..300u16 {
            h.push(7, i, i, t0 + Duration::from_millis(u64::from(i) * 20 / 3));
        }
        let now = t0 + Duration::from_millis(299 * 20 / 3);
        assert_eq!(h.get(7, 299), Some(&299));
        // No round trip known: half a second is kept.
        assert_eq!(h.get(7, 225), Some(&225), "{:?} old: kept", now - (t0 + Duration::from_millis(1500)));
        assert_eq!(h.get(7, 220), None, "older than half a second: let go");
        assert!(h.arrivals.len() <= 76, "{} arrivals remembered", h.arrivals.len());
        assert_eq!(h.slots.iter().flatten().count(), h.arrivals.len(), "one slot per remembered arrival");
    }

    #[test]
    fn a_history_keeps_packets_for_the_slowest_subscribers_round_trips() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut h: History<u16> = History::default();
        assert_eq!(h.age(), HISTORY_FIRST_AGE, "no round trip known yet");
        h.round_trip(ms(20), t0);
        assert_eq!(h.age(), HISTORY_MIN_AGE, "short round trips: the shortest");
        h.round_trip(ms(150), t0 + ms(100));
        assert_eq!(h.age(), ms(600), "the slowest subscriber's four round trips");
        h.round_trip(ms(20), t0 + ms(200));
        assert_eq!(h.age(), ms(600), "a faster subscriber does not shorten it");
        h.round_trip(ms(400), t0 + ms(300));
        assert_eq!(h.age(), HISTORY_AGE, "never longer than the longest");
        // The slow subscriber went quiet (left): after a while the fast one's round trip stands.
        h.round_trip(ms(20), t0 + ms(300) + ROUND_TRIP_MEMORY);
        assert_eq!(h.age(), HISTORY_MIN_AGE);

        // 150 packets a second for two seconds, with a 20 ms round trip known: 0.3 s are kept.
        for i in 0..300u16 {
            h.push(7, i, i, t0 + ROUND_TRIP_MEMORY + ms(u64::from(i) * 20 / 3));
        }
        assert_eq!(h.get(7, 299), Some(&299));
        assert_eq!(h.get(7, 255), Some(&255), "0.29 s old: kept");
        assert_eq!(h.get(7, 250), None, "older than 0.3 s: let go");
    }

    #[test]
    fn a_sent_log_maps_outgoing_numbers_back_while_it_remembers_them() {
        let mut log = SentLog::default();
        let sent =
            |out_seq: u16| Sent { out_seq, origin_ssrc: 42, origin_seq: out_seq.wrapping_add(1000), timestamp: 9 };
        for out in 65_400u16..=65_535 {
            log.record(sent(out), SENT_PACKETS);
        }
        for out in 0..200u16 {
            log.record(sent(out), SENT_PACKETS);
        }
        assert_eq!(log.find(199), Some(sent(199)));
        assert_eq!(log.find(65_535).map(|s| s.origin_seq), Some(999), "across the wrap");
        assert_eq!(log.find(65_400), None, "older than SENT_PACKETS");
        assert_eq!(log.find(300), None, "never sent");

        // Its track keeps fewer packets now: the last 64 sent are still found, across the wrap.
        let mut log = SentLog::default();
        for out in 65_300u16..=65_535 {
            log.record(sent(out), SENT_PACKETS);
        }
        log.record(sent(0), MIN_SLOTS);
        assert_eq!(log.slots.len(), MIN_SLOTS);
        assert_eq!(log.find(0), Some(sent(0)));
        assert_eq!(log.find(65_473).map(|s| s.origin_seq), Some(65_473u16.wrapping_add(1000)), "63 before the last");
        assert_eq!(log.find(65_472), None, "its slot went to the one sent 64 later");
    }

    #[test]
    fn a_history_has_as_many_slots_as_it_keeps_packets_for() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut h: History<u16> = History::default();
        assert_eq!(h.capacity(), MIN_SLOTS);
        // 164 packets a second, no round trip known: half a second kept, ≈ 82 packets.
        let at = |i: u16| t0 + Duration::from_micros(u64::from(i) * 1_000_000 / 164);
        for i in 0..400u16 {
            h.push(7, i, i, at(i));
        }
        assert_eq!(h.capacity(), 128, "{} kept", h.arrivals.len());
        assert!((300..400).all(|i| i < 318 || h.get(7, i) == Some(&i)), "the last half second is all there");
        // A 20 ms round trip: 0.3 s kept, ≈ 50 packets; still more than a quarter of 128.
        h.round_trip(ms(20), at(400));
        for i in 400..800u16 {
            h.push(7, i, i, at(i));
        }
        assert_eq!(h.capacity(), 128);
        assert_eq!(h.get(7, 799), Some(&799));
        assert_eq!(h.get(7, 752), Some(&752), "0.29 s old: kept");
        // A slow subscriber (250 ms: a second kept, 164 packets): it grows, and keeps them all.
        h.round_trip(ms(250), at(800));
        for i in 800..1400u16 {
            h.push(7, i, i, at(i));
        }
        assert_eq!(h.capacity(), 256);
        assert!((1240..1400).all(|i| h.get(7, i) == Some(&i)), "the last second is all there");
        // It leaves: after a while a short round trip stands again, and the slots shrink back.
        h.round_trip(ms(20), at(1400) + ROUND_TRIP_MEMORY);
        for i in 1400..3400u16 {
            h.push(7, i, i, at(i) + ROUND_TRIP_MEMORY);
        }
        assert_eq!(h.capacity(), 128);
        assert_eq!(h.get(7, 3399), Some(&3399));
        assert_eq!(h.slots.iter().flatten().count(), h.arrivals.len(), "one slot per remembered arrival");
    }
}
