//! The Debian package (issue 14): built with cargo-deb from the already built `sportello` binary,
//! installed on this machine with `dpkg -i`, run the way its systemd unit runs it, removed and purged.
//!
//! 1. `conffile_documents_every_setting` (no root needed): `deploy/sportello.toml`, the package's
//!    `/etc/sportello/sportello.toml`, lists every setting of `Config`; its `#name = value` lines,
//!    uncommented, give exactly the defaults (so the comments do not lie), and with its examples
//!    uncommented too it is still a valid configuration.
//! 2. `install_run_remove_purge` (root; skipped with a message otherwise): `dpkg -i` creates the
//!    user `sportello`, `/var/lib/sportello` (theirs, 0700) and the conffile (root:sportello 0640);
//!    the unit passes `systemd-analyze verify` and `security` (when the binary exists). There is no
//!    systemd here, so the test starts the unit's `ExecStart` itself as the unit would (user
//!    sportello, no capabilities, no new privileges, umask 077, the unit's working directory),
//!    fetches the landing page, `/healthz` and `/readyz`, follows the first-administrator link the
//!    server prints (the journal, under systemd) and sees the second start remember the
//!    administrator. The first start runs under strace: every system call the server makes must
//!    be one the unit's `SystemCallFilter` allows, every socket's family one of its
//!    `RestrictAddressFamilies` (only a real systemd would enforce them). An edited conffile survives a reinstall and `dpkg -r`; the data survives
//!    `dpkg -r` and `dpkg --purge`; the purge deletes the configuration and says how to delete the
//!    data; installed again, the package finds the user and the administrator. A drop guard purges and deletes what the test made, and the test checks that the machine
//!    is left as it was found.
//!
//! Needs `target/<profile>/sportello` (built by `cargo build --workspace`, as `scripts/test` does)
//! and `cargo deb` (`cargo install --locked cargo-deb`); strace and systemd-analyze when present. Refuses to touch a machine where Sportello
//! is already installed. Runs inside a loopback-only network namespace (own `main`, see
//! `sportello_tests::netns`); the package goes into the real system, as a package does.

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use sportello_server::Config;
use sportello_server::config::ConfigArgs;
use sportello_tests::netns;

type Result<T> = std::result::Result<T, String>;

const PACKAGE: &str = "sportello";
const USER: &str = "sportello";
const DATA: &str = "/var/lib/sportello";
const ETC: &str = "/etc/sportello";
const CONFIG: &str = "/etc/sportello/sportello.toml";
/// The port the test's edit of the conffile moves the server to (inside the test's namespace).
const PORT: u16 = 18080;
/// Where `deb-systemd-helper enable` puts the unit's symlink (it does so even without systemd).
const WANTS: &str = "/etc/systemd/system/multi-user.target.wants/sportello.service";
/// Where `deb-systemd-helper mask` masks it while the package is removed but not purged.
const MASK: &str = "/etc/systemd/system/sportello.service";

fn main() {
    if !netns::in_namespace() {
        report("conffile_documents_every_setting", conffile_documents_every_setting());
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            println!(
                "deb_package: install_run_remove_purge SKIPPED: it needs root (dpkg -i, adduser, unshare -n); \
                 run the test as root"
            );
            return;
        }
    }
    netns::ensure_loopback_namespace();
    report("install_run_remove_purge", install_run_remove_purge());
}

fn report(name: &str, outcome: Result<()>) {
    match outcome {
        Ok(()) => println!("deb_package: {name} ok\n1 passed, 0 failed"),
        Err(e) => {
            eprintln!("deb_package: {name}: FAILED: {e}");
            println!("0 passed, 1 failed");
            std::process::exit(1);
        }
    }
}

fn check(cond: bool, what: impl Into<String>) -> Result<()> {
    if cond { Ok(()) } else { Err(what.into()) }
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ lives in the workspace").to_owned()
}

// ---------------------------------------------------------------------------------------------
// 1. The configuration file the package ships.

