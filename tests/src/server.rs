//! A real Sportello server in-process on loopback, tokens of every kind, and a small websocket client.
//!
//! ```ignore
//! let server = TestServer::start().await;
//! let (mut anna, welcome) = server.join("demo", "anna", Role::Host).await;
//! let (mut bruno, _) = server.join("demo", "bruno", Role::Participant).await;
//! anna.recv_until("participant_joined").await;
//! bruno.mute("microphone", true).await;
//! assert_eq!(anna.recv_until("mute").await["participant_id"], "bruno");
//! ```
//!
//! Every wait has a timeout ([`TIMEOUT`] unless said otherwise) and panics with what was seen, so
//! a broken server fails a test instead of hanging it.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub use sportello_backoffice::clock::Clock;
use sportello_backoffice::token::unix_now;
pub use sportello_backoffice::token::{Claims, Role, TokenKey};
use sportello_server::{Config, RunningServer};

/// How long any single expected message may take.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// The reconnection grace of [`TestServer::start`]: short, so tests of its expiry are quick.
pub const TEST_GRACE: Duration = Duration::from_millis(300);

/// A running server with its own temporary data directory (token key), removed on drop.
pub struct TestServer {
    pub server: RunningServer,
    data_dir: tempfile::TempDir,
}

impl TestServer {
    /// HTTP on 127.0.0.1:0, media on 127.0.0.1:0, reconnect grace [`TEST_GRACE`].
    pub async fn start() -> TestServer {
        TestServer::start_with(|_| {}).await
    }

    /// Like [`start`](Self::start), with the configuration adjusted by `adjust` (e.g. grace, room size).
    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> TestServer {
        TestServer::start_at(Clock::system(), adjust).await
    }

    /// Like [`start_with`](Self::start_with) with the server's clock given, e.g. shifted to a
    /// working morning so that booking hours do not depend on when the test runs.
    pub async fn start_at(clock: Clock, adjust: impl FnOnce(&mut Config)) -> TestServer {
        let data_dir = tempfile::tempdir().expect("temporary data directory");
        let mut config = Config {
            listen: "127.0.0.1:0".parse().expect("address"),
            media_bind: "127.0.0.1:0".parse().expect("address"),
            data_dir: data_dir.path().to_owned(),
            reconnect_grace: TEST_GRACE,
            ..Config::default()
        };
        adjust(&mut config);
        let server = sportello_server::start_with_clock(config, clock).await.expect("the server starts");
        TestServer { server, data_dir }
    }

    /// Shuts the server down as the binary does on SIGTERM (websockets close with 1001).
    pub async fn shutdown(self) {
        tokio::time::timeout(TIMEOUT, self.server.shutdown())
            .await
            .expect("shutdown within the timeout")
            .expect("clean shutdown");
    }

