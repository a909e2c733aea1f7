//! One synthetic peer connection of the load tool: a sans-IO `rtc` connection, its own UDP socket,
//! the publisher's send cursors and the subscriber's per-stream counters.
//!
//! A subscriber connection receives by the light path by default ([`Receive::Light`], see
//! [`super::recv`]): once connected, SRTP media is counted from its clear header and only probes,
//! a sample and everything that is not media go through `rtc`.
//!
//! Each connection has its own socket because a server with one media port (Sportello) sends every
//! connection's DTLS and SRTP from the same address: nothing in those datagrams but our local port
//! tells connections apart. The engine drives all of them from one thread through one epoll set.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use rtc::interceptor::Registry;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::interceptor_registry::{
    configure_nack, configure_simulcast_extension_headers, configure_twcc_receiver_only, register_default_interceptors,
};
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_OPUS, MIME_TYPE_VP8, MediaEngine};
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::event::RTCPeerConnectionEvent;
use rtc::peer_connection::message::RTCMessage;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::transport::RTCDtlsRole;
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::receiver_report::ReceiverReport;
use rtc::rtcp::reception_report::ReceptionReport;
use rtc::rtcp::sender_report::SenderReport;
use rtc::rtp;
use rtc::rtp_transceiver::RTCRtpSenderId;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};

use super::err;
use super::media::Media;
use super::recv::{self, BATCH, Kind, RecvBatch};

/// Marks the audio payloads that carry a send time (every [`PROBE_EVERY`]th audio packet):
/// magic, then the send time in nanoseconds since the engine's epoch (u64 BE).
pub const PROBE_MAGIC: &[u8; 8] = b"SPLOADTS";
pub const PROBE_EVERY: u64 = 5;
/// A probe's payload: [`PROBE_MAGIC`] and the send time.
const PROBE_LEN: usize = 16;

/// On a light connection, one media packet in this many (besides the probes) still goes through
/// `rtc`, whose decryption checks that the light path counts genuine SRTP of this connection.
pub const SAMPLE_EVERY: u64 = 32;

/// How a subscriber connection reads its media.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Receive {
    /// Every datagram through `rtc`'s read pipeline (decryption, interceptors), as a browser would.
    Full,
    /// Once connected, media counted from the SRTP packet's clear RTP header; `rtc` gets the rest.
    Light,
}

/// What a connection does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Sends an Opus and a VP8 track; `usize` staggers its place in the clip.
    Publish(usize),
    /// Receives what the server offers (Sportello's subscribe connection, a Janus subscriber).
    Subscribe,
    /// A WHEP player: offers receive-only m-lines itself (one video, `audio` audio).
    Whep { audio: usize },
}

const VIDEO_FRAME: Duration = Duration::from_micros(33_333);
const AUDIO_FRAME: Duration = Duration::from_millis(20);
/// How often a light subscriber sends a receiver report (a browser's regular interval).
const RECEIVER_REPORT_EVERY: Duration = Duration::from_secs(1);
/// How often our ICE agent checks while connecting: a browser paces its checks at about 50 ms
/// (libwebrtc's weak-ping interval); with `rtc`'s 200 ms a join whose nomination missed the first
/// check waited a fifth of a second more.
const ICE_CHECK_INTERVAL: Duration = Duration::from_millis(50);

/// One outgoing track of a publisher, walking the shared clip in a loop.
struct Outgoing {
    sender: RTCRtpSenderId,
    ssrc: u32,
    video: bool,
    payload_type: Option<u8>,
    seq: u16,
    timestamp: u32,
    /// Index of the next frame in the clip.
    cursor: usize,
    /// Frames sent since `start`; the next one is due at `start + sent * frame time`.
    sent: u64,
    start: Instant,
    /// A keyframe was asked for (PLI/FIR): the next frame sent is the clip's next keyframe, as a
    /// browser's encoder would answer (the clip is pre-encoded, so we seek instead of encoding).
    keyframe_requested: bool,
}

/// What a subscriber saw of one incoming stream.
#[derive(Default)]
struct Incoming {
    first: Option<i64>,
    /// The highest extended sequence number (with wrap-arounds counted).
    highest: i64,
    received: u64,
}

