//! Caddy (Debian `caddy`) running `deploy/Caddyfile` for a test: the deploy file itself, its host
//! name, upstream and global options replaced by the test's — a certificate from files (`tls CERT
//! KEY`) instead of ACME, no admin endpoint, loopback only — started as `caddy run` with its own
//! configuration and data directories (nothing in `/etc`, `/var` or the user's home is touched) and
//! stopped by its PID on drop.
//!
//! Like [`crate::nginx`], every replacement must find its text in the deploy file.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::nginx::replace_each;

/// The production file, read at run time: the test exercises what is deployed.
pub const DEPLOY_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/Caddyfile");

/// Where the test's Caddy listens and forwards.
#[derive(Debug, Clone)]
pub struct CaddyConfig {
    /// HTTPS (443 in production).
    pub https: u16,
    /// Plain HTTP, the redirect (80 in production).
    pub plain_http: u16,
    /// Sportello's HTTP listener (127.0.0.1:8080 in production).
    pub sportello: SocketAddr,
    /// The site's name (sportello.comune.example.it in production).
    pub server_name: String,
    /// The site's certificate and key (PEM).
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The deploy file `text` with the test's values.
pub fn render(text: &str, config: &CaddyConfig) -> Result<String, String> {
    let globals = format!(
        "{{\n\tadmin off\n\tdefault_bind 127.0.0.1\n\thttp_port {}\n\thttps_port {}\n}}",
        config.plain_http, config.https
    );
    let site = format!("{} {{\n\ttls {} {}\n", config.server_name, config.cert.display(), config.key.display());
    let replacements: Vec<(&str, String)> = vec![
        (
            "{\n\t# Certificate expiry notices from the ACME certificate authority.\n\temail hostmaster@comune.example.it\n}",
            globals,
        ),
        ("sportello.comune.example.it {\n", site),
        ("reverse_proxy 127.0.0.1:8080", format!("reverse_proxy {}", config.sportello)),
    ];
    replace_each(text, DEPLOY_FILE, &replacements)
}

/// `caddy run` with the rendered file; stopped by its PID when dropped.
pub struct Caddy {
    child: Child,
    dir: tempfile::TempDir,
}

impl Caddy {
    /// Renders [`DEPLOY_FILE`], starts Caddy and waits until HTTPS and plain HTTP accept.
    pub async fn start(config: &CaddyConfig) -> Result<Caddy, String> {
        let text = std::fs::read_to_string(DEPLOY_FILE).map_err(|e| format!("{DEPLOY_FILE}: {e}"))?;
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let path = dir.path().join("Caddyfile");
        std::fs::write(&path, render(&text, config)?).map_err(|e| e.to_string())?;
        let log = std::fs::File::create(dir.path().join("caddy.log")).map_err(|e| e.to_string())?;
        let child = Command::new("caddy")
            .args(["run", "--adapter", "caddyfile", "--config"])
            .arg(&path)
            // Caddy keeps its state (autosaved configuration, certificates, locks) under these.
            .env("HOME", dir.path())
            .env("XDG_DATA_HOME", dir.path().join("data"))
            .env("XDG_CONFIG_HOME", dir.path().join("config"))
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start caddy (Debian caddy): {e}"))?;
        let mut caddy = Caddy { child, dir };
        crate::wait_for_ports(&mut caddy.child, &[config.https, config.plain_http], Duration::from_secs(15))
            .await
            .map_err(|e| format!("caddy {e}:\n{}", caddy.log_text()))?;
        Ok(caddy)
    }

    /// What Caddy logged (for a failure message).
    pub fn log_text(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("caddy.log")).unwrap_or_default();
        format!("--- caddy log ---\n{log}")
    }
}

impl Drop for Caddy {
    fn drop(&mut self) {
        crate::terminate(&mut self.child);
    }
}
