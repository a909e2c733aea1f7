//! What one run measured, printed alone or side by side with the other server's run.

use std::time::Duration;

use super::peer::Receive;

pub struct Figures {
    pub server: &'static str,
    pub scenario: &'static str,
    pub publishers: usize,
    /// Subscriber peer connections (participants receiving media).
    pub subscribers: usize,
    pub seconds: f64,
    /// RTP packets received by all subscribers per second (= what the server forwarded).
    pub forwarded_pps: f64,
    pub server_cpu_pct: Option<f64>,
    pub us_per_packet: Option<f64>,
    pub rss_idle_mib: f64,
    /// The RSS delta from idle over the subscriber connections: with few of them, mostly the
    /// server's one-time costs of its first joins.
    pub rss_per_subscriber_kib: f64,
    /// What the second wave of joins added, over its subscriber connections (a plan of two waves):
    /// what one more subscriber costs a server that is already running rooms.
    pub rss_per_added_subscriber_kib: Option<f64>,
    pub loss_pct: f64,
    /// Packets received by subscribers ÷ (packets publishers sent × fan-out), over the window.
    pub delivered_pct: Option<f64>,
    /// One-way delay publisher → subscriber through the server, p50 and p95.
    pub latency_ms: [Option<f64>; 2],
    pub latency_samples: usize,
    /// Signaling connect → first media packet, p50 and p95.
    pub join_ms: [Option<f64>; 2],
    pub joined: usize,
    pub receivers: usize,
    pub join_errors: usize,
    pub all_joined_after: Duration,
    pub load_cpu_pct: f64,
    pub load_cpu: usize,
    /// How the subscriber connections read media.
    pub receive: Receive,
    /// Light path: packets handed to `rtc` (probes and the sample) and those it decrypted.
    pub sampled: [u64; 2],
    /// Sportello's `/metrics` over the window: its media threads' busy share (% of one core, summed) and the
    /// packets/s it evicted from full subscriber queues.
    pub engine: Option<[f64; 2]>,
    /// Datagrams/s the kernel dropped in the run's namespace: at the server's media socket's full
    /// receive buffer (Sportello), at every other socket's (the load tool's), failed sends.
    pub udp_drops: Option<[f64; 3]>,
}

/// Nearest-rank percentile of sorted values.
pub fn percentile<T: Copy>(sorted: &[T], p: f64) -> Option<T> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// A figure's label, its value, and whether higher is better (for the reader of the ratio).
type Row = (&'static str, Option<f64>, &'static str);

impl Figures {
    pub fn rows(&self) -> Vec<Row> {
        let pps_per_core = self.us_per_packet.filter(|us| *us > 0.0).map(|us| 1e6 / us);
        vec![
            ("publishers → subscriber connections", Some(self.publishers as f64 * 1e6 + self.subscribers as f64), "n"),
            ("forwarded packets/s", Some(self.forwarded_pps), "higher"),
            ("server CPU, % of one core", self.server_cpu_pct, "lower"),
            ("server CPU per forwarded packet (µs)", self.us_per_packet, "lower"),
            ("→ forwarded packets/s per core", pps_per_core, "higher"),
            ("server RSS idle (MiB)", Some(self.rss_idle_mib), "lower"),
            ("server RSS delta per subscriber (KiB)", Some(self.rss_per_subscriber_kib), "lower"),
            ("server RSS per subscriber the second wave added (KiB)", self.rss_per_added_subscriber_kib, "lower"),
            ("loss (%)", Some(self.loss_pct), "lower"),
            ("delivered of offered (%)", self.delivered_pct, "higher"),
            ("one-way latency p50 (ms)", self.latency_ms[0], "lower"),
            ("one-way latency p95 (ms)", self.latency_ms[1], "lower"),
            ("one-way latency samples (probes received)", Some(self.latency_samples as f64), "higher"),
            ("join → first media p50 (ms)", self.join_ms[0], "lower"),
            ("join → first media p95 (ms)", self.join_ms[1], "lower"),
            ("receivers with media / expected", Some(self.joined as f64 * 1e6 + self.receivers as f64), "n"),
            ("join errors", Some(self.join_errors as f64), "lower"),
            ("load tool CPU, % of one core", Some(self.load_cpu_pct), "lower"),
            // All the tool's work (publishers' sending and signaling too) per packet it received.
            ("load tool CPU per received packet (µs)", self.load_us_per_packet(), "lower"),
            ("→ packets/s the load tool can count per core", self.load_us_per_packet().map(|us| 1e6 / us), "higher"),
            ("light path: sampled packets rtc decrypted (%)", self.sampled_ok_pct(), "higher"),
            ("server media threads busy (% of one core, summed)", self.engine.map(|e| e[0]), "lower"),
            ("server queue drops/s (full subscriber queues)", self.engine.map(|e| e[1]), "lower"),
            ("kernel receive drops/s at the server's media socket", self.udp_drops.map(|u| u[0]), "lower"),
            ("kernel receive drops/s at the load tool's sockets", self.udp_drops.map(|u| u[1]), "lower"),
            ("kernel UDP send-buffer errors/s", self.udp_drops.map(|u| u[2]), "lower"),
        ]
    }

