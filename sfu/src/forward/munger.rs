//! The RTP munger: one subscriber's rewriting of one track (a "downtrack"), so the receiver sees a
//! single continuous stream — its own SSRC, contiguous sequence numbers, monotonic timestamps — even
//! when the upstream source is replaced (new SSRC after a publisher reconnects), paused and resumed,
//! or when the SFU deliberately drops packets (waiting for a keyframe).
//!
//! Internally every number is extended to 64 bits (`i64`), so u16 sequence and u32 timestamp
//! wraparound only happens when a value is truncated on the way out.
//!
//! Mapping of one source: `out_seq = in_seq + seq_offset - skipped_below(in_seq)` and
//! `out_ts = in_ts + ts_offset`. A switch (new source, [`RtpMunger::pause`], or a numbering jump)
//! re-anchors both offsets so that the first packet of the new segment gets the next sequence number
//! and a timestamp advanced by the wall-clock time since the last forwarded packet.

use std::time::{Duration, Instant};

/// Packets further behind the newest one than this cannot be placed (they are dropped); also the
/// span of the duplicate filter. A power of two so the filter is a plain bit ring.
const WINDOW: i64 = 1024;
const WINDOW_WORDS: usize = WINDOW as usize / 64;
/// Distinct runs of skipped packets remembered for placing late packets; beyond that the oldest
/// information is folded away and packets older than it are dropped.
const MAX_SKIP_RANGES: usize = 16;
/// In-order packets behind the window that make us believe the source restarted its numbering
/// (instead of being hopelessly late): a same-SSRC restart must not silence the stream forever.
const STALE_RESTART: u32 = 8;
/// How long after a switch packets of the replaced source are stragglers (dropped) rather than a
/// switch back, which would otherwise flip-flop the stream.
pub const STRAGGLER_WINDOW: Duration = Duration::from_secs(2);

/// Rewrites one upstream track for one subscriber. See the module documentation.
#[derive(Debug, Clone)]
pub struct RtpMunger {
    out_ssrc: u32,
    clock_rate: u32,
    /// First outgoing numbers, derived from `out_ssrc` (see [`RtpMunger::new`]).
    initial_seq: i64,
    initial_ts: i64,
    source: Option<Source>,
    /// The source replaced by the last switch, and when: its stragglers are dropped.
    replaced: Option<(u32, Instant)>,
    /// The forwarded packet with the highest outgoing sequence number: the next switch continues it.
    last: Option<LastOut>,
    /// Set by [`RtpMunger::pause`]: the next packet re-anchors even from the same source.
    reanchor: bool,
    /// Set by [`RtpMunger::resync`]: the next new packet of the current source takes the next
    /// outgoing sequence number, whatever was missed before it.
    resync: bool,
}

#[derive(Debug, Clone, Copy)]
struct LastOut {
    seq: i64,
    ts: i64,
    at: Instant,
}

/// The current upstream source and its mapping.
#[derive(Debug, Clone)]
struct Source {
    ssrc: u32,
    /// Newest extended sequence number seen (forwarded or skipped): the reference for extending.
    highest: i64,
    /// Newest extended sequence number forwarded: skips at or below it cannot be hidden any more.
    highest_forwarded: i64,
    /// Extended timestamp of the packet `highest_forwarded`: the reference for extending timestamps.
    ref_ts: i64,
    /// Packets below this are dropped (before the switch point, or placement info forgotten).
    floor: i64,
    seq_offset: i64,
    ts_offset: i64,
    /// Which of the last `WINDOW` sequence numbers were seen (bit `seq mod WINDOW`).
    seen: [u64; WINDOW_WORDS],
    skips: SkipRanges,
    /// Run of in-order packets behind the window: `(next expected raw seq, run length)`.
    stale: (u16, u32),
}

impl RtpMunger {
    /// `out_ssrc` is this downtrack's own SSRC. The first outgoing sequence number and timestamp are
    /// derived from it by a fixed bit mixer (low 16 bits → seq, high 32 bits → timestamp): they look
    /// random to the receiver as RFC 3550 asks, yet tests are reproducible and no RNG is needed here.
    pub fn new(out_ssrc: u32, clock_rate: u32) -> Self {
        let mixed = mix64(u64::from(out_ssrc));
        RtpMunger {
            out_ssrc,
            clock_rate,
            initial_seq: i64::from(mixed as u16),
            initial_ts: i64::from((mixed >> 32) as u32),
            source: None,
            replaced: None,
            last: None,
            reanchor: false,
            resync: false,
        }
    }

