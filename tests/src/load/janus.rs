//! Status: works end to end (signaling, full ICE, DTLS, media). Janus's candidates are on the
//! bridge address 127.0.0.2 and our clients bind to it too — the reason is in
//! `servers::janus_interface` (libnice pins its sockets to their interface, so replies to 127.0.0.1
//! failed with EINVAL and ended in "ICE failed"). Diagnosis knobs: `LOAD_DEBUG=1` prints every Janus
//! event, `LOAD_JANUS_DEBUG=1` turns on `debug_level = 5` and `nice_debug`, `LOAD_KEEP_LOG=DIR`
//! keeps the server's log, `LOAD_JANUS_ICE_LITE=true` runs Janus in ICE-lite mode (default: full).
//!
//! A load participant on Janus 1.1.2's VideoRoom, through its HTTP JSON API (the equivalent of our
//! websocket): one session per participant with a long poll for events; a publisher handle that
//! joins the room (and publishes: we offer), and one multistream subscriber handle for every other
//! publisher's feed (Janus offers, we answer).

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

use super::engine::{Engine, PeerId};
use super::err;
use super::peer::Role;
use super::scenario::Participant;

/// Room name → numeric VideoRoom id, created before anyone joins.
#[derive(Clone, Default)]
pub struct Rooms(pub Arc<HashMap<String, u64>>);

impl Rooms {
    pub async fn create(http: SocketAddr, names: impl Iterator<Item = String>) -> Result<Rooms, String> {
        let session = Session::create(http).await?;
        let handle = session.attach().await?;
        let mut rooms = HashMap::new();
        for name in names {
            if rooms.contains_key(&name) {
                continue;
            }
            let id = rooms.len() as u64 + 1000;
            let body = json!({"request": "create", "room": id, "publishers": 100, "audiocodec": "opus",
                "videocodec": "vp8", "notify_joining": false, "bitrate": 0});
            let r = session.message(handle, body, None).await?;
            let data = &r["plugindata"]["data"];
            if data["videoroom"] != "created" {
                return Err(format!("janus: creating room {name}: {r}"));
            }
            rooms.insert(name, id);
        }
        Ok(Rooms(Arc::new(rooms)))
    }
}

