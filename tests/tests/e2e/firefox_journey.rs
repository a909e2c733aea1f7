//! Scenario `firefox_journey` (issue 17): the citizen's journey and the live page in Firefox ESR
//! (geckodriver), the official on Chromium.
//!
//! The citizen books on `/prenota` in Firefox, opens the join link from the confirmation email in the
//! outbox, passes the lobby's device check (camera preview, microphone meter, network check) and
//! waits; the official logs in on `/staff` in Chromium and admits them; both decode each other's
//! camera and receive each other's microphone; the citizen shares the screen from Firefox and the
//! official decodes it; a chat message crosses each way; the official shares a PDF and the citizen
//! downloads the very same bytes, by the API and by the document's button. Then a council session's
//! public page `/live/<id>` in Firefox plays the program (the chair on Chromium): video decoded
//! and playing.
//!
//! The same clock trick as `office_appointment`: the server runs at 08:55 (Europe/Rome) of the next
//! working day, so slots exist whenever CI runs. Needs `Xvfb` (Debian `xvfb`): headless Firefox
//! shares the screen of an X display, having no fake one.

use std::time::Duration;

use serde_json::Value;
use sportello_tests::browser::{Browser, Engine, Geckodriver, Result, err, poll_until};
use sportello_tests::server::{Clock, Role, TestServer};

use super::office::{
    OFFICIAL_EMAIL, OFFICIAL_PASSWORD, PDF, book_on_pages, join_link_from_outbox, offset_to_next_working_morning,
    saved_by_button, seed, sha256_hex_in_page, ten_minutes_before,
};
use super::{Ctx, media_condition, netcheck_spoken};

const STEP: Duration = Duration::from_secs(30);
const MEDIA: Duration = Duration::from_secs(45);
const CITIZEN_EMAIL: &str = "lucia.bianchi@example.org";

/// For a meter that does not move: what an analyser of a fresh microphone stream measures, and the
/// state of a fresh AudioContext.
const MIC_PROBE: &str = r#"(async () => {
  const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  const track = stream.getAudioTracks()[0];
  const ctx = new AudioContext();
  const before = ctx.state;
  const an = ctx.createAnalyser(); an.fftSize = 1024;
  ctx.createMediaStreamSource(stream).connect(an);
  await new Promise(r => setTimeout(r, 700));
  const buf = new Float32Array(an.fftSize); an.getFloatTimeDomainData(buf);
  let sum = 0; for (const x of buf) sum += x * x;
  const out = { label: track.label, muted: track.muted, readyState: track.readyState, before, after: ctx.state,
                rms: Math.sqrt(sum / buf.length), settings: track.getSettings() };
  track.stop(); ctx.close();
  return out;
})()"#;

/// The official on `/staff` (Chromium): logs in, sees `name` waiting, lets them in and enters the
/// room — as `office_appointment` does. Returns the official's browser index.
async fn official_admits(ctx: &mut Ctx, base: &str, name: &str) -> Result<usize> {
    let official = ctx.open("official", &format!("{base}/staff")).await?;
    let o = &ctx.browsers[official];
    o.fill("#login-email", OFFICIAL_EMAIL).await?;
    o.fill("#login-password", OFFICIAL_PASSWORD).await?;
    o.click("#login-submit").await?;
    o.wait_for("document.querySelectorAll('#waiting-list [data-waiting-id]').length === 1", STEP).await?;
    let waiting: String = o.eval("document.querySelector('#waiting-list [data-waiting-id]').textContent").await?;
    if !waiting.contains(name) {
        return Err(err(format!("the waiting entry reads {waiting:?}, without the citizen's name {name:?}")));
    }
    o.click("#waiting-list [data-waiting-id] .admit").await?;
    Ok(official)
}

/// The official enters the room in the tab «Fai entrare e apri la stanza» opened.
async fn official_enters(o: &Browser) -> Result<()> {
    o.switch_to_newest_window().await?;
    o.wait_for("location.pathname === '/join'", STEP).await?;
    o.click("#join-btn").await?;
    o.wait_for("window.sportello && window.sportello.state === 'in-room'", STEP).await
}

