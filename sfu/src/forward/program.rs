//! Program feeds: one output track (the "program") fed by one chosen source track at a time, so
//! a public broadcast is composed by switching, never by decoding. This module decides, per
//! upstream packet, whether it feeds the output; the [`super::Router`] then treats the output as an
//! ordinary track whose publisher changed (its mungers hide the SSRC switch from viewers).
//!
//! Video switches only at the new source's keyframe: until one arrives the old source goes on, so
//! viewers never see a picture that cannot be decoded, and a slate (nothing wanted) starts at once.
//! Audio switches at the next packet (every Opus packet decodes on its own).

use crate::api::MediaKind;

use super::keys::TrackKey;

/// The switching state of one program output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramSwitch {
    kind: MediaKind,
    /// The source feeding the output now.
    current: Option<TrackKey>,
    /// Video only: the source to switch to at its next keyframe.
    pending: Option<TrackKey>,
}

/// What [`ProgramSwitch::accept`] decided for one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accept {
    /// Not for this output.
    No,
    /// Feeds the output, from the same source as the previous packet.
    Yes,
    /// Feeds the output and is the first packet of a new source (the caller refreshes what
    /// depends on the source, e.g. header-extension ids).
    Switched,
}

impl ProgramSwitch {
    pub fn new(kind: MediaKind) -> Self {
        ProgramSwitch { kind, current: None, pending: None }
    }

    pub fn current(&self) -> Option<TrackKey> {
        self.current
    }

    pub fn pending(&self) -> Option<TrackKey> {
        self.pending
    }

    /// The sources whose packets may feed the output now (current and pending).
    pub fn inputs(&self) -> impl Iterator<Item = TrackKey> {
        self.current.into_iter().chain(self.pending)
    }

    /// Sets the wanted source. Returns the source that needs a keyframe for the switch (video, a
    /// new source), which the caller requests upstream.
    pub fn want(&mut self, wanted: Option<TrackKey>) -> Option<TrackKey> {
        match wanted {
            None => {
                // A slate or a suspension starts now: not one more packet of anyone.
                self.current = None;
                self.pending = None;
                None
            }
            Some(w) if self.current == Some(w) => {
                self.pending = None;
                None
            }
            Some(w) if self.kind == MediaKind::Audio => {
                self.current = Some(w);
                None
            }
            Some(w) => {
                let asked = self.pending != Some(w);
                self.pending = Some(w);
                asked.then_some(w)
            }
        }
    }

    /// Whether a packet of `source` feeds the output; performs a pending switch at its keyframe.
    pub fn accept(&mut self, source: TrackKey, is_keyframe: bool) -> Accept {
        if self.pending == Some(source) && is_keyframe {
            self.current = Some(source);
            self.pending = None;
            return Accept::Switched;
        }
        if self.current == Some(source) { Accept::Yes } else { Accept::No }
    }

    /// The source was unpublished: forget it (the caller picks the next wanted source).
    pub fn source_gone(&mut self, source: TrackKey) {
        if self.current == Some(source) {
            self.current = None;
        }
        if self.pending == Some(source) {
            self.pending = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: TrackKey = TrackKey(1);
    const B: TrackKey = TrackKey(2);

    #[test]
    fn first_video_source_starts_at_its_keyframe() {
        let mut s = ProgramSwitch::new(MediaKind::Video);
        assert_eq!(s.want(Some(A)), Some(A), "a keyframe is requested");
        assert_eq!(s.accept(A, false), Accept::No);
        assert_eq!(s.accept(A, true), Accept::Switched);
        assert_eq!(s.accept(A, false), Accept::Yes);
        assert_eq!(s.current(), Some(A));
    }

    #[test]
    fn video_keeps_the_old_source_until_the_new_one_sends_a_keyframe() {
        let mut s = ProgramSwitch::new(MediaKind::Video);
        s.want(Some(A));
        s.accept(A, true);
        assert_eq!(s.want(Some(B)), Some(B));
        assert_eq!(s.inputs().collect::<Vec<_>>(), vec![A, B]);
        assert_eq!(s.accept(B, false), Accept::No, "B's delta frames cannot start a picture");
        assert_eq!(s.accept(A, false), Accept::Yes, "A goes on meanwhile");
        assert_eq!(s.accept(B, true), Accept::Switched);
        assert_eq!(s.accept(A, true), Accept::No, "A is off once B is on, keyframe or not");
        assert_eq!(s.accept(B, false), Accept::Yes);
    }

    #[test]
    fn asking_again_for_the_pending_source_requests_no_second_keyframe() {
        let mut s = ProgramSwitch::new(MediaKind::Video);
        assert_eq!(s.want(Some(A)), Some(A));
        assert_eq!(s.want(Some(A)), None);
    }

    #[test]
    fn switching_back_before_the_keyframe_cancels_the_switch() {
        let mut s = ProgramSwitch::new(MediaKind::Video);
        s.want(Some(A));
        s.accept(A, true);
        s.want(Some(B));
        assert_eq!(s.want(Some(A)), None);
        assert_eq!(s.accept(B, true), Accept::No);
        assert_eq!(s.accept(A, false), Accept::Yes);
    }

    #[test]
    fn nothing_wanted_stops_at_once() {
        let mut s = ProgramSwitch::new(MediaKind::Video);
        s.want(Some(A));
        s.accept(A, true);
        s.want(Some(B));
        assert_eq!(s.want(None), None);
        assert_eq!(s.accept(A, true), Accept::No);
        assert_eq!(s.accept(B, true), Accept::No);
        assert_eq!(s.inputs().count(), 0);
    }

    #[test]
    fn audio_switches_at_the_next_packet() {
        let mut s = ProgramSwitch::new(MediaKind::Audio);
        assert_eq!(s.want(Some(A)), None, "audio needs no keyframe");
        assert_eq!(s.accept(A, false), Accept::Yes);
        s.want(Some(B));
        assert_eq!(s.accept(A, false), Accept::No);
        assert_eq!(s.accept(B, false), Accept::Yes);
    }

    #[test]
    fn an_unpublished_source_is_forgotten() {
        let mut s = ProgramSwitch::new(MediaKind::Video);
        s.want(Some(A));
        s.accept(A, true);
        s.want(Some(B));
        s.source_gone(A);
        assert_eq!(s.current(), None);
        assert_eq!(s.pending(), Some(B));
        s.source_gone(B);
        assert_eq!(s.inputs().count(), 0);
    }
}