impl Incoming {
    /// Counts a packet; true when it is the first or beyond the highest so far (not late).
    fn record(&mut self, seq: u16) -> bool {
        self.received += 1;
        match self.first {
            None => {
                self.first = Some(seq as i64);
                self.highest = seq as i64;
                true
            }
            Some(_) => {
                // Extended relative to the highest number so far (RFC 3550 A.1), never to the last
                // packet: a late one (reordered, or a NACK's retransmission) moved the reference
                // back, and the next in-order packet then pushed `highest` past what was sent —
                // loss the subscriber never had (4–41 % in office runs with retransmissions).
                let ext = self.highest + seq.wrapping_sub(self.highest as u16) as i16 as i64;
                let ahead = ext > self.highest;
                self.highest = self.highest.max(ext);
                ahead
            }
        }
    }

    fn expected(&self) -> u64 {
        self.first.map_or(0, |first| (self.highest - first + 1) as u64)
    }
}

/// Counters a subscriber contributes to the run's figures.
#[derive(Default, Clone, Copy)]
pub struct Counts {
    pub rtp: u64,
    pub expected: u64,
    pub received: u64,
    /// Light path: packets handed to `rtc` as a sample or probe candidate, and how many of them
    /// came out decrypted.
    pub sampled: u64,
    pub sampled_ok: u64,
}

impl Counts {
    pub fn add(&mut self, c: &Counts) {
        self.rtp += c.rtp;
        self.expected += c.expected;
        self.received += c.received;
        self.sampled += c.sampled;
        self.sampled_ok += c.sampled_ok;
    }
}

pub struct Peer {
    pc: RTCPeerConnection,
    pub socket: UdpSocket,
    local: SocketAddr,
    pub state: RTCPeerConnectionState,
    /// The participant's name (publishers: the offered figure is per publisher).
    pub name: String,
    pub role: Role,
    outgoing: Vec<Outgoing>,
    /// Per SSRC; a subscriber has a handful, so a scan beats hashing.
    incoming: Vec<(u32, Incoming)>,
    /// This connection counts media by the light path once connected; `light_on` once it does.
    light: bool,
    light_on: bool,
    /// Light path: media packets seen, and those handed to `rtc` (see [`Counts`]).
    light_seen: u64,
    sampled: u64,
    sampled_ok: u64,
    pub rtp_received: u64,
    /// RTP packets this publisher handed to its connection.
    pub rtp_sent: u64,
    /// When its participant started joining (signaling connect), and when its first media arrived.
    pub started: Instant,
    pub first_media: Option<Instant>,
    /// When this connection was made (its offer or answer arrived) and when it got connected:
    /// where a join's time went (`LOAD_DEBUG`).
    pub created: Instant,
    pub connected: Option<Instant>,
    /// The server is ICE-lite (Sportello): it takes DTLS as soon as it has our nomination.
    remote_lite: bool,
    pub next_timeout: Option<Instant>,
    /// Light path: the last sender report of each stream (SSRC, the middle of its NTP time, when it
    /// arrived), and when this connection sends its next receiver report on them.
    sender_reports: Vec<(u32, u32, Instant)>,
    next_receiver_report: Option<Instant>,
    /// Something happened to it since its last drain (a datagram, a command).
    pub touched: bool,
    /// The engine's bookkeeping: queued for this turn's drain; the timer it has in its heap.
    pub queued: bool,
    pub scheduled: Option<Instant>,
}

