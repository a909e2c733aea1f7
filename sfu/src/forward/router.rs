//! The router: which upstream packet goes to which downtrack, with what header. It owns one
//! [`RtpMunger`] per downtrack, one [`KeyframeThrottle`] per track, and the "waiting for a keyframe"
//! state of video downtracks (a decoder cannot start, or recover, on a delta frame).

use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use std::time::{Duration, Instant};

use crate::api::MediaKind;

use super::keyframe::{DEFAULT_KEYFRAME_INTERVAL, KeyframeThrottle};
use super::keys::{DownTrackKey, SubscriberKey, TrackKey};
use super::munger::{RtpMunger, STRAGGLER_WINDOW};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouterConfig {
    /// Minimum spacing of keyframe requests (PLI) sent to one publisher track.
    pub keyframe_interval: Duration,
}

impl Default for RouterConfig {
    fn default() -> Self {
        RouterConfig { keyframe_interval: DEFAULT_KEYFRAME_INTERVAL }
    }
}

/// What the router needs of an upstream RTP packet; the engine parses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpMeta {
    pub ssrc: u32,
    pub seq: u16,
    pub timestamp: u32,
    /// First packet of a keyframe ([`super::is_vp8_keyframe`] for video; always false for audio).
    pub is_keyframe: bool,
}

/// One packet to send: the upstream payload, re-headed for `down` with these values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forward {
    pub down: DownTrackKey,
    pub ssrc: u32,
    pub seq: u16,
    pub timestamp: u32,
}

#[derive(Debug)]
pub struct Router {
    config: RouterConfig,
    tracks: HashMap<TrackKey, Track>,
    /// The tracks with a keyframe request waiting (every track whose throttle is pending, and some
    /// no longer): what the media thread looks at on every wake-up, instead of every track. Only
    /// video tracks are ever asked for one.
    asking: HashSet<TrackKey>,
    subscriptions: usize,
    /// Packets dropped because their track was gated ([`Router::set_forwarding`]).
    gated_packets: u64,
}

#[derive(Debug)]
struct Track {
    kind: MediaKind,
    clock_rate: u32,
    /// SSRC currently published on this track.
    upstream: Option<u32>,
    /// The SSRC it replaced, and when: its stragglers are ignored instead of switching back.
    replaced: Option<(u32, Instant)>,
    throttle: KeyframeThrottle,
    /// Forwarding disabled by the room (e.g. a council member without the floor): every packet
    /// is dropped here, for every subscriber, before any queue.
    gated: bool,
    /// Contiguous, so the per-packet fan-out is a walk over one slice.
    downs: Vec<Down>,
}

#[derive(Debug)]
struct Down {
    subscriber: SubscriberKey,
    munger: RtpMunger,
    /// Video only: packets are skipped until a keyframe starts a decodable frame.
    waiting_keyframe: bool,
}

impl Track {
    fn is_video(&self) -> bool {
        self.kind == MediaKind::Video
    }

    fn down_mut(&mut self, subscriber: SubscriberKey) -> Option<&mut Down> {
        self.downs.iter_mut().find(|d| d.subscriber == subscriber)
    }

    /// Makes a video downtrack wait for the next keyframe, and asks for one.
    fn resync(&mut self, key: TrackKey, subscriber: SubscriberKey, asking: &mut HashSet<TrackKey>, now: Instant) {
        if !self.is_video() {
            return;
        }
        if let Some(down) = self.down_mut(subscriber) {
            down.waiting_keyframe = true;
            ask(asking, key, &mut self.throttle, now);
        }
    }
}

/// Records demand for a keyframe of track `key`: its throttle remembers it, and `asking` lists the
/// track until the request is sent or satisfied. Every request goes through here, so every pending
/// throttle is in `asking` (and a pending one is not hashed again for every packet dropped).
fn ask(asking: &mut HashSet<TrackKey>, key: TrackKey, throttle: &mut KeyframeThrottle, now: Instant) {
    if !throttle.is_pending() {
        asking.insert(key);
    }
    throttle.request(now);
}

impl Router {
    pub fn new(config: RouterConfig) -> Self {
        Router { config, tracks: HashMap::new(), asking: HashSet::new(), subscriptions: 0, gated_packets: 0 }
    }

    /// Registers a published track. Re-adding an existing track (its publisher reconnected under
    /// the same stable key) keeps its subscriptions: the mungers hide the new SSRC.
    pub fn add_track(&mut self, track: TrackKey, kind: MediaKind, clock_rate: u32) {
        self.tracks.entry(track).or_insert_with(|| Track {
            kind,
            clock_rate,
            upstream: None,
            replaced: None,
            throttle: KeyframeThrottle::new(self.config.keyframe_interval),
            gated: false,
            downs: Vec::new(),
        });
    }

    /// Gates a track: while disabled, its packets reach no downtrack (they are skipped in the
    /// mungers, so the outgoing numbering stays continuous across the gap). Re-enabling a video
    /// track makes its downtracks wait for a keyframe and requests one, as after a pause; audio
    /// resumes at the next packet. Unknown tracks are ignored.
    pub fn set_forwarding(&mut self, track: TrackKey, enabled: bool, now: Instant) {
        let Some(state) = self.tracks.get_mut(&track) else {
            return;
        };
        if state.gated != enabled {
            return;
        }
        state.gated = !enabled;
        if enabled && state.is_video() && !state.downs.is_empty() {
            for down in &mut state.downs {
                down.waiting_keyframe = true;
            }
            ask(&mut self.asking, track, &mut state.throttle, now);
        }
    }

