//! Several nodes (issue 16): a council's stream cascaded from its origin node to edge nodes. Three
//! real `sportello` processes share one data directory, one throwaway PostgreSQL and one
//! throwaway nats-server, in a loopback-only namespace. The chair joins the council by websocket
//! and publishes a camera; WHEP viewers (the `rtc` test client, as the load tool's) are served by
//! the two nodes that do not run the council — their answers name those nodes' own media ports —
//! and decode the chair's picture (the VP8 filler byte says whose it is) relayed over one leg per
//! edge. Then:
//! - the origin is `kill -9`ed: the chair joins again through an edge and the council is taken
//!   over by an edge (the least loaded); the viewers keep their connections (on the slate
//!   meanwhile), the edge that became the origin composes in place, the other relays it, and every
//!   viewer decodes the chair again — timed;
//! - the other edge is `kill -9`ed: its viewers come back through the surviving node — timed (and
//!   the chair, if its session was relayed through that edge, joins again);
//! - the viewer cap (3 here) is counted across the nodes: a fourth viewer is refused by the origin,
//!   which serves none itself;
//! - the session ends: the archive holds two segments, the one the dead origin never finished
//!   (adopted by the new owner) and the new owner's.
//!
//! Needs `target/<profile>/sportello` (`cargo build -p sportello-server --bin sportello`).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sportello_backoffice::token::{Claims, Role, TokenKey};
use sportello_cluster::testing::TempNats;
use sportello_store::Store;
use sportello_tests::cluster::{ENOUGH, Member, Result, node_sharing, send, with_logs};
use sportello_tests::process::Sportello;
use sportello_tests::rtc_client::Client;

const VIDEO: &str = "program/program/video";
const CHAIR_FILL: u8 = 0xC1;

fn main() {
    let _ = env_logger::try_init();
    sportello_tests::netns::run_scenario("council_cascade", scenario());
}

/// A WHEP viewer and the node it asked.
struct Viewer {
    client: Client,
    via: SocketAddr,
}

impl Viewer {
    /// POSTs a viewer's offer to `node`, which must answer with its own media port; while the
    /// cluster is full (`503`), asks again for up to 5 s, as the live page does.
    async fn watch(name: &str, node: &Sportello, session: &str) -> Result<Viewer> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match Viewer::try_watch(name, node, session).await? {
                Ok(viewer) => return Ok(viewer),
                Err(full) if Instant::now() < deadline => {
                    eprintln!("{name}: {full}; again");
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(full) => return Err(full),
            }
        }
    }

    /// One POST: the viewer, or (inner `Err`) the cluster's viewer cap said no.
    async fn try_watch(name: &str, node: &Sportello, session: &str) -> Result<Result<Viewer>> {
        let mut client = Client::new(name).await.map_err(|e| e.to_string())?;
        client.receive_only(2, 1).map_err(|e| e.to_string())?;
        let (offer, _) = client.offer().map_err(|e| e.to_string())?;
        let answer = reqwest::Client::new()
            .post(format!("http://{}/api/live/{session}/whep", node.http))
            .header("content-type", "application/sdp")
            .body(offer)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = answer.status();
        let sdp = answer.text().await.map_err(|e| e.to_string())?;
        if status == reqwest::StatusCode::SERVICE_UNAVAILABLE {
            return Ok(Err(format!("{name}: the cluster is full ({sdp})")));
        }
        if status != reqwest::StatusCode::CREATED {
            return Err(format!("{name}: WHEP through {}: {status} {sdp}", node.http));
        }
        let own = format!(" {} typ host", node.media.port());
        if !sdp.lines().any(|l| l.starts_with("a=candidate") && l.contains(&own)) {
            return Err(format!("{name}: the answer does not name {}'s own media port: {sdp}", node.http));
        }
        client.apply_answer(sdp).map_err(|e| e.to_string())?;
        Ok(Ok(Viewer { client, via: node.http }))
    }

    /// Video packets of the chair's picture received so far.
    fn chair_video(&self) -> u64 {
        if self.client.last_video_fill.get(VIDEO) == Some(&CHAIR_FILL) { self.client.received(VIDEO) } else { 0 }
    }
}

