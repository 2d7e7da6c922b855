//! gRPC adapter of `NotesService`: internal notes and comments (with @mentions) on
//! conversations, and snippets with variables. Notes never leave Switchboard.

use switchboard_domain::{AgentId, ContactId, ConversationId, NoteId, WorkspaceId};
use switchboard_postgres::{GenericClient, Pool, Transaction};
use switchboard_proto::routing::v1 as proto;
use switchboard_proto::routing::v1::notes_service_server::{NotesService, NotesServiceServer};
use switchboard_server::paging;
use tonic::{Request, Response, Status};

use super::{admin_workspace, parse_id, rpc, workspace};
use crate::RoutingError;
use crate::assignment::Dispatcher;
use crate::event_log::{self, Event};
use crate::store::notes::NewNote;
use crate::store::{self, After};

/// Longest note or comment, in characters.
const MAX_NOTE_CHARS: usize = 2_000;

/// Builds the service.
pub(crate) fn notes_server(api: NotesApi) -> NotesServiceServer<NotesApi> {
    NotesServiceServer::new(api)
}

/// The `NotesService` implementation.
pub(crate) struct NotesApi {
    /// The pool of the `routing` schema.
    pub(crate) pool: Pool,
    /// Carries the bus partitions and wakes the event watchers after a commit.
    pub(crate) dispatcher: Dispatcher,
}

/// A note's body, trimmed and checked.
fn note_body(body: &str) -> Result<String, RoutingError> {
    let body = body.trim();
    if body.is_empty() || body.chars().count() > MAX_NOTE_CHARS {
        return Err(RoutingError::Invalid(format!(
            "body: 1 to {MAX_NOTE_CHARS} characters"
        )));
    }
    Ok(body.to_owned())
}

/// The `@agent_…` mentions of a comment, in order of first appearance, without repeats.
fn mentions(body: &str) -> Vec<AgentId> {
    let mut found = Vec::new();
    for word in
        body.split(|c: char| c.is_whitespace() || matches!(c, ',' | '.' | ';' | ':' | '!' | '?' | '(' | ')'))
    {
        if let Some(candidate) = word.strip_prefix('@')
            && let Ok(id) = AgentId::parse(candidate)
            && !found.contains(&id)
        {
            found.push(id);
        }
    }
    found
}

/// Checks that every agent in `ids` belongs to `workspace`.
async fn require_agents(
    client: &impl GenericClient,
    workspace: &WorkspaceId,
    ids: &[AgentId],
    field: &str,
) -> Result<(), RoutingError> {
    if ids.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = ids.iter().map(AgentId::as_str).collect();
    let known = store::agents::known(client, workspace, &ids).await?;
    let unknown: Vec<&&str> = ids
        .iter()
        .filter(|id| !known.iter().any(|known| known == **id))
        .collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(RoutingError::NotFound(format!("{field}: agents {unknown:?}")))
    }
}

/// The event of each new mention in `note` of `conversation`.
fn mention_events(
    conversation: &ConversationId,
    note: &proto::Note,
    contact_id: &ContactId,
    agents: &[AgentId],
) -> Vec<Event> {
    agents
        .iter()
        .map(|agent| {
            Event::conversation(
                conversation,
                contact_id,
                "agent.mentioned",
                serde_json::json!({ "agent_id": agent, "note_id": note.id, "author_id": note.author_id }),
            )
        })
        .collect()
}

impl NotesApi {
    /// Writes `events` to the event log, commits, and wakes the event watchers.
    async fn commit(
        &self,
        tx: Transaction<'_>,
        workspace: &WorkspaceId,
        events: &[Event],
    ) -> Result<(), RoutingError> {
        event_log::append(&tx, workspace, events, self.dispatcher.partitions()).await?;
        tx.commit().await?;
        self.dispatcher.events_written();
        Ok(())
    }

    /// Adds a note or comment; mentioned agents get an event each.
    async fn add_note(
        &self,
        workspace: &WorkspaceId,
        request: proto::AddNoteRequest,
    ) -> Result<proto::AddNoteResponse, RoutingError> {
        let conversation: ConversationId = parse_id("conversation_id", &request.conversation_id)?;
        let author: AgentId = parse_id("author_id", &request.author_id)?;
        let body = note_body(&request.body)?;
        let kind = match proto::NoteKind::try_from(request.kind) {
            Ok(proto::NoteKind::Unspecified | proto::NoteKind::Note) => "note",
            Ok(proto::NoteKind::Comment) => "comment",
            Err(_) => return Err(RoutingError::Invalid("kind: not a NoteKind value".to_owned())),
        };
        let mentioned = if kind == "comment" {
            mentions(&body)
        } else {
            Vec::new()
        };
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let found = store::conversations::find(&tx, workspace, &conversation).await?;
        let contact: ContactId = store::stored_id("conversation contact_id", &found.contact_id)?;
        require_agents(&tx, workspace, std::slice::from_ref(&author), "author_id").await?;
        require_agents(&tx, workspace, &mentioned, "mentions").await?;
        let new = NewNote {
            conversation: &conversation,
            kind,
            author: &author,
            body: &body,
            mentions: &mentioned,
        };
        let added = store::notes::insert(&tx, workspace, &new).await?;
        let mut events = vec![Event::conversation(
            &conversation,
            &contact,
            "note.added",
            serde_json::json!({ "note_id": added.id, "kind": kind, "author_id": author }),
        )];
        events.extend(mention_events(&conversation, &added, &contact, &mentioned));
        self.commit(tx, workspace, &events).await?;
        Ok(proto::AddNoteResponse { note: Some(added) })
    }

