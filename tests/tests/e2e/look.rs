//! Scenario `look_and_access` (issue 17): every page as the municipality's site, in Chromium and in
//! Firefox ESR, each at a desktop (1280×800) and a phone (390×844) width.
//!
//! Before the pages, an administrator sets the municipality through the API
//! (`PUT /api/admin/settings`, the crest with `PUT /api/admin/crest`). Then, in each browser (one
//! window whose viewport is switched between the widths: Chromium's window, Firefox's viewport through
//! WebDriver BiDi — a headless Firefox window is never narrower than 500 px), on every page and
//! booking step — `/`, `/servizi`, `/prenota`
//! (office, day and time, details, requester, summary, confirmation), `/appuntamento` with the real
//! booking, `/le-mie-prenotazioni` (not logged in), `/privacy`, `/note-legali`, the 404 page,
//! `/live/<id>`, the lobby of `/join` (device check), the waiting room, the room with a chat
//! message, `/staff` (login and desk), `/staff/admin`, `/staff/calendario`:
//! - axe-core with the WCAG 2.1 AA tags finds no violation at all, at both widths;
//! - every `navigation` and `resource` entry of the page has the page's own origin;
//! - a screenshot per width: `target/e2e-artifacts/look/<browser>-<width>-<nn>-<step>.png`;
//! - on the citizen pages: the header shows the municipality's name and its crest (loaded), the
//!   document title names it, the footer links the accessibility statement
//!   (`data-element="accessibility-link"`, the configured URL) and the privacy notice
//!   (`data-element="privacy-policy-link"` → `/privacy`).
//!
//! Also: the home page has Titillium Web loaded (served by the server itself); `/privacy` names the
//! configured data controller and DPO; `/servizi` has `a[data-element="appointment-booking"]` to
//! `/prenota`. The whole booking (from `/prenota` to the confirmation) and the way in (from the
//! emailed link through the device check into the waiting room) are done with WebDriver key
//! actions only — Tab, Enter, Space and typed characters — and every element the keyboard reaches
//! shows its focus (an outline or a box-shadow, on the element or its label). Chromium walks at
//! the desktop width, Firefox at the phone width; both widths are checked at every step.
//!
//! Failures that leave the walk possible (a violation, a foreign request, an invisible focus, a
//! missing header part) are collected and reported together at the end; a step the walk cannot
//! pass stops that browser's walk (the other browser still runs).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use fantoccini::key::Key;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use sportello_store::{NewUser, StaffRole};
use sportello_tests::axe::violations;
use sportello_tests::browser::{Browser, Engine, Geckodriver, Result, artifacts_dir, err, poll_until};
use sportello_tests::server::{Clock, TestServer};

use super::citizen::{focus_on, on_step, press};
use super::office::{
    OFFICIAL_EMAIL, OFFICIAL_PASSWORD, join_link_from_outbox, offset_to_next_working_morning, seed, ten_minutes_before,
};
use super::{Ctx, JOIN_TIMEOUT};

const STEP: Duration = Duration::from_secs(30);
/// Tab presses allowed to reach an element before the walk gives up.
const MAX_TABS: usize = 60;

const ADMIN_EMAIL: &str = "ada.admin@comune.example";
const ADMIN_PASSWORD: &str = "una-password-lunga";

// The municipality, as its administrator configures it.
const NAME: &str = "Comune di Vallebruna";
const CONTROLLER: &str = "Comune di Vallebruna, in persona del Sindaco pro tempore";
const DPO_EMAIL: &str = "rpd@comune.vallebruna.example";
const ACCESSIBILITY_URL: &str = "https://form.agid.gov.it/view/vallebruna-dichiarazione";
/// A crest with an intrinsic size (Firefox gives an SVG without one a natural width of 0).
const CREST_SVG: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" width="64" height="80" viewBox="0 0 64 80"><path d="M4 4h56v40c0 18-14 30-28 34C18 74 4 62 4 44z" fill="#0066cc" stroke="#003366" stroke-width="4"/><circle cx="32" cy="36" r="12" fill="#ffcc00"/></svg>"##;

fn settings() -> Value {
    json!({
        "municipality_name": NAME,
        "patron_day": "",
        "min_notice_minutes": 0,
        "horizon_days": 90,
        "owner_name": NAME,
        "owner_url": "https://www.comune.vallebruna.example",
        "website": "https://www.comune.vallebruna.example",
        "address": "Piazza del Municipio 1, 00000 Vallebruna",
        "phone": "+39 0000 000000",
        "email": "protocollo@comune.vallebruna.example",
        "pec": "protocollo@pec.comune.vallebruna.example",
        "vat_number": "00000000000",
        "controller": CONTROLLER,
        "dpo_email": DPO_EMAIL,
        "accessibility_url": ACCESSIBILITY_URL,
    })
}

