//! The walk-in video desk (docs/walkin.md) end to end: citizens queue over the public REST API
//! without an account, officials take them with «Prossimo», hand them to colleagues and call them
//! back; the rooms `walkin-<id>` are joined over real websockets; attendance, the retention pass's
//! no-show and the office figures are compared with what the test computes by hand; the queue
//! survives a `kill -9` of the real binary.
//!
//! Every in-process server runs on a clock shifted to the next working Tuesday at 10:00 in
//! Europe/Rome (not a holiday, nor next to one). The offices are open Monday–Friday
//! 08:00–13:00 (their officials have no personal pattern, so they are on duty then) and their video
//! desk 09:00–12:00. The scenarios whose outcome depends on the database run on SQLite and on a
//! throwaway PostgreSQL (`_on_sqlite` / `_on_postgres`).
//!
//! The restart test needs `target/<profile>/sportello` (`cargo build -p sportello-server --bin sportello`).

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use jiff::Timestamp;
use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;
use serde_json::{Value, json};
use sportello_backoffice::clock::Clock;
use sportello_backoffice::retention;
use sportello_backoffice::token::{Claims, Role};
use sportello_store::{
    Mode, Modes, NewAppointment, NewUser, NewWalkin, StaffRole, Status, Store, WalkinChange, WalkinState,
};
use sportello_tests::server::{TestServer, WsClient, eventually};
use sqlx::Row;

const PASSWORD: &str = "sportello-video-2027";
/// Monday–Friday 08:00–13:00: the officials' working hours (no personal pattern).
const OPENING: &str = r#"[["08:00-13:00"],["08:00-13:00"],["08:00-13:00"],["08:00-13:00"],["08:00-13:00"],[],[]]"#;
/// Monday–Friday 09:00–12:00: the video desk.
const DESK: &str = r#"[["09:00-12:00"],["09:00-12:00"],["09:00-12:00"],["09:00-12:00"],["09:00-12:00"],[],[]]"#;

// --- time -----------------------------------------------------------------------------------------

fn rome() -> TimeZone {
    sportello_domain::europe_rome().expect("tzdb")
}

/// The next Tuesday (strictly after today) that is not a holiday, nor the day before or after one.
fn next_tuesday() -> Date {
    let today = Timestamp::now().to_zoned(rome()).date();
    let mut d = today.tomorrow().expect("date");
    loop {
        if d.weekday() == Weekday::Tuesday {
            let holidays = sportello_domain::holiday_dates(d.year(), d.year() + 1, None).expect("holidays");
            let (monday, wednesday) = (d.yesterday().expect("date"), d.tomorrow().expect("date"));
            if !holidays.contains(&d) && !holidays.contains(&wednesday) && !holidays.contains(&monday) {
                return d;
            }
        }
        d = d.tomorrow().expect("date");
    }
}

/// Unix seconds of `d` at `h:m:s`, Rome time.
fn local(d: Date, h: i8, m: i8, s: i8) -> i64 {
    d.at(h, m, s, 0).to_zoned(rome()).expect("local time").timestamp().as_second()
}

fn parse_ts(text: &str) -> i64 {
    text.parse::<Timestamp>().unwrap_or_else(|e| panic!("{text:?} is not RFC 3339: {e}")).as_second()
}

// --- HTTP -----------------------------------------------------------------------------------------

/// Status, content type and body of an answer.
struct Reply {
    status: u16,
    content_type: String,
    text: String,
}

impl Reply {
    fn json(&self) -> Value {
        if self.text.is_empty() {
            return Value::Null;
        }
        serde_json::from_str(&self.text).unwrap_or_else(|_| panic!("not JSON ({}): {}", self.status, self.text))
    }

    fn code(&self) -> String {
        self.json()["error"]["code"].as_str().unwrap_or_default().to_owned()
    }

    #[track_caller]
    fn ok(self, status: u16) -> Value {
        assert_eq!(self.status, status, "{}", self.text);
        self.json()
    }

    #[track_caller]
    fn err(self, status: u16, code: &str) {
        assert_eq!((self.status, self.code().as_str()), (status, code), "{}", self.text);
    }
}

/// One HTTP client (a browser, a citizen's phone) talking to one server.
#[derive(Clone)]
struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        let response = tokio::time::timeout(Duration::from_secs(30), request.send())
            .await
            .expect("an answer within 30 s")
            .expect("request");
        let status = response.status().as_u16();
        let content_type =
            response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        Reply { status, content_type, text: response.text().await.expect("body") }
    }

    async fn get(&self, path: &str) -> Reply {
        self.send(self.http.get(format!("{}{path}", self.base))).await
    }

    async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(self.http.post(format!("{}{path}", self.base)).json(&body)).await
    }

    async fn put(&self, path: &str, body: Value) -> Reply {
        self.send(self.http.put(format!("{}{path}", self.base)).json(&body)).await
    }

    /// A citizen's ticket call (`X-Walkin-Secret`).
    async fn ticket(&self, id: &str, secret: &str) -> Reply {
        let request = self.http.get(format!("{}/api/public/walkins/{id}", self.base)).header("X-Walkin-Secret", secret);
        self.send(request).await
    }

    async fn ticket_post(&self, id: &str, action: &str, secret: &str, body: Value) -> Reply {
        let request = self
            .http
            .post(format!("{}/api/public/walkins/{id}/{action}", self.base))
            .header("X-Walkin-Secret", secret)
            .json(&body);
        self.send(request).await
    }
}

/// A client leaving from its own loopback address (127.10.x.y): the desk lets one address take
/// only a few tickets a minute, and each citizen is someone else.
fn citizen_client(base: &str) -> Api {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let ip =
        Ipv4Addr::new(127, 10, u8::try_from(n / 200 % 250).expect("small"), u8::try_from(n % 200 + 2).expect("small"));
    let http = reqwest::Client::builder().local_address(IpAddr::V4(ip)).build().expect("client");
    Api { http, base: base.to_owned() }
}

/// A staff member's browser: logged in, the session cookie in its jar.
async fn logged_in(base: &str, email: &str) -> Api {
    let http = reqwest::Client::builder().cookie_store(true).build().expect("client");
    let api = Api { http, base: base.to_owned() };
    api.post("/api/auth/login", json!({"email": email, "password": PASSWORD})).await.ok(200);
    api
}

fn password_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| sportello_backoffice::secrets::hash_password_blocking(PASSWORD).expect("hash"))
}

/// A staff member created straight in the store with [`PASSWORD`].
async fn staff_user(store: &Store, name: &str, role: StaffRole) -> sportello_store::User {
    let new = NewUser { email: format!("{}@comune.example", name.to_lowercase()), display_name: name.into(), role };
    let user = store.create_user(&new, 0).await.expect("user");
    store.set_password(&user.id, password_hash(), 0).await.expect("password");
    user
}

/// The `t` of a `/join?t=` link.
fn token_of(url: &str) -> String {
    let (_, token) = url.split_once("/join?t=").unwrap_or_else(|| panic!("no /join?t= in {url}"));
    token.split(|c: char| c.is_whitespace() || c == '&').next().expect("token").to_owned()
}

// --- the world ------------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Backend {
    Sqlite,
    Postgres,
}

struct Official {
    id: String,
    name: String,
    api: Api,
}

/// A server on Tuesday 10:00 with two offices with a desk: «Anagrafe» (Anna, Bruno) and «Tributi»
/// (Carlo); Dora is an official of no office yet; a 30-minute service at Anagrafe.
struct World {
    test: TestServer,
    clock: Clock,
    store: Store,
    tuesday: Date,
    anagrafe: String,
    tributi: String,
    service: String,
    anna: Official,
    bruno: Official,
    carlo: Official,
    dora: Official,
}

impl World {
    async fn new(backend: Backend) -> World {
        let database_url = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(sportello_tests::server::postgres_url().await),
        };
        let tuesday = next_tuesday();
        let clock = Clock::offset(local(tuesday, 10, 0, 0) - Timestamp::now().as_second());
        let test = TestServer::start_at(clock.clone(), |c| {
            // No reminder emails in the outbox the callback test reads.
            c.reminder_lead = Duration::from_secs(1);
            c.database_url = database_url;
        })
        .await;
        let store = test.server.store.clone();
        let now = clock.now();
        let users = [
            staff_user(&store, "Anna", StaffRole::Official).await,
            staff_user(&store, "Bruno", StaffRole::Official).await,
            staff_user(&store, "Carlo", StaffRole::Official).await,
            staff_user(&store, "Dora", StaffRole::Official).await,
        ];
        let office = |name: &str, members: Vec<String>| {
            let store = store.clone();
            let name = name.to_owned();
            async move {
                let new = sportello_store::NewOffice {
                    name: name.clone(),
                    description: String::new(),
                    address: "Piazza del Municipio 1".into(),
                    email: format!("{}@comune.example", name.to_lowercase()),
                    phone: "+39 0000 000001".into(),
                    opening_hours: OPENING.into(),
                };
                let office = store.create_office(&new, now).await.expect("office");
                store.set_office_members(&office.id, &members).await.expect("members");
                store.set_desk_hours(&office.id, DESK).await.expect("desk hours");
                office.id
            }
        };
        let anagrafe = office("Anagrafe", vec![users[0].id.clone(), users[1].id.clone()]).await;
        let tributi = office("Tributi", vec![users[2].id.clone()]).await;
        let service = sportello_tests::server::seed_service(
            &store,
            "Carta d'identità",
            Modes::Video,
            std::slice::from_ref(&anagrafe),
            now,
        )
        .await
        .expect("service")
        .id;
        let base = test.url();
        let mut officials = Vec::new();
        for user in users {
            officials.push(Official { api: logged_in(&base, &user.email).await, id: user.id, name: user.display_name });
        }
        let [anna, bruno, carlo, dora]: [Official; 4] = officials.try_into().ok().expect("four");
        World { test, clock, store, tuesday, anagrafe, tributi, service, anna, bruno, carlo, dora }
    }

    fn now(&self) -> i64 {
        self.clock.now()
    }

    /// Moves the server's clock to `target` (Unix seconds).
    fn advance_to(&self, target: i64) {
        self.clock.advance(target - self.clock.now());
    }

    fn public(&self) -> Api {
        citizen_client(&self.test.url())
    }

    /// A citizen queues at `office`: the answer (201) and the client that holds the ticket.
    async fn queue_at(&self, office: &str, name: &str, email: Option<&str>) -> Citizen {
        let api = self.public();
        let mut body = json!({"name": name, "lang": "it"});
        if let Some(email) = email {
            body["email"] = json!(email);
        }
        let ticket = api.post(&format!("/api/public/offices/{office}/walkins"), body).await.ok(201);
        Citizen {
            id: ticket["id"].as_str().expect("id").to_owned(),
            secret: ticket["secret"].as_str().expect("the secret, once").to_owned(),
            ticket,
            api,
        }
    }

    async fn queue(&self, name: &str) -> Citizen {
        self.queue_at(&self.anagrafe, name, None).await
    }

    async fn desk_of(&self, official: &Official) -> Value {
        official.api.get("/api/staff/desk").await.ok(200)
    }

    /// «Prossimo» at `office` by `official`: the `Called` answer.
    async fn next(&self, official: &Official, office: &str) -> Value {
        official.api.post(&format!("/api/staff/offices/{office}/next"), json!({})).await.ok(200)
    }

    /// A websocket into `room`, joined with `token`; panics unless `welcome`.
    async fn join(&self, room: &str, token: &str) -> WsClient {
        let mut client = self.test.connect(room).await;
        client.join(token).await;
        client
    }

    /// A join with `token` refused as revoked (`link_revoked`, close 4004).
    async fn join_refused(&self, room: &str, token: &str) {
        let mut client = self.test.connect(room).await;
        client.send_json(&json!({"v": 1, "type": "join", "token": token})).await;
        let closed = client.expect_closed(4004).await;
        assert!(closed.before.iter().any(|m| m["code"] == "link_revoked"), "{closed:?}");
    }

    /// A host token for `room` signed by the server's key for `official`, as any host link is:
    /// what it grants is for the room's rules to say.
    fn host_token(&self, room: &str, official: &Official) -> String {
        let now = u64::try_from(self.now()).expect("positive");
        let claims = Claims::new_at(
            now,
            room,
            &format!("user-{}", official.id),
            &official.name,
            Role::Host,
            Duration::from_secs(3600),
        );
        self.test.sign(&claims)
    }

    async fn walkin(&self, id: &str) -> sportello_store::Walkin {
        self.store.walkin(id).await.expect("load").expect("exists")
    }

    /// The walk-in's audit as `(actor, action)`.
    async fn trail(&self, id: &str) -> Vec<(String, String)> {
        self.store.walkin_events(id).await.expect("events").into_iter().map(|e| (e.actor, e.action)).collect()
    }

    /// The emails in the outbox addressed to `to`, decoded: (subject, text).
    fn emails_to(&self, to: &str) -> Vec<(String, String)> {
        emails_in(&self.test.data_dir().join("outbox"))
            .into_iter()
            .filter(|(recipient, _, _)| recipient.contains(to))
            .map(|(_, subject, text)| (subject, text))
            .collect()
    }
}

