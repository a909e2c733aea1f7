//! The HTTP surface ([`app`]) and the running server ([`start`]): the binary and the integration
//! tests start Sportello the same way, the tests on port 0 with a temporary data directory.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, Request, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::ListenerExt;
use sportello_sfu::{Sfu, SfuConfig, SfuError};
use sportello_store::{Store, StoreError};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use crate::config::{Config, ConfigError};
use crate::state::AppState;
use crate::{api, page, web, ws};
use sportello_backoffice::clock::Clock;
use sportello_backoffice::mail::{MailError, Mailer};
use sportello_backoffice::retention;
use sportello_backoffice::token::{KeyError, TokenKey};
use sportello_rooms::rooms::Rooms;
use sportello_rooms::turn::{SECRET_FILE, TurnSecret};

/// Only our own files; media arrive as `MediaStream`s (`blob:` for recordings/snapshots), and the
/// only connection besides same-origin fetches is the signaling websocket — to this server only:
/// `connect-src` names `public_url`'s own ws(s) origin, never any host.
pub fn content_security_policy(public_url: &str) -> String {
    let websocket = url::Url::parse(public_url)
        .ok()
        .and_then(|mut url| {
            let scheme = if url.scheme() == "https" { "wss" } else { "ws" };
            url.set_scheme(scheme).ok()?;
            Some(format!(" {}", url.origin().ascii_serialization()))
        })
        .unwrap_or_default();
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; \
         media-src 'self' blob:; connect-src 'self'{websocket}; font-src 'self'; object-src 'none'; \
         base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
}

/// HSTS only when the public address is HTTPS (a year; subdomains are the municipality's business).
const STRICT_TRANSPORT_SECURITY: &str = "max-age=31536000";

pub fn app(state: AppState) -> Router {
    let csp = HeaderValue::from_str(&content_security_policy(&state.config.public_url))
        .unwrap_or_else(|_| HeaderValue::from_static("default-src 'self'"));
    let https = state.config.public_url.starts_with("https://");
    let metrics_on = state.config.metrics_bind.is_some();
    let origin = Arc::new(crate::origin::OriginPolicy::new(&state.config.public_url));
    let trusted = Arc::new(crate::client_addr::TrustedProxies::new(
        state.config.trusted_proxies.clone(),
        state.config.forwarded_header,
    ));
    let router = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/ws", get(ws::handler))
        .nest("/api", api::routes().layer(axum::middleware::from_fn_with_state(origin, crate::origin::check)))
        .merge(web::routes())
        .merge(api::council::page_routes())
        .merge(api::archive::page_routes())
        // Several nodes: a council's live stream is answered by the node that runs it, a probe's
        // or a viewer's request by the node its id names.
        .layer(axum::middleware::from_fn_with_state(state.clone(), crate::forward::to_the_right_node));
    // The matched route for the HTTP metrics (a route layer: it runs once a route matched).
    let router =
        if metrics_on { router.route_layer(axum::middleware::from_fn(crate::metrics::matched_route)) } else { router };
    let router = router
        .fallback(not_found)
        // Who each request comes from, for `ClientIp` (client_addr.rs).
        .layer(axum::Extension(trusted))
        .with_state(state)
        .layer(SetResponseHeaderLayer::if_not_present(header::CONTENT_SECURITY_POLICY, csp))
        .layer(header_layer(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        // Join links carry their token in the URL: never let it leak to another site.
        .layer(header_layer(header::REFERRER_POLICY, "no-referrer"))
        .layer(
            // The path only: the query string of `/join?t=` is a credential and stays out of logs.
            TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
                tracing::info_span!("request", method = %request.method(), path = %request.uri().path())
            }),
        );
    let router = if https {
        router.layer(header_layer(header::STRICT_TRANSPORT_SECURITY, STRICT_TRANSPORT_SECURITY))
    } else {
        router
    };
    // Outermost, so every answer is counted, the fallback's and the layers' own included; only
    // with metrics on (no recorder otherwise).
    if metrics_on { router.layer(axum::middleware::from_fn(crate::metrics::track)) } else { router }
}

fn header_layer(name: header::HeaderName, value: &'static str) -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value))
}

