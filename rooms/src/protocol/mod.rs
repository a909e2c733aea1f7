//! The websocket messages of `docs/signaling.md`, version 1: one JSON text frame each, with `v` and a
//! snake_case `type`. Media types (tracks, sources, candidates) are the SFU's own API types, whose
//! serde shape is the wire shape.

pub mod council;

use serde::{Deserialize, Deserializer, Serialize};
use sportello_sfu::{IceCandidate, PcKind, PublishedMid, SubscribedTrack, TrackInfo, TrackSource};

use crate::error::{ProtocolError, WireError};
use sportello_backoffice::token::Role;

pub const VERSION: u64 = 1;
/// Largest text frame accepted; larger ones get `too_large` and close 1009.
pub const MAX_FRAME: usize = 64 * 1024;

/// A message from the browser.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    Join {
        token: String,
    },
    Offer {
        pc: PcKind,
        sdp: String,
        tracks: Vec<PublishedMid>,
    },
    Answer {
        pc: PcKind,
        sdp: String,
    },
    Candidate {
        pc: PcKind,
        candidate: IceCandidate,
    },
    Mute {
        source: TrackSource,
        muted: bool,
    },
    Leave,
    /// A chat message to everyone admitted (see [`chat_text`] for what is accepted).
    Chat {
        text: String,
    },
    /// Hosts only: let a waiting participant in.
    Admit {
        participant_id: String,
    },
    /// Hosts only: turn a waiting participant away.
    Decline {
        participant_id: String,
    },
    /// "Are you there?": answered by `pong` from the session (the room's owner, for a relayed
    /// one) — the page's way to notice a server that stands still (`docs/signaling.md`).
    Ping,
    /// A `council.*` message (rooms `council-<id>`), parsed by [`parse`] with its own tags.
    #[serde(skip)]
    Council(council::CouncilCommand),
}

const CLIENT_TYPES: [&str; 10] =
    ["join", "offer", "answer", "candidate", "mute", "leave", "chat", "admit", "decline", "ping"];

/// Longest chat message, in characters after trimming.
pub const MAX_CHAT_CHARS: usize = 2000;

/// A chat text as it is stored and relayed: trimmed, 1..=[`MAX_CHAT_CHARS`] characters, no control
/// characters but newlines (`\r\n` becomes `\n`).
pub fn chat_text(text: &str) -> Result<String, ProtocolError> {
    let text = text.replace("\r\n", "\n");
    let text = text.trim();
    let chars = text.chars().count();
    if chars == 0 || chars > MAX_CHAT_CHARS {
        return Err(ProtocolError::InvalidChat(chars));
    }
    if text.chars().any(|c| c.is_control() && c != '\n') {
        return Err(ProtocolError::InvalidChat(chars));
    }
    Ok(text.to_owned())
}

/// Someone waiting in the lobby, as hosts see them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LobbyEntry {
    pub id: String,
    pub name: String,
    /// When they started waiting (Unix seconds, server clock).
    pub since: i64,
}

/// A chat message as the room relays it (and as `GET /api/rooms/{room}/chat` lists it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChatInfo {
    pub id: String,
    pub participant_id: String,
    pub name: String,
    pub text: String,
    /// Unix seconds.
    pub at: i64,
}

/// A shared document as the room announces it (and as the REST list shows it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DocumentInfo {
    pub id: String,
    pub name: String,
    pub size: i64,
    pub content_type: String,
    pub participant_id: String,
    pub uploader_name: String,
    /// Unix seconds.
    pub at: i64,
}

/// Per-source mute state; only sources the participant reported are present.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Muted {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub microphone: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub camera: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub screen: Option<bool>,
}

impl Muted {
    pub fn set(&mut self, source: TrackSource, muted: bool) {
        let slot = match source {
            TrackSource::Microphone => &mut self.microphone,
            TrackSource::Camera => &mut self.camera,
            TrackSource::Screen => &mut self.screen,
        };
        *slot = Some(muted);
    }
}

/// A participant as the room shows it to the others.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParticipantInfo {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub tracks: Vec<TrackInfo>,
    pub muted: Muted,
}

