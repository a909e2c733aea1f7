//! What the senders of an outbox share (App IO's messages, `appio.rs`; the webhooks' deliveries,
//! `webhooks.rs`): a pass every so often claims the rows due now, each for a lease
//! (`store::outbox`), and sends each in a task of its own while a slot is free; a failed attempt
//! is tried again after the sender's table of delays, then given up.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;
use tracing::{Instrument, Span};

/// When to try again after failed attempt number `attempt` (1-based) with these `delays` between
/// attempts, or `None`: give up.
pub fn retry_at(delays: &[i64], attempt: i64, now: i64) -> Option<i64> {
    let index = usize::try_from(attempt.checked_sub(1)?).ok()?;
    delays.get(index).map(|delay| now.saturating_add(*delay))
}

/// A sender's HTTP client: no redirects (the receiver answers itself), no attempt longer than
/// `timeout`.
pub fn client(user_agent: &str, timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(user_agent)
        .build()
        .unwrap_or_default()
}

/// Attempts in flight at once, and how many more may start now.
pub struct Slots(Arc<Semaphore>);

impl Slots {
    pub fn new(in_flight: usize) -> Self {
        Slots(Arc::new(Semaphore::new(in_flight)))
    }

    /// How many rows a pass may claim.
    pub fn free(&self) -> i64 {
        i64::try_from(self.0.available_permits()).unwrap_or(0)
    }

    /// Starts `send` for each claimed row in a task of its own, in `span`, holding a slot until it
    /// ends; returns how many started. A row left without a slot waits for its lease to end.
    pub fn start<T, F, Fut>(&self, claimed: Vec<T>, span: impl Fn(&T) -> Span, send: F) -> usize
    where
        F: Fn(T) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let mut started = 0;
        for row in claimed {
            let Ok(slot) = self.0.clone().try_acquire_owned() else { break };
            let span = span(&row);
            let sending = send(row);
            tokio::spawn(
                async move {
                    sending.await;
                    drop(slot);
                }
                .instrument(span),
            );
            started += 1;
        }
        started
    }
}

/// The sender: runs `pass` every `period` (a late pass is not made up for) until `shutdown`.
pub fn every<F, Fut>(period: Duration, mut shutdown: watch::Receiver<bool>, mut pass: F) -> JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => pass().await,
                _ = shutdown.changed() => break,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_follow_the_delays_then_give_up() {
        let delays = [30, 120];
        assert_eq!(retry_at(&delays, 1, 1000), Some(1030));
        assert_eq!(retry_at(&delays, 2, 1000), Some(1120));
        assert_eq!(retry_at(&delays, 3, 1000), None, "three attempts, then given up");
        assert_eq!(retry_at(&delays, 0, 0), None);
    }

    #[tokio::test]
    async fn a_pass_starts_no_more_than_the_free_slots_and_frees_them_when_done() {
        let slots = Slots::new(2);
        let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
        let (release_tx, release_rx) = watch::channel(false);
        let started = slots.start(
            vec![1, 2, 3],
            |_| Span::none(),
            |n| {
                let (done, mut release) = (done_tx.clone(), release_rx.clone());
                async move {
                    let _ = release.wait_for(|r| *r).await;
                    let _ = done.send(n);
                }
            },
        );
        assert_eq!((started, slots.free()), (2, 0), "the third waits for a slot");
        let _ = release_tx.send(true);
        let mut finished = vec![done_rx.recv().await, done_rx.recv().await];
        finished.sort();
        assert_eq!(finished, vec![Some(1), Some(2)]);
        for _ in 0..100 {
            if slots.free() == 2 {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(slots.free(), 2, "both slots back");
    }
}
