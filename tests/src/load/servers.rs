//! The server under test, started as a separate process pinned to its own CPU (`taskset`): a
//! Sportello binary, or Janus with a loopback-only configuration written into a temporary directory.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sportello_backoffice::token::TokenKey;

use super::err;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Sportello,
    Janus,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Sportello => "Sportello",
            Kind::Janus => "Janus",
        }
    }
}

pub struct Server {
    pub kind: Kind,
    pub pid: u32,
    /// The HTTP address: Sportello's pages and `/ws`, or Janus's JSON API.
    pub http: SocketAddr,
    /// Sportello only: the key its tokens are signed with (created in its data dir before it starts).
    pub tokens: Option<TokenKey>,
    /// The address the load clients bind their UDP sockets to: 127.0.0.1 for Sportello, the
    /// bridge's [`JANUS_ADDR`] for Janus (see [`janus_interface`] for why).
    pub client_ip: IpAddr,
    /// Sportello with a council session seeded (`council-whep`).
    pub council: Option<Council>,
    /// Sportello's one media (UDP) address.
    pub media: Option<SocketAddr>,
    /// Sportello's Prometheus listener (docs/metrics.md): the engine's busy time and queue drops.
    pub metrics: Option<SocketAddr>,
    /// `--edge`: a second node of the same cluster that serves the WHEP players as an edge of this
    /// one (the council's origin); the figures are its own.
    pub edge: Option<Box<Server>>,
    child: Child,
    _dir: tempfile::TempDir,
    /// `--edge`: the cluster's NATS, stopped with the origin.
    _nats: Option<sportello_cluster::testing::TempNats>,
}

fn free_tcp_port() -> Result<u16, String> {
    Ok(TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_err(err("finding a free port"))?.port())
}

fn free_udp_port() -> Result<u16, String> {
    Ok(UdpSocket::bind("127.0.0.1:0").and_then(|s| s.local_addr()).map_err(err("finding a free port"))?.port())
}

/// A council session seeded into Sportello's database before it starts: its chair and members
/// (staff users; `user-<id>` is their identity in `council-<session>`, docs/council.md).
pub struct Council {
    pub session: String,
    /// The chair first, then the councillors.
    pub users: Vec<String>,
}

/// Creates `members` staff users (the first the chair) and a session called for now, in the
/// database at `url`; closed again before the server opens it.
async fn seed_council(url: &str, members: usize) -> Result<Council, String> {
    use sportello_store::{CouncilBody, NewCouncilSession, NewUser, StaffRole, Store};
    let store = Store::connect(url).await.map_err(err("opening the server's database"))?;
    let now = sportello_backoffice::token::unix_now() as i64;
    let mut users = Vec::new();
    for i in 0..members.max(1) {
        let role = if i == 0 { StaffRole::Chair } else { StaffRole::Councillor };
        let new = NewUser { email: format!("member{i}@load.example"), display_name: format!("member{i}"), role };
        users.push(store.create_user(&new, now).await.map_err(err("creating a council member"))?.id);
    }
    let new = NewCouncilSession {
        title: "Load test session".into(),
        body: CouncilBody::Consiglio,
        scheduled_at: now,
        chair_id: users[0].clone(),
        quorum: "majority".into(),
    };
    let session = store.create_council_session(&new, now).await.map_err(err("creating the council session"))?.id;
    store.set_council_members(&session, &users).await.map_err(err("adding the council members"))?;
    store.pool().close().await;
    Ok(Council { session, users })
}

impl Server {
    /// `sportello run` on fresh ports and a fresh data directory, pinned to `cpu` (a `taskset`
    /// CPU list: "0", or "0,1" to let its threads use both cores of this machine).
    pub fn sportello(bin: &Path, cpu: &str) -> Result<Server, String> {
        let dir = tempfile::tempdir().map_err(err("creating a data directory"))?;
        Self::start_sportello(bin, cpu, dir, None, &[])
    }

