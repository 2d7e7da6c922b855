//! gRPC adapters of `RoutingService` (conversations, history, settings, the event stream),
//! `AssignmentService` (agents, teams, assignment) and `NotesService` (notes, snippets),
//! workspace-scoped.
//!
//! The trait impls are the boundary: they take the caller's workspace from the request, hand
//! the message to a handler, and turn its [`RoutingError`] into a status there (through the
//! one `From<RoutingError> for Status`). Handlers parse ids once into the typed ids of
//! `switchboard-domain`, check the rest, and call `crate::store`.

mod agents;
mod control;
mod conversations;
mod messages;
mod notes;
mod settings;
mod snippets;
mod teams;
mod watch;

use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;

use switchboard_domain::{ConversationId, InvalidId, WorkspaceId};
use switchboard_messaging::Partitions;
use switchboard_postgres::{Pool, Transaction};
use switchboard_proto::routing::v1 as proto;
use switchboard_proto::routing::v1::routing_service_server::{RoutingService, RoutingServiceServer};
use switchboard_server::auth::principal;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use crate::RoutingError;
use crate::assignment::Dispatcher;
use crate::changes::{self, Changes, Locked};
use crate::event_log::EventFeed;
use crate::store;

pub(crate) use agents::{AssignmentApi, assignment_server};
pub(crate) use notes::{NotesApi, notes_server};

/// Builds the service.
pub(crate) fn routing_server(api: RoutingApi) -> RoutingServiceServer<RoutingApi> {
    RoutingServiceServer::new(api)
}

/// The `RoutingService` implementation.
pub(crate) struct RoutingApi {
    /// The pool of the `routing` schema.
    pub(crate) pool: Pool,
    /// Runs hand-outs after changes and carries the bus partitions and the clock.
    pub(crate) dispatcher: Dispatcher,
    /// Wake-ups of `WatchEvents` streams.
    pub(crate) feed: EventFeed,
    /// Ends the event streams when the process stops.
    pub(crate) shutdown: CancellationToken,
}

/// The caller's workspace.
fn workspace<T>(request: &Request<T>) -> Result<WorkspaceId, Status> {
    Ok(principal(request)?.workspace()?.clone())
}

/// The caller's workspace, for calls that need a workspace admin key.
fn admin_workspace<T>(request: &Request<T>) -> Result<WorkspaceId, Status> {
    Ok(principal(request)?.admin_workspace()?.clone())
}

/// An id argument, parsed (`field` names it in the error).
pub(crate) fn parse_id<T: FromStr<Err = InvalidId>>(field: &str, value: &str) -> Result<T, RoutingError> {
    value
        .parse()
        .map_err(|error| RoutingError::Invalid(format!("{field}: {error}")))
}

/// An optional id argument (empty for none), parsed.
pub(crate) fn optional_id<T: FromStr<Err = InvalidId>>(
    field: &str,
    value: &str,
) -> Result<Option<T>, RoutingError> {
    if value.is_empty() {
        Ok(None)
    } else {
        parse_id(field, value).map(Some)
    }
}

/// Implements one RPC at the boundary: takes the caller's workspace with `$auth`
/// (`workspace` or `admin_workspace`), runs handler `$handler` on the message, and maps its
/// error to a status.
macro_rules! rpc {
    ($self:ident, $request:ident, $auth:ident, $handler:ident) => {{
        let workspace = $auth(&$request)?;
        Ok(Response::new(
            $self.$handler(&workspace, $request.into_inner()).await?,
        ))
    }};
}
pub(crate) use rpc;

#[tonic::async_trait]
impl RoutingService for RoutingApi {
    async fn get_conversation(
        &self,
        request: Request<proto::GetConversationRequest>,
    ) -> Result<Response<proto::GetConversationResponse>, Status> {
        rpc!(self, request, workspace, get_conversation)
    }

    async fn list_conversations(
        &self,
        request: Request<proto::ListConversationsRequest>,
    ) -> Result<Response<proto::ListConversationsResponse>, Status> {
        rpc!(self, request, workspace, list_conversations)
    }

    async fn list_messages(
        &self,
        request: Request<proto::ListMessagesRequest>,
    ) -> Result<Response<proto::ListMessagesResponse>, Status> {
        rpc!(self, request, workspace, list_messages)
    }

    async fn close_conversation(
        &self,
        request: Request<proto::CloseConversationRequest>,
    ) -> Result<Response<proto::CloseConversationResponse>, Status> {
        rpc!(self, request, workspace, close_conversation)
    }

