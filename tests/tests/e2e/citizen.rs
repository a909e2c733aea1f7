//! Scenario `citizen_pages`: the citizen's pages as a keyboard or screen-reader user meets them, in
//! real Chromium, with axe-core (no serious or critical WCAG 2.1 AA violation) on every page.
//!
//! - `/prenota`: focus lands on the step heading after every step; the slot picker shows the month's
//!   days that have free times (exactly those of the API), a day's times only once the day is chosen,
//!   and works with the arrow keys; no «nullnull»; «Scegli un orario.» goes once a time is chosen;
//!   empty required fields show «Campo obbligatorio.» (the form is `novalidate`); the confirmation
//!   says the video link is in the email and gives the office's `tel:`/`mailto:` links.
//! - `/appuntamento`: «Sposta» and «Annulla» move focus to their panel; the reminder's one-click
//!   cancel opens on the question; moving works through the same picker.
//! - `/`: the paste field opens the manage link, a booking code and the emailed join link.
//! - No horizontal scrolling at 320 CSS pixels on `/` and `/prenota`.
//! - The 404 page (lang, title, viewport, a link home; JSON under `/api/`); the staff login names the
//!   empty fields.

use std::collections::BTreeSet;
use std::time::Duration;

use fantoccini::key::Key;
use serde_json::{Value, json};
use sportello_tests::axe::assert_accessible;
use sportello_tests::browser::{Browser, Result, err, poll_until};
use sportello_tests::server::{Clock, TestServer};

use super::Ctx;
use super::office::{join_link_from_outbox, offset_to_next_working_morning, seed};

const STEP: Duration = Duration::from_secs(30);
const EMAIL: &str = "lucia.bianchi@example.org";

/// Waits until the focused element is `css` (what a screen reader would now announce).
pub(super) async fn focus_on(b: &Browser, css: &str, what: &str) -> Result<()> {
    let sel = serde_json::to_string(css)?;
    b.wait_for(&format!("document.activeElement === document.querySelector({sel})"), STEP)
        .await
        .map_err(|e| err(format!("{what}: focus is not on {css} ({e})")))
}

/// The booking step heading has the focus and reads «Passo n di 6».
pub(super) async fn on_step(b: &Browser, n: u32) -> Result<()> {
    focus_on(b, "#step-heading", &format!("step {n}")).await?;
    let text: String = b.eval("document.activeElement.textContent").await?;
    if !text.starts_with(&format!("Passo {n} di 6")) {
        return Err(err(format!("the focused heading reads {text:?}, not step {n}")));
    }
    Ok(())
}

/// Presses and releases one key (WebDriver key actions: it goes to whatever has the focus), as a
/// keyboard user would.
pub(super) async fn press(b: &Browser, key: Key) -> Result<()> {
    use fantoccini::actions::{InputSource, KeyAction, KeyActions};
    let value = char::from(key);
    let keys = KeyActions::new("keyboard".into()).then(KeyAction::Down { value }).then(KeyAction::Up { value });
    b.client().perform_actions(keys).await.map_err(|e| err(format!("key press: {e}")))
}

async fn no_nullnull(b: &Browser, what: &str) -> Result<()> {
    let text: String = b.eval("document.body.innerText").await?;
    // «null» as a word («annullare» is fine).
    if b.eval::<bool>("/\\bnull/.test(document.body.innerText)").await? {
        return Err(err(format!("{what}: the page prints «null»: {text:?}")));
    }
    Ok(())
}

/// No horizontal scrolling (WCAG 1.4.10) in a viewport of 320 CSS pixels.
async fn reflows(b: &Browser, what: &str) -> Result<()> {
    let (scroll, inner): (u32, u32) = b.eval("[document.documentElement.scrollWidth, window.innerWidth]").await?;
    if inner > 320 || scroll > inner {
        // The innermost elements that stick out, to say what to fix.
        let wide: Vec<String> = b
            .eval(
                "[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > innerWidth                    && ![...e.children].some(c => c.getBoundingClientRect().right > innerWidth))                    .slice(0, 5).map(e => `${e.tagName.toLowerCase()}#${e.id}.${e.className} ${Math.round(e.getBoundingClientRect().width)} px`)",
            )
            .await?;
        return Err(err(format!("{what}: {scroll} px of content in a {inner}-pixel viewport: {wide:?}")));
    }
    Ok(())
}

