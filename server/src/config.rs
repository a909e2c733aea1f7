//! Configuration, layered: defaults < TOML file < `SPORTELLO_*` environment < command-line flags.
//!
//! Every layer is a [`Layer`] of optional values; the higher one wins field by field. The file is
//! `--config FILE` (or `SPORTELLO_CONFIG`), else `<data_dir>/sportello.toml` when it exists. The
//! environment is passed in rather than read here so that the layering is testable.

use std::ffi::OsString;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize};

pub use sportello_rooms::protocol::IceServer;
use sportello_rooms::turn::{Turn, TurnSecret};

/// Name of the configuration file looked up in the data directory.
pub const CONFIG_FILE: &str = "sportello.toml";
const ENV_PREFIX: &str = "SPORTELLO_";

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// HTTP listener (pages, `/ws`, `/healthz`).
    pub listen: SocketAddr,
    /// The URL participants open, used in join links (no trailing slash).
    pub public_url: String,
    /// The one UDP port all media uses. Must be a concrete address unless `announced_ip` is set.
    pub media_bind: SocketAddr,
    /// Public address announced in ICE candidates when behind a 1:1 NAT.
    pub announced_ip: Option<IpAddr>,
    /// ICE-TCP listener (passive candidates, for citizens whose network blocks UDP); unset: UDP only.
    pub media_tcp_bind: Option<SocketAddr>,
    /// The ICE-TCP address browsers are told (behind an L4 front the port can differ); unset: the
    /// bound one, with `announced_ip`.
    pub media_tcp_announced: Option<SocketAddr>,
    /// Where `/metrics` (Prometheus text format) is served, on a listener of its own so that it is
    /// never reachable through the public one or its proxy; unset: no metrics at all.
    pub metrics_bind: Option<SocketAddr>,
    /// Holds `jwt.key` and, optionally, `sportello.toml`.
    pub data_dir: PathBuf,
    pub log_format: LogFormat,
    /// How long a participant whose websocket dropped stays in the room, waiting for it to come back.
    pub reconnect_grace: Duration,
    /// Participants per room, viewers included.
    pub max_participants: usize,
    /// STUN/TURN servers handed to browsers in `welcome`.
    pub ice_servers: Vec<IceServer>,
    /// TURN URLs (`turn:…`, `turns:…`) handed to every participant and live viewer with credentials
    /// of their own (coturn `use-auth-secret`).
    pub turn_urls: Vec<String>,
    /// How long a TURN credential stays valid: an appointment and its window, with room to spare.
    pub turn_ttl: Duration,
    /// The secret shared with coturn, when given by file; unset: `<data_dir>/turn.secret`, created
    /// on first start with TURN URLs.
    pub turn_secret_file: Option<PathBuf>,
    /// The secret itself (`SPORTELLO_TURN_SECRET`, or read from the file at start).
    pub turn_secret: Option<TurnSecret>,
    /// `sqlite:PATH` or `postgres://…`; unset: SQLite at `<data_dir>/sportello.db`.
    pub database_url: Option<String>,
    /// This node's name among several (`docs/cluster.md`); set, the node joins the cluster on the
    /// PostgreSQL `database_url` and `nats_url`. Unset: one node, as always.
    pub node_id: Option<String>,
    /// NATS (`nats://host:4222`) between the nodes of a cluster.
    pub nats_url: Option<String>,
    /// Where the other nodes reach this node's HTTP side; unset: `http://<listen>`.
    pub internal_url: Option<String>,
    /// `smtp://`, `smtps://` or `smtp+starttls://user:pass@host:port`; unset: every email is
    /// written as an `.eml` file into `<data_dir>/outbox`.
    pub smtp_url: Option<String>,
    /// The From of every email.
    pub mail_from: String,
    /// How long before an appointment its reminder goes out.
    pub reminder_lead: Duration,
    /// How long documents and chat messages are kept after they are shared.
    pub retention: Duration,
    /// How long council recordings stay published after the session (the stated retention period
    /// the Garante requires for recordings); then the file and its row are deleted.
    pub recording_retention: Duration,
    /// Largest accepted upload, in bytes.
    pub max_upload: usize,
    /// How often officials' calendar subscription URLs are fetched again.
    pub calendar_refresh: Duration,
    /// Connect + total time allowed for one calendar fetch.
    pub calendar_fetch_timeout: Duration,
    /// Whether calendar URLs may point at loopback, private or link-local addresses. Off: an
    /// official's URL must not make the server probe the municipality's internal network.
    pub calendar_allow_private: bool,
    /// Concurrent viewers of council live streams (WHEP), all sessions together; beyond it a new
    /// viewer gets 503 with `Retry-After`.
    pub max_live_viewers: usize,
    /// New live viewers (WHEP sessions) one client IP may open per minute. Behind a reverse proxy
    /// every viewer shares the proxy's address: raise it there.
    pub live_viewers_per_ip_minute: u32,
    /// Pre-join network checks (`GET /api/network-check`, each up to three throwaway connections
    /// to the SFU) one client address may start per minute. Behind a reverse proxy every citizen
    /// shares the proxy's address: raise it there.
    pub network_checks_per_ip_minute: u32,
    /// Websockets one client address may hold open before joining a room (429 beyond). Behind a
    /// reverse proxy every client shares its address: raise it there.
    pub ws_unjoined_per_ip: u32,
    /// ICE-TCP connections one address may hold open (a citizen needs two). Behind an L4 front
    /// every connection has the front's address: raise it there.
    pub media_tcp_per_ip: usize,
    /// Send runs of media datagrams to one destination as one UDP GSO send (Linux ≥ 4.18; off by
    /// itself when the kernel refuses it): fewer system calls per forwarded packet where one viewer
    /// gets several at once. On by default (`SfuConfig::udp_gso` says why it once was not).
    pub media_udp_gso: bool,
    /// Media threads, each forwarding for its share of rooms and viewers on the one UDP port; 0
    /// (the default) runs one per CPU core.
    pub media_threads: usize,
    /// Failed logins one client address may have per 15 minutes before it waits (429); a fifth of
    /// it may be in flight at once. Behind a reverse proxy every client shares its address: raise it.
    pub login_failures_per_ip: u32,
    /// Reverse proxies whose forwarding header is believed (CIDR blocks; empty: none): a request
    /// from one of them counts as coming from the client its header names (`client_addr.rs`).
    pub trusted_proxies: Vec<IpNet>,
    /// The header those proxies write: `X-Forwarded-For` (nginx, Caddy, HAProxy) or `Forwarded`.
    pub forwarded_header: ForwardedHeader,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: "http://127.0.0.1:8080".into(),
            media_bind: SocketAddr::from(([127, 0, 0, 1], 3478)),
            announced_ip: None,
            media_tcp_bind: None,
            media_tcp_announced: None,
            metrics_bind: None,
            data_dir: PathBuf::from("./data"),
            log_format: LogFormat::Text,
            reconnect_grace: Duration::from_secs(15),
            max_participants: 50,
            ice_servers: Vec::new(),
            turn_urls: Vec::new(),
            turn_ttl: Duration::from_secs(12 * 3600),
            turn_secret_file: None,
            turn_secret: None,
            database_url: None,
            node_id: None,
            nats_url: None,
            internal_url: None,
            smtp_url: None,
            mail_from: "Sportello <noreply@localhost>".into(),
            reminder_lead: Duration::from_secs(24 * 3600),
            retention: Duration::from_secs(30 * 86_400),
            recording_retention: Duration::from_secs(365 * 86_400),
            max_upload: 10 * 1024 * 1024,
            calendar_refresh: Duration::from_secs(30 * 60),
            calendar_fetch_timeout: Duration::from_secs(10),
            calendar_allow_private: false,
            max_live_viewers: 1000,
            live_viewers_per_ip_minute: 60,
            network_checks_per_ip_minute: 12,
            ws_unjoined_per_ip: 8,
            media_tcp_per_ip: sportello_sfu::TcpLimits::default().max_per_address,
            media_udp_gso: true,
            media_threads: 0,
            login_failures_per_ip: 20,
            trusted_proxies: Vec::new(),
            forwarded_header: ForwardedHeader::XForwardedFor,
        }
    }
}