/// What a page gets checked for besides axe, origins and the screenshots.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A page of the municipality's site: header (name, crest), title, footer links.
    Citizen,
    /// The room and the staff pages.
    Plain,
}

#[derive(Clone, Copy)]
struct Width {
    w: u32,
    h: u32,
}

const DESKTOP: Width = Width { w: 1280, h: 800 };
const PHONE: Width = Width { w: 390, h: 844 };

/// Every `navigation` and `resource` entry whose origin is not the page's own.
const ORIGIN_PROBE: &str = "(() => { const own = location.origin; \
  const entries = [...performance.getEntriesByType('navigation'), ...performance.getEntriesByType('resource')]; \
  const foreign = entries.map(e => e.name).filter(n => { try { const u = new URL(n); \
    return !['data:', 'blob:'].includes(u.protocol) && u.origin !== own; } catch { return true; } }); \
  return { own, count: entries.length, foreign: [...new Set(foreign)] }; })()";

/// The header's name and crest, the document title, the footer's two links.
const FRAME_PROBE: &str = "(() => { \
  const banner = document.querySelector('header, [role=banner]'); \
  const title = document.querySelector('.it-brand-title') || banner?.querySelector('a[href=\"/\"]'); \
  const crest = [...document.querySelectorAll('header img, [role=banner] img')] \
    .find(i => new URL(i.currentSrc || i.src, location.href).pathname === '/crest'); \
  const link = (name) => { const a = document.querySelector(`[data-element=\"${name}\"]`); \
    return a && { href: a.getAttribute('href'), path: a.href ? new URL(a.href).pathname : null, \
                  inFooter: !!a.closest('footer, [role=contentinfo]') }; }; \
  return { brand: title ? title.innerText : null, banner: banner ? banner.innerText.slice(0, 200) : null, \
           crest: crest ? { complete: crest.complete, width: crest.naturalWidth, alt: crest.getAttribute('alt') } : null, \
           title: document.title, accessibility: link('accessibility-link'), privacy: link('privacy-policy-link') }; })()";

/// Whether the focused element shows its focus (waiting out a short transition), what it is, and
/// whether it is the target: `{TARGET}` is a JS expression over `e`, the focused element.
const FOCUS_PROBE: &str = "new Promise(resolve => { \
  const shows = (s) => (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0 \
      && !/^(transparent|rgba\\([^)]*,\\s*0\\))$/.test(s.outlineColor)) \
    || (s.boxShadow !== 'none' && /(^|\\s)[1-9][\\d.]*px/.test(s.boxShadow)); \
  const probe = () => { const e = document.activeElement; \
    if (!e || e === document.body || e === document.documentElement) return { ok: false, hit: false, what: 'the page itself (nothing focused)', style: '' }; \
    const parts = [e, ...(e.labels ? [...e.labels] : [])]; \
    const ok = parts.some(p => [null, '::before', '::after'].some(ps => shows(getComputedStyle(p, ps)))); \
    const s = getComputedStyle(e); \
    const name = (e.getAttribute('aria-label') || e.innerText || e.value || '').trim().replace(/\\s+/g, ' ').slice(0, 40); \
    const what = `${e.tagName.toLowerCase()}${e.id ? '#' + e.id : ''}${e.name ? '[name=' + e.name + ']' : ''}` \
      + `${e.dataset.element ? '[data-element=' + e.dataset.element + ']' : ''} «${name}»`; \
    return { ok, hit: !!(e => ({TARGET}))(e), what, style: `outline ${s.outlineStyle} ${s.outlineWidth} ${s.outlineColor}; box-shadow ${s.boxShadow}` }; }; \
  const t0 = performance.now(); \
  const tick = () => { const r = probe(); if (r.ok || performance.now() - t0 > 700) resolve(r); else setTimeout(tick, 50); }; \
  tick(); })";

/// The privacy checkbox of the booking's requester step, found by its label.
const PRIVACY_BOX: &str =
    "e.type === 'checkbox' && [...(e.labels || [])].some(l => /informativa privacy/i.test(l.textContent))";

/// The failures collected over the whole scenario.
struct Look {
    failures: Vec<String>,
    /// What was already reported (an engine's unfocusable element, a viewport): once is enough.
    reported: BTreeSet<String>,
    dir: PathBuf,
    shots: usize,
    axe_runs: usize,
    focus_checks: usize,
}

impl Look {
    fn fail(&mut self, what: String) {
        eprintln!("  FAIL {what}");
        self.failures.push(what);
    }
}

