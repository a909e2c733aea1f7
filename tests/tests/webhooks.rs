//! Signed webhooks (issue 14) over real HTTP: an administrator sets an endpoint through the API, a
//! citizen books through the public API, and a loopback receiver written here gets the signed
//! `appointment.booked` — refused once with a 500, accepted on the retry — while the delivery log
//! shows both attempts. A council's secret ballot, voted over real websockets, goes out as totals
//! only. Every signature is checked by an independent implementation: Python's `standardwebhooks`
//! (PyPI), run on what the receiver got (`tests/webhooks/verify.py`).

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;
use serde_json::{Value, json};
use sportello_store::{Modes, NewUser, NewWebhookEndpoint, StaffRole, User, WebhookEventType};
use sportello_tests::council::{RestCouncil, send, state_until};
use sportello_tests::http_stub;
use sportello_tests::server::{Clock, TestServer, eventually};
use tokio::sync::Semaphore;

const PASSWORD: &str = "correct horse battery";

// --- a webhook receiver on loopback -----------------------------------------------------------------

/// One request as the receiver got it: lower-case headers and the body's bytes.
#[derive(Debug, Clone)]
struct Received {
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

/// A minimal HTTP/1.1 server: records every POST, then answers with the next queued status (204
/// once the queue is empty) — but only when the test lets it (`gate`), so the test decides when the
/// receiver is "down".
#[derive(Clone)]
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Received>>>,
    answers: Arc<Mutex<VecDeque<u16>>>,
    gate: Arc<Semaphore>,
}

impl Receiver {
    async fn start(answers: &[u16], open: bool) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/hooks/sportello", listener.local_addr().expect("addr"));
        let receiver = Receiver {
            url,
            got: Arc::default(),
            answers: Arc::new(Mutex::new(answers.iter().copied().collect())),
            gate: Arc::new(Semaphore::new(if open { 1_000 } else { 0 })),
        };
        let r = receiver.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(r.clone().handle(socket));
            }
        });
        receiver
    }

    async fn handle(self, mut socket: tokio::net::TcpStream) {
        let Some(request) = http_stub::read_request(&mut socket).await else { return };
        assert!(request.method == "POST" && request.path == "/hooks/sportello", "{request:?}");
        self.got.lock().unwrap().push(Received { headers: request.headers, body: request.body });
        match self.gate.acquire().await {
            Ok(permit) => permit.forget(),
            Err(_) => return,
        }
        let status = self.answers.lock().unwrap().pop_front().unwrap_or(204);
        http_stub::reply(&mut socket, status, None).await;
    }

    fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }
}

/// Checks every message with Python's `standardwebhooks` and returns the payloads it parsed.
#[track_caller]
fn verify_with_python(secret: &str, messages: &[Received]) -> Vec<Value> {
    python_verifier(secret, messages).unwrap_or_else(|e| panic!("standardwebhooks refused a message: {e}"))
}

fn python_verifier(secret: &str, messages: &[Received]) -> Result<Vec<Value>, String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("messages.json");
    let list: Vec<Value> = messages
        .iter()
        .map(|m| json!({"headers": m.headers, "body": String::from_utf8(m.body.clone()).expect("UTF-8 body")}))
        .collect();
    std::fs::write(&file, serde_json::to_vec(&list).expect("json")).expect("write");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("webhooks/verify.py");
    let out = std::process::Command::new("python3").arg(&script).arg(secret).arg(&file).output().expect("python3 runs");
    if !out.status.success() {
        return Err(format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)));
    }
    Ok(serde_json::from_slice(&out.stdout).expect("the verifier prints the payloads"))
}

// --- a working Tuesday morning with one office -------------------------------------------------------

fn rome() -> TimeZone {
    sportello_domain::europe_rome().expect("tzdb")
}

/// The next Tuesday (strictly after today) that is not a holiday.
fn next_tuesday() -> Date {
    let mut d = Timestamp::now().to_zoned(rome()).date().tomorrow().expect("date");
    loop {
        let holidays = sportello_domain::holiday_dates(d.year(), d.year() + 1, None).expect("holidays");
        if d.weekday() == Weekday::Tuesday && !holidays.contains(&d) {
            return d;
        }
        d = d.tomorrow().expect("date");
    }
}