impl Config {
    /// The database URL in effect (the default SQLite file under the data dir when unset).
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite:{}", self.data_dir.join("sportello.db").display()),
        }
    }

    /// Where other nodes reach this one (`internal_url`, else `http://<listen>`).
    pub fn internal_url(&self) -> String {
        self.internal_url.clone().unwrap_or_else(|| url_of(self.listen))
    }

    /// This node's name: `node_id`, or `local` for the one node of an installation without one
    /// (the holder of every lease).
    pub fn node_name(&self) -> &str {
        self.node_id.as_deref().unwrap_or("local")
    }

    /// The TURN servers to hand out, once URLs and the secret are known.
    pub fn turn(&self) -> Option<Turn> {
        match (&self.turn_urls[..], &self.turn_secret) {
            ([], _) | (_, None) => None,
            (urls, Some(secret)) => Some(Turn { urls: urls.to_vec(), ttl: self.turn_ttl, secret: secret.clone() }),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("unknown log format {other:?} (text or json)")),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the configuration file {path}: {source}")]
    ReadFile { path: PathBuf, source: std::io::Error },
    #[error("invalid configuration file {path}: {source}")]
    ParseFile { path: PathBuf, source: Box<toml::de::Error> },
    #[error("invalid value of {key}: {reason}")]
    Env { key: String, reason: String },
    #[error(
        "media_bind {0} is a wildcard address: browsers need a concrete address to reach. \
         Bind a concrete address (e.g. the server's LAN IP) or set announced_ip (SPORTELLO_ANNOUNCED_IP) \
         to the public address"
    )]
    WildcardMediaBind(SocketAddr),
    #[error(
        "media_tcp_announced {0} is set but media_tcp_bind is not: ICE-TCP is off unless the SFU \
         listens (set media_tcp_bind, or remove media_tcp_announced)"
    )]
    TcpAnnouncedWithoutBind(SocketAddr),
    #[error("invalid public_url {url:?}: {reason}")]
    PublicUrl { url: String, reason: String },
    #[error("max_participants must be at least 1")]
    NoParticipants,
    #[error("invalid TURN URL {0:?}: it must start with turn: or turns:")]
    TurnUrl(String),
    #[error("cluster: {0}")]
    Cluster(String),
}

/// A trusted proxy block as written in the configuration: `10.0.0.0/8`, `2001:db8::/32`, or one
/// address (`192.0.2.7`, i.e. `/32`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrustedNet(pub IpNet);

impl FromStr for TrustedNet {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        s.parse::<IpNet>()
            .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
            .map(TrustedNet)
            .map_err(|_| format!("{s:?} is not an address or a CIDR block (e.g. 10.0.0.0/8)"))
    }
}

impl<'de> Deserialize<'de> for TrustedNet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// Which forwarding header the trusted proxies write. Only that one is read: a header the proxy
/// does not maintain would pass a client's own value through unchecked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum ForwardedHeader {
    #[serde(rename = "x-forwarded-for")]
    XForwardedFor,
    #[serde(rename = "forwarded")]
    Forwarded,
}

impl FromStr for ForwardedHeader {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "x-forwarded-for" => Ok(ForwardedHeader::XForwardedFor),
            "forwarded" => Ok(ForwardedHeader::Forwarded),
            other => Err(format!("{other:?}: expected x-forwarded-for or forwarded")),
        }
    }
}

/// One layer of configuration: what a source sets, nothing for what it leaves alone.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layer {
    pub listen: Option<SocketAddr>,
    pub public_url: Option<String>,
    pub media_bind: Option<SocketAddr>,
    pub announced_ip: Option<IpAddr>,
    pub media_tcp_bind: Option<SocketAddr>,
    pub media_tcp_announced: Option<SocketAddr>,
    pub metrics_bind: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub log_format: Option<LogFormat>,
    #[serde(default, deserialize_with = "duration_in_file")]
    pub reconnect_grace: Option<Duration>,
    pub max_participants: Option<usize>,
    pub ice_servers: Option<Vec<IceServer>>,
    pub turn_urls: Option<Vec<String>>,
    #[serde(default, deserialize_with = "duration_in_file")]
    pub turn_ttl: Option<Duration>,
    pub turn_secret_file: Option<PathBuf>,
    /// Only from the environment: a secret does not belong in a configuration file.
    #[serde(skip)]
    pub turn_secret: Option<TurnSecret>,
    pub database_url: Option<String>,
    pub node_id: Option<String>,
    pub nats_url: Option<String>,
    pub internal_url: Option<String>,
    pub smtp_url: Option<String>,
    pub mail_from: Option<String>,
    #[serde(default, deserialize_with = "duration_in_file")]
    pub reminder_lead: Option<Duration>,
    #[serde(default, deserialize_with = "duration_in_file")]
    pub retention: Option<Duration>,
    #[serde(default, deserialize_with = "duration_in_file")]
    pub recording_retention: Option<Duration>,
    pub max_upload: Option<usize>,
    #[serde(default, deserialize_with = "duration_in_file")]
    pub calendar_refresh: Option<Duration>,
    #[serde(default, deserialize_with = "duration_in_file")]
    pub calendar_fetch_timeout: Option<Duration>,
    pub calendar_allow_private: Option<bool>,
    pub max_live_viewers: Option<usize>,
    pub live_viewers_per_ip_minute: Option<u32>,
    pub network_checks_per_ip_minute: Option<u32>,
    pub ws_unjoined_per_ip: Option<u32>,
    pub login_failures_per_ip: Option<u32>,
    pub trusted_proxies: Option<Vec<TrustedNet>>,
    pub forwarded_header: Option<ForwardedHeader>,
    pub media_tcp_per_ip: Option<usize>,
    pub media_udp_gso: Option<bool>,
    pub media_threads: Option<usize>,
}

