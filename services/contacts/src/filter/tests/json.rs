//! The JSON form of filters and values.

use std::time::Duration;

use chrono::TimeDelta;
use serde_json::json;

use super::{at, condition, days, list, now, text};
use crate::filter::{Filter, FilterValue, Operator};

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
    assert!(refused(r#"{"field":"nickname","op":"eq","value":"x"}"#).contains("unknown field \"nickname\""));
    assert!(refused(r#"{"field":"custom.","op":"eq","value":"x"}"#).contains("unknown field"));
    assert!(refused(r#"{"field":"email","op":"like","value":"x"}"#).contains("unknown variant `like`"));
    assert!(refused(r#"{"field":"email","value":"x"}"#).contains("needs an \"op\""));
    assert!(refused(r#"{"all":[],"field":"email","op":"eq"}"#).contains("a filter is"));
    assert!(refused(r#"{"all":[],"nope":1}"#).contains("unknown field `nope`"));
    assert!(refused(r#"{"field":"tags","op":"has_any","value":["a",1]}"#).contains("texts only"));
    assert!(refused(r#"{"field":"created_at","op":"gt","value":{"time":"yesterday"}}"#).contains("RFC 3339"));
    assert!(refused(r#"{"field":"created_at","op":"gt","value":{"when":1}}"#).contains("value object"));
}
