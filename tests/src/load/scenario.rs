//! The scenarios (who joins which room, publishing or only watching, and when) and the run that
//! drives one of them against one server and measures it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sportello_backoffice::token::{Claims, Role};
use tokio::sync::watch;

use super::engine::Engine;
use super::figures::{Figures, percentile};
use super::media::Media;
use super::peer::Receive;
use super::proc_stat;
use super::servers::{Kind, Server};
use super::{janus, sportello, whep};

#[derive(Clone, Debug)]
pub struct Participant {
    pub room: String,
    pub identity: String,
    /// Publishes Opus + VP8; the number staggers its place in the clip.
    pub publish: Option<usize>,
    /// A WHEP player of the program of `room`'s council session, not a participant of the room.
    pub whep: bool,
}

/// Who joins: `first` one after the other (`ramp` apart); once their media flows and one more
/// second has passed (the server's RSS is read then), `then` spread evenly over `spread`.
pub struct Plan {
    pub name: &'static str,
    pub first: Vec<Participant>,
    pub ramp: Duration,
    pub then: Vec<Participant>,
    pub spread: Duration,
    /// `council-whep`: a seeded council session whose chair is `first[0]`; `then` are WHEP players.
    pub whep: bool,
}

#[derive(Clone, Debug)]
pub struct Sizes {
    /// office: rooms × participants per room.
    pub rooms: usize,
    pub room_size: usize,
    /// council: publishers → viewers; council-whep: publishers in the room → WHEP players of its
    /// program. `None`: each scenario's default (20 and 1,000).
    pub publishers: usize,
    pub viewers: Option<usize>,
    /// join storm: participants joining within `spread`.
    pub storm: usize,
    pub spread: Duration,
}

impl Plan {
    pub fn new(name: &str, s: &Sizes) -> Result<Plan, String> {
        let p = |room: &str, id: String, publish: Option<usize>| Participant {
            room: room.into(),
            identity: id,
            publish,
            whep: false,
        };
        Ok(match name {
            // The first room, then the others 30 ms apart: the first settles before the others join,
            // so the memory they add is what a participant costs a warm server (`Figures`).
            "office" => {
                let mut everyone: Vec<Participant> = (0..s.rooms)
                    .flat_map(|r| (0..s.room_size).map(move |i| (r, i)))
                    .map(|(r, i)| p(&format!("office-{r}"), format!("o{r}p{i}"), Some(r * s.room_size + i)))
                    .collect();
                let then = everyone.split_off(s.room_size.min(everyone.len()));
                let ramp = Duration::from_millis(30);
                Plan { name: "office", first: everyone, ramp, spread: ramp * then.len() as u32, then, whep: false }
            }
            "council" => {
                let viewers = s.viewers.unwrap_or(20);
                Plan {
                    name: "council",
                    first: (0..s.publishers).map(|i| p("council", format!("member{i}"), Some(i))).collect(),
                    ramp: Duration::from_millis(100),
                    then: (0..viewers).map(|i| p("council", format!("viewer{i}"), None)).collect(),
                    spread: Duration::from_millis(20 * viewers as u64),
                    whep: false,
                }
            }
            "join-storm" => Plan {
                name: "join-storm",
                first: vec![p("storm", "speaker".into(), Some(0))],
                ramp: Duration::ZERO,
                then: (0..s.storm).map(|i| p("storm", format!("s{i}"), None)).collect(),
                spread: s.spread,
                whep: false,
            },
            // The council room's members publish (member0 chairs, so the program shows and carries
            // their camera and microphone); the public watches the program by WHEP, 100 a second.
            "council-whep" => {
                let viewers = s.viewers.unwrap_or(1000);
                Plan {
                    name: "council-whep",
                    first: (0..s.publishers.max(1)).map(|i| p("council", format!("member{i}"), Some(i))).collect(),
                    ramp: Duration::from_millis(100),
                    then: (0..viewers)
                        .map(|i| Participant { whep: true, ..p("council", format!("viewer{i}"), None) })
                        .collect(),
                    spread: Duration::from_millis(10 * viewers as u64),
                    whep: true,
                }
            }
            other => return Err(format!("unknown scenario {other:?} (office, council, join-storm, council-whep)")),
        })
    }

    /// Packets the subscribers should have received over a window in which each publisher sent
    /// `sent_by` (name, packets): each publisher's packets times the participants of its room but
    /// itself. Not for `council-whep`, whose figure is [`Plan::offered_to_players`].
    fn offered(&self, sent_by: &[(String, u64)]) -> f64 {
        sent_by
            .iter()
            .map(|(name, sent)| {
                let Some(p) = self.everyone().find(|p| &p.identity == name) else { return 0.0 };
                let fanout = self.everyone().filter(|o| o.room == p.room && o.identity != p.identity).count();
                *sent as f64 * fanout as f64
            })
            .sum()
    }

