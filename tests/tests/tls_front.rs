//! The HTTPS fronts of `deploy/` in front of a real Sportello (issue 14, a tested TLS front):
//! `nginx-https.conf` and `Caddyfile` standalone, and the site of `nginx-443.conf` behind its
//! one-port `stream` front, each run from the deploy file itself with a certificate from a test CA,
//! asked with curl (an independent client that checks the certificate against the CA).
//!
//! - The security headers arrive once each with Sportello's values — HSTS, nosniff,
//!   Referrer-Policy, X-Frame-Options, and Sportello's own CSP unchanged — on a page, the API and
//!   a 404, and on the front's own 502 while Sportello is down.
//! - Plain HTTP is redirected to HTTPS.
//! - `trusted_proxies` behind the standalone fronts: two citizens at their own addresses are
//!   counted apart (the network check's per-address budget, here 3), and a forged
//!   `X-Forwarded-For` does not dodge the count (the front replaces it with the address it saw).
//! - A document upload of exactly `max_upload` bytes reaches Sportello whole; one byte more is
//!   refused with 413, by nginx itself, or — Caddy passes bodies through — by Sportello.
//! - `nginx-443.conf`'s `http` block is `nginx-https.conf`'s with the site moved to 127.0.0.1:8443.
//!
//! The browser side (a booking and a call over https/wss) is the e2e scenario `tls_front`.
//! Runs inside a loopback-only network namespace (own `main`, see `sportello_tests::netns`).

use std::net::IpAddr;
use std::path::PathBuf;

use sportello_tests::caddy::{Caddy, CaddyConfig};
use sportello_tests::nginx::{FrontConfig, HttpsConfig, Nginx};
use sportello_tests::server::{Role, TestServer};
use sportello_tests::tls::TestCa;

type Result<T> = std::result::Result<T, String>;

const HOST: &str = "sportello.test";
const ROOM: &str = "sportello-tls";
const BUDGET: u32 = 3;
const MAX_UPLOAD: usize = 10 * 1024 * 1024;

