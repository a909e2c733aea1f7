//! Webhooks (`0006_webhooks.sql`), a transactional outbox: endpoints set by an administrator,
//! events written by the change that makes them (in its transaction when it has one), one delivery
//! per interested endpoint, and the log of every attempt. Sending is the back office's
//! (`backoffice::webhooks`); this module only keeps the rows.
//!
//! What an event's `data` may hold is decided here, once: ids, times, statuses and council
//! results — never a citizen's name, email or details, and never how anyone voted in a secret ballot
//! (a closed vote carries its totals only, whatever its kind).

use serde_json::{Value, json};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::rows::{new_id, new_sortable_id};
use crate::{Appointment, Result, Store, StoreError};

/// Every event a webhook endpoint can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WebhookEventType {
    AppointmentBooked,
    AppointmentMoved,
    AppointmentCancelled,
    AppointmentReminded,
    AppointmentCitizenWaiting,
    AppointmentAdmitted,
    AppointmentEnded,
    AppointmentNoShow,
    CouncilSessionStarted,
    CouncilAgendaItemChanged,
    CouncilVoteClosed,
    CouncilSessionEnded,
    CouncilRecordingPublished,
}

text_enum!(WebhookEventType {
    AppointmentBooked => "appointment.booked",
    AppointmentMoved => "appointment.moved",
    AppointmentCancelled => "appointment.cancelled",
    AppointmentReminded => "appointment.reminded",
    AppointmentCitizenWaiting => "appointment.citizen_waiting",
    AppointmentAdmitted => "appointment.admitted",
    AppointmentEnded => "appointment.ended",
    AppointmentNoShow => "appointment.no_show",
    CouncilSessionStarted => "council.session_started",
    CouncilAgendaItemChanged => "council.agenda_item_changed",
    CouncilVoteClosed => "council.vote_closed",
    CouncilSessionEnded => "council.session_ended",
    CouncilRecordingPublished => "council.recording_published",
});

impl WebhookEventType {
    pub const ALL: [WebhookEventType; 13] = [
        WebhookEventType::AppointmentBooked,
        WebhookEventType::AppointmentMoved,
        WebhookEventType::AppointmentCancelled,
        WebhookEventType::AppointmentReminded,
        WebhookEventType::AppointmentCitizenWaiting,
        WebhookEventType::AppointmentAdmitted,
        WebhookEventType::AppointmentEnded,
        WebhookEventType::AppointmentNoShow,
        WebhookEventType::CouncilSessionStarted,
        WebhookEventType::CouncilAgendaItemChanged,
        WebhookEventType::CouncilVoteClosed,
        WebhookEventType::CouncilSessionEnded,
        WebhookEventType::CouncilRecordingPublished,
    ];
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    Failed,
}

text_enum!(DeliveryStatus { Pending => "pending", Delivered => "delivered", Failed => "failed" });

/// An endpoint as an administrator sets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWebhookEndpoint {
    pub url: String,
    pub description: String,
    /// Empty: every event type.
    pub event_types: Vec<WebhookEventType>,
    pub enabled: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEndpoint {
    pub id: String,
    pub url: String,
    pub description: String,
    /// `whsec_<base64>`: the signing key.
    pub secret: String,
    pub event_types: Vec<WebhookEventType>,
    pub enabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

impl WebhookEndpoint {
    pub fn wants(&self, kind: WebhookEventType) -> bool {
        self.enabled && (self.event_types.is_empty() || self.event_types.contains(&kind))
    }
}

/// A delivery the sender has claimed: everything one attempt needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueDelivery {
    pub delivery_id: String,
    /// This attempt's number (1 for the first).
    pub attempt: i64,
    pub url: String,
    pub secret: String,
    pub event_id: String,
    pub event_type: String,
    /// The event's `data`, JSON text as stored.
    pub data: String,
    pub event_created_at: i64,
}

/// What became of one attempt, and so of its delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptResult {
    pub at: i64,
    pub status_code: Option<i64>,
    /// `None` when delivered.
    pub error: Option<String>,
    pub duration_ms: i64,
    /// `Some(at)`: try again then; `None`: done (delivered, or given up when `error` is set).
    pub retry_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookAttempt {
    pub attempt: i64,
    pub at: i64,
    pub status_code: Option<i64>,
    pub error: Option<String>,
    pub duration_ms: i64,
}