    pub fn data_dir(&self) -> &std::path::Path {
        self.data_dir.path()
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// `ws://127.0.0.1:<port>/ws?room=<room>`.
    pub fn ws_url(&self, room: &str) -> String {
        format!("ws://{}/ws?room={room}", self.server.http_addr)
    }

    /// `http://127.0.0.1:<port>/join?t=<token>`: the link a browser opens (the configured
    /// `public_url` does not know the port chosen at start).
    pub fn join_link(&self, token: &str) -> String {
        format!("{}/join?t={token}", self.url())
    }

    /// Claims valid for an hour from now; the display name is the identity, capitalised.
    pub fn claims(&self, room: &str, identity: &str, role: Role) -> Claims {
        let mut name = identity.to_owned();
        if let Some(first) = name.get_mut(0..1) {
            first.make_ascii_uppercase();
        }
        Claims::new(room, identity, &name, role, Duration::from_secs(3600))
    }

    /// Signs `claims` with the server's key.
    pub fn sign(&self, claims: &Claims) -> String {
        self.server.tokens.issue(claims).expect("token")
    }

    /// A valid token.
    pub fn token(&self, room: &str, identity: &str, role: Role) -> String {
        self.sign(&self.claims(room, identity, role))
    }

    /// Expired an hour ago (well beyond any leeway).
    pub fn expired_token(&self, room: &str, identity: &str) -> String {
        let now = unix_now();
        let claims = Claims {
            iat: now - 7200,
            nbf: now - 7200,
            exp: now - 3600,
            ..self.claims(room, identity, Role::Participant)
        };
        self.sign(&claims)
    }

    /// Valid only from an hour from now.
    pub fn not_yet_valid_token(&self, room: &str, identity: &str) -> String {
        let now = unix_now();
        let claims = Claims { nbf: now + 3600, exp: now + 7200, ..self.claims(room, identity, Role::Participant) };
        self.sign(&claims)
    }

    /// Well-formed and current, but signed with another key.
    pub fn forged_token(&self, room: &str, identity: &str) -> String {
        TokenKey::random().issue(&self.claims(room, identity, Role::Host)).expect("token")
    }

    /// Opens `/ws?room=<room>` (Italian messages).
    pub async fn connect(&self, room: &str) -> WsClient {
        WsClient::connect(&self.ws_url(room)).await
    }

    /// Opens `/ws?room=<room>&lang=<lang>`.
    pub async fn connect_lang(&self, room: &str, lang: &str) -> WsClient {
        WsClient::connect(&format!("{}&lang={lang}", self.ws_url(room))).await
    }

    /// Connects, joins with a valid token and returns the client with its `welcome`.
    pub async fn join(&self, room: &str, identity: &str, role: Role) -> (WsClient, Value) {
        let mut client = self.connect(room).await;
        let welcome = client.join(&self.token(room, identity, role)).await;
        (client, welcome)
    }
}

/// What the server does to the socket after a fatal error or `leave`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closed {
    pub code: u16,
    pub reason: String,
    /// Text messages that arrived before the close frame.
    pub before: Vec<Value>,
}

/// A websocket client speaking the signaling protocol.
pub struct WsClient {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl WsClient {
    pub async fn connect(url: &str) -> WsClient {
        match tokio::time::timeout(TIMEOUT, tokio_tungstenite::connect_async(url)).await {
            Ok(Ok((ws, _response))) => WsClient { ws },
            Ok(Err(e)) => panic!("connecting to {url}: {e}"),
            Err(_) => panic!("connecting to {url} timed out"),
        }
    }

    pub async fn send_raw(&mut self, message: Message) {
        self.ws.send(message).await.expect("websocket send");
    }

    pub async fn send_text(&mut self, text: &str) {
        self.send_raw(Message::text(text)).await;
    }

    pub async fn send_json(&mut self, value: &Value) {
        self.send_text(&value.to_string()).await;
    }

    pub async fn send_binary(&mut self, bytes: Vec<u8>) {
        self.send_raw(Message::binary(bytes)).await;
    }

    /// Sends `join` and expects `welcome`; returns it.
    pub async fn join(&mut self, token: &str) -> Value {
        self.send_json(&json!({"v": 1, "type": "join", "token": token})).await;
        let welcome = self.recv_json().await;
        assert_eq!(welcome["type"], "welcome", "expected welcome, got {welcome}");
        welcome
    }

    pub async fn mute(&mut self, source: &str, muted: bool) {
        self.send_json(&json!({"v": 1, "type": "mute", "source": source, "muted": muted})).await;
    }

    pub async fn leave(&mut self) {
        self.send_json(&json!({"v": 1, "type": "leave"})).await;
    }

    /// The next text message within `timeout`, as JSON; `None` on timeout. Panics on anything
    /// but text (pings aside), in particular on a close.
    pub async fn try_recv_json(&mut self, timeout: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let frame = match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return None,
                Ok(frame) => frame,
            };
            match frame {
                Some(Ok(Message::Text(text))) => {
                    return Some(
                        serde_json::from_str(text.as_str())
                            .unwrap_or_else(|e| panic!("server sent non-JSON {text:?}: {e}")),
                    );
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                other => panic!("expected a text message, got {other:?}"),
            }
        }
    }

    /// The next text message as JSON; panics after [`TIMEOUT`].
    pub async fn recv_json(&mut self) -> Value {
        self.try_recv_json(TIMEOUT).await.unwrap_or_else(|| panic!("no message within {TIMEOUT:?}"))
    }