pub async fn firefox_journey(ctx: &mut Ctx) -> Result<()> {
    let clock = Clock::offset(offset_to_next_working_morning()?);
    let server = TestServer::start_at(clock.clone(), |c| c.reconnect_grace = Duration::from_secs(15)).await;
    let service_id = seed(&server).await?;
    let base = server.url();
    let pdf_path = server.data_dir().join("modulo-indirizzo.pdf");
    std::fs::write(&pdf_path, PDF)?;
    let pdf_sha = sportello_tests::sha256_hex(PDF);

    // --- the citizen books through the pages in Firefox.
    // Headless Firefox has no fake screen to share (`media.navigator.streams.fake` covers the camera
    // and microphone only): its screen capture finds the X display of `DISPLAY`, here a virtual one.
    let xvfb = Xvfb::start()?;
    let gecko = Geckodriver::find()?.with_env("DISPLAY", &xvfb.display);
    ctx.browsers.push(gecko.open("citizen-firefox", "about:blank").await?);
    let citizen = ctx.browsers.len() - 1;
    let b = &ctx.browsers[citizen];
    if b.engine() != Engine::Firefox {
        return Err(err("the citizen's browser is not Firefox"));
    }
    b.goto(&format!("{base}/prenota?servizio={service_id}")).await?;
    let code = book_on_pages(b, "Cambio di indirizzo nello stesso comune", ("Lucia", "Bianchi", CITIZEN_EMAIL)).await?;
    println!("  the citizen booked on /prenota in Firefox: {code}");

    let link = poll_until("the confirmation email in the outbox", STEP, || async {
        Ok(join_link_from_outbox(&server, CITIZEN_EMAIL).ok())
    })
    .await?;
    if !link.starts_with(&base) {
        return Err(err(format!("the join link {link} does not point at {base}")));
    }
    ten_minutes_before(&server, &clock, &code).await?;

    // --- the emailed link: the lobby's device check (camera preview, microphone meter, network).
    b.goto(&link).await?;
    b.wait_for(
        "(v => !!v && v.videoWidth > 0 && v.readyState >= 2)(document.getElementById('preview')) \
         && document.getElementById('camera-select').options.length > 0 \
         && document.getElementById('mic-select').options.length > 0",
        STEP,
    )
    .await
    .map_err(|e| err(format!("the lobby's camera preview: {e}")))?;
    if let Err(e) =
        b.wait_for("Number(document.getElementById('mic-meter').getAttribute('aria-valuenow')) > 0", STEP).await
    {
        let probe: Value = b.eval_async(MIC_PROBE).await.unwrap_or_else(|e| Value::String(e.to_string()));
        return Err(err(format!("the lobby's microphone meter never moved: {e}; a fresh analyser says {probe}")));
    }
    netcheck_spoken(b).await?;
    let verdict: Value = b.eval("window.sportello.netcheck").await?;
    println!("  the lobby shows the camera, the microphone meter moves, the network check says {}", verdict["verdict"]);
    b.click("#join-btn").await?;
    b.wait_for(
        "window.sportello && window.sportello.waiting === true && !document.querySelector('#waiting-screen').hidden",
        STEP,
    )
    .await?;
    println!("  the citizen waits in the waiting room");

    // --- the official (Chromium) admits them and enters.
    let official = official_admits(ctx, &base, "Lucia Bianchi").await?;
    ctx.browsers[citizen]
        .wait_for("window.sportello.state === 'in-room' && window.sportello.waiting === false", STEP)
        .await?;
    official_enters(&ctx.browsers[official]).await?;
    let (b, o) = (&ctx.browsers[citizen], &ctx.browsers[official]);
    let citizen_id: String = b.eval("window.sportello.participantId").await?;
    let official_id: String = o.eval("window.sportello.participantId").await?;
    println!("  admitted: the citizen ({citizen_id}) and the official ({official_id}) are in the room");

    // --- camera and microphone both ways, and what the user sees: the other's tile with the video.
    let cam = |who: &str| format!("{who}/camera");
    let mic = |who: &str| format!("{who}/microphone");
    let (b_sees, o_sees) = (
        media_condition(&[&cam(&official_id)], &[&mic(&official_id)]),
        media_condition(&[&cam(&citizen_id)], &[&mic(&citizen_id)]),
    );
    tokio::try_join!(b.wait_for(&b_sees, MEDIA), o.wait_for(&o_sees, MEDIA))?;
    let playing = |who: &str| {
        format!(
            "(v => !!v && v.videoWidth > 0 && !v.paused)(document.querySelector('[data-participant-id=\"{who}\"] video[data-track-id=\"{who}/camera\"]'))"
        )
    };
    let (b_plays, o_plays) = (playing(&official_id), playing(&citizen_id));
    tokio::try_join!(b.wait_for(&b_plays, MEDIA), o.wait_for(&o_plays, MEDIA))?;
    // Not one lucky keyframe: Firefox keeps decoding the official, Chromium the citizen.
    tokio::try_join!(
        super::wait_camera_progress(b, &official_id, 30, MEDIA),
        super::wait_camera_progress(o, &citizen_id, 30, MEDIA),
    )?;
    println!("  Firefox and Chromium decode each other's camera and receive each other's microphone");

    // --- the citizen shares the screen from Firefox; the official decodes it.
    // What getDisplayMedia answered, for the failure message.
    b.exec(
        "const gdm = navigator.mediaDevices.getDisplayMedia.bind(navigator.mediaDevices); window.__gdm = []; \
         navigator.mediaDevices.getDisplayMedia = (c) => gdm(c).then( \
           s => { window.__gdm.push('ok: ' + s.getTracks().map(t => t.kind + ' ' + t.label)); return s; }, \
           e => { window.__gdm.push(e.name + ': ' + e.message); throw e; });",
    )
    .await?;
    b.click("#btn-screen").await?;
    if let Err(e) =
        b.wait_for("document.getElementById('btn-screen').getAttribute('aria-pressed') === 'true'", STEP).await
    {
        let answered: Value = b.eval("window.__gdm").await.unwrap_or(Value::Null);
        return Err(err(format!("Firefox did not start sharing the screen: {e}; getDisplayMedia: {answered}")));
    }
    let screen = format!("{citizen_id}/screen");
    let o_screen = format!(
        "document.querySelectorAll('video[data-track-id=\"{screen}\"]').length === 1 && {}",
        media_condition(&[&screen], &[])
    );
    o.wait_for(&o_screen, MEDIA).await?;
    println!("  the official decodes the citizen's screen shared from Firefox");

    // --- chat both ways, as each side sees it.
    let chat_seen = |text: &str| {
        format!(
            "(window.sportello.chat || []).some(m => m.text === {text:?}) \
             && document.getElementById('chat-list')?.textContent.includes({text:?})"
        )
    };
    b.fill("#chat-input", "Buongiorno, sono Lucia Bianchi").await?;
    b.click("#chat-send").await?;
    o.wait_for(&chat_seen("Buongiorno, sono Lucia Bianchi"), STEP).await?;
    o.fill("#chat-input", "Buongiorno, le mando il modulo").await?;
    o.click("#chat-send").await?;
    b.wait_for(&chat_seen("Buongiorno, le mando il modulo"), STEP).await?;
    println!("  chat messages cross both ways");

    // --- the official shares a PDF; Firefox lists it and downloads the same bytes.
    o.fill("#doc-input", &pdf_path.display().to_string()).await?;
    b.wait_for("(window.sportello.documents || []).length === 1", STEP).await?;
    b.wait_for(
        "document.querySelectorAll('#doc-list [data-document-id]').length === 1 \
         && document.getElementById('doc-list').textContent.includes('modulo-indirizzo.pdf')",
        STEP,
    )
    .await?;
    let got = sha256_hex_in_page(b, "window.sportello.documentDownload(window.sportello.documents[0].id)").await?;
    if got != pdf_sha {
        return Err(err(format!("Firefox downloaded {got}, the official shared {pdf_sha}")));
    }
    let saved = saved_by_button(b).await?;
    if saved != pdf_sha {
        return Err(err(format!("Firefox's download button saved {saved}, the official shared {pdf_sha}")));
    }
    println!(
        "  Firefox lists the shared PDF and downloads exactly its bytes ({} bytes), also by its button",
        PDF.len()
    );

    for b in ctx.browsers.drain(..) {
        let _ = tokio::time::timeout(Duration::from_secs(10), b.close()).await;
    }

    drop(xvfb);
    server.shutdown().await;

    // --- the live page: a council session's program in Firefox (a server on today's clock: the
    // members' links are signed for now).
    let server = TestServer::start().await;
    let base = server.url();
    let e = |e: sportello_store::StoreError| err(format!("seeding the store: {e}"));
    let council = server.seed_council(&["Anna"], &["Bilancio"]).await.map_err(e)?;
    let chair_link = council.link(&server, &council.chair, Role::Host);
    let chair = ctx.open("chair", &chair_link).await?;
    let c = &ctx.browsers[chair];
    c.click("#join-btn").await?;
    c.wait_for("window.sportello && window.sportello.state === 'in-room'", STEP).await?;
    let live_url = format!("{base}/live/{}", council.session.id);
    let viewer = ctx.open_firefox("viewer-firefox", &live_url).await?;
    let v = &ctx.browsers[viewer];
    v.wait_for("window.sportello?.live?.status() === 'live'", STEP).await?;
    v.wait_for("window.sportello.live.framesDecoded().then(n => n > 30)", MEDIA)
        .await
        .map_err(|e| err(format!("the live page in Firefox decodes no video: {e}")))?;
    let picture: Value = v
        .eval(
            "(() => { const el = document.querySelector('video'); \
               return el ? { w: el.videoWidth, h: el.videoHeight, paused: el.paused } : null; })()",
        )
        .await?;
    if picture.is_null() || picture["w"].as_u64().unwrap_or(0) == 0 || picture["paused"] == true {
        return Err(err(format!("the live page's picture in Firefox: {picture}")));
    }
    println!("  the live page in Firefox plays the council's program ({}x{})", picture["w"], picture["h"]);
    server.shutdown().await;
    Ok(())
}

