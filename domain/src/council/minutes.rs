//! The minutes draft (bozza di verbale): built from the session's log and its closed votes only, so
//! the live session and a session read back from the database give the same minutes.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Entry, Event, Item, Member, UserId, VoteRecord};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Minutes {
    pub attendance: Vec<Attendance>,
    pub roll_calls: Vec<RollCallSummary>,
    pub items: Vec<ItemMinutes>,
    /// Total speaking time per person, longest first.
    pub speakers: Vec<SpeakingTime>,
    pub votes: Vec<VoteRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attendance {
    pub user: UserId,
    pub name: String,
    pub chair: bool,
    /// Every entry into the room (Unix seconds).
    pub arrivals: Vec<i64>,
    pub departures: Vec<i64>,
    /// Arrived after the first roll call ended.
    pub late: bool,
    /// Roll calls answered "present", out of [`Minutes::roll_calls`].
    pub roll_calls_present: usize,
    /// Never answered a roll call and never came: absent from the session.
    pub absent: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RollCallSummary {
    pub started_at: i64,
    pub ended_at: Option<i64>,
    pub present: Vec<UserId>,
    pub absent: Vec<UserId>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Speech {
    pub user: UserId,
    pub from: i64,
    pub to: i64,
    pub seconds: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SpeakingTime {
    pub user: UserId,
    pub name: String,
    pub seconds: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ItemMinutes {
    pub id: String,
    pub title: String,
    /// First time the item was taken up; `None` if never discussed.
    pub started_at: Option<i64>,
    /// Last time it was left.
    pub ended_at: Option<i64>,
    pub speeches: Vec<Speech>,
    /// Speaking time per person on this item, longest first.
    pub speaking: Vec<SpeakingTime>,
    /// Ids of the votes on this item, in order.
    pub votes: Vec<String>,
}

/// Replays `log` (in order). A speech or item still open is closed at `until`.
pub fn build_minutes(members: &[Member], items: &[Item], log: &[Entry], votes: &[VoteRecord], until: i64) -> Minutes {
    let name = |user: &str| members.iter().find(|m| m.id == user).map(|m| m.name.clone()).unwrap_or_default();
    let mut attendance: Vec<Attendance> = members
        .iter()
        .map(|m| Attendance {
            user: m.id.clone(),
            name: m.name.clone(),
            chair: m.chair,
            arrivals: Vec::new(),
            departures: Vec::new(),
            late: false,
            roll_calls_present: 0,
            absent: true,
        })
        .collect();
    let mut item_rows: Vec<ItemMinutes> = items
        .iter()
        .map(|i| ItemMinutes {
            id: i.id.clone(),
            title: i.title.clone(),
            started_at: None,
            ended_at: None,
            speeches: Vec::new(),
            speaking: Vec::new(),
            votes: votes.iter().filter(|v| v.item == i.id).map(|v| v.id.clone()).collect(),
        })
        .collect();
    let mut roll_calls: Vec<RollCallSummary> = Vec::new();
    let mut first_roll_call_end: Option<i64> = None;
    let mut current_item: Option<String> = None;
    // (user, from, item)
    let mut speech: Option<(UserId, i64, Option<String>)> = None;
    let mut loose_speeches: Vec<Speech> = Vec::new();

    let mut end_speech = |speech: &mut Option<(UserId, i64, Option<String>)>, to: i64, rows: &mut Vec<ItemMinutes>| {
        if let Some((user, from, item)) = speech.take() {
            let s = Speech { user, from, to: to.max(from), seconds: (to - from).max(0) };
            match item.and_then(|id| rows.iter_mut().find(|r| r.id == id)) {
                Some(row) => row.speeches.push(s),
                None => loose_speeches.push(s),
            }
        }
    };

    for entry in log {
        let at = entry.at;
        match &entry.event {
            Event::Arrived { user } => {
                if let Some(a) = attendance.iter_mut().find(|a| &a.user == user) {
                    a.arrivals.push(at);
                    a.absent = false;
                }
            }
            Event::Departed { user } => {
                if let Some(a) = attendance.iter_mut().find(|a| &a.user == user) {
                    a.departures.push(at);
                }
            }
            Event::ItemStarted { item } => {
                if let Some(row) = item_rows.iter_mut().find(|r| &r.id == item) {
                    row.started_at.get_or_insert(at);
                }
                current_item = Some(item.clone());
            }
            Event::ItemEnded { item } => {
                if let Some(row) = item_rows.iter_mut().find(|r| &r.id == item) {
                    row.ended_at = Some(at);
                }
                current_item = None;
            }
            Event::FloorGiven { user } => {
                end_speech(&mut speech, at, &mut item_rows);
                speech = Some((user.clone(), at, current_item.clone()));
            }
            Event::FloorEnded { .. } => end_speech(&mut speech, at, &mut item_rows),
            Event::RollCallStarted => roll_calls.push(RollCallSummary {
                started_at: at,
                ended_at: None,
                present: Vec::new(),
                absent: Vec::new(),
            }),
            Event::Present { user } => {
                if let Some(call) = roll_calls.last_mut().filter(|c| c.ended_at.is_none())
                    && !call.present.contains(user)
                {
                    call.present.push(user.clone());
                }
            }
            Event::RollCallEnded => {
                if let Some(call) = roll_calls.last_mut() {
                    call.ended_at = Some(at);
                    first_roll_call_end.get_or_insert(at);
                }
            }
            Event::FloorRequested { .. }
            | Event::FloorWithdrawn { .. }
            | Event::VoteOpened { .. }
            | Event::VoteClosed { .. } => {}
        }
    }
    end_speech(&mut speech, until, &mut item_rows);
    if let Some(item) = current_item
        && let Some(row) = item_rows.iter_mut().find(|r| r.id == item)
    {
        row.ended_at = Some(until);
    }

    for call in &mut roll_calls {
        call.present.sort();
        call.absent = members.iter().map(|m| m.id.clone()).filter(|id| !call.present.contains(id)).collect();
    }
    for a in &mut attendance {
        a.roll_calls_present = roll_calls.iter().filter(|c| c.present.contains(&a.user)).count();
        a.late = match (a.arrivals.first(), first_roll_call_end) {
            (Some(&arrived), Some(end)) => arrived > end,
            _ => false,
        };
    }
    let totals = |speeches: &mut dyn Iterator<Item = &Speech>| {
        let mut per: BTreeMap<&str, i64> = BTreeMap::new();
        for s in speeches {
            *per.entry(s.user.as_str()).or_default() += s.seconds;
        }
        let mut out: Vec<SpeakingTime> = per
            .into_iter()
            .map(|(user, seconds)| SpeakingTime { user: user.to_owned(), name: name(user), seconds })
            .collect();
        out.sort_by(|a, b| b.seconds.cmp(&a.seconds).then_with(|| a.user.cmp(&b.user)));
        out
    };
    for row in &mut item_rows {
        row.speaking = totals(&mut row.speeches.iter());
    }
    let speakers = totals(&mut item_rows.iter().flat_map(|r| r.speeches.iter()).chain(loose_speeches.iter()));
    Minutes { attendance, roll_calls, items: item_rows, speakers, votes: votes.to_vec() }
}