impl Peer {
    pub fn new(name: &str, role: Role, started: Instant, bind: IpAddr, receive: Receive) -> Result<Peer, String> {
        let socket = UdpSocket::bind(SocketAddr::new(bind, 0)).map_err(err("binding a client socket"))?;
        socket.set_nonblocking(true).map_err(err("making a socket non-blocking"))?;
        let local = socket.local_addr().map_err(err("reading a socket's address"))?;
        let mut me = MediaEngine::default();
        me.register_default_codecs().map_err(err("registering codecs"))?;
        let light = receive == Receive::Light && !matches!(role, Role::Publish(_));
        let registry = if light {
            // The same SDP as the full path (NACK, PLI, transport-cc, the simulcast extensions), so
            // the server negotiates the same legs, but no interceptor: they would see only the
            // sample, and a NACK generator would ask for the packets we did not hand to `rtc`,
            // receiver reports would announce ≈ 97 % loss. So a light subscriber sends no NACK or
            // transport-cc feedback — nothing is lost on loopback to NACK — and sends its own
            // receiver reports, each second, that tell the round trip (as a browser's do, and as
            // both servers use: it sizes their retransmission histories), no loss figures.
            let _ = configure_nack(Registry::new(), &mut me);
            configure_simulcast_extension_headers(&mut me).map_err(err("extension headers"))?;
            let _ = configure_twcc_receiver_only(Registry::new(), &mut me).map_err(err("transport-cc"))?;
            Registry::new().with(
                rtc::interceptor::Slot::from(sportello_sfu::test_support::SLOT),
                sportello_sfu::test_support::DeliverFeedback::of(|p| p.as_any().is::<SenderReport>()),
            )
        } else {
            // Keyframe requests must reach us: a publisher answers them (see `Outgoing::keyframe_requested`).
            let registry = Registry::new().with(
                rtc::interceptor::Slot::from(sportello_sfu::test_support::SLOT),
                sportello_sfu::test_support::DeliverFeedback::default(),
            );
            register_default_interceptors(registry, &mut me).map_err(err("interceptors"))?
        };
        // Answering, take the DTLS client's part as browsers do (`a=setup:active`); `rtc` would
        // answer an ICE-lite server passive, and that server's first flight then waits for its own
        // next timer (the same `rtc` delay as below, on the server's side).
        let se = SettingEngineBuilder::new()
            .with_multicast_dns_mode(rtc::ice::mdns::MulticastDnsMode::Disabled)
            .with_answering_dtls_role(RTCDtlsRole::Client)
            .with_ice_connection_attempts(Some(ICE_CHECK_INTERVAL), None)
            .build();
        let mut pc = RTCPeerConnectionBuilder::new()
            .with_configuration(RTCConfigurationBuilder::new().build())
            .with_setting_engine(se)
            .with_media_engine(me)
            .with_interceptor_registry(registry)
            .build(Instant::now())
            .map_err(err("building a peer connection"))?;
        let candidate = sportello_sfu::test_support::host_candidate(local).map_err(err("host candidate"))?;
        pc.add_local_candidate(candidate).map_err(err("adding the host candidate"))?;
        Ok(Peer {
            pc,
            socket,
            local,
            state: RTCPeerConnectionState::New,
            name: name.to_owned(),
            role,
            outgoing: Vec::new(),
            incoming: Vec::new(),
            light,
            light_on: false,
            light_seen: 0,
            sampled: 0,
            sampled_ok: 0,
            rtp_received: 0,
            rtp_sent: 0,
            started,
            first_media: None,
            created: Instant::now(),
            connected: None,
            remote_lite: false,
            next_timeout: None,
            sender_reports: Vec::new(),
            next_receiver_report: None,
            touched: true,
            queued: false,
            scheduled: None,
        })
    }

    /// A WHEP player's transceivers: one video and `audio` audio m-lines, receive-only, in the
    /// order of the live page (`web/public/live.js`).
    pub fn add_receivers(&mut self, audio: usize) -> Result<(), String> {
        use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
        for kind in std::iter::once(RtpCodecKind::Video).chain(std::iter::repeat_n(RtpCodecKind::Audio, audio)) {
            let init = RTCRtpTransceiverInit {
                direction: RTCRtpTransceiverDirection::Recvonly,
                streams: vec![],
                send_encodings: vec![],
            };
            self.pc.add_transceiver_from_kind(kind, Some(init)).map_err(err("adding a receiver"))?;
        }
        Ok(())
    }

