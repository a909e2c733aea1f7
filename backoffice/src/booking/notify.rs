//! The citizen's booking emails, built and sent in one place: which links each one carries (join,
//! manage, one-click cancel, book again), the [`BookingMail`] and the send. The booking stands
//! whether or not its email goes out (the page shows everything), so [`notify`] logs a failed send;
//! the reminder pass uses [`deliver`] and retries instead. The confirmation is the one email whose
//! delivery is recorded ([`confirm`]): it is sent after the booking commits, so when the process
//! dies in between or the mail server refuses it, the reminder pass sends it later
//! ([`send_unsent_confirmations`]) — a confirmed booking is never left without its email.

use sportello_store::{AppioKind, Appointment, Office, Service, StoreError};
use tracing::Instrument;

use crate::booking_mail::BookingMail;
use crate::context::BackOffice;
use crate::mail::MailError;
use crate::settings::Municipality;
use crate::{links, once};

/// Which email, with the manage secret the links open the booking with.
#[derive(Clone, Copy)]
pub enum Notice<'a> {
    Confirmation {
        secret: &'a str,
    },
    Rescheduled {
        secret: &'a str,
    },
    /// By the citizen or by the office: no join or manage link, a link to book again.
    Cancellation,
    /// Also carries the one-click cancel link.
    Reminder {
        secret: &'a str,
    },
}

impl Notice<'_> {
    fn what(self) -> &'static str {
        match self {
            Notice::Confirmation { .. } => "confirmation",
            Notice::Rescheduled { .. } => "rescheduled",
            Notice::Cancellation => "cancellation",
            Notice::Reminder { .. } => "reminder",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Mail(#[from] MailError),
}

/// Builds the notice's links and email and sends it.
pub async fn deliver(
    back: &BackOffice,
    notice: Notice<'_>,
    appt: &Appointment,
    office: &Office,
    service: &Service,
    now: i64,
) -> Result<(), NotifyError> {
    let (secret, one_click_cancel) = match notice {
        Notice::Confirmation { secret } | Notice::Rescheduled { secret } => (Some(secret), false),
        Notice::Reminder { secret } => (Some(secret), true),
        Notice::Cancellation => (None, false),
    };
    let join = secret.and_then(|_| links::video_join_link(back, appt, now));
    let manage = secret.map(|s| links::manage_link(&back.public_url, &appt.code, s));
    let cancel = secret.filter(|_| one_click_cancel).map(|s| links::cancel_link(&back.public_url, &appt.code, s));
    let municipality = Municipality::load(&back.store).await?;
    let mail = BookingMail {
        municipality: &municipality,
        appt,
        office,
        service,
        join_link: join.as_deref(),
        manage_link: manage.as_deref(),
        cancel_link: cancel.as_deref(),
    };
    let email = match notice {
        Notice::Confirmation { .. } => mail.confirmation(now),
        Notice::Rescheduled { .. } => mail.rescheduled(now, back.store.calendar_sequence(&appt.id).await?),
        Notice::Cancellation => {
            let sequence = back.store.calendar_sequence(&appt.id).await?;
            mail.cancellation(now, sequence, &links::book_again_link(&back.public_url, &service.id))
        }
        Notice::Reminder { .. } => mail.reminder(),
    };
    back.mailer.send(&email).await?;
    Ok(())
}

/// [`deliver`], with a failed send logged rather than returned: the change it tells of is made.
pub async fn notify(
    back: &BackOffice,
    notice: Notice<'_>,
    appt: &Appointment,
    office: &Office,
    service: &Service,
    now: i64,
) -> Result<(), StoreError> {
    let sent = match deliver(back, notice, appt, office, service, now).await {
        Ok(()) => Ok(()),
        Err(NotifyError::Mail(error)) => {
            tracing::error!(%error, what = notice.what(), "booking email not sent");
            Ok(())
        }
        Err(NotifyError::Store(error)) => Err(error),
    };
    // The same news in App IO, for a citizen who chose it (queued; never fails the change).
    let kind = match notice {
        Notice::Rescheduled { .. } => Some(AppioKind::Moved),
        Notice::Cancellation => Some(AppioKind::Cancelled),
        Notice::Confirmation { .. } | Notice::Reminder { .. } => None,
    };
    if let Some(kind) = kind {
        crate::appio::notify(back, kind, appt, office, service, now).await;
    }
    sent
}

/// Sends the confirmation of a booking just made and records that it went out; a failed send is
/// logged and left to [`send_unsent_confirmations`].
pub async fn confirm(
    back: &BackOffice,
    secret: &str,
    appt: &Appointment,
    office: &Office,
    service: &Service,
    now: i64,
) -> Result<(), StoreError> {
    match deliver(back, Notice::Confirmation { secret }, appt, office, service, now).await {
        Ok(()) => {
            if let Err(error) = back.store.mark_confirmation_sent(&appt.id, now).await {
                // Sent: at worst the pass sends it a second time.
                tracing::error!(%error, "cannot record that the confirmation went out");
            }
            Ok(())
        }
        Err(NotifyError::Mail(error)) => {
            tracing::error!(%error, "booking confirmation not sent; the reminder pass retries it");
            Ok(())
        }
        Err(NotifyError::Store(error)) => Err(error),
    }
}

/// Booking requests younger than this may still be sending their own confirmation.
const CONFIRMATION_GRACE_SECS: i64 = 120;

/// Sends the confirmations that did not go out at booking (the process died after the commit, or
/// the mail server refused), with the manage link's derived secret since the booking's own is only
/// stored hashed; returns how many went out. A failed send is tried again on the next pass.
pub async fn send_unsent_confirmations(back: &BackOffice) -> Result<usize, StoreError> {
    let now = back.clock.now();
    let mut sent = 0;
    for appt in back.store.unsent_confirmations(now - CONFIRMATION_GRACE_SECS, now).await? {
        let span = tracing::info_span!("confirmation", appointment = %appt.id);
        let lease = format!("confirmation:{}", appt.id);
        if !once::take(back, &lease, once::ITEM).await? {
            continue; // another node is sending it
        }
        // Read again under the lease: another node may have sent it since the list was read.
        if !back.store.confirmation_unsent(&appt.id).await? {
            once::release(back, &lease).await?;
            continue;
        }
        let went_out = async {
            let (Some(office), Some(service)) =
                (back.store.office(&appt.office_id).await?, back.store.service(&appt.service_id).await?)
            else {
                tracing::error!("office or service of the appointment is missing");
                return Ok(false);
            };
            let secret = match links::derived_secret(&back.tokens, &appt) {
                Ok(s) => s,
                Err(error) => {
                    tracing::error!(%error, "cannot derive the manage secret");
                    return Ok(false);
                }
            };
            match deliver(back, Notice::Confirmation { secret: &secret }, &appt, &office, &service, now).await {
                Ok(()) => {
                    back.store.mark_confirmation_sent(&appt.id, now).await?;
                    tracing::info!("booking confirmation sent late");
                    Ok(true)
                }
                Err(NotifyError::Store(error)) => Err(error),
                Err(NotifyError::Mail(error)) => {
                    tracing::warn!(%error, "confirmation not sent; retried on the next pass");
                    Ok(false)
                }
            }
        }
        .instrument(span)
        .await?;
        once::release(back, &lease).await?;
        sent += usize::from(went_out);
    }
    Ok(sent)
}
