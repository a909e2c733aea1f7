//! The log filter of the binary.
//!
//! Without `RUST_LOG` the log shows Sportello's own events at `info` (joins, admissions, bookings,
//! failed peer connections, …) and the dependencies only from `warn` up; the WebRTC stack (`rtc`,
//! `rtc_dtls`, `rtc_ice`, …) only from `error`: it prints a WARN for every browser's DTLS hello
//! («Unsupported Extension Type») and an INFO for every state change of every connection, which
//! drowned what an operator looks for. `RUST_LOG` replaces this default entirely.
//!
//! Whatever `RUST_LOG` asks for, the websocket libraries stay at `warn`: at `trace` they print every
//! frame's payload — join tokens, chat messages and, in a council room, a councillor's
//! secret-ballot choice next to their connection.

use tracing_subscriber::EnvFilter;

/// Targets that log frame payloads below `warn`.
pub const PAYLOAD_TARGETS: [&str; 3] = ["tungstenite", "tokio_tungstenite", "axum::extract::ws"];

/// The filter without `RUST_LOG`. Targets match by prefix: `sportello` is every Sportello crate and
/// the binary, `rtc` every crate of the WebRTC stack (`rtc_dtls`, `rtc_ice`, `rtc_srtp`, …).
pub const DEFAULT_FILTER: &str = "warn,sportello=info,rtc=error";

/// `spec` (e.g. `RUST_LOG`; [`DEFAULT_FILTER`] when absent or invalid), with [`PAYLOAD_TARGETS`]
/// capped.
pub fn env_filter(spec: Option<&str>) -> EnvFilter {
    let mut filter = spec.and_then(|s| EnvFilter::try_new(s).ok()).unwrap_or_else(|| EnvFilter::new(DEFAULT_FILTER));
    for target in PAYLOAD_TARGETS {
        // Later directives for the same target replace earlier ones.
        if let Ok(directive) = format!("{target}=warn").parse() {
            filter = filter.add_directive(directive);
        }
    }
    filter
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// What a subscriber with `env_filter(spec)` prints for a typical call: the WebRTC stack's
    /// noise, a dependency's INFO, and Sportello's own events.
    fn printed(spec: Option<&str>) -> String {
        let buf = Arc::new(Mutex::new(Vec::<u8>::new()));
        let sink = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(env_filter(spec))
            .with_ansi(false)
            .with_writer(move || Writer(sink.clone()))
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(target: "rtc_dtls::handshake::handshake_message_client_hello", "Unsupported Extension Type 0 23");
            tracing::info!(target: "rtc::peer_connection", "peer connection state changed to connected");
            tracing::error!(target: "rtc_ice::agent", "ice agent gave up");
            tracing::info!(target: "sqlx::query", "summary");
            tracing::warn!(target: "sqlx::query", "slow statement");
            tracing::debug!(target: "tungstenite::protocol", "frame payload");
            tracing::info!(target: "sportello_rooms::room", participant = "p-1", "joined");
            tracing::warn!(target: "sportello_rooms::room", participant = "p-1", "peer connection failed");
            tracing::info!(target: "sportello::main", "listening");
        });
        buf.lock().map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default()
    }

    struct Writer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Writer {
        fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
            if let Ok(mut b) = self.0.lock() {
                b.extend_from_slice(data);
            }
            Ok(data.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn default_keeps_our_events_and_caps_the_dependencies() {
        let out = printed(None);
        for kept in ["joined", "peer connection failed", "listening", "ice agent gave up", "slow statement"] {
            assert!(out.contains(kept), "{kept:?} missing from:\n{out}");
        }
        for dropped in ["Unsupported Extension Type", "state changed to connected", "summary", "frame payload"] {
            assert!(!out.contains(dropped), "{dropped:?} printed:\n{out}");
        }
    }

    #[test]
    fn rust_log_overrides_the_default_but_never_the_payload_cap() {
        let out = printed(Some("debug"));
        for kept in ["Unsupported Extension Type", "state changed to connected", "summary", "joined"] {
            assert!(out.contains(kept), "{kept:?} missing from:\n{out}");
        }
        assert!(!out.contains("frame payload"), "websocket payloads printed:\n{out}");
        let quiet = printed(Some("error"));
        assert!(!quiet.contains("joined") && quiet.contains("ice agent gave up"), "{quiet}");
    }

    #[test]
    fn an_invalid_rust_log_falls_back_to_the_default() {
        let out = printed(Some("sportello=loud"));
        assert!(out.contains("joined") && !out.contains("Unsupported Extension Type"), "{out}");
    }
}
