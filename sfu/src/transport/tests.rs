//! Engine tests without a socket: real `rtc` peers (ICE, DTLS, SRTP) stand in for browsers and
//! exchange datagrams with the engine through the in-memory driver, in simulated time.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use rtc::ice::mdns::MulticastDnsMode;
use rtc::interceptor::{Registry, Slot};
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_VP8, MediaEngine};
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::event::RTCPeerConnectionEvent;
use rtc::peer_connection::message::RTCMessage;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtcp::sender_report::SenderReport;
use rtc::rtp;
use rtc::rtp_transceiver::RTCRtpSenderId;
use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind};
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};

use crate::api::*;
use crate::transport::driver::memory::MemoryDriver;
use crate::transport::engine::Command;
use crate::transport::tcp::ConnId;
use crate::transport::{feedback, peer};

type Error = Box<dyn std::error::Error + Send + Sync>;

const PUBLISHER_SSRC: u32 = 0x1234_5678;
/// Filler byte of the publisher's VP8 payloads: what the subscriber gets must be this picture.
const FILL: u8 = 0x5A;
const PAYLOAD_LEN: usize = 600;
const FRAME: Duration = Duration::from_millis(33);

struct Video {
    sender: RTCRtpSenderId,
    seq: u16,
    timestamp: u32,
    next_at: Instant,
    sent: usize,
}

/// A browser stand-in at a simulated address: one `rtc` peer connection, optionally sending VP8
/// (every frame a one-packet keyframe, so a subscriber never waits for one).
struct SimPeer {
    participant: ParticipantId,
    addr: SocketAddr,
    /// `Some`: this peer's only candidate is an active TCP one, and its packets go over this
    /// simulated ICE-TCP connection.
    tcp: Option<ConnId>,
    pc: RTCPeerConnection,
    inbox: VecDeque<(SocketAddr, BytesMut)>,
    state: RTCPeerConnectionState,
    video: Option<Video>,
    received: Vec<rtp::Packet>,
    /// Sender reports received, each with how many RTP packets had arrived when it did.
    reports: Vec<(SenderReport, usize)>,
    /// The other RTCP received about what this peer sends: receiver reports, NACKs, transport-cc.
    feedback: Vec<Box<dyn rtc::rtcp::Packet>>,
    /// RTP sequence numbers to lose on the way in (read from the cleartext SRTP header), once each.
    lose: Vec<u16>,
    /// The same on the way out, to the SFU.
    lose_out: Vec<u16>,
    /// The engine of the node its UDP datagrams land on (the kernel's choice, not its connection's).
    lands_on: usize,
}

impl SimPeer {
    fn new(participant: &str, addr: SocketAddr, now: Instant) -> Result<Self, Error> {
        Self::build(participant, addr, None, now)
    }

    /// A peer that sends no feedback by itself (no NACK, receiver report or TWCC feedback): a test
    /// writes what it wants, and nothing else of its wakes the SFU.
    fn without_feedback(participant: &str, addr: SocketAddr, now: Instant) -> Result<Self, Error> {
        Self::build_with(participant, addr, None, false, None, now)
    }

    /// A peer whose ICE agent checks the selected pair only every `every` (Firefox: 4–6 s, RFC
    /// 7675's consent freshness), where `rtc`'s own agent checks every 2 s.
    fn checking_every(participant: &str, addr: SocketAddr, every: Duration, now: Instant) -> Result<Self, Error> {
        Self::build_with(participant, addr, None, true, Some(every), now)
    }

    /// A peer reachable only over ICE-TCP: an active TCP candidate (RFC 6544: port 9, it dials out).
    fn tcp_only(participant: &str, addr: SocketAddr, conn: ConnId, now: Instant) -> Result<Self, Error> {
        Self::build(participant, addr, Some(conn), now)
    }

    fn build(participant: &str, addr: SocketAddr, tcp: Option<ConnId>, now: Instant) -> Result<Self, Error> {
        Self::build_with(participant, addr, tcp, true, None, now)
    }

    fn build_with(
        participant: &str,
        addr: SocketAddr,
        tcp: Option<ConnId>,
        feedback: bool,
        checks_every: Option<Duration>,
        now: Instant,
    ) -> Result<Self, Error> {
        let mut me = MediaEngine::default();
        me.register_default_codecs()?;
        // Stamps transport-wide sequence numbers on what it sends, as browsers do.
        let mut registry = register_default_interceptors(Registry::new(), &mut me)?
            .with(Slot::TwccSender, rtc::interceptor::TwccSenderBuilder::new().build())
            .with(Slot::from(feedback::SLOT), feedback::DeliverFeedback::of(delivered));
        if !feedback {
            for slot in [Slot::NackGenerator, Slot::ReceiverReport, Slot::TwccReceiver] {
                registry = registry.with(slot, rtc::interceptor::NoopInterceptor::new());
            }
        }
        // Answering (the SFU's subscribe offers), the DTLS client's part, as browsers take it.
        let mut se = SettingEngineBuilder::new()
            .with_multicast_dns_mode(MulticastDnsMode::Disabled)
            .with_answering_dtls_role(rtc::peer_connection::transport::RTCDtlsRole::Client);
        if let Some(every) = checks_every {
            // Its own view of the connection must not cut in: it checks on this one timer alone.
            let long = Some(Duration::from_secs(600));
            se = se.with_ice_timeouts(long, long, Some(every));
        }
        let se = se.build();
        let mut pc = RTCPeerConnectionBuilder::new()
            .with_configuration(RTCConfigurationBuilder::new().build())
            .with_setting_engine(se)
            .with_media_engine(me)
            .with_interceptor_registry(registry)
            .build(now)?;
        match tcp {
            None => pc.add_local_candidate(peer::host_candidate(addr)?)?,
            Some(_) => {
                let placeholder = SocketAddr::new(addr.ip(), 9);
                pc.add_local_candidate(peer::tcp_candidate(placeholder, peer::TcpType::Active)?)?
            }
        };
        Ok(SimPeer {
            participant: participant.into(),
            addr,
            tcp,
            pc,
            inbox: VecDeque::new(),
            state: RTCPeerConnectionState::New,
            video: None,
            received: Vec::new(),
            reports: Vec::new(),
            feedback: Vec::new(),
            lose: Vec::new(),
            lose_out: Vec::new(),
            lands_on: 0,
        })
    }

