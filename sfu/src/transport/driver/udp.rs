//! The production driver: one thread, one UDP socket, the real clock. It waits on commands, readable
//! datagrams and the engine's next deadline, and after every wake-up flushes the engine and sends
//! what it produced in `sendmmsg` batches.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::api::{SfuConfig, SfuError, SfuEvent};
use crate::transport::driver::tcp::{TcpEvent, TcpSide};
use crate::transport::engine::{Command, Engine, WallClock};
use crate::transport::socket::{MediaSocket, RecvBatch};
use crate::transport::tcp::ConnId;

/// Binds the socket and starts the engine thread.
pub fn spawn(
    mut config: SfuConfig,
) -> Result<(mpsc::UnboundedSender<Command>, mpsc::UnboundedReceiver<SfuEvent>, SocketAddr), SfuError> {
    let socket = std::net::UdpSocket::bind(config.udp_bind)
        .map_err(|e| SfuError::Bind { addr: config.udp_bind, reason: e.to_string() })?;
    let local_addr = socket.local_addr().map_err(|e| SfuError::Transport(e.to_string()))?;
    if local_addr.ip().is_unspecified() && config.announced_ip.is_none() {
        return Err(SfuError::Bind {
            addr: local_addr,
            reason: "a wildcard media address needs an announced IP (NAT 1:1)".into(),
        });
    }
    let tcp_listener = match config.tcp_bind {
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
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let (event_tx, event_rx) = mpsc::unbounded_channel();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| SfuError::Transport(e.to_string()))?;
    std::thread::Builder::new()
        .name("sfu-media".into())
        .spawn(move || {
            runtime.block_on(async move {
                let socket = match MediaSocket::new(socket, config.udp_gso) {
                    Ok(s) => {
                        info!(gso = s.gso(), "media socket ready");
                        s
                    }
                    Err(e) => {
                        warn!(error = %e, "media socket unusable");
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
                let engine = Engine::new(socket.local_addr(), config, event_tx, certificate, wall, now);
                let accept_from = Instant::now();
                UdpDriver { socket, engine, recv: RecvBatch::default(), tcp, tcp_rx, accept_from }.run(cmd_rx).await;
            })
        })
        .map_err(|e| SfuError::Transport(e.to_string()))?;
    info!(%local_addr, "media engine listening (one UDP port for every peer connection)");
    Ok((cmd_tx, event_rx, local_addr))
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
        loop {
            self.flush(Instant::now());
            self.engine.add_busy(woke.elapsed());
            let mut deadline = self.engine.next_deadline();
            if self.tcp.is_some() && self.accept_from > Instant::now() {
                // Wake to accept again when the pause ends, even if the engine has nothing to do.
                deadline = deadline.min(self.accept_from);
            }
            let wake = tokio::select! {
                biased;
                c = commands.recv() => Wake::Command(c),
                r = self.socket.readable() => { if let Err(e) = r { warn!(error = %e, "media socket"); } Wake::Readable }
                _ = self.socket.writable(), if self.engine.has_transmits() => Wake::Writable,
                a = accept(&self.tcp), if Instant::now() >= self.accept_from => Wake::Accepted(a),
                e = tcp_event(&mut self.tcp_rx) => Wake::Tcp(e),
                _ = tokio::time::sleep_until(deadline.into()) => Wake::Timer,
            };
            woke = Instant::now();
            match wake {
                Wake::Command(None | Some(Command::Stop)) => break,
                Wake::Command(Some(c)) => self.engine.command(c, Instant::now()),
                Wake::Readable => self.read_datagrams(),
                Wake::Writable => {}
                Wake::Timer => self.engine.timeouts(Instant::now()),
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
        if let Some(t) = &mut self.tcp {
            t.queue(self.engine.tcp_transmits());
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
        }
    }
}
