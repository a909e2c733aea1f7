//! Reminders, joins, endings, ratings, documents, chat and restarts, on SQLite and PostgreSQL.

mod common;

use common::{Db, NOW, at, booking, fixture};
use sportello_store::*;

scenarios!(reminders, citizen_joined_keeps_first_instant, ended_and_rated, documents, chat, restart_keeps_everything);

async fn reminders(db: Db) {
    let store = db.connect().await;
    let fx = fixture(&store).await;
    let soon = store.book(&booking(&fx, "R1", &fx.anna, at(10, 0), at(10, 30)), NOW).await.unwrap();
    let later = store.book(&booking(&fx, "R2", &fx.anna, at(15, 0), at(15, 30)), NOW).await.unwrap();
    let cancelled = store.book(&booking(&fx, "R3", &fx.bruno, at(10, 0), at(10, 30)), NOW).await.unwrap();
    store.set_status(&cancelled.id, &[Status::Confirmed], Status::Cancelled, "citizen", "", NOW).await.unwrap();
    let codes = |v: Vec<Appointment>| v.into_iter().map(|a| a.code).collect::<Vec<_>>();

    // (now, now + lead]: an appointment starting exactly at now + lead is due, one at now is not.
    assert_eq!(codes(store.due_reminders(at(9, 0), 3600).await.unwrap()), ["R1"]);
    assert_eq!(codes(store.due_reminders(at(9, 0), 3599).await.unwrap()), Vec::<String>::new());
    assert_eq!(codes(store.due_reminders(at(10, 0), 3600).await.unwrap()), Vec::<String>::new());
    assert_eq!(codes(store.due_reminders(at(9, 0), 7 * 3600).await.unwrap()), ["R1", "R2"]);

    store.mark_reminded(&soon.id, at(9, 1)).await.unwrap();
    assert_eq!(codes(store.due_reminders(at(9, 0), 7 * 3600).await.unwrap()), ["R2"]);
    assert_eq!(store.appointment(&soon.id).await.unwrap().unwrap().reminder_sent_at, Some(at(9, 1)));
    let last = store.audit(&soon.id).await.unwrap().pop().unwrap();
    assert_eq!((last.at, last.actor.as_str(), last.action.as_str()), (at(9, 1), "system", "reminded"));
    assert!(matches!(store.mark_reminded("nope", NOW).await, Err(StoreError::NotFound)));
    let _ = later;
}

async fn citizen_joined_keeps_first_instant(db: Db) {
    let store = db.connect().await;
    let fx = fixture(&store).await;
    let a = store.book(&booking(&fx, "J1", &fx.anna, at(10, 0), at(10, 30)), NOW).await.unwrap();
    store.mark_citizen_joined(&a.id, at(9, 58)).await.unwrap();
    store.mark_citizen_joined(&a.id, at(10, 5)).await.unwrap();
    assert_eq!(store.appointment(&a.id).await.unwrap().unwrap().citizen_joined_at, Some(at(9, 58)));
    let joins: Vec<AuditEntry> =
        store.audit(&a.id).await.unwrap().into_iter().filter(|e| e.action == "joined").collect();
    assert_eq!(joins.len(), 1);
    assert_eq!((joins[0].at, joins[0].actor.as_str()), (at(9, 58), "citizen"));
    assert!(matches!(store.mark_citizen_joined("nope", NOW).await, Err(StoreError::NotFound)));
}

