//! The contacts filter language (services/contacts `filter`): a JSON filter parsed into a
//! `Filter` (nested `all` / `any` groups, conditions, field names, operators and typed
//! values), validated against custom field definitions of every type, compiled to SQL and
//! evaluated in memory against two contacts. A parsed filter must round-trip through its JSON
//! form unchanged (saved views store it that way), a filter that validates must compile, and
//! the SQL text must not carry the filter's own text (it is bound as parameters).
//! The input is the filter's JSON.

#![no_main]

use std::collections::HashMap;

use chrono::{DateTime, TimeZone, Utc};
use libfuzzer_sys::fuzz_target;
use serde_json::json;
use switchboard_contacts::filter::{ContactView, FieldType, Filter, matches, to_sql, validate};

fn custom_fields() -> HashMap<String, FieldType> {
    [
        ("note", FieldType::Text),
        ("score", FieldType::Number),
        ("birthday", FieldType::Date),
        ("renewal", FieldType::Datetime),
        ("vip", FieldType::Boolean),
        ("plan", FieldType::SingleSelect),
        ("interests", FieldType::MultiSelect),
        ("work_email", FieldType::Email),
        ("mobile", FieldType::Phone),
        ("site", FieldType::Url),
    ]
    .into_iter()
    .map(|(key, field_type)| (key.to_owned(), field_type))
    .collect()
}

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(seconds, 0).single().unwrap_or_default()
}

fn contacts() -> [ContactView; 2] {
    let custom = json!({
        "note": "Prefers e-mail", "score": 42.5, "birthday": "1990-02-28",
        "renewal": "2025-07-01T00:00:00Z", "vip": true, "plan": "pro",
        "interests": ["shoes", "bags"], "work_email": "zoe@acme.test",
        "mobile": "+14155550123", "site": "https://acme.test",
    });
    let full = ContactView {
        first_name: "Zoë".to_owned(),
        last_name: "Adler".to_owned(),
        display_name: "Zoë A.".to_owned(),
        email: Some("zoe@example.com".to_owned()),
        phone: Some("+14155550123".to_owned()),
        username: Some("zoe".to_owned()),
        locale: Some("de-DE".to_owned()),
        last_channel: Some("whatsapp".to_owned()),
        assignee_id: Some("ag_1".to_owned()),
        custom_fields: custom.as_object().cloned().unwrap_or_default(),
        tags: vec!["vip".to_owned(), "lead".to_owned()],
        channels: vec!["whatsapp".to_owned(), "email".to_owned()],
        blocked: false,
        bot_subscribed: true,
        created_at: at(1_700_000_000),
        last_inbound_at: Some(at(1_749_900_000)),
    };
    [ContactView::default(), full]
}

/// The texts and custom field keys of a filter (what must never be written into SQL).
fn texts(filter: &serde_json::Value, found: &mut Vec<String>) {
    match filter {
        serde_json::Value::String(text) => found.push(text.clone()),
        serde_json::Value::Array(items) => items.iter().for_each(|item| texts(item, found)),
        serde_json::Value::Object(object) => object.values().for_each(|value| texts(value, found)),
        _ => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(filter) = serde_json::from_slice::<Filter>(data) else {
        return;
    };
    let json = serde_json::to_value(&filter)
        .unwrap_or_else(|error| panic!("a parsed filter does not serialize: {error}"));
    let reparsed: Filter = serde_json::from_value(json.clone())
        .unwrap_or_else(|error| panic!("the JSON of a parsed filter does not parse: {error}; {json}"));
    assert_eq!(
        reparsed, filter,
        "the filter changed through its JSON form {json}"
    );

    let fields = custom_fields();
    let now = at(1_749_988_800);
    let validated = validate(&filter, &fields);
    match to_sql(&filter, &fields, "c", 1, now) {
        Ok(sql) => {
            assert!(validated.is_ok(), "compiled a filter that does not validate");
            // Every text of the filter travels as a bound parameter: a text with a quote,
            // semicolon or non-ASCII character can never appear in the SQL text.
            let mut values = Vec::new();
            texts(&json, &mut values);
            for value in values {
                if value.contains(['\'', ';', '"', '\\']) || !value.is_ascii() {
                    assert!(
                        !sql.sql.contains(&value),
                        "{value:?} written into SQL: {}",
                        sql.sql
                    );
                }
            }
        }
        Err(error) => assert!(
            validated.is_err(),
            "a filter that validates does not compile: {error}"
        ),
    }
    for contact in contacts() {
        let _ = matches(&filter, &contact, &fields, now);
    }
});
