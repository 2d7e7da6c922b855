//! What each field is: where its value is stored, its kind (for messages) and the operators
//! that apply to it.

use std::collections::HashMap;

use super::{FieldRef, FieldType, FilterError, Operator, StandardField};

/// Operators of free-text fields.
const FREE_TEXT_OPS: &[Operator] = &[
    Operator::Eq,
    Operator::Ne,
    Operator::Contains,
    Operator::NotContains,
    Operator::StartsWith,
    Operator::In,
    Operator::NotIn,
    Operator::IsSet,
    Operator::IsNotSet,
];
/// Operators of exact-match text fields (codes, ids, single-select).
const EXACT_TEXT_OPS: &[Operator] = &[
    Operator::Eq,
    Operator::Ne,
    Operator::In,
    Operator::NotIn,
    Operator::IsSet,
    Operator::IsNotSet,
];
/// Operators of the tags and channels arrays.
const ARRAY_COLUMN_OPS: &[Operator] = &[
    Operator::Eq,
    Operator::Ne,
    Operator::HasAny,
    Operator::HasAll,
    Operator::HasNone,
    Operator::IsSet,
    Operator::IsNotSet,
];
/// Operators of multi-select custom fields.
const MULTI_SELECT_OPS: &[Operator] = &[
    Operator::HasAny,
    Operator::HasAll,
    Operator::HasNone,
    Operator::IsSet,
    Operator::IsNotSet,
];
/// Operators of times that are always set (`created_at`).
const REQUIRED_TIME_OPS: &[Operator] = &[
    Operator::Gt,
    Operator::Gte,
    Operator::Lt,
    Operator::Lte,
    Operator::WithinLast,
    Operator::NotWithinLast,
];
/// Operators of optional times and dates.
const OPTIONAL_TIME_OPS: &[Operator] = &[
    Operator::Gt,
    Operator::Gte,
    Operator::Lt,
    Operator::Lte,
    Operator::WithinLast,
    Operator::NotWithinLast,
    Operator::IsSet,
    Operator::IsNotSet,
];
/// Operators of number custom fields.
const NUMBER_OPS: &[Operator] = &[
    Operator::Eq,
    Operator::Ne,
    Operator::Gt,
    Operator::Gte,
    Operator::Lt,
    Operator::Lte,
    Operator::IsSet,
    Operator::IsNotSet,
];
/// Operators of booleans that are always set.
const REQUIRED_FLAG_OPS: &[Operator] = &[Operator::Eq, Operator::Ne];
/// Operators of boolean custom fields.
const OPTIONAL_FLAG_OPS: &[Operator] = &[Operator::Eq, Operator::Ne, Operator::IsSet, Operator::IsNotSet];

/// The text columns behind the `name` field.
const NAME_COLUMNS: &[TextColumn] = &[
    TextColumn::FirstName,
    TextColumn::LastName,
    TextColumn::DisplayName,
];

/// How a field is stored and what applies to it.
pub(super) struct Profile<'a> {
    pub(super) shape: Shape<'a>,
    /// The field's type, for messages ("a number").
    pub(super) kind: &'static str,
    pub(super) allowed: &'static [Operator],
}

