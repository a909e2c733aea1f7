//! The public side of a council session, shared between the council room (the only writer) and
//! the HTTP API (`/live/<session>`, WHEP, WHIP): what the public sees now, and the names of the
//! SFU rooms involved.
//!
//! - `live-<session>`: the program feed ([`sportello_sfu::Sfu::program_open`]) — one video and
//!   [`AUDIO_SLOTS`] audio tracks, fed by the council room's choice of sources; WHEP viewers join it.
//! - `chamber-<session>`: the chamber's own encoder publishing by WHIP as [`CHAMBER_PARTICIPANT`].
//! - [`NETWORK_CHECK_PROGRAM`]: not a session's; the pre-join network check's probes join it.
//!
//! The council room, the chamber and the program share their SFU placement key (the session id,
//! after the first `-`: [`sportello_sfu::placement_key`]), so they live on one media thread, as a
//! program must with the rooms that feed it.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use serde::Serialize;
use utoipa::ToSchema;

/// Audio slots of the program: 0 = the voice (floor holder, else the chair, else the chamber);
/// 1 = the chair while someone else holds the floor. A player taking one audio track hears slot 0.
pub const AUDIO_SLOTS: usize = 2;
/// The WHIP publisher's participant id in `chamber-<session>`.
pub const CHAMBER_PARTICIPANT: &str = "chamber";

pub fn program_room(session_id: &str) -> String {
    format!("live-{session_id}")
}

pub fn chamber_room(session_id: &str) -> String {
    format!("chamber-{session_id}")
}

/// The program the pre-join network check's throwaway peers connect to (`/api/network-check`): it
/// never gets a source, so they receive nothing.
pub const NETWORK_CHECK_PROGRAM: &str = "network-check";

/// Rooms managed over HTTP (WHEP viewers, the WHIP encoder, the network check's probes), never
/// joined by websocket.
pub fn is_http_room(room: &str) -> bool {
    room.starts_with("live-") || room.starts_with("chamber-") || room == NETWORK_CHECK_PROGRAM
}

/// What the public page shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LiveStatus {
    /// Not started yet ("starting soon").
    Scheduled,
    /// On air.
    Live,
    /// The chair suspended the stream (and the recording) for the current item: the slate.
    Suspended,
    /// The session began but nobody is in its room now (everyone left without the chair's
    /// «Termina», or the server restarted): it may carry on. Only `GET /api/live` reports it; no
    /// room's board holds it.
    Interrupted,
    /// Over.
    Ended,
}

/// The public state of one session's stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct LiveState {
    pub status: LiveStatus,
    /// Title of the current agenda item (the caption).
    pub item: Option<String>,
    /// Display name of whoever has the floor.
    pub speaker: Option<String>,
    /// Unix seconds (server clock) of the last change.
    pub since: i64,
}

/// The live states of running sessions, by session id. A session without an entry is not
/// running: its stored status tells "scheduled" from "ended".
#[derive(Debug, Clone, Default)]
pub struct LiveBoard(Arc<RwLock<HashMap<String, LiveState>>>);

impl LiveBoard {
    pub fn get(&self, session_id: &str) -> Option<LiveState> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).get(session_id).cloned()
    }

    pub fn set(&self, session_id: &str, state: LiveState) {
        self.0.write().unwrap_or_else(|p| p.into_inner()).insert(session_id.to_owned(), state);
    }

    pub fn remove(&self, session_id: &str) {
        self.0.write().unwrap_or_else(|p| p.into_inner()).remove(session_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::council::ROOM_PREFIX;

    #[test]
    fn a_sessions_rooms_share_one_media_thread() {
        let session = "rn2nmn6rgndn5kh3omw7";
        let council = format!("{ROOM_PREFIX}{session}");
        let key = sportello_sfu::placement_key(&council);
        assert_eq!(key, session);
        assert_eq!(sportello_sfu::placement_key(&program_room(session)), key);
        assert_eq!(sportello_sfu::placement_key(&chamber_room(session)), key);
    }
}
