//! The public live stream of a council session over HTTP (issue 5), without media: the state the
//! page polls, the WHIP encoder's authorization, the encoder token, WHEP's errors and limits
//! (RFC 9725 / WHEP draft statuses), and the `/live/{id}` page. Media through these endpoints is
//! the SFU's and the browser tests' business.

use std::time::Duration;

use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};
use sportello_backoffice::secrets::hash_password_blocking;
use sportello_backoffice::token::unix_now;
use sportello_rooms::live::{CHAMBER_PARTICIPANT, LiveState, LiveStatus, chamber_room};
use sportello_store::{NewUser, StaffRole, User};
use sportello_tests::server::{Claims, Role, TestServer};

const PASSWORD: &str = "diretta-di-prova-2027";
/// Enough of an SDP offer to pass the HTTP checks; what the SFU makes of it is not asserted here.
const OFFER: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n";

struct Live {
    server: TestServer,
    chair: Client,
    councillor: Client,
    admin: Client,
    chair_user: User,
    councillor_users: Vec<User>,
}

async fn staff(server: &TestServer, name: &str, role: StaffRole) -> (User, Client) {
    let store = &server.server.store;
    let new = NewUser { email: format!("{name}@comune.example"), display_name: name.to_owned(), role };
    let user = store.create_user(&new, 0).await.expect("user");
    let hash = hash_password_blocking(PASSWORD).expect("hash");
    store.set_password(&user.id, &hash, 0).await.expect("password");
    let client = Client::builder().cookie_store(true).build().expect("client");
    let login = client
        .post(format!("{}/api/auth/login", server.url()))
        .json(&json!({"email": new.email, "password": PASSWORD}))
        .send()
        .await
        .expect("login");
    assert_eq!(login.status(), 200, "{name} logs in");
    (user, client)
}

async fn live_with(adjust: impl FnOnce(&mut sportello_server::Config)) -> Live {
    let server = TestServer::start_with(adjust).await;
    let (chair_user, chair) = staff(&server, "presidente", StaffRole::Chair).await;
    let (anna, councillor) = staff(&server, "anna", StaffRole::Councillor).await;
    let (bruno, _) = staff(&server, "bruno", StaffRole::Councillor).await;
    let (_, admin) = staff(&server, "segretario", StaffRole::Admin).await;
    Live { server, chair, councillor, admin, chair_user, councillor_users: vec![anna, bruno] }
}

async fn live() -> Live {
    live_with(|_| {}).await
}

