//! This node in the cluster: its registry row, its advisory lock, its heartbeat, what it sees of
//! the others, and where a room runs ([`Cluster::place`]). The rules are in
//! [`liveness`](crate::liveness); this module does their I/O.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sportello_store::{NewNode, NodeLock, NodeRow, NodeState, Store, StoreError};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::timeout;

use crate::liveness::{self, Health, Others};

/// How often the registry and the locks are read (a killed node is seen within this).
const OBSERVE_EVERY: Duration = Duration::from_millis(250);
/// How long a registry round trip may take before it counts as failed.
const DB_TIMEOUT: Duration = Duration::from_secs(1);
/// A status message older than this says nothing about the database any more.
const STATUS_FRESH: Duration = Duration::from_secs(2);
/// How long a room's owner, once read, is taken as known (`Cluster::remote_owner`).
const OWNER_FRESH: Duration = Duration::from_secs(1);
/// Room owners remembered at most before stale ones are forgotten.
const OWNERS_KEPT: usize = 10_000;
/// How often a node tells the others (over NATS) how long ago it renewed.
const STATUS_EVERY: Duration = Duration::from_millis(500);
/// The subject every node publishes its status on.
pub(crate) const STATUS_SUBJECT: &str = "sportello.nodes.status";

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("NATS: {0}")]
    Nats(String),
    #[error("another process runs as node {0}")]
    DuplicateNode(String),
    /// Tokens signed on one node would be refused on the other: the key must be shared.
    #[error(
        "node {0} signs tokens with another key: every node needs the same jwt.key (a shared data directory, or copy it; docs/cluster.md)"
    )]
    KeyMismatch(String),
    /// This node refuses joins now (it cannot reach the database, or it is fenced or draining).
    #[error("this node takes no joins now")]
    Unavailable,
    #[error("the room's owner changed under us three times")]
    Contended,
}

/// What a node is told at start.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub id: String,
    pub internal_url: String,
    pub media_addr: String,
    pub nats_url: String,
    /// `TokenKey::key_id` of this node's signing key.
    pub key_id: String,
}

/// Where a room runs, as decided for a join.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// Here, under this ownership epoch (its writes are fenced with it).
    Local { epoch: i64 },
    /// On another live node: the session is relayed there.
    Remote { node: String },
}

/// One node's status on NATS.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Status {
    node: String,
    /// Milliseconds since its last successful heartbeat renewal.
    renewed_ms_ago: u64,
    /// The council stream's viewers it serves now (the viewer cap is the cluster's).
    #[serde(default)]
    viewers: u64,
}

impl State {
    /// Whether `node` is dead as the registry and locks last read say (an unknown node is).
    fn judged_dead(&self, node: &str) -> bool {
        let Some(row) = self.nodes.iter().find(|n| n.id == node) else { return true };
        let healthy_for = self.healthy_since.map_or(Duration::ZERO, |t| t.elapsed());
        liveness::judge(row, self.held.contains(&row.lock_key), now_ms(), healthy_for).is_some()
    }
}

/// This node, cheap to clone.
#[derive(Clone)]
pub struct Cluster {
    inner: Arc<Inner>,
}

struct Inner {
    id: String,
    epoch: i64,
    store: Store,
    nats: async_nats::Client,
    health: watch::Sender<Health>,
    /// True once this node drains: its sessions move to other nodes.
    draining: watch::Sender<bool>,
    /// Written by the loops, read by joins; never held across an await.
    state: Mutex<State>,
}

struct State {
    draining: bool,
    load: i64,
    /// Live-stream viewers served here, announced with every status.
    viewers: u64,
    last_renewal: Instant,
    /// Since when renewals have succeeded without a gap (None while they fail).
    healthy_since: Option<Instant>,
    /// The registry and the held locks, as last read.
    nodes: Vec<NodeRow>,
    held: HashSet<i64>,
    /// Other nodes' statuses heard on NATS, with when.
    heard: HashMap<String, (Status, Instant)>,
    /// Another process registered with this node's id: stop for good.
    superseded: bool,
    /// When the renewal loop last ran, to notice that this process itself stood still.
    last_tick: Instant,
    /// Fenced until then whatever the renewals say (after a stall: long enough for every session
    /// to see it).
    fenced_until: Option<Instant>,
    /// Who owns a room, as read lately (`remote_owner`): every viewer of a council polls its
    /// state every 2 s through some node, and the answer changes only when the owner does.
    owners: HashMap<String, (Option<String>, Instant)>,
}

