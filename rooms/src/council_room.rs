//! The council logic of a `council-<session>` room: the room actor ([`crate::room`]) delegates the
//! `council.*` messages, joins and departures here, and carries out the [`Action`]s returned.
//!
//! The rules are `sportello_domain::council`; this module maps participants (`user-<id>`) to
//! members, decides who may send what (chair-only messages need the `host` role; viewers never
//! vote), builds the `council.state` broadcast and queues what must be stored on the persistence
//! channel — the room never awaits the database. A secret-ballot choice is only ever held in a
//! [`Sealed`] (whose `Debug` hides it) and is never logged.

use serde::{Deserialize, Serialize};
use sportello_domain::council::{Choice, CouncilError, Event, Item, Member, Quorum, Sealed, Session, VoteRecord};
use sportello_sfu::{ParticipantId, RoomId};
use sportello_store::{CouncilEvent, CouncilSession, Counts, NewCouncilVote, Store};

use crate::error::ProtocolError;
use crate::persist::{Job, Persister};
use crate::room::Control;
use crate::rooms::WeakRooms;
use sportello_backoffice::token::Role;

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

fn user_of(participant: &str) -> Option<&str> {
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
    fn chair_only(&self) -> bool {
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

// --- the room side -------------------------------------------------------------------------------

/// What the room must do after a council input.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Send `council.state` to everyone.
    State(Box<CouncilState>),
    /// Mute this participant's microphone (`force_mute`), and tell the others.
    ForceMute(ParticipantId),
    /// Enable or disable the SFU's forwarding of this participant's microphone
    /// ([`sportello_sfu::Sfu::set_forwarding`]): the server-side half of "only the chair and the
    /// floor holder are heard", which a modified client cannot bypass.
    GateMicrophone { participant: ParticipantId, enabled: bool },
}

/// A session as loaded from the database, delivered back to the room.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub session: CouncilSession,
    pub members: Vec<Member>,
    pub items: Vec<Item>,
    /// The stored log and closed votes: a room opening again continues from them.
    pub log: Vec<sportello_domain::council::Entry>,
    pub votes: Vec<VoteRecord>,
}

#[derive(Debug)]
enum Load {
    Loading,
    Missing,
    Ready { session: Box<Session>, info: CouncilSession },
}

/// The jobs a council room queues for the persistence task.
#[derive(Debug)]
pub enum CouncilJob {
    Load {
        room: RoomId,
        session: String,
    },
    Live {
        session: String,
    },
    /// The chair ended the session.
    End {
        session: String,
    },
    /// The program recording's files are closed: remux, hash, store (`crate::recording`).
    FinishRecording(Box<crate::broadcast::Finished>),
    Event {
        session: String,
        event: CouncilEvent,
    },
    OpenVote(NewCouncilVote),
    OpenBallot {
        vote: String,
        user: String,
        choice: Choice,
    },
    /// The choice is sealed: this job may be printed with `{:?}` without revealing it.
    SecretBallot {
        vote: String,
        user: String,
        choice: Sealed<Choice>,
    },
    CloseVote {
        vote: String,
        closed_at: i64,
        counts: Counts,
        outcome: &'static str,
    },
}

/// The council part of a room.
#[derive(Debug)]
pub struct CouncilRoom {
    session_id: String,
    persist: Persister,
    load: Load,
    /// Connected participants with their role, in join order (kept while loading too).
    present: Vec<(ParticipantId, Role)>,
    /// The chair suspended the stream during this agenda item (`None` inside: before any item);
    /// moving to another item lifts it.
    suspended: Option<Option<String>>,
    ended: bool,
}

/// What the public side shows now ([`CouncilRoom::on_air`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnAir {
    pub status: crate::live::LiveStatus,
    pub item: Option<String>,
    pub speaker: Option<String>,
    /// Participant id of the floor holder.
    pub floor: Option<ParticipantId>,
    /// Present chairs (`host` role), in join order.
    pub chairs: Vec<ParticipantId>,
}

