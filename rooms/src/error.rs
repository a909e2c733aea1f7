//! Protocol errors: the one place where a failure becomes a wire `code`, a human message and,
//! when fatal, a websocket close code (table "Errors" of `docs/signaling.md`).

use serde::Serialize;
use sportello_domain::council::CouncilError;
use sportello_sfu::SfuError;

use sportello_backoffice::token::TokenError;

/// Language of the human-readable `message` of an `error` (`GET /ws?lang=en`; Italian by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    It,
    En,
}

impl Lang {
    /// Anything but `en` falls back to Italian, the default of a municipal service.
    pub fn from_query(value: Option<&str>) -> Lang {
        match value {
            Some(v) if v.eq_ignore_ascii_case("en") => Lang::En,
            _ => Lang::It,
        }
    }
}

/// Everything that can go wrong on the websocket, as the client is told about it.
/// The `String` payloads are details for the logs only; they never reach the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("invalid JSON: {0}")]
    InvalidJson(String),
    #[error("unknown message type {0:?}")]
    UnknownType(String),
    #[error("unsupported protocol version")]
    UnsupportedVersion,
    #[error("frame of {0} bytes is too large")]
    TooLarge(usize),
    #[error("message before join")]
    NotJoined,
    #[error("second join on the same websocket")]
    AlreadyJoined,
    #[error("invalid token")]
    TokenInvalid,
    #[error("expired token")]
    TokenExpired,
    #[error("token not yet valid")]
    TokenNotYetValid,
    #[error("token for another room")]
    WrongRoom,
    #[error("forbidden for this role")]
    Forbidden,
    #[error("invalid SDP: {0}")]
    InvalidSdp(String),
    #[error("invalid ICE candidate: {0}")]
    InvalidCandidate(String),
    #[error("wrong state: {0}")]
    WrongState(&'static str),
    #[error("replaced by another connection of the same identity")]
    Replaced,
    #[error("room full")]
    RoomFull,
    #[error("chat message of {0} characters, or with control characters")]
    InvalidChat(usize),
    #[error("still waiting in the lobby")]
    NotAdmitted,
    #[error("nobody with this id is waiting")]
    NotWaiting,
    #[error("a host declined the participant")]
    Declined,
    #[error("the appointment was cancelled")]
    AppointmentCancelled,
    #[error("the appointment is over")]
    AppointmentClosed,
    #[error("no such appointment")]
    AppointmentNotFound,
    /// More chat messages than a person types (a burst of 10, then one every 2 s).
    #[error("chat messages too fast")]
    ChatTooFast,
    /// The token no longer stands for what it names (`grants`): the account deactivated, the
    /// appointment moved, the council chair or membership changed.
    #[error("the link is no longer valid")]
    LinkRevoked,
    #[error("microphone unmuted without the floor")]
    FloorRequired,
    #[error("council session not available")]
    CouncilUnavailable,
    #[error("council rule: {0}")]
    Council(CouncilError),
    #[error("internal error: {0}")]
    Internal(String),
}

/// The `error` message body as sent on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WireError {
    pub code: &'static str,
    pub message: &'static str,
}

