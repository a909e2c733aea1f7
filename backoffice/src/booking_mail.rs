//! The emails a citizen receives about a booking (confirmation, new time, cancellation, reminder)
//! and the `.ics` attached to them. Plain text, Italian or English (the booking's `lang`).

use sportello_domain::booking::{Lang, slot_label};
use sportello_domain::ics::{FeedEvent, FeedKind, Invite, appointment_message, feed};
use sportello_store::{Appointment, Mode, Office, Service};

use crate::mail::{Email, EmailAttachment};
use crate::time::{rome, ts};

/// What every booking email talks about.
pub struct BookingMail<'a> {
    pub appt: &'a Appointment,
    pub office: &'a Office,
    pub service: &'a Service,
    /// `<public_url>/a/<token>`, for video appointments.
    pub join_link: Option<&'a str>,
    /// Review, cancel or move; `None` in the cancellation email.
    pub manage_link: Option<&'a str>,
    /// The reminder's one-click cancel.
    pub cancel_link: Option<&'a str>,
}

pub fn lang_of(appt: &Appointment) -> Lang {
    Lang::from_tag(&appt.lang)
}

/// "giovedì 11 marzo 2027, ore 10:00–10:30".
pub fn when(appt: &Appointment, lang: Lang) -> String {
    let end = rome().to_datetime(ts(appt.ends_at)).time().strftime("%H:%M").to_string();
    format!("{}–{end}", slot_label(ts(appt.starts_at), &rome(), lang))
}

pub fn mode_label(mode: Mode, lang: Lang) -> &'static str {
    match (mode, lang) {
        (Mode::Video, Lang::It) => "videochiamata (dal browser, senza installare nulla)",
        (Mode::Video, Lang::En) => "video call (in the browser, nothing to install)",
        (Mode::InPerson, Lang::It) => "in presenza, presso l'ufficio",
        (Mode::InPerson, Lang::En) => "in person, at the office",
    }
}

