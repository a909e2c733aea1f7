//! App IO notifications (issue 19) over real HTTP: an administrator configures App IO through the
//! admin API; Sportello talks to Prism (`tests/src/prism.rs`), which checks every request against
//! IO's published contract (`tests/appio/io-services-openapi.yaml`) and forwards it to a stand-in
//! for IO written here, which records each request and answers per fiscal code: allowed → 200
//! `{"sender_allowed":true}`, opted out → 200 false, unknown → 404, and 503 for everything while
//! the test says IO is down. What is asserted is what the citizen's app would get.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde_json::{Value, json};
use sportello_backoffice::context::{BackOffice, CalendarPolicy};
use sportello_store::{CouncilBody, Modes, NewCouncilSession, NewUser, StaffRole};
use sportello_tests::http_stub::{self, StubRequest};
use sportello_tests::prism::Prism;
use sportello_tests::server::{Clock, TestServer, eventually, next_working_tuesday};

const PASSWORD: &str = "correct horse battery";
const API_KEY: &str = "io-test-subscription-key";
/// On IO, the municipality's service allowed.
const ALLOWED: &str = "RSSMRA85T10A562S";
const ALLOWED_TOO: &str = "VRDGPP80A01H501U";
/// On IO, the municipality's service turned off.
const OPTED_OUT: &str = "BNCLRA90E41H501N";
/// Not on IO (an omocode: letters where digits were).
const UNKNOWN: &str = "RSSMRA85T10A56NH";
const COUNCILLOR: &str = "FRRLCU75M15F205V";
const CHAIR: &str = "CSTDRA70C22L219L";
const SERVICE: &str = "Carta d'identità elettronica";

// --- the stand-in for IO ----------------------------------------------------------------------------

/// One request as IO got it (through Prism).
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    key: Option<String>,
    body: Value,
}

#[derive(Clone, Default)]
struct Io {
    seen: Arc<Mutex<Vec<Seen>>>,
    down: Arc<AtomicBool>,
    ids: Arc<AtomicUsize>,
}

impl Io {
    async fn start() -> (Io, String) {
        let io = Io::default();
        let answering = io.clone();
        let url = http_stub::serve(move |request| answering.answer(&request)).await;
        (io, url)
    }

    /// What IO answers: per fiscal code, 503 to everything while it is down.
    fn answer(&self, request: &StubRequest) -> (u16, Value) {
        let body = request.json();
        let key = request.headers.get("ocp-apim-subscription-key").cloned();
        self.seen.lock().expect("lock").push(Seen { path: request.path.clone(), key, body: body.clone() });
        if self.down.load(Ordering::SeqCst) {
            return (503, json!({"title": "Service Unavailable", "status": 503}));
        }
        match (request.method.as_str(), request.path.as_str()) {
            ("POST", "/profiles") => match body["fiscal_code"].as_str() {
                Some(OPTED_OUT) => (200, json!({"sender_allowed": false})),
                Some(UNKNOWN) => (404, json!({"title": "Profile not found", "status": 404})),
                _ => (200, json!({"sender_allowed": true, "preferred_languages": ["it_IT"]})),
            },
            ("POST", "/messages") => {
                let n = self.ids.fetch_add(1, Ordering::SeqCst);
                (201, json!({"id": format!("01IOTEST{n:018}")}))
            }
            _ => (404, json!({"title": "Not Found", "status": 404})),
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }

    /// What IO got for one fiscal code, in order.
    fn seen_for(&self, code: &str) -> Vec<Seen> {
        self.seen().into_iter().filter(|s| s.body["fiscal_code"] == code).collect()
    }

    /// The messages (not profile checks) IO got for one fiscal code.
    fn messages_for(&self, code: &str) -> Vec<Value> {
        self.seen_for(code).into_iter().filter(|s| s.path == "/messages").map(|s| s.body).collect()
    }

    fn outage(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }
}

// --- a working Tuesday morning with one office -------------------------------------------------------

fn rome() -> TimeZone {
    sportello_domain::europe_rome().expect("tzdb")
}

fn local(d: Date, h: i8, m: i8) -> Timestamp {
    d.at(h, m, 0, 0).to_zoned(rome()).expect("local time").timestamp()
}

fn rfc3339(t: Timestamp) -> String {
    t.to_zoned(rome()).strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
}

/// IO's form of an instant: UTC with milliseconds.
fn io_time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S.000Z").to_string()
}

