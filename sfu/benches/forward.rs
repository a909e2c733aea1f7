//! Micro-benchmarks of the pure forwarding core (`sportello_sfu::forward`).
//!
//! ```sh
//! cargo bench -p sportello-sfu --bench forward
//! ```
//!
//! Time is simulated: every `Instant` is `t0 + Duration`, advanced by the packet spacing of the
//! stream, so nothing sleeps and the clock is never read on the measured path. Each benchmark keeps
//! its state across iterations (a long in-order stream), so what is measured is the steady state.
//! The global allocator is divan's `AllocProfiler`: the "alloc" rows of the output are allocations
//! per iteration (the forwarding core promises none on the hot path).
//!
//! The machines are 2 shared cores: compare ratios within one run; absolute numbers are noise.

use std::hint::black_box;
use std::time::{Duration, Instant};

use divan::counter::ItemsCount;
use divan::{AllocProfiler, Bencher};
use sportello_sfu::MediaKind;
use sportello_sfu::forward::{
    DownTrackKey, Forward, KeyframeThrottle, LossyQueue, Router, RouterConfig, RtpMeta, RtpMunger, SubscriberKey,
    TrackKey, is_vp8_keyframe,
};

#[global_allocator]
static ALLOC: AllocProfiler = AllocProfiler::system();

fn main() {
    // Defaults sized for the ~1 minute budget (about 10 s of measuring here); the command line may override them.
    divan::Divan::default().sample_count(500).min_time(Duration::from_millis(500)).config_with_args().main();
}

const PUB_SSRC: u32 = 0x1234_5678;
/// Opus: one packet per 20 ms frame, 48 kHz clock.
const AUDIO_PTIME: Duration = Duration::from_millis(20);
const AUDIO_TS_STEP: u32 = 960;
/// VP8 at 30 fps, 3 packets per frame, 90 kHz clock.
const VIDEO_PACKETS_PER_FRAME: u32 = 3;
const VIDEO_FRAME_TS_STEP: u32 = 3_000;
const VIDEO_PACKET_SPACING: Duration = Duration::from_micros(11_111);

mod munger {
    use super::*;

    /// One downtrack's rewrite of an in-order audio stream (starting near the u16 wrap, so the
    /// wraparound is part of the steady state).
    #[divan::bench]
    fn rewrite_in_order(bencher: Bencher) {
        let t0 = Instant::now();
        let mut munger = RtpMunger::new(0xdead_beef, 48_000);
        let (mut seq, mut ts, mut now) = (65_000u16, 1_000u32, t0);
        // The first packet anchors the stream; the benchmark measures the packets after it.
        assert!(munger.rewrite(PUB_SSRC, seq, ts, now).is_some());
        bencher.counter(ItemsCount::new(1u32)).bench_local(|| {
            seq = seq.wrapping_add(1);
            ts = ts.wrapping_add(AUDIO_TS_STEP);
            now += AUDIO_PTIME;
            black_box(munger.rewrite(PUB_SSRC, black_box(seq), black_box(ts), now))
        });
    }
}

mod route {
    use super::*;

    const TRACK: TrackKey = TrackKey(7);
    const SUBSCRIBERS: &[usize] = &[1, 10, 100, 500];

    /// A router with one track of `kind` and `n` subscribers to it, plus the engine's reused output
    /// `Vec`, already grown to `n` by a first routed packet (a keyframe for video, so every
    /// downtrack is past its first keyframe and forwards from then on).
    fn setup(kind: MediaKind, n: usize, t0: Instant) -> (Router, Vec<Forward>) {
        let clock_rate = match kind {
            MediaKind::Audio => 48_000,
            MediaKind::Video => 90_000,
        };
        let mut router = Router::new(RouterConfig::default());
        router.add_track(TRACK, kind, clock_rate);
        for s in 0..n as u64 {
            let down = DownTrackKey::new(SubscriberKey(s), TRACK);
            router.subscribe(down, 0x1000 + s as u32, t0);
        }
        let mut plis = Vec::new();
        router.poll_keyframe_requests(t0, &mut plis);
        let first = RtpMeta { ssrc: PUB_SSRC, seq: 0, timestamp: 0, is_keyframe: kind == MediaKind::Video };
        let mut out = Vec::new();
        router.route(TRACK, &first, t0, &mut out);
        assert_eq!(out.len(), n, "every downtrack forwards the first (key)frame");
        for s in 0..n as u64 {
            let down = DownTrackKey::new(SubscriberKey(s), TRACK);
            assert!(!router.is_waiting_for_keyframe(down));
        }
        (router, out)
    }

    /// One Opus packet fanned out to `n` audio downtracks. Time per iteration = per packet; the
    /// item throughput = forwards per second.
    #[divan::bench(args = SUBSCRIBERS)]
    fn audio(bencher: Bencher, n: usize) {
        let t0 = Instant::now();
        let (mut router, mut out) = setup(MediaKind::Audio, n, t0);
        let mut meta = RtpMeta { ssrc: PUB_SSRC, seq: 0, timestamp: 0, is_keyframe: false };
        let mut now = t0;
        bencher.counter(ItemsCount::new(n)).bench_local(|| {
            meta.seq = meta.seq.wrapping_add(1);
            meta.timestamp = meta.timestamp.wrapping_add(AUDIO_TS_STEP);
            now += AUDIO_PTIME;
            out.clear();
            router.route(TRACK, black_box(&meta), now, &mut out);
            debug_assert_eq!(out.len(), n);
            black_box(&out);
        });
    }

