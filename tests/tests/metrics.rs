//! `/metrics` as Prometheus would scrape it from a real server: on its own listener (never on the
//! public one), every series the Grafana dashboard (`deploy/grafana-dashboard.json`) queries
//! exported, and the values moving with real traffic — a booking through the public API, a citizen
//! admitted from the waiting room over real websockets, and media between two sans-IO WebRTC
//! clients through the server's SFU (with lost video packets, so NACKs and retransmissions happen).
//!
//! Runs inside a loopback-only network namespace (own `main`, see `sportello_tests::netns`). One
//! scenario per binary: the metrics recorder is process-wide, so counts are this scenario's alone.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde_json::{Value, json};
use sportello_store::{NewUser, StaffRole};
use sportello_tests::netns::run_scenario;
use sportello_tests::rtc_client::{Client, pump};
use sportello_tests::server::{Claims, Clock, Role, TestServer, WsClient, next_working_tuesday};

type Error = Box<dyn std::error::Error + Send + Sync>;

fn main() {
    run_scenario("metrics", scenario());
}

fn check(cond: bool, what: impl FnOnce() -> String) -> Result<(), Error> {
    if cond { Ok(()) } else { Err(what().into()) }
}

fn rome() -> TimeZone {
    sportello_domain::europe_rome().expect("tzdb")
}

/// A room token valid for an hour on the server's (shifted) clock; `wait`: through the lobby.
fn token(server: &TestServer, room: &str, identity: &str, role: Role, wait: bool) -> String {
    let now = u64::try_from(server.server.tokens.clock().now()).expect("a clock after 1970");
    let claims = server.claims(room, identity, role);
    server.sign(&Claims { iat: now, nbf: now, exp: now + 3600, wait, ..claims })
}

/// One scrape: each sample's value by its full series (`name{labels}`), and each family's type.
struct Scrape {
    text: String,
    samples: HashMap<String, f64>,
    types: HashMap<String, String>,
}

impl Scrape {
    fn parse(text: String) -> Scrape {
        let mut samples = HashMap::new();
        let mut types = HashMap::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let mut parts = rest.split_whitespace();
                if let (Some(name), Some(kind)) = (parts.next(), parts.next()) {
                    types.insert(name.to_owned(), kind.to_owned());
                }
            } else if !line.starts_with('#')
                && let Some((series, value)) = line.rsplit_once(' ')
                && let Ok(value) = value.parse::<f64>()
            {
                samples.insert(series.to_owned(), value);
            }
        }
        Scrape { text, samples, types }
    }

    /// The value of the series named `name` whose labels include every one of `labels`.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.samples
            .iter()
            .find(|(series, _)| {
                let (n, rest) = series.split_once('{').unwrap_or((series, ""));
                n == name && labels.iter().all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
            })
            .map(|(_, v)| *v)
    }

    fn get(&self, name: &str, labels: &[(&str, &str)]) -> Result<f64, Error> {
        self.value(name, labels).ok_or_else(|| format!("no {name} {labels:?} in the scrape:\n{}", self.text).into())
    }

    /// Whether a name used in a query is exported: a family, or a histogram's `_bucket`, `_sum` or
    /// `_count` series.
    fn exports(&self, name: &str) -> bool {
        if self.types.contains_key(name) {
            return true;
        }
        ["_bucket", "_sum", "_count"].iter().any(|suffix| {
            name.strip_suffix(suffix).and_then(|base| self.types.get(base)).is_some_and(|kind| kind == "histogram")
        })
    }
}

async fn scrape(http: &reqwest::Client, url: &str) -> Result<Scrape, Error> {
    let response = http.get(url).send().await?;
    check(response.status() == 200, || format!("/metrics answered {}", response.status()))?;
    let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    check(content_type.starts_with("text/plain"), || format!("content type {content_type}"))?;
    Ok(Scrape::parse(response.text().await?))
}

/// Every metric name in every PromQL expression of the dashboard.
fn dashboard_metric_names() -> Result<BTreeSet<String>, Error> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/grafana-dashboard.json");
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
    let mut exprs = Vec::new();
    collect_exprs(&dashboard, &mut exprs);
    check(exprs.len() >= 10, || format!("only {} queries in the dashboard", exprs.len()))?;
    let name = regex::Regex::new(r"sportello_[a-z0-9_]+")?;
    Ok(exprs.iter().flat_map(|e| name.find_iter(e).map(|m| m.as_str().to_owned())).collect())
}

fn collect_exprs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("expr", Value::String(expr)) => out.push(expr.clone()),
                    _ => collect_exprs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_exprs(v, out)),
        _ => {}
    }
}

