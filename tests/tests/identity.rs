//! Signing in through OpenID providers (docs/identity.md) end to end: a real provider
//! (oidc-provider under Node, `tests/oidc/provider.mjs`) on 127.0.0.1, configured through
//! `PUT /api/admin/identity` of a real Sportello server, and a client that keeps cookies and follows
//! redirects by hand as a browser would: Sportello → the provider → its login form → the callback
//! → a session.
//!
//! Staff: an official created from the directory's groups (role and office), the same account on
//! the next login, an administrator by group, an account linked by its verified email (and not by
//! an unverified one), unknown users refused, the directory's changes applied at every login, a
//! deactivated account's session ended and its next login refused, passwords switched off (the
//! administrator's still works), a state replayed, tampered with or opened in another browser
//! refused, the provider's own refusal, logout to the provider's end-session endpoint. Citizens:
//! a SPID/CIE login with a valid fiscal code (from userinfo, and from the ID token) shows who they
//! are and leaves nothing of them in the database; their appointments by key; an invalid checksum
//! refused. The staff flow runs on SQLite and PostgreSQL.

use std::sync::Arc;
use std::time::Duration;

use reqwest::cookie::Jar;
use reqwest::{StatusCode, Url};
use serde_json::{Value, json};
use sportello_server::api::auth::first_admin_link;
use sportello_tests::oidc::TempOidc;
use sportello_tests::server::TestServer;
use sqlx::Row;

const PASSWORD: &str = "correct horse battery";
const STAFF_CLIENT: &str = "sportello-staff";
const STAFF_SECRET: &str = "staff-secret-4f1c9a";
const CITIZEN_CLIENT: &str = "sportello-cittadini";
const CITIZEN_SECRET: &str = "citizen-secret-77b2e0";
/// A valid fiscal code (checked by hand and by `domain::fiscal_code`'s tests), and one with a
/// wrong check character.
const FISCAL_CODE: &str = "RSSMRA85T10A562S";
const BAD_FISCAL_CODE: &str = "RSSMRA85T10A562T";
const FISCAL_NUMBER: &str = "https://attributes.eid.gov.it/fiscal_number";

// --- a browser ------------------------------------------------------------------------------------

/// A browser: its own cookie jar (Sportello's and the provider's cookies, as a browser keeps them),
/// redirects followed by the test.
struct Browser {
    http: reqwest::Client,
    base: String,
}

/// What the person does on the provider's login page.
#[derive(Clone, Copy)]
enum Answer<'a> {
    LogIn(&'a str),
    Cancel,
}

impl Browser {
    fn new(server: &TestServer) -> Browser {
        let http = reqwest::Client::builder()
            .cookie_provider(Arc::new(Jar::default()))
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(20))
            .build()
            .expect("client");
        Browser { http, base: server.url() }
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        let bytes = response.bytes().await.expect("body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        (status, body)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send(reqwest::Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(reqwest::Method::PUT, path, Some(body)).await
    }

    /// One GET of an absolute URL: its status and where it redirects (absolute).
    async fn hop(&self, url: &str) -> (StatusCode, Option<String>) {
        let response = self.http.get(url).send().await.unwrap_or_else(|e| panic!("GET {url}: {e}"));
        let status = response.status();
        let location = response.headers().get(reqwest::header::LOCATION).map(|l| {
            let base = Url::parse(url).expect("url");
            base.join(l.to_str().expect("location")).expect("location URL").to_string()
        });
        (status, location)
    }

    /// From `start` (a Sportello path) through the provider, answering its login page, up to the
    /// callback URL the provider sends the browser to (not opened).
    async fn to_callback(&self, start: &str, answer: Answer<'_>) -> String {
        let callback = format!("{}/auth/oidc/callback", self.base);
        let mut url = format!("{}{start}", self.base);
        for _ in 0..12 {
            let (status, location) = self.hop(&url).await;
            let location = location.unwrap_or_else(|| panic!("{url} answered {status} without a redirect"));
            if location.starts_with(&callback) {
                return location;
            }
            let parsed = Url::parse(&location).expect("url");
            if parsed.path().starts_with("/interaction/") {
                // The provider's login page, then what the person does there.
                let (status, _) = self.hop(&location).await;
                assert_eq!(status, StatusCode::OK, "the login form at {location}");
                let (action, body) = match answer {
                    Answer::LogIn(account) => ("login", format!("login={account}")),
                    Answer::Cancel => ("abort", String::new()),
                };
                let response = self
                    .http
                    .post(format!("{location}/{action}"))
                    .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(body)
                    .send()
                    .await
                    .expect("login form");
                assert_eq!(response.status(), StatusCode::SEE_OTHER, "the login form's answer");
                let next = response.headers()[reqwest::header::LOCATION].to_str().expect("location").to_owned();
                url = parsed.join(&next).expect("url").to_string();
            } else {
                url = location;
            }
        }
        panic!("no callback after 12 redirects from {start}");
    }

