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
        Command::Migrate => with_store(&config, |_| async { Ok("schema up to date / schema aggiornato".to_owned()) }),
        Command::Backup { file } => with_store(&config, |store| async move {
            store.backup_to(&file).await?;
            Ok(format!("copia salvata / backup written: {}", file.display()))
        }),
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
fn with_store<F, Fut>(config: &Config, job: F) -> ExitCode
where
    F: FnOnce(sportello_store::Store) -> Fut,
    Fut: std::future::Future<Output = Result<String, sportello_store::StoreError>>,
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
    let url = config.database_url();
    runtime.block_on(async move {
        let outcome = match sportello_store::Store::connect(&url).await {
            Ok(store) => {
                let done = job(store.clone()).await;
                store.close().await;
                done
            }
            Err(e) => Err(e),
        };
        match outcome {
            Ok(line) => {
                println!("{line}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("sportello: {e}");
                ExitCode::FAILURE
            }
        }
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