impl ProtocolError {
    pub fn code(&self) -> &'static str {
        use ProtocolError::*;
        match self {
            InvalidJson(_) => "invalid_json",
            UnknownType(_) => "unknown_type",
            UnsupportedVersion => "unsupported_version",
            TooLarge(_) => "too_large",
            NotJoined => "not_joined",
            AlreadyJoined => "already_joined",
            TokenInvalid => "token_invalid",
            TokenExpired => "token_expired",
            TokenNotYetValid => "token_not_yet_valid",
            WrongRoom => "wrong_room",
            Forbidden => "forbidden",
            InvalidSdp(_) => "invalid_sdp",
            InvalidCandidate(_) => "invalid_candidate",
            WrongState(_) => "wrong_state",
            Replaced => "replaced",
            RoomFull => "room_full",
            InvalidChat(_) => "invalid_chat",
            NotAdmitted => "not_admitted",
            NotWaiting => "not_waiting",
            Declined => "declined",
            AppointmentCancelled => "appointment_cancelled",
            AppointmentClosed => "appointment_closed",
            AppointmentNotFound => "appointment_not_found",
            LinkRevoked => "link_revoked",
            ChatTooFast => "chat_too_fast",
            FloorRequired => "floor_required",
            CouncilUnavailable => "council_unavailable",
            Council(e) => council_code(*e),
            Internal(_) => "internal",
        }
    }

    /// The websocket close code that follows a fatal error; `None` keeps the connection open.
    pub fn close_code(&self) -> Option<u16> {
        use ProtocolError::*;
        match self {
            TooLarge(_) => Some(1009),
            TokenInvalid | TokenExpired | TokenNotYetValid => Some(4001),
            WrongRoom => Some(4003),
            Replaced => Some(4009),
            RoomFull => Some(4029),
            AppointmentCancelled | AppointmentClosed | AppointmentNotFound | LinkRevoked => Some(4004),
            Declined => Some(4013),
            _ => None,
        }
    }

    pub fn is_fatal(&self) -> bool {
        self.close_code().is_some()
    }

    /// A fixed human message per code: no internal detail leaks to the browser.
    pub fn message(&self, lang: Lang) -> &'static str {
        use ProtocolError::*;
        let (it, en) = match self {
            InvalidJson(_) => ("Messaggio non valido.", "Invalid message."),
            UnknownType(_) => ("Tipo di messaggio sconosciuto.", "Unknown message type."),
            UnsupportedVersion => ("Versione del protocollo non supportata.", "Unsupported protocol version."),
            TooLarge(_) => ("Messaggio troppo grande.", "Message too large."),
            NotJoined => ("Occorre prima entrare nella stanza.", "Join the room first."),
            AlreadyJoined => ("Sei già nella stanza.", "Already in the room."),
            TokenInvalid => ("Il link di accesso non è valido.", "The access link is not valid."),
            TokenExpired => ("Il link di accesso è scaduto.", "The access link has expired."),
            TokenNotYetValid => ("Il link di accesso non è ancora valido.", "The access link is not valid yet."),
            WrongRoom => ("Il link di accesso è per un'altra stanza.", "The access link is for another room."),
            Forbidden => ("Operazione non consentita per il tuo ruolo.", "Your role does not allow this."),
            InvalidSdp(_) => ("Descrizione della sessione non valida.", "Invalid session description."),
            InvalidCandidate(_) => ("Candidato ICE non valido.", "Invalid ICE candidate."),
            WrongState(_) => ("Messaggio inatteso in questo momento.", "Unexpected message at this point."),
            Replaced => (
                "Sei entrato nella stanza da un'altra finestra o dispositivo.",
                "You joined the room from another window or device.",
            ),
            RoomFull => ("La stanza è al completo.", "The room is full."),
            InvalidChat(_) => (
                "Il messaggio deve avere da 1 a 2000 caratteri, senza caratteri di controllo.",
                "A message must have 1 to 2000 characters, without control characters.",
            ),
            NotAdmitted => (
                "Sei in sala d'attesa: potrai farlo quando l'operatore ti farà entrare.",
                "You are in the waiting room: you can do this once the official lets you in.",
            ),
            NotWaiting => ("Questa persona non è più in sala d'attesa.", "This person is no longer waiting."),
            Declined => (
                "L'operatore non ha ammesso l'ingresso alla stanza. Per informazioni contatta l'ufficio.",
                "The official did not let you into the room. Please contact the office for information.",
            ),
            AppointmentCancelled => (
                "L'appuntamento è stato annullato: il link non è più valido.",
                "The appointment was cancelled: the link is no longer valid.",
            ),
            AppointmentClosed => (
                "L'appuntamento è concluso: il link non è più valido.",
                "The appointment is over: the link is no longer valid.",
            ),
            AppointmentNotFound => (
                "Appuntamento inesistente: controlla il link ricevuto.",
                "No such appointment: please check the link you received.",
            ),
            ChatTooFast => (
                "Stai inviando messaggi troppo in fretta: aspetta qualche secondo.",
                "You are sending messages too fast: wait a few seconds.",
            ),
            LinkRevoked => (
                "Questo link non è più valido (l'appuntamento è stato spostato, o il tuo ruolo è cambiato): usa il link più recente che hai ricevuto.",
                "This link is no longer valid (the appointment was moved, or your role changed): use the latest link you received.",
            ),
            FloorRequired => (
                "Il microfono si apre solo quando il presidente ti dà la parola.",
                "You can unmute only when the chair gives you the floor.",
            ),
            CouncilUnavailable => (
                "La seduta non è disponibile: riprova tra poco o contatta la segreteria.",
                "The session is not available: try again shortly or contact the secretariat.",
            ),
            Council(e) => council_message(*e),
            Internal(_) => ("Errore interno del server.", "Internal server error."),
        };
        match lang {
            Lang::It => it,
            Lang::En => en,
        }
    }

    pub fn to_wire(&self, lang: Lang) -> WireError {
        WireError { code: self.code(), message: self.message(lang) }
    }
}

