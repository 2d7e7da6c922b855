//! The shapes an [`OutboundContent`] may take on a one-message-per-call channel (WhatsApp,
//! Messenger, Instagram, Telegram): a text, one media with an optional caption, a location, a
//! template or an interactive message. Anything else is refused before any provider call.

use switchboard_proto::common::v1::content_part::Part;
use switchboard_proto::common::v1::{LocationPart, MediaKind, MediaPart};
use switchboard_proto::delivery::v1::{Interactive, OutboundContent, Template};

use super::BuildError;

/// One outbound message, checked and reduced to what a provider call carries.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Shape<'c> {
    /// A single non-empty text.
    Text(&'c str),
    /// One media file and its caption (empty without one).
    Media(Media<'c>),
    /// A single location.
    Location(&'c LocationPart),
    /// A WhatsApp template.
    Template(&'c Template),
    /// Buttons or a list, with a non-empty body.
    Interactive(&'c Interactive),
}

/// One media part with its effective kind and caption.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Media<'c> {
    /// The part itself (url, provider_media_id, filename, voice flag).
    pub(crate) part: &'c MediaPart,
    /// The part's kind, inferred from the MIME type when unspecified.
    pub(crate) kind: MediaKind,
    /// The caption: the part's own, or the message's text part; empty without one.
    pub(crate) caption: &'c str,
}

/// Where the file comes from: a handle the provider already holds, or a URL it fetches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source<'c> {
    /// The provider's media id (WhatsApp media id, Telegram file_id, Messenger attachment id).
    Id(&'c str),
    /// A URL the provider downloads.
    Url(&'c str),
}

impl<'c> Media<'c> {
    /// Where the file comes from; see [`source`].
    pub(crate) fn source(&self) -> Source<'c> {
        source(self.part)
    }
}

/// The provider media id when set (already uploaded, nothing to fetch), else the URL.
pub(crate) fn source(part: &MediaPart) -> Source<'_> {
    if part.provider_media_id.is_empty() {
        Source::Url(&part.url)
    } else {
        Source::Id(&part.provider_media_id)
    }
}

/// Reduces `content` to one [`Shape`], or says why it cannot be sent as one message.
pub(crate) fn shape(content: &OutboundContent) -> Result<Shape<'_>, BuildError> {
    let kinds = usize::from(!content.parts.is_empty())
        + usize::from(content.template.is_some())
        + usize::from(content.interactive.is_some());
    if kinds > 1 {
        return Err(unsupported(
            "content must be exactly one of parts, a template or an interactive message",
        ));
    }
    if let Some(template) = &content.template {
        return Ok(Shape::Template(template));
    }
    if let Some(interactive) = &content.interactive {
        return interactive_shape(interactive);
    }
    parts_shape(content)
}

fn interactive_shape(interactive: &Interactive) -> Result<Shape<'_>, BuildError> {
    if interactive.body.trim().is_empty() {
        return Err(unsupported("an interactive message needs a body text"));
    }
    match (&interactive.list, interactive.buttons.is_empty()) {
        (Some(_), false) => Err(unsupported(
            "an interactive message has buttons or a list, not both",
        )),
        (None, true) => Err(unsupported("an interactive message needs buttons or a list")),
        _ => Ok(Shape::Interactive(interactive)),
    }
}

fn parts_shape(content: &OutboundContent) -> Result<Shape<'_>, BuildError> {
    let mut texts = Vec::new();
    let mut media = Vec::new();
    let mut locations = Vec::new();
    for part in &content.parts {
        match &part.part {
            Some(Part::Text(text)) => texts.push(text.body.as_str()),
            Some(Part::Media(part)) => media.push(part),
            Some(Part::Location(location)) => locations.push(location),
            Some(Part::ContactCard(_)) => return Err(unsupported("contact cards cannot be sent")),
            Some(Part::Choice(_)) => return Err(unsupported("choice parts cannot be sent")),
            Some(Part::Unsupported(_)) => return Err(unsupported("unsupported parts cannot be sent")),
            None => return Err(unsupported("a content part is empty")),
        }
    }
    match (texts.as_slice(), media.as_slice(), locations.as_slice()) {
        ([], [], []) => Err(unsupported("the message has no content")),
        ([], [], [location]) => Ok(Shape::Location(location)),
        (_, _, [_, ..]) => Err(unsupported("a location must be sent alone, as the only part")),
        ([text], [], []) if text.trim().is_empty() => Err(unsupported("the text part is empty")),
        ([text], [], []) => Ok(Shape::Text(text)),
        (texts, [part], []) if texts.len() <= 1 => media_shape(part, texts.first().copied()),
        (_, [_, _, ..], _) => Err(unsupported(
            "at most one media part per message on this channel: send each file as its own message",
        )),
        _ => Err(unsupported("at most one text part per message")),
    }
}