/// A viewport of 320 CSS pixels, as a 1280-pixel screen at 400 % (WCAG 1.4.10). Chromium's window
/// is at least 500 pixels wide, so the page's metrics are set through chromedriver's CDP endpoint.
async fn viewport_320(ctx: &mut Ctx, i: usize) -> Result<()> {
    let driver = ctx.driver().await?.url().to_owned();
    let session = ctx.browsers[i].client().session_id().await.map_err(|e| err(e.to_string()))?;
    let session = session.ok_or_else(|| err("no WebDriver session"))?;
    let body = json!({ "cmd": "Emulation.setDeviceMetricsOverride",
                       "params": { "width": 320, "height": 700, "deviceScaleFactor": 1, "mobile": false } });
    let reply =
        reqwest::Client::new().post(format!("{driver}/session/{session}/goog/cdp/execute")).json(&body).send().await?;
    if !reply.status().is_success() {
        return Err(err(format!("setting a 320-pixel viewport: {}", reply.text().await.unwrap_or_default())));
    }
    Ok(())
}

/// Pastes `text` into the home page's field and opens it.
async fn paste(b: &Browser, base: &str, text: &str) -> Result<()> {
    b.goto(&format!("{base}/")).await?;
    b.fill("#paste-input", text).await?;
    b.click("#paste-form button[type=submit]").await
}

/// Clicks the `.ics` button at `css` and returns the calendar file it hands the browser (the blob
/// given to `URL.createObjectURL`, captured on its way to the download).
async fn ics_download(b: &Browser, css: &str, what: &str) -> Result<String> {
    b.exec(
        "window.__ics = null; const made = URL.createObjectURL; \
         URL.createObjectURL = (blob) => { blob.text().then(t => { window.__ics = t; }); return made.call(URL, blob); };",
    )
    .await?;
    b.click(css).await?;
    b.wait_for("window.__ics !== null", STEP).await?;
    let ics: String = b.eval("window.__ics").await?;
    if !(ics.starts_with("BEGIN:VCALENDAR") && ics.contains("BEGIN:VEVENT")) {
        return Err(err(format!("{what}: the .ics button gave {ics:?}")));
    }
    Ok(ics)
}

