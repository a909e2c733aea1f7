//! The load tool's media thread: owns every synthetic peer connection and drives them all through
//! one epoll set — reads what arrived, sends media that is due at real pace, runs timers. The
//! signaling drivers (async, on a tokio runtime) talk to it with [`Command`]s.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::media::Media;
use super::peer::{Counts, Peer, Receive, Role};
use super::recv::RecvBatch;

pub type PeerId = usize;
type Reply<T> = oneshot::Sender<Result<T, String>>;

pub enum Command {
    /// A new connection; a publisher gets an Opus and a VP8 track and answers with its offer and
    /// mids, a WHEP player its receive-only transceivers and answers with its offer (no mids).
    Create {
        name: String,
        role: Role,
        started: Instant,
        reply: Reply<(PeerId, Option<Offer>)>,
    },
    ApplyAnswer {
        peer: PeerId,
        sdp: String,
        reply: Reply<()>,
    },
    Answer {
        peer: PeerId,
        sdp: String,
        reply: Reply<String>,
    },
    Candidate {
        peer: PeerId,
        candidate: String,
    },
    Close {
        peer: PeerId,
    },
    /// Start (or stop) collecting one-way delays.
    Measure(bool),
    Snapshot {
        reply: oneshot::Sender<Snapshot>,
    },
}

/// An offer: SDP, and the mid of each sending track (`true` = video).
pub type Offer = (String, Vec<(String, bool)>);

/// Totals over every subscriber connection at one moment.
#[derive(Default, Clone)]
pub struct Snapshot {
    /// Every subscriber connection (WHEP players included).
    pub counts: Counts,
    /// WHEP players only.
    pub whep: Counts,
    /// RTP packets written so far, per publisher name.
    pub sent_by: Vec<(String, u64)>,
    pub connected: usize,
    pub peers: usize,
    /// RTP packets written by every publisher so far.
    pub sent: u64,
    /// One-way delays (µs) collected while measuring, drained by each snapshot.
    pub delays: Vec<u32>,
    /// Per subscriber connection: its participant's join start and first media packet.
    pub joins: Vec<(Instant, Option<Instant>)>,
    /// Per subscriber connection, since its participant's join start: when the connection was
    /// made (the offer arrived) and when it got connected (`LOAD_DEBUG` prints where joins wait).
    pub join_steps: Vec<(Duration, Option<Duration>)>,
}

/// The signaling side's handle on the engine.
#[derive(Clone)]
pub struct Engine {
    tx: mpsc::Sender<Command>,
}

impl Engine {
    /// Starts the media thread; `receive` is how its subscriber connections read media.
    pub fn start(media: Arc<Media>, bind: IpAddr, receive: Receive) -> Result<Engine, String> {
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("load-media".into())
            .spawn(move || run(rx, media, bind, receive))
            .map_err(|e| format!("starting the media thread: {e}"))?;
        Ok(Engine { tx })
    }

    async fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, String> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(make(reply)).map_err(|_| "the media thread is gone".to_string())?;
        rx.await.map_err(|_| "the media thread dropped a request".to_string())?
    }

    pub async fn create(&self, name: &str, role: Role, started: Instant) -> Result<(PeerId, Option<Offer>), String> {
        self.ask(|reply| Command::Create { name: name.into(), role, started, reply }).await
    }

    pub async fn apply_answer(&self, peer: PeerId, sdp: String) -> Result<(), String> {
        self.ask(|reply| Command::ApplyAnswer { peer, sdp, reply }).await
    }

    pub async fn answer(&self, peer: PeerId, sdp: String) -> Result<String, String> {
        self.ask(|reply| Command::Answer { peer, sdp, reply }).await
    }

    pub fn candidate(&self, peer: PeerId, candidate: String) {
        let _ = self.tx.send(Command::Candidate { peer, candidate });
    }

    pub fn close(&self, peer: PeerId) {
        let _ = self.tx.send(Command::Close { peer });
    }

    pub fn measure(&self, on: bool) {
        let _ = self.tx.send(Command::Measure(on));
    }

    pub async fn snapshot(&self) -> Result<Snapshot, String> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Command::Snapshot { reply }).map_err(|_| "the media thread is gone".to_string())?;
        rx.await.map_err(|_| "the media thread dropped a request".to_string())
    }
}

struct Epoll(i32);

impl Epoll {
    fn new() -> Result<Epoll, String> {
        // SAFETY: plain syscall; the descriptor is closed in Drop.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 { Err(format!("epoll_create1: {}", std::io::Error::last_os_error())) } else { Ok(Epoll(fd)) }
    }

