//! Scenario `tls_front` (issue 14, a tested TLS front): the product's main job in Chromium over
//! HTTPS through each front of `deploy/` — `nginx-https.conf`, then `Caddyfile` — on port 443 as
//! `https://sportello.test`, with a certificate from a test CA that Chromium trusts for real (an
//! NSS database under the browsers' `HOME`; no `--ignore-certificate-errors`).
//!
//! For each front, on a fresh server: a citizen books a video appointment on `/prenota`, opens the
//! emailed `https://` link and waits; the official logs in on `/staff`, admits them and enters the
//! room; both are connected over `wss://sportello.test/ws` and decode each other's camera, and keep
//! decoding it. The headers, redirect and upload limit of the fronts are `tests/tests/tls_front.rs`.

use std::time::Duration;

use sportello_tests::browser::{Browser, Chromedriver, Result, err, poll_until};
use sportello_tests::caddy::{Caddy, CaddyConfig};
use sportello_tests::nginx::{HttpsConfig, Nginx};
use sportello_tests::server::{Clock, TestServer};
use sportello_tests::tls::TestCa;

use super::office::{book_on_pages, join_link_from_outbox, offset_to_next_working_morning, seed, ten_minutes_before};
use super::{Ctx, MEDIA_TIMEOUT, media_condition, wait_camera_progress};

const HOST: &str = "sportello.test";
const STEP: Duration = Duration::from_secs(30);
const CITIZEN_EMAIL: &str = "giulia.bianchi@example.org";

/// Which front of `deploy/` a run goes through.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Nginx,
    Caddy,
}

/// A running front, stopped on drop.
enum Front {
    Nginx(Nginx),
    Caddy(Caddy),
}

impl Front {
    fn log_text(&self) -> String {
        match self {
            Front::Nginx(n) => n.log_text(),
            Front::Caddy(c) => c.log_text(),
        }
    }
}

pub async fn tls_front(ctx: &mut Ctx) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let ca = TestCa::new(dir.path()).map_err(err)?;
    let (cert, key) = ca.issue("site", &[HOST]).map_err(err)?;
    // Chromium finds the CA in `$HOME/.pki/nssdb`: its chromedriver (and so every Chromium) gets
    // that HOME.
    let home = ca.nss_home(&dir.path().join("home")).map_err(err)?;
    ctx.driver = Some(Chromedriver::start_with_home(Some(&home)).await?);
    for kind in [Kind::Nginx, Kind::Caddy] {
        println!("  through {kind:?}");
        call_through(ctx, kind, &cert, &key).await.map_err(|e| err(format!("through {kind:?}: {e}")))?;
    }
    Ok(())
}

async fn start_front(kind: Kind, server: &TestServer, cert: &std::path::Path, key: &std::path::Path) -> Result<Front> {
    let (https, plain_http, sportello) = (443, 80, server.server.http_addr);
    let (server_name, cert, key) = (HOST.to_owned(), cert.to_owned(), key.to_owned());
    Ok(match kind {
        Kind::Nginx => Front::Nginx(
            Nginx::start_https(&HttpsConfig { https, plain_http, sportello, server_name, cert, key })
                .await
                .map_err(err)?,
        ),
        Kind::Caddy => Front::Caddy(
            Caddy::start(&CaddyConfig { https, plain_http, sportello, server_name, cert, key }).await.map_err(err)?,
        ),
    })
}

async fn call_through(ctx: &mut Ctx, kind: Kind, cert: &std::path::Path, key: &std::path::Path) -> Result<()> {
    let listen = match kind {
        Kind::Nginx => 24810,
        Kind::Caddy => 24811,
    };
    let clock = Clock::offset(offset_to_next_working_morning()?);
    let base = format!("https://{HOST}");
    let server = TestServer::start_at(clock.clone(), |c| {
        c.reconnect_grace = Duration::from_secs(15);
        // A fixed port: on port 0 the server makes `public_url` its own http:// address.
        c.listen = std::net::SocketAddr::from(([127, 0, 0, 1], listen));
        c.public_url = base.clone();
        // Behind the front, as deploy/ says: its X-Forwarded-For is believed.
        c.trusted_proxies = vec!["127.0.0.1/32".parse().expect("a CIDR block")];
    })
    .await;
    let service_id = seed(&server).await?;
    let front = start_front(kind, &server, cert, key).await?;
    let outcome = booking_and_call(ctx, &server, &clock, &base, &service_id).await;
    if outcome.is_err() {
        // The pages' state and RTP counters, while the browsers and the server still live (the
        // scenario's own dump comes after they are gone).
        ctx.dump(&format!("tls_front through {kind:?}")).await;
        match server.server.sfu.stats().await {
            Ok(stats) => eprintln!("  SFU stats: {stats:?}"),
            Err(e) => eprintln!("  SFU stats unavailable: {e}"),
        }
    }
    for b in ctx.browsers.drain(..) {
        let _ = tokio::time::timeout(Duration::from_secs(10), b.close()).await;
    }
    let log = front.log_text();
    drop(front);
    server.shutdown().await;
    outcome.map_err(|e| err(format!("{e}\n{log}")))
}

