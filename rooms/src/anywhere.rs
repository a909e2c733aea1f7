//! What REST asks of a live room — who waits in its lobby, whether someone is admitted, admit or
//! decline, a new document — answered wherever the room runs. One node: the registry here. Several
//! nodes (`docs/cluster.md`): the room's owner, over NATS request/reply
//! (`sportello.node.<owner>.rooms`), when that is another live node; the officials' dashboard may
//! land on any node.

use std::time::Duration;

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use sportello_cluster::Cluster;

use crate::error::ProtocolError;
use crate::protocol::DocumentInfo;
use crate::room::WaitingInfo;
use crate::rooms::{LobbyError, Rooms};

/// How long the owner has to answer.
const ASK_TIMEOUT: Duration = Duration::from_secs(2);

/// A question for the room's owner.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Ask {
    Lobby { room: String },
    IsAdmitted { room: String, identity: String },
    Decide { room: String, participant: String, admit: bool },
    Document { room: String, document: DocumentInfo },
}

/// The owner's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "is", rename_all = "snake_case")]
enum Answer {
    Lobby { waiting: Vec<WaitingInfo> },
    Admitted { admitted: bool },
    Decided,
    RoomNotOpen,
    NotWaiting,
    Failed { why: String },
    Done,
}

/// The rooms, wherever they run. Cheap to clone.
#[derive(Clone)]
pub struct RoomsAnywhere {
    rooms: Rooms,
    cluster: Option<Cluster>,
}

impl RoomsAnywhere {
    /// This node's registry, and the cluster when there are several nodes.
    pub fn new(rooms: Rooms, cluster: Option<Cluster>) -> RoomsAnywhere {
        RoomsAnywhere { rooms, cluster }
    }

    /// Who waits in `room`'s lobby, oldest first (empty when the room is not open anywhere).
    pub async fn lobby(&self, room: &str) -> Vec<WaitingInfo> {
        match self.ask_owner(room, Ask::Lobby { room: room.to_owned() }).await {
            Some(Answer::Lobby { waiting }) => waiting,
            Some(_) => Vec::new(),
            None => self.rooms.lobby(room),
        }
    }

    /// Whether `identity` is admitted in `room` now.
    pub async fn is_admitted(&self, room: &str, identity: &str) -> bool {
        let ask = Ask::IsAdmitted { room: room.to_owned(), identity: identity.to_owned() };
        match self.ask_owner(room, ask).await {
            Some(Answer::Admitted { admitted }) => admitted,
            Some(_) => false,
            None => self.rooms.is_admitted(room, identity),
        }
    }

    /// Admits (or turns away) a waiting participant, as a host in the room would.
    pub async fn decide(&self, room: &str, participant: &str, admit: bool) -> Result<(), LobbyError> {
        let ask = Ask::Decide { room: room.to_owned(), participant: participant.to_owned(), admit };
        match self.ask_owner(room, ask).await {
            Some(answer) => from_answer(answer),
            None if admit => self.rooms.admit(room, participant).await,
            None => self.rooms.decline(room, participant).await,
        }
    }

    /// Announces an uploaded document to everyone admitted in `room`.
    pub async fn announce_document(&self, room: &str, document: DocumentInfo) {
        let ask = Ask::Document { room: room.to_owned(), document: document.clone() };
        if self.ask_owner(room, ask).await.is_none() {
            self.rooms.announce_document(room, document);
        }
    }

    /// The owner's answer when another live node runs `room`; `None`: ask this node's registry.
    async fn ask_owner(&self, room: &str, ask: Ask) -> Option<Answer> {
        let cluster = self.cluster.as_ref()?;
        let owner = cluster.remote_owner(room).await?.id;
        let payload = serde_json::to_vec(&ask).ok()?;
        let request = cluster.nats().request(format!("sportello.node.{owner}.rooms"), payload.into());
        match tokio::time::timeout(ASK_TIMEOUT, request).await {
            Ok(Ok(reply)) => serde_json::from_slice(&reply.payload).ok(),
            Ok(Err(error)) => {
                tracing::warn!(room, owner = %owner, %error, "the room's owner did not answer");
                Some(Answer::RoomNotOpen)
            }
            Err(_) => {
                tracing::warn!(room, owner = %owner, "the room's owner did not answer in time");
                Some(Answer::RoomNotOpen)
            }
        }
    }
}

fn from_answer(answer: Answer) -> Result<(), LobbyError> {
    match answer {
        Answer::Decided | Answer::Done => Ok(()),
        Answer::NotWaiting => Err(LobbyError::NotWaiting),
        Answer::Failed { why } => Err(LobbyError::Failed(ProtocolError::Internal(why))),
        _ => Err(LobbyError::RoomNotOpen),
    }
}

/// The owner's side: answers what other nodes ask about the rooms running here, until the
/// cluster's NATS connection ends.
pub async fn serve(cluster: Cluster, rooms: Rooms) {
    let nats = cluster.nats().clone();
    let mut asks = match nats.subscribe(format!("sportello.node.{}.rooms", cluster.id())).await {
        Ok(asks) => asks,
        Err(error) => {
            tracing::error!(%error, "this node cannot answer questions about its rooms");
            return;
        }
    };
    while let Some(msg) = asks.next().await {
        let (Some(reply), Ok(ask)) = (msg.reply, serde_json::from_slice::<Ask>(&msg.payload)) else { continue };
        let (rooms, nats) = (rooms.clone(), nats.clone());
        tokio::spawn(async move {
            let answer = match ask {
                Ask::Lobby { room } => Answer::Lobby { waiting: rooms.lobby(&room) },
                Ask::IsAdmitted { room, identity } => {
                    Answer::Admitted { admitted: rooms.is_admitted(&room, &identity) }
                }
                Ask::Decide { room, participant, admit } => {
                    let decided = if admit {
                        rooms.admit(&room, &participant).await
                    } else {
                        rooms.decline(&room, &participant).await
                    };
                    match decided {
                        Ok(()) => Answer::Decided,
                        Err(LobbyError::NotWaiting) => Answer::NotWaiting,
                        Err(LobbyError::RoomNotOpen) => Answer::RoomNotOpen,
                        Err(LobbyError::Failed(e)) => Answer::Failed { why: e.to_string() },
                    }
                }
                Ask::Document { room, document } => {
                    rooms.announce_document(&room, document);
                    Answer::Done
                }
            };
            if let Ok(payload) = serde_json::to_vec(&answer) {
                let _ = nats.publish(reply, payload.into()).await;
            }
        });
    }
}
