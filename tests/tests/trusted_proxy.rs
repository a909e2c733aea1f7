//! Citizens behind the municipality's reverse proxy are counted one by one (issue 14, trusted
//! proxies): a real nginx proxies to Sportello with `X-Forwarded-For $proxy_add_x_forwarded_for`,
//! Sportello trusts 127.0.0.1 (the proxy) and nothing else. Each citizen connects from an address
//! of its own (any 127.0.0.0/8 address is local, so a client can bind one). The per-address limit
//! used is the network check's (`network_checks_per_ip_minute`, here 3): the same `ClientIp`
//! counts bookings, live viewers, websockets and logins.
//!
//! - 15 citizens through the proxy, one check each: none refused (with the proxy's address for
//!   all, the 4th would be);
//! - one citizen through the proxy: refused at its own 4th check;
//! - a citizen who forges `X-Forwarded-For` through the proxy: nginx appends the address it saw,
//!   the rightmost untrusted hop is the citizen's, refused at its 4th;
//! - a client straight to Sportello with a forged header: not a trusted proxy, its header is
//!   ignored, refused at its 4th.
//!
//! Runs inside a loopback-only network namespace (own `main`, see `sportello_tests::netns`).

use std::net::IpAddr;

use sportello_tests::nginx::Nginx;
use sportello_tests::server::TestServer;

type Result<T> = std::result::Result<T, String>;

const PROXY_PORT: u16 = 24680;
const BUDGET: u32 = 3;

fn main() {
    sportello_tests::netns::run_scenario("trusted_proxy", scenario());
}

fn check(cond: bool, what: impl Into<String>) -> Result<()> {
    if cond { Ok(()) } else { Err(what.into()) }
}

/// A reverse proxy as the municipality's would be (the `location` block of deploy/nginx-443.conf's
/// site, plain HTTP here).
fn proxy_conf(dir: &std::path::Path, upstream: std::net::SocketAddr) -> String {
    let d = dir.display();
    format!(
        "pid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{}}\nhttp {{\n  access_log off;\n  \
         client_body_temp_path {d}/client_body;\n  proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n  \
         uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n  server {{\n    listen 127.0.0.1:{PROXY_PORT};\n    \
         location / {{\n      proxy_pass http://{upstream};\n      proxy_set_header Host $host;\n      \
         proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n    }}\n  }}\n}}\n"
    )
}

/// `GET /api/network-check` from `from` (the client's own source address) to `base`, with a
/// forged `X-Forwarded-For` if given; returns the status.
async fn check_from(from: IpAddr, base: &str, forged: Option<&str>) -> Result<u16> {
    let client = reqwest::Client::builder().local_address(from).build().map_err(|e| e.to_string())?;
    let mut request = client.get(format!("{base}/api/network-check"));
    if let Some(forged) = forged {
        request = request.header("X-Forwarded-For", forged);
    }
    let response = request.send().await.map_err(|e| format!("from {from}: {e}"))?;
    Ok(response.status().as_u16())
}

async fn scenario() -> Result<()> {
    let server = TestServer::start_with(|c| {
        c.trusted_proxies = vec!["127.0.0.1/32".parse().expect("a CIDR block")];
        c.network_checks_per_ip_minute = BUDGET;
    })
    .await;
    let upstream = server.server.http_addr;
    let nginx = Nginx::start_with(|dir| Ok(proxy_conf(dir, upstream)), &[PROXY_PORT]).await;
    let outcome = match &nginx {
        Ok(_) => cases(&server.url()).await,
        Err(e) => Err(e.clone()),
    };
    let log = nginx.as_ref().map(|n| n.log_text()).unwrap_or_default();
    drop(nginx);
    server.shutdown().await;
    outcome.map_err(|e| format!("{e}\n{log}"))
}

async fn cases(direct: &str) -> Result<()> {
    let proxy = format!("http://127.0.0.1:{PROXY_PORT}");
    let citizen = |n: u8| IpAddr::from([127, 0, 0, n]);

    // Fifteen citizens behind the same proxy, one check each.
    for n in 10..25 {
        let status = check_from(citizen(n), &proxy, None).await?;
        check(status == 200, format!("citizen 127.0.0.{n} through the proxy got {status}, not 200"))?;
    }
    println!("15 citizens through one proxy: none refused");

    // One citizen: its own budget, then 429.
    for attempt in 1..=BUDGET + 1 {
        let status = check_from(citizen(30), &proxy, None).await?;
        let want = if attempt <= BUDGET { 200 } else { 429 };
        check(status == want, format!("127.0.0.30's check {attempt} through the proxy: {status}, expected {want}"))?;
    }
    println!("one citizen through the proxy: refused at its own check {}", BUDGET + 1);

    // A forged header through the proxy changes nothing: nginx appends the real address.
    for attempt in 1..=BUDGET + 1 {
        let forged = format!("203.0.113.{attempt}");
        let status = check_from(citizen(31), &proxy, Some(&forged)).await?;
        let want = if attempt <= BUDGET { 200 } else { 429 };
        check(
            status == want,
            format!("forging {forged} through the proxy, check {attempt}: {status}, expected {want}"),
        )?;
    }
    println!("a forged X-Forwarded-For through the proxy: counted by the citizen's own address");

    // Straight to Sportello: 127.0.0.32 is no trusted proxy, its header is ignored.
    for attempt in 1..=BUDGET + 1 {
        let forged = format!("198.51.100.{attempt}");
        let status = check_from(citizen(32), direct, Some(&forged)).await?;
        let want = if attempt <= BUDGET { 200 } else { 429 };
        check(
            status == want,
            format!("forging {forged} straight to Sportello, check {attempt}: {status}, expected {want}"),
        )?;
    }
    println!("a forged X-Forwarded-For from an untrusted address: ignored");
    Ok(())
}
