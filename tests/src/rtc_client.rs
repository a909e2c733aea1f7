//! A small WebRTC client on the sans-IO `rtc` core, for tests that need real ICE/DTLS/SRTP peers
//! without a browser: it publishes synthetic Opus/VP8 RTP at real pace and counts what it receives.
//!
//! Several clients are pumped together by [`pump`], a plain polling loop: simple, and cheap enough
//! at test scale.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use rtc::interceptor::Registry;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_OPUS, MIME_TYPE_VP8, MediaEngine};
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::event::{RTCPeerConnectionEvent, RTCTrackEvent};
use rtc::peer_connection::message::RTCMessage;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtp;
use rtc::rtp_transceiver::RTCRtpSenderId;
use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind};
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use tokio::net::UdpSocket;

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// One synthetic outgoing track.
struct Outgoing {
    sender: RTCRtpSenderId,
    ssrc: u32,
    video: bool,
    seq: u16,
    timestamp: u32,
    frames: u32,
    next_at: Instant,
}

pub struct Client {
    pub name: String,
    pc: RTCPeerConnection,
    socket: UdpSocket,
    local: SocketAddr,
    outgoing: Vec<Outgoing>,
    /// RTP packets received, by the receiving track's stream id (our participant id) and kind.
    pub received: HashMap<String, u64>,
    /// Keyframes (VP8) received, by the same key.
    pub keyframes: HashMap<String, u64>,
    /// receiver track id → label key
    track_keys: HashMap<String, String>,
    pub state: RTCPeerConnectionState,
    /// Picture-loss indications received for our outgoing video (keyframe requests from the SFU).
    pub plis: u64,
    /// Send a keyframe only at the start and when asked (PLI), like a browser; otherwise every 30 frames.
    pub keyframes_on_request_only: bool,
    keyframe_requested: bool,
    /// Filler byte of our VP8 payloads: tells the receiving side whose picture it got.
    pub video_fill: u8,
    /// The filler byte of the last VP8 packet received, by key.
    pub last_video_fill: HashMap<String, u8>,
    /// Simulated loss: drop every Nth VP8 datagram received / sent (0 = none). NACK must repair it.
    pub drop_incoming_video_every: u32,
    pub drop_outgoing_video_every: u32,
    video_in: u32,
    video_out: u32,
    /// Sequence numbers received on video tracks, by the same key as `received`.
    pub video_seqs: HashMap<String, Vec<u16>>,
    buf: Vec<u8>,
    /// ICE-TCP only: our one candidate is an active TCP one; the stream opens at the first packet
    /// `rtc` sends over TCP.
    tcp_only: bool,
    tcp: Option<TcpLink>,
    /// ICE-TCP: the kernel receive buffer to ask for (small: a slow citizen's socket fills fast).
    pub tcp_recv_buffer: Option<u32>,
}

struct TcpLink {
    stream: tokio::net::TcpStream,
    local: SocketAddr,
    peer: SocketAddr,
    decoder: sportello_sfu::test_support::FrameDecoder,
    closed: bool,
}

/// An SRTP datagram carrying VP8 (payload type 96 on both our legs): the RTP header is in the clear.
fn is_vp8_datagram(d: &[u8]) -> bool {
    d.len() > 12 && (128..=191).contains(&d[0]) && d[1] & 0x7f == 96
}

/// Holes in a received sequence: numbers missing between the first and `tail` before the last.
pub fn missing_sequence_numbers(seqs: &[u16], tail: i64) -> i64 {
    let Some(&first) = seqs.first() else { return 0 };
    let ext: std::collections::BTreeSet<i64> =
        seqs.iter().map(|&s| first as i64 + s.wrapping_sub(first) as i16 as i64).collect();
    let (Some(&lo), Some(&hi)) = (ext.first(), ext.last()) else { return 0 };
    let hi = hi - tail;
    (lo..=hi).filter(|s| !ext.contains(s)).count() as i64
}

impl Client {
    pub async fn new(name: &str) -> Result<Self, Error> {
        Self::build(name, false).await
    }

    /// A client whose only path is ICE-TCP (an active candidate, RFC 6544), as behind a firewall
    /// that blocks UDP.
    pub async fn new_tcp(name: &str) -> Result<Self, Error> {
        Self::build(name, true).await
    }

    /// True once the SFU closed our ICE-TCP connection.
    pub fn tcp_closed(&self) -> bool {
        self.tcp.as_ref().is_some_and(|t| t.closed)
    }

