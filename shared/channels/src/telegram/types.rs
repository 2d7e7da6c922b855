//! The `Update` shapes Switchboard reads; unknown fields are ignored, missing ones default.

use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub(crate) struct Update {
    pub update_id: i64,
    #[serde(default)]
    pub message: Option<Message>,
    #[serde(default)]
    pub edited_message: Option<Message>,
    #[serde(default)]
    pub callback_query: Option<CallbackQuery>,
    #[serde(default)]
    pub message_reaction: Option<MessageReaction>,
    #[serde(default)]
    pub my_chat_member: Option<ChatMemberUpdated>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct User {
    pub id: i64,
    #[serde(default)]
    pub is_bot: bool,
    #[serde(default)]
    pub first_name: String,
    #[serde(default)]
    pub last_name: String,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub language_code: String,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Chat {
    pub id: i64,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Message {
    pub message_id: i64,
    #[serde(default)]
    pub from: Option<User>,
    pub chat: Chat,
    #[serde(default)]
    pub date: i64,
    #[serde(default)]
    pub edit_date: Option<i64>,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub caption: Option<String>,
    #[serde(default)]
    pub photo: Vec<PhotoSize>,
    #[serde(default)]
    pub document: Option<File>,
    #[serde(default)]
    pub voice: Option<File>,
    #[serde(default)]
    pub audio: Option<File>,
    #[serde(default)]
    pub video: Option<File>,
    #[serde(default)]
    pub video_note: Option<File>,
    #[serde(default)]
    pub animation: Option<File>,
    #[serde(default)]
    pub sticker: Option<Sticker>,
    #[serde(default)]
    pub location: Option<Location>,
    #[serde(default)]
    pub venue: Option<Venue>,
    #[serde(default)]
    pub contact: Option<Contact>,
    #[serde(default)]
    pub reply_to_message: Option<Box<Message>>,
    #[serde(default)]
    pub forward_origin: Option<serde_json::Value>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct PhotoSize {
    #[serde(default)]
    pub file_id: String,
    #[serde(default)]
    pub file_size: u64,
    #[serde(default)]
    pub width: u64,
    #[serde(default)]
    pub height: u64,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct File {
    #[serde(default)]
    pub file_id: String,
    #[serde(default)]
    pub file_size: u64,
    #[serde(default)]
    pub mime_type: String,
    #[serde(default)]
    pub file_name: String,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Sticker {
    #[serde(default)]
    pub file_id: String,
    #[serde(default)]
    pub file_size: u64,
    #[serde(default)]
    pub is_animated: bool,
    #[serde(default)]
    pub is_video: bool,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Location {
    #[serde(default)]
    pub latitude: f64,
    #[serde(default)]
    pub longitude: f64,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Venue {
    #[serde(default)]
    pub location: Location,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub address: String,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Contact {
    #[serde(default)]
    pub phone_number: String,
    #[serde(default)]
    pub first_name: String,
    #[serde(default)]
    pub last_name: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct CallbackQuery {
    pub id: String,
    pub from: User,
    #[serde(default)]
    pub message: Option<Message>,
    #[serde(default)]
    pub data: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct MessageReaction {
    pub chat: Chat,
    pub message_id: i64,
    #[serde(default)]
    pub user: Option<User>,
    #[serde(default)]
    pub date: i64,
    #[serde(default)]
    pub new_reaction: Vec<ReactionType>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ReactionType {
    #[serde(default, rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub emoji: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ChatMemberUpdated {
    pub chat: Chat,
    pub from: User,
    #[serde(default)]
    pub date: i64,
    pub old_chat_member: ChatMember,
    pub new_chat_member: ChatMember,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ChatMember {
    #[serde(default)]
    pub status: String,
}