/// An unknown address: the JSON error under `/api` (clients parse it), the HTML page elsewhere.
async fn not_found(uri: Uri) -> Response {
    let path = uri.path();
    if path == "/api" || path.starts_with("/api/") {
        api::ApiError::NotFound.into_response()
    } else {
        page::HttpError::NotFound.into_response()
    }
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// How long each readiness check may take before it counts as failed.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// Readiness (`/readyz`): the database answers and the media engine answers, each within 2 s.
/// `200 ready`, else `503` naming what is not ready, one line each (for a load balancer or a
/// probe; optional parts — mail, TURN, calendars — never make it fail).
async fn readyz(State(state): State<AppState>) -> Response {
    let database = match tokio::time::timeout(READY_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(format!("database: {e}")),
        Err(_) => Some("database: no answer within 2 s".to_owned()),
    };
    let media = match tokio::time::timeout(READY_TIMEOUT, state.rooms.sfu().stats()).await {
        Ok(Ok(_)) => None,
        Ok(Err(e)) => Some(format!("media engine: {e}")),
        Err(_) => Some("media engine: no answer within 2 s".to_owned()),
    };
    // Several nodes: a node that takes no room (draining, fenced, cut off from the database) is
    // not one a balancer's health check should send anyone to.
    let cluster = state.cluster.as_ref().filter(|c| !c.takes_joins()).map(|c| {
        if c.is_draining() {
            "cluster: this node drains".to_owned()
        } else {
            format!("cluster: this node takes no room ({:?})", c.health())
        }
    });
    let problems: Vec<String> = [database, media, cluster].into_iter().flatten().collect();
    if problems.is_empty() {
        return (StatusCode::OK, "ready\n").into_response();
    }
    tracing::warn!(problems = %problems.join("; "), "not ready");
    (StatusCode::SERVICE_UNAVAILABLE, format!("not ready\n{}\n", problems.join("\n"))).into_response()
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    TurnSecret(#[from] sportello_rooms::turn::TurnSecretError),
    #[error("cannot create the data directory {path}: {source}")]
    DataDir { path: std::path::PathBuf, source: std::io::Error },
    #[error("cannot open the database: {0}")]
    Store(#[from] StoreError),
    #[error("cannot set up email: {0}")]
    Mail(#[from] MailError),
    #[error("cannot start the media engine: {0}")]
    Sfu(#[from] SfuError),
    #[error(transparent)]
    Metrics(#[from] crate::metrics::MetricsError),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("HTTP server failed: {0}")]
    Serve(std::io::Error),
    #[error("HTTP server task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("cannot join the cluster: {0}")]
    Cluster(#[from] sportello_cluster::ClusterError),
}

/// A started server. Dropping it shuts it down too (websockets close with 1001).
pub struct RunningServer {
    pub http_addr: SocketAddr,
    /// The media UDP socket's address (the real one when bound to port 0).
    pub media_addr: SocketAddr,
    /// The `/metrics` listener's address, when `metrics_bind` is set (the real one for port 0).
    pub metrics_addr: Option<SocketAddr>,
    pub sfu: Sfu,
    /// The key join tokens are signed with (to mint tokens in tests and in `sportello token`).
    pub tokens: Arc<TokenKey>,
    pub config: Arc<Config>,
    pub rooms: Rooms,
    pub store: Store,
    /// The council sessions' public state (tests set it as a council room would).
    pub live: sportello_rooms::live::LiveBoard,
    /// This node among several (`node_id` set).
    pub cluster: Option<sportello_cluster::Cluster>,
    cascade: Arc<crate::cascade::Cascade>,
    shutdown: watch::Sender<bool>,
    http: Option<JoinHandle<Result<(), std::io::Error>>>,
    metrics: Option<JoinHandle<Result<(), std::io::Error>>>,
    events: JoinHandle<()>,
}

impl RunningServer {
    /// `http://<bound address>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.http_addr)
    }

    /// Several nodes: takes no room any more, gives this node's rooms up and moves its sessions
    /// to the other nodes (they close with 1012 and rejoin there); returns once none is left here,
    /// or at `deadline`. Nothing to do for a single node.
    pub async fn drain(&self, deadline: std::time::Duration) {
        let Some(cluster) = &self.cluster else { return };
        drain(cluster, &self.cascade, &self.sfu, deadline).await;
    }

    /// Stops accepting, closes every websocket (1001), waits for the HTTP server to finish, then
    /// stops the media engine: its ports are free when this returns, even while background tasks
    /// still hold a handle to it.
    pub async fn shutdown(mut self) -> Result<(), ServerError> {
        let _ = self.shutdown.send(true);
        self.events.abort();
        let served = match self.http.take() {
            Some(http) => http.await?.map_err(ServerError::Serve),
            None => Ok(()),
        };
        // Optional: its failure must not keep the media engine from stopping.
        if let Some(metrics) = self.metrics.take()
            && let Ok(Err(error)) = metrics.await
        {
            tracing::warn!(%error, "metrics listener failed");
        }
        self.sfu.stop().await;
        served
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

/// Drains this node (SIGTERM, or `sportello drain`): it takes no new room or viewer, gives its
/// rooms up and moves its sessions (closed with 1012, they rejoin elsewhere), and ends the council
/// streams it relays (their players ask again through the balancer). Returns the sessions left
/// once none is, or at `deadline`.
async fn drain(
    cluster: &sportello_cluster::Cluster,
    cascade: &crate::cascade::Cascade,
    sfu: &Sfu,
    deadline: std::time::Duration,
) -> i64 {
    cluster.drain().await;
    cascade.end_all(sfu).await;
    let end = tokio::time::Instant::now() + deadline;
    while sportello_rooms::session::open_sessions() > 0 && tokio::time::Instant::now() < end {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let left = sportello_rooms::session::open_sessions();
    tracing::info!(left, "drained");
    left
}

/// Answers `sportello drain` (NATS request/reply on `sportello.node.<id>.drain`).
async fn answer_drain_requests(cluster: sportello_cluster::Cluster, cascade: Arc<crate::cascade::Cascade>, sfu: Sfu) {
    use sportello_cluster::drain::{DrainReport, DrainRequest};
    let mut requests = match cluster.drain_requests().await {
        Ok(requests) => requests,
        Err(error) => {
            tracing::error!(%error, "`sportello drain` cannot reach this node");
            return;
        }
    };
    while let Some(msg) = futures_util::StreamExt::next(&mut requests).await {
        let Some(reply) = msg.reply else { continue };
        let deadline = serde_json::from_slice::<DrainRequest>(&msg.payload).map_or(30, |r| r.deadline_secs.min(3600));
        tracing::info!(deadline, "drain asked (`sportello drain`)");
        let left = drain(&cluster, &cascade, &sfu, std::time::Duration::from_secs(deadline)).await;
        let report = DrainReport { node: cluster.id().to_owned(), sessions_left: left };
        cluster.reply(reply, serde_json::to_vec(&report).unwrap_or_default()).await;
    }
}

/// Loads (or creates) the token key, starts the SFU on `media_bind`, binds `listen` and serves.
pub async fn start(config: Config) -> Result<RunningServer, ServerError> {
    start_with_clock(config, Clock::system()).await
}

/// [`start`] with the server's notion of "now" given (tests run it at a chosen time of day).
pub async fn start_with_clock(config: Config, clock: Clock) -> Result<RunningServer, ServerError> {
    let config = config.validated()?;
    // 0700 before anything is written into it (an existing directory is tightened too).
    sportello_backoffice::private::create_dir(&config.data_dir)
        .map_err(|source| ServerError::DataDir { path: config.data_dir.clone(), source })?;
    let tokens = TokenKey::load_or_create(&config.data_dir)?.with_clock(clock);
    let mut config = config;
    if !config.turn_urls.is_empty() && config.turn_secret.is_none() {
        // A named file is the operator's (shared with coturn); the default one is ours to create.
        let secret = match &config.turn_secret_file {
            Some(path) => TurnSecret::load(path, false)?,
            None => TurnSecret::load(&config.data_dir.join(SECRET_FILE), true)?,
        };
        config.turn_secret = Some(secret);
    }
    let store = Store::connect(&config.database_url()).await?;
    let mailer = Mailer::new(config.smtp_url.as_deref(), &config.mail_from, &config.data_dir)?;
    let (sfu, events) = Sfu::start(SfuConfig {
        udp_bind: config.media_bind,
        announced_ip: config.announced_ip,
        tcp_bind: config.media_tcp_bind,
        tcp_announced: config.media_tcp_announced,
        tcp_limits: sportello_sfu::TcpLimits {
            max_per_address: config.media_tcp_per_ip,
            ..sportello_sfu::TcpLimits::default()
        },
        udp_gso: config.media_udp_gso,
        media_threads: match config.media_threads {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        },
        ..SfuConfig::default()
    })?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServerError::Bind { addr: config.listen, source })?;
    let http_addr = listener.local_addr().map_err(|source| ServerError::Bind { addr: config.listen, source })?;
    // No Nagle: signaling is small messages back to back (a welcome then an offer, an answer then
    // candidates), and Nagle holds each one after the first until the peer acknowledges it — with
    // a delayed acknowledgement, 40 ms on Linux; a round trip on any network.
    let listener = listener.tap_io(|tcp| {
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "TCP_NODELAY not set on a connection");
        }
    });
    if config.listen.port() == 0 {
        // An ephemeral port (tests) cannot have been written into a public URL: links must point here.
        config.public_url = format!("http://{http_addr}");
    }
    let metrics = match config.metrics_bind {
        Some(addr) => {
            let handle = crate::metrics::install()?;
            let bind = |source| ServerError::Bind { addr, source };
            let listener = tokio::net::TcpListener::bind(addr).await.map_err(bind)?;
            let bound = listener.local_addr().map_err(bind)?;
            Some((handle, listener, bound))
        }
        None => None,
    };
    let (shutdown, shutdown_rx) = watch::channel(false);
    let mut state = AppState::new(config, tokens, sfu.clone(), store, mailer, shutdown_rx.clone());
    if let (Some(id), Some(nats_url)) = (state.config.node_id.clone(), state.config.nats_url.clone()) {
        // Several nodes (`docs/cluster.md`): this node's row, lock and heartbeat; joins placed on
        // the room's owner; sessions relayed here from the other nodes.
        let internal_url = match state.config.internal_url.clone() {
            Some(url) => url,
            None => format!("http://{http_addr}"),
        };
        let media = sfu.local_addr();
        let media_addr = SocketAddr::new(state.config.announced_ip.unwrap_or(media.ip()), media.port()).to_string();
        let key_id = state.tokens.key_id();
        let node = sportello_cluster::NodeConfig { id, internal_url, media_addr, nats_url, key_id };
        let (cluster, _task) = sportello_cluster::Cluster::join(state.store.clone(), node, shutdown_rx.clone()).await?;
        state.rooms.attach_cluster(cluster.clone());
        state.cluster = Some(cluster.clone());
        state.anywhere = sportello_rooms::anywhere::RoomsAnywhere::new(state.rooms.clone(), Some(cluster.clone()));
        tokio::spawn(sportello_rooms::anywhere::serve(cluster.clone(), state.rooms.clone()));
        // The load every heartbeat reports: sessions running here (new rooms go to the least loaded).
        let (reporting, mut stop) = (cluster.clone(), shutdown_rx.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = tick.tick() => reporting.set_load(sportello_rooms::session::open_sessions()),
                    _ = stop.changed() => return,
                }
            }
        });
        tokio::spawn(answer_drain_requests(cluster.clone(), state.cascade.clone(), sfu.clone()));
        tokio::spawn(sportello_rooms::relay::serve(cluster, state.session_context()));
    }
    let (rooms, tokens, config, store, live) =
        (state.rooms.clone(), state.tokens.clone(), state.config.clone(), state.store.clone(), state.live.clone());
    let (cluster, cascade) = (state.cluster.clone(), state.cascade.clone());
    let events = tokio::spawn(rooms.clone().route_events(events));
    sportello_backoffice::reminders::spawn(
        state.back_office.clone(),
        state.config.reminder_lead,
        state.shutdown.clone(),
    );
    sportello_backoffice::calendar_fetch::spawn(state.back_office.clone(), state.shutdown.clone());
    sportello_backoffice::webhooks::spawn(state.back_office.clone(), state.shutdown.clone());
    sportello_backoffice::appio::spawn(state.back_office.clone(), state.shutdown.clone());
    tokio::spawn(retention::run(
        state.back_office.clone(),
        config.data_dir.clone(),
        config.recording_retention,
        shutdown_rx.clone(),
    ));
    let (metrics_addr, metrics) = match metrics {
        Some((handle, listener, addr)) => {
            let scrape = crate::metrics::Scrape { handle, sfu: sfu.clone(), rooms: rooms.clone() };
            let mut stop = shutdown_rx.clone();
            let task = tokio::spawn(async move {
                axum::serve(listener, crate::metrics::routes(scrape))
                    .with_graceful_shutdown(async move {
                        let _ = stop.changed().await;
                    })
                    .await
            });
            tracing::info!(metrics = %addr, "metrics listening (/metrics)");
            (Some(addr), Some(task))
        }
        None => (None, None),
    };
    let mut stop = shutdown_rx;
    let http = tokio::spawn(async move {
        // Connect info: the booking rate limit is per client address.
        axum::serve(listener, app(state).into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(async move {
                let _ = stop.changed().await;
            })
            .await
    });
    tracing::info!(http = %http_addr, media = %sfu.local_addr(), "listening");
    Ok(RunningServer {
        http_addr,
        media_addr: sfu.local_addr(),
        metrics_addr,
        sfu,
        tokens,
        config,
        rooms,
        store,
        live,
        cluster,
        cascade,
        shutdown,
        http: Some(http),
        metrics,
        events,
    })
}

#[cfg(test)]
mod tests {
    use axum::body::{Body, to_bytes};
    use axum::http::StatusCode;
    use tower::ServiceExt;

    use super::*;

    async fn get(uri: &str) -> Response {
        let (state, _dir) = crate::state::test_state().await;
        app(state).oneshot(Request::get(uri).body(Body::empty()).unwrap()).await.unwrap()
    }

    #[tokio::test]
    async fn readyz_says_what_is_not_ready() {
        let (state, _dir) = crate::state::test_state().await;
        let ready = app(state.clone()).oneshot(Request::get("/readyz").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(ready.status(), StatusCode::OK);
        assert_eq!(to_bytes(ready.into_body(), 1024).await.unwrap(), "ready\n");
        // The database gone and the media engine stopped: 503, both named.
        state.store.close().await;
        state.rooms.sfu().stop().await;
        let down = app(state).oneshot(Request::get("/readyz").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(down.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = String::from_utf8(to_bytes(down.into_body(), 4096).await.unwrap().to_vec()).unwrap();
        assert!(
            body.starts_with("not ready\n") && body.contains("database:") && body.contains("media engine:"),
            "{body}"
        );
    }

    #[tokio::test]
    async fn healthz() {
        let response = get("/healthz").await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(to_bytes(response.into_body(), 1024).await.unwrap(), "ok\n");
    }

    #[tokio::test]
    async fn security_headers_on_every_response() {
        for uri in ["/healthz", "/nope", "/web/../Cargo.toml"] {
            let response = get(uri).await;
            let headers = response.headers();
            let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
            // The test state's public_url is the default http://127.0.0.1:8080.
            assert!(
                csp.contains("default-src 'self'") && csp.contains("connect-src 'self' ws://127.0.0.1:8080;"),
                "{uri}"
            );
            assert!(
                !csp.contains(" ws:;") && !csp.contains(" wss:") && !csp.contains(" ws: "),
                "no websocket to any host"
            );
            assert!(!headers.contains_key(header::STRICT_TRANSPORT_SECURITY), "no HSTS over plain HTTP");
            assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"));
            assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{uri}");
            assert_eq!(headers[header::REFERRER_POLICY], "no-referrer", "{uri}");
        }
    }

    #[tokio::test]
    async fn hsts_and_a_wss_connect_src_when_served_over_https() {
        let (mut state, _dir) = crate::state::test_state().await;
        let public_url = "https://sportello.comune.example/".to_owned();
        state.config = Arc::new(Config { public_url, ..(*state.config).clone() });
        let response = app(state).oneshot(Request::get("/healthz").body(Body::empty()).unwrap()).await.unwrap();
        let headers = response.headers();
        assert_eq!(headers[header::STRICT_TRANSPORT_SECURITY], "max-age=31536000");
        let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(csp.contains("connect-src 'self' wss://sportello.comune.example;"), "{csp}");
    }

    #[tokio::test]
    async fn unknown_paths_are_404() {
        assert_eq!(get("/nope").await.status(), StatusCode::NOT_FOUND);
        assert_eq!(get("/web/../Cargo.toml").await.status(), StatusCode::NOT_FOUND);
        assert_eq!(get("/web/does-not-exist.js").await.status(), StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn ws_without_upgrade_is_refused() {
        let status = get("/ws?room=demo").await.status();
        assert!(status.is_client_error(), "{status}");
    }

    #[tokio::test]
    async fn start_binds_port_zero_and_shuts_down() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            media_bind: "127.0.0.1:0".parse().unwrap(),
            data_dir: dir.path().to_owned(),
            ..Config::default()
        };
        let server = start(config).await.unwrap();
        assert_ne!(server.http_addr.port(), 0);
        assert_ne!(server.media_addr.port(), 0);
        assert!(dir.path().join(sportello_backoffice::token::KEY_FILE).is_file());
        let stream = tokio::net::TcpStream::connect(server.http_addr).await;
        assert!(stream.is_ok());
        drop(stream);
        tokio::time::timeout(std::time::Duration::from_secs(5), server.shutdown()).await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn start_refuses_a_wildcard_media_bind() {
        let config = Config { media_bind: "0.0.0.0:0".parse().unwrap(), ..Config::default() };
        assert!(matches!(start(config).await, Err(ServerError::Config(ConfigError::WildcardMediaBind(_)))));
    }
}
