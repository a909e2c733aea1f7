//! The one media socket, read and written in batches (`recvmmsg`/`sendmmsg`): one system call moves
//! up to [`BATCH`] datagrams, which is where an SFU's kernel time goes (see shared/media-notes.md).

use std::io;
use std::mem::{MaybeUninit, zeroed};
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::AsRawFd;

use bytes::BytesMut;
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// Datagrams per system call.
pub const BATCH: usize = 32;
/// Largest datagram we accept; WebRTC keeps packets under the path MTU (~1200–1500 bytes).
pub const MAX_DATAGRAM: usize = 2048;

/// Receive buffers reused across calls.
pub struct RecvBatch {
    bufs: Vec<[u8; MAX_DATAGRAM]>,
    addrs: Vec<libc::sockaddr_storage>,
    lens: Vec<usize>,
    count: usize,
}

impl Default for RecvBatch {
    fn default() -> Self {
        RecvBatch {
            bufs: vec![[0u8; MAX_DATAGRAM]; BATCH],
            // SAFETY: sockaddr_storage is plain old data; all-zero is a valid (unspecified) value.
            addrs: vec![unsafe { zeroed() }; BATCH],
            lens: vec![0; BATCH],
            count: 0,
        }
    }
}

impl RecvBatch {
    /// The datagrams of the last successful receive, with their source address.
    pub fn iter(&self) -> impl Iterator<Item = (SocketAddr, &[u8])> {
        (0..self.count).filter_map(|i| Some((to_socket_addr(&self.addrs[i])?, &self.bufs[i][..self.lens[i]])))
    }
}

/// Outgoing datagrams waiting for the next `sendmmsg`.
#[derive(Default)]
pub struct SendBatch {
    queue: std::collections::VecDeque<(SocketAddr, BytesMut)>,
}

impl SendBatch {
    pub fn push(&mut self, to: SocketAddr, data: BytesMut) {
        self.queue.push_back((to, data));
    }
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
    /// The oldest queued datagram (the in-memory driver sends one at a time).
    #[cfg(test)]
    pub fn pop(&mut self) -> Option<(SocketAddr, BytesMut)> {
        self.queue.pop_front()
    }
}

pub struct MediaSocket {
    socket: UdpSocket,
    local_addr: SocketAddr,
}

