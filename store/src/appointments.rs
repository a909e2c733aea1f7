//! Appointments: booking with the `slot_claims` guard, status changes, rescheduling, reminders,
//! ratings, and the audit trail written in the same transaction as every change.

use sqlx::AnyConnection;

use crate::rows::{self, APPOINTMENT_COLS, new_id, new_sortable_id, placeholders};
use crate::webhooks::{self, WebhookEventType};
use crate::{
    Appointment, AuditEntry, GRANULE_SECS, NewAppointment, Reschedule, Result, Status, Store, StoreError,
    is_unique_violation,
};

/// Granules per INSERT: keeps the statement far below SQLite's and PostgreSQL's parameter limits.
const CLAIMS_PER_STATEMENT: i64 = 200;

/// Claims every granule of `[starts_at, ends_at)` for the official. `SlotTaken` if one is claimed.
/// Granules are inserted in ascending order, so two overlapping bookings wait on each other in
/// the same order on PostgreSQL and never deadlock.
async fn claim(
    conn: &mut AnyConnection,
    official_id: &str,
    appointment_id: &str,
    starts_at: i64,
    ends_at: i64,
) -> Result<()> {
    let first = starts_at.div_euclid(GRANULE_SECS);
    let last = (ends_at - 1).div_euclid(GRANULE_SECS);
    let mut from = first;
    while from <= last {
        let to = (from + CLAIMS_PER_STATEMENT - 1).min(last);
        let values = (0..=to - from).map(|i| format!("($1, ${}, $2)", i + 3)).collect::<Vec<_>>().join(", ");
        let sql = format!("INSERT INTO slot_claims (official_id, granule, appointment_id) VALUES {values}");
        let mut query = sqlx::query(&sql).bind(official_id).bind(appointment_id);
        for granule in from..=to {
            query = query.bind(granule);
        }
        query
            .execute(&mut *conn)
            .await
            .map_err(|e| if is_unique_violation(&e) { StoreError::SlotTaken } else { e.into() })?;
        from = to + 1;
    }
    Ok(())
}

/// The official's own calendar, re-read inside the booking transaction: an absence or an imported
/// busy time overlapping `[starts_at, ends_at)` makes the slot taken. The offer was computed before
/// the transaction; this closes the window in which an absence saved meanwhile would be ignored.
async fn ensure_calendar_free(conn: &mut AnyConnection, official_id: &str, starts_at: i64, ends_at: i64) -> Result<()> {
    let overlapping: i64 = sqlx::query_scalar(
        "SELECT (SELECT COUNT(*) FROM absences WHERE user_id = $1 AND starts_at < $3 AND ends_at > $2) \
              + (SELECT COUNT(*) FROM busy_intervals WHERE user_id = $1 AND starts_at < $3 AND ends_at > $2)",
    )
    .bind(official_id)
    .bind(starts_at)
    .bind(ends_at)
    .fetch_one(&mut *conn)
    .await?;
    if overlapping > 0 { Err(StoreError::SlotTaken) } else { Ok(()) }
}

async fn release(conn: &mut AnyConnection, appointment_id: &str) -> Result<()> {
    sqlx::query("DELETE FROM slot_claims WHERE appointment_id = $1").bind(appointment_id).execute(&mut *conn).await?;
    Ok(())
}

