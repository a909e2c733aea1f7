//! `sfu-bench`: the SFU's cost per forwarded packet — 1 publisher (Opus + VP8 at real pace, over
//! UDP) → N subscribers, all real WebRTC peers (sans-IO `rtc` clients) on loopback, in a
//! loopback-only network namespace. The subscribers' transport is the variable: UDP, then ICE-TCP
//! (active TCP candidates to the SFU's listener, RFC 4571 framing), back to back in one process,
//! each phase on a fresh SFU so neither inherits the other's state.
//!
//! It reports, per phase, for the engine thread alone (ICE-TCP's reader and writer tasks run on that
//! thread's runtime, so their syscalls count too):
//! - CPU time per forwarded packet (from `/proc/self/task/<tid>/schedstat`, nanoseconds on CPU),
//!   hence forwarded packets per second per core, and the thread's wake-ups (schedstat's third field);
//! - heap bytes per subscriber: a counting allocator attributes every allocation made on the engine
//!   thread, so the clients living in the same process do not blur the figure;
//! - what the subscribers received over the window, so a transport that forwards but does not
//!   deliver (ICE-TCP's lossy queue dropping) shows.
//!
//! Usage: `cargo run --release -p sportello-tests --bin sfu-bench -- [SUBSCRIBERS] [SECONDS] [udp,tcp]`
//! The third argument lists the phases in order (default `udp,tcp`; `udp` alone is the figure of
//! the earlier BENCHMARKS.md sections). `SFU_BENCH_GSO=0` turns the SFU's UDP GSO off (on by
//! default, see `SfuConfig::udp_gso`), to measure it against the default in one build.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use sportello_sfu::{PublishedMid, Sfu, SfuConfig, SfuEvent, TcpLimits, TrackSource};
use sportello_tests::netns::ensure_loopback_namespace;
use sportello_tests::rtc_client::{Client, Error, pump};

/// Live heap bytes allocated by the thread named [`ENGINE_THREAD`] (minus what it freed).
static ENGINE_HEAP: AtomicI64 = AtomicI64::new(0);

thread_local! {
    /// 0 = not yet known, 1 = the engine thread, 2 = another thread, 3 = being determined.
    static KIND: Cell<u8> = const { Cell::new(0) };
}

struct Counting;

fn on_engine() -> bool {
    KIND.with(|k| match k.get() {
        1 => true,
        0 => {
            k.set(3); // reentrancy guard: naming the thread may allocate
            let engine = std::thread::current().name() == Some(ENGINE_THREAD);
            k.set(if engine { 1 } else { 2 });
            engine
        }
        _ => false,
    })
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if on_engine() {
            ENGINE_HEAP.fetch_add(layout.size() as i64, Ordering::Relaxed);
        }
        // SAFETY: forwarding the caller's layout to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if on_engine() {
            ENGINE_HEAP.fetch_sub(layout.size() as i64, Ordering::Relaxed);
        }
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// The name of the SFU's one media thread (the bench runs one engine: `media_threads` = 1).
const ENGINE_THREAD: &str = "sfu-media-0";

/// The engine thread of the SFU just started: the one thread named [`ENGINE_THREAD`]. The previous
/// phase's engine must have stopped first, so there is no doubt which one is measured.
fn engine_tid() -> Option<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc/self/task").ok()? {
        let path = entry.ok()?.path();
        let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        if comm.trim() == ENGINE_THREAD {
            found.push(path);
        }
    }
    if found.len() == 1 { found.pop() } else { None }
}

/// Nanoseconds on CPU and times scheduled in, from the thread's schedstat.
fn schedstat(task: &std::path::Path) -> (u64, u64) {
    let s = std::fs::read_to_string(task.join("schedstat")).unwrap_or_default();
    let f: Vec<u64> = s.split_whitespace().filter_map(|x| x.parse().ok()).collect();
    (f.first().copied().unwrap_or(0), f.get(2).copied().unwrap_or(0))
}

#[derive(Clone, Copy, PartialEq)]
enum Transport {
    Udp,
    Tcp,
}

impl Transport {
    fn name(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "ICE-TCP",
        }
    }
}

