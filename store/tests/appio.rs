//! App IO's rows (`0010_appio.sql`) on SQLite and PostgreSQL: the citizen's choice with its first
//! message, the outbox's claims and outcomes, opting out, councillors' codes, retention.

mod common;

use common::{Db, NOW, at, booking, fixture};
use sportello_store::*;

scenarios!(
    choosing_app_io_stores_the_code_with_the_first_message,
    claims_lease_and_outcomes_keep_only_the_masked_code,
    opting_out_withdraws_what_is_queued,
    a_cancellation_withdraws_what_its_appointment_has_queued,
    councillors_fiscal_codes,
    retention_forgets_codes_then_rows
);

const CODE: &str = "RSSMRA85T10A562S";
const MASKED: &str = "RSSMRA*********S";

fn message(appointment_id: &str, kind: AppioKind) -> NewAppioMessage {
    NewAppioMessage {
        appointment_id: Some(appointment_id.to_owned()),
        council_session_id: None,
        user_id: None,
        kind,
        fiscal_code: CODE.into(),
        subject: "Appuntamento confermato".into(),
        markdown: "x".repeat(100),
        due_date: Some(at(10, 0)),
    }
}

async fn booked(store: &Store) -> Appointment {
    let fx = fixture(store).await;
    store.book(&booking(&fx, "ABCD-2345", &fx.anna, at(10, 0), at(10, 30)), NOW).await.unwrap()
}

async fn choosing_app_io_stores_the_code_with_the_first_message(db: Db) {
    let store = db.connect().await;
    let appt = booked(&store).await;
    assert_eq!(store.appointment_appio_fiscal_code(&appt.id).await.unwrap(), None, "nothing without the choice");
    let first = store.choose_appio(&appt.id, &message(&appt.id, AppioKind::Booked), NOW).await.unwrap();
    assert_eq!(store.appointment_appio_fiscal_code(&appt.id).await.unwrap().as_deref(), Some(CODE));
    assert_eq!((first.status, first.attempts, first.next_attempt_at), (AppioStatus::Queued, 0, Some(NOW)));
    assert_eq!((first.kind, first.fiscal_code.as_str(), first.due_date), (AppioKind::Booked, CODE, Some(at(10, 0))));
    // An unknown appointment: neither the code nor the message.
    let orphan = store.choose_appio("nope", &message("nope", AppioKind::Booked), NOW).await;
    assert!(matches!(orphan, Err(StoreError::NotFound)), "{orphan:?}");
    assert!(matches!(store.appointment_appio_fiscal_code("nope").await, Err(StoreError::NotFound)));
    assert_eq!(store.recent_appio_messages(10).await.unwrap().len(), 1);
}

