//! The signaling protocol (`docs/signaling.md`) over real websockets to an in-process server.
//!
//! Assertions are about what a browser would see: messages, error codes, close codes, and — after
//! every bad input — that the rest of the room is unaffected (a later `mute` still arrives, and no
//! spurious `participant_joined`/`participant_left` precedes it).

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sportello_tests::server::{Role, TEST_GRACE, TestServer, WsClient};

const ROOM: &str = "ufficio-anagrafe";

/// Nobody joined or left, as far as these messages tell.
fn assert_no_membership_change(messages: &[Value]) {
    for message in messages {
        assert!(
            !matches!(message["type"].as_str(), Some("participant_joined" | "participant_left")),
            "the room saw {message}"
        );
    }
}

fn types(messages: &[Value]) -> Vec<&str> {
    messages.iter().map(|m| m["type"].as_str().unwrap_or("?")).collect()
}

/// A room with an observer `a` and a `b` whose mutes prove the room still works.
struct Room {
    server: TestServer,
    a: WsClient,
    b: WsClient,
    /// Toggled by every liveness check, so each check is a real state change.
    muted: bool,
}

impl Room {
    async fn new() -> Room {
        Room::on(TestServer::start_with(|c| c.reconnect_grace = Duration::from_secs(5)).await).await
    }

    async fn on(server: TestServer) -> Room {
        let (a, _) = server.join(ROOM, "anna", Role::Host).await;
        let (b, welcome) = server.join(ROOM, "bruno", Role::Participant).await;
        assert_eq!(welcome["participants"][0]["id"], "anna");
        let mut room = Room { server, a, b, muted: false };
        let joined = room.a.recv_until("participant_joined").await;
        assert_eq!(joined["participant"]["id"], "bruno");
        room
    }

    /// Joins a third participant and lets `a` and `b` see it arrive.
    async fn join(&mut self, identity: &str, role: Role) -> WsClient {
        let (c, _) = self.server.join(ROOM, identity, role).await;
        for observer in [&mut self.a, &mut self.b] {
            let joined = observer.recv_until("participant_joined").await;
            assert_eq!(joined["participant"]["id"], identity);
        }
        c
    }

