//! Sportello's persistence: [`Store`] over SQLite (the default, a file under the data dir) or
//! PostgreSQL, through sqlx's `Any` driver and ONE portable migration set (`migrations/`).
//!
//! Invariants: no HTTP, no clock (every method that stamps a row takes `now`, Unix seconds UTC), no
//! business rules beyond what the database must guarantee itself: uniqueness (emails, booking codes)
//! and no double booking of an official (`slot_claims`, see the migration). Every change to an
//! appointment writes its audit row in the same transaction.

/// The text a stored enum is written as: `as_str`, `Display` and `FromStr` from one list of
/// `Variant => "text"` pairs (the database columns and the API hold the text).
macro_rules! text_enum {
    ($ty:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $ty {
            pub fn as_str(self) -> &'static str {
                match self { $($ty::$variant => $text),+ }
            }
        }
        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl std::str::FromStr for $ty {
            type Err = String;
            fn from_str(s: &str) -> std::result::Result<Self, String> {
                match s {
                    $($text => Ok($ty::$variant),)+
                    other => Err(format!("unknown {} {other:?}", stringify!($ty))),
                }
            }
        }
    };
}

mod admissions;
mod appio;
mod appointments;
mod calendar;
mod catalog;
mod cluster;
mod confirmations;
mod content;
mod council;
mod identity;
mod model;
mod outbox;
mod recordings;
mod restore;
mod rows;
mod sessions;
#[cfg(feature = "testing")]
pub mod testing;
mod users;
mod walkins;
mod webhooks;

use std::future::Future;
use std::time::Duration;

use sqlx::error::DatabaseError;

pub use appio::{AppioKind, AppioMessage, AppioStatus, NewAppioMessage};
pub use calendar::{
    Absence, AbsenceKind, BusyInterval, CalendarSource, FeedSubject, FeedToken, NewAbsence, NewSource, SourceKind,
};
pub use cluster::{Fence, NODE_LOCK_CLASS, NewNode, NodeLock, NodeRow, NodeState, Registered, RoomOwner};
pub use council::{
    CouncilBody, CouncilEvent, CouncilItem, CouncilSession, CouncilStatus, CouncilVote, Counts, NewCouncilSession,
    NewCouncilVote,
};
pub use identity::{CitizenAppointment, OidcLoginKind, PendingOidcLogin};
pub use model::*;
pub use recordings::{ArchivedSession, NewRecording, Recording};
pub use restore::{Restored, restore_sqlite};
pub use walkins::{CallState, Guard, NewWalkin, StaffCall, Walkin, WalkinChange, WalkinState};
pub use webhooks::{
    AttemptResult, DeliveryStatus, DueDelivery, ItemChange, NewWebhookEndpoint, WebhookAttempt, WebhookDelivery,
    WebhookEndpoint, WebhookEventType,
};

/// Errors of the store. `Conflict`/`SlotTaken`/`NotFound`/`InvalidTransition` are expected outcomes the
/// edge maps to 409/404; `Database`/`Migrate` are failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("already exists: {0}")]
    Conflict(&'static str),
    #[error("the slot is no longer free")]
    SlotTaken,
    #[error("an appointment in status {from} cannot become {to}")]
    InvalidTransition { from: Status, to: Status },
    #[error("unsupported database URL {0:?} (sqlite:… or postgres://…)")]
    UnsupportedUrl(String),
    /// An argument the database cannot store meaningfully (e.g. an empty time range, a rating
    /// outside 1–5); the edge should have refused it earlier.
    #[error("invalid value: {0}")]
    Invalid(&'static str),
    /// A write of a room whose ownership moved on (`Store::fenced`): nothing was changed.
    #[error("room {room} is no longer owned with epoch {epoch} (now {current:?}): write refused")]
    Fenced { room: String, epoch: i64, current: Option<i64> },
    /// A walk-in change its current state (or who asks) does not allow.
    #[error("the walk-in is {0}")]
    InvalidWalkin(walkins::WalkinState),
    #[error("corrupt row: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// `backup` of a PostgreSQL database: that is `pg_dump`'s job.
    #[error("backup works on SQLite only; for PostgreSQL use pg_dump (e.g. pg_dump -Fc -f FILE DATABASE_URL)")]
    BackupUnsupported,
    #[error("{0} already exists: a backup never overwrites a file")]
    BackupExists(String),
    /// `restore` of a PostgreSQL database: that is `pg_restore`'s job.
    #[error(
        "restore works on SQLite only; for PostgreSQL use pg_restore (e.g. pg_restore --clean -d DATABASE_URL FILE)"
    )]
    RestoreUnsupported,
    #[error("{0} cannot be restored: {1}")]
    NotABackup(String, String),
    #[error(
        "{file} comes from a newer Sportello (schema {found}, this one knows up to {known}): restore it with that version"
    )]
    BackupTooNew { file: String, found: i64, known: i64 },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Length of one slot-claim granule. Appointments start and end on multiples of 5 minutes.
