//! The feedback a publisher needs about what it sends, made by the engine from the packets it
//! routes: a receiver report each second (RFC 3550 §6.4.2: loss, jitter, and the fields from
//! which the publisher reckons the round trip), NACKs for a video stream's gaps (RFC 4585 §6.2.1:
//! at the end of the wake-up that saw the gap, as browsers do, then again once a round trip has
//! passed without the packet, at a feedback tick), and
//! transport-wide congestion control feedback ([`twcc`](super::twcc)) every 100 ms.
//!
//! `rtc_interceptor` has the three as interceptors; chained, they moved every received packet
//! through four queues and a boxed message, with a SipHash lookup in each: 7 % of the media thread
//! in the office scenario. Here a packet is looked at where it lies, after one short search.

use std::time::{Duration, Instant};

use rtc::rtcp;
use rtc::rtcp::receiver_report::ReceiverReport;
use rtc::rtcp::reception_report::ReceptionReport;
use rtc::rtcp::sender_report::SenderReport;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::{TransportLayerNack, nack_pairs_from_sequence_numbers};
use rtc::rtp;

use super::twcc;

/// How often a receiver report goes out (what browsers do for a small session).
const REPORT_INTERVAL: Duration = Duration::from_secs(1);
/// How often transport-cc feedback goes out, and lost packets are asked for again.
const TICK: Duration = Duration::from_millis(100);
/// How long a lost packet is not asked for again (its retransmission may be on its way) while the
/// connection's round trip is not known, and at least.
const ASK_AGAIN_AFTER: Duration = TICK;
/// How many times a lost packet is asked for: about the second a browser keeps to resend.
const MAX_ASKS: u8 = 10;
/// A gap wider than this is a jump in the numbering (or a long outage), not loss to repair.
const MAX_GAP: u16 = 512;
/// Missing packets tracked per stream at most; the oldest go first.
const MAX_MISSING: usize = 512;

/// What the engine tells one publish connection about what it received.
pub(super) struct Feedback {
    /// Our SSRC as the sender of these reports.
    ssrc: u32,
    streams: Vec<Received>,
    /// The transport-cc header extension's id, once a stream with it is opened.
    twcc_id: Option<u8>,
    twcc: Option<twcc::Recorder>,
    /// Arrival times for jitter are counted from the first packet.
    epoch: Option<Instant>,
    next_report: Option<Instant>,
    next_tick: Option<Instant>,
    /// Set when a packet opened a new gap: its NACK goes out without waiting for the tick.
    nack_now: Option<Instant>,
    /// How long a lost packet is not asked for again: the connection's round trip, at least
    /// [`ASK_AGAIN_AFTER`].
    ask_again_after: Duration,
}

/// One opened media stream's reception (not an RTX stream: its packets count as their primary's).
struct Received {
    ssrc: u32,
    clock_rate: u32,
    /// Video asks for what it lost; audio does not (Opus conceals it).
    gaps: Option<Gaps>,
    /// RFC 3550 A.1/A.3: the first sequence number, the highest, its wraps, what arrived.
    first: Option<u16>,
    highest: u16,
    cycles: u32,
    received: u32,
    expected_prior: u32,
    received_prior: u32,
    /// RFC 3550 A.8: the last relative transit time, in the clock's units, and the jitter estimate.
    transit: Option<i32>,
    jitter: f64,
    /// The middle 32 bits of the last sender report's NTP time, and when it came.
    last_sr: Option<(u32, Instant)>,
}

/// A video stream's missing packets, to be asked for (oldest first).
#[derive(Default)]
struct Gaps {
    missing: Vec<Missing>,
}

struct Missing {
    seq: u16,
    asks: u8,
    last_asked: Option<Instant>,
}

impl Gaps {
    /// `seq` arrived, `ahead` of the stream's highest number until then (as a wrapping
    /// difference: 0 for the first packet or a duplicate, ≥ 0x8000 for a late one); `true` if it
    /// opened a gap.
    fn arrived(&mut self, seq: u16, highest: u16, ahead: u16) -> bool {
        if ahead >= 0x8000 {
            if let Some(i) = self.missing.iter().position(|m| m.seq == seq) {
                self.missing.remove(i);
            }
            return false;
        }
        if ahead > MAX_GAP {
            self.missing.clear();
            return false;
        }
        let gap = (1..ahead).map(|i| Missing { seq: highest.wrapping_add(i), asks: 0, last_asked: None });
        self.missing.extend(gap);
        if self.missing.len() > MAX_MISSING {
            self.missing.drain(..self.missing.len() - MAX_MISSING);
        }
        ahead > 1
    }

