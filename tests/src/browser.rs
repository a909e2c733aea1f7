//! Real headless browsers driven over WebDriver (fantoccini): Chromium through chromedriver, Firefox
//! ESR through geckodriver. Both give the same [`Browser`], so a scenario does not care which.
//!
//! One [`Chromedriver`] process serves several independent [`Browser`] sessions: each session is its
//! own Chromium with its own fresh profile (`--user-data-dir`), i.e. one meeting participant. Chromium
//! runs with fake camera, microphone and screen (`--use-fake-device-for-media-stream`,
//! `--use-fake-ui-for-media-stream`) and may use loopback ICE candidates; see `shared/testing.md` §3.
//! geckodriver serves one session at a time, so [`Geckodriver`] starts one per Firefox; Firefox runs
//! headless with its own fresh profile and the preferences of [`firefox_prefs`] (fake media, loopback
//! ICE, autoplay).
//!
//! Run inside the loopback-only namespace ([`crate::netns`]). Cleanup does not depend on the test
//! reaching its end: dropping the [`Chromedriver`] or a Firefox [`Browser`] (also while unwinding from
//! a panic) kills the driver and every process it started (found by parent pid, plus its process group).

use std::fmt;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// Errors of the harness: any error, boxed, with a readable message.
pub type Error = Box<dyn std::error::Error + Send + Sync + 'static>;
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// How long [`Browser::click`] waits for its element to exist and be enabled.
pub const CLICK_TIMEOUT: Duration = Duration::from_secs(20);
/// Delay between two evaluations of a [`Browser::wait_for`] condition.
pub const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// The Chromium flags of `shared/testing.md` (the profile dir is added per session).
pub const CHROMIUM_FLAGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--autoplay-policy=no-user-gesture-required",
    "--window-size=1280,800",
    // No animated scrolling (Bootstrap Italia's `:root { scroll-behavior: smooth }`): WebDriver scrolls
    // an element into view and clicks at once, and mid-animation the click lands on another element
    // ("element click intercepted").
    "--force-prefers-reduced-motion",
];

pub const FIREFOX: &str = "/usr/bin/firefox-esr";

/// The Firefox preferences of the tests, the counterpart of [`CHROMIUM_FLAGS`] (headless, the profile
/// dir and the window size are arguments, added per session).
pub fn firefox_prefs() -> serde_json::Map<String, Value> {
    let prefs = json!({
        // Fake camera and microphone (a changing colour frame, a tone), no permission prompt.
        "media.navigator.streams.fake": true,
        "media.navigator.permission.disabled": true,
        // Gather loopback candidates (the namespace has nothing else) and show them as addresses,
        // not mDNS names (nothing resolves those here).
        "media.peerconnection.ice.loopback": true,
        "media.peerconnection.ice.obfuscate_host_addresses": false,
        // Firefox gathers host candidates on every interface only for a page that captures or holds a
        // camera/microphone permission; otherwise only the "default address" (the source address of a
        // route to the Internet), which a loopback-only namespace does not have: no candidate at all
        // ("failed to find default addresses"). Its fake devices do not count as capturing, so grant
        // the permissions. A real user has a default route and a real (permitted) camera.
        "permissions.default.camera": 1,
        "permissions.default.microphone": 1,
        // ICE-TCP is on by default; the UDP-blocked case depends on it, so say so.
        "media.peerconnection.ice.tcp": true,
        // This machine has no sound card nor sound server: with cubeb's real backends an AudioContext
        // never leaves "suspended" (the lobby's microphone meter stays at zero). Firefox's mock audio
        // backend gives it the device a user's machine has.
        "media.cubeb.force_mock_context": true,
        // No animated scrolling, as for Chromium (`--force-prefers-reduced-motion`).
        "ui.prefersReducedMotion": 1,
        // Remote video plays without a click.
        "media.autoplay.default": 0,
        "media.autoplay.blocking_policy": 0,
        // Nothing outside the namespace to reach: no captive-portal, connectivity or safe-browsing
        // probes (they would fail anyway, but fill the log and hold sockets).
        "network.captive-portal-service.enabled": false,
        "network.connectivity-service.enabled": false,
        "browser.safebrowsing.malware.enabled": false,
        "browser.safebrowsing.phishing.enabled": false,
        "browser.safebrowsing.downloads.enabled": false,
        "browser.safebrowsing.update.enabled": false,
        "toolkit.telemetry.enabled": false,
        "datareporting.policy.dataSubmissionEnabled": false,
    });
    match prefs {
        Value::Object(map) => map,
        _ => unreachable!("a JSON object literal"),
    }
}

