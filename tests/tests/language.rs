//! English really in English (issue 11, item 8): a REST error answers in the language the request
//! asks for with `Accept-Language` (weights respected, Italian by default) with the same code, and
//! the server-rendered archive pages follow `?lang=` or `Accept-Language`. Loopback only.

use serde_json::{Value, json};
use sportello_store::{
    CouncilBody, Modes, NewCouncilSession, NewOffice, NewRecording, NewService, NewUser, StaffRole, Store,
};
use sportello_tests::server::TestServer;

const HOURS: &str = r#"[["09:00-12:00"],["09:00-12:00"],["09:00-12:00"],["09:00-12:00"],["09:00-12:00"],[],[]]"#;

/// An office with one service: enough for a booking to get as far as checking the requester.
async fn office_and_service(store: &Store) -> (String, String) {
    let office = NewOffice {
        name: "Anagrafe".into(),
        description: String::new(),
        address: String::new(),
        email: String::new(),
        phone: String::new(),
        opening_hours: HOURS.into(),
    };
    let office = store.create_office(&office, 0).await.expect("office");
    let service = NewService {
        name: "Carta d'identità elettronica".into(),
        description: String::new(),
        duration_minutes: 30,
        what_to_bring: String::new(),
        modes: Modes::Both,
        office_ids: vec![office.id.clone()],
    };
    let service = store.create_service(&service, 0).await.expect("service");
    (office.id, service.id)
}

struct Reply {
    status: u16,
    content_language: Option<String>,
    body: Value,
}

async fn send(request: reqwest::RequestBuilder, accept_language: Option<&str>) -> Reply {
    let request = match accept_language {
        Some(value) => request.header("accept-language", value),
        None => request,
    };
    let response = request.send().await.expect("response");
    let status = response.status().as_u16();
    let content_language = response.headers().get("content-language").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let body = response.json().await.expect("a JSON body");
    Reply { status, content_language, body }
}

async fn page(url: &str, accept_language: Option<&str>) -> String {
    let mut request = reqwest::Client::new().get(url);
    if let Some(value) = accept_language {
        request = request.header("accept-language", value);
    }
    let response = request.send().await.expect("response");
    assert_eq!(response.status(), 200, "{url}");
    response.text().await.expect("page")
}

#[tokio::test]
async fn error_messages_follow_accept_language() {
    let server = TestServer::start().await;
    let (office, service) = office_and_service(&server.server.store).await;
    let http = reqwest::Client::new();
    let url = format!("{}/api/public/appointments", server.url());
    // The first name is missing: «Inserisci il nome…» in Italian.
    let booking = json!({
        "office_id": office, "service_id": service, "start": "2030-01-08T10:00:00+01:00", "mode": "video",
        "last_name": "Rossi", "email": "anna.rossi@example.org", "details": "", "lang": "it", "website": ""
    });
    let english = "Enter the first name: it is required.";
    let italian = "Inserisci il nome: è obbligatorio.";
    for (accept_language, message, lang) in [
        (Some("en"), english, "en"),
        (Some("it"), italian, "it"),
        (Some("en-GB,it;q=0.5"), english, "en"),
        (Some("it-IT,it;q=0.9,en;q=0.8"), italian, "it"),
        (Some("fr-FR,en;q=0.7"), english, "en"),
        (Some("de"), italian, "it"),
        (None, italian, "it"),
    ] {
        let reply = send(http.post(&url).json(&booking), accept_language).await;
        assert_eq!(reply.status, 400, "{accept_language:?}: {}", reply.body);
        assert_eq!(reply.body["error"]["code"], "invalid_first_name", "{accept_language:?}");
        assert_eq!(reply.body["error"]["message"], message, "{accept_language:?}");
        assert_eq!(reply.content_language.as_deref(), Some(lang), "{accept_language:?}");
    }

    // A message with a detail in it, and one of the fixed ones.
    let unknown = json!({ "office_id": "nope", "service_id": service, "start": "", "first_name": "Anna",
        "last_name": "Rossi", "email": "anna.rossi@example.org", "details": "", "lang": "en", "website": "" });
    let reply = send(http.post(&url).json(&unknown), Some("en")).await;
    assert_eq!(
        (reply.body["error"]["code"].as_str(), reply.body["error"]["message"].as_str()),
        (Some("unknown_office"), Some("The office does not exist."))
    );
    let me = format!("{}/api/auth/me", server.url());
    let reply = send(http.get(&me), Some("en-US,en;q=0.9")).await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.body["error"]["code"], "unauthenticated");
    assert_eq!(reply.body["error"]["message"], "Sign-in required: please log in.");
    let reply = send(http.get(&me), None).await;
    assert_eq!(reply.body["error"]["message"], "Accesso richiesto: effettua il login.");
    server.shutdown().await;
}

