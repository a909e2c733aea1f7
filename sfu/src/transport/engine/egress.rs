//! The way out of a subscribe connection: forwarded RTP protected by the engine itself, and the
//! connection's sender reports.
//!
//! Written through `rtc`, every forwarded packet moved through the connection's write pipeline —
//! interceptor chain, SRTP handler, ICE handler, a queue at each stage — which was half of the SFU's
//! CPU per forwarded packet. Once DTLS is up, the engine takes an SRTP context of its own for the
//! connection (`rtc` is patched for that: vendor/rtc/PATCH.md), encrypts each re-headed packet once
//! and queues the datagram on the path ICE selected. `rtc` keeps ICE, DTLS and the subscriber's
//! RTCP; since it no longer sees the packets, the sender reports are made here.

use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use rtc::peer_connection::transport::{RTCIceCandidate, RTCIceProtocol};
use rtc::rtcp::sender_report::SenderReport;
use rtc::shared::error::Error as RtcError;
use rtc::shared::marshal::{Marshal, MarshalSize};
use rtc::srtp::context::Context;

use super::*;

/// How often every downtrack sends a sender report. Browsers report about once a second too; lip
/// sync between a participant's audio and video waits for the first report of each.
pub(super) const REPORT_INTERVAL: Duration = Duration::from_secs(1);

/// Seconds from the NTP epoch (1900) to the Unix epoch (1970).
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// A subscribe connection's own SRTP context and the path ICE selected for it.
pub(super) struct Egress {
    srtp: Context,
    /// Where `rtc` itself would send: refreshed at every report tick and connection-state change
    /// (`rtc` announces no change of the selected pair, and the browser may nominate another).
    path: TransportContext,
    /// The clear packet, marshalled before it is encrypted (reused).
    scratch: Vec<u8>,
}

impl Egress {
    /// The connection's egress, once DTLS is up and ICE has selected a pair; `None` before that.
    pub(super) fn new(pc: &mut RTCPeerConnection) -> Option<Box<Egress>> {
        let path = selected_path(pc)?;
        let sender = pc.get_senders().next()?;
        let (srtp, _) = pc.rtp_sender(sender)?.transport()?.new_srtp_contexts()?;
        Some(Box::new(Egress { srtp, path, scratch: Vec::with_capacity(1500) }))
    }

    /// Follows ICE to the pair it selects now, if that changed.
    pub(super) fn refresh_path(&mut self, pc: &mut RTCPeerConnection) {
        if let Some(path) = selected_path(pc)
            && path != self.path
        {
            debug!(from = %self.path.peer_addr, to = %path.peer_addr, "subscriber path changed");
            self.path = path;
        }
    }

    pub(super) fn path(&self) -> &TransportContext {
        &self.path
    }

    /// The SRTP datagram of one RTP packet.
    pub(super) fn protect(&mut self, packet: &rtp::Packet) -> Result<BytesMut, RtcError> {
        self.scratch.resize(packet.marshal_size(), 0);
        let n = packet.marshal_to(&mut self.scratch)?;
        self.srtp.encrypt_rtp_with_header(&self.scratch[..n], &packet.header)
    }

    /// The SRTCP datagram of one sender report.
    pub(super) fn protect_report(&mut self, report: &SenderReport) -> Result<BytesMut, RtcError> {
        self.srtp.encrypt_rtcp(&report.marshal()?)
    }
}

/// The transport `rtc`'s ICE handler stamps on what it sends over the pair ICE selected: the remote
/// candidate's address, and the protocol of the pair (how [`Engine::emit`] finds a UDP or an
/// ICE-TCP way out). `None` until a pair is selected (or before negotiation gave a transport).
fn selected_path(pc: &mut RTCPeerConnection) -> Option<TransportContext> {
    let sender = pc.get_senders().next()?;
    let pair = pc.rtp_sender(sender)?.transport()?.ice_transport().get_selected_candidate_pair()?;
    let addr = |c: &RTCIceCandidate| Some(SocketAddr::new(c.address.parse::<IpAddr>().ok()?, c.port));
    let transport_protocol = match pair.local().protocol {
        RTCIceProtocol::Tcp => TransportProtocol::TCP,
        _ => TransportProtocol::UDP,
    };
    Some(TransportContext {
        local_addr: addr(pair.local())?,
        peer_addr: addr(pair.remote())?,
        ecn: None,
        transport_protocol,
    })
}

/// What one downtrack sent, for its sender reports.
#[derive(Default)]
pub(super) struct SentCounts {
    packets: u32,
    octets: u32,
    /// The RTP timestamp of the newest packet sent (retransmissions excluded), and when.
    newest: Option<(u32, Instant)>,
}

impl SentCounts {
    /// One packet sent: `timestamp` is `Some` for a new one, `None` for a retransmission.
    pub(super) fn sent(&mut self, payload: usize, timestamp: Option<u32>, now: Instant) {
        self.packets = self.packets.wrapping_add(1);
        self.octets = self.octets.wrapping_add(payload as u32);
        if let Some(ts) = timestamp {
            self.newest = Some((ts, now));
        }
    }

