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
