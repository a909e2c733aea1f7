//! The real `sportello` binary as a child process on fixed loopback ports and one data directory,
//! which a test can `kill -9` and start again on the same ports and data (restart safety).
//!
//! The binary is `target/<profile>/sportello`, next to the test binaries' `deps/` folder: build it
//! first (`cargo build -p sportello-server --bin sportello`; `scripts/test` builds the workspace).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `target/<profile>/sportello`, or why it is not there.
pub fn binary() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    // target/<profile>/deps/<test> → target/<profile>/sportello
    let profile = exe.parent().and_then(Path::parent).ok_or("no target directory")?;
    let bin = profile.join("sportello");
    if bin.exists() {
        Ok(bin)
    } else {
        Err(format!("{} is missing: build it first (cargo build -p sportello-server --bin sportello)", bin.display()))
    }
}

/// A loopback TCP port free right now (and, for the media socket, the same number in UDP).
pub fn free_port() -> Result<u16, String> {
    for _ in 0..20 {
        let tcp = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
        let port = tcp.local_addr().map_err(|e| e.to_string())?.port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    Err("no free loopback port".into())
}

/// One `sportello run` process; started again with [`Sportello::restart`] on the same settings.
pub struct Sportello {
    child: Option<Child>,
    bin: PathBuf,
    args: Vec<String>,
    log: PathBuf,
    starts: u32,
    pub http: SocketAddr,
    pub media: SocketAddr,
    pub data_dir: PathBuf,
}

impl Sportello {
    /// `sportello run` on `127.0.0.1:<free port>` (HTTP and media UDP), `data_dir`, with `extra`
    /// flags (e.g. `--database-url`, `--reconnect-grace`); waits until `/healthz` answers. The log
    /// (stderr) of each start goes to `data_dir/../sportello-<n>.log`.
    pub fn start(data_dir: &Path, extra: &[String]) -> Result<Sportello, String> {
        Sportello::start_in(data_dir, data_dir.parent().unwrap_or(data_dir), extra)
    }

    /// [`Sportello::start`] with its logs in `log_dir` (nodes sharing one data directory).
    pub fn start_in(data_dir: &Path, log_dir: &Path, extra: &[String]) -> Result<Sportello, String> {
        let bin = binary()?;
        let http: SocketAddr = ([127, 0, 0, 1], free_port()?).into();
        let media: SocketAddr = ([127, 0, 0, 1], free_port()?).into();
        let mut args: Vec<String> = vec![
            "run".into(),
            "--listen".into(),
            http.to_string(),
            "--media-bind".into(),
            media.to_string(),
            "--data-dir".into(),
            data_dir.display().to_string(),
        ];
        // Its own address, unless it is reached through a front (`extra` says which).
        if !extra.iter().any(|a| a == "--public-url") {
            args.extend(["--public-url".into(), format!("http://{http}")]);
        }
        args.extend(extra.iter().cloned());
        let log = log_dir.join("sportello");
        let mut server =
            Sportello { child: None, bin, args, log, starts: 0, http, media, data_dir: data_dir.to_owned() };
        server.spawn()?;
        Ok(server)
    }

    fn spawn(&mut self) -> Result<(), String> {
        self.starts += 1;
        let log_path = self.log_path(self.starts);
        let log = std::fs::File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
        let mut command = Command::new(&self.bin);
        command.args(&self.args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(log);
        for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("SPORTELLO_") || k == "RUST_LOG") {
            command.env_remove(key);
        }
        let child = command.spawn().map_err(|e| format!("starting {}: {e}", self.bin.display()))?;
        self.child = Some(child);
        self.wait_healthy(Duration::from_secs(60))
    }

    /// The stderr log of start number `n` (1 is the first).
    pub fn log_path(&self, n: u32) -> PathBuf {
        self.log.with_file_name(format!("sportello-{n}.log"))
    }

    /// The last start's log, for a failure message.
    pub fn last_log(&self) -> String {
        std::fs::read_to_string(self.log_path(self.starts)).unwrap_or_default()
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.http)
    }

    /// Polls `GET /healthz` until it answers 200; fails early if the process exited.
    pub fn wait_healthy(&mut self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(format!("sportello exited with {status}:\n{}", self.last_log()));
            }
            if healthz(self.http) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("sportello not healthy within {timeout:?}:\n{}", self.last_log()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL, as a crash or the OOM killer would: no shutdown code runs.
    pub fn kill9(&mut self) -> Result<(), String> {
        let Some(mut child) = self.child.take() else { return Err("not running".into()) };
        let pid = libc::pid_t::try_from(child.id()).map_err(|e| e.to_string())?;
        // SAFETY: kill(2) on our own child's pid; it has not been reaped, so the pid is still ours.
        if unsafe { libc::kill(pid, libc::SIGKILL) } != 0 {
            return Err(format!("kill: {}", std::io::Error::last_os_error()));
        }
        let status = child.wait().map_err(|e| e.to_string())?;
        use std::os::unix::process::ExitStatusExt;
        if status.signal() != Some(libc::SIGKILL) {
            return Err(format!("sportello ended with {status} before the kill"));
        }
        Ok(())
    }

    /// SIGSTOP (`true`) or SIGCONT (`false`): a frozen process, as a stuck VM or a swapped-out
    /// host would be — its sockets stay open, nothing answers.
    pub fn freeze(&mut self, frozen: bool) -> Result<(), String> {
        let child = self.child.as_ref().ok_or("not running")?;
        let pid = libc::pid_t::try_from(child.id()).map_err(|e| e.to_string())?;
        let signal = if frozen { libc::SIGSTOP } else { libc::SIGCONT };
        // SAFETY: kill(2) on our own child's pid, not yet reaped.
        if unsafe { libc::kill(pid, signal) } != 0 {
            return Err(format!("kill: {}", std::io::Error::last_os_error()));
        }
        Ok(())
    }

    /// SIGTERM, as systemd stops a service; [`Sportello::wait_exit`] then waits for the end.
    pub fn terminate(&mut self) -> Result<(), String> {
        let child = self.child.as_ref().ok_or("not running")?;
        let pid = libc::pid_t::try_from(child.id()).map_err(|e| e.to_string())?;
        // SAFETY: kill(2) on our own child's pid, not yet reaped.
        if unsafe { libc::kill(pid, libc::SIGTERM) } != 0 {
            return Err(format!("kill: {}", std::io::Error::last_os_error()));
        }
        Ok(())
    }

    /// Waits up to `within` for the process to exit (killed after that); its status.
    pub fn wait_exit(&mut self, within: Duration) -> Result<std::process::ExitStatus, String> {
        let mut child = self.child.take().ok_or("not running")?;
        let end = Instant::now() + within;
        loop {
            if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
                return Ok(status);
            }
            if Instant::now() > end {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("sportello did not exit within {within:?}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts the binary again with the same ports, data and flags; waits until healthy.
    pub fn restart(&mut self) -> Result<(), String> {
        if self.child.is_some() {
            return Err("still running".into());
        }
        self.spawn()
    }
}

impl Drop for Sportello {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// One `GET /healthz` over a plain socket: true on `200`.
fn healthz(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else { return false };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.1 200")
}