    /// Adds an Opus and a VP8 sending track; `index` staggers where in the clip the video starts,
    /// so that publishers' keyframes do not all coincide.
    pub fn add_tracks(&mut self, name: &str, index: usize, media: &Media) -> Result<(), String> {
        for video in [false, true] {
            let ssrc: u32 = rand::random();
            let track = crate::rtc_client::sending_track(name, video, ssrc);
            let sender = self.pc.add_track(track).map_err(err("adding a track"))?;
            let keyframes: Vec<usize> =
                media.video.iter().enumerate().filter(|(_, f)| f.keyframe).map(|(i, _)| i).collect();
            let cursor = if video && !keyframes.is_empty() { keyframes[index % keyframes.len()] } else { 0 };
            self.outgoing.push(Outgoing {
                sender,
                ssrc,
                video,
                payload_type: None,
                seq: rand::random(),
                timestamp: rand::random(),
                cursor,
                sent: 0,
                start: Instant::now(),
                keyframe_requested: false,
            });
        }
        Ok(())
    }

    /// Creates and applies an offer: its SDP and the mid of each sending track (`true` = video).
    pub fn offer(&mut self) -> Result<(String, Vec<(String, bool)>), String> {
        let offer = self.pc.create_offer(None).map_err(err("creating an offer"))?;
        let sdp = offer.sdp.clone();
        self.pc.set_local_description(Instant::now(), offer).map_err(err("applying our offer"))?;
        let mut mids = Vec::new();
        for t in self.pc.get_transceivers().collect::<Vec<_>>() {
            let Some(tr) = self.pc.rtp_transceiver(t) else { continue };
            if let (Some(sender), Some(mid)) = (tr.sender(), tr.mid().clone())
                && let Some(o) = self.outgoing.iter().find(|o| o.sender == sender)
            {
                mids.push((mid, o.video));
            }
        }
        Ok((sdp, mids))
    }

    pub fn apply_answer(&mut self, sdp: String) -> Result<(), String> {
        self.remote_lite = sdp.contains("a=ice-lite");
        let answer = RTCSessionDescription::answer(sdp).map_err(err("parsing the answer"))?;
        self.pc.set_remote_description(Instant::now(), answer).map_err(err("applying the answer"))
    }

    /// Applies a remote offer and returns our answer.
    pub fn answer(&mut self, sdp: String) -> Result<String, String> {
        self.remote_lite = sdp.contains("a=ice-lite");
        let offer = RTCSessionDescription::offer(sdp).map_err(err("parsing the offer"))?;
        self.pc.set_remote_description(Instant::now(), offer).map_err(err("applying the offer"))?;
        let answer = self.pc.create_answer(None).map_err(err("creating an answer"))?;
        let sdp = answer.sdp.clone();
        self.pc.set_local_description(Instant::now(), answer).map_err(err("applying our answer"))?;
        Ok(sdp)
    }

    pub fn add_remote_candidate(&mut self, candidate: String) -> Result<(), String> {
        let init = rtc::peer_connection::transport::RTCIceCandidateInit { candidate, ..Default::default() };
        self.pc.add_remote_candidate(init).map_err(err("adding a remote candidate"))
    }

    /// Per incoming SSRC: packets received (for `LOAD_DEBUG` reports).
    pub fn streams(&self) -> Vec<(u32, u64)> {
        let mut v: Vec<(u32, u64)> = self.incoming.iter().map(|(s, i)| (*s, i.received)).collect();
        v.sort_unstable();
        v
    }

    pub fn is_publisher(&self) -> bool {
        !self.outgoing.is_empty()
    }

    pub fn counts(&self) -> Counts {
        let mut c =
            Counts { rtp: self.rtp_received, sampled: self.sampled, sampled_ok: self.sampled_ok, ..Default::default() };
        for (_, s) in &self.incoming {
            c.expected += s.expected();
            c.received += s.received;
        }
        c
    }

    /// Reads every datagram waiting on the socket, [`BATCH`] per system call: media counted by the
    /// light path once connected, the rest into the connection.
    pub fn read_socket(&mut self, now: Instant, batch: &mut RecvBatch) {
        use std::os::fd::AsRawFd;
        let fd = self.socket.as_raw_fd();
        loop {
            let n = batch.recv(fd);
            for i in 0..n {
                let (datagram, from) = batch.get(i);
                if self.light_on && self.count_light(now, datagram) {
                    continue;
                }
                let Some(from) = from else { continue };
                self.touched = true;
                let msg = TaggedBytesMut {
                    now,
                    transport: TransportContext {
                        local_addr: self.local,
                        peer_addr: from,
                        ecn: None,
                        transport_protocol: TransportProtocol::UDP,
                    },
                    message: BytesMut::from(datagram),
                };
                let _ = self.pc.handle_read(msg);
            }
            // Fewer than a batch: the queue was empty (no extra call just to read EAGAIN).
            if n < BATCH {
                break;
            }
        }
    }