impl Layer {
    /// `self` wins over `lower`, field by field.
    pub fn over(self, lower: Layer) -> Layer {
        Layer {
            listen: self.listen.or(lower.listen),
            public_url: self.public_url.or(lower.public_url),
            media_bind: self.media_bind.or(lower.media_bind),
            announced_ip: self.announced_ip.or(lower.announced_ip),
            media_tcp_bind: self.media_tcp_bind.or(lower.media_tcp_bind),
            media_tcp_announced: self.media_tcp_announced.or(lower.media_tcp_announced),
            metrics_bind: self.metrics_bind.or(lower.metrics_bind),
            data_dir: self.data_dir.or(lower.data_dir),
            log_format: self.log_format.or(lower.log_format),
            reconnect_grace: self.reconnect_grace.or(lower.reconnect_grace),
            max_participants: self.max_participants.or(lower.max_participants),
            ice_servers: self.ice_servers.or(lower.ice_servers),
            turn_urls: self.turn_urls.or(lower.turn_urls),
            turn_ttl: self.turn_ttl.or(lower.turn_ttl),
            turn_secret_file: self.turn_secret_file.or(lower.turn_secret_file),
            turn_secret: self.turn_secret.or(lower.turn_secret),
            database_url: self.database_url.or(lower.database_url),
            node_id: self.node_id.or(lower.node_id),
            nats_url: self.nats_url.or(lower.nats_url),
            internal_url: self.internal_url.or(lower.internal_url),
            smtp_url: self.smtp_url.or(lower.smtp_url),
            mail_from: self.mail_from.or(lower.mail_from),
            reminder_lead: self.reminder_lead.or(lower.reminder_lead),
            retention: self.retention.or(lower.retention),
            recording_retention: self.recording_retention.or(lower.recording_retention),
            max_upload: self.max_upload.or(lower.max_upload),
            calendar_refresh: self.calendar_refresh.or(lower.calendar_refresh),
            calendar_fetch_timeout: self.calendar_fetch_timeout.or(lower.calendar_fetch_timeout),
            calendar_allow_private: self.calendar_allow_private.or(lower.calendar_allow_private),
            max_live_viewers: self.max_live_viewers.or(lower.max_live_viewers),
            live_viewers_per_ip_minute: self.live_viewers_per_ip_minute.or(lower.live_viewers_per_ip_minute),
            network_checks_per_ip_minute: self.network_checks_per_ip_minute.or(lower.network_checks_per_ip_minute),
            ws_unjoined_per_ip: self.ws_unjoined_per_ip.or(lower.ws_unjoined_per_ip),
            media_tcp_per_ip: self.media_tcp_per_ip.or(lower.media_tcp_per_ip),
            media_udp_gso: self.media_udp_gso.or(lower.media_udp_gso),
            media_threads: self.media_threads.or(lower.media_threads),
            login_failures_per_ip: self.login_failures_per_ip.or(lower.login_failures_per_ip),
            trusted_proxies: self.trusted_proxies.or(lower.trusted_proxies),
            forwarded_header: self.forwarded_header.or(lower.forwarded_header),
        }
    }

    fn apply_to(self, base: Config) -> Config {
        let listen = self.listen.unwrap_or(base.listen);
        Config {
            listen,
            // Unset, the public URL follows the listener, so `--listen` alone gives working links.
            public_url: self.public_url.unwrap_or_else(|| url_of(listen)),
            media_bind: self.media_bind.unwrap_or(base.media_bind),
            announced_ip: self.announced_ip.or(base.announced_ip),
            media_tcp_bind: self.media_tcp_bind.or(base.media_tcp_bind),
            media_tcp_announced: self.media_tcp_announced.or(base.media_tcp_announced),
            metrics_bind: self.metrics_bind.or(base.metrics_bind),
            data_dir: self.data_dir.unwrap_or(base.data_dir),
            log_format: self.log_format.unwrap_or(base.log_format),
            reconnect_grace: self.reconnect_grace.unwrap_or(base.reconnect_grace),
            max_participants: self.max_participants.unwrap_or(base.max_participants),
            ice_servers: self.ice_servers.unwrap_or(base.ice_servers),
            turn_urls: self.turn_urls.unwrap_or(base.turn_urls),
            turn_ttl: self.turn_ttl.unwrap_or(base.turn_ttl),
            turn_secret_file: self.turn_secret_file.or(base.turn_secret_file),
            turn_secret: self.turn_secret.or(base.turn_secret),
            database_url: self.database_url.or(base.database_url),
            node_id: self.node_id.or(base.node_id),
            nats_url: self.nats_url.or(base.nats_url),
            internal_url: self.internal_url.or(base.internal_url),
            smtp_url: self.smtp_url.or(base.smtp_url),
            mail_from: self.mail_from.unwrap_or(base.mail_from),
            reminder_lead: self.reminder_lead.unwrap_or(base.reminder_lead),
            retention: self.retention.unwrap_or(base.retention),
            recording_retention: self.recording_retention.unwrap_or(base.recording_retention),
            max_upload: self.max_upload.unwrap_or(base.max_upload),
            calendar_refresh: self.calendar_refresh.unwrap_or(base.calendar_refresh),
            calendar_fetch_timeout: self.calendar_fetch_timeout.unwrap_or(base.calendar_fetch_timeout),
            calendar_allow_private: self.calendar_allow_private.unwrap_or(base.calendar_allow_private),
            max_live_viewers: self.max_live_viewers.unwrap_or(base.max_live_viewers),
            live_viewers_per_ip_minute: self.live_viewers_per_ip_minute.unwrap_or(base.live_viewers_per_ip_minute),
            network_checks_per_ip_minute: self
                .network_checks_per_ip_minute
                .unwrap_or(base.network_checks_per_ip_minute),
            ws_unjoined_per_ip: self.ws_unjoined_per_ip.unwrap_or(base.ws_unjoined_per_ip),
            media_tcp_per_ip: self.media_tcp_per_ip.unwrap_or(base.media_tcp_per_ip),
            media_udp_gso: self.media_udp_gso.unwrap_or(base.media_udp_gso),
            media_threads: self.media_threads.unwrap_or(base.media_threads),
            login_failures_per_ip: self.login_failures_per_ip.unwrap_or(base.login_failures_per_ip),
            trusted_proxies: self
                .trusted_proxies
                .map(|nets| nets.into_iter().map(|n| n.0).collect())
                .unwrap_or(base.trusted_proxies),
            forwarded_header: self.forwarded_header.unwrap_or(base.forwarded_header),
        }
    }

    pub fn from_toml(text: &str) -> Result<Layer, toml::de::Error> {
        toml::from_str(text)
    }

