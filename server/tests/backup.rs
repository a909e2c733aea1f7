//! `sportello migrate` and `sportello backup FILE` as an operator runs them: the schema is brought
//! up to date; a backup taken while the database is in use is a private, consistent database of its
//! own that holds what was there (the restore is putting it back in place); a backup never
//! overwrites a file.

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
