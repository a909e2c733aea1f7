//! Throwaway databases for tests (cargo feature `testing`): a private PostgreSQL server started
//! from the installed binaries ([`TempPostgres`]), never the machine's own service, and SQLite
//! files in temporary directories ([`TempSqlite`]). Only 127.0.0.1 and a unix socket directory
//! are used, so both work inside a loopback-only network namespace.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

#[derive(Debug, thiserror::Error)]
pub enum TestingError {
    #[error("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb; apt-get install postgresql)")]
    NotInstalled,
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{what} failed ({status}): {output}")]
    Command { what: String, status: String, output: String },
}

/// A PostgreSQL server of its own: a fresh cluster in a temporary directory on a free port of
/// 127.0.0.1, trust authentication for user `postgres`, fsync off. Stopped (`-m immediate`) and
/// deleted on drop.
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let pg = sportello_store::testing::TempPostgres::start()?;
/// let url = pg.create_database()?; // a fresh, empty database; pg.url() is the one made at start
/// # Ok(()) }
/// ```
pub struct TempPostgres {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    as_postgres: bool,
    /// `pg_ctl -o` of the start, to start it again on the same port.
    options: String,
    databases: AtomicU32,
    url: String,
    // Last: removed after the server has been stopped.
    _dir: tempfile::TempDir,
}

impl TempPostgres {
    /// Creates and starts the cluster and a first database (see [`TempPostgres::url`]). Blocking:
    /// from async code call it via `spawn_blocking`, or accept a few seconds of a blocked worker.
    pub fn start() -> Result<TempPostgres, TestingError> {
        let bin = find_bin()?;
        let dir = tempfile::Builder::new().prefix("sportello-pg-").tempdir()?;
        // initdb refuses to run as root: the cluster then belongs to the `postgres` user.
        let as_postgres = unsafe { libc::geteuid() } == 0;
        if as_postgres {
            run("chown", Command::new("chown").arg("postgres:").arg(dir.path()))?;
        }
        let data = dir.path().join("data");
        let sh = |program: &Path| {
            let mut command = if as_postgres {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(program);
                c
            } else {
                Command::new(program)
            };
            // The caller's directory may be unreadable for `postgres`.
            command.current_dir(dir.path());
            command
        };
        run(
            "initdb",
            sh(&bin.join("initdb")).arg("-D").arg(&data).args([
                "--auth=trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ]),
        )?;
        let mut attempt = 0;
        let (port, options) = loop {
            attempt += 1;
            // A port the kernel just handed out and we released: another process may grab it
            // before the server binds, hence the retry.
            let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
            let options = format!(
                "-h 127.0.0.1 -p {port} -k {} -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
                 -c max_connections=300",
                dir.path().display()
            );
            let started = run(
                "pg_ctl start",
                sh(&bin.join("pg_ctl"))
                    .arg("-D")
                    .arg(&data)
                    .arg("-l")
                    .arg(dir.path().join("server.log"))
                    .args(["-o", &options, "-w", "-t", "60", "start"]),
            );
            match started {
                Ok(_) => break (port, options),
                Err(e) if attempt < 5 => {
                    let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default();
                    tracing::warn!(port, error = %e, log, "PostgreSQL did not start, trying another port");
                }
                Err(e) => return Err(e),
            }
        };
        let mut pg = TempPostgres {
            bin,
            data,
            port,
            as_postgres,
            options,
            databases: AtomicU32::new(0),
            url: String::new(),
            _dir: dir,
        };
        pg.url = pg.create_database()?;
        Ok(pg)
    }

    /// `postgres://postgres@127.0.0.1:PORT/DB` of the database created at start.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The cluster's directory: `data/`, the unix socket, and `server.log`.
    pub fn dir(&self) -> &Path {
        self._dir.path()
    }

    /// Creates another empty database on this server and returns its URL.
    pub fn create_database(&self) -> Result<String, TestingError> {
        let name = format!("sportello_{}", self.databases.fetch_add(1, Ordering::Relaxed) + 1);
        run(
            "createdb",
            Command::new(self.bin.join("createdb")).args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                &name,
            ]),
        )?;
        Ok(format!("postgres://postgres@127.0.0.1:{}/{name}", self.port))
    }
}