/// One row of the delivery log, with its attempts, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookDelivery {
    pub id: String,
    pub endpoint_id: String,
    pub event_id: String,
    pub event_type: String,
    pub status: DeliveryStatus,
    pub next_attempt_at: Option<i64>,
    pub created_at: i64,
    pub attempts: Vec<WebhookAttempt>,
}

const ENDPOINT_COLS: &str = "id, url, description, secret, event_types, enabled, created_at, updated_at";

fn endpoint(row: &AnyRow) -> Result<WebhookEndpoint> {
    let types: String = row.try_get("event_types")?;
    let names: Vec<String> =
        serde_json::from_str(&types).map_err(|e| StoreError::Corrupt(format!("event_types: {e}")))?;
    Ok(WebhookEndpoint {
        id: row.try_get("id")?,
        url: row.try_get("url")?,
        description: row.try_get("description")?,
        secret: row.try_get("secret")?,
        // A type this version no longer knows is dropped, not fatal.
        event_types: names.iter().filter_map(|n| n.parse().ok()).collect(),
        enabled: row.try_get::<i64, _>("enabled")? != 0,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn types_json(types: &[WebhookEventType]) -> String {
    Value::from(types.iter().map(|t| t.as_str()).collect::<Vec<_>>()).to_string()
}

/// Writes an event and a pending delivery for each enabled endpoint that wants it, on `conn` (the
/// caller's transaction, so the event exists exactly when the change does). Returns the event id.
pub(crate) async fn emit(conn: &mut AnyConnection, kind: WebhookEventType, data: &Value, now: i64) -> Result<String> {
    let sql = format!("SELECT {ENDPOINT_COLS} FROM webhook_endpoints WHERE enabled = 1");
    let endpoints = sqlx::query(&sql).fetch_all(&mut *conn).await?;
    let wanted: Vec<WebhookEndpoint> =
        endpoints.iter().map(endpoint).collect::<Result<Vec<_>>>()?.into_iter().filter(|e| e.wants(kind)).collect();
    let id = format!("msg_{}", new_sortable_id());
    if wanted.is_empty() {
        // Nobody listens: nothing to keep (an endpoint added later does not receive the past).
        return Ok(id);
    }
    sqlx::query("INSERT INTO webhook_events (id, type, data, created_at) VALUES ($1, $2, $3, $4)")
        .bind(&id)
        .bind(kind.as_str())
        .bind(data.to_string())
        .bind(now)
        .execute(&mut *conn)
        .await?;
    for e in wanted {
        sqlx::query(
            "INSERT INTO webhook_deliveries (id, endpoint_id, event_id, status, attempts, next_attempt_at, \
             created_at, updated_at) VALUES ($1, $2, $3, 'pending', 0, $4, $4, $4)",
        )
        .bind(new_sortable_id())
        .bind(&e.id)
        .bind(&id)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }
    tracing::debug!(event = %id, kind = %kind, "webhook event queued");
    Ok(id)
}

/// An appointment as webhooks show it: no name, email or details of the citizen.
pub(crate) fn appointment_data(a: &Appointment) -> Value {
    json!({
        "id": a.id,
        "code": a.code,
        "office_id": a.office_id,
        "service_id": a.service_id,
        "official_id": a.official_id,
        "starts_at": a.starts_at,
        "ends_at": a.ends_at,
        "mode": a.mode.as_str(),
        "status": a.status.as_str(),
    })
}

/// The event a status change makes, if any (none when the status stays the same).
pub(crate) fn status_event(from: crate::Status, to: crate::Status) -> Option<WebhookEventType> {
    if from == to {
        return None;
    }
    match to {
        crate::Status::Cancelled => Some(WebhookEventType::AppointmentCancelled),
        crate::Status::Completed => Some(WebhookEventType::AppointmentEnded),
        crate::Status::NoShow => Some(WebhookEventType::AppointmentNoShow),
        crate::Status::Confirmed => None,
    }
}

/// [`emit`] for the appointment `id` as it stands in the transaction. `NotFound` if absent.
pub(crate) async fn emit_for(conn: &mut AnyConnection, id: &str, kind: WebhookEventType, now: i64) -> Result<()> {
    let sql = format!("SELECT {} FROM appointments WHERE id = $1", crate::rows::APPOINTMENT_COLS);
    let row = sqlx::query(&sql).bind(id).fetch_optional(&mut *conn).await?.ok_or(StoreError::NotFound)?;
    emit(conn, kind, &appointment_data(&crate::rows::appointment(&row)?), now).await?;
    Ok(())
}

/// Whether an agenda item started or ended (`council.agenda_item_changed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemChange {
    Started,
    Ended,
}

impl Store {
    /// Writes an event of an appointment in its own transaction, for changes the store does not
    /// make itself (a citizen waiting in the lobby). `NotFound` if the appointment is absent.
    pub async fn emit_appointment_event(&self, id: &str, kind: WebhookEventType, now: i64) -> Result<()> {
        self.retrying("emit_appointment_event", || async move {
            let mut tx = self.begin().await?;
            emit_for(&mut tx, id, kind, now).await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    /// `council.session_started` / `council.session_ended` for a session.
    pub async fn emit_council_session_event(&self, session_id: &str, kind: WebhookEventType, now: i64) -> Result<()> {
        let session = self.council_session(session_id).await?.ok_or(StoreError::NotFound)?;
        let data = json!({
            "session_id": session.id,
            "title": session.title,
            "body": session.body.as_str(),
            "scheduled_at": session.scheduled_at,
        });
        self.emit_alone(kind, &data, now).await
    }

    /// `council.agenda_item_changed`: an item of the agenda started or ended.
    pub async fn emit_council_item_event(
        &self,
        session_id: &str,
        item_id: &str,
        change: ItemChange,
        now: i64,
    ) -> Result<()> {
        let title = self.council_items(session_id).await?.into_iter().find(|i| i.id == item_id).map(|i| i.title);
        let data = json!({
            "session_id": session_id,
            "item_id": item_id,
            "title": title,
            "change": match change { ItemChange::Started => "started", ItemChange::Ended => "ended" },
        });
        self.emit_alone(WebhookEventType::CouncilAgendaItemChanged, &data, now).await
    }

    /// `council.vote_closed` from the stored, closed vote: its result and totals only. Neither the
    /// voters nor, for an open vote, the choices by name go out (the minutes have those); for a
    /// secret ballot no row could link them anyway. `NotFound` unless the vote is closed.
    pub async fn emit_vote_closed_event(&self, vote_id: &str, now: i64) -> Result<()> {
        let row = sqlx::query(
            "SELECT v.session_id, v.item_id, v.secret, v.closed_at, v.favourable, v.contrary, v.abstained, v.outcome, \
             i.title FROM council_votes v LEFT JOIN council_items i ON i.id = v.item_id WHERE v.id = $1",
        )
        .bind(vote_id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound)?;
        let closed_at: Option<i64> = row.try_get("closed_at")?;
        let Some(closed_at) = closed_at else { return Err(StoreError::NotFound) };
        let (session_id, item_id): (String, String) = (row.try_get("session_id")?, row.try_get("item_id")?);
        let (title, outcome): (Option<String>, Option<String>) = (row.try_get("title")?, row.try_get("outcome")?);
        let secret = row.try_get::<i64, _>("secret")? != 0;
        let count = |column: &str| -> Result<i64> { Ok(row.try_get::<Option<i64>, _>(column)?.unwrap_or(0)) };
        let (favourable, contrary, abstained) = (count("favourable")?, count("contrary")?, count("abstained")?);
        let data = json!({
            "session_id": session_id,
            "vote_id": vote_id,
            "item_id": item_id,
            "item_title": title,
            "secret": secret,
            "closed_at": closed_at,
            "outcome": outcome,
            "totals": { "favourable": favourable, "contrary": contrary, "abstained": abstained },
        });
        self.emit_alone(WebhookEventType::CouncilVoteClosed, &data, now).await
    }

    /// `council.recording_published`: a recording entered the public archive.
    pub async fn emit_recording_published_event(&self, recording: &crate::Recording, now: i64) -> Result<()> {
        let data = json!({
            "session_id": recording.session_id,
            "recording_id": recording.id,
            "started_at": recording.started_at,
            "ended_at": recording.ended_at,
            "duration_ms": recording.duration_ms,
            "bytes": recording.bytes,
            "sha256": recording.sha256,
        });
        self.emit_alone(WebhookEventType::CouncilRecordingPublished, &data, now).await
    }

    /// An event in a transaction of its own (for changes stored outside a transaction of ours).
    async fn emit_alone(&self, kind: WebhookEventType, data: &Value, now: i64) -> Result<()> {
        self.retrying("emit_webhook_event", || async move {
            let mut tx = self.begin().await?;
            emit(&mut tx, kind, data, now).await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    // --- endpoints ---------------------------------------------------------------------------------

    pub async fn create_webhook_endpoint(
        &self,
        new: &NewWebhookEndpoint,
        secret: &str,
        now: i64,
    ) -> Result<WebhookEndpoint> {
        let endpoint = WebhookEndpoint {
            id: new_id(),
            url: new.url.clone(),
            description: new.description.clone(),
            secret: secret.to_owned(),
            event_types: new.event_types.clone(),
            enabled: new.enabled,
            created_at: now,
            updated_at: now,
        };
        let e = &endpoint;
        self.retrying("create_webhook_endpoint", || async move {
            sqlx::query(
                "INSERT INTO webhook_endpoints (id, url, description, secret, event_types, enabled, created_at, \
                 updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
            )
            .bind(&e.id)
            .bind(&e.url)
            .bind(&e.description)
            .bind(&e.secret)
            .bind(types_json(&e.event_types))
            .bind(i64::from(e.enabled))
            .bind(now)
            .execute(&self.pool)
            .await?;
            Ok(())
        })
        .await?;
        Ok(endpoint)
    }

    pub async fn webhook_endpoints(&self) -> Result<Vec<WebhookEndpoint>> {
        let sql = format!("SELECT {ENDPOINT_COLS} FROM webhook_endpoints ORDER BY created_at, id");
        sqlx::query(&sql).fetch_all(&self.pool).await?.iter().map(endpoint).collect()
    }

    pub async fn webhook_endpoint(&self, id: &str) -> Result<Option<WebhookEndpoint>> {
        let sql = format!("SELECT {ENDPOINT_COLS} FROM webhook_endpoints WHERE id = $1");
        sqlx::query(&sql).bind(id).fetch_optional(&self.pool).await?.as_ref().map(endpoint).transpose()
    }

    /// Changes an endpoint (not its secret). `NotFound` if absent.
    pub async fn update_webhook_endpoint(
        &self,
        id: &str,
        update: &NewWebhookEndpoint,
        now: i64,
    ) -> Result<WebhookEndpoint> {
        let changed = self
            .retrying("update_webhook_endpoint", || async move {
                Ok(sqlx::query(
                    "UPDATE webhook_endpoints SET url = $1, description = $2, event_types = $3, enabled = $4, \
                     updated_at = $5 WHERE id = $6",
                )
                .bind(&update.url)
                .bind(&update.description)
                .bind(types_json(&update.event_types))
                .bind(i64::from(update.enabled))
                .bind(now)
                .bind(id)
                .execute(&self.pool)
                .await?
                .rows_affected())
            })
            .await?;
        if changed == 0 {
            return Err(StoreError::NotFound);
        }
        self.webhook_endpoint(id).await?.ok_or(StoreError::NotFound)
    }

    /// Deletes an endpoint with its deliveries and their log. `NotFound` if absent.
    pub async fn delete_webhook_endpoint(&self, id: &str) -> Result<()> {
        self.delete_row("delete_webhook_endpoint", "webhook_endpoints", id).await
    }

    // --- sending -----------------------------------------------------------------------------------

    /// Claims up to `limit` deliveries due at `now` (pending, endpoint enabled), oldest first: each
    /// claimed one is pushed to `now + lease` so that a second sender (another node, or this one
    /// after a crash mid-attempt) skips it until the attempt's result is recorded or the lease ends.
    pub async fn claim_due_webhook_deliveries(&self, now: i64, lease: i64, limit: i64) -> Result<Vec<DueDelivery>> {
        let rows = sqlx::query(
            "SELECT d.id, d.attempts, d.next_attempt_at, e.url, e.secret, v.id AS event_id, v.type, v.data, \
             v.created_at AS event_created_at FROM webhook_deliveries d \
             JOIN webhook_endpoints e ON e.id = d.endpoint_id JOIN webhook_events v ON v.id = d.event_id \
             WHERE d.status = 'pending' AND d.next_attempt_at <= $1 AND e.enabled = 1 \
             ORDER BY d.next_attempt_at, d.id LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut claimed = Vec::new();
        for row in rows {
            let id: String = row.try_get("id")?;
            let due: i64 = row.try_get("next_attempt_at")?;
            let until = now.saturating_add(lease);
            if self.claim_outbox_row("webhook_deliveries", "pending", &id, Some(due), until).await? {
                claimed.push(DueDelivery {
                    delivery_id: id,
                    attempt: row.try_get::<i64, _>("attempts")? + 1,
                    url: row.try_get("url")?,
                    secret: row.try_get("secret")?,
                    event_id: row.try_get("event_id")?,
                    event_type: row.try_get("type")?,
                    data: row.try_get("data")?,
                    event_created_at: row.try_get("event_created_at")?,
                });
            }
        }
        Ok(claimed)
    }

    /// Logs an attempt and moves its delivery on: delivered (no error), again at `retry_at`, or
    /// failed for good.
    pub async fn record_webhook_attempt(&self, delivery: &DueDelivery, result: &AttemptResult) -> Result<()> {
        let status = match (&result.error, result.retry_at) {
            (None, _) => DeliveryStatus::Delivered,
            (Some(_), Some(_)) => DeliveryStatus::Pending,
            (Some(_), None) => DeliveryStatus::Failed,
        };
        let next = if status == DeliveryStatus::Pending { result.retry_at } else { None };
        self.retrying("record_webhook_attempt", || async move {
            let mut tx = self.begin().await?;
            sqlx::query(
                "UPDATE webhook_deliveries SET status = $1, attempts = $2, next_attempt_at = $3, updated_at = $4 \
                 WHERE id = $5",
            )
            .bind(status.as_str())
            .bind(delivery.attempt)
            .bind(next)
            .bind(result.at)
            .bind(&delivery.delivery_id)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO webhook_attempts (id, delivery_id, attempt, at, status_code, error, duration_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(new_sortable_id())
            .bind(&delivery.delivery_id)
            .bind(delivery.attempt)
            .bind(result.at)
            .bind(result.status_code)
            .bind(result.error.as_deref())
            .bind(result.duration_ms)
            .execute(&mut *tx)
            .await
            // The endpoint (and so the delivery) was deleted during the attempt: nothing to log.
            .map_err(|e| if crate::is_foreign_key_violation(&e) { StoreError::NotFound } else { e.into() })?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    /// The delivery log of an endpoint, newest first, at most `limit`, each with its attempts.
    pub async fn webhook_deliveries(&self, endpoint_id: &str, limit: i64) -> Result<Vec<WebhookDelivery>> {
        let rows = sqlx::query(
            "SELECT d.id, d.endpoint_id, d.event_id, v.type, d.status, d.next_attempt_at, d.created_at \
             FROM webhook_deliveries d JOIN webhook_events v ON v.id = d.event_id WHERE d.endpoint_id = $1 \
             ORDER BY d.id DESC LIMIT $2",
        )
        .bind(endpoint_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::new();
        for row in rows {
            let status: String = row.try_get("status")?;
            let id: String = row.try_get("id")?;
            let attempts = sqlx::query(
                "SELECT attempt, at, status_code, error, duration_ms FROM webhook_attempts WHERE delivery_id = $1 \
                 ORDER BY attempt, id",
            )
            .bind(&id)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|a| {
                Ok(WebhookAttempt {
                    attempt: a.try_get("attempt")?,
                    at: a.try_get("at")?,
                    status_code: a.try_get("status_code")?,
                    error: a.try_get("error")?,
                    duration_ms: a.try_get("duration_ms")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
            out.push(WebhookDelivery {
                id,
                endpoint_id: row.try_get("endpoint_id")?,
                event_id: row.try_get("event_id")?,
                event_type: row.try_get("type")?,
                status: status.parse::<DeliveryStatus>().map_err(StoreError::Corrupt)?,
                next_attempt_at: row.try_get("next_attempt_at")?,
                created_at: row.try_get("created_at")?,
                attempts,
            });
        }
        Ok(out)
    }

    /// Forgets finished deliveries (delivered or given up) and events created before `cutoff`, with
    /// their log; pending ones stay whatever their age. Returns how many events went.
    pub async fn delete_webhook_history_before(&self, cutoff: i64) -> Result<u64> {
        self.retrying("delete_webhook_history_before", || async move {
            let mut tx = self.begin().await?;
            sqlx::query("DELETE FROM webhook_deliveries WHERE status <> 'pending' AND created_at < $1")
                .bind(cutoff)
                .execute(&mut *tx)
                .await?;
            let events = sqlx::query(
                "DELETE FROM webhook_events WHERE created_at < $1 \
                 AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = webhook_events.id)",
            )
            .bind(cutoff)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            tx.commit().await?;
            Ok(events)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store() -> (Store, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(&format!("sqlite:{}", dir.path().join("w.db").display())).await.unwrap();
        (store, dir)
    }

    fn endpoint(types: Vec<WebhookEventType>) -> NewWebhookEndpoint {
        NewWebhookEndpoint {
            url: "http://127.0.0.1:9/h".into(),
            description: String::new(),
            event_types: types,
            enabled: true,
        }
    }

    #[tokio::test]
    async fn events_fan_out_to_interested_endpoints_and_attempts_are_logged() {
        let (store, _dir) = store().await;
        let all = store.create_webhook_endpoint(&endpoint(vec![]), "whsec_a", 10).await.unwrap();
        let votes = store
            .create_webhook_endpoint(&endpoint(vec![WebhookEventType::CouncilVoteClosed]), "whsec_b", 10)
            .await
            .unwrap();
        let mut off = endpoint(vec![]);
        off.enabled = false;
        store.create_webhook_endpoint(&off, "whsec_c", 10).await.unwrap();
        store.emit_alone(WebhookEventType::AppointmentBooked, &json!({"id": "x"}), 100).await.unwrap();

        assert!(store.claim_due_webhook_deliveries(99, 60, 10).await.unwrap().is_empty(), "not due yet");
        let due = store.claim_due_webhook_deliveries(100, 60, 10).await.unwrap();
        assert_eq!(due.len(), 1, "only the endpoint of every type wants a booking");
        assert_eq!(
            (due[0].url.as_str(), due[0].secret.as_str(), due[0].attempt),
            ("http://127.0.0.1:9/h", "whsec_a", 1)
        );
        assert!(due[0].event_id.starts_with("msg_"));
        assert!(store.claim_due_webhook_deliveries(100, 60, 10).await.unwrap().is_empty(), "claimed: leased");

        let failed = AttemptResult {
            at: 101,
            status_code: Some(500),
            error: Some("HTTP 500".into()),
            duration_ms: 3,
            retry_at: Some(130),
        };
        store.record_webhook_attempt(&due[0], &failed).await.unwrap();
        assert!(store.claim_due_webhook_deliveries(129, 60, 10).await.unwrap().is_empty());
        let again = store.claim_due_webhook_deliveries(130, 60, 10).await.unwrap();
        assert_eq!(again[0].attempt, 2);
        let ok = AttemptResult { at: 131, status_code: Some(204), error: None, duration_ms: 2, retry_at: None };
        store.record_webhook_attempt(&again[0], &ok).await.unwrap();

        let log = store.webhook_deliveries(&all.id, 10).await.unwrap();
        assert_eq!(log.len(), 1);
        assert_eq!(log[0].status, DeliveryStatus::Delivered);
        assert_eq!(log[0].event_type, "appointment.booked");
        let codes: Vec<_> = log[0].attempts.iter().map(|a| (a.attempt, a.status_code)).collect();
        assert_eq!(codes, [(1, Some(500)), (2, Some(204))]);
        assert!(store.webhook_deliveries(&votes.id, 10).await.unwrap().is_empty());

        assert_eq!(store.delete_webhook_history_before(1000).await.unwrap(), 1);
        assert!(store.webhook_deliveries(&all.id, 10).await.unwrap().is_empty());
    }
}
