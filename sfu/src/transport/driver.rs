//! What drives the sans-IO [`Engine`](crate::transport::engine::Engine): something that owns the
//! socket and the clock, hands the engine commands, datagrams and `now`, sends what it flushed and
//! sleeps until its next deadline.
//!
//! - [`udp`]: production — a thread per engine, each with its own socket on the one UDP port, read
//!   and written in batches (`recvmmsg`/`sendmmsg`), the real clock.
//! - `memory` (tests): datagrams in queues and a clock the test advances, so engine tests need no
//!   socket and do not wait for real time.

#[cfg(test)]
pub mod memory;
pub(crate) mod tcp;
pub mod udp;
