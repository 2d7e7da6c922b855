//! gRPC adapter of `NotesService`: internal notes and comments (with @mentions) on
//! conversations, and snippets with variables. Notes never leave Switchboard.

use chrono::{DateTime, Utc};
use switchboard_domain::time::to_timestamp as timestamp;
use switchboard_domain::{AgentId, NoteId};
use switchboard_postgres::CachedStatements as _;
use switchboard_postgres::{GenericClient, Pool};
use switchboard_proto::common::v1::PageResponse;
use switchboard_proto::routing::v1 as proto;
use switchboard_proto::routing::v1::notes_service_server::{NotesService, NotesServiceServer};
use switchboard_server::paging;
use tokio_postgres::Row;
use tonic::{Request, Response, Status};

use super::{DEFAULT_PAGE_SIZE, conversation_id, find, workspace};
use crate::RoutingError;
use crate::assignment::Dispatcher;
use crate::event_log::{self, Event};

/// Longest note or comment, in characters.
const MAX_NOTE_CHARS: usize = 2_000;

const NOTE_COLUMNS: &str = "id, conversation_id, kind, author_id, body, mentions, created_at, edited_at";

/// Builds the service.
pub(crate) fn notes_server(api: NotesApi) -> NotesServiceServer<NotesApi> {
    NotesServiceServer::new(api)
}

/// The `NotesService` implementation.
pub(crate) struct NotesApi {
    pub(crate) pool: Pool,
    pub(crate) dispatcher: Dispatcher,
}

fn note(row: &Row) -> proto::Note {
    let kind = if row.get::<_, String>(2) == "comment" {
        proto::NoteKind::Comment
    } else {
        proto::NoteKind::Note
    };
    proto::Note {
        id: row.get(0),
        conversation_id: row.get(1),
        kind: kind as i32,
        author_id: row.get(3),
        body: row.get(4),
        mentioned_agent_ids: row.get(5),
        created_at: Some(timestamp(row.get(6))),
        edited_at: row.get::<_, Option<DateTime<Utc>>>(7).map(timestamp),
    }
}

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
fn mentions(body: &str) -> Vec<String> {
    let mut found = Vec::new();
    for word in
        body.split(|c: char| c.is_whitespace() || matches!(c, ',' | '.' | ';' | ':' | '!' | '?' | '(' | ')'))
    {
        if let Some(candidate) = word.strip_prefix('@')
            && let Ok(id) = AgentId::parse(candidate)
        {
            let id = id.into_string();
            if !found.contains(&id) {
                found.push(id);
            }
        }
    }
    found
}

/// Checks that every agent in `ids` belongs to `workspace`.
async fn require_agents(
    client: &impl GenericClient,
    workspace: &str,
    ids: &[String],
    field: &str,
) -> Result<(), RoutingError> {
    if ids.is_empty() {
        return Ok(());
    }
    let known: Vec<String> = client
        .query_cached(
            "SELECT id FROM routing.agents WHERE workspace_id = $1 AND id = ANY($2)",
            &[&workspace, &ids],
        )
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let unknown: Vec<&String> = ids.iter().filter(|id| !known.contains(id)).collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(RoutingError::NotFound(format!("{field}: agents {unknown:?}")))
    }
}

/// The event of each new mention.
fn mention_events(note: &proto::Note, contact_id: &str, agents: &[String]) -> Vec<Event> {
    agents
        .iter()
        .map(|agent| {
            Event::conversation(
                &note.conversation_id,
                contact_id,
                "agent.mentioned",
                serde_json::json!({ "agent_id": agent, "note_id": note.id, "author_id": note.author_id }),
            )
        })
        .collect()
}

fn note_id(value: &str) -> Result<String, Status> {
    NoteId::parse(value)
        .map(NoteId::into_string)
        .map_err(|error| Status::invalid_argument(format!("id: {error}")))
}

