//! Scenario `citizen_identity` (issue 19): a citizen books in Chromium after logging in with SPID/CIE
//! — a real OpenID provider (`tests/oidc/provider.mjs`, oidc-provider) stands in for the gateway,
//! configured through `PUT /api/admin/identity`; App IO is switched on in the settings (its messages
//! go nowhere: nothing listens at the base URL, and sending never holds up a booking).
//!
//! On `/prenota` the requester step says that login is optional and offers «Accedi con SPID o CIE»;
//! the citizen, with an office and a time already chosen, goes through the provider's login form
//! and comes back to the same step with first and last name filled in (read-only) and the email
//! filled in; they tick «Ricevi avvisi anche nell'app IO» (no fiscal code asked: the identity's is
//! shown masked), book, read that IO notices will come, and find the appointment — office,
//! service, status in words — on «Le mie prenotazioni». axe-core (WCAG 2.1 AA) on the logged-in
//! requester step and on «Le mie prenotazioni».

use std::time::Duration;

use serde_json::json;
use sportello_store::{NewUser, StaffRole};
use sportello_tests::axe::violations;
use sportello_tests::browser::{Browser, Result, err};
use sportello_tests::oidc::TempOidc;
use sportello_tests::server::{Clock, TestServer};

use super::Ctx;
use super::office::{choose_first_slot, offset_to_next_working_morning, seed};

const STEP: Duration = Duration::from_secs(30);
const ADMIN_EMAIL: &str = "ada.admin@comune.example";
const ADMIN_PASSWORD: &str = "una-password-lunga";
const CLIENT: &str = "sportello-cittadini";
const CLIENT_SECRET: &str = "citizen-secret-e2e-5d1a";
/// A valid fiscal code (its check character is right), as the eID claim carries it.
const FISCAL_NUMBER: &str = "TINIT-RSSMRA85T10A562S";

/// No WCAG 2.1 A/AA violation at all on the page as it is now.
async fn no_violations(b: &Browser, what: &str) -> Result<()> {
    let found = violations(b).await?;
    if found.is_empty() {
        return Ok(());
    }
    let list: Vec<String> =
        found.iter().map(|v| format!("{} ({}): {} at {}", v.id, v.impact, v.help, v.targets.join(", "))).collect();
    Err(err(format!("{what}: axe: {}", list.join("; "))))
}

