//! Compilation to SQL: bound parameters, placeholder numbering and argument checks.

use super::{condition, fields, list, now, text};
use crate::filter::{FieldType, Filter, FilterError, Operator, SqlParam, to_sql};

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
