//! Reading, listing and searching conversations, closing (with the workspace's closing-note
//! policy) and reopening them.

use switchboard_domain::{ConversationId, WorkspaceId};
use switchboard_proto::routing::v1 as proto;
use switchboard_server::paging;

use super::{RoutingApi, parse_id};
use crate::changes::{self, Changes};
use crate::store::{self, After};
use crate::{RoutingError, assignment};

/// Longest closing-note category and summary, in characters.
const MAX_CATEGORY_CHARS: usize = 100;
const MAX_SUMMARY_CHARS: usize = 2_000;
/// Shortest search text, in characters.
const MIN_QUERY_CHARS: usize = 3;

/// The closing note's category and summary, trimmed and checked.
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

/// The search text of a `ListConversations` call, lowercased, with LIKE wildcards escaped (it
/// is matched literally).
fn search_text(query: &str) -> Result<Option<String>, RoutingError> {
    let query = query.trim().to_lowercase();
    if query.is_empty() {
        return Ok(None);
    }
    if query.chars().count() < MIN_QUERY_CHARS {
        return Err(RoutingError::Invalid("query: at least 3 characters".to_owned()));
    }
    Ok(Some(
        query
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_"),
    ))
}

impl RoutingApi {
    /// Returns one conversation.
    pub(crate) async fn get_conversation(
        &self,
        workspace: &WorkspaceId,
        request: proto::GetConversationRequest,
    ) -> Result<proto::GetConversationResponse, RoutingError> {
        let id: ConversationId = parse_id("id", &request.id)?;
        let client = self.pool.get().await?;
        let conversation = store::conversations::find(&client, workspace, &id).await?;
        Ok(proto::GetConversationResponse {
            conversation: Some(conversation),
        })
    }

    /// Lists and searches conversations, newest first.
    pub(crate) async fn list_conversations(
        &self,
        workspace: &WorkspaceId,
        request: proto::ListConversationsRequest,
    ) -> Result<proto::ListConversationsResponse, RoutingError> {
        let status = match proto::ConversationStatus::try_from(request.status) {
            Ok(proto::ConversationStatus::Open) => Some("open"),
            Ok(proto::ConversationStatus::Closed) => Some("closed"),
            Ok(proto::ConversationStatus::Unspecified) => None,
            Err(_) => {
                return Err(RoutingError::Invalid(
                    "status: not a ConversationStatus value".to_owned(),
                ));
            }
        };
        // `unassigned` selects conversations without an agent.
        let (assignee, unassigned) = match request.assignee_id.as_str() {
            "" => (None, false),
            "unassigned" => (None, true),
            other => (Some(other), false),
        };
        let channel = match request.channel {
            0 => None,
            value => Some(
                switchboard_domain::Channel::from_proto(value)
                    .map_err(|error| RoutingError::Invalid(format!("channel: {error}")))?
                    .as_str(),
            ),
        };
        let filter = store::conversations::Filter {
            contact: (!request.contact_id.is_empty()).then_some(request.contact_id.as_str()),
            status,
            assignee,
            unassigned,
            team: (!request.team_id.is_empty()).then_some(request.team_id.as_str()),
            channel,
            include_archived: request.include_archived,
            follow_up_only: request.follow_up_only,
            query: search_text(&request.query)?,
        };
        let limit = paging::page_size(request.page.as_ref(), store::DEFAULT_PAGE_SIZE);
        let after = After::of(request.page.as_ref())?;
        let client = self.pool.get().await?;
        let page = store::conversations::list(&client, workspace, &filter, &after, limit).await?;
        Ok(proto::ListConversationsResponse {
            page: Some(page.response()),
            conversations: page.items,
        })
    }

    /// Closes an open conversation with its closing note (and the workspace's policy).
    pub(crate) async fn close_conversation(
        &self,
        workspace: &WorkspaceId,
        request: proto::CloseConversationRequest,
    ) -> Result<proto::CloseConversationResponse, RoutingError> {
        let id: ConversationId = parse_id("id", &request.id)?;
        let (category, summary) = closing_note(request.closing_note)?;
        let mut client = self.pool.get().await?;
        let settings = store::settings::get(&client, workspace).await?;
        if settings.require_closing_note && category.is_empty() {
            return Err(RoutingError::Invalid(
                "closing_note.category: this workspace requires a closing note to close a conversation"
                    .to_owned(),
            ));
        }
        let tx = client.transaction().await?;
        let current = changes::lock(&tx, workspace, &id).await?;
        if !current.open {
            return Err(RoutingError::FailedPrecondition(format!(
                "conversation {id} is closed already"
            )));
        }
        store::conversations::close(&tx, &current, &category, &summary).await?;
        let mut changes = Changes::default();
        assignment::on_close(
            &tx,
            self.dispatcher.partitions(),
            &current,
            settings.unassign_on_close,
            &mut changes,
        )
        .await?;
        let closed = store::conversations::find(&tx, workspace, &id).await?;
        changes
            .events
            .push(current.event("conversation.closed", serde_json::json!({"category": category})));
        changes
            .commit(tx, workspace, self.dispatcher.partitions())
            .await?;
        self.dispatcher.after_commit(&changes).await;
        Ok(proto::CloseConversationResponse {
            conversation: Some(closed),
        })
    }

    /// Reopens a closed conversation unless the contact has another one open on the account.
    pub(crate) async fn reopen_conversation(
        &self,
        workspace: &WorkspaceId,
        request: proto::ReopenConversationRequest,
    ) -> Result<proto::ReopenConversationResponse, RoutingError> {
        let id: ConversationId = parse_id("id", &request.id)?;
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let current = changes::lock(&tx, workspace, &id).await?;
        if current.open {
            return Err(RoutingError::FailedPrecondition(format!(
                "conversation {id} is open already"
            )));
        }
        store::conversations::reopen(&tx, &current).await?;
        let mut changes = Changes::default();
        changes
            .events
            .push(current.event("conversation.reopened", serde_json::json!({})));
        assignment::on_reopen(&tx, &current, &mut changes).await?;
        let reopened = store::conversations::find(&tx, workspace, &id).await?;
        changes
            .commit(tx, workspace, self.dispatcher.partitions())
            .await?;
        self.dispatcher.after_commit(&changes).await;
        Ok(proto::ReopenConversationResponse {
            conversation: Some(reopened),
        })
    }
}
