//! `sportello drain`: asks a running node, over NATS request/reply on
//! `sportello.node.<id>.drain`, to drain — take no new room or viewer, move its sessions to the
//! other nodes, end its edge streams — and answers once it has, or its deadline passed. The node
//! then keeps running, drained, until it is stopped (SIGTERM drains too, then stops).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What the command asks.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DrainRequest {
    /// How long the node may take to move its sessions, in seconds.
    pub deadline_secs: u64,
}

/// What the node answers once drained (or at its deadline).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DrainReport {
    pub node: String,
    /// Sessions still open on it (0: all moved).
    pub sessions_left: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum DrainError {
    #[error("cannot reach NATS at {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("node {node} did not answer (is it running, with this nats_url?): {reason}")]
    NoAnswer { node: String, reason: String },
    #[error("unreadable answer from node {node}: {reason}")]
    Answer { node: String, reason: String },
}

/// The subject node `node` takes drain requests on.
pub fn subject(node: &str) -> String {
    format!("sportello.node.{node}.drain")
}

/// Asks `node` to drain within `deadline` and waits for its report.
pub async fn request(nats_url: &str, node: &str, deadline: Duration) -> Result<DrainReport, DrainError> {
    let client = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(5))
        .connect(nats_url)
        .await
        .map_err(|e| DrainError::Connect { url: nats_url.to_owned(), reason: e.to_string() })?;
    let body = serde_json::to_vec(&DrainRequest { deadline_secs: deadline.as_secs() }).unwrap_or_default();
    // The node answers after its deadline at the latest; the slack covers releasing its rooms.
    let ask = client.request(subject(node), body.into());
    let reply = tokio::time::timeout(deadline + Duration::from_secs(10), ask)
        .await
        .map_err(|_| DrainError::NoAnswer { node: node.to_owned(), reason: "timed out".into() })?
        .map_err(|e| DrainError::NoAnswer { node: node.to_owned(), reason: e.to_string() })?;
    serde_json::from_slice(&reply.payload)
        .map_err(|e| DrainError::Answer { node: node.to_owned(), reason: e.to_string() })
}
