//! The waiting room, chat and documents inside a room (issue 3), over real websockets and HTTP to a
//! real in-process server: what a citizen and an official would see, and what ends up stored.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use sportello_backoffice::retention;
use sportello_store::Status;
use sportello_tests::server::{Claims, Role, TestServer, WsClient};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ROOM: &str = "vo-u1";

fn waiting_claims(server: &TestServer, room: &str, identity: &str) -> Claims {
    Claims { wait: true, ..server.claims(room, identity, Role::Participant) }
}

/// Joins with a `wait` token and expects `waiting` (and no `welcome`) first.
async fn join_waiting(server: &TestServer, room: &str, identity: &str) -> (WsClient, Value) {
    let mut client = server.connect(room).await;
    let token = server.sign(&waiting_claims(server, room, identity));
    client.send_json(&json!({"v": 1, "type": "join", "token": token})).await;
    let first = client.recv_json().await;
    assert_eq!(first["type"], "waiting", "expected waiting, got {first}");
    (client, first)
}

fn lobby_ids(lobby: &Value) -> Vec<&str> {
    lobby["waiting"].as_array().expect("waiting list").iter().map(|w| w["id"].as_str().unwrap_or("?")).collect()
}

/// Skips `lobby` messages until one lists exactly `expected` (hosts get one on join, then one per change).
async fn lobby_until(client: &mut WsClient, expected: &[&str]) -> Value {
    let mut seen = Vec::new();
    loop {
        let lobby = client.recv_until("lobby").await;
        if lobby_ids(&lobby) == expected {
            return lobby;
        }
        seen.push(lobby);
        assert!(seen.len() < 10, "no lobby with {expected:?}: {seen:?}");
    }
}

async fn send(client: &mut WsClient, message: Value) {
    let mut message = message;
    message["v"] = json!(1);
    client.send_json(&message).await;
}

/// A host in `ROOM`, then a citizen admitted by it: both in, each having seen the other.
async fn host_and_admitted(server: &TestServer) -> (WsClient, WsClient) {
    let (mut host, _) = server.join(ROOM, "anna", Role::Host).await;
    let (mut citizen, _) = join_waiting(server, ROOM, "carla").await;
    lobby_until(&mut host, &["carla"]).await;
    send(&mut host, json!({"type": "admit", "participant_id": "carla"})).await;
    citizen.recv_until("welcome").await;
    host.recv_until("participant_joined").await;
    (host, citizen)
}

// --- a tiny HTTP/1.1 client (the tests crate has no HTTP client dependency) ----------------------

struct Http {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Http {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

async fn http(
    server: &TestServer,
    method: &str,
    path: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Http {
    let mut stream = tokio::net::TcpStream::connect(server.server.http_addr).await.expect("connect");
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(token) = token {
        request.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    // The server may answer (413) before reading everything: a failed write is not the test's point.
    let _ = stream.write_all(body).await;
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw))
        .await
        .expect("response in time")
        .expect("read");
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("header end");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok()).expect("status");
    let headers: Vec<(String, String)> =
        lines.filter_map(|l| l.split_once(':').map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))).collect();
    let mut body = raw[split + 4..].to_vec();
    if headers.iter().any(|(n, v)| n.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked")) {
        body = dechunk(&body);
    }
    Http { status, headers, body }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(end) = data.windows(2).position(|w| w == b"\r\n") else { return out };
        let size = usize::from_str_radix(String::from_utf8_lossy(&data[..end]).trim(), 16).unwrap_or(0);
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[end + 2..end + 2 + size]);
        data = &data[end + 2 + size + 2..];
    }
}

async fn upload(server: &TestServer, room: &str, token: &str, name: &str, bytes: &[u8]) -> Http {
    http(
        server,
        "POST",
        &format!("/api/rooms/{room}/documents"),
        Some(token),
        &[("X-File-Name", name), ("Content-Type", "application/pdf")],
        bytes,
    )
    .await
}

