//! Merge, unmerge and erase: the operations that join, split and remove whole contacts.
//!
//! A merge keeps the secondary's row (hidden by `merged_into`) and records the primary's row
//! before and right after the merge. Unmerge restores, column by column, the primary's
//! pre-merge value wherever the column still holds the merged value (so activity and edits
//! after the merge stay with the primary), moves the secondary's identities back and shows the
//! secondary again: with no change in between, both contacts come back exactly.

use std::collections::BTreeSet;
use switchboard_postgres::CachedStatements as _;

use serde_json::{Map, Value};
use switchboard_domain::{ContactId, MergeId, WorkspaceId};
use switchboard_postgres::Transaction;

use crate::ContactsError;
use crate::editable::MAX_TAGS;
use crate::error::stored_id;
use crate::model::{CONTACT_COLUMNS, Contact};
use crate::store;

/// Columns a merge may change on the primary (and unmerge may restore); the rest (id,
/// workspace, creation, revision, merge link, generated search text) are never copied.
const MERGED_COLUMNS: [&str; 25] = [
    "first_name",
    "last_name",
    "display_name",
    "email",
    "phone",
    "username",
    "avatar_url",
    "locale",
    "custom_fields",
    "tags",
    "channels",
    "blocked",
    "blocked_at",
    "bot_subscribed",
    "bot_subscription_at",
    "bot_subscription_source",
    "email_verified_at",
    "email_verified_source",
    "email_opt_in_at",
    "email_opt_in_source",
    "email_opt_out_at",
    "email_opt_out_source",
    "sms_opted_out",
    "last_inbound_at",
    "last_channel",
];

/// The row of a contact as JSON (column name → value).
async fn row_json(tx: &Transaction<'_>, id: &ContactId) -> Result<Map<String, Value>, ContactsError> {
    let value: Value = tx
        .query_one_cached(
            "SELECT to_jsonb(c) FROM contacts.contacts c WHERE c.id = $1",
            &[&id.as_str()],
        )
        .await?
        .get(0);
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(ContactsError::Corrupt(format!("contact {id} is not a row"))),
    }
}

/// Writes `columns` of `row` onto contact `id` (one revision up) and returns the contact.
async fn write_columns(
    tx: &Transaction<'_>,
    id: &ContactId,
    row: &Map<String, Value>,
) -> Result<Contact, ContactsError> {
    let assignments = MERGED_COLUMNS
        .iter()
        .map(|column| format!("{column} = r.{column}"))
        .collect::<Vec<_>>()
        .join(", ");
    let returning = CONTACT_COLUMNS;
    let sql = format!(
        "UPDATE contacts.contacts AS c SET {assignments}, updated_at = now(), revision = c.revision + 1
         FROM jsonb_populate_record(NULL::contacts.contacts, $2) AS r
         WHERE c.id = $1 RETURNING {returning}"
    );
    let row = tx
        .query_one(&sql, &[&id.as_str(), &Value::Object(row.clone())])
        .await?;
    Contact::from_row(&row)
}

fn is_empty(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => true,
        Some(Value::String(text)) => text.is_empty(),
        Some(Value::Array(items)) => items.is_empty(),
        Some(Value::Object(map)) => map.is_empty(),
        _ => false,
    }
}

fn time_of(value: Option<&Value>) -> Option<chrono::DateTime<chrono::Utc>> {
    value
        .and_then(Value::as_str)
        .and_then(|text| chrono::DateTime::parse_from_rfc3339(text).ok())
        .map(|at| at.with_timezone(&chrono::Utc))
}

