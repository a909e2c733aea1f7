//! The media engine: one thread, one UDP socket, every peer connection.
//!
//! One loop waits on three things — commands from signaling, readable datagrams, the earliest timer —
//! and after each wake-up "flushes": peers that got input are polled for events, media and outgoing
//! datagrams (only those peers: a set of dirty peers, not a scan), subscriber queues are drained into
//! their peer connections, and everything outgoing leaves in `sendmmsg` batches. Timers live in an
//! ordered set keyed by deadline, so an idle peer costs nothing.
//!
//! What to forward to whom is decided by the pure [`Router`](crate::forward::Router); this module only
//! moves bytes between it and the `rtc` peer connections.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::RTCPeerConnection;
use rtc::peer_connection::event::{RTCPeerConnectionEvent, RTCTrackEvent};
use rtc::peer_connection::message::RTCMessage;
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
    ActiveSpeakerDetector, DownTrackKey, ExtensionMap, Forward, LossyQueue, Pacer, Router, RouterConfig, RtpMeta,
    SubscriberKey, TrackKey, is_vp8_keyframe,
};
use crate::transport::dtls_replay::FlightReplay;
use crate::transport::peer::{self, URI_AUDIO_LEVEL, URI_MID};
use crate::transport::socket::{MediaSocket, RecvBatch, SendBatch};
use crate::transport::stun;

mod program;

type Reply<T> = oneshot::Sender<Result<T, SfuError>>;

/// What the [`Sfu`](crate::Sfu) handle asks of the engine.
pub enum Command {
    Join {
        room: RoomId,
        participant: ParticipantId,
        reply: Reply<()>,
    },
    PublishOffer {
        room: RoomId,
        participant: ParticipantId,
        sdp: String,
        mids: Vec<PublishedMid>,
        reply: Reply<String>,
    },
    SubscribeAnswer {
        room: RoomId,
        participant: ParticipantId,
        sdp: String,
        reply: Reply<()>,
    },
    AddCandidate {
        room: RoomId,
        participant: ParticipantId,
        pc: PcKind,
        candidate: IceCandidate,
        reply: Reply<()>,
    },
    Leave {
        room: RoomId,
        participant: ParticipantId,
        reply: Reply<()>,
    },
    SetForwarding {
        room: RoomId,
        participant: ParticipantId,
        source: TrackSource,
        enabled: bool,
        reply: Reply<()>,
    },
    Stats {
        reply: Reply<SfuStats>,
    },
    Participants {
        room: RoomId,
        reply: Reply<Vec<ParticipantId>>,
    },
    ProgramOpen {
        program: RoomId,
        audio_slots: usize,
        reply: Reply<()>,
    },
    ProgramSelect {
        program: RoomId,
        selection: ProgramSelection,
        reply: Reply<()>,
    },
    ProgramClose {
        program: RoomId,
        reply: Reply<()>,
    },
    WhepOffer {
        program: RoomId,
        viewer: ParticipantId,
        sdp: String,
        reply: Reply<String>,
    },
    WhipOffer {
        room: RoomId,
        participant: ParticipantId,
        sdp: String,
        reply: Reply<String>,
    },
    RecordStart {
        program: RoomId,
        dir: std::path::PathBuf,
        reply: Reply<()>,
    },
    /// Answered at once with a receiver that resolves when the files are closed (the writer
    /// thread finishes without holding up the media loop).
    RecordStop {
        program: RoomId,
        reply: Reply<oneshot::Receiver<Result<Vec<RecordedFile>, SfuError>>>,
    },
}

/// Binds the socket and starts the engine thread.
pub fn spawn(
    config: SfuConfig,
) -> Result<(mpsc::UnboundedSender<Command>, mpsc::UnboundedReceiver<SfuEvent>, SocketAddr), SfuError> {
    let socket = std::net::UdpSocket::bind(config.udp_bind)
        .map_err(|e| SfuError::Bind { addr: config.udp_bind, reason: e.to_string() })?;
    let local_addr = socket.local_addr().map_err(|e| SfuError::Transport(e.to_string()))?;
    if local_addr.ip().is_unspecified() && config.announced_ip.is_none() {
        return Err(SfuError::Bind {
            addr: local_addr,
            reason: "a wildcard media address needs an announced IP (NAT 1:1)".into(),
        });
    }
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let (event_tx, event_rx) = mpsc::unbounded_channel();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| SfuError::Transport(e.to_string()))?;
    std::thread::Builder::new()
        .name("sfu-media".into())
        .spawn(move || {
            runtime.block_on(async move {
                let socket = match MediaSocket::new(socket) {
                    Ok(s) => s,
                    Err(e) => {
                        warn!(error = %e, "media socket unusable");
                        return;
                    }
                };
                Engine::new(socket, config, event_tx).run(cmd_rx).await;
            })
        })
        .map_err(|e| SfuError::Transport(e.to_string()))?;
    info!(%local_addr, "media engine listening (one UDP port for every peer connection)");
    Ok((cmd_tx, event_rx, local_addr))
}

type PeerId = u64;
type PartId = u64;

/// Remote addresses remembered per peer connection (ICE may try a few candidate pairs).
const MAX_ADDRS_PER_PEER: usize = 8;

/// How often the active speaker is re-evaluated.
const SPEAKER_TICK: Duration = Duration::from_millis(200);

struct Peer {
    pc: RTCPeerConnection,
    owner: PartId,
    ufrag: String,
    addrs: Vec<SocketAddr>,
    deadline: Option<Instant>,
    dirty: bool,
    leg: Leg,
    /// Our DTLS server flight, to resend when the browser repeats its ClientHello (`rtc` does not);
    /// dropped once the connection is up.
    handshake: Option<FlightReplay>,
}