    /// The light path: counts an SRTP media packet from its clear header. Returns false when
    /// `rtc` must see the datagram: not media (STUN, DTLS, RTCP), not a whole RTP header (`rtc`
    /// drops it as before), a possible probe (its send time is in the encrypted payload) or the
    /// 1-in-[`SAMPLE_EVERY`] sample; `drain` then takes those only for the probe and the check,
    /// since they are already counted here.
    fn count_light(&mut self, now: Instant, datagram: &[u8]) -> bool {
        if recv::classify(datagram) != Kind::Rtp {
            return false;
        }
        let Some(h) = recv::rtp_header(datagram) else { return false };
        let in_order = self.record(now, h.ssrc, h.sequence_number);
        self.light_seen += 1;
        // Only packets in order: `rtc`'s SRTP replay window rejects one far behind what it saw
        // last (a retransmission that came late), which is no sign of a miscount.
        if in_order
            && (recv::may_be_probe(datagram.len(), &h, PROBE_LEN) || self.light_seen.is_multiple_of(SAMPLE_EVERY))
        {
            self.sampled += 1;
            return false;
        }
        true
    }

    fn record(&mut self, now: Instant, ssrc: u32, seq: u16) -> bool {
        self.rtp_received += 1;
        self.first_media.get_or_insert(now);
        let i = match self.incoming.iter().position(|(s, _)| *s == ssrc) {
            Some(i) => i,
            None => {
                self.incoming.push((ssrc, Incoming::default()));
                self.incoming.len() - 1
            }
        };
        self.incoming[i].1.record(seq)
    }

    /// Sends the media that is due at `now`; `epoch` is the engine's time origin for probes.
    /// Returns whether it wrote anything.
    pub fn send_due(&mut self, now: Instant, epoch: Instant, media: &Media) -> bool {
        if self.state != RTCPeerConnectionState::Connected {
            return false;
        }
        let mut wrote = false;
        for o in &mut self.outgoing {
            if o.payload_type.is_none() {
                let mime = if o.video { MIME_TYPE_VP8 } else { MIME_TYPE_OPUS };
                o.payload_type = self.pc.rtp_sender(o.sender).and_then(|mut s| {
                    s.get_parameters()
                        .rtp_parameters
                        .codecs
                        .iter()
                        .find(|c| c.rtp_codec.mime_type.eq_ignore_ascii_case(mime))
                        .map(|c| c.payload_type)
                });
            }
            let Some(pt) = o.payload_type else { continue };
            let frame_time = if o.video { VIDEO_FRAME } else { AUDIO_FRAME };
            // Real pace: never burst more than a few frames after a stall.
            while o.start + frame_time * o.sent as u32 <= now {
                let behind = now - (o.start + frame_time * o.sent as u32);
                if behind > frame_time * 5 {
                    o.start = now;
                    o.sent = 0;
                }
                if o.video && std::mem::take(&mut o.keyframe_requested) {
                    let len = media.video.len();
                    if let Some(skip) = (0..len).find(|k| media.video[(o.cursor + k) % len].keyframe) {
                        o.cursor += skip;
                    }
                }
                let payloads: Vec<(Bytes, bool)> = if o.video {
                    let f = &media.video[o.cursor % media.video.len()];
                    let last = f.payloads.len().saturating_sub(1);
                    f.payloads.iter().enumerate().map(|(i, p)| (p.clone(), i == last)).collect()
                } else if o.sent % PROBE_EVERY == 0 {
                    let mut p = Vec::with_capacity(16);
                    p.extend_from_slice(PROBE_MAGIC);
                    p.extend_from_slice(&((now - epoch).as_nanos() as u64).to_be_bytes());
                    vec![(Bytes::from(p), true)]
                } else {
                    vec![(media.audio[o.cursor % media.audio.len()].clone(), true)]
                };
                for (payload, marker) in payloads {
                    let packet = rtp::Packet {
                        header: rtp::header::Header {
                            version: 2,
                            marker,
                            payload_type: pt,
                            sequence_number: o.seq,
                            timestamp: o.timestamp,
                            ssrc: o.ssrc,
                            ..Default::default()
                        },
                        payload,
                    };
                    o.seq = o.seq.wrapping_add(1);
                    if let Some(mut s) = self.pc.rtp_sender(o.sender) {
                        let ok = s.write_rtp(now, packet).is_ok();
                        self.rtp_sent += ok as u64;
                        wrote |= ok;
                    }
                }
                o.timestamp = o.timestamp.wrapping_add(if o.video { 3000 } else { 960 });
                o.cursor += 1;
                o.sent += 1;
            }
        }
        wrote
    }

