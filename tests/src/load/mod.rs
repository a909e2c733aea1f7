//! `sportello-load`: many synthetic WebRTC clients in one process against a Sportello or a Janus
//! server started as a separate, pinned process; figures from the clients and from `/proc/<pid>`.
//!
//! - [`media`]: the clip every publisher sends (made once with ffmpeg), packetised.
//! - [`peer`], [`engine`]: sans-IO `rtc` connections driven by one media thread; [`recv`]: the
//!   light receiving path (batched reads, media counted from the clear RTP header).
//! - [`sportello`], [`janus`]: the two signaling drivers; [`whep`]: WHEP players of a council
//!   program; [`servers`]: starting and watching them.
//! - [`scenario`]: office, council, join storm, council-whep; [`figures`]: what a run measured, and the table.

pub mod engine;
pub mod figures;
pub mod janus;
pub mod media;
pub mod peer;
pub mod proc_stat;
pub mod recv;
pub mod scenario;
pub mod servers;
pub mod sportello;
pub mod whep;

/// Turns any displayable error into this module's `String` errors, saying what was being done.
pub fn err<E: std::fmt::Display>(doing: &'static str) -> impl FnOnce(E) -> String {
    move |e| format!("{doing}: {e}")
}
