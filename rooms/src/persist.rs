//! The rooms' way to the database: room actors never await I/O, so what a room wants stored (chat,
//! "the citizen came in", a council vote) is queued here as a [`Job`] and run by one task, in order.
//! A job that has an answer for its room (a stored chat message with its id, a loaded council
//! session) returns it, and the task hands it to the room through a [`Deliver`].
//!
//! This queue knows no room, council or chat type: the jobs are closures built by whoever queues
//! them, and the answer is the registry's own message type. So the dependencies run one way —
//! rooms and council code use this module, never the reverse.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use sportello_sfu::RoomId;
use sportello_store::Store;
use tokio::sync::mpsc;

/// Jobs queued before rooms get `internal` for their chat: the database is far behind.
const QUEUE: usize = 1024;

/// What a job returns: the room to tell and what to tell it, or nothing.
pub type Answer<M> = Option<(RoomId, M)>;

type Work<M> = Box<dyn FnOnce(Store) -> Pin<Box<dyn Future<Output = Answer<M>> + Send>> + Send>;

/// One unit of work for the persistence task; `M` is what answers are delivered as.
pub struct Job<M> {
    /// For the logs only: never the job's data (a ballot is in there).
    what: &'static str,
    work: Work<M>,
    /// The room and ownership epoch its writes are fenced with (several nodes): once the room
    /// has a newer owner, they fail and change nothing (`Store::fenced`).
    fence: Option<(RoomId, i64)>,
}

impl<M> Job<M> {
    pub fn new<F, Fut>(what: &'static str, work: F) -> Job<M>
    where
        F: FnOnce(Store) -> Fut + Send + 'static,
        Fut: Future<Output = Answer<M>> + Send + 'static,
    {
        Job { what, work: Box::new(move |store| Box::pin(work(store))), fence: None }
    }

    /// This job's writes, fenced with `room`'s ownership `epoch`.
    pub fn fenced(mut self, room: RoomId, epoch: i64) -> Job<M> {
        self.fence = Some((room, epoch));
        self
    }
}

impl<M> fmt::Debug for Job<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Job").field("what", &self.what).finish_non_exhaustive()
    }
}

/// The registry is gone: nobody is left to answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gone;

/// Hands a job's answer to its room (implemented by the rooms registry).
pub trait Deliver: Send + 'static {
    type Message: Send + 'static;

    /// `Err(Gone)` once the registry itself is gone (a closed room just drops the message).
    fn deliver(&self, room: &RoomId, message: Self::Message) -> Result<(), Gone>;
}

/// The queue is full: the caller reports a failure instead of waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

/// The sending side, held by every room. Submitting never waits.
pub struct Persister<M> {
    tx: mpsc::Sender<Job<M>>,
}

// Derived impls would require `M: Clone`/`M: Debug`; the sender needs neither.
impl<M> Clone for Persister<M> {
    fn clone(&self) -> Self {
        Persister { tx: self.tx.clone() }
    }
}

impl<M> fmt::Debug for Persister<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Persister").finish_non_exhaustive()
    }
}

impl<M> Persister<M> {
    pub fn channel() -> (Persister<M>, mpsc::Receiver<Job<M>>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        (Persister { tx }, rx)
    }

    pub fn submit(&self, job: Job<M>) -> Result<(), Busy> {
        self.tx.try_send(job).map_err(|e| {
            tracing::error!(error = %e, "persistence queue full or closed");
            Busy
        })
    }
}

/// Runs jobs until every [`Persister`] is gone, or until an answer finds the registry gone.
pub async fn run<D: Deliver>(mut jobs: mpsc::Receiver<Job<D::Message>>, store: Store, rooms: D) {
    while let Some(job) = jobs.recv().await {
        let Job { what, work, fence } = job;
        let store = match &fence {
            Some((room, epoch)) => store.fenced(room, *epoch),
            None => store.clone(),
        };
        if let Some((room, message)) = work(store).await
            && rooms.deliver(&room, message).is_err()
        {
            tracing::debug!(job = what, "rooms registry gone: persistence task ends");
            return;
        }
    }
}
