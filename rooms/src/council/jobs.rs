//! What a council room has the persistence task do: load its session, store its log, votes and
//! ballots, mark the session live or ended. [`CouncilRoom`](super::room::CouncilRoom) only names
//! these jobs; the room actor queues them and [`run_job`] runs them off the room, in order. The one
//! answer (a loaded session) is returned, not sent: this module knows no room nor channel.

use sportello_domain::council::{Choice, Event, Item, Member, Sealed, VoteRecord};
use sportello_sfu::RoomId;
use sportello_store::{
    CouncilEvent, CouncilSession, Counts, ItemChange, NewCouncilVote, Store, WebhookEventType as Hook,
};

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

/// The jobs a council room queues for the persistence task.
#[derive(Debug, Clone, PartialEq)]
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

/// Runs one council job on the persistence task. Errors are logged without any choice. A `Load`
/// answers its room with the session (`None`: not found or not loadable).
pub async fn run_job(store: &Store, job: CouncilJob, now: i64) -> Option<(RoomId, Option<Loaded>)> {
    match job {
        CouncilJob::Load { room, session } => {
            let loaded = match load(store, &session).await {
                Ok(loaded) => loaded,
                Err(error) => {
                    tracing::error!(%session, %error, "cannot load the council session");
                    None
                }
            };
            return Some((room, loaded));
        }
        CouncilJob::Live { session } => {
            if let Ok(Some(s)) = store.council_session(&session).await
                && s.status == sportello_store::CouncilStatus::Scheduled
            {
                match store.set_council_status(&session, sportello_store::CouncilStatus::Live).await {
                    Ok(()) => {
                        webhook(store.emit_council_session_event(&session, Hook::CouncilSessionStarted, now).await)
                    }
                    Err(error) => tracing::error!(%session, %error, "cannot mark the council session live"),
                }
            }
        }
        CouncilJob::End { session } => {
            match store.set_council_status(&session, sportello_store::CouncilStatus::Ended).await {
                Ok(()) => webhook(store.emit_council_session_event(&session, Hook::CouncilSessionEnded, now).await),
                Err(error) => tracing::error!(%session, %error, "cannot mark the council session ended"),
            }
        }
        CouncilJob::Event { session, event } => {
            if let Err(error) = store.add_council_event(&session, &event).await {
                tracing::error!(%session, kind = %event.kind, %error, "council event not stored");
            } else if let (Some(change), Some(item)) = (item_change(&event.kind), event.subject.as_deref()) {
                webhook(store.emit_council_item_event(&session, item, change, event.at).await);
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
                Err(error) => {
                    tracing::error!(%vote, %error, "vote close not stored");
                    return None;
                }
            }
            // Totals only, read back from the store (never the ballots).
            webhook(store.emit_vote_closed_event(&vote, closed_at).await);
        }
    }
    None
}

/// A webhook event that could not be written is logged; the meeting goes on.
fn webhook(written: Result<(), sportello_store::StoreError>) {
    if let Err(error) = written {
        tracing::error!(%error, "webhook event not stored");
    }
}

fn item_change(kind: &str) -> Option<ItemChange> {
    match kind {
        "item_started" => Some(ItemChange::Started),
        "item_ended" => Some(ItemChange::Ended),
        _ => None,
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
}
