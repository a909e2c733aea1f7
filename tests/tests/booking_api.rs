//! The citizen side of booking over real HTTP: slots, booking, emails in the outbox, managing a
//! booking by code + secret, the join link's landing page, reminders and a restart.
//!
//! Every server runs on a clock shifted to the next working Tuesday at 08:00 in Europe/Rome, so
//! results do not depend on when the tests run. The office is open Monday–Friday 09:00–12:00 with
//! one official and a 30-minute service; the notice is set to 50 minutes, so the first slot is
//! Tuesday 09:00 and stays bookable while a loaded machine takes seconds to get there (the shifted
//! clock runs on: at the default 60 minutes, 09:00 left the offer at 08:00:01).

use std::path::Path;
use std::time::Duration;

use jiff::Timestamp;
use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;
use serde_json::{Value, json};
use sportello_backoffice::clock::Clock;
use sportello_server::{Config, RunningServer};
use sportello_store::{Modes, NewOffice, NewService, NewUser, StaffRole, Store};
use sportello_tests::server::TestServer;

const HOURS: &str = r#"[["09:00-12:00"],["09:00-12:00"],["09:00-12:00"],["09:00-12:00"],["09:00-12:00"],[],[]]"#;

fn rome() -> TimeZone {
    sportello_domain::europe_rome().expect("tzdb")
}

/// The next Tuesday (strictly after today) that is not a holiday, nor the day after one.
fn next_tuesday() -> Date {
    let today = Timestamp::now().to_zoned(rome()).date();
    let mut d = today.tomorrow().expect("date");
    loop {
        if d.weekday() == Weekday::Tuesday {
            let holidays = sportello_domain::holiday_dates(d.year(), d.year() + 1, None).expect("holidays");
            let wednesday = d.tomorrow().expect("date");
            if !holidays.contains(&d) && !holidays.contains(&wednesday) {
                return d;
            }
        }
        d = d.tomorrow().expect("date");
    }
}

fn local(d: Date, h: i8, m: i8) -> Timestamp {
    d.at(h, m, 0, 0).to_zoned(rome()).expect("local time").timestamp()
}

fn rfc3339(t: Timestamp) -> String {
    t.to_zoned(rome()).strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
}

fn month(d: Date) -> String {
    format!("{:04}-{:02}", d.year(), d.month())
}

/// Seconds to add to the system clock to stand at Tuesday 08:00.
fn offset_to(t: Timestamp) -> i64 {
    t.as_second() - Timestamp::now().as_second()
}

struct World {
    /// `None` when the server was started by hand (restart test).
    test: Option<TestServer>,
    server_url: String,
    store: Store,
    clock: Clock,
    outbox: std::path::PathBuf,
    office: String,
    service: String,
    tuesday: Date,
    http: reqwest::Client,
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client")
}

/// Office, official and service in a fresh store.
async fn seed(store: &Store) -> (String, String) {
    store.set_setting("booking.min_notice_minutes", "50").await.expect("notice");
    // Tests that book many times from one address (100 at once) must not meet the daily limit,
    // which its own test sets.
    store.set_setting("booking.rate_limit_per_day", "10000").await.expect("daily limit");
    let office = store
        .create_office(
            &NewOffice {
                name: "Anagrafe".into(),
                description: "Servizi demografici".into(),
                address: "Piazza del Comune 1".into(),
                email: "anagrafe@comune.example".into(),
                phone: "+39 02 0000000".into(),
                opening_hours: HOURS.into(),
            },
            0,
        )
        .await
        .expect("office");
    let official = store
        .create_user(
            &NewUser { email: "mario@comune.example".into(), display_name: "Mario".into(), role: StaffRole::Official },
            0,
        )
        .await
        .expect("official");
    store.set_office_members(&office.id, std::slice::from_ref(&official.id)).await.expect("members");
    let service = store
        .create_service(
            &NewService {
                name: "Carta d'identità elettronica".into(),
                description: String::new(),
                duration_minutes: 30,
                what_to_bring: "Una fototessera e il documento scaduto".into(),
                modes: Modes::Both,
                office_ids: vec![office.id.clone()],
            },
            0,
        )
        .await
        .expect("service");
    (office.id, service.id)
}

async fn world() -> World {
    world_with(|_| {}).await
}

/// The same world on a throwaway PostgreSQL (one server per test binary, a fresh database each).
async fn world_on_postgres() -> World {
    let url = sportello_tests::server::postgres_url().await;
    world_with(move |c| c.database_url = Some(url)).await
}