/// One browser's walk: the browser, its name, the width it walks at, the step counter.
struct Walk<'a> {
    b: &'a Browser,
    engine: &'static str,
    work: Width,
    other: Width,
    /// Chromium: the height of the window's bars above the viewport.
    bars: Option<u32>,
    n: usize,
    look: &'a mut Look,
}

impl Walk<'_> {
    /// Sets the viewport to `width` and waits for the layout to follow: Chromium's window, Firefox's
    /// viewport through WebDriver BiDi (its headless window is never narrower than 500 pixels).
    async fn resize(&mut self, width: Width) -> Result<()> {
        match self.b.engine() {
            Engine::Chromium => {
                // The window's own bars (headless too) above the viewport, measured once at the
                // start (at a phone's width, `outerWidth` stays at Chromium's 500-pixel minimum).
                if self.bars.is_none() {
                    self.bars = Some(self.b.eval("outerHeight - innerHeight").await?);
                }
                self.b
                    .client()
                    .set_window_size(width.w, width.h + self.bars.unwrap_or(0))
                    .await
                    .map_err(|e| err(format!("[{}] window size {}×{}: {e}", self.engine, width.w, width.h)))?
            }
            Engine::Firefox => bidi_viewport(self.b, width).await?,
        }
        let inner: u32 = self
            .b
            .eval_async("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(innerWidth))))")
            .await?;
        if inner.abs_diff(width.w) > 20 && self.look.reported.insert(format!("{} viewport {}", self.engine, width.w)) {
            self.look.fail(format!("{}: the viewport set to {} px is {inner} px wide", self.engine, width.w));
        }
        Ok(())
    }

    /// The checks of one step of the walk, at both widths, ending at the walking width.
    async fn step(&mut self, name: &str, kind: Kind) -> Result<()> {
        let t0 = Instant::now();
        self.n += 1;
        let at = format!("{} {:02}-{name}", self.engine, self.n);
        let origins: Value = self.b.eval(ORIGIN_PROBE).await?;
        if origins["foreign"].as_array().is_none_or(|f| !f.is_empty()) || origins["count"].as_u64() == Some(0) {
            self.look.fail(format!(
                "{at}: requests outside {} ({} entries): {}",
                origins["own"], origins["count"], origins["foreign"]
            ));
        }
        if kind == Kind::Citizen {
            let frame: Value = self.b.eval(FRAME_PROBE).await?;
            if !frame["title"].as_str().is_some_and(|t| t.contains(NAME)) {
                self.look.fail(format!("{at}: the document title {} does not name «{NAME}»", frame["title"]));
            }
            let a11y = &frame["accessibility"];
            if a11y["href"] != ACCESSIBILITY_URL || a11y["inFooter"] != true {
                self.look.fail(format!(
                    "{at}: no footer link data-element=\"accessibility-link\" to {ACCESSIBILITY_URL}: {a11y}"
                ));
            }
            let privacy = &frame["privacy"];
            if privacy["path"] != "/privacy" || privacy["inFooter"] != true {
                self.look
                    .fail(format!("{at}: no footer link data-element=\"privacy-policy-link\" to /privacy: {privacy}"));
            }
        }
        for width in [self.other, self.work] {
            self.resize(width).await?;
            let here = format!("{at} at {} px", width.w);
            self.look.axe_runs += 1;
            match violations(self.b).await {
                Ok(found) if found.is_empty() => {}
                Ok(found) => {
                    let list: Vec<String> = found
                        .iter()
                        .map(|v| format!("{} ({}): {} at {}", v.id, v.impact, v.help, v.targets.join(", ")))
                        .collect();
                    self.look.fail(format!("{here}: axe: {}", list.join("; ")));
                }
                Err(e) => self.look.fail(format!("{here}: axe did not run: {e}")),
            }
            if kind == Kind::Citizen {
                self.header(&here).await?;
            }
            let file = format!("{}-{}-{:02}-{name}.png", self.engine, width.w, self.n);
            let path = self.look.dir.join(&file);
            match self.b.screenshot(&path).await {
                Ok(()) => self.look.shots += 1,
                Err(e) => self.look.fail(format!("{here}: screenshot {file}: {e}")),
            }
        }
        println!("    {at} ({:.1} s)", t0.elapsed().as_secs_f64());
        Ok(())
    }

    /// The header shows the municipality's name and its crest, loaded.
    async fn header(&mut self, here: &str) -> Result<()> {
        // Until the crest has loaded or failed (no crest at all: at once).
        let settled = "[...document.querySelectorAll('header img, [role=banner] img')] \
            .filter(i => new URL(i.currentSrc || i.src, location.href).pathname === '/crest').every(i => i.complete)";
        self.b.wait_for(settled, Duration::from_secs(5)).await.ok();
        let frame: Value = self.b.eval(FRAME_PROBE).await?;
        let loaded = frame["crest"]["complete"] == true && frame["crest"]["width"].as_u64().is_some_and(|w| w > 0);
        if !frame["brand"].as_str().is_some_and(|t| t.contains(NAME)) {
            self.look.fail(format!(
                "{here}: the header's brand title reads {} (banner: {}), not «{NAME}»",
                frame["brand"], frame["banner"]
            ));
        }
        if !loaded {
            self.look.fail(format!("{here}: no loaded crest (img src /crest) in the header: {}", frame["crest"]));
        }
        Ok(())
    }

    /// Presses Tab until the focused element satisfies `target` (a JS expression over `e`), checking
    /// at every element on the way that its focus shows. Already there: no key.
    async fn tab_to(&mut self, target: &str, what: &str) -> Result<()> {
        if self.focus(target, what).await? {
            return Ok(());
        }
        for _ in 0..MAX_TABS {
            press(self.b, Key::Tab).await?;
            if self.focus(target, what).await? {
                return Ok(());
            }
        }
        let at: String = self.b.eval("location.pathname").await?;
        Err(err(format!("[{}] {MAX_TABS} presses of Tab on {at} never reached {what} ({target})", self.engine)))
    }

    /// Checks that the focused element (if any) shows its focus; returns whether it is `target`.
    async fn focus(&mut self, target: &str, during: &str) -> Result<bool> {
        let probe: Value = self.b.eval_async(&FOCUS_PROBE.replace("{TARGET}", target)).await?;
        self.look.focus_checks += 1;
        let what = probe["what"].as_str().unwrap_or("?").to_owned();
        let nothing = what.starts_with("the page itself");
        if probe["ok"] != true && !nothing && self.look.reported.insert(format!("{} {what}", self.engine)) {
            let width: u32 = self.b.eval("innerWidth").await?;
            self.look.fail(format!(
                "{} at {width} px: the focus on {what} does not show (going to {during}): {}",
                self.engine,
                probe["style"].as_str().unwrap_or_default()
            ));
        }
        Ok(probe["hit"] == true)
    }

    /// Types `text` into the focused element, key by key.
    async fn type_text(&mut self, text: &str) -> Result<()> {
        use fantoccini::actions::{InputSource, KeyAction, KeyActions};
        let mut keys = KeyActions::new("keyboard".into());
        for c in text.chars() {
            keys = keys.then(KeyAction::Down { value: c }).then(KeyAction::Up { value: c });
        }
        self.b.client().perform_actions(keys).await.map_err(|e| err(format!("[{}] typing: {e}", self.engine)))
    }

    /// Goes to `path` and waits for `ready` (a JS condition).
    async fn open(&mut self, base: &str, path: &str, ready: &str) -> Result<()> {
        self.b.goto(&format!("{base}{path}")).await?;
        self.b
            .wait_for(&format!("document.readyState === 'complete' && ({ready})"), STEP)
            .await
            .map_err(|e| err(format!("[{}] {path} is not ready: {e}", self.engine)))
    }
}

