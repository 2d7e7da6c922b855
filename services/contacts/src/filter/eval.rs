//! In-memory evaluation of a filter against one contact.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Map, Value};

use super::predicate::{
    ArrayCheck, FlagCheck, NumberCheck, Predicate, Test, TextCheck, TimeCheck, resolve, stored_date_text,
    stored_datetime_comparison, truncate_to_micros,
};
use super::profile::{ArraySource, FlagSource, InstantSource, TextColumn, TextSource};
use super::{FieldType, Filter, FilterError};

/// What the filter reads of a contact.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ContactView {
    /// `first_name` ('' when unknown).
    pub first_name: String,
    /// `last_name` ('' when unknown).
    pub last_name: String,
    /// `display_name` ('' when unknown).
    pub display_name: String,
    /// `email`.
    pub email: Option<String>,
    /// `phone`.
    pub phone: Option<String>,
    /// `username`.
    pub username: Option<String>,
    /// `locale`.
    pub locale: Option<String>,
    /// `last_channel`.
    pub last_channel: Option<String>,
    /// `assignee_id`.
    pub assignee_id: Option<String>,
    /// `custom_fields`: key → stored JSON value.
    pub custom_fields: Map<String, Value>,
    /// `tags`.
    pub tags: Vec<String>,
    /// `channels`.
    pub channels: Vec<String>,
    /// `blocked`.
    pub blocked: bool,
    /// `bot_subscribed`.
    pub bot_subscribed: bool,
    /// `created_at`.
    pub created_at: DateTime<Utc>,
    /// `last_inbound_at`.
    pub last_inbound_at: Option<DateTime<Utc>>,
}

/// Whether a contact matches a filter, with the same semantics as [`to_sql`](super::to_sql).
///
/// Call [`validate`](super::validate) first: a condition that does not validate never matches here.
pub fn matches(
    filter: &Filter,
    contact: &ContactView,
    fields: &HashMap<String, FieldType>,
    now: DateTime<Utc>,
) -> bool {
    match filter {
        Filter::All(children) => children.iter().all(|child| matches(child, contact, fields, now)),
        Filter::Any(children) => children.iter().any(|child| matches(child, contact, fields, now)),
        Filter::Condition(condition) => resolve(condition, fields)
            .and_then(|predicate| predicate.holds(contact, now))
            .unwrap_or(false),
    }
}

impl TextColumn {
    fn read(self, contact: &ContactView) -> Option<&str> {
        let value = match self {
            Self::FirstName => Some(contact.first_name.as_str()),
            Self::LastName => Some(contact.last_name.as_str()),
            Self::DisplayName => Some(contact.display_name.as_str()),
            Self::Email => contact.email.as_deref(),
            Self::Phone => contact.phone.as_deref(),
            Self::Username => contact.username.as_deref(),
            Self::Locale => contact.locale.as_deref(),
            Self::LastChannel => contact.last_channel.as_deref(),
            Self::AssigneeId => contact.assignee_id.as_deref(),
        };
        value.filter(|text| !text.is_empty())
    }
}

/// A custom field's non-empty string value.
fn custom_string<'a>(contact: &'a ContactView, key: &str) -> Option<&'a str> {
    match contact.custom_fields.get(key) {
        Some(Value::String(text)) if !text.is_empty() => Some(text),
        _ => None,
    }
}

impl Predicate<'_> {
    fn holds(&self, contact: &ContactView, now: DateTime<Utc>) -> Result<bool, FilterError> {
        let positive = match &self.test {
            Test::Text(source, check) => text_holds(*source, check, contact),
            Test::Array(source, check) => array_holds(*source, check, contact),
            Test::Instant(source, check) => instant_holds(*source, check, contact, now)?,
            Test::Day(key, check) => day_holds(key, check, contact, now)?,
            Test::Number(key, check) => number_holds(key, check, contact),
            Test::Flag(source, check) => flag_holds(*source, check, contact),
        };
        Ok(positive != self.negated)
    }
}