    /// When its next packet is due (publishers only).
    pub fn next_send(&self) -> Option<Instant> {
        if self.state != RTCPeerConnectionState::Connected {
            return None;
        }
        self.outgoing.iter().map(|o| o.start + if o.video { VIDEO_FRAME } else { AUDIO_FRAME } * o.sent as u32).min()
    }

    /// Runs due timers, takes events and media out, and sends what the connection wrote.
    /// Returns the one-way delays (µs) of the probes received.
    pub fn drain(&mut self, now: Instant, epoch: Instant, delays: &mut Vec<u32>) {
        self.touched = false;
        if self.next_timeout.is_some_and(|t| t <= now) {
            let _ = self.pc.handle_timeout(now);
        }
        while let Some(ev) = self.pc.poll_event() {
            if let RTCPeerConnectionEvent::OnConnectionStateChangeEvent(s) = ev {
                if s == RTCPeerConnectionState::Connected {
                    self.connected.get_or_insert(now);
                    for o in &mut self.outgoing {
                        o.start = now;
                        o.sent = 0;
                    }
                }
                self.state = s;
            }
        }
        while let Some(m) = self.pc.poll_read() {
            if let RTCMessage::RtcpPacket(_, packets) = &m.message {
                let any_pli = packets.iter().any(|p| {
                    let any = p.as_any();
                    any.is::<PictureLossIndication>() || any.is::<FullIntraRequest>()
                });
                if any_pli {
                    self.outgoing.iter_mut().filter(|o| o.video).for_each(|o| o.keyframe_requested = true);
                }
                if self.light {
                    self.keep_sender_reports(now, packets);
                }
            }
            if let RTCMessage::RtpPacket(_, packet) = m.message {
                if self.light_on {
                    // Counted by the light path on arrival: here only the check and the probe.
                    self.sampled_ok += 1;
                } else {
                    self.record(now, packet.header.ssrc, packet.header.sequence_number);
                }
                let p = &packet.payload;
                if p.len() == PROBE_LEN && &p[..8] == PROBE_MAGIC {
                    let mut ns = [0u8; 8];
                    ns.copy_from_slice(&p[8..16]);
                    let sent = Duration::from_nanos(u64::from_be_bytes(ns));
                    let delay = (now - epoch).saturating_sub(sent);
                    delays.push(delay.as_micros().min(u32::MAX as u128) as u32);
                }
            }
        }
        self.send_receiver_report(now);
        if self.remote_lite && self.state != RTCPeerConnectionState::Connected {
            // `rtc` 0.21.1 queues a DTLS client's first flight when ICE selects its pair but hands
            // it out only at its next timer, which its `poll_timeout` puts at ICE's next check
            // (200 ms): where we are the DTLS client of an ICE-lite server (every leg on
            // Sportello), each join waited that long for nothing; a browser sends its
            // ClientHello as soon as ICE is writable. Not against a full-ICE server (Janus): it
            // drops a ClientHello that beats its own checks, and `rtc` retransmits only after 1 s,
            // far later than a browser; waiting for our next check (≤ 50 ms) stands in for that.
            let _ = self.pc.handle_timeout(now);
        }
        while let Some(w) = self.pc.poll_write() {
            let _ = self.socket.send_to(&w.message, w.transport.peer_addr);
        }
        self.next_timeout = match (self.pc.poll_timeout(), self.next_receiver_report) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        // Only now: every packet `rtc` had before (DTLS done, SRTP keys in place) was counted above.
        // And off again when the connection leaves `Connected` (ICE consent lost, closed): then
        // `rtc` decides again what counts, as the full path would.
        self.light_on = self.light && self.state == RTCPeerConnectionState::Connected;
    }

