//! [`AppState`]: what every request handler, websocket session and background task shares — the
//! rooms, the store, the token key, the mailer, the clock, the limits kept in memory — built once
//! per server.

use std::sync::Arc;

use sportello_sfu::Sfu;
use sportello_store::Store;
use tokio::sync::watch;

use crate::api::login_guard::LoginGuard;
use crate::config::Config;
use sportello_backoffice::clock::Clock;
use sportello_backoffice::context::{BackOffice, CalendarPolicy};
use sportello_backoffice::mail::Mailer;
use sportello_backoffice::token::TokenKey;
use sportello_rooms::persist::{self, Persister};
use sportello_rooms::room::RoomSettings;
use sportello_rooms::rooms::Rooms;

/// Everything a request handler may need. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub rooms: Rooms,
    pub tokens: Arc<TokenKey>,
    pub config: Arc<Config>,
    pub store: Store,
    pub mailer: Mailer,
    /// The server's "now" (shared with `tokens`).
    pub clock: Clock,
    pub login_guard: Arc<LoginGuard>,
    /// Open websockets per client address (`client_addr::SocketGate`).
    pub sockets: Arc<crate::client_addr::SocketGate>,
    /// Changes (or closes) when the server shuts down; websocket sessions then close with 1001.
    pub shutdown: watch::Receiver<bool>,
    /// The public state of council sessions (`/live/<session>`), written by council rooms.
    pub live: sportello_rooms::live::LiveBoard,
    /// The same store, key, mailer and clock for the back office's use cases and passes.
    pub back_office: BackOffice,
    /// This node among several (`node_id` set); `None` for the one node.
    pub cluster: Option<sportello_cluster::Cluster>,
    /// What REST asks of a live room, answered wherever it runs (this node, or its owner).
    pub anywhere: sportello_rooms::anywhere::RoomsAnywhere,
    /// The council streams this node relays to its own viewers (several nodes).
    pub cascade: Arc<crate::cascade::Cascade>,
    /// The OpenID Connect relying party (staff and citizen sign-in) and its metadata cache.
    pub oidc: Arc<crate::oidc::Oidc>,
}

impl AppState {
    /// What this node needs as an edge of a council's stream (several nodes only).
    pub fn edge_context(&self) -> Option<crate::cascade::EdgeContext> {
        Some(crate::cascade::EdgeContext {
            sfu: self.rooms.sfu().clone(),
            cluster: self.cluster.clone()?,
            tokens: Arc::clone(&self.tokens),
            clock: self.clock.clone(),
            live: self.live.clone(),
            shutdown: self.shutdown.clone(),
        })
    }

    pub fn new(
        config: Config,
        tokens: TokenKey,
        sfu: Sfu,
        store: Store,
        mailer: Mailer,
        shutdown: watch::Receiver<bool>,
    ) -> AppState {
        let clock = tokens.clock().clone();
        let (persist, jobs) = Persister::channel();
        let live = sportello_rooms::live::LiveBoard::default();
        let settings = RoomSettings {
            reconnect_grace: config.reconnect_grace,
            max_participants: config.max_participants,
            ice_servers: config.ice_servers.clone(),
            turn: config.turn(),
            clock: clock.clone(),
            retention: config.retention,
            persist,
            live: live.clone(),
            data_dir: config.data_dir.clone(),
        };
        let rooms = Rooms::new(sfu, settings);
        let tokens = Arc::new(tokens);
        let login_guard = Arc::new(LoginGuard::new(config.login_failures_per_ip));
        // Rooms queue chat and appointment events; this task writes them (it ends with `rooms`).
        tokio::spawn(persist::run(jobs, store.clone(), rooms.downgrade()));
        let back_office = BackOffice {
            store: store.clone(),
            tokens: Arc::clone(&tokens),
            mailer: mailer.clone(),
            clock: clock.clone(),
            public_url: config.public_url.clone(),
            calendars: CalendarPolicy {
                refresh: config.calendar_refresh,
                fetch_timeout: config.calendar_fetch_timeout,
                allow_private: config.calendar_allow_private,
            },
            node: config.node_name().into(),
        };
        AppState {
            back_office,
            anywhere: sportello_rooms::anywhere::RoomsAnywhere::new(rooms.clone(), None),
            cascade: Arc::default(),
            oidc: Arc::default(),
            rooms,
            tokens,
            config: Arc::new(config),
            store,
            mailer,
            clock,
            login_guard,
            sockets: Arc::default(),
            shutdown,
            live,
            cluster: None,
        }
    }

    /// What a signaling session needs: a websocket's, or one relayed from another node.
    pub fn session_context(&self) -> sportello_rooms::session::Context {
        sportello_rooms::session::Context {
            rooms: self.rooms.clone(),
            tokens: self.tokens.clone(),
            store: self.store.clone(),
            shutdown: self.shutdown.clone(),
            cluster: self.cluster.clone(),
        }
    }
}

/// A state over a fresh SQLite file and outbox in a temporary directory (kept alive by the guard).
#[cfg(test)]
pub(crate) async fn test_state() -> (AppState, tempfile::TempDir) {
    use sportello_sfu::SfuConfig;
    let dir = tempfile::tempdir().expect("temp dir");
    let (sfu, _events) =
        Sfu::start(SfuConfig { udp_bind: "127.0.0.1:0".parse().expect("addr"), ..SfuConfig::default() }).expect("sfu");
    let (_tx, rx) = watch::channel(false);
    let config = Config { data_dir: dir.path().to_owned(), ..Config::default() };
    let store = Store::connect(&config.database_url()).await.expect("store");
    let mailer = Mailer::new(None, &config.mail_from, dir.path()).expect("mailer");
    (AppState::new(config, TokenKey::random(), sfu, store, mailer, rx), dir)
}
