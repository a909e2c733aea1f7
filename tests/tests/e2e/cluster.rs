//! Scenario `cluster_call` (issue 16): three real `sportello` nodes on one throwaway PostgreSQL and
//! nats-server, behind a real nginx balancing them (`least_conn`, as for long-lived websockets), and
//! three Chromium participants of one room joining through it: the lobby's network check says UDP
//! connects (its probe's offers reach the node that issued it), their websockets land on three
//! different nodes (the nodes' logs say so), the room runs on one, the other two sessions are
//! relayed to it, and everyone decodes the others' camera. Then the room's node is `kill -9`ed:
//! every page reconnects through the balancer by itself, the room is taken over, and everyone
//! decodes the others again on new connections — the time from the kill is printed. Then the new
//! owner is frozen (`SIGSTOP`): the same, through the page's heartbeat for those on it.
//!
//! Needs `target/<profile>/sportello`.

use std::path::Path;
use std::time::{Duration, Instant};

use sportello_backoffice::token::{Claims, Role, TokenKey};
use sportello_cluster::testing::TempNats;
use sportello_store::Store;
use sportello_tests::browser::{Result, err};
use sportello_tests::cluster::{node_sharing, with_logs};
use sportello_tests::nginx::Nginx;
use sportello_tests::process::{Sportello, free_port};

use super::{Ctx, MEDIA_TIMEOUT, join, media_condition};

const ROOM: &str = "ufficio-cluster";

/// The balancer as `docs/cluster.md` advises for nginx: every request to any node, websockets
/// upgraded, a node that refuses or answers nothing for 10 s (a frozen one: the kernel still
/// accepts its connections) skipped, and left alone for 30 s. Websockets are never idle for 10 s:
/// the server pings every 5 s.
fn balancer(dir: &Path, port: u16, nodes: &[&Sportello]) -> String {
    let servers: String =
        nodes.iter().map(|n| format!("    server {} max_fails=1 fail_timeout=30s;\n", n.http)).collect();
    let d = dir.display();
    format!(
        "worker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{ worker_connections 256; }}\n\
         http {{\n  log_format upstream '$request_uri $upstream_addr $status';\n  access_log {d}/balancer.log upstream;\n\
         \x20 client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n\
         \x20 uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
         \x20 map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}\n\
         \x20 upstream sportello {{\n    least_conn;\n{servers}  }}\n\
         \x20 server {{\n    listen 127.0.0.1:{port};\n    location / {{\n      proxy_pass http://sportello;\n\
         \x20     proxy_http_version 1.1;\n      proxy_set_header Host $host;\n\
         \x20     proxy_set_header Upgrade $http_upgrade;\n      proxy_set_header Connection $connection_upgrade;\n\
         \x20     proxy_connect_timeout 1s;\n      proxy_read_timeout 10s;\n      proxy_next_upstream error timeout;\n    }}\n  }}\n}}\n"
    )
}

