//! Inside a room, over HTTP: shared documents and chat history. Authorised by the room's join token
//! (`Authorization: Bearer <token>`); see "Documents and chat over HTTP" in `docs/signaling.md`.
//!
//! - `POST /api/rooms/{room}/documents`: the body is the file's raw bytes, its name in `X-File-Name`
//!   (percent-encoded UTF-8, as `encodeURIComponent` gives). The type is decided by the content
//!   (`sportello_domain::document`), never by the name or `Content-Type`. Only someone admitted to the
//!   room right now may upload.
//! - `GET /api/rooms/{room}/documents`, `GET /api/rooms/{room}/documents/{id}`, `GET /api/rooms/{room}/chat`:
//!   anyone with a token for the room who is not held in the lobby.
//! - `GET /api/rooms/{room}`: what the room is, in words (office, service, time, whose virtual office),
//!   for anyone with a token for the room, waiting or not — the device check and the waiting room show
//!   it instead of the room's internal id.

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::StreamExt;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sportello_domain::document::{sanitize_file_name, sniff};
use sportello_store::{Document, NewDocument};

use super::ApiError;
use super::error::Path;
use crate::state::AppState;
use sportello_backoffice::documents;
use sportello_backoffice::token::{Claims, Role, TokenError};
use sportello_rooms::grants::Revoked;
use sportello_rooms::protocol::{ChatInfo, DocumentInfo};

/// Header carrying the uploaded file's name.
pub const FILE_NAME_HEADER: &str = "x-file-name";
/// Chat history returned at most (the newest).
const CHAT_HISTORY: i64 = 500;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/rooms/{room}", get(details))
        .route("/rooms/{room}/documents", post(upload).get(list))
        .route("/rooms/{room}/documents/{id}", get(download))
        .route("/rooms/{room}/chat", get(chat_history))
        // The upload enforces `config.max_upload` itself while reading.
        .layer(DefaultBodyLimit::disable())
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct DocumentList {
    documents: Vec<DocumentInfo>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ChatHistory {
    messages: Vec<ChatInfo>,
}

/// This module's part of `/api/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(details, list, chat_history, upload, download))]
    struct RoomsApi;
    <RoomsApi as utoipa::OpenApi>::openapi()
}

fn document_info(d: Document) -> DocumentInfo {
    DocumentInfo {
        id: d.id,
        name: d.file_name,
        size: d.size,
        content_type: d.content_type,
        participant_id: d.uploader,
        uploader_name: d.uploader_name,
        at: d.created_at,
    }
}

/// A join token for this room, from `Authorization: Bearer`, that still stands for what it names
/// (`grants`: the account active, the appointment confirmed and not moved, the council chair or
/// membership current).
async fn bearer(state: &AppState, headers: &HeaderMap, room: &str) -> Result<Claims, ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or(ApiError::Unauthenticated)?;
    let claims = state.tokens.verify(token, Some(room)).map_err(|e| match e {
        TokenError::WrongRoom => ApiError::Forbidden,
        _ => ApiError::Unauthenticated,
    })?;
    sportello_rooms::grants::check(&state.store, &claims).await.map_err(|revoked| {
        tracing::info!(room, %revoked, "room token refused");
        match revoked {
            Revoked::Store(e) => ApiError::from(e),
            Revoked::AppointmentNotFound => ApiError::NotFound,
            Revoked::Cancelled | Revoked::Closed | Revoked::Moved => ApiError::gone(
                "link_revoked",
                (
                    "Questo link non è più valido: l'appuntamento è stato annullato, spostato o si è concluso.",
                    "This link is no longer valid: the appointment was cancelled, moved or is over.",
                ),
            ),
            Revoked::Account | Revoked::Membership | Revoked::Walkin => ApiError::Forbidden,
        }
    })?;
    Ok(claims)
}

/// Who may do what: a token that stands ([`bearer`]); uploading needs the identity admitted right
/// now and a role above viewer, reading only that it is not held in the lobby (a `wait` token that
/// was never admitted reads nothing).
async fn authorize(state: &AppState, headers: &HeaderMap, room: &str, upload: bool) -> Result<Claims, ApiError> {
    let claims = bearer(state, headers, room).await?;
    if upload && claims.role == Role::Viewer {
        return Err(ApiError::Forbidden);
    }
    let admitted = state.anywhere.is_admitted(room, &claims.sub).await;
    if (upload || claims.wait) && !admitted {
        return Err(ApiError::Forbidden);
    }
    Ok(claims)
}