impl Cluster {
    /// Registers this node (a new epoch), takes its advisory lock, connects to NATS and starts
    /// the heartbeat and observer loops; they end when `shutdown` changes, after marking the node
    /// stopped.
    pub async fn join(
        store: Store,
        config: NodeConfig,
        shutdown: watch::Receiver<bool>,
    ) -> Result<(Cluster, JoinHandle<()>), ClusterError> {
        let node = NewNode {
            id: config.id.clone(),
            internal_url: config.internal_url.clone(),
            media_addr: config.media_addr.clone(),
            key_id: config.key_id.clone(),
        };
        // A node with another signing key would refuse every token the others issue (and
        // relayed joins with them): refused at start, naming a running node that differs.
        let held: HashSet<i64> = store.held_node_locks().await?.into_iter().collect();
        let registry = store.nodes().await?;
        if let Some(other) = registry.iter().find(|n| {
            n.id != config.id && held.contains(&n.lock_key) && !n.key_id.is_empty() && n.key_id != config.key_id
        }) {
            return Err(ClusterError::KeyMismatch(other.id.clone()));
        }
        // The lock first when the node is known: a second process started by mistake with a
        // running node's id must not take its epoch (and with it the running node's rooms).
        let (store_ref, id) = (&store, config.id.as_str());
        let hold = |key| async move {
            match store_ref.hold_node_lock(key).await {
                Err(StoreError::Conflict(_)) => Err(ClusterError::DuplicateNode(id.to_owned())),
                other => other.map_err(ClusterError::from),
            }
        };
        let known = registry.iter().find(|n| n.id == config.id).map(|n| n.lock_key);
        let early = match known {
            Some(key) => Some(hold(key).await?),
            None => None,
        };
        let registered = store.register_node(&node, now_ms()).await?;
        let lock = match early {
            Some(lock) if known == Some(registered.lock_key) => lock,
            _ => hold(registered.lock_key).await?,
        };
        let nats = async_nats::ConnectOptions::new()
            .name(format!("sportello {}", config.id))
            .retry_on_initial_connect()
            .connect(config.nats_url.as_str())
            .await
            .map_err(|e| ClusterError::Nats(e.to_string()))?;
        let now = Instant::now();
        let (health, _) = watch::channel(Health::Serving);
        let (draining, _) = watch::channel(false);
        let cluster = Cluster {
            inner: Arc::new(Inner {
                id: config.id.clone(),
                epoch: registered.epoch,
                store,
                nats,
                health,
                draining,
                state: Mutex::new(State {
                    draining: false,
                    load: 0,
                    viewers: 0,
                    last_renewal: now,
                    healthy_since: Some(now),
                    nodes: Vec::new(),
                    held: HashSet::new(),
                    heard: HashMap::new(),
                    superseded: false,
                    last_tick: now,
                    fenced_until: None,
                    owners: HashMap::new(),
                }),
            }),
        };
        // A first view of the others before any join is placed.
        cluster.observe().await;
        tracing::info!(node = %config.id, epoch = registered.epoch, "joined the cluster");
        let task = tokio::spawn(cluster.clone().run(registered.lock_key, lock, shutdown));
        Ok((cluster, task))
    }

    pub fn id(&self) -> &str {
        &self.inner.id
    }

    /// The NATS connection (the session relay uses it).
    pub fn nats(&self) -> &async_nats::Client {
        &self.inner.nats
    }

    pub fn health(&self) -> Health {
        *self.inner.health.borrow()
    }

    /// Changes whenever this node's health does (the server closes its rooms when fenced).
    pub fn watch_health(&self) -> watch::Receiver<Health> {
        self.inner.health.subscribe()
    }

    /// The live-stream viewers this node serves now (announced in its next status).
    pub fn set_viewers(&self, viewers: u64) {
        self.state().viewers = viewers;
    }

    /// The live-stream viewers the other live nodes announced lately (a node silent for
    /// [`STATUS_FRESH`], or judged dead, counts none: its viewers are gone, or asking here).
    pub fn viewers_elsewhere(&self) -> u64 {
        let now = Instant::now();
        let state = self.state();
        state
            .heard
            .iter()
            .filter(|(node, (_, at))| now.duration_since(*at) < STATUS_FRESH && !state.judged_dead(node))
            .map(|(_, (s, _))| s.viewers)
            .sum()
    }

    /// The sessions this node runs (reported in its heartbeat; new rooms go to the least loaded).
    pub fn set_load(&self, load: i64) {
        self.state().load = load;
    }