/// The headers each front must deliver exactly once, with these values.
const SECURITY_HEADERS: &[(&str, &str)] = &[
    ("strict-transport-security", "max-age=31536000"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("x-frame-options", "DENY"),
];

fn main() {
    sportello_tests::netns::run_scenario("tls_front", scenario());
}

fn check(cond: bool, what: impl Into<String>) -> Result<()> {
    if cond { Ok(()) } else { Err(what.into()) }
}

/// One front under test: its name, its HTTPS and plain HTTP ports, and whether it sees the
/// citizen's address (the one-port front's site sees only the `stream` front's 127.0.0.1).
struct Front {
    name: &'static str,
    https: u16,
    plain_http: u16,
    sees_citizens: bool,
    /// Refuses a body above `max_upload` itself (nginx), or passes it on (Caddy).
    caps_uploads: bool,
}

const FRONTS: [Front; 3] = [
    Front { name: "nginx-https.conf", https: 24443, plain_http: 24080, sees_citizens: true, caps_uploads: true },
    Front { name: "Caddyfile", https: 24444, plain_http: 24081, sees_citizens: true, caps_uploads: false },
    Front { name: "nginx-443.conf", https: 24445, plain_http: 24082, sees_citizens: false, caps_uploads: true },
];

async fn scenario() -> Result<()> {
    same_site_in_both_nginx_files()?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let ca = TestCa::new(dir.path())?;
    let (cert, key) = ca.issue("site", &[HOST])?;
    let server = TestServer::start_with(|c| {
        // A fixed port: on port 0 the server makes `public_url` its own http:// address.
        c.listen = "127.0.0.1:24800".parse().expect("an address");
        c.public_url = format!("https://{HOST}");
        c.trusted_proxies = vec!["127.0.0.1/32".parse().expect("a CIDR block")];
        c.network_checks_per_ip_minute = BUDGET;
        c.max_upload = MAX_UPLOAD;
    })
    .await;
    let sportello = server.server.http_addr;
    let [standalone, caddy, one_port] = &FRONTS;
    let nginx = Nginx::start_https(&HttpsConfig {
        https: standalone.https,
        plain_http: standalone.plain_http,
        sportello,
        server_name: HOST.into(),
        cert: cert.clone(),
        key: key.clone(),
    })
    .await?;
    let caddy_front = Caddy::start(&CaddyConfig {
        https: caddy.https,
        plain_http: caddy.plain_http,
        sportello,
        server_name: HOST.into(),
        cert: cert.clone(),
        key: key.clone(),
    })
    .await
    .map_err(|e| format!("{e}\n{}", nginx.log_text()))?;
    let front_443 = Nginx::start(&FrontConfig {
        front: one_port.https,
        plain_http: one_port.plain_http,
        site: 24531,
        sportello,
        // Nothing listens there: only HTTPS is asked here.
        coturn_tls: 24532,
        ice_tcp: 24533,
        cert,
        key,
    })
    .await?;
    let curl = Curl { ca: ca.cert() };
    // In the room, so that its token may upload.
    let (_ws, _) = server.join(ROOM, "anna", Role::Host).await;
    let token = server.token(ROOM, "anna", Role::Host);
    let mut outcome: Result<()> = async {
        let mut citizen = 10;
        for front in &FRONTS {
            println!("{}:", front.name);
            while_up(&curl, front, &token, &mut citizen).await.map_err(|e| format!("{}: {e}", front.name))?;
        }
        Ok(())
    }
    .await;
    server.shutdown().await;
    if outcome.is_ok() {
        outcome = async {
            for front in &FRONTS {
                let got = curl.get(front, "/", None).await?;
                check(got.status == 502, format!("{}: with Sportello down: {}, not 502", front.name, got.status))?;
                security_headers(&got, None).map_err(|e| format!("{}: the front's own 502: {e}", front.name))?;
            }
            println!("with Sportello down, each front's 502 carries the security headers");
            Ok(())
        }
        .await;
    }
    outcome.map_err(|e| format!("{e}\n{}\n{}\n{}", nginx.log_text(), caddy_front.log_text(), front_443.log_text()))
}

async fn while_up(curl: &Curl, front: &Front, token: &str, citizen: &mut u8) -> Result<()> {
    // Sportello's CSP: the same through every front (its websocket origin is wss://sportello.test).
    let csp = "connect-src 'self' wss://sportello.test;";
    for path in ["/", "/healthz", "/nope", "/api/nope"] {
        let got = curl.get(front, path, None).await?;
        check(got.status != 502, format!("{path}: 502, Sportello not reached"))?;
        security_headers(&got, Some(csp)).map_err(|e| format!("{path} ({}): {e}", got.status))?;
    }
    println!("  the security headers arrive once each, with Sportello's CSP");

    let got = curl.plain_get(front, "/prenota?x=1").await?;
    let location = got.header("location").unwrap_or_default();
    check(
        matches!(got.status, 301 | 308)
            && location.starts_with(&format!("https://{HOST}"))
            && location.ends_with("/prenota?x=1"),
        format!("plain HTTP: {} to {location:?}, expected a redirect to https://{HOST}…/prenota?x=1", got.status),
    )?;
    println!("  plain HTTP: {} to {location}", got.status);

    if front.sees_citizens {
        let first = IpAddr::from([127, 0, 0, *citizen]);
        for attempt in 1..=BUDGET + 1 {
            let forged = format!("203.0.113.{attempt}");
            let got = curl.get(front, "/api/network-check", Some((first, &forged))).await?;
            let want = if attempt <= BUDGET { 200 } else { 429 };
            check(
                got.status == want,
                format!("{first} forging X-Forwarded-For {forged}, check {attempt}: {}, expected {want}", got.status),
            )?;
        }
        let second = IpAddr::from([127, 0, 0, *citizen + 1]);
        let got = curl.get(front, "/api/network-check", Some((second, "203.0.113.1"))).await?;
        check(got.status == 200, format!("a second citizen {second}: {}, expected 200 (counted apart)", got.status))?;
        *citizen += 2;
        println!("  citizens are counted by their own address; a forged X-Forwarded-For changes nothing");
    }

    // An upload as the room page sends it, by a participant in the room (Sportello reads the
    // whole body only then): zeros are no accepted document, so Sportello's answer after reading
    // it all is 415; one byte over `max_upload` is 413, from the front or from Sportello.
    let path = format!("/api/rooms/{ROOM}/documents");
    let got = curl.post_bytes(front, &path, token, MAX_UPLOAD).await?;
    check(
        got.status == 415 && got.header("content-type").is_some_and(|t| t.starts_with("application/json")),
        format!("{MAX_UPLOAD} bytes: {} {:?}, expected Sportello's JSON 415", got.status, got.header("content-type")),
    )?;
    // Refused before reading (no valid token): the answer is Sportello's 401, not a 502 from a
    // front that met a connection closed in mid-body.
    let got = curl.post_bytes(front, &path, "not-a-token", MAX_UPLOAD).await?;
    check(got.status == 401, format!("an upload with a bad token: {}, expected Sportello's 401", got.status))?;
    let got = curl.post_bytes(front, &path, token, MAX_UPLOAD + 1).await?;
    let from_sportello = got.header("content-type").is_some_and(|t| t.starts_with("application/json"));
    check(
        got.status == 413 && from_sportello != front.caps_uploads,
        format!(
            "{} bytes: {} (JSON: {from_sportello}), expected 413 from {}",
            MAX_UPLOAD + 1,
            got.status,
            if front.caps_uploads { "the front" } else { "Sportello" }
        ),
    )?;
    println!(
        "  an upload of max_upload bytes reaches Sportello whole; with a bad token: 401; one byte more: 413 from {}",
        if front.caps_uploads { "the front" } else { "Sportello" }
    );
    Ok(())
}

/// Each of [`SECURITY_HEADERS`] exactly once with its value; `csp`: the one CSP must contain it.
fn security_headers(got: &Reply, csp: Option<&str>) -> Result<()> {
    for (name, value) in SECURITY_HEADERS {
        let all = got.all(name);
        check(all == [*value], format!("{name}: {all:?}, expected exactly [{value:?}]"))?;
    }
    if let Some(csp) = csp {
        let all = got.all("content-security-policy");
        check(
            all.len() == 1 && all[0].contains(csp) && all[0].contains("frame-ancestors 'none'"),
            format!("content-security-policy: {all:?}, expected Sportello's one (with {csp:?})"),
        )?;
    }
    Ok(())
}

/// The check that the one-port front's site is the standalone site: comments and blank lines
/// aside, the `http` blocks differ only in the site's listen lines.
fn same_site_in_both_nginx_files() -> Result<()> {
    use sportello_tests::nginx::{DEPLOY_FILE, HTTPS_FILE};
    let http_block = |file: &str| -> Result<Vec<String>> {
        let text = std::fs::read_to_string(file).map_err(|e| format!("{file}: {e}"))?;
        let start = text.find("\nhttp {\n").ok_or_else(|| format!("{file}: no http block"))?;
        Ok(text[start..]
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_owned)
            .collect())
    };
    let standalone: Vec<String> = http_block(HTTPS_FILE)?
        .into_iter()
        .filter(|l| l != "listen [::]:443 ssl http2;")
        .map(|l| if l == "listen 443 ssl http2;" { "listen 127.0.0.1:8443 ssl http2;".to_owned() } else { l })
        .collect();
    let behind = http_block(DEPLOY_FILE)?;
    if standalone != behind {
        let first =
            standalone.iter().zip(&behind).position(|(a, b)| a != b).unwrap_or(standalone.len().min(behind.len()));
        return Err(format!(
            "the http blocks of {HTTPS_FILE} and {DEPLOY_FILE} differ (besides the site's listen lines) at line \
             {first} of the directives: {:?} vs {:?}",
            standalone.get(first),
            behind.get(first)
        ));
    }
    println!("nginx-443.conf's site is nginx-https.conf's, on 127.0.0.1:8443");
    Ok(())
}