impl Peer {
    fn new(pc: RTCPeerConnection, owner: PartId, ufrag: String, leg: Leg) -> Self {
        Peer {
            pc,
            owner,
            ufrag,
            addrs: Vec::new(),
            deadline: None,
            dirty: false,
            leg,
            handshake: Some(FlightReplay::default()),
        }
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
    queue: LossyQueue<(TrackKey, rtp::Packet)>,
    pacer: Pacer,
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
}

struct Room {
    participants: Vec<PartId>,
    speakers: ActiveSpeakerDetector<PartId>,
}

enum Wake {
    Command(Option<Command>),
    Readable,
    Writable,
    Timer,
}

struct Engine {
    socket: MediaSocket,
    /// The address in our ICE candidates (announced IP, bound port).
    announced: SocketAddr,
    config: SfuConfig,
    events: mpsc::UnboundedSender<SfuEvent>,
    peers: HashMap<PeerId, Peer>,
    by_ufrag: HashMap<String, PeerId>,
    by_addr: HashMap<SocketAddr, PeerId>,
    parts: HashMap<PartId, Participant>,
    by_name: HashMap<(RoomId, ParticipantId), PartId>,
    tracks: HashMap<TrackKey, Track>,
    rooms: HashMap<RoomId, Room>,
    router: Router,
    timers: BTreeSet<(Instant, PeerId)>,
    dirty: Vec<PeerId>,
    out: SendBatch,
    recv: RecvBatch,
    forwards: Vec<Forward>,
    keyframe_tracks: Vec<TrackKey>,
    next_id: u64,
    next_speaker_tick: Instant,
    forwarded: u64,
    dropped: u64,
    /// Program feeds by their room, and the indexes the hot path needs: which outputs a source
    /// track may feed, which program an output track belongs to, which recorder a sink is.
    programs: HashMap<RoomId, program::Program>,
    program_inputs: HashMap<TrackKey, Vec<(RoomId, usize)>>,
    program_outputs: HashMap<TrackKey, (RoomId, usize)>,
    sinks: HashMap<SubscriberKey, RoomId>,
}

impl Engine {
    fn new(socket: MediaSocket, config: SfuConfig, events: mpsc::UnboundedSender<SfuEvent>) -> Self {
        let local = socket.local_addr();
        let announced = SocketAddr::new(config.announced_ip.unwrap_or(local.ip()), local.port());
        Engine {
            socket,
            announced,
            config,
            events,
            peers: HashMap::new(),
            by_ufrag: HashMap::new(),
            by_addr: HashMap::new(),
            parts: HashMap::new(),
            by_name: HashMap::new(),
            tracks: HashMap::new(),
            rooms: HashMap::new(),
            router: Router::new(RouterConfig::default()),
            timers: BTreeSet::new(),
            dirty: Vec::new(),
            out: SendBatch::default(),
            recv: RecvBatch::default(),
            forwards: Vec::with_capacity(256),
            keyframe_tracks: Vec::new(),
            next_id: 1,
            next_speaker_tick: Instant::now() + SPEAKER_TICK,
            forwarded: 0,
            dropped: 0,
            programs: HashMap::new(),
            program_inputs: HashMap::new(),
            program_outputs: HashMap::new(),
            sinks: HashMap::new(),
        }
    }

    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        loop {
            self.flush(Instant::now());
            let deadline = self.next_deadline();
            let wake = tokio::select! {
                biased;
                c = commands.recv() => Wake::Command(c),
                r = self.socket.readable() => { if let Err(e) = r { warn!(error = %e, "media socket"); } Wake::Readable }
                _ = self.socket.writable(), if !self.out.is_empty() => Wake::Writable,
                _ = tokio::time::sleep_until(deadline.into()) => Wake::Timer,
            };
            match wake {
                Wake::Command(None) => break,
                Wake::Command(Some(c)) => self.command(c),
                Wake::Readable => self.read_datagrams(),
                Wake::Writable => {}
                Wake::Timer => self.timeouts(Instant::now()),
            }
        }
        info!("media engine stopped");
    }

    fn next_deadline(&self) -> Instant {
        let mut d = self.next_speaker_tick;
        if let Some((t, _)) = self.timers.first() {
            d = d.min(*t);
        }
        if let Some(t) = self.router.next_timeout() {
            d = d.min(t);
        }
        d
    }

    // ---- input --------------------------------------------------------------------------------

