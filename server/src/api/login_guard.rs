//! What stands between an anonymous `POST /api/auth/login` and an Argon2id verification, which
//! costs ≈ 19 MiB of memory and tens of milliseconds of a core. Without it, 200 concurrent logins
//! with made-up emails took a server from 56 MiB to 3.8 GiB.
//!
//! Three limits, checked in this order, all in memory (a restart forgets them, which only shortens
//! a pause):
//! 1. **Per client address** (an IPv6 address counts by its /64, the block one subscriber gets):
//!    at most [`IN_FLIGHT_PER_ADDRESS`] attempts at once, and failed attempts in the last
//!    [`WINDOW_SECS`] plus attempts in flight may not exceed [`ADDRESS_BUDGET`] — a flood is cut
//!    before any hashing, only its own address is refused, and the queue for hashing holds at most a
//!    few attempts per address, so a person logging in from elsewhere waits behind few others.
//!    Successful logins are free: an office behind one NAT logging in at 08:00 is not a flood.
//! 2. **Per (address, account)**: after [`FREE_FAILURES`] failures a pause that doubles with every
//!    further failure, up to [`WINDOW_SECS`]. The account itself is never locked: the person it
//!    belongs to logs in from their own address whatever an attacker does elsewhere.
//! 3. **Hashing at once** ([`run_hashing`]): Argon2 runs on one thread per core, for every caller
//!    (login, setup, password change); a request waits up to [`HASH_WAIT`] for its turn, and
//!    beyond [`MAX_WAITING`] waiting requests the server answers 503 at once.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use crate::client_addr::AddressKey;

/// Failed logins (plus attempts in flight) one address may have in a window, by default.
pub const ADDRESS_BUDGET: u32 = 20;
/// Attempts one address may have in flight at once, at least (beyond: 429, retry in a second).
pub const IN_FLIGHT_PER_ADDRESS: u32 = 4;
/// The window of the per-address budget, and the longest per-account pause.
pub const WINDOW_SECS: i64 = 15 * 60;
/// Failures on one account from one address before the pauses begin.
pub const FREE_FAILURES: u32 = 3;
/// The first pause; each further failure doubles it.
pub const FIRST_PAUSE_SECS: i64 = 30;
/// How long a request may wait for its hash before it is answered 503.
pub const HASH_WAIT: Duration = Duration::from_secs(10);
/// Jobs waiting for a hashing thread beyond which the server refuses at once (a waiting request is a
/// small task; the limit only stops an unbounded queue).
pub const MAX_WAITING: usize = 256;
/// Entries kept per map before the expired ones are swept.
const SWEEP_ABOVE: usize = 10_000;

/// Why an attempt is refused before hashing: come back after this many seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter(pub i64);

/// The hashing pool is full: too many requests are waiting already, or the wait was too long.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("password hashing is saturated")]
pub struct Saturated;

#[derive(Debug, Default)]
struct AddressCount {
    window_start: i64,
    failures: u32,
    in_flight: u32,
}

#[derive(Debug, Default)]
struct PairCount {
    failures: u32,
    last_failure: i64,
}

#[derive(Debug, Default)]
struct Counts {
    addresses: HashMap<AddressKey, AddressCount>,
    pairs: HashMap<(AddressKey, String), PairCount>,
}

/// The per-address and per-(address, account) limits; one per server.
#[derive(Debug)]
pub struct LoginGuard {
    counts: Mutex<Counts>,
    /// Failures plus attempts in flight per address and window (`login_failures_per_ip`).
    budget: u32,
    /// Attempts in flight per address: a fifth of the budget, at least [`IN_FLIGHT_PER_ADDRESS`].
    in_flight: u32,
}

impl Default for LoginGuard {
    fn default() -> Self {
        LoginGuard::new(ADDRESS_BUDGET)
    }
}

/// An admitted attempt: counted in flight until [`Attempt::finish`] (or dropped, when the request
/// is cancelled mid-way, which counts as neither success nor failure).
#[must_use]
pub struct Attempt<'a> {
    guard: &'a LoginGuard,
    address: AddressKey,
    email: String,
    finished: bool,
}

impl LoginGuard {
    /// `budget` failed attempts per address and window ([`ADDRESS_BUDGET`] by default; behind a
    /// reverse proxy every client shares its address, so the budget is raised there).
    pub fn new(budget: u32) -> LoginGuard {
        let budget = budget.max(1);
        LoginGuard { counts: Mutex::default(), budget, in_flight: (budget / 5).max(IN_FLIGHT_PER_ADDRESS) }
    }