async fn claims_lease_and_outcomes_keep_only_the_masked_code(db: Db) {
    let store = db.connect().await;
    let fx = fixture(&store).await;
    let appt = store.book(&booking(&fx, "ABCD-2345", &fx.anna, at(10, 0), at(10, 30)), NOW).await.unwrap();
    let other = store.book(&booking(&fx, "BCDF-2345", &fx.bruno, at(10, 0), at(10, 30)), NOW).await.unwrap();
    let a = store.choose_appio(&appt.id, &message(&appt.id, AppioKind::Booked), NOW).await.unwrap();
    let b = store.enqueue_appio_message(&message(&appt.id, AppioKind::Moved), NOW + 1).await.unwrap();
    let c = store.enqueue_appio_message(&message(&appt.id, AppioKind::Reminder), NOW + 2).await.unwrap();
    let d = store.choose_appio(&other.id, &message(&other.id, AppioKind::Booked), NOW + 3).await.unwrap();

    assert!(store.claim_due_appio_messages(NOW - 1, 60, 10).await.unwrap().is_empty(), "not due yet");
    let due = store.claim_due_appio_messages(NOW + 5, 60, 10).await.unwrap();
    assert_eq!(
        due.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(),
        [&a.id, &d.id],
        "an appointment's messages one at a time, in order; another appointment's alongside"
    );
    store.record_appio_sent(&d.id, 1, "io-d", NOW + 6).await.unwrap();
    assert!(store.claim_due_appio_messages(NOW + 5, 60, 10).await.unwrap().is_empty(), "claimed: leased");
    store.record_appio_sent(&a.id, 1, "01BX9NSMKVXXS5PSP2FATZMYYY", NOW + 6).await.unwrap();

    let due = store.claim_due_appio_messages(NOW + 6, 60, 10).await.unwrap();
    assert_eq!(due.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(), [&b.id]);
    store.record_appio_refused(&b.id, 1, "not on IO", NOW + 6).await.unwrap();
    let due = store.claim_due_appio_messages(NOW + 6, 60, 10).await.unwrap();
    assert_eq!(due.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(), [&c.id]);
    store.record_appio_retry(&c.id, 1, "HTTP 503", NOW + 30, NOW + 6).await.unwrap();
    assert!(store.claim_due_appio_messages(NOW + 29, 60, 10).await.unwrap().is_empty(), "waits for its retry");
    let again = store.claim_due_appio_messages(NOW + 30, 60, 10).await.unwrap();
    assert_eq!((again.len(), again[0].attempts), (1, 1));
    store.record_appio_failed(&c.id, 2, "HTTP 503", NOW + 31).await.unwrap();
    // A final message takes no other outcome.
    assert!(matches!(store.record_appio_failed(&a.id, 2, "x", NOW + 32).await, Err(StoreError::NotFound)));
    assert!(matches!(store.record_appio_retry(&b.id, 2, "x", NOW, NOW).await, Err(StoreError::NotFound)));

    let log: Vec<_> = store.recent_appio_messages(10).await.unwrap().into_iter().filter(|m| m.id != d.id).collect();
    let seen: Vec<_> = log.iter().map(|m| (m.kind, m.status, m.attempts, m.fiscal_code.as_str())).collect();
    assert_eq!(
        seen,
        [
            (AppioKind::Reminder, AppioStatus::Failed, 2, MASKED),
            (AppioKind::Moved, AppioStatus::Refused, 1, MASKED),
            (AppioKind::Booked, AppioStatus::Sent, 1, MASKED),
        ],
        "newest first; once finished only the masked code is left"
    );
    assert_eq!(log[2].io_message_id.as_deref(), Some("01BX9NSMKVXXS5PSP2FATZMYYY"));
    assert_eq!(log[0].last_error.as_deref(), Some("HTTP 503"));
    assert_eq!(log[0].next_attempt_at, None);
    assert!(store.claim_due_appio_messages(NOW + 1000, 60, 10).await.unwrap().is_empty());
}

async fn opting_out_withdraws_what_is_queued(db: Db) {
    let store = db.connect().await;
    let appt = booked(&store).await;
    let sent = store.choose_appio(&appt.id, &message(&appt.id, AppioKind::Booked), NOW).await.unwrap();
    store.claim_due_appio_messages(NOW, 60, 10).await.unwrap();
    store.record_appio_sent(&sent.id, 1, "io-1", NOW).await.unwrap();
    let queued = store.enqueue_appio_message(&message(&appt.id, AppioKind::Reminder), NOW).await.unwrap();
    // One being sent right now: withdrawn, but if IO took it, it was sent.
    let in_flight = store.enqueue_appio_message(&message(&appt.id, AppioKind::Moved), NOW + 1).await.unwrap();

    assert_eq!(store.appio_opt_out(&appt.id, NOW + 2).await.unwrap(), 2);
    assert_eq!(store.appointment_appio_fiscal_code(&appt.id).await.unwrap(), None);
    let after = store.appio_message(&queued.id).await.unwrap().unwrap();
    assert_eq!(
        (after.status, after.fiscal_code.as_str(), after.next_attempt_at),
        (AppioStatus::Cancelled, MASKED, None)
    );
    assert!(store.claim_due_appio_messages(NOW + 100, 60, 10).await.unwrap().is_empty(), "nothing left to send");
    store.record_appio_sent(&in_flight.id, 1, "io-2", NOW + 3).await.unwrap();
    assert_eq!(store.appio_message(&in_flight.id).await.unwrap().unwrap().status, AppioStatus::Sent);
    assert_eq!(store.appio_message(&sent.id).await.unwrap().unwrap().status, AppioStatus::Sent, "the past stays");
    assert!(matches!(store.appio_opt_out("nope", NOW).await, Err(StoreError::NotFound)));
}