    /// Skips messages until one of type `kind` arrives; returns it.
    pub async fn recv_until(&mut self, kind: &str) -> Value {
        self.recv_until_collect(kind).await.1
    }

    /// Like [`recv_until`](Self::recv_until), also returning the skipped messages (to assert what
    /// did *not* happen before `kind`).
    pub async fn recv_until_collect(&mut self, kind: &str) -> (Vec<Value>, Value) {
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        let mut skipped = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.try_recv_json(left).await {
                Some(message) if message["type"] == kind => return (skipped, message),
                Some(message) => skipped.push(message),
                None => panic!("no {kind:?} within {TIMEOUT:?}; got {skipped:?}"),
            }
        }
    }

    /// Expects an `error` with `code` (skipping other messages); returns it.
    pub async fn expect_error(&mut self, code: &str) -> Value {
        let error = self.recv_until("error").await;
        assert_eq!(error["code"], code, "unexpected error {error}");
        assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()), "error without message: {error}");
        error
    }

    /// Everything that arrives within `window` (e.g. to assert that something does not arrive).
    pub async fn collect_for(&mut self, window: Duration) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + window;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.try_recv_json(left).await {
                Some(message) => seen.push(message),
                None => return seen,
            }
        }
    }

    /// Reads until the server's close frame and asserts its code; returns it with what came before.
    pub async fn expect_closed(&mut self, code: u16) -> Closed {
        self.expect_closed_within(code, TIMEOUT).await
    }

    /// [`expect_closed`](Self::expect_closed) with another timeout.
    pub async fn expect_closed_within(&mut self, code: u16, timeout: Duration) -> Closed {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut before = Vec::new();
        loop {
            let frame = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("no close within {timeout:?}; got {before:?}"));
            match frame {
                Some(Ok(Message::Text(text))) => {
                    before.push(serde_json::from_str(text.as_str()).unwrap_or(Value::String(text.to_string())))
                }
                Some(Ok(Message::Close(Some(CloseFrame { code: got, reason })))) => {
                    let closed = Closed { code: u16::from(got), reason: reason.to_string(), before };
                    assert_eq!(closed.code, code, "closed with another code: {closed:?}");
                    return closed;
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                other => panic!("expected a close frame {code}, got {other:?} after {before:?}"),
            }
        }
    }

    /// Closes from the client side with `code` without sending `leave` (like a closing tab).
    pub async fn close(mut self, code: u16) {
        let frame = CloseFrame { code: code.into(), reason: "".into() };
        let _ = self.ws.close(Some(frame)).await;
        // Let the handshake finish so the server sees a clean close.
        let _ = tokio::time::timeout(TIMEOUT, async { while let Some(Ok(_)) = self.ws.next().await {} }).await;
    }

    /// Drops the TCP connection without any websocket close (like a network loss).
    pub fn drop_connection(self) {
        drop(self.ws);
    }
}

/// A council session seeded straight into the store: a chair, councillors and agenda items.
pub struct SeededCouncil {
    pub chair: sportello_store::User,
    pub councillors: Vec<sportello_store::User>,
    pub session: sportello_store::CouncilSession,
}

impl SeededCouncil {
    /// The personal join link of a member (`user-<id>`) for the session's room.
    pub fn link(&self, server: &TestServer, user: &sportello_store::User, role: Role) -> String {
        let room = format!("council-{}", self.session.id);
        let claims =
            Claims::new(&room, &format!("user-{}", user.id), &user.display_name, role, Duration::from_secs(3600));
        server.join_link(&server.sign(&claims))
    }
}