pub async fn citizen_identity(ctx: &mut Ctx) -> Result<()> {
    let server = TestServer::start_at(Clock::offset(offset_to_next_working_morning()?), |_| {}).await;
    let service_id = seed(&server).await?;
    let base = server.url();
    let provider = TempOidc::start(&json!({
        "clients": [{"client_id": CLIENT, "client_secret": CLIENT_SECRET,
                     "redirect_uris": [format!("{base}/auth/oidc/callback")]}],
        "accounts": {"maria": {"sub": "spid-maria", "given_name": "Maria", "family_name": "Rossi",
                               "email": "maria.rossi@example.org", "email_verified": true,
                               "https://attributes.eid.gov.it/fiscal_number": FISCAL_NUMBER}},
    }))
    .await
    .map_err(err)?;

    // The administrator: the SPID/CIE gateway, then App IO.
    let store = &server.server.store;
    let now = server.server.tokens.clock().now();
    let e = |e: sportello_store::StoreError| err(format!("seeding the store: {e}"));
    let admin = store
        .create_user(&NewUser { email: ADMIN_EMAIL.into(), display_name: "Ada".into(), role: StaffRole::Admin }, now)
        .await
        .map_err(e)?;
    let hash = sportello_backoffice::secrets::hash_password_blocking(ADMIN_PASSWORD).map_err(|e| err(e.to_string()))?;
    store.set_password(&admin.id, &hash, now - 1).await.map_err(e)?;
    let http = reqwest::Client::builder().cookie_store(true).build()?;
    let r = http
        .post(format!("{base}/api/auth/login"))
        .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
        .send()
        .await?;
    if !r.status().is_success() {
        return Err(err(format!("the administrator's login: {}", r.status())));
    }
    let identity = json!({
        "local_passwords": true, "staff_oidc": null,
        "citizen_oidc": {"issuer": provider.issuer, "client_id": CLIENT, "client_secret": CLIENT_SECRET, "label": "SPID o CIE"},
    });
    let r = http.put(format!("{base}/api/admin/identity")).json(&identity).send().await?;
    if !r.status().is_success() {
        return Err(err(format!("PUT /api/admin/identity: {} {}", r.status(), r.text().await.unwrap_or_default())));
    }
    use sportello_backoffice::settings::appio;
    for (key, value) in
        [(appio::ENABLED, "true"), (appio::API_KEY, "e2e-key"), (appio::BASE_URL, "http://127.0.0.1:9/api/v1")]
    {
        store.set_setting(key, value).await.map_err(e)?;
    }

    // The requester step, not logged in: login is optional, and offered.
    let i = ctx.open("citizen", &format!("{base}/prenota?servizio={service_id}")).await?;
    let b = &ctx.browsers[i];
    b.wait_for("document.querySelector('[data-office-id] .choose-office')", STEP).await?;
    choose_first_slot(b).await?;
    let start: String = b.eval("document.querySelector('input[name=slot]:checked').value").await?;
    b.click("#next").await?;
    b.wait_for("document.querySelector('#topic-select')", STEP).await?;
    b.fill("#details", "Cambio di indirizzo").await?;
    b.click("#next").await?;
    b.wait_for("document.querySelector('#citizen-login') && document.querySelector('#appio')", STEP).await?;
    let optional: String = b.eval("document.querySelector('#login-optional').textContent").await?;
    if !optional.starts_with("Non serve accedere per prenotare.") {
        return Err(err(format!("the requester step does not say that login is optional: {optional:?}")));
    }
    println!("  step 4 says login is optional and offers «Accedi con SPID o CIE» and App IO");

    // Through the provider's login form and back, to the same step with the same choices.
    b.click("#citizen-login").await?;
    b.wait_for("document.querySelector('input[name=login]')", STEP).await?;
    b.fill("input[name=login]", "maria").await?;
    b.click("form button").await?;
    b.wait_for("location.pathname === '/prenota' && document.querySelector('#citizen-who')", STEP).await?;
    let (heading, first, last, email, read_only, details, search): (String, String, String, String, bool, String, String) = b
        .eval(
            "[document.querySelector('#step-heading').textContent, ...['#first-name', '#last-name', '#email'].map(s => document.querySelector(s).value), \
              document.querySelector('#first-name').readOnly && document.querySelector('#last-name').readOnly, \
              document.querySelector('#citizen-who').textContent, location.search]",
        )
        .await?;
    if !heading.starts_with("Passo 4 di 6")
        || (first.as_str(), last.as_str(), email.as_str()) != ("Maria", "Rossi", "maria.rossi@example.org")
        || !read_only
        || !details.contains("Hai effettuato l'accesso come Maria Rossi")
        || search != format!("?servizio={service_id}")
    {
        return Err(err(format!(
            "back from the provider: {heading:?}, fields {first:?} {last:?} {email:?} (read-only: {read_only}), {details:?}, {search:?}"
        )));
    }
    println!("  back from the provider on step 4, names and email filled in from the identity");

    // App IO with the identity's fiscal code: none asked, the code shown masked.
    b.click("#appio").await?;
    b.wait_for("document.querySelector('#appio-cf')", STEP).await?;
    let (masked, asked): (String, bool) =
        b.eval("[document.querySelector('#appio-cf').textContent, !!document.querySelector('#fiscal-code')]").await?;
    if asked || !masked.contains("RSSMRA") || masked.contains("RSSMRA85T10A562S") {
        return Err(err(format!("App IO when logged in: fiscal code field {asked}, {masked:?}")));
    }
    no_violations(b, "/prenota, step 4 logged in with App IO").await?;
    b.click("#privacy-ack").await?;
    b.click("#next").await?;
    b.wait_for("document.querySelector('#confirm')", STEP).await?;
    b.click("#confirm").await?;
    b.wait_for("document.querySelector('#booking-code')?.textContent.trim()", STEP).await?;
    let (code, io): (String, bool) = b
        .eval("[document.querySelector('#booking-code').textContent.trim(), !!document.querySelector('#appio-done')]")
        .await?;
    if !io {
        return Err(err("the confirmation does not say that IO notices will come"));
    }
    println!("  booked {code} at {start} with App IO");

    // «Le mie prenotazioni».
    b.click("#mine-link").await?;
    b.wait_for(&format!("document.querySelector('[data-code=\"{code}\"]')"), STEP).await?;
    let card: String = b.eval(&format!("document.querySelector('[data-code=\"{code}\"]').innerText")).await?;
    for said in ["Ufficio Anagrafe", "Cambio di residenza", "Videochiamata", "Confermato"] {
        if !card.contains(said) {
            return Err(err(format!("«Le mie prenotazioni» does not say {said:?}: {card:?}")));
        }
    }
    no_violations(b, "/le-mie-prenotazioni logged in").await?;
    println!("  «Le mie prenotazioni» lists {code}: office, service, mode, status in words");

    provider.stop().await;
    server.shutdown().await;
    Ok(())
}