pub async fn citizen_pages(ctx: &mut Ctx) -> Result<()> {
    let clock = Clock::offset(offset_to_next_working_morning()?);
    let server = TestServer::start_at(clock, |_| {}).await;
    let service_id = seed(&server).await?;
    let base = server.url();

    // --- the home page and the services, at 320 CSS pixels too.
    let i = ctx.open("citizen", &format!("{base}/")).await?;
    let b = &ctx.browsers[i];
    assert_accessible(b, "/").await?;
    b.goto(&format!("{base}/servizi")).await?;
    b.wait_for("document.querySelectorAll('#service-list li').length === 1", STEP).await?;
    assert_accessible(b, "/servizi").await?;
    let narrow = ctx.open("narrow", &format!("{base}/")).await?;
    viewport_320(ctx, narrow).await?;
    let n = &ctx.browsers[narrow];
    n.goto(&format!("{base}/")).await?;
    reflows(n, "/").await?;
    n.goto(&format!("{base}/prenota?servizio={service_id}")).await?;
    n.wait_for("document.querySelector('[data-office-id]')", STEP).await?;
    reflows(n, "/prenota, offices").await?;
    n.click("[data-office-id] .choose-office").await?;
    n.click("#day-calendar button[data-day]").await?;
    n.wait_for("document.querySelector('#times input[name=slot]')", STEP).await?;
    reflows(n, "/prenota, calendar and times").await?;
    println!("  / and /prenota reflow at 320 CSS pixels; axe finds nothing serious on / and /servizi");

    // --- step 1 → 2: focus on the heading; the calendar lists exactly the days with free times.
    let b = &ctx.browsers[i];
    b.goto(&format!("{base}/prenota?servizio={service_id}")).await?;
    b.wait_for("document.querySelector('[data-office-id]')", STEP).await?;
    assert_accessible(b, "/prenota, step 1").await?;
    b.click("[data-office-id] .choose-office").await?;
    on_step(b, 2).await?;
    b.wait_for("document.querySelector('#day-calendar button[data-day]')", STEP).await?;
    let api_days: Vec<String> = b
        .eval_async(&format!(
            "(async () => {{ const offices = await (await fetch('/api/public/offices?service={service_id}')).json(); \
               const month = document.querySelector('#month-select').value; \
               const r = await (await fetch(`/api/public/offices/${{offices[0].id}}/slots?service={service_id}&month=${{month}}`)).json(); \
               return [...new Set(r.slots.map(s => s.start.slice(0, 10)))]; }})()"
        ))
        .await?;
    let shown: Vec<String> =
        b.eval("[...document.querySelectorAll('#day-calendar button[data-day]')].map(x => x.dataset.day)").await?;
    if api_days.iter().collect::<BTreeSet<_>>() != shown.iter().collect::<BTreeSet<_>>() || shown.len() < 2 {
        return Err(err(format!("the calendar offers {shown:?}, the free days are {api_days:?}")));
    }
    let times_before: u32 = b.eval("document.querySelectorAll('input[name=slot]').length").await?;
    if times_before != 0 {
        return Err(err(format!("{times_before} times are listed before a day is chosen")));
    }
    no_nullnull(b, "step 2").await?;
    assert_accessible(b, "/prenota, step 2 (calendar)").await?;

    // «Avanti» without a time: the error next to the picker, focus back in the calendar.
    b.click("#next").await?;
    b.wait_for("document.querySelector('#slot-error')?.textContent === 'Scegli un orario.'", STEP).await?;
    focus_on(b, "#day-calendar button[tabindex='0']", "after «Scegli un orario.»").await?;
    no_nullnull(b, "step 2 with the error").await?;

    // Keyboard: → moves to the second free day, Enter chooses it, its times (and only those) appear.
    press(b, Key::Right).await?;
    focus_on(b, &format!("#day-calendar button[data-day='{}']", shown[1]), "after →").await?;
    press(b, Key::Enter).await?;
    focus_on(b, "#times input[name=slot]", "after choosing a day").await?;
    let times: Vec<String> = b.eval("[...document.querySelectorAll('input[name=slot]')].map(x => x.value)").await?;
    if times.is_empty() || times.iter().any(|t| !t.starts_with(&shown[1])) {
        return Err(err(format!("choosing {} lists the times {times:?}", shown[1])));
    }
    let pressed: String = b.eval("document.querySelector('#day-calendar [aria-pressed=true]').dataset.day").await?;
    if pressed != shown[1] {
        return Err(err(format!("the chosen day reads as {pressed}, not {}", shown[1])));
    }
    assert_accessible(b, "/prenota, step 2 (a day's times)").await?;
    // Space on the focused time chooses it: the stale error goes.
    press(b, Key::Space).await?;
    b.wait_for("document.querySelector('input[name=slot]:checked') && !document.querySelector('#slot-error')", STEP)
        .await?;
    no_nullnull(b, "step 2 with a time").await?;
    let after_time: Vec<String> =
        b.eval("[...document.querySelectorAll('#times ~ *')].map(x => x.id || x.tagName)").await?;
    if !after_time.iter().any(|x| x == "DIV") {
        return Err(err(format!("«Avanti» does not follow the day's times: {after_time:?}")));
    }
    println!(
        "  step 2: the calendar shows the {} free days, → and Enter choose one, its {} times follow",
        shown.len(),
        times.len()
    );

    // --- steps 3, 4 (required fields, novalidate), 5, 6.
    b.click("#next").await?;
    on_step(b, 3).await?;
    assert_accessible(b, "/prenota, step 3").await?;
    b.click("#next").await?;
    on_step(b, 4).await?;
    b.click("#next").await?;
    b.wait_for("document.querySelector('#first-name-error')?.textContent === 'Campo obbligatorio.'", STEP).await?;
    focus_on(b, "#first-name", "after an empty submit").await?;
    let errors: u32 = b.eval("[...document.querySelectorAll('.field-error')].filter(e => e.textContent === 'Campo obbligatorio.').length").await?;
    if errors != 3 {
        return Err(err(format!("{errors} «Campo obbligatorio.» for three empty required fields")));
    }
    assert_accessible(b, "/prenota, step 4 with errors").await?;
    b.fill("#first-name", "Lucia").await?;
    b.fill("#last-name", "Bianchi").await?;
    b.fill("#email", EMAIL).await?;
    b.click("#privacy-ack").await?;
    b.click("#next").await?;
    on_step(b, 5).await?;
    assert_accessible(b, "/prenota, step 5").await?;
    b.click("#confirm").await?;
    on_step(b, 6).await?;
    let done: String = b.eval("document.querySelector('#booking').innerText").await?;
    if !done.contains("Il link per entrare nella videochiamata è nell'email") {
        return Err(err(format!("the confirmation does not say where the video link is: {done:?}")));
    }
    let links: Vec<String> =
        b.eval("[...document.querySelectorAll('#office-contacts a')].map(a => a.getAttribute('href'))").await?;
    if links != ["mailto:anagrafe@comune.example", "tel:+390000000001"] {
        return Err(err(format!("the office's contacts link to {links:?}")));
    }
    assert_accessible(b, "/prenota, step 6").await?;
    let code: String = b.eval("document.querySelector('#booking-code').textContent.trim()").await?;
    let manage: String = b.eval("document.querySelector('a[href^=\"/appuntamento\"]').href").await?;
    ics_download(b, "#ics", "/prenota, step 6").await?;
    println!("  steps 3–6 focus their heading; required fields say «Campo obbligatorio.»; booked {code}");
    // The confirmation's join link (read now: moving sends a second one).
    let join =
        poll_until("the confirmation email", STEP, || async { Ok(join_link_from_outbox(&server, EMAIL).ok()) }).await?;

    // --- the paste field: the manage link, then /appuntamento's panels.
    paste(b, &base, &manage).await?;
    b.wait_for(
        "location.pathname === '/appuntamento' && document.querySelector('#status')?.textContent === 'Confermato'",
        STEP,
    )
    .await?;
    assert_accessible(b, "/appuntamento").await?;
    ics_download(b, "#ics", "/appuntamento").await?;
    b.click("#cancel").await?;
    focus_on(b, "#cancel-question", "after «Annulla»").await?;
    b.click("#move").await?;
    focus_on(b, "#move-title", "after «Sposta»").await?;
    b.wait_for("document.querySelector('#day-calendar button[data-day]')", STEP).await?;
    if b.eval::<u32>("document.querySelectorAll('input[name=slot]').length").await? != 0 {
        return Err(err("/appuntamento lists times before a day is chosen"));
    }
    b.click("#day-calendar button[data-day]").await?;
    focus_on(b, "#times input[name=slot]", "/appuntamento, after choosing a day").await?;
    assert_accessible(b, "/appuntamento, moving").await?;
    b.click("#times label:last-child input").await?;
    b.click("#confirm").await?;
    b.wait_for("document.querySelector('#manage-note')?.textContent.startsWith('Appuntamento spostato')", STEP).await?;
    no_nullnull(b, "/appuntamento").await?;
    println!("  the pasted manage link opens the booking; «Annulla» and «Sposta» focus their panel; moved");

    // The reminder's one-click cancel: the question has the focus as the page opens.
    let cancel_link = manage.replacen("#", "&azione=annulla#", 1);
    b.goto(&cancel_link).await?;
    focus_on(b, "#cancel-question", "the reminder's cancel link").await?;

    // A booking code as typed (lower case, no dash): the page names it and says which link opens it.
    paste(b, &base, &code.replace('-', "").to_lowercase()).await?;
    b.wait_for(&format!("document.querySelector('#manage-missing')?.textContent.includes('{code}')"), STEP).await?;
    // The emailed join link.
    paste(b, &base, &join).await?;
    b.wait_for("location.pathname === '/join' || location.pathname.startsWith('/a/')", STEP).await?;
    // Anything else: the error, not a navigation.
    paste(b, &base, "https://example.org/nothing").await?;
    b.wait_for("!document.querySelector('#paste-error').hidden && location.pathname === '/'", STEP).await?;
    println!("  the paste field opens a booking code and the join link, and refuses anything else");

    // --- the 404 page, and JSON under /api.
    b.goto(&format!("{base}/no-such-page")).await?;
    let page: Value = b
        .eval(
            "({ lang: document.documentElement.lang, title: document.title, \
                viewport: !!document.querySelector('meta[name=viewport]'), home: !!document.querySelector('a[href=\"/\"]') })",
        )
        .await?;
    if page["lang"] != "it"
        || page["title"].as_str().is_none_or(str::is_empty)
        || page["viewport"] != true
        || page["home"] != true
    {
        return Err(err(format!("the 404 page: {page}")));
    }
    assert_accessible(b, "the 404 page").await?;
    let api_type: String =
        b.eval_async("fetch('/api/no-such-thing').then(r => `${r.status} ${r.headers.get('content-type')}`)").await?;
    if !api_type.starts_with("404 application/json") {
        return Err(err(format!("an unknown /api/ address answers {api_type}")));
    }

    // --- the staff login names what is missing.
    b.goto(&format!("{base}/staff")).await?;
    b.click("#login-submit").await?;
    b.wait_for("document.querySelector('#login-error').textContent === \"Inserisci l'email e la password.\"", STEP)
        .await?;
    b.fill("#login-email", "anna.rossi@comune.example").await?;
    b.click("#login-submit").await?;
    b.wait_for("document.querySelector('#login-error').textContent === 'Inserisci la password.'", STEP).await?;
    focus_on(b, "#login-password", "the staff login without a password").await?;
    println!("  the 404 page has lang, title, viewport and a way home; the staff login names the empty field");
    Ok(())
}
