//! The SFU's public interface: plain Rust types, no `rtc` types, no HTTP/JSON.
//!
//! The signaling crate drives the SFU only through [`Sfu`] (commands) and the [`SfuEvent`] stream.
//! Every participant has two peer connections: `Publish` (the browser offers, the SFU answers; carries
//! what the participant sends) and `Subscribe` (the SFU offers, the browser answers; carries every other
//! participant's tracks). Offers therefore flow in both directions without glare.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A room's id (e.g. `ufficio-anagrafe`); opaque to the SFU.
pub type RoomId = Arc<str>;
/// A participant's id inside a room, stable across reconnections (the token's identity).
pub type ParticipantId = Arc<str>;

/// What a published track carries. One track per source per participant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrackSource {
    Microphone,
    Camera,
    Screen,
}

impl TrackSource {
    pub fn kind(self) -> MediaKind {
        match self {
            TrackSource::Microphone => MediaKind::Audio,
            TrackSource::Camera | TrackSource::Screen => MediaKind::Video,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            TrackSource::Microphone => "microphone",
            TrackSource::Camera => "camera",
            TrackSource::Screen => "screen",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaKind {
    Audio,
    Video,
}

/// Which of a participant's two peer connections a message is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PcKind {
    Publish,
    Subscribe,
}

/// A published track as the room sees it. `id` is `"<participant>/<source>"`: stable across a
/// publisher's reconnection, so subscribers keep their receiver and the rewriter hides the switch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackInfo {
    pub id: String,
    pub participant: ParticipantId,
    pub source: TrackSource,
    pub kind: MediaKind,
}

impl TrackInfo {
    pub fn new(participant: ParticipantId, source: TrackSource) -> Self {
        TrackInfo { id: format!("{participant}/{}", source.as_str()), kind: source.kind(), participant, source }
    }
}

/// One m-line of a subscribe offer: which remote track the browser will receive on `mid`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscribedTrack {
    pub mid: String,
    pub track: TrackInfo,
}

/// A publish offer announces which of its m-lines carries which source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedMid {
    pub mid: String,
    pub source: TrackSource,
}

/// A trickled ICE candidate, as the browser's `RTCIceCandidateInit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct IceCandidate {
    pub candidate: String,
    #[serde(rename = "sdpMid", default, skip_serializing_if = "Option::is_none")]
    pub sdp_mid: Option<String>,
    #[serde(rename = "sdpMLineIndex", default, skip_serializing_if = "Option::is_none")]
    pub sdp_mline_index: Option<u16>,
}

/// Connection state of one peer connection, as far as the room cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeerState {
    Connecting,
    Connected,
    Disconnected,
    Failed,
    Closed,
}

/// What the SFU tells the signaling layer.
#[derive(Debug, Clone, PartialEq)]
pub enum SfuEvent {
    /// A participant's publish offer described this track: it is announced (and subscribers
    /// negotiate it) at once, before its media flows; video reaches them from its first keyframe.
    TrackPublished {
        room: RoomId,
        track: TrackInfo,
    },
    /// A track stopped being published (renegotiated away, or its participant left).
    TrackUnpublished {
        room: RoomId,
        track: TrackInfo,
    },
    /// The subscribe peer connection of `participant` needs this offer delivered; answer with
    /// [`Sfu::subscribe_answer`]. At most one offer is outstanding per participant.
    SubscribeOffer {
        room: RoomId,
        participant: ParticipantId,
        sdp: String,
        tracks: Vec<SubscribedTrack>,
    },
    /// A server-side ICE candidate (normally none: the host candidate is in the SDP).
    LocalCandidate {
        room: RoomId,
        participant: ParticipantId,
        pc: PcKind,
        candidate: IceCandidate,
    },
    PeerState {
        room: RoomId,
        participant: ParticipantId,
        pc: PcKind,
        state: PeerState,
    },
    /// The loudest participant of a room changed (from RFC 6464 audio levels); `None` = silence.
    ActiveSpeaker {
        room: RoomId,
        participant: Option<ParticipantId>,
    },
}