/// A virtual X display (`Xvfb`, Debian package `xvfb`) on a free display number, stopped on drop.
struct Xvfb {
    child: std::process::Child,
    display: String,
}

impl Xvfb {
    fn start() -> Result<Xvfb> {
        let n = (99..200)
            .find(|n| {
                !std::path::Path::new(&format!("/tmp/.X{n}-lock")).exists()
                    && !std::path::Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
            })
            .ok_or_else(|| err("no free X display number"))?;
        let display = format!(":{n}");
        let child = std::process::Command::new("Xvfb")
            .args([display.as_str(), "-nolisten", "tcp", "-screen", "0", "1280x800x24"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| err(format!("cannot start Xvfb (install the Debian package `xvfb`): {e}")))?;
        let mut xvfb = Xvfb { child, display };
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !std::path::Path::new(&format!("/tmp/.X11-unix/X{n}")).exists() {
            if let Some(status) = xvfb.child.try_wait()? {
                return Err(err(format!("Xvfb {} exited at start ({status})", xvfb.display)));
            }
            if std::time::Instant::now() > deadline {
                return Err(err(format!("Xvfb {} did not come up within 10 s", xvfb.display)));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(xvfb)
    }
}

impl Drop for Xvfb {
    /// SIGTERM first: Xvfb then removes its lock file and socket in `/tmp`.
    fn drop(&mut self) {
        // SAFETY: plain kill(2) of the child we started.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = std::time::Instant::now() + Duration::from_secs(3);
        while matches!(self.child.try_wait(), Ok(None)) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
