//! The booking confirmation's delivery (`appointments.confirmation_sent_at`): the email is sent
//! after the booking commits, so a process killed in between, or a mail server that refused it,
//! leaves it unsent; the reminder pass finds it here and sends it again.

use crate::rows::{self, APPOINTMENT_COLS};
use crate::{Appointment, Result, Store};

impl Store {
    /// Confirmed appointments still to start whose confirmation did not go out, booked at or
    /// before `booked_before` (younger ones may still be in their booking request), oldest first.
    pub async fn unsent_confirmations(&self, booked_before: i64, now: i64) -> Result<Vec<Appointment>> {
        let sql = format!(
            "SELECT {APPOINTMENT_COLS} FROM appointments WHERE status = 'confirmed' \
             AND confirmation_sent_at IS NULL AND created_at <= $1 AND starts_at > $2 ORDER BY created_at, id"
        );
        let rows = sqlx::query(&sql).bind(booked_before).bind(now).fetch_all(&self.pool).await?;
        rows.iter().map(rows::appointment).collect()
    }

    /// Whether `id` is confirmed and its confirmation still unsent (read again by the node that
    /// took the work, since another may have sent it meanwhile).
    pub async fn confirmation_unsent(&self, id: &str) -> Result<bool> {
        let row = sqlx::query(
            "SELECT 1 FROM appointments WHERE id = $1 AND status = 'confirmed' AND confirmation_sent_at IS NULL",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }

    /// The confirmation of `id` went out (kept at the first time).
    pub async fn mark_confirmation_sent(&self, id: &str, now: i64) -> Result<()> {
        self.retrying("mark_confirmation_sent", || async move {
            sqlx::query(
                "UPDATE appointments SET confirmation_sent_at = $1 WHERE id = $2 AND confirmation_sent_at IS NULL",
            )
            .bind(now)
            .bind(id)
            .execute(&self.pool)
            .await?;
            Ok(())
        })
        .await
    }
}
