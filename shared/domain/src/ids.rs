use std::fmt;
use std::str::FromStr;

/// A string that is not a valid id of the expected kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} id {value:?}: expected `{prefix}` followed by 1 to 64 of [A-Za-z0-9-]")]
pub struct InvalidId {
    kind: &'static str,
    prefix: &'static str,
    value: String,
}

/// Longest suffix an id may carry after its prefix.
const MAX_SUFFIX_LEN: usize = 64;

fn validate_id(value: &str, kind: &'static str, prefix: &'static str) -> Result<(), InvalidId> {
    let invalid = || InvalidId {
        kind,
        prefix,
        value: value.chars().take(100).collect(),
    };
    let suffix = value.strip_prefix(prefix).ok_or_else(invalid)?;
    let suffix_ok = !suffix.is_empty()
        && suffix.len() <= MAX_SUFFIX_LEN
        && suffix.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if suffix_ok { Ok(()) } else { Err(invalid()) }
}

/// Defines a prefixed, validated string id type.
macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The prefix every id of this kind starts with.
            pub const PREFIX: &'static str = $prefix;

            /// Generates a new, time-ordered id (UUIDv7 in hex).
            pub fn generate() -> Self {
                Self(format!("{}{}", $prefix, uuid::Uuid::now_v7().simple()))
            }

            /// Parses and validates an id.
            pub fn parse(value: &str) -> Result<Self, InvalidId> {
                validate_id(value, $kind, $prefix)?;
                Ok(Self(value.to_owned()))
            }

            /// Returns the id as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// Returns the id as an owned string.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = InvalidId;
            fn from_str(value: &str) -> Result<Self, Self::Err> {
                Self::parse(value)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(deserializer)?;
                Self::parse(&raw).map_err(serde::de::Error::custom)
            }
        }
    };
}

prefixed_id!(
    /// Identifies a workspace (tenant): `ws_…`.
    WorkspaceId, "workspace", "ws_"
);
prefixed_id!(
    /// Identifies a channel account (a WhatsApp number, a page, a bot, a mailbox): `chacc_…`.
    ChannelAccountId, "channel account", "chacc_"
);
prefixed_id!(
    /// Identifies an API key: `key_…`.
    ApiKeyId, "api key", "key_"
);
prefixed_id!(
    /// Identifies a contact: `ct_…`.
    ContactId, "contact", "ct_"
);
prefixed_id!(
    /// Identifies a saved view (named contact filter): `view_…`.
    ViewId, "view", "view_"
);
prefixed_id!(
    /// Identifies a merge of two contacts (to undo it): `merge_…`.
    MergeId, "merge", "merge_"
);
prefixed_id!(
    /// Identifies a background job (bulk change, import): `job_…`.
    JobId, "job", "job_"
);
prefixed_id!(
    /// Identifies a conversation: `conv_…`.
    ConversationId, "conversation", "conv_"
);
prefixed_id!(
    /// Identifies a message of a conversation's history: `msg_…`.
    MessageId, "message", "msg_"
);
prefixed_id!(
    /// Identifies a bus event: `evt_…`.
    EventId, "event", "evt_"
);
prefixed_id!(
    /// Identifies an agent who answers conversations: `agent_…`.
    AgentId, "agent", "agent_"
);
prefixed_id!(
    /// Identifies a team of agents: `team_…`.
    TeamId, "team", "team_"
);
prefixed_id!(
    /// Identifies an internal note or comment: `note_…`.
    NoteId, "note", "note_"
);
prefixed_id!(
    /// Identifies a snippet (canned response): `snip_…`.
    SnippetId, "snippet", "snip_"
);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn generated_ids_parse_back() {
        let id = WorkspaceId::generate();
        assert_eq!(WorkspaceId::parse(id.as_str()), Ok(id));
    }

    #[test]
    fn ids_of_another_kind_are_refused() {
        let account = ChannelAccountId::generate();
        let error = WorkspaceId::parse(account.as_str()).unwrap_err();
        assert!(error.to_string().contains("invalid workspace id"), "{error}");
    }

    #[test]
    fn readable_ids_are_accepted_and_bad_characters_refused() {
        assert!(ChannelAccountId::parse("chacc_acme-whatsapp-main").is_ok());
        assert!(ChannelAccountId::parse("chacc_").is_err());
        assert!(ChannelAccountId::parse("chacc_a/b").is_err());
        assert!(ChannelAccountId::parse(&format!("chacc_{}", "a".repeat(65))).is_err());
    }

    proptest! {
        #[test]
        fn parsing_arbitrary_text_never_panics(value in ".*") {
            let _ = WorkspaceId::parse(&value);
        }
    }
}
