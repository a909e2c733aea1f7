//! Several nodes on one database: the node registry, room ownership and its fencing, leases — on
//! SQLite and PostgreSQL; the advisory locks that say a node lives, on PostgreSQL.

mod common;

use std::time::Duration;

use common::{Db, NOW};
use sportello_store::*;

scenarios!(
    nodes_register_with_a_new_epoch_per_start,
    room_ownership_moves_with_a_growing_epoch,
    a_fenced_write_after_a_takeover_changes_nothing,
    a_lease_has_one_holder_until_it_expires
);

const MS: i64 = NOW * 1000;

fn node(id: &str) -> NewNode {
    NewNode {
        id: id.into(),
        internal_url: format!("http://{id}.internal:8080"),
        media_addr: "127.0.0.1:3478".into(),
        key_id: "k1".into(),
    }
}

async fn nodes_register_with_a_new_epoch_per_start(db: Db) {
    let store = db.connect().await;
    let a = store.register_node(&node("a"), MS).await.unwrap();
    let b = store.register_node(&node("b"), MS).await.unwrap();
    assert_eq!((a.epoch, b.epoch), (1, 1));
    assert_ne!(a.lock_key, b.lock_key, "each node its own lock");

    // `a` starts again (a restart, or a second process given the same id): a new epoch, the same lock.
    let again = store.register_node(&node("a"), MS + 5_000).await.unwrap();
    assert_eq!(again, Registered { epoch: 2, lock_key: a.lock_key });
    assert!(!store.node_heartbeat("a", 1, NodeState::Serving, 3, MS + 6_000).await.unwrap(), "the old process is out");
    assert!(store.node_heartbeat("a", 2, NodeState::Draining, 7, MS + 6_000).await.unwrap());

    let rows = store.nodes().await.unwrap();
    assert_eq!(rows.len(), 2);
    let row = &rows[0];
    assert_eq!((row.id.as_str(), row.epoch, row.state, row.load), ("a", 2, NodeState::Draining, 7));
    assert_eq!((row.started_at, row.heartbeat_at), (MS + 5_000, MS + 6_000));
    assert_eq!((row.internal_url.as_str(), row.key_id.as_str()), ("http://a.internal:8080", "k1"));
}

async fn room_ownership_moves_with_a_growing_epoch(db: Db) {
    let store = db.connect().await;
    assert_eq!(store.room_owner("appt-1").await.unwrap(), None);
    assert_eq!(store.claim_room("appt-1", "a", MS).await.unwrap(), Some(1));
    assert_eq!(store.claim_room("appt-1", "b", MS).await.unwrap(), None, "owned: nobody else claims it");
    assert_eq!(store.claim_room("appt-1", "a", MS).await.unwrap(), None, "not twice either");

    // `a` is judged dead: `b` takes over from epoch 1; a second taker with the same view loses.
    assert_eq!(store.take_over_room("appt-1", 1, "b", MS + 1).await.unwrap(), Some(2));
    assert_eq!(store.take_over_room("appt-1", 1, "c", MS + 1).await.unwrap(), None);
    let owner = store.room_owner("appt-1").await.unwrap().unwrap();
    assert_eq!((owner.node.as_str(), owner.epoch, owner.claimed_at), ("b", 2, MS + 1));
    assert_eq!(store.rooms_of("b").await.unwrap().len(), 1);
    assert!(store.rooms_of("a").await.unwrap().is_empty());

    // The old owner cannot release what it lost; the owner can, and the epoch goes on from there.
    assert!(!store.release_room("appt-1", "a", 1).await.unwrap());
    assert!(store.release_room("appt-1", "b", 2).await.unwrap());
    assert_eq!(store.room_owner("appt-1").await.unwrap().unwrap().node, "");
    assert_eq!(store.claim_room("appt-1", "c", MS + 2).await.unwrap(), Some(3), "never back to an old epoch");
    assert!(matches!(store.claim_room("appt-2", "", MS).await, Err(StoreError::Invalid(_))));
}

