//! Limits on what one participant or one address can do to a room (issue 20, item 7): a chat
//! flood is refused after a burst and nothing more is stored; websockets that never join are
//! capped per address, without touching other addresses.

use std::time::Duration;

use serde_json::json;
use sportello_tests::server::{Role, TestServer};

#[tokio::test]
async fn a_chat_flood_is_cut_after_a_burst() {
    let server = TestServer::start().await;
    let (mut anna, _) = server.join("sala", "anna", Role::Host).await;
    for i in 0..10 {
        anna.send_json(&json!({"v": 1, "type": "chat", "text": format!("messaggio {i}")})).await;
    }
    anna.send_json(&json!({"v": 1, "type": "chat", "text": "uno di troppo"})).await;
    anna.expect_error("chat_too_fast").await;
    // The burst is stored, the one too many is not.
    let mut stored = Vec::new();
    for _ in 0..50 {
        stored = server.server.store.chat("sala", 100).await.expect("chat");
        if stored.len() >= 10 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(stored.len(), 10);
    assert!(stored.iter().all(|m| m.body != "uno di troppo"));
}

#[tokio::test]
async fn websockets_that_never_join_are_capped_per_address() {
    let server = TestServer::start().await;
    let url = server.ws_url("sala");
    let mut idle = Vec::new();
    for _ in 0..8 {
        idle.push(tokio_tungstenite::connect_async(&url).await.expect("within the cap"));
    }
    let refused = tokio_tungstenite::connect_async(&url).await.expect_err("the ninth is refused");
    match refused {
        tokio_tungstenite::tungstenite::Error::Http(response) => assert_eq!(response.status(), 429),
        other => panic!("expected 429, got {other}"),
    }
    // Someone who joins is not held up by the flood's address count: closing one frees a place.
    drop(idle.pop());
    let mut joined = None;
    for _ in 0..50 {
        if let Ok(pair) = tokio_tungstenite::connect_async(&url).await {
            joined = Some(pair);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(joined.is_some(), "a place freed by a closed socket is given again");
}
