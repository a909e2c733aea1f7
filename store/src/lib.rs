//! Sportello's persistence: [`Store`] over SQLite (the default, a file under the data dir) or
//! PostgreSQL, through sqlx's `Any` driver and ONE portable migration set (`migrations/`).
//!
//! Invariants: no HTTP, no clock (every method that stamps a row takes `now`, Unix seconds UTC), no
//! business rules beyond what the database must guarantee itself: uniqueness (emails, booking codes)
//! and no double booking of an official (`slot_claims`, see the migration). Every change to an
//! appointment writes its audit row in the same transaction.

mod model;

pub use model::*;

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
    #[error("corrupt row: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
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
}

impl Store {
    /// Connects to `sqlite:PATH` (created if missing; WAL, busy timeout) or `postgres://…` and runs
    /// the migrations.
    pub async fn connect(url: &str) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let (backend, url) = if let Some(path) = url.strip_prefix("sqlite:") {
            let path = path.trim_start_matches("//");
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
        let pool = sqlx::any::AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 4 } else { 16 })
            .connect(&url)
            .await?;
        if backend == Backend::Sqlite {
            // WAL lets readers proceed while one writer commits; it is a property of the file.
            sqlx::query("PRAGMA journal_mode=WAL").execute(&pool).await?;
        }
        MIGRATOR.run(&pool).await?;
        Ok(Store { pool, backend })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn pool(&self) -> &sqlx::AnyPool {
        &self.pool
    }

    pub async fn close(&self) {
        self.pool.close().await
    }

    // --- settings -------------------------------------------------------------------------------

    pub async fn setting(&self, key: &str) -> Result<Option<String>> {
        let _ = key;
        todo!()
    }

    pub async fn set_setting(&self, key: &str, value: &str) -> Result<()> {
        let _ = (key, value);
        todo!()
    }

    // --- users ----------------------------------------------------------------------------------

    /// `Conflict("email")` when the (lower-cased) email exists.
    pub async fn create_user(&self, new: &NewUser, now: i64) -> Result<User> {
        let _ = (new, now);
        todo!()
    }

    pub async fn user(&self, id: &str) -> Result<Option<User>> {
        let _ = id;
        todo!()
    }

    pub async fn user_by_email(&self, email: &str) -> Result<Option<User>> {
        let _ = email;
        todo!()
    }

    pub async fn users(&self) -> Result<Vec<User>> {
        todo!()
    }

    pub async fn count_users(&self) -> Result<i64> {
        todo!()
    }

    /// Updates name, role, active flag and working pattern. `NotFound` if absent.
    pub async fn update_user(&self, id: &str, update: &UserUpdate) -> Result<User> {
        let _ = (id, update);
        todo!()
    }

    /// Sets the hash and `password_changed_at = now` (voiding older sessions).
    pub async fn set_password(&self, user_id: &str, password_hash: &str, now: i64) -> Result<()> {
        let _ = (user_id, password_hash, now);
        todo!()
    }

    pub async fn create_setup_token(&self, user_id: &str, token_hash: &str, expires_at: i64) -> Result<()> {
        let _ = (user_id, token_hash, expires_at);
        todo!()
    }

    /// Marks the token used and returns its user, atomically: a second call (or a concurrent one)
    /// gets `None`, as do expired tokens.
    pub async fn take_setup_token(&self, token_hash: &str, now: i64) -> Result<Option<String>> {
        let _ = (token_hash, now);
        todo!()
    }

    // --- offices and services -------------------------------------------------------------------

    pub async fn create_office(&self, new: &NewOffice, now: i64) -> Result<Office> {
        let _ = (new, now);
        todo!()
    }

    pub async fn update_office(&self, id: &str, new: &NewOffice) -> Result<Office> {
        let _ = (id, new);
        todo!()
    }

    /// `Conflict("appointments")` while appointments reference it.
    pub async fn delete_office(&self, id: &str) -> Result<()> {
        let _ = id;
        todo!()
    }

    pub async fn office(&self, id: &str) -> Result<Option<Office>> {
        let _ = id;
        todo!()
    }

    /// All offices, by name.
    pub async fn offices(&self) -> Result<Vec<Office>> {
        todo!()
    }

    /// Replaces the office's members (officials who work there).
    pub async fn set_office_members(&self, office_id: &str, user_ids: &[String]) -> Result<()> {
        let _ = (office_id, user_ids);
        todo!()
    }

    pub async fn office_members(&self, office_id: &str) -> Result<Vec<User>> {
        let _ = office_id;
        todo!()
    }

    pub async fn offices_of_user(&self, user_id: &str) -> Result<Vec<Office>> {
        let _ = user_id;
        todo!()
    }

    /// Creates the service and links it to `new.office_ids`.
    pub async fn create_service(&self, new: &NewService, now: i64) -> Result<Service> {
        let _ = (new, now);
        todo!()
    }

    pub async fn update_service(&self, id: &str, new: &NewService) -> Result<Service> {
        let _ = (id, new);
        todo!()
    }

    /// `Conflict("appointments")` while appointments reference it.
    pub async fn delete_service(&self, id: &str) -> Result<()> {
        let _ = id;
        todo!()
    }

    pub async fn service(&self, id: &str) -> Result<Option<Service>> {
        let _ = id;
        todo!()
    }

    /// All services, by name, each with its `office_ids`.
    pub async fn services(&self) -> Result<Vec<Service>> {
        todo!()
    }

    // --- appointments ---------------------------------------------------------------------------

    /// Inserts a confirmed appointment, its slot claims and a `booked` audit row in one transaction.
    /// `SlotTaken` if any granule of `[starts_at, ends_at)` is claimed for that official;
    /// `Conflict("code")` if the booking code exists (the caller draws another).
    pub async fn book(&self, new: &NewAppointment, now: i64) -> Result<Appointment> {
        let _ = (new, now);
        todo!()
    }

    pub async fn appointment(&self, id: &str) -> Result<Option<Appointment>> {
        let _ = id;
        todo!()
    }

    pub async fn appointment_by_code(&self, code: &str) -> Result<Option<Appointment>> {
        let _ = code;
        todo!()
    }

    /// Appointments of these offices overlapping `[from, to)`, any status, by start.
    pub async fn appointments_of_offices(&self, office_ids: &[String], from: i64, to: i64) -> Result<Vec<Appointment>> {
        let _ = (office_ids, from, to);
        todo!()
    }

    /// Confirmed appointments of these officials overlapping `[from, to)` (for availability).
    pub async fn busy_of_officials(&self, official_ids: &[String], from: i64, to: i64) -> Result<Vec<Appointment>> {
        let _ = (official_ids, from, to);
        todo!()
    }

    /// Changes the status if the current one is in `from`, releasing the claims when the new
    /// status is `Cancelled`; audits `actor`. `InvalidTransition` otherwise, `NotFound` if absent.
    pub async fn set_status(
        &self,
        id: &str,
        from: &[Status],
        to: Status,
        actor: &str,
        detail: &str,
        now: i64,
    ) -> Result<Appointment> {
        let _ = (id, from, to, actor, detail, now);
        todo!()
    }

    /// Moves a confirmed appointment (new times and possibly a new official): the old claims are
    /// released and the new ones taken in one transaction; `SlotTaken` leaves it unchanged.
    pub async fn reschedule(&self, id: &str, to: &Reschedule, actor: &str, now: i64) -> Result<Appointment> {
        let _ = (id, to, actor, now);
        todo!()
    }

    /// Confirmed appointments starting in `(now, now + lead]` with no reminder sent yet.
    pub async fn due_reminders(&self, now: i64, lead_secs: i64) -> Result<Vec<Appointment>> {
        let _ = (now, lead_secs);
        todo!()
    }

    /// Records that the reminder went out (audited as `reminded`).
    pub async fn mark_reminded(&self, id: &str, now: i64) -> Result<()> {
        let _ = (id, now);
        todo!()
    }

    /// Records the first time the citizen was admitted to the room (audited as `joined`); later
    /// calls keep the first instant.
    pub async fn mark_citizen_joined(&self, id: &str, now: i64) -> Result<()> {
        let _ = (id, now);
        todo!()
    }

    /// Confirmed appointments whose end is before `before` (for completed / no-show).
    pub async fn confirmed_ended_before(&self, before: i64) -> Result<Vec<Appointment>> {
        let _ = before;
        todo!()
    }

    /// Rating 1–5 with an optional comment (audited as `rated`); once only: `Conflict("rating")`.
    pub async fn rate(&self, id: &str, rating: i64, comment: Option<&str>, now: i64) -> Result<()> {
        let _ = (id, rating, comment, now);
        todo!()
    }

    /// The audit trail, oldest first.
    pub async fn audit(&self, appointment_id: &str) -> Result<Vec<AuditEntry>> {
        let _ = appointment_id;
        todo!()
    }

    // --- documents and chat ---------------------------------------------------------------------

    pub async fn add_document(&self, new: &NewDocument, now: i64) -> Result<Document> {
        let _ = (new, now);
        todo!()
    }

    pub async fn document(&self, id: &str) -> Result<Option<Document>> {
        let _ = id;
        todo!()
    }

    /// A room's documents, oldest first.
    pub async fn documents(&self, room: &str) -> Result<Vec<Document>> {
        let _ = room;
        todo!()
    }

    /// Documents whose retention ended (`delete_after <= now`); the caller deletes the bytes, then
    /// the rows with [`Store::delete_document`].
    pub async fn expired_documents(&self, now: i64) -> Result<Vec<Document>> {
        let _ = now;
        todo!()
    }

    pub async fn delete_document(&self, id: &str) -> Result<()> {
        let _ = id;
        todo!()
    }

    pub async fn add_chat(&self, new: &NewChat, now: i64) -> Result<ChatMessage> {
        let _ = (new, now);
        todo!()
    }

    /// A room's messages, oldest first, at most `limit` (the newest ones).
    pub async fn chat(&self, room: &str, limit: i64) -> Result<Vec<ChatMessage>> {
        let _ = (room, limit);
        todo!()
    }

    /// Deletes messages whose retention ended; returns how many.
    pub async fn delete_expired_chat(&self, now: i64) -> Result<u64> {
        let _ = now;
        todo!()
    }
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
        again.close().await;
        assert!(dir.path().join("s.db").is_file());
    }

    #[tokio::test]
    async fn unknown_url_is_refused() {
        assert!(matches!(Store::connect("mysql://x").await, Err(StoreError::UnsupportedUrl(_))));
    }
}
