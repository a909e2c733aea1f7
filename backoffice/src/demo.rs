//! `sportello run --demo`: a sample municipality (offices, services, an administrator and two
//! officials) so that a new user can try booking and the dashboard at once. Created only into an
//! empty database; the generated passwords, and at every start with `--demo` two fresh join links
//! for a demo room, are written to `<data_dir>/demo-accounts.txt` (mode 0600). The server prints
//! only that file's path: its output ends up in the system log, which others may read.

use std::path::{Path, PathBuf};

use sportello_store::{Modes, NewOffice, NewService, NewUser, StaffRole, Store, StoreError};

use crate::secrets::{HashError, hash_password_blocking, new_secret};
use crate::settings::{SETTING_HORIZON, SETTING_MIN_NOTICE, SETTING_NAME, identity};

pub const ACCOUNTS_FILE: &str = "demo-accounts.txt";
/// Where the accounts end and this start's links begin in [`ACCOUNTS_FILE`].
const LINKS_HEADING: &str = "Link di prova";

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot hash a password: {0}")]
    Hash(#[from] HashError),
    #[error("cannot write {path}: {source}")]
    Io { path: String, source: std::io::Error },
}

/// Seeds the demo if the database has no staff yet; returns the text of the accounts file.
pub async fn ensure(store: &Store, data_dir: &Path, now: i64) -> Result<String, DemoError> {
    let file = data_dir.join(ACCOUNTS_FILE);
    if store.count_users().await? > 0 {
        return Ok(std::fs::read_to_string(&file)
            .map(|text| text.split(LINKS_HEADING).next().unwrap_or_default().to_owned())
            .unwrap_or_else(|_| "Dati di prova non creati: il database aveva già utenti.\n".to_owned()));
    }
    store.set_setting(SETTING_NAME, "Comune di Esempio").await?;
    // Who the demo municipality is on every page (header, footer, privacy notice) and email.
    for (key, value) in [
        (identity::OWNER_NAME, "Regione Esempio"),
        (identity::OWNER_URL, "https://www.regione.example"),
        (identity::WEBSITE, "https://www.comune.example"),
        (identity::ADDRESS, "Piazza del Municipio 1, 00000 Esempio"),
        (identity::PHONE, "+39 000 000000"),
        (identity::EMAIL, "urp@comune.example"),
        (identity::PEC, "protocollo@pec.comune.example"),
        (identity::CONTROLLER, "Comune di Esempio, nella persona del Sindaco pro tempore"),
        (identity::DPO_EMAIL, "rpd@comune.example"),
    ] {
        store.set_setting(key, value).await?;
    }
    store.set_setting(SETTING_MIN_NOTICE, "30").await?;
    store.set_setting(SETTING_HORIZON, "60").await?;
    let mut accounts = String::from("Account di prova (demo):\n");
    let mut ids = Vec::new();
    for (email, name, role) in [
        ("admin@comune.example", "Amministratore", StaffRole::Admin),
        ("anna.rossi@comune.example", "Anna Rossi", StaffRole::Official),
        ("marco.bianchi@comune.example", "Marco Bianchi", StaffRole::Official),
    ] {
        let user = store.create_user(&NewUser { email: email.into(), display_name: name.into(), role }, now).await?;
        let password = new_secret()[..16].to_owned();
        let hash = tokio::task::spawn_blocking({
            let password = password.clone();
            move || hash_password_blocking(&password)
        })
        .await
        .map_err(|e| HashError(e.to_string()))??;
        store.set_password(&user.id, &hash, now).await?;
        accounts.push_str(&format!("  {role:<10} {email}  password: {password}\n", role = role.as_str()));
        ids.push(user.id);
    }
    let weekdays = |hours: &[&str]| -> Vec<Vec<String>> {
        (0..7).map(|d| if d < 5 { hours.iter().map(|h| h.to_string()).collect() } else { Vec::new() }).collect()
    };
    let anagrafe = store
        .create_office(
            &NewOffice {
                name: "Ufficio Anagrafe".into(),
                description: "Carte d'identità, residenza, certificati.".into(),
                address: "Piazza del Municipio 1, piano terra".into(),
                email: "anagrafe@comune.example".into(),
                phone: "+39 0000 000001".into(),
                opening_hours: serde_json::to_string(&weekdays(&["08:30-12:30", "14:30-16:30"])).unwrap_or_default(),
            },
            now,
        )
        .await?;
    let tecnico = store
        .create_office(
            &NewOffice {
                name: "Ufficio Tecnico".into(),
                description: "Edilizia privata e lavori pubblici.".into(),
                address: "Via Roma 10, primo piano".into(),
                email: "tecnico@comune.example".into(),
                phone: "+39 0000 000002".into(),
                opening_hours: serde_json::to_string(&weekdays(&["09:00-13:00"])).unwrap_or_default(),
            },
            now,
        )
        .await?;
    // Both offices take walk-ins at their video desk in the morning (docs/walkin.md).
    let desk = serde_json::to_string(&weekdays(&["09:00-12:30"])).unwrap_or_default();
    store.set_desk_hours(&anagrafe.id, &desk).await?;
    store.set_desk_hours(&tecnico.id, &desk).await?;
    store.set_office_members(&anagrafe.id, &ids[1..2]).await?;
    store.set_office_members(&tecnico.id, &ids[2..3]).await?;
    for (name, minutes, bring, modes, office) in [
        (
            "Carta d'identità elettronica",
            30,
            "Documento scaduto, fototessera, codice fiscale.",
            Modes::Both,
            &anagrafe.id,
        ),
        (
            "Cambio di residenza",
            20,
            "Documento d'identità e dati dei componenti della famiglia.",
            Modes::Video,
            &anagrafe.id,
        ),
        ("Permesso di costruire", 45, "Progetto in PDF e visura catastale.", Modes::Video, &tecnico.id),
    ] {
        store
            .create_service(
                &NewService {
                    name: name.into(),
                    description: String::new(),
                    duration_minutes: minutes,
                    what_to_bring: bring.into(),
                    modes,
                    office_ids: vec![office.clone()],
                },
                now,
            )
            .await?;
    }
    write_private(&data_dir.join(ACCOUNTS_FILE), &accounts)?;
    Ok(accounts)
}

/// Writes the accounts (from [`ensure`]) and this start's demo-room links, as `(label, link)`, to
/// [`ACCOUNTS_FILE`] (0600); returns its path, which is all the server prints.
pub fn write_accounts_and_links(
    data_dir: &Path,
    accounts: &str,
    links: &[(&str, String)],
) -> Result<PathBuf, DemoError> {
    let mut text = accounts.to_owned();
    text.push_str(&format!("{LINKS_HEADING} (validi 8 ore; uno per scheda del browser):\n"));
    for (label, link) in links {
        text.push_str(&format!("  {label}: {link}\n"));
    }
    let path = data_dir.join(ACCOUNTS_FILE);
    write_private(&path, &text)?;
    Ok(path)
}

fn write_private(path: &Path, text: &str) -> Result<(), DemoError> {
    use std::io::Write;
    let io = |source| DemoError::Io { path: path.display().to_string(), source };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(io)?;
    file.write_all(text.as_bytes()).map_err(io)
}