async fn world_with(adjust: impl FnOnce(&mut Config)) -> World {
    let tuesday = next_tuesday();
    let clock = Clock::offset(offset_to(local(tuesday, 8, 0)));
    let test = TestServer::start_at(clock.clone(), |c| {
        // The background reminder pass must not add emails to these tests (the reminder test
        // runs the pass itself with the default lead).
        c.reminder_lead = Duration::from_secs(1);
        adjust(c);
    })
    .await;
    let store = test.server.store.clone();
    let (office, service) = seed(&store).await;
    World {
        server_url: test.url(),
        outbox: test.data_dir().join("outbox"),
        test: Some(test),
        store,
        clock,
        office,
        service,
        tuesday,
        http: client(),
    }
}

struct Reply {
    status: u16,
    location: Option<String>,
    content_type: String,
    text: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|_| panic!("not JSON ({}): {}", self.status, self.text))
    }

    fn code(&self) -> String {
        self.json()["error"]["code"].as_str().unwrap_or_default().to_owned()
    }
}

impl World {
    async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        let r = request.send().await.expect("request");
        let status = r.status().as_u16();
        let location = r.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let content_type = r.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        Reply { status, location, content_type, text: r.text().await.expect("body") }
    }

    async fn get(&self, path: &str) -> Reply {
        self.send(self.http.get(format!("{}{path}", self.server_url))).await
    }

    async fn get_with_secret(&self, path: &str, secret: &str) -> Reply {
        self.send(self.http.get(format!("{}{path}", self.server_url)).header("X-Booking-Secret", secret)).await
    }

    async fn post(&self, path: &str, body: &Value) -> Reply {
        self.send(self.http.post(format!("{}{path}", self.server_url)).json(body)).await
    }

    fn booking(&self, start: Timestamp) -> Value {
        json!({
            "office_id": self.office, "service_id": self.service, "start": rfc3339(start), "mode": "video",
            "first_name": "Anna", "last_name": "Rossi", "email": "anna.rossi@example.org",
            "details": "Rinnovo", "lang": "it", "website": ""
        })
    }

    async fn slots(&self, d: Date) -> Vec<String> {
        let r = self
            .get(&format!("/api/public/offices/{}/slots?service={}&month={}", self.office, self.service, month(d)))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.json()["slots"].as_array().expect("slots").iter().map(|s| s["start"].as_str().unwrap().to_owned()).collect()
    }

    async fn book_ok(&self, start: Timestamp) -> Value {
        let r = self.post("/api/public/appointments", &self.booking(start)).await;
        assert_eq!(r.status, 201, "{}", r.text);
        r.json()
    }

    fn emails(&self) -> Vec<Vec<u8>> {
        emails_in(&self.outbox)
    }

    async fn count_appointments(&self) -> i64 {
        let all = self.store.appointments_of_offices(std::slice::from_ref(&self.office), 0, i64::MAX).await;
        all.expect("appointments").len() as i64
    }
}

fn emails_in(outbox: &Path) -> Vec<Vec<u8>> {
    let mut files: Vec<_> = std::fs::read_dir(outbox)
        .map(|d| {
            d.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "eml")).collect()
        })
        .unwrap_or_default();
    files.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
    files.iter().map(|p| std::fs::read(p).expect("eml")).collect()
}

/// The decoded text and the decoded `text/calendar` part of an email, and its To.
struct Mail {
    from: String,
    to: String,
    subject: String,
    text: String,
    html: Option<String>,
    calendar: Option<String>,
}

fn parse_mail(raw: &[u8]) -> Mail {
    use mailparse::MailHeaderMap;
    let parsed = mailparse::parse_mail(raw).expect("email parses");
    let from = parsed.headers.get_first_value("From").unwrap_or_default();
    let to = parsed.headers.get_first_value("To").unwrap_or_default();
    let subject = parsed.headers.get_first_value("Subject").unwrap_or_default();
    let mut text = String::new();
    let mut html = None;
    let mut calendar = None;
    let mut stack = vec![&parsed];
    while let Some(part) = stack.pop() {
        stack.extend(part.subparts.iter());
        match part.ctype.mimetype.as_str() {
            "text/plain" => text.push_str(&part.get_body().expect("text body")),
            "text/calendar" => calendar = Some(part.get_body().expect("calendar body")),
            "text/html" => html = Some(part.get_body().expect("html body")),
            _ => {}
        }
    }
    Mail { from, to, subject, text, html, calendar }
}

fn dtstart(ics: &str) -> Timestamp {
    let line = ics.lines().find(|l| l.starts_with("DTSTART:")).expect("DTSTART");
    let value = line.trim_start_matches("DTSTART:").trim();
    jiff::fmt::strtime::parse("%Y%m%dT%H%M%SZ", value)
        .and_then(|t| t.to_datetime())
        .and_then(|dt| dt.to_zoned(TimeZone::UTC))
        .expect("UTC DTSTART")
        .timestamp()
}

