//! The log filter of the binary. Whatever `RUST_LOG` asks for, the websocket libraries stay at
//! `warn`: at `trace` they print every frame's payload — join tokens, chat messages and, in a
//! council room, a councillor's secret-ballot choice next to their connection.

use tracing_subscriber::EnvFilter;

/// Targets that log frame payloads below `warn`.
pub const PAYLOAD_TARGETS: [&str; 3] = ["tungstenite", "tokio_tungstenite", "axum::extract::ws"];

/// `spec` (e.g. `RUST_LOG`; `info` when absent or invalid), with [`PAYLOAD_TARGETS`] capped.
pub fn env_filter(spec: Option<&str>) -> EnvFilter {
    let mut filter = spec.and_then(|s| EnvFilter::try_new(s).ok()).unwrap_or_else(|| EnvFilter::new("info"));
    for target in PAYLOAD_TARGETS {
        // Later directives for the same target replace earlier ones.
        if let Ok(directive) = format!("{target}=warn").parse() {
            filter = filter.add_directive(directive);
        }
    }
    filter
}