fn local(d: Date, h: i8, m: i8) -> Timestamp {
    d.at(h, m, 0, 0).to_zoned(rome()).expect("local time").timestamp()
}

/// The office Anagrafe (weekdays 09:00–12:00) with its official Mario and a video-or-office service.
async fn seed_office(server: &TestServer) -> (String, String) {
    let store = &server.server.store;
    store.set_setting("booking.min_notice_minutes", "50").await.expect("notice");
    let new = NewUser { email: "mario@comune.example".into(), display_name: "Mario".into(), role: StaffRole::Official };
    let official = store.create_user(&new, 0).await.expect("official");
    let office = server.seed_office("Anagrafe", &["09:00-12:00"], &[official.id]).await.expect("office");
    let service = server
        .seed_service("Carta d'identità elettronica", Modes::Both, std::slice::from_ref(&office.id))
        .await
        .expect("service");
    (office.id, service.id)
}

async fn get_json(http: &reqwest::Client, url: String) -> (u16, Value) {
    let r = http.get(url).send().await.expect("request");
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_booking_is_signed_retried_after_a_500_and_logged() {
    booking_scenario(None).await;
}

/// The same on a throwaway PostgreSQL: the outbox's SQL is portable.
#[tokio::test]
async fn a_booking_is_signed_retried_after_a_500_and_logged_on_postgres() {
    let url = sportello_tests::server::postgres_url().await;
    booking_scenario(Some(url)).await;
}

async fn booking_scenario(database_url: Option<String>) {
    let tuesday = next_tuesday();
    let clock = Clock::offset(local(tuesday, 8, 0).as_second() - Timestamp::now().as_second());
    let server = TestServer::start_at(clock.clone(), |c| {
        c.reminder_lead = Duration::from_secs(1);
        if database_url.is_some() {
            c.database_url = database_url;
        }
    })
    .await;
    let base = server.url();
    // The first administrator's link exists only while there is no staff at all.
    let http = server.first_admin_client(PASSWORD).await;
    let (office, service) = seed_office(&server).await;
    // The receiver refuses the first delivery, and answers nothing until the test lets it.
    let receiver = Receiver::start(&[500], false).await;

    // --- an administrator sets the endpoint ---------------------------------------------------------
    let refused = http
        .post(format!("{base}/api/admin/webhooks"))
        .json(&json!({"url": receiver.url, "event_types": ["appointment.exploded"]}))
        .send()
        .await
        .expect("create");
    assert_eq!(refused.status(), 400);
    let bad_url = http.post(format!("{base}/api/admin/webhooks")).json(&json!({"url": "file:///etc/passwd"})).send();
    assert_eq!(bad_url.await.expect("create").status(), 400);
    let anonymous = reqwest::Client::new().get(format!("{base}/api/admin/webhooks")).send().await.expect("list");
    assert_eq!(anonymous.status(), 401);
    // The OpenAPI document describes the webhook API.
    let (_, doc) = get_json(&http, format!("{base}/api/openapi.json")).await;
    for path in ["/api/admin/webhooks", "/api/admin/webhooks/{id}", "/api/admin/webhooks/{id}/deliveries"] {
        assert!(doc["paths"][path].is_object(), "{path} missing from the OpenAPI document");
    }
    assert!(doc["components"]["schemas"]["CreatedWebhook"].is_object());

    let created = http
        .post(format!("{base}/api/admin/webhooks"))
        .json(&json!({"url": receiver.url, "description": "Protocollo", "event_types": ["appointment.booked"]}))
        .send()
        .await
        .expect("create");
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.expect("JSON");
    let id = created["id"].as_str().expect("id").to_owned();
    let secret = created["secret"].as_str().expect("the secret, once").to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    let (status, list) = get_json(&http, format!("{base}/api/admin/webhooks")).await;
    assert_eq!(status, 200);
    assert_eq!(list[0]["id"], id.as_str());
    assert_eq!(list[0]["event_types"], json!(["appointment.booked"]));
    assert!(!list.to_string().contains(&secret), "the secret is shown at creation only: {list}");

    // --- a citizen books while the receiver answers nothing ----------------------------------------
    let start = local(tuesday, 9, 0).to_zoned(rome()).strftime("%Y-%m-%dT%H:%M:%S%:z").to_string();
    let booking = reqwest::Client::new()
        .post(format!("{base}/api/public/appointments"))
        .json(&json!({
            "office_id": office, "service_id": service, "start": start, "mode": "video",
            "first_name": "Anna", "last_name": "Rossi", "email": "anna.rossi@example.org",
            "details": "Rinnovo", "lang": "it", "website": ""
        }))
        .send()
        .await
        .expect("book");
    // Confirmed although the receiver has not answered anything yet (it cannot: its gate is shut).
    assert_eq!(booking.status(), 201);
    let booking: Value = booking.json().await.expect("JSON");
    let code = booking["code"].as_str().expect("code").to_owned();
    let appointment = server.server.store.appointment_by_code(&code).await.expect("store").expect("booked");

    // The first attempt reaches the receiver, which now answers 500.
    eventually("the first attempt", || async { (!receiver.received().is_empty()).then_some(()) }).await;
    receiver.gate.add_permits(1);
    let deliveries = format!("{base}/api/admin/webhooks/{id}/deliveries");
    let log = eventually("the 500 logged", || async {
        let (_, log) = get_json(&http, deliveries.clone()).await;
        (log[0]["attempts"].as_array().map(Vec::len) == Some(1)).then_some(log)
    })
    .await;
    assert_eq!(log[0]["status"], "pending");
    assert_eq!(log[0]["attempts"][0]["status_code"], 500);
    assert!(log[0]["next_attempt_at"].is_string(), "{log}");
    assert_eq!(receiver.received().len(), 1, "no retry before its time");

    // 30 s later on the server's clock the retry goes out and is accepted.
    clock.advance(31);
    receiver.gate.add_permits(1);
    let log = eventually("the retry delivered", || async {
        let (_, log) = get_json(&http, deliveries.clone()).await;
        (log[0]["status"] == "delivered").then_some(log)
    })
    .await;
    assert_eq!(log.as_array().map(Vec::len), Some(1), "{log}");
    let attempts: Vec<(i64, Option<i64>)> = log[0]["attempts"]
        .as_array()
        .expect("attempts")
        .iter()
        .map(|a| (a["attempt"].as_i64().unwrap(), a["status_code"].as_i64()))
        .collect();
    assert_eq!(attempts, [(1, Some(500)), (2, Some(204))]);
    assert_eq!(log[0]["event_type"], "appointment.booked");
    assert!(log[0]["attempts"][1]["error"].is_null());

    // --- what the receiver got ----------------------------------------------------------------------
    let got = receiver.received();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].body, got[1].body, "a retry sends the same body");
    assert_eq!(got[0].headers["webhook-id"], got[1].headers["webhook-id"], "and the same id");
    assert_eq!(got[0].headers["webhook-id"], log[0]["event_id"].as_str().unwrap());
    assert_eq!(got[0].headers["content-type"], "application/json");
    for m in &got {
        let ts: i64 = m.headers["webhook-timestamp"].parse().expect("Unix seconds");
        assert!((ts - clock.now()).abs() < 120, "the attempt's time on the server's clock");
    }
    assert_ne!(got[0].headers["webhook-signature"], got[1].headers["webhook-signature"], "signed per attempt");
    let payloads = verify_with_python(&secret, &got);
    let p = &payloads[1];
    assert_eq!(p["type"], "appointment.booked");
    assert_eq!(p["data"]["id"], appointment.id.as_str());
    assert_eq!(p["data"]["code"], code.as_str());
    assert_eq!(p["data"]["status"], "confirmed");
    assert_eq!(p["data"]["starts_at"], local(tuesday, 9, 0).as_second());
    let text = p.to_string();
    for personal in ["Anna", "Rossi", "anna.rossi", "Rinnovo"] {
        assert!(!text.contains(personal), "no personal data in a webhook: {text}");
    }
    // A signature made with another secret is refused by the same verifier (it can fail).
    let forged = python_verifier(&sportello_backoffice::webhooks::new_secret(), &got);
    assert!(forged.is_err_and(|e| e.contains("not verified")), "another secret must not verify");

    // --- the endpoint goes, with its log ------------------------------------------------------------
    let deleted = http.delete(format!("{base}/api/admin/webhooks/{id}")).send().await.expect("delete");
    assert_eq!(deleted.status(), 204);
    assert_eq!(get_json(&http, deliveries.clone()).await.0, 404);
    server.shutdown().await;
}