fn council_code(e: CouncilError) -> &'static str {
    use CouncilError::*;
    match e {
        NotMember => "not_member",
        NotInRoom => "not_in_room",
        AlreadyRequested => "already_requested",
        NotQueued => "not_queued",
        NoFloor => "no_floor",
        UnknownItem => "unknown_item",
        RollCallInProgress => "roll_call_in_progress",
        NoRollCall => "no_roll_call",
        RollCallRequired => "roll_call_required",
        NoQuorum => "no_quorum",
        VoteOpen => "vote_open",
        NoVote => "no_vote",
        NotEligible => "not_eligible",
        AlreadyVoted => "already_voted",
    }
}

fn council_message(e: CouncilError) -> (&'static str, &'static str) {
    use CouncilError::*;
    match e {
        NotMember => ("Non sei tra i componenti di questa seduta.", "You are not a member of this session."),
        NotInRoom => ("La persona non è presente in aula.", "That person is not in the room."),
        AlreadyRequested => ("Hai già chiesto la parola.", "You have already asked for the floor."),
        NotQueued => ("Non sei in coda per intervenire.", "You are not in the queue to speak."),
        NoFloor => ("Nessuno ha la parola.", "Nobody has the floor."),
        UnknownItem => ("Punto all'ordine del giorno inesistente.", "No such agenda item."),
        RollCallInProgress => ("È in corso l'appello.", "A roll call is in progress."),
        NoRollCall => ("Non è in corso alcun appello.", "No roll call is in progress."),
        RollCallRequired => {
            ("Prima di ogni votazione occorre fare l'appello.", "A roll call is needed before every vote.")
        }
        NoQuorum => ("Il numero legale non è raggiunto.", "The quorum is not reached."),
        VoteOpen => ("È in corso una votazione.", "A vote is open."),
        NoVote => ("Non è aperta alcuna votazione.", "No vote is open."),
        NotEligible => (
            "Può votare solo chi è risultato presente all'appello prima della votazione.",
            "Only those present at the roll call before the vote may vote.",
        ),
        AlreadyVoted => ("Hai già votato.", "You have already voted."),
    }
}

impl From<CouncilError> for ProtocolError {
    fn from(e: CouncilError) -> Self {
        ProtocolError::Council(e)
    }
}

impl From<TokenError> for ProtocolError {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::Invalid => ProtocolError::TokenInvalid,
            TokenError::Expired => ProtocolError::TokenExpired,
            TokenError::NotYetValid => ProtocolError::TokenNotYetValid,
            TokenError::WrongRoom => ProtocolError::WrongRoom,
        }
    }
}

