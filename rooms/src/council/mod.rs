//! The chaired council session inside a `council-<id>` room: [`room`] holds the rules as the room
//! applies them (floor, roll call, votes, stream), [`jobs`] what is stored and loaded for it. The
//! messages themselves are [`crate::protocol::council`].

pub mod jobs;
pub mod room;

pub use crate::protocol::council::{IDENTITY_PREFIX, ROOM_PREFIX, identity, room_name};
pub use jobs::{CouncilJob, Loaded, event_from_row, event_to_row, load, run_job, vote_record};
pub use room::{Action, CouncilRoom, OnAir};
