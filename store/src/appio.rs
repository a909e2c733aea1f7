//! App IO notifications (`0010_appio.sql`): the fiscal codes citizens and councillors gave for
//! them, and the outbox of messages the back office's delivery task sends (`backoffice::appio`).
//! This module only keeps the rows.
//!
//! A fiscal code is kept whole only as long as it can still be used: an appointment's until the
//! citizen opts out or the appointment is over ([`Store::forget_appio_data`]), a message's until it
//! is finished — then its masked form (`RSSMRA*********S`) stays for the administrator's log, blanked
//! after [`MESSAGE_CODE_KEPT_SECS`], the row deleted after [`MESSAGE_KEPT_SECS`].

use std::collections::HashMap;

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::rows::{new_sortable_id, placeholders};
use crate::{Result, Store, StoreError};

/// A finished message keeps its masked fiscal code this long (the log shows it), then blank.
pub const MESSAGE_CODE_KEPT_SECS: i64 = 30 * 86_400;
/// A finished message is deleted this long after it finished.
pub const MESSAGE_KEPT_SECS: i64 = 90 * 86_400;

/// What a message tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AppioKind {
    Booked,
    Moved,
    Cancelled,
    Reminder,
    Convocation,
}

text_enum!(AppioKind {
    Booked => "booked",
    Moved => "moved",
    Cancelled => "cancelled",
    Reminder => "reminder",
    Convocation => "convocation",
});

/// Where a message is. Only `Queued` is ever sent; the others are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AppioStatus {
    Queued,
    /// IO accepted it (201).
    Sent,
    /// The citizen is not on IO, or turned the municipality's service off: nothing was sent.
    Refused,
    /// Given up: IO refused the request, or every attempt failed.
    Failed,
    /// Withdrawn before it went out (the citizen opted out).
    Cancelled,
}

text_enum!(AppioStatus {
    Queued => "queued",
    Sent => "sent",
    Refused => "refused",
    Failed => "failed",
    Cancelled => "cancelled",
});