impl TestServer {
    /// Seeds "Consiglio comunale" now, chaired by "Presidente", with these councillors and items.
    pub async fn seed_council(
        &self,
        councillors: &[&str],
        items: &[&str],
    ) -> Result<SeededCouncil, sportello_store::StoreError> {
        use sportello_store::{CouncilBody, NewCouncilSession, NewUser, StaffRole};
        let store = &self.server.store;
        let now = self.server.tokens.clock().now();
        let user =
            |name: &str, role| NewUser { email: format!("{name}@comune.example"), display_name: name.into(), role };
        let chair = store.create_user(&user("Presidente", StaffRole::Chair), now).await?;
        let mut members = Vec::new();
        for name in councillors {
            members.push(store.create_user(&user(name, StaffRole::Councillor), now).await?);
        }
        let session = store
            .create_council_session(
                &NewCouncilSession {
                    title: "Consiglio comunale".into(),
                    body: CouncilBody::Consiglio,
                    scheduled_at: now,
                    chair_id: chair.id.clone(),
                    quorum: "majority".into(),
                },
                now,
            )
            .await?;
        let ids: Vec<String> = members.iter().map(|m| m.id.clone()).collect();
        store.set_council_members(&session.id, &ids).await?;
        let items: Vec<(Option<String>, String)> = items.iter().map(|t| (None, (*t).to_owned())).collect();
        store.set_council_items(&session.id, &items).await?;
        Ok(SeededCouncil { chair, councillors: members, session })
    }
}

impl TestServer {
    /// An office open on weekdays during `weekday_hours` (e.g. `["08:30-12:30", "14:30-16:30"]`;
    /// none: always closed), at "Piazza del Municipio 1", with these members.
    pub async fn seed_office(
        &self,
        name: &str,
        weekday_hours: &[&str],
        members: &[String],
    ) -> Result<sportello_store::Office, sportello_store::StoreError> {
        seed_office(&self.server.store, name, weekday_hours, members, self.server.tokens.clock().now()).await
    }

    /// A 30-minute service offered in `modes` at these offices.
    pub async fn seed_service(
        &self,
        name: &str,
        modes: sportello_store::Modes,
        office_ids: &[String],
    ) -> Result<sportello_store::Service, sportello_store::StoreError> {
        seed_service(&self.server.store, name, modes, office_ids, self.server.tokens.clock().now()).await
    }

    /// A confirmed 30-minute video appointment of "Mario Rossi" (mario.rossi@example.org) starting
    /// `in_secs` from now on the server's clock (rounded down to 5 minutes).
    pub async fn seed_booking(
        &self,
        office_id: &str,
        service_id: &str,
        official_id: &str,
        code: &str,
        in_secs: i64,
    ) -> Result<sportello_store::Appointment, sportello_store::StoreError> {
        let now = self.server.tokens.clock().now();
        let start = (now + in_secs) / 300 * 300;
        let new = sportello_store::NewAppointment {
            code: code.to_owned(),
            secret_hash: format!("hash-{code}"),
            office_id: office_id.to_owned(),
            service_id: service_id.to_owned(),
            official_id: official_id.to_owned(),
            starts_at: start,
            ends_at: start + 1800,
            mode: sportello_store::Mode::Video,
            first_name: "Mario".into(),
            last_name: "Rossi".into(),
            email: "mario.rossi@example.org".into(),
            details: String::new(),
            lang: "it".into(),
        };
        self.server.store.book(&new, now).await
    }

    /// A confirmed video appointment `[starts_at, starts_at + 30 min)` (rounded down to 5 minutes)
    /// of "Carla Rossi" for "Carta d'identità" at office "Anagrafe" with official "Olga", each
    /// created for it.
    pub async fn seed_appointment(
        &self,
        starts_at: i64,
    ) -> Result<sportello_store::Appointment, sportello_store::StoreError> {
        seed_appointment(&self.server.store, starts_at, self.server.tokens.clock().now()).await
    }

    /// The first administrator ("Ada Admin", admin@comune.example, `password`) set up through their
    /// link: a cookie jar holding their session.
    pub async fn first_admin_client(&self, password: &str) -> reqwest::Client {
        let now = self.server.tokens.clock().now();
        let link = sportello_server::api::auth::first_admin_link(&self.server.store, &self.url(), now)
            .await
            .expect("store")
            .expect("a first-administrator link (no staff yet)");
        let http = reqwest::Client::builder().cookie_store(true).build().expect("client");
        let setup = http
            .post(format!("{}/api/auth/setup", self.url()))
            .json(&json!({"token": link.split_once('#').expect("secret").1, "password": password,
                          "email": "admin@comune.example", "display_name": "Ada Admin"}))
            .send()
            .await
            .expect("setup");
        assert_eq!(setup.status(), 200);
        http
    }
}

