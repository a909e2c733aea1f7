//! Where uploaded documents live on disk: `<data_dir>/documents/<room>/<id>`, one file per document,
//! written to a temporary name and renamed, so a half-written file is never served. Folders 0700,
//! files 0600 (`crate::private`).

use std::io;
use std::path::{Path, PathBuf};

/// Rooms and document ids are ours, but they still pass this before becoming a path component.
pub fn is_safe_component(s: &str) -> bool {
    (1..=128).contains(&s.len())
        && !s.starts_with('.')
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The file of document `id` in `room`; `None` for names that are not safe path components.
pub fn path(data_dir: &Path, room: &str, id: &str) -> Option<PathBuf> {
    (is_safe_component(room) && is_safe_component(id)).then(|| data_dir.join("documents").join(room).join(id))
}

/// Writes `bytes` as document `id` of `room` (temp file, fsync, rename).
pub async fn write(data_dir: &Path, room: &str, id: &str, bytes: &[u8]) -> io::Result<PathBuf> {
    let target = path(data_dir, room, id).ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "unsafe name"))?;
    let dir = target.parent().map(Path::to_owned).unwrap_or_default();
    crate::private::create_dir_async(&dir).await?;
    let temp = dir.join(format!(".{id}.part"));
    let result = async {
        let mut file = crate::private::file_options().open(&temp).await?;
        tokio::io::AsyncWriteExt::write_all(&mut file, bytes).await?;
        file.sync_all().await?;
        tokio::fs::rename(&temp, &target).await
    }
    .await;
    if result.is_err() {
        let _ = tokio::fs::remove_file(&temp).await;
    }
    result.map(|()| target)
}

/// Deletes the file; a file already gone is fine.
pub async fn remove(data_dir: &Path, room: &str, id: &str) -> io::Result<()> {
    let Some(target) = path(data_dir, room, id) else { return Ok(()) };
    match tokio::fs::remove_file(&target).await {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_ids_become_paths() {
        let dir = Path::new("/data");
        assert_eq!(path(dir, "appt-42", "d1"), Some(PathBuf::from("/data/documents/appt-42/d1")));
        for bad in ["", "..", "../x", "a/b", ".hidden", "a b", "x\0", &"a".repeat(129)] {
            assert_eq!(path(dir, bad, "d1"), None, "{bad:?}");
            assert_eq!(path(dir, "room", bad), None, "{bad:?}");
        }
    }

    #[tokio::test]
    async fn write_then_remove() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), "r", "d", b"%PDF-1.4").await.unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), b"%PDF-1.4");
        assert_eq!(std::fs::read_dir(file.parent().unwrap()).unwrap().count(), 1, "no temp file left");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!((mode(&dir.path().join("documents")), mode(&file)), (0o700, 0o600), "private");
        }
        remove(dir.path(), "r", "d").await.unwrap();
        assert!(!file.exists());
        remove(dir.path(), "r", "d").await.unwrap();
    }
}