struct World {
    server: TestServer,
    clock: Clock,
    tuesday: Date,
    office: String,
    service: String,
    admin: reqwest::Client,
    http: reqwest::Client,
    io: Io,
    prism: Prism,
}

impl World {
    async fn start() -> World {
        let tuesday = next_working_tuesday();
        let clock = Clock::offset(local(tuesday, 8, 0).as_second() - Timestamp::now().as_second());
        // The background reminder pass stays out of the way: the test runs the pass itself.
        let server = TestServer::start_at(clock.clone(), |c| c.reminder_lead = Duration::from_secs(1)).await;
        let store = &server.server.store;
        store.set_setting("booking.min_notice_minutes", "50").await.expect("notice");
        store.set_setting("booking.rate_limit_per_minute", "1000").await.expect("limit");
        store.set_setting("municipality.name", "Comune di Esempio").await.expect("name");
        let admin = server.first_admin_client(PASSWORD).await;
        let new =
            NewUser { email: "mario@comune.example".into(), display_name: "Mario".into(), role: StaffRole::Official };
        let official = store.create_user(&new, 0).await.expect("official");
        let office = server.seed_office("Anagrafe", &["09:00-12:00"], &[official.id]).await.expect("office");
        let service =
            server.seed_service(SERVICE, Modes::Both, std::slice::from_ref(&office.id)).await.expect("service");
        let (io, upstream) = Io::start().await;
        let prism = Prism::start(&upstream).await.expect("prism starts");
        World {
            server,
            clock,
            tuesday,
            office: office.id,
            service: service.id,
            admin,
            http: reqwest::Client::new(),
            io,
            prism,
        }
    }

    /// The configured public address every link starts with.
    fn public(&self) -> String {
        self.server.server.config.public_url.trim_end_matches('/').to_owned()
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.url())
    }

    /// App IO on, through Prism, as an administrator sets it.
    async fn configure(&self) {
        let r = self
            .admin
            .put(self.url("/api/admin/appio"))
            .json(&json!({"enabled": true, "base_url": self.prism.url(), "api_key": API_KEY}))
            .send()
            .await
            .expect("put");
        assert_eq!(r.status(), 200);
        let view: Value = r.json().await.expect("JSON");
        assert_eq!(view, json!({"enabled": true, "base_url": self.prism.url(), "api_key_set": true}));
    }

    fn booking(&self, start: Timestamp, email: &str, appio: Option<&str>) -> Value {
        let mut body = json!({
            "office_id": self.office, "service_id": self.service, "start": rfc3339(start), "mode": "video",
            "first_name": "Anna", "last_name": "Rossi", "email": email,
            "details": "Rinnovo per smarrimento", "lang": "it", "website": ""
        });
        if let Some(code) = appio {
            body["appio"] = json!(true);
            body["fiscal_code"] = json!(code);
        }
        body
    }

    async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let r = self.http.post(self.url(path)).json(body).send().await.expect("request");
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    async fn book(&self, start: Timestamp, email: &str, appio: Option<&str>) -> Value {
        let (status, body) = self.post("/api/public/appointments", &self.booking(start, email, appio)).await;
        assert_eq!(status, 201, "{body}");
        body
    }

    async fn log(&self) -> Value {
        let r = self.admin.get(self.url("/api/admin/appio/messages")).send().await.expect("log");
        assert_eq!(r.status(), 200);
        r.json().await.expect("JSON")
    }

    /// The emails in the outbox, as text.
    fn emails(&self) -> Vec<String> {
        let Ok(dir) = std::fs::read_dir(self.server.data_dir().join("outbox")) else { return Vec::new() };
        dir.filter_map(|e| e.ok())
            .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
            .map(|e| String::from_utf8_lossy(&std::fs::read(e.path()).expect("eml")).into_owned())
            .collect()
    }

    /// The back office as the server's passes use it, for running the reminder pass by hand.
    fn back_office(&self) -> BackOffice {
        let s = &self.server.server;
        BackOffice {
            store: s.store.clone(),
            tokens: s.tokens.clone(),
            mailer: sportello_backoffice::mail::Mailer::new(None, &s.config.mail_from, self.server.data_dir())
                .expect("mailer"),
            clock: self.clock.clone(),
            public_url: s.config.public_url.clone(),
            calendars: CalendarPolicy {
                refresh: Duration::from_secs(3600),
                fetch_timeout: Duration::from_secs(5),
                allow_private: true,
            },
            node: "test".into(),
        }
    }

    /// The contract holds both ways: Prism logged no error.
    fn assert_contract_kept(&self) {
        assert!(self.prism.errors().is_empty(), "Prism found violations:\n{}", self.prism.log_text());
    }
}

