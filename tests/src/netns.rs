//! Run a test binary inside a fresh, loopback-only network namespace.
//!
//! Media tests must never send a packet to anything but loopback (see `shared/testing.md` §1). The
//! simplest way to guarantee that is to give the whole test process a network namespace whose only
//! interface is `lo`: the server, chromedriver, Chromium and every socket they open then live in it.
//!
//! [`ensure_loopback_namespace`] makes a plain `cargo test` do the right thing: outside the namespace it
//! re-executes the current test binary (same arguments) under
//! `unshare -n sh -c 'ip link set lo up && exec "$0" "$@"'` with `SPORTELLO_IN_NETNS=1`, waits for it
//! and exits with its status; inside, it checks that `lo` really is the only interface.
//!
//! Call it first thing in `main` of a `harness = false` test binary: with libtest's harness each
//! `#[test]` runs on its own thread of an already-started process, too late to re-execute cleanly.
//! Everything must be built beforehand, outside: no registry is reachable inside.

use std::ffi::OsString;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::Command;

/// Environment marker set on the re-executed process.
pub const MARKER: &str = "SPORTELLO_IN_NETNS";

/// The shell line run by `unshare -n`: bring `lo` up (a new namespace has it down), then become the
/// test binary (`$0`) with its arguments (`$@`).
const INNER: &str = r#"ip link set lo up && exec "$0" "$@""#;

/// Makes sure this process runs in a loopback-only network namespace.
///
/// - Not inside yet (no `SPORTELLO_IN_NETNS`): re-executes this binary inside one, forwards its exit
///   status and **does not return** (`std::process::exit`).
/// - Inside: returns if `lo` is the only interface and is up; panics with an explanation otherwise.
pub fn ensure_loopback_namespace() {
    if std::env::var_os(MARKER).is_none() {
        let code = reexec_in_namespace();
        std::process::exit(code);
    }
    if let Err(why) = check_loopback_only() {
        panic!("{MARKER} is set but this process is not in a loopback-only network namespace: {why}");
    }
}

/// True when this process already runs inside the namespace (the marker is set).
pub fn in_namespace() -> bool {
    std::env::var_os(MARKER).is_some()
}

fn reexec_in_namespace() -> i32 {
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            eprintln!("netns: cannot find the current executable to re-execute it: {e}");
            return 2;
        }
    };
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let mut cmd = Command::new("unshare");
    cmd.arg("-n").arg("sh").arg("-c").arg(INNER).arg(&exe).args(&args).env(MARKER, "1");
    // If this (outer) process dies, take the inner one with it instead of leaving it orphaned.
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    match cmd.status() {
        Ok(status) => {
            if let Some(code) = status.code() {
                if code != 0 && !is_root() {
                    eprintln!(
                        "netns: the test exited with {code}; note that `unshare -n` needs root \
                         (CAP_SYS_ADMIN) and this process is not root"
                    );
                }
                code
            } else {
                let sig = status.signal().unwrap_or(0);
                eprintln!("netns: the test process inside the namespace was killed by signal {sig}");
                128 + sig
            }
        }
        Err(e) => {
            eprintln!(
                "netns: cannot run `unshare -n` ({e}). It comes with util-linux and needs root \
                 (CAP_SYS_ADMIN){}; `ip` comes with iproute2.",
                if is_root() { "" } else { " — this process is NOT root" }
            );
            2
        }
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Lists this process's network interfaces.
///
/// Reads `/proc/self/net/dev`, which reflects the *current* network namespace. (`/sys/class/net` does
/// not: sysfs shows the namespace of whoever mounted it, so after `unshare -n` without a new mount
/// namespace it still lists the host's `eth0`.)
pub fn interfaces() -> std::io::Result<Vec<String>> {
    let text = std::fs::read_to_string("/proc/self/net/dev")?;
    Ok(text
        .lines()
        .skip(2) // two header lines
        .filter_map(|line| line.split(':').next())
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .collect())
}

fn check_loopback_only() -> Result<(), String> {
    let names = interfaces().map_err(|e| format!("cannot read /proc/self/net/dev: {e}"))?;
    if names != ["lo"] {
        return Err(format!("interfaces are {names:?}, expected only [\"lo\"]"));
    }
    // lo must be up, or nothing can connect to 127.0.0.1.
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| std::net::TcpStream::connect(l.local_addr()?))
        .map_err(|e| format!("loopback is not usable (is `lo` up?): {e}"))?;
    Ok(())
}

/// Kills (SIGKILL) every other process in this network namespace, by pid; returns how many.
///
/// Only inside the namespace made by [`ensure_loopback_namespace`]: it is fresh and private to this
/// test run, so everything in it was started by this test. Call it last in `main`, after the orderly
/// shutdown, to sweep up what escaped it — notably Chromium's crash handler, which detaches itself
/// (own session, parent 1) and so is neither a descendant nor in chromedriver's process group.
pub fn kill_leftover_processes() -> usize {
    if !in_namespace() {
        return 0;
    }
    let Ok(ours) = std::fs::read_link("/proc/self/ns/net") else { return 0 };
    let me = std::process::id() as libc::pid_t;
    let mut killed = 0;
    let Ok(dir) = std::fs::read_dir("/proc") else { return 0 };
    for entry in dir.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<libc::pid_t>() else { continue };
        if pid == me {
            continue;
        }
        if std::fs::read_link(entry.path().join("ns/net")).is_ok_and(|ns| ns == ours) {
            // SAFETY: plain kill(2) of a process of our private namespace.
            if unsafe { libc::kill(pid, libc::SIGKILL) } == 0 {
                killed += 1;
            }
        }
    }
    killed
}

