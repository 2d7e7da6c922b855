//! The syntax tree of a filter: groups, conditions, fields, operators and values.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::FilterError;

/// A filter: a group of filters or one condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// All children must match (AND); an empty list matches every contact.
    All(Vec<Filter>),
    /// At least one child must match (OR); an empty list matches no contact.
    Any(Vec<Filter>),
    /// One test on one field.
    Condition(Condition),
}

/// One test on one field of a contact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// The field tested.
    pub field: FieldRef,
    /// How the field is compared with the value.
    pub op: Operator,
    /// The value compared with; [`FilterValue::None`] for `is_set` / `is_not_set`.
    #[serde(default, skip_serializing_if = "FilterValue::is_none")]
    pub value: FilterValue,
}

/// A field of a contact: standard, or a custom field by key (JSON `"custom.<key>"`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FieldRef {
    /// A standard field.
    Standard(StandardField),
    /// A custom field, by its key in the workspace's field definitions.
    Custom(String),
}

/// The standard fields of a contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StandardField {
    /// `first_name`.
    FirstName,
    /// `last_name`.
    LastName,
    /// `display_name`.
    DisplayName,
    /// Any of first, last and display name.
    Name,
    /// `email`.
    Email,
    /// `phone`.
    Phone,
    /// `username`.
    Username,
    /// `locale`.
    Locale,
    /// The tags array.
    Tags,
    /// The `channels` array: channels the contact has identities on.
    Channel,
    /// `created_at`.
    CreatedAt,
    /// `last_inbound_at`.
    LastInboundAt,
    /// `last_channel`.
    LastChannel,
    /// `assignee_id`.
    AssigneeId,
    /// `blocked`.
    Blocked,
    /// `bot_subscribed`.
    BotSubscribed,
}

/// How a field is compared with the value of a condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operator {
    /// Equals (text: case-insensitive; tags/channel: holds the element).
    Eq,
    /// Not `eq`.
    Ne,
    /// Text contains, case-insensitive.
    Contains,
    /// Not `contains`.
    NotContains,
    /// Text starts with, case-insensitive.
    StartsWith,
    /// Has a non-empty value.
    IsSet,
    /// Not `is_set`.
    IsNotSet,
    /// Greater than / after.
    Gt,
    /// Greater than or equal / at or after.
    Gte,
    /// Less than / before.
    Lt,
    /// Less than or equal / at or before.
    Lte,
    /// Text equals one of the list, case-insensitive.
    In,
    /// Not `in`.
    NotIn,
    /// The array holds at least one of the list.
    HasAny,
    /// The array holds all of the list.
    HasAll,
    /// Not `has_any`.
    HasNone,
    /// The time is at or after `now - duration`.
    WithinLast,
    /// Not `within_last`: before `now - duration`, or not set.
    NotWithinLast,
}

/// The value a condition compares with.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum FilterValue {
    /// No value (`is_set`, `is_not_set`).
    #[default]
    None,
    /// A text.
    Text(String),
    /// A finite number.
    Number(f64),
    /// A boolean.
    Bool(bool),
    /// A point in time.
    Time(DateTime<Utc>),
    /// A calendar date.
    Date(NaiveDate),
    /// A duration back from `now`.
    Duration(Duration),
    /// A list of texts.
    List(Vec<String>),
}

impl FilterValue {
    /// Whether this is [`FilterValue::None`].
    pub fn is_none(&self) -> bool {
        matches!(self, Self::None)
    }

    /// The kind of value, for messages ("a number").
    pub fn kind_name(&self) -> &'static str {
        match self {
            Self::None => "no value",
            Self::Text(_) => "a text",
            Self::Number(_) => "a number",
            Self::Bool(_) => "a boolean",
            Self::Time(_) => "a time",
            Self::Date(_) => "a date",
            Self::Duration(_) => "a duration",
            Self::List(_) => "a list",
        }
    }
}