/// The call to action's link in a message: the front matter's `it` button, and the body after it.
fn cta(markdown: &str) -> (String, String) {
    let rest = markdown.strip_prefix("---\nit:\n    cta_1:\n        text: ").expect("front matter first");
    let (text, rest) = rest.split_once("\n        action: \"iohandledlink://").expect("the action");
    let (link, _) = rest.split_once('"').expect("quoted");
    (text.trim_matches('"').to_owned(), link.to_owned())
}

fn secret_of(link: &str) -> String {
    link.rsplit_once('#').expect("the secret in the fragment").1.to_owned()
}

// --- scenarios --------------------------------------------------------------------------------------

/// Booked, moved, reminded and cancelled: each time the citizen's app gets the message after the
/// profile check, with the cancel button opening their booking.
#[tokio::test]
async fn a_citizen_follows_the_booking_in_app_io() {
    let w = World::start().await;
    let state: Value = w.http.get(w.url("/api/public/appio")).send().await.unwrap().json().await.unwrap();
    assert_eq!(state, json!({"enabled": false}), "off until configured");
    w.configure().await;
    let state: Value = w.http.get(w.url("/api/public/appio")).send().await.unwrap().json().await.unwrap();
    assert_eq!(state, json!({"enabled": true}));

    // --- booked: Wednesday 09:00, the code typed loosely ---------------------------------------
    let wednesday = w.tuesday.tomorrow().unwrap();
    let booked = w.book(local(wednesday, 9, 0), "anna@example.org", Some(" rssmra 85t10a562s ")).await;
    assert_eq!(booked["appio"], true, "{booked}");
    let code = booked["code"].as_str().unwrap().to_owned();
    let first = eventually("the confirmation in IO", || async { w.io.messages_for(ALLOWED).first().cloned() }).await;
    let seen = w.io.seen_for(ALLOWED);
    assert_eq!(seen[0].path, "/profiles", "the profile is checked first");
    assert_eq!(seen[0].body, json!({"fiscal_code": ALLOWED}));
    assert!(seen.iter().all(|s| s.key.as_deref() == Some(API_KEY)), "every request carries the key");
    assert_eq!(first["content"]["subject"], format!("Appuntamento confermato: {SERVICE}"));
    assert_eq!(first["content"]["due_date"], io_time(local(wednesday, 9, 0)));
    let markdown = first["content"]["markdown"].as_str().unwrap();
    let (button, link) = cta(markdown);
    assert_eq!(button, "Annulla");
    assert!(markdown.contains("text: \"Cancel\""), "the English button: {markdown}");
    assert!(link.starts_with(&format!("{}/appuntamento?codice={code}&azione=annulla#", w.public())), "{link}");
    assert!(markdown.contains("mercoledì") && markdown.contains("ore 09:00"), "{markdown}");
    assert!(markdown.contains(&code) && markdown.contains("Anagrafe"), "{markdown}");
    for private in [ALLOWED, "Anna", "Rossi", "anna@example.org", "smarrimento"] {
        assert!(
            !first.to_string().replace(&format!("\"fiscal_code\":\"{ALLOWED}\""), "").contains(private),
            "{private} in {first}"
        );
    }
    // The button's link opens the booking (and no stored row holds its secret).
    let secret = secret_of(&link);
    let summary = w
        .http
        .get(w.url(&format!("/api/public/appointments/{code}")))
        .header("X-Booking-Secret", &secret)
        .send()
        .await
        .unwrap();
    assert_eq!(summary.status(), 200);
    let summary: Value = summary.json().await.unwrap();
    assert_eq!(summary["appio"], true);
    let stored = w.server.server.store.recent_appio_messages(10).await.unwrap();
    assert!(stored.iter().all(|m| !m.markdown.contains(&secret)), "the outbox keeps no manage secret");
    // Email stays the primary channel.
    assert_eq!(w.emails().len(), 1, "the confirmation email");

    // --- moved to 10:00 ---------------------------------------------------------------------------
    let (status, moved) = w
        .post(
            &format!("/api/public/appointments/{code}/reschedule"),
            &json!({"start": rfc3339(local(wednesday, 10, 0)), "secret": secret}),
        )
        .await;
    assert_eq!(status, 200, "{moved}");
    assert_eq!(moved["appio"], true);
    let second = eventually("the move in IO", || async { w.io.messages_for(ALLOWED).get(1).cloned() }).await;
    assert_eq!(second["content"]["subject"], format!("Appuntamento spostato: {SERVICE}"));
    assert_eq!(second["content"]["due_date"], io_time(local(wednesday, 10, 0)));
    assert!(second["content"]["markdown"].as_str().unwrap().contains("ore 10:00"));

    // --- the reminder, 24 h ahead, by the pass the server runs every minute ---------------------
    w.clock.advance(150 * 60);
    let lead = Duration::from_secs(24 * 3600);
    let back = w.back_office();
    assert_eq!(sportello_backoffice::reminders::send_due_reminders(&back, lead).await.unwrap(), 1);
    let third = eventually("the reminder in IO", || async { w.io.messages_for(ALLOWED).get(2).cloned() }).await;
    assert_eq!(third["content"]["subject"], format!("Promemoria appuntamento: {SERVICE}"));
    let (button, link) = cta(third["content"]["markdown"].as_str().unwrap());
    assert_eq!((button.as_str(), secret_of(&link)), ("Annulla", secret.clone()));
    assert_eq!(sportello_backoffice::reminders::send_due_reminders(&back, lead).await.unwrap(), 0, "once");

    // --- cancelled through the button's link ---------------------------------------------------------
    let (status, cancelled) =
        w.post(&format!("/api/public/appointments/{code}/cancel"), &json!({"secret": secret_of(&link)})).await;
    assert_eq!(status, 200, "{cancelled}");
    let fourth = eventually("the cancellation in IO", || async { w.io.messages_for(ALLOWED).get(3).cloned() }).await;
    assert_eq!(fourth["content"]["subject"], format!("Appuntamento annullato: {SERVICE}"));
    assert!(fourth["content"].get("due_date").is_none(), "no date to keep: {fourth}");
    let (button, link) = cta(fourth["content"]["markdown"].as_str().unwrap());
    assert_eq!(button, "Prenota di nuovo");
    assert_eq!(link, format!("{}/prenota?servizio={}", w.public(), w.service));

    // The administrator's log: four messages sent, codes masked.
    let log = eventually("four sent in the log", || async {
        let log = w.log().await;
        (log.as_array().unwrap().iter().filter(|m| m["status"] == "sent").count() == 4).then_some(log)
    })
    .await;
    let kinds: Vec<&str> = log.as_array().unwrap().iter().map(|m| m["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["cancelled", "reminder", "moved", "booked"], "newest first");
    assert!(log.as_array().unwrap().iter().all(|m| m["fiscal_code"] == "RSSMRA*********S"), "{log}");
    assert!(!log.to_string().contains(ALLOWED), "never the whole code: {log}");
    assert_eq!(w.io.messages_for(ALLOWED).len(), 4, "one message per event");
    w.assert_contract_kept();
}

/// What IO refuses is not retried, an outage is, the booking never waits for IO, and nothing goes
/// to IO without the citizen's choice.
#[tokio::test]
async fn refusals_outages_and_the_citizens_choice() {
    let w = World::start().await;
    w.configure().await;
    let store = w.server.server.store.clone();
    let t = |h, m| local(w.tuesday, h, m);

    // --- a bad code, or none: 400, nothing booked, no email ---------------------------------------
    let before = w.emails().len();
    let (status, body) =
        w.post("/api/public/appointments", &w.booking(t(9, 0), "x@example.org", Some("RSSMRA85T10A562T"))).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_fiscal_code")), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("codice fiscale"), "{body}");
    let english = w
        .http
        .post(w.url("/api/public/appointments"))
        .header("Accept-Language", "en")
        .json(&w.booking(t(9, 0), "x@example.org", Some("RSSMRA85")))
        .send()
        .await
        .unwrap();
    assert_eq!(english.status(), 400);
    let english: Value = english.json().await.unwrap();
    assert_eq!(english["error"]["code"], "invalid_fiscal_code");
    assert!(english["error"]["message"].as_str().unwrap().contains("16 characters"), "{english}");
    let mut without = w.booking(t(9, 0), "x@example.org", Some(""));
    without["fiscal_code"] = Value::Null;
    let (status, body) = w.post("/api/public/appointments", &without).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("fiscal_code_required")), "{body}");
    let booked = store.appointments_of_offices(std::slice::from_ref(&w.office), 0, i64::MAX).await.unwrap();
    assert!(booked.is_empty(), "nothing booked");
    assert_eq!(w.emails().len(), before, "no email");

    // --- no choice: nothing to IO, no code stored (even one typed) ----------------------------------
    let plain = w.book(t(9, 0), "plain@example.org", None).await;
    let mut typed_only = w.booking(t(9, 30), "typed@example.org", None);
    typed_only["fiscal_code"] = json!(ALLOWED_TOO);
    let (status, typed) = w.post("/api/public/appointments", &typed_only).await;
    assert_eq!(status, 201, "{typed}");
    for b in [&plain, &typed] {
        assert_eq!(b["appio"], false);
        let a = store.appointment_by_code(b["code"].as_str().unwrap()).await.unwrap().unwrap();
        assert_eq!(store.appointment_appio_fiscal_code(&a.id).await.unwrap(), None);
    }

    // --- the service turned off, or not on IO: the profile is asked, no message sent ----------------
    w.book(t(10, 0), "bea@example.org", Some(OPTED_OUT)).await;
    w.book(t(10, 30), "carlo@example.org", Some(UNKNOWN)).await;
    let log = eventually("two refusals", || async {
        let log = w.log().await;
        (log.as_array().unwrap().iter().filter(|m| m["status"] == "refused").count() == 2).then_some(log)
    })
    .await;
    assert_eq!(w.io.seen_for(OPTED_OUT).len(), 1, "the profile only");
    assert_eq!(w.io.seen_for(UNKNOWN).len(), 1, "the profile only");
    assert!(w.io.messages_for(OPTED_OUT).is_empty() && w.io.messages_for(UNKNOWN).is_empty());
    let errors: Vec<&str> = log.as_array().unwrap().iter().filter_map(|m| m["last_error"].as_str()).collect();
    assert!(
        errors.contains(&"the citizen is not on IO") && errors.contains(&"the citizen turned the service off"),
        "{log}"
    );
    assert!(w.io.seen_for(ALLOWED_TOO).is_empty(), "nothing without the choice");

    // --- IO down: the booking does not wait, the message is retried and delivered after ------------
    w.io.outage(true);
    let emails = w.emails().len();
    let started = std::time::Instant::now();
    let during = w.book(t(11, 0), "dora@example.org", Some(ALLOWED_TOO)).await;
    assert!(started.elapsed() < Duration::from_secs(5), "the booking did not wait for IO");
    assert_eq!((during["status"].as_str(), during["appio"].as_bool()), (Some("confirmed"), Some(true)));
    assert_eq!(w.emails().len(), emails + 1, "the confirmation email went out");
    // A second booking during the outage whose citizen then turns App IO off.
    let dropped = w.book(t(11, 30), "ezio@example.org", Some(ALLOWED)).await;
    let log = eventually("both attempts failed", || async {
        let log = w.log().await;
        let failed = log.as_array().unwrap().iter().filter(|m| m["status"] == "queued" && m["attempts"] == 1).count();
        (failed == 2).then_some(log)
    })
    .await;
    assert!(log.to_string().contains("HTTP 503"), "{log}");
    assert!(w.io.messages_for(ALLOWED_TOO).is_empty(), "no message while the profile cannot be checked");
    let dropped_code = dropped["code"].as_str().unwrap();
    let dropped_secret = dropped["secret"].as_str().unwrap();
    let r = w
        .http
        .post(w.url(&format!("/api/public/appointments/{dropped_code}/appio-off")))
        .header("X-Booking-Secret", dropped_secret)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let off: Value = r.json().await.unwrap();
    assert_eq!((off["appio"].as_bool(), off["status"].as_str()), (Some(false), Some("confirmed")), "{off}");
    let wrong = w.post(&format!("/api/public/appointments/{dropped_code}/appio-off"), &json!({"secret": "nope"})).await;
    assert_eq!(wrong.0, 404);
    let array = w.post(&format!("/api/public/appointments/{dropped_code}/appio-off"), &json!([])).await;
    assert_eq!((array.0, array.1["error"]["code"].as_str()), (400, Some("invalid_body")), "{}", array.1);
    let a = store.appointment_by_code(dropped_code).await.unwrap().unwrap();
    assert_eq!(store.appointment_appio_fiscal_code(&a.id).await.unwrap(), None, "the code is forgotten");

    // IO is back; 30 s later on the server's clock the retry goes out.
    w.io.outage(false);
    w.clock.advance(31);
    let delivered =
        eventually("the retry delivered", || async { w.io.messages_for(ALLOWED_TOO).first().cloned() }).await;
    assert_eq!(delivered["content"]["due_date"], io_time(t(11, 0)));
    let log = eventually("sent on the second attempt", || async {
        let log = w.log().await;
        log.as_array().unwrap().iter().find(|m| m["status"] == "sent").cloned()
    })
    .await;
    assert_eq!((log["attempts"].as_i64(), log["kind"].as_str()), (Some(2), Some("booked")), "{log}");

    // --- the opted-out booking: nothing more, not even when it moves --------------------------------
    let (status, _) = w
        .post(
            &format!("/api/public/appointments/{dropped_code}/reschedule"),
            &json!({"start": rfc3339(local(w.tuesday.tomorrow().unwrap(), 9, 0)), "secret": dropped_secret}),
        )
        .await;
    assert_eq!(status, 200);
    w.clock.advance(600);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(w.io.messages_for(ALLOWED).is_empty(), "opted out: {:?}", w.io.seen_for(ALLOWED));
    let statuses: Vec<String> = w.log().await.as_array().unwrap().iter().map(|m| m["status"].to_string()).collect();
    assert!(statuses.contains(&"\"cancelled\"".to_owned()), "the withdrawn message: {statuses:?}");
    w.assert_contract_kept();
}

