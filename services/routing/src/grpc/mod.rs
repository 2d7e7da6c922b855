//! gRPC adapters of `RoutingService` (conversations, history, settings, the event stream) and
//! `AssignmentService` (agents, teams, assignment), workspace-scoped.

mod agents;
mod watch;

use chrono::{DateTime, Utc};
use prost::Message as _;
use switchboard_domain::ConversationId;
use switchboard_domain::time::to_timestamp as timestamp;
use switchboard_postgres::{GenericClient, Pool};
use switchboard_proto::common::v1::PageResponse;
use switchboard_proto::events::v1::InboundMessage;
use switchboard_proto::routing::v1 as proto;
use switchboard_proto::routing::v1::routing_service_server::{RoutingService, RoutingServiceServer};
use switchboard_server::auth::principal;
use switchboard_server::paging;
use tokio_postgres::Row;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use crate::RoutingError;
use crate::assignment::{self, Changes, Dispatcher};
use crate::event_log::{Event, EventFeed};

pub(crate) use agents::{AssignmentApi, assignment_server};

/// Fully qualified names of the services this component serves.
pub(crate) const SERVICE_NAMES: [&str; 2] = [
    "switchboard.routing.v1.RoutingService",
    "switchboard.routing.v1.AssignmentService",
];

/// Page size when the caller names none.
const DEFAULT_PAGE_SIZE: u32 = 100;
/// Longest closing-note category and summary, in characters.
const MAX_CATEGORY_CHARS: usize = 100;
const MAX_SUMMARY_CHARS: usize = 2_000;

const CONVERSATION_COLUMNS: &str = "id, contact_id, channel_account_id, channel, status, opened_at, closed_at, \
     last_inbound_at, last_message_at, closing_category, closing_summary, revision, assignee_id, team_id, \
     assigned_at, queued_at";

/// Builds the service.
pub(crate) fn routing_server(api: RoutingApi) -> RoutingServiceServer<RoutingApi> {
    RoutingServiceServer::new(api)
}

/// The `RoutingService` implementation.
pub(crate) struct RoutingApi {
    pub(crate) pool: Pool,
    pub(crate) dispatcher: Dispatcher,
    pub(crate) feed: EventFeed,
    pub(crate) shutdown: CancellationToken,
}

/// The caller's workspace.
fn workspace<T>(request: &Request<T>) -> Result<String, Status> {
    Ok(principal(request)?.workspace()?.as_str().to_owned())
}

/// The caller's workspace, for calls that need a workspace admin key.
fn admin_workspace<T>(request: &Request<T>) -> Result<String, Status> {
    Ok(principal(request)?.admin_workspace()?.as_str().to_owned())
}

/// A conversation id argument, checked (`field` names it in the error).
pub(crate) fn conversation_id(field: &str, value: &str) -> Result<String, Status> {
    ConversationId::parse(value)
        .map(ConversationId::into_string)
        .map_err(|error| Status::invalid_argument(format!("{field}: {error}")))
}

fn conversation(row: &Row) -> proto::Conversation {
    let channel: String = row.get(3);
    let status: String = row.get(4);
    let closed = status == "closed";
    let category: String = row.get(9);
    let summary: String = row.get(10);
    proto::Conversation {
        id: row.get(0),
        contact_id: row.get(1),
        channel_account_id: row.get(2),
        channel: switchboard_domain::Channel::proto_value_of(&channel),
        status: if closed {
            proto::ConversationStatus::Closed as i32
        } else {
            proto::ConversationStatus::Open as i32
        },
        opened_at: Some(timestamp(row.get(5))),
        closed_at: row.get::<_, Option<DateTime<Utc>>>(6).map(timestamp),
        last_inbound_at: row.get::<_, Option<DateTime<Utc>>>(7).map(timestamp),
        last_message_at: row.get::<_, Option<DateTime<Utc>>>(8).map(timestamp),
        closing_note: closed.then_some(proto::ClosingNote { category, summary }),
        revision: row.get(11),
        assignee_id: row.get::<_, Option<String>>(12).unwrap_or_default(),
        team_id: row.get::<_, Option<String>>(13).unwrap_or_default(),
        assigned_at: row.get::<_, Option<DateTime<Utc>>>(14).map(timestamp),
        queued_at: row.get::<_, Option<DateTime<Utc>>>(15).map(timestamp),
    }
}

