//! Join tokens: HS256 JWTs signed with 32 random bytes kept in `<data_dir>/jwt.key`.
//!
//! A token is the whole authorization of a participant: which room, which identity, which role,
//! and when. There are no accounts; whoever holds the link joins.

use std::fmt;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::clock::Clock;

/// Name of the key file inside the data directory.
pub const KEY_FILE: &str = "jwt.key";
const KEY_LEN: usize = 32;
/// Tolerated clock difference between the machine that issued a token and this one.
const LEEWAY_SECS: u64 = 5;
/// Upper bounds on claim sizes: they end up in every `welcome` and in logs.
const MAX_ID_LEN: usize = 128;
const MAX_NAME_LEN: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Host,
    Participant,
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Host => "host",
            Role::Participant => "participant",
            Role::Viewer => "viewer",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "host" => Ok(Role::Host),
            "participant" => Ok(Role::Participant),
            "viewer" => Ok(Role::Viewer),
            other => Err(format!("unknown role {other:?} (host, participant or viewer)")),
        }
    }
}

/// The claims of a join token (`docs/signaling.md`, "Tokens"). Times are Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub room: String,
    /// The identity: unique in the room, stable across reconnections.
    pub sub: String,
    /// Display name.
    pub name: String,
    pub role: Role,
    pub nbf: u64,
    pub exp: u64,
    pub iat: u64,
    /// The appointment this link belongs to: the join is refused once it is cancelled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appt: Option<String>,
    /// Must wait in the lobby until a host admits them (citizens, invited guests).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub wait: bool,
}

impl Claims {
    /// Claims valid from now for `valid_for`.
    pub fn new(room: &str, identity: &str, name: &str, role: Role, valid_for: Duration) -> Claims {
        Claims::new_at(unix_now(), room, identity, name, role, valid_for)
    }

    /// Claims valid from `now` (Unix seconds, e.g. the server [`Clock`]'s) for `valid_for`.
    pub fn new_at(now: u64, room: &str, identity: &str, name: &str, role: Role, valid_for: Duration) -> Claims {
        Claims {
            room: room.to_owned(),
            sub: identity.to_owned(),
            name: name.to_owned(),
            role,
            nbf: now,
            exp: now.saturating_add(valid_for.as_secs()),
            iat: now,
            appt: None,
            wait: false,
        }
    }
}

pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Why a token was refused. Deliberately coarse: the client learns no more than the code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token's signature or shape is wrong")]
    Invalid,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token is for another room")]
    WrongRoom,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot create the data directory {path}: {source}")]
    DataDir { path: PathBuf, source: io::Error },
    #[error("cannot read or write the token key {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("the token key {path} must hold at least {KEY_LEN} bytes, it holds {len}")]
    TooShort { path: PathBuf, len: usize },
    #[error("cannot sign a token: {0}")]
    Sign(#[from] jsonwebtoken::errors::Error),
}

/// The HS256 key that signs and verifies join tokens.
#[derive(Clone)]
pub struct TokenKey {
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// Judges `nbf`/`exp` (the server's clock, shifted in tests).
    clock: Clock,
}

impl fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenKey(..)")
    }
}

impl TokenKey {
    pub fn from_secret(secret: &[u8]) -> TokenKey {
        TokenKey {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            clock: Clock::system(),
        }
    }

    /// The same key judging validity windows by `clock`.
    pub fn with_clock(mut self, clock: Clock) -> TokenKey {
        self.clock = clock;
        self
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// A fresh random key that is not stored anywhere (tests, forged tokens).
    pub fn random() -> TokenKey {
        TokenKey::from_secret(&rand::random::<[u8; KEY_LEN]>())
    }

    /// Reads `<data_dir>/jwt.key`, or creates it (32 random bytes, mode 0600) on first run, so that
    /// links stay valid across restarts.
    pub fn load_or_create(data_dir: &Path) -> Result<TokenKey, KeyError> {
        std::fs::create_dir_all(data_dir).map_err(|source| KeyError::DataDir { path: data_dir.to_owned(), source })?;
        let path = data_dir.join(KEY_FILE);
        let io_err = |source| KeyError::Io { path: path.clone(), source };
        match crate::private::create_new_file(&path) {
            Ok(mut file) => {
                let secret: [u8; KEY_LEN] = rand::random();
                file.write_all(&secret).and_then(|()| file.sync_all()).map_err(io_err)?;
                tracing::info!(path = %path.display(), "created a new token key");
                Ok(TokenKey::from_secret(&secret))
            }
            // Created earlier (or concurrently by another process): reuse it.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let mut secret = Vec::new();
                std::fs::File::open(&path).and_then(|mut f| f.read_to_end(&mut secret)).map_err(io_err)?;
                if secret.len() < KEY_LEN {
                    return Err(KeyError::TooShort { path, len: secret.len() });
                }
                warn_if_readable_by_others(&path);
                Ok(TokenKey::from_secret(&secret))
            }
            Err(e) => Err(io_err(e)),
        }
    }

