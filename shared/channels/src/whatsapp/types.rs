//! The webhook payload as WhatsApp sends it. Every field is optional or defaulted: Meta adds
//! fields often, and a missing one must never fail a whole batch.

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
    pub changes: Vec<Change>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Change {
    #[serde(default)]
    pub field: String,
    #[serde(default)]
    pub value: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Value {
    #[serde(default)]
    pub metadata: Option<Metadata>,
    #[serde(default)]
    pub contacts: Vec<Contact>,
    #[serde(default)]
    pub messages: Vec<Message>,
    #[serde(default)]
    pub statuses: Vec<Status>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Metadata {
    #[serde(default)]
    pub phone_number_id: String,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Contact {
    #[serde(default)]
    pub wa_id: String,
    #[serde(default)]
    pub user_id: String,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub profile: Option<Profile>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Profile {
    #[serde(default)]
    pub name: String,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Message {
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub from_user_id: String,
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub timestamp: String,
    #[serde(default, rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub context: Option<Context>,
    #[serde(default)]
    pub text: Option<Text>,
    #[serde(default)]
    pub image: Option<Media>,
    #[serde(default)]
    pub video: Option<Media>,
    #[serde(default)]
    pub audio: Option<Media>,
    #[serde(default)]
    pub document: Option<Media>,
    #[serde(default)]
    pub sticker: Option<Media>,
    #[serde(default)]
    pub location: Option<Location>,
    #[serde(default)]
    pub contacts: Vec<SharedContact>,
    #[serde(default)]
    pub interactive: Option<Interactive>,
    #[serde(default)]
    pub button: Option<Button>,
    #[serde(default)]
    pub reaction: Option<Reaction>,
    #[serde(default)]
    pub referral: Option<Referral>,
    #[serde(default)]
    pub system: Option<System>,
    #[serde(default)]
    pub edit: Option<Edit>,
    #[serde(default)]
    pub revoke: Option<Revoke>,
    #[serde(default)]
    pub errors: Vec<Error>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Context {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub forwarded: bool,
    #[serde(default)]
    pub frequently_forwarded: bool,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Text {
    #[serde(default)]
    pub body: String,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Media {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub url: String,
    #[serde(default)]
    pub mime_type: String,
    #[serde(default)]
    pub sha256: String,
    #[serde(default)]
    pub caption: String,
    #[serde(default)]
    pub filename: String,
    #[serde(default)]
    pub voice: bool,
    #[serde(default)]
    pub animated: bool,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Location {
    #[serde(default)]
    pub latitude: f64,
    #[serde(default)]
    pub longitude: f64,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub address: String,
    #[serde(default)]
    pub url: String,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct SharedContact {
    #[serde(default)]
    pub name: Option<SharedContactName>,
    #[serde(default)]
    pub phones: Vec<SharedContactPhone>,
    #[serde(default)]
    pub emails: Vec<SharedContactEmail>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct SharedContactName {
    #[serde(default)]
    pub formatted_name: String,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct SharedContactPhone {
    #[serde(default)]
    pub phone: String,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct SharedContactEmail {
    #[serde(default)]
    pub email: String,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Interactive {
    #[serde(default, rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub button_reply: Option<Reply>,
    #[serde(default)]
    pub list_reply: Option<Reply>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Reply {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Button {
    #[serde(default)]
    pub payload: String,
    #[serde(default)]
    pub text: String,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Reaction {
    #[serde(default)]
    pub message_id: String,
    #[serde(default)]
    pub emoji: String,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Referral {
    #[serde(default)]
    pub source_url: String,
    #[serde(default)]
    pub source_id: String,
    #[serde(default)]
    pub source_type: String,
    #[serde(default)]
    pub headline: String,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub ctwa_clid: String,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct System {
    #[serde(default)]
    pub body: String,
    #[serde(default, rename = "type")]
    pub kind: String,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Edit {
    #[serde(default)]
    pub original_message_id: String,
    #[serde(default)]
    pub message: Option<Box<Message>>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Revoke {
    #[serde(default)]
    pub original_message_id: String,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Status {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub timestamp: String,
    #[serde(default)]
    pub recipient_id: String,
    #[serde(default)]
    pub biz_opaque_callback_data: String,
    #[serde(default)]
    pub errors: Vec<Error>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Error {
    #[serde(default)]
    pub code: serde_json::Value,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub error_data: Option<ErrorData>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ErrorData {
    #[serde(default)]
    pub details: String,
}
