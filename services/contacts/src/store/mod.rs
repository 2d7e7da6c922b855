//! SQL of the contacts API (identity resolution has its own in `resolve`). Every query is
//! scoped by workspace: an id of another workspace is simply not found.

mod held_events;
mod merge_suggestions;
mod quotas;
mod saved_views;

use std::collections::HashMap;
use switchboard_postgres::CachedStatements as _;

use chrono::{DateTime, Utc};
use switchboard_domain::{ContactId, WorkspaceId};
use switchboard_postgres::GenericClient;
use switchboard_proto::contacts::v1 as proto;

use tokio_postgres::types::ToSql;

use crate::ContactsError;
use crate::editable::Editable;
use crate::error::stored_id;
use crate::fields::{FieldDefinition, FieldType};
use crate::filter::{self, Filter, SqlFilter};
use crate::model::{CONTACT_COLUMNS, Contact, timestamp};

pub(crate) use held_events::held_events;
pub(crate) use merge_suggestions::merge_suggestions;
pub(crate) use quotas::{quota_usage, set_quota};
pub(crate) use saved_views::{View, delete_view, insert_view, update_view, view, views};

/// The workspace's custom field definitions by key.
pub(crate) async fn field_definitions(
    client: &impl GenericClient,
    workspace: &WorkspaceId,
) -> Result<HashMap<String, FieldDefinition>, ContactsError> {
    let rows = client
        .query_cached(
            "SELECT key, label, field_type, options FROM contacts.field_definitions
             WHERE workspace_id = $1 ORDER BY key",
            &[&workspace.as_str()],
        )
        .await?;
    rows.iter()
        .map(|row| {
            let key: String = row.get(0);
            let type_name: String = row.get(2);
            let field_type = FieldType::parse(&type_name)
                .ok_or_else(|| ContactsError::Corrupt(format!("field {key} has unknown type {type_name}")))?;
            Ok((
                key.clone(),
                FieldDefinition {
                    key,
                    label: row.get(1),
                    field_type,
                    options: row.get(3),
                },
            ))
        })
        .collect()
}

/// The types of the workspace's custom fields, for rendering and filters.
pub(crate) fn field_types(definitions: &HashMap<String, FieldDefinition>) -> HashMap<String, FieldType> {
    definitions
        .iter()
        .map(|(key, definition)| (key.clone(), definition.field_type))
        .collect()
}

/// Creates or redefines a field; its type cannot change once defined.
pub(crate) async fn define_field(
    client: &impl GenericClient,
    workspace: &WorkspaceId,
    definition: &FieldDefinition,
) -> Result<(), ContactsError> {
    let existing: Option<String> = client
        .query_opt_cached(
            "SELECT field_type FROM contacts.field_definitions WHERE workspace_id = $1 AND key = $2",
            &[&workspace.as_str(), &definition.key],
        )
        .await?
        .map(|row| row.get(0));
    if let Some(existing) = existing
        && existing != definition.field_type.as_str()
    {
        return Err(ContactsError::Conflict(format!(
            "custom field {} is a {existing} field; its type cannot change (define a new field instead)",
            definition.key
        )));
    }
    client
        .execute_cached(
            "INSERT INTO contacts.field_definitions (workspace_id, key, label, field_type, options)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (workspace_id, key) DO UPDATE SET label = EXCLUDED.label, options = EXCLUDED.options",
            &[
                &workspace.as_str(),
                &definition.key,
                &definition.label,
                &definition.field_type.as_str(),
                &definition.options,
            ],
        )
        .await?;
    Ok(())
}

/// Inserts a contact made by hand or by an import.
pub(crate) async fn insert_contact(
    client: &impl GenericClient,
    workspace: &WorkspaceId,
    id: &ContactId,
    fields: &Editable,
) -> Result<Contact, ContactsError> {
    let row = client
        .query_one_cached(
            &format!(
                "INSERT INTO contacts.contacts AS c
                     (id, workspace_id, first_name, last_name, display_name, email, phone, username,
                      avatar_url, locale, custom_fields, tags)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
                 RETURNING {CONTACT_COLUMNS}"
            ),
            &[
                &id.as_str(),
                &workspace.as_str(),
                &fields.first_name,
                &fields.last_name,
                &fields.display_name,
                &fields.email,
                &fields.phone,
                &fields.username,
                &fields.avatar_url,
                &fields.locale,
                &serde_json::Value::Object(fields.custom_fields.clone()),
                &fields.tags,
            ],
        )
        .await?;
    Contact::from_row(&row)
}