impl CouncilRoom {
    /// `Some` for a `council-<id>` room: asks the persistence task to load the session.
    pub fn for_room(room: &RoomId, persist: &Persister) -> Option<CouncilRoom> {
        let session_id = room.strip_prefix(ROOM_PREFIX).filter(|s| !s.is_empty())?.to_owned();
        let job = Job::Council(CouncilJob::Load { room: room.clone(), session: session_id.clone() });
        let load = if persist.submit(job).is_ok() { Load::Loading } else { Load::Missing };
        Some(CouncilRoom {
            session_id,
            persist: persist.clone(),
            load,
            present: Vec::new(),
            suspended: None,
            ended: false,
        })
    }

    fn submit(&self, job: CouncilJob) {
        // A full queue is already logged by the persister; the meeting goes on.
        let _ = self.persist.submit(Job::Council(job));
    }

    fn submit_all(&self, jobs: Vec<CouncilJob>) {
        for job in jobs {
            self.submit(job);
        }
    }

    /// The session arrived from the database (or does not exist).
    pub fn loaded(&mut self, loaded: Option<Loaded>, now: i64) -> Vec<Action> {
        let Some(loaded) = loaded else {
            tracing::warn!(session = %self.session_id, "council session not found");
            self.load = Load::Missing;
            return Vec::new();
        };
        let quorum = loaded.session.quorum.parse().unwrap_or(Quorum::Majority);
        let mut session = Session::new(loaded.members, loaded.items, quorum);
        // A room that closed (everyone left) and opens again carries on from the stored log.
        session.resume(loaded.log, loaded.votes);
        let stored = session.log().len();
        for (participant, _) in &self.present {
            if let Some(user) = user_of(participant) {
                let _ = session.arrive(user, now);
            }
        }
        self.submit_all(log_jobs(&self.session_id, &session, stored));
        if self.present.iter().any(|(_, role)| *role == Role::Host) {
            self.submit(CouncilJob::Live { session: self.session_id.clone() });
        }
        // An ended session stays ended: coming back to its room does not put it on air again.
        self.ended = loaded.session.status == sportello_store::CouncilStatus::Ended;
        self.load = Load::Ready { session: Box::new(session), info: loaded.session };
        let mut actions = self.mute_non_speakers();
        actions.extend(self.gates());
        actions.extend(self.state());
        actions
    }

    /// Someone entered the room (not a reconnection).
    pub fn joined(&mut self, participant: &ParticipantId, role: Role, now: i64) -> Vec<Action> {
        if !self.present.iter().any(|(p, _)| p == participant) {
            self.present.push((participant.clone(), role));
        }
        let mut actions = Vec::new();
        if let Load::Ready { session, .. } = &mut self.load {
            let from = session.log().len();
            if let Some(user) = user_of(participant) {
                let _ = session.arrive(user, now);
            }
            let jobs = log_jobs(&self.session_id, session, from);
            self.submit_all(jobs);
            if role == Role::Host {
                self.submit(CouncilJob::Live { session: self.session_id.clone() });
            }
            let may = self.may_unmute(participant, role);
            if !may {
                actions.push(Action::ForceMute(participant.clone()));
            }
            actions.push(Action::GateMicrophone { participant: participant.clone(), enabled: may });
        }
        actions.extend(self.state());
        actions
    }

    /// Someone left for good.
    pub fn left(&mut self, participant: &ParticipantId, now: i64) -> Vec<Action> {
        self.present.retain(|(p, _)| p != participant);
        let Load::Ready { session, .. } = &mut self.load else { return Vec::new() };
        let from = session.log().len();
        if let Some(user) = user_of(participant) {
            let _ = session.depart(user, now);
        }
        let jobs = log_jobs(&self.session_id, session, from);
        self.submit_all(jobs);
        self.state()
    }

    /// Only the chair (`host`) and the floor holder may open their microphone.
    pub fn may_unmute(&self, participant: &str, role: Role) -> bool {
        if role == Role::Host {
            return true;
        }
        match &self.load {
            Load::Ready { session, .. } => user_of(participant).is_some_and(|u| session.floor() == Some(u)),
            _ => false,
        }
    }

    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    fn is_suspended(&self) -> bool {
        match (&self.suspended, &self.load) {
            (Some(item), Load::Ready { session, .. }) => item.as_deref() == session.current_item(),
            _ => false,
        }
    }

