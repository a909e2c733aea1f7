//! Booking, the double-booking guard, status changes and rescheduling, on SQLite and PostgreSQL.

mod common;

use common::{Db, NOW, at, booking, claims, count, fixture, granules};
use sportello_store::*;

scenarios!(
    happy_path_is_audited,
    overlaps_are_refused,
    duplicate_code_is_a_conflict,
    cancel_frees_the_slot,
    invalid_transitions,
    reschedule_onto_taken_slot_changes_nothing,
    reschedule_overlapping_its_own_slot,
    queries_by_office_and_official,
    hundred_concurrent_bookings_one_winner,
    concurrent_moves_keep_claims_consistent,
    absences_and_busy_times_are_rechecked_in_the_booking_transaction,
    closing_early_frees_the_time_still_to_come,
);

/// Availability counts confirmed appointments only; a closed one must hold its claims only for the
/// time already passed, or its slot is offered and then refused as taken (a phantom slot).
async fn closing_early_frees_the_time_still_to_come(db: Db) {
    let store = db.connect().await;
    let fx = fixture(&store).await;
    // Closed before it began (the official met the citizen earlier, or marked a no-show).
    let early = store.book(&booking(&fx, "EARLY1", &fx.anna, at(10, 0), at(10, 30)), NOW).await.unwrap();
    store.set_status(&early.id, &[Status::Confirmed], Status::Completed, "user:x", "", at(9, 0)).await.unwrap();
    assert!(claims(&store, &fx.anna.id).await.is_empty(), "the whole slot is free again");
    let again = store.book(&booking(&fx, "AGAIN1", &fx.anna, at(10, 0), at(10, 30)), at(9, 1)).await.unwrap();
    assert_eq!(again.status, Status::Confirmed);
    // Closed half-way: what passed stays claimed (granule holding `now` included), the rest is free.
    store.set_status(&again.id, &[Status::Confirmed], Status::NoShow, "system", "", at(10, 12)).await.unwrap();
    let kept: Vec<(String, i64)> = granules(at(10, 0), at(10, 15)).into_iter().map(|g| (again.id.clone(), g)).collect();
    assert_eq!(claims(&store, &fx.anna.id).await, kept);
    let rest = store.book(&booking(&fx, "REST01", &fx.anna, at(10, 15), at(10, 30)), at(10, 13)).await.unwrap();
    assert_eq!(rest.status, Status::Confirmed);
    let overlap = store.book(&booking(&fx, "PAST01", &fx.anna, at(10, 10), at(10, 20)), at(10, 13)).await;
    assert!(matches!(overlap, Err(StoreError::SlotTaken)), "{overlap:?}");
}

/// The offer is computed before the transaction; an absence or an imported busy time saved in
/// between must still stop the booking (and a move onto it).
async fn absences_and_busy_times_are_rechecked_in_the_booking_transaction(db: Db) {
    let store = db.connect().await;
    let fx = fixture(&store).await;
    let absence = NewAbsence {
        user_id: fx.anna.id.clone(),
        kind: AbsenceKind::Training,
        starts_at: at(10, 15),
        ends_at: at(11, 0),
        all_day: false,
        note: String::new(),
    };
    store.create_absence(&absence, NOW).await.unwrap();
    let over_absence = booking(&fx, "ABS001", &fx.anna, at(10, 0), at(10, 30));
    assert!(matches!(store.book(&over_absence, NOW).await, Err(StoreError::SlotTaken)));
    let source =
        NewSource { user_id: fx.anna.id.clone(), kind: SourceKind::Upload, label: "Outlook".into(), url: None };
    store.create_source(&source, &[(at(12, 0), at(12, 30))], NOW).await.unwrap();
    let over_busy = booking(&fx, "BUS001", &fx.anna, at(12, 15), at(12, 45));
    assert!(matches!(store.book(&over_busy, NOW).await, Err(StoreError::SlotTaken)));
    assert_eq!(count(&store, "appointments").await, 0, "nothing stored");
    assert!(claims(&store, &fx.anna.id).await.is_empty(), "no claim left behind");
    // Free time still books, and cannot be moved onto the busy time.
    let free = store.book(&booking(&fx, "FREE01", &fx.anna, at(9, 0), at(9, 30)), NOW).await.unwrap();
    let onto_busy =
        Reschedule { starts_at: at(12, 0), ends_at: at(12, 30), official_id: fx.anna.id.clone(), mode: Mode::Video };
    assert!(matches!(store.reschedule(&free.id, &onto_busy, "citizen", NOW).await, Err(StoreError::SlotTaken)));
    assert_eq!(store.appointment(&free.id).await.unwrap().map(|a| a.starts_at), Some(at(9, 0)));
    // Another official is not affected by Anna's calendar.
    store.book(&booking(&fx, "BRU001", &fx.bruno, at(10, 0), at(10, 30)), NOW).await.unwrap();
}