    fn read_datagrams(&mut self) {
        // Bounded so a flood cannot starve commands and timers.
        for _ in 0..8 {
            let n = match self.socket.try_recv_batch(&mut self.recv) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    debug!(error = %e, "recvmmsg");
                    return;
                }
            };
            if n == 0 {
                return;
            }
            let now = Instant::now();
            let recv = std::mem::take(&mut self.recv);
            for (from, data) in recv.iter() {
                self.datagram(from, data, now);
            }
            self.recv = recv;
            // Forward what this batch produced before reading the next one.
            self.flush(now);
        }
    }

    fn datagram(&mut self, from: SocketAddr, data: &[u8], now: Instant) {
        // STUN names its peer connection by ufrag; anything else is routed by the learned address.
        let peer_id = match stun::local_ufrag(data).and_then(|u| self.by_ufrag.get(u)) {
            Some(&id) => {
                // Learned before `rtc` checks the message's integrity (the ufrag only appears in
                // that participant's SDP), and bounded so forged requests cannot grow the maps.
                if self.by_addr.get(&from) != Some(&id)
                    && let Some(p) = self.peers.get_mut(&id)
                    && p.addrs.len() < MAX_ADDRS_PER_PEER
                {
                    p.addrs.push(from);
                    self.by_addr.insert(from, id);
                }
                id
            }
            None => match self.by_addr.get(&from) {
                Some(&id) => id,
                None => return, // unknown sender: not ours
            },
        };
        let local_addr = self.announced;
        let Some(peer) = self.peers.get_mut(&peer_id) else { return };
        let msg = TaggedBytesMut {
            now,
            transport: TransportContext {
                local_addr,
                peer_addr: from,
                ecn: None,
                transport_protocol: TransportProtocol::UDP,
            },
            message: BytesMut::from(data),
        };
        if let Err(e) = peer.pc.handle_read(msg) {
            debug!(peer = peer_id, error = %e, "datagram rejected");
        }
        if let Some(replay) = &peer.handshake
            && replay.wants_replay(data)
        {
            debug!(peer = peer_id, "DTLS ClientHello repeated: our flight was lost; sending it again");
            for d in replay.flight() {
                self.out.push(from, d.clone());
            }
        }
        self.mark_dirty(peer_id);
    }

    fn mark_dirty(&mut self, id: PeerId) {
        if let Some(p) = self.peers.get_mut(&id)
            && !p.dirty
        {
            p.dirty = true;
            self.dirty.push(id);
        }
    }

    fn timeouts(&mut self, now: Instant) {
        while let Some(&(t, id)) = self.timers.first() {
            if t > now {
                break;
            }
            self.timers.pop_first();
            if let Some(p) = self.peers.get_mut(&id) {
                p.deadline = None;
                if let Err(e) = p.pc.handle_timeout(now) {
                    debug!(peer = id, error = %e, "timeout handling");
                }
            }
            self.mark_dirty(id);
        }
        if now >= self.next_speaker_tick {
            self.next_speaker_tick = now + SPEAKER_TICK;
            self.tick_speakers(now);
        }
    }

    // ---- the flush: events, media, outgoing ---------------------------------------------------

    fn flush(&mut self, now: Instant) {
        // Draining a publisher can dirty subscribers; loop until quiet.
        // Keyframe requests due now dirty their publishers, so they leave in this same flush.
        for _ in 0..8 {
            self.request_keyframes(now);
            if self.dirty.is_empty() {
                break;
            }
            let dirty = std::mem::take(&mut self.dirty);
            for &id in &dirty {
                if let Some(p) = self.peers.get_mut(&id) {
                    p.dirty = false;
                }
                self.drain_peer(id, now);
            }
            self.drain_queues(&dirty, now);
            for &id in &dirty {
                self.collect_writes(id);
            }
        }
        if !self.out.is_empty() {
            match self.socket.try_send_batch(&mut self.out) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => debug!(error = %e, "sendmmsg"),
            }
        }
    }

    fn drain_peer(&mut self, id: PeerId, now: Instant) {
        while let Some(ev) = self.peers.get_mut(&id).and_then(|p| p.pc.poll_event()) {
            self.peer_event(id, ev, now);
        }
        while let Some(msg) = self.peers.get_mut(&id).and_then(|p| p.pc.poll_read()) {
            self.peer_message(id, msg.message, now);
        }
    }

    fn collect_writes(&mut self, id: PeerId) {
        let Some(p) = self.peers.get_mut(&id) else { return };
        while let Some(w) = p.pc.poll_write() {
            if let Some(replay) = &mut p.handshake {
                replay.sent(&w.message);
            }
            self.out.push(w.transport.peer_addr, w.message);
        }
        let next = p.pc.poll_timeout();
        if next != p.deadline {
            if let Some(old) = p.deadline {
                self.timers.remove(&(old, id));
            }
            if let Some(new) = next {
                self.timers.insert((new, id));
            }
            p.deadline = next;
        }
    }

    fn peer_event(&mut self, id: PeerId, ev: RTCPeerConnectionEvent, now: Instant) {
        match ev {
            RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) => {
                let Some(p) = self.peers.get(&id) else { return };
                let kind = match p.leg {
                    Leg::Publish(_) => PcKind::Publish,
                    Leg::Subscribe(_) => PcKind::Subscribe,
                };
                let state = match state {
                    RTCPeerConnectionState::Connected => PeerState::Connected,
                    RTCPeerConnectionState::Disconnected => PeerState::Disconnected,
                    RTCPeerConnectionState::Failed => PeerState::Failed,
                    RTCPeerConnectionState::Closed => PeerState::Closed,
                    _ => PeerState::Connecting,
                };
                let owner = p.owner;
                if state == PeerState::Connected
                    && let Some(p) = self.peers.get_mut(&id)
                {
                    p.handshake = None;
                }
                if kind == PcKind::Subscribe && state == PeerState::Connected {
                    if let Some(Peer { leg: Leg::Subscribe(leg), .. }) = self.peers.get_mut(&id) {
                        leg.connected = true;
                    }
                    self.start_routing(id, now);
                }
                if let Some(part) = self.parts.get(&owner)
                    && part.transient
                    && matches!(state, PeerState::Failed | PeerState::Closed)
                {
                    let (room, participant) = (part.room.clone(), part.id.clone());
                    info!(room = %room, participant = %participant, ?state, "HTTP-managed connection ended; released");
                    let _ = self.leave(&room, &participant, now);
                    return;
                }
                if let Some(part) = self.parts.get(&owner) {
                    debug!(room = %part.room, participant = %part.id, pc = %kind, ?state, "peer connection state");
                    let _ = self.events.send(SfuEvent::PeerState {
                        room: part.room.clone(),
                        participant: part.id.clone(),
                        pc: kind,
                        state,
                    });
                }
            }
            RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnOpen(init)) => {
                self.track_opened(id, init.receiver_id, init.track_id, init.ssrc, now);
            }
            _ => {}
        }
    }

    fn peer_message(&mut self, id: PeerId, msg: RTCMessage, now: Instant) {
        match msg {
            RTCMessage::RtpPacket(track_id, packet) => self.media_in(id, &track_id, packet, now),
            RTCMessage::RtcpPacket(track_id, packets) => self.feedback_in(id, &track_id, &packets, now),
            _ => {}
        }
    }

    // ---- publishing ---------------------------------------------------------------------------

    fn track_opened(
        &mut self,
        peer_id: PeerId,
        receiver: RTCRtpReceiverId,
        rtc_track: String,
        ssrc: u32,
        now: Instant,
    ) {
        let Some(peer) = self.peers.get_mut(&peer_id) else { return };
        let owner = peer.owner;
        let mid = peer.pc.get_transceivers().collect::<Vec<_>>().into_iter().find_map(|t| {
            let tr = peer.pc.rtp_transceiver(t)?;
            (tr.receiver() == Some(receiver)).then(|| tr.mid().clone()).flatten()
        });
        let Leg::Publish(leg) = &mut peer.leg else { return };
        let Some(source) = mid.as_ref().and_then(|m| leg.mids.get(m)).copied() else {
            debug!(peer = peer_id, ?mid, "media on an m-line the publisher did not describe; ignored");
            return;
        };
        let extensions: Vec<(u8, String)> = peer
            .pc
            .rtp_receiver(receiver)
            .map(|mut r| {
                r.get_parameters()
                    .rtp_parameters
                    .header_extensions
                    .iter()
                    .map(|h| (h.id as u8, h.uri.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let audio_level_id = extensions.iter().find(|(_, u)| u == URI_AUDIO_LEVEL).map(|(id, _)| *id);

        let Some(existing) = self.parts.get(&owner).map(|p| p.tracks.get(&source).copied()) else { return };
        let key = match existing {
            Some(key) => key,
            // Not announced by the publish offer (e.g. an m-line re-activated): announce it now.
            None => match self.publish_track(owner, source, now) {
                Some(key) => key,
                None => return,
            },
        };
        let kind = source.kind();
        if let Some(Peer { leg: Leg::Publish(leg), .. }) = self.peers.get_mut(&peer_id) {
            leg.incoming.insert(rtc_track.clone(), Incoming { track: key, receiver, kind, ssrc, audio_level_id });
        }
        if let Some(t) = self.tracks.get_mut(&key) {
            let _span = info_span!("track", room = %t.room, track = %t.info.id).entered();
            info!(ssrc, "media flows on the track");
            t.feed = Some((peer_id, rtc_track));
            t.feed_gen += 1;
            t.extensions = extensions;
        }
    }

    /// Announces a participant's track to its room as soon as its publish offer describes it,
    /// before any media: subscribers negotiate while the publisher's connection is still being
    /// set up (their video waits for its first keyframe), which is what makes a join fast. The
    /// track is fed once media flows on it ([`Engine::track_opened`]).
    fn publish_track(&mut self, owner: PartId, source: TrackSource, now: Instant) -> Option<TrackKey> {
        let part = self.parts.get(&owner)?;
        if let Some(&key) = part.tracks.get(&source) {
            return Some(key);
        }
        let (room, info) = (part.room.clone(), TrackInfo::new(part.id.clone(), source));
        let key = TrackKey(self.id());
        let kind = info.kind;
        let _span = info_span!("track", room = %room, track = %info.id).entered();
        info!("track published");
        self.router.add_track(key, kind, if kind == MediaKind::Audio { 48000 } else { 90000 });
        if let Some(p) = self.parts.get_mut(&owner) {
            p.tracks.insert(source, key);
            if p.gated.contains(&source) {
                // Gated before it was published: not one packet gets through.
                self.router.set_forwarding(key, false, now);
            }
        }
        self.tracks.insert(
            key,
            Track { info: info.clone(), room: room.clone(), owner, feed: None, feed_gen: 0, extensions: Vec::new() },
        );
        let _ = self.events.send(SfuEvent::TrackPublished { room: room.clone(), track: info });
        let others: Vec<PartId> = self
            .rooms
            .get(&room)
            .map(|r| r.participants.iter().copied().filter(|&p| p != owner).collect())
            .unwrap_or_default();
        for other in others {
            self.add_downtrack(other, key, now);
        }
        self.program_refresh(now);
        Some(key)
    }

    fn adopt_receiver(&mut self, peer_id: PeerId, rtc_track: &str, ssrc: u32, now: Instant) {
        let Some(peer) = self.peers.get_mut(&peer_id) else { return };
        let receiver = peer
            .pc
            .get_receivers()
            .collect::<Vec<_>>()
            .into_iter()
            .find(|&r| peer.pc.rtp_receiver(r).is_some_and(|r| r.track().track_id() == rtc_track));
        if let Some(receiver) = receiver {
            self.track_opened(peer_id, receiver, rtc_track.to_owned(), ssrc, now);
        }
    }

    fn media_in(&mut self, peer_id: PeerId, rtc_track: &str, packet: rtp::Packet, now: Instant) {
        let Some(Peer { leg: Leg::Publish(leg), owner, .. }) = self.peers.get(&peer_id) else { return };
        let owner = *owner;
        let Some(inc) = leg.incoming.get(rtc_track) else {
            // A receiver whose m-line was made inactive and then active again (a screen share stopped
            // and restarted) gets no new OnTrack from `rtc`: adopt it on its first packet.
            self.adopt_receiver(peer_id, rtc_track, packet.header.ssrc, now);
            return;
        };
        let key = inc.track;
        // RTX retransmissions arrive here already restored to the primary stream (`rtc` de-encapsulates
        // them), so a repaired packet is forwarded like a late original.
        if let Some(level_id) = inc.audio_level_id
            && let Some(ext) = packet.header.extensions.iter().find(|e| e.id == level_id)
            && let Some(&b) = ext.payload.first()
        {
            let room = self.tracks.get(&key).map(|t| t.room.clone());
            if let Some(room) = room.and_then(|r| self.rooms.get_mut(&r)) {
                room.speakers.record(owner, b & 0x7f, now);
            }
        }
        let is_keyframe = inc.kind == MediaKind::Video && is_vp8_keyframe(&packet.payload);
        let meta = RtpMeta {
            ssrc: packet.header.ssrc,
            seq: packet.header.sequence_number,
            timestamp: packet.header.timestamp,
            is_keyframe,
        };
        let mut forwards = std::mem::take(&mut self.forwards);
        forwards.clear();
        self.router.route(key, &meta, now, &mut forwards);
        self.dispatch(&packet, &forwards, now);
        if self.program_inputs.contains_key(&key) {
            self.feed_programs(key, &packet, &meta, now, &mut forwards);
        }
        self.forwards = forwards;
    }

    /// Queues the router's decisions for one packet: a copy per downtrack, re-headed.
    fn dispatch(&mut self, packet: &rtp::Packet, forwards: &[Forward], now: Instant) {
        for f in forwards {
            let mut p = packet.clone();
            p.header.ssrc = f.ssrc;
            p.header.sequence_number = f.seq;
            p.header.timestamp = f.timestamp;
            let Some(sub_peer) = self.parts.get(&f.down.subscriber.0).and_then(|p| p.subscribe) else {
                self.sink_packet(f, p, now);
                continue;
            };
            let Some(Peer { leg: Leg::Subscribe(leg), .. }) = self.peers.get_mut(&sub_peer) else { continue };
            if let Some(evicted) = leg.queue.push((f.down.track, p)) {
                self.dropped += 1;
                self.router.overflowed(DownTrackKey { subscriber: f.down.subscriber, track: evicted.0 }, now);
            }
            self.mark_dirty(sub_peer);
        }
    }

    /// Moves queued packets into each subscriber connection, as fast as its pacer allows.
    fn drain_queues(&mut self, ids: &[PeerId], now: Instant) {
        for &id in ids {
            let Some(Peer { pc, leg: Leg::Subscribe(leg), .. }) = self.peers.get_mut(&id) else { continue };
            while let Some((_, head)) = leg.queue.front() {
                if !leg.pacer.try_consume(head.payload.len() + 40, now) {
                    break;
                }
                let Some((key, mut packet)) = leg.queue.pop() else { break };
                let (Some(down), Some(track)) = (leg.downs.get_mut(&key), self.tracks.get(&key)) else { continue };
                let Some(pt) = down.pt else { continue };
                packet.header.payload_type = pt;
                remap_extensions(&mut packet, down, track);
                match pc.rtp_sender(down.sender).map(|mut s| s.write_rtp(now, packet)) {
                    Some(Ok(())) => self.forwarded += 1,
                    Some(Err(e)) => debug!(error = %e, "write_rtp"),
                    None => {}
                }
            }
        }
    }
}

impl Down {
    /// Reads what the completed negotiation gave this downtrack: payload type, header-extension
    /// ids, the MID extension (`None` if the peer refused the codec: nothing is routed then).
    fn negotiated(&mut self, pc: &mut RTCPeerConnection, kind: MediaKind) {
        let Some(mut sender) = pc.rtp_sender(self.sender) else { return };
        let params = sender.get_parameters();
        let want = if kind == MediaKind::Audio { "audio/opus" } else { "video/vp8" };
        self.pt = params
            .rtp_parameters
            .codecs
            .iter()
            .find(|c| c.rtp_codec.mime_type.eq_ignore_ascii_case(want))
            .map(|c| c.payload_type);
        self.extensions = params.rtp_parameters.header_extensions.iter().map(|h| (h.id as u8, h.uri.clone())).collect();
        self.mid_ext = self.extensions.iter().find(|(_, u)| u == URI_MID).map(|(id, _)| *id);
        self.ext_map = None;
    }
}

/// Rewrites the header extensions of a forwarded packet for the subscriber's leg: ids are remapped
/// by URI, extensions the subscriber did not negotiate are dropped (`write_rtp` refuses unknown ids),
/// and the MID is replaced by the subscriber's own m-line — the publisher's MID names an m-line of
/// another connection, and a browser demultiplexes by MID before SSRC.
fn remap_extensions(packet: &mut rtp::Packet, down: &mut Down, track: &Track) {
    let stale = down.ext_map.as_ref().is_none_or(|(generation, _)| *generation != track.feed_gen);
    if stale {
        let from: Vec<(u8, &str)> =
            track.extensions.iter().filter(|(_, u)| u != URI_MID).map(|(id, u)| (*id, u.as_str())).collect();
        let to: Vec<(u8, &str)> = down.extensions.iter().map(|(id, u)| (*id, u.as_str())).collect();
        down.ext_map = Some((track.feed_gen, ExtensionMap::new(&from, &to)));
    }
    let Some((_, map)) = &down.ext_map else { return };
    let header = &mut packet.header;
    header.extensions.retain_mut(|e| match map.map(e.id) {
        Some(id) => {
            e.id = id;
            true
        }
        None => false,
    });
    if let (Some(id), Some(mid)) = (down.mid_ext, &down.mid) {
        header.extensions.push(rtp::header::Extension { id, payload: mid.clone() });
        header.extension_profile = rtp::header::EXTENSION_PROFILE_ONE_BYTE;
    }
    header.extension = !header.extensions.is_empty();
    // The unmarshalled padding described the original extension block; ours is re-padded on marshal.
    header.extensions_padding = 0;
}

impl Engine {
    // ---- feedback and keyframes ---------------------------------------------------------------

    fn feedback_in(
        &mut self,
        peer_id: PeerId,
        sender_track: &str,
        packets: &[Box<dyn rtc::rtcp::Packet>],
        now: Instant,
    ) {
        let Some(Peer { leg: Leg::Subscribe(leg), .. }) = self.peers.get_mut(&peer_id) else { return };
        let Some(&key) = leg.by_sender_track.get(sender_track) else { return };
        let down = DownTrackKey { subscriber: leg.sub, track: key };
        for p in packets {
            let any = p.as_any();
            if any.is::<PictureLossIndication>() || any.is::<FullIntraRequest>() {
                self.router.keyframe_requested(down, now);
            } else if let Some(remb) = any.downcast_ref::<ReceiverEstimatedMaximumBitrate>() {
                // The browser's own estimate of what it can receive. Pace with headroom: REMB tracks the
                // incoming rate (≈1.05–1.5×), so pacing at exactly REMB would never let it ramp up.
                leg.pacer.set_bitrate(Some(((remb.bitrate as f64 * 2.0) as u64).max(1_000_000)));
            }
        }
    }

    fn request_keyframes(&mut self, now: Instant) {
        let mut due = std::mem::take(&mut self.keyframe_tracks);
        due.clear();
        self.router.poll_keyframe_requests(now, &mut due);
        for &key in &due {
            if self.program_keyframe_request(key, now) {
                continue; // asked of its sources; their PLIs follow in this flush
            }
            let Some((peer_id, rtc_track)) = self.tracks.get(&key).and_then(|t| t.feed.clone()) else { continue };
            let Some(Peer { pc, leg: Leg::Publish(leg), .. }) = self.peers.get_mut(&peer_id) else { continue };
            let Some(inc) = leg.incoming.get(&rtc_track) else { continue };
            let pli = PictureLossIndication { sender_ssrc: 0, media_ssrc: inc.ssrc };
            match pc.rtp_receiver(inc.receiver).map(|mut r| r.write_rtcp(now, vec![Box::new(pli)])) {
                Some(Ok(())) => debug!(track = ?key, ssrc = inc.ssrc, "keyframe requested upstream (PLI)"),
                Some(Err(e)) => warn!(error = %e, "PLI upstream"),
                None => warn!(track = ?key, "PLI upstream: receiver gone"),
            }
            self.mark_dirty(peer_id);
        }
        self.keyframe_tracks = due;
    }

    fn tick_speakers(&mut self, now: Instant) {
        for (room_id, room) in &mut self.rooms {
            if let Some(change) = room.speakers.tick(now) {
                let participant = change.and_then(|p| self.parts.get(&p)).map(|p| p.id.clone());
                let _ = self.events.send(SfuEvent::ActiveSpeaker { room: room_id.clone(), participant });
            }
        }
    }

    // ---- subscribing --------------------------------------------------------------------------

    fn subscribe_peer(&mut self, part_id: PartId, now: Instant) -> Result<PeerId, SfuError> {
        let Some(part) = self.parts.get(&part_id) else {
            return Err(SfuError::UnknownParticipant(part_id.to_string()));
        };
        if let Some(id) = part.subscribe {
            return Ok(id);
        }
        let sub = part.sub_key;
        let ufrag = peer::random_token(16);
        let pc = peer::build(PcKind::Subscribe, &ufrag, self.announced, now)?;
        let id = self.id();
        let leg = SubscribeLeg {
            sub,
            downs: HashMap::new(),
            by_sender_track: HashMap::new(),
            offer_outstanding: false,
            renegotiate_after_answer: false,
            connected: false,
            queue: LossyQueue::with_capacity(self.config.subscriber_queue),
            pacer: Pacer::new(None, 256 * 1024),
        };
        self.insert_peer(id, Peer::new(pc, part_id, ufrag, Leg::Subscribe(leg)));
        if let Some(p) = self.parts.get_mut(&part_id) {
            p.subscribe = Some(id);
        }
        Ok(id)
    }

    /// Registers with the router every downtrack of this subscriber that is negotiated, once the
    /// connection is up (the router then asks for a keyframe for each new video downtrack).
    fn start_routing(&mut self, peer_id: PeerId, now: Instant) {
        let Some(Peer { leg: Leg::Subscribe(leg), .. }) = self.peers.get_mut(&peer_id) else { return };
        if !leg.connected {
            return;
        }
        let sub = leg.sub;
        for (key, down) in leg.downs.iter_mut() {
            if down.pt.is_some() && !down.routed {
                down.routed = true;
                self.router.subscribe(DownTrackKey { subscriber: sub, track: *key }, down.ssrc, now);
            }
        }
    }

    fn insert_peer(&mut self, id: PeerId, peer: Peer) {
        self.by_ufrag.insert(peer.ufrag.clone(), id);
        self.peers.insert(id, peer);
    }

    fn add_downtrack(&mut self, subscriber: PartId, key: TrackKey, now: Instant) {
        let Some(track) = self.tracks.get(&key) else { return };
        let info = track.info.clone();
        let peer_id = match self.subscribe_peer(subscriber, now) {
            Ok(id) => id,
            Err(e) => {
                warn!(error = %e, "cannot create a subscribe connection");
                return;
            }
        };
        let Some(Peer { pc, leg: Leg::Subscribe(leg), .. }) = self.peers.get_mut(&peer_id) else { return };
        let ssrc = rand::random::<u32>();
        let (kind, codec) = match info.kind {
            MediaKind::Audio => (RtpCodecKind::Audio, peer::opus_codec()),
            MediaKind::Video => (RtpCodecKind::Video, peer::vp8_codec()),
        };
        let track = MediaStreamTrack::new(
            info.participant.to_string(),
            info.id.clone(),
            info.id.clone(),
            kind,
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters { ssrc: Some(ssrc), ..Default::default() },
                codec,
                ..Default::default()
            }],
        );
        match pc.add_track(track) {
            Ok(sender) => {
                leg.downs.insert(
                    key,
                    Down {
                        sender,
                        ssrc,
                        pt: None,
                        routed: false,
                        mid: None,
                        mid_ext: None,
                        extensions: Vec::new(),
                        ext_map: None,
                    },
                );
                leg.by_sender_track.insert(info.id.clone(), key);
                self.negotiate(peer_id, now);
            }
            Err(e) => warn!(error = %e, track = %info.id, "cannot add a track to a subscriber"),
        }
    }

    fn remove_downtrack(&mut self, subscriber: PartId, key: TrackKey, now: Instant) {
        let Some(peer_id) = self.parts.get(&subscriber).and_then(|p| p.subscribe) else { return };
        let Some(Peer { pc, leg: Leg::Subscribe(leg), .. }) = self.peers.get_mut(&peer_id) else { return };
        let Some(down) = leg.downs.remove(&key) else { return };
        leg.by_sender_track.retain(|_, k| *k != key);
        self.router.unsubscribe(DownTrackKey { subscriber: leg.sub, track: key });
        if let Err(e) = pc.remove_track(down.sender) {
            debug!(error = %e, "remove_track");
        }
        self.negotiate(peer_id, now);
    }

    /// Sends a new subscribe offer, or remembers to once the outstanding one is answered.
    fn negotiate(&mut self, peer_id: PeerId, now: Instant) {
        let Some(Peer { pc, leg: Leg::Subscribe(leg), owner, .. }) = self.peers.get_mut(&peer_id) else { return };
        if leg.offer_outstanding {
            leg.renegotiate_after_answer = true;
            return;
        }
        let offer = match pc.create_offer(None) {
            Ok(o) => o,
            Err(e) => {
                warn!(error = %e, "create_offer");
                return;
            }
        };
        let sdp = offer.sdp.clone();
        if let Err(e) = pc.set_local_description(now, offer) {
            warn!(error = %e, "set_local_description(offer)");
            return;
        }
        leg.offer_outstanding = true;
        // Which mid carries which track: the browser maps its receivers with this.
        let mut tracks = Vec::new();
        for t in pc.get_transceivers().collect::<Vec<_>>() {
            let Some(tr) = pc.rtp_transceiver(t) else { continue };
            let (Some(sender), Some(mid)) = (tr.sender(), tr.mid().clone()) else { continue };
            if let Some(key) = leg.downs.iter().find(|(_, d)| d.sender == sender).map(|(k, _)| *k)
                && let Some(track) = self.tracks.get(&key)
            {
                tracks.push(SubscribedTrack { mid: mid.clone(), track: track.info.clone() });
                if let Some(d) = leg.downs.get_mut(&key) {
                    d.mid = Some(Bytes::from(mid.into_bytes()));
                }
            }
        }
        let owner = *owner;
        if let Some(part) = self.parts.get(&owner) {
            let _ = self.events.send(SfuEvent::SubscribeOffer {
                room: part.room.clone(),
                participant: part.id.clone(),
                sdp,
                tracks,
            });
        }
        self.mark_dirty(peer_id);
    }

    // ---- commands -----------------------------------------------------------------------------

    fn command(&mut self, c: Command) {
        let now = Instant::now();
        match c {
            Command::Join { room, participant, reply } => {
                let _ = reply.send(self.join(room, participant, now));
            }
            Command::PublishOffer { room, participant, sdp, mids, reply } => {
                let _ = reply.send(self.publish_offer(&room, &participant, sdp, mids, now));
            }
            Command::SubscribeAnswer { room, participant, sdp, reply } => {
                let _ = reply.send(self.subscribe_answer(&room, &participant, sdp, now));
            }
            Command::AddCandidate { room, participant, pc, candidate, reply } => {
                let _ = reply.send(self.add_candidate(&room, &participant, pc, candidate));
            }
            Command::Leave { room, participant, reply } => {
                let _ = reply.send(self.leave(&room, &participant, now));
            }
            Command::SetForwarding { room, participant, source, enabled, reply } => {
                let _ = reply.send(self.set_forwarding(&room, &participant, source, enabled, now));
            }
            Command::Stats { reply } => {
                let _ = reply.send(Ok(SfuStats {
                    rooms: self.rooms.len(),
                    participants: self.parts.len(),
                    peer_connections: self.peers.len(),
                    published_tracks: self.tracks.len(),
                    subscriptions: self.router.subscription_count(),
                    forwarded_packets: self.forwarded,
                    dropped_packets: self.dropped,
                    gated_packets: self.router.gated_packets(),
                }));
            }
            Command::Participants { room, reply } => {
                let ids = self
                    .rooms
                    .get(&room)
                    .map(|r| r.participants.iter().filter_map(|p| self.parts.get(p)).map(|p| p.id.clone()).collect());
                let _ = reply.send(Ok(ids.unwrap_or_default()));
            }
            Command::ProgramOpen { program, audio_slots, reply } => {
                let _ = reply.send(self.program_open(program, audio_slots, now));
            }
            Command::ProgramSelect { program, selection, reply } => {
                let _ = reply.send(self.program_select(&program, selection, now));
            }
            Command::ProgramClose { program, reply } => {
                let _ = reply.send(self.program_close(&program, now));
            }
            Command::WhepOffer { program, viewer, sdp, reply } => {
                let _ = reply.send(self.whep_offer(&program, &viewer, sdp, now));
            }
            Command::WhipOffer { room, participant, sdp, reply } => {
                let _ = reply.send(self.whip_offer(room, participant, sdp, now));
            }
            Command::RecordStart { program, dir, reply } => {
                let _ = reply.send(self.record_start(&program, &dir, now));
            }
            Command::RecordStop { program, reply } => {
                let (done, pending) = oneshot::channel();
                self.record_stop(&program, done);
                let _ = reply.send(Ok(pending));
            }
        }
    }

    fn set_forwarding(
        &mut self,
        room: &RoomId,
        participant: &ParticipantId,
        source: TrackSource,
        enabled: bool,
        now: Instant,
    ) -> Result<(), SfuError> {
        let part_id = self.part_id(room, participant)?;
        let Some(part) = self.parts.get_mut(&part_id) else {
            return Err(SfuError::UnknownParticipant(participant.to_string()));
        };
        let changed = if enabled { part.gated.remove(&source) } else { part.gated.insert(source) };
        if changed {
            info!(room = %room, participant = %participant, source = source.as_str(), enabled, "forwarding gate");
        }
        if let Some(&key) = part.tracks.get(&source) {
            self.router.set_forwarding(key, enabled, now);
        }
        Ok(())
    }

    fn part_id(&self, room: &RoomId, participant: &ParticipantId) -> Result<PartId, SfuError> {
        self.by_name
            .get(&(room.clone(), participant.clone()))
            .copied()
            .ok_or_else(|| SfuError::UnknownParticipant(participant.to_string()))
    }

    fn join(&mut self, room: RoomId, participant: ParticipantId, now: Instant) -> Result<(), SfuError> {
        let _span = info_span!("join", room = %room, participant = %participant).entered();
        if let Ok(existing) = self.part_id(&room, &participant) {
            // Reconnection: a fresh pair of connections; published tracks stay announced (paused).
            info!("participant rejoins: old connections closed, tracks paused");
            // The subscriber key stays the participant's id: close_connections removed its old
            // downtracks from the router, the new ones start fresh streams (new SSRCs).
            self.close_connections(existing, now);
            self.subscribe_to_room(existing, now);
            return Ok(());
        }
        let id = self.id();
        let sub_key = SubscriberKey(id);
        self.parts.insert(
            id,
            Participant {
                room: room.clone(),
                id: participant.clone(),
                publish: None,
                subscribe: None,
                sub_key,
                tracks: HashMap::new(),
                gated: HashSet::new(),
                transient: false,
            },
        );
        self.by_name.insert((room.clone(), participant), id);
        self.rooms
            .entry(room)
            .or_insert_with(|| Room { participants: Vec::new(), speakers: ActiveSpeakerDetector::new() })
            .participants
            .push(id);
        self.subscribe_to_room(id, now);
        Ok(())
    }

    fn subscribe_to_room(&mut self, part_id: PartId, now: Instant) {
        let Some(room) = self.parts.get(&part_id).map(|p| p.room.clone()) else { return };
        let mut keys: Vec<TrackKey> =
            self.tracks.iter().filter(|(_, t)| t.room == room && t.owner != part_id).map(|(k, _)| *k).collect();
        keys.sort();
        for key in keys {
            self.add_downtrack(part_id, key, now);
        }
    }

    fn publish_offer(
        &mut self,
        room: &RoomId,
        participant: &ParticipantId,
        sdp: String,
        mids: Vec<PublishedMid>,
        now: Instant,
    ) -> Result<String, SfuError> {
        let part_id = self.part_id(room, participant)?;
        let offer = RTCSessionDescription::offer(sdp).map_err(|e| SfuError::InvalidSdp(e.to_string()))?;
        let peer_id = match self.parts.get(&part_id).and_then(|p| p.publish) {
            Some(id) => id,
            None => {
                let ufrag = peer::random_token(16);
                let pc = peer::build(PcKind::Publish, &ufrag, self.announced, now)?;
                let id = self.id();
                self.insert_peer(id, Peer::new(pc, part_id, ufrag, Leg::Publish(PublishLeg::default())));
                if let Some(p) = self.parts.get_mut(&part_id) {
                    p.publish = Some(id);
                }
                id
            }
        };
        let Some(Peer { pc, leg: Leg::Publish(leg), .. }) = self.peers.get_mut(&peer_id) else {
            return Err(SfuError::Transport("publish connection vanished".into()));
        };
        let answer = pc
            .set_remote_description(now, offer)
            .and_then(|_| pc.create_answer(None))
            .map_err(|e| SfuError::InvalidSdp(e.to_string()))?;
        let sdp = answer.sdp.clone();
        pc.set_local_description(now, answer).map_err(|e| SfuError::InvalidSdp(e.to_string()))?;
        leg.mids = mids.iter().map(|m| (m.mid.clone(), m.source)).collect();
        let sources: HashSet<TrackSource> = mids.iter().map(|m| m.source).collect();
        self.mark_dirty(peer_id);
        // Sources the publisher no longer sends are unpublished.
        let gone: Vec<TrackKey> = self
            .parts
            .get(&part_id)
            .map(|p| p.tracks.iter().filter(|(s, _)| !sources.contains(s)).map(|(_, k)| *k).collect())
            .unwrap_or_default();
        for key in gone {
            self.unpublish(key, now);
        }
        let mut new: Vec<TrackSource> = sources.into_iter().collect();
        new.sort_by_key(|s| s.as_str());
        for source in new {
            self.publish_track(part_id, source, now);
        }
        Ok(sdp)
    }

    fn subscribe_answer(
        &mut self,
        room: &RoomId,
        participant: &ParticipantId,
        sdp: String,
        now: Instant,
    ) -> Result<(), SfuError> {
        let part_id = self.part_id(room, participant)?;
        let peer_id = self.parts.get(&part_id).and_then(|p| p.subscribe).ok_or(SfuError::NoPendingOffer)?;
        let Some(Peer { pc, leg: Leg::Subscribe(leg), .. }) = self.peers.get_mut(&peer_id) else {
            return Err(SfuError::NoPendingOffer);
        };
        if !leg.offer_outstanding {
            return Err(SfuError::NoPendingOffer);
        }
        let answer = RTCSessionDescription::answer(sdp).map_err(|e| SfuError::InvalidSdp(e.to_string()))?;
        pc.set_remote_description(now, answer).map_err(|e| SfuError::InvalidSdp(e.to_string()))?;
        leg.offer_outstanding = false;
        // Now the payload types and extension ids of every new downtrack are known.
        for (key, down) in leg.downs.iter_mut() {
            // Only downtracks this answer negotiated (they got their mid in the offer): one added
            // while the offer was out would read not-yet-negotiated parameters (every codec and
            // extension of the engine) and keep them; it waits for the next offer instead.
            if down.pt.is_none() && down.mid.is_some() {
                let kind = self.tracks.get(key).map_or(MediaKind::Video, |t| t.info.kind);
                down.negotiated(pc, kind);
            }
        }
        let again = std::mem::take(&mut leg.renegotiate_after_answer);
        self.start_routing(peer_id, now);
        self.mark_dirty(peer_id);
        if again {
            self.negotiate(peer_id, now);
        }
        Ok(())
    }

    fn add_candidate(
        &mut self,
        room: &RoomId,
        participant: &ParticipantId,
        kind: PcKind,
        c: IceCandidate,
    ) -> Result<(), SfuError> {
        let part_id = self.part_id(room, participant)?;
        if c.candidate.is_empty() {
            return Ok(()); // end of candidates
        }
        let peer_id = self.parts.get(&part_id).and_then(|p| match kind {
            PcKind::Publish => p.publish,
            PcKind::Subscribe => p.subscribe,
        });
        let Some(peer) = peer_id.and_then(|id| self.peers.get_mut(&id)) else {
            // A candidate for a connection that is not there (yet, or any more): nothing to do.
            return Ok(());
        };
        let init = RTCIceCandidateInit {
            candidate: c.candidate,
            sdp_mid: c.sdp_mid,
            sdp_mline_index: c.sdp_mline_index,
            username_fragment: None,
            url: None,
        };
        // We are ICE-lite: the browser's checks reach us anyway; a bad candidate is still an error.
        peer.pc.add_remote_candidate(init).map_err(|e| SfuError::InvalidCandidate(e.to_string()))
    }

    fn leave(&mut self, room: &RoomId, participant: &ParticipantId, now: Instant) -> Result<(), SfuError> {
        let part_id = self.part_id(room, participant)?;
        let _span = info_span!("leave", room = %room, participant = %participant).entered();
        let keys: Vec<TrackKey> =
            self.parts.get(&part_id).map(|p| p.tracks.values().copied().collect()).unwrap_or_default();
        for key in keys {
            self.unpublish(key, now);
        }
        self.close_connections(part_id, now);
        self.parts.remove(&part_id);
        self.by_name.remove(&(room.clone(), participant.clone()));
        if let Some(r) = self.rooms.get_mut(room) {
            r.participants.retain(|&p| p != part_id);
            r.speakers.remove(&part_id);
            if r.participants.is_empty() {
                self.rooms.remove(room);
            }
        }
        info!("participant left; its connections and tracks are released");
        Ok(())
    }

    /// Removes a published track from the room: router, every subscriber connection, the announcement.
    fn unpublish(&mut self, key: TrackKey, now: Instant) {
        let Some(track) = self.tracks.remove(&key) else { return };
        let downs = self.router.remove_track(key);
        for down in downs {
            self.remove_downtrack(down.subscriber.0, key, now);
        }
        // Subscribers whose answer had not arrived yet are not in the router: clean them too.
        let others: Vec<PartId> = self
            .rooms
            .get(&track.room)
            .map(|r| r.participants.iter().copied().filter(|&p| p != track.owner).collect())
            .unwrap_or_default();
        for other in others {
            self.remove_downtrack(other, key, now);
        }
        if let Some(p) = self.parts.get_mut(&track.owner) {
            p.tracks.retain(|_, k| *k != key);
        }
        if let Some((peer_id, rtc_track)) = &track.feed
            && let Some(Peer { leg: Leg::Publish(leg), .. }) = self.peers.get_mut(peer_id)
        {
            leg.incoming.remove(rtc_track);
        }
        if !self.programs.is_empty() {
            self.program_refresh(now);
        }
        info!(track = %track.info.id, "track unpublished");
        let _ = self.events.send(SfuEvent::TrackUnpublished { room: track.room, track: track.info });
    }

    /// Closes a participant's peer connections (leave or reconnection) and forgets their addresses.
    fn close_connections(&mut self, part_id: PartId, _now: Instant) {
        let Some(part) = self.parts.get_mut(&part_id) else { return };
        let peers = [part.publish.take(), part.subscribe.take()];
        let sub_key = part.sub_key;
        self.router.remove_subscriber(sub_key);
        for peer_id in peers.into_iter().flatten() {
            let Some(mut peer) = self.peers.remove(&peer_id) else { continue };
            if let Err(e) = peer.pc.close() {
                debug!(error = %e, "close");
            }
            // Send the goodbyes (DTLS close_notify) the close produced.
            while let Some(w) = peer.pc.poll_write() {
                self.out.push(w.transport.peer_addr, w.message);
            }
            self.by_ufrag.remove(&peer.ufrag);
            for a in &peer.addrs {
                if self.by_addr.get(a) == Some(&peer_id) {
                    self.by_addr.remove(a);
                }
            }
            if let Some(d) = peer.deadline {
                self.timers.remove(&(d, peer_id));
            }
        }
        // Tracks fed by the closed publish connection are paused until a new one carries them.
        for t in self.tracks.values_mut() {
            if t.owner == part_id {
                t.feed = None;
            }
        }
    }
}
