//! Scenario `calendar_month`: an official edits their smart-working calendar on
//! `/staff/calendario` in real Chromium and sees the month at a glance.
//!
//! The official logs in on `/staff`, follows the desk's link to the calendar, sets Monday to remote
//! and saves (the server's `GET /api/staff/calendar/pattern` then says remote), adds an absence on a
//! working day of the next December, moves the month grid there and finds that day
//! `data-status="absent"`, Christmas `data-status="holiday"` and a plain Monday `"remote"`.

use std::time::Duration;

use jiff::civil::{Date, Weekday};
use serde_json::Value;
use sportello_store::{NewOffice, NewUser, StaffRole};
use sportello_tests::browser::{Result, err};
use sportello_tests::server::TestServer;

use super::Ctx;

const STEP: Duration = Duration::from_secs(30);
const EMAIL: &str = "giulia.bianchi@comune.example";
const PASSWORD: &str = "una-password-lunga";

/// An official with a password, member of an office open Monday to Friday.
async fn seed(server: &TestServer) -> Result<()> {
    let store = &server.server.store;
    let now = server.server.tokens.clock().now();
    let e = |e: sportello_store::StoreError| err(format!("seeding the store: {e}"));
    let official = store
        .create_user(
            &NewUser { email: EMAIL.into(), display_name: "Giulia Bianchi".into(), role: StaffRole::Official },
            now,
        )
        .await
        .map_err(e)?;
    let hash = sportello_backoffice::secrets::hash_password_blocking(PASSWORD).map_err(|e| err(e.to_string()))?;
    store.set_password(&official.id, &hash, now - 1).await.map_err(e)?;
    let hours: Vec<Vec<String>> =
        (0..7).map(|d| if d < 5 { vec!["08:00-18:00".to_owned()] } else { Vec::new() }).collect();
    let office = store
        .create_office(
            &NewOffice {
                name: "Ufficio Tributi".into(),
                description: String::new(),
                address: "Piazza del Municipio 1".into(),
                email: "tributi@comune.example".into(),
                phone: "+39 0000 000002".into(),
                opening_hours: serde_json::to_string(&hours)?,
            },
            now,
        )
        .await
        .map_err(e)?;
    store.set_office_members(&office.id, std::slice::from_ref(&official.id)).await.map_err(e)?;
    Ok(())
}

/// The first December after the current month (Europe/Rome), the browser's "today" being real time.
fn next_december() -> Result<(i16, i32)> {
    let tz = sportello_domain::europe_rome().map_err(|e| err(e.to_string()))?;
    let today = jiff::Timestamp::now().to_zoned(tz).date();
    let year = if today.month() == 12 { today.year() + 1 } else { today.year() };
    let clicks = (i32::from(year) - i32::from(today.year())) * 12 + 12 - i32::from(today.month());
    Ok((year, clicks))
}

/// The first date of December `year` from `from_day` on that is a weekday `wd` and no holiday.
fn working_day(year: i16, from_day: i8, wd: Option<Weekday>) -> Result<Date> {
    let holidays = sportello_domain::holiday_dates(year, year, None).map_err(|e| err(e.to_string()))?;
    for day in from_day..=31 {
        let d = Date::new(year, 12, day).map_err(|e| err(e.to_string()))?;
        let weekend = matches!(d.weekday(), Weekday::Saturday | Weekday::Sunday);
        if !weekend && !holidays.contains(&d) && wd.is_none_or(|w| d.weekday() == w) {
            return Ok(d);
        }
    }
    Err(err(format!("no working day in December {year} from the {from_day}th")))
}