    /// Takes nothing new from now on (SIGTERM): gives up the ownership of its rooms, so that
    /// their next join anywhere claims them on a serving node, and tells its sessions to move
    /// ([`Cluster::watch_draining`]).
    pub async fn drain(&self) {
        self.state().draining = true;
        let store = &self.inner.store;
        match timeout(DB_TIMEOUT * 5, store.rooms_of(&self.inner.id)).await {
            Ok(Ok(rooms)) => {
                for owned in rooms {
                    self.release(&owned.room, owned.epoch).await;
                }
            }
            Ok(Err(error)) => tracing::warn!(%error, "rooms not released for the drain"),
            Err(_) => tracing::warn!("rooms not released for the drain in time"),
        }
        self.inner.draining.send_replace(true);
        tracing::info!(node = %self.inner.id, "draining: sessions move to the other nodes");
    }

    /// Turns true when this node drains: sessions here close (1012) and rejoin elsewhere.
    pub fn watch_draining(&self) -> watch::Receiver<bool> {
        self.inner.draining.subscribe()
    }

    /// Drain requests for this node (`sportello drain`, [`crate::drain`]), to answer on their
    /// reply subject.
    pub async fn drain_requests(&self) -> Result<async_nats::Subscriber, async_nats::SubscribeError> {
        self.inner.nats.subscribe(crate::drain::subject(&self.inner.id)).await
    }

    /// Answers a request received on a subscription of this node.
    pub async fn reply(&self, to: async_nats::Subject, payload: Vec<u8>) {
        if let Err(error) = self.inner.nats.publish(to, payload.into()).await {
            tracing::warn!(%error, "reply not sent");
        }
    }

    /// Whether this node drains (takes no new room or viewer).
    pub fn is_draining(&self) -> bool {
        self.state().draining
    }

    /// Whether joins may start here now.
    pub fn takes_joins(&self) -> bool {
        let state = self.state();
        !state.draining && !state.superseded && self.health() == Health::Serving
    }

    /// Where `room` runs for a join arriving here: on its live owner; else claimed (or, its owner
    /// dead, taken over) for the least loaded serving node — this one on a tie. `Unavailable`
    /// while this node cannot reach the database, or no node takes rooms.
    pub async fn place(&self, room: &str) -> Result<Placement, ClusterError> {
        // Without the database nobody can tell who owns the room (and a query would wait for
        // the pool's timeout): refused at once, the client tries again.
        if self.health() != Health::Serving {
            return Err(ClusterError::Unavailable);
        }
        let store = &self.inner.store;
        for _ in 0..3 {
            let owner = timeout(DB_TIMEOUT, store.room_owner(room)).await.map_err(|_| ClusterError::Unavailable)??;
            let placed = match owner {
                Some(o) if o.node == self.inner.id => return Ok(Placement::Local { epoch: o.epoch }),
                Some(o) if !o.node.is_empty() && !self.is_dead(&o.node) => {
                    return Ok(Placement::Remote { node: o.node });
                }
                // Nobody's, or its owner is dead: to the least loaded serving node.
                owner => {
                    let Some(to) = self.least_loaded() else { return Err(ClusterError::Unavailable) };
                    let placed = match owner {
                        Some(o) if !o.node.is_empty() => {
                            let epoch = store.take_over_room(room, o.epoch, &to, now_ms()).await?;
                            if epoch.is_some() {
                                tracing::warn!(room, from = %o.node, to, "room taken over from a dead node");
                            }
                            epoch
                        }
                        _ => store.claim_room(room, &to, now_ms()).await?,
                    };
                    placed.map(|epoch| (to, epoch))
                }
            };
            match placed {
                Some((to, epoch)) if to == self.inner.id => return Ok(Placement::Local { epoch }),
                Some((to, _)) => return Ok(Placement::Remote { node: to }),
                None => {}
            }
            // Someone else claimed or took it over meanwhile: read again.
        }
        Err(ClusterError::Contended)
    }

    /// Where a new room goes: the serving node with the least load (sessions, as their
    /// heartbeats last said), this one on a tie; `None` when no node takes rooms.
    fn least_loaded(&self) -> Option<String> {
        let me = self.takes_joins().then(|| (self.state().load, self.inner.id.clone()));
        let others = self
            .live_nodes()
            .into_iter()
            .filter(|n| n.id != self.inner.id && n.state == NodeState::Serving)
            .map(|n| (n.load, n.id));
        // Ties go to this node (no relay), then by id.
        me.into_iter()
            .chain(others)
            .min_by_key(|(load, id)| (*load, *id != self.inner.id, id.clone()))
            .map(|(_, id)| id)
    }

    /// The room closed here: the next join anywhere claims it afresh (its epoch goes on).
    pub async fn release(&self, room: &str, epoch: i64) {
        if let Err(error) = self.inner.store.release_room(room, &self.inner.id, epoch).await {
            tracing::warn!(room, %error, "room ownership not released; it passes on when this node is judged gone");
        }
    }

