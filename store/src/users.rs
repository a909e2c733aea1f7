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
        let user = User {
            id: new_id(),
            email: normalize_email(&new.email),
            display_name: new.display_name.clone(),
            role: new.role,
            password_hash: None,
            active: true,
            pattern: None,
            password_changed_at: 0,
            created_at: now,
        };
        let u = &user;
        self.retrying("create_user", || async move {
            sqlx::query(
                "INSERT INTO users (id, email, display_name, role, password_hash, active, pattern, \
                 password_changed_at, created_at) VALUES ($1, $2, $3, $4, NULL, 1, NULL, 0, $5)",
            )
            .bind(&u.id)
            .bind(&u.email)
            .bind(&u.display_name)
            .bind(u.role.as_str())
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(|e| if is_unique_violation(&e) { StoreError::Conflict("email") } else { e.into() })?;
            Ok(())
        })
        .await?;
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

    /// Updates name, role, active flag and working pattern. `NotFound` if absent.
    pub async fn update_user(&self, id: &str, update: &UserUpdate) -> Result<User> {
        let changed = self
            .retrying("update_user", || async move {
                Ok(sqlx::query(
                    "UPDATE users SET display_name = $1, role = $2, active = $3, pattern = $4 WHERE id = $5",
                )
                .bind(&update.display_name)
                .bind(update.role.as_str())
                .bind(i64::from(update.active))
                .bind(update.pattern.as_deref())
                .bind(id)
                .execute(&self.pool)
                .await?
                .rows_affected())
            })
            .await?;
        if changed == 0 {
            return Err(StoreError::NotFound);
        }
        self.user(id).await?.ok_or(StoreError::NotFound)
    }

    /// Sets the hash and `password_changed_at = now` (voiding older sessions). `NotFound` if absent.
    pub async fn set_password(&self, user_id: &str, password_hash: &str, now: i64) -> Result<()> {
        let changed = self
            .retrying("set_password", || async move {
                Ok(sqlx::query("UPDATE users SET password_hash = $1, password_changed_at = $2 WHERE id = $3")
                    .bind(password_hash)
                    .bind(now)
                    .bind(user_id)
                    .execute(&self.pool)
                    .await?
                    .rows_affected())
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
    /// gets `None`, as do expired tokens.
    pub async fn take_setup_token(&self, token_hash: &str, now: i64) -> Result<Option<String>> {
        // One conditional UPDATE is the claim: of concurrent callers exactly one sees a changed row
        // (PostgreSQL re-checks the WHERE after waiting on the row lock; SQLite serializes writers).
        let taken = self
            .retrying("take_setup_token", || async move {
                Ok(sqlx::query(
                    "UPDATE setup_tokens SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1",
                )
                .bind(now)
                .bind(token_hash)
                .execute(&self.pool)
                .await?
                .rows_affected())
            })
            .await?;
        if taken == 0 {
            return Ok(None);
        }
        let row = sqlx::query("SELECT user_id FROM setup_tokens WHERE token_hash = $1")
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("user_id")).transpose()?)
    }
}

fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}
