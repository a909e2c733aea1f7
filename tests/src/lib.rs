//! Shared harness for Sportello's integration tests.
//!
//! - [`server`]: start a real Sportello server in-process on loopback, mint tokens, talk websocket.
//! - [`netns`]: re-execute the test binary inside a loopback-only network namespace.
//! - [`load`]: the load tool behind `sportello-load` (many synthetic clients, Sportello vs Janus).
//! - [`browser`]: real headless Chromium (through chromedriver) with fake camera, microphone and screen.
//! - [`aiortc`]: the relay-only aiortc publisher (an independent WebRTC stack through TURN).
//! - [`coturn`]: a real coturn started and stopped by the test.
//! - [`tls`]: certificates for the tests (self-signed, or from a test CA).
//! - [`nginx`]: nginx running the one-port front of `deploy/nginx-443.conf` or the HTTPS front of
//!   `deploy/nginx-https.conf`, with test addresses.
//! - [`caddy`]: Caddy running `deploy/Caddyfile`, with test addresses and a certificate from files.
//! - [`process`]: the real `sportello` binary as a child process a test can `kill -9` and restart.
//! - [`axe`]: axe-core's WCAG 2.1 AA rules inside a page (serious and critical violations fail).

pub mod aiortc;
pub mod axe;
pub mod browser;
pub mod caddy;
pub mod coturn;
pub mod load;
pub mod netns;
pub mod nginx;
pub mod process;
pub mod rtc_client;
pub mod server;
pub mod tls;

/// SHA-256 of `bytes`, lower-case hex (to compare downloads with what was shared).
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}
