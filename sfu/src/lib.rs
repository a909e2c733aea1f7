//! Sportello's selective forwarding unit.
//!
//! Layout:
//! - [`api`]: the types the signaling layer sees (no `rtc` types cross this line).
//! - [`forward`]: the pure forwarding core — routing, RTP rewriting, keyframe-request throttling,
//!   lossy per-subscriber queues, active-speaker detection. No I/O, time is passed in.
//! - [`transport`]: the media engine — one UDP socket, batched `recvmmsg`/`sendmmsg`, sans-IO `rtc` peer
//!   connections demultiplexed by ICE username then remote address, driven by one loop.
//! - [`Sfu`]: a cheap, cloneable handle that sends commands to the engine's thread.

pub mod api;
pub mod forward;
pub mod transport;

mod handle;

pub use api::*;
pub use handle::Sfu;
