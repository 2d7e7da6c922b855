//! Compilation of a filter to a parameterized PostgreSQL `WHERE` fragment.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use tokio_postgres::types::ToSql;

use super::predicate::{
    ArrayCheck, FlagCheck, NumberCheck, Predicate, Test, TextCheck, TimeCheck, resolve, stored_date_text,
    stored_datetime_comparison,
};
use super::profile::{ArraySource, FlagSource, InstantSource, TextColumn, TextSource};
use super::{FieldType, Filter, FilterError, validate};

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

/// The decimal text of a number, for SQL `numeric` (shortest form that reads back the same).
fn number_text(number: f64) -> String {
    format!("{number}")
}
