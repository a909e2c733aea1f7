//! The pre-join network check over HTTP (issue 13), without media: the GET hands out TURN with a
//! credential of the probe's own, offers get the SFU's answer and make throwaway peers of the probe
//! program (gone with the DELETE, and the program with them), and the limits and errors: 429 after
//! `network_checks_per_ip_minute`, 415, 400, 404 for unknown, used-up and expired probes. Whether
//! a browser connects through each path is the e2e scenario `network_check`'s business.

use reqwest::{Client, Response, StatusCode};
use serde_json::Value;
use sportello_rooms::live::NETWORK_CHECK_PROGRAM;
use sportello_rooms::turn::{TurnSecret, credentials};
use sportello_tests::server::{Clock, TestServer};

const SECRET: &str = "0123456789abcdef0123456789abcdef";
const TURNS: &str = "turns:turn.comune.example:443?transport=tcp";

async fn start(server: &TestServer) -> Response {
    Client::new().get(format!("{}/api/network-check", server.url())).send().await.expect("GET")
}

async fn probe(server: &TestServer) -> String {
    let response = start(server).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    body["probe"].as_str().expect("probe id").to_owned()
}

async fn post(server: &TestServer, probe: &str, content_type: &str, body: String) -> Response {
    Client::new()
        .post(format!("{}/api/network-check/{probe}", server.url()))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("POST")
}

/// A complete offer with one receive-only audio m-line, as the page's probes make.
async fn audio_offer() -> String {
    let mut client = sportello_tests::rtc_client::Client::new("probe").await.expect("client");
    client.receive_only(1, 0).expect("m-line");
    client.offer().expect("offer").0
}

async fn error_code(response: Response) -> String {
    let body: Value = response.json().await.expect("error body");
    body["error"]["code"].as_str().unwrap_or_default().to_owned()
}

async fn probe_peers(server: &TestServer) -> Vec<String> {
    match server.server.sfu.participants(NETWORK_CHECK_PROGRAM.into()).await {
        Ok(ids) => ids.iter().map(|p| p.to_string()).collect(),
        Err(_) => Vec::new(),
    }
}

#[tokio::test]
async fn the_check_hands_out_turn_with_a_credential_of_its_own() {
    let server = TestServer::start_with(|c| {
        c.turn_urls = vec!["turn:203.0.113.11:3478?transport=udp".into(), TURNS.into()];
        c.turn_secret = TurnSecret::new(SECRET);
    })
    .await;
    let response = start(&server).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.expect("json");
    let probe = body["probe"].as_str().expect("probe");
    let servers = body["ice_servers"].as_array().expect("ice_servers");
    assert_eq!(servers.len(), 1, "{body}");
    assert_eq!(servers[0]["urls"], serde_json::json!(["turn:203.0.113.11:3478?transport=udp", TURNS]));
    // coturn's REST credential: `<expiry>:<probe>`, HMAC-SHA1 of it with the shared secret.
    let username = servers[0]["username"].as_str().expect("username");
    let (expiry, who) = username.split_once(':').expect("expiry:id");
    assert_eq!(who, probe);
    let expiry: i64 = expiry.parse().expect("unix expiry");
    let secret = TurnSecret::new(SECRET).expect("secret");
    assert_eq!(servers[0]["credential"], credentials(&secret, expiry, probe).1);

    let plain = TestServer::start().await;
    let body: Value = start(&plain).await.json().await.expect("json");
    assert_eq!(body["ice_servers"], serde_json::json!([]), "no TURN configured: no servers");
    assert!(body["probe"].as_str().is_some_and(|p| !p.is_empty()));
}

