//! The media engine: every peer connection, behind one address.
//!
//! The engine is sans-IO, as `quinn-proto` and `str0m` are: it owns no socket and reads no clock. A
//! driver ([`driver`](crate::transport::driver)) hands it commands ([`Engine::command`]), datagrams
//! ([`Engine::datagram`]) and expired timers ([`Engine::timeouts`]), each with `now`; after each wake-up
//! it calls [`Engine::flush`]: peers that got input are polled for events, media and outgoing datagrams
//! (only those peers: a set of dirty peers, not a scan), subscriber queues are drained — protected and
//! sent by the engine itself once DTLS is up (`egress`), without polling that connection — and
//! everything outgoing lands in [`Engine::transmits`], which the driver empties (in
//! `sendmmsg` batches for the UDP one). It then sleeps until [`Engine::next_deadline`]. Timers live in
//! an ordered set keyed by deadline, so an idle peer costs nothing.
//!
//! What to forward to whom is decided by the pure [`Router`](crate::forward::Router); this module only
//! moves bytes between it and the `rtc` peer connections.
//!
//! This file holds the engine's state (peers, participants, tracks, rooms) and its output; its work is
//! split by section: `input` (demultiplexing datagrams, timers), `flush` (polling dirty peers),
//! `publish` (tracks in), `downtrack` (packets out to subscribers), `keyframes` (feedback and keyframe
//! requests), `nack` (subscribers' NACKs answered from one history per track), `egress` (a subscribe
//! connection's own SRTP, path and sender reports), `ingress` (a publish connection's media opened
//! by the engine, and the feedback to the publisher), `subscribe` (subscribe connections and
//! negotiation), `participants` (join, offers, leave),
//! `commands` (what the handle asks), `program` (program feeds, WHEP/WHIP, the recorder sink),
//! `shard` (what one engine hands another when a node runs several).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
// The engine's maps are looked up several times per packet (peers, addresses, tracks, downtracks):
// with the standard library's SipHash, hashing was ≈ 6 % of the media thread (BENCHMARKS.md).
// foldhash is seeded per map too, so keys a remote influences (its address) make no predictable table.
use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::RTCPeerConnection;
use rtc::peer_connection::certificate::RTCCertificate;
use rtc::peer_connection::event::{RTCPeerConnectionEvent, RTCTrackEvent};
use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::transport::RTCIceCandidateInit;
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate;
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind};
use rtc::rtp_transceiver::{RTCRtpReceiverId, RTCRtpSenderId};
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, info_span, warn};

use crate::api::*;
use crate::forward::{
    ActiveSpeakerDetector, DownTrackKey, ExtensionMap, Forward, History, LossyQueue, Pacer, Router, RouterConfig,
    RtpMeta, Sent, SentLog, SubscriberKey, TrackKey, is_vp8_keyframe,
};
use crate::transport::counters::RtcpCounts;
use crate::transport::dtls_replay::FlightReplay;
use crate::transport::peer::{self, URI_AUDIO_LEVEL, URI_MID};
use crate::transport::socket::SendBatch;
use crate::transport::stun;
use crate::transport::tcp::ConnId;

mod commands;
mod downtrack;
mod egress;
mod flush;
mod ingress;
mod input;
mod keyframes;
mod nack;
mod participants;
mod program;
mod publish;
mod shard;
mod subscribe;
mod upstream;

pub use commands::Command;
pub(crate) use egress::WallClock;
use input::Received;
pub(crate) use shard::{Handoff, MirrorOf, Shard};

type PeerId = u64;
type PartId = u64;

/// How a packet reached us, and so how the answer leaves: a UDP source address, or an accepted
/// ICE-TCP connection (its remote address alone would not do: the answer must go down that stream).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Transport {
    Udp(SocketAddr),
    Tcp(ConnId),
}

/// Remote addresses remembered per peer connection (ICE may try a few candidate pairs).
const MAX_ADDRS_PER_PEER: usize = 8;

/// How late a timer may run so that it shares a wake-up ([`Engine::next_wake`]).
const TIMER_SLACK: Duration = Duration::from_millis(5);

/// How often the active speaker is re-evaluated.
const SPEAKER_TICK: Duration = Duration::from_millis(200);