    /// As [`Server::sportello`], with a council session of `members` seeded (the first the chair).
    pub async fn sportello_council(bin: &Path, cpu: &str, members: usize) -> Result<Server, String> {
        let dir = tempfile::tempdir().map_err(err("creating a data directory"))?;
        let council = seed_council(&format!("sqlite:{}", dir.path().join("sportello.db").display()), members).await?;
        Self::start_sportello(bin, cpu, dir, Some(council), &[])
    }

    /// As [`Server::sportello_council`], as the origin node of a cluster (a throwaway PostgreSQL
    /// and NATS) whose second node, its [`Server::edge`], serves the WHEP players; both pinned to
    /// `cpu`.
    pub async fn sportello_council_edge(bin: &Path, cpu: &str, members: usize) -> Result<Server, String> {
        let db = tokio::task::spawn_blocking(sportello_store::testing::shared_postgres_database)
            .await
            .map_err(err("starting PostgreSQL"))?
            .map_err(err("starting PostgreSQL"))?;
        let nats = sportello_cluster::testing::TempNats::start().map_err(err("starting nats-server"))?;
        let council = seed_council(&db, members).await?;
        let (origin_dir, edge_dir) = (tempfile::tempdir(), tempfile::tempdir());
        let (origin_dir, edge_dir) = (
            origin_dir.map_err(err("creating a data directory"))?,
            edge_dir.map_err(err("creating a data directory"))?,
        );
        // One signing key for the cluster.
        TokenKey::load_or_create(origin_dir.path()).map_err(err("creating the token key"))?;
        std::fs::copy(origin_dir.path().join("jwt.key"), edge_dir.path().join("jwt.key"))
            .map_err(err("sharing the token key"))?;
        let node = |id: &str| -> Vec<String> {
            ["--database-url", &db, "--node-id", id, "--nats-url", &nats.url()].iter().map(|s| s.to_string()).collect()
        };
        let edge = Self::start_sportello(bin, cpu, edge_dir, None, &node("n2"))?;
        let mut origin = Self::start_sportello(bin, cpu, origin_dir, Some(council), &node("n1"))?;
        origin.edge = Some(Box::new(edge));
        origin._nats = Some(nats);
        // Nodes judge each other (and so place rooms) after a couple of seconds of their own health.
        tokio::time::sleep(Duration::from_millis(2500)).await;
        Ok(origin)
    }

    fn start_sportello(
        bin: &Path,
        cpu: &str,
        dir: tempfile::TempDir,
        council: Option<Council>,
        extra: &[String],
    ) -> Result<Server, String> {
        let tokens = TokenKey::load_or_create(dir.path()).map_err(err("creating the token key"))?;
        let http = SocketAddr::from(([127, 0, 0, 1], free_tcp_port()?));
        let media = SocketAddr::from(([127, 0, 0, 1], free_udp_port()?));
        let metrics = SocketAddr::from(([127, 0, 0, 1], free_tcp_port()?));
        let log = std::fs::File::create(dir.path().join("server.log")).map_err(err("creating the server log"))?;
        let child = Command::new("taskset")
            .arg("-c")
            .arg(cpu)
            .arg(bin)
            .args(["--listen", &http.to_string(), "--media-bind", &media.to_string()])
            .arg("--data-dir")
            .arg(dir.path())
            .args(["--max-participants", "5000", "--reconnect-grace", "1s"])
            .args(extra)
            .arg("run")
            .env("RUST_LOG", "warn")
            // Every synthetic client comes from loopback and they all connect at once.
            .env("SPORTELLO_WS_UNJOINED_PER_IP", "100000")
            // WHEP players too (council-whep): the per-IP rate (60 a minute) and the cap (1,000)
            // are for the public behind one address each, not for one load tool.
            .env("SPORTELLO_LIVE_VIEWERS_PER_IP_MINUTE", "1000000")
            .env("SPORTELLO_MAX_LIVE_VIEWERS", "100000")
            .env("SPORTELLO_METRICS_BIND", metrics.to_string())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(err("starting sportello (is it built? `cargo build --release -p sportello-server`)"))?;
        let pid = child.id();
        let mut server = Server {
            kind: Kind::Sportello,
            pid,
            http,
            tokens: Some(tokens),
            client_ip: Ipv4Addr::LOCALHOST.into(),
            council,
            metrics: Some(metrics),
            media: Some(media),
            edge: None,
            child,
            _dir: dir,
            _nats: None,
        };
        server.wait_listening()?;
        Ok(server)
    }