pub async fn cluster_call(ctx: &mut Ctx) -> Result<()> {
    let db = tokio::task::spawn_blocking(sportello_store::testing::shared_postgres_database)
        .await
        .map_err(|e| err(e.to_string()))?
        .map_err(|e| err(e.to_string()))?;
    let nats = TempNats::start().map_err(|e| err(e.to_string()))?;
    let root = tempfile::tempdir()?;
    let data = root.path().join("shared");
    std::fs::create_dir_all(&data)?;
    let tokens = TokenKey::load_or_create(&data).map_err(|e| err(e.to_string()))?;
    let front_port = free_port().map_err(err)?;
    let public = format!("http://127.0.0.1:{front_port}");
    let mut nodes = Vec::new();
    for i in 1..=3 {
        nodes.push(node_sharing(root.path(), &data, i, &db, &nats.url(), &["--public-url", &public]).map_err(err)?);
    }
    let front =
        Nginx::start_with(|dir| Ok(balancer(dir, front_port, &nodes.iter().collect::<Vec<_>>())), &[front_port])
            .await
            .map_err(err)?;
    // Nodes judge each other only after a couple of seconds of their own health.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let logs = |nodes: &[Sportello], front: &Nginx| {
        let balanced = std::fs::read_to_string(front_log(front)).unwrap_or_default();
        with_logs(String::new(), nodes) + "\n" + &front.log_text() + &balanced
    };

    let everyone = ["anna", "bruno", "carla"];
    for who in everyone {
        let role = if who == "anna" { Role::Host } else { Role::Participant };
        let claims = Claims::new(ROOM, who, who, role, Duration::from_secs(3600));
        let link = format!("{public}/join?t={}", tokens.issue(&claims).map_err(|e| err(e.to_string()))?);
        let b = ctx.open(who, &link).await?;
        // One at a time: the balancer sends each websocket to the node with the fewest.
        join(&ctx.browsers[b]).await.map_err(|e| err(format!("{e}{}", logs(&nodes, &front))))?;
        // The lobby's check spoke to the node that issued its probe, wherever the balancer sent
        // its offers (`forward.rs`): UDP connects.
        let verdict: Option<String> = ctx.browsers[b].eval("window.sportello.netcheck.verdict").await?;
        if verdict.as_deref() != Some("ok") {
            return Err(err(format!("[{who}] the network check through the balancer says {verdict:?}")));
        }
    }
    let sees_others = |id: &str| {
        let others: Vec<String> = everyone.iter().filter(|o| **o != id).map(|o| format!("{o}/camera")).collect();
        media_condition(&others.iter().map(String::as_str).collect::<Vec<_>>(), &[])
    };
    let all_see = async {
        for (b, id) in ctx.browsers.iter().zip(everyone) {
            b.wait_for(&sees_others(id), MEDIA_TIMEOUT).await?;
        }
        Ok::<_, sportello_tests::browser::Error>(())
    };
    all_see.await.map_err(|e| err(format!("{e}{}", logs(&nodes, &front))))?;
    // Which node took each websocket: the owner runs its own, the two others relay theirs to it.
    let store = Store::connect(&db).await?;
    let owner = store.room_owner(ROOM).await?.ok_or_else(|| err("the room has no owner"))?;
    let index: usize = owner.node.trim_start_matches('n').parse().map_err(|_| err(format!("owner {owner:?}")))?;
    let relayed: Vec<String> = nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| plain(&n.last_log()).contains("session relayed to the room's owner"))
        .map(|(i, _)| format!("n{}", i + 1))
        .filter(|n| *n != owner.node)
        .collect();
    if relayed.len() != 2 {
        return Err(err(format!(
            "the websockets should be on three nodes: the owner {}, relayed from {relayed:?}{}",
            owner.node,
            logs(&nodes, &front)
        )));
    }
    println!("  three Chromium participants on three nodes through nginx decode each other");

    // The room's node dies; the pages come back through the balancer by themselves.
    let mark = "window.__e2eOld = { sub: window.sportello.pcs.subscribe };";
    for b in &ctx.browsers {
        b.exec(mark).await?;
    }
    nodes[index - 1].kill9().map_err(err)?;
    let killed = Instant::now();
    let again = |id: &str| {
        format!(
            "window.sportello.pcs.subscribe && window.sportello.pcs.subscribe !== window.__e2eOld.sub && ({})",
            sees_others(id)
        )
    };
    let times =
        all_back(ctx, &everyone, &again, killed).await.map_err(|e| err(format!("{e}{}", logs(&nodes, &front))))?;
    println!("  room's node killed → each page decodes the others again (seen at): {}", times.join(", "));
    let owner = store.room_owner(ROOM).await?.ok_or_else(|| err("no owner row"))?;
    if owner.node == format!("n{index}") || owner.epoch != 2 {
        return Err(err(format!("the room should have been taken over under epoch 2: {owner:?}")));
    }

    // The new owner freezes (SIGSTOP, a stuck VM): pages relayed through the other node are
    // closed when it is judged hung (5 s), pages straight on it hear nothing more (no `pong`) and
    // leave it after 5 s of silence; all join again on the last node, which takes the room over.
    let frozen: usize = owner.node.trim_start_matches('n').parse().map_err(|_| err(format!("owner {owner:?}")))?;
    for b in &ctx.browsers {
        b.exec(mark).await?;
    }
    nodes[frozen - 1].freeze(true).map_err(err)?;
    let froze = Instant::now();
    let times =
        all_back(ctx, &everyone, &again, froze).await.map_err(|e| err(format!("{e}{}", logs(&nodes, &front))))?;
    println!("  room's node frozen → each page decodes the others again (seen at): {}", times.join(", "));
    let owner = store.room_owner(ROOM).await?.ok_or_else(|| err("no owner row"))?;
    if owner.epoch != 3 {
        return Err(err(format!("the room should have been taken over from the frozen node: {owner:?}")));
    }
    nodes[frozen - 1].freeze(false).map_err(err)?;
    store.close().await;
    drop(front);
    drop(nats);
    Ok(())
}

/// Waits until each page (in `everyone`'s order) meets `again(its id)`; says when, after `since`.
async fn all_back(ctx: &Ctx, everyone: &[&str], again: &dyn Fn(&str) -> String, since: Instant) -> Result<Vec<String>> {
    let mut times = Vec::new();
    for (b, id) in ctx.browsers.iter().zip(everyone) {
        b.wait_for(&again(id), MEDIA_TIMEOUT).await?;
        times.push(format!("{id} {:.1} s", since.elapsed().as_secs_f64()));
    }
    Ok(times)
}

/// A log without its terminal colours.
fn plain(log: &str) -> String {
    let mut out = String::with_capacity(log.len());
    let mut chars = log.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn front_log(front: &Nginx) -> std::path::PathBuf {
    front.dir().join("balancer.log")
}