    async fn reopen_conversation(
        &self,
        request: Request<proto::ReopenConversationRequest>,
    ) -> Result<Response<proto::ReopenConversationResponse>, Status> {
        rpc!(self, request, workspace, reopen_conversation)
    }

    async fn get_routing_settings(
        &self,
        request: Request<proto::GetRoutingSettingsRequest>,
    ) -> Result<Response<proto::GetRoutingSettingsResponse>, Status> {
        rpc!(self, request, workspace, get_routing_settings)
    }

    async fn update_routing_settings(
        &self,
        request: Request<proto::UpdateRoutingSettingsRequest>,
    ) -> Result<Response<proto::UpdateRoutingSettingsResponse>, Status> {
        rpc!(self, request, admin_workspace, update_routing_settings)
    }

    async fn archive_conversation(
        &self,
        request: Request<proto::ArchiveConversationRequest>,
    ) -> Result<Response<proto::ArchiveConversationResponse>, Status> {
        rpc!(self, request, workspace, archive_conversation)
    }

    async fn unarchive_conversation(
        &self,
        request: Request<proto::UnarchiveConversationRequest>,
    ) -> Result<Response<proto::UnarchiveConversationResponse>, Status> {
        rpc!(self, request, workspace, unarchive_conversation)
    }

    async fn set_follow_up(
        &self,
        request: Request<proto::SetFollowUpRequest>,
    ) -> Result<Response<proto::SetFollowUpResponse>, Status> {
        rpc!(self, request, workspace, set_follow_up)
    }

    async fn transfer_to_human(
        &self,
        request: Request<proto::TransferToHumanRequest>,
    ) -> Result<Response<proto::TransferToHumanResponse>, Status> {
        rpc!(self, request, workspace, transfer_to_human)
    }

    async fn transfer_to_bot(
        &self,
        request: Request<proto::TransferToBotRequest>,
    ) -> Result<Response<proto::TransferToBotResponse>, Status> {
        rpc!(self, request, workspace, transfer_to_bot)
    }

    async fn pause_bot(
        &self,
        request: Request<proto::PauseBotRequest>,
    ) -> Result<Response<proto::PauseBotResponse>, Status> {
        rpc!(self, request, workspace, pause_bot)
    }

    async fn resume_bot(
        &self,
        request: Request<proto::ResumeBotRequest>,
    ) -> Result<Response<proto::ResumeBotResponse>, Status> {
        rpc!(self, request, workspace, resume_bot)
    }

    async fn check_bot_send(
        &self,
        request: Request<proto::CheckBotSendRequest>,
    ) -> Result<Response<proto::CheckBotSendResponse>, Status> {
        let caller = principal(&request)?;
        // Delivery (internal) acts in the conversation's workspace; api keys in their own.
        let workspace = match caller.require_internal() {
            Ok(()) => None,
            Err(_) => Some(caller.workspace()?.clone()),
        };
        Ok(Response::new(
            self.check_bot_send(workspace.as_ref(), request.into_inner())
                .await?,
        ))
    }

    type WatchEventsStream = watch::EventStream;

    async fn watch_events(
        &self,
        request: Request<proto::WatchEventsRequest>,
    ) -> Result<Response<Self::WatchEventsStream>, Status> {
        rpc!(self, request, workspace, watch_events)
    }
}

/// The work of one conversation change, run in its transaction with the conversation locked.
pub(crate) type Apply<'t> = Pin<Box<dyn Future<Output = Result<(), RoutingError>> + Send + 't>>;

/// Locks conversation `id` of `workspace`, applies `apply`, commits with its events, then
/// runs the hand-outs the change made possible. Returns the conversation as committed.
pub(crate) async fn change<F>(
    pool: &Pool,
    dispatcher: &Dispatcher,
    workspace: &WorkspaceId,
    id: &ConversationId,
    apply: F,
) -> Result<proto::Conversation, RoutingError>
where
    F: for<'t, 'c> FnOnce(&'t Transaction<'c>, &'t Partitions, &'t Locked, &'t mut Changes) -> Apply<'t>,
{
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let locked = changes::lock(&tx, workspace, id).await?;
    let mut changes = Changes::default();
    apply(&tx, dispatcher.partitions(), &locked, &mut changes).await?;
    changes.commit(tx, workspace, dispatcher.partitions()).await?;
    dispatcher.after_commit(&changes).await;
    let client = pool.get().await?;
    store::conversations::find(&client, workspace, id).await
}