/// The primary's row after taking in the secondary.
fn merged_row(primary: &Map<String, Value>, secondary: &Map<String, Value>) -> Map<String, Value> {
    let mut row = primary.clone();
    let get = |map: &Map<String, Value>, key: &str| map.get(key).cloned().unwrap_or(Value::Null);
    // Empty profile fields are filled from the secondary.
    for column in [
        "first_name",
        "last_name",
        "display_name",
        "email",
        "phone",
        "username",
        "avatar_url",
        "locale",
    ] {
        if is_empty(primary.get(column)) && !is_empty(secondary.get(column)) {
            row.insert(column.to_owned(), get(secondary, column));
        }
    }
    // Custom fields the primary lacks.
    let mut custom = primary
        .get("custom_fields")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    if let Some(theirs) = secondary.get("custom_fields").and_then(Value::as_object) {
        for (key, value) in theirs {
            custom.entry(key.clone()).or_insert_with(|| value.clone());
        }
    }
    row.insert("custom_fields".to_owned(), Value::Object(custom));
    // Tags and channels: the union (primary's order first).
    for column in ["tags", "channels"] {
        let mut union: Vec<Value> = primary
            .get(column)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for value in secondary
            .get(column)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if !union.contains(value) {
                union.push(value.clone());
            }
        }
        if column == "tags" {
            let mut sorted: BTreeSet<String> = union
                .iter()
                .filter_map(|value| value.as_str().map(str::to_owned))
                .collect();
            while sorted.len() > MAX_TAGS {
                sorted.pop_last();
            }
            union = sorted.into_iter().map(Value::String).collect();
        }
        row.insert(column.to_owned(), Value::Array(union));
    }
    // Refusals win: an opt-out or unsubscription of either stands.
    if secondary.get("sms_opted_out") == Some(&Value::Bool(true)) {
        row.insert("sms_opted_out".to_owned(), Value::Bool(true));
    }
    if secondary.get("bot_subscribed") == Some(&Value::Bool(false)) {
        for column in ["bot_subscribed", "bot_subscription_at", "bot_subscription_source"] {
            row.insert(column.to_owned(), get(secondary, column));
        }
    }
    if is_empty(primary.get("email_opt_out_at")) && !is_empty(secondary.get("email_opt_out_at")) {
        for column in ["email_opt_out_at", "email_opt_out_source"] {
            row.insert(column.to_owned(), get(secondary, column));
        }
        row.insert("email_opt_in_at".to_owned(), Value::Null);
        row.insert("email_opt_in_source".to_owned(), Value::String(String::new()));
    }
    let same_email = primary.get("email") == secondary.get("email") || is_empty(primary.get("email"));
    if same_email {
        for (at, source) in [
            ("email_verified_at", "email_verified_source"),
            ("email_opt_in_at", "email_opt_in_source"),
        ] {
            if is_empty(row.get(at)) && !is_empty(secondary.get(at)) && is_empty(row.get("email_opt_out_at"))
            {
                row.insert(at.to_owned(), get(secondary, at));
                row.insert(source.to_owned(), get(secondary, source));
            }
        }
    }
    // The latest activity of either.
    if time_of(secondary.get("last_inbound_at")) > time_of(primary.get("last_inbound_at")) {
        for column in ["last_inbound_at", "last_channel"] {
            row.insert(column.to_owned(), get(secondary, column));
        }
    }
    row
}

/// Merges `secondary` into `primary` (both visible, same workspace); returns the primary
/// after the merge and the merge id.
pub(crate) async fn merge(
    tx: &Transaction<'_>,
    workspace: &WorkspaceId,
    primary_id: &ContactId,
    secondary_id: &ContactId,
) -> Result<(Contact, Contact, MergeId), ContactsError> {
    if primary_id == secondary_id {
        return Err(ContactsError::invalid(
            "secondary_id: a contact cannot be merged into itself",
        ));
    }
    // Lock both in id order, so two merges of the same pair cannot deadlock.
    let mut ids = [primary_id, secondary_id];
    ids.sort_unstable();
    for id in ids {
        store::find_contact(tx, workspace, id, true).await?;
    }
    let secondary = store::find_contact(tx, workspace, secondary_id, false).await?;
    let before = row_json(tx, primary_id).await?;
    let theirs = row_json(tx, secondary_id).await?;
    let after = merged_row(&before, &theirs);
    let moved = tx
        .query_cached(
            "UPDATE contacts.identities SET contact_id = $1 WHERE contact_id = $2
             RETURNING channel_account_id, channel_user_id",
            &[&primary_id.as_str(), &secondary_id.as_str()],
        )
        .await?;
    let identities: Vec<Value> = moved
        .iter()
        .map(|row| Value::Array(vec![Value::String(row.get(0)), Value::String(row.get(1))]))
        .collect();
    let primary = write_columns(tx, primary_id, &after).await?;
    let after = row_json(tx, primary_id).await?;
    tx.execute_cached(
        "UPDATE contacts.contacts SET merged_into = $1 WHERE id = $2",
        &[&primary_id.as_str(), &secondary_id.as_str()],
    )
    .await?;
    tx.execute_cached(
        "DELETE FROM contacts.merge_suggestions
         WHERE (contact_id = $1 AND candidate_id = $2) OR (contact_id = $2 AND candidate_id = $1)",
        &[&primary_id.as_str(), &secondary_id.as_str()],
    )
    .await?;
    let merge_id = MergeId::generate();
    tx.execute_cached(
        "INSERT INTO contacts.merges
             (id, workspace_id, primary_id, secondary_id, primary_before, primary_after, identities)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            &merge_id.as_str(),
            &workspace.as_str(),
            &primary_id.as_str(),
            &secondary_id.as_str(),
            &Value::Object(before),
            &Value::Object(after),
            &Value::Array(identities),
        ],
    )
    .await?;
    Ok((primary, secondary, merge_id))
}