    /// Opens a callback URL: where Sportello sends the browser then (a path of this site).
    async fn open_callback(&self, callback: &str) -> String {
        let (status, location) = self.hop(callback).await;
        assert_eq!(status, StatusCode::FOUND, "the callback redirects");
        let location = location.expect("a redirect");
        location.strip_prefix(&self.base).map(str::to_owned).unwrap_or(location)
    }

    /// A whole sign-in from `start`; where it ends.
    async fn sign_in(&self, start: &str, answer: Answer<'_>) -> String {
        let callback = self.to_callback(start, answer).await;
        self.open_callback(&callback).await
    }

    async fn me(&self) -> (StatusCode, Value) {
        self.get("/api/auth/me").await
    }
}

// --- the world --------------------------------------------------------------------------------------

fn accounts() -> Value {
    json!({
        "anna": {"sub": "sub-anna", "email": "anna.verdi@comune.example", "email_verified": true,
                 "given_name": "Anna", "family_name": "Verdi", "groups": ["sportello-uffici", "anagrafe"]},
        "ada": {"sub": "sub-ada", "email": "ada.neri@comune.example", "email_verified": true,
                "name": "Ada Neri", "groups": ["sportello-admin"]},
        "ugo": {"sub": "sub-ugo", "email": "ugo@comune.example", "email_verified": true,
                "groups": ["biblioteca"]},
        "bruno": {"sub": "sub-bruno", "email": "Bruno.Bianchi@comune.example", "email_verified": true,
                  "groups": ["sportello-uffici", "tributi"]},
        "eve": {"sub": "sub-eve", "email": "bruno.bianchi@comune.example", "email_verified": false,
                "groups": ["sportello-admin"]},
        "mario": {"sub": "sub-mario", "given_name": "Gianmaria", "family_name": "Vattelapesca",
                  "email": "gianmaria.v@example.it", FISCAL_NUMBER: format!("TINIT-{FISCAL_CODE}")},
        "mallory": {"sub": "sub-mallory", "given_name": "Mallory", "family_name": "Errore",
                    FISCAL_NUMBER: format!("TINIT-{BAD_FISCAL_CODE}")},
    })
}

fn provider_config(server: &TestServer, accounts: Value, id_token_claims: bool) -> Value {
    let callback = format!("{}/auth/oidc/callback", server.url());
    json!({
        "clients": [
            {"client_id": STAFF_CLIENT, "client_secret": STAFF_SECRET, "redirect_uris": [callback],
             "post_logout_redirect_uris": [format!("{}/staff", server.url())]},
            {"client_id": CITIZEN_CLIENT, "client_secret": CITIZEN_SECRET, "redirect_uris": [callback]},
        ],
        "accounts": accounts,
        "id_token_claims": id_token_claims,
    })
}

struct World {
    server: TestServer,
    provider: TempOidc,
    /// The first administrator (a password account), logged in.
    admin: Browser,
    anagrafe: String,
    tributi: String,
}

#[derive(Clone, Copy)]
enum Backend {
    Sqlite,
    Postgres,
}

async fn world(backend: Backend, id_token_claims: bool) -> World {
    let database_url = match backend {
        Backend::Sqlite => None,
        Backend::Postgres => Some(sportello_tests::server::postgres_url().await),
    };
    let server = TestServer::start_with(|c| c.database_url = database_url).await;
    let now = server.server.tokens.clock().now();
    let link = first_admin_link(&server.server.store, &server.url(), now).await.expect("store").expect("a link");
    let admin = Browser::new(&server);
    let secret = link.split_once('#').expect("secret").1;
    let body = json!({"token": secret, "password": PASSWORD, "email": "admin@comune.example", "display_name": "Amministratrice"});
    assert_eq!(admin.post("/api/auth/setup", body).await.0, StatusCode::OK);
    let week = json!([["08:30-12:30"], ["08:30-12:30"], ["08:30-12:30"], ["08:30-12:30"], ["08:30-12:30"], [], []]);
    let mut offices = Vec::new();
    for name in ["Anagrafe", "Tributi"] {
        let (status, office) =
            admin.post("/api/admin/offices", json!({"name": name, "opening_hours": week, "member_ids": []})).await;
        assert_eq!(status, StatusCode::CREATED, "{office}");
        offices.push(office["id"].as_str().expect("id").to_owned());
    }
    let provider = TempOidc::start(&provider_config(&server, accounts(), id_token_claims)).await.expect("provider");
    let world = World {
        server,
        provider,
        admin,
        tributi: offices.pop().expect("office"),
        anagrafe: offices.pop().expect("office"),
    };
    let (status, view) = world.admin.put("/api/admin/identity", world.settings(true)).await;
    assert_eq!(status, StatusCode::OK, "{view}");
    world
}

