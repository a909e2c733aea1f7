//! The crate boundaries ARCHITECTURE.md promises, kept by the compiler's manifest rather than by
//! comments: only the HTTP edge knows axum, only the SFU (and the test clients) know `rtc`/`webrtc`,
//! the rooms send no mail and fetch nothing, the back office reaches neither rooms nor media, the
//! domain does no I/O and the store no HTTP. Read from `cargo metadata` (no network).

use std::process::Command;

use serde_json::Value;

/// Crates that serve HTTP.
const HTTP_EDGE: &[&str] = &["sportello-server"];
const HTTP_CRATES: &[&str] = &["axum", "axum-extra", "tower-http"];
/// Crates that may know the WebRTC stack: the SFU, and the test clients.
const MEDIA: &[&str] = &["sportello-sfu", "sportello-tests"];
const MEDIA_CRATES: &[&str] = &["rtc", "webrtc"];
/// What the pure domain rules and the store must not pull in.
const NOT_IN_DOMAIN: &[&str] = &["tokio", "sqlx", "reqwest", "lettre", "axum", "rtc", "webrtc", "async-nats"];
const NOT_IN_STORE: &[&str] = &["axum", "axum-extra", "tower-http", "reqwest", "lettre", "rtc", "webrtc"];
/// The realtime rooms: no mail, no HTTP client (the back office does those).
const NOT_IN_ROOMS: &[&str] = &["lettre", "reqwest", "sportello-server"];
/// The back office, even through the workspace crates it uses: no rooms, no media, no HTTP edge.
const NOT_UNDER_BACKOFFICE: &[&str] = &["sportello-rooms", "sportello-sfu", "sportello-server", "rtc", "webrtc"];

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
            if package == "sportello-rooms" && NOT_IN_ROOMS.contains(&dep) {
                broken.push(format!("sportello-rooms depends on {dep}: the rooms neither mail nor fetch"));
            }
        }
    }
    for dep in reachable(&packages, "sportello-backoffice") {
        if NOT_UNDER_BACKOFFICE.contains(&dep.as_str()) {
            broken.push(format!("sportello-backoffice reaches {dep}: the back office knows no rooms nor media"));
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

/// Every dependency of `root`, following the workspace's own crates (external crates are leaves
/// here: `cargo metadata --no-deps` lists only the workspace's manifests).
fn reachable(packages: &[(String, Vec<String>)], root: &str) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    let mut todo = vec![root.to_owned()];
    while let Some(name) = todo.pop() {
        let Some((_, deps)) = packages.iter().find(|(p, _)| *p == name) else { continue };
        for dep in deps {
            if !seen.contains(dep) {
                seen.push(dep.clone());
                todo.push(dep.clone());
            }
        }
    }
    seen
}

#[test]
fn the_check_sees_the_layers() {
    let packages = workspace_dependencies();
    let names: Vec<&str> = packages.iter().map(|(p, _)| p.as_str()).collect();
    for crate_name in [
        "sportello-sfu",
        "sportello-rooms",
        "sportello-backoffice",
        "sportello-server",
        "sportello-domain",
        "sportello-store",
    ] {
        assert!(names.contains(&crate_name), "{crate_name} in {names:?}");
    }
    // The rooms reach the back office, and through nothing else the SFU's media stack.
    assert!(reachable(&packages, "sportello-rooms").iter().any(|d| d == "sportello-backoffice"));
    assert!(reachable(&packages, "sportello-server").iter().any(|d| d == "rtc"));
}
