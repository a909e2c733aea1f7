//! `/metrics` in the Prometheus text format, on a listener of its own (`metrics_bind`).
//!
//! Why its own listener: behind a reverse proxy every request reaches the main listener from the
//! proxy's loopback address, so "only from loopback" would not protect `/metrics` there. Bound to
//! loopback or a management network it is reachable by Prometheus and by nobody the proxy serves.
//! Unset, no recorder is installed and every `metrics::` call in the crates is a no-op.
//!
//! Two sources end up in one scrape:
//! - events counted where they happen through the `metrics` facade (HTTP requests here; websocket
//!   sessions, the waiting room, live viewers, bookings, emails in `rooms`/`backoffice`; the join →
//!   first media histogram in `sfu`), kept by the process-wide Prometheus recorder;
//! - the media engine's own counts and the open rooms, read at scrape time ([`Sfu::stats`]): the
//!   engine counts with plain integers on its thread, so forwarding pays no metrics call per
//!   packet, and the values are exact.
//!
//! [`CATALOGUE`] is the list of every facade metric with its help text: each is described and
//! registered at zero when the recorder is installed, so a dashboard finds every series before its
//! first event.

use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};
use sportello_rooms::rooms::Rooms;
use sportello_sfu::Sfu;

#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("cannot set up metrics: {0}")]
    Recorder(#[from] BuildError),
}

#[derive(Clone, Copy)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// One metric of the catalogue: name, kind, help, and the label sets registered at zero.
type Entry = (&'static str, Kind, &'static str, &'static [&'static [(&'static str, &'static str)]]);

/// Every metric counted through the facade: name, kind, help, and the label sets registered at
/// zero (none: one series without labels; metrics labelled by request are not pre-registered).
const CATALOGUE: &[Entry] = &[
    (
        "sportello_http_requests_total",
        Kind::Counter,
        "HTTP requests answered, by method, route (the matched pattern, never the path) and status.",
        &[],
    ),
    (
        "sportello_http_request_duration_seconds",
        Kind::Histogram,
        "Time to the response's head, by method and route.",
        &[],
    ),
    ("sportello_websocket_sessions", Kind::Gauge, "Signaling websockets open now.", &[&[]]),
    ("sportello_websocket_sessions_total", Kind::Counter, "Signaling websockets opened.", &[&[]]),
    (
        "sportello_waiting_room_wait_seconds",
        Kind::Histogram,
        "How long a citizen waited in a room's lobby before a host admitted them.",
        &[&[]],
    ),
    ("sportello_bookings_total", Kind::Counter, "Appointments booked by citizens.", &[&[]]),
    ("sportello_booking_reschedules_total", Kind::Counter, "Appointments moved by citizens to another slot.", &[&[]]),
    (
        "sportello_booking_cancellations_total",
        Kind::Counter,
        "Appointments cancelled, by whom: the citizen or the office's staff.",
        &[&[("by", "citizen")], &[("by", "staff")]],
    ),
    (
        "sportello_booking_no_shows_total",
        Kind::Counter,
        "Appointments closed as no-show: by the system (the citizen never joined) or by staff.",
        &[&[("by", "system")], &[("by", "staff")]],
    ),
    (
        "sportello_emails_sent_total",
        Kind::Counter,
        "Emails handed to the SMTP server (or written to the outbox).",
        &[&[]],
    ),
    ("sportello_emails_failed_total", Kind::Counter, "Emails that could not be sent or written.", &[&[]]),
    ("sportello_live_viewers", Kind::Gauge, "WHEP viewers of council live streams now.", &[&[]]),
    (
        "sportello_walkins_total",
        Kind::Counter,
        "Walk-in video desk: citizens queued, called, served, who left, abandoned.",
        &[
            &[("event", "queued")],
            &[("event", "called")],
            &[("event", "served")],
            &[("event", "left")],
            &[("event", "abandoned")],
        ],
    ),
    (
        "sportello_appio_messages_total",
        Kind::Counter,
        "App IO attempts by outcome: sent, refused (not on IO or service off), retry, failed, expired.",
        &[
            &[("outcome", "sent")],
            &[("outcome", "refused")],
            &[("outcome", "retry")],
            &[("outcome", "failed")],
            &[("outcome", "expired")],
        ],
    ),
    (
        "sportello_sfu_join_to_first_media_seconds",
        Kind::Histogram,
        "From a participant's receiving connection being set up (at join, or when there is first \
         something to receive) to the first media packet written to it: signaling, ICE, DTLS, keyframe.",
        &[&[]],
    ),
];

