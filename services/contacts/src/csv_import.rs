//! Reading an import CSV: the header names the columns, each data row becomes the proto
//! contact fields it sets (empty cells set nothing), typed per the workspace's fields.

use std::collections::HashMap;

use chrono::DateTime;
use switchboard_proto::contacts::v1 as proto;
use switchboard_proto::contacts::v1::field_value::Value as ProtoValue;

use crate::editable::STANDARD_PATHS;
use crate::fields::{FieldDefinition, FieldType};
use crate::model::timestamp;

/// Most data rows one import takes.
pub(crate) const MAX_ROWS: usize = 100_000;

/// A column of the import file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Column {
    /// A standard writable field (mask path).
    Standard(&'static str),
    /// `custom.<key>`.
    Custom(String),
}

/// The fields one row sets: mask paths and the contact carrying their values.
#[derive(Debug, Default)]
pub(crate) struct RowValues {
    pub(crate) paths: Vec<String>,
    pub(crate) contact: proto::Contact,
}

/// Reads the header; unknown columns refuse the whole file with a message naming them.
pub(crate) fn columns(
    header: &csv::StringRecord,
    fields: &HashMap<String, FieldDefinition>,
) -> Result<Vec<Column>, String> {
    let mut columns = Vec::new();
    let mut unknown = Vec::new();
    for name in header {
        let name = name.trim().trim_start_matches('\u{feff}');
        if let Some(path) = STANDARD_PATHS.iter().find(|path| **path == name) {
            columns.push(Column::Standard(path));
        } else if let Some(key) = name.strip_prefix("custom.")
            && fields.contains_key(key)
        {
            columns.push(Column::Custom(key.to_owned()));
        } else {
            unknown.push(name.to_owned());
        }
    }
    if !unknown.is_empty() {
        return Err(format!(
            "unknown columns {unknown:?}: use {}, or custom.<key> of a defined field",
            STANDARD_PATHS.join(", ")
        ));
    }
    for (index, column) in columns.iter().enumerate() {
        if columns[..index].contains(column) {
            return Err(format!("column {column:?} appears twice"));
        }
    }
    Ok(columns)
}

/// Splits a list cell (`a;b;c`).
fn list(cell: &str) -> Vec<String> {
    cell.split(';')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The typed value of a custom field cell.
fn custom_value(definition: &FieldDefinition, cell: &str) -> Result<proto::FieldValue, String> {
    let key = &definition.key;
    let value = match definition.field_type {
        FieldType::Number => ProtoValue::Number(
            cell.parse::<f64>()
                .map_err(|_| format!("custom.{key}: {cell:?} is not a number"))?,
        ),
        FieldType::Boolean => ProtoValue::Boolean(match cell.to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" => true,
            "false" | "no" | "0" => false,
            _ => return Err(format!("custom.{key}: {cell:?} is not true/false")),
        }),
        FieldType::Date => ProtoValue::Date(cell.to_owned()),
        FieldType::Datetime => ProtoValue::Datetime(timestamp(
            DateTime::parse_from_rfc3339(cell)
                .map_err(|_| format!("custom.{key}: {cell:?} is not an RFC 3339 time"))?
                .to_utc(),
        )),
        FieldType::MultiSelect => ProtoValue::Options(proto::StringList { values: list(cell) }),
        FieldType::Text | FieldType::SingleSelect | FieldType::Email | FieldType::Phone | FieldType::Url => {
            ProtoValue::Text(cell.to_owned())
        }
    };
    Ok(proto::FieldValue { value: Some(value) })
}

/// The fields one data row sets.
pub(crate) fn row_values(
    columns: &[Column],
    record: &csv::StringRecord,
    fields: &HashMap<String, FieldDefinition>,
) -> Result<RowValues, String> {
    if record.len() != columns.len() {
        return Err(format!(
            "{} cells, the header has {}",
            record.len(),
            columns.len()
        ));
    }
    let mut values = RowValues::default();
    for (column, cell) in columns.iter().zip(record) {
        let cell = cell.trim();
        if cell.is_empty() {
            continue;
        }
        match column {
            Column::Standard(path) => {
                let contact = &mut values.contact;
                match *path {
                    "first_name" => contact.first_name = cell.to_owned(),
                    "last_name" => contact.last_name = cell.to_owned(),
                    "display_name" => contact.display_name = cell.to_owned(),
                    "email" => contact.email = cell.to_owned(),
                    "phone" => contact.phone = cell.to_owned(),
                    "username" => contact.username = cell.to_owned(),
                    "avatar_url" => contact.avatar_url = cell.to_owned(),
                    "locale" => contact.locale = cell.to_owned(),
                    _ => contact.tags = list(cell),
                }
                values.paths.push((*path).to_owned());
            }
            Column::Custom(key) => {
                let Some(definition) = fields.get(key) else {
                    continue;
                };
                values
                    .contact
                    .custom_fields
                    .insert(key.clone(), custom_value(definition, cell)?);
                values.paths.push(format!("custom_fields.{key}"));
            }
        }
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> HashMap<String, FieldDefinition> {
        [(
            "score".to_owned(),
            FieldDefinition {
                key: "score".to_owned(),
                label: "Score".to_owned(),
                field_type: FieldType::Number,
                options: Vec::new(),
            },
        )]
        .into()
    }

    #[test]
    fn headers_are_checked_and_rows_typed() {
        let fields = fields();
        let header = csv::StringRecord::from(vec!["first_name", "email", "tags", "custom.score"]);
        let columns = columns(&header, &fields).unwrap();
        let row = row_values(
            &columns,
            &csv::StringRecord::from(vec!["Ada", "", "vip; lead", "4.5"]),
            &fields,
        )
        .unwrap();
        assert_eq!(row.paths, vec!["first_name", "tags", "custom_fields.score"]);
        assert_eq!(row.contact.tags, vec!["vip", "lead"]);
        let bad = row_values(
            &columns,
            &csv::StringRecord::from(vec!["Ada", "", "", "lots"]),
            &fields,
        );
        assert!(bad.unwrap_err().contains("custom.score"));
        let error = columns_error(&["name", "custom.nope"]);
        assert!(error.contains("name") && error.contains("custom.nope"), "{error}");
    }

    fn columns_error(names: &[&str]) -> String {
        columns(&csv::StringRecord::from(names.to_vec()), &fields()).unwrap_err()
    }
}
