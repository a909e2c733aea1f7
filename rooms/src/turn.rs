//! TURN REST credentials (coturn `use-auth-secret`, draft-uberti-behave-turn-rest): the server and
//! coturn share a secret; each participant gets the username `<unix expiry>:<participant id>` and the
//! password `base64(HMAC-SHA1(secret, username))`, which coturn checks without asking us and refuses
//! once the expiry has passed.

use std::fmt;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha1::Sha1;

use crate::protocol::IceServer;

/// Name of the secret file inside the data directory.
pub const SECRET_FILE: &str = "turn.secret";
/// Random bytes in a generated secret (written as hex, so it can be pasted into coturn.conf).
const SECRET_BYTES: usize = 32;
const MIN_SECRET_LEN: usize = 16;

/// The secret shared with coturn (`static-auth-secret`). Its text, not a decoding of it, is the HMAC
/// key, as coturn uses it.
#[derive(Clone, PartialEq, Eq)]
pub struct TurnSecret(String);

impl fmt::Debug for TurnSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TurnSecret(..)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TurnSecretError {
    #[error("cannot read or write the TURN secret {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("the TURN secret {path} must hold at least {MIN_SECRET_LEN} characters")]
    TooShort { path: PathBuf },
    #[error("the TURN secret {path} is not UTF-8 text")]
    NotText { path: PathBuf },
}

impl TurnSecret {
    /// A secret given as text (environment); surrounding whitespace is not part of it.
    pub fn new(text: &str) -> Option<TurnSecret> {
        let text = text.trim();
        (text.len() >= MIN_SECRET_LEN).then(|| TurnSecret(text.to_owned()))
    }

    /// Reads `path`; when `create` and it does not exist, writes a fresh random secret there (mode
    /// 0600), once, as the token key is.
    pub fn load(path: &Path, create: bool) -> Result<TurnSecret, TurnSecretError> {
        let io_err = |source| TurnSecretError::Io { path: path.to_owned(), source };
        if create {
            match sportello_backoffice::private::create_new_file(path) {
                Ok(mut file) => {
                    let text = hex::encode(rand::random::<[u8; SECRET_BYTES]>());
                    file.write_all(format!("{text}\n").as_bytes()).and_then(|()| file.sync_all()).map_err(io_err)?;
                    tracing::info!(path = %path.display(), "created a new TURN secret");
                    return Ok(TurnSecret(text));
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io_err(e)),
            }
        }
        let mut bytes = Vec::new();
        std::fs::File::open(path).and_then(|mut f| f.read_to_end(&mut bytes)).map_err(io_err)?;
        let text = String::from_utf8(bytes).map_err(|_| TurnSecretError::NotText { path: path.to_owned() })?;
        TurnSecret::new(&text).ok_or_else(|| TurnSecretError::TooShort { path: path.to_owned() })
    }
}

/// `(username, credential)` for `participant`, valid until `expiry` (Unix seconds).
pub fn credentials(secret: &TurnSecret, expiry: i64, participant: &str) -> (String, String) {
    let username = format!("{expiry}:{participant}");
    // HMAC accepts keys of any length: `new_from_slice` cannot fail here.
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(secret.0.as_bytes()).expect("HMAC takes any key length");
    mac.update(username.as_bytes());
    let credential = STANDARD.encode(mac.finalize().into_bytes());
    (username, credential)
}

/// The TURN servers handed out with per-participant credentials. No URL: nothing is handed out.
#[derive(Debug, Clone)]
pub struct Turn {
    pub urls: Vec<String>,
    /// How long a credential stays valid after it is handed out.
    pub ttl: Duration,
    pub secret: TurnSecret,
}

impl Turn {
    /// The `RTCIceServer` for `participant` at `now` (Unix seconds), or none when no URL is set.
    pub fn ice_server(&self, participant: &str, now: i64) -> Option<IceServer> {
        if self.urls.is_empty() {
            return None;
        }
        let expiry = now.saturating_add(i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX));
        let (username, credential) = credentials(&self.secret, expiry, participant);
        Some(IceServer { urls: self.urls.clone(), username: Some(username), credential: Some(credential) })
    }
}

/// `static` servers followed by `participant`'s TURN server, if any.
pub fn ice_servers(static_servers: &[IceServer], turn: Option<&Turn>, participant: &str, now: i64) -> Vec<IceServer> {
    let mut servers = static_servers.to_vec();
    servers.extend(turn.and_then(|t| t.ice_server(participant, now)));
    servers
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(text: &str) -> TurnSecret {
        TurnSecret(text.to_owned())
    }

    #[test]
    fn coturn_rest_credentials_known_vector() {
        // python3: base64(hmac.new(b"north", b"1700000000:anna", sha1).digest())
        let (username, credential) = credentials(&secret("north"), 1_700_000_000, "anna");
        assert_eq!(username, "1700000000:anna");
        assert_eq!(credential, "WS1fjjHj2gNlXzhc/ZcwmC3ofIo=");
    }

    #[test]
    fn each_participant_gets_its_own_credential_expiring_after_the_ttl() {
        let turn = Turn {
            urls: vec!["turn:203.0.113.10:3478?transport=udp".into()],
            ttl: Duration::from_secs(12 * 3600),
            secret: secret("0123456789abcdef"),
        };
        let stun = IceServer { urls: vec!["stun:stun.example:3478".into()], username: None, credential: None };
        let anna = ice_servers(std::slice::from_ref(&stun), Some(&turn), "anna", 1_000);
        assert_eq!(anna.len(), 2);
        assert_eq!(anna[0], stun);
        assert_eq!(anna[1].username.as_deref(), Some("44200:anna"));
        let marco = turn.ice_server("marco", 1_000).unwrap();
        assert_ne!(anna[1].credential, marco.credential);
        let no_urls = Turn { urls: vec![], ..turn };
        assert_eq!(ice_servers(&[], Some(&no_urls), "anna", 1_000), vec![]);
    }

    #[cfg(unix)]
    #[test]
    fn the_secret_is_created_once_0600_and_reused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SECRET_FILE);
        assert!(matches!(TurnSecret::load(&path, false), Err(TurnSecretError::Io { .. })));
        let first = TurnSecret::load(&path, true).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(TurnSecret::load(&path, true).unwrap(), first);
        assert_eq!(first.0.len(), 2 * SECRET_BYTES);
        std::fs::write(&path, "short\n").unwrap();
        assert!(matches!(TurnSecret::load(&path, true), Err(TurnSecretError::TooShort { .. })));
        assert!(TurnSecret::new("  0123456789abcdef \n").is_some());
    }
}
