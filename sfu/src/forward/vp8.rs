//! VP8 keyframe detection from the RTP payload (RFC 7741), so a waiting subscriber can resume on a
//! frame it can decode. Payloads are hostile: every read is bounds-checked and anything truncated is
//! "not a keyframe".

// First descriptor byte: |X|R|N|S|R| PID |
const X_BIT: u8 = 0x80;
const S_BIT: u8 = 0x10;
const PID_MASK: u8 = 0x07;
// Extension byte: |I|L|T|K| RSV |
const I_BIT: u8 = 0x80;
const L_BIT: u8 = 0x40;
const T_BIT: u8 = 0x20;
const K_BIT: u8 = 0x10;
// PictureID's first byte: |M| PictureID |, M = 15-bit picture id.
const M_BIT: u8 = 0x80;
// VP8 payload header's first byte: |Size0|H| VER |P|, P = 0 means keyframe (RFC 6386 §9.1).
const INTERFRAME_BIT: u8 = 0x01;

/// True when this RTP payload is the first packet of a VP8 keyframe: the start of partition 0
/// (S=1, PID=0) whose frame tag says "key frame". Any other or malformed payload gives false.
pub fn is_vp8_keyframe(payload: &[u8]) -> bool {
    let (Some(&first), Some(header)) = (payload.first(), payload_header_offset(payload)) else {
        return false;
    };
    if first & S_BIT == 0 || first & PID_MASK != 0 {
        return false;
    }
    match payload.get(header) {
        Some(tag) => tag & INTERFRAME_BIT == 0,
        None => false,
    }
}

/// Offset of the VP8 payload header, i.e. the length of the payload descriptor, if the
/// descriptor is complete.
fn payload_header_offset(payload: &[u8]) -> Option<usize> {
    let first = *payload.first()?;
    let mut at = 1;
    if first & X_BIT == 0 {
        return Some(at);
    }
    let ext = *payload.get(at)?;
    at += 1;
    if ext & I_BIT != 0 {
        let picture_id = *payload.get(at)?;
        at += if picture_id & M_BIT != 0 { 2 } else { 1 };
    }
    if ext & L_BIT != 0 {
        at += 1; // TL0PICIDX
    }
    if ext & (T_BIT | K_BIT) != 0 {
        at += 1; // TID|Y|KEYIDX
    }
    // The bytes skipped above are checked here: the header byte must exist after them.
    (at <= payload.len()).then_some(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_TAG: u8 = 0x10; // P=0 (keyframe), show_frame set
    const INTER_TAG: u8 = 0x11; // P=1

    /// Builds a descriptor: `s`, `pid`, optional picture id (7 or 15 bits), TL0PICIDX, TID/KEYIDX byte.
    fn descriptor(s: bool, pid: u8, picture_id: Option<u16>, tl0: bool, tid_or_keyidx: Option<u8>) -> Vec<u8> {
        let extended = picture_id.is_some() || tl0 || tid_or_keyidx.is_some();
        let mut out = vec![(if extended { X_BIT } else { 0 }) | (if s { S_BIT } else { 0 }) | (pid & PID_MASK)];
        if extended {
            let mut ext = 0;
            if picture_id.is_some() {
                ext |= I_BIT;
            }
            if tl0 {
                ext |= L_BIT;
            }
            if let Some(flags) = tid_or_keyidx {
                ext |= flags; // T_BIT and/or K_BIT
            }
            out.push(ext);
            if let Some(id) = picture_id {
                if id > 0x7f {
                    out.push(M_BIT | (id >> 8) as u8);
                    out.push(id as u8);
                } else {
                    out.push(id as u8);
                }
            }
            if tl0 {
                out.push(0x42);
            }
            if tid_or_keyidx.is_some() {
                out.push(0xff); // TID/Y/KEYIDX: content must not matter
            }
        }
        out
    }

    fn with_tag(mut d: Vec<u8>, tag: u8) -> Vec<u8> {
        d.extend_from_slice(&[tag, 0x9d, 0x01, 0x2a]);
        d
    }

    #[test]
    fn minimal_descriptor_keyframe_is_detected() {
        assert!(is_vp8_keyframe(&with_tag(descriptor(true, 0, None, false, None), KEY_TAG)));
    }

    #[test]
    fn interframe_is_not_a_keyframe() {
        assert!(!is_vp8_keyframe(&with_tag(descriptor(true, 0, None, false, None), INTER_TAG)));
    }

    #[test]
    fn every_descriptor_shape_is_parsed_to_the_payload_header() {
        let picture_ids = [None, Some(0x05), Some(0x7f), Some(0x80), Some(0x7fff)];
        let tid_keyidx = [None, Some(T_BIT), Some(K_BIT), Some(T_BIT | K_BIT)];
        for picture_id in picture_ids {
            for tl0 in [false, true] {
                for tk in tid_keyidx {
                    let d = descriptor(true, 0, picture_id, tl0, tk);
                    assert!(is_vp8_keyframe(&with_tag(d.clone(), KEY_TAG)), "{d:02x?}");
                    assert!(!is_vp8_keyframe(&with_tag(d.clone(), INTER_TAG)), "{d:02x?}");
                }
            }
        }
    }

    #[test]
    fn continuation_packet_of_a_keyframe_is_not_its_start() {
        assert!(!is_vp8_keyframe(&with_tag(descriptor(false, 0, Some(3), true, None), KEY_TAG)));
    }

    #[test]
    fn start_of_a_later_partition_is_not_a_keyframe_start() {
        assert!(!is_vp8_keyframe(&with_tag(descriptor(true, 1, Some(3), false, None), KEY_TAG)));
    }

    #[test]
    fn picture_id_byte_that_looks_like_a_keyframe_tag_is_not_mistaken_for_one() {
        // 15-bit picture id whose second byte is even: if the parser took the 7-bit path it would
        // read that byte as the frame tag.
        let d = descriptor(true, 0, Some(0x0110), false, None);
        assert!(!is_vp8_keyframe(&with_tag(d, INTER_TAG)));
    }

    #[test]
    fn empty_and_truncated_payloads_are_not_keyframes() {
        assert!(!is_vp8_keyframe(&[]));
        let full = with_tag(descriptor(true, 0, Some(0x1234), true, Some(T_BIT | K_BIT)), KEY_TAG);
        let descriptor_len = full.len() - 4;
        for cut in 0..=descriptor_len {
            assert!(!is_vp8_keyframe(&full[..cut]), "cut at {cut}");
        }
        assert!(is_vp8_keyframe(&full[..descriptor_len + 1]));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut state = 0x1234_5678_u32;
        for len in 0..64 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 17;
                    state ^= state << 5;
                    state as u8
                })
                .collect();
            let _ = is_vp8_keyframe(&bytes);
        }
        for b in 0..=255u8 {
            let _ = is_vp8_keyframe(&[b]);
            let _ = is_vp8_keyframe(&[b, b]);
            let _ = is_vp8_keyframe(&[b, b, b]);
        }
    }
}
