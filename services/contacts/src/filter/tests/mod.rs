//! Unit tests of the filter language, by part, with the fixtures they share.

mod eval;
mod json;
mod sql;
mod validate;

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use serde_json::json;

use crate::filter::{Condition, ContactView, FieldType, Filter, FilterValue, Operator, matches, validate};

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
