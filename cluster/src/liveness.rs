//! Who is alive, and what a node does when it cannot tell the others it is: pure rules over
//! registry rows, held locks and `now` (the I/O is in [`membership`](crate::membership)).
//!
//! The timeline of a node that stops renewing its heartbeat (its database connection is cut, its
//! process is frozen, the database is down):
//!
//! | since its last renewal | the node itself | the others |
//! |---|---|---|
//! | < [`REFUSE_AFTER`] | serving | — |
//! | < [`FENCE_AFTER`] | refuses joins, its calls go on | — |
//! | ≥ [`FENCE_AFTER`] | **fenced**: closes its rooms (their participants rejoin elsewhere) | — |
//! | ≥ [`HUNG_AFTER`] | — | judge it hung: the next join of one of its rooms takes the room over |
//!
//! so a node has given its rooms up before anyone takes them, and the fencing epoch
//! (`sportello_store::Store::fenced`) covers the node that was frozen and cannot fence itself in
//! time. A killed node is judged at once: its session-level advisory lock went with its process.
//!
//! **A database outage seen by every node** must not end every call at once: when the node hears
//! (over NATS) that the other nodes cannot renew either — or it was the only one serving — nobody
//! can take its rooms over, so it keeps its calls for [`OUTAGE_GRACE`], refusing joins, and fences
//! only after that. An observer whose own renewals failed lately judges nobody (after an outage,
//! every heartbeat is old and every lock is being taken again): it waits [`HUNG_AFTER`] of its own
//! health first.

use std::time::Duration;

use sportello_store::{NodeRow, NodeState};

/// How often a node renews its heartbeat (and checks its lock).
pub const RENEW_EVERY: Duration = Duration::from_secs(1);
/// No renewal for this long: the node refuses new joins.
pub const REFUSE_AFTER: Duration = Duration::from_secs(2);
/// No renewal for this long (and others reach the database): the node closes its rooms.
pub const FENCE_AFTER: Duration = Duration::from_secs(3);
/// A heartbeat this old marks a node hung: its rooms may be taken over.
pub const HUNG_AFTER: Duration = Duration::from_secs(5);
/// A node that just started (or an observer that just recovered) has this long to take its lock.
pub const LOCK_GRACE: Duration = Duration::from_secs(2);
/// Every node lost the database: calls go on this long, joins refused, before fencing anyway.
pub const OUTAGE_GRACE: Duration = Duration::from_secs(60);

/// What this node may do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Serving,
    /// Calls go on; new joins are refused (to be tried again).
    RefusingJoins,
    /// Rooms closed; nothing taken until renewals succeed again.
    Fenced,
}

/// What this node hears of the others' database access (over NATS, from their status messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Others {
    /// At least one other serving node renewed lately: the database is up, this node is cut off.
    ReachDatabase,
    /// Every other node heard from cannot renew either, or there is no other serving node:
    /// a database outage, nobody can take over.
    Blind,
    /// Nothing heard (this node is cut off from NATS too): assume it is the one cut off.
    Unknown,
}

/// This node's health, `since_renewal` after its last successful renewal.
pub fn health(since_renewal: Duration, others: Others) -> Health {
    // Past FENCE_AFTER only an outage every node sees keeps the calls (nobody can take them).
    let keeps_calls = since_renewal < FENCE_AFTER || (others == Others::Blind && since_renewal < OUTAGE_GRACE);
    if since_renewal < REFUSE_AFTER {
        Health::Serving
    } else if keeps_calls {
        Health::RefusingJoins
    } else {
        Health::Fenced
    }
}

/// Whether the renewal loop, last run `gap` ago, shows that this process itself stood still
/// (frozen): then it fences at once, whatever its next renewal says — the others may have judged
/// it hung and taken its rooms meanwhile. (A node that runs but cannot renew is handled by
/// [`health`]; it never stands still this long between two renewal attempts.)
pub fn stalled(gap: Duration) -> bool {
    gap >= FENCE_AFTER
}

/// Why a node is judged dead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dead {
    /// Its advisory lock is gone: the process (or its connection) died.
    LockLost,
    /// Its heartbeat is older than [`HUNG_AFTER`]: frozen, or cut off from the database.
    Hung,
}

