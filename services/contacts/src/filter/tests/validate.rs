//! Validation: field, operator and value checks, and the size limits.

use chrono::NaiveDate;

use super::{condition, days, error, fields, list, now, text};
use crate::filter::profile::profile;
use crate::filter::{
    Condition, FieldRef, Filter, FilterError, FilterValue, MAX_CONDITIONS, MAX_GROUP_DEPTH, MAX_GROUPS,
    Operator, StandardField, validate,
};

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
    assert!(error(&condition("email", Operator::In, list(&[]))).contains("needs 1 to 100 non-empty texts"));
    assert!(error(&condition("tags", Operator::HasAll, list(&["vip", ""]))).contains("with 1 empty"));
    assert!(error(&condition("email", Operator::IsSet, text("x"))).contains("needs no value"));
    assert!(error(&condition("created_at", Operator::IsSet, FilterValue::None)).contains("does not apply"));
    assert!(error(&condition("blocked", Operator::IsNotSet, FilterValue::None)).contains("does not apply"));
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
    assert!(error(&condition("last_inbound_at", Operator::WithinLast, days(40_000))).contains("36600 days"));
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