/// What kind of room this is; the client words the title from it in the reader's language.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RoomKind {
    /// `appt-<id>`: `office`, `service`, `official`, `starts_at`, `ends_at` are set.
    Appointment,
    /// `vo-<user>`: an official's own virtual office; `official` is set.
    VirtualOffice,
    /// `office-<id>`: an office's shared virtual office; `office` is set.
    Office,
    /// `council-<id>`: `title` is the session's.
    Council,
    /// `walkin-<id>`: a citizen at an office's video desk; `office` is set.
    WalkIn,
    /// `staff-<id>`: officials who called each other.
    Staff,
    /// Any other room (e.g. made with `sportello token --room`): `title` is its name.
    Other,
}

/// A room in words, never its internal id (`docs/signaling.md`, "Room details").
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RoomDetails {
    pub room: String,
    pub kind: RoomKind,
    pub title: Option<String>,
    pub office: Option<String>,
    pub service: Option<String>,
    /// The official's display name (the appointment's official, the virtual office's owner).
    pub official: Option<String>,
    /// Unix seconds.
    pub starts_at: Option<i64>,
    pub ends_at: Option<i64>,
}

impl RoomDetails {
    fn new(room: &str, kind: RoomKind) -> RoomDetails {
        RoomDetails {
            room: room.to_owned(),
            kind,
            title: None,
            office: None,
            service: None,
            official: None,
            starts_at: None,
            ends_at: None,
        }
    }
}

/// The room in words: office, service and time of an appointment, whose virtual office it is.
/// Any token for the room, also one still waiting in the lobby. Something that no longer exists
/// (a deleted office) is left out rather than shown as an id.
#[utoipa::path(get, path = "/api/rooms/{room}", tag = "rooms",
    responses((status = 200, body = RoomDetails), (status = 401, body = super::error::ErrorBody),
               (status = 403, body = super::error::ErrorBody)))]
async fn details(
    State(state): State<AppState>,
    Path(room): Path<String>,
    headers: HeaderMap,
) -> Result<Json<RoomDetails>, ApiError> {
    bearer(&state, &headers, &room).await?;
    let store = &state.store;
    let name_of_user = |id: &str| {
        let id = id.to_owned();
        async move { Ok::<_, ApiError>(store.user(&id).await?.map(|u| u.display_name)) }
    };
    let details = if let Some(id) = room.strip_prefix("appt-") {
        let mut d = RoomDetails::new(&room, RoomKind::Appointment);
        if let Some(appt) = store.appointment(id).await? {
            d.office = store.office(&appt.office_id).await?.map(|o| o.name);
            d.service = store.service(&appt.service_id).await?.map(|s| s.name);
            d.official = name_of_user(&appt.official_id).await?;
            (d.starts_at, d.ends_at) = (Some(appt.starts_at), Some(appt.ends_at));
        }
        d
    } else if let Some(user) = room.strip_prefix("vo-") {
        RoomDetails { official: name_of_user(user).await?, ..RoomDetails::new(&room, RoomKind::VirtualOffice) }
    } else if let Some(office) = room.strip_prefix("office-") {
        RoomDetails { office: store.office(office).await?.map(|o| o.name), ..RoomDetails::new(&room, RoomKind::Office) }
    } else if let Some(id) = room.strip_prefix("walkin-") {
        let office = match store.walkin(id).await? {
            Some(w) => store.office(&w.office_id).await?.map(|o| o.name),
            None => None,
        };
        RoomDetails { office, ..RoomDetails::new(&room, RoomKind::WalkIn) }
    } else if room.starts_with("staff-") {
        RoomDetails::new(&room, RoomKind::Staff)
    } else if let Some(session) = room.strip_prefix(sportello_rooms::council::ROOM_PREFIX) {
        let title = store.council_session(session).await?.map(|s| s.title);
        RoomDetails { title, ..RoomDetails::new(&room, RoomKind::Council) }
    } else {
        RoomDetails { title: Some(room.clone()), ..RoomDetails::new(&room, RoomKind::Other) }
    };
    Ok(Json(details))
}

