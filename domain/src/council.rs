//! Council sessions (Consiglio / Giunta): the chaired meeting as a pure state machine.
//!
//! The chair moves through the agenda, gives and takes the floor, runs roll calls and votes; the
//! councillors ask to speak, answer the roll call and vote. Every change is appended to a log of
//! [`Entry`]s (what the minutes are built from, see [`minutes`]) and every vote ends as a
//! [`VoteRecord`].
//!
//! Invariants (tested in `council/properties.rs`):
//! - at most one person holds the floor; the queue never holds the floor holder nor anyone twice;
//! - a vote's tally always equals the number of its voters; nobody votes twice; only those present
//!   at the roll call before the vote (and still in the room) vote;
//! - a **secret ballot** never holds the link voter ↔ choice: the choice goes into the counters at
//!   once and the voter into a set ordered by id (not by time). Neither the log nor the record
//!   mentions a secret choice.
//!
//! No I/O, no clock: every operation takes `now` (Unix seconds).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub mod minutes;
#[cfg(test)]
mod properties;
#[cfg(test)]
mod tests;

pub use minutes::{Minutes, build_minutes};

/// A staff user id (the `users` row).
pub type UserId = String;

/// A vote choice. In a secret ballot it only ever travels wrapped in [`Sealed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Choice {
    Favourable,
    Contrary,
    Abstained,
}

impl Choice {
    pub const ALL: [Choice; 3] = [Choice::Favourable, Choice::Contrary, Choice::Abstained];

    pub fn as_str(self) -> &'static str {
        match self {
            Choice::Favourable => "favourable",
            Choice::Contrary => "contrary",
            Choice::Abstained => "abstained",
        }
    }
}

impl FromStr for Choice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Choice::ALL.into_iter().find(|c| c.as_str() == s).ok_or_else(|| format!("unknown choice {s:?}"))
    }
}

/// A value whose `Debug` never shows it: a secret-ballot choice passes through message and job
/// types that derive `Debug`, and a stray `?value` in a log line must not reveal it.
#[derive(Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Sealed<T>(pub T);

impl<T> fmt::Debug for Sealed<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<sealed>")
    }
}

/// How many members must be present for the session to deliberate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Quorum {
    /// More than half of the members.
    Majority,
    /// At least a third of the members (rounded up), e.g. second convocation.
    OneThird,
    /// A fixed number set by the regulation.
    AtLeast(u32),
}

impl Quorum {
    /// Members needed, out of `members`.
    pub fn required(self, members: usize) -> usize {
        match self {
            Quorum::Majority => members / 2 + 1,
            Quorum::OneThird => members.div_ceil(3),
            Quorum::AtLeast(n) => n as usize,
        }
    }

    /// `majority`, `one_third`, `at_least:N` (the stored form).
    pub fn to_text(self) -> String {
        match self {
            Quorum::Majority => "majority".into(),
            Quorum::OneThird => "one_third".into(),
            Quorum::AtLeast(n) => format!("at_least:{n}"),
        }
    }
}

impl FromStr for Quorum {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "majority" => Ok(Quorum::Majority),
            "one_third" => Ok(Quorum::OneThird),
            other => other
                .strip_prefix("at_least:")
                .and_then(|n| n.parse().ok())
                .filter(|&n| n > 0)
                .map(Quorum::AtLeast)
                .ok_or_else(|| format!("unknown quorum {other:?} (majority, one_third, at_least:N)")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub id: UserId,
    pub name: String,
    pub chair: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    pub id: String,
    pub title: String,
}

/// Why an operation was refused. The caller maps each to its own wire code once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CouncilError {
    #[error("not a member of this session")]
    NotMember,
    #[error("not in the room")]
    NotInRoom,
    #[error("already asked for the floor or holding it")]
    AlreadyRequested,
    #[error("not in the queue")]
    NotQueued,
    #[error("nobody holds the floor")]
    NoFloor,
    #[error("no such agenda item")]
    UnknownItem,
    #[error("a roll call is in progress")]
    RollCallInProgress,
    #[error("no roll call in progress")]
    NoRollCall,
    #[error("a roll call must end before a vote is opened")]
    RollCallRequired,
    #[error("no quorum")]
    NoQuorum,
    #[error("a vote is open")]
    VoteOpen,
    #[error("no vote is open")]
    NoVote,
    #[error("not present at the roll call before this vote")]
    NotEligible,
    #[error("already voted")]
    AlreadyVoted,
}

