//! Secrets: random URL-safe secrets, their SHA-256 (what the database keeps of a link or session
//! secret) and Argon2id password hashes.

use argon2::password_hash::SaltString;
use argon2::{Argon2, PasswordHasher};
use sha2::{Digest, Sha256};

pub fn sha256_hex(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
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
