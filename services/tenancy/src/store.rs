//! SQL of the tenancy schema: one function per statement, rows mapped to model types.

use std::collections::BTreeMap;

use switchboard_domain::{ApiKeyId, Channel, ChannelAccountId, WorkspaceId};
use switchboard_postgres::GenericClient;
use switchboard_postgres::tokio_postgres::Row;
use switchboard_postgres::tokio_postgres::types::Json;
use switchboard_server::auth::Role;

use crate::TenancyError;
use crate::model::{
    ApiKey, ChannelAccount, ChannelAccountPatch, NewChannelAccount, Workspace, role_from_db, role_to_db,
};

const WORKSPACE_COLUMNS: &str = "id, name, created_at";
const API_KEY_COLUMNS: &str = "id, workspace_id, name, role, created_at, revoked_at";
const ACCOUNT_COLUMNS: &str = "id, workspace_id, channel, name, external_id, base_url, enabled, settings, \
     ARRAY(SELECT jsonb_object_keys(secrets) ORDER BY 1) AS secret_names, revision, created_at, updated_at";

fn corrupt(what: impl std::fmt::Display) -> TenancyError {
    TenancyError::Corrupt(what.to_string())
}

fn workspace_from_row(row: &Row) -> Result<Workspace, TenancyError> {
    Ok(Workspace {
        id: WorkspaceId::parse(row.get("id")).map_err(corrupt)?,
        name: row.get("name"),
        created_at: row.get("created_at"),
    })
}

fn api_key_from_row(row: &Row) -> Result<ApiKey, TenancyError> {
    let workspace_id: Option<&str> = row.get("workspace_id");
    let role: &str = row.get("role");
    Ok(ApiKey {
        id: ApiKeyId::parse(row.get("id")).map_err(corrupt)?,
        workspace_id: workspace_id
            .map(WorkspaceId::parse)
            .transpose()
            .map_err(corrupt)?,
        name: row.get("name"),
        role: role_from_db(role).ok_or_else(|| corrupt(format!("unknown role {role}")))?,
        created_at: row.get("created_at"),
        revoked_at: row.get("revoked_at"),
    })
}

fn account_from_row(row: &Row) -> Result<ChannelAccount, TenancyError> {
    let channel: &str = row.get("channel");
    let Json(settings): Json<BTreeMap<String, String>> = row.get("settings");
    Ok(ChannelAccount {
        id: ChannelAccountId::parse(row.get("id")).map_err(corrupt)?,
        workspace_id: WorkspaceId::parse(row.get("workspace_id")).map_err(corrupt)?,
        channel: channel.parse::<Channel>().map_err(corrupt)?,
        name: row.get("name"),
        external_id: row.get("external_id"),
        base_url: row.get("base_url"),
        enabled: row.get("enabled"),
        settings,
        secret_names: row.get("secret_names"),
        revision: row.get("revision"),
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
    })
}

/// Maps a unique violation to a conflict with `message`, anything else to a store error.
fn conflict_or(
    error: switchboard_postgres::tokio_postgres::Error,
    message: impl FnOnce() -> String,
) -> TenancyError {
    let error = switchboard_postgres::StoreError::Query(error);
    if error.is_unique_violation() {
        TenancyError::Conflict(message())
    } else {
        TenancyError::Store(error)
    }
}

#[tracing::instrument(skip_all, fields(workspace_id = %id))]
pub(crate) async fn insert_workspace(
    client: &impl GenericClient,
    id: &WorkspaceId,
    name: &str,
) -> Result<Workspace, TenancyError> {
    let row = client
        .query_one(
            &format!(
                "INSERT INTO tenancy.workspaces (id, name) VALUES ($1, $2) RETURNING {WORKSPACE_COLUMNS}"
            ),
            &[&id.as_str(), &name],
        )
        .await
        .map_err(|error| conflict_or(error, || format!("workspace {id} exists already")))?;
    workspace_from_row(&row)
}