    /// Whether this track is gated ([`Router::set_forwarding`]).
    pub fn is_forwarding(&self, track: TrackKey) -> bool {
        self.tracks.get(&track).is_some_and(|t| !t.gated)
    }

    /// Packets dropped so far because their track was gated.
    pub fn gated_packets(&self) -> u64 {
        self.gated_packets
    }

    /// Removes a track and returns its subscriptions, now removed too.
    pub fn remove_track(&mut self, track: TrackKey) -> Vec<DownTrackKey> {
        let Some(removed) = self.tracks.remove(&track) else {
            return Vec::new();
        };
        self.asking.remove(&track);
        self.subscriptions -= removed.downs.len();
        removed.downs.iter().map(|d| DownTrackKey { subscriber: d.subscriber, track }).collect()
    }

    /// Subscribes `down.subscriber` to `down.track` (ignored if the track is unknown), sending with
    /// `out_ssrc`. Video starts waiting for a keyframe and one is requested, so a newcomer sees
    /// a picture quickly; audio starts at the next packet. Subscribing again with the same
    /// `out_ssrc` keeps the outgoing numbering (the receiver sees one stream); another SSRC starts
    /// a new one.
    pub fn subscribe(&mut self, down: DownTrackKey, out_ssrc: u32, now: Instant) {
        let Some(track) = self.tracks.get_mut(&down.track) else {
            return;
        };
        let (video, clock_rate) = (track.is_video(), track.clock_rate);
        match track.down_mut(down.subscriber) {
            Some(existing) if existing.munger.out_ssrc() == out_ssrc => {}
            Some(existing) => existing.munger = RtpMunger::new(out_ssrc, clock_rate),
            None => {
                track.downs.push(Down {
                    subscriber: down.subscriber,
                    munger: RtpMunger::new(out_ssrc, clock_rate),
                    waiting_keyframe: false,
                });
                self.subscriptions += 1;
            }
        }
        if video {
            track.resync(down.track, down.subscriber, &mut self.asking, now);
        }
    }

    pub fn unsubscribe(&mut self, down: DownTrackKey) {
        let Some(track) = self.tracks.get_mut(&down.track) else {
            return;
        };
        if let Some(i) = track.downs.iter().position(|d| d.subscriber == down.subscriber) {
            track.downs.remove(i);
            self.subscriptions -= 1;
        }
    }

    /// Removes every subscription of `sub` (it left); returns them, sorted.
    pub fn remove_subscriber(&mut self, sub: SubscriberKey) -> Vec<DownTrackKey> {
        let mut removed = Vec::new();
        for (&track, state) in &mut self.tracks {
            if let Some(i) = state.downs.iter().position(|d| d.subscriber == sub) {
                state.downs.remove(i);
                removed.push(DownTrackKey { subscriber: sub, track });
            }
        }
        self.subscriptions -= removed.len();
        removed.sort_unstable();
        removed
    }

    /// Routes one upstream packet of `track`: APPENDS one [`Forward`] per downtrack that gets it
    /// (the caller clears and reuses `out`, so nothing is allocated per packet).
    pub fn route(&mut self, track: TrackKey, meta: &RtpMeta, now: Instant, out: &mut Vec<Forward>) {
        let Some(state) = self.tracks.get_mut(&track) else {
            return;
        };
        let video = state.is_video();
        match state.upstream {
            None => state.upstream = Some(meta.ssrc),
            Some(current) if current != meta.ssrc => {
                let straggler = state
                    .replaced
                    .is_some_and(|(old, at)| old == meta.ssrc && now.saturating_duration_since(at) < STRAGGLER_WINDOW);
                if straggler {
                    return;
                }
                // The publisher was replaced (reconnected): a new encoder, so every video
                // subscriber needs its keyframe before it can decode again.
                state.replaced = Some((current, now));
                state.upstream = Some(meta.ssrc);
                if video {
                    for down in &mut state.downs {
                        down.waiting_keyframe = true;
                    }
                    ask(&mut self.asking, track, &mut state.throttle, now);
                }
            }
            Some(_) => {}
        }
        if video && meta.is_keyframe {
            state.throttle.keyframe_received(now);
        }
        if state.gated {
            self.gated_packets += 1;
            for down in &mut state.downs {
                // Hide the drop so the receiver does not NACK it, and the numbering continues.
                down.munger.skip(meta.ssrc, meta.seq);
                if video {
                    down.waiting_keyframe = true;
                }
            }
            return;
        }

        let mut starving = false;
        for down in &mut state.downs {
            if down.waiting_keyframe {
                if !meta.is_keyframe {
                    // Hide the drop so the receiver does not NACK a packet it could not use.
                    down.munger.skip(meta.ssrc, meta.seq);
                    starving = true;
                    continue;
                }
                // Also hide packets lost upstream meanwhile: the keyframe continues the sequence.
                down.munger.resync();
            }
            let Some((seq, timestamp)) = down.munger.rewrite(meta.ssrc, meta.seq, meta.timestamp, now) else {
                continue;
            };
            down.waiting_keyframe = false;
            out.push(Forward {
                down: DownTrackKey { subscriber: down.subscriber, track },
                ssrc: down.munger.out_ssrc(),
                seq,
                timestamp,
            });
        }
        if starving {
            // Demand persists while packets are being dropped, so a lost PLI or keyframe is
            // retried after the interval instead of leaving subscribers frozen.
            ask(&mut self.asking, track, &mut state.throttle, now);
        }
    }

    /// Asks for a keyframe of this video track whether or not anyone subscribes to it yet (a
    /// program feed about to switch to it), throttled like every request.
    pub fn request_keyframe(&mut self, track: TrackKey, now: Instant) {
        if let Some(t) = self.tracks.get_mut(&track)
            && t.is_video()
        {
            ask(&mut self.asking, track, &mut t.throttle, now);
        }
    }