/// `#name = value` (a default) or `#name = value   # example` (no default): the setting's name, the
/// uncommented line and whether it is an example. Explanatory comments start with `# `.
fn setting_line(line: &str) -> Option<(String, String, bool)> {
    let rest = line.strip_prefix('#')?;
    let (name, _) = rest.split_once(" = ")?;
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
        return None;
    }
    Some((name.to_owned(), rest.to_owned(), rest.contains("# example")))
}

/// The field names of `Config`, from its pretty `Debug` (one top-level field per 4-space line).
fn config_fields() -> BTreeSet<String> {
    format!("{:#?}", Config::default())
        .lines()
        .filter_map(|l| l.strip_prefix("    "))
        .filter(|l| !l.starts_with(' '))
        .filter_map(|l| l.split_once(':').map(|(name, _)| name.to_owned()))
        .collect()
}

fn load(text: &str, dir: &Path, name: &str) -> Result<Config> {
    let path = dir.join(name);
    std::fs::write(&path, text).map_err(|e| e.to_string())?;
    let args = ConfigArgs { config: Some(path), ..ConfigArgs::default() };
    Config::load(&args, Vec::new()).map_err(|e| format!("{name}: {e}"))
}

fn conffile_documents_every_setting() -> Result<()> {
    let shipped = std::fs::read_to_string(workspace().join("deploy/sportello.toml")).map_err(|e| e.to_string())?;
    let mut documented = BTreeSet::new();
    let (mut defaults, mut everything) = (String::new(), String::new());
    for line in shipped.lines() {
        let active = !line.starts_with('#') && line.contains(" = ");
        if let Some((name, uncommented, example)) = setting_line(line) {
            documented.insert(name);
            if !example {
                defaults.push_str(&uncommented);
                defaults.push('\n');
            }
            everything.push_str(&uncommented);
            everything.push('\n');
        } else if active {
            documented.insert(line.split(" = ").next().unwrap_or_default().trim().to_owned());
            defaults.push_str(line);
            defaults.push('\n');
            everything.push_str(line);
            everything.push('\n');
        }
    }
    // The TURN secret is never read from the file (environment or turn_secret_file only).
    let wanted: BTreeSet<String> = config_fields().into_iter().filter(|f| f != "turn_secret").collect();
    check(wanted.len() > 20, format!("cannot read Config's fields from its Debug: {wanted:?}"))?;
    let missing: Vec<_> = wanted.difference(&documented).collect();
    let unknown: Vec<_> = documented.difference(&wanted).collect();
    check(missing.is_empty(), format!("deploy/sportello.toml does not document {missing:?}"))?;
    check(unknown.is_empty(), format!("deploy/sportello.toml documents settings Config does not have: {unknown:?}"))?;

    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let as_shipped = load(&shipped, dir.path(), "shipped.toml")?;
    let expected = Config { data_dir: PathBuf::from(DATA), ..Config::default() };
    check(
        as_shipped == expected,
        format!("the shipped file is not the defaults with data_dir {DATA}: {as_shipped:#?}"),
    )?;
    let uncommented = load(&defaults, dir.path(), "defaults.toml")?;
    check(
        uncommented == expected,
        format!("a `#name = value` line is not the default:\n{defaults}\ngives {uncommented:#?}\nnot {expected:#?}"),
    )?;
    load(&everything, dir.path(), "examples.toml").map(|_| ())
}

// ---------------------------------------------------------------------------------------------
// 2. Install, run, remove, purge.

