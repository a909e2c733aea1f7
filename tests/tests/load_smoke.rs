//! Smoke run of the load tool (`sportello-load`) against a Sportello server process: small N, a few
//! seconds, Sportello only. Asserts that media flowed, that (nearly) all of it was delivered, and
//! that every figure was produced — never that it was fast (speed is measured by `scripts/bench-compare`, see BENCHMARKS.md).
//!
//! Needs `target/<profile>/sportello` (built by `cargo build --workspace`, as `scripts/test` does).
//! Runs inside a loopback-only network namespace (own `main`, see `sportello_tests::netns`).

use std::process::Command;

use sportello_tests::netns::ensure_loopback_namespace;

fn main() {
    ensure_loopback_namespace();
    match smoke() {
        Ok(()) => println!("1 passed, 0 failed"),
        Err(e) => {
            eprintln!("load_smoke: FAILED: {e}");
            println!("0 passed, 1 failed");
            std::process::exit(1);
        }
    }
}

fn smoke() -> Result<(), String> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let load_cpu = if cpus > 1 { "1" } else { "0" };
    let out = Command::new(env!("CARGO_BIN_EXE_sportello-load"))
        .args(["--server", "sportello", "--scenario", "office,council", "--rooms", "1", "--room-size", "2"])
        .args(["--publishers", "1", "--viewers", "2", "--seconds", "3", "--machine", "--load-cpu", load_cpu])
        .output()
        .map_err(|e| format!("running sportello-load: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    print!("{stdout}");
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    if !out.status.success() {
        return Err(format!("sportello-load exited with {}", out.status));
    }
    for scenario in ["office", "council"] {
        let figures: Vec<(&str, &str)> = stdout
            .lines()
            .filter_map(|l| l.strip_prefix(&format!("figure Sportello {scenario} ")))
            .filter_map(|l| l.split_once(' '))
            .collect();
        let value = |key: &str| figures.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
        for key in [
            "forwarded_packets_s",
            "server_cpu",
            "server_cpu_per_forwarded_packet",
            "forwarded_packets_s_per_core",
            "server_rss_delta_per_subscriber",
            "loss",
            "one_way_latency_p50",
            "one_way_latency_p95",
            "join_first_media_p50",
            "join_first_media_p95",
            "load_tool_cpu",
        ] {
            match value(key) {
                None | Some("none") => return Err(format!("{scenario}: figure {key} missing: {figures:?}")),
                Some(_) => {}
            }
        }
        // The council's viewers join after its members: their share of the RSS is measured apart.
        let added = "server_rss_per_subscriber_the_second_wave_added";
        if scenario == "council" && matches!(value(added), None | Some("none")) {
            return Err(format!("{scenario}: figure {added} missing: {figures:?}"));
        }
        let forwarded: f64 = value("forwarded_packets_s").and_then(|v| v.parse().ok()).unwrap_or(0.0);
        if forwarded <= 0.0 {
            return Err(format!("{scenario}: no packets flowed"));
        }
        // Correctness, not speed: the SFU forwards what the publishers send (it once started video
        // downtracks at keyframes the load publisher never sent on request: 81.7 % here).
        let delivered: f64 = value("delivered_of_offered").and_then(|v| v.parse().ok()).unwrap_or(0.0);
        if delivered < 90.0 {
            return Err(format!("{scenario}: only {delivered:.1} % of the offered packets delivered"));
        }
        if value("join_errors") != Some("0.000") {
            return Err(format!("{scenario}: join errors: {:?}", value("join_errors")));
        }
    }
    Ok(())
}
