//! Several nodes on one database (`migrations/0008_cluster.sql`): the node registry, room
//! ownership with its fencing token, and leases for work one node must do at a time.
//!
//! What this module guarantees is only what the database can: a node row per id with a new epoch
//! per start, one owner per room with an epoch that grows at every change of owner, a lease held
//! by one holder at a time, and — for a [`Store::fenced`] store — no write of a room's that commits
//! after its owner changed. Who is alive, when to take a room over and when to fence oneself are
//! decided above (`sportello-cluster`), from these rows and `now`.
//!
//! Times here are milliseconds since the Unix epoch (the rest of the store keeps seconds): a
//! crashed node is to be noticed within a second.

use std::sync::Arc;

use sqlx::Row;

use crate::{Backend, Result, Store, StoreError};

/// The first key of the two-key PostgreSQL advisory locks that say a node is alive (`'SPRT'`); the
/// second is the node's `lock_key`.
pub const NODE_LOCK_CLASS: i32 = 0x5350_5254;

/// A node's row, as it writes it at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNode {
    pub id: String,
    pub internal_url: String,
    pub media_addr: String,
    /// Which token signing key the node holds (`TokenKey::key_id`): every node must hold the same.
    pub key_id: String,
}

/// What a node is doing, as the registry says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeState {
    /// Takes new rooms and joins.
    Serving,
    /// Takes nothing new; its rooms move or end by a deadline.
    Draining,
    /// Lost the database for too long: took nothing new and closed its rooms.
    Fenced,
    /// Shut down cleanly.
    Stopped,
}

text_enum!(NodeState { Serving => "serving", Draining => "draining", Fenced => "fenced", Stopped => "stopped" });

/// A row of `nodes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRow {
    pub id: String,
    pub lock_key: i64,
    pub epoch: i64,
    pub internal_url: String,
    pub media_addr: String,
    pub state: NodeState,
    pub load: i64,
    pub key_id: String,
    pub started_at: i64,
    pub heartbeat_at: i64,
}

/// A node registered for this process's life: its row's epoch and the key of its advisory lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Registered {
    pub epoch: i64,
    pub lock_key: i64,
}

/// Who runs a room, and the fencing token of that ownership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomOwner {
    pub room: String,
    /// Empty once released (the row stays, so the next claim continues the epoch).
    pub node: String,
    pub epoch: i64,
    pub claimed_at: i64,
}

/// The ownership a [`Store::fenced`] store writes under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    pub room: String,
    pub epoch: i64,
}

impl Store {
    // --- the node registry -------------------------------------------------------------------------

    /// Writes this node's row at start: a new row (epoch 1, the next free lock key) or the same id
    /// again with its epoch + 1, serving. Two processes started with one id get different epochs,
    /// and the older one's heartbeats stop matching ([`Store::node_heartbeat`]).
    pub async fn register_node(&self, node: &NewNode, now_ms: i64) -> Result<Registered> {
        // Two new nodes taking the same next lock key at once: the loser takes the one after.
        for _ in 0..3 {
            match self.register_node_once(node, now_ms).await {
                Err(StoreError::Conflict("node")) => continue,
                other => return other,
            }
        }
        Err(StoreError::Conflict("node"))
    }

