//! Transport-wide congestion control feedback (draft-holmer-rmcat-transport-wide-cc-extensions-01):
//! when each packet of a publish connection arrived, by the transport-wide sequence number the
//! publisher stamps on every packet, so that its bandwidth estimator can see queues build up.
//!
//! Every feedback interval the arrivals not yet reported go out in one feedback packet (more if they
//! do not fit one), starting at the first sequence number not yet reported, so that a packet that
//! never came is reported as not received. A packet that arrives after its number was reported is
//! not reported again, unless it is thousands behind: then the publisher numbers anew, and the
//! feedback follows its new numbers.

use std::time::Instant;

use rtc::rtcp::transport_feedbacks::transport_layer_cc::{
    PacketStatusChunk, RecvDelta, RunLengthChunk, StatusChunkTypeTcc, StatusVectorChunk, SymbolSizeTypeTcc,
    SymbolTypeTcc, TransportLayerCc,
};

/// Received packets in one feedback packet at most: with every delta a large one that is 800 bytes
/// of deltas, so a feedback packet stays well under a datagram.
const MAX_RECEIVED_PER_FEEDBACK: usize = 400;
/// The most sequence numbers one feedback packet spans (its status count is 16 bits; a longer gap
/// than this is a restart of the publisher's numbering, not loss worth reporting).
const MAX_SPAN: i64 = 0x7FFE;
/// How far behind what was reported a packet can arrive and still be reordering; further back, the
/// publisher has started numbering anew.
const MAX_REORDER: i64 = 4_096;
/// Arrivals kept between two feedback packets: a publisher sends ≈ 2,000 packets a second at most
/// in a meeting, so this is several intervals' worth; past it the oldest are dropped.
const MAX_PENDING: usize = 4_096;
/// A delta's unit (µs) and a reference time's (µs).
const DELTA_UNIT: i64 = 250;
const REFERENCE_UNIT: i64 = 64_000;

/// The transport-wide sequence numbers seen and when, until the next feedback.
pub(super) struct Recorder {
    /// Our SSRC as this feedback's sender.
    sender_ssrc: u32,
    /// The publisher's SSRC the feedback names (any of its streams: the numbers are the transport's).
    media_ssrc: u32,
    /// Arrival times are counted from here.
    epoch: Instant,
    /// The last sequence number seen, unwrapped to 64 bits.
    last: Option<i64>,
    /// The first sequence number not reported yet.
    next_base: Option<i64>,
    /// (unwrapped sequence number, arrival in µs from `epoch`), in arrival order.
    pending: Vec<(i64, i64)>,
    /// The feedback packets' own count (wraps).
    count: u8,
}

impl Recorder {
    pub(super) fn new(sender_ssrc: u32, epoch: Instant) -> Self {
        Recorder { sender_ssrc, media_ssrc: 0, epoch, last: None, next_base: None, pending: Vec::new(), count: 0 }
    }

    /// A packet of `media_ssrc` carrying transport-wide sequence number `seq` arrived at `at`.
    pub(super) fn record(&mut self, media_ssrc: u32, seq: u16, at: Instant) {
        let seq = self.unwrap(seq);
        if let Some(base) = self.next_base
            && seq < base
        {
            if base - seq <= MAX_REORDER {
                return; // reported already, as not received
            }
            // Far behind: the publisher numbers anew; start over from this packet.
            self.next_base = None;
            self.pending.clear();
        }
        if self.pending.len() == MAX_PENDING {
            self.pending.remove(0);
        }
        self.media_ssrc = media_ssrc;
        let at = i64::try_from(at.saturating_duration_since(self.epoch).as_micros()).unwrap_or(i64::MAX);
        self.pending.push((seq, at));
    }

    fn unwrap(&mut self, seq: u16) -> i64 {
        let unwrapped = match self.last {
            None => i64::from(seq),
            // The shortest way round from the last number: forwards or back by less than half the space.
            Some(last) => last + i64::from(seq.wrapping_sub(last as u16) as i16),
        };
        self.last = Some(unwrapped);
        unwrapped
    }

    /// The feedback packets for what arrived since the last call (none if nothing did).
    pub(super) fn feedback(&mut self) -> Vec<TransportLayerCc> {
        let mut pending = std::mem::take(&mut self.pending);
        pending.sort_unstable_by_key(|&(seq, _)| seq);
        pending.dedup_by_key(|&mut (seq, _)| seq);
        let mut packets = Vec::new();
        let mut rest = &pending[..];
        while let Some(&(first, _)) = rest.first() {
            let base = self.next_base.map_or(first, |b| b.max(first - MAX_SPAN));
            let (packet, used) = self.build(base, rest);
            packets.push(packet);
            self.next_base = Some(rest[used - 1].0 + 1);
            rest = &rest[used..];
        }
        pending.clear();
        self.pending = pending; // keeps its capacity
        packets
    }

