//! Staff sessions (`0005_sessions.sql`): one row per login. The edge signs the row's id into the
//! session cookie and checks the row on every request; deleting it ends the session at once.

use sqlx::Row;

use crate::rows::new_id;
use crate::{Result, Store, StoreError, is_foreign_key_violation};

impl Store {
    /// A new session of `user_id` valid until `expires_at`; returns its id. `NotFound` if the user
    /// does not exist.
    pub async fn create_session(&self, user_id: &str, now: i64, expires_at: i64) -> Result<String> {
        let id = new_id();
        let id_ref = &id;
        self.retrying("create_session", || async move {
            sqlx::query("INSERT INTO staff_sessions (id, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)")
                .bind(id_ref)
                .bind(user_id)
                .bind(now)
                .bind(expires_at)
                .execute(&self.pool)
                .await
                .map_err(|e| if is_foreign_key_violation(&e) { StoreError::NotFound } else { e.into() })?;
            Ok(())
        })
        .await?;
        Ok(id)
    }

    /// The user of session `id` while it exists and has not expired at `now`.
    pub async fn session_user(&self, id: &str, now: i64) -> Result<Option<String>> {
        let row = sqlx::query("SELECT user_id FROM staff_sessions WHERE id = $1 AND expires_at > $2")
            .bind(id)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("user_id")).transpose()?)
    }

    /// Ends one session (logout); an unknown id is fine.
    pub async fn delete_session(&self, id: &str) -> Result<()> {
        self.retrying("delete_session", || async move {
            sqlx::query("DELETE FROM staff_sessions WHERE id = $1").bind(id).execute(&self.pool).await?;
            Ok(())
        })
        .await
    }

    /// Ends every session of `user_id`; returns how many there were.
    pub async fn delete_user_sessions(&self, user_id: &str) -> Result<u64> {
        self.retrying("delete_user_sessions", || async move {
            Ok(sqlx::query("DELETE FROM staff_sessions WHERE user_id = $1")
                .bind(user_id)
                .execute(&self.pool)
                .await?
                .rows_affected())
        })
        .await
    }

    /// Deletes the sessions expired at `now` (the retention pass).
    pub async fn delete_expired_sessions(&self, now: i64) -> Result<u64> {
        self.retrying("delete_expired_sessions", || async move {
            Ok(sqlx::query("DELETE FROM staff_sessions WHERE expires_at <= $1")
                .bind(now)
                .execute(&self.pool)
                .await?
                .rows_affected())
        })
        .await
    }
}