/// Services the chair and the viewers until each viewer got `ENOUGH` more of the chair's video
/// than `from` says, or `within` passes.
async fn until_viewers_decode(
    chair: &mut Member,
    viewers: &mut [Viewer],
    from: &[u64],
    within: Duration,
) -> Result<Duration> {
    let start = Instant::now();
    loop {
        chair.service().await?;
        for v in viewers.iter_mut() {
            let _ = v.client.step().await;
        }
        if viewers.iter().zip(from).all(|(v, from)| v.chair_video() >= from + ENOUGH) {
            return Ok(start.elapsed());
        }
        if start.elapsed() > within {
            let got: Vec<String> = viewers
                .iter()
                .map(|v| format!("via {}: {:?} {:?}", v.via, v.client.received, v.client.last_video_fill.get(VIDEO)))
                .collect();
            return Err(format!("viewers did not decode the chair within {within:?}: {}", got.join("; ")));
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn counts(viewers: &[Viewer]) -> Vec<u64> {
    viewers.iter().map(Viewer::chair_video).collect()
}

async fn live_status(node: SocketAddr, session: &str) -> Result<String> {
    let state: Value = reqwest::get(format!("http://{node}/api/live/{session}"))
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    Ok(state["status"].as_str().unwrap_or_default().to_owned())
}

async fn scenario() -> Result<()> {
    use sportello_store::{CouncilBody, NewCouncilSession, NewUser, StaffRole};
    let db = tokio::task::spawn_blocking(sportello_store::testing::shared_postgres_database)
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let nats = TempNats::start().map_err(|e| e.to_string())?;
    let root = tempfile::tempdir().map_err(|e| e.to_string())?;
    // One data directory for the three: the signing key, and recordings any of them may finish.
    let data = root.path().join("shared");
    std::fs::create_dir_all(&data).map_err(|e| e.to_string())?;
    let tokens = TokenKey::load_or_create(&data).map_err(|e| e.to_string())?;
    // The same configuration file for all (as on shared storage): a cap of 3 viewers in all.
    std::fs::write(data.join("sportello.toml"), "max_live_viewers = 3\n").map_err(|e| e.to_string())?;
    let mut nodes = Vec::new();
    for i in 1..=3 {
        nodes.push(node_sharing(root.path(), &data, i, &db, &nats.url(), &[])?);
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;

    let store = Store::connect(&db).await.map_err(|e| e.to_string())?;
    let now = jiff::Timestamp::now().as_second();
    let new = NewUser {
        email: "presidente@comune.example".into(),
        display_name: "Presidente".into(),
        role: StaffRole::Chair,
    };
    let chair_user = store.create_user(&new, now).await.map_err(|e| e.to_string())?;
    let council = NewCouncilSession {
        title: "Consiglio comunale".into(),
        body: CouncilBody::Consiglio,
        scheduled_at: now,
        chair_id: chair_user.id.clone(),
        quorum: "majority".into(),
    };
    let session = store.create_council_session(&council, now).await.map_err(|e| e.to_string())?;
    let room = format!("council-{}", session.id);
    let claims =
        Claims::new(&room, &format!("user-{}", chair_user.id), "Presidente", Role::Host, Duration::from_secs(3600));
    let token = tokens.issue(&claims).map_err(|e| e.to_string())?;

    // The chair through n1; the council runs where it was placed.
    let soon = Instant::now() + Duration::from_secs(10);
    let mut chair = Member::join_room(&room, "chair", CHAIR_FILL, nodes[0].http, &token, soon).await?;
    let owner = store.room_owner(&room).await.map_err(|e| e.to_string())?.ok_or("the council has no owner")?;
    let origin: usize = owner.node.trim_start_matches('n').parse::<usize>().map_err(|e| e.to_string())? - 1;
    let (a, b) = ((origin + 1) % 3, (origin + 2) % 3);
    let deadline = Instant::now() + Duration::from_secs(10);
    while live_status(nodes[origin].http, &session.id).await? != "live" {
        chair.service().await?;
        if Instant::now() > deadline {
            return Err(with_logs("the council never went live".into(), &nodes));
        }
    }

    // Two viewers through edge a, one through edge b.
    let mut viewers = Vec::new();
    for (name, edge) in [("va1", a), ("va2", a), ("vb", b)] {
        viewers.push(Viewer::watch(name, &nodes[edge], &session.id).await.map_err(|e| with_logs(e, &nodes))?);
    }
    let first = until_viewers_decode(&mut chair, &mut viewers, &[0, 0, 0], Duration::from_secs(20))
        .await
        .map_err(|e| with_logs(e, &nodes))?;
    println!("three WHEP viewers on two edges decode the chair after {first:?}");
    let legs = nodes[origin].last_log().matches("relay leg to an edge connected").count();
    if legs != 2 {
        return Err(with_logs(format!("the origin should serve one leg per edge, 2 in all: {legs}"), &nodes));
    }
    // The cap (3 here) is the cluster's: the origin, which serves no viewer itself, refuses a
    // fourth once the edges' counts reached it (statuses every 500 ms).
    tokio::time::sleep(Duration::from_secs(1)).await;
    match Viewer::try_watch("fourth", &nodes[origin], &session.id).await? {
        Err(_) => {}
        Ok(_) => return Err(with_logs("a fourth viewer got in over the cluster's cap of 3".into(), &nodes)),
    }

    // The origin dies. The chair joins again through edge a (as the page does); the viewers stay.
    nodes[origin].kill9()?;
    let killed = Instant::now();
    while chair.closed.is_none() {
        chair.service().await?;
        if killed.elapsed() > Duration::from_secs(10) {
            return Err("the chair's websocket outlived its node".into());
        }
    }
    let mut chair =
        Member::join_room(&room, "chair", CHAIR_FILL, nodes[a].http, &token, killed + Duration::from_secs(15))
            .await
            .map_err(|e| with_logs(e, &nodes))?;
    let from = counts(&viewers);
    until_viewers_decode(&mut chair, &mut viewers, &from, Duration::from_secs(20))
        .await
        .map_err(|e| with_logs(e, &nodes))?;
    println!("origin killed → the edges' viewers decode the chair again from the new origin: {:?}", killed.elapsed());
    // Placed on the least loaded live node: either edge.
    let owner = store.room_owner(&room).await.map_err(|e| e.to_string())?.ok_or("no owner row")?;
    let now_origin = if owner.node == format!("n{}", a + 1) { a } else { b };
    if owner.node != format!("n{}", now_origin + 1) || owner.epoch != 2 {
        return Err(format!("the council should run on an edge under epoch 2: {owner:?}"));
    }
    let edge = if now_origin == a { b } else { a };

    // The other edge dies: its viewers come back through the surviving node.
    nodes[edge].kill9()?;
    let killed = Instant::now();
    let (lost, mut viewers): (Vec<Viewer>, Vec<Viewer>) = viewers.into_iter().partition(|v| v.via == nodes[edge].http);
    // What a player does: no picture for a second, it asks again (through the balancer).
    let mut lost: Vec<(Viewer, u64, Instant)> = lost.into_iter().map(|v| (v, 0, Instant::now())).collect();
    while !lost.is_empty() {
        chair.service().await?;
        if chair.closed.is_some() {
            // The chair's session was relayed through the dead edge: the page joins again.
            let by = Instant::now() + Duration::from_secs(10);
            chair = Member::join_room(&room, "chair", CHAIR_FILL, nodes[now_origin].http, &token, by).await?;
        }
        for v in viewers.iter_mut() {
            let _ = v.client.step().await;
        }
        let mut still = Vec::new();
        for (mut v, mut seen, mut since) in lost {
            let _ = v.client.step().await;
            if v.client.received(VIDEO) > seen {
                (seen, since) = (v.client.received(VIDEO), Instant::now());
            }
            if since.elapsed() > Duration::from_secs(1) {
                let name = format!("{}-again", v.client.name);
                viewers.push(
                    Viewer::watch(&name, &nodes[now_origin], &session.id).await.map_err(|e| with_logs(e, &nodes))?,
                );
            } else {
                still.push((v, seen, since));
            }
        }
        lost = still;
        if killed.elapsed() > Duration::from_secs(10) {
            return Err("the viewers of the killed edge kept getting video".into());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let from = counts(&viewers);
    until_viewers_decode(&mut chair, &mut viewers, &from, Duration::from_secs(20))
        .await
        .map_err(|e| with_logs(e, &nodes))?;
    println!("edge killed → its viewers decode the chair again through another node: {:?}", killed.elapsed());

    // The chair leaves: the room empties and its recording is archived, after the dead origin's.
    send(&mut chair.ws, json!({"v": 1, "type": "leave"})).await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    let recordings = loop {
        let recordings = store.recordings_for_session(&session.id).await.map_err(|e| e.to_string())?;
        if recordings.len() >= 2 {
            break recordings;
        }
        if Instant::now() > deadline {
            return Err(with_logs(format!("the archive holds {} segment(s), not 2", recordings.len()), &nodes));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for r in &recordings {
        let file = data.join("recordings").join(&session.id).join(&r.file_name);
        if r.duration_ms < 1000 || !file.is_file() {
            return Err(format!("segment {} ({} ms) at {}: missing or empty", r.id, r.duration_ms, file.display()));
        }
    }
    println!(
        "the archive holds both segments: {:?}",
        recordings.iter().map(|r| (r.started_at, r.duration_ms)).collect::<Vec<_>>()
    );
    Ok(())
}