    pub fn out_ssrc(&self) -> u32 {
        self.out_ssrc
    }

    pub fn clock_rate(&self) -> u32 {
        self.clock_rate
    }

    /// Forgets the source replaced by the last switch, so it may come back at once (a program feed
    /// switching back to a speaker is a decision, not a straggler).
    pub fn forget_replaced(&mut self) {
        self.replaced = None;
    }

    /// Rewrites one upstream packet: the outgoing `(seq, timestamp)`, or `None` to drop it (a
    /// duplicate, older than the newest by `WINDOW` or more, older than the current source's switch
    /// point, or a straggler of a replaced source).
    pub fn rewrite(&mut self, ssrc: u32, seq: u16, timestamp: u32, now: Instant) -> Option<(u16, u32)> {
        let Some(src) = self.source.as_mut() else {
            return Some(self.anchor(ssrc, seq, timestamp, now));
        };
        if self.reanchor {
            return Some(self.anchor(ssrc, seq, timestamp, now));
        }
        if src.ssrc != ssrc {
            let straggler = self
                .replaced
                .is_some_and(|(old, at)| old == ssrc && now.saturating_duration_since(at) < STRAGGLER_WINDOW);
            if straggler {
                return None;
            }
            return Some(self.anchor(ssrc, seq, timestamp, now));
        }

        let s = extend_seq(src.highest, seq);
        let ahead = s - src.highest;
        if ahead > WINDOW {
            // The numbering jumped (long upstream outage or a restart): hide it rather than show the
            // receiver a gap of thousands of packets it would try to NACK.
            return Some(self.anchor(ssrc, seq, timestamp, now));
        }
        if ahead <= -WINDOW {
            let (next, run) = src.stale;
            let run = if run > 0 && seq == next { run + 1 } else { 1 };
            src.stale = (seq.wrapping_add(1), run);
            if run >= STALE_RESTART {
                return Some(self.anchor(ssrc, seq, timestamp, now));
            }
            return None;
        }
        src.stale = (0, 0);
        if s < src.floor {
            return None;
        }
        if ahead > 0 {
            src.advance_to(s);
        } else if src.was_seen(s) {
            return None;
        }
        src.mark_seen(s);
        if self.resync && s > src.highest_forwarded {
            let next = self.last.map_or(self.initial_seq, |last| last.seq + 1);
            src.seq_offset = next - s;
            src.skips = SkipRanges::default();
            src.floor = s;
        }
        self.resync = false;

        let in_ts = extend_ts(src.ref_ts, timestamp);
        let out_seq = s + src.seq_offset - src.skips.skipped_below(s);
        let out_ts = in_ts + src.ts_offset;
        if s > src.highest_forwarded {
            src.highest_forwarded = s;
            src.ref_ts = in_ts;
        }
        if self.last.is_none_or(|last| out_seq > last.seq) {
            self.last = Some(LastOut { seq: out_seq, ts: out_ts, at: now });
        }
        Some((out_seq as u16, out_ts as u32))
    }

    /// The SFU intentionally dropped this packet: later packets shift down by one so the receiver
    /// sees no gap and does not NACK it. Only packets newer than the last forwarded one of the
    /// current source can be hidden (older ones already have numbers after them); others are ignored,
    /// as are skips of a source not yet forwarded (its first forwarded packet re-anchors anyway).
    pub fn skip(&mut self, ssrc: u32, seq: u16) {
        if self.reanchor {
            return;
        }
        let Some(src) = self.source.as_mut() else {
            return;
        };
        if src.ssrc != ssrc {
            return;
        }
        let s = extend_seq(src.highest, seq);
        let ahead = s - src.highest;
        if s <= src.highest_forwarded || s < src.floor || ahead > WINDOW || ahead <= -WINDOW {
            return;
        }
        if ahead > 0 {
            src.advance_to(s);
        } else if src.was_seen(s) {
            return;
        }
        src.mark_seen(s);
        let oldest_placeable = src.highest - WINDOW + 1;
        if let Some(raised) = src.skips.insert(s, oldest_placeable) {
            src.floor = src.floor.max(raised);
        }
    }

    /// The downtrack stopped forwarding for a while without skipping (e.g. it was paused): the next
    /// packet, whatever its source, continues the outgoing stream as after a source switch.
    pub fn pause(&mut self) {
        self.reanchor = true;
    }