    async fn build(name: &str, tcp_only: bool) -> Result<Self, Error> {
        let socket = UdpSocket::bind("127.0.0.1:0").await?;
        let local = socket.local_addr()?;
        let mut me = MediaEngine::default();
        me.register_default_codecs()?;
        // Keyframe requests must reach us (a publisher answers them with a keyframe).
        let registry = Registry::new().with(
            rtc::interceptor::Slot::from(sportello_sfu::test_support::SLOT),
            sportello_sfu::test_support::DeliverFeedback::default(),
        );
        let registry = register_default_interceptors(registry, &mut me)?;
        let se =
            SettingEngineBuilder::new().with_multicast_dns_mode(rtc::ice::mdns::MulticastDnsMode::Disabled).build();
        let mut pc = RTCPeerConnectionBuilder::new()
            .with_configuration(RTCConfigurationBuilder::new().build())
            .with_setting_engine(se)
            .with_media_engine(me)
            .with_interceptor_registry(registry)
            .build(Instant::now())?;
        if tcp_only {
            use sportello_sfu::test_support::{TcpType, tcp_candidate};
            pc.add_local_candidate(tcp_candidate(SocketAddr::new(local.ip(), 9), TcpType::Active)?)?;
        } else {
            pc.add_local_candidate(sportello_sfu::test_support::host_candidate(local)?)?;
        }
        Ok(Client {
            name: name.into(),
            pc,
            socket,
            local,
            outgoing: Vec::new(),
            received: HashMap::new(),
            keyframes: HashMap::new(),
            track_keys: HashMap::new(),
            state: RTCPeerConnectionState::New,
            plis: 0,
            keyframes_on_request_only: false,
            keyframe_requested: false,
            video_fill: 0xAB,
            last_video_fill: HashMap::new(),
            drop_incoming_video_every: 0,
            drop_outgoing_video_every: 0,
            video_in: 0,
            video_out: 0,
            video_seqs: HashMap::new(),
            buf: vec![0; 2048],
            tcp_only,
            tcp: None,
            tcp_recv_buffer: None,
        })
    }

    /// Adds a synthetic sending track (Opus or VP8) and returns its sender.
    pub fn add_track(&mut self, video: bool) -> Result<RTCRtpSenderId, Error> {
        let ssrc = rand_u32();
        let track = sending_track(&self.name, video, ssrc);
        let sender = self.pc.add_track(track)?;
        self.outgoing.push(Outgoing {
            sender,
            ssrc,
            video,
            seq: rand_u32() as u16,
            timestamp: rand_u32(),
            frames: 0,
            next_at: Instant::now(),
        });
        Ok(sender)
    }

    /// Adds receive-only m-lines (a WHEP player's offer).
    pub fn receive_only(&mut self, audio: usize, video: usize) -> Result<(), Error> {
        use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
        for (kind, n) in [(RtpCodecKind::Video, video), (RtpCodecKind::Audio, audio)] {
            for _ in 0..n {
                let init = RTCRtpTransceiverInit {
                    direction: RTCRtpTransceiverDirection::Recvonly,
                    streams: vec![],
                    send_encodings: vec![],
                };
                self.pc.add_transceiver_from_kind(kind, Some(init))?;
            }
        }
        Ok(())
    }