/// Creates the workspace or renames it; returns true when anything changed.
#[tracing::instrument(skip_all, fields(workspace_id = %id))]
pub(crate) async fn upsert_workspace(
    client: &impl GenericClient,
    id: &WorkspaceId,
    name: &str,
) -> Result<bool, TenancyError> {
    let changed = client
        .execute(
            "INSERT INTO tenancy.workspaces (id, name) VALUES ($1, $2)
             ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name WHERE workspaces.name <> EXCLUDED.name",
            &[&id.as_str(), &name],
        )
        .await?;
    Ok(changed > 0)
}

#[tracing::instrument(skip_all, fields(workspace_id = %id))]
pub(crate) async fn get_workspace(
    client: &impl GenericClient,
    id: &WorkspaceId,
) -> Result<Option<Workspace>, TenancyError> {
    let row = client
        .query_opt(
            &format!("SELECT {WORKSPACE_COLUMNS} FROM tenancy.workspaces WHERE id = $1"),
            &[&id.as_str()],
        )
        .await?;
    row.as_ref().map(workspace_from_row).transpose()
}

#[tracing::instrument(skip_all)]
pub(crate) async fn list_workspaces(
    client: &impl GenericClient,
    after: &str,
    limit: i64,
) -> Result<Vec<Workspace>, TenancyError> {
    let rows = client
        .query(
            &format!("SELECT {WORKSPACE_COLUMNS} FROM tenancy.workspaces WHERE id > $1 ORDER BY id LIMIT $2"),
            &[&after, &limit],
        )
        .await?;
    rows.iter().map(workspace_from_row).collect()
}

#[tracing::instrument(skip_all, fields(key_id = %id))]
pub(crate) async fn insert_api_key(
    client: &impl GenericClient,
    id: &ApiKeyId,
    workspace_id: Option<&WorkspaceId>,
    name: &str,
    role: Role,
    secret_sha256: &str,
) -> Result<ApiKey, TenancyError> {
    let row = client
        .query_one(
            &format!(
                "INSERT INTO tenancy.api_keys (id, workspace_id, name, role, secret_sha256)
                 VALUES ($1, $2, $3, $4, $5) RETURNING {API_KEY_COLUMNS}"
            ),
            &[
                &id.as_str(),
                &workspace_id.map(WorkspaceId::as_str),
                &name,
                &role_to_db(role),
                &secret_sha256,
            ],
        )
        .await?;
    api_key_from_row(&row)
}

#[tracing::instrument(skip_all)]
pub(crate) async fn list_api_keys(
    client: &impl GenericClient,
    workspace_id: Option<&WorkspaceId>,
) -> Result<Vec<ApiKey>, TenancyError> {
    let rows = client
        .query(
            &format!(
                "SELECT {API_KEY_COLUMNS} FROM tenancy.api_keys
                 WHERE workspace_id IS NOT DISTINCT FROM $1 ORDER BY id"
            ),
            &[&workspace_id.map(WorkspaceId::as_str)],
        )
        .await?;
    rows.iter().map(api_key_from_row).collect()
}

#[tracing::instrument(skip_all, fields(key_id = %id))]
pub(crate) async fn revoke_api_key(
    client: &impl GenericClient,
    id: &ApiKeyId,
) -> Result<Option<ApiKey>, TenancyError> {
    let row = client
        .query_opt(
            &format!(
                "UPDATE tenancy.api_keys SET revoked_at = coalesce(revoked_at, now())
                 WHERE id = $1 RETURNING {API_KEY_COLUMNS}"
            ),
            &[&id.as_str()],
        )
        .await?;
    row.as_ref().map(api_key_from_row).transpose()
}

/// The key and its secret hash, for authentication; revoked keys included (the caller refuses them).
#[tracing::instrument(skip_all, fields(key_id = %id))]
pub(crate) async fn find_api_key(
    client: &impl GenericClient,
    id: &ApiKeyId,
) -> Result<Option<(ApiKey, String)>, TenancyError> {
    let row = client
        .query_opt(
            &format!("SELECT {API_KEY_COLUMNS}, secret_sha256 FROM tenancy.api_keys WHERE id = $1"),
            &[&id.as_str()],
        )
        .await?;
    match row {
        Some(row) => Ok(Some((api_key_from_row(&row)?, row.get("secret_sha256")))),
        None => Ok(None),
    }
}