/// Conversation `id` of `workspace`.
pub(crate) async fn find(
    client: &impl GenericClient,
    workspace: &str,
    id: &str,
) -> Result<proto::Conversation, RoutingError> {
    let row = client
        .query_opt(
            &format!(
                "SELECT {CONVERSATION_COLUMNS} FROM routing.conversations WHERE id = $1 AND workspace_id = $2"
            ),
            &[&id, &workspace],
        )
        .await?
        .ok_or_else(|| RoutingError::NotFound(format!("conversation {id}")))?;
    Ok(conversation(&row))
}

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

#[tonic::async_trait]
impl RoutingService for RoutingApi {
    async fn get_conversation(
        &self,
        request: Request<proto::GetConversationRequest>,
    ) -> Result<Response<proto::GetConversationResponse>, Status> {
        let workspace = workspace(&request)?;
        let id = conversation_id("id", &request.get_ref().id)?;
        let client = self.pool.get().await.map_err(RoutingError::from)?;
        let conversation = find(&client, &workspace, &id).await?;
        Ok(Response::new(proto::GetConversationResponse {
            conversation: Some(conversation),
        }))
    }

    async fn list_conversations(
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
        let limit = paging::page_size(request.page.as_ref(), DEFAULT_PAGE_SIZE);
        let (after_at, after_id) = paging::parse_cursor(request.page.as_ref())
            .map_err(RoutingError::from)?
            .unzip();
        let client = self.pool.get().await.map_err(RoutingError::from)?;
        let rows = client
            .query(
                &format!(
                    "SELECT {CONVERSATION_COLUMNS} FROM routing.conversations
                     WHERE workspace_id = $1
                       AND ($2::text IS NULL OR contact_id = $2)
                       AND ($3::text IS NULL OR status = $3)
                       AND ($4::timestamptz IS NULL OR (opened_at, id) < ($4, $5))
                     ORDER BY opened_at DESC, id DESC LIMIT $6"
                ),
                &[&workspace, &contact, &status, &after_at, &after_id, &limit],
            )
            .await
            .map_err(RoutingError::from)?;
        let conversations: Vec<proto::Conversation> = rows.iter().map(conversation).collect();
        let next_page_token = match rows.last() {
            Some(last) if i64::try_from(rows.len()).unwrap_or(i64::MAX) >= limit => {
                let opened: DateTime<Utc> = last.get(5);
                paging::cursor_token(opened, &last.get::<_, String>(0))
            }
            _ => String::new(),
        };
        Ok(Response::new(proto::ListConversationsResponse {
            conversations,
            page: Some(PageResponse { next_page_token }),
        }))
    }

    async fn list_messages(
        &self,
        request: Request<proto::ListMessagesRequest>,
    ) -> Result<Response<proto::ListMessagesResponse>, Status> {
        let workspace = workspace(&request)?;
        let request = request.into_inner();
        let id = conversation_id("conversation_id", &request.conversation_id)?;
        let limit = paging::page_size(request.page.as_ref(), DEFAULT_PAGE_SIZE);
        let after = paging::parse_cursor(request.page.as_ref()).map_err(RoutingError::from)?;
        let (after_at, after_arrival) = match after {
            Some((at, arrival)) => (
                Some(at),
                Some(
                    arrival
                        .parse::<i64>()
                        .map_err(|_| RoutingError::from(paging::InvalidPageToken))?,
                ),
            ),
            None => (None, None),
        };
        let client = self.pool.get().await.map_err(RoutingError::from)?;
        find(&client, &workspace, &id).await?;
        let rows = client
            .query(
                "SELECT id, direction, author_kind, provider_message_id, body, provider_timestamp, received_at,
                        arrival, coalesce(provider_timestamp, received_at) AS sort_at
                 FROM routing.messages
                 WHERE conversation_id = $1 AND workspace_id = $2
                   AND ($3::timestamptz IS NULL OR (coalesce(provider_timestamp, received_at), arrival) > ($3, $4))
                 ORDER BY coalesce(provider_timestamp, received_at), arrival LIMIT $5",
                &[&id, &workspace, &after_at, &after_arrival, &limit],
            )
            .await
            .map_err(RoutingError::from)?;
        let mut messages = Vec::with_capacity(rows.len());
        for row in &rows {
            let body: Vec<u8> = row.get(4);
            let content = InboundMessage::decode(body.as_slice())
                .map_err(|error| RoutingError::Corrupt(format!("message body: {error}")))?;
            let author = match row.get::<_, String>(2).as_str() {
                "customer" => proto::AuthorKind::Customer,
                "agent" => proto::AuthorKind::Agent,
                "bot" => proto::AuthorKind::Bot,
                "workflow" => proto::AuthorKind::Workflow,
                "broadcast" => proto::AuthorKind::Broadcast,
                "api" => proto::AuthorKind::Api,
                _ => proto::AuthorKind::Unspecified,
            };
            messages.push(proto::Message {
                id: row.get(0),
                conversation_id: id.clone(),
                inbound: row.get::<_, String>(1) == "inbound",
                author_kind: author as i32,
                provider_message_id: row.get(3),
                content: Some(content),
                provider_timestamp: row.get::<_, Option<DateTime<Utc>>>(5).map(timestamp),
                received_at: Some(timestamp(row.get(6))),
            });
        }
        let next_page_token = match rows.last() {
            Some(last) if i64::try_from(rows.len()).unwrap_or(i64::MAX) >= limit => {
                let at: DateTime<Utc> = last.get(8);
                paging::cursor_token(at, &last.get::<_, i64>(7).to_string())
            }
            _ => String::new(),
        };
        Ok(Response::new(proto::ListMessagesResponse {
            messages,
            page: Some(PageResponse { next_page_token }),
        }))
    }

