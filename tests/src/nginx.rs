//! nginx running `deploy/nginx-443.conf` — the one-port front — or `deploy/nginx-https.conf` — the
//! standalone HTTPS front — for a test: the deploy file itself,
//! with its production addresses, ports, certificate and log paths replaced by the test's, started
//! as `nginx -p DIR -c FILE -g 'daemon off;'` (own pid, logs and temporary paths: nothing in `/etc`
//! or `/var` is touched) and stopped by its PID on drop.
//!
//! Every replacement must find its text in the deploy file: when the file changes, [`render`] says
//! which line the test no longer recognises instead of silently testing something else.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

/// The production file, read at run time: the test exercises what is deployed.
pub const DEPLOY_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/nginx-443.conf");
/// Debian's (libnginx-mod-stream) stream module; production loads it through `modules-enabled`.
const STREAM_MODULE: &str = "/usr/lib/nginx/modules/ngx_stream_module.so";

/// Where the test's front listens and forwards.
#[derive(Debug, Clone)]
pub struct FrontConfig {
    /// The shared port (443 in production).
    pub front: u16,
    /// Plain HTTP (80 in production: certbot and the redirect).
    pub plain_http: u16,
    /// The HTTPS site behind the front (127.0.0.1:8443 in production).
    pub site: u16,
    /// Sportello's HTTP listener (127.0.0.1:8080 in production).
    pub sportello: SocketAddr,
    /// coturn's TLS listener (127.0.0.1:5349 in production).
    pub coturn_tls: u16,
    /// Sportello's ICE-TCP listener, `media_tcp_bind` (127.0.0.1:4443 in production).
    pub ice_tcp: u16,
    /// The site's certificate and key (PEM).
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The deploy file `text` with the test's values in `dir`; an error names a production line that
/// is no longer there.
pub fn render(text: &str, config: &FrontConfig, dir: &Path) -> Result<String, String> {
    let d = dir.display();
    let mut replacements = in_test_dir(dir);
    replacements.extend([
        ("/var/log/nginx/front-443.log", format!("{d}/front-443.log")),
        ("include /etc/nginx/modules-enabled/*.conf;", format!("load_module {STREAM_MODULE};")),
        ("listen 443;", format!("listen 127.0.0.1:{};", config.front)),
        ("listen [::]:443;", String::new()),
        ("listen 80;", format!("listen 127.0.0.1:{};", config.plain_http)),
        ("listen [::]:80;", String::new()),
        ("127.0.0.1:8443", format!("127.0.0.1:{}", config.site)),
        ("127.0.0.1:8080", config.sportello.to_string()),
        ("127.0.0.1:5349", format!("127.0.0.1:{}", config.coturn_tls)),
        ("127.0.0.1:4443", format!("127.0.0.1:{}", config.ice_tcp)),
        ("/etc/letsencrypt/live/sportello.comune.example.it/fullchain.pem", config.cert.display().to_string()),
        ("/etc/letsencrypt/live/sportello.comune.example.it/privkey.pem", config.key.display().to_string()),
    ]);
    replace_each(text, DEPLOY_FILE, &replacements)
}

/// What both deploy files need changed to run as the test's nginx in `dir`.
fn in_test_dir(dir: &Path) -> Vec<(&'static str, String)> {
    let d = dir.display();
    let temp_paths = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]
        .iter()
        .map(|p| format!("    {p}_temp_path {d}/{p};\n"))
        .collect::<String>();
    vec![
        // Root inside the test's namespace; www-data could not enter the private temporary directory.
        ("user www-data;", "user root;".into()),
        ("pid /run/nginx.pid;", format!("pid {d}/nginx.pid;")),
        ("/var/log/nginx/error.log", format!("{d}/error.log")),
        // The compiled-in temporary paths are under /var/lib/nginx.
        ("\nhttp {\n", format!("\nhttp {{\n{temp_paths}")),
    ]
}

/// `text` (the deploy file `file`) with every production text replaced; an error names one that is
/// no longer there.
pub fn replace_each(text: &str, file: &str, replacements: &[(&str, String)]) -> Result<String, String> {
    // Two passes through markers, so that a value put in (e.g. `127.0.0.1:44431`) is never
    // matched by a later production text (`127.0.0.1:4443`).
    let mut out = text.to_owned();
    for (i, (from, _)) in replacements.iter().enumerate() {
        if !out.contains(from) {
            return Err(format!("{file} no longer contains {from:?}: update the test's rendering to the new file"));
        }
        out = out.replace(from, &format!("\0{i}\0"));
    }
    for (i, (_, to)) in replacements.iter().enumerate() {
        out = out.replace(&format!("\0{i}\0"), to);
    }
    Ok(out)
}