    /// A light subscriber remembers each stream's last sender report, for its receiver reports.
    /// The first one sets when those begin: at a phase of its own within the second, as browsers
    /// report on their own clocks (answering every report at once would send a thousand players'
    /// reports in one burst, a load no audience makes).
    fn keep_sender_reports(&mut self, now: Instant, packets: &[Box<dyn rtc::rtcp::Packet>]) {
        for sr in packets.iter().filter_map(|p| p.as_any().downcast_ref::<SenderReport>()) {
            let lsr = (sr.ntp_time >> 16) as u32;
            match self.sender_reports.iter_mut().find(|(ssrc, _, _)| *ssrc == sr.ssrc) {
                Some(kept) => *kept = (sr.ssrc, lsr, now),
                None => self.sender_reports.push((sr.ssrc, lsr, now)),
            }
            let phase = Duration::from_millis(u64::from(self.local.port()) % RECEIVER_REPORT_EVERY.as_millis() as u64);
            self.next_receiver_report.get_or_insert(now + phase);
        }
    }

    /// A light subscriber's receiver report, once per [`RECEIVER_REPORT_EVERY`]: one block per
    /// stream with the round trip fields (its last sender report and how long ago it came), no
    /// loss figures.
    fn send_receiver_report(&mut self, now: Instant) {
        if self.next_receiver_report.is_none_or(|t| t > now) {
            return;
        }
        self.next_receiver_report = Some(now + RECEIVER_REPORT_EVERY);
        let reports: Vec<ReceptionReport> = self
            .sender_reports
            .iter()
            .map(|&(ssrc, lsr, at)| ReceptionReport {
                ssrc,
                last_sender_report: lsr,
                delay: (now.saturating_duration_since(at).as_micros() * 65_536 / 1_000_000) as u32,
                ..Default::default()
            })
            .collect();
        let Some(id) = self.pc.get_receivers().next() else { return };
        if let Some(mut receiver) = self.pc.rtp_receiver(id) {
            let _ = receiver.write_rtcp(now, vec![Box::new(ReceiverReport { ssrc: 1, reports, ..Default::default() })]);
        }
    }

    pub fn close(&mut self) {
        let _ = self.pc.close();
        while let Some(w) = self.pc.poll_write() {
            let _ = self.socket.send_to(&w.message, w.transport.peer_addr);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Incoming;

    fn seen(seqs: &[u16]) -> (u64, u64) {
        let mut incoming = Incoming::default();
        for s in seqs {
            incoming.record(*s);
        }
        (incoming.expected(), incoming.received)
    }

    #[test]
    fn a_late_packet_is_no_loss() {
        // 11 comes after 12 (reordered, or retransmitted after a NACK): nothing is missing.
        assert_eq!(seen(&[10, 12, 11, 13, 14]), (5, 5));
        assert_eq!(seen(&[10, 11, 12, 13, 11, 14]), (5, 6), "a duplicate is received, not expected");
    }

    #[test]
    fn wrap_around_and_real_gaps() {
        assert_eq!(seen(&[65534, 65535, 0, 1]), (4, 4));
        assert_eq!(seen(&[65535, 1, 0, 2]), (4, 4));
        assert_eq!(seen(&[1, 2, 4, 7]), (7, 4), "3, 5 and 6 never came");
    }

    #[test]
    fn tells_late_packets_from_new_ones() {
        let mut incoming = Incoming::default();
        let fresh: Vec<bool> = [10u16, 12, 11, 13, 13, 65535].iter().map(|s| incoming.record(*s)).collect();
        // 11 is late, the second 13 a duplicate, 65535 (= 10 − 11 with wrap-around) far behind.
        assert_eq!(fresh, [true, true, false, true, false, false]);
    }
}