/// A citizen holding a ticket.
struct Citizen {
    id: String,
    secret: String,
    /// The answer that created it.
    ticket: Value,
    api: Api,
}

impl Citizen {
    /// Polls the ticket (a "seen"); 200 expected.
    async fn poll(&self) -> Value {
        self.api.ticket(&self.id, &self.secret).await.ok(200)
    }

    fn room(&self) -> String {
        format!("walkin-{}", self.id)
    }
}

/// `(To, Subject, decoded text)` of every `.eml` in `outbox`.
fn emails_in(outbox: &Path) -> Vec<(String, String, String)> {
    use mailparse::MailHeaderMap;
    let Ok(dir) = std::fs::read_dir(outbox) else { return Vec::new() };
    let mut out = Vec::new();
    for path in dir.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "eml")) {
        let raw = std::fs::read(&path).expect("eml");
        let parsed = mailparse::parse_mail(&raw).expect("an email");
        let mut text = String::new();
        let mut stack = vec![&parsed];
        while let Some(part) = stack.pop() {
            stack.extend(part.subparts.iter());
            if part.ctype.mimetype == "text/plain" {
                text.push_str(&part.get_body().expect("body"));
            }
        }
        let header = |name| parsed.headers.get_first_value(name).unwrap_or_default();
        out.push((header("To"), header("Subject"), text));
    }
    out
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array().expect("a list").iter().map(|e| e["id"].as_str().expect("id").to_owned()).collect()
}

/// The entry of `desk.offices` for `office`.
fn queue_of<'a>(desk: &'a Value, office: &str) -> &'a Value {
    desk["offices"]
        .as_array()
        .expect("offices")
        .iter()
        .find(|o| o["office_id"] == office)
        .unwrap_or_else(|| panic!("office {office} not on the desk: {desk}"))
}

