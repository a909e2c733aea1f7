//! The data directory is private to the server's user: the database, the outbox (whose emails
//! carry manage secrets and join links), uploaded documents, recordings and the token key are
//! nobody else's business. Directories are created 0700 and files 0600 explicitly, whatever the
//! umask (the binary also sets umask 077 for what it does not create itself: ffmpeg's output,
//! the recorder's raw files). Elsewhere than on Unix these are plain create calls.

use std::io;
use std::path::Path;

pub const DIR_MODE: u32 = 0o700;
pub const FILE_MODE: u32 = 0o600;

/// Creates `dir` and its missing parents with mode 0700, and tightens `dir` itself to 0700 if it
/// already existed (a data directory made by an older version, or by hand).
pub fn create_dir(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, DIR_MODE);
    builder.create(dir)?;
    set_mode(dir, DIR_MODE)
}

/// [`create_dir`] off the async threads.
pub async fn create_dir_async(dir: &Path) -> io::Result<()> {
    let dir = dir.to_owned();
    tokio::task::spawn_blocking(move || create_dir(&dir)).await.map_err(io::Error::other)?
}

/// Options that create a new file readable and writable by its owner only.
pub fn file_options() -> tokio::fs::OpenOptions {
    let mut options = tokio::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(FILE_MODE);
    options
}

/// Creates `path` as a new file readable and writable by its owner only, failing if it exists: a
/// key or a secret is written once, never over another.
pub fn create_new_file(path: &Path) -> io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, FILE_MODE);
    options.open(path)
}

/// Sets 0600 on `file` if it exists (files the server did not create itself, such as a published
/// recording that ffmpeg wrote).
pub fn restrict_file(file: &Path) -> io::Result<()> {
    match set_mode(file, FILE_MODE) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> io::Result<()> {
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[tokio::test]
    async fn directories_0700_files_0600_whatever_existed() {
        let root = tempfile::tempdir().unwrap();
        let data = root.path().join("a/b");
        create_dir(&data).unwrap();
        assert_eq!((mode(&root.path().join("a")), mode(&data)), (0o700, 0o700));
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
        create_dir_async(&data).await.unwrap();
        assert_eq!(mode(&data), 0o700, "an existing directory is tightened");

        let file = data.join("f");
        tokio::io::AsyncWriteExt::write_all(&mut file_options().open(&file).await.unwrap(), b"x").await.unwrap();
        assert_eq!(mode(&file), 0o600);
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        restrict_file(&file).unwrap();
        assert_eq!(mode(&file), 0o600);
        restrict_file(&data.join("missing")).unwrap();
    }
}
