//! An anonymous login flood (issue 20): every attempt would run one Argon2id verification
//! (≈ 19 MiB); 200 at once took an unprotected server from 56 MiB to 3.8 GiB. The server must keep
//! its memory bounded, refuse the flood's address before hashing, and let the administrator in from
//! their own address meanwhile. Its own binary, so that the process's peak memory is this test's.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use sportello_server::api::auth::first_admin_link;
use sportello_server::api::login_guard::ADDRESS_BUDGET;
use sportello_tests::server::TestServer;

const PASSWORD: &str = "correct horse battery";
/// The flood comes from this many addresses (127.0.0.10 …), each sending twice its budget of
/// failed logins, so that the cut does not depend on how many requests happen to overlap.
const ADDRESSES: usize = 5;
const FLOOD: usize = ADDRESSES * 2 * ADDRESS_BUDGET as usize;

/// Resident memory of this process in KiB: (`VmRSS`, `VmHWM` peak).
fn memory_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} in /proc/self/status"))
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip.parse::<std::net::IpAddr>().expect("address"))
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_login_flood_keeps_memory_bounded_and_the_administrator_gets_in() {
    let server = TestServer::start_at(sportello_tests::server::Clock::system(), |_| {}).await;
    let now = server.server.tokens.clock().now();
    let link = first_admin_link(&server.server.store, &server.url(), now).await.expect("store").expect("first link");
    let secret = link.split_once('#').expect("secret").1;
    let admin = client_from("127.0.0.1");
    let setup = admin
        .post(format!("{}/api/auth/setup", server.url()))
        .json(&json!({"token": secret, "password": PASSWORD, "email": "admin@comune.example", "display_name": "Ada"}))
        .send()
        .await
        .expect("setup");
    assert_eq!(setup.status(), StatusCode::OK);

    // Peak memory from here on (writing 5 to clear_refs resets VmHWM).
    std::fs::write("/proc/self/clear_refs", "5").expect("reset the peak");
    let (before, _) = memory_kib();

    let url = format!("{}/api/auth/login", server.url());
    let flooders: Vec<_> = (0..ADDRESSES).map(|a| client_from(&format!("127.0.0.{}", 10 + a))).collect();
    let flood = futures_util::future::join_all((0..FLOOD).map(|i| {
        let (flooder, url) = (flooders[i % ADDRESSES].clone(), url.clone());
        async move {
            let body = json!({"email": format!("made-up-{i}@example.org"), "password": "whatever-it-is"});
            flooder.post(&url).json(&body).send().await.map(|r| r.status())
        }
    }));
    let administrator = async {
        // Let the flood start first.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let body = json!({"email": "admin@comune.example", "password": PASSWORD});
        admin.post(&url).json(&body).send().await.map(|r| r.status())
    };
    let (answers, admin_status) = tokio::join!(flood, administrator);
    let (_, peak) = memory_kib();

    assert_eq!(admin_status.expect("the administrator gets an answer"), StatusCode::OK, "logged in during the flood");
    let count = |status: StatusCode| answers.iter().filter(|a| a.as_ref().is_ok_and(|s| *s == status)).count();
    let (refused, too_many) = (count(StatusCode::UNAUTHORIZED), count(StatusCode::TOO_MANY_REQUESTS));
    assert_eq!(refused + too_many, FLOOD, "every flood request answered 401 or 429: {answers:?}");
    // At most an address's budget gets through to hashing; the rest are refused before it.
    let hashed_at_most = ADDRESSES * ADDRESS_BUDGET as usize;
    assert!(too_many >= FLOOD - hashed_at_most, "each address is cut before hashing ({too_many} × 429)");
    // One Argon2 verification per core at a time (≈ 19 MiB each, handed back to the system after
    // each): measured ≈ 66 MiB on two cores, against ≈ 300 MiB when the allocator keeps what the
    // hashing threads freed, ≈ 760 MiB for 40 verifications in parallel and ≈ 3.8 GiB
    // for the 200 with no limit at all.
    let growth_mib = peak.saturating_sub(before) / 1024;
    eprintln!("peak memory growth during the flood: {growth_mib} MiB ({too_many} × 429)");
    assert!(growth_mib < 150, "peak memory grew by {growth_mib} MiB during the flood");
}