/// Firefox's viewport through WebDriver BiDi (`browsingContext.setViewport` on the top-level
/// browsing context; it holds across navigations).
async fn bidi_viewport(b: &Browser, width: Width) -> Result<()> {
    let url = b
        .client()
        .capabilities()
        .and_then(|c| c.get("webSocketUrl"))
        .and_then(Value::as_str)
        .ok_or_else(|| err("Firefox was started without WebDriver BiDi (webSocketUrl)"))?
        .to_owned();
    let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str()).await?;
    let mut call = async |id: u64, method: &str, params: Value| -> Result<Value> {
        let msg = json!({ "id": id, "method": method, "params": params }).to_string();
        ws.send(tokio_tungstenite::tungstenite::Message::text(msg)).await?;
        loop {
            let Some(reply) =
                tokio::time::timeout(STEP, ws.next()).await.map_err(|_| err(format!("BiDi {method}: no reply")))?
            else {
                return Err(err(format!("BiDi {method}: the websocket closed")));
            };
            let reply: Value = match reply? {
                tokio_tungstenite::tungstenite::Message::Text(t) => serde_json::from_str(t.as_str())?,
                _ => continue,
            };
            if reply["id"] == id {
                return if reply["type"] == "success" {
                    Ok(reply["result"].clone())
                } else {
                    Err(err(format!("BiDi {method}: {reply}")))
                };
            }
        }
    };
    let tree = call(1, "browsingContext.getTree", json!({ "maxDepth": 0 })).await?;
    let context = tree["contexts"][0]["context"].clone();
    call(
        2,
        "browsingContext.setViewport",
        json!({ "context": context, "viewport": { "width": width.w, "height": width.h } }),
    )
    .await?;
    let _ = ws.close(None).await;
    Ok(())
}

