//! Smart-working calendars over real HTTP (issue 4): the staff calendar API as the staff pages use
//! it, and what citizens then see in the free slots; officials' own calendars fetched from a tiny
//! HTTP server on 127.0.0.1 that this test runs (and breaks); feeds read by Python's `icalendar`.
//!
//! Servers run on a clock shifted to a working Tuesday 07:50 in Europe/Rome (as `booking_api`).
//! The office is open Monday–Friday 09:00–12:00; the service lasts 30 minutes, video or in person;
//! the default notice is 60 minutes, so Tuesday's first slot is 09:00.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use jiff::Timestamp;
use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sportello_backoffice::clock::Clock;
use sportello_server::api::auth::first_admin_link;
use sportello_tests::server::TestServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PASSWORD: &str = "una-password-lunga";

fn rome() -> TimeZone {
    sportello_domain::europe_rome().expect("tzdb")
}

fn plus(d: Date, days: i64) -> Date {
    d.checked_add(jiff::Span::new().days(days)).expect("date")
}

/// The next Tuesday whose week (Tuesday–Friday) and the two Tuesdays after are not holidays.
fn next_tuesday() -> Date {
    let mut d = Timestamp::now().to_zoned(rome()).date().tomorrow().expect("date");
    loop {
        if d.weekday() == Weekday::Tuesday {
            let holidays = sportello_domain::holiday_dates(d.year(), d.year() + 1, None).expect("holidays");
            if [0, 1, 2, 3, 7, 14].iter().all(|n| !holidays.contains(&plus(d, *n))) {
                return d;
            }
        }
        d = d.tomorrow().expect("date");
    }
}

fn local(d: Date, h: i8, m: i8) -> Timestamp {
    d.at(h, m, 0, 0).to_zoned(rome()).expect("local").timestamp()
}

fn rfc3339(t: Timestamp) -> String {
    t.to_zoned(rome()).strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
}

fn month(d: Date) -> String {
    format!("{:04}-{:02}", d.year(), d.month())
}

fn ics_stamp(d: Date, h: i8) -> String {
    format!("{}T{:02}0000", d.strftime("%Y%m%d"), h)
}

struct Reply {
    status: StatusCode,
    text: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|_| panic!("not JSON ({}): {}", self.status, self.text))
    }

    fn expect(self, status: StatusCode) -> Value {
        assert_eq!(self.status, status, "{}", self.text);
        if self.text.is_empty() { Value::Null } else { self.json() }
    }

    fn expect_error(self, status: StatusCode, code: &str) -> String {
        assert_eq!(self.status, status, "{}", self.text);
        let body = self.json();
        assert_eq!(body["error"]["code"], code, "{body}");
        body["error"]["message"].as_str().unwrap_or_default().to_owned()
    }
}

/// A browser with its cookie jar.
struct Browser {
    base: String,
    http: reqwest::Client,
}