/// A fresh database on the test binary's throwaway PostgreSQL (started at the first call).
pub async fn postgres_url() -> String {
    tokio::task::spawn_blocking(sportello_store::testing::shared_postgres_database)
        .await
        .expect("join")
        .expect("a throwaway PostgreSQL starts")
}

/// Polls `probe` until it returns `Some`, for at most 30 s.
pub async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    for _ in 0..300 {
        if let Some(value) = probe().await {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("never: {what}");
}

/// The next Tuesday (strictly after today, in Rome) that is neither a holiday nor the day before
/// one: a working day whatever day CI runs on.
pub fn next_working_tuesday() -> jiff::civil::Date {
    let rome = sportello_domain::europe_rome().expect("tzdb");
    let mut d = jiff::Timestamp::now().to_zoned(rome).date().tomorrow().expect("date");
    loop {
        if d.weekday() == jiff::civil::Weekday::Tuesday {
            let holidays = sportello_domain::holiday_dates(d.year(), d.year() + 1, None).expect("holidays");
            if !holidays.contains(&d) && !holidays.contains(&d.tomorrow().expect("date")) {
                return d;
            }
        }
        d = d.tomorrow().expect("date");
    }
}

/// [`TestServer::seed_office`] on any store (e.g. a separate server process's database), at `now`.
pub async fn seed_office(
    store: &sportello_store::Store,
    name: &str,
    weekday_hours: &[&str],
    members: &[String],
    now: i64,
) -> Result<sportello_store::Office, sportello_store::StoreError> {
    let hours: Vec<Vec<&str>> = (0..7).map(|d| if d < 5 { weekday_hours.to_vec() } else { Vec::new() }).collect();
    let office = sportello_store::NewOffice {
        name: name.into(),
        description: String::new(),
        address: "Piazza del Municipio 1".into(),
        email: "anagrafe@comune.example".into(),
        phone: "+39 0000 000001".into(),
        opening_hours: serde_json::to_string(&hours).unwrap_or_default(),
    };
    let office = store.create_office(&office, now).await?;
    store.set_office_members(&office.id, members).await?;
    Ok(office)
}

/// [`TestServer::seed_service`] on any store, at `now`.
pub async fn seed_service(
    store: &sportello_store::Store,
    name: &str,
    modes: sportello_store::Modes,
    office_ids: &[String],
    now: i64,
) -> Result<sportello_store::Service, sportello_store::StoreError> {
    let service = sportello_store::NewService {
        name: name.into(),
        description: String::new(),
        duration_minutes: 30,
        what_to_bring: String::new(),
        modes,
        office_ids: office_ids.to_vec(),
    };
    store.create_service(&service, now).await
}

/// [`TestServer::seed_appointment`] on any store, at `now`.
pub async fn seed_appointment(
    store: &sportello_store::Store,
    starts_at: i64,
    now: i64,
) -> Result<sportello_store::Appointment, sportello_store::StoreError> {
    use sportello_store::{Mode, Modes, NewAppointment, NewUser, StaffRole};
    let official = NewUser {
        email: format!("o{starts_at}@comune.example"),
        display_name: "Olga".into(),
        role: StaffRole::Official,
    };
    let official = store.create_user(&official, now).await?;
    let office = seed_office(store, "Anagrafe", &[], std::slice::from_ref(&official.id), now).await?;
    let service = seed_service(store, "Carta d'identità", Modes::Video, std::slice::from_ref(&office.id), now).await?;
    let starts_at = starts_at - starts_at % 300;
    let appointment = NewAppointment {
        code: format!("C{starts_at}"),
        secret_hash: "x".into(),
        office_id: office.id,
        service_id: service.id,
        official_id: official.id,
        starts_at,
        ends_at: starts_at + 1800,
        mode: Mode::Video,
        first_name: "Carla".into(),
        last_name: "Rossi".into(),
        email: "carla@example.org".into(),
        details: String::new(),
        lang: "it".into(),
    };
    store.book(&appointment, now).await
}
