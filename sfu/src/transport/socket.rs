//! The one media socket, read and written in batches (`recvmmsg`/`sendmmsg`): one system call moves
//! up to [`BATCH`] datagrams, which is where an SFU's kernel time goes (see shared/media-notes.md).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io;
use std::mem::{MaybeUninit, zeroed};
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::task::{Context, Poll, Waker};

use bytes::BytesMut;
use tokio::io::Interest;
use tokio::io::unix::{AsyncFd, AsyncFdReadyGuard};

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
    queue: VecDeque<(SocketAddr, BytesMut)>,
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

/// The socket is registered for readability only. Registered for both (as `tokio::net::UdpSocket`
/// is), every datagram sent makes the socket writable again once the kernel frees it, and each such
/// edge woke the thread for nothing: one wasted `epoll_wait` per wake-up. Writability is waited for
/// on a duplicate descriptor registered only while sends are held back ([`MediaSocket::writable`]).
pub struct MediaSocket {
    socket: AsyncFd<UdpSocket>,
    /// A duplicate of the socket registered for writability, while the kernel refuses sends.
    writer: RefCell<Option<AsyncFd<OwnedFd>>>,
    local_addr: SocketAddr,
    /// Datagrams one UDP GSO send may carry; 1 = GSO off (unsupported, refused, or not wanted).
    gso_segments: Cell<usize>,
    /// Datagrams that left inside a GSO send, for tests and the benchmark.
    gso_datagrams: Cell<u64>,
}

/// Segments in one GSO send at most. Linux takes 64 (`UDP_MAX_SEGMENTS`; 128 since 6.9); a
/// subscriber rarely has more than one video frame's packets queued at once.
const MAX_SEGMENTS: usize = 32;
/// Bytes in one GSO send at most: the payload of one UDP datagram before the kernel cuts it.
const MAX_GSO_BYTES: usize = 65_000;
/// Buffers (iovecs) one `sendmmsg` call points at.
const MAX_IOVECS: usize = 256;

/// Splits the head of the send queue into the messages of one `sendmmsg`. Consecutive datagrams to
/// one destination become one GSO message when every one but the last has the first's size: the
/// kernel cuts the buffer at that size, so only the last segment may be shorter. Fills `out` with
/// (datagrams, segment size) per message and returns how many messages there are.
fn plan_messages(
    datagrams: impl Iterator<Item = (SocketAddr, usize)>,
    max_segments: usize,
    out: &mut [(usize, usize)],
) -> usize {
    struct Run {
        to: SocketAddr,
        segment: usize,
        count: usize,
        bytes: usize,
        /// The last datagram was shorter than the segment size: nothing may follow it.
        closed: bool,
    }
    let (mut messages, mut iovecs) = (0, 0);
    let mut run: Option<Run> = None;
    for (to, len) in datagrams {
        if iovecs == MAX_IOVECS {
            break;
        }
        if let Some(r) = &mut run {
            if r.to == to && !r.closed && len <= r.segment && r.count < max_segments && r.bytes + len <= MAX_GSO_BYTES {
                r.count += 1;
                r.bytes += len;
                r.closed = len < r.segment;
                iovecs += 1;
                continue;
            }
            out[messages] = (r.count, r.segment);
            messages += 1;
            if messages == out.len() {
                return messages;
            }
        }
        run = Some(Run { to, segment: len, count: 1, bytes: len, closed: false });
        iovecs += 1;
    }
    if let Some(r) = run {
        out[messages] = (r.count, r.segment);
        messages += 1;
    }
    messages
}

/// Whether the kernel knows UDP GSO (`UDP_SEGMENT`, Linux 4.18): reading the option fails otherwise.
fn gso_supported(socket: &UdpSocket) -> bool {
    let mut value: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: value and len are live locals of the sizes the call is told.
    let r = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_UDP,
            libc::UDP_SEGMENT,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    r == 0
}

