//! Outgoing email. SMTP when `smtp_url` is configured; otherwise every message is written as an
//! `.eml` file into `<data_dir>/outbox`, so a fresh installation shows what it would have sent
//! without a mail server (and tests read exactly what a citizen would receive). The outbox is
//! private (0700, files 0600): its emails carry manage secrets and join links.

use std::path::{Path, PathBuf};

use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::AsyncSmtpTransport;
use lettre::{AsyncTransport, Message, Tokio1Executor};

/// One email: plain text (every client reads it), optionally the same in HTML (sent as
/// `multipart/alternative`, the HTML last as the richer), plus attachments such as the `.ics`.
#[derive(Debug, Clone, Default)]
pub struct Email {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
    /// The From's display name (the municipality's); the address stays the configured one.
    pub sender_name: Option<String>,
    pub attachments: Vec<EmailAttachment>,
}

#[derive(Debug, Clone)]
pub struct EmailAttachment {
    pub file_name: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("invalid address {0:?}")]
    Address(String),
    #[error("invalid SMTP URL: {0}")]
    SmtpUrl(String),
    #[error("cannot create the outbox {path}: {source}")]
    Outbox { path: PathBuf, source: std::io::Error },
    #[error("cannot build the message: {0}")]
    Build(String),
    #[error("cannot send: {0}")]
    Send(String),
}

#[derive(Clone)]
enum Transport {
    /// `<id>.eml` files in this folder.
    Outbox(PathBuf),
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

/// Sends [`Email`]s. Cheap to clone.
#[derive(Clone)]
pub struct Mailer {
    from: Mailbox,
    transport: Transport,
    outbox: Option<PathBuf>,
}

impl Mailer {
    /// SMTP when `smtp_url` is set, else the outbox folder under `data_dir`.
    pub fn new(smtp_url: Option<&str>, from: &str, data_dir: &Path) -> Result<Mailer, MailError> {
        let from: Mailbox = from.parse().map_err(|_| MailError::Address(from.to_owned()))?;
        match smtp_url {
            Some(url) => {
                let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map_err(|e| MailError::SmtpUrl(e.to_string()))?
                    .build();
                Ok(Mailer { from, transport: Transport::Smtp(transport), outbox: None })
            }
            None => {
                let path = data_dir.join("outbox");
                crate::private::create_dir(&path).map_err(|source| MailError::Outbox { path: path.clone(), source })?;
                Ok(Mailer { from, transport: Transport::Outbox(path.clone()), outbox: Some(path) })
            }
        }
    }

    /// The outbox folder, when mail goes there.
    pub fn outbox(&self) -> Option<&Path> {
        self.outbox.as_deref()
    }

    /// Sends (or writes) one email, counted in `sportello_emails_sent_total` or `_failed_total`.
    pub async fn send(&self, email: &Email) -> Result<(), MailError> {
        let sent = self.deliver(email).await;
        match &sent {
            Ok(()) => metrics::counter!("sportello_emails_sent_total").increment(1),
            Err(_) => metrics::counter!("sportello_emails_failed_total").increment(1),
        }
        sent
    }

    async fn deliver(&self, email: &Email) -> Result<(), MailError> {
        let to: Mailbox = email.to.parse().map_err(|_| MailError::Address(email.to.clone()))?;
        let text = SinglePart::builder().header(ContentType::TEXT_PLAIN).body(email.text.clone());
        let mut body = match &email.html {
            Some(html) => MultiPart::mixed().multipart(
                MultiPart::alternative()
                    .singlepart(text)
                    .singlepart(SinglePart::builder().header(ContentType::TEXT_HTML).body(html.clone())),
            ),
            None => MultiPart::mixed().singlepart(text),
        };
        for a in &email.attachments {
            let content_type = ContentType::parse(&a.content_type).map_err(|e| MailError::Build(e.to_string()))?;
            body = body.singlepart(Attachment::new(a.file_name.clone()).body(a.bytes.clone(), content_type));
        }
        let from = match email.sender_name.as_deref().map(str::trim).filter(|n| !n.is_empty()) {
            Some(name) => Mailbox::new(Some(name.to_owned()), self.from.email.clone()),
            None => self.from.clone(),
        };
        let message = Message::builder()
            .from(from)
            .to(to)
            .subject(email.subject.clone())
            .multipart(body)
            .map_err(|e| MailError::Build(e.to_string()))?;
        match &self.transport {
            Transport::Outbox(dir) => {
                write_eml(dir, &message.formatted()).await.map_err(|e| MailError::Send(e.to_string()))
            }
            Transport::Smtp(t) => t.send(message).await.map(|_| ()).map_err(|e| MailError::Send(e.to_string())),
        }
    }
}

/// One message as `<random id>.eml` (0600), written under a temporary name and renamed, so a
/// reader of the folder never sees half a message.
async fn write_eml(dir: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use tokio::io::AsyncWriteExt;
    let id = hex::encode(rand::random::<[u8; 16]>());
    let partial = dir.join(format!(".{id}.part"));
    let mut file = crate::private::file_options().open(&partial).await?;
    file.write_all(bytes).await?;
    file.flush().await?;
    drop(file);
    tokio::fs::rename(&partial, dir.join(format!("{id}.eml"))).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn without_smtp_the_email_lands_in_the_outbox_with_its_attachment() {
        let dir = tempfile::tempdir().unwrap();
        let mailer = Mailer::new(None, "Comune <noreply@comune.example>", dir.path()).unwrap();
        let email = Email {
            to: "anna.rossi@example.org".into(),
            subject: "Appuntamento confermato".into(),
            text: "Il suo codice è ABC-123.".into(),
            html: Some("<p>Il suo codice è <b>ABC-123</b>.</p>".into()),
            sender_name: Some("Comune di Roccabella".into()),
            attachments: vec![EmailAttachment {
                file_name: "appuntamento.ics".into(),
                content_type: "text/calendar; charset=utf-8".into(),
                bytes: b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n".to_vec(),
            }],
        };
        mailer.send(&email).await.unwrap();
        let files: Vec<_> = std::fs::read_dir(dir.path().join("outbox")).unwrap().map(|e| e.unwrap().path()).collect();
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].extension().and_then(|e| e.to_str()), Some("eml"));
        let eml = std::fs::read_to_string(&files[0]).unwrap();
        assert!(eml.contains("To: anna.rossi@example.org"), "{eml}");
        assert!(eml.contains("appuntamento.ics"), "{eml}");
        assert!(eml.contains("text/calendar"), "{eml}");
        // The municipality's name in front of the configured address; both parts, text first.
        assert!(eml.contains("From: \"Comune di Roccabella\" <noreply@comune.example>"), "{eml}");
        let (text, html) = (eml.find("text/plain").unwrap(), eml.find("text/html").unwrap());
        assert!(eml.contains("multipart/alternative") && text < html, "{eml}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!((mode(&dir.path().join("outbox")), mode(&files[0])), (0o700, 0o600), "private");
        }
    }

    #[tokio::test]
    async fn a_bad_recipient_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let mailer = Mailer::new(None, "noreply@comune.example", dir.path()).unwrap();
        let email = Email { to: "not an address".into(), subject: "x".into(), text: "x".into(), ..Email::default() };
        assert!(matches!(mailer.send(&email).await, Err(MailError::Address(_))));
    }
}