    fn lock(&self) -> MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admits an attempt on `email` from `ip` at `now`, or says when to come back.
    pub fn admit(&self, ip: Option<IpAddr>, email: &str, now: i64) -> Result<Attempt<'_>, RetryAfter> {
        let address = AddressKey::of(ip);
        let mut counts = self.lock();
        if counts.addresses.len() > SWEEP_ABOVE {
            counts.addresses.retain(|_, a| a.in_flight > 0 || now - a.window_start < WINDOW_SECS);
        }
        if counts.pairs.len() > SWEEP_ABOVE {
            counts.pairs.retain(|_, p| now - p.last_failure < WINDOW_SECS);
        }
        if let Some(pair) = counts.pairs.get(&(address, email.to_owned()))
            && let Some(until) = pause_end(pair)
            && now < until
        {
            return Err(RetryAfter(until - now));
        }
        let entry = counts.addresses.entry(address).or_default();
        if now - entry.window_start >= WINDOW_SECS {
            entry.window_start = now;
            entry.failures = 0;
        }
        if entry.failures + entry.in_flight >= self.budget {
            return Err(RetryAfter((entry.window_start + WINDOW_SECS - now).max(1)));
        }
        if entry.in_flight >= self.in_flight {
            return Err(RetryAfter(1));
        }
        entry.in_flight += 1;
        Ok(Attempt { guard: self, address, email: email.to_owned(), finished: false })
    }
}

/// When the pause after the pair's failures ends (`None`: no pause yet).
fn pause_end(pair: &PairCount) -> Option<i64> {
    let beyond = pair.failures.checked_sub(FREE_FAILURES)?.checked_sub(1)?;
    let pause = FIRST_PAUSE_SECS.saturating_mul(1_i64 << beyond.min(20)).min(WINDOW_SECS);
    Some(pair.last_failure + pause)
}