/// A small but real PDF (one empty page).
fn small_pdf() -> Vec<u8> {
    let mut pdf = b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n".to_vec();
    pdf.extend((0u8..=255).cycle().take(3000));
    pdf
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return found };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_under(&path));
        } else {
            found.push(path);
        }
    }
    found
}

// --- the lobby ----------------------------------------------------------------------------------

#[tokio::test]
async fn a_waiting_participant_is_held_even_when_no_host_is_there() {
    let server = TestServer::start().await;
    let (mut carla, waiting) = join_waiting(&server, ROOM, "carla").await;
    assert!(waiting["since"].as_i64().is_some_and(|s| s > 1_600_000_000), "{waiting}");
    let seen = carla.collect_for(Duration::from_millis(400)).await;
    assert!(seen.iter().all(|m| m["type"] != "welcome"), "reached the room without a host: {seen:?}");
    let lobby = server.server.rooms.lobby(ROOM);
    assert_eq!(lobby.len(), 1);
    assert_eq!((lobby[0].id.as_str(), lobby[0].name.as_str()), ("carla", "Carla"));

    // A host arriving later finds them in the lobby, and nobody sees them as a participant.
    let (mut anna, welcome) = server.join(ROOM, "anna", Role::Host).await;
    assert_eq!(welcome["participants"], json!([]), "a waiting person was shown as a participant");
    let lobby = anna.recv_until("lobby").await;
    assert_eq!(lobby_ids(&lobby), ["carla"]);
    assert_eq!(lobby["waiting"][0]["name"], "Carla");
    assert_eq!(lobby["waiting"][0]["since"], waiting["since"]);
    let (mut bruno, welcome) = server.join(ROOM, "bruno", Role::Participant).await;
    assert_eq!(welcome["participants"].as_array().map(Vec::len), Some(1), "{welcome}");
    // Only hosts learn about the lobby.
    let seen = bruno.collect_for(Duration::from_millis(300)).await;
    assert!(seen.iter().all(|m| m["type"] != "lobby"), "{seen:?}");
    anna.recv_until("participant_joined").await;
}

#[tokio::test]
async fn admit_lets_the_participant_in_like_a_normal_join() {
    let server = TestServer::start().await;
    let (mut anna, _) = server.join(ROOM, "anna", Role::Host).await;
    let (mut carla, _) = join_waiting(&server, ROOM, "carla").await;
    assert_eq!(lobby_ids(&anna.recv_until("lobby").await), ["carla"]);

    send(&mut anna, json!({"type": "admit", "participant_id": "carla"})).await;
    let welcome = carla.recv_until("welcome").await;
    assert_eq!(welcome["you"]["id"], "carla");
    assert_eq!(welcome["participants"][0]["id"], "anna");
    let (skipped, joined) = anna.recv_until_collect("participant_joined").await;
    assert_eq!(joined["participant"]["id"], "carla");
    let lobbies: Vec<&Value> = skipped.iter().filter(|m| m["type"] == "lobby").collect();
    assert_eq!(lobbies.last().map(|l| lobby_ids(l)), Some(vec![]), "the lobby did not empty: {skipped:?}");
    assert!(server.server.rooms.lobby(ROOM).is_empty());
    assert!(server.server.rooms.is_admitted(ROOM, "carla"));
}

#[tokio::test]
async fn the_dashboard_can_admit_and_decline_without_being_in_the_room() {
    let server = TestServer::start().await;
    let (mut carla, _) = join_waiting(&server, ROOM, "carla").await;
    let (mut dario, _) = join_waiting(&server, ROOM, "dario").await;
    let lobby = server.server.rooms.lobby(ROOM);
    assert_eq!(lobby.iter().map(|w| w.id.as_str()).collect::<Vec<_>>(), ["carla", "dario"]);
    server.server.rooms.admit(ROOM, "carla").await.expect("admitted");
    carla.recv_until("welcome").await;
    server.server.rooms.decline(ROOM, "dario").await.expect("declined");
    let closed = dario.expect_closed(4013).await;
    assert_eq!(closed.before.last().map(|m| m["type"].clone()), Some(json!("declined")));
    assert!(server.server.rooms.admit(ROOM, "dario").await.is_err(), "admitted someone no longer waiting");
    assert!(server.server.rooms.admit("no-such-room", "x").await.is_err());
}