async fn happy_path_is_audited(db: Db) {
    let store = db.connect().await;
    let fx = fixture(&store).await;
    let new = booking(&fx, "ABC123", &fx.anna, at(10, 0), at(10, 30));
    let booked = store.book(&new, NOW).await.unwrap();
    assert_eq!(booked.status, Status::Confirmed);
    assert_eq!((booked.created_at, booked.updated_at), (NOW, NOW));
    assert_eq!(store.appointment(&booked.id).await.unwrap().as_ref(), Some(&booked));
    assert_eq!(store.appointment_by_code("ABC123").await.unwrap().as_ref(), Some(&booked));
    assert_eq!(store.appointment_by_code("ZZZ").await.unwrap(), None);
    let expected: Vec<(String, i64)> =
        granules(at(10, 0), at(10, 30)).into_iter().map(|g| (booked.id.clone(), g)).collect();
    assert_eq!(expected.len(), 6);
    assert_eq!(claims(&store, &fx.anna.id).await, expected);
    let audit = store.audit(&booked.id).await.unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!((audit[0].at, audit[0].actor.as_str(), audit[0].action.as_str()), (NOW, "citizen", "booked"));
    assert!(matches!(
        store.book(&booking(&fx, "EMPTY1", &fx.anna, at(11, 0), at(11, 0)), NOW).await,
        Err(StoreError::Invalid(_))
    ));
}

async fn overlaps_are_refused(db: Db) {
    let store = db.connect().await;
    let fx = fixture(&store).await;
    store.book(&booking(&fx, "A1", &fx.anna, at(10, 0), at(10, 30)), NOW).await.unwrap();
    for (code, from, to) in [
        ("SAME", at(10, 0), at(10, 30)),
        ("PART", at(10, 15), at(10, 45)),
        ("BEFORE", at(9, 45), at(10, 5)),
        ("INSIDE", at(10, 10), at(10, 15)),
        ("AROUND", at(9, 0), at(11, 0)),
    ] {
        let result = store.book(&booking(&fx, code, &fx.anna, from, to), NOW).await;
        assert!(matches!(result, Err(StoreError::SlotTaken)), "{code}: {result:?}");
        assert_eq!(store.appointment_by_code(code).await.unwrap(), None, "{code} rolled back");
    }
    store.book(&booking(&fx, "ADJ", &fx.anna, at(10, 30), at(11, 0)), NOW).await.unwrap();
    store.book(&booking(&fx, "ADJ2", &fx.anna, at(9, 30), at(10, 0)), NOW).await.unwrap();
    store.book(&booking(&fx, "BRUNO", &fx.bruno, at(10, 0), at(10, 30)), NOW).await.unwrap();
    assert_eq!(count(&store, "appointments").await, 4);
    assert_eq!(count(&store, "slot_claims").await, 6 * 4);
    assert_eq!(count(&store, "appointment_events").await, 4, "refused bookings leave no audit rows");
}

async fn duplicate_code_is_a_conflict(db: Db) {
    let store = db.connect().await;
    let fx = fixture(&store).await;
    store.book(&booking(&fx, "CODE1", &fx.anna, at(10, 0), at(10, 30)), NOW).await.unwrap();
    let again = store.book(&booking(&fx, "CODE1", &fx.bruno, at(12, 0), at(12, 30)), NOW).await;
    assert!(matches!(again, Err(StoreError::Conflict("code"))), "{again:?}");
    assert!(claims(&store, &fx.bruno.id).await.is_empty());
}