    /// Adds a VP8 track; returns the publish offer and the mid that carries the track.
    fn publish_offer(&mut self, now: Instant) -> Result<(String, String), Error> {
        let track = MediaStreamTrack::new(
            self.participant.to_string(),
            "camera".into(),
            "camera".into(),
            RtpCodecKind::Video,
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters { ssrc: Some(PUBLISHER_SSRC), ..Default::default() },
                codec: RTCRtpCodec { mime_type: MIME_TYPE_VP8.into(), clock_rate: 90000, ..Default::default() },
                ..Default::default()
            }],
        );
        let sender = self.pc.add_track(track)?;
        let offer = self.pc.create_offer(None)?;
        let sdp = offer.sdp.clone();
        self.pc.set_local_description(now, offer)?;
        let mut mid = None;
        for t in self.pc.get_transceivers().collect::<Vec<_>>() {
            if let Some(tr) = self.pc.rtp_transceiver(t)
                && tr.sender() == Some(sender)
            {
                mid = tr.mid().clone();
            }
        }
        self.video = Some(Video { sender, seq: 1000, timestamp: 0, next_at: now, sent: 0 });
        Ok((sdp, mid.ok_or("the offer gave the track no mid")?))
    }

    fn apply_answer(&mut self, sdp: String, now: Instant) -> Result<(), Error> {
        self.pc.set_remote_description(now, RTCSessionDescription::answer(sdp)?)?;
        Ok(())
    }

    fn answer(&mut self, sdp: String, now: Instant) -> Result<String, Error> {
        self.pc.set_remote_description(now, RTCSessionDescription::offer(sdp)?)?;
        let answer = self.pc.create_answer(None)?;
        let sdp = answer.sdp.clone();
        self.pc.set_local_description(now, answer)?;
        Ok(sdp)
    }

    /// One step at `now`: what arrived, due timers, due frames; returns what it sends.
    fn step(&mut self, now: Instant) -> Vec<(SocketAddr, BytesMut)> {
        while let Some((from, message)) = self.inbox.pop_front() {
            if lost(&mut self.lose, &message) {
                continue;
            }
            let transport = TransportContext {
                local_addr: self.addr,
                peer_addr: from,
                ecn: None,
                transport_protocol: self.protocol(),
            };
            let _ = self.pc.handle_read(TaggedBytesMut { now, transport, message });
        }
        if self.pc.poll_timeout().is_some_and(|t| t <= now) {
            let _ = self.pc.handle_timeout(now);
        }
        while let Some(ev) = self.pc.poll_event() {
            if let RTCPeerConnectionEvent::OnConnectionStateChangeEvent(s) = ev {
                self.state = s;
                if let Some(v) = &mut self.video {
                    v.next_at = now; // media starts once connected
                }
            }
        }
        if self.state == RTCPeerConnectionState::Connected
            && let Some(v) = &mut self.video
        {
            while v.next_at <= now {
                send_keyframe(&mut self.pc, v, now);
                v.next_at += FRAME;
            }
        }
        while let Some(m) = self.pc.poll_read() {
            match m.message {
                RTCMessage::RtpPacket(_, packet) => self.received.push(packet),
                RTCMessage::RtcpPacket(_, packets) => {
                    for p in packets {
                        match p.as_any().downcast_ref::<SenderReport>() {
                            Some(r) => self.reports.push((r.clone(), self.received.len())),
                            None => self.feedback.push(p),
                        }
                    }
                }
                _ => {}
            }
        }
        let protocol = self.protocol();
        let lose_out = &mut self.lose_out;
        std::iter::from_fn(|| self.pc.poll_write())
            .filter(|w| w.transport.transport_protocol == protocol && !lost(lose_out, &w.message))
            .map(|w| (w.transport.peer_addr, w.message))
            .collect()
    }

    fn protocol(&self) -> TransportProtocol {
        if self.tcp.is_some() { TransportProtocol::TCP } else { TransportProtocol::UDP }
    }

    fn next_deadline(&mut self) -> Option<Instant> {
        let frame = self.video.as_ref().filter(|_| self.state == RTCPeerConnectionState::Connected).map(|v| v.next_at);
        [self.pc.poll_timeout(), frame].into_iter().flatten().min()
    }
}

/// The RTCP a test peer's application sees: sender reports, and feedback about what it sends.
fn delivered(p: &dyn rtc::rtcp::Packet) -> bool {
    use rtc::rtcp::receiver_report::ReceiverReport;
    use rtc::rtcp::transport_feedbacks::transport_layer_cc::TransportLayerCc;
    use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
    let any = p.as_any();
    any.is::<SenderReport>()
        || any.is::<ReceiverReport>()
        || any.is::<TransportLayerNack>()
        || any.is::<TransportLayerCc>()
}

/// An RTP datagram (RFC 5761: payload types 72–76 are RTCP) whose sequence number (clear in an
/// SRTP header) is in `lose`: taken out of `lose`, since each is lost once.
fn lost(lose: &mut Vec<u16>, datagram: &[u8]) -> bool {
    if datagram.len() <= 12 || datagram[0] >> 6 != 2 || (72..=76).contains(&(datagram[1] & 0x7f)) {
        return false;
    }
    let seq = u16::from_be_bytes([datagram[2], datagram[3]]);
    let found = lose.iter().position(|&s| s == seq);
    found.map(|i| lose.swap_remove(i)).is_some()
}

fn send_keyframe(pc: &mut RTCPeerConnection, v: &mut Video, now: Instant) {
    let Some(mut sender) = pc.rtp_sender(v.sender) else { return };
    let Some(pt) = sender
        .get_parameters()
        .rtp_parameters
        .codecs
        .iter()
        .find(|c| c.rtp_codec.mime_type.eq_ignore_ascii_case("video/vp8"))
        .map(|c| c.payload_type)
    else {
        return;
    };
    // VP8 descriptor S=1, PID=0; payload header P=0: the start of a keyframe.
    let mut payload = vec![0x10, 0x00];
    payload.resize(PAYLOAD_LEN, FILL);
    let packet = rtp::Packet {
        header: rtp::header::Header {
            version: 2,
            marker: true,
            payload_type: pt,
            sequence_number: v.seq,
            timestamp: v.timestamp,
            ssrc: PUBLISHER_SSRC,
            ..Default::default()
        },
        payload: Bytes::from(payload),
    };
    if sender.write_rtp(now, packet).is_ok() {
        v.sent += 1;
    }
    v.seq = v.seq.wrapping_add(1);
    v.timestamp = v.timestamp.wrapping_add(3000);
}

/// The engine, its peers and a signaling stand-in that answers subscribe offers at once. A node
/// running several engines (media threads) on one address has the others in `others`: the test is
/// the kernel, landing each peer's datagrams on the engine it names ([`SimPeer::lands_on`]), and it
/// delivers what the engines hand each other. ICE-TCP connections reach the first engine only.
struct Net {
    sfu: MemoryDriver,
    others: Vec<MemoryDriver>,
    /// The SFU's advertised ICE-TCP address, if TCP is on.
    sfu_tcp: Option<SocketAddr>,
    room: RoomId,
    peers: Vec<SimPeer>,
    events: Vec<SfuEvent>,
}

impl Net {
    fn new(sfu: MemoryDriver, sfu_tcp: Option<SocketAddr>, room: &RoomId) -> Self {
        Net { sfu, others: vec![], sfu_tcp, room: room.clone(), peers: vec![], events: vec![] }
    }

    fn engine(&mut self, i: usize) -> &mut MemoryDriver {
        if i == 0 { &mut self.sfu } else { &mut self.others[i - 1] }
    }