/// The standalone HTTPS front, read at run time like [`DEPLOY_FILE`].
pub const HTTPS_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/nginx-https.conf");

/// Where the test's standalone HTTPS front listens and forwards.
#[derive(Debug, Clone)]
pub struct HttpsConfig {
    /// HTTPS (443 in production).
    pub https: u16,
    /// Plain HTTP (80 in production: certbot and the redirect).
    pub plain_http: u16,
    /// Sportello's HTTP listener (127.0.0.1:8080 in production).
    pub sportello: SocketAddr,
    /// The name the site answers to (`server_name`; sportello.comune.example.it in production).
    pub server_name: String,
    /// The site's certificate and key (PEM).
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// `deploy/nginx-https.conf`'s `text` with the test's values in `dir`.
pub fn render_https(text: &str, config: &HttpsConfig, dir: &Path) -> Result<String, String> {
    let mut replacements = in_test_dir(dir);
    replacements.extend([
        ("listen 443 ssl http2;", format!("listen 127.0.0.1:{} ssl http2;", config.https)),
        ("listen [::]:443 ssl http2;", String::new()),
        ("listen 80;", format!("listen 127.0.0.1:{};", config.plain_http)),
        ("listen [::]:80;", String::new()),
        ("127.0.0.1:8080", config.sportello.to_string()),
        ("/etc/letsencrypt/live/sportello.comune.example.it/fullchain.pem", config.cert.display().to_string()),
        ("/etc/letsencrypt/live/sportello.comune.example.it/privkey.pem", config.key.display().to_string()),
        ("server_name sportello.comune.example.it;", format!("server_name {};", config.server_name)),
    ]);
    replace_each(text, HTTPS_FILE, &replacements)
}

/// nginx in the foreground with the rendered front; stopped by its PID when dropped.
pub struct Nginx {
    child: Child,
    dir: tempfile::TempDir,
}

impl Nginx {
    /// Renders [`DEPLOY_FILE`], starts nginx and waits until the front and the site accept.
    pub async fn start(config: &FrontConfig) -> Result<Nginx, String> {
        let text = std::fs::read_to_string(DEPLOY_FILE).map_err(|e| format!("{DEPLOY_FILE}: {e}"))?;
        Nginx::start_with(|dir| render(&text, config, dir), &[config.front, config.site]).await
    }

    /// Renders [`HTTPS_FILE`], starts nginx and waits until HTTPS and plain HTTP accept.
    pub async fn start_https(config: &HttpsConfig) -> Result<Nginx, String> {
        let text = std::fs::read_to_string(HTTPS_FILE).map_err(|e| format!("{HTTPS_FILE}: {e}"))?;
        Nginx::start_with(|dir| render_https(&text, config, dir), &[config.https, config.plain_http]).await
    }

    /// Starts nginx with the configuration `conf` writes for its private directory (pid, logs and
    /// temporary paths go there) and waits until `ports` accept on 127.0.0.1.
    pub async fn start_with(
        conf: impl FnOnce(&Path) -> Result<String, String>,
        ports: &[u16],
    ) -> Result<Nginx, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let path = dir.path().join("nginx.conf");
        std::fs::write(&path, conf(dir.path())?).map_err(|e| e.to_string())?;
        // Messages before the configuration's error_log takes over (e.g. a syntax error).
        let stderr = std::fs::File::create(dir.path().join("stderr.log")).map_err(|e| e.to_string())?;
        let child = Command::new("nginx")
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&path)
            .args(["-g", "daemon off;"])
            .stdout(Stdio::null())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start nginx (Debian nginx-light, libnginx-mod-stream): {e}"))?;
        let mut nginx = Nginx { child, dir };
        crate::wait_for_ports(&mut nginx.child, ports, Duration::from_secs(10))
            .await
            .map_err(|e| format!("nginx {e}:\n{}", nginx.log_text()))?;
        Ok(nginx)
    }

    /// Its private directory (configuration, pid, logs).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The front's access log: one line per finished connection, with the upstream it went to.
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("front-443.log")).unwrap_or_default()
    }

    /// Everything nginx said (standard error, error log, the front's access log), for a failure message.
    pub fn log_text(&self) -> String {
        let read = |name: &str| std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        format!(
            "--- nginx stderr ---\n{}--- nginx error.log ---\n{}--- nginx front-443.log ---\n{}",
            read("stderr.log"),
            read("error.log"),
            read("front-443.log")
        )
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        crate::terminate(&mut self.child);
    }
}