    /// The sequence numbers to ask for at `now`: those never asked for, and those last asked for
    /// `again` ago or longer; each is asked for [`MAX_ASKS`] times at most.
    fn ask(&mut self, now: Instant, again: Duration) -> Vec<u16> {
        let mut asked = Vec::new();
        for m in &mut self.missing {
            if m.last_asked.is_none_or(|t| now >= t + again) {
                m.asks += 1;
                m.last_asked = Some(now);
                asked.push(m.seq);
            }
        }
        self.missing.retain(|m| m.asks < MAX_ASKS);
        asked
    }
}

impl Received {
    fn new(ssrc: u32, clock_rate: u32, nack: bool) -> Self {
        Received {
            ssrc,
            clock_rate,
            gaps: nack.then(Gaps::default),
            first: None,
            highest: 0,
            cycles: 0,
            received: 0,
            expected_prior: 0,
            received_prior: 0,
            transit: None,
            jitter: 0.0,
            last_sr: None,
        }
    }

    /// `true` if the packet opened a gap to ask for.
    fn arrived(&mut self, packet: &rtp::Packet, since_epoch: Duration, retransmitted: bool) -> bool {
        let seq = packet.header.sequence_number;
        self.received = self.received.wrapping_add(1);
        if self.first.is_none() {
            self.first = Some(seq);
            self.highest = seq;
        }
        let ahead = seq.wrapping_sub(self.highest);
        let opened = self.gaps.as_mut().is_some_and(|g| g.arrived(seq, self.highest, ahead));
        if ahead != 0 && ahead < 0x8000 {
            if seq < self.highest {
                self.cycles = self.cycles.wrapping_add(1 << 16);
            }
            self.highest = seq;
        }
        // A retransmission left when the original should have: its transit says nothing of jitter.
        if !retransmitted {
            let arrival = (since_epoch.as_secs_f64() * f64::from(self.clock_rate)) as u64 as u32;
            let transit = arrival.wrapping_sub(packet.header.timestamp) as i32;
            if let Some(last) = self.transit {
                let d = f64::from(transit.wrapping_sub(last)).abs();
                self.jitter += (d - self.jitter) / 16.0;
            }
            self.transit = Some(transit);
        }
        opened
    }

    /// This interval's reception report block (RFC 3550 A.3), `None` before the first packet.
    fn report(&mut self, now: Instant) -> Option<ReceptionReport> {
        let first = self.first?;
        let extended_highest = self.cycles | u32::from(self.highest);
        let expected = extended_highest.wrapping_sub(u32::from(first)).wrapping_add(1);
        let lost = i64::from(expected) - i64::from(self.received);
        let expected_interval = expected.wrapping_sub(self.expected_prior);
        let received_interval = self.received.wrapping_sub(self.received_prior);
        self.expected_prior = expected;
        self.received_prior = self.received;
        let lost_interval = i64::from(expected_interval) - i64::from(received_interval);
        let fraction_lost = if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval << 8) / i64::from(expected_interval)).min(255) as u8
        };
        let (last_sender_report, delay) = match self.last_sr {
            // DLSR in units of 1/65536 s.
            Some((lsr, at)) => (lsr, (now.saturating_duration_since(at).as_secs_f64() * 65_536.0) as u32),
            None => (0, 0),
        };
        Some(ReceptionReport {
            ssrc: self.ssrc,
            fraction_lost,
            total_lost: lost.clamp(0, 0x7F_FFFF) as u32,
            last_sequence_number: extended_highest,
            jitter: self.jitter as u32,
            last_sender_report,
            delay,
        })
    }
}

impl Feedback {
    pub(super) fn new() -> Self {
        Feedback {
            ssrc: rand::random(),
            streams: Vec::new(),
            twcc_id: None,
            twcc: None,
            epoch: None,
            next_report: None,
            next_tick: None,
            nack_now: None,
            ask_again_after: ASK_AGAIN_AFTER,
        }
    }

    /// A media stream to report on (`nack`: its losses are asked for), and the transport-cc
    /// extension's id if the connection negotiated it.
    pub(super) fn open(&mut self, ssrc: u32, clock_rate: u32, nack: bool, twcc_id: Option<u8>) {
        self.close(ssrc);
        self.streams.push(Received::new(ssrc, clock_rate, nack));
        if twcc_id.is_some() {
            self.twcc_id = twcc_id;
        }
    }

    /// The connection's round trip (its DTLS handshake's): a lost packet is asked for again only
    /// once a retransmission would have been back.
    pub(super) fn set_round_trip(&mut self, rtt: Duration) {
        self.ask_again_after = rtt.max(ASK_AGAIN_AFTER);
    }

