//! The background pass: what the privacy rules say must go, goes (documents — file first, then row —
//! and chat past their retention; council recordings whose session ended more than
//! `recording_retention` ago; staff sessions and unfinished OpenID logins past their expiry; room
//! admissions nobody came back to, walk-ins' names after [`WALKIN_PEOPLE_KEPT_SECS`], App IO fiscal
//! codes no longer needed), and confirmed appointments that ended more than
//! [`CLOSE_AFTER_SECS`] ago become `completed` (the citizen came) or `no_show`.

use std::path::Path;
use std::time::Duration;

use sportello_store::{Status, Store, StoreError};
use tokio::sync::watch;

use crate::context::BackOffice;
use crate::{documents, once, recordings};

/// How often the pass runs.
pub const INTERVAL: Duration = Duration::from_secs(300);
/// An appointment still `confirmed` this long after its end is closed by the pass.
pub const CLOSE_AFTER_SECS: i64 = 30 * 60;

/// A room admission (`room_admissions`) outlives its holder's absence this long at most: longer
/// than any join link a host admits with is valid.
pub const ADMISSIONS_KEPT_SECS: i64 = 24 * 3600;

/// A walk-in's name, email and topic are kept this long after they queued (the office may call
/// back, look back at the day); then blanked, the instants and outcome stay for the figures.
pub const WALKIN_PEOPLE_KEPT_SECS: i64 = 30 * 86_400;

/// A walk-in still open (waiting, called back, served, being transferred) this long after it
/// queued is closed as abandoned: the desk's day is over.
pub const WALKIN_OPEN_KEPT_SECS: i64 = 86_400;

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sweep {
    pub documents_deleted: u64,
    pub chat_deleted: u64,
    pub completed: u64,
    pub no_show: u64,
    pub recordings_deleted: u64,
    pub sessions_deleted: u64,
    pub walkins_closed: u64,
    pub walkins_forgotten: u64,
    /// OpenID Connect logins never finished (`oidc_logins` past their ten minutes).
    pub oidc_logins_deleted: u64,
    /// App IO: appointments whose fiscal code was forgotten (over or cancelled), finished messages
    /// whose masked code was blanked, and finished messages deleted (`store::appio`).
    pub appio_codes_forgotten: u64,
    pub appio_messages_blanked: u64,
    pub appio_messages_deleted: u64,
}

/// One pass at `now` (tests call it directly).
pub async fn run_once(store: &Store, data_dir: &Path, now: i64) -> Result<Sweep, StoreError> {
    let mut sweep = Sweep::default();
    for document in store.expired_documents(now).await? {
        // The file first: a row without its file is harmless, a file without its row is forgotten.
        if let Err(error) = documents::remove(data_dir, &document.room, &document.id).await {
            tracing::error!(document = %document.id, %error, "cannot delete an expired document's file");
            continue;
        }
        store.delete_document(&document.id).await?;
        sweep.documents_deleted += 1;
    }
    sweep.chat_deleted = store.delete_expired_chat(now).await?;
    sweep.sessions_deleted = store.delete_expired_sessions(now).await?;
    sweep.oidc_logins_deleted = store.delete_expired_oidc_logins(now).await?;
    // Admissions of people who were inside a room when the server stopped and never came back.
    store.forget_admissions_before(now - ADMISSIONS_KEPT_SECS).await?;
    // Nothing of a walk-in outlives its day: what is still open a day later was left behind.
    sweep.walkins_closed = store.close_stale_walkins(now - WALKIN_OPEN_KEPT_SECS, now).await?;
    sweep.walkins_forgotten = store.forget_walkin_people_before(now - WALKIN_PEOPLE_KEPT_SECS).await?;
    (sweep.appio_codes_forgotten, sweep.appio_messages_blanked, sweep.appio_messages_deleted) =
        store.forget_appio_data(now).await?;
    for appointment in store.confirmed_ended_before(now - CLOSE_AFTER_SECS).await? {
        let (to, detail) = match appointment.citizen_joined_at {
            Some(_) => (Status::Completed, "ended"),
            None => (Status::NoShow, "the citizen did not join"),
        };
        match store.set_status(&appointment.id, &[Status::Confirmed], to, "system", detail, now).await {
            Ok(_) if to == Status::Completed => sweep.completed += 1,
            Ok(_) => {
                sweep.no_show += 1;
                metrics::counter!("sportello_booking_no_shows_total", "by" => "system").increment(1);
            }
            // Changed meanwhile (e.g. its room just ended): fine.
            Err(StoreError::InvalidTransition { .. } | StoreError::NotFound) => {}
            Err(error) => return Err(error),
        }
    }
    if sweep != Sweep::default() {
        tracing::info!(?sweep, "retention pass");
    }
    Ok(sweep)
}

/// The whole pass at `now`: [`run_once`] (rows that carry their own expiry) and the recordings
/// that ended more than `recording_retention` before `now`.
pub async fn pass(
    store: &Store,
    data_dir: &Path,
    now: i64,
    recording_retention: Duration,
) -> Result<Sweep, StoreError> {
    let mut sweep = run_once(store, data_dir, now).await?;
    let cutoff = now.saturating_sub(i64::try_from(recording_retention.as_secs()).unwrap_or(i64::MAX));
    sweep.recordings_deleted = delete_expired_recordings(store, data_dir, cutoff).await?;
    // Leases of single items whose holder died before giving them back (a day is far past any).
    store.delete_expired_leases(now.saturating_sub(86_400).saturating_mul(1000)).await?;
    Ok(sweep)
}

/// Deletes the recordings that ended before `cutoff`: the file first, then the row (a row without
/// its file is harmless, a published file without its row is forgotten).
pub async fn delete_expired_recordings(store: &Store, data_dir: &Path, cutoff: i64) -> Result<u64, StoreError> {
    let mut deleted = 0;
    for expired in store.recordings_ended_before(cutoff).await? {
        if let Err(error) = recordings::remove(data_dir, &expired).await {
            tracing::error!(recording = %expired.id, %error, "cannot delete an expired recording's file");
            continue;
        }
        match store.delete_recording(&expired.id).await {
            Ok(()) | Err(StoreError::NotFound) => {}
            Err(error) => return Err(error),
        }
        tracing::info!(recording = %expired.id, session = %expired.session_id, ended_at = expired.ended_at, "expired recording deleted");
        deleted += 1;
    }
    Ok(deleted)
}

/// Runs [`pass`] every [`INTERVAL`] until the server shuts down; with several nodes, one of them
/// per interval (the `retention` lease, held until just before the next pass).
pub async fn run(
    back: BackOffice,
    data_dir: std::path::PathBuf,
    recording_retention: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                match once::take(&back, "retention", INTERVAL - Duration::from_secs(5)).await {
                    Ok(true) => {
                        if let Err(error) = pass(&back.store, &data_dir, back.clock.now(), recording_retention).await {
                            tracing::error!(%error, "retention pass failed");
                        }
                    }
                    Ok(false) => tracing::debug!("retention pass left to the node that holds it"),
                    Err(error) => tracing::error!(%error, "retention pass not started"),
                }
            }
            _ = shutdown.changed() => return,
        }
    }
}
