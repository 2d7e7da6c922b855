//! E-mail: raw MIME (Switchboard's SMTP listener and raw-MIME parse webhooks) parsed with
//! mail-parser, delivery-status notifications (bounces of our mail) turned into failed
//! receipts, and the inbound-parse webhooks of Mailgun, Postmark and SendGrid.
//! See RFC 5322, RFC 2045–2049, RFC 3464 (DSN) and RFC 3834 (auto-replies).

mod form_data;
mod mailgun;
mod mime;
mod outbound;
mod postmark;
mod sendgrid;

pub use mailgun::{normalize as normalize_mailgun, verify_signature as verify_mailgun_signature};
pub use mime::normalize_raw;
pub use outbound::{EmailFile, build_email};
/// SendGrid Inbound Parse URLs are protected with Basic auth credentials, checked as Postmark's.
pub use postmark::verify_basic_auth as verify_sendgrid_basic_auth;
pub use postmark::{normalize as normalize_postmark, verify_basic_auth as verify_postmark_basic_auth};
pub use sendgrid::normalize as normalize_sendgrid;

use switchboard_domain::Channel;
use switchboard_proto::common::v1 as common;
use switchboard_proto::events::v1 as events;

use crate::{NormalizeContext, Verified};

/// Marks a message received by Switchboard's own SMTP listener as authenticated: the listener
/// accepted it only for a recipient that maps to an enabled e-mail account (SMTP carries no
/// signature; SPF/DKIM results travel in the message's own `Authentication-Results`).
pub fn accepted_by_smtp_listener(raw: &[u8]) -> Verified<'_> {
    Verified::new(raw)
}

/// An e-mail reduced to what Switchboard keeps, whatever transport delivered it.
#[derive(Debug, Default)]
pub(crate) struct Email {
    pub message_id: String,
    pub in_reply_to: String,
    pub references: Vec<String>,
    pub from_address: String,
    pub from_name: String,
    pub subject: String,
    pub text: String,
    pub date_seconds: Option<i64>,
    pub attachments: Vec<AttachmentInfo>,
}

/// An attachment's metadata (its content is stored by ingress, not carried on the bus).
#[derive(Debug, Default)]
pub(crate) struct AttachmentInfo {
    pub filename: String,
    pub content_type: String,
    pub size: u64,
}

/// `In-Reply-To` and `References` header values as bare Message-IDs (parse webhooks hand
/// them over as text).
pub(crate) fn reply_headers(in_reply_to: &str, references: &str) -> (String, Vec<String>) {
    (
        bare_message_id(in_reply_to),
        references.split_whitespace().map(bare_message_id).collect(),
    )
}

/// Removes angle brackets and spaces from a Message-ID.
pub(crate) fn bare_message_id(value: &str) -> String {
    value
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim()
        .to_owned()
}

/// The result of a parse webhook: one message, identified for replays by the provider's
/// delivery id (Mailgun token, Postmark MessageID).
pub(crate) fn single_message(
    email: Email,
    context: &NormalizeContext,
    delivery_id: String,
) -> crate::Normalized {
    let mut event = message_event(email, context);
    event.provider_event_id = delivery_id;
    crate::Normalized {
        events: vec![event],
        skipped: Vec::new(),
    }
}

/// The `type/subtype` of a MIME part, when it declares one.
pub(crate) fn mime_type<'x>(part: &impl mail_parser::MimeHeaders<'x>) -> Option<String> {
    part.content_type()
        .map(|content_type| match content_type.subtype() {
            Some(subtype) => format!("{}/{subtype}", content_type.ctype()),
            None => content_type.ctype().to_owned(),
        })
}

/// The content part describing one attachment.
pub(crate) fn attachment_part(attachment: &AttachmentInfo) -> common::ContentPart {
    common::ContentPart {
        part: Some(common::content_part::Part::Media(common::MediaPart {
            kind: crate::normalize::media_kind_of_mime(&attachment.content_type) as i32,
            mime_type: attachment.content_type.clone(),
            size_bytes: attachment.size,
            filename: attachment.filename.clone(),
            ..common::MediaPart::default()
        })),
    }
}

/// Turns a parsed e-mail into an inbound message event.
pub(crate) fn message_event(email: Email, context: &NormalizeContext) -> events::InboundEvent {
    // Forms, multipart fields and MIME can carry NULs (`%00`, raw bytes): none may reach a store.
    use crate::normalize::without_nul;
    let email = Email {
        message_id: without_nul(email.message_id),
        in_reply_to: without_nul(email.in_reply_to),
        references: email.references.into_iter().map(without_nul).collect(),
        from_address: without_nul(email.from_address),
        from_name: without_nul(email.from_name),
        subject: without_nul(email.subject),
        text: without_nul(email.text),
        date_seconds: email.date_seconds,
        attachments: email
            .attachments
            .into_iter()
            .map(|attachment| AttachmentInfo {
                filename: without_nul(attachment.filename),
                content_type: without_nul(attachment.content_type),
                size: attachment.size,
            })
            .collect(),
    };
    let mut parts = vec![common::ContentPart {
        part: Some(common::content_part::Part::Text(common::TextPart {
            body: email.text,
            subject: email.subject,
        })),
    }];
    parts.extend(email.attachments.iter().map(attachment_part));
    let thread_root = email
        .references
        .first()
        .cloned()
        .unwrap_or_else(|| email.message_id.clone());
    events::InboundEvent {
        channel: Channel::Email.to_proto() as i32,
        channel_account_id: context.channel_account_id.to_string(),
        provider_timestamp: email
            .date_seconds
            .and_then(|seconds| u64::try_from(seconds).ok())
            .and_then(|seconds| std::time::UNIX_EPOCH.checked_add(std::time::Duration::from_secs(seconds)))
            .map(Into::into),
        received_at: Some(context.received_at.into()),
        sender: Some(common::SenderIdentity {
            channel_user_id: email.from_address.to_lowercase(),
            email: email.from_address.to_lowercase(),
            display_name: email.from_name,
            ..common::SenderIdentity::default()
        }),
        provider_conversation_key: thread_root,
        kind: Some(events::inbound_event::Kind::Message(events::InboundMessage {
            provider_message_id: email.message_id.clone(),
            parts,
            reply_to_provider_message_id: email.in_reply_to.clone(),
            email: Some(events::EmailThreading {
                message_id: email.message_id,
                in_reply_to: email.in_reply_to,
                references: email.references,
            }),
            ..events::InboundMessage::default()
        })),
        ..events::InboundEvent::default()
    }
}
