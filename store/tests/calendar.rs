//! Absences, calendar sources with their busy sets, and feed tokens, on SQLite and PostgreSQL.

mod common;

use common::{Db, NOW, at, booking, fixture};
use sportello_store::*;

scenarios!(absences_round_trip, sources_and_busy_sets, feed_tokens_rotate, official_appointments);

async fn absences_round_trip(db: Db) {
    let store = db.connect().await;
    let fx = fixture(&store).await;
    let day = NewAbsence {
        user_id: fx.anna.id.clone(),
        kind: AbsenceKind::Holiday,
        starts_at: at(0, 0),
        ends_at: at(24, 0),
        all_day: true,
        note: "ferie".into(),
    };
    let a = store.create_absence(&day, NOW).await.unwrap();
    assert_eq!((a.kind, a.all_day, a.note.as_str(), a.created_at), (AbsenceKind::Holiday, true, "ferie", NOW));
    let leave =
        NewAbsence { kind: AbsenceKind::Other, starts_at: at(30, 0), ends_at: at(32, 0), all_day: false, ..day };
    let b = store.create_absence(&leave, NOW).await.unwrap();
    let ids = [fx.anna.id.clone()];
    let all = store.absences_of_users(&ids, at(-24, 0), at(48, 0)).await.unwrap();
    assert_eq!(all, vec![a.clone(), b.clone()]);
    // Overlap, not containment; the end is exclusive.
    assert_eq!(store.absences_of_users(&ids, at(23, 0), at(31, 0)).await.unwrap().len(), 2);
    assert_eq!(store.absences_of_users(&ids, at(24, 0), at(30, 0)).await.unwrap(), vec![]);
    assert_eq!(store.absences_of_users(std::slice::from_ref(&fx.bruno.id), 0, i64::MAX).await.unwrap(), vec![]);
    // Another user cannot delete it; the owner can, once.
    assert!(matches!(store.delete_absence(&fx.bruno.id, &a.id).await, Err(StoreError::NotFound)));
    store.delete_absence(&fx.anna.id, &a.id).await.unwrap();
    assert!(matches!(store.delete_absence(&fx.anna.id, &a.id).await, Err(StoreError::NotFound)));
    assert_eq!(store.absences_of_users(&ids, 0, i64::MAX).await.unwrap(), vec![b]);
    let empty = NewAbsence { ends_at: at(30, 0), ..leave.clone() };
    assert!(matches!(store.create_absence(&empty, NOW).await, Err(StoreError::Invalid(_))));
    let nobody = NewAbsence { user_id: "nope".into(), ..leave };
    assert!(matches!(store.create_absence(&nobody, NOW).await, Err(StoreError::NotFound)));
}

