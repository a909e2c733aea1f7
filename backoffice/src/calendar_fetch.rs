//! Officials' own calendars in: subscription URLs fetched periodically and on demand, uploaded
//! `.ics` files read once. Both go through `domain::ics::busy_from_ics` under the same limits.
//!
//! Robustness is the point: a timeout, a bad status, an oversized body or invalid iCalendar never
//! touches the busy set already stored; the source gets `last_error`, an Italian sentence the
//! official sees in the staff pages. Only a complete, valid import replaces the set (atomically).
//! Calendar URLs usually embed a private token: they are never logged (spans carry the source id).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use sportello_domain::Interval;
use sportello_domain::ics::{IcsError, ImportLimits, busy_from_ics};
use sportello_store::{CalendarSource, SourceKind, StoreError};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::context::BackOffice;
use crate::once;
use crate::text::Text;

/// Largest calendar accepted (fetched or uploaded), enforced while the body streams in.
pub const MAX_BYTES: usize = 2 * 1024 * 1024;
/// Redirects followed by a fetch (Google and Outlook redirect once or twice).
pub const MAX_REDIRECTS: usize = 3;
/// Setting read for the import window (as the booking rules do), days.
use crate::settings::{DEFAULT_HORIZON_DAYS, SETTING_HORIZON, parsed};

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("not an http(s) URL")]
    BadUrl,
    #[error("timed out")]
    Timeout,
    #[error("cannot connect")]
    Connect,
    #[error("too many redirects")]
    Redirects,
    #[error("the address is internal")]
    Internal,
    #[error("HTTP status {0}")]
    Status(u16),
    #[error("larger than {MAX_BYTES} bytes")]
    TooLarge,
    #[error("transfer failed")]
    Transfer,
    #[error(transparent)]
    Ics(#[from] IcsError),
}

impl FetchError {
    /// What the official reads next to the calendar (Italian, without the URL).
    pub fn message(&self) -> String {
        self.text().it
    }

    /// The same message in Italian and English, for an API error.
    pub fn text(&self) -> Text {
        let (it, en): (String, String) = match self {
            FetchError::BadUrl => (
                "L'indirizzo del calendario non è valido: serve un indirizzo http:// o https://.".into(),
                "The calendar address is not valid: an http:// or https:// address is needed.".into(),
            ),
            FetchError::Timeout => (
                "Il server del calendario non ha risposto in tempo.".into(),
                "The calendar server did not answer in time.".into(),
            ),
            FetchError::Connect => (
                "Impossibile collegarsi al server del calendario.".into(),
                "Could not connect to the calendar server.".into(),
            ),
            FetchError::Redirects => (
                "Il server del calendario rimanda ad altri indirizzi troppe volte.".into(),
                "The calendar server redirects to other addresses too many times.".into(),
            ),
            FetchError::Internal => (
                "L'indirizzo del calendario punta a una rete interna: sono ammessi solo \
                 calendari pubblicati su Internet."
                    .into(),
                "The calendar address points to an internal network: only calendars published on the \
                 Internet are allowed."
                    .into(),
            ),
            FetchError::Status(code) => (
                format!("Il server del calendario ha risposto con un errore (HTTP {code}): controlla l'indirizzo."),
                format!("The calendar server answered with an error (HTTP {code}): check the address."),
            ),
            FetchError::TooLarge => (
                "Il calendario è troppo grande (oltre 2 MiB).".into(),
                "The calendar is too large (over 2 MiB).".into(),
            ),
            FetchError::Transfer => (
                "Lo scaricamento del calendario si è interrotto.".into(),
                "The calendar download was interrupted.".into(),
            ),
            FetchError::Ics(IcsError::LimitExceeded { what, limit }) => (
                format!("Il calendario supera i limiti consentiti ({what}: {limit})."),
                format!("The calendar exceeds the allowed limits ({what}: {limit})."),
            ),
            FetchError::Ics(IcsError::Invalid(_)) => (
                "Il contenuto non è un calendario iCalendar (.ics) valido.".into(),
                "The content is not a valid iCalendar (.ics) calendar.".into(),
            ),
        };
        Text { it, en }
    }
}