    async fn close_conversation(
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
        tx.execute(
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
        changes.commit(tx, &workspace).await?;
        self.dispatcher.after_commit(&changes).await;
        Ok(Response::new(proto::CloseConversationResponse {
            conversation: Some(closed),
        }))
    }

    async fn reopen_conversation(
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
            .execute(
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
        changes.commit(tx, &workspace).await?;
        self.dispatcher.after_commit(&changes).await;
        Ok(Response::new(proto::ReopenConversationResponse {
            conversation: Some(reopened),
        }))
    }

    async fn get_routing_settings(
        &self,
        request: Request<proto::GetRoutingSettingsRequest>,
    ) -> Result<Response<proto::GetRoutingSettingsResponse>, Status> {
        let workspace = workspace(&request)?;
        let client = self.pool.get().await.map_err(RoutingError::from)?;
        let settings = settings(&client, &workspace).await?;
        Ok(Response::new(proto::GetRoutingSettingsResponse {
            settings: Some(settings),
        }))
    }

    async fn update_routing_settings(
        &self,
        request: Request<proto::UpdateRoutingSettingsRequest>,
    ) -> Result<Response<proto::UpdateRoutingSettingsResponse>, Status> {
        let workspace = admin_workspace(&request)?;
        let settings = request
            .into_inner()
            .settings
            .ok_or_else(|| Status::invalid_argument("settings: required"))?;
        let client = self.pool.get().await.map_err(RoutingError::from)?;
        client
            .execute(
                "INSERT INTO routing.workspace_settings (workspace_id, unassign_on_close, require_closing_note)
                 VALUES ($1, $2, $3)
                 ON CONFLICT (workspace_id) DO UPDATE
                 SET unassign_on_close = EXCLUDED.unassign_on_close, require_closing_note = EXCLUDED.require_closing_note",
                &[&workspace, &settings.unassign_on_close, &settings.require_closing_note],
            )
            .await
            .map_err(RoutingError::from)?;
        Ok(Response::new(proto::UpdateRoutingSettingsResponse {
            settings: Some(settings),
        }))
    }

    type WatchEventsStream = watch::EventStream;

    async fn watch_events(
        &self,
        request: Request<proto::WatchEventsRequest>,
    ) -> Result<Response<Self::WatchEventsStream>, Status> {
        let workspace = workspace(&request)?;
        let request = request.into_inner();
        let conversation = if request.conversation_id.is_empty() {
            None
        } else {
            Some(conversation_id("conversation_id", &request.conversation_id)?)
        };
        let stream = watch::start(
            watch::Watch {
                pool: self.pool.clone(),
                feed: self.feed.clone(),
                shutdown: self.shutdown.clone(),
                workspace,
                conversation,
            },
            &request.from_cursor,
        )
        .await?;
        Ok(Response::new(stream))
    }
}

/// The workspace's routing settings (defaults when never set).
async fn settings(
    client: &impl GenericClient,
    workspace: &str,
) -> Result<proto::RoutingSettings, RoutingError> {
    let row = client
        .query_opt(
            "SELECT unassign_on_close, require_closing_note FROM routing.workspace_settings WHERE workspace_id = $1",
            &[&workspace],
        )
        .await?;
    Ok(
        row.map_or_else(proto::RoutingSettings::default, |row| proto::RoutingSettings {
            unassign_on_close: row.get(0),
            require_closing_note: row.get(1),
        }),
    )
}