/// A message to the browser.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    Welcome {
        room: String,
        you: ParticipantInfo,
        participants: Vec<ParticipantInfo>,
        ice_servers: Vec<IceServer>,
        reconnected: bool,
    },
    ParticipantJoined {
        participant: ParticipantInfo,
    },
    ParticipantLeft {
        participant_id: String,
    },
    TrackPublished {
        track: TrackInfo,
    },
    TrackUnpublished {
        track: TrackInfo,
    },
    Offer {
        pc: PcKind,
        sdp: String,
        tracks: Vec<SubscribedTrack>,
    },
    Answer {
        pc: PcKind,
        sdp: String,
    },
    Candidate {
        pc: PcKind,
        candidate: IceCandidate,
    },
    Mute {
        participant_id: String,
        source: TrackSource,
        muted: bool,
    },
    /// `participant_id` is always present, `null` for silence.
    ActiveSpeaker {
        participant_id: Option<String>,
    },
    /// To a participant who must be admitted: they are in the lobby (no media, no participants).
    Waiting {
        since: i64,
    },
    /// To hosts: everyone waiting, oldest first (sent on join and whenever it changes).
    Lobby {
        waiting: Vec<LobbyEntry>,
    },
    /// To a waiting participant a host turned away; the server then closes (4013).
    Declined {
        message: &'static str,
    },
    Chat(ChatInfo),
    Document(DocumentInfo),
    /// Council rooms: the session's state, to everyone, after every change.
    #[serde(rename = "council.state")]
    CouncilState(Box<council::CouncilState>),
    /// Council rooms: mute this microphone now (the floor went to someone else).
    ForceMute {
        source: TrackSource,
    },
    Error(WireError),
    /// The answer to `ping`.
    Pong,
}

#[derive(Serialize)]
struct Envelope<'a> {
    v: u64,
    #[serde(flatten)]
    message: &'a ServerMessage,
}

impl ServerMessage {
    /// The JSON text frame, with `v`.
    pub fn to_json(&self) -> String {
        // Serializing these types cannot fail (string keys, no maps with non-string keys); keep a
        // well-formed fallback instead of panicking anyway.
        serde_json::to_string(&Envelope { v: VERSION, message: self }).unwrap_or_else(|e| {
            tracing::error!(error = %e, "cannot serialize a server message");
            r#"{"v":1,"type":"error","code":"internal","message":"internal"}"#.to_owned()
        })
    }
}

/// Parses one text frame. The checks run in the order of the doc: JSON object, `v`, `type`, fields.
pub fn parse(text: &str) -> Result<ClientMessage, ProtocolError> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| ProtocolError::InvalidJson(e.to_string()))?;
    let object = value.as_object().ok_or_else(|| ProtocolError::InvalidJson("not an object".into()))?;
    match object.get("v") {
        None => return Err(ProtocolError::InvalidJson("missing field `v`".into())),
        Some(v) if v.as_u64() != Some(VERSION) => return Err(ProtocolError::UnsupportedVersion),
        Some(_) => {}
    }
    let kind = match object.get("type") {
        Some(serde_json::Value::String(kind)) => kind,
        Some(_) => return Err(ProtocolError::InvalidJson("`type` is not a string".into())),
        None => return Err(ProtocolError::InvalidJson("missing field `type`".into())),
    };
    if council::COMMAND_TYPES.contains(&kind.as_str()) {
        return serde_json::from_value(value)
            .map(ClientMessage::Council)
            .map_err(|e| ProtocolError::InvalidJson(e.to_string()));
    }
    if !CLIENT_TYPES.contains(&kind.as_str()) {
        return Err(ProtocolError::UnknownType(kind.chars().take(64).collect()));
    }
    serde_json::from_value(value).map_err(|e| ProtocolError::InvalidJson(e.to_string()))
}

