//! The operations commands as an operator runs them: `migrate` brings the schema up to date; a
//! `backup FILE` taken while the database is in use is a private, consistent database of its own
//! that holds what was there, and never overwrites a file; `restore FILE` puts it back, only with
//! the server stopped and only a whole backup of a known schema, keeping the database it replaces;
//! `admin create` makes an administrator for a scripted install.

#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use sportello_store::{NewUser, StaffRole, Store};

fn sportello(data: &Path, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sportello"));
    command.args(args).arg("--data-dir").arg(data);
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("SPORTELLO_")) {
        command.env_remove(key);
    }
    command.output().expect("the binary runs")
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[tokio::test]
async fn a_backup_of_a_database_in_use_holds_its_data_and_overwrites_nothing() {
    let root = tempfile::tempdir().expect("temp dir");
    let data = root.path().join("data");
    let migrate = sportello(&data, &["migrate"]);
    assert!(migrate.status.success(), "{}", text(&migrate));
    assert!(data.join("sportello.db").exists());

    // The server's store is open (as while it runs) and has a row.
    let db = format!("sqlite:{}", data.join("sportello.db").display());
    let live = Store::connect(&db).await.expect("the database opens");
    let new = NewUser { email: "olga@comune.example".into(), display_name: "Olga".into(), role: StaffRole::Official };
    live.create_user(&new, 1_800_000_000).await.expect("a user");

    let file = root.path().join("copia.db");
    let backup = sportello(&data, &["backup", file.to_str().expect("utf-8 path")]);
    assert!(backup.status.success(), "{}", text(&backup));
    assert!(text(&backup).contains("backup written"), "{}", text(&backup));
    let mode = std::fs::metadata(&file).expect("the copy").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the copy holds citizens' data");

    let again = sportello(&data, &["backup", file.to_str().expect("utf-8 path")]);
    assert_eq!(again.status.code(), Some(1), "{}", text(&again));
    assert!(text(&again).contains("already exists"), "{}", text(&again));

    let copy = Store::connect(&format!("sqlite:{}", file.display())).await.expect("the copy opens");
    let olga = copy.user_by_email("olga@comune.example").await.expect("a query");
    assert_eq!(olga.map(|u| u.display_name), Some("Olga".to_owned()));
    copy.close().await;
    live.close().await;
}

/// A port nobody listens on (for `restore`, which refuses while the server's port is taken).
fn free_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    listener.local_addr().expect("its address").to_string()
}

async fn emails(db: &Path) -> Vec<String> {
    let store = Store::connect(&format!("sqlite:{}", db.display())).await.expect("the database opens");
    let users = store.users().await.expect("a query");
    store.close().await;
    let mut emails: Vec<String> = users.into_iter().map(|u| u.email).collect();
    emails.sort();
    emails
}