// --- a council session's secret ballot ------------------------------------------------------------

#[tokio::test]
async fn a_secret_ballot_goes_out_as_totals_only() {
    let server = TestServer::start().await;
    let store = server.server.store.clone();
    let receiver = Receiver::start(&[], true).await;
    let secret = sportello_backoffice::webhooks::new_secret();
    let council_types = vec![
        WebhookEventType::CouncilSessionStarted,
        WebhookEventType::CouncilAgendaItemChanged,
        WebhookEventType::CouncilVoteClosed,
        WebhookEventType::CouncilSessionEnded,
    ];
    let endpoint = NewWebhookEndpoint {
        url: receiver.url.clone(),
        description: String::new(),
        event_types: council_types,
        enabled: true,
    };
    store.create_webhook_endpoint(&endpoint, &secret, 0).await.expect("endpoint");

    let council = RestCouncil::create(&server, &["Approvazione del bilancio"]).await;
    let (chair, councillors, item) = (&council.chair, &council.councillors, council.items[0].clone());
    let token = |user: &User| council.token(user).to_owned();
    let room = council.room();
    let mut chair_ws = server.connect(&room).await;
    chair_ws.join(&token(chair)).await;
    let mut others = Vec::new();
    for u in councillors {
        let mut ws = server.connect(&room).await;
        ws.join(&token(u)).await;
        others.push(ws);
    }
    state_until(&mut chair_ws, "everyone in", |s| {
        s["members"].as_array().is_some_and(|m| m.iter().filter(|m| m["in_room"] == true).count() == 4)
    })
    .await;
    send(&mut chair_ws, json!({"type": "council.roll_call_start"})).await;
    for ws in others.iter_mut() {
        state_until(ws, "a roll call", |s| s["roll_call"]["open"] == true).await;
        send(ws, json!({"type": "council.present"})).await;
    }
    state_until(&mut chair_ws, "the answers", |s| s["roll_call"]["present"].as_array().is_some_and(|p| p.len() == 4))
        .await;
    send(&mut chair_ws, json!({"type": "council.roll_call_end"})).await;
    send(&mut chair_ws, json!({"type": "council.set_item", "item_id": item})).await;
    send(&mut chair_ws, json!({"type": "council.vote_open", "item_id": item, "secret": true})).await;
    for (ws, choice) in others.iter_mut().zip(["favourable", "contrary", "favourable"]) {
        state_until(ws, "the ballot open", |s| s["vote"]["open"] == true).await;
        send(ws, json!({"type": "council.vote", "choice": choice})).await;
    }
    state_until(&mut chair_ws, "three ballots", |s| s["vote"]["cast"] == 3).await;
    send(&mut chair_ws, json!({"type": "council.vote_close"})).await;
    let closed = state_until(&mut chair_ws, "the result", |s| s["vote"]["open"] == false).await;
    let vote = closed["vote"]["id"].as_str().expect("vote id").to_owned();

    let got = eventually("the vote's webhook", || async {
        let got = receiver.received();
        got.iter().any(|m| String::from_utf8_lossy(&m.body).contains("council.vote_closed")).then_some(got)
    })
    .await;
    let payloads = verify_with_python(&secret, &got);
    let types: Vec<&str> = payloads.iter().filter_map(|p| p["type"].as_str()).collect();
    assert!(types.contains(&"council.session_started"), "{types:?}");
    assert!(
        payloads.iter().any(|p| p["type"] == "council.agenda_item_changed"
            && p["data"]["item_id"] == item.as_str()
            && p["data"]["change"] == "started"
            && p["data"]["title"] == "Approvazione del bilancio"),
        "{payloads:?}"
    );
    let closed = payloads.iter().find(|p| p["type"] == "council.vote_closed").expect("vote_closed");
    assert_eq!(closed["data"]["vote_id"], vote.as_str());
    assert_eq!(closed["data"]["secret"], true);
    assert_eq!(closed["data"]["totals"], json!({"favourable": 2, "contrary": 1, "abstained": 0}));
    assert_eq!(closed["data"]["outcome"], "approved");
    // Totals only: no councillor is named anywhere in what went out about the vote.
    let text = closed.to_string();
    for u in councillors {
        assert!(!text.contains(&u.id) && !text.contains(&u.display_name), "a voter in the payload: {text}");
    }
    let mut keys: Vec<&String> = closed["data"].as_object().expect("data").keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        ["closed_at", "item_id", "item_title", "outcome", "secret", "session_id", "totals", "vote_id"],
        "nothing but the result"
    );
    server.shutdown().await;
}

