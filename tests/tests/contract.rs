//! The API contract (issue 14): schemathesis, an independent checker, reads `/api/openapi.json` of
//! a running server with the demo municipality and sends every operation generated requests —
//! schema-valid and invalid ones, the document's examples, stateful sequences — with every check on
//! (`--checks all`): no 5xx, every status code, content type, header and body as documented,
//! valid requests accepted, invalid ones refused with 4xx, authentication enforced where declared.
//! Any finding fails the test with schemathesis's report.
//!
//! Credentials come from the document's security schemes: `session` is an administrator's session
//! cookie (logged in through `/api/auth/login` like the dashboard), `room_token` a host's join token
//! for the room `demo`, whose host is admitted over a real websocket for the whole run (uploads need
//! it), `encoder_token` the chamber encoder's token for the seeded council session. Path ids are
//! drawn half of the time from the demo's real offices, services, staff and that council session,
//! and a booking made first as a citizen would stands for `{code}`, so the requests reach past the
//! 404s.
//!
//! Needs `python3` with schemathesis 4 (`scripts/test` installs it). Runs inside a loopback-only
//! network namespace (own `main`, see `sportello_tests::netns`): generated calendar URLs and the like
//! can reach nothing but loopback; mail goes to the server's outbox directory.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use sportello_tests::server::{Claims, Role, TestServer};
use tokio::process::Command;

type Result<T> = std::result::Result<T, String>;

/// Generated test cases per operation and phase: enough to find a wrong status or type, few enough
/// that the whole run takes minutes on two cores.
const MAX_EXAMPLES: &str = "100";
/// The longest schemathesis may run before it is killed and the test fails.
const RUN_LIMIT: Duration = Duration::from_secs(15 * 60);
/// Fixed seed: a failure reproduces with the same requests.
const SEED: &str = "14";

fn main() {
    sportello_tests::netns::run_scenario("contract", scenario());
}

async fn scenario() -> Result<()> {
    schemathesis_version().await?;
    let server = TestServer::start_with(|c| {
        // The per-address limits count every generated request from 127.0.0.1: raised, so that the
        // run tests the operations rather than the limiters (which have tests of their own).
        c.login_failures_per_ip = 100_000;
        c.network_checks_per_ip_minute = 100_000;
        c.live_viewers_per_ip_minute = 100_000;
    })
    .await;
    let outcome = run(&server).await;
    server.shutdown().await;
    outcome
}

async fn run(server: &TestServer) -> Result<()> {
    let store = &server.server.store;
    let now = server.server.tokens.clock().now();
    let accounts = sportello_backoffice::demo::ensure(store, server.data_dir(), now)
        .await
        .map_err(|e| format!("the demo data: {e}"))?;
    for key in ["booking.rate_limit_per_minute", "booking.rate_limit_per_day"] {
        store.set_setting(key, "100000").await.map_err(|e| e.to_string())?;
    }
    let council = server.seed_council(&["Carla"], &["Bilancio"]).await.map_err(|e| e.to_string())?;
    let cookie = login(server, &accounts).await?;
    let booking = book(server).await?;

    // The host of `demo` in the room, so that uploads with its token are allowed.
    let (host, _welcome) = server.join("demo", "contract-host", Role::Host).await;
    let room_token = server.token("demo", "contract-host", Role::Host);
    // What `POST /api/council/sessions/{id}/encoder-token` hands the chamber's encoder.
    let chamber = sportello_rooms::live::chamber_room(&council.session.id);
    let encoder_token = server.sign(&Claims::new(
        &chamber,
        sportello_rooms::live::CHAMBER_PARTICIPANT,
        "Aula consiliare",
        Role::Participant,
        Duration::from_secs(3600),
    ));

    let mut ids = Vec::new();
    ids.extend(store.offices().await.map_err(|e| e.to_string())?.into_iter().map(|o| o.id));
    ids.extend(store.services().await.map_err(|e| e.to_string())?.into_iter().map(|s| s.id));
    ids.extend(store.users().await.map_err(|e| e.to_string())?.into_iter().map(|u| u.id));
    ids.push(council.session.id.clone());

    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let config = dir.path().join("schemathesis.toml");
    // A citizen logged in with SPID/CIE: the cookie `/auth/oidc/callback` sets, signed the same way
    // (the login itself is tests/tests/identity.rs's, against a real provider).
    let citizen = server
        .server
        .tokens
        .sign(&serde_json::json!({
            "typ": "citizen", "given_name": "Mario", "family_name": "Rossi", "fiscal_code": "RSSMRA85T10A562S",
            "key": "00", "iat": now, "exp": now + sportello_server::api::citizen::CITIZEN_SESSION_SECS,
        }))
        .map_err(|e| e.to_string())?;
    let credentials = Credentials { session: cookie, room: room_token, encoder: encoder_token, citizen };
    let config_text = config_toml(&credentials, &ids, &council.session.id, &booking);
    std::fs::write(&config, config_text).map_err(|e| e.to_string())?;
    std::fs::write(dir.path().join("hooks.py"), HOOKS).map_err(|e| e.to_string())?;
    let schema = format!("{}/api/openapi.json", server.url());

    let started = Instant::now();
    // Everything but logout, with one session throughout.
    let main = schemathesis(dir.path(), &config, &schema, &["--exclude-path", "/api/auth/logout"]).await;
    // Logout last and alone: it ends the session the other operations use.
    let logout = schemathesis(dir.path(), &config, &schema, &["--include-path", "/api/auth/logout"]).await;
    println!("contract: schemathesis ran for {:.0} s", started.elapsed().as_secs_f64());
    host.close(1000).await;
    main?;
    logout
}

