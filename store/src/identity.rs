//! OpenID Connect logins (`0011_identity.sql`): logins on their way through the provider (one row
//! each, taken once), the directory identities linked to staff accounts, and the key under which a
//! logged-in citizen finds their appointments.

use sqlx::Row;

use crate::rows::{self, USER_COLS, placeholders};
use crate::users::{insert_user, new_user};
use crate::{Mode, NewUser, Result, Status, Store, StoreError, User, is_foreign_key_violation, is_unique_violation};

/// Whose login a pending row is: it decides where the callback sends the browser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OidcLoginKind {
    Staff,
    Citizen,
}

text_enum!(OidcLoginKind { Staff => "staff", Citizen => "citizen" });

/// What the callback needs to finish a login it did not start (any node may get it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingOidcLogin {
    pub kind: OidcLoginKind,
    pub pkce_verifier: String,
    pub nonce: String,
    pub return_path: String,
    pub expires_at: i64,
}

/// One of a logged-in citizen's appointments, as their page lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CitizenAppointment {
    pub code: String,
    pub starts_at: i64,
    pub ends_at: i64,
    pub status: Status,
    pub mode: Mode,
    pub office_name: String,
    pub service_name: String,
}

impl Store {
    // --- pending logins ----------------------------------------------------------------------

