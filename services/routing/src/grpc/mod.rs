//! gRPC adapters of `RoutingService` (conversations, history, settings, the event stream) and
//! `AssignmentService` (agents, teams, assignment), workspace-scoped.

mod agents;
mod control;
mod conversations;
mod messages;
mod notes;
mod settings;
mod snippets;
mod teams;
mod watch;

use chrono::{DateTime, Utc};
use switchboard_domain::ConversationId;
use switchboard_domain::time::to_timestamp as timestamp;
use switchboard_postgres::CachedStatements as _;
use switchboard_postgres::{GenericClient, Pool};
use switchboard_proto::routing::v1 as proto;
use switchboard_proto::routing::v1::routing_service_server::{RoutingService, RoutingServiceServer};
use switchboard_server::auth::principal;
use tokio_postgres::Row;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use crate::RoutingError;
use crate::assignment::{self, Changes, Dispatcher};
use crate::event_log::EventFeed;

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
        .query_opt_cached(
            &format!(
                "SELECT {CONVERSATION_COLUMNS} FROM routing.conversations WHERE id = $1 AND workspace_id = $2"
            ),
            &[&id, &workspace],
        )
        .await?
        .ok_or_else(|| RoutingError::NotFound(format!("conversation {id}")))?;
    Ok(conversation(&row))
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
        self.list_conversations_rpc(request).await
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
        self.close_conversation_rpc(request).await
    }

    async fn reopen_conversation(
        &self,
        request: Request<proto::ReopenConversationRequest>,
    ) -> Result<Response<proto::ReopenConversationResponse>, Status> {
        self.reopen_conversation_rpc(request).await
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