/// Where a field's value is read from, by storage shape.
#[derive(Clone, Copy)]
pub(super) enum Shape<'a> {
    Text(TextSource<'a>),
    Array(ArraySource<'a>),
    Instant(InstantSource<'a>),
    /// A date custom field, by key.
    Day(&'a str),
    /// A number custom field, by key.
    Number(&'a str),
    Flag(FlagSource<'a>),
}

#[derive(Clone, Copy)]
pub(super) enum TextSource<'a> {
    /// Passes when any of the columns passes.
    Columns(&'static [TextColumn]),
    /// A custom field holding a JSON string.
    Custom(&'a str),
}

#[derive(Clone, Copy)]
pub(super) enum TextColumn {
    FirstName,
    LastName,
    DisplayName,
    Email,
    Phone,
    Username,
    Locale,
    LastChannel,
    AssigneeId,
}

#[derive(Clone, Copy)]
pub(super) enum ArraySource<'a> {
    Tags,
    Channels,
    /// A custom field holding a JSON array of strings.
    Custom(&'a str),
}

#[derive(Clone, Copy)]
pub(super) enum InstantSource<'a> {
    CreatedAt,
    LastInboundAt,
    /// A custom field holding a `YYYY-MM-DDTHH:MM:SSZ` string.
    Custom(&'a str),
}

#[derive(Clone, Copy)]
pub(super) enum FlagSource<'a> {
    Blocked,
    BotSubscribed,
    /// A custom field holding a JSON boolean.
    Custom(&'a str),
}

pub(super) fn profile<'a>(
    field: &'a FieldRef,
    fields: &HashMap<String, FieldType>,
) -> Result<Profile<'a>, FilterError> {
    use StandardField as Std;
    let text_columns = |columns: &'static [TextColumn]| Shape::Text(TextSource::Columns(columns));
    let (shape, kind, allowed) = match field {
        FieldRef::Standard(standard) => match standard {
            Std::FirstName => (text_columns(&[TextColumn::FirstName]), "text", FREE_TEXT_OPS),
            Std::LastName => (text_columns(&[TextColumn::LastName]), "text", FREE_TEXT_OPS),
            Std::DisplayName => (text_columns(&[TextColumn::DisplayName]), "text", FREE_TEXT_OPS),
            Std::Name => (text_columns(NAME_COLUMNS), "text", FREE_TEXT_OPS),
            Std::Email => (text_columns(&[TextColumn::Email]), "text", FREE_TEXT_OPS),
            Std::Phone => (text_columns(&[TextColumn::Phone]), "text", FREE_TEXT_OPS),
            Std::Username => (text_columns(&[TextColumn::Username]), "text", FREE_TEXT_OPS),
            Std::Locale => (
                text_columns(&[TextColumn::Locale]),
                "an exact-match text",
                EXACT_TEXT_OPS,
            ),
            Std::LastChannel => (
                text_columns(&[TextColumn::LastChannel]),
                "an exact-match text",
                EXACT_TEXT_OPS,
            ),
            Std::AssigneeId => (
                text_columns(&[TextColumn::AssigneeId]),
                "an exact-match text",
                EXACT_TEXT_OPS,
            ),
            Std::Tags => (
                Shape::Array(ArraySource::Tags),
                "a list of tags",
                ARRAY_COLUMN_OPS,
            ),
            Std::Channel => (
                Shape::Array(ArraySource::Channels),
                "a list of channels",
                ARRAY_COLUMN_OPS,
            ),
            Std::CreatedAt => (
                Shape::Instant(InstantSource::CreatedAt),
                "a time",
                REQUIRED_TIME_OPS,
            ),
            Std::LastInboundAt => (
                Shape::Instant(InstantSource::LastInboundAt),
                "an optional time",
                OPTIONAL_TIME_OPS,
            ),
            Std::Blocked => (Shape::Flag(FlagSource::Blocked), "a boolean", REQUIRED_FLAG_OPS),
            Std::BotSubscribed => (
                Shape::Flag(FlagSource::BotSubscribed),
                "a boolean",
                REQUIRED_FLAG_OPS,
            ),
        },
        FieldRef::Custom(key) => {
            let Some(field_type) = fields.get(key) else {
                return Err(FilterError::UnknownCustomField { key: key.clone() });
            };
            let key = key.as_str();
            let custom_text = Shape::Text(TextSource::Custom(key));
            match field_type {
                FieldType::Text => (custom_text, "text", FREE_TEXT_OPS),
                FieldType::Email => (custom_text, "an email", FREE_TEXT_OPS),
                FieldType::Phone => (custom_text, "a phone", FREE_TEXT_OPS),
                FieldType::Url => (custom_text, "a url", FREE_TEXT_OPS),
                FieldType::SingleSelect => (custom_text, "a single_select", EXACT_TEXT_OPS),
                FieldType::MultiSelect => (
                    Shape::Array(ArraySource::Custom(key)),
                    "a multi_select",
                    MULTI_SELECT_OPS,
                ),
                FieldType::Number => (Shape::Number(key), "a number", NUMBER_OPS),
                FieldType::Date => (Shape::Day(key), "a date", OPTIONAL_TIME_OPS),
                FieldType::Datetime => (
                    Shape::Instant(InstantSource::Custom(key)),
                    "a datetime",
                    OPTIONAL_TIME_OPS,
                ),
                FieldType::Boolean => (
                    Shape::Flag(FlagSource::Custom(key)),
                    "a boolean",
                    OPTIONAL_FLAG_OPS,
                ),
            }
        }
    };
    Ok(Profile { shape, kind, allowed })
}
