//! The web chat socket's frame parser (services/webchat `socket.rs`, `Connection::on_message`):
//! a client's text frame parsed as `ClientFrame` `{"type", "data"}`, then the fields each frame
//! type reads: `last_seq` (resume), `up_to_seq` (delivered, read), `state` (typing), and the
//! `VisitorSend` of `message.send` (also the REST fallback's body). The input is the text
//! frame; binary frames are refused before parsing, so invalid UTF-8 is skipped.

#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use switchboard_webchat::{ClientFrame, VisitorSend};

/// The socket's default `max_frame_bytes`: larger frames close the socket unread (1009).
const MAX_FRAME_BYTES: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if text.len() > MAX_FRAME_BYTES {
        return;
    }
    if serde_json::from_str::<ClientFrame>(text).is_err() {
        return;
    }
    // The frame's fields are private to the socket; read the same JSON for what each frame
    // type looks at. serde's derive reads a struct from an object or, as well, from an array
    // `["<type>", <data>]`. (A frame can parse and not be a `Value`: the frame skips unknown
    // fields without reading their numbers, which may be out of range.)
    let Ok(frame) = serde_json::from_str::<Value>(text) else {
        return;
    };
    let (kind, data) = match &frame {
        Value::Object(object) => (object.get("type"), object.get("data")),
        Value::Array(items) => (items.first(), items.get(1)),
        _ => panic!("a frame parsed from neither an object nor an array: {text:?}"),
    };
    let kind = kind.and_then(Value::as_str);
    assert!(kind.is_some(), "a frame without a string type parsed: {text:?}");
    let data = data.cloned().unwrap_or(Value::Null);
    match kind {
        Some("resume") => {
            let _ = data.get("last_seq").and_then(Value::as_i64).map(|seq| seq.max(0));
        }
        Some("delivered" | "read") => {
            let _ = data.get("up_to_seq").and_then(Value::as_i64);
        }
        Some("typing") => {
            let _ = data.get("state").and_then(Value::as_str);
        }
        _ => {}
    }
    // Whatever the type, so the fuzzer explores `VisitorSend` from every frame.
    let _ = serde_json::from_value::<VisitorSend>(data);
    let _ = serde_json::from_str::<VisitorSend>(text);
});
