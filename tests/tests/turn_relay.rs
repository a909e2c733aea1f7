//! TURN with a real coturn (`turnserver`, Debian `coturn`) configured as `deploy/coturn.conf` is —
//! `use-auth-secret`, the server's secret, relaying to the SFU's address only:
//! - a citizen's `welcome` carries a TURN server whose credential coturn accepts: a relay-only
//!   publisher (aiortc, `tests/aiortc/turn_relay.py`) connects through coturn, and the official in
//!   the room (a sans-IO `rtc` client) receives its video, keyframes included;
//! - an expired credential is refused: with the server's clock a TTL and an hour behind, the
//!   `welcome`'s credential has expired for coturn, which allocates no relay, so nothing connects.
//!
//! Runs inside a loopback-only network namespace (own `main`, see `sportello_tests::netns`); coturn
//! is started here with its own pid, log and ports and stopped by its PID.

use std::time::Duration;

use serde_json::{Value, json};
use sportello_backoffice::clock::Clock;
use sportello_rooms::turn::TurnSecret;
use sportello_tests::aiortc::RelayPublisher;
use sportello_tests::coturn::{Coturn, CoturnConfig};
use sportello_tests::rtc_client::{Client, pump};
use sportello_tests::server::{Claims, Role, TestServer, WsClient};

type Result<T> = std::result::Result<T, String>;

const SECRET: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f0";
/// Off the SFU's (ephemeral) port and off coturn's default and alternative ports.
const TURN_PORT: u16 = 34780;
const TTL: Duration = Duration::from_secs(12 * 3600);
/// How long the publisher sends after its answer.
const SEND_SECONDS: u64 = 6;
const ROOM: &str = "anagrafe";

fn main() {
    sportello_tests::netns::run_scenario("turn_relay", scenarios());
}

fn check(cond: bool, what: impl Into<String>) -> Result<()> {
    if cond { Ok(()) } else { Err(what.into()) }
}

/// Joins with a token valid at the server clock's now; returns the socket and the TURN entry of
/// its `welcome`.
async fn join(server: &TestServer, clock: &Clock, identity: &str, role: Role) -> Result<(WsClient, Value)> {
    let now = u64::try_from(clock.now()).map_err(|e| e.to_string())?;
    let name = identity.to_owned();
    let claims = Claims::new_at(now, ROOM, identity, &name, role, Duration::from_secs(3600));
    let mut ws = server.connect(ROOM).await;
    let welcome = ws.join(&server.sign(&claims)).await;
    check(welcome["type"] == "welcome", format!("{identity}: {welcome}"))?;
    let turn = welcome["ice_servers"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["urls"][0].as_str().is_some_and(|u| u.starts_with("turn:"))))
        .cloned()
        .ok_or_else(|| format!("{identity}'s welcome has no TURN server: {welcome}"))?;
    let username = turn["username"].as_str().unwrap_or_default();
    check(username.ends_with(&format!(":{identity}")), format!("TURN username {username:?} is not {identity}'s"))?;
    Ok((ws, turn))
}

/// Publishes the script's offer as `identity`'s camera and hands it the answer.
async fn publish(ws: &mut WsClient, publisher: &mut RelayPublisher, offer: &Value) -> Result<()> {
    ws.send_json(&json!({
        "v": 1, "type": "offer", "pc": "publish", "sdp": offer["offer"],
        "tracks": [{ "mid": offer["mid"], "source": "camera" }]
    }))
    .await;
    let answer = ws.recv_until("answer").await;
    publisher.answer(answer["sdp"].as_str().ok_or("answer without sdp")?).await
}

async fn scenarios() -> Result<()> {
    let coturn = Coturn::start(&CoturnConfig::new(SECRET, TURN_PORT)).await?;
    let clock = Clock::system();
    let server = TestServer::start_at(clock.clone(), |c| {
        c.turn_urls = vec![format!("turn:127.0.0.1:{TURN_PORT}?transport=udp")];
        c.turn_ttl = TTL;
        c.turn_secret = TurnSecret::new(SECRET);
    })
    .await;
    let outcome = async {
        relayed_media_reaches_the_room(&server, &clock).await?;
        expired_credential_is_refused(&server, &clock).await
    }
    .await;
    let log = coturn.log_text();
    coturn.stop().await;
    server.shutdown().await;
    outcome.map_err(|e| format!("{e}\n--- coturn log ---\n{log}"))
}

async fn relayed_media_reaches_the_room(server: &TestServer, clock: &Clock) -> Result<()> {
    let (mut official, _) = join(server, clock, "official", Role::Host).await?;
    let (mut citizen, turn) = join(server, clock, "citizen", Role::Participant).await?;
    let (mut publisher, offer) = RelayPublisher::start(&json!([turn]), SEND_SECONDS, None).await?;
    let relays = &offer["relay_candidates"];
    check(relays.as_u64() > Some(0), format!("coturn allocated no relay ({relays} relay candidates)"))?;
    publish(&mut citizen, &mut publisher, &offer).await?;

    // The official subscribes to the citizen's camera, on a direct path.
    let mut viewer = Client::new("official").await.map_err(|e| e.to_string())?;
    let sub_offer = official.recv_until("offer").await;
    let sdp = viewer.answer(sub_offer["sdp"].as_str().unwrap_or_default().to_owned()).map_err(|e| e.to_string())?;
    official.send_json(&json!({"v": 1, "type": "answer", "pc": "subscribe", "sdp": sdp})).await;
    let video = |c: &Client| {
        let (packets, keyframes) = c
            .received
            .iter()
            .filter(|(k, _)| k.starts_with("citizen/"))
            .fold((0, 0), |(p, f), (k, n)| (p + n, f + c.keyframes.get(k).copied().unwrap_or(0)));
        (packets, keyframes)
    };
    let flowed = pump(
        &mut [&mut viewer],
        Duration::from_secs(SEND_SECONDS),
        |cs| matches!(video(cs[0]), (p, k) if p >= 50 && k >= 1),
    )
    .await;
    publisher.relayed().await?;
    check(
        flowed,
        format!("the official got too little of the citizen's video (packets, keyframes): {:?}", video(&viewer)),
    )?;
    viewer.close();
    citizen.leave().await;
    official.leave().await;
    Ok(())
}

async fn expired_credential_is_refused(server: &TestServer, clock: &Clock) -> Result<()> {
    // The server hands out credentials from a TTL and an hour ago: expired for coturn.
    let back = i64::try_from(TTL.as_secs()).map_err(|e| e.to_string())? + 3600;
    clock.advance(-back);
    let joined = join(server, clock, "late", Role::Participant).await;
    clock.advance(back);
    let (mut late, turn) = joined?;
    let expiry: i64 = turn["username"].as_str().and_then(|u| u.split(':').next()?.parse().ok()).unwrap_or(i64::MAX);
    check(expiry < clock.now(), format!("the credential should have expired: {turn}"))?;
    let (mut publisher, offer) = RelayPublisher::start(&json!([turn]), SEND_SECONDS, None).await?;
    let relays = &offer["relay_candidates"];
    check(*relays == 0, format!("coturn allocated {relays} relays for an expired credential"))?;
    publish(&mut late, &mut publisher, &offer).await?;
    let result = publisher.line().await?;
    check(result["state"] != "connected", format!("connected with an expired credential: {result}"))?;
    late.leave().await;
    Ok(())
}
