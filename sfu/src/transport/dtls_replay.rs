//! Repeats our DTLS server flight (ServerHello … ServerHelloDone) when the browser shows it did not
//! arrive. Works around `rtc_dtls` 0.21.1: its server clears the flight's retransmission timer on
//! every handshake record it receives and re-arms it only when the flight advances, so once
//! that flight is lost, the browser's repeated ClientHello (RFC 6347 §4.2.4: "resend yours") cancels
//! the timer and nothing is ever resent. The peer connection then stays «connecting» for good: no
//! media at all on that leg (issue 11: one participant saw none of the other's video under loss).
//!
//! Pure: the engine shows it every datagram sent before the connection is up ([`FlightReplay::sent`])
//! and every datagram received ([`FlightReplay::received`]), and sends [`FlightReplay::flight`]
//! again when told. The records are resent verbatim: the browser's replay window drops the records
//! it already has and accepts the ones that were lost.
//!
//! The same two views time the connection's first round trip: from our flight to the browser's
//! next one (its certificate and key exchange), which it can only send once ours arrived. That is
//! the round trip plus the browser's few milliseconds of handshake crypto, known before any media
//! flows — a second or two before its first receiver report tells it (see `forward::history`).

use std::time::{Duration, Instant};

use bytes::BytesMut;

const RECORD_HEADER: usize = 13;
const CONTENT_HANDSHAKE: u8 = 22;
const CLIENT_HELLO: u8 = 1;
const SERVER_HELLO: u8 = 2;
const CERTIFICATE: u8 = 11;
const CLIENT_KEY_EXCHANGE: u8 = 16;
/// More datagrams than any server flight needs; bounds what a misbehaving peer can make us keep.
const MAX_FLIGHT_DATAGRAMS: usize = 8;

/// The last server flight sent on one connection, until it is up.
#[derive(Debug, Default)]
pub struct FlightReplay {
    flight: Vec<BytesMut>,
    /// When the flight went out, while the browser's answer to it is awaited; `None` once it was
    /// sent twice (its answer could be to either: Karn's rule) or answered.
    sent_at: Option<Instant>,
    round_trip: Option<Duration>,
}

impl FlightReplay {
    /// An outgoing datagram. A plaintext handshake datagram starting with ServerHello begins a new
    /// flight; the plaintext handshake datagrams after it (certificate, key exchange, …) belong to it.
    pub fn sent(&mut self, datagram: &BytesMut, now: Instant) {
        let Some(first) = first_epoch0_handshake(datagram) else { return };
        if first == SERVER_HELLO {
            // A ServerHello while a flight is out: `rtc` resent it, and the answer may be to either.
            self.sent_at = if self.flight.is_empty() { Some(now) } else { None };
            self.flight.clear();
        } else if self.flight.is_empty() {
            return; // HelloVerifyRequest: rtc answers a repeated ClientHello without a cookie itself
        }
        if self.flight.len() < MAX_FLIGHT_DATAGRAMS {
            self.flight.push(datagram.clone());
        }
    }

    /// An incoming datagram: true if it repeats the ClientHello our flight answered, i.e. the
    /// browser is still waiting for that flight (the engine then sends it again). The browser's
    /// next flight times the round trip, unless ours went out twice.
    pub fn received(&mut self, datagram: &[u8], now: Instant) -> bool {
        if self.flight.is_empty() {
            return false;
        }
        let mut types = handshake_types(datagram);
        match types.next() {
            Some(CERTIFICATE | CLIENT_KEY_EXCHANGE) => {
                if let Some(at) = self.sent_at.take() {
                    self.round_trip = Some(now.saturating_duration_since(at));
                }
                false
            }
            Some(first) if first == CLIENT_HELLO || types.any(|t| t == CLIENT_HELLO) => {
                self.sent_at = None;
                true
            }
            _ => false,
        }
    }

    /// Our flight → the browser's next flight, if timed.
    pub fn round_trip(&self) -> Option<Duration> {
        self.round_trip
    }

    /// The datagrams to send again.
    pub fn flight(&self) -> &[BytesMut] {
        &self.flight
    }
}

/// The handshake message type of the first record, if the datagram is plaintext (epoch 0) DTLS
/// handshake; `None` for everything else (STUN, SRTP, encrypted records).
fn first_epoch0_handshake(datagram: &[u8]) -> Option<u8> {
    handshake_types(datagram).next()
}

