//! A throwaway NATS server for tests (cargo feature `testing`): Debian's `nats-server` on a free
//! port of 127.0.0.1 (so it works inside a loopback-only namespace), never a running service;
//! killed by its PID on drop.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct TempNats {
    port: u16,
    child: Option<Child>,
}

impl TempNats {
    /// Starts the server and waits until it accepts connections. Blocking (at most a few seconds).
    pub fn start() -> std::io::Result<TempNats> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut nats = TempNats { port, child: None };
        nats.restart()?;
        Ok(nats)
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server (as a crash would).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port (after [`TempNats::stop`]).
    pub fn restart(&mut self) -> std::io::Result<()> {
        self.stop();
        let child = Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| std::io::Error::new(e.kind(), format!("nats-server (apt-get install nats-server): {e}")))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if Instant::now() > deadline {
                return Err(std::io::Error::other("nats-server did not start within 10 s"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }
}

impl Drop for TempNats {
    fn drop(&mut self) {
        self.stop();
    }
}
