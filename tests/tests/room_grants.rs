//! A room token is honoured only while what it names still holds (issue 20, item 3): the account is
//! active, the appointment confirmed and not moved, the council chair or membership current — on
//! the room's REST calls here (documents, chat history); the websocket join asks the same check.
//! And a viewer never uploads.

use std::time::Duration;

use reqwest::StatusCode;
use sportello_backoffice::links::citizen_claims;
use sportello_backoffice::token::unix_now;
use sportello_store::{NewCouncilSession, Reschedule, Status, UserUpdate};
use sportello_tests::server::{Claims, Role, TestServer};

async fn documents(server: &TestServer, room: &str, token: &str) -> (StatusCode, String) {
    let response = reqwest::Client::new()
        .get(format!("{}/api/rooms/{room}/documents", server.url()))
        .bearer_auth(token)
        .send()
        .await
        .expect("request");
    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    (status, body["error"]["code"].as_str().unwrap_or_default().to_owned())
}

fn host_token(server: &TestServer, room: &str, user_id: &str) -> String {
    server.sign(&Claims::new(room, &format!("user-{user_id}"), "Olga", Role::Host, Duration::from_secs(3600)))
}

#[tokio::test]
async fn a_moved_closed_or_deactivated_link_reads_nothing() {
    let server = TestServer::start().await;
    let now = i64::try_from(unix_now()).expect("now");
    // Its join window is open (the link is valid from 15 minutes before the start).
    let appt = server.seed_appointment(now + 120).await.expect("appointment");
    let official = server.server.store.user(&appt.official_id).await.expect("store").expect("official");
    let room = format!("appt-{}", appt.id);
    let host = host_token(&server, &room, &official.id);
    assert_eq!(documents(&server, &room, &host).await.0, StatusCode::OK);
    let citizen = server.sign(&citizen_claims(&appt, now));

    // Moved: the link from before the move is refused; the new one is only held in the lobby.
    let store = &server.server.store;
    let to = Reschedule {
        starts_at: appt.starts_at + 300,
        ends_at: appt.ends_at + 300,
        official_id: official.id.clone(),
        mode: appt.mode,
    };
    let moved = store.reschedule(&appt.id, &to, "citizen", now).await.expect("moved");
    assert_eq!(documents(&server, &room, &citizen).await, (StatusCode::GONE, "link_revoked".into()));
    let current = server.sign(&citizen_claims(&moved, now));
    assert_eq!(documents(&server, &room, &current).await.0, StatusCode::FORBIDDEN, "not admitted yet");

    // Over: the citizen's current link reads nothing any more.
    store.set_status(&appt.id, &[Status::Confirmed], Status::Completed, "system", "", now).await.expect("closed");
    assert_eq!(documents(&server, &room, &current).await, (StatusCode::GONE, "link_revoked".into()));

    // A deactivated official's host link reads nothing.
    let update =
        UserUpdate { display_name: official.display_name.clone(), role: official.role, active: false, pattern: None };
    store.update_user(&official.id, &update).await.expect("deactivated");
    assert_eq!(documents(&server, &room, &host).await.0, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn council_links_follow_the_chair_and_the_members() {
    let server = TestServer::start().await;
    let seeded = server.seed_council(&["Anna", "Bruno"], &["Bilancio"]).await.expect("council");
    let room = format!("council-{}", seeded.session.id);
    let token = |user: &sportello_store::User, role| {
        server.sign(&Claims::new(
            &room,
            &format!("user-{}", user.id),
            &user.display_name,
            role,
            Duration::from_secs(3600),
        ))
    };
    let (chair, anna, bruno) = (&seeded.chair, &seeded.councillors[0], &seeded.councillors[1]);
    assert_eq!(documents(&server, &room, &token(chair, Role::Host)).await.0, StatusCode::OK);
    assert_eq!(documents(&server, &room, &token(anna, Role::Participant)).await.0, StatusCode::OK);

    // Anna becomes chair: the old chair's link no longer chairs; hers (issued as a member) works.
    let store = &server.server.store;
    let s = &seeded.session;
    let update = NewCouncilSession {
        title: s.title.clone(),
        body: s.body,
        scheduled_at: s.scheduled_at,
        chair_id: anna.id.clone(),
        quorum: s.quorum.clone(),
    };
    store.update_council_session(&s.id, &update).await.expect("new chair");
    assert_eq!(documents(&server, &room, &token(chair, Role::Host)).await.0, StatusCode::FORBIDDEN);
    assert_eq!(documents(&server, &room, &token(anna, Role::Host)).await.0, StatusCode::OK);
    // Bruno is removed from the session: his link stops.
    assert_eq!(documents(&server, &room, &token(bruno, Role::Participant)).await.0, StatusCode::OK);
    store.set_council_members(&s.id, std::slice::from_ref(&anna.id)).await.expect("members");
    assert_eq!(documents(&server, &room, &token(bruno, Role::Participant)).await.0, StatusCode::FORBIDDEN);

    // The websocket join asks the same: the old chair's link is refused and the socket closed.
    for stale in [token(chair, Role::Host), token(bruno, Role::Participant)] {
        let mut ws = server.connect(&room).await;
        ws.send_json(&serde_json::json!({"v": 1, "type": "join", "token": stale})).await;
        let closed = ws.expect_closed(4004).await;
        assert!(closed.before.iter().any(|m| m["code"] == "link_revoked"), "{closed:?}");
    }
}

#[tokio::test]
async fn a_viewer_in_the_room_cannot_upload() {
    let server = TestServer::start().await;
    let (_viewer_ws, _) = server.join("sala", "vera", Role::Viewer).await;
    let viewer = server.token("sala", "vera", Role::Viewer);
    let response = reqwest::Client::new()
        .post(format!("{}/api/rooms/sala/documents", server.url()))
        .bearer_auth(&viewer)
        .header("X-File-Name", "modulo.pdf")
        .header("Content-Type", "application/pdf")
        .body(b"%PDF-1.4\n%%EOF\n".to_vec())
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(documents(&server, "sala", &viewer).await.0, StatusCode::OK, "reading is fine");
}