    /// One feedback packet from `base` through as many of `arrivals` (sorted, at least one) as fit;
    /// with how many it took.
    fn build(&mut self, base: i64, arrivals: &[(i64, i64)]) -> (TransportLayerCc, usize) {
        let reference = arrivals[0].1.div_euclid(REFERENCE_UNIT);
        let mut clock = reference * REFERENCE_UNIT;
        let mut symbols = Vec::new();
        let mut deltas = Vec::new();
        let mut next = base;
        let mut used = 0;
        for &(seq, at) in arrivals {
            let units = (at - clock + DELTA_UNIT / 2).div_euclid(DELTA_UNIT);
            let fits = i16::try_from(units).is_ok() && seq - base <= MAX_SPAN && used < MAX_RECEIVED_PER_FEEDBACK;
            if !fits && used > 0 {
                break;
            }
            let units = units.clamp(i64::from(i16::MIN), i64::from(i16::MAX));
            symbols.extend((next..seq).map(|_| SymbolTypeTcc::PacketNotReceived));
            let symbol = if (0..=255).contains(&units) {
                SymbolTypeTcc::PacketReceivedSmallDelta
            } else {
                SymbolTypeTcc::PacketReceivedLargeDelta
            };
            symbols.push(symbol);
            deltas.push(RecvDelta { type_tcc_packet: symbol, delta: units * DELTA_UNIT });
            clock += units * DELTA_UNIT;
            next = seq + 1;
            used += 1;
        }
        let packet = TransportLayerCc {
            sender_ssrc: self.sender_ssrc,
            media_ssrc: self.media_ssrc,
            base_sequence_number: base as u16,
            packet_status_count: symbols.len() as u16,
            reference_time: (reference as u32) & 0x00FF_FFFF,
            fb_pkt_count: self.count,
            packet_chunks: chunks(&symbols),
            recv_deltas: deltas,
        };
        self.count = self.count.wrapping_add(1);
        (packet, used)
    }
}