    /// Delivers datagrams and events until nothing is in flight (no latency, no loss).
    fn settle(&mut self) -> Result<(), Error> {
        for _ in 0..10_000 {
            let mut moved = false;
            for i in 0..=self.others.len() {
                while let Ok(ev) = self.engine(i).events.try_recv() {
                    if let SfuEvent::SubscribeOffer { participant, sdp, .. } = &ev {
                        let now = self.sfu.now;
                        let peer =
                            self.peers.iter_mut().find(|p| p.participant == *participant).ok_or("offer to nobody")?;
                        let answer = peer.answer(sdp.clone(), now)?;
                        let (room, participant) = (self.room.clone(), participant.clone());
                        self.engine(i).call(|reply| Command::SubscribeAnswer {
                            room,
                            participant,
                            sdp: answer,
                            reply,
                        })?;
                    }
                    self.events.push(ev);
                    moved = true;
                }
                let from = self.sfu.addr;
                for (to, d) in self.engine(i).transmit() {
                    if let Some(p) = self.peers.iter_mut().find(|p| p.addr == to && p.tcp.is_none()) {
                        p.inbox.push_back((from, d));
                        moved = true;
                    }
                }
                for (conn, d) in self.engine(i).tcp_transmit() {
                    if let (Some(p), Some(from)) = (self.peers.iter_mut().find(|p| p.tcp == Some(conn)), self.sfu_tcp) {
                        p.inbox.push_back((from, d));
                        moved = true;
                    }
                }
                for (to, h) in self.engine(i).handoffs() {
                    self.engine(to).handoff(h);
                    moved = true;
                }
            }
            let now = self.sfu.now;
            let (sfu_addr, sfu_tcp) = (self.sfu.addr, self.sfu_tcp);
            let mut peers = std::mem::take(&mut self.peers);
            for p in &mut peers {
                for (to, d) in p.step(now) {
                    match p.tcp {
                        None if to == sfu_addr => self.engine(p.lands_on).receive(p.addr, &d),
                        Some(conn) if Some(to) == sfu_tcp => {
                            self.sfu.tcp_receive(conn, &d);
                        }
                        _ => continue,
                    }
                    moved = true;
                }
            }
            self.peers = peers;
            if !moved {
                return Ok(());
            }
        }
        Err("datagrams kept flowing without time passing".into())
    }

    /// Runs until `done` holds or `limit` of simulated time passed; jumps from deadline to deadline.
    fn run_until(&mut self, limit: Duration, done: impl Fn(&Net) -> bool) -> Result<bool, Error> {
        let end = self.sfu.now + limit;
        loop {
            self.settle()?;
            if done(self) {
                return Ok(true);
            }
            if self.sfu.now >= end {
                return Ok(false);
            }
            let peers = self.peers.iter_mut().filter_map(SimPeer::next_deadline);
            let engines = self.others.iter().map(MemoryDriver::next_deadline);
            let next = peers.chain(engines).fold(self.sfu.next_deadline(), Instant::min);
            // At least a millisecond, so a deadline already past cannot stall the clock.
            let next = next.max(self.sfu.now + Duration::from_millis(1)).min(end);
            self.sfu.advance_to(next);
            for e in &mut self.others {
                e.advance_to(next);
            }
        }
    }

    fn connected(&self, who: &str, kind: PcKind) -> bool {
        self.events.iter().any(|e| {
            matches!(e, SfuEvent::PeerState { participant, pc, state: PeerState::Connected, .. }
                if &**participant == who && *pc == kind)
        })
    }
}

/// alice (publishing her camera) and `bob` in `room` on an engine at 192.0.2.1, not yet started.
fn alice_and(bob: SimPeer, room: &str, start: Instant) -> Result<Net, Error> {
    let alice = SimPeer::new("alice", "192.0.2.10:40000".parse()?, start)?;
    these_two(alice, bob, room, start)
}

/// `alice` (publishing her camera) and `bob` in `room` on an engine at 192.0.2.1, not yet started.
fn these_two(mut alice: SimPeer, bob: SimPeer, room: &str, start: Instant) -> Result<Net, Error> {
    let sfu_addr: SocketAddr = "192.0.2.1:3478".parse()?;
    let config = SfuConfig { udp_bind: sfu_addr, ..Default::default() };
    let room: RoomId = room.into();
    let sfu = MemoryDriver::new(sfu_addr, config, start)?;
    let mut net = Net::new(sfu, None, &room);
    for who in ["alice", "bob"] {
        net.sfu.call(|reply| Command::Join { room: room.clone(), participant: who.into(), reply })?;
    }
    let (offer, mid) = alice.publish_offer(start)?;
    let mids = vec![PublishedMid { mid, source: TrackSource::Camera }];
    let (r, p) = (room.clone(), ParticipantId::from("alice"));
    let answer = net.sfu.call(|reply| Command::PublishOffer { room: r, participant: p, sdp: offer, mids, reply })?;
    alice.apply_answer(answer, start)?;
    net.peers = vec![alice, bob];
    Ok(net)
}

#[test]
fn a_published_video_reaches_a_subscriber_and_stops_when_gated() -> Result<(), Error> {
    let start = Instant::now();
    let bob = SimPeer::new("bob", "192.0.2.11:40000".parse()?, start)?;
    let mut net = alice_and(bob, "sala-giunta", start)?;
    let room = net.room.clone();

    let reached = net.run_until(Duration::from_secs(10), |net| net.peers[1].received.len() >= 30)?;
    let got = &net.peers[1].received;
    assert!(reached, "bob received {} packets in 10 s; events: {:?}", got.len(), net.events);
    assert!(net.connected("alice", PcKind::Publish), "{:?}", net.events);
    assert!(net.connected("bob", PcKind::Subscribe), "{:?}", net.events);
    assert!(
        net.events.iter().any(|e| matches!(e, SfuEvent::TrackPublished { track, .. } if track.id == "alice/camera"))
    );
    // Alice's picture, re-headed for bob's leg: the downtrack's own SSRC, no holes in its sequence.
    assert!(got.iter().all(|p| p.payload.len() == PAYLOAD_LEN && p.payload[2..].iter().all(|&b| b == FILL)));
    let ssrc = got[0].header.ssrc;
    assert!(ssrc != PUBLISHER_SSRC && got.iter().all(|p| p.header.ssrc == ssrc));
    assert!(got.windows(2).all(|w| w[1].header.sequence_number == w[0].header.sequence_number.wrapping_add(1)));
    let stats = net.sfu.call(|reply| Command::Stats { reply })?;
    assert!(stats.forwarded_packets >= got.len() as u64, "{stats:?}");
    // Bytes are payload bytes, as bob received them.
    assert_eq!(stats.forwarded_bytes, stats.forwarded_packets * PAYLOAD_LEN as u64, "{stats:?}");
    // Simulated time: 30 frames are ≈ 1 s of video, however long the machine took.
    assert!(net.sfu.now - start < Duration::from_secs(5), "took {:?} of simulated time", net.sfu.now - start);

    // Gated by the room: alice keeps sending, bob gets nothing more.
    let (r, p) = (room.clone(), ParticipantId::from("alice"));
    let source = TrackSource::Camera;
    net.sfu.call(|reply| Command::SetForwarding { room: r, participant: p, source, enabled: false, reply })?;
    let (received, sent) = (net.peers[1].received.len(), net.peers[0].video.as_ref().map_or(0, |v| v.sent));
    net.run_until(Duration::from_secs(1), |_| false)?;
    let sent_since = net.peers[0].video.as_ref().map_or(0, |v| v.sent) - sent;
    assert!(sent_since >= 25, "alice sent {sent_since} packets while gated");
    assert_eq!(net.peers[1].received.len(), received, "a gated camera still reached bob");
    Ok(())
}