#[tokio::test]
async fn decline_tells_the_participant_and_closes() {
    let server = TestServer::start().await;
    let (mut anna, _) = server.join(ROOM, "anna", Role::Host).await;
    let mut carla = server.connect_lang(ROOM, "en").await;
    let token = server.sign(&waiting_claims(&server, ROOM, "carla"));
    carla.send_json(&json!({"v": 1, "type": "join", "token": token})).await;
    carla.recv_until("waiting").await;
    lobby_until(&mut anna, &["carla"]).await;
    send(&mut anna, json!({"type": "decline", "participant_id": "carla"})).await;
    let closed = carla.expect_closed(4013).await;
    let declined = closed.before.iter().find(|m| m["type"] == "declined").expect("a declined message");
    assert!(declined["message"].as_str().is_some_and(|m| m.contains("did not let you")), "{declined}");
    assert!(closed.before.iter().all(|m| m["type"] != "welcome"));
    assert_eq!(lobby_ids(&anna.recv_until("lobby").await), Vec::<&str>::new());
    // Nobody entered or left.
    let seen = anna.collect_for(Duration::from_millis(300)).await;
    assert!(seen.iter().all(|m| m["type"] != "participant_joined"), "{seen:?}");
}

#[tokio::test]
async fn only_hosts_admit_or_decline() {
    let server = TestServer::start().await;
    let (mut anna, _) = server.join(ROOM, "anna", Role::Host).await;
    let (mut bruno, _) = server.join(ROOM, "bruno", Role::Participant).await;
    let (mut carla, _) = join_waiting(&server, ROOM, "carla").await;
    lobby_until(&mut anna, &["carla"]).await;
    for kind in ["admit", "decline"] {
        send(&mut bruno, json!({"type": kind, "participant_id": "carla"})).await;
        bruno.expect_error("forbidden").await;
    }
    // The waiting participant cannot admit themselves either.
    send(&mut carla, json!({"type": "admit", "participant_id": "carla"})).await;
    carla.expect_error("not_admitted").await;
    assert_eq!(server.server.rooms.lobby(ROOM).len(), 1);
    let seen = carla.collect_for(Duration::from_millis(300)).await;
    assert!(seen.iter().all(|m| m["type"] != "welcome"), "{seen:?}");
    // A host admitting someone who is not waiting gets a clear error.
    send(&mut anna, json!({"type": "admit", "participant_id": "nessuno"})).await;
    anna.expect_error("not_waiting").await;
}

#[tokio::test]
async fn a_waiting_participant_who_leaves_leaves_the_lobby() {
    let server = TestServer::start().await;
    let (mut anna, _) = server.join(ROOM, "anna", Role::Host).await;
    let (carla, _) = join_waiting(&server, ROOM, "carla").await;
    lobby_until(&mut anna, &["carla"]).await;
    carla.drop_connection();
    assert_eq!(lobby_ids(&anna.recv_until("lobby").await), Vec::<&str>::new());
    assert!(server.server.rooms.lobby(ROOM).is_empty());
}

#[tokio::test]
async fn an_admitted_participant_who_reconnects_does_not_wait_again() {
    let server = TestServer::start_with(|c| c.reconnect_grace = Duration::from_secs(5)).await;
    let (mut anna, carla) = host_and_admitted(&server).await;
    carla.drop_connection();
    let mut again = server.connect(ROOM).await;
    let welcome = again.join(&server.sign(&waiting_claims(&server, ROOM, "carla"))).await;
    assert_eq!(welcome["reconnected"], true);
    let seen = anna.collect_for(Duration::from_millis(300)).await;
    assert!(seen.iter().all(|m| m["type"] != "lobby" || lobby_ids(m).is_empty()), "{seen:?}");
}