/// POST (with a body) or GET on Janus's HTTP API; one connection per request (`Connection: close`).
async fn http(addr: SocketAddr, path: &str, body: Option<&Value>) -> Result<Value, String> {
    let mut s = TcpStream::connect(addr).await.map_err(err("janus: connecting"))?;
    let req = match body {
        Some(b) => {
            let b = b.to_string();
            format!(
                "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{b}",
                b.len()
            )
        }
        None => format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
    };
    s.write_all(req.as_bytes()).await.map_err(err("janus: sending"))?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.map_err(err("janus: reading"))?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").ok_or("janus: a response without headers")?;
    let body =
        if head.to_ascii_lowercase().contains("transfer-encoding: chunked") { dechunk(body) } else { body.into() };
    serde_json::from_str(&body).map_err(|e| format!("janus: bad JSON ({e}): {body}"))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else { break };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

fn transaction() -> String {
    format!("{:016x}", rand::random::<u64>())
}

#[derive(Clone, Copy)]
struct Session {
    http: SocketAddr,
    id: u64,
}

impl Session {
    async fn create(http: SocketAddr) -> Result<Session, String> {
        let r =
            super::janus::http(http, "/janus", Some(&json!({"janus": "create", "transaction": transaction()}))).await?;
        let id = r["data"]["id"].as_u64().ok_or(format!("janus: create session: {r}"))?;
        Ok(Session { http, id })
    }

    async fn attach(&self) -> Result<u64, String> {
        let body = json!({"janus": "attach", "plugin": "janus.plugin.videoroom", "transaction": transaction()});
        let r = http(self.http, &format!("/janus/{}", self.id), Some(&body)).await?;
        r["data"]["id"].as_u64().ok_or(format!("janus: attach: {r}"))
    }

    async fn message(&self, handle: u64, body: Value, jsep: Option<Value>) -> Result<Value, String> {
        let mut m = json!({"janus": "message", "body": body, "transaction": transaction()});
        if let Some(j) = jsep {
            m["jsep"] = j;
        }
        let r = http(self.http, &format!("/janus/{}/{handle}", self.id), Some(&m)).await?;
        if r["janus"] == "error" {
            return Err(format!("janus: {r}"));
        }
        Ok(r)
    }

    /// Tells Janus our candidates are all in the SDP.
    async fn candidates_done(&self, handle: u64) -> Result<(), String> {
        let m = json!({"janus": "trickle", "candidate": {"completed": true}, "transaction": transaction()});
        http(self.http, &format!("/janus/{}/{handle}", self.id), Some(&m)).await.map(drop)
    }

    async fn destroy(&self) {
        let m = json!({"janus": "destroy", "transaction": transaction()});
        let _ = http(self.http, &format!("/janus/{}", self.id), Some(&m)).await;
    }
}

/// Long-polls the session's events into `tx` until the receiver goes.
async fn poll_events(session: Session, tx: mpsc::UnboundedSender<Value>) {
    loop {
        let r = http(session.http, &format!("/janus/{}?maxev=20", session.id), None).await;
        let events = match r {
            Ok(Value::Array(a)) => a,
            Ok(v) => vec![v],
            Err(_) => return,
        };
        for e in events {
            if e["janus"] == "keepalive" {
                continue;
            }
            if tx.send(e).is_err() {
                return;
            }
        }
    }
}

/// Joins, publishes if asked, subscribes to every other publisher's feed, and leaves on `stop`.
pub async fn participant(
    engine: Engine,
    addr: SocketAddr,
    rooms: Rooms,
    who: Participant,
    mut stop: watch::Receiver<bool>,
) -> Result<(), String> {
    let started = Instant::now();
    let room = *rooms.0.get(&who.room).ok_or("janus: unknown room")?;
    let session = Session::create(addr).await?;
    let (tx, mut events) = mpsc::unbounded_channel();
    let poller = tokio::spawn(poll_events(session, tx));
    let publisher = session.attach().await?;
    let join = json!({"request": "join", "ptype": "publisher", "room": room, "display": who.identity});
    session.message(publisher, join, None).await?;

    let mut publish_pc: Option<PeerId> = None;
    let mut subscriber: Option<u64> = None;
    let mut subscribe_pc: Option<PeerId> = None;
    let mut own_feed: Option<u64> = None;
    let mut wanted: Vec<u64> = Vec::new();
    let mut subscribed: HashSet<u64> = HashSet::new();
    // One subscriber negotiation at a time: more feeds wait until our answer went out.
    let mut negotiating = false;
    let result: Result<(), String> = async {
        loop {
            let e = tokio::select! {
                _ = stop.wait_for(|s| *s) => return Ok(()),
                e = events.recv() => e.ok_or("janus: the event poll ended")?,
            };
            if std::env::var_os("LOAD_DEBUG").is_some() {
                eprintln!("janus event for {}: {e}", who.identity);
            }
            let sender = e["sender"].as_u64();
            let data = &e["plugindata"]["data"];
            if e["janus"] == "trickle" {
                let pc = if sender == Some(publisher) { publish_pc } else { subscribe_pc };
                if let (Some(pc), Some(c)) = (pc, e["candidate"]["candidate"].as_str()) {
                    engine.candidate(pc, c.to_owned());
                }
                continue;
            }
            if data["error"].is_string() {
                return Err(format!("janus: {}", data["error"]));
            }
            if sender == Some(publisher) {
                if data["videoroom"] == "joined" {
                    own_feed = data["id"].as_u64();
                    if let Some(index) = who.publish {
                        let (id, offer) = engine.create(&who.identity, Role::Publish(index), started).await?;
                        publish_pc = Some(id);
                        let (sdp, _) = offer.ok_or("a publisher without an offer")?;
                        if std::env::var_os("LOAD_DEBUG").is_some() {
                            eprintln!("our offer: {sdp}");
                        }
                        let jsep = json!({"type": "offer", "sdp": sdp});
                        session.message(publisher, json!({"request": "publish"}), Some(jsep)).await?;
                        session.candidates_done(publisher).await?;
                    }
                }
                for p in data["publishers"].as_array().into_iter().flatten() {
                    if let Some(feed) = p["id"].as_u64()
                        && Some(feed) != own_feed
                        && !subscribed.contains(&feed)
                        && !wanted.contains(&feed)
                    {
                        wanted.push(feed);
                    }
                }
                if let (Some(pc), Some("answer"), Some(sdp)) =
                    (publish_pc, e["jsep"]["type"].as_str(), e["jsep"]["sdp"].as_str())
                {
                    engine.apply_answer(pc, sdp.to_owned()).await?;
                }
            } else if sender.is_some()
                && sender == subscriber
                && let (Some("offer"), Some(sdp)) = (e["jsep"]["type"].as_str(), e["jsep"]["sdp"].as_str())
            {
                {
                    let pc = match subscribe_pc {
                        Some(pc) => pc,
                        None => {
                            let (pc, _) = engine.create(&who.identity, Role::Subscribe, started).await?;
                            subscribe_pc = Some(pc);
                            pc
                        }
                    };
                    let answer = engine.answer(pc, sdp.to_owned()).await?;
                    let jsep = json!({"type": "answer", "sdp": answer});
                    session.message(subscriber.unwrap_or_default(), json!({"request": "start"}), Some(jsep)).await?;
                    if subscribe_pc.is_some() {
                        let _ = session.candidates_done(subscriber.unwrap_or_default()).await;
                    }
                    negotiating = false;
                }
            }
            if !negotiating && !wanted.is_empty() {
                let streams: Vec<Value> = wanted.iter().map(|f| json!({"feed": f})).collect();
                subscribed.extend(wanted.drain(..));
                negotiating = true;
                match subscriber {
                    None => {
                        let h = session.attach().await?;
                        subscriber = Some(h);
                        let body = json!({"request": "join", "ptype": "subscriber", "room": room, "streams": streams});
                        session.message(h, body, None).await?;
                    }
                    Some(h) => {
                        session.message(h, json!({"request": "subscribe", "streams": streams}), None).await?;
                    }
                }
            }
        }
    }
    .await;
    for pc in [publish_pc, subscribe_pc].into_iter().flatten() {
        engine.close(pc);
    }
    session.destroy().await;
    poller.abort();
    result
}
