//! Property tests: random sequences of operations (most of them refused) never break the rules.

use proptest::prelude::*;

use super::*;

const USERS: [&str; 5] = ["chair", "a", "b", "c", "d"];

#[derive(Debug, Clone)]
enum Op {
    Arrive(usize),
    Depart(usize),
    Request(usize),
    Withdraw(usize),
    Give(usize),
    Take,
    Item(usize),
    RollStart,
    Present(usize),
    RollEnd,
    Open(bool),
    Cast(usize, usize),
    Close,
}

fn op() -> impl Strategy<Value = Op> {
    let u = 0..USERS.len();
    prop_oneof![
        u.clone().prop_map(Op::Arrive),
        u.clone().prop_map(Op::Depart),
        u.clone().prop_map(Op::Request),
        u.clone().prop_map(Op::Withdraw),
        u.clone().prop_map(Op::Give),
        Just(Op::Take),
        (0..3usize).prop_map(Op::Item),
        Just(Op::RollStart),
        u.clone().prop_map(Op::Present),
        Just(Op::RollEnd),
        any::<bool>().prop_map(Op::Open),
        (u, 0..3usize).prop_map(|(u, c)| Op::Cast(u, c)),
        Just(Op::Close),
    ]
}

fn session() -> Session {
    let members =
        USERS.iter().map(|u| Member { id: (*u).into(), name: u.to_uppercase(), chair: *u == "chair" }).collect();
    let items = (0..2).map(|i| Item { id: format!("i{i}"), title: format!("Item {i}") }).collect();
    Session::new(members, items, Quorum::OneThird)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn rules_hold_after_any_sequence(ops in prop::collection::vec(op(), 1..120)) {
        let mut s = session();
        let mut now = 1_000;
        // Per vote: who the test saw voting successfully, and each successful choice.
        let mut cast_ok: Vec<(String, Choice)> = Vec::new();
        let mut votes_seen = 0;
        for op in ops {
            now += 7;
            match op {
                Op::Arrive(u) => { let _ = s.arrive(USERS[u], now); }
                Op::Depart(u) => { let _ = s.depart(USERS[u], now); }
                Op::Request(u) => { let _ = s.request_floor(USERS[u], now); }
                Op::Withdraw(u) => { let _ = s.withdraw(USERS[u], now); }
                Op::Give(u) => { let _ = s.give_floor(USERS[u], now); }
                Op::Take => { let _ = s.take_floor(now); }
                Op::Item(i) => { let _ = s.set_item(&format!("i{i}"), now); }
                Op::RollStart => { let _ = s.start_roll_call(now); }
                Op::Present(u) => { let _ = s.present(USERS[u], now); }
                Op::RollEnd => { let _ = s.end_roll_call(now); }
                Op::Open(secret) => {
                    if s.open_vote(&format!("v{now}"), "i0", secret, now).is_ok() {
                        cast_ok.clear();
                    }
                }
                Op::Cast(u, c) => {
                    let user = USERS[u];
                    let eligible = s.vote().is_some_and(|v| v.eligible.contains(user) && !v.has_voted(user))
                        && s.in_room().contains(user);
                    let result = s.cast(user, Choice::ALL[c]);
                    prop_assert_eq!(result.is_ok(), eligible, "cast by {} accepted iff eligible and not yet voted", user);
                    if result.is_ok() {
                        cast_ok.push((user.to_owned(), Choice::ALL[c]));
                    }
                }
                Op::Close => {
                    if let Ok(r) = s.close_vote(now) {
                        votes_seen += 1;
                        prop_assert_eq!(r.tally.total() as usize, r.voters.len());
                        prop_assert_eq!(r.tally.total() as usize, cast_ok.len());
                        let mut voters: Vec<String> = cast_ok.iter().map(|(u, _)| u.clone()).collect();
                        voters.sort();
                        let before = voters.len();
                        voters.dedup();
                        prop_assert_eq!(before, voters.len(), "nobody votes twice");
                        prop_assert_eq!(&voters, &r.voters);
                        for v in &r.voters {
                            prop_assert!(r.eligible.contains(v), "{} voted without answering the roll call", v);
                        }
                        for choice in Choice::ALL {
                            prop_assert_eq!(r.tally.get(choice) as usize, cast_ok.iter().filter(|(_, c)| *c == choice).count());
                        }
                        if r.secret {
                            prop_assert!(r.by_name.is_empty());
                        } else {
                            let mut expected = cast_ok.clone();
                            expected.sort();
                            prop_assert_eq!(&r.by_name, &expected);
                        }
                    }
                }
            }
            // Floor exclusivity: one holder at most, in the room, never also queued.
            if let Some(holder) = s.floor() {
                prop_assert!(s.in_room().contains(holder));
                prop_assert!(!s.queue().any(|q| q == holder));
            }
            let queue: Vec<&str> = s.queue().collect();
            let mut dedup = queue.clone();
            dedup.sort();
            dedup.dedup();
            prop_assert_eq!(queue.len(), dedup.len(), "nobody twice in the queue");
            if let Some(v) = s.vote() {
                prop_assert_eq!(v.cast_count(), cast_ok.len());
            }
        }
        prop_assert_eq!(s.votes().len(), votes_seen);
        // Speaking time: per-item sums add up to the per-person totals, and to the log's floor time.
        let m = s.minutes(now + 1);
        let per_item: i64 = m.items.iter().flat_map(|i| i.speaking.iter()).map(|t| t.seconds).sum();
        let total: i64 = m.speakers.iter().map(|t| t.seconds).sum();
        let from_log = floor_seconds(s.log(), now + 1);
        prop_assert_eq!(total, from_log);
        prop_assert!(per_item <= total);
        for item in &m.items {
            let speeches: i64 = item.speeches.iter().map(|sp| sp.seconds).sum();
            let speaking: i64 = item.speaking.iter().map(|t| t.seconds).sum();
            prop_assert_eq!(speeches, speaking);
        }
    }
}

/// Floor time straight from the log: every FloorGiven until the next FloorEnded (or `until`).
fn floor_seconds(log: &[Entry], until: i64) -> i64 {
    let mut open: Option<i64> = None;
    let mut total = 0;
    for e in log {
        match e.event {
            Event::FloorGiven { .. } => {
                if let Some(from) = open.replace(e.at) {
                    total += e.at - from;
                }
            }
            Event::FloorEnded { .. } => {
                if let Some(from) = open.take() {
                    total += e.at - from;
                }
            }
            _ => {}
        }
    }
    if let Some(from) = open {
        total += until - from;
    }
    total
}