/// The Chromium flags of this scenario: `sportello.test` is 127.0.0.1 (port 443, the front).
fn extra() -> Vec<String> {
    vec![format!("--host-resolver-rules=MAP {HOST} 127.0.0.1")]
}

async fn open(ctx: &mut Ctx, label: &str, url: &str) -> Result<usize> {
    ctx.open_with(label, url, &extra()).await
}

/// The page came over HTTPS from the front, with a certificate Chromium accepted.
async fn over_https(b: &Browser) -> Result<()> {
    let (protocol, secure): (String, bool) =
        (b.eval("location.protocol").await?, b.eval("window.isSecureContext").await?);
    let host: String = b.eval("location.host").await?;
    if protocol != "https:" || !secure || host != HOST {
        return Err(err(format!(
            "[{}] the page is {protocol}//{host} (secure context: {secure}), expected https://{HOST}",
            b.label()
        )));
    }
    Ok(())
}

async fn booking_and_call(
    ctx: &mut Ctx,
    server: &TestServer,
    clock: &Clock,
    base: &str,
    service_id: &str,
) -> Result<()> {
    // --- the citizen books through the pages.
    let citizen = open(ctx, "citizen", &format!("{base}/prenota?servizio={service_id}")).await?;
    let b = &ctx.browsers[citizen];
    over_https(b).await?;
    let code = book_on_pages(b, "Certificato di residenza", ("Giulia", "Bianchi", CITIZEN_EMAIL)).await?;
    println!("    the citizen booked over https: {code}");

    let link = poll_until("the confirmation email in the outbox", STEP, || async {
        Ok(join_link_from_outbox(server, CITIZEN_EMAIL).ok())
    })
    .await?;
    if !link.starts_with(&format!("{base}/")) {
        return Err(err(format!("the join link {link} does not point at {base}")));
    }

    // --- ten minutes before the appointment, the citizen opens the link and waits.
    ten_minutes_before(server, clock, &code).await?;
    b.goto(&link).await?;
    over_https(b).await?;
    b.click("#join-btn").await?;
    b.wait_for(
        "window.sportello && window.sportello.waiting === true && !document.querySelector('#waiting-screen').hidden",
        STEP,
    )
    .await?;

    // --- the official logs in, admits the citizen and enters the room.
    let official = open(ctx, "official", &format!("{base}/staff")).await?;
    let o = &ctx.browsers[official];
    o.fill("#login-email", super::office::OFFICIAL_EMAIL).await?;
    o.fill("#login-password", super::office::OFFICIAL_PASSWORD).await?;
    o.click("#login-submit").await?;
    o.wait_for("document.querySelectorAll('#waiting-list [data-waiting-id]').length === 1", STEP).await?;
    o.click("#waiting-list [data-waiting-id] .admit").await?;
    let b = &ctx.browsers[citizen];
    b.wait_for("window.sportello.state === 'in-room' && window.sportello.waiting === false", STEP).await?;
    o.click("#appointments [data-appointment-id] .join-room").await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let on_join: bool = o.eval("location.pathname === '/join'").await.unwrap_or(false);
    if !on_join {
        o.switch_to_newest_window().await?;
    }
    over_https(o).await?;
    o.click("#join-btn").await?;
    o.wait_for("window.sportello && window.sportello.state === 'in-room'", STEP).await?;

    // --- both signal over wss through the front and decode each other's camera.
    let wss = format!(
        "window.sportello.ws && window.sportello.ws.readyState === 1 && window.sportello.ws.url.startsWith('wss://{HOST}/')"
    );
    let ids = [citizen, official].map(|i| &ctx.browsers[i]);
    for b in ids {
        b.wait_for(&wss, STEP).await?;
    }
    let citizen_id: String = ids[0].eval("window.sportello.participantId").await?;
    let official_id: String = ids[1].eval("window.sportello.participantId").await?;
    let (sees_official, sees_citizen) = (
        media_condition(&[&format!("{official_id}/camera")], &[]),
        media_condition(&[&format!("{citizen_id}/camera")], &[]),
    );
    tokio::try_join!(ids[0].wait_for(&sees_official, MEDIA_TIMEOUT), ids[1].wait_for(&sees_citizen, MEDIA_TIMEOUT))?;
    tokio::try_join!(
        wait_camera_progress(ids[0], &official_id, 30, MEDIA_TIMEOUT),
        wait_camera_progress(ids[1], &citizen_id, 30, MEDIA_TIMEOUT),
    )?;
    println!("    citizen and official signal over wss://{HOST}/ws and decode each other's camera");
    Ok(())
}