struct Figures {
    transport: Transport,
    per_packet_us: f64,
}

fn main() {
    ensure_loopback_namespace();
    let mut args = std::env::args().skip(1);
    let subscribers: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(20);
    let seconds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(10);
    let phases: Vec<Transport> = match args.next() {
        None => vec![Transport::Udp, Transport::Tcp],
        Some(list) => {
            let parsed: Option<Vec<Transport>> = list
                .split(',')
                .map(|t| match t.trim() {
                    "udp" => Some(Transport::Udp),
                    "tcp" => Some(Transport::Tcp),
                    _ => None,
                })
                .collect();
            match parsed {
                Some(p) if !p.is_empty() => p,
                _ => {
                    eprintln!("sfu-bench: the third argument lists phases: udp, tcp, udp,tcp or tcp,udp");
                    std::process::exit(2);
                }
            }
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let mut results = Vec::new();
    for (i, &transport) in phases.iter().enumerate() {
        if i > 0 {
            println!();
        }
        match rt.block_on(run(transport, subscribers, seconds)) {
            Ok(f) => results.push(f),
            Err(e) => {
                eprintln!("sfu-bench failed ({} subscribers): {e}", transport.name());
                std::process::exit(1);
            }
        }
    }
    let udp = results.iter().find(|f| f.transport == Transport::Udp);
    let tcp = results.iter().find(|f| f.transport == Transport::Tcp);
    if let (Some(u), Some(t)) = (udp, tcp) {
        println!();
        println!(
            "ICE-TCP / UDP          {:.2}  (engine CPU per forwarded packet, {:.2} us / {:.2} us)",
            t.per_packet_us / u.per_packet_us.max(0.001),
            t.per_packet_us,
            u.per_packet_us
        );
    }
}

fn subscriber_config(transport: Transport, n: usize) -> Result<SfuConfig, Error> {
    // The SFU's defaults; BENCHMARKS.md's figures from 2026-12-06 to 12-07 had UDP GSO off
    // (`SFU_BENCH_GSO=0` compares with them).
    let mut config = SfuConfig { udp_bind: "127.0.0.1:0".parse()?, ..Default::default() };
    if std::env::var("SFU_BENCH_GSO").is_ok_and(|v| v == "0") {
        config.udp_gso = false;
    }
    if transport == Transport::Tcp {
        config.tcp_bind = Some("127.0.0.1:0".parse()?);
        // Every client connects from 127.0.0.1: the per-address cap must admit them all.
        let defaults = TcpLimits::default();
        config.tcp_limits =
            TcpLimits { max_per_address: n + 8, max_connections: defaults.max_connections.max(n + 8), ..defaults };
    }
    Ok(config)
}

async fn run(transport: Transport, n: usize, seconds: u64) -> Result<Figures, Error> {
    println!("subscribers over       {}", transport.name());
    let (sfu, mut events) = Sfu::start(subscriber_config(transport, n)?)?;
    // The new thread names itself once it runs: wait for it.
    let mut task = engine_tid();
    let named_by = Instant::now() + Duration::from_secs(5);
    while task.is_none() && Instant::now() < named_by {
        tokio::time::sleep(Duration::from_millis(10)).await;
        task = engine_tid();
    }
    let task = task.ok_or("cannot tell the engine thread (is a previous engine still running?)")?;
    let room: std::sync::Arc<str> = "bench".into();
    let heap_empty = ENGINE_HEAP.load(Ordering::Relaxed);

    sfu.join(room.clone(), "pub".into()).await?;
    let mut publisher = Client::new("pub").await?;
    publisher.add_track(false)?;
    publisher.add_track(true)?;
    let (sdp, mids) = publisher.offer()?;
    let mids = mids
        .into_iter()
        .map(|(mid, v)| PublishedMid { mid, source: if v { TrackSource::Camera } else { TrackSource::Microphone } })
        .collect();
    let answer = sfu.publish_offer(room.clone(), "pub".into(), sdp, mids).await?;
    publisher.apply_answer(answer)?;

    let mut subs = Vec::new();
    for i in 0..n {
        let name = format!("sub{i}");
        sfu.join(room.clone(), name.as_str().into()).await?;
        let client = match transport {
            Transport::Udp => Client::new(&name).await?,
            Transport::Tcp => Client::new_tcp(&name).await?,
        };
        subs.push((name.clone(), client));
    }
    // Connect everyone: answer offers until every subscriber receives video.
    let deadline = Instant::now() + Duration::from_secs(30 + n as u64);
    loop {
        while let Ok(ev) = events.try_recv() {
            if let SfuEvent::SubscribeOffer { participant, sdp, .. } = ev
                && let Some((_, c)) = subs.iter_mut().find(|(name, _)| **name == *participant)
            {
                let answer = c.answer(sdp)?;
                sfu.subscribe_answer(room.clone(), participant, answer).await?;
            }
        }
        let mut all: Vec<&mut Client> = vec![&mut publisher];
        all.extend(subs.iter_mut().map(|(_, c)| c));
        pump(&mut all, Duration::from_millis(50), |_| false).await;
        if subs.iter().all(|(_, c)| c.received("pub/pub/camera") > 5) {
            break;
        }
        if Instant::now() > deadline {
            return Err("not every subscriber received media in time".into());
        }
    }
    if transport == Transport::Tcp && subs.iter().any(|(_, c)| c.tcp_closed()) {
        return Err("an ICE-TCP subscriber's connection closed".into());
    }

    let received = |subs: &[(String, Client)]| -> u64 { subs.iter().flat_map(|(_, c)| c.received.values()).sum() };
    let received0 = received(&subs);
    // For an outside profiler (`perf stat -t`, `perf record -t`) attached over the window.
    let tid = task.file_name().and_then(|t| t.to_str()).unwrap_or("?");
    println!("measuring engine tid   {tid} for {seconds} s");
    let ((cpu0, wakes0), stats0, t0) = (schedstat(&task), sfu.stats().await?, Instant::now());
    let mut all: Vec<&mut Client> = vec![&mut publisher];
    all.extend(subs.iter_mut().map(|(_, c)| c));
    pump(&mut all, Duration::from_secs(seconds), |_| false).await;
    let ((cpu1, wakes1), stats1, elapsed) = (schedstat(&task), sfu.stats().await?, t0.elapsed());
    let heap_loaded = ENGINE_HEAP.load(Ordering::Relaxed);
    let delivered = received(&subs) - received0;

    let forwarded = stats1.forwarded_packets - stats0.forwarded_packets;
    let cpu_ns = cpu1.saturating_sub(cpu0);
    let per_packet_us = cpu_ns as f64 / forwarded.max(1) as f64 / 1000.0;
    let heap_per_sub = (heap_loaded - heap_empty) as f64 / n as f64 / 1024.0;
    let secs = elapsed.as_secs_f64();
    println!("subscribers            {n}");
    println!("measured for           {secs:.1} s");
    println!("forwarded packets      {forwarded} ({:.0}/s)", forwarded as f64 / secs);
    println!(
        "received by clients    {delivered} ({:.1}% of forwarded)",
        delivered as f64 / forwarded.max(1) as f64 * 100.0
    );
    println!("dropped packets        {}", stats1.dropped_packets - stats0.dropped_packets);
    println!("engine CPU             {:.1}% of one core", cpu_ns as f64 / elapsed.as_nanos() as f64 * 100.0);
    println!("engine wake-ups        {:.0}/s", wakes1.saturating_sub(wakes0) as f64 / secs);
    println!(
        "engine CPU per packet  {per_packet_us:.2} us  (=> {:.0} packets/s per core)",
        1e6 / per_packet_us.max(0.001)
    );
    println!("engine heap per sub    {heap_per_sub:.1} KiB (publisher included, spread over subscribers)");

    // Stop this engine before the next phase starts its own (dropping the handle ends its thread).
    for (_, c) in &mut subs {
        c.close();
    }
    publisher.close();
    drop(subs);
    drop(sfu);
    let end = Instant::now() + Duration::from_secs(10);
    while engine_tid().is_some() && Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(Figures { transport, per_packet_us })
}
