//! The contact filter language: nested `all` (AND) / `any` (OR) groups of conditions over a
//! contact's standard fields, custom fields, tags, channels and times.
//!
//! One [`Filter`] can be
//! - checked against the workspace's custom field definitions ([`validate`]);
//! - compiled to a parameterized PostgreSQL `WHERE` fragment ([`to_sql`]);
//! - evaluated in memory against a [`ContactView`] ([`matches`]).
//!
//! [`to_sql`] and [`matches`] share one resolution step (condition → positive test + negation),
//! so both follow the rules below; `tests/filter_matches_sql.rs` checks on real PostgreSQL
//! that they select exactly the same contacts.
//!
//! # JSON
//!
//! A group is `{"all": [..]}` or `{"any": [..]}`; a condition is
//! `{"field": "email", "op": "contains", "value": "@acme.com"}`. Fields are the snake_case
//! standard names (`first_name`, `name`, `tags`, `channel`, `created_at`, ...) or
//! `custom.<key>`. Values: text `"x"`, number `10`, boolean `true`, list `["a", "b"]`,
//! time `{"time": "2025-06-01T00:00:00Z"}`, date `{"date": "2025-06-01"}`,
//! duration `{"seconds": 259200}`; `is_set` / `is_not_set` take no `value`.
//!
//! # Semantics
//!
//! **Not set.** A value is *not set* when it is SQL NULL, an empty string (the NOT NULL name
//! columns included), an empty `tags` / `channels` array, a missing custom key, or a custom
//! value whose JSON type does not fit the field type (JSON `null`, a string in a number field,
//! an empty or non-array value in a multi-select field, ...).
//!
//! **Positive operators** (`eq contains starts_with in has_any has_all gt gte lt lte
//! within_last is_set`) are false on a not-set value. Each **negative operator** is exactly
//! the negation of its twin, so it is true on a not-set value: `ne` = not `eq`,
//! `not_contains` = not `contains`, `not_in` = not `in`, `has_none` = not `has_any`,
//! `not_within_last` = not `within_last`, `is_not_set` = not `is_set`. Empty `all` is true,
//! empty `any` is false.
//!
//! | fields | operators | value | a set value passes when |
//! |---|---|---|---|
//! | `first_name last_name display_name email phone username`, custom `text email phone url` | `eq contains starts_with` (+ negations) | non-empty text | lower-cased value equals / contains / starts with the lower-cased text |
//! | same | `in` / `not_in` | 1..=100 non-empty texts | lower-cased value equals one lower-cased text |
//! | `locale last_channel assignee_id`, custom `single_select` | `eq ne in not_in` | as above | as above (no substring operators) |
//! | `name` | as text fields | as text | any of first, last, display name passes (`ne`: none equals) |
//! | all text fields | `is_set is_not_set` | none | the string is non-empty |
//! | `tags channel` | `eq ne` | non-empty text | the array holds the text (exact, case-sensitive) |
//! | `tags channel`, custom `multi_select` | `has_any has_all has_none` | 1..=100 non-empty texts | overlap / superset (exact string elements) |
//! | `tags channel`, custom `multi_select` | `is_set is_not_set` | none | the array is non-empty |
//! | `created_at last_inbound_at`, custom `datetime` | `gt gte lt lte` | time | value after / at or after / before / at or before |
//! | custom `date` | `gt gte lt lte` | date | same, on calendar dates |
//! | all times and dates | `within_last not_within_last` | duration `d` ≤ 36 600 days | value ≥ `now − d` (date fields: date ≥ the UTC date of `now − d`) |
//! | custom `number` | `eq ne gt gte lt lte` | finite number | numeric comparison |
//! | `blocked bot_subscribed`, custom `boolean` | `eq ne` | boolean | the flag equals the value |
//! | `last_inbound_at`, custom `date datetime number boolean` | `is_set is_not_set` | none | see *not set* |
//!
//! Every other field / operator / value combination is refused by [`validate`].
//!
//! **Precision.** Times compare at PostgreSQL's microsecond precision: filter times, `now − d`
//! and contact times are truncated to whole microseconds. Stored datetime custom values are
//! `YYYY-MM-DDTHH:MM:SSZ` text and dates `YYYY-MM-DD` text; both compare as text in byte order
//! (which is time order for that shape) against the filter value written in the same shape, a
//! sub-second filter time being adjusted exactly (`gte 10:00:00.5` = `gt 10:00:00`). Filter
//! times and dates must lie in the years 1 to 9999. Numbers compare as SQL `numeric` against the
//! shortest decimal of the filter's `f64`, and as `f64` in memory: identical for every value
//! stored from an `f64`.
//!
//! **Case.** SQL uses `lower()` (database collation C.UTF-8), the evaluator
//! `str::to_lowercase`; they agree on ASCII and common Latin letters ("Zoë") but may differ on
//! special cases such as `İ` or a final `Σ`.
//!
//! **SQL safety.** Nothing from the filter is written into the SQL text: custom field keys and
//! all values are bound parameters; only the caller's table alias (checked to be a plain
//! identifier) and fixed column names appear in the text. Functions that could raise an error
//! (casts, `jsonb_array_length`) sit behind a `CASE` on `jsonb_typeof`, and every positive
//! test is wrapped so it is never NULL, so `NOT` always gives the negation.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveDate, SecondsFormat, TimeDelta, Timelike, Utc};
use serde::de::Error as _;
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use tokio_postgres::types::ToSql;

/// Most levels of nested groups in one filter (the top-level group is level 1).
pub const MAX_GROUP_DEPTH: usize = 8;
/// Most conditions in one filter.
pub const MAX_CONDITIONS: usize = 100;
/// Most groups in one filter.
pub const MAX_GROUPS: usize = 100;
/// Most values in the list of one condition.
pub const MAX_LIST_VALUES: usize = 100;
/// Longest duration of `within_last` / `not_within_last`, in days (about 100 years).
pub const MAX_WITHIN_DAYS: u64 = 36_600;

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

/// The type of a custom field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    /// Free text (JSON string).
    Text,
    /// A number (JSON number).
    Number,
    /// A calendar date (JSON string `YYYY-MM-DD`).
    Date,
    /// A point in time (JSON string `YYYY-MM-DDTHH:MM:SSZ`).
    Datetime,
    /// Yes or no (JSON boolean).
    Boolean,
    /// One of the options (JSON string).
    SingleSelect,
    /// Some of the options (JSON array of strings).
    MultiSelect,
    /// An e-mail address (JSON string).
    Email,
    /// A phone number (JSON string).
    Phone,
    /// A URL (JSON string).
    Url,
}

