//! Downtracks: the router's decisions queued per subscriber, drained into its connection as the
//! pacer allows, with the payload type and header extensions of the subscriber's leg.

use super::*;

/// Packets one subscriber's queue gives up in one drain: a long queue (a keyframe burst after a
/// pause) does not hold up every other subscriber of the flush.
const MAX_PER_DRAIN: usize = 128;

impl Engine {
    /// Queues the router's decisions for one packet of one track: the packet once, shared, with
    /// each downtrack's numbering.
    pub(super) fn dispatch(&mut self, packet: &Rc<rtp::Packet>, forwards: &[Forward], now: Instant) {
        let Some(first) = forwards.first() else { return };
        let (origin_ssrc, origin_seq) = (packet.header.ssrc, packet.header.sequence_number);
        // One copy for every subscriber's NACKs (video only: audio negotiates no NACK).
        if let Some(track) = self.tracks.get_mut(&first.down.track)
            && track.info.kind == MediaKind::Video
        {
            track.history.get_or_insert_with(History::default).push(origin_ssrc, origin_seq, packet.clone(), now);
        }
        for f in forwards {
            let Some(sub_peer) = self.parts.get(&f.down.subscriber.0).and_then(|p| p.subscribe) else {
                let mut p = rtp::Packet::clone(packet);
                p.header.ssrc = f.ssrc;
                p.header.sequence_number = f.seq;
                p.header.timestamp = f.timestamp;
                self.sink_packet(f, p, now);
                continue;
            };
            let Some(Peer { leg: Leg::Subscribe(leg), .. }) = self.peers.get_mut(&sub_peer) else { continue };
            let queued = Queued {
                track: f.down.track,
                ssrc: f.ssrc,
                seq: f.seq,
                timestamp: f.timestamp,
                packet: packet.clone(),
            };
            if let Some(evicted) = leg.queue.push(queued) {
                self.dropped += 1;
                self.router.overflowed(DownTrackKey { subscriber: f.down.subscriber, track: evicted.track }, now);
            }
            self.mark_queued(sub_peer);
        }
    }

    /// Moves queued packets into each subscriber connection, as fast as its pacer allows and at
    /// most [`MAX_PER_DRAIN`] at a time; what is left is drained when it may go
    /// (`Engine::paced`), even if nothing else wakes the engine.
    pub(super) fn drain_queues(&mut self, ids: &[PeerId], now: Instant) {
        for &id in ids {
            let Some(Peer { pc, leg: Leg::Subscribe(leg), .. }) = self.peers.get_mut(&id) else { continue };
            let forwarded = self.forwarded;
            let mut way = Way {
                egress: leg.egress.as_deref_mut(),
                pc,
                out: &mut self.out,
                tcp_out: &mut self.tcp_out,
                tcp_by_remote: &self.tcp_by_remote,
            };
            let mut held = None;
            let mut taken = 0;
            while let Some(head) = leg.queue.front() {
                if taken == MAX_PER_DRAIN {
                    // The rest after the others' turn (and any input waiting), at the next wake-up.
                    held = Some(now);
                    break;
                }
                let bytes = head.packet.payload.len() + 40;
                if !leg.pacer.try_consume(bytes, now) {
                    held = leg.pacer.ready_at(bytes, now);
                    break;
                }
                taken += 1;
                let Some(Queued { track: key, ssrc, seq, timestamp, packet: original }) = leg.queue.pop() else {
                    break;
                };
                let (Some(down), Some(track)) = (leg.downs.get_mut(&key), self.tracks.get(&key)) else { continue };
                let Some(pt) = down.pt else { continue };
                if track.info.kind == MediaKind::Video {
                    let remember = track.history.as_ref().map_or(0, History::capacity);
                    let sent = Sent {
                        out_seq: seq,
                        origin_ssrc: original.header.ssrc,
                        origin_seq: original.header.sequence_number,
                        timestamp,
                    };
                    down.sent.get_or_insert_with(SentLog::default).record(sent, remember);
                }
                let mut packet =
                    rtp::Packet { header: std::mem::take(&mut self.header), payload: original.payload.clone() };
                copy_header(&mut packet.header, &original.header);
                packet.header.ssrc = ssrc;
                packet.header.sequence_number = seq;
                packet.header.timestamp = timestamp;
                packet.header.payload_type = pt;
                remap_extensions(&mut packet, down, track);
                let bytes = packet.payload.len();
                let sent = way.send(&packet, now);
                self.header = packet.header;
                match sent {
                    Ok(()) => {
                        down.counts.sent(bytes, Some(timestamp), now);
                        self.forwarded += 1;
                        self.forwarded_bytes += bytes as u64;
                    }
                    Err(e) => debug!(error = %e, "forwarded RTP refused"),
                }
            }
            if self.forwarded != forwarded
                && let Some(since) = leg.awaiting_media.take()
            {
                metrics::histogram!("sportello_sfu_join_to_first_media_seconds").record(now.duration_since(since));
            }
            // Held back: drained again when the head fits, not at whatever wakes this peer next.
            flush::reschedule(&mut self.paced, id, &mut leg.paced_until, held);
        }
    }
}