async fn sources_and_busy_sets(db: Db) {
    let store = db.connect().await;
    let fx = fixture(&store).await;
    let url = NewSource {
        user_id: fx.anna.id.clone(),
        kind: SourceKind::Url,
        label: "Outlook".into(),
        url: Some("https://cal.example/secret-token.ics".into()),
    };
    let s = store.create_source(&url, &[], NOW).await.unwrap();
    assert_eq!((s.kind, s.busy_count, s.last_fetch_at, s.last_ok_at), (SourceKind::Url, 0, None, None));
    assert!(!format!("{s:?}").contains("secret-token"), "Debug hides the URL");

    let first = [(at(9, 0), at(10, 0)), (at(11, 0), at(12, 0))];
    store.replace_busy(&s.id, &first, NOW + 1).await.unwrap();
    let got = store.source(&s.id).await.unwrap().unwrap();
    assert_eq!(
        (got.busy_count, got.last_fetch_at, got.last_ok_at, got.last_error),
        (2, Some(NOW + 1), Some(NOW + 1), None)
    );

    // A failure keeps the set and records the message.
    store.record_fetch_error(&s.id, "Il calendario non risponde.", NOW + 2).await.unwrap();
    let got = store.source(&s.id).await.unwrap().unwrap();
    assert_eq!(got.busy_count, 2);
    assert_eq!((got.last_fetch_at, got.last_ok_at), (Some(NOW + 2), Some(NOW + 1)));
    assert_eq!(got.last_error.as_deref(), Some("Il calendario non risponde."));
    let ids = [fx.anna.id.clone()];
    let busy = store.busy_of_users(&ids, at(0, 0), at(24, 0)).await.unwrap();
    assert_eq!(busy.iter().map(|b| (b.starts_at, b.ends_at)).collect::<Vec<_>>(), first);

    // Success replaces the whole set and clears the error.
    store.replace_busy(&s.id, &[(at(14, 0), at(15, 0))], NOW + 3).await.unwrap();
    let got = store.source(&s.id).await.unwrap().unwrap();
    assert_eq!((got.busy_count, got.last_error), (1, None));
    assert_eq!(store.busy_of_users(&ids, at(0, 0), at(12, 0)).await.unwrap(), vec![]);
    // An invalid interval changes nothing.
    assert!(matches!(store.replace_busy(&s.id, &[(at(2, 0), at(1, 0))], NOW).await, Err(StoreError::Invalid(_))));
    assert_eq!(store.source(&s.id).await.unwrap().unwrap().busy_count, 1);

    // Uploads are created with their set; many intervals go in several statements.
    let many: Vec<(i64, i64)> = (0..450).map(|i| (at(0, 0) + i * 600, at(0, 0) + i * 600 + 300)).collect();
    let upload = NewSource { kind: SourceKind::Upload, label: "file".into(), url: None, ..url.clone() };
    let u = store.create_source(&upload, &many, NOW).await.unwrap();
    assert_eq!((u.busy_count, u.last_ok_at), (450, Some(NOW)));
    assert_eq!(store.sources_of_user(&fx.anna.id).await.unwrap().len(), 2);
    assert_eq!(
        store.url_sources().await.unwrap().iter().map(|s| s.id.clone()).collect::<Vec<_>>(),
        std::slice::from_ref(&s.id)
    );

    // Deleting: only the owner; the busy set goes with the source.
    assert!(matches!(store.delete_source(&fx.bruno.id, &u.id).await, Err(StoreError::NotFound)));
    store.delete_source(&fx.anna.id, &u.id).await.unwrap();
    assert_eq!(store.busy_of_users(&ids, 0, i64::MAX).await.unwrap().len(), 1);
    assert!(matches!(store.replace_busy(&u.id, &[], NOW).await, Err(StoreError::NotFound)));
    assert!(matches!(store.record_fetch_error(&u.id, "x", NOW).await, Err(StoreError::NotFound)));
}

async fn feed_tokens_rotate(db: Db) {
    let store = db.connect().await;
    let fx = fixture(&store).await;
    assert_eq!(store.feed_token(FeedSubject::Official, &fx.anna.id).await.unwrap(), None);
    store.set_feed_token(FeedSubject::Official, &fx.anna.id, "h0", 0, NOW).await.unwrap();
    store.set_feed_token(FeedSubject::Office, &fx.office.id, "o0", 0, NOW).await.unwrap();
    let t = store.feed_token_by_hash("h0").await.unwrap().unwrap();
    assert_eq!((t.kind, t.subject_id.as_str(), t.generation), (FeedSubject::Official, fx.anna.id.as_str(), 0));
    store.set_feed_token(FeedSubject::Official, &fx.anna.id, "h1", 1, NOW + 5).await.unwrap();
    assert_eq!(store.feed_token_by_hash("h0").await.unwrap(), None, "the rotated hash is gone");
    assert_eq!(store.feed_token(FeedSubject::Official, &fx.anna.id).await.unwrap().unwrap().generation, 1);
    assert_eq!(store.feed_token_by_hash("o0").await.unwrap().unwrap().kind, FeedSubject::Office);
}

async fn official_appointments(db: Db) {
    let store = db.connect().await;
    let fx = fixture(&store).await;
    let a = store.book(&booking(&fx, "A1", &fx.anna, at(9, 0), at(9, 30)), NOW).await.unwrap();
    store.book(&booking(&fx, "B1", &fx.bruno, at(9, 0), at(9, 30)), NOW).await.unwrap();
    let mine = store.appointments_of_official(&fx.anna.id, at(0, 0), at(24, 0)).await.unwrap();
    assert_eq!(mine.iter().map(|x| x.id.clone()).collect::<Vec<_>>(), [a.id]);
    assert_eq!(store.appointments_of_official(&fx.anna.id, at(10, 0), at(24, 0)).await.unwrap(), vec![]);
}