    /// The next new packet of the current source continues the outgoing sequence exactly (last
    /// forwarded + 1), hiding every packet missed before it — skipped or lost upstream — and packets
    /// older than it are dropped from then on. Its timestamp keeps the source's timing (unlike
    /// [`RtpMunger::pause`]). Called when a video downtrack resumes at a keyframe: nothing before
    /// it can be decoded, so a gap would only draw useless NACKs.
    pub fn resync(&mut self) {
        self.resync = true;
    }

    /// Maps an upstream RTP timestamp of the current source to the outgoing one (for rewriting the
    /// RTP time of Sender Reports, which keeps lip sync). `None` before the source's first packet or
    /// while a re-anchor is pending.
    pub fn translate_timestamp(&self, ssrc: u32, timestamp: u32) -> Option<u32> {
        let src = self.source.as_ref().filter(|s| s.ssrc == ssrc && !self.reanchor)?;
        Some((extend_ts(src.ref_ts, timestamp) + src.ts_offset) as u32)
    }

    /// Starts a new segment at this packet: next outgoing seq, timestamp advanced by wall time.
    fn anchor(&mut self, ssrc: u32, seq: u16, timestamp: u32, now: Instant) -> (u16, u32) {
        let (out_seq, out_ts) = match self.last {
            None => (self.initial_seq, self.initial_ts),
            Some(last) => (last.seq + 1, last.ts + self.ticks(now.saturating_duration_since(last.at))),
        };
        match &self.source {
            Some(old) if old.ssrc != ssrc => self.replaced = Some((old.ssrc, now)),
            _ => {}
        }
        let s = i64::from(seq);
        let t = i64::from(timestamp);
        let mut src = Source {
            ssrc,
            highest: s,
            highest_forwarded: s,
            ref_ts: t,
            floor: s,
            seq_offset: out_seq - s,
            ts_offset: out_ts - t,
            seen: [0; WINDOW_WORDS],
            skips: SkipRanges::default(),
            stale: (0, 0),
        };
        src.mark_seen(s);
        self.source = Some(src);
        self.last = Some(LastOut { seq: out_seq, ts: out_ts, at: now });
        self.reanchor = false;
        self.resync = false;
        (out_seq as u16, out_ts as u32)
    }

    /// Clock ticks for a wall-clock gap: at least 1 so timestamps strictly advance across a switch,
    /// at most 2^31-1 so the extended value stays unambiguous to the receiver.
    fn ticks(&self, elapsed: Duration) -> i64 {
        let ticks = elapsed.as_nanos() * u128::from(self.clock_rate) / 1_000_000_000;
        ticks.clamp(1, i32::MAX as u128) as i64
    }
}

impl Source {
    fn was_seen(&self, s: i64) -> bool {
        let (word, bit) = seen_bit(s);
        self.seen[word] & bit != 0
    }

    fn mark_seen(&mut self, s: i64) {
        let (word, bit) = seen_bit(s);
        self.seen[word] |= bit;
    }

    /// Moves the newest seen number to `s`, forgetting the slots it slides past.
    fn advance_to(&mut self, s: i64) {
        if s - self.highest >= WINDOW {
            self.seen = [0; WINDOW_WORDS];
        } else {
            for x in self.highest + 1..=s {
                let (word, bit) = seen_bit(x);
                self.seen[word] &= !bit;
            }
        }
        self.highest = s;
    }
}

/// Sorted, disjoint, half-open runs `[start, end)` of skipped extended sequence numbers, in a
/// fixed array so the hot path never allocates.
#[derive(Debug, Clone, Default)]
struct SkipRanges {
    ranges: [(i64, i64); MAX_SKIP_RANGES],
    len: usize,
    /// Skips no longer listed; every placeable packet is above them.
    folded: i64,
    /// All skips: `folded` plus the listed runs.
    total: i64,
}

impl SkipRanges {
    /// How many skipped numbers lie below `s`, i.e. how far `s` shifts down.
    fn skipped_below(&self, s: i64) -> i64 {
        let listed = &self.ranges[..self.len];
        match listed.last() {
            Some(&(_, end)) if s < end => {
                self.folded + listed.iter().take_while(|r| r.1 <= s).map(|r| r.1 - r.0).sum::<i64>()
            }
            _ => self.total,
        }
    }