    /// What the public sees: `None` until the session is loaded, and while no chair has come
    /// (the session has not started: "starting soon").
    pub fn on_air(&self) -> Option<OnAir> {
        let Load::Ready { session, .. } = &self.load else { return None };
        let chairs: Vec<ParticipantId> =
            self.present.iter().filter(|(_, r)| *r == Role::Host).map(|(p, _)| p.clone()).collect();
        let status = if self.ended {
            crate::live::LiveStatus::Ended
        } else if chairs.is_empty() {
            return None;
        } else if self.is_suspended() {
            crate::live::LiveStatus::Suspended
        } else {
            crate::live::LiveStatus::Live
        };
        let item =
            session.current_item().and_then(|id| session.items().iter().find(|i| i.id == id)).map(|i| i.title.clone());
        let floor = session.floor();
        let speaker = floor.and_then(|u| session.members().iter().find(|m| m.id == u)).map(|m| m.name.clone());
        Some(OnAir { status, item, speaker, floor: floor.map(|u| identity(u).into()), chairs })
    }

    /// The agenda items as chapters of a recording made from `from` to `to` (Unix seconds).
    pub fn chapters(&self, from: i64, to: i64) -> Vec<sportello_backoffice::recordings::Chapter> {
        let Load::Ready { session, .. } = &self.load else { return Vec::new() };
        let title = |id: &str| session.items().iter().find(|i| i.id == id).map(|i| i.title.clone());
        let ms = |at: i64| ((at.clamp(from, to) - from) * 1000) as u64;
        let mut chapters: Vec<sportello_backoffice::recordings::Chapter> = Vec::new();
        for entry in session.log() {
            match &entry.event {
                Event::ItemStarted { item } if entry.at <= to => {
                    if let Some(last) = chapters.last_mut()
                        && last.end_ms == u64::MAX
                    {
                        last.end_ms = ms(entry.at);
                    }
                    if let Some(title) = title(item) {
                        chapters.push(sportello_backoffice::recordings::Chapter {
                            title,
                            start_ms: ms(entry.at),
                            end_ms: u64::MAX,
                        });
                    }
                }
                Event::ItemEnded { .. } => {
                    if let Some(last) = chapters.last_mut()
                        && last.end_ms == u64::MAX
                    {
                        last.end_ms = ms(entry.at);
                    }
                }
                _ => {}
            }
        }
        for c in &mut chapters {
            if c.end_ms == u64::MAX {
                c.end_ms = ms(to);
            }
        }
        // Items that ended before the recording began collapse to nothing.
        chapters.retain(|c| c.end_ms > c.start_ms);
        chapters
    }

    /// The current `council.state`, for someone coming back.
    pub fn state(&self) -> Vec<Action> {
        match &self.load {
            Load::Ready { session, info } => {
                let mut state = view(session, info);
                state.stream = if self.ended {
                    "ended"
                } else if self.is_suspended() {
                    "suspended"
                } else {
                    "live"
                };
                vec![Action::State(Box::new(state))]
            }
            _ => Vec::new(),
        }
    }

    /// The SFU gate of every present microphone: open for the chair and the floor holder only.
    fn gates(&self) -> Vec<Action> {
        self.present
            .iter()
            .map(|(p, role)| Action::GateMicrophone { participant: p.clone(), enabled: self.may_unmute(p, *role) })
            .collect()
    }

    fn mute_non_speakers(&self) -> Vec<Action> {
        self.present
            .iter()
            .filter(|(p, role)| !self.may_unmute(p, *role))
            .map(|(p, _)| Action::ForceMute(p.clone()))
            .collect()
    }

    /// The chair's stream commands (suspend, resume, end); `None` for every other command.
    fn stream_command(&mut self, command: &CouncilCommand) -> Option<Vec<Action>> {
        let Load::Ready { session, .. } = &self.load else { return None };
        let item = session.current_item().map(str::to_owned);
        match command {
            CouncilCommand::StreamSuspend => {
                tracing::info!(?item, "public stream and recording suspended");
                self.suspended = Some(item);
            }
            CouncilCommand::StreamResume => {
                tracing::info!("public stream and recording resumed");
                self.suspended = None;
            }
            CouncilCommand::End => {
                tracing::info!("session ended by the chair");
                self.ended = true;
                self.submit(CouncilJob::End { session: self.session_id.clone() });
            }
            _ => return None,
        }
        Some(self.state())
    }

