//! Building the `rtc` peer connections the SFU uses: codecs, header extensions, interceptors, ICE.
//!
//! Both legs negotiate only Opus and VP8 (+RTX): forwarding without decoding needs the publisher's and
//! the subscriber's codec to be the same, and every browser does these two.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use rand::distr::Alphanumeric;
use rtc::ice::mdns::MulticastDnsMode;
pub use rtc::ice::tcp_type::TcpType;
use rtc::interceptor::{Registry, Slot};
use rtc::peer_connection::RTCPeerConnection;
use rtc::peer_connection::RTCPeerConnectionBuilder;
use rtc::peer_connection::certificate::{CertificateParams, RTCCertificate};
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::interceptor_registry::configure_twcc_receiver_only;
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_OPUS, MIME_TYPE_RTX, MIME_TYPE_VP8, MediaEngine};
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::transport::{
    CandidateConfig, CandidateHostConfig, RTCDtlsRole, RTCIceCandidate, RTCIceCandidateInit,
};
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RTCRtpHeaderExtensionCapability, RtpCodecKind,
};

use crate::api::{MediaKind, PcKind, SfuError};
use crate::transport::counters::{self, CountFeedback, RtcpCounts};
use crate::transport::feedback;

pub const URI_AUDIO_LEVEL: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";
pub const URI_MID: &str = "urn:ietf:params:rtp-hdrext:sdes:mid";
/// Transport-wide congestion control: the publisher numbers every packet it sends us.
pub const URI_TRANSPORT_CC: &str = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";
const URI_ABS_SEND_TIME: &str = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time";

/// RTP clock rates of our two codecs (RFC 7587: Opus is always 48 kHz; RFC 7741: VP8 90 kHz).
pub const OPUS_CLOCK_RATE: u32 = 48_000;
pub const VP8_CLOCK_RATE: u32 = 90_000;

/// The RTP clock rate of what a track of `kind` carries.
pub fn clock_rate(kind: MediaKind) -> u32 {
    match kind {
        MediaKind::Audio => OPUS_CLOCK_RATE,
        MediaKind::Video => VP8_CLOCK_RATE,
    }
}

pub const OPUS_PT: u8 = 111;
pub const VP8_PT: u8 = 96;
pub const VP8_RTX_PT: u8 = 97;

pub fn opus_codec() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_OPUS.to_owned(),
        clock_rate: OPUS_CLOCK_RATE,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
        rtcp_feedback: vec![],
    }
}

pub fn vp8_codec() -> RTCRtpCodec {
    let fb = |typ: &str, parameter: &str| RTCPFeedback { typ: typ.to_owned(), parameter: parameter.to_owned() };
    RTCRtpCodec {
        mime_type: MIME_TYPE_VP8.to_owned(),
        clock_rate: VP8_CLOCK_RATE,
        channels: 0,
        sdp_fmtp_line: String::new(),
        rtcp_feedback: vec![fb("goog-remb", ""), fb("ccm", "fir"), fb("nack", ""), fb("nack", "pli")],
    }
}

fn media_engine(kind: PcKind) -> Result<MediaEngine, rtc::shared::error::Error> {
    let mut me = MediaEngine::default();
    me.register_codec(RTCRtpCodecParameters { rtp_codec: opus_codec(), payload_type: OPUS_PT }, RtpCodecKind::Audio)?;
    me.register_codec(RTCRtpCodecParameters { rtp_codec: vp8_codec(), payload_type: VP8_PT }, RtpCodecKind::Video)?;
    me.register_codec(
        RTCRtpCodecParameters {
            rtp_codec: RTCRtpCodec {
                mime_type: MIME_TYPE_RTX.to_owned(),
                clock_rate: VP8_CLOCK_RATE,
                channels: 0,
                sdp_fmtp_line: format!("apt={VP8_PT}"),
                rtcp_feedback: vec![],
            },
            payload_type: VP8_RTX_PT,
        },
        RtpCodecKind::Video,
    )?;
    let ext = |uri: &str| RTCRtpHeaderExtensionCapability { uri: uri.to_owned() };
    me.register_header_extension(ext(URI_MID), RtpCodecKind::Audio, None)?;
    me.register_header_extension(ext(URI_MID), RtpCodecKind::Video, None)?;
    // Audio levels only matter upstream (active speaker); abs-send-time helps the browser's
    // receive-side bandwidth estimate (REMB) downstream.
    match kind {
        PcKind::Publish => me.register_header_extension(ext(URI_AUDIO_LEVEL), RtpCodecKind::Audio, None)?,
        PcKind::Subscribe => me.register_header_extension(ext(URI_ABS_SEND_TIME), RtpCodecKind::Video, None)?,
    }
    Ok(me)
}

