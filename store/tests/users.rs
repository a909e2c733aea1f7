//! Users, setup tokens and settings, on SQLite and PostgreSQL.

mod common;

use common::{Db, NOW};
use sportello_store::*;

scenarios!(
    users_round_trip,
    duplicate_email_any_case,
    setup_tokens_are_single_use,
    concurrent_token_takes,
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