#[tokio::test]
async fn restore_puts_a_backup_back_keeps_the_replaced_database_and_refuses_what_would_lose_data() {
    let root = tempfile::tempdir().expect("temp dir");
    let data = root.path().join("data");
    let db = data.join("sportello.db");
    assert!(sportello(&data, &["migrate"]).status.success());
    let live = Store::connect(&format!("sqlite:{}", db.display())).await.expect("the database opens");
    let olga = NewUser { email: "olga@comune.example".into(), display_name: "Olga".into(), role: StaffRole::Official };
    live.create_user(&olga, 1_800_000_000).await.expect("a user");
    let file = root.path().join("copia.db");
    assert!(sportello(&data, &["backup", file.to_str().expect("utf-8 path")]).status.success());
    // After the backup: a row the restore will take back (and keep aside).
    let piero =
        NewUser { email: "piero@comune.example".into(), display_name: "Piero".into(), role: StaffRole::Official };
    live.create_user(&piero, 1_800_000_100).await.expect("a user");
    live.close().await;
    let both = vec!["olga@comune.example".to_owned(), "piero@comune.example".to_owned()];

    // The server still runs (its port is taken): nothing is touched.
    let running = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let port = running.local_addr().expect("its address").to_string();
    let refused = sportello(&data, &["--listen", &port, "restore", file.to_str().expect("utf-8 path")]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(text(&refused).contains("stop the server"), "{}", text(&refused));
    drop(running);
    assert_eq!(emails(&db).await, both);

    // Not a database, or a truncated one: refused, nothing touched.
    let garbage = root.path().join("garbage.db");
    std::fs::write(&garbage, b"this is not a database").expect("a file");
    let truncated = root.path().join("truncated.db");
    let bytes = std::fs::read(&file).expect("the backup");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).expect("a file");
    for bad in [&garbage, &truncated, &root.path().join("missing.db")] {
        let out = sportello(&data, &["--listen", &free_port(), "restore", bad.to_str().expect("utf-8 path")]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        assert!(text(&out).contains("cannot be restored"), "{}", text(&out));
        assert_eq!(emails(&db).await, both, "a refused restore touched the database");
    }

    // A backup from a newer version (a migration this binary does not know): refused.
    let newer = root.path().join("newer.db");
    std::fs::copy(&file, &newer).expect("a copy");
    let store = Store::connect(&format!("sqlite:{}", newer.display())).await.expect("the copy opens");
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (99990101, 'from the future', TRUE, x'00', 0)",
    )
    .execute(store.pool())
    .await
    .expect("a migration row");
    store.close().await;
    let out = sportello(&data, &["--listen", &free_port(), "restore", newer.to_str().expect("utf-8 path")]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("newer Sportello"), "{}", text(&out));
    assert_eq!(emails(&db).await, both);

    // The real thing: the backup's rows are back, the replaced database is kept beside it.
    let out = sportello(&data, &["--listen", &free_port(), "restore", file.to_str().expect("utf-8 path")]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("restored") && text(&out).contains("1 staff"), "{}", text(&out));
    assert_eq!(emails(&db).await, vec!["olga@comune.example".to_owned()]);
    let aside: Vec<_> = std::fs::read_dir(&data)
        .expect("the data directory")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().contains("sportello.db.before-restore-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert!(text(&out).contains(&aside[0].display().to_string()), "{}", text(&out));
    assert_eq!(emails(&aside[0]).await, both, "the replaced database holds what the backup lacked");
    let mode = std::fs::metadata(&db).expect("the database").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the restored database holds citizens' data");
}

#[tokio::test]
async fn admin_create_makes_an_administrator_with_a_setup_link_or_a_password_and_refuses_bad_input() {
    let root = tempfile::tempdir().expect("temp dir");
    let data = root.path().join("data");
    let db = data.join("sportello.db");

    let out = sportello(&data, &["admin", "create", "--email", "Anna@Comune.example", "--name", "Anna Bianchi"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("/staff/setup#"), "a link to set the password: {}", text(&out));

    let mut command = Command::new(env!("CARGO_BIN_EXE_sportello"));
    command
        .args(["admin", "create", "--email", "bruno@comune.example", "--name", "Bruno", "--password-stdin"])
        .arg("--data-dir")
        .arg(&data)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = command.spawn().expect("the binary runs");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(b"una password lunga abbastanza\n").expect("the password");
    }
    let out = child.wait_with_output().expect("it ends");
    assert!(out.status.success(), "{}", text(&out));
    assert!(!text(&out).contains("/staff/setup#"), "{}", text(&out));

    for (args, why) in [
        (vec!["--email", "anna@comune.example", "--name", "Anna"], "already exists"),
        (vec!["--email", "not-an-email", "--name", "X"], "not a valid email"),
        (vec!["--email", "carla@comune.example", "--name", "  "], "name"),
    ] {
        let mut all = vec!["admin", "create"];
        all.extend(args);
        let out = sportello(&data, &all);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        assert!(text(&out).contains(why), "{why}: {}", text(&out));
    }

    let store = Store::connect(&format!("sqlite:{}", db.display())).await.expect("the database opens");
    let users = store.users().await.expect("a query");
    store.close().await;
    assert_eq!(users.len(), 2, "refused input created no account: {users:?}");
    let anna = users.iter().find(|u| u.email == "anna@comune.example").expect("Anna, email lower-cased");
    assert_eq!((anna.role, anna.password_hash.is_none()), (StaffRole::Admin, true));
    let bruno = users.iter().find(|u| u.email == "bruno@comune.example").expect("Bruno");
    assert_eq!(bruno.role, StaffRole::Admin);
    let hash = bruno.password_hash.as_deref().expect("Bruno's password is set");
    assert!(hash.starts_with("$argon2id$"), "{hash}");
}

#[test]
fn admin_create_refuses_a_short_password_and_creates_nothing() {
    let root = tempfile::tempdir().expect("temp dir");
    let data = root.path().join("data");
    let mut child = Command::new(env!("CARGO_BIN_EXE_sportello"))
        .args(["admin", "create", "--email", "dora@comune.example", "--name", "Dora", "--password-stdin"])
        .arg("--data-dir")
        .arg(&data)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the binary runs");
    {
        use std::io::Write;
        child.stdin.take().expect("stdin").write_all(b"corta\n").expect("the password");
    }
    let out = child.wait_with_output().expect("it ends");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("10 to 256 characters"), "{}", text(&out));
    let again = sportello(&data, &["admin", "create", "--email", "dora@comune.example", "--name", "Dora"]);
    assert!(again.status.success(), "the refused attempt left no account behind: {}", text(&again));
}

#[test]
fn backup_and_restore_send_postgresql_to_its_own_tools_without_touching_anything() {
    let root = tempfile::tempdir().expect("temp dir");
    let data = root.path().join("data");
    let file = root.path().join("copia.dump");
    // No server answers there: the refusal must not depend on reaching the database.
    let url = "postgres://sportello@127.0.0.1:1/sportello";
    for (command, tool) in [("backup", "pg_dump"), ("restore", "pg_restore")] {
        let out = Command::new(env!("CARGO_BIN_EXE_sportello"))
            .args(["--listen", &free_port(), command, file.to_str().expect("utf-8 path")])
            .arg("--data-dir")
            .arg(&data)
            .env("SPORTELLO_DATABASE_URL", url)
            .output()
            .expect("the binary runs");
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        assert!(text(&out).contains(tool), "{command}: {}", text(&out));
        assert!(!file.exists(), "{command} wrote {}", file.display());
    }
}