    /// The next different SSRC on this track is a deliberate switch (a program feed changing
    /// source), not the replaced publisher's straggler: let a recent source come back at once.
    pub fn clear_stragglers(&mut self, track: TrackKey) {
        if let Some(t) = self.tracks.get_mut(&track) {
            t.replaced = None;
            for down in &mut t.downs {
                down.munger.forget_replaced();
            }
        }
    }

    /// A subscriber sent PLI/FIR for this downtrack: forwarded upstream, throttled.
    pub fn keyframe_requested(&mut self, down: DownTrackKey, now: Instant) {
        let Some(track) = self.tracks.get_mut(&down.track) else {
            return;
        };
        if track.is_video() && track.downs.iter().any(|d| d.subscriber == down.subscriber) {
            ask(&mut self.asking, down.track, &mut track.throttle, now);
        }
    }

    /// The engine's per-subscriber queue evicted packets of this downtrack. Video waits for a
    /// keyframe (the decoder is now broken) and requests one; audio just continues (the decoder
    /// conceals the loss).
    pub fn overflowed(&mut self, down: DownTrackKey, now: Instant) {
        if let Some(track) = self.tracks.get_mut(&down.track) {
            track.resync(down.track, down.subscriber, &mut self.asking, now);
        }
    }

    /// Appends the tracks that should get a PLI upstream now (at most one per interval each).
    pub fn poll_keyframe_requests(&mut self, now: Instant, out: &mut Vec<TrackKey>) {
        let tracks = &mut self.tracks;
        self.asking.retain(|key| {
            let Some(track) = tracks.get_mut(key) else { return false };
            if track.throttle.poll(now) {
                out.push(*key);
            }
            track.throttle.is_pending()
        });
    }

    /// When [`Router::poll_keyframe_requests`] next has something to return.
    pub fn next_timeout(&self) -> Option<Instant> {
        self.asking.iter().filter_map(|key| self.tracks.get(key)?.throttle.next_timeout()).min()
    }

    pub fn track_count(&self) -> usize {
        self.tracks.len()
    }

    pub fn subscription_count(&self) -> usize {
        self.subscriptions
    }

    pub fn has_track(&self, track: TrackKey) -> bool {
        self.tracks.contains_key(&track)
    }

