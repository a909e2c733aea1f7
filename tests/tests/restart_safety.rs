//! Restart safety of bookings (issue 14): the real `sportello` binary is `kill -9`ed in the middle
//! of a burst of concurrent public bookings and started again on the same data, on SQLite and on
//! PostgreSQL. Every booking that was answered `201` is there afterwards, as its citizen sees it
//! (the manage API opens it with the secret they were given) and with its confirmation in the
//! outbox; nothing is half-written (each appointment has all its slot claims and its `booked` audit
//! row, no claim lacks its appointment); a booking committed whose answer the kill cut off is either
//! confirmed by email already or queued for the late confirmation (`confirmation_sent_at` unset,
//! sent by the reminder pass, `docs/booking.md`); and the restarted server books again.
//!
//! Why a confirmed booking survives: the `201` is sent only after the transaction committed, and a
//! commit is durable before it returns — SQLite in WAL mode writes the commit's frames to the file
//! (and, with `synchronous = FULL`, fsyncs them) and replays the WAL at the next open, ignoring a
//! transaction without its commit frame; PostgreSQL flushes its WAL at commit. A killed process
//! loses only what it had not committed, and the kernel keeps what it had written.
//!
//! The rooms (over real websockets): someone a host admitted before the kill comes back straight
//! into the room; someone who was waiting waits again and is in the host's `lobby` again; leaving
//! ends the admission.
//!
//! Needs `target/<profile>/sportello` (`cargo build -p sportello-server --bin sportello`).

#![cfg(unix)]

use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use serde_json::{Value, json};
use sportello_backoffice::token::{Claims, Role, TokenKey};
use sportello_store::{Modes, NewOffice, NewService, NewUser, StaffRole, Status, Store};
use sportello_tests::process::Sportello;
use sportello_tests::server::WsClient;
use sqlx::Row;