async fn ended_and_rated(db: Db) {
    let store = db.connect().await;
    let fx = fixture(&store).await;
    let a = store.book(&booking(&fx, "E1", &fx.anna, at(9, 0), at(9, 30)), NOW).await.unwrap();
    let b = store.book(&booking(&fx, "E2", &fx.anna, at(10, 0), at(10, 30)), NOW).await.unwrap();
    let c = store.book(&booking(&fx, "E3", &fx.bruno, at(8, 0), at(8, 30)), NOW).await.unwrap();
    store.set_status(&c.id, &[Status::Confirmed], Status::Cancelled, "citizen", "", NOW).await.unwrap();
    let codes = |v: Vec<Appointment>| v.into_iter().map(|a| a.code).collect::<Vec<_>>();
    assert_eq!(codes(store.confirmed_ended_before(at(9, 30)).await.unwrap()), Vec::<String>::new(), "strictly before");
    assert_eq!(codes(store.confirmed_ended_before(at(9, 31)).await.unwrap()), ["E1"]);
    assert_eq!(codes(store.confirmed_ended_before(at(12, 0)).await.unwrap()), ["E1", "E2"]);
    store.set_status(&a.id, &[Status::Confirmed], Status::Completed, "system", "", at(12, 0)).await.unwrap();
    assert_eq!(codes(store.confirmed_ended_before(at(12, 0)).await.unwrap()), ["E2"]);

    store.rate(&a.id, 5, Some("Gentilissimi"), at(12, 5)).await.unwrap();
    let rated = store.appointment(&a.id).await.unwrap().unwrap();
    assert_eq!((rated.rating, rated.rating_comment.as_deref()), (Some(5), Some("Gentilissimi")));
    assert!(matches!(store.rate(&a.id, 1, None, at(12, 6)).await, Err(StoreError::Conflict("rating"))));
    assert_eq!(store.appointment(&a.id).await.unwrap().unwrap().rating, Some(5), "the first rating stays");
    store.rate(&b.id, 3, None, at(12, 7)).await.unwrap();
    assert_eq!(store.appointment(&b.id).await.unwrap().unwrap().rating_comment, None);
    assert!(matches!(store.rate(&c.id, 0, None, NOW).await, Err(StoreError::Invalid(_))));
    assert!(matches!(store.rate(&c.id, 6, None, NOW).await, Err(StoreError::Invalid(_))));
    assert!(matches!(store.rate("nope", 4, None, NOW).await, Err(StoreError::NotFound)));
    let actions: Vec<String> = store.audit(&a.id).await.unwrap().into_iter().map(|e| e.action).collect();
    assert_eq!(actions, ["booked", "completed", "rated"]);
}

fn new_document(id: &str, room: &str, appointment_id: Option<&str>, delete_after: i64) -> NewDocument {
    NewDocument {
        id: id.into(),
        room: room.into(),
        appointment_id: appointment_id.map(str::to_owned),
        uploader: "citizen:abc".into(),
        uploader_name: "Mario Rossi".into(),
        file_name: format!("{id}.pdf"),
        content_type: "application/pdf".into(),
        size: 1234,
        sha256: "ab".repeat(32),
        delete_after,
    }
}

async fn documents(db: Db) {
    let store = db.connect().await;
    let fx = fixture(&store).await;
    let a = store.book(&booking(&fx, "D1", &fx.anna, at(10, 0), at(10, 30)), NOW).await.unwrap();
    let first = store.add_document(&new_document("doc1", "room-a", Some(&a.id), at(20, 0)), at(10, 1)).await.unwrap();
    let second = store.add_document(&new_document("doc2", "room-a", None, at(12, 0)), at(10, 2)).await.unwrap();
    store.add_document(&new_document("doc3", "room-b", None, at(11, 0)), at(10, 3)).await.unwrap();
    assert_eq!(first.created_at, at(10, 1));
    assert_eq!(store.document("doc1").await.unwrap().as_ref(), Some(&first));
    assert_eq!(store.documents("room-a").await.unwrap(), [first.clone(), second.clone()]);
    assert!(matches!(
        store.add_document(&new_document("doc1", "room-c", None, NOW), NOW).await,
        Err(StoreError::Conflict("document"))
    ));

    let ids = |v: Vec<Document>| v.into_iter().map(|d| d.id).collect::<Vec<_>>();
    assert_eq!(ids(store.expired_documents(at(10, 59)).await.unwrap()), Vec::<String>::new());
    assert_eq!(ids(store.expired_documents(at(12, 0)).await.unwrap()), ["doc3", "doc2"], "delete_after <= now");
    store.delete_document("doc2").await.unwrap();
    store.delete_document("doc2").await.unwrap();
    assert_eq!(store.document("doc2").await.unwrap(), None);
    assert_eq!(store.documents("room-a").await.unwrap(), [first]);
}