/// A message error.
#[derive(Debug)]
pub struct Msg(pub String);
impl fmt::Display for Msg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for Msg {}

/// Builds an [`Error`] from a message.
pub fn err(msg: impl Into<String>) -> Error {
    Box::new(Msg(msg.into()))
}

/// `target/e2e-artifacts/` (screenshots, logs), derived from the test binary's location
/// (`target/<profile>/deps/<binary>`), so that it follows `CARGO_TARGET_DIR`.
pub fn artifacts_dir() -> PathBuf {
    let target = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.parent()?.to_path_buf()))
        .filter(|t| t.join("CACHEDIR.TAG").exists())
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let dir = target.join("e2e-artifacts");
    let _ = std::fs::create_dir_all(&dir);
    dir
}

/// A WebDriver server (chromedriver or geckodriver) on `127.0.0.1:<free port>`, leader of its own
/// process group. Dropping it kills the driver and every process it started (the browsers).
struct DriverProcess {
    name: &'static str,
    child: Child,
    url: String,
    log: PathBuf,
}

impl DriverProcess {
    /// Starts `program` with `args(port)`, its output to `target/e2e-artifacts/<log_name>`, and waits
    /// until `GET /status` says it is ready.
    async fn start(
        name: &'static str,
        program: &Path,
        args: impl FnOnce(u16) -> Vec<String>,
        log_name: &str,
        env: &[(&str, &Path)],
    ) -> Result<DriverProcess> {
        let port = free_port()?;
        let log = artifacts_dir().join(log_name);
        let log_file = std::fs::File::create(&log)?;
        let mut cmd = Command::new(program);
        cmd.args(args(port))
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            // Own process group: one kill reaches the driver and the browsers it spawned.
            .process_group(0);
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd.spawn().map_err(|e| err(format!("cannot start {}: {e}", program.display())))?;
        let mut driver = DriverProcess { name, child, url: format!("http://127.0.0.1:{port}"), log };

        // Ready when GET /status says so.
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = driver.child.try_wait()? {
                return Err(err(format!("{name} exited at start ({status}); see {}", driver.log.display())));
            }
            let ready =
                tokio::task::spawn_blocking(move || http_get(addr, "/status")).await.map_err(|e| err(e.to_string()))?;
            if let Ok(body) = ready
                && (body.contains("\"ready\":true") || body.contains("\"ready\": true"))
            {
                return Ok(driver);
            }
            if Instant::now() > deadline {
                return Err(err(format!(
                    "{name} did not become ready on {addr} within 30 s; see {}",
                    driver.log.display()
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Opens a WebDriver session with `caps` (one browser, `profile` its fresh profile directory).
    async fn session(
        &self,
        engine: Engine,
        label: &str,
        caps: serde_json::Map<String, Value>,
        profile: tempfile::TempDir,
    ) -> Result<Browser> {
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&self.url)
            .await
            .map_err(|e| err(format!("cannot start {engine} for {label}: {e}; see {}", self.log.display())))?;
        Ok(Browser { client: Some(client), label: label.to_string(), engine, driver: None, _profile: profile })
    }

    /// Kills the driver and everything it started. Also done on drop.
    fn kill(&mut self) {
        let pid = self.child.id() as libc::pid_t;
        if let Ok(None) = self.child.try_wait() {
            // Descendants first (the browser and its content, GPU and utility processes, whatever
            // process group they put themselves in), then the process group, then the driver itself.
            // All found by pid from the driver's.
            for p in descendants(pid) {
                // SAFETY: plain kill(2) of a process we started (transitively).
                unsafe { libc::kill(p, libc::SIGKILL) };
            }
            // SAFETY: the driver is the leader of its own process group (process_group(0)).
            unsafe { libc::kill(-pid, libc::SIGKILL) };
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for DriverProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

impl fmt::Debug for DriverProcess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at {}", self.name, self.url)
    }
}

/// Which browser a [`Browser`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Chromium,
    Firefox,
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Engine::Chromium => "Chromium",
            Engine::Firefox => "Firefox",
        })
    }
}

/// A running chromedriver on `127.0.0.1:<free port>`. Dropping it kills chromedriver and every browser
/// it started.
pub struct Chromedriver {
    driver: DriverProcess,
}

impl Chromedriver {
    /// Starts `/usr/bin/chromedriver` on a free loopback port and waits until it answers.
    /// Its log goes to `target/e2e-artifacts/chromedriver.log`.
    pub async fn start() -> Result<Chromedriver> {
        Chromedriver::start_with_home(None).await
    }

