//! The ICE-TCP listener beside the UDP socket, on the engine thread's runtime. It accepts, frames
//! and queues; the engine alone decides which peer connection a packet belongs to.
//!
//! Each connection gets a reader task (bounded RFC 4571 decoder; the first frame must be a STUN
//! binding request and arrive before a deadline) and a writer task (drains the connection's lossy
//! [`WriteQueue`]). Both run on the engine thread's current-thread runtime and talk to the driver
//! through a bounded channel and the shared queue, so a stalled citizen fills only its own queue.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc};
use tokio::task::AbortHandle;
use tracing::debug;

use crate::api::TcpLimits;
use crate::transport::stun;
use crate::transport::tcp::{ConnId, FrameDecoder, WriteQueue, encode};

pub(crate) enum TcpEvent {
    Packet(ConnId, BytesMut),
    Closed(ConnId),
}

struct Conn {
    ip: IpAddr,
    queue: Arc<Mutex<WriteQueue>>,
    notify: Arc<Notify>,
    tasks: [AbortHandle; 2],
}

impl Drop for Conn {
    fn drop(&mut self) {
        // Dropping both halves closes the socket.
        for t in &self.tasks {
            t.abort();
        }
    }
}

pub(crate) struct TcpSide {
    listener: TcpListener,
    limits: TcpLimits,
    conns: HashMap<ConnId, Conn>,
    per_ip: HashMap<IpAddr, usize>,
    next: u64,
    tx: mpsc::Sender<TcpEvent>,
}

impl TcpSide {
    /// The listener's side and the channel its connections report on.
    pub(crate) fn new(listener: TcpListener, limits: TcpLimits) -> (Self, mpsc::Receiver<TcpEvent>) {
        // Bounded: when the engine thread is busy, readers wait and TCP flow control pushes back.
        let (tx, rx) = mpsc::channel(256);
        (TcpSide { listener, limits, conns: HashMap::new(), per_ip: HashMap::new(), next: 0, tx }, rx)
    }

    pub(crate) async fn accept(&self) -> std::io::Result<(TcpStream, SocketAddr)> {
        self.listener.accept().await
    }

    /// Takes an accepted connection, unless a cap says no (then it is dropped, i.e. closed).
    /// Returns its id for the engine.
    pub(crate) fn admit(&mut self, stream: TcpStream, remote: SocketAddr) -> Option<ConnId> {
        let ip = address_key(remote.ip());
        let from_ip = self.per_ip.get(&ip).copied().unwrap_or(0);
        if self.conns.len() >= self.limits.max_connections || from_ip >= self.limits.max_per_address {
            debug!(%remote, from_ip, total = self.conns.len(), "ICE-TCP connection refused: cap reached");
            return None;
        }
        let _ = stream.set_nodelay(true);
        let _ = set_send_buffer(&stream, self.limits.socket_send_buffer);
        self.next += 1;
        let id = ConnId(self.next);
        let (rd, wr) = stream.into_split();
        let queue = Arc::new(Mutex::new(WriteQueue::new(self.limits.write_queue_bytes)));
        let notify = Arc::new(Notify::new());
        let reader = tokio::spawn(read_loop(id, rd, self.tx.clone(), self.limits.first_stun));
        let writer = tokio::spawn(write_loop(id, wr, queue.clone(), notify.clone(), self.tx.clone()));
        self.conns.insert(id, Conn { ip, queue, notify, tasks: [reader.abort_handle(), writer.abort_handle()] });
        *self.per_ip.entry(ip).or_default() += 1;
        Some(id)
    }

    pub(crate) fn close(&mut self, id: ConnId) {
        let Some(conn) = self.conns.remove(&id) else { return };
        if let Some(n) = self.per_ip.get_mut(&conn.ip) {
            *n -= 1;
            if *n == 0 {
                self.per_ip.remove(&conn.ip);
            }
        }
    }

    /// Queues what the engine flushed for each connection; the writers send it when they can.
    pub(crate) fn queue(&mut self, out: &mut Vec<(ConnId, BytesMut)>) {
        for (id, packet) in out.drain(..) {
            if let Some(c) = self.conns.get(&id)
                && let Ok(mut q) = c.queue.lock()
            {
                q.push(packet);
                c.notify.notify_one();
            }
        }
    }
}

fn set_send_buffer(stream: &TcpStream, bytes: u32) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let value = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    // SAFETY: a valid open socket descriptor and a pointer to a c_int of the length given.
    let r = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
}

/// What the per-address cap counts: an IPv4 address, or an IPv6 /64 (one subscriber's prefix, as
/// the HTTP edge counts clients).
fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
    }
}

async fn read_loop(id: ConnId, mut rd: OwnedReadHalf, tx: mpsc::Sender<TcpEvent>, first_stun: Duration) {
    let deadline = tokio::time::Instant::now() + first_stun;
    let mut decoder = FrameDecoder::default();
    let mut buf = vec![0u8; 8192];
    let mut frames = Vec::new();
    let mut greeted = false;
    'conn: loop {
        let read = if greeted {
            rd.read(&mut buf).await
        } else {
            // Nothing valid yet: the deadline holds however slowly the bytes trickle in.
            match tokio::time::timeout_at(deadline, rd.read(&mut buf)).await {
                Ok(r) => r,
                Err(_) => {
                    debug!(conn = id.0, "ICE-TCP connection closed: no STUN binding request in time");
                    break;
                }
            }
        };
        let n = match read {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Err(e) = decoder.push(&buf[..n], &mut frames) {
            debug!(conn = id.0, error = %e, "ICE-TCP connection closed: not RFC 4571");
            break;
        }
        for frame in frames.drain(..) {
            if !greeted {
                if !stun::is_binding_request(&frame) {
                    debug!(conn = id.0, "ICE-TCP connection closed: first frame is not a STUN binding request");
                    break 'conn;
                }
                greeted = true;
            }
            if tx.send(TcpEvent::Packet(id, frame)).await.is_err() {
                return;
            }
        }
    }
    let _ = tx.send(TcpEvent::Closed(id)).await;
}

async fn write_loop(
    id: ConnId,
    mut wr: OwnedWriteHalf,
    queue: Arc<Mutex<WriteQueue>>,
    notify: Arc<Notify>,
    tx: mpsc::Sender<TcpEvent>,
) {
    let mut out = BytesMut::new();
    loop {
        if let Ok(mut q) = queue.lock() {
            // Up to ≈64 KB per write: what is still queued stays droppable while this one is out.
            while out.len() < 64 * 1024
                && let Some(p) = q.pop()
            {
                let _ = encode(&p, &mut out);
            }
        }
        if out.is_empty() {
            notify.notified().await;
            continue;
        }
        if wr.write_all(&out).await.is_err() {
            let _ = tx.send(TcpEvent::Closed(id)).await;
            return;
        }
        out.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_per_address_cap_counts_ipv6_by_its_64() {
        let a: IpAddr = "2001:db8:1:2::10".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::1".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::10".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(c));
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(address_key(v4), v4);
    }
}