fn has_line(ics: &str, line: &str) -> bool {
    ics.lines().any(|l| l.trim_end() == line)
}

fn token_of(join_url: &str) -> String {
    join_url.rsplit_once("/a/").expect("join link /a/").1.to_owned()
}

#[tokio::test]
async fn slots_follow_opening_hours_holidays_and_bookings() {
    let w = world().await;
    let t = w.tuesday;
    let slots = w.slots(t).await;
    assert_eq!(slots.first(), Some(&rfc3339(local(t, 9, 0))), "first slot is Tuesday 09:00");
    assert!(slots.contains(&rfc3339(local(t, 11, 30))));
    assert!(!slots.contains(&rfc3339(local(t, 12, 0))), "the office closes at 12:00");
    // Months with slots include this one.
    let months = w.get(&format!("/api/public/offices/{}/months?service={}", w.office, w.service)).await;
    assert_eq!(months.status, 200);
    assert_eq!(months.json()["months"][0]["month"], month(t));

    // A booking removes its slot.
    w.book_ok(local(t, 9, 0)).await;
    let slots = w.slots(t).await;
    assert_eq!(slots.first(), Some(&rfc3339(local(t, 9, 30))));

    // The patron's day is a holiday: nothing that day.
    w.store.set_setting("municipality.patron_day", &format!("{:02}-{:02}", t.month(), t.day())).await.unwrap();
    let slots = w.slots(t).await;
    let tuesday_prefix = &rfc3339(local(t, 0, 0))[..10];
    assert!(!slots.iter().any(|s| s.starts_with(tuesday_prefix)), "{slots:?}");
    let wednesday = t.tomorrow().unwrap();
    if wednesday.month() == t.month() {
        assert_eq!(slots.first(), Some(&rfc3339(local(wednesday, 9, 0))));
    }
    // Unknown office / service.
    assert_eq!(w.get(&format!("/api/public/offices/nope/slots?service={}", w.service)).await.status, 404);
    assert_eq!(w.get(&format!("/api/public/offices/{}/slots?service=nope", w.office)).await.status, 404);
}

#[tokio::test]
async fn catalogue_lists_services_and_competent_offices() {
    let w = world().await;
    let other = w
        .store
        .create_office(
            &NewOffice {
                name: "Tributi".into(),
                description: String::new(),
                address: String::new(),
                email: String::new(),
                phone: String::new(),
                opening_hours: HOURS.into(),
            },
            0,
        )
        .await
        .unwrap();
    let services = w.get("/api/public/services").await.json();
    assert_eq!(services[0]["id"], w.service.as_str());
    assert_eq!(services[0]["office_ids"], json!([w.office]));
    let all = w.get("/api/public/offices").await.json();
    assert_eq!(all.as_array().unwrap().len(), 2);
    let competent = w.get(&format!("/api/public/offices?service={}", w.service)).await.json();
    assert_eq!(competent.as_array().unwrap().len(), 1);
    assert_eq!(competent[0]["id"], w.office.as_str());
    assert_eq!(competent[0]["opening_hours"][0][0], "09:00-12:00");
    assert_ne!(competent[0]["id"], other.id.as_str());
}

#[tokio::test]
async fn booking_happy_path_stores_and_mails_everything() {
    happy_path(world().await).await;
}

#[tokio::test]
async fn booking_happy_path_stores_and_mails_everything_on_postgres() {
    happy_path(world_on_postgres().await).await;
}

