//! A load participant on Sportello: its websocket (docs/signaling.md) and up to two peer connections
//! in the engine (publish: we offer; subscribe: the server offers).

use std::net::SocketAddr;
use std::time::Instant;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

use super::engine::{Engine, PeerId};
use super::err;
use super::peer::Role;
use super::scenario::Participant;

/// Joins, publishes if asked, answers every subscribe offer, and leaves when `stop` turns true.
/// An error before `stop` is a join (or session) error of the run.
pub async fn participant(
    engine: Engine,
    http: SocketAddr,
    token: String,
    who: Participant,
    mut stop: watch::Receiver<bool>,
) -> Result<(), String> {
    let started = Instant::now();
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{http}/ws?room={}", who.room))
        .await
        .map_err(err("websocket"))?;
    let send = |v: Value| Message::text(v.to_string());
    ws.send(send(json!({"v": 1, "type": "join", "token": token}))).await.map_err(err("sending join"))?;
    let mut publish: Option<PeerId> = None;
    let mut subscribe: Option<PeerId> = None;
    let mut welcomed = false;
    let result = loop {
        let msg = tokio::select! {
            _ = stop.wait_for(|s| *s) => break Ok(()),
            m = ws.next() => m,
        };
        let text = match msg {
            Some(Ok(Message::Text(t))) => t,
            Some(Ok(Message::Close(frame))) => break Err(format!("server closed the websocket: {frame:?}")),
            Some(Ok(_)) => continue,
            Some(Err(e)) => break Err(format!("websocket: {e}")),
            None => break Err("websocket ended".into()),
        };
        let Ok(m) = serde_json::from_str::<Value>(&text) else { continue };
        match m["type"].as_str().unwrap_or("") {
            "welcome" if !welcomed => {
                welcomed = true;
                if let Some(index) = who.publish {
                    let (id, offer) = engine.create(&who.identity, Role::Publish(index), started).await?;
                    publish = Some(id);
                    let (sdp, mids) = offer.ok_or("a publisher without an offer")?;
                    let tracks: Vec<Value> = mids
                        .iter()
                        .map(|(mid, video)| json!({"mid": mid, "source": if *video { "camera" } else { "microphone" }}))
                        .collect();
                    let offer = json!({"v": 1, "type": "offer", "pc": "publish", "sdp": sdp, "tracks": tracks});
                    ws.send(send(offer)).await.map_err(err("sending the offer"))?;
                }
            }
            "answer" => {
                if let (Some(id), Some(sdp)) = (publish, m["sdp"].as_str()) {
                    engine.apply_answer(id, sdp.to_owned()).await?;
                }
            }
            "offer" => {
                let Some(sdp) = m["sdp"].as_str() else { continue };
                let id = match subscribe {
                    Some(id) => id,
                    None => {
                        let (id, _) = engine.create(&who.identity, Role::Subscribe, started).await?;
                        subscribe = Some(id);
                        id
                    }
                };
                let answer = engine.answer(id, sdp.to_owned()).await?;
                let reply = json!({"v": 1, "type": "answer", "pc": "subscribe", "sdp": answer});
                ws.send(send(reply)).await.map_err(err("sending the answer"))?;
            }
            "error" => break Err(format!("server error: {}", m["code"])),
            _ => {}
        }
    };
    let _ = ws.send(send(json!({"v": 1, "type": "leave"}))).await;
    for id in [publish, subscribe].into_iter().flatten() {
        engine.close(id);
    }
    result
}