struct Peer {
    pc: RTCPeerConnection,
    owner: PartId,
    ufrag: String,
    addrs: Vec<Transport>,
    deadline: Option<Instant>,
    /// Its peer connection got input, a timer or a write: poll it in the next flush.
    dirty: bool,
    /// Its subscriber queue got packets for the engine to send itself: drain the queue, leave the
    /// peer connection alone (polling `rtc` for every forwarded packet was a fifth of the engine's time).
    queued: bool,
    leg: Leg,
    /// Our DTLS server flight, to resend when the browser repeats its ClientHello (`rtc` does not);
    /// dropped once the connection is up.
    handshake: Option<FlightReplay>,
    /// When to give back the room `rtc`'s stage queues grew to ([`QUEUE_TRIM_INTERVAL`]); set
    /// once the connection is up.
    trim_queues_at: Option<Instant>,
}

/// How often an established connection's idle `rtc` stage queues give back their room. The
/// handshake's flights and events grow a dozen queues per connection that its media, moved by the
/// engine itself, never fills again (≈ 15 KiB of an office participant's RSS, BENCHMARKS.md); a
/// renegotiation grows some again. A queue in use is left alone; one used again after being
/// trimmed allocates anew.
const QUEUE_TRIM_INTERVAL: Duration = Duration::from_secs(10);

impl Peer {
    fn new(pc: RTCPeerConnection, owner: PartId, ufrag: String, leg: Leg) -> Self {
        Peer {
            pc,
            owner,
            ufrag,
            addrs: Vec::new(),
            deadline: None,
            dirty: false,
            queued: false,
            leg,
            handshake: Some(FlightReplay::default()),
            trim_queues_at: None,
        }
    }
}

/// The engine's peer connections, each boxed: a `Peer` is ≈ 9 KiB (its `rtc` connection), and a
/// map holding them inline keeps room for as many again as it holds (its spare capacity), and
/// copies them all when it grows.
#[derive(Default)]
struct Peers(HashMap<PeerId, Box<Peer>>);

impl Peers {
    fn get(&self, id: &PeerId) -> Option<&Peer> {
        self.0.get(id).map(|p| &**p)
    }
    fn get_mut(&mut self, id: &PeerId) -> Option<&mut Peer> {
        self.0.get_mut(id).map(|p| &mut **p)
    }
    fn insert(&mut self, id: PeerId, peer: Peer) {
        self.0.insert(id, Box::new(peer));
    }
    fn remove(&mut self, id: &PeerId) -> Option<Box<Peer>> {
        self.0.remove(id)
    }
    fn len(&self) -> usize {
        self.0.len()
    }
    fn values_mut(&mut self) -> impl Iterator<Item = &mut Peer> {
        self.0.values_mut().map(|p| &mut **p)
    }
}

enum Leg {
    Publish(PublishLeg),
    Subscribe(SubscribeLeg),
}

#[derive(Default)]
struct PublishLeg {
    /// mid → source, from the latest publish offer.
    mids: HashMap<String, TrackSource>,
    /// rtc's track id → what arrives on it.
    incoming: HashMap<String, Incoming>,
    /// A relay leg from an origin node: the program it feeds (its m-lines are that program's
    /// outputs, `engine/upstream.rs`), not a participant's sources.
    upstream: Option<RoomId>,
    /// The publisher's streams as the engine opens them, and the feedback about them ([`ingress`]).
    reception: ingress::Reception,
}

struct Incoming {
    track: TrackKey,
    receiver: RTCRtpReceiverId,
    kind: MediaKind,
    ssrc: u32,
    audio_level_id: Option<u8>,
}

struct SubscribeLeg {
    sub: SubscriberKey,
    downs: HashMap<TrackKey, Down>,
    /// our sender track id (the public track id) → track, to attribute subscriber RTCP.
    by_sender_track: HashMap<String, TrackKey>,
    offer_outstanding: bool,
    renegotiate_after_answer: bool,
    /// DTLS is up: packets written before that are dropped by `rtc`, so routing starts only then.
    connected: bool,
    /// When the pacer lets the head of the queue go, if it held it back (an entry of `Engine::paced`).
    paced_until: Option<Instant>,
    queue: LossyQueue<Queued>,
    pacer: Pacer,
    /// When this connection was set up, until its first media packet is written (then `None`):
    /// the join → first media histogram.
    awaiting_media: Option<Instant>,
    /// Our own SRTP and the selected path, from DTLS up ([`egress`]); until then, or if `rtc` could
    /// not give a context, packets go through `rtc`'s pipeline.
    egress: Option<Box<egress::Egress>>,
    /// The DTLS handshake's round trip ([`FlightReplay::round_trip`]): what the histories of the
    /// tracks it starts receiving keep packets for until its receiver reports tell theirs.
    round_trip: Option<Duration>,
}

