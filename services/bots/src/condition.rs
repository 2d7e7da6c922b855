//! The conditions of a `split` case (`when`): one test, or `all` / `any` / `not` of tests.
//!
//! - `{"value": "<path>", "<operator>": <operand>}` tests a value of the turn (the same paths as
//!   templates: `contact.fields.plan`, `flow.count`, `trigger.message.text`, …). Operators:
//!   `equals`, `not_equals`, `contains`, `starts_with`, `one_of` (a list), `matches` (a regular
//!   expression), `greater_than`, `less_than`, `at_least`, `at_most`, `is_empty` (true/false).
//!   Two numbers compare as numbers, two texts ignoring case and accents (so ISO dates and
//!   times compare in time order); a number and a text are neither equal nor ordered.
//! - `{"has_tag": "vip"}`, `{"channel": "whatsapp"}` (or a list), `{"business_hours": "open"}`
//!   (or `"closed"`).

use regex::Regex;
use serde_json::Value;

use switchboard_domain::normalize::CountryId;

use crate::answer::{DateOrder, folded};
use crate::template::{Values, parse_path};

/// What a condition can ask about the turn besides its values.
pub trait Facts: Values {
    /// Whether the contact carries `tag`.
    fn has_tag(&self, tag: &str) -> bool;
    /// The conversation's channel (`whatsapp`, `telegram`, …).
    fn channel(&self) -> &str;
    /// Whether the workspace's business hours are open now.
    fn business_hours_open(&self) -> bool;
    /// The workspace's country, for phone numbers answered without `+` (none: only
    /// international numbers are answers).
    fn default_country(&self) -> Option<CountryId> {
        None
    }
    /// How the workspace reads dates written with slashes or dots.
    fn date_order(&self) -> DateOrder {
        DateOrder::DayFirst
    }
}

/// A parsed condition.
#[derive(Debug, Clone)]
pub enum Condition {
    /// Every one holds.
    All(Vec<Condition>),
    /// At least one holds.
    Any(Vec<Condition>),
    /// It does not hold.
    Not(Box<Condition>),
    /// A value of the turn compared by an operator.
    Compare {
        /// The path, split at dots.
        path: Vec<String>,
        /// How it is compared.
        operator: Operator,
    },
    /// The contact carries this tag.
    HasTag(String),
    /// The conversation is on one of these channels.
    Channel(Vec<String>),
    /// Business hours are open (true) or closed (false).
    BusinessHours(bool),
}

/// How a value is compared.
#[derive(Debug, Clone)]
pub enum Operator {
    /// The same (numbers by value, text folded).
    Equals(String),
    /// Not the same.
    NotEquals(String),
    /// The folded value contains the folded operand.
    Contains(String),
    /// The folded value starts with the folded operand.
    StartsWith(String),
    /// The same as one of these.
    OneOf(Vec<String>),
    /// The folded value matches the pattern.
    Matches(Regex),
    /// Above the operand.
    GreaterThan(String),
    /// Below the operand.
    LessThan(String),
    /// At or above the operand.
    AtLeast(String),
    /// At or below the operand.
    AtMost(String),
    /// Missing or empty (true), or present (false).
    IsEmpty(bool),
}

/// How deep `all`, `any` and `not` may nest.
pub const MAX_DEPTH: usize = 16;

const OPERATORS: &str = "equals, not_equals, contains, starts_with, one_of, matches, greater_than, less_than, at_least, at_most, is_empty";

impl Condition {
    /// Parses `when`; the error says what is wrong and where inside it.
    pub fn parse(when: &Value) -> Result<Self, String> {
        Self::parse_at(when, 0)
    }

