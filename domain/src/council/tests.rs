//! The session's rules, one scenario each.

use super::*;

fn session() -> Session {
    let members = vec![
        Member { id: "chair".into(), name: "Presidente".into(), chair: true },
        Member { id: "a".into(), name: "Anna".into(), chair: false },
        Member { id: "b".into(), name: "Bruno".into(), chair: false },
        Member { id: "c".into(), name: "Carla".into(), chair: false },
    ];
    let items =
        vec![Item { id: "i1".into(), title: "Bilancio".into() }, Item { id: "i2".into(), title: "Varie".into() }];
    Session::new(members, items, Quorum::Majority)
}

fn all_in(s: &mut Session, now: i64) {
    for u in ["chair", "a", "b", "c"] {
        s.arrive(u, now).unwrap();
    }
}

fn roll_call(s: &mut Session, users: &[&str], now: i64) {
    s.start_roll_call(now).unwrap();
    for u in users {
        s.present(u, now + 1).unwrap();
    }
    s.end_roll_call(now + 2).unwrap();
}

#[test]
fn quorum_rules() {
    assert_eq!(Quorum::Majority.required(4), 3);
    assert_eq!(Quorum::Majority.required(5), 3);
    assert_eq!(Quorum::OneThird.required(7), 3);
    assert_eq!(Quorum::AtLeast(2).required(9), 2);
    for q in [Quorum::Majority, Quorum::OneThird, Quorum::AtLeast(4)] {
        assert_eq!(q.to_text().parse::<Quorum>(), Ok(q));
    }
    assert!("at_least:0".parse::<Quorum>().is_err());
    assert!("most".parse::<Quorum>().is_err());
}