/// An engine at 192.0.2.1 with ICE-TCP on, advertised as seen through an L4 front (443, whatever
/// the listener's own port), and these participants joined in `room`; with that TCP address.
fn tcp_net(room: &str, who: &[&str], start: Instant) -> Result<(Net, SocketAddr), Error> {
    let sfu_addr: SocketAddr = "192.0.2.1:3478".parse()?;
    let sfu_tcp: SocketAddr = "192.0.2.1:443".parse()?;
    let config = SfuConfig { udp_bind: sfu_addr, tcp_announced: Some(sfu_tcp), ..Default::default() };
    let room: RoomId = room.into();
    let mut net = Net::new(MemoryDriver::new(sfu_addr, config, start)?, Some(sfu_tcp), &room);
    for &p in who {
        net.sfu.call(|reply| Command::Join { room: room.clone(), participant: p.into(), reply })?;
    }
    Ok((net, sfu_tcp))
}

/// ICE-TCP through the engine: bob's only path is a TCP connection to the SFU's passive candidate
/// (UDP blocked, as behind a strict firewall); alice publishes over UDP; bob gets her video.
#[test]
fn a_tcp_only_subscriber_receives_forwarded_video() -> Result<(), Error> {
    let start = Instant::now();
    let (mut net, _) = tcp_net("sportello-1", &["alice", "bob"], start)?;
    let room = net.room.clone();
    let mut alice = SimPeer::new("alice", "192.0.2.10:40000".parse()?, start)?;
    let bob_addr: SocketAddr = "192.0.2.11:51000".parse()?;
    let conn = ConnId(7);
    let bob = SimPeer::tcp_only("bob", bob_addr, conn, start)?;
    net.sfu.tcp_open(conn, bob_addr);
    // A stranger's connection that sends no STUN naming one of ours is refused.
    net.sfu.tcp_open(ConnId(8), "198.51.100.1:1234".parse()?);
    assert!(!net.sfu.tcp_receive(ConnId(8), &[0x80; 40]));

    let (offer, mid) = alice.publish_offer(start)?;
    let mids = vec![PublishedMid { mid, source: TrackSource::Camera }];
    let (r, p) = (room.clone(), ParticipantId::from("alice"));
    let answer = net.sfu.call(|reply| Command::PublishOffer { room: r, participant: p, sdp: offer, mids, reply })?;
    assert!(answer.contains("tcptype passive") && answer.contains(" 443 typ host"), "{answer}");
    alice.apply_answer(answer, start)?;
    net.peers = vec![alice, bob];

    let reached = net.run_until(Duration::from_secs(10), |net| net.peers[1].received.len() >= 30)?;
    let got = &net.peers[1].received;
    assert!(reached, "bob received {} packets over TCP in 10 s; events: {:?}", got.len(), net.events);
    assert!(net.connected("bob", PcKind::Subscribe), "{:?}", net.events);
    assert!(got.iter().all(|p| p.payload.len() == PAYLOAD_LEN && p.payload[2..].iter().all(|&b| b == FILL)));
    Ok(())
}

/// The `a=ice-ufrag` and `a=ice-pwd` of an SDP.
fn ice_credentials(sdp: &str) -> Result<(String, String), Error> {
    let value = |key: &str| {
        sdp.lines().find_map(|l| l.trim().strip_prefix(key)).map(str::to_owned).ok_or(format!("no {key} in {sdp}"))
    };
    Ok((value("a=ice-ufrag:")?, value("a=ice-pwd:")?))
}

/// Firefox over ICE-TCP nominates at once (USE-CANDIDATE on its first check) and, on a reliable
/// transport, never repeats a STUN request. So its nomination can reach the SFU before the SFU's
/// own check on that pair succeeded; `rtc-ice` 0.21.1 then sent only its triggered check and no
/// response, and Firefox's publish connection failed (e2e `front_paths`: in 5 of 10 logged runs
/// the page rejoined). Now the nomination is answered at once, and the connection comes up.
#[test]
fn a_tcp_nomination_before_our_check_succeeded_is_answered_and_the_connection_comes_up() -> Result<(), Error> {
    use rtc::ice::attributes::control::AttrControlling;
    use rtc::ice::attributes::priority::PriorityAttr;
    use rtc::ice::attributes::use_candidate::UseCandidateAttr;
    use rtc::stun::attributes::ATTR_USERNAME;
    use rtc::stun::fingerprint::FINGERPRINT;
    use rtc::stun::integrity::MessageIntegrity;
    use rtc::stun::message::{BINDING_REQUEST, BINDING_SUCCESS, Message, TransactionId};
    use rtc::stun::textattrs::Username;

    let start = Instant::now();
    let (mut net, sfu_tcp) = tcp_net("sportello-tcp", &["felice"], start)?;
    let room = net.room.clone();
    let felice_addr: SocketAddr = "192.0.2.12:52000".parse()?;
    let conn = ConnId(9);
    let mut felice = SimPeer::tcp_only("felice", felice_addr, conn, start)?;
    let (offer, mid) = felice.publish_offer(start)?;
    let (felice_ufrag, _) = ice_credentials(&offer)?;
    let mids = vec![PublishedMid { mid, source: TrackSource::Camera }];
    let (r, p) = (room.clone(), ParticipantId::from("felice"));
    let answer = net.sfu.call(|reply| Command::PublishOffer { room: r, participant: p, sdp: offer, mids, reply })?;
    let (sfu_ufrag, sfu_pwd) = ice_credentials(&answer)?;
    felice.apply_answer(answer, start)?;

    // Firefox's first check on its new connection, nominating.
    let crypto = rtc::crypto::default_provider()?;
    let mut check = Message::new();
    check.build(&[
        Box::new(BINDING_REQUEST),
        Box::new(TransactionId::new()),
        Box::new(Username::new(ATTR_USERNAME, format!("{sfu_ufrag}:{felice_ufrag}"))),
        Box::new(UseCandidateAttr),
        Box::new(AttrControlling(7)),
        Box::new(PriorityAttr(1_845_494_015)),
        Box::new(MessageIntegrity::new_short_term_integrity_with_provider(sfu_pwd, crypto.crypto())),
        Box::new(FINGERPRINT),
    ])?;
    net.sfu.tcp_open(conn, felice_addr);
    assert!(net.sfu.tcp_receive(conn, &check.raw));
    assert!(net.sfu.transmit().is_empty(), "felice has no UDP path"); // the flush
    let mut answered = false;
    for (to, d) in net.sfu.tcp_transmit() {
        assert_eq!(to, conn);
        let mut m = Message::new();
        if m.unmarshal_binary(&d).is_ok() && m.typ == BINDING_SUCCESS && m.transaction_id == check.transaction_id {
            answered = true;
        }
        // The SFU's own (triggered) check goes on to felice's agent, which answers it.
        felice.inbox.push_back((sfu_tcp, d));
    }
    assert!(answered, "the SFU did not answer a nominating check that came before its own check succeeded");

    net.peers = vec![felice];
    let up = net.run_until(Duration::from_secs(10), |net| net.connected("felice", PcKind::Publish))?;
    assert!(up, "felice's publish connection over ICE-TCP did not come up: {:?}", net.events);
    Ok(())
}

