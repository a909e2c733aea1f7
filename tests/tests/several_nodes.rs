//! Several nodes (issue 16): three real `sportello` processes on one throwaway PostgreSQL and one
//! throwaway nats-server, in a loopback-only namespace. Three participants of one room join
//! through *different* nodes — the room runs on the node that placed it first, and the other two
//! sessions are relayed there over NATS — and each decodes the other two's video (the filler
//! byte of the VP8 payload says whose picture it is). Then the owner is `kill -9`ed: the relays
//! close with 1012, every participant joins again through a surviving node, the room is taken
//! over with the next ownership epoch, and each one gets the others' video again; the time from
//! the kill to that is printed (BENCHMARKS.md, "Several nodes").
//!
//! Needs `target/<profile>/sportello` (`cargo build -p sportello-server --bin sportello`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sportello_backoffice::token::{Claims, Role, TokenKey};
use sportello_cluster::testing::TempNats;
use sportello_store::Store;
use sportello_tests::cluster::{
    ENOUGH, Member, ROOM, Result, next_json, node, send, service_for, until_all_see_all, with_logs,
};
use sportello_tests::process::Sportello;
use sportello_tests::rtc_client::Client;

fn main() {
    let _ = env_logger::try_init();
    sportello_tests::netns::run_scenario("several_nodes", scenario());
}

