//! The web chat socket's frame parser (services/webchat `frames.rs`, `ClientFrame::parse`): a
//! client's text frame parsed as `{"type", "data"}` into the frame it is, with the fields each
//! frame type reads: `last_seq` (resume), `up_to_seq` (delivered, read), `state` (typing), and
//! the `VisitorSend` of `message.send`. The REST fallback's body is a `VisitorSend` too. The
//! input is the text frame; binary frames are refused before parsing, so invalid UTF-8 is
//! skipped.

#![no_main]

use libfuzzer_sys::fuzz_target;
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
    let _ = ClientFrame::parse(text);
    let _ = serde_json::from_str::<VisitorSend>(text);
});
