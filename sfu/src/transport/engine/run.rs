//! The loop: one thread and one UDP socket; waits on commands, readable datagrams and the
//! earliest timer, and flushes after every wake-up.

use super::*;

/// Binds the socket and starts the engine thread.
pub fn spawn(
    config: SfuConfig,
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
                let socket = match MediaSocket::new(socket) {
                    Ok(s) => s,
                    Err(e) => {
                        warn!(error = %e, "media socket unusable");
                        return;
                    }
                };
                Engine::new(socket, config, event_tx).run(cmd_rx).await;
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
}

impl Engine {
    pub(super) async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        loop {
            self.flush(Instant::now());
            let deadline = self.next_deadline();
            let wake = tokio::select! {
                biased;
                c = commands.recv() => Wake::Command(c),
                r = self.socket.readable() => { if let Err(e) = r { warn!(error = %e, "media socket"); } Wake::Readable }
                _ = self.socket.writable(), if !self.out.is_empty() => Wake::Writable,
                _ = tokio::time::sleep_until(deadline.into()) => Wake::Timer,
            };
            match wake {
                Wake::Command(None) => break,
                Wake::Command(Some(c)) => self.command(c),
                Wake::Readable => self.read_datagrams(),
                Wake::Writable => {}
                Wake::Timer => self.timeouts(Instant::now()),
            }
        }
        info!("media engine stopped");
    }

    pub(super) fn next_deadline(&self) -> Instant {
        let mut d = self.next_speaker_tick;
        if let Some((t, _)) = self.timers.first() {
            d = d.min(*t);
        }
        if let Some(t) = self.router.next_timeout() {
            d = d.min(t);
        }
        d
    }

    pub(super) fn read_datagrams(&mut self) {
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
            let recv = std::mem::take(&mut self.recv);
            for (from, data) in recv.iter() {
                self.datagram(from, data, now);
            }
            self.recv = recv;
            // Forward what this batch produced before reading the next one.
            self.flush(now);
        }
    }
}
