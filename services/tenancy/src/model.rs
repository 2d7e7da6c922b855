use std::collections::BTreeMap;
use std::time::SystemTime;

use switchboard_domain::{ApiKeyId, Channel, ChannelAccountId, WorkspaceId};
use switchboard_proto::tenancy::v1 as proto;
use switchboard_server::auth::Role;

/// A workspace row.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Workspace {
    pub id: WorkspaceId,
    pub name: String,
    pub created_at: SystemTime,
}

impl From<Workspace> for proto::Workspace {
    fn from(workspace: Workspace) -> Self {
        let Workspace { id, name, created_at } = workspace;
        Self {
            id: id.into_string(),
            name,
            created_at: Some(created_at.into()),
        }
    }
}

/// An API key row, without its secret hash.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ApiKey {
    pub id: ApiKeyId,
    pub workspace_id: Option<WorkspaceId>,
    pub name: String,
    pub role: Role,
    pub created_at: SystemTime,
    pub revoked_at: Option<SystemTime>,
}

impl From<ApiKey> for proto::ApiKey {
    fn from(key: ApiKey) -> Self {
        let ApiKey {
            id,
            workspace_id,
            name,
            role,
            created_at,
            revoked_at,
        } = key;
        Self {
            id: id.into_string(),
            workspace_id: workspace_id.map(WorkspaceId::into_string).unwrap_or_default(),
            name,
            role: role_to_proto(role) as i32,
            created_at: Some(created_at.into()),
            revoked_at: revoked_at.map(Into::into),
        }
    }
}

/// The role of a stored key from its proto value; `None` for unspecified or unknown values.
pub fn role_from_proto(value: i32) -> Option<Role> {
    match proto::ApiKeyRole::try_from(value) {
        Ok(proto::ApiKeyRole::PlatformAdmin) => Some(Role::PlatformAdmin),
        Ok(proto::ApiKeyRole::WorkspaceAdmin) => Some(Role::WorkspaceAdmin),
        Ok(proto::ApiKeyRole::WorkspaceMember) => Some(Role::WorkspaceMember),
        Ok(proto::ApiKeyRole::Unspecified) | Err(_) => None,
    }
}

pub(crate) fn role_to_proto(role: Role) -> proto::ApiKeyRole {
    match role {
        Role::PlatformAdmin => proto::ApiKeyRole::PlatformAdmin,
        Role::WorkspaceAdmin => proto::ApiKeyRole::WorkspaceAdmin,
        Role::WorkspaceMember => proto::ApiKeyRole::WorkspaceMember,
        // The internal principal is a configured token, never a stored key.
        Role::Internal => proto::ApiKeyRole::Unspecified,
    }
}

pub(crate) fn role_to_db(role: Role) -> &'static str {
    match role {
        Role::PlatformAdmin => "platform_admin",
        Role::WorkspaceAdmin => "workspace_admin",
        Role::WorkspaceMember => "workspace_member",
        // Not a key role: the table's CHECK constraint refuses it.
        Role::Internal => "internal",
    }
}

pub(crate) fn role_from_db(value: &str) -> Option<Role> {
    match value {
        "platform_admin" => Some(Role::PlatformAdmin),
        "workspace_admin" => Some(Role::WorkspaceAdmin),
        "workspace_member" => Some(Role::WorkspaceMember),
        _ => None,
    }
}

/// A channel account row, with the names (not values) of its secrets.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ChannelAccount {
    pub id: ChannelAccountId,
    pub workspace_id: WorkspaceId,
    pub channel: Channel,
    pub name: String,
    pub external_id: String,
    pub base_url: String,
    pub enabled: bool,
    pub settings: BTreeMap<String, String>,
    pub secret_names: Vec<String>,
    pub revision: i64,
    pub created_at: SystemTime,
    pub updated_at: SystemTime,
}

impl From<ChannelAccount> for proto::ChannelAccount {
    fn from(account: ChannelAccount) -> Self {
        let ChannelAccount {
            id,
            workspace_id,
            channel,
            name,
            external_id,
            base_url,
            enabled,
            settings,
            secret_names,
            revision,
            created_at,
            updated_at,
        } = account;
        Self {
            id: id.into_string(),
            workspace_id: workspace_id.into_string(),
            channel: channel.to_proto() as i32,
            name,
            external_id,
            base_url,
            enabled,
            settings: settings.into_iter().collect(),
            secret_names,
            revision,
            created_at: Some(created_at.into()),
            updated_at: Some(updated_at.into()),
        }
    }
}

/// The values of a new channel account, validated.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NewChannelAccount {
    pub id: ChannelAccountId,
    pub channel: Channel,
    pub name: String,
    pub external_id: String,
    pub base_url: String,
    pub enabled: bool,
    pub settings: BTreeMap<String, String>,
    pub secrets: BTreeMap<String, String>,
}

/// A validated partial update of a channel account; `None` leaves a field alone.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ChannelAccountPatch {
    pub name: Option<String>,
    pub external_id: Option<String>,
    pub base_url: Option<String>,
    pub enabled: Option<bool>,
    pub settings: Option<BTreeMap<String, String>>,
    /// Secrets to set; an empty value removes that secret.
    pub secrets: Option<BTreeMap<String, String>>,
    /// Drop every secret not named in `secrets` (the channels file is the whole truth).
    pub replace_secrets: bool,
}