/// `main` of a single-scenario media test: re-executes itself in the loopback-only namespace,
/// runs `scenario` on a two-thread runtime and reports in libtest's words (exit 1 on failure).
pub fn run_scenario<E: std::fmt::Display>(name: &str, scenario: impl std::future::Future<Output = Result<(), E>>) {
    ensure_loopback_namespace();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    match rt.block_on(scenario) {
        Ok(()) => println!("1 passed, 0 failed"),
        Err(e) => {
            eprintln!("{name}: FAILED: {e}");
            println!("0 passed, 1 failed");
            std::process::exit(1);
        }
    }
}

/// Random loss of UDP datagrams inside this test's namespace (nftables, `shared/testing.md` §5),
/// removed again on drop.
///
/// The rule sits on the input hook only: on loopback every datagram is both sent and received in
/// this namespace, so one hook already drops `percent` % of each direction (browser → SFU and
/// SFU → browser); a second rule on output would double it. TCP (HTTP, websocket, WebDriver) is
/// untouched. Only inside the namespace made by [`ensure_loopback_namespace`].
#[derive(Debug)]
pub struct UdpLoss {
    table: String,
}

/// Errors of [`UdpLoss`].
#[derive(Debug)]
pub enum NftError {
    /// The test is not in its own namespace: a rule there would hit the host.
    NotInNamespace,
    /// `nft` could not be run (Debian package `nftables`).
    Spawn(std::io::Error),
    /// `nft` refused the ruleset.
    Rejected(String),
}

impl std::fmt::Display for NftError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NftError::NotInNamespace => write!(f, "nftables loss outside the test's own network namespace refused"),
            NftError::Spawn(e) => write!(f, "cannot run nft (Debian package nftables): {e}"),
            NftError::Rejected(why) => write!(f, "nft refused the ruleset: {why}"),
        }
    }
}

impl std::error::Error for NftError {}

impl UdpLoss {
    /// Drops `percent` % (0–100) of UDP datagrams at random from now on.
    pub fn install(percent: u8) -> Result<UdpLoss, NftError> {
        if !in_namespace() {
            return Err(NftError::NotInNamespace);
        }
        let table = "sportello_loss".to_string();
        let ruleset = format!(
            "table inet {table} {{\n  chain input {{\n    type filter hook input priority 0; policy accept;\n    \
             meta l4proto udp numgen random mod 100 < {} counter drop\n  }}\n}}\n",
            percent.min(100)
        );
        nft(&["-f", "-"], Some(&ruleset))?;
        Ok(UdpLoss { table })
    }

    /// How many datagrams the rule has dropped so far.
    pub fn dropped(&self) -> Result<u64, NftError> {
        let listing = nft(&["list", "table", "inet", &self.table], None)?;
        // `... counter packets N bytes M drop`
        Ok(listing.split_whitespace().skip_while(|w| *w != "packets").nth(1).and_then(|n| n.parse().ok()).unwrap_or(0))
    }
}

impl Drop for UdpLoss {
    fn drop(&mut self) {
        if let Err(e) = nft(&["delete", "table", "inet", &self.table], None) {
            eprintln!("netns: removing the loss rule: {e}");
        }
    }
}

/// A firewall inside this test's namespace (nftables, `shared/testing.md` §5), removed on drop.
///
/// `rules` go into both an input and an output chain (policy accept), so a rule filters both
/// directions: on loopback every packet is sent and received here, and a stateful reply can never
/// leak around a rule that only one hook saw. Rules are nft syntax, one per entry, e.g.
/// `meta l4proto udp counter drop` (UDP blocked) or `tcp dport 4443 counter drop`. Give drop rules a
/// `counter`: [`Firewall::dropped`] sums them.
#[derive(Debug)]
pub struct Firewall {
    table: String,
}

impl Firewall {
    pub fn install(rules: &[&str]) -> Result<Firewall, NftError> {
        if !in_namespace() {
            return Err(NftError::NotInNamespace);
        }
        // A table of its own: several firewalls may stand at once and each goes with its drop.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let table = format!("sportello_fw{}", NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        let body = rules.iter().map(|r| format!("    {r}\n")).collect::<String>();
        let ruleset = format!(
            "table inet {table} {{\n  chain input {{\n    type filter hook input priority 0; policy accept;\n{body}  }}\n  \
             chain output {{\n    type filter hook output priority 0; policy accept;\n{body}  }}\n}}\n"
        );
        nft(&["-f", "-"], Some(&ruleset))?;
        Ok(Firewall { table })
    }

    /// Every UDP datagram dropped, both ways.
    pub fn block_udp() -> Result<Firewall, NftError> {
        Firewall::install(&["meta l4proto udp counter drop"])
    }

    /// Packets the rules' counters have seen so far (input and output).
    pub fn dropped(&self) -> Result<u64, NftError> {
        let listing = nft(&["list", "table", "inet", &self.table], None)?;
        let words: Vec<&str> = listing.split_whitespace().collect();
        Ok(words.windows(2).filter(|w| w[0] == "packets").filter_map(|w| w[1].parse::<u64>().ok()).sum())
    }
}

impl Drop for Firewall {
    fn drop(&mut self) {
        if let Err(e) = nft(&["delete", "table", "inet", &self.table], None) {
            eprintln!("netns: removing the firewall: {e}");
        }
    }
}

/// Runs `nft ARGS` (with `stdin` as its input if given); returns its standard output.
fn nft(args: &[&str], stdin: Option<&str>) -> Result<String, NftError> {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = Command::new("nft")
        .args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(NftError::Spawn)?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes()).map_err(NftError::Spawn)?;
    }
    let out = child.wait_with_output().map_err(NftError::Spawn)?;
    if !out.status.success() {
        return Err(NftError::Rejected(String::from_utf8_lossy(&out.stderr).trim().to_string()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