// --- chat -----------------------------------------------------------------------------------------

#[tokio::test]
async fn chat_reaches_everyone_admitted_and_is_stored() {
    let server = TestServer::start().await;
    let (mut anna, mut carla) = host_and_admitted(&server).await;
    let (mut dario, _) = join_waiting(&server, ROOM, "dario").await;
    send(&mut carla, json!({"type": "chat", "text": "  Buongiorno,\nho una domanda.  "})).await;
    for client in [&mut anna, &mut carla] {
        let chat = client.recv_until("chat").await;
        assert_eq!(chat["participant_id"], "carla");
        assert_eq!(chat["name"], "Carla");
        assert_eq!(chat["text"], "Buongiorno,\nho una domanda.");
        assert!(chat["id"].as_str().is_some_and(|id| !id.is_empty()));
        assert!(chat["at"].as_i64().is_some());
    }
    let seen = dario.collect_for(Duration::from_millis(300)).await;
    assert!(seen.iter().all(|m| m["type"] != "chat"), "a waiting participant read the chat: {seen:?}");
    let stored = server.server.store.chat(ROOM, 100).await.expect("chat");
    assert_eq!(stored.len(), 1);
    assert_eq!((stored[0].sender.as_str(), stored[0].body.as_str()), ("carla", "Buongiorno,\nho una domanda."));

    // The history over HTTP shows the same message.
    let token = server.token(ROOM, "anna", Role::Host);
    let history = http(&server, "GET", &format!("/api/rooms/{ROOM}/chat"), Some(&token), &[], b"").await;
    assert_eq!(history.status, 200);
    assert_eq!(history.json()["messages"][0]["text"], "Buongiorno,\nho una domanda.");
}

#[tokio::test]
async fn invalid_chat_is_refused_and_nothing_is_stored() {
    let server = TestServer::start().await;
    let (mut anna, mut carla) = host_and_admitted(&server).await;
    for text in [String::new(), "   \n ".into(), "x".repeat(2001), "ciao\u{7}".into()] {
        send(&mut carla, json!({"type": "chat", "text": text})).await;
        carla.expect_error("invalid_chat").await;
    }
    // 2000 characters are fine.
    send(&mut carla, json!({"type": "chat", "text": "è".repeat(2000)})).await;
    let (skipped, chat) = anna.recv_until_collect("chat").await;
    assert_eq!(chat["text"].as_str().map(|t| t.chars().count()), Some(2000));
    assert!(skipped.iter().all(|m| m["type"] != "chat"), "{skipped:?}");
    assert_eq!(server.server.store.chat(ROOM, 100).await.expect("chat").len(), 1);
}

#[tokio::test]
async fn a_waiting_participant_can_neither_chat_nor_upload_nor_read() {
    let server = TestServer::start().await;
    let (mut anna, _) = server.join(ROOM, "anna", Role::Host).await;
    let (mut carla, _) = join_waiting(&server, ROOM, "carla").await;
    send(&mut carla, json!({"type": "chat", "text": "fatemi entrare"})).await;
    carla.expect_error("not_admitted").await;
    let token = server.sign(&waiting_claims(&server, ROOM, "carla"));
    assert_eq!(upload(&server, ROOM, &token, "a.pdf", &small_pdf()).await.status, 403);
    assert_eq!(http(&server, "GET", &format!("/api/rooms/{ROOM}/chat"), Some(&token), &[], b"").await.status, 403);
    let seen = anna.collect_for(Duration::from_millis(300)).await;
    assert!(seen.iter().all(|m| m["type"] != "chat" && m["type"] != "document"), "{seen:?}");
    assert!(server.server.store.chat(ROOM, 100).await.expect("chat").is_empty());
    assert!(server.server.store.documents(ROOM).await.expect("documents").is_empty());
}