#[tonic::async_trait]
impl NotesService for NotesApi {
    async fn add_note(
        &self,
        request: Request<proto::AddNoteRequest>,
    ) -> Result<Response<proto::AddNoteResponse>, Status> {
        let workspace = workspace(&request)?;
        let request = request.into_inner();
        let conversation = conversation_id("conversation_id", &request.conversation_id)?;
        let author = AgentId::parse(&request.author_id)
            .map(AgentId::into_string)
            .map_err(|error| Status::invalid_argument(format!("author_id: {error}")))?;
        let body = note_body(&request.body)?;
        let kind = match proto::NoteKind::try_from(request.kind) {
            Ok(proto::NoteKind::Unspecified | proto::NoteKind::Note) => "note",
            Ok(proto::NoteKind::Comment) => "comment",
            Err(_) => return Err(Status::invalid_argument("kind: not a NoteKind value")),
        };
        let mentioned = if kind == "comment" {
            mentions(&body)
        } else {
            Vec::new()
        };
        let mut client = self.pool.get().await.map_err(RoutingError::from)?;
        let tx = client.transaction().await.map_err(RoutingError::from)?;
        let found = find(&tx, &workspace, &conversation).await?;
        require_agents(&tx, &workspace, std::slice::from_ref(&author), "author_id").await?;
        require_agents(&tx, &workspace, &mentioned, "mentions").await?;
        let row = tx
            .query_one_cached(
                &format!(
                    "INSERT INTO routing.notes (id, workspace_id, conversation_id, kind, author_id, body, mentions)
                     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {NOTE_COLUMNS}"
                ),
                &[
                    &NoteId::generate().into_string(),
                    &workspace,
                    &conversation,
                    &kind,
                    &author,
                    &body,
                    &mentioned,
                ],
            )
            .await
            .map_err(RoutingError::from)?;
        let added = note(&row);
        let mut events = vec![Event::conversation(
            &conversation,
            &found.contact_id,
            "note.added",
            serde_json::json!({ "note_id": added.id, "kind": kind, "author_id": author }),
        )];
        events.extend(mention_events(&added, &found.contact_id, &mentioned));
        event_log::append(&tx, &workspace, &events, self.dispatcher.partitions()).await?;
        tx.commit().await.map_err(RoutingError::from)?;
        self.dispatcher.events_written();
        Ok(Response::new(proto::AddNoteResponse { note: Some(added) }))
    }

    async fn edit_note(
        &self,
        request: Request<proto::EditNoteRequest>,
    ) -> Result<Response<proto::EditNoteResponse>, Status> {
        let workspace = workspace(&request)?;
        let request = request.into_inner();
        let id = note_id(&request.id)?;
        let body = note_body(&request.body)?;
        let mut client = self.pool.get().await.map_err(RoutingError::from)?;
        let tx = client.transaction().await.map_err(RoutingError::from)?;
        let current = tx
            .query_opt_cached(
                &format!(
                    "SELECT {NOTE_COLUMNS} FROM routing.notes WHERE id = $1 AND workspace_id = $2 FOR UPDATE"
                ),
                &[&id, &workspace],
            )
            .await
            .map_err(RoutingError::from)?
            .map(|row| note(&row))
            .ok_or_else(|| RoutingError::NotFound(format!("note {id}")))?;
        let comment = current.kind == proto::NoteKind::Comment as i32;
        let mentioned = if comment { mentions(&body) } else { Vec::new() };
        require_agents(&tx, &workspace, &mentioned, "mentions").await?;
        let new_mentions: Vec<String> = mentioned
            .iter()
            .filter(|agent| !current.mentioned_agent_ids.contains(agent))
            .cloned()
            .collect();
        let mut all_mentions = current.mentioned_agent_ids.clone();
        all_mentions.extend(new_mentions.iter().cloned());
        let row = tx
            .query_one_cached(
                &format!(
                    "UPDATE routing.notes SET body = $2, mentions = $3, edited_at = now() WHERE id = $1
                     RETURNING {NOTE_COLUMNS}"
                ),
                &[&id, &body, &all_mentions],
            )
            .await
            .map_err(RoutingError::from)?;
        let edited = note(&row);
        let found = find(&tx, &workspace, &edited.conversation_id).await?;
        let mut events = vec![Event::conversation(
            &edited.conversation_id,
            &found.contact_id,
            "note.edited",
            serde_json::json!({ "note_id": id }),
        )];
        events.extend(mention_events(&edited, &found.contact_id, &new_mentions));
        event_log::append(&tx, &workspace, &events, self.dispatcher.partitions()).await?;
        tx.commit().await.map_err(RoutingError::from)?;
        self.dispatcher.events_written();
        Ok(Response::new(proto::EditNoteResponse { note: Some(edited) }))
    }