/// Histogram buckets (seconds) by metric; each spans what its event plausibly takes.
const BUCKETS: &[(&str, &[f64])] = &[
    ("sportello_http_request_duration_seconds", &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
    ("sportello_sfu_join_to_first_media_seconds", &[0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 8.0, 13.0, 20.0, 30.0]),
    ("sportello_waiting_room_wait_seconds", &[10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0]),
];

/// One recorder per process (the facade is global); servers started in the same process (tests)
/// share it.
static HANDLE: Mutex<Option<PrometheusHandle>> = Mutex::new(None);

/// Installs the Prometheus recorder (once per process) and registers the catalogue.
pub fn install() -> Result<PrometheusHandle, MetricsError> {
    let mut installed = HANDLE.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(handle) = installed.as_ref() {
        return Ok(handle.clone());
    }
    let mut builder = PrometheusBuilder::new();
    for (name, buckets) in BUCKETS {
        builder = builder.set_buckets_for_metric(Matcher::Full((*name).to_owned()), buckets)?;
    }
    let handle = builder.install_recorder()?;
    for &(name, kind, help, label_sets) in CATALOGUE {
        match kind {
            Kind::Counter => metrics::describe_counter!(name, help),
            Kind::Gauge => metrics::describe_gauge!(name, help),
            Kind::Histogram => metrics::describe_histogram!(name, help),
        }
        for labels in label_sets.iter() {
            let labels: Vec<metrics::Label> = labels.iter().map(|&(k, v)| metrics::Label::new(k, v)).collect();
            // Registering is enough: the series exists (at zero, or as an empty histogram).
            match kind {
                Kind::Counter => drop(metrics::counter!(name, labels)),
                Kind::Gauge => drop(metrics::gauge!(name, labels)),
                Kind::Histogram => drop(metrics::histogram!(name, labels)),
            }
        }
    }
    *installed = Some(handle.clone());
    Ok(handle)
}

/// What a scrape reads besides the recorder.
#[derive(Clone)]
pub struct Scrape {
    pub handle: PrometheusHandle,
    pub sfu: Sfu,
    pub rooms: Rooms,
}

/// The metrics listener's routes: `/metrics` and nothing else.
pub fn routes(scrape: Scrape) -> Router {
    Router::new().route("/metrics", get(metrics)).with_state(scrape)
}

/// How long a scrape waits for the media engine's counts; past it the engine's section is left out
/// and `sportello_sfu_up` says 0 (the rest of the scrape still answers).
const ENGINE_TIMEOUT: Duration = Duration::from_secs(1);

async fn metrics(State(scrape): State<Scrape>) -> Response {
    scrape.handle.run_upkeep();
    let mut body = scrape.handle.render();
    let stats = tokio::time::timeout(ENGINE_TIMEOUT, scrape.sfu.engine_stats()).await.ok().and_then(Result::ok);
    engine_section(&mut body, stats.as_deref(), scrape.rooms.len());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body).into_response()
}

/// The media engine's counts (summed over its threads, but for the busy time) and the open rooms,
/// in the text format.
fn engine_section(out: &mut String, per_thread: Option<&[sportello_sfu::SfuStats]>, rooms_open: usize) {
    let stats = per_thread.map(|all| {
        let mut total = sportello_sfu::SfuStats::default();
        for s in all {
            total += *s;
        }
        total
    });
    let stats = stats.as_ref();
    let mut family = |name: &str, kind: &str, help: &str, samples: &[(&str, f64)]| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
        out.push('\n');
    };
    family(
        "sportello_rooms_open",
        "gauge",
        "Realtime rooms open now (with anyone in them or waiting).",
        &[("", rooms_open as f64)],
    );
    family(
        "sportello_sfu_up",
        "gauge",
        "1 when the media engine answered this scrape within 1 s (else its series are missing).",
        &[("", if stats.is_some() { 1.0 } else { 0.0 })],
    );
    let Some(s) = stats else { return };
    let n = |v: u64| v as f64;
    family(
        "sportello_sfu_rooms",
        "gauge",
        "Media rooms in the engine (program feeds included).",
        &[("", s.rooms as f64)],
    );
    family(
        "sportello_sfu_participants",
        "gauge",
        "Participants in the media engine (WHEP/WHIP peers included).",
        &[("", s.participants as f64)],
    );
    family(
        "sportello_sfu_peer_connections",
        "gauge",
        "Peer connections in the media engine.",
        &[("", s.peer_connections as f64)],
    );
    family("sportello_sfu_tracks", "gauge", "Published tracks.", &[("", s.published_tracks as f64)]);
    family(
        "sportello_sfu_subscriptions",
        "gauge",
        "Downtracks: a track forwarded to one subscriber.",
        &[("", s.subscriptions as f64)],
    );
    family(
        "sportello_sfu_forwarded_packets_total",
        "counter",
        "RTP packets forwarded to subscribers.",
        &[("", n(s.forwarded_packets))],
    );
    family(
        "sportello_sfu_forwarded_bytes_total",
        "counter",
        "RTP payload bytes forwarded to subscribers.",
        &[("", n(s.forwarded_bytes))],
    );
    family(
        "sportello_sfu_queue_dropped_packets_total",
        "counter",
        "Packets evicted from a slow subscriber's full queue.",
        &[("", n(s.dropped_packets))],
    );
    family(
        "sportello_sfu_gated_packets_total",
        "counter",
        "Packets of gated (muted by the chair) tracks dropped.",
        &[("", n(s.gated_packets))],
    );
    family(
        "sportello_sfu_nacks_total",
        "counter",
        "NACK messages received from subscribers and sent to publishers.",
        &[("{direction=\"received\"}", n(s.nacks_received)), ("{direction=\"sent\"}", n(s.nacks_sent))],
    );
    family(
        "sportello_sfu_plis_total",
        "counter",
        "Keyframe requests: PLI/FIR received from subscribers, PLI sent to publishers (throttled per track).",
        &[("{direction=\"received\"}", n(s.plis_received)), ("{direction=\"sent\"}", n(s.plis_sent))],
    );
    family(
        "sportello_sfu_rtx_packets_total",
        "counter",
        "Retransmissions answering NACKs sent to subscribers (RTX when negotiated), RTX received from publishers.",
        &[("{direction=\"sent\"}", n(s.rtx_sent)), ("{direction=\"received\"}", n(s.rtx_received))],
    );
    let busy: Vec<(String, f64)> = per_thread
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, s)| (format!("{{thread=\"{i}\"}}"), s.busy.as_secs_f64()))
        .collect();
    let busy: Vec<(&str, f64)> = busy.iter().map(|(l, v)| (l.as_str(), *v)).collect();
    family(
        "sportello_sfu_engine_busy_seconds_total",
        "counter",
        "Time each media thread spent working rather than waiting; its rate is that thread's busy share.",
        &busy,
    );
}

