//! The GitOps channels file (`SWITCHBOARD_CHANNELS_FILE`): workspaces and channel accounts
//! declared in YAML and applied idempotently at start. Secrets come from the environment or
//! from files (Kubernetes secret mounts), never from the YAML itself unless written inline.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use switchboard_domain::{Channel, ChannelAccountId, WorkspaceId};
use switchboard_postgres::Pool;

use crate::model::{ChannelAccountPatch, NewChannelAccount};
use crate::{TenancyError, store, validate};

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelsFile {
    /// Workspaces with their accounts.
    pub workspaces: Vec<WorkspaceEntry>,
    #[serde(skip)]
    path: String,
}

/// One workspace of the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceEntry {
    /// `ws_…`, stable across applies.
    pub id: WorkspaceId,
    /// Display name.
    pub name: String,
    /// Its channel accounts.
    #[serde(default)]
    pub channel_accounts: Vec<AccountEntry>,
}

/// One channel account of the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountEntry {
    /// `chacc_…`, stable across applies; the webhook URL is `/webhooks/{channel}/{id}`.
    pub id: ChannelAccountId,
    /// Channel name (`whatsapp`, `messenger`, …).
    pub channel: Channel,
    /// Display name.
    pub name: String,
    /// The provider's id of the account.
    pub external_id: String,
    /// Provider API base URL override.
    #[serde(default)]
    pub base_url: String,
    /// Whether the account serves traffic.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Non-secret settings.
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
    /// Secrets by name, each inline, `{env: NAME}` or `{file: PATH}`.
    #[serde(default)]
    pub secrets: BTreeMap<String, SecretSource>,
}

fn default_true() -> bool {
    true
}

/// Where a secret's value comes from.
#[derive(Clone, Deserialize)]
#[serde(untagged)]
pub enum SecretSource {
    /// From an environment variable.
    Env {
        /// Variable name.
        env: String,
    },
    /// From a file (trailing newline removed).
    File {
        /// File path.
        file: PathBuf,
    },
    /// Written inline (fine for local development only).
    Inline(String),
}

impl std::fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Env { env } => write!(f, "env:{env}"),
            Self::File { file } => write!(f, "file:{}", file.display()),
            Self::Inline(_) => f.write_str("[inline, redacted]"),
        }
    }
}

/// What an apply did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApplySummary {
    /// Workspaces in the file.
    pub workspaces: usize,
    /// Accounts in the file.
    pub accounts: usize,
    /// Workspaces and accounts created or changed now (0 on a repeated apply).
    pub changed: usize,
}