/// Counts of live state, for tests ("everything is released") and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SfuStats {
    pub rooms: usize,
    pub participants: usize,
    pub peer_connections: usize,
    pub published_tracks: usize,
    pub subscriptions: usize,
    /// RTP packets written to subscribers (and their payload bytes), since the engine started.
    pub forwarded_packets: u64,
    pub forwarded_bytes: u64,
    /// Packets a subscriber's full queue evicted (a slow subscriber; its video resumes at a keyframe).
    pub dropped_packets: u64,
    /// Packets of gated tracks ([`Sfu::set_forwarding`]) dropped by the router.
    pub gated_packets: u64,
    /// NACK messages from subscribers (answered by retransmission) and to publishers.
    pub nacks_received: u64,
    pub nacks_sent: u64,
    /// Keyframe requests (PLI/FIR) from subscribers, and PLIs sent upstream (throttled per track).
    pub plis_received: u64,
    pub plis_sent: u64,
    /// RTX retransmissions sent to subscribers, and received from publishers.
    pub rtx_sent: u64,
    pub rtx_received: u64,
    /// Bytes of room the idle stage queues of established `rtc` connections gave back (grown by
    /// their handshakes, never filled again by media the engine moves itself).
    pub trimmed_queue_bytes: u64,
    /// Time the engine threads spent working (not waiting) since they started, summed: its rate
    /// is the busy share in cores.
    pub busy: Duration,
}

/// Sums the counts of several engines (a room or program served by two counts twice).
impl std::ops::AddAssign for SfuStats {
    fn add_assign(&mut self, o: SfuStats) {
        self.rooms += o.rooms;
        self.participants += o.participants;
        self.peer_connections += o.peer_connections;
        self.published_tracks += o.published_tracks;
        self.subscriptions += o.subscriptions;
        self.forwarded_packets += o.forwarded_packets;
        self.forwarded_bytes += o.forwarded_bytes;
        self.dropped_packets += o.dropped_packets;
        self.gated_packets += o.gated_packets;
        self.nacks_received += o.nacks_received;
        self.nacks_sent += o.nacks_sent;
        self.plis_received += o.plis_received;
        self.plis_sent += o.plis_sent;
        self.rtx_sent += o.rtx_sent;
        self.rtx_received += o.rtx_received;
        self.trimmed_queue_bytes += o.trimmed_queue_bytes;
        self.busy += o.busy;
    }
}

/// One published source of some room: the input of a program feed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SourceRef {
    pub room: RoomId,
    pub participant: ParticipantId,
    pub source: TrackSource,
}

impl SourceRef {
    pub fn new(room: impl Into<RoomId>, participant: impl Into<ParticipantId>, source: TrackSource) -> Self {
        SourceRef { room: room.into(), participant: participant.into(), source }
    }
}

/// What a program feed ([`crate::Sfu::program_open`]) shows now. Each output takes the FIRST
/// source of its list that is published at the moment (re-evaluated when tracks come and go), so
/// a fallback is written once: `[floor holder, chamber camera, chair]`. An empty list, or a list
/// of which nothing is published, sends nothing (the public page shows its slate).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProgramSelection {
    /// The program's video; a change takes effect at the new source's next keyframe (requested at
    /// once), so viewers never see a broken picture and the SFU never decodes.
    pub video: Vec<SourceRef>,
    /// One list per audio slot of the program (see `program_open`); a change takes effect at once.
    pub audio: Vec<Vec<SourceRef>>,
}

/// One file a program recording wrote ([`crate::Sfu::record_stop`]): raw frames, not re-encoded —
/// VP8 in IVF (timebase 1/90000, presentation times from RTP) or Opus in Ogg.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordedFile {
    pub path: std::path::PathBuf,
    pub kind: MediaKind,
    /// Audio slot index for audio files; 0 for the video file.
    pub slot: usize,
    /// Frames (video) or Opus packets (audio) written.
    pub frames: u64,
    /// When the first frame arrived, in milliseconds after `record_start`; `None` if nothing came.
    /// The remux offsets each file by this, so audio and video line up.
    pub first_frame_ms: Option<u64>,
    /// Presentation time of the last frame relative to the file's first one, in milliseconds.
    pub last_frame_ms: Option<u64>,
}