#[tracing::instrument(skip_all, fields(workspace_id = %workspace_id, channel_account_id = %account.id))]
pub(crate) async fn insert_channel_account(
    client: &impl GenericClient,
    workspace_id: &WorkspaceId,
    account: &NewChannelAccount,
) -> Result<ChannelAccount, TenancyError> {
    let row = client
        .query_one(
            &format!(
                "INSERT INTO tenancy.channel_accounts
                     (id, workspace_id, channel, name, external_id, base_url, enabled, settings, secrets)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {ACCOUNT_COLUMNS}"
            ),
            &[
                &account.id.as_str(),
                &workspace_id.as_str(),
                &account.channel.as_str(),
                &account.name,
                &account.external_id,
                &account.base_url,
                &account.enabled,
                &Json(&account.settings),
                &Json(&account.secrets),
            ],
        )
        .await
        .map_err(|error| {
            conflict_or(error, || {
                format!(
                    "a channel account with id {} or {} external_id {:?} exists already",
                    account.id, account.channel, account.external_id
                )
            })
        })?;
    account_from_row(&row)
}

#[tracing::instrument(skip_all, fields(workspace_id = %workspace_id, channel_account_id = %id))]
pub(crate) async fn get_channel_account(
    client: &impl GenericClient,
    workspace_id: &WorkspaceId,
    id: &ChannelAccountId,
) -> Result<Option<ChannelAccount>, TenancyError> {
    let row = client
        .query_opt(
            &format!(
                "SELECT {ACCOUNT_COLUMNS} FROM tenancy.channel_accounts WHERE workspace_id = $1 AND id = $2"
            ),
            &[&workspace_id.as_str(), &id.as_str()],
        )
        .await?;
    row.as_ref().map(account_from_row).transpose()
}

#[tracing::instrument(skip_all, fields(workspace_id = %workspace_id))]
pub(crate) async fn list_channel_accounts(
    client: &impl GenericClient,
    workspace_id: &WorkspaceId,
    channel: Option<Channel>,
    after: &str,
    limit: i64,
) -> Result<Vec<ChannelAccount>, TenancyError> {
    let rows = client
        .query(
            &format!(
                "SELECT {ACCOUNT_COLUMNS} FROM tenancy.channel_accounts
                 WHERE workspace_id = $1 AND ($2::text IS NULL OR channel = $2) AND id > $3
                 ORDER BY id LIMIT $4"
            ),
            &[
                &workspace_id.as_str(),
                &channel.map(Channel::as_str),
                &after,
                &limit,
            ],
        )
        .await?;
    rows.iter().map(account_from_row).collect()
}