/// A lite agent hears a connection only through the browser's checks (a publisher's media bypasses
/// `rtc`). Firefox checks every 4–6 s; with `rtc`'s 5 s both of its connections kept going
/// disconnected and back. Checks every 5.5 s: neither connection is ever called disconnected, and
/// the video goes on.
#[test]
fn connections_checked_as_firefox_checks_them_never_go_disconnected() -> Result<(), Error> {
    let start = Instant::now();
    let every = Duration::from_millis(5500);
    let alice = SimPeer::checking_every("alice", "192.0.2.10:40000".parse()?, every, start)?;
    let bob = SimPeer::checking_every("bob", "192.0.2.11:40000".parse()?, every, start)?;
    let mut net = these_two(alice, bob, "sportello-consenso", start)?;

    assert!(net.run_until(Duration::from_secs(10), |net| net.peers[1].received.len() >= 30)?, "{:?}", net.events);
    let before = net.peers[1].received.len();
    net.run_until(Duration::from_secs(30), |_| false)?;
    let flaps: Vec<_> = net
        .events
        .iter()
        .filter(|e| matches!(e, SfuEvent::PeerState { state: PeerState::Disconnected | PeerState::Failed, .. }))
        .collect();
    assert!(flaps.is_empty(), "{flaps:?}");
    let got = net.peers[1].received.len() - before;
    assert!(got >= 600, "bob got {got} packets in 30 s");
    Ok(())
}

/// alice publishing to bob, who sends no feedback of his own, in `room`; run until bob gets video.
fn alice_and_silent_bob(room: &str, start: Instant) -> Result<Net, Error> {
    let bob = SimPeer::without_feedback("bob", "192.0.2.11:40000".parse()?, start)?;
    let mut net = alice_and(bob, room, start)?;
    assert!(net.run_until(Duration::from_secs(10), |net| net.peers[1].received.len() >= 30)?, "{:?}", net.events);
    Ok(net)
}

/// bob sends these RTCP packets now, on his receiving connection.
fn bob_sends_rtcp(net: &mut Net, packets: Vec<Box<dyn rtc::rtcp::Packet>>) -> Result<(), Error> {
    let now = net.sfu.now;
    let bob_pc = &mut net.peers[1].pc;
    let receiver = bob_pc.get_receivers().next().ok_or("bob has no receiver")?;
    bob_pc.rtp_receiver(receiver).ok_or("receiver")?.write_rtcp(now, packets)?;
    Ok(())
}

/// A subscriber's NACK arrives as browsers send it — in a compound after a receiver report whose
/// first block names another stream, and even one the SFU does not know — and is answered with the
/// packet it names, re-headed exactly as it first went out, from the track's one history.
#[test]
fn a_nack_in_a_browser_compound_is_answered_with_the_exact_packet() -> Result<(), Error> {
    use rtc::rtcp::receiver_report::ReceiverReport;
    use rtc::rtcp::reception_report::ReceptionReport;
    use rtc::rtcp::transport_feedbacks::transport_layer_nack::{NackPair, TransportLayerNack};

    let mut net = alice_and_silent_bob("sportello-2", Instant::now())?;

    // bob loses two packets on the way, then asks for them in a compound that leads with a report
    // block for an SSRC the SFU never sent.
    let last = net.peers[1].received.last().map_or(0, |p| p.header.sequence_number);
    let (x, y) = (last.wrapping_add(5), last.wrapping_add(7));
    net.peers[1].lose = vec![x, y];
    let seen = |net: &Net, seq: u16| net.peers[1].received.iter().any(|p| p.header.sequence_number == seq);
    assert!(net.run_until(Duration::from_secs(2), |net| seen(net, y.wrapping_add(2)))?, "video went on");
    assert!(!seen(&net, x) && !seen(&net, y), "bob lost them");
    let ssrc = net.peers[1].received[0].header.ssrc;
    let report = |ssrc| ReceptionReport { ssrc, ..Default::default() };
    let compound: Vec<Box<dyn rtc::rtcp::Packet>> = vec![
        Box::new(ReceiverReport { ssrc: 1, reports: vec![report(0xDEAD_BEEF), report(ssrc)], ..Default::default() }),
        Box::new(TransportLayerNack {
            sender_ssrc: 1,
            media_ssrc: ssrc,
            nacks: vec![NackPair { packet_id: x, lost_packets: 0b10 }],
        }),
    ];
    bob_sends_rtcp(&mut net, compound)?;
    assert!(
        net.run_until(Duration::from_millis(500), |net| seen(net, x) && seen(net, y))?,
        "the NACKed packets came back: {:?}",
        net.sfu.call(|reply| Command::Stats { reply })?
    );
    // Re-headed as the first time: bob's SSRC, alice's picture, the timestamp between its neighbours'
    // (one frame per packet here).
    let by_seq = |seq: u16| net.peers[1].received.iter().find(|p| p.header.sequence_number == seq).cloned();
    for seq in [x, y] {
        let (Some(prev), Some(p), Some(next)) = (by_seq(seq.wrapping_sub(1)), by_seq(seq), by_seq(seq.wrapping_add(1)))
        else {
            panic!("bob lacks a neighbour of {seq}");
        };
        assert_eq!(p.header.ssrc, ssrc);
        assert!(p.payload.len() == PAYLOAD_LEN && p.payload[2..].iter().all(|&b| b == FILL));
        let step = next.header.timestamp.wrapping_sub(prev.header.timestamp) / 2;
        assert_eq!(p.header.timestamp, prev.header.timestamp.wrapping_add(step));
    }
    let stats = net.sfu.call(|reply| Command::Stats { reply })?;
    assert_eq!((stats.nacks_received, stats.rtx_sent), (1, 2), "{stats:?}");
    Ok(())
}

/// A NACK for `seq` of what bob receives on `ssrc`.
fn nack(ssrc: u32, seq: u16) -> Vec<Box<dyn rtc::rtcp::Packet>> {
    use rtc::rtcp::transport_feedbacks::transport_layer_nack::{NackPair, TransportLayerNack};
    vec![Box::new(TransportLayerNack {
        sender_ssrc: 1,
        media_ssrc: ssrc,
        nacks: vec![NackPair { packet_id: seq, lost_packets: 0 }],
    })]
}

