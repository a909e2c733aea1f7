//! Several `sportello` processes on one PostgreSQL and one nats-server (issue 16): the nodes, and
//! a participant that joins a room through one of them by websocket, publishes its camera and
//! receives the others'.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::process::Sportello;
use crate::rtc_client::Client;

pub type Result<T> = std::result::Result<T, String>;
pub type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub const ROOM: &str = "vo-cluster";
/// Video packets each participant must get from each other one (≈ 2 s of the test clients' video).
pub const ENOUGH: u64 = 40;

/// One participant: its websocket (to one node), its publishing and its receiving connection.
pub struct Member {
    pub name: String,
    pub fill: u8,
    pub ws: Ws,
    pub publisher: Client,
    pub viewer: Client,
    /// The session was closed by the server (its node died, or the relay to the owner ended).
    pub closed: Option<String>,
    /// The video received in all, and when it last grew (a frozen node sends nothing).
    pub total: u64,
    pub progressed: Instant,
    /// The node its websocket goes to.
    pub via: SocketAddr,
    /// From opening the websocket to `welcome` (through a relay or not).
    pub joined_in: Duration,
}

impl Member {
    /// Joins through `node` (retrying while the room's placement is refused, as the browser's
    /// client does) and publishes its video.
    pub async fn join(name: &str, fill: u8, node: SocketAddr, token: &str, deadline: Instant) -> Result<Member> {
        Member::join_room(ROOM, name, fill, node, token, deadline).await
    }

    /// [`Member::join`] into `room`.
    pub async fn join_room(
        room: &str,
        name: &str,
        fill: u8,
        node: SocketAddr,
        token: &str,
        deadline: Instant,
    ) -> Result<Member> {
        loop {
            let opened = Instant::now();
            let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{node}/ws?room={room}"))
                .await
                .map_err(|e| format!("{name}: websocket to {node}: {e}"))?;
            send(&mut ws, json!({"v": 1, "type": "join", "token": token})).await?;
            match next_json(&mut ws, Duration::from_secs(10)).await {
                Ok(m) if m["type"] == "welcome" => {
                    let joined_in = opened.elapsed();
                    let mut publisher = Client::new(&format!("{name}-pub")).await.map_err(|e| e.to_string())?;
                    publisher.video_fill = fill;
                    publisher.add_track(true).map_err(|e| e.to_string())?;
                    let (sdp, mids) = publisher.offer().map_err(|e| e.to_string())?;
                    let tracks: Vec<Value> =
                        mids.iter().map(|(mid, _)| json!({"mid": mid, "source": "camera"})).collect();
                    send(&mut ws, json!({"v": 1, "type": "offer", "pc": "publish", "sdp": sdp, "tracks": tracks}))
                        .await?;
                    let viewer = Client::new(&format!("{name}-sub")).await.map_err(|e| e.to_string())?;
                    return Ok(Member {
                        name: name.into(),
                        fill,
                        ws,
                        publisher,
                        viewer,
                        closed: None,
                        total: 0,
                        progressed: Instant::now(),
                        via: node,
                        joined_in,
                    });
                }
                // The room cannot be placed yet (its dead owner not judged so yet): again.
                Ok(m) if m["type"] == "error" && m["code"] == "internal" && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Ok(m) => return Err(format!("{name}: expected welcome from {node}, got {m}")),
                Err(e) if Instant::now() < deadline => {
                    eprintln!("{name}: {e}; again");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => return Err(format!("{name}: {e}")),
            }
        }
    }

    /// Handles what the server sent (answers, subscribe offers) and moves both connections' media.
    pub async fn service(&mut self) -> Result<()> {
        while self.closed.is_none() {
            let msg = match tokio::time::timeout(Duration::from_millis(1), self.ws.next()).await {
                Err(_) => break,
                Ok(msg) => msg,
            };
            let text = match msg {
                Some(Ok(Message::Text(t))) => t,
                Some(Ok(Message::Close(frame))) => {
                    self.closed = Some(format!("{frame:?}"));
                    break;
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => {
                    self.closed = Some(e.to_string());
                    break;
                }
                None => {
                    self.closed = Some("ended".into());
                    break;
                }
            };
            let m: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
            match (m["type"].as_str(), m["pc"].as_str()) {
                (Some("answer"), _) => {
                    let sdp = m["sdp"].as_str().unwrap_or_default().to_owned();
                    self.publisher.apply_answer(sdp).map_err(|e| format!("{}: answer: {e}", self.name))?;
                }
                (Some("offer"), _) => {
                    let sdp = m["sdp"].as_str().unwrap_or_default().to_owned();
                    let answer = self.viewer.answer(sdp).map_err(|e| format!("{}: offer: {e}", self.name))?;
                    send(&mut self.ws, json!({"v": 1, "type": "answer", "pc": "subscribe", "sdp": answer})).await?;
                }
                (Some("error"), _) => eprintln!("{}: server error {m}", self.name),
                _ => {}
            }
        }
        for c in [&mut self.publisher, &mut self.viewer] {
            if let Err(e) = c.step().await {
                eprintln!("{}: {e}", c.name);
            }
        }
        let total: u64 = self.viewer.received.values().sum();
        if total > self.total {
            (self.total, self.progressed) = (total, Instant::now());
        }
        Ok(())
    }

    /// What the page does when its connections stay disconnected (here: no video for `stalled`)
    /// or its websocket was closed: it joins again, through `node`.
    pub async fn rejoin_if_lost(
        self,
        stalled: Duration,
        node: SocketAddr,
        token: &str,
        deadline: Instant,
    ) -> Result<Member> {
        if self.closed.is_none() && self.progressed.elapsed() < stalled {
            return Ok(self);
        }
        Member::join(&self.name, self.fill, node, token, deadline).await
    }

    /// Video packets received from `other`, counted only while its own filler byte arrives.
    pub fn video_from(&self, other: &Member) -> u64 {
        // The receiving track's key: stream (participant) / track id (participant/source).
        let key = format!("{0}/{0}/camera", other.name);
        if self.viewer.last_video_fill.get(&key) == Some(&other.fill) { self.viewer.received(&key) } else { 0 }
    }
}

pub async fn send(ws: &mut Ws, value: Value) -> Result<()> {
    ws.send(Message::text(value.to_string())).await.map_err(|e| format!("websocket send: {e}"))
}

pub async fn next_json(ws: &mut Ws, within: Duration) -> Result<Value> {
    let end = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(end, ws.next()).await {
            Err(_) => return Err(format!("nothing within {within:?}")),
            Ok(Some(Ok(Message::Text(t)))) => return serde_json::from_str(&t).map_err(|e| e.to_string()),
            Ok(Some(Ok(Message::Close(frame)))) => return Err(format!("closed: {frame:?}")),
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(e))) => return Err(e.to_string()),
            Ok(None) => return Err("websocket ended".into()),
        }
    }
}

