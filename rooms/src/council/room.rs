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

/// The council room on its own: inputs in, actions out — no socket, SFU, store or clock.
#[cfg(test)]
mod tests {
    use super::*;
    use sportello_domain::council::{Choice, Item, Member, Sealed};
    use sportello_store::{CouncilBody, CouncilStatus};

    const NOW: i64 = 1_800_000_000;

    fn pid(user: &str) -> ParticipantId {
        identity(user).into()
    }

    fn stored_session() -> Loaded {
        let member = |id: &str, name: &str, chair| Member { id: id.into(), name: name.into(), chair };
        Loaded {
            session: CouncilSession {
                id: "s1".into(),
                title: "Consiglio comunale".into(),
                body: CouncilBody::Consiglio,
                scheduled_at: NOW,
                chair_id: "chair".into(),
                status: CouncilStatus::Scheduled,
                quorum: "majority".into(),
                created_at: NOW - 86_400,
            },
            members: vec![
                member("chair", "Sindaca Rossi", true),
                member("ada", "Ada Bianchi", false),
                member("bea", "Bea Verdi", false),
            ],
            items: vec![Item { id: "i1".into(), title: "Bilancio".into() }],
            log: Vec::new(),
            votes: Vec::new(),
        }
    }

    /// A loaded session with the chair and Ada in the room; Bea has not come yet.
    fn session() -> CouncilRoom {
        let (mut council, load) = CouncilRoom::for_room(&RoomId::from("council-s1")).expect("a council room");
        assert_eq!(load, CouncilJob::Load { room: "council-s1".into(), session: "s1".into() });
        council.loaded(Some(stored_session()), NOW);
        council.joined(&pid("chair"), Role::Host, NOW);
        council.joined(&pid("ada"), Role::Participant, NOW);
        council
    }

    fn chair(council: &mut CouncilRoom, command: CouncilCommand) -> Vec<Action> {
        council.command(&pid("chair"), Role::Host, command, NOW + 60).expect("the chair's command")
    }

    fn by(council: &mut CouncilRoom, user: &str, command: CouncilCommand) -> Result<Vec<Action>, ProtocolError> {
        council.command(&pid(user), Role::Participant, command, NOW + 60)
    }

    /// The `council.state` a call ends with.
    fn state(actions: &[Action]) -> &CouncilState {
        actions
            .iter()
            .rev()
            .find_map(|a| match a {
                Action::State(state) => Some(&**state),
                _ => None,
            })
            .expect("a council.state")
    }

    fn current(council: &CouncilRoom) -> CouncilState {
        state(&council.state()).clone()
    }