async fn happy_path(w: World) {
    // The email speaks for the municipality the administrator named.
    w.store.set_setting("municipality.name", "Comune di Roccabella").await.unwrap();
    w.store.set_setting("municipality.website", "https://www.comune.roccabella.example").await.unwrap();
    let start = local(w.tuesday, 9, 30);
    let body = w.book_ok(start).await;
    let code = body["code"].as_str().unwrap().to_owned();
    assert_eq!(code.len(), 9);
    assert_eq!(body["start"], rfc3339(start));
    assert_eq!(body["office"]["email"], "anagrafe@comune.example");
    assert_eq!(body["service"]["what_to_bring"], "Una fototessera e il documento scaduto");
    assert_eq!(body["email"], "anna.rossi@example.org");
    assert!(body["ics_url"].as_str().unwrap().ends_with("/ics"));

    let appt = w.store.appointment_by_code(&code).await.unwrap().expect("stored");
    assert_eq!(appt.starts_at, start.as_second());
    assert_eq!(appt.status, sportello_store::Status::Confirmed);
    assert_ne!(appt.secret_hash, body["secret"].as_str().unwrap(), "only the hash is stored");

    let emails = w.emails();
    assert_eq!(emails.len(), 1, "exactly one email");
    let mail = parse_mail(&emails[0]);
    assert!(mail.to.contains("anna.rossi@example.org"), "{}", mail.to);
    assert!(mail.subject.contains(&code));
    assert!(mail.text.contains(&code), "{}", mail.text);
    assert!(mail.text.contains("/a/"), "join link: {}", mail.text);
    let secret = body["secret"].as_str().unwrap();
    assert!(mail.text.contains(&format!("/appuntamento?codice={code}#{secret}")), "{}", mail.text);
    assert!(mail.text.contains("Cosa serve"));
    assert!(mail.from.starts_with("\"Comune di Roccabella\" <"), "sender: {}", mail.from);
    assert!(
        mail.text
            .replace("\r\n", "\n")
            .contains("\n-- \nComune di Roccabella\nAnagrafe\nhttps://www.comune.roccabella.example"),
        "signature: {}",
        mail.text
    );
    // The HTML part says the same: the code, the links as links, the municipality; nothing remote.
    let html = mail.html.expect("an HTML part");
    assert!(html.contains(&code) && html.contains("Comune di Roccabella"), "{html}");
    assert!(html.contains(&format!("/appuntamento?codice={code}#{secret}\"")), "the manage link as a link: {html}");
    assert!(html.contains("/a/"), "the join link: {html}");
    assert!(!html.contains("<img") && !html.contains("<script") && !html.contains("src="), "{html}");
    let ics = mail.calendar.expect("text/calendar attachment");
    assert!(ics.contains("BEGIN:VEVENT"));
    assert_eq!(dtstart(&ics), start);
    assert!(ics.contains(&format!("UID:appt-{}@sportello", appt.id)));

    // The .ics download with the secret; nothing without it.
    let r = w.get_with_secret(&format!("/api/public/appointments/{code}/ics"), secret).await;
    assert_eq!(r.status, 200);
    assert!(r.content_type.starts_with("text/calendar"));
    assert_eq!(dtstart(&r.text), start);
    assert_eq!(w.get(&format!("/api/public/appointments/{code}/ics")).await.status, 404);
}

#[tokio::test]
async fn invalid_bookings_store_and_send_nothing() {
    invalid_bookings(world().await).await;
}

#[tokio::test]
async fn invalid_bookings_store_and_send_nothing_on_postgres() {
    invalid_bookings(world_on_postgres().await).await;
}