/// Handshake message types of the plaintext (epoch 0) handshake records in a datagram, in order;
/// stops at the first record that is not one, or is truncated.
fn handshake_types(datagram: &[u8]) -> impl Iterator<Item = u8> + '_ {
    let mut rest = datagram;
    std::iter::from_fn(move || {
        let header = rest.get(..RECORD_HEADER)?;
        let epoch = u16::from_be_bytes([header[3], header[4]]);
        if header[0] != CONTENT_HANDSHAKE || epoch != 0 {
            return None;
        }
        let len = usize::from(u16::from_be_bytes([header[11], header[12]]));
        let body = rest.get(RECORD_HEADER..RECORD_HEADER + len)?;
        rest = &rest[RECORD_HEADER + len..];
        body.first().copied()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One DTLS record: `content` type, `epoch`, a body starting with handshake type `msg`.
    fn record(content: u8, epoch: u16, msg: u8, body_len: usize) -> Vec<u8> {
        let mut r = vec![content, 0xfe, 0xfd];
        r.extend_from_slice(&epoch.to_be_bytes());
        r.extend_from_slice(&[0, 0, 0, 0, 0, 1]);
        r.extend_from_slice(&(body_len as u16).to_be_bytes());
        let mut body = vec![0u8; body_len];
        body[0] = msg;
        r.extend_from_slice(&body);
        r
    }

    fn datagram(records: &[Vec<u8>]) -> BytesMut {
        BytesMut::from(&records.concat()[..])
    }

    const HELLO_VERIFY: u8 = 3;
    const SERVER_HELLO_DONE: u8 = 14;
    const FINISHED: u8 = 20;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_repeated_client_hello_gets_the_whole_server_flight_again() {
        let (mut r, t0) = (FlightReplay::default(), Instant::now());
        let hello = datagram(&[record(22, 0, CLIENT_HELLO, 100)]);
        assert!(!r.received(&hello, t0), "nothing sent yet: rtc answers the first ClientHello");
        r.sent(&datagram(&[record(22, 0, HELLO_VERIFY, 20)]), t0);
        assert!(!r.received(&hello, t0), "a HelloVerifyRequest is rtc's to repeat");
        let part1 = datagram(&[record(22, 0, SERVER_HELLO, 80), record(22, 0, CERTIFICATE, 400)]);
        let part2 = datagram(&[record(22, 0, 12, 100), record(22, 0, 13, 30), record(22, 0, SERVER_HELLO_DONE, 12)]);
        r.sent(&part1, t0);
        r.sent(&part2, t0);
        r.sent(&BytesMut::from(&[0x80u8, 96, 0, 1][..]), t0); // SRTP: not part of it
        assert!(r.received(&hello, t0 + ms(500)));
        assert_eq!(r.flight(), &[part1, part2]);
    }

    #[test]
    fn the_clients_next_flight_or_other_traffic_asks_for_nothing() {
        let (mut r, t0) = (FlightReplay::default(), Instant::now());
        r.sent(&datagram(&[record(22, 0, SERVER_HELLO, 80), record(22, 0, SERVER_HELLO_DONE, 12)]), t0);
        // Certificate, ClientKeyExchange, … then ChangeCipherSpec and an encrypted Finished.
        let flight5 = datagram(&[record(22, 0, CERTIFICATE, 300), record(22, 0, 16, 70), record(20, 0, 1, 1)]);
        assert!(!r.received(&flight5, t0));
        assert!(!r.received(&datagram(&[record(22, 1, CLIENT_HELLO, 40)]), t0), "encrypted: not a ClientHello");
        assert!(!r.received(&[0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42], t0), "STUN");
        assert!(!r.received(&datagram(&[record(22, 0, FINISHED, 10)]), t0));
    }

    #[test]
    fn a_new_server_hello_starts_a_new_flight_and_truncated_records_are_ignored() {
        let (mut r, t0) = (FlightReplay::default(), Instant::now());
        r.sent(&datagram(&[record(22, 0, SERVER_HELLO, 80)]), t0);
        let again = datagram(&[record(22, 0, SERVER_HELLO, 81)]);
        r.sent(&again, t0);
        assert_eq!(r.flight(), &[again]);
        let mut cut = record(22, 0, CLIENT_HELLO, 100);
        cut.truncate(60);
        assert!(!r.received(&cut, t0));
        assert!(!r.received(&[22, 0xfe], t0));
        for _ in 0..20 {
            r.sent(&datagram(&[record(22, 0, CERTIFICATE, 10)]), t0);
        }
        assert_eq!(r.flight().len(), MAX_FLIGHT_DATAGRAMS);
    }

    #[test]
    fn the_browsers_answer_to_our_flight_times_the_round_trip() {
        let (mut r, t0) = (FlightReplay::default(), Instant::now());
        let hello = datagram(&[record(22, 0, CLIENT_HELLO, 100)]);
        r.received(&hello, t0);
        r.sent(&datagram(&[record(22, 0, HELLO_VERIFY, 20)]), t0);
        assert_eq!(r.round_trip(), None);
        r.sent(&datagram(&[record(22, 0, SERVER_HELLO, 80), record(22, 0, CERTIFICATE, 400)]), t0 + ms(10));
        r.sent(&datagram(&[record(22, 0, SERVER_HELLO_DONE, 12)]), t0 + ms(11));
        // Its certificate, then key exchange and the rest in a second datagram.
        r.received(&datagram(&[record(22, 0, CERTIFICATE, 300)]), t0 + ms(52));
        r.received(&datagram(&[record(22, 0, CLIENT_KEY_EXCHANGE, 70)]), t0 + ms(53));
        assert_eq!(r.round_trip(), Some(ms(42)), "from the flight's first datagram to the answer's");
    }

    #[test]
    fn a_flight_sent_twice_times_nothing() {
        // The browser repeated its ClientHello: we send the flight again, and its answer could be
        // to either (Karn's rule).
        let (mut r, t0) = (FlightReplay::default(), Instant::now());
        r.sent(&datagram(&[record(22, 0, SERVER_HELLO, 80)]), t0);
        assert!(r.received(&datagram(&[record(22, 0, CLIENT_HELLO, 100)]), t0 + ms(1000)));
        r.received(&datagram(&[record(22, 0, CERTIFICATE, 300)]), t0 + ms(1030));
        assert_eq!(r.round_trip(), None);
        // `rtc` resent it on its own timer: a second ServerHello while the first is unanswered.
        let (mut r, t0) = (FlightReplay::default(), Instant::now());
        r.sent(&datagram(&[record(22, 0, SERVER_HELLO, 80)]), t0);
        r.sent(&datagram(&[record(22, 0, SERVER_HELLO, 80)]), t0 + ms(1000));
        r.received(&datagram(&[record(22, 0, CERTIFICATE, 300)]), t0 + ms(1030));
        assert_eq!(r.round_trip(), None);
    }
}
