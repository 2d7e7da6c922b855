//! What a message may carry on each channel: text limits (the provider's maximum, and the
//! workspace cap for agents), attachments (at most 20 MB, never executables), templates and
//! interactive elements. Checked before a message is stored, so a refused send makes no
//! provider call.

use switchboard_domain::Channel;
use switchboard_proto::common::v1::{ContentPart, MediaPart, TextPart, content_part::Part};
use switchboard_proto::delivery::v1::{AuthorKind, OutboundContent};

use crate::DeliveryError;

pub use switchboard_channels::media::MAX_ATTACHMENT_BYTES;
use switchboard_channels::media::{executable_name, executable_type};

/// The provider's longest text, in characters.
pub fn provider_text_limit(channel: Channel) -> usize {
    match channel {
        Channel::Whatsapp | Channel::Telegram => 4096,
        Channel::Messenger => 2000,
        Channel::Instagram => 1000,
        Channel::Sms => 1600,
        Channel::Email => 100_000,
        Channel::Webchat => 5000,
    }
}

/// Longest caption, in characters.
fn caption_limit(channel: Channel) -> usize {
    match channel {
        Channel::Telegram => 1024,
        other => provider_text_limit(other),
    }
}

/// Whether the content is free-form (needs an open window) or a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentKind {
    /// Text, media, location, interactive.
    FreeForm,
    /// A WhatsApp template.
    Template,
}

/// Checks `content` against the channel's rules; returns whether it is free-form.
pub fn validate(
    channel: Channel,
    author: AuthorKind,
    content: &OutboundContent,
    agent_text_limit: usize,
) -> Result<ContentKind, DeliveryError> {
    let filled = [
        !content.parts.is_empty(),
        content.template.is_some(),
        content.interactive.is_some(),
    ]
    .iter()
    .filter(|filled| **filled)
    .count();
    if filled != 1 {
        return Err(DeliveryError::content(
            "CONTENT_SHAPE",
            "content needs exactly one of: parts, template, interactive",
        ));
    }
    let text_limit = if author == AuthorKind::Agent {
        agent_text_limit.min(provider_text_limit(channel))
    } else {
        provider_text_limit(channel)
    };
    if let Some(template) = &content.template {
        if channel != Channel::Whatsapp {
            return Err(unsupported(channel, "templates"));
        }
        if template.name.trim().is_empty() || template.language.trim().is_empty() {
            return Err(DeliveryError::content(
                "TEMPLATE_INVALID",
                "a template needs a name and a language",
            ));
        }
        let declared = template.declared_body_parameters as usize;
        if declared > 0 && declared != template.body_parameters.len() {
            return Err(DeliveryError::content(
                "TEMPLATE_PARAMETERS",
                format!(
                    "template {} declares {declared} body parameters; {} given",
                    template.name,
                    template.body_parameters.len()
                ),
            ));
        }
        if let Some(media) = &template.header_media {
            check_media(media)?;
        }
        return Ok(ContentKind::Template);
    }
    if let Some(interactive) = &content.interactive {
        check_text(&interactive.body, text_limit, "interactive body")?;
        let (max_buttons, title_limit) = match channel {
            Channel::Whatsapp => (3, 20),
            Channel::Messenger | Channel::Instagram => (13, 20),
            Channel::Telegram => (100, 64),
            Channel::Webchat => (10, 64),
            Channel::Sms | Channel::Email => return Err(unsupported(channel, "interactive messages")),
        };
        if interactive.list.is_some() && channel != Channel::Whatsapp {
            return Err(unsupported(channel, "list messages"));
        }
        if interactive.list.is_some() != interactive.buttons.is_empty() {
            return Err(DeliveryError::content(
                "CONTENT_SHAPE",
                "an interactive message has either buttons or a list",
            ));
        }
        if interactive.buttons.len() > max_buttons {
            return Err(DeliveryError::content(
                "TOO_MANY_BUTTONS",
                format!("{} allows at most {max_buttons} buttons", channel.as_str()),
            ));
        }
        for button in &interactive.buttons {
            if button.title.trim().is_empty() || button.title.chars().count() > title_limit {
                return Err(DeliveryError::content(
                    "BUTTON_TITLE",
                    format!(
                        "button titles on {} need 1–{title_limit} characters",
                        channel.as_str()
                    ),
                ));
            }
        }
        return Ok(ContentKind::FreeForm);
    }
    let mut media = 0;
    for part in &content.parts {
        match &part.part {
            Some(Part::Text(text)) => check_text(&text.body, text_limit, "text")?,
            Some(Part::Media(attachment)) => {
                media += 1;
                check_media(attachment)?;
                if attachment.caption.chars().count() > caption_limit(channel) {
                    return Err(DeliveryError::content(
                        "TEXT_TOO_LONG",
                        format!(
                            "captions on {} are at most {} characters",
                            channel.as_str(),
                            caption_limit(channel)
                        ),
                    ));
                }
            }
            Some(Part::Location(_)) if matches!(channel, Channel::Whatsapp | Channel::Telegram) => {}
            Some(Part::Location(_)) => return Err(unsupported(channel, "locations")),
            _ => {
                return Err(DeliveryError::content(
                    "UNSUPPORTED_PART",
                    "outbound parts are text, media or location",
                ));
            }
        }
    }
    if media > 1 && channel != Channel::Sms && channel != Channel::Email {
        return Err(DeliveryError::content(
            "TOO_MANY_ATTACHMENTS",
            format!("{} sends one attachment per message", channel.as_str()),
        ));
    }
    Ok(ContentKind::FreeForm)
}