    /// Names this key without revealing it: the first 16 hex digits of SHA-256 over its MAC of a
    /// fixed text. Nodes of a cluster compare it at start (they must share the key).
    pub fn key_id(&self) -> String {
        use sha2::{Digest, Sha256};
        #[derive(Serialize)]
        struct KeyId {
            sportello_key_id: u8,
        }
        let mac = self.sign(&KeyId { sportello_key_id: 1 }).unwrap_or_default();
        hex::encode(&Sha256::digest(mac.as_bytes())[..8])
    }

    pub fn issue(&self, claims: &Claims) -> Result<String, KeyError> {
        self.sign(claims)
    }

    /// Signs any other claim set with the same key (staff sessions). Such claims must carry a field
    /// that join [`Claims`] lack (and vice versa) so one can never pass for the other.
    pub fn sign<T: Serialize>(&self, claims: &T) -> Result<String, KeyError> {
        Ok(jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)?)
    }

    /// Checks signature and algorithm only and returns the claims; the caller judges time with the
    /// server clock.
    pub fn decode<T: serde::de::DeserializeOwned>(&self, token: &str) -> Result<T, TokenError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.validate_nbf = false;
        validation.validate_exp = false;
        validation.set_required_spec_claims::<&str>(&[]);
        jsonwebtoken::decode::<T>(token, &self.decoding, &validation).map(|d| d.claims).map_err(|_| TokenError::Invalid)
    }

    /// Checks signature, algorithm (HS256 only), `exp` and `nbf` (with a few seconds of leeway),
    /// and — when the URL named one — the room.
    pub fn verify(&self, token: &str, expected_room: Option<&str>) -> Result<Claims, TokenError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECS;
        // Time is checked below against our clock, not jsonwebtoken's system time.
        validation.validate_nbf = false;
        validation.validate_exp = false;
        validation.set_required_spec_claims(&["exp", "nbf", "sub"]);
        let claims = match jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation) {
            Ok(data) => data.claims,
            Err(e) => {
                return Err(match e.kind() {
                    ErrorKind::ExpiredSignature => TokenError::Expired,
                    ErrorKind::ImmatureSignature => TokenError::NotYetValid,
                    other => {
                        tracing::debug!(reason = ?other, "token refused");
                        TokenError::Invalid
                    }
                });
            }
        };
        let now = u64::try_from(self.clock.now()).unwrap_or(0);
        if claims.exp.saturating_add(LEEWAY_SECS) < now {
            return Err(TokenError::Expired);
        }
        if claims.nbf > now.saturating_add(LEEWAY_SECS) {
            return Err(TokenError::NotYetValid);
        }
        let sane = |s: &str, max: usize| !s.trim().is_empty() && s.len() <= max && !s.chars().any(char::is_control);
        if !sane(&claims.room, MAX_ID_LEN) || !sane(&claims.sub, MAX_ID_LEN) || !sane(&claims.name, MAX_NAME_LEN) {
            return Err(TokenError::Invalid);
        }
        if expected_room.is_some_and(|room| room != claims.room) {
            return Err(TokenError::WrongRoom);
        }
        Ok(claims)
    }
}

