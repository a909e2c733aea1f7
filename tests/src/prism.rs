//! Prism (`@stoplight/prism-cli`, installed in `tests/node` by `npm ci --prefix tests/node`) as a
//! validating proxy of IO's published services API (`tests/appio/io-services-openapi.yaml`): it
//! forwards each request to an upstream the test runs, refuses one outside IO's contract (422, 401
//! without the `Ocp-Apim-Subscription-Key` header) and logs an answer outside it. It serves IO's
//! paths without the document's `basePath`: Sportello's `appio.base_url` is [`Prism::url`].
//! Killed by its PID when dropped.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

/// The repository's `tests/` directory.
fn tests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_owned()
}

pub struct Prism {
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Prism {
    /// Starts `prism proxy` in front of `upstream` (`http://127.0.0.1:<port>`) and waits until it
    /// listens (it reads and checks the whole document first: a few seconds).
    pub async fn start(upstream: &str) -> Result<Prism, String> {
        let bin = tests_dir().join("node/node_modules/.bin/prism");
        if !bin.exists() {
            return Err(format!("{} is missing: run `npm ci --prefix tests/node`", bin.display()));
        }
        let port = free_port().map_err(|e| e.to_string())?;
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let log = dir.path().join("prism.log");
        let out = std::fs::File::create(&log).map_err(|e| e.to_string())?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let child = Command::new(&bin)
            .arg("proxy")
            .arg(tests_dir().join("appio/io-services-openapi.yaml"))
            .arg(upstream)
            .args(["--errors", "-h", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start prism (tests/node): {e}"))?;
        let mut prism = Prism { child, port, log, _dir: dir };
        crate::wait_for_ports(&mut prism.child, &[port], Duration::from_secs(60))
            .await
            .map_err(|e| format!("prism {e}:\n{}", prism.log_text()))?;
        Ok(prism)
    }

    /// `http://127.0.0.1:<port>`: IO's API root as Prism serves it (`/profiles`, `/messages`).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// What Prism logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// What Prism logged as errors: a request outside IO's document ("Request terminated with
    /// error: …#UNPROCESSABLE_ENTITY", "…#UNAUTHORIZED") or an answer violating it. An answer with
    /// a status the document does not list (the stand-in's 503) is only a warning.
    pub fn errors(&self) -> Vec<String> {
        self.log_text().lines().filter(|l| l.contains('✖')).map(str::to_owned).collect()
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// A port of 127.0.0.1 nobody listens on right now.
fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
