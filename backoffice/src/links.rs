//! The citizen's links: the join link `<public_url>/a/<token>` (its landing page is `landing`), the
//! manage link `<public_url>/appuntamento?codice=<code>#<secret>` and the reminder's one-click
//! cancel link.

use sportello_domain::booking::{JOIN_CLOSES_AFTER, JOIN_OPENS_BEFORE};
use sportello_store::{Appointment, Status};

use crate::context::BackOffice;
use crate::secrets::{constant_time_eq, matches_hash};
use crate::token::{Claims, KeyError, Role, TokenKey};

/// The room of an appointment (shared naming contract).
pub fn room_of(appointment_id: &str) -> String {
    format!("appt-{appointment_id}")
}

/// The citizen's join claims: valid from 15 minutes before the start to 30 minutes after the end;
/// they wait in the lobby until the official admits them.
pub fn citizen_claims(appt: &Appointment, now: i64) -> Claims {
    let nbf = appt.starts_at - JOIN_OPENS_BEFORE.as_secs();
    let exp = appt.ends_at + JOIN_CLOSES_AFTER.as_secs();
    Claims {
        room: room_of(&appt.id),
        sub: format!("citizen-{}", appt.id),
        name: format!("{} {}", appt.first_name, appt.last_name),
        role: Role::Participant,
        nbf: u64::try_from(nbf).unwrap_or(0),
        exp: u64::try_from(exp).unwrap_or(0),
        iat: u64::try_from(now).unwrap_or(0),
        appt: Some(appt.id.clone()),
        wait: true,
    }
}

fn base(public_url: &str) -> &str {
    public_url.trim_end_matches('/')
}

/// The join link the citizen's emails and pages show: only for a confirmed video appointment
/// (a signing failure is logged and leaves the link out rather than failing the email).
pub fn video_join_link(back: &BackOffice, appt: &Appointment, now: i64) -> Option<String> {
    if appt.mode != sportello_store::Mode::Video || appt.status != Status::Confirmed {
        return None;
    }
    join_link(&back.tokens, &back.public_url, appt, now)
        .inspect_err(|error| tracing::error!(%error, "cannot sign a join link"))
        .ok()
}

/// `<public_url>/a/<token>` for the appointment as it is now (times included).
pub fn join_link(tokens: &TokenKey, public_url: &str, appt: &Appointment, now: i64) -> Result<String, KeyError> {
    let token = tokens.issue(&citizen_claims(appt, now))?;
    Ok(format!("{}/a/{token}", base(public_url)))
}

/// Where the citizen reviews, cancels or moves the booking. The secret rides in the fragment: the
/// browser never sends it in a request line, so it stays out of every log.
pub fn manage_link(public_url: &str, code: &str, secret: &str) -> String {
    format!("{}/appuntamento?codice={code}#{secret}", base(public_url))
}

/// The reminder's one-click cancel: the manage page with the cancel confirmation preselected
/// (the cancel itself is a button press: link scanners must not cancel by GET).
pub fn cancel_link(public_url: &str, code: &str, secret: &str) -> String {
    format!("{}/appuntamento?codice={code}&azione=annulla#{secret}", base(public_url))
}

/// The booking page with the same service chosen (in the cancellation email).
pub fn book_again_link(public_url: &str, service_id: &str) -> String {
    format!("{}/prenota?servizio={service_id}", base(public_url))
}

/// A second manage secret the server can derive again at any time, for emails sent after the
/// booking (reminders): the random booking secret is stored only as a hash, so it cannot be
/// re-sent. It is the HS256 signature of fixed, already-expired claims naming the appointment, i.e.
/// a MAC under the token key; the full token it belongs to never passes a join (expired, own room).
pub fn derived_secret(tokens: &TokenKey, appt: &Appointment) -> Result<String, KeyError> {
    let claims = Claims {
        room: format!("manage-{}", appt.id),
        sub: format!("manage-{}", appt.id),
        name: appt.code.clone(),
        role: Role::Viewer,
        nbf: 0,
        exp: 0,
        iat: 0,
        appt: Some(appt.id.clone()),
        wait: true,
    };
    let token = tokens.issue(&claims)?;
    Ok(token.rsplit('.').next().unwrap_or_default().to_owned())
}

/// Whether `secret` opens this appointment: the booking secret (hash compared) or the derived one.
pub fn secret_matches(tokens: &TokenKey, appt: &Appointment, secret: &str) -> bool {
    if secret.is_empty() || secret.len() > 200 {
        return false;
    }
    if matches_hash(secret, &appt.secret_hash) {
        return true;
    }
    derived_secret(tokens, appt).is_ok_and(|d| constant_time_eq(d.as_bytes(), secret.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::sha256_hex;

    fn appt() -> Appointment {
        Appointment {
            id: "a1".into(),
            code: "ABCD-2345".into(),
            secret_hash: sha256_hex("s3cret"),
            office_id: "o".into(),
            service_id: "s".into(),
            official_id: "u".into(),
            starts_at: 1_800_000_000,
            ends_at: 1_800_001_800,
            mode: sportello_store::Mode::Video,
            first_name: "Anna".into(),
            last_name: "Rossi".into(),
            email: "anna@example.org".into(),
            details: String::new(),
            lang: "it".into(),
            status: Status::Confirmed,
            reminder_sent_at: None,
            citizen_joined_at: None,
            citizen_arrived_at: None,
            meeting_ended_at: None,
            rating: None,
            rating_comment: None,
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn claims_follow_the_contract() {
        let c = citizen_claims(&appt(), 5);
        assert_eq!((c.room.as_str(), c.sub.as_str(), c.name.as_str()), ("appt-a1", "citizen-a1", "Anna Rossi"));
        assert_eq!((c.nbf, c.exp, c.iat), (1_800_000_000 - 900, 1_800_001_800 + 1800, 5));
        assert!(c.wait && c.appt.as_deref() == Some("a1") && c.role == Role::Participant);
    }

    #[test]
    fn secrets() {
        let key = TokenKey::random();
        let a = appt();
        assert!(secret_matches(&key, &a, "s3cret"));
        assert!(!secret_matches(&key, &a, "s3creT"));
        assert!(!secret_matches(&key, &a, ""));
        let derived = derived_secret(&key, &a).unwrap();
        assert!(secret_matches(&key, &a, &derived));
        assert!(!secret_matches(&TokenKey::random(), &a, &derived));
        assert_eq!(
            cancel_link("https://x.it/", "ABCD-2345", "zz"),
            "https://x.it/appuntamento?codice=ABCD-2345&azione=annulla#zz"
        );
    }
}
