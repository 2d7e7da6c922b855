//! The JSON types of the control API, shared by the server and [`crate::SimulatorClient`].

mod account;
mod report;
mod smtp;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use account::{
    AccountConfig, AccountSeed, ConfiguredAccount, EffectiveLimits, Fault, FaultKind, Limits, ReceiptStatus,
};
pub use report::{AccountStats, CallOutcome, CallRecord, CallsQuery, Stats, ViolationCounts, WebhookStats};
pub use smtp::{SmtpFault, SmtpFaultKind, SmtpHeader, SmtpMessage, SmtpStats};

/// A provider whose send API the simulator speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// WhatsApp Cloud API (`POST /{version}/{phone_number_id}/messages`).
    Whatsapp,
    /// Messenger Send API (`POST /{version}/{page_id}/messages`).
    Messenger,
    /// Instagram messaging (`POST /{version}/{ig_id}/messages`).
    Instagram,
    /// Telegram Bot API (`POST /bot{token}/{method}`).
    Telegram,
    /// Twilio Programmable Messaging (`POST /2010-04-01/Accounts/{sid}/Messages.json`).
    Twilio,
}

impl Provider {
    /// Every provider, in a fixed order.
    pub const ALL: [Provider; 5] = [
        Provider::Whatsapp,
        Provider::Messenger,
        Provider::Instagram,
        Provider::Telegram,
        Provider::Twilio,
    ];

    /// The lowercase name used in control API paths.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Whatsapp => "whatsapp",
            Provider::Messenger => "messenger",
            Provider::Instagram => "instagram",
            Provider::Telegram => "telegram",
            Provider::Twilio => "twilio",
        }
    }

    /// True for the providers on Meta's Graph API.
    pub fn is_graph(self) -> bool {
        matches!(
            self,
            Provider::Whatsapp | Provider::Messenger | Provider::Instagram
        )
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown provider name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown provider {0:?} (expected whatsapp, messenger, instagram, telegram or twilio)")]
pub struct UnknownProvider(pub String);

impl FromStr for Provider {
    type Err = UnknownProvider;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Provider::ALL
            .into_iter()
            .find(|provider| provider.as_str() == name)
            .ok_or_else(|| UnknownProvider(name.to_owned()))
    }
}