    /// Like [`Chromedriver::start`], with `HOME` set for chromedriver and the browsers it starts:
    /// Chromium reads the user's certificate authorities from `$HOME/.pki/nssdb`
    /// ([`crate::tls::TestCa::nss_home`]).
    pub async fn start_with_home(home: Option<&Path>) -> Result<Chromedriver> {
        if !Path::new(CHROMEDRIVER).exists() || !Path::new(CHROMIUM).exists() {
            return Err(err(format!(
                "{CHROMEDRIVER} or {CHROMIUM} is missing: install the Debian packages `chromium` and \
                 `chromium-driver` (scripts/test does)"
            )));
        }
        let args = |port| vec![format!("--port={port}"), "--allowed-ips=127.0.0.1".to_owned()];
        let env: Vec<(&str, &Path)> = home.map(|h| ("HOME", h)).into_iter().collect();
        let driver =
            DriverProcess::start("chromedriver", Path::new(CHROMEDRIVER), args, "chromedriver.log", &env).await?;
        Ok(Chromedriver { driver })
    }

    /// The WebDriver endpoint, e.g. `http://127.0.0.1:9515`.
    pub fn url(&self) -> &str {
        &self.driver.url
    }

    /// chromedriver's log file.
    pub fn log_path(&self) -> &Path {
        &self.driver.log
    }

    /// Starts a new Chromium (fresh profile) and opens `url` in it. `label` names it in messages and
    /// artifacts (e.g. the participant's id).
    pub async fn open(&self, label: &str, url: &str) -> Result<Browser> {
        let browser = self.launch(label).await?;
        browser.goto(url).await?;
        Ok(browser)
    }

    /// Like [`Chromedriver::open`], with extra Chromium flags (e.g. a fake camera file).
    pub async fn open_with(&self, label: &str, url: &str, extra: &[String]) -> Result<Browser> {
        let browser = self.launch_with(label, extra).await?;
        browser.goto(url).await?;
        Ok(browser)
    }

    /// Starts a new Chromium (fresh profile) on `about:blank`.
    pub async fn launch(&self, label: &str) -> Result<Browser> {
        self.launch_with(label, &[]).await
    }