fn unsupported(channel: Channel, what: &str) -> DeliveryError {
    DeliveryError::content(
        "UNSUPPORTED_CONTENT",
        format!("{} cannot send {what}", channel.as_str()),
    )
}

fn check_text(body: &str, limit: usize, what: &str) -> Result<(), DeliveryError> {
    if body.trim().is_empty() {
        return Err(DeliveryError::content("EMPTY_TEXT", format!("{what} is empty")));
    }
    let length = body.chars().count();
    if length > limit {
        return Err(DeliveryError::content(
            "TEXT_TOO_LONG",
            format!("{what} has {length} characters; at most {limit} are allowed here"),
        ));
    }
    Ok(())
}

/// Size, reference and type checks of one attachment (its bytes are checked by
/// [`crate::transport::AttachmentCheck`] before the message is stored).
fn check_media(media: &MediaPart) -> Result<(), DeliveryError> {
    if media.url.is_empty() && media.provider_media_id.is_empty() {
        return Err(DeliveryError::content(
            "MEDIA_REFERENCE",
            "an attachment needs a url or a provider_media_id",
        ));
    }
    if !(media.url.is_empty() || media.url.starts_with("https://") || media.url.starts_with("http://")) {
        return Err(DeliveryError::content(
            "MEDIA_REFERENCE",
            "attachment urls must be http(s)",
        ));
    }
    if media.size_bytes > MAX_ATTACHMENT_BYTES {
        return Err(too_large(media.size_bytes));
    }
    if executable_name(&media.filename) || executable_name(media.url.split('?').next().unwrap_or_default()) {
        return Err(executable("its name"));
    }
    if executable_type(&media.mime_type) {
        return Err(executable("its type"));
    }
    Ok(())
}

/// The refusal of an attachment over [`MAX_ATTACHMENT_BYTES`].
pub fn too_large(size: u64) -> DeliveryError {
    DeliveryError::content(
        "ATTACHMENT_TOO_LARGE",
        format!("the attachment has {size} bytes; at most {MAX_ATTACHMENT_BYTES} (20 MB) are allowed"),
    )
}

/// The refusal of an executable attachment, found by `how`.
pub fn executable(how: &str) -> DeliveryError {
    DeliveryError::content(
        "EXECUTABLE_ATTACHMENT",
        format!("executable attachments are not sent (found by {how})"),
    )
}

/// The attachments of `content` that have a URL to check.
pub fn media_urls(content: &OutboundContent) -> Vec<&str> {
    let mut urls: Vec<&str> = content
        .parts
        .iter()
        .filter_map(|part| match &part.part {
            Some(Part::Media(media)) if !media.url.is_empty() => Some(media.url.as_str()),
            _ => None,
        })
        .collect();
    if let Some(media) = content
        .template
        .as_ref()
        .and_then(|template| template.header_media.as_ref())
        && !media.url.is_empty()
    {
        urls.push(&media.url);
    }
    urls
}

/// History parts of a template or interactive message (routing shows text).
pub fn history_parts(content: &OutboundContent) -> Vec<ContentPart> {
    let body = if let Some(template) = &content.template {
        format!(
            "[template {} ({})] {}",
            template.name,
            template.language,
            template.body_parameters.join(", ")
        )
    } else if let Some(interactive) = &content.interactive {
        interactive.body.clone()
    } else {
        String::new()
    };
    vec![ContentPart {
        part: Some(Part::Text(TextPart {
            body,
            subject: String::new(),
        })),
    }]
}

#[cfg(test)]
mod tests {
    use switchboard_proto::delivery::v1::{Button, Interactive, Template};

