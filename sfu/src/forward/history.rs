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
/// How long a packet is kept. A retransmission later than this reaches a browser whose jitter
/// buffer has long given the packet up (libwebrtc keeps its own send history for about as long,
/// or three round trips); keeping 4 s of every published video cost ≈ 600 KiB per publisher.
pub const HISTORY_AGE: Duration = Duration::from_secs(1);
/// Outgoing packets remembered per downtrack: ≈ 2 s of such a video, as `rtc`'s responder kept.
pub const SENT_PACKETS: usize = 256;

/// The last packets of one track, by the SSRC and sequence number they arrived with: those of the
/// last [`HISTORY_AGE`], at most [`HISTORY_PACKETS`].
/// A kept packet, with the SSRC and sequence number it arrived with.
type Kept<T> = Box<(u32, u16, T)>;

pub struct History<T> {
    /// Boxed: a slot costs a pointer, not a packet, so a track keeping 1 s of a video (≈ 150
    /// packets) does not hold 512 packets' room (≈ 60 KiB per published video).
    slots: Box<[Option<Kept<T>>]>,
    /// Which slot each kept packet went to, and when, oldest first: how old ones are let go.
    arrivals: VecDeque<(Instant, u32, u16)>,
}

impl<T> Default for History<T> {
    fn default() -> Self {
        History { slots: (0..HISTORY_PACKETS).map(|_| None).collect(), arrivals: VecDeque::new() }
    }
}

impl<T> History<T> {
    /// Keeps `packet`, replacing whatever arrived `HISTORY_PACKETS` sequence numbers earlier, and
    /// lets go of what arrived more than [`HISTORY_AGE`] before `now`.
    pub fn push(&mut self, ssrc: u32, seq: u16, packet: T, now: Instant) {
        while let Some(&(at, old_ssrc, old_seq)) = self.arrivals.front() {
            if now.saturating_duration_since(at) <= HISTORY_AGE && self.arrivals.len() < HISTORY_PACKETS {
                break;
            }
            self.arrivals.pop_front();
            let slot = &mut self.slots[usize::from(old_seq) % HISTORY_PACKETS];
            if matches!(slot.as_deref(), Some((s, q, _)) if *s == old_ssrc && *q == old_seq) {
                *slot = None;
            }
        }
        self.slots[usize::from(seq) % HISTORY_PACKETS] = Some(Box::new((ssrc, seq, packet)));
        self.arrivals.push_back((now, ssrc, seq));
    }

    /// The packet with this SSRC and sequence number, if it is still kept.
    pub fn get(&self, ssrc: u32, seq: u16) -> Option<&T> {
        match self.slots[usize::from(seq) % HISTORY_PACKETS].as_deref() {
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

/// What one downtrack sent lately, by outgoing sequence number (16 bytes a packet).
pub struct SentLog {
    slots: Box<[Option<Sent>]>,
}

impl Default for SentLog {
    fn default() -> Self {
        SentLog { slots: vec![None; SENT_PACKETS].into_boxed_slice() }
    }
}

impl SentLog {
    pub fn record(&mut self, sent: Sent) {
        self.slots[usize::from(sent.out_seq) % SENT_PACKETS] = Some(sent);
    }

    /// The packet sent with `out_seq`, if it is recent enough to be remembered.
    pub fn find(&self, out_seq: u16) -> Option<Sent> {
        self.slots[usize::from(out_seq) % SENT_PACKETS].filter(|s| s.out_seq == out_seq)
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
        assert_eq!(h.get(7, 150), Some(&150), "{:?} old: kept", now - (t0 + Duration::from_millis(1000)));
        assert_eq!(h.get(7, 140), None, "older than a second: let go");
        assert!(h.arrivals.len() <= 151, "{} arrivals remembered", h.arrivals.len());
        assert_eq!(h.slots.iter().flatten().count(), h.arrivals.len(), "one slot per remembered arrival");
    }

    #[test]
    fn a_sent_log_maps_outgoing_numbers_back_while_it_remembers_them() {
        let mut log = SentLog::default();
        let sent =
            |out_seq: u16| Sent { out_seq, origin_ssrc: 42, origin_seq: out_seq.wrapping_add(1000), timestamp: 9 };
        for out in 65_400u16..=65_535 {
            log.record(sent(out));
        }
        for out in 0..200u16 {
            log.record(sent(out));
        }
        assert_eq!(log.find(199), Some(sent(199)));
        assert_eq!(log.find(65_535).map(|s| s.origin_seq), Some(999), "across the wrap");
        assert_eq!(log.find(65_400), None, "older than SENT_PACKETS");
        assert_eq!(log.find(300), None, "never sent");
    }
}