/// Why a filter cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FilterError {
    /// The field name is neither a standard field nor `custom.<key>`.
    #[error("unknown field {name:?}: use one of {}, or custom.<key>", StandardFieldNames)]
    UnknownField {
        /// The name given.
        name: String,
    },
    /// The custom field is not defined in the workspace.
    #[error("unknown custom field {key:?}: define the field or remove the condition")]
    UnknownCustomField {
        /// The key given.
        key: String,
    },
    /// The operator does not apply to the field's type.
    #[error("{} is {kind}: operator {op} does not apply (use one of: {})", .field.label(), OperatorList(.allowed))]
    OperatorNotApplicable {
        /// The field.
        field: FieldRef,
        /// The field's type, for people ("a number").
        kind: &'static str,
        /// The operator given.
        op: Operator,
        /// The operators that apply.
        allowed: &'static [Operator],
    },
    /// The value does not fit the operator.
    #[error("{}: operator {op} needs {expected}, got {}", .field.label(), .got.kind_name())]
    WrongValue {
        /// The field.
        field: FieldRef,
        /// The operator.
        op: Operator,
        /// The kind of value the operator needs.
        expected: &'static str,
        /// The value given.
        got: FilterValue,
    },
    /// A text value is empty.
    #[error("{}: operator {op} needs a non-empty text; use is_set / is_not_set to test for a missing value", .field.label())]
    EmptyText {
        /// The field.
        field: FieldRef,
        /// The operator.
        op: Operator,
    },
    /// A list value is empty, too long, or holds an empty text.
    #[error("{}: operator {op} needs 1 to {MAX_LIST_VALUES} non-empty texts, got {count} with {empty} empty", .field.label())]
    BadList {
        /// The field.
        field: FieldRef,
        /// The operator.
        op: Operator,
        /// How many values the list has.
        count: usize,
        /// How many of them are empty.
        empty: usize,
    },
    /// A number is NaN or infinite.
    #[error("{}: {number} is not a finite number", .field.label())]
    NotFinite {
        /// The field.
        field: FieldRef,
        /// The number given.
        number: f64,
    },
    /// A time or date lies outside the years 1 to 9999.
    #[error("{}: {} lies outside the years 1 to 9999", .field.label(), .value.kind_name())]
    OutOfRange {
        /// The field.
        field: FieldRef,
        /// The value given.
        value: FilterValue,
    },
    /// A `within_last` duration is too long.
    #[error("{}: operator {op} takes at most {MAX_WITHIN_DAYS} days, got {} seconds", .field.label(), .duration.as_secs())]
    DurationTooLong {
        /// The field.
        field: FieldRef,
        /// The operator.
        op: Operator,
        /// The duration given.
        duration: Duration,
    },
    /// `now` minus a `within_last` duration lies outside the years 1 to 9999.
    #[error("now ({now}) minus {} seconds lies outside the years 1 to 9999", .duration.as_secs())]
    ThresholdOutOfRange {
        /// The reference time.
        now: DateTime<Utc>,
        /// The duration.
        duration: Duration,
    },
    /// Groups are nested too deep.
    #[error("the filter nests groups more than {MAX_GROUP_DEPTH} levels deep")]
    TooDeep,
    /// The filter has too many conditions.
    #[error("the filter has more than {MAX_CONDITIONS} conditions")]
    TooManyConditions,
    /// The filter has too many groups.
    #[error("the filter has more than {MAX_GROUPS} groups")]
    TooManyGroups,
    /// The table alias given to [`to_sql`] is not a plain identifier.
    #[error("table alias {alias:?} is not a plain SQL identifier")]
    InvalidAlias {
        /// The alias given.
        alias: String,
    },
    /// The first placeholder number given to [`to_sql`] is 0.
    #[error("SQL placeholders start at $1, got $0")]
    InvalidFirstParam,
}

/// A compiled filter: a boolean SQL expression and its parameters, in placeholder order.
#[derive(Debug, Clone, PartialEq)]
pub struct SqlFilter {
    /// The expression, e.g. `COALESCE(strpos(lower(NULLIF(c.email, '')), lower($2::text)) > 0, FALSE)`.
    pub sql: String,
    /// The values of `$first_param`, `$first_param + 1`, ...
    pub params: Vec<SqlParam>,
}

/// An owned SQL parameter value.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlParam {
    /// A `text` value.
    Text(String),
    /// A `text[]` value.
    TextList(Vec<String>),
    /// A `boolean` value.
    Bool(bool),
    /// A `timestamptz` value.
    Time(DateTime<Utc>),
}

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

/// Checks a filter against the workspace's custom field definitions and the size limits.
pub fn validate(filter: &Filter, fields: &HashMap<String, FieldType>) -> Result<(), FilterError> {
    let mut counts = NodeCounts::default();
    validate_node(filter, fields, 0, &mut counts)
}

/// Compiles a filter to a boolean SQL expression over the contacts table aliased `alias`, with
/// placeholders `$first_param`, `$first_param + 1`, ...; validates it first.
pub fn to_sql(
    filter: &Filter,
    fields: &HashMap<String, FieldType>,
    alias: &str,
    first_param: usize,
    now: DateTime<Utc>,
) -> Result<SqlFilter, FilterError> {
    let alias_is_identifier = alias.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && alias.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !alias_is_identifier {
        return Err(FilterError::InvalidAlias {
            alias: alias.to_owned(),
        });
    }
    if first_param == 0 {
        return Err(FilterError::InvalidFirstParam);
    }
    validate(filter, fields)?;
    let mut writer = SqlWriter {
        alias,
        first_param,
        now,
        params: Vec::new(),
    };
    let sql = writer.filter(filter, fields)?;
    Ok(SqlFilter {
        sql,
        params: writer.params,
    })
}

/// Whether a contact matches a filter, with the same semantics as [`to_sql`].
///
/// Call [`validate`] first: a condition that does not validate never matches here.
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

impl SqlFilter {
    /// The parameters as `tokio_postgres` wants them, in placeholder order.
    pub fn param_refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params.iter().map(SqlParam::as_sql).collect()
    }
}

impl SqlParam {
    /// The value as a `tokio_postgres` parameter.
    pub fn as_sql(&self) -> &(dyn ToSql + Sync) {
        match self {
            Self::Text(text) => text,
            Self::TextList(list) => list,
            Self::Bool(flag) => flag,
            Self::Time(time) => time,
        }
    }
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
    fn split_negation(self) -> (bool, Operator) {
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

impl Serialize for FieldRef {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for FieldRef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        name.parse().map_err(D::Error::custom)
    }
}

/// Lists the standard field names, for messages.
struct StandardFieldNames;

impl fmt::Display for StandardFieldNames {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = StandardField::ALL.iter().map(|field| field.as_str()).collect();
        formatter.write_str(&names.join(", "))
    }
}

/// Lists operators, for messages.
struct OperatorList<'a>(&'a [Operator]);

impl fmt::Display for OperatorList<'_> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.0.iter().map(|op| op.as_str()).collect();
        formatter.write_str(&names.join(", "))
    }
}

// ---------------------------------------------------------------------------------------------
// JSON shape of filters and values
// ---------------------------------------------------------------------------------------------

/// Any filter object as written in JSON, before deciding whether it is a group or a condition.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FilterObject {
    all: Option<Vec<Filter>>,
    any: Option<Vec<Filter>>,
    field: Option<FieldRef>,
    op: Option<Operator>,
    value: Option<FilterValue>,
}

impl FilterObject {
    fn into_filter(self) -> Result<Filter, &'static str> {
        let Self {
            all,
            any,
            field,
            op,
            value,
        } = self;
        match (all, any, field, op, value) {
            (Some(children), None, None, None, None) => Ok(Filter::All(children)),
            (None, Some(children), None, None, None) => Ok(Filter::Any(children)),
            (None, None, Some(field), Some(op), value) => Ok(Filter::Condition(Condition {
                field,
                op,
                value: value.unwrap_or_default(),
            })),
            (None, None, Some(_), None, _) => Err("a condition needs an \"op\""),
            (None, None, None, Some(_), _) => Err("a condition needs a \"field\""),
            _ => Err(
                "a filter is {\"all\": [..]}, {\"any\": [..]} or {\"field\": .., \"op\": .., \"value\": ..}",
            ),
        }
    }
}

impl<'de> Deserialize<'de> for Filter {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        FilterObject::deserialize(deserializer)?
            .into_filter()
            .map_err(D::Error::custom)
    }
}

impl Serialize for Filter {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let (key, children) = match self {
            Self::All(children) => ("all", children),
            Self::Any(children) => ("any", children),
            Self::Condition(condition) => return condition.serialize(serializer),
        };
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry(key, children)?;
        map.end()
    }
}

impl Serialize for FilterValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::None => serializer.serialize_none(),
            Self::Text(text) => serializer.serialize_str(text),
            Self::Number(number) => serializer.serialize_f64(*number),
            Self::Bool(flag) => serializer.serialize_bool(*flag),
            Self::List(list) => list.serialize(serializer),
            Self::Time(time) => {
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry("time", &time.to_rfc3339_opts(SecondsFormat::AutoSi, true))?;
                map.end()
            }
            Self::Date(date) => {
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry("date", &date.to_string())?;
                map.end()
            }
            Self::Duration(duration) => {
                let nanos = duration.subsec_nanos();
                let mut map = serializer.serialize_map(Some(if nanos == 0 { 1 } else { 2 }))?;
                map.serialize_entry("seconds", &duration.as_secs())?;
                if nanos != 0 {
                    map.serialize_entry("nanos", &nanos)?;
                }
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for FilterValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        filter_value_from_json(Value::deserialize(deserializer)?).map_err(D::Error::custom)
    }
}

/// The message for a JSON object that is not a time, date or duration value.
const VALUE_OBJECT_SHAPES: &str =
    "a value object is {\"time\": \"<RFC 3339>\"}, {\"date\": \"YYYY-MM-DD\"} or {\"seconds\": <integer>}";

