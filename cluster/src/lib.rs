//! Several Sportello nodes as one service (issue 16, `docs/cluster.md`): the node registry and
//! liveness in PostgreSQL, self-fencing, where a room runs, and NATS between the nodes.
//!
//! Layout:
//! - [`liveness`]: the pure rules — when a node refuses joins, fences itself, is judged dead.
//! - [`membership`]: this node's row, lock, heartbeat and view of the others; [`Cluster::place`]
//!   decides where a joining session's room runs (claimed, taken over, or another node's).
//!
//! - [`relay`]: signaling sessions relayed over NATS from the node holding the websocket to the
//!   room's owner.
//!
//! Invariants: a single node (no `node_id`) never builds a [`Cluster`] and behaves as before; no
//! room, media or HTTP type here — the server wires this to `rooms`.

pub mod drain;
pub mod liveness;
pub mod membership;
pub mod relay;
#[cfg(feature = "testing")]
pub mod testing;

pub use liveness::Health;
pub use membership::{Cluster, ClusterError, NodeConfig, Placement};
pub use relay::{Accepted, Frame, Hello, RelayLink, RelaySink, frames};