/// A checked subscription URL: http/https with a host; `webcal://` (what Google and Outlook
/// show) is HTTPS. `None` otherwise.
pub fn normalize_url(raw: &str) -> Option<url::Url> {
    let raw = raw.trim();
    let raw = match raw.get(..9) {
        Some(p) if p.eq_ignore_ascii_case("webcal://") => format!("https://{}", &raw[9..]),
        _ => raw.to_owned(),
    };
    let url = url::Url::parse(&raw).ok()?;
    (matches!(url.scheme(), "http" | "https") && url.host_str().is_some_and(|h| !h.is_empty())).then_some(url)
}

/// The window imported from a calendar: a day back, the booking horizon and a day ahead.
async fn window(back: &BackOffice, now: i64) -> Result<Interval, StoreError> {
    let horizon =
        parsed::<i64>(&back.store, SETTING_HORIZON).await?.unwrap_or(i64::from(DEFAULT_HORIZON_DAYS)).clamp(0, 366);
    let now = Timestamp::from_second(now).unwrap_or(Timestamp::UNIX_EPOCH);
    let start = now.saturating_sub(SignedDuration::from_hours(24)).unwrap_or(now);
    let end = now.saturating_add(SignedDuration::from_hours(24 * (horizon + 1))).unwrap_or(now);
    Interval::new(start, end).map_err(|_| StoreError::Invalid("empty import window"))
}

fn limits() -> ImportLimits {
    ImportLimits { max_bytes: MAX_BYTES, ..ImportLimits::default() }
}

/// Busy intervals (Unix seconds) of an `.ics` text within `window`.
fn parse(bytes: &[u8], window: Interval) -> Result<Vec<(i64, i64)>, FetchError> {
    if bytes.len() > MAX_BYTES {
        return Err(FetchError::TooLarge);
    }
    // RFC 5545 text is UTF-8; a stray byte should not cost the whole calendar.
    let text = String::from_utf8_lossy(bytes);
    let set = busy_from_ics(&text, window, &limits())?;
    Ok(set.iter().map(|iv| (iv.start().as_second(), iv.end().as_second())).collect())
}

/// Reads an uploaded file (same window and limits as a fetch).
pub async fn parse_upload(back: &BackOffice, bytes: &[u8], now: i64) -> Result<Vec<(i64, i64)>, UploadError> {
    let window = window(back, now).await?;
    Ok(parse(bytes, window)?)
}

#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Whether `ip` is a public unicast address (what a published calendar lives at): not loopback,
/// private, link-local, shared (CGNAT), documentation, multicast or unspecified.
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_multicast()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let s = v6.segments();
            let embedded = |hi: u16, lo: u16| {
                let [a, b] = hi.to_be_bytes();
                let [c, d] = lo.to_be_bytes();
                IpAddr::V4(std::net::Ipv4Addr::new(a, b, c, d))
            };
            // Forms that carry an IPv4 address a gateway may forward to: NAT64 (64:ff9b::/96),
            // 6to4 (2002::/16) — judged by that address; IPv4-compatible (::/96, deprecated),
            // local-use NAT64 (64:ff9b:1::/48) and Teredo (2001::/32, obfuscated) — never public.
            if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                return is_public(embedded(s[6], s[7]));
            }
            if s[0] == 0x2002 {
                return is_public(embedded(s[1], s[2]));
            }
            let ipv4_compatible = s[..6] == [0; 6];
            let local_nat64 = s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1;
            let teredo = s[0] == 0x2001 && s[1] == 0;
            let documentation = s[0] == 0x2001 && s[1] == 0x0db8;
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || ipv4_compatible
                || local_nat64
                || teredo
                || documentation
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] & 0xffc0) == 0xfec0)
        }
    }
}