/// One visible (not merged away) contact of the workspace, locked when `for_update`.
pub(crate) async fn find_contact(
    client: &impl GenericClient,
    workspace: &WorkspaceId,
    id: &ContactId,
    for_update: bool,
) -> Result<Contact, ContactsError> {
    let lock = if for_update { " FOR UPDATE" } else { "" };
    let row = client
        .query_opt_cached(
            &format!(
                "SELECT {CONTACT_COLUMNS} FROM contacts.contacts c
                 WHERE c.id = $1 AND c.workspace_id = $2 AND c.merged_into IS NULL{lock}"
            ),
            &[&id.as_str(), &workspace.as_str()],
        )
        .await?
        .ok_or_else(|| ContactsError::NotFound(format!("contact {id}")))?;
    Contact::from_row(&row)
}

/// Writes the editable fields of a contact (one revision up).
pub(crate) async fn write_editable(
    client: &impl GenericClient,
    id: &ContactId,
    fields: &Editable,
) -> Result<Contact, ContactsError> {
    let row = client
        .query_one_cached(
            &format!(
                "UPDATE contacts.contacts AS c SET
                     first_name = $2, last_name = $3, display_name = $4, email = $5, phone = $6,
                     username = $7, avatar_url = $8, locale = $9, custom_fields = $10, tags = $11,
                     updated_at = now(), revision = c.revision + 1
                 WHERE c.id = $1
                 RETURNING {CONTACT_COLUMNS}"
            ),
            &[
                &id.as_str(),
                &fields.first_name,
                &fields.last_name,
                &fields.display_name,
                &fields.email,
                &fields.phone,
                &fields.username,
                &fields.avatar_url,
                &fields.locale,
                &serde_json::Value::Object(fields.custom_fields.clone()),
                &fields.tags,
            ],
        )
        .await?;
    Contact::from_row(&row)
}

/// Runs an `UPDATE contacts.contacts AS c SET <assignments> WHERE c.id = $1` that returns the
/// contact; `assignments` may use `$2…` from `params`.
pub(crate) async fn update_contact(
    client: &impl GenericClient,
    id: &ContactId,
    assignments: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Contact, ContactsError> {
    let id = id.as_str();
    let mut all: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = vec![&id];
    all.extend_from_slice(params);
    let row = client
        .query_one(
            &format!(
                "UPDATE contacts.contacts AS c SET {assignments}, updated_at = now(), revision = c.revision + 1
                 WHERE c.id = $1 RETURNING {CONTACT_COLUMNS}"
            ),
            &all,
        )
        .await?;
    Contact::from_row(&row)
}

/// The identities of some contacts, by contact id.
pub(crate) async fn identities(
    client: &impl GenericClient,
    contact_ids: &[ContactId],
) -> Result<HashMap<ContactId, Vec<proto::Identity>>, ContactsError> {
    let contact_ids: Vec<&str> = contact_ids.iter().map(ContactId::as_str).collect();
    let rows = client
        .query_cached(
            "SELECT contact_id, channel, channel_account_id, channel_user_id, created_at, last_seen_at
             FROM contacts.identities WHERE contact_id = ANY($1)
             ORDER BY created_at, channel_account_id, channel_user_id",
            &[&contact_ids],
        )
        .await?;
    let mut by_contact: HashMap<ContactId, Vec<proto::Identity>> = HashMap::new();
    for row in rows {
        let contact_id: ContactId = stored_id("identity contact id", row.get(0))?;
        let channel: String = row.get(1);
        let first_seen: DateTime<Utc> = row.get(4);
        let last_seen: Option<DateTime<Utc>> = row.get(5);
        by_contact.entry(contact_id).or_default().push(proto::Identity {
            channel: switchboard_domain::Channel::proto_value_of(&channel),
            channel_account_id: row.get(2),
            channel_user_id: row.get(3),
            first_seen_at: Some(timestamp(first_seen)),
            last_seen_at: last_seen.map(timestamp),
        });
    }
    Ok(by_contact)
}

/// What a contact list selects.
pub(crate) struct ContactQuery<'a> {
    pub(crate) workspace: &'a WorkspaceId,
    /// Free text ('' = none).
    pub(crate) search: &'a str,
    pub(crate) filter: Option<&'a Filter>,
    pub(crate) types: &'a HashMap<String, FieldType>,
    pub(crate) now: DateTime<Utc>,
}

type Param = Box<dyn ToSql + Sync + Send>;

/// Escapes LIKE's wildcards so text is matched literally.
fn like_literal(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len() + 2);
    for c in text.chars() {
        if matches!(c, '\\' | '%' | '_') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

impl ContactQuery<'_> {
    /// The WHERE clause (alias `c`) and its parameters.
    fn where_clause(&self) -> Result<(String, Vec<Param>, Option<SqlFilter>), ContactsError> {
        let mut sql = String::from("c.workspace_id = $1 AND c.merged_into IS NULL");
        let mut params: Vec<Param> = vec![Box::new(self.workspace.as_str().to_owned())];
        if !self.search.is_empty() {
            if self.search.chars().count() > 200 {
                return Err(ContactsError::invalid("query: at most 200 characters"));
            }
            // One trigram-indexed column, so the planner can estimate and use the index
            // (tags, channels and custom fields are searched with filter conditions).
            params.push(Box::new(format!(
                "%{}%",
                like_literal(&self.search.to_lowercase())
            )));
            sql.push_str(&format!(" AND c.search_text LIKE ${}", params.len()));
        }
        let compiled = match self.filter {
            Some(filter) => {
                let compiled = filter::to_sql(filter, self.types, "c", params.len() + 1, self.now)
                    .map_err(|error| ContactsError::invalid_as("INVALID_FILTER", error.to_string()))?;
                sql.push_str(&format!(" AND ({})", compiled.sql));
                Some(compiled)
            }
            None => None,
        };
        Ok((sql, params, compiled))
    }
}