    fn jobs(actions: &[Action]) -> Vec<&CouncilJob> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Store(job) => Some(job),
                _ => None,
            })
            .collect()
    }

    /// The kinds of the log rows a call stores, in order.
    fn logged(actions: &[Action]) -> Vec<String> {
        jobs(actions)
            .into_iter()
            .filter_map(|j| match j {
                CouncilJob::Event { event, .. } => Some(event.kind.clone()),
                _ => None,
            })
            .collect()
    }

    fn ids(users: &[&str]) -> Vec<String> {
        users.iter().map(|u| identity(u)).collect()
    }

    /// A roll call with the chair and Ada present: the quorum (2 of 3) is reached.
    fn roll_call(council: &mut CouncilRoom) {
        chair(council, CouncilCommand::RollCallStart);
        by(council, "ada", CouncilCommand::Present).expect("present");
        chair(council, CouncilCommand::RollCallEnd);
    }

    #[test]
    fn jobs_come_first_and_in_order() {
        let (mut council, _) = CouncilRoom::for_room(&RoomId::from("council-s1")).expect("a council room");
        let actions = council.loaded(Some(stored_session()), NOW);
        assert!(jobs(&actions).is_empty(), "{actions:?}");
        let actions = council.joined(&pid("chair"), Role::Host, NOW);
        assert!(matches!(actions[0], Action::Store(CouncilJob::Event { ref event, .. }) if event.kind == "arrived"));
        assert_eq!(actions[1], Action::Store(CouncilJob::Live { session: "s1".into() }));
        assert!(actions[2..].iter().all(|a| !matches!(a, Action::Store(_))), "{actions:?}");
        assert_eq!(CouncilRoom::for_room(&RoomId::from("appt-1")).map(|(c, _)| c.session_id().to_owned()), None);
    }

    #[test]
    fn the_chair_gives_and_takes_the_floor() {
        let mut council = session();
        let actions = by(&mut council, "ada", CouncilCommand::RequestFloor).expect("request");
        assert_eq!(state(&actions).queue, ids(&["ada"]));
        assert_eq!(logged(&actions), ["floor_requested"]);
        assert!(!council.may_unmute(&pid("ada"), Role::Participant));

        let actions = chair(&mut council, CouncilCommand::GiveFloor { participant_id: identity("ada") });
        assert_eq!(state(&actions).floor, Some(identity("ada")));
        assert!(state(&actions).queue.is_empty());
        assert!(actions.contains(&Action::GateMicrophone { participant: pid("ada"), enabled: true }));
        assert!(actions.contains(&Action::GateMicrophone { participant: pid("chair"), enabled: true }));
        assert!(!actions.contains(&Action::ForceMute(pid("ada"))));
        assert_eq!(logged(&actions), ["floor_given"]);
        assert!(council.may_unmute(&pid("ada"), Role::Participant));
        let on_air = council.on_air().expect("on air with the chair present");
        assert_eq!((on_air.floor, on_air.speaker.as_deref()), (Some(pid("ada")), Some("Ada Bianchi")));

        let actions = chair(&mut council, CouncilCommand::TakeFloor);
        assert_eq!(state(&actions).floor, None);
        assert!(actions.contains(&Action::ForceMute(pid("ada"))));
        assert!(actions.contains(&Action::GateMicrophone { participant: pid("ada"), enabled: false }));
        assert_eq!(logged(&actions), ["floor_ended"]);
        assert!(!council.may_unmute(&pid("ada"), Role::Participant));
        assert!(council.may_unmute(&pid("chair"), Role::Host));
    }

    #[test]
    fn commands_from_a_non_chair_are_refused() {
        let mut council = session();
        let before = current(&council);
        for command in [
            CouncilCommand::GiveFloor { participant_id: identity("ada") },
            CouncilCommand::TakeFloor,
            CouncilCommand::MuteAll,
            CouncilCommand::SetItem { item_id: "i1".into() },
            CouncilCommand::RollCallStart,
            CouncilCommand::RollCallEnd,
            CouncilCommand::VoteOpen { item_id: "i1".into(), secret: false },
            CouncilCommand::VoteClose,
            CouncilCommand::StreamSuspend,
            CouncilCommand::StreamResume,
            CouncilCommand::End,
        ] {
            assert_eq!(by(&mut council, "ada", command.clone()), Err(ProtocolError::Forbidden), "{command:?}");
        }
        // A viewer (the chamber's display) has no say at all, not even "present".
        let viewer = council.command(&pid("ada"), Role::Viewer, CouncilCommand::Present, NOW);
        assert_eq!(viewer, Err(ProtocolError::Forbidden));
        // Someone who is no member cannot ask for the floor.
        let stranger = council.command(&"citizen-1".into(), Role::Participant, CouncilCommand::RequestFloor, NOW);
        assert_eq!(stranger, Err(ProtocolError::Council(CouncilError::NotMember)));
        assert_eq!(current(&council), before);
        assert!(council.on_air().is_some_and(|a| a.status == crate::live::LiveStatus::Live));
    }

    #[test]
    fn a_roll_call_records_present_and_absent() {
        let mut council = session();
        let actions = chair(&mut council, CouncilCommand::RollCallStart);
        let call = state(&actions).roll_call.clone().expect("a roll call");
        // The chair in the room counts as present from the start.
        assert!(call.open);
        assert_eq!(call.present, ids(&["chair"]));
        assert_eq!(logged(&actions), ["roll_call_started", "present"]);

        let actions = by(&mut council, "ada", CouncilCommand::Present).expect("present");
        assert_eq!(logged(&actions), ["present"]);
        // Bea is not in the room: she cannot answer.
        assert_eq!(
            by(&mut council, "bea", CouncilCommand::Present),
            Err(ProtocolError::Council(CouncilError::NotInRoom))
        );

        let actions = chair(&mut council, CouncilCommand::RollCallEnd);
        let state = state(&actions);
        let call = state.roll_call.clone().expect("the last roll call");
        assert!(!call.open);
        assert_eq!(call.ended_at, Some(NOW + 60));
        assert_eq!(call.present, ids(&["ada", "chair"]));
        assert!(!call.present.contains(&identity("bea")));
        assert_eq!((state.quorum.members, state.quorum.required, state.quorum.present), (3, 2, 2));
        assert!(state.quorum.reached);
        let in_room: Vec<(&str, bool)> = state.members.iter().map(|m| (m.name.as_str(), m.in_room)).collect();
        assert_eq!(in_room, [("Sindaca Rossi", true), ("Ada Bianchi", true), ("Bea Verdi", false)]);
        assert_eq!(logged(&actions), ["roll_call_ended"]);
    }

    #[test]
    fn a_vote_opens_closes_and_counts() {
        let mut council = session();
        // No vote without a roll call just before it.
        assert_eq!(
            council.command(
                &pid("chair"),
                Role::Host,
                CouncilCommand::VoteOpen { item_id: "i1".into(), secret: false },
                NOW
            ),
            Err(ProtocolError::Council(CouncilError::RollCallRequired))
        );
        roll_call(&mut council);
        let actions = chair(&mut council, CouncilCommand::VoteOpen { item_id: "i1".into(), secret: false });
        let vote = state(&actions).vote.clone().expect("an open vote");
        assert!(vote.open && !vote.secret);
        assert_eq!(vote.eligible, ids(&["ada", "chair"]));
        assert!(vote.results.is_none());
        let opened = jobs(&actions);
        assert!(matches!(opened[..], [CouncilJob::Event { .. }, CouncilJob::OpenVote(v)] if v.id == vote.id));

        let actions = chair(&mut council, CouncilCommand::Vote { choice: Sealed(Choice::Favourable) });
        assert_eq!(state(&actions).vote.as_ref().map(|v| (v.cast, v.voted.clone())), Some((1, ids(&["chair"]))));
        assert_eq!(
            jobs(&actions),
            [&CouncilJob::OpenBallot { vote: vote.id.clone(), user: "chair".into(), choice: Choice::Favourable }]
        );
        by(&mut council, "ada", CouncilCommand::Vote { choice: Sealed(Choice::Favourable) }).expect("ada votes");
        assert_eq!(
            by(&mut council, "ada", CouncilCommand::Vote { choice: Sealed(Choice::Contrary) }),
            Err(ProtocolError::Council(CouncilError::AlreadyVoted))
        );

        let actions = chair(&mut council, CouncilCommand::VoteClose);
        let closed = state(&actions).vote.clone().expect("the closed vote");
        assert!(!closed.open);
        let results = closed.results.expect("results once closed");
        assert_eq!((results.favourable, results.contrary, results.abstained, results.outcome), (2, 0, 0, "approved"));
        let by_name: Vec<(String, Choice)> =
            results.by_name.into_iter().map(|n| (n.participant_id, n.choice)).collect();
        assert_eq!(by_name, [(identity("ada"), Choice::Favourable), (identity("chair"), Choice::Favourable)]);
        assert!(jobs(&actions).iter().any(|j| matches!(j,
            CouncilJob::CloseVote { counts, outcome: "approved", .. } if counts.favourable == 2 && counts.contrary == 0)));
    }

    #[test]
    fn a_secret_ballot_stays_secret() {
        let mut council = session();
        roll_call(&mut council);
        chair(&mut council, CouncilCommand::VoteOpen { item_id: "i1".into(), secret: true });
        let mut ballots = Vec::new();
        for (user, choice) in [("chair", Choice::Favourable), ("ada", Choice::Contrary)] {
            let role = if user == "chair" { Role::Host } else { Role::Participant };
            let actions =
                council.command(&pid(user), role, CouncilCommand::Vote { choice: Sealed(choice) }, NOW).expect("vote");
            let vote = state(&actions).vote.clone().expect("open vote");
            // Who voted is public; what, never.
            assert!(vote.results.is_none());
            ballots.extend(jobs(&actions).into_iter().cloned());
        }
        assert_eq!(ballots.len(), 2);
        for ballot in &ballots {
            assert!(matches!(ballot, CouncilJob::SecretBallot { .. }), "{ballot:?}");
            let printed = format!("{ballot:?}").to_lowercase();
            assert!(!printed.contains("favourable") && !printed.contains("contrary"), "{printed}");
        }

        let actions = chair(&mut council, CouncilCommand::VoteClose);
        let closed = state(&actions).vote.clone().expect("the closed vote");
        assert_eq!(closed.voted, ids(&["ada", "chair"]));
        let results = closed.results.expect("results");
        assert_eq!((results.favourable, results.contrary, results.outcome), (1, 1, "rejected"));
        assert!(results.by_name.is_empty());
        let sent = serde_json::to_string(state(&actions)).expect("serializes");
        assert!(!sent.contains("by_name\":[{"), "{sent}");
    }

    #[test]
    fn a_late_joiner_gets_the_current_state() {
        let mut council = session();
        chair(&mut council, CouncilCommand::SetItem { item_id: "i1".into() });
        by(&mut council, "ada", CouncilCommand::RequestFloor).expect("request");
        chair(&mut council, CouncilCommand::GiveFloor { participant_id: identity("ada") });

        let actions = council.joined(&pid("bea"), Role::Participant, NOW + 120);
        assert_eq!(logged(&actions), ["arrived"]);
        // Arriving does not give a voice: muted, and her microphone is not forwarded.
        assert!(actions.contains(&Action::ForceMute(pid("bea"))));
        assert!(actions.contains(&Action::GateMicrophone { participant: pid("bea"), enabled: false }));
        let state = state(&actions).clone();
        assert_eq!(state.floor, Some(identity("ada")));
        assert_eq!(state.current_item.as_deref(), Some("i1"));
        assert!(state.members.iter().all(|m| m.in_room));
        assert_eq!(state.stream, "live");
        // A reconnection is answered with the same state, and nothing is stored.
        assert_eq!(council.state(), vec![Action::State(Box::new(state))]);
    }

    #[test]
    fn nothing_is_decided_before_the_session_is_loaded() {
        let (mut council, _) = CouncilRoom::for_room(&RoomId::from("council-s1")).expect("a council room");
        let actions = council.joined(&pid("chair"), Role::Host, NOW);
        assert!(actions.is_empty(), "{actions:?}");
        assert_eq!(
            council.command(&pid("chair"), Role::Host, CouncilCommand::RollCallStart, NOW),
            Err(ProtocolError::CouncilUnavailable)
        );
        assert_eq!(council.on_air(), None);
        council.load_not_queued();
        assert!(council.loaded(None, NOW).is_empty());
        assert!(council.state().is_empty());
    }

    #[test]
    fn the_chair_suspends_resumes_and_ends_the_stream() {
        let mut council = session();
        chair(&mut council, CouncilCommand::SetItem { item_id: "i1".into() });
        let actions = chair(&mut council, CouncilCommand::StreamSuspend);
        assert_eq!(state(&actions).stream, "suspended");
        assert_eq!(council.on_air().map(|a| a.status), Some(crate::live::LiveStatus::Suspended));
        let actions = chair(&mut council, CouncilCommand::StreamResume);
        assert_eq!(state(&actions).stream, "live");
        let actions = chair(&mut council, CouncilCommand::End);
        assert_eq!(jobs(&actions), [&CouncilJob::End { session: "s1".into() }]);
        assert_eq!(state(&actions).stream, "ended");
        assert_eq!(council.on_air().map(|a| a.status), Some(crate::live::LiveStatus::Ended));
    }
}