/// Settings are checked and the key never shown; a council's convocation reaches the councillor
/// with a fiscal code, and names who has none.
#[tokio::test]
async fn settings_and_a_council_convocation() {
    let w = World::start().await;
    let world = &w;
    let put = |body: Value| async move {
        let r = world.admin.put(world.url("/api/admin/appio")).json(&body).send().await.expect("put");
        (r.status().as_u16(), r.json::<Value>().await.unwrap_or(Value::Null))
    };
    let (status, body) = put(json!({"enabled": true})).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("api_key_required")), "{body}");
    let (status, body) =
        put(json!({"enabled": false, "base_url": "http://io.example/api/v1", "api_key": API_KEY})).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_base_url")), "{body}");
    let anonymous = reqwest::Client::new().get(w.url("/api/admin/appio")).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    w.configure().await;
    // An empty key keeps the stored one; no answer carries it.
    let (status, body) = put(json!({"enabled": true, "api_key": ""})).await;
    assert_eq!((status, body["api_key_set"].as_bool()), (200, Some(true)), "{body}");
    let got = w.admin.get(w.url("/api/admin/appio")).send().await.unwrap().text().await.unwrap();
    assert!(!got.contains(API_KEY), "{got}");

    // --- councillors' codes through the users' administration -----------------------------------------
    let store = w.server.server.store.clone();
    let now = w.clock.now();
    let user = |name: &str, role| NewUser { email: format!("{name}@comune.example"), display_name: name.into(), role };
    let chair = store.create_user(&user("Presidente", StaffRole::Chair), now).await.unwrap();
    let carla = store.create_user(&user("Carla", StaffRole::Councillor), now).await.unwrap();
    let dario = store.create_user(&user("Dario", StaffRole::Councillor), now).await.unwrap();
    let bad = w
        .admin
        .put(w.url(&format!("/api/admin/users/{}", carla.id)))
        .json(
            &json!({"display_name": "Carla", "role": "councillor", "active": true, "fiscal_code": "FRRLCU75M15F205X"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let set = w
        .admin
        .put(w.url(&format!("/api/admin/users/{}", carla.id)))
        .json(
            &json!({"display_name": "Carla", "role": "councillor", "active": true, "fiscal_code": "frrlcu75m15f205v"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(set.status(), 200);
    assert_eq!(set.json::<Value>().await.unwrap()["fiscal_code"], COUNCILLOR);
    let users: Value = w.admin.get(w.url("/api/admin/users")).send().await.unwrap().json().await.unwrap();
    let listed = users.as_array().unwrap().iter().find(|u| u["id"] == carla.id.as_str()).cloned().unwrap();
    assert_eq!(listed["fiscal_code"], COUNCILLOR);

    store.set_user_fiscal_code(&chair.id, Some(CHAIR)).await.unwrap();
    let wednesday_evening = local(w.tuesday.tomorrow().unwrap(), 18, 0);
    let session = store
        .create_council_session(
            &NewCouncilSession {
                title: "Seduta ordinaria".into(),
                body: CouncilBody::Consiglio,
                scheduled_at: wednesday_evening.as_second(),
                chair_id: chair.id.clone(),
                quorum: "majority".into(),
            },
            now,
        )
        .await
        .unwrap();
    store.set_council_members(&session.id, &[carla.id.clone(), dario.id.clone()]).await.unwrap();
    let items = vec![(None, "Bilancio di previsione".to_owned()), (None, "Mozione sul verde pubblico".to_owned())];
    store.set_council_items(&session.id, &items).await.unwrap();

    let r = w.admin.post(w.url(&format!("/api/council/sessions/{}/convocation", session.id))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let convened: Value = r.json().await.unwrap();
    assert_eq!(convened, json!({"queued": 2, "without_fiscal_code": ["Dario"]}), "the chair is a member too");
    let message =
        eventually("the convocation in IO", || async { w.io.messages_for(COUNCILLOR).first().cloned() }).await;
    assert_eq!(w.io.seen_for(COUNCILLOR)[0].path, "/profiles");
    assert_eq!(message["content"]["subject"], "Convocazione: Seduta ordinaria");
    assert_eq!(message["content"]["due_date"], io_time(wednesday_evening));
    let markdown = message["content"]["markdown"].as_str().unwrap();
    assert!(markdown.contains("1. Bilancio di previsione\n2. Mozione sul verde pubblico\n"), "{markdown}");
    assert!(markdown.contains("ore 18:00"), "{markdown}");
    let (button, link) = cta(markdown);
    assert_eq!((button.as_str(), link), ("Apri la seduta", format!("{}/staff?seduta={}", w.public(), session.id)));

    // App IO off: a convocation is refused, not queued.
    let (status, _) = put(json!({"enabled": false})).await;
    assert_eq!(status, 200);
    let r = w.admin.post(w.url(&format!("/api/council/sessions/{}/convocation", session.id))).send().await.unwrap();
    assert_eq!(r.status(), 409);
    let state: Value = w.http.get(w.url("/api/public/appio")).send().await.unwrap().json().await.unwrap();
    assert_eq!(state, json!({"enabled": false}));
    w.assert_contract_kept();
}
