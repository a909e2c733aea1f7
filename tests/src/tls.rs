//! Certificates for tests, made with the `openssl` command line tool (PEM files in a directory of
//! the test's).

use std::path::{Path, PathBuf};

/// A self-signed certificate for `names` (PEM, `cert.pem` and `key.pem` in `dir`), made with the
/// `openssl` command line tool. Browsers are told to accept it (`--ignore-certificate-errors`).
pub fn self_signed_cert(dir: &Path, names: &[&str]) -> Result<(PathBuf, PathBuf), String> {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let san = names.iter().map(|n| format!("DNS:{n}")).chain(["IP:127.0.0.1".to_owned()]).collect::<Vec<_>>().join(",");
    let out = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"])
        .arg("-subj")
        .arg(format!("/CN={}", names.first().copied().unwrap_or("localhost")))
        .arg("-addext")
        .arg(format!("subjectAltName={san}"))
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .map_err(|e| format!("cannot run openssl: {e}"))?;
    if !out.status.success() {
        return Err(format!("openssl req failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    Ok((cert, key))
}

/// A certificate authority of the test's own (`ca.pem`, `ca.key` in its directory), so that a
/// browser checks a server's certificate for real: trust it ([`TestCa::nss_home`]) instead of
/// turning the checks off.
pub struct TestCa {
    dir: PathBuf,
}

impl TestCa {
    /// A new CA (EC P-256, valid two days) in `dir`.
    pub fn new(dir: &Path) -> Result<TestCa, String> {
        let ca = TestCa { dir: dir.to_owned() };
        run_tool(
            std::process::Command::new("openssl")
                .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"])
                .args(["-days", "2", "-subj", "/CN=Sportello test CA"])
                .args(["-addext", "basicConstraints=critical,CA:TRUE"])
                .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"])
                .arg("-keyout")
                .arg(ca.key())
                .arg("-out")
                .arg(ca.cert()),
            "openssl req (CA)",
        )?;
        Ok(ca)
    }

    /// The CA's certificate (PEM): what clients trust.
    pub fn cert(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    fn key(&self) -> PathBuf {
        self.dir.join("ca.key")
    }

    /// A server certificate signed by this CA for `names` and 127.0.0.1 (PEM `<stem>.pem` and
    /// `<stem>.key` in the CA's directory).
    pub fn issue(&self, stem: &str, names: &[&str]) -> Result<(PathBuf, PathBuf), String> {
        let (cert, key, csr, ext) = (
            self.dir.join(format!("{stem}.pem")),
            self.dir.join(format!("{stem}.key")),
            self.dir.join(format!("{stem}.csr")),
            self.dir.join(format!("{stem}.ext")),
        );
        let san = names.iter().map(|n| format!("DNS:{n}")).chain(["IP:127.0.0.1".to_owned()]).collect::<Vec<_>>();
        std::fs::write(
            &ext,
            format!(
                "subjectAltName={}\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n\
                 extendedKeyUsage=serverAuth\n",
                san.join(",")
            ),
        )
        .map_err(|e| format!("{}: {e}", ext.display()))?;
        run_tool(
            std::process::Command::new("openssl")
                .args(["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"])
                .arg("-subj")
                .arg(format!("/CN={}", names.first().copied().unwrap_or("localhost")))
                .arg("-keyout")
                .arg(&key)
                .arg("-out")
                .arg(&csr),
            "openssl req (server)",
        )?;
        run_tool(
            std::process::Command::new("openssl")
                .args(["x509", "-req", "-days", "2", "-CAcreateserial"])
                .arg("-in")
                .arg(&csr)
                .arg("-CA")
                .arg(self.cert())
                .arg("-CAkey")
                .arg(self.key())
                .arg("-extfile")
                .arg(&ext)
                .arg("-out")
                .arg(&cert),
            "openssl x509 (sign)",
        )?;
        Ok((cert, key))
    }

    /// A home directory whose NSS database (`.pki/nssdb`, where Chromium on Linux looks for the
    /// user's certificate authorities) trusts this CA for web sites; made with `certutil` (Debian
    /// `libnss3-tools`). Give it to the browser as `HOME`.
    pub fn nss_home(&self, home: &Path) -> Result<PathBuf, String> {
        let db = home.join(".pki/nssdb");
        std::fs::create_dir_all(&db).map_err(|e| format!("{}: {e}", db.display()))?;
        let db_arg = format!("sql:{}", db.display());
        let certutil = |args: &[&str], what: &str| {
            let mut cmd = std::process::Command::new("certutil");
            cmd.args(["-d", &db_arg]).args(args);
            run_tool(&mut cmd, what).map_err(|e| format!("{e} (certutil is Debian's libnss3-tools)"))
        };
        certutil(&["-N", "--empty-password"], "certutil -N")?;
        let ca = self.cert().display().to_string();
        certutil(&["-A", "-t", "C,,", "-n", "sportello-test-ca", "-i", &ca], "certutil -A")?;
        Ok(home.to_owned())
    }
}

/// Runs a certificate tool; its error output on failure.
fn run_tool(cmd: &mut std::process::Command, what: &str) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("cannot run {what}: {e}"))?;
    if out.status.success() { Ok(()) } else { Err(format!("{what} failed: {}", String::from_utf8_lossy(&out.stderr))) }
}