    pub fn downtracks(&self, track: TrackKey) -> impl Iterator<Item = DownTrackKey> + '_ {
        self.tracks
            .get(&track)
            .into_iter()
            .flat_map(move |t| t.downs.iter().map(move |d| DownTrackKey { subscriber: d.subscriber, track }))
    }

    pub fn out_ssrc(&self, down: DownTrackKey) -> Option<u32> {
        self.down(down).map(|d| d.munger.out_ssrc())
    }

    /// Whether this video downtrack is dropping packets until the next keyframe.
    pub fn is_waiting_for_keyframe(&self, down: DownTrackKey) -> bool {
        self.down(down).is_some_and(|d| d.waiting_keyframe)
    }

    /// The outgoing RTP timestamp for an upstream one, to rewrite a publisher's Sender Report for
    /// this downtrack (keeps lip sync). `None` until the downtrack has forwarded from `ssrc`.
    pub fn translate_timestamp(&self, down: DownTrackKey, ssrc: u32, timestamp: u32) -> Option<u32> {
        self.down(down)?.munger.translate_timestamp(ssrc, timestamp)
    }

    fn down(&self, key: DownTrackKey) -> Option<&Down> {
        self.tracks.get(&key.track)?.downs.iter().find(|d| d.subscriber == key.subscriber)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AUDIO: TrackKey = TrackKey(1);
    const VIDEO: TrackKey = TrackKey(2);
    const PUB_SSRC: u32 = 0x1111;
    const NEW_PUB_SSRC: u32 = 0x2222;

    fn down(sub: u64, track: TrackKey) -> DownTrackKey {
        DownTrackKey { subscriber: SubscriberKey(sub), track }
    }

    fn ms(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    /// A simulated upstream: 20 ms audio frames or 33 ms video frames of `packets_per_frame`,
    /// with a keyframe every `keyframe_every` frames (0 = only the first).
    struct Upstream {
        ssrc: u32,
        seq: u16,
        ts: u32,
        ts_step: u32,
        frame: u64,
        packets_per_frame: u16,
        keyframe_every: u64,
    }

    impl Upstream {
        fn audio() -> Self {
            Upstream {
                ssrc: PUB_SSRC,
                seq: 65_500,
                ts: 1_000,
                ts_step: 960,
                frame: 0,
                packets_per_frame: 1,
                keyframe_every: 0,
            }
        }

        fn video(keyframe_every: u64) -> Self {
            Upstream { ssrc: PUB_SSRC, seq: 100, ts: 0, ts_step: 3_000, frame: 0, packets_per_frame: 3, keyframe_every }
        }

        /// The packets of the next frame.
        fn next_frame(&mut self) -> Vec<RtpMeta> {
            let key = self.frame == 0 || self.frame.checked_rem(self.keyframe_every) == Some(0);
            let packets = (0..self.packets_per_frame)
                .map(|i| RtpMeta {
                    ssrc: self.ssrc,
                    seq: self.seq.wrapping_add(i),
                    timestamp: self.ts,
                    is_keyframe: key && i == 0,
                })
                .collect();
            self.seq = self.seq.wrapping_add(self.packets_per_frame);
            self.ts = self.ts.wrapping_add(self.ts_step);
            self.frame += 1;
            packets
        }
    }

    /// Everything each downtrack received, in order.
    type Received = HashMap<DownTrackKey, Vec<Forward>>;

    fn deliver(router: &mut Router, track: TrackKey, packets: &[RtpMeta], now: Instant, received: &mut Received) {
        let mut out = Vec::new();
        for p in packets {
            out.clear();
            router.route(track, p, now, &mut out);
            for f in &out {
                received.entry(f.down).or_default().push(*f);
            }
        }
    }

    fn assert_continuous(packets: &[Forward]) {
        for w in packets.windows(2) {
            assert_eq!(w[1].seq, w[0].seq.wrapping_add(1), "gap: {:?} then {:?}", w[0], w[1]);
            assert!(
                w[1].timestamp.wrapping_sub(w[0].timestamp) as i32 >= 0,
                "time went back: {:?} then {:?}",
                w[0],
                w[1]
            );
            assert_eq!(w[1].ssrc, w[0].ssrc);
        }
    }

    fn video_router(t0: Instant, subscribers: u64) -> Router {
        let mut r = Router::new(RouterConfig::default());
        r.add_track(VIDEO, MediaKind::Video, 90_000);
        for s in 0..subscribers {
            r.subscribe(down(s, VIDEO), 1_000 + s as u32, t0);
        }
        r
    }

    #[test]
    fn every_audio_subscriber_gets_every_packet_with_continuous_numbers() {
        let t0 = Instant::now();
        let mut r = Router::new(RouterConfig::default());
        r.add_track(AUDIO, MediaKind::Audio, 48_000);
        for s in 0..3 {
            r.subscribe(down(s, AUDIO), 500 + s as u32, t0);
        }
        assert_eq!(r.next_timeout(), None, "audio needs no keyframe");
        let mut up = Upstream::audio();
        let mut received = Received::new();
        for i in 0..100 {
            deliver(&mut r, AUDIO, &up.next_frame(), ms(t0, 20 * i), &mut received);
        }
        for s in 0..3 {
            let got = &received[&down(s, AUDIO)];
            assert_eq!(got.len(), 100);
            assert!(got.iter().all(|f| f.ssrc == 500 + s as u32));
            assert_continuous(got);
        }
    }

    #[test]
    fn fan_out_reuses_the_callers_vec() {
        let t0 = Instant::now();
        let mut r = Router::new(RouterConfig::default());
        r.add_track(AUDIO, MediaKind::Audio, 48_000);
        for s in 0..50 {
            r.subscribe(down(s, AUDIO), s as u32, t0);
        }
        let mut out = Vec::with_capacity(64);
        let mut up = Upstream::audio();
        for i in 0..10 {
            out.clear();
            let before = out.as_ptr();
            r.route(AUDIO, &up.next_frame()[0], ms(t0, 20 * i), &mut out);
            assert_eq!(out.len(), 50);
            assert_eq!(out.as_ptr(), before);
        }
    }

    #[test]
    fn late_video_subscriber_gets_nothing_until_a_keyframe_then_no_gap() {
        let t0 = Instant::now();
        let mut r = video_router(t0, 1);
        let mut up = Upstream::video(30);
        let mut received = Received::new();
        let mut plis = Vec::new();
        for frame in 0..90u64 {
            let now = ms(t0, 33 * frame);
            if frame == 10 {
                r.subscribe(down(1, VIDEO), 2_000, now);
                assert!(r.is_waiting_for_keyframe(down(1, VIDEO)));
            }
            deliver(&mut r, VIDEO, &up.next_frame(), now, &mut received);
            r.poll_keyframe_requests(now, &mut plis);
        }
        assert_continuous(&received[&down(0, VIDEO)]);
        assert_eq!(received[&down(0, VIDEO)].len(), 270);
        let late = &received[&down(1, VIDEO)];
        // Frames 30..90 (the first keyframe after joining is frame 30).
        assert_eq!(late.len(), 180);
        assert_continuous(late);
        assert!(!r.is_waiting_for_keyframe(down(1, VIDEO)));
        // One PLI, when the late one joined: the first subscriber's request was satisfied by the
        // keyframe that opened the stream, and the late one's by the keyframe at frame 30.
        assert_eq!(plis, vec![VIDEO]);
    }

    #[test]
    fn late_subscriber_starts_exactly_at_the_keyframe_packet() {
        let t0 = Instant::now();
        let mut r = video_router(t0, 0);
        let mut up = Upstream::video(5);
        up.next_frame(); // frame 0 (keyframe) went by before anyone subscribed
        r.subscribe(down(7, VIDEO), 77, t0);
        let mut received = Received::new();
        let frames: Vec<Vec<RtpMeta>> = (1..=6).map(|_| up.next_frame()).collect();
        for (i, f) in frames.iter().enumerate() {
            deliver(&mut r, VIDEO, f, ms(t0, 33 * i as u64), &mut received);
        }
        let got = &received[&down(7, VIDEO)];
        assert_eq!(got.len(), 6, "frames 5 and 6");
        assert_eq!(got[0].timestamp.wrapping_add(3_000), got[3].timestamp);
    }

    #[test]
    fn keyframe_requests_from_many_subscribers_are_throttled_and_none_is_lost() {
        let t0 = Instant::now();
        let mut r = video_router(t0, 1);
        let mut up = Upstream::video(0); // the publisher ignores PLIs: only the first frame is key
        let mut received = Received::new();
        let mut requests = Vec::new();
        let mut plis = Vec::new();
        for step in 0..400u64 {
            let now = ms(t0, 10 * step);
            // 20 subscribers each send a PLI, spread over the first 2.3 s.
            if step % 12 == 5 && step < 240 {
                r.keyframe_requested(down(0, VIDEO), now);
                requests.push(now);
            }
            if step % 3 == 0 {
                deliver(&mut r, VIDEO, &up.next_frame(), now, &mut received);
            }
            let mut due = Vec::new();
            r.poll_keyframe_requests(now, &mut due);
            plis.extend(due.iter().map(|_| now));
        }
        assert_eq!(requests.len(), 20);
        for w in plis.windows(2) {
            assert!(w[1] - w[0] >= Duration::from_secs(1), "PLIs {:?} apart", w[1] - w[0]);
        }
        for req in &requests {
            let served = plis.iter().any(|p| *p >= *req && *p - *req <= Duration::from_secs(1));
            assert!(served, "request at {:?} never served", *req - t0);
        }
        assert!(plis.len() <= 4, "{} PLIs in 4 s", plis.len());
    }

    #[test]
    fn waiting_subscriber_keeps_asking_until_a_keyframe_arrives() {
        let t0 = Instant::now();
        let mut r = video_router(t0, 0);
        let mut up = Upstream::video(0);
        up.next_frame();
        r.subscribe(down(1, VIDEO), 1, t0);
        let mut received = Received::new();
        let mut plis = Vec::new();
        for step in 0..100u64 {
            let now = ms(t0, 33 * step);
            deliver(&mut r, VIDEO, &up.next_frame(), now, &mut received);
            r.poll_keyframe_requests(now, &mut plis);
        }
        // ~3.3 s of delta frames: the first PLI was lost, so it is retried once a second.
        assert_eq!(plis.len(), 4);
        assert!(!received.contains_key(&down(1, VIDEO)));
    }

    #[test]
    fn replaced_publisher_is_hidden_and_resumes_at_its_keyframe() {
        let t0 = Instant::now();
        let mut r = video_router(t0, 3);
        let mut up = Upstream::video(0);
        let mut received = Received::new();
        let mut plis = Vec::new();
        let mut now = t0;
        for frame in 0..20u64 {
            now = ms(t0, 33 * frame);
            deliver(&mut r, VIDEO, &up.next_frame(), now, &mut received);
        }
        r.poll_keyframe_requests(now, &mut plis);
        plis.clear();
        // The publisher reconnects 2 s later: new SSRC and numbering, starting with delta frames
        // (its keyframe comes after our request).
        let mut replacement = Upstream::video(0);
        replacement.ssrc = NEW_PUB_SSRC;
        replacement.seq = 40_000;
        replacement.ts = 123_456_789;
        replacement.next_frame(); // its first keyframe was lost
        let back = now + Duration::from_secs(2);
        deliver(&mut r, VIDEO, &replacement.next_frame(), back, &mut received);
        for s in 0..3 {
            assert!(r.is_waiting_for_keyframe(down(s, VIDEO)));
        }
        r.poll_keyframe_requests(back, &mut plis);
        assert_eq!(plis, vec![VIDEO]);
        // A straggler of the old publisher neither switches back nor is forwarded.
        let before = received.values().map(Vec::len).sum::<usize>();
        deliver(&mut r, VIDEO, &up.next_frame(), back + Duration::from_millis(5), &mut received);
        assert_eq!(received.values().map(Vec::len).sum::<usize>(), before);

        let mut keyframe = replacement.next_frame();
        keyframe[0].is_keyframe = true;
        let key_at = back + Duration::from_millis(100);
        deliver(&mut r, VIDEO, &keyframe, key_at, &mut received);
        for frame in 1..10u64 {
            deliver(
                &mut r,
                VIDEO,
                &replacement.next_frame(),
                key_at + Duration::from_millis(33 * frame),
                &mut received,
            );
        }
        for s in 0..3 {
            let got = &received[&down(s, VIDEO)];
            assert_eq!(got.len(), 60 + 30);
            assert_continuous(got);
            // The receiver's clock advances by the real gap (≈ 2.1 s), not by the new numbering.
            let jump = got[60].timestamp.wrapping_sub(got[59].timestamp);
            assert_eq!(jump, 90 * 2_100);
        }
        assert_eq!(r.next_timeout(), None, "the keyframe satisfied the demand");
    }

    #[test]
    fn audio_publisher_replacement_needs_no_keyframe() {
        let t0 = Instant::now();
        let mut r = Router::new(RouterConfig::default());
        r.add_track(AUDIO, MediaKind::Audio, 48_000);
        r.subscribe(down(0, AUDIO), 9, t0);
        let mut up = Upstream::audio();
        let mut received = Received::new();
        for i in 0..10 {
            deliver(&mut r, AUDIO, &up.next_frame(), ms(t0, 20 * i), &mut received);
        }
        up.ssrc = NEW_PUB_SSRC;
        up.seq = 3;
        for i in 10..20 {
            deliver(&mut r, AUDIO, &up.next_frame(), ms(t0, 20 * i), &mut received);
        }
        let got = &received[&down(0, AUDIO)];
        assert_eq!(got.len(), 20);
        assert_continuous(got);
        let mut plis = Vec::new();
        r.poll_keyframe_requests(ms(t0, 400), &mut plis);
        assert!(plis.is_empty());
    }

    #[test]
    fn overflow_of_one_subscriber_does_not_change_what_the_others_receive() {
        let t0 = Instant::now();
        let run = |overflow: bool| {
            let mut r = video_router(t0, 3);
            let mut up = Upstream::video(15);
            let mut received = Received::new();
            for frame in 0..40u64 {
                let now = ms(t0, 33 * frame);
                if overflow && frame == 5 {
                    r.overflowed(down(1, VIDEO), now);
                }
                deliver(&mut r, VIDEO, &up.next_frame(), now, &mut received);
            }
            received
        };
        let calm = run(false);
        let stormy = run(true);
        assert_eq!(calm[&down(0, VIDEO)], stormy[&down(0, VIDEO)]);
        assert_eq!(calm[&down(2, VIDEO)], stormy[&down(2, VIDEO)]);
        // The overflowed one lost frames 5..15 and resumed at the keyframe without a gap.
        let slow = &stormy[&down(1, VIDEO)];
        assert_eq!(slow.len(), 120 - 30);
        assert_continuous(slow);
    }

    #[test]
    fn packets_lost_upstream_while_waiting_leave_no_gap_and_stale_ones_stay_out() {
        let t0 = Instant::now();
        let mut r = video_router(t0, 1);
        let mut up = Upstream::video(4);
        let mut received = Received::new();
        for frame in 0..3u64 {
            deliver(&mut r, VIDEO, &up.next_frame(), ms(t0, 33 * frame), &mut received);
        }
        r.overflowed(down(0, VIDEO), ms(t0, 99));
        let mut frame3 = up.next_frame();
        let withheld = frame3.remove(1); // lost, or reordered far behind
        deliver(&mut r, VIDEO, &frame3, ms(t0, 99), &mut received);
        deliver(&mut r, VIDEO, &up.next_frame(), ms(t0, 132), &mut received); // keyframe
        deliver(&mut r, VIDEO, &[withheld], ms(t0, 140), &mut received);
        deliver(&mut r, VIDEO, &up.next_frame(), ms(t0, 165), &mut received);
        let got = &received[&down(0, VIDEO)];
        assert_eq!(got.len(), 9 + 6, "frames 0-2, then 4-5; nothing of frame 3");
        assert_continuous(got);
    }

    #[test]
    fn overflowed_audio_just_continues() {
        let t0 = Instant::now();
        let mut r = Router::new(RouterConfig::default());
        r.add_track(AUDIO, MediaKind::Audio, 48_000);
        r.subscribe(down(0, AUDIO), 9, t0);
        r.overflowed(down(0, AUDIO), t0);
        assert!(!r.is_waiting_for_keyframe(down(0, AUDIO)));
        let mut out = Vec::new();
        r.route(AUDIO, &Upstream::audio().next_frame()[0], t0, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(r.next_timeout(), None);
    }

    #[test]
    fn keyframe_request_of_an_unknown_downtrack_is_ignored() {
        let t0 = Instant::now();
        let mut r = video_router(t0, 0);
        r.keyframe_requested(down(9, VIDEO), t0);
        r.keyframe_requested(down(9, TrackKey(99)), t0);
        assert_eq!(r.next_timeout(), None);
    }

    #[test]
    fn next_timeout_tells_when_the_throttled_request_is_due() {
        let t0 = Instant::now();
        let mut r = video_router(t0, 1);
        assert_eq!(r.next_timeout(), Some(t0));
        let mut plis = Vec::new();
        r.poll_keyframe_requests(t0, &mut plis);
        r.keyframe_requested(down(0, VIDEO), ms(t0, 200));
        assert_eq!(r.next_timeout(), Some(ms(t0, 1_000)));
    }

    /// The media thread asks the router at every wake-up when a keyframe request is next due; it
    /// looks at the tracks with one waiting, not at every track of the node.
    #[test]
    fn only_tracks_with_a_request_waiting_are_looked_at() {
        let t0 = Instant::now();
        let mut r = Router::new(RouterConfig::default());
        for t in 0..200 {
            r.add_track(TrackKey(t), MediaKind::Video, 90_000);
            r.add_track(TrackKey(1_000 + t), MediaKind::Audio, 48_000);
        }
        assert!(r.asking.is_empty());
        r.subscribe(down(1, TrackKey(7)), 1, t0);
        r.subscribe(down(1, TrackKey(1_007)), 2, t0);
        assert_eq!(r.asking.iter().copied().collect::<Vec<_>>(), [TrackKey(7)], "a newcomer's video asks");
        let mut plis = Vec::new();
        r.poll_keyframe_requests(t0, &mut plis);
        assert_eq!(plis, [TrackKey(7)]);
        assert!(r.asking.is_empty(), "sent: nothing waits");
        // Throttled: it waits, and is looked at, until sent or satisfied by a keyframe.
        r.keyframe_requested(down(1, TrackKey(7)), ms(t0, 100));
        r.poll_keyframe_requests(ms(t0, 200), &mut plis);
        assert_eq!((plis.len(), r.next_timeout()), (1, Some(ms(t0, 1_000))));
        let keyframe = Upstream::video(0).next_frame();
        r.route(TrackKey(7), &keyframe[0], ms(t0, 300), &mut Vec::new());
        r.poll_keyframe_requests(ms(t0, 400), &mut plis);
        assert!(r.asking.is_empty() && r.next_timeout().is_none(), "the keyframe came: nothing waits");
        // A track removed while asking is forgotten.
        r.request_keyframe(TrackKey(9), ms(t0, 500));
        r.remove_track(TrackKey(9));
        assert!(r.asking.is_empty() && r.next_timeout().is_none());
    }

    #[test]
    fn removing_tracks_and_subscribers_brings_counts_back_to_zero() {
        let t0 = Instant::now();
        let mut r = Router::new(RouterConfig::default());
        r.add_track(AUDIO, MediaKind::Audio, 48_000);
        r.add_track(VIDEO, MediaKind::Video, 90_000);
        for s in 0..4 {
            r.subscribe(down(s, AUDIO), s as u32, t0);
            r.subscribe(down(s, VIDEO), 100 + s as u32, t0);
        }
        assert_eq!((r.track_count(), r.subscription_count()), (2, 8));
        assert_eq!(r.out_ssrc(down(2, VIDEO)), Some(102));

        assert_eq!(r.remove_subscriber(SubscriberKey(0)), vec![down(0, AUDIO), down(0, VIDEO)]);
        r.unsubscribe(down(1, AUDIO));
        r.unsubscribe(down(1, AUDIO)); // twice is harmless
        assert_eq!(r.subscription_count(), 5);

        let mut gone = r.remove_track(VIDEO);
        gone.sort();
        assert_eq!(gone, vec![down(1, VIDEO), down(2, VIDEO), down(3, VIDEO)]);
        assert_eq!(r.downtracks(VIDEO).count(), 0);
        assert_eq!(r.out_ssrc(down(2, VIDEO)), None);
        assert_eq!(r.remove_subscriber(SubscriberKey(2)), vec![down(2, AUDIO)]);
        assert_eq!(r.remove_subscriber(SubscriberKey(3)), vec![down(3, AUDIO)]);
        r.remove_track(AUDIO);
        assert_eq!((r.track_count(), r.subscription_count()), (0, 0));
        assert_eq!(r.remove_track(AUDIO), vec![]);
    }

    #[test]
    fn readding_a_track_keeps_its_subscriptions() {
        let t0 = Instant::now();
        let mut r = video_router(t0, 2);
        r.add_track(VIDEO, MediaKind::Video, 90_000);
        assert_eq!(r.subscription_count(), 2);
        let mut subs: Vec<_> = r.downtracks(VIDEO).collect();
        subs.sort();
        assert_eq!(subs, vec![down(0, VIDEO), down(1, VIDEO)]);
    }

    #[test]
    fn resubscribing_with_the_same_ssrc_continues_the_numbering() {
        let t0 = Instant::now();
        let mut r = video_router(t0, 1);
        let mut up = Upstream::video(3);
        let mut received = Received::new();
        for frame in 0..9u64 {
            let now = ms(t0, 33 * frame);
            if frame == 4 {
                r.subscribe(down(0, VIDEO), 1_000, now);
            }
            deliver(&mut r, VIDEO, &up.next_frame(), now, &mut received);
        }
        let got = &received[&down(0, VIDEO)];
        assert_eq!(got.len(), 27 - 6, "frames 4 and 5 waited for the keyframe at 6");
        assert_continuous(got);
        assert_eq!(r.subscription_count(), 1);
    }

    #[test]
    fn sender_report_time_is_translated_per_downtrack() {
        let t0 = Instant::now();
        let mut r = Router::new(RouterConfig::default());
        r.add_track(AUDIO, MediaKind::Audio, 48_000);
        r.subscribe(down(0, AUDIO), 5, t0);
        assert_eq!(r.translate_timestamp(down(0, AUDIO), PUB_SSRC, 1_000), None);
        let mut out = Vec::new();
        let packet = Upstream::audio().next_frame()[0];
        r.route(AUDIO, &packet, t0, &mut out);
        assert_eq!(r.translate_timestamp(down(0, AUDIO), PUB_SSRC, packet.timestamp), Some(out[0].timestamp));
    }

    #[test]
    fn gated_audio_reaches_nobody_and_resumes_without_a_gap() {
        let t0 = Instant::now();
        let mut r = Router::new(RouterConfig::default());
        r.add_track(AUDIO, MediaKind::Audio, 48_000);
        for s in 0..2 {
            r.subscribe(down(s, AUDIO), 10 + s as u32, t0);
        }
        let mut up = Upstream::audio();
        let mut received = Received::new();
        for i in 0..10 {
            deliver(&mut r, AUDIO, &up.next_frame(), ms(t0, 20 * i), &mut received);
        }
        r.set_forwarding(AUDIO, false, ms(t0, 200));
        assert!(!r.is_forwarding(AUDIO));
        // A modified client keeps sending while gated: nothing is routed.
        for i in 10..60 {
            let mut out = Vec::new();
            r.route(AUDIO, &up.next_frame()[0], ms(t0, 20 * i), &mut out);
            assert!(out.is_empty(), "gated packet routed: {out:?}");
        }
        assert_eq!(r.gated_packets(), 50);
        r.set_forwarding(AUDIO, true, ms(t0, 1_200));
        assert!(r.is_forwarding(AUDIO));
        for i in 60..70 {
            deliver(&mut r, AUDIO, &up.next_frame(), ms(t0, 20 * i), &mut received);
        }
        for s in 0..2 {
            let got = &received[&down(s, AUDIO)];
            assert_eq!(got.len(), 20);
            assert_continuous(got);
            // The gap shows in time (50 frames of 960 ticks), not in the numbering.
            assert_eq!(got[10].timestamp.wrapping_sub(got[9].timestamp), 51 * 960);
        }
        let mut plis = Vec::new();
        r.poll_keyframe_requests(ms(t0, 1_400), &mut plis);
        assert!(plis.is_empty());
    }

    #[test]
    fn regated_video_waits_for_a_requested_keyframe_and_continues_the_numbering() {
        let t0 = Instant::now();
        let mut r = video_router(t0, 2);
        let mut up = Upstream::video(0); // keyframes only on request
        let mut received = Received::new();
        let mut plis = Vec::new();
        for frame in 0..10u64 {
            deliver(&mut r, VIDEO, &up.next_frame(), ms(t0, 33 * frame), &mut received);
        }
        r.poll_keyframe_requests(ms(t0, 330), &mut plis);
        plis.clear();
        r.set_forwarding(VIDEO, false, ms(t0, 330));
        r.set_forwarding(VIDEO, false, ms(t0, 331)); // twice is harmless
        for frame in 10..40u64 {
            let mut frame_packets = up.next_frame();
            if frame == 20 {
                frame_packets[0].is_keyframe = true; // even a keyframe is held back
            }
            let mut out = Vec::new();
            for p in &frame_packets {
                r.route(VIDEO, p, ms(t0, 33 * frame), &mut out);
            }
            assert!(out.is_empty());
        }
        r.poll_keyframe_requests(ms(t0, 1_320), &mut plis);
        assert!(plis.is_empty(), "no keyframe is asked for a gated track");
        let back = ms(t0, 1_400);
        r.set_forwarding(VIDEO, true, back);
        for s in 0..2 {
            assert!(r.is_waiting_for_keyframe(down(s, VIDEO)));
        }
        r.poll_keyframe_requests(back, &mut plis);
        assert_eq!(plis, vec![VIDEO], "re-enabling asks the publisher for a keyframe");
        // Delta frames before the keyframe are skipped, then everything flows again.
        deliver(&mut r, VIDEO, &up.next_frame(), back, &mut received);
        let mut keyframe = up.next_frame();
        keyframe[0].is_keyframe = true;
        deliver(&mut r, VIDEO, &keyframe, back + Duration::from_millis(33), &mut received);
        for frame in 2..6u64 {
            deliver(&mut r, VIDEO, &up.next_frame(), back + Duration::from_millis(33 * frame), &mut received);
        }
        for s in 0..2 {
            let got = &received[&down(s, VIDEO)];
            assert_eq!(got.len(), 30 + 15, "frames 0-9, then the keyframe and 4 more");
            assert_continuous(got);
        }
        assert_eq!(r.gated_packets(), 90);
    }

    #[test]
    fn gating_an_unknown_track_is_ignored() {
        let t0 = Instant::now();
        let mut r = Router::new(RouterConfig::default());
        r.set_forwarding(AUDIO, false, t0);
        assert!(!r.is_forwarding(AUDIO));
        r.add_track(AUDIO, MediaKind::Audio, 48_000);
        assert!(r.is_forwarding(AUDIO), "a new track starts open");
    }

    #[test]
    fn packets_for_unknown_tracks_are_ignored() {
        let t0 = Instant::now();
        let mut r = Router::new(RouterConfig::default());
        let mut out = Vec::new();
        r.route(TrackKey(5), &RtpMeta { ssrc: 1, seq: 1, timestamp: 1, is_keyframe: true }, t0, &mut out);
        r.subscribe(down(0, TrackKey(5)), 1, t0);
        assert!(out.is_empty());
        assert_eq!(r.subscription_count(), 0);
    }

    /// A program output fed by two sources through a [`ProgramSwitch`], as the engine does it.
    #[test]
    fn program_output_switches_at_keyframes_and_may_switch_straight_back() {
        use crate::forward::program::{Accept, ProgramSwitch};
        const PROGRAM: TrackKey = TrackKey(9);
        let t0 = Instant::now();
        let mut r = Router::new(RouterConfig::default());
        for t in [VIDEO, TrackKey(3), PROGRAM] {
            r.add_track(t, MediaKind::Video, 90_000);
        }
        r.subscribe(down(0, PROGRAM), 4_000, t0);
        let mut a = Upstream::video(10);
        let mut b = Upstream::video(10);
        b.ssrc = NEW_PUB_SSRC;
        b.seq = 30_000;
        b.ts = 77_000_000;
        b.frame = 5; // out of phase: B's keyframes fall between A's
        let mut switch = ProgramSwitch::new(MediaKind::Video);
        switch.want(Some(VIDEO));
        let mut received = Received::new();
        let mut from = Vec::new(); // which source each forwarded packet came from
        let mut out = Vec::new();
        let mut plis = Vec::new();
        for frame in 0..120u64 {
            let now = ms(t0, 33 * frame);
            match frame {
                30 => assert_eq!(switch.want(Some(TrackKey(3))), Some(TrackKey(3))),
                // Straight back to A, less than the straggler window after leaving it.
                60 => assert_eq!(switch.want(Some(VIDEO)), Some(VIDEO)),
                _ => {}
            }
            for (source, packets) in [(VIDEO, a.next_frame()), (TrackKey(3), b.next_frame())] {
                for p in &packets {
                    match switch.accept(source, p.is_keyframe) {
                        Accept::No => continue,
                        Accept::Switched => r.clear_stragglers(PROGRAM),
                        Accept::Yes => {}
                    }
                    out.clear();
                    r.route(PROGRAM, p, now, &mut out);
                    for f in &out {
                        received.entry(f.down).or_default().push(*f);
                        from.push((source, p.is_keyframe));
                    }
                }
            }
            r.poll_keyframe_requests(now, &mut plis);
        }
        let got = &received[&down(0, PROGRAM)];
        assert_continuous(got);
        // Every change of source happens on a keyframe packet.
        for w in from.windows(2) {
            if w[0].0 != w[1].0 {
                assert!(w[1].1, "switched to {:?} on a delta frame", w[1].0);
            }
        }
        let sources: Vec<TrackKey> = from.iter().map(|(s, _)| *s).collect();
        let changes = sources.windows(2).filter(|w| w[0] != w[1]).count();
        assert_eq!(changes, 2, "A, then B, then A again");
        // A keyframe period at most is spent waiting each time; nothing is lost beyond that.
        assert!(got.len() >= 3 * (120 - 2 * 10), "only {} packets forwarded", got.len());
    }
}
