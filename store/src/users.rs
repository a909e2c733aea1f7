//! Settings, staff users and their one-time setup links.

use sqlx::Row;

use crate::rows::{self, USER_COLS, new_id};
use crate::{NewUser, Result, Store, StoreError, User, UserUpdate, is_foreign_key_violation, is_unique_violation};

impl Store {
    // --- settings -------------------------------------------------------------------------------

    pub async fn setting(&self, key: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT value FROM settings WHERE key = $1").bind(key).fetch_optional(&self.pool).await?;
        Ok(row.map(|r| r.try_get("value")).transpose()?)
    }

    /// Every setting whose key starts with `prefix` (a few rows: one query for a whole page).
    pub async fn settings_with_prefix(&self, prefix: &str) -> Result<std::collections::HashMap<String, String>> {
        let rows = sqlx::query("SELECT key, value FROM settings WHERE substr(key, 1, $1) = $2")
            .bind(i32::try_from(prefix.chars().count()).unwrap_or(i32::MAX))
            .bind(prefix)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| Ok((r.try_get("key")?, r.try_get("value")?))).collect()
    }

    pub async fn delete_setting(&self, key: &str) -> Result<()> {
        self.retrying("delete_setting", || async move {
            sqlx::query("DELETE FROM settings WHERE key = $1").bind(key).execute(&self.pool).await?;
            Ok(())
        })
        .await
    }

    pub async fn set_setting(&self, key: &str, value: &str) -> Result<()> {
        // Upsert: the same ON CONFLICT syntax in SQLite (>= 3.24) and PostgreSQL.
        self.retrying("set_setting", || async move {
            sqlx::query(
                "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )
            .bind(key)
            .bind(value)
            .execute(&self.pool)
            .await?;
            Ok(())
        })
        .await
    }

    // --- users ----------------------------------------------------------------------------------

    /// `Conflict("email")` when the (lower-cased) email exists.
    pub async fn create_user(&self, new: &NewUser, now: i64) -> Result<User> {
        let user = new_user(new, now);
        let u = &user;
        self.retrying("create_user", || async move { insert_user(&self.pool, u).await }).await?;
        Ok(user)
    }

    pub async fn user(&self, id: &str) -> Result<Option<User>> {
        let sql = format!("SELECT {USER_COLS} FROM users WHERE id = $1");
        let row = sqlx::query(&sql).bind(id).fetch_optional(&self.pool).await?;
        row.as_ref().map(rows::user).transpose()
    }

    pub async fn user_by_email(&self, email: &str) -> Result<Option<User>> {
        let sql = format!("SELECT {USER_COLS} FROM users WHERE email = $1");
        let row = sqlx::query(&sql).bind(normalize_email(email)).fetch_optional(&self.pool).await?;
        row.as_ref().map(rows::user).transpose()
    }

    /// All users, by display name.
    pub async fn users(&self) -> Result<Vec<User>> {
        let sql = format!("SELECT {USER_COLS} FROM users ORDER BY display_name, email");
        sqlx::query(&sql).fetch_all(&self.pool).await?.iter().map(rows::user).collect()
    }

    pub async fn count_users(&self) -> Result<i64> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM users").fetch_one(&self.pool).await?.try_get("n")?)
    }

    /// Updates name, role, active flag and working pattern; deactivating also ends every session of
    /// the user (same transaction). `NotFound` if absent.
    pub async fn update_user(&self, id: &str, update: &UserUpdate) -> Result<User> {
        let changed = self
            .retrying("update_user", || async move {
                let mut tx = self.begin().await?;
                let changed = sqlx::query(
                    "UPDATE users SET display_name = $1, role = $2, active = $3, pattern = $4 WHERE id = $5",
                )
                .bind(&update.display_name)
                .bind(update.role.as_str())
                .bind(i64::from(update.active))
                .bind(update.pattern.as_deref())
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if !update.active {
                    sqlx::query("DELETE FROM staff_sessions WHERE user_id = $1").bind(id).execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(changed)
            })
            .await?;
        if changed == 0 {
            return Err(StoreError::NotFound);
        }
        self.user(id).await?.ok_or(StoreError::NotFound)
    }

    /// Sets the hash and `password_changed_at = now`, and in the same transaction ends every session
    /// of the user and voids their outstanding setup links (a reset link must not outlive the
    /// password it was meant to replace). `NotFound` if absent.
    pub async fn set_password(&self, user_id: &str, password_hash: &str, now: i64) -> Result<()> {
        let changed = self
            .retrying("set_password", || async move {
                let mut tx = self.begin().await?;
                let changed =
                    sqlx::query("UPDATE users SET password_hash = $1, password_changed_at = $2 WHERE id = $3")
                        .bind(password_hash)
                        .bind(now)
                        .bind(user_id)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                sqlx::query("DELETE FROM staff_sessions WHERE user_id = $1").bind(user_id).execute(&mut *tx).await?;
                revoke_setup_tokens(&mut tx, user_id, now).await?;
                tx.commit().await?;
                Ok(changed)
            })
            .await?;
        if changed == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }

    /// `NotFound` if the user does not exist, `Conflict("token")` if the hash does.
    pub async fn create_setup_token(&self, user_id: &str, token_hash: &str, expires_at: i64) -> Result<()> {
        self.retrying("create_setup_token", || async move {
            sqlx::query(
                "INSERT INTO setup_tokens (token_hash, user_id, expires_at, used_at) VALUES ($1, $2, $3, NULL)",
            )
            .bind(token_hash)
            .bind(user_id)
            .bind(expires_at)
            .execute(&self.pool)
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::Conflict("token")
                } else if is_foreign_key_violation(&e) {
                    StoreError::NotFound
                } else {
                    e.into()
                }
            })?;
            Ok(())
        })
        .await
    }

    /// Marks the token used and returns its user, atomically: a second call (or a concurrent one)
    /// gets `None`, as do expired tokens. The user's other outstanding tokens are voided in the same
    /// transaction: of several links sent to one person, the first one used is the only one.
    pub async fn take_setup_token(&self, token_hash: &str, now: i64) -> Result<Option<String>> {
        // One conditional UPDATE is the claim: of concurrent callers exactly one sees a changed row
        // (PostgreSQL re-checks the WHERE after waiting on the row lock; SQLite serializes writers).
        // A concurrent take of a sibling token waits on the rows voided here and then finds them used.
        self.retrying("take_setup_token", || async move {
            let mut tx = self.begin().await?;
            let row = sqlx::query(
                "UPDATE setup_tokens SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1 \
                 RETURNING user_id",
            )
            .bind(now)
            .bind(token_hash)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(row) = row else { return Ok(None) };
            let user_id: String = row.try_get("user_id")?;
            revoke_setup_tokens(&mut tx, &user_id, now).await?;
            tx.commit().await?;
            Ok(Some(user_id))
        })
        .await
    }
}