fn text_holds(source: TextSource<'_>, check: &TextCheck<'_>, contact: &ContactView) -> bool {
    let values: Vec<&str> = match source {
        TextSource::Columns(columns) => columns.iter().filter_map(|column| column.read(contact)).collect(),
        TextSource::Custom(key) => custom_string(contact, key).into_iter().collect(),
    };
    let lowered = || values.iter().map(|value| value.to_lowercase());
    match check {
        TextCheck::IsSet => !values.is_empty(),
        TextCheck::Equals(text) => {
            let text = text.to_lowercase();
            lowered().any(|value| value == text)
        }
        TextCheck::Contains(text) => {
            let text = text.to_lowercase();
            lowered().any(|value| value.contains(&text))
        }
        TextCheck::StartsWith(text) => {
            let text = text.to_lowercase();
            lowered().any(|value| value.starts_with(&text))
        }
        TextCheck::EqualsOneOf(list) => {
            let list: Vec<String> = list.iter().map(|text| text.to_lowercase()).collect();
            lowered().any(|value| list.contains(&value))
        }
    }
}

fn array_holds(source: ArraySource<'_>, check: &ArrayCheck<'_>, contact: &ContactView) -> bool {
    let elements: Vec<&str> = match source {
        ArraySource::Tags => contact.tags.iter().map(String::as_str).collect(),
        ArraySource::Channels => contact.channels.iter().map(String::as_str).collect(),
        ArraySource::Custom(key) => match contact.custom_fields.get(key) {
            // `is_set` counts every element; `?|` / `?&` see string elements only.
            Some(Value::Array(items)) => {
                if matches!(check, ArrayCheck::IsSet) {
                    return !items.is_empty();
                }
                items.iter().filter_map(Value::as_str).collect()
            }
            _ => return false,
        },
    };
    match check {
        ArrayCheck::IsSet => !elements.is_empty(),
        ArrayCheck::HasAny(list) => list.iter().any(|wanted| elements.contains(&wanted.as_str())),
        ArrayCheck::HasAll(list) => list.iter().all(|wanted| elements.contains(&wanted.as_str())),
    }
}

fn instant_holds(
    source: InstantSource<'_>,
    check: &TimeCheck<DateTime<Utc>>,
    contact: &ContactView,
    now: DateTime<Utc>,
) -> Result<bool, FilterError> {
    let stored_time = match source {
        InstantSource::CreatedAt => Some(contact.created_at),
        InstantSource::LastInboundAt => contact.last_inbound_at,
        InstantSource::Custom(key) => {
            let stored_text = custom_string(contact, key);
            let TimeCheck::Compare(order, bound) = check else {
                return Ok(stored_text.is_some());
            };
            let Some(stored_text) = stored_text else {
                return Ok(false);
            };
            let (adjusted, bound_text) = stored_datetime_comparison(*order, bound.resolve(now)?);
            return Ok(adjusted.holds(stored_text.as_bytes().cmp(bound_text.as_bytes())));
        }
    };
    let TimeCheck::Compare(order, bound) = check else {
        return Ok(stored_time.is_some());
    };
    let bound = bound.resolve(now)?;
    Ok(stored_time.is_some_and(|time| order.holds(truncate_to_micros(time).cmp(&bound))))
}

fn day_holds(
    key: &str,
    check: &TimeCheck<NaiveDate>,
    contact: &ContactView,
    now: DateTime<Utc>,
) -> Result<bool, FilterError> {
    let stored_text = custom_string(contact, key);
    let TimeCheck::Compare(order, bound) = check else {
        return Ok(stored_text.is_some());
    };
    let bound_text = stored_date_text(bound.resolve(now)?);
    Ok(stored_text.is_some_and(|text| order.holds(text.as_bytes().cmp(bound_text.as_bytes()))))
}

fn number_holds(key: &str, check: &NumberCheck, contact: &ContactView) -> bool {
    let stored = match contact.custom_fields.get(key) {
        Some(Value::Number(number)) => number.as_f64(),
        _ => None,
    };
    let Some(stored) = stored else {
        return false;
    };
    let (order, number) = match check {
        NumberCheck::IsSet => return true,
        NumberCheck::Equals(number) => return stored == *number,
        NumberCheck::Compare(order, number) => (*order, *number),
    };
    stored
        .partial_cmp(&number)
        .is_some_and(|ordering| order.holds(ordering))
}

fn flag_holds(source: FlagSource<'_>, check: &FlagCheck, contact: &ContactView) -> bool {
    let stored = match source {
        FlagSource::Blocked => Some(contact.blocked),
        FlagSource::BotSubscribed => Some(contact.bot_subscribed),
        FlagSource::Custom(key) => contact.custom_fields.get(key).and_then(Value::as_bool),
    };
    match check {
        FlagCheck::IsSet => stored.is_some(),
        FlagCheck::Equals(flag) => stored == Some(*flag),
    }
}
