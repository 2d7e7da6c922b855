//! Listing and searching conversations, closing (with the workspace's closing-note policy)
//! and reopening them.

use switchboard_postgres::CachedStatements as _;
use switchboard_proto::common::v1::PageResponse;
use switchboard_proto::routing::v1 as proto;
use switchboard_server::paging;
use tonic::{Request, Response, Status};

use super::{
    CONVERSATION_COLUMNS, DEFAULT_PAGE_SIZE, MAX_CATEGORY_CHARS, MAX_SUMMARY_CHARS, RoutingApi, conversation,
    conversation_id, find, settings, workspace,
};
use crate::RoutingError;
use crate::assignment::{self, Changes};
use crate::event_log::Event;

fn closing_note(note: Option<proto::ClosingNote>) -> Result<(String, String), RoutingError> {
    let note = note.unwrap_or_default();
    let category = note.category.trim().to_owned();
    let summary = note.summary.trim().to_owned();
    if category.chars().count() > MAX_CATEGORY_CHARS || category.chars().any(char::is_control) {
        return Err(RoutingError::Invalid(format!(
            "closing_note.category: at most {MAX_CATEGORY_CHARS} characters, no control characters"
        )));
    }
    if summary.chars().count() > MAX_SUMMARY_CHARS {
        return Err(RoutingError::Invalid(format!(
            "closing_note.summary: at most {MAX_SUMMARY_CHARS} characters"
        )));
    }
    Ok((category, summary))
}

impl RoutingApi {
    /// Lists and searches conversations, newest first.
    pub(crate) async fn list_conversations_rpc(
        &self,
        request: Request<proto::ListConversationsRequest>,
    ) -> Result<Response<proto::ListConversationsResponse>, Status> {
        let workspace = workspace(&request)?;
        let request = request.into_inner();
        let status = match proto::ConversationStatus::try_from(request.status) {
            Ok(proto::ConversationStatus::Open) => Some("open"),
            Ok(proto::ConversationStatus::Closed) => Some("closed"),
            Ok(proto::ConversationStatus::Unspecified) => None,
            Err(_) => return Err(Status::invalid_argument("status: not a ConversationStatus value")),
        };
        let contact = (!request.contact_id.is_empty()).then_some(request.contact_id.as_str());
        // `unassigned` selects conversations without an agent.
        let (assignee, unassigned) = match request.assignee_id.as_str() {
            "" => (None, false),
            "unassigned" => (None, true),
            other => (Some(other), false),
        };
        let team = (!request.team_id.is_empty()).then_some(request.team_id.as_str());
        let channel = match request.channel {
            0 => None,
            value => Some(
                switchboard_domain::Channel::from_proto(value)
                    .map_err(|error| Status::invalid_argument(format!("channel: {error}")))?
                    .as_str(),
            ),
        };
        let query = request.query.trim().to_lowercase();
        if !query.is_empty() && query.chars().count() < 3 {
            return Err(Status::invalid_argument("query: at least 3 characters"));
        }
        // Matched literally: LIKE wildcards in the text are escaped.
        let query = (!query.is_empty()).then(|| {
            query
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        });
        let limit = paging::page_size(request.page.as_ref(), DEFAULT_PAGE_SIZE);
        let (after_at, after_id) = paging::parse_cursor(request.page.as_ref())
            .map_err(RoutingError::from)?
            .unzip();
        let client = self.pool.get().await.map_err(RoutingError::from)?;
        let rows = client
            .query_cached(
                &format!(
                    "SELECT {CONVERSATION_COLUMNS} FROM routing.conversations
                     WHERE workspace_id = $1
                       AND ($2::text IS NULL OR contact_id = $2)
                       AND ($3::text IS NULL OR status = $3)
                       AND ($4::timestamptz IS NULL OR (opened_at, id) < ($4, $5))
                       AND ($7::text IS NULL OR assignee_id = $7)
                       AND (NOT $8 OR assignee_id IS NULL)
                       AND ($9::text IS NULL OR team_id = $9)
                       AND ($10::text IS NULL OR channel = $10)
                       AND ($11 OR archived_at IS NULL)
                       AND (NOT $12 OR follow_up)
                       AND ($13::text IS NULL OR search_text LIKE '%' || $13 || '%')
                     ORDER BY opened_at DESC, id DESC LIMIT $6"
                ),
                &[
                    &workspace,
                    &contact,
                    &status,
                    &after_at,
                    &after_id,
                    &limit,
                    &assignee,
                    &unassigned,
                    &team,
                    &channel,
                    &request.include_archived,
                    &request.follow_up_only,
                    &query,
                ],
            )
            .await
            .map_err(RoutingError::from)?;
        let conversations: Vec<proto::Conversation> = rows.iter().map(conversation).collect();
        let next_page_token = paging::next_page_token(rows.len(), limit, || {
            let last = &rows[rows.len() - 1];
            (last.get(5), last.get(0))
        });
        Ok(Response::new(proto::ListConversationsResponse {
            conversations,
            page: Some(PageResponse { next_page_token }),
        }))
    }

