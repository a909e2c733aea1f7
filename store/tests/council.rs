//! Council sessions on SQLite and PostgreSQL: sessions, agenda, members, log, open votes by name and
//! secret ballots that keep who voted apart from what was chosen.

mod common;

use common::{Db, NOW, at};
use sportello_store::*;
use sqlx::Row;

scenarios!(session_agenda_members, log_in_order, open_vote_by_name, secret_ballot_tables_hold_no_link);

async fn user(store: &Store, name: &str, role: StaffRole) -> User {
    let new = NewUser { email: format!("{name}@comune.example"), display_name: name.into(), role };
    store.create_user(&new, NOW).await.unwrap()
}

async fn council(store: &Store) -> (CouncilSession, Vec<User>, Vec<CouncilItem>) {
    let chair = user(store, "presidente", StaffRole::Chair).await;
    let mut people = vec![chair.clone()];
    for name in ["anna", "bruno", "carla"] {
        people.push(user(store, name, StaffRole::Councillor).await);
    }
    let new = NewCouncilSession {
        title: "Consiglio comunale".into(),
        body: CouncilBody::Consiglio,
        scheduled_at: at(18, 0),
        chair_id: chair.id.clone(),
        quorum: "majority".into(),
    };
    let session = store.create_council_session(&new, NOW).await.unwrap();
    let ids: Vec<String> = people[1..].iter().map(|u| u.id.clone()).collect();
    store.set_council_members(&session.id, &ids).await.unwrap();
    let items = store
        .set_council_items(&session.id, &[(None, "Bilancio".into()), (None, "Varie ed eventuali".into())])
        .await
        .unwrap();
    (session, people, items)
}

async fn session_agenda_members(db: Db) {
    let store = db.connect().await;
    let (session, people, items) = council(&store).await;
    assert_eq!(session.status, CouncilStatus::Scheduled);
    let mut expected: Vec<String> = people.iter().map(|u| u.id.clone()).collect();
    expected.sort();
    assert_eq!(store.council_members(&session.id).await.unwrap(), expected);
    // The chair stays a member whatever the list says.
    store.set_council_members(&session.id, &[people[1].id.clone()]).await.unwrap();
    assert_eq!(store.council_members(&session.id).await.unwrap().len(), 2);
    assert!(matches!(store.set_council_members(&session.id, &["nobody".into()]).await, Err(StoreError::NotFound)));
    // Reordering keeps ids; a new title gets a new item; a missing one is removed.
    let again = store
        .set_council_items(&session.id, &[(Some(items[1].id.clone()), "Varie".into()), (None, "Mozione".into())])
        .await
        .unwrap();
    assert_eq!(again[0].id, items[1].id);
    assert_eq!(again.iter().map(|i| i.title.as_str()).collect::<Vec<_>>(), ["Varie", "Mozione"]);
    store.set_council_status(&session.id, CouncilStatus::Live).await.unwrap();
    let mut update = NewCouncilSession {
        title: "Giunta".into(),
        body: CouncilBody::Giunta,
        scheduled_at: at(9, 0),
        chair_id: people[2].id.clone(),
        quorum: "at_least:2".into(),
    };
    let updated = store.update_council_session(&session.id, &update).await.unwrap();
    assert_eq!(
        (updated.body, updated.status, updated.quorum.as_str()),
        (CouncilBody::Giunta, CouncilStatus::Live, "at_least:2")
    );
    assert!(store.council_members(&session.id).await.unwrap().contains(&people[2].id));
    update.chair_id = "nobody".into();
    assert!(matches!(store.update_council_session(&session.id, &update).await, Err(StoreError::NotFound)));
    assert_eq!(store.council_sessions().await.unwrap().len(), 1);
}

async fn log_in_order(db: Db) {
    let store = db.connect().await;
    let (session, people, items) = council(&store).await;
    let kinds = ["arrived", "item_started", "floor_given", "floor_ended"];
    for kind in kinds {
        let event = CouncilEvent {
            at: at(18, 1),
            kind: kind.into(),
            user_id: Some(people[1].id.clone()),
            subject: Some(items[0].id.clone()),
        };
        store.add_council_event(&session.id, &event).await.unwrap();
    }
    let log = store.council_events(&session.id).await.unwrap();
    assert_eq!(log.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(), kinds, "same second, insertion order");
}

