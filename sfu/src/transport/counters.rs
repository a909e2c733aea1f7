//! What the engine counts for metrics, read by [`Sfu::stats`](crate::Sfu::stats) at scrape time.
//!
//! The engine's own counts are plain integers on its thread. NACKs to publishers (written by the
//! engine's feedback chain through `rtc`, `engine/ingress.rs`) and those subscribers send pass
//! `rtc`'s interceptor chain, so one counting interceptor per peer connection adds them to atomics
//! shared with the engine: relaxed adds, no lock and no allocation per packet. The RTX publishers
//! send back is counted where it is restored: by the engine for the streams it opens, here for an
//! RTX stream `rtc` still opens. The engine answers subscribers' NACKs itself (`engine/nack.rs`) and
//! counts what it resends.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use rtc::interceptor::{Interceptor, Packet, StreamInfo, TaggedPacket};
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use rtc::sansio::Protocol;
use rtc::shared::error::Error;

/// Where in the chain it sits: wire-ward of the NACK generator (7_000), so it sees the NACKs
/// it sends leave; application-ward of the pacer (3_000).
pub const SLOT: usize = 3_500;

/// Counted inside the interceptor chains of every peer connection.
#[derive(Debug, Default)]
pub(crate) struct RtcpCounts {
    /// NACK messages from subscribers (each asks for one or more lost packets).
    pub nacks_received: AtomicU64,
    /// NACK messages we sent to publishers.
    pub nacks_sent: AtomicU64,
    /// Retransmissions the engine sent to subscribers, answering their NACKs.
    pub rtx_sent: AtomicU64,
    /// RTX retransmissions publishers sent us (answers to our NACKs).
    pub rtx_received: AtomicU64,
}

fn add(counter: &AtomicU64, n: u64) {
    if n > 0 {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// Counts NACKs and retransmissions of one peer connection into the engine's [`RtcpCounts`].
pub(crate) struct CountFeedback {
    counts: Arc<RtcpCounts>,
    /// The publisher's RTX SSRCs, from the streams `rtc` binds (one per video track, so a scan).
    remote_rtx: Vec<u32>,
    reads: VecDeque<TaggedPacket>,
    writes: VecDeque<TaggedPacket>,
}

impl CountFeedback {
    pub(crate) fn new(counts: Arc<RtcpCounts>) -> Self {
        CountFeedback { counts, remote_rtx: Vec::new(), reads: VecDeque::new(), writes: VecDeque::new() }
    }
}

fn nacks(packets: &[Box<dyn rtc::rtcp::Packet>]) -> u64 {
    packets.iter().filter(|p| p.as_any().is::<TransportLayerNack>()).count() as u64
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for CountFeedback {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, msg: TaggedPacket) -> Result<(), Error> {
        match &msg.message.packet {
            Packet::Rtcp(packets) => add(&self.counts.nacks_received, nacks(packets)),
            Packet::Rtp(p) if self.remote_rtx.contains(&p.header.ssrc) => add(&self.counts.rtx_received, 1),
            _ => {}
        }
        self.reads.push_back(msg);
        Ok(())
    }
    fn poll_read(&mut self) -> Option<TaggedPacket> {
        self.reads.pop_front()
    }
    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Error> {
        if let Packet::Rtcp(packets) = &msg.message.packet {
            add(&self.counts.nacks_sent, nacks(packets));
        }
        self.writes.push_back(msg);
        Ok(())
    }
    fn poll_write(&mut self) -> Option<TaggedPacket> {
        self.writes.pop_front()
    }
    fn handle_timeout(&mut self, _now: Instant) -> Result<(), Error> {
        Ok(())
    }
    fn poll_timeout(&mut self) -> Option<Instant> {
        None
    }
}

impl Interceptor for CountFeedback {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, info: &StreamInfo) {
        if let Some(rtx) = info.ssrc_rtx.filter(|s| !self.remote_rtx.contains(s)) {
            self.remote_rtx.push(rtx);
        }
    }
    fn unbind_remote_stream(&mut self, info: &StreamInfo) {
        if let Some(rtx) = info.ssrc_rtx {
            self.remote_rtx.retain(|&s| s != rtx);
        }
    }
}
