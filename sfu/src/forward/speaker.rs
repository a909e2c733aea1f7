//! Dominant-speaker detection for one room, from the RFC 6464 audio levels publishers put in their
//! RTP header extension. The goal is a calm highlight in the UI: a speaker must be clearly and
//! durably louder to take over, so coughs, keyboard clicks and short interjections do not flip it.
//!
//! How a score is computed: the window (500 ms) is cut into 10 time buckets. Each packet's level
//! becomes a *loudness* — dB above the silence threshold, 0 when quieter than it — and each bucket
//! keeps the mean loudness of its packets. A participant's score is the sum of its bucket means, so
//! buckets without packets (DTX, or a publisher that stopped sending) count as silence and a
//! sender's packet rate does not weigh. A participant *speaks* when at least 150 ms of the window
//! (3 buckets) has loudness. A challenger — or silence — replaces the dominant speaker only after
//! being ahead for 300 ms in a row; a challenger is ahead only while it is louder on the window
//! average *and* still making sound (in the last 150 ms), so a short shout, whose average lingers
//! for the whole window, does not count as sustained speech. When nobody is speaking, a challenger's
//! pause between words (still speaking over the window, silent for the last 150 ms) does not end its
//! challenge, but it takes over only while making sound. The dominant speaker stays so while any of
//! their sound is in the window (packets that arrive in a burst fill one bucket).

use foldhash::{HashMap, HashMapExt};
use std::hash::Hash;
use std::time::{Duration, Instant};

const BUCKETS: usize = 10;
/// RFC 6464 levels are 7 bits; a hostile 8-bit value is clamped to "silence".
const MAX_LEVEL: u8 = 127;
/// Fixed-point scale of bucket means, so the score stays an integer.
const SCALE: u32 = 256;
/// "Making sound right now": in one of the last 3 buckets (150 ms with the default window).
const RECENT_BUCKETS: u64 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpeakerConfig {
    /// Span over which levels are averaged.
    pub window: Duration,
    /// Levels above this (quieter than −`silence_level` dBov) count as silence. 60: background
    /// noise after browser noise suppression sits below −60 dBov, soft speech well above it.
    pub silence_level: u8,
    /// How long a challenger (or silence) must stay ahead before it takes over.
    pub takeover: Duration,
    /// How much of the window must contain sound for a participant to count as speaking.
    pub min_speech: Duration,
}

impl Default for SpeakerConfig {
    fn default() -> Self {
        SpeakerConfig {
            window: Duration::from_millis(500),
            silence_level: 60,
            takeover: Duration::from_millis(300),
            min_speech: Duration::from_millis(150),
        }
    }
}

/// See the module documentation. `P` identifies a participant.
#[derive(Debug, Clone)]
pub struct ActiveSpeakerDetector<P> {
    config: SpeakerConfig,
    bucket_nanos: u128,
    min_active_buckets: usize,
    /// Time origin of bucket numbers: the first instant seen.
    epoch: Option<Instant>,
    participants: HashMap<P, Levels>,
    current: Option<P>,
    /// Who is ahead of `current` (`None` = silence) and since when.
    challenger: Option<(Option<P>, Instant)>,
    /// The current speaker was removed: the next tick reports a change without hysteresis.
    announce: bool,
}

#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    number: u64,
    sum: u32,
    count: u32,
}

#[derive(Debug, Clone, Default)]
struct Levels {
    buckets: [Bucket; BUCKETS],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Score {
    loudness: u32,
    active_buckets: usize,
    /// Sound in the last `RECENT_BUCKETS`.
    recent: bool,
}

impl<P: Clone + Eq + Hash> Default for ActiveSpeakerDetector<P> {
    fn default() -> Self {
        Self::new()
    }
}

impl<P: Clone + Eq + Hash> ActiveSpeakerDetector<P> {
    /// Defaults: 500 ms window, silence above level 60, 300 ms takeover, 150 ms of speech.
    pub fn new() -> Self {
        Self::with_config(SpeakerConfig::default())
    }

