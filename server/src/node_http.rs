//! Several nodes: the one HTTP client a node asks another with — a request forwarded to the node
//! that must answer it (`forward.rs`), an edge's relay leg offered to a council's origin
//! (`cascade.rs`).

use std::sync::OnceLock;
use std::time::Duration;

/// How long the other node has to answer.
const TIMEOUT: Duration = Duration::from_secs(10);

/// No proxy from the environment (nodes talk directly), no redirect, [`TIMEOUT`].
pub fn http() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .no_proxy()
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default()
    })
}