/// A logged-in API client (the session cookie kept).
async fn login(base: &str, email: &str, password: &str) -> Result<reqwest::Client> {
    let client = reqwest::Client::builder().cookie_store(true).build()?;
    let r = client
        .post(format!("{base}/api/auth/login"))
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await?;
    if !r.status().is_success() {
        return Err(err(format!("login of {email}: {} {}", r.status(), r.text().await.unwrap_or_default())));
    }
    Ok(client)
}

/// The municipality's settings and crest, as its administrator sets them.
async fn configure(base: &str, admin: &reqwest::Client, look: &mut Look) -> Result<()> {
    let want = settings();
    let r = admin.put(format!("{base}/api/admin/settings")).json(&want).send().await?;
    let status = r.status();
    let body = r.text().await.unwrap_or_default();
    if !status.is_success() {
        look.fail(format!("PUT /api/admin/settings: {status} {body}"));
    } else {
        let got: Value = admin.get(format!("{base}/api/admin/settings")).send().await?.json().await?;
        let lost: Vec<&str> = want
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, v)| got.get(k.as_str()) != Some(v))
            .map(|(k, _)| k.as_str())
            .collect();
        if !lost.is_empty() {
            look.fail(format!("GET /api/admin/settings after the PUT lacks {lost:?}: {got}"));
        }
    }
    let r = admin
        .put(format!("{base}/api/admin/crest"))
        .header(reqwest::header::CONTENT_TYPE, "image/svg+xml")
        .body(CREST_SVG)
        .send()
        .await?;
    if r.status() != reqwest::StatusCode::NO_CONTENT {
        look.fail(format!("PUT /api/admin/crest: {} {}", r.status(), r.text().await.unwrap_or_default()));
    }
    let r = reqwest::get(format!("{base}/crest")).await?;
    let ctype = r.headers().get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let status = r.status();
    // The server cleans an SVG before keeping it: the same picture, not necessarily the same bytes.
    let body = r.text().await.unwrap_or_default();
    if !status.is_success() || !ctype.starts_with("image/svg+xml") || !body.contains("<svg") {
        look.fail(format!("GET /crest: {status} {ctype:?}, not the uploaded SVG: {body:.200}"));
    }
    for (path, want) in [("/note-legali", 200), ("/pagina-che-non-esiste", 404)] {
        let got = reqwest::get(format!("{base}{path}")).await?.status();
        if got.as_u16() != want {
            look.fail(format!("GET {path}: {got}, expected {want}"));
        }
    }
    Ok(())
}

/// The admin who sets the municipality (the office, its official and a video service come from
/// `office::seed`).
async fn seed_admin(server: &TestServer) -> Result<()> {
    let store = &server.server.store;
    let now = server.server.tokens.clock().now();
    let e = |e: sportello_store::StoreError| err(format!("seeding the store: {e}"));
    let admin = store
        .create_user(
            &NewUser { email: ADMIN_EMAIL.into(), display_name: "Ada Admin".into(), role: StaffRole::Admin },
            now,
        )
        .await
        .map_err(e)?;
    let hash = sportello_backoffice::secrets::hash_password_blocking(ADMIN_PASSWORD).map_err(|e| err(e.to_string()))?;
    store.set_password(&admin.id, &hash, now - 1).await.map_err(e)?;
    Ok(())
}

struct Env<'a> {
    server: &'a TestServer,
    clock: &'a Clock,
    base: String,
    official: reqwest::Client,
    council: String,
}

