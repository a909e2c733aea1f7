//! A real OpenID provider for a test: `tests/oidc/provider.mjs` (oidc-provider 8 under Node,
//! installed in `tests/node` by `scripts/test`) on 127.0.0.1, with the clients and accounts the
//! test gives, stopped by its PID when dropped.
//!
//! ```ignore
//! let provider = TempOidc::start(&json!({
//!     "clients": [{"client_id": "sportello", "client_secret": "s3cret",
//!                  "redirect_uris": [format!("{}/auth/oidc/callback", server.url())]}],
//!     "accounts": {"anna": {"sub": "sub-anna", "email": "anna@comune.example", "groups": ["uffici"]}},
//! })).await?;
//! // provider.issuer is "http://127.0.0.1:<port>"
//! ```

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// How long Node may take to load oidc-provider and listen.
const START_TIMEOUT: Duration = Duration::from_secs(30);
const READY: &str = "OIDC_PROVIDER_READY ";

/// The provider's process, its issuer URL and its files (configuration, log).
pub struct TempOidc {
    child: Child,
    pub issuer: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl TempOidc {
    /// Starts the provider on a free port with `config` (provider.mjs says its shape).
    pub async fn start(config: &serde_json::Value) -> Result<TempOidc, String> {
        TempOidc::start_on(config, 0).await
    }

    /// Starts it on `port` (0: any free one): the same port again gives the same issuer, so a test
    /// can restart the directory with changed accounts.
    pub async fn start_on(config: &serde_json::Value, port: u16) -> Result<TempOidc, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let config_path = dir.path().join("provider.json");
        std::fs::write(&config_path, config.to_string()).map_err(|e| e.to_string())?;
        let log = dir.path().join("provider.log");
        let stderr = std::fs::File::create(&log).map_err(|e| e.to_string())?;
        let mut child = Command::new("node")
            .arg(script())
            .arg(&config_path)
            .args(["--port", &port.to_string()])
            // Closed when the test process goes, however it goes: the provider then exits.
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start node (Node.js, tests/node: npm ci): {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(START_TIMEOUT, async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(issuer) = line.strip_prefix(READY) {
                    return Some(issuer.trim().to_owned());
                }
            }
            None
        })
        .await;
        let provider_log = || std::fs::read_to_string(&log).unwrap_or_default();
        let issuer = match ready {
            Ok(Some(issuer)) => issuer,
            Ok(None) => return Err(format!("the OpenID provider exited before it was ready:\n{}", provider_log())),
            Err(_) => {
                return Err(format!("the OpenID provider was not ready within {START_TIMEOUT:?}:\n{}", provider_log()));
            }
        };
        // Whatever it prints later is read and dropped (a full pipe would block it).
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(TempOidc { child, issuer, log, _dir: dir })
    }

    /// The provider's port.
    pub fn port(&self) -> u16 {
        self.issuer.rsplit(':').next().and_then(|p| p.trim_end_matches('/').parse().ok()).unwrap_or(0)
    }

    /// What the provider wrote to stderr so far (warnings, errors).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stops it now (SIGTERM, then SIGKILL) and waits until its port is free again.
    pub async fn stop(mut self) {
        crate::terminate(&mut self.child);
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
    }
}

impl Drop for TempOidc {
    fn drop(&mut self) {
        crate::terminate(&mut self.child);
    }
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("oidc").join("provider.mjs")
}
