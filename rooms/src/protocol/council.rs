//! The `council.*` messages of `docs/signaling.md` ("Council sessions"): the commands a client
//! sends, the `council.state` the room broadcasts, and the names of council rooms and of their
//! participants. Types only; what they mean is decided in [`crate::council`].

use serde::{Deserialize, Serialize};
use sportello_domain::council::{Choice, Item, Sealed};

/// Room name prefix; the rest is the session id.
pub const ROOM_PREFIX: &str = "council-";
/// Identity prefix of a staff user in a council room.
pub const IDENTITY_PREFIX: &str = "user-";

pub fn room_name(session_id: &str) -> String {
    format!("{ROOM_PREFIX}{session_id}")
}

pub fn identity(user_id: &str) -> String {
    format!("{IDENTITY_PREFIX}{user_id}")
}

pub(crate) fn user_of(participant: &str) -> Option<&str> {
    participant.strip_prefix(IDENTITY_PREFIX).filter(|u| !u.is_empty())
}

/// The `council.*` client messages (`docs/signaling.md`, "Council sessions").
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type")]
pub enum CouncilCommand {
    #[serde(rename = "council.request_floor")]
    RequestFloor,
    #[serde(rename = "council.withdraw")]
    Withdraw,
    #[serde(rename = "council.give_floor")]
    GiveFloor { participant_id: String },
    #[serde(rename = "council.take_floor")]
    TakeFloor,
    #[serde(rename = "council.mute_all")]
    MuteAll,
    #[serde(rename = "council.set_item")]
    SetItem { item_id: String },
    #[serde(rename = "council.roll_call_start")]
    RollCallStart,
    #[serde(rename = "council.present")]
    Present,
    #[serde(rename = "council.roll_call_end")]
    RollCallEnd,
    #[serde(rename = "council.vote_open")]
    VoteOpen { item_id: String, secret: bool },
    #[serde(rename = "council.vote")]
    Vote { choice: Sealed<Choice> },
    #[serde(rename = "council.vote_close")]
    VoteClose,
    /// Suspends the public stream and the recording for the current agenda item.
    #[serde(rename = "council.stream_suspend")]
    StreamSuspend,
    #[serde(rename = "council.stream_resume")]
    StreamResume,
    /// Ends the session: the stream ends, the recording is finished and archived.
    #[serde(rename = "council.end")]
    End,
}

pub const COMMAND_TYPES: [&str; 15] = [
    "council.request_floor",
    "council.withdraw",
    "council.give_floor",
    "council.take_floor",
    "council.mute_all",
    "council.set_item",
    "council.roll_call_start",
    "council.present",
    "council.roll_call_end",
    "council.vote_open",
    "council.vote",
    "council.vote_close",
    "council.stream_suspend",
    "council.stream_resume",
    "council.end",
];

impl CouncilCommand {
    /// Messages only the chair (`host`) may send.
    pub(crate) fn chair_only(&self) -> bool {
        !matches!(
            self,
            CouncilCommand::RequestFloor
                | CouncilCommand::Withdraw
                | CouncilCommand::Present
                | CouncilCommand::Vote { .. }
        )
    }
}

// --- council.state ---------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CouncilState {
    pub session: String,
    pub title: String,
    pub items: Vec<Item>,
    pub current_item: Option<String>,
    /// Participant id of whoever has the floor.
    pub floor: Option<String>,
    /// Participant ids asking to speak, first come first.
    pub queue: Vec<String>,
    pub members: Vec<MemberView>,
    /// The roll call in progress, else the last one.
    pub roll_call: Option<RollCallView>,
    pub quorum: QuorumView,
    /// The open vote, else the last closed one (with its results).
    pub vote: Option<VoteView>,
    /// The public stream: `live`, `suspended` (for the current item) or `ended`.
    pub stream: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemberView {
    pub participant_id: String,
    pub name: String,
    pub chair: bool,
    pub in_room: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RollCallView {
    pub open: bool,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    pub present: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuorumView {
    pub rule: String,
    pub members: usize,
    pub required: usize,
    pub present: usize,
    pub reached: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VoteView {
    pub id: String,
    pub item_id: String,
    pub secret: bool,
    pub open: bool,
    pub eligible: Vec<String>,
    /// Who has voted (never what).
    pub voted: Vec<String>,
    pub cast: usize,
    /// Only once closed.
    pub results: Option<VoteResults>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VoteResults {
    pub favourable: u32,
    pub contrary: u32,
    pub abstained: u32,
    pub outcome: &'static str,
    /// Open votes only: each choice by name.
    pub by_name: Vec<NamedChoice>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NamedChoice {
    pub participant_id: String,
    pub choice: Choice,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_and_seal_the_choice() {
        let vote: CouncilCommand =
            serde_json::from_str(r#"{"v":1,"type":"council.vote","choice":"contrary"}"#).unwrap();
        assert_eq!(vote, CouncilCommand::Vote { choice: Sealed(Choice::Contrary) });
        assert!(!format!("{vote:?}").to_lowercase().contains("contrary"));
        for kind in COMMAND_TYPES {
            let text = format!(
                r#"{{"type":"{kind}","participant_id":"p","item_id":"i","secret":true,"choice":"favourable"}}"#
            );
            assert!(serde_json::from_str::<CouncilCommand>(&text).is_ok(), "{kind}");
        }
        assert!(CouncilCommand::GiveFloor { participant_id: "x".into() }.chair_only());
        assert!(!CouncilCommand::Present.chair_only());
    }
}