pub const GRANULE_SECS: i64 = 300;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// The database. Cheap to clone (a pool).
#[derive(Clone)]
pub struct Store {
    pool: sqlx::AnyPool,
    backend: Backend,
    /// What it was opened with: a node's advisory lock needs a connection of its own.
    url: std::sync::Arc<str>,
    /// Set on a room's store ([`Store::fenced`]): each transaction checks the room's owner epoch.
    fence: Option<std::sync::Arc<Fence>>,
}

impl Store {
    /// Connects to `sqlite:PATH` (created if missing, mode 0600; WAL, busy timeout) or
    /// `postgres://…` and runs the migrations.
    pub async fn connect(url: &str) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let (backend, url) = if let Some(path) = url.strip_prefix("sqlite:") {
            let path = path.trim_start_matches("//");
            private_sqlite_file(path.split('?').next().unwrap_or_default())?;
            let sep = if path.contains('?') { '&' } else { '?' };
            // rwc: create the file on first start.
            (
                Backend::Sqlite,
                if path.contains("mode=") { url.to_owned() } else { format!("sqlite://{path}{sep}mode=rwc") },
            )
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Backend::Postgres, url.to_owned())
        } else {
            return Err(StoreError::UnsupportedUrl(url.to_owned()));
        };
        let mut options =
            sqlx::any::AnyPoolOptions::new().max_connections(if backend == Backend::Sqlite { 4 } else { 16 });
        if backend == Backend::Sqlite {
            // sqlx-sqlite's defaults (busy timeout 5 s, foreign keys on) do apply through the Any URL
            // (see the tests); stating them per connection keeps that true whatever the URL carries.
            //
            // Durability (issue 14): a commit returns only after its WAL frames are written to the
            // file, and the API answers (a booking's 201) only after the commit returned, so a
            // killed process (`kill -9`, a crash) loses nothing it confirmed — the kernel holds
            // the written pages, and the next open replays the WAL; a transaction cut short has no
            // commit frame and is ignored as a whole (`tests/tests/restart_safety.rs`). FULL (also
            // SQLite's compiled-in default, said here so no build flag changes it) adds an fsync
            // of the WAL at every commit, so a power cut loses nothing confirmed either.
            options = options.after_connect(|conn, _| {
                Box::pin(async move {
                    sqlx::query("PRAGMA busy_timeout = 5000").execute(&mut *conn).await?;
                    sqlx::query("PRAGMA foreign_keys = ON").execute(&mut *conn).await?;
                    sqlx::query("PRAGMA synchronous = FULL").execute(&mut *conn).await?;
                    Ok(())
                })
            });
        }
        let pool = options.connect(&url).await?;
        if backend == Backend::Sqlite {
            // WAL lets readers proceed while one writer commits; it is a property of the file.
            sqlx::query("PRAGMA journal_mode=WAL").execute(&pool).await?;
        }
        MIGRATOR.run(&pool).await?;
        Ok(Store { pool, backend, url: url.into(), fence: None })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn pool(&self) -> &sqlx::AnyPool {
        &self.pool
    }

    /// A consistent copy of a SQLite database into the new file `path` while the server runs
    /// (`VACUUM INTO`: one read transaction, writers go on). The copy is a database of its own:
    /// to restore, stop the server and put it in place of `sportello.db`.
    pub async fn backup_to(&self, path: &std::path::Path) -> Result<()> {
        if self.backend != Backend::Sqlite {
            return Err(StoreError::BackupUnsupported);
        }
        if path.exists() {
            return Err(StoreError::BackupExists(path.display().to_string()));
        }
        // Private from its first byte, like the database itself (citizens' data): SQLite writes
        // `VACUUM INTO` into an existing empty file.
        private_sqlite_file(&path.to_string_lossy())?;
        sqlx::query("VACUUM INTO $1").bind(path.to_string_lossy().into_owned()).execute(&self.pool).await?;
        Ok(())
    }

    /// One round trip to the database (`SELECT 1`): for the readiness probe.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await
    }

    /// A write transaction. On SQLite it is `BEGIN IMMEDIATE`: the write lock is taken up front,
    /// waiting under the busy timeout, so reading inside the transaction can never hit the
    /// SQLITE_BUSY(_SNAPSHOT) that a deferred transaction gets when it upgrades to writing.
    /// On a [`Store::fenced`] store it first checks the room's ownership epoch.
    async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        let mut tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        };
        self.check_fence(&mut tx).await?;
        Ok(tx)
    }

    /// Runs `attempt` (one whole transaction) again when it failed on a transient lock error:
    /// SQLite busy/locked beyond the busy timeout, PostgreSQL deadlock or serialization failure.
    async fn retrying<T, F, Fut>(&self, what: &'static str, mut attempt: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        const ATTEMPTS: u32 = 5;
        let mut tries = 1;
        loop {
            match attempt().await {
                Err(StoreError::Database(e)) if tries < ATTEMPTS && self.is_transient(&e) => {
                    tracing::warn!(what, tries, error = %e, "transient database error, retrying the transaction");
                    let jitter = rand::random_range(0..20u64);
                    tokio::time::sleep(Duration::from_millis(20 * u64::from(tries) + jitter)).await;
                    tries += 1;
                }
                other => return other,
            }
        }
    }

    /// Deletes row `id` of `table` (a constant of ours, never input), retried as `what`; `NotFound`
    /// if there was no such row. Rows that reference it go by their foreign keys' `ON DELETE`.
    async fn delete_row(&self, what: &'static str, table: &'static str, id: &str) -> Result<()> {
        let sql = format!("DELETE FROM {table} WHERE id = $1");
        let deleted = self
            .retrying(what, || async { Ok(sqlx::query(&sql).bind(id).execute(&self.pool).await?.rows_affected()) })
            .await?;
        if deleted == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }

    fn is_transient(&self, e: &sqlx::Error) -> bool {
        let Some(code) = db_error(e).and_then(|d| d.code()) else { return false };
        match self.backend {
            // Extended result codes: the primary code is the low byte (SQLITE_BUSY 5, SQLITE_LOCKED 6).
            Backend::Sqlite => code.parse::<i64>().is_ok_and(|c| matches!(c & 0xff, 5 | 6)),
            Backend::Postgres => matches!(&*code, "40001" | "40P01"),
        }
    }
}