    async fn delete_note(
        &self,
        request: Request<proto::DeleteNoteRequest>,
    ) -> Result<Response<proto::DeleteNoteResponse>, Status> {
        let workspace = workspace(&request)?;
        let id = note_id(&request.get_ref().id)?;
        let mut client = self.pool.get().await.map_err(RoutingError::from)?;
        let tx = client.transaction().await.map_err(RoutingError::from)?;
        let row = tx
            .query_opt_cached(
                "DELETE FROM routing.notes WHERE id = $1 AND workspace_id = $2 RETURNING conversation_id",
                &[&id, &workspace],
            )
            .await
            .map_err(RoutingError::from)?
            .ok_or_else(|| RoutingError::NotFound(format!("note {id}")))?;
        let conversation: String = row.get(0);
        let found = find(&tx, &workspace, &conversation).await?;
        let event = Event::conversation(
            &conversation,
            &found.contact_id,
            "note.deleted",
            serde_json::json!({ "note_id": id }),
        );
        event_log::append(&tx, &workspace, &[event], self.dispatcher.partitions()).await?;
        tx.commit().await.map_err(RoutingError::from)?;
        self.dispatcher.events_written();
        Ok(Response::new(proto::DeleteNoteResponse {}))
    }

    async fn list_notes(
        &self,
        request: Request<proto::ListNotesRequest>,
    ) -> Result<Response<proto::ListNotesResponse>, Status> {
        let workspace = workspace(&request)?;
        let request = request.into_inner();
        let conversation = conversation_id("conversation_id", &request.conversation_id)?;
        let limit = paging::page_size(request.page.as_ref(), DEFAULT_PAGE_SIZE);
        let (after_at, after_id) = paging::parse_cursor(request.page.as_ref())
            .map_err(RoutingError::from)?
            .unzip();
        let client = self.pool.get().await.map_err(RoutingError::from)?;
        find(&client, &workspace, &conversation).await?;
        let rows = client
            .query_cached(
                &format!(
                    "SELECT {NOTE_COLUMNS} FROM routing.notes
                     WHERE conversation_id = $1 AND workspace_id = $2
                       AND ($3::timestamptz IS NULL OR (created_at, id) > ($3, $4))
                     ORDER BY created_at, id LIMIT $5"
                ),
                &[&conversation, &workspace, &after_at, &after_id, &limit],
            )
            .await
            .map_err(RoutingError::from)?;
        let next_page_token = paging::next_page_token(rows.len(), limit, || {
            let last = &rows[rows.len() - 1];
            (last.get(6), last.get(0))
        });
        Ok(Response::new(proto::ListNotesResponse {
            notes: rows.iter().map(note).collect(),
            page: Some(PageResponse { next_page_token }),
        }))
    }

    async fn create_snippet(
        &self,
        request: Request<proto::CreateSnippetRequest>,
    ) -> Result<Response<proto::CreateSnippetResponse>, Status> {
        self.create_snippet_rpc(request).await
    }

    async fn update_snippet(
        &self,
        request: Request<proto::UpdateSnippetRequest>,
    ) -> Result<Response<proto::UpdateSnippetResponse>, Status> {
        self.update_snippet_rpc(request).await
    }

    async fn delete_snippet(
        &self,
        request: Request<proto::DeleteSnippetRequest>,
    ) -> Result<Response<proto::DeleteSnippetResponse>, Status> {
        self.delete_snippet_rpc(request).await
    }

    async fn list_snippets(
        &self,
        request: Request<proto::ListSnippetsRequest>,
    ) -> Result<Response<proto::ListSnippetsResponse>, Status> {
        self.list_snippets_rpc(request).await
    }

    async fn render_snippet(
        &self,
        request: Request<proto::RenderSnippetRequest>,
    ) -> Result<Response<proto::RenderSnippetResponse>, Status> {
        self.render_snippet_rpc(request).await
    }
}