impl World {
    /// Both providers on the test's provider, passwords on or off.
    fn settings(&self, local_passwords: bool) -> Value {
        json!({
            "local_passwords": local_passwords,
            "staff_oidc": {
                "issuer": self.provider.issuer, "client_id": STAFF_CLIENT, "client_secret": STAFF_SECRET,
                "label": "Account del Comune di Prova", "role_claim": "groups",
                "admin_values": ["sportello-admin"], "official_values": ["sportello-uffici"],
                "councillor_values": ["consiglio"], "offices_claim": "groups",
                "office_map": {"anagrafe": self.anagrafe, "tributi": self.tributi},
            },
            "citizen_oidc": {
                "issuer": self.provider.issuer, "client_id": CITIZEN_CLIENT, "client_secret": CITIZEN_SECRET,
                "label": "SPID o CIE",
            },
        })
    }

    fn browser(&self) -> Browser {
        Browser::new(&self.server)
    }

    async fn count(&self, sql: &str) -> i64 {
        sqlx::query(sql).fetch_one(self.server.server.store.pool()).await.expect("count").get::<i64, _>(0)
    }

    /// The office names of the user `id` (the admin API's view).
    async fn offices_of(&self, id: &str) -> Vec<String> {
        let (_, offices) = self.admin.get("/api/admin/offices").await;
        let mut names: Vec<String> = offices
            .as_array()
            .expect("offices")
            .iter()
            .filter(|o| o["member_ids"].as_array().is_some_and(|m| m.iter().any(|m| m == id)))
            .map(|o| o["name"].as_str().unwrap_or_default().to_owned())
            .collect();
        names.sort();
        names
    }
}

// --- staff ------------------------------------------------------------------------------------------