/// A citizen's booking of the first free slot, as the booking page makes it: `(code, secret)`.
async fn book(server: &TestServer) -> Result<(String, String)> {
    let http = reqwest::Client::new();
    let get = |path: String| {
        let http = http.clone();
        async move {
            let response = http.get(format!("{}{path}", server.url())).send().await.map_err(|e| e.to_string())?;
            response.json::<Value>().await.map_err(|e| e.to_string())
        }
    };
    let services = get("/api/public/services".into()).await?;
    let service = &services[0];
    let office = service["office_ids"][0].as_str().ok_or_else(|| format!("no office in {services}"))?;
    let slots =
        get(format!("/api/public/offices/{office}/slots?service={}", service["id"].as_str().unwrap_or(""))).await?;
    let start = slots["slots"][0]["start"].as_str().ok_or_else(|| format!("no free slot: {slots}"))?;
    let booked: Value = http
        .post(format!("{}/api/public/appointments", server.url()))
        .json(&serde_json::json!({
            "office_id": office, "service_id": service["id"], "start": start, "first_name": "Mario",
            "last_name": "Rossi", "email": "mario.rossi@example.org",
        }))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    match (booked["code"].as_str(), booked["secret"].as_str()) {
        (Some(code), Some(secret)) => Ok((code.to_owned(), secret.to_owned())),
        _ => Err(format!("booking refused: {booked}")),
    }
}

