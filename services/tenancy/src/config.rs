use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The `[tenancy]` config section.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TenancyConfig {
    /// YAML file of workspaces and channel accounts applied idempotently at start
    /// (env `SWITCHBOARD_CHANNELS_FILE`); see `deploy/config/channels.example.yaml`.
    pub channels_file: Option<PathBuf>,
}

impl TenancyConfig {
    /// Checks the values a person can get wrong.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(path) = &self.channels_file
            && !path.is_file()
        {
            return Err(format!(
                "tenancy.channels_file (SWITCHBOARD_CHANNELS_FILE) {} does not exist or is not a file",
                path.display()
            ));
        }
        Ok(())
    }
}