fn filter_value_from_json(json: Value) -> Result<FilterValue, String> {
    match json {
        Value::Null => Ok(FilterValue::None),
        Value::Bool(flag) => Ok(FilterValue::Bool(flag)),
        Value::Number(number) => number
            .as_f64()
            .map(FilterValue::Number)
            .ok_or_else(|| format!("{number} is not a number")),
        Value::String(text) => Ok(FilterValue::Text(text)),
        Value::Array(items) => {
            let mut list = Vec::with_capacity(items.len());
            for item in items {
                let Value::String(text) = item else {
                    return Err("a list value holds texts only".to_owned());
                };
                list.push(text);
            }
            Ok(FilterValue::List(list))
        }
        Value::Object(object) => filter_value_from_json_object(&object),
    }
}

fn filter_value_from_json_object(object: &Map<String, Value>) -> Result<FilterValue, String> {
    if let Some(time) = object.get("time")
        && object.len() == 1
    {
        let text = time.as_str().ok_or("\"time\" must be an RFC 3339 text")?;
        let parsed = DateTime::parse_from_rfc3339(text)
            .map_err(|error| format!("\"time\": {text:?} is not an RFC 3339 time: {error}"))?;
        return Ok(FilterValue::Time(parsed.with_timezone(&Utc)));
    }
    if let Some(date) = object.get("date")
        && object.len() == 1
    {
        let text = date.as_str().ok_or("\"date\" must be a YYYY-MM-DD text")?;
        let parsed = NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .map_err(|error| format!("\"date\": {text:?} is not a YYYY-MM-DD date: {error}"))?;
        return Ok(FilterValue::Date(parsed));
    }
    let nanos = object.get("nanos");
    if let Some(seconds) = object.get("seconds")
        && object.len() == 1 + usize::from(nanos.is_some())
    {
        let seconds = seconds
            .as_u64()
            .ok_or("\"seconds\" must be a whole number of seconds")?;
        let nanos = match nanos {
            None => 0,
            Some(nanos) => nanos
                .as_u64()
                .and_then(|nanos| u32::try_from(nanos).ok())
                .filter(|nanos| *nanos < 1_000_000_000)
                .ok_or("\"nanos\" must be a whole number below 1000000000")?,
        };
        return Ok(FilterValue::Duration(Duration::new(seconds, nanos)));
    }
    Err(VALUE_OBJECT_SHAPES.to_owned())
}

// ---------------------------------------------------------------------------------------------
// Validation and resolution
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct NodeCounts {
    conditions: usize,
    groups: usize,
}

fn validate_node(
    filter: &Filter,
    fields: &HashMap<String, FieldType>,
    parent_depth: usize,
    counts: &mut NodeCounts,
) -> Result<(), FilterError> {
    match filter {
        Filter::All(children) | Filter::Any(children) => {
            let depth = parent_depth + 1;
            if depth > MAX_GROUP_DEPTH {
                return Err(FilterError::TooDeep);
            }
            counts.groups += 1;
            if counts.groups > MAX_GROUPS {
                return Err(FilterError::TooManyGroups);
            }
            for child in children {
                validate_node(child, fields, depth, counts)?;
            }
            Ok(())
        }
        Filter::Condition(condition) => {
            counts.conditions += 1;
            if counts.conditions > MAX_CONDITIONS {
                return Err(FilterError::TooManyConditions);
            }
            resolve(condition, fields).map(|_| ())
        }
    }
}

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
struct Profile<'a> {
    shape: Shape<'a>,
    /// The field's type, for messages ("a number").
    kind: &'static str,
    allowed: &'static [Operator],
}

