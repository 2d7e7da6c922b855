//! Outbound e-mail: the RFC 5322 message Switchboard submits over SMTP. Its own `Message-ID`
//! (`<msg_…@sender domain>`, stored bare as the provider id, so bounces and replies find it),
//! `In-Reply-To` and `References` naming the customer's message so the reply lands in their
//! thread, `Reply-To`, and `Auto-Submitted: auto-replied` for automated authors (RFC 3834).

use lettre::Message;
use lettre::message::header::{ContentType, Header, HeaderName, HeaderValue};
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use switchboard_proto::common::v1::content_part::Part;

use crate::outbound::{BuildError, OutboundMessage, ProviderAccount};

/// `Auto-Submitted` (RFC 3834), which lettre does not define.
#[derive(Debug, Clone)]
struct AutoSubmitted(String);

impl Header for AutoSubmitted {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Auto-Submitted")
    }

    fn parse(value: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self(value.to_owned()))
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

/// A message id without its angle brackets.
fn bare(id: &str) -> &str {
    id.trim().trim_start_matches('<').trim_end_matches('>')
}

/// A media part's file, fetched by the caller, to attach as a MIME part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailFile {
    /// The media part's URL it was fetched from.
    pub url: String,
    /// Its content type (the part's, else the server's).
    pub content_type: String,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

