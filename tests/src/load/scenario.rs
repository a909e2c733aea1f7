//! The scenarios (who joins which room, publishing or only watching, and when) and the run that
//! drives one of them against one server and measures it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sportello_backoffice::token::{Claims, Role};
use tokio::sync::watch;

use super::engine::Engine;
use super::figures::{Figures, percentile};
use super::media::Media;
use super::proc_stat;
use super::servers::{Kind, Server};
use super::{janus, sportello};

#[derive(Clone, Debug)]
pub struct Participant {
    pub room: String,
    pub identity: String,
    /// Publishes Opus + VP8; the number staggers its place in the clip.
    pub publish: Option<usize>,
}

/// Who joins: `first` one after the other (`ramp` apart), then `then` spread evenly over `spread`.
pub struct Plan {
    pub name: &'static str,
    pub first: Vec<Participant>,
    pub ramp: Duration,
    pub then: Vec<Participant>,
    pub spread: Duration,
}

#[derive(Clone, Debug)]
pub struct Sizes {
    /// office: rooms × participants per room.
    pub rooms: usize,
    pub room_size: usize,
    /// council: publishers → viewers.
    pub publishers: usize,
    pub viewers: usize,
    /// join storm: participants joining within `spread`.
    pub storm: usize,
    pub spread: Duration,
}

impl Plan {
    pub fn new(name: &str, s: &Sizes) -> Result<Plan, String> {
        let p =
            |room: &str, id: String, publish: Option<usize>| Participant { room: room.into(), identity: id, publish };
        Ok(match name {
            "office" => Plan {
                name: "office",
                first: (0..s.rooms)
                    .flat_map(|r| (0..s.room_size).map(move |i| (r, i)))
                    .map(|(r, i)| p(&format!("office-{r}"), format!("o{r}p{i}"), Some(r * s.room_size + i)))
                    .collect(),
                ramp: Duration::from_millis(30),
                then: Vec::new(),
                spread: Duration::ZERO,
            },
            "council" => Plan {
                name: "council",
                first: (0..s.publishers).map(|i| p("council", format!("member{i}"), Some(i))).collect(),
                ramp: Duration::from_millis(100),
                then: (0..s.viewers).map(|i| p("council", format!("viewer{i}"), None)).collect(),
                spread: Duration::from_millis(20 * s.viewers as u64),
            },
            "join-storm" => Plan {
                name: "join-storm",
                first: vec![p("storm", "speaker".into(), Some(0))],
                ramp: Duration::ZERO,
                then: (0..s.storm).map(|i| p("storm", format!("s{i}"), None)).collect(),
                spread: s.spread,
            },
            other => return Err(format!("unknown scenario {other:?} (office, council, join-storm)")),
        })
    }

    fn everyone(&self) -> impl Iterator<Item = &Participant> {
        self.first.iter().chain(&self.then)
    }

    /// Participants that should receive media: someone else publishes in their room.
    fn receivers(&self) -> usize {
        self.everyone()
            .filter(|me| self.everyone().any(|o| o.room == me.room && o.identity != me.identity && o.publish.is_some()))
            .count()
    }

    pub fn publishers(&self) -> usize {
        self.everyone().filter(|p| p.publish.is_some()).count()
    }

    /// How many subscriber connections each publisher's packets should reach, on average.
    fn fanout(&self) -> f64 {
        let (mut n, mut sum) = (0usize, 0usize);
        for p in self.everyone().filter(|p| p.publish.is_some()) {
            n += 1;
            sum += self.everyone().filter(|o| o.room == p.room && o.identity != p.identity).count();
        }
        if n == 0 { 0.0 } else { sum as f64 / n as f64 }
    }
}