/// The sequence number of the packet bob got about `ms` ago (one packet a frame).
fn bobs_packet_ago(net: &Net, ms: u128) -> u16 {
    let got = &net.peers[1].received;
    got[got.len() - 1 - (ms / FRAME.as_millis()) as usize].header.sequence_number
}

/// Whether the SFU answers bob's NACK for `seq` (with a retransmission).
fn answered(net: &mut Net, ssrc: u32, seq: u16) -> Result<bool, Error> {
    let rtx_sent = |net: &mut Net| net.sfu.call(|reply| Command::Stats { reply }).map(|s| s.rtx_sent);
    let before = rtx_sent(net)?;
    bob_sends_rtcp(net, nack(ssrc, seq))?;
    net.settle()?;
    Ok(rtx_sent(net)? > before)
}

/// Once a connection is up, the room its handshake grew in `rtc`'s stage queues is given back, and
/// the connection goes on as before: a NACK is answered through the trimmed queues, media flows,
/// and what that NACK grew again is given back at the next trim, ten seconds on.
#[test]
fn an_established_connection_gives_back_its_idle_queues_and_goes_on() -> Result<(), Error> {
    let mut net = alice_and_silent_bob("sportello-8", Instant::now())?;
    let trimmed = |net: &mut Net| net.sfu.call(|reply| Command::Stats { reply }).map(|s| s.trimmed_queue_bytes);
    let at_first = trimmed(&mut net)?;
    assert!(at_first > 0, "nothing given back once connected");
    let ssrc = net.peers[1].received[0].header.ssrc;
    let seq = bobs_packet_ago(&net, 100);
    assert!(answered(&mut net, ssrc, seq)?, "a NACK through the trimmed queues went unanswered");
    let got = net.peers[1].received.len();
    net.run_until(Duration::from_secs(11), |_| false)?;
    assert!(net.peers[1].received.len() > got + 250, "bob's video stopped after the trim");
    assert!(trimmed(&mut net)? > at_first, "what grew after the first trim was kept");
    Ok(())
}

/// A subscriber's DTLS handshake tells the SFU its round trip before any receiver report does, and
/// that sets how long the track's history keeps packets from the start: a third of a second for a
/// subscriber close by (here: no delay at all), not the half second kept while no round trip is
/// known (`forward::history` tests those rules). Bob sends no reports: a NACK for a packet 0.4 s
/// old finds it gone; 0.17 s, not.
#[test]
fn a_subscribers_handshake_sets_how_long_lost_packets_can_be_asked_for() -> Result<(), Error> {
    let mut net = alice_and_silent_bob("sportello-5", Instant::now())?;
    net.run_until(Duration::from_secs(1), |_| false)?;
    let ssrc = net.peers[1].received[0].header.ssrc;
    let (old, recent) = (bobs_packet_ago(&net, 400), bobs_packet_ago(&net, 170));
    assert!(!answered(&mut net, ssrc, old)?, "a short round trip: a packet 0.4 s old was let go");
    assert!(answered(&mut net, ssrc, recent)?, "a packet 0.17 s old is still kept");
    Ok(())
}

/// A subscriber's receiver reports (on the SFU's sender reports, as a browser's) tell the SFU its
/// round trip as it goes: one that says a quarter of a second keeps a second of the track (four
/// round trips), though the handshake (and `rtc`'s own reports) found none. A NACK for a packet
/// 0.7 s old is then answered.
#[test]
fn a_subscribers_receiver_reports_set_how_long_lost_packets_can_be_asked_for() -> Result<(), Error> {
    use rtc::rtcp::receiver_report::ReceiverReport;
    use rtc::rtcp::reception_report::ReceptionReport;

    let start = Instant::now();
    let bob = SimPeer::new("bob", "192.0.2.11:40000".parse()?, start)?;
    let mut net = alice_and(bob, "sportello-6", start)?;
    assert!(net.run_until(Duration::from_secs(5), |net| net.peers[1].reports.len() >= 2)?, "no sender reports");
    let ssrc = net.peers[1].received[0].header.ssrc;
    let old = |net: &mut Net| -> Result<bool, Error> {
        let seq = bobs_packet_ago(net, 700);
        answered(net, ssrc, seq)
    };
    assert!(!old(&mut net)?, "round trips of nothing: a packet 0.7 s old was let go");
    // The last sender report arrived just now; bob answers it 250 ms later, as if it had taken
    // that long to come and go.
    let lsr = net.peers[1].reports.last().map(|(r, _)| (r.ntp_time >> 16) as u32).ok_or("no report")?;
    net.run_until(Duration::from_millis(250), |_| false)?;
    let report = ReceptionReport { ssrc, last_sender_report: lsr, delay: 0, ..Default::default() };
    bob_sends_rtcp(&mut net, vec![Box::new(ReceiverReport { ssrc: 1, reports: vec![report], ..Default::default() })])?;
    net.run_until(Duration::from_millis(800), |_| false)?;
    assert!(old(&mut net)?, "four round trips of 250 ms: a packet 0.7 s old is still kept");
    Ok(())
}

/// What a publisher hears about its stream comes from the engine's own feedback chain, fed the
/// packets the engine opens itself (`engine/ingress.rs`), not only the first few `rtc` opened:
/// receiver reports that count up to its latest packet, transport-cc feedback (its uplink
/// estimate), and a NACK for a packet lost on the way in, whose retransmission reaches the
/// subscriber — no hole in what bob received.
#[test]
fn a_publisher_gets_reports_transport_cc_and_nacks_about_the_media_the_engine_opened() -> Result<(), Error> {
    use rtc::rtcp::receiver_report::ReceiverReport;
    use rtc::rtcp::transport_feedbacks::transport_layer_cc::TransportLayerCc;

    let (mut net, next) = alice_sending_to_bob("sportello-6")?;
    // Two seconds of video in, alice's next packets are lost on the way to the SFU, one each.
    let (x, y) = (next.wrapping_add(3), next.wrapping_add(10));
    net.peers[0].lose_out = vec![x, y];
    net.peers[0].feedback.clear();
    let sent_past_y = |net: &Net| net.peers[0].video.as_ref().map_or(0, |v| v.seq.wrapping_sub(y));
    assert!(net.run_until(Duration::from_secs(3), |net| (60..0x8000).contains(&sent_past_y(net)))?);
    assert!(net.peers[0].lose_out.is_empty(), "both were lost");

    let alice = &net.peers[0];
    let nacked = nacked(alice);
    assert!(nacked.contains(&x) && nacked.contains(&y), "NACKed {nacked:?}, lost {x} and {y}");
    let twcc = alice.feedback.iter().filter(|p| p.as_any().is::<TransportLayerCc>()).count();
    assert!(twcc >= 10, "{twcc} transport-cc feedback packets in 2 s of video");
    let newest = alice
        .feedback
        .iter()
        .filter_map(|p| p.as_any().downcast_ref::<ReceiverReport>())
        .flat_map(|r| r.reports.iter().filter(|b| b.ssrc == PUBLISHER_SSRC))
        .map(|b| b.last_sequence_number as u16)
        .next_back()
        .ok_or("no receiver report on alice's stream")?;
    assert!(newest.wrapping_sub(y) < 0x8000 && newest != y, "reported up to {newest}, sent past {y}");

    // bob got every packet, the two lost ones through alice's retransmission.
    let seqs: Vec<u16> = net.peers[1].received.iter().map(|p| p.header.sequence_number).collect();
    let first = *seqs.first().ok_or("bob got nothing")?;
    let span = seqs.iter().map(|s| s.wrapping_sub(first)).max().unwrap_or(0);
    let mut got: Vec<u16> = seqs.iter().map(|s| s.wrapping_sub(first)).collect();
    got.sort_unstable();
    got.dedup();
    assert_eq!(got.len(), usize::from(span) + 1, "bob has holes: {} of {} packets", got.len(), span + 1);
    let stats = net.sfu.call(|reply| Command::Stats { reply })?;
    assert!(stats.nacks_sent >= 1, "{stats:?}");
    Ok(())
}