impl Operator {
    /// Every operator, in declaration order.
    pub const ALL: [Operator; 18] = [
        Self::Eq,
        Self::Ne,
        Self::Contains,
        Self::NotContains,
        Self::StartsWith,
        Self::IsSet,
        Self::IsNotSet,
        Self::Gt,
        Self::Gte,
        Self::Lt,
        Self::Lte,
        Self::In,
        Self::NotIn,
        Self::HasAny,
        Self::HasAll,
        Self::HasNone,
        Self::WithinLast,
        Self::NotWithinLast,
    ];

    /// The JSON name (`not_contains`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Eq => "eq",
            Self::Ne => "ne",
            Self::Contains => "contains",
            Self::NotContains => "not_contains",
            Self::StartsWith => "starts_with",
            Self::IsSet => "is_set",
            Self::IsNotSet => "is_not_set",
            Self::Gt => "gt",
            Self::Gte => "gte",
            Self::Lt => "lt",
            Self::Lte => "lte",
            Self::In => "in",
            Self::NotIn => "not_in",
            Self::HasAny => "has_any",
            Self::HasAll => "has_all",
            Self::HasNone => "has_none",
            Self::WithinLast => "within_last",
            Self::NotWithinLast => "not_within_last",
        }
    }

    /// Splits a negative operator into `(true, its positive twin)`; others give `(false, self)`.
    pub(super) fn split_negation(self) -> (bool, Operator) {
        match self {
            Self::Ne => (true, Self::Eq),
            Self::NotContains => (true, Self::Contains),
            Self::NotIn => (true, Self::In),
            Self::HasNone => (true, Self::HasAny),
            Self::IsNotSet => (true, Self::IsSet),
            Self::NotWithinLast => (true, Self::WithinLast),
            positive => (false, positive),
        }
    }
}

impl fmt::Display for Operator {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl StandardField {
    /// Every standard field, in declaration order.
    pub const ALL: [StandardField; 16] = [
        Self::FirstName,
        Self::LastName,
        Self::DisplayName,
        Self::Name,
        Self::Email,
        Self::Phone,
        Self::Username,
        Self::Locale,
        Self::Tags,
        Self::Channel,
        Self::CreatedAt,
        Self::LastInboundAt,
        Self::LastChannel,
        Self::AssigneeId,
        Self::Blocked,
        Self::BotSubscribed,
    ];

    /// The JSON name (`first_name`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FirstName => "first_name",
            Self::LastName => "last_name",
            Self::DisplayName => "display_name",
            Self::Name => "name",
            Self::Email => "email",
            Self::Phone => "phone",
            Self::Username => "username",
            Self::Locale => "locale",
            Self::Tags => "tags",
            Self::Channel => "channel",
            Self::CreatedAt => "created_at",
            Self::LastInboundAt => "last_inbound_at",
            Self::LastChannel => "last_channel",
            Self::AssigneeId => "assignee_id",
            Self::Blocked => "blocked",
            Self::BotSubscribed => "bot_subscribed",
        }
    }
}

/// The prefix of custom field names in JSON.
const CUSTOM_PREFIX: &str = "custom.";

impl FieldRef {
    /// The field for messages: `field "email"` or `custom field "plan"`.
    pub fn label(&self) -> FieldLabel<'_> {
        FieldLabel(self)
    }
}

/// Displays a field for messages: `field "email"` or `custom field "plan"`.
pub struct FieldLabel<'a>(&'a FieldRef);

impl fmt::Display for FieldLabel<'_> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            FieldRef::Standard(field) => write!(formatter, "field {:?}", field.as_str()),
            FieldRef::Custom(key) => write!(formatter, "custom field {key:?}"),
        }
    }
}

impl fmt::Display for FieldRef {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Standard(field) => formatter.write_str(field.as_str()),
            Self::Custom(key) => write!(formatter, "{CUSTOM_PREFIX}{key}"),
        }
    }
}

impl FromStr for FieldRef {
    type Err = FilterError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        if let Some(key) = name.strip_prefix(CUSTOM_PREFIX)
            && !key.is_empty()
        {
            return Ok(Self::Custom(key.to_owned()));
        }
        StandardField::ALL
            .into_iter()
            .find(|field| field.as_str() == name)
            .map(Self::Standard)
            .ok_or_else(|| FilterError::UnknownField {
                name: name.to_owned(),
            })
    }
}
