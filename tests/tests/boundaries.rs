//! The crate boundaries ARCHITECTURE.md promises, kept by the compiler's manifest rather than by
//! comments: only the HTTP edge knows axum, only the SFU (and the test clients) know `rtc`/`webrtc`,
//! the domain does no I/O and the store no HTTP. Read from `cargo metadata` (no network).

use std::process::Command;

use serde_json::Value;

/// Crates that serve HTTP (today the edge is inside `sportello-signaling`; the house split moves it
/// to its own crate — update this list with it).
const HTTP_EDGE: &[&str] = &["sportello-signaling"];
const HTTP_CRATES: &[&str] = &["axum", "axum-extra", "tower-http"];
/// Crates that may know the WebRTC stack: the SFU, and the test clients.
const MEDIA: &[&str] = &["sportello-sfu", "sportello-tests"];
const MEDIA_CRATES: &[&str] = &["rtc", "webrtc"];
/// What the pure domain rules and the store must not pull in.
const NOT_IN_DOMAIN: &[&str] = &["tokio", "sqlx", "reqwest", "lettre", "axum", "rtc", "webrtc", "async-nats"];
const NOT_IN_STORE: &[&str] = &["axum", "axum-extra", "tower-http", "reqwest", "lettre", "rtc", "webrtc"];

fn workspace_dependencies() -> Vec<(String, Vec<String>)> {
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml");
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline", "--manifest-path", manifest])
        .output()
        .expect("cargo metadata runs");
    assert!(out.status.success(), "cargo metadata: {}", String::from_utf8_lossy(&out.stderr));
    let metadata: Value = serde_json::from_slice(&out.stdout).expect("metadata is JSON");
    metadata["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|p| {
            let deps = p["dependencies"].as_array().expect("dependencies");
            let names = deps.iter().filter_map(|d| d["name"].as_str().map(str::to_owned)).collect();
            (p["name"].as_str().expect("name").to_owned(), names)
        })
        .collect()
}

#[test]
fn each_crate_knows_only_what_its_layer_may() {
    let packages = workspace_dependencies();
    assert!(packages.len() >= 5, "{packages:?}");
    let mut broken = Vec::new();
    for (package, deps) in &packages {
        for dep in deps {
            let dep = dep.as_str();
            if HTTP_CRATES.contains(&dep) && !HTTP_EDGE.contains(&package.as_str()) {
                broken.push(format!("{package} depends on {dep}: only the HTTP edge knows HTTP"));
            }
            if MEDIA_CRATES.contains(&dep) && !MEDIA.contains(&package.as_str()) {
                broken.push(format!("{package} depends on {dep}: only the SFU knows the WebRTC stack"));
            }
            if package == "sportello-domain" && NOT_IN_DOMAIN.contains(&dep) {
                broken.push(format!("sportello-domain depends on {dep}: the domain rules do no I/O"));
            }
            if package == "sportello-store" && NOT_IN_STORE.contains(&dep) {
                broken.push(format!("sportello-store depends on {dep}: the store knows neither HTTP nor media"));
            }
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}