    /// Janus 1.1.2 with only the HTTP transport (on 127.0.0.1) and the VideoRoom plugin, gathering
    /// candidates on `lo` only, no STUN, pinned to `cpu`.
    pub fn janus(cpu: &str) -> Result<Server, String> {
        janus_interface()?;
        let dir = tempfile::tempdir().map_err(err("creating a config directory"))?;
        let port = free_tcp_port()?;
        let http = SocketAddr::from(([127, 0, 0, 1], port));
        let lib = "/usr/lib/x86_64-linux-gnu/janus";
        let cfg = dir.path();
        // `LOAD_JANUS_DEBUG=1`: libnice's own debug and Janus's verbose level in the log (ICE diagnosis).
        let verbose = std::env::var_os("LOAD_JANUS_DEBUG").is_some();
        let (debug_level, nice_debug) = if verbose { (5, "true") } else { (2, "false") };
        let ice_lite = std::env::var("LOAD_JANUS_ICE_LITE").unwrap_or_else(|_| "false".into());
        let general = format!(
            "general: {{\n  configs_folder = \"{c}\"\n  plugins_folder = \"{lib}/plugins\"\n  \
             transports_folder = \"{lib}/transports\"\n  events_folder = \"{lib}/events\"\n  \
             loggers_folder = \"{lib}/loggers\"\n  debug_level = {debug_level}\n  log_to_stdout = true\n  \
             protected_folders = []\n}}\n\
             media: {{\n  ipv6 = false\n  rtp_port_range = \"20000-60000\"\n}}\n\
             nat: {{\n  ice_enforce_list = \"{JANUS_IF}\"\n  ice_lite = {ice_lite}\n  nice_debug = {nice_debug}\n  full_trickle = false\n}}\n\
             plugins: {{\n  disable = \"libjanus_audiobridge.so,libjanus_duktape.so,libjanus_echotest.so,\
             libjanus_lua.so,libjanus_nosip.so,libjanus_recordplay.so,libjanus_sip.so,libjanus_streaming.so,\
             libjanus_textroom.so,libjanus_videocall.so,libjanus_voicemail.so\"\n}}\n\
             transports: {{\n  disable = \"libjanus_mqtt.so,libjanus_nanomsg.so,libjanus_pfunix.so,\
             libjanus_rabbitmq.so,libjanus_websockets.so\"\n}}\n\
             loggers: {{\n  disable = \"libjanus_jsonlog.so\"\n}}\n\
             events: {{\n  broadcast = false\n}}\n",
            c = cfg.display()
        );
        let files = [
            ("janus.jcfg", general),
            (
                "janus.transport.http.jcfg",
                format!(
                    "general: {{\n  json = \"plain\"\n  base_path = \"/janus\"\n  http = true\n  port = {port}\n  \
                     ip = \"127.0.0.1\"\n  https = false\n}}\nadmin: {{\n  admin_http = false\n  admin_https = false\n}}\n"
                ),
            ),
            ("janus.plugin.videoroom.jcfg", "general: {\n}\n".to_string()),
        ];
        for (name, text) in files {
            std::fs::write(cfg.join(name), text).map_err(err("writing the Janus configuration"))?;
        }
        let log = std::fs::File::create(cfg.join("janus.log")).map_err(err("creating the Janus log"))?;
        let child = Command::new("taskset")
            .arg("-c")
            .arg(cpu)
            .arg("janus")
            .arg("-F")
            .arg(cfg)
            .arg("-C")
            .arg(cfg.join("janus.jcfg"))
            .stdout(log.try_clone().map_err(err("duplicating the log"))?)
            .stderr(log)
            .spawn()
            .map_err(err("starting janus (Debian package `janus`)"))?;
        let pid = child.id();
        let mut server = Server {
            kind: Kind::Janus,
            pid,
            http,
            tokens: None,
            client_ip: JANUS_ADDR.into(),
            council: None,
            metrics: None,
            media: None,
            edge: None,
            child,
            _dir: dir,
            _nats: None,
        };
        server.wait_listening()?;
        Ok(server)
    }