/// A packet waiting in a subscriber's queue: the original, shared by every subscriber it goes to
/// (and the track's history), and the SSRC, sequence number and timestamp its downtrack gives it.
/// The re-headed copy is made when it leaves, into one reused header.
struct Queued {
    track: TrackKey,
    ssrc: u32,
    seq: u16,
    timestamp: u32,
    packet: Rc<rtp::Packet>,
}

struct Down {
    sender: RTCRtpSenderId,
    ssrc: u32,
    /// Negotiated once the browser answered; until then nothing is routed to this downtrack.
    pt: Option<u8>,
    /// Registered with the router (answered and connected).
    routed: bool,
    /// This downtrack's m-line on the subscriber's connection, and the MID extension id negotiated there.
    mid: Option<Bytes>,
    mid_ext: Option<u8>,
    extensions: Vec<(u8, String)>,
    /// Remapping from the current feed's extension ids (by feed generation), rebuilt when that changes.
    ext_map: Option<(u64, ExtensionMap)>,
    /// What this downtrack sent lately, to answer the subscriber's NACKs (video only; made on first use).
    sent: Option<SentLog>,
    /// Packets and octets sent, for sender reports.
    counts: egress::SentCounts,
}

struct Participant {
    room: RoomId,
    id: ParticipantId,
    publish: Option<PeerId>,
    subscribe: Option<PeerId>,
    sub_key: SubscriberKey,
    tracks: HashMap<TrackSource, TrackKey>,
    /// Sources whose forwarding the room disabled ([`Command::SetForwarding`]), applied to the
    /// router when their track is published.
    gated: HashSet<TrackSource>,
    /// Managed over HTTP (a WHEP viewer, a WHIP encoder), not by a room: released as soon as its
    /// connection fails or closes, since nobody else would notice it is gone.
    transient: bool,
}

struct Track {
    info: TrackInfo,
    room: RoomId,
    owner: PartId,
    /// The publish connection and rtc track currently feeding it; `None` while paused (reconnecting).
    feed: Option<(PeerId, String)>,
    /// Bumped whenever the feed changes, so downtracks rebuild their extension-id remapping.
    feed_gen: u64,
    /// Header extensions negotiated on the current feed (id, URI).
    extensions: Vec<(u8, String)>,
    /// The last packets forwarded on this track, shared by every subscriber's NACK answers (video only;
    /// made on first use).
    history: Option<History<Rc<rtp::Packet>>>,
}

struct Room {
    participants: Vec<PartId>,
    speakers: ActiveSpeakerDetector<PartId>,
}