/// Marks every still-unused setup token of `user_id` used at `now`.
async fn revoke_setup_tokens(tx: &mut sqlx::Transaction<'static, sqlx::Any>, user_id: &str, now: i64) -> Result<()> {
    sqlx::query("UPDATE setup_tokens SET used_at = $1 WHERE user_id = $2 AND used_at IS NULL")
        .bind(now)
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The row a new staff member starts with: active, no password yet.
pub(crate) fn new_user(new: &NewUser, now: i64) -> User {
    User {
        id: new_id(),
        email: normalize_email(&new.email),
        display_name: new.display_name.clone(),
        role: new.role,
        password_hash: None,
        active: true,
        pattern: None,
        password_changed_at: 0,
        created_at: now,
    }
}

/// Inserts a [`new_user`] row (on the pool or inside a transaction); `Conflict("email")` when the
/// email exists.
pub(crate) async fn insert_user<'c, E>(executor: E, u: &User) -> Result<()>
where
    E: sqlx::Executor<'c, Database = sqlx::Any>,
{
    sqlx::query(
        "INSERT INTO users (id, email, display_name, role, password_hash, active, pattern, \
         password_changed_at, created_at) VALUES ($1, $2, $3, $4, NULL, 1, NULL, 0, $5)",
    )
    .bind(&u.id)
    .bind(&u.email)
    .bind(&u.display_name)
    .bind(u.role.as_str())
    .bind(u.created_at)
    .execute(executor)
    .await
    .map_err(|e| if is_unique_violation(&e) { StoreError::Conflict("email") } else { e.into() })?;
    Ok(())
}

fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}