    /// `council-whep`: what the WHEP players should have received — the chair's packets (the
    /// program shows and carries the chair while nobody has the floor) times the players. The
    /// room's own subscriptions are left out: the council mutes (gates) the councillors'
    /// microphones, so their audio is not forwarded by design.
    fn offered_to_players(&self, sent_by: &[(String, u64)]) -> f64 {
        let chair = self.first.first().map(|c| c.identity.as_str()).unwrap_or_default();
        let sent = sent_by.iter().filter(|(n, _)| n == chair).map(|(_, s)| *s).sum::<u64>();
        sent as f64 * self.then.iter().filter(|p| p.whep).count() as f64
    }

    fn everyone(&self) -> impl Iterator<Item = &Participant> + Clone {
        self.first.iter().chain(&self.then)
    }

    /// Participants that should receive media: someone else publishes in their room.
    fn receivers(&self) -> usize {
        receivers_among(self.everyone())
    }

    pub fn publishers(&self) -> usize {
        self.everyone().filter(|p| p.publish.is_some()).count()
    }
}

/// Those of `group` who should receive media from the others of `group`: someone else of it
/// publishes in their room.
fn receivers_among<'a>(group: impl Iterator<Item = &'a Participant> + Clone) -> usize {
    group
        .clone()
        .filter(|me| group.clone().any(|o| o.room == me.room && o.identity != me.identity && o.publish.is_some()))
        .count()
}

