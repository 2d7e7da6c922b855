//! Typed custom fields: definitions, and the checks that turn a proto value into the JSON
//! stored in `contacts.custom_fields` (the shapes the filter language relies on).

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use phonenumber::country::Id as CountryId;
use switchboard_domain::time::{from_timestamp, to_timestamp as timestamp};
use switchboard_proto::contacts::v1 as proto;
use switchboard_proto::contacts::v1::field_value::Value as ProtoValue;

use crate::ContactsError;
use switchboard_domain::normalize::{PhoneOrigin, normalize_email, normalize_phone};

pub use crate::filter::FieldType;

/// Longest text value of a custom field, in characters.
const MAX_TEXT_CHARS: usize = 2_000;
/// Most options of a select field.
const MAX_OPTIONS: usize = 200;

impl FieldType {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Number => "number",
            Self::Date => "date",
            Self::Datetime => "datetime",
            Self::Boolean => "boolean",
            Self::SingleSelect => "single_select",
            Self::MultiSelect => "multi_select",
            Self::Email => "email",
            Self::Phone => "phone",
            Self::Url => "url",
        }
    }

    /// Parses a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        [
            Self::Text,
            Self::Number,
            Self::Date,
            Self::Datetime,
            Self::Boolean,
            Self::SingleSelect,
            Self::MultiSelect,
            Self::Email,
            Self::Phone,
            Self::Url,
        ]
        .into_iter()
        .find(|field_type| field_type.as_str() == name)
    }

    /// The proto enum value.
    pub fn to_proto(self) -> proto::FieldType {
        match self {
            Self::Text => proto::FieldType::Text,
            Self::Number => proto::FieldType::Number,
            Self::Date => proto::FieldType::Date,
            Self::Datetime => proto::FieldType::Datetime,
            Self::Boolean => proto::FieldType::Boolean,
            Self::SingleSelect => proto::FieldType::SingleSelect,
            Self::MultiSelect => proto::FieldType::MultiSelect,
            Self::Email => proto::FieldType::Email,
            Self::Phone => proto::FieldType::Phone,
            Self::Url => proto::FieldType::Url,
        }
    }

    /// The type of a proto enum value; unspecified and unknown values are refused.
    pub fn from_proto(value: i32) -> Result<Self, ContactsError> {
        let field_type = match proto::FieldType::try_from(value) {
            Ok(proto::FieldType::Text) => Self::Text,
            Ok(proto::FieldType::Number) => Self::Number,
            Ok(proto::FieldType::Date) => Self::Date,
            Ok(proto::FieldType::Datetime) => Self::Datetime,
            Ok(proto::FieldType::Boolean) => Self::Boolean,
            Ok(proto::FieldType::SingleSelect) => Self::SingleSelect,
            Ok(proto::FieldType::MultiSelect) => Self::MultiSelect,
            Ok(proto::FieldType::Email) => Self::Email,
            Ok(proto::FieldType::Phone) => Self::Phone,
            Ok(proto::FieldType::Url) => Self::Url,
            Ok(proto::FieldType::Unspecified) | Err(_) => {
                return Err(ContactsError::invalid(
                    "field.type: choose one of the FieldType values",
                ));
            }
        };
        Ok(field_type)
    }
}

/// A workspace's custom field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldDefinition {
    /// `[a-z][a-z0-9_]{0,63}`.
    pub key: String,
    /// What people see.
    pub label: String,
    /// The value type.
    pub field_type: FieldType,
    /// Allowed values of select fields.
    pub options: Vec<String>,
}