    fn parse_at(when: &Value, depth: usize) -> Result<Self, String> {
        if depth > MAX_DEPTH {
            return Err(format!("conditions nest at most {MAX_DEPTH} deep"));
        }
        let object = when.as_object().ok_or("a condition is an object")?;
        if let Some(items) = object.get("all").or_else(|| object.get("any")) {
            let list = items
                .as_array()
                .filter(|list| !list.is_empty())
                .ok_or("all and any take a list of conditions")?;
            let parsed = list
                .iter()
                .enumerate()
                .map(|(index, item)| {
                    Self::parse_at(item, depth + 1).map_err(|error| format!("[{index}]: {error}"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            only_keys(object, &["all", "any"], 1)?;
            return Ok(if object.contains_key("all") {
                Self::All(parsed)
            } else {
                Self::Any(parsed)
            });
        }
        if let Some(inner) = object.get("not") {
            only_keys(object, &["not"], 1)?;
            return Ok(Self::Not(Box::new(
                Self::parse_at(inner, depth + 1).map_err(|error| format!("not: {error}"))?,
            )));
        }
        if let Some(tag) = object.get("has_tag") {
            only_keys(object, &["has_tag"], 1)?;
            return tag
                .as_str()
                .map(|tag| Self::HasTag(tag.to_owned()))
                .ok_or_else(|| "has_tag takes a tag name".to_owned());
        }
        if let Some(channel) = object.get("channel") {
            only_keys(object, &["channel"], 1)?;
            return Ok(Self::Channel(
                texts(channel).ok_or("channel takes a channel name or a list of them")?,
            ));
        }
        if let Some(hours) = object.get("business_hours") {
            only_keys(object, &["business_hours"], 1)?;
            return match hours.as_str() {
                Some("open") => Ok(Self::BusinessHours(true)),
                Some("closed") => Ok(Self::BusinessHours(false)),
                _ => Err("business_hours is \"open\" or \"closed\"".to_owned()),
            };
        }
        let path_text = object.get("value").and_then(Value::as_str).ok_or(
            "a condition is all, any, not, has_tag, channel, business_hours, or a value with an operator",
        )?;
        let path = parse_path(path_text).map_err(|_| {
            format!("value: {path_text:?} is not a path starting with contact, flow, trigger or states")
        })?;
        let mut operators = object.iter().filter(|(key, _)| key.as_str() != "value");
        let (Some((name, operand)), None) = (operators.next(), operators.next()) else {
            return Err(format!(
                "a value condition takes exactly one operator: {OPERATORS}"
            ));
        };
        let text = || {
            operand
                .as_str()
                .map(str::to_owned)
                .or_else(|| operand.as_number().map(ToString::to_string))
                .ok_or_else(|| format!("{name} takes a text or a number"))
        };
        let operator = match name.as_str() {
            "equals" => Operator::Equals(text()?),
            "not_equals" => Operator::NotEquals(text()?),
            "contains" => Operator::Contains(text()?),
            "starts_with" => Operator::StartsWith(text()?),
            "one_of" => Operator::OneOf(texts(operand).ok_or("one_of takes a list of texts")?),
            "matches" => Operator::Matches(
                crate::trigger::compile_folded(&text()?).map_err(|error| format!("matches: {error}"))?,
            ),
            "greater_than" => Operator::GreaterThan(text()?),
            "less_than" => Operator::LessThan(text()?),
            "at_least" => Operator::AtLeast(text()?),
            "at_most" => Operator::AtMost(text()?),
            "is_empty" => Operator::IsEmpty(operand.as_bool().ok_or("is_empty takes true or false")?),
            other => {
                return Err(format!(
                    "{other:?} is not an operator; the operators are {OPERATORS}"
                ));
            }
        };
        Ok(Self::Compare { path, operator })
    }

    /// Whether the condition holds for `facts`.
    pub fn holds(&self, facts: &impl Facts) -> bool {
        match self {
            Self::All(conditions) => conditions.iter().all(|condition| condition.holds(facts)),
            Self::Any(conditions) => conditions.iter().any(|condition| condition.holds(facts)),
            Self::Not(condition) => !condition.holds(facts),
            Self::HasTag(tag) => facts.has_tag(tag),
            Self::Channel(channels) => channels.iter().any(|channel| channel == facts.channel()),
            Self::BusinessHours(open) => facts.business_hours_open() == *open,
            Self::Compare { path, operator } => {
                let value = facts.value(path).filter(|value| !value.is_empty());
                operator.holds(value.as_deref())
            }
        }
    }
}

impl Operator {
    fn holds(&self, value: Option<&str>) -> bool {
        if let Self::IsEmpty(empty) = self {
            return value.is_none() == *empty;
        }
        let Some(value) = value else {
            // A missing value equals nothing, so only "not equal" holds.
            return matches!(self, Self::NotEquals(_));
        };
        use std::cmp::Ordering::{Equal, Greater, Less};
        match self {
            Self::Equals(operand) => compare(value, operand) == Some(Equal),
            Self::NotEquals(operand) => compare(value, operand) != Some(Equal),
            Self::Contains(operand) => folded(value).contains(&folded(operand)),
            Self::StartsWith(operand) => folded(value).starts_with(&folded(operand)),
            Self::OneOf(operands) => operands
                .iter()
                .any(|operand| compare(value, operand) == Some(Equal)),
            Self::Matches(pattern) => pattern.is_match(&folded(value)),
            Self::GreaterThan(operand) => compare(value, operand) == Some(Greater),
            Self::LessThan(operand) => compare(value, operand) == Some(Less),
            Self::AtLeast(operand) => matches!(compare(value, operand), Some(Greater | Equal)),
            Self::AtMost(operand) => matches!(compare(value, operand), Some(Less | Equal)),
            Self::IsEmpty(_) => false,
        }
    }
}

/// Two numbers by value, two texts folded; a number and a text do not compare (`None`).
fn compare(value: &str, operand: &str) -> Option<std::cmp::Ordering> {
    match (decimal(value), decimal(operand)) {
        (Some(left), Some(right)) => left.partial_cmp(&right),
        (None, None) => Some(folded(value).cmp(&folded(operand))),
        _ => None,
    }
}

/// `text` as a number when it is a plain decimal (`-12`, `3.5`): not `inf`, `nan` or `1e9`.
fn decimal(text: &str) -> Option<f64> {
    let text = text.trim();
    let digits = text.strip_prefix('-').unwrap_or(text);
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, "0"));
    let plain = |part: &str| !part.is_empty() && part.bytes().all(|byte| byte.is_ascii_digit());
    (plain(whole) && plain(fraction))
        .then(|| text.parse().ok())
        .flatten()
}

fn only_keys(object: &serde_json::Map<String, Value>, allowed: &[&str], count: usize) -> Result<(), String> {
    match object.keys().find(|key| !allowed.contains(&key.as_str())) {
        Some(extra) => Err(format!("{extra:?} cannot stand beside {}", allowed.join(" or "))),
        None if object.len() > count => Err(format!("only one of {} per condition", allowed.join(", "))),
        None => Ok(()),
    }
}

/// A text or a list of texts.
fn texts(value: &Value) -> Option<Vec<String>> {
    match value {
        Value::String(text) => Some(vec![text.clone()]),
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(|item| item.as_str().map(str::to_owned))
            .collect(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    struct Turn {
        values: Value,
        tags: Vec<&'static str>,
        open: bool,
    }

    impl Values for Turn {
        fn value(&self, path: &[String]) -> Option<String> {
            self.values.value(path)
        }
    }

    impl Facts for Turn {
        fn has_tag(&self, tag: &str) -> bool {
            self.tags.contains(&tag)
        }
        fn channel(&self) -> &str {
            "whatsapp"
        }
        fn business_hours_open(&self) -> bool {
            self.open
        }
    }

    fn turn() -> Turn {
        Turn {
            values: json!({
                "contact": {"fields": {"plan": "Gold", "visits": "12", "birthday": "1990-05-17"}},
                "flow": {"code": "AB123456", "word": "infinity", "zero": "-0"},
                "trigger": {"message": {"text": "Quero saber o PREÇO"}}
            }),
            tags: vec!["vip"],
            open: false,
        }
    }

    fn holds(when: Value) -> bool {
        Condition::parse(&when).expect("a valid condition").holds(&turn())
    }

    #[test]
    fn value_operators_compare_numbers_as_numbers_and_text_folded() {
        assert!(holds(json!({"value": "contact.fields.plan", "equals": "gold"})));
        assert!(holds(
            json!({"value": "contact.fields.plan", "one_of": ["silver", "GOLD"]})
        ));
        assert!(
            holds(json!({"value": "contact.fields.visits", "greater_than": 9})),
            "12 > 9 as numbers"
        );
        assert!(holds(json!({"value": "contact.fields.visits", "at_most": "12"})));
        assert!(!holds(json!({"value": "contact.fields.visits", "less_than": 12})));
        assert!(holds(
            json!({"value": "contact.fields.birthday", "less_than": "2000-01-01"})
        ));
        assert!(holds(
            json!({"value": "trigger.message.text", "contains": "preco"})
        ));
        assert!(holds(
            json!({"value": "trigger.message.text", "starts_with": "QUERO"})
        ));
        assert!(holds(json!({"value": "flow.code", "matches": "^ab\\d{6}$"})));
        assert!(holds(json!({"value": "flow.missing", "is_empty": true})));
        assert!(holds(json!({"value": "flow.code", "is_empty": false})));
        assert!(
            !holds(json!({"value": "flow.missing", "equals": ""})),
            "a missing value equals nothing"
        );
        assert!(holds(json!({"value": "flow.missing", "not_equals": "x"})));
        assert!(
            !holds(json!({"value": "flow.word", "greater_than": 100})),
            "a text is not above a number"
        );
        assert!(
            !holds(json!({"value": "flow.word", "at_most": 100})),
            "nor below it"
        );
        assert!(holds(json!({"value": "flow.zero", "equals": 0})), "-0 equals 0");
    }

    #[test]
    fn tags_channel_business_hours_and_combinations() {
        assert!(holds(json!({"has_tag": "vip"})));
        assert!(!holds(json!({"has_tag": "churned"})));
        assert!(holds(json!({"channel": ["telegram", "whatsapp"]})));
        assert!(holds(json!({"business_hours": "closed"})));
        assert!(holds(
            json!({"all": [{"has_tag": "vip"}, {"not": {"business_hours": "open"}}]})
        ));
        assert!(holds(
            json!({"any": [{"has_tag": "churned"}, {"channel": "whatsapp"}]})
        ));
        assert!(!holds(json!({"all": [{"has_tag": "vip"}, {"channel": "email"}]})));
    }

    #[test]
    fn bad_conditions_say_what_is_wrong_and_where() {
        let cases = [
            (json!("vip"), "a condition is an object"),
            (
                json!({"value": "plan", "equals": "x"}),
                "value: \"plan\" is not a path",
            ),
            (
                json!({"value": "flow.x"}),
                "a value condition takes exactly one operator",
            ),
            (
                json!({"value": "flow.x", "equals": 1, "contains": "y"}),
                "a value condition takes exactly one operator",
            ),
            (
                json!({"value": "flow.x", "bigger": 1}),
                "\"bigger\" is not an operator",
            ),
            (
                json!({"value": "flow.x", "matches": "(oops"}),
                "matches: \"(oops\" is not a regular expression",
            ),
            (
                json!({"value": "flow.x", "is_empty": "yes"}),
                "is_empty takes true or false",
            ),
            (json!({"all": []}), "all and any take a list of conditions"),
            (
                json!({"all": [{"has_tag": "a"}, {"has_tag": 1}]}),
                "[1]: has_tag takes a tag name",
            ),
            (
                json!({"not": {"channel": []}}),
                "not: channel takes a channel name or a list of them",
            ),
            (
                json!({"has_tag": "a", "channel": "x"}),
                "\"channel\" cannot stand beside has_tag",
            ),
            (
                json!({"business_hours": "lunch"}),
                "business_hours is \"open\" or \"closed\"",
            ),
            (
                (0..20).fold(json!({"has_tag": "a"}), |inner, _| json!({"not": inner})),
                "not: not: not: not: not: not: not: not: not: not: not: not: not: not: not: not: not: conditions nest at most 16 deep",
            ),
        ];
        for (when, expected) in cases {
            let error = Condition::parse(&when).unwrap_err();
            assert!(error.starts_with(expected), "{when}: {error}");
        }
    }
}
