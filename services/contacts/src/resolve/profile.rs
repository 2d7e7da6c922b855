//! What a channel says about a sender, normalized for the contact and its identity.

use switchboard_domain::Channel;
use switchboard_proto::common::v1::SenderIdentity;

use crate::settings::Settings;
use switchboard_domain::normalize::{PhoneOrigin, normalize_email, normalize_phone, parse_country};

/// What a channel said about a sender, normalized.
#[derive(Debug, Default)]
pub(super) struct Profile {
    pub(super) display_name: String,
    pub(super) first_name: String,
    pub(super) last_name: String,
    pub(super) phone: Option<String>,
    pub(super) email: Option<String>,
    pub(super) username: Option<String>,
    pub(super) avatar_url: Option<String>,
    pub(super) locale: Option<String>,
}

fn non_empty(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

impl Profile {
    /// The profile a channel gives for `sender`, phone and e-mail normalized with the workspace's
    /// default country.
    pub(super) fn of(channel: Channel, sender: &SenderIdentity, settings: &Settings) -> Self {
        let country = parse_country(&settings.default_country).ok();
        let phone_text = match (sender.phone_e164.is_empty(), channel) {
            (false, _) => Some(sender.phone_e164.as_str()),
            (true, Channel::Sms | Channel::Whatsapp) => Some(sender.channel_user_id.as_str()),
            _ => None,
        };
        let phone = phone_text.and_then(|text| normalize_phone(text, PhoneOrigin::Channel, country).ok());
        let email_text = match (sender.email.is_empty(), channel) {
            (false, _) => Some(sender.email.as_str()),
            (true, Channel::Email) => Some(sender.channel_user_id.as_str()),
            _ => None,
        };
        let email = email_text.and_then(|text| normalize_email(text).ok());
        let display_name = sender.display_name.trim().to_owned();
        let (first_name, last_name) = match display_name.split_once(char::is_whitespace) {
            Some((first, last)) => (first.to_owned(), last.trim().to_owned()),
            None => (display_name.clone(), String::new()),
        };
        Self {
            display_name,
            first_name,
            last_name,
            phone,
            email,
            username: non_empty(&sender.username),
            avatar_url: non_empty(&sender.avatar_url),
            locale: non_empty(&sender.locale),
        }
    }

    /// The JSON stored on the identity.
    pub(super) fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "display_name": self.display_name,
            "phone": self.phone,
            "email": self.email,
            "username": self.username,
            "avatar_url": self.avatar_url,
            "locale": self.locale,
        })
    }
}
