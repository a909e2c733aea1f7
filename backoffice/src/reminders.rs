//! Reminder emails: some time before a confirmed appointment (`config.reminder_lead`, 24 h by
//! default) the citizen gets the date, the join link and a one-click cancel link — cancelling a
//! meeting one cannot attend frees the slot and cuts no-shows.
//!
//! [`send_due_reminders`] is one pass (tests call it directly); [`spawn`] runs it every minute,
//! after the pass that sends booking confirmations which did not go out at booking
//! (`booking::notify::send_unsent_confirmations`).
//! An appointment is marked reminded only after its email went out, so a failing mail server
//! means a retry on the next pass rather than a lost reminder. With several nodes, each reminder
//! is sent by the node that takes its lease (`reminder:<id>`, [`once`]).

use std::time::Duration;

use sportello_store::{AppioKind, Status, StoreError};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::booking::notify::{Notice, NotifyError, deliver};
use crate::context::BackOffice;
use crate::{links, once};

const EVERY: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum ReminderError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Sends every reminder that is due now; returns how many went out.
pub async fn send_due_reminders(back: &BackOffice, lead: Duration) -> Result<usize, ReminderError> {
    let now = back.clock.now();
    let lead = i64::try_from(lead.as_secs()).unwrap_or(i64::MAX);
    let due = back.store.due_reminders(now, lead).await?;
    let mut sent = 0;
    for appt in due {
        let span = tracing::info_span!("reminder", appointment = %appt.id);
        let lease = format!("reminder:{}", appt.id);
        if !once::take(back, &lease, once::ITEM).await? {
            continue; // another node is sending it
        }
        // Read again under the lease: another node may have sent it since the list was read.
        let appt = match back.store.appointment(&appt.id).await? {
            Some(a) if a.status == Status::Confirmed && a.reminder_sent_at.is_none() => a,
            _ => {
                once::release(back, &lease).await?;
                continue;
            }
        };
        async {
            let (Some(office), Some(service)) =
                (back.store.office(&appt.office_id).await?, back.store.service(&appt.service_id).await?)
            else {
                tracing::error!("office or service of the appointment is missing");
                return Ok::<_, ReminderError>(());
            };
            let secret = match links::derived_secret(&back.tokens, &appt) {
                Ok(s) => s,
                Err(error) => {
                    tracing::error!(%error, "cannot derive the manage secret");
                    return Ok(());
                }
            };
            match deliver(back, Notice::Reminder { secret: &secret }, &appt, &office, &service, now).await {
                Ok(()) => {
                    back.store.mark_reminded(&appt.id, now).await?;
                    sent += 1;
                    // Once per reminder, like the email: queued only after it is marked sent.
                    crate::appio::notify(back, AppioKind::Reminder, &appt, &office, &service, now).await;
                }
                Err(NotifyError::Store(error)) => return Err(error.into()),
                Err(NotifyError::Mail(error)) => tracing::warn!(%error, "reminder not sent; retried on the next pass"),
            }
            Ok(())
        }
        .instrument(span)
        .await?;
        // Sent and marked (no longer due), or failed and free for any node's next pass.
        once::release(back, &lease).await?;
    }
    Ok(sent)
}

/// Runs [`send_due_reminders`] every minute until the server shuts down.
pub fn spawn(back: BackOffice, lead: Duration, mut shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    // Before the reminders: a booking's confirmation comes first.
                    if let Err(error) = crate::booking::notify::send_unsent_confirmations(&back).await {
                        tracing::error!(%error, "confirmation pass failed");
                    }
                    match send_due_reminders(&back, lead).await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(sent = n, "reminders sent"),
                        Err(error) => tracing::error!(%error, "reminder pass failed"),
                    }
                }
                _ = shutdown.changed() => break,
            }
        }
    })
}
