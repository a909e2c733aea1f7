//! The staff REST API (auth, admin, officials' dashboard) over real HTTP against an in-process
//! server: sessions in a cookie jar as a browser keeps them, scope between offices, the waiting room
//! driven over REST while a citizen waits on a real websocket.

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::cookie::Jar;
use serde_json::{Value, json};
use sportello_domain::booking::{Lang, slot_label};
use sportello_server::api::auth::first_admin_link;
use sportello_tests::server::{Claims, Clock, Role, TestServer};

const PASSWORD: &str = "correct horse battery";

/// A browser: its own cookie jar, talking to one server.
struct Browser {
    http: reqwest::Client,
    base: String,
}

/// Status and JSON body (`Null` when empty).
struct Reply {
    status: StatusCode,
    body: Value,
    set_cookie: bool,
}

impl Reply {
    fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    #[track_caller]
    fn expect(self, status: StatusCode) -> Value {
        assert_eq!(self.status, status, "body: {}", self.body);
        self.body
    }

    #[track_caller]
    fn expect_error(self, status: StatusCode, code: &str) {
        assert_eq!((self.status, self.code()), (status, code), "body: {}", self.body);
        assert!(self.body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{}", self.body);
    }
}

impl Browser {
    fn new(server: &TestServer) -> Browser {
        Browser::with_jar(server, Arc::new(Jar::default()))
    }

    fn with_jar(server: &TestServer, jar: Arc<Jar>) -> Browser {
        let http = reqwest::Client::builder().cookie_provider(jar).build().expect("client");
        Browser { http, base: server.url() }
    }

    /// A browser elsewhere: its requests leave from `ip` (another loopback address, 127.0.0.0/8).
    fn from_address(server: &TestServer, ip: &str) -> Browser {
        let http = reqwest::Client::builder()
            .cookie_provider(Arc::new(Jar::default()))
            .local_address(ip.parse::<std::net::IpAddr>().expect("address"))
            .build()
            .expect("client");
        Browser { http, base: server.url() }
    }

    /// No cookie jar: the `Cookie` header is exactly `cookie`.
    fn with_cookie(server: &TestServer, cookie: &str) -> Browser {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(reqwest::header::COOKIE, cookie.parse().expect("header"));
        let http = reqwest::Client::builder().default_headers(headers).build().expect("client");
        Browser { http, base: server.url() }
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Reply {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = tokio::time::timeout(Duration::from_secs(20), request.send())
            .await
            .expect("answer in time")
            .expect("request");
        let status = response.status();
        let set_cookie = response.headers().contains_key(reqwest::header::SET_COOKIE);
        let bytes = response.bytes().await.expect("body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {}", String::from_utf8_lossy(&bytes)))
        };
        Reply { status, body, set_cookie }
    }

