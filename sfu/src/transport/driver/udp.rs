//! The production driver: a thread per engine, each with its own UDP socket on the one port, and
//! the real clock. Each waits on commands (hand-offs from the other engines among them), readable
//! datagrams and its engine's next deadline; after every wake-up it flushes the engine, sends what
//! it produced in `sendmmsg` batches and delivers its hand-offs.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::api::{SfuConfig, SfuError, SfuEvent};
use crate::transport::driver::tcp::{TcpEvent, TcpSide};
use crate::transport::engine::{Command, Engine, Shard, WallClock};
use crate::transport::socket::{BATCH, MediaSocket, RecvBatch};
use crate::transport::tcp::ConnId;

/// One media thread's end of the engine channels: where its commands arrive, and (weakly, so the
/// engines stop when the handle's senders are gone) where the other engines' are.
type Channels = (mpsc::UnboundedReceiver<Command>, Arc<[mpsc::WeakUnboundedSender<Command>]>);

/// Each engine's command sender (in engine order), the events of all, the media address.
pub type Spawned = (Vec<mpsc::UnboundedSender<Command>>, mpsc::UnboundedReceiver<SfuEvent>, SocketAddr);

/// Binds the sockets and starts the media threads: `config.media_threads` engines, each with its
/// own socket on the one UDP port (`SO_REUSEPORT` when more than one), the first also with the
/// ICE-TCP listener. Returns each engine's command sender, in engine order.
pub fn spawn(mut config: SfuConfig) -> Result<Spawned, SfuError> {
    let shards = Shard::all(config.media_threads);
    let shared = shards.len() > 1;
    let first = bind_udp(config.udp_bind, shared)?;
    let local_addr = first.local_addr().map_err(|e| SfuError::Transport(e.to_string()))?;
    if local_addr.ip().is_unspecified() && config.announced_ip.is_none() {
        return Err(SfuError::Bind {
            addr: local_addr,
            reason: "a wildcard media address needs an announced IP (NAT 1:1)".into(),
        });
    }
    let mut sockets = vec![first];
    for _ in 1..shards.len() {
        sockets.push(bind_udp(local_addr, true)?);
    }
    let mut tcp_listener = match config.tcp_bind {
        Some(addr) => {
            let l = std::net::TcpListener::bind(addr).map_err(|e| SfuError::Bind { addr, reason: e.to_string() })?;
            l.set_nonblocking(true).map_err(|e| SfuError::Transport(e.to_string()))?;
            let bound = l.local_addr().map_err(|e| SfuError::Transport(e.to_string()))?;
            let announced = config
                .tcp_announced
                .unwrap_or_else(|| SocketAddr::new(config.announced_ip.unwrap_or(bound.ip()), bound.port()));
            if announced.ip().is_unspecified() {
                return Err(SfuError::Bind {
                    addr: bound,
                    reason: "a wildcard ICE-TCP address needs an announced address".into(),
                });
            }
            config.tcp_announced = Some(announced);
            info!(%bound, %announced, "ICE-TCP listening (passive candidates)");
            Some(l)
        }
        None => {
            config.tcp_announced = None;
            None
        }
    };
    let certificate = crate::transport::peer::certificate()?;
    let (event_tx, event_rx) = mpsc::unbounded_channel();
    let (senders, receivers): (Vec<_>, Vec<_>) = shards.iter().map(|_| mpsc::unbounded_channel()).unzip();
    let peers: Arc<[mpsc::WeakUnboundedSender<Command>]> = senders.iter().map(|s| s.downgrade()).collect();
    for ((shard, socket), commands) in shards.into_iter().zip(sockets).zip(receivers) {
        let tcp_listener = tcp_listener.take();
        let (config, event_tx, certificate) = (config.clone(), event_tx.clone(), certificate.clone());
        let channels = (commands, peers.clone());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| SfuError::Transport(e.to_string()))?;
        std::thread::Builder::new()
            .name(format!("sfu-media-{}", shard.index))
            .spawn(move || {
                runtime.block_on(run_engine(socket, tcp_listener, config, event_tx, certificate, shard, channels))
            })
            .map_err(|e| SfuError::Transport(e.to_string()))?;
    }
    info!(%local_addr, threads = senders.len(), "media engine listening (one UDP port for every peer connection)");
    Ok((senders, event_rx, local_addr))
}