/// NACKs and keyframe requests by PLI, both ways; transport-wide congestion control feedback for
/// what a publisher sends us (its uplink estimate). Downstream we rely on the browser's REMB
/// instead, because we do not stamp transport-cc ourselves.
///
/// No leg gets `rtc`'s feedback interceptors: a publish leg's NACKs, receiver reports and
/// transport-cc feedback are the engine's, made from every packet it routes (`engine/ingress/`);
/// a subscribe leg's RTP and sender reports are the engine's (`engine/egress.rs`), and subscribers'
/// NACKs are answered from one history per track (`engine/nack.rs`), not by an `rtc` responder
/// keeping a copy of every packet per subscriber.
fn feedback(kind: PcKind, me: &mut MediaEngine) -> Result<(), rtc::shared::error::Error> {
    for parameter in ["", "pli"] {
        me.register_feedback(
            RTCPFeedback { typ: "nack".to_owned(), parameter: parameter.to_owned() },
            RtpCodecKind::Video,
        );
    }
    if kind == PcKind::Publish {
        // What `rtc` would negotiate with its recorder; the recorder it builds is dropped.
        configure_twcc_receiver_only(Registry::new(), me)?;
    }
    Ok(())
}

/// The DTLS certificate every peer connection of an engine presents. `rtc` would generate a key
/// pair and a self-signed certificate for each connection, which costs every join; one per engine
/// is what browsers expect of a server (they pin the fingerprint per connection, from the SDP).
pub fn certificate() -> Result<RTCCertificate, SfuError> {
    let err = |e: &dyn std::fmt::Display| SfuError::Transport(format!("DTLS certificate: {e}"));
    let provider = rtc::crypto::default_provider().map_err(|e| err(&e))?;
    let params = CertificateParams::new(vec!["sportello".to_owned()]).map_err(|e| err(&e))?;
    RTCCertificate::generate(provider.crypto(), rtc::crypto::SignatureScheme::EcdsaP256Sha256, params)
        .map_err(|e| err(&e))
}

/// A random ICE credential; the ufrag is also our demultiplexing key for the shared socket.
pub fn random_token(len: usize) -> String {
    rand::rng().sample_iter(&Alphanumeric).take(len).map(char::from).collect()
}

/// How long a connection may hear no ICE check before `rtc` calls it disconnected. As a lite agent
/// the SFU sends no checks of its own, and a publisher's media bypasses `rtc`: a connection is heard
/// only through the browser's consent checks, which Firefox sends every 4–6 s (RFC 7675). `rtc`'s
/// 5 s made a Firefox connection flap between disconnected and connected; this tolerates one late
/// or lost check.
pub const ICE_DISCONNECTED_AFTER: Duration = Duration::from_secs(10);
/// How much longer until it is failed: 30 s in all, RFC 7675's consent expiry (as `rtc`'s 5 + 25).
pub const ICE_FAILED_AFTER: Duration = Duration::from_secs(20);