/// Runs `program args`, stdin closed; `Err` with its output unless it exits 0.
fn run(program: &str, args: &[&str]) -> Result<Output> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(format!(
            "{program} {} exited with {}:\n{}{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// `getent passwd NAME` / `getent group NAME`, split at `:`; `None` when there is no such entry.
fn getent(db: &str, name: &str) -> Option<Vec<String>> {
    let out = Command::new("getent").args([db, name]).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().split(':').map(str::to_owned).collect())
}

fn dpkg_knows(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${db:Status-Status}", package])
        .output()
        .is_ok_and(|o| o.status.success() && !o.stdout.is_empty() && o.stdout != b"not-installed")
}

fn dpkg_status(package: &str) -> String {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// What the test would leave behind: empty on a machine without Sportello.
fn traces() -> Vec<String> {
    let mut found = Vec::new();
    if dpkg_knows(PACKAGE) {
        found.push(format!("dpkg knows the package {PACKAGE} ({})", dpkg_status(PACKAGE)));
    }
    if getent("passwd", USER).is_some() {
        found.push(format!("the user {USER}"));
    }
    if getent("group", USER).is_some() {
        found.push(format!("the group {USER}"));
    }
    for path in [DATA, ETC, WANTS, MASK, "/usr/bin/sportello"] {
        if Path::new(path).symlink_metadata().is_ok() {
            found.push(path.to_owned());
        }
    }
    // deb-systemd-helper's memory of what it enabled or masked.
    for dir in ["/var/lib/systemd/deb-systemd-helper-enabled", "/var/lib/systemd/deb-systemd-helper-masked"] {
        found.extend(files_named_like(Path::new(dir), "sportello"));
    }
    found
}

/// Paths under `dir` (recursively, symlinks not followed) whose name contains `part`.
fn files_named_like(dir: &Path, part: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if entry.file_name().to_string_lossy().contains(part) {
            found.push(path.display().to_string());
        } else if entry.file_type().is_ok_and(|t| t.is_dir()) {
            found.extend(files_named_like(&path, part));
        }
    }
    found
}

/// Owner name, group name and permission bits of `path`.
fn owner_mode(path: &str) -> Result<(String, String, u32)> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{path}: {e}"))?;
    let name_of = |db: &str, id: u32| getent(db, &id.to_string()).map_or(id.to_string(), |e| e[0].clone());
    Ok((name_of("passwd", meta.uid()), name_of("group", meta.gid()), meta.mode() & 0o7777))
}

fn expect_owner_mode(path: &str, owner: &str, group: &str, mode: u32) -> Result<()> {
    let (o, g, m) = owner_mode(path)?;
    check(
        (o.as_str(), g.as_str(), m) == (owner, group, mode),
        format!("{path} is {o}:{g} {m:04o}, expected {owner}:{group} {mode:04o}"),
    )
}

/// Undoes the installation whatever happened: stops the server, purges the package, then deletes
/// the data and the user as deploy/README.md tells an administrator to. Made only after checking
/// that none of it existed before the test.
struct Cleanup {
    server: Option<Child>,
    /// The server runs under strace: the process to signal is strace's child, not strace (which
    /// would detach and leave the server running).
    traced: bool,
}

/// The pids whose parent is `pid` (from /proc).
fn children_of(pid: u32) -> Vec<libc::pid_t> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<libc::pid_t>().ok())
        .filter(|p| {
            // `pid (comm) state ppid …`; comm may hold spaces, so read after the last ')'.
            std::fs::read_to_string(format!("/proc/{p}/stat")).ok().is_some_and(|stat| {
                stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok())
                    == Some(pid)
            })
        })
        .collect()
}

impl Cleanup {
    fn stop_server(&mut self) -> Result<std::process::ExitStatus> {
        let Some(mut child) = self.server.take() else { return Err("no server running".into()) };
        let targets = if self.traced { children_of(child.id()) } else { vec![child.id() as libc::pid_t] };
        for pid in &targets {
            // SAFETY: kill(2) of our own child (or of strace's child, the server) by its pid.
            unsafe { libc::kill(*pid, libc::SIGTERM) };
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return Ok(status),
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
                _ => {
                    for pid in &targets {
                        // SAFETY: as above.
                        unsafe { libc::kill(*pid, libc::SIGKILL) };
                    }
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err("the server did not stop within 30 s of SIGTERM".into());
                }
            }
        }
    }

    fn undo(&mut self) {
        if self.server.is_some() {
            let _ = self.stop_server();
        }
        if dpkg_knows(PACKAGE)
            && let Err(e) = run("dpkg", &["--purge", PACKAGE])
        {
            eprintln!("deb_package: cleanup: {e}");
        }
        let _ = std::fs::remove_dir_all(DATA);
        for (program, args) in [("deluser", ["--system", "--quiet", USER]), ("delgroup", ["--system", "--quiet", USER])]
        {
            if let Err(e) = run(program, &args) {
                eprintln!("deb_package: cleanup: {e}");
            }
        }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        self.undo();
        let left = traces();
        if !left.is_empty() {
            eprintln!("deb_package: cleanup left {left:?} behind");
        }
    }
}