async fn open_vote_by_name(db: Db) {
    let store = db.connect().await;
    let (session, people, items) = council(&store).await;
    let eligible: Vec<String> = people.iter().map(|u| u.id.clone()).collect();
    let vote = NewCouncilVote {
        id: "v1".into(),
        session_id: session.id.clone(),
        item_id: items[0].id.clone(),
        secret: false,
        opened_at: at(18, 10),
        eligible: eligible.clone(),
    };
    store.open_council_vote(&vote).await.unwrap();
    store.record_open_ballot("v1", &people[1].id, "favourable").await.unwrap();
    store.record_open_ballot("v1", &people[2].id, "contrary").await.unwrap();
    assert!(matches!(store.record_open_ballot("v1", &people[2].id, "favourable").await, Err(StoreError::Conflict(_))));
    assert!(matches!(store.record_open_ballot("v1", &people[3].id, "maybe").await, Err(StoreError::Invalid(_))));
    let counts = Counts { favourable: 1, contrary: 1, abstained: 0 };
    assert_eq!(store.close_council_vote("v1", at(18, 12), counts, "rejected").await.unwrap(), counts);
    let votes = store.council_votes(&session.id).await.unwrap();
    assert_eq!(votes.len(), 1);
    assert_eq!(votes[0].counts, Some(counts));
    assert_eq!(votes[0].by_name.len(), 2);
    assert!(votes[0].by_name.contains(&(people[1].id.clone(), "favourable".into())));
    let mut sorted = eligible;
    sorted.sort();
    let mut got = votes[0].eligible.clone();
    got.sort();
    assert_eq!(got, sorted);
}

async fn secret_ballot_tables_hold_no_link(db: Db) {
    let store = db.connect().await;
    let (session, people, items) = council(&store).await;
    let vote = NewCouncilVote {
        id: "s1".into(),
        session_id: session.id.clone(),
        item_id: items[0].id.clone(),
        secret: true,
        opened_at: at(18, 20),
        eligible: people.iter().map(|u| u.id.clone()).collect(),
    };
    store.open_council_vote(&vote).await.unwrap();
    for (voter, choice) in [(&people[1], "favourable"), (&people[2], "contrary"), (&people[3], "abstained")] {
        store.record_secret_ballot("s1", &voter.id, choice).await.unwrap();
    }
    assert!(matches!(store.record_secret_ballot("s1", &people[1].id, "contrary").await, Err(StoreError::Conflict(_))));
    assert!(store.record_secret_ballot("v-none", &people[1].id, "contrary").await.is_err());
    let filenode = |store: Store| async move {
        let row = sqlx::query("SELECT CAST(pg_relation_filenode('ballot_tally') AS BIGINT) AS f")
            .fetch_one(store.pool())
            .await
            .unwrap();
        row.get::<i64, _>("f")
    };
    let before = match store.backend() {
        Backend::Postgres => Some(filenode(store.clone()).await),
        Backend::Sqlite => None,
    };
    // A second attempt counted nothing.
    let counts = store.close_council_vote("s1", at(18, 25), Counts::default(), "rejected").await.unwrap();
    assert_eq!(counts, Counts { favourable: 1, contrary: 1, abstained: 1 });
    // Closing compacted the history: PostgreSQL rewrote the table (VACUUM FULL), SQLite emptied its WAL.
    match before {
        Some(before) => assert_ne!(filenode(store.clone()).await, before, "ballot_tally was not rewritten"),
        None => {
            let wal: i64 = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").fetch_one(store.pool()).await.unwrap().get(1);
            assert_eq!(wal, 0, "WAL frames left after the close");
        }
    }

    // The two tables, whole: voters without choices, choices without voters.
    let voters = sqlx::query("SELECT * FROM ballot_voters").fetch_all(store.pool()).await.unwrap();
    assert_eq!(voters.len(), 3);
    for row in &voters {
        assert_eq!(row.columns().len(), 2, "vote_id and user_id only");
    }
    let tally = sqlx::query("SELECT * FROM ballot_tally ORDER BY choice").fetch_all(store.pool()).await.unwrap();
    assert_eq!(tally.len(), 3);
    for row in &tally {
        assert_eq!(row.columns().len(), 3, "vote_id, choice, count only");
        assert_eq!(row.get::<i64, _>("count"), 1);
    }
    assert_eq!(
        sqlx::query("SELECT COUNT(*) AS n FROM council_open_ballots")
            .fetch_one(store.pool())
            .await
            .unwrap()
            .get::<i64, _>("n"),
        0
    );
    let votes = store.council_votes(&session.id).await.unwrap();
    assert!(votes[0].by_name.is_empty());
    let mut expected: Vec<String> = people[1..].iter().map(|u| u.id.clone()).collect();
    expected.sort();
    assert_eq!(votes[0].voters, expected);
}