/// Each scenario as two tests: on SQLite and on a throwaway PostgreSQL.
macro_rules! scenarios {
    ($($sqlite:ident, $postgres:ident => $scenario:ident;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $sqlite() {
            $scenario(World::new(Backend::Sqlite).await).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $postgres() {
            $scenario(World::new(Backend::Postgres).await).await;
        }
    )*};
}

scenarios! {
    positions_queue_and_the_room_on_sqlite, positions_queue_and_the_room_on_postgres => positions_queue_and_the_room;
    three_officials_pressing_next_together_on_sqlite, three_officials_pressing_next_together_on_postgres => three_officials_pressing_next_together;
    forty_citizens_queueing_at_once_on_sqlite, forty_citizens_queueing_at_once_on_postgres => forty_citizens_queueing_at_once;
    hand_off_to_a_colleague_of_another_office_on_sqlite, hand_off_to_a_colleague_of_another_office_on_postgres => hand_off_to_a_colleague_of_another_office;
    grace_period_on_sqlite, grace_period_on_postgres => grace_period;
    leave_absent_and_callback_on_sqlite, leave_absent_and_callback_on_postgres => leave_absent_and_callback;
    closed_desk_on_sqlite, closed_desk_on_postgres => closed_desk;
    no_show_and_its_correction_on_sqlite, no_show_and_its_correction_on_postgres => no_show_and_its_correction;
    attendance_of_an_appointment_on_sqlite, attendance_of_an_appointment_on_postgres => attendance_of_an_appointment;
    figures_match_a_hand_computation_on_sqlite, figures_match_a_hand_computation_on_postgres => figures_match_a_hand_computation;
    retention_closes_and_forgets_old_walkins_on_sqlite, retention_closes_and_forgets_old_walkins_on_postgres => retention_closes_and_forgets_old_walkins;
}

// --- 1. positions, «Prossimo» and the walk-in's room ----------------------------------------------

async fn positions_queue_and_the_room(w: World) {
    let public = w.public();
    let status = public.get(&format!("/api/public/offices/{}/desk", w.anagrafe)).await.ok(200);
    assert_eq!((status["has_desk"].clone(), status["open"].clone()), (json!(true), json!(true)), "{status}");
    assert_eq!(status["on_duty"], 2, "Anna and Bruno are on duty: {status}");
    assert_eq!(status["waiting"], 0);
    // Nobody waits: someone joining now is first, 600 s ÷ 2 officials = 5 minutes.
    assert_eq!(status["estimated_wait_minutes"], 5);
    assert!(status["opens_at"].is_null());
    assert_eq!(parse_ts(status["closes_at"].as_str().expect("closes_at")), local(w.tuesday, 12, 0, 0));

    let ada = w.queue("Ada Lovelace").await;
    let ben = w.queue("Ben Franklin").await;
    assert_eq!((ada.ticket["state"].as_str(), ada.ticket["position"].as_u64()), (Some("waiting"), Some(1)));
    assert_eq!(ben.ticket["position"], 2);
    assert_ne!(ada.secret, ben.secret);

    let a = ada.poll().await;
    let b = ben.poll().await;
    assert!(a.get("secret").is_none(), "the secret is shown once only: {a}");
    assert_eq!((a["position"].as_u64(), b["position"].as_u64()), (Some(1), Some(2)));
    // Position × 600 s ÷ 2 officials on duty, rounded up to minutes: 5 and 10.
    assert_eq!((a["estimated_wait_minutes"].as_u64(), b["estimated_wait_minutes"].as_u64()), (Some(5), Some(10)));
    assert_eq!(a["callback_offered"], false);
    assert!(a["join_url"].is_null());
    let status = public.get(&format!("/api/public/offices/{}/desk", w.anagrafe)).await.ok(200);
    assert_eq!((status["waiting"].as_u64(), status["estimated_wait_minutes"].as_u64()), (Some(2), Some(15)));

    // Wrong, missing or another ticket's secret, or an unknown id: 404 alike.
    public.ticket(&ada.id, "not-the-secret").await.err(404, "not_found");
    public.ticket(&ada.id, &ben.secret).await.err(404, "not_found");
    public.ticket(&ada.id, "").await.err(404, "not_found");
    public.ticket("no-such-walkin", &ada.secret).await.err(404, "not_found");

    // Both officials of the office see both, in order; Carlo (Tributi) does not.
    for official in [&w.anna, &w.bruno] {
        let desk = w.desk_of(official).await;
        let queue = queue_of(&desk, &w.anagrafe);
        assert_eq!(ids(&queue["waiting"]), [ada.id.as_str(), ben.id.as_str()], "{desk}");
        let positions: Vec<u64> = queue["waiting"]
            .as_array()
            .expect("waiting")
            .iter()
            .map(|e| e["position"].as_u64().expect("pos"))
            .collect();
        assert_eq!(positions, [1, 2]);
        assert_eq!(queue["open"], true);
    }
    let carlo_desk = w.desk_of(&w.carlo).await;
    assert!(!carlo_desk["offices"].as_array().expect("offices").iter().any(|o| o["office_id"] == w.anagrafe));
    // Carlo may not press «Prossimo» at an office he does not work in.
    w.carlo.api.post(&format!("/api/staff/offices/{}/next", w.anagrafe), json!({})).await.err(404, "not_found");

    // «Prossimo»: Anna gets Ada, with a host link into her room.
    let called = w.next(&w.anna, &w.anagrafe).await;
    assert_eq!(called["walkin"]["id"], ada.id.as_str(), "{called}");
    assert_eq!(called["walkin"]["state"], "serving");
    assert_eq!(called["link"]["room"], ada.room().as_str());
    let anna_link = called["link"]["url"].as_str().expect("url").to_owned();
    assert!(anna_link.contains("/join?t="), "{anna_link}");

    let b = ben.poll().await;
    assert_eq!((b["position"].as_u64(), b["estimated_wait_minutes"].as_u64()), (Some(1), Some(5)));
    let a = ada.poll().await;
    assert_eq!(a["state"], "serving");
    assert!(a["position"].is_null());
    let citizen_link = a["join_url"].as_str().expect("a join_url once served").to_owned();
    assert!(citizen_link.contains("/join?t="), "{citizen_link}");

    let desk = w.desk_of(&w.anna).await;
    assert_eq!(ids(&desk["mine"]), [ada.id.as_str()]);
    let serving = &queue_of(&desk, &w.anagrafe)["serving"];
    assert_eq!(ids(serving), [ada.id.as_str()]);
    assert_eq!(serving[0]["official_id"], w.anna.id.as_str());
    assert_eq!(ids(&queue_of(&desk, &w.anagrafe)["waiting"]), [ben.id.as_str()]);
    assert!(ids(&w.desk_of(&w.bruno).await["mine"]).is_empty());
    // Presence as Bruno sees it: Anna serves a walk-in (in a call), Carlo is free, Dora (no office,
    // no pattern) is off; Bruno is not among his own colleagues.
    let colleagues: HashMap<String, Value> = w.desk_of(&w.bruno).await["colleagues"]
        .as_array()
        .expect("colleagues")
        .iter()
        .map(|c| (c["user_id"].as_str().expect("id").to_owned(), c.clone()))
        .collect();
    assert!(!colleagues.contains_key(&w.bruno.id));
    let presence = |o: &Official| {
        let c = &colleagues[&o.id];
        (c["location"].as_str().map(str::to_owned), c["in_call"].as_bool(), c["available"].as_bool())
    };
    let on_site = Some("on_site".to_owned());
    assert_eq!(presence(&w.anna), (on_site.clone(), Some(true), Some(false)));
    assert_eq!(presence(&w.carlo), (on_site, Some(false), Some(true)));
    assert_eq!(presence(&w.dora), (Some("off".to_owned()), Some(false), Some(false)));
    assert_eq!(colleagues[&w.carlo.id]["offices"], json!(["Tributi"]));

    // Anna may get her host link again (a closed tab); nobody else may.
    let again = w.anna.api.post(&format!("/api/staff/walkins/{}/join", ada.id), json!({})).await.ok(200);
    assert_eq!(again["room"], ada.room().as_str());
    w.bruno.api.post(&format!("/api/staff/walkins/{}/join", ada.id), json!({})).await.err(404, "not_found");
    w.anna.api.post(&format!("/api/staff/walkins/{}/join", ben.id), json!({})).await.err(404, "not_found");

    // The citizen's link enters straight (no lobby); so does Anna's host link.
    let room = ada.room();
    let mut citizen = w.join(&room, &token_of(&citizen_link)).await;
    let mut anna = w.join(&room, &token_of(&anna_link)).await;
    citizen.recv_until("participant_joined").await;

    // Another official's host token for the room is refused: Bruno (same office) and Carlo.
    w.join_refused(&room, &w.host_token(&room, &w.bruno)).await;
    w.join_refused(&room, &w.host_token(&room, &w.carlo)).await;
    // Calling someone into a room one does not serve is refused.
    w.bruno.api.post("/api/staff/calls", json!({"to_user": w.carlo.id, "room": room})).await.err(404, "not_found");

    // Unless Anna calls Carlo in: his desk rings, his answer's link (and any host token of his) enters.
    let call = w
        .anna
        .api
        .post("/api/staff/calls", json!({"to_user": w.carlo.id, "room": room, "note": "Serve un parere sui tributi"}))
        .await
        .ok(200);
    assert_eq!(call["room"], room.as_str());
    let carlo_desk = w.desk_of(&w.carlo).await;
    let calls = carlo_desk["calls"].as_array().expect("calls");
    assert_eq!(calls.len(), 1, "{carlo_desk}");
    assert_eq!(
        (calls[0]["room"].as_str(), calls[0]["from_user"].as_str()),
        (Some(room.as_str()), Some(w.anna.id.as_str()))
    );
    assert_eq!(calls[0]["note"], "Serve un parere sui tributi");
    let answered = w
        .carlo
        .api
        .post(&format!("/api/staff/calls/{}/answer", calls[0]["id"].as_str().expect("id")), json!({}))
        .await
        .ok(200);
    assert_eq!(answered["room"], room.as_str());
    let mut carlo = w.join(&room, &token_of(answered["url"].as_str().expect("url"))).await;
    assert!(w.desk_of(&w.carlo).await["calls"].as_array().expect("calls").is_empty(), "an answered call rings no more");
    // Bruno, still not called, is still refused; so is Dora, called in but declining.
    w.join_refused(&room, &w.host_token(&room, &w.bruno)).await;
    w.anna.api.post("/api/staff/calls", json!({"to_user": w.dora.id, "room": room})).await.ok(200);
    let ringing = w.desk_of(&w.dora).await["calls"][0]["id"].as_str().expect("a call").to_owned();
    let reply = w.dora.api.post(&format!("/api/staff/calls/{ringing}/decline"), json!({})).await;
    assert_eq!(reply.status, 204, "{}", reply.text);
    w.dora.api.post(&format!("/api/staff/calls/{ringing}/answer"), json!({})).await.err(404, "not_found");
    w.join_refused(&room, &w.host_token(&room, &w.dora)).await;
    // Nobody calls themselves or an unknown user.
    for to in [w.anna.id.as_str(), "nessuno"] {
        w.anna.api.post("/api/staff/calls", json!({"to_user": to, "room": room})).await.err(400, "unknown_colleague");
    }

    // Everybody leaves after the citizen and the official met: the room's end closes the walk-in.
    for client in [&mut citizen, &mut anna, &mut carlo] {
        client.leave().await;
    }
    for client in [citizen, anna, carlo] {
        let mut client = client;
        client.expect_closed(1000).await;
    }
    eventually("the walk-in is done once its room ended", || async {
        (w.walkin(&ada.id).await.state == WalkinState::Done).then_some(())
    })
    .await;
    let done = w.walkin(&ada.id).await;
    assert!(done.ended_at.is_some() && done.called_at.is_some());
    assert_eq!(ada.poll().await["state"], "done");
    let trail = w.trail(&ada.id).await;
    let user = |o: &Official| format!("user:{}", o.id);
    assert_eq!(
        trail,
        [
            ("citizen".to_owned(), "queued".to_owned()),
            (user(&w.anna), "called".to_owned()),
            ("system".to_owned(), "done".to_owned())
        ]
    );
    // Over: the citizen's link and Anna's are refused now.
    w.join_refused(&room, &token_of(&citizen_link)).await;
    w.join_refused(&room, &token_of(&anna_link)).await;
    assert!(ids(&w.desk_of(&w.anna).await["mine"]).is_empty());
}

// --- 2. three officials pressing «Prossimo» together ------------------------------------------------

async fn three_officials_pressing_next_together(w: World) {
    let members = [w.anna.id.clone(), w.bruno.id.clone(), w.dora.id.clone()];
    w.store.set_office_members(&w.anagrafe, &members).await.expect("members");
    let officials = [&w.anna, &w.bruno, &w.dora];
    for round in 0..3 {
        let mut queue = Vec::new();
        for i in 0..20 {
            queue.push(w.queue(&format!("Cittadino {round}-{i:02}")).await.id);
        }
        let position: HashMap<&str, usize> = queue.iter().enumerate().map(|(i, id)| (id.as_str(), i)).collect();
        // The order the answers came back in, over all three (for the failure message only: answers
        // overtake each other on the way back).
        let answered = Arc::new(Mutex::new(Vec::new()));
        let press = |official: &Official| {
            let (api, office, answered) = (official.api.clone(), w.anagrafe.clone(), answered.clone());
            let name = official.name.clone();
            async move {
                let mut mine = Vec::new();
                loop {
                    let reply = api.post(&format!("/api/staff/offices/{office}/next"), json!({})).await;
                    match reply.status {
                        200 => {
                            let id = reply.json()["walkin"]["id"].as_str().expect("id").to_owned();
                            answered.lock().expect("answered").push((name.clone(), id.clone()));
                            mine.push(id);
                        }
                        409 => {
                            assert_eq!(reply.code(), "queue_empty", "{}", reply.text);
                            return mine;
                        }
                        other => panic!("«Prossimo» answered {other}: {}", reply.text),
                    }
                }
            }
        };
        let (a, b, d) = tokio::join!(press(officials[0]), press(officials[1]), press(officials[2]));
        let answered = answered.lock().expect("answered").clone();
        // Every citizen exactly once, nobody else.
        let all: Vec<&String> = a.iter().chain(&b).chain(&d).collect();
        assert_eq!(all.len(), queue.len(), "round {round}: taken {all:?}");
        let taken: BTreeSet<&String> = all.iter().copied().collect();
        assert_eq!(taken.len(), queue.len(), "round {round}: someone was taken twice: {answered:?}");
        assert_eq!(taken, queue.iter().collect::<BTreeSet<_>>(), "round {round}");
        // Each official's own sequence goes forward in the queue.
        for (official, mine) in officials.iter().zip([&a, &b, &d]) {
            let places: Vec<usize> = mine.iter().map(|id| position[id.as_str()]).collect();
            assert!(places.windows(2).all(|p| p[0] < p[1]), "round {round}: {} took {places:?}", official.name);
        }
        // The store's take order (its `called` audit rows, whose ids increase in the order they
        // were written, inside each taker's compare-and-set) is exactly the queue order.
        let rows = sqlx::query("SELECT walkin_id, actor FROM walkin_events WHERE action = 'called' ORDER BY id")
            .fetch_all(w.store.pool())
            .await
            .expect("events");
        let took: Vec<(String, String)> = rows
            .iter()
            .map(|r| {
                (r.try_get::<String, _>("walkin_id").expect("id"), r.try_get::<String, _>("actor").expect("actor"))
            })
            .filter(|(id, _)| position.contains_key(id.as_str()))
            .collect();
        let take_order: Vec<&String> = took.iter().map(|(id, _)| id).collect();
        assert_eq!(take_order, queue.iter().collect::<Vec<_>>(), "round {round}: answers came as {answered:?}");
        // Who the store says took each one is who got it over HTTP.
        for (official, mine) in officials.iter().zip([&a, &b, &d]) {
            for id in mine {
                let walkin = w.walkin(id).await;
                assert_eq!(
                    (walkin.state, walkin.official_id.as_deref()),
                    (WalkinState::Serving, Some(official.id.as_str()))
                );
                assert!(took.contains(&(id.clone(), format!("user:{}", official.id))));
            }
        }
        // Close them all, each by the official who took them (nobody else can).
        for (official, mine) in officials.iter().zip([&a, &b, &d]) {
            for id in mine {
                let other = officials.iter().find(|o| o.id != official.id).expect("another");
                other.api.post(&format!("/api/staff/walkins/{id}/finish"), json!({})).await.err(404, "not_found");
                let reply = official.api.post(&format!("/api/staff/walkins/{id}/finish"), json!({})).await;
                assert_eq!(reply.status, 204, "{}", reply.text);
            }
        }
    }
}

/// Forty citizens pressing «Mettiti in coda» at the same instant all get a place, each their own.
async fn forty_citizens_queueing_at_once(w: World) {
    let citizens: Vec<Api> = (0..40).map(|_| w.public()).collect();
    let replies = futures_util::future::join_all(citizens.iter().enumerate().map(|(i, api)| {
        let office = w.anagrafe.clone();
        async move {
            api.post(&format!("/api/public/offices/{office}/walkins"), json!({"name": format!("Persona {i}")})).await
        }
    }))
    .await;
    let refused: Vec<String> =
        replies.iter().filter(|r| r.status != 201).map(|r| format!("{} {}", r.status, r.text)).collect();
    assert!(refused.is_empty(), "queueing at once refused {} of 40: {refused:?}", refused.len());
    let walkins = w.store.walkins_in(std::slice::from_ref(&w.anagrafe), &[WalkinState::Waiting]).await.expect("queue");
    assert_eq!(walkins.len(), 40);
    let seqs: BTreeSet<i64> = walkins.iter().map(|w| w.seq).collect();
    assert_eq!(seqs.len(), 40, "two tickets share a place in the queue");
    // Each sees its own place, 1 to 20.
    let mut positions = Vec::new();
    for (api, reply) in citizens.iter().zip(&replies) {
        let t = reply.json();
        let now = api.ticket(t["id"].as_str().expect("id"), t["secret"].as_str().expect("secret")).await.ok(200);
        positions.push(now["position"].as_u64().expect("position"));
    }
    positions.sort_unstable();
    assert_eq!(positions, (1..=40).collect::<Vec<u64>>());
}

// --- 3. hand-off --------------------------------------------------------------------------------------

async fn hand_off_to_a_colleague_of_another_office(w: World) {
    let eli = w.queue("Elisa Neri").await;
    let called = w.next(&w.anna, &w.anagrafe).await;
    assert_eq!(called["walkin"]["id"], eli.id.as_str());
    let anna_link = called["link"]["url"].as_str().expect("url").to_owned();
    let citizen_link = eli.poll().await["join_url"].as_str().expect("join_url").to_owned();
    let room = eli.room();
    let mut citizen = w.join(&room, &token_of(&citizen_link)).await;
    let mut anna = w.join(&room, &token_of(&anna_link)).await;

    // Refusals first: nobody but whoever serves it hands it off; not to oneself, an unknown user
    // or an administrator; a note of at most 300 characters.
    let handoff = |note: &str, to: &str| json!({"to_user": to, "note": note});
    w.bruno
        .api
        .post(&format!("/api/staff/walkins/{}/handoff", eli.id), handoff("x", &w.carlo.id))
        .await
        .err(404, "not_found");
    for to in [w.anna.id.as_str(), "nessuno"] {
        w.anna
            .api
            .post(&format!("/api/staff/walkins/{}/handoff", eli.id), handoff("x", to))
            .await
            .err(400, "unknown_colleague");
    }
    let long = "n".repeat(301);
    w.anna
        .api
        .post(&format!("/api/staff/walkins/{}/handoff", eli.id), handoff(&long, &w.carlo.id))
        .await
        .err(400, "invalid_note");
    assert_eq!(w.walkin(&eli.id).await.state, WalkinState::Serving);

    // Anna calls Bruno in while she serves her (he does not answer).
    w.anna.api.post("/api/staff/calls", json!({"to_user": w.bruno.id, "room": room})).await.ok(200);
    let note = "Chiede della TARI 2026";
    let reply = w.anna.api.post(&format!("/api/staff/walkins/{}/handoff", eli.id), handoff(note, &w.carlo.id)).await;
    assert_eq!(reply.status, 204, "{}", reply.text);
    let t = eli.poll().await;
    assert_eq!(t["state"], "transferring");
    assert!(t["join_url"].as_str().map(token_of).is_some(), "the citizen keeps a link: {t}");

    let desk = w.desk_of(&w.carlo).await;
    let transfers = desk["transfers"].as_array().expect("transfers");
    assert_eq!(ids(&desk["transfers"]), [eli.id.as_str()], "{desk}");
    assert_eq!(transfers[0]["note"], note);
    assert_eq!(transfers[0]["from_name"], "Anna");
    assert_eq!(transfers[0]["office_name"], "Anagrafe");
    // Nobody else is offered it, and Bruno cannot accept it.
    assert!(w.desk_of(&w.bruno).await["transfers"].as_array().expect("transfers").is_empty());
    w.bruno.api.post(&format!("/api/staff/walkins/{}/accept", eli.id), json!({})).await.err(404, "not_found");

    let accepted = w.carlo.api.post(&format!("/api/staff/walkins/{}/accept", eli.id), json!({})).await.ok(200);
    assert_eq!(accepted["room"], room.as_str());
    assert_eq!(eli.poll().await["state"], "serving");
    let walkin = w.walkin(&eli.id).await;
    assert_eq!((walkin.official_id.as_deref(), walkin.transfer_to.as_deref()), (Some(w.carlo.id.as_str()), None));
    // Accepting twice is refused: it is served now.
    w.carlo.api.post(&format!("/api/staff/walkins/{}/accept", eli.id), json!({})).await.err(409, "walkin_state");
    let mut carlo = w.join(&room, &token_of(accepted["url"].as_str().expect("url"))).await;
    assert!(ids(&w.desk_of(&w.carlo).await["mine"]).contains(&eli.id));
    assert!(w.desk_of(&w.carlo).await["transfers"].as_array().expect("transfers").is_empty());
    assert!(ids(&w.desk_of(&w.anna).await["mine"]).is_empty());

    // Anna does not serve it any more: she cannot finish it, nor enter again with her link (her
    // call to Bruno does not keep the room open to her; Bruno, called in, may still come).
    w.join_refused(&room, &w.host_token(&room, &w.anna)).await;
    let bruno = w.join(&room, &w.host_token(&room, &w.bruno)).await;
    bruno.close(1000).await;
    w.anna.api.post(&format!("/api/staff/walkins/{}/finish", eli.id), json!({})).await.err(404, "not_found");
    w.anna.api.post(&format!("/api/staff/walkins/{}/join", eli.id), json!({})).await.err(404, "not_found");
    w.carlo.api.post(&format!("/api/staff/walkins/{}/join", eli.id), json!({})).await.ok(200);
    anna.leave().await;
    anna.expect_closed(1000).await;
    w.join_refused(&room, &token_of(&anna_link)).await;

    let reply = w.carlo.api.post(&format!("/api/staff/walkins/{}/finish", eli.id), json!({})).await;
    assert_eq!(reply.status, 204, "{}", reply.text);
    assert_eq!(eli.poll().await["state"], "done");
    assert!(eli.poll().await["join_url"].is_null());
    w.carlo.api.post(&format!("/api/staff/walkins/{}/finish", eli.id), json!({})).await.err(410, "walkin_over");
    w.join_refused(&room, &token_of(&citizen_link)).await;

    let user = |o: &Official| format!("user:{}", o.id);
    let trail = w.trail(&eli.id).await;
    let expected: Vec<(String, String)> = [
        ("citizen".to_owned(), "queued"),
        (user(&w.anna), "called"),
        (user(&w.anna), "handed_off"),
        (user(&w.carlo), "accepted"),
        (user(&w.carlo), "done"),
    ]
    .into_iter()
    .map(|(a, b)| (a, b.to_owned()))
    .collect();
    assert_eq!(trail, expected);
    citizen.leave().await;
    carlo.leave().await;
}

// --- 4. grace, leave, absent, callback, closed desk ------------------------------------------------

async fn grace_period(w: World) {
    let t0 = w.now();
    let ivo = w.queue("Ivo Verdi").await;
    let lia = w.queue("Lia Rossi").await;
    let nino = w.queue("Nino Bianchi").await;
    // 100 s later Ivo is still in the queue (seen 100 s ago): Lia is second.
    w.advance_to(t0 + 100);
    assert_eq!(lia.poll().await["position"], 2);
    assert_eq!(nino.poll().await["position"], 3);
    // 130 s after he last asked, Ivo no longer counts; Lia is first.
    w.advance_to(t0 + 130);
    assert_eq!(lia.poll().await["position"], 1);
    assert_eq!(nino.poll().await["position"], 2);
    assert_eq!(ids(&queue_of(&w.desk_of(&w.anna).await, &w.anagrafe)["waiting"]), [lia.id.as_str(), nino.id.as_str()]);
    // «Prossimo» skips him and marks him abandoned on the way.
    let called = w.next(&w.anna, &w.anagrafe).await;
    assert_eq!(called["walkin"]["id"], lia.id.as_str());
    assert_eq!(w.walkin(&ivo.id).await.state, WalkinState::Abandoned);
    assert!(w.trail(&ivo.id).await.contains(&("system".to_owned(), "abandoned".to_owned())));
    let t = ivo.poll().await;
    assert_eq!((t["state"].as_str(), t["position"].is_null()), (Some("abandoned"), true), "{t}");

    // Coming back within the grace period keeps one's place, again and again.
    let mia = w.queue("Mia Gallo").await;
    let t1 = w.now();
    w.advance_to(t1 + 110);
    assert_eq!(nino.poll().await["position"], 1);
    assert_eq!(mia.poll().await["position"], 2);
    w.advance_to(t1 + 220);
    assert_eq!(nino.poll().await["position"], 1);
    assert_eq!(mia.poll().await["position"], 2, "seen 110 s ago: still in the queue");
    // Nino's own late poll tells him he lost his place (and only him).
    w.advance_to(t1 + 220 + 121);
    assert_eq!(nino.poll().await["state"], "abandoned");
    assert_eq!(w.walkin(&mia.id).await.state, WalkinState::Abandoned, "Mia, unseen as long, goes too");
    assert!(w.walkin(&nino.id).await.ended_at.is_some());
}

async fn leave_absent_and_callback(w: World) {
    // Leave: the wrong secret leaves nothing; the right one leaves; twice is 410.
    let gina = w.queue("Gina Lolli").await;
    gina.api.ticket_post(&gina.id, "leave", "wrong", json!({})).await.err(404, "not_found");
    let reply = gina.api.ticket_post(&gina.id, "leave", &gina.secret, json!({})).await;
    assert_eq!(reply.status, 204, "{}", reply.text);
    let t = gina.poll().await;
    assert_eq!((t["state"].as_str(), t["position"].is_null(), t["join_url"].is_null()), (Some("left"), true, true));
    gina.api.ticket_post(&gina.id, "leave", &gina.secret, json!({})).await.err(410, "walkin_over");
    assert!(w.trail(&gina.id).await.contains(&("citizen".to_owned(), "left".to_owned())));
    assert!(ids(&queue_of(&w.desk_of(&w.anna).await, &w.anagrafe)["waiting"]).is_empty());
    w.anna.api.post(&format!("/api/staff/offices/{}/next", w.anagrafe), json!({})).await.err(409, "queue_empty");

    // Absent: taken, never came into the room.
    let hugo = w.queue("Hugo Pratt").await;
    w.next(&w.anna, &w.anagrafe).await;
    let link = hugo.poll().await["join_url"].as_str().expect("join_url").to_owned();
    w.bruno.api.post(&format!("/api/staff/walkins/{}/absent", hugo.id), json!({})).await.err(404, "not_found");
    let reply = w.anna.api.post(&format!("/api/staff/walkins/{}/absent", hugo.id), json!({})).await;
    assert_eq!(reply.status, 204, "{}", reply.text);
    assert_eq!(hugo.poll().await["state"], "abandoned");
    w.join_refused(&hugo.room(), &token_of(&link)).await;

    // A callback is offered once the estimated wait is over 20 minutes: position × 600 s ÷ 2
    // officials = 5 minutes a place, so from the fifth place (25 minutes) on.
    let mut line = Vec::new();
    for i in 1..=5 {
        line.push(w.queue(&format!("In fila {i}")).await);
    }
    let offered: Vec<(Option<u64>, Option<bool>)> = futures_util::future::join_all(line.iter().map(|c| c.poll()))
        .await
        .iter()
        .map(|t| (t["estimated_wait_minutes"].as_u64(), t["callback_offered"].as_bool()))
        .collect();
    assert_eq!(
        offered,
        [(5, false), (10, false), (15, false), (20, false), (25, true)].map(|(m, o)| (Some(m), Some(o)))
    );
    for c in &line {
        let reply = c.api.ticket_post(&c.id, "leave", &c.secret, json!({})).await;
        assert_eq!(reply.status, 204, "{}", reply.text);
    }

    // Callback: needs an email (the one given when queueing, or one given now).
    let eva = w.queue_at(&w.anagrafe, "Eva Kant", Some("eva.kant@example.org")).await;
    let fabio = w.queue("Fabio Volo").await;
    assert_eq!(eva.ticket["email_given"], true);
    assert_eq!(fabio.ticket["email_given"], false);
    let t = eva.api.ticket_post(&eva.id, "callback", &eva.secret, json!({})).await.ok(200);
    assert_eq!((t["state"].as_str(), t["position"].is_null()), (Some("callback"), true), "{t}");
    fabio.api.ticket_post(&fabio.id, "callback", &fabio.secret, json!({})).await.err(400, "email_required");
    fabio
        .api
        .ticket_post(&fabio.id, "callback", &fabio.secret, json!({"email": "not an email"}))
        .await
        .err(400, "invalid_email");
    let t = fabio
        .api
        .ticket_post(&fabio.id, "callback", &fabio.secret, json!({"email": "fabio@example.org"}))
        .await
        .ok(200);
    assert_eq!((t["state"].as_str(), t["email_given"].as_bool()), (Some("callback"), Some(true)));
    assert_eq!(eva.poll().await["state"], "callback");

    // Out of the live queue, on the office's callback list.
    let desk = w.desk_of(&w.anna).await;
    let queue = queue_of(&desk, &w.anagrafe);
    assert!(ids(&queue["waiting"]).is_empty());
    assert_eq!(ids(&queue["callbacks"]), [eva.id.as_str(), fabio.id.as_str()]);
    w.anna.api.post(&format!("/api/staff/offices/{}/next", w.anagrafe), json!({})).await.err(409, "queue_empty");
    // Not Carlo's office.
    w.carlo.api.post(&format!("/api/staff/walkins/{}/callback", eva.id), json!({})).await.err(404, "not_found");

    // «Richiama»: the official's host link, the citizen's link by email.
    let link = w.bruno.api.post(&format!("/api/staff/walkins/{}/callback", eva.id), json!({})).await.ok(200);
    assert_eq!(link["room"], eva.room().as_str());
    let mails = w.emails_to("eva.kant@example.org");
    assert_eq!(mails.len(), 1, "one email to Eva: {mails:?}");
    let (subject, text) = &mails[0];
    assert!(subject.contains("Anagrafe"), "{subject}");
    assert!(text.contains("/join?t="), "{text}");
    let mailed = token_of(text);
    let t = eva.poll().await;
    assert_eq!(t["state"], "serving");
    assert!(!token_of(t["join_url"].as_str().expect("join_url")).is_empty());
    let walkin = w.walkin(&eva.id).await;
    assert_eq!(walkin.official_id.as_deref(), Some(w.bruno.id.as_str()));
    assert!(walkin.called_at.is_some());
    // The emailed link and Bruno's enter the room.
    let mut citizen = w.join(&eva.room(), &mailed).await;
    let mut bruno = w.join(&eva.room(), &token_of(link["url"].as_str().expect("url"))).await;
    // Calling back twice is refused.
    w.anna.api.post(&format!("/api/staff/walkins/{}/callback", eva.id), json!({})).await.err(409, "walkin_state");
    citizen.leave().await;
    bruno.leave().await;
    eventually("the called-back walk-in is done once its room ended", || async {
        (w.walkin(&eva.id).await.state == WalkinState::Done).then_some(())
    })
    .await;
    // A citizen who asked for a callback may still give up.
    let reply = fabio.api.ticket_post(&fabio.id, "leave", &fabio.secret, json!({})).await;
    assert_eq!(reply.status, 204, "{}", reply.text);
}

async fn closed_desk(w: World) {
    let public = w.public();
    // Refusals that do not depend on the hour (each from its own address: refusals count against
    // an address's tickets per minute too).
    let join = |body: Value| {
        let (public, office) = (w.public(), w.anagrafe.clone());
        async move { public.post(&format!("/api/public/offices/{office}/walkins"), body).await }
    };
    join(json!({"name": ""})).await.err(400, "invalid_name");
    join(json!({"name": "Zoe", "email": "zoe@"})).await.err(400, "invalid_email");
    join(json!({"name": "Zoe", "topic": "t".repeat(201)})).await.err(400, "invalid_topic");
    join(json!({"name": "Zoe", "service_id": "no-such-service"})).await.err(400, "unknown_service");
    // A robot filling the hidden field queues nobody.
    join(json!({"name": "Robot", "website": "http://spam.example"})).await.err(404, "not_found");
    public.post("/api/public/offices/no-such-office/walkins", json!({"name": "Zoe"})).await.err(404, "not_found");
    assert!(
        w.store.walkins_in(std::slice::from_ref(&w.anagrafe), &[WalkinState::Waiting]).await.expect("q").is_empty()
    );
    // A service of the office is fine, and shows on the official's desk.
    let with_service = w.public();
    let t = with_service
        .post(
            &format!("/api/public/offices/{}/walkins", w.anagrafe),
            json!({"name": "Zoe Sala", "service_id": w.service, "topic": "Rinnovo"}),
        )
        .await
        .ok(201);
    let desk = w.desk_of(&w.anna).await;
    assert_eq!(queue_of(&desk, &w.anagrafe)["waiting"][0]["service_name"], "Carta d'identità");
    assert_eq!(queue_of(&desk, &w.anagrafe)["waiting"][0]["topic"], "Rinnovo");
    with_service
        .ticket_post(t["id"].as_str().expect("id"), "leave", t["secret"].as_str().expect("secret"), json!({}))
        .await;

    // Olga queues a minute before the desk closes, and keeps her place after.
    w.advance_to(local(w.tuesday, 11, 59, 0));
    let olga = w.queue("Olga Neri").await;
    w.advance_to(local(w.tuesday, 12, 0, 30));
    let status = public.get(&format!("/api/public/offices/{}/desk", w.anagrafe)).await.ok(200);
    assert_eq!((status["open"].as_bool(), status["on_duty"].as_u64()), (Some(false), Some(0)), "{status}");
    let tomorrow = w.tuesday.tomorrow().expect("date");
    assert_eq!(parse_ts(status["opens_at"].as_str().expect("opens_at")), local(tomorrow, 9, 0, 0));
    for lang in ["it", "en"] {
        assert!(status["opens_label"][lang].as_str().is_some_and(|l| !l.is_empty()), "{status}");
    }
    public
        .post(&format!("/api/public/offices/{}/walkins", w.anagrafe), json!({"name": "Tardi Ritardo"}))
        .await
        .err(409, "desk_closed");
    let t = olga.poll().await;
    assert_eq!((t["state"].as_str(), t["position"].as_u64()), (Some("waiting"), Some(1)), "{t}");
    assert_eq!(w.next(&w.anna, &w.anagrafe).await["walkin"]["id"], olga.id.as_str());

    // In the afternoon, after the officials' hours: still closed, opening tomorrow at 09:00.
    w.advance_to(local(w.tuesday, 15, 0, 0));
    let status = public.get(&format!("/api/public/offices/{}/desk", w.anagrafe)).await.ok(200);
    assert_eq!(status["open"], false);
    assert_eq!(parse_ts(status["opens_at"].as_str().expect("opens_at")), local(tomorrow, 9, 0, 0));
    let desk = w.desk_of(&w.anna).await;
    assert_eq!(queue_of(&desk, &w.anagrafe)["open"], false);
    public
        .post(&format!("/api/public/offices/{}/walkins", w.tributi), json!({"name": "Tardi Ritardo"}))
        .await
        .err(409, "desk_closed");
}

// --- 5. attendance and no-show --------------------------------------------------------------------

async fn no_show_and_its_correction(w: World) {
    let now = w.now();
    // 10:00 now; an appointment 09:10–09:40 whose citizen never came: not yet 30 minutes after its
    // end at 10:00 …
    let missed = w.test.seed_booking(&w.anagrafe, &w.service, &w.anna.id, "NOSHOW1", -50 * 60).await.expect("booked");
    assert_eq!(missed.ends_at, missed.starts_at + 1800);
    let before = missed.ends_at + retention::CLOSE_AFTER_SECS - 60;
    retention::run_once(&w.store, w.test.data_dir(), before).await.expect("pass");
    assert_eq!(w.store.appointment(&missed.id).await.expect("load").expect("exists").status, Status::Confirmed);
    // … and past them.
    let after = missed.ends_at + retention::CLOSE_AFTER_SECS + 60;
    assert!(after > now);
    let sweep = retention::run_once(&w.store, w.test.data_dir(), after).await.expect("pass");
    assert_eq!(sweep.no_show, 1, "{sweep:?}");
    let appt = w.store.appointment(&missed.id).await.expect("load").expect("exists");
    assert_eq!(appt.status, Status::NoShow);
    let last = w.store.audit(&missed.id).await.expect("audit").pop().expect("a row");
    assert_eq!((last.actor.as_str(), last.action.as_str()), ("system", "no_show"));

    // Carlo (another office) cannot touch it; Anna corrects it, a little later.
    w.advance_to(after + 60);
    w.carlo
        .api
        .post(&format!("/api/staff/appointments/{}/status", missed.id), json!({"status": "completed"}))
        .await
        .err(404, "not_found");
    let view = w
        .anna
        .api
        .post(
            &format!("/api/staff/appointments/{}/status", missed.id),
            json!({"status": "completed", "note": "Il cittadino è venuto allo sportello"}),
        )
        .await
        .ok(200);
    assert_eq!(view["status"], "completed");
    let detail = w.anna.api.get(&format!("/api/staff/appointments/{}", missed.id)).await.ok(200);
    let audit = detail["audit"].as_array().expect("audit");
    let last = audit.last().expect("a row");
    assert_eq!(last["actor"], format!("user:{}", w.anna.id).as_str(), "{last}");
    assert_eq!((last["actor_kind"].as_str(), last["actor_name"].as_str()), (Some("staff"), Some("Anna")));
    assert_eq!(last["action"], "completed");
    assert_eq!(last["detail"], "Il cittadino è venuto allo sportello");
    assert!(audit.iter().any(|e| e["actor"] == "system" && e["action"] == "no_show"), "{detail}");
    // Only that correction: a completed one does not go back, a no-show is not cancelled after the fact.
    w.anna
        .api
        .post(&format!("/api/staff/appointments/{}/status", missed.id), json!({"status": "no_show"}))
        .await
        .err(409, "invalid_status");
    let other = w.test.seed_booking(&w.anagrafe, &w.service, &w.bruno.id, "NOSHOW2", -120 * 60).await.expect("booked");
    retention::run_once(&w.store, w.test.data_dir(), w.now()).await.expect("pass");
    w.anna
        .api
        .post(&format!("/api/staff/appointments/{}/status", other.id), json!({"status": "cancelled"}))
        .await
        .err(409, "invalid_status");
    assert_eq!(w.store.appointment(&other.id).await.expect("load").expect("exists").status, Status::NoShow);
}

async fn attendance_of_an_appointment(w: World) {
    let appt = w.test.seed_booking(&w.anagrafe, &w.service, &w.anna.id, "ATTEND1", 0).await.expect("booked");
    let room = format!("appt-{}", appt.id);
    let host = w.anna.api.post(&format!("/api/staff/appointments/{}/join", appt.id), json!({})).await.ok(200);
    let mut official = w.join(&room, &token_of(host["url"].as_str().expect("url"))).await;

    // An interpreter Anna invited waits in the lobby first: not the citizen arriving.
    let invitation =
        w.anna.api.post("/api/staff/invitations", json!({"room": room, "name": "Interprete LIS"})).await.ok(200);
    let mut guest = w.test.connect(&room).await;
    guest
        .send_json(&json!({"v": 1, "type": "join", "token": token_of(invitation["url"].as_str().expect("url"))}))
        .await;
    guest.recv_until("waiting").await;
    let lobby = official.recv_until("lobby").await;
    // Anna lets the interpreter in: a guest inside is not the citizen having come.
    let guest_id = lobby["waiting"][0]["id"].clone();
    let reply = w.anna.api.post(&format!("/api/staff/rooms/{room}/admit"), json!({"participant_id": guest_id})).await;
    assert_eq!(reply.status, 204, "{}", reply.text);
    guest.recv_until("welcome").await;
    w.clock.advance(60);

    // The citizen arrives and waits in the lobby.
    let arrived = w.now();
    let claims = sportello_backoffice::links::citizen_claims(&appt, arrived);
    let mut citizen = w.test.connect(&room).await;
    citizen.send_json(&json!({"v": 1, "type": "join", "token": w.test.sign(&claims)})).await;
    citizen.recv_until("waiting").await;
    let store = &w.store;
    eventually("citizen_arrived_at is recorded", || async {
        store.appointment(&appt.id).await.expect("load").expect("exists").citizen_arrived_at.is_some().then_some(())
    })
    .await;
    // The room's jobs run in order: the guest's admission was stored before the citizen's arrival.
    let row = store.appointment(&appt.id).await.expect("load").expect("exists");
    assert_eq!(row.citizen_joined_at, None, "an admitted guest counted as the citizen");
    guest.leave().await;
    guest.expect_closed(1000).await;
    // Admitted two minutes later from the dashboard.
    w.clock.advance(120);
    let admitted = w.now();
    let reply = w
        .anna
        .api
        .post(&format!("/api/staff/rooms/{room}/admit"), json!({"participant_id": format!("citizen-{}", appt.id)}))
        .await;
    assert_eq!(reply.status, 204, "{}", reply.text);
    citizen.recv_until("welcome").await;
    official.recv_until("participant_joined").await;
    // Fifteen minutes of meeting, then both leave.
    w.clock.advance(900);
    let ended = w.now();
    citizen.leave().await;
    citizen.expect_closed(1000).await;
    official.leave().await;
    official.expect_closed(1000).await;
    eventually("meeting_ended_at is recorded", || async {
        store.appointment(&appt.id).await.expect("load").expect("exists").meeting_ended_at.is_some().then_some(())
    })
    .await;
    let row = store.appointment(&appt.id).await.expect("load").expect("exists");
    let near = |got: Option<i64>, want: i64| got.is_some_and(|g| (want..=want + 5).contains(&g));
    assert!(near(row.citizen_arrived_at, arrived), "arrived {:?} vs {arrived}", row.citizen_arrived_at);
    assert!(near(row.citizen_joined_at, admitted), "joined {:?} vs {admitted}", row.citizen_joined_at);
    assert!(near(row.meeting_ended_at, ended), "ended {:?} vs {ended}", row.meeting_ended_at);
    assert_eq!(row.status, Status::Completed);
    // The same instants on the official's side.
    let detail = w.anna.api.get(&format!("/api/staff/appointments/{}", appt.id)).await.ok(200);
    let view = &detail["appointment"];
    for (field, want) in [
        ("citizen_arrived_at", row.citizen_arrived_at),
        ("citizen_joined_at", row.citizen_joined_at),
        ("meeting_ended_at", row.meeting_ended_at),
    ] {
        assert_eq!(view[field].as_str().map(parse_ts), want, "{field}: {view}");
    }
}

// --- 6. figures -----------------------------------------------------------------------------------

async fn figures_match_a_hand_computation(w: World) {
    let store = &w.store;
    // Monday, the day before the test's Tuesday.
    let day = w.tuesday.yesterday().expect("date");
    let at = |h: i8, m: i8, s: i8| local(day, h, m, s);
    let anna = w.anna.id.as_str();
    let new_walkin = |office: &str, service: Option<&str>, name: &str| NewWalkin {
        office_id: office.to_owned(),
        secret_hash: sportello_tests::sha256_hex(name.as_bytes()),
        name: name.to_owned(),
        email: String::new(),
        topic: String::new(),
        service_id: service.map(str::to_owned),
        lang: "it".into(),
    };
    let any: &(dyn Fn(&sportello_store::Walkin) -> bool + Sync) = &|_| true;
    let called = |id: String, t: i64| async move {
        let change = WalkinChange { official_id: Some(anna), called: true, ..Default::default() };
        store
            .change_walkin(&id, &[WalkinState::Waiting], WalkinState::Serving, any, &change, "user:x", "called", "", t)
            .await
            .expect("called");
        id
    };
    let end = |id: String, from: WalkinState, to: WalkinState, t: i64| async move {
        let change = WalkinChange { ended: true, ..Default::default() };
        store.change_walkin(&id, &[from], to, any, &change, "user:x", to.as_str(), "", t).await.expect("ended");
    };
    let queue = |office: &str, service: Option<&str>, name: &str, t: i64| {
        let new = new_walkin(office, service, name);
        async move { store.create_walkin(&new, t).await.expect("queued").id }
    };
    let s = Some(w.service.as_str());
    // Walk-ins at Anagrafe on Monday (queued → called → ended):
    // w1 09:00:00 → 09:02:00 → 09:12:00 done: wait 120, service 600 (no service)
    let w1 = called(queue(&w.anagrafe, None, "w1", at(9, 0, 0)).await, at(9, 2, 0)).await;
    end(w1, WalkinState::Serving, WalkinState::Done, at(9, 12, 0)).await;
    // w2 09:01:00 → 09:06:00 → 09:21:00 done: wait 300, service 900 (the service)
    let w2 = called(queue(&w.anagrafe, s, "w2", at(9, 1, 0)).await, at(9, 6, 0)).await;
    end(w2, WalkinState::Serving, WalkinState::Done, at(9, 21, 0)).await;
    // w3 09:05:00 → 09:25:00 → 09:30:01 done: wait 1200, service 301 (no service)
    let w3 = called(queue(&w.anagrafe, None, "w3", at(9, 5, 0)).await, at(9, 25, 0)).await;
    end(w3, WalkinState::Serving, WalkinState::Done, at(9, 30, 1)).await;
    // w4 09:10 left at 09:15; w5 09:20 abandoned at 09:23: no wait, no service.
    let w4 = queue(&w.anagrafe, None, "w4", at(9, 10, 0)).await;
    end(w4, WalkinState::Waiting, WalkinState::Left, at(9, 15, 0)).await;
    let w5 = queue(&w.anagrafe, None, "w5", at(9, 20, 0)).await;
    end(w5, WalkinState::Waiting, WalkinState::Abandoned, at(9, 23, 0)).await;
    // w6 09:30:00 → 09:31:00, still serving: wait 60, no service time, neither served nor abandoned.
    called(queue(&w.anagrafe, None, "w6", at(9, 30, 0)).await, at(9, 31, 0)).await;
    // Not in the figures: Tuesday's walk-in (after `to`), Tributi's (not Anna's office).
    let tue = local(w.tuesday, 0, 30, 0);
    let late = called(queue(&w.anagrafe, None, "tuesday", tue).await, tue + 60).await;
    end(late, WalkinState::Serving, WalkinState::Done, tue + 120).await;
    let elsewhere = called(queue(&w.tributi, None, "tributi", at(9, 0, 0)).await, at(9, 1, 0)).await;
    end(elsewhere, WalkinState::Serving, WalkinState::Done, at(9, 2, 0)).await;

    // Appointments at Anagrafe on Monday, 30 minutes each, with Anna:
    let book = |code: &str, start: i64| {
        let new = NewAppointment {
            code: code.to_owned(),
            secret_hash: "x".into(),
            office_id: w.anagrafe.clone(),
            service_id: w.service.clone(),
            official_id: anna.to_owned(),
            starts_at: start,
            ends_at: start + 1800,
            mode: Mode::Video,
            first_name: "Carla".into(),
            last_name: "Rossi".into(),
            email: "carla@example.org".into(),
            details: String::new(),
            lang: "it".into(),
        };
        async move { store.book(&new, start - 86_400).await.expect("booked").id }
    };
    // The background retention pass may close Monday's appointments first: any closed state counts
    // as the starting point of the statuses set here.
    let closed_by_now = [Status::Confirmed, Status::NoShow, Status::Completed];
    let set = |id: String, to: Status, t: i64| async move {
        store.set_status(&id, &closed_by_now, to, "system", "", t).await.expect("status");
    };
    // a1 10:00: arrived 09:55, admitted 10:03 (waited 180: arriving early is not waiting), ended
    // 10:23 (service 1200), completed.
    let a1 = book("A1", at(10, 0, 0)).await;
    store.mark_citizen_arrived(&a1, at(9, 55, 0)).await.expect("arrived");
    store.mark_citizen_joined(&a1, at(10, 3, 0)).await.expect("joined");
    store.mark_meeting_ended(&a1, at(10, 23, 0)).await.expect("ended");
    set(a1, Status::Completed, at(10, 23, 0)).await;
    // a2 10:30: arrived 10:32, admitted 10:40 (waited 480), ended 10:50 (service 600), completed.
    let a2 = book("A2", at(10, 30, 0)).await;
    store.mark_citizen_arrived(&a2, at(10, 32, 0)).await.expect("arrived");
    store.mark_citizen_joined(&a2, at(10, 40, 0)).await.expect("joined");
    store.mark_meeting_ended(&a2, at(10, 50, 0)).await.expect("ended");
    set(a2, Status::Completed, at(10, 50, 0)).await;
    // a3 11:00 and a4 11:30: no-shows. a5 12:00: completed by hand, no attendance recorded.
    // a6 12:30: cancelled (neither).
    set(book("A3", at(11, 0, 0)).await, Status::NoShow, at(12, 0, 0)).await;
    set(book("A4", at(11, 30, 0)).await, Status::NoShow, at(12, 30, 0)).await;
    set(book("A5", at(12, 0, 0)).await, Status::Completed, at(12, 30, 0)).await;
    let a6 = book("A6", at(12, 30, 0)).await;
    store.set_status(&a6, &[Status::Confirmed], Status::Cancelled, "citizen", "", at(8, 0, 0)).await.expect("cancel");

    let query = format!("from={day}&to={day}");
    let rows = w.anna.api.get(&format!("/api/staff/figures?{query}")).await.ok(200);
    let rows = rows.as_array().expect("days");
    assert_eq!(rows.len(), 1, "one day, one office: {rows:?}");
    let f = &rows[0];
    assert_eq!(
        (f["date"].as_str(), f["office_id"].as_str()),
        (Some(day.to_string().as_str()), Some(w.anagrafe.as_str()))
    );
    assert_eq!(f["office_name"], "Anagrafe");
    // Appointment waits [180, 480]: p50 = rank ⌈0.5·2⌉ = 1 → 180, p90 = rank ⌈0.9·2⌉ = 2 → 480.
    assert_eq!(f["appointment_wait"], json!({"count": 2, "p50_seconds": 180, "p90_seconds": 480}));
    // Walk-in waits [60, 120, 300, 1200]: p50 = rank ⌈0.5·4⌉ = 2 → 120, p90 = rank ⌈0.9·4⌉ = 4 → 1200.
    assert_eq!(f["walkin_wait"], json!({"count": 4, "p50_seconds": 120, "p90_seconds": 1200}));
    // Service «Carta d'identità»: [w2 900, a1 1200, a2 600] → sorted [600, 900, 1200]: mean 2700/3 = 900,
    // p50 rank 2 → 900. Without a service: [w1 600, w3 301]: mean 901/2 = 450.5 → 451, p50 rank 1 → 301.
    assert_eq!(
        f["services"],
        json!([
            {"service_id": w.service, "service_name": "Carta d'identità", "count": 3, "mean_seconds": 900, "p50_seconds": 900},
            {"service_id": null, "service_name": "Senza appuntamento", "count": 2, "mean_seconds": 451, "p50_seconds": 301},
        ])
    );
    // Completed a1, a2, a5 + no-shows a3, a4 = 5 closed; rate 2/5 = 0.4.
    assert_eq!((f["appointments_closed"].as_u64(), f["no_shows"].as_u64()), (Some(5), Some(2)));
    assert_eq!(f["no_show_rate"].as_f64(), Some(0.4));
    // Served w1, w2, w3; abandoned w4 (left) + w5.
    assert_eq!((f["walkins_served"].as_u64(), f["walkins_abandoned"].as_u64()), (Some(3), Some(2)));
    // No name, email or topic in the figures.
    let text = serde_json::to_string(&rows).expect("json");
    assert!(!text.contains("Carla") && !text.contains("carla@") && !text.contains("\"w1\""), "{text}");

    // One office asked for explicitly: the same; another's: 404; the day after: Tuesday's walk-in.
    let one = w.anna.api.get(&format!("/api/staff/figures?{query}&office={}", w.anagrafe)).await.ok(200);
    assert_eq!(one.as_array().map(Vec::len), Some(1));
    w.anna.api.get(&format!("/api/staff/figures?{query}&office={}", w.tributi)).await.err(404, "not_found");
    let tuesday = w.anna.api.get(&format!("/api/staff/figures?from={}&to={}", w.tuesday, w.tuesday)).await.ok(200);
    assert_eq!(tuesday[0]["walkins_served"], 1, "{tuesday}");
    let carlo = w.carlo.api.get(&format!("/api/staff/figures?{query}")).await.ok(200);
    assert_eq!(carlo[0]["office_id"], w.tributi.as_str(), "Carlo sees Tributi only: {carlo}");
    assert_eq!(carlo.as_array().map(Vec::len), Some(1));
    for bad in [format!("from={day}&to=2020-01-01"), "from=2020-01-01&to=2021-06-01".to_owned(), "from=ieri".to_owned()]
    {
        w.anna.api.get(&format!("/api/staff/figures?{bad}")).await.err(400, "invalid_range");
    }

    // The office's typical service time is the median of its walk-ins served in the last 14 days:
    // [60 (Tuesday's), 301, 600, 900] → rank ⌈0.5·4⌉ = 2 → 301 s; first in line with 2 officials on
    // duty waits ⌈301 ÷ 120⌉ = 3 minutes.
    let status = w.public().get(&format!("/api/public/offices/{}/desk", w.anagrafe)).await.ok(200);
    assert_eq!(status["estimated_wait_minutes"], 3, "{status}");
    w.public().get("/api/public/offices/no-such-office/desk").await.err(404, "not_found");

    // The CSV: the same numbers, one row per service.
    let csv = w.anna.api.get(&format!("/api/staff/figures.csv?{query}")).await;
    assert_eq!(csv.status, 200, "{}", csv.text);
    assert!(csv.content_type.starts_with("text/csv"), "{}", csv.content_type);
    let lines: Vec<&str> = csv.text.split("\r\n").filter(|l| !l.is_empty()).collect();
    let header: Vec<&str> = lines[0].split(',').collect();
    assert_eq!(lines.len(), 3, "a header and two services: {}", csv.text);
    let row = |line: &str| -> HashMap<String, String> {
        header.iter().map(|h| h.to_string()).zip(line.split(',').map(str::to_owned)).collect()
    };
    let first = row(lines[1]);
    let second = row(lines[2]);
    for r in [&first, &second] {
        let get = |k: &str| r.get(k).map(String::as_str).unwrap_or_default().to_owned();
        assert_eq!(get("date"), day.to_string());
        assert_eq!(get("office_id"), w.anagrafe);
        assert_eq!(
            ["appointment_wait_count", "appointment_wait_p50_s", "appointment_wait_p90_s"].map(get),
            ["2", "180", "480"]
        );
        assert_eq!(["walkin_wait_count", "walkin_wait_p50_s", "walkin_wait_p90_s"].map(get), ["4", "120", "1200"]);
        assert_eq!(["appointments_closed", "no_shows", "no_show_rate"].map(get), ["5", "2", "0.4000"]);
        assert_eq!(["walkins_served", "walkins_abandoned"].map(get), ["3", "2"]);
    }
    let service = |r: &HashMap<String, String>| {
        ["service_id", "service_name", "service_count", "service_mean_s", "service_p50_s"]
            .map(|k| r.get(k).cloned().unwrap_or_default())
    };
    assert_eq!(service(&first), [w.service.clone(), "Carta d'identità".into(), "3".into(), "900".into(), "900".into()]);
    assert_eq!(service(&second), [String::new(), "Senza appuntamento".into(), "2".into(), "451".into(), "301".into()]);
}

// --- 7. a kill -9 of the real binary ----------------------------------------------------------------

/// Every day 06:00–22:00: officials on duty whenever officials may work at all.
const ALL_WEEK: &str = r#"[["06:00-22:00"],["06:00-22:00"],["06:00-22:00"],["06:00-22:00"],["06:00-22:00"],["06:00-22:00"],["06:00-22:00"]]"#;
/// The desk every day, all day.
const ALL_DAY: &str = r#"[["00:00-23:59"],["00:00-23:59"],["00:00-23:59"],["00:00-23:59"],["00:00-23:59"],["00:00-23:59"],["00:00-23:59"]]"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_survives_a_kill_on_sqlite() {
    the_queue_survives_a_kill(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_survives_a_kill_on_postgres() {
    let url = sportello_tests::server::postgres_url().await;
    the_queue_survives_a_kill(Some(url)).await;
}

async fn the_queue_survives_a_kill(postgres: Option<String>) {
    use sportello_tests::process::Sportello;
    let root = tempfile::tempdir().expect("temp dir");
    let data = root.path().join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    let db_url = postgres.clone().unwrap_or_else(|| format!("sqlite:{}", data.join("sportello.db").display()));
    let office = {
        let store = Store::connect(&db_url).await.expect("the database opens");
        let official = staff_user(&store, "Paola", StaffRole::Official).await;
        let new = sportello_store::NewOffice {
            name: "Anagrafe".into(),
            description: String::new(),
            address: "Piazza del Municipio 1".into(),
            email: "anagrafe@comune.example".into(),
            phone: "+39 0000 000001".into(),
            opening_hours: ALL_WEEK.into(),
        };
        let office = store.create_office(&new, 0).await.expect("office");
        store.set_office_members(&office.id, std::slice::from_ref(&official.id)).await.expect("members");
        store.set_desk_hours(&office.id, ALL_DAY).await.expect("desk");
        store.close().await;
        office.id
    };
    let extra: Vec<String> = postgres.iter().flat_map(|url| ["--database-url".to_owned(), url.clone()]).collect();
    let mut server = tokio::task::spawn_blocking(move || Sportello::start(&data, &extra).expect("sportello starts"))
        .await
        .expect("join");
    let url = server.url();

    // Five citizens queue through the API while the desk is open (the real clock decides: at night
    // or on a holiday it is closed, and they are queued in the store as the API would).
    let mut citizens = Vec::new();
    for i in 0..5 {
        let api = citizen_client(&url);
        let name = format!("Persona {i}");
        let reply = api.post(&format!("/api/public/offices/{office}/walkins"), json!({"name": name})).await;
        let (id, secret) = if reply.status == 201 {
            let t = reply.json();
            (t["id"].as_str().expect("id").to_owned(), t["secret"].as_str().expect("secret").to_owned())
        } else {
            reply.err(409, "desk_closed");
            eprintln!("the desk is closed now: queueing in the store");
            let store = Store::connect(&db_url).await.expect("the database opens");
            let secret = format!("secret-{i}-{}", Timestamp::now().as_nanosecond());
            let new = NewWalkin {
                office_id: office.clone(),
                secret_hash: sportello_tests::sha256_hex(secret.as_bytes()),
                name,
                email: String::new(),
                topic: String::new(),
                service_id: None,
                lang: "it".into(),
            };
            let id = store.create_walkin(&new, Timestamp::now().as_second()).await.expect("queued").id;
            store.close().await;
            (id, secret)
        };
        citizens.push(Citizen { id, secret, ticket: Value::Null, api });
    }
    let before: Vec<Value> = poll_all(&citizens).await;
    let before: Vec<Option<u64>> = before.iter().map(|t| t["position"].as_u64()).collect();
    assert_eq!(before, [1, 2, 3, 4, 5].map(Some));
    let paola = logged_in(&url, "paola@comune.example").await;

    server.kill9().expect("kill -9");
    let mut server = tokio::task::spawn_blocking(move || {
        server.restart().expect("sportello starts again");
        server
    })
    .await
    .expect("join");

    // The same tickets, the same places; the session cookie still logs Paola in.
    let after: Vec<Value> = poll_all(&citizens).await;
    let states: Vec<(Option<&str>, Option<u64>)> =
        after.iter().map(|t| (t["state"].as_str(), t["position"].as_u64())).collect();
    assert_eq!(states, (1..=5).map(|p| (Some("waiting"), Some(p))).collect::<Vec<_>>(), "{}", server.last_log());
    paola.get("/api/staff/desk").await.ok(200);
    // «Prossimo» serves them in order.
    for (i, citizen) in citizens.iter().enumerate() {
        let called = paola.post(&format!("/api/staff/offices/{office}/next"), json!({})).await.ok(200);
        assert_eq!(called["walkin"]["id"], citizen.id.as_str(), "call {i}");
        assert_eq!(citizen.poll().await["state"], "serving");
    }
    paola.post(&format!("/api/staff/offices/{office}/next"), json!({})).await.err(409, "queue_empty");
    server.terminate().expect("SIGTERM");
    tokio::task::spawn_blocking(move || server.wait_exit(Duration::from_secs(20)).expect("exits")).await.expect("join");
}

async fn poll_all(citizens: &[Citizen]) -> Vec<Value> {
    futures_util::future::join_all(citizens.iter().map(|c| c.poll())).await
}

// --- 8. administration: desk hours ----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desk_hours_are_validated_and_has_desk_follows_them() {
    let w = World::new(Backend::Sqlite).await;
    staff_user(&w.store, "Ada", StaffRole::Admin).await;
    let admin = logged_in(&w.test.url(), "ada@comune.example").await;
    let public = w.public();
    let offices = || async {
        let list = w.public().get("/api/public/offices").await.ok(200);
        list.as_array()
            .expect("offices")
            .iter()
            .map(|o| (o["id"].as_str().expect("id").to_owned(), o["has_desk"].as_bool().expect("has_desk")))
            .collect::<HashMap<_, _>>()
    };
    assert_eq!(offices().await.get(&w.anagrafe), Some(&true));

    // A new office without desk hours has no desk.
    let week = json!([["08:00-13:00"], ["08:00-13:00"], ["08:00-13:00"], ["08:00-13:00"], ["08:00-13:00"], [], []]);
    let created = admin
        .post("/api/admin/offices", json!({"name": "Tributi 2", "opening_hours": week, "member_ids": [w.carlo.id]}))
        .await
        .ok(201);
    let id = created["id"].as_str().expect("id").to_owned();
    assert_eq!(created["desk_hours"], json!([[], [], [], [], [], [], []]));
    assert_eq!(offices().await.get(&id), Some(&false));
    let status = public.get(&format!("/api/public/offices/{id}/desk")).await.ok(200);
    assert_eq!((status["has_desk"].as_bool(), status["open"].as_bool()), (Some(false), Some(false)));
    public.post(&format!("/api/public/offices/{id}/walkins"), json!({"name": "Zoe"})).await.err(409, "no_desk");

    // Bad desk hours: 400 and nothing changed (not even the name sent with them).
    let before = admin.get("/api/admin/offices").await.ok(200);
    let bad_weeks = [
        json!([["09:00-12:00"], [], [], [], [], []]),
        json!([["9:00-12:00"], [], [], [], [], [], []]),
        json!([["12:00-09:00"], [], [], [], [], [], []]),
        json!([["24:00-25:00"], [], [], [], [], [], []]),
        json!([["09:00-12:60"], [], [], [], [], [], []]),
        json!([["09:00"], [], [], [], [], [], []]),
        json!([["09:00-12:00", ""], [], [], [], [], [], []]),
        json!([[], [], [], [], [], [], [], []]),
    ];
    for bad in bad_weeks {
        let body = json!({"name": "Rinominato", "opening_hours": week, "desk_hours": bad, "member_ids": [w.carlo.id]});
        admin.put(&format!("/api/admin/offices/{id}"), body).await.err(400, "invalid_desk_hours");
        admin
            .put(
                &format!("/api/admin/offices/{}", w.anagrafe),
                json!({"name": "Rinominato", "opening_hours": week, "desk_hours": bad}),
            )
            .await
            .err(400, "invalid_desk_hours");
        admin
            .post("/api/admin/offices", json!({"name": "Nuovo", "opening_hours": week, "desk_hours": bad}))
            .await
            .err(400, "invalid_desk_hours");
    }
    assert_eq!(admin.get("/api/admin/offices").await.ok(200), before, "a refused change changed something");
    assert_eq!(w.store.office(&w.anagrafe).await.expect("load").expect("exists").desk_hours, DESK);

    // Good ones: the desk appears; left out, they are kept; all empty, the desk goes.
    let desk = json!([["09:00-11:00", "14:00-15:00"], [], ["09:00-12:00"], [], [], [], []]);
    let body = json!({"name": "Tributi 2", "opening_hours": week, "desk_hours": desk, "member_ids": [w.carlo.id]});
    let view = admin.put(&format!("/api/admin/offices/{id}"), body).await.ok(200);
    assert_eq!(view["desk_hours"], desk);
    assert_eq!(offices().await.get(&id), Some(&true));
    let status = public.get(&format!("/api/public/offices/{id}/desk")).await.ok(200);
    // Tuesday 10:00, and Tuesday has no desk hours: closed, opening Wednesday 09:00.
    assert_eq!((status["has_desk"].as_bool(), status["open"].as_bool()), (Some(true), Some(false)), "{status}");
    let wednesday = w.tuesday.tomorrow().expect("date");
    assert_eq!(parse_ts(status["opens_at"].as_str().expect("opens_at")), local(wednesday, 9, 0, 0));
    let body = json!({"name": "Tributi 2", "opening_hours": week, "member_ids": [w.carlo.id]});
    let view = admin.put(&format!("/api/admin/offices/{id}"), body).await.ok(200);
    assert_eq!(view["desk_hours"], desk, "left out: kept");
    let body = json!({"name": "Tributi 2", "opening_hours": week, "desk_hours": [[], [], [], [], [], [], []], "member_ids": [w.carlo.id]});
    admin.put(&format!("/api/admin/offices/{id}"), body).await.ok(200);
    assert_eq!(offices().await.get(&id), Some(&false));
    // Officials are not administrators.
    w.anna
        .api
        .put(&format!("/api/admin/offices/{id}"), json!({"name": "X", "opening_hours": week, "desk_hours": desk}))
        .await
        .err(403, "forbidden");
}

// --- 9. retention ---------------------------------------------------------------------------------

/// The retention pass closes what a day left open and forgets the people after 30 days: a walk-in
/// nobody took (still `waiting`, never polled again), asked back and never called (`callback`) or
/// never finished (`serving`) is `abandoned` a day after it queued (audited by the system), and its
/// name, email and topic go once 30 days have passed, as for any other.
async fn retention_closes_and_forgets_old_walkins(w: World) {
    let now = w.now();
    let new = |name: &str| NewWalkin {
        office_id: w.anagrafe.clone(),
        secret_hash: sportello_tests::sha256_hex(name.as_bytes()),
        name: name.to_owned(),
        email: "someone@example.org".into(),
        topic: "Cambio di residenza".into(),
        service_id: None,
        lang: "it".into(),
    };
    let queue = |name: &'static str, at: i64| {
        let new = new(name);
        let store = w.store.clone();
        async move { store.create_walkin(&new, at).await.expect("queued").id }
    };
    let any: &(dyn Fn(&sportello_store::Walkin) -> bool + Sync) = &|_| true;
    let long_ago = now - 31 * 86_400;
    let waiting = queue("Mai chiamato", long_ago).await;
    let callback = queue("Mai richiamato", long_ago + 60).await;
    let change = WalkinChange { email: Some("someone@example.org"), ..Default::default() };
    w.store
        .change_walkin(
            &callback,
            &[WalkinState::Waiting],
            WalkinState::Callback,
            any,
            &change,
            "citizen",
            "callback",
            "",
            long_ago + 90,
        )
        .await
        .expect("callback");
    let serving = queue("Mai concluso", long_ago + 120).await;
    let change = WalkinChange { official_id: Some(&w.anna.id), called: true, ..Default::default() };
    w.store
        .change_walkin(
            &serving,
            &[WalkinState::Waiting],
            WalkinState::Serving,
            any,
            &change,
            "user:x",
            "called",
            "",
            long_ago + 180,
        )
        .await
        .expect("called");
    // Yesterday's, still waiting: closed, its people kept; this morning's: untouched.
    let yesterday = queue("Ieri", now - 25 * 3600).await;
    let today = queue("Oggi", now - 3600).await;

    retention::run_once(&w.store, w.test.data_dir(), now).await.expect("pass");
    for id in [&waiting, &callback, &serving] {
        let row = w.walkin(id).await;
        assert_eq!(row.state, WalkinState::Abandoned, "{row:?}");
        assert_eq!((row.name.as_str(), row.email.as_str(), row.topic.as_str()), ("", "", ""), "{row:?}");
        assert!(w.trail(id).await.contains(&("system".to_owned(), "abandoned".to_owned())));
    }
    let row = w.walkin(&yesterday).await;
    assert_eq!((row.state, row.name.as_str()), (WalkinState::Abandoned, "Ieri"));
    let row = w.walkin(&today).await;
    assert_eq!((row.state, row.name.as_str(), row.ended_at), (WalkinState::Waiting, "Oggi", None));
    // Anna, no longer serving anyone, is no longer «in a call».
    let colleagues = w.desk_of(&w.bruno).await["colleagues"].clone();
    let anna = colleagues.as_array().expect("colleagues").iter().find(|c| c["user_id"] == w.anna.id.as_str()).cloned();
    assert_eq!(anna.expect("Anna")["in_call"], false);
}
