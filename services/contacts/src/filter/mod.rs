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
//!
//! # Layout
//!
//! The syntax tree is in `ast`, its JSON form in `json`. `profile` says how each field is stored
//! and which operators apply; `predicate` is the shared resolution step. `sql` compiles, `eval`
//! evaluates in memory.

mod ast;
mod eval;
mod json;
mod predicate;
mod profile;
mod sql;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use predicate::resolve;

pub use ast::{Condition, FieldLabel, FieldRef, Filter, FilterValue, Operator, StandardField};
pub use eval::{ContactView, matches};
pub use sql::{SqlFilter, SqlParam, to_sql};

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

/// Checks a filter against the workspace's custom field definitions and the size limits.
pub fn validate(filter: &Filter, fields: &HashMap<String, FieldType>) -> Result<(), FilterError> {
    let mut counts = NodeCounts::default();
    validate_node(filter, fields, 0, &mut counts)
}

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