/// Where a subscribe connection's RTP goes: protected by the engine and queued for the socket once
/// it has its own [`egress`](super::egress), else written into `rtc`'s pipeline.
pub(super) struct Way<'a> {
    pub(super) egress: Option<&'a mut egress::Egress>,
    pub(super) pc: &'a mut RTCPeerConnection,
    pub(super) out: &'a mut SendBatch,
    pub(super) tcp_out: &'a mut Vec<(ConnId, BytesMut)>,
    pub(super) tcp_by_remote: &'a HashMap<SocketAddr, ConnId>,
}

impl Way<'_> {
    pub(super) fn send(&mut self, packet: &rtp::Packet, now: Instant) -> Result<(), rtc::shared::error::Error> {
        match self.egress.as_deref_mut() {
            Some(egress) => {
                let datagram = egress.protect(packet)?;
                Engine::emit(self.out, self.tcp_out, self.tcp_by_remote, egress.path(), datagram);
                Ok(())
            }
            // Straight into the connection: `write_rtp` would rebuild the sender's parameters for
            // every packet to check what `negotiated` and `remap_extensions` already guarantee
            // (payload type, header-extension ids, SSRC). `rtc` ignores the track id here.
            None => {
                let message = RTCMessage::RtpPacket(String::new(), packet.clone());
                self.pc.handle_write(TaggedRTCMessage { now, message })
            }
        }
    }
}

impl SubscribeLeg {
    pub(super) fn new(
        sub: SubscriberKey,
        downs: HashMap<TrackKey, Down>,
        by_sender_track: HashMap<String, TrackKey>,
        queue: usize,
        now: Instant,
    ) -> Self {
        SubscribeLeg {
            sub,
            downs,
            by_sender_track,
            offer_outstanding: false,
            renegotiate_after_answer: false,
            connected: false,
            paced_until: None,
            queue: LossyQueue::with_capacity(queue),
            pacer: Pacer::new(None, 256 * 1024),
            awaiting_media: Some(now),
            egress: None,
            round_trip: None,
        }
    }
}

impl Down {
    /// A downtrack sending on `ssrc`, not yet negotiated.
    pub(super) fn new(sender: RTCRtpSenderId, ssrc: u32) -> Self {
        Down {
            sender,
            ssrc,
            pt: None,
            routed: false,
            mid: None,
            mid_ext: None,
            extensions: Vec::new(),
            ext_map: None,
            sent: None,
            counts: egress::SentCounts::default(),
        }
    }

    /// The track a downtrack adds to its subscribe connection: our codec of `kind`, sent on `ssrc`,
    /// as stream `stream` (the publishing participant, or the program).
    pub(super) fn media_track(stream: String, id: String, kind: MediaKind, ssrc: u32) -> MediaStreamTrack {
        let (kind, codec) = match kind {
            MediaKind::Audio => (RtpCodecKind::Audio, peer::opus_codec()),
            MediaKind::Video => (RtpCodecKind::Video, peer::vp8_codec()),
        };
        MediaStreamTrack::new(
            stream,
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

    /// Reads what the completed negotiation gave this downtrack: payload type, header-extension
    /// ids, the MID extension (`None` if the peer refused the codec: nothing is routed then).
    pub(super) fn negotiated(&mut self, pc: &mut RTCPeerConnection, kind: MediaKind) {
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

/// Makes `to` a copy of `from`, reusing the room of its lists (a derived `clone_from` allocates
/// them anew). Every field is named, so a field added upstream fails to compile here.
fn copy_header(to: &mut rtp::header::Header, from: &rtp::header::Header) {
    let rtp::header::Header {
        version,
        padding,
        extension,
        marker,
        payload_type,
        sequence_number,
        timestamp,
        ssrc,
        csrc,
        extension_profile,
        extensions,
        extensions_padding,
    } = from;
    to.version = *version;
    to.padding = *padding;
    to.extension = *extension;
    to.marker = *marker;
    to.payload_type = *payload_type;
    to.sequence_number = *sequence_number;
    to.timestamp = *timestamp;
    to.ssrc = *ssrc;
    to.csrc.clone_from(csrc);
    to.extension_profile = *extension_profile;
    to.extensions.clone_from(extensions);
    to.extensions_padding = *extensions_padding;
}

/// Rewrites the header extensions of a forwarded packet for the subscriber's leg: ids are remapped
/// by URI, extensions the subscriber did not negotiate are dropped (`write_rtp` refuses unknown ids),
/// and the MID is replaced by the subscriber's own m-line — the publisher's MID names an m-line of
/// another connection, and a browser demultiplexes by MID before SSRC.
pub(super) fn remap_extensions(packet: &mut rtp::Packet, down: &mut Down, track: &Track) {
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