fn refs<'a>(params: &'a [Param], compiled: Option<&'a SqlFilter>) -> Vec<&'a (dyn ToSql + Sync)> {
    let mut refs: Vec<&(dyn ToSql + Sync)> = params
        .iter()
        .map(|param| param.as_ref() as &(dyn ToSql + Sync))
        .collect();
    if let Some(compiled) = compiled {
        refs.extend(compiled.param_refs());
    }
    refs
}

/// One page of contacts, newest first, after the cursor.
pub(crate) async fn list_contacts(
    client: &impl GenericClient,
    query: &ContactQuery<'_>,
    after: Option<&(DateTime<Utc>, String)>,
    limit: i64,
) -> Result<Vec<Contact>, ContactsError> {
    let (mut sql, params, compiled) = query.where_clause()?;
    let filter_params = compiled.as_ref().map_or(0, |compiled| compiled.params.len());
    let mut next = params.len() + filter_params + 1;
    let mut tail: Vec<Param> = Vec::new();
    if let Some((at, id)) = after {
        sql.push_str(&format!(" AND (c.created_at, c.id) < (${next}, ${})", next + 1));
        tail.push(Box::new(*at));
        tail.push(Box::new(id.clone()));
        next += 2;
    }
    tail.push(Box::new(limit));
    let statement = format!(
        "SELECT {CONTACT_COLUMNS} FROM contacts.contacts c WHERE {sql}
         ORDER BY c.created_at DESC, c.id DESC LIMIT ${next}"
    );
    let mut all = refs(&params, compiled.as_ref());
    all.extend(tail.iter().map(|param| param.as_ref() as &(dyn ToSql + Sync)));
    let rows = client.query(&statement, &all).await?;
    rows.iter().map(Contact::from_row).collect()
}

/// How many contacts match.
pub(crate) async fn count_contacts(
    client: &impl GenericClient,
    query: &ContactQuery<'_>,
) -> Result<i64, ContactsError> {
    let (sql, params, compiled) = query.where_clause()?;
    let all = refs(&params, compiled.as_ref());
    let row = client
        .query_one(
            &format!("SELECT count(*) FROM contacts.contacts c WHERE {sql}"),
            &all,
        )
        .await?;
    Ok(row.get(0))
}

/// One batch of matching contacts in id order after `after_id` (for background jobs, which
/// must visit each contact once even while they change it).
pub(crate) async fn contacts_after_id(
    client: &impl GenericClient,
    query: &ContactQuery<'_>,
    after_id: &str,
    limit: i64,
) -> Result<Vec<Contact>, ContactsError> {
    let (sql, params, compiled) = query.where_clause()?;
    let filter_params = compiled.as_ref().map_or(0, |compiled| compiled.params.len());
    let next = params.len() + filter_params + 1;
    let tail: Vec<Param> = vec![Box::new(after_id.to_owned()), Box::new(limit)];
    let statement = format!(
        "SELECT {CONTACT_COLUMNS} FROM contacts.contacts c WHERE {sql} AND c.id > ${next}
         ORDER BY c.id LIMIT ${}",
        next + 1
    );
    let mut all = refs(&params, compiled.as_ref());
    all.extend(tail.iter().map(|param| param.as_ref() as &(dyn ToSql + Sync)));
    let rows = client.query(&statement, &all).await?;
    rows.iter().map(Contact::from_row).collect()
}

/// Visible contacts of the workspace having one of `emails` or `phones`.
pub(crate) async fn contacts_with_identifiers(
    client: &impl GenericClient,
    workspace: &WorkspaceId,
    emails: &[String],
    phones: &[String],
) -> Result<Vec<Contact>, ContactsError> {
    let rows = client
        .query_cached(
            &format!(
                "SELECT {CONTACT_COLUMNS} FROM contacts.contacts c
                 WHERE c.workspace_id = $1 AND c.merged_into IS NULL
                   AND (c.email = ANY($2) OR c.phone = ANY($3))
                 ORDER BY c.created_at, c.id"
            ),
            &[&workspace.as_str(), &emails, &phones],
        )
        .await?;
    rows.iter().map(Contact::from_row).collect()
}