/// Logs in as the demo's administrator; returns the session cookie's value.
async fn login(server: &TestServer, accounts: &str) -> Result<String> {
    let password = accounts
        .lines()
        .find(|l| l.contains("admin@comune.example"))
        .and_then(|l| l.split("password:").nth(1))
        .map(str::trim)
        .ok_or_else(|| format!("no administrator in the demo accounts:\n{accounts}"))?;
    let response = reqwest::Client::new()
        .post(format!("{}/api/auth/login", server.url()))
        .json(&serde_json::json!({"email": "admin@comune.example", "password": password}))
        .send()
        .await
        .map_err(|e| format!("login: {e}"))?;
    let set_cookie = response
        .headers()
        .get(reqwest::header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .ok_or_else(|| format!("login answered {} without a cookie", response.status()))?;
    let me: Value = response.json().await.map_err(|e| e.to_string())?;
    if me["user"]["role"] != "admin" {
        return Err(format!("logged in as {me}"));
    }
    set_cookie
        .split(';')
        .next()
        .and_then(|pair| pair.strip_prefix("sportello_session="))
        .map(str::to_owned)
        .ok_or_else(|| format!("unexpected cookie {set_cookie}"))
}

/// Bodies schemathesis has no serializer for: an SDP offer is text (`application/sdp`).
const HOOKS: &str = r#"
import schemathesis

schemathesis.serializer.alias("application/sdp", "text/plain")
"#;

struct Credentials {
    session: String,
    room: String,
    encoder: String,
    citizen: String,
}

/// Operations whose well-formed requests the server may still refuse with 400 (or 410), because
/// what makes them acceptable is more than a JSON Schema can say: a range whose end follows its
/// start, opening hours and working patterns, a day that exists, a name that is not blank once
/// trimmed, an email address as Sportello reads it, ids that must name an existing office, user,
/// chair or councillor, a calendar URL or file that parses, an SDP offer the media server can
/// answer — or a credential in the body (the current password: `wrong_password`; a setup link's
/// secret: `410 setup_link_invalid`), a participant who must be waiting in the lobby right now
/// (`410 not_waiting`), or a file whose content is not of an accepted type (`415`). For them
/// `positive_data_acceptance` also accepts that answer; every other check, and that one for every
/// other status, stays on.
const VALIDATED_BEYOND_THE_SCHEMA: [&str; 42] = [
    "POST /api/admin/offices",
    "PUT /api/admin/offices/{id}",
    "POST /api/admin/services",
    "PUT /api/admin/services/{id}",
    "POST /api/admin/users",
    "PUT /api/admin/users/{id}",
    "PUT /api/admin/settings",
    // An SVG or PNG that parses as one.
    "PUT /api/admin/crest",
    "POST /api/auth/password",
    "POST /api/auth/setup",
    "POST /api/council/sessions",
    "PUT /api/council/sessions/{id}",
    "PUT /api/council/sessions/{id}/agenda",
    "PUT /api/council/sessions/{id}/members",
    "GET /api/staff/appointments",
    "POST /api/staff/invitations",
    "GET /api/staff/calendar/absences",
    "POST /api/staff/calendar/absences",
    "PUT /api/staff/calendar/pattern",
    "POST /api/staff/calendar/pattern/preview",
    "POST /api/staff/calendar/sources",
    "POST /api/staff/calendar/upload",
    "POST /api/public/appointments",
    "POST /api/public/appointments/{code}/reschedule",
    "POST /api/public/appointments/{code}/rating",
    "POST /api/live/{session}/whep",
    "POST /api/live/{session}/whip",
    "POST /api/network-check/{probe}",
    "POST /api/rooms/{room}/documents",
    "POST /api/staff/rooms/{room}/admit",
    "POST /api/staff/rooms/{room}/decline",
    // The receiver's URL must parse as an absolute http(s) URL without credentials, and each event
    // type must be one of /api/admin/webhook-event-types.
    "POST /api/admin/webhooks",
    "PUT /api/admin/webhooks/{id}",
    // The walk-in desk (docs/walkin.md): a name not blank once trimmed, an email, a service of that
    // office; a colleague who is an active official; a range of days that exist, in order, at most
    // a year long.
    "POST /api/public/offices/{id}/walkins",
    "POST /api/public/walkins/{id}/callback",
    "POST /api/staff/walkins/{id}/handoff",
    "POST /api/staff/calls",
    "GET /api/staff/figures",
    "GET /api/staff/figures.csv",
    // Sign-in settings (docs/identity.md): an https issuer (http on loopback only), office ids
    // that exist.
    "PUT /api/admin/identity",
    // App IO (docs/appio.md): IO's address https (http on loopback only), a key to enable with; a
    // convocation only while App IO is on (`409 appio_disabled`).
    "PUT /api/admin/appio",
    "POST /api/council/sessions/{id}/convocation",
];

/// schemathesis's configuration: credentials per security scheme, real ids for `{id}` and
/// `{session}`, and the operations of [`VALIDATED_BEYOND_THE_SCHEMA`].
fn config_toml(credentials: &Credentials, ids: &[String], council: &str, booking: &(String, String)) -> String {
    let Credentials { session, room, encoder, citizen } = credentials;
    let (code, secret) = booking;
    let ids = ids.iter().map(|id| format!("{id:?}")).collect::<Vec<_>>().join(", ");
    let validated = VALIDATED_BEYOND_THE_SCHEMA.iter().map(|op| format!("{op:?}")).collect::<Vec<_>>().join(", ");
    format!(
        r#"
[auth.openapi.session]
api_key = "{session}"

[auth.openapi.citizen]
api_key = "{citizen}"

[auth.openapi.room_token]
bearer = "{room}"

[auth.openapi.encoder_token]
bearer = "{encoder}"

[dictionaries.ids]
values = [{ids}]

[dictionaries.sessions]
values = ["{council}"]

# Half of the ids are real: an office, a service, a staff member or the council session.
[parameters]
"path.id" = {{ dictionary = "ids", probability = 0.5 }}
"path.session" = {{ dictionary = "sessions", probability = 0.5 }}
"path.session_id" = {{ dictionary = "sessions", probability = 0.5 }}

# A real booking and its secret, so that its summary, `.ics`, cancel, move and rating answer for real
# (an unknown code or a wrong secret is the same 404, whatever else the request says).
[[operations]]
include-path-regex = "^/api/public/appointments/\\{{code\\}}"
parameters = {{ "path.code" = "{code}", "header.X-Booking-Secret" = "{secret}" }}

# The room token is for the room `demo`: any other room name is refused before anything else.
[[operations]]
include-path-regex = "^/api/rooms/"
parameters = {{ "path.room" = "demo" }}

[[operations]]
include-name = [{validated}]
checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "400", "401", "403", "404", "409", "410", "415", "429"]
"#
    )
}

