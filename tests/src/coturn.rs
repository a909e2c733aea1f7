//! A real coturn (`turnserver`, Debian `coturn`) for a test: started with its own configuration,
//! pid file, log and ports inside the test's namespace, and stopped by its PID (never the system's
//! service). The policy is `deploy/coturn.conf`'s — time-limited REST credentials, relaying to the
//! SFU's address only — on loopback.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

/// How a test's coturn listens.
#[derive(Debug, Clone)]
pub struct CoturnConfig {
    /// The shared secret of `use-auth-secret` (the server's `turn_secret`).
    pub secret: String,
    /// TURN over UDP and plain TCP. coturn also opens `port + 1` as its "alt" port.
    pub port: u16,
    /// TURN over TLS on this port, with this certificate and key (PEM files).
    pub tls: Option<(u16, PathBuf, PathBuf)>,
    /// The relay ports (UDP, towards the SFU): keep them off the kernel's ephemeral range
    /// (32768–60999) so that a firewall rule can tell relayed traffic from a browser's own.
    pub relay_ports: (u16, u16),
}

impl CoturnConfig {
    pub fn new(secret: &str, port: u16) -> CoturnConfig {
        CoturnConfig { secret: secret.to_owned(), port, tls: None, relay_ports: (20000, 20199) }
    }
}

/// coturn in the foreground, killed by PID when dropped.
pub struct Coturn {
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Coturn {
    /// Starts coturn and waits until its TCP listener accepts.
    pub async fn start(config: &CoturnConfig) -> Result<Coturn, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let log = dir.path().join("turn.log");
        let tls = match &config.tls {
            Some((port, cert, key)) => format!(
                "tls-listening-port={port}\nalt-tls-listening-port={}\ncert={}\npkey={}\nno-tlsv1\nno-tlsv1_1\n",
                port + 1,
                cert.display(),
                key.display()
            ),
            None => "no-tls\n".to_owned(),
        };
        let conf = format!(
            "listening-ip=127.0.0.1\nrelay-ip=127.0.0.1\nlistening-port={port}\nalt-listening-port={alt}\n\
             {tls}no-dtls\nno-tcp-relay\nmin-port={min}\nmax-port={max}\n\
             use-auth-secret\nstatic-auth-secret={secret}\nrealm=sportello.test\n\
             denied-peer-ip=0.0.0.0-255.255.255.255\nallowed-peer-ip=127.0.0.1\nallow-loopback-peers\n\
             no-multicast-peers\nno-cli\nfingerprint\nsimple-log\nno-stdout-log\nlog-file={log}\npidfile={pid}\nuserdb={db}\n",
            port = config.port,
            alt = config.port + 1,
            min = config.relay_ports.0,
            max = config.relay_ports.1,
            secret = config.secret,
            log = log.display(),
            pid = dir.path().join("turn.pid").display(),
            db = dir.path().join("turndb").display(),
        );
        let path = dir.path().join("turnserver.conf");
        std::fs::write(&path, conf).map_err(|e| e.to_string())?;
        let child = Command::new("turnserver")
            .arg("-c")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start turnserver (Debian package coturn): {e}"))?;
        let mut coturn = Coturn { child, log, _dir: dir };
        let mut ports = vec![config.port];
        ports.extend(config.tls.as_ref().map(|(port, _, _)| *port));
        crate::wait_for_ports(&mut coturn.child, &ports, Duration::from_secs(10))
            .await
            .map_err(|e| format!("coturn {e}:\n{}", coturn.log_text()))?;
        Ok(coturn)
    }

    /// What coturn logged so far (for a failure message).
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}