async fn chat(db: Db) {
    let store = db.connect().await;
    let message = |body: &str, delete_after: i64| NewChat {
        room: "room-a".into(),
        appointment_id: None,
        sender: "staff:anna".into(),
        sender_name: "Anna".into(),
        body: body.into(),
        delete_after,
    };
    // Five messages in the same second, then two later: order must still be insertion order.
    for i in 0..5 {
        store.add_chat(&message(&format!("m{i}"), at(12, 0)), at(10, 0)).await.unwrap();
    }
    store.add_chat(&message("m5", at(13, 0)), at(10, 1)).await.unwrap();
    let last = store.add_chat(&message("m6", at(13, 0)), at(10, 2)).await.unwrap();
    store.add_chat(&NewChat { room: "room-b".into(), ..message("other", at(12, 0)) }, at(10, 3)).await.unwrap();
    let bodies = |v: Vec<ChatMessage>| v.into_iter().map(|m| m.body).collect::<Vec<_>>();
    assert_eq!(bodies(store.chat("room-a", 100).await.unwrap()), ["m0", "m1", "m2", "m3", "m4", "m5", "m6"]);
    assert_eq!(bodies(store.chat("room-a", 3).await.unwrap()), ["m4", "m5", "m6"], "the newest, in order");
    assert_eq!(store.chat("room-a", 1).await.unwrap(), [last]);
    assert!(store.chat("room-a", 0).await.unwrap().is_empty());

    assert_eq!(store.delete_expired_chat(at(11, 59)).await.unwrap(), 0);
    assert_eq!(store.delete_expired_chat(at(12, 0)).await.unwrap(), 6);
    assert_eq!(bodies(store.chat("room-a", 100).await.unwrap()), ["m5", "m6"]);
    assert!(store.chat("room-b", 100).await.unwrap().is_empty());
}

async fn restart_keeps_everything(db: Db) {
    let store = db.connect().await;
    let fx = fixture(&store).await;
    store.set_office_members(&fx.office.id, std::slice::from_ref(&fx.anna.id)).await.unwrap();
    let a = store.book(&booking(&fx, "K1", &fx.anna, at(10, 0), at(10, 30)), NOW).await.unwrap();
    store.set_setting("k", "v").await.unwrap();
    store
        .add_chat(
            &NewChat {
                room: "r".into(),
                appointment_id: Some(a.id.clone()),
                sender: "s".into(),
                sender_name: "S".into(),
                body: "ciao".into(),
                delete_after: at(20, 0),
            },
            NOW,
        )
        .await
        .unwrap();
    store.close().await;

    let again = db.connect().await;
    assert_eq!(again.user(&fx.anna.id).await.unwrap(), Some(fx.anna.clone()));
    assert_eq!(again.office(&fx.office.id).await.unwrap(), Some(fx.office.clone()));
    assert_eq!(again.service(&fx.service.id).await.unwrap(), Some(fx.service.clone()));
    assert_eq!(again.office_members(&fx.office.id).await.unwrap(), std::slice::from_ref(&fx.anna));
    assert_eq!(again.appointment(&a.id).await.unwrap(), Some(a.clone()));
    assert_eq!(again.audit(&a.id).await.unwrap().len(), 1);
    assert_eq!(again.setting("k").await.unwrap().as_deref(), Some("v"));
    assert_eq!(again.chat("r", 10).await.unwrap().len(), 1);
    // The guard survives too.
    assert!(matches!(
        again.book(&booking(&fx, "K2", &fx.anna, at(10, 0), at(10, 30)), NOW).await,
        Err(StoreError::SlotTaken)
    ));
}
