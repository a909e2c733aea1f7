//! Admissions through a room's waiting room (`room_admissions`): written when a held participant
//! enters, deleted when they leave, read at join so that someone who was inside when the server
//! stopped does not wait again. One row per (room, identity); no transaction spans more.

use crate::{Result, Store};

impl Store {
    /// `identity` entered `room` through its lobby (again: the first instant is kept).
    pub async fn record_admission(&self, room: &str, identity: &str, now: i64) -> Result<()> {
        self.retrying("record_admission", || async move {
            let mut tx = self.begin().await?;
            // The same ON CONFLICT syntax in SQLite (>= 3.24) and PostgreSQL.
            sqlx::query(
                "INSERT INTO room_admissions (room, identity, admitted_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (room, identity) DO NOTHING",
            )
            .bind(room)
            .bind(identity)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    /// Whether `identity` is admitted to `room` (entered through the lobby and not left since).
    pub async fn is_admitted(&self, room: &str, identity: &str) -> Result<bool> {
        let row = sqlx::query("SELECT 1 FROM room_admissions WHERE room = $1 AND identity = $2")
            .bind(room)
            .bind(identity)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    /// `identity` left `room` (or did not come back in time): the next join waits again.
    pub async fn forget_admission(&self, room: &str, identity: &str) -> Result<()> {
        self.retrying("forget_admission", || async move {
            let mut tx = self.begin().await?;
            sqlx::query("DELETE FROM room_admissions WHERE room = $1 AND identity = $2")
                .bind(room)
                .bind(identity)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    /// Admissions older than `cutoff`: people inside a room when the server stopped who never came
    /// back (every other row goes when its holder leaves). Returns how many went.
    pub async fn forget_admissions_before(&self, cutoff: i64) -> Result<u64> {
        self.retrying("forget_admissions_before", || async move {
            let done = sqlx::query("DELETE FROM room_admissions WHERE admitted_at < $1")
                .bind(cutoff)
                .execute(&self.pool)
                .await?;
            Ok(done.rows_affected())
        })
        .await
    }
}
