//! OpenID Connect logins in the store: a pending login taken once (also by two callbacks at once),
//! expired ones refused and swept, directory identities linked once, the directory's offices, and
//! a citizen's appointments by key — on SQLite and PostgreSQL.

mod common;

use common::{Db, NOW, at, booking, count, fixture, new_office};
use sportello_store::*;

scenarios!(
    a_pending_login_is_taken_once,
    concurrent_callbacks_take_one_login,
    expired_logins_are_refused_and_swept,
    identities_link_once,
    a_user_created_with_an_identity_is_all_or_nothing,
    the_directory_manages_only_its_offices,
    citizens_find_their_appointments_by_key,
);

fn pending(kind: OidcLoginKind, expires_at: i64) -> PendingOidcLogin {
    PendingOidcLogin {
        kind,
        pkce_verifier: "verifier-0123456789".into(),
        nonce: "nonce-abc".into(),
        return_path: "/prenota?servizio=x".into(),
        expires_at,
    }
}

async fn a_pending_login_is_taken_once(db: Db) {
    let store = db.connect().await;
    let login = pending(OidcLoginKind::Citizen, NOW + 600);
    store.create_oidc_login("hash-1", &login, NOW).await.unwrap();
    assert!(matches!(store.create_oidc_login("hash-1", &login, NOW).await, Err(StoreError::Conflict("state"))));
    assert_eq!(store.take_oidc_login("unknown", NOW).await.unwrap(), None);
    assert_eq!(store.take_oidc_login("hash-1", NOW + 1).await.unwrap(), Some(login));
    assert_eq!(store.take_oidc_login("hash-1", NOW + 2).await.unwrap(), None, "a state works once");
    assert_eq!(count(&store, "oidc_logins").await, 0);
}

async fn concurrent_callbacks_take_one_login(db: Db) {
    let store = db.connect().await;
    store.create_oidc_login("race", &pending(OidcLoginKind::Staff, NOW + 600), NOW).await.unwrap();
    let takes = (0..8).map(|_| {
        let store = store.clone();
        tokio::spawn(async move { store.take_oidc_login("race", NOW).await.unwrap() })
    });
    let mut won = 0;
    for take in takes {
        won += usize::from(take.await.unwrap().is_some());
    }
    assert_eq!(won, 1);
}

async fn expired_logins_are_refused_and_swept(db: Db) {
    let store = db.connect().await;
    store.create_oidc_login("late", &pending(OidcLoginKind::Staff, NOW + 600), NOW).await.unwrap();
    assert_eq!(store.take_oidc_login("late", NOW + 600).await.unwrap(), None, "expired at its instant");
    assert_eq!(count(&store, "oidc_logins").await, 0, "taken all the same");
    store.create_oidc_login("old", &pending(OidcLoginKind::Staff, NOW + 600), NOW).await.unwrap();
    store.create_oidc_login("new", &pending(OidcLoginKind::Citizen, NOW + 1200), NOW + 600).await.unwrap();
    assert_eq!(store.delete_expired_oidc_logins(NOW + 700).await.unwrap(), 1);
    assert!(store.take_oidc_login("new", NOW + 700).await.unwrap().is_some());
}

async fn identities_link_once(db: Db) {
    let store = db.connect().await;
    let fx = fixture(&store).await;
    let issuer = "https://login.comune.example";
    assert_eq!(store.user_by_identity(issuer, "sub-anna").await.unwrap(), None);
    store.link_identity(issuer, "sub-anna", &fx.anna.id, NOW).await.unwrap();
    assert_eq!(store.user_by_identity(issuer, "sub-anna").await.unwrap().map(|u| u.id), Some(fx.anna.id.clone()));
    assert_eq!(store.user_by_identity("https://other.example", "sub-anna").await.unwrap(), None, "per issuer");
    assert!(matches!(
        store.link_identity(issuer, "sub-anna", &fx.bruno.id, NOW).await,
        Err(StoreError::Conflict("identity"))
    ));
    assert!(matches!(store.link_identity(issuer, "sub-x", "nobody", NOW).await, Err(StoreError::NotFound)));
    assert_eq!(store.identities_of_user(&fx.anna.id, issuer).await.unwrap(), vec!["sub-anna".to_owned()]);
    assert!(store.identities_of_user(&fx.bruno.id, issuer).await.unwrap().is_empty());
}