    async fn launch_with(&self, label: &str, extra: &[String]) -> Result<Browser> {
        let profile = tempfile::Builder::new().prefix(&format!("sportello-chromium-{label}-")).tempdir()?;
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|s| s.to_string()).collect();
        args.extend(extra.iter().cloned());
        args.push(format!("--user-data-dir={}", profile.path().display()));
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), json!("chrome"));
        caps.insert("goog:chromeOptions".into(), json!({ "binary": CHROMIUM, "args": args }));
        self.driver.session(Engine::Chromium, label, caps, profile).await
    }

    /// Kills chromedriver and everything it started. Also done on drop.
    pub fn kill(&mut self) {
        self.driver.kill();
    }
}

/// Firefox ESR through geckodriver. geckodriver serves one session at a time, so each
/// [`Browser`] gets a geckodriver of its own (on its own free port, in its own process group); the
/// browser owns it, and dropping the browser — or closing it — kills that geckodriver and the
/// Firefox processes it started. Logs: `target/e2e-artifacts/geckodriver-<label>.log`.
pub struct Geckodriver {
    program: PathBuf,
    /// Environment variables for the geckodrivers it starts and so their Firefoxes (see
    /// [`Geckodriver::with_env`]).
    env: Vec<(String, PathBuf)>,
}

impl Geckodriver {
    /// Finds `geckodriver` (on `PATH`, else in `~/.cargo/bin`, where `cargo install geckodriver`
    /// puts it) and `/usr/bin/firefox-esr`.
    pub fn find() -> Result<Geckodriver> {
        if !Path::new(FIREFOX).exists() {
            return Err(err(format!(
                "{FIREFOX} is missing: install the Debian package `firefox-esr` (scripts/test does)"
            )));
        }
        let on_path = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).map(|d| d.join("geckodriver")).collect::<Vec<_>>())
            .unwrap_or_default();
        let cargo_home = std::env::var_os("CARGO_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")));
        let program =
            on_path.into_iter().chain(cargo_home.map(|c| c.join("bin/geckodriver"))).find(|p| p.is_file()).ok_or_else(
                || {
                    err("geckodriver is missing: `cargo install --locked geckodriver` (scripts/test does), \
                     which puts it in ~/.cargo/bin")
                },
            )?;
        Ok(Geckodriver { program, env: Vec::new() })
    }

    /// The same, with `name=value` in the environment of every Firefox it starts: e.g. `DISPLAY` of
    /// an Xvfb server, where a headless Firefox finds a screen to share (it has no fake one). Set on
    /// geckodriver, whose Firefox inherits it (geckodriver applies `moz:firefoxOptions.env` on
    /// Android only).
    pub fn with_env(mut self, name: &str, value: &str) -> Geckodriver {
        self.env.push((name.to_owned(), PathBuf::from(value)));
        self
    }

    /// The geckodriver binary in use.
    pub fn program(&self) -> &Path {
        &self.program
    }

    /// Starts a new Firefox (fresh profile, its own geckodriver) and opens `url` in it.
    pub async fn open(&self, label: &str, url: &str) -> Result<Browser> {
        let browser = self.launch(label).await?;
        browser.goto(url).await?;
        Ok(browser)
    }

    /// Starts a new Firefox (fresh profile, its own geckodriver) on `about:blank`.
    pub async fn launch(&self, label: &str) -> Result<Browser> {
        self.launch_inner(label, false).await
    }

    /// Like [`Geckodriver::launch`], with WebDriver BiDi on as well: the session's websocket is
    /// `client().capabilities()["webSocketUrl"]`. For what classic WebDriver cannot do, e.g.
    /// `browsingContext.setViewport` — a headless Firefox window is never narrower than 500 CSS
    /// pixels, a phone's viewport is.
    pub async fn launch_with_bidi(&self, label: &str) -> Result<Browser> {
        self.launch_inner(label, true).await
    }

    async fn launch_inner(&self, label: &str, bidi: bool) -> Result<Browser> {
        let args = |port: u16| -> Vec<String> {
            // The BiDi websocket port defaults to 9222 for every geckodriver: give each its own.
            let ws = free_port().map(|p| p.to_string()).unwrap_or_else(|_| "0".into());
            vec![
                "--host=127.0.0.1".into(),
                format!("--port={port}"),
                format!("--websocket-port={ws}"),
                "--log=info".into(),
            ]
        };
        let env: Vec<(&str, &Path)> = self.env.iter().map(|(k, v)| (k.as_str(), v.as_path())).collect();
        let driver =
            DriverProcess::start("geckodriver", &self.program, args, &format!("geckodriver-{label}.log"), &env).await?;
        let profile = tempfile::Builder::new().prefix(&format!("sportello-firefox-{label}-")).tempdir()?;
        let prefs = firefox_prefs();
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), json!("firefox"));
        caps.insert(
            "moz:firefoxOptions".into(),
            json!({
                "binary": FIREFOX,
                "args": ["-headless", "--profile", profile.path()],
                "prefs": prefs,
            }),
        );
        if bidi {
            caps.insert("webSocketUrl".into(), json!(true));
        }
        let mut browser = driver.session(Engine::Firefox, label, caps, profile).await?;
        browser.driver = Some(driver);
        // The window of Chromium's `--window-size` (headless Firefox ignores that argument).
        browser.client().set_window_size(1280, 800).await.map_err(|e| browser.fail("set the window size".into(), e))?;
        Ok(browser)
    }
}

