//! The tenancy component: workspaces, API keys (stored hashed) and the channel accounts
//! registry, served as the `WorkspaceAdminService` and `ChannelAccountService` gRPC APIs (and the
//! internal `ChannelAccountDirectoryService` other components use for secrets), plus
//! the GitOps channels file applied idempotently at start.
//!
//! It owns the `tenancy` schema. It depends on the shared kits only, never on another service.

mod channels_file;
mod config;
mod error;
mod grpc;
mod keys;
mod model;
mod store;
mod validate;

use std::sync::Arc;

use switchboard_postgres::{Migration, MigrationSet, Pool};
use switchboard_server::ComponentParts;

pub use channels_file::{ChannelsFile, apply_channels_file};
pub use config::TenancyConfig;
pub use error::TenancyError;
pub use keys::KeyAuthenticator;
pub use model::role_from_proto;

/// The schema migrations of the tenancy component.
pub const MIGRATIONS: MigrationSet = MigrationSet {
    schema: "tenancy",
    migrations: &[Migration {
        version: 1,
        name: "initial",
        sql: include_str!("../migrations/0001_initial.sql"),
    }],
};

/// Builds the component: its gRPC services (accepting and sending messages of at most
/// `grpc_max_message_bytes`; API keys checked by `authenticator`, also for other processes),
/// and applies the channels file when configured.
pub async fn build(
    config: &TenancyConfig,
    pool: Pool,
    publisher: switchboard_messaging::Publisher,
    authenticator: Arc<KeyAuthenticator>,
    grpc_max_message_bytes: usize,
) -> Result<ComponentParts, TenancyError> {
    if let Some(path) = &config.channels_file {
        let file = ChannelsFile::load(path)?;
        let summary = apply_channels_file(&pool, &file).await?;
        tracing::info!(
            path = %path.display(),
            workspaces = summary.workspaces,
            accounts = summary.accounts,
            changed = summary.changed,
            "applied channels file"
        );
    }
    let mut parts = ComponentParts::default();
    let notifier = Arc::new(grpc::ChangeNotifier::new(publisher));
    parts.add_grpc_service(
        grpc::workspace_admin_server(pool.clone())
            .max_decoding_message_size(grpc_max_message_bytes)
            .max_encoding_message_size(grpc_max_message_bytes),
    );
    parts.add_grpc_service(
        grpc::channel_account_server(pool.clone(), notifier)
            .max_decoding_message_size(grpc_max_message_bytes)
            .max_encoding_message_size(grpc_max_message_bytes),
    );
    parts.add_grpc_service(
        grpc::directory_server(pool)
            .max_decoding_message_size(grpc_max_message_bytes)
            .max_encoding_message_size(grpc_max_message_bytes),
    );
    parts.add_grpc_service(grpc::key_directory_server(authenticator));
    Ok(parts)
}
