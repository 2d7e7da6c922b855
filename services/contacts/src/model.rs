//! The contact as stored, and its proto form.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use switchboard_domain::{Channel, ContactId, WorkspaceId};
use switchboard_proto::contacts::v1 as proto;
use tokio_postgres::Row;

use crate::ContactsError;
use crate::error::stored_id;
use crate::fields::{FieldType, value_to_proto};

/// The columns every contact query selects, in [`Contact::from_row`]'s order.
pub(crate) const CONTACT_COLUMNS: &str = "c.id, c.workspace_id, c.first_name, c.last_name, c.display_name, \
     c.email, c.phone, c.username, c.avatar_url, c.locale, c.custom_fields, c.tags, c.channels, \
     c.blocked, c.blocked_at, c.bot_subscribed, c.bot_subscription_at, c.bot_subscription_source, \
     c.email_verified_at, c.email_verified_source, c.email_opt_in_at, c.email_opt_in_source, \
     c.email_opt_out_at, c.email_opt_out_source, c.sms_opted_out, c.assignee_id, \
     c.last_inbound_at, c.last_channel, c.created_at, c.updated_at, c.revision";

/// A contact row.
#[derive(Debug, Clone, PartialEq)]
pub struct Contact {
    /// `ct_…`.
    pub id: ContactId,
    /// The owning workspace.
    pub workspace_id: WorkspaceId,
    /// Given name.
    pub first_name: String,
    /// Family name.
    pub last_name: String,
    /// Name as a channel shows it.
    pub display_name: String,
    /// Canonical e-mail address.
    pub email: Option<String>,
    /// E.164 phone number.
    pub phone: Option<String>,
    /// Channel username.
    pub username: Option<String>,
    /// Avatar URL.
    pub avatar_url: Option<String>,
    /// Locale / language code.
    pub locale: Option<String>,
    /// Custom field values, typed per definition.
    pub custom_fields: serde_json::Map<String, serde_json::Value>,
    /// Sorted, unique tags.
    pub tags: Vec<String>,
    /// Channels the contact has identities on.
    pub channels: Vec<String>,
    /// Inbound events are dropped while blocked.
    pub blocked: bool,
    /// When it was blocked.
    pub blocked_at: Option<DateTime<Utc>>,
    /// Receives bot and broadcast messages.
    pub bot_subscribed: bool,
    /// When the subscription last changed.
    pub bot_subscription_at: Option<DateTime<Utc>>,
    /// Why it last changed.
    pub bot_subscription_source: String,
    /// E-mail verified: when and how.
    pub email_verified: Option<(DateTime<Utc>, String)>,
    /// E-mail opt-in: when and how.
    pub email_opt_in: Option<(DateTime<Utc>, String)>,
    /// E-mail opt-out: when and how.
    pub email_opt_out: Option<(DateTime<Utc>, String)>,
    /// SMS STOP received.
    pub sms_opted_out: bool,
    /// The assigned agent, from routing.
    pub assignee_id: Option<String>,
    /// Last inbound event from the customer.
    pub last_inbound_at: Option<DateTime<Utc>>,
    /// Channel of that event.
    pub last_channel: Option<String>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// Increases with every change.
    pub revision: i64,
}

fn fact(at: Option<DateTime<Utc>>, source: String) -> Option<(DateTime<Utc>, String)> {
    at.map(|at| (at, source))
}

impl Contact {
    /// Reads a row selected with [`CONTACT_COLUMNS`].
    pub(crate) fn from_row(row: &Row) -> Result<Self, ContactsError> {
        let custom: serde_json::Value = row.try_get(10)?;
        Ok(Self {
            id: stored_id("contact id", row.try_get(0)?)?,
            workspace_id: stored_id("contact workspace id", row.try_get(1)?)?,
            first_name: row.try_get(2)?,
            last_name: row.try_get(3)?,
            display_name: row.try_get(4)?,
            email: row.try_get(5)?,
            phone: row.try_get(6)?,
            username: row.try_get(7)?,
            avatar_url: row.try_get(8)?,
            locale: row.try_get(9)?,
            custom_fields: match custom {
                serde_json::Value::Object(map) => map,
                _ => serde_json::Map::new(),
            },
            tags: row.try_get(11)?,
            channels: row.try_get(12)?,
            blocked: row.try_get(13)?,
            blocked_at: row.try_get(14)?,
            bot_subscribed: row.try_get(15)?,
            bot_subscription_at: row.try_get(16)?,
            bot_subscription_source: row.try_get(17)?,
            email_verified: fact(row.try_get(18)?, row.try_get(19)?),
            email_opt_in: fact(row.try_get(20)?, row.try_get(21)?),
            email_opt_out: fact(row.try_get(22)?, row.try_get(23)?),
            sms_opted_out: row.try_get(24)?,
            assignee_id: row.try_get(25)?,
            last_inbound_at: row.try_get(26)?,
            last_channel: row.try_get(27)?,
            created_at: row.try_get(28)?,
            updated_at: row.try_get(29)?,
            revision: row.try_get(30)?,
        })
    }

    /// The proto form, custom fields typed by `fields` and with `identities`.
    pub fn to_proto(
        &self,
        fields: &HashMap<String, FieldType>,
        identities: Vec<proto::Identity>,
    ) -> proto::Contact {
        let consent = |value: Option<&(DateTime<Utc>, String)>| {
            value.map(|(at, source)| proto::ConsentFact {
                value: true,
                changed_at: Some(timestamp(*at)),
                source: source.clone(),
            })
        };
        proto::Contact {
            id: self.id.to_string(),
            workspace_id: self.workspace_id.to_string(),
            first_name: self.first_name.clone(),
            last_name: self.last_name.clone(),
            display_name: self.display_name.clone(),
            email: self.email.clone().unwrap_or_default(),
            phone: self.phone.clone().unwrap_or_default(),
            username: self.username.clone().unwrap_or_default(),
            avatar_url: self.avatar_url.clone().unwrap_or_default(),
            locale: self.locale.clone().unwrap_or_default(),
            custom_fields: self
                .custom_fields
                .iter()
                .filter_map(|(key, value)| {
                    value_to_proto(fields.get(key).copied(), value).map(|value| (key.clone(), value))
                })
                .collect(),
            tags: self.tags.clone(),
            identities,
            blocked: self.blocked,
            blocked_at: self.blocked_at.map(timestamp),
            bot_subscription: Some(proto::ConsentFact {
                value: self.bot_subscribed,
                changed_at: self.bot_subscription_at.map(timestamp),
                source: self.bot_subscription_source.clone(),
            }),
            email_state: Some(proto::EmailState {
                verified: consent(self.email_verified.as_ref()),
                opted_in: consent(self.email_opt_in.as_ref()),
                opted_out: consent(self.email_opt_out.as_ref()),
            }),
            sms_opted_out: self.sms_opted_out,
            assignee_id: self.assignee_id.clone().unwrap_or_default(),
            last_inbound_at: self.last_inbound_at.map(timestamp),
            last_channel: self.last_channel.as_deref().map_or(0, Channel::proto_value_of),
            created_at: Some(timestamp(self.created_at)),
            updated_at: Some(timestamp(self.updated_at)),
            revision: self.revision,
        }
    }
}

pub(crate) use switchboard_domain::time::{from_timestamp, to_timestamp as timestamp};