/// One line of the session's log. Secret choices never appear here (nor do ballots at all: who
/// voted is in the [`VoteRecord`], without times).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    Arrived { user: UserId },
    Departed { user: UserId },
    ItemStarted { item: String },
    ItemEnded { item: String },
    FloorRequested { user: UserId },
    FloorWithdrawn { user: UserId },
    FloorGiven { user: UserId },
    FloorEnded { user: UserId },
    RollCallStarted,
    Present { user: UserId },
    RollCallEnded,
    VoteOpened { vote: String },
    VoteClosed { vote: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Unix seconds.
    pub at: i64,
    #[serde(flatten)]
    pub event: Event,
}

/// Votes per choice.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    pub favourable: u32,
    pub contrary: u32,
    pub abstained: u32,
}

impl Tally {
    pub fn add(&mut self, choice: Choice) {
        *self.slot(choice) += 1;
    }

    pub fn get(&self, choice: Choice) -> u32 {
        match choice {
            Choice::Favourable => self.favourable,
            Choice::Contrary => self.contrary,
            Choice::Abstained => self.abstained,
        }
    }

    fn slot(&mut self, choice: Choice) -> &mut u32 {
        match choice {
            Choice::Favourable => &mut self.favourable,
            Choice::Contrary => &mut self.contrary,
            Choice::Abstained => &mut self.abstained,
        }
    }

    pub fn total(&self) -> u32 {
        self.favourable + self.contrary + self.abstained
    }

    /// Approved when the favourable votes outnumber the contrary ones (abstentions count for the
    /// quorum, not for or against: the common rule of council regulations).
    pub fn outcome(&self) -> Outcome {
        if self.favourable > self.contrary { Outcome::Approved } else { Outcome::Rejected }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Approved,
    Rejected,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Approved => "approved",
            Outcome::Rejected => "rejected",
        }
    }
}

/// A closed vote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoteRecord {
    pub id: String,
    pub item: String,
    pub secret: bool,
    pub opened_at: i64,
    pub closed_at: i64,
    /// Who could vote (present at the roll call before the vote), sorted.
    pub eligible: Vec<UserId>,
    /// Who voted, sorted by id (never by time).
    pub voters: Vec<UserId>,
    /// Each choice by name; empty for a secret ballot.
    pub by_name: Vec<(UserId, Choice)>,
    pub tally: Tally,
    pub outcome: Outcome,
}

/// The vote being held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenVote {
    pub id: String,
    pub item: String,
    pub secret: bool,
    pub opened_at: i64,
    pub eligible: BTreeSet<UserId>,
    /// Ordered by id: the order of voting is not kept.
    voted: BTreeSet<UserId>,
    /// Open votes only.
    by_name: BTreeMap<UserId, Choice>,
    tally: Tally,
}

impl OpenVote {
    pub fn cast_count(&self) -> usize {
        self.voted.len()
    }

    pub fn has_voted(&self, user: &str) -> bool {
        self.voted.contains(user)
    }
}

/// A roll call: who answered "present".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollCall {
    pub started_at: i64,
    pub ended_at: Option<i64>,
    pub present: BTreeSet<UserId>,
    pub required: usize,
}

impl RollCall {
    pub fn quorum_reached(&self) -> bool {
        self.present.len() >= self.required
    }
}

/// A council session in progress.
#[derive(Debug, Clone)]
pub struct Session {
    members: Vec<Member>,
    items: Vec<Item>,
    quorum: Quorum,
    in_room: BTreeSet<UserId>,
    current_item: Option<String>,
    floor: Option<UserId>,
    queue: VecDeque<UserId>,
    roll_call: Option<RollCall>,
    last_roll_call: Option<RollCall>,
    /// A roll call ended since the last vote closed (the regulation wants one before every vote).
    fresh_roll_call: bool,
    vote: Option<OpenVote>,
    votes: Vec<VoteRecord>,
    log: Vec<Entry>,
}