async fn councillors_fiscal_codes(db: Db) {
    let store = db.connect().await;
    let fx = fixture(&store).await;
    assert_eq!(store.user_fiscal_code(&fx.anna.id).await.unwrap(), None);
    store.set_user_fiscal_code(&fx.anna.id, Some(CODE)).await.unwrap();
    assert_eq!(store.user_fiscal_code(&fx.anna.id).await.unwrap().as_deref(), Some(CODE));
    let ids = vec![fx.anna.id.clone(), fx.bruno.id.clone()];
    let codes = store.user_fiscal_codes(&ids).await.unwrap();
    assert_eq!((codes.len(), codes.get(&fx.anna.id).map(String::as_str)), (1, Some(CODE)));
    assert!(store.user_fiscal_codes(&[]).await.unwrap().is_empty());
    store.set_user_fiscal_code(&fx.anna.id, None).await.unwrap();
    assert_eq!(store.user_fiscal_code(&fx.anna.id).await.unwrap(), None);
    assert!(matches!(store.set_user_fiscal_code("nope", Some(CODE)).await, Err(StoreError::NotFound)));
    // A message to a user goes when the user does.
    let to_anna = NewAppioMessage {
        appointment_id: None,
        council_session_id: None,
        user_id: Some(fx.anna.id.clone()),
        kind: AppioKind::Convocation,
        ..message("x", AppioKind::Convocation)
    };
    store.enqueue_appio_message(&to_anna, NOW).await.unwrap();
    let unknown = NewAppioMessage { user_id: Some("nope".into()), ..to_anna };
    assert!(matches!(store.enqueue_appio_message(&unknown, NOW).await, Err(StoreError::NotFound)));
}

async fn retention_forgets_codes_then_rows(db: Db) {
    let store = db.connect().await;
    let fx = fixture(&store).await;
    let later = store.book(&booking(&fx, "BCDF-2345", &fx.anna, at(11, 0), at(11, 30)), NOW).await.unwrap();
    let over = store.book(&booking(&fx, "CDFG-2345", &fx.bruno, at(9, 0), at(9, 30)), NOW).await.unwrap();
    let cancelled = store.book(&booking(&fx, "DFGH-2345", &fx.bruno, at(11, 0), at(11, 30)), NOW).await.unwrap();
    for a in [&later, &over, &cancelled] {
        store.choose_appio(&a.id, &message(&a.id, AppioKind::Booked), NOW).await.unwrap();
    }
    store.set_status(&cancelled.id, &[Status::Confirmed], Status::Cancelled, "citizen", "", NOW).await.unwrap();
    let first = store.claim_due_appio_messages(NOW, 60, 1).await.unwrap().remove(0);
    store.record_appio_sent(&first.id, 1, "io-1", NOW).await.unwrap();

    let now = at(10, 0);
    assert_eq!(store.forget_appio_data(now).await.unwrap(), (2, 0, 0), "the past and the cancelled appointment");
    assert_eq!(store.appointment_appio_fiscal_code(&later.id).await.unwrap().as_deref(), Some(CODE));
    assert_eq!(store.appointment_appio_fiscal_code(&over.id).await.unwrap(), None);
    assert_eq!(store.appointment_appio_fiscal_code(&cancelled.id).await.unwrap(), None);

    let month = now + days(31);
    assert_eq!(store.forget_appio_data(month).await.unwrap(), (1, 1, 0), "the finished message loses its code");
    let blank = store.appio_message(&first.id).await.unwrap().unwrap();
    assert_eq!(blank.fiscal_code, "");
    let queued = store.recent_appio_messages(10).await.unwrap().into_iter().filter(|m| m.status == AppioStatus::Queued);
    assert!(queued.clone().all(|m| m.fiscal_code == CODE), "a queued message keeps what it needs to go out");
    assert_eq!(queued.count(), 2);
    assert_eq!(store.forget_appio_data(now + days(91)).await.unwrap(), (0, 0, 1));
    assert!(store.appio_message(&first.id).await.unwrap().is_none());
}

fn days(days: i64) -> i64 {
    days * 86_400
}

async fn a_cancellation_withdraws_what_its_appointment_has_queued(db: Db) {
    let store = db.connect().await;
    let appt = booked(&store).await;
    let booked = store.choose_appio(&appt.id, &message(&appt.id, AppioKind::Booked), NOW).await.unwrap();
    let reminder = store.enqueue_appio_message(&message(&appt.id, AppioKind::Reminder), NOW).await.unwrap();
    let cancelled = store.enqueue_appio_message(&message(&appt.id, AppioKind::Cancelled), NOW + 1).await.unwrap();
    for moot in [&booked, &reminder] {
        let m = store.appio_message(&moot.id).await.unwrap().unwrap();
        assert_eq!(
            (m.status, m.last_error.as_deref()),
            (AppioStatus::Cancelled, Some("superseded by the cancellation"))
        );
    }
    let due = store.claim_due_appio_messages(NOW + 2, 60, 10).await.unwrap();
    assert_eq!(due.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(), [&cancelled.id], "the cancellation goes");
}
