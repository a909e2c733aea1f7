//! Shared harness for Sportello's integration tests.
//!
//! - [`server`]: start a real Sportello server in-process on loopback, mint tokens, talk websocket.
//! - [`netns`]: re-execute the test binary inside a loopback-only network namespace.
//! - [`browser`]: real headless Chromium (through chromedriver) with fake camera, microphone and screen.

pub mod browser;
pub mod netns;
pub mod rtc_client;
pub mod server;