/// A UDP socket on `addr`; with `shared`, one of several on that port (`SO_REUSEPORT`: the kernel
/// spreads datagrams over them by their 4-tuple).
fn bind_udp(addr: SocketAddr, shared: bool) -> Result<std::net::UdpSocket, SfuError> {
    let bind_err = |e: std::io::Error| SfuError::Bind { addr, reason: e.to_string() };
    let socket =
        socket2::Socket::new(socket2::Domain::for_address(addr), socket2::Type::DGRAM, None).map_err(bind_err)?;
    if shared {
        socket.set_reuse_port(true).map_err(bind_err)?;
    }
    // Room for bursts while the thread is busy (keyframes of many publishers at once, a thousand
    // viewers' reports): the default (≈ 208 KiB, a few hundred datagrams) drops them in the kernel.
    // Linux caps the request at `net.core.rmem_max` (deploy/README.md says how to raise it).
    if let Err(e) = socket.set_recv_buffer_size(RECV_BUFFER) {
        warn!(error = %e, "media socket: receive buffer left at the system default");
    }
    socket.bind(&addr.into()).map_err(bind_err)?;
    debug!(bytes = socket.recv_buffer_size().unwrap_or(0), "media socket receive buffer");
    Ok(socket.into())
}

/// The receive buffer each media socket asks for.
const RECV_BUFFER: usize = 4 << 20;

async fn run_engine(
    socket: std::net::UdpSocket,
    tcp_listener: Option<std::net::TcpListener>,
    config: SfuConfig,
    event_tx: mpsc::UnboundedSender<SfuEvent>,
    certificate: rtc::peer_connection::certificate::RTCCertificate,
    shard: Shard,
    (commands, peers): Channels,
) {
    let index = shard.index;
    let socket = match MediaSocket::new(socket, config.udp_gso) {
        Ok(s) => {
            info!(engine = index, gso = s.gso(), "media socket ready");
            s
        }
        Err(e) => {
            warn!(engine = index, error = %e, "media socket unusable");
            return;
        }
    };
    let (tcp, tcp_rx) = match tcp_listener.map(tokio::net::TcpListener::from_std).transpose() {
        Ok(l) => l.map(|l| TcpSide::new(l, config.tcp_limits.clone())).unzip(),
        Err(e) => {
            warn!(error = %e, "ICE-TCP listener unusable");
            return;
        }
    };
    let now = Instant::now();
    let wall = WallClock::new(now, std::time::SystemTime::now());
    let engine = Engine::new(socket.local_addr(), config, event_tx, certificate, wall, shard, now);
    let accept_from = Instant::now();
    UdpDriver { socket, engine, recv: RecvBatch::default(), tcp, tcp_rx, accept_from, peers }.run(commands).await;
}

enum Wake {
    Command(Option<Command>),
    Readable,
    Writable,
    Timer,
    Accepted(std::io::Result<(tokio::net::TcpStream, SocketAddr)>),
    Tcp(Option<TcpEvent>),
}

struct UdpDriver {
    socket: MediaSocket,
    engine: Engine,
    recv: RecvBatch,
    tcp: Option<TcpSide>,
    tcp_rx: Option<mpsc::Receiver<TcpEvent>>,
    /// No accepting before this: a failing `accept` (no file descriptors left) fails again at once,
    /// and retrying it in a loop would starve the media.
    accept_from: Instant,
    /// Every engine of the node, by index, for the hand-offs.
    peers: Arc<[mpsc::WeakUnboundedSender<Command>]>,
}

/// Accepts on the ICE-TCP listener, or never when TCP is off.
async fn accept(tcp: &Option<TcpSide>) -> std::io::Result<(tokio::net::TcpStream, SocketAddr)> {
    match tcp {
        Some(t) => t.accept().await,
        None => std::future::pending().await,
    }
}

async fn tcp_event(rx: &mut Option<mpsc::Receiver<TcpEvent>>) -> Option<TcpEvent> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// How long accepting pauses after a failed `accept`.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