    /// The node that runs `room` when that is another live node (`None`: this one, nobody, a
    /// dead node — ask this node's own rooms; or the database did not answer in time).
    /// Read at most once per [`OWNER_FRESH`] per room (a takeover is seen that much later here).
    pub async fn remote_owner(&self, room: &str) -> Option<NodeRow> {
        let cached = self.state().owners.get(room).filter(|(_, at)| at.elapsed() < OWNER_FRESH).map(|(o, _)| o.clone());
        let owner = match cached {
            Some(owner) => owner,
            None => {
                let row = timeout(DB_TIMEOUT, self.inner.store.room_owner(room)).await.ok()?.ok()?;
                let owner = row.map(|r| r.node).filter(|n| !n.is_empty());
                let mut s = self.state();
                if s.owners.len() >= OWNERS_KEPT {
                    s.owners.retain(|_, (_, at)| at.elapsed() < OWNER_FRESH);
                }
                s.owners.insert(room.to_owned(), (owner.clone(), Instant::now()));
                owner
            }
        }?;
        if owner == self.inner.id || self.is_dead(&owner) {
            return None;
        }
        self.state().nodes.iter().find(|n| n.id == owner).cloned()
    }

    /// Whether `node` is dead as this node sees it now (an unknown node counts as dead).
    pub fn is_dead(&self, node: &str) -> bool {
        self.state().judged_dead(node)
    }

