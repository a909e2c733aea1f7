//! Signed webhooks out: the one task that sends what the store's outbox holds (`store::webhooks`).
//!
//! The scheme is Standard Webhooks (<https://www.standardwebhooks.com/>): a POST of
//! `{"type", "timestamp", "data"}` with the headers `webhook-id` (the event's id, the same on every
//! retry, so receivers can drop duplicates), `webhook-timestamp` (Unix seconds of this attempt) and
//! `webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, keyed by the
//! endpoint's `whsec_<base64>` secret. A 2xx answer delivers; anything else is retried after
//! [`RETRY_DELAYS`], then given up, every attempt logged. Bookings and rooms only write rows: a slow
//! or absent receiver delays nothing but its own deliveries.
//!
//! Time comes from the server [`Clock`](crate::clock::Clock): tests move it to make a retry due.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use sportello_store::{AttemptResult, DueDelivery, StoreError};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::context::BackOffice;
use crate::outbox::{self, Slots};

/// Seconds to wait after failed attempt 1, 2, …; after the last one the delivery is given up
/// (eight attempts over about two days).
pub const RETRY_DELAYS: [i64; 7] = [30, 2 * 60, 10 * 60, 60 * 60, 6 * 60 * 60, 12 * 60 * 60, 24 * 60 * 60];
/// One attempt: connect, send and the answer's head.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// How often the outbox is looked at. Events wait at most this long before their first attempt.
const POLL: Duration = Duration::from_secs(1);
/// A claimed delivery is not claimed again for this long (longer than an attempt can take).
const LEASE_SECS: i64 = 60;
/// Attempts in flight at once, over all endpoints.
const IN_FLIGHT: usize = 32;
/// Finished deliveries and their log are kept this long, then deleted.
const HISTORY_SECS: i64 = 30 * 24 * 60 * 60;
const SECRET_PREFIX: &str = "whsec_";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error("a webhook secret is whsec_ followed by base64")]
    Malformed,
}

/// A new endpoint secret: `whsec_` and 32 random bytes in base64 (the scheme asks for 24 to 64).
pub fn new_secret() -> String {
    format!("{SECRET_PREFIX}{}", STANDARD.encode(rand::random::<[u8; 32]>()))
}

/// The `webhook-signature` value for one message: `v1,<base64 HMAC-SHA256>`.
pub fn sign(secret: &str, msg_id: &str, timestamp: i64, body: &[u8]) -> Result<String, SecretError> {
    let key = secret.strip_prefix(SECRET_PREFIX).ok_or(SecretError::Malformed)?;
    let key = STANDARD.decode(key).map_err(|_| SecretError::Malformed)?;
    if key.is_empty() {
        return Err(SecretError::Malformed);
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).map_err(|_| SecretError::Malformed)?;
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Ok(format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes())))
}

/// The body of an event: `{"type", "timestamp" (RFC 3339, when it happened), "data"}`. The same
/// bytes on every attempt.
pub fn body(event_type: &str, created_at: i64, data: &str) -> Vec<u8> {
    let timestamp = jiff::Timestamp::from_second(created_at).map(|t| t.to_string()).unwrap_or_default();
    let data: serde_json::Value = serde_json::from_str(data).unwrap_or(serde_json::Value::Null);
    serde_json::json!({ "type": event_type, "timestamp": timestamp, "data": data }).to_string().into_bytes()
}

/// A receiver's URL as an administrator may set it: absolute http(s) with a host, no credentials.
/// Private addresses are allowed: receivers usually live inside the municipality's network.
pub fn valid_url(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url.trim()).ok()?;
    let ok = matches!(parsed.scheme(), "http" | "https")
        && parsed.host_str().is_some_and(|h| !h.is_empty())
        && parsed.username().is_empty()
        && parsed.password().is_none();
    ok.then(|| parsed.to_string())
}

/// When to try again after failed attempt number `attempt` (1-based), or `None`: give up.
pub fn retry_at(attempt: i64, now: i64) -> Option<i64> {
    outbox::retry_at(&RETRY_DELAYS, attempt, now)
}

/// The HTTP client of the sender.
pub fn client() -> reqwest::Client {
    outbox::client("Sportello-Webhooks", TIMEOUT)
}

/// One attempt at one delivery; the result is what the log records.
async fn attempt(back: &BackOffice, client: &reqwest::Client, d: &DueDelivery) -> AttemptResult {
    let sent_at = back.clock.now();
    let body = body(&d.event_type, d.event_created_at, &d.data);
    let started = Instant::now();
    let outcome = match sign(&d.secret, &d.event_id, sent_at, &body) {
        Err(e) => Err((None, e.to_string())),
        Ok(signature) => {
            let request = client
                .post(&d.url)
                .header("content-type", "application/json")
                .header("webhook-id", &d.event_id)
                .header("webhook-timestamp", sent_at.to_string())
                .header("webhook-signature", signature)
                .body(body);
            match request.send().await {
                Ok(r) if r.status().is_success() => Ok(r.status().as_u16()),
                Ok(r) => Err((Some(r.status().as_u16()), format!("HTTP {}", r.status().as_u16()))),
                Err(e) if e.is_timeout() => Err((None, "timed out".to_owned())),
                Err(e) if e.is_connect() => Err((None, "cannot connect".to_owned())),
                Err(_) => Err((None, "request failed".to_owned())),
            }
        }
    };
    let duration_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    let at = back.clock.now();
    match outcome {
        Ok(code) => AttemptResult { at, status_code: Some(i64::from(code)), error: None, duration_ms, retry_at: None },
        Err((code, error)) => AttemptResult {
            at,
            status_code: code.map(i64::from),
            error: Some(error),
            duration_ms,
            retry_at: retry_at(d.attempt, at),
        },
    }
}