async fn a_fenced_write_after_a_takeover_changes_nothing(db: Db) {
    let store = db.connect().await;
    let chat = |body: &str| NewChat {
        room: "room-7".into(),
        appointment_id: None,
        sender: "p1".into(),
        sender_name: "Anna".into(),
        body: body.into(),
        delete_after: NOW + 86_400,
    };
    let epoch = store.claim_room("room-7", "a", MS).await.unwrap().unwrap();
    let owner = store.fenced("room-7", epoch);
    owner.add_chat(&chat("prima"), NOW).await.unwrap();
    owner.record_admission("room-7", "citizen-1", NOW).await.unwrap();

    // `b` takes the room over; `a`, not knowing yet, goes on writing.
    store.take_over_room("room-7", epoch, "b", MS + 1).await.unwrap().unwrap();
    let zombie = owner;
    let refused = zombie.add_chat(&chat("dopo"), NOW + 1).await;
    assert!(
        matches!(&refused, Err(StoreError::Fenced { room, epoch: 1, current: Some(2) }) if room == "room-7"),
        "{refused:?}"
    );
    assert!(matches!(zombie.forget_admission("room-7", "citizen-1").await, Err(StoreError::Fenced { .. })));
    assert!(matches!(zombie.record_admission("room-7", "citizen-2", NOW).await, Err(StoreError::Fenced { .. })));
    let bodies: Vec<String> = store.chat("room-7", 10).await.unwrap().into_iter().map(|m| m.body).collect();
    assert_eq!(bodies, ["prima"], "the zombie's message is not stored");
    assert!(store.is_admitted("room-7", "citizen-1").await.unwrap(), "nor its forgetting");
    assert!(!store.is_admitted("room-7", "citizen-2").await.unwrap());

    // The new owner writes under its own epoch.
    store.fenced("room-7", 2).add_chat(&chat("nuovo"), NOW + 2).await.unwrap();
    assert_eq!(store.chat("room-7", 10).await.unwrap().len(), 2);
    // A room nobody claimed refuses a fenced write too.
    assert!(matches!(
        store.fenced("room-8", 1).add_chat(&chat("x"), NOW).await,
        Err(StoreError::Fenced { current: None, .. })
    ));
}

async fn a_lease_has_one_holder_until_it_expires(db: Db) {
    let store = db.connect().await;
    assert!(store.take_lease("retention", "a", MS, MS + 60_000).await.unwrap());
    assert!(!store.take_lease("retention", "b", MS + 1_000, MS + 61_000).await.unwrap(), "held by a");
    assert!(store.take_lease("retention", "a", MS + 1_000, MS + 61_000).await.unwrap(), "renewed by its holder");
    store.release_lease("retention", "b").await.unwrap();
    assert!(!store.take_lease("retention", "b", MS + 2_000, MS + 62_000).await.unwrap(), "b cannot release a's lease");
    assert!(store.take_lease("retention", "b", MS + 61_000, MS + 121_000).await.unwrap(), "expired: b takes it");
    store.release_lease("retention", "b").await.unwrap();
    assert!(store.take_lease("retention", "c", MS + 62_000, MS + 122_000).await.unwrap(), "released: free");
    assert!(store.take_lease("reminder:1", "a", MS, MS + 1).await.unwrap());
    assert_eq!(store.delete_expired_leases(MS + 100).await.unwrap(), 1, "only the expired one");
}

/// A node's advisory lock lives with its process's connection: held, seen by every node, refused
/// to a second process with the same node, gone as soon as the connection is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nodes_lock_is_seen_while_its_connection_lives() {
    let store = Db::postgres().connect().await;
    let a = store.register_node(&node("a"), MS).await.unwrap();
    let b = store.register_node(&node("b"), MS).await.unwrap();
    let mut lock_a = store.hold_node_lock(a.lock_key).await.unwrap();
    let lock_b = store.hold_node_lock(b.lock_key).await.unwrap();
    let mut held = store.held_node_locks().await.unwrap();
    held.sort();
    assert_eq!(held, [a.lock_key, b.lock_key]);
    assert!(matches!(store.hold_node_lock(a.lock_key).await, Err(StoreError::Conflict(_))), "a runs already");
    lock_a.check().await.unwrap();

    drop(lock_b);
    let mut waited = Duration::ZERO;
    while store.held_node_locks().await.unwrap().contains(&b.lock_key) {
        assert!(waited < Duration::from_secs(2), "b's lock outlived its connection");
        tokio::time::sleep(Duration::from_millis(20)).await;
        waited += Duration::from_millis(20);
    }
    assert_eq!(store.held_node_locks().await.unwrap(), [a.lock_key]);

    let sqlite = Db::sqlite();
    let single = sqlite.connect().await;
    assert!(single.held_node_locks().await.unwrap().is_empty(), "one node on SQLite: no locks");
    assert!(matches!(single.hold_node_lock(1).await, Err(StoreError::Invalid(_))));
}