/// Innermost (a route layer): hands the matched route pattern to [`track`] on the response.
pub async fn matched_route(request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().cloned();
    let mut response = next.run(request).await;
    if let Some(route) = route {
        response.extensions_mut().insert(route);
    }
    response
}

/// Outermost: counts every response by method, route pattern (`unmatched` for unknown addresses:
/// never the raw path, which can hold ids and tokens) and status.
pub async fn track(request: Request, next: Next) -> Response {
    let method = method_label(request.method());
    let started = Instant::now();
    let response = next.run(request).await;
    let route = response.extensions().get::<MatchedPath>().map(|r| r.as_str().to_owned());
    let route = route.unwrap_or_else(|| "unmatched".to_owned());
    let status = response.status().as_u16().to_string();
    metrics::histogram!("sportello_http_request_duration_seconds", "method" => method, "route" => route.clone())
        .record(started.elapsed());
    metrics::counter!("sportello_http_requests_total", "method" => method, "route" => route, "status" => status)
        .increment(1);
    response
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_engine_section_is_valid_text_format_with_one_type_line_per_family() {
        let stats = sportello_sfu::SfuStats {
            rooms: 2,
            forwarded_bytes: 1200,
            busy: Duration::from_millis(1500),
            ..Default::default()
        };
        let mut out = String::new();
        engine_section(&mut out, Some(&[stats, stats]), 3);
        assert!(out.contains("# TYPE sportello_sfu_engine_busy_seconds_total counter\n"), "{out}");
        assert!(out.contains("\nsportello_sfu_engine_busy_seconds_total{thread=\"0\"} 1.5\n"), "{out}");
        assert!(out.contains("\nsportello_sfu_engine_busy_seconds_total{thread=\"1\"} 1.5\n"), "{out}");
        assert!(out.contains("\nsportello_sfu_rooms 4\n"), "{out}");
        assert!(out.contains("\nsportello_rooms_open 3\n"), "{out}");
        assert!(out.contains("\nsportello_sfu_nacks_total{direction=\"received\"} 0\n"), "{out}");
        let types = out.lines().filter(|l| l.starts_with("# TYPE ")).count();
        let helps = out.lines().filter(|l| l.starts_with("# HELP ")).count();
        assert_eq!(types, helps);

        let mut down = String::new();
        engine_section(&mut down, None, 0);
        assert!(down.contains("\nsportello_sfu_up 0\n"), "{down}");
        assert!(!down.contains("sportello_sfu_rooms"), "{down}");
    }

    #[test]
    fn every_histogram_of_the_catalogue_has_its_buckets() {
        for &(name, kind, _, _) in CATALOGUE {
            if matches!(kind, Kind::Histogram) {
                assert!(name.ends_with("_seconds"), "{name}");
                assert!(BUCKETS.iter().any(|(n, _)| *n == name), "{name} has no buckets (it would be a summary)");
            }
            if matches!(kind, Kind::Counter) {
                assert!(name.ends_with("_total"), "{name}");
            }
        }
    }
}