/// A message to queue, composed whole by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAppioMessage {
    pub appointment_id: Option<String>,
    pub council_session_id: Option<String>,
    pub user_id: Option<String>,
    pub kind: AppioKind,
    /// Canonical (16 characters, upper case): the caller parsed it.
    pub fiscal_code: String,
    pub subject: String,
    pub markdown: String,
    pub due_date: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppioMessage {
    pub id: String,
    pub appointment_id: Option<String>,
    pub council_session_id: Option<String>,
    pub user_id: Option<String>,
    pub kind: AppioKind,
    /// Whole while queued; masked once finished, empty after [`MESSAGE_CODE_KEPT_SECS`].
    pub fiscal_code: String,
    pub subject: String,
    pub markdown: String,
    pub due_date: Option<i64>,
    pub status: AppioStatus,
    /// Attempts made (a claimed message's attempt in progress is `attempts + 1`).
    pub attempts: i64,
    pub next_attempt_at: Option<i64>,
    pub last_error: Option<String>,
    pub io_message_id: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLS: &str = "id, appointment_id, council_session_id, user_id, kind, fiscal_code, subject, markdown, due_date, \
     status, attempts, next_attempt_at, last_error, io_message_id, created_at, updated_at";

/// The masked form a finished row keeps, in SQL both databases share: the first six characters
/// (from the name), nine stars, the check character.
const MASKED: &str = "CASE WHEN LENGTH(fiscal_code) = 16 \
     THEN SUBSTR(fiscal_code, 1, 6) || '*********' || SUBSTR(fiscal_code, 16, 1) ELSE fiscal_code END";

fn message(row: &AnyRow) -> Result<AppioMessage> {
    let text = |column: &'static str| -> Result<String> { Ok(row.try_get(column)?) };
    Ok(AppioMessage {
        id: text("id")?,
        appointment_id: row.try_get("appointment_id")?,
        council_session_id: row.try_get("council_session_id")?,
        user_id: row.try_get("user_id")?,
        kind: crate::rows::text_enum(row, "kind")?,
        fiscal_code: text("fiscal_code")?,
        subject: text("subject")?,
        markdown: text("markdown")?,
        due_date: row.try_get("due_date")?,
        status: crate::rows::text_enum(row, "status")?,
        attempts: row.try_get("attempts")?,
        next_attempt_at: row.try_get("next_attempt_at")?,
        last_error: row.try_get("last_error")?,
        io_message_id: row.try_get("io_message_id")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

async fn insert(conn: &mut sqlx::AnyConnection, new: &NewAppioMessage, id: &str, now: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO appio_messages (id, appointment_id, council_session_id, user_id, kind, fiscal_code, subject, \
         markdown, due_date, status, attempts, next_attempt_at, last_error, io_message_id, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'queued', 0, $10, NULL, NULL, $10, $10)",
    )
    .bind(id)
    .bind(new.appointment_id.as_deref())
    .bind(new.council_session_id.as_deref())
    .bind(new.user_id.as_deref())
    .bind(new.kind.as_str())
    .bind(&new.fiscal_code)
    .bind(&new.subject)
    .bind(&new.markdown)
    .bind(new.due_date)
    .bind(now)
    .execute(&mut *conn)
    .await
    .map_err(|e| if crate::is_foreign_key_violation(&e) { StoreError::NotFound } else { e.into() })?;
    Ok(())
}

impl Store {
    // --- fiscal codes ------------------------------------------------------------------------------

    /// The fiscal code an appointment's App IO messages go to, if the citizen chose App IO.
    pub async fn appointment_appio_fiscal_code(&self, appointment_id: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT appio_fiscal_code FROM appointments WHERE id = $1")
            .bind(appointment_id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        Ok(row.try_get("appio_fiscal_code")?)
    }

    /// Stores the citizen's choice of App IO with its first message, in one transaction: either the
    /// booking has both, or neither. `NotFound` if the appointment is absent.
    pub async fn choose_appio(&self, appointment_id: &str, first: &NewAppioMessage, now: i64) -> Result<AppioMessage> {
        let id = new_sortable_id();
        let id_ref = &id;
        self.retrying("choose_appio", || async move {
            let mut tx = self.begin().await?;
            let changed = sqlx::query("UPDATE appointments SET appio_fiscal_code = $1 WHERE id = $2")
                .bind(&first.fiscal_code)
                .bind(appointment_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if changed == 0 {
                return Err(StoreError::NotFound);
            }
            insert(&mut tx, first, id_ref, now).await?;
            tx.commit().await?;
            Ok(())
        })
        .await?;
        self.appio_message(&id).await?.ok_or(StoreError::NotFound)
    }

    /// The citizen opts out: the fiscal code is forgotten and what is still queued for the
    /// appointment is withdrawn, in one transaction. Returns how many messages were withdrawn.
    /// `NotFound` if the appointment is absent.
    pub async fn appio_opt_out(&self, appointment_id: &str, now: i64) -> Result<u64> {
        self.retrying("appio_opt_out", || async move {
            let mut tx = self.begin().await?;
            let changed = sqlx::query("UPDATE appointments SET appio_fiscal_code = NULL WHERE id = $1")
                .bind(appointment_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if changed == 0 {
                return Err(StoreError::NotFound);
            }
            let sql = &format!(
                "UPDATE appio_messages SET status = 'cancelled', next_attempt_at = NULL, fiscal_code = {MASKED}, \
                 last_error = 'opted out', updated_at = $1 WHERE appointment_id = $2 AND status = 'queued'"
            );
            let withdrawn = sqlx::query(sql).bind(now).bind(appointment_id).execute(&mut *tx).await?.rows_affected();
            tx.commit().await?;
            Ok(withdrawn)
        })
        .await
    }

    /// A staff member's fiscal code (convocations), if the administrator set one.
    pub async fn user_fiscal_code(&self, user_id: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT fiscal_code FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        Ok(row.try_get("fiscal_code")?)
    }

    /// The fiscal codes set for these users (those without one are absent from the map).
    pub async fn user_fiscal_codes(&self, user_ids: &[String]) -> Result<HashMap<String, String>> {
        if user_ids.is_empty() {
            return Ok(HashMap::new());
        }
        let sql = format!(
            "SELECT id, fiscal_code FROM users WHERE fiscal_code IS NOT NULL AND id IN ({})",
            placeholders(1, user_ids.len())
        );
        let mut query = sqlx::query(&sql);
        for id in user_ids {
            query = query.bind(id);
        }
        query.fetch_all(&self.pool).await?.iter().map(|r| Ok((r.try_get("id")?, r.try_get("fiscal_code")?))).collect()
    }

    /// Sets (canonical form, checked by the caller) or clears a staff member's fiscal code.
    /// `NotFound` if the user is absent.
    pub async fn set_user_fiscal_code(&self, user_id: &str, fiscal_code: Option<&str>) -> Result<()> {
        let changed = self
            .retrying("set_user_fiscal_code", || async move {
                Ok(sqlx::query("UPDATE users SET fiscal_code = $1 WHERE id = $2")
                    .bind(fiscal_code)
                    .bind(user_id)
                    .execute(&self.pool)
                    .await?
                    .rows_affected())
            })
            .await?;
        if changed == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }

    // --- the outbox --------------------------------------------------------------------------------

    /// Queues a message, due at once. A cancellation withdraws what its appointment still has
    /// queued (a confirmation or reminder of a cancelled appointment is moot). `NotFound` if the
    /// appointment, session or user it names is absent.
    pub async fn enqueue_appio_message(&self, new: &NewAppioMessage, now: i64) -> Result<AppioMessage> {
        let id = new_sortable_id();
        let id_ref = &id;
        self.retrying("enqueue_appio_message", || async move {
            let mut tx = self.begin().await?;
            if let (AppioKind::Cancelled, Some(appointment_id)) = (new.kind, &new.appointment_id) {
                let sql = format!(
                    "UPDATE appio_messages SET status = 'cancelled', next_attempt_at = NULL, fiscal_code = {MASKED}, \
                     last_error = 'superseded by the cancellation', updated_at = $1 \
                     WHERE appointment_id = $2 AND status = 'queued'"
                );
                sqlx::query(&sql).bind(now).bind(appointment_id).execute(&mut *tx).await?;
            }
            insert(&mut tx, new, id_ref, now).await?;
            tx.commit().await?;
            Ok(())
        })
        .await?;
        self.appio_message(&id).await?.ok_or(StoreError::NotFound)
    }

    pub async fn appio_message(&self, id: &str) -> Result<Option<AppioMessage>> {
        let sql = format!("SELECT {COLS} FROM appio_messages WHERE id = $1");
        sqlx::query(&sql).bind(id).fetch_optional(&self.pool).await?.as_ref().map(message).transpose()
    }

    /// Claims up to `limit` queued messages due at `now`, oldest first: each claimed one is pushed
    /// to `now + lease`, so that another sender (another node, or this one after a crash mid-send)
    /// skips it until its outcome is recorded or the lease ends. An appointment's messages go one
    /// at a time, in order: one waits while an older one of its appointment is queued (a
    /// cancellation never overtakes the confirmation it cancels).
    pub async fn claim_due_appio_messages(&self, now: i64, lease: i64, limit: i64) -> Result<Vec<AppioMessage>> {
        let sql = format!(
            "SELECT {COLS} FROM appio_messages m WHERE status = 'queued' AND next_attempt_at <= $1 \
             AND NOT EXISTS (SELECT 1 FROM appio_messages o WHERE o.appointment_id = m.appointment_id \
             AND o.status = 'queued' AND o.id < m.id) ORDER BY next_attempt_at, id LIMIT $2"
        );
        let due: Vec<AppioMessage> = sqlx::query(&sql)
            .bind(now)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(message)
            .collect::<Result<_>>()?;
        let mut claimed = Vec::new();
        for mut m in due {
            let until = now.saturating_add(lease);
            if self.claim_outbox_row("appio_messages", "queued", &m.id, m.next_attempt_at, until).await? {
                m.next_attempt_at = Some(until);
                claimed.push(m);
            }
        }
        Ok(claimed)
    }

    /// IO accepted the message (`attempt` is the attempt that did it). A message withdrawn while
    /// it was being sent is recorded as sent too: that is what happened.
    pub async fn record_appio_sent(&self, id: &str, attempt: i64, io_message_id: &str, now: i64) -> Result<()> {
        self.finish(id, &["queued", "cancelled"], AppioStatus::Sent, attempt, None, Some(io_message_id), now).await
    }

    /// Nothing may be sent to this citizen (not on IO, or the service turned off).
    pub async fn record_appio_refused(&self, id: &str, attempt: i64, reason: &str, now: i64) -> Result<()> {
        self.finish(id, &["queued"], AppioStatus::Refused, attempt, Some(reason), None, now).await
    }

    /// Given up, with the reason.
    pub async fn record_appio_failed(&self, id: &str, attempt: i64, error: &str, now: i64) -> Result<()> {
        self.finish(id, &["queued"], AppioStatus::Failed, attempt, Some(error), None, now).await
    }

    /// A failed attempt to be tried again at `retry_at`.
    pub async fn record_appio_retry(&self, id: &str, attempt: i64, error: &str, retry_at: i64, now: i64) -> Result<()> {
        let changed = self
            .retrying("record_appio_retry", || async move {
                Ok(sqlx::query(
                    "UPDATE appio_messages SET attempts = $1, last_error = $2, next_attempt_at = $3, updated_at = $4 \
                     WHERE id = $5 AND status = 'queued'",
                )
                .bind(attempt)
                .bind(error)
                .bind(retry_at)
                .bind(now)
                .bind(id)
                .execute(&self.pool)
                .await?
                .rows_affected())
            })
            .await?;
        if changed == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }

    /// Moves a message from one of `from` to the final `to`, keeping only the masked fiscal code.
    /// `NotFound` if it is absent or in none of `from` (withdrawn meanwhile).
    #[allow(clippy::too_many_arguments)]
    async fn finish(
        &self,
        id: &str,
        from: &[&'static str],
        to: AppioStatus,
        attempt: i64,
        error: Option<&str>,
        io_message_id: Option<&str>,
        now: i64,
    ) -> Result<()> {
        let sql = format!(
            "UPDATE appio_messages SET status = $1, attempts = $2, last_error = $3, io_message_id = $4, \
             next_attempt_at = NULL, fiscal_code = {MASKED}, updated_at = $5 WHERE id = $6 AND status IN ({})",
            placeholders(7, from.len())
        );
        let sql = &sql;
        let changed = self
            .retrying("finish_appio_message", || async move {
                let mut query =
                    sqlx::query(sql).bind(to.as_str()).bind(attempt).bind(error).bind(io_message_id).bind(now).bind(id);
                for status in from {
                    query = query.bind(*status);
                }
                Ok(query.execute(&self.pool).await?.rows_affected())
            })
            .await?;
        if changed == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }

    /// The newest messages first, at most `limit`: the administrator's log.
    pub async fn recent_appio_messages(&self, limit: i64) -> Result<Vec<AppioMessage>> {
        let sql = format!("SELECT {COLS} FROM appio_messages ORDER BY id DESC LIMIT $1");
        sqlx::query(&sql).bind(limit).fetch_all(&self.pool).await?.iter().map(message).collect()
    }

    /// The retention pass's part: the fiscal codes of appointments that are over or cancelled are
    /// forgotten (nothing more will be sent for them); finished messages lose their masked code
    /// after [`MESSAGE_CODE_KEPT_SECS`] and are deleted after [`MESSAGE_KEPT_SECS`]. Returns
    /// (appointments forgotten, messages blanked, messages deleted).
    pub async fn forget_appio_data(&self, now: i64) -> Result<(u64, u64, u64)> {
        self.retrying("forget_appio_data", || async move {
            let mut tx = self.begin().await?;
            let appointments = sqlx::query(
                "UPDATE appointments SET appio_fiscal_code = NULL WHERE appio_fiscal_code IS NOT NULL \
                 AND (status <> 'confirmed' OR ends_at <= $1)",
            )
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            let blanked = sqlx::query(
                "UPDATE appio_messages SET fiscal_code = '' WHERE status <> 'queued' AND fiscal_code <> '' \
                 AND updated_at < $1",
            )
            .bind(now.saturating_sub(MESSAGE_CODE_KEPT_SECS))
            .execute(&mut *tx)
            .await?
            .rows_affected();
            let deleted = sqlx::query("DELETE FROM appio_messages WHERE status <> 'queued' AND updated_at < $1")
                .bind(now.saturating_sub(MESSAGE_KEPT_SECS))
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
            Ok((appointments, blanked, deleted))
        })
        .await
    }
}