#[tokio::test]
async fn archive_pages_in_english() {
    let server = TestServer::start().await;
    let base = server.url();
    let store = &server.server.store;

    // Empty archive: the list page alone.
    let list = page(&format!("{base}/archivio"), Some("en-GB,en;q=0.9,it;q=0.5")).await;
    assert!(list.starts_with("<!doctype html>\n<html lang=\"en\">"), "{list}");
    assert!(list.contains("<title>Session archive — Comune</title>"), "{list}");
    assert!(list.contains("<nav aria-label=\"Breadcrumb\""), "{list}");
    assert!(list.contains("No recorded sessions yet."), "{list}");
    assert!(!list.contains("Archivio delle sedute"), "{list}");
    let list = page(&format!("{base}/archivio"), None).await;
    assert!(list.starts_with("<!doctype html>\n<html lang=\"it\">"), "{list}");
    assert!(list.contains("<title>Archivio delle sedute — Comune</title>"), "{list}");
    assert!(list.contains("Nessuna seduta registrata.") && !list.contains("No recorded"), "{list}");
    // The switch is a link to the other language.
    assert!(list.contains("href=\"?lang=en\" hreflang=\"en\" lang=\"en\" data-lang=\"en\">English</a>"), "{list}");

    // A recorded session: ?lang=en wins over the header and the archive's links keep it.
    let chair = NewUser {
        email: "presidente@comune.example".into(),
        display_name: "Presidente".into(),
        role: StaffRole::Chair,
    };
    let chair = store.create_user(&chair, 0).await.expect("chair");
    let session = NewCouncilSession {
        title: "Consiglio del 3 marzo".into(),
        body: CouncilBody::Consiglio,
        scheduled_at: 1_800_000_000,
        chair_id: chair.id,
        quorum: "majority".into(),
    };
    let session = store.create_council_session(&session, 0).await.expect("session");
    let recording = NewRecording {
        id: "rec1".into(),
        session_id: session.id.clone(),
        file_name: "rec1.webm".into(),
        started_at: 1_800_000_000,
        ended_at: 1_800_003_600,
        duration_ms: 3_600_000,
        bytes: 12_345_678,
        sha256: "ab".repeat(32),
        chapters: r#"[{"title":"Bilancio","start_ms":0,"end_ms":60000}]"#.into(),
    };
    store.insert_recording(&recording, 1_800_003_600).await.expect("recording");
    let list = page(&format!("{base}/archivio?lang=en"), Some("it")).await;
    assert!(
        list.contains(&format!("<a href=\"/archivio/{}?lang=en\">Consiglio del 3 marzo</a>", session.id)),
        "{list}"
    );
    assert!(list.contains("City council – session of") && list.contains("1 recording, duration 1:00:00"), "{list}");
    let detail = page(&format!("{base}/archivio/{}?lang=en", session.id), Some("it")).await;
    assert!(detail.starts_with("<!doctype html>\n<html lang=\"en\">"), "{detail}");
    assert!(detail.contains("<title>Consiglio del 3 marzo — Comune</title>"), "{detail}");
    assert!(detail.contains("<a href=\"/archivio?lang=en\">Session archive</a>"), "{detail}");
    assert!(detail.contains("<h3 id=\"chapters-rec1\">Agenda items</h3>"), "{detail}");
    assert!(detail.contains("<dt>SHA-256 fingerprint</dt>") && detail.contains("Download the WebM file"), "{detail}");
    assert!(!detail.contains("Scarica") && !detail.contains("seduta del"), "{detail}");
    let detail = page(&format!("{base}/archivio/{}?lang=it", session.id), Some("en")).await;
    assert!(detail.starts_with("<!doctype html>\n<html lang=\"it\">"), "{detail}");
    assert!(detail.contains("Punti all'ordine del giorno") && !detail.contains("Agenda items"), "{detail}");
    server.shutdown().await;
}
