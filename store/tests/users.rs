//! Users, setup tokens and settings, on SQLite and PostgreSQL.

mod common;

use common::{Db, NOW};
use sportello_store::*;

scenarios!(
    users_round_trip,
    duplicate_email_any_case,
    setup_tokens_are_single_use,
    concurrent_token_takes,
    using_one_setup_link_voids_the_others,
    sessions_end_at_logout_password_change_and_deactivation,
    settings,
    corrupt_enum_text
);

async fn users_round_trip(db: Db) {
    let store = db.connect().await;
    assert_eq!(store.count_users().await.unwrap(), 0);
    let new =
        NewUser { email: "  Anna.Verdi@Comune.Example ".into(), display_name: "Anna".into(), role: StaffRole::Admin };
    let anna = store.create_user(&new, NOW).await.unwrap();
    assert_eq!(anna.email, "anna.verdi@comune.example");
    assert_eq!(anna.id.len(), 20);
    assert!(anna.active);
    assert_eq!(anna.password_hash, None);
    assert_eq!(store.user(&anna.id).await.unwrap().as_ref(), Some(&anna));
    assert_eq!(store.user_by_email("ANNA.VERDI@comune.example").await.unwrap().as_ref(), Some(&anna));
    assert_eq!(store.user("nope").await.unwrap(), None);

    let update = UserUpdate {
        display_name: "Anna Verdi".into(),
        role: StaffRole::Official,
        active: false,
        pattern: Some(r#"{"mon":["08:00-14:00"]}"#.into()),
    };
    let updated = store.update_user(&anna.id, &update).await.unwrap();
    assert_eq!(updated.display_name, "Anna Verdi");
    assert_eq!(updated.role, StaffRole::Official);
    assert!(!updated.active);
    assert_eq!(updated.pattern.as_deref(), Some(r#"{"mon":["08:00-14:00"]}"#));
    assert_eq!(store.user(&anna.id).await.unwrap(), Some(updated.clone()));
    assert!(matches!(store.update_user("nope", &update).await, Err(StoreError::NotFound)));

    assert_eq!(updated.password_changed_at, 0);
    store.set_password(&anna.id, "$argon2id$hash", NOW + 60).await.unwrap();
    let with_password = store.user(&anna.id).await.unwrap().unwrap();
    assert_eq!(with_password.password_hash.as_deref(), Some("$argon2id$hash"));
    assert_eq!(with_password.password_changed_at, NOW + 60);
    assert!(matches!(store.set_password("nope", "x", NOW).await, Err(StoreError::NotFound)));

    let bruno = store
        .create_user(
            &NewUser { email: "b@x.example".into(), display_name: "Bruno".into(), role: StaffRole::Chair },
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(store.count_users().await.unwrap(), 2);
    let names: Vec<String> = store.users().await.unwrap().into_iter().map(|u| u.display_name).collect();
    assert_eq!(names, ["Anna Verdi", "Bruno"]);
    assert_eq!(bruno.role, StaffRole::Chair);
}

async fn duplicate_email_any_case(db: Db) {
    let store = db.connect().await;
    let new = NewUser { email: "dup@x.example".into(), display_name: "A".into(), role: StaffRole::Official };
    store.create_user(&new, NOW).await.unwrap();
    let upper = NewUser { email: "DUP@X.Example".into(), ..new };
    assert!(matches!(store.create_user(&upper, NOW).await, Err(StoreError::Conflict("email"))));
    assert_eq!(store.count_users().await.unwrap(), 1);
}

async fn setup_tokens_are_single_use(db: Db) {
    let store = db.connect().await;
    let user = store
        .create_user(&NewUser { email: "t@x.example".into(), display_name: "T".into(), role: StaffRole::Admin }, NOW)
        .await
        .unwrap();
    store.create_setup_token(&user.id, "hash-1", NOW + 3600).await.unwrap();
    assert_eq!(store.take_setup_token("hash-1", NOW).await.unwrap(), Some(user.id.clone()));
    assert_eq!(store.take_setup_token("hash-1", NOW).await.unwrap(), None, "second take");
    assert_eq!(store.take_setup_token("unknown", NOW).await.unwrap(), None);

    store.create_setup_token(&user.id, "hash-2", NOW + 3600).await.unwrap();
    assert_eq!(store.take_setup_token("hash-2", NOW + 3600).await.unwrap(), None, "expired at expires_at");
    assert_eq!(store.take_setup_token("hash-2", NOW + 3599).await.unwrap(), Some(user.id.clone()));

    assert!(matches!(store.create_setup_token(&user.id, "hash-2", NOW).await, Err(StoreError::Conflict("token"))));
    assert!(matches!(store.create_setup_token("nobody", "hash-3", NOW).await, Err(StoreError::NotFound)));
}

async fn concurrent_token_takes(db: Db) {
    let store = db.connect().await;
    let user = store
        .create_user(&NewUser { email: "c@x.example".into(), display_name: "C".into(), role: StaffRole::Admin }, NOW)
        .await
        .unwrap();
    store.create_setup_token(&user.id, "hash-c", NOW + 3600).await.unwrap();
    let takes: Vec<_> = (0..20)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.take_setup_token("hash-c", NOW).await })
        })
        .collect();
    let mut winners = Vec::new();
    for take in takes {
        if let Some(id) = take.await.unwrap().unwrap() {
            winners.push(id);
        }
    }
    assert_eq!(winners, [user.id]);
}

