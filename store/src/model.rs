//! Rows as the rest of Sportello sees them. Instants are Unix seconds UTC.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StaffRole {
    Admin,
    Official,
    Councillor,
    Chair,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Confirmed,
    Cancelled,
    Completed,
    NoShow,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Video,
    InPerson,
}

/// Which modes a service offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Modes {
    Video,
    InPerson,
    Both,
}

text_enum!(StaffRole { Admin => "admin", Official => "official", Councillor => "councillor", Chair => "chair" });
text_enum!(Status { Confirmed => "confirmed", Cancelled => "cancelled", Completed => "completed", NoShow => "no_show" });
text_enum!(Mode { Video => "video", InPerson => "in_person" });
text_enum!(Modes { Video => "video", InPerson => "in_person", Both => "both" });

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    pub email: String,
    pub display_name: String,
    pub role: StaffRole,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserUpdate {
    pub display_name: String,
    pub role: StaffRole,
    pub active: bool,
    /// JSON working pattern, `None` = follow the office's opening hours.
    pub pattern: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub email: String,
    pub display_name: String,
    pub role: StaffRole,
    pub password_hash: Option<String>,
    pub active: bool,
    pub pattern: Option<String>,
    pub password_changed_at: i64,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOffice {
    pub name: String,
    pub description: String,
    pub address: String,
    pub email: String,
    pub phone: String,
    /// JSON: 7 arrays (Monday first) of "HH:MM-HH:MM".
    pub opening_hours: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Office {
    pub id: String,
    pub name: String,
    pub description: String,
    pub address: String,
    pub email: String,
    pub phone: String,
    pub opening_hours: String,
    /// JSON as `opening_hours`: when the office's walk-in video desk may open (all empty: none).
    pub desk_hours: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewService {
    pub name: String,
    pub description: String,
    pub duration_minutes: i64,
    pub what_to_bring: String,
    pub modes: Modes,
    pub office_ids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub id: String,
    pub name: String,
    pub description: String,
    pub duration_minutes: i64,
    pub what_to_bring: String,
    pub modes: Modes,
    pub office_ids: Vec<String>,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAppointment {
    pub code: String,
    pub secret_hash: String,
    pub office_id: String,
    pub service_id: String,
    pub official_id: String,
    pub starts_at: i64,
    pub ends_at: i64,
    pub mode: Mode,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub details: String,
    pub lang: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reschedule {
    pub starts_at: i64,
    pub ends_at: i64,
    pub official_id: String,
    pub mode: Mode,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appointment {
    pub id: String,
    pub code: String,
    pub secret_hash: String,
    pub office_id: String,
    pub service_id: String,
    pub official_id: String,
    pub starts_at: i64,
    pub ends_at: i64,
    pub mode: Mode,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub details: String,
    pub lang: String,
    pub status: Status,
    pub reminder_sent_at: Option<i64>,
    pub citizen_joined_at: Option<i64>,
    /// First time the citizen was in the waiting room.
    pub citizen_arrived_at: Option<i64>,
    /// When the room ended after the citizen and the official met.
    pub meeting_ended_at: Option<i64>,
    pub rating: Option<i64>,
    pub rating_comment: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDocument {
    /// Chosen by the caller: the bytes are stored under this id before the row is written.
    pub id: String,
    pub room: String,
    pub appointment_id: Option<String>,
    pub uploader: String,
    pub uploader_name: String,
    pub file_name: String,
    pub content_type: String,
    pub size: i64,
    pub sha256: String,
    pub delete_after: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    pub id: String,
    pub room: String,
    pub appointment_id: Option<String>,
    pub uploader: String,
    pub uploader_name: String,
    pub file_name: String,
    pub content_type: String,
    pub size: i64,
    pub sha256: String,
    pub created_at: i64,
    pub delete_after: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewChat {
    pub room: String,
    pub appointment_id: Option<String>,
    pub sender: String,
    pub sender_name: String,
    pub body: String,
    pub delete_after: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    pub id: String,
    pub room: String,
    pub appointment_id: Option<String>,
    pub sender: String,
    pub sender_name: String,
    pub body: String,
    pub created_at: i64,
}
