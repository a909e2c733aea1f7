//! Sportello's selective forwarding unit.
//!
//! Layout:
//! - [`api`]: the types the signaling layer sees (no `rtc` types cross this line).
//! - [`forward`]: the pure forwarding core — routing, RTP rewriting, keyframe-request throttling,
//!   lossy per-subscriber queues, active-speaker detection. No I/O, time is passed in.
//! - `transport` (private): the media engine — sans-IO `rtc` peer connections behind one address,
//!   demultiplexed by ICE username then remote address; the engine owns no socket and reads no clock.
//!   Its driver (`transport/driver/udp.rs`) gives it one UDP socket read and written in batches
//!   (`recvmmsg`/`sendmmsg`), the real clock and a thread; in tests an in-memory driver gives it
//!   queues of datagrams and simulated time instead.
//! - [`Sfu`]: a cheap, cloneable handle that sends commands to the engine threads (one engine per
//!   media thread, each on its own socket bound to the one UDP port; rooms placed by
//!   [`placement_key`]).

pub mod api;
pub mod forward;
mod handle;
mod transport;

/// What the sans-IO test clients (`tests/`) share with the engine, so they configure their peer
/// connections as ours are; not an API.
#[doc(hidden)]
pub mod test_support {
    pub use crate::transport::feedback::{DeliverFeedback, SLOT};
    pub use crate::transport::peer::{TcpType, host_candidate, tcp_candidate};
    pub use crate::transport::tcp::{FrameDecoder, encode as frame};
}

pub use api::*;
pub use handle::Sfu;
