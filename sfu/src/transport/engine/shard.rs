//! Several engines, one per media thread, behind the one UDP port.
//!
//! Each engine has its own `SO_REUSEPORT` socket on that port; the kernel picks the socket by the
//! datagram's 4-tuple, not by the peer connection it belongs to, so an engine may read a datagram
//! of another engine's peer. Those are handed over ([`Handoff`]), and the owner answers from its
//! own socket (same port: the browser sees one address):
//! - a STUN request names its connection by ufrag, and every ufrag starts with its engine's tag;
//! - anything else is owned by the engine that learned its remote address, recorded in [`Owners`]
//!   shared by all (read only on a local miss).
//!
//! ICE-TCP connections are all accepted by engine 0; a connection whose first STUN request names
//! another engine's ufrag is relayed: its frames go to the owner, the owner's output comes back.
//!
//! A program lives on one engine (its *home*, with the rooms that feed it). Its WHEP viewers are
//! spread over all engines: an engine with viewers keeps a *mirror* of the program (the same
//! outputs, no sources), the home sends it every packet its outputs accept (one copy per engine,
//! not per viewer), and the mirror's keyframe requests go back to the home.
//!
//! The engine stays sans-IO: hand-offs are collected per engine in an outbox that the driver
//! delivers after each flush, as one message per engine.

use std::sync::RwLock;

use super::*;

/// Engine tags, the first character of every ufrag: the most engines a node runs.
const TAGS: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz012345";
pub(crate) const MAX_ENGINES: usize = TAGS.len();

/// Which engine learned which UDP remote address (only with more than one engine).
#[derive(Default)]
pub(crate) struct Owners {
    udp: RwLock<HashMap<SocketAddr, usize>>,
}

/// This engine's place among its node's engines.
#[derive(Clone)]
pub(crate) struct Shard {
    pub(crate) index: usize,
    pub(crate) count: usize,
    owners: Arc<Owners>,
}

impl Shard {
    /// The only engine of its node.
    #[cfg(test)]
    pub(crate) fn single() -> Self {
        Shard { index: 0, count: 1, owners: Arc::default() }
    }

    /// The `count` engines of one node, sharing one address table.
    pub(crate) fn all(count: usize) -> Vec<Shard> {
        let count = count.clamp(1, MAX_ENGINES);
        let owners = Arc::new(Owners::default());
        (0..count).map(|index| Shard { index, count, owners: owners.clone() }).collect()
    }

    /// A new ufrag for this engine's connections: its tag, then random characters.
    pub(crate) fn ufrag(&self) -> String {
        let mut u = String::with_capacity(16);
        u.push(char::from(TAGS[self.index]));
        u.push_str(&peer::random_token(15));
        u
    }

    /// The engine a ufrag names, if another than this one.
    pub(super) fn ufrag_owner(&self, ufrag: &str) -> Option<usize> {
        let first = *ufrag.as_bytes().first()?;
        let i = TAGS.iter().position(|&t| t == first)?;
        (i < self.count && i != self.index).then_some(i)
    }

    fn addr_owner(&self, addr: SocketAddr) -> Option<usize> {
        if self.count == 1 {
            return None;
        }
        let owners = self.owners.udp.read().ok()?;
        owners.get(&addr).copied().filter(|&i| i != self.index)
    }

    pub(super) fn learned(&self, via: Transport) {
        if let (Transport::Udp(addr), true) = (via, self.count > 1)
            && let Ok(mut owners) = self.owners.udp.write()
        {
            owners.insert(addr, self.index);
        }
    }

    pub(super) fn forgot(&self, via: Transport) {
        if let (Transport::Udp(addr), true) = (via, self.count > 1)
            && let Ok(mut owners) = self.owners.udp.write()
            && owners.get(&addr) == Some(&self.index)
        {
            owners.remove(&addr);
        }
    }
}

/// What one engine passes to another after a flush.
#[derive(Default)]
pub struct Handoff {
    /// UDP datagrams this engine's socket read for the other's peers.
    datagrams: Vec<(SocketAddr, BytesMut)>,
    /// ICE-TCP frames of connections engine 0 accepted for the other's peers (with the remote
    /// address), and those connections' end.
    tcp_in: Vec<(ConnId, SocketAddr, BytesMut)>,
    tcp_closed: Vec<ConnId>,
    /// To engine 0: what to write on those connections, and which to close.
    tcp_out: Vec<(ConnId, BytesMut)>,
    tcp_close: Vec<ConnId>,
    /// To a program's home: this engine holds a mirror of it now.
    mirror_wanted: Vec<(RoomId, usize)>,
    /// From a program's home: packets its outputs accepted.
    mirror: Vec<MirrorPacket>,
    /// To a program's home: a mirror's viewers need a keyframe on this output.
    keyframes: Vec<(RoomId, usize)>,
}

