//! gRPC adapters: proto in, validated domain values to the store, proto out. One module per
//! service: the platform admin API, the workspace's channel accounts, and the internal
//! directories.

mod channel_accounts;
mod directory;
mod workspace_admin;

use switchboard_postgres::Pool;
use tonic::Status;

use crate::TenancyError;

pub(crate) use channel_accounts::{ChangeNotifier, channel_account_server};
pub(crate) use directory::{directory_server, key_directory_server};
pub(crate) use workspace_admin::workspace_admin_server;

/// Page size when the caller names none.
const DEFAULT_PAGE_SIZE: u32 = 100;

/// The page size the caller asked for, capped.
fn page_size(page: Option<&switchboard_proto::common::v1::PageRequest>) -> i64 {
    switchboard_server::paging::page_size(page, DEFAULT_PAGE_SIZE)
}

/// The next-page token after a page of `len` rows ending at `last_id`.
fn next_page(len: usize, limit: i64, last_id: Option<&str>) -> switchboard_proto::common::v1::PageResponse {
    let full = i64::try_from(len).unwrap_or(i64::MAX) >= limit;
    switchboard_proto::common::v1::PageResponse {
        next_page_token: if full {
            last_id.unwrap_or_default().to_owned()
        } else {
            String::new()
        },
    }
}

/// Parses an id argument (`field` names it in the error).
fn parse_id<T>(
    field: &str,
    value: &str,
    parse: impl FnOnce(&str) -> Result<T, switchboard_domain::InvalidId>,
) -> Result<T, Status> {
    parse(value).map_err(|error| Status::invalid_argument(format!("{field}: {error}")))
}

/// A pooled connection.
async fn client(pool: &Pool) -> Result<switchboard_postgres::PooledClient, Status> {
    pool.get().await.map_err(|error| TenancyError::from(error).into())
}