pub async fn look_and_access(ctx: &mut Ctx) -> Result<()> {
    let started = Instant::now();
    let clock = Clock::offset(offset_to_next_working_morning()?);
    let server = TestServer::start_at(clock.clone(), |c| c.reconnect_grace = Duration::from_secs(15)).await;
    seed(&server).await?;
    seed_admin(&server).await?;
    let council = server
        .seed_council(&["Consigliera Anna"], &["Bilancio di previsione"])
        .await
        .map_err(|e| err(format!("seeding the council: {e}")))?;
    let base = server.url();
    let dir = artifacts_dir().join("look");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let mut look =
        Look { failures: Vec::new(), reported: BTreeSet::new(), dir, shots: 0, axe_runs: 0, focus_checks: 0 };

    let admin = login(&base, ADMIN_EMAIL, ADMIN_PASSWORD).await?;
    configure(&base, &admin, &mut look).await?;
    let official = login(&base, OFFICIAL_EMAIL, OFFICIAL_PASSWORD).await?;
    let env = Env { server: &server, clock: &clock, base, official, council: council.session.id.clone() };

    for engine in ["chromium", "firefox"] {
        let t0 = Instant::now();
        let i = match engine {
            "chromium" => ctx.open("look-chromium", "about:blank").await?,
            _ => {
                ctx.browsers.push(Geckodriver::find()?.launch_with_bidi("look-firefox").await?);
                ctx.browsers.len() - 1
            }
        };
        let (work, other) = if engine == "chromium" { (DESKTOP, PHONE) } else { (PHONE, DESKTOP) };
        let b = &ctx.browsers[i];
        let mut walk = Walk { b, engine, work, other, bars: None, n: 0, look: &mut look };
        walk.resize(work).await?;
        let outcome = walk_pages(&mut walk, &env).await;
        if let Err(e) = outcome {
            let path = look.dir.join(format!("{engine}-stopped.png"));
            let _ = b.screenshot(&path).await;
            look.fail(format!("{engine}: the walk stopped: {e} (screenshot {})", path.display()));
        }
        println!("  {engine}: walked in {:.1} s", t0.elapsed().as_secs_f64());
        let b = ctx.browsers.remove(i);
        let _ = tokio::time::timeout(Duration::from_secs(10), b.close()).await;
    }

    println!(
        "  {} screenshots in {} ({} axe runs, {} focus checks, {:.1} s)",
        look.shots,
        look.dir.display(),
        look.axe_runs,
        look.focus_checks,
        started.elapsed().as_secs_f64()
    );
    if look.failures.is_empty() {
        return Ok(());
    }
    Err(err(format!("{} failures:\n  - {}", look.failures.len(), look.failures.join("\n  - "))))
}