    /// A `council.*` message from `participant`.
    pub fn command(
        &mut self,
        participant: &ParticipantId,
        role: Role,
        command: CouncilCommand,
        now: i64,
    ) -> Result<Vec<Action>, ProtocolError> {
        if role == Role::Viewer || (command.chair_only() && role != Role::Host) {
            return Err(ProtocolError::Forbidden);
        }
        if let Some(actions) = self.stream_command(&command) {
            return Ok(actions);
        }
        let session_id = self.session_id.clone();
        let Load::Ready { session, .. } = &mut self.load else {
            return Err(ProtocolError::CouncilUnavailable);
        };
        let user = user_of(participant).ok_or(ProtocolError::Council(CouncilError::NotMember))?.to_owned();
        let from = session.log().len();
        let mut floor_changed = false;
        let mut mute_all = false;
        let mut jobs = Vec::new();
        match command {
            CouncilCommand::RequestFloor => session.request_floor(&user, now)?,
            CouncilCommand::Withdraw => session.withdraw(&user, now)?,
            CouncilCommand::GiveFloor { participant_id } => {
                let target = user_of(&participant_id).ok_or(ProtocolError::Council(CouncilError::NotMember))?;
                session.give_floor(target, now)?;
                floor_changed = true;
            }
            CouncilCommand::TakeFloor => {
                session.take_floor(now)?;
                floor_changed = true;
            }
            CouncilCommand::MuteAll => {
                // The floor goes back to the chair too: "silenzia tutti" means nobody else speaks.
                floor_changed = session.take_floor(now).is_ok();
                mute_all = true;
            }
            CouncilCommand::SetItem { item_id } => {
                let had_floor = session.floor().is_some();
                session.set_item(&item_id, now)?;
                floor_changed = had_floor && session.floor().is_none();
            }
            CouncilCommand::RollCallStart => session.start_roll_call(now)?,
            CouncilCommand::Present => session.present(&user, now)?,
            CouncilCommand::RollCallEnd => {
                let call = session.end_roll_call(now)?;
                tracing::info!(present = call.present.len(), required = call.required, "roll call ended");
            }
            CouncilCommand::VoteOpen { item_id, secret } => {
                let id = new_vote_id();
                let vote = session.open_vote(&id, &item_id, secret, now)?;
                tracing::info!(vote = %vote.id, secret, eligible = vote.eligible.len(), "vote opened");
                jobs.push(CouncilJob::OpenVote(NewCouncilVote {
                    id: vote.id.clone(),
                    session_id: session_id.clone(),
                    item_id: vote.item.clone(),
                    secret,
                    opened_at: now,
                    eligible: vote.eligible.iter().cloned().collect(),
                }));
            }
            CouncilCommand::Vote { choice } => {
                let (vote, secret) = session.cast(&user, choice.0)?;
                // Never log a choice. A secret ballot is not logged at all: every line here carries
                // the session span's participant, and a timed line per voter would give the order
                // of the ballots (harmless alone, but nothing else must be able to pair with it).
                if secret {
                    jobs.push(CouncilJob::SecretBallot { vote, user, choice });
                } else {
                    tracing::info!(%vote, voter = %user, "vote cast");
                    jobs.push(CouncilJob::OpenBallot { vote, user, choice: choice.0 });
                }
            }
            CouncilCommand::StreamSuspend | CouncilCommand::StreamResume | CouncilCommand::End => {}
            CouncilCommand::VoteClose => {
                let record = session.close_vote(now)?;
                tracing::info!(vote = %record.id, voters = record.voters.len(), outcome = record.outcome.as_str(), "vote closed");
                jobs.push(close_job(record));
            }
        }
        // The log lines first: the minutes read a vote's opening before its ballots.
        let mut all = log_jobs(&session_id, session, from);
        let closing =
            all.iter().position(|j| matches!(j, CouncilJob::Event { event, .. } if event.kind == "vote_closed"));
        match closing {
            // A vote's close row follows its ballots.
            Some(at) => {
                let tail = all.split_off(at);
                all.extend(jobs);
                all.extend(tail);
            }
            None => all.extend(jobs),
        }
        self.submit_all(all);
        let mut actions = Vec::new();
        if mute_all {
            actions.extend(
                self.present.iter().filter(|(_, r)| *r != Role::Host).map(|(p, _)| Action::ForceMute(p.clone())),
            );
        } else if floor_changed {
            actions.extend(self.mute_non_speakers());
        }
        if mute_all || floor_changed {
            actions.extend(self.gates());
        }
        actions.extend(self.state());
        Ok(actions)
    }
}

