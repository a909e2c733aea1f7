//! Where council recordings live under the data dir — `recordings/<session_id>/<id>.webm` (and
//! `<id>.raw/` while recording) — and what the archive reads of a stored recording. Finishing a
//! recording from the SFU's raw files is `sportello_rooms::recording`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sportello_store::Recording;

/// Under the data dir: `recordings/<session_id>/<id>.webm` (and `<id>.raw/` while recording).
pub const RECORDINGS_DIR: &str = "recordings";

/// An agenda item inside a recording, in milliseconds from the recording's start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Chapter {
    pub title: String,
    pub start_ms: u64,
    pub end_ms: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    #[error("invalid session id {0:?}")]
    InvalidSessionId(String),
    #[error("invalid recording file name {0:?}")]
    InvalidFileName(String),
    #[error("cannot delete {path}: {source}")]
    Delete { path: PathBuf, source: std::io::Error },
}

/// Session ids are made by the application, but they become a directory name: only `[A-Za-z0-9_-]`.
fn plain(id: &str) -> bool {
    !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// `<data_dir>/recordings/<session_id>`.
pub fn session_dir(data_dir: &Path, session_id: &str) -> Result<PathBuf, FilesError> {
    if !plain(session_id) {
        return Err(FilesError::InvalidSessionId(session_id.to_owned()));
    }
    Ok(data_dir.join(RECORDINGS_DIR).join(session_id))
}

/// Where a stored recording's WebM file is.
pub fn file_path(data_dir: &Path, recording: &Recording) -> Result<PathBuf, FilesError> {
    let stem = recording.file_name.strip_suffix(".webm").unwrap_or("");
    if !plain(stem) {
        return Err(FilesError::InvalidFileName(recording.file_name.clone()));
    }
    Ok(session_dir(data_dir, &recording.session_id)?.join(&recording.file_name))
}

/// The chapters stored with a recording (an unreadable list is logged and shown as none).
pub fn chapters(recording: &Recording) -> Vec<Chapter> {
    serde_json::from_str(&recording.chapters).unwrap_or_else(|error| {
        tracing::warn!(recording = %recording.id, %error, "unreadable chapters");
        Vec::new()
    })
}

/// Deletes a recording's file (already gone is fine); the caller deletes the row afterwards.
pub async fn remove(data_dir: &Path, recording: &Recording) -> Result<(), FilesError> {
    let path = file_path(data_dir, recording)?;
    match tokio::fs::remove_file(&path).await {
        Err(source) if source.kind() != std::io::ErrorKind::NotFound => Err(FilesError::Delete { path, source }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_must_be_plain() {
        assert!(session_dir(Path::new("/d"), "abc-DEF_123").is_ok());
        for bad in ["", "..", "a/b", "a b", "é", ".hidden", "a\0"] {
            assert!(matches!(session_dir(Path::new("/d"), bad), Err(FilesError::InvalidSessionId(_))), "{bad:?}");
        }
    }
}
