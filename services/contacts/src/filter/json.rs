//! The JSON form of filters and values: serde implementations that need more than a derive.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde::de::Error as _;
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use super::{Condition, FieldRef, Filter, FilterValue, Operator};

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