/// All processes whose parent chain leads to `root` (not `root` itself), from `/proc`.
fn descendants(root: libc::pid_t) -> Vec<libc::pid_t> {
    let mut parent_of = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<libc::pid_t>() else { continue };
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
            // "pid (comm) state ppid ..." — comm may contain spaces and parentheses: cut at the last ')'.
            let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else { continue };
            let ppid = rest.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
            parent_of.push((pid, ppid));
        }
    }
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let p = found[i];
        for &(child, ppid) in &parent_of {
            if ppid == p && !found.contains(&child) {
                found.push(child);
            }
        }
        i += 1;
    }
    found.remove(0);
    found
}

/// A free TCP port on 127.0.0.1 (bound, then released).
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A minimal blocking HTTP/1.1 GET: returns what arrived (headers and body) once the response is
/// complete, the peer closed, or 2 s passed (chromedriver may keep the connection open).
fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500))?;
    s.set_read_timeout(Some(Duration::from_millis(500)))?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")?;
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                // Good enough for /status: one JSON object, complete when its braces balance.
                if let Some(body) = out.windows(4).position(|w| w == b"\r\n\r\n").map(|i| &out[i + 4..]) {
                    let depth = body.iter().fold(0i32, |d, &c| d + (c == b'{') as i32 - (c == b'}') as i32);
                    if !body.is_empty() && depth == 0 {
                        break;
                    }
                }
            }
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// One browser session (Chromium or Firefox): one participant. The same helpers for both engines.
pub struct Browser {
    client: Option<Client>,
    label: String,
    engine: Engine,
    /// Firefox: the geckodriver serving only this session (killed, with its Firefox, on drop).
    /// Chromium: `None`, its chromedriver is shared.
    driver: Option<DriverProcess>,
    // Dropped last: the profile dir goes once the browser using it is dead.
    _profile: tempfile::TempDir,
}

impl Browser {
    /// The label given at [`Chromedriver::open`] or [`Geckodriver::open`].
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Chromium or Firefox.
    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// Where this browser's driver logs (Firefox's own geckodriver; `None` for Chromium, see
    /// [`Chromedriver::log_path`]).
    pub fn driver_log(&self) -> Option<&Path> {
        self.driver.as_ref().map(|d| d.log.as_path())
    }

    /// The WebDriver client, for anything the helpers do not cover.
    pub fn client(&self) -> &Client {
        self.client.as_ref().expect("browser already closed")
    }

    /// Navigates to `url`.
    pub async fn goto(&self, url: &str) -> Result<()> {
        self.client().goto(url).await.map_err(|e| self.fail(format!("cannot open {url}"), e))
    }