    /// The `SPORTELLO_*` variables among `vars`; also returns `SPORTELLO_CONFIG`. Unknown
    /// `SPORTELLO_*` names are ignored (other tools may share the prefix).
    pub fn from_env(
        vars: impl IntoIterator<Item = (OsString, OsString)>,
    ) -> Result<(Layer, Option<PathBuf>), ConfigError> {
        let mut layer = Layer::default();
        let mut config_file = None;
        for (key, value) in vars {
            let Some(name) = key.to_str().and_then(|k| k.strip_prefix(ENV_PREFIX)) else { continue };
            let key = format!("{ENV_PREFIX}{name}");
            let value =
                value.into_string().map_err(|_| ConfigError::Env { key: key.clone(), reason: "not UTF-8".into() })?;
            let err = |reason: String| ConfigError::Env { key: key.clone(), reason };
            fn parsed<T: FromStr>(v: &str) -> Result<T, String>
            where
                T::Err: fmt::Display,
            {
                v.trim().parse::<T>().map_err(|e| e.to_string())
            }
            match name {
                "CONFIG" => config_file = Some(PathBuf::from(value)),
                "LISTEN" => layer.listen = Some(parsed(&value).map_err(err)?),
                "PUBLIC_URL" => layer.public_url = Some(value),
                "MEDIA_BIND" => layer.media_bind = Some(parsed(&value).map_err(err)?),
                "ANNOUNCED_IP" => layer.announced_ip = Some(parsed(&value).map_err(err)?),
                "MEDIA_TCP_BIND" => layer.media_tcp_bind = Some(parsed(&value).map_err(err)?),
                "MEDIA_TCP_ANNOUNCED" => layer.media_tcp_announced = Some(parsed(&value).map_err(err)?),
                "METRICS_BIND" => layer.metrics_bind = Some(parsed(&value).map_err(err)?),
                "DATA_DIR" => layer.data_dir = Some(PathBuf::from(value)),
                "LOG_FORMAT" => layer.log_format = Some(parsed(&value).map_err(err)?),
                "RECONNECT_GRACE" => layer.reconnect_grace = Some(parse_duration(&value).map_err(err)?),
                "MAX_PARTICIPANTS" => layer.max_participants = Some(parsed(&value).map_err(err)?),
                // A JSON array of RTCIceServer, as in the browser API.
                "ICE_SERVERS" => {
                    layer.ice_servers = Some(serde_json::from_str(&value).map_err(|e| err(e.to_string()))?)
                }
                // Comma-separated.
                "TURN_URLS" => {
                    layer.turn_urls =
                        Some(value.split(',').map(str::trim).filter(|u| !u.is_empty()).map(str::to_owned).collect())
                }
                "TURN_TTL" => layer.turn_ttl = Some(parse_duration(&value).map_err(err)?),
                "TURN_SECRET_FILE" => layer.turn_secret_file = Some(PathBuf::from(value)),
                "TURN_SECRET" => {
                    layer.turn_secret =
                        Some(TurnSecret::new(&value).ok_or_else(|| err("at least 16 characters".into()))?)
                }
                "DATABASE_URL" => layer.database_url = Some(value),
                "NODE_ID" => layer.node_id = Some(value),
                "NATS_URL" => layer.nats_url = Some(value),
                "INTERNAL_URL" => layer.internal_url = Some(value),
                "SMTP_URL" => layer.smtp_url = Some(value),
                "MAIL_FROM" => layer.mail_from = Some(value),
                "REMINDER_LEAD" => layer.reminder_lead = Some(parse_duration(&value).map_err(err)?),
                "RETENTION" => layer.retention = Some(parse_duration(&value).map_err(err)?),
                "RECORDING_RETENTION" => layer.recording_retention = Some(parse_duration(&value).map_err(err)?),
                "MAX_UPLOAD" => layer.max_upload = Some(parsed(&value).map_err(err)?),
                "CALENDAR_REFRESH" => layer.calendar_refresh = Some(parse_duration(&value).map_err(err)?),
                "CALENDAR_FETCH_TIMEOUT" => layer.calendar_fetch_timeout = Some(parse_duration(&value).map_err(err)?),
                "CALENDAR_ALLOW_PRIVATE" => layer.calendar_allow_private = Some(parsed(&value).map_err(err)?),
                "MAX_LIVE_VIEWERS" => layer.max_live_viewers = Some(parsed(&value).map_err(err)?),
                "LIVE_VIEWERS_PER_IP_MINUTE" => layer.live_viewers_per_ip_minute = Some(parsed(&value).map_err(err)?),
                "NETWORK_CHECKS_PER_IP_MINUTE" => {
                    layer.network_checks_per_ip_minute = Some(parsed(&value).map_err(err)?)
                }
                "WS_UNJOINED_PER_IP" => layer.ws_unjoined_per_ip = Some(parsed(&value).map_err(err)?),
                "MEDIA_TCP_PER_IP" => layer.media_tcp_per_ip = Some(parsed(&value).map_err(err)?),
                "MEDIA_UDP_GSO" => layer.media_udp_gso = Some(parsed(&value).map_err(err)?),
                "MEDIA_THREADS" => layer.media_threads = Some(parsed(&value).map_err(err)?),
                "LOGIN_FAILURES_PER_IP" => layer.login_failures_per_ip = Some(parsed(&value).map_err(err)?),
                // Comma-separated CIDR blocks or addresses.
                "TRUSTED_PROXIES" => {
                    layer.trusted_proxies = Some(
                        value
                            .split(',')
                            .map(str::trim)
                            .filter(|n| !n.is_empty())
                            .map(str::parse)
                            .collect::<Result<_, _>>()
                            .map_err(err)?,
                    )
                }
                "FORWARDED_HEADER" => layer.forwarded_header = Some(parsed(&value).map_err(err)?),
                _ => {}
            }
        }
        Ok((layer, config_file))
    }
}

