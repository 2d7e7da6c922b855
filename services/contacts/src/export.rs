//! CSV export: the chosen columns of every matching contact, read page by page and sent as
//! chunks through a bounded channel, so a large export never sits in memory whole.

use std::collections::HashMap;

use chrono::Utc;
use switchboard_domain::WorkspaceId;
use switchboard_postgres::Pool;
use switchboard_proto::contacts::v1 as proto;
use tokio::sync::mpsc;

use crate::filter::{FieldType, Filter};
use crate::model::Contact;
use crate::{ContactsError, store};

/// Contacts per page (and per chunk).
const PAGE: i64 = 1_000;

/// The standard export columns, in their default order.
pub(crate) const STANDARD_COLUMNS: [&str; 18] = [
    "id",
    "first_name",
    "last_name",
    "display_name",
    "email",
    "phone",
    "username",
    "avatar_url",
    "locale",
    "tags",
    "channels",
    "blocked",
    "bot_subscribed",
    "sms_opted_out",
    "assignee_id",
    "last_inbound_at",
    "last_channel",
    "created_at",
];

/// Checks the requested columns (empty = all standard columns, then every custom field).
pub(crate) fn columns(
    requested: &[String],
    types: &HashMap<String, FieldType>,
) -> Result<Vec<String>, ContactsError> {
    if requested.is_empty() {
        let mut custom: Vec<String> = types.keys().map(|key| format!("custom.{key}")).collect();
        custom.sort();
        return Ok(STANDARD_COLUMNS
            .iter()
            .map(|column| (*column).to_owned())
            .chain(custom)
            .collect());
    }
    for column in requested {
        let known = STANDARD_COLUMNS.contains(&column.as_str())
            || column
                .strip_prefix("custom.")
                .is_some_and(|key| types.contains_key(key));
        if !known {
            return Err(ContactsError::invalid(format!(
                "columns: {column:?} is not a column; use {} or custom.<key> of a defined field",
                STANDARD_COLUMNS.join(", ")
            )));
        }
    }
    Ok(requested.to_vec())
}

fn cell(contact: &Contact, column: &str) -> String {
    let optional = |value: &Option<String>| value.clone().unwrap_or_default();
    match column {
        "id" => contact.id.to_string(),
        "first_name" => contact.first_name.clone(),
        "last_name" => contact.last_name.clone(),
        "display_name" => contact.display_name.clone(),
        "email" => optional(&contact.email),
        "phone" => optional(&contact.phone),
        "username" => optional(&contact.username),
        "avatar_url" => optional(&contact.avatar_url),
        "locale" => optional(&contact.locale),
        "tags" => contact.tags.join(";"),
        "channels" => contact.channels.join(";"),
        "blocked" => contact.blocked.to_string(),
        "bot_subscribed" => contact.bot_subscribed.to_string(),
        "sms_opted_out" => contact.sms_opted_out.to_string(),
        "assignee_id" => optional(&contact.assignee_id),
        "last_inbound_at" => contact
            .last_inbound_at
            .map(|at| at.to_rfc3339())
            .unwrap_or_default(),
        "last_channel" => optional(&contact.last_channel),
        "created_at" => contact.created_at.to_rfc3339(),
        other => {
            let key = other.strip_prefix("custom.").unwrap_or(other);
            match contact.custom_fields.get(key) {
                None | Some(serde_json::Value::Null) => String::new(),
                Some(serde_json::Value::String(text)) => text.clone(),
                Some(serde_json::Value::Array(items)) => items
                    .iter()
                    .filter_map(serde_json::Value::as_str)
                    .collect::<Vec<_>>()
                    .join(";"),
                Some(serde_json::Value::Number(number)) => match number.as_f64() {
                    // 42, not 42.0: spreadsheets and re-imports read both, people prefer this.
                    Some(float) if float.fract() == 0.0 && float.abs() < 1e15 => format!("{float:.0}"),
                    _ => number.to_string(),
                },
                Some(value) => value.to_string(),
            }
        }
    }
}

fn csv_bytes(rows: impl IntoIterator<Item = Vec<String>>) -> Result<Vec<u8>, ContactsError> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    for row in rows {
        writer
            .write_record(&row)
            .map_err(|error| ContactsError::Corrupt(format!("CSV: {error}")))?;
    }
    writer
        .into_inner()
        .map_err(|error| ContactsError::Corrupt(format!("CSV: {error}")))
}

/// What to export.
pub(crate) struct Export {
    pub(crate) pool: Pool,
    pub(crate) workspace: WorkspaceId,
    pub(crate) search: String,
    pub(crate) filter: Option<Filter>,
    pub(crate) types: HashMap<String, FieldType>,
    pub(crate) columns: Vec<String>,
}

impl Export {
    /// Sends the CSV in chunks until done, the receiver goes away, or an error (sent last).
    pub(crate) async fn run(
        self,
        chunks: mpsc::Sender<Result<proto::ExportContactsResponse, tonic::Status>>,
    ) {
        if let Err(error) = self.send_all(&chunks).await {
            let _ = chunks.send(Err(error.into())).await;
        }
    }

    async fn send_all(
        &self,
        chunks: &mpsc::Sender<Result<proto::ExportContactsResponse, tonic::Status>>,
    ) -> Result<(), ContactsError> {
        let header = csv_bytes([self.columns.clone()])?;
        if chunks
            .send(Ok(proto::ExportContactsResponse { chunk: header }))
            .await
            .is_err()
        {
            return Ok(());
        }
        let query = store::ContactQuery {
            workspace: &self.workspace,
            search: &self.search,
            filter: self.filter.as_ref(),
            types: &self.types,
            now: Utc::now(),
        };
        let mut after: Option<(chrono::DateTime<Utc>, String)> = None;
        loop {
            let page = {
                let client = self.pool.get().await?;
                store::list_contacts(&client, &query, after.as_ref(), PAGE).await?
            };
            let rows = page
                .iter()
                .map(|contact| self.columns.iter().map(|column| cell(contact, column)).collect());
            let chunk = csv_bytes(rows)?;
            if chunks
                .send(Ok(proto::ExportContactsResponse { chunk }))
                .await
                .is_err()
            {
                return Ok(());
            }
            match page.last() {
                Some(last) if page.len() as i64 == PAGE => {
                    after = Some((last.created_at, last.id.to_string()))
                }
                _ => return Ok(()),
            }
        }
    }
}
