//! Offices, members and services, on SQLite and PostgreSQL.

mod common;

use common::{Db, NOW, at, booking, fixture, new_office};
use sportello_store::*;

scenarios!(offices_crud_and_members, services_round_trip, delete_refused_while_referenced);

async fn offices_crud_and_members(db: Db) {
    let store = db.connect().await;
    let fx = fixture(&store).await;
    let tributi = store.create_office(&new_office("Tributi"), NOW).await.unwrap();
    assert_eq!(store.office(&tributi.id).await.unwrap().as_ref(), Some(&tributi));
    let names: Vec<String> = store.offices().await.unwrap().into_iter().map(|o| o.name).collect();
    assert_eq!(names, ["Anagrafe", "Tributi"]);

    let mut changed = new_office("Tributi e tasse");
    changed.opening_hours = r#"[[],[],[],[],[],[],[]]"#.into();
    let updated = store.update_office(&tributi.id, &changed).await.unwrap();
    assert_eq!(updated.name, "Tributi e tasse");
    assert_eq!(updated.created_at, NOW);
    assert_eq!(store.office(&tributi.id).await.unwrap(), Some(updated));
    assert!(matches!(store.update_office("nope", &changed).await, Err(StoreError::NotFound)));

    store.set_office_members(&fx.office.id, &[fx.bruno.id.clone(), fx.anna.id.clone()]).await.unwrap();
    store.set_office_members(&tributi.id, std::slice::from_ref(&fx.anna.id)).await.unwrap();
    let members: Vec<String> =
        store.office_members(&fx.office.id).await.unwrap().into_iter().map(|u| u.display_name).collect();
    assert_eq!(members, ["Anna", "Bruno"]);
    let of_anna: Vec<String> = store.offices_of_user(&fx.anna.id).await.unwrap().into_iter().map(|o| o.id).collect();
    assert_eq!(of_anna, [fx.office.id.clone(), tributi.id.clone()]);

    // Replacing, not adding.
    store.set_office_members(&fx.office.id, std::slice::from_ref(&fx.bruno.id)).await.unwrap();
    let members: Vec<String> = store.office_members(&fx.office.id).await.unwrap().into_iter().map(|u| u.id).collect();
    assert_eq!(members, [fx.bruno.id.as_str()]);
    assert_eq!(store.offices_of_user(&fx.anna.id).await.unwrap().len(), 1);

    // An unknown user changes nothing.
    let bad = store.set_office_members(&fx.office.id, &[fx.anna.id.clone(), "ghost".into()]).await;
    assert!(matches!(bad, Err(StoreError::NotFound)), "{bad:?}");
    let members: Vec<String> = store.office_members(&fx.office.id).await.unwrap().into_iter().map(|u| u.id).collect();
    assert_eq!(members, [fx.bruno.id.as_str()]);
    assert!(matches!(store.set_office_members("ghost", &[]).await, Err(StoreError::NotFound)));

    store.delete_office(&tributi.id).await.unwrap();
    assert_eq!(store.office(&tributi.id).await.unwrap(), None);
    assert!(store.offices_of_user(&fx.anna.id).await.unwrap().is_empty(), "memberships go with the office");
    assert!(matches!(store.delete_office(&tributi.id).await, Err(StoreError::NotFound)));
}

async fn services_round_trip(db: Db) {
    let store = db.connect().await;
    let fx = fixture(&store).await;
    let other = store.create_office(&new_office("Tributi"), NOW).await.unwrap();
    let mut ids = vec![other.id.clone(), fx.office.id.clone(), other.id.clone()];
    let new = NewService {
        name: "Ascolto".into(),
        description: "Ricevimento".into(),
        duration_minutes: 15,
        what_to_bring: String::new(),
        modes: Modes::InPerson,
        office_ids: ids.clone(),
    };
    let service = store.create_service(&new, NOW).await.unwrap();
    ids.sort();
    ids.dedup();
    assert_eq!(service.office_ids, ids);
    assert_eq!(store.service(&service.id).await.unwrap().as_ref(), Some(&service));

    let all = store.services().await.unwrap();
    assert_eq!(all.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["Ascolto", "Carta d'identità"]);
    assert_eq!(all[0], service);
    assert_eq!(all[1].office_ids, [fx.office.id.as_str()]);

    let changed =
        NewService { name: "Ascolto cittadini".into(), modes: Modes::Video, office_ids: vec![other.id.clone()], ..new };
    let updated = store.update_service(&service.id, &changed).await.unwrap();
    assert_eq!(updated.name, "Ascolto cittadini");
    assert_eq!(updated.modes, Modes::Video);
    assert_eq!(updated.office_ids, [other.id.as_str()]);
    assert_eq!(store.service(&service.id).await.unwrap(), Some(updated));
    assert!(matches!(store.update_service("nope", &changed).await, Err(StoreError::NotFound)));

    let ghost = NewService { office_ids: vec!["ghost".into()], ..changed };
    assert!(matches!(store.create_service(&ghost, NOW).await, Err(StoreError::NotFound)));
    assert_eq!(store.services().await.unwrap().len(), 2, "the failed create left nothing");

    // Deleting an office unlinks it from services.
    store.delete_office(&other.id).await.unwrap();
    assert!(store.service(&service.id).await.unwrap().unwrap().office_ids.is_empty());
    store.delete_service(&service.id).await.unwrap();
    assert_eq!(store.service(&service.id).await.unwrap(), None);
    assert!(matches!(store.delete_service(&service.id).await, Err(StoreError::NotFound)));
}

async fn delete_refused_while_referenced(db: Db) {
    let store = db.connect().await;
    let fx = fixture(&store).await;
    store.book(&booking(&fx, "AAA111", &fx.anna, at(10, 0), at(10, 30)), NOW).await.unwrap();
    assert!(matches!(store.delete_office(&fx.office.id).await, Err(StoreError::Conflict("appointments"))));
    assert!(matches!(store.delete_service(&fx.service.id).await, Err(StoreError::Conflict("appointments"))));
    assert!(store.office(&fx.office.id).await.unwrap().is_some());
    assert!(store.service(&fx.service.id).await.unwrap().is_some());
}