/// `<public_url>/join?t=<token>`: the link a participant opens.
pub fn join_link(public_url: &str, token: &str) -> String {
    format!("{}/join?t={token}", public_url.trim_end_matches('/'))
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(path = %path.display(), "the token key is readable by other users; chmod 600 it");
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;

    /// Nodes compare key ids: the same key gives the same id, another key another one.
    #[test]
    fn a_key_id_names_the_key_without_showing_it() {
        let secret = [7u8; KEY_LEN];
        let (a, b) = (TokenKey::from_secret(&secret), TokenKey::from_secret(&secret));
        assert_eq!(a.key_id(), b.key_id());
        assert_eq!(a.key_id().len(), 16);
        assert_ne!(a.key_id(), TokenKey::random().key_id());
        assert!(!a.key_id().contains(&hex::encode(&secret[..4])));
    }

    fn claims() -> Claims {
        Claims::new("anagrafe", "anna", "Anna Rossi", Role::Host, Duration::from_secs(3600))
    }

    #[test]
    fn a_valid_token_round_trips() {
        let key = TokenKey::random();
        let token = key.issue(&claims()).unwrap();
        assert_eq!(key.verify(&token, Some("anagrafe")), Ok(claims()));
        assert_eq!(key.verify(&token, None), Ok(claims()));
    }

    #[test]
    fn another_room_is_refused_after_the_signature_is_checked() {
        let key = TokenKey::random();
        let token = key.issue(&claims()).unwrap();
        assert_eq!(key.verify(&token, Some("tributi")), Err(TokenError::WrongRoom));
        // A forged token for another room says "invalid", not "wrong room": nothing is learned.
        let forged = TokenKey::random().issue(&claims()).unwrap();
        assert_eq!(key.verify(&forged, Some("tributi")), Err(TokenError::Invalid));
    }

    #[test]
    fn expired_and_not_yet_valid() {
        let key = TokenKey::random();
        let now = unix_now();
        let expired = Claims { nbf: now - 7200, iat: now - 7200, exp: now - 3600, ..claims() };
        assert_eq!(key.verify(&key.issue(&expired).unwrap(), None), Err(TokenError::Expired));
        let early = Claims { nbf: now + 3600, exp: now + 7200, ..claims() };
        assert_eq!(key.verify(&key.issue(&early).unwrap(), None), Err(TokenError::NotYetValid));
        // Within the leeway both are accepted (clocks differ a little).
        let skewed = Claims { nbf: now + 2, exp: now + 3600, ..claims() };
        assert!(key.verify(&key.issue(&skewed).unwrap(), None).is_ok());
    }

    #[test]
    fn forged_signature_is_invalid() {
        let token = TokenKey::random().issue(&claims()).unwrap();
        assert_eq!(TokenKey::random().verify(&token, None), Err(TokenError::Invalid));
    }

    #[test]
    fn tampered_payload_is_invalid() {
        let key = TokenKey::random();
        let token = key.issue(&claims()).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        let payload = String::from_utf8(URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        let tampered = payload.replace("\"host\"", "\"viewer\"");
        assert_ne!(payload, tampered);
        let token = format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(tampered), parts[2]);
        assert_eq!(key.verify(&token, None), Err(TokenError::Invalid));
    }

    #[test]
    fn alg_none_and_other_algorithms_are_invalid() {
        let key = TokenKey::random();
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims()).unwrap());
        let none = format!("{}.{payload}.", URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#));
        assert_eq!(key.verify(&none, None), Err(TokenError::Invalid));
        let secret = [7u8; 32];
        let hs512 = jsonwebtoken::encode(&Header::new(Algorithm::HS512), &claims(), &EncodingKey::from_secret(&secret))
            .unwrap();
        assert_eq!(TokenKey::from_secret(&secret).verify(&hs512, None), Err(TokenError::Invalid));
    }

    #[test]
    fn garbage_and_missing_claims_are_invalid() {
        let key = TokenKey::random();
        for garbage in ["", "a.b.c", "not a token", "....", "\u{0}"] {
            assert_eq!(key.verify(garbage, None), Err(TokenError::Invalid), "{garbage:?}");
        }
        #[derive(Serialize)]
        struct NoRole<'a> {
            room: &'a str,
            sub: &'a str,
            name: &'a str,
            nbf: u64,
            exp: u64,
            iat: u64,
        }
        let now = unix_now();
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &NoRole { room: "r", sub: "s", name: "n", nbf: now, exp: now + 60, iat: now },
            &key.encoding,
        )
        .unwrap();
        assert_eq!(key.verify(&token, None), Err(TokenError::Invalid));
        let empty_identity = Claims { sub: " ".into(), ..claims() };
        assert_eq!(key.verify(&key.issue(&empty_identity).unwrap(), None), Err(TokenError::Invalid));
    }

    #[test]
    fn key_file_is_created_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("nested");
        let first = TokenKey::load_or_create(&data_dir).unwrap();
        let bytes = std::fs::read(data_dir.join(KEY_FILE)).unwrap();
        assert_eq!(bytes.len(), KEY_LEN);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(data_dir.join(KEY_FILE)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let token = first.issue(&claims()).unwrap();
        let second = TokenKey::load_or_create(&data_dir).unwrap();
        assert_eq!(second.verify(&token, None), Ok(claims()));
        assert_eq!(std::fs::read(data_dir.join(KEY_FILE)).unwrap(), bytes);
    }

    #[test]
    fn a_truncated_key_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(KEY_FILE), b"short").unwrap();
        assert!(matches!(TokenKey::load_or_create(dir.path()), Err(KeyError::TooShort { len: 5, .. })));
    }

    #[test]
    fn roles_and_links() {
        assert_eq!("viewer".parse::<Role>(), Ok(Role::Viewer));
        assert!("admin".parse::<Role>().is_err());
        assert_eq!(join_link("https://sportello.comune.it/", "abc"), "https://sportello.comune.it/join?t=abc");
    }
}