fn log_jobs(session_id: &str, session: &Session, from: usize) -> Vec<CouncilJob> {
    session.log()[from..]
        .iter()
        .map(|entry| CouncilJob::Event { session: session_id.to_owned(), event: event_to_row(entry.at, &entry.event) })
        .collect()
}

fn close_job(record: &VoteRecord) -> CouncilJob {
    CouncilJob::CloseVote {
        vote: record.id.clone(),
        closed_at: record.closed_at,
        counts: Counts {
            favourable: i64::from(record.tally.favourable),
            contrary: i64::from(record.tally.contrary),
            abstained: i64::from(record.tally.abstained),
        },
        outcome: record.outcome.as_str(),
    }
}

/// A vote id that sorts after every earlier one of this process (votes opened in the same second
/// keep their order in the minutes): 12 hex digits of strictly increasing milliseconds, then 8
/// random characters.
fn new_vote_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{SystemTime, UNIX_EPOCH};
    static LAST: AtomicU64 = AtomicU64::new(0);
    const ALPHABET: &[u8; 32] = b"234567abcdefghijklmnopqrstuvwxyz";
    let wall = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    let prev = LAST.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |last| Some(wall.max(last + 1)));
    let ms = wall.max(prev.unwrap_or(0) + 1);
    let random: String = (0..8).map(|_| ALPHABET[rand::random_range(0..32)] as char).collect();
    format!("{ms:012x}{random}")
}

fn view(session: &Session, info: &CouncilSession) -> CouncilState {
    let pid = |u: &str| identity(u);
    let roll_call =
        session.roll_call().map(|c| (true, c)).or(session.last_roll_call().map(|c| (false, c))).map(|(open, c)| {
            RollCallView {
                open,
                started_at: c.started_at,
                ended_at: c.ended_at,
                present: c.present.iter().map(|u| pid(u)).collect(),
            }
        });
    let vote = match session.vote() {
        Some(v) => Some(VoteView {
            id: v.id.clone(),
            item_id: v.item.clone(),
            secret: v.secret,
            open: true,
            eligible: v.eligible.iter().map(|u| pid(u)).collect(),
            voted: v.eligible.iter().filter(|u| v.has_voted(u)).map(|u| pid(u)).collect(),
            cast: v.cast_count(),
            results: None,
        }),
        None => session.votes().last().map(|r| VoteView {
            id: r.id.clone(),
            item_id: r.item.clone(),
            secret: r.secret,
            open: false,
            eligible: r.eligible.iter().map(|u| pid(u)).collect(),
            voted: r.voters.iter().map(|u| pid(u)).collect(),
            cast: r.voters.len(),
            results: Some(VoteResults {
                favourable: r.tally.favourable,
                contrary: r.tally.contrary,
                abstained: r.tally.abstained,
                outcome: r.outcome.as_str(),
                by_name: r.by_name.iter().map(|(u, c)| NamedChoice { participant_id: pid(u), choice: *c }).collect(),
            }),
        }),
    };
    CouncilState {
        session: info.id.clone(),
        title: info.title.clone(),
        items: session.items().to_vec(),
        current_item: session.current_item().map(str::to_owned),
        floor: session.floor().map(pid),
        queue: session.queue().map(pid).collect(),
        members: session
            .members()
            .iter()
            .map(|m| MemberView {
                participant_id: pid(&m.id),
                name: m.name.clone(),
                chair: m.chair,
                in_room: session.in_room().contains(&m.id),
            })
            .collect(),
        roll_call,
        quorum: QuorumView {
            rule: session.quorum().to_text(),
            members: session.members().len(),
            required: session.required(),
            present: session.present_now(),
            reached: session.quorum_reached(),
        },
        vote,
        stream: "live",
    }
}

