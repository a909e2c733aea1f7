//! The binary as an operator starts it: `sportello run --demo` on a fresh data directory. What it
//! prints (stdout, and the log on stderr — under systemd both end up in the journal) carries no
//! password and no join link; those are in the owner-only demo file. Everything the first start
//! creates in the data directory is private (issue 20, items 9 and 11).

#![cfg(unix)]

use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}

#[test]
fn demo_credentials_stay_out_of_the_output_and_the_data_dir_is_private() {
    let root = tempfile::tempdir().expect("temp dir");
    let data = root.path().join("data");
    let mut child = Command::new(env!("CARGO_BIN_EXE_sportello"))
        .args(["run", "--demo", "--listen", "127.0.0.1:0", "--media-bind", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .env_remove("RUST_LOG")
        .env_remove("SPORTELLO_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let (lines, seen) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let log = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    // The last line of the start-up banner.
    let mut printed = String::new();
    while !printed.contains("Altri link") {
        match seen.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => printed.push_str(&format!("{line}\n")),
            Err(e) => {
                let _ = child.kill();
                panic!("no complete banner ({e}); printed so far:\n{printed}");
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let output = format!("{printed}{}", log.join().expect("stderr reader"));

    let file = data.join(sportello_backoffice::demo::ACCOUNTS_FILE);
    let accounts = std::fs::read_to_string(&file).expect("the demo file");
    let passwords: Vec<&str> = accounts.lines().filter_map(|l| l.split_once("password: ")).map(|(_, p)| p).collect();
    let links: Vec<&str> = accounts.lines().filter_map(|l| l.split_once("t=")).map(|(_, t)| t).collect();
    assert_eq!((passwords.len(), links.len()), (3, 2), "three accounts and the host/guest links:\n{accounts}");
    for secret in passwords.iter().chain(&links) {
        assert!(secret.len() >= 16, "{secret:?}");
        assert!(!output.contains(secret), "{secret:?} is in the server's output:\n{output}");
    }
    assert!(printed.contains(&file.display().to_string()), "the output says where the file is:\n{printed}");
    assert!(!output.contains("password:"), "{output}");

    assert_eq!(mode(&file), 0o600);
    assert_eq!(mode(&data), 0o700, "the data directory");
    assert_eq!(mode(&data.join("outbox")), 0o700, "the outbox");
    assert_eq!(mode(&data.join(sportello_backoffice::token::KEY_FILE)), 0o600, "the token key");
    for name in ["sportello.db", "sportello.db-wal", "sportello.db-shm"] {
        let path = data.join(name);
        if name == "sportello.db" || path.exists() {
            assert_eq!(mode(&path), 0o600, "{name}");
        }
    }
}