/// Weekdays 08:00–13:00 and 14:00–18:00: enough slots in the coming weeks whatever day it is.
const HOURS: &str = r#"[["08:00-13:00","14:00-18:00"],["08:00-13:00","14:00-18:00"],["08:00-13:00","14:00-18:00"],["08:00-13:00","14:00-18:00"],["08:00-13:00","14:00-18:00"],[],[]]"#;
/// Officials of the office: each slot takes this many bookings.
const OFFICIALS: usize = 3;
/// Distinct slots booked in the burst (each by every official).
const SLOTS: usize = 30;
/// Requests in flight at once.
const WORKERS: usize = 12;
/// The kill comes once this many bookings were answered `201`.
const KILL_AFTER: usize = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_mid_burst_loses_no_confirmed_booking_on_sqlite() {
    burst(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_mid_burst_loses_no_confirmed_booking_on_postgres() {
    let url = sportello_tests::server::postgres_url().await;
    burst(Some(url)).await;
}

const ROOM: &str = "vo-restart";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admissions_survive_a_kill_and_the_waiting_wait_again() {
    let root = tempfile::tempdir().expect("temp dir");
    let data = root.path().join("data");
    let tokens = TokenKey::load_or_create(&data).expect("the token key");
    let mut server = Sportello::start(&data, &[]).expect("sportello starts");
    let token = |identity: &str, role: Role, wait: bool| {
        let claims = Claims::new(ROOM, identity, identity, role, Duration::from_secs(3600));
        tokens.issue(&Claims { wait, ..claims }).expect("token")
    };
    let url = format!("ws://{}/ws?room={ROOM}", server.http);

    let (mut anna, _) = {
        let mut c = WsClient::connect(&url).await;
        let welcome = c.join(&token("anna", Role::Host, false)).await;
        (c, welcome)
    };
    let mut carla = WsClient::connect(&url).await;
    send_join(&mut carla, token("carla", Role::Participant, true)).await;
    assert_eq!(carla.recv_json().await["type"], "waiting");
    anna.recv_until("lobby").await;
    anna.send_json(&json!({"v": 1, "type": "admit", "participant_id": "carla"})).await;
    carla.recv_until("welcome").await;
    let mut dario = WsClient::connect(&url).await;
    send_join(&mut dario, token("dario", Role::Participant, true)).await;
    assert_eq!(dario.recv_json().await["type"], "waiting");
    // The admission is written right after the admit, by the room's persistence queue.
    let store = Store::connect(&format!("sqlite:{}", data.join("sportello.db").display())).await.expect("store");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !store.is_admitted(ROOM, "carla").await.expect("query") {
        assert!(Instant::now() < deadline, "the admission was never stored");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    server.kill9().expect("kill -9");
    for client in [anna, carla, dario] {
        client.drop_connection();
    }
    server.restart().expect("sportello starts again");

    // Carla comes back first, before any host: straight in.
    let mut carla = WsClient::connect(&url).await;
    send_join(&mut carla, token("carla", Role::Participant, true)).await;
    let first = carla.recv_json().await;
    assert_eq!(first["type"], "welcome", "the admitted participant must not wait again: {first}");
    // Dario waits again, and the host sees him waiting when she is back.
    let mut dario = WsClient::connect(&url).await;
    send_join(&mut dario, token("dario", Role::Participant, true)).await;
    assert_eq!(dario.recv_json().await["type"], "waiting");
    let mut anna = WsClient::connect(&url).await;
    let welcome = anna.join(&token("anna", Role::Host, false)).await;
    let others: Vec<&str> =
        welcome["participants"].as_array().expect("participants").iter().filter_map(|p| p["id"].as_str()).collect();
    assert_eq!(others, ["carla"]);
    let lobby = anna.recv_until("lobby").await;
    let waiting: Vec<&str> =
        lobby["waiting"].as_array().expect("waiting").iter().filter_map(|w| w["id"].as_str()).collect();
    assert_eq!(waiting, ["dario"]);

    // Leaving ends the admission: back, Carla waits like anyone.
    carla.leave().await;
    carla.expect_closed(1000).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.is_admitted(ROOM, "carla").await.expect("query") {
        assert!(Instant::now() < deadline, "the admission outlived the leave");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut carla = WsClient::connect(&url).await;
    send_join(&mut carla, token("carla", Role::Participant, true)).await;
    assert_eq!(carla.recv_json().await["type"], "waiting");
    store.close().await;
}

async fn send_join(client: &mut WsClient, token: String) {
    client.send_json(&json!({"v": 1, "type": "join", "token": token})).await;
}

/// A booking answered `201`: what the citizen holds.
#[derive(Debug, Clone)]
struct Confirmed {
    code: String,
    secret: String,
    email: String,
    start: Timestamp,
}

#[derive(Debug, Default)]
struct Outcomes {
    confirmed: Vec<Confirmed>,
    /// Refused with a status (a slot taken meanwhile, …).
    refused: Vec<(u16, String)>,
    /// No answer: the kill cut the request off (or it found the server gone).
    unanswered: usize,
}

async fn burst(postgres: Option<String>) {
    let root = tempfile::tempdir().expect("temp dir");
    let data = root.path().join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    let db_url = postgres.clone().unwrap_or_else(|| format!("sqlite:{}", data.join("sportello.db").display()));
    let (office, service) = {
        let store = Store::connect(&db_url).await.expect("the database opens");
        let seeded = seed(&store).await;
        store.close().await;
        seeded
    };
    let extra: Vec<String> = postgres.iter().flat_map(|url| ["--database-url".to_owned(), url.clone()]).collect();
    let mut server = Sportello::start(&data, &extra).expect("sportello starts");
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("client");

    // The slots the burst books, from the public API as the booking page reads them.
    let starts = free_starts(&http, &server.url(), &office, &service, SLOTS).await;
    let mut queue = VecDeque::new();
    for (n, start) in starts.iter().enumerate() {
        for k in 0..OFFICIALS {
            queue.push_back((format!("burst-{n}-{k}@example.org"), start.clone()));
        }
    }
    let total = queue.len();
    let queue = Arc::new(Mutex::new(queue));
    let outcomes = Arc::new(Mutex::new(Outcomes::default()));
    let (confirmed_count, in_flight) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            let (queue, outcomes, http, url) = (queue.clone(), outcomes.clone(), http.clone(), server.url());
            let (office, service) = (office.clone(), service.clone());
            let (confirmed_count, in_flight) = (confirmed_count.clone(), in_flight.clone());
            tokio::spawn(async move {
                loop {
                    let Some((email, start)) = queue.lock().expect("queue").pop_front() else { return };
                    in_flight.fetch_add(1, Ordering::SeqCst);
                    let sent = http
                        .post(format!("{url}/api/public/appointments"))
                        .json(&booking(&office, &service, &start, &email))
                        .send()
                        .await;
                    let answer = match sent {
                        Ok(r) => {
                            let status = r.status().as_u16();
                            r.text().await.map(|text| (status, text))
                        }
                        Err(e) => Err(e),
                    };
                    in_flight.fetch_sub(1, Ordering::SeqCst);
                    let mut outcomes = outcomes.lock().expect("outcomes");
                    match answer {
                        Ok((201, text)) => {
                            let body: Value = serde_json::from_str(&text).expect("a 201 is JSON");
                            outcomes.confirmed.push(Confirmed {
                                code: body["code"].as_str().expect("code").to_owned(),
                                secret: body["secret"].as_str().expect("secret").to_owned(),
                                email,
                                start: start.parse().expect("an RFC 3339 start"),
                            });
                            confirmed_count.fetch_add(1, Ordering::SeqCst);
                        }
                        Ok((status, text)) => outcomes.refused.push((status, text)),
                        Err(_) => {
                            outcomes.unanswered += 1;
                            // The server is gone: the rest of the burst would only be refused.
                            queue.lock().expect("queue").clear();
                        }
                    }
                }
            })
        })
        .collect();

    // SIGKILL once enough bookings are confirmed, while requests are in flight.
    let waited = Instant::now();
    while confirmed_count.load(Ordering::SeqCst) < KILL_AFTER {
        assert!(
            waited.elapsed() < Duration::from_secs(120),
            "only {} bookings confirmed in 2 minutes: {:?}\n{}",
            confirmed_count.load(Ordering::SeqCst),
            outcomes.lock().expect("outcomes").refused,
            server.last_log()
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let flying = in_flight.load(Ordering::SeqCst);
    server.kill9().expect("kill -9");
    for worker in workers {
        worker.await.expect("worker");
    }
    let outcomes = std::mem::take(&mut *outcomes.lock().expect("outcomes"));
    println!(
        "burst of {total}: {} confirmed, {} refused, {} unanswered; {flying} requests in flight at the kill",
        outcomes.confirmed.len(),
        outcomes.refused.len(),
        outcomes.unanswered
    );
    assert!(flying > 0, "the kill must land in the middle of the burst");
    assert!(outcomes.unanswered > 0, "the kill cut requests off");
    assert!(
        outcomes.refused.iter().all(|(status, _)| *status == 409),
        "only taken slots may be refused: {:?}",
        outcomes.refused
    );

    // --- the same data, a new process.
    server.restart().expect("sportello starts again on the same data");
    let store = Store::connect(&db_url).await.expect("the database opens");

    // Every confirmed booking is there, as its citizen sees it.
    for c in &outcomes.confirmed {
        let stored = store.appointment_by_code(&c.code).await.expect("query");
        let stored = stored.unwrap_or_else(|| panic!("confirmed booking {} lost by the kill", c.code));
        assert_eq!(
            (stored.status, stored.starts_at, stored.email.as_str()),
            (Status::Confirmed, c.start.as_second(), c.email.as_str())
        );
        let r = http
            .get(format!("{}/api/public/appointments/{}", server.url(), c.code))
            .header("X-Booking-Secret", &c.secret)
            .send()
            .await
            .expect("request");
        assert_eq!(r.status().as_u16(), 200, "the citizen opens {} after the restart", c.code);
    }

    // Nothing half-written.
    let pool = store.pool();
    let count = |sql: &'static str| async move {
        let row = sqlx::query(sql).fetch_one(pool).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        row.try_get::<i64, _>(0).expect("a count")
    };
    assert_eq!(
        count(
            "SELECT COUNT(*) FROM appointments a WHERE \
             (SELECT COUNT(*) FROM slot_claims c WHERE c.appointment_id = a.id) != (a.ends_at - a.starts_at) / 300"
        )
        .await,
        0,
        "an appointment without all its slot claims"
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM slot_claims c WHERE NOT EXISTS (SELECT 1 FROM appointments a WHERE a.id = c.appointment_id)")
            .await,
        0,
        "a slot claim without its appointment"
    );
    assert_eq!(
        count(
            "SELECT COUNT(*) FROM appointments a WHERE NOT EXISTS \
             (SELECT 1 FROM appointment_events e WHERE e.appointment_id = a.id AND e.action = 'booked')"
        )
        .await,
        0,
        "an appointment without its audit row"
    );
    if postgres.is_none() {
        let check = sqlx::query("PRAGMA integrity_check").fetch_one(pool).await.expect("integrity_check");
        assert_eq!(check.try_get::<String, _>(0).expect("text"), "ok");
        // What the durability argument above rests on (`Store::connect`).
        let mode = sqlx::query("PRAGMA journal_mode").fetch_one(pool).await.expect("journal_mode");
        assert_eq!(mode.try_get::<String, _>(0).expect("text").to_lowercase(), "wal");
        let sync = sqlx::query("PRAGMA synchronous").fetch_one(pool).await.expect("synchronous");
        assert_eq!(sync.try_get::<i64, _>(0).expect("number"), 2, "synchronous = FULL");
    }

    // Emails: every confirmed booking has its confirmation; a booking committed whose answer the
    // kill cut off has its email or waits for the late one.
    let mailed = recipients(&data.join("outbox"));
    for c in &outcomes.confirmed {
        assert!(mailed_to(&mailed, &c.email), "no confirmation for {} ({})", c.code, c.email);
    }
    let rows = sqlx::query("SELECT email, confirmation_sent_at FROM appointments").fetch_all(pool).await.expect("rows");
    let confirmed: Vec<&str> = outcomes.confirmed.iter().map(|c| c.email.as_str()).collect();
    let mut cut_off = 0;
    for row in &rows {
        let email: String = row.try_get("email").expect("email");
        let sent: Option<i64> = row.try_get("confirmation_sent_at").expect("confirmation_sent_at");
        if !confirmed.contains(&email.as_str()) {
            cut_off += 1;
            assert!(
                mailed_to(&mailed, &email) || sent.is_none(),
                "{email}: recorded as sent, yet no email in the outbox"
            );
        }
    }
    println!(
        "{} appointments stored: {} confirmed to the client, {cut_off} committed without an answer",
        rows.len(),
        confirmed.len()
    );

    // The restarted server books again.
    let r = http
        .post(format!("{}/api/public/appointments", server.url()))
        .json(&booking(&office, &service, &starts[SLOTS - 1], "after-restart@example.org"))
        .send()
        .await
        .expect("request");
    // The last slot may have been taken by all officials already; then it says so.
    assert!(matches!(r.status().as_u16(), 201 | 409), "{}", r.text().await.unwrap_or_default());
    store.close().await;
}

/// An office open on weekdays with [`OFFICIALS`] officials, a 30-minute video service, and limits
/// that a burst from one address does not meet (their own tests are in `booking_api.rs`).
async fn seed(store: &Store) -> (String, String) {
    for (key, value) in [("booking.rate_limit_per_minute", "100000"), ("booking.rate_limit_per_day", "100000")] {
        store.set_setting(key, value).await.expect("setting");
    }
    let office = store
        .create_office(
            &NewOffice {
                name: "Anagrafe".into(),
                description: String::new(),
                address: "Piazza del Comune 1".into(),
                email: "anagrafe@comune.example".into(),
                phone: String::new(),
                opening_hours: HOURS.into(),
            },
            0,
        )
        .await
        .expect("office");
    let mut members = Vec::new();
    for n in 0..OFFICIALS {
        let official = NewUser {
            email: format!("funzionario{n}@comune.example"),
            display_name: format!("Funzionario {n}"),
            role: StaffRole::Official,
        };
        members.push(store.create_user(&official, 0).await.expect("official").id);
    }
    store.set_office_members(&office.id, &members).await.expect("members");
    let service = store
        .create_service(
            &NewService {
                name: "Carta d'identità elettronica".into(),
                description: String::new(),
                duration_minutes: 30,
                what_to_bring: String::new(),
                modes: Modes::Video,
                office_ids: vec![office.id.clone()],
            },
            0,
        )
        .await
        .expect("service");
    (office.id, service.id)
}

fn booking(office: &str, service: &str, start: &str, email: &str) -> Value {
    json!({
        "office_id": office, "service_id": service, "start": start, "mode": "video",
        "first_name": "Anna", "last_name": "Rossi", "email": email,
        "details": "", "lang": "it", "website": ""
    })
}

/// The first `n` free starts the booking page offers, skipping the next two days (the burst must
/// not race the notice period).
async fn free_starts(http: &reqwest::Client, url: &str, office: &str, service: &str, n: usize) -> Vec<String> {
    let get = |path: String| async move {
        let r = http.get(format!("{url}{path}")).send().await.expect("request");
        assert_eq!(r.status().as_u16(), 200);
        r.json::<Value>().await.expect("JSON")
    };
    let soon = Timestamp::now().as_second() + 2 * 86_400;
    let months = get(format!("/api/public/offices/{office}/months?service={service}")).await;
    let mut starts = Vec::new();
    for month in months["months"].as_array().expect("months") {
        let month = month["month"].as_str().expect("month");
        let slots = get(format!("/api/public/offices/{office}/slots?service={service}&month={month}")).await;
        for slot in slots["slots"].as_array().expect("slots") {
            let start = slot["start"].as_str().expect("start");
            if start.parse::<Timestamp>().expect("RFC 3339").as_second() > soon {
                starts.push(start.to_owned());
            }
        }
        if starts.len() >= n {
            starts.truncate(n);
            return starts;
        }
    }
    panic!("only {} free slots offered", starts.len());
}

/// The `To` addresses of the emails in the outbox.
fn recipients(outbox: &Path) -> Vec<String> {
    use mailparse::MailHeaderMap;
    let mut to = Vec::new();
    for entry in std::fs::read_dir(outbox).expect("the outbox") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|x| x == "eml") {
            let raw = std::fs::read(&path).expect("eml");
            let parsed = mailparse::parse_mail(&raw).expect("an email");
            to.push(parsed.headers.get_first_value("To").unwrap_or_default().trim().to_owned());
        }
    }
    to
}

/// Whether one of the `To` headers is `email` (bare, or `Name <email>`).
fn mailed_to(recipients: &[String], email: &str) -> bool {
    recipients.iter().any(|to| to == email || to.ends_with(&format!("<{email}>")))
}