impl Handoff {
    fn is_empty(&self) -> bool {
        self.datagrams.is_empty()
            && self.tcp_in.is_empty()
            && self.tcp_closed.is_empty()
            && self.tcp_out.is_empty()
            && self.tcp_close.is_empty()
            && self.mirror_wanted.is_empty()
            && self.mirror.is_empty()
            && self.keyframes.is_empty()
    }
}

pub(crate) struct MirrorPacket {
    program: RoomId,
    copy: MirrorCopy,
    packet: rtp::Packet,
    meta: RtpMeta,
}

/// What a mirror learns with one packet of a program output besides the packet.
pub(super) struct MirrorCopy {
    pub(super) output: usize,
    /// The output switched source at this packet (a new SSRC is no straggler).
    pub(super) switched: bool,
    /// The header extensions of the output's source, when the mirror does not know them yet.
    pub(super) extensions: Option<Vec<(u8, String)>>,
}

/// The engines of the node a mirror is opened for: where its home is, how many audio slots.
#[derive(Debug, Clone, Copy)]
pub struct MirrorOf {
    pub home: usize,
    pub audio_slots: usize,
}

impl Engine {
    fn outbox(&mut self, engine: usize) -> &mut Handoff {
        if self.outbox.len() < self.shard.count {
            self.outbox.resize_with(self.shard.count, Handoff::default);
        }
        &mut self.outbox[engine]
    }