    pub fn with_config(config: SpeakerConfig) -> Self {
        let bucket_nanos = (config.window.as_nanos() / BUCKETS as u128).max(1);
        let min_active_buckets = config.min_speech.as_nanos().div_ceil(bucket_nanos).clamp(1, BUCKETS as u128);
        ActiveSpeakerDetector {
            config,
            bucket_nanos,
            min_active_buckets: min_active_buckets as usize,
            epoch: None,
            participants: HashMap::new(),
            current: None,
            challenger: None,
            announce: false,
        }
    }

    /// One packet's audio level (0 = loudest, 127 = silence) from participant `who`.
    pub fn record(&mut self, who: P, level: u8, now: Instant) {
        let number = self.bucket_number(now);
        let level = level.min(MAX_LEVEL);
        let silence = self.config.silence_level;
        // +1 so a level right at the threshold still counts as sound.
        let loudness = if level > silence { 0 } else { silence - level + 1 };
        let bucket = &mut self.participants.entry(who).or_default().buckets[number as usize % BUCKETS];
        if bucket.number != number || bucket.count == 0 {
            *bucket = Bucket { number, sum: 0, count: 0 };
        }
        bucket.sum = bucket.sum.saturating_add(u32::from(loudness));
        bucket.count = bucket.count.saturating_add(1);
    }

    /// Forgets a participant (it left or stopped publishing audio).
    pub fn remove(&mut self, who: &P) {
        self.participants.remove(who);
        if self.current.as_ref() == Some(who) {
            self.current = None;
            self.announce = true;
        }
        if matches!(&self.challenger, Some((Some(c), _)) if c == who) {
            self.challenger = None;
        }
    }

    /// The dominant speaker right now, as last reported.
    pub fn current(&self) -> Option<&P> {
        self.current.as_ref()
    }

    /// Re-evaluates; `Some(change)` when the dominant speaker changed (`Some(None)` = everyone is
    /// silent). Call it periodically (e.g. every 100 ms): the takeover delay is measured between ticks.
    pub fn tick(&mut self, now: Instant) -> Option<Option<P>> {
        let number = self.bucket_number(now);
        let current_score = self.current.as_ref().and_then(|c| self.participants.get(c)).map(|l| self.score(l, number));
        let speaking = |s: &Score| s.active_buckets >= self.min_active_buckets;
        // The loudest speaker overall (to replace a removed one at once), and the loudest one
        // still making sound right now (only they may challenge: the window average lags, so
        // without this a short shout would stay "ahead" long after it ended).
        let mut loudest: Option<(&P, Score)> = None;
        let mut loudest_now: Option<(&P, Score)> = None;
        for (who, levels) in &self.participants {
            let score = self.score(levels, number);
            if !speaking(&score) {
                continue;
            }
            if loudest.is_none_or(|(_, b)| score.loudness > b.loudness) {
                loudest = Some((who, score));
            }
            if score.recent && loudest_now.is_none_or(|(_, b)| score.loudness > b.loudness) {
                loudest_now = Some((who, score));
            }
        }
        // The current speaker holds while there is any sound of theirs in the window: levels are
        // bucketed by arrival, and a jittery path delivers a whole word's packets at once (one
        // bucket), which would otherwise count as silence and hand the highlight to "nobody".
        let incumbent = current_score.filter(|s| s.active_buckets > 0);
        // With nobody speaking to defend the highlight, a challenger that is still speaking over the
        // window but silent right now (a pause between words: ticks sample `recent` and regularly
        // land in such a pause) keeps its challenge; it takes over only at a tick where it is
        // making sound again. Without this, a speaker whose pauses are longer than `recent` was
        // replaced by "nobody" at every other tick and took over only by luck of timing.
        let mut paused = false;
        let target = if self.announce {
            loudest.map(|(who, _)| who.clone())
        } else {
            // Ties go to the incumbent: only being louder takes over.
            match (loudest_now, incumbent) {
                (Some((who, s)), Some(c)) if s.loudness > c.loudness => Some(who.clone()),
                (_, Some(_)) => self.current.clone(),
                (Some((who, _)), None) => Some(who.clone()),
                (None, None) => match &self.challenger {
                    Some((Some(c), _))
                        if self.participants.get(c).is_some_and(|l| speaking(&self.score(l, number))) =>
                    {
                        paused = true;
                        Some(c.clone())
                    }
                    _ => None,
                },
            }
        };

        if self.announce {
            self.announce = false;
            self.challenger = None;
            self.current = target.clone();
            return Some(target);
        }
        if target == self.current {
            self.challenger = None;
            return None;
        }
        match &self.challenger {
            Some((who, since)) if *who == target => {
                if !paused && now.saturating_duration_since(*since) >= self.config.takeover {
                    self.challenger = None;
                    self.current = target.clone();
                    return Some(target);
                }
            }
            _ => {
                if self.config.takeover.is_zero() {
                    self.current = target.clone();
                    return Some(target);
                }
                self.challenger = Some((target, now));
            }
        }
        None
    }

