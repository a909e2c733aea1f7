//! What survives a restart (issue 14), on SQLite and PostgreSQL: room admissions and the booking
//! confirmations still to send.

mod common;

use common::{Db, NOW, at, booking, fixture};
use sportello_store::*;

scenarios!(admissions_are_kept_until_the_holder_leaves, unsent_confirmations_wait_for_their_mark);

async fn admissions_are_kept_until_the_holder_leaves(db: Db) {
    let store = db.connect().await;
    assert!(!store.is_admitted("appt-1", "citizen-1").await.unwrap());
    store.record_admission("appt-1", "citizen-1", 100).await.unwrap();
    store.record_admission("appt-1", "citizen-1", 200).await.unwrap(); // again: no error
    store.record_admission("vo-u1", "guest", 300).await.unwrap();
    assert!(store.is_admitted("appt-1", "citizen-1").await.unwrap());
    assert!(!store.is_admitted("appt-2", "citizen-1").await.unwrap(), "per room");
    store.forget_admission("appt-1", "citizen-1").await.unwrap();
    assert!(!store.is_admitted("appt-1", "citizen-1").await.unwrap());
    store.forget_admission("appt-1", "citizen-1").await.unwrap(); // already gone: no error
    // The sweep takes the old ones only.
    store.record_admission("appt-1", "citizen-1", 100).await.unwrap();
    assert_eq!(store.forget_admissions_before(200).await.unwrap(), 1);
    assert!(store.is_admitted("vo-u1", "guest").await.unwrap());
}

async fn unsent_confirmations_wait_for_their_mark(db: Db) {
    let store = db.connect().await;
    let fx = fixture(&store).await;
    let codes = |v: Vec<Appointment>| v.into_iter().map(|a| a.code).collect::<Vec<_>>();
    let sent = store.book(&booking(&fx, "C1", &fx.anna, at(10, 0), at(10, 30)), NOW).await.unwrap();
    store.book(&booking(&fx, "C2", &fx.anna, at(11, 0), at(11, 30)), NOW).await.unwrap();
    let cancelled = store.book(&booking(&fx, "C3", &fx.bruno, at(10, 0), at(10, 30)), NOW).await.unwrap();
    store.set_status(&cancelled.id, &[Status::Confirmed], Status::Cancelled, "citizen", "", NOW).await.unwrap();
    store.mark_confirmation_sent(&sent.id, NOW).await.unwrap();
    // Booked at NOW: not yet before NOW - 1 (its request may still be sending it).
    assert!(store.unsent_confirmations(NOW - 1, NOW).await.unwrap().is_empty());
    assert_eq!(codes(store.unsent_confirmations(NOW, NOW).await.unwrap()), ["C2"]);
    // Once it started, a confirmation is no use.
    assert!(store.unsent_confirmations(NOW, at(11, 0)).await.unwrap().is_empty());
}
