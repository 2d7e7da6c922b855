//! Builders shared by the outbound adapters' unit tests.

use std::collections::BTreeMap;

use serde_json::Value;
use switchboard_domain::Channel;
use switchboard_proto::common::v1::content_part::Part;
use switchboard_proto::common::v1::{ContentPart, MediaKind, MediaPart, TextPart};
use switchboard_proto::delivery::v1::{Button, OutboundContent};

use super::{OutboundMessage, ProviderAccount, ProviderRequest};

/// A text part.
pub(crate) fn text(body: &str) -> ContentPart {
    ContentPart {
        part: Some(Part::Text(TextPart {
            body: body.to_owned(),
            subject: String::new(),
        })),
    }
}

/// A media part fetched from `url`.
pub(crate) fn media(kind: MediaKind, url: &str) -> MediaPart {
    MediaPart {
        kind: kind as i32,
        url: url.to_owned(),
        ..MediaPart::default()
    }
}

/// Wraps a media part.
pub(crate) fn part(media: MediaPart) -> ContentPart {
    ContentPart {
        part: Some(Part::Media(media)),
    }
}

/// Content made of `parts`.
pub(crate) fn parts(parts: Vec<ContentPart>) -> OutboundContent {
    OutboundContent {
        parts,
        ..OutboundContent::default()
    }
}

/// A reply button.
pub(crate) fn button(id: &str, title: &str) -> Button {
    Button {
        id: id.to_owned(),
        title: title.to_owned(),
        url: String::new(),
    }
}

/// The settings and secrets a [`ProviderAccount`] borrows.
#[derive(Default)]
pub(crate) struct Fixture {
    /// Non-secret settings.
    pub(crate) settings: BTreeMap<String, String>,
    /// Secrets.
    pub(crate) secrets: BTreeMap<String, String>,
}

impl Fixture {
    /// A fixture with `secrets` and `settings` as `(name, value)` pairs.
    pub(crate) fn new(secrets: &[(&str, &str)], settings: &[(&str, &str)]) -> Self {
        let map = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                .collect()
        };
        Self {
            settings: map(settings),
            secrets: map(secrets),
        }
    }

    /// The account `external_id` on `channel`, with `base_url` as the override.
    pub(crate) fn account<'a>(
        &'a self,
        channel: Channel,
        external_id: &'a str,
        base_url: Option<&'a str>,
    ) -> ProviderAccount<'a> {
        ProviderAccount {
            id: "chacc_test",
            channel,
            external_id,
            base_url,
            settings: &self.settings,
            secrets: &self.secrets,
        }
    }
}

/// Message `msg_1` to `recipient`, no quote, no tag.
pub(crate) fn message<'a>(recipient: &'a str, content: &'a OutboundContent) -> OutboundMessage<'a> {
    OutboundMessage {
        message_id: "msg_1",
        recipient,
        content,
        reply_to_provider_message_id: None,
        human_agent_tag: false,
        author_kind: "agent",
    }
}

/// The request's body parsed as JSON.
pub(crate) fn json_body(request: &ProviderRequest) -> Value {
    serde_json::from_slice(&request.body).expect("the body is JSON")
}

/// The request's header `name` as text ("" when absent).
pub(crate) fn header<'r>(request: &'r ProviderRequest, name: &str) -> &'r str {
    request
        .headers
        .get(name)
        .map(|value| value.to_str().expect("a text header"))
        .unwrap_or_default()
}

/// Headers with `Retry-After: seconds`.
pub(crate) fn retry_after(seconds: &'static str) -> http::HeaderMap {
    let mut headers = http::HeaderMap::new();
    headers.insert(http::header::RETRY_AFTER, http::HeaderValue::from_static(seconds));
    headers
}
