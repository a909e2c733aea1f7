//! `sfu-bench`: a first measurement of the SFU's cost — 1 publisher (Opus + VP8 at real pace) → N
//! subscribers, all real WebRTC peers (sans-IO `rtc` clients) over loopback UDP, in a loopback-only
//! network namespace.
//!
//! It reports, for the engine thread alone:
//! - CPU time per forwarded packet (from `/proc/self/task/<tid>/schedstat`, nanoseconds on CPU),
//!   hence forwarded packets per second per core;
//! - heap bytes per subscriber: a counting allocator attributes every allocation made on the engine
//!   thread, so the clients living in the same process do not blur the figure.
//!
//! Usage: `cargo run --release -p sportello-tests --bin sfu-bench -- [SUBSCRIBERS] [SECONDS]`

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use sportello_sfu::{PublishedMid, Sfu, SfuConfig, SfuEvent, TrackSource};
use sportello_tests::netns::ensure_loopback_namespace;
use sportello_tests::rtc_client::{Client, Error, pump};

/// Live heap bytes allocated by the thread named `sfu-media` (minus what it freed).
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
            let engine = std::thread::current().name() == Some("sfu-media");
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

fn engine_cpu_ns() -> Option<u64> {
    for entry in std::fs::read_dir("/proc/self/task").ok()? {
        let path = entry.ok()?.path();
        let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        if comm.trim() == "sfu-media" {
            let s = std::fs::read_to_string(path.join("schedstat")).ok()?;
            return s.split_whitespace().next()?.parse().ok();
        }
    }
    None
}

fn main() {
    ensure_loopback_namespace();
    let mut args = std::env::args().skip(1);
    let subscribers: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(20);
    let seconds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(10);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    if let Err(e) = rt.block_on(run(subscribers, seconds)) {
        eprintln!("sfu-bench failed: {e}");
        std::process::exit(1);
    }
}

async fn run(n: usize, seconds: u64) -> Result<(), Error> {
    let (sfu, mut events) = Sfu::start(SfuConfig { udp_bind: "127.0.0.1:0".parse()?, ..Default::default() })?;
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
        subs.push((name.clone(), Client::new(&name).await?));
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

    let (cpu0, stats0, t0) = (engine_cpu_ns().unwrap_or(0), sfu.stats().await?, Instant::now());
    let mut all: Vec<&mut Client> = vec![&mut publisher];
    all.extend(subs.iter_mut().map(|(_, c)| c));
    pump(&mut all, Duration::from_secs(seconds), |_| false).await;
    let (cpu1, stats1, elapsed) = (engine_cpu_ns().unwrap_or(0), sfu.stats().await?, t0.elapsed());
    let heap_loaded = ENGINE_HEAP.load(Ordering::Relaxed);

    let forwarded = stats1.forwarded_packets - stats0.forwarded_packets;
    let cpu_ns = cpu1.saturating_sub(cpu0);
    let per_packet_us = cpu_ns as f64 / forwarded.max(1) as f64 / 1000.0;
    let heap_per_sub = (heap_loaded - heap_empty) as f64 / n as f64 / 1024.0;
    println!("subscribers            {n}");
    println!("measured for           {:.1} s", elapsed.as_secs_f64());
    println!("forwarded packets      {forwarded} ({:.0}/s)", forwarded as f64 / elapsed.as_secs_f64());
    println!("dropped packets        {}", stats1.dropped_packets - stats0.dropped_packets);
    println!("engine CPU             {:.1}% of one core", cpu_ns as f64 / elapsed.as_nanos() as f64 * 100.0);
    println!(
        "engine CPU per packet  {per_packet_us:.2} us  (=> {:.0} packets/s per core)",
        1e6 / per_packet_us.max(0.001)
    );
    println!("engine heap per sub    {heap_per_sub:.1} KiB (publisher included, spread over subscribers)");
    Ok(())
}
