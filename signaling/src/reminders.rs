//! Reminder emails: some time before a confirmed appointment (`config.reminder_lead`, 24 h by
//! default) the citizen gets the date, the join link and a one-click cancel link — cancelling a
//! meeting one cannot attend frees the slot and cuts no-shows.
//!
//! [`send_due_reminders`] is one pass (tests call it directly); [`spawn`] runs it every minute.
//! An appointment is marked reminded only after its email went out, so a failing mail server
//! means a retry on the next pass rather than a lost reminder.

use std::time::Duration;

use sportello_store::StoreError;
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::booking_mail::BookingMail;
use crate::links;
use crate::state::AppState;

const EVERY: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum ReminderError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Sends every reminder that is due now; returns how many went out.
pub async fn send_due_reminders(state: &AppState) -> Result<usize, ReminderError> {
    let now = state.clock.now();
    let lead = i64::try_from(state.config.reminder_lead.as_secs()).unwrap_or(i64::MAX);
    let due = state.store.due_reminders(now, lead).await?;
    let mut sent = 0;
    for appt in due {
        let span = tracing::info_span!("reminder", appointment = %appt.id);
        async {
            let (Some(office), Some(service)) =
                (state.store.office(&appt.office_id).await?, state.store.service(&appt.service_id).await?)
            else {
                tracing::error!("office or service of the appointment is missing");
                return Ok::<_, ReminderError>(());
            };
            let secret = match links::derived_secret(&state.tokens, &appt) {
                Ok(s) => s,
                Err(error) => {
                    tracing::error!(%error, "cannot derive the manage secret");
                    return Ok(());
                }
            };
            let join = links::video_join_link(state, &appt, now);
            let cancel = links::cancel_link(&state.config.public_url, &appt.code, &secret);
            let manage = links::manage_link(&state.config.public_url, &appt.code, &secret);
            let mail = BookingMail {
                appt: &appt,
                office: &office,
                service: &service,
                join_link: join.as_deref(),
                manage_link: Some(&manage),
                cancel_link: Some(&cancel),
            };
            match state.mailer.send(&mail.reminder()).await {
                Ok(()) => {
                    state.store.mark_reminded(&appt.id, now).await?;
                    sent += 1;
                }
                Err(error) => tracing::warn!(%error, "reminder not sent; retried on the next pass"),
            }
            Ok(())
        }
        .instrument(span)
        .await?;
    }
    Ok(sent)
}

/// Runs [`send_due_reminders`] every minute until the server shuts down.
pub fn spawn(state: AppState) -> JoinHandle<()> {
    let mut shutdown = state.shutdown.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    match send_due_reminders(&state).await {
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