    fn wait_listening(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("{} exited at start ({status}); see {}", self.kind.name(), self.log_path()));
            }
            if TcpStream::connect(self.http).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!("{} did not listen on {} within 20 s", self.kind.name(), self.http))
    }

    /// Sportello's counters now: the engine's busy seconds and its queue drops (None for Janus,
    /// or when the scrape fails).
    pub async fn engine_counters(&self) -> Option<[f64; 2]> {
        let r = super::whep::request(self.metrics?, "GET", "/metrics", None).await.ok()?;
        let sum = |name: &str| -> Option<f64> {
            let values: Vec<f64> = r
                .body
                .lines()
                .filter(|l| l.strip_prefix(name).is_some_and(|rest| rest.starts_with([' ', '{'])))
                .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
                .collect();
            (!values.is_empty()).then(|| values.iter().sum())
        };
        Some([sum("sportello_sfu_engine_busy_seconds_total")?, sum("sportello_sfu_queue_dropped_packets_total")?])
    }

    pub fn log_path(&self) -> String {
        let name = if self.kind == Kind::Janus { "janus.log" } else { "server.log" };
        self._dir.path().join(name).display().to_string()
    }

    /// The last lines of its log, for error reports.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }
}

/// Why Janus gets an interface of its own, and why our clients bind to its address too:
///
/// 1. libnice (Janus's ICE) never gathers candidates on an interface flagged `IFF_LOOPBACK`, so inside
///    the namespace Janus gets a port-less bridge `sjanus0` carrying only 127.0.0.2/32 (no IPv6
///    link-local). Linux delivers traffic to a local address through `lo`; the bridge has no ports,
///    so nothing can leave through it — the run stays loopback-only.
/// 2. libnice pins each socket to its interface (`IP_UNICAST_IF` = sjanus0). A datagram from
///    127.0.0.2 to 127.0.0.1 then finds no route *through sjanus0* (127.0.0.1 is local on `lo`), the
///    kernel assumes "on link" and refuses a loopback source on a non-loopback device: every
///    `sendmsg` fails with `EINVAL` (seen with strace), Janus never answers a binding request, and
///    the session ends in "ICE failed". Bound to 127.0.0.2 as well, our clients are a local address
///    *of sjanus0*, the lookup pinned to it succeeds (a local route, delivered through `lo`) and ICE
///    completes.
///
/// Idempotent.
const JANUS_IF: &str = "sjanus0";
const JANUS_ADDR: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

fn janus_interface() -> Result<(), String> {
    if !crate::netns::in_namespace() {
        return Err("refusing to add an interface outside the load tool's network namespace".into());
    }
    if crate::netns::interfaces().map_err(err("listing interfaces"))?.iter().any(|i| i == JANUS_IF) {
        return Ok(());
    }
    for args in [
        vec!["link", "add", JANUS_IF, "type", "bridge"],
        vec!["link", "set", JANUS_IF, "addrgenmode", "none"],
        vec!["link", "set", JANUS_IF, "up"],
        vec!["addr", "add", "127.0.0.2/32", "dev", JANUS_IF],
    ] {
        let status = Command::new("ip").args(&args).status().map_err(err("running ip"))?;
        if !status.success() {
            return Err(format!("`ip {}` failed ({status})", args.join(" ")));
        }
    }
    Ok(())
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // `LOAD_KEEP_LOG=DIR`: keep the server's log (the temporary directory goes with us).
        if let Some(keep) = std::env::var_os("LOAD_KEEP_LOG") {
            let name = format!("{}-{}.log", self.kind.name().to_lowercase(), self.pid);
            let _ = std::fs::copy(self.log_path(), Path::new(&keep).join(name));
        }
    }
}