    /// `b` mutes (or unmutes); `a` must receive exactly that, with no one joining or leaving before.
    async fn assert_alive(&mut self) {
        self.muted = !self.muted;
        self.b.mute("microphone", self.muted).await;
        let expected =
            json!({"v": 1, "type": "mute", "participant_id": "bruno", "source": "microphone", "muted": self.muted});
        let mut seen = Vec::new();
        loop {
            let (skipped, mute) = self.a.recv_until_collect("mute").await;
            assert_no_membership_change(&skipped);
            seen.extend(skipped);
            // Mutes of others (e.g. from the fuzzer) may come first.
            if mute["participant_id"] == "bruno" {
                assert_eq!(mute, expected, "after {seen:?}");
                return;
            }
            seen.push(mute);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Happy path

#[tokio::test]
async fn two_participants_join_mute_and_leave() {
    let server = TestServer::start().await;
    let (mut anna, welcome) = server.join(ROOM, "anna", Role::Host).await;
    assert_eq!(
        welcome,
        json!({
            "v": 1, "type": "welcome", "room": ROOM,
            "you": {"id": "anna", "name": "Anna", "role": "host", "tracks": [], "muted": {}},
            "participants": [], "ice_servers": [], "reconnected": false
        })
    );

    let (mut bruno, welcome) = server.join(ROOM, "bruno", Role::Participant).await;
    assert_eq!(welcome["you"]["id"], "bruno");
    assert_eq!(welcome["you"]["role"], "participant");
    assert_eq!(welcome["reconnected"], false);
    assert_eq!(
        welcome["participants"],
        json!([{"id": "anna", "name": "Anna", "role": "host", "tracks": [], "muted": {}}])
    );
    let joined = anna.recv_until("participant_joined").await;
    assert_eq!(
        joined,
        json!({"v": 1, "type": "participant_joined",
               "participant": {"id": "bruno", "name": "Bruno", "role": "participant", "tracks": [], "muted": {}}})
    );

    anna.mute("microphone", true).await;
    let mute = bruno.recv_until("mute").await;
    assert_eq!(mute, json!({"v": 1, "type": "mute", "participant_id": "anna", "source": "microphone", "muted": true}));

    // A latecomer sees the mute state in its welcome.
    let (mut carla, welcome) = server.join(ROOM, "carla", Role::Viewer).await;
    let anna_seen = welcome["participants"].as_array().unwrap().iter().find(|p| p["id"] == "anna").unwrap().clone();
    assert_eq!(anna_seen["muted"], json!({"microphone": true}));
    assert_eq!(types(welcome["participants"].as_array().unwrap()).len(), 2);

    bruno.leave().await;
    let closed = bruno.expect_closed(1000).await;
    assert!(types(&closed.before).iter().all(|t| *t != "error"), "{closed:?}");
    for observer in [&mut anna, &mut carla] {
        let (skipped, left) = observer.recv_until_collect("participant_left").await;
        assert_eq!(left, json!({"v": 1, "type": "participant_left", "participant_id": "bruno"}));
        // Anna never receives her own mute back.
        assert!(!skipped.iter().any(|m| m["type"] == "mute"), "{skipped:?}");
    }
}

#[tokio::test]
async fn welcome_carries_the_configured_ice_servers() {
    let server = TestServer::start_with(|c| {
        c.ice_servers = vec![sportello_server::config::IceServer {
            urls: vec!["stun:stun.comune.example:3478".into()],
            username: None,
            credential: None,
        }]
    })
    .await;
    let (_anna, welcome) = server.join(ROOM, "anna", Role::Host).await;
    assert_eq!(welcome["ice_servers"], json!([{"urls": ["stun:stun.comune.example:3478"]}]));
}

#[tokio::test]
async fn welcome_adds_a_turn_server_with_the_participants_own_expiring_credential() {
    let server = TestServer::start_with(|c| {
        c.ice_servers = vec![sportello_server::config::IceServer {
            urls: vec!["stun:stun.comune.example:3478".into()],
            username: None,
            credential: None,
        }];
        c.turn_urls = vec!["turns:turn.comune.example:443?transport=tcp".into()];
        c.turn_ttl = Duration::from_secs(3600);
    })
    .await;
    // No secret given: the server created one in its data directory.
    let secret = std::fs::read_to_string(server.data_dir().join("turn.secret")).expect("turn.secret");
    let (_anna, welcome) = server.join(ROOM, "anna", Role::Host).await;
    let (_marco, other) = server.join(ROOM, "marco", Role::Participant).await;
    let servers = welcome["ice_servers"].as_array().expect("ice_servers");
    assert_eq!(servers.len(), 2, "{servers:?}");
    assert_eq!(servers[0], json!({"urls": ["stun:stun.comune.example:3478"]}));
    assert_eq!(servers[1]["urls"], json!(["turns:turn.comune.example:443?transport=tcp"]));
    let username = servers[1]["username"].as_str().expect("username");
    let (expiry, who) = username.split_once(':').expect("expiry:participant");
    assert_eq!(who, "anna");
    let expiry: i64 = expiry.parse().expect("unix expiry");
    let now = sportello_backoffice::token::unix_now() as i64;
    assert!((now + 3590..=now + 3610).contains(&expiry), "{expiry} vs {now}");
    let secret = sportello_rooms::turn::TurnSecret::new(&secret).expect("secret");
    let (_, credential) = sportello_rooms::turn::credentials(&secret, expiry, "anna");
    assert_eq!(servers[1]["credential"], json!(credential), "what coturn computes from the shared secret");
    assert_ne!(other["ice_servers"][1]["credential"], servers[1]["credential"]);
}

#[tokio::test]
async fn rooms_are_separate_and_disappear_when_empty() {
    let server = TestServer::start().await;
    let (mut anna, _) = server.join("room-1", "anna", Role::Host).await;
    let (mut bruno, welcome) = server.join("room-2", "bruno", Role::Host).await;
    assert_eq!(welcome["participants"], json!([]));
    bruno.mute("camera", true).await;
    assert!(anna.collect_for(Duration::from_millis(200)).await.is_empty());
    assert_eq!(server.server.rooms.len(), 2);

    anna.leave().await;
    anna.expect_closed(1000).await;
    bruno.leave().await;
    bruno.expect_closed(1000).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while !server.server.rooms.is_empty() {
        assert!(Instant::now() < deadline, "rooms still open: {}", server.server.rooms.len());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // And a room can be opened again afterwards.
    let (_anna, welcome) = server.join("room-1", "anna", Role::Host).await;
    assert_eq!(welcome["reconnected"], false);
}

#[tokio::test]
async fn error_messages_are_italian_by_default_and_english_on_request() {
    let server = TestServer::start().await;
    let mut it = server.connect(ROOM).await;
    it.send_text("nope").await;
    let error = it.expect_error("invalid_json").await;
    assert_eq!(error["message"], "Messaggio non valido.");
    let mut en = server.connect_lang(ROOM, "en").await;
    en.send_text("nope").await;
    let error = en.expect_error("invalid_json").await;
    assert_eq!(error["message"], "Invalid message.");
}

// ---------------------------------------------------------------------------------------------
// Bad input that keeps the connection open

#[tokio::test]
async fn malformed_messages_get_errors_and_the_socket_stays_usable() {
    let mut room = Room::new().await;
    let mut carla = room.join("carla", Role::Participant).await;
    let cases = [
        ("{not json", "invalid_json"),
        ("[]", "invalid_json"),
        (r#"{"v":1,"type":"mute","source":"microphone"}"#, "invalid_json"),
        (r#"{"v":1,"type":"mute","source":"trumpet","muted":true}"#, "invalid_json"),
        (r#"{"type":"mute","source":"microphone","muted":true}"#, "invalid_json"),
        (r#"{"v":1,"type":"dance"}"#, "unknown_type"),
        (r#"{"v":2,"type":"mute","source":"microphone","muted":true}"#, "unsupported_version"),
    ];
    for (text, code) in cases {
        carla.send_text(text).await;
        carla.expect_error(code).await;
        room.assert_alive().await;
    }
    // The connection still works for carla herself: her mute reaches the others.
    carla.mute("camera", true).await;
    assert_eq!(room.a.recv_until("mute").await["participant_id"], "carla");
}

#[tokio::test]
async fn ping_is_answered_with_pong_before_and_after_join() {
    let mut room = Room::new().await;
    let mut early = room.server.connect(ROOM).await;
    early.send_text(r#"{"v":1,"type":"ping"}"#).await;
    assert_eq!(early.recv_until("pong").await["v"], 1);
    let mut carla = room.join("carla", Role::Participant).await;
    carla.send_text(r#"{"v":1,"type":"ping"}"#).await;
    carla.recv_until("pong").await;
    // Nobody else hears of it.
    room.assert_alive().await;
}

#[tokio::test]
async fn binary_frames_are_refused_but_the_socket_stays_open() {
    let mut room = Room::new().await;
    let mut carla = room.join("carla", Role::Participant).await;
    carla.send_binary(vec![0, 159, 146, 150, 255]).await;
    carla.expect_error("invalid_json").await;
    room.assert_alive().await;
    carla.mute("microphone", true).await;
    assert_eq!(room.b.recv_until("mute").await["participant_id"], "carla");
}

#[tokio::test]
async fn messages_before_join_are_refused_then_join_works() {
    let mut room = Room::new().await;
    let mut carla = room.server.connect(ROOM).await;
    carla.mute("microphone", true).await;
    carla.expect_error("not_joined").await;
    carla.send_json(&json!({"v": 1, "type": "leave"})).await;
    carla.expect_error("not_joined").await;
    room.assert_alive().await;
    // Not fatal: the same socket may still join.
    let welcome = carla.join(&room.server.token(ROOM, "carla", Role::Participant)).await;
    assert_eq!(welcome["participants"].as_array().unwrap().len(), 2);
    assert_eq!(room.a.recv_until("participant_joined").await["participant"]["id"], "carla");
}

#[tokio::test]
async fn a_second_join_on_the_same_socket_is_refused() {
    let mut room = Room::new().await;
    let mut carla = room.join("carla", Role::Participant).await;
    let token = room.server.token(ROOM, "carla", Role::Participant);
    carla.send_json(&json!({"v": 1, "type": "join", "token": token})).await;
    carla.expect_error("already_joined").await;
    // Even as somebody else: one websocket, one participant.
    let other = room.server.token(ROOM, "dario", Role::Host);
    carla.send_json(&json!({"v": 1, "type": "join", "token": other})).await;
    carla.expect_error("already_joined").await;
    room.assert_alive().await;
    carla.mute("camera", false).await;
    assert_eq!(room.a.recv_until("mute").await["participant_id"], "carla");
}

#[tokio::test]
async fn answers_without_an_outstanding_offer_are_wrong_state() {
    let mut room = Room::new().await;
    let mut carla = room.join("carla", Role::Participant).await;
    carla.send_json(&json!({"v": 1, "type": "answer", "pc": "subscribe", "sdp": "v=0\r\n"})).await;
    carla.expect_error("wrong_state").await;
    // The publish connection is offered by the browser: answering on it is always wrong.
    carla.send_json(&json!({"v": 1, "type": "answer", "pc": "publish", "sdp": "v=0\r\n"})).await;
    carla.expect_error("wrong_state").await;
    // And the server never takes an offer for the subscribe connection.
    carla.send_json(&json!({"v": 1, "type": "offer", "pc": "subscribe", "sdp": "v=0\r\n", "tracks": []})).await;
    carla.expect_error("wrong_state").await;
    room.assert_alive().await;
}

#[tokio::test]
async fn viewers_may_not_publish() {
    let mut room = Room::new().await;
    let mut vera = room.join("vera", Role::Viewer).await;
    let offer = json!({"v": 1, "type": "offer", "pc": "publish", "sdp": "v=0\r\n",
                       "tracks": [{"mid": "0", "source": "camera"}]});
    vera.send_json(&offer).await;
    vera.expect_error("forbidden").await;
    room.assert_alive().await;
    // Still connected: the viewer keeps receiving the room.
    room.b.mute("camera", true).await;
    assert_eq!(vera.recv_until("mute").await["participant_id"], "bruno");
}

#[tokio::test]
async fn garbage_sdp_is_invalid_sdp_and_the_socket_stays_usable() {
    let mut room = Room::new().await;
    let mut carla = room.join("carla", Role::Participant).await;
    let offer = json!({"v": 1, "type": "offer", "pc": "publish", "sdp": "this is not SDP",
                       "tracks": [{"mid": "0", "source": "microphone"}]});
    carla.send_json(&offer).await;
    let (skipped, error) = carla.recv_until_collect("error").await;
    assert_eq!(error["code"], "invalid_sdp");
    assert!(!skipped.iter().any(|m| m["type"] == "answer"), "{skipped:?}");
    room.assert_alive().await;
    carla.mute("microphone", true).await;
    assert_eq!(room.a.recv_until("mute").await["participant_id"], "carla");
}

#[tokio::test]
async fn candidates_garbage_is_refused_and_end_of_candidates_is_ignored() {
    let mut room = Room::new().await;
    let mut carla = room.join("carla", Role::Participant).await;
    carla
        .send_json(&json!({"v": 1, "type": "candidate", "pc": "publish",
                           "candidate": {"candidate": "candidate:garbage", "sdpMid": "0", "sdpMLineIndex": 0}}))
        .await;
    carla.expect_error("invalid_candidate").await;
    carla.send_json(&json!({"v": 1, "type": "candidate", "pc": "publish", "candidate": {"candidate": ""}})).await;
    let silence = carla.collect_for(Duration::from_millis(200)).await;
    assert!(silence.is_empty(), "end of candidates got a reply: {silence:?}");
    room.assert_alive().await;
}

#[tokio::test]
async fn random_input_never_breaks_the_room() {
    let mut room = Room::new().await;
    let mut carla = room.join("carla", Role::Participant).await;
    let valid = [
        r#"{"v":1,"type":"mute","source":"microphone","muted":true}"#,
        r#"{"v":1,"type":"candidate","pc":"publish","candidate":{"candidate":"candidate:1 1 udp 1 127.0.0.1 9 typ host","sdpMid":"0","sdpMLineIndex":0}}"#,
        r#"{"v":1,"type":"offer","pc":"publish","sdp":"v=0","tracks":[{"mid":"0","source":"camera"}]}"#,
        r#"{"v":1,"type":"answer","pc":"subscribe","sdp":"v=0"}"#,
    ];
    // A small deterministic mutation fuzzer (xorshift), so a failure reproduces.
    let mut seed: u64 = 0x5eed_cafe_f00d_d00d;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut sent = 0;
    for round in 0..300 {
        let mut bytes = valid[round % valid.len()].as_bytes().to_vec();
        for _ in 0..(next() % 4 + 1) {
            let at = (next() as usize) % bytes.len();
            match next() % 3 {
                0 => bytes[at] = (next() & 0x7f) as u8,
                1 => bytes.truncate(at.max(1)),
                _ => bytes.insert(at, b"{}[]\",:\\0"[(next() % 9) as usize]),
            }
        }
        let Ok(text) = String::from_utf8(bytes) else { continue };
        // Never let the fuzzer send a leave or a join: they are valid and change the room.
        if text.contains("leave") || text.contains("join") {
            continue;
        }
        carla.send_text(&text).await;
        sent += 1;
    }
    assert!(sent > 200);
    room.assert_alive().await;
    // carla's socket is still open and answered with errors or nothing, never a close.
    carla.send_text("{").await;
    let (_skipped, error) = carla.recv_until_collect("error").await;
    assert!(error["code"].is_string());
}

// ---------------------------------------------------------------------------------------------
// Fatal errors: exact code, exact close code, and the room does not notice

#[tokio::test]
async fn oversize_frames_close_with_1009() {
    let mut room = Room::new().await;
    let mut carla = room.join("carla", Role::Participant).await;
    let huge = json!({"v": 1, "type": "offer", "pc": "publish", "sdp": "x".repeat(70 * 1024), "tracks": []});
    carla.send_json(&huge).await;
    let closed = carla.expect_closed(1009).await;
    assert_eq!(types(&closed.before), vec!["error"]);
    assert_eq!(closed.before[0]["code"], "too_large");
    room.assert_alive().await;

    // Before join as well; exactly 64 KiB is still accepted (and answered as a message).
    let mut dario = room.server.connect(ROOM).await;
    dario.send_text(&format!("{{}}{}", " ".repeat(65536 - 2))).await;
    dario.expect_error("invalid_json").await;
    dario.send_text(&"y".repeat(65537)).await;
    let closed = dario.expect_closed(1009).await;
    assert_eq!(closed.before[0]["code"], "too_large");
    room.assert_alive().await;
}

async fn assert_refused(room: &mut Room, url_room: &str, token: &str, code: &str, close: u16) {
    let mut intruder = WsClient::connect(&room.server.ws_url(url_room)).await;
    intruder.send_json(&json!({"v": 1, "type": "join", "token": token})).await;
    let closed = intruder.expect_closed(close).await;
    assert_eq!(types(&closed.before), vec!["error"], "{closed:?}");
    assert_eq!(closed.before[0]["code"], code, "{closed:?}");
    room.assert_alive().await;
}

#[tokio::test]
async fn bad_tokens_are_refused_with_their_code_and_nobody_notices() {
    let mut room = Room::new().await;
    let forged = room.server.forged_token(ROOM, "mallory");
    assert_refused(&mut room, ROOM, &forged, "token_invalid", 4001).await;
    assert_refused(&mut room, ROOM, "not.a.token", "token_invalid", 4001).await;
    assert_refused(&mut room, ROOM, "", "token_invalid", 4001).await;
    let expired = room.server.expired_token(ROOM, "mallory");
    assert_refused(&mut room, ROOM, &expired, "token_expired", 4001).await;
    let early = room.server.not_yet_valid_token(ROOM, "mallory");
    assert_refused(&mut room, ROOM, &early, "token_not_yet_valid", 4001).await;
    let elsewhere = room.server.token("ufficio-tributi", "mallory", Role::Host);
    assert_refused(&mut room, ROOM, &elsewhere, "wrong_room", 4003).await;
    // A forged token for this room via another room's URL still says only "invalid".
    assert_refused(&mut room, "ufficio-tributi", &forged, "token_invalid", 4001).await;
    // A forged token with the identity of someone present must not replace them.
    let impostor = room.server.forged_token(ROOM, "bruno");
    assert_refused(&mut room, ROOM, &impostor, "token_invalid", 4001).await;
}

#[tokio::test]
async fn a_full_room_refuses_with_4029() {
    let server = TestServer::start_with(|c| {
        c.max_participants = 2;
        c.reconnect_grace = Duration::from_secs(5);
    })
    .await;
    let mut room = Room::on(server).await;
    let token = room.server.token(ROOM, "carla", Role::Viewer);
    assert_refused(&mut room, ROOM, &token, "room_full", 4029).await;
    // An identity already in the room is not a new participant: it may always come back.
    let (mut bruno2, welcome) = room.server.join(ROOM, "bruno", Role::Participant).await;
    assert_eq!(welcome["reconnected"], true);
    room.b.expect_closed(4009).await;
    bruno2.mute("microphone", true).await;
    assert_eq!(room.a.recv_until("mute").await["participant_id"], "bruno");
}

#[tokio::test]
async fn a_connection_that_never_joins_is_closed_after_10_seconds() {
    let mut room = Room::new().await;
    let mut idle = room.server.connect(ROOM).await;
    let opened = Instant::now();
    // Messages other than join do not count.
    idle.mute("microphone", true).await;
    idle.expect_error("not_joined").await;
    let closed = idle.expect_closed_within(1008, Duration::from_secs(15)).await;
    let waited = opened.elapsed();
    assert!(waited >= Duration::from_millis(9_500) && waited < Duration::from_secs(12), "closed after {waited:?}");
    assert!(closed.before.is_empty(), "{closed:?}");
    room.assert_alive().await;
}

#[tokio::test]
async fn shutdown_closes_every_websocket_with_1001() {
    let server = TestServer::start().await;
    let (mut anna, _) = server.join(ROOM, "anna", Role::Host).await;
    let mut waiting = server.connect(ROOM).await;
    server.shutdown().await;
    anna.expect_closed(1001).await;
    waiting.expect_closed(1001).await;
}

// ---------------------------------------------------------------------------------------------
// Reconnection

#[tokio::test]
async fn a_dropped_participant_who_comes_back_in_time_is_reconnected_silently() {
    let grace = Duration::from_millis(800);
    let server = TestServer::start_with(|c| c.reconnect_grace = grace).await;
    let (mut anna, _) = server.join(ROOM, "anna", Role::Host).await;
    let (mut bruno, _) = server.join(ROOM, "bruno", Role::Participant).await;
    anna.recv_until("participant_joined").await;
    bruno.mute("camera", true).await;
    anna.recv_until("mute").await;

    bruno.drop_connection();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (mut bruno, welcome) = server.join(ROOM, "bruno", Role::Participant).await;
    assert_eq!(welcome["reconnected"], true);
    assert_eq!(welcome["you"]["id"], "bruno");
    assert_eq!(welcome["you"]["muted"], json!({"camera": true}), "state survives the reconnection");
    assert_eq!(welcome["participants"][0]["id"], "anna");

    // Past the first grace period: the old timer must not remove the participant who came back.
    tokio::time::sleep(grace + Duration::from_millis(300)).await;
    bruno.mute("microphone", true).await;
    let (skipped, mute) = anna.recv_until_collect("mute").await;
    assert_eq!(mute["participant_id"], "bruno");
    assert_no_membership_change(&skipped);
}

#[tokio::test]
async fn a_closing_tab_without_leave_also_gets_the_grace_period() {
    let server = TestServer::start_with(|c| c.reconnect_grace = Duration::from_secs(5)).await;
    let (mut anna, _) = server.join(ROOM, "anna", Role::Host).await;
    let (bruno, _) = server.join(ROOM, "bruno", Role::Participant).await;
    anna.recv_until("participant_joined").await;
    bruno.close(1001).await;
    let (mut bruno, welcome) = server.join(ROOM, "bruno", Role::Participant).await;
    assert_eq!(welcome["reconnected"], true);
    bruno.mute("microphone", false).await;
    let (skipped, _) = anna.recv_until_collect("mute").await;
    assert_no_membership_change(&skipped);
}

#[tokio::test]
async fn a_participant_who_does_not_come_back_leaves_after_the_grace_period() {
    let server = TestServer::start().await;
    let (mut anna, _) = server.join(ROOM, "anna", Role::Host).await;
    let (bruno, _) = server.join(ROOM, "bruno", Role::Participant).await;
    anna.recv_until("participant_joined").await;
    let dropped = Instant::now();
    bruno.drop_connection();
    let left = anna.recv_until("participant_left").await;
    let waited = dropped.elapsed();
    assert_eq!(left, json!({"v": 1, "type": "participant_left", "participant_id": "bruno"}));
    assert!(waited >= TEST_GRACE - Duration::from_millis(20), "left after only {waited:?}");
    assert!(waited < TEST_GRACE + Duration::from_secs(2), "left only after {waited:?}");
    // Coming back later is a fresh join that everybody sees.
    let (_bruno, welcome) = server.join(ROOM, "bruno", Role::Participant).await;
    assert_eq!(welcome["reconnected"], false);
    assert_eq!(anna.recv_until("participant_joined").await["participant"]["id"], "bruno");
}

#[tokio::test]
async fn a_second_connection_of_the_same_identity_replaces_the_first() {
    let mut room = Room::new().await;
    let (mut bruno2, welcome) = room.server.join(ROOM, "bruno", Role::Participant).await;
    assert_eq!(welcome["reconnected"], true);
    assert_eq!(welcome["participants"].as_array().unwrap().len(), 1);
    let closed = room.b.expect_closed(4009).await;
    assert_eq!(types(&closed.before), vec!["error"]);
    assert_eq!(closed.before[0]["code"], "replaced");

    // The old socket is gone; the new one speaks for bruno, and anna saw no leave/join.
    bruno2.mute("microphone", true).await;
    let (skipped, mute) = room.a.recv_until_collect("mute").await;
    assert_eq!(mute["participant_id"], "bruno");
    assert_no_membership_change(&skipped);
    // Later, the replaced socket's end does not start a grace period for bruno.
    tokio::time::sleep(Duration::from_millis(200)).await;
    room.b = bruno2;
    room.assert_alive().await;
}

#[tokio::test]
async fn leave_then_join_is_a_fresh_participant() {
    let mut room = Room::new().await;
    room.b.leave().await;
    room.b.expect_closed(1000).await;
    assert_eq!(room.a.recv_until("participant_left").await["participant_id"], "bruno");
    let (bruno, welcome) = room.server.join(ROOM, "bruno", Role::Participant).await;
    assert_eq!(welcome["reconnected"], false);
    assert_eq!(room.a.recv_until("participant_joined").await["participant"]["id"], "bruno");
    room.b = bruno;
    room.assert_alive().await;
}

// ---------------------------------------------------------------------------------------------
// SFU events reach the right browsers (injected into the registry as the media engine would emit them)

mod sfu_events {
    use sportello_sfu::{IceCandidate, PcKind, SfuEvent, SubscribedTrack, TrackInfo, TrackSource};

    use super::*;

    fn track(participant: &str, source: TrackSource) -> TrackInfo {
        TrackInfo::new(participant.into(), source)
    }

    fn emit(room: &Room, event: SfuEvent) {
        room.server.server.rooms.route(event);
    }

    #[tokio::test]
    async fn tracks_are_announced_to_the_others_once_and_listed_in_welcome() {
        let mut room = Room::new().await;
        let camera = track("bruno", TrackSource::Camera);
        let camera_json = json!({"id": "bruno/camera", "participant": "bruno", "source": "camera", "kind": "video"});
        emit(&room, SfuEvent::TrackPublished { room: ROOM.into(), track: camera.clone() });
        // Media resuming after a reconnection is reported again: not a new track for the room.
        emit(&room, SfuEvent::TrackPublished { room: ROOM.into(), track: camera.clone() });
        let published = room.a.recv_until("track_published").await;
        assert_eq!(published, json!({"v": 1, "type": "track_published", "track": camera_json}));
        room.b.mute("microphone", true).await;
        let (skipped, _) = room.a.recv_until_collect("mute").await;
        assert!(!types(&skipped).contains(&"track_published"), "announced twice: {skipped:?}");
        let (mut carla, welcome) = room.server.join(ROOM, "carla", Role::Viewer).await;
        let bruno = welcome["participants"].as_array().unwrap().iter().find(|p| p["id"] == "bruno").unwrap().clone();
        assert_eq!(bruno["tracks"], json!([camera_json]));

        emit(&room, SfuEvent::TrackUnpublished { room: ROOM.into(), track: camera.clone() });
        emit(&room, SfuEvent::TrackUnpublished { room: ROOM.into(), track: camera });
        for observer in [&mut room.a, &mut carla] {
            let unpublished = observer.recv_until("track_unpublished").await;
            assert_eq!(unpublished, json!({"v": 1, "type": "track_unpublished", "track": camera_json}));
        }
        // The publisher itself is never told about its own track; nobody is told twice.
        room.b.mute("camera", true).await;
        for observer in [&mut room.a, &mut carla] {
            let (skipped, _) = observer.recv_until_collect("mute").await;
            assert!(!types(&skipped).iter().any(|t| t.starts_with("track_")), "{skipped:?}");
        }
        room.a.mute("camera", true).await;
        let (skipped, _) = room.b.recv_until_collect("mute").await;
        assert!(!types(&skipped).iter().any(|t| t.starts_with("track_")), "{skipped:?}");
    }

    #[tokio::test]
    async fn tracks_of_unknown_participants_or_rooms_are_ignored() {
        let mut room = Room::new().await;
        emit(&room, SfuEvent::TrackPublished { room: ROOM.into(), track: track("ghost", TrackSource::Camera) });
        emit(&room, SfuEvent::TrackPublished { room: "elsewhere".into(), track: track("bruno", TrackSource::Camera) });
        room.assert_alive().await;
        let silence = room.a.collect_for(Duration::from_millis(100)).await;
        assert!(silence.is_empty(), "{silence:?}");
    }

    #[tokio::test]
    async fn subscribe_offers_and_candidates_go_to_their_participant_only() {
        let mut room = Room::new().await;
        let tracks = vec![SubscribedTrack { mid: "0".into(), track: track("bruno", TrackSource::Microphone) }];
        emit(
            &room,
            SfuEvent::SubscribeOffer {
                room: ROOM.into(),
                participant: "anna".into(),
                sdp: "v=0\r\n".into(),
                tracks: tracks.clone(),
            },
        );
        let offer = room.a.recv_until("offer").await;
        assert_eq!(
            offer,
            json!({"v": 1, "type": "offer", "pc": "subscribe", "sdp": "v=0\r\n", "tracks": [
                {"mid": "0", "track": {"id": "bruno/microphone", "participant": "bruno", "source": "microphone", "kind": "audio"}}
            ]})
        );
        let candidate = IceCandidate {
            candidate: "candidate:1 1 udp 2130706431 127.0.0.1 3478 typ host".into(),
            sdp_mid: Some("0".into()),
            sdp_mline_index: Some(0),
        };
        emit(
            &room,
            SfuEvent::LocalCandidate {
                room: ROOM.into(),
                participant: "anna".into(),
                pc: PcKind::Subscribe,
                candidate: candidate.clone(),
            },
        );
        let got = room.a.recv_until("candidate").await;
        assert_eq!(
            got,
            json!({"v": 1, "type": "candidate", "pc": "subscribe", "candidate":
                {"candidate": "candidate:1 1 udp 2130706431 127.0.0.1 3478 typ host", "sdpMid": "0", "sdpMLineIndex": 0}})
        );
        room.a.mute("microphone", true).await;
        let (skipped, _) = room.b.recv_until_collect("mute").await;
        assert!(!types(&skipped).iter().any(|t| *t == "offer" || *t == "candidate"), "{skipped:?}");
    }

    #[tokio::test]
    async fn the_active_speaker_is_told_to_everyone() {
        let mut room = Room::new().await;
        emit(&room, SfuEvent::ActiveSpeaker { room: ROOM.into(), participant: Some("bruno".into()) });
        for client in [&mut room.a, &mut room.b] {
            let speaker = client.recv_until("active_speaker").await;
            assert_eq!(speaker, json!({"v": 1, "type": "active_speaker", "participant_id": "bruno"}));
        }
        emit(&room, SfuEvent::ActiveSpeaker { room: ROOM.into(), participant: None });
        let silence = room.a.recv_until("active_speaker").await;
        assert_eq!(silence, json!({"v": 1, "type": "active_speaker", "participant_id": null}));
    }

    #[tokio::test]
    async fn a_late_joiner_learns_the_current_active_speaker() {
        let mut room = Room::new().await;
        emit(&room, SfuEvent::ActiveSpeaker { room: ROOM.into(), participant: Some("bruno".into()) });
        room.a.recv_until("active_speaker").await;
        // The SFU reports only changes; carla joins while bruno is still speaking.
        let (mut carla, _welcome) = room.server.join(ROOM, "carla", Role::Participant).await;
        let speaker = carla.recv_until("active_speaker").await;
        assert_eq!(speaker, json!({"v": 1, "type": "active_speaker", "participant_id": "bruno"}));
    }

    #[tokio::test]
    async fn tracks_survive_a_reconnection_and_end_with_the_grace_period() {
        let server = TestServer::start_with(|c| c.reconnect_grace = Duration::from_millis(500)).await;
        let mut room = Room::on(server).await;
        for source in [TrackSource::Microphone, TrackSource::Camera] {
            emit(&room, SfuEvent::TrackPublished { room: ROOM.into(), track: track("bruno", source) });
            room.a.recv_until("track_published").await;
        }
        // Away and back: the tracks stay announced, nobody is told anything.
        let fresh = room.server.connect(ROOM).await;
        std::mem::replace(&mut room.b, fresh).drop_connection();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let welcome = room.b.join(&room.server.token(ROOM, "bruno", Role::Participant)).await;
        assert_eq!(welcome["reconnected"], true);
        let ids: Vec<&str> =
            welcome["you"]["tracks"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap()).collect();
        assert_eq!(ids, vec!["bruno/microphone", "bruno/camera"]);
        room.assert_alive().await;

        // Away for good: participant_left, then track_unpublished for each track.
        let fresh = room.server.connect(ROOM).await;
        std::mem::replace(&mut room.b, fresh).drop_connection();
        let (_, left) = room.a.recv_until_collect("participant_left").await;
        assert_eq!(left["participant_id"], "bruno");
        let mut ended = Vec::new();
        for _ in 0..2 {
            ended.push(room.a.recv_json().await);
        }
        assert_eq!(types(&ended), vec!["track_unpublished", "track_unpublished"]);
        assert_eq!(ended[0]["track"]["id"], "bruno/microphone");
        assert_eq!(ended[1]["track"]["id"], "bruno/camera");
        // The SFU's own unpublish events for the same tracks, arriving later, are not repeated.
        emit(&room, SfuEvent::TrackUnpublished { room: ROOM.into(), track: track("bruno", TrackSource::Camera) });
        let silence = room.a.collect_for(Duration::from_millis(100)).await;
        assert!(silence.is_empty(), "{silence:?}");
    }
}

/// Signaling is small messages back to back (a welcome and an offer, an answer and candidates).
/// With Nagle's algorithm on, each after the first waits until the browser acknowledges the one
/// before — 40 ms of delayed acknowledgement on Linux, a round trip on any network — which made
/// every council viewer's offer arrive 44 ms after its welcome. Every connection the server
/// accepts has `TCP_NODELAY`.
#[tokio::test]
async fn the_server_turns_nagle_off_on_every_connection_it_accepts() {
    use std::io::{Read, Write};
    use std::mem::ManuallyDrop;
    use std::os::fd::FromRawFd;

    let server = TestServer::start().await;
    let addr = server.server.http_addr;
    let ours = tokio::task::spawn_blocking(move || {
        let mut client = std::net::TcpStream::connect(addr).expect("connect");
        client.write_all(b"GET /healthz HTTP/1.1\r\nHost: sportello\r\n\r\n").expect("request");
        let mut first = [0u8; 12];
        client.read_exact(&mut first).expect("a response");
        assert_eq!(&first, b"HTTP/1.1 200", "the connection was served");
        client
    })
    .await
    .expect("client");
    let client_addr = ours.local_addr().expect("client address");

    // The server runs in this process: its end of our connection is one of our descriptors.
    let mut found = None;
    for entry in std::fs::read_dir("/proc/self/fd").expect("/proc/self/fd") {
        let Ok(fd) = entry.expect("fd entry").file_name().to_string_lossy().parse::<i32>() else { continue };
        // Borrowed, never closed: the descriptor stays the server's.
        let socket = ManuallyDrop::new(unsafe { std::net::TcpStream::from_raw_fd(fd) });
        if socket.local_addr().ok() == Some(addr) && socket.peer_addr().ok() == Some(client_addr) {
            found = Some(socket.nodelay().expect("TCP_NODELAY readable"));
        }
    }
    assert_eq!(found, Some(true), "the server's end of the connection has TCP_NODELAY");
    drop(ours);
}
