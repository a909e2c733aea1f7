//! The walk-in video desk's queue (`walkins`), its audit (`walkin_events`) and officials' calls to
//! each other (`staff_calls`). The queue lives here, not in memory, so a restart loses nobody, and
//! every change is a compare-and-set on the row's state, so two officials never take one citizen.

use sqlx::AnyConnection;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::rows::{self, new_id, new_sortable_id, placeholders};
use crate::{AuditEntry, Result, Store, StoreError, is_unique_violation};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WalkinState {
    /// In the office's queue.
    Waiting,
    /// Taken by an official (Prossimo or a callback): their room is `walkin-<id>`.
    Serving,
    /// Handed to a colleague who has not accepted yet; the citizen stays in the room.
    Transferring,
    /// Out of the live queue, waiting for the office to call back by email.
    Callback,
    Done,
    /// The citizen left the queue.
    Left,
    /// Lost: not seen within the grace period, or not there when called.
    Abandoned,
}

text_enum!(WalkinState {
    Waiting => "waiting", Serving => "serving", Transferring => "transferring", Callback => "callback",
    Done => "done", Left => "left", Abandoned => "abandoned",
});

impl WalkinState {
    /// Whether the walk-in is over (its room token no longer stands).
    pub fn is_over(self) -> bool {
        matches!(self, WalkinState::Done | WalkinState::Left | WalkinState::Abandoned)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Walkin {
    pub id: String,
    pub office_id: String,
    /// Queue order within the office, taken once at queueing.
    pub seq: i64,
    pub secret_hash: String,
    pub name: String,
    pub email: String,
    pub topic: String,
    pub service_id: Option<String>,
    pub lang: String,
    pub state: WalkinState,
    pub official_id: Option<String>,
    pub transfer_to: Option<String>,
    pub transfer_note: String,
    pub queued_at: i64,
    pub seen_at: i64,
    pub called_at: Option<i64>,
    pub ended_at: Option<i64>,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWalkin {
    pub office_id: String,
    pub secret_hash: String,
    pub name: String,
    pub email: String,
    pub topic: String,
    pub service_id: Option<String>,
    pub lang: String,
}

/// What a change does besides the state, written in the same statement.
#[derive(Debug, Clone, Default)]
pub struct WalkinChange<'a> {
    pub official_id: Option<&'a str>,
    pub transfer_to: Option<Option<&'a str>>,
    pub transfer_note: Option<&'a str>,
    pub email: Option<&'a str>,
    pub called: bool,
    pub ended: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallState {
    Ringing,
    Answered,
    Declined,
}

text_enum!(CallState { Ringing => "ringing", Answered => "answered", Declined => "declined" });

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffCall {
    pub id: String,
    pub room: String,
    pub from_user: String,
    pub to_user: String,
    pub note: String,
    pub state: CallState,
    pub created_at: i64,
    pub updated_at: i64,
}

const WALKIN_COLS: &str = "id, office_id, seq, secret_hash, name, email, topic, service_id, lang, state, \
     official_id, transfer_to, transfer_note, queued_at, seen_at, called_at, ended_at, updated_at";

fn walkin(row: &AnyRow) -> Result<Walkin> {
    Ok(Walkin {
        id: row.try_get("id")?,
        office_id: row.try_get("office_id")?,
        seq: row.try_get("seq")?,
        secret_hash: row.try_get("secret_hash")?,
        name: row.try_get("name")?,
        email: row.try_get("email")?,
        topic: row.try_get("topic")?,
        service_id: row.try_get("service_id")?,
        lang: row.try_get("lang")?,
        state: rows::text_enum(row, "state")?,
        official_id: row.try_get("official_id")?,
        transfer_to: row.try_get("transfer_to")?,
        transfer_note: row.try_get("transfer_note")?,
        queued_at: row.try_get("queued_at")?,
        seen_at: row.try_get("seen_at")?,
        called_at: row.try_get("called_at")?,
        ended_at: row.try_get("ended_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

const CALL_COLS: &str = "id, room, from_user, to_user, note, state, created_at, updated_at";

fn call(row: &AnyRow) -> Result<StaffCall> {
    Ok(StaffCall {
        id: row.try_get("id")?,
        room: row.try_get("room")?,
        from_user: row.try_get("from_user")?,
        to_user: row.try_get("to_user")?,
        note: row.try_get("note")?,
        state: rows::text_enum(row, "state")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

async fn event(conn: &mut AnyConnection, walkin: &str, at: i64, actor: &str, action: &str, detail: &str) -> Result<()> {
    sqlx::query("INSERT INTO walkin_events (id, walkin_id, at, actor, action, detail) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(new_sortable_id())
        .bind(walkin)
        .bind(at)
        .bind(actor)
        .bind(action)
        .bind(detail)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

async fn fetch(conn: &mut AnyConnection, id: &str) -> Result<Option<Walkin>> {
    let sql = format!("SELECT {WALKIN_COLS} FROM walkins WHERE id = $1");
    sqlx::query(&sql).bind(id).fetch_optional(&mut *conn).await?.as_ref().map(walkin).transpose()
}

/// The one compare-and-set every change is: `from` → `to` only if the row is still in `from`.
/// Returns whether it changed.
async fn swap(
    conn: &mut AnyConnection,
    id: &str,
    from: WalkinState,
    to: WalkinState,
    change: &WalkinChange<'_>,
    now: i64,
) -> Result<bool> {
    let mut sets = vec!["state = $1".to_owned(), "updated_at = $2".to_owned()];
    let mut n = 4; // $3 is the id, $4 the expected state
    let mut next = |column: &str| {
        n += 1;
        format!("{column} = ${n}")
    };
    if change.official_id.is_some() {
        sets.push(next("official_id"));
    }
    if change.transfer_to.is_some() {
        sets.push(next("transfer_to"));
    }
    if change.transfer_note.is_some() {
        sets.push(next("transfer_note"));
    }
    if change.email.is_some() {
        sets.push(next("email"));
    }
    if change.called {
        sets.push("called_at = COALESCE(called_at, $2)".to_owned());
    }
    if change.ended {
        sets.push("ended_at = $2".to_owned());
    }
    let sql = format!("UPDATE walkins SET {} WHERE id = $3 AND state = $4", sets.join(", "));
    let mut query = sqlx::query(&sql).bind(to.as_str()).bind(now).bind(id).bind(from.as_str());
    if let Some(official) = change.official_id {
        query = query.bind(official);
    }
    if let Some(to_user) = change.transfer_to {
        query = query.bind(to_user.map(str::to_owned));
    }
    if let Some(note) = change.transfer_note {
        query = query.bind(note);
    }
    if let Some(email) = change.email {
        query = query.bind(email);
    }
    Ok(query.execute(&mut *conn).await?.rows_affected() == 1)
}

/// Who may make a change: a check on the row as read inside the transaction.
pub type Guard<'a> = &'a (dyn Fn(&Walkin) -> bool + Sync);

impl Store {
    /// Queues a citizen at the end of the office's queue (audited `queued`). `NotFound` for an
    /// unknown office or service.
    pub async fn create_walkin(&self, new: &NewWalkin, now: i64) -> Result<Walkin> {
        let id = new_id();
        let id = &id;
        // Two queueing at once on PostgreSQL may take the same number: the loser tries again.
        let mut tries = 0;
        loop {
            tries += 1;
            match self.try_create_walkin(id, new, now).await {
                Err(StoreError::Conflict("walkin seq")) if tries < 10 => continue,
                Err(StoreError::Conflict("walkin seq")) => return Err(StoreError::Conflict("walkin")),
                other => return other,
            }
        }
    }

    async fn try_create_walkin(&self, id: &str, new: &NewWalkin, now: i64) -> Result<Walkin> {
        self.retrying("create_walkin", || async move {
            let mut tx = self.begin().await?;
            // One queueing at a time per office: the office row's lock (a no-op update, portable)
            // makes reading the next number and inserting it one step on PostgreSQL too, as
            // SQLite's `BEGIN IMMEDIATE` already does. Without it, concurrent citizens drew the
            // same number and ran out of retries.
            let office = sqlx::query("UPDATE offices SET desk_hours = desk_hours WHERE id = $1")
                .bind(&new.office_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if office == 0 {
                return Err(StoreError::NotFound);
            }
            let seq: i64 = sqlx::query("SELECT COALESCE(MAX(seq), 0) + 1 AS next FROM walkins WHERE office_id = $1")
                .bind(&new.office_id)
                .fetch_one(&mut *tx)
                .await?
                .try_get("next")?;
            let inserted = sqlx::query(
                "INSERT INTO walkins (id, office_id, seq, secret_hash, name, email, topic, service_id, lang, state, \
                 transfer_note, queued_at, seen_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'waiting', '', $10, $10, $10)",
            )
            .bind(id)
            .bind(&new.office_id)
            .bind(seq)
            .bind(&new.secret_hash)
            .bind(&new.name)
            .bind(&new.email)
            .bind(&new.topic)
            .bind(new.service_id.clone())
            .bind(&new.lang)
            .bind(now)
            .execute(&mut *tx)
            .await;
            match inserted {
                Ok(_) => {}
                Err(e) if is_unique_violation(&e) => return Err(StoreError::Conflict("walkin seq")),
                Err(e) if crate::is_foreign_key_violation(&e) => return Err(StoreError::NotFound),
                Err(e) => return Err(e.into()),
            }
            event(&mut tx, id, now, "citizen", "queued", "").await?;
            let row = fetch(&mut tx, id).await?.ok_or(StoreError::NotFound)?;
            tx.commit().await?;
            Ok(row)
        })
        .await
    }

    pub async fn walkin(&self, id: &str) -> Result<Option<Walkin>> {
        let sql = format!("SELECT {WALKIN_COLS} FROM walkins WHERE id = $1");
        sqlx::query(&sql).bind(id).fetch_optional(&self.pool).await?.as_ref().map(walkin).transpose()
    }

    /// The citizen's page asked: they are still there (the grace period restarts). Only a
    /// queued or called-back citizen is touched.
    pub async fn touch_walkin(&self, id: &str, now: i64) -> Result<()> {
        self.retrying("touch_walkin", || async move {
            sqlx::query("UPDATE walkins SET seen_at = $1 WHERE id = $2 AND state IN ('waiting', 'callback')")
                .bind(now)
                .bind(id)
                .execute(&self.pool)
                .await?;
            Ok(())
        })
        .await
    }

    /// Walk-ins of these offices in these states, in queue order (office, seq).
    pub async fn walkins_in(&self, office_ids: &[String], states: &[WalkinState]) -> Result<Vec<Walkin>> {
        if office_ids.is_empty() || states.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {WALKIN_COLS} FROM walkins WHERE office_id IN ({}) AND state IN ({}) ORDER BY office_id, seq",
            placeholders(1, office_ids.len()),
            placeholders(1 + office_ids.len(), states.len())
        );
        let mut query = sqlx::query(&sql);
        for id in office_ids {
            query = query.bind(id);
        }
        for state in states {
            query = query.bind(state.as_str());
        }
        query.fetch_all(&self.pool).await?.iter().map(walkin).collect()
    }

    /// Walk-ins served by, or handed to, this official and not over.
    pub async fn walkins_of_official(&self, user_id: &str) -> Result<Vec<Walkin>> {
        let sql = format!(
            "SELECT {WALKIN_COLS} FROM walkins WHERE state IN ('serving', 'transferring') \
             AND (official_id = $1 OR transfer_to = $1) ORDER BY called_at, id"
        );
        sqlx::query(&sql).bind(user_id).fetch_all(&self.pool).await?.iter().map(walkin).collect()
    }

    /// Officials serving a walk-in now (for presence).
    pub async fn officials_serving(&self) -> Result<Vec<String>> {
        let rows =
            sqlx::query("SELECT DISTINCT official_id FROM walkins WHERE state = 'serving' AND official_id IS NOT NULL")
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(|r| Ok(r.try_get("official_id")?)).collect()
    }

    /// Walk-ins queued in `[from, to)` at these offices (the figures).
    pub async fn walkins_queued_between(&self, office_ids: &[String], from: i64, to: i64) -> Result<Vec<Walkin>> {
        if office_ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {WALKIN_COLS} FROM walkins WHERE queued_at >= $1 AND queued_at < $2 AND office_id IN ({}) \
             ORDER BY queued_at, id",
            placeholders(3, office_ids.len())
        );
        let mut query = sqlx::query(&sql).bind(from).bind(to);
        for id in office_ids {
            query = query.bind(id);
        }
        query.fetch_all(&self.pool).await?.iter().map(walkin).collect()
    }

    /// Service durations (`ended − called`, seconds) of the office's walk-ins that ended after
    /// `since`: what the estimated wait is made of.
    pub async fn walkin_service_durations(&self, office_id: &str, since: i64) -> Result<Vec<i64>> {
        let rows = sqlx::query(
            "SELECT ended_at - called_at AS took FROM walkins WHERE office_id = $1 AND state = 'done' \
             AND ended_at > $2 AND called_at IS NOT NULL",
        )
        .bind(office_id)
        .bind(since)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok(r.try_get("took")?)).collect()
    }

    /// Waiting walk-ins of the office not seen since `seen_before` lose their place (audited
    /// `abandoned` by the system). Returns how many.
    pub async fn abandon_unseen(&self, office_id: &str, seen_before: i64, now: i64) -> Result<u64> {
        self.retrying("abandon_unseen", || async move {
            let mut tx = self.begin().await?;
            let stale: Vec<String> =
                sqlx::query("SELECT id FROM walkins WHERE office_id = $1 AND state = 'waiting' AND seen_at < $2")
                    .bind(office_id)
                    .bind(seen_before)
                    .fetch_all(&mut *tx)
                    .await?
                    .iter()
                    .map(|r| r.try_get("id"))
                    .collect::<std::result::Result<_, _>>()?;
            let mut n = 0;
            let change = WalkinChange { ended: true, ..Default::default() };
            for id in &stale {
                if swap(&mut tx, id, WalkinState::Waiting, WalkinState::Abandoned, &change, now).await? {
                    event(&mut tx, id, now, "system", "abandoned", "not seen within the grace period").await?;
                    n += 1;
                }
            }
            tx.commit().await?;
            Ok(n)
        })
        .await
    }

    /// «Prossimo»: the oldest waiting walk-in of the office seen since `seen_after` becomes
    /// `serving` with `official_id`, in one compare-and-set, so two officials pressing together get
    /// two different citizens. Older ones not seen since are marked abandoned on the way. `None`
    /// when nobody waits.
    pub async fn take_next_walkin(
        &self,
        office_id: &str,
        official_id: &str,
        seen_after: i64,
        now: i64,
    ) -> Result<Option<Walkin>> {
        self.retrying("take_next_walkin", || async move {
            let mut tx = self.begin().await?;
            let sql = format!(
                "SELECT {WALKIN_COLS} FROM walkins WHERE office_id = $1 AND state = 'waiting' ORDER BY seq LIMIT 8"
            );
            loop {
                let heads: Vec<Walkin> = sqlx::query(&sql)
                    .bind(office_id)
                    .fetch_all(&mut *tx)
                    .await?
                    .iter()
                    .map(walkin)
                    .collect::<Result<_>>()?;
                if heads.is_empty() {
                    tx.commit().await?;
                    return Ok(None);
                }
                for head in heads {
                    if head.seen_at < seen_after {
                        let change = WalkinChange { ended: true, ..Default::default() };
                        if swap(&mut tx, &head.id, WalkinState::Waiting, WalkinState::Abandoned, &change, now).await? {
                            event(&mut tx, &head.id, now, "system", "abandoned", "not seen within the grace period")
                                .await?;
                        }
                        continue;
                    }
                    let change = WalkinChange { official_id: Some(official_id), called: true, ..Default::default() };
                    // On PostgreSQL a concurrent taker's UPDATE waits for ours and then finds the
                    // row no longer waiting: it moves on to the next one.
                    if swap(&mut tx, &head.id, WalkinState::Waiting, WalkinState::Serving, &change, now).await? {
                        event(&mut tx, &head.id, now, &format!("user:{official_id}"), "called", "").await?;
                        let taken = fetch(&mut tx, &head.id).await?.ok_or(StoreError::NotFound)?;
                        tx.commit().await?;
                        return Ok(Some(taken));
                    }
                }
            }
        })
        .await
    }

    /// Changes a walk-in from one of `from` to `to` when `guard` accepts the row as read in the
    /// transaction; audited as `action` by `actor`. `NotFound` if absent; `InvalidWalkin` (the
    /// current state) when the state or the guard says no.
    #[allow(clippy::too_many_arguments)]
    pub async fn change_walkin(
        &self,
        id: &str,
        from: &[WalkinState],
        to: WalkinState,
        guard: Guard<'_>,
        change: &WalkinChange<'_>,
        actor: &str,
        action: &str,
        detail: &str,
        now: i64,
    ) -> Result<Walkin> {
        self.retrying("change_walkin", || async move {
            let mut tx = self.begin().await?;
            let current = fetch(&mut tx, id).await?.ok_or(StoreError::NotFound)?;
            if !from.contains(&current.state) || !guard(&current) {
                return Err(StoreError::InvalidWalkin(current.state));
            }
            if !swap(&mut tx, id, current.state, to, change, now).await? {
                // Changed between our read and our write (PostgreSQL): the caller sees it as it is now.
                let now_state = fetch(&mut tx, id).await?.map_or(current.state, |w| w.state);
                return Err(StoreError::InvalidWalkin(now_state));
            }
            event(&mut tx, id, now, actor, action, detail).await?;
            let changed = fetch(&mut tx, id).await?.ok_or(StoreError::NotFound)?;
            tx.commit().await?;
            Ok(changed)
        })
        .await
    }

    /// Every change of a walk-in, oldest first.
    pub async fn walkin_events(&self, id: &str) -> Result<Vec<AuditEntry>> {
        sqlx::query("SELECT at, actor, action, detail FROM walkin_events WHERE walkin_id = $1 ORDER BY at, id")
            .bind(id)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(rows::audit_entry)
            .collect()
    }

    /// The office's desk hours (JSON, as `opening_hours`). `NotFound` for an unknown office.
    pub async fn set_desk_hours(&self, office_id: &str, json: &str) -> Result<()> {
        let changed = self
            .retrying("set_desk_hours", || async move {
                Ok(sqlx::query("UPDATE offices SET desk_hours = $1 WHERE id = $2")
                    .bind(json)
                    .bind(office_id)
                    .execute(&self.pool)
                    .await?
                    .rows_affected())
            })
            .await?;
        if changed == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }

    pub async fn create_call(&self, room: &str, from: &str, to: &str, note: &str, now: i64) -> Result<StaffCall> {
        let c = StaffCall {
            id: new_id(),
            room: room.to_owned(),
            from_user: from.to_owned(),
            to_user: to.to_owned(),
            note: note.to_owned(),
            state: CallState::Ringing,
            created_at: now,
            updated_at: now,
        };
        let c = &c;
        self.retrying("create_call", || async move {
            sqlx::query(&format!("INSERT INTO staff_calls ({CALL_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)"))
                .bind(&c.id)
                .bind(&c.room)
                .bind(&c.from_user)
                .bind(&c.to_user)
                .bind(&c.note)
                .bind(c.state.as_str())
                .bind(c.created_at)
                .execute(&self.pool)
                .await
                .map_err(|e| if crate::is_foreign_key_violation(&e) { StoreError::NotFound } else { e.into() })?;
            Ok(())
        })
        .await?;
        Ok(c.clone())
    }

    pub async fn call(&self, id: &str) -> Result<Option<StaffCall>> {
        let sql = format!("SELECT {CALL_COLS} FROM staff_calls WHERE id = $1");
        sqlx::query(&sql).bind(id).fetch_optional(&self.pool).await?.as_ref().map(call).transpose()
    }

    /// Calls ringing for this user made after `since`, oldest first.
    pub async fn ringing_calls(&self, to_user: &str, since: i64) -> Result<Vec<StaffCall>> {
        let sql = format!(
            "SELECT {CALL_COLS} FROM staff_calls WHERE to_user = $1 AND state = 'ringing' AND created_at >= $2 \
             ORDER BY created_at, id"
        );
        sqlx::query(&sql).bind(to_user).bind(since).fetch_all(&self.pool).await?.iter().map(call).collect()
    }

    /// Whether `user` was called into `room` by a colleague since `since` (and did not decline).
    /// Calling someone in grants the caller nothing: they were serving the walk-in then, and once
    /// they hand it off their link no longer stands.
    pub async fn called_into(&self, room: &str, user: &str, since: i64) -> Result<bool> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM staff_calls WHERE room = $1 AND to_user = $2 \
             AND state <> 'declined' AND created_at >= $3",
        )
        .bind(room)
        .bind(user)
        .bind(since)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get::<i64, _>("n")? > 0)
    }

    /// Answers or declines a ringing call addressed to `to_user`. `NotFound` otherwise.
    pub async fn settle_call(&self, id: &str, to_user: &str, state: CallState, now: i64) -> Result<StaffCall> {
        let changed = self
            .retrying("settle_call", || async move {
                Ok(sqlx::query(
                    "UPDATE staff_calls SET state = $1, updated_at = $2 WHERE id = $3 AND to_user = $4 AND state = 'ringing'",
                )
                .bind(state.as_str())
                .bind(now)
                .bind(id)
                .bind(to_user)
                .execute(&self.pool)
                .await?
                .rows_affected())
            })
            .await?;
        if changed == 0 {
            return Err(StoreError::NotFound);
        }
        self.call(id).await?.ok_or(StoreError::NotFound)
    }

    /// Closes every walk-in queued before `before` that is not over (a queue left from an earlier
    /// day, a callback nobody made, a room nobody closed) as `abandoned`, audited by the system.
    /// Returns how many.
    pub async fn close_stale_walkins(&self, before: i64, now: i64) -> Result<u64> {
        self.retrying("close_stale_walkins", || async move {
            let mut tx = self.begin().await?;
            let stale: Vec<(String, String)> = sqlx::query(
                "SELECT id, state FROM walkins WHERE queued_at < $1 \
                 AND state IN ('waiting', 'serving', 'transferring', 'callback')",
            )
            .bind(before)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| Ok((r.try_get("id")?, r.try_get("state")?)))
            .collect::<Result<_>>()?;
            let mut n = 0;
            let change = WalkinChange { ended: true, ..Default::default() };
            for (id, state) in &stale {
                let from: WalkinState = state.parse().map_err(|e| StoreError::Corrupt(format!("state: {e}")))?;
                if swap(&mut tx, id, from, WalkinState::Abandoned, &change, now).await? {
                    event(&mut tx, id, now, "system", "abandoned", &format!("still {state} at the end of the day"))
                        .await?;
                    n += 1;
                }
            }
            tx.commit().await?;
            Ok(n)
        })
        .await
    }

    /// Blanks the name, email and topic of walk-ins over and queued before `before` (what the
    /// figures need stays: office, service, instants, outcome), and deletes calls made before it.
    pub async fn forget_walkin_people_before(&self, before: i64) -> Result<u64> {
        self.retrying("forget_walkin_people_before", || async move {
            let mut tx = self.begin().await?;
            let n = sqlx::query(
                "UPDATE walkins SET name = '', email = '', topic = '', transfer_note = '' WHERE queued_at < $1 \
                 AND state IN ('done', 'left', 'abandoned') AND (name <> '' OR email <> '' OR topic <> '')",
            )
            .bind(before)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            sqlx::query("DELETE FROM staff_calls WHERE created_at < $1").bind(before).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(n)
        })
        .await
    }
}