    /// Records a skip of `s` (not already recorded). Runs ending at or below `oldest_placeable`
    /// are folded first. Returns a new floor when placement information had to be dropped.
    fn insert(&mut self, s: i64, oldest_placeable: i64) -> Option<i64> {
        let stale = self.ranges[..self.len].iter().take_while(|r| r.1 <= oldest_placeable).count();
        for i in 0..stale {
            self.folded += self.ranges[i].1 - self.ranges[i].0;
        }
        self.remove_front(stale);
        self.total += 1;

        let i = self.ranges[..self.len].partition_point(|r| r.0 <= s);
        let joins_prev = i > 0 && self.ranges[i - 1].1 == s;
        let joins_next = i < self.len && self.ranges[i].0 == s + 1;
        match (joins_prev, joins_next) {
            (true, true) => {
                self.ranges[i - 1].1 = self.ranges[i].1;
                self.ranges.copy_within(i + 1..self.len, i);
                self.len -= 1;
                None
            }
            (true, false) => {
                self.ranges[i - 1].1 += 1;
                None
            }
            (false, true) => {
                self.ranges[i].0 = s;
                None
            }
            (false, false) if self.len < MAX_SKIP_RANGES => {
                self.ranges.copy_within(i..self.len, i + 1);
                self.ranges[i] = (s, s + 1);
                self.len += 1;
                None
            }
            (false, false) if i == 0 => {
                // Full, and `s` is older than every listed run: fold it alone.
                self.folded += 1;
                Some(s + 1)
            }
            (false, false) => {
                // Full: forget the oldest run; packets below its end can no longer be placed.
                let (start, end) = self.ranges[0];
                self.folded += end - start;
                self.remove_front(1);
                let i = i - 1;
                self.ranges.copy_within(i..self.len, i + 1);
                self.ranges[i] = (s, s + 1);
                self.len += 1;
                Some(end)
            }
        }
    }

    fn remove_front(&mut self, n: usize) {
        if n > 0 {
            self.ranges.copy_within(n..self.len, 0);
            self.len -= n;
        }
    }
}

/// Extends a 16-bit sequence number to the value nearest to `reference`.
fn extend_seq(reference: i64, seq: u16) -> i64 {
    reference + i64::from(seq.wrapping_sub(reference as u16) as i16)
}

/// Extends a 32-bit timestamp to the value nearest to `reference`.
fn extend_ts(reference: i64, ts: u32) -> i64 {
    reference + i64::from(ts.wrapping_sub(reference as u32) as i32)
}

fn seen_bit(s: i64) -> (usize, u64) {
    let slot = s.rem_euclid(WINDOW) as usize;
    (slot / 64, 1 << (slot % 64))
}