/// One browser through every page.
async fn walk_pages(w: &mut Walk<'_>, env: &Env<'_>) -> Result<()> {
    let base = env.base.as_str();
    let engine = w.engine;

    // --- the home page, with the site's own fonts.
    w.open(base, "/", "document.querySelector('main')").await?;
    let fonts: Value = w
        .b
        .eval_async(
            "document.fonts.ready.then(() => ({ check: document.fonts.check('16px \"Titillium Web\"'), \
               faces: [...document.fonts].filter(f => /titillium/i.test(f.family)).map(f => `${f.family} ${f.weight} ${f.status}`) }))",
        )
        .await?;
    let loaded =
        fonts["faces"].as_array().is_some_and(|f| f.iter().any(|x| x.as_str().is_some_and(|s| s.ends_with("loaded"))));
    if fonts["check"] != true || !loaded {
        w.look.fail(format!("{engine}: Titillium Web is not loaded on the home page: {fonts}"));
    }
    w.step("home", Kind::Citizen).await?;
    self_test(w).await?;

    // --- the services, with the way to book.
    w.open(base, "/servizi", "document.querySelectorAll('#service-list li').length > 0").await?;
    let booking: Vec<String> = w
        .b
        .eval("[...document.querySelectorAll('a[data-element=\"appointment-booking\"][href]')].map(a => new URL(a.href).pathname)")
        .await?;
    if booking.is_empty() || booking.iter().any(|p| p != "/prenota") {
        w.look
            .fail(format!("{engine}: /servizi: the links a[data-element=\"appointment-booking\"] lead to {booking:?}"));
    }
    w.step("servizi", Kind::Citizen).await?;

    // --- the walk-in video desks (docs/walkin.md).
    w.open(base, "/sportello", "document.querySelector('#desk-list, #no-desk')").await?;
    w.step("sportello", Kind::Citizen).await?;

    // --- the booking, by keyboard only.
    let email = format!("lucia.{engine}@example.org");
    let code = book_by_keyboard(w, base, &email).await?;
    println!("  {engine}: booked {code} by keyboard");

    // --- the manage page of that booking.
    let manage: String = w.b.eval("document.querySelector('a[href^=\"/appuntamento\"]').href").await?;
    w.b.goto(&manage).await?;
    w.b.wait_for(&format!("document.querySelector('main')?.innerText.includes('{code}')"), STEP).await?;
    w.step("appuntamento", Kind::Citizen).await?;

    // --- a citizen's bookings: without a SPID/CIE login the page says why it lists nothing.
    w.open(base, "/le-mie-prenotazioni", "document.querySelector('#mine-out')").await?;
    w.step("le-mie-prenotazioni", Kind::Citizen).await?;

    // --- privacy, legal notes, an unknown address, a council session's public page.
    w.open(base, "/privacy", "document.querySelector('main')").await?;
    let text: String = w.b.eval("document.querySelector('main').innerText").await?;
    for (what, words) in [("data controller", CONTROLLER), ("DPO email", DPO_EMAIL)] {
        if !text.contains(words) {
            w.look.fail(format!("{engine}: /privacy does not name the configured {what} «{words}»"));
        }
    }
    w.step("privacy", Kind::Citizen).await?;
    w.open(base, "/note-legali", "document.querySelector('main')").await?;
    w.step("note-legali", Kind::Citizen).await?;
    w.open(base, "/pagina-che-non-esiste", "document.querySelector('main')").await?;
    w.step("404", Kind::Citizen).await?;
    w.open(base, &format!("/live/{}", env.council), "document.querySelector('main')?.innerText.trim()").await?;
    w.b.wait_for("document.querySelector('[role=status]')?.textContent.trim()", STEP).await.ok();
    w.step("live", Kind::Citizen).await?;

    // --- the emailed link, the device check and the waiting room, by keyboard only.
    let link =
        poll_until("the confirmation email", STEP, || async { Ok(join_link_from_outbox(env.server, &email).ok()) })
            .await?;
    ten_minutes_before(env.server, env.clock, &code).await?;
    w.b.goto(&link).await?;
    w.b.wait_for("window.sportello && window.sportello.netcheck !== null", JOIN_TIMEOUT).await?;
    w.step("ingresso-verifica-dispositivi", Kind::Citizen).await?;
    w.tab_to("e.id === 'join-btn'", "«Entra»").await?;
    press(w.b, Key::Enter).await?;
    w.b.wait_for(
        "window.sportello && window.sportello.waiting === true && !document.querySelector('#waiting-screen').hidden",
        STEP,
    )
    .await?;
    w.focus("false", "the waiting room").await?;
    w.step("sala-attesa", Kind::Plain).await?;

    // --- admitted (the official, through the API), a chat message, the chat panel open.
    let appointment = env
        .server
        .server
        .store
        .appointment_by_code(&code)
        .await
        .map_err(|e| err(e.to_string()))?
        .ok_or_else(|| err(format!("booking {code} is not in the store")))?;
    let waiting: Value = poll_until("the citizen in the official's waiting list", STEP, || async {
        let list: Value = env.official.get(format!("{base}/api/staff/waiting")).send().await?.json().await?;
        Ok(list.as_array().and_then(|l| l.iter().find(|x| x["appointment_id"] == appointment.id.as_str()).cloned()))
    })
    .await?;
    let room = waiting["room"].as_str().unwrap_or_default();
    let r = env
        .official
        .post(format!("{base}/api/staff/rooms/{room}/admit"))
        .json(&json!({ "participant_id": waiting["participant_id"] }))
        .send()
        .await?;
    if !r.status().is_success() {
        return Err(err(format!("admitting: {} {}", r.status(), r.text().await.unwrap_or_default())));
    }
    w.b.wait_for("window.sportello.state === 'in-room' && window.sportello.waiting === false", STEP).await?;
    if w.b
        .eval::<Option<String>>("document.querySelector('#btn-chat')?.getAttribute('aria-expanded')")
        .await?
        .as_deref()
        != Some("true")
    {
        w.b.click("#btn-chat").await?;
    }
    w.b.fill("#chat-input", "Buongiorno, sono in attesa dell'operatore").await?;
    w.b.click("#chat-send").await?;
    w.b.wait_for("document.querySelectorAll('#chat-list li').length >= 1", STEP).await?;
    w.step("stanza-chat", Kind::Plain).await?;

    // --- the staff pages: the login, the desk, administration, the calendar.
    w.open(base, "/staff", "!document.querySelector('#login-view').hidden").await?;
    w.step("staff-accesso", Kind::Plain).await?;
    w.b.fill("#login-email", ADMIN_EMAIL).await?;
    w.b.fill("#login-password", ADMIN_PASSWORD).await?;
    w.b.click("#login-submit").await?;
    w.b.wait_for("!document.querySelector('#dash-view').hidden", STEP).await?;
    w.step("staff-scrivania", Kind::Plain).await?;
    w.open(base, "/staff/admin", "!document.querySelector('#admin-view').hidden").await?;
    w.step("staff-amministrazione", Kind::Plain).await?;
    w.open(base, "/staff/calendario", "!document.querySelector('#cal-view').hidden").await?;
    w.step("staff-calendario", Kind::Plain).await?;
    w.open(base, "/staff/dati", "!document.querySelector('#fig-view').hidden").await?;
    w.step("staff-dati", Kind::Plain).await?;
    Ok(())
}