async fn a_user_created_with_an_identity_is_all_or_nothing(db: Db) {
    let store = db.connect().await;
    let fx = fixture(&store).await;
    let issuer = "https://login.comune.example";
    let new = |email: &str| NewUser { email: email.into(), display_name: "Carla".into(), role: StaffRole::Official };
    let carla = store.create_user_with_identity(&new("Carla@Comune.example"), issuer, "sub-carla", NOW).await.unwrap();
    assert_eq!(carla.email, "carla@comune.example");
    assert_eq!(carla.password_hash, None);
    assert_eq!(store.user_by_identity(issuer, "sub-carla").await.unwrap(), Some(carla.clone()));
    // The email taken: no user, no identity.
    let taken = store.create_user_with_identity(&new(&fx.anna.email), issuer, "sub-other", NOW).await;
    assert!(matches!(taken, Err(StoreError::Conflict("email"))), "{taken:?}");
    assert_eq!(store.user_by_identity(issuer, "sub-other").await.unwrap(), None);
    // The identity taken: no user either.
    let twice = store.create_user_with_identity(&new("dario@comune.example"), issuer, "sub-carla", NOW).await;
    assert!(matches!(twice, Err(StoreError::Conflict("identity"))), "{twice:?}");
    assert_eq!(store.user_by_email("dario@comune.example").await.unwrap(), None);
}

async fn the_directory_manages_only_its_offices(db: Db) {
    let store = db.connect().await;
    let fx = fixture(&store).await;
    let tributi = store.create_office(&new_office("Tributi"), NOW).await.unwrap();
    let suap = store.create_office(&new_office("SUAP"), NOW).await.unwrap();
    // Anna is in Anagrafe by hand; the directory maps Tributi and SUAP only.
    store.set_office_members(&fx.office.id, std::slice::from_ref(&fx.anna.id)).await.unwrap();
    let managed = vec![tributi.id.clone(), suap.id.clone()];
    store.set_user_offices_within(&fx.anna.id, &managed, std::slice::from_ref(&tributi.id)).await.unwrap();
    assert_eq!(office_names(&store, &fx.anna.id).await, ["Anagrafe", "Tributi"]);
    store.set_user_offices_within(&fx.anna.id, &managed, std::slice::from_ref(&suap.id)).await.unwrap();
    assert_eq!(office_names(&store, &fx.anna.id).await, ["Anagrafe", "SUAP"]);
    // An office outside the managed ones is never added by the directory.
    store.set_user_offices_within(&fx.anna.id, &managed, &[fx.office.id.clone(), suap.id.clone()]).await.unwrap();
    assert_eq!(office_names(&store, &fx.anna.id).await, ["Anagrafe", "SUAP"]);
    store.set_user_offices_within(&fx.anna.id, &managed, &[]).await.unwrap();
    assert_eq!(office_names(&store, &fx.anna.id).await, ["Anagrafe"]);
    let unknown = vec!["nope".to_owned()];
    assert!(matches!(store.set_user_offices_within(&fx.anna.id, &unknown, &unknown).await, Err(StoreError::NotFound)));
}

async fn citizens_find_their_appointments_by_key(db: Db) {
    let store = db.connect().await;
    let fx = fixture(&store).await;
    let first = store.book(&booking(&fx, "KEY001", &fx.anna, at(9, 0), at(9, 30)), NOW).await.unwrap();
    let second = store.book(&booking(&fx, "KEY002", &fx.anna, at(11, 0), at(11, 30)), NOW).await.unwrap();
    store.book(&booking(&fx, "NOKEY1", &fx.bruno, at(9, 0), at(9, 30)), NOW).await.unwrap();
    for appointment in [&first, &second] {
        store.set_appointment_citizen_key(&appointment.id, "key-mario").await.unwrap();
    }
    assert!(matches!(store.set_appointment_citizen_key("nope", "key-mario").await, Err(StoreError::NotFound)));
    let listed = store.citizen_appointments("key-mario", 50).await.unwrap();
    assert_eq!(listed.iter().map(|a| a.code.as_str()).collect::<Vec<_>>(), ["KEY002", "KEY001"], "newest first");
    assert_eq!(listed[0].office_name, "Anagrafe");
    assert_eq!(listed[0].service_name, "Carta d'identità");
    assert_eq!((listed[0].starts_at, listed[0].ends_at), (at(11, 0), at(11, 30)));
    assert_eq!((listed[0].status, listed[0].mode), (Status::Confirmed, Mode::Video));
    assert_eq!(store.citizen_appointments("key-mario", 1).await.unwrap().len(), 1, "bounded");
    assert!(store.citizen_appointments("key-other", 50).await.unwrap().is_empty());
}

async fn office_names(store: &Store, user_id: &str) -> Vec<String> {
    let mut names: Vec<String> = store.offices_of_user(user_id).await.unwrap().into_iter().map(|o| o.name).collect();
    names.sort();
    names
}