pub(crate) struct Engine {
    /// The address in our ICE candidates (announced IP, bound port).
    announced: SocketAddr,
    /// Our passive ICE-TCP candidate's address, when TCP is on; also the `local_addr` `rtc` must see
    /// on TCP input, or it finds no local candidate for the packet and drops it.
    tcp_announced: Option<SocketAddr>,
    config: SfuConfig,
    events: mpsc::UnboundedSender<SfuEvent>,
    peers: Peers,
    by_ufrag: HashMap<String, PeerId>,
    by_addr: HashMap<Transport, PeerId>,
    /// Open ICE-TCP connections: their remote address (what `rtc` sees), and back (how `rtc`'s
    /// TCP output finds its stream).
    tcp_conns: HashMap<ConnId, SocketAddr>,
    tcp_by_remote: HashMap<SocketAddr, ConnId>,
    tcp_out: Vec<(ConnId, BytesMut)>,
    parts: HashMap<PartId, Participant>,
    by_name: HashMap<(RoomId, ParticipantId), PartId>,
    tracks: HashMap<TrackKey, Track>,
    rooms: HashMap<RoomId, Room>,
    router: Router,
    timers: BTreeSet<(Instant, PeerId)>,
    dirty: Vec<PeerId>,
    /// Subscribers with queued packets and an egress of their own (their connection needs no poll).
    queued: Vec<PeerId>,
    /// Subscribers whose pacer held packets back, by when the first of them fits (drained then,
    /// whether or not anything else arrives).
    paced: BTreeSet<(Instant, PeerId)>,
    out: SendBatch,
    forwards: Vec<Forward>,
    /// The header a queued packet is re-headed into when it leaves (reused: no allocation per packet).
    header: rtp::header::Header,
    /// What one subscriber's NACKs ask for: downtrack and sequence number (reused).
    nacked: Vec<(TrackKey, u16)>,
    keyframe_tracks: Vec<TrackKey>,
    next_id: u64,
    next_speaker_tick: Instant,
    forwarded: u64,
    forwarded_bytes: u64,
    dropped: u64,
    /// Keyframe requests (PLI/FIR) from subscribers, and PLIs we sent upstream.
    plis_received: u64,
    plis_sent: u64,
    /// Time the driver spent working rather than waiting (its loop adds each wake-up's share).
    busy: Duration,
    /// Room given back by established connections' idle `rtc` queues ([`QUEUE_TRIM_INTERVAL`]).
    trimmed_queue_bytes: u64,
    /// NACKs and retransmissions, counted inside every connection's interceptor chain.
    rtcp: Arc<RtcpCounts>,
    /// The DTLS certificate of every connection ([`peer::certificate`]).
    certificate: RTCCertificate,
    /// Wall-clock time for sender reports, and when they are next due.
    wall: WallClock,
    next_report: Instant,
    /// Program feeds by their room, and the indexes the hot path needs: which outputs a source
    /// track may feed, which program an output track belongs to, which recorder a sink is.
    programs: HashMap<RoomId, program::Program>,
    program_inputs: HashMap<TrackKey, Vec<(RoomId, usize)>>,
    program_outputs: HashMap<TrackKey, (RoomId, usize)>,
    sinks: HashMap<SubscriberKey, RoomId>,
    /// This engine among its node's media threads, and what it hands to the others ([`shard`]).
    shard: Shard,
    outbox: Vec<Handoff>,
    /// Engine 0: ICE-TCP connections relayed to another engine, and those another asked to close.
    tcp_foreign: HashMap<ConnId, usize>,
    tcp_closing: Vec<ConnId>,
}

impl Engine {
    /// An engine whose datagrams leave from `local` (the bound socket's address, or a simulated one).
    pub(crate) fn new(
        local: SocketAddr,
        config: SfuConfig,
        events: mpsc::UnboundedSender<SfuEvent>,
        certificate: RTCCertificate,
        wall: WallClock,
        shard: Shard,
        now: Instant,
    ) -> Self {
        let announced = SocketAddr::new(config.announced_ip.unwrap_or(local.ip()), local.port());
        Engine {
            announced,
            tcp_announced: config.tcp_announced,
            config,
            events,
            peers: Peers::default(),
            by_ufrag: HashMap::new(),
            by_addr: HashMap::new(),
            tcp_conns: HashMap::new(),
            tcp_by_remote: HashMap::new(),
            tcp_out: Vec::new(),
            parts: HashMap::new(),
            by_name: HashMap::new(),
            tracks: HashMap::new(),
            rooms: HashMap::new(),
            router: Router::new(RouterConfig::default()),
            timers: BTreeSet::new(),
            dirty: Vec::new(),
            queued: Vec::new(),
            paced: BTreeSet::new(),
            out: SendBatch::default(),
            forwards: Vec::with_capacity(256),
            header: rtp::header::Header::default(),
            nacked: Vec::new(),
            keyframe_tracks: Vec::new(),
            next_id: 1,
            next_speaker_tick: now + SPEAKER_TICK,
            forwarded: 0,
            forwarded_bytes: 0,
            dropped: 0,
            plis_received: 0,
            plis_sent: 0,
            busy: Duration::ZERO,
            trimmed_queue_bytes: 0,
            rtcp: Arc::default(),
            certificate,
            wall,
            next_report: now + egress::REPORT_INTERVAL,
            programs: HashMap::new(),
            program_inputs: HashMap::new(),
            program_outputs: HashMap::new(),
            sinks: HashMap::new(),
            shard,
            outbox: Vec::new(),
            tcp_foreign: HashMap::new(),
            tcp_closing: Vec::new(),
        }
    }

    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// A new peer connection on our shared socket, with the ICE ufrag that demultiplexes to it.
    fn new_connection(&self, kind: PcKind, now: Instant) -> Result<(String, RTCPeerConnection), SfuError> {
        let ufrag = self.shard.ufrag();
        let (role, tcp) = (peer::Role::Answerer, self.tcp_announced);
        let pc = peer::build(kind, role, &ufrag, self.announced, tcp, &self.rtcp, &self.certificate, now)?;
        Ok((ufrag, pc))
    }