    /// Evaluates the JavaScript expression `expr` and deserializes its value.
    pub async fn eval<T: DeserializeOwned>(&self, expr: &str) -> Result<T> {
        let script = format!("return ({expr});");
        let value = self.client().execute(&script, vec![]).await.map_err(|e| self.fail(format!("eval `{expr}`"), e))?;
        serde_json::from_value(value.clone())
            .map_err(|e| err(format!("[{}] eval `{expr}`: unexpected value {value}: {e}", self.label)))
    }

    /// Runs a JavaScript statement list (no value).
    pub async fn exec(&self, script: &str) -> Result<()> {
        self.client().execute(script, vec![]).await.map_err(|e| self.fail(format!("exec `{script}`"), e))?;
        Ok(())
    }

    /// Evaluates `expr`, which may be a promise (e.g. `navigator.mediaDevices.getUserMedia(..)
    /// .then(..)` or `(async () => {...})()`), waits for it and deserializes its value. A rejected
    /// promise or a thrown exception becomes an `Err` with the JavaScript message and stack.
    pub async fn eval_async<T: DeserializeOwned>(&self, expr: &str) -> Result<T> {
        let script = format!(
            "const done = arguments[arguments.length - 1];\n\
             Promise.resolve().then(() => ({expr})).then(\n\
               v => done({{ ok: v === undefined ? null : v }}),\n\
               e => done({{ err: String((e && e.stack) || e) }}));"
        );
        let value = self
            .client()
            .execute_async(&script, vec![])
            .await
            .map_err(|e| self.fail(format!("eval_async `{expr}`"), e))?;
        if let Some(e) = value.get("err") {
            return Err(err(format!("[{}] `{expr}` threw: {}", self.label, e.as_str().unwrap_or_default())));
        }
        let v = value.get("ok").cloned().unwrap_or(Value::Null);
        serde_json::from_value(v.clone())
            .map_err(|e| err(format!("[{}] eval_async `{expr}`: unexpected value {v}: {e}", self.label)))
    }