/// alice and bob in `room`, bob having received 60 of alice's packets; with alice's next number.
fn alice_sending_to_bob(room: &str) -> Result<(Net, u16), Error> {
    let start = Instant::now();
    let bob = SimPeer::new("bob", "192.0.2.11:40000".parse()?, start)?;
    let mut net = alice_and(bob, room, start)?;
    assert!(net.run_until(Duration::from_secs(10), |net| net.peers[1].received.len() >= 60)?, "{:?}", net.events);
    let next = net.peers[0].video.as_ref().ok_or("alice sends no video")?.seq;
    Ok((net, next))
}

/// The sequence numbers `peer` was sent NACKs for.
fn nacked(peer: &SimPeer) -> Vec<u16> {
    use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
    peer.feedback
        .iter()
        .filter_map(|p| p.as_any().downcast_ref::<TransportLayerNack>())
        .flat_map(|n| n.nacks.iter().flat_map(|p| p.packet_list()))
        .collect()
}

/// A packet lost on the way in is asked for as soon as the next one shows the gap, not at the next
/// 100 ms feedback tick: the sooner the publisher resends it, the sooner subscribers have it.
#[test]
fn a_packet_lost_on_the_way_in_is_asked_for_as_soon_as_the_gap_shows() -> Result<(), Error> {
    let (mut net, next) = alice_sending_to_bob("sportello-7")?;
    let x = next.wrapping_add(3);
    net.peers[0].lose_out = vec![x];
    let sent_past_x = |net: &Net| net.peers[0].video.as_ref().map_or(0, |v| v.seq.wrapping_sub(x));
    assert!(net.run_until(Duration::from_secs(1), |net| (2..0x8000).contains(&sent_past_x(net)))?);
    let gap_seen = net.sfu.now;
    assert!(net.run_until(Duration::from_secs(1), |net| nacked(&net.peers[0]).contains(&x))?, "{x} never asked for");
    let waited = net.sfu.now - gap_seen;
    assert!(waited <= Duration::from_millis(5), "{x} asked for {waited:?} after the gap showed");
    Ok(())
}

/// A subscriber's pacer (set from its REMB) holds back what a burst brings beyond its credit; the
/// rest leaves as the credit comes back, though nothing else arrives to wake the subscriber — no
/// packet waits for the publisher's next one.
#[test]
fn a_paced_subscriber_gets_the_rest_of_a_burst_without_new_input() -> Result<(), Error> {
    use rtc::rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate;
    let mut net = alice_and_silent_bob("sportello-4", Instant::now())?;
    // bob's estimate paces him at the SFU's floor: 1 Mbit/s, 256 KiB of burst.
    let ssrc = net.peers[1].received[0].header.ssrc;
    let remb = ReceiverEstimatedMaximumBitrate { sender_ssrc: 1, bitrate: 100_000.0, ssrcs: vec![ssrc] };
    bob_sends_rtcp(&mut net, vec![Box::new(remb)])?;
    net.settle()?;
    let now = net.sfu.now;

    // alice stops her clock and sends one burst: 500 × 640 bytes on the wire, ≈ 64 KiB beyond the
    // burst allowance, ≈ 0.5 s at 1 Mbit/s. Then nothing from anyone.
    let before = net.peers[1].received.len();
    let alice = &mut net.peers[0];
    let v = alice.video.as_mut().ok_or("alice sends no video")?;
    v.next_at = now + Duration::from_secs(3600);
    for _ in 0..500 {
        send_keyframe(&mut alice.pc, v, now);
    }
    net.settle()?;
    let held = before + 500 - net.peers[1].received.len();
    assert!(held > 50, "the pacer held back only {held} packets");
    // What was held leaves as the credit allows (640 bytes a packet at 1 Mbit/s), give or take
    // the millisecond the simulation steps by — not at the next timer of bob's connection.
    let due = Duration::from_micros(held as u64 * 640 * 8);
    let all = net.run_until(due + Duration::from_millis(20), |net| net.peers[1].received.len() >= before + 500)?;
    let got = net.peers[1].received.len() - before;
    assert!(all, "bob got {got} of the burst's 500 packets in {:?} ({held} were held back)", net.sfu.now - now);
    let stats = net.sfu.call(|reply| Command::Stats { reply })?;
    assert_eq!(stats.dropped_packets, 0, "{stats:?}");
    Ok(())
}

/// The engine sends forwarded RTP and sender reports itself (`engine/egress.rs`): bob decrypts both
/// with the keys of his DTLS handshake, and each report tells the truth about the stream he got —
/// its SSRC, every packet and octet sent before it, and an RTP time on that stream's clock.
#[test]
fn a_subscriber_gets_sender_reports_true_to_the_packets_it_received() -> Result<(), Error> {
    let start = Instant::now();
    let bob = SimPeer::new("bob", "192.0.2.11:40000".parse()?, start)?;
    let mut net = alice_and(bob, "sportello-3", start)?;
    let reached = net.run_until(Duration::from_secs(10), |net| net.peers[1].reports.len() >= 3)?;
    let bob = &net.peers[1];
    assert!(reached, "bob got {} reports and {} packets in 10 s", bob.reports.len(), bob.received.len());
    let ssrc = bob.received.first().ok_or("no media")?.header.ssrc;
    for (report, arrived) in &bob.reports {
        assert_eq!(report.ssrc, ssrc, "{report:?}");
        // Nothing is lost or reordered here, so everything the SFU counted had arrived.
        assert_eq!(report.packet_count as usize, *arrived, "{report:?}");
        assert_eq!(report.octet_count as usize, arrived * PAYLOAD_LEN, "{report:?}");
        // One frame per packet, 3,000 ticks apart: the report's RTP time lies within a frame of the
        // newest packet's.
        let newest = bob.received[arrived - 1].header.timestamp;
        assert!(report.rtp_time.wrapping_sub(newest) <= 3000, "{report:?} after timestamp {newest}");
    }
    // A second apart, by both clocks.
    let (a, b) = (&bob.reports[1].0, &bob.reports[2].0);
    assert_eq!(b.ntp_time.wrapping_sub(a.ntp_time) >> 32, 1, "{a:?} {b:?}");
    let ticks = b.rtp_time.wrapping_sub(a.rtp_time);
    assert!((89_000..=91_000).contains(&ticks), "{ticks} ticks of 90 kHz between reports a second apart");
    Ok(())
}