    pub(super) fn close(&mut self, ssrc: u32) {
        self.streams.retain(|s| s.ssrc != ssrc);
    }

    /// A packet arrived at `at`: as sent on its stream (an RTX packet restored to its primary's
    /// SSRC and number, `retransmitted`), or a packet of no opened stream (an RTX padding probe),
    /// which only transport-cc counts.
    pub(super) fn arrived(&mut self, packet: &rtp::Packet, retransmitted: bool, at: Instant) {
        if let Some(id) = self.twcc_id
            && let Some(ext) = packet.header.get_extension(id)
            && let Some(&[hi, lo]) = ext.get(..2)
        {
            let ssrc = self.ssrc;
            let recorder = self.twcc.get_or_insert_with(|| twcc::Recorder::new(ssrc, at));
            recorder.record(packet.header.ssrc, u16::from_be_bytes([hi, lo]), at);
        }
        let epoch = *self.epoch.get_or_insert(at);
        let Some(stream) = self.streams.iter_mut().find(|s| s.ssrc == packet.header.ssrc) else { return };
        if stream.arrived(packet, at.saturating_duration_since(epoch), retransmitted) {
            self.nack_now.get_or_insert(at);
        }
        self.next_report.get_or_insert(at + REPORT_INTERVAL);
        self.next_tick.get_or_insert(at + TICK);
    }