    /// The report for `ssrc` at `now` (NTP time `ntp`), `None` until a packet was sent. Its RTP time
    /// is the newest packet's advanced by the time since at the codec's `clock_rate`, as a browser's
    /// own sender reports are.
    pub(super) fn report(&self, ssrc: u32, clock_rate: u32, ntp: u64, now: Instant) -> Option<SenderReport> {
        let (timestamp, at) = self.newest?;
        let elapsed = now.saturating_duration_since(at);
        let ticks = (elapsed.as_nanos() * u128::from(clock_rate) / 1_000_000_000) as u32;
        Some(SenderReport {
            ssrc,
            ntp_time: ntp,
            rtp_time: timestamp.wrapping_add(ticks),
            packet_count: self.packets,
            octet_count: self.octets,
            ..Default::default()
        })
    }
}

/// Wall-clock time for sender reports: the driver's reading of both clocks once, at start; the
/// engine then counts on its monotonic `now`, so a wall-clock step never skews reports.
#[derive(Clone, Copy)]
pub(crate) struct WallClock {
    at: Instant,
    unix: Duration,
}

impl WallClock {
    pub(crate) fn new(at: Instant, wall: SystemTime) -> Self {
        WallClock { at, unix: wall.duration_since(UNIX_EPOCH).unwrap_or_default() }
    }

    /// `now` as a 64-bit NTP timestamp (RFC 3550 §4: seconds since 1900, 32.32 fixed point).
    pub(super) fn ntp(&self, now: Instant) -> u64 {
        let t = self.unix + now.saturating_duration_since(self.at);
        let secs = t.as_secs() + NTP_UNIX_OFFSET;
        let frac = (u64::from(t.subsec_nanos()) << 32) / 1_000_000_000;
        (secs << 32) | frac
    }

    /// The round trip a receiver report block tells (RFC 3550 §6.4.1): from our sender report it
    /// names (`lsr`, the middle 32 bits of that report's NTP time) to `now`, less the time the
    /// receiver held it (`dlsr`), both in 1/65536 s. `None` without a report to name, or for a
    /// figure no network gives (clocks do not run backwards; a minute is a lost report's echo).
    pub(super) fn round_trip(&self, now: Instant, lsr: u32, dlsr: u32) -> Option<Duration> {
        if lsr == 0 {
            return None;
        }
        let units = ((self.ntp(now) >> 16) as u32).wrapping_sub(lsr).wrapping_sub(dlsr);
        (units < 60 << 16).then(|| Duration::from_micros(u64::from(units) * 1_000_000 / 65_536))
    }
}

impl Engine {
    /// Every connected subscribe connection reports each downtrack it sent on, and follows ICE's
    /// selected pair.
    pub(super) fn send_reports(&mut self, now: Instant) {
        let ntp = self.wall.ntp(now);
        for p in self.peers.values_mut() {
            let Peer { pc, leg: Leg::Subscribe(leg), .. } = p else { continue };
            let Some(egress) = leg.egress.as_mut() else { continue };
            egress.refresh_path(pc);
            for (key, down) in &leg.downs {
                let Some(kind) = self.tracks.get(key).map(|t| t.info.kind) else { continue };
                let Some(report) = down.counts.report(down.ssrc, peer::clock_rate(kind), ntp, now) else { continue };
                match egress.protect_report(&report) {
                    Ok(d) => Engine::emit(&mut self.out, &mut self.tcp_out, &self.tcp_by_remote, egress.path(), d),
                    Err(e) => debug!(error = %e, ssrc = down.ssrc, "sender report not protected"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_advances_the_newest_timestamp_by_the_time_since() {
        let t0 = Instant::now();
        let mut counts = SentCounts::default();
        assert!(counts.report(7, 90_000, 0, t0).is_none(), "nothing sent, nothing to report");
        counts.sent(1000, Some(4_294_967_000), t0);
        counts.sent(500, None, t0 + Duration::from_millis(5)); // a retransmission: counted, not newest
        let r = counts.report(7, 90_000, 42, t0 + Duration::from_millis(100)).expect("a report");
        assert_eq!((r.ssrc, r.ntp_time, r.packet_count, r.octet_count), (7, 42, 2, 1500));
        assert_eq!(r.rtp_time, 4_294_967_000u32.wrapping_add(9_000), "100 ms at 90 kHz, wrapping");
    }

    #[test]
    fn ntp_time_is_the_wall_clock_counted_on_the_monotonic_one() {
        let t0 = Instant::now();
        let wall = WallClock::new(t0, UNIX_EPOCH + Duration::from_millis(1_500));
        let ntp = wall.ntp(t0 + Duration::from_millis(250));
        assert_eq!(ntp >> 32, NTP_UNIX_OFFSET + 1);
        assert_eq!(ntp & 0xffff_ffff, 3 << 30, "1.75 s after the epoch: .75 s is the fraction");
    }

    #[test]
    fn a_report_block_tells_the_round_trip_less_the_receivers_delay() {
        let t0 = Instant::now();
        let wall = WallClock::new(t0, UNIX_EPOCH + Duration::from_secs(100));
        let ms = Duration::from_millis;
        let lsr = (wall.ntp(t0) >> 16) as u32;
        // Our report left at t0; the receiver held it 250 ms; its report arrived at t0 + 330 ms.
        let rtt = wall.round_trip(t0 + ms(330), lsr, 250 * 65_536 / 1000).unwrap();
        assert!(rtt.abs_diff(ms(80)) < ms(1), "{rtt:?}");
        assert_eq!(wall.round_trip(t0 + ms(330), 0, 0), None, "no sender report received yet");
        assert_eq!(wall.round_trip(t0 + ms(100), lsr, 200 * 65_536 / 1000), None, "held longer than it took");
    }
}