/// The room's shared documents, oldest first.
#[utoipa::path(get, path = "/api/rooms/{room}/documents", tag = "rooms",
    responses((status = 200, body = DocumentList), (status = 401, body = super::error::ErrorBody),
               (status = 403, body = super::error::ErrorBody)))]
async fn list(
    State(state): State<AppState>,
    Path(room): Path<String>,
    headers: HeaderMap,
) -> Result<Json<DocumentList>, ApiError> {
    authorize(&state, &headers, &room, false).await?;
    let documents = state.store.documents(&room).await?.into_iter().map(document_info).collect();
    Ok(Json(DocumentList { documents }))
}

/// The room's chat, oldest first (the newest 500).
#[utoipa::path(get, path = "/api/rooms/{room}/chat", tag = "rooms",
    responses((status = 200, body = ChatHistory), (status = 401, body = super::error::ErrorBody),
               (status = 403, body = super::error::ErrorBody)))]
async fn chat_history(
    State(state): State<AppState>,
    Path(room): Path<String>,
    headers: HeaderMap,
) -> Result<Json<ChatHistory>, ApiError> {
    authorize(&state, &headers, &room, false).await?;
    let messages = state
        .store
        .chat(&room, CHAT_HISTORY)
        .await?
        .into_iter()
        .map(|m| ChatInfo { id: m.id, participant_id: m.sender, name: m.sender_name, text: m.body, at: m.created_at })
        .collect();
    Ok(Json(ChatHistory { messages }))
}

/// Shares a file: the raw bytes as the body, the name in `X-File-Name` (percent-encoded). Only PDF,
/// images and office documents, recognised by their content; the uploader must be in the room.
#[utoipa::path(post, path = "/api/rooms/{room}/documents", tag = "rooms",
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    params(("X-File-Name" = Option<String>, Header,
        description = "The file name, percent-encoded UTF-8; without it the file gets a name of its type")),
    responses((status = 201, body = DocumentInfo), (status = 403, body = super::error::ErrorBody),
               (status = 413, body = super::error::ErrorBody), (status = 415, body = super::error::ErrorBody)))]
#[tracing::instrument(skip_all, fields(room = %room))]
async fn upload(
    State(state): State<AppState>,
    Path(room): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<DocumentInfo>), ApiError> {
    let claims = match authorize(&state, &headers, &room, true).await {
        Ok(claims) => claims,
        Err(refused) => {
            drain(body.into_data_stream(), state.config.max_upload).await;
            return Err(refused);
        }
    };
    let max = state.config.max_upload;
    if !documents::is_safe_component(&room) {
        drain(body.into_data_stream(), max).await;
        return Err(ApiError::NotFound);
    }
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        drain(body.into_data_stream(), max).await;
        return Err(ApiError::TooLarge);
    }
    let bytes = read_limited(body, max).await?;
    let Some(kind) = sniff(&bytes) else {
        tracing::info!(size = bytes.len(), "upload refused: not an accepted type");
        return Err(ApiError::UnsupportedMedia("content not accepted".into()));
    };
    let given = headers.get(FILE_NAME_HEADER).and_then(|v| v.to_str().ok()).map(percent_decode).unwrap_or_default();
    let file_name = sanitize_file_name(&given, kind);
    let id = hex::encode(rand::random::<[u8; 16]>());
    let now = state.clock.now();
    let retention = i64::try_from(state.config.retention.as_secs()).unwrap_or(i64::MAX);
    let new = NewDocument {
        id: id.clone(),
        room: room.clone(),
        appointment_id: claims.appt.clone().or_else(|| room.strip_prefix("appt-").map(str::to_owned)),
        uploader: claims.sub.clone(),
        uploader_name: claims.name.clone(),
        file_name,
        content_type: kind.content_type().to_owned(),
        size: i64::try_from(bytes.len()).unwrap_or(i64::MAX),
        sha256: hex::encode(Sha256::digest(&bytes)),
        delete_after: now.saturating_add(retention),
    };
    documents::write(&state.config.data_dir, &room, &id, &bytes).await.map_err(ApiError::internal)?;
    let stored = match state.store.add_document(&new, now).await {
        Ok(stored) => stored,
        Err(error) => {
            // No row, no file.
            let _ = documents::remove(&state.config.data_dir, &room, &id).await;
            return Err(error.into());
        }
    };
    tracing::info!(document = %stored.id, size = stored.size, kind = ?kind, "document shared");
    let info = document_info(stored);
    state.anywhere.announce_document(&room, info.clone()).await;
    Ok((StatusCode::CREATED, Json(info)))
}