    fn add(&self, fd: i32, key: u64) -> Result<(), String> {
        let mut ev = libc::epoll_event { events: libc::EPOLLIN as u32, u64: key };
        // SAFETY: `ev` outlives the call; `fd` is an open socket we own.
        let rc = unsafe { libc::epoll_ctl(self.0, libc::EPOLL_CTL_ADD, fd, &mut ev) };
        if rc < 0 { Err(format!("epoll_ctl: {}", std::io::Error::last_os_error())) } else { Ok(()) }
    }

    fn remove(&self, fd: i32) {
        // SAFETY: as above; a null event is allowed for EPOLL_CTL_DEL.
        unsafe { libc::epoll_ctl(self.0, libc::EPOLL_CTL_DEL, fd, std::ptr::null_mut()) };
    }

    fn wait(&self, events: &mut [libc::epoll_event], timeout: Duration) -> usize {
        let ms = timeout.as_millis().min(1000) as i32;
        // SAFETY: `events` is a valid buffer of the given length.
        let n = unsafe { libc::epoll_wait(self.0, events.as_mut_ptr(), events.len() as i32, ms) };
        n.max(0) as usize
    }
}

impl Drop for Epoll {
    fn drop(&mut self) {
        // SAFETY: we own the descriptor.
        unsafe { libc::close(self.0) };
    }
}

fn run(rx: mpsc::Receiver<Command>, media: Arc<Media>, bind: IpAddr, receive: Receive) {
    use std::os::fd::AsRawFd;
    let epoll = match Epoll::new() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("load: {e}");
            return;
        }
    };
    let epoch = Instant::now();
    let mut peers: Vec<Option<Peer>> = Vec::new();
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 512];
    let mut delays = Vec::new();
    let mut measuring = false;
    let mut batch = RecvBatch::new();
    // Nothing below walks every connection per wake-up (with 1,000 subscribers that walk was a
    // third of the tool's CPU): publishers are listed, connections with something to do are
    // queued in `dirty`, and `rtc` timers wait in a heap (stale entries are skipped when popped).
    let mut publishers: Vec<PeerId> = Vec::new();
    let mut dirty: Vec<PeerId> = Vec::new();
    let mut timers: BinaryHeap<Reverse<(Instant, PeerId)>> = BinaryHeap::new();
    loop {
        // Wake at the earliest of: a datagram, a due packet, a due timer; at least every 2 ms for commands.
        let now = Instant::now();
        let next_send = publishers.iter().filter_map(|&id| peers.get(id)?.as_ref()?.next_send()).min();
        let next_timer = timers.peek().map(|Reverse((t, _))| *t);
        let next = next_send.into_iter().chain(next_timer).min().unwrap_or(now + Duration::from_millis(2));
        let wait = next.saturating_duration_since(now).min(Duration::from_millis(2));
        let n = epoll.wait(&mut events, wait);
        let now = Instant::now();
        for ev in &events[..n] {
            let id = ev.u64 as usize;
            if let Some(Some(p)) = peers.get_mut(id) {
                p.read_socket(now, &mut batch);
                queue(p, id, &mut dirty);
            }
        }
        loop {
            let cmd = match rx.try_recv() {
                Ok(c) => c,
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => return,
            };
            match cmd {
                Command::Create { name, role, started, reply } => {
                    let made = Peer::new(&name, role, started, bind, receive).and_then(|mut p| {
                        let offer = match role {
                            Role::Publish(index) => {
                                p.add_tracks(&name, index, &media)?;
                                Some(p.offer()?)
                            }
                            Role::Whep { audio } => {
                                p.add_receivers(audio)?;
                                Some(p.offer()?)
                            }
                            Role::Subscribe => None,
                        };
                        let id = peers.len();
                        epoll.add(p.socket.as_raw_fd(), id as u64)?;
                        if p.is_publisher() {
                            publishers.push(id);
                        }
                        queue(&mut p, id, &mut dirty);
                        peers.push(Some(p));
                        Ok((id, offer))
                    });
                    let _ = reply.send(made);
                }
                Command::ApplyAnswer { peer, sdp, reply } => {
                    let r = with_peer(&mut peers, &mut dirty, peer, |p| p.apply_answer(sdp));
                    let _ = reply.send(r);
                }
                Command::Answer { peer, sdp, reply } => {
                    let r = with_peer(&mut peers, &mut dirty, peer, |p| p.answer(sdp));
                    let _ = reply.send(r);
                }
                Command::Candidate { peer, candidate } => {
                    let _ = with_peer(&mut peers, &mut dirty, peer, |p| p.add_remote_candidate(candidate));
                }
                Command::Close { peer } => {
                    if let Some(slot) = peers.get_mut(peer)
                        && let Some(mut p) = slot.take()
                    {
                        epoll.remove(p.socket.as_raw_fd());
                        p.close();
                    }
                }
                Command::Measure(on) => {
                    measuring = on;
                    delays.clear();
                }
                Command::Snapshot { reply } => {
                    // What `rtc` was handed this turn is taken out first: the light path's check
                    // (sampled vs decrypted) and the counts then agree at the snapshot.
                    let mut sink = if measuring { Some(&mut delays) } else { None };
                    drain_dirty(&mut peers, &mut dirty, &mut timers, now, epoch, &mut sink);
                    let mut s = Snapshot { delays: std::mem::take(&mut delays), ..Default::default() };
                    let debug = std::env::var_os("LOAD_DEBUG").is_some();
                    for (id, p) in peers.iter().enumerate().filter_map(|(i, p)| Some((i, p.as_ref()?))) {
                        if debug && !p.is_publisher() {
                            eprintln!("load: subscriber pc {id}: {} streams {:?}", p.streams().len(), p.streams());
                        }
                        s.peers += 1;
                        s.sent += p.rtp_sent;
                        if p.is_publisher() {
                            s.sent_by.push((p.name.clone(), p.rtp_sent));
                        }
                        if p.state == rtc::peer_connection::state::RTCPeerConnectionState::Connected {
                            s.connected += 1;
                        }
                        if !p.is_publisher() {
                            let c = p.counts();
                            s.counts.add(&c);
                            if matches!(p.role, Role::Whep { .. }) {
                                s.whep.add(&c);
                            }
                            s.joins.push((p.started, p.first_media));
                            s.join_steps.push((
                                p.created.saturating_duration_since(p.started),
                                p.connected.map(|c| c.saturating_duration_since(p.started)),
                            ));
                        }
                    }
                    let _ = reply.send(s);
                }
            }
        }
        for &id in &publishers {
            if let Some(Some(p)) = peers.get_mut(id)
                && p.send_due(now, epoch, &media)
            {
                p.touched = true;
                queue(p, id, &mut dirty);
            }
        }
        while let Some(&Reverse((at, id))) = timers.peek() {
            if at > now {
                break;
            }
            timers.pop();
            if let Some(Some(p)) = peers.get_mut(id)
                && p.scheduled == Some(at)
            {
                p.scheduled = None;
                p.touched = true;
                queue(p, id, &mut dirty);
            }
        }
        let mut sink = if measuring { Some(&mut delays) } else { None };
        drain_dirty(&mut peers, &mut dirty, &mut timers, now, epoch, &mut sink);
    }
}

