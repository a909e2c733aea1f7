//! The citizen's booking emails, built and sent in one place: which links each one carries (join,
//! manage, one-click cancel, book again), the [`BookingMail`] and the send. The booking stands
//! whether or not its email goes out (the page shows everything), so [`notify`] logs a failed send;
//! the reminder pass uses [`deliver`] and retries instead.

use sportello_store::{Appointment, Office, Service, StoreError};

use crate::booking_mail::BookingMail;
use crate::context::BackOffice;
use crate::links;
use crate::mail::MailError;

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
    let mail = BookingMail {
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
    match deliver(back, notice, appt, office, service, now).await {
        Ok(()) => Ok(()),
        Err(NotifyError::Mail(error)) => {
            tracing::error!(%error, what = notice.what(), "booking email not sent");
            Ok(())
        }
        Err(NotifyError::Store(error)) => Err(error),
    }
}