impl Browser {
    fn new(server: &TestServer) -> Browser {
        let http = reqwest::Client::builder().cookie_store(true).build().expect("client");
        Browser { base: server.url(), http }
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        let r = request.send().await.expect("request");
        Reply { status: r.status(), text: r.text().await.expect("body") }
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

    async fn delete(&self, path: &str) -> Reply {
        self.send(self.http.delete(format!("{}{path}", self.base))).await
    }

    /// An upload on a connection of its own: the server answers a refused (too large) body before
    /// reading it and closes that connection, and the next request must not find it in the pool
    /// (it would fail with `IncompleteMessage`; a browser retries such a request itself).
    async fn upload(&self, path: &str, body: Vec<u8>) -> Reply {
        let request = self.http.post(format!("{}{path}", self.base)).header("content-type", "text/calendar");
        self.send(request.header("connection", "close").body(body)).await
    }
}

struct World {
    server: TestServer,
    admin: Browser,
    anna: Browser,
    anna_id: String,
    bruno: Browser,
    office: String,
    service: String,
    tuesday: Date,
    public: Browser,
}

fn secret_of(link: &str) -> String {
    link.split_once('#').expect("secret").1.to_owned()
}

async fn staff_member(server: &TestServer, admin: &Browser, email: &str) -> (Browser, String) {
    let created = admin
        .post("/api/admin/users", json!({"email": email, "display_name": format!("Staff {email}"), "role": "official"}))
        .await
        .expect(StatusCode::CREATED);
    let browser = Browser::new(server);
    let token = secret_of(created["setup_url"].as_str().expect("setup_url"));
    browser.post("/api/auth/setup", json!({"token": token, "password": PASSWORD})).await.expect(StatusCode::OK);
    (browser, created["user"]["id"].as_str().expect("id").to_owned())
}

/// Anna works alone in the office (so its slots are hers); Bruno is an official elsewhere.
async fn world(fetch_timeout: Duration) -> World {
    let tuesday = next_tuesday();
    // 07:50: the clock runs during the setup, and 09:00 must stay beyond the 60-minute notice.
    let clock = Clock::offset(local(tuesday, 7, 50).as_second() - Timestamp::now().as_second());
    let server = TestServer::start_at(clock, |c| {
        c.reminder_lead = Duration::from_secs(1);
        c.calendar_fetch_timeout = fetch_timeout;
        // The test's calendar server lives on 127.0.0.1 (a real one would be on the Internet).
        c.calendar_allow_private = true;
    })
    .await;
    let now = server.server.tokens.clock().now();
    let link = first_admin_link(&server.server.store, &server.url(), now).await.expect("store").expect("link");
    let admin = Browser::new(&server);
    admin
        .post(
            "/api/auth/setup",
            json!({"token": secret_of(&link), "password": PASSWORD, "email": "admin@comune.example", "display_name": "Ada"}),
        )
        .await
        .expect(StatusCode::OK);
    let (anna, anna_id) = staff_member(&server, &admin, "anna@comune.example").await;
    let (bruno, _) = staff_member(&server, &admin, "bruno@comune.example").await;
    let hours = json!([["09:00-12:00"], ["09:00-12:00"], ["09:00-12:00"], ["09:00-12:00"], ["09:00-12:00"], [], []]);
    let office = admin
        .post(
            "/api/admin/offices",
            json!({"name": "Anagrafe", "address": "Piazza del Comune 1", "opening_hours": hours, "member_ids": [anna_id]}),
        )
        .await
        .expect(StatusCode::CREATED)["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let service = admin
        .post(
            "/api/admin/services",
            json!({"name": "Carta d'identità", "duration_minutes": 30, "modes": "both", "office_ids": [office]}),
        )
        .await
        .expect(StatusCode::CREATED)["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let public = Browser::new(&server);
    World { server, admin, anna, anna_id, bruno, office, service, tuesday, public }
}

impl World {
    /// Free slots of a day as `(local "HH:MM", modes)`.
    async fn slots(&self, d: Date) -> Vec<(String, Vec<String>)> {
        let path = format!("/api/public/offices/{}/slots?service={}&month={}", self.office, self.service, month(d));
        let body = self.public.get(&path).await.expect(StatusCode::OK);
        let prefix = d.to_string();
        body["slots"]
            .as_array()
            .expect("slots")
            .iter()
            .filter(|s| s["start"].as_str().unwrap_or_default().starts_with(&prefix))
            .map(|s| {
                let start = s["start"].as_str().expect("start");
                let modes = s["modes"].as_array().expect("modes").iter().map(|m| m.as_str().unwrap().to_owned());
                (start[11..16].to_owned(), modes.collect())
            })
            .collect()
    }

    async fn times(&self, d: Date) -> Vec<String> {
        self.slots(d).await.into_iter().map(|(t, _)| t).collect()
    }

    async fn day(&self, d: Date) -> Value {
        let body = self.anna.get(&format!("/api/staff/calendar/month?month={}", month(d))).await.expect(StatusCode::OK);
        body["days"].as_array().expect("days").iter().find(|x| x["date"] == d.to_string()).expect("the day").clone()
    }

    async fn book(&self, start: Timestamp, mode: &str) -> Value {
        let body = json!({
            "office_id": self.office, "service_id": self.service, "start": rfc3339(start), "mode": mode,
            "first_name": "Anna", "last_name": "Rossi", "email": "anna.rossi@example.org",
            "details": "Rinnovo", "lang": "it", "website": ""
        });
        self.public.post("/api/public/appointments", body).await.expect(StatusCode::CREATED)
    }
}

fn all_times() -> Vec<String> {
    ["09:00", "09:30", "10:00", "10:30", "11:00", "11:30"].map(str::to_owned).to_vec()
}

fn day_json(mode: &str) -> Value {
    if mode == "off" { json!({"mode": "off"}) } else { json!({"mode": mode, "hours": ["09:00-12:00"]}) }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patterns_absences_and_the_month_decide_the_slots() {
    let w = world(Duration::from_secs(10)).await;
    let (tue, wed, thu, fri) = (w.tuesday, plus(w.tuesday, 1), plus(w.tuesday, 2), plus(w.tuesday, 3));

    // Until a pattern is saved the office hours apply: every day on site, video or in person.
    let p = w.anna.get("/api/staff/calendar/pattern").await.expect(StatusCode::OK);
    assert_eq!((p["pattern"].clone(), p["follows_office_hours"].clone()), (Value::Null, json!(true)));
    assert_eq!(w.times(wed).await, all_times());

    // An invalid pattern is refused with the day named.
    let week: Vec<Value> = ["on_site", "on_site", "remote", "on_site", "on_site", "off", "off"].map(day_json).into();
    let mut bad = week.clone();
    bad[2] = json!({"mode": "remote", "hours": ["14:00-09:00"]});
    let message = w
        .anna
        .put("/api/staff/calendar/pattern", json!({"pattern": {"week": bad}}))
        .await
        .expect_error(StatusCode::BAD_REQUEST, "invalid_pattern");
    assert!(message.contains("Mercoledì"), "{message}");

    // Round trip; Wednesday is remote.
    let saved =
        w.anna.put("/api/staff/calendar/pattern", json!({"pattern": {"week": week}})).await.expect(StatusCode::OK);
    assert_eq!(saved["follows_office_hours"], false);
    let got = w.anna.get("/api/staff/calendar/pattern").await.expect(StatusCode::OK);
    assert_eq!(got, saved);
    assert_eq!(got["pattern"]["week"][2], json!({"mode": "remote", "hours": ["09:00-12:00"]}));

    // Mode follows the day: remote → video only; on site → both, as the service allows.
    let wed_slots = w.slots(wed).await;
    assert_eq!(wed_slots.len(), 6);
    assert!(wed_slots.iter().all(|(_, m)| m == &["video"]), "{wed_slots:?}");
    let tue_slots = w.slots(tue).await;
    assert!(tue_slots.iter().all(|(_, m)| m.contains(&"video".into()) && m.contains(&"in_person".into())));

    // Scope: an official addresses only their own calendar; an administrator anyone.
    let other = format!("/api/staff/calendar/pattern?user={}", w.anna_id);
    w.bruno.get(&other).await.expect_error(StatusCode::FORBIDDEN, "forbidden");
    w.bruno.put(&other, json!({"pattern": null})).await.expect_error(StatusCode::FORBIDDEN, "forbidden");
    w.bruno
        .post(
            &format!("/api/staff/calendar/absences?user={}", w.anna_id),
            json!({"kind": "sick", "start": tue.to_string(), "end": tue.to_string()}),
        )
        .await
        .expect_error(StatusCode::FORBIDDEN, "forbidden");
    assert_eq!(w.admin.get(&other).await.expect(StatusCode::OK), saved);
    w.admin.get("/api/staff/calendar/pattern?user=nobody").await.expect_error(StatusCode::NOT_FOUND, "not_found");
    assert_eq!(w.times(tue).await, all_times(), "the refused requests changed nothing");

    // A whole-day absence empties Thursday; hourly leave takes only its hours from Tuesday.
    let thursday_off = w
        .anna
        .post(
            "/api/staff/calendar/absences",
            json!({"kind": "holiday", "start": thu.to_string(), "end": thu.to_string(), "note": "ferie"}),
        )
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(thursday_off["start_time"], Value::Null);
    assert_eq!(w.times(thu).await, Vec::<String>::new());
    let leave = w
        .anna
        .post(
            "/api/staff/calendar/absences",
            json!({"kind": "other", "start": tue.to_string(), "end": tue.to_string(), "start_time": "10:00", "end_time": "11:00"}),
        )
        .await
        .expect(StatusCode::CREATED);
    assert_eq!((leave["start_time"].as_str(), leave["end_time"].as_str()), (Some("10:00"), Some("11:00")));
    assert_eq!(w.times(tue).await, ["09:00", "09:30", "11:00", "11:30"]);
    w.anna
        .post(
            "/api/staff/calendar/absences",
            json!({"kind": "other", "start": tue.to_string(), "end": tue.to_string(), "start_time": "11:00", "end_time": "10:00"}),
        )
        .await
        .expect_error(StatusCode::BAD_REQUEST, "invalid_range");
    let listed = w.anna.get(&format!("/api/staff/calendar/absences?from={tue}&to={fri}")).await.expect(StatusCode::OK);
    assert_eq!(listed.as_array().expect("list").len(), 2);

    // Deleting the absence gives Thursday back; someone else's id is 404.
    let id = thursday_off["id"].as_str().expect("id");
    w.bruno
        .delete(&format!("/api/staff/calendar/absences/{id}"))
        .await
        .expect_error(StatusCode::NOT_FOUND, "not_found");
    w.anna.delete(&format!("/api/staff/calendar/absences/{id}")).await.expect(StatusCode::NO_CONTENT);
    assert_eq!(w.times(thu).await, all_times());
    w.anna
        .post("/api/staff/calendar/absences", json!({"kind": "sick", "start": thu.to_string(), "end": thu.to_string()}))
        .await
        .expect(StatusCode::CREATED);

    // The patron's day on Friday; a booking on Tuesday at 09:00.
    let patron = format!("{:02}-{:02}", fri.month(), fri.day());
    w.server.server.store.set_setting("municipality.patron_day", &patron).await.expect("setting");
    let booked = w.book(local(tue, 9, 0), "video").await;

    let day = w.day(tue).await;
    assert_eq!((day["status"].as_str(), day["weekday"].as_i64()), (Some("on_site"), Some(2)));
    assert_eq!(day["hours"], json!(["09:00-12:00"]));
    assert_eq!(day["contact"], "09:00-12:00");
    assert_eq!(day["absences"].as_array().expect("absences").len(), 1);
    let appts = day["appointments"].as_array().expect("appointments");
    assert_eq!(appts.len(), 1);
    assert_eq!(appts[0]["code"], booked["code"]);
    assert_eq!((appts[0]["service"].as_str(), appts[0]["mode"].as_str()), (Some("Carta d'identità"), Some("video")));
    assert_eq!(appts[0]["citizen"], "Anna Rossi");
    assert_eq!(w.day(wed).await["status"], "remote");
    assert_eq!(w.day(thu).await["status"], "absent");
    let friday = w.day(fri).await;
    assert_eq!((friday["status"].as_str(), friday["holiday"].as_str()), (Some("holiday"), Some("Santo patrono")));
    assert_eq!(w.day(plus(tue, 4)).await["status"], "off");
    assert_eq!(w.times(fri).await, Vec::<String>::new());
    w.server.shutdown().await;
}

/// Issue 11 item 3: unticking «Segui l'orario di apertura dell'ufficio» starts from the hours in
/// force, and before saving the preview says how many bookable slots a change takes from citizens —
/// the same count the public slot list then shows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_editor_starts_from_the_hours_in_force_and_the_preview_counts_lost_slots() {
    let w = world(Duration::from_secs(10)).await;
    let split = json!(["08:30-12:30", "14:30-16:30"]);
    let hours = json!([split, split, split, split, split, [], []]);
    w.admin
        .put(
            &format!("/api/admin/offices/{}", w.office),
            json!({"name": "Anagrafe", "address": "Piazza del Comune 1", "opening_hours": hours, "member_ids": [w.anna_id]}),
        )
        .await
        .expect(StatusCode::OK);

    // The hours in force are the office's: split hours on site, a contact band across both (the
    // lunch break does not count against its length), the weekend off.
    let p = w.anna.get("/api/staff/calendar/pattern").await.expect(StatusCode::OK);
    assert_eq!((p["pattern"].clone(), p["follows_office_hours"].clone()), (Value::Null, json!(true)));
    let in_force = p["in_force"].clone();
    assert_eq!(in_force["week"][0], json!({"mode": "on_site", "hours": split, "contact": "08:30-16:30"}));
    assert_eq!(in_force["week"][5], json!({"mode": "off"}));

    // Every public slot from now to the horizon (three months cover the 60 days).
    let mut public = Vec::new();
    for m in 0..3 {
        let d = w.tuesday.first_of_month().checked_add(jiff::Span::new().months(m)).expect("month");
        let path = format!("/api/public/offices/{}/slots?service={}&month={}", w.office, w.service, month(d));
        let body = w.public.get(&path).await.expect(StatusCode::OK);
        public.extend(body["slots"].as_array().expect("slots").iter().map(|s| s["start"].as_str().unwrap().to_owned()));
    }
    let afternoons = public.iter().filter(|s| &s[11..13] >= "14").count();
    assert!(afternoons > 0 && public.len() > afternoons, "{public:?}");

    // Nothing changes: nothing is lost.
    let same =
        w.anna.post("/api/staff/calendar/pattern/preview", json!({"pattern": null})).await.expect(StatusCode::OK);
    assert_eq!(
        (same["before"].as_u64(), same["removed"].as_u64(), same["added"].as_u64()),
        (Some(public.len() as u64), Some(0), Some(0))
    );

    // Saving the office's hours as a personal pattern (the editor's start) loses nothing; nor does
    // marking Tuesdays remote (the official meets by video, and the service is offered by video).
    let kept =
        w.anna.post("/api/staff/calendar/pattern/preview", json!({"pattern": in_force})).await.expect(StatusCode::OK);
    assert_eq!((kept["removed"].as_u64(), kept["after"].as_u64()), (Some(0), Some(public.len() as u64)), "{kept}");
    let mut remote_tuesday = in_force.clone();
    remote_tuesday["week"][1]["mode"] = json!("remote");
    let remote = w
        .anna
        .post("/api/staff/calendar/pattern/preview", json!({"pattern": remote_tuesday}))
        .await
        .expect(StatusCode::OK);
    assert_eq!(remote["removed"].as_u64(), Some(0), "{remote}");

    // Wednesdays off: the preview says how many slots go, per service, before anything is saved.
    let wednesdays = public
        .iter()
        .filter(|s| s[..10].parse::<Date>().is_ok_and(|d| d.weekday() == jiff::civil::Weekday::Wednesday))
        .count();
    assert!(wednesdays > 0);
    let mut off_wednesday = in_force.clone();
    off_wednesday["week"][2] = json!({"mode": "off"});
    let lost = w
        .anna
        .post("/api/staff/calendar/pattern/preview", json!({"pattern": off_wednesday}))
        .await
        .expect(StatusCode::OK);
    assert_eq!(lost["removed"].as_u64(), Some(wednesdays as u64), "{lost}");
    assert_eq!(
        (lost["before"].as_u64(), lost["after"].as_u64()),
        (Some(public.len() as u64), Some((public.len() - wednesdays) as u64))
    );
    assert_eq!(lost["services"][0]["service_name"], "Carta d'identità");
    assert_eq!(lost["services"][0]["office_name"], "Anagrafe");
    assert_eq!(lost["services"][0]["removed"], lost["removed"]);
    let _ = afternoons;

    // Whole days without the lunch break and a Saturday morning add slots and take none.
    let mut more = in_force.clone();
    more["week"][5] = json!({"mode": "on_site", "hours": ["08:30-12:30"]});
    for d in 0..5 {
        more["week"][d] = json!({"mode": "on_site", "hours": ["08:30-16:30"]});
    }
    let added =
        w.anna.post("/api/staff/calendar/pattern/preview", json!({"pattern": more})).await.expect(StatusCode::OK);
    assert_eq!(added["removed"].as_u64(), Some(0), "{added}");
    assert!(added["added"].as_u64().unwrap() > 0, "{added}");

    // The preview saves nothing; it checks like saving does, and only for oneself.
    let p = w.anna.get("/api/staff/calendar/pattern").await.expect(StatusCode::OK);
    assert_eq!(p["follows_office_hours"], true);
    let mut bad = in_force.clone();
    bad["week"][2] = json!({"mode": "remote", "hours": ["14:00-09:00"]});
    let message = w
        .anna
        .post("/api/staff/calendar/pattern/preview", json!({"pattern": bad}))
        .await
        .expect_error(StatusCode::BAD_REQUEST, "invalid_pattern");
    assert!(message.contains("Mercoledì"), "{message}");
    w.bruno
        .post(&format!("/api/staff/calendar/pattern/preview?user={}", w.anna_id), json!({"pattern": null}))
        .await
        .expect_error(StatusCode::FORBIDDEN, "forbidden");
    let doc = w.public.get("/api/openapi.json").await.expect(StatusCode::OK);
    assert!(doc["paths"]["/api/staff/calendar/pattern/preview"]["post"].is_object());
    w.server.shutdown().await;
}

/// One rule for an official without a personal pattern who works in two offices: each office's
/// bookings offer that office's hours, and the official's own month view (and feed) shows the
/// hours of both — so every slot citizens can book lies inside the hours the official sees.
#[tokio::test]
async fn an_official_in_two_offices_sees_the_hours_both_offer() {
    let w = world(Duration::from_secs(10)).await;
    let hours = json!([["14:00-17:00"], ["14:00-17:00"], ["14:00-17:00"], ["14:00-17:00"], ["14:00-17:00"], [], []]);
    let second = w
        .admin
        .post(
            "/api/admin/offices",
            json!({"name": "Tributi", "address": "Via Roma 2", "opening_hours": hours, "member_ids": [w.anna_id]}),
        )
        .await
        .expect(StatusCode::CREATED)["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let service = w
        .admin
        .post(
            "/api/admin/services",
            json!({"name": "TARI", "duration_minutes": 30, "modes": "both", "office_ids": [second]}),
        )
        .await
        .expect(StatusCode::CREATED)["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let day = w.day(w.tuesday).await;
    assert_eq!(day["hours"], json!(["09:00-12:00", "14:00-17:00"]), "{day}");
    let contact = day["contact"].as_str().expect("a contact band").to_owned();
    // Both offices' slots on that day lie inside what the official sees.
    let slots = |office: &str, service: &str| {
        format!("/api/public/offices/{office}/slots?service={service}&month={}", month(w.tuesday))
    };
    let mut starts = Vec::new();
    for (office, service) in [(w.office.as_str(), w.service.as_str()), (second.as_str(), service.as_str())] {
        let body = w.public.get(&slots(office, service)).await.expect(StatusCode::OK);
        starts.extend(
            body["slots"]
                .as_array()
                .expect("slots")
                .iter()
                .map(|s| s["start"].as_str().unwrap().to_owned())
                .filter(|s| s.starts_with(&w.tuesday.to_string())),
        );
    }
    assert!(starts.iter().any(|s| &s[11..16] == "09:00") && starts.iter().any(|s| &s[11..16] == "14:00"), "{starts:?}");
    let (from, to) = contact.split_once('-').expect("HH:MM-HH:MM");
    for start in &starts {
        let time = &start[11..16];
        assert!(from <= time && time < to, "{start} outside the official's band {contact}");
    }
    w.server.shutdown().await;
}

// --- the official's own calendar, served by a tiny HTTP server ------------------------------------------

const SERVE_ICS: u8 = 0;
const SERVE_GARBAGE: u8 = 1;
const SERVE_HUGE: u8 = 2;
const SERVE_HANG: u8 = 3;

/// An HTTP/1.1 server on 127.0.0.1 answering every request according to `mode`.
async fn calendar_server(ics: String, mode: Arc<AtomicU8>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else { return };
            let (ics, mode) = (ics.clone(), mode.clone());
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let head = |len: Option<usize>| {
                    let len = len.map(|n| format!("content-length: {n}\r\n")).unwrap_or_default();
                    format!("HTTP/1.1 200 OK\r\ncontent-type: text/calendar\r\n{len}connection: close\r\n\r\n")
                };
                let _ = match mode.load(Ordering::SeqCst) {
                    SERVE_ICS => stream.write_all(format!("{}{ics}", head(Some(ics.len()))).as_bytes()).await,
                    SERVE_GARBAGE => {
                        let body = "<html>Service Unavailable</html>";
                        stream.write_all(format!("{}{body}", head(Some(body.len()))).as_bytes()).await
                    }
                    SERVE_HUGE => {
                        // No length announced: the limit must hold while streaming.
                        let _ = stream.write_all(head(None).as_bytes()).await;
                        let chunk = vec![b'X'; 64 * 1024];
                        let mut result = Ok(());
                        for _ in 0..80 {
                            result = stream.write_all(&chunk).await;
                            if result.is_err() {
                                break;
                            }
                        }
                        result
                    }
                    _ => {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                        Ok(())
                    }
                };
            });
        }
    });
    addr
}

