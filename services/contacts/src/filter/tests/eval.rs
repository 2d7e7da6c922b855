//! In-memory evaluation: the semantics of each operator on set and not-set values.

use std::time::Duration;

use chrono::{NaiveDate, TimeDelta, TimeZone, Utc};
use serde_json::json;

use super::{at, check, condition, contact, days, list, now, text};
use crate::filter::{ContactView, Filter, FilterValue, Operator};

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