/// Drains every queued connection: runs its due timers, takes media and events out of `rtc`,
/// sends what it wrote; probes' delays go to `delays` when measuring.
fn drain_dirty(
    peers: &mut [Option<Peer>],
    dirty: &mut Vec<PeerId>,
    timers: &mut BinaryHeap<Reverse<(Instant, PeerId)>>,
    now: Instant,
    epoch: Instant,
    delays: &mut Option<&mut Vec<u32>>,
) {
    let mut scratch = Vec::new();
    for id in dirty.drain(..) {
        let Some(Some(p)) = peers.get_mut(id) else { continue };
        p.queued = false;
        scratch.clear();
        p.drain(now, epoch, &mut scratch);
        if let Some(d) = delays {
            d.extend_from_slice(&scratch);
        }
        if let Some(at) = p.next_timeout
            && p.scheduled != Some(at)
        {
            p.scheduled = Some(at);
            timers.push(Reverse((at, id)));
        }
    }
}

/// Queues a connection that has something to do (a datagram for `rtc`, a command, a due packet or
/// timer) for this turn's drain, once.
fn queue(p: &mut Peer, id: PeerId, dirty: &mut Vec<PeerId>) {
    if p.touched && !p.queued {
        p.queued = true;
        dirty.push(id);
    }
}

fn with_peer<T>(
    peers: &mut [Option<Peer>],
    dirty: &mut Vec<PeerId>,
    id: PeerId,
    f: impl FnOnce(&mut Peer) -> Result<T, String>,
) -> Result<T, String> {
    match peers.get_mut(id) {
        Some(Some(p)) => {
            p.touched = true;
            queue(p, id, dirty);
            f(p)
        }
        _ => Err(format!("no peer connection {id}")),
    }
}
