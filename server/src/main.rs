//! `sportello`: run the server (default), or print a join link.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use sportello_backoffice::demo;
use sportello_backoffice::token::{Claims, Role, TokenKey, join_link};
use sportello_server::api::auth::first_admin_link;
use sportello_server::config::{ConfigArgs, ForwardedHeader, LogFormat, parse_duration};
use sportello_server::{Config, server};

#[derive(Debug, Parser)]
#[command(
    name = "sportello",
    version,
    about = "Sportello: videoincontri per i comuni / video meetings for municipalities"
)]
struct Cli {
    #[command(flatten)]
    config: ConfigArgs,
    /// Create sample offices, services and accounts in an empty database; passwords and demo-room
    /// links go to <data-dir>/demo-accounts.txt (owner-only), never to the output.
    #[arg(long, global = true)]
    demo: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (the default).
    Run,
    /// Check the configuration (file, environment, flags) without starting anything: print what
    /// would be used, secrets left out; exit 2 with the reason when it is not valid.
    CheckConfig,
    /// Bring the database's schema up to date and stop (the server also does it at start).
    Migrate,
    /// Copy the SQLite database, consistently, into the new FILE while the server may run. To
    /// restore: stop the server, put FILE in place of <data-dir>/sportello.db, start it.
    /// (PostgreSQL: pg_dump / pg_restore.)
    Backup {
        /// Where the copy goes; must not exist.
        file: std::path::PathBuf,
    },
    /// Put a backup made by `backup` back in place of the SQLite database, with the server stopped.
    /// The backup is checked first; the database it replaces is kept as
    /// <data-dir>/sportello.db.before-restore-<time>. (PostgreSQL: pg_restore.)
    Restore {
        /// The backup to restore.
        file: std::path::PathBuf,
    },
    /// Several nodes: drain the running node this configuration names (`node_id`, `nats_url`):
    /// it takes no new room or viewer, moves its sessions to the other nodes and ends the streams
    /// it relays, by the deadline; prints what is left once it has. The node keeps running,
    /// drained, until it is stopped (SIGTERM drains too, then stops).
    Drain {
        /// How long the node may take to move its sessions, e.g. 30s, 2m.
        #[arg(long, default_value = "30s", value_parser = parse_duration)]
        deadline: Duration,
    },
    /// Staff accounts, for scripted installs.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Print a join link for one participant.
    Token {
        /// Room name, e.g. ufficio-anagrafe.
        #[arg(long)]
        room: String,
        /// Display name.
        #[arg(long)]
        name: String,
        /// Identity, unique in the room [default: derived from the name, plus a random suffix].
        #[arg(long)]
        identity: Option<String>,
        /// host, participant or viewer.
        #[arg(long)]
        role: Role,
        /// How long the link stays valid, e.g. 30m, 8h, 7d.
        #[arg(long, default_value = "8h", value_parser = parse_duration)]
        valid_for: Duration,
    },
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Create an administrator. Prints a one-time link (valid 7 days) to set the password, or
    /// takes the password from the first line of standard input with --password-stdin.
    Create {
        /// Email, used to log in.
        #[arg(long)]
        email: String,
        /// Display name.
        #[arg(long)]
        name: String,
        /// Read the password from standard input instead of printing a link.
        #[arg(long)]
        password_stdin: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(&cli.config, std::env::vars_os()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("sportello: configurazione non valida / invalid configuration: {e}");
            return ExitCode::from(2);
        }
    };
    match cli.command.unwrap_or(Command::Run) {
        Command::Run => run(config, cli.demo),
        Command::Migrate => {
            with_store(&config, |_| async { Ok::<_, OpsError>("schema up to date / schema aggiornato".to_owned()) })
        }
        // PostgreSQL is pg_dump's job: said before connecting, so it is said even with the
        // database out of reach.
        Command::Backup { .. } if !config.database_url().starts_with("sqlite:") => {
            eprintln!("sportello: {}", sportello_store::StoreError::BackupUnsupported);
            ExitCode::FAILURE
        }
        Command::Backup { file } => with_store(&config, |store| async move {
            store.backup_to(&file).await.map_err(OpsError::from)?;
            Ok::<_, OpsError>(format!("copia salvata / backup written: {}", file.display()))
        }),
        Command::Restore { file } => restore(&config, &file),
        Command::Admin { command: AdminCommand::Create { email, name, password_stdin } } => {
            let password = if password_stdin {
                let mut line = String::new();
                if let Err(e) = std::io::stdin().read_line(&mut line) {
                    eprintln!("sportello: cannot read the password from standard input: {e}");
                    return ExitCode::FAILURE;
                }
                Some(line.trim_end_matches(['\r', '\n']).to_owned())
            } else {
                None
            };
            let public_url = config.public_url.clone();
            with_store(&config, move |store| async move {
                admin_create(&store, &public_url, &email, &name, password.as_deref()).await
            })
        }
        Command::CheckConfig => match config.validated() {
            Ok(config) => {
                print!("{}", summary(&config));
                println!("configurazione valida / configuration valid");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("sportello: configurazione non valida / invalid configuration: {e}");
                ExitCode::from(2)
            }
        },
        Command::Drain { deadline } => {
            let (Some(node), Some(nats_url)) = (config.node_id.clone(), config.nats_url.clone()) else {
                eprintln!("sportello: drain needs node_id and nats_url (a node of several) / serve node_id e nats_url");
                return ExitCode::from(2);
            };
            with_runtime(&config, move || async move {
                let report = sportello_cluster::drain::request(&nats_url, &node, deadline).await?;
                Ok::<_, sportello_cluster::drain::DrainError>(format!(
                    "nodo {0} svuotato, sessioni rimaste {1} / node {0} drained, sessions left {1}",
                    report.node, report.sessions_left
                ))
            })
        }
        Command::Token { room, name, identity, role, valid_for } => {
            let identity = identity.unwrap_or_else(|| identity_from(&name));
            match print_link(&config, &room, &identity, &name, role, valid_for) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("sportello: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// Opens the database (which applies the migrations), runs `job` and prints its line; a failure
/// is printed and exits 1.
fn with_store<F, Fut, E>(config: &Config, job: F) -> ExitCode
where
    F: FnOnce(sportello_store::Store) -> Fut,
    Fut: std::future::Future<Output = Result<String, E>>,
    E: From<sportello_store::StoreError> + std::fmt::Display,
{
    let url = config.database_url();
    with_runtime(config, move || async move {
        let store = sportello_store::Store::connect(&url).await?;
        let done = job(store.clone()).await;
        store.close().await;
        done
    })
}

/// Runs `job` on a runtime of its own, with the private data directory in place, and prints its
/// line; a failure is printed and exits 1.
fn with_runtime<F, Fut, E>(config: &Config, job: F) -> ExitCode
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<String, E>>,
    E: std::fmt::Display,
{
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("sportello: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // As `run` does: the data directory and what is created in it are private.
    #[cfg(unix)]
    // SAFETY: umask only sets this process's file-creation mask; no memory is involved.
    unsafe {
        libc::umask(0o077);
    }
    if let Err(e) = sportello_backoffice::private::create_dir(&config.data_dir) {
        eprintln!("sportello: {}: {e}", config.data_dir.display());
        return ExitCode::FAILURE;
    }
    match runtime.block_on(job()) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sportello: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Why `admin create` or `restore` did nothing (printed as is, exit 1).
#[derive(Debug, thiserror::Error)]
enum OpsError {
    #[error(transparent)]
    Store(#[from] sportello_store::StoreError),
    #[error("{0}")]
    Refused(String),
}

async fn admin_create(
    store: &sportello_store::Store,
    public_url: &str,
    email: &str,
    name: &str,
    password: Option<&str>,
) -> Result<String, OpsError> {
    use sportello_server::api::auth::{MAX_PASSWORD, MIN_PASSWORD, setup_link, valid_staff_email};
    use sportello_store::{NewUser, StaffRole, StoreError};

    let email = email.trim().to_lowercase();
    if !valid_staff_email(&email) {
        return Err(OpsError::Refused(format!("{email:?} is not a valid email / email non valida")));
    }
    let Some(display_name) = sportello_domain::clean_display_name(name, 100) else {
        return Err(OpsError::Refused("the name is empty or longer than 100 characters / nome non valido".into()));
    };
    // Checked before the account exists, so a refused password leaves nothing behind.
    let hash = match password {
        Some(p) if !(MIN_PASSWORD..=MAX_PASSWORD).contains(&p.chars().count()) => {
            return Err(OpsError::Refused(format!(
                "the password must have {MIN_PASSWORD} to {MAX_PASSWORD} characters / \
                 la password deve avere da {MIN_PASSWORD} a {MAX_PASSWORD} caratteri"
            )));
        }
        Some(p) => Some(
            sportello_backoffice::secrets::hash_password_blocking(p)
                .map_err(|e| OpsError::Refused(format!("cannot hash the password: {e}")))?,
        ),
        None => None,
    };
    let now = jiff::Timestamp::now().as_second();
    let new = NewUser { email: email.clone(), display_name, role: StaffRole::Admin };
    let user = store.create_user(&new, now).await.map_err(|e| match e {
        StoreError::Conflict(_) => OpsError::Refused(format!("{email} already exists / esiste già")),
        other => other.into(),
    })?;
    Ok(match hash {
        Some(hash) => {
            store.set_password(&user.id, &hash, now).await?;
            format!("amministratore creato / administrator created: {email}")
        }
        None => format!(
            "amministratore creato / administrator created: {email}\n\
             Imposta la password (una sola volta, entro 7 giorni) / set the password (once, within 7 days):\n  {}",
            setup_link(store, public_url, &user.id, now).await?
        ),
    })
}

/// `restore FILE`: only with the server stopped (its port free), only SQLite.
fn restore(config: &Config, file: &std::path::Path) -> ExitCode {
    if !config.database_url().starts_with("sqlite:") {
        eprintln!("sportello: {}", sportello_store::StoreError::RestoreUnsupported);
        return ExitCode::FAILURE;
    }
    // The port is the server's lock: a server still running would go on writing to the file
    // being replaced (and hold its rooms in memory).
    if let Err(e) = std::net::TcpListener::bind(config.listen) {
        eprintln!(
            "sportello: {} is in use ({e}): stop the server before restoring / \
             ferma il server prima del ripristino",
            config.listen
        );
        return ExitCode::FAILURE;
    }
    let db = std::path::PathBuf::from(config.database_url().trim_start_matches("sqlite:").trim_start_matches("//"));
    let file = file.to_owned();
    with_runtime(config, move || async move {
        let now = jiff::Timestamp::now().as_second();
        let done = sportello_store::restore_sqlite(&file, &db, now).await.map_err(OpsError::from)?;
        let previous = match &done.previous {
            Some(path) => {
                format!("\nil database sostituito è in / the replaced database is kept in: {}", path.display())
            }
            None => String::new(),
        };
        Ok::<_, OpsError>(format!(
            "ripristinato / restored: {} ({} staff, {} appointments){previous}",
            file.display(),
            done.users,
            done.appointments
        ))
    })
}

/// What `check-config` prints: the settings an operator checks first, no secret (the database's
/// and SMTP's passwords are masked, the TURN secret is only said to be there).
fn summary(c: &Config) -> String {
    let masked = |url: &str| match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_owned(),
    };
    let list = |items: Vec<String>| if items.is_empty() { "-".to_owned() } else { items.join(", ") };
    let database = c
        .database_url
        .as_deref()
        .map(masked)
        .unwrap_or_else(|| format!("sqlite:{}/sportello.db", c.data_dir.display()));
    [
        ("listen", c.listen.to_string()),
        ("public_url", c.public_url.clone()),
        ("data_dir", c.data_dir.display().to_string()),
        ("database", database),
        ("media_bind", c.media_bind.to_string()),
        ("announced_ip", c.announced_ip.map(|ip| ip.to_string()).unwrap_or_else(|| "-".into())),
        ("media_tcp_bind", c.media_tcp_bind.map(|a| a.to_string()).unwrap_or_else(|| "off".into())),
        ("media_tcp_announced", c.media_tcp_announced.map(|a| a.to_string()).unwrap_or_else(|| "-".into())),
        ("metrics_bind", c.metrics_bind.map(|a| a.to_string()).unwrap_or_else(|| "off".into())),
        ("turn_urls", list(c.turn_urls.clone())),
        (
            "turn_secret",
            match (c.turn_urls.is_empty(), c.turn_secret.is_some()) {
                (true, _) => "- (no TURN)".into(),
                (false, true) => "set".into(),
                (false, false) => "<data_dir>/turn.secret, or turn_secret_file".into(),
            },
        ),
        ("smtp_url", c.smtp_url.as_deref().map(masked).unwrap_or_else(|| "- (emails go to <data_dir>/outbox)".into())),
        ("trusted_proxies", list(c.trusted_proxies.iter().map(ToString::to_string).collect())),
        (
            "forwarded_header",
            match c.forwarded_header {
                ForwardedHeader::XForwardedFor => "x-forwarded-for".into(),
                ForwardedHeader::Forwarded => "forwarded".into(),
            },
        ),
    ]
    .iter()
    .map(|(key, value)| format!("{key:<20} {value}\n"))
    .collect()
}

fn init_logging(format: LogFormat) {
    let filter = sportello_server::logging::env_filter(std::env::var("RUST_LOG").ok().as_deref());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn run(config: Config, demo: bool) -> ExitCode {
    // Whatever the server or its children (ffmpeg) create is its own: the data directory holds
    // citizens' data, and files it creates explicitly are 0600 anyway (`private`).
    #[cfg(unix)]
    // SAFETY: umask only sets this process's file-creation mask; no memory is involved.
    unsafe {
        libc::umask(0o077);
    }
    init_logging(config.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("sportello: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let server = match server::start(config).await {
            Ok(server) => server,
            Err(e) => {
                tracing::error!(error = %e, "cannot start");
                eprintln!("sportello: {e}");
                return ExitCode::FAILURE;
            }
        };
        println!("Sportello è in ascolto su {}", server.url());
        let now = server.tokens.clock().now();
        if demo {
            // Passwords and host links are credentials: into an owner-only file, never the log.
            match write_demo(&server).await {
                Ok(path) => println!(
                    "Account e link di prova in {} (leggibile solo da questo utente)\n\
                     Demo accounts and links: in the file above (owner-only)",
                    path.display()
                ),
                Err(e) => tracing::warn!(error = %e, "cannot create the demo data"),
            }
        }
        match first_admin_link(&server.store, &server.config.public_url, now).await {
            Ok(Some(link)) => println!(
                "Primo avvio: crea l'amministratore aprendo (una sola volta, entro 7 giorni):\n  {link}\n\
                 First start: create the administrator by opening the link above."
            ),
            Ok(None) => println!("Area del personale / staff login: {}/staff", server.url()),
            Err(e) => tracing::warn!(error = %e, "cannot create the first-administrator link"),
        }
        println!("Prenotazione per i cittadini / citizens book at: {}/prenota", server.url());
        println!("Altri link: sportello token --room demo --name \"Mario Rossi\" --role participant");
        shutdown_signal().await;
        // Several nodes: the calls move to the other nodes first (docs/cluster.md, "Drain").
        server.drain(DRAIN_DEADLINE).await;
        tracing::info!("shutting down");
        match server.shutdown().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!(error = %e, "unclean shutdown");
                ExitCode::FAILURE
            }
        }
    })
}

/// The demo data (into an empty database) and two fresh links into the room `demo`, host and
/// guest (one per browser tab), written to the demo file; returns its path.
async fn write_demo(server: &server::RunningServer) -> Result<std::path::PathBuf, Box<dyn std::error::Error>> {
    let now = server.tokens.clock().now();
    let accounts = demo::ensure(&server.store, &server.config.data_dir, now).await?;
    let mut links = Vec::new();
    for (identity, name, role, label) in [
        ("host", "Host", Role::Host, "Stanza di prova, come host"),
        ("ospite", "Ospite", Role::Participant, "Stanza di prova, come ospite"),
    ] {
        let claims = Claims::new("demo", identity, name, role, Duration::from_secs(8 * 3600));
        links.push((label, join_link(&server.config.public_url, &server.tokens.issue(&claims)?)));
    }
    Ok(demo::write_accounts_and_links(&server.config.data_dir, &accounts, &links)?)
}

/// How long a node of a cluster gives its sessions to move elsewhere before it stops.
const DRAIN_DEADLINE: Duration = Duration::from_secs(30);

/// Ctrl-C or SIGTERM (systemd, containers).
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

fn print_link(
    config: &Config,
    room: &str,
    identity: &str,
    name: &str,
    role: Role,
    valid_for: Duration,
) -> Result<(), Box<dyn std::error::Error>> {
    let key = TokenKey::load_or_create(&config.data_dir)?;
    let claims = Claims::new(room, identity, name, role, valid_for);
    let token = key.issue(&claims)?;
    // Check it the way the server will, so a bad room or name fails here and not in the browser.
    key.verify(&token, Some(room)).map_err(|e| format!("the link would not work: {e}"))?;
    println!("{}", join_link(&config.public_url, &token));
    Ok(())
}

/// `"Mario Rossi"` → `"mario-rossi-3f9a"`: readable in logs, and two people with the same name
/// get different identities (the same identity would replace the other's connection).
fn identity_from(name: &str) -> String {
    let mut slug = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let slug = slug.trim_end_matches('-');
    let slug: String = slug.chars().take(40).collect();
    let suffix: u16 = rand::random();
    if slug.is_empty() { format!("p-{suffix:04x}") } else { format!("{slug}-{suffix:04x}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_are_slugs_with_a_suffix() {
        let id = identity_from("Maria Grazia D'Amico");
        assert!(id.starts_with("maria-grazia-d-amico-"), "{id}");
        assert!(identity_from("   ").starts_with("p-"));
    }

    #[test]
    fn cli_parses() {
        let cli = Cli::try_parse_from([
            "sportello",
            "token",
            "--room",
            "r",
            "--name",
            "N",
            "--role",
            "viewer",
            "--valid-for",
            "30m",
        ])
        .unwrap();
        assert!(
            matches!(cli.command, Some(Command::Token { role: Role::Viewer, valid_for, .. }) if valid_for == Duration::from_secs(1800))
        );
        let cli = Cli::try_parse_from(["sportello", "--listen", "127.0.0.1:9000"]).unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.config.listen, Some("127.0.0.1:9000".parse().unwrap()));
        assert!(Cli::try_parse_from(["sportello", "token", "--room", "r", "--name", "N", "--role", "admin"]).is_err());
    }
}