    async fn get(&self, path: &str) -> Reply {
        self.send(reqwest::Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    async fn put(&self, path: &str, body: Value) -> Reply {
        self.send(reqwest::Method::PUT, path, Some(body)).await
    }

    async fn delete(&self, path: &str) -> Reply {
        self.send(reqwest::Method::DELETE, path, None).await
    }

    /// A raw body of `content_type` (uploads); the answer's status and bytes.
    async fn put_bytes(&self, path: &str, content_type: &str, bytes: &[u8]) -> (StatusCode, Vec<u8>) {
        let request = self
            .http
            .put(format!("{}{path}", self.base))
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(bytes.to_vec());
        let response = request.send().await.expect("request");
        (response.status(), response.bytes().await.expect("body").to_vec())
    }

    async fn login(&self, email: &str, password: &str) -> Reply {
        self.post("/api/auth/login", json!({"email": email, "password": password})).await
    }
}

/// The secret of a setup link (after `#`).
fn secret(link: &str) -> String {
    link.split_once('#').expect("a secret after #").1.to_owned()
}

async fn first_link(server: &TestServer) -> Option<String> {
    let now = server.server.tokens.clock().now();
    first_admin_link(&server.server.store, &server.url(), now).await.expect("store")
}

/// A server with its first administrator, logged in.
async fn with_admin() -> (TestServer, Browser, Value) {
    with_admin_at(Clock::system()).await
}

async fn with_admin_at(clock: Clock) -> (TestServer, Browser, Value) {
    let server = TestServer::start_at(clock, |_| {}).await;
    let link = first_link(&server).await.expect("a first-administrator link");
    let admin = Browser::new(&server);
    let me = admin
        .post(
            "/api/auth/setup",
            json!({"token": secret(&link), "password": PASSWORD, "email": "Admin@Comune.example", "display_name": "Ada Admin"}),
        )
        .await
        .expect(StatusCode::OK);
    (server, admin, me)
}

/// Creates a staff member through the admin API and logs them in through their setup link.
async fn staff_member(server: &TestServer, admin: &Browser, email: &str, role: &str) -> (Browser, String) {
    let created = admin
        .post("/api/admin/users", json!({"email": email, "display_name": format!("Staff {email}"), "role": role}))
        .await
        .expect(StatusCode::CREATED);
    let id = created["user"]["id"].as_str().expect("id").to_owned();
    let browser = Browser::new(server);
    browser
        .post(
            "/api/auth/setup",
            json!({"token": secret(created["setup_url"].as_str().expect("setup_url")), "password": PASSWORD}),
        )
        .await
        .expect(StatusCode::OK);
    (browser, id)
}

fn week(hours: &[&str]) -> Value {
    json!([hours, hours, hours, hours, hours, [], []])
}

async fn office(admin: &Browser, name: &str, members: &[&str]) -> String {
    let body = json!({"name": name, "opening_hours": week(&["08:30-12:30"]), "member_ids": members});
    admin.post("/api/admin/offices", body).await.expect(StatusCode::CREATED)["id"].as_str().expect("id").to_owned()
}

async fn service(admin: &Browser, offices: &[&str]) -> String {
    let body = json!({"name": "Carta d'identità", "duration_minutes": 30, "modes": "both", "office_ids": offices});
    admin.post("/api/admin/services", body).await.expect(StatusCode::CREATED)["id"].as_str().expect("id").to_owned()
}

/// A confirmed video appointment of Mario Rossi starting `in_secs` from now (on the server's clock).
async fn book(server: &TestServer, office: &str, service: &str, official: &str, code: &str, in_secs: i64) -> String {
    server.seed_booking(office, service, official, code, in_secs).await.expect("booked").id
}

// --- first start and setup links -----------------------------------------------------------------

#[tokio::test]
async fn first_start_creates_the_administrator_once() {
    let server = TestServer::start().await;
    let link = first_link(&server).await.expect("a link while no staff exists");
    assert!(link.starts_with(&format!("{}/staff/setup#", server.url())), "{link}");

    // A weak password is refused and creates nobody.
    let browser = Browser::new(&server);
    let body = |password: &str| json!({"token": secret(&link), "password": password, "email": "ada@comune.example", "display_name": "Ada"});
    browser.post("/api/auth/setup", body("short")).await.expect_error(StatusCode::BAD_REQUEST, "weak_password");
    assert_eq!(server.server.store.count_users().await.unwrap(), 0);
    browser.get("/api/auth/me").await.expect_error(StatusCode::UNAUTHORIZED, "unauthenticated");

    let reply = browser.post("/api/auth/setup", body(PASSWORD)).await;
    assert!(reply.set_cookie, "setup logs in");
    let me = reply.expect(StatusCode::OK);
    assert_eq!(me["user"]["role"], "admin");
    assert_eq!(me["user"]["email"], "ada@comune.example");
    assert_eq!(browser.get("/api/auth/me").await.expect(StatusCode::OK)["user"]["display_name"], "Ada");

    // Once only, and no new link is printed once an administrator exists.
    Browser::new(&server)
        .post("/api/auth/setup", body(PASSWORD))
        .await
        .expect_error(StatusCode::GONE, "setup_link_invalid");
    assert_eq!(server.server.store.count_users().await.unwrap(), 1);
    assert!(first_link(&server).await.is_none());
}

// --- login --------------------------------------------------------------------------------------

#[tokio::test]
async fn login_failures_look_alike_and_pause_after_repeated_attempts() {
    let (server, admin, _) = with_admin().await;
    let browser = Browser::new(&server);
    let wrong = browser.login("admin@comune.example", "not the password").await;
    let unknown = browser.login("nobody@comune.example", PASSWORD).await;
    assert_eq!((wrong.status, unknown.status), (StatusCode::UNAUTHORIZED, StatusCode::UNAUTHORIZED));
    assert_eq!(wrong.body, unknown.body, "the same answer for a wrong password and an unknown email");
    assert_eq!(wrong.code(), "invalid_credentials");

    // The right password, any case of the email, logs in.
    let me = browser.login("ADMIN@comune.example", PASSWORD).await.expect(StatusCode::OK);
    assert_eq!(me["user"]["display_name"], "Ada Admin");
    browser.post("/api/auth/logout", json!({})).await.expect(StatusCode::NO_CONTENT);
    browser.get("/api/auth/me").await.expect_error(StatusCode::UNAUTHORIZED, "unauthenticated");

    // Someone elsewhere guessing the administrator's password: four failures, then pauses that
    // double — for that address only; even the right password waits there.
    let attacker = Browser::from_address(&server, "127.0.0.2");
    for _ in 0..4 {
        attacker
            .login("admin@comune.example", "still wrong!")
            .await
            .expect_error(StatusCode::UNAUTHORIZED, "invalid_credentials");
    }
    let paused = attacker.login("admin@comune.example", PASSWORD).await;
    paused.expect_error(StatusCode::TOO_MANY_REQUESTS, "too_many_attempts");
    let retry = attacker
        .http
        .post(format!("{}/api/auth/login", attacker.base))
        .json(&json!({"email": "admin@comune.example", "password": PASSWORD}))
        .send()
        .await
        .expect("request");
    let after: i64 = retry.headers()["retry-after"].to_str().expect("ascii").parse().expect("seconds");
    assert!((1..=30).contains(&after), "Retry-After {after}");
    // The administrator, from their own address, is not locked out by it.
    browser.login("admin@comune.example", PASSWORD).await.expect(StatusCode::OK);
    // Trying one password across many accounts from one address is cut after the address's budget
    // (20 failures per 15 minutes), before any hashing; other addresses are unaffected.
    let sprayer = Browser::from_address(&server, "127.0.0.3");
    for i in 0..20 {
        sprayer
            .login(&format!("user{i}@comune.example"), "Estate2026!")
            .await
            .expect_error(StatusCode::UNAUTHORIZED, "invalid_credentials");
    }
    sprayer
        .login("user20@comune.example", "Estate2026!")
        .await
        .expect_error(StatusCode::TOO_MANY_REQUESTS, "too_many_attempts");
    browser
        .login("nobody@comune.example", "Estate2026!")
        .await
        .expect_error(StatusCode::UNAUTHORIZED, "invalid_credentials");
    // The session that was open before is unaffected.
    admin.get("/api/auth/me").await.expect(StatusCode::OK);
}

// --- sessions -----------------------------------------------------------------------------------

#[tokio::test]
async fn forged_and_foreign_tokens_are_not_sessions() {
    let (server, _admin, me) = with_admin().await;
    let id = me["user"]["id"].as_str().unwrap();
    let now = server.server.tokens.clock().now();
    let claims = json!({"sub": id, "typ": "staff", "iat": now, "exp": now + 3600});
    let forged = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(b"another key entirely, 32 bytes!!"),
    )
    .unwrap();
    // A join token, signed with the server's own key, for a room named like a user.
    let join = server.sign(&server.claims(id, id, Role::Host));
    // A session-shaped token with the right key but no `typ` (what a join token lacks).
    let untyped = server.server.tokens.sign(&json!({"sub": id, "iat": now, "exp": now + 3600})).expect("signed");
    for cookie in [forged, join, untyped, "garbage".into()] {
        Browser::with_cookie(&server, &format!("sportello_session={cookie}"))
            .get("/api/auth/me")
            .await
            .expect_error(StatusCode::UNAUTHORIZED, "unauthenticated");
    }
}

#[tokio::test]
async fn a_password_change_ends_older_sessions() {
    let clock = Clock::offset(0);
    let (server, admin, _) = with_admin_at(clock.clone()).await;
    let laptop = Browser::new(&server);
    laptop.login("admin@comune.example", PASSWORD).await.expect(StatusCode::OK);
    clock.advance(5);

    admin
        .post("/api/auth/password", json!({"current_password": "wrong one", "new_password": "a new password 123"}))
        .await
        .expect_error(StatusCode::BAD_REQUEST, "wrong_password");
    admin
        .post("/api/auth/password", json!({"current_password": PASSWORD, "new_password": "short"}))
        .await
        .expect_error(StatusCode::BAD_REQUEST, "weak_password");
    let reply = admin
        .post("/api/auth/password", json!({"current_password": PASSWORD, "new_password": "a new password 123"}))
        .await;
    assert!(reply.set_cookie, "the changing session gets a fresh cookie");
    reply.expect(StatusCode::NO_CONTENT);

    laptop.get("/api/auth/me").await.expect_error(StatusCode::UNAUTHORIZED, "unauthenticated");
    admin.get("/api/auth/me").await.expect(StatusCode::OK);
    laptop.login("admin@comune.example", PASSWORD).await.expect_error(StatusCode::UNAUTHORIZED, "invalid_credentials");
    laptop.login("admin@comune.example", "a new password 123").await.expect(StatusCode::OK);
}

/// Logs in without a cookie jar and returns the session cookie (`name=value`) as a thief would copy it.
async fn login_cookie(server: &TestServer, email: &str) -> String {
    let response = reqwest::Client::new()
        .post(format!("{}/api/auth/login", server.url()))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .expect("login");
    assert_eq!(response.status(), StatusCode::OK);
    let set_cookie = response.headers()[reqwest::header::SET_COOKIE].to_str().expect("text").to_owned();
    set_cookie.split(';').next().expect("name=value").to_owned()
}

#[tokio::test]
async fn logout_ends_the_session_on_the_server() {
    let (server, admin, _) = with_admin().await;
    let cookie = login_cookie(&server, "admin@comune.example").await;
    let laptop = Browser::with_cookie(&server, &cookie);
    let copy = Browser::with_cookie(&server, &cookie);
    copy.get("/api/auth/me").await.expect(StatusCode::OK);

    laptop.post("/api/auth/logout", json!({})).await.expect(StatusCode::NO_CONTENT);
    // The copied cookie is still a well-signed, unexpired JWT: the server no longer honours it.
    copy.get("/api/auth/me").await.expect_error(StatusCode::UNAUTHORIZED, "unauthenticated");
    copy.post("/api/auth/password", json!({"current_password": PASSWORD, "new_password": "a takeover 12345"}))
        .await
        .expect_error(StatusCode::UNAUTHORIZED, "unauthenticated");
    // Only that session ended: the administrator's other browser is still in.
    admin.get("/api/auth/me").await.expect(StatusCode::OK);
    // Logging out again, or without a session, is harmless.
    laptop.post("/api/auth/logout", json!({})).await.expect(StatusCode::NO_CONTENT);
    Browser::new(&server).post("/api/auth/logout", json!({})).await.expect(StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn a_deactivated_users_sessions_stay_ended_after_reactivation() {
    let (server, admin, _) = with_admin().await;
    let (bruno, id) = staff_member(&server, &admin, "bruno@comune.example", "official").await;
    let copy = Browser::with_cookie(&server, &login_cookie(&server, "bruno@comune.example").await);
    copy.get("/api/auth/me").await.expect(StatusCode::OK);
    let user = |active: bool| json!({"display_name": "Bruno", "role": "official", "active": active});
    admin.put(&format!("/api/admin/users/{id}"), user(false)).await.expect(StatusCode::OK);
    admin.put(&format!("/api/admin/users/{id}"), user(true)).await.expect(StatusCode::OK);
    for browser in [&bruno, &copy] {
        browser.get("/api/auth/me").await.expect_error(StatusCode::UNAUTHORIZED, "unauthenticated");
    }
    bruno.login("bruno@comune.example", PASSWORD).await.expect(StatusCode::OK);
    bruno.get("/api/auth/me").await.expect(StatusCode::OK);
}

/// A password-reset link for user `id`, as the administrator asks for one (its secret).
async fn reset_link(admin: &Browser, id: &str) -> String {
    let link = admin.post(&format!("/api/admin/users/{id}/setup-link"), json!({})).await.expect(StatusCode::OK);
    secret(link["setup_url"].as_str().expect("setup_url"))
}

#[tokio::test]
async fn using_one_setup_link_voids_the_users_other_links() {
    let (server, admin, _) = with_admin().await;
    let created = admin
        .post("/api/admin/users", json!({"email": "carla@comune.example", "display_name": "Carla", "role": "official"}))
        .await
        .expect(StatusCode::CREATED);
    let id = created["user"]["id"].as_str().expect("id").to_owned();
    let first = secret(created["setup_url"].as_str().expect("setup_url"));
    let second = reset_link(&admin, &id).await;

    // The newer link used: the older one (still within its 7 days) takes nothing over.
    let carla = Browser::new(&server);
    carla.post("/api/auth/setup", json!({"token": second, "password": PASSWORD})).await.expect(StatusCode::OK);
    Browser::new(&server)
        .post("/api/auth/setup", json!({"token": first, "password": "an attacker's 123"}))
        .await
        .expect_error(StatusCode::GONE, "setup_link_invalid");
    carla.get("/api/auth/me").await.expect(StatusCode::OK);

    // And the other way round: of two resets, the older one used voids the newer.
    let (older, newer) = (reset_link(&admin, &id).await, reset_link(&admin, &id).await);
    Browser::new(&server)
        .post("/api/auth/setup", json!({"token": older, "password": "a second password"}))
        .await
        .expect(StatusCode::OK);
    Browser::new(&server)
        .post("/api/auth/setup", json!({"token": newer, "password": "an attacker's 123"}))
        .await
        .expect_error(StatusCode::GONE, "setup_link_invalid");
    carla.login("carla@comune.example", "a second password").await.expect(StatusCode::OK);
}

/// `request` with the headers a browser adds (`Origin`, `Sec-Fetch-Site`), from `browser`'s cookie jar.
async fn from_site(browser: &Browser, method: reqwest::Method, path: &str, marks: &[(&str, &str)]) -> Reply {
    let mut request = browser.http.request(method, format!("{}{path}", browser.base));
    for (name, value) in marks {
        request = request.header(*name, *value);
    }
    let response = request.json(&json!({})).send().await.expect("request");
    let status = response.status();
    let body = response.json::<Value>().await.unwrap_or(Value::Null);
    Reply { status, body, set_cookie: false }
}

#[tokio::test]
async fn state_changing_requests_from_another_site_are_refused() {
    let (server, admin, _) = with_admin().await;
    let evil = [("origin", "https://evil.example"), ("sec-fetch-site", "cross-site")];
    // A bodyless logout and an account creation, sent by another site's page with the cookie.
    from_site(&admin, reqwest::Method::POST, "/api/auth/logout", &evil)
        .await
        .expect_error(StatusCode::FORBIDDEN, "cross_origin");
    admin.get("/api/auth/me").await.expect(StatusCode::OK);
    let users = "/api/admin/users";
    from_site(&admin, reqwest::Method::POST, users, &evil).await.expect_error(StatusCode::FORBIDDEN, "cross_origin");
    for marks in [[("origin", "null")].as_slice(), &[("sec-fetch-site", "same-site")], &[evil[0]]] {
        from_site(&admin, reqwest::Method::POST, users, marks)
            .await
            .expect_error(StatusCode::FORBIDDEN, "cross_origin");
    }
    // Reads are not refused (the browser keeps another site from reading the answer).
    from_site(&admin, reqwest::Method::GET, users, &evil).await.expect(StatusCode::OK);
    assert_eq!(admin.get(users).await.expect(StatusCode::OK).as_array().unwrap().len(), 1, "nobody was created");

    // Our own page: the same request passes.
    let url = server.url();
    let ours = [("origin", url.as_str()), ("sec-fetch-site", "same-origin")];
    let created = admin
        .http
        .post(format!("{url}{users}"))
        .header("origin", url.as_str())
        .header("sec-fetch-site", "same-origin")
        .json(&json!({"email": "dora@comune.example", "display_name": "Dora", "role": "official"}))
        .send()
        .await
        .expect("request");
    assert_eq!(created.status(), StatusCode::CREATED);
    from_site(&admin, reqwest::Method::POST, "/api/auth/logout", &ours).await.expect(StatusCode::NO_CONTENT);
    admin.get("/api/auth/me").await.expect_error(StatusCode::UNAUTHORIZED, "unauthenticated");
}

// --- roles and administration ---------------------------------------------------------------------

#[tokio::test]
async fn officials_cannot_administer() {
    let (server, admin, _) = with_admin().await;
    let (official, official_id) = staff_member(&server, &admin, "uff@comune.example", "official").await;
    let office_id = office(&admin, "Anagrafe", &[]).await;
    let service_id = service(&admin, &[&office_id]).await;
    let office_body = json!({"name": "X", "opening_hours": week(&[])});
    let service_body = json!({"name": "X", "duration_minutes": 30, "modes": "video", "office_ids": []});
    let user_body = json!({"display_name": "X", "role": "admin", "active": true});
    let settings = admin.get("/api/admin/settings").await.expect(StatusCode::OK);
    let calls = [
        official.get("/api/admin/offices").await,
        official.post("/api/admin/offices", office_body.clone()).await,
        official.put(&format!("/api/admin/offices/{office_id}"), office_body).await,
        official.delete(&format!("/api/admin/offices/{office_id}")).await,
        official.get("/api/admin/services").await,
        official.post("/api/admin/services", service_body.clone()).await,
        official.put(&format!("/api/admin/services/{service_id}"), service_body).await,
        official.delete(&format!("/api/admin/services/{service_id}")).await,
        official.get("/api/admin/users").await,
        official
            .post("/api/admin/users", json!({"email": "x@comune.example", "display_name": "X", "role": "admin"}))
            .await,
        official.put(&format!("/api/admin/users/{official_id}"), user_body).await,
        official.post(&format!("/api/admin/users/{official_id}/setup-link"), json!({})).await,
        official.get("/api/admin/settings").await,
        official.put("/api/admin/settings", settings).await,
    ];
    for reply in calls {
        reply.expect_error(StatusCode::FORBIDDEN, "forbidden");
    }
    // Nothing changed: still one office, one service, two users, the official still an official.
    assert_eq!(admin.get("/api/admin/offices").await.expect(StatusCode::OK).as_array().unwrap().len(), 1);
    assert_eq!(admin.get("/api/admin/services").await.expect(StatusCode::OK).as_array().unwrap().len(), 1);
    let users = admin.get("/api/admin/users").await.expect(StatusCode::OK);
    assert_eq!(users.as_array().unwrap().len(), 2);
    assert!(users.as_array().unwrap().iter().any(|u| u["id"] == official_id.as_str() && u["role"] == "official"));
}

/// The administrator says who the municipality is; every page says it. A bad value is refused
/// with nothing stored; a `PUT` that leaves the identity out keeps it; the crest is sanitised,
/// refused when it is not an image, and only an administrator sets it.
#[tokio::test]
async fn administrators_set_who_the_municipality_is() {
    let (server, admin, _) = with_admin().await;
    let http = reqwest::Client::new();
    let page = |path: &str| {
        let (http, url) = (http.clone(), format!("{}{path}", server.url()));
        async move { http.get(url).send().await.expect("page").text().await.expect("body") }
    };
    let mut settings = admin.get("/api/admin/settings").await.expect(StatusCode::OK);
    assert_eq!((settings["owner_url"].as_str(), settings["has_crest"].as_bool()), (Some(""), Some(false)));
    settings["municipality_name"] = json!("Comune di Roccabella");
    settings["owner_name"] = json!("Regione Esempio");
    settings["owner_url"] = json!("https://www.regione.example");
    settings["pec"] = json!("protocollo@pec.roccabella.example");
    settings["dpo_email"] = json!("rpd@roccabella.example");
    settings["accessibility_url"] = json!("https://form.agid.gov.it/view/roccabella");
    let saved = admin.put("/api/admin/settings", settings.clone()).await.expect(StatusCode::OK);
    assert_eq!(saved["pec"], "protocollo@pec.roccabella.example");
    let home = page("/").await;
    assert!(home.contains("<title") && home.contains("Comune di Roccabella"), "{home}");
    assert!(home.contains("href=\"https://form.agid.gov.it/view/roccabella\" data-element=\"accessibility-link\""));
    assert!(page("/privacy").await.contains("rpd@roccabella.example"));

    // A link that is not http(s), an email that is not one: refused, and nothing of it stored.
    for (field, bad) in [("website", "javascript:alert(1)"), ("owner_url", "ftp://x.example"), ("dpo_email", "nobody")] {
        let mut attempt = settings.clone();
        attempt["municipality_name"] = json!("Comune Sbagliato");
        attempt[field] = json!(bad);
        admin.put("/api/admin/settings", attempt).await.expect_error(StatusCode::BAD_REQUEST, "invalid_field");
    }
    let now = admin.get("/api/admin/settings").await.expect(StatusCode::OK);
    assert_eq!((now["municipality_name"].as_str(), now["website"].as_str()), (Some("Comune di Roccabella"), Some("")));
    // The booking fields alone (an older client): the identity stays.
    let old_client = json!({"municipality_name": "Comune di Roccabella", "patron_day": "", "min_notice_minutes": 60, "horizon_days": 60});
    admin.put("/api/admin/settings", old_client).await.expect(StatusCode::OK);
    assert_eq!(admin.get("/api/admin/settings").await.expect(StatusCode::OK)["pec"], "protocollo@pec.roccabella.example");

    // The crest: a hostile SVG comes back harmless and shows in the header.
    let hostile = br##"<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><script>alert(2)</script><circle r="4" fill="#c00"/></svg>"##;
    let (status, _) = admin.put_bytes("/api/admin/crest", "image/svg+xml", hostile).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let home = page("/").await;
    let at = home.find("src=\"/crest?v=").expect("the crest in the header") + "src=\"".len();
    let src = &home[at..at + home[at..].find('"').unwrap()];
    let crest = http.get(format!("{}{src}", server.url())).send().await.expect("crest");
    assert_eq!(crest.headers()[reqwest::header::CONTENT_TYPE], "image/svg+xml");
    let crest = crest.text().await.expect("svg");
    assert_eq!(crest, r##"<svg xmlns="http://www.w3.org/2000/svg"><circle r="4" fill="#c00"/></svg>"##);
    for (content_type, bytes, code) in [
        ("text/html", &b"<svg/>"[..], "invalid_crest"),
        ("image/png", &b"GIF89a"[..], "invalid_crest"),
        ("image/svg+xml", &b"<html/>"[..], "invalid_crest"),
    ] {
        let (status, body) = admin.put_bytes("/api/admin/crest", content_type, bytes).await;
        let body: Value = serde_json::from_slice(&body).expect("json error");
        assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some(code)), "{content_type}");
    }
    assert!(page("/").await.contains(src), "a refused upload keeps the crest");
    let (official, _) = staff_member(&server, &admin, "olga@comune.example", "official").await;
    assert_eq!(official.put_bytes("/api/admin/crest", "image/svg+xml", b"<svg/>").await.0, StatusCode::FORBIDDEN);
    official.delete("/api/admin/crest").await.expect_error(StatusCode::FORBIDDEN, "forbidden");
    admin.delete("/api/admin/crest").await.expect(StatusCode::NO_CONTENT);
    assert!(!page("/").await.contains("/crest?v="));
    assert_eq!(http.get(format!("{}/crest", server.url())).send().await.expect("crest").status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn administrators_manage_offices_services_and_staff() {
    let (server, admin, _) = with_admin().await;

    // Staff: the setup link works once, then logs the new person in.
    let created = admin
        .post("/api/admin/users", json!({"email": "Bruno@Comune.example", "display_name": "Bruno", "role": "official"}))
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(created["user"]["email"], "bruno@comune.example");
    assert_eq!(created["user"]["has_password"], false);
    let bruno_id = created["user"]["id"].as_str().unwrap().to_owned();
    let link = created["setup_url"].as_str().unwrap();
    assert!(link.contains("/staff/setup#"), "{link}");
    let bruno = Browser::new(&server);
    let setup = json!({"token": secret(link), "password": PASSWORD});
    assert_eq!(
        bruno.post("/api/auth/setup", setup.clone()).await.expect(StatusCode::OK)["user"]["id"],
        bruno_id.as_str()
    );
    Browser::new(&server).post("/api/auth/setup", setup).await.expect_error(StatusCode::GONE, "setup_link_invalid");
    bruno.get("/api/auth/me").await.expect(StatusCode::OK);

    admin
        .post("/api/admin/users", json!({"email": "bruno@comune.example", "display_name": "Altro", "role": "official"}))
        .await
        .expect_error(StatusCode::CONFLICT, "email_taken");
    assert_eq!(admin.get("/api/admin/users").await.expect(StatusCode::OK).as_array().unwrap().len(), 2);

    // Offices: bad opening hours store nothing; a good one keeps its members.
    for hours in [week(&["12:30-08:30"]), week(&["8:30-12:30"]), json!([["08:30-12:30"]]), week(&["08:30"])] {
        admin
            .post("/api/admin/offices", json!({"name": "Anagrafe", "opening_hours": hours}))
            .await
            .expect_error(StatusCode::BAD_REQUEST, "invalid_opening_hours");
    }
    assert_eq!(admin.get("/api/admin/offices").await.expect(StatusCode::OK), json!([]));
    let office_id = office(&admin, "Anagrafe", &[&bruno_id]).await;
    let offices = admin.get("/api/admin/offices").await.expect(StatusCode::OK);
    assert_eq!(offices[0]["member_ids"], json!([bruno_id]));
    assert_eq!(offices[0]["opening_hours"][0], json!(["08:30-12:30"]));
    let me = bruno.get("/api/auth/me").await.expect(StatusCode::OK);
    assert_eq!(me["offices"][0]["id"], office_id.as_str());

    // Services, with a validated duration.
    admin
        .post(
            "/api/admin/services",
            json!({"name": "X", "duration_minutes": 7, "modes": "video", "office_ids": [office_id]}),
        )
        .await
        .expect_error(StatusCode::BAD_REQUEST, "invalid_duration");
    let service_id = service(&admin, &[&office_id]).await;
    let services = admin.get("/api/admin/services").await.expect(StatusCode::OK);
    assert_eq!(services.as_array().unwrap().len(), 1);
    assert_eq!(services[0]["id"], service_id.as_str());
    assert_eq!(services[0]["office_ids"], json!([office_id]));

    // Deactivating Bruno ends his session at once.
    admin
        .put(
            &format!("/api/admin/users/{bruno_id}"),
            json!({"display_name": "Bruno", "role": "official", "active": false}),
        )
        .await
        .expect(StatusCode::OK);
    bruno.get("/api/auth/me").await.expect_error(StatusCode::UNAUTHORIZED, "unauthenticated");
}

// --- officials' scope -------------------------------------------------------------------------------

#[tokio::test]
async fn officials_see_and_act_only_on_their_offices() {
    let (server, admin, _) = with_admin().await;
    let (anna, anna_id) = staff_member(&server, &admin, "anna@comune.example", "official").await;
    let (_bruno, bruno_id) = staff_member(&server, &admin, "bruno@comune.example", "official").await;
    let office1 = office(&admin, "Anagrafe", &[&anna_id]).await;
    let office2 = office(&admin, "Tributi", &[&bruno_id]).await;
    let service_id = service(&admin, &[&office1, &office2]).await;
    let mine = book(&server, &office1, &service_id, &anna_id, "AAA111", 3600).await;
    let theirs = book(&server, &office2, &service_id, &bruno_id, "BBB222", 3600).await;

    let list = anna.get("/api/staff/appointments").await.expect(StatusCode::OK);
    let ids: Vec<&str> = list.as_array().unwrap().iter().map(|a| a["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [mine.as_str()]);
    assert_eq!(list[0]["office_name"], "Anagrafe");
    assert_eq!(list[0]["service_name"], "Carta d'identità");
    assert_eq!(list[0]["status"], "confirmed");
    // The administrator sees both.
    assert_eq!(admin.get("/api/staff/appointments").await.expect(StatusCode::OK).as_array().unwrap().len(), 2);

    anna.get(&format!("/api/staff/appointments/{mine}")).await.expect(StatusCode::OK);
    anna.get(&format!("/api/staff/appointments/{theirs}")).await.expect_error(StatusCode::NOT_FOUND, "not_found");
    anna.post(&format!("/api/staff/appointments/{theirs}/status"), json!({"status": "cancelled"}))
        .await
        .expect_error(StatusCode::NOT_FOUND, "not_found");
    anna.post(&format!("/api/staff/appointments/{theirs}/join"), json!({}))
        .await
        .expect_error(StatusCode::NOT_FOUND, "not_found");
    anna.post(&format!("/api/staff/rooms/appt-{theirs}/admit"), json!({"participant_id": "mario"}))
        .await
        .expect_error(StatusCode::NOT_FOUND, "not_found");
    anna.post(&format!("/api/staff/rooms/vo-{bruno_id}/decline"), json!({"participant_id": "mario"}))
        .await
        .expect_error(StatusCode::NOT_FOUND, "not_found");
    anna.post("/api/staff/invitations", json!({"room": format!("appt-{theirs}"), "name": "Ospite"}))
        .await
        .expect_error(StatusCode::NOT_FOUND, "not_found");
    let stored = server.server.store.appointment(&theirs).await.unwrap().unwrap();
    assert_eq!(stored.status.as_str(), "confirmed", "nothing happened to the other office's appointment");

    // Her own: a host link into the appointment's room.
    let link = anna.post(&format!("/api/staff/appointments/{mine}/join"), json!({})).await.expect(StatusCode::OK);
    assert_eq!(link["room"], format!("appt-{mine}"));
    let token = token_of(link["url"].as_str().unwrap());
    let claims = server.server.tokens.verify(&token, Some(&format!("appt-{mine}"))).expect("a valid join token");
    assert_eq!((claims.role, claims.appt.as_deref(), claims.wait), (Role::Host, Some(mine.as_str()), false));
}

#[tokio::test]
async fn closing_an_appointment_is_audited_and_final() {
    let (server, admin, _) = with_admin().await;
    let (anna, anna_id) = staff_member(&server, &admin, "anna@comune.example", "official").await;
    let office1 = office(&admin, "Anagrafe", &[&anna_id]).await;
    let service_id = service(&admin, &[&office1]).await;
    let id = book(&server, &office1, &service_id, &anna_id, "CCC333", 3600).await;

    anna.post(&format!("/api/staff/appointments/{id}/status"), json!({"status": "confirmed"}))
        .await
        .expect_error(StatusCode::BAD_REQUEST, "invalid_status");
    let view = anna
        .post(&format!("/api/staff/appointments/{id}/status"), json!({"status": "completed", "note": "tutto fatto"}))
        .await
        .expect(StatusCode::OK);
    assert_eq!(view["status"], "completed");
    anna.post(&format!("/api/staff/appointments/{id}/status"), json!({"status": "cancelled"}))
        .await
        .expect_error(StatusCode::CONFLICT, "invalid_status");
    anna.post(&format!("/api/staff/appointments/{id}/join"), json!({}))
        .await
        .expect_error(StatusCode::CONFLICT, "appointment_closed");

    let detail = anna.get(&format!("/api/staff/appointments/{id}")).await.expect(StatusCode::OK);
    assert_eq!(detail["appointment"]["status"], "completed");
    let audit = detail["audit"].as_array().unwrap();
    let actors: Vec<&str> = audit.iter().map(|e| e["actor"].as_str().unwrap()).collect();
    let official = format!("user:{anna_id}");
    assert_eq!(actors, ["citizen", official.as_str()], "{audit:?}");

    // The trail in words: people by name, the slot as a Rome date and time, no ids or seconds.
    let appt = server.server.store.appointment(&id).await.unwrap().unwrap();
    let tz = sportello_domain::europe_rome().unwrap();
    let start = jiff::Timestamp::from_second(appt.starts_at).unwrap();
    let end = jiff::Timestamp::from_second(appt.ends_at).unwrap().to_zoned(tz.clone()).strftime("%H:%M").to_string();
    let (it, en) = (slot_label(start, &tz, Lang::It), slot_label(start, &tz, Lang::En));
    assert_eq!(
        (audit[0]["actor_kind"].as_str(), audit[0]["actor_name"].as_str()),
        (Some("citizen"), Some("Mario Rossi"))
    );
    assert_eq!(audit[0]["summary_it"], format!("Prenotato per {it}–{end} con Staff anna@comune.example"));
    assert_eq!(audit[0]["summary_en"], format!("Booked for {en}–{end} with Staff anna@comune.example"));
    assert_eq!(
        (audit[1]["actor_kind"].as_str(), audit[1]["actor_name"].as_str()),
        (Some("staff"), Some("Staff anna@comune.example"))
    );
    assert_eq!(
        (audit[1]["summary_it"].as_str(), audit[1]["summary_en"].as_str()),
        (Some("Concluso: tutto fatto"), Some("Completed: tutto fatto"))
    );
    for e in audit {
        let words = format!("{} {} {}", e["actor_name"], e["summary_it"], e["summary_en"]);
        assert!(!words.contains(&anna_id) && !words.contains(&appt.starts_at.to_string()), "{words}");
    }
    assert_eq!(server.server.store.appointment(&id).await.unwrap().unwrap().status.as_str(), "completed");

    // Cancelled by the office: the citizen is told by email, with the .ics that removes the entry.
    let cancelled = book(&server, &office1, &service_id, &anna_id, "DDD444", 7200).await;
    anna.post(&format!("/api/staff/appointments/{cancelled}/status"), json!({"status": "cancelled"}))
        .await
        .expect(StatusCode::OK);
    let outbox = server.data_dir().join("outbox");
    let mails: Vec<String> = std::fs::read_dir(&outbox)
        .map(|d| d.flatten().filter_map(|e| std::fs::read_to_string(e.path()).ok()).collect())
        .unwrap_or_default();
    let mail = mails.iter().find(|m| m.contains("DDD444")).unwrap_or_else(|| panic!("no email in {outbox:?}"));
    assert!(mail.contains("mario.rossi@example.org") && mail.contains("annullato"), "{mail}");
    assert!(mail.contains("METHOD:CANCEL") || mail.contains("method=CANCEL"), "{mail}");
}

// --- links ------------------------------------------------------------------------------------------

fn token_of(url: &str) -> String {
    let query = url.split_once("/join?").expect("a join link").1;
    query.split('&').find_map(|p| p.strip_prefix("t=")).expect("a t parameter").to_owned()
}

#[tokio::test]
async fn invitations_are_waiting_guest_links_into_the_virtual_office() {
    let (server, admin, _) = with_admin().await;
    let (anna, anna_id) = staff_member(&server, &admin, "anna@comune.example", "official").await;
    let room = format!("vo-{anna_id}");

    let link = anna
        .post("/api/staff/invitations", json!({"name": "Tecnico Rete", "valid_hours": 2}))
        .await
        .expect(StatusCode::OK);
    assert_eq!(link["room"], room.as_str());
    let claims = server.server.tokens.verify(&token_of(link["url"].as_str().unwrap()), Some(&room)).expect("valid");
    assert!(claims.wait, "guests wait to be admitted");
    assert_eq!((claims.role, claims.name.as_str(), claims.appt), (Role::Participant, "Tecnico Rete", None));
    assert_eq!(claims.exp - claims.iat, 2 * 3600);
    assert!(server.server.tokens.verify(&token_of(link["url"].as_str().unwrap()), Some("vo-someone-else")).is_err());

    for hours in [0, 73, 100] {
        anna.post("/api/staff/invitations", json!({"name": "X", "valid_hours": hours}))
            .await
            .expect_error(StatusCode::BAD_REQUEST, "invalid_validity");
    }
    anna.post("/api/staff/invitations", json!({"name": "  "}))
        .await
        .expect_error(StatusCode::BAD_REQUEST, "invalid_name");

    let vo = anna.post("/api/staff/virtual-office", json!({})).await.expect(StatusCode::OK);
    let host = server.server.tokens.verify(&token_of(vo["url"].as_str().unwrap()), Some(&room)).expect("valid");
    assert_eq!((host.role, host.wait), (Role::Host, false));
}

#[tokio::test]
async fn the_office_virtual_office_is_hosted_by_its_officials_only() {
    let (server, admin, _) = with_admin().await;
    let (anna, anna_id) = staff_member(&server, &admin, "anna@comune.example", "official").await;
    let (bruno, bruno_id) = staff_member(&server, &admin, "bruno@comune.example", "official").await;
    let office1 = office(&admin, "Anagrafe", &[&anna_id]).await;
    let _office2 = office(&admin, "Tributi", &[&bruno_id]).await;
    let room = format!("office-{office1}");

    let link =
        anna.post(&format!("/api/staff/offices/{office1}/virtual-office"), json!({})).await.expect(StatusCode::OK);
    let host = server.server.tokens.verify(&token_of(link["url"].as_str().unwrap()), Some(&room)).expect("valid");
    assert_eq!((host.role, host.wait), (Role::Host, false));
    // A guest can be invited into it; an official of another office can neither host nor invite.
    let guest = anna
        .post("/api/staff/invitations", json!({"room": room, "name": "Geometra Neri"}))
        .await
        .expect(StatusCode::OK);
    assert!(server.server.tokens.verify(&token_of(guest["url"].as_str().unwrap()), Some(&room)).expect("valid").wait);
    bruno
        .post(&format!("/api/staff/offices/{office1}/virtual-office"), json!({}))
        .await
        .expect_error(StatusCode::NOT_FOUND, "not_found");
    bruno
        .post("/api/staff/invitations", json!({"room": room, "name": "X"}))
        .await
        .expect_error(StatusCode::NOT_FOUND, "not_found");
}

// --- waiting room over REST -------------------------------------------------------------------------

#[tokio::test]
async fn a_waiting_citizen_is_listed_and_admitted_over_rest() {
    let (server, admin, _) = with_admin().await;
    let (anna, anna_id) = staff_member(&server, &admin, "anna@comune.example", "official").await;
    let (bruno, bruno_id) = staff_member(&server, &admin, "bruno@comune.example", "official").await;
    let office1 = office(&admin, "Anagrafe", &[&anna_id]).await;
    let _office2 = office(&admin, "Tributi", &[&bruno_id]).await;
    let service_id = service(&admin, &[&office1]).await;
    let id = book(&server, &office1, &service_id, &anna_id, "DDD444", 300).await;
    let room = format!("appt-{id}");

    assert_eq!(anna.get("/api/staff/waiting").await.expect(StatusCode::OK), json!([]));
    let mut citizen = server.connect(&room).await;
    let claims = Claims {
        wait: true,
        appt: Some(id.clone()),
        ..Claims::new(&room, "mario", "Mario Rossi", Role::Participant, Duration::from_secs(3600))
    };
    citizen.send_json(&json!({"v": 1, "type": "join", "token": server.sign(&claims)})).await;
    assert_eq!(citizen.recv_json().await["type"], "waiting");

    let waiting = anna.get("/api/staff/waiting").await.expect(StatusCode::OK);
    assert_eq!(waiting.as_array().unwrap().len(), 1, "{waiting}");
    assert_eq!(waiting[0]["name"], "Mario Rossi");
    assert_eq!(waiting[0]["room"], room.as_str());
    assert_eq!(waiting[0]["participant_id"], "mario");
    assert_eq!(waiting[0]["appointment_id"], id.as_str());
    // What the citizen came for, in words (the desk shows no room id), and that Anna is not in the
    // room yet, so the desk's button also opens it for her.
    let appt = server.server.store.appointment(&id).await.unwrap().unwrap();
    let start = jiff::Timestamp::from_second(appt.starts_at).unwrap().to_string();
    let end = jiff::Timestamp::from_second(appt.ends_at).unwrap().to_string();
    assert_eq!(
        waiting[0]["appointment"],
        json!({"office_name": "Anagrafe", "service_name": "Carta d'identità", "start": start, "end": end, "citizen": "Mario Rossi"})
    );
    assert_eq!((waiting[0]["office_name"].clone(), waiting[0]["host_here"].clone()), (Value::Null, json!(false)));
    let (mut host, _) = server.join(&room, &format!("user-{anna_id}"), Role::Host).await;
    let mut waiting = Value::Null;
    for _ in 0..50 {
        waiting = anna.get("/api/staff/waiting").await.expect(StatusCode::OK);
        if waiting[0]["host_here"] == true {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(waiting[0]["host_here"], true, "Anna is in the room now: {waiting}");
    host.leave().await;
    assert_eq!(bruno.get("/api/staff/waiting").await.expect(StatusCode::OK), json!([]), "not another office's");
    bruno
        .post(&format!("/api/staff/rooms/{room}/admit"), json!({"participant_id": "mario"}))
        .await
        .expect_error(StatusCode::NOT_FOUND, "not_found");

    anna.post(&format!("/api/staff/rooms/{room}/admit"), json!({"participant_id": "mario"}))
        .await
        .expect(StatusCode::NO_CONTENT);
    let welcome = citizen.recv_until("welcome").await;
    assert_eq!(welcome["room"], room.as_str(), "{welcome}");
    assert_eq!(anna.get("/api/staff/waiting").await.expect(StatusCode::OK), json!([]));
    anna.post(&format!("/api/staff/rooms/{room}/admit"), json!({"participant_id": "mario"}))
        .await
        .expect_error(StatusCode::GONE, "not_waiting");
}

// --- the API description ----------------------------------------------------------------------------

#[tokio::test]
async fn openapi_lists_the_staff_paths() {
    let server = TestServer::start().await;
    let doc = Browser::new(&server).get("/api/openapi.json").await.expect(StatusCode::OK);
    let paths = doc["paths"].as_object().expect("paths");
    for path in [
        "/api/auth/login",
        "/api/auth/logout",
        "/api/auth/me",
        "/api/auth/password",
        "/api/auth/setup",
        "/api/admin/offices",
        "/api/admin/offices/{id}",
        "/api/admin/services",
        "/api/admin/users",
        "/api/admin/users/{id}/setup-link",
        "/api/admin/settings",
        "/api/admin/crest",
        "/api/staff/appointments",
        "/api/staff/appointments/{id}",
        "/api/staff/appointments/{id}/status",
        "/api/staff/appointments/{id}/join",
        "/api/staff/waiting",
        "/api/staff/rooms/{room}/admit",
        "/api/staff/rooms/{room}/decline",
        "/api/staff/virtual-office",
        "/api/staff/invitations",
    ] {
        assert!(paths.contains_key(path), "{path} missing from {:?}", paths.keys().collect::<Vec<_>>());
    }
}

// --- the pages ------------------------------------------------------------------------------------

#[tokio::test]
async fn staff_pages_are_served_with_their_scripts() {
    let server = TestServer::start().await;
    let http = reqwest::Client::new();
    for (path, script, marker) in [
        ("/staff", "/web/staff/staff.js", "id=\"login-email\""),
        ("/staff/admin", "/web/staff/admin.js", "id=\"office-form\""),
        ("/staff/setup", "/web/staff/setup.js", "id=\"setup-password2\""),
    ] {
        let response = http.get(format!("{}{path}", server.url())).send().await.expect("page");
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(response.headers()["cache-control"], "no-store", "{path}");
        let csp = response.headers()["content-security-policy"].to_str().unwrap().to_owned();
        assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
        let html = response.text().await.unwrap();
        assert!(html.contains(marker) && html.contains(script), "{path}");
        // CSP forbids inline code: no inline scripts, handlers or style attributes.
        assert!(!html.contains(" style=") && !html.contains(" onclick=") && !html.contains("<script>"), "{path}");
        for asset in
            [script, "/web/staff/common.js", "/web/shared/i18n.js", "/web/staff/staff.css", "/web/shared/style.css"]
        {
            let r = http.get(format!("{}{asset}", server.url())).send().await.expect("asset");
            assert_eq!(r.status(), StatusCode::OK, "{asset}");
        }
    }
}