/// The checks can fail in this browser: axe finds an image without a text alternative, and the
/// focus probe sees an element whose focus is hidden. Both planted on the home page, then removed.
async fn self_test(w: &mut Walk<'_>) -> Result<()> {
    w.b.exec(
        "const i = document.createElement('img'); i.id = 'look-probe-img'; i.src = '/web/shared/favicon.svg'; \
         const s = document.createElement('span'); s.id = 'look-probe-focus'; s.tabIndex = 0; s.textContent = 'x'; \
         for (const p of ['outline', 'box-shadow']) s.style.setProperty(p, 'none', 'important'); \
         document.querySelector('main').append(i, s); s.focus();",
    )
    .await?;
    let found = violations(w.b).await?;
    let probe: Value = w.b.eval_async(&FOCUS_PROBE.replace("{TARGET}", "false")).await?;
    w.b.exec(
        "document.getElementById('look-probe-img').remove(); document.getElementById('look-probe-focus').remove();",
    )
    .await?;
    if !found.iter().any(|v| v.id == "image-alt") {
        return Err(err(format!("[{}] axe does not find a planted image without alt: {found:?}", w.engine)));
    }
    if probe["ok"] != false || !probe["what"].as_str().is_some_and(|t| t.contains("look-probe-focus")) {
        return Err(err(format!("[{}] the focus probe does not see a hidden focus: {probe}", w.engine)));
    }
    Ok(())
}

/// `/prenota` to the confirmation with the keyboard only; returns the booking code.
async fn book_by_keyboard(w: &mut Walk<'_>, base: &str, email: &str) -> Result<String> {
    w.open(base, "/prenota", "document.querySelector('[data-office-id]')").await?;
    w.step("prenota-1-ufficio", Kind::Citizen).await?;
    w.tab_to("e.tagName === 'BUTTON' && !!e.closest('[data-office-id]')", "«Scegli questo ufficio»").await?;
    press(w.b, Key::Enter).await?;
    on_step(w.b, 2).await?;
    w.focus("false", "step 2's heading").await?;
    w.b.wait_for("document.querySelector('#day-calendar button[data-day]')", STEP).await?;
    w.tab_to("e.matches('#day-calendar button[data-day]')", "a day in the calendar").await?;
    press(w.b, Key::Enter).await?;
    focus_on(w.b, "#times input[name=slot]", "after choosing a day").await?;
    press(w.b, Key::Space).await?;
    w.b.wait_for("document.activeElement.matches('input[name=slot]:checked')", STEP).await?;
    w.focus("false", "a time").await?;
    w.step("prenota-2-data-orario", Kind::Citizen).await?;
    w.tab_to("e.id === 'next'", "«Avanti» (step 2)").await?;
    press(w.b, Key::Enter).await?;
    on_step(w.b, 3).await?;
    w.focus("false", "step 3's heading").await?;
    w.step("prenota-3-dettagli", Kind::Citizen).await?;
    w.tab_to("e.id === 'next'", "«Avanti» (step 3)").await?;
    press(w.b, Key::Enter).await?;
    on_step(w.b, 4).await?;
    w.focus("false", "step 4's heading").await?;
    for (id, text) in [("first-name", "Lucia"), ("last-name", "Bianchi"), ("email", email)] {
        w.tab_to(&format!("e.id === '{id}'"), id).await?;
        w.type_text(text).await?;
    }
    let has_privacy: bool =
        w.b.eval(&format!("[...document.querySelectorAll('input[type=checkbox]')].some(e => {PRIVACY_BOX})")).await?;
    if has_privacy {
        w.tab_to(PRIVACY_BOX, "the privacy checkbox").await?;
        press(w.b, Key::Space).await?;
        w.b.wait_for("document.activeElement.checked === true", STEP).await?;
    } else {
        w.look.fail(format!(
            "{}: /prenota step 4 has no checkbox labelled «Ho letto e compreso l'informativa privacy»",
            w.engine
        ));
    }
    w.step("prenota-4-richiedente", Kind::Citizen).await?;
    w.tab_to("e.id === 'next'", "«Avanti» (step 4)").await?;
    press(w.b, Key::Enter).await?;
    on_step(w.b, 5).await?;
    w.focus("false", "step 5's heading").await?;
    w.step("prenota-5-riepilogo", Kind::Citizen).await?;
    w.tab_to("e.id === 'confirm'", "«Conferma la prenotazione»").await?;
    press(w.b, Key::Enter).await?;
    on_step(w.b, 6).await?;
    w.focus("false", "step 6's heading").await?;
    w.b.wait_for("document.querySelector('#booking-code')?.textContent.trim()", STEP).await?;
    w.step("prenota-6-conferma", Kind::Citizen).await?;
    w.b.eval("document.querySelector('#booking-code').textContent.trim()").await
}