/// Starts an attempt for each delivery due now, as many as `slots` has free, and returns how many
/// it started without waiting for them: a receiver that takes its time holds one slot, not the pass.
pub async fn deliver_due(back: &BackOffice, client: &reqwest::Client, slots: &Slots) -> Result<usize, StoreError> {
    let free = slots.free();
    if free == 0 {
        return Ok(0);
    }
    let due = back.store.claim_due_webhook_deliveries(back.clock.now(), LEASE_SECS, free).await?;
    let span = |d: &DueDelivery| tracing::info_span!("webhook", delivery = %d.delivery_id, event = %d.event_type, attempt = d.attempt);
    Ok(slots.start(due, span, |d| {
        let (back, client) = (back.clone(), client.clone());
        async move {
            let result = attempt(&back, &client, &d).await;
            match &result.error {
                None => tracing::info!(status = ?result.status_code, "webhook delivered"),
                Some(error) if result.retry_at.is_some() => tracing::info!(%error, "webhook attempt failed"),
                Some(error) => tracing::warn!(%error, "webhook given up"),
            }
            match back.store.record_webhook_attempt(&d, &result).await {
                Ok(()) | Err(StoreError::NotFound) => {}
                Err(error) => tracing::error!(%error, "webhook attempt not recorded"),
            }
        }
    }))
}

/// The sender: polls the outbox every second and sweeps old history hourly, until shutdown.
pub fn spawn(back: BackOffice, shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
    let (client, slots) = (Arc::new(client()), Arc::new(Slots::new(IN_FLIGHT)));
    let mut last_sweep = i64::MIN;
    outbox::every(POLL, shutdown, move || {
        // When the history was last swept stays with the sender; each pass is told whether it sweeps.
        let now = back.clock.now();
        let sweep = now.saturating_sub(last_sweep) >= 3600;
        if sweep {
            last_sweep = now;
        }
        let (back, client, slots) = (back.clone(), client.clone(), slots.clone());
        async move {
            if let Err(error) = deliver_due(&back, &client, &slots).await {
                tracing::error!(%error, "webhook pass failed");
            }
            if sweep {
                match back.store.delete_webhook_history_before(now - HISTORY_SECS).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(events = n, "old webhook history deleted"),
                    Err(error) => tracing::error!(%error, "webhook history not swept"),
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification and its reference libraries.
    #[test]
    fn signs_the_specification_example() {
        let signature = sign(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(signature.as_deref(), Ok("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="));
        // Any byte of the message changes it.
        let other = sign(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265331,
            br#"{"test": 2432232314}"#,
        );
        assert_ne!(other, signature);
    }

    #[test]
    fn secrets_are_prefixed_base64_that_signs() {
        let secret = new_secret();
        assert!(secret.starts_with("whsec_"));
        assert_eq!(STANDARD.decode(&secret[6..]).map(|k| k.len()), Ok(32));
        assert_ne!(secret, new_secret());
        assert!(sign(&secret, "msg_1", 1, b"{}").is_ok());
        for bad in ["", "whsec_", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_not base64!"] {
            assert_eq!(sign(bad, "msg_1", 1, b"{}"), Err(SecretError::Malformed), "{bad:?}");
        }
    }

    #[test]
    fn retries_back_off_then_give_up() {
        assert_eq!(retry_at(1, 1000), Some(1030));
        assert_eq!(retry_at(2, 1000), Some(1120));
        assert_eq!(retry_at(7, 0), Some(24 * 3600));
        assert_eq!(retry_at(8, 0), None, "eight attempts, then given up");
        assert_eq!(retry_at(0, 0), None);
    }

    #[test]
    fn the_body_wraps_the_data_with_type_and_time() {
        let b = body("appointment.booked", 1_700_000_000, r#"{"id":"a1"}"#);
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["type"], "appointment.booked");
        assert_eq!(v["timestamp"], "2023-11-14T22:13:20Z");
        assert_eq!(v["data"]["id"], "a1");
        assert_eq!(b, body("appointment.booked", 1_700_000_000, r#"{"id":"a1"}"#), "retries send the same bytes");
    }

    #[test]
    fn urls() {
        assert_eq!(valid_url(" https://hooks.comune.example/x ").as_deref(), Some("https://hooks.comune.example/x"));
        assert!(valid_url("http://10.0.0.5:8080/in").is_some());
        for bad in ["ftp://a.example/", "file:///etc/passwd", "hooks.example", "https://user:pw@a.example/", ""] {
            assert!(valid_url(bad).is_none(), "{bad}");
        }
    }
}