async fn invalid_bookings(w: World) {
    w.store.set_setting("booking.rate_limit_per_minute", "1000").await.unwrap();
    let t = w.tuesday;
    let good = w.booking(local(t, 10, 0));
    let with = |key: &str, value: Value| {
        let mut b = good.clone();
        b[key] = value;
        b
    };
    let without = |key: &str| {
        let mut b = good.clone();
        b.as_object_mut().unwrap().remove(key);
        b
    };
    let second_office = w
        .store
        .create_office(
            &NewOffice {
                name: "Tributi".into(),
                description: String::new(),
                address: String::new(),
                email: String::new(),
                phone: String::new(),
                opening_hours: HOURS.into(),
            },
            0,
        )
        .await
        .unwrap();
    let cases: Vec<(&str, Value, u16, &str)> = vec![
        ("invalid email", with("email", json!("anna.rossi@")), 400, "invalid_email"),
        ("email with space", with("email", json!("anna rossi@example.org")), 400, "invalid_email"),
        ("missing first name", without("first_name"), 400, "invalid_first_name"),
        ("blank last name", with("last_name", json!("   ")), 400, "invalid_last_name"),
        ("missing email", without("email"), 400, "invalid_email"),
        ("details 2001 chars", with("details", json!("x".repeat(2001))), 400, "invalid_details"),
        ("missing start", without("start"), 400, "invalid_start"),
        ("slot in the past", with("start", json!(rfc3339(local(t, 7, 0)))), 409, "slot_unavailable"),
        ("inside the notice", with("start", json!(rfc3339(local(t, 8, 30)))), 409, "slot_unavailable"),
        ("not offered (closed)", with("start", json!(rfc3339(local(t, 15, 0)))), 409, "slot_unavailable"),
        ("not on the grid", with("start", json!(rfc3339(local(t, 10, 10)))), 409, "slot_unavailable"),
        ("unknown office", with("office_id", json!("nope")), 400, "unknown_office"),
        ("unknown service", with("service_id", json!("nope")), 400, "unknown_service"),
        ("office without that service", with("office_id", json!(second_office.id)), 400, "service_not_offered"),
        ("bad mode", with("mode", json!("telepathy")), 400, "invalid_mode"),
    ];
    for (what, body, status, code) in cases {
        let r = w.post("/api/public/appointments", &body).await;
        assert_eq!((r.status, r.code().as_str()), (status, code), "{what}: {}", r.text);
    }
    let r = w
        .send(
            w.http
                .post(format!("{}/api/public/appointments", w.server_url))
                .body("{nope")
                .header("content-type", "application/json"),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(w.count_appointments().await, 0, "nothing stored");
    assert!(w.emails().is_empty(), "no email");
}

#[tokio::test]
async fn a_hundred_concurrent_bookings_of_one_slot_give_one_appointment() {
    hundred_concurrent_bookings(world().await).await;
}

#[tokio::test]
async fn a_hundred_concurrent_bookings_of_one_slot_give_one_appointment_on_postgres() {
    hundred_concurrent_bookings(world_on_postgres().await).await;
}

async fn hundred_concurrent_bookings(w: World) {
    w.store.set_setting("booking.rate_limit_per_minute", "1000").await.unwrap();
    let body = w.booking(local(w.tuesday, 10, 0));
    let url = format!("{}/api/public/appointments", w.server_url);
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let (http, url, body) = (w.http.clone(), url.clone(), body.clone());
            tokio::spawn(async move {
                let r = http.post(url).json(&body).send().await.expect("request");
                let status = r.status().as_u16();
                let json: Value = r.json().await.unwrap_or(Value::Null);
                (status, json["error"]["code"].as_str().unwrap_or_default().to_owned())
            })
        })
        .collect();
    let mut created = 0;
    let mut taken = 0;
    for task in tasks {
        match task.await.unwrap() {
            (201, _) => created += 1,
            (409, code) if code == "slot_taken" || code == "slot_unavailable" => taken += 1,
            other => panic!("unexpected reply {other:?}"),
        }
    }
    assert_eq!((created, taken), (1, 99));
    assert_eq!(w.count_appointments().await, 1);
    assert_eq!(w.emails().len(), 1);
}

#[tokio::test]
async fn rate_limit_and_honeypot() {
    let w = world().await;
    let mut trap = w.booking(local(w.tuesday, 10, 0));
    trap["website"] = json!("http://spam.example");
    let r = w.post("/api/public/appointments", &trap).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert!(r.json()["code"].as_str().is_some());
    assert_eq!(w.count_appointments().await, 0);
    assert!(w.emails().is_empty());

    w.store.set_setting("booking.rate_limit_per_minute", "2").await.unwrap();
    let bad = json!({"office_id": w.office});
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(w.post("/api/public/appointments", &bad).await);
    }
    assert_eq!(statuses[0].status, 400);
    assert_eq!((statuses[2].status, statuses[2].code().as_str()), (429, "rate_limited"));
}

