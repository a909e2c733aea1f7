//! The emails a citizen receives about a booking (confirmation, new time, cancellation, reminder)
//! and the `.ics` attached to them: plain text and HTML written from one content, Italian or
//! English (the booking's `lang`), from and signed by the municipality.

use sportello_domain::booking::{Lang, slot_label};
use sportello_domain::ics::{FeedEvent, FeedKind, Invite, appointment_message, feed};
use sportello_store::{Appointment, Mode, Office, Service};

use crate::mail::{Email, EmailAttachment};
use crate::settings::Municipality;
use crate::text::escape_html;
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
    /// The sender's name and the signature.
    pub municipality: &'a Municipality,
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

/// Labelled facts under a title (`None` for the first section).
type Section = (Option<&'static str>, Vec<(&'static str, String)>);

/// What an email says, once: the plain-text and the HTML part are both written from it.
struct Content {
    greeting: String,
    intro: String,
    /// Labelled facts in sections; a section's title is `None` for the first.
    sections: Vec<Section>,
    /// What to bring, as the office wrote it.
    bring: Option<(&'static str, String)>,
    /// A sentence and the link it leads to.
    links: Vec<(&'static str, String)>,
    footer: &'static str,
    /// The municipality, then the office.
    signature: Vec<String>,
}

impl BookingMail<'_> {
    fn lang(&self) -> Lang {
        lang_of(self.appt)
    }

    fn content(&self, intro: &str, extra_link: Option<(&'static str, String)>) -> Content {
        let (a, o, s, lang) = (self.appt, self.office, self.service, self.lang());
        let it = lang == Lang::It;
        let pick = |i: &'static str, e: &'static str| if it { i } else { e };
        let mut facts = vec![
            (pick("Codice prenotazione", "Booking code"), a.code.clone()),
            (pick("Ufficio", "Office"), o.name.clone()),
            (pick("Servizio", "Service"), s.name.clone()),
            (pick("Quando", "When"), when(a, lang)),
            (pick("Modalità", "How"), mode_label(a.mode, lang).to_owned()),
        ];
        if a.mode == Mode::InPerson {
            facts.push((pick("Indirizzo", "Address"), o.address.clone()));
        }
        facts.push((pick("Richiedente", "Name"), format!("{} {}", a.first_name, a.last_name)));
        let contacts = vec![
            ("Email", o.email.clone()),
            (pick("Telefono", "Phone"), o.phone.clone()),
            (pick("Indirizzo", "Address"), o.address.clone()),
        ];
        let keep = |rows: Vec<(&'static str, String)>| -> Vec<(&'static str, String)> {
            rows.into_iter().filter(|(_, v)| !v.trim().is_empty()).collect()
        };
        let mut links = Vec::new();
        if let Some(join) = self.join_link {
            links.push((
                pick(
                    "Per entrare nella videochiamata apri questo link (la sala d'attesa apre 15 minuti prima):",
                    "To join the video call open this link (the waiting room opens 15 minutes before):",
                ),
                join.to_owned(),
            ));
        }
        if let Some(cancel) = self.cancel_link {
            links.push((
                pick("Non puoi più venire? Annulla con un clic:", "Cannot make it? Cancel with one click:"),
                cancel.to_owned(),
            ));
        }
        if let Some(manage) = self.manage_link {
            links.push((
                pick("Per vedere, spostare o annullare l'appuntamento:", "To view, move or cancel the appointment:"),
                manage.to_owned(),
            ));
        }
        links.extend(extra_link);
        let m = self.municipality;
        let signature =
            [m.name.clone(), o.name.clone(), m.website.clone()].into_iter().filter(|l| !l.trim().is_empty()).collect();
        Content {
            greeting: match lang {
                Lang::It => format!("Gentile {} {},", a.first_name, a.last_name),
                Lang::En => format!("Dear {} {},", a.first_name, a.last_name),
            },
            intro: intro.to_owned(),
            sections: vec![
                (None, keep(facts)),
                (Some(pick("Contatti dell'ufficio", "Office contacts")), keep(contacts)),
            ],
            bring: Some(s.what_to_bring.trim())
                .filter(|b| !b.is_empty())
                .map(|b| (pick("Cosa serve", "What to bring"), b.to_owned())),
            links,
            footer: pick(
                "Questo messaggio è stato inviato automaticamente: per domande scrivi all'ufficio.",
                "This message was sent automatically: please write to the office with any questions.",
            ),
            signature,
        }
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

    fn email(&self, subject: String, content: Content, ics: Option<EmailAttachment>) -> Email {
        Email {
            to: self.appt.email.clone(),
            subject,
            text: content.text(),
            html: Some(content.html(self.lang(), &self.municipality.name)),
            sender_name: Some(self.municipality.name.clone()),
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
        self.email(subject, self.content(intro, None), Some(self.ics_attachment(now, 0, false)))
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
        self.email(subject, self.content(intro, None), Some(self.ics_attachment(now, sequence, false)))
    }

    /// `sequence` as for [`BookingMail::rescheduled`]; `book_again` opens the booking of the same
    /// service. The attached `.ics` removes the entry from the citizen's calendar.
    pub fn cancellation(&self, now: i64, sequence: u32, book_again: &str) -> Email {
        let (subject, intro, again) = match self.lang() {
            Lang::It => (
                format!("Appuntamento annullato – {} ({})", self.service.name, self.appt.code),
                "il tuo appuntamento è stato annullato; l'allegato lo toglie dal tuo calendario.",
                "Se ti serve ancora, prenotane uno nuovo qui:",
            ),
            Lang::En => (
                format!("Appointment cancelled – {} ({})", self.service.name, self.appt.code),
                "your appointment was cancelled; the attachment removes it from your calendar.",
                "If you still need it, book a new one here:",
            ),
        };
        let content = self.content(intro, Some((again, book_again.to_owned())));
        self.email(subject, content, Some(self.ics_attachment(now, sequence, true)))
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
        self.email(subject, self.content(intro, None), None)
    }
}

impl Content {
    fn text(&self) -> String {
        let mut out = format!("{}\n\n{}\n\n", self.greeting, self.intro);
        for (at, (title, rows)) in self.sections.iter().enumerate() {
            if rows.is_empty() {
                continue;
            }
            if let Some(title) = title {
                out.push_str(&format!("\n{title}:\n"));
            }
            for (label, value) in rows {
                out.push_str(&format!("{label}: {value}\n"));
            }
            if at == 0
                && let Some((label, bring)) = &self.bring
            {
                out.push_str(&format!("\n{label}:\n{bring}\n"));
            }
        }
        for (lead, url) in &self.links {
            out.push_str(&format!("\n{lead}\n{url}\n"));
        }
        out.push_str(&format!("\n{}\n", self.footer));
        if !self.signature.is_empty() {
            out.push_str(&format!("\n-- \n{}\n", self.signature.join("\n")));
        }
        out
    }

    /// A simple, single-column HTML body: readable in every client, no image, no remote
    /// resource, styles inline (mail clients drop `<style>`), the links as words and as addresses.
    fn html(&self, lang: Lang, municipality: &str) -> String {
        let e = escape_html;
        let tag = match lang {
            Lang::It => "it",
            Lang::En => "en",
        };
        let mut out = format!(
            "<!doctype html>\n<html lang=\"{tag}\">\n<head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"><title>{}</title></head>\n\
             <body style=\"margin:0;padding:0;background:#f5f5f5;font-family:'Titillium Web',Arial,sans-serif;color:#1a1a1a;font-size:16px;line-height:1.5\">\n\
             <div style=\"max-width:600px;margin:0 auto;background:#ffffff\">\n\
             <div style=\"background:#0066cc;color:#ffffff;padding:16px 24px;font-size:20px;font-weight:bold\">{}</div>\n\
             <div style=\"padding:24px\">\n<p>{}</p>\n<p>{}</p>\n",
            e(municipality),
            e(municipality),
            e(&self.greeting),
            e(&self.intro)
        );
        for (at, (title, rows)) in self.sections.iter().enumerate() {
            if rows.is_empty() {
                continue;
            }
            if let Some(title) = title {
                out.push_str(&format!("<h2 style=\"font-size:18px;margin:24px 0 8px\">{}</h2>\n", e(title)));
            }
            out.push_str("<table role=\"presentation\" style=\"border-collapse:collapse;width:100%\">\n");
            for (label, value) in rows {
                out.push_str(&format!(
                    "<tr><th scope=\"row\" style=\"text-align:left;padding:4px 12px 4px 0;vertical-align:top;font-weight:600;white-space:nowrap\">{}</th><td style=\"padding:4px 0\">{}</td></tr>\n",
                    e(label),
                    e(value)
                ));
            }
            out.push_str("</table>\n");
            if at == 0
                && let Some((label, bring)) = &self.bring
            {
                out.push_str(&format!(
                        "<h2 style=\"font-size:18px;margin:24px 0 8px\">{}</h2>\n<p style=\"white-space:pre-line\">{}</p>\n",
                        e(label),
                        e(bring)
                    ));
            }
        }
        for (lead, url) in &self.links {
            out.push_str(&format!(
                "<p style=\"margin-top:24px\">{}<br><a href=\"{}\" style=\"color:#0066cc;font-weight:600;word-break:break-all\">{}</a></p>\n",
                e(lead),
                e(url),
                e(url)
            ));
        }
        out.push_str(&format!("<p style=\"margin-top:32px;color:#5c6f82;font-size:14px\">{}</p>\n", e(self.footer)));
        if !self.signature.is_empty() {
            let lines: Vec<String> = self.signature.iter().map(|l| e(l)).collect();
            out.push_str(&format!(
                "<p style=\"border-top:1px solid #d9dadb;padding-top:16px\">{}</p>\n",
                lines.join("<br>")
            ));
        }
        out.push_str("</div>\n</div>\n</body>\n</html>\n");
        out
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