    /// A receiving connection of our own offer (a relay leg to an origin node): UDP only, since
    /// the origin, a lite agent, cannot open a TCP connection to us.
    fn new_offering_connection(&self, now: Instant) -> Result<(String, RTCPeerConnection), SfuError> {
        let ufrag = self.shard.ufrag();
        let role = peer::Role::Offerer;
        let pc = peer::build(PcKind::Publish, role, &ufrag, self.announced, None, &self.rtcp, &self.certificate, now)?;
        Ok((ufrag, pc))
    }

    /// The datagrams flushed so far, for the driver to send.
    pub(crate) fn transmits(&mut self) -> &mut SendBatch {
        &mut self.out
    }

    /// The packets flushed so far for ICE-TCP connections (unframed), for the driver to queue.
    pub(crate) fn tcp_transmits(&mut self) -> &mut Vec<(ConnId, BytesMut)> {
        &mut self.tcp_out
    }

    /// Queues one outgoing packet from `rtc` by its transport: UDP to the socket's batch, TCP to
    /// the connection that carries that remote address (none: the connection closed, drop it).
    fn emit(
        out: &mut SendBatch,
        tcp_out: &mut Vec<(ConnId, BytesMut)>,
        tcp_by_remote: &HashMap<SocketAddr, ConnId>,
        ctx: &TransportContext,
        data: BytesMut,
    ) {
        match ctx.transport_protocol {
            TransportProtocol::TCP => {
                if let Some(&conn) = tcp_by_remote.get(&ctx.peer_addr) {
                    tcp_out.push((conn, data));
                }
            }
            _ => out.push(ctx.peer_addr, data),
        }
    }

    /// The driver's working time for one wake-up (for the engine's busy share).
    pub(crate) fn add_busy(&mut self, busy: Duration) {
        self.busy += busy;
    }

    pub(crate) fn has_transmits(&self) -> bool {
        !self.out.is_empty()
    }

    /// When [`Engine::timeouts`] must next be called: the earliest peer timer, paced queue,
    /// router timer, active-speaker tick or sender-report tick (the in-memory driver's clock).
    #[cfg(test)]
    pub(crate) fn next_deadline(&self) -> Instant {
        self.next_timer_or_paced(Duration::ZERO)
    }

    /// When a driver that calls [`Engine::timeouts`] at every wake-up must wake for timers alone:
    /// timers that bear a few milliseconds' delay (`rtc`'s — transport-cc feedback, NACKs and reports
    /// to publishers, DTLS and ICE —, the router's, the speaker and report ticks) wait up to
    /// [`TIMER_SLACK`] longer, so that one wake-up serves those falling close together, and a
    /// datagram arriving meanwhile serves them all; a paced queue's head leaves on time.
    pub(crate) fn next_wake(&self) -> Instant {
        self.next_timer_or_paced(TIMER_SLACK)
    }

    /// The earliest timer `slack` late, or a paced queue's head if that comes first.
    fn next_timer_or_paced(&self, slack: Duration) -> Instant {
        let d = self.next_timer() + slack;
        self.paced.first().map_or(d, |(t, _)| d.min(*t))
    }

    /// The earliest timer but the paced queues'.
    fn next_timer(&self) -> Instant {
        let mut d = self.next_speaker_tick.min(self.next_report);
        if let Some((t, _)) = self.timers.first() {
            d = d.min(*t);
        }
        if let Some(t) = self.router.next_timeout() {
            d = d.min(t);
        }
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Timers that bear it wake the driver [`TIMER_SLACK`] late, to share a wake-up; a paced
    /// queue's head does not wait for that.
    #[test]
    fn a_timer_may_wait_to_share_a_wake_up_but_a_paced_queue_does_not() {
        let now = Instant::now();
        let (events, _rx) = mpsc::unbounded_channel();
        let certificate = peer::certificate().unwrap();
        let wall = WallClock::new(now, std::time::UNIX_EPOCH);
        let config = SfuConfig::default();
        let mut engine =
            Engine::new("127.0.0.1:3478".parse().unwrap(), config, events, certificate, wall, Shard::single(), now);
        let timer = engine.next_deadline();
        assert_eq!(engine.next_wake(), timer + TIMER_SLACK, "the earliest timer, a little late");
        let paced = timer + Duration::from_millis(1);
        engine.paced.insert((paced, 7));
        assert_eq!(engine.next_deadline(), timer);
        assert_eq!(engine.next_wake(), paced, "a queue the pacer held back leaves when its head fits");
    }
}