impl Live {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.url())
    }

    /// A session chaired by the chair with both councillors, called for in an hour; returns its id.
    async fn session(&self, title: &str) -> String {
        self.session_at(title, unix_now() + 3600).await
    }

    async fn session_at(&self, title: &str, scheduled_at: u64) -> String {
        let created: Value = self
            .chair
            .post(self.url("/api/council/sessions"))
            .json(&json!({
                "title": title,
                "body": "consiglio",
                "scheduled_at": scheduled_at,
                "chair_id": self.chair_user.id,
                "members": self.councillor_users.iter().map(|u| u.id.clone()).collect::<Vec<_>>(),
                "agenda": ["Approvazione del bilancio"],
            }))
            .send()
            .await
            .expect("create")
            .json()
            .await
            .expect("JSON");
        created["session"]["id"].as_str().unwrap_or_else(|| panic!("no session in {created}")).to_owned()
    }

    async fn set_stored_status(&self, id: &str, status: &str) {
        let response = self
            .chair
            .put(self.url(&format!("/api/council/sessions/{id}")))
            .json(&json!({
                "title": "Seduta conclusa",
                "body": "consiglio",
                "scheduled_at": unix_now() - 3600,
                "chair_id": self.chair_user.id,
                "status": status,
            }))
            .send()
            .await
            .expect("update");
        assert_eq!(response.status(), 200);
    }

    fn board(&self, id: &str, status: LiveStatus, item: Option<&str>, speaker: Option<&str>) {
        let state =
            LiveState { status, item: item.map(Into::into), speaker: speaker.map(Into::into), since: 1_700_000_000 };
        self.server.server.live.set(id, state);
    }

    async fn state(&self, id: &str) -> (StatusCode, Value) {
        let response = Client::new().get(self.url(&format!("/api/live/{id}"))).send().await.expect("state");
        (response.status(), response.json().await.expect("JSON"))
    }

    async fn encoder_token(&self, client: &Client, id: &str) -> Response {
        client.post(self.url(&format!("/api/council/sessions/{id}/encoder-token"))).send().await.expect("token")
    }

    async fn whip(&self, id: &str, token: Option<&str>) -> Response {
        let mut request = Client::new()
            .post(self.url(&format!("/api/live/{id}/whip")))
            .header("content-type", "application/sdp")
            .body(OFFER);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("whip")
    }

    async fn whep(&self, id: &str, content_type: &str, body: String) -> Response {
        Client::new()
            .post(self.url(&format!("/api/live/{id}/whep")))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("whep")
    }

    /// A participant token for any room.
    fn chamber_token_for(&self, room: &str) -> String {
        let claims = Claims::new(room, CHAMBER_PARTICIPANT, "Aula", Role::Participant, Duration::from_secs(3600));
        self.server.sign(&claims)
    }

    /// A join token for the chamber room as the encoder token would be, with another role.
    fn chamber_token(&self, id: &str, role: Role) -> String {
        let claims = Claims::new(&chamber_room(id), CHAMBER_PARTICIPANT, "Aula", role, Duration::from_secs(3600));
        self.server.sign(&claims)
    }
}

async fn error_code(response: Response) -> String {
    let body: Value = response.json().await.expect("a JSON error");
    assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    body["error"]["code"].as_str().unwrap_or_default().to_owned()
}