impl Session {
    pub fn new(members: Vec<Member>, items: Vec<Item>, quorum: Quorum) -> Session {
        Session {
            members,
            items,
            quorum,
            in_room: BTreeSet::new(),
            current_item: None,
            floor: None,
            queue: VecDeque::new(),
            roll_call: None,
            last_roll_call: None,
            fresh_roll_call: false,
            vote: None,
            votes: Vec::new(),
            log: Vec::new(),
        }
    }

    /// Continues a session whose room closed (everyone left) from what was stored: its log and
    /// its closed votes. The current item carries on; nobody is in the room, nobody has the floor
    /// or is queued, no roll call is fresh (a vote needs a new one), and a vote left open without
    /// result stays closed-less, as stored. New log entries follow the stored ones.
    pub fn resume(&mut self, log: Vec<Entry>, votes: Vec<VoteRecord>) {
        let mut current = None;
        for entry in &log {
            match &entry.event {
                Event::ItemStarted { item } if self.items.iter().any(|i| &i.id == item) => current = Some(item.clone()),
                Event::ItemEnded { item } if current.as_ref() == Some(item) => current = None,
                _ => {}
            }
        }
        self.current_item = current;
        self.votes = votes;
        self.log = log;
    }

    // --- reading ---------------------------------------------------------------------------------