impl From<SfuError> for ProtocolError {
    fn from(e: SfuError) -> Self {
        match e {
            SfuError::InvalidSdp(d) => ProtocolError::InvalidSdp(d),
            SfuError::InvalidCandidate(d) => ProtocolError::InvalidCandidate(d),
            SfuError::NoPendingOffer => ProtocolError::WrongState("no subscribe offer outstanding"),
            other => ProtocolError::Internal(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<ProtocolError> {
        use ProtocolError::*;
        vec![
            InvalidJson(String::new()),
            UnknownType(String::new()),
            UnsupportedVersion,
            TooLarge(0),
            NotJoined,
            AlreadyJoined,
            TokenInvalid,
            TokenExpired,
            TokenNotYetValid,
            WrongRoom,
            Forbidden,
            InvalidSdp(String::new()),
            InvalidCandidate(String::new()),
            WrongState(""),
            Replaced,
            RoomFull,
            InvalidChat(0),
            NotAdmitted,
            NotWaiting,
            Declined,
            AppointmentCancelled,
            AppointmentClosed,
            AppointmentNotFound,
            LinkRevoked,
            ChatTooFast,
            FloorRequired,
            CouncilUnavailable,
            Council(CouncilError::NotMember),
            Internal(String::new()),
        ]
    }

    #[test]
    fn fatal_errors_close_with_the_documented_codes() {
        let fatal: Vec<(&str, u16)> = all().iter().filter_map(|e| e.close_code().map(|c| (e.code(), c))).collect();
        assert_eq!(
            fatal,
            vec![
                ("too_large", 1009),
                ("token_invalid", 4001),
                ("token_expired", 4001),
                ("token_not_yet_valid", 4001),
                ("wrong_room", 4003),
                ("replaced", 4009),
                ("room_full", 4029),
                ("declined", 4013),
                ("appointment_cancelled", 4004),
                ("appointment_closed", 4004),
                ("appointment_not_found", 4004),
                ("link_revoked", 4004),
            ]
        );
    }

    #[test]
    fn every_code_is_distinct_and_has_both_languages() {
        let errors = all();
        let mut codes: Vec<_> = errors.iter().map(|e| e.code()).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), errors.len());
        for e in &errors {
            let (it, en) = (e.message(Lang::It), e.message(Lang::En));
            assert!(!it.is_empty() && !en.is_empty());
            assert_ne!(it, en, "{} has the same text in both languages", e.code());
        }
    }

    #[test]
    fn council_codes_are_distinct_and_bilingual() {
        use CouncilError::*;
        let all = [
            NotMember,
            NotInRoom,
            AlreadyRequested,
            NotQueued,
            NoFloor,
            UnknownItem,
            RollCallInProgress,
            NoRollCall,
            RollCallRequired,
            NoQuorum,
            VoteOpen,
            NoVote,
            NotEligible,
            AlreadyVoted,
        ];
        let mut codes: Vec<&str> = all.iter().map(|e| ProtocolError::Council(*e).code()).collect();
        codes.extend(super::tests::all().iter().map(|e| e.code()).filter(|c| *c != "not_member"));
        let n = codes.len();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), n, "a council code collides with another code");
        for e in all {
            let e = ProtocolError::Council(e);
            assert!(!e.is_fatal());
            assert_ne!(e.message(Lang::It), e.message(Lang::En));
        }
    }

    #[test]
    fn details_never_reach_the_wire() {
        let e = ProtocolError::Internal("database password is hunter2".into());
        let wire = serde_json::to_string(&e.to_wire(Lang::En)).unwrap();
        assert_eq!(wire, r#"{"code":"internal","message":"Internal server error."}"#);
    }

    #[test]
    fn lang_defaults_to_italian() {
        assert_eq!(Lang::from_query(None), Lang::It);
        assert_eq!(Lang::from_query(Some("de")), Lang::It);
        assert_eq!(Lang::from_query(Some("EN")), Lang::En);
    }

    #[test]
    fn sfu_errors_map_to_protocol_codes() {
        assert_eq!(ProtocolError::from(SfuError::InvalidSdp("x".into())).code(), "invalid_sdp");
        assert_eq!(ProtocolError::from(SfuError::InvalidCandidate("x".into())).code(), "invalid_candidate");
        assert_eq!(ProtocolError::from(SfuError::NoPendingOffer).code(), "wrong_state");
        assert_eq!(ProtocolError::from(SfuError::Stopped).code(), "internal");
    }
}