impl BookingMail<'_> {
    fn lang(&self) -> Lang {
        lang_of(self.appt)
    }

    fn facts(&self) -> String {
        let (a, o, s) = (self.appt, self.office, self.service);
        let mut out = String::new();
        let line = |out: &mut String, label: &str, value: &str| {
            if !value.trim().is_empty() {
                out.push_str(&format!("{label}: {value}\n"));
            }
        };
        match self.lang() {
            Lang::It => {
                line(&mut out, "Codice prenotazione", &a.code);
                line(&mut out, "Ufficio", &o.name);
                line(&mut out, "Servizio", &s.name);
                line(&mut out, "Quando", &when(a, Lang::It));
                line(&mut out, "Modalità", mode_label(a.mode, Lang::It));
                if a.mode == Mode::InPerson {
                    line(&mut out, "Indirizzo", &o.address);
                }
                line(&mut out, "Richiedente", &format!("{} {}", a.first_name, a.last_name));
                if !s.what_to_bring.trim().is_empty() {
                    out.push_str(&format!("\nCosa serve:\n{}\n", s.what_to_bring.trim()));
                }
                out.push_str("\nContatti dell'ufficio:\n");
                line(&mut out, "Email", &o.email);
                line(&mut out, "Telefono", &o.phone);
                line(&mut out, "Indirizzo", &o.address);
            }
            Lang::En => {
                line(&mut out, "Booking code", &a.code);
                line(&mut out, "Office", &o.name);
                line(&mut out, "Service", &s.name);
                line(&mut out, "When", &when(a, Lang::En));
                line(&mut out, "How", mode_label(a.mode, Lang::En));
                if a.mode == Mode::InPerson {
                    line(&mut out, "Address", &o.address);
                }
                line(&mut out, "Name", &format!("{} {}", a.first_name, a.last_name));
                if !s.what_to_bring.trim().is_empty() {
                    out.push_str(&format!("\nWhat to bring:\n{}\n", s.what_to_bring.trim()));
                }
                out.push_str("\nOffice contacts:\n");
                line(&mut out, "Email", &o.email);
                line(&mut out, "Phone", &o.phone);
                line(&mut out, "Address", &o.address);
            }
        }
        out
    }

    fn links(&self) -> String {
        let mut out = String::new();
        match self.lang() {
            Lang::It => {
                if let Some(join) = self.join_link {
                    out.push_str(&format!(
                        "\nPer entrare nella videochiamata apri questo link (la sala d'attesa apre 15 minuti prima):\n{join}\n"
                    ));
                }
                if let Some(cancel) = self.cancel_link {
                    out.push_str(&format!("\nNon puoi più venire? Annulla con un clic:\n{cancel}\n"));
                }
                if let Some(manage) = self.manage_link {
                    out.push_str(&format!("\nPer vedere, spostare o annullare l'appuntamento:\n{manage}\n"));
                }
            }
            Lang::En => {
                if let Some(join) = self.join_link {
                    out.push_str(&format!(
                        "\nTo join the video call open this link (the waiting room opens 15 minutes before):\n{join}\n"
                    ));
                }
                if let Some(cancel) = self.cancel_link {
                    out.push_str(&format!("\nCannot make it? Cancel with one click:\n{cancel}\n"));
                }
                if let Some(manage) = self.manage_link {
                    out.push_str(&format!("\nTo view, move or cancel the appointment:\n{manage}\n"));
                }
            }
        }
        out
    }

    /// The `.ics` that adds (`sequence` 0), updates (a move) or removes (`cancelled`) the entry in
    /// the citizen's calendar: one UID per appointment, `SEQUENCE` = changes so far.
    fn ics_attachment(&self, now: i64, sequence: u32, cancelled: bool) -> EmailAttachment {
        let (a, o) = (self.appt, self.office);
        let attendee = format!("{} {}", a.first_name, a.last_name);
        let invite = Invite {
            organizer_name: &o.name,
            organizer_email: &o.email,
            attendee_name: &attendee,
            attendee_email: &a.email,
            sequence,
            cancelled,
        };
        let method = if cancelled { "CANCEL" } else { "PUBLISH" };
        let event = appointment_event(a, o, self.service, self.join_link);
        EmailAttachment {
            file_name: "appuntamento.ics".into(),
            content_type: format!("text/calendar; charset=utf-8; method={method}"),
            bytes: appointment_message(&event, ts(now), &invite).into_bytes(),
        }
    }

    fn email(&self, subject: String, intro: &str, ics: Option<EmailAttachment>) -> Email {
        let footer = match self.lang() {
            Lang::It => "\nQuesto messaggio è stato inviato automaticamente: per domande scrivi all'ufficio.\n",
            Lang::En => "\nThis message was sent automatically: please write to the office with any questions.\n",
        };
        let greeting = match self.lang() {
            Lang::It => format!("Gentile {} {},\n\n", self.appt.first_name, self.appt.last_name),
            Lang::En => format!("Dear {} {},\n\n", self.appt.first_name, self.appt.last_name),
        };
        Email {
            to: self.appt.email.clone(),
            subject,
            text: format!("{greeting}{intro}\n\n{}{}{footer}", self.facts(), self.links()),
            attachments: ics.into_iter().collect(),
        }
    }

    pub fn confirmation(&self, now: i64) -> Email {
        let (subject, intro) = match self.lang() {
            Lang::It => (
                format!("Appuntamento confermato – {} ({})", self.service.name, self.appt.code),
                "il tuo appuntamento è confermato. Trovi qui il riepilogo; in allegato l'evento da aggiungere al calendario.",
            ),
            Lang::En => (
                format!("Appointment confirmed – {} ({})", self.service.name, self.appt.code),
                "your appointment is confirmed. Here is the summary; the attached event adds it to your calendar.",
            ),
        };
        self.email(subject, intro, Some(self.ics_attachment(now, 0, false)))
    }

    /// `sequence`: the appointment's changes so far, this move included
    /// (`Store::calendar_sequence`).
    pub fn rescheduled(&self, now: i64, sequence: u32) -> Email {
        let (subject, intro) = match self.lang() {
            Lang::It => (
                format!("Appuntamento spostato – {} ({})", self.service.name, self.appt.code),
                "il tuo appuntamento è stato spostato al nuovo orario qui sotto. Il link della videochiamata è cambiato: usa quello di questa email.",
            ),
            Lang::En => (
                format!("Appointment moved – {} ({})", self.service.name, self.appt.code),
                "your appointment was moved to the new time below. The video call link changed: use the one in this email.",
            ),
        };
        self.email(subject, intro, Some(self.ics_attachment(now, sequence, false)))
    }

    /// `sequence` as for [`BookingMail::rescheduled`]; `book_again` opens the booking of the same
    /// service. The attached `.ics` removes the entry from the citizen's calendar.
    pub fn cancellation(&self, now: i64, sequence: u32, book_again: &str) -> Email {
        let (subject, intro) = match self.lang() {
            Lang::It => (
                format!("Appuntamento annullato – {} ({})", self.service.name, self.appt.code),
                format!(
                    "il tuo appuntamento è stato annullato; l'allegato lo toglie dal tuo calendario. \
                     Se ti serve ancora, prenotane uno nuovo qui:\n{book_again}"
                ),
            ),
            Lang::En => (
                format!("Appointment cancelled – {} ({})", self.service.name, self.appt.code),
                format!(
                    "your appointment was cancelled; the attachment removes it from your calendar. \
                     If you still need it, book a new one here:\n{book_again}"
                ),
            ),
        };
        self.email(subject, &intro, Some(self.ics_attachment(now, sequence, true)))
    }

    pub fn reminder(&self) -> Email {
        let (subject, intro) = match self.lang() {
            Lang::It => (
                format!("Promemoria: {} – {}", self.service.name, when(self.appt, Lang::It)),
                "ti ricordiamo il tuo appuntamento. Se non puoi più partecipare, annullalo: l'orario tornerà libero per altri cittadini.",
            ),
            Lang::En => (
                format!("Reminder: {} – {}", self.service.name, when(self.appt, Lang::En)),
                "this is a reminder of your appointment. If you can no longer attend, please cancel it so that someone else can have the time.",
            ),
        };
        self.email(subject, intro, None)
    }
}