/// Command-line flags for the configuration, shared by every subcommand.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ConfigArgs {
    /// Configuration file (TOML) [env: SPORTELLO_CONFIG] [default: <data-dir>/sportello.toml if present]
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// HTTP listen address [env: SPORTELLO_LISTEN] [default: 127.0.0.1:8080]
    #[arg(long, global = true, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Public URL used in join links [env: SPORTELLO_PUBLIC_URL] [default: http://127.0.0.1:8080]
    #[arg(long, global = true, value_name = "URL")]
    pub public_url: Option<String>,
    /// The one UDP media address [env: SPORTELLO_MEDIA_BIND] [default: 127.0.0.1:3478]
    #[arg(long, global = true, value_name = "ADDR")]
    pub media_bind: Option<SocketAddr>,
    /// Public IP announced to browsers (1:1 NAT) [env: SPORTELLO_ANNOUNCED_IP]
    #[arg(long, global = true, value_name = "IP")]
    pub announced_ip: Option<IpAddr>,
    /// ICE-TCP listener for networks that block UDP [env: SPORTELLO_MEDIA_TCP_BIND] [default: off]
    #[arg(long, global = true, value_name = "ADDR")]
    pub media_tcp_bind: Option<SocketAddr>,
    /// ICE-TCP address announced to browsers (an L4 front's) [env: SPORTELLO_MEDIA_TCP_ANNOUNCED]
    #[arg(long, global = true, value_name = "ADDR")]
    pub media_tcp_announced: Option<SocketAddr>,
    /// Separate listener for Prometheus `/metrics` [env: SPORTELLO_METRICS_BIND] [default: off]
    #[arg(long, global = true, value_name = "ADDR")]
    pub metrics_bind: Option<SocketAddr>,
    /// Data directory (token key, config file) [env: SPORTELLO_DATA_DIR] [default: ./data]
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Log format: text or json [env: SPORTELLO_LOG_FORMAT] [default: text]
    #[arg(long, global = true, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Reconnection grace period, e.g. 15s, 500ms [env: SPORTELLO_RECONNECT_GRACE] [default: 15s]
    #[arg(long, global = true, value_name = "DURATION", value_parser = parse_duration)]
    pub reconnect_grace: Option<Duration>,
    /// Participants per room [env: SPORTELLO_MAX_PARTICIPANTS] [default: 50]
    #[arg(long, global = true, value_name = "N")]
    pub max_participants: Option<usize>,
    /// STUN/TURN URL for browsers, repeatable; credentials go in the file or
    /// SPORTELLO_ICE_SERVERS (JSON array of RTCIceServer)
    #[arg(long = "ice-server", global = true, value_name = "URL")]
    pub ice_servers: Vec<String>,
    /// TURN URL handed out with per-participant credentials, repeatable [env: SPORTELLO_TURN_URLS, comma-separated]
    #[arg(long = "turn-url", global = true, value_name = "URL")]
    pub turn_urls: Vec<String>,
    /// How long a TURN credential is valid [env: SPORTELLO_TURN_TTL] [default: 12h]
    #[arg(long, global = true, value_name = "DURATION", value_parser = parse_duration)]
    pub turn_ttl: Option<Duration>,
    /// File holding the secret shared with coturn [env: SPORTELLO_TURN_SECRET_FILE] [default: <data-dir>/turn.secret]
    #[arg(long, global = true, value_name = "FILE")]
    pub turn_secret_file: Option<PathBuf>,
    /// Database: sqlite:PATH or postgres://… [env: SPORTELLO_DATABASE_URL] [default: sqlite:<data-dir>/sportello.db]
    #[arg(long, global = true, value_name = "URL")]
    pub database_url: Option<String>,
    /// This node's name in a cluster (letters, digits, '-') [env: SPORTELLO_NODE_ID] [default: none: one node]
    #[arg(long, global = true, value_name = "NAME")]
    pub node_id: Option<String>,
    /// NATS between the nodes of a cluster [env: SPORTELLO_NATS_URL]
    #[arg(long, global = true, value_name = "URL")]
    pub nats_url: Option<String>,
    /// Where other nodes reach this node's HTTP side [env: SPORTELLO_INTERNAL_URL] [default: http://<listen>]
    #[arg(long, global = true, value_name = "URL")]
    pub internal_url: Option<String>,
}

impl ConfigArgs {
    fn layer(&self) -> Layer {
        Layer {
            listen: self.listen,
            public_url: self.public_url.clone(),
            media_bind: self.media_bind,
            announced_ip: self.announced_ip,
            media_tcp_bind: self.media_tcp_bind,
            media_tcp_announced: self.media_tcp_announced,
            metrics_bind: self.metrics_bind,
            data_dir: self.data_dir.clone(),
            log_format: self.log_format,
            reconnect_grace: self.reconnect_grace,
            max_participants: self.max_participants,
            ice_servers: (!self.ice_servers.is_empty()).then(|| {
                self.ice_servers
                    .iter()
                    .map(|url| IceServer { urls: vec![url.clone()], username: None, credential: None })
                    .collect()
            }),
            turn_urls: (!self.turn_urls.is_empty()).then(|| self.turn_urls.clone()),
            turn_ttl: self.turn_ttl,
            turn_secret_file: self.turn_secret_file.clone(),
            database_url: self.database_url.clone(),
            node_id: self.node_id.clone(),
            nats_url: self.nats_url.clone(),
            internal_url: self.internal_url.clone(),
            // Credentials and mail settings come from the file or the environment, not the command line.
            ..Layer::default()
        }
    }
}

impl Config {
    /// Resolves the four layers. `env` is normally `std::env::vars_os()`.
    pub fn load(args: &ConfigArgs, env: impl IntoIterator<Item = (OsString, OsString)>) -> Result<Config, ConfigError> {
        let (env_layer, env_file) = Layer::from_env(env)?;
        let top = args.layer().over(env_layer);
        // The file may itself move data_dir, but the file's default location comes from the layers above it.
        let data_dir = top.data_dir.clone().unwrap_or_else(|| Config::default().data_dir);
        let file = match args.config.clone().or(env_file) {
            Some(path) => Some(path),
            None => Some(data_dir.join(CONFIG_FILE)).filter(|p| p.is_file()),
        };
        let file_layer = match file {
            Some(path) => read_file(&path)?,
            None => Layer::default(),
        };
        let config = top.over(file_layer).apply_to(Config::default());
        config.validated()
    }

    /// Checks what would otherwise fail later and obscurely (in a browser, far from the cause).
    pub fn validated(mut self) -> Result<Config, ConfigError> {
        if self.media_bind.ip().is_unspecified() && self.announced_ip.is_none() {
            return Err(ConfigError::WildcardMediaBind(self.media_bind));
        }
        if let (None, Some(announced)) = (self.media_tcp_bind, self.media_tcp_announced) {
            // Advertising a TCP candidate nobody listens on would only cost browsers a timeout.
            return Err(ConfigError::TcpAnnouncedWithoutBind(announced));
        }
        let url = url::Url::parse(&self.public_url)
            .map_err(|e| ConfigError::PublicUrl { url: self.public_url.clone(), reason: e.to_string() })?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(ConfigError::PublicUrl {
                url: self.public_url.clone(),
                reason: "must be an http:// or https:// URL".into(),
            });
        }
        self.public_url = self.public_url.trim_end_matches('/').to_owned();
        if self.max_participants == 0 {
            return Err(ConfigError::NoParticipants);
        }
        if let Some(bad) = self.turn_urls.iter().find(|u| !(u.starts_with("turn:") || u.starts_with("turns:"))) {
            return Err(ConfigError::TurnUrl(bad.clone()));
        }
        if let Some(node) = &self.node_id {
            let name_ok = (1..=40).contains(&node.len())
                && node.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !node.starts_with('-');
            if !name_ok {
                return Err(ConfigError::Cluster(format!(
                    "node_id {node:?} must be 1-40 letters, digits or '-' (it names the node in logs, leases and NATS subjects)"
                )));
            }
            if !self.database_url().starts_with("postgres") {
                return Err(ConfigError::Cluster(
                    "several nodes share one PostgreSQL database: set database_url (SPORTELLO_DATABASE_URL) to postgres://… \
                     or unset node_id to run one node on SQLite"
                        .into(),
                ));
            }
            if self.nats_url.as_deref().is_none_or(|u| !(u.starts_with("nats://") || u.starts_with("tls://"))) {
                return Err(ConfigError::Cluster(
                    "several nodes talk over NATS: set nats_url (SPORTELLO_NATS_URL) to nats://host:4222".into(),
                ));
            }
        }
        if let Some(url) = &self.internal_url
            && !url.starts_with("http://")
            && !url.starts_with("https://")
        {
            return Err(ConfigError::Cluster(format!("internal_url {url:?} must be an http:// or https:// URL")));
        }
        Ok(self)
    }
}

/// `http://<listen>`, with a wildcard address replaced by loopback (reachable from this machine).
fn url_of(listen: SocketAddr) -> String {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::from([127, 0, 0, 1]),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::from([127, 0, 0, 1]),
        ip => ip,
    };
    format!("http://{}", SocketAddr::new(ip, listen.port()))
}

