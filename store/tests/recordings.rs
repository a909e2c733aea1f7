//! Council recordings on SQLite and PostgreSQL: insert and read back, the archive (sessions with
//! recordings, latest first), the retention query, deletion, and the session's cascade.

mod common;

use common::{Db, NOW, at};
use sportello_store::*;

scenarios!(insert_get_list, archive_lists_sessions_with_recordings, retention_query_and_delete);

async fn session(store: &Store, title: &str, scheduled_at: i64) -> CouncilSession {
    let chair = match store.user_by_email("presidente@comune.example").await.unwrap() {
        Some(user) => user,
        None => {
            let new = NewUser {
                email: "presidente@comune.example".into(),
                display_name: "Presidente".into(),
                role: StaffRole::Chair,
            };
            store.create_user(&new, NOW).await.unwrap()
        }
    };
    let new = NewCouncilSession {
        title: title.into(),
        body: CouncilBody::Consiglio,
        scheduled_at,
        chair_id: chair.id,
        quorum: "majority".into(),
    };
    store.create_council_session(&new, NOW).await.unwrap()
}

fn new_recording(id: &str, session_id: &str, started_at: i64, ended_at: i64) -> NewRecording {
    NewRecording {
        id: id.into(),
        session_id: session_id.into(),
        file_name: format!("{id}.webm"),
        started_at,
        ended_at,
        duration_ms: (ended_at - started_at) * 1000,
        bytes: 1234,
        sha256: "ab".repeat(32),
        chapters: r#"[{"title":"Bilancio","start_ms":0,"end_ms":60000}]"#.into(),
    }
}

async fn insert_get_list(db: Db) {
    let store = db.connect().await;
    let s = session(&store, "Consiglio comunale", at(18, 0)).await;
    let second = store.insert_recording(&new_recording("rec2", &s.id, at(19, 0), at(19, 30)), NOW).await.unwrap();
    let first = store.insert_recording(&new_recording("rec1", &s.id, at(18, 0), at(18, 50)), NOW).await.unwrap();
    assert_eq!(first.created_at, NOW);
    assert_eq!(first.chapters, r#"[{"title":"Bilancio","start_ms":0,"end_ms":60000}]"#);
    assert_eq!(store.recording("rec1").await.unwrap(), Some(first.clone()));
    assert_eq!(store.recording("nope").await.unwrap(), None);
    assert_eq!(store.recordings_for_session(&s.id).await.unwrap(), vec![first, second]);
    // The id is the caller's: a second insert under it is a conflict; an unknown session is NotFound.
    let again = store.insert_recording(&new_recording("rec1", &s.id, at(20, 0), at(20, 1)), NOW).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    let orphan = store.insert_recording(&new_recording("rec3", "nobody", at(20, 0), at(20, 1)), NOW).await;
    assert!(matches!(orphan, Err(StoreError::NotFound)), "{orphan:?}");
    let backwards = store.insert_recording(&new_recording("rec4", &s.id, at(20, 0), at(19, 0)), NOW).await;
    assert!(matches!(backwards, Err(StoreError::Invalid(_))), "{backwards:?}");
}

async fn archive_lists_sessions_with_recordings(db: Db) {
    let store = db.connect().await;
    let older = session(&store, "Seduta di marzo", at(9, 0) - 30 * 86_400).await;
    let newer = session(&store, "Seduta di aprile", at(9, 0)).await;
    let _unrecorded = session(&store, "Seduta non registrata", at(9, 0) + 86_400).await;
    store.insert_recording(&new_recording("a1", &older.id, at(9, 0), at(9, 10)), NOW).await.unwrap();
    store.insert_recording(&new_recording("b1", &newer.id, at(9, 0), at(9, 10)), NOW).await.unwrap();
    store.insert_recording(&new_recording("b2", &newer.id, at(10, 0), at(10, 5)), NOW).await.unwrap();
    let archive = store.archived_sessions().await.unwrap();
    assert_eq!(
        archive,
        vec![
            ArchivedSession {
                session_id: newer.id.clone(),
                title: "Seduta di aprile".into(),
                body: CouncilBody::Consiglio,
                scheduled_at: at(9, 0),
                recordings: 2,
                duration_ms: 15 * 60_000,
            },
            ArchivedSession {
                session_id: older.id.clone(),
                title: "Seduta di marzo".into(),
                body: CouncilBody::Consiglio,
                scheduled_at: at(9, 0) - 30 * 86_400,
                recordings: 1,
                duration_ms: 10 * 60_000,
            },
        ]
    );
}

async fn retention_query_and_delete(db: Db) {
    let store = db.connect().await;
    let s = session(&store, "Consiglio", at(9, 0)).await;
    store.insert_recording(&new_recording("old", &s.id, at(9, 0), at(10, 0)), NOW).await.unwrap();
    store.insert_recording(&new_recording("new", &s.id, at(11, 0), at(12, 0)), NOW).await.unwrap();
    let ids = |v: Vec<Recording>| v.into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(ids(store.recordings_ended_before(at(10, 0)).await.unwrap()), Vec::<String>::new());
    assert_eq!(ids(store.recordings_ended_before(at(10, 0) + 1).await.unwrap()), ["old"]);
    assert_eq!(ids(store.recordings_ended_before(at(13, 0)).await.unwrap()), ["old", "new"]);
    store.delete_recording("old").await.unwrap();
    assert!(matches!(store.delete_recording("old").await, Err(StoreError::NotFound)));
    assert_eq!(ids(store.recordings_for_session(&s.id).await.unwrap()), ["new"]);
    // Deleting the session takes its rows along (the files are the retention pass's concern).
    sqlx::query("DELETE FROM council_sessions WHERE id = $1").bind(&s.id).execute(store.pool()).await.unwrap();
    assert_eq!(store.recording("new").await.unwrap(), None);
}