/// Waits until `receivers` subscriber connections have had media, or `within` has passed.
async fn media_at(engine: &Engine, receivers: usize, within: Duration) -> Result<(), String> {
    let deadline = Instant::now() + within;
    loop {
        let s = engine.snapshot().await?;
        let with_media = s.joins.iter().filter(|(_, first)| first.is_some()).count();
        if with_media >= receivers || Instant::now() > deadline {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs `plan` against a freshly started server and measures `measure` of steady state.
pub async fn run(
    server: &Server,
    plan: &Plan,
    media: Arc<Media>,
    measure: Duration,
    load_cpu: usize,
    receive: Receive,
) -> Result<Figures, String> {
    if plan.whep && (server.kind != Kind::Sportello || server.council.is_none()) {
        return Err(format!("{} needs Sportello with a council session (Janus has no WHEP)", plan.name));
    }
    // Our sockets live on the server's media address: for Janus the bridge's 127.0.0.2 (libnice
    // pins its sockets to that interface; see `servers::janus_interface`).
    let engine = Engine::start(media, server.client_ip, receive)?;
    // `--edge`: the WHEP players ask the edge node, whose figures these are; the origin's CPU is
    // printed beside them.
    let origin = server;
    let server = server.edge.as_deref().unwrap_or(server);
    let rss_idle = proc_stat::rss_kib(server.pid).unwrap_or(0);
    let (stop_tx, stop) = watch::channel(false);
    let rooms = match server.kind {
        Kind::Janus => janus::Rooms::create(server.http, plan.everyone().map(|p| p.room.clone())).await?,
        Kind::Sportello => janus::Rooms::default(),
    };
    let mut tasks = Vec::new();
    let start = Instant::now();
    let waves = [(&plan.first, plan.ramp), (&plan.then, plan.spread / plan.then.len().max(1) as u32)];
    // The server's RSS and its subscriber connections once the first wave has settled, when a
    // second one follows: the second wave's share of the RSS is what a subscriber costs a server
    // that has already paid its one-time costs (database connections, worker threads, the first
    // requests' buffers: a few MiB, which the delta from idle spreads over the participants).
    let mut settled: Option<(u64, usize)> = None;
    for (n, (wave, gap)) in waves.into_iter().enumerate() {
        if n == 1 && !plan.first.is_empty() && !plan.then.is_empty() {
            media_at(&engine, receivers_among(plan.first.iter()), Duration::from_secs(15)).await?;
            tokio::time::sleep(Duration::from_secs(1)).await;
            let joined = engine.snapshot().await?.joins.len();
            // Unreadable, no figure: a zero here would pass the whole RSS off as the second wave's.
            settled = proc_stat::rss_kib(server.pid).map(|rss| (rss, joined));
        }
        if n == 1
            && plan.whep
            && let Some(council) = &origin.council
        {
            // Players wait for the program (the chair's arrival puts the session on air).
            whep::wait_on_air(server.http, &council.session, Duration::from_secs(15)).await?;
        }
        for who in wave.iter() {
            let (engine, stop, mut who) = (engine.clone(), stop.clone(), who.clone());
            let task = match (server.kind, &origin.council) {
                (Kind::Sportello, Some(council)) if who.whep => {
                    tokio::spawn(whep::viewer(engine, server.http, council.session.clone(), who, stop))
                }
                (Kind::Sportello, council) => {
                    let key = origin.tokens.as_ref().ok_or("no token key")?;
                    let mut role = if who.publish.is_some() { Role::Participant } else { Role::Viewer };
                    let mut identity = who.identity.clone();
                    // A seeded council: members are its staff users, the first one chairs.
                    if let Some(c) = council
                        && let Some(i) = plan.first.iter().position(|p| p.identity == who.identity)
                    {
                        identity = format!("user-{}", c.users.get(i).ok_or("fewer council users than members")?);
                        role = if i == 0 { Role::Host } else { Role::Participant };
                        who.room = format!("council-{}", c.session);
                    }
                    let claims = Claims::new(&who.room, &identity, &who.identity, role, Duration::from_secs(3600));
                    let token = key.issue(&claims).map_err(|e| format!("token: {e}"))?;
                    tokio::spawn(sportello::participant(engine, origin.http, token, who, stop))
                }
                (Kind::Janus, _) => tokio::spawn(janus::participant(engine, server.http, rooms.clone(), who, stop)),
            };
            tasks.push(task);
            tokio::time::sleep(gap).await;
        }
    }
    // Warm-up: every receiver gets media (or the deadline passes), then one more second.
    let receivers = plan.receivers();
    media_at(&engine, receivers, Duration::from_secs(15)).await?;
    let joined_after = start.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;

    engine.measure(true);
    let s0 = engine.snapshot().await?;
    let (cpu0, own0, t0) = (proc_stat::cpu_time(server.pid), proc_stat::own_cpu_time(), Instant::now());
    let origin_cpu0 = proc_stat::cpu_time(origin.pid);
    let m0 = server.engine_counters().await;
    let media_port = server.media.map(|m| m.port());
    let u0 = proc_stat::udp_socket_drops(media_port).zip(proc_stat::udp_drops());
    tokio::time::sleep(measure).await;
    let s1 = engine.snapshot().await?;
    let (cpu1, own1, elapsed) = (proc_stat::cpu_time(server.pid), proc_stat::own_cpu_time(), t0.elapsed());
    if origin.pid != server.pid {
        let used = |a: Option<Duration>, b: Option<Duration>| b.zip(a).map(|(b, a)| (b - a).as_secs_f64());
        println!(
            "  --edge: the edge (figures below) used {:.3} cores, the origin (chair, program, recording, one relay leg) {:.3}",
            used(cpu0, cpu1).unwrap_or(0.0) / elapsed.as_secs_f64(),
            used(origin_cpu0, proc_stat::cpu_time(origin.pid)).unwrap_or(0.0) / elapsed.as_secs_f64()
        );
    }
    let m1 = server.engine_counters().await;
    let u1 = proc_stat::udp_socket_drops(media_port).zip(proc_stat::udp_drops());
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
    if std::env::var_os("LOAD_DEBUG").is_some() {
        let ms = |mut v: Vec<u64>| {
            v.sort_unstable();
            format!("p50 {:?} p95 {:?} ms", percentile(&v, 50.0), percentile(&v, 95.0))
        };
        let steps = &s1.join_steps;
        eprintln!(
            "load: joins: subscribe connection made {}, connected {}",
            ms(steps.iter().map(|(c, _)| c.as_millis() as u64).collect()),
            ms(steps.iter().filter_map(|(_, c)| c.map(|c| c.as_millis() as u64)).collect()),
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
    let sent_by: Vec<(String, u64)> = s1
        .sent_by
        .iter()
        .map(|(name, sent)| {
            let before = s0.sent_by.iter().find(|(n, _)| n == name).map_or(0, |(_, s)| *s);
            (name.clone(), sent.saturating_sub(before))
        })
        .collect();
    // council-whep: delivered of offered over the WHEP players only (see `offered_to_players`).
    let (delivered, offered) = if plan.whep {
        (s1.whep.rtp.saturating_sub(s0.whep.rtp), plan.offered_to_players(&sent_by))
    } else {
        (forwarded, plan.offered(&sent_by))
    };
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
        rss_per_added_subscriber_kib: settled.and_then(|(rss, before)| {
            let added = subscribers.saturating_sub(before);
            (added > 0).then(|| rss_loaded.saturating_sub(rss) as f64 / added as f64)
        }),
        // Loss above counts gaps in the sequence numbers subscribers see; a server that rewrites
        // them (Sportello) hides packets it never forwarded, so also compare with what was offered.
        delivered_pct: (offered > 0.0).then(|| delivered as f64 / offered * 100.0),
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
        receive,
        udp_drops: u0.zip(u1).map(|((s0, n0), (s1, n1))| {
            let per_s = |a: u64, b: u64| b.saturating_sub(a) as f64 / secs;
            [per_s(s0[0], s1[0]), per_s(s0[1], s1[1]), per_s(n0[1], n1[1])]
        }),
        engine: m0.zip(m1).map(|(a, b)| [(b[0] - a[0]) / secs * 100.0, (b[1] - a[1]) / secs]),
        sampled: [
            s1.counts.sampled.saturating_sub(s0.counts.sampled),
            s1.counts.sampled_ok.saturating_sub(s0.counts.sampled_ok),
        ],
    })
}