impl MediaSocket {
    /// Wraps an already bound std socket; must be called inside a tokio runtime. Runs of datagrams
    /// to one destination go out as UDP GSO sends when `gso` is asked and the kernel has it.
    pub fn new(socket: UdpSocket, gso: bool) -> io::Result<Self> {
        socket.set_nonblocking(true)?;
        let local_addr = socket.local_addr()?;
        let segments = if gso && gso_supported(&socket) { MAX_SEGMENTS } else { 1 };
        // SAFETY: a std socket's descriptor is valid, and stays open and the same while it is owned.
        let socket = unsafe { AsyncFd::register_with_interest(socket, Interest::READABLE) }?;
        Ok(MediaSocket {
            socket,
            writer: RefCell::new(None),
            local_addr,
            gso_segments: Cell::new(segments),
            gso_datagrams: Cell::new(0),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Whether runs of datagrams go out as GSO sends (false once the kernel refused one).
    pub fn gso(&self) -> bool {
        self.gso_segments.get() > 1
    }

    /// Datagrams sent inside GSO sends so far.
    #[cfg(test)]
    pub fn gso_datagrams(&self) -> u64 {
        self.gso_datagrams.get()
    }

    /// Waits until datagrams may be waiting. Readiness stays set until a receive finds the queue
    /// empty ([`MediaSocket::try_recv_batch`]).
    pub async fn readable(&self) -> io::Result<()> {
        self.socket.readable().await.map(|mut guard| guard.retain_ready())
    }

    /// Waits until the kernel takes sends again, after one came back `WouldBlock`.
    pub async fn writable(&self) -> io::Result<()> {
        if self.writer.borrow().is_none() {
            let dup = self.socket.get_ref().as_fd().try_clone_to_owned()?;
            // SAFETY: an `OwnedFd` is a valid descriptor, and stays open and the same while it is owned.
            *self.writer.borrow_mut() = Some(unsafe { AsyncFd::register_with_interest(dup, Interest::WRITABLE) }?);
        }
        // Not held across the await: `try_send_batch` may drop the writer meanwhile (same thread).
        std::future::poll_fn(|cx| match self.writer.borrow().as_ref() {
            Some(writer) => writer.poll_write_ready(cx).map_ok(|mut guard| guard.retain_ready()),
            None => Poll::Ready(Ok(())),
        })
        .await
    }

    /// The readiness tokio holds for `fd` now (read or write, as `poll` asks), taken *before* a
    /// system call so that clearing it after one that found the kernel empty (or full) forgets only
    /// what was seen: an edge the reactor records in between carries a newer tick and stays.
    fn readiness<'a, T: AsRawFd>(fd: &'a AsyncFd<T>, poll: PollReady<'a, T>) -> Option<AsyncFdReadyGuard<'a, T>> {
        match poll(fd, &mut Context::from_waker(Waker::noop())) {
            Poll::Ready(Ok(guard)) => Some(guard),
            _ => None,
        }
    }

    /// Reads up to [`BATCH`] datagrams without blocking. `Ok(0)` or `WouldBlock` means nothing waiting.
    /// Fewer than [`BATCH`] means the queue is empty now: readiness is cleared then, which saves the
    /// `recvmmsg` that would only have said so (a datagram arriving later is a new edge).
    pub fn try_recv_batch(&self, batch: &mut RecvBatch) -> io::Result<usize> {
        batch.count = 0;
        let fd = self.socket.as_raw_fd();
        let readiness = Self::readiness(&self.socket, AsyncFd::poll_read_ready);
        let n = recv_batch(fd, batch);
        if !matches!(n, Ok(BATCH))
            && let Some(mut r) = readiness
        {
            r.clear_ready();
        }
        batch.count = *n.as_ref().unwrap_or(&0);
        n
    }

    /// Sends as much of `batch` as the kernel takes without blocking, runs to one destination as
    /// GSO sends. Datagrams the kernel refused for a reason other than a full buffer are dropped (UDP
    /// is lossy; one bad address must not wedge the rest); a GSO send the kernel refuses turns GSO off
    /// for good and is sent again datagram by datagram. Returns the number of datagrams sent;
    /// `WouldBlock` leaves the rest queued.
    pub fn try_send_batch(&self, batch: &mut SendBatch) -> io::Result<usize> {
        let mut sent_total = 0;
        let fd = self.socket.as_raw_fd();
        let mut plan = [(0usize, 0usize); BATCH];
        while !batch.queue.is_empty() {
            let messages =
                plan_messages(batch.queue.iter().map(|(to, d)| (*to, d.len())), self.gso_segments.get(), &mut plan);
            let writer = self.writer.borrow();
            let readiness = writer.as_ref().and_then(|w| Self::readiness(w, AsyncFd::poll_write_ready));
            let result = send_planned(fd, &batch.queue, &plan[..messages]);
            match result {
                Ok(sent) => {
                    let sent = sent.clamp(1, messages);
                    let datagrams: usize = plan[..sent].iter().map(|&(count, _)| count).sum();
                    let in_gso: usize = plan[..sent].iter().filter(|&&(count, _)| count > 1).map(|&(c, _)| c).sum();
                    self.gso_datagrams.set(self.gso_datagrams.get() + in_gso as u64);
                    batch.queue.drain(..datagrams.min(batch.queue.len()));
                    sent_total += datagrams;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if let Some(mut r) = readiness {
                        r.clear_ready();
                    }
                    if sent_total == 0 {
                        return Err(e);
                    }
                    break;
                }
                Err(e) if plan[0].0 > 1 && matches!(e.raw_os_error(), Some(libc::EIO | libc::EINVAL)) => {
                    // EIO: the device cannot checksum a segmented send; EINVAL: a limit of this
                    // kernel. Either way it will refuse again: send one by one from now on.
                    tracing::warn!(error = %e, "UDP GSO refused by the kernel; sending datagrams one by one");
                    self.gso_segments.set(1);
                }
                Err(e) => {
                    // The first message was refused (e.g. unreachable address): drop it, go on.
                    tracing::debug!(error = %e, to = ?batch.queue.front().map(|q| q.0), "datagram dropped");
                    batch.queue.drain(..plan[0].0.clamp(1, batch.queue.len()));
                }
            }
        }
        if batch.queue.is_empty() {
            // Everything went: stop watching writability (its edges would wake the thread for nothing).
            self.writer.borrow_mut().take();
        }
        Ok(sent_total)
    }

    /// Test hook: lets one GSO send carry `segments` datagrams, beyond what the kernel takes.
    #[cfg(test)]
    fn set_gso_segments(&self, segments: usize) {
        self.gso_segments.set(segments);
    }
}

/// `AsyncFd::poll_read_ready` or `AsyncFd::poll_write_ready`.
type PollReady<'a, T> = fn(&'a AsyncFd<T>, &mut Context<'_>) -> Poll<io::Result<AsyncFdReadyGuard<'a, T>>>;

/// One `recvmmsg` into `batch`'s buffers; the number of datagrams read.
fn recv_batch(fd: std::os::fd::RawFd, batch: &mut RecvBatch) -> io::Result<usize> {
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
        libc::recvmmsg(fd, headers.as_mut_ptr(), BATCH as libc::c_uint, libc::MSG_DONTWAIT, std::ptr::null_mut())
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    for (i, h) in headers.iter().enumerate().take(r as usize) {
        batch.lens[i] = h.msg_len as usize;
    }
    Ok(r as usize)
}

/// One `sendmmsg` of the head of `queue`, cut into messages as `plan` says (datagrams, segment
/// size); the number of messages the kernel took.
fn send_planned(
    fd: std::os::fd::RawFd,
    queue: &VecDeque<(SocketAddr, BytesMut)>,
    plan: &[(usize, usize)],
) -> io::Result<usize> {
    let mut addrs: [MaybeUninit<libc::sockaddr_storage>; BATCH] = [const { MaybeUninit::uninit() }; BATCH];
    let mut iovecs: [MaybeUninit<libc::iovec>; MAX_IOVECS] = [const { MaybeUninit::uninit() }; MAX_IOVECS];
    // One control message per GSO send: a cmsghdr and the u16 segment size, 8-byte aligned.
    let mut controls = [[0u64; 4]; BATCH];
    // SAFETY: plain old data, filled below.
    let mut headers: [libc::mmsghdr; BATCH] = unsafe { zeroed() };
    let mut queued = queue.iter();
    let mut iov = 0;
    for (m, &(count, segment)) in plan.iter().enumerate() {
        let first = iov;
        for (to, data) in queued.by_ref().take(count) {
            iovecs[iov].write(libc::iovec { iov_base: data.as_ptr() as *mut _, iov_len: data.len() });
            iov += 1;
            headers[m].msg_hdr.msg_namelen = write_sockaddr(to, &mut addrs[m]);
        }
        let header = &mut headers[m].msg_hdr;
        header.msg_iov = iovecs[first..].as_mut_ptr().cast();
        header.msg_iovlen = count as _;
        header.msg_name = addrs[m].as_mut_ptr().cast();
        if count > 1 {
            let cmsg: *mut libc::cmsghdr = controls[m].as_mut_ptr().cast();
            // SAFETY: `controls[m]` (32 bytes, 8-aligned) holds a cmsghdr and a u16 after it.
            unsafe {
                (*cmsg).cmsg_level = libc::SOL_UDP;
                (*cmsg).cmsg_type = libc::UDP_SEGMENT;
                (*cmsg).cmsg_len = libc::CMSG_LEN(size_of::<u16>() as _) as _;
                std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<u16>(), segment as u16);
                header.msg_controllen = libc::CMSG_SPACE(size_of::<u16>() as _) as _;
            }
            header.msg_control = cmsg.cast();
        }
    }
    // SAFETY: headers point at buffers owned by `batch.queue` and at the arrays above,
    // all alive for the call.
    let r = unsafe { libc::sendmmsg(fd, headers.as_mut_ptr(), plan.len() as libc::c_uint, libc::MSG_DONTWAIT) };
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(r as usize) }
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
        let a = socket(false);
        let b = socket(false);
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
    /// A receive that drained the queue forgets readiness without another `recvmmsg`; the next
    /// datagram must still wake the reader, and a waiting reader must not be woken by sends.
    #[tokio::test]
    async fn a_datagram_after_a_drained_queue_wakes_the_reader_again() {
        let (a, b) = (socket(false), socket(false));
        let wait = std::time::Duration::from_millis(200);
        let mut batch = RecvBatch::default();
        for round in 0..3u8 {
            let mut out = SendBatch::default();
            out.push(b.local_addr(), BytesMut::from(&[round; 10][..]));
            assert_eq!(a.try_send_batch(&mut out).unwrap(), 1);
            tokio::time::timeout(wait, b.readable()).await.expect("woken by the datagram").unwrap();
            assert_eq!(b.try_recv_batch(&mut batch).unwrap(), 1);
            assert_eq!(batch.iter().map(|(_, d)| d[0]).collect::<Vec<_>>(), vec![round]);
            // Drained: the reader waits again, and b's own sends do not count as input.
            let mut echo = SendBatch::default();
            echo.push(a.local_addr(), BytesMut::from(&[round; 10][..]));
            b.try_send_batch(&mut echo).unwrap();
            assert!(tokio::time::timeout(wait, b.readable()).await.is_err(), "nothing to read after round {round}");
        }
        // A full batch leaves readiness set: the rest is read without a new edge.
        let mut out = SendBatch::default();
        for i in 0..(BATCH + 3) as u8 {
            out.push(b.local_addr(), BytesMut::from(&[i; 10][..]));
        }
        a.try_send_batch(&mut out).unwrap();
        tokio::time::timeout(wait, b.readable()).await.unwrap().unwrap();
        assert_eq!(b.try_recv_batch(&mut batch).unwrap(), BATCH);
        tokio::time::timeout(wait, b.readable()).await.expect("still readable after a full batch").unwrap();
        assert_eq!(b.try_recv_batch(&mut batch).unwrap(), 3);
    }

    fn socket(gso: bool) -> MediaSocket {
        MediaSocket::new(std::net::UdpSocket::bind("127.0.0.1:0").unwrap(), gso).unwrap()
    }

    /// Sends everything queued, then reads until `n` datagrams arrived at each of `to`.
    async fn exchange(from: &MediaSocket, out: &mut SendBatch, to: &[&MediaSocket], n: usize) -> Vec<Vec<Vec<u8>>> {
        while !out.is_empty() {
            from.writable().await.unwrap();
            let _ = from.try_send_batch(out);
        }
        let mut got = vec![Vec::new(); to.len()];
        let mut batch = RecvBatch::default();
        for (i, sock) in to.iter().enumerate() {
            while got[i].len() < n {
                tokio::time::timeout(std::time::Duration::from_secs(5), sock.readable()).await.unwrap().unwrap();
                if sock.try_recv_batch(&mut batch).is_ok() {
                    for (src, data) in batch.iter() {
                        assert_eq!(src, from.local_addr());
                        got[i].push(data.to_vec());
                    }
                }
            }
        }
        got
    }

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn runs_to_one_destination_become_one_message_while_the_size_holds() {
        let (a, b) = (addr(1), addr(2));
        let mut out = [(0, 0); BATCH];
        // Three full video packets and the frame's shorter last one, then audio to someone else.
        let q = [(a, 1200), (a, 1200), (a, 1200), (a, 700), (b, 100), (b, 100)];
        let n = plan_messages(q.into_iter(), MAX_SEGMENTS, &mut out);
        assert_eq!(&out[..n], &[(4, 1200), (2, 100)]);
        // A shorter datagram ends a run, a longer one cannot join it, and another destination splits it.
        let q = [(a, 700), (a, 1200), (a, 1200), (b, 1200), (a, 1200)];
        let n = plan_messages(q.into_iter(), MAX_SEGMENTS, &mut out);
        assert_eq!(&out[..n], &[(1, 700), (2, 1200), (1, 1200), (1, 1200)]);
        let q = [(a, 100), (a, 50), (a, 50)];
        let n = plan_messages(q.into_iter(), MAX_SEGMENTS, &mut out);
        assert_eq!(&out[..n], &[(2, 100), (1, 50)]);
        // GSO off: one message per datagram.
        let n = plan_messages([(a, 100); 3].into_iter(), 1, &mut out);
        assert_eq!(&out[..n], &[(1, 100); 3]);
    }

    #[test]
    fn a_plan_stays_within_the_kernel_limits() {
        let mut out = [(0, 0); BATCH];
        // Segments per send.
        let n = plan_messages(std::iter::repeat_n((addr(1), 100), 70), MAX_SEGMENTS, &mut out);
        assert_eq!(&out[..n], &[(32, 100), (32, 100), (6, 100)]);
        // Bytes per send: 54 × 1200 > 65,000.
        let n = plan_messages(std::iter::repeat_n((addr(1), 1200), 60), 64, &mut out);
        assert_eq!(&out[..n], &[(54, 1200), (6, 1200)]);
        // Messages per call: the rest waits for the next call.
        let n = plan_messages((0..100).map(|i| (addr(i), 100)), MAX_SEGMENTS, &mut out);
        assert_eq!(n, BATCH);
        // Buffers per call.
        let n = plan_messages(std::iter::repeat_n((addr(1), 10), 1000), 1000, &mut out);
        assert_eq!(out[..n].iter().map(|m| m.0).sum::<usize>(), MAX_IOVECS);
    }

    #[tokio::test]
    async fn gso_sends_arrive_as_the_datagrams_they_were() {
        let a = socket(true);
        assert!(a.gso(), "this kernel has UDP GSO (Linux ≥ 4.18)");
        let (b, c) = (socket(false), socket(false));
        let mut out = SendBatch::default();
        // Per destination: full packets and a shorter last one, interleaved between the two.
        for round in 0..6u8 {
            for (to, tag) in [(b.local_addr(), 0u8), (c.local_addr(), 1u8)] {
                for i in 0..4u8 {
                    let len = if i == 3 { 300 } else { 1000 };
                    let mut d = vec![tag; len];
                    d[1] = round * 4 + i;
                    out.push(to, BytesMut::from(&d[..]));
                }
            }
        }
        let got = exchange(&a, &mut out, &[&b, &c], 24).await;
        for (tag, got) in got.iter().enumerate() {
            let order: Vec<u8> = got.iter().map(|d| d[1]).collect();
            assert_eq!(order, (0..24).collect::<Vec<_>>(), "every datagram once, in order");
            for d in got {
                assert_eq!(d.len(), if d[1] % 4 == 3 { 300 } else { 1000 });
                assert!(d.iter().enumerate().all(|(i, &x)| i == 1 || x == tag as u8));
            }
        }
        assert_eq!(a.gso_datagrams(), 48, "every run went out as one GSO send");
    }

    #[tokio::test]
    async fn a_gso_send_the_kernel_refuses_goes_out_one_by_one_and_gso_stays_off() {
        let a = socket(true);
        let b = socket(false);
        // More segments than any kernel takes in one send (64, or 128 since Linux 6.9): EINVAL.
        a.set_gso_segments(MAX_IOVECS);
        let mut out = SendBatch::default();
        for i in 0..150u8 {
            out.push(b.local_addr(), BytesMut::from(&[i; 64][..]));
        }
        let got = exchange(&a, &mut out, &[&b], 150).await;
        assert_eq!(got[0].iter().map(|d| d[0]).collect::<Vec<_>>(), (0..150).collect::<Vec<_>>());
        assert!(!a.gso(), "GSO off after the refusal");
        assert_eq!(a.gso_datagrams(), 0);
    }
}