/// Services everyone until each gets `ENOUGH` video from each other one, or `within` passes.
pub async fn until_all_see_all(members: &mut [Member], within: Duration) -> Result<Duration> {
    let start = Instant::now();
    loop {
        for m in members.iter_mut() {
            m.service().await?;
        }
        let all = (0..members.len())
            .all(|i| (0..members.len()).filter(|&j| j != i).all(|j| members[i].video_from(&members[j]) >= ENOUGH));
        if all {
            return Ok(start.elapsed());
        }
        if start.elapsed() > within {
            let seen: Vec<String> = members
                .iter()
                .map(|m| {
                    let got: Vec<String> = members
                        .iter()
                        .filter(|o| o.name != m.name)
                        .map(|o| format!("{} {}", o.name, m.video_from(o)))
                        .collect();
                    format!(
                        "{} got [{}] (closed: {:?}; publishing connected {}, receiving connected {}, received {:?}, fills {:?})",
                        m.name,
                        got.join(", "),
                        m.closed,
                        m.publisher.connected(),
                        m.viewer.connected(),
                        m.viewer.received,
                        m.viewer.last_video_fill
                    )
                })
                .collect();
            return Err(format!("not everyone saw everyone within {within:?}: {}", seen.join("; ")));
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Services everyone for `span`.
pub async fn service_for(members: &mut [Member], span: Duration) -> Result<()> {
    let end = Instant::now() + span;
    while Instant::now() < end {
        for m in members.iter_mut() {
            m.service().await?;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Ok(())
}

/// `error`, with the end of each node's log.
pub fn with_logs(error: String, nodes: &[Sportello]) -> String {
    let mut out = error;
    for (i, n) in nodes.iter().enumerate() {
        let log = n.last_log();
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        out += &format!("\n--- n{} ---\n{}", i + 1, tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
    }
    out
}

pub fn node(root: &Path, key: &Path, i: usize, db: &str, nats: &str) -> Result<Sportello> {
    let data = root.join(format!("n{i}/data"));
    std::fs::create_dir_all(&data).map_err(|e| e.to_string())?;
    // One signing key for the cluster (docs/cluster.md: shared what must be shared).
    std::fs::copy(key, data.join("jwt.key")).map_err(|e| e.to_string())?;
    let extra: Vec<String> =
        ["--database-url", db, "--node-id", &format!("n{i}"), "--nats-url", nats, "--reconnect-grace", "3s"]
            .iter()
            .map(|s| s.to_string())
            .collect();
    Sportello::start(&data, &extra)
}

/// Node `i` of a cluster whose nodes share one data directory `data` (the signing key, documents,
/// recordings: docs/cluster.md), its log in `root/n<i>/`, with `more` flags.
pub fn node_sharing(root: &Path, data: &Path, i: usize, db: &str, nats: &str, more: &[&str]) -> Result<Sportello> {
    let logs = root.join(format!("n{i}"));
    std::fs::create_dir_all(&logs).map_err(|e| e.to_string())?;
    let node = format!("n{i}");
    let base = ["--database-url", db, "--node-id", &node, "--nats-url", nats, "--reconnect-grace", "3s"];
    let extra: Vec<String> = base.iter().chain(more).map(|s| s.to_string()).collect();
    Sportello::start_in(data, &logs, &extra)
}