/// Resolves the URL's host once and checks every address; the request is then pinned to the
/// checked address, so a second DNS answer cannot swap in an internal one.
async fn resolve_checked(url: &url::Url, allow_private: bool) -> Result<(String, SocketAddr), FetchError> {
    let host = url.host_str().ok_or(FetchError::BadUrl)?.trim_start_matches('[').trim_end_matches(']').to_owned();
    let port = url.port_or_known_default().ok_or(FetchError::BadUrl)?;
    let addrs: Vec<SocketAddr> =
        tokio::net::lookup_host((host.as_str(), port)).await.map_err(|_| FetchError::Connect)?.collect();
    let first = *addrs.first().ok_or(FetchError::Connect)?;
    if !allow_private && addrs.iter().any(|a| !is_public(a.ip())) {
        return Err(FetchError::Internal);
    }
    Ok((host, first))
}

/// Downloads `url` with the limits: connect and total timeout, redirects (each hop's address
/// checked), size while streaming.
async fn download(url: &url::Url, timeout: Duration, allow_private: bool) -> Result<Vec<u8>, FetchError> {
    let classify = |e: reqwest::Error| {
        if e.is_timeout() {
            FetchError::Timeout
        } else if e.is_connect() {
            FetchError::Connect
        } else {
            FetchError::Transfer
        }
    };
    let deadline = tokio::time::Instant::now() + timeout;
    let mut url = url.clone();
    let mut hops = 0;
    let mut response = loop {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(FetchError::BadUrl);
        }
        let (host, addr) = tokio::time::timeout_at(deadline, resolve_checked(&url, allow_private))
            .await
            .map_err(|_| FetchError::Timeout)??;
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let client = reqwest::Client::builder()
            // Straight to the checked address: an HTTP(S)_PROXY in the environment would take the
            // request (and the URL's private token) somewhere else and dodge the address check.
            .no_proxy()
            .connect_timeout(left)
            .timeout(left)
            .redirect(reqwest::redirect::Policy::none())
            .resolve(&host, addr)
            .user_agent(concat!("Sportello/", env!("CARGO_PKG_VERSION"), " (calendar import)"))
            .build()
            .map_err(|_| FetchError::Connect)?;
        let response = client.get(url.clone()).send().await.map_err(classify)?;
        if !response.status().is_redirection() {
            break response;
        }
        hops += 1;
        if hops > MAX_REDIRECTS {
            return Err(FetchError::Redirects);
        }
        let location = response.headers().get(reqwest::header::LOCATION).and_then(|v| v.to_str().ok());
        url = location.and_then(|l| url.join(l).ok()).ok_or(FetchError::Status(response.status().as_u16()))?;
    };
    let status = response.status();
    if !status.is_success() {
        return Err(FetchError::Status(status.as_u16()));
    }
    if response.content_length().is_some_and(|n| n > MAX_BYTES as u64) {
        return Err(FetchError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(classify)? {
        if body.len() + chunk.len() > MAX_BYTES {
            return Err(FetchError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Fetches a URL source now: success replaces its busy set and clears the error, any failure
/// keeps the set and records the message. `Err` only when the store itself fails.
pub async fn refresh(back: &BackOffice, source: &CalendarSource) -> Result<(), StoreError> {
    let span = tracing::info_span!("calendar_fetch", source = %source.id, user = %source.user_id);
    async {
        if source.kind != SourceKind::Url {
            return Ok(());
        }
        let outcome = match source.url.as_deref().and_then(normalize_url) {
            None => Err(FetchError::BadUrl),
            Some(url) => match download(&url, back.calendars.fetch_timeout, back.calendars.allow_private).await {
                Ok(bytes) => {
                    let window = window(back, back.clock.now()).await?;
                    parse(&bytes, window)
                }
                Err(e) => Err(e),
            },
        };
        // Stamped after the download: the time the result is about.
        let now = back.clock.now();
        match outcome {
            Ok(busy) => {
                tracing::info!(intervals = busy.len(), "calendar imported");
                back.store.replace_busy(&source.id, &busy, now).await
            }
            Err(error) => {
                tracing::warn!(%error, "calendar fetch failed; previous busy set kept");
                back.store.record_fetch_error(&source.id, &error.message(), now).await
            }
        }
    }
    .instrument(span)
    .await
}

/// One pass over every URL source not fetched by another node this period. A source deleted
/// meanwhile is skipped.
pub async fn refresh_all(back: &BackOffice) -> Result<usize, StoreError> {
    let sources = back.store.url_sources().await?;
    let mut done = 0;
    // Each source fetched by one node per period: the lease lasts until just before the next pass.
    let hold = back.calendars.refresh.saturating_sub(Duration::from_secs(1)).max(back.calendars.fetch_timeout);
    for source in &sources {
        if !once::take(back, &format!("calendar:{}", source.id), hold).await? {
            continue; // another node fetches it this period
        }
        match refresh(back, source).await {
            Ok(()) | Err(StoreError::NotFound) => done += 1,
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// Runs [`refresh_all`] every `config.calendar_refresh` until the server shuts down (the first
/// pass right away: imports made before a restart may be stale).
pub fn spawn(back: BackOffice, mut shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
    let every = back.calendars.refresh.max(Duration::from_secs(1));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    match refresh_all(&back).await {
                        Ok(n) => tracing::debug!(sources = n, "calendar refresh pass"),
                        Err(error) => tracing::error!(%error, "calendar refresh pass failed"),
                    }
                }
                _ = shutdown.changed() => break,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(normalize_url("webcal://cal.example/a.ics").unwrap().as_str(), "https://cal.example/a.ics");
        assert!(normalize_url(" https://cal.example/x ").is_some());
        for bad in ["ftp://cal.example/a", "file:///etc/passwd", "cal.example", "http://", ""] {
            assert!(normalize_url(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn only_public_addresses_pass() {
        for internal in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            // IPv4 inside IPv6: NAT64, 6to4, IPv4-compatible, local NAT64, Teredo, site-local.
            "64:ff9b::7f00:1",
            "64:ff9b::a00:1",
            "64:ff9b::169.254.169.254",
            "2002:7f00:1::1",
            "2002:c0a8:101::1",
            "::127.0.0.1",
            "::8.8.8.8",
            "64:ff9b:1::808:808",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "2001:db8::1",
            "fec0::1",
        ] {
            assert!(!is_public(internal.parse().unwrap()), "{internal}");
        }
        for public in ["8.8.8.8", "151.101.1.1", "2001:4860:4860::8888", "64:ff9b::808:808", "2002:808:808::1"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[tokio::test]
    async fn an_internal_address_is_refused_before_any_connection() {
        let url = url::Url::parse("http://127.0.0.1:9/calendar.ics").unwrap();
        let refused = download(&url, Duration::from_secs(2), false).await;
        assert!(matches!(refused, Err(FetchError::Internal)), "{refused:?}");
    }

    /// A proxy from the environment is not used: the request goes to the checked address. (The
    /// only test of this binary that sets the environment; the other fetch tests make no request
    /// through a proxy-aware client.)
    #[tokio::test]
    async fn the_environments_proxy_is_not_used() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let calendar = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (cal_addr, proxy_addr) = (calendar.local_addr().unwrap(), proxy.local_addr().unwrap());
        tokio::spawn(async move {
            let (mut conn, _) = calendar.accept().await.unwrap();
            let mut request = [0u8; 1024];
            let _ = conn.read(&mut request).await;
            let body = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n";
            let reply = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
            conn.write_all(reply.as_bytes()).await.unwrap();
        });
        let proxied = tokio::spawn(async move { proxy.accept().await.is_ok() });
        // SAFETY: no other thread of this test binary reads these variables while it runs.
        unsafe {
            std::env::set_var("HTTP_PROXY", format!("http://{proxy_addr}"));
            std::env::set_var("http_proxy", format!("http://{proxy_addr}"));
        }
        let url = url::Url::parse(&format!("http://{cal_addr}/calendar.ics")).unwrap();
        let fetched = download(&url, Duration::from_secs(5), true).await;
        unsafe {
            std::env::remove_var("HTTP_PROXY");
            std::env::remove_var("http_proxy");
        }
        assert!(fetched.is_ok_and(|b| b.starts_with(b"BEGIN:VCALENDAR")), "fetched directly");
        assert!(!proxied.is_finished(), "the proxy saw a connection");
        proxied.abort();
    }

    #[test]
    fn messages_never_carry_the_url() {
        let e = FetchError::Ics(IcsError::Invalid("https://secret.example/token".into()));
        assert!(!e.message().contains("secret"));
    }
}