/// A browser `RTCIceServer`. `urls` may be written as one string or a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IceServer {
    #[serde(deserialize_with = "one_or_many")]
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(url) => vec![url],
        OneOrMany::Many(urls) => urls,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use sportello_sfu::MediaKind;

    use super::*;

    fn code(text: &str) -> &'static str {
        parse(text).expect_err(text).code()
    }

    #[test]
    fn parses_every_client_message() {
        assert_eq!(parse(r#"{"v":1,"type":"join","token":"abc"}"#), Ok(ClientMessage::Join { token: "abc".into() }));
        assert_eq!(parse(r#"{"v":1,"type":"ping"}"#), Ok(ClientMessage::Ping));
        assert_eq!(ServerMessage::Pong.to_json(), r#"{"v":1,"type":"pong"}"#);
        assert_eq!(
            parse(
                r#"{"v":1,"type":"offer","pc":"publish","sdp":"v=0","tracks":[{"mid":"0","source":"microphone"},{"mid":"1","source":"camera"}]}"#
            ),
            Ok(ClientMessage::Offer {
                pc: PcKind::Publish,
                sdp: "v=0".into(),
                tracks: vec![
                    PublishedMid { mid: "0".into(), source: TrackSource::Microphone },
                    PublishedMid { mid: "1".into(), source: TrackSource::Camera },
                ],
            })
        );
        assert_eq!(
            parse(r#"{"v":1,"type":"answer","pc":"subscribe","sdp":"v=0"}"#),
            Ok(ClientMessage::Answer { pc: PcKind::Subscribe, sdp: "v=0".into() })
        );
        assert_eq!(
            parse(
                r#"{"v":1,"type":"candidate","pc":"publish","candidate":{"candidate":"candidate:1 1 udp 1 1.2.3.4 5 typ host","sdpMid":"0","sdpMLineIndex":0}}"#
            ),
            Ok(ClientMessage::Candidate {
                pc: PcKind::Publish,
                candidate: IceCandidate {
                    candidate: "candidate:1 1 udp 1 1.2.3.4 5 typ host".into(),
                    sdp_mid: Some("0".into()),
                    sdp_mline_index: Some(0),
                },
            })
        );
        assert_eq!(
            parse(r#"{"v":1,"type":"candidate","pc":"subscribe","candidate":{"candidate":""}}"#),
            Ok(ClientMessage::Candidate { pc: PcKind::Subscribe, candidate: IceCandidate::default() })
        );
        assert_eq!(
            parse(r#"{"v":1,"type":"mute","source":"screen","muted":true}"#),
            Ok(ClientMessage::Mute { source: TrackSource::Screen, muted: true })
        );
        assert_eq!(parse(r#"{"v":1,"type":"leave"}"#), Ok(ClientMessage::Leave));
        // Unknown extra fields are tolerated (forward compatibility within version 1).
        assert_eq!(parse(r#"{"v":1,"type":"leave","why":"bye"}"#), Ok(ClientMessage::Leave));
    }

    #[test]
    fn not_json_or_not_an_object_is_invalid_json() {
        for text in [
            "",
            "{",
            "nope",
            "[1,2]",
            "\"join\"",
            "null",
            "1",
            "{\"v\":1,\"type\":\"join\",\"token\":\"a\"",
            "\u{feff}{}",
        ] {
            assert_eq!(code(text), "invalid_json", "{text:?}");
        }
    }

    #[test]
    fn version_is_checked_before_type() {
        assert_eq!(code(r#"{"v":2,"type":"join","token":"a"}"#), "unsupported_version");
        assert_eq!(code(r#"{"v":2,"type":"dance"}"#), "unsupported_version");
        assert_eq!(code(r#"{"v":"1","type":"join","token":"a"}"#), "unsupported_version");
        assert_eq!(code(r#"{"v":1.5,"type":"leave"}"#), "unsupported_version");
        assert_eq!(code(r#"{"v":0,"type":"leave"}"#), "unsupported_version");
        assert_eq!(code(r#"{"v":null,"type":"leave"}"#), "unsupported_version");
        assert_eq!(code(r#"{"type":"leave"}"#), "invalid_json");
    }

    #[test]
    fn type_must_be_a_known_string() {
        assert_eq!(code(r#"{"v":1,"type":"dance"}"#), "unknown_type");
        assert_eq!(code(r#"{"v":1,"type":"Join","token":"a"}"#), "unknown_type");
        assert_eq!(code(r#"{"v":1,"type":"welcome"}"#), "unknown_type");
        assert_eq!(code(r#"{"v":1,"type":""}"#), "unknown_type");
        assert_eq!(code(r#"{"v":1}"#), "invalid_json");
        assert_eq!(code(r#"{"v":1,"type":3}"#), "invalid_json");
        assert_eq!(code(r#"{"v":1,"type":null}"#), "invalid_json");
    }

    #[test]
    fn missing_or_mistyped_fields_are_invalid_json() {
        for text in [
            r#"{"v":1,"type":"join"}"#,
            r#"{"v":1,"type":"join","token":5}"#,
            r#"{"v":1,"type":"offer","pc":"publish","sdp":"v=0"}"#,
            r#"{"v":1,"type":"offer","pc":"publish","tracks":[]}"#,
            r#"{"v":1,"type":"offer","pc":"sideways","sdp":"v=0","tracks":[]}"#,
            r#"{"v":1,"type":"offer","pc":"publish","sdp":"v=0","tracks":[{"mid":"0","source":"tuba"}]}"#,
            r#"{"v":1,"type":"offer","pc":"publish","sdp":"v=0","tracks":[{"source":"camera"}]}"#,
            r#"{"v":1,"type":"answer","pc":"subscribe"}"#,
            r#"{"v":1,"type":"candidate","pc":"publish"}"#,
            r#"{"v":1,"type":"candidate","pc":"publish","candidate":"candidate:1"}"#,
            r#"{"v":1,"type":"candidate","pc":"publish","candidate":{"candidate":"x","sdpMLineIndex":-1}}"#,
            r#"{"v":1,"type":"mute","source":"microphone"}"#,
            r#"{"v":1,"type":"mute","source":"microphone","muted":"yes"}"#,
            r#"{"v":1,"type":"mute","muted":true}"#,
        ] {
            assert_eq!(code(text), "invalid_json", "{text}");
        }
    }

    #[test]
    fn deeply_nested_input_does_not_overflow() {
        let text = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(code(&text), "invalid_json");
    }

    fn anna() -> ParticipantInfo {
        ParticipantInfo {
            id: "anna".into(),
            name: "Anna".into(),
            role: Role::Host,
            tracks: vec![],
            muted: Muted::default(),
        }
    }

    fn wire(message: ServerMessage) -> serde_json::Value {
        serde_json::from_str(&message.to_json()).unwrap()
    }

    #[test]
    fn server_messages_have_the_documented_shape() {
        assert_eq!(
            wire(ServerMessage::Welcome {
                room: "demo".into(),
                you: anna(),
                participants: vec![],
                ice_servers: vec![],
                reconnected: false
            }),
            json!({"v":1,"type":"welcome","room":"demo","you":{"id":"anna","name":"Anna","role":"host","tracks":[],"muted":{}},"participants":[],"ice_servers":[],"reconnected":false})
        );
        let mut bruno = ParticipantInfo { id: "bruno".into(), name: "Bruno".into(), role: Role::Viewer, ..anna() };
        bruno.muted.set(TrackSource::Microphone, true);
        assert_eq!(
            wire(ServerMessage::ParticipantJoined { participant: bruno }),
            json!({"v":1,"type":"participant_joined","participant":{"id":"bruno","name":"Bruno","role":"viewer","tracks":[],"muted":{"microphone":true}}})
        );
        assert_eq!(
            wire(ServerMessage::ParticipantLeft { participant_id: "bruno".into() }),
            json!({"v":1,"type":"participant_left","participant_id":"bruno"})
        );
        let track = TrackInfo::new("bruno".into(), TrackSource::Camera);
        let track_json = json!({"id":"bruno/camera","participant":"bruno","source":"camera","kind":"video"});
        assert_eq!(track.kind, MediaKind::Video);
        assert_eq!(
            wire(ServerMessage::TrackPublished { track: track.clone() }),
            json!({"v":1,"type":"track_published","track":track_json})
        );
        assert_eq!(
            wire(ServerMessage::TrackUnpublished { track: track.clone() }),
            json!({"v":1,"type":"track_unpublished","track":track_json})
        );
        assert_eq!(
            wire(ServerMessage::Offer {
                pc: PcKind::Subscribe,
                sdp: "v=0".into(),
                tracks: vec![SubscribedTrack { mid: "0".into(), track }]
            }),
            json!({"v":1,"type":"offer","pc":"subscribe","sdp":"v=0","tracks":[{"mid":"0","track":track_json}]})
        );
        assert_eq!(
            wire(ServerMessage::Answer { pc: PcKind::Publish, sdp: "v=0".into() }),
            json!({"v":1,"type":"answer","pc":"publish","sdp":"v=0"})
        );
        assert_eq!(
            wire(ServerMessage::Candidate {
                pc: PcKind::Subscribe,
                candidate: IceCandidate {
                    candidate: "candidate:1".into(),
                    sdp_mid: Some("0".into()),
                    sdp_mline_index: Some(0)
                }
            }),
            json!({"v":1,"type":"candidate","pc":"subscribe","candidate":{"candidate":"candidate:1","sdpMid":"0","sdpMLineIndex":0}})
        );
        assert_eq!(
            wire(ServerMessage::Mute { participant_id: "anna".into(), source: TrackSource::Microphone, muted: false }),
            json!({"v":1,"type":"mute","participant_id":"anna","source":"microphone","muted":false})
        );
        assert_eq!(
            wire(ServerMessage::ActiveSpeaker { participant_id: None }),
            json!({"v":1,"type":"active_speaker","participant_id":null})
        );
        assert_eq!(
            wire(ServerMessage::ActiveSpeaker { participant_id: Some("anna".into()) }),
            json!({"v":1,"type":"active_speaker","participant_id":"anna"})
        );
        assert_eq!(
            wire(ServerMessage::Error(ProtocolError::NotJoined.to_wire(crate::error::Lang::En))),
            json!({"v":1,"type":"error","code":"not_joined","message":"Join the room first."})
        );
    }

    #[test]
    fn ice_servers_are_sent_as_rtc_ice_server() {
        let server = IceServer {
            urls: vec!["turn:turn.example.org:3478".into()],
            username: Some("u".into()),
            credential: Some("c".into()),
        };
        let welcome = wire(ServerMessage::Welcome {
            room: "r".into(),
            you: anna(),
            participants: vec![],
            ice_servers: vec![server],
            reconnected: true,
        });
        assert_eq!(
            welcome["ice_servers"],
            json!([{"urls":["turn:turn.example.org:3478"],"username":"u","credential":"c"}])
        );
        assert_eq!(welcome["reconnected"], json!(true));
    }
}