/// The status chunks for `symbols`: a run of one symbol as a run-length chunk when that is as short
/// (seven or more, or the rest), otherwise a status vector of fourteen one-bit symbols if none of
/// them is a large delta, else of seven two-bit ones. The last vector may hold fewer: the status
/// count tells a reader where they end.
fn chunks(symbols: &[SymbolTypeTcc]) -> Vec<PacketStatusChunk> {
    const MAX_RUN: usize = 0x1FFF;
    let mut chunks = Vec::new();
    let mut rest = symbols;
    while let Some(&first) = rest.first() {
        let run = rest.iter().take(MAX_RUN).take_while(|&&s| s == first).count();
        if run >= 7 || run == rest.len() {
            chunks.push(PacketStatusChunk::RunLengthChunk(RunLengthChunk {
                type_tcc: StatusChunkTypeTcc::RunLengthChunk,
                packet_status_symbol: first,
                run_length: run as u16,
            }));
            rest = &rest[run..];
            continue;
        }
        let one_bit = rest.iter().take(14).all(|&s| s != SymbolTypeTcc::PacketReceivedLargeDelta);
        let (size, n) = if one_bit { (SymbolSizeTypeTcc::OneBit, 14) } else { (SymbolSizeTypeTcc::TwoBit, 7) };
        let n = n.min(rest.len());
        chunks.push(PacketStatusChunk::StatusVectorChunk(StatusVectorChunk {
            type_tcc: StatusChunkTypeTcc::StatusVectorChunk,
            symbol_size: size,
            symbol_list: rest[..n].to_vec(),
        }));
        rest = &rest[n..];
    }
    chunks
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rtc::shared::marshal::{Marshal, MarshalSize, Unmarshal};

    use super::*;

    /// What a sender reads back from feedback packets on the wire: each sequence number reported,
    /// and its arrival (µs, on the feedback's clock) or none if reported as not received.
    fn read_back(packets: &[TransportLayerCc]) -> Vec<(u16, Option<i64>)> {
        let mut out = Vec::new();
        for p in packets {
            let wire = p.marshal().expect("marshals");
            let p = TransportLayerCc::unmarshal(&mut wire.as_ref()).expect("parses");
            let mut symbols = Vec::new();
            for chunk in &p.packet_chunks {
                match chunk {
                    PacketStatusChunk::RunLengthChunk(c) => {
                        symbols.extend(std::iter::repeat_n(c.packet_status_symbol, usize::from(c.run_length)))
                    }
                    PacketStatusChunk::StatusVectorChunk(c) => symbols.extend(c.symbol_list.iter().copied()),
                }
            }
            symbols.truncate(usize::from(p.packet_status_count));
            let mut clock = i64::from(p.reference_time) * REFERENCE_UNIT;
            let mut deltas = p.recv_deltas.iter();
            for (i, s) in symbols.iter().enumerate() {
                let seq = p.base_sequence_number.wrapping_add(i as u16);
                if *s == SymbolTypeTcc::PacketNotReceived {
                    out.push((seq, None));
                } else {
                    clock += deltas.next().expect("a delta per received packet").delta;
                    out.push((seq, Some(clock)));
                }
            }
            assert!(deltas.next().is_none(), "no delta left over");
        }
        out
    }

    fn at(epoch: Instant, us: u64) -> Instant {
        epoch + Duration::from_micros(us)
    }

    #[test]
    fn arrivals_and_losses_read_back_as_recorded() {
        let epoch = Instant::now();
        let mut r = Recorder::new(1, epoch);
        // 10 arrive 1 ms apart, 3 are lost, then one comes 100 ms late (a large delta), one out of
        // order (a negative delta), and a run of 20 lost before the last.
        let mut expected = Vec::new();
        for seq in 0u16..10 {
            r.record(7, seq, at(epoch, 70_000 + u64::from(seq) * 1_000));
            expected.push((seq, Some(70_000 + i64::from(seq) * 1_000)));
        }
        expected.extend((10u16..13).map(|s| (s, None)));
        r.record(7, 14, at(epoch, 180_000));
        r.record(7, 13, at(epoch, 181_000));
        expected.push((13, Some(181_000)));
        expected.push((14, Some(180_000)));
        expected.extend((15u16..35).map(|s| (s, None)));
        r.record(7, 35, at(epoch, 182_500));
        expected.push((35, Some(182_500)));
        let packets = r.feedback();
        assert_eq!(packets.len(), 1);
        assert_eq!((packets[0].media_ssrc, packets[0].sender_ssrc, packets[0].base_sequence_number), (7, 1, 0));
        assert_eq!(read_back(&packets), expected);
        assert!(r.feedback().is_empty(), "nothing new, nothing sent");
    }

    #[test]
    fn the_next_feedback_starts_where_the_last_ended_and_a_late_packet_is_not_reported_twice() {
        let epoch = Instant::now();
        let mut r = Recorder::new(1, epoch);
        r.record(7, 65_534, at(epoch, 1_000));
        r.record(7, 65_535, at(epoch, 2_000));
        assert_eq!(read_back(&r.feedback()), [(65_534, Some(1_000)), (65_535, Some(2_000))]);
        // Across the wrap: 0 is lost, 1 arrives; then 0 arrives too late to be told.
        r.record(7, 1, at(epoch, 3_000));
        let second = r.feedback();
        assert_eq!(second[0].fb_pkt_count, 1);
        assert_eq!(read_back(&second), [(0, None), (1, Some(3_000))]);
        r.record(7, 0, at(epoch, 4_000));
        r.record(7, 2, at(epoch, 5_000));
        assert_eq!(read_back(&r.feedback()), [(2, Some(5_000))]);
    }

    #[test]
    fn a_publisher_that_numbers_anew_is_reported_from_its_new_numbers() {
        let epoch = Instant::now();
        let mut r = Recorder::new(1, epoch);
        r.record(7, 20_000, at(epoch, 1_000));
        assert_eq!(read_back(&r.feedback()), [(20_000, Some(1_000))]);
        r.record(7, 100, at(epoch, 2_000));
        r.record(7, 101, at(epoch, 3_000));
        assert_eq!(read_back(&r.feedback()), [(100, Some(2_000)), (101, Some(3_000))]);
    }

    #[test]
    fn many_packets_or_a_long_silence_take_several_feedback_packets() {
        let epoch = Instant::now();
        let mut r = Recorder::new(1, epoch);
        for seq in 0..1_000u16 {
            r.record(7, seq, at(epoch, u64::from(seq) * 100));
        }
        // Nine seconds later: more than a large delta can say.
        r.record(7, 1_000, at(epoch, 9_100_000));
        let packets = r.feedback();
        assert_eq!(packets.len(), 4, "400 + 400 + 200, then the late one");
        let back = read_back(&packets);
        assert_eq!(back.len(), 1_001);
        for (seq, arrival) in &back[..1_000] {
            let sent = i64::from(*seq) * 100;
            assert!(arrival.is_some_and(|a| (a - sent).abs() <= DELTA_UNIT / 2), "{seq}: {arrival:?}");
        }
        assert_eq!(back[1_000], (1_000, Some(9_100_000)));
        for p in &packets {
            assert!(p.marshal_size() < 1_200, "fits a datagram: {}", p.marshal_size());
        }
    }

    #[test]
    fn symbols_take_the_shortest_chunks() {
        use SymbolTypeTcc::*;
        let run = vec![PacketReceivedSmallDelta; 20];
        assert_eq!(chunks(&run).len(), 1);
        let mixed: Vec<_> =
            (0..14).map(|i| if i % 2 == 0 { PacketReceivedSmallDelta } else { PacketNotReceived }).collect();
        assert!(
            matches!(&chunks(&mixed)[..], [PacketStatusChunk::StatusVectorChunk(c)] if c.symbol_size == SymbolSizeTypeTcc::OneBit)
        );
        let mut large = mixed.clone();
        large[3] = PacketReceivedLargeDelta;
        let two_bit = chunks(&large);
        assert_eq!(two_bit.len(), 2);
        assert!(
            matches!(&two_bit[0], PacketStatusChunk::StatusVectorChunk(c) if c.symbol_size == SymbolSizeTypeTcc::TwoBit)
        );
    }
}