impl FieldDefinition {
    /// Checks a proto definition.
    pub fn from_proto(field: proto::FieldDefinition) -> Result<Self, ContactsError> {
        let key = validate_key(&field.key)?;
        let field_type = FieldType::from_proto(field.r#type)?;
        let label = field.label.trim().to_owned();
        if label.chars().count() > 200 {
            return Err(ContactsError::invalid("field.label: at most 200 characters"));
        }
        let label = if label.is_empty() { key.clone() } else { label };
        let mut options: Vec<String> = field
            .options
            .iter()
            .map(|option| option.trim().to_owned())
            .collect();
        let selects = matches!(field_type, FieldType::SingleSelect | FieldType::MultiSelect);
        if selects {
            if options.is_empty() || options.len() > MAX_OPTIONS {
                return Err(ContactsError::invalid(format!(
                    "field.options: a select field needs 1 to {MAX_OPTIONS} options"
                )));
            }
            if options
                .iter()
                .any(|option| option.is_empty() || option.chars().count() > 200)
            {
                return Err(ContactsError::invalid(
                    "field.options: each option is 1 to 200 characters",
                ));
            }
            let count = options.len();
            options.sort();
            options.dedup();
            if options.len() != count {
                return Err(ContactsError::invalid("field.options: options must be unique"));
            }
        } else if !options.is_empty() {
            return Err(ContactsError::invalid(format!(
                "field.options: only select fields have options, not {} fields",
                field_type.as_str()
            )));
        }
        Ok(Self {
            key,
            label,
            field_type,
            options,
        })
    }

    /// The proto form.
    pub fn to_proto(&self) -> proto::FieldDefinition {
        proto::FieldDefinition {
            key: self.key.clone(),
            label: self.label.clone(),
            r#type: self.field_type.to_proto() as i32,
            options: self.options.clone(),
        }
    }

    /// Checks a value against this definition and returns it as stored (normalized).
    pub fn check_value(
        &self,
        value: &proto::FieldValue,
        default_country: Option<CountryId>,
    ) -> Result<serde_json::Value, ContactsError> {
        let key = &self.key;
        let expected = self.field_type.as_str();
        let mismatch = || {
            ContactsError::invalid_as(
                "FIELD_TYPE_MISMATCH",
                format!(
                    "custom_fields.{key}: the field is a {expected} field; {}",
                    expected_member(self.field_type)
                ),
            )
        };
        let invalid = |what: String| {
            ContactsError::invalid_as("INVALID_FIELD_VALUE", format!("custom_fields.{key}: {what}"))
        };
        let Some(member) = &value.value else {
            return Err(mismatch());
        };
        let stored = match (self.field_type, member) {
            (FieldType::Text, ProtoValue::Text(text)) => {
                if text.chars().count() > MAX_TEXT_CHARS {
                    return Err(invalid(format!("at most {MAX_TEXT_CHARS} characters")));
                }
                serde_json::Value::String(text.clone())
            }
            (FieldType::Number, ProtoValue::Number(number)) => {
                let number = serde_json::Number::from_f64(*number)
                    .ok_or_else(|| invalid("NaN and infinities are not numbers".to_owned()))?;
                serde_json::Value::Number(number)
            }
            (FieldType::Boolean, ProtoValue::Boolean(flag)) => serde_json::Value::Bool(*flag),
            (FieldType::Date, ProtoValue::Date(date)) => {
                let parsed = NaiveDate::parse_from_str(date.trim(), "%Y-%m-%d")
                    .map_err(|_| invalid(format!("{date:?} is not a date (YYYY-MM-DD)")))?;
                serde_json::Value::String(parsed.format("%Y-%m-%d").to_string())
            }
            (FieldType::Datetime, ProtoValue::Datetime(at)) => {
                let at =
                    from_timestamp(at).ok_or_else(|| invalid("the timestamp is out of range".to_owned()))?;
                serde_json::Value::String(format_datetime(at))
            }
            (FieldType::SingleSelect, ProtoValue::Text(choice)) => {
                if !self.options.contains(choice) {
                    return Err(invalid(format!(
                        "{choice:?} is not one of the options {:?}",
                        self.options
                    )));
                }
                serde_json::Value::String(choice.clone())
            }
            (FieldType::MultiSelect, ProtoValue::Options(list)) => {
                let mut chosen = list.values.clone();
                if let Some(unknown) = chosen.iter().find(|choice| !self.options.contains(choice)) {
                    return Err(invalid(format!(
                        "{unknown:?} is not one of the options {:?}",
                        self.options
                    )));
                }
                chosen.sort();
                chosen.dedup();
                serde_json::Value::Array(chosen.into_iter().map(serde_json::Value::String).collect())
            }
            (FieldType::Email, ProtoValue::Text(text)) => {
                serde_json::Value::String(normalize_email(text).map_err(|error| invalid(error.to_string()))?)
            }
            (FieldType::Phone, ProtoValue::Text(text)) => serde_json::Value::String(
                normalize_phone(text, PhoneOrigin::Entered, default_country)
                    .map_err(|error| invalid(error.to_string()))?,
            ),
            (FieldType::Url, ProtoValue::Text(text)) => {
                let text = text.trim();
                let valid = (text.starts_with("https://") || text.starts_with("http://"))
                    && text.len() <= 2_048
                    && !text.chars().any(|c| c.is_whitespace() || c.is_control())
                    && text.split_once("://").is_some_and(|(_, rest)| !rest.is_empty());
                if !valid {
                    return Err(invalid(format!("{text:?} is not an http(s) URL")));
                }
                serde_json::Value::String(text.to_owned())
            }
            _ => return Err(mismatch()),
        };
        Ok(stored)
    }
}

/// Which `FieldValue` member a type takes, for error messages.
fn expected_member(field_type: FieldType) -> &'static str {
    match field_type {
        FieldType::Text | FieldType::Email | FieldType::Phone | FieldType::Url | FieldType::SingleSelect => {
            "set FieldValue.text"
        }
        FieldType::Number => "set FieldValue.number",
        FieldType::Boolean => "set FieldValue.boolean",
        FieldType::Date => "set FieldValue.date (YYYY-MM-DD)",
        FieldType::Datetime => "set FieldValue.datetime",
        FieldType::MultiSelect => "set FieldValue.options",
    }
}