async fn cancel_frees_the_slot(db: Db) {
    let store = db.connect().await;
    let fx = fixture(&store).await;
    let first = store.book(&booking(&fx, "C1", &fx.anna, at(10, 0), at(10, 30)), NOW).await.unwrap();
    let cancelled = store
        .set_status(&first.id, &[Status::Confirmed], Status::Cancelled, "citizen", "changed my mind", NOW + 10)
        .await
        .unwrap();
    assert_eq!(cancelled.status, Status::Cancelled);
    assert_eq!(cancelled.updated_at, NOW + 10);
    assert_eq!(store.appointment(&first.id).await.unwrap(), Some(cancelled));
    assert!(claims(&store, &fx.anna.id).await.is_empty());
    let second = store.book(&booking(&fx, "C2", &fx.anna, at(10, 0), at(10, 30)), NOW + 20).await.unwrap();
    assert_eq!(claims(&store, &fx.anna.id).await.len(), 6);
    let audit = store.audit(&first.id).await.unwrap();
    let actions: Vec<&str> = audit.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["booked", "cancelled"]);
    assert_eq!((audit[1].actor.as_str(), audit[1].detail.as_str()), ("citizen", "changed my mind"));

    // Restoring the cancelled one must take the slot again, which is now the other's.
    let restore = store.set_status(&first.id, &[Status::Cancelled], Status::Confirmed, "user:x", "", NOW + 30).await;
    assert!(matches!(restore, Err(StoreError::SlotTaken)), "{restore:?}");
    assert_eq!(store.appointment(&first.id).await.unwrap().unwrap().status, Status::Cancelled);
    store.set_status(&second.id, &[Status::Confirmed], Status::Cancelled, "citizen", "", NOW + 40).await.unwrap();
    store.set_status(&first.id, &[Status::Cancelled], Status::Confirmed, "user:x", "", NOW + 50).await.unwrap();
    assert!(claims(&store, &fx.anna.id).await.iter().all(|(id, _)| *id == first.id));
}

async fn invalid_transitions(db: Db) {
    let store = db.connect().await;
    let fx = fixture(&store).await;
    let a = store.book(&booking(&fx, "T1", &fx.anna, at(10, 0), at(10, 30)), NOW).await.unwrap();
    store.set_status(&a.id, &[Status::Confirmed], Status::Cancelled, "citizen", "", NOW).await.unwrap();
    let bad = store.set_status(&a.id, &[Status::Confirmed], Status::Completed, "system", "", NOW + 1).await;
    assert!(
        matches!(bad, Err(StoreError::InvalidTransition { from: Status::Cancelled, to: Status::Completed })),
        "{bad:?}"
    );
    let row = store.appointment(&a.id).await.unwrap().unwrap();
    assert_eq!((row.status, row.updated_at), (Status::Cancelled, NOW), "unchanged");
    assert_eq!(store.audit(&a.id).await.unwrap().len(), 2);
    assert!(matches!(
        store.set_status("nope", &[Status::Confirmed], Status::Completed, "system", "", NOW).await,
        Err(StoreError::NotFound)
    ));
    let moved =
        Reschedule { starts_at: at(11, 0), ends_at: at(11, 30), official_id: fx.anna.id.clone(), mode: Mode::Video };
    assert!(matches!(
        store.reschedule(&a.id, &moved, "citizen", NOW).await,
        Err(StoreError::InvalidTransition { from: Status::Cancelled, .. })
    ));

    let b = store.book(&booking(&fx, "T2", &fx.anna, at(12, 0), at(12, 30)), NOW).await.unwrap();
    let done = store.set_status(&b.id, &[Status::Confirmed], Status::NoShow, "system", "", NOW + 5).await.unwrap();
    assert_eq!(done.status, Status::NoShow);
    let actions: Vec<String> = store.audit(&b.id).await.unwrap().into_iter().map(|e| e.action).collect();
    assert_eq!(actions, ["booked", "no_show"]);
}

