//! Three nodes on one PostgreSQL database run their reminder and confirmation passes at the same
//! moment: every citizen gets each email once.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use sportello_backoffice::clock::Clock;
use sportello_backoffice::context::{BackOffice, CalendarPolicy};
use sportello_backoffice::mail::Mailer;
use sportello_backoffice::token::TokenKey;
use sportello_backoffice::{booking, reminders};
use sportello_store::testing::shared_postgres_database;
use sportello_store::*;
use sqlx::Row;

const APPOINTMENTS: usize = 200;

struct Node {
    back: BackOffice,
    outbox: tempfile::TempDir,
}

/// A node: its own connection pool and outbox, the cluster's shared token key.
async fn node(url: &str, name: &str, tokens: &Arc<TokenKey>) -> Node {
    let outbox = tempfile::tempdir().unwrap();
    let back = BackOffice {
        store: Store::connect(url).await.unwrap(),
        tokens: Arc::clone(tokens),
        mailer: Mailer::new(None, "sportello@comune.example", outbox.path()).unwrap(),
        clock: Clock::system(),
        public_url: "https://sportello.example".into(),
        calendars: CalendarPolicy {
            refresh: Duration::from_secs(1800),
            fetch_timeout: Duration::from_secs(5),
            allow_private: false,
        },
        node: name.into(),
    };
    Node { back, outbox }
}

/// Each email the nodes' outboxes hold: to whom, and its subject.
fn sent(nodes: &[Node]) -> Vec<(String, String)> {
    let mut mails = Vec::new();
    for node in nodes {
        let Ok(dir) = std::fs::read_dir(node.outbox.path().join("outbox")) else { continue };
        for file in dir {
            let text = std::fs::read_to_string(file.unwrap().path()).unwrap();
            let header = |name: &str| {
                text.lines().find_map(|l| l.strip_prefix(name)).map(|v| v.trim().to_owned()).unwrap_or_default()
            };
            mails.push((header("To:"), header("Subject:")));
        }
    }
    mails
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_send_each_reminder_and_each_late_confirmation_once() {
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    let url = shared_postgres_database().unwrap();
    let tokens = Arc::new(TokenKey::random());
    let nodes = [node(&url, "a", &tokens).await, node(&url, "b", &tokens).await, node(&url, "c", &tokens).await];
    let store = &nodes[0].back.store;

    // 200 confirmed appointments in the coming days, booked a month ago, no email sent yet.
    let now = Clock::system().now();
    let office = store
        .create_office(
            &NewOffice {
                name: "Anagrafe".into(),
                description: String::new(),
                address: String::new(),
                email: String::new(),
                phone: String::new(),
                opening_hours: "[[],[],[],[],[],[],[]]".into(),
            },
            now - 3600,
        )
        .await
        .unwrap();
    let official = store
        .create_user(
            &NewUser { email: "anna@comune.example".into(), display_name: "Anna".into(), role: StaffRole::Official },
            now - 3600,
        )
        .await
        .unwrap();
    let service = store
        .create_service(
            &NewService {
                name: "Carta d'identità".into(),
                description: String::new(),
                duration_minutes: 30,
                what_to_bring: String::new(),
                modes: Modes::Video,
                office_ids: vec![office.id.clone()],
            },
            now - 3600,
        )
        .await
        .unwrap();
    let first = (now / GRANULE_SECS + 12) * GRANULE_SECS; // an hour on, on a granule
    for i in 0..APPOINTMENTS {
        let starts_at = first + i as i64 * 30 * 60;
        let booked = NewAppointment {
            code: format!("C{i:03}"),
            secret_hash: format!("hash-{i}"),
            office_id: office.id.clone(),
            service_id: service.id.clone(),
            official_id: official.id.clone(),
            starts_at,
            ends_at: starts_at + 30 * 60,
            mode: Mode::Video,
            first_name: "Mario".into(),
            last_name: format!("Rossi {i}"),
            email: format!("cittadino{i}@example.org"),
            details: String::new(),
            lang: "it".into(),
        };
        store.book(&booked, now - 31 * 86_400).await.unwrap();
    }

    // The late confirmations, by the three nodes at once.
    let passes = nodes.iter().map(|n| booking::notify::send_unsent_confirmations(&n.back));
    let counts: Vec<usize> = futures_util::future::join_all(passes).await.into_iter().map(Result::unwrap).collect();
    assert_eq!(counts.iter().sum::<usize>(), APPOINTMENTS, "sent per node: {counts:?}");
    // The reminders (lead: the whole span), by the three nodes at once.
    let lead = Duration::from_secs(30 * 86_400);
    let passes = nodes.iter().map(|n| reminders::send_due_reminders(&n.back, lead));
    let counts: Vec<usize> = futures_util::future::join_all(passes).await.into_iter().map(Result::unwrap).collect();
    assert_eq!(counts.iter().sum::<usize>(), APPOINTMENTS, "sent per node: {counts:?}");
    assert!(counts.iter().filter(|&&n| n > 0).count() >= 2, "the work was shared, not serialised: {counts:?}");

    // What the citizens received: two emails each, one of each kind.
    let mut per_citizen: HashMap<String, Vec<String>> = HashMap::new();
    for (to, subject) in sent(&nodes) {
        per_citizen.entry(to).or_default().push(subject);
    }
    assert_eq!(per_citizen.len(), APPOINTMENTS);
    for (to, subjects) in &per_citizen {
        assert_eq!(subjects.len(), 2, "{to}: {subjects:?}");
        assert_ne!(subjects[0], subjects[1], "{to}: a confirmation and a reminder");
    }
    // Nothing is due any more, and no lease is left behind.
    assert!(store.due_reminders(now, lead.as_secs() as i64).await.unwrap().is_empty());
    let leases: i64 = sqlx::query("SELECT COUNT(*) FROM leases").fetch_one(store.pool()).await.unwrap().get(0);
    assert_eq!(leases, 0);
}