    /// What this engine hands to others, by engine, for the driver to deliver.
    pub(crate) fn handoffs(&mut self) -> impl Iterator<Item = (usize, Handoff)> + '_ {
        self.outbox.iter_mut().enumerate().filter(|(_, h)| !h.is_empty()).map(|(i, h)| (i, std::mem::take(h)))
    }

    /// ICE-TCP connections another engine asked engine 0 to close (for its driver).
    pub(crate) fn tcp_to_close(&mut self) -> &mut Vec<ConnId> {
        &mut self.tcp_closing
    }

    /// A packet no peer connection of this engine claims: handed to the engine that owns it — the
    /// one its STUN ufrag `named`, else the one that learned its address — if any (true); never
    /// back and forth: what was handed to us is ours or nobody's.
    pub(super) fn hand_off(
        &mut self,
        via: Transport,
        from: SocketAddr,
        data: BytesMut,
        named: Option<usize>,
        handed: bool,
    ) -> bool {
        if handed || self.shard.count == 1 {
            return false;
        }
        match via {
            Transport::Udp(addr) => {
                let Some(owner) = named.or_else(|| self.shard.addr_owner(addr)) else { return false };
                self.outbox(owner).datagrams.push((from, data));
                true
            }
            Transport::Tcp(conn) => {
                // Claimed for good by the first STUN request that names another engine.
                let Some(owner) = named.or_else(|| self.tcp_foreign.get(&conn).copied()) else { return false };
                self.tcp_foreign.insert(conn, owner);
                self.outbox(owner).tcp_in.push((conn, from, data));
                true
            }
        }
    }

    /// An ICE-TCP connection relayed to another engine, if `conn` is one.
    pub(super) fn tcp_relayed(&mut self, conn: ConnId, data: &[u8]) -> bool {
        let Some(&owner) = self.tcp_foreign.get(&conn) else { return false };
        let remote = self.tcp_conns.get(&conn).copied();
        if let Some(remote) = remote {
            self.outbox(owner).tcp_in.push((conn, remote, BytesMut::from(data)));
        }
        true
    }

    /// A relayed ICE-TCP connection closed: its owner forgets it too.
    pub(super) fn tcp_relay_closed(&mut self, conn: ConnId) {
        if let Some(owner) = self.tcp_foreign.remove(&conn) {
            self.outbox(owner).tcp_closed.push(conn);
        }
    }

    /// End of a flush on an engine without the ICE-TCP listener: its TCP output goes to engine 0.
    pub(super) fn relay_tcp_out(&mut self) {
        if self.shard.index != 0 && !self.tcp_out.is_empty() {
            let out = std::mem::take(&mut self.tcp_out);
            self.outbox(0).tcp_out.extend(out);
        }
    }

    /// What another engine handed over; what it causes goes out with the next flush.
    pub(crate) fn handoff(&mut self, h: Handoff, now: Instant) {
        for (program, engine) in h.mirror_wanted {
            self.mirror_wanted(program, engine, now);
        }
        for (from, data) in h.datagrams {
            let data = Received::Owned(data);
            self.receive(Transport::Udp(from), from, self.announced, TransportProtocol::UDP, data, now, true);
        }
        for (conn, remote, data) in h.tcp_in {
            if self.tcp_conns.get(&conn) != Some(&remote) {
                self.tcp_opened(conn, remote);
            }
            let (local, data) = (self.tcp_announced.unwrap_or(self.announced), Received::Owned(data));
            if !self.receive(Transport::Tcp(conn), remote, local, TransportProtocol::TCP, data, now, true) {
                self.tcp_closed(conn);
                self.outbox(0).tcp_close.push(conn);
            }
        }
        for conn in h.tcp_closed {
            self.tcp_closed(conn);
        }
        self.tcp_out.extend(h.tcp_out);
        for conn in h.tcp_close {
            self.tcp_closed(conn);
            self.tcp_closing.push(conn);
        }
        for m in h.mirror {
            self.mirror_packet(m, now);
        }
        for (program, output) in h.keyframes {
            let track = self.programs.get(&program).and_then(|p| p.output_track(output));
            if let Some(track) = track {
                self.program_keyframe_request(track, now);
            }
        }
    }

    /// Hands a packet a program output accepted to an engine that mirrors the program.
    pub(super) fn copy_to_mirror(
        &mut self,
        engine: usize,
        program: &RoomId,
        copy: MirrorCopy,
        packet: &rtp::Packet,
        meta: &RtpMeta,
    ) {
        let m = MirrorPacket { program: program.clone(), copy, packet: packet.clone(), meta: *meta };
        self.outbox(engine).mirror.push(m);
    }

    /// Asks the program's home for a keyframe on one output of a mirror.
    pub(super) fn mirror_keyframe_request(&mut self, home: usize, program: RoomId, output: usize) {
        self.outbox(home).keyframes.push((program, output));
    }

    /// Opens a mirror of `program` (if this engine has none yet) and tells its home — again at
    /// every viewer, so a mirror left from a closed program of the same name (a viewer joining
    /// while it closed) is fed by the program opened since.
    pub(super) fn open_mirror(&mut self, program: &RoomId, of: MirrorOf, now: Instant) -> Result<(), SfuError> {
        if of.home >= self.shard.count || of.home == self.shard.index {
            return Err(SfuError::Transport(format!("no media thread {} to mirror {program} from", of.home)));
        }
        match self.programs.get(program) {
            Some(p) if !p.is_mirror() => return Ok(()), // the program itself lives here
            Some(_) => {}
            None => self.open_program(program.clone(), of.audio_slots, Some(of.home), now)?,
        }
        let me = self.shard.index;
        self.outbox(of.home).mirror_wanted.push((program.clone(), me));
        Ok(())
    }

    fn mirror_packet(&mut self, m: MirrorPacket, now: Instant) {
        let Some(track) = self.programs.get(&m.program).and_then(|p| p.output_track(m.copy.output)) else { return };
        if m.copy.switched {
            self.router.clear_stragglers(track);
        }
        if let Some(extensions) = m.copy.extensions
            && let Some(t) = self.tracks.get_mut(&track)
        {
            t.extensions = extensions;
            t.feed_gen += 1;
        }
        let mut forwards = std::mem::take(&mut self.forwards);
        forwards.clear();
        self.router.route(track, &m.meta, now, &mut forwards);
        self.dispatch(&Rc::new(m.packet), &forwards, now);
        self.forwards = forwards;
    }
}

#[cfg(test)]
impl Engine {
    /// The header extensions a program output currently forwards with (for tests).
    pub(crate) fn program_output_extensions(&self, program: &RoomId, output: usize) -> Option<Vec<(u8, String)>> {
        let track = self.programs.get(program)?.output_track(output)?;
        Some(self.tracks.get(&track)?.extensions.clone())
    }
}