fn read_file(path: &Path) -> Result<Layer, ConfigError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile { path: path.to_owned(), source })?;
    Layer::from_toml(&text).map_err(|source| ConfigError::ParseFile { path: path.to_owned(), source: Box::new(source) })
}

/// In the file a duration is either a string like `"15s"` or a number of seconds.
fn duration_in_file<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Seconds(u64),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Seconds(s) => Ok(Some(Duration::from_secs(s))),
        Raw::Text(t) => parse_duration(&t).map(Some).map_err(serde::de::Error::custom),
    }
}

/// `"300ms"`, `"15s"`, `"10m"`, `"8h"`, `"2d"`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().map_err(|_| format!("invalid duration {text:?} (e.g. 500ms, 15s, 8h)"))?;
    let millis = match unit.trim() {
        "ms" => Some(n),
        "" | "s" => n.checked_mul(1_000),
        "m" | "min" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        "d" => n.checked_mul(86_400_000),
        other => return Err(format!("unknown duration unit {other:?} in {text:?} (ms, s, m, h, d)")),
    };
    millis.map(Duration::from_millis).ok_or_else(|| format!("duration {text:?} is too long"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        pairs.iter().map(|(k, v)| (OsString::from(k), OsString::from(v))).collect()
    }

    fn data_dir_with_file(text: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(CONFIG_FILE), text).unwrap();
        dir
    }

    fn args_in(dir: &Path) -> ConfigArgs {
        ConfigArgs { data_dir: Some(dir.to_owned()), ..ConfigArgs::default() }
    }

    #[test]
    fn defaults() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::load(&args_in(dir.path()), env(&[])).unwrap();
        assert_eq!(config, Config { data_dir: dir.path().to_owned(), ..Config::default() });
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.media_bind.to_string(), "127.0.0.1:3478");
        assert_eq!(config.reconnect_grace, Duration::from_secs(15));
        assert_eq!(config.max_participants, 50);
        assert_eq!(config.max_live_viewers, 1000);
        assert!(config.ice_servers.is_empty());
    }

    #[test]
    fn file_over_defaults_env_over_file_flags_over_env() {
        let dir = data_dir_with_file(
            r#"
            listen = "127.0.0.1:9000"
            public_url = "https://sportello.comune.example/"
            media_bind = "10.0.0.5:3478"
            log_format = "json"
            reconnect_grace = "30s"
            max_participants = 10
            [[ice_servers]]
            urls = "stun:stun.comune.example:3478"
            "#,
        );
        let file_only = Config::load(&args_in(dir.path()), env(&[])).unwrap();
        assert_eq!(file_only.listen.to_string(), "127.0.0.1:9000");
        assert_eq!(file_only.public_url, "https://sportello.comune.example");
        assert_eq!(file_only.log_format, LogFormat::Json);
        assert_eq!(file_only.reconnect_grace, Duration::from_secs(30));
        assert_eq!(file_only.max_participants, 10);
        assert_eq!(file_only.ice_servers[0].urls, vec!["stun:stun.comune.example:3478".to_owned()]);

        let vars = env(&[
            ("SPORTELLO_LISTEN", "127.0.0.1:9100"),
            ("SPORTELLO_MAX_PARTICIPANTS", "20"),
            ("SPORTELLO_RECONNECT_GRACE", "500ms"),
            ("PATH", "/usr/bin"),
        ]);
        let with_env = Config::load(&args_in(dir.path()), vars.clone()).unwrap();
        assert_eq!(with_env.listen.to_string(), "127.0.0.1:9100");
        assert_eq!(with_env.max_participants, 20);
        assert_eq!(with_env.reconnect_grace, Duration::from_millis(500));
        assert_eq!(with_env.log_format, LogFormat::Json, "untouched by env, still from the file");

        let args = ConfigArgs { listen: Some("127.0.0.1:9200".parse().unwrap()), ..args_in(dir.path()) };
        let with_flags = Config::load(&args, vars).unwrap();
        assert_eq!(with_flags.listen.to_string(), "127.0.0.1:9200");
        assert_eq!(with_flags.max_participants, 20, "untouched by flags, still from env");
    }

    #[test]
    fn explicit_file_from_flag_or_env() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("other.toml");
        std::fs::write(&path, "max_participants = 7\n").unwrap();
        let by_flag = ConfigArgs { config: Some(path.clone()), ..args_in(dir.path()) };
        assert_eq!(Config::load(&by_flag, env(&[])).unwrap().max_participants, 7);
        let by_env = env(&[("SPORTELLO_CONFIG", path.to_str().unwrap())]);
        assert_eq!(Config::load(&args_in(dir.path()), by_env).unwrap().max_participants, 7);
        // A named file that does not exist is an error, not silently ignored.
        let missing = ConfigArgs { config: Some(dir.path().join("nope.toml")), ..args_in(dir.path()) };
        assert!(matches!(Config::load(&missing, env(&[])), Err(ConfigError::ReadFile { .. })));
    }

    #[test]
    fn data_dir_from_env_locates_the_file() {
        let dir = data_dir_with_file("max_participants = 3\nmax_live_viewers = 200\n");
        let vars = env(&[("SPORTELLO_DATA_DIR", dir.path().to_str().unwrap())]);
        let config = Config::load(&ConfigArgs::default(), vars).unwrap();
        assert_eq!(config.max_participants, 3);
        assert_eq!(config.max_live_viewers, 200);
        assert_eq!(config.data_dir, dir.path());
    }

    #[test]
    fn errors_name_their_source() {
        let dir = data_dir_with_file("listen = \"127.0.0.1:9000\"\nlisten_port = 1\n");
        let err = Config::load(&args_in(dir.path()), env(&[])).unwrap_err();
        assert!(matches!(err, ConfigError::ParseFile { .. }), "{err}");
        assert!(err.to_string().contains("listen_port"), "{err}");

        let dir = tempfile::tempdir().unwrap();
        let err = Config::load(&args_in(dir.path()), env(&[("SPORTELLO_MAX_PARTICIPANTS", "many")])).unwrap_err();
        assert!(err.to_string().contains("SPORTELLO_MAX_PARTICIPANTS"), "{err}");
        let err = Config::load(&args_in(dir.path()), env(&[("SPORTELLO_ICE_SERVERS", "stun:x")])).unwrap_err();
        assert!(err.to_string().contains("SPORTELLO_ICE_SERVERS"), "{err}");
    }

    /// A cluster node needs PostgreSQL and NATS, and a name that can go into NATS subjects; a
    /// single node needs none of it.
    #[test]
    fn a_node_id_asks_for_postgresql_and_nats() {
        let dir = tempfile::tempdir().unwrap();
        let pg = ("SPORTELLO_DATABASE_URL", "postgres://sportello@db/sportello");
        let nats = ("SPORTELLO_NATS_URL", "nats://10.0.0.5:4222");
        let config = Config::load(&args_in(dir.path()), env(&[("SPORTELLO_NODE_ID", "nodo-1"), pg, nats])).unwrap();
        assert_eq!((config.node_name(), config.nats_url.as_deref()), ("nodo-1", Some("nats://10.0.0.5:4222")));
        assert_eq!(config.internal_url(), "http://127.0.0.1:8080");
        let single = Config::load(&args_in(dir.path()), env(&[])).unwrap();
        assert_eq!((single.node_name(), single.node_id.as_deref()), ("local", None));

        for (vars, says) in [
            (vec![("SPORTELLO_NODE_ID", "nodo-1"), nats], "PostgreSQL"),
            (vec![("SPORTELLO_NODE_ID", "nodo-1"), pg], "NATS"),
            (vec![("SPORTELLO_NODE_ID", "nodo.1"), pg, nats], "letters, digits"),
            (vec![("SPORTELLO_NODE_ID", ""), pg, nats], "letters, digits"),
            (vec![("SPORTELLO_INTERNAL_URL", "10.0.0.4:8080")], "internal_url"),
        ] {
            let err = Config::load(&args_in(dir.path()), env(&vars)).unwrap_err();
            assert!(matches!(err, ConfigError::Cluster(_)) && err.to_string().contains(says), "{err}");
        }
    }

    #[test]
    fn ice_servers_from_env_json() {
        let dir = tempfile::tempdir().unwrap();
        let vars =
            env(&[("SPORTELLO_ICE_SERVERS", r#"[{"urls":["turn:t.example:3478"],"username":"u","credential":"p"}]"#)]);
        let config = Config::load(&args_in(dir.path()), vars).unwrap();
        assert_eq!(
            config.ice_servers,
            vec![IceServer {
                urls: vec!["turn:t.example:3478".into()],
                username: Some("u".into()),
                credential: Some("p".into())
            }]
        );
    }

    #[test]
    fn turn_from_file_env_and_flags() {
        let dir = data_dir_with_file(
            r#"
            turn_urls = ["turn:203.0.113.10:3478?transport=udp", "turns:turn.comune.example.it:443?transport=tcp"]
            turn_ttl = "8h"
            "#,
        );
        let file_only = Config::load(&args_in(dir.path()), env(&[])).unwrap();
        assert_eq!(file_only.turn_urls.len(), 2);
        assert_eq!(file_only.turn_ttl, Duration::from_secs(8 * 3600));
        assert!(file_only.turn().is_none(), "no secret yet: the server reads or creates it at start");
        assert_eq!(Config::default().turn_ttl, Duration::from_secs(12 * 3600));

        let vars = env(&[
            ("SPORTELLO_TURN_URLS", "turn:10.0.0.9:3478, turns:t.example:443?transport=tcp"),
            ("SPORTELLO_TURN_SECRET", "0123456789abcdef0123"),
            ("SPORTELLO_TURN_TTL", "2h"),
        ]);
        let with_env = Config::load(&args_in(dir.path()), vars.clone()).unwrap();
        let turn = with_env.turn().unwrap();
        assert_eq!(turn.urls, vec!["turn:10.0.0.9:3478".to_owned(), "turns:t.example:443?transport=tcp".to_owned()]);
        assert_eq!(turn.ttl, Duration::from_secs(2 * 3600));
        assert!(!format!("{with_env:?}").contains("0123456789abcdef"), "the secret is not logged");

        let args = ConfigArgs { turn_urls: vec!["turn:10.0.0.1:3478".into()], ..args_in(dir.path()) };
        assert_eq!(Config::load(&args, vars).unwrap().turn_urls, vec!["turn:10.0.0.1:3478".to_owned()]);

        let short = env(&[("SPORTELLO_TURN_SECRET", "short")]);
        assert!(Config::load(&args_in(dir.path()), short).unwrap_err().to_string().contains("SPORTELLO_TURN_SECRET"));
        let bad = env(&[("SPORTELLO_TURN_URLS", "stun:x:3478")]);
        assert!(matches!(Config::load(&args_in(dir.path()), bad), Err(ConfigError::TurnUrl(_))));
        assert!(Layer::from_toml("turn_secret = \"x\"").is_err(), "no secret in the file");
    }

    #[test]
    fn metrics_are_off_by_default_and_listen_where_file_env_or_flag_say() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Config::load(&args_in(dir.path()), env(&[])).unwrap().metrics_bind, None);
        let dir = data_dir_with_file("metrics_bind = \"127.0.0.1:9464\"\n");
        let from_file = Config::load(&args_in(dir.path()), env(&[])).unwrap();
        assert_eq!(from_file.metrics_bind, Some("127.0.0.1:9464".parse().unwrap()));
        let vars = env(&[("SPORTELLO_METRICS_BIND", "10.0.0.5:9464")]);
        let from_env = Config::load(&args_in(dir.path()), vars.clone()).unwrap();
        assert_eq!(from_env.metrics_bind, Some("10.0.0.5:9464".parse().unwrap()));
        let args = ConfigArgs { metrics_bind: Some("127.0.0.1:9100".parse().unwrap()), ..args_in(dir.path()) };
        assert_eq!(Config::load(&args, vars).unwrap().metrics_bind, Some("127.0.0.1:9100".parse().unwrap()));
    }

    #[test]
    fn ice_tcp_is_off_by_default_and_set_from_file_or_env() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::load(&args_in(dir.path()), env(&[])).unwrap();
        assert_eq!((config.media_tcp_bind, config.media_tcp_announced), (None, None));
        let vars = env(&[
            ("SPORTELLO_MEDIA_TCP_BIND", "10.0.0.5:4443"),
            ("SPORTELLO_MEDIA_TCP_ANNOUNCED", "203.0.113.10:443"),
        ]);
        let config = Config::load(&args_in(dir.path()), vars).unwrap();
        assert_eq!(config.media_tcp_bind, Some("10.0.0.5:4443".parse().unwrap()));
        assert_eq!(config.media_tcp_announced, Some("203.0.113.10:443".parse().unwrap()));
        assert_eq!(config.media_tcp_per_ip, 16);
        let behind_a_front = env(&[("SPORTELLO_MEDIA_TCP_PER_IP", "400")]);
        assert_eq!(Config::load(&args_in(dir.path()), behind_a_front).unwrap().media_tcp_per_ip, 400);
        let alone = env(&[("SPORTELLO_MEDIA_TCP_ANNOUNCED", "203.0.113.10:443")]);
        let refused = Config::load(&args_in(dir.path()), alone).unwrap_err();
        assert!(matches!(refused, ConfigError::TcpAnnouncedWithoutBind(_)), "{refused}");
    }

    #[test]
    fn media_threads_default_to_one_per_core_and_are_set_from_file_or_env() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Config::load(&args_in(dir.path()), env(&[])).unwrap().media_threads, 0);
        let dir = data_dir_with_file("media_threads = 3\n");
        assert_eq!(Config::load(&args_in(dir.path()), env(&[])).unwrap().media_threads, 3);
        let one = env(&[("SPORTELLO_MEDIA_THREADS", "1")]);
        assert_eq!(Config::load(&args_in(dir.path()), one).unwrap().media_threads, 1, "env over file");
        let bad = env(&[("SPORTELLO_MEDIA_THREADS", "many")]);
        let refused = Config::load(&args_in(dir.path()), bad).unwrap_err();
        assert!(refused.to_string().contains("SPORTELLO_MEDIA_THREADS"), "{refused}");
    }

    #[test]
    fn udp_gso_is_on_by_default_and_set_from_file_or_env() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Config::load(&args_in(dir.path()), env(&[])).unwrap().media_udp_gso);
        let dir = data_dir_with_file("media_udp_gso = false\n");
        assert!(!Config::load(&args_in(dir.path()), env(&[])).unwrap().media_udp_gso);
        let on = env(&[("SPORTELLO_MEDIA_UDP_GSO", "true")]);
        assert!(Config::load(&args_in(dir.path()), on).unwrap().media_udp_gso, "env over file");
        let bad = env(&[("SPORTELLO_MEDIA_UDP_GSO", "yes please")]);
        let refused = Config::load(&args_in(dir.path()), bad).unwrap_err();
        assert!(refused.to_string().contains("SPORTELLO_MEDIA_UDP_GSO"), "{refused}");
    }

    #[test]
    fn network_checks_per_ip_minute_from_file_or_env() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Config::load(&args_in(dir.path()), env(&[])).unwrap().network_checks_per_ip_minute, 12);
        let dir = data_dir_with_file("network_checks_per_ip_minute = 40\n");
        assert_eq!(Config::load(&args_in(dir.path()), env(&[])).unwrap().network_checks_per_ip_minute, 40);
        let behind_a_proxy = env(&[("SPORTELLO_NETWORK_CHECKS_PER_IP_MINUTE", "600")]);
        assert_eq!(Config::load(&args_in(dir.path()), behind_a_proxy).unwrap().network_checks_per_ip_minute, 600);
        let bad = env(&[("SPORTELLO_NETWORK_CHECKS_PER_IP_MINUTE", "-1")]);
        let err = Config::load(&args_in(dir.path()), bad).unwrap_err();
        assert!(err.to_string().contains("SPORTELLO_NETWORK_CHECKS_PER_IP_MINUTE"), "{err}");
    }

    #[test]
    fn trusted_proxies_and_their_header_from_file_or_env() {
        let dir = tempfile::tempdir().unwrap();
        let none = Config::load(&args_in(dir.path()), env(&[])).unwrap();
        assert!(none.trusted_proxies.is_empty());
        assert_eq!(none.forwarded_header, ForwardedHeader::XForwardedFor);
        let dir =
            data_dir_with_file("trusted_proxies = [\"10.0.0.0/8\", \"192.0.2.7\"]\nforwarded_header = \"forwarded\"\n");
        let file = Config::load(&args_in(dir.path()), env(&[])).unwrap();
        let nets: Vec<String> = file.trusted_proxies.iter().map(ToString::to_string).collect();
        assert_eq!(nets, ["10.0.0.0/8", "192.0.2.7/32"]);
        assert_eq!(file.forwarded_header, ForwardedHeader::Forwarded);
        let vars = env(&[
            ("SPORTELLO_TRUSTED_PROXIES", "127.0.0.1, ::1/128"),
            ("SPORTELLO_FORWARDED_HEADER", "X-Forwarded-For"),
        ]);
        let from_env = Config::load(&args_in(dir.path()), vars).unwrap();
        assert_eq!(from_env.trusted_proxies.len(), 2);
        assert_eq!(from_env.forwarded_header, ForwardedHeader::XForwardedFor);
        let bad = env(&[("SPORTELLO_TRUSTED_PROXIES", "10.0.0.0/8, proxy.comune.it")]);
        let err = Config::load(&args_in(dir.path()), bad).unwrap_err();
        assert!(
            err.to_string().contains("SPORTELLO_TRUSTED_PROXIES") && err.to_string().contains("proxy.comune.it"),
            "{err}"
        );
        let dir = data_dir_with_file("trusted_proxies = [\"10.0.0.0/33\"]\n");
        let err = Config::load(&args_in(dir.path()), env(&[])).unwrap_err();
        assert!(err.to_string().contains("10.0.0.0/33"), "{err}");
        let clean = tempfile::tempdir().unwrap();
        let bad_header = env(&[("SPORTELLO_FORWARDED_HEADER", "x-real-ip")]);
        let err = Config::load(&args_in(clean.path()), bad_header).unwrap_err();
        assert!(err.to_string().contains("x-real-ip"), "{err}");
    }

    #[test]
    fn wildcard_media_bind_needs_announced_ip() {
        let dir = tempfile::tempdir().unwrap();
        let vars = env(&[("SPORTELLO_MEDIA_BIND", "0.0.0.0:3478")]);
        let err = Config::load(&args_in(dir.path()), vars.clone()).unwrap_err();
        assert!(matches!(err, ConfigError::WildcardMediaBind(_)));
        assert!(err.to_string().contains("announced_ip"), "{err}");
        let args = ConfigArgs { announced_ip: Some("203.0.113.7".parse().unwrap()), ..args_in(dir.path()) };
        assert_eq!(Config::load(&args, vars).unwrap().announced_ip, Some("203.0.113.7".parse().unwrap()));
        let v6 = Config { media_bind: "[::]:3478".parse().unwrap(), ..Config::default() };
        assert!(v6.validated().is_err());
    }

    #[test]
    fn public_url_follows_listen_unless_set() {
        let dir = tempfile::tempdir().unwrap();
        let args = ConfigArgs { listen: Some("0.0.0.0:9000".parse().unwrap()), ..args_in(dir.path()) };
        assert_eq!(Config::load(&args, env(&[])).unwrap().public_url, "http://127.0.0.1:9000");
        let args = ConfigArgs { listen: Some("[::1]:9000".parse().unwrap()), ..args_in(dir.path()) };
        assert_eq!(Config::load(&args, env(&[])).unwrap().public_url, "http://[::1]:9000");
        let vars = env(&[("SPORTELLO_PUBLIC_URL", "https://video.comune.example")]);
        assert_eq!(Config::load(&args, vars).unwrap().public_url, "https://video.comune.example");
    }

    #[test]
    fn public_url_must_be_http() {
        for bad in ["sportello.example", "ftp://x", "http://"] {
            let config = Config { public_url: bad.into(), ..Config::default() };
            assert!(matches!(config.validated(), Err(ConfigError::PublicUrl { .. })), "{bad}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("300ms"), Ok(Duration::from_millis(300)));
        assert_eq!(parse_duration("15s"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration("15"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("8h"), Ok(Duration::from_secs(8 * 3600)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(2 * 86400)));
        for bad in ["", "s", "-1s", "1.5s", "3 weeks", "99999999999999999999s", "18446744073709551615d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        let layer = Layer::from_toml("reconnect_grace = 20").unwrap();
        assert_eq!(layer.reconnect_grace, Some(Duration::from_secs(20)));
        let layer = Layer::from_toml("recording_retention = \"730d\"").unwrap();
        assert_eq!(layer.recording_retention, Some(Duration::from_secs(730 * 86_400)));
        assert_eq!(Config::default().recording_retention, Duration::from_secs(365 * 86_400));
    }
}
