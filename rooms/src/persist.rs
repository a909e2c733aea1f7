//! The rooms' way to the database: room actors never await I/O, so what a room wants stored (chat,
//! "the citizen came in", "the appointment room ended") is queued here and written by one task, in
//! order. Results that the room must show (a stored chat message with its id) come back to the room
//! as a [`Control`](crate::room::Control) input.

use sportello_sfu::{ParticipantId, RoomId};
use sportello_store::{NewChat, Status, Store, StoreError};
use tokio::sync::mpsc;

use crate::protocol::ChatInfo;
use crate::room::{ConnId, Control};
use crate::rooms::WeakRooms;

/// Jobs queued before rooms get `internal` for their chat: the database is far behind.
const QUEUE: usize = 1024;

#[derive(Debug)]
pub enum Job {
    /// Store, then hand back to the room to broadcast (so everyone sees the stored id).
    Chat { room: RoomId, sender: ParticipantId, conn: ConnId, chat: NewChat, now: i64 },
    /// The citizen of an appointment was admitted.
    CitizenJoined { appointment: String, now: i64 },
    /// The last participant left an appointment room where the official and the citizen had met.
    RoomEnded { appointment: String, now: i64 },
    /// A council room's log, votes and ballots (`crate::council`).
    Council(crate::council::CouncilJob),
}

/// The queue is full: the caller reports a failure instead of waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

/// The sending side, held by every room. Submitting never waits.
#[derive(Debug, Clone)]
pub struct Persister {
    tx: mpsc::Sender<Job>,
}

impl Persister {
    pub fn channel() -> (Persister, mpsc::Receiver<Job>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        (Persister { tx }, rx)
    }

    pub fn submit(&self, job: Job) -> Result<(), Busy> {
        self.tx.try_send(job).map_err(|e| {
            tracing::error!(error = %e, "persistence queue full or closed");
            Busy
        })
    }
}

/// Writes jobs until every [`Persister`] is gone (the rooms registry was dropped).
pub async fn run(mut jobs: mpsc::Receiver<Job>, store: Store, rooms: WeakRooms) {
    while let Some(job) = jobs.recv().await {
        match job {
            Job::Chat { room, sender, conn, chat, now } => {
                let result = store.add_chat(&chat, now).await;
                let Some(rooms) = rooms.upgrade() else { return };
                match result {
                    Ok(stored) => rooms.deliver(
                        &room,
                        Control::ChatStored(ChatInfo {
                            id: stored.id,
                            participant_id: stored.sender,
                            name: stored.sender_name,
                            text: stored.body,
                            at: stored.created_at,
                        }),
                    ),
                    Err(error) => {
                        tracing::error!(room = %room, %error, "chat message not stored");
                        rooms.deliver(&room, Control::ChatFailed { participant: sender, conn });
                    }
                }
            }
            Job::CitizenJoined { appointment, now } => {
                if let Err(error) = store.mark_citizen_joined(&appointment, now).await {
                    tracing::error!(%appointment, %error, "cannot record that the citizen joined");
                }
            }
            Job::Council(job) => crate::council::run_job(&store, &rooms, job).await,
            Job::RoomEnded { appointment, now } => {
                match store
                    .set_status(&appointment, &[Status::Confirmed], Status::Completed, "system", "room ended", now)
                    .await
                {
                    Ok(_) => tracing::info!(%appointment, "appointment completed: its room ended"),
                    // Already completed, cancelled meanwhile…: nothing to do.
                    Err(StoreError::InvalidTransition { .. } | StoreError::NotFound) => {}
                    Err(error) => tracing::error!(%appointment, %error, "cannot complete the appointment"),
                }
            }
        }
    }
}