// --- documents ------------------------------------------------------------------------------------

#[tokio::test]
async fn an_uploaded_pdf_reaches_the_other_participant_byte_for_byte() {
    let server = TestServer::start().await;
    let (mut anna, mut carla) = host_and_admitted(&server).await;
    let pdf = small_pdf();
    let carla_token = server.sign(&waiting_claims(&server, ROOM, "carla"));
    let response = upload(&server, ROOM, &carla_token, "..%2F..%2FCarta%20d'identit%C3%A0.exe", &pdf).await;
    assert_eq!(response.status, 201, "{}", String::from_utf8_lossy(&response.body));
    let created = response.json();
    assert_eq!(created["name"], "Carta d'identità.pdf");
    assert_eq!(created["content_type"], "application/pdf");

    for client in [&mut anna, &mut carla] {
        let document = client.recv_until("document").await;
        assert_eq!(document["id"], created["id"]);
        assert_eq!(document["name"], "Carta d'identità.pdf");
        assert_eq!(document["size"], pdf.len());
        assert_eq!(document["participant_id"], "carla");
        assert_eq!(document["uploader_name"], "Carla");
    }
    let anna_token = server.token(ROOM, "anna", Role::Host);
    let list = http(&server, "GET", &format!("/api/rooms/{ROOM}/documents"), Some(&anna_token), &[], b"").await;
    assert_eq!(list.status, 200);
    assert_eq!(list.json()["documents"][0]["id"], created["id"]);

    let id = created["id"].as_str().expect("id");
    let download =
        http(&server, "GET", &format!("/api/rooms/{ROOM}/documents/{id}"), Some(&anna_token), &[], b"").await;
    assert_eq!(download.status, 200);
    assert!(download.body == pdf, "downloaded bytes differ from the upload");
    assert_eq!(download.header("content-type"), Some("application/pdf"));
    assert_eq!(download.header("x-content-type-options"), Some("nosniff"));
    let disposition = download.header("content-disposition").expect("content-disposition");
    assert!(
        disposition.starts_with("attachment;")
            && disposition.contains("filename*=UTF-8''Carta%20d%27identit%C3%A0.pdf"),
        "{disposition}"
    );
    let row = server.server.store.document(id).await.expect("row").expect("stored");
    assert_eq!(row.size, pdf.len() as i64);
    assert_eq!(row.sha256.len(), 64);

    // Without a token, with another room's token, or for another room: nothing.
    assert_eq!(http(&server, "GET", &format!("/api/rooms/{ROOM}/documents/{id}"), None, &[], b"").await.status, 401);
    let other = server.token("vo-u2", "anna", Role::Host);
    assert_eq!(
        http(&server, "GET", &format!("/api/rooms/{ROOM}/documents/{id}"), Some(&other), &[], b"").await.status,
        403
    );
    assert_eq!(
        http(&server, "GET", &format!("/api/rooms/vo-u2/documents/{id}"), Some(&other), &[], b"").await.status,
        404
    );
}

#[tokio::test]
async fn an_executable_named_pdf_is_refused_and_nothing_is_stored() {
    let server = TestServer::start().await;
    let (_anna, mut carla) = host_and_admitted(&server).await;
    let token = server.sign(&waiting_claims(&server, ROOM, "carla"));
    let mut exe = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00".to_vec();
    exe.extend(std::iter::repeat_n(0u8, 2000));
    for (name, bytes) in
        [("fattura.pdf", exe.clone()), ("pagina.pdf", b"<html><script>alert(1)</script></html>".to_vec())]
    {
        let response = upload(&server, ROOM, &token, name, &bytes).await;
        assert_eq!(response.status, 415, "{name}");
        assert_eq!(response.json()["error"]["code"], "unsupported_type");
    }
    assert!(files_under(&server.data_dir().join("documents")).is_empty(), "a file was kept");
    assert!(server.server.store.documents(ROOM).await.expect("documents").is_empty(), "a row was kept");
    let seen = carla.collect_for(Duration::from_millis(300)).await;
    assert!(seen.iter().all(|m| m["type"] != "document"), "{seen:?}");
}

