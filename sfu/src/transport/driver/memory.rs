//! The in-memory driver: the engine with a simulated clock and no socket. A test hands it datagrams,
//! takes what it sends, and moves time forward itself, so an ICE/DTLS handshake or seconds of media
//! run in milliseconds, the same way every time.

use std::net::SocketAddr;
use std::time::Instant;

use bytes::BytesMut;
use tokio::sync::{mpsc, oneshot};

use crate::api::{SfuConfig, SfuError, SfuEvent};
use crate::transport::engine::{Command, Engine, Handoff, Shard, WallClock};
use crate::transport::tcp::ConnId;

pub struct MemoryDriver {
    engine: Engine,
    /// The engine's address: where the test's peers send.
    pub addr: SocketAddr,
    /// Simulated time; moves only in [`MemoryDriver::advance_to`].
    pub now: Instant,
    pub events: mpsc::UnboundedReceiver<SfuEvent>,
}

impl MemoryDriver {
    pub fn new(addr: SocketAddr, config: SfuConfig, now: Instant) -> Result<Self, SfuError> {
        Self::with_shard(addr, config, Shard::single(), now)
    }

    /// The `count` engines of one node, as a multi-threaded node runs them: one address, one
    /// address table; a test moves their [`MemoryDriver::handoffs`] between them.
    pub fn sharded(addr: SocketAddr, config: SfuConfig, count: usize, now: Instant) -> Result<Vec<Self>, SfuError> {
        Shard::all(count).into_iter().map(|shard| Self::with_shard(addr, config.clone(), shard, now)).collect()
    }

    fn with_shard(addr: SocketAddr, config: SfuConfig, shard: Shard, now: Instant) -> Result<Self, SfuError> {
        let (event_tx, events) = mpsc::unbounded_channel();
        let certificate = crate::transport::peer::certificate()?;
        // Simulated time starts at the Unix epoch's first second on the wall, the same every run.
        let wall = WallClock::new(now, std::time::UNIX_EPOCH + std::time::Duration::from_secs(1));
        let engine = Engine::new(addr, config, event_tx, certificate, wall, shard, now);
        Ok(MemoryDriver { engine, addr, now, events })
    }

    /// What this engine hands to the others since the last call, by engine.
    pub fn handoffs(&mut self) -> Vec<(usize, Handoff)> {
        self.engine.handoffs().collect()
    }

    /// The header extensions a program output currently forwards with.
    pub fn program_extensions(&self, program: &crate::api::RoomId, output: usize) -> Option<Vec<(u8, String)>> {
        self.engine.program_output_extensions(program, output)
    }

    /// What another engine handed to this one arrives now.
    pub fn handoff(&mut self, h: Handoff) {
        self.engine.handoff(h, self.now);
    }

    /// Runs one command as the handle would and returns the engine's reply.
    pub fn call<T>(
        &mut self,
        make: impl FnOnce(oneshot::Sender<Result<T, SfuError>>) -> Command,
    ) -> Result<T, SfuError> {
        let (tx, mut rx) = oneshot::channel();
        self.engine.command(make(tx), self.now);
        // Every command but RecordStop's second stage replies before `command` returns.
        rx.try_recv().unwrap_or(Err(SfuError::Stopped))
    }

    /// A datagram from `from` arrives now.
    pub fn receive(&mut self, from: SocketAddr, data: &[u8]) {
        self.engine.datagram(from, data, self.now);
    }

    /// Flushes the engine and returns every datagram it sends now, with its destination.
    pub fn transmit(&mut self) -> Vec<(SocketAddr, BytesMut)> {
        self.engine.flush(self.now);
        let out = self.engine.transmits();
        std::iter::from_fn(|| out.pop()).collect()
    }

    /// An ICE-TCP connection from `remote` was accepted.
    pub fn tcp_open(&mut self, conn: ConnId, remote: SocketAddr) {
        self.engine.tcp_opened(conn, remote);
    }

    /// A de-framed packet arrives now on `conn`; false means the driver would close it.
    pub fn tcp_receive(&mut self, conn: ConnId, data: &[u8]) -> bool {
        self.engine.tcp_packet(conn, data, self.now)
    }

    /// What the last [`MemoryDriver::transmit`] flushed for ICE-TCP connections.
    pub fn tcp_transmit(&mut self) -> Vec<(ConnId, BytesMut)> {
        std::mem::take(self.engine.tcp_transmits())
    }

    pub fn next_deadline(&self) -> Instant {
        self.engine.next_deadline()
    }

    /// Moves the clock to `t` (never backwards) and runs the engine's timers that are due.
    pub fn advance_to(&mut self, t: Instant) {
        self.now = self.now.max(t);
        if self.engine.next_deadline() <= self.now {
            self.engine.timeouts(self.now);
        }
    }
}