// --- the log as rows -------------------------------------------------------------------------------

/// `domain::council::Event` → a `council_events` row.
pub fn event_to_row(at: i64, event: &Event) -> CouncilEvent {
    let (kind, user, subject): (&str, Option<&str>, Option<&str>) = match event {
        Event::Arrived { user } => ("arrived", Some(user), None),
        Event::Departed { user } => ("departed", Some(user), None),
        Event::ItemStarted { item } => ("item_started", None, Some(item)),
        Event::ItemEnded { item } => ("item_ended", None, Some(item)),
        Event::FloorRequested { user } => ("floor_requested", Some(user), None),
        Event::FloorWithdrawn { user } => ("floor_withdrawn", Some(user), None),
        Event::FloorGiven { user } => ("floor_given", Some(user), None),
        Event::FloorEnded { user } => ("floor_ended", Some(user), None),
        Event::RollCallStarted => ("roll_call_started", None, None),
        Event::Present { user } => ("present", Some(user), None),
        Event::RollCallEnded => ("roll_call_ended", None, None),
        Event::VoteOpened { vote } => ("vote_opened", None, Some(vote)),
        Event::VoteClosed { vote } => ("vote_closed", None, Some(vote)),
    };
    CouncilEvent { at, kind: kind.into(), user_id: user.map(str::to_owned), subject: subject.map(str::to_owned) }
}

/// A `council_events` row → the event; `None` for a row this version does not know.
pub fn event_from_row(row: &CouncilEvent) -> Option<Event> {
    let user = || row.user_id.clone();
    let subject = || row.subject.clone();
    Some(match row.kind.as_str() {
        "arrived" => Event::Arrived { user: user()? },
        "departed" => Event::Departed { user: user()? },
        "item_started" => Event::ItemStarted { item: subject()? },
        "item_ended" => Event::ItemEnded { item: subject()? },
        "floor_requested" => Event::FloorRequested { user: user()? },
        "floor_withdrawn" => Event::FloorWithdrawn { user: user()? },
        "floor_given" => Event::FloorGiven { user: user()? },
        "floor_ended" => Event::FloorEnded { user: user()? },
        "roll_call_started" => Event::RollCallStarted,
        "present" => Event::Present { user: user()? },
        "roll_call_ended" => Event::RollCallEnded,
        "vote_opened" => Event::VoteOpened { vote: subject()? },
        "vote_closed" => Event::VoteClosed { vote: subject()? },
        _ => return None,
    })
}

/// Loads a session with its members' names and agenda.
pub async fn load(store: &Store, session_id: &str) -> Result<Option<Loaded>, sportello_store::StoreError> {
    let Some(session) = store.council_session(session_id).await? else { return Ok(None) };
    let mut members = Vec::new();
    for user in store.council_members(session_id).await? {
        let name = store.user(&user).await?.map(|u| u.display_name).unwrap_or_default();
        members.push(Member { chair: user == session.chair_id, id: user, name });
    }
    let items = store.council_items(session_id).await?.into_iter().map(|i| Item { id: i.id, title: i.title }).collect();
    let log = store
        .council_events(session_id)
        .await?
        .iter()
        .filter_map(|row| Some(sportello_domain::council::Entry { at: row.at, event: event_from_row(row)? }))
        .collect();
    let votes = store.council_votes(session_id).await?.iter().filter_map(vote_record).collect();
    Ok(Some(Loaded { session, members, items, log, votes }))
}