    /// Polls the JavaScript condition `cond` (an expression or a promise; truthy = done) every
    /// [`POLL_INTERVAL`] until it holds or `timeout` passes. Exceptions count as "not yet"; the last
    /// one is reported on timeout.
    pub async fn wait_for(&self, cond: &str, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let expr = format!("Promise.resolve().then(() => ({cond})).then(v => !!v)");
        let mut last;
        loop {
            match self.eval_async::<bool>(&expr).await {
                Ok(true) => return Ok(()),
                Ok(false) => last = "condition was false".into(),
                Err(e) => last = e.to_string(),
            }
            if Instant::now() >= deadline {
                return Err(err(format!(
                    "[{}] timed out after {:.1} s waiting for `{cond}` ({last})",
                    self.label,
                    timeout.as_secs_f64()
                )));
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Clicks the element matching `css`, waiting (up to [`CLICK_TIMEOUT`]) for it to exist, be enabled
    /// and be interactable.
    pub async fn click(&self, css: &str) -> Result<()> {
        let sel = serde_json::to_string(css)?;
        self.wait_for(&format!("(e => !!e && !e.disabled)(document.querySelector({sel}))"), CLICK_TIMEOUT).await?;
        let deadline = Instant::now() + CLICK_TIMEOUT;
        loop {
            let attempt = async { self.client().find(Locator::Css(css)).await?.click().await };
            match attempt.await {
                Ok(()) => return Ok(()),
                // Not interactable yet (e.g. covered while the layout settles): retry.
                Err(_) if Instant::now() < deadline => tokio::time::sleep(POLL_INTERVAL).await,
                Err(e) => return Err(self.fail(format!("click `{css}`"), e)),
            }
        }
    }

    /// Types `text` into the input matching `css` (after clearing it), as a user would, waiting for
    /// it like [`click`](Self::click) does. For a file input, `text` is the file's path.
    pub async fn fill(&self, css: &str, text: &str) -> Result<()> {
        let sel = serde_json::to_string(css)?;
        self.wait_for(&format!("(e => !!e && !e.disabled)(document.querySelector({sel}))"), CLICK_TIMEOUT).await?;
        let element = self.client().find(Locator::Css(css)).await.map_err(|e| self.fail(format!("find `{css}`"), e))?;
        let is_file: bool = self.eval(&format!("document.querySelector({sel}).type === 'file'")).await?;
        if !is_file {
            element.clear().await.map_err(|e| self.fail(format!("clear `{css}`"), e))?;
        }
        element.send_keys(text).await.map_err(|e| self.fail(format!("type into `{css}`"), e))
    }

    /// Switches to the most recently opened window/tab (e.g. after a link with `target=_blank`).
    pub async fn switch_to_newest_window(&self) -> Result<()> {
        let windows = self.client().windows().await.map_err(|e| self.fail("list windows".into(), e))?;
        let newest = windows.last().cloned().ok_or_else(|| err(format!("[{}] no window", self.label)))?;
        self.client().switch_to_window(newest).await.map_err(|e| self.fail("switch window".into(), e))
    }

    /// Saves a PNG screenshot of the page to `path`.
    pub async fn screenshot(&self, path: &Path) -> Result<()> {
        let png = self.client().screenshot().await.map_err(|e| self.fail("screenshot".into(), e))?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, png)?;
        Ok(())
    }

    /// Ends the WebDriver session (the browser quits). Dropping a `Browser` without closing it leaves
    /// a Chromium to [`Chromedriver`]'s drop; a Firefox dies with the browser's own geckodriver.
    pub async fn close(mut self) -> Result<()> {
        let closed = match self.client.take() {
            Some(client) => client.close().await.map_err(|e| err(format!("[{}] close: {e}", self.label))),
            None => Ok(()),
        };
        // Firefox: its geckodriver (and anything left of Firefox) goes now, not at the drop.
        if let Some(mut driver) = self.driver.take() {
            driver.kill();
        }
        closed
    }

    fn fail(&self, what: String, e: fantoccini::error::CmdError) -> Error {
        err(format!("[{}] {what}: {e}", self.label))
    }
}

/// Polls an async probe until it yields `Some`, or fails after `timeout` with `what` and the last
/// probe error. For conditions that span several browsers or the server.
pub async fn poll_until<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>>>,
{
    let deadline = Instant::now() + timeout;
    let mut last = String::new();
    loop {
        match probe().await {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last = format!(" (last error: {e})"),
        }
        if Instant::now() >= deadline {
            return Err(err(format!("timed out after {:.1} s waiting for {what}{last}", timeout.as_secs_f64())));
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// A tiny HTTP server on 127.0.0.1 that answers every GET with one HTML page (a secure context for
/// `getUserMedia`, unlike `about:blank` or `data:`). Stops when dropped.
pub struct StaticPage {
    url: String,
    task: tokio::task::JoinHandle<()>,
}

impl StaticPage {
    pub async fn serve(html: &'static str) -> Result<StaticPage> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/", listener.local_addr()?);
        let task = tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            while let Ok((mut sock, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 8192];
                    let mut got = 0;
                    // Read the request head (we do not care what it asks for).
                    while got < buf.len() {
                        match sock.read(&mut buf[got..]).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => got += n,
                        }
                        if buf[..got].windows(4).any(|w| w == b"\r\n\r\n") {
                            break;
                        }
                    }
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n\
                         Cache-Control: no-store\r\nConnection: close\r\n\r\n",
                        html.len()
                    );
                    let _ = sock.write_all(head.as_bytes()).await;
                    let _ = sock.write_all(html.as_bytes()).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        Ok(StaticPage { url, task })
    }

    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for StaticPage {
    fn drop(&mut self) {
        self.task.abort();
    }
}