#[test]
fn the_floor_is_exclusive_and_the_queue_is_fifo() {
    let mut s = session();
    all_in(&mut s, 0);
    s.request_floor("a", 1).unwrap();
    s.request_floor("b", 2).unwrap();
    assert_eq!(s.request_floor("a", 3), Err(CouncilError::AlreadyRequested));
    assert_eq!(s.queue().collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(s.give_floor("a", 10), Ok(None));
    assert_eq!(s.floor(), Some("a"));
    assert_eq!(s.queue().collect::<Vec<_>>(), ["b"]);
    assert!(s.may_speak("a") && s.may_speak("chair") && !s.may_speak("b"));
    assert_eq!(s.request_floor("a", 11), Err(CouncilError::AlreadyRequested));
    assert_eq!(s.give_floor("b", 40), Ok(Some("a".into())));
    assert!(!s.may_speak("a"));
    assert_eq!(s.take_floor(50), Ok("b".into()));
    assert_eq!(s.take_floor(51), Err(CouncilError::NoFloor));
    assert_eq!(s.withdraw("c", 52), Err(CouncilError::NotQueued));
    assert_eq!(s.request_floor("zz", 53), Err(CouncilError::NotMember));
}

#[test]
fn speaking_time_per_person_and_item() {
    let mut s = session();
    all_in(&mut s, 0);
    s.set_item("i1", 100).unwrap();
    s.give_floor("a", 110).unwrap();
    s.give_floor("b", 170).unwrap(); // a: 60 s
    s.set_item("i2", 200).unwrap(); // b: 30 s, the item change ends the speech
    s.give_floor("a", 210).unwrap();
    s.depart("a", 230).unwrap(); // a: 20 s on i2
    let m = s.minutes(300);
    let i1 = &m.items[0];
    assert_eq!((i1.started_at, i1.ended_at), (Some(100), Some(200)));
    assert_eq!(i1.speaking.iter().map(|t| (t.user.as_str(), t.seconds)).collect::<Vec<_>>(), [("a", 60), ("b", 30)]);
    let i2 = &m.items[1];
    assert_eq!((i2.started_at, i2.ended_at), (Some(200), Some(300)));
    assert_eq!(i2.speeches.len(), 1);
    assert_eq!(m.speakers.iter().map(|t| (t.user.as_str(), t.seconds)).collect::<Vec<_>>(), [("a", 80), ("b", 30)]);
    assert_eq!(m.attendance[1].departures, [230]);
}

#[test]
fn roll_call_quorum_and_late_arrival() {
    let mut s = session();
    s.arrive("chair", 0).unwrap();
    s.arrive("a", 0).unwrap();
    s.start_roll_call(10).unwrap();
    s.present("a", 11).unwrap();
    assert_eq!(s.present("c", 11), Err(CouncilError::NotInRoom));
    let call = s.end_roll_call(12).unwrap().clone();
    assert_eq!(call.present.iter().map(String::as_str).collect::<Vec<_>>(), ["a", "chair"]);
    assert!(!call.quorum_reached(), "2 of 4 is no majority");
    assert_eq!(s.open_vote("v1", "i1", false, 13).unwrap_err(), CouncilError::NoQuorum);
    s.arrive("b", 20).unwrap();
    roll_call(&mut s, &["a", "b"], 30);
    assert!(s.quorum_reached());
    let m = s.minutes(40);
    let b = m.attendance.iter().find(|a| a.user == "b").unwrap();
    assert!(b.late);
    assert_eq!(b.roll_calls_present, 1);
    let c = m.attendance.iter().find(|a| a.user == "c").unwrap();
    assert!(c.absent && !c.late);
    assert_eq!(m.roll_calls[0].absent, ["b", "c"]);
}

#[test]
fn open_vote_by_name() {
    let mut s = session();
    all_in(&mut s, 0);
    assert_eq!(s.open_vote("v1", "i1", false, 1).unwrap_err(), CouncilError::RollCallRequired);
    roll_call(&mut s, &["a", "b"], 10);
    s.open_vote("v1", "i1", false, 20).unwrap();
    assert_eq!(s.cast("c", Choice::Favourable), Err(CouncilError::NotEligible), "c did not answer the roll call");
    s.cast("a", Choice::Favourable).unwrap();
    assert_eq!(s.cast("a", Choice::Contrary), Err(CouncilError::AlreadyVoted));
    s.cast("b", Choice::Contrary).unwrap();
    s.cast("chair", Choice::Favourable).unwrap();
    let r = s.close_vote(30).unwrap().clone();
    assert_eq!(r.tally, Tally { favourable: 2, contrary: 1, abstained: 0 });
    assert_eq!(r.outcome, Outcome::Approved);
    assert_eq!(
        r.by_name,
        [("a".into(), Choice::Favourable), ("b".into(), Choice::Contrary), ("chair".into(), Choice::Favourable)]
    );
    assert_eq!(s.open_vote("v2", "i1", false, 31).unwrap_err(), CouncilError::RollCallRequired, "a roll call per vote");
    assert_eq!(s.cast("a", Choice::Favourable), Err(CouncilError::NoVote));
}

#[test]
fn secret_ballot_keeps_no_link() {
    let mut s = session();
    all_in(&mut s, 0);
    roll_call(&mut s, &["a", "b", "c"], 10);
    s.open_vote("v1", "i1", true, 20).unwrap();
    s.cast("c", Choice::Abstained).unwrap();
    s.cast("a", Choice::Favourable).unwrap();
    s.cast("b", Choice::Contrary).unwrap();
    let r = s.close_vote(30).unwrap().clone();
    assert!(r.by_name.is_empty());
    assert_eq!(r.voters, ["a", "b", "c"], "sorted by id, not in the order of voting");
    assert_eq!(r.tally, Tally { favourable: 1, contrary: 1, abstained: 1 });
    assert_eq!(r.outcome, Outcome::Rejected, "a tie is not a majority");
    let dump = format!("{:?} {:?}", s.log(), s.votes());
    assert!(!dump.contains("Favourable") && !dump.contains("Contrary") && !dump.contains("Abstained"), "{dump}");
    assert_eq!(format!("{:?}", Sealed(Choice::Favourable)), "<sealed>");
}

#[test]
fn a_departed_councillor_cannot_vote_and_items_are_checked() {
    let mut s = session();
    all_in(&mut s, 0);
    roll_call(&mut s, &["a", "b", "c"], 10);
    s.open_vote("v1", "i1", false, 20).unwrap();
    assert_eq!(s.set_item("i2", 21), Err(CouncilError::VoteOpen));
    assert_eq!(s.start_roll_call(21), Err(CouncilError::VoteOpen));
    s.depart("c", 22).unwrap();
    assert_eq!(s.cast("c", Choice::Favourable), Err(CouncilError::NotInRoom));
    s.close_vote(23).unwrap();
    assert_eq!(s.set_item("nope", 24), Err(CouncilError::UnknownItem));
}

#[test]
fn a_session_resumes_from_its_log_and_closed_votes() {
    let mut s = session();
    all_in(&mut s, 0);
    s.set_item("i1", 10).unwrap();
    roll_call(&mut s, &["a", "b", "c"], 20);
    s.open_vote("v1", "i1", false, 30).unwrap();
    for u in ["a", "b", "c"] {
        s.cast(u, Choice::Favourable).unwrap();
    }
    s.close_vote(40).unwrap();
    s.set_item("i2", 50).unwrap();
    s.request_floor("a", 55).unwrap();
    s.give_floor("a", 60).unwrap();
    for u in ["chair", "a", "b", "c"] {
        s.depart(u, 70).unwrap();
    }
    let (log, votes) = (s.log().to_vec(), s.votes().to_vec());

    let mut resumed = session();
    resumed.resume(log.clone(), votes);
    assert_eq!(resumed.current_item(), Some("i2"), "the item under discussion carries on");
    assert_eq!(resumed.votes().len(), 1);
    assert_eq!(resumed.floor(), None);
    assert!(resumed.in_room().is_empty());
    assert_eq!(resumed.log().len(), log.len(), "new entries follow the stored ones");
    resumed.arrive("chair", 100).unwrap();
    assert_eq!(resumed.log().len(), log.len() + 1);
    // A vote needs a fresh roll call after the break.
    assert_eq!(resumed.open_vote("v2", "i2", false, 110).unwrap_err(), CouncilError::RollCallRequired);
    // An item that ended stays ended.
    let mut ended = session();
    let mut with_end = log;
    with_end.push(Entry { at: 80, event: Event::ItemEnded { item: "i2".into() } });
    ended.resume(with_end, Vec::new());
    assert_eq!(ended.current_item(), None);
}