/// Abuse of the municipality's sender: a daily limit per address, and a cap on the appointments one
/// email address holds with one office; the requester's own text never reaches a subject.
#[tokio::test]
async fn daily_limit_per_address_and_active_bookings_per_email() {
    let w = world().await;
    let t = w.tuesday;
    w.store.set_setting("booking.rate_limit_per_minute", "1000").await.unwrap();
    w.store.set_setting("booking.rate_limit_per_day", "4").await.unwrap();
    w.store.set_setting("booking.max_active_per_email", "2").await.unwrap();
    let as_email = |start, email: &str| {
        let mut b = w.booking(start);
        b["email"] = json!(email);
        b["first_name"] = json!("Offerta");
        b["last_name"] = json!("IMPERDIBILE su spam.example");
        b
    };
    let r = w.post("/api/public/appointments", &as_email(local(t, 9, 0), "maria@example.org")).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = w.post("/api/public/appointments", &as_email(local(t, 9, 30), "MARIA@example.org")).await;
    assert_eq!(r.status, 201, "{}", r.text);
    // A third upcoming appointment for the same address (any case) with this office: refused.
    let r = w.post("/api/public/appointments", &as_email(local(t, 10, 0), "Maria@Example.org")).await;
    assert_eq!((r.status, r.code().as_str()), (409, "too_many_bookings"), "{}", r.text);
    let r = w.post("/api/public/appointments", &as_email(local(t, 10, 0), "luca@example.org")).await;
    assert_eq!(r.status, 201, "another address books: {}", r.text);
    // Fifth request of the day from this address: refused whatever it asks; another address books.
    let r = w.post("/api/public/appointments", &as_email(local(t, 10, 30), "paolo@example.org")).await;
    assert_eq!((r.status, r.code().as_str()), (429, "rate_limited"));
    let elsewhere =
        reqwest::Client::builder().local_address("127.0.0.2".parse::<std::net::IpAddr>().unwrap()).build().unwrap();
    let r = w
        .send(
            elsewhere
                .post(format!("{}/api/public/appointments", w.server_url))
                .json(&as_email(local(t, 10, 30), "paolo@example.org")),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(w.count_appointments().await, 4);
    for mail in w.emails().iter().map(|e| parse_mail(e)) {
        assert!(!mail.subject.contains("Offerta") && !mail.subject.contains("spam"), "{}", mail.subject);
    }
}

#[tokio::test]
async fn manage_by_code_and_secret() {
    let w = world().await;
    let t = w.tuesday;
    let body = w.book_ok(local(t, 10, 0)).await;
    let code = body["code"].as_str().unwrap().to_owned();
    let secret = body["secret"].as_str().unwrap().to_owned();
    let path = |what: &str| format!("/api/public/appointments/{code}{what}");

    // Summary: right secret only; the wrong one and an unknown code look the same.
    let r = w.get_with_secret(&path(""), &secret).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["can_change"], true);
    assert!(r.json().get("secret").is_none());
    let wrong = w.get_with_secret(&path(""), "not-the-secret").await;
    let unknown = w.get_with_secret("/api/public/appointments/ZZZZ-ZZZZ", &secret).await;
    assert_eq!((wrong.status, unknown.status), (404, 404));
    assert_eq!(wrong.text, unknown.text);

    // Reschedule to 11:00: moved, old slot free, new email.
    let r = w.post(&path("/reschedule"), &json!({"start": rfc3339(local(t, 11, 0)), "secret": secret})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["start"], rfc3339(local(t, 11, 0)));
    let slots = w.slots(t).await;
    assert!(slots.contains(&rfc3339(local(t, 10, 0))));
    assert!(!slots.contains(&rfc3339(local(t, 11, 0))));
    let emails = w.emails();
    assert_eq!(emails.len(), 2);
    let booked_ics = parse_mail(&emails[0]).calendar.expect("confirmation .ics");
    let moved_ics = parse_mail(&emails[1]).calendar.expect("new-time .ics");
    let uid = |ics: &str| ics.lines().find(|l| l.starts_with("UID:")).map(str::to_owned);
    assert_eq!(uid(&moved_ics), uid(&booked_ics), "the same calendar entry");
    assert!(has_line(&booked_ics, "SEQUENCE:0") && has_line(&moved_ics, "SEQUENCE:1"), "{moved_ics}");
    assert_eq!(dtstart(&moved_ics), local(t, 11, 0));
    // Not to a slot that is not offered.
    let r = w.post(&path("/reschedule"), &json!({"start": rfc3339(local(t, 13, 0)), "secret": secret})).await;
    assert_eq!((r.status, r.code().as_str()), (409, "slot_unavailable"));

    // Wrong secret: 404 and unchanged.
    let r = w.post(&path("/cancel"), &json!({"secret": "wrong"})).await;
    assert_eq!(r.status, 404);
    let appt = w.store.appointment_by_code(&code).await.unwrap().unwrap();
    assert_eq!(appt.status, sportello_store::Status::Confirmed);

    // Cancel with the secret in the header: cancelled, email, slot offered again.
    let r =
        w.send(w.http.post(format!("{}{}", w.server_url, path("/cancel"))).header("X-Booking-Secret", &secret)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["status"], "cancelled");
    let appt = w.store.appointment_by_code(&code).await.unwrap().unwrap();
    assert_eq!(appt.status, sportello_store::Status::Cancelled);
    let audit = w.store.audit(&appt.id).await.unwrap();
    assert!(audit.iter().any(|e| e.actor == "citizen"), "{audit:?}");
    let emails = w.emails();
    assert_eq!(emails.len(), 3);
    let cancelled = parse_mail(&emails[2]);
    assert!(cancelled.subject.contains("annullato"), "{}", cancelled.subject);
    assert!(cancelled.text.contains(&format!("/prenota?servizio={}", w.service)), "{}", cancelled.text);
    let cancel_ics = cancelled.calendar.expect("the cancellation removes the calendar entry");
    assert_eq!(uid(&cancel_ics), uid(&booked_ics));
    for line in
        ["METHOD:CANCEL", "STATUS:CANCELLED", "SEQUENCE:2", "ATTENDEE;CN=\"Anna Rossi\":mailto:anna.rossi@example.org"]
    {
        assert!(has_line(&cancel_ics, line), "{line} in {cancel_ics}");
    }
    assert!(w.slots(t).await.contains(&rfc3339(local(t, 11, 0))));
    let again = w.post(&path("/cancel"), &json!({"secret": secret})).await;
    assert_eq!(again.status, 409);

    // Rating once.
    let r = w.post(&path("/rating"), &json!({"rating": 6, "secret": secret})).await;
    assert_eq!((r.status, r.code().as_str()), (400, "invalid_rating"));
    let r = w.post(&path("/rating"), &json!({"rating": 5, "comment": "Veloce", "secret": secret})).await;
    assert_eq!(r.status, 204, "{}", r.text);
    let r = w.post(&path("/rating"), &json!({"rating": 4, "secret": secret})).await;
    assert_eq!((r.status, r.code().as_str()), (409, "already_rated"));
}