/// The message submitted for `message` from the account's address, and its bare Message-ID
/// (the provider id). `automated` marks bot and workflow mail as auto-replied. Media parts
/// whose URL is among `files` are attached (`multipart/mixed`); others become links.
pub fn build_email(
    account: &ProviderAccount<'_>,
    message: &OutboundMessage<'_>,
    automated: bool,
    files: &[EmailFile],
) -> Result<(Message, String), BuildError> {
    let invalid =
        |what: &str, error: &dyn std::fmt::Display| BuildError::Unsupported(format!("{what}: {error}"));
    let from_name = account
        .settings
        .get("from_name")
        .cloned()
        .filter(|name| !name.is_empty());
    let from: Mailbox = Mailbox::new(
        from_name,
        account
            .external_id
            .parse()
            .map_err(|error| invalid("the account's address is not an e-mail address", &error))?,
    );
    let to: Mailbox = message
        .recipient
        .parse()
        .map_err(|error| invalid("the recipient is not an e-mail address", &error))?;
    let domain = account
        .external_id
        .rsplit_once('@')
        .map_or("switchboard.local", |(_, domain)| domain);
    let message_id = format!("{}@{domain}", message.message_id);
    let mut subject = String::new();
    let mut body = String::new();
    let mut attachments: Vec<SinglePart> = Vec::new();
    for part in &message.content.parts {
        match &part.part {
            Some(Part::Text(text)) => {
                if subject.is_empty() && !text.subject.trim().is_empty() {
                    subject = text.subject.trim().to_owned();
                }
                if !body.is_empty() {
                    body.push_str("\n\n");
                }
                body.push_str(&text.body);
            }
            Some(Part::Media(media)) if !media.url.is_empty() => {
                let name = if media.filename.is_empty() {
                    media
                        .url
                        .split('?')
                        .next()
                        .and_then(|path| path.rsplit('/').next())
                        .filter(|last| !last.is_empty())
                        .unwrap_or("attachment")
                } else {
                    &media.filename
                };
                match files.iter().find(|file| file.url == media.url) {
                    Some(file) => {
                        let content_type = ContentType::parse(&file.content_type)
                            .or_else(|_| ContentType::parse("application/octet-stream"))
                            .map_err(|error| invalid("the attachment's content type", &error))?;
                        attachments
                            .push(Attachment::new(name.to_owned()).body(file.bytes.clone(), content_type));
                        if !media.caption.is_empty() {
                            body.push_str(&format!("\n\n{}", media.caption));
                        }
                    }
                    None => {
                        body.push_str(&format!("\n\n{}: {}", name, media.url));
                        if !media.caption.is_empty() {
                            body.push_str(&format!("\n{}", media.caption));
                        }
                    }
                }
            }
            _ => {
                return Err(BuildError::Unsupported(
                    "e-mail carries text and attachment links".to_owned(),
                ));
            }
        }
    }
    let replying = message
        .reply_to_provider_message_id
        .map(bare)
        .filter(|id| !id.is_empty());
    if subject.is_empty() {
        subject = account
            .settings
            .get("default_subject")
            .cloned()
            .filter(|subject| !subject.is_empty())
            .unwrap_or_else(|| {
                if replying.is_some() {
                    "Re: your message".to_owned()
                } else {
                    "A message for you".to_owned()
                }
            });
    }
    let mut builder = Message::builder()
        .from(from.clone())
        .reply_to(
            match account
                .settings
                .get("reply_to")
                .filter(|address| !address.is_empty())
            {
                Some(address) => address
                    .parse()
                    .map_err(|error| invalid("the account's reply_to is not an e-mail address", &error))?,
                None => from,
            },
        )
        .to(to)
        .subject(subject)
        .message_id(Some(format!("<{message_id}>")));
    if let Some(original) = replying {
        builder = builder
            .in_reply_to(format!("<{original}>"))
            .references(format!("<{original}>"));
    }
    if automated {
        builder = builder.header(AutoSubmitted("auto-replied".to_owned()));
    }
    let email = if attachments.is_empty() {
        builder.header(ContentType::TEXT_PLAIN).body(body)
    } else {
        let mut parts = MultiPart::mixed().singlepart(SinglePart::plain(body));
        for attachment in attachments {
            parts = parts.singlepart(attachment);
        }
        builder.multipart(parts)
    }
    .map_err(|error| invalid("the message cannot be built", &error))?;
    Ok((email, message_id))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use switchboard_domain::Channel;
    use switchboard_proto::common::v1::{ContentPart, TextPart};
    use switchboard_proto::delivery::v1::OutboundContent;

    use super::*;

    #[test]
    fn a_reply_threads_under_the_customers_message_and_bots_mark_it_automatic() {
        let settings: BTreeMap<String, String> = [("from_name".to_owned(), "Acme Support".to_owned())].into();
        let secrets = BTreeMap::new();
        let account = ProviderAccount {
            id: "chacc_mail",
            channel: Channel::Email,
            external_id: "support@acme.test",
            base_url: None,
            settings: &settings,
            secrets: &secrets,
        };
        let content = OutboundContent {
            parts: vec![ContentPart {
                part: Some(Part::Text(TextPart {
                    body: "Your parcel ships today.\n.leading dot".to_owned(),
                    subject: "Re: Where is my order?".to_owned(),
                })),
            }],
            ..OutboundContent::default()
        };
        let message = OutboundMessage {
            message_id: "msg_0123",
            recipient: "ana@example.com",
            content: &content,
            reply_to_provider_message_id: Some("<CAF=abc@mail.example.com>"),
            human_agent_tag: false,
            author_kind: "bot",
        };
        let (email, id) = build_email(&account, &message, true, &[]).unwrap();
        assert_eq!(id, "msg_0123@acme.test");
        let text = String::from_utf8(email.formatted()).unwrap();
        assert!(text.contains("Message-ID: <msg_0123@acme.test>"), "{text}");
        assert!(text.contains("In-Reply-To: <CAF=abc@mail.example.com>"), "{text}");
        assert!(text.contains("References: <CAF=abc@mail.example.com>"), "{text}");
        assert!(text.contains("Auto-Submitted: auto-replied"), "{text}");
        assert!(text.contains("Subject: Re: Where is my order?"), "{text}");
        assert!(
            text.contains("From: \"Acme Support\" <support@acme.test>"),
            "{text}"
        );
        let (human, _) = build_email(&account, &message, false, &[]).unwrap();
        assert!(
            !String::from_utf8(human.formatted())
                .unwrap()
                .contains("Auto-Submitted")
        );
    }

    #[test]
    fn fetched_files_are_attached_and_the_rest_linked() {
        use switchboard_proto::common::v1::MediaPart;
        let (settings, secrets) = (BTreeMap::new(), BTreeMap::new());
        let account = ProviderAccount {
            id: "chacc_mail",
            channel: Channel::Email,
            external_id: "support@acme.test",
            base_url: None,
            settings: &settings,
            secrets: &secrets,
        };
        let media = |url: &str, filename: &str| ContentPart {
            part: Some(Part::Media(MediaPart {
                url: url.to_owned(),
                filename: filename.to_owned(),
                mime_type: "application/pdf".to_owned(),
                ..MediaPart::default()
            })),
        };
        let content = OutboundContent {
            parts: vec![
                ContentPart {
                    part: Some(Part::Text(TextPart {
                        body: "Your invoice.".to_owned(),
                        subject: "Invoice".to_owned(),
                    })),
                },
                media("https://files.test/invoice.pdf", "invoice.pdf"),
                media("https://files.test/terms.pdf", ""),
            ],
            ..OutboundContent::default()
        };
        let message = OutboundMessage {
            message_id: "msg_1",
            recipient: "ana@example.com",
            content: &content,
            reply_to_provider_message_id: None,
            human_agent_tag: false,
            author_kind: "agent",
        };
        let files = [EmailFile {
            url: "https://files.test/invoice.pdf".to_owned(),
            content_type: "application/pdf".to_owned(),
            bytes: b"%PDF-1.7 test".to_vec(),
        }];
        let (email, _) = build_email(&account, &message, false, &files).unwrap();
        let text = String::from_utf8(email.formatted()).unwrap();
        assert!(text.contains("multipart/mixed"), "{text}");
        assert!(
            text.contains("Content-Disposition: attachment; filename=\"invoice.pdf\""),
            "{text}"
        );
        assert!(text.contains("terms.pdf: https://files.test/terms.pdf"), "{text}");
        assert!(!text.contains("invoice.pdf: https://"), "{text}");
    }
}
