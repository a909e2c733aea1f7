//! Just enough STUN to demultiplex: the USERNAME of a binding request names the peer connection
//! (`<our ufrag>:<their ufrag>`) before we know the sender's address.

const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];
const ATTR_USERNAME: u16 = 0x0006;

/// True when the datagram looks like STUN (RFC 7983 demultiplexing: first byte 0..=3 plus the cookie).
pub fn is_stun(data: &[u8]) -> bool {
    data.len() >= 20 && data[0] < 4 && data[4..8] == MAGIC_COOKIE
}

/// True for a STUN binding request (method 0x001, class request): what an ICE-TCP connection must
/// open with.
pub fn is_binding_request(data: &[u8]) -> bool {
    is_stun(data) && data[0] == 0x00 && data[1] == 0x01
}

/// Our ufrag from a STUN message's USERNAME attribute (the part before ':'), if any.
pub fn local_ufrag(data: &[u8]) -> Option<&str> {
    if !is_stun(data) {
        return None;
    }
    let body_len = u16::from_be_bytes([data[2], data[3]]) as usize;
    let body = data.get(20..20 + body_len)?;
    let mut at = 0;
    while at + 4 <= body.len() {
        let typ = u16::from_be_bytes([body[at], body[at + 1]]);
        let len = u16::from_be_bytes([body[at + 2], body[at + 3]]) as usize;
        let value = body.get(at + 4..at + 4 + len)?;
        if typ == ATTR_USERNAME {
            let username = std::str::from_utf8(value).ok()?;
            return username.split(':').next();
        }
        at += 4 + len.div_ceil(4) * 4;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding_request(username: &[u8]) -> Vec<u8> {
        let mut attrs = vec![0x00, 0x24, 0x00, 0x04, 1, 2, 3, 4]; // PRIORITY first, like browsers
        attrs.extend_from_slice(&ATTR_USERNAME.to_be_bytes());
        attrs.extend_from_slice(&(username.len() as u16).to_be_bytes());
        attrs.extend_from_slice(username);
        while attrs.len() % 4 != 0 {
            attrs.push(0);
        }
        let mut m = vec![0x00, 0x01];
        m.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
        m.extend_from_slice(&MAGIC_COOKIE);
        m.extend_from_slice(&[7; 12]);
        m.extend_from_slice(&attrs);
        m
    }

    #[test]
    fn finds_our_ufrag_in_a_binding_request() {
        assert_eq!(local_ufrag(&binding_request(b"srvAbc:brw9")), Some("srvAbc"));
    }

    #[test]
    fn rejects_non_stun_and_truncated_input() {
        assert_eq!(local_ufrag(&[0x80; 40]), None); // RTP
        assert_eq!(local_ufrag(&[22; 40]), None); // DTLS
        let mut m = binding_request(b"a:b");
        m.truncate(26);
        assert_eq!(local_ufrag(&m), None);
        assert_eq!(local_ufrag(&[]), None);
    }
}