/// Undoes merge `merge_id`; returns (primary, secondary) afterwards.
pub(crate) async fn unmerge(
    tx: &Transaction<'_>,
    workspace: &WorkspaceId,
    merge_id: &MergeId,
) -> Result<(Contact, Contact), ContactsError> {
    let row = tx
        .query_opt_cached(
            "SELECT primary_id, secondary_id, primary_before, primary_after, identities, unmerged_at IS NOT NULL
             FROM contacts.merges WHERE id = $1 AND workspace_id = $2 FOR UPDATE",
            &[&merge_id.as_str(), &workspace.as_str()],
        )
        .await?
        .ok_or_else(|| ContactsError::NotFound(format!("merge {merge_id}")))?;
    let primary_id: ContactId = stored_id("merge primary id", row.get(0))?;
    let secondary_id: ContactId = stored_id("merge secondary id", row.get(1))?;
    if row.get::<_, bool>(5) {
        return Err(ContactsError::Conflict(format!(
            "merge {merge_id} was undone already"
        )));
    }
    let as_map = |value: Value| match value {
        Value::Object(map) => Ok(map),
        _ => Err(ContactsError::Corrupt(format!("merge {merge_id} snapshot"))),
    };
    let before = as_map(row.get(2))?;
    let after = as_map(row.get(3))?;
    let identities: Value = row.get(4);
    // The primary must be visible (undo a later merge of the primary first).
    store::find_contact(tx, workspace, &primary_id, true)
        .await
        .map_err(|_| {
            ContactsError::Conflict(format!(
                "contact {primary_id} was merged into another contact since; undo that merge first"
            ))
        })?;
    let current = row_json(tx, &primary_id).await?;
    let mut restored = current.clone();
    for column in MERGED_COLUMNS {
        if current.get(column) == after.get(column) {
            restored.insert(
                column.to_owned(),
                before.get(column).cloned().unwrap_or(Value::Null),
            );
        }
    }
    for pair in identities.as_array().into_iter().flatten() {
        let (Some(account), Some(user)) = (
            pair.get(0).and_then(Value::as_str),
            pair.get(1).and_then(Value::as_str),
        ) else {
            continue;
        };
        tx.execute_cached(
            "UPDATE contacts.identities SET contact_id = $3
             WHERE channel_account_id = $1 AND channel_user_id = $2 AND contact_id = $4",
            &[&account, &user, &secondary_id.as_str(), &primary_id.as_str()],
        )
        .await?;
    }
    let primary = if restored == current {
        store::find_contact(tx, workspace, &primary_id, false).await?
    } else {
        write_columns(tx, &primary_id, &restored).await?
    };
    tx.execute_cached(
        "UPDATE contacts.contacts SET merged_into = NULL WHERE id = $1",
        &[&secondary_id.as_str()],
    )
    .await?;
    tx.execute_cached(
        "UPDATE contacts.merges SET unmerged_at = now() WHERE id = $1",
        &[&merge_id.as_str()],
    )
    .await?;
    let secondary = store::find_contact(tx, workspace, &secondary_id, false).await?;
    Ok((primary, secondary))
}