#[tokio::test]
async fn an_oversize_upload_is_refused_and_nothing_is_stored() {
    let server = TestServer::start_with(|c| c.max_upload = 2048).await;
    let (_anna, _carla) = host_and_admitted(&server).await;
    let token = server.sign(&waiting_claims(&server, ROOM, "carla"));
    let mut big = small_pdf();
    big.resize(4096, b'x');
    let response = upload(&server, ROOM, &token, "grande.pdf", &big).await;
    assert_eq!(response.status, 413);
    assert!(files_under(&server.data_dir().join("documents")).is_empty());
    assert!(server.server.store.documents(ROOM).await.expect("documents").is_empty());
}

#[tokio::test]
async fn a_token_for_another_room_cannot_upload() {
    let server = TestServer::start().await;
    let (_anna, _carla) = host_and_admitted(&server).await;
    let other = server.token("vo-u2", "carla", Role::Participant);
    assert_eq!(upload(&server, ROOM, &other, "a.pdf", &small_pdf()).await.status, 403);
    // A host token for the room whose holder is not in it cannot upload either.
    let absent = server.token(ROOM, "ezio", Role::Host);
    assert_eq!(upload(&server, ROOM, &absent, "a.pdf", &small_pdf()).await.status, 403);
    assert!(server.server.store.documents(ROOM).await.expect("documents").is_empty());
}

#[tokio::test]
async fn retention_deletes_expired_documents_and_chat() {
    let server = TestServer::start().await;
    let (mut anna, mut carla) = host_and_admitted(&server).await;
    let token = server.sign(&waiting_claims(&server, ROOM, "carla"));
    assert_eq!(upload(&server, ROOM, &token, "a.pdf", &small_pdf()).await.status, 201);
    send(&mut carla, json!({"type": "chat", "text": "ciao"})).await;
    anna.recv_until("chat").await;
    let store = &server.server.store;
    let data_dir = server.data_dir().to_owned();
    assert_eq!(files_under(&data_dir.join("documents")).len(), 1);

    let now = server.server.tokens.clock().now();
    // Before the retention ends nothing goes.
    let sweep = retention::run_once(store, &data_dir, now + 60).await.expect("pass");
    assert_eq!((sweep.documents_deleted, sweep.chat_deleted), (0, 0));
    let later = now + server.server.config.retention.as_secs() as i64 + 60;
    let sweep = retention::run_once(store, &data_dir, later).await.expect("pass");
    assert_eq!((sweep.documents_deleted, sweep.chat_deleted), (1, 1));
    assert!(files_under(&data_dir.join("documents")).is_empty(), "the file outlived its retention");
    assert!(store.documents(ROOM).await.expect("documents").is_empty());
    assert!(store.chat(ROOM, 100).await.expect("chat").is_empty());
}

// --- appointments -----------------------------------------------------------------------------------

/// A confirmed appointment `[starts_at, starts_at + 30 min)` with everything it references.
async fn appointment(server: &TestServer, starts_at: i64) -> sportello_store::Appointment {
    server.seed_appointment(starts_at).await.expect("appointment seeded")
}

/// The citizen's claims as the emailed link carries them (the window of this appointment).
fn citizen_claims(server: &TestServer, appointment: &sportello_store::Appointment) -> Claims {
    sportello_backoffice::links::citizen_claims(appointment, server.server.tokens.clock().now())
}

