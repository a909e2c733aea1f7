//! `sportello-load`: synthetic WebRTC clients (sans-IO `rtc`, one media thread) against Sportello
//! and/or Janus started as separate processes pinned to another CPU, in a loopback-only network
//! namespace. Prints one table per scenario (both servers side by side with the ratio when both run).
//!
//! ```text
//! sportello-load [--server sportello|janus|both]
//!                [--scenario office|council|join-storm|council-whep|all]
//!                [--seconds 15] [--rooms 5] [--room-size 3] [--publishers 2]
//!                [--viewers N (council 20, council-whep 1000)] [--storm 50] [--spread 10]
//!                [--server-cpu 0 (a taskset list: 0,1)] [--load-cpu 1] [--receive light|full]
//!                [--sportello PATH] [--media-dir DIR] [--machine] [--edge]
//! ```
//!
//! `all` is office, council and join storm; `council-whep` (WHEP players of a council program)
//! runs on Sportello only — Janus has no WHEP; with `--edge` its players ask a second node of a
//! cluster (throwaway PostgreSQL and NATS), an edge of the council's node, and the figures are the
//! edge's (the origin's CPU is printed beside them). `--receive full` puts every datagram of the
//! subscriber connections through `rtc`'s read pipeline, as before the light path (`load::recv`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sportello_tests::load::figures::{Figures, print_compare, print_machine, print_one};
use sportello_tests::load::media::Media;
use sportello_tests::load::peer::Receive;
use sportello_tests::load::proc_stat::pin_self;
use sportello_tests::load::scenario::{Plan, Sizes, run};
use sportello_tests::load::servers::{Kind, Server};
use sportello_tests::netns::ensure_loopback_namespace;

struct Options {
    servers: Vec<Kind>,
    scenarios: Vec<String>,
    seconds: u64,
    sizes: Sizes,
    /// A `taskset` CPU list.
    server_cpu: String,
    load_cpu: usize,
    receive: Receive,
    sportello: PathBuf,
    media_dir: PathBuf,
    machine: bool,
    /// council-whep: the players ask a second node, an edge of the council's (docs/cluster.md).
    edge: bool,
}

fn parse() -> Result<Options, String> {
    // Next to this binary: target/<profile>/sportello, and the media cache in target/.
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let dir = exe.parent().ok_or("no binary directory")?.to_owned();
    let mut o = Options {
        servers: vec![Kind::Sportello, Kind::Janus],
        scenarios: vec!["office".into(), "council".into(), "join-storm".into()],
        seconds: 15,
        sizes: Sizes {
            rooms: 5,
            room_size: 3,
            publishers: 2,
            viewers: None,
            storm: 50,
            spread: Duration::from_secs(10),
        },
        server_cpu: "0".into(),
        load_cpu: 1,
        receive: Receive::Light,
        sportello: dir.join("sportello"),
        media_dir: dir.parent().unwrap_or(&dir).join("load-media"),
        machine: false,
        edge: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--machine" {
            o.machine = true;
            continue;
        }
        if flag == "--edge" {
            o.edge = true;
            continue;
        }
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        let num = || value.parse::<u64>().map_err(|_| format!("{flag}: not a number: {value}"));
        match flag.as_str() {
            "--server" => {
                o.servers = match value.as_str() {
                    "sportello" => vec![Kind::Sportello],
                    "janus" => vec![Kind::Janus],
                    "both" => vec![Kind::Sportello, Kind::Janus],
                    _ => return Err(format!("--server: sportello, janus or both, not {value}")),
                }
            }
            "--scenario" if value == "all" => {}
            "--scenario" => o.scenarios = value.split(',').map(str::to_owned).collect(),
            "--seconds" => o.seconds = num()?,
            "--rooms" => o.sizes.rooms = num()? as usize,
            "--room-size" => o.sizes.room_size = num()? as usize,
            "--publishers" => o.sizes.publishers = num()? as usize,
            "--viewers" => o.sizes.viewers = Some(num()? as usize),
            "--storm" => o.sizes.storm = num()? as usize,
            "--spread" => o.sizes.spread = Duration::from_secs(num()?),
            "--server-cpu"
                if !value.is_empty() && value.chars().all(|c| c.is_ascii_digit() || c == ',' || c == '-') =>
            {
                o.server_cpu = value
            }
            "--server-cpu" => return Err(format!("--server-cpu: a CPU list such as 0 or 0,1, not {value}")),
            "--load-cpu" => o.load_cpu = num()? as usize,
            "--receive" => {
                o.receive = match value.as_str() {
                    "light" => Receive::Light,
                    "full" => Receive::Full,
                    _ => return Err(format!("--receive: light or full, not {value}")),
                }
            }
            "--sportello" => o.sportello = value.into(),
            "--media-dir" => o.media_dir = value.into(),
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(o)
}

fn main() {
    // ffmpeg runs before the namespace would not matter, but one place for everything is simpler.
    ensure_loopback_namespace();
    let o = match parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("sportello-load: {e}");
            std::process::exit(2);
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    match rt.block_on(main_async(o)) {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("sportello-load: {e}");
            std::process::exit(1);
        }
    }
}

/// Runs every scenario on every server; false when a run failed.
async fn main_async(o: Options) -> Result<bool, String> {
    pin_self(o.load_cpu)?;
    let media = Arc::new(Media::load(&o.media_dir)?);
    println!(
        "media: VP8 640x360 30 fps {:.0} kbit/s + Opus 20 ms; {:.0} RTP packets/s per publisher; server on CPU {}, \
         load tool on CPU {}; subscribers receive by the {} path",
        media.video_kbps(),
        media.packets_per_second(),
        o.server_cpu,
        o.load_cpu,
        if o.receive == Receive::Light { "light" } else { "full" }
    );
    let mut ok = true;
    for name in &o.scenarios {
        let plan = Plan::new(name, &o.sizes)?;
        let mut results: Vec<Figures> = Vec::new();
        for &kind in &o.servers {
            let server = match kind {
                Kind::Sportello if plan.whep && o.edge => {
                    Server::sportello_council_edge(&o.sportello, &o.server_cpu, o.sizes.publishers).await
                }
                Kind::Sportello if plan.whep => {
                    Server::sportello_council(&o.sportello, &o.server_cpu, o.sizes.publishers).await
                }
                Kind::Sportello => Server::sportello(&o.sportello, &o.server_cpu),
                Kind::Janus if plan.whep => {
                    eprintln!("sportello-load: {name}: Janus has no WHEP; skipped on Janus");
                    continue;
                }
                Kind::Janus => Server::janus(&o.server_cpu),
            };
            let measure = Duration::from_secs(o.seconds);
            let figures = match server {
                Ok(server) => run(&server, &plan, media.clone(), measure, o.load_cpu, o.receive).await,
                Err(e) => Err(e),
            };
            match figures {
                Ok(f) => results.push(f),
                Err(e) => {
                    eprintln!("sportello-load: {name} on {}: {e}", kind.name());
                    ok = false;
                }
            }
        }
        match results.as_slice() {
            [a, b] => print_compare(a, b),
            _ => results.iter().for_each(print_one),
        }
        if o.machine {
            results.iter().for_each(print_machine);
        }
    }
    Ok(ok)
}
