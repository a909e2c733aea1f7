//! The council logic of a `council-<session>` room: the room actor ([`crate::room`]) delegates the
//! `council.*` messages, joins and departures here, and carries out the [`Action`]s returned.
//!
//! The rules are `sportello_domain::council`; this module maps participants (`user-<id>`) to
//! members, decides who may send what (chair-only messages need the `host` role; viewers never
//! vote), builds the `council.state` broadcast and names what must be stored ([`Action::Store`],
//! which the room queues: it never awaits the database). No store, channel or socket here, and time
//! comes in as `now` (only a new vote's id reads the system clock, so that ids sort), so the rules
//! are tested on their own (`tests` below). A secret-ballot choice is only ever held in a
//! [`Sealed`](sportello_domain::council::Sealed) (whose `Debug` hides it) and is never logged.

use sportello_domain::council::{CouncilError, Event, Quorum, Session, VoteRecord};
use sportello_sfu::{ParticipantId, RoomId};
use sportello_store::{CouncilSession, Counts, NewCouncilVote};

use super::jobs::{CouncilJob, Loaded, event_to_row};
use crate::error::ProtocolError;
use crate::protocol::council::{
    CouncilCommand, CouncilState, MemberView, NamedChoice, QuorumView, ROOM_PREFIX, RollCallView, VoteResults,
    VoteView, identity, user_of,
};
use sportello_backoffice::token::Role;

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
    /// Queue this job for the persistence task. These come first in what a call returns, in the
    /// order the minutes need, and are queued before the rest is carried out.
    Store(CouncilJob),
}

#[derive(Debug)]
enum Load {
    Loading,
    Missing,
    Ready { session: Box<Session>, info: CouncilSession },
}

/// The council part of a room.
#[derive(Debug)]
pub struct CouncilRoom {
    session_id: String,
    load: Load,
    /// Jobs decided during the current call, returned first as [`Action::Store`].
    pending: Vec<CouncilJob>,
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
    /// `Some` for a `council-<id>` room, with the job that loads its session (its answer goes to
    /// [`CouncilRoom::loaded`]; if it cannot be queued, [`CouncilRoom::load_not_queued`]).
    pub fn for_room(room: &RoomId) -> Option<(CouncilRoom, CouncilJob)> {
        let session_id = room.strip_prefix(ROOM_PREFIX).filter(|s| !s.is_empty())?.to_owned();
        let job = CouncilJob::Load { room: room.clone(), session: session_id.clone() };
        let council = CouncilRoom {
            session_id,
            load: Load::Loading,
            pending: Vec::new(),
            present: Vec::new(),
            suspended: None,
            ended: false,
        };
        Some((council, job))
    }

    /// The load job was refused (the persistence queue is full): the session stays unavailable.
    pub fn load_not_queued(&mut self) {
        self.load = Load::Missing;
    }

    /// `actions`, preceded by the jobs decided on the way.
    fn with_jobs(&mut self, actions: Vec<Action>) -> Vec<Action> {
        let mut all: Vec<Action> = self.pending.drain(..).map(Action::Store).collect();
        all.extend(actions);
        all
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
        self.pending.extend(log_jobs(&self.session_id, &session, stored));
        if self.present.iter().any(|(_, role)| *role == Role::Host) {
            self.pending.push(CouncilJob::Live { session: self.session_id.clone() });
        }
        // An ended session stays ended: coming back to its room does not put it on air again.
        self.ended = loaded.session.status == sportello_store::CouncilStatus::Ended;
        self.load = Load::Ready { session: Box::new(session), info: loaded.session };
        let mut actions = self.mute_non_speakers();
        actions.extend(self.gates());
        actions.extend(self.state());
        self.with_jobs(actions)
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
            self.pending.extend(jobs);
            if role == Role::Host {
                self.pending.push(CouncilJob::Live { session: self.session_id.clone() });
            }
            let may = self.may_unmute(participant, role);
            if !may {
                actions.push(Action::ForceMute(participant.clone()));
            }
            actions.push(Action::GateMicrophone { participant: participant.clone(), enabled: may });
        }
        actions.extend(self.state());
        self.with_jobs(actions)
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
        self.pending.extend(jobs);
        let state = self.state();
        self.with_jobs(state)
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
                self.pending.push(CouncilJob::End { session: self.session_id.clone() });
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
        // Jobs are only decided once every check passed: an error leaves nothing pending.
        let actions = self.apply(participant, role, command, now)?;
        Ok(self.with_jobs(actions))
    }

    fn apply(
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
        self.pending.extend(all);
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