/// The appointment as a one-event calendar (the `.ics` download of the manage page).
pub fn appointment_ics(
    appt: &Appointment,
    office: &Office,
    service: &Service,
    join_link: Option<&str>,
    now: i64,
) -> String {
    feed("Sportello", ts(now), &[appointment_event(appt, office, service, join_link)])
}

/// One VEVENT for the appointment: UID stable per appointment (a moved appointment updates the
/// calendar entry instead of adding one), DTSTART/DTEND in UTC, the office as LOCATION and the
/// join link in the DESCRIPTION.
fn appointment_event(appt: &Appointment, office: &Office, service: &Service, join_link: Option<&str>) -> FeedEvent {
    let lang = lang_of(appt);
    let summary = format!("{} – {}", service.name, office.name);
    let location = match appt.mode {
        Mode::InPerson if !office.address.is_empty() => Some(format!("{} – {}", office.name, office.address)),
        Mode::InPerson => Some(office.name.clone()),
        Mode::Video => Some(match lang {
            Lang::It => "Videochiamata".to_owned(),
            Lang::En => "Video call".to_owned(),
        }),
    };
    let mut description = match lang {
        Lang::It => format!("Codice prenotazione: {}", appt.code),
        Lang::En => format!("Booking code: {}", appt.code),
    };
    if let Some(link) = join_link {
        description.push_str(&match lang {
            Lang::It => format!("\nLink per la videochiamata: {link}"),
            Lang::En => format!("\nVideo call link: {link}"),
        });
    }
    if !service.what_to_bring.trim().is_empty() {
        description.push_str(&match lang {
            Lang::It => format!("\nCosa serve: {}", service.what_to_bring.trim()),
            Lang::En => format!("\nWhat to bring: {}", service.what_to_bring.trim()),
        });
    }
    FeedEvent {
        uid: format!("appt-{}@sportello", appt.id),
        start: ts(appt.starts_at),
        end: ts(appt.ends_at),
        summary,
        location,
        description: Some(description),
        kind: FeedKind::Appointment,
    }
}