#[tokio::test]
async fn offers_make_throwaway_peers_that_the_delete_removes() {
    let server = TestServer::start().await;
    let probe = probe(&server).await;
    for n in 1..=3 {
        let response = post(&server, &probe, "application/sdp", audio_offer().await).await;
        assert_eq!(response.status(), 201, "offer {n}");
        assert_eq!(response.headers()["content-type"], "application/sdp");
        let answer = response.text().await.expect("answer");
        assert!(answer.starts_with("v=0") && answer.contains("a=candidate:"), "an answer with the SFU's candidate");
        assert!(answer.contains("m=audio"), "{answer}");
    }
    let mut peers = probe_peers(&server).await;
    peers.sort();
    assert_eq!(peers, (1..=3).map(|n| format!("{probe}-{n}")).collect::<Vec<_>>());
    let fourth = post(&server, &probe, "application/sdp", audio_offer().await).await;
    assert_eq!(fourth.status(), 404, "three offers per probe");

    let url = format!("{}/api/network-check/{probe}", server.url());
    let done = Client::new().delete(&url).send().await.expect("DELETE");
    assert_eq!(done.status(), StatusCode::NO_CONTENT);
    assert!(probe_peers(&server).await.is_empty(), "the probe's peers are gone");
    let stats = server.server.sfu.stats().await.expect("stats");
    assert_eq!((stats.rooms, stats.participants, stats.published_tracks), (0, 0, 0), "nothing kept: {stats:?}");
    assert_eq!(Client::new().delete(&url).send().await.expect("DELETE").status(), 404);
    let after = post(&server, &probe, "application/sdp", audio_offer().await).await;
    assert_eq!(after.status(), 404, "an ended probe takes no offer");
}

#[tokio::test]
async fn checks_are_rate_limited_per_address() {
    let server = TestServer::start_with(|c| c.network_checks_per_ip_minute = 3).await;
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(start(&server).await.status());
    }
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let refused = start(&server).await;
    assert_eq!(refused.status(), 429, "the fourth check of this minute from one address");
    assert_eq!(refused.headers()["retry-after"], "60");
    assert_eq!(error_code(refused).await, "rate_limited");
}

#[tokio::test]
async fn bad_offers_and_unknown_probes_get_clear_errors_and_leave_nothing() {
    let server = TestServer::start().await;
    let probe = probe(&server).await;

    let response = post(&server, &probe, "application/json", "{}".into()).await;
    assert_eq!(response.status(), 415);
    assert_eq!(response.headers()["accept-post"], "application/sdp");
    assert_eq!(error_code(response).await, "unsupported_content_type");

    let response = post(&server, &probe, "application/sdp", "hello".into()).await;
    assert_eq!(response.status(), 400);
    assert_eq!(error_code(response).await, "invalid_sdp");

    // SDP the SFU cannot answer: no m-line at all.
    let no_media = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n";
    for _ in 0..3 {
        let response = post(&server, &probe, "application/sdp", no_media.into()).await;
        assert_eq!(response.status(), 400);
        assert_eq!(error_code(response).await, "invalid_sdp");
    }
    let stats = server.server.sfu.stats().await.expect("stats");
    assert_eq!((stats.rooms, stats.participants, stats.published_tracks), (0, 0, 0), "nothing kept: {stats:?}");
    // Refused offers do not use up the probe.
    assert_eq!(post(&server, &probe, "application/sdp", audio_offer().await).await.status(), 201);

    let response = post(&server, "probe-0000", "application/sdp", audio_offer().await).await;
    assert_eq!(response.status(), 404);
    assert_eq!(error_code(response).await, "not_found");
}

#[tokio::test]
async fn a_probe_expires_a_minute_after_its_check_started() {
    let clock = Clock::offset(0);
    let server = TestServer::start_at(clock.clone(), |_| {}).await;
    let probe = probe(&server).await;
    clock.advance(61);
    let response = post(&server, &probe, "application/sdp", audio_offer().await).await;
    assert_eq!(response.status(), 404);
    assert!(probe_peers(&server).await.is_empty());
}

#[tokio::test]
async fn the_openapi_document_lists_the_check() {
    let server = TestServer::start().await;
    let doc: Value = Client::new()
        .get(format!("{}/api/openapi.json", server.url()))
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("json");
    let paths = &doc["paths"];
    assert!(paths["/api/network-check"]["get"].is_object());
    assert!(paths["/api/network-check/{probe}"]["post"].is_object());
    assert!(paths["/api/network-check/{probe}"]["delete"].is_object());
}
