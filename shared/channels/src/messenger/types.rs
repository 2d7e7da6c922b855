//! The Messenger / Instagram messaging event shapes Switchboard reads.

use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub(crate) struct Webhook {
    pub object: String,
    #[serde(default)]
    pub entry: Vec<Entry>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Entry {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub messaging: Vec<Event>,
    #[serde(default)]
    pub standby: Vec<serde_json::Value>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Party {
    #[serde(default)]
    pub id: String,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Event {
    #[serde(default)]
    pub sender: Party,
    #[serde(default)]
    pub recipient: Party,
    #[serde(default)]
    pub timestamp: i64,
    #[serde(default)]
    pub message: Option<Message>,
    #[serde(default)]
    pub postback: Option<Postback>,
    #[serde(default)]
    pub reaction: Option<Reaction>,
    #[serde(default)]
    pub message_edit: Option<MessageEdit>,
    #[serde(default)]
    pub delivery: Option<Delivery>,
    #[serde(default)]
    pub read: Option<Read>,
    #[serde(default)]
    pub referral: Option<Referral>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Message {
    #[serde(default)]
    pub mid: String,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub attachments: Vec<Attachment>,
    #[serde(default)]
    pub quick_reply: Option<QuickReply>,
    #[serde(default)]
    pub reply_to: Option<ReplyTo>,
    #[serde(default)]
    pub is_echo: bool,
    #[serde(default)]
    pub is_deleted: bool,
    #[serde(default)]
    pub is_unsupported: bool,
    #[serde(default)]
    pub referral: Option<Referral>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Attachment {
    #[serde(default, rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub payload: Option<AttachmentPayload>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct AttachmentPayload {
    #[serde(default)]
    pub url: String,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct QuickReply {
    #[serde(default)]
    pub payload: String,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ReplyTo {
    #[serde(default)]
    pub mid: String,
    #[serde(default)]
    pub story: Option<Story>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Story {
    #[serde(default)]
    pub url: String,
    #[serde(default)]
    pub id: String,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Postback {
    #[serde(default)]
    pub mid: String,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub payload: String,
    #[serde(default)]
    pub referral: Option<Referral>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Reaction {
    #[serde(default)]
    pub mid: String,
    #[serde(default)]
    pub action: String,
    #[serde(default)]
    pub emoji: String,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct MessageEdit {
    #[serde(default)]
    pub mid: String,
    #[serde(default)]
    pub text: String,
    #[serde(default)]
    pub num_edit: i64,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Delivery {
    #[serde(default)]
    pub mids: Vec<String>,
    #[serde(default)]
    pub watermark: i64,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Read {
    #[serde(default)]
    pub watermark: i64,
    #[serde(default)]
    pub mid: String,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Referral {
    #[serde(default, rename = "ref")]
    pub reference: String,
    #[serde(default)]
    pub source: String,
    #[serde(default)]
    pub ad_id: String,
}