    /// Stores a login sent to the provider under the hash of its `state`. `Conflict("state")` if
    /// the hash exists (a random state never repeats; a caller would draw again).
    pub async fn create_oidc_login(&self, state_hash: &str, login: &PendingOidcLogin, now: i64) -> Result<()> {
        self.retrying("create_oidc_login", || async move {
            sqlx::query(
                "INSERT INTO oidc_logins (state_hash, kind, pkce_verifier, nonce, return_path, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(state_hash)
            .bind(login.kind.as_str())
            .bind(&login.pkce_verifier)
            .bind(&login.nonce)
            .bind(&login.return_path)
            .bind(now)
            .bind(login.expires_at)
            .execute(&self.pool)
            .await
            .map_err(|e| if is_unique_violation(&e) { StoreError::Conflict("state") } else { e.into() })?;
            Ok(())
        })
        .await
    }

    /// Takes the login of `state_hash`: deleted in the same statement, so of two callbacks with
    /// one state (a replay, a double click) exactly one gets it. `None` when unknown, already
    /// taken or expired at `now` (an expired row is deleted all the same).
    pub async fn take_oidc_login(&self, state_hash: &str, now: i64) -> Result<Option<PendingOidcLogin>> {
        let row = self
            .retrying("take_oidc_login", || async move {
                Ok(sqlx::query(
                    "DELETE FROM oidc_logins WHERE state_hash = $1 \
                     RETURNING kind, pkce_verifier, nonce, return_path, expires_at",
                )
                .bind(state_hash)
                .fetch_optional(&self.pool)
                .await?)
            })
            .await?;
        let Some(row) = row else { return Ok(None) };
        let login = PendingOidcLogin {
            kind: rows::text_enum(&row, "kind")?,
            pkce_verifier: row.try_get("pkce_verifier")?,
            nonce: row.try_get("nonce")?,
            return_path: row.try_get("return_path")?,
            expires_at: row.try_get("expires_at")?,
        };
        Ok((login.expires_at > now).then_some(login))
    }

    /// Deletes the logins that expired at `now` (the retention pass); returns how many.
    pub async fn delete_expired_oidc_logins(&self, now: i64) -> Result<u64> {
        self.retrying("delete_expired_oidc_logins", || async move {
            Ok(sqlx::query("DELETE FROM oidc_logins WHERE expires_at <= $1")
                .bind(now)
                .execute(&self.pool)
                .await?
                .rows_affected())
        })
        .await
    }

    // --- staff identities ------------------------------------------------------------------------

    /// The staff account linked to the directory account `(issuer, subject)`.
    pub async fn user_by_identity(&self, issuer: &str, subject: &str) -> Result<Option<User>> {
        let cols = USER_COLS.split(", ").map(|c| format!("u.{c}")).collect::<Vec<_>>().join(", ");
        let sql = format!(
            "SELECT {cols} FROM users u JOIN staff_identities i ON i.user_id = u.id \
             WHERE i.issuer = $1 AND i.subject = $2"
        );
        let row = sqlx::query(&sql).bind(issuer).bind(subject).fetch_optional(&self.pool).await?;
        row.as_ref().map(rows::user).transpose()
    }

    /// The subjects of `issuer` linked to `user_id` (at most one, as the login links them).
    pub async fn identities_of_user(&self, user_id: &str, issuer: &str) -> Result<Vec<String>> {
        let rows =
            sqlx::query("SELECT subject FROM staff_identities WHERE user_id = $1 AND issuer = $2 ORDER BY subject")
                .bind(user_id)
                .bind(issuer)
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(|r| Ok(r.try_get("subject")?)).collect()
    }

    /// Links `(issuer, subject)` to an existing account. `Conflict("identity")` if that directory
    /// account is linked already, `NotFound` if the user does not exist.
    pub async fn link_identity(&self, issuer: &str, subject: &str, user_id: &str, now: i64) -> Result<()> {
        self.retrying("link_identity", || async move {
            sqlx::query("INSERT INTO staff_identities (issuer, subject, user_id, created_at) VALUES ($1, $2, $3, $4)")
                .bind(issuer)
                .bind(subject)
                .bind(user_id)
                .bind(now)
                .execute(&self.pool)
                .await
                .map_err(identity_error)?;
            Ok(())
        })
        .await
    }

    /// Creates a staff account (no password) linked to `(issuer, subject)`, both or neither:
    /// `Conflict("email")` if the email is taken, `Conflict("identity")` if the directory account
    /// is linked already.
    pub async fn create_user_with_identity(
        &self,
        new: &NewUser,
        issuer: &str,
        subject: &str,
        now: i64,
    ) -> Result<User> {
        let user = new_user(new, now);
        let u = &user;
        self.retrying("create_user_with_identity", || async move {
            let mut tx = self.begin().await?;
            insert_user(&mut *tx, u).await?;
            sqlx::query("INSERT INTO staff_identities (issuer, subject, user_id, created_at) VALUES ($1, $2, $3, $4)")
                .bind(issuer)
                .bind(subject)
                .bind(&u.id)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(identity_error)?;
            tx.commit().await?;
            Ok(())
        })
        .await?;
        Ok(user)
    }

    /// Within the offices `managed` (those a directory maps), makes `user_id` a member of exactly
    /// `member_of`; memberships in other offices are left as they are. Unknown offices in
    /// `member_of` are `NotFound` (nothing changed).
    pub async fn set_user_offices_within(&self, user_id: &str, managed: &[String], member_of: &[String]) -> Result<()> {
        if managed.is_empty() {
            return Ok(());
        }
        self.retrying("set_user_offices_within", || async move {
            let mut tx = self.begin().await?;
            let sql = format!(
                "DELETE FROM office_members WHERE user_id = $1 AND office_id IN ({})",
                placeholders(2, managed.len())
            );
            let mut delete = sqlx::query(&sql).bind(user_id);
            for office in managed {
                delete = delete.bind(office);
            }
            delete.execute(&mut *tx).await?;
            for office in member_of.iter().filter(|o| managed.contains(o)) {
                sqlx::query("INSERT INTO office_members (office_id, user_id) VALUES ($1, $2)")
                    .bind(office)
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| if is_foreign_key_violation(&e) { StoreError::NotFound } else { e.into() })?;
            }
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    // --- citizens' appointments --------------------------------------------------------------

    /// Marks an appointment as booked by the logged-in citizen of `key`. `NotFound` if absent.
    pub async fn set_appointment_citizen_key(&self, appointment_id: &str, key: &str) -> Result<()> {
        let changed = self
            .retrying("set_appointment_citizen_key", || async move {
                Ok(sqlx::query("UPDATE appointments SET citizen_key = $1 WHERE id = $2")
                    .bind(key)
                    .bind(appointment_id)
                    .execute(&self.pool)
                    .await?
                    .rows_affected())
            })
            .await?;
        if changed == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }

    /// The appointments booked under `key`, newest start first, at most `limit`.
    pub async fn citizen_appointments(&self, key: &str, limit: i64) -> Result<Vec<CitizenAppointment>> {
        let rows = sqlx::query(
            "SELECT a.code, a.starts_at, a.ends_at, a.status, a.mode, o.name AS office_name, s.name AS service_name \
             FROM appointments a JOIN offices o ON o.id = a.office_id JOIN services s ON s.id = a.service_id \
             WHERE a.citizen_key = $1 ORDER BY a.starts_at DESC, a.code LIMIT $2",
        )
        .bind(key)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(CitizenAppointment {
                    code: r.try_get("code")?,
                    starts_at: r.try_get("starts_at")?,
                    ends_at: r.try_get("ends_at")?,
                    status: rows::text_enum(r, "status")?,
                    mode: rows::text_enum(r, "mode")?,
                    office_name: r.try_get("office_name")?,
                    service_name: r.try_get("service_name")?,
                })
            })
            .collect()
    }
}

/// A directory account linked twice, or to a user that does not exist.
fn identity_error(e: sqlx::Error) -> StoreError {
    if is_unique_violation(&e) {
        StoreError::Conflict("identity")
    } else if is_foreign_key_violation(&e) {
        StoreError::NotFound
    } else {
        e.into()
    }
}
