//! Shared harness for Sportello's integration tests.
//!
//! - [`server`]: start a real Sportello server in-process on loopback, mint tokens, talk websocket.
//! - [`netns`]: re-execute the test binary inside a loopback-only network namespace.
//! - [`load`]: the load tool behind `sportello-load` (many synthetic clients, Sportello vs Janus).
//! - [`browser`]: real headless Chromium (through chromedriver) with fake camera, microphone and screen.
//! - [`aiortc`]: the relay-only aiortc publisher (an independent WebRTC stack through TURN).
//! - [`coturn`]: a real coturn started and stopped by the test.
//! - [`tls`]: certificates for the tests (self-signed, or from a test CA).
//! - [`nginx`]: nginx running the one-port front of `deploy/nginx-443.conf` or the HTTPS front of
//!   `deploy/nginx-https.conf`, with test addresses.
//! - [`caddy`]: Caddy running `deploy/Caddyfile`, with test addresses and a certificate from files.
//! - [`process`]: the real `sportello` binary as a child process a test can `kill -9` and restart.
//! - [`cluster`]: several `sportello` nodes on one PostgreSQL and NATS, and a participant joining through one.
//! - [`council`]: a council session created over REST by its chair, and the council websocket helpers.
//! - [`axe`]: axe-core's WCAG 2.1 AA rules inside a page (serious and critical violations fail).
//! - [`prism`]: Prism as a validating proxy of IO's services API (App IO tests).
//! - [`oidc`]: a real OpenID provider (oidc-provider under Node) with the test's clients and accounts.

pub mod aiortc;
pub mod axe;
pub mod browser;
pub mod caddy;
pub mod http_stub;
pub mod cluster;
pub mod coturn;
pub mod council;
pub mod load;
pub mod netns;
pub mod nginx;
pub mod oidc;
pub mod prism;
pub mod process;
pub mod rtc_client;
pub mod server;
pub mod tls;

/// SHA-256 of `bytes`, lower-case hex (to compare downloads with what was shared).
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Why a server a test started (nginx, Caddy, coturn) is not listening.
#[derive(Debug)]
pub enum NotListening {
    Exited(std::process::ExitStatus),
    Port(u16),
}

impl std::fmt::Display for NotListening {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotListening::Exited(status) => write!(f, "exited ({status})"),
            NotListening::Port(port) => write!(f, "did not open port {port}"),
        }
    }
}

/// Waits until `child` accepts TCP on each of `ports` at 127.0.0.1, for `within` at the most.
pub async fn wait_for_ports(
    child: &mut tokio::process::Child,
    ports: &[u16],
    within: std::time::Duration,
) -> Result<(), NotListening> {
    let end = std::time::Instant::now() + within;
    for &port in ports {
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(NotListening::Exited(status));
            }
            if std::time::Instant::now() > end {
                return Err(NotListening::Port(port));
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
    Ok(())
}

/// Stops a server a test started: SIGTERM (nginx's master stops its workers, which a SIGKILL to it
/// alone would leave behind; Caddy closes its listeners), up to 3 s to exit, then SIGKILL.
pub fn terminate(child: &mut tokio::process::Child) {
    if let Some(pid) = child.id() {
        // SAFETY: kill(2) of our own child's pid, which it still holds (not yet reaped).
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
        let end = std::time::Instant::now() + std::time::Duration::from_secs(3);
        while std::time::Instant::now() < end {
            if !matches!(child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
    let _ = child.start_kill();
}