fn media_shape<'c>(part: &'c MediaPart, text: Option<&'c str>) -> Result<Shape<'c>, BuildError> {
    if part.url.is_empty() && part.provider_media_id.is_empty() {
        return Err(unsupported("a media part needs a url or a provider_media_id"));
    }
    let text = text.unwrap_or_default();
    let caption = match (part.caption.trim().is_empty(), text.trim().is_empty()) {
        (false, false) => {
            return Err(unsupported(
                "the media part has a caption and there is a text part too: send one of them",
            ));
        }
        (false, true) => part.caption.as_str(),
        (true, false) => text,
        (true, true) => "",
    };
    Ok(Shape::Media(Media {
        part,
        kind: media_kind(part),
        caption,
    }))
}

/// The part's kind; an unspecified kind is inferred from the MIME type (`image/*`, `video/*`,
/// `audio/*`, anything else a document).
pub(crate) fn media_kind(part: &MediaPart) -> MediaKind {
    match part.kind() {
        MediaKind::Unspecified => {
            let mime = part.mime_type.to_ascii_lowercase();
            if mime.starts_with("image/") {
                MediaKind::Image
            } else if mime.starts_with("video/") {
                MediaKind::Video
            } else if mime.starts_with("audio/") {
                MediaKind::Audio
            } else {
                MediaKind::Document
            }
        }
        kind => kind,
    }
}

/// A [`BuildError::Unsupported`] with `message`.
pub(crate) fn unsupported(message: impl Into<String>) -> BuildError {
    BuildError::Unsupported(message.into())
}

#[cfg(test)]
mod tests {
    use switchboard_proto::common::v1::{ContactCardPart, ContentPart};

    use super::*;
    use crate::outbound::testing::{button, media, part, parts, text};

    fn refused(content: &OutboundContent) -> String {
        match shape(content) {
            Err(BuildError::Unsupported(message)) => message,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_text_part_after_a_media_part_becomes_its_caption() {
        let content = parts(vec![
            part(media(MediaKind::Image, "https://x/a.jpg")),
            text("Look"),
        ]);
        let Ok(Shape::Media(found)) = shape(&content) else {
            panic!("expected media");
        };
        assert_eq!(found.caption, "Look");
        assert_eq!(found.kind, MediaKind::Image);
        assert_eq!(found.source(), Source::Url("https://x/a.jpg"));
        let mut uploaded = media(MediaKind::Video, "https://x/v.mp4");
        uploaded.provider_media_id = "MEDIA_1".to_owned();
        uploaded.caption = "own".to_owned();
        let content = parts(vec![part(uploaded)]);
        let Ok(Shape::Media(found)) = shape(&content) else {
            panic!("expected media");
        };
        assert_eq!((found.source(), found.caption), (Source::Id("MEDIA_1"), "own"));
    }

    #[test]
    fn the_kind_is_inferred_from_the_mime_type_when_unspecified() {
        let mut part = media(MediaKind::Unspecified, "https://x/f");
        for (mime, kind) in [
            ("image/png", MediaKind::Image),
            ("VIDEO/mp4", MediaKind::Video),
            ("audio/ogg", MediaKind::Audio),
            ("application/pdf", MediaKind::Document),
            ("", MediaKind::Document),
        ] {
            part.mime_type = mime.to_owned();
            assert_eq!(media_kind(&part), kind, "{mime}");
        }
    }

    #[test]
    fn content_that_is_not_one_message_is_refused_with_a_reason() {
        let image = || part(media(MediaKind::Image, "https://x/a.jpg"));
        let location = ContentPart {
            part: Some(Part::Location(LocationPart::default())),
        };
        let cases = [
            (OutboundContent::default(), "no content"),
            (parts(vec![text("a"), text("b")]), "at most one text part"),
            (parts(vec![image(), image()]), "at most one media part"),
            (
                parts(vec![location.clone(), text("a")]),
                "location must be sent alone",
            ),
            (parts(vec![text("  ")]), "text part is empty"),
            (
                parts(vec![part(media(MediaKind::Image, ""))]),
                "url or a provider_media_id",
            ),
            (
                parts(vec![ContentPart {
                    part: Some(Part::ContactCard(ContactCardPart::default())),
                }]),
                "contact cards",
            ),
            (
                OutboundContent {
                    parts: vec![text("a")],
                    template: Some(Template::default()),
                    interactive: None,
                },
                "exactly one of",
            ),
            (
                OutboundContent {
                    interactive: Some(Interactive {
                        body: "Pick".to_owned(),
                        ..Interactive::default()
                    }),
                    ..OutboundContent::default()
                },
                "needs buttons or a list",
            ),
            (
                OutboundContent {
                    interactive: Some(Interactive {
                        body: String::new(),
                        buttons: vec![button("a", "A")],
                        list: None,
                    }),
                    ..OutboundContent::default()
                },
                "needs a body",
            ),
        ];
        for (content, expected) in cases {
            let message = refused(&content);
            assert!(
                message.contains(expected),
                "{message:?} should mention {expected:?}"
            );
        }
        let mut captioned = media(MediaKind::Image, "https://x/a.jpg");
        captioned.caption = "own".to_owned();
        assert!(refused(&parts(vec![part(captioned), text("more")])).contains("send one of them"));
        assert!(matches!(shape(&parts(vec![location])), Ok(Shape::Location(_))));
    }
}