/// An official's dashboard reached through n3 sees a citizen waiting in a room that runs on n1,
/// and admits them from there (`rooms::anywhere`: asked of the owner over NATS).
async fn dashboard_on_another_node(store: &Store, tokens: &TokenKey, nodes: &[Sportello]) -> Result<()> {
    use sportello_store::{NewUser, StaffRole};
    const PASSWORD: &str = "ufficio-di-prova-2027";
    let new =
        NewUser { email: "dirigente@comune.example".into(), display_name: "Dirigente".into(), role: StaffRole::Admin };
    let admin = store.create_user(&new, 0).await.map_err(|e| e.to_string())?;
    let hash = sportello_backoffice::secrets::hash_password_blocking(PASSWORD).map_err(|e| e.to_string())?;
    store.set_password(&admin.id, &hash, 0).await.map_err(|e| e.to_string())?;
    let room = format!("vo-{}", admin.id);

    // The citizen waits in the official's virtual office, through n1: the room runs there.
    let claims = Claims::new(&room, "cittadino", "Mario Rossi", Role::Participant, Duration::from_secs(3600));
    let token = tokens.issue(&Claims { wait: true, ..claims }).map_err(|e| e.to_string())?;
    let (mut citizen, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws?room={room}", nodes[0].http))
        .await
        .map_err(|e| e.to_string())?;
    send(&mut citizen, json!({"v": 1, "type": "join", "token": token})).await?;
    let waiting = next_json(&mut citizen, Duration::from_secs(10)).await?;
    if waiting["type"] != "waiting" {
        return Err(format!("the citizen should wait: {waiting}"));
    }

    // The official's dashboard, on n3.
    let http = reqwest::Client::builder().cookie_store(true).build().map_err(|e| e.to_string())?;
    let n3 = format!("http://{}", nodes[2].http);
    let login = http
        .post(format!("{n3}/api/auth/login"))
        .json(&json!({"email": "dirigente@comune.example", "password": PASSWORD}))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !login.status().is_success() {
        return Err(format!("login on n3: {}", login.status()));
    }
    let list: Value = http
        .get(format!("{n3}/api/staff/waiting"))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let listed = list.as_array().is_some_and(|l| {
        l.iter().any(|w| w["room"] == room.as_str() && w["participant_id"] == "cittadino" && w["name"] == "Mario Rossi")
    });
    if !listed {
        return Err(format!("n3's dashboard does not show the citizen waiting on n1: {list}"));
    }
    let admitted = http
        .post(format!("{n3}/api/staff/rooms/{room}/admit"))
        .json(&json!({"participant_id": "cittadino"}))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if admitted.status() != reqwest::StatusCode::NO_CONTENT {
        return Err(format!("admit through n3: {}", admitted.status()));
    }
    let welcome = next_json(&mut citizen, Duration::from_secs(10)).await?;
    if welcome["type"] != "welcome" {
        return Err(format!("admitted through n3, the citizen should be welcomed: {welcome}"));
    }
    let _ = send(&mut citizen, json!({"v": 1, "type": "leave"})).await;
    println!("a citizen waiting on n1 was seen and admitted from the dashboard on n3");
    Ok(())
}

/// A council whose chair joined through n1 runs on the least loaded node; asked through another
/// node it is live, that node serves a WHEP viewer itself (its own media address: an edge,
/// `cascade.rs`), and the viewer's `DELETE` through a third node reaches it (`forward.rs`).
async fn live_stream_through_another_node(store: &Store, tokens: &TokenKey, nodes: &[Sportello]) -> Result<()> {
    use sportello_store::{CouncilBody, NewCouncilSession, NewUser, StaffRole};
    let now = jiff::Timestamp::now().as_second();
    let new = NewUser {
        email: "presidente@comune.example".into(),
        display_name: "Presidente".into(),
        role: StaffRole::Chair,
    };
    let chair = store.create_user(&new, now).await.map_err(|e| e.to_string())?;
    let council = NewCouncilSession {
        title: "Consiglio comunale".into(),
        body: CouncilBody::Consiglio,
        scheduled_at: now,
        chair_id: chair.id.clone(),
        quorum: "majority".into(),
    };
    let session = store.create_council_session(&council, now).await.map_err(|e| e.to_string())?;
    let room = format!("council-{}", session.id);
    let claims = Claims::new(&room, &format!("user-{}", chair.id), "Presidente", Role::Host, Duration::from_secs(3600));
    let token = tokens.issue(&claims).map_err(|e| e.to_string())?;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws?room={room}", nodes[0].http))
        .await
        .map_err(|e| e.to_string())?;
    send(&mut ws, json!({"v": 1, "type": "join", "token": token})).await?;
    let welcome = next_json(&mut ws, Duration::from_secs(10)).await?;
    if welcome["type"] != "welcome" {
        return Err(format!("the chair should be welcomed on n1: {welcome}"));
    }
    let http = reqwest::Client::new();
    let state_at = |node: SocketAddr| {
        let http = http.clone();
        let url = format!("http://{node}/api/live/{}", session.id);
        async move {
            let state: Value =
                http.get(url).send().await.map_err(|e| e.to_string())?.json().await.map_err(|e| e.to_string())?;
            Ok::<_, String>(state["status"].as_str().unwrap_or_default().to_owned())
        }
    };
    // Placed on the least loaded node, which need not be n1: ask another one.
    let owner = store.room_owner(&room).await.map_err(|e| e.to_string())?.ok_or("the council has no owner")?;
    let index: usize = owner.node.trim_start_matches('n').parse().map_err(|_| format!("owner {owner:?}"))?;
    let (owner, other) = (&nodes[index - 1], &nodes[index % 3]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while state_at(owner.http).await? != "live" {
        if Instant::now() > deadline {
            return Err("the council never went live on its node".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let through_other = state_at(other.http).await?;
    if through_other != "live" {
        return Err(format!("asked through a node that does not run it, the council is {through_other:?}"));
    }
    // A WHEP viewer through that node: the answer comes from the owner and names its media port.
    let mut viewer = Client::new("whep-viewer").await.map_err(|e| e.to_string())?;
    viewer.receive_only(2, 1).map_err(|e| e.to_string())?;
    let (offer, _) = viewer.offer().map_err(|e| e.to_string())?;
    let answer = http
        .post(format!("http://{}/api/live/{}/whep", other.http, session.id))
        .header("content-type", "application/sdp")
        .body(offer)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let (status, location) = (answer.status(), answer.headers().get("location").cloned());
    let sdp = answer.text().await.map_err(|e| e.to_string())?;
    if status != reqwest::StatusCode::CREATED || location.is_none() {
        return Err(format!("WHEP through another node: {status} {location:?} {sdp}"));
    }
    // That node serves the viewer itself, an edge of the owner (tests/tests/council_cascade.rs).
    let edge_media = format!(" {} typ host", other.media.port());
    if !sdp.lines().any(|l| l.starts_with("a=candidate") && l.contains(&edge_media)) {
        return Err(format!("the WHEP answer does not name the edge's media port {}: {sdp}", other.media.port()));
    }
    // Its DELETE, through the owner, reaches the node its id names.
    let location = location.and_then(|l| l.to_str().ok().map(str::to_owned)).unwrap_or_default();
    let gone = http.delete(format!("http://{}{location}", owner.http)).send().await.map_err(|e| e.to_string())?;
    if !gone.status().is_success() {
        return Err(format!("ending the WHEP session through another node: {}", gone.status()));
    }
    let again = http.delete(format!("http://{}{location}", other.http)).send().await.map_err(|e| e.to_string())?;
    if again.status() != reqwest::StatusCode::NOT_FOUND {
        return Err(format!("the viewer's session should be over on its node: {}", again.status()));
    }
    let _ = send(&mut ws, json!({"v": 1, "type": "leave"})).await;
    println!("a council is live through a node that does not run it, which serves its WHEP viewer as an edge");
    Ok(())
}

async fn scenario() -> Result<()> {
    let db = tokio::task::spawn_blocking(sportello_store::testing::shared_postgres_database)
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let mut nats = TempNats::start().map_err(|e| e.to_string())?;
    let root = tempfile::tempdir().map_err(|e| e.to_string())?;
    let key_dir = root.path().join("key");
    let tokens = TokenKey::load_or_create(&key_dir).map_err(|e| e.to_string())?;
    let key = key_dir.join("jwt.key");
    let mut nodes = Vec::new();
    for i in 1..=3 {
        nodes.push(node(root.path(), &key, i, &db, &nats.url())?);
    }
    let token = |who: &str| {
        let claims = Claims::new(ROOM, who, who, Role::Host, Duration::from_secs(3600));
        tokens.issue(&claims).map_err(|e| e.to_string())
    };
    // Nodes judge each other only after a couple of seconds of their own health.
    tokio::time::sleep(Duration::from_millis(2500)).await;

    // Anna through n1 (the room is placed there), Bruno through n2, Carla through n3.
    let soon = Instant::now() + Duration::from_secs(10);
    let mut members = vec![
        Member::join("anna", 0xA1, nodes[0].http, &token("anna")?, soon).await?,
        Member::join("bruno", 0xB2, nodes[1].http, &token("bruno")?, soon).await?,
        Member::join("carla", 0xC3, nodes[2].http, &token("carla")?, soon).await?,
    ];
    let first = until_all_see_all(&mut members, Duration::from_secs(20)).await.map_err(|e| with_logs(e, &nodes))?;
    println!("three participants through three nodes: everyone decodes everyone after {first:?}");
    let joins: Vec<String> = members.iter().map(|m| format!("{} {:?}", m.name, m.joined_in)).collect();
    println!("websocket → welcome (anna direct, bruno and carla relayed): {}", joins.join(", "));
    let store = Store::connect(&db).await.map_err(|e| e.to_string())?;
    let owner = store.room_owner(ROOM).await.map_err(|e| e.to_string())?.ok_or("the room has no owner row")?;
    if (owner.node.as_str(), owner.epoch) != ("n1", 1) {
        return Err(format!("the room should run on n1 under epoch 1: {owner:?}"));
    }

    dashboard_on_another_node(&store, &tokens, &nodes).await.map_err(|e| with_logs(e, &nodes))?;
    live_stream_through_another_node(&store, &tokens, &nodes).await.map_err(|e| with_logs(e, &nodes))?;

    // NATS restarted: the calls carry on (media and the owner's own websockets never take NATS;
    // the relays' subscriptions come back with the connection).
    let before: Vec<u64> = members.iter().map(|m| m.total).collect();
    nats.stop();
    service_for(&mut members, Duration::from_secs(2)).await?;
    nats.restart().map_err(|e| e.to_string())?;
    service_for(&mut members, Duration::from_secs(2)).await?;
    for (m, before) in members.iter().zip(before) {
        if m.closed.is_some() || m.total < before + 2 * ENOUGH {
            return Err(with_logs(
                format!(
                    "{}'s call did not carry on through a NATS restart: {before} → {} ({:?})",
                    m.name, m.total, m.closed
                ),
                &nodes,
            ));
        }
    }
    println!("NATS restarted: every call carried on");

    // The owner dies. Its own participant's websocket breaks; the relays close with 1012.
    nodes[0].kill9()?;
    let killed = Instant::now();
    let reconnect_by = Duration::from_secs(10);
    let mut closes = HashMap::new();
    while closes.len() < members.len() {
        for m in members.iter_mut() {
            m.service().await?;
            if let Some(why) = &m.closed {
                closes.entry(m.name.clone()).or_insert_with(|| (killed.elapsed(), why.clone()));
            }
        }
        if killed.elapsed() > reconnect_by {
            return Err(format!("sessions not closed after the owner's death: {closes:?}"));
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    println!("sessions closed after the kill: {closes:?}");

    // Everyone joins again through a surviving node, as the browser's client does.
    let deadline = killed + reconnect_by;
    let survivors = [nodes[1].http, nodes[2].http];
    let mut again = Vec::new();
    for (i, m) in members.into_iter().enumerate() {
        let via = survivors[i % 2];
        again.push(Member::join(&m.name, m.fill, via, &token(&m.name)?, deadline).await?);
    }
    let mut members = again;
    until_all_see_all(&mut members, Duration::from_secs(20)).await.map_err(|e| with_logs(e, &nodes))?;
    let moved = killed.elapsed();
    println!("owner killed → everyone decodes everyone again: {moved:?}");
    let owner = store.room_owner(ROOM).await.map_err(|e| e.to_string())?.ok_or("no owner row")?;
    if owner.node == "n1" || owner.epoch != 2 {
        return Err(format!("the room should have been taken over under epoch 2: {owner:?}"));
    }
    // The dead owner's epoch writes nothing any more.
    let zombie = store.fenced(ROOM, 1).record_admission(ROOM, "someone", 0).await;
    if !matches!(zombie, Err(sportello_store::StoreError::Fenced { .. })) {
        return Err(format!("a write under the old epoch was not refused: {zombie:?}"));
    }

    // The new owner freezes (SIGSTOP). Relayed sessions close when it is judged hung (5 s); its
    // own websockets stay open, and their pages rejoin once their connections stall.
    let owner = store.room_owner(ROOM).await.map_err(|e| e.to_string())?.ok_or("no owner row")?;
    let frozen_index = if owner.node == "n2" { 1 } else { 2 };
    let survivor = nodes[3 - frozen_index].http;
    let frozen_http = nodes[frozen_index].http;
    nodes[frozen_index].freeze(true)?;
    let frozen = Instant::now();
    // Someone on the frozen node writes in the chat: the zombie reads it when it thaws.
    for m in members.iter_mut().filter(|m| m.via == frozen_http) {
        send(&mut m.ws, json!({"v": 1, "type": "chat", "text": format!("zombie {}", m.name)})).await?;
    }
    let deadline = frozen + Duration::from_secs(20);
    loop {
        let mut next = Vec::new();
        for m in members {
            let name = m.name.clone();
            next.push(m.rejoin_if_lost(Duration::from_secs(3), survivor, &token(&name)?, deadline).await?);
        }
        members = next;
        for m in members.iter_mut() {
            m.service().await?;
        }
        if members.iter().all(|m| m.via == survivor && m.closed.is_none()) {
            break;
        }
        if Instant::now() > deadline {
            return Err(with_logs("not everyone came back from the frozen owner".into(), &nodes));
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    until_all_see_all(&mut members, Duration::from_secs(20)).await.map_err(|e| with_logs(e, &nodes))?;
    println!("owner frozen → everyone decodes everyone again: {:?}", frozen.elapsed());
    let owner = store.room_owner(ROOM).await.map_err(|e| e.to_string())?.ok_or("no owner row")?;
    if owner.epoch != 3 {
        return Err(format!("the room should have been taken over from the frozen owner under epoch 3: {owner:?}"));
    }

    // It thaws: it finds itself fenced, and the chat it had queued is refused by the epoch.
    nodes[frozen_index].freeze(false)?;
    service_for(&mut members, Duration::from_secs(3)).await?;
    let chat = store.chat(ROOM, 100).await.map_err(|e| e.to_string())?;
    if let Some(late) = chat.iter().find(|c| c.body.starts_with("zombie")) {
        return Err(with_logs(format!("the thawed zombie's write landed: {late:?}"), &nodes));
    }
    let log = nodes[frozen_index].last_log();
    if !log.contains("Fenced") {
        return Err(with_logs("the thawed node did not fence itself".into(), &nodes));
    }

    // The node that holds everyone is drained (`sportello drain`, as an operator before
    // maintenance): it gives the room up, closes its sessions with 1012 — and everyone moves to
    // the thawed node; the command says so once done.
    let draining = 3 - frozen_index;
    let thawed = nodes[frozen_index].http;
    let mut drain = std::process::Command::new(sportello_tests::process::binary()?)
        .args(["drain", "--deadline", "20s", "--node-id", &format!("n{}", draining + 1), "--nats-url", &nats.url()])
        .args(["--database-url", &db, "--data-dir"])
        .arg(&nodes[draining].data_dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("sportello drain: {e}"))?;
    let stopping = Instant::now();
    while members.iter().any(|m| m.closed.is_none()) {
        for m in members.iter_mut() {
            m.service().await?;
        }
        if stopping.elapsed() > Duration::from_secs(10) {
            let said = drain.try_wait().ok().flatten().and_then(|_| drain.stderr.take()).map(|mut e| {
                let mut text = String::new();
                let _ = std::io::Read::read_to_string(&mut e, &mut text);
                text
            });
            return Err(with_logs(format!("the draining node did not move its sessions: {said:?}"), &nodes));
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    while drain.try_wait().map_err(|e| e.to_string())?.is_none() {
        if stopping.elapsed() > Duration::from_secs(30) {
            let _ = drain.kill();
            return Err(with_logs("`sportello drain` did not finish".into(), &nodes));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let said = drain.wait_with_output().map_err(|e| e.to_string())?;
    let out = String::from_utf8_lossy(&said.stdout);
    if !said.status.success() || !out.contains("sessions left 0") {
        return Err(format!("`sportello drain`: {} {out} {}", said.status, String::from_utf8_lossy(&said.stderr)));
    }
    // A balancer's health check leaves it out now.
    let ready = reqwest::get(format!("http://{}/readyz", nodes[draining].http)).await.map_err(|e| e.to_string())?;
    let (status, text) = (ready.status(), ready.text().await.unwrap_or_default());
    if status != reqwest::StatusCode::SERVICE_UNAVAILABLE || !text.contains("drains") {
        return Err(format!("/readyz of the drained node: {status} {text}"));
    }
    if let Some(m) = members.iter().find(|m| !m.closed.as_deref().unwrap_or_default().contains("node draining")) {
        return Err(format!("{} was not told the node drains: {:?}", m.name, m.closed));
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut next = Vec::new();
    for m in members {
        let name = m.name.clone();
        next.push(Member::join(&name, m.fill, thawed, &token(&name)?, deadline).await?);
    }
    let mut members = next;
    until_all_see_all(&mut members, Duration::from_secs(20)).await.map_err(|e| with_logs(e, &nodes))?;
    println!("`sportello drain` → everyone decodes everyone again on the other node: {:?}", stopping.elapsed());
    // Then stopped (SIGTERM drains, here nothing left, and exits).
    nodes[draining].terminate()?;
    let status = tokio::task::block_in_place(|| nodes[draining].wait_exit(Duration::from_secs(40)))?;
    if !status.success() {
        return Err(format!("the drained node exited with {status}"));
    }
    for m in &mut members {
        let _ = send(&mut m.ws, json!({"v": 1, "type": "leave"})).await;
    }
    Ok(())
}