    fn load_us_per_packet(&self) -> Option<f64> {
        let packets = self.forwarded_pps * self.seconds;
        (packets > 0.0).then(|| self.load_cpu_pct / 100.0 * self.seconds * 1e6 / packets)
    }

    fn sampled_ok_pct(&self) -> Option<f64> {
        let [sampled, ok] = self.sampled;
        (self.receive == Receive::Light && sampled > 0).then(|| ok as f64 / sampled as f64 * 100.0)
    }

    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        if self.load_cpu_pct >= 90.0 {
            w.push(format!(
                "WARNING: the load tool used {:.0}% of a core on {} ({}): it saturated, the figures of {} are a \
                 floor, not the server's limit",
                self.load_cpu_pct, self.server, self.scenario, self.server
            ));
        }
        // Packets still inside `rtc` when the window closed make a few tenths of a percent.
        if self.sampled_ok_pct().is_some_and(|pct| pct < 99.0) {
            w.push(format!(
                "WARNING: rtc decrypted only {:.1}% of the light path's sample on {} ({}): it may count datagrams \
                 that are not this connection's SRTP",
                self.sampled_ok_pct().unwrap_or(0.0),
                self.server,
                self.scenario
            ));
        }
        if self.joined < self.receivers {
            w.push(format!(
                "WARNING: {} of {} receivers got media on {} ({})",
                self.joined, self.receivers, self.server, self.scenario
            ));
        }
        w
    }
}

fn cell(kind: &str, v: Option<f64>) -> String {
    match v {
        None => "—".into(),
        // Counts packed as a * 10⁶ + b print as "a / b".
        Some(v) if kind == "n" => format!("{} / {}", (v / 1e6).floor(), v % 1e6),
        Some(v) if v.abs() >= 100.0 => format!("{v:.0}"),
        Some(v) if v.abs() >= 10.0 => format!("{v:.1}"),
        Some(v) => format!("{v:.2}"),
    }
}

/// One server's figures as a two-column table.
pub fn print_one(f: &Figures) {
    println!("\n{} — {} ({:.1} s measured)", f.scenario, f.server, f.seconds);
    println!("| figure | {} |\n|---|---:|", f.server);
    for (label, v, kind) in f.rows() {
        println!("| {label} | {} |", cell(kind, v));
    }
    for w in f.warnings() {
        println!("{w}");
    }
}

/// Both servers side by side with the ratio Sportello / Janus.
pub fn print_compare(a: &Figures, b: &Figures) {
    println!("\n{} — {:.1} s measured per server", a.scenario, a.seconds);
    println!("| figure | {} | {} | ratio {}/{} |\n|---|---:|---:|---:|", a.server, b.server, a.server, b.server);
    for ((label, va, kind), (_, vb, _)) in a.rows().into_iter().zip(b.rows()) {
        let ratio = match (va, vb, kind) {
            (_, _, "n") => "".into(),
            (Some(x), Some(y), _) if y != 0.0 => format!("{:.2}", x / y),
            _ => "—".into(),
        };
        println!("| {label} | {} | {} | {ratio} |", cell(kind, va), cell(kind, vb));
    }
    for w in a.warnings().into_iter().chain(b.warnings()) {
        println!("{w}");
    }
}

/// Machine-readable lines (`figure <server> <scenario> <key> <value>`), for the smoke test.
pub fn print_machine(f: &Figures) {
    // "server CPU per forwarded packet (µs)" → "server_cpu_per_forwarded_packet"
    let key = |label: &str| {
        let name = label.split(['(', ',']).next().unwrap_or(label).to_lowercase();
        name.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty()).collect::<Vec<_>>().join("_")
    };
    for (label, v, _) in f.rows() {
        let value = v.map_or("none".to_string(), |v| format!("{v:.3}"));
        println!("figure {} {} {} {value}", f.server, f.scenario, key(label));
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn nearest_rank() {
        let v: Vec<u32> = (1..=100).collect();
        assert_eq!(super::percentile(&v, 50.0), Some(50));
        assert_eq!(super::percentile(&v, 95.0), Some(95));
        assert_eq!(super::percentile::<u32>(&[], 50.0), None);
        assert_eq!(super::percentile(&[7], 95.0), Some(7));
    }
}
