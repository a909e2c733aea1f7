//! A minimal HTTP/1.1 stand-in for a third party's server in tests: one request per connection,
//! `Content-Length` bodies, JSON answers ([`serve`]); a test with a receiver of its own (the
//! webhooks' holds its answer until the test opens a gate) reads and answers with
//! [`read_request`] and [`reply`]. No HTTP framework: only the server crate knows axum
//! (`tests/tests/boundaries.rs`).

use std::collections::HashMap;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One request as the stand-in got it (header names lower-cased).
#[derive(Debug, Clone)]
pub struct StubRequest {
    pub method: String,
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl StubRequest {
    /// The body as JSON (`Null` when it is none).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// Serves `answer` on a free loopback port until the runtime ends; returns `http://127.0.0.1:<port>`.
pub async fn serve<F>(answer: F) -> String
where
    F: Fn(StubRequest) -> (u16, serde_json::Value) + Send + Sync + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a loopback port");
    let url = format!("http://{}", listener.local_addr().expect("its address"));
    let answer = Arc::new(answer);
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(handle(socket, answer.clone()));
        }
    });
    url
}

async fn handle<F>(mut socket: tokio::net::TcpStream, answer: Arc<F>)
where
    F: Fn(StubRequest) -> (u16, serde_json::Value),
{
    let Some(request) = read_request(&mut socket).await else { return };
    let (status, body) = answer(request);
    reply(&mut socket, status, Some(&body)).await;
}

/// Reads one request (head, then a `Content-Length` body); `None` if the client went away first.
pub async fn read_request(socket: &mut tokio::net::TcpStream) -> Option<StubRequest> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match socket.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut request_line = head.lines().next().unwrap_or_default().split(' ');
    let (method, path) = (request_line.next().unwrap_or_default(), request_line.next().unwrap_or_default());
    let headers: HashMap<String, String> = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    while buf.len() < head_end + length {
        match socket.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    Some(StubRequest {
        method: method.to_owned(),
        path: path.to_owned(),
        headers,
        body: buf[head_end..head_end + length].to_vec(),
    })
}

/// Answers `status` with a JSON body, or with none, and closes.
pub async fn reply(socket: &mut tokio::net::TcpStream, status: u16, body: Option<&serde_json::Value>) {
    let reply = match body {
        Some(body) => {
            let body = body.to_string();
            format!(
                "HTTP/1.1 {status} Stand-in\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            )
        }
        None => format!("HTTP/1.1 {status} Stand-in\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"),
    };
    let _ = socket.write_all(reply.as_bytes()).await;
}
