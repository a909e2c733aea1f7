//! Shared by the store's integration tests: each scenario runs on SQLite (a file of its own) and
//! on PostgreSQL (a fresh database on one throwaway server per test binary).
#![allow(dead_code)]

use sportello_store::testing::{TempSqlite, shared_postgres_database};
use sportello_store::*;

pub struct Db {
    pub url: String,
    _sqlite: Option<TempSqlite>,
}

impl Db {
    pub fn sqlite() -> Db {
        let file = TempSqlite::new().expect("temp sqlite");
        Db { url: file.url().to_owned(), _sqlite: Some(file) }
    }

    pub fn postgres() -> Db {
        Db { url: shared_postgres_database().expect("throwaway PostgreSQL"), _sqlite: None }
    }

    pub async fn connect(&self) -> Store {
        Store::connect(&self.url).await.expect("connect")
    }
}

/// Runs each listed `async fn(Db)` scenario as one test per backend: `sqlite::name`, `postgres::name`.
#[macro_export]
macro_rules! scenarios {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name($crate::common::Db::sqlite()).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name($crate::common::Db::postgres()).await
                }
            )*
        }
    };
}

/// Midnight UTC of a day in 2027: every instant of the tests is `at(h, m)` that day.
pub const DAY: i64 = 1_800_000_000 - 1_800_000_000 % 86_400;

pub fn at(hour: i64, minute: i64) -> i64 {
    DAY + hour * 3600 + minute * 60
}

pub const NOW: i64 = DAY - 86_400;

pub struct Fixture {
    pub office: Office,
    pub service: Service,
    pub anna: User,
    pub bruno: User,
}

pub async fn fixture(store: &Store) -> Fixture {
    let anna = store
        .create_user(
            &NewUser { email: "anna@comune.example".into(), display_name: "Anna".into(), role: StaffRole::Official },
            NOW,
        )
        .await
        .unwrap();
    let bruno = store
        .create_user(
            &NewUser { email: "bruno@comune.example".into(), display_name: "Bruno".into(), role: StaffRole::Official },
            NOW,
        )
        .await
        .unwrap();
    let office = store.create_office(&new_office("Anagrafe"), NOW).await.unwrap();
    let service = store
        .create_service(
            &NewService {
                name: "Carta d'identità".into(),
                description: "CIE".into(),
                duration_minutes: 30,
                what_to_bring: "foto".into(),
                modes: Modes::Both,
                office_ids: vec![office.id.clone()],
            },
            NOW,
        )
        .await
        .unwrap();
    Fixture { office, service, anna, bruno }
}

pub fn new_office(name: &str) -> NewOffice {
    NewOffice {
        name: name.into(),
        description: format!("Ufficio {name}"),
        address: "Piazza Municipio 1".into(),
        email: "ufficio@comune.example".into(),
        phone: "+39 000 000".into(),
        opening_hours: r#"[["09:00-12:00"],[],[],[],[],[],[]]"#.into(),
    }
}

pub fn booking(fx: &Fixture, code: &str, official: &User, starts_at: i64, ends_at: i64) -> NewAppointment {
    NewAppointment {
        code: code.into(),
        secret_hash: format!("secret-{code}"),
        office_id: fx.office.id.clone(),
        service_id: fx.service.id.clone(),
        official_id: official.id.clone(),
        starts_at,
        ends_at,
        mode: Mode::Video,
        first_name: "Mario".into(),
        last_name: "Rossi".into(),
        email: "mario@example.org".into(),
        details: "rinnovo".into(),
        lang: "it".into(),
    }
}

/// `(appointment_id, granule)` of every claim of an official, sorted.
pub async fn claims(store: &Store, official_id: &str) -> Vec<(String, i64)> {
    use sqlx::Row;
    sqlx::query("SELECT appointment_id, granule FROM slot_claims WHERE official_id = $1 ORDER BY granule")
        .bind(official_id)
        .fetch_all(store.pool())
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get("appointment_id"), r.get("granule")))
        .collect()
}

pub async fn count(store: &Store, table: &str) -> i64 {
    use sqlx::Row;
    sqlx::query(&format!("SELECT COUNT(*) AS n FROM {table}")).fetch_one(store.pool()).await.unwrap().get("n")
}

pub fn granules(starts_at: i64, ends_at: i64) -> Vec<i64> {
    (starts_at / GRANULE_SECS..ends_at / GRANULE_SECS).collect()
}