async fn reschedule_onto_taken_slot_changes_nothing(db: Db) {
    let store = db.connect().await;
    let fx = fixture(&store).await;
    let mine = store.book(&booking(&fx, "R1", &fx.anna, at(10, 0), at(10, 30)), NOW).await.unwrap();
    let other = store.book(&booking(&fx, "R2", &fx.bruno, at(11, 0), at(11, 30)), NOW).await.unwrap();
    store.mark_reminded(&mine.id, NOW + 1).await.unwrap();
    let before = store.appointment(&mine.id).await.unwrap().unwrap();
    let onto = Reschedule {
        starts_at: at(11, 15),
        ends_at: at(11, 45),
        official_id: fx.bruno.id.clone(),
        mode: Mode::InPerson,
    };
    assert!(matches!(store.reschedule(&mine.id, &onto, "citizen", NOW + 2).await, Err(StoreError::SlotTaken)));
    assert_eq!(store.appointment(&mine.id).await.unwrap(), Some(before.clone()));
    let own: Vec<(String, i64)> = granules(at(10, 0), at(10, 30)).into_iter().map(|g| (mine.id.clone(), g)).collect();
    assert_eq!(claims(&store, &fx.anna.id).await, own, "old claims restored");
    assert!(claims(&store, &fx.bruno.id).await.iter().all(|(id, _)| *id == other.id));
    assert_eq!(store.audit(&mine.id).await.unwrap().len(), 2, "booked + reminded only");

    // To a free slot of the other official.
    let free = Reschedule {
        starts_at: at(12, 0),
        ends_at: at(12, 30),
        official_id: fx.bruno.id.clone(),
        mode: Mode::InPerson,
    };
    let moved = store.reschedule(&mine.id, &free, "user:anna", NOW + 3).await.unwrap();
    assert_eq!(
        (moved.starts_at, moved.ends_at, moved.official_id.as_str()),
        (at(12, 0), at(12, 30), fx.bruno.id.as_str())
    );
    assert_eq!(moved.mode, Mode::InPerson);
    assert_eq!(moved.reminder_sent_at, None, "reminded again for the new time");
    assert_eq!(store.appointment(&mine.id).await.unwrap(), Some(moved));
    assert!(claims(&store, &fx.anna.id).await.is_empty());
    assert_eq!(claims(&store, &fx.bruno.id).await.len(), 12);
    let audit = store.audit(&mine.id).await.unwrap();
    assert_eq!(audit.last().map(|e| (e.action.as_str(), e.actor.as_str())), Some(("rescheduled", "user:anna")));
}

async fn reschedule_overlapping_its_own_slot(db: Db) {
    let store = db.connect().await;
    let fx = fixture(&store).await;
    let a = store.book(&booking(&fx, "O1", &fx.anna, at(10, 0), at(10, 30)), NOW).await.unwrap();
    let later =
        Reschedule { starts_at: at(10, 15), ends_at: at(10, 45), official_id: fx.anna.id.clone(), mode: Mode::Video };
    let moved = store.reschedule(&a.id, &later, "citizen", NOW + 1).await.unwrap();
    assert_eq!((moved.starts_at, moved.ends_at), (at(10, 15), at(10, 45)));
    let expected: Vec<(String, i64)> =
        granules(at(10, 15), at(10, 45)).into_iter().map(|g| (a.id.clone(), g)).collect();
    assert_eq!(claims(&store, &fx.anna.id).await, expected);
    // The freed 10:00–10:15 is bookable again, 10:30 is not.
    store.book(&booking(&fx, "O2", &fx.anna, at(10, 0), at(10, 15)), NOW).await.unwrap();
    assert!(matches!(
        store.book(&booking(&fx, "O3", &fx.anna, at(10, 30), at(10, 35)), NOW).await,
        Err(StoreError::SlotTaken)
    ));
}

async fn queries_by_office_and_official(db: Db) {
    let store = db.connect().await;
    let fx = fixture(&store).await;
    let a = store.book(&booking(&fx, "Q1", &fx.anna, at(9, 0), at(9, 30)), NOW).await.unwrap();
    let b = store.book(&booking(&fx, "Q2", &fx.bruno, at(10, 0), at(10, 30)), NOW).await.unwrap();
    let c = store.book(&booking(&fx, "Q3", &fx.anna, at(14, 0), at(14, 30)), NOW).await.unwrap();
    store.set_status(&c.id, &[Status::Confirmed], Status::Cancelled, "citizen", "", NOW).await.unwrap();
    let ids = |v: Vec<Appointment>| v.into_iter().map(|a| a.code).collect::<Vec<_>>();
    let office = [fx.office.id.clone()];
    assert_eq!(ids(store.appointments_of_offices(&office, at(0, 0), at(23, 0)).await.unwrap()), ["Q1", "Q2", "Q3"]);
    // [from, to) overlap: touching ends do not count.
    assert_eq!(ids(store.appointments_of_offices(&office, at(9, 30), at(10, 0)).await.unwrap()), Vec::<String>::new());
    assert_eq!(ids(store.appointments_of_offices(&office, at(9, 29), at(10, 1)).await.unwrap()), ["Q1", "Q2"]);
    assert!(store.appointments_of_offices(&["other".into()], at(0, 0), at(23, 0)).await.unwrap().is_empty());
    assert!(store.appointments_of_offices(&[], at(0, 0), at(23, 0)).await.unwrap().is_empty());
    let both = [fx.anna.id.clone(), fx.bruno.id.clone()];
    assert_eq!(ids(store.busy_of_officials(&both, at(0, 0), at(23, 0)).await.unwrap()), ["Q1", "Q2"], "not cancelled");
    assert_eq!(ids(store.busy_of_officials(&both[..1], at(0, 0), at(23, 0)).await.unwrap()), ["Q1"]);
    let _ = (a, b);
}

