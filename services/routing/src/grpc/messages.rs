//! `ListMessages`: a conversation's history in provider time order.

use switchboard_domain::{ConversationId, WorkspaceId};
use switchboard_proto::routing::v1 as proto;
use switchboard_server::paging;

use super::{RoutingApi, parse_id};
use crate::RoutingError;
use crate::store;

impl RoutingApi {
    /// Pages through a conversation's history.
    pub(crate) async fn list_messages(
        &self,
        workspace: &WorkspaceId,
        request: proto::ListMessagesRequest,
    ) -> Result<proto::ListMessagesResponse, RoutingError> {
        let id: ConversationId = parse_id("conversation_id", &request.conversation_id)?;
        let limit = paging::page_size(request.page.as_ref(), store::DEFAULT_PAGE_SIZE);
        // The page key is the arrival number.
        let after = match paging::parse_cursor(request.page.as_ref())? {
            Some((at, arrival)) => Some((
                at,
                arrival
                    .parse::<i64>()
                    .map_err(|_| RoutingError::from(paging::InvalidPageToken))?,
            )),
            None => None,
        };
        let client = self.pool.get().await?;
        store::conversations::find(&client, workspace, &id).await?;
        let page = store::messages::list(&client, workspace, &id, after, limit).await?;
        Ok(proto::ListMessagesResponse {
            page: Some(page.response()),
            messages: page.items,
        })
    }
}
