//! The WebSocket frames of PROTOCOL.md: what a client sends (`{"type", "data"}`), parsed once
//! into [`Incoming`], and the frames and close frames the server sends back.

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes};
use serde::Deserialize;
use serde_json::{Value, json};

/// A frame from the client, `{"type": …, "data": {…}}` (public for the fuzz target).
#[derive(Debug, Deserialize)]
pub struct ClientFrame {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    data: Value,
}

/// A visitor's message as sent over the socket or the REST fallback.
#[derive(Debug, Clone, Deserialize)]
pub struct VisitorSend {
    /// The client's id of the message (a UUID); resends carry the same one.
    #[serde(default)]
    pub(crate) client_id: String,
    /// The text.
    #[serde(default)]
    pub(crate) text: String,
    /// Uploaded attachments (`att_…`).
    #[serde(default)]
    pub(crate) attachment_ids: Vec<String>,
}

/// Why a client's frame was not understood (answered with an `invalid_frame` error frame).
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// A binary frame.
    #[error("frames are JSON text")]
    Binary,
    /// Not `{"type", "data"}` JSON.
    #[error("frames are JSON {{\"type\": …, \"data\": {{…}}}}")]
    NotJson,
    /// `resume` without `data.last_seq`.
    #[error("resume needs data.last_seq")]
    NoLastSeq,
    /// `delivered` / `read` without `data.up_to_seq`.
    #[error("needs data.up_to_seq")]
    NoUpToSeq,
    /// `message.send` whose data is not a message.
    #[error("message.send: {0}")]
    Send(#[source] serde_json::Error),
    /// A typing state other than `on` / `off`.
    #[error("typing state must be \"on\" or \"off\", not {0:?}")]
    TypingState(String),
    /// A type this protocol does not have.
    #[error("unknown frame type {0:?}")]
    UnknownType(String),
}

/// A client frame, parsed.
#[derive(Debug)]
pub enum Incoming {
    /// `ping`.
    Ping,
    /// `resume` after `last_seq` (never below 0).
    Resume {
        /// The last seq the client has.
        last_seq: i64,
    },
    /// `message.send`.
    Send(VisitorSend),
    /// `typing` on or off.
    Typing(bool),
    /// `delivered` (`read == false`) or `read` up to a seq.
    Mark {
        /// Read rather than only received.
        read: bool,
        /// The mark.
        up_to_seq: i64,
    },
}

impl ClientFrame {
    /// Parses a text frame (public for the fuzz target).
    pub fn parse(text: &str) -> Result<Incoming, FrameError> {
        let frame = serde_json::from_str::<Self>(text).map_err(|_| FrameError::NotJson)?;
        let seq_field = |name: &str| frame.data.get(name).and_then(Value::as_i64);
        match frame.kind.as_str() {
            "ping" => Ok(Incoming::Ping),
            "resume" => seq_field("last_seq")
                .map(|last_seq| Incoming::Resume {
                    last_seq: last_seq.max(0),
                })
                .ok_or(FrameError::NoLastSeq),
            "message.send" => serde_json::from_value(frame.data)
                .map(Incoming::Send)
                .map_err(FrameError::Send),
            "typing" => {
                let state = frame.data.get("state").and_then(Value::as_str).unwrap_or("");
                typing_state(state).map(Incoming::Typing)
            }
            kind @ ("delivered" | "read") => seq_field("up_to_seq")
                .map(|up_to_seq| Incoming::Mark {
                    read: kind == "read",
                    up_to_seq,
                })
                .ok_or(FrameError::NoUpToSeq),
            other => Err(FrameError::UnknownType(other.to_owned())),
        }
    }
}

/// `on` / `off`.
pub(crate) fn typing_state(state: &str) -> Result<bool, FrameError> {
    match state {
        "on" => Ok(true),
        "off" => Ok(false),
        other => Err(FrameError::TypingState(other.to_owned())),
    }
}

/// A server frame `{"type": kind, "data": data}`.
pub(crate) fn frame(kind: &str, data: Value) -> Message {
    Message::Text(Utf8Bytes::from(json!({"type": kind, "data": data}).to_string()))
}

/// An `error` frame, with the client id of the message it refuses.
pub(crate) fn error_frame(code: &str, message: &str, client_id: Option<&str>) -> Message {
    let mut data = json!({"code": code, "message": message});
    if let Some(client_id) = client_id {
        data["client_id"] = json!(client_id);
    }
    frame("error", data)
}

/// A close frame.
pub(crate) fn close_message(code: u16, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_parse_into_what_they_ask() {
        assert!(matches!(
            ClientFrame::parse(r#"{"type":"resume","data":{"last_seq":-3}}"#),
            Ok(Incoming::Resume { last_seq: 0 })
        ));
        assert!(matches!(
            ClientFrame::parse(r#"{"type":"read","data":{"up_to_seq":4}}"#),
            Ok(Incoming::Mark {
                read: true,
                up_to_seq: 4
            })
        ));
        assert!(matches!(
            ClientFrame::parse(r#"{"type":"typing","data":{"state":"on"}}"#),
            Ok(Incoming::Typing(true))
        ));
        assert!(matches!(
            ClientFrame::parse(r#"{"type":"message.send","data":{"client_id":"c1","text":"hi"}}"#),
            Ok(Incoming::Send(send)) if send.client_id == "c1" && send.text == "hi"
        ));
        assert!(matches!(ClientFrame::parse("[]"), Err(FrameError::NotJson)));
        assert!(matches!(
            ClientFrame::parse(r#"{"type":"resume"}"#),
            Err(FrameError::NoLastSeq)
        ));
        assert!(matches!(
            ClientFrame::parse(r#"{"type":"typing","data":{"state":"maybe"}}"#),
            Err(FrameError::TypingState(state)) if state == "maybe"
        ));
        assert!(matches!(
            ClientFrame::parse(r#"{"type":"dance"}"#),
            Err(FrameError::UnknownType(kind)) if kind == "dance"
        ));
    }
}