    /// Closes an open conversation with its closing note (and the workspace's policy).
    pub(crate) async fn close_conversation_rpc(
        &self,
        request: Request<proto::CloseConversationRequest>,
    ) -> Result<Response<proto::CloseConversationResponse>, Status> {
        let workspace = workspace(&request)?;
        let request = request.into_inner();
        let id = conversation_id("id", &request.id)?;
        let (category, summary) = closing_note(request.closing_note)?;
        let mut client = self.pool.get().await.map_err(RoutingError::from)?;
        let settings = settings(&client, &workspace).await?;
        if settings.require_closing_note && category.is_empty() {
            return Err(RoutingError::Invalid(
                "closing_note.category: this workspace requires a closing note to close a conversation"
                    .to_owned(),
            )
            .into());
        }
        let tx = client.transaction().await.map_err(RoutingError::from)?;
        let current = assignment::lock(&tx, &workspace, &id).await?;
        if !current.open {
            return Err(
                RoutingError::FailedPrecondition(format!("conversation {id} is closed already")).into(),
            );
        }
        tx.execute_cached(
            "UPDATE routing.conversations SET status = 'closed', closed_at = now(), closing_category = $2,
                 closing_summary = $3, revision = revision + 1
             WHERE id = $1",
            &[&id, &category, &summary],
        )
        .await
        .map_err(RoutingError::from)?;
        let mut changes = Changes::default();
        assignment::on_close(
            &tx,
            self.dispatcher.partitions(),
            &current,
            settings.unassign_on_close,
            &mut changes,
        )
        .await?;
        let closed = find(&tx, &workspace, &id).await?;
        changes.events.push(Event::conversation(
            &id,
            &current.contact_id,
            "conversation.closed",
            serde_json::json!({"category": category}),
        ));
        changes
            .commit(tx, &workspace, self.dispatcher.partitions())
            .await?;
        self.dispatcher.after_commit(&changes).await;
        Ok(Response::new(proto::CloseConversationResponse {
            conversation: Some(closed),
        }))
    }

    /// Reopens a closed conversation unless the contact has another one open on the account.
    pub(crate) async fn reopen_conversation_rpc(
        &self,
        request: Request<proto::ReopenConversationRequest>,
    ) -> Result<Response<proto::ReopenConversationResponse>, Status> {
        let workspace = workspace(&request)?;
        let id = conversation_id("id", &request.get_ref().id)?;
        let mut client = self.pool.get().await.map_err(RoutingError::from)?;
        let tx = client.transaction().await.map_err(RoutingError::from)?;
        let current = assignment::lock(&tx, &workspace, &id).await?;
        if current.open {
            return Err(
                RoutingError::FailedPrecondition(format!("conversation {id} is open already")).into(),
            );
        }
        let reopened = tx
            .execute_cached(
                "UPDATE routing.conversations SET status = 'open', closed_at = NULL, closing_category = '',
                     closing_summary = '', revision = revision + 1
                 WHERE id = $1",
                &[&id],
            )
            .await;
        match reopened {
            Ok(_) => {}
            Err(error) if error.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) => {
                return Err(RoutingError::FailedPrecondition(format!(
                    "contact {} has another open conversation on {}; close it first",
                    current.contact_id, current.channel_account_id
                ))
                .into());
            }
            Err(error) => return Err(RoutingError::from(error).into()),
        }
        let mut changes = Changes::default();
        changes.events.push(Event::conversation(
            &id,
            &current.contact_id,
            "conversation.reopened",
            serde_json::json!({}),
        ));
        assignment::on_reopen(&tx, &current, &mut changes).await?;
        let reopened = find(&tx, &workspace, &id).await?;
        changes
            .commit(tx, &workspace, self.dispatcher.partitions())
            .await?;
        self.dispatcher.after_commit(&changes).await;
        Ok(Response::new(proto::ReopenConversationResponse {
            conversation: Some(reopened),
        }))
    }
}