/// Which end of the negotiation our side of a connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A browser's or a viewer's offer, answered: ICE lite (the other side checks the pairs),
    /// DTLS server. Every connection but the one below.
    Answerer,
    /// Our own offer (an edge's relay leg to the origin, `engine/upstream.rs`): full ICE, the
    /// controlling agent, since the origin answers as a lite agent; DTLS client, since it answers
    /// as the server.
    Offerer,
}

/// Builds one peer connection for the shared socket at `candidate_addr` (the announced address).
#[allow(clippy::too_many_arguments)]
pub fn build(
    kind: PcKind,
    role: Role,
    ufrag: &str,
    candidate_addr: SocketAddr,
    tcp_addr: Option<SocketAddr>,
    counts: &Arc<RtcpCounts>,
    certificate: &RTCCertificate,
    now: Instant,
) -> Result<RTCPeerConnection, SfuError> {
    let err = |e: rtc::shared::error::Error| SfuError::Transport(e.to_string());
    let mut me = media_engine(kind).map_err(err)?;
    let registry = Registry::new().with(Slot::from(counters::SLOT), CountFeedback::new(Arc::clone(counts)));
    // Only a subscriber's RTCP matters to the engine (feedback on what we send it); on a publish
    // leg the stage would only move every received packet through one more queue.
    let registry = match kind {
        PcKind::Publish => registry,
        PcKind::Subscribe => registry.with(Slot::from(feedback::SLOT), feedback::DeliverFeedback::subscriber()),
    };
    feedback(kind, &mut me).map_err(err)?;
    let settings = SettingEngineBuilder::new()
        .with_ice_credentials(ufrag.to_owned(), random_token(32))
        .with_ice_timeouts(Some(ICE_DISCONNECTED_AFTER), Some(ICE_FAILED_AFTER), None)
        .with_multicast_dns_mode(MulticastDnsMode::Disabled);
    let settings = match role {
        // As DTLS server we choose the SRTP profile: AES-GCM first (cheaper than AES-CM + HMAC).
        Role::Answerer => settings.with_answering_dtls_role(RTCDtlsRole::Server).with_lite(true),
        Role::Offerer => settings,
    }
    .build();
    let mut pc = RTCPeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().with_certificates(vec![certificate.clone()]).build())
        .with_setting_engine(settings)
        .with_media_engine(me)
        .with_interceptor_registry(registry)
        .build(now)
        .map_err(err)?;
    let init = host_candidate(candidate_addr).map_err(err)?;
    pc.add_local_candidate(init).map_err(err)?;
    if let Some(addr) = tcp_addr {
        pc.add_local_candidate(tcp_candidate(addr, TcpType::Passive).map_err(err)?).map_err(err)?;
    }
    Ok(pc)
}

/// A TCP host candidate (RFC 6544) at `addr`: passive for the SFU's listener, active for a client
/// (whose port is a placeholder: it connects from an ephemeral one).
pub fn tcp_candidate(addr: SocketAddr, tcp_type: TcpType) -> Result<RTCIceCandidateInit, rtc::shared::error::Error> {
    let candidate = CandidateHostConfig {
        base_config: CandidateConfig {
            network: "tcp".to_owned(),
            address: addr.ip().to_string(),
            port: addr.port(),
            component: 1,
            ..Default::default()
        },
        tcp_type,
    }
    .new_candidate_host()?;
    RTCIceCandidate::from(&candidate).to_json()
}

/// The one ICE candidate of a socket: a UDP host candidate at `addr` (for the SFU, the announced one).
pub fn host_candidate(addr: SocketAddr) -> Result<RTCIceCandidateInit, rtc::shared::error::Error> {
    let candidate = CandidateHostConfig {
        base_config: CandidateConfig {
            network: "udp".to_owned(),
            address: addr.ip().to_string(),
            port: addr.port(),
            component: 1,
            ..Default::default()
        },
        ..Default::default()
    }
    .new_candidate_host()?;
    RTCIceCandidate::from(&candidate).to_json()
}
