//! Row decoding (text enums are checked: bad text is `Corrupt`, never a panic) and id generation.

use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use rand::Rng;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Appointment, AuditEntry, Document, Office, Result, Service, StoreError, User};

/// Base32 in ASCII order, so that ids of equal length sort like the numbers they encode.
const ALPHABET: &[u8; 32] = b"234567abcdefghijklmnopqrstuvwxyz";

/// A random, URL-safe id: 20 base32 characters (100 bits).
pub(crate) fn new_id() -> String {
    let mut rng = rand::rng();
    (0..20).map(|_| ALPHABET[rng.random_range(0..32)] as char).collect()
}

/// A random id that sorts after every id this process made before: 10 characters of wall-clock
/// milliseconds (made strictly increasing) then 10 random ones. Rows stamped in the same second
/// (audit events, chat messages) are ordered by `(at, id)`, which is then their insertion order.
/// The clock only breaks ties; it never decides a stamp.
pub(crate) fn new_sortable_id() -> String {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let wall = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    let prev = LAST.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |last| Some(wall.max(last + 1)));
    let ms = wall.max(prev.unwrap_or(0) + 1);
    let mut id: String = (0..10).rev().map(|i| ALPHABET[((ms >> (i * 5)) & 31) as usize] as char).collect();
    let mut rng = rand::rng();
    id.extend((0..10).map(|_| ALPHABET[rng.random_range(0..32)] as char));
    id
}

pub(crate) fn text_enum<T: FromStr<Err = String>>(row: &AnyRow, column: &'static str) -> Result<T> {
    let text: String = row.try_get(column)?;
    text.parse().map_err(|e| StoreError::Corrupt(format!("{column}: {e}")))
}

pub(crate) const USER_COLS: &str =
    "id, email, display_name, role, password_hash, active, pattern, password_changed_at, created_at";

pub(crate) fn user(row: &AnyRow) -> Result<User> {
    Ok(User {
        id: row.try_get("id")?,
        email: row.try_get("email")?,
        display_name: row.try_get("display_name")?,
        role: text_enum(row, "role")?,
        password_hash: row.try_get("password_hash")?,
        active: row.try_get::<i64, _>("active")? != 0,
        pattern: row.try_get("pattern")?,
        password_changed_at: row.try_get("password_changed_at")?,
        created_at: row.try_get("created_at")?,
    })
}

pub(crate) const OFFICE_COLS: &str =
    "id, name, description, address, email, phone, opening_hours, desk_hours, created_at";

pub(crate) fn office(row: &AnyRow) -> Result<Office> {
    Ok(Office {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        address: row.try_get("address")?,
        email: row.try_get("email")?,
        phone: row.try_get("phone")?,
        opening_hours: row.try_get("opening_hours")?,
        desk_hours: row.try_get("desk_hours")?,
        created_at: row.try_get("created_at")?,
    })
}

pub(crate) const SERVICE_COLS: &str = "id, name, description, duration_minutes, what_to_bring, modes, created_at";

/// A service without its `office_ids` (the caller fills them from `office_services`).
pub(crate) fn service(row: &AnyRow) -> Result<Service> {
    Ok(Service {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        duration_minutes: row.try_get("duration_minutes")?,
        what_to_bring: row.try_get("what_to_bring")?,
        modes: text_enum(row, "modes")?,
        office_ids: Vec::new(),
        created_at: row.try_get("created_at")?,
    })
}

pub(crate) const APPOINTMENT_COLS: &str = "id, code, secret_hash, office_id, service_id, official_id, starts_at, \
     ends_at, mode, first_name, last_name, email, details, lang, status, reminder_sent_at, citizen_joined_at, \
     rating, rating_comment, created_at, updated_at, citizen_arrived_at, meeting_ended_at";

pub(crate) fn appointment(row: &AnyRow) -> Result<Appointment> {
    Ok(Appointment {
        id: row.try_get("id")?,
        code: row.try_get("code")?,
        secret_hash: row.try_get("secret_hash")?,
        office_id: row.try_get("office_id")?,
        service_id: row.try_get("service_id")?,
        official_id: row.try_get("official_id")?,
        starts_at: row.try_get("starts_at")?,
        ends_at: row.try_get("ends_at")?,
        mode: text_enum(row, "mode")?,
        first_name: row.try_get("first_name")?,
        last_name: row.try_get("last_name")?,
        email: row.try_get("email")?,
        details: row.try_get("details")?,
        lang: row.try_get("lang")?,
        status: text_enum(row, "status")?,
        reminder_sent_at: row.try_get("reminder_sent_at")?,
        citizen_joined_at: row.try_get("citizen_joined_at")?,
        citizen_arrived_at: row.try_get("citizen_arrived_at")?,
        meeting_ended_at: row.try_get("meeting_ended_at")?,
        rating: row.try_get("rating")?,
        rating_comment: row.try_get("rating_comment")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

pub(crate) const DOCUMENT_COLS: &str = "id, room, appointment_id, uploader, uploader_name, file_name, content_type, \
     size, sha256, created_at, delete_after";

pub(crate) fn document(row: &AnyRow) -> Result<Document> {
    Ok(Document {
        id: row.try_get("id")?,
        room: row.try_get("room")?,
        appointment_id: row.try_get("appointment_id")?,
        uploader: row.try_get("uploader")?,
        uploader_name: row.try_get("uploader_name")?,
        file_name: row.try_get("file_name")?,
        content_type: row.try_get("content_type")?,
        size: row.try_get("size")?,
        sha256: row.try_get("sha256")?,
        created_at: row.try_get("created_at")?,
        delete_after: row.try_get("delete_after")?,
    })
}

/// `$from, $from+1, …` for `count` parameters: `IN (…)` lists and multi-row `VALUES`.
pub(crate) fn placeholders(from: usize, count: usize) -> String {
    (from..from + count).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

/// One audit row (`appointment_events`, `walkin_events`): who, when, what.
pub(crate) fn audit_entry(row: &AnyRow) -> Result<AuditEntry> {
    Ok(AuditEntry {
        at: row.try_get("at")?,
        actor: row.try_get("actor")?,
        action: row.try_get("action")?,
        detail: row.try_get("detail")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_url_safe_and_sortable_ids_increase() {
        let a = new_id();
        assert_eq!(a.len(), 20);
        assert!(a.bytes().all(|b| ALPHABET.contains(&b)));
        let ids: Vec<String> = (0..1000).map(|_| new_sortable_id()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "sortable ids must increase");
        assert!(ids.iter().all(|i| i.len() == 20));
    }
}