/// A WHEP viewer of a program whose home is another engine, served from a mirror there: alice
/// publishes on engine 0 (the program's home), the viewer's connection is engine 1's, and every
/// datagram lands on the wrong engine (as the kernel's 4-tuple hash may do) — or, for a viewer
/// reachable only over ICE-TCP, reaches engine 1 through engine 0's listener. The viewer gets
/// alice's picture, re-headed, without a gap; closing the program closes it on both engines.
fn a_mirrored_program_reaches_a_viewer_on_another_engine(viewer_tcp: bool) -> Result<(), Error> {
    use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
    let start = Instant::now();
    let sfu_addr: SocketAddr = "192.0.2.1:3478".parse()?;
    let sfu_tcp: SocketAddr = "192.0.2.1:443".parse()?;
    let config = SfuConfig { udp_bind: sfu_addr, tcp_announced: Some(sfu_tcp), ..Default::default() };
    let room: RoomId = "council-7".into();
    let program: RoomId = "live-7".into();
    let mut engines = MemoryDriver::sharded(sfu_addr, config, 2, start)?.into_iter();
    let mut node = Net::new(engines.next().ok_or("no engine")?, Some(sfu_tcp), &room);
    node.others = engines.collect();

    let (r, p) = (room.clone(), ParticipantId::from("alice"));
    node.sfu.call(|reply| Command::Join { room: r, participant: p, reply })?;
    let mut alice = SimPeer::new("alice", "192.0.2.10:40000".parse()?, start)?;
    let (offer, mid) = alice.publish_offer(start)?;
    let mids = vec![PublishedMid { mid, source: TrackSource::Camera }];
    let (r, p) = (room.clone(), ParticipantId::from("alice"));
    let answer = node.sfu.call(|reply| Command::PublishOffer { room: r, participant: p, sdp: offer, mids, reply })?;
    alice.apply_answer(answer, start)?;
    let prog = program.clone();
    node.sfu.call(|reply| Command::ProgramOpen { program: prog, audio_slots: 1, reply })?;
    let selection =
        ProgramSelection { video: vec![SourceRef::new(room.clone(), "alice", TrackSource::Camera)], audio: vec![] };
    let prog = program.clone();
    node.sfu.call(|reply| Command::ProgramSelect { program: prog, selection, reply })?;
    // Alice's datagrams land on engine 1, the viewer's (below) on engine 0: the wrong one each time.
    alice.lands_on = 1;
    node.peers = vec![alice];
    // On air before the viewer comes: the program switches to alice at her first keyframe.
    let switched = |n: &Net| n.sfu.program_extensions(&program, 0).is_some_and(|e| !e.is_empty());
    assert!(node.run_until(Duration::from_secs(10), switched)?, "the program never showed alice");
    let start = node.sfu.now;

    let viewer_addr: SocketAddr = "192.0.2.20:41000".parse()?;
    let conn = ConnId(3);
    let mut viewer = if viewer_tcp {
        node.sfu.tcp_open(conn, viewer_addr);
        SimPeer::tcp_only("viewer", viewer_addr, conn, start)?
    } else {
        SimPeer::new("viewer", viewer_addr, start)?
    };
    for kind in [RtpCodecKind::Video, RtpCodecKind::Audio] {
        let init = RTCRtpTransceiverInit { direction: RTCRtpTransceiverDirection::Recvonly, ..Default::default() };
        viewer.pc.add_transceiver_from_kind(kind, Some(init))?;
    }
    let offer = viewer.pc.create_offer(None)?;
    let sdp = offer.sdp.clone();
    viewer.pc.set_local_description(start, offer)?;
    let mirror = Some(crate::transport::engine::MirrorOf { home: 0, audio_slots: 1 });
    let (prog, v) = (program.clone(), ParticipantId::from("viewer"));
    let answer = node.others[0].call(|reply| Command::WhepOffer { program: prog, viewer: v, sdp, mirror, reply })?;
    viewer.apply_answer(answer, start)?;
    node.peers.push(viewer);

    let reached = node.run_until(Duration::from_secs(10), |n| n.peers[1].received.len() >= 30)?;
    let got = &node.peers[1].received;
    assert!(reached, "the viewer received {} packets in 10 s", got.len());
    assert!(got.iter().all(|p| p.payload.len() == PAYLOAD_LEN && p.payload[2..].iter().all(|&b| b == FILL)));
    let ssrc = got[0].header.ssrc;
    assert!(ssrc != PUBLISHER_SSRC && got.iter().all(|p| p.header.ssrc == ssrc));
    assert!(got.windows(2).all(|w| w[1].header.sequence_number == w[0].header.sequence_number.wrapping_add(1)));
    // Engine 1 sent them (from its mirror); engine 0 has nobody to send to.
    let home = node.sfu.call(|reply| Command::Stats { reply })?;
    let mirror = node.others[0].call(|reply| Command::Stats { reply })?;
    assert!(mirror.forwarded_packets >= got.len() as u64, "{mirror:?}");
    assert_eq!((home.forwarded_packets, home.subscriptions), (0, 0), "{home:?}");
    assert_eq!(mirror.peer_connections, 1, "{mirror:?}");
    // The mirror opened after the program had switched to alice, and still learned her header
    // extensions (with its first packet: a switch is not the only time a mirror is told them).
    let at_home = node.sfu.program_extensions(&program, 0).unwrap_or_default();
    assert!(!at_home.is_empty());
    assert_eq!(node.others[0].program_extensions(&program, 0), Some(at_home));

    // The program closes on its mirror (the viewer leaves) and its home; alice stays.
    for i in [1, 0] {
        let prog = program.clone();
        node.engine(i).call(|reply| Command::ProgramClose { program: prog, reply })?;
    }
    let mirror = node.others[0].call(|reply| Command::Stats { reply })?;
    assert_eq!((mirror.peer_connections, mirror.participants, mirror.published_tracks), (0, 0, 0), "{mirror:?}");
    let home = node.sfu.call(|reply| Command::Stats { reply })?;
    assert_eq!((home.peer_connections, home.published_tracks), (1, 1), "{home:?}");
    Ok(())
}

#[test]
fn a_program_viewer_on_another_engine_is_served_from_a_mirror_though_every_datagram_lands_on_the_wrong_engine()
-> Result<(), Error> {
    a_mirrored_program_reaches_a_viewer_on_another_engine(false)
}

#[test]
fn an_ice_tcp_viewer_on_another_engine_is_relayed_through_the_listening_engine() -> Result<(), Error> {
    a_mirrored_program_reaches_a_viewer_on_another_engine(true)
}
