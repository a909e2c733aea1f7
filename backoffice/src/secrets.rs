//! Secrets: random URL-safe secrets, their SHA-256 (what the database keeps of a link or session
//! secret) and Argon2id password hashes.

use argon2::password_hash::SaltString;
use argon2::{Argon2, PasswordHasher};
use sha2::{Digest, Sha256};

pub fn sha256_hex(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Whether `secret` is the one whose SHA-256 is `hash` (what the database keeps), compared in
/// constant time; an empty or oversized secret never is.
pub fn matches_hash(secret: &str, hash: &str) -> bool {
    !secret.is_empty() && secret.len() <= 200 && constant_time_eq(sha256_hex(secret).as_bytes(), hash.as_bytes())
}

/// Byte strings compared without an early exit (a secret's comparison must not tell how much matched).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A random URL-safe secret (256 bits).
pub fn new_secret() -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HashError(pub String);

/// Argon2id with the crate's defaults (OWASP-level memory cost). Blocking: call it off the async threads.
pub fn hash_password_blocking(password: &str) -> Result<String, HashError> {
    let salt = SaltString::from_b64(&base64_salt()).map_err(|e| HashError(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError(e.to_string()))
}

pub fn base64_salt() -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(rand::random::<[u8; 16]>())
}
