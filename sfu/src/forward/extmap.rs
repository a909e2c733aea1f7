//! RTP header-extension id remapping between a publisher's leg and a subscriber's leg. Each leg
//! negotiates its own ids for the same URIs, and `write_rtp` rejects ids not negotiated on its leg;
//! dropping the extensions instead would lose abs-send-time and transport-cc, hence bandwidth
//! estimation. The map is a 256-entry table: one indexed load per extension on the hot path.

/// Marks "not negotiated on the subscriber leg". Id 0 is never a valid extension id.
const NONE: u8 = 0;

#[derive(Clone, PartialEq, Eq)]
pub struct ExtensionMap {
    table: [u8; 256],
    /// Every publisher-leg id keeps its number and none is dropped.
    identity: bool,
}

impl ExtensionMap {
    /// `from`: the publisher leg's `(id, uri)` pairs; `to`: the subscriber leg's. A URI present on
    /// both legs maps its id; anything else maps to `None`. Id 0 is ignored; on duplicate ids or
    /// URIs the first entry wins.
    pub fn new(from: &[(u8, &str)], to: &[(u8, &str)]) -> Self {
        let mut table = [NONE; 256];
        let mut identity = true;
        for &(from_id, uri) in from {
            if from_id == NONE || table[usize::from(from_id)] != NONE {
                continue;
            }
            match to.iter().find(|(id, u)| *id != NONE && *u == uri) {
                Some(&(to_id, _)) => {
                    table[usize::from(from_id)] = to_id;
                    identity &= to_id == from_id;
                }
                None => identity = false,
            }
        }
        ExtensionMap { table, identity }
    }

    /// The subscriber leg's id for the publisher leg's `id`, or `None` to drop that extension.
    #[inline]
    pub fn map(&self, id: u8) -> Option<u8> {
        match self.table[usize::from(id)] {
            NONE => None,
            mapped => Some(mapped),
        }
    }

    /// True when every publisher-leg extension keeps its id: the engine can then pass the
    /// extensions through untouched (ids the publisher did not negotiate still map to `None`).
    pub fn is_identity(&self) -> bool {
        self.identity
    }
}

impl std::fmt::Debug for ExtensionMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pairs = (0..=255u8).filter_map(|id| self.map(id).map(|to| (id, to)));
        f.debug_map().entries(pairs).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AUDIO_LEVEL: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";
    const ABS_SEND_TIME: &str = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time";
    const TWCC: &str = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";
    const MID: &str = "urn:ietf:params:rtp-hdrext:sdes:mid";

    #[test]
    fn same_uri_maps_to_the_subscriber_legs_id() {
        let m = ExtensionMap::new(
            &[(1, AUDIO_LEVEL), (3, ABS_SEND_TIME), (5, TWCC)],
            &[(2, TWCC), (4, AUDIO_LEVEL), (3, ABS_SEND_TIME)],
        );
        assert_eq!(m.map(1), Some(4));
        assert_eq!(m.map(3), Some(3));
        assert_eq!(m.map(5), Some(2));
    }

    #[test]
    fn extension_not_negotiated_on_the_subscriber_leg_is_dropped() {
        let m = ExtensionMap::new(&[(1, AUDIO_LEVEL), (9, MID)], &[(1, AUDIO_LEVEL)]);
        assert_eq!(m.map(9), None);
    }

    #[test]
    fn unknown_and_zero_ids_are_dropped() {
        let m = ExtensionMap::new(&[(0, AUDIO_LEVEL), (1, TWCC)], &[(0, AUDIO_LEVEL), (7, TWCC)]);
        for id in 0..=255u8 {
            assert_eq!(m.map(id), if id == 1 { Some(7) } else { None }, "id {id}");
        }
    }

    #[test]
    fn two_byte_header_ids_up_to_255_are_mapped() {
        let m = ExtensionMap::new(&[(255, TWCC), (200, MID)], &[(14, TWCC), (250, MID)]);
        assert_eq!(m.map(255), Some(14));
        assert_eq!(m.map(200), Some(250));
    }

    #[test]
    fn first_entry_wins_on_duplicates() {
        let m = ExtensionMap::new(&[(1, TWCC), (1, MID)], &[(2, TWCC), (3, TWCC), (4, MID)]);
        assert_eq!(m.map(1), Some(2));
    }

    #[test]
    fn identity_is_detected_only_when_nothing_moves() {
        let same = ExtensionMap::new(&[(1, AUDIO_LEVEL), (3, TWCC)], &[(1, AUDIO_LEVEL), (3, TWCC)]);
        assert!(same.is_identity());
        let moved = ExtensionMap::new(&[(1, AUDIO_LEVEL), (3, TWCC)], &[(1, AUDIO_LEVEL), (4, TWCC)]);
        assert!(!moved.is_identity());
        let dropped = ExtensionMap::new(&[(1, AUDIO_LEVEL), (3, TWCC)], &[(1, AUDIO_LEVEL)]);
        assert!(!dropped.is_identity());
        assert_eq!(format!("{same:?}"), "{1: 1, 3: 3}");
    }
}
