//! `sportello check-config` as an operator runs it before a restart: a valid configuration prints
//! what would be used (no password) and exits 0; an invalid one exits 2 and names the setting.

use std::process::{Command, Output};

fn check_config(env: &[(&str, &str)]) -> Output {
    let data = tempfile::tempdir().expect("temp dir");
    let mut command = Command::new(env!("CARGO_BIN_EXE_sportello"));
    command.arg("check-config").arg("--data-dir").arg(data.path()).env_remove("SPORTELLO_CONFIG");
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("SPORTELLO_")) {
        command.env_remove(key);
    }
    command.envs(env.iter().copied()).output().expect("the binary runs")
}

#[test]
fn a_valid_configuration_is_printed_without_secrets() {
    let out = check_config(&[
        ("SPORTELLO_LISTEN", "127.0.0.1:8089"),
        ("SPORTELLO_DATABASE_URL", "postgres://sportello:s3gr3t0@db.comune.example.it/sportello"),
        ("SPORTELLO_TRUSTED_PROXIES", "10.0.0.0/8"),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("127.0.0.1:8089") && stdout.contains("10.0.0.0/8"), "{stdout}");
    assert!(stdout.contains("configuration valid"), "{stdout}");
    assert!(!stdout.contains("s3gr3t0") && stdout.contains("sportello:***@db.comune.example.it"), "{stdout}");
}

#[test]
fn an_invalid_configuration_exits_2_and_names_the_setting() {
    for (env, names) in [
        (("SPORTELLO_TRUSTED_PROXIES", "proxy.comune.it"), "SPORTELLO_TRUSTED_PROXIES"),
        (("SPORTELLO_MEDIA_TCP_ANNOUNCED", "203.0.113.10:443"), "media_tcp_bind"),
        (("SPORTELLO_TURN_URLS", "stun:example.org"), "turn:"),
    ] {
        let out = check_config(&[env]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{env:?}: {stderr}");
        assert!(stderr.contains(names), "{env:?}: {stderr}");
    }
}
