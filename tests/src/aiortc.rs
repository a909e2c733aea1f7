//! The relay-only aiortc publisher (`tests/aiortc/turn_relay.py`): an independent WebRTC stack that
//! gathers relay candidates only, through the TURN servers it is given, and sends video for a few
//! seconds once it has the SFU's answer. It speaks JSON lines: its first line is the offer (with the
//! mid and how many relay candidates it got), it reads `{"answer": sdp}`, its last line the result.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/aiortc/turn_relay.py");
/// Longest silence between two of its lines.
const LINE_LIMIT: Duration = Duration::from_secs(40);

/// The running script, between its offer and its result.
pub struct RelayPublisher {
    child: Child,
    out: Lines<BufReader<ChildStdout>>,
}

impl RelayPublisher {
    /// Starts the script with `ice_servers` (RTCIceServer JSON), sending for `send_seconds` after its
    /// answer; returns it with its first line. With `trust`, that certificate file is the one Python's
    /// default TLS context trusts (`SSL_CERT_FILE`): a `turns:` server is checked, not waved through.
    pub async fn start(
        ice_servers: &Value,
        send_seconds: u64,
        trust: Option<&Path>,
    ) -> Result<(RelayPublisher, Value), String> {
        let mut command = Command::new("python3");
        command.arg(SCRIPT).arg(ice_servers.to_string()).arg(send_seconds.to_string());
        if let Some(cert) = trust {
            command.env("SSL_CERT_FILE", cert);
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot run python3 {SCRIPT}: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut publisher = RelayPublisher { child, out: BufReader::new(stdout).lines() };
        let offer = publisher.line().await?;
        Ok((publisher, offer))
    }

    /// Its next line.
    pub async fn line(&mut self) -> Result<Value, String> {
        let line = tokio::time::timeout(LINE_LIMIT, self.out.next_line())
            .await
            .map_err(|_| "the publisher said nothing in time")?
            .map_err(|e| e.to_string())?
            .ok_or("the publisher ended early")?;
        serde_json::from_str(&line).map_err(|e| format!("publisher line {line:?}: {e}"))
    }

    /// Its result line, which must say it connected through a relay candidate.
    pub async fn relayed(&mut self) -> Result<Value, String> {
        let result = self.line().await?;
        if result["state"] != "connected" {
            return Err(format!("the relay-only publisher did not connect: {result}"));
        }
        if result["local_candidate"] != "relay" {
            return Err(format!("not through TURN: {result}"));
        }
        Ok(result)
    }

    /// Hands it the SFU's answer.
    pub async fn answer(&mut self, sdp: &str) -> Result<(), String> {
        let stdin = self.child.stdin.as_mut().ok_or("no stdin")?;
        let line = format!("{}\n", json!({ "answer": sdp }));
        stdin.write_all(line.as_bytes()).await.map_err(|e| e.to_string())
    }
}