/// curl, trusting the test CA only, with `sportello.test` resolved to 127.0.0.1.
struct Curl {
    ca: PathBuf,
}

/// Status and headers (names in lower case, in order) of one answer.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
}

impl Reply {
    fn all(&self, name: &str) -> Vec<&str> {
        self.headers.iter().filter(|(n, _)| n == name).map(|(_, v)| v.as_str()).collect()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.all(name).first().copied()
    }
}

impl Curl {
    /// `GET https://sportello.test:<port><path>`, from `from` with a forged `X-Forwarded-For`.
    async fn get(&self, front: &Front, path: &str, from: Option<(IpAddr, &str)>) -> Result<Reply> {
        let mut args = vec![];
        if let Some((ip, forged)) = from {
            args.extend(["--interface".to_owned(), ip.to_string(), "-H".into(), format!("X-Forwarded-For: {forged}")]);
        }
        args.push(format!("https://{HOST}:{}{path}", front.https));
        self.run(front.https, &args).await
    }

    /// `GET http://sportello.test:<plain port><path>`.
    async fn plain_get(&self, front: &Front, path: &str) -> Result<Reply> {
        self.run(front.plain_http, &[format!("http://{HOST}:{}{path}", front.plain_http)]).await
    }

    /// `POST` of `size` bytes as a document upload (raw body, as the room page sends it).
    async fn post_bytes(&self, front: &Front, path: &str, token: &str, size: usize) -> Result<Reply> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let file = dir.path().join("upload.bin");
        std::fs::write(&file, vec![0u8; size]).map_err(|e| e.to_string())?;
        let args = [
            "-H".to_owned(),
            "Content-Type: application/octet-stream".into(),
            "-H".into(),
            format!("Authorization: Bearer {token}"),
            "--data-binary".into(),
            format!("@{}", file.display()),
            format!("https://{HOST}:{}{path}", front.https),
        ];
        self.run(front.https, &args).await
    }

    async fn run(&self, port: u16, args: &[String]) -> Result<Reply> {
        let out = tokio::process::Command::new("curl")
            .args(["-sS", "-o", "/dev/null", "-D", "-", "--max-time", "20", "--cacert"])
            .arg(&self.ca)
            .arg("--resolve")
            .arg(format!("{HOST}:{port}:127.0.0.1"))
            .args(args)
            .output()
            .await
            .map_err(|e| format!("cannot run curl: {e}"))?;
        let text = String::from_utf8_lossy(&out.stdout);
        let mut lines = text.lines();
        let status = lines.next().and_then(|l| l.split_whitespace().nth(1)).and_then(|s| s.parse().ok());
        let Some(status) = status else {
            return Err(format!("curl {args:?}: no answer: {}", String::from_utf8_lossy(&out.stderr)));
        };
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        Ok(Reply { status, headers })
    }
}
