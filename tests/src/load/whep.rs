//! WHEP players of a council session's program (`POST /api/live/{session}/whep`, docs/council.md
//! "Live stream"): each offers receive-only m-lines as the live page does, applies the answer, and
//! ends its session with `DELETE` on its `Location` when the run stops. HTTP/1.1 is spoken by hand
//! over one connection per request: three request shapes do not justify an HTTP client crate.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::engine::Engine;
use super::err;
use super::peer::Role;
use super::scenario::Participant;

/// Audio m-lines of a player: the program's two slots, like `web/public/live.js`.
pub const AUDIO_SLOTS: usize = 2;
/// How long a player keeps retrying while the session is not on air yet (`409`).
const NOT_ON_AIR_PATIENCE: Duration = Duration::from_secs(10);

pub struct Response {
    pub status: u16,
    headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request with `Connection: close`; the response is read to the end.
pub async fn request(
    http: SocketAddr,
    method: &str,
    path: &str,
    body: Option<(&str, &str)>,
) -> Result<Response, String> {
    let exchange = async {
        let mut stream = TcpStream::connect(http).await.map_err(err("HTTP connect"))?;
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {http}\r\nConnection: close\r\n");
        let (ctype, text) = body.unwrap_or(("", ""));
        if body.is_some() {
            head.push_str(&format!("Content-Type: {ctype}\r\n"));
        }
        head.push_str(&format!("Content-Length: {}\r\n\r\n", text.len()));
        stream.write_all(head.as_bytes()).await.map_err(err("HTTP write"))?;
        stream.write_all(text.as_bytes()).await.map_err(err("HTTP write"))?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.map_err(err("HTTP read"))?;
        parse_response(&raw)
    };
    tokio::time::timeout(Duration::from_secs(20), exchange)
        .await
        .map_err(|_| format!("HTTP {method} {path}: no answer within 20 s"))?
}

/// Parses a whole HTTP/1.1 response (`Content-Length`, chunked, or to the end of the connection).
pub fn parse_response(raw: &[u8]) -> Result<Response, String> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or("HTTP: no end of headers")?;
    let head = std::str::from_utf8(&raw[..split]).map_err(|_| "HTTP: headers are not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| format!("HTTP: bad status line {status_line:?}"))?;
    let headers: Vec<(String, String)> =
        lines.filter_map(|l| l.split_once(':')).map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned())).collect();
    let mut body = raw[split + 4..].to_vec();
    let header = |name: &str| headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str());
    if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        body = dechunk(&body)?;
    } else if let Some(len) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        body.truncate(len);
    }
    let body = String::from_utf8(body).map_err(|_| "HTTP: body is not UTF-8")?;
    Ok(Response { status, headers, body })
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let eol = data.windows(2).position(|w| w == b"\r\n").ok_or("HTTP: truncated chunk size")?;
        let size_text = std::str::from_utf8(&data[..eol]).map_err(|_| "HTTP: bad chunk size")?;
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| format!("HTTP: bad chunk size {size_text:?}"))?;
        data = &data[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        out.extend_from_slice(data.get(..size).ok_or("HTTP: truncated chunk")?);
        data = data.get(size + 2..).ok_or("HTTP: truncated chunk")?;
    }
}

/// Waits until `GET /api/live/{session}` says the program is on air (the chair is in the room).
pub async fn wait_on_air(http: SocketAddr, session: &str, within: Duration) -> Result<(), String> {
    let deadline = Instant::now() + within;
    let mut last = String::new();
    while Instant::now() < deadline {
        let r = request(http, "GET", &format!("/api/live/{session}"), None).await?;
        if r.status == 200 && r.body.contains(r#""status":"live""#) {
            return Ok(());
        }
        last = format!("{} {}", r.status, r.body);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!("the council session was not on air within {within:?}: {last}"))
}

/// A WHEP player of `session`'s program: connects, stays until `stop`, then leaves with `DELETE`.
/// An error before `stop` is a join error of the run.
pub async fn viewer(
    engine: Engine,
    http: SocketAddr,
    session: String,
    who: Participant,
    mut stop: watch::Receiver<bool>,
) -> Result<(), String> {
    let started = Instant::now();
    let (id, offer) = engine.create(&who.identity, Role::Whep { audio: AUDIO_SLOTS }, started).await?;
    let (sdp, _) = offer.ok_or("a WHEP player without an offer")?;
    let path = format!("/api/live/{session}/whep");
    let give_up = started + NOT_ON_AIR_PATIENCE;
    let result = loop {
        let r = match request(http, "POST", &path, Some(("application/sdp", &sdp))).await {
            Ok(r) => r,
            Err(e) => break Err(e),
        };
        match r.status {
            201 => break Ok(r),
            // Not on air yet: a player retries (WHEP draft); so do we, for a while.
            409 if Instant::now() < give_up => tokio::time::sleep(Duration::from_millis(200)).await,
            s => break Err(format!("WHEP POST answered {s}: {}", r.body.trim())),
        }
    };
    let created = match result {
        Ok(r) => r,
        Err(e) => {
            engine.close(id);
            return Err(e);
        }
    };
    let location = created.header("location").map(str::to_owned);
    if let Err(e) = engine.apply_answer(id, created.body).await {
        engine.close(id);
        return Err(e);
    }
    let _ = stop.wait_for(|s| *s).await;
    if let Some(location) = location {
        // The server is stopped right after the run: a late or failed DELETE changes no figure.
        let _ = request(http, "DELETE", &location, None).await;
    }
    engine.close(id);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_response;

    #[test]
    fn responses_with_length_chunks_or_neither() {
        let r = parse_response(
            b"HTTP/1.1 201 Created\r\nLocation: /api/live/s/whep/v\r\ncontent-length: 5\r\n\r\nv=0\r\nextra",
        )
        .expect("parsed");
        assert_eq!((r.status, r.header("location"), r.body.as_str()), (201, Some("/api/live/s/whep/v"), "v=0\r\n"));
        let r = parse_response(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n3;x=y\r\nefg\r\n0\r\n\r\n",
        )
        .expect("chunked");
        assert_eq!(r.body, "abcdefg");
        let r = parse_response(b"HTTP/1.1 409 Conflict\r\nRetry-After: 2\r\n\r\n{}").expect("to the end");
        assert_eq!((r.status, r.body.as_str()), (409, "{}"));
        assert!(parse_response(b"HTTP/1.1 200 OK\r\n").is_err(), "no end of headers");
        assert!(parse_response(b"garbage\r\n\r\n").is_err(), "no status");
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n9\r\nabc").is_err(), "cut");
    }
}