    /// Creates and applies an offer; returns its SDP and the mid of each of our senders (in add order).
    pub fn offer(&mut self) -> Result<(String, Vec<(String, bool)>), Error> {
        let offer = self.pc.create_offer(None)?;
        let sdp = offer.sdp.clone();
        self.pc.set_local_description(Instant::now(), offer)?;
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

    /// [`Client::offer`] for a publish connection: the SDP and what each sending m-line carries
    /// (video the camera, audio the microphone), as `publish_offer` takes it.
    pub fn publish_offer(&mut self) -> Result<(String, Vec<sportello_sfu::PublishedMid>), Error> {
        use sportello_sfu::{PublishedMid, TrackSource};
        let (sdp, mids) = self.offer()?;
        let source = |video: bool| if video { TrackSource::Camera } else { TrackSource::Microphone };
        Ok((sdp, mids.into_iter().map(|(mid, video)| PublishedMid { mid, source: source(video) }).collect()))
    }

    pub fn apply_answer(&mut self, sdp: String) -> Result<(), Error> {
        self.pc.set_remote_description(Instant::now(), RTCSessionDescription::answer(sdp)?)?;
        Ok(())
    }

    /// Applies a remote offer and returns our answer.
    pub fn answer(&mut self, sdp: String) -> Result<String, Error> {
        self.pc.set_remote_description(Instant::now(), RTCSessionDescription::offer(sdp)?)?;
        let answer = self.pc.create_answer(None)?;
        let sdp = answer.sdp.clone();
        self.pc.set_local_description(Instant::now(), answer)?;
        Ok(sdp)
    }

    pub fn connected(&self) -> bool {
        self.state == RTCPeerConnectionState::Connected
    }

    pub fn received(&self, key: &str) -> u64 {
        self.received.get(key).copied().unwrap_or(0)
    }

    /// One round of I/O: read what arrived, send media that is due, flush writes and timers.
    pub async fn step(&mut self) -> Result<(), Error> {
        let now = Instant::now();
        loop {
            match self.socket.try_recv_from(&mut self.buf) {
                Ok((n, from)) => {
                    if self.drop_incoming_video_every > 0 && is_vp8_datagram(&self.buf[..n]) {
                        self.video_in += 1;
                        if self.video_in.is_multiple_of(self.drop_incoming_video_every) {
                            continue;
                        }
                    }
                    let msg = TaggedBytesMut {
                        now,
                        transport: TransportContext {
                            local_addr: self.local,
                            peer_addr: from,
                            ecn: None,
                            transport_protocol: TransportProtocol::UDP,
                        },
                        message: BytesMut::from(&self.buf[..n]),
                    };
                    let _ = self.pc.handle_read(msg);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e.into()),
            }
        }
        if let Some(link) = &mut self.tcp {
            let mut frames = Vec::new();
            loop {
                match link.stream.try_read(&mut self.buf) {
                    Ok(0) => {
                        link.closed = true;
                        break;
                    }
                    Ok(n) => {
                        if link.decoder.push(&self.buf[..n], &mut frames).is_err() {
                            link.closed = true;
                            break;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(_) => {
                        link.closed = true;
                        break;
                    }
                }
            }
            for message in frames {
                let transport = TransportContext {
                    local_addr: link.local,
                    peer_addr: link.peer,
                    ecn: None,
                    transport_protocol: TransportProtocol::TCP,
                };
                let _ = self.pc.handle_read(TaggedBytesMut { now, transport, message });
            }
        }
        if self.connected() {
            let periodic = !self.keyframes_on_request_only;
            for o in &mut self.outgoing {
                while o.next_at <= now {
                    let keyframe = o.video
                        && (o.frames == 0
                            || (periodic && o.frames % 30 == 0)
                            || std::mem::take(&mut self.keyframe_requested));
                    let payload: Bytes = if o.video {
                        // VP8 descriptor with S=1, PID=0; payload header P bit 0 = keyframe.
                        let mut p = vec![0x10, if keyframe { 0x00 } else { 0x01 }];
                        p.resize(600, self.video_fill);
                        p.into()
                    } else {
                        Bytes::from_static(&[0xF8; 80])
                    };
                    let packet = rtp::Packet {
                        header: rtp::header::Header {
                            version: 2,
                            marker: true,
                            payload_type: 0, // set below from the negotiated parameters
                            sequence_number: o.seq,
                            timestamp: o.timestamp,
                            ssrc: o.ssrc,
                            ..Default::default()
                        },
                        payload,
                    };
                    o.seq = o.seq.wrapping_add(1);
                    o.frames += 1;
                    let (step_ts, step_t) = if o.video { (3000, 33) } else { (960, 20) };
                    o.timestamp = o.timestamp.wrapping_add(step_ts);
                    o.next_at += Duration::from_millis(step_t);
                    if let Some(mut s) = self.pc.rtp_sender(o.sender) {
                        let mime = if o.video { "video/vp8" } else { "audio/opus" };
                        let pt = s
                            .get_parameters()
                            .rtp_parameters
                            .codecs
                            .iter()
                            .find(|c| c.rtp_codec.mime_type.eq_ignore_ascii_case(mime))
                            .map(|c| c.payload_type);
                        if let Some(pt) = pt {
                            let mut packet = packet;
                            packet.header.payload_type = pt;
                            let _ = s.write_rtp(now, packet);
                        }
                    }
                }
            }
        }
        while let Some(ev) = self.pc.poll_event() {
            match ev {
                RTCPeerConnectionEvent::OnConnectionStateChangeEvent(s) => {
                    self.state = s;
                    // Outgoing media starts on connection; do not burst what "would have been sent".
                    for o in &mut self.outgoing {
                        o.next_at = Instant::now();
                    }
                }
                RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnOpen(init)) => {
                    let stream = init.stream_ids.first().cloned().unwrap_or_default();
                    let key = format!("{stream}/{}", init.track_id);
                    self.track_keys.insert(init.track_id.clone(), key);
                }
                _ => {}
            }
        }
        while let Some(m) = self.pc.poll_read() {
            if let RTCMessage::RtcpPacket(_, packets) = &m.message {
                use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
                if packets.iter().any(|p| p.as_any().is::<PictureLossIndication>()) {
                    self.plis += 1;
                    self.keyframe_requested = true;
                }
            }
            if let RTCMessage::RtpPacket(track_id, packet) = m.message {
                let key = self.track_keys.get(&track_id).cloned().unwrap_or(track_id);
                *self.received.entry(key.clone()).or_default() += 1;
                if key.ends_with("camera") || key.ends_with("video") {
                    self.video_seqs.entry(key.clone()).or_default().push(packet.header.sequence_number);
                }
                if let Some(&fill) = packet.payload.get(2)
                    && packet.header.payload_type != 111
                    && packet.payload.len() > 100
                {
                    self.last_video_fill.insert(key.clone(), fill);
                }
                if packet.payload.len() >= 2 && packet.payload[0] & 0x10 != 0 && packet.payload[1] & 0x01 == 0 {
                    *self.keyframes.entry(key).or_default() += 1;
                }
            }
        }
        while let Some(w) = self.pc.poll_write() {
            if self.drop_outgoing_video_every > 0 && is_vp8_datagram(&w.message) {
                self.video_out += 1;
                if self.video_out.is_multiple_of(self.drop_outgoing_video_every) {
                    continue;
                }
            }
            if self.tcp_only {
                if w.transport.transport_protocol != TransportProtocol::TCP {
                    continue;
                }
                if self.tcp.is_none() {
                    let socket = if w.transport.peer_addr.is_ipv4() {
                        tokio::net::TcpSocket::new_v4()?
                    } else {
                        tokio::net::TcpSocket::new_v6()?
                    };
                    if let Some(n) = self.tcp_recv_buffer {
                        socket.set_recv_buffer_size(n)?;
                    }
                    let stream = socket.connect(w.transport.peer_addr).await?;
                    stream.set_nodelay(true)?;
                    let local = stream.local_addr()?;
                    let decoder = Default::default();
                    self.tcp = Some(TcpLink { stream, local, peer: w.transport.peer_addr, decoder, closed: false });
                }
                if let Some(link) = &mut self.tcp {
                    let mut framed = BytesMut::new();
                    if sportello_sfu::test_support::frame(&w.message, &mut framed).is_ok() {
                        use tokio::io::AsyncWriteExt;
                        let _ = link.stream.write_all(&framed).await;
                    }
                }
                continue;
            }
            let _ = self.socket.send_to(&w.message, w.transport.peer_addr).await;
        }
        if let Some(t) = self.pc.poll_timeout()
            && t <= Instant::now()
        {
            let _ = self.pc.handle_timeout(Instant::now());
        }
        Ok(())
    }

    pub fn close(&mut self) {
        let _ = self.pc.close();
    }
}

/// Pumps every client until `done` says so or `timeout` passes; returns whether `done` was reached.
pub async fn pump(
    clients: &mut [&mut Client],
    timeout: Duration,
    mut done: impl FnMut(&[&mut Client]) -> bool,
) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        for c in clients.iter_mut() {
            if let Err(e) = c.step().await {
                eprintln!("{}: {e}", c.name);
            }
        }
        if done(clients) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    false
}

fn rand_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    h.finish() as u32
}

/// A synthetic sending track of `stream`: VP8 (`<stream>-video`) or Opus (`<stream>-audio`) on
/// `ssrc`, as the test clients publish them.
pub fn sending_track(stream: &str, video: bool, ssrc: u32) -> MediaStreamTrack {
    let (kind, codec) = if video {
        (RtpCodecKind::Video, RTCRtpCodec { mime_type: MIME_TYPE_VP8.into(), clock_rate: 90000, ..Default::default() })
    } else {
        (
            RtpCodecKind::Audio,
            RTCRtpCodec {
                mime_type: MIME_TYPE_OPUS.into(),
                clock_rate: 48000,
                channels: 2,
                sdp_fmtp_line: "minptime=10;useinbandfec=1".into(),
                ..Default::default()
            },
        )
    };
    let id = format!("{stream}-{}", if video { "video" } else { "audio" });
    MediaStreamTrack::new(
        stream.to_owned(),
        id.clone(),
        id,
        kind,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters { ssrc: Some(ssrc), ..Default::default() },
            codec,
            ..Default::default()
        }],
    )
}