/// The database holds citizens' data and staff password hashes: owner-only. The file is created
/// 0600 before SQLite opens it — SQLite gives its `-wal` and `-shm` files the database file's mode —
/// and an existing file (and its companions) made by an older version is tightened.
fn private_sqlite_file(path: &str) -> Result<()> {
    if path.is_empty() || path.starts_with(':') || path.starts_with("file:") {
        return Ok(()); // in memory, or a URI SQLite resolves itself
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let io = |e: std::io::Error| StoreError::Database(sqlx::Error::Io(e));
        std::fs::OpenOptions::new().append(true).create(true).mode(0o600).open(path).map_err(io)?;
        for file in [path.to_owned(), format!("{path}-wal"), format!("{path}-shm")] {
            match std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(e)),
                _ => {}
            }
        }
    }
    Ok(())
}

fn db_error(e: &sqlx::Error) -> Option<&dyn DatabaseError> {
    match e {
        sqlx::Error::Database(d) => Some(&**d),
        _ => None,
    }
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    db_error(e).is_some_and(|d| d.is_unique_violation())
}

fn is_foreign_key_violation(e: &sqlx::Error) -> bool {
    db_error(e).is_some_and(|d| d.is_foreign_key_violation())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sqlite_file_is_created_and_migrated_twice_without_error() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("s.db").display());
        let store = Store::connect(&url).await.unwrap();
        assert_eq!(store.backend(), Backend::Sqlite);
        store.close().await;
        let again = Store::connect(&url).await.unwrap();
        assert!(dir.path().join("s.db").is_file());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            sqlx::query("CREATE TABLE w (x BIGINT)").execute(again.pool()).await.unwrap();
            for name in ["s.db", "s.db-wal", "s.db-shm"] {
                let mode = std::fs::metadata(dir.path().join(name)).unwrap().permissions().mode() & 0o777;
                assert_eq!(mode, 0o600, "{name}");
            }
        }
        again.close().await;
    }

    #[tokio::test]
    async fn sqlite_busy_timeout_and_foreign_keys_apply_through_the_any_url() {
        use sqlx::Row;
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("p.db").display());
        sqlx::any::install_default_drivers();
        // A bare Any pool: sqlx-sqlite's defaults, without the store's after_connect.
        let bare = sqlx::any::AnyPoolOptions::new().connect(&url).await.unwrap();
        let timeout: i64 = sqlx::query("PRAGMA busy_timeout").fetch_one(&bare).await.unwrap().get(0);
        assert_eq!(timeout, 5000);
        bare.close().await;
        let store = Store::connect(&url).await.unwrap();
        // Every pooled connection (held together, so they are distinct), not only the first one.
        let mut held = Vec::new();
        for _ in 0..4 {
            let mut conn = store.pool().acquire().await.unwrap();
            let timeout: i64 = sqlx::query("PRAGMA busy_timeout").fetch_one(&mut *conn).await.unwrap().get(0);
            let fk: i64 = sqlx::query("PRAGMA foreign_keys").fetch_one(&mut *conn).await.unwrap().get(0);
            let wal: String = sqlx::query("PRAGMA journal_mode").fetch_one(&mut *conn).await.unwrap().get(0);
            assert_eq!((timeout, fk, wal.as_str()), (5000, 1, "wal"));
            held.push(conn);
        }
    }

    #[test]
    fn temp_postgres_starts_and_cleans_up() {
        let pg = testing::TempPostgres::start().unwrap();
        assert!(pg.url().starts_with(&format!("postgres://postgres@127.0.0.1:{}/", pg.port())));
        assert_ne!(pg.port(), 5432);
        let other = pg.create_database().unwrap();
        assert_ne!(other, pg.url());
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let store = Store::connect(&other).await.unwrap();
            assert_eq!(store.backend(), Backend::Postgres);
            assert_eq!(store.count_users().await.unwrap(), 0);
            store.close().await;
        });
        let dir = pg.dir().to_owned();
        assert!(dir.join("data/postmaster.pid").is_file());
        drop(pg);
        assert!(!dir.exists(), "the cluster directory is removed");
    }

    #[tokio::test]
    async fn unknown_url_is_refused() {
        assert!(matches!(Store::connect("mysql://x").await, Err(StoreError::UnsupportedUrl(_))));
    }
}