/// Applies `patch` under a row lock (commit is the caller's); returns the new row, or `None` when the account is not in
/// the workspace. The revision grows only when a value really changed.
#[tracing::instrument(skip_all, fields(workspace_id = %workspace_id, channel_account_id = %id))]
pub(crate) async fn update_channel_account(
    transaction: &switchboard_postgres::Transaction<'_>,
    workspace_id: &WorkspaceId,
    id: &ChannelAccountId,
    patch: &ChannelAccountPatch,
) -> Result<Option<ChannelAccount>, TenancyError> {
    let row = transaction
        .query_opt(
            "SELECT name, external_id, base_url, enabled, settings, secrets FROM tenancy.channel_accounts
             WHERE workspace_id = $1 AND id = $2 FOR UPDATE",
            &[&workspace_id.as_str(), &id.as_str()],
        )
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let Json(current_settings): Json<BTreeMap<String, String>> = row.get("settings");
    let Json(current_secrets): Json<BTreeMap<String, String>> = row.get("secrets");
    let name = patch.name.clone().unwrap_or_else(|| row.get("name"));
    let external_id = patch
        .external_id
        .clone()
        .unwrap_or_else(|| row.get("external_id"));
    let base_url = patch.base_url.clone().unwrap_or_else(|| row.get("base_url"));
    let enabled = patch.enabled.unwrap_or_else(|| row.get("enabled"));
    let settings = patch.settings.clone().unwrap_or_else(|| current_settings.clone());
    let mut secrets = if patch.replace_secrets {
        BTreeMap::new()
    } else {
        current_secrets.clone()
    };
    if let Some(changes) = &patch.secrets {
        for (secret, value) in changes {
            if value.is_empty() {
                secrets.remove(secret);
            } else {
                secrets.insert(secret.clone(), value.clone());
            }
        }
    }
    let unchanged = name == row.get::<_, String>("name")
        && external_id == row.get::<_, String>("external_id")
        && base_url == row.get::<_, String>("base_url")
        && enabled == row.get::<_, bool>("enabled")
        && settings == current_settings
        && secrets == current_secrets;
    if !unchanged {
        transaction
            .execute(
                "UPDATE tenancy.channel_accounts SET name = $3, external_id = $4, base_url = $5, enabled = $6,
                     settings = $7, secrets = $8, revision = revision + 1, updated_at = now()
                 WHERE workspace_id = $1 AND id = $2",
                &[
                    &workspace_id.as_str(),
                    &id.as_str(),
                    &name,
                    &external_id,
                    &base_url,
                    &enabled,
                    &Json(&settings),
                    &Json(&secrets),
                ],
            )
            .await
            .map_err(|error| conflict_or(error, || format!("another account has external_id {external_id:?}")))?;
    }
    get_channel_account(transaction, workspace_id, id).await
}

/// The workspace that owns account `id`, if it exists.
#[tracing::instrument(skip_all, fields(channel_account_id = %id))]
pub(crate) async fn channel_account_owner(
    client: &impl GenericClient,
    id: &ChannelAccountId,
) -> Result<Option<WorkspaceId>, TenancyError> {
    let row = client
        .query_opt(
            "SELECT workspace_id FROM tenancy.channel_accounts WHERE id = $1",
            &[&id.as_str()],
        )
        .await?;
    row.map(|row| WorkspaceId::parse(row.get(0)).map_err(corrupt))
        .transpose()
}

/// Provider secrets by name.
pub(crate) type Secrets = BTreeMap<String, String>;

/// Any workspace's account with its secrets (for the internal directory).
#[tracing::instrument(skip_all, fields(channel_account_id = %id))]
pub(crate) async fn resolve_channel_account(
    client: &impl GenericClient,
    id: &ChannelAccountId,
) -> Result<Option<(ChannelAccount, Secrets)>, TenancyError> {
    let row = client
        .query_opt(
            &format!("SELECT {ACCOUNT_COLUMNS}, secrets FROM tenancy.channel_accounts WHERE id = $1"),
            &[&id.as_str()],
        )
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let Json(secrets): Json<Secrets> = row.get("secrets");
    Ok(Some((account_from_row(&row)?, secrets)))
}

/// The account of `channel` with provider id `external_id` (case-insensitive for e-mail), with
/// its secrets (for the internal directory).
#[tracing::instrument(skip_all, fields(channel = channel.as_str()))]
pub(crate) async fn find_channel_account(
    client: &impl GenericClient,
    channel: Channel,
    external_id: &str,
) -> Result<Option<(ChannelAccount, Secrets)>, TenancyError> {
    let row = client
        .query_opt(
            &format!(
                "SELECT {ACCOUNT_COLUMNS}, secrets FROM tenancy.channel_accounts
                 WHERE channel = $1
                   AND (external_id = $2 OR ($1 = 'email' AND lower(external_id) = lower($2)))
                 ORDER BY external_id = $2 DESC, id LIMIT 1"
            ),
            &[&channel.as_str(), &external_id],
        )
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let Json(secrets): Json<Secrets> = row.get("secrets");
    Ok(Some((account_from_row(&row)?, secrets)))
}
