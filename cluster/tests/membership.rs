//! Nodes on one throwaway PostgreSQL and one throwaway nats-server, in this process: where a room
//! runs, how fast a killed owner's room moves, a second process with a running node's id, and a
//! database outage seen by every node.

use std::time::{Duration, Instant};

use sportello_cluster::testing::TempNats;
use sportello_cluster::{Cluster, ClusterError, Health, NodeConfig, Placement};
use sportello_store::Store;
use sportello_store::testing::{TempPostgres, shared_postgres_database};
use tokio::sync::watch;
use tokio::task::JoinHandle;

struct Node {
    cluster: Cluster,
    task: JoinHandle<()>,
    _stop: watch::Sender<bool>,
}

async fn node(url: &str, nats: &TempNats, id: &str) -> Result<Node, ClusterError> {
    node_with_key(url, nats, id, "k1").await
}

async fn node_with_key(url: &str, nats: &TempNats, id: &str, key_id: &str) -> Result<Node, ClusterError> {
    let store = Store::connect(url).await.unwrap();
    let (stop, shutdown) = watch::channel(false);
    let config = NodeConfig {
        id: id.into(),
        internal_url: format!("http://{id}.internal"),
        media_addr: "127.0.0.1:3478".into(),
        nats_url: nats.url(),
        key_id: key_id.into(),
    };
    let (cluster, task) = Cluster::join(store, config, shutdown).await?;
    Ok(Node { cluster, task, _stop: stop })
}

/// Waits until `what` holds, at most `limit`; returns how long it took.
async fn until(limit: Duration, mut what: impl AsyncFnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !what().await {
        assert!(start.elapsed() < limit, "not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    start.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_room_runs_on_one_node_and_moves_within_a_second_when_its_owner_is_killed() {
    let url = shared_postgres_database().unwrap();
    let nats = TempNats::start().unwrap();
    let a = node(&url, &nats, "a").await.unwrap();
    let b = node(&url, &nats, "b").await.unwrap();

    assert_eq!(a.cluster.place("appt-1").await.unwrap(), Placement::Local { epoch: 1 });
    assert_eq!(b.cluster.place("appt-1").await.unwrap(), Placement::Remote { node: "a".into() });
    assert_eq!(a.cluster.place("appt-1").await.unwrap(), Placement::Local { epoch: 1 }, "still a's");
    assert_eq!(b.cluster.place("appt-2").await.unwrap(), Placement::Local { epoch: 1 });
    // What REST and the live stream ask: who else runs a room (nobody else, for one's own).
    assert_eq!(b.cluster.remote_owner("appt-1").await.map(|n| n.id), Some("a".into()));
    assert_eq!(b.cluster.remote_owner("appt-2").await, None);
    assert_eq!(b.cluster.remote_owner("appt-none").await, None);

    // A second process started with a's id is refused, and a keeps its epoch; so is a node whose
    // signing key differs from the running nodes'.
    assert!(matches!(node(&url, &nats, "a").await, Err(ClusterError::DuplicateNode(_))));
    assert!(matches!(node_with_key(&url, &nats, "c", "k2").await, Err(ClusterError::KeyMismatch(_))));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(a.cluster.health(), Health::Serving);
    assert!(a.cluster.takes_joins());

    // Killed: its task (and the database connection holding its lock) gone at once. b, healthy
    // for a while now, sees it within a second and takes the room over with the next epoch.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    a.task.abort();
    drop(a.cluster);
    let took = until(Duration::from_secs(3), async || b.cluster.is_dead("a")).await;
    assert!(took < Duration::from_millis(1000), "a's death seen after {took:?}");
    assert_eq!(b.cluster.remote_owner("appt-1").await, None, "a dead owner is nobody's to ask");
    assert_eq!(b.cluster.place("appt-1").await.unwrap(), Placement::Local { epoch: 2 });
    assert!(b.cluster.live_nodes().iter().all(|n| n.id != "a"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_database_outage_seen_by_every_node_refuses_joins_but_fences_nobody_at_once() {
    let _ = tracing_subscriber::fmt().with_test_writer().with_env_filter("sportello_cluster=debug").try_init();
    // A server of its own: this test stops it.
    let pg = tokio::task::spawn_blocking(TempPostgres::start).await.unwrap().unwrap();
    let nats = TempNats::start().unwrap();
    let a = node(pg.url(), &nats, "a").await.unwrap();
    let b = node(pg.url(), &nats, "b").await.unwrap();
    assert_eq!(a.cluster.place("council-1").await.unwrap(), Placement::Local { epoch: 1 });
    tokio::time::sleep(Duration::from_millis(2500)).await;

    pg.stop().unwrap();
    // Within the refusal window both refuse joins; past the fencing time they still carry their
    // calls, since each hears the other cannot renew either.
    let refusing = |n: &Node| n.cluster.health() == Health::RefusingJoins;
    until(Duration::from_secs(4), async || refusing(&a) && refusing(&b)).await;
    assert!(!a.cluster.takes_joins() && !b.cluster.takes_joins());
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!((a.cluster.health(), b.cluster.health()), (Health::RefusingJoins, Health::RefusingJoins));
    assert!(a.cluster.place("appt-9").await.is_err(), "no join placed without the database");
    // The database is back: both renew, take their locks again and serve.
    pg.restart().unwrap();
    let serving = |n: &Node| n.cluster.health() == Health::Serving;
    until(Duration::from_secs(5), async || serving(&a) && serving(&b)).await;
    assert!(a.cluster.takes_joins());
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(!a.cluster.is_dead("b") && !b.cluster.is_dead("a"), "nobody judged dead after the outage");
    assert_eq!(b.cluster.place("council-1").await.unwrap(), Placement::Remote { node: "a".into() });

    // b is gone; a, alone on NATS with the registry saying b was serving, then loses the database:
    // it cannot tell an outage from being cut off itself, and fences.
    b.task.abort();
    drop(b);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    pg.stop().unwrap();
    until(Duration::from_secs(6), async || a.cluster.health() == Health::Fenced).await;
}