    /// Replaces a note's body; agents newly mentioned get an event each.
    async fn edit_note(
        &self,
        workspace: &WorkspaceId,
        request: proto::EditNoteRequest,
    ) -> Result<proto::EditNoteResponse, RoutingError> {
        let id: NoteId = parse_id("id", &request.id)?;
        let body = note_body(&request.body)?;
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let current = store::notes::lock(&tx, workspace, &id).await?;
        let comment = current.kind == proto::NoteKind::Comment as i32;
        let mentioned = if comment { mentions(&body) } else { Vec::new() };
        require_agents(&tx, workspace, &mentioned, "mentions").await?;
        let new_mentions: Vec<AgentId> = mentioned
            .into_iter()
            .filter(|agent| {
                !current
                    .mentioned_agent_ids
                    .iter()
                    .any(|known| known == agent.as_str())
            })
            .collect();
        let mut all_mentions = current.mentioned_agent_ids.clone();
        all_mentions.extend(new_mentions.iter().map(|agent| agent.as_str().to_owned()));
        let edited = store::notes::update(&tx, &id, &body, &all_mentions).await?;
        let conversation: ConversationId = store::stored_id("note conversation_id", &edited.conversation_id)?;
        let found = store::conversations::find(&tx, workspace, &conversation).await?;
        let contact: ContactId = store::stored_id("conversation contact_id", &found.contact_id)?;
        let mut events = vec![Event::conversation(
            &conversation,
            &contact,
            "note.edited",
            serde_json::json!({ "note_id": id }),
        )];
        events.extend(mention_events(&conversation, &edited, &contact, &new_mentions));
        self.commit(tx, workspace, &events).await?;
        Ok(proto::EditNoteResponse { note: Some(edited) })
    }

    /// Deletes a note.
    async fn delete_note(
        &self,
        workspace: &WorkspaceId,
        request: proto::DeleteNoteRequest,
    ) -> Result<proto::DeleteNoteResponse, RoutingError> {
        let id: NoteId = parse_id("id", &request.id)?;
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let conversation = store::notes::delete(&tx, workspace, &id).await?;
        let found = store::conversations::find(&tx, workspace, &conversation).await?;
        let contact: ContactId = store::stored_id("conversation contact_id", &found.contact_id)?;
        let event = Event::conversation(
            &conversation,
            &contact,
            "note.deleted",
            serde_json::json!({ "note_id": id }),
        );
        self.commit(tx, workspace, &[event]).await?;
        Ok(proto::DeleteNoteResponse {})
    }

    /// Lists a conversation's notes, oldest first.
    async fn list_notes(
        &self,
        workspace: &WorkspaceId,
        request: proto::ListNotesRequest,
    ) -> Result<proto::ListNotesResponse, RoutingError> {
        let conversation: ConversationId = parse_id("conversation_id", &request.conversation_id)?;
        let limit = paging::page_size(request.page.as_ref(), store::DEFAULT_PAGE_SIZE);
        let after = After::of(request.page.as_ref())?;
        let client = self.pool.get().await?;
        store::conversations::find(&client, workspace, &conversation).await?;
        let page = store::notes::list(&client, workspace, &conversation, &after, limit).await?;
        Ok(proto::ListNotesResponse {
            page: Some(page.response()),
            notes: page.items,
        })
    }
}

#[tonic::async_trait]
impl NotesService for NotesApi {
    async fn add_note(
        &self,
        request: Request<proto::AddNoteRequest>,
    ) -> Result<Response<proto::AddNoteResponse>, Status> {
        rpc!(self, request, workspace, add_note)
    }

    async fn edit_note(
        &self,
        request: Request<proto::EditNoteRequest>,
    ) -> Result<Response<proto::EditNoteResponse>, Status> {
        rpc!(self, request, workspace, edit_note)
    }

    async fn delete_note(
        &self,
        request: Request<proto::DeleteNoteRequest>,
    ) -> Result<Response<proto::DeleteNoteResponse>, Status> {
        rpc!(self, request, workspace, delete_note)
    }

    async fn list_notes(
        &self,
        request: Request<proto::ListNotesRequest>,
    ) -> Result<Response<proto::ListNotesResponse>, Status> {
        rpc!(self, request, workspace, list_notes)
    }

    async fn create_snippet(
        &self,
        request: Request<proto::CreateSnippetRequest>,
    ) -> Result<Response<proto::CreateSnippetResponse>, Status> {
        rpc!(self, request, admin_workspace, create_snippet)
    }

    async fn update_snippet(
        &self,
        request: Request<proto::UpdateSnippetRequest>,
    ) -> Result<Response<proto::UpdateSnippetResponse>, Status> {
        rpc!(self, request, admin_workspace, update_snippet)
    }

    async fn delete_snippet(
        &self,
        request: Request<proto::DeleteSnippetRequest>,
    ) -> Result<Response<proto::DeleteSnippetResponse>, Status> {
        rpc!(self, request, admin_workspace, delete_snippet)
    }

    async fn list_snippets(
        &self,
        request: Request<proto::ListSnippetsRequest>,
    ) -> Result<Response<proto::ListSnippetsResponse>, Status> {
        rpc!(self, request, workspace, list_snippets)
    }

    async fn render_snippet(
        &self,
        request: Request<proto::RenderSnippetRequest>,
    ) -> Result<Response<proto::RenderSnippetResponse>, Status> {
        rpc!(self, request, workspace, render_snippet)
    }
}
