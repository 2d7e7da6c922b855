//! `switchboard.ingress.v1.IngressAdminService`: dead letters for operators.

use switchboard_domain::Channel;
use switchboard_postgres::Pool;
use switchboard_proto::common::v1::{PageRequest, PageResponse};
use switchboard_proto::ingress::v1 as proto;
use switchboard_proto::ingress::v1::ingress_admin_service_server::{
    IngressAdminService, IngressAdminServiceServer,
};
use switchboard_server::auth::{Role, principal};
use tonic::{Request, Response, Status};

/// Dead letters per page when the caller does not say.
const DEFAULT_PAGE_SIZE: u32 = 50;

/// Serves dead letters from the `ingress` schema.
pub(crate) struct Admin {
    pool: Pool,
}

/// The gRPC server of the ingress admin API.
pub(crate) fn admin_server(pool: Pool) -> IngressAdminServiceServer<Admin> {
    IngressAdminServiceServer::new(Admin { pool })
}

fn unavailable(error: impl std::fmt::Display) -> Status {
    tracing::error!(error = %error, "cannot read dead letters");
    Status::unavailable("dead letters cannot be read right now; retry later")
}

fn page_size(page: Option<&PageRequest>) -> i64 {
    switchboard_server::paging::page_size(page, DEFAULT_PAGE_SIZE)
}

#[tonic::async_trait]
impl IngressAdminService for Admin {
    async fn list_dead_letters(
        &self,
        request: Request<proto::ListDeadLettersRequest>,
    ) -> Result<Response<proto::ListDeadLettersResponse>, Status> {
        let caller = principal(&request)?;
        let workspace_filter = match caller.role {
            Role::PlatformAdmin => None,
            Role::WorkspaceAdmin => Some(caller.workspace()?.to_string()),
            Role::WorkspaceMember | Role::Internal => {
                return Err(Status::permission_denied(
                    "dead letters hold raw message bodies: use a workspace admin or platform admin key",
                ));
            }
        };
        let proto::ListDeadLettersRequest {
            workspace_id,
            channel,
            page,
        } = request.into_inner();
        let workspace = match (workspace_filter, workspace_id.is_empty()) {
            (Some(own), true) => Some(own),
            (Some(own), false) if own == workspace_id => Some(own),
            (Some(_), false) => {
                return Err(Status::permission_denied(
                    "workspace_id names another workspace; workspace keys see their own only",
                ));
            }
            (None, true) => None,
            (None, false) => Some(workspace_id),
        };
        let channel = if channel == 0 {
            None
        } else {
            Some(
                Channel::from_proto(channel)
                    .map_err(|error| Status::invalid_argument(format!("channel: {error}")))?
                    .as_str(),
            )
        };
        let limit = page_size(page.as_ref());
        let before = match page.map(|page| page.page_token).unwrap_or_default() {
            token if token.is_empty() => i64::MAX,
            token => token
                .parse::<i64>()
                .map_err(|_| Status::invalid_argument("page_token is not one this API returned"))?,
        };
        let client = self.pool.get().await.map_err(unavailable)?;
        let rows = client
            .query(
                "SELECT id, channel, channel_account_id, workspace_id, reason, content_type, body, received_at
                 FROM ingress.dead_letters
                 WHERE id < $1 AND ($2::text IS NULL OR workspace_id = $2) AND ($3::text IS NULL OR channel = $3)
                 ORDER BY id DESC LIMIT $4",
                &[&before, &workspace, &channel, &limit],
            )
            .await
            .map_err(unavailable)?;
        let dead_letters: Vec<proto::DeadLetter> = rows
            .iter()
            .map(|row| {
                let channel: String = row.get(1);
                let received_at: std::time::SystemTime = row.get(7);
                proto::DeadLetter {
                    id: row.get(0),
                    channel: switchboard_domain::Channel::proto_value_of(&channel),
                    channel_account_id: row.get(2),
                    workspace_id: row.get(3),
                    reason: row.get(4),
                    content_type: row.get(5),
                    body: row.get(6),
                    received_at: Some(received_at.into()),
                }
            })
            .collect();
        let full = i64::try_from(dead_letters.len()).unwrap_or(i64::MAX) >= limit;
        let next_page_token = match dead_letters.last() {
            Some(last) if full => last.id.to_string(),
            _ => String::new(),
        };
        Ok(Response::new(proto::ListDeadLettersResponse {
            dead_letters,
            page: Some(PageResponse { next_page_token }),
        }))
    }
}