/// Runs one council job on the persistence task. Errors are logged without any choice.
pub async fn run_job(store: &Store, rooms: &WeakRooms, job: CouncilJob) {
    match job {
        CouncilJob::Load { room, session } => {
            let loaded = match load(store, &session).await {
                Ok(loaded) => loaded,
                Err(error) => {
                    tracing::error!(%session, %error, "cannot load the council session");
                    None
                }
            };
            if let Some(rooms) = rooms.upgrade() {
                rooms.deliver(&room, Control::Council(loaded));
            }
        }
        CouncilJob::Live { session } => {
            if let Ok(Some(s)) = store.council_session(&session).await
                && s.status == sportello_store::CouncilStatus::Scheduled
                && let Err(error) = store.set_council_status(&session, sportello_store::CouncilStatus::Live).await
            {
                tracing::error!(%session, %error, "cannot mark the council session live");
            }
        }
        CouncilJob::End { session } => {
            if let Err(error) = store.set_council_status(&session, sportello_store::CouncilStatus::Ended).await {
                tracing::error!(%session, %error, "cannot mark the council session ended");
            }
        }
        CouncilJob::FinishRecording(finished) => crate::broadcast::finish(store, *finished).await,
        CouncilJob::Event { session, event } => {
            if let Err(error) = store.add_council_event(&session, &event).await {
                tracing::error!(%session, kind = %event.kind, %error, "council event not stored");
            }
        }
        CouncilJob::OpenVote(vote) => {
            if let Err(error) = store.open_council_vote(&vote).await {
                tracing::error!(vote = %vote.id, %error, "vote not stored");
            }
        }
        CouncilJob::OpenBallot { vote, user, choice } => {
            if let Err(error) = store.record_open_ballot(&vote, &user, choice.as_str()).await {
                tracing::error!(%vote, %user, %error, "open ballot not stored");
            }
        }
        CouncilJob::SecretBallot { vote, user, choice } => {
            // Neither the user nor the choice goes into this log line: only that one ballot failed.
            if let Err(error) = store.record_secret_ballot(&vote, &user, choice.0.as_str()).await {
                tracing::error!(%vote, %error, "secret ballot not stored");
            }
        }
        CouncilJob::CloseVote { vote, closed_at, counts, outcome } => {
            match store.close_council_vote(&vote, closed_at, counts, outcome).await {
                Ok(stored) if stored != counts => {
                    tracing::error!(%vote, "the stored tally differs from the room's");
                }
                Ok(_) => {}
                Err(error) => tracing::error!(%vote, %error, "vote close not stored"),
            }
        }
    }
}

/// The domain's view of a stored vote (closed votes only).
pub fn vote_record(vote: &sportello_store::CouncilVote) -> Option<VoteRecord> {
    use sportello_domain::council::{Outcome, Tally};
    let counts = vote.counts?;
    let tally = Tally {
        favourable: u32::try_from(counts.favourable).ok()?,
        contrary: u32::try_from(counts.contrary).ok()?,
        abstained: u32::try_from(counts.abstained).ok()?,
    };
    Some(VoteRecord {
        id: vote.id.clone(),
        item: vote.item_id.clone(),
        secret: vote.secret,
        opened_at: vote.opened_at,
        closed_at: vote.closed_at?,
        eligible: vote.eligible.clone(),
        voters: vote.voters.clone(),
        by_name: vote.by_name.iter().filter_map(|(u, c)| Some((u.clone(), c.parse().ok()?))).collect(),
        outcome: if vote.outcome.as_deref() == Some("approved") { Outcome::Approved } else { Outcome::Rejected },
        tally,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_survives_a_row() {
        let events = [
            Event::Arrived { user: "u".into() },
            Event::Departed { user: "u".into() },
            Event::ItemStarted { item: "i".into() },
            Event::ItemEnded { item: "i".into() },
            Event::FloorRequested { user: "u".into() },
            Event::FloorWithdrawn { user: "u".into() },
            Event::FloorGiven { user: "u".into() },
            Event::FloorEnded { user: "u".into() },
            Event::RollCallStarted,
            Event::Present { user: "u".into() },
            Event::RollCallEnded,
            Event::VoteOpened { vote: "v".into() },
            Event::VoteClosed { vote: "v".into() },
        ];
        for event in events {
            assert_eq!(event_from_row(&event_to_row(5, &event)), Some(event));
        }
    }

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