    use super::*;

    fn text(body: &str) -> OutboundContent {
        OutboundContent {
            parts: vec![ContentPart {
                part: Some(Part::Text(TextPart {
                    body: body.to_owned(),
                    subject: String::new(),
                })),
            }],
            ..OutboundContent::default()
        }
    }

    fn reason(error: DeliveryError) -> &'static str {
        match error {
            DeliveryError::Content { reason, .. } => reason,
            other => panic!("not a content error: {other}"),
        }
    }

    #[test]
    fn agent_text_is_capped_by_the_workspace_and_every_author_by_the_provider() {
        let long = "x".repeat(600);
        assert_eq!(
            reason(validate(Channel::Whatsapp, AuthorKind::Agent, &text(&long), 512).unwrap_err()),
            "TEXT_TOO_LONG"
        );
        assert!(validate(Channel::Whatsapp, AuthorKind::Bot, &text(&long), 512).is_ok());
        let too_long = "é".repeat(1001);
        assert_eq!(
            reason(validate(Channel::Instagram, AuthorKind::Api, &text(&too_long), 512).unwrap_err()),
            "TEXT_TOO_LONG"
        );
        assert!(validate(Channel::Instagram, AuthorKind::Api, &text(&"é".repeat(1000)), 512).is_ok());
    }

    #[test]
    fn attachments_are_refused_by_size_name_type_and_bytes() {
        let media = |media: MediaPart| OutboundContent {
            parts: vec![ContentPart {
                part: Some(Part::Media(media)),
            }],
            ..OutboundContent::default()
        };
        let base = MediaPart {
            url: "https://cdn.example.com/a.pdf".to_owned(),
            ..MediaPart::default()
        };
        assert!(validate(Channel::Whatsapp, AuthorKind::Api, &media(base.clone()), 512).is_ok());
        let big = MediaPart {
            size_bytes: MAX_ATTACHMENT_BYTES + 1,
            ..base.clone()
        };
        assert_eq!(
            reason(validate(Channel::Whatsapp, AuthorKind::Api, &media(big), 512).unwrap_err()),
            "ATTACHMENT_TOO_LARGE"
        );
        let exe = MediaPart {
            url: "https://cdn.example.com/setup.EXE?x=1".to_owned(),
            ..base.clone()
        };
        assert_eq!(
            reason(validate(Channel::Telegram, AuthorKind::Api, &media(exe), 512).unwrap_err()),
            "EXECUTABLE_ATTACHMENT"
        );
        let typed = MediaPart {
            mime_type: "application/x-msdownload".to_owned(),
            ..base
        };
        assert_eq!(
            reason(validate(Channel::Telegram, AuthorKind::Api, &media(typed), 512).unwrap_err()),
            "EXECUTABLE_ATTACHMENT"
        );
    }

    #[test]
    fn templates_and_buttons_follow_the_channel() {
        let template = OutboundContent {
            template: Some(Template {
                name: "order_shipped".to_owned(),
                language: "en_US".to_owned(),
                body_parameters: vec!["Ana".to_owned()],
                declared_body_parameters: 2,
                ..Template::default()
            }),
            ..OutboundContent::default()
        };
        assert_eq!(
            reason(validate(Channel::Whatsapp, AuthorKind::Api, &template, 512).unwrap_err()),
            "TEMPLATE_PARAMETERS"
        );
        assert_eq!(
            reason(validate(Channel::Telegram, AuthorKind::Api, &template, 512).unwrap_err()),
            "UNSUPPORTED_CONTENT"
        );
        let buttons = |count: usize| OutboundContent {
            interactive: Some(Interactive {
                body: "Pick one".to_owned(),
                buttons: (0..count)
                    .map(|index| Button {
                        id: format!("b{index}"),
                        title: format!("Option {index}"),
                        url: String::new(),
                    })
                    .collect(),
                list: None,
            }),
            ..OutboundContent::default()
        };
        assert!(validate(Channel::Whatsapp, AuthorKind::Bot, &buttons(3), 512).is_ok());
        assert_eq!(
            reason(validate(Channel::Whatsapp, AuthorKind::Bot, &buttons(4), 512).unwrap_err()),
            "TOO_MANY_BUTTONS"
        );
        assert!(validate(Channel::Messenger, AuthorKind::Bot, &buttons(13), 512).is_ok());
        assert_eq!(
            reason(validate(Channel::Sms, AuthorKind::Bot, &buttons(1), 512).unwrap_err()),
            "UNSUPPORTED_CONTENT"
        );
    }
}