impl Attempt<'_> {
    /// Records the outcome: a failure counts against the address and the (address, account)
    /// pair; a success clears the pair.
    pub fn finish(mut self, succeeded: bool, now: i64) {
        self.finished = true;
        let mut counts = self.guard.lock();
        if let Some(a) = counts.addresses.get_mut(&self.address) {
            a.in_flight = a.in_flight.saturating_sub(1);
            if !succeeded {
                a.failures += 1;
            }
        }
        let key = (self.address, std::mem::take(&mut self.email));
        if succeeded {
            counts.pairs.remove(&key);
        } else {
            let pair = counts.pairs.entry(key).or_default();
            // A pair whose last failure is a window old starts afresh.
            if now - pair.last_failure >= WINDOW_SECS {
                pair.failures = 0;
            }
            pair.failures += 1;
            pair.last_failure = now;
        }
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if !self.finished
            && let Some(a) = self.guard.lock().addresses.get_mut(&self.address)
        {
            a.in_flight = a.in_flight.saturating_sub(1);
        }
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// Runs a password hash or verification on the hashing threads — one per core, started on first
/// use — and waits for its result. Argon2 allocates ≈ 19 MiB per computation and the allocator keeps
/// such memory per thread, so a fixed few threads (not the blocking pool's hundreds) bound the
/// memory as well as the CPU. At most [`MAX_WAITING`] jobs queue; a job whose caller gave up after
/// [`HASH_WAIT`] is skipped.
pub async fn run_hashing<T: Send + 'static>(job: impl FnOnce() -> T + Send + 'static) -> Result<T, Saturated> {
    static QUEUE: OnceLock<Option<std::sync::mpsc::SyncSender<Job>>> = OnceLock::new();
    let queue = QUEUE.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Job>(MAX_WAITING);
        let rx = std::sync::Arc::new(Mutex::new(rx));
        let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        for i in 0..threads {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new().name(format!("password-hash-{i}")).spawn(move || {
                loop {
                    // The lock is held only to take the next job, never while running one.
                    let next = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                    match next {
                        Ok(job) => {
                            job();
                            // glibc keeps the freed ≈ 19 MiB in this thread's arena (and fragments
                            // it): measured 420 MiB resident after 40 hashes on two threads. Hand it
                            // back so that resident memory stays at what runs now.
                            // SAFETY: malloc_trim only releases free memory of the allocator.
                            #[cfg(all(target_os = "linux", target_env = "gnu"))]
                            unsafe {
                                libc::malloc_trim(0);
                            }
                        }
                        Err(_) => return,
                    }
                }
            });
            if let Err(error) = spawned {
                tracing::error!(%error, "cannot start a password-hashing thread");
                return None;
            }
        }
        Some(tx)
    });
    let queue = queue.as_ref().ok_or(Saturated)?;
    let (done, result) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        if !done.is_closed() {
            let _ = done.send(job());
        }
    });
    queue.try_send(job).map_err(|_| Saturated)?;
    match tokio::time::timeout(HASH_WAIT, result).await {
        Ok(Ok(value)) => Ok(value),
        _ => Err(Saturated),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().expect("test address"))
    }

    #[test]
    fn ipv6_counts_by_its_64_and_mapped_ipv4_as_ipv4() {
        assert_eq!(AddressKey::of(ip("2001:db8:1:2::1")), AddressKey::of(ip("2001:db8:1:2:ffff::9")));
        assert_ne!(AddressKey::of(ip("2001:db8:1:2::1")), AddressKey::of(ip("2001:db8:1:3::1")));
        assert_eq!(AddressKey::of(ip("::ffff:192.0.2.7")), AddressKey::of(ip("192.0.2.7")));
    }

    #[test]
    fn an_address_is_cut_after_its_budget_and_only_that_address() {
        let guard = LoginGuard::default();
        for i in 0..ADDRESS_BUDGET {
            guard.admit(ip("192.0.2.1"), &format!("nobody{i}@x.it"), NOW).expect("within budget").finish(false, NOW);
        }
        let refused = guard.admit(ip("192.0.2.1"), "anna@comune.it", NOW + 10).err();
        assert_eq!(refused, Some(RetryAfter(WINDOW_SECS - 10)));
        guard.admit(ip("192.0.2.2"), "anna@comune.it", NOW + 10).expect("another address").finish(true, NOW);
        // A window later the address may try again.
        guard.admit(ip("192.0.2.1"), "anna@comune.it", NOW + WINDOW_SECS).expect("new window").finish(true, NOW);
    }

    #[test]
    fn a_raised_budget_scales_the_attempts_in_flight() {
        let guard = LoginGuard::new(200);
        let held: Vec<_> =
            (0..40).map(|i| guard.admit(ip("192.0.2.1"), &format!("u{i}@x.it"), NOW).expect("within")).collect();
        assert_eq!(guard.admit(ip("192.0.2.1"), "u@x.it", NOW).err(), Some(RetryAfter(1)));
        drop(held);
    }

    #[test]
    fn attempts_in_flight_count_and_successes_are_free() {
        let guard = LoginGuard::default();
        let held: Vec<_> = (0..IN_FLIGHT_PER_ADDRESS)
            .map(|i| guard.admit(ip("192.0.2.1"), &format!("u{i}@x.it"), NOW).expect("ok"))
            .collect();
        assert_eq!(guard.admit(ip("192.0.2.1"), "u@x.it", NOW).err(), Some(RetryAfter(1)), "a few at once");
        guard.admit(ip("192.0.2.2"), "u@x.it", NOW).expect("another address").finish(true, NOW);
        for attempt in held {
            attempt.finish(true, NOW);
        }
        for _ in 0..3 * ADDRESS_BUDGET {
            guard.admit(ip("192.0.2.1"), "u@x.it", NOW).expect("successes cost nothing").finish(true, NOW);
        }
        // A cancelled request gives its place back.
        drop(guard.admit(ip("192.0.2.1"), "u@x.it", NOW).expect("ok"));
        assert_eq!(guard.lock().addresses[&AddressKey::of(ip("192.0.2.1"))].in_flight, 0);
    }

    #[test]
    fn a_pair_pauses_with_backoff_and_never_locks_the_account_elsewhere() {
        let guard = LoginGuard::default();
        let mut now = NOW;
        for _ in 0..FREE_FAILURES {
            guard.admit(ip("192.0.2.9"), "admin@comune.it", now).expect("free failures").finish(false, now);
        }
        guard.admit(ip("192.0.2.9"), "admin@comune.it", now).expect("still free").finish(false, now);
        assert_eq!(guard.admit(ip("192.0.2.9"), "admin@comune.it", now + 1).err(), Some(RetryAfter(29)));
        now += FIRST_PAUSE_SECS;
        guard.admit(ip("192.0.2.9"), "admin@comune.it", now).expect("pause over").finish(false, now);
        assert_eq!(guard.admit(ip("192.0.2.9"), "admin@comune.it", now).err(), Some(RetryAfter(60)), "doubled");
        // The administrator, from their own address, is not affected at all.
        guard.admit(ip("198.51.100.4"), "admin@comune.it", now).expect("own address").finish(true, now);
        // Nor is another account from the attacker's address.
        guard.admit(ip("192.0.2.9"), "anna@comune.it", now).expect("other account").finish(true, now);
    }

    #[tokio::test]
    async fn hashing_runs_on_the_cores_threads_and_returns_results() {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        let names = futures_util::future::join_all(
            (0..4 * cores)
                .map(|i| run_hashing(move || (i, std::thread::current().name().unwrap_or_default().to_owned()))),
        )
        .await;
        for (i, result) in names.into_iter().enumerate() {
            let (j, name) = result.expect("ran");
            assert_eq!(i, j);
            assert!(name.starts_with("password-hash-"), "{name}");
        }
    }
}