async fn schemathesis_version() -> Result<()> {
    let out = Command::new("python3")
        .args(["-m", "schemathesis.cli", "--version"])
        .output()
        .await
        .map_err(|e| format!("cannot run python3: {e}"))?;
    let version = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || !version.contains("version 4.") {
        return Err(format!(
            "schemathesis 4 is needed (`python3 -m pip install 'schemathesis>=4,<5'`, as scripts/test does): {version}{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    println!("contract: {}", version.trim());
    Ok(())
}

/// One `schemathesis run` with every check; its report is the error when it finds anything.
async fn schemathesis(dir: &Path, config: &Path, schema: &str, filter: &[&str]) -> Result<()> {
    let mut command = Command::new("python3");
    command
        .current_dir(dir)
        .args(["-m", "schemathesis.cli", "--no-color", "--config-file"])
        .arg(config)
        .args(["run", schema, "--checks", "all", "--max-examples", MAX_EXAMPLES, "--seed", SEED])
        // One worker: Python 3.11's `ast` is not thread-safe, and hypothesis parses lambdas with it
        // while generating ("AST constructor recursion depth mismatch" from two workers).
        .args(["--workers", "1", "--request-timeout", "20", "--generation-database", "none"])
        .args(filter)
        .env("SCHEMATHESIS_HOOKS", dir.join("hooks.py"))
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let out = tokio::time::timeout(RUN_LIMIT, command.output())
        .await
        .map_err(|_| format!("schemathesis did not finish within {RUN_LIMIT:?}"))?
        .map_err(|e| format!("cannot run schemathesis: {e}"))?;
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    print!("{report}");
    if !out.status.success() {
        return Err(format!("schemathesis found contract violations ({}) {filter:?}; its report is above", out.status));
    }
    // A clean run must also have reached every operation it selected.
    match tested(&report) {
        Some((selected, tested)) if selected > 0 && tested == selected => Ok(()),
        counts => Err(format!("schemathesis did not test every selected operation {filter:?}: {counts:?}")),
    }
}

/// `(selected, tested)` from the summary's "Selected: N/M" and "Tested: N".
fn tested(report: &str) -> Option<(usize, usize)> {
    let after =
        |label: &str| report.lines().find_map(|l| l.trim().strip_prefix(label)).map(|rest| rest.trim().to_owned());
    let selected = after("Selected:")?.split('/').next()?.trim().parse().ok()?;
    let tested = after("Tested:")?.parse().ok()?;
    Some((selected, tested))
}