pub async fn calendar_month(ctx: &mut Ctx) -> Result<()> {
    let server = TestServer::start().await;
    seed(&server).await?;
    let base = server.url();
    let (year, clicks) = next_december()?;
    let absent = working_day(year, 9, None)?;
    let absent = if absent.weekday() == Weekday::Monday { working_day(year, absent.day() + 1, None)? } else { absent };
    let monday = working_day(year, 1, Some(Weekday::Monday))?;
    let monday = if monday == absent { working_day(year, monday.day() + 1, Some(Weekday::Monday))? } else { monday };
    let christmas = Date::new(year, 12, 25).map_err(|e| err(e.to_string()))?;

    // --- log in on the desk and follow its link to the calendar.
    let i = ctx.open("official", &format!("{base}/staff")).await?;
    let b = &ctx.browsers[i];
    b.fill("#login-email", EMAIL).await?;
    b.fill("#login-password", PASSWORD).await?;
    b.click("#login-submit").await?;
    b.click("#calendar-link").await?;
    b.wait_for(
        "location.pathname === '/staff/calendario' && !document.querySelector('#cal-view').hidden \
         && document.querySelector('#day-0-mode') && document.querySelectorAll('#month-grid td[data-date]').length >= 28",
        STEP,
    )
    .await?;
    println!("  the official opened /staff/calendario from the desk");

    // --- Monday remote, saved; the server agrees.
    let follows: bool = b.eval("document.querySelector('#follow-office').checked").await?;
    if follows {
        b.click("#follow-office").await?;
    }
    b.exec(
        "const s = document.querySelector('#day-0-mode'); s.value = 'remote'; \
         s.dispatchEvent(new Event('change', { bubbles: true }));",
    )
    .await?;
    b.fill("#day-0-hours", "08:00-14:00").await?;
    b.fill("#day-0-contact", "09:00-12:00").await?;
    b.click("#pattern-save").await?;
    let probe = "fetch('/api/staff/calendar/pattern', { credentials: 'same-origin' }).then(r => r.json())";
    let mut pattern = Value::Null;
    for _ in 0..60 {
        pattern = b.eval_async(probe).await?;
        if pattern["pattern"]["week"][0]["mode"] == "remote" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    if pattern["pattern"]["week"][0]["mode"] != "remote" {
        let error: String = b.eval("document.querySelector('#pattern-error').textContent").await?;
        return Err(err(format!("after saving, GET /pattern says {pattern} (page error: {error:?})")));
    }
    if pattern["follows_office_hours"] != false {
        return Err(err(format!("a personal pattern still follows the office hours: {pattern}")));
    }
    println!("  Monday remote saved; GET /pattern agrees");

    // --- an absence on a working day of December.
    b.exec(&format!(
        "document.querySelector('#abs-kind').value = 'holiday'; document.querySelector('#abs-start').value = '{absent}'; \
         document.querySelector('#abs-end').value = '{absent}';"
    ))
    .await?;
    b.fill("#abs-note", "Ferie").await?;
    b.click("#absence-submit").await?;
    b.wait_for("document.querySelectorAll('#absences-table [data-absence-id]').length === 1", STEP)
        .await
        .map_err(|e| err(format!("the absence is not listed: {e}")))?;
    println!("  absence on {absent} added");

    // --- the month grid, moved to December.
    for _ in 0..clicks {
        b.click("#month-next").await?;
    }
    let cell = |d: Date| format!("document.querySelector('#month-grid td[data-date=\"{d}\"]')");
    b.wait_for(&format!("{} !== null", cell(christmas)), STEP).await?;
    for (day, status) in [(absent, "absent"), (christmas, "holiday"), (monday, "remote")] {
        let cond = format!("(c => c && c.dataset.status === '{status}')({})", cell(day));
        if let Err(e) = b.wait_for(&cond, STEP).await {
            let seen: Value = b.eval(&format!("(c => c && [c.dataset.status, c.textContent])({})", cell(day))).await?;
            return Err(err(format!("{day} should be {status}, the grid shows {seen}: {e}")));
        }
    }
    // Status is told in words too, not by colour alone.
    let text: String = b.eval(&format!("{}.textContent", cell(christmas))).await?;
    if !text.contains("Festivo") {
        return Err(err(format!("Christmas reads {text:?}, without the word Festivo")));
    }
    let caption: String = b.eval("document.querySelector('#month-caption').textContent").await?;
    if caption.trim().is_empty() {
        return Err(err("the month grid has no caption"));
    }
    println!("  the month grid shows {absent} absent, {christmas} holiday, {monday} remote");
    Ok(())
}