/// Whether `node` is dead, as an observer sees it at `now_ms`: `lock_held` from the database's
/// lock table, `observer_healthy_for` how long the observer's own renewals have succeeded.
pub fn judge(node: &NodeRow, lock_held: bool, now_ms: i64, observer_healthy_for: Duration) -> Option<Dead> {
    if node.state == NodeState::Stopped {
        return None; // left cleanly: its rooms were released
    }
    let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    if !lock_held && observer_healthy_for >= LOCK_GRACE && now_ms - node.started_at >= ms(LOCK_GRACE) {
        return Some(Dead::LockLost);
    }
    if observer_healthy_for >= HUNG_AFTER && now_ms - node.heartbeat_at >= ms(HUNG_AFTER) {
        return Some(Dead::Hung);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    fn row(started_ago_ms: i64, heartbeat_ago_ms: i64, state: NodeState) -> NodeRow {
        NodeRow {
            id: "b".into(),
            lock_key: 2,
            epoch: 1,
            internal_url: String::new(),
            media_addr: String::new(),
            state,
            load: 0,
            key_id: String::new(),
            started_at: NOW - started_ago_ms,
            heartbeat_at: NOW - heartbeat_ago_ms,
        }
    }

    #[test]
    fn a_node_refuses_joins_then_fences_itself_before_the_others_judge_it_hung() {
        let secs = Duration::from_secs_f64;
        assert_eq!(health(secs(0.9), Others::ReachDatabase), Health::Serving);
        assert_eq!(health(secs(1.99), Others::Unknown), Health::Serving);
        assert_eq!(health(secs(2.0), Others::ReachDatabase), Health::RefusingJoins);
        assert_eq!(health(secs(3.0), Others::ReachDatabase), Health::Fenced);
        assert_eq!(health(secs(3.0), Others::Unknown), Health::Fenced, "cut off from everything: fence");
        assert!(FENCE_AFTER + RENEW_EVERY < HUNG_AFTER, "fenced with a renewal period to spare");
        // The others judge it hung only later.
        let hung_at = row(60_000, HUNG_AFTER.as_millis() as i64, NodeState::Serving);
        let not_yet = row(60_000, FENCE_AFTER.as_millis() as i64 + 1000, NodeState::Serving);
        assert_eq!(judge(&hung_at, true, NOW, secs(60.0)), Some(Dead::Hung));
        assert_eq!(judge(&not_yet, true, NOW, secs(60.0)), None);
    }

    #[test]
    fn a_process_that_stood_still_fences_before_anything_else() {
        assert!(!stalled(RENEW_EVERY + Duration::from_millis(500)), "a late tick is not a stall");
        assert!(!stalled(RENEW_EVERY * 2), "a renewal that took its timeout is not a stall");
        assert!(stalled(FENCE_AFTER));
        assert!(stalled(HUNG_AFTER * 3));
    }

    #[test]
    fn a_database_outage_seen_by_all_keeps_calls_for_a_bounded_grace() {
        let secs = Duration::from_secs_f64;
        assert_eq!(health(secs(3.0), Others::Blind), Health::RefusingJoins);
        assert_eq!(health(secs(59.0), Others::Blind), Health::RefusingJoins);
        assert_eq!(health(OUTAGE_GRACE, Others::Blind), Health::Fenced);
    }

    #[test]
    fn a_killed_node_is_judged_by_its_lock_at_once() {
        let healthy = Duration::from_secs(60);
        let fresh_heartbeat = row(60_000, 300, NodeState::Serving);
        assert_eq!(judge(&fresh_heartbeat, false, NOW, healthy), Some(Dead::LockLost));
        assert_eq!(judge(&fresh_heartbeat, true, NOW, healthy), None);
        // Just started: it may not hold its lock yet.
        assert_eq!(judge(&row(500, 500, NodeState::Serving), false, NOW, healthy), None);
        // Stopped cleanly: not dead, gone.
        assert_eq!(judge(&row(60_000, 60_000, NodeState::Stopped), false, NOW, healthy), None);
        // A draining or fenced node that dies is dead all the same.
        assert_eq!(judge(&row(60_000, 300, NodeState::Draining), false, NOW, healthy), Some(Dead::LockLost));
    }

    #[test]
    fn an_observer_just_back_from_an_outage_judges_nobody_yet() {
        // After an outage every heartbeat is old and every lock is being taken again.
        let stale = row(600_000, 30_000, NodeState::Serving);
        assert_eq!(judge(&stale, false, NOW, Duration::from_millis(500)), None);
        assert_eq!(judge(&stale, true, NOW, Duration::from_secs(3)), None, "a lock again, a heartbeat soon");
        assert_eq!(judge(&stale, false, NOW, LOCK_GRACE), Some(Dead::LockLost), "no lock after the grace");
        assert_eq!(judge(&stale, true, NOW, HUNG_AFTER), Some(Dead::Hung));
    }
}