#[tokio::test]
async fn a_cancelled_appointments_link_is_refused_at_join() {
    let server = TestServer::start().await;
    let now = server.server.tokens.clock().now();
    let appt = appointment(&server, now + 600).await;
    server
        .server
        .store
        .set_status(&appt.id, &[Status::Confirmed], Status::Cancelled, "citizen", "", now)
        .await
        .expect("cancel");
    let mut citizen = server.connect(&format!("appt-{}", appt.id)).await;
    let token = server.sign(&citizen_claims(&server, &appt));
    citizen.send_json(&json!({"v": 1, "type": "join", "token": token})).await;
    citizen.expect_error("appointment_cancelled").await;
    citizen.expect_closed(4004).await;
    assert!(server.server.rooms.lobby(&format!("appt-{}", appt.id)).is_empty());
}

#[tokio::test]
async fn an_appointment_is_completed_when_its_room_ends_and_no_show_when_nobody_came() {
    let server = TestServer::start().await;
    let store = &server.server.store;
    let now = server.server.tokens.clock().now();
    let came = appointment(&server, now).await;
    let room = format!("appt-{}", came.id);
    // The official's own identity: a room token stands only for an active account (`grants`).
    let (mut official, _) = server.join(&room, &format!("user-{}", came.official_id), Role::Host).await;
    let mut citizen = server.connect(&room).await;
    citizen.send_json(&json!({"v": 1, "type": "join", "token": server.sign(&citizen_claims(&server, &came))})).await;
    citizen.recv_until("waiting").await;
    let citizen_id = format!("citizen-{}", came.id);
    lobby_until(&mut official, &[citizen_id.as_str()]).await;
    send(&mut official, json!({"type": "admit", "participant_id": format!("citizen-{}", came.id)})).await;
    citizen.recv_until("welcome").await;
    citizen.leave().await;
    official.recv_until("participant_left").await;
    official.leave().await;
    // The room's writes are queued and run in order: once the end is recorded, so is the entry.
    let mut row = store.appointment(&came.id).await.expect("load").expect("exists");
    for _ in 0..50 {
        if row.status != Status::Confirmed {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        row = store.appointment(&came.id).await.expect("load").expect("exists");
    }
    assert_eq!(row.status, Status::Completed);
    assert!(row.citizen_joined_at.is_some(), "the citizen's entry was not recorded");

    let missed = appointment(&server, now - 7200).await;
    let sweep = retention::run_once(store, server.data_dir(), now).await.expect("pass");
    assert_eq!(sweep.no_show, 1);
    assert_eq!(store.appointment(&missed.id).await.expect("load").expect("exists").status, Status::NoShow);
}

/// Waits until every job queued on the persistence channel before now was written: the channel is
/// one FIFO task, so a chat message stored (and relayed) in another room comes after them.
async fn persistence_settled(server: &TestServer) {
    let room = "vo-barrier";
    let (mut host, _) = server.join(room, "barrier", Role::Host).await;
    send(&mut host, json!({"type": "chat", "text": "barrier"})).await;
    host.recv_until("chat").await;
    host.leave().await;
}

/// Waits until the room has removed `identity` (its view is updated right before the room queues
/// what the departure means for the appointment), then for the persistence queue to pass that point.
async fn gone_and_settled(server: &TestServer, room: &str, identity: &str) {
    for _ in 0..200 {
        if !server.server.rooms.is_admitted(room, identity) {
            return persistence_settled(server).await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{identity} still in {room}");
}

async fn status_of(server: &TestServer, id: &str) -> Status {
    server.server.store.appointment(id).await.expect("load").expect("exists").status
}

/// Issue 11, item 1: a citizen admitted from the dashboard into an empty room who leaves before
/// the official came keeps the appointment; once both met and left, it is completed.
#[tokio::test]
async fn a_citizen_who_leaves_an_empty_room_keeps_the_appointment_until_both_met() {
    let server = TestServer::start().await;
    let now = server.server.tokens.clock().now();
    let appt = appointment(&server, now).await;
    let room = format!("appt-{}", appt.id);
    let citizen_id = format!("citizen-{}", appt.id);
    let claims = sportello_backoffice::links::citizen_claims(&appt, now);
    let token = server.sign(&claims);

    // Admitted from the dashboard while no official is in the room; alone, the citizen leaves.
    let mut citizen = server.connect(&room).await;
    citizen.send_json(&json!({"v": 1, "type": "join", "token": token})).await;
    citizen.recv_until("waiting").await;
    server.server.rooms.admit(&room, &citizen_id).await.expect("admitted from the dashboard");
    let welcome = citizen.recv_until("welcome").await;
    assert_eq!(welcome["participants"], json!([]), "the room should be empty: {welcome}");
    citizen.leave().await;
    gone_and_settled(&server, &room, &citizen_id).await;
    assert_eq!(status_of(&server, &appt.id).await, Status::Confirmed);

    // The emailed link still leads to the room, and the citizen waits again.
    let landing = http(&server, "GET", &format!("/a/{token}"), None, &[], b"").await;
    assert_eq!(landing.status, 303, "{}", String::from_utf8_lossy(&landing.body));
    let mut citizen = server.connect(&room).await;
    citizen.send_json(&json!({"v": 1, "type": "join", "token": token})).await;
    citizen.recv_until("waiting").await;

    // The official comes, admits from inside the room; they meet; both leave: completed.
    let (mut official, _) = server.join(&room, &format!("user-{}", appt.official_id), Role::Host).await;
    lobby_until(&mut official, &[citizen_id.as_str()]).await;
    send(&mut official, json!({"type": "admit", "participant_id": citizen_id})).await;
    citizen.recv_until("welcome").await;
    official.recv_until("participant_joined").await;
    citizen.leave().await;
    official.recv_until("participant_left").await;
    official.leave().await;
    gone_and_settled(&server, &room, &format!("user-{}", appt.official_id)).await;
    assert_eq!(status_of(&server, &appt.id).await, Status::Completed);
}

/// Issue 11, item 6: the room in words for the device check and the waiting room — any token for
/// the room, also one still waiting to be admitted.
#[tokio::test]
async fn room_details_name_office_service_time_and_official() {
    let server = TestServer::start().await;
    let now = server.server.tokens.clock().now();
    let appt = appointment(&server, now).await;
    let room = format!("appt-{}", appt.id);
    let token = server.sign(&citizen_claims(&server, &appt));
    let (_citizen, _) = {
        let mut c = server.connect(&room).await;
        c.send_json(&json!({"v": 1, "type": "join", "token": token})).await;
        let first = c.recv_until("waiting").await;
        (c, first)
    };
    let got = http(&server, "GET", &format!("/api/rooms/{room}"), Some(&token), &[], b"").await;
    assert_eq!(got.status, 200);
    let body = got.json();
    assert_eq!(body["kind"], "appointment");
    assert_eq!(body["office"], "Anagrafe");
    assert_eq!(body["service"], "Carta d'identità");
    assert_eq!(body["official"], "Olga");
    assert_eq!(body["starts_at"], appt.starts_at);
    assert_eq!(body["ends_at"], appt.ends_at);

    let vo = format!("vo-{}", appt.official_id);
    let guest = server.sign(&waiting_claims(&server, &vo, "guest-1"));
    let got = http(&server, "GET", &format!("/api/rooms/{vo}"), Some(&guest), &[], b"").await;
    assert_eq!(got.status, 200);
    assert_eq!(got.json()["kind"], "virtual_office");
    assert_eq!(got.json()["official"], "Olga");

    assert_eq!(http(&server, "GET", &format!("/api/rooms/{vo}"), None, &[], b"").await.status, 401);
    assert_eq!(http(&server, "GET", &format!("/api/rooms/{room}"), Some(&guest), &[], b"").await.status, 403);
}
