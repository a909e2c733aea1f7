//! Scenario `council_live`: the public side of a council session in real Chromium.
//!
//! A chair and three councillors join, each with a fake camera of its own colour; a viewer opens
//! `/live/<session>` without an account. The viewer's picture is the chair's, then follows the
//! floor (anna, then bruno) — the SFU switches its program feed at keyframes; an open vote and a
//! secret ballot run with results as cast; the chair suspends the stream for an item and the viewer
//! sees the slate; the chair ends the session and the archived recording (ffprobe) has a gap as long
//! as the suspension and the agenda items as chapters.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use sportello_tests::browser::{Browser, Result, err};
use sportello_tests::server::{Role, TestServer};

use super::Ctx;
use super::council::click_button as click;

const STEP: Duration = Duration::from_secs(30);

async fn wait_button(b: &Browser, text: &str) -> Result<()> {
    b.wait_for(
        &format!(
            "[...document.querySelectorAll('.council-panel button')].some(b => b.textContent.startsWith({text:?}))"
        ),
        STEP,
    )
    .await
}

/// A looping solid-colour camera for Chromium (`--use-file-for-fake-video-capture`).
fn camera(dir: &Path, name: &str, rgb: &str) -> Result<String> {
    let path = dir.join(format!("{name}.y4m"));
    let status = Command::new("ffmpeg")
        .args(["-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("color=c=0x{rgb}:s=160x120:r=10"))
        .args(["-frames:v", "20", "-pix_fmt", "yuv420p"])
        .arg(&path)
        .status()?;
    if !status.success() {
        return Err(err(format!("ffmpeg could not make {}", path.display())));
    }
    Ok(format!("--use-file-for-fake-video-capture={}", path.display()))
}

/// Waits until the viewer's picture is dominated by `channel` (0 = red, 1 = green, 2 = blue).
async fn wait_colour(viewer: &Browser, channel: usize, what: &str) -> Result<()> {
    let cond = format!(
        "(() => {{ const c = window.sportello.live.averageColor(); if (!c) return false; \
           const o = [0, 1, 2].filter(i => i !== {channel}); \
           return c[{channel}] > 120 && o.every(i => c[i] < 90); }})()"
    );
    viewer.wait_for(&cond, STEP).await.map_err(|e| err(format!("the viewer never showed {what}: {e}")))
}

async fn roll_call(chair: &Browser, members: &[&Browser]) -> Result<()> {
    click(chair, "Avvia l'appello").await?;
    for b in members {
        wait_button(b, "Presente").await?;
        click(b, "Presente").await?;
    }
    chair.wait_for("document.querySelector('.council-panel')?.textContent.includes('raggiunto')", STEP).await?;
    click(chair, "Chiudi l'appello").await
}

/// Opens a vote on the current item, has each member cast `choices[i]`, closes it; returns the
/// result line every member sees.
async fn vote(chair: &Browser, members: &[&Browser], secret: bool, choices: &[&str]) -> Result<String> {
    roll_call(chair, members).await?;
    click(chair, if secret { "Apri votazione a scrutinio segreto" } else { "Apri votazione palese" }).await?;
    for (b, choice) in members.iter().zip(choices) {
        wait_button(b, choice).await?;
        click(b, choice).await?;
        b.wait_for(
            "document.querySelector('.council-panel')?.textContent.includes('Il tuo voto è stato registrato')",
            STEP,
        )
        .await?;
    }
    click(chair, "Chiudi la votazione").await?;
    let result = "[...document.querySelectorAll('.council-panel *')].map(e => e.textContent).find(t => t.startsWith('Esito:')) || ''";
    for b in members {
        b.wait_for(&format!("({result}).length > 0"), STEP).await?;
    }
    chair.wait_for(&format!("({result}).length > 0"), STEP).await?;
    chair.eval(result).await
}

fn ffprobe(args: &[&str], file: &Path) -> Result<String> {
    let out = Command::new("ffprobe").args(["-v", "error"]).args(args).arg(file).output()?;
    if !out.status.success() {
        return Err(err(format!("ffprobe {args:?}: {}", String::from_utf8_lossy(&out.stderr))));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub async fn council_live(ctx: &mut Ctx) -> Result<()> {
    let server = TestServer::start().await;
    let store = &server.server.store;
    let e = |e: sportello_store::StoreError| err(format!("seeding the store: {e}"));
    let seeded = server.seed_council(&["Anna", "Bruno", "Carla"], &["Bilancio", "Personale"]).await.map_err(e)?;
    let session = &seeded.session;
    let link = |user: &sportello_store::User, role| seeded.link(&server, user, role);

    // The public page before anyone is there: "starting soon".
    let live_url = format!("{}/live/{}", server.url(), session.id);
    let v = ctx.open("viewer", &live_url).await?;
    ctx.browsers[v].wait_for("window.sportello?.live?.status() === 'scheduled'", STEP).await?;
    println!("  the public page says the session starts soon");

    let cams = tempfile::tempdir()?;
    let people = [
        ("chair", &seeded.chair, Role::Host, "00ff00"),
        ("anna", &seeded.councillors[0], Role::Participant, "ff0000"),
        ("bruno", &seeded.councillors[1], Role::Participant, "0000ff"),
        ("carla", &seeded.councillors[2], Role::Participant, "808080"),
    ];
    let mut idx = Vec::new();
    // The recording cannot start before the chair's page opens: its longest possible length.
    let chair_opens = Instant::now();
    for (label, user, role, rgb) in people {
        let flag = camera(cams.path(), label, rgb)?;
        let i = ctx.open_with(label, &link(user, role), &[flag]).await?;
        let b = &ctx.browsers[i];
        b.click("#join-btn").await?;
        b.wait_for("window.sportello && window.sportello.state === 'in-room'", STEP).await?;
        b.wait_for("!!document.querySelector('.council-notice')", STEP).await?;
        idx.push(i);
    }
    let [c, a, b_, k] = [idx[0], idx[1], idx[2], idx[3]];
    let (chair_b, anna_b, bruno_b, carla_b, viewer) =
        (&ctx.browsers[c], &ctx.browsers[a], &ctx.browsers[b_], &ctx.browsers[k], &ctx.browsers[v]);
    println!("  chair and three councillors in the room, each told about the stream");

    viewer
        .wait_for(
            "window.sportello.live.status() === 'live' && window.sportello.live.framesDecoded().then(n => n > 10)",
            STEP,
        )
        .await?;
    wait_colour(viewer, 1, "the chair (green)").await?;
    let on_air = Instant::now();
    println!("  the viewer decodes the program: the chair, nobody having the floor");

    click(chair_b, "Vai al punto: Bilancio").await?;
    viewer.wait_for("document.body.textContent.includes('Bilancio')", STEP).await?;
    for (who, name, channel, colour) in [(anna_b, "Anna", 0, "red"), (bruno_b, "Bruno", 2, "blue")] {
        wait_button(who, "Chiedi la parola").await?;
        click(who, "Chiedi la parola").await?;
        chair_b
            .wait_for(&format!("document.querySelector('.council-queue')?.textContent.includes('{name}')"), STEP)
            .await?;
        click(chair_b, &format!("Dai la parola a {name}")).await?;
        wait_colour(viewer, channel, &format!("{name} ({colour}) with the floor")).await?;
        viewer.wait_for(&format!("document.body.textContent.includes('{name}')"), STEP).await?;
        println!("  floor to {name}: the viewer's picture switched to {name}");
    }
    click(chair_b, "Togli la parola").await?;

    // The chair presides; the councillors answer the roll call and vote.
    let members = [anna_b, bruno_b, carla_b];
    let open = vote(chair_b, &members, false, &["Favorevole", "Contrario", "Astenuto"]).await?;
    if !open.contains("favorevoli 1, contrari 1, astenuti 1") {
        return Err(err(format!("open vote result: {open:?}")));
    }
    let secret = vote(chair_b, &members, true, &["Contrario", "Favorevole", "Contrario"]).await?;
    if !secret.contains("favorevoli 1, contrari 2, astenuti 0") {
        return Err(err(format!("secret ballot result: {secret:?}")));
    }
    println!("  open vote and secret ballot: results as cast ({open} / {secret})");

    // The next item is sensitive: suspended, the viewer sees the slate and nothing is recorded.
    click(chair_b, "Vai al punto: Personale").await?;
    click(chair_b, "Sospendi la diretta").await?;
    let suspended = Instant::now();
    viewer
        .wait_for(
            "window.sportello.live.status() === 'suspended' && document.body.textContent.includes('Trasmissione sospesa')",
            STEP,
        )
        .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    click(chair_b, "Riprendi la diretta").await?;
    // From the chair's click to the chair's click: the recording's gap is at least this long.
    let gap = suspended.elapsed().as_secs_f64();
    viewer.wait_for("window.sportello.live.status() === 'live'", STEP).await?;
    wait_colour(viewer, 1, "the chair after the suspension").await?;
    println!("  suspended {gap:.1} s: the viewer saw the slate, then the session again");

    chair_b.eval::<bool>("(() => { window.confirm = () => true; return true; })()").await?;
    click(chair_b, "Termina la seduta").await?;
    viewer.wait_for("window.sportello.live.status() === 'ended'", STEP).await?;
    let live_for = on_air.elapsed().as_secs_f64();
    let at_most = chair_opens.elapsed().as_secs_f64();
    println!("  ended: the public page says so");

    // The recording is remuxed and archived by the server.
    let deadline = Instant::now() + Duration::from_secs(60);
    let rec = loop {
        let rows = store.recordings_for_session(&session.id).await.map_err(e)?;
        if let Some(r) = rows.into_iter().next() {
            break r;
        }
        if Instant::now() > deadline {
            return Err(err("no recording was archived after the session ended"));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let file = sportello_backoffice::recordings::file_path(&server.server.config.data_dir, &rec)
        .map_err(|e| err(format!("recording path: {e}")))?;
    let duration: f64 = ffprobe(&["-show_entries", "format=duration", "-of", "csv=p=0"], &file)?
        .trim()
        .parse()
        .map_err(|e| err(format!("duration: {e}")))?;
    // From the chair's arrival to the end: at least what the viewer saw, at most the time since the
    // chair's page opened (the joins before the viewer's first frame take longer on a busy machine).
    if duration < live_for - 1.0 || duration > at_most + 1.0 {
        return Err(err(format!(
            "recording lasts {duration:.1} s, the session was on air ≈ {live_for:.1} s \
             (at most {at_most:.1} s since the chair's page opened)"
        )));
    }
    let times: Vec<f64> =
        ffprobe(&["-select_streams", "v:0", "-show_entries", "packet=pts_time", "-of", "csv=p=0"], &file)?
            .lines()
            .filter_map(|l| l.trim().trim_end_matches(',').parse().ok())
            .collect();
    let longest = times.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
    if longest < gap - 1.0 {
        return Err(err(format!("longest gap between recorded frames {longest:.1} s, suspended {gap:.1} s")));
    }
    let chapters = ffprobe(&["-show_chapters", "-of", "json"], &file)?;
    for title in ["Bilancio", "Personale"] {
        if !chapters.contains(title) {
            return Err(err(format!("chapter {title:?} missing: {chapters}")));
        }
    }
    println!(
        "  archived: {duration:.1} s WebM (sha256 {}…), a {longest:.1} s gap where it was suspended, items as chapters",
        &rec.sha256[..12]
    );
    drop(server);
    Ok(())
}