    fn bucket_number(&mut self, now: Instant) -> u64 {
        let epoch = *self.epoch.get_or_insert(now);
        let number = now.saturating_duration_since(epoch).as_nanos() / self.bucket_nanos;
        u64::try_from(number).unwrap_or(u64::MAX)
    }

    /// Sum of the bucket means inside the window ending at bucket `number`.
    fn score(&self, levels: &Levels, number: u64) -> Score {
        let mut score = Score { loudness: 0, active_buckets: 0, recent: false };
        for b in &levels.buckets {
            let age = number.checked_sub(b.number);
            let in_window = age.is_some_and(|age| age < BUCKETS as u64);
            if in_window && b.count > 0 && b.sum > 0 {
                score.loudness += b.sum.saturating_mul(SCALE) / b.count;
                score.active_buckets += 1;
                score.recent |= age.is_some_and(|age| age < RECENT_BUCKETS);
            }
        }
        score
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SILENT: u8 = 127;

    /// Drives a room in 20 ms audio frames, ticking every 100 ms; `level(who, t_ms)` gives each
    /// participant's level (`None` = sends no packet). Returns the reported changes with their time.
    fn run(
        d: &mut ActiveSpeakerDetector<&'static str>,
        t0: Instant,
        from_ms: u64,
        to_ms: u64,
        who: &[&'static str],
        level: impl Fn(&str, u64) -> Option<u8>,
    ) -> Vec<(u64, Option<&'static str>)> {
        let mut changes = Vec::new();
        for t in (from_ms..to_ms).step_by(20) {
            let now = t0 + Duration::from_millis(t);
            for &p in who {
                if let Some(l) = level(p, t) {
                    d.record(p, l, now);
                }
            }
            let change = if t % 100 == 0 { d.tick(now) } else { None };
            if let Some(change) = change {
                changes.push((t, change));
            }
        }
        changes
    }

    #[test]
    fn single_speaker_becomes_dominant_once() {
        let t0 = Instant::now();
        let mut d = ActiveSpeakerDetector::new();
        let changes = run(&mut d, t0, 0, 3_000, &["anna"], |_, _| Some(30));
        assert_eq!(changes.len(), 1, "{changes:?}");
        let (at, who) = changes[0];
        assert_eq!(who, Some("anna"));
        assert!((300..=600).contains(&at), "took over at {at} ms");
        assert_eq!(d.current(), Some(&"anna"));
    }

    #[test]
    fn louder_sustained_speaker_takes_over_after_the_hysteresis() {
        let t0 = Instant::now();
        let mut d = ActiveSpeakerDetector::new();
        let who = ["anna", "bruno"];
        let level = |p: &str, t: u64| match p {
            "anna" => Some(40),
            _ => Some(if t >= 2_000 { 20 } else { SILENT }),
        };
        let changes = run(&mut d, t0, 0, 4_000, &who, level);
        assert_eq!(changes.len(), 2, "{changes:?}");
        assert_eq!(changes[0].1, Some("anna"));
        let (at, who) = changes[1];
        assert_eq!(who, Some("bruno"));
        assert!((2_300..=2_900).contains(&at), "took over at {at} ms");
    }

    #[test]
    fn brief_cough_does_not_flip_the_highlight() {
        let t0 = Instant::now();
        let mut d = ActiveSpeakerDetector::new();
        let who = ["anna", "bruno"];
        let level = |p: &str, t: u64| match p {
            "anna" => Some(40),
            _ => Some(if (2_000..2_100).contains(&t) { 0 } else { SILENT }),
        };
        let changes = run(&mut d, t0, 0, 4_000, &who, level);
        assert_eq!(changes.iter().map(|c| c.1).collect::<Vec<_>>(), vec![Some("anna")]);
    }

    #[test]
    fn short_loud_interjection_does_not_take_over() {
        let t0 = Instant::now();
        let mut d = ActiveSpeakerDetector::new();
        let who = ["anna", "bruno"];
        let level = |p: &str, t: u64| match p {
            "anna" => Some(50),
            _ => Some(if (2_000..2_150).contains(&t) { 0 } else { SILENT }),
        };
        let changes = run(&mut d, t0, 0, 4_000, &who, level);
        assert_eq!(changes.iter().map(|c| c.1).collect::<Vec<_>>(), vec![Some("anna")]);
    }

    #[test]
    fn cough_in_a_silent_room_highlights_nobody() {
        let t0 = Instant::now();
        let mut d = ActiveSpeakerDetector::new();
        let level = |_: &str, t: u64| Some(if (1_000..1_100).contains(&t) { 0 } else { SILENT });
        assert!(run(&mut d, t0, 0, 3_000, &["anna"], level).is_empty());
    }

    #[test]
    fn silence_after_speech_reports_nobody() {
        let t0 = Instant::now();
        let mut d = ActiveSpeakerDetector::new();
        let level = |_: &str, t: u64| Some(if t < 1_000 { 35 } else { SILENT });
        let changes = run(&mut d, t0, 0, 3_000, &["anna"], level);
        assert_eq!(changes.len(), 2, "{changes:?}");
        assert_eq!(changes[1].1, None);
        assert!((1_300..=1_900).contains(&changes[1].0), "silence reported at {} ms", changes[1].0);
    }

    #[test]
    fn publisher_that_stops_sending_counts_as_silent() {
        let t0 = Instant::now();
        let mut d = ActiveSpeakerDetector::new();
        let level = |_: &str, t: u64| (t < 1_000).then_some(35); // DTX: no packets at all
        let changes = run(&mut d, t0, 0, 3_000, &["anna"], level);
        assert_eq!(changes.last().map(|c| c.1), Some(None));
    }

    #[test]
    fn short_pause_between_sentences_keeps_the_speaker() {
        let t0 = Instant::now();
        let mut d = ActiveSpeakerDetector::new();
        let level = |_: &str, t: u64| Some(if (1_000..1_300).contains(&t) { SILENT } else { 35 });
        let changes = run(&mut d, t0, 0, 3_000, &["anna"], level);
        assert_eq!(changes.len(), 1, "{changes:?}");
    }

    #[test]
    fn removing_the_current_speaker_hands_over_at_once() {
        let t0 = Instant::now();
        let mut d = ActiveSpeakerDetector::new();
        let who = ["anna", "bruno"];
        let level = |p: &str, _: u64| Some(if p == "anna" { 20 } else { 45 });
        let changes = run(&mut d, t0, 0, 2_000, &who, level);
        assert_eq!(changes.last().map(|c| c.1), Some(Some("anna")));
        d.remove(&"anna");
        assert_eq!(d.tick(t0 + Duration::from_millis(2_000)), Some(Some("bruno")));
        assert_eq!(d.tick(t0 + Duration::from_millis(2_100)), None);
    }

    #[test]
    fn removing_the_only_speaker_reports_nobody() {
        let t0 = Instant::now();
        let mut d = ActiveSpeakerDetector::new();
        run(&mut d, t0, 0, 2_000, &["anna"], |_, _| Some(20));
        d.remove(&"anna");
        assert_eq!(d.tick(t0 + Duration::from_millis(2_000)), Some(None));
        assert_eq!(d.tick(t0 + Duration::from_millis(2_100)), None);
    }

    #[test]
    fn removing_a_quiet_participant_changes_nothing() {
        let t0 = Instant::now();
        let mut d = ActiveSpeakerDetector::new();
        run(&mut d, t0, 0, 2_000, &["anna", "bruno"], |p, _| Some(if p == "anna" { 20 } else { SILENT }));
        d.remove(&"bruno");
        assert_eq!(d.tick(t0 + Duration::from_millis(2_000)), None);
    }

    #[test]
    fn hostile_levels_are_clamped() {
        let t0 = Instant::now();
        let mut d = ActiveSpeakerDetector::new();
        for i in 0..100u64 {
            d.record("x", 255, t0 + Duration::from_millis(i * 20));
        }
        assert_eq!(d.tick(t0 + Duration::from_secs(2)), None);
    }

    /// Like `run`, ticking every `tick_ms` from `phase_ms` on (the engine ticks every 200 ms).
    fn run_ticks(
        d: &mut ActiveSpeakerDetector<&'static str>,
        t0: Instant,
        to_ms: u64,
        tick_ms: u64,
        phase_ms: u64,
        level: impl Fn(u64) -> Option<u8>,
    ) -> Vec<(u64, Option<&'static str>)> {
        let mut changes = Vec::new();
        let mut next_tick = phase_ms;
        for t in (0..to_ms).step_by(10) {
            let now = t0 + Duration::from_millis(t);
            if t % 20 == 0
                && let Some(l) = level(t)
            {
                d.record("anna", l, now);
            }
            if t >= next_tick {
                next_tick += tick_ms;
                if let Some(change) = d.tick(now) {
                    changes.push((t, change));
                }
            }
        }
        changes
    }

    /// Chromium's fake microphone: 200 ms of sound every 500 ms. Speaking by the window (4 buckets of
    /// 10), but silent for the last 150 ms at some ticks: the highlight must come whatever the
    /// phase of the ticks against the sound — it used to come only by luck of timing.
    #[test]
    fn speaker_with_pauses_takes_over_a_silent_room_whatever_the_tick_phase() {
        for tick_ms in [100, 200] {
            for phase_ms in (0..500).step_by(10) {
                let t0 = Instant::now();
                let mut d = ActiveSpeakerDetector::new();
                let level = |t: u64| Some(if t % 500 < 200 { 30 } else { SILENT });
                let changes = run_ticks(&mut d, t0, 3_000, tick_ms, phase_ms, level);
                assert_eq!(
                    changes.first().map(|c| c.1),
                    Some(Some("anna")),
                    "tick {tick_ms} ms, phase {phase_ms} ms: {changes:?}"
                );
                assert!(changes[0].0 <= 1_500, "tick {tick_ms} ms, phase {phase_ms} ms: {changes:?}");
                assert_eq!(
                    changes.len(),
                    1,
                    "the highlight stays: tick {tick_ms} ms, phase {phase_ms} ms: {changes:?}"
                );
            }
        }
    }

    /// A jittery path: the dominant speaker goes on speaking, but their packets arrive in bursts (a
    /// word's worth at once every 400 ms, fewer than 3 buckets in any window). They keep the highlight.
    #[test]
    fn speaker_whose_packets_arrive_in_bursts_keeps_the_highlight() {
        let t0 = Instant::now();
        let mut d = ActiveSpeakerDetector::new();
        let mut changes = run(&mut d, t0, 0, 1_000, &["anna"], |_, _| Some(30));
        assert_eq!(changes, vec![(changes[0].0, Some("anna"))]);
        for t in (1_000..4_000u64).step_by(100) {
            let now = t0 + Duration::from_millis(t);
            if t % 400 == 0 {
                for _ in 0..20 {
                    d.record("anna", 30, now);
                }
            }
            if let Some(change) = d.tick(now) {
                changes.push((t, change));
            }
        }
        assert_eq!(changes.len(), 1, "{changes:?}");
    }

    /// A 100 ms cough that spans three buckets counts as speaking for a moment, but it is over before
    /// the takeover delay: nobody is highlighted, whatever the tick phase.
    #[test]
    fn misaligned_cough_in_a_silent_room_highlights_nobody() {
        for tick_ms in [100, 200] {
            for phase_ms in (0..200).step_by(10) {
                let t0 = Instant::now();
                let mut d = ActiveSpeakerDetector::new();
                let level = |t: u64| Some(if (1_040..1_140).contains(&t) { 0 } else { SILENT });
                let changes = run_ticks(&mut d, t0, 3_000, tick_ms, phase_ms, level);
                assert!(changes.is_empty(), "tick {tick_ms} ms, phase {phase_ms} ms: {changes:?}");
            }
        }
    }

    #[test]
    fn tick_before_any_level_reports_nothing() {
        let mut d: ActiveSpeakerDetector<u32> = ActiveSpeakerDetector::new();
        assert_eq!(d.tick(Instant::now()), None);
    }
}