impl TempPostgres {
    /// `pg_ctl -D <data>`, as the cluster's owner.
    fn pg_ctl(&self) -> Command {
        let pg_ctl = self.bin.join("pg_ctl");
        let mut command = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(pg_ctl);
            c
        } else {
            Command::new(pg_ctl)
        };
        command.current_dir(self._dir.path()).arg("-D").arg(&self.data);
        command
    }

    /// Stops the server at once (`-m immediate`: as a crash, every connection cut), keeping its data.
    pub fn stop(&self) -> Result<(), TestingError> {
        run("pg_ctl stop", self.pg_ctl().args(["-m", "immediate", "-w", "stop"])).map(drop)
    }

    /// Starts it again after [`TempPostgres::stop`], on the same port.
    pub fn restart(&self) -> Result<(), TestingError> {
        let log = self._dir.path().join("server.log");
        run("pg_ctl start", self.pg_ctl().arg("-l").arg(log).args(["-o", &self.options, "-w", "-t", "60", "start"]))
            .map(drop)
    }
}

impl Drop for TempPostgres {
    fn drop(&mut self) {
        let running = self.data.join("postmaster.pid").exists();
        if running && let Err(e) = self.stop() {
            tracing::warn!(error = %e, "could not stop the temporary PostgreSQL");
        }
    }
}

/// A fresh database on a server shared by the whole test process (started on first use, stopped
/// and deleted when the process exits). Cheaper than one [`TempPostgres`] per test.
pub fn shared_postgres_database() -> Result<String, TestingError> {
    static SHARED: Mutex<Option<TempPostgres>> = Mutex::new(None);
    extern "C" fn stop_shared() {
        // Statics are never dropped: stop the server at exit (test harnesses exit through `exit`).
        let server = SHARED.lock().unwrap_or_else(|p| p.into_inner()).take();
        drop(server);
    }
    let mut shared = SHARED.lock().unwrap_or_else(|p| p.into_inner());
    if shared.is_none() {
        *shared = Some(TempPostgres::start()?);
        unsafe { libc::atexit(stop_shared) };
    }
    match shared.as_ref() {
        Some(pg) => pg.create_database(),
        None => Err(TestingError::NotInstalled),
    }
}

/// A SQLite database file in its own temporary directory, deleted on drop.
pub struct TempSqlite {
    url: String,
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl TempSqlite {
    pub fn new() -> std::io::Result<TempSqlite> {
        let dir = tempfile::Builder::new().prefix("sportello-sqlite-").tempdir()?;
        let path = dir.path().join("sportello.db");
        Ok(TempSqlite { url: format!("sqlite:{}", path.display()), path, _dir: dir })
    }

    /// `sqlite:/tmp/…/sportello.db`, for [`crate::Store::connect`].
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The newest `/usr/lib/postgresql/<version>/bin` with `initdb` (or `$SPORTELLO_PG_BIN`).
fn find_bin() -> Result<PathBuf, TestingError> {
    if let Some(bin) = std::env::var_os("SPORTELLO_PG_BIN") {
        return Ok(PathBuf::from(bin));
    }
    let versions = std::fs::read_dir("/usr/lib/postgresql").map_err(|_| TestingError::NotInstalled)?;
    versions
        .filter_map(|e| e.ok())
        .filter_map(|e| Some((e.file_name().to_str()?.parse::<u32>().ok()?, e.path().join("bin"))))
        .filter(|(_, bin)| bin.join("initdb").is_file())
        .max_by_key(|(version, _)| *version)
        .map(|(_, bin)| bin)
        .ok_or(TestingError::NotInstalled)
}

fn run(what: &str, command: &mut Command) -> Result<Output, TestingError> {
    let output = command.output()?;
    if output.status.success() {
        return Ok(output);
    }
    Err(TestingError::Command {
        what: what.to_owned(),
        status: output.status.to_string(),
        output: format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr)),
    })
}
