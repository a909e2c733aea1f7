//! Lets a subscriber's keyframe requests, bandwidth estimates and NACKs reach the engine.
//!
//! `rtc` hands inbound RTCP to its interceptor chain only; a packet reaches `poll_read` when some
//! interceptor marks it `DeliverToApplication`. An SFU must relay keyframe requests (PLI/FIR) upstream,
//! pace to the browser's estimate (REMB) and answer NACKs from its one history per track, so this
//! interceptor marks exactly those compounds; on a subscribe leg also receiver reports, whose
//! round trips size the tracks' histories.

use std::collections::VecDeque;
use std::time::Instant;

use rtc::interceptor::{Attribute, Interceptor, Packet, StreamInfo, TaggedPacket};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate;
use rtc::rtcp::receiver_report::ReceiverReport;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use rtc::sansio::Protocol;
use rtc::shared::error::Error;

/// Where in the chain it sits: application-ward of the default interceptors, so they act first.
pub const SLOT: usize = 14_000;

pub struct DeliverFeedback {
    wanted: fn(&dyn rtc::rtcp::Packet) -> bool,
    reads: VecDeque<TaggedPacket>,
    writes: VecDeque<TaggedPacket>,
}

impl Default for DeliverFeedback {
    fn default() -> Self {
        DeliverFeedback::of(wanted)
    }
}

impl DeliverFeedback {
    /// Delivers the compounds holding a packet `wanted` picks (a test's peer wants sender reports).
    pub fn of(wanted: fn(&dyn rtc::rtcp::Packet) -> bool) -> Self {
        DeliverFeedback { wanted, reads: VecDeque::new(), writes: VecDeque::new() }
    }

    /// A subscribe leg's: feedback, and receiver reports (their blocks give the round trip to the
    /// subscriber of each stream we sent a sender report on).
    pub fn subscriber() -> Self {
        DeliverFeedback::of(|p| wanted(p) || p.as_any().is::<ReceiverReport>())
    }
}

/// Feedback about one stream: what names a compound (see `handle_read`).
fn wanted(p: &dyn rtc::rtcp::Packet) -> bool {
    let any = p.as_any();
    any.is::<PictureLossIndication>()
        || any.is::<FullIntraRequest>()
        || any.is::<ReceiverEstimatedMaximumBitrate>()
        || any.is::<TransportLayerNack>()
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for DeliverFeedback {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Error> {
        if let Packet::Rtcp(packets) = &mut msg.message.packet
            && packets.iter().any(|p| (self.wanted)(p.as_ref()))
        {
            // `rtc` names a compound's track by the first SSRC of its first packet and drops the
            // compound when it knows none — a browser's receiver report may lead with a block for a
            // stream it no longer gets, or with no block at all. The feedback goes first (a stable
            // sort), so the compound is named by the stream it is about and reaches the engine.
            packets.sort_by_key(|p| !wanted(p.as_ref()));
            msg.message.add(Attribute::DeliverToApplication);
        }
        self.reads.push_back(msg);
        Ok(())
    }
    fn poll_read(&mut self) -> Option<TaggedPacket> {
        self.reads.pop_front()
    }
    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Error> {
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

impl Interceptor for DeliverFeedback {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}
