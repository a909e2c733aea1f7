//! The media engine: one UDP socket, sans-IO `rtc` peer connections, one loop.
pub mod dtls_replay;
pub mod engine;
pub mod feedback;
pub mod peer;
pub(crate) mod recorder;
pub mod socket;
pub mod stun;