async fn scenario() -> Result<(), Error> {
    let tuesday = next_working_tuesday();
    let eight = tuesday.at(8, 0, 0, 0).to_zoned(rome())?.timestamp();
    let clock = Clock::offset(eight.as_second() - Timestamp::now().as_second());
    let server = TestServer::start_at(clock, |c| {
        c.metrics_bind = Some("127.0.0.1:0".parse().expect("address"));
        // No reminder may add an email to the count.
        c.reminder_lead = Duration::from_secs(1);
    })
    .await;
    let metrics_url = format!("http://{}/metrics", server.server.metrics_addr.ok_or("no metrics listener")?);
    let http = reqwest::Client::new();

    // The public listener does not serve it; the probes answer there as before.
    let public = http.get(format!("{}/metrics", server.url())).send().await?.status();
    check(public == 404, || format!("/metrics on the public listener: {public}"))?;
    for probe in ["/healthz", "/readyz"] {
        let status = http.get(format!("{}{probe}", server.url())).send().await?.status();
        check(status == 200, || format!("{probe}: {status}"))?;
    }

    // Before any event, the catalogue's series exist at zero and the engine answers.
    let before = scrape(&http, &metrics_url).await?;
    check(before.get("sportello_bookings_total", &[])? == 0.0, || before.text.clone())?;
    check(before.get("sportello_booking_no_shows_total", &[("by", "system")])? == 0.0, || before.text.clone())?;
    check(before.get("sportello_walkins_total", &[("event", "queued")])? == 0.0, || before.text.clone())?;
    check(before.get("sportello_appio_messages_total", &[("outcome", "sent")])? == 0.0, || before.text.clone())?;
    check(before.get("sportello_sfu_up", &[])? == 1.0, || before.text.clone())?;
    check(before.get("sportello_sfu_participants", &[])? == 0.0, || before.text.clone())?;
    check(before.types.get("sportello_waiting_room_wait_seconds").is_some_and(|t| t == "histogram"), || {
        before.text.clone()
    })?;
    // The probes above were counted by route pattern and status.
    let healthz = before.get("sportello_http_requests_total", &[("route", "/healthz"), ("status", "200")])?;
    check(healthz == 1.0, || format!("/healthz counted {healthz} times"))?;

    // A citizen books through the public API.
    let store = &server.server.store;
    store.set_setting("booking.min_notice_minutes", "50").await?;
    let official = store
        .create_user(
            &NewUser { email: "mario@comune.example".into(), display_name: "Mario".into(), role: StaffRole::Official },
            0,
        )
        .await?;
    let office = server.seed_office("Anagrafe", &["09:00-12:00"], std::slice::from_ref(&official.id)).await?;
    let service =
        server.seed_service("Carta d'identità", sportello_store::Modes::Both, std::slice::from_ref(&office.id)).await?;
    let slots_path = format!(
        "{}/api/public/offices/{}/slots?service={}&month={:04}-{:02}",
        server.url(),
        office.id,
        service.id,
        tuesday.year(),
        tuesday.month()
    );
    let slots: Value = http.get(&slots_path).send().await?.json().await?;
    let start = slots["slots"][0]["start"].as_str().ok_or_else(|| format!("no slot: {slots}"))?.to_owned();
    let booking = json!({
        "office_id": office.id, "service_id": service.id, "start": start, "mode": "video",
        "first_name": "Anna", "last_name": "Rossi", "email": "anna.rossi@example.org",
        "details": "", "lang": "it", "website": ""
    });
    let booked = http.post(format!("{}/api/public/appointments", server.url())).json(&booking).send().await?;
    check(booked.status() == 201, || format!("booking: {}", booked.status()))?;

    // A host and a citizen admitted from the waiting room, over real websockets.
    let room = "vo-metrics";
    let mut host = server.connect(room).await;
    host.join(&token(&server, room, "anna", Role::Host, false)).await;
    let mut citizen = server.connect(room).await;
    let waiting = token(&server, room, "carla", Role::Participant, true);
    citizen.send_json(&json!({"v": 1, "type": "join", "token": waiting})).await;
    check(citizen.recv_json().await["type"] == "waiting", || "the citizen did not wait".into())?;
    host.recv_until("lobby").await;
    host.send_json(&json!({"v": 1, "type": "admit", "participant_id": "carla"})).await;
    citizen.recv_until("welcome").await;

    // Media through the room: carla publishes (losing every 20th video packet on the way, so the
    // SFU sends NACKs), anna receives (losing every 20th too, so the SFU retransmits).
    let mut publisher = Client::new("carla-pub").await?;
    publisher.drop_outgoing_video_every = 20;
    publisher.add_track(false)?;
    publisher.add_track(true)?;
    let (sdp, mids) = publisher.offer()?;
    let tracks: Vec<Value> = mids
        .iter()
        .map(|(mid, video)| json!({"mid": mid, "source": if *video { "camera" } else { "microphone" }}))
        .collect();
    citizen.send_json(&json!({"v": 1, "type": "offer", "pc": "publish", "sdp": sdp, "tracks": tracks})).await;
    let answer = citizen.recv_until("answer").await;
    publisher.apply_answer(answer["sdp"].as_str().ok_or("answer without sdp")?.to_owned())?;
    let mut viewer = Client::new("anna-sub").await?;
    viewer.drop_incoming_video_every = 20;
    let offer = offer_while_pumping(&mut host, &mut publisher).await?;
    let sdp = viewer.answer(offer["sdp"].as_str().ok_or("offer without sdp")?.to_owned())?;
    host.send_json(&json!({"v": 1, "type": "answer", "pc": "subscribe", "sdp": sdp})).await;
    let video = |c: &Client| c.received.iter().filter(|(k, _)| k.ends_with("/camera")).map(|(_, n)| *n).sum::<u64>();
    let flowed = pump(&mut [&mut publisher, &mut viewer], Duration::from_secs(15), |cs| video(cs[1]) >= 150).await;
    check(flowed, || format!("anna received {:?}", viewer.received))?;

    let after = scrape(&http, &metrics_url).await?;
    let text = || after.text.clone();
    // The booking: one booked, its confirmation sent, none failed; the POST counted by its route.
    check(after.get("sportello_bookings_total", &[])? == 1.0, text)?;
    check(after.get("sportello_emails_sent_total", &[])? == 1.0, text)?;
    check(after.get("sportello_emails_failed_total", &[])? == 0.0, text)?;
    let posted = after.get(
        "sportello_http_requests_total",
        &[("method", "POST"), ("route", "/api/public/appointments"), ("status", "201")],
    )?;
    check(posted == 1.0, || format!("POST /api/public/appointments counted {posted} times"))?;
    // Routes are patterns: no id of the office (in the slots path) reaches a label.
    check(!after.text.contains(&office.id), || format!("an id in a label:\n{}", after.text))?;
    check(after.get("sportello_http_requests_total", &[("route", "/metrics")]).is_err(), text)?;
    // The websockets and the waiting room.
    check(after.get("sportello_websocket_sessions", &[])? == 2.0, text)?;
    check(after.get("sportello_websocket_sessions_total", &[])? == 2.0, text)?;
    check(after.get("sportello_waiting_room_wait_seconds_count", &[])? == 1.0, text)?;
    check(after.get("sportello_rooms_open", &[])? >= 1.0, text)?;
    // The media engine: the room, its two participants and carla's two tracks, the forwarding,
    // the repairs and the first media reaching anna.
    check(after.get("sportello_sfu_rooms", &[])? == 1.0, text)?;
    check(after.get("sportello_sfu_participants", &[])? == 2.0, text)?;
    check(after.get("sportello_sfu_tracks", &[])? == 2.0, text)?;
    // Every video packet anna got was forwarded or retransmitted (not pumped since, so no more).
    let forwarded = after.get("sportello_sfu_forwarded_packets_total", &[])?;
    let retransmitted = after.get("sportello_sfu_rtx_packets_total", &[("direction", "sent")])?;
    let seen = video(&viewer) as f64;
    check(forwarded + retransmitted >= seen, || format!("{forwarded} forwarded + {retransmitted} RTX < {seen}"))?;
    check(after.get("sportello_sfu_forwarded_bytes_total", &[])? >= forwarded, text)?;
    check(after.get("sportello_sfu_nacks_total", &[("direction", "received")])? >= 1.0, text)?;
    check(after.get("sportello_sfu_nacks_total", &[("direction", "sent")])? >= 1.0, text)?;
    check(after.get("sportello_sfu_rtx_packets_total", &[("direction", "sent")])? >= 1.0, text)?;
    check(after.get("sportello_sfu_plis_total", &[("direction", "sent")])? >= 1.0, text)?;
    check(after.get("sportello_sfu_join_to_first_media_seconds_count", &[])? >= 1.0, text)?;
    // Per media thread; the one that owns the room has worked.
    let busy: f64 = ["0", "1"]
        .iter()
        .filter_map(|t| after.value("sportello_sfu_engine_busy_seconds_total", &[("thread", t)]))
        .sum();
    check(busy > 0.0 && after.get("sportello_sfu_engine_busy_seconds_total", &[("thread", "0")]).is_ok(), text)?;

    // Every series the dashboard queries is exported.
    let names = dashboard_metric_names()?;
    let missing: Vec<&String> = names.iter().filter(|n| !after.exports(n)).collect();
    check(missing.is_empty(), || format!("the dashboard queries series /metrics does not export: {missing:?}"))?;

    publisher.close();
    viewer.close();
    drop((host, citizen));
    server.shutdown().await;
    Ok(())
}

/// Waits for the server's subscribe `offer` on `ws` while pumping the publisher (it must keep up ICE).
async fn offer_while_pumping(ws: &mut WsClient, publisher: &mut Client) -> Result<Value, Error> {
    let end = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < end {
        pump(&mut [&mut *publisher], Duration::from_millis(30), |_| false).await;
        if let Some(message) = ws.try_recv_json(Duration::from_millis(5)).await
            && message["type"] == "offer"
        {
            return Ok(message);
        }
    }
    Err("no subscribe offer within 10 s".into())
}