    /// The publisher's RTCP: a sender report gives the next receiver report its round-trip fields.
    pub(super) fn rtcp_in(&mut self, packets: &[Box<dyn rtcp::Packet>], at: Instant) {
        for sr in packets.iter().filter_map(|p| p.as_any().downcast_ref::<SenderReport>()) {
            if let Some(stream) = self.streams.iter_mut().find(|s| s.ssrc == sr.ssrc) {
                stream.last_sr = Some(((sr.ntp_time >> 16) as u32, at));
            }
        }
    }

    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        [self.next_report, self.next_tick, self.nack_now].into_iter().flatten().min()
    }

    /// What is due at `now`, each entry one RTCP datagram's worth.
    pub(super) fn due(&mut self, now: Instant) -> Vec<Vec<Box<dyn rtcp::Packet>>> {
        let mut out: Vec<Vec<Box<dyn rtcp::Packet>>> = Vec::new();
        if self.next_report.is_some_and(|t| now >= t) {
            self.next_report = Some(now + REPORT_INTERVAL);
            let reports: Vec<ReceptionReport> = self.streams.iter_mut().filter_map(|s| s.report(now)).collect();
            if !reports.is_empty() {
                out.push(vec![Box::new(ReceiverReport { ssrc: self.ssrc, reports, ..Default::default() })]);
            }
        }
        let tick = self.next_tick.is_some_and(|t| now >= t);
        if tick || self.nack_now.is_some_and(|t| now >= t) {
            self.nack_now = None;
            for stream in &mut self.streams {
                let Some(gaps) = &mut stream.gaps else { continue };
                let asked = gaps.ask(now, self.ask_again_after);
                if !asked.is_empty() {
                    let nacks = nack_pairs_from_sequence_numbers(&asked);
                    out.push(vec![Box::new(TransportLayerNack {
                        sender_ssrc: self.ssrc,
                        media_ssrc: stream.ssrc,
                        nacks,
                    })]);
                }
            }
        }
        if tick {
            self.next_tick = Some(now + TICK);
            if let Some(recorder) = &mut self.twcc {
                out.extend(recorder.feedback().into_iter().map(|p| vec![Box::new(p) as Box<dyn rtcp::Packet>]));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use rtc::rtcp::transport_feedbacks::transport_layer_cc::TransportLayerCc;
    use rtc::shared::marshal::{Marshal, Unmarshal};

    use super::*;

    const VIDEO: u32 = 1111;
    const AUDIO: u32 = 2222;
    const TWCC_ID: u8 = 3;

    fn packet(ssrc: u32, seq: u16, timestamp: u32, twcc: Option<u16>) -> rtp::Packet {
        let mut p = rtp::Packet::default();
        p.header.ssrc = ssrc;
        p.header.sequence_number = seq;
        p.header.timestamp = timestamp;
        if let Some(t) = twcc {
            p.header.set_extension(TWCC_ID, bytes::Bytes::copy_from_slice(&t.to_be_bytes())).expect("extension set");
        }
        p
    }

    /// Every packet that went out, as the publisher would parse it off the wire.
    fn sent(fb: &mut Feedback, now: Instant) -> Vec<Box<dyn rtcp::Packet>> {
        let mut out = Vec::new();
        for datagram in fb.due(now) {
            let wire = rtcp::packet::marshal(&datagram).expect("marshals");
            out.extend(rtcp::packet::unmarshal(&mut wire.as_ref()).expect("parses"));
        }
        out
    }

    fn video_and_audio() -> Feedback {
        let mut fb = Feedback::new();
        fb.open(VIDEO, 90_000, true, None);
        fb.open(AUDIO, 48_000, false, None);
        fb
    }

    fn of<T: 'static>(packets: &[Box<dyn rtcp::Packet>]) -> Vec<&T> {
        packets.iter().filter_map(|p| p.as_any().downcast_ref::<T>()).collect()
    }

    #[test]
    fn a_video_gap_is_asked_for_until_it_arrives_and_audio_is_not() {
        let t0 = Instant::now();
        let mut fb = video_and_audio();
        for seq in [10u16, 11, 14, 15] {
            fb.arrived(&packet(VIDEO, seq, 0, None), false, t0);
        }
        fb.arrived(&packet(AUDIO, 1, 0, None), false, t0);
        fb.arrived(&packet(AUDIO, 3, 0, None), false, t0);
        assert_eq!(fb.poll_timeout(), Some(t0), "a gap is asked for at once");
        let first = sent(&mut fb, t0);
        let nacks = of::<TransportLayerNack>(&first);
        assert_eq!(nacks.len(), 1, "one NACK, for the video");
        assert_eq!((nacks[0].media_ssrc, nacks[0].sender_ssrc), (VIDEO, fb.ssrc));
        let asked: Vec<u16> = nacks[0].nacks.iter().flat_map(|p| p.packet_list()).collect();
        assert_eq!(asked, [12, 13]);
        assert!(first.iter().all(|p| p.as_any().is::<TransportLayerNack>()), "nothing else is due yet");
        // Not asked for again before the retransmission could be back.
        assert_eq!(fb.poll_timeout(), Some(t0 + TICK));
        fb.arrived(&packet(VIDEO, 17, 0, None), false, t0 + TICK / 2);
        let second = sent(&mut fb, t0 + TICK / 2);
        let asked: Vec<u16> = of::<TransportLayerNack>(&second)
            .iter()
            .flat_map(|n| n.nacks.iter().flat_map(|p| p.packet_list()))
            .collect();
        assert_eq!(asked, [16], "only the new gap");
        // 12 and 16 are repaired; 13 is asked for again, ten times in all, one tick apart.
        fb.arrived(&packet(VIDEO, 12, 0, None), true, t0 + TICK / 2);
        fb.arrived(&packet(VIDEO, 16, 0, None), true, t0 + TICK / 2);
        let mut times = 1;
        let mut at = t0;
        loop {
            at += TICK;
            let nacks = sent(&mut fb, at);
            let nacks = of::<TransportLayerNack>(&nacks);
            if nacks.is_empty() {
                break;
            }
            assert_eq!(nacks[0].nacks.iter().flat_map(|p| p.packet_list()).collect::<Vec<_>>(), [13]);
            times += 1;
        }
        assert_eq!(times, MAX_ASKS);
    }

    #[test]
    fn over_a_long_round_trip_a_lost_packet_is_asked_for_again_only_once_it_has_passed() {
        let t0 = Instant::now();
        let mut fb = video_and_audio();
        fb.set_round_trip(Duration::from_millis(250));
        fb.arrived(&packet(VIDEO, 1, 0, None), false, t0);
        fb.arrived(&packet(VIDEO, 3, 0, None), false, t0);
        let asks: Vec<u64> = (0..=6u32)
            .filter(|&i| !of::<TransportLayerNack>(&sent(&mut fb, t0 + TICK * i)).is_empty())
            .map(|i| u64::from(i) * 100)
            .collect();
        assert_eq!(asks, [0, 300, 600], "asked at once, then at the first tick a round trip later");
    }

    #[test]
    fn a_jump_in_numbering_is_not_loss_to_repair() {
        let t0 = Instant::now();
        let mut fb = Feedback::new();
        fb.open(VIDEO, 90_000, true, None);
        fb.arrived(&packet(VIDEO, 100, 0, None), false, t0);
        fb.arrived(&packet(VIDEO, 100 + MAX_GAP + 1, 0, None), false, t0);
        assert!(of::<TransportLayerNack>(&sent(&mut fb, t0 + TICK)).is_empty());
    }

    #[test]
    fn the_receiver_report_says_what_was_lost_the_jitter_and_the_round_trip_fields() {
        let t0 = Instant::now();
        let mut fb = video_and_audio();
        // Video: 65,530 … 65,535, 0 … 9 across the wrap, with 3 and 4 lost; 30 fps sent steadily
        // but every other frame 2 ms late.
        for (i, seq) in (65_530u16..=65_535).chain(0..10).enumerate().filter(|&(_, s)| s != 3 && s != 4) {
            let late = if i % 2 == 1 { Duration::from_millis(2) } else { Duration::ZERO };
            let at = t0 + Duration::from_millis(33) * i as u32 + late;
            fb.arrived(&packet(VIDEO, seq, 3_000 * i as u32, None), false, at);
        }
        fb.arrived(&packet(AUDIO, 7, 0, None), false, t0);
        let sr = SenderReport { ssrc: VIDEO, ntp_time: 0x0123_4567_89ab_cdef, ..Default::default() };
        fb.rtcp_in(&[Box::new(sr)], t0 + Duration::from_millis(500));
        let sent = sent(&mut fb, t0 + REPORT_INTERVAL);
        let rr = of::<ReceiverReport>(&sent);
        assert_eq!(rr.len(), 1, "one report for both streams");
        assert_eq!(rr[0].ssrc, fb.ssrc);
        let video = rr[0].reports.iter().find(|r| r.ssrc == VIDEO).expect("video reported");
        assert_eq!(video.last_sequence_number, (1 << 16) | 9, "one wrap, highest 9");
        assert_eq!((video.total_lost, video.fraction_lost), (2, (2 * 256 / 16) as u8));
        assert_eq!(video.last_sender_report, 0x4567_89ab);
        assert_eq!(video.delay, 32_768, "half a second, in 1/65,536 s");
        // 2 ms at 90 kHz is 180 units; the estimate climbs towards it.
        assert!((60..180).contains(&video.jitter), "jitter {}", video.jitter);
        let audio = rr[0].reports.iter().find(|r| r.ssrc == AUDIO).expect("audio reported");
        assert_eq!((audio.total_lost, audio.last_sequence_number, audio.last_sender_report), (0, 7, 0));
        // The next interval: nothing more lost.
        fb.arrived(&packet(VIDEO, 10, 3_000 * 16, None), false, t0 + Duration::from_millis(1_100));
        let next = self::sent(&mut fb, t0 + REPORT_INTERVAL * 2);
        let video = of::<ReceiverReport>(&next)[0].reports.iter().find(|r| r.ssrc == VIDEO).cloned().expect("video");
        assert_eq!((video.total_lost, video.fraction_lost), (2, 0));
    }

    #[test]
    fn transport_cc_counts_every_packet_of_the_connection_probes_too() {
        let t0 = Instant::now();
        let mut fb = Feedback::new();
        fb.open(VIDEO, 90_000, true, Some(TWCC_ID));
        fb.arrived(&packet(VIDEO, 1, 0, Some(500)), false, t0);
        // An RTX padding probe: no opened stream, but numbered by the transport.
        fb.arrived(&packet(4444, 1, 0, Some(501)), true, t0 + Duration::from_millis(5));
        fb.arrived(&packet(VIDEO, 2, 0, Some(503)), false, t0 + Duration::from_millis(10));
        // A malformed extension (one byte, not two) names no number: the packet still counts for
        // its stream, and transport-cc skips it.
        let mut short = packet(VIDEO, 3, 0, None);
        short.header.set_extension(TWCC_ID, bytes::Bytes::from_static(&[7])).expect("extension set");
        fb.arrived(&short, false, t0 + Duration::from_millis(12));
        let sent = sent(&mut fb, t0 + TICK);
        let cc = of::<TransportLayerCc>(&sent);
        assert_eq!(cc.len(), 1);
        assert_eq!((cc[0].base_sequence_number, cc[0].packet_status_count), (500, 4));
        assert_eq!(cc[0].recv_deltas.iter().map(|d| d.delta).collect::<Vec<_>>(), [0, 5_000, 5_000]);
        // The wire form a publisher reads is the one `rtc` parses back.
        let wire = cc[0].marshal().expect("marshals");
        assert_eq!(&TransportLayerCc::unmarshal(&mut wire.as_ref()).expect("parses"), cc[0]);
    }

    #[test]
    fn nothing_is_due_before_the_first_packet() {
        let mut fb = Feedback::new();
        fb.open(VIDEO, 90_000, true, Some(TWCC_ID));
        assert_eq!(fb.poll_timeout(), None);
        assert!(fb.due(Instant::now() + REPORT_INTERVAL).is_empty());
    }
}
