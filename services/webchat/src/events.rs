//! The bus events web chat publishes: a visitor's message and the delivered / read receipts
//! of outbound messages, as `InboundEvent`s like every other channel's (through the outbox),
//! and visitor typing as an optional notification.

use std::time::SystemTime;

use switchboard_directory::ResolvedAccount;
use switchboard_domain::Channel;
use switchboard_proto::common::v1::content_part::Part;
use switchboard_proto::common::v1::{ContentPart, DeliveryStatus, MediaPart, SenderIdentity, TextPart};
use switchboard_proto::events::v1::{
    Envelope, InboundEvent, InboundMessage, StatusReceipt, envelope, inbound_event,
};

use crate::store::{StoredMessage, Visitor};

/// The event type of visitor typing (`webchat.visitor_typing`); optional subscribers only.
pub const VISITOR_TYPING_EVENT: &str = "webchat.visitor_typing";

fn timestamp(at: chrono::DateTime<chrono::Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

fn sender(visitor: &Visitor) -> SenderIdentity {
    SenderIdentity {
        channel_user_id: visitor.visitor_id.clone(),
        phone_e164: visitor.phone.clone(),
        email: visitor.email.clone(),
        display_name: visitor.name.clone(),
        // The pre-chat form's phone and e-mail are whatever the visitor typed.
        contact_fields_unverified: true,
        ..SenderIdentity::default()
    }
}

fn event(
    account: &ResolvedAccount,
    visitor: &Visitor,
    provider_event_id: &str,
    kind: Option<inbound_event::Kind>,
) -> InboundEvent {
    InboundEvent {
        channel: Channel::Webchat.to_proto() as i32,
        channel_account_id: account.id.clone(),
        provider_event_id: provider_event_id.to_owned(),
        provider_timestamp: None,
        received_at: Some(prost_types::Timestamp::from(SystemTime::now())),
        sender: Some(sender(visitor)),
        provider_conversation_key: visitor.visitor_id.clone(),
        kind,
    }
}

/// The inbound event of a visitor's message.
pub fn visitor_message(account: &ResolvedAccount, visitor: &Visitor, message: &StoredMessage) -> Envelope {
    let mut parts = Vec::new();
    if !message.body.is_empty() {
        parts.push(ContentPart {
            part: Some(Part::Text(TextPart {
                body: message.body.clone(),
                subject: String::new(),
            })),
        });
    }
    for attachment in message.attachments.as_array().into_iter().flatten() {
        let text = |name: &str| {
            attachment
                .get(name)
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_owned()
        };
        let mime_type = text("mime_type");
        parts.push(ContentPart {
            part: Some(Part::Media(MediaPart {
                kind: media_kind(&mime_type) as i32,
                provider_media_id: text("id"),
                url: text("url"),
                size_bytes: attachment.get("size").and_then(|v| v.as_u64()).unwrap_or(0),
                filename: text("filename"),
                sha256: text("sha256"),
                mime_type,
                ..MediaPart::default()
            })),
        });
    }
    let mut inbound = event(
        account,
        visitor,
        &message.id,
        Some(inbound_event::Kind::Message(InboundMessage {
            provider_message_id: message.id.clone(),
            parts,
            ..InboundMessage::default()
        })),
    );
    inbound.provider_timestamp = Some(timestamp(message.created_at));
    // The id is a digest of the event without `received_at`; a message id is unique already.
    switchboard_inbound::inbound_envelope(Channel::Webchat, account, inbound, &message.id)
}

/// The receipt saying the visitor's client received (`read == false`) or the visitor saw an
/// outbound message.
pub fn receipt(
    account: &ResolvedAccount,
    visitor: &Visitor,
    message: &StoredMessage,
    read: bool,
) -> Envelope {
    let (status, name) = if read {
        (DeliveryStatus::Read, "read")
    } else {
        (DeliveryStatus::Delivered, "delivered")
    };
    let inbound = event(
        account,
        visitor,
        &format!("{}:{name}", message.id),
        Some(inbound_event::Kind::Status(StatusReceipt {
            provider_message_id: message.id.clone(),
            status: status as i32,
            switchboard_message_id: message.outbound_id.clone().unwrap_or_default(),
            provider_status: name.to_owned(),
            ..StatusReceipt::default()
        })),
    );
    switchboard_inbound::inbound_envelope(Channel::Webchat, account, inbound, &message.id)
}

/// The notification that the visitor started or stopped typing (no partition: subscribers
/// bind `webchat.visitor_typing` on the events exchange).
pub fn visitor_typing(account: &ResolvedAccount, visitor: &Visitor, on: bool) -> Envelope {
    let mut inbound = event(
        account,
        visitor,
        if on { "typing_on" } else { "typing_off" },
        None,
    );
    inbound.provider_timestamp = inbound.received_at;
    Envelope {
        event_id: format!("evt_{}", uuid::Uuid::now_v7().simple()),
        event_type: VISITOR_TYPING_EVENT.to_owned(),
        occurred_at: inbound.received_at,
        workspace_id: account.workspace_id.clone(),
        partition_key: String::new(),
        payload: Some(envelope::Payload::Inbound(inbound)),
        ..Envelope::default()
    }
}

fn media_kind(mime_type: &str) -> switchboard_proto::common::v1::MediaKind {
    use switchboard_proto::common::v1::MediaKind;
    match mime_type.split('/').next().unwrap_or("") {
        "image" => MediaKind::Image,
        "video" => MediaKind::Video,
        "audio" => MediaKind::Audio,
        _ => MediaKind::Document,
    }
}