impl ChannelsFile {
    /// Reads and parses the file; errors name the file and the offending entry.
    pub fn load(path: &Path) -> Result<Self, TenancyError> {
        let error = |reason: String| TenancyError::ChannelsFile {
            path: path.display().to_string(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|io| error(format!("cannot read: {io}")))?;
        let mut file: Self = serde_yaml_ng::from_str(&text).map_err(|yaml| error(yaml.to_string()))?;
        file.path = path.display().to_string();
        Ok(file)
    }

    fn error(&self, reason: String) -> TenancyError {
        TenancyError::ChannelsFile {
            path: self.path.clone(),
            reason,
        }
    }
}

fn resolve(source: &SecretSource) -> Result<String, String> {
    match source {
        SecretSource::Inline(value) => Ok(value.clone()),
        SecretSource::Env { env } => {
            std::env::var(env).map_err(|_| format!("environment variable {env} is not set"))
        }
        SecretSource::File { file } => std::fs::read_to_string(file)
            .map(|text| text.trim_end_matches(['\r', '\n']).to_owned())
            .map_err(|io| format!("cannot read {}: {io}", file.display())),
    }
}

/// Applies the file in one transaction under an advisory lock: creates or updates every
/// workspace and account it declares (accounts it does not declare are left alone).
pub async fn apply_channels_file(pool: &Pool, file: &ChannelsFile) -> Result<ApplySummary, TenancyError> {
    let mut summary = ApplySummary {
        workspaces: file.workspaces.len(),
        accounts: 0,
        changed: 0,
    };
    let mut client = pool.get().await?;
    let transaction = client.transaction().await?;
    transaction
        .execute(
            "SELECT pg_advisory_xact_lock(hashtext('switchboard-channels-file'))",
            &[],
        )
        .await?;
    for workspace in &file.workspaces {
        let name = validate::name("name", &workspace.name)
            .map_err(|error| file.error(format!("workspace {}: {error}", workspace.id)))?;
        if store::upsert_workspace(&transaction, &workspace.id, &name).await? {
            summary.changed += 1;
        }
        for entry in &workspace.channel_accounts {
            summary.accounts += 1;
            let context = |error: String| file.error(format!("channel account {}: {error}", entry.id));
            let mut secrets = BTreeMap::new();
            for (secret, source) in &entry.secrets {
                let value =
                    resolve(source).map_err(|reason| context(format!("secret {secret}: {reason}")))?;
                secrets.insert(secret.clone(), value);
            }
            validate::secrets(&secrets).map_err(|error| context(error.to_string()))?;
            validate::settings(&entry.settings).map_err(|error| context(error.to_string()))?;
            let account = NewChannelAccount {
                id: entry.id.clone(),
                channel: entry.channel,
                name: validate::name("name", &entry.name).map_err(|error| context(error.to_string()))?,
                external_id: validate::external_id(&entry.external_id)
                    .map_err(|error| context(error.to_string()))?,
                base_url: validate::base_url(&entry.base_url).map_err(|error| context(error.to_string()))?,
                enabled: entry.enabled,
                settings: entry.settings.clone(),
                secrets,
            };
            match store::channel_account_owner(&transaction, &entry.id).await? {
                None => {
                    store::insert_channel_account(&transaction, &workspace.id, &account).await?;
                    summary.changed += 1;
                }
                Some(owner) if owner == workspace.id => {
                    let before = store::get_channel_account(&transaction, &workspace.id, &entry.id).await?;
                    if before
                        .as_ref()
                        .is_some_and(|existing| existing.channel != account.channel)
                    {
                        return Err(context(
                            "its channel cannot change; give the new account a new id".to_owned(),
                        ));
                    }
                    let patch = ChannelAccountPatch {
                        name: Some(account.name),
                        external_id: Some(account.external_id),
                        base_url: Some(account.base_url),
                        enabled: Some(account.enabled),
                        settings: Some(account.settings),
                        secrets: Some(account.secrets),
                        replace_secrets: true,
                    };
                    let after =
                        store::update_channel_account(&transaction, &workspace.id, &entry.id, &patch).await?;
                    if before.map(|account| account.revision) != after.map(|account| account.revision) {
                        summary.changed += 1;
                    }
                }
                Some(owner) => {
                    return Err(context(format!("the id belongs to workspace {owner}")));
                }
            }
        }
    }
    transaction.commit().await?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_file_in_deploy_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/config/channels.example.yaml");
        let file = ChannelsFile::load(&path).expect("example parses");
        assert!(!file.workspaces.is_empty());
        assert!(
            file.workspaces
                .iter()
                .all(|workspace| !workspace.channel_accounts.is_empty())
        );
    }

    #[test]
    fn unknown_keys_and_channels_are_refused_with_the_file_name() {
        let directory = std::env::temp_dir();
        let path = directory.join(format!("channels-{}.yaml", uuid::Uuid::new_v4().simple()));
        std::fs::write(&path, "workspaces:\n  - id: ws_x\n    name: X\n    channel_accounts:\n      - id: chacc_x\n        channel: fax\n        name: F\n        external_id: \"1\"\n").unwrap();
        let error = ChannelsFile::load(&path).unwrap_err().to_string();
        std::fs::remove_file(&path).unwrap();
        assert!(error.contains("fax") && error.contains("channels-"), "{error}");
    }
}