/// Erases a contact and every contact merged into it (transitively), with their identities,
/// merge records, suggestions and held-event records. Returns the erased ids.
pub(crate) async fn erase(
    tx: &Transaction<'_>,
    workspace: &WorkspaceId,
    contact_id: &ContactId,
) -> Result<Vec<ContactId>, ContactsError> {
    store::find_contact(tx, workspace, contact_id, true).await?;
    let ids: Vec<String> = tx
        .query_cached(
            "WITH RECURSIVE merged(id) AS (
                 SELECT $1::text
                 UNION SELECT c.id FROM contacts.contacts c JOIN merged m ON c.merged_into = m.id
             )
             SELECT id FROM merged",
            &[&contact_id.as_str()],
        )
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    tx.execute_cached(
        "DELETE FROM contacts.merges WHERE primary_id = ANY($1) OR secondary_id = ANY($1)",
        &[&ids],
    )
    .await?;
    tx.execute_cached(
        "DELETE FROM contacts.held_events WHERE contact_id = ANY($1)",
        &[&ids],
    )
    .await?;
    // The month's usage keeps counting the contact; only the link to its id goes.
    tx.execute_cached(
        "DELETE FROM contacts.monthly_activity WHERE contact_id = ANY($1)",
        &[&ids],
    )
    .await?;
    // Resolved events stay known (a retried old webhook must not resurrect the contact), but
    // no longer name it.
    tx.execute_cached(
        "UPDATE contacts.processed_events SET contact_id = NULL, outcome = 'erased' WHERE contact_id = ANY($1)",
        &[&ids],
    )
    .await?;
    // Identities and suggestions go with the rows (ON DELETE CASCADE).
    tx.execute_cached(
        "DELETE FROM contacts.contacts WHERE id = ANY($1) AND workspace_id = $2",
        &[&ids, &workspace.as_str()],
    )
    .await?;
    ids.iter().map(|id| stored_id("merged contact id", id)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::editable::Editable;

    #[test]
    fn every_writable_field_is_merged() {
        let editable = serde_json::to_value(Editable::default()).unwrap();
        for key in editable.as_object().unwrap().keys() {
            assert!(MERGED_COLUMNS.contains(&key.as_str()), "{key} is not merged");
        }
    }

    #[test]
    fn merging_fills_empty_fields_unions_tags_and_keeps_refusals() {
        let primary = serde_json::json!({
            "first_name": "Ada", "email": null, "tags": ["vip"], "channels": ["sms"],
            "custom_fields": {"plan": "pro"}, "sms_opted_out": false, "bot_subscribed": true,
            "last_inbound_at": "2026-11-01T00:00:00+00:00", "last_channel": "sms"
        });
        let secondary = serde_json::json!({
            "first_name": "Augusta", "email": "ada@example.com", "tags": ["lead", "vip"],
            "channels": ["whatsapp"], "custom_fields": {"plan": "free", "score": 3},
            "sms_opted_out": true, "bot_subscribed": false, "bot_subscription_source": "telegram:bot_blocked",
            "last_inbound_at": "2026-11-20T00:00:00+00:00", "last_channel": "whatsapp"
        });
        let merged = merged_row(primary.as_object().unwrap(), secondary.as_object().unwrap());
        assert_eq!(merged["first_name"], "Ada");
        assert_eq!(merged["email"], "ada@example.com");
        assert_eq!(merged["tags"], serde_json::json!(["lead", "vip"]));
        assert_eq!(merged["channels"], serde_json::json!(["sms", "whatsapp"]));
        assert_eq!(
            merged["custom_fields"],
            serde_json::json!({"plan": "pro", "score": 3})
        );
        assert_eq!(merged["sms_opted_out"], true);
        assert_eq!(merged["bot_subscribed"], false);
        assert_eq!(merged["last_channel"], "whatsapp");
    }
}