/// How the SFU is reached from the network.
#[derive(Debug, Clone)]
pub struct SfuConfig {
    /// The one UDP socket every peer connection shares. Bind to a concrete address (e.g. 127.0.0.1:3478),
    /// not a wildcard: the address becomes the ICE host candidate.
    pub udp_bind: SocketAddr,
    /// Address announced in ICE candidates instead of the bound one (NAT 1:1).
    pub announced_ip: Option<IpAddr>,
    /// Per-subscriber queue bound, in packets; beyond it the subscriber skips and asks for a keyframe.
    pub subscriber_queue: usize,
    /// ICE-TCP (RFC 6544 passive candidates): the listener's address; `None` (the default) offers UDP only.
    pub tcp_bind: Option<SocketAddr>,
    /// The TCP address citizens see (behind an L4 front it can differ from `tcp_bind`); defaults to
    /// the bound one with `announced_ip`.
    pub tcp_announced: Option<SocketAddr>,
    /// What one ICE-TCP citizen may cost.
    pub tcp_limits: TcpLimits,
    /// Send runs of datagrams to one destination as one UDP GSO send (Linux ≥ 4.18; turned off by
    /// itself when the kernel refuses it). On by default since 2026-12-07: it was off as a
    /// precaution after the e2e scenario `front_paths` failed with it on (3 of 8 runs before the
    /// engine encrypted forwarded RTP itself, issue 15 step 4; 1 of 26 since, Firefox's ICE-TCP
    /// pair, a path with no UDP send in it), and it forwards a council's viewers at ≈ 0.8–0.9 the
    /// CPU per packet (BENCHMARKS.md, issue 15, 2026-12-07).
    pub udp_gso: bool,
    /// Media threads: each runs its own engine on its own socket bound to the one UDP port
    /// (`SO_REUSEPORT`; datagrams the kernel hands to the wrong thread are passed to the right
    /// one). Rooms are spread over them by [`placement_key`]; a program's WHEP viewers over all of
    /// them. 0 counts as 1; the first thread alone runs the ICE-TCP listener.
    pub media_threads: usize,
}

/// Which media thread a room lives on is decided by this key alone: the part of its id after the
/// first `-` (all of it if there is none). Rooms that feed one program must share it — the
/// council room `council-7`, the chamber encoder's `chamber-7` and the program `live-7` do — since a
/// program shows only sources on its own thread.
pub fn placement_key(room: &str) -> &str {
    room.split_once('-').map_or(room, |(_, rest)| rest)
}

/// Bounds on the ICE-TCP surface, which anyone on the internet can reach.
#[derive(Debug, Clone)]
pub struct TcpLimits {
    /// Open connections in total.
    pub max_connections: usize,
    /// Open connections from one IP address. Behind an L4 front every connection has the front's
    /// address: raise it there.
    pub max_per_address: usize,
    /// A connection must send a STUN binding request that names one of our peer connections
    /// within this time, or it is closed.
    pub first_stun: Duration,
    /// Outgoing bytes queued per connection; beyond it RTP is dropped, control last.
    pub write_queue_bytes: usize,
    /// The kernel send buffer asked for each connection (Linux doubles it). Kept small so a slow
    /// path fills our lossy queue, which drops old media, rather than megabytes of kernel buffer
    /// that deliver it seconds late; ≈ 20 Mbit/s at 100 ms round trip.
    pub socket_send_buffer: u32,
}

impl Default for TcpLimits {
    fn default() -> Self {
        TcpLimits {
            max_connections: 1024,
            max_per_address: 16,
            first_stun: Duration::from_secs(5),
            write_queue_bytes: 256 * 1024,
            socket_send_buffer: 128 * 1024,
        }
    }
}

impl Default for SfuConfig {
    fn default() -> Self {
        SfuConfig {
            udp_bind: SocketAddr::from(([127, 0, 0, 1], 3478)),
            announced_ip: None,
            subscriber_queue: 512,
            tcp_bind: None,
            tcp_announced: None,
            tcp_limits: TcpLimits::default(),
            udp_gso: true,
            media_threads: 1,
        }
    }
}

/// Errors the SFU returns to its caller.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum SfuError {
    #[error("the media engine has stopped")]
    Stopped,
    #[error("unknown participant {0}")]
    UnknownParticipant(String),
    #[error("participant {0} is already in the room")]
    AlreadyJoined(String),
    #[error("invalid session description: {0}")]
    InvalidSdp(String),
    #[error("invalid ICE candidate: {0}")]
    InvalidCandidate(String),
    #[error("no subscribe offer is waiting for an answer")]
    NoPendingOffer,
    #[error("media transport error: {0}")]
    Transport(String),
    #[error("no program feed {0}")]
    UnknownProgram(String),
    #[error("program feed {0} exists already")]
    ProgramExists(String),
    #[error("the offer carries no media the SFU can take: {0}")]
    UnusableOffer(String),
    #[error("recording failed: {0}")]
    Recording(String),
    #[error("cannot open the media socket on {addr}: {reason}")]
    Bind { addr: SocketAddr, reason: String },
}

impl fmt::Display for PcKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PcKind::Publish => "publish",
            PcKind::Subscribe => "subscribe",
        })
    }
}