/// The stored form of a datetime value: RFC 3339 UTC to the second, so text order is time order.
pub fn format_datetime(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Checks a custom field key.
pub fn validate_key(key: &str) -> Result<String, ContactsError> {
    let valid = !key.is_empty()
        && key.len() <= 64
        && key.starts_with(|c: char| c.is_ascii_lowercase())
        && key
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if valid {
        Ok(key.to_owned())
    } else {
        Err(ContactsError::invalid(format!(
            "field key {key:?}: use 1 to 64 lower-case letters, digits and _, starting with a letter"
        )))
    }
}

/// The proto form of a stored value (`None` when it does not fit its type any more).
pub fn value_to_proto(field_type: Option<FieldType>, value: &serde_json::Value) -> Option<proto::FieldValue> {
    let member = match (field_type, value) {
        (Some(FieldType::Datetime), serde_json::Value::String(text)) => DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|at| ProtoValue::Datetime(timestamp(at.with_timezone(&Utc))))?,
        (Some(FieldType::Date), serde_json::Value::String(text)) => ProtoValue::Date(text.clone()),
        (_, serde_json::Value::String(text)) => ProtoValue::Text(text.clone()),
        (_, serde_json::Value::Number(number)) => ProtoValue::Number(number.as_f64()?),
        (_, serde_json::Value::Bool(flag)) => ProtoValue::Boolean(*flag),
        (_, serde_json::Value::Array(items)) => ProtoValue::Options(proto::StringList {
            values: items
                .iter()
                .filter_map(|item| item.as_str().map(str::to_owned))
                .collect(),
        }),
        _ => return None,
    };
    Some(proto::FieldValue { value: Some(member) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn definition(field_type: FieldType, options: &[&str]) -> FieldDefinition {
        FieldDefinition {
            key: "f".to_owned(),
            label: "F".to_owned(),
            field_type,
            options: options.iter().map(|option| (*option).to_owned()).collect(),
        }
    }

    fn text(value: &str) -> proto::FieldValue {
        proto::FieldValue {
            value: Some(ProtoValue::Text(value.to_owned())),
        }
    }

    #[test]
    fn values_are_checked_against_their_type() {
        let number = definition(FieldType::Number, &[]);
        let error = number.check_value(&text("12"), None).unwrap_err();
        assert!(
            matches!(
                &error,
                ContactsError::Invalid {
                    reason: "FIELD_TYPE_MISMATCH",
                    ..
                }
            ),
            "{error:?}"
        );
        assert!(error.to_string().contains("number field"), "{error}");
        let value = proto::FieldValue {
            value: Some(ProtoValue::Number(12.5)),
        };
        assert_eq!(number.check_value(&value, None).unwrap(), serde_json::json!(12.5));

        let date = definition(FieldType::Date, &[]);
        let value = proto::FieldValue {
            value: Some(ProtoValue::Date("2026-02-30".to_owned())),
        };
        assert!(date.check_value(&value, None).is_err());

        let select = definition(FieldType::SingleSelect, &["gold", "silver"]);
        assert_eq!(
            select.check_value(&text("gold"), None).unwrap(),
            serde_json::json!("gold")
        );
        assert!(select.check_value(&text("bronze"), None).is_err());

        let email = definition(FieldType::Email, &[]);
        assert_eq!(
            email.check_value(&text("A@Example.com"), None).unwrap(),
            serde_json::json!("a@example.com")
        );
        let url = definition(FieldType::Url, &[]);
        assert!(url.check_value(&text("javascript:alert(1)"), None).is_err());
        assert!(url.check_value(&text("https://example.com/x"), None).is_ok());
    }

    #[test]
    fn stored_values_round_trip_to_proto() {
        let at = DateTime::from_timestamp(1_780_000_000, 0).unwrap();
        let stored = serde_json::Value::String(format_datetime(at));
        let proto = value_to_proto(Some(FieldType::Datetime), &stored).unwrap();
        assert_eq!(proto.value, Some(ProtoValue::Datetime(timestamp(at))));
    }

    #[test]
    fn keys_are_checked() {
        assert!(validate_key("plan_2").is_ok());
        for key in ["", "Plan", "2plan", "plan-x", &"a".repeat(65)] {
            assert!(validate_key(key).is_err(), "{key}");
        }
    }
}