/// splitmix64's finaliser: a fixed bijection that scatters nearby SSRCs far apart.
fn mix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLOCK: u32 = 90_000;
    const FRAME: u32 = 3_000; // 30 fps at 90 kHz
    const A: u32 = 0xaaaa_0001;
    const B: u32 = 0xbbbb_0002;

    fn t0() -> Instant {
        Instant::now()
    }

    fn ms(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    /// Feeds `count` in-order packets (one per 33 ms frame) and returns the outputs.
    fn feed(m: &mut RtpMunger, ssrc: u32, seq0: u16, ts0: u32, count: u16, start: Instant) -> Vec<(u16, u32)> {
        (0..count)
            .map(|i| {
                let now = start + Duration::from_millis(33 * u64::from(i));
                m.rewrite(ssrc, seq0.wrapping_add(i), ts0.wrapping_add(FRAME * u32::from(i)), now)
                    .expect("in-order packet is forwarded")
            })
            .collect()
    }

    fn assert_contiguous(out: &[(u16, u32)]) {
        for w in out.windows(2) {
            assert_eq!(w[1].0, w[0].0.wrapping_add(1), "gap between {:?} and {:?}", w[0], w[1]);
        }
    }

    fn assert_ts_increasing(out: &[(u16, u32)]) {
        for w in out.windows(2) {
            let delta = w[1].1.wrapping_sub(w[0].1) as i32;
            assert!(delta > 0, "timestamp went back between {:?} and {:?}", w[0], w[1]);
        }
    }

    #[test]
    fn first_packet_starts_at_numbers_derived_from_the_out_ssrc() {
        let t0 = t0();
        let first = |out_ssrc| RtpMunger::new(out_ssrc, CLOCK).rewrite(A, 500, 1_000, t0);
        assert_eq!(first(1), first(1), "deterministic");
        assert_ne!(first(1), first(2), "different downtracks start elsewhere");
        assert_ne!(first(1), Some((500, 1_000)), "upstream numbers are not leaked");
        let m = RtpMunger::new(7, CLOCK);
        assert_eq!(m.out_ssrc(), 7);
        assert_eq!(m.clock_rate(), CLOCK);
    }

    #[test]
    fn in_order_packets_keep_their_spacing() {
        let t0 = t0();
        let mut m = RtpMunger::new(1, CLOCK);
        let out = feed(&mut m, A, 100, 50_000, 50, t0);
        assert_contiguous(&out);
        for w in out.windows(2) {
            assert_eq!(w[1].1.wrapping_sub(w[0].1), FRAME);
        }
    }

    #[test]
    fn packets_of_one_frame_share_the_outgoing_timestamp() {
        let t0 = t0();
        let mut m = RtpMunger::new(1, CLOCK);
        let a = m.rewrite(A, 10, 9_000, t0).unwrap();
        let b = m.rewrite(A, 11, 9_000, t0).unwrap();
        assert_eq!(a.1, b.1);
        assert_eq!(b.0, a.0.wrapping_add(1));
    }

    #[test]
    fn replaced_source_continues_the_sequence_and_advances_time_by_the_wall_clock() {
        let t0 = t0();
        let mut m = RtpMunger::new(1, CLOCK);
        let before = feed(&mut m, A, 40_000, 123, 10, t0);
        let last = *before.last().unwrap();
        // The new source (reconnected publisher) starts anywhere; 200 ms after A's last packet.
        let switch_at = t0 + Duration::from_millis(33 * 9 + 200);
        let after = feed(&mut m, B, 7, 4_000_000_000, 10, switch_at);
        assert_eq!(after[0].0, last.0.wrapping_add(1));
        assert_eq!(after[0].1.wrapping_sub(last.1), 200 * 90, "200 ms at 90 kHz");
        let all: Vec<_> = before.into_iter().chain(after).collect();
        assert_contiguous(&all);
        assert_ts_increasing(&all);
    }

    #[test]
    fn paused_downtrack_resumes_with_a_timestamp_five_seconds_later() {
        let t0 = t0();
        let mut m = RtpMunger::new(1, CLOCK);
        let before = feed(&mut m, A, 1, 0, 3, t0);
        m.pause();
        // Same source, its numbers moved on arbitrarily while the downtrack was paused.
        let resume = ms(t0, 66 + 5_000);
        let first = m.rewrite(A, 9_000, 77_777, resume).unwrap();
        assert_eq!(first.0, before[2].0.wrapping_add(1));
        assert_eq!(first.1.wrapping_sub(before[2].1), 5 * CLOCK);
        let next = m.rewrite(A, 9_001, 77_777 + FRAME, ms(resume, 33)).unwrap();
        assert_eq!(next, (first.0.wrapping_add(1), first.1.wrapping_add(FRAME)));
    }

    #[test]
    fn silent_gap_of_the_same_source_keeps_the_source_timing() {
        let t0 = t0();
        let mut m = RtpMunger::new(1, CLOCK);
        let a = m.rewrite(A, 1, 0, t0).unwrap();
        // Audio DTX: the sender stopped for 5 s, its own clock advanced 5 s, its seq did not skip.
        let b = m.rewrite(A, 2, 5 * 48_000, ms(t0, 5_000)).unwrap();
        assert_eq!(b.0, a.0.wrapping_add(1));
        assert_eq!(b.1.wrapping_sub(a.1), 5 * 48_000);
    }

    #[test]
    fn switch_with_no_wall_time_elapsed_still_advances_the_timestamp() {
        let t0 = t0();
        let mut m = RtpMunger::new(1, CLOCK);
        let a = m.rewrite(A, 1, 0, t0).unwrap();
        let b = m.rewrite(B, 1, 0, t0).unwrap();
        assert_eq!(b.1.wrapping_sub(a.1), 1);
    }

    #[test]
    fn upstream_sequence_and_timestamp_wraparound_is_invisible() {
        let t0 = t0();
        let mut m = RtpMunger::new(1, CLOCK);
        let out = feed(&mut m, A, 65_530, u32::MAX - 2 * FRAME, 20, t0);
        assert_contiguous(&out);
        for w in out.windows(2) {
            assert_eq!(w[1].1.wrapping_sub(w[0].1), FRAME);
        }
        // A late packet from before the wrap still lands before the wrap.
        let mut m = RtpMunger::new(1, CLOCK);
        let a = m.rewrite(A, 65_534, u32::MAX - 10, t0).unwrap();
        let c = m.rewrite(A, 0, 5, t0).unwrap();
        let b = m.rewrite(A, 65_535, u32::MAX - 10, t0).unwrap();
        assert_eq!(b.0, a.0.wrapping_add(1));
        assert_eq!(c.0, a.0.wrapping_add(2));
        assert_eq!(c.1.wrapping_sub(a.1), 16);
    }

    #[test]
    fn outgoing_numbers_wrap_over_a_long_stream() {
        let t0 = t0();
        let mut m = RtpMunger::new(1, CLOCK);
        let mut out = Vec::new();
        for i in 0..70_000u32 {
            let now = t0 + Duration::from_millis(u64::from(i));
            out.push(m.rewrite(A, i as u16, i.wrapping_mul(100_000), now).unwrap());
        }
        assert_contiguous(&out);
        // 100k ticks per step: the u32 timestamp wraps about every 43k packets, the deltas stay.
        for w in out.windows(2) {
            assert_eq!(w[1].1.wrapping_sub(w[0].1), 100_000);
        }
    }

    #[test]
    fn reordered_packet_gets_its_proper_earlier_number() {
        let t0 = t0();
        let mut m = RtpMunger::new(1, CLOCK);
        let p10 = m.rewrite(A, 10, 1_000, t0).unwrap();
        let p12 = m.rewrite(A, 12, 7_000, t0).unwrap();
        let p11 = m.rewrite(A, 11, 4_000, t0).unwrap();
        assert_eq!(p11.0, p10.0.wrapping_add(1));
        assert_eq!(p12.0, p10.0.wrapping_add(2));
        assert_eq!(p11.1.wrapping_sub(p10.1), 3_000);
        // The late packet did not move the reference: the next one continues after 12.
        let p13 = m.rewrite(A, 13, 10_000, t0).unwrap();
        assert_eq!(p13, (p12.0.wrapping_add(1), p12.1.wrapping_add(3_000)));
    }

    #[test]
    fn duplicates_are_dropped_whether_newest_or_late() {
        let t0 = t0();
        let mut m = RtpMunger::new(1, CLOCK);
        assert!(m.rewrite(A, 10, 0, t0).is_some());
        assert!(m.rewrite(A, 11, 0, t0).is_some());
        assert_eq!(m.rewrite(A, 11, 0, t0), None);
        assert_eq!(m.rewrite(A, 10, 0, t0), None);
        assert!(m.rewrite(A, 12, 0, t0).is_some());
    }

    #[test]
    fn packets_too_old_to_place_are_dropped() {
        let t0 = t0();
        let mut m = RtpMunger::new(1, CLOCK);
        m.rewrite(A, 0, 0, t0).unwrap();
        for seq in (1..=1_100).step_by(50) {
            m.rewrite(A, seq, 0, t0).unwrap();
        }
        m.rewrite(A, 1_100, 0, t0);
        assert_eq!(m.rewrite(A, 2, 0, t0), None, "1098 behind the newest");
        assert!(m.rewrite(A, 200, 0, t0).is_some(), "900 behind is still placeable");
    }

    #[test]
    fn packets_older_than_the_switch_point_are_dropped() {
        let t0 = t0();
        let mut m = RtpMunger::new(1, CLOCK);
        m.rewrite(A, 1, 0, t0).unwrap();
        m.rewrite(B, 500, 0, t0).unwrap();
        assert_eq!(m.rewrite(B, 499, 0, t0), None);
        assert!(m.rewrite(B, 501, 0, t0).is_some());
    }

    #[test]
    fn stragglers_of_a_replaced_source_are_dropped_then_it_may_return() {
        let t0 = t0();
        let mut m = RtpMunger::new(1, CLOCK);
        m.rewrite(A, 1, 0, t0).unwrap();
        let b = m.rewrite(B, 1, 0, ms(t0, 10)).unwrap();
        assert_eq!(m.rewrite(A, 2, 0, ms(t0, 20)), None);
        let b2 = m.rewrite(B, 2, 0, ms(t0, 30)).unwrap();
        assert_eq!(b2.0, b.0.wrapping_add(1));
        let back = m.rewrite(A, 3, 0, ms(t0, 3_000)).unwrap();
        assert_eq!(back.0, b2.0.wrapping_add(1), "a returning source continues the stream");
    }

    #[test]
    fn skipped_packets_leave_no_gap() {
        let t0 = t0();
        let mut m = RtpMunger::new(1, CLOCK);
        let mut out = vec![m.rewrite(A, 100, 0, t0).unwrap()];
        for seq in 101..110 {
            m.skip(A, seq);
        }
        out.push(m.rewrite(A, 110, 30_000, t0).unwrap());
        out.push(m.rewrite(A, 111, 33_000, t0).unwrap());
        assert_contiguous(&out);
        assert_eq!(out[1].1.wrapping_sub(out[0].1), 30_000, "timestamps keep the source timing");
    }

    #[test]
    fn skip_then_late_reordered_packet_is_placed_before_the_skip() {
        let t0 = t0();
        let mut m = RtpMunger::new(1, CLOCK);
        let p10 = m.rewrite(A, 10, 0, t0).unwrap();
        m.skip(A, 12); // 11 not arrived yet
        let p13 = m.rewrite(A, 13, 0, t0).unwrap();
        let p11 = m.rewrite(A, 11, 0, t0).unwrap();
        assert_eq!(p11.0, p10.0.wrapping_add(1));
        assert_eq!(p13.0, p10.0.wrapping_add(2));
        assert_eq!(m.rewrite(A, 12, 0, t0), None, "a skipped packet arriving again is a duplicate");
        let p14 = m.rewrite(A, 14, 0, t0).unwrap();
        assert_eq!(p14.0, p13.0.wrapping_add(1));
    }

    #[test]
    fn late_skip_of_a_packet_older_than_the_last_forwarded_is_ignored() {
        let t0 = t0();
        let mut m = RtpMunger::new(1, CLOCK);
        let p10 = m.rewrite(A, 10, 0, t0).unwrap();
        let p12 = m.rewrite(A, 12, 0, t0).unwrap();
        m.skip(A, 11); // too late to hide: 12 already has its number
        let p13 = m.rewrite(A, 13, 0, t0).unwrap();
        assert_eq!(p12.0, p10.0.wrapping_add(2));
        assert_eq!(p13.0, p12.0.wrapping_add(1));
    }

    #[test]
    fn skips_before_any_forwarded_packet_are_harmless() {
        let t0 = t0();
        let mut m = RtpMunger::new(1, CLOCK);
        m.skip(A, 1);
        let first = m.rewrite(A, 2, 0, t0);
        assert_eq!(first, RtpMunger::new(1, CLOCK).rewrite(A, 2, 0, t0));
    }

    #[test]
    fn many_separate_skip_runs_still_leave_no_gap_for_new_packets() {
        let t0 = t0();
        let mut m = RtpMunger::new(1, CLOCK);
        let mut out = vec![m.rewrite(A, 0, 0, t0).unwrap()];
        // Skip every even packet, forward every odd one: far more runs than are remembered.
        for seq in 1..200u16 {
            if seq % 2 == 0 {
                m.skip(A, seq);
            } else {
                out.push(m.rewrite(A, seq, 0, t0).unwrap());
            }
        }
        assert_contiguous(&out);
    }

    #[test]
    fn forgotten_skip_runs_make_older_late_packets_unplaceable() {
        let t0 = t0();
        let mut m = RtpMunger::new(1, CLOCK);
        m.rewrite(A, 0, 0, t0).unwrap();
        // 21 separate runs with holes (lost packets) at odd numbers, while waiting for a keyframe.
        for seq in (2..=42u16).step_by(2) {
            m.skip(A, seq);
        }
        assert_eq!(m.rewrite(A, 1, 0, t0), None, "its placement was forgotten");
        let p41 = m.rewrite(A, 41, 0, t0).unwrap();
        let p43 = m.rewrite(A, 43, 0, t0).unwrap();
        assert_eq!(p43.0, p41.0.wrapping_add(1), "42 was skipped");
    }

    #[test]
    fn numbering_jump_beyond_the_window_is_hidden() {
        let t0 = t0();
        let mut m = RtpMunger::new(1, CLOCK);
        let a = m.rewrite(A, 100, 0, t0).unwrap();
        let b = m.rewrite(A, 30_000, 0, ms(t0, 1_000)).unwrap();
        assert_eq!(b.0, a.0.wrapping_add(1));
        assert_eq!(b.1.wrapping_sub(a.1), CLOCK);
    }

    #[test]
    fn source_restarting_its_numbering_backwards_recovers() {
        let t0 = t0();
        let mut m = RtpMunger::new(1, CLOCK);
        feed(&mut m, A, 20_000, 0, 5, t0);
        let mut forwarded = Vec::new();
        for i in 0..20u16 {
            if let Some(out) = m.rewrite(A, 10_000 + i, 0, ms(t0, 1_000)) {
                forwarded.push(out);
            }
        }
        assert_eq!(forwarded.len(), 20 - STALE_RESTART as usize + 1);
        assert_contiguous(&forwarded);
    }

    #[test]
    fn resync_hides_lost_packets_and_refuses_older_ones() {
        let t0 = t0();
        let mut m = RtpMunger::new(1, CLOCK);
        let p10 = m.rewrite(A, 10, 0, t0).unwrap();
        m.skip(A, 12); // 11 and 13 lost upstream (for now)
        m.resync();
        let p14 = m.rewrite(A, 14, 3_000, t0).unwrap(); // the keyframe
        assert_eq!(p14, (p10.0.wrapping_add(1), p10.1.wrapping_add(3_000)));
        assert_eq!(m.rewrite(A, 13, 0, t0), None);
        assert_eq!(m.rewrite(A, 11, 0, t0), None);
        assert_eq!(m.rewrite(A, 15, 3_000, t0).unwrap().0, p14.0.wrapping_add(1));
    }

    #[test]
    fn resync_is_spent_by_the_packet_that_uses_it() {
        let t0 = t0();
        let mut m = RtpMunger::new(1, CLOCK);
        let p1 = m.rewrite(A, 1, 0, t0).unwrap();
        m.resync();
        assert_eq!(m.rewrite(A, 3, 0, t0).unwrap().0, p1.0.wrapping_add(1));
        // 2 arrives late: no longer placeable; 5 after a lost 4 shows the gap (normal loss).
        assert_eq!(m.rewrite(A, 2, 0, t0), None);
        assert_eq!(m.rewrite(A, 5, 0, t0).unwrap().0, p1.0.wrapping_add(3));
    }

    #[test]
    fn translated_sender_report_time_matches_rewritten_packets() {
        let t0 = t0();
        let mut m = RtpMunger::new(1, CLOCK);
        assert_eq!(m.translate_timestamp(A, 0), None);
        let out = m.rewrite(A, 1, 1_000, t0).unwrap();
        assert_eq!(m.translate_timestamp(A, 1_000 + FRAME), Some(out.1.wrapping_add(FRAME)));
        assert_eq!(m.translate_timestamp(B, 1_000), None);
    }

    /// Random reordering, duplication and skipping: outgoing numbers are unique, ordered like the
    /// incoming ones, and the timestamp offset never changes within one source.
    #[test]
    fn random_reorder_duplicate_and_skip_keep_the_mapping_consistent() {
        let t0 = t0();
        let mut rng = 0x9e37_79b9_u32;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 17;
            rng ^= rng << 5;
            rng
        };
        let mut arrivals: Vec<u16> = (0..3_000u32).map(|i| (60_000 + i) as u16).collect();
        for i in 1..arrivals.len() {
            if next() % 5 == 0 {
                arrivals.swap(i - 1, i);
            }
        }
        let mut m = RtpMunger::new(3, CLOCK);
        let mut seen: std::collections::BTreeMap<i64, u16> = Default::default();
        let mut out_seen = std::collections::HashSet::new();
        let mut offset = None;
        for (i, &seq) in arrivals.iter().enumerate() {
            let ts = u32::from(seq).wrapping_mul(FRAME);
            let repeats = if next() % 10 == 0 { 2 } else { 1 };
            for _ in 0..repeats {
                if i > 0 && next() % 4 == 0 {
                    m.skip(A, seq);
                    continue;
                }
                let Some((out_seq, out_ts)) = m.rewrite(A, seq, ts, t0) else {
                    continue;
                };
                assert!(out_seen.insert(out_seq), "outgoing seq {out_seq} used twice");
                let delta = out_ts.wrapping_sub(ts);
                assert_eq!(*offset.get_or_insert(delta), delta);
                let extended = 60_000 + i64::from(seq.wrapping_sub(60_000));
                seen.insert(extended, out_seq);
            }
        }
        let outs: Vec<u16> = seen.values().copied().collect();
        for w in outs.windows(2) {
            let step = w[1].wrapping_sub(w[0]);
            assert!((1..100).contains(&step), "order preserved: {} then {}", w[0], w[1]);
        }
    }
}