async fn staff_sign_in_follows_the_directory(backend: Backend) {
    let w = world(backend, false).await;
    let (status, options) = w.browser().get("/api/public/login-options").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        options,
        json!({"staff_sso": {"label": "Account del Comune di Prova"}, "local_passwords": true,
               "citizen_login": {"label": "SPID o CIE"}})
    );

    // First login: an official of Anagrafe, created from the groups claim, with no password.
    let anna = w.browser();
    assert_eq!(
        anna.sign_in("/auth/staff/login?return=/staff/calendario", Answer::LogIn("anna")).await,
        "/staff/calendario"
    );
    let (status, me) = anna.me().await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["user"]["role"], "official");
    assert_eq!(me["user"]["email"], "anna.verdi@comune.example");
    assert_eq!(me["user"]["display_name"], "Anna Verdi");
    assert_eq!(me["user"]["has_password"], false);
    assert_eq!(
        me["offices"].as_array().map(|o| o.iter().map(|o| o["name"].clone()).collect::<Vec<_>>()),
        Some(vec![json!("Anagrafe")])
    );
    let anna_id = me["user"]["id"].as_str().expect("id").to_owned();
    let users = w.count("SELECT COUNT(*) FROM users").await;

    // Another browser, another provider session: the same account, nobody new.
    let again = w.browser();
    assert_eq!(again.sign_in("/auth/staff/login", Answer::LogIn("anna")).await, "/staff", "the default return");
    assert_eq!(again.me().await.1["user"]["id"], anna_id.as_str());
    assert_eq!(w.count("SELECT COUNT(*) FROM users").await, users);
    assert_eq!(w.count("SELECT COUNT(*) FROM staff_identities").await, 1);
    // The provider remembers the first browser: a second login there skips its form.
    assert_eq!(anna.sign_in("/auth/staff/login", Answer::LogIn("nobody")).await, "/staff");
    assert_eq!(anna.me().await.1["user"]["id"], anna_id.as_str());

    // An administrator by group.
    let ada = w.browser();
    assert_eq!(ada.sign_in("/auth/staff/login", Answer::LogIn("ada")).await, "/staff");
    let (_, me) = ada.me().await;
    assert_eq!((me["user"]["role"].as_str(), me["user"]["display_name"].as_str()), (Some("admin"), Some("Ada Neri")));
    assert_eq!(ada.get("/api/admin/identity").await.0, StatusCode::OK, "and may administer");

    // An account the administrator made with a password, linked by its verified email: the
    // directory's role and office apply; an unverified email of the same address links nothing.
    let (status, created) = w
        .admin
        .post(
            "/api/admin/users",
            json!({"email": "bruno.bianchi@comune.example", "display_name": "Bruno", "role": "councillor"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let bruno_id = created["user"]["id"].as_str().expect("id").to_owned();
    let eve = w.browser();
    assert_eq!(eve.sign_in("/auth/staff/login", Answer::LogIn("eve")).await, "/staff?sso_error=unknown_user");
    assert_eq!(eve.me().await.0, StatusCode::UNAUTHORIZED);
    let bruno = w.browser();
    assert_eq!(bruno.sign_in("/auth/staff/login", Answer::LogIn("bruno")).await, "/staff");
    let (_, me) = bruno.me().await;
    assert_eq!((me["user"]["id"].as_str(), me["user"]["role"].as_str()), (Some(bruno_id.as_str()), Some("official")));
    assert_eq!(w.offices_of(&bruno_id).await, ["Tributi"]);

    // Nobody the directory gives a role: refused, no session, no account.
    let ugo = w.browser();
    assert_eq!(ugo.sign_in("/auth/staff/login", Answer::LogIn("ugo")).await, "/staff?sso_error=unknown_user");
    assert_eq!(ugo.me().await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(w.count("SELECT COUNT(*) FROM users WHERE email = 'ugo@comune.example'").await, 0);

    // The directory changes Anna's groups (the provider restarted on its port: the same issuer):
    // administrator of Tributi now — Anagrafe, which the directory maps, is no longer hers, an
    // office it does not map stays as the administrator set it.
    let (status, extra) = w
        .admin
        .post(
            "/api/admin/offices",
            json!({"name": "Biblioteca", "opening_hours": [[], [], [], [], [], [], []], "member_ids": [anna_id]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{extra}");
    let port = w.provider.port();
    let World { server, provider, admin, anagrafe, tributi } = w;
    provider.stop().await;
    let mut changed = accounts();
    changed["anna"]["groups"] = json!(["sportello-admin", "tributi"]);
    let provider = TempOidc::start_on(&provider_config(&server, changed.clone(), false), port).await.expect("restart");
    let w = World { server, provider, admin, anagrafe, tributi };
    let anna = w.browser();
    assert_eq!(anna.sign_in("/auth/staff/login", Answer::LogIn("anna")).await, "/staff");
    assert_eq!(anna.me().await.1["user"]["role"], "admin");
    assert_eq!(w.offices_of(&anna_id).await, ["Biblioteca", "Tributi"]);

    // No mapped group any more: refused, though the account exists and is linked.
    let port = w.provider.port();
    let World { server, provider, admin, anagrafe, tributi } = w;
    provider.stop().await;
    changed["anna"]["groups"] = json!(["tributi"]);
    let provider = TempOidc::start_on(&provider_config(&server, changed, false), port).await.expect("restart");
    let w = World { server, provider, admin, anagrafe, tributi };
    let anna = w.browser();
    assert_eq!(anna.sign_in("/auth/staff/login", Answer::LogIn("anna")).await, "/staff?sso_error=unknown_user");
    assert_eq!(anna.me().await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_sign_in_follows_the_directory_on_sqlite() {
    staff_sign_in_follows_the_directory(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_sign_in_follows_the_directory_on_postgres() {
    staff_sign_in_follows_the_directory(Backend::Postgres).await;
}

async fn a_deactivated_account_is_shut_out(backend: Backend) {
    let w = world(backend, false).await;
    let anna = w.browser();
    assert_eq!(anna.sign_in("/auth/staff/login", Answer::LogIn("anna")).await, "/staff");
    let (status, me) = anna.me().await;
    assert_eq!(status, StatusCode::OK);
    let id = me["user"]["id"].as_str().expect("id").to_owned();
    let (status, user) = w
        .admin
        .put(
            &format!("/api/admin/users/{id}"),
            json!({"display_name": "Anna Verdi", "role": "official", "active": false}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{user}");
    // The running session ends at once.
    assert_eq!(anna.me().await.0, StatusCode::UNAUTHORIZED);
    // The provider still knows her (its session, no form); Sportello does not let her in.
    assert_eq!(anna.sign_in("/auth/staff/login", Answer::LogIn("anna")).await, "/staff?sso_error=inactive");
    assert_eq!(anna.me().await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(w.browser().sign_in("/auth/staff/login", Answer::LogIn("anna")).await, "/staff?sso_error=inactive");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deactivated_account_is_shut_out_on_sqlite() {
    a_deactivated_account_is_shut_out(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deactivated_account_is_shut_out_on_postgres() {
    a_deactivated_account_is_shut_out(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_switched_off_leave_the_administrator_a_way_in() {
    let w = world(Backend::Sqlite, false).await;
    // An official with a password, set while passwords were on.
    let (_, created) = w
        .admin
        .post("/api/admin/users", json!({"email": "olga@comune.example", "display_name": "Olga", "role": "official"}))
        .await;
    let link =
        |created: &Value| created["setup_url"].as_str().expect("setup_url").split_once('#').expect("#").1.to_owned();
    let olga = w.browser();
    let (status, _) = olga.post("/api/auth/setup", json!({"token": link(&created), "password": PASSWORD})).await;
    assert_eq!(status, StatusCode::OK);
    let (_, later) = w
        .admin
        .post("/api/admin/users", json!({"email": "piero@comune.example", "display_name": "Piero", "role": "official"}))
        .await;

    let (status, view) = w.admin.put("/api/admin/identity", w.settings(false)).await;
    assert_eq!((status, view["local_passwords"].clone()), (StatusCode::OK, json!(false)));
    assert_eq!(w.browser().get("/api/public/login-options").await.1["local_passwords"], false);
    let login = |email: &str| json!({"email": email, "password": PASSWORD});
    let (status, body) = w.browser().post("/api/auth/login", login("olga@comune.example")).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("local_login_disabled")),
        "{body}"
    );
    // A wrong password still says only that (nothing learned about the switch).
    let (status, body) = w
        .browser()
        .post("/api/auth/login", json!({"email": "olga@comune.example", "password": "wrong password!"}))
        .await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_credentials")));
    // A setup link no longer sets a password for staff.
    let piero = w.browser();
    let (status, body) = piero.post("/api/auth/setup", json!({"token": link(&later), "password": PASSWORD})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("local_login_disabled")),
        "{body}"
    );
    assert_eq!(piero.me().await.0, StatusCode::UNAUTHORIZED);
    // The administrator's password: the break-glass way in.
    let (status, me) = w.browser().post("/api/auth/login", login("admin@comune.example")).await;
    assert_eq!((status, me["user"]["role"].as_str()), (StatusCode::OK, Some("admin")), "{me}");
    // Back on: the official's password works again.
    assert_eq!(w.admin.put("/api/admin/identity", w.settings(true)).await.0, StatusCode::OK);
    assert_eq!(w.browser().post("/api/auth/login", login("olga@comune.example")).await.0, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_works_once_and_in_its_own_browser() {
    let w = world(Backend::Sqlite, false).await;
    let anna = w.browser();
    let callback = anna.to_callback("/auth/staff/login", Answer::LogIn("anna")).await;
    let url = Url::parse(&callback).expect("url");
    let param = |name: &str| url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned()).expect(name);
    let (code, state) = (param("code"), param("state"));
    let with = |code: &str, state: &str| {
        let mut tampered = url.clone();
        tampered.query_pairs_mut().clear().append_pair("code", code).append_pair("state", state);
        tampered.to_string()
    };
    // Another browser opening this callback (a code handed to a victim): refused, and the
    // login is still there for its own browser.
    let victim = w.browser();
    assert_eq!(victim.open_callback(&callback).await, "/staff?sso_error=expired");
    assert_eq!(victim.me().await.0, StatusCode::UNAUTHORIZED);
    // A tampered state: refused.
    assert_eq!(anna.open_callback(&with(&code, &format!("{state}x"))).await, "/staff?sso_error=expired");
    assert_eq!(anna.open_callback(&with(&code, "")).await, "/staff?sso_error=expired");
    assert_eq!(anna.me().await.0, StatusCode::UNAUTHORIZED);
    // Neither took her login: its callback, once.
    assert_eq!(anna.open_callback(&callback).await, "/staff");
    assert_eq!(anna.me().await.0, StatusCode::OK);
    // Replayed: refused (the row is gone, and so is the binding cookie).
    let replay = w.browser();
    assert_eq!(replay.open_callback(&callback).await, "/staff?sso_error=expired");
    assert_eq!(anna.open_callback(&callback).await, "/staff?sso_error=expired");
    assert_eq!(w.count("SELECT COUNT(*) FROM oidc_logins").await, 0, "every login taken");
    // A tampered code with a valid state: the provider refuses the exchange.
    let callback = anna.to_callback("/auth/staff/login", Answer::LogIn("anna")).await;
    let url = Url::parse(&callback).expect("url");
    let state = url.query_pairs().find(|(k, _)| k == "state").map(|(_, v)| v.into_owned()).expect("state");
    let mut forged = url.clone();
    forged.query_pairs_mut().clear().append_pair("code", "forged-code").append_pair("state", &state);
    assert_eq!(anna.open_callback(forged.as_str()).await, "/staff?sso_error=provider");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_provider_refusing_and_logging_out() {
    let w = world(Backend::Sqlite, false).await;
    // The person cancels at the provider.
    let quitter = w.browser();
    assert_eq!(quitter.sign_in("/auth/staff/login", Answer::Cancel).await, "/staff?sso_error=provider");
    assert_eq!(quitter.me().await.0, StatusCode::UNAUTHORIZED);

    let anna = w.browser();
    assert_eq!(anna.sign_in("/auth/staff/login", Answer::LogIn("anna")).await, "/staff");
    assert_eq!(anna.post("/api/auth/logout", json!({})).await.0, StatusCode::NO_CONTENT);
    assert_eq!(anna.me().await.0, StatusCode::UNAUTHORIZED);
    // Then to the provider's end of session, coming back to /staff.
    let (status, location) = anna.hop(&format!("{}/auth/staff/logout", w.server.url())).await;
    assert_eq!(status, StatusCode::FOUND);
    let location = Url::parse(&location.expect("a redirect")).expect("url");
    let discovery: Value = reqwest::get(format!("{}/.well-known/openid-configuration", w.provider.issuer))
        .await
        .expect("discovery")
        .json()
        .await
        .expect("json");
    let end_session = discovery["end_session_endpoint"].as_str().expect("end_session_endpoint");
    assert!(location.as_str().starts_with(end_session), "{location} is not {end_session}");
    let query: std::collections::HashMap<_, _> = location.query_pairs().into_owned().collect();
    assert_eq!(query.get("client_id").map(String::as_str), Some(STAFF_CLIENT));
    assert_eq!(query.get("post_logout_redirect_uri"), Some(&format!("{}/staff", w.server.url())));
    // The provider takes it (a confirmation page for a logout without an ID token hint).
    let (status, _) = anna.hop(location.as_str()).await;
    assert!(status.is_success() || status.is_redirection(), "{status}");

    // Without staff SSO, logout is simply the staff page.
    let mut settings = w.settings(true);
    settings["staff_oidc"] = Value::Null;
    assert_eq!(w.admin.put("/api/admin/identity", settings).await.0, StatusCode::OK);
    let (_, location) = anna.hop(&format!("{}/auth/staff/logout", w.server.url())).await;
    assert_eq!(location.as_deref(), Some(format!("{}/staff", w.server.url()).as_str()));
    assert_eq!(w.browser().sign_in_unconfigured().await, "/staff?sso_error=provider");
}

impl Browser {
    /// `/auth/staff/login` while staff SSO is not configured: where it sends the browser.
    async fn sign_in_unconfigured(&self) -> String {
        let (status, location) = self.hop(&format!("{}/auth/staff/login", self.base)).await;
        assert_eq!(status, StatusCode::FOUND);
        let location = location.expect("a redirect");
        location.strip_prefix(&self.base).map(str::to_owned).unwrap_or(location)
    }
}

// --- the administrator's settings ------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_are_checked_and_secrets_never_shown() {
    let w = world(Backend::Sqlite, false).await;
    let (status, view) = w.admin.get("/api/admin/identity").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(view["redirect_uri"], format!("{}/auth/oidc/callback", w.server.url()));
    assert_eq!(view["staff_oidc"]["client_secret_set"], true);
    assert_eq!(view["staff_oidc"]["office_map"]["anagrafe"], w.anagrafe.as_str());
    assert_eq!(view["citizen_oidc"]["client_secret_set"], true);
    let text = view.to_string();
    assert!(
        !text.contains(STAFF_SECRET) && !text.contains(CITIZEN_SECRET) && !text.contains("client_secret\""),
        "{text}"
    );

    // The secret left out is kept: logins still work.
    let mut settings = w.settings(true);
    settings["staff_oidc"].as_object_mut().expect("object").remove("client_secret");
    settings["citizen_oidc"]["client_secret"] = json!("");
    assert_eq!(w.admin.put("/api/admin/identity", settings.clone()).await.0, StatusCode::OK);
    assert_eq!(w.browser().sign_in("/auth/staff/login", Answer::LogIn("anna")).await, "/staff");

    for (change, code) in [
        (json!({"issuer": "http://login.comune.example"}), "invalid_issuer"),
        (json!({"issuer": "https://user:pw@login.comune.example"}), "invalid_issuer"),
        (json!({"client_id": "  "}), "invalid_field"),
        (json!({"role_claim": ""}), "invalid_field"),
        (json!({"office_map": {"anagrafe": "no-such-office"}}), "unknown_office"),
    ] {
        let mut bad = settings.clone();
        for (k, v) in change.as_object().expect("object") {
            bad["staff_oidc"][k] = v.clone();
        }
        let (status, body) = w.admin.put("/api/admin/identity", bad).await;
        assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some(code)), "{change}: {body}");
    }
    // Refused requests changed nothing.
    assert_eq!(w.admin.get("/api/admin/identity").await.1["staff_oidc"]["issuer"], w.provider.issuer.as_str());
    // Officials may not read them.
    let anna = w.browser();
    anna.sign_in("/auth/staff/login", Answer::LogIn("anna")).await;
    assert_eq!(anna.get("/api/admin/identity").await.0, StatusCode::FORBIDDEN);
    // Both providers removed: no button on either page.
    let off = json!({"local_passwords": true, "staff_oidc": null, "citizen_oidc": null});
    let (status, view) = w.admin.put("/api/admin/identity", off).await;
    assert_eq!(
        (status, view["staff_oidc"].clone(), view["citizen_oidc"].clone()),
        (StatusCode::OK, Value::Null, Value::Null)
    );
    assert_eq!(
        w.browser().get("/api/public/login-options").await.1,
        json!({"staff_sso": null, "local_passwords": true, "citizen_login": null})
    );
    assert_eq!(
        w.count("SELECT COUNT(*) FROM settings WHERE key LIKE 'identity.staff.%'").await,
        0,
        "no secret left behind"
    );
}

// --- citizens ---------------------------------------------------------------------------------------

/// Every text value of every table, to show what the database holds.
async fn every_text(w: &World) -> String {
    let pool = w.server.server.store.pool();
    let tables: Vec<String> = sqlx::query("SELECT name FROM sqlite_master WHERE type = 'table'")
        .fetch_all(pool)
        .await
        .expect("tables")
        .iter()
        .map(|r| r.get::<String, _>("name"))
        .collect();
    assert!(tables.iter().any(|t| t == "appointments") && tables.iter().any(|t| t == "oidc_logins"), "{tables:?}");
    let mut all = String::new();
    for table in tables {
        // Every column as text (the Any driver reads no SQLite datetime; blobs are no text).
        let columns: Vec<String> = sqlx::query(&format!("SELECT name FROM pragma_table_info('{table}')"))
            .fetch_all(pool)
            .await
            .expect("columns")
            .iter()
            .map(|r| r.get::<String, _>("name"))
            .map(|c| format!("CASE WHEN typeof(\"{c}\") = 'blob' THEN '' ELSE CAST(\"{c}\" AS TEXT) END"))
            .collect();
        let sql = format!("SELECT {} FROM \"{table}\"", columns.join(", "));
        for row in sqlx::query(&sql).fetch_all(pool).await.expect("rows") {
            for i in 0..row.len() {
                if let Ok(text) = row.try_get::<String, _>(i) {
                    all.push_str(&text);
                    all.push('\n');
                }
            }
        }
    }
    all
}

async fn a_citizen_signs_in(id_token_claims: bool) {
    let w = world(Backend::Sqlite, id_token_claims).await;
    let mario = w.browser();
    assert_eq!(mario.get("/api/citizen/me").await.0, StatusCode::UNAUTHORIZED);
    let back = mario.sign_in("/auth/citizen/login?return=/prenota?servizio=abc", Answer::LogIn("mario")).await;
    assert_eq!(back, "/prenota?servizio=abc");
    let (status, me) = mario.get("/api/citizen/me").await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(
        me,
        json!({"given_name": "Gianmaria", "family_name": "Vattelapesca", "email": "gianmaria.v@example.it",
               "fiscal_code": FISCAL_CODE})
    );
    // Nothing of the citizen in the database: no name, no email, no fiscal code, no staff account.
    let stored = every_text(&w).await;
    for said in [FISCAL_CODE, "Gianmaria", "Vattelapesca", "gianmaria.v@example.it", "sub-mario"] {
        assert!(!stored.contains(said), "{said} is in the database");
    }
    assert!(stored.contains("anna.verdi") || stored.contains("admin@comune.example"), "the scan reads text");
    // A citizen is no staff member.
    assert_eq!(mario.me().await.0, StatusCode::UNAUTHORIZED);

    // Their appointments: the one they book while logged in, not another citizen's.
    assert_eq!(mario.get("/api/citizen/appointments").await.1, json!([]));
    let now = w.server.server.tokens.clock().now();
    let new = sportello_store::NewUser {
        email: "o@comune.example".into(),
        display_name: "Olga".into(),
        role: sportello_store::StaffRole::Official,
    };
    let official = w.server.server.store.create_user(&new, now).await.expect("official");
    let office = w
        .server
        .seed_office("Stato civile", &["08:00-18:00"], std::slice::from_ref(&official.id))
        .await
        .expect("office");
    let service = w
        .server
        .seed_service("Carta d'identità", sportello_store::Modes::Video, std::slice::from_ref(&office.id))
        .await
        .expect("service");
    w.server.seed_booking(&office.id, &service.id, &official.id, "OTHER1", 4 * 86_400).await.expect("booked");
    let (status, slots) = mario.get(&format!("/api/public/offices/{}/slots?service={}", office.id, service.id)).await;
    assert_eq!(status, StatusCode::OK, "{slots}");
    let start = slots["slots"][0]["start"].as_str().expect("a free slot").to_owned();
    let booking = json!({
        "office_id": office.id, "service_id": service.id, "start": start, "mode": "video",
        "first_name": "Gianmaria", "last_name": "Vattelapesca", "email": "gianmaria.v@example.it",
        "details": "", "lang": "it", "website": ""
    });
    let (status, booked) = mario.post("/api/public/appointments", booking).await;
    assert_eq!(status, StatusCode::CREATED, "{booked}");
    let mine_code = booked["code"].as_str().expect("code").to_owned();
    let (status, listed) = mario.get("/api/citizen/appointments").await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let listed = listed.as_array().expect("list").clone();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["code"], mine_code.as_str());
    assert_eq!(
        (listed[0]["office_name"].as_str(), listed[0]["service_name"].as_str()),
        (Some("Stato civile"), Some("Carta d'identità"))
    );
    assert_eq!((listed[0]["status"].as_str(), listed[0]["mode"].as_str()), (Some("confirmed"), Some("video")));
    let start = listed[0]["start"].as_str().expect("start");
    assert_eq!(start.parse::<jiff::Timestamp>().ok(), booked["start"].as_str().and_then(|s| s.parse().ok()));
    assert!(!every_text(&w).await.contains(FISCAL_CODE), "only the key is stored");

    // With App IO on, the citizen ticks the box and types no code: their own from SPID/CIE is
    // kept, for that booking only (IO itself is the App IO test's; here nothing listens).
    let io = json!({"enabled": true, "base_url": "http://127.0.0.1:9", "api_key": "0123456789abcdef0123456789abcdef"});
    let (status, view) = w.admin.put("/api/admin/appio", io).await;
    assert_eq!(status, StatusCode::OK, "{view}");
    let second = slots["slots"][1]["start"].as_str().expect("a second slot");
    let booking = json!({
        "office_id": office.id, "service_id": service.id, "start": second, "mode": "video",
        "first_name": "Gianmaria", "last_name": "Vattelapesca", "email": "gianmaria.v@example.it",
        "details": "", "lang": "it", "website": "", "appio": true
    });
    let (status, with_io) = mario.post("/api/public/appointments", booking).await;
    assert_eq!(status, StatusCode::CREATED, "{with_io}");
    assert_eq!(with_io["appio"], true, "{with_io}");
    let kept: Option<String> = sqlx::query("SELECT appio_fiscal_code FROM appointments WHERE code = $1")
        .bind(with_io["code"].as_str().expect("code"))
        .fetch_one(w.server.server.store.pool())
        .await
        .expect("row")
        .get(0);
    assert_eq!(kept.as_deref(), Some(FISCAL_CODE));
    assert_eq!(mario.get("/api/citizen/appointments").await.1.as_array().map(Vec::len), Some(2));

    // Logged out: the cookie goes.
    assert_eq!(mario.post("/api/citizen/logout", json!({})).await.0, StatusCode::NO_CONTENT);
    assert_eq!(mario.get("/api/citizen/me").await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(mario.get("/api/citizen/appointments").await.0, StatusCode::UNAUTHORIZED);

    // A staff session's cookie is no citizen's.
    let anna = w.browser();
    anna.sign_in("/auth/staff/login", Answer::LogIn("anna")).await;
    assert_eq!(anna.get("/api/citizen/me").await.0, StatusCode::UNAUTHORIZED);
}

/// The gateway sends the fiscal number from userinfo only (OIDC Core's code flow).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_citizen_signs_in_with_the_fiscal_code_from_userinfo() {
    a_citizen_signs_in(false).await;
}

/// The gateway puts it in the ID token, and has no userinfo endpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_citizen_signs_in_with_the_fiscal_code_in_the_id_token() {
    a_citizen_signs_in(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_fiscal_code_is_refused() {
    let w = world(Backend::Sqlite, false).await;
    let mallory = w.browser();
    let back = mallory.sign_in("/auth/citizen/login?return=/le-mie-prenotazioni", Answer::LogIn("mallory")).await;
    assert_eq!(back, "/le-mie-prenotazioni?login_error=invalid_fiscal_code");
    assert_eq!(mallory.get("/api/citizen/me").await.0, StatusCode::UNAUTHORIZED);
    // Cancelled at the gateway: back to the page with the provider's refusal; a return path to
    // another site is not followed.
    let quitter = w.browser();
    let back = quitter.sign_in("/auth/citizen/login?return=https://evil.example/", Answer::Cancel).await;
    assert_eq!(back, "/prenota?login_error=provider");
}