async fn using_one_setup_link_voids_the_others(db: Db) {
    let store = db.connect().await;
    let user = official(&store, "l@x.example").await;
    let other = official(&store, "o@x.example").await;
    // The newer link used first: the older one no longer works (and vice versa).
    store.create_setup_token(&user.id, "older", NOW + 3600).await.unwrap();
    store.create_setup_token(&user.id, "newer", NOW + 3600).await.unwrap();
    store.create_setup_token(&other.id, "someone-else", NOW + 3600).await.unwrap();
    assert_eq!(store.take_setup_token("newer", NOW).await.unwrap(), Some(user.id.clone()));
    assert_eq!(store.take_setup_token("older", NOW + 1).await.unwrap(), None);
    store.create_setup_token(&user.id, "reset-1", NOW + 3600).await.unwrap();
    store.create_setup_token(&user.id, "reset-2", NOW + 3600).await.unwrap();
    assert_eq!(store.take_setup_token("reset-1", NOW + 2).await.unwrap(), Some(user.id.clone()));
    assert_eq!(store.take_setup_token("reset-2", NOW + 3).await.unwrap(), None);
    // A password set another way (the user's own change) voids the outstanding links too.
    store.create_setup_token(&user.id, "reset-3", NOW + 3600).await.unwrap();
    store.set_password(&user.id, "$argon2id$x", NOW + 4).await.unwrap();
    assert_eq!(store.take_setup_token("reset-3", NOW + 5).await.unwrap(), None);
    // Other users' links are untouched.
    assert_eq!(store.take_setup_token("someone-else", NOW + 6).await.unwrap(), Some(other.id));
}

async fn sessions_end_at_logout_password_change_and_deactivation(db: Db) {
    let store = db.connect().await;
    let user = official(&store, "s@x.example").await;
    let other = official(&store, "p@x.example").await;
    assert!(matches!(store.create_session("nobody", NOW, NOW + 60).await, Err(StoreError::NotFound)));
    let a = store.create_session(&user.id, NOW, NOW + 60).await.unwrap();
    let b = store.create_session(&user.id, NOW, NOW + 60).await.unwrap();
    let theirs = store.create_session(&other.id, NOW, NOW + 60).await.unwrap();
    assert_eq!(store.session_user(&a, NOW).await.unwrap().as_deref(), Some(user.id.as_str()));
    assert_eq!(store.session_user(&a, NOW + 60).await.unwrap(), None, "expired at expires_at");

    store.delete_session(&a).await.unwrap();
    assert_eq!(store.session_user(&a, NOW).await.unwrap(), None, "logged out");
    assert_eq!(store.session_user(&b, NOW).await.unwrap().as_deref(), Some(user.id.as_str()), "other devices stay");

    store.set_password(&user.id, "$argon2id$y", NOW + 1).await.unwrap();
    assert_eq!(store.session_user(&b, NOW + 1).await.unwrap(), None, "a password change ends every session");

    let c = store.create_session(&user.id, NOW + 2, NOW + 60).await.unwrap();
    let mut update = UserUpdate { display_name: "S".into(), role: StaffRole::Official, active: true, pattern: None };
    store.update_user(&user.id, &update).await.unwrap();
    assert!(store.session_user(&c, NOW + 2).await.unwrap().is_some(), "an edit that keeps the user active");
    update.active = false;
    store.update_user(&user.id, &update).await.unwrap();
    assert_eq!(store.session_user(&c, NOW + 2).await.unwrap(), None, "deactivation ends every session");
    assert!(store.session_user(&theirs, NOW + 2).await.unwrap().is_some());

    let short = store.create_session(&other.id, NOW, NOW + 10).await.unwrap();
    assert_eq!(store.delete_expired_sessions(NOW + 10).await.unwrap(), 1);
    assert_eq!(store.session_user(&short, NOW).await.unwrap(), None, "swept");
    assert!(store.session_user(&theirs, NOW + 10).await.unwrap().is_some());
    assert_eq!(store.delete_user_sessions(&other.id).await.unwrap(), 1);
}

/// A new official with this email.
async fn official(store: &Store, email: &str) -> User {
    let new = NewUser { email: email.into(), display_name: email.into(), role: StaffRole::Official };
    store.create_user(&new, NOW).await.unwrap()
}

async fn settings(db: Db) {
    let store = db.connect().await;
    assert_eq!(store.setting("site_name").await.unwrap(), None);
    store.set_setting("site_name", "Comune di Prova").await.unwrap();
    assert_eq!(store.setting("site_name").await.unwrap().as_deref(), Some("Comune di Prova"));
    store.set_setting("site_name", "Comune di Altrove").await.unwrap();
    assert_eq!(store.setting("site_name").await.unwrap().as_deref(), Some("Comune di Altrove"));
}

async fn corrupt_enum_text(db: Db) {
    let store = db.connect().await;
    let user = store
        .create_user(&NewUser { email: "z@x.example".into(), display_name: "Z".into(), role: StaffRole::Admin }, NOW)
        .await
        .unwrap();
    sqlx::query("UPDATE users SET role = 'emperor' WHERE id = $1").bind(&user.id).execute(store.pool()).await.unwrap();
    match store.user(&user.id).await {
        Err(StoreError::Corrupt(what)) => assert!(what.contains("emperor"), "{what}"),
        other => panic!("expected Corrupt, got {other:?}"),
    }
}