/// `target/<profile>/`, where this test binary's `deps/` directory lives.
fn profile_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    Ok(exe.parent().and_then(Path::parent).ok_or("no target directory")?.to_owned())
}

/// `cargo deb` on the binary the other tests use (no build: registries are unreachable in the
/// namespace). cargo-deb packages release builds only (it warns that a dev profile will become an
/// error), so the binary is copied into a staging target directory's `release/`, whatever profile
/// built it; cargo-deb strips it there, never in the real target directory.
fn build_deb(out_dir: &Path) -> Result<PathBuf> {
    let binary = profile_dir()?.join("sportello");
    check(
        binary.is_file(),
        format!("{} is missing: build it first (cargo build -p sportello-server --bin sportello)", binary.display()),
    )?;
    let staging = out_dir.join("target");
    std::fs::create_dir_all(staging.join("release")).map_err(|e| e.to_string())?;
    std::fs::copy(&binary, staging.join("release/sportello")).map_err(|e| format!("{}: {e}", binary.display()))?;
    let manifest = workspace().join("server/Cargo.toml");
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["deb", "--no-build", "--fast", "--manifest-path"])
        .arg(&manifest)
        .arg("--output")
        .arg(out_dir)
        .env("CARGO_TARGET_DIR", &staging)
        .env("CARGO_NET_OFFLINE", "true")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    check(
        out.status.success(),
        format!(
            "cargo deb failed ({}); is cargo-deb installed (cargo install --locked cargo-deb)?\n{}",
            out.status,
            text(&out)
        ),
    )?;
    let debs: Vec<PathBuf> = std::fs::read_dir(out_dir)
        .map_err(|e| e.to_string())?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "deb"))
        .collect();
    match &debs[..] {
        [deb] => Ok(deb.clone()),
        other => Err(format!("expected one .deb in {}, found {other:?}\n{}", out_dir.display(), text(&out))),
    }
}

/// The installed unit file (cargo-deb puts it under /lib or /usr/lib).
fn unit_path() -> Result<PathBuf> {
    ["/lib/systemd/system/sportello.service", "/usr/lib/systemd/system/sportello.service"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .ok_or_else(|| "the package installed no sportello.service".into())
}

/// The value of `key=` in the unit's `[Service]` section.
fn unit_setting(unit: &str, key: &str) -> Option<String> {
    unit.lines().find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('='))).map(str::to_owned)
}

/// Starts the unit's `ExecStart` as systemd would: its user and group, no capabilities, no new
/// privileges, umask 077, its working directory, the service manager's bare environment; stdout
/// (where the first-administrator link goes) and stderr into `log`.
fn start_like_the_unit(unit: &str, log: &Path, trace: Option<&Path>) -> Result<Child> {
    let exec = unit_setting(unit, "ExecStart").ok_or("the unit has no ExecStart")?;
    let argv: Vec<&str> = exec.split_whitespace().collect();
    check(!exec.contains(['"', '\'', '$', '%']), format!("ExecStart needs a real systemd to expand: {exec}"))?;
    let user = unit_setting(unit, "User").ok_or("the unit has no User")?;
    let group = unit_setting(unit, "Group").unwrap_or_else(|| user.clone());
    let cwd = unit_setting(unit, "WorkingDirectory").ok_or("the unit has no WorkingDirectory")?;
    check(unit_setting(unit, "NoNewPrivileges").as_deref() == Some("true"), "NoNewPrivileges=true missing")?;
    check(unit_setting(unit, "CapabilityBoundingSet").as_deref() == Some(""), "CapabilityBoundingSet= not empty")?;
    let file = std::fs::File::create(log).map_err(|e| e.to_string())?;
    let err = file.try_clone().map_err(|e| e.to_string())?;
    let mut cmd = match trace {
        Some(file) => {
            let mut strace = Command::new("strace");
            strace.args(["-f", "-qq", "-o"]).arg(file).arg("setpriv");
            strace
        }
        None => Command::new("setpriv"),
    };
    cmd.arg(format!("--reuid={user}"))
        .arg(format!("--regid={group}"))
        .args(["--init-groups", "--no-new-privs", "--inh-caps=-all", "--bounding-set=-all", "--"])
        .args(&argv)
        .current_dir(&cwd)
        .env_clear()
        .env("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(err);
    // SAFETY: umask(2) only, between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::umask(0o077);
            Ok(())
        });
    }
    cmd.spawn().map_err(|e| format!("cannot start {exec} through setpriv: {e}"))
}