/// Where a field's value is read from, by storage shape.
#[derive(Clone, Copy)]
enum Shape<'a> {
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
enum TextSource<'a> {
    /// Passes when any of the columns passes.
    Columns(&'static [TextColumn]),
    /// A custom field holding a JSON string.
    Custom(&'a str),
}

#[derive(Clone, Copy)]
enum TextColumn {
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
enum ArraySource<'a> {
    Tags,
    Channels,
    /// A custom field holding a JSON array of strings.
    Custom(&'a str),
}

#[derive(Clone, Copy)]
enum InstantSource<'a> {
    CreatedAt,
    LastInboundAt,
    /// A custom field holding a `YYYY-MM-DDTHH:MM:SSZ` string.
    Custom(&'a str),
}

#[derive(Clone, Copy)]
enum FlagSource<'a> {
    Blocked,
    BotSubscribed,
    /// A custom field holding a JSON boolean.
    Custom(&'a str),
}

/// A condition reduced to a positive test, possibly negated.
struct Predicate<'a> {
    negated: bool,
    test: Test<'a>,
}

enum Test<'a> {
    Text(TextSource<'a>, TextCheck<'a>),
    Array(ArraySource<'a>, ArrayCheck<'a>),
    Instant(InstantSource<'a>, TimeCheck<DateTime<Utc>>),
    Day(&'a str, TimeCheck<NaiveDate>),
    Number(&'a str, NumberCheck),
    Flag(FlagSource<'a>, FlagCheck),
}

enum TextCheck<'a> {
    IsSet,
    Equals(&'a str),
    Contains(&'a str),
    StartsWith(&'a str),
    EqualsOneOf(&'a [String]),
}

enum ArrayCheck<'a> {
    IsSet,
    HasAny(&'a [String]),
    HasAll(&'a [String]),
}

enum TimeCheck<T> {
    IsSet,
    Compare(Order, Bound<T>),
}

/// A fixed time or date, or one computed from `now`.
enum Bound<T> {
    Fixed(T),
    /// `now - duration` (for dates: its UTC date).
    Ago(Duration),
}

enum NumberCheck {
    IsSet,
    Equals(f64),
    Compare(Order, f64),
}

enum FlagCheck {
    IsSet,
    Equals(bool),
}

/// An order comparison: `value <op> bound`.
#[derive(Clone, Copy)]
enum Order {
    Gt,
    Gte,
    Lt,
    Lte,
}

fn profile<'a>(field: &'a FieldRef, fields: &HashMap<String, FieldType>) -> Result<Profile<'a>, FilterError> {
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

/// Checks one condition and reduces it to a positive test plus negation.
fn resolve<'a>(
    condition: &'a Condition,
    fields: &HashMap<String, FieldType>,
) -> Result<Predicate<'a>, FilterError> {
    let Profile { shape, kind, allowed } = profile(&condition.field, fields)?;
    let op = condition.op;
    let not_applicable = || FilterError::OperatorNotApplicable {
        field: condition.field.clone(),
        kind,
        op,
        allowed,
    };
    if !allowed.contains(&op) {
        return Err(not_applicable());
    }
    let value = ValueCheck { condition };
    let (negated, positive) = op.split_negation();
    let test = match (shape, positive) {
        (Shape::Text(source), Operator::IsSet) => {
            Test::Text(source, value.none().map(|()| TextCheck::IsSet)?)
        }
        (Shape::Text(source), Operator::Eq) => Test::Text(source, TextCheck::Equals(value.text()?)),
        (Shape::Text(source), Operator::Contains) => Test::Text(source, TextCheck::Contains(value.text()?)),
        (Shape::Text(source), Operator::StartsWith) => {
            Test::Text(source, TextCheck::StartsWith(value.text()?))
        }
        (Shape::Text(source), Operator::In) => Test::Text(source, TextCheck::EqualsOneOf(value.list()?)),
        (Shape::Array(source), Operator::IsSet) => {
            Test::Array(source, value.none().map(|()| ArrayCheck::IsSet)?)
        }
        (Shape::Array(source), Operator::Eq) => Test::Array(
            source,
            ArrayCheck::HasAny(std::slice::from_ref(value.text_string()?)),
        ),
        (Shape::Array(source), Operator::HasAny) => Test::Array(source, ArrayCheck::HasAny(value.list()?)),
        (Shape::Array(source), Operator::HasAll) => Test::Array(source, ArrayCheck::HasAll(value.list()?)),
        (Shape::Instant(source), Operator::IsSet) => {
            Test::Instant(source, value.none().map(|()| TimeCheck::IsSet)?)
        }
        (Shape::Instant(source), Operator::WithinLast) => Test::Instant(
            source,
            TimeCheck::Compare(Order::Gte, Bound::Ago(value.duration()?)),
        ),
        (Shape::Instant(source), order_op) => {
            let order = Order::from_operator(order_op).ok_or_else(not_applicable)?;
            Test::Instant(source, TimeCheck::Compare(order, Bound::Fixed(value.time()?)))
        }
        (Shape::Day(key), Operator::IsSet) => Test::Day(key, value.none().map(|()| TimeCheck::IsSet)?),
        (Shape::Day(key), Operator::WithinLast) => {
            Test::Day(key, TimeCheck::Compare(Order::Gte, Bound::Ago(value.duration()?)))
        }
        (Shape::Day(key), order_op) => {
            let order = Order::from_operator(order_op).ok_or_else(not_applicable)?;
            Test::Day(key, TimeCheck::Compare(order, Bound::Fixed(value.date()?)))
        }
        (Shape::Number(key), Operator::IsSet) => {
            Test::Number(key, value.none().map(|()| NumberCheck::IsSet)?)
        }
        (Shape::Number(key), Operator::Eq) => Test::Number(key, NumberCheck::Equals(value.number()?)),
        (Shape::Number(key), order_op) => {
            let order = Order::from_operator(order_op).ok_or_else(not_applicable)?;
            Test::Number(key, NumberCheck::Compare(order, value.number()?))
        }
        (Shape::Flag(source), Operator::IsSet) => {
            Test::Flag(source, value.none().map(|()| FlagCheck::IsSet)?)
        }
        (Shape::Flag(source), Operator::Eq) => Test::Flag(source, FlagCheck::Equals(value.flag()?)),
        _ => return Err(not_applicable()),
    };
    Ok(Predicate { negated, test })
}

/// Checks the value of a condition against what its operator needs.
struct ValueCheck<'a> {
    condition: &'a Condition,
}

impl<'a> ValueCheck<'a> {
    fn wrong(&self, expected: &'static str) -> FilterError {
        FilterError::WrongValue {
            field: self.condition.field.clone(),
            op: self.condition.op,
            expected,
            got: self.condition.value.clone(),
        }
    }

    fn none(&self) -> Result<(), FilterError> {
        match &self.condition.value {
            FilterValue::None => Ok(()),
            _ => Err(self.wrong("no value")),
        }
    }

    fn text_string(&self) -> Result<&'a String, FilterError> {
        match &self.condition.value {
            FilterValue::Text(text) if text.is_empty() => Err(FilterError::EmptyText {
                field: self.condition.field.clone(),
                op: self.condition.op,
            }),
            FilterValue::Text(text) => Ok(text),
            _ => Err(self.wrong("a text")),
        }
    }

    fn text(&self) -> Result<&'a str, FilterError> {
        self.text_string().map(String::as_str)
    }

    fn list(&self) -> Result<&'a [String], FilterError> {
        let FilterValue::List(list) = &self.condition.value else {
            return Err(self.wrong("a list of texts"));
        };
        let empty = list.iter().filter(|text| text.is_empty()).count();
        if list.is_empty() || list.len() > MAX_LIST_VALUES || empty > 0 {
            return Err(FilterError::BadList {
                field: self.condition.field.clone(),
                op: self.condition.op,
                count: list.len(),
                empty,
            });
        }
        Ok(list)
    }

    fn number(&self) -> Result<f64, FilterError> {
        match self.condition.value {
            FilterValue::Number(number) if number.is_finite() => Ok(number),
            FilterValue::Number(number) => Err(FilterError::NotFinite {
                field: self.condition.field.clone(),
                number,
            }),
            _ => Err(self.wrong("a number")),
        }
    }

    fn flag(&self) -> Result<bool, FilterError> {
        match self.condition.value {
            FilterValue::Bool(flag) => Ok(flag),
            _ => Err(self.wrong("a boolean")),
        }
    }

    fn out_of_range(&self) -> FilterError {
        FilterError::OutOfRange {
            field: self.condition.field.clone(),
            value: self.condition.value.clone(),
        }
    }

    fn time(&self) -> Result<DateTime<Utc>, FilterError> {
        match self.condition.value {
            FilterValue::Time(time) if year_in_range(time.year()) => Ok(time),
            FilterValue::Time(_) => Err(self.out_of_range()),
            _ => Err(self.wrong("a time")),
        }
    }

    fn date(&self) -> Result<NaiveDate, FilterError> {
        match self.condition.value {
            FilterValue::Date(date) if year_in_range(date.year()) => Ok(date),
            FilterValue::Date(_) => Err(self.out_of_range()),
            _ => Err(self.wrong("a date")),
        }
    }

    fn duration(&self) -> Result<Duration, FilterError> {
        match self.condition.value {
            FilterValue::Duration(duration) if duration <= max_within_duration() => Ok(duration),
            FilterValue::Duration(duration) => Err(FilterError::DurationTooLong {
                field: self.condition.field.clone(),
                op: self.condition.op,
                duration,
            }),
            _ => Err(self.wrong("a duration")),
        }
    }
}

fn year_in_range(year: i32) -> bool {
    (1..=9999).contains(&year)
}

fn max_within_duration() -> Duration {
    Duration::from_secs(MAX_WITHIN_DAYS * 24 * 60 * 60)
}

impl Order {
    fn from_operator(op: Operator) -> Option<Self> {
        match op {
            Operator::Gt => Some(Self::Gt),
            Operator::Gte => Some(Self::Gte),
            Operator::Lt => Some(Self::Lt),
            Operator::Lte => Some(Self::Lte),
            _ => None,
        }
    }

    fn sql(self) -> &'static str {
        match self {
            Self::Gt => ">",
            Self::Gte => ">=",
            Self::Lt => "<",
            Self::Lte => "<=",
        }
    }

    /// Whether `value <op> bound` holds, given `value.cmp(bound)`.
    fn holds(self, ordering: Ordering) -> bool {
        match self {
            Self::Gt => ordering == Ordering::Greater,
            Self::Gte => ordering != Ordering::Less,
            Self::Lt => ordering == Ordering::Less,
            Self::Lte => ordering != Ordering::Greater,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Bounds: times, dates and their stored text forms
// ---------------------------------------------------------------------------------------------

/// Drops the sub-microsecond part (PostgreSQL keeps microseconds).
fn truncate_to_micros(time: DateTime<Utc>) -> DateTime<Utc> {
    let nanos = time.nanosecond();
    time.with_nanosecond(nanos - nanos % 1_000).unwrap_or(time)
}

/// `now - duration`, truncated to microseconds, within the years 1 to 9999.
fn time_ago(now: DateTime<Utc>, duration: Duration) -> Result<DateTime<Utc>, FilterError> {
    TimeDelta::from_std(duration)
        .ok()
        .and_then(|delta| now.checked_sub_signed(delta))
        .filter(|threshold| year_in_range(threshold.year()))
        .map(truncate_to_micros)
        .ok_or(FilterError::ThresholdOutOfRange { now, duration })
}

impl Bound<DateTime<Utc>> {
    fn resolve(&self, now: DateTime<Utc>) -> Result<DateTime<Utc>, FilterError> {
        match self {
            Self::Fixed(time) => Ok(truncate_to_micros(*time)),
            Self::Ago(duration) => time_ago(now, *duration),
        }
    }
}

impl Bound<NaiveDate> {
    fn resolve(&self, now: DateTime<Utc>) -> Result<NaiveDate, FilterError> {
        match self {
            Self::Fixed(date) => Ok(*date),
            Self::Ago(duration) => time_ago(now, *duration).map(|threshold| threshold.date_naive()),
        }
    }
}

/// The text comparison against stored `YYYY-MM-DDTHH:MM:SSZ` values that equals
/// `value <order> bound` on times: stored values are whole seconds, so a bound with a
/// fraction compares like its whole second with `gte` → `gt` and `lt` → `lte`.
fn stored_datetime_comparison(order: Order, bound: DateTime<Utc>) -> (Order, String) {
    let whole_second = bound.with_nanosecond(0).unwrap_or(bound);
    let has_fraction = whole_second != bound;
    let adjusted = match (order, has_fraction) {
        (Order::Gte, true) => Order::Gt,
        (Order::Lt, true) => Order::Lte,
        (unchanged, _) => unchanged,
    };
    (adjusted, whole_second.format("%Y-%m-%dT%H:%M:%SZ").to_string())
}

fn stored_date_text(date: NaiveDate) -> String {
    date.format("%Y-%m-%d").to_string()
}

/// The decimal text of a number, for SQL `numeric` (shortest form that reads back the same).
fn number_text(number: f64) -> String {
    format!("{number}")
}

// ---------------------------------------------------------------------------------------------
// SQL
// ---------------------------------------------------------------------------------------------

impl TextColumn {
    fn sql_name(self) -> &'static str {
        match self {
            Self::FirstName => "first_name",
            Self::LastName => "last_name",
            Self::DisplayName => "display_name",
            Self::Email => "email",
            Self::Phone => "phone",
            Self::Username => "username",
            Self::Locale => "locale",
            Self::LastChannel => "last_channel",
            Self::AssigneeId => "assignee_id",
        }
    }

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

/// Builds the SQL text and collects parameters.
struct SqlWriter<'a> {
    alias: &'a str,
    first_param: usize,
    now: DateTime<Utc>,
    params: Vec<SqlParam>,
}

impl SqlWriter<'_> {
    /// Adds a parameter and returns its placeholder with a type cast, e.g. `$3::text`.
    fn bind(&mut self, param: SqlParam) -> String {
        let sql_type = match &param {
            SqlParam::Text(_) => "text",
            SqlParam::TextList(_) => "text[]",
            SqlParam::Bool(_) => "boolean",
            SqlParam::Time(_) => "timestamptz",
        };
        self.params.push(param);
        let number = self.first_param + self.params.len() - 1;
        format!("${number}::{sql_type}")
    }

    fn column(&self, name: &str) -> String {
        format!("{}.{name}", self.alias)
    }

    /// The JSON value of a custom field (SQL NULL when missing); the key is a parameter.
    fn custom_json(&mut self, key: &str) -> String {
        let key_param = self.bind(SqlParam::Text(key.to_owned()));
        format!("({} -> {key_param})", self.column("custom_fields"))
    }

    /// The value of a custom field when it has JSON type `json_type`, else SQL NULL.
    fn typed_custom(json: &str, json_type: &str, value_sql: &str) -> String {
        format!("(CASE WHEN jsonb_typeof({json}) = '{json_type}' THEN {value_sql} END)")
    }

    /// A custom field's non-empty string, else SQL NULL.
    fn custom_string(&mut self, key: &str) -> String {
        let json = self.custom_json(key);
        Self::typed_custom(&json, "string", &format!("NULLIF({json} #>> '{{}}', '')"))
    }

    fn filter(
        &mut self,
        filter: &Filter,
        fields: &HashMap<String, FieldType>,
    ) -> Result<String, FilterError> {
        let (children, joiner, empty) = match filter {
            Filter::All(children) => (children, " AND ", "TRUE"),
            Filter::Any(children) => (children, " OR ", "FALSE"),
            Filter::Condition(condition) => return self.predicate(&resolve(condition, fields)?),
        };
        if children.is_empty() {
            return Ok(empty.to_owned());
        }
        let mut parts = Vec::with_capacity(children.len());
        for child in children {
            parts.push(self.filter(child, fields)?);
        }
        Ok(format!("({})", parts.join(joiner)))
    }

    fn predicate(&mut self, predicate: &Predicate<'_>) -> Result<String, FilterError> {
        let positive = match &predicate.test {
            Test::Text(source, check) => self.text_test(*source, check),
            Test::Array(source, check) => self.array_test(*source, check),
            Test::Instant(source, check) => self.instant_test(*source, check)?,
            Test::Day(key, check) => self.day_test(key, check)?,
            Test::Number(key, check) => self.number_test(key, check),
            Test::Flag(source, check) => self.flag_test(*source, check),
        };
        Ok(if predicate.negated {
            format!("(NOT {positive})")
        } else {
            positive
        })
    }

    fn text_test(&mut self, source: TextSource<'_>, check: &TextCheck<'_>) -> String {
        let values: Vec<String> = match source {
            TextSource::Columns(columns) => columns
                .iter()
                .map(|column| format!("NULLIF({}, '')", self.column(column.sql_name())))
                .collect(),
            TextSource::Custom(key) => vec![self.custom_string(key)],
        };
        let template = match check {
            TextCheck::IsSet => "({value} IS NOT NULL)".to_owned(),
            TextCheck::Equals(text) => {
                let param = self.bind(SqlParam::Text((*text).to_owned()));
                format!("COALESCE(lower({{value}}) = lower({param}), FALSE)")
            }
            TextCheck::Contains(text) => {
                let param = self.bind(SqlParam::Text((*text).to_owned()));
                format!("COALESCE(strpos(lower({{value}}), lower({param})) > 0, FALSE)")
            }
            TextCheck::StartsWith(text) => {
                let param = self.bind(SqlParam::Text((*text).to_owned()));
                format!("COALESCE(starts_with(lower({{value}}), lower({param})), FALSE)")
            }
            TextCheck::EqualsOneOf(list) => {
                let lowered = list.iter().map(|text| text.to_lowercase()).collect();
                let param = self.bind(SqlParam::TextList(lowered));
                format!("COALESCE(lower({{value}}) = ANY({param}), FALSE)")
            }
        };
        let tests: Vec<String> = values
            .iter()
            .map(|value| template.replace("{value}", value))
            .collect();
        match tests.as_slice() {
            [single] => single.clone(),
            _ => format!("({})", tests.join(" OR ")),
        }
    }

    fn array_test(&mut self, source: ArraySource<'_>, check: &ArrayCheck<'_>) -> String {
        let array_column = match source {
            ArraySource::Tags => "tags",
            ArraySource::Channels => "channels",
            ArraySource::Custom(key) => {
                let json = self.custom_json(key);
                let when_array = match check {
                    ArrayCheck::IsSet => format!("jsonb_array_length({json}) > 0"),
                    ArrayCheck::HasAny(list) => {
                        format!("{json} ?| {}", self.bind(SqlParam::TextList(list.to_vec())))
                    }
                    ArrayCheck::HasAll(list) => {
                        format!("{json} ?& {}", self.bind(SqlParam::TextList(list.to_vec())))
                    }
                };
                return format!(
                    "(CASE WHEN jsonb_typeof({json}) = 'array' THEN {when_array} ELSE FALSE END)"
                );
            }
        };
        let column = self.column(array_column);
        match check {
            ArrayCheck::IsSet => format!("(cardinality({column}) > 0)"),
            ArrayCheck::HasAny(list) => {
                let param = self.bind(SqlParam::TextList(list.to_vec()));
                format!("COALESCE({column} && {param}, FALSE)")
            }
            ArrayCheck::HasAll(list) => {
                let param = self.bind(SqlParam::TextList(list.to_vec()));
                format!("COALESCE({column} @> {param}, FALSE)")
            }
        }
    }

    fn instant_test(
        &mut self,
        source: InstantSource<'_>,
        check: &TimeCheck<DateTime<Utc>>,
    ) -> Result<String, FilterError> {
        let value = match source {
            InstantSource::CreatedAt => self.column("created_at"),
            InstantSource::LastInboundAt => self.column("last_inbound_at"),
            InstantSource::Custom(key) => self.custom_string(key),
        };
        let TimeCheck::Compare(order, bound) = check else {
            return Ok(format!("({value} IS NOT NULL)"));
        };
        let bound = bound.resolve(self.now)?;
        let (order, param, collate) = match source {
            InstantSource::CreatedAt | InstantSource::LastInboundAt => {
                (*order, self.bind(SqlParam::Time(bound)), "")
            }
            InstantSource::Custom(_) => {
                let (adjusted, text) = stored_datetime_comparison(*order, bound);
                (adjusted, self.bind(SqlParam::Text(text)), " COLLATE \"C\"")
            }
        };
        Ok(format!(
            "COALESCE({value}{collate} {} {param}, FALSE)",
            order.sql()
        ))
    }

    fn day_test(&mut self, key: &str, check: &TimeCheck<NaiveDate>) -> Result<String, FilterError> {
        let value = self.custom_string(key);
        let TimeCheck::Compare(order, bound) = check else {
            return Ok(format!("({value} IS NOT NULL)"));
        };
        let date = bound.resolve(self.now)?;
        let param = self.bind(SqlParam::Text(stored_date_text(date)));
        Ok(format!(
            "COALESCE({value} COLLATE \"C\" {} {param}, FALSE)",
            order.sql()
        ))
    }

    fn number_test(&mut self, key: &str, check: &NumberCheck) -> String {
        let json = self.custom_json(key);
        let value = Self::typed_custom(&json, "number", &format!("({json})::numeric"));
        let (operator, number) = match check {
            NumberCheck::IsSet => return format!("({value} IS NOT NULL)"),
            NumberCheck::Equals(number) => ("=", *number),
            NumberCheck::Compare(order, number) => (order.sql(), *number),
        };
        let param = self.bind(SqlParam::Text(number_text(number)));
        format!("COALESCE({value} {operator} {param}::numeric, FALSE)")
    }

    fn flag_test(&mut self, source: FlagSource<'_>, check: &FlagCheck) -> String {
        let value = match source {
            FlagSource::Blocked => self.column("blocked"),
            FlagSource::BotSubscribed => self.column("bot_subscribed"),
            FlagSource::Custom(key) => {
                let json = self.custom_json(key);
                Self::typed_custom(&json, "boolean", &format!("({json})::boolean"))
            }
        };
        match check {
            FlagCheck::IsSet => format!("({value} IS NOT NULL)"),
            FlagCheck::Equals(flag) => {
                let param = self.bind(SqlParam::Bool(*flag));
                format!("COALESCE({value} = {param}, FALSE)")
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// In-memory evaluation
// ---------------------------------------------------------------------------------------------

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

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use serde_json::json;

    use super::*;

    fn fields() -> HashMap<String, FieldType> {
        [
            ("plan", FieldType::SingleSelect),
            ("score", FieldType::Number),
            ("birthday", FieldType::Date),
            ("renewal", FieldType::Datetime),
            ("interests", FieldType::MultiSelect),
            ("newsletter", FieldType::Boolean),
            ("note", FieldType::Text),
        ]
        .into_iter()
        .map(|(key, field_type)| (key.to_owned(), field_type))
        .collect()
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 6, 15, 12, 0, 0)
            .single()
            .expect("valid time")
    }

    fn at(hours_ago: i64) -> DateTime<Utc> {
        now() - TimeDelta::hours(hours_ago)
    }

    fn condition(field: &str, op: Operator, value: FilterValue) -> Filter {
        Filter::Condition(Condition {
            field: field.parse().expect("known field"),
            op,
            value,
        })
    }

    fn text(value: &str) -> FilterValue {
        FilterValue::Text(value.to_owned())
    }

    fn list(values: &[&str]) -> FilterValue {
        FilterValue::List(values.iter().map(|value| (*value).to_owned()).collect())
    }

    fn days(count: u64) -> FilterValue {
        FilterValue::Duration(Duration::from_secs(count * 24 * 3600))
    }

    fn contact() -> ContactView {
        ContactView {
            first_name: "Zoë".to_owned(),
            last_name: "Smith".to_owned(),
            email: Some("Zoe@Example.com".to_owned()),
            tags: vec!["vip".to_owned(), "lead".to_owned()],
            channels: vec!["whatsapp".to_owned()],
            bot_subscribed: true,
            created_at: at(48),
            last_inbound_at: Some(at(24)),
            custom_fields: json!({
                "plan": "Pro",
                "score": 7.5,
                "birthday": "1990-06-10",
                "renewal": "2025-06-15T10:00:00Z",
                "interests": ["music", "sport"],
                "newsletter": true,
            })
            .as_object()
            .cloned()
            .expect("an object"),
            ..ContactView::default()
        }
    }

    fn check(filter: &Filter, contact: &ContactView) -> bool {
        validate(filter, &fields()).expect("a valid filter");
        matches(filter, contact, &fields(), now())
    }

    fn error(filter: &Filter) -> String {
        validate(filter, &fields())
            .expect_err("an invalid filter")
            .to_string()
    }

    #[test]
    fn filters_round_trip_through_readable_json() {
        let filter = Filter::All(vec![
            condition("tags", Operator::HasAny, list(&["vip", "lead"])),
            Filter::Any(vec![
                condition("custom.score", Operator::Gte, FilterValue::Number(10.0)),
                condition("last_inbound_at", Operator::NotWithinLast, days(3)),
                condition("email", Operator::IsNotSet, FilterValue::None),
            ]),
            condition(
                "created_at",
                Operator::Lt,
                FilterValue::Time(at(1) + TimeDelta::nanoseconds(5)),
            ),
            condition(
                "custom.birthday",
                Operator::Gt,
                FilterValue::Date(now().date_naive()),
            ),
            condition("blocked", Operator::Eq, FilterValue::Bool(false)),
            condition(
                "last_inbound_at",
                Operator::WithinLast,
                FilterValue::Duration(Duration::new(1, 5)),
            ),
            condition("name", Operator::Contains, text("zo")),
        ]);
        let json = serde_json::to_value(&filter).expect("serializable");
        assert_eq!(
            serde_json::to_string(&json["all"][0]).expect("serializable"),
            r#"{"field":"tags","op":"has_any","value":["vip","lead"]}"#
        );
        assert_eq!(
            json["all"][1],
            json!({"any": [
                {"field": "custom.score", "op": "gte", "value": 10.0},
                {"field": "last_inbound_at", "op": "not_within_last", "value": {"seconds": 259_200}},
                {"field": "email", "op": "is_not_set"},
            ]})
        );
        assert_eq!(
            json["all"][2]["value"],
            json!({"time": "2025-06-15T11:00:00.000000005Z"})
        );
        assert_eq!(json["all"][3]["value"], json!({"date": "2025-06-15"}));
        assert_eq!(json["all"][5]["value"], json!({"seconds": 1, "nanos": 5}));
        let parsed: Filter = serde_json::from_value(json).expect("deserializable");
        assert_eq!(parsed, filter);
    }

    #[test]
    fn json_parsing_accepts_integers_and_refuses_malformed_filters() {
        let parsed: Filter =
            serde_json::from_str(r#"{"field":"custom.score","op":"gt","value":10}"#).expect("valid json");
        assert_eq!(
            parsed,
            condition("custom.score", Operator::Gt, FilterValue::Number(10.0))
        );
        let parsed: Filter = serde_json::from_str(r#"{"any":[]}"#).expect("valid json");
        assert_eq!(parsed, Filter::Any(vec![]));

        let refused = |json: &str| serde_json::from_str::<Filter>(json).expect_err(json).to_string();
        assert!(
            refused(r#"{"field":"nickname","op":"eq","value":"x"}"#).contains("unknown field \"nickname\"")
        );
        assert!(refused(r#"{"field":"custom.","op":"eq","value":"x"}"#).contains("unknown field"));
        assert!(refused(r#"{"field":"email","op":"like","value":"x"}"#).contains("unknown variant `like`"));
        assert!(refused(r#"{"field":"email","value":"x"}"#).contains("needs an \"op\""));
        assert!(refused(r#"{"all":[],"field":"email","op":"eq"}"#).contains("a filter is"));
        assert!(refused(r#"{"all":[],"nope":1}"#).contains("unknown field `nope`"));
        assert!(refused(r#"{"field":"tags","op":"has_any","value":["a",1]}"#).contains("texts only"));
        assert!(
            refused(r#"{"field":"created_at","op":"gt","value":{"time":"yesterday"}}"#).contains("RFC 3339")
        );
        assert!(refused(r#"{"field":"created_at","op":"gt","value":{"when":1}}"#).contains("value object"));
    }

    #[test]
    fn validation_names_the_field_and_operator_in_its_messages() {
        assert_eq!(
            error(&condition("custom.score", Operator::Contains, text("1"))),
            "custom field \"score\" is a number: operator contains does not apply \
             (use one of: eq, ne, gt, gte, lt, lte, is_set, is_not_set)"
        );
        assert_eq!(
            error(&condition("custom.nickname", Operator::Eq, text("x"))),
            "unknown custom field \"nickname\": define the field or remove the condition"
        );
        assert_eq!(
            error(&condition("created_at", Operator::Gt, text("yesterday"))),
            "field \"created_at\": operator gt needs a time, got a text"
        );
        assert_eq!(
            error(&condition(
                "custom.birthday",
                Operator::Gt,
                FilterValue::Time(now())
            )),
            "custom field \"birthday\": operator gt needs a date, got a time"
        );
        assert!(error(&condition("email", Operator::Eq, text(""))).contains("needs a non-empty text"));
        assert!(
            error(&condition("email", Operator::In, list(&[]))).contains("needs 1 to 100 non-empty texts")
        );
        assert!(error(&condition("tags", Operator::HasAll, list(&["vip", ""]))).contains("with 1 empty"));
        assert!(error(&condition("email", Operator::IsSet, text("x"))).contains("needs no value"));
        assert!(
            error(&condition("created_at", Operator::IsSet, FilterValue::None)).contains("does not apply")
        );
        assert!(
            error(&condition("blocked", Operator::IsNotSet, FilterValue::None)).contains("does not apply")
        );
        assert!(error(&condition("locale", Operator::Contains, text("en"))).contains("exact-match text"));
        assert!(error(&condition("custom.interests", Operator::Eq, text("music"))).contains("multi_select"));
        assert!(
            error(&condition(
                "custom.score",
                Operator::Gt,
                FilterValue::Number(f64::NAN)
            ))
            .contains("finite")
        );
        assert!(
            error(&condition("last_inbound_at", Operator::WithinLast, days(40_000))).contains("36600 days")
        );
        let year_ten_thousand = NaiveDate::from_ymd_opt(10_000, 1, 1).expect("valid date");
        assert!(
            error(&condition(
                "custom.birthday",
                Operator::Lt,
                FilterValue::Date(year_ten_thousand)
            ))
            .contains("outside the years 1 to 9999")
        );
    }

    #[test]
    fn validation_limits_depth_and_size() {
        let mut deep = condition("email", Operator::IsSet, FilterValue::None);
        for _ in 0..MAX_GROUP_DEPTH {
            deep = Filter::All(vec![deep]);
        }
        assert_eq!(validate(&deep, &fields()), Ok(()));
        assert_eq!(
            validate(&Filter::Any(vec![deep]), &fields()),
            Err(FilterError::TooDeep)
        );

        let many = |count| {
            Filter::Any(vec![
                condition("email", Operator::IsSet, FilterValue::None);
                count
            ])
        };
        assert_eq!(validate(&many(MAX_CONDITIONS), &fields()), Ok(()));
        assert_eq!(
            validate(&many(MAX_CONDITIONS + 1), &fields()),
            Err(FilterError::TooManyConditions)
        );
        let groups = Filter::All(vec![Filter::Any(vec![]); MAX_GROUPS]);
        assert_eq!(validate(&groups, &fields()), Err(FilterError::TooManyGroups));
    }

    #[test]
    fn every_allowed_operator_of_every_field_accepts_some_value() {
        let samples = [
            FilterValue::None,
            text("x"),
            FilterValue::Number(1.0),
            FilterValue::Bool(true),
            FilterValue::Time(now()),
            FilterValue::Date(now().date_naive()),
            days(1),
            list(&["x"]),
        ];
        let mut names: Vec<String> = StandardField::ALL
            .iter()
            .map(|field| field.as_str().to_owned())
            .collect();
        names.extend(fields().keys().map(|key| format!("custom.{key}")));
        for name in names {
            let field: FieldRef = name.parse().expect("known field");
            let allowed = profile(&field, &fields()).expect("known field").allowed;
            for op in Operator::ALL {
                let accepted = samples.iter().any(|value| {
                    let filter = Filter::Condition(Condition {
                        field: field.clone(),
                        op,
                        value: value.clone(),
                    });
                    validate(&filter, &fields()).is_ok()
                });
                assert_eq!(accepted, allowed.contains(&op), "{name} {op}");
            }
        }
    }

    #[test]
    fn text_comparisons_ignore_case_and_name_means_any_name_column() {
        let zoe = contact();
        assert!(check(&condition("first_name", Operator::Eq, text("ZOË")), &zoe));
        assert!(check(
            &condition("email", Operator::Contains, text("@EXAMPLE.")),
            &zoe
        ));
        assert!(check(
            &condition("email", Operator::StartsWith, text("zoe@")),
            &zoe
        ));
        assert!(!check(
            &condition("email", Operator::StartsWith, text("example")),
            &zoe
        ));
        assert!(check(
            &condition("first_name", Operator::In, list(&["ann", "zoë"])),
            &zoe
        ));
        assert!(check(&condition("name", Operator::Eq, text("smith")), &zoe));
        assert!(!check(&condition("name", Operator::Ne, text("smith")), &zoe));
        assert!(check(
            &condition("name", Operator::NotContains, text("bob")),
            &zoe
        ));
        assert!(check(&condition("custom.plan", Operator::Eq, text("pro")), &zoe));
        assert!(check(
            &condition("custom.plan", Operator::NotIn, list(&["free"])),
            &zoe
        ));
    }

    #[test]
    fn negative_operators_include_contacts_without_a_value() {
        let nobody = ContactView::default();
        for (field, value) in [("email", text("x")), ("note", text("x")), ("plan", text("x"))] {
            let field = if field == "email" {
                field.to_owned()
            } else {
                format!("custom.{field}")
            };
            assert!(!check(&condition(&field, Operator::Eq, value.clone()), &nobody));
            assert!(check(&condition(&field, Operator::Ne, value.clone()), &nobody));
            assert!(!check(&condition(&field, Operator::In, list(&["x"])), &nobody));
            assert!(check(&condition(&field, Operator::NotIn, list(&["x"])), &nobody));
            assert!(!check(
                &condition(&field, Operator::IsSet, FilterValue::None),
                &nobody
            ));
        }
        assert!(!check(
            &condition("email", Operator::Contains, text("x")),
            &nobody
        ));
        assert!(check(
            &condition("email", Operator::NotContains, text("x")),
            &nobody
        ));
        assert!(!check(
            &condition("custom.score", Operator::Lt, FilterValue::Number(100.0)),
            &nobody
        ));
        assert!(check(
            &condition("custom.score", Operator::Ne, FilterValue::Number(1.0)),
            &nobody
        ));
        assert!(!check(
            &condition("custom.interests", Operator::HasAll, list(&["music"])),
            &nobody
        ));
        assert!(check(
            &condition("custom.interests", Operator::HasNone, list(&["music"])),
            &nobody
        ));
        assert!(!check(
            &condition("custom.newsletter", Operator::Eq, FilterValue::Bool(false)),
            &nobody
        ));
        assert!(check(
            &condition("custom.newsletter", Operator::Ne, FilterValue::Bool(false)),
            &nobody
        ));
        assert!(check(
            &condition("last_inbound_at", Operator::NotWithinLast, days(3)),
            &nobody
        ));
        assert!(!check(
            &condition("last_inbound_at", Operator::Lt, FilterValue::Time(now())),
            &nobody
        ));
    }

    #[test]
    fn empty_strings_and_wrongly_typed_custom_values_count_as_not_set() {
        let mut odd = ContactView {
            first_name: String::new(),
            email: Some(String::new()),
            ..contact()
        };
        odd.custom_fields =
            json!({"score": "7", "plan": "", "interests": [], "newsletter": "yes", "birthday": 5})
                .as_object()
                .cloned()
                .expect("an object");
        assert!(check(
            &condition("first_name", Operator::IsNotSet, FilterValue::None),
            &odd
        ));
        assert!(
            check(&condition("name", Operator::IsSet, FilterValue::None), &odd),
            "last name is set"
        );
        assert!(check(
            &condition("email", Operator::IsNotSet, FilterValue::None),
            &odd
        ));
        for key in ["score", "plan", "interests", "newsletter", "birthday"] {
            let field = format!("custom.{key}");
            assert!(
                check(&condition(&field, Operator::IsNotSet, FilterValue::None), &odd),
                "{key}"
            );
        }
        assert!(!check(
            &condition("custom.score", Operator::Eq, FilterValue::Number(7.0)),
            &odd
        ));
        assert!(!check(
            &condition(
                "custom.birthday",
                Operator::Lt,
                FilterValue::Date(now().date_naive())
            ),
            &odd
        ));
    }

    #[test]
    fn tags_and_channels_match_elements_exactly() {
        let zoe = contact();
        assert!(check(&condition("tags", Operator::Eq, text("vip")), &zoe));
        assert!(!check(&condition("tags", Operator::Eq, text("VIP")), &zoe));
        assert!(check(&condition("tags", Operator::Ne, text("churned")), &zoe));
        assert!(check(
            &condition("tags", Operator::HasAny, list(&["churned", "lead"])),
            &zoe
        ));
        assert!(check(
            &condition("tags", Operator::HasAll, list(&["lead", "vip"])),
            &zoe
        ));
        assert!(!check(
            &condition("tags", Operator::HasAll, list(&["lead", "new"])),
            &zoe
        ));
        assert!(check(
            &condition("tags", Operator::HasNone, list(&["churned"])),
            &zoe
        ));
        assert!(check(&condition("channel", Operator::Eq, text("whatsapp")), &zoe));
        assert!(check(
            &condition("channel", Operator::IsSet, FilterValue::None),
            &zoe
        ));
        assert!(check(
            &condition("channel", Operator::IsNotSet, FilterValue::None),
            &ContactView::default()
        ));
        assert!(check(
            &condition("custom.interests", Operator::HasAny, list(&["music", "art"])),
            &zoe
        ));
        assert!(!check(
            &condition("custom.interests", Operator::HasAll, list(&["music", "art"])),
            &zoe
        ));
    }

    #[test]
    fn times_compare_against_now_at_microsecond_precision() {
        let zoe = contact();
        assert!(
            check(&condition("last_inbound_at", Operator::WithinLast, days(1)), &zoe),
            "boundary is inclusive"
        );
        assert!(!check(
            &condition("last_inbound_at", Operator::NotWithinLast, days(1)),
            &zoe
        ));
        assert!(check(
            &condition("created_at", Operator::NotWithinLast, days(1)),
            &zoe
        ));
        assert!(check(
            &condition("created_at", Operator::Gte, FilterValue::Time(at(48))),
            &zoe
        ));
        assert!(!check(
            &condition("created_at", Operator::Gt, FilterValue::Time(at(48))),
            &zoe
        ));
        let nanos_later = FilterValue::Time(at(48) + TimeDelta::nanoseconds(999));
        assert!(!check(
            &condition("created_at", Operator::Gt, nanos_later.clone()),
            &zoe
        ));
        assert!(check(&condition("created_at", Operator::Lte, nanos_later), &zoe));
    }

    #[test]
    fn datetime_and_date_custom_fields_compare_as_times_and_days() {
        let zoe = contact();
        let renewal = Utc
            .with_ymd_and_hms(2025, 6, 15, 10, 0, 0)
            .single()
            .expect("valid time");
        let half_second_earlier = FilterValue::Time(renewal - TimeDelta::milliseconds(500));
        let half_second_later = FilterValue::Time(renewal + TimeDelta::milliseconds(500));
        assert!(check(
            &condition("custom.renewal", Operator::Gte, FilterValue::Time(renewal)),
            &zoe
        ));
        assert!(!check(
            &condition("custom.renewal", Operator::Gt, FilterValue::Time(renewal)),
            &zoe
        ));
        assert!(check(
            &condition("custom.renewal", Operator::Gt, half_second_earlier),
            &zoe
        ));
        assert!(!check(
            &condition("custom.renewal", Operator::Gte, half_second_later.clone()),
            &zoe
        ));
        assert!(check(
            &condition("custom.renewal", Operator::Lt, half_second_later),
            &zoe
        ));
        assert!(check(
            &condition(
                "custom.renewal",
                Operator::WithinLast,
                FilterValue::Duration(Duration::from_secs(7200))
            ),
            &zoe
        ));
        assert!(!check(
            &condition(
                "custom.renewal",
                Operator::WithinLast,
                FilterValue::Duration(Duration::from_secs(7199))
            ),
            &zoe
        ));
        let june_tenth = NaiveDate::from_ymd_opt(1990, 6, 10).expect("valid date");
        assert!(check(
            &condition("custom.birthday", Operator::Lte, FilterValue::Date(june_tenth)),
            &zoe
        ));
        assert!(!check(
            &condition("custom.birthday", Operator::Lt, FilterValue::Date(june_tenth)),
            &zoe
        ));
        assert!(!check(
            &condition("custom.birthday", Operator::WithinLast, days(30)),
            &zoe
        ));
    }

    #[test]
    fn date_fields_are_within_last_from_the_utc_date_of_the_threshold() {
        let mut contact = contact();
        contact
            .custom_fields
            .insert("birthday".to_owned(), json!("2025-06-10"));
        let within = |duration: Duration| {
            let filter = condition(
                "custom.birthday",
                Operator::WithinLast,
                FilterValue::Duration(duration),
            );
            check(&filter, &contact)
        };
        let hours = |count: u64| Duration::from_secs(count * 3600);
        assert!(within(hours(5 * 24 + 12)), "threshold 2025-06-10T00:00");
        assert!(
            within(hours(4 * 24 + 13)),
            "threshold 2025-06-10T23:00 is on the same date"
        );
        assert!(!within(hours(4 * 24 + 12)), "threshold 2025-06-11T00:00");
    }

    #[test]
    fn numbers_and_booleans_compare_by_value() {
        let zoe = contact();
        assert!(check(
            &condition("custom.score", Operator::Eq, FilterValue::Number(7.5)),
            &zoe
        ));
        assert!(check(
            &condition("custom.score", Operator::Gt, FilterValue::Number(7.0)),
            &zoe
        ));
        assert!(!check(
            &condition("custom.score", Operator::Lt, FilterValue::Number(7.5)),
            &zoe
        ));
        assert!(check(
            &condition("custom.score", Operator::Lte, FilterValue::Number(7.5)),
            &zoe
        ));
        assert!(check(
            &condition("custom.newsletter", Operator::Eq, FilterValue::Bool(true)),
            &zoe
        ));
        assert!(check(
            &condition("bot_subscribed", Operator::Eq, FilterValue::Bool(true)),
            &zoe
        ));
        assert!(check(
            &condition("blocked", Operator::Ne, FilterValue::Bool(true)),
            &zoe
        ));
    }

    #[test]
    fn empty_groups_are_true_for_all_and_false_for_any() {
        assert!(check(&Filter::All(vec![]), &contact()));
        assert!(!check(&Filter::Any(vec![]), &contact()));
        let mixed = Filter::Any(vec![
            Filter::All(vec![]),
            condition("email", Operator::Eq, text("nobody@example.com")),
        ]);
        assert!(check(&mixed, &contact()));
    }

    #[test]
    fn sql_binds_every_input_and_numbers_placeholders_from_the_first() {
        let mut fields = fields();
        let hostile_key = "x'); DROP TABLE contacts; --".to_owned();
        fields.insert(hostile_key.clone(), FieldType::Text);
        let filter = Filter::All(vec![
            condition(
                &format!("custom.{hostile_key}"),
                Operator::Contains,
                text("' OR 1=1 --"),
            ),
            condition("tags", Operator::HasNone, list(&["vip"])),
        ]);
        let compiled = to_sql(&filter, &fields, "c", 3, now()).expect("a valid filter");
        assert!(
            !compiled.sql.contains("DROP") && !compiled.sql.contains("1=1"),
            "{}",
            compiled.sql
        );
        assert_eq!(
            compiled.params,
            vec![
                SqlParam::Text(hostile_key),
                SqlParam::Text("' OR 1=1 --".to_owned()),
                SqlParam::TextList(vec!["vip".to_owned()]),
            ]
        );
        assert!(
            compiled.sql.contains("c.custom_fields -> $3::text"),
            "{}",
            compiled.sql
        );
        assert!(compiled.sql.contains("lower($4::text)"), "{}", compiled.sql);
        assert!(
            compiled
                .sql
                .contains("(NOT COALESCE(c.tags && $5::text[], FALSE))"),
            "{}",
            compiled.sql
        );
        assert_eq!(compiled.param_refs().len(), 3);
    }

    #[test]
    fn sql_refuses_a_bad_alias_or_placeholder_start() {
        let filter = Filter::All(vec![]);
        assert_eq!(
            to_sql(&filter, &fields(), "c; --", 1, now()),
            Err(FilterError::InvalidAlias {
                alias: "c; --".to_owned()
            })
        );
        assert_eq!(
            to_sql(&filter, &fields(), "c", 0, now()),
            Err(FilterError::InvalidFirstParam)
        );
        assert_eq!(
            to_sql(&filter, &fields(), "c", 1, now()).map(|compiled| compiled.sql),
            Ok("TRUE".to_owned())
        );
    }
}
