use std::fmt;
use std::str::FromStr;

use switchboard_proto::common::v1 as proto;

/// A messaging channel Switchboard speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Channel {
    /// WhatsApp Cloud API.
    Whatsapp,
    /// Facebook Messenger Platform.
    Messenger,
    /// Instagram Messaging.
    Instagram,
    /// Telegram Bot API.
    Telegram,
    /// SMS / MMS through Twilio.
    Sms,
    /// E-mail (SMTP and inbound-parse webhooks).
    Email,
    /// Switchboard's own web chat widget.
    Webchat,
}

/// A channel name or proto value Switchboard does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown channel {0:?}: expected one of whatsapp, messenger, instagram, telegram, sms, email, webchat"
)]
pub struct UnknownChannel(String);

impl Channel {
    /// Every channel, in a stable order.
    pub const ALL: [Channel; 7] = [
        Channel::Whatsapp,
        Channel::Messenger,
        Channel::Instagram,
        Channel::Telegram,
        Channel::Sms,
        Channel::Email,
        Channel::Webchat,
    ];

    /// Returns the lowercase name used in paths, routing keys and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Whatsapp => "whatsapp",
            Self::Messenger => "messenger",
            Self::Instagram => "instagram",
            Self::Telegram => "telegram",
            Self::Sms => "sms",
            Self::Email => "email",
            Self::Webchat => "webchat",
        }
    }

    /// Returns the proto enum value.
    pub fn to_proto(self) -> proto::Channel {
        match self {
            Self::Whatsapp => proto::Channel::Whatsapp,
            Self::Messenger => proto::Channel::Messenger,
            Self::Instagram => proto::Channel::Instagram,
            Self::Telegram => proto::Channel::Telegram,
            Self::Sms => proto::Channel::Sms,
            Self::Email => proto::Channel::Email,
            Self::Webchat => proto::Channel::Webchat,
        }
    }

    /// The proto enum value (as carried on the wire) of a stored channel name;
    /// `CHANNEL_UNSPECIFIED` (0) for a name that is not a channel.
    pub fn proto_value_of(name: &str) -> i32 {
        name.parse::<Self>()
            .map_or(0, |channel| channel.to_proto() as i32)
    }

    /// Converts a proto enum value (as carried on the wire, an `i32`).
    pub fn from_proto(value: i32) -> Result<Self, UnknownChannel> {
        match proto::Channel::try_from(value) {
            Ok(proto::Channel::Whatsapp) => Ok(Self::Whatsapp),
            Ok(proto::Channel::Messenger) => Ok(Self::Messenger),
            Ok(proto::Channel::Instagram) => Ok(Self::Instagram),
            Ok(proto::Channel::Telegram) => Ok(Self::Telegram),
            Ok(proto::Channel::Sms) => Ok(Self::Sms),
            Ok(proto::Channel::Email) => Ok(Self::Email),
            Ok(proto::Channel::Webchat) => Ok(Self::Webchat),
            Ok(proto::Channel::Unspecified) | Err(_) => Err(UnknownChannel(format!("proto value {value}"))),
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Channel {
    type Err = UnknownChannel;
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|channel| channel.as_str() == value)
            .ok_or_else(|| UnknownChannel(value.chars().take(40).collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_proto_values_round_trip() {
        for channel in Channel::ALL {
            assert_eq!(channel.as_str().parse::<Channel>(), Ok(channel));
            assert_eq!(Channel::from_proto(channel.to_proto() as i32), Ok(channel));
        }
        assert!(Channel::from_proto(0).is_err());
        assert!("fax".parse::<Channel>().is_err());
    }
}