impl UdpDriver {
    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        // Busy time: from each wake-up to the next wait (two clock reads per wake-up).
        let mut woke = Instant::now();
        // One timer, moved only when the deadline moves: a new one per wake-up registered with and
        // removed from tokio's timer wheel every time.
        let timer = tokio::time::sleep_until(woke.into());
        tokio::pin!(timer);
        loop {
            self.flush(Instant::now());
            self.engine.add_busy(woke.elapsed());
            let mut deadline = self.engine.next_wake();
            if self.tcp.is_some() && self.accept_from > Instant::now() {
                // Wake to accept again when the pause ends, even if the engine has nothing to do.
                deadline = deadline.min(self.accept_from);
            }
            if timer.deadline() != deadline.into() {
                timer.as_mut().reset(deadline.into());
            }
            let wake = tokio::select! {
                biased;
                c = commands.recv() => Wake::Command(c),
                r = self.socket.readable() => { if let Err(e) = r { warn!(error = %e, "media socket"); } Wake::Readable }
                _ = self.socket.writable(), if self.engine.has_transmits() => Wake::Writable,
                a = accept(&self.tcp), if Instant::now() >= self.accept_from => Wake::Accepted(a),
                e = tcp_event(&mut self.tcp_rx) => Wake::Tcp(e),
                _ = &mut timer => Wake::Timer,
            };
            woke = Instant::now();
            match wake {
                Wake::Command(None | Some(Command::Stop)) => break,
                Wake::Command(Some(c)) => self.engine.command(c, Instant::now()),
                Wake::Readable => self.read_datagrams(),
                // Sends resume at the flush; due timers run below.
                Wake::Writable | Wake::Timer => {}
                Wake::Accepted(Ok((stream, remote))) => {
                    if let Some(id) = self.tcp.as_mut().and_then(|t| t.admit(stream, remote)) {
                        self.engine.tcp_opened(id, remote);
                    }
                }
                Wake::Accepted(Err(e)) => {
                    warn!(error = %e, "ICE-TCP accept failed: pausing accepts for {ACCEPT_PAUSE:?}");
                    self.accept_from = Instant::now() + ACCEPT_PAUSE;
                }
                Wake::Tcp(Some(TcpEvent::Packet(id, frame))) => {
                    if !self.engine.tcp_packet(id, &frame, Instant::now()) {
                        self.close_tcp(id);
                    }
                }
                Wake::Tcp(Some(TcpEvent::Closed(id))) => self.close_tcp(id),
                Wake::Tcp(None) => {}
            }
            // Timers that came due run at any wake-up, not only at their own (see `next_wake`).
            self.engine.timeouts(Instant::now());
        }
        info!("media engine stopped");
        // The socket and the ICE-TCP listener close before the command channel does, so that a
        // caller of `Sfu::stop` (waiting for the channel to close) finds the ports free.
        drop(self);
        drop(commands);
    }

    fn close_tcp(&mut self, id: ConnId) {
        self.engine.tcp_closed(id);
        if let Some(t) = &mut self.tcp {
            t.close(id);
        }
    }

    /// Flushes the engine and sends what the kernel takes now; the rest waits for writability.
    fn flush(&mut self, now: Instant) {
        self.engine.flush(now);
        if self.engine.has_transmits() {
            match self.socket.try_send_batch(self.engine.transmits()) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => debug!(error = %e, "sendmmsg"),
            }
        }
        for (i, h) in self.engine.handoffs() {
            if let Some(engine) = self.peers.get(i).and_then(mpsc::WeakUnboundedSender::upgrade) {
                let _ = engine.send(Command::Handoff(Box::new(h)));
            }
        }
        if let Some(t) = &mut self.tcp {
            t.queue(self.engine.tcp_transmits());
            for id in std::mem::take(self.engine.tcp_to_close()) {
                t.close(id);
            }
        }
    }

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
            for (from, data) in self.recv.iter() {
                self.engine.datagram(from, data, now);
            }
            // Forward what this batch produced before reading the next one.
            self.flush(now);
            if n < BATCH {
                // The queue was empty: the socket's next datagram wakes us.
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A media socket asks for a receive buffer of 4 MiB; Linux grants up to `net.core.rmem_max`
    /// (and reports twice what it keeps for its own bookkeeping).
    #[test]
    fn a_media_socket_gets_the_receive_buffer_the_system_allows() {
        let socket = bind_udp("127.0.0.1:0".parse().unwrap(), false).unwrap();
        let granted = socket2::SockRef::from(&socket).recv_buffer_size().unwrap();
        let cap = std::fs::read_to_string("/proc/sys/net/core/rmem_max").ok().and_then(|s| s.trim().parse().ok());
        let expected = cap.map_or(RECV_BUFFER, |cap: usize| cap.min(RECV_BUFFER));
        assert!(granted >= expected, "granted {granted} bytes, expected at least {expected}");
    }
}