/// Every system call in `trace` (strace -f) made after `binary` was executed — what the unit's
/// seccomp filter sees; setpriv's own (setresuid, capset) come before, as systemd's do.
fn syscalls_after_exec(trace: &Path, binary: &str) -> Result<BTreeSet<String>> {
    let text = std::fs::read_to_string(trace).map_err(|e| format!("{}: {e}", trace.display()))?;
    let exec = format!("execve(\"{binary}\"");
    let start = text.find(&exec).ok_or_else(|| format!("{binary} was never executed under strace"))?;
    Ok(text[start..]
        .lines()
        .filter_map(|l| l.split_once(' ').map(|(_, rest)| rest.trim_start()))
        .filter_map(|call| call.split_once('(').map(|(name, _)| name))
        .filter(|name| {
            !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        })
        .map(str::to_owned)
        .collect())
}

/// The address families of the sockets in `trace` opened after `binary` was executed.
fn socket_families_after_exec(trace: &Path, binary: &str) -> Result<BTreeSet<String>> {
    let text = std::fs::read_to_string(trace).map_err(|e| format!("{}: {e}", trace.display()))?;
    let start = text.find(&format!("execve(\"{binary}\"")).ok_or_else(|| format!("{binary} was never executed"))?;
    Ok(text[start..]
        .split("socket")
        .skip(1)
        .filter_map(|rest| rest.strip_prefix('(').or_else(|| rest.strip_prefix("pair(")))
        .filter_map(|args| args.split([',', ')']).next())
        .filter(|family| family.starts_with("AF_"))
        .map(str::to_owned)
        .collect())
}

/// The system calls of a `systemd-analyze syscall-filter` set, its nested sets expanded.
fn syscall_set(name: &str) -> Result<BTreeSet<String>> {
    let out = run("systemd-analyze", &["syscall-filter", name])?;
    let mut calls = BTreeSet::new();
    for line in String::from_utf8_lossy(&out.stdout).lines().skip(1) {
        let item = line.trim();
        if item.starts_with('@') {
            calls.extend(syscall_set(item)?);
        } else if !item.is_empty() && !item.starts_with('#') {
            calls.insert(item.to_owned());
        }
    }
    Ok(calls)
}

/// What the unit's `SystemCallFilter=` lines allow: the allow-list sets minus the `~` deny sets.
fn unit_syscall_filter(unit: &str) -> Result<BTreeSet<String>> {
    let (mut allowed, mut denied) = (BTreeSet::new(), BTreeSet::new());
    for value in unit.lines().filter_map(|l| l.strip_prefix("SystemCallFilter=")) {
        let (target, sets) = match value.strip_prefix('~') {
            Some(sets) => (&mut denied, sets),
            None => (&mut allowed, value),
        };
        for set in sets.split_whitespace() {
            if set.starts_with('@') {
                target.extend(syscall_set(set)?)
            } else {
                target.insert(set.to_owned());
            }
        }
    }
    check(!allowed.is_empty(), "the unit has no SystemCallFilter allow list")?;
    Ok(allowed.difference(&denied).cloned().collect())
}