/// An appointment the official closed before its start frees its slot for availability and for
/// the booking alike: offered again and bookable, never offered and then refused (a phantom slot).
#[tokio::test]
async fn a_slot_closed_early_is_offered_and_bookable() {
    let w = world().await;
    let t = w.tuesday;
    let body = w.book_ok(local(t, 10, 0)).await;
    assert!(!w.slots(t).await.contains(&rfc3339(local(t, 10, 0))));
    let appt = w.store.appointment_by_code(body["code"].as_str().unwrap()).await.unwrap().unwrap();
    // What the desk's «Concluso» does (POST /api/staff/appointments/{id}/status), at 08:00.
    w.store
        .set_status(
            &appt.id,
            &[sportello_store::Status::Confirmed],
            sportello_store::Status::Completed,
            "user:x",
            "",
            w.clock.now(),
        )
        .await
        .unwrap();
    assert!(w.slots(t).await.contains(&rfc3339(local(t, 10, 0))), "offered again");
    let r = w.post("/api/public/appointments", &w.booking(local(t, 10, 0))).await;
    assert_eq!(r.status, 201, "bookable as offered: {}", r.text);
}

#[tokio::test]
async fn no_cancel_or_move_after_the_start() {
    let w = world().await;
    let body = w.book_ok(local(w.tuesday, 9, 0)).await;
    let code = body["code"].as_str().unwrap();
    let secret = body["secret"].as_str().unwrap();
    w.clock.advance(3600 + 60); // 09:01
    let r = w.post(&format!("/api/public/appointments/{code}/cancel"), &json!({"secret": secret})).await;
    assert_eq!((r.status, r.code().as_str()), (409, "too_late"));
}

#[tokio::test]
async fn join_link_landing_judges_the_window() {
    let w = world().await;
    let t = w.tuesday;
    let body = w.book_ok(local(t, 9, 0)).await;
    let token = token_of(body["join_url"].as_str().expect("video booking has a join link"));
    let landing = format!("/a/{token}");

    // 08:00: the waiting room opens at 8:45.
    let r = w.get(&landing).await;
    assert_eq!(r.status, 200);
    assert!(r.content_type.starts_with("text/html"));
    assert!(r.text.contains("apre alle 8:45 del"), "{}", r.text);
    w.clock.advance(44 * 60); // 08:44
    assert!(w.get(&landing).await.text.contains("apre alle 8:45"));
    w.clock.advance(2 * 60); // 08:46
    let r = w.get(&landing).await;
    assert_eq!(r.status, 303, "{}", r.text);
    assert_eq!(r.location.as_deref(), Some(format!("/join#t={token}").as_str()));

    // Tampered: one character of the payload changed.
    let mut chars: Vec<char> = token.chars().collect();
    let i = token.find('.').unwrap() + 5;
    chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
    let tampered: String = chars.into_iter().collect();
    let r = w.get(&format!("/a/{tampered}")).await;
    assert_eq!(r.status, 400);
    assert!(r.text.contains("Il link non è valido"), "{}", r.text);

    // After the end + 30 min: expired.
    w.clock.advance(75 * 60); // 10:01
    let r = w.get(&landing).await;
    assert_eq!(r.status, 410);
    assert!(r.text.contains("scaduto"));
}

#[tokio::test]
async fn join_link_of_a_cancelled_appointment_is_gone() {
    let w = world().await;
    let body = w.book_ok(local(w.tuesday, 9, 0)).await;
    let token = token_of(body["join_url"].as_str().unwrap());
    let (code, secret) = (body["code"].as_str().unwrap(), body["secret"].as_str().unwrap());
    let r = w.post(&format!("/api/public/appointments/{code}/cancel"), &json!({"secret": secret})).await;
    assert_eq!(r.status, 200);
    w.clock.advance(50 * 60);
    let r = w.get(&format!("/a/{token}")).await;
    assert_eq!(r.status, 410);
    assert!(r.text.contains("Appuntamento annullato") && r.text.contains("/prenota"));
}