    async fn register_node_once(&self, node: &NewNode, now_ms: i64) -> Result<Registered> {
        self.retrying("register_node", || async move {
            let mut tx = self.begin().await?;
            let existing = sqlx::query("SELECT lock_key, epoch FROM nodes WHERE id = $1")
                .bind(&node.id)
                .fetch_optional(&mut *tx)
                .await?;
            let registered = match existing {
                Some(row) => {
                    let registered =
                        Registered { lock_key: row.try_get("lock_key")?, epoch: row.try_get::<i64, _>("epoch")? + 1 };
                    sqlx::query(
                        "UPDATE nodes SET epoch = $1, internal_url = $2, media_addr = $3, state = 'serving', load = 0, \
                         started_at = $4, heartbeat_at = $4, key_id = $6 WHERE id = $5",
                    )
                    .bind(registered.epoch)
                    .bind(&node.internal_url)
                    .bind(&node.media_addr)
                    .bind(now_ms)
                    .bind(&node.id)
                    .bind(&node.key_id)
                    .execute(&mut *tx)
                    .await?;
                    registered
                }
                None => {
                    let next: i64 = sqlx::query("SELECT COALESCE(MAX(lock_key), 0) + 1 FROM nodes")
                        .fetch_one(&mut *tx)
                        .await?
                        .try_get(0)?;
                    sqlx::query(
                        "INSERT INTO nodes (id, lock_key, epoch, internal_url, media_addr, state, load, started_at, \
                         heartbeat_at, key_id) VALUES ($1, $2, 1, $3, $4, 'serving', 0, $5, $5, $6)",
                    )
                    .bind(&node.id)
                    .bind(next)
                    .bind(&node.internal_url)
                    .bind(&node.media_addr)
                    .bind(now_ms)
                    .bind(&node.key_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| {
                        if crate::is_unique_violation(&e) { StoreError::Conflict("node") } else { e.into() }
                    })?;
                    Registered { lock_key: next, epoch: 1 }
                }
            };
            tx.commit().await?;
            Ok(registered)
        })
        .await
    }

    /// Renews this node's heartbeat, state and load. False when the row has a newer epoch: another
    /// process registered with this node's id, and this one must stop as a node.
    pub async fn node_heartbeat(&self, id: &str, epoch: i64, state: NodeState, load: i64, now_ms: i64) -> Result<bool> {
        let changed =
            sqlx::query("UPDATE nodes SET heartbeat_at = $1, state = $2, load = $3 WHERE id = $4 AND epoch = $5")
                .bind(now_ms)
                .bind(state.as_str())
                .bind(load)
                .bind(id)
                .bind(epoch)
                .execute(&self.pool)
                .await?
                .rows_affected();
        Ok(changed == 1)
    }

