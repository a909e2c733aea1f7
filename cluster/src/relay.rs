//! Signaling sessions relayed between nodes over NATS. A browser's websocket lands on whichever
//! node the balancer picks, and browsers do not follow redirects on the websocket handshake; so
//! the node holding the websocket relays its text frames to a session that the room's owner runs,
//! and the owner's frames back. Media does not take this path: the owner's candidates name its
//! own UDP address.
//!
//! Subjects: `sportello.node.<owner>.open` (request/reply: a relay opens, with the session's join
//! frame), `sportello.relay.<id>.in` (frames for the owner's session), `sportello.relay.<id>.out`
//! (frames for the browser). Core NATS keeps one publisher's messages on one subject in order.
//! Either side ends the relay when the other's node is judged dead ([`Cluster::is_dead`]): the
//! browser's client reconnects, and its join is placed again (on the room's new owner).

use std::time::Duration;

use futures_util::{Stream, StreamExt};
use serde::{Deserialize, Serialize};

use crate::membership::{Cluster, ClusterError};

/// How long the owner has to accept a relay, and then to hear that the relaying node still waits.
pub const OPEN_TIMEOUT: Duration = Duration::from_secs(2);
/// How often each side checks that the other's node is alive.
pub const PEER_CHECK: Duration = Duration::from_millis(250);

/// A signaling frame on a relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Text(String),
    /// The browser closed (towards the owner), or the owner's session closed with this code.
    Close(u16),
    Ping,
}

impl Frame {
    fn encode(&self) -> Vec<u8> {
        match self {
            Frame::Text(text) => [b"t", text.as_bytes()].concat(),
            Frame::Close(code) => [b"c".as_slice(), &code.to_be_bytes()].concat(),
            Frame::Ping => b"p".to_vec(),
        }
    }

    fn decode(bytes: &[u8]) -> Option<Frame> {
        match bytes.split_first()? {
            (b't', text) => Some(Frame::Text(String::from_utf8(text.to_vec()).ok()?)),
            (b'c', code) => Some(Frame::Close(u16::from_be_bytes(code.try_into().ok()?))),
            (b'p', []) => Some(Frame::Ping),
            _ => None,
        }
    }
}

/// What the relaying node tells the owner when a relay opens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub relay: String,
    /// The relaying node (the owner ends the session when it dies).
    pub from: String,
    pub lang: String,
    pub expected_room: Option<String>,
    /// The session's first frame, its `join`.
    pub join: String,
}

/// The relaying side: frames to the owner's session, frames from it.
pub struct RelayLink {
    to_owner: RelaySink,
    from_owner: async_nats::Subscriber,
}

impl RelayLink {
    /// Where frames for the owner's session go, and the frames it sends.
    pub fn split(self) -> (RelaySink, impl Stream<Item = Frame> + Unpin + Send + 'static) {
        (self.to_owner, frames(self.from_owner))
    }
}

/// The owner's side of one relay: the session's frames in (its `join` first), and where its
/// frames go.
pub struct Accepted {
    pub hello: Hello,
    pub inbound: async_nats::Subscriber,
    pub outbound: RelaySink,
}

/// Where an owner's session writes: the relay's `out` subject.
#[derive(Clone)]
pub struct RelaySink {
    nats: async_nats::Client,
    subject: String,
}

impl RelaySink {
    pub async fn send(&self, frame: Frame) -> Result<(), ClusterError> {
        self.nats
            .publish(self.subject.clone(), frame.encode().into())
            .await
            .map_err(|e| ClusterError::Nats(e.to_string()))
    }
}

/// The frames of a relay subject (garbage skipped).
pub fn frames(subscriber: async_nats::Subscriber) -> impl Stream<Item = Frame> + Unpin + Send + 'static {
    subscriber.filter_map(|msg| std::future::ready(Frame::decode(&msg.payload)))
}

impl Cluster {
    /// Opens a relay of a session whose room runs on `owner`, with its `join` frame. Fails at
    /// once when the owner has no NATS subscriber (its process is gone), or after
    /// [`OPEN_TIMEOUT`]: the client then tries again, and by then a dead owner is judged so.
    pub async fn open_relay(
        &self,
        owner: &str,
        lang: &str,
        expected_room: Option<String>,
        join: String,
    ) -> Result<RelayLink, ClusterError> {
        let nats = self.nats().clone();
        let id = nats.new_inbox().trim_start_matches("_INBOX.").replace('.', "-");
        let out =
            nats.subscribe(format!("sportello.relay.{id}.out")).await.map_err(|e| ClusterError::Nats(e.to_string()))?;
        let hello = Hello { relay: id.clone(), from: self.id().to_owned(), lang: lang.to_owned(), expected_room, join };
        let payload = serde_json::to_vec(&hello).map_err(|e| ClusterError::Nats(e.to_string()))?;
        let request = nats.request(format!("sportello.node.{owner}.open"), payload.into());
        match tokio::time::timeout(OPEN_TIMEOUT, request).await {
            Ok(Ok(reply)) if reply.payload.as_ref() == b"ok" => {
                let to_owner = RelaySink { nats, subject: format!("sportello.relay.{id}.in") };
                // "Still here": an owner that answers an open it took long to read (it was
                // frozen, its queue was long) finds no such confirmation and drops the session,
                // instead of joining a participant who has since joined elsewhere.
                to_owner.send(Frame::Ping).await?;
                Ok(RelayLink { to_owner, from_owner: out })
            }
            Ok(Ok(_)) => Err(ClusterError::Unavailable),
            Ok(Err(e)) => {
                tracing::info!(owner, error = %e, "the room's owner does not answer on NATS");
                Err(ClusterError::Unavailable)
            }
            Err(_) => Err(ClusterError::Unavailable),
        }
    }

    /// Relays opened towards this node, as they come. Each is accepted (subscribed, then
    /// answered) before it is handed out, so no frame of the relay is lost.
    pub async fn accept_relays(&self) -> Result<impl Stream<Item = Accepted> + Send + 'static, ClusterError> {
        let nats = self.nats().clone();
        let opens = nats
            .subscribe(format!("sportello.node.{}.open", self.id()))
            .await
            .map_err(|e| ClusterError::Nats(e.to_string()))?;
        Ok(opens.filter_map(move |msg| {
            let nats = nats.clone();
            async move {
                let hello: Hello = serde_json::from_slice(&msg.payload).ok()?;
                let inbound = nats.subscribe(format!("sportello.relay.{}.in", hello.relay)).await.ok()?;
                let reply = msg.reply?;
                nats.publish(reply, "ok".into()).await.ok()?;
                let outbound = RelaySink { nats, subject: format!("sportello.relay.{}.out", hello.relay) };
                Some(Accepted { hello, inbound, outbound })
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_garbage_is_refused() {
        for frame in
            [Frame::Text("{\"type\":\"join\"}".into()), Frame::Text(String::new()), Frame::Close(1001), Frame::Ping]
        {
            assert_eq!(Frame::decode(&frame.encode()), Some(frame));
        }
        for bad in [&b""[..], b"x", b"c\x03", b"p!", b"t\xff"] {
            assert_eq!(Frame::decode(bad), None, "{bad:?}");
        }
    }
}