/// Gives back the granules of an appointment that lie after `now`: a closed appointment (completed
/// or no-show) holds the official's time only for what already passed. Availability counts
/// confirmed appointments only, so without this a slot freed by an early close would be offered and
/// then refused as taken.
async fn release_from(conn: &mut AnyConnection, appointment_id: &str, now: i64) -> Result<()> {
    // The granule holding `now` has begun: it stays claimed (no slot can start in the past anyway).
    let first_free = now.div_euclid(GRANULE_SECS) + 1;
    sqlx::query("DELETE FROM slot_claims WHERE appointment_id = $1 AND granule >= $2")
        .bind(appointment_id)
        .bind(first_free)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

async fn audit(
    conn: &mut AnyConnection,
    appointment_id: &str,
    at: i64,
    actor: &str,
    action: &str,
    detail: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO appointment_events (id, appointment_id, at, actor, action, detail) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(new_sortable_id())
    .bind(appointment_id)
    .bind(at)
    .bind(actor)
    .bind(action)
    .bind(detail)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn fetch(conn: &mut AnyConnection, id: &str) -> Result<Option<Appointment>> {
    let sql = format!("SELECT {APPOINTMENT_COLS} FROM appointments WHERE id = $1");
    let row = sqlx::query(&sql).bind(id).fetch_optional(&mut *conn).await?;
    row.as_ref().map(rows::appointment).transpose()
}

/// Locks the appointment for the rest of the transaction by writing it first (PostgreSQL: row
/// lock, the portable `FOR UPDATE`), then reads it. `NotFound` if absent.
async fn lock(conn: &mut AnyConnection, id: &str, now: i64) -> Result<Appointment> {
    let touched = sqlx::query("UPDATE appointments SET updated_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    if touched == 0 {
        return Err(StoreError::NotFound);
    }
    fetch(conn, id).await?.ok_or(StoreError::NotFound)
}

fn check_range(starts_at: i64, ends_at: i64) -> Result<()> {
    if ends_at <= starts_at { Err(StoreError::Invalid("an appointment must end after it starts")) } else { Ok(()) }
}

fn slot_detail(starts_at: i64, ends_at: i64, official_id: &str) -> String {
    format!("{starts_at}..{ends_at} official {official_id}")
}

impl Store {
    /// Inserts a confirmed appointment, its slot claims and a `booked` audit row (actor `citizen`)
    /// in one transaction. `SlotTaken` if any granule of `[starts_at, ends_at)` is claimed for that
    /// official; `Conflict("code")` if the booking code exists (the caller draws another);
    /// `Invalid` if it does not end after it starts.
    pub async fn book(&self, new: &NewAppointment, now: i64) -> Result<Appointment> {
        check_range(new.starts_at, new.ends_at)?;
        let appointment = Appointment {
            id: new_id(),
            code: new.code.clone(),
            secret_hash: new.secret_hash.clone(),
            office_id: new.office_id.clone(),
            service_id: new.service_id.clone(),
            official_id: new.official_id.clone(),
            starts_at: new.starts_at,
            ends_at: new.ends_at,
            mode: new.mode,
            first_name: new.first_name.clone(),
            last_name: new.last_name.clone(),
            email: new.email.clone(),
            details: new.details.clone(),
            lang: new.lang.clone(),
            status: Status::Confirmed,
            reminder_sent_at: None,
            citizen_joined_at: None,
            citizen_arrived_at: None,
            meeting_ended_at: None,
            rating: None,
            rating_comment: None,
            created_at: now,
            updated_at: now,
        };
        let a = &appointment;
        self.retrying("book", || async move {
            let mut tx = self.begin().await?;
            // The appointment first: a write that starts the transaction (see `Store::begin`), and a
            // unique violation here can only be the code (ids are random).
            sqlx::query(
                "INSERT INTO appointments (id, code, secret_hash, office_id, service_id, official_id, starts_at, \
                 ends_at, mode, first_name, last_name, email, details, lang, status, reminder_sent_at, \
                 citizen_joined_at, rating, rating_comment, created_at, updated_at) VALUES \
                 ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, NULL, NULL, NULL, NULL, $16, $16)",
            )
            .bind(&a.id)
            .bind(&a.code)
            .bind(&a.secret_hash)
            .bind(&a.office_id)
            .bind(&a.service_id)
            .bind(&a.official_id)
            .bind(a.starts_at)
            .bind(a.ends_at)
            .bind(a.mode.as_str())
            .bind(&a.first_name)
            .bind(&a.last_name)
            .bind(&a.email)
            .bind(&a.details)
            .bind(&a.lang)
            .bind(a.status.as_str())
            .bind(a.created_at)
            .execute(&mut *tx)
            .await
            .map_err(|e| if is_unique_violation(&e) { StoreError::Conflict("code") } else { e.into() })?;
            claim(&mut tx, &a.official_id, &a.id, a.starts_at, a.ends_at).await?;
            ensure_calendar_free(&mut tx, &a.official_id, a.starts_at, a.ends_at).await?;
            audit(&mut tx, &a.id, now, "citizen", "booked", &slot_detail(a.starts_at, a.ends_at, &a.official_id))
                .await?;
            webhooks::emit(&mut tx, WebhookEventType::AppointmentBooked, &webhooks::appointment_data(a), now).await?;
            tx.commit().await?;
            Ok(())
        })
        .await?;
        tracing::debug!(id = %appointment.id, code = %appointment.code, "booked");
        Ok(appointment)
    }

    pub async fn appointment(&self, id: &str) -> Result<Option<Appointment>> {
        let sql = format!("SELECT {APPOINTMENT_COLS} FROM appointments WHERE id = $1");
        let row = sqlx::query(&sql).bind(id).fetch_optional(&self.pool).await?;
        row.as_ref().map(rows::appointment).transpose()
    }

    pub async fn appointment_by_code(&self, code: &str) -> Result<Option<Appointment>> {
        let sql = format!("SELECT {APPOINTMENT_COLS} FROM appointments WHERE code = $1");
        let row = sqlx::query(&sql).bind(code).fetch_optional(&self.pool).await?;
        row.as_ref().map(rows::appointment).transpose()
    }

    /// Appointments of these offices overlapping `[from, to)`, any status, by start.
    pub async fn appointments_of_offices(&self, office_ids: &[String], from: i64, to: i64) -> Result<Vec<Appointment>> {
        self.overlapping("office_id", office_ids, from, to, false).await
    }

    /// Confirmed appointments of these officials overlapping `[from, to)` (for availability).
    pub async fn busy_of_officials(&self, official_ids: &[String], from: i64, to: i64) -> Result<Vec<Appointment>> {
        self.overlapping("official_id", official_ids, from, to, true).await
    }

    async fn overlapping(
        &self,
        column: &'static str,
        ids: &[String],
        from: i64,
        to: i64,
        confirmed_only: bool,
    ) -> Result<Vec<Appointment>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let status = if confirmed_only { "AND status = 'confirmed'" } else { "" };
        let sql = format!(
            "SELECT {APPOINTMENT_COLS} FROM appointments WHERE starts_at < $1 AND ends_at > $2 {status} \
             AND {column} IN ({}) ORDER BY starts_at, id",
            placeholders(3, ids.len())
        );
        let mut query = sqlx::query(&sql).bind(to).bind(from);
        for id in ids {
            query = query.bind(id);
        }
        query.fetch_all(&self.pool).await?.iter().map(rows::appointment).collect()
    }

    /// Changes the status if the current one is in `from`, releasing the claims when the new
    /// status is `Cancelled` (and taking them again when a cancelled one becomes `Confirmed`:
    /// `SlotTaken` if meanwhile booked) and the claims after `now` when a confirmed one is closed
    /// (`Completed`, `NoShow`: its remaining time is bookable again); audits `actor` with the new status as the action.
    /// `InvalidTransition` otherwise, `NotFound` if absent.
    pub async fn set_status(
        &self,
        id: &str,
        from: &[Status],
        to: Status,
        actor: &str,
        detail: &str,
        now: i64,
    ) -> Result<Appointment> {
        self.retrying("set_status", || async move {
            let mut tx = self.begin().await?;
            let mut current = lock(&mut tx, id, now).await?;
            if !from.contains(&current.status) {
                return Err(StoreError::InvalidTransition { from: current.status, to });
            }
            sqlx::query("UPDATE appointments SET status = $1 WHERE id = $2")
                .bind(to.as_str())
                .bind(id)
                .execute(&mut *tx)
                .await?;
            match (current.status, to) {
                (Status::Cancelled, Status::Cancelled) => {}
                (_, Status::Cancelled) => release(&mut tx, id).await?,
                (Status::Cancelled, _) => {
                    claim(&mut tx, &current.official_id, id, current.starts_at, current.ends_at).await?
                }
                (Status::Confirmed, Status::Completed | Status::NoShow) => release_from(&mut tx, id, now).await?,
                _ => {}
            }
            audit(&mut tx, id, now, actor, to.as_str(), detail).await?;
            let was = std::mem::replace(&mut current.status, to);
            current.updated_at = now;
            if let Some(kind) = webhooks::status_event(was, to) {
                webhooks::emit(&mut tx, kind, &webhooks::appointment_data(&current), now).await?;
            }
            tx.commit().await?;
            Ok(current)
        })
        .await
    }

    /// Moves a confirmed appointment (new times and possibly a new official): the old claims are
    /// released and the new ones taken in one transaction; `SlotTaken` leaves it unchanged. A
    /// reminder already sent is forgotten (the citizen is reminded of the new time). Audited as
    /// `rescheduled` by `actor`. `InvalidTransition` unless confirmed, `NotFound` if absent.
    pub async fn reschedule(&self, id: &str, to: &Reschedule, actor: &str, now: i64) -> Result<Appointment> {
        check_range(to.starts_at, to.ends_at)?;
        self.retrying("reschedule", || async move {
            let mut tx = self.begin().await?;
            let mut current = lock(&mut tx, id, now).await?;
            if current.status != Status::Confirmed {
                return Err(StoreError::InvalidTransition { from: current.status, to: Status::Confirmed });
            }
            // Own claims go first, so a move that overlaps the old slot does not collide with itself.
            release(&mut tx, id).await?;
            claim(&mut tx, &to.official_id, id, to.starts_at, to.ends_at).await?;
            ensure_calendar_free(&mut tx, &to.official_id, to.starts_at, to.ends_at).await?;
            sqlx::query(
                "UPDATE appointments SET starts_at = $1, ends_at = $2, official_id = $3, mode = $4, \
                 reminder_sent_at = NULL WHERE id = $5",
            )
            .bind(to.starts_at)
            .bind(to.ends_at)
            .bind(&to.official_id)
            .bind(to.mode.as_str())
            .bind(id)
            .execute(&mut *tx)
            .await?;
            let detail = format!(
                "{} -> {}",
                slot_detail(current.starts_at, current.ends_at, &current.official_id),
                slot_detail(to.starts_at, to.ends_at, &to.official_id)
            );
            audit(&mut tx, id, now, actor, "rescheduled", &detail).await?;
            current.starts_at = to.starts_at;
            current.ends_at = to.ends_at;
            current.official_id = to.official_id.clone();
            current.mode = to.mode;
            current.reminder_sent_at = None;
            current.updated_at = now;
            webhooks::emit(&mut tx, WebhookEventType::AppointmentMoved, &webhooks::appointment_data(&current), now)
                .await?;
            tx.commit().await?;
            Ok(current)
        })
        .await
    }

    /// Confirmed appointments starting in `(now, now + lead]` with no reminder sent yet, by start —
    /// except those booked or last moved less than `lead` before their start: their confirmation
    /// (or the email with the new time) is itself that recent, and a reminder a minute later is noise.
    pub async fn due_reminders(&self, now: i64, lead_secs: i64) -> Result<Vec<Appointment>> {
        let sql = format!(
            "SELECT {APPOINTMENT_COLS} FROM appointments WHERE status = 'confirmed' AND reminder_sent_at IS NULL \
             AND starts_at > $1 AND starts_at <= $2 \
             AND (SELECT MAX(e.at) FROM appointment_events e WHERE e.appointment_id = appointments.id \
                  AND e.action IN ('booked', 'rescheduled')) <= starts_at - $3 \
             ORDER BY starts_at, id"
        );
        let rows = sqlx::query(&sql)
            .bind(now)
            .bind(now.saturating_add(lead_secs))
            .bind(lead_secs)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(rows::appointment).collect()
    }

    /// Records that the reminder went out (audited as `reminded` by `system`). `NotFound` if absent.
    pub async fn mark_reminded(&self, id: &str, now: i64) -> Result<()> {
        self.retrying("mark_reminded", || async move {
            let mut tx = self.begin().await?;
            let changed = sqlx::query("UPDATE appointments SET reminder_sent_at = $1, updated_at = $1 WHERE id = $2")
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if changed == 0 {
                return Err(StoreError::NotFound);
            }
            audit(&mut tx, id, now, "system", "reminded", "").await?;
            webhooks::emit_for(&mut tx, id, WebhookEventType::AppointmentReminded, now).await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    /// Records the first time the citizen was admitted to the room (audited once, as `joined` by
    /// `citizen`); later calls keep the first instant. `NotFound` if absent.
    pub async fn mark_citizen_joined(&self, id: &str, now: i64) -> Result<()> {
        self.retrying("mark_citizen_joined", || async move {
            let mut tx = self.begin().await?;
            let first = sqlx::query(
                "UPDATE appointments SET citizen_joined_at = $1, updated_at = $1 WHERE id = $2 AND citizen_joined_at IS NULL",
            )
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if first == 0 {
                return if fetch(&mut tx, id).await?.is_some() { Ok(()) } else { Err(StoreError::NotFound) };
            }
            audit(&mut tx, id, now, "citizen", "joined", "").await?;
            webhooks::emit_for(&mut tx, id, WebhookEventType::AppointmentAdmitted, now).await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    /// Records the first time someone holding the appointment's link was in its waiting room
    /// (attendance: `citizen_arrived_at`); later calls keep the first instant. No audit row: the
    /// admission (`joined`) is what the audit tells.
    pub async fn mark_citizen_arrived(&self, id: &str, now: i64) -> Result<()> {
        self.retrying("mark_citizen_arrived", || async move {
            sqlx::query("UPDATE appointments SET citizen_arrived_at = $1 WHERE id = $2 AND citizen_arrived_at IS NULL")
                .bind(now)
                .bind(id)
                .execute(&self.pool)
                .await?;
            Ok(())
        })
        .await
    }

    /// Records when the meeting ended (its room emptied after the citizen and an official met);
    /// the last end counts, as a citizen may come back into the room.
    pub async fn mark_meeting_ended(&self, id: &str, now: i64) -> Result<()> {
        self.retrying("mark_meeting_ended", || async move {
            sqlx::query(
                "UPDATE appointments SET meeting_ended_at = $1 WHERE id = $2 AND citizen_joined_at IS NOT NULL",
            )
            .bind(now)
            .bind(id)
            .execute(&self.pool)
            .await?;
            Ok(())
        })
        .await
    }

    /// Confirmed appointments whose end is before `before` (for completed / no-show), by end.
    pub async fn confirmed_ended_before(&self, before: i64) -> Result<Vec<Appointment>> {
        let sql = format!(
            "SELECT {APPOINTMENT_COLS} FROM appointments WHERE status = 'confirmed' AND ends_at < $1 \
             ORDER BY ends_at, id"
        );
        sqlx::query(&sql).bind(before).fetch_all(&self.pool).await?.iter().map(rows::appointment).collect()
    }

    /// Rating 1–5 with an optional comment (audited as `rated` by `citizen`); once only:
    /// `Conflict("rating")`. `Invalid` outside 1–5, `NotFound` if absent.
    pub async fn rate(&self, id: &str, rating: i64, comment: Option<&str>, now: i64) -> Result<()> {
        if !(1..=5).contains(&rating) {
            return Err(StoreError::Invalid("a rating is 1 to 5"));
        }
        self.retrying("rate", || async move {
            let mut tx = self.begin().await?;
            let changed = sqlx::query(
                "UPDATE appointments SET rating = $1, rating_comment = $2, updated_at = $3 WHERE id = $4 AND rating IS NULL",
            )
            .bind(rating)
            .bind(comment)
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if changed == 0 {
                return Err(if fetch(&mut tx, id).await?.is_some() {
                    StoreError::Conflict("rating")
                } else {
                    StoreError::NotFound
                });
            }
            audit(&mut tx, id, now, "citizen", "rated", &rating.to_string()).await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    /// The audit trail, oldest first (same-second entries in the order they were written).
    pub async fn audit(&self, appointment_id: &str) -> Result<Vec<AuditEntry>> {
        sqlx::query(
            "SELECT at, actor, action, detail FROM appointment_events WHERE appointment_id = $1 ORDER BY at, id",
        )
        .bind(appointment_id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(rows::audit_entry)
        .collect()
    }

    /// How many times the appointment changed for the citizen's calendar since it was booked
    /// (moves and cancellations): the `SEQUENCE` of the `.ics` attached to the next email.
    pub async fn calendar_sequence(&self, appointment_id: &str) -> Result<u32> {
        let changes: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM appointment_events WHERE appointment_id = $1 \
             AND action IN ('rescheduled', 'cancelled')",
        )
        .bind(appointment_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(u32::try_from(changes).unwrap_or(u32::MAX))
    }

    /// Confirmed appointments of `office_id` booked with `email` (compared without case) that have
    /// not ended by `now`: the per-address cap on bookings.
    pub async fn active_bookings_of_email(&self, office_id: &str, email: &str, now: i64) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM appointments WHERE office_id = $1 AND LOWER(email) = LOWER($2) \
             AND status = 'confirmed' AND ends_at > $3",
        )
        .bind(office_id)
        .bind(email.trim())
        .bind(now)
        .fetch_one(&self.pool)
        .await?)
    }
}
