//! Recordings of council sessions (`0004_recordings.sql`): one row per published WebM file. The
//! store keeps the chapters as the JSON text it is given; their shape is the edge's business.

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::CouncilBody;
use crate::{Result, Store, StoreError, is_foreign_key_violation, is_unique_violation};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRecording {
    /// Chosen by the caller (the raw files are written under it before the row exists).
    pub id: String,
    pub session_id: String,
    /// Inside `<data_dir>/recordings/<session_id>/`.
    pub file_name: String,
    pub started_at: i64,
    pub ended_at: i64,
    pub duration_ms: i64,
    pub bytes: i64,
    /// Lowercase hex SHA-256 of the file.
    pub sha256: String,
    /// JSON text.
    pub chapters: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Recording {
    pub id: String,
    pub session_id: String,
    pub file_name: String,
    pub started_at: i64,
    pub ended_at: i64,
    pub duration_ms: i64,
    pub bytes: i64,
    pub sha256: String,
    pub chapters: String,
    pub created_at: i64,
}

/// A session that has at least one recording, as the public archive lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArchivedSession {
    pub session_id: String,
    pub title: String,
    pub body: CouncilBody,
    pub scheduled_at: i64,
    pub recordings: i64,
    /// Sum of the recordings' durations.
    pub duration_ms: i64,
}

const COLS: &str = "id, session_id, file_name, started_at, ended_at, duration_ms, bytes, sha256, chapters, created_at";

fn recording(row: &AnyRow) -> Result<Recording> {
    Ok(Recording {
        id: row.try_get("id")?,
        session_id: row.try_get("session_id")?,
        file_name: row.try_get("file_name")?,
        started_at: row.try_get("started_at")?,
        ended_at: row.try_get("ended_at")?,
        duration_ms: row.try_get("duration_ms")?,
        bytes: row.try_get("bytes")?,
        sha256: row.try_get("sha256")?,
        chapters: row.try_get("chapters")?,
        created_at: row.try_get("created_at")?,
    })
}

impl Store {
    /// `NotFound` if the session does not exist, `Conflict` if the id is taken.
    pub async fn insert_recording(&self, new: &NewRecording, now: i64) -> Result<Recording> {
        if new.ended_at < new.started_at || new.duration_ms < 0 || new.bytes < 0 {
            return Err(StoreError::Invalid("recording times or size"));
        }
        self.retrying("insert_recording", || async move {
            let mut tx = self.begin().await?;
            sqlx::query(
                "INSERT INTO council_recordings \
                 (id, session_id, file_name, started_at, ended_at, duration_ms, bytes, sha256, chapters, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(&new.id)
            .bind(&new.session_id)
            .bind(&new.file_name)
            .bind(new.started_at)
            .bind(new.ended_at)
            .bind(new.duration_ms)
            .bind(new.bytes)
            .bind(&new.sha256)
            .bind(&new.chapters)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(|e| {
                if is_foreign_key_violation(&e) {
                    StoreError::NotFound
                } else if is_unique_violation(&e) {
                    StoreError::Conflict("recording")
                } else {
                    e.into()
                }
            })?;
            tx.commit().await?;
            Ok(())
        })
        .await?;
        self.recording(&new.id).await?.ok_or(StoreError::NotFound)
    }

    pub async fn recording(&self, id: &str) -> Result<Option<Recording>> {
        let sql = format!("SELECT {COLS} FROM council_recordings WHERE id = $1");
        sqlx::query(&sql).bind(id).fetch_optional(&self.pool).await?.as_ref().map(recording).transpose()
    }

    /// A session's recordings, in the order they were made.
    pub async fn recordings_for_session(&self, session_id: &str) -> Result<Vec<Recording>> {
        let sql = format!("SELECT {COLS} FROM council_recordings WHERE session_id = $1 ORDER BY started_at, id");
        sqlx::query(&sql).bind(session_id).fetch_all(&self.pool).await?.iter().map(recording).collect()
    }

    /// Sessions with at least one recording, latest session first.
    pub async fn archived_sessions(&self) -> Result<Vec<ArchivedSession>> {
        // CAST: PostgreSQL's SUM of BIGINT is NUMERIC, which the Any driver does not decode as i64.
        let rows = sqlx::query(
            "SELECT s.id, s.title, s.body, s.scheduled_at, COUNT(r.id) AS recordings, \
             CAST(SUM(r.duration_ms) AS BIGINT) AS duration_ms \
             FROM council_sessions s JOIN council_recordings r ON r.session_id = s.id \
             GROUP BY s.id, s.title, s.body, s.scheduled_at ORDER BY s.scheduled_at DESC, s.id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(ArchivedSession {
                    session_id: row.try_get("id")?,
                    title: row.try_get("title")?,
                    body: row
                        .try_get::<String, _>("body")?
                        .parse()
                        .map_err(|e| StoreError::Corrupt(format!("body: {e}")))?,
                    scheduled_at: row.try_get("scheduled_at")?,
                    recordings: row.try_get("recordings")?,
                    duration_ms: row.try_get("duration_ms")?,
                })
            })
            .collect()
    }

    /// `NotFound` if there was no such row.
    pub async fn delete_recording(&self, id: &str) -> Result<()> {
        self.delete_row("delete_recording", "council_recordings", id).await
    }

    /// Recordings whose `ended_at` is before `cutoff` (the retention pass deletes them), oldest first.
    pub async fn recordings_ended_before(&self, cutoff: i64) -> Result<Vec<Recording>> {
        let sql = format!("SELECT {COLS} FROM council_recordings WHERE ended_at < $1 ORDER BY ended_at, id");
        sqlx::query(&sql).bind(cutoff).fetch_all(&self.pool).await?.iter().map(recording).collect()
    }
}