async fn hundred_concurrent_bookings_one_winner(db: Db) {
    let store = db.connect().await;
    let fx = std::sync::Arc::new(fixture(&store).await);
    let started = std::time::Instant::now();
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let (store, fx) = (store.clone(), fx.clone());
            tokio::spawn(async move {
                store.book(&booking(&fx, &format!("RACE{i:03}"), &fx.anna, at(10, 0), at(10, 30)), NOW).await
            })
        })
        .collect();
    let (mut won, mut taken) = (Vec::new(), 0);
    for task in tasks {
        match task.await.unwrap() {
            Ok(a) => won.push(a),
            Err(StoreError::SlotTaken) => taken += 1,
            Err(other) => panic!("unexpected error: {other:?}"),
        }
    }
    eprintln!("{:?}: 100 concurrent bookings in {:?}", store.backend(), started.elapsed());
    assert_eq!((won.len(), taken), (1, 99));
    assert_eq!(count(&store, "appointments").await, 1);
    assert_eq!(count(&store, "appointment_events").await, 1);
    let expected: Vec<(String, i64)> =
        granules(at(10, 0), at(10, 30)).into_iter().map(|g| (won[0].id.clone(), g)).collect();
    assert_eq!(claims(&store, &fx.anna.id).await, expected);
    assert_eq!(count(&store, "slot_claims").await, 6);
}

/// Many concurrent reschedules among overlapping slots (swaps that can deadlock on PostgreSQL and
/// contend on SQLite): each ends Ok or SlotTaken, and the claims always match the appointments.
async fn concurrent_moves_keep_claims_consistent(db: Db) {
    let store = db.connect().await;
    let fx = std::sync::Arc::new(fixture(&store).await);
    let slot = |i: i64| (at(9, 0) + i * 1800, at(9, 30) + i * 1800);
    let mut ids = Vec::new();
    for i in 0..6 {
        let (from, to) = slot(i);
        ids.push(store.book(&booking(&fx, &format!("M{i}"), &fx.anna, from, to), NOW).await.unwrap().id);
    }
    let tasks: Vec<_> = (0..48i64)
        .map(|k| {
            let (store, fx, id) = (store.clone(), fx.clone(), ids[(k % 6) as usize].clone());
            // Targets overlap other appointments' slots and straddle two of them.
            let (from, to) = (slot((k * 5) % 8).0 + (k % 2) * 900, slot((k * 5) % 8).1 + (k % 2) * 900);
            tokio::spawn(async move {
                let to =
                    Reschedule { starts_at: from, ends_at: to, official_id: fx.anna.id.clone(), mode: Mode::Video };
                store.reschedule(&id, &to, "citizen", NOW + k).await
            })
        })
        .collect();
    let mut moved = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => moved += 1,
            Err(StoreError::SlotTaken) => {}
            Err(other) => panic!("unexpected error: {other:?}"),
        }
    }
    eprintln!("{:?}: {moved} of 48 concurrent moves succeeded", store.backend());
    let mut expected = Vec::new();
    for id in &ids {
        let a = store.appointment(id).await.unwrap().unwrap();
        expected.extend(granules(a.starts_at, a.ends_at).into_iter().map(|g| (a.id.clone(), g)));
    }
    expected.sort_by_key(|(_, g)| *g);
    assert_eq!(claims(&store, &fx.anna.id).await, expected);
    let audited: usize = {
        let mut n = 0;
        for id in &ids {
            n += store.audit(id).await.unwrap().iter().filter(|e| e.action == "rescheduled").count();
        }
        n
    };
    assert_eq!(audited, moved, "one audit row per successful move");
}