    /// One VP8 delta-frame packet fanned out to `n` video downtracks that are past their first
    /// keyframe (3 packets per frame, 30 fps).
    #[divan::bench(args = SUBSCRIBERS)]
    fn video(bencher: Bencher, n: usize) {
        let t0 = Instant::now();
        let (mut router, mut out) = setup(MediaKind::Video, n, t0);
        let mut meta = RtpMeta { ssrc: PUB_SSRC, seq: 0, timestamp: 0, is_keyframe: false };
        let mut packet = 0u32;
        let mut now = t0;
        bencher.counter(ItemsCount::new(n)).bench_local(|| {
            packet = packet.wrapping_add(1);
            meta.seq = meta.seq.wrapping_add(1);
            if packet.is_multiple_of(VIDEO_PACKETS_PER_FRAME) {
                meta.timestamp = meta.timestamp.wrapping_add(VIDEO_FRAME_TS_STEP);
            }
            now += VIDEO_PACKET_SPACING;
            out.clear();
            router.route(TRACK, black_box(&meta), now, &mut out);
            debug_assert_eq!(out.len(), n);
            black_box(&out);
        });
    }

    /// The anti-pattern, as a control of the allocation counter: a fresh output `Vec` per packet
    /// (audio). The reused-`Vec` benchmarks above should show no allocation rows at all.
    #[divan::bench(args = SUBSCRIBERS)]
    fn audio_fresh_vec(bencher: Bencher, n: usize) {
        let t0 = Instant::now();
        let (mut router, _) = setup(MediaKind::Audio, n, t0);
        let mut meta = RtpMeta { ssrc: PUB_SSRC, seq: 0, timestamp: 0, is_keyframe: false };
        let mut now = t0;
        bencher.counter(ItemsCount::new(n)).bench_local(|| {
            meta.seq = meta.seq.wrapping_add(1);
            meta.timestamp = meta.timestamp.wrapping_add(AUDIO_TS_STEP);
            now += AUDIO_PTIME;
            let mut out = Vec::new();
            router.route(TRACK, black_box(&meta), now, &mut out);
            out
        });
    }
}

mod keyframe {
    use super::*;

    /// A subscriber's PLI recorded, then the engine's poll (every 10 ms of simulated time, so one
    /// poll in a hundred sends a PLI upstream, the 1 s throttle).
    #[divan::bench]
    fn request_and_poll(bencher: Bencher) {
        let t0 = Instant::now();
        let mut throttle = KeyframeThrottle::default();
        let mut now = t0;
        bencher.bench_local(|| {
            now += Duration::from_millis(10);
            throttle.request(now);
            black_box(throttle.poll(black_box(now)))
        });
    }
}

mod queue {
    use super::*;

    /// The engine's per-subscriber capacity (`SfuConfig::subscriber_queue` default).
    const CAPACITY: usize = 512;
    /// A plain stand-in of the engine's item, `(TrackKey, rtc::rtp::Packet)`, of the same size:
    /// the queue's cost is moving items, not dropping the packets (the engine's business).
    type Item = (TrackKey, [u8; size_of::<rtc::rtp::Packet>()]);

    fn item(i: u64) -> Item {
        (TrackKey(i), [i as u8; size_of::<rtc::rtp::Packet>()])
    }

    /// Half full; each iteration pushes one and pops one (the pacer keeps up).
    #[divan::bench]
    fn push_pop_steady(bencher: Bencher) {
        let mut q = LossyQueue::with_capacity(CAPACITY);
        for i in 0..CAPACITY as u64 / 2 {
            assert!(q.push(item(i)).is_none());
        }
        let mut i = 0u64;
        bencher.bench_local(|| {
            i += 1;
            let evicted = q.push(black_box(item(i)));
            debug_assert!(evicted.is_none());
            black_box(evicted);
            black_box(q.pop())
        });
    }

    /// Full; each push evicts (and returns) the oldest item (a subscriber that stopped draining).
    #[divan::bench]
    fn push_evicting(bencher: Bencher) {
        let mut q = LossyQueue::with_capacity(CAPACITY);
        for i in 0..CAPACITY as u64 {
            assert!(q.push(item(i)).is_none());
        }
        let mut i = 0u64;
        bencher.bench_local(|| {
            i += 1;
            let evicted = q.push(black_box(item(i)));
            debug_assert!(evicted.is_some());
            black_box(evicted)
        });
    }
}

mod vp8 {
    use super::*;

    /// A libwebrtc-style descriptor: X=1 S=1 PID=0; I (15-bit picture id), L (TL0PICIDX),
    /// T (TID); then the VP8 payload header, in a ~1100-byte payload.
    fn payload(start: bool, tag: u8) -> Vec<u8> {
        let first = 0x80 | if start { 0x10 } else { 0x00 };
        let mut p = vec![first, 0xE0, 0x80 | 0x12, 0x34, 0x05, 0x40, tag, 0x9d, 0x01, 0x2a];
        p.resize(1_100, 0x55);
        p
    }

    /// First packet of a keyframe (the answer is true).
    #[divan::bench]
    fn keyframe_start(bencher: Bencher) {
        let p = payload(true, 0x10);
        assert!(is_vp8_keyframe(&p));
        bencher.bench(|| is_vp8_keyframe(black_box(&p)));
    }

    /// First packet of a delta frame (parses the whole descriptor, answer false).
    #[divan::bench]
    fn delta_start(bencher: Bencher) {
        let p = payload(true, 0x11);
        assert!(!is_vp8_keyframe(&p));
        bencher.bench(|| is_vp8_keyframe(black_box(&p)));
    }

    /// A middle packet of a frame (S=0: the most common case, answer false).
    #[divan::bench]
    fn continuation(bencher: Bencher) {
        let p = payload(false, 0x00);
        assert!(!is_vp8_keyframe(&p));
        bencher.bench(|| is_vp8_keyframe(black_box(&p)));
    }
}