/// Each change of an appointment makes its own event, in the order the changes happened.
#[tokio::test]
async fn every_appointment_change_makes_its_event() {
    use sportello_store::{Mode, Reschedule, Status};
    let server = TestServer::start().await;
    let store = server.server.store.clone();
    let receiver = Receiver::start(&[], true).await;
    let secret = sportello_backoffice::webhooks::new_secret();
    let endpoint = NewWebhookEndpoint {
        url: receiver.url.clone(),
        description: String::new(),
        event_types: vec![],
        enabled: true,
    };
    store.create_webhook_endpoint(&endpoint, &secret, 0).await.expect("endpoint");
    let now = server.server.tokens.clock().now();
    let a = server.seed_appointment(now + 3 * 3600).await.expect("booked");
    let to = Reschedule {
        starts_at: a.starts_at + 3600,
        ends_at: a.ends_at + 3600,
        official_id: a.official_id.clone(),
        mode: Mode::Video,
    };
    store.reschedule(&a.id, &to, "citizen", now).await.expect("moved");
    store.mark_reminded(&a.id, now).await.expect("reminded");
    store.emit_appointment_event(&a.id, WebhookEventType::AppointmentCitizenWaiting, now).await.expect("waiting");
    store.mark_citizen_joined(&a.id, now).await.expect("admitted");
    store.mark_citizen_joined(&a.id, now).await.expect("admitted once only");
    store.set_status(&a.id, &[Status::Confirmed], Status::NoShow, "official", "", now).await.expect("no-show");
    store.set_status(&a.id, &[Status::NoShow], Status::Cancelled, "official", "", now).await.expect("cancelled");
    let got = eventually("seven events", || async {
        let got = receiver.received();
        (got.len() >= 7).then_some(got)
    })
    .await;
    let payloads = verify_with_python(&secret, &got);
    // Attempts run side by side, so arrivals may interleave: the event ids sort as they were written.
    let mut ids: Vec<(String, String)> = got
        .iter()
        .zip(&payloads)
        .map(|(m, p)| (m.headers["webhook-id"].clone(), p["type"].as_str().unwrap_or_default().to_owned()))
        .collect();
    ids.sort();
    let types: Vec<&str> = ids.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(
        types,
        [
            "appointment.booked",
            "appointment.moved",
            "appointment.reminded",
            "appointment.citizen_waiting",
            "appointment.admitted",
            "appointment.no_show",
            "appointment.cancelled",
        ]
    );
    let moved = payloads.iter().find(|p| p["type"] == "appointment.moved").expect("moved");
    assert_eq!(moved["data"]["starts_at"], a.starts_at + 3600);
    assert!(payloads.iter().all(|p| p["data"]["id"] == a.id.as_str()));
    // Nothing else is pending: a second admission made no event (the sender polls every second).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(receiver.received().len(), 7, "one delivery per event");
    server.shutdown().await;
}
