//! Putting a SQLite backup (`sportello backup FILE`) back in place of the database, with the server
//! stopped. Nothing is lost on the way: the backup is checked before anything is touched, and the
//! database it replaces is first copied aside.

use std::path::{Path, PathBuf};

use crate::{MIGRATOR, Result, Store, StoreError, private_sqlite_file};

/// What a restore did, for the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    /// The copy of the database that was replaced (`None`: there was none).
    pub previous: Option<PathBuf>,
    /// Staff accounts and appointments in the restored database.
    pub users: i64,
    pub appointments: i64,
}

/// Replaces the SQLite database at `db` with `backup`. The server must not be running (the caller
/// checks its port): a running server would keep writing to the replaced file.
///
/// `backup` must be a whole SQLite database (`PRAGMA integrity_check`) with Sportello's schema at
/// a version this binary knows; an older schema is brought up to date afterwards. The current
/// database (with whatever its write-ahead log holds) is first copied to
/// `<db>.before-restore-<now>`.
pub async fn restore_sqlite(backup: &Path, db: &Path, now: i64) -> Result<Restored> {
    let name = backup.display().to_string();
    check_backup(backup, &name).await?;

    let previous = if db.exists() {
        let aside = PathBuf::from(format!("{}.before-restore-{now}", db.display()));
        let current = Store::connect(&sqlite_url(db)).await?;
        let copied = current.backup_to(&aside).await;
        // The last connection to close checkpoints the write-ahead log into the file and removes it.
        current.close().await;
        copied?;
        Some(aside)
    } else {
        None
    };

    // Copy next to the database, then rename: the database is either the old one or the whole
    // backup, never half of it. A -wal/-shm left over must go first: SQLite would replay a log
    // that belongs to the old file onto the new one.
    let staged = PathBuf::from(format!("{}.restoring", db.display()));
    let io = |e: std::io::Error| StoreError::Database(sqlx::Error::Io(e));
    let _ = std::fs::remove_file(&staged);
    private_sqlite_file(&staged.to_string_lossy())?;
    std::fs::copy(backup, &staged).map_err(io)?;
    for suffix in ["-wal", "-shm"] {
        match std::fs::remove_file(format!("{}{suffix}", db.display())) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(e)),
            _ => {}
        }
    }
    std::fs::rename(&staged, db).map_err(io)?;

    // Opening applies the migrations a backup from an older version lacks.
    let store = Store::connect(&sqlite_url(db)).await?;
    let users = store.count_users().await;
    let appointments = sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM appointments").fetch_one(&store.pool).await;
    store.close().await;
    Ok(Restored { previous, users: users?, appointments: appointments? })
}

fn sqlite_url(path: &Path) -> String {
    format!("sqlite:{}", path.display())
}

/// The backup opens read-only, is whole, and has a schema this binary can run.
async fn check_backup(backup: &Path, name: &str) -> Result<()> {
    let not_ours = |why: String| StoreError::NotABackup(name.to_owned(), why);
    if !backup.is_file() {
        return Err(not_ours("no such file".into()));
    }
    sqlx::any::install_default_drivers();
    let url = format!("sqlite://{}?mode=ro", backup.display());
    let pool =
        sqlx::any::AnyPoolOptions::new().max_connections(1).connect(&url).await.map_err(|e| not_ours(e.to_string()))?;
    let checked = async {
        let integrity: String =
            sqlx::query_scalar("PRAGMA integrity_check").fetch_one(&pool).await.map_err(|e| not_ours(e.to_string()))?;
        if integrity != "ok" {
            return Err(not_ours(format!("integrity check: {integrity}")));
        }
        let version: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
            .fetch_one(&pool)
            .await
            .map_err(|_| not_ours("it has no Sportello schema".into()))?;
        let known = MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
        match version {
            None => Err(not_ours("it has no Sportello schema".into())),
            Some(found) if found > known => Err(StoreError::BackupTooNew { file: name.to_owned(), found, known }),
            Some(_) => Ok(()),
        }
    }
    .await;
    pool.close().await;
    checked
}
