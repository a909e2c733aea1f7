//! The media engine: sans-IO `rtc` peer connections behind one address, and the drivers that give it
//! a socket and a clock.
pub(crate) mod counters;
pub mod driver;
pub mod dtls_replay;
pub mod engine;
pub mod feedback;
pub mod peer;
pub(crate) mod recorder;
pub mod socket;
pub mod stun;
pub mod tcp;

#[cfg(test)]
mod tests;