    pub fn members(&self) -> &[Member] {
        &self.members
    }
    pub fn items(&self) -> &[Item] {
        &self.items
    }
    pub fn quorum(&self) -> Quorum {
        self.quorum
    }
    pub fn member(&self, user: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.id == user)
    }
    pub fn is_chair(&self, user: &str) -> bool {
        self.member(user).is_some_and(|m| m.chair)
    }
    pub fn in_room(&self) -> &BTreeSet<UserId> {
        &self.in_room
    }
    pub fn current_item(&self) -> Option<&str> {
        self.current_item.as_deref()
    }
    pub fn floor(&self) -> Option<&str> {
        self.floor.as_deref()
    }
    pub fn queue(&self) -> impl Iterator<Item = &str> {
        self.queue.iter().map(String::as_str)
    }
    pub fn roll_call(&self) -> Option<&RollCall> {
        self.roll_call.as_ref()
    }
    pub fn last_roll_call(&self) -> Option<&RollCall> {
        self.last_roll_call.as_ref()
    }
    pub fn vote(&self) -> Option<&OpenVote> {
        self.vote.as_ref()
    }
    pub fn votes(&self) -> &[VoteRecord] {
        &self.votes
    }
    pub fn log(&self) -> &[Entry] {
        &self.log
    }
    /// Members needed for the quorum.
    pub fn required(&self) -> usize {
        self.quorum.required(self.members.len())
    }

    /// Members counted present now: those of the last roll call who are still in the room (during
    /// a roll call, those who answered so far).
    pub fn present_now(&self) -> usize {
        match (&self.roll_call, &self.last_roll_call) {
            (Some(call), _) => call.present.len(),
            (None, Some(call)) => call.present.iter().filter(|u| self.in_room.contains(*u)).count(),
            (None, None) => 0,
        }
    }

    pub fn quorum_reached(&self) -> bool {
        self.present_now() >= self.required()
    }

    /// Who may have an open microphone: the chair and the floor holder.
    pub fn may_speak(&self, user: &str) -> bool {
        self.is_chair(user) || self.floor.as_deref() == Some(user)
    }

    /// Everything the minutes need, up to `until` (a floor or item still open ends there).
    pub fn minutes(&self, until: i64) -> Minutes {
        build_minutes(&self.members, &self.items, &self.log, &self.votes, until)
    }

    // --- changes -----------------------------------------------------------------------------------

    fn push(&mut self, at: i64, event: Event) {
        self.log.push(Entry { at, event });
    }

    fn require_member(&self, user: &str) -> Result<(), CouncilError> {
        if self.member(user).is_some() { Ok(()) } else { Err(CouncilError::NotMember) }
    }

    fn require_in_room(&self, user: &str) -> Result<(), CouncilError> {
        self.require_member(user)?;
        if self.in_room.contains(user) { Ok(()) } else { Err(CouncilError::NotInRoom) }
    }

    /// A member entered the room (a late arrival when a roll call already ended). Returns whether
    /// anything changed (a reconnection is not an arrival).
    pub fn arrive(&mut self, user: &str, now: i64) -> Result<bool, CouncilError> {
        self.require_member(user)?;
        if !self.in_room.insert(user.to_owned()) {
            return Ok(false);
        }
        self.push(now, Event::Arrived { user: user.to_owned() });
        Ok(true)
    }

    /// A member left: out of the queue, off the floor.
    pub fn depart(&mut self, user: &str, now: i64) -> Result<bool, CouncilError> {
        self.require_member(user)?;
        if !self.in_room.remove(user) {
            return Ok(false);
        }
        self.queue.retain(|u| u != user);
        if self.floor.as_deref() == Some(user) {
            self.end_floor(now);
        }
        self.push(now, Event::Departed { user: user.to_owned() });
        Ok(true)
    }

    pub fn request_floor(&mut self, user: &str, now: i64) -> Result<(), CouncilError> {
        self.require_in_room(user)?;
        if self.floor.as_deref() == Some(user) || self.queue.iter().any(|u| u == user) {
            return Err(CouncilError::AlreadyRequested);
        }
        self.queue.push_back(user.to_owned());
        self.push(now, Event::FloorRequested { user: user.to_owned() });
        Ok(())
    }

    pub fn withdraw(&mut self, user: &str, now: i64) -> Result<(), CouncilError> {
        let before = self.queue.len();
        self.queue.retain(|u| u != user);
        if self.queue.len() == before {
            return Err(CouncilError::NotQueued);
        }
        self.push(now, Event::FloorWithdrawn { user: user.to_owned() });
        Ok(())
    }

    /// Gives the floor to `user` (whoever had it loses it). Returns who lost it.
    pub fn give_floor(&mut self, user: &str, now: i64) -> Result<Option<UserId>, CouncilError> {
        self.require_in_room(user)?;
        if self.floor.as_deref() == Some(user) {
            return Ok(None);
        }
        let previous = self.end_floor(now);
        self.queue.retain(|u| u != user);
        self.floor = Some(user.to_owned());
        self.push(now, Event::FloorGiven { user: user.to_owned() });
        Ok(previous)
    }

    /// Takes the floor back. Returns who had it.
    pub fn take_floor(&mut self, now: i64) -> Result<UserId, CouncilError> {
        self.end_floor(now).ok_or(CouncilError::NoFloor)
    }

    fn end_floor(&mut self, now: i64) -> Option<UserId> {
        let user = self.floor.take()?;
        self.push(now, Event::FloorEnded { user: user.clone() });
        Some(user)
    }

    /// Moves to an agenda item: the previous one ends, and so does any speech.
    pub fn set_item(&mut self, item: &str, now: i64) -> Result<(), CouncilError> {
        if !self.items.iter().any(|i| i.id == item) {
            return Err(CouncilError::UnknownItem);
        }
        if self.vote.is_some() {
            return Err(CouncilError::VoteOpen);
        }
        if self.current_item.as_deref() == Some(item) {
            return Ok(());
        }
        self.end_floor(now);
        if let Some(previous) = self.current_item.take() {
            self.push(now, Event::ItemEnded { item: previous });
        }
        self.current_item = Some(item.to_owned());
        self.push(now, Event::ItemStarted { item: item.to_owned() });
        Ok(())
    }

    /// Ends the session: the current speech and item end (and a vote still open is closed).
    pub fn close(&mut self, now: i64) {
        if self.vote.is_some() {
            let _ = self.close_vote(now);
        }
        self.roll_call = None;
        self.end_floor(now);
        if let Some(previous) = self.current_item.take() {
            self.push(now, Event::ItemEnded { item: previous });
        }
    }

    /// Starts a roll call; the chair, running it, counts as present when in the room.
    pub fn start_roll_call(&mut self, now: i64) -> Result<(), CouncilError> {
        if self.roll_call.is_some() {
            return Err(CouncilError::RollCallInProgress);
        }
        if self.vote.is_some() {
            return Err(CouncilError::VoteOpen);
        }
        self.push(now, Event::RollCallStarted);
        let mut call =
            RollCall { started_at: now, ended_at: None, present: BTreeSet::new(), required: self.required() };
        let chairs: Vec<UserId> =
            self.members.iter().filter(|m| m.chair && self.in_room.contains(&m.id)).map(|m| m.id.clone()).collect();
        for chair in chairs {
            call.present.insert(chair.clone());
            self.push(now, Event::Present { user: chair });
        }
        self.roll_call = Some(call);
        Ok(())
    }

    /// A member answers the roll call. Answering twice is harmless.
    pub fn present(&mut self, user: &str, now: i64) -> Result<(), CouncilError> {
        self.require_in_room(user)?;
        let call = self.roll_call.as_mut().ok_or(CouncilError::NoRollCall)?;
        if call.present.insert(user.to_owned()) {
            self.push(now, Event::Present { user: user.to_owned() });
        }
        Ok(())
    }

    pub fn end_roll_call(&mut self, now: i64) -> Result<&RollCall, CouncilError> {
        let mut call = self.roll_call.take().ok_or(CouncilError::NoRollCall)?;
        call.ended_at = Some(now);
        self.push(now, Event::RollCallEnded);
        self.fresh_roll_call = true;
        Ok(self.last_roll_call.insert(call))
    }

    /// Opens a vote on `item`. Eligible: present at the last roll call (which must have ended
    /// since the previous vote, with the quorum) and still in the room.
    pub fn open_vote(&mut self, id: &str, item: &str, secret: bool, now: i64) -> Result<&OpenVote, CouncilError> {
        if self.vote.is_some() {
            return Err(CouncilError::VoteOpen);
        }
        if self.roll_call.is_some() {
            return Err(CouncilError::RollCallInProgress);
        }
        if !self.items.iter().any(|i| i.id == item) {
            return Err(CouncilError::UnknownItem);
        }
        let call = match &self.last_roll_call {
            Some(call) if self.fresh_roll_call => call,
            _ => return Err(CouncilError::RollCallRequired),
        };
        if !self.quorum_reached() {
            return Err(CouncilError::NoQuorum);
        }
        let eligible = call.present.iter().filter(|u| self.in_room.contains(*u)).cloned().collect();
        self.push(now, Event::VoteOpened { vote: id.to_owned() });
        Ok(self.vote.insert(OpenVote {
            id: id.to_owned(),
            item: item.to_owned(),
            secret,
            opened_at: now,
            eligible,
            voted: BTreeSet::new(),
            by_name: BTreeMap::new(),
            tally: Tally::default(),
        }))
    }

    /// Records a vote. For a secret ballot the choice only increments a counter: after this call
    /// nothing here can tell what `user` chose. Returns the vote's id and whether it is secret.
    pub fn cast(&mut self, user: &str, choice: Choice) -> Result<(String, bool), CouncilError> {
        let vote = self.vote.as_mut().ok_or(CouncilError::NoVote)?;
        if !vote.eligible.contains(user) {
            return Err(CouncilError::NotEligible);
        }
        if !self.in_room.contains(user) {
            return Err(CouncilError::NotInRoom);
        }
        if !vote.voted.insert(user.to_owned()) {
            return Err(CouncilError::AlreadyVoted);
        }
        vote.tally.add(choice);
        if !vote.secret {
            vote.by_name.insert(user.to_owned(), choice);
        }
        Ok((vote.id.clone(), vote.secret))
    }

    pub fn close_vote(&mut self, now: i64) -> Result<&VoteRecord, CouncilError> {
        let vote = self.vote.take().ok_or(CouncilError::NoVote)?;
        self.fresh_roll_call = false;
        self.push(now, Event::VoteClosed { vote: vote.id.clone() });
        let record = VoteRecord {
            id: vote.id,
            item: vote.item,
            secret: vote.secret,
            opened_at: vote.opened_at,
            closed_at: now,
            eligible: vote.eligible.into_iter().collect(),
            voters: vote.voted.into_iter().collect(),
            by_name: vote.by_name.into_iter().collect(),
            outcome: vote.tally.outcome(),
            tally: vote.tally,
        };
        self.votes.push(record);
        Ok(self.votes.last().expect("just pushed"))
    }
}