    /// Every registered node, by id.
    pub async fn nodes(&self) -> Result<Vec<NodeRow>> {
        let rows = sqlx::query(
            "SELECT id, lock_key, epoch, internal_url, media_addr, state, load, key_id, started_at, heartbeat_at \
             FROM nodes ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(NodeRow {
                    id: r.try_get("id")?,
                    lock_key: r.try_get("lock_key")?,
                    epoch: r.try_get("epoch")?,
                    internal_url: r.try_get("internal_url")?,
                    media_addr: r.try_get("media_addr")?,
                    state: r.try_get::<String, _>("state")?.parse().map_err(StoreError::Corrupt)?,
                    load: r.try_get("load")?,
                    key_id: r.try_get("key_id")?,
                    started_at: r.try_get("started_at")?,
                    heartbeat_at: r.try_get("heartbeat_at")?,
                })
            })
            .collect()
    }

    /// The lock keys whose node holds its advisory lock now (PostgreSQL only: SQLite runs one node).
    /// A process that dies loses its connection and with it its lock, at once.
    pub async fn held_node_locks(&self) -> Result<Vec<i64>> {
        if self.backend != Backend::Postgres {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(
            "SELECT objid::bigint AS key FROM pg_locks WHERE locktype = 'advisory' AND granted \
             AND classid::bigint = $1 AND objsubid = 2 \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
        .bind(i64::from(NODE_LOCK_CLASS))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(|r| r.try_get("key")).collect::<std::result::Result<_, _>>()?)
    }

    /// Takes this node's advisory lock on a connection of its own, held (with the lock) until the
    /// returned guard is dropped or the process dies. PostgreSQL only. `Conflict` if another
    /// process holds it: the same node id is running elsewhere.
    pub async fn hold_node_lock(&self, lock_key: i64) -> Result<NodeLock> {
        if self.backend != Backend::Postgres {
            return Err(StoreError::Invalid("node locks need PostgreSQL"));
        }
        let key = i32::try_from(lock_key).map_err(|_| StoreError::Invalid("node lock key"))?;
        // A connection outside the pool: the pool may close idle connections, which would drop the lock.
        let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&self.url).await?;
        let got: bool = sqlx::query("SELECT pg_try_advisory_lock($1, $2)")
            .bind(NODE_LOCK_CLASS)
            .bind(key)
            .fetch_one(&mut conn)
            .await?
            .try_get(0)?;
        if !got {
            return Err(StoreError::Conflict("node lock"));
        }
        Ok(NodeLock { conn })
    }

    // --- room ownership ----------------------------------------------------------------------------

    /// The room's owner row, if it was ever claimed.
    pub async fn room_owner(&self, room: &str) -> Result<Option<RoomOwner>> {
        let row = sqlx::query("SELECT room, node, epoch, claimed_at FROM room_owners WHERE room = $1")
            .bind(room)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(owner).transpose()
    }

    /// The rooms `node` owns.
    pub async fn rooms_of(&self, node: &str) -> Result<Vec<RoomOwner>> {
        let rows = sqlx::query("SELECT room, node, epoch, claimed_at FROM room_owners WHERE node = $1 ORDER BY room")
            .bind(node)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(owner).collect()
    }

    /// Claims a room nobody owns (never claimed, or released): its new epoch, or `None` when a
    /// node owns it.
    pub async fn claim_room(&self, room: &str, node: &str, now_ms: i64) -> Result<Option<i64>> {
        if node.is_empty() {
            return Err(StoreError::Invalid("node id"));
        }
        let row = self
            .retrying("claim_room", || async move {
                // The same ON CONFLICT … DO UPDATE … WHERE … RETURNING in SQLite (>= 3.35) and
                // PostgreSQL; a row that is not released is left alone and returns nothing.
                Ok(sqlx::query(
                    "INSERT INTO room_owners (room, node, epoch, claimed_at) VALUES ($1, $2, 1, $3) \
                     ON CONFLICT (room) DO UPDATE SET node = excluded.node, epoch = room_owners.epoch + 1, \
                     claimed_at = excluded.claimed_at WHERE room_owners.node = '' RETURNING epoch",
                )
                .bind(room)
                .bind(node)
                .bind(now_ms)
                .fetch_optional(&self.pool)
                .await?)
            })
            .await?;
        Ok(row.map(|r| r.try_get("epoch")).transpose()?)
    }

    /// Takes a room over from the owner of `epoch` (judged dead or gone by the caller): the new
    /// epoch, or `None` when the room changed owner meanwhile (someone else took it over first).
    pub async fn take_over_room(&self, room: &str, epoch: i64, node: &str, now_ms: i64) -> Result<Option<i64>> {
        if node.is_empty() {
            return Err(StoreError::Invalid("node id"));
        }
        let row = self
            .retrying("take_over_room", || async move {
                Ok(sqlx::query(
                    "UPDATE room_owners SET node = $1, epoch = epoch + 1, claimed_at = $2 WHERE room = $3 AND epoch = $4 \
                     RETURNING epoch",
                )
                .bind(node)
                .bind(now_ms)
                .bind(room)
                .bind(epoch)
                .fetch_optional(&self.pool)
                .await?)
            })
            .await?;
        Ok(row.map(|r| r.try_get("epoch")).transpose()?)
    }

    /// The room closed on its owner: the next claim continues from this epoch. False if it was no
    /// longer this owner's.
    pub async fn release_room(&self, room: &str, node: &str, epoch: i64) -> Result<bool> {
        let changed = self
            .retrying("release_room", || async move {
                Ok(sqlx::query("UPDATE room_owners SET node = '' WHERE room = $1 AND node = $2 AND epoch = $3")
                    .bind(room)
                    .bind(node)
                    .bind(epoch)
                    .execute(&self.pool)
                    .await?
                    .rows_affected())
            })
            .await?;
        Ok(changed == 1)
    }

    /// This store, writing for `room` under ownership `epoch`: every transaction it begins first
    /// checks that the room is still owned with that epoch (and, on PostgreSQL, holds the owner row
    /// shared until it commits, so a takeover waits for the write or the write sees the takeover).
    /// A write after the owner changed fails with [`StoreError::Fenced`] and changes nothing.
    pub fn fenced(&self, room: &str, epoch: i64) -> Store {
        Store { fence: Some(Arc::new(Fence { room: room.to_owned(), epoch })), ..self.clone() }
    }

    /// The check [`Store::fenced`] adds at the start of each transaction.
    pub(crate) async fn check_fence(&self, tx: &mut sqlx::Transaction<'static, sqlx::Any>) -> Result<()> {
        let Some(fence) = &self.fence else { return Ok(()) };
        let sql = match self.backend {
            Backend::Postgres => "SELECT epoch FROM room_owners WHERE room = $1 FOR SHARE",
            // BEGIN IMMEDIATE already holds the database's one write lock.
            Backend::Sqlite => "SELECT epoch FROM room_owners WHERE room = $1",
        };
        let current: Option<i64> =
            sqlx::query(sql).bind(&fence.room).fetch_optional(&mut **tx).await?.map(|r| r.try_get(0)).transpose()?;
        if current == Some(fence.epoch) {
            Ok(())
        } else {
            Err(StoreError::Fenced { room: fence.room.clone(), epoch: fence.epoch, current })
        }
    }

    // --- leases ------------------------------------------------------------------------------------

    /// Takes lease `name` for `holder` until `until_ms` if it is free, expired or already
    /// `holder`'s. True when taken: nobody else holds it before `until_ms`.
    pub async fn take_lease(&self, name: &str, holder: &str, now_ms: i64, until_ms: i64) -> Result<bool> {
        let taken = self
            .retrying("take_lease", || async move {
                Ok(sqlx::query(
                    "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
                     WHERE leases.expires_at <= $4 OR leases.holder = excluded.holder",
                )
                .bind(name)
                .bind(holder)
                .bind(until_ms)
                .bind(now_ms)
                .execute(&self.pool)
                .await?
                .rows_affected())
            })
            .await?;
        Ok(taken == 1)
    }

    /// Gives lease `name` back (only if `holder` holds it).
    pub async fn release_lease(&self, name: &str, holder: &str) -> Result<()> {
        self.retrying("release_lease", || async move {
            sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
                .bind(name)
                .bind(holder)
                .execute(&self.pool)
                .await?;
            Ok(())
        })
        .await
    }

    /// Forgets leases that ended before `cutoff_ms` (an item's lease whose holder died before
    /// releasing it). Returns how many.
    pub async fn delete_expired_leases(&self, cutoff_ms: i64) -> Result<u64> {
        self.retrying("delete_expired_leases", || async move {
            Ok(sqlx::query("DELETE FROM leases WHERE expires_at < $1")
                .bind(cutoff_ms)
                .execute(&self.pool)
                .await?
                .rows_affected())
        })
        .await
    }
}

/// A node's advisory lock, held by its own database connection for as long as this lives.
pub struct NodeLock {
    conn: sqlx::AnyConnection,
}

impl NodeLock {
    /// One round trip on the lock's connection: an error means the connection — and the lock with
    /// it — is gone.
    pub async fn check(&mut self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&mut self.conn).await?;
        Ok(())
    }
}

impl std::fmt::Debug for NodeLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeLock").finish_non_exhaustive()
    }
}

fn owner(r: &sqlx::any::AnyRow) -> Result<RoomOwner> {
    Ok(RoomOwner {
        room: r.try_get("room")?,
        node: r.try_get("node")?,
        epoch: r.try_get("epoch")?,
        claimed_at: r.try_get("claimed_at")?,
    })
}
