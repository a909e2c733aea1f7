//! Smart-working calendars: absences, officials' own calendar sources with their busy sets, and
//! the feed tokens. Rows only: what an absence means for availability is `domain`'s business.

use std::fmt;
use std::str::FromStr;

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::rows::{self, APPOINTMENT_COLS, new_id, placeholders};
use crate::{Appointment, Result, Store, StoreError, is_foreign_key_violation, is_unique_violation};

// --- model ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AbsenceKind {
    Holiday,
    Sick,
    Training,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SourceKind {
    Url,
    Upload,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FeedSubject {
    Official,
    Office,
}

text_enum!(AbsenceKind { Holiday => "holiday", Sick => "sick", Training => "training", Other => "other" });
text_enum!(SourceKind { Url => "url", Upload => "upload" });
text_enum!(FeedSubject { Official => "official", Office => "office" });

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAbsence {
    pub user_id: String,
    pub kind: AbsenceKind,
    pub starts_at: i64,
    pub ends_at: i64,
    /// Whole local days (`starts_at`/`ends_at` are local midnights) rather than hours.
    pub all_day: bool,
    pub note: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Absence {
    pub id: String,
    pub user_id: String,
    pub kind: AbsenceKind,
    pub starts_at: i64,
    pub ends_at: i64,
    pub all_day: bool,
    pub note: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSource {
    pub user_id: String,
    pub kind: SourceKind,
    pub label: String,
    /// Only for `Url` sources. A secret: never log it.
    pub url: Option<String>,
}

#[derive(Clone, PartialEq, Eq)]
pub struct CalendarSource {
    pub id: String,
    pub user_id: String,
    pub kind: SourceKind,
    pub label: String,
    pub url: Option<String>,
    pub created_at: i64,
    pub last_fetch_at: Option<i64>,
    pub last_ok_at: Option<i64>,
    pub last_error: Option<String>,
    /// Intervals in the current busy set.
    pub busy_count: i64,
}

/// Without the URL: a `{:?}` in a log line must not leak it.
impl fmt::Debug for CalendarSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CalendarSource")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("kind", &self.kind)
            .field("label", &self.label)
            .field("url", &self.url.as_ref().map(|_| "<secret>"))
            .field("last_fetch_at", &self.last_fetch_at)
            .field("last_ok_at", &self.last_ok_at)
            .field("last_error", &self.last_error)
            .field("busy_count", &self.busy_count)
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusyInterval {
    pub source_id: String,
    pub user_id: String,
    pub starts_at: i64,
    pub ends_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedToken {
    pub kind: FeedSubject,
    pub subject_id: String,
    pub generation: i64,
    pub created_at: i64,
}

// --- rows ------------------------------------------------------------------------------------------------

fn text_enum<T: FromStr<Err = String>>(row: &AnyRow, column: &'static str) -> Result<T> {
    let text: String = row.try_get(column)?;
    text.parse().map_err(|e| StoreError::Corrupt(format!("{column}: {e}")))
}

const ABSENCE_COLS: &str = "id, user_id, kind, starts_at, ends_at, all_day, note, created_at";

fn absence(row: &AnyRow) -> Result<Absence> {
    Ok(Absence {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        kind: text_enum(row, "kind")?,
        starts_at: row.try_get("starts_at")?,
        ends_at: row.try_get("ends_at")?,
        all_day: row.try_get::<i64, _>("all_day")? != 0,
        note: row.try_get("note")?,
        created_at: row.try_get("created_at")?,
    })
}

/// The source columns plus its busy count (a correlated subquery, portable).
const SOURCE_SELECT: &str = "SELECT s.id, s.user_id, s.kind, s.label, s.url, s.created_at, s.last_fetch_at, \
     s.last_ok_at, s.last_error, (SELECT COUNT(*) FROM busy_intervals b WHERE b.source_id = s.id) AS busy_count \
     FROM calendar_sources s";

fn source(row: &AnyRow) -> Result<CalendarSource> {
    Ok(CalendarSource {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        kind: text_enum(row, "kind")?,
        label: row.try_get("label")?,
        url: row.try_get("url")?,
        created_at: row.try_get("created_at")?,
        last_fetch_at: row.try_get("last_fetch_at")?,
        last_ok_at: row.try_get("last_ok_at")?,
        last_error: row.try_get("last_error")?,
        busy_count: row.try_get("busy_count")?,
    })
}

fn check_range(starts_at: i64, ends_at: i64) -> Result<()> {
    if ends_at <= starts_at { Err(StoreError::Invalid("an interval must end after it starts")) } else { Ok(()) }
}

/// Rows per multi-row INSERT of busy intervals (4 parameters each, far below every limit).
const BUSY_PER_STATEMENT: usize = 200;

async fn insert_busy(
    conn: &mut sqlx::AnyConnection,
    source_id: &str,
    user_id: &str,
    busy: &[(i64, i64)],
) -> Result<()> {
    for chunk in busy.chunks(BUSY_PER_STATEMENT) {
        let values = (0..chunk.len())
            .map(|i| format!("($1, $2, ${}, ${})", 3 + 2 * i, 4 + 2 * i))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!("INSERT INTO busy_intervals (source_id, user_id, starts_at, ends_at) VALUES {values}");
        let mut query = sqlx::query(&sql).bind(source_id).bind(user_id);
        for (s, e) in chunk {
            query = query.bind(*s).bind(*e);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

fn valid_busy(busy: &[(i64, i64)]) -> Result<()> {
    busy.iter().try_for_each(|(s, e)| check_range(*s, *e))
}

impl Store {
    // --- absences ------------------------------------------------------------------------------------

    /// `Invalid` if it does not end after it starts, `NotFound` if the user does not exist.
    pub async fn create_absence(&self, new: &NewAbsence, now: i64) -> Result<Absence> {
        check_range(new.starts_at, new.ends_at)?;
        let absence = Absence {
            id: new_id(),
            user_id: new.user_id.clone(),
            kind: new.kind,
            starts_at: new.starts_at,
            ends_at: new.ends_at,
            all_day: new.all_day,
            note: new.note.clone(),
            created_at: now,
        };
        let a = &absence;
        self.retrying("create_absence", || async move {
            sqlx::query(
                "INSERT INTO absences (id, user_id, kind, starts_at, ends_at, all_day, note, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&a.id)
            .bind(&a.user_id)
            .bind(a.kind.as_str())
            .bind(a.starts_at)
            .bind(a.ends_at)
            .bind(i64::from(a.all_day))
            .bind(&a.note)
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(|e| if is_foreign_key_violation(&e) { StoreError::NotFound } else { e.into() })?;
            Ok(())
        })
        .await?;
        Ok(absence)
    }

    /// Absences of these users overlapping `[from, to)`, by start.
    pub async fn absences_of_users(&self, user_ids: &[String], from: i64, to: i64) -> Result<Vec<Absence>> {
        if user_ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {ABSENCE_COLS} FROM absences WHERE user_id IN ({}) AND starts_at < $1 AND ends_at > $2 \
             ORDER BY starts_at, id",
            placeholders(3, user_ids.len())
        );
        let mut query = sqlx::query(&sql).bind(to).bind(from);
        for id in user_ids {
            query = query.bind(id);
        }
        query.fetch_all(&self.pool).await?.iter().map(absence).collect()
    }

    /// Deletes one of `user_id`'s absences; `NotFound` if there is none with that id for that user.
    pub async fn delete_absence(&self, user_id: &str, id: &str) -> Result<()> {
        let gone = self
            .retrying("delete_absence", || async move {
                Ok(sqlx::query("DELETE FROM absences WHERE id = $1 AND user_id = $2")
                    .bind(id)
                    .bind(user_id)
                    .execute(&self.pool)
                    .await?
                    .rows_affected())
            })
            .await?;
        if gone == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }

    // --- calendar sources ----------------------------------------------------------------------------

    /// A source with its first busy set (`busy`, possibly empty), in one transaction: an upload
    /// exists only with what was read from it. `NotFound` if the user does not exist.
    pub async fn create_source(&self, new: &NewSource, busy: &[(i64, i64)], now: i64) -> Result<CalendarSource> {
        valid_busy(busy)?;
        let id = new_id();
        let id_ref = &id;
        self.retrying("create_source", || async move {
            let mut tx = self.begin().await?;
            sqlx::query(
                "INSERT INTO calendar_sources (id, user_id, kind, label, url, created_at, last_fetch_at, last_ok_at, \
                 last_error) VALUES ($1, $2, $3, $4, $5, $6, $7, $7, NULL)",
            )
            .bind(id_ref)
            .bind(&new.user_id)
            .bind(new.kind.as_str())
            .bind(&new.label)
            .bind(new.url.as_deref())
            .bind(now)
            // An upload is read at creation; a URL source is stamped by its first fetch.
            .bind(if new.kind == SourceKind::Upload { Some(now) } else { None })
            .execute(&mut *tx)
            .await
            .map_err(|e| if is_foreign_key_violation(&e) { StoreError::NotFound } else { e.into() })?;
            insert_busy(&mut tx, id_ref, &new.user_id, busy).await?;
            tx.commit().await?;
            Ok(())
        })
        .await?;
        self.source(&id).await?.ok_or(StoreError::NotFound)
    }

    pub async fn source(&self, id: &str) -> Result<Option<CalendarSource>> {
        let sql = format!("{SOURCE_SELECT} WHERE s.id = $1");
        let row = sqlx::query(&sql).bind(id).fetch_optional(&self.pool).await?;
        row.as_ref().map(source).transpose()
    }

    /// A user's sources, oldest first.
    pub async fn sources_of_user(&self, user_id: &str) -> Result<Vec<CalendarSource>> {
        let sql = format!("{SOURCE_SELECT} WHERE s.user_id = $1 ORDER BY s.created_at, s.id");
        sqlx::query(&sql).bind(user_id).fetch_all(&self.pool).await?.iter().map(source).collect()
    }

    /// Every URL source (the periodic refresh).
    pub async fn url_sources(&self) -> Result<Vec<CalendarSource>> {
        let sql = format!("{SOURCE_SELECT} WHERE s.kind = 'url' ORDER BY s.id");
        sqlx::query(&sql).fetch_all(&self.pool).await?.iter().map(source).collect()
    }

    /// Deletes one of `user_id`'s sources and its busy set. `NotFound` if not that user's.
    pub async fn delete_source(&self, user_id: &str, id: &str) -> Result<()> {
        let gone = self
            .retrying("delete_source", || async move {
                let mut tx = self.begin().await?;
                let gone = sqlx::query("DELETE FROM calendar_sources WHERE id = $1 AND user_id = $2")
                    .bind(id)
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if gone > 0 {
                    sqlx::query("DELETE FROM busy_intervals WHERE source_id = $1").bind(id).execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(gone)
            })
            .await?;
        if gone == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }

    /// A successful import: the busy set is replaced as a whole and the error cleared, atomically
    /// (a reader sees the old set or the new one, never a mix). `NotFound` if the source is gone.
    pub async fn replace_busy(&self, source_id: &str, busy: &[(i64, i64)], now: i64) -> Result<()> {
        valid_busy(busy)?;
        self.retrying("replace_busy", || async move {
            let mut tx = self.begin().await?;
            let row = sqlx::query(
                "UPDATE calendar_sources SET last_fetch_at = $1, last_ok_at = $1, last_error = NULL WHERE id = $2 \
                 RETURNING user_id",
            )
            .bind(now)
            .bind(source_id)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(row) = row else { return Err(StoreError::NotFound) };
            let user_id: String = row.try_get("user_id")?;
            sqlx::query("DELETE FROM busy_intervals WHERE source_id = $1").bind(source_id).execute(&mut *tx).await?;
            insert_busy(&mut tx, source_id, &user_id, busy).await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    /// A failed import: the busy set stays as it was; the error is recorded for the official.
    pub async fn record_fetch_error(&self, source_id: &str, message: &str, now: i64) -> Result<()> {
        let changed = self
            .retrying("record_fetch_error", || async move {
                Ok(sqlx::query("UPDATE calendar_sources SET last_fetch_at = $1, last_error = $2 WHERE id = $3")
                    .bind(now)
                    .bind(message)
                    .bind(source_id)
                    .execute(&self.pool)
                    .await?
                    .rows_affected())
            })
            .await?;
        if changed == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }

    /// External busy intervals of these users overlapping `[from, to)`, by start.
    pub async fn busy_of_users(&self, user_ids: &[String], from: i64, to: i64) -> Result<Vec<BusyInterval>> {
        if user_ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT source_id, user_id, starts_at, ends_at FROM busy_intervals WHERE user_id IN ({}) \
             AND starts_at < $1 AND ends_at > $2 ORDER BY starts_at, ends_at",
            placeholders(3, user_ids.len())
        );
        let mut query = sqlx::query(&sql).bind(to).bind(from);
        for id in user_ids {
            query = query.bind(id);
        }
        query
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| {
                Ok(BusyInterval {
                    source_id: r.try_get("source_id")?,
                    user_id: r.try_get("user_id")?,
                    starts_at: r.try_get("starts_at")?,
                    ends_at: r.try_get("ends_at")?,
                })
            })
            .collect()
    }

    /// One official's appointments overlapping `[from, to)`, any status, by start (month view).
    pub async fn appointments_of_official(&self, official_id: &str, from: i64, to: i64) -> Result<Vec<Appointment>> {
        let sql = format!(
            "SELECT {APPOINTMENT_COLS} FROM appointments WHERE official_id = $1 AND starts_at < $2 AND ends_at > $3 \
             ORDER BY starts_at, id"
        );
        let rows = sqlx::query(&sql).bind(official_id).bind(to).bind(from).fetch_all(&self.pool).await?;
        rows.iter().map(rows::appointment).collect()
    }

    // --- feed tokens ---------------------------------------------------------------------------------

    pub async fn feed_token(&self, kind: FeedSubject, subject_id: &str) -> Result<Option<FeedToken>> {
        let row = sqlx::query(
            "SELECT kind, subject_id, generation, created_at FROM feed_tokens WHERE kind = $1 AND subject_id = $2",
        )
        .bind(kind.as_str())
        .bind(subject_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(feed_token).transpose()
    }

    pub async fn feed_token_by_hash(&self, token_hash: &str) -> Result<Option<FeedToken>> {
        let row = sqlx::query("SELECT kind, subject_id, generation, created_at FROM feed_tokens WHERE token_hash = $1")
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(feed_token).transpose()
    }

    /// Sets the feed's token (its hash and generation), replacing the previous one: the old URL
    /// stops working in the same statement. A concurrent first creation of the same feed is a
    /// `Conflict("feed")` for the loser, who reads the winner's row.
    pub async fn set_feed_token(
        &self,
        kind: FeedSubject,
        subject_id: &str,
        token_hash: &str,
        generation: i64,
        now: i64,
    ) -> Result<()> {
        self.retrying("set_feed_token", || async move {
            let mut tx = self.begin().await?;
            sqlx::query("DELETE FROM feed_tokens WHERE kind = $1 AND subject_id = $2")
                .bind(kind.as_str())
                .bind(subject_id)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO feed_tokens (token_hash, kind, subject_id, generation, created_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(token_hash)
            .bind(kind.as_str())
            .bind(subject_id)
            .bind(generation)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(|e| if is_unique_violation(&e) { StoreError::Conflict("feed") } else { e.into() })?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }
}

fn feed_token(row: &AnyRow) -> Result<FeedToken> {
    Ok(FeedToken {
        kind: text_enum(row, "kind")?,
        subject_id: row.try_get("subject_id")?,
        generation: row.try_get("generation")?,
        created_at: row.try_get("created_at")?,
    })
}