fn header(response: &Response, name: &str) -> String {
    response.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

// --- the state ------------------------------------------------------------------------------------

#[tokio::test]
async fn state_is_scheduled_then_follows_the_board() {
    let live = live().await;
    let id = live.session("Consiglio comunale di marzo").await;

    let (status, state) = live.state(&id).await;
    assert_eq!(status, 200);
    assert_eq!(state["status"], "scheduled");
    assert_eq!(state["title"], "Consiglio comunale di marzo");
    assert_eq!(state["body"], "consiglio");
    assert!(state["scheduled_at"].as_i64().is_some_and(|t| t > 0), "{state}");
    assert!(state["item"].is_null() && state["speaker"].is_null() && state["since"].is_null(), "{state}");

    live.board(&id, LiveStatus::Live, Some("Approvazione del bilancio"), Some("Anna"));
    let (_, state) = live.state(&id).await;
    assert_eq!(state["status"], "live");
    assert_eq!(state["item"], "Approvazione del bilancio");
    assert_eq!(state["speaker"], "Anna");
    assert_eq!(state["since"], 1_700_000_000);

    live.board(&id, LiveStatus::Suspended, Some("Approvazione del bilancio"), None);
    assert_eq!(live.state(&id).await.1["status"], "suspended");
    live.board(&id, LiveStatus::Ended, None, None);
    assert_eq!(live.state(&id).await.1["status"], "ended");
    // No board entry any more: not running, and the stored status says scheduled.
    live.server.server.live.remove(&id);
    assert_eq!(live.state(&id).await.1["status"], "scheduled");
}

/// Without a running room, the page must not promise «a breve» for a session called for next week,
/// nor for one whose room emptied without the chair's «Termina».
#[tokio::test]
async fn state_tells_starting_soon_from_later_and_interrupted_from_scheduled() {
    let live = live().await;
    let later = live.session("Consiglio di aprile").await;
    let (_, state) = live.state(&later).await;
    assert_eq!((state["status"].as_str(), state["starting_soon"].as_bool()), (Some("scheduled"), Some(false)));
    let soon = live.session_at("Consiglio di stasera", unix_now() + 600).await;
    let (_, state) = live.state(&soon).await;
    assert_eq!((state["status"].as_str(), state["starting_soon"].as_bool()), (Some("scheduled"), Some(true)));

    // Began (stored `live`), then everyone left: no board entry.
    let left = live.session("Consiglio di marzo").await;
    live.set_stored_status(&left, "live").await;
    let (_, state) = live.state(&left).await;
    assert_eq!((state["status"].as_str(), state["starting_soon"].as_bool()), (Some("interrupted"), Some(false)));
    // Not on air: a player is told to come back later, not that the session is over.
    let response = live.whep(&left, "application/sdp", OFFER.to_owned()).await;
    assert_eq!(response.status(), 409);
    assert_eq!(header(&response, "retry-after"), "5");
}

#[tokio::test]
async fn state_is_ended_from_the_stored_status_and_404_when_unknown() {
    let live = live().await;
    let id = live.session("Consiglio di febbraio").await;
    live.set_stored_status(&id, "ended").await;
    let (status, state) = live.state(&id).await;
    assert_eq!(status, 200);
    assert_eq!(state["status"], "ended");

    for unknown in ["nosuchsession", "..%2Fetc"] {
        let response = Client::new().get(live.url(&format!("/api/live/{unknown}"))).send().await.expect("state");
        assert_eq!(response.status(), 404, "{unknown}");
        assert_eq!(error_code(response).await, "not_found");
    }
}

// --- WHIP: the chamber encoder ----------------------------------------------------------------------

#[tokio::test]
async fn whip_refuses_anything_but_this_sessions_encoder_token() {
    let live = live().await;
    let id = live.session("Consiglio").await;
    let other = live.session("Giunta").await;
    let room = chamber_room(&id);

    // No token / a token that does not verify: 401 with a Bearer challenge.
    let expired = live.server.expired_token(&room, CHAMBER_PARTICIPANT);
    let forged = live.server.forged_token(&room, CHAMBER_PARTICIPANT);
    for (what, token) in
        [("none", None), ("garbage", Some("abc.def.ghi")), ("expired", Some(&*expired)), ("forged", Some(&*forged))]
    {
        let response = live.whip(&id, token).await;
        assert_eq!(response.status(), 401, "{what}");
        assert!(header(&response, "www-authenticate").starts_with("Bearer"), "{what}");
        assert_eq!(error_code(response).await, "unauthenticated", "{what}");
    }

    // Valid tokens that are not this session's encoder: 403.
    let viewer = live.chamber_token(&id, Role::Viewer);
    let other_encoder: Value =
        live.encoder_token(&live.chair, &other).await.json().await.expect("the other session's encoder token");
    let other_encoder = other_encoder["token"].as_str().expect("token").to_owned();
    let links: Value = live
        .chair
        .post(live.url(&format!("/api/council/sessions/{id}/links")))
        .send()
        .await
        .expect("links")
        .json()
        .await
        .expect("JSON");
    let councillor_join = links
        .as_array()
        .and_then(|l| l.iter().find(|l| l["role"] == "participant"))
        .and_then(|l| l["url"].as_str())
        .and_then(|u| u.split_once("t="))
        .expect("a councillor's join link")
        .1
        .to_owned();
    for (what, token) in [("viewer", viewer), ("other session", other_encoder), ("council join", councillor_join)] {
        let response = live.whip(&id, Some(&token)).await;
        assert_eq!(response.status(), 403, "{what}");
        assert_eq!(error_code(response).await, "forbidden", "{what}");
    }

    // DELETE is guarded the same way.
    let response =
        Client::new().delete(live.url(&format!("/api/live/{id}/whip/encoder-x"))).send().await.expect("delete");
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn encoder_token_is_for_the_chair_and_admins_and_passes_whip_auth() {
    let live = live().await;
    let id = live.session("Consiglio").await;

    let response = live.encoder_token(&live.councillor, &id).await;
    assert_eq!(response.status(), 403, "a councillor who is not the chair");
    let response = live.encoder_token(&Client::new(), &id).await;
    assert_eq!(response.status(), 401, "nobody logged in");

    for (who, client) in [("chair", &live.chair), ("admin", &live.admin)] {
        let response = live.encoder_token(client, &id).await;
        assert_eq!(response.status(), 200, "{who}");
        let body: Value = response.json().await.expect("JSON");
        assert_eq!(body["whip_url"], live.url(&format!("/api/live/{id}/whip")), "{who}");
        let expires = body["expires_at"].as_i64().expect("expires_at");
        let now = i64::try_from(unix_now()).expect("now");
        assert!((now + 24 * 3600 - 60..=now + 24 * 3600 + 60).contains(&expires), "{who}: {expires}");
        let token = body["token"].as_str().expect("token");

        // Past authorization: whatever the SFU answers, it is not an auth, session or type refusal.
        let response = live.whip(&id, Some(token)).await;
        let status = response.status().as_u16();
        assert!(![401, 403, 404, 415].contains(&status), "{who}: WHIP with the encoder token gave {status}");
        if status == 201 {
            assert!(header(&response, "location").starts_with(&format!("/api/live/{id}/whip/")));
            assert_eq!(header(&response, "content-type"), "application/sdp");
        }
        // An encoder session that is not the current one: 404, with the token accepted.
        let response = Client::new()
            .delete(live.url(&format!("/api/live/{id}/whip/encoder-stale")))
            .bearer_auth(token)
            .send()
            .await
            .expect("delete");
        assert_eq!(response.status(), 404, "{who}");
    }

    // An ended session takes no encoder any more.
    let token: Value = live.encoder_token(&live.admin, &id).await.json().await.expect("JSON");
    live.board(&id, LiveStatus::Ended, None, None);
    let response = live.whip(&id, token["token"].as_str()).await;
    assert_eq!(response.status(), 410);
}

// --- WHEP: the public ------------------------------------------------------------------------------

#[tokio::test]
async fn whep_statuses_follow_the_protocol() {
    let live = live().await;
    let id = live.session("Consiglio").await;

    // Unknown session.
    let response = live.whep("nosuchsession", "application/sdp", OFFER.into()).await;
    assert_eq!(response.status(), 404);
    assert_eq!(error_code(response).await, "not_found");
    // Wrong type, not an SDP, too large.
    let response = live.whep(&id, "text/plain", OFFER.into()).await;
    assert_eq!(response.status(), 415);
    assert_eq!(header(&response, "accept-post"), "application/sdp");
    assert_eq!(error_code(response).await, "unsupported_content_type");
    let response = live.whep(&id, "application/sdp", "hello".into()).await;
    assert_eq!(response.status(), 400);
    assert_eq!(error_code(response).await, "invalid_sdp");
    let response = live.whep(&id, "application/sdp", format!("{OFFER}{}", "a=x\r\n".repeat(20_000))).await;
    assert_eq!(response.status(), 413);

    // Not on air yet: 409 with Retry-After (WHEP draft, "Session Management").
    let response = live.whep(&id, "application/sdp; charset=utf-8", OFFER.into()).await;
    assert_eq!(response.status(), 409);
    assert!(header(&response, "retry-after").parse::<u32>().is_ok_and(|s| s > 0));
    assert_eq!(error_code(response).await, "not_on_air");
    // Over: 410, no point in retrying.
    live.board(&id, LiveStatus::Ended, None, None);
    let response = live.whep(&id, "application/sdp", OFFER.into()).await;
    assert_eq!(response.status(), 410);

    // No trickle ICE, no ICE restart: PATCH is 405 with Allow (RFC 9725 §4.3.1); so is any other
    // method on the endpoint but POST and OPTIONS.
    let http = Client::new();
    let response = http
        .patch(live.url(&format!("/api/live/{id}/whep/viewer-1")))
        .header("content-type", "application/trickle-ice-sdpfrag")
        .body("a=end-of-candidates\r\n")
        .send()
        .await
        .expect("patch");
    assert_eq!(response.status(), 405);
    assert!(header(&response, "allow").contains("DELETE"));
    assert_eq!(error_code(response).await, "method_not_allowed");
    let response = http.get(live.url(&format!("/api/live/{id}/whep"))).send().await.expect("get");
    assert_eq!(response.status(), 405);
    assert!(header(&response, "allow").contains("POST"));
    let response = http
        .request(reqwest::Method::OPTIONS, live.url(&format!("/api/live/{id}/whep")))
        .send()
        .await
        .expect("options");
    assert!(response.status().is_success());
    assert_eq!(header(&response, "accept-post"), "application/sdp");
    // Ending a viewer session that does not exist.
    let response = http.delete(live.url(&format!("/api/live/{id}/whep/viewer-1"))).send().await.expect("delete");
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn whep_viewers_are_capped_and_rate_limited_per_ip() {
    let live = live_with(|c| {
        c.max_live_viewers = 0;
        c.live_viewers_per_ip_minute = 2;
    })
    .await;
    let id = live.session("Consiglio").await;
    live.board(&id, LiveStatus::Live, None, None);
    for attempt in 0..2 {
        let response = live.whep(&id, "application/sdp", OFFER.into()).await;
        assert_eq!(response.status(), 503, "attempt {attempt}: the server is full");
        assert!(header(&response, "retry-after").parse::<u32>().is_ok());
        assert_eq!(error_code(response).await, "unavailable");
    }
    let response = live.whep(&id, "application/sdp", OFFER.into()).await;
    assert_eq!(response.status(), 429, "the third new viewer of this minute from one address");
    assert_eq!(error_code(response).await, "rate_limited");
}

/// The encoder token is a join token for `chamber-<id>`; neither it nor any token for a program
/// room opens a websocket room there (they belong to WHIP/WHEP).
#[tokio::test]
async fn http_rooms_cannot_be_entered_by_websocket() {
    let live = live().await;
    let id = live.session("Consiglio").await;
    for room in [chamber_room(&id), format!("live-{id}")] {
        let mut client = live.server.connect(&room).await;
        client.send_json(&json!({"v": 1, "type": "join", "token": live.chamber_token_for(&room)})).await;
        let reply = client.recv_json().await;
        assert_eq!(reply["type"], "error", "{room}: {reply}");
        assert_eq!(reply["code"], "forbidden", "{room}: {reply}");
    }
}

/// A viewer whose tab vanished without a DELETE is released by the SFU when its connection fails;
/// its seat must come back (otherwise `max_live_viewers` fills up with ghosts).
#[tokio::test]
async fn a_viewer_the_sfu_released_gives_its_seat_back() {
    let live = live_with(|c| c.max_live_viewers = 1).await;
    let id = live.session("Consiglio").await;
    live.board(&id, LiveStatus::Live, None, None);
    let sfu = live.server.server.rooms.sfu().clone();
    let program: std::sync::Arc<str> = format!("live-{id}").into();
    sfu.program_open(program.clone(), 2).await.expect("program");
    let offer = || async {
        let mut player = sportello_tests::rtc_client::Client::new("player").await.expect("client");
        player.receive_only(1, 1).expect("m-lines");
        player.offer().expect("offer").0
    };
    let first = live.whep(&id, "application/sdp", offer().await).await;
    assert_eq!(first.status(), 201);
    let location = header(&first, "location");
    let viewer = location.rsplit('/').next().expect("viewer id").to_owned();
    assert_eq!(live.whep(&id, "application/sdp", offer().await).await.status(), 503, "one seat, taken");
    // What the SFU does when the viewer's connection fails (no DELETE ever comes).
    sfu.leave(program.clone(), viewer.as_str().into()).await.expect("released");
    assert_eq!(live.whep(&id, "application/sdp", offer().await).await.status(), 201, "the seat is free again");
}

/// With TURN configured, the viewer's 201 carries one `Link: rel="ice-server"` per TURN URL with
/// credentials of the viewer's own (RFC 9725 §4.6).
#[tokio::test]
async fn whep_answers_carry_the_viewers_turn_servers() {
    let live = live_with(|c| {
        c.turn_urls =
            vec!["turn:203.0.113.11:3478?transport=udp".into(), "turns:turn.comune.example:443?transport=tcp".into()];
    })
    .await;
    let id = live.session("Consiglio").await;
    live.board(&id, LiveStatus::Live, None, None);
    let program: std::sync::Arc<str> = format!("live-{id}").into();
    live.server.server.rooms.sfu().program_open(program, 2).await.expect("program");
    let mut player = sportello_tests::rtc_client::Client::new("player").await.expect("client");
    player.receive_only(1, 1).expect("m-lines");
    let response = live.whep(&id, "application/sdp", player.offer().expect("offer").0).await;
    assert_eq!(response.status(), 201);
    let viewer = header(&response, "location").rsplit('/').next().expect("viewer id").to_owned();
    let links: Vec<&str> = response.headers().get_all("link").iter().filter_map(|v| v.to_str().ok()).collect();
    assert_eq!(links.len(), 2, "{links:?}");
    assert!(links[0].starts_with("<turn:203.0.113.11:3478?transport=udp>; rel=\"ice-server\"; username=\""));
    assert!(links[1].starts_with("<turns:turn.comune.example:443?transport=tcp>; rel=\"ice-server\""));
    assert!(
        links
            .iter()
            .all(|l| l.contains(&format!(":{viewer}\"; credential=\"")) && l.ends_with("credential-type=\"password\""))
    );
    // `OPTIONS` on the endpoint hands the same servers out before any offer, with a credential of
    // its own: the live page's first offer already gathers relay candidates.
    let response = Client::new()
        .request(reqwest::Method::OPTIONS, live.url(&format!("/api/live/{id}/whep")))
        .send()
        .await
        .expect("options");
    assert!(response.status().is_success());
    let early: Vec<&str> = response.headers().get_all("link").iter().filter_map(|v| v.to_str().ok()).collect();
    assert_eq!(early.len(), 2, "{early:?}");
    assert!(early[1].starts_with("<turns:turn.comune.example:443?transport=tcp>; rel=\"ice-server\"; username=\""));
    assert!(early.iter().all(|l| l.contains(":viewer-") && !l.contains(&format!(":{viewer}\""))), "{early:?}");
}

// --- the page --------------------------------------------------------------------------------------

#[tokio::test]
async fn the_live_page_is_served_for_any_session() {
    let live = live().await;
    let id = live.session("Consiglio").await;
    // An unknown session gets the page too: it asks the API and says the session does not exist.
    for path in [format!("/live/{id}"), "/live/nosuchsession".to_owned()] {
        let response = Client::new().get(live.url(&path)).send().await.expect("page");
        assert_eq!(response.status(), 200, "{path}");
        assert!(header(&response, "content-type").starts_with("text/html"), "{path}");
        let csp = header(&response, "content-security-policy");
        assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), "{path}");
        let html = response.text().await.expect("body");
        assert!(html.contains("/web/public/live.js") && html.contains("lang=\"it\""), "{path}");
        assert!(!html.contains("<script>"), "no inline script");
    }
    for asset in ["/web/public/live.js", "/web/public/live.css"] {
        assert_eq!(Client::new().get(live.url(asset)).send().await.expect("asset").status(), 200, "{asset}");
    }
}