impl MediaSocket {
    /// Wraps an already bound std socket; must be called inside a tokio runtime.
    pub fn new(socket: std::net::UdpSocket) -> io::Result<Self> {
        socket.set_nonblocking(true)?;
        let local_addr = socket.local_addr()?;
        Ok(MediaSocket { socket: UdpSocket::from_std(socket)?, local_addr })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub async fn readable(&self) -> io::Result<()> {
        self.socket.readable().await
    }

    pub async fn writable(&self) -> io::Result<()> {
        self.socket.writable().await
    }

    /// Reads up to [`BATCH`] datagrams without blocking. `Ok(0)` or `WouldBlock` means nothing waiting.
    pub fn try_recv_batch(&self, batch: &mut RecvBatch) -> io::Result<usize> {
        batch.count = 0;
        let fd = self.socket.as_raw_fd();
        let n = self.socket.try_io(Interest::READABLE, || {
            let mut iovecs: [MaybeUninit<libc::iovec>; BATCH] = [const { MaybeUninit::uninit() }; BATCH];
            // SAFETY: mmsghdr is plain old data; we fill every field we use below.
            let mut headers: [libc::mmsghdr; BATCH] = unsafe { zeroed() };
            for i in 0..BATCH {
                iovecs[i].write(libc::iovec { iov_base: batch.bufs[i].as_mut_ptr().cast(), iov_len: MAX_DATAGRAM });
                headers[i].msg_hdr.msg_iov = iovecs[i].as_mut_ptr();
                headers[i].msg_hdr.msg_iovlen = 1;
                headers[i].msg_hdr.msg_name = (&mut batch.addrs[i] as *mut libc::sockaddr_storage).cast();
                headers[i].msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            }
            // SAFETY: every header points at a live buffer and address slot of `batch` for the call.
            let r = unsafe {
                libc::recvmmsg(
                    fd,
                    headers.as_mut_ptr(),
                    BATCH as libc::c_uint,
                    libc::MSG_DONTWAIT,
                    std::ptr::null_mut(),
                )
            };
            if r < 0 {
                return Err(io::Error::last_os_error());
            }
            for (i, h) in headers.iter().enumerate().take(r as usize) {
                batch.lens[i] = h.msg_len as usize;
            }
            Ok(r as usize)
        })?;
        batch.count = n;
        Ok(n)
    }

    /// Sends as much of `batch` as the kernel takes without blocking. Datagrams the kernel refused for a
    /// reason other than a full buffer are dropped (UDP is lossy; one bad address must not wedge the rest).
    /// Returns the number sent; `WouldBlock` leaves the rest queued.
    pub fn try_send_batch(&self, batch: &mut SendBatch) -> io::Result<usize> {
        let mut sent_total = 0;
        let fd = self.socket.as_raw_fd();
        while !batch.queue.is_empty() {
            let n = batch.queue.len().min(BATCH);
            let result = self.socket.try_io(Interest::WRITABLE, || {
                let mut addrs: [MaybeUninit<libc::sockaddr_storage>; BATCH] = [const { MaybeUninit::uninit() }; BATCH];
                let mut iovecs: [MaybeUninit<libc::iovec>; BATCH] = [const { MaybeUninit::uninit() }; BATCH];
                // SAFETY: plain old data, filled below.
                let mut headers: [libc::mmsghdr; BATCH] = unsafe { zeroed() };
                for (i, (to, data)) in batch.queue.iter().take(n).enumerate() {
                    let len = write_sockaddr(to, &mut addrs[i]);
                    iovecs[i].write(libc::iovec { iov_base: data.as_ptr() as *mut _, iov_len: data.len() });
                    headers[i].msg_hdr.msg_iov = iovecs[i].as_mut_ptr();
                    headers[i].msg_hdr.msg_iovlen = 1;
                    headers[i].msg_hdr.msg_name = addrs[i].as_mut_ptr().cast();
                    headers[i].msg_hdr.msg_namelen = len;
                }
                // SAFETY: headers point at buffers owned by `batch.queue`, alive for the call.
                let r = unsafe { libc::sendmmsg(fd, headers.as_mut_ptr(), n as libc::c_uint, libc::MSG_DONTWAIT) };
                if r < 0 { Err(io::Error::last_os_error()) } else { Ok(r as usize) }
            });
            match result {
                Ok(sent) => {
                    batch.queue.drain(..sent.max(1).min(batch.queue.len()));
                    sent_total += sent;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if sent_total == 0 {
                        return Err(e);
                    }
                    break;
                }
                Err(e) => {
                    // The first datagram was refused (e.g. unreachable address): drop it, go on.
                    tracing::debug!(error = %e, to = ?batch.queue.front().map(|q| q.0), "datagram dropped");
                    batch.queue.pop_front();
                }
            }
        }
        Ok(sent_total)
    }
}

fn to_socket_addr(storage: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match storage.ss_family as libc::c_int {
        libc::AF_INET => {
            // SAFETY: the family says this storage holds a sockaddr_in.
            let a: &libc::sockaddr_in = unsafe { &*(storage as *const _ as *const libc::sockaddr_in) };
            let ip = std::net::Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Some(SocketAddr::V4(SocketAddrV4::new(ip, u16::from_be(a.sin_port))))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says this storage holds a sockaddr_in6.
            let a: &libc::sockaddr_in6 = unsafe { &*(storage as *const _ as *const libc::sockaddr_in6) };
            let ip = std::net::Ipv6Addr::from(a.sin6_addr.s6_addr);
            Some(SocketAddr::V6(SocketAddrV6::new(ip, u16::from_be(a.sin6_port), a.sin6_flowinfo, a.sin6_scope_id)))
        }
        _ => None,
    }
}

fn write_sockaddr(addr: &SocketAddr, out: &mut MaybeUninit<libc::sockaddr_storage>) -> libc::socklen_t {
    // SAFETY: zeroed sockaddr_storage is valid; we then write the concrete variant into its prefix.
    let storage = out.write(unsafe { zeroed() });
    match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr { s_addr: u32::from(*a.ip()).to_be() },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is large and aligned enough for any sockaddr.
            unsafe { std::ptr::write(storage as *mut _ as *mut libc::sockaddr_in, sin) };
            size_of::<libc::sockaddr_in>() as libc::socklen_t
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr { s6_addr: a.ip().octets() },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: as above.
            unsafe { std::ptr::write(storage as *mut _ as *mut libc::sockaddr_in6, sin6) };
            size_of::<libc::sockaddr_in6>() as libc::socklen_t
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_batch_of_datagrams_goes_out_and_comes_back_in_order() {
        let a = MediaSocket::new(std::net::UdpSocket::bind("127.0.0.1:0").unwrap()).unwrap();
        let b = MediaSocket::new(std::net::UdpSocket::bind("127.0.0.1:0").unwrap()).unwrap();
        let mut out = SendBatch::default();
        for i in 0..50u8 {
            out.push(b.local_addr(), BytesMut::from(&[i; 100][..]));
        }
        let mut sent = 0;
        while !out.is_empty() {
            a.writable().await.unwrap();
            sent += a.try_send_batch(&mut out).unwrap_or(0);
        }
        assert_eq!(sent, 50);
        let mut got = Vec::new();
        let mut batch = RecvBatch::default();
        while got.len() < 50 {
            b.readable().await.unwrap();
            if let Ok(n) = b.try_recv_batch(&mut batch) {
                assert!(n <= BATCH);
                for (from, data) in batch.iter() {
                    assert_eq!(from, a.local_addr());
                    got.push(data[0]);
                }
            }
        }
        assert_eq!(got, (0..50).collect::<Vec<_>>());
    }
}