/// Runs `plan` against a freshly started server and measures `measure` of steady state.
pub async fn run(
    server: &Server,
    plan: &Plan,
    media: Arc<Media>,
    measure: Duration,
    load_cpu: usize,
) -> Result<Figures, String> {
    // Our sockets live on the server's media address: for Janus the bridge's 127.0.0.2 (libnice
    // pins its sockets to that interface; see `servers::janus_interface`).
    let engine = Engine::start(media, server.client_ip)?;
    let rss_idle = proc_stat::rss_kib(server.pid).unwrap_or(0);
    let (stop_tx, stop) = watch::channel(false);
    let rooms = match server.kind {
        Kind::Janus => janus::Rooms::create(server.http, plan.everyone().map(|p| p.room.clone())).await?,
        Kind::Sportello => janus::Rooms::default(),
    };
    let mut tasks = Vec::new();
    let start = Instant::now();
    let waves = [(&plan.first, plan.ramp), (&plan.then, plan.spread / plan.then.len().max(1) as u32)];
    for (wave, gap) in waves {
        for who in wave.iter() {
            let (engine, stop, who) = (engine.clone(), stop.clone(), who.clone());
            let task = match server.kind {
                Kind::Sportello => {
                    let key = server.tokens.as_ref().ok_or("no token key")?;
                    let role = if who.publish.is_some() { Role::Participant } else { Role::Viewer };
                    let claims = Claims::new(&who.room, &who.identity, &who.identity, role, Duration::from_secs(3600));
                    let token = key.issue(&claims).map_err(|e| format!("token: {e}"))?;
                    tokio::spawn(sportello::participant(engine, server.http, token, who, stop))
                }
                Kind::Janus => tokio::spawn(janus::participant(engine, server.http, rooms.clone(), who, stop)),
            };
            tasks.push(task);
            tokio::time::sleep(gap).await;
        }
        if !plan.first.is_empty() && !plan.then.is_empty() {
            // Let the first wave's media start before the second joins.
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    // Warm-up: every receiver gets media (or the deadline passes), then one more second.
    let receivers = plan.receivers();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let s = engine.snapshot().await?;
        let with_media = s.joins.iter().filter(|(_, first)| first.is_some()).count();
        if with_media >= receivers || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let joined_after = start.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;

    engine.measure(true);
    let s0 = engine.snapshot().await?;
    let (cpu0, own0, t0) = (proc_stat::cpu_time(server.pid), proc_stat::own_cpu_time(), Instant::now());
    tokio::time::sleep(measure).await;
    let s1 = engine.snapshot().await?;
    let (cpu1, own1, elapsed) = (proc_stat::cpu_time(server.pid), proc_stat::own_cpu_time(), t0.elapsed());
    let rss_loaded = proc_stat::rss_kib(server.pid).unwrap_or(0);
    if std::env::var_os("LOAD_DEBUG").is_some() {
        let secs = elapsed.as_secs_f64();
        eprintln!(
            "load: {} on {}: publishers sent {:.0} RTP packets/s, subscribers received {:.0}/s",
            plan.name,
            server.kind.name(),
            (s1.sent - s0.sent) as f64 / secs,
            (s1.counts.rtp - s0.counts.rtp) as f64 / secs
        );
    }
    engine.measure(false);

    let _ = stop_tx.send(true);
    let mut errors = Vec::new();
    for t in tasks {
        match tokio::time::timeout(Duration::from_secs(5), t).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => errors.push(e),
            Ok(Err(e)) => errors.push(format!("task: {e}")),
            Err(_) => errors.push("did not leave within 5 s".into()),
        }
    }
    for e in errors.iter().take(5) {
        eprintln!("load: {} on {}: {e}", plan.name, server.kind.name());
    }
    if !errors.is_empty() {
        eprintln!("load: server log tail:\n{}", server.log_tail());
    }

    let secs = elapsed.as_secs_f64();
    let forwarded = s1.counts.rtp.saturating_sub(s0.counts.rtp);
    let cpu = match (cpu0, cpu1) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    let expected = s1.counts.expected.saturating_sub(s0.counts.expected);
    let received = s1.counts.received.saturating_sub(s0.counts.received);
    let mut delays: Vec<u32> = s1.delays;
    delays.sort_unstable();
    let mut joins: Vec<u64> = s1
        .joins
        .iter()
        .filter_map(|(start, first)| first.map(|f| f.duration_since(*start).as_millis() as u64))
        .collect();
    joins.sort_unstable();
    let subscribers = s1.joins.len();
    let own = own1.saturating_sub(own0).as_secs_f64() / secs * 100.0;
    Ok(Figures {
        server: server.kind.name(),
        scenario: plan.name,
        publishers: plan.publishers(),
        subscribers,
        seconds: secs,
        forwarded_pps: forwarded as f64 / secs,
        server_cpu_pct: cpu.map(|c| c.as_secs_f64() / secs * 100.0),
        us_per_packet: cpu.map(|c| c.as_secs_f64() * 1e6 / forwarded.max(1) as f64),
        rss_idle_mib: rss_idle as f64 / 1024.0,
        rss_per_subscriber_kib: (rss_loaded.saturating_sub(rss_idle)) as f64 / subscribers.max(1) as f64,
        // Loss above counts gaps in the sequence numbers subscribers see; a server that rewrites
        // them (Sportello) hides packets it never forwarded, so also compare with what was offered.
        delivered_pct: {
            let offered = (s1.sent - s0.sent) as f64 * plan.fanout();
            (offered > 0.0).then(|| forwarded as f64 / offered * 100.0)
        },
        loss_pct: if expected > 0 { (expected.saturating_sub(received)) as f64 / expected as f64 * 100.0 } else { 0.0 },
        latency_ms: [percentile(&delays, 50.0), percentile(&delays, 95.0)].map(|v| v.map(|us| us as f64 / 1000.0)),
        latency_samples: delays.len(),
        join_ms: [percentile(&joins, 50.0), percentile(&joins, 95.0)].map(|v| v.map(|ms| ms as f64)),
        joined: joins.len(),
        receivers,
        join_errors: errors.len(),
        all_joined_after: joined_after,
        load_cpu_pct: own,
        load_cpu,
    })
}