/// Reads the body, refusing (413) as soon as it grows past `max`: nothing is stored then.
/// Reads and drops (the rest of) a refused upload's body: at most twice `max` bytes, for at most
/// 10 s. A proxy that streams the body to us (nginx, Caddy) meets a connection closed in mid-body
/// otherwise and answers 502 instead of our 401/403/413: the citizen would read "bad gateway" for
/// an expired link or a file a little too large.
async fn drain<S>(mut stream: S, max: usize)
where
    S: futures_util::Stream<Item = Result<axum::body::Bytes, axum::Error>> + Unpin,
{
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        let mut seen = 0;
        while let Some(Ok(chunk)) = stream.next().await {
            seen += chunk.len();
            if seen > max.saturating_mul(2) {
                break;
            }
        }
    })
    .await;
}

async fn read_limited(body: Body, max: usize) -> Result<Vec<u8>, ApiError> {
    let mut stream = body.into_data_stream();
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::bad_request(
                "invalid_body",
                (format!("Caricamento interrotto: {e}"), format!("Upload interrupted: {e}")),
            )
        })?;
        if bytes.len() + chunk.len() > max {
            drain(stream, max).await;
            return Err(ApiError::TooLarge);
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// Downloads a shared document (as an attachment, with the type detected at upload).
#[utoipa::path(get, path = "/api/rooms/{room}/documents/{id}", tag = "rooms",
    responses((status = 200, description = "The file, with the type detected at upload (PDF, image, office document…)",
        content_type = "*/*"), (status = 404, body = super::error::ErrorBody)))]
async fn download(
    State(state): State<AppState>,
    Path((room, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&state, &headers, &room, false).await?;
    // Another room's document is as absent as a missing one.
    let document = state.store.document(&id).await?.filter(|d| d.room == room).ok_or(ApiError::NotFound)?;
    let path = documents::path(&state.config.data_dir, &room, &document.id).ok_or(ApiError::NotFound)?;
    let bytes = match tokio::fs::read(&path).await {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(ApiError::NotFound),
        Err(e) => return Err(ApiError::internal(e)),
    };
    let content_type = HeaderValue::from_str(&document.content_type).map_err(ApiError::internal)?;
    let disposition = HeaderValue::from_str(&content_disposition(&document.file_name)).map_err(ApiError::internal)?;
    let mut response = Body::from(bytes).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, content_type);
    h.insert(header::CONTENT_DISPOSITION, disposition);
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    Ok(response)
}

/// `attachment` with an ASCII fallback name and the exact UTF-8 name (RFC 6266 / RFC 8187).
fn content_disposition(name: &str) -> String {
    let ascii: String =
        name.chars().map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' { c } else { '_' }).collect();
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{}", percent_encode(name))
}

/// RFC 8187 `attr-char` kept, everything else `%XX`.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `%XX` sequences decoded; invalid sequences and invalid UTF-8 are kept/replaced (the name is
/// sanitised afterwards anyway).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (bytes.get(i + 1).and_then(|&b| hex(b)), bytes.get(i + 2).and_then(|&b| hex(b)))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_headers() {
        assert_eq!(percent_decode("Carta%20d'identit%C3%A0.pdf"), "Carta d'identità.pdf");
        assert_eq!(percent_decode("100%.pdf"), "100%.pdf");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(
            content_disposition("Carta d'identità.pdf"),
            "attachment; filename=\"Carta d'identit_.pdf\"; filename*=UTF-8''Carta%20d%27identit%C3%A0.pdf"
        );
        assert!(HeaderValue::from_str(&content_disposition("a\"b\\c.pdf")).is_ok());
    }
}