/// Waits until `/healthz` answers (or the server exits); a hang guard, not a timing assertion.
async fn wait_healthy(client: &reqwest::Client, base: &str, cleanup: &mut Cleanup, log: &Path) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = client.get(format!("{base}/healthz")).send().await
            && r.status().is_success()
        {
            return Ok(());
        }
        let exited = cleanup.server.as_mut().and_then(|c| c.try_wait().ok().flatten());
        if exited.is_some() || Instant::now() > deadline {
            let output = std::fs::read_to_string(log).unwrap_or_default();
            return Err(format!("the packaged server did not come up ({exited:?}):\n{output}"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn get(client: &reqwest::Client, url: &str) -> Result<(u16, String)> {
    let r = client.get(url).send().await.map_err(|e| format!("GET {url}: {e}"))?;
    let status = r.status().as_u16();
    Ok((status, r.text().await.map_err(|e| e.to_string())?))
}

fn install_run_remove_purge() -> Result<()> {
    let before = traces();
    check(
        before.is_empty(),
        format!(
            "this machine already has Sportello installed or left over ({before:?}); the test installs and \
             purges the package and will not touch an existing installation. If it is a leftover of this test: \
             dpkg --purge sportello; rm -rf /var/lib/sportello; deluser --system sportello; delgroup --system sportello"
        ),
    )?;
    let work = tempfile::tempdir().map_err(|e| e.to_string())?;
    let deb = build_deb(work.path())?;
    println!("deb_package: built {}", deb.display());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    let mut cleanup = Cleanup { server: None, traced: false };
    let outcome = runtime.block_on(scenario(&deb, work.path(), &mut cleanup));
    cleanup.undo();
    let left = traces();
    std::mem::forget(cleanup);
    outcome?;
    check(left.is_empty(), format!("the machine is not as the test found it: {left:?} left"))
}

async fn scenario(deb: &Path, work: &Path, cleanup: &mut Cleanup) -> Result<()> {
    let deb = deb.to_str().ok_or("non-UTF-8 path")?;
    let installed = run("dpkg", &["-i", deb])?;
    println!("{}", text(&installed));
    check(dpkg_status(PACKAGE) == "install ok installed", format!("after dpkg -i: {}", dpkg_status(PACKAGE)))?;
    check(
        text(&installed).contains("Primo avvio"),
        format!("the first install does not say where the first administrator's link is:\n{}", text(&installed)),
    )?;

    // The system user: no login, home is the data directory.
    let user = getent("passwd", USER).ok_or("dpkg -i created no user sportello")?;
    let uid: u32 = user[2].parse().map_err(|_| format!("bad passwd entry {user:?}"))?;
    check(uid < 1000, format!("sportello is not a system user (uid {uid})"))?;
    check(user[5] == DATA && user[6] == "/usr/sbin/nologin", format!("passwd entry {user:?}"))?;
    check(getent("group", USER).is_some(), "no group sportello")?;
    expect_owner_mode(DATA, USER, USER, 0o700)?;
    expect_owner_mode(CONFIG, "root", USER, 0o640)?;
    expect_owner_mode("/usr/bin/sportello", "root", "root", 0o755)?;
    let conffiles = run("dpkg-query", &["-W", "-f=${Conffiles}", PACKAGE])?;
    check(text(&conffiles).contains(CONFIG), format!("{CONFIG} is not a conffile: {}", text(&conffiles)))?;
    check(Path::new(WANTS).exists(), format!("the unit is not enabled ({WANTS} missing)"))?;

    // The unit, as systemd reads it, and how exposed it is.
    let unit_file = unit_path()?;
    let unit = std::fs::read_to_string(&unit_file).map_err(|e| e.to_string())?;
    let unit_arg = unit_file.to_str().ok_or("non-UTF-8 path")?;
    if Path::new("/usr/bin/systemd-analyze").exists() {
        let verify = run("systemd-analyze", &["verify", unit_arg])?;
        check(
            !text(&verify).contains("sportello.service"),
            format!("systemd-analyze verify complains:\n{}", text(&verify)),
        )?;
        // Exposure in tenths: 2.0 is well within "OK"; the unit scores 1.1 when written.
        let security = run("systemd-analyze", &["security", "--offline=yes", "--threshold=20", unit_arg])?;
        let score = text(&security).lines().rev().find(|l| l.contains("Overall exposure")).unwrap_or("").to_owned();
        println!("deb_package: {score}");
    } else {
        println!("deb_package: no systemd-analyze here: the unit is not verified");
    }

    // The administrator edits the conffile; a reinstall (postinst again) keeps the edit, the user
    // and the permissions.
    let shipped = std::fs::read_to_string(CONFIG).map_err(|e| e.to_string())?;
    let edited = format!("{shipped}\n# edited by the administrator\nlisten = \"127.0.0.1:{PORT}\"\n");
    std::fs::write(CONFIG, &edited).map_err(|e| e.to_string())?;
    run("dpkg", &["-i", deb])?;
    check(std::fs::read_to_string(CONFIG).ok().as_deref() == Some(edited.as_str()), "reinstalling lost the edit")?;
    check(getent("passwd", USER).is_some_and(|u| u[2] == user[2]), "reinstalling changed the user")?;
    expect_owner_mode(CONFIG, "root", USER, 0o640)?;
    expect_owner_mode(DATA, USER, USER, 0o700)?;

    // The documented way to check the configuration.
    let checked = run("runuser", &["-u", USER, "--", "sportello", "--config", CONFIG, "check-config"])?;
    let summary = text(&checked);
    check(
        summary.contains(&format!("127.0.0.1:{PORT}")) && summary.contains(DATA) && summary.contains("valid"),
        format!("check-config as sportello:\n{summary}"),
    )?;

    // First start, as the unit: pages, probes, and the first administrator's link in the output.
    let base = format!("http://127.0.0.1:{PORT}");
    let client = reqwest::Client::builder().no_proxy().build().map_err(|e| e.to_string())?;
    let log1 = work.join("first-start.log");
    // The first start runs under strace (when it and systemd-analyze are here), to hold its system
    // calls against the unit's SystemCallFilter, which only a real systemd would enforce.
    let analyze = Path::new("/usr/bin/systemd-analyze").exists();
    let traced = analyze && Command::new("strace").arg("-V").output().is_ok_and(|o| o.status.success());
    let trace = work.join("first-start.strace");
    cleanup.traced = traced;
    cleanup.server = Some(start_like_the_unit(&unit, &log1, traced.then_some(trace.as_path()))?);
    wait_healthy(&client, &base, cleanup, &log1).await?;
    let (status, landing) = get(&client, &format!("{base}/")).await?;
    check(
        status == 200 && landing.contains("Uffici virtuali realizzati con Sportello"),
        format!("GET /: {status}\n{landing}"),
    )?;
    let (status, body) = get(&client, &format!("{base}/healthz")).await?;
    check(status == 200, format!("GET /healthz: {status} {body}"))?;
    let (status, body) = get(&client, &format!("{base}/readyz")).await?;
    check(status == 200 && body.starts_with("ready"), format!("GET /readyz: {status} {body}"))?;
    let output = std::fs::read_to_string(&log1).map_err(|e| e.to_string())?;
    let link = output
        .split_whitespace()
        .find(|w| w.starts_with(&format!("{base}/staff/setup#")))
        .ok_or_else(|| format!("the first start printed no first-administrator link:\n{output}"))?;
    let (page, secret) = link.split_once('#').ok_or("no secret in the link")?;
    let (status, setup_page) = get(&client, page).await?;
    check(status == 200 && setup_page.contains("Imposta la password"), format!("GET {page}: {status}"))?;
    let created = client
        .post(format!("{base}/api/auth/setup"))
        .json(&serde_json::json!({
            "token": secret,
            "password": "una password lunga",
            "email": "admin@comune.example.it",
            "display_name": "Amministratrice",
        }))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    check(created.status() == 200, format!("the first-administrator link did not work: {}", created.status()))?;
    for file in ["sportello.db", "jwt.key"] {
        expect_owner_mode(&format!("{DATA}/{file}"), USER, USER, 0o600)?;
    }
    expect_owner_mode(DATA, USER, USER, 0o700)?;
    let stopped = cleanup.stop_server()?;
    cleanup.traced = false;
    check(stopped.success(), format!("the server stopped with {stopped} on SIGTERM"))?;
    if traced {
        let used = syscalls_after_exec(&trace, "/usr/bin/sportello")?;
        let allowed = unit_syscall_filter(&unit)?;
        let refused: Vec<_> = used.difference(&allowed).collect();
        check(
            refused.is_empty(),
            format!("the server made system calls the unit's SystemCallFilter refuses: {refused:?}"),
        )?;
        println!("deb_package: {} system calls, all within the unit's SystemCallFilter", used.len());
        let families = socket_families_after_exec(&trace, "/usr/bin/sportello")?;
        let allowed = unit_setting(&unit, "RestrictAddressFamilies").unwrap_or_default();
        let allowed: BTreeSet<&str> = allowed.split_whitespace().collect();
        check(
            families.contains("AF_INET") && families.iter().all(|f| allowed.contains(f.as_str())),
            format!("the server opened sockets of {families:?}; the unit allows {allowed:?}"),
        )?;
    } else {
        println!("deb_package: no strace or systemd-analyze here: the system calls are not checked");
    }

    // Second start: the administrator is remembered, no new setup link.
    restart_remembers_the_administrator(&unit, &client, &base, &work.join("second-start.log"), cleanup).await?;

    // dpkg -r: the program goes; configuration, data and user stay.
    run("dpkg", &["-r", PACKAGE])?;
    check(dpkg_status(PACKAGE) == "deinstall ok config-files", format!("after dpkg -r: {}", dpkg_status(PACKAGE)))?;
    check(!Path::new("/usr/bin/sportello").exists() && !unit_file.exists(), "dpkg -r left the binary or the unit")?;
    check(
        std::fs::read_to_string(CONFIG).ok().as_deref() == Some(edited.as_str()),
        "dpkg -r did not keep the configuration",
    )?;
    check(Path::new(DATA).join("sportello.db").is_file(), "dpkg -r did not keep the data")?;
    check(getent("passwd", USER).is_some(), "dpkg -r removed the user")?;

    // dpkg --purge: the configuration and the unit's enablement go; the data and the user stay, and
    // the purge says how to delete them.
    let purged = run("dpkg", &["--purge", PACKAGE])?;
    println!("{}", text(&purged));
    check(!dpkg_knows(PACKAGE), format!("after --purge: {}", dpkg_status(PACKAGE)))?;
    check(!Path::new(ETC).exists(), format!("--purge left {ETC}"))?;
    for path in [WANTS, MASK] {
        check(Path::new(path).symlink_metadata().is_err(), format!("--purge left {path}"))?;
    }
    check(Path::new(DATA).join("sportello.db").is_file(), "--purge deleted the data")?;
    expect_owner_mode(DATA, USER, USER, 0o700)?;
    check(
        text(&purged).contains("rm -rf /var/lib/sportello"),
        format!("--purge does not say how to delete the data:\n{}", text(&purged)),
    )?;

    // Installed again, the package finds the user and the data it kept: the administrator is still
    // there (the configuration is the shipped one again: port 8080).
    run("dpkg", &["-i", deb])?;
    check(getent("passwd", USER).is_some_and(|u| u[2] == user[2]), "the reinstall made a new user")?;
    expect_owner_mode(DATA, USER, USER, 0o700)?;
    let unit = std::fs::read_to_string(unit_path()?).map_err(|e| e.to_string())?;
    let log3 = work.join("after-purge.log");
    restart_remembers_the_administrator(&unit, &client, "http://127.0.0.1:8080", &log3, cleanup).await
}

/// Starts the unit's command, waits for it, checks that it prints the staff login and no
/// first-administrator link, and stops it.
async fn restart_remembers_the_administrator(
    unit: &str,
    client: &reqwest::Client,
    base: &str,
    log: &Path,
    cleanup: &mut Cleanup,
) -> Result<()> {
    cleanup.server = Some(start_like_the_unit(unit, log, None)?);
    wait_healthy(client, base, cleanup, log).await?;
    let output = std::fs::read_to_string(log).map_err(|e| e.to_string())?;
    check(
        !output.contains("/staff/setup#") && output.contains(&format!("{base}/staff")),
        format!("the start does not remember the administrator:\n{output}"),
    )?;
    let stopped = cleanup.stop_server()?;
    check(stopped.success(), format!("the server stopped with {stopped} on SIGTERM"))
}