/// Weekly on Tuesdays 09:00–10:00 from `tue`, except the next Tuesday (EXDATE).
fn weekly_ics(tue: Date) -> String {
    [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Test//Test//IT",
        "BEGIN:VEVENT",
        "UID:weekly@test",
        "DTSTAMP:20250101T000000Z",
        &format!("DTSTART;TZID=Europe/Rome:{}", ics_stamp(tue, 9)),
        &format!("DTEND;TZID=Europe/Rome:{}", ics_stamp(tue, 10)),
        "RRULE:FREQ=WEEKLY;COUNT=4",
        &format!("EXDATE;TZID=Europe/Rome:{}", ics_stamp(plus(tue, 7), 9)),
        "SUMMARY:Riunione di servizio",
        "END:VEVENT",
        "END:VCALENDAR",
        "",
    ]
    .join("\r\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_calendars_block_slots_and_failures_keep_the_previous_busy_set() {
    let w = world(Duration::from_millis(1500)).await;
    let tue = w.tuesday;
    let mode = Arc::new(AtomicU8::new(SERVE_ICS));
    let addr = calendar_server(weekly_ics(tue), mode.clone()).await;
    let url = format!("http://{addr}/private/calendar-token-123.ics");

    let source = w
        .anna
        .post("/api/staff/calendar/sources", json!({"label": "Outlook", "url": url}))
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(source["url_host"], "127.0.0.1");
    assert_eq!(source["last_error"], Value::Null);
    assert_eq!(source["busy_count"], 3, "four weekly instances minus the EXDATE");
    assert!(!source.to_string().contains("calendar-token-123"), "the URL is a secret: {source}");
    let id = source["id"].as_str().expect("id").to_owned();

    let without_nine = ["10:00", "10:30", "11:00", "11:30"];
    assert_eq!(w.times(tue).await, without_nine);
    assert_eq!(w.times(plus(tue, 7)).await, all_times(), "EXDATE frees the next Tuesday");
    assert_eq!(w.times(plus(tue, 14)).await, without_nine);
    let busy = &w.day(tue).await["busy"];
    assert_eq!(busy[0]["source"], "Outlook");
    assert_eq!(busy[0]["start"], rfc3339(local(tue, 9, 0)));

    // «Aggiorna» at once again: the subscription was just fetched, so the server waits a minute.
    let again = w.anna.post(&format!("/api/staff/calendar/sources/{id}/refresh"), json!({})).await;
    again.expect_error(StatusCode::TOO_MANY_REQUESTS, "too_many_attempts");
    let clock = w.server.server.tokens.clock().clone();

    // Garbage, a 5 MiB body, a server that hangs: the previous busy set stays, the error shows.
    for (serve, words) in [(SERVE_GARBAGE, "iCalendar"), (SERVE_HUGE, "troppo grande"), (SERVE_HANG, "in tempo")] {
        mode.store(serve, Ordering::SeqCst);
        clock.advance(61);
        let refreshed =
            w.anna.post(&format!("/api/staff/calendar/sources/{id}/refresh"), json!({})).await.expect(StatusCode::OK);
        let error =
            refreshed["last_error"].as_str().unwrap_or_else(|| panic!("an error for mode {serve}: {refreshed}"));
        assert!(error.contains(words), "mode {serve}: {error}");
        assert_eq!(refreshed["busy_count"], 3);
        assert_eq!(w.times(tue).await, without_nine, "mode {serve}");
    }
    let listed = w.anna.get("/api/staff/calendar/sources").await.expect(StatusCode::OK);
    assert!(listed[0]["last_error"].as_str().is_some_and(|e| e.contains("in tempo")), "{listed}");
    assert_ne!(listed[0]["last_fetch_at"], listed[0]["last_ok_at"]);

    // Working again: the error clears.
    mode.store(SERVE_ICS, Ordering::SeqCst);
    clock.advance(61);
    let ok = w.anna.post(&format!("/api/staff/calendar/sources/{id}/refresh"), json!({})).await.expect(StatusCode::OK);
    assert_eq!((ok["last_error"].clone(), ok["busy_count"].clone()), (Value::Null, json!(3)));

    // Uploads: a bad file is refused and nothing is stored; a good one blocks its times.
    let bad = w.anna.upload("/api/staff/calendar/upload?label=File", b"BEGIN:VCALENDAR\r\nnonsense".to_vec()).await;
    bad.expect_error(StatusCode::BAD_REQUEST, "invalid_ics");
    let huge = w.anna.upload("/api/staff/calendar/upload?label=File", vec![b'X'; 3 * 1024 * 1024]).await;
    huge.expect_error(StatusCode::PAYLOAD_TOO_LARGE, "too_large");
    assert_eq!(w.anna.get("/api/staff/calendar/sources").await.expect(StatusCode::OK).as_array().unwrap().len(), 1);
    let wed = plus(tue, 1);
    let one = weekly_ics(wed).replace("RRULE:FREQ=WEEKLY;COUNT=4\r\n", "").replace("EXDATE", "X-NOT-EXDATE");
    let uploaded =
        w.anna.upload("/api/staff/calendar/upload?label=Agenda", one.into_bytes()).await.expect(StatusCode::CREATED);
    assert_eq!((uploaded["kind"].as_str(), uploaded["busy_count"].as_i64()), (Some("upload"), Some(1)));
    assert_eq!(uploaded["url_host"], Value::Null);
    assert_eq!(w.times(wed).await, without_nine);

    // At most ten calendars per person: the eleventh is refused, by URL or by upload.
    for i in 2..10 {
        let label = format!("/api/staff/calendar/upload?label=Agenda{i}");
        w.anna
            .upload(&label, b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n".to_vec())
            .await
            .expect(StatusCode::CREATED);
    }
    let eleventh = w
        .anna
        .upload("/api/staff/calendar/upload?label=Troppi", b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n".to_vec())
        .await;
    eleventh.expect_error(StatusCode::CONFLICT, "too_many_calendars");
    let by_url = w.anna.post("/api/staff/calendar/sources", json!({"label": "Altro", "url": url})).await;
    by_url.expect_error(StatusCode::CONFLICT, "too_many_calendars");
    assert_eq!(w.anna.get("/api/staff/calendar/sources").await.expect(StatusCode::OK).as_array().unwrap().len(), 10);

    // Deleting a source frees its times; another official cannot delete it.
    w.bruno.delete(&format!("/api/staff/calendar/sources/{id}")).await.expect_error(StatusCode::NOT_FOUND, "not_found");
    w.anna.delete(&format!("/api/staff/calendar/sources/{id}")).await.expect(StatusCode::NO_CONTENT);
    assert_eq!(w.times(tue).await, all_times());
    w.server.shutdown().await;
}

// --- feeds ---------------------------------------------------------------------------------------------

/// `UID|SUMMARY|LOCATION|DTSTART` of every VEVENT, as Python's `icalendar` reads them.
fn python_events(text: &str) -> Vec<String> {
    let probe = std::process::Command::new("python3").args(["-c", "import icalendar"]).output();
    assert!(
        probe.as_ref().is_ok_and(|o| o.status.success()),
        "python3 with the `icalendar` package is required (scripts/test installs it): {probe:?}"
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("feed.ics");
    std::fs::write(&path, text).expect("write");
    let script = r#"
import icalendar, sys
cal = icalendar.Calendar.from_ical(open(sys.argv[1], 'rb').read())
for ev in cal.walk('VEVENT'):
    s = ev.decoded('DTSTART')
    print(str(ev['UID']), str(ev['SUMMARY']), str(ev.get('LOCATION', '')), s.strftime('%Y%m%dT%H%M%SZ') if hasattr(s, 'hour') else s.strftime('%Y%m%d'), sep='|')
"#;
    let out = std::process::Command::new("python3").args(["-c", script]).arg(&path).output().expect("python3");
    assert!(out.status.success(), "icalendar failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8").lines().map(str::to_owned).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feeds_carry_the_appointments_with_the_emails_uid_and_rotate() {
    let w = world(Duration::from_secs(10)).await;
    let tue = w.tuesday;
    let video = w.book(local(tue, 9, 0), "video").await;
    let in_person = w.book(local(tue, 11, 0), "in_person").await;

    // The UID of the appointment's .ics (the one attached to the email).
    let ics = w
        .public
        .send(
            w.public
                .http
                .get(format!("{}/api/public/appointments/{}/ics", w.public.base, video["code"].as_str().unwrap()))
                .header("X-Booking-Secret", video["secret"].as_str().expect("secret")),
        )
        .await;
    assert_eq!(ics.status, StatusCode::OK, "{}", ics.text);
    let email_uid = python_events(&ics.text)[0].split('|').next().expect("uid").to_owned();
    assert!(email_uid.starts_with("appt-") && email_uid.ends_with("@sportello"), "{email_uid}");

    let feeds = w.anna.get("/api/staff/calendar/feeds").await.expect(StatusCode::OK);
    assert_eq!(w.anna.get("/api/staff/calendar/feeds").await.expect(StatusCode::OK), feeds, "shown again, unchanged");
    let official_url = feeds["official_url"].as_str().expect("url").to_owned();
    assert!(official_url.starts_with(&format!("{}/feeds/", w.server.url())) && official_url.ends_with(".ics"));
    let office_url = feeds["offices"][0]["url"].as_str().expect("office url").to_owned();
    assert_eq!(feeds["offices"][0]["office_id"], w.office.as_str());

    let http = reqwest::Client::new();
    let fetch = |url: String| {
        let http = http.clone();
        async move {
            let r = http.get(url).send().await.expect("feed");
            let (status, ct) = (r.status(), r.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()));
            (status, ct, r.text().await.expect("text"))
        }
    };
    let (status, ct, text) = fetch(official_url.clone()).await;
    assert_eq!((status, ct.as_deref()), (StatusCode::OK, Some("text/calendar; charset=utf-8")));
    assert!(!text.contains("Rossi") && !text.contains("/a/"), "privacy: no surname, no join link\n{text}");
    let events = python_events(&text);
    let video_line = events.iter().find(|e| e.starts_with(&email_uid)).unwrap_or_else(|| panic!("{events:?}"));
    assert!(video_line.contains("|Carta d'identità – R.|Ufficio virtuale|"), "{video_line}");
    assert!(events.iter().any(|e| e.contains("|Piazza del Comune 1|")), "in person: the office address {events:?}");
    assert!(events.iter().any(|e| e.contains("|In sede||")), "on-site days: {events:?}");
    assert_eq!(events.iter().filter(|e| e.starts_with("appt-")).count(), 2);
    let _ = in_person;

    let (status, _, office_text) = fetch(office_url).await;
    assert_eq!(status, StatusCode::OK);
    let office_events = python_events(&office_text);
    assert!(office_events.iter().any(|e| e.starts_with(&email_uid)), "{office_events:?}");

    // Rotation: the old URL is gone, the new one works.
    let rotated = w.anna.post("/api/staff/calendar/feeds/rotate", json!({})).await.expect(StatusCode::OK);
    let new_url = rotated["official_url"].as_str().expect("url").to_owned();
    assert_ne!(new_url, official_url);
    assert_eq!(fetch(official_url).await.0, StatusCode::NOT_FOUND);
    assert_eq!(fetch(new_url).await.0, StatusCode::OK);
    assert_eq!(fetch(format!("{}/feeds/not-a-secret.ics", w.server.url())).await.0, StatusCode::NOT_FOUND);
    w.server.shutdown().await;
}