#[tokio::test]
async fn a_reminder_goes_out_once_with_a_cancel_link() {
    let w = world_with(|c| c.reminder_lead = Duration::from_secs(1)).await;
    let test = w.test.as_ref().unwrap();
    // Booked on Tuesday 08:00 for Wednesday 09:00 (25 h ahead), and one for today 10:00.
    let wednesday = w.tuesday.tomorrow().unwrap();
    let body = w.book_ok(local(wednesday, 9, 0)).await;
    let code = body["code"].as_str().unwrap().to_owned();
    let today = w.book_ok(local(w.tuesday, 10, 0)).await;
    // The pass as the server runs it, with a 24 h lead, on Tuesday at 09:30.
    let state = state_of(&test.server, (*test.server.config).clone(), test.data_dir());
    let lead = Duration::from_secs(24 * 3600);
    w.clock.advance(90 * 60);
    assert_eq!(sportello_backoffice::reminders::send_due_reminders(&state.back_office, lead).await.unwrap(), 1);
    assert_eq!(sportello_backoffice::reminders::send_due_reminders(&state.back_office, lead).await.unwrap(), 0);
    let emails = w.emails();
    assert_eq!(emails.len(), 3, "two confirmations + one reminder");
    let reminders: Vec<Mail> =
        emails.iter().map(|e| parse_mail(e)).filter(|m| m.subject.starts_with("Promemoria")).collect();
    assert_eq!(reminders.len(), 1);
    let reminder = &reminders[0];
    // The same-day booking got its confirmation minutes ago: no reminder on top of it.
    assert!(!reminder.text.contains(today["code"].as_str().unwrap()), "{}", reminder.text);
    let marker = format!("/appuntamento?codice={code}&azione=annulla#");
    let at = reminder.text.find(&marker).unwrap_or_else(|| panic!("cancel link in {}", reminder.text));
    let secret: String = reminder.text[at + marker.len()..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || "-_".contains(*c))
        .collect();
    assert!(reminder.text.contains("/a/"));
    // The one-click link's secret really cancels.
    let r = w.post(&format!("/api/public/appointments/{code}/cancel"), &json!({"secret": secret})).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

fn state_of(server: &RunningServer, config: Config, data_dir: &Path) -> sportello_server::state::AppState {
    let mailer = sportello_backoffice::mail::Mailer::new(None, &config.mail_from, data_dir).expect("mailer");
    let (_tx, rx) = tokio::sync::watch::channel(false);
    sportello_server::state::AppState::new(
        config,
        (*server.tokens).clone(),
        server.sfu.clone(),
        server.store.clone(),
        mailer,
        rx,
    )
}

#[tokio::test]
async fn a_restart_keeps_bookings_and_join_links() {
    let dir = tempfile::tempdir().unwrap();
    let tuesday = next_tuesday();
    let clock = Clock::offset(offset_to(local(tuesday, 8, 50)));
    let config = || Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        media_bind: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().to_owned(),
        reminder_lead: Duration::from_secs(1),
        ..Config::default()
    };
    let first = sportello_server::start_with_clock(config(), clock.clone()).await.expect("first start");
    let (office, service) = seed(&first.store).await;
    let mut w = World {
        test: None,
        server_url: first.url(),
        store: first.store.clone(),
        clock: clock.clone(),
        outbox: dir.path().join("outbox"),
        office,
        service,
        tuesday,
        http: client(),
    };
    // Notice is 60 minutes: at 08:50 the first bookable slot is 10:00.
    let body = w.book_ok(local(tuesday, 10, 0)).await;
    let code = body["code"].as_str().unwrap().to_owned();
    let token = token_of(body["join_url"].as_str().unwrap());
    first.store.close().await;
    tokio::time::timeout(Duration::from_secs(5), first.shutdown()).await.expect("shutdown").expect("clean");

    let second = sportello_server::start_with_clock(config(), clock.clone()).await.expect("second start");
    w.server_url = second.url();
    w.store = second.store.clone();
    assert!(second.store.appointment_by_code(&code).await.unwrap().is_some());
    clock.advance(60 * 60); // 09:50: the room is open
    let r = w.get(&format!("/a/{token}")).await;
    assert_eq!(r.status, 303, "{}", r.text);
    let _ = tokio::time::timeout(Duration::from_secs(5), second.shutdown()).await;
}