    /// The other nodes that are alive and serving, as last seen.
    pub fn live_nodes(&self) -> Vec<NodeRow> {
        let state = self.state();
        let healthy_for = state.healthy_since.map_or(Duration::ZERO, |t| t.elapsed());
        state
            .nodes
            .iter()
            .filter(|n| n.state != NodeState::Stopped)
            .filter(|n| liveness::judge(n, state.held.contains(&n.lock_key), now_ms(), healthy_for).is_none())
            .cloned()
            .collect()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The node's loops, each a task of its own so that a database that hangs delays neither the
    /// status on NATS nor what is heard there; they end with this future (aborted, or at shutdown
    /// after the node is marked stopped), the advisory lock's connection with them.
    async fn run(self, lock_key: i64, lock: NodeLock, mut shutdown: watch::Receiver<bool>) {
        let mut tasks = tokio::task::JoinSet::new();
        tasks.spawn(self.clone().renew_loop(lock_key, lock));
        tasks.spawn(self.clone().every(OBSERVE_EVERY, |c| async move { c.observe().await }));
        tasks.spawn(self.clone().every(STATUS_EVERY, |c| async move { c.publish_status().await }));
        tasks.spawn(self.clone().listen());
        let _ = shutdown.changed().await;
        let load = self.state().load;
        let stopped =
            self.inner.store.node_heartbeat(&self.inner.id, self.inner.epoch, NodeState::Stopped, load, now_ms());
        if let Err(error) = timeout(DB_TIMEOUT, stopped).await.unwrap_or(Ok(false)) {
            tracing::warn!(%error, "could not mark this node stopped");
        }
        tasks.abort_all();
        tracing::info!(node = %self.inner.id, "left the cluster");
    }

    async fn every<F, Fut>(self, period: Duration, work: F)
    where
        F: Fn(Cluster) -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            work(self.clone()).await;
        }
    }

    async fn renew_loop(self, lock_key: i64, lock: NodeLock) {
        let mut lock = Some(lock);
        let mut tick = tokio::time::interval(liveness::RENEW_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.renew(lock_key, &mut lock).await;
        }
    }

    /// The other nodes' statuses.
    async fn listen(self) {
        let mut statuses = match self.inner.nats.subscribe(STATUS_SUBJECT).await {
            Ok(s) => s,
            Err(error) => {
                tracing::error!(%error, "cannot hear the other nodes' statuses");
                return;
            }
        };
        while let Some(msg) = futures_util::StreamExt::next(&mut statuses).await {
            if let Ok(status) = serde_json::from_slice::<Status>(&msg.payload)
                && status.node != self.inner.id
            {
                self.state().heard.insert(status.node.clone(), (status, Instant::now()));
            }
        }
    }

    /// One renewal: heartbeat, lock, health, status on NATS.
    async fn renew(&self, lock_key: i64, lock: &mut Option<NodeLock>) {
        {
            // Frozen (SIGSTOP, a stuck VM): the others may have judged this node hung and taken
            // its rooms while nothing here ran; whatever the next renewal says, fence first.
            let mut s = self.state();
            let now = Instant::now();
            if liveness::stalled(now.duration_since(s.last_tick)) {
                tracing::warn!(stood_still = ?now.duration_since(s.last_tick), "this process stood still: fencing");
                s.fenced_until = Some(now + liveness::RENEW_EVERY * 2);
                s.healthy_since = None;
            }
        }
        let (state_now, load) = {
            let s = self.state();
            let registry_state = match (self.health(), s.draining) {
                (Health::Fenced, _) => NodeState::Fenced,
                (_, true) => NodeState::Draining,
                _ => NodeState::Serving,
            };
            (registry_state, s.load)
        };
        let store = &self.inner.store;
        // The heartbeat, and the lock's own connection (if it died — the database restarted —
        // the lock is taken again), at once: a renewal takes one database timeout at most.
        let beat =
            timeout(DB_TIMEOUT, store.node_heartbeat(&self.inner.id, self.inner.epoch, state_now, load, now_ms()));
        let check = async {
            match lock.as_mut() {
                Some(l) => matches!(timeout(DB_TIMEOUT, l.check()).await, Ok(Ok(()))),
                None => false,
            }
        };
        let (beat, lock_ok) = tokio::join!(beat, check);
        if !lock_ok {
            *lock = match timeout(DB_TIMEOUT, store.hold_node_lock(lock_key)).await {
                Ok(Ok(l)) => {
                    tracing::info!("node lock taken again");
                    Some(l)
                }
                Ok(Err(error)) => {
                    tracing::warn!(%error, "node lock lost and not taken again");
                    None
                }
                Err(_) => None,
            };
        }
        let now = Instant::now();
        {
            let mut s = self.state();
            match beat {
                Ok(Ok(true)) if lock.is_some() => {
                    s.last_renewal = now;
                    if s.fenced_until.is_none_or(|t| now >= t) {
                        s.healthy_since.get_or_insert(now);
                    }
                }
                Ok(Ok(false)) => {
                    if !s.superseded {
                        tracing::error!(node = %self.inner.id, "another process registered as this node: this one stops serving");
                    }
                    s.superseded = true;
                }
                Ok(Err(ref error)) => tracing::warn!(%error, "heartbeat not renewed"),
                _ => tracing::warn!("heartbeat not renewed in time"),
            }
            let since = now.duration_since(s.last_renewal);
            if since >= liveness::REFUSE_AFTER {
                s.healthy_since = None;
            }
            let others = self.others(&s, now);
            let mut health = liveness::health(since, others);
            if s.superseded || s.fenced_until.is_some_and(|t| now < t) {
                health = Health::Fenced;
            }
            self.inner.health.send_if_modified(|h| {
                let changed = *h != health;
                if changed {
                    tracing::warn!(from = ?*h, to = ?health, since_renewal = ?since, ?others, "node health changed");
                    *h = health;
                }
                changed
            });
            // From the end of a renewal: its own database timeouts are not standing still.
            s.last_tick = Instant::now();
        }
    }

    /// This node's status on NATS: how long ago it last renewed, whatever the database does.
    async fn publish_status(&self) {
        let status = {
            let s = self.state();
            Status {
                node: self.inner.id.clone(),
                renewed_ms_ago: u64::try_from(s.last_renewal.elapsed().as_millis()).unwrap_or(u64::MAX),
                viewers: s.viewers,
            }
        };
        if let Ok(payload) = serde_json::to_vec(&status) {
            let _ = self.inner.nats.publish(STATUS_SUBJECT, payload.into()).await;
        }
    }

    /// What this node hears of the others' database access.
    fn others(&self, s: &State, now: Instant) -> Others {
        let fresh: Vec<&Status> =
            s.heard.values().filter(|(_, at)| now.duration_since(*at) < STATUS_FRESH).map(|(st, _)| st).collect();
        if fresh.iter().any(|st| Duration::from_millis(st.renewed_ms_ago) < liveness::REFUSE_AFTER) {
            return Others::ReachDatabase;
        }
        if !fresh.is_empty() {
            return Others::Blind;
        }
        // Nothing heard: alone in the registry as last read (nobody could take over), or cut off.
        let serving_others = s.nodes.iter().filter(|n| n.id != self.inner.id && n.state == NodeState::Serving).count();
        if serving_others == 0 { Others::Blind } else { Others::Unknown }
    }

    /// Reads the registry and the held locks.
    async fn observe(&self) {
        let store = &self.inner.store;
        let read = async { Ok::<_, StoreError>((store.nodes().await?, store.held_node_locks().await?)) };
        if let Ok(Ok((nodes, held))) = timeout(DB_TIMEOUT, read).await {
            let mut s = self.state();
            s.nodes = nodes;
            s.held = held.into_iter().collect();
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}
