//! gRPC adapters of `RoutingService` (conversations, history, settings, the event stream) and
//! `AssignmentService` (agents, teams, assignment), workspace-scoped.

mod agents;
mod control;
mod messages;
mod notes;
mod settings;
mod watch;

use chrono::{DateTime, Utc};
use switchboard_domain::ConversationId;
use switchboard_domain::time::to_timestamp as timestamp;
use switchboard_postgres::{GenericClient, Pool};
use switchboard_proto::common::v1::PageResponse;
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
pub(crate) use notes::{NotesApi, notes_server};
use settings::settings;

/// Fully qualified names of the services this component serves.
pub(crate) const SERVICE_NAMES: [&str; 3] = [
    "switchboard.routing.v1.RoutingService",
    "switchboard.routing.v1.AssignmentService",
    "switchboard.routing.v1.NotesService",
];

/// Page size when the caller names none.
pub(crate) const DEFAULT_PAGE_SIZE: u32 = 100;
/// Longest closing-note category and summary, in characters.
const MAX_CATEGORY_CHARS: usize = 100;
const MAX_SUMMARY_CHARS: usize = 2_000;

const CONVERSATION_COLUMNS: &str = "id, contact_id, channel_account_id, channel, status, opened_at, closed_at, \
     last_inbound_at, last_message_at, closing_category, closing_summary, revision, assignee_id, team_id, \
     assigned_at, queued_at, archived_at, follow_up, controller, controller_version, bot_paused_until, \
     contact_snapshot->>'name'";

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

/// How long after the last inbound message free-form replies are allowed, per channel.
fn reply_window(channel: &str, last_inbound: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match channel {
        "whatsapp" | "messenger" | "instagram" => last_inbound.map(|at| at + chrono::Duration::hours(24)),
        _ => None,
    }
}

/// A conversation row (selected with `CONVERSATION_COLUMNS`) as the API shows it.
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
        archived_at: row.get::<_, Option<DateTime<Utc>>>(16).map(timestamp),
        follow_up: row.get(17),
        controller: if row.get::<_, String>(18) == "bot" {
            proto::Controller::Bot as i32
        } else {
            proto::Controller::Human as i32
        },
        controller_version: row.get(19),
        bot_paused_until: row
            .get::<_, Option<DateTime<Utc>>>(20)
            .filter(|until| *until > Utc::now())
            .map(timestamp),
        window_open_until: reply_window(&channel, row.get(7)).map(timestamp),
        contact_name: row.get::<_, Option<String>>(21).unwrap_or_default(),
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
            .query(
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

    async fn list_messages(
        &self,
        request: Request<proto::ListMessagesRequest>,
    ) -> Result<Response<proto::ListMessagesResponse>, Status> {
        self.list_messages_rpc(request).await
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
        changes
            .commit(tx, &workspace, self.dispatcher.partitions())
            .await?;
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
        changes
            .commit(tx, &workspace, self.dispatcher.partitions())
            .await?;
        self.dispatcher.after_commit(&changes).await;
        Ok(Response::new(proto::ReopenConversationResponse {
            conversation: Some(reopened),
        }))
    }

    async fn get_routing_settings(
        &self,
        request: Request<proto::GetRoutingSettingsRequest>,
    ) -> Result<Response<proto::GetRoutingSettingsResponse>, Status> {
        let settings = self.get_settings_rpc(request).await?;
        Ok(Response::new(proto::GetRoutingSettingsResponse {
            settings: Some(settings),
        }))
    }

    async fn update_routing_settings(
        &self,
        request: Request<proto::UpdateRoutingSettingsRequest>,
    ) -> Result<Response<proto::UpdateRoutingSettingsResponse>, Status> {
        let settings = self.update_settings_rpc(request).await?;
        Ok(Response::new(proto::UpdateRoutingSettingsResponse {
            settings: Some(settings),
        }))
    }

    async fn archive_conversation(
        &self,
        request: Request<proto::ArchiveConversationRequest>,
    ) -> Result<Response<proto::ArchiveConversationResponse>, Status> {
        let conversation = self.set_archived(request, true).await?;
        Ok(Response::new(proto::ArchiveConversationResponse {
            conversation: Some(conversation),
        }))
    }

    async fn unarchive_conversation(
        &self,
        request: Request<proto::UnarchiveConversationRequest>,
    ) -> Result<Response<proto::UnarchiveConversationResponse>, Status> {
        let conversation = self.set_archived(request, false).await?;
        Ok(Response::new(proto::UnarchiveConversationResponse {
            conversation: Some(conversation),
        }))
    }

    async fn set_follow_up(
        &self,
        request: Request<proto::SetFollowUpRequest>,
    ) -> Result<Response<proto::SetFollowUpResponse>, Status> {
        let conversation = self.set_follow_up_rpc(request).await?;
        Ok(Response::new(proto::SetFollowUpResponse {
            conversation: Some(conversation),
        }))
    }

    async fn transfer_to_human(
        &self,
        request: Request<proto::TransferToHumanRequest>,
    ) -> Result<Response<proto::TransferToHumanResponse>, Status> {
        let conversation = self.transfer(request, "human").await?;
        Ok(Response::new(proto::TransferToHumanResponse {
            conversation: Some(conversation),
        }))
    }

    async fn transfer_to_bot(
        &self,
        request: Request<proto::TransferToBotRequest>,
    ) -> Result<Response<proto::TransferToBotResponse>, Status> {
        let conversation = self.transfer(request, "bot").await?;
        Ok(Response::new(proto::TransferToBotResponse {
            conversation: Some(conversation),
        }))
    }

    async fn pause_bot(
        &self,
        request: Request<proto::PauseBotRequest>,
    ) -> Result<Response<proto::PauseBotResponse>, Status> {
        let conversation = self.pause_bot_rpc(request).await?;
        Ok(Response::new(proto::PauseBotResponse {
            conversation: Some(conversation),
        }))
    }

    async fn resume_bot(
        &self,
        request: Request<proto::ResumeBotRequest>,
    ) -> Result<Response<proto::ResumeBotResponse>, Status> {
        let conversation = self.resume_bot_rpc(request).await?;
        Ok(Response::new(proto::ResumeBotResponse {
            conversation: Some(conversation),
        }))
    }

    async fn check_bot_send(
        &self,
        request: Request<proto::CheckBotSendRequest>,
    ) -> Result<Response<proto::CheckBotSendResponse>, Status> {
        self.check_bot_send_rpc(request).await?;
        Ok(Response::new(proto::CheckBotSendResponse {}))
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

/// Locks conversation `id` of `workspace`, applies `apply`, commits with its events, then
/// runs the hand-outs the change made possible. Returns the conversation as committed.
pub(crate) async fn change<F>(
    pool: &Pool,
    dispatcher: &Dispatcher,
    workspace: &str,
    id: &str,
    apply: F,
) -> Result<proto::Conversation, RoutingError>
where
    F: for<'t, 'c> FnOnce(
        &'t switchboard_postgres::Transaction<'c>,
        u16,
        &'t assignment::Locked,
        &'t mut Changes,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<(), RoutingError>> + Send + 't>,
    >,
{
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let locked = assignment::lock(&tx, workspace, id).await?;
    let mut changes = Changes::default();
    apply(&tx, dispatcher.partitions(), &locked, &mut changes).await?;
    changes.commit(tx, workspace, dispatcher.partitions()).await?;
    dispatcher.after_commit(&changes).await;
    let client = pool.get().await?;
    find(&client, workspace, id).await
}
