//! SQL of internal notes and comments on conversations.

use chrono::{DateTime, Utc};
use switchboard_domain::time::to_timestamp as timestamp;
use switchboard_domain::{AgentId, ConversationId, NoteId, WorkspaceId};
use switchboard_postgres::{CachedStatements as _, GenericClient, Transaction};
use switchboard_proto::routing::v1 as proto;
use tokio_postgres::Row;

use super::{After, Page, page};
use crate::RoutingError;

const NOTE_COLUMNS: &str = "id, conversation_id, kind, author_id, body, mentions, created_at, edited_at";

/// A note row (selected with `NOTE_COLUMNS`) as the API shows it.
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

/// A new note.
#[derive(Debug)]
pub(crate) struct NewNote<'a> {
    /// The conversation it is on.
    pub(crate) conversation: &'a ConversationId,
    /// `note` or `comment`.
    pub(crate) kind: &'static str,
    /// Who wrote it.
    pub(crate) author: &'a AgentId,
    /// The text, checked.
    pub(crate) body: &'a str,
    /// The agents it mentions.
    pub(crate) mentions: &'a [AgentId],
}

/// Stores a new note.
#[tracing::instrument(skip_all, fields(conversation_id = %new.conversation))]
pub(crate) async fn insert(
    tx: &Transaction<'_>,
    workspace: &WorkspaceId,
    new: &NewNote<'_>,
) -> Result<proto::Note, RoutingError> {
    let mentions: Vec<&str> = new.mentions.iter().map(AgentId::as_str).collect();
    let row = tx
        .query_one_cached(
            &format!(
                "INSERT INTO routing.notes (id, workspace_id, conversation_id, kind, author_id, body, mentions)
                 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {NOTE_COLUMNS}"
            ),
            &[
                &NoteId::generate().as_str(),
                &workspace.as_str(),
                &new.conversation.as_str(),
                &new.kind,
                &new.author.as_str(),
                &new.body,
                &mentions,
            ],
        )
        .await?;
    Ok(note(&row))
}

/// Note `id` of `workspace`, locked for a change.
#[tracing::instrument(skip_all, fields(note_id = %id))]
pub(crate) async fn lock(
    tx: &Transaction<'_>,
    workspace: &WorkspaceId,
    id: &NoteId,
) -> Result<proto::Note, RoutingError> {
    tx.query_opt_cached(
        &format!("SELECT {NOTE_COLUMNS} FROM routing.notes WHERE id = $1 AND workspace_id = $2 FOR UPDATE"),
        &[&id.as_str(), &workspace.as_str()],
    )
    .await?
    .map(|row| note(&row))
    .ok_or_else(|| RoutingError::NotFound(format!("note {id}")))
}

/// Replaces note `id`'s body and mentions.
#[tracing::instrument(skip_all, fields(note_id = %id))]
pub(crate) async fn update(
    tx: &Transaction<'_>,
    id: &NoteId,
    body: &str,
    mentions: &[String],
) -> Result<proto::Note, RoutingError> {
    let row = tx
        .query_one_cached(
            &format!(
                "UPDATE routing.notes SET body = $2, mentions = $3, edited_at = now() WHERE id = $1
                 RETURNING {NOTE_COLUMNS}"
            ),
            &[&id.as_str(), &body, &mentions],
        )
        .await?;
    Ok(note(&row))
}

/// Deletes note `id` of `workspace`; returns its conversation.
#[tracing::instrument(skip_all, fields(note_id = %id))]
pub(crate) async fn delete(
    tx: &Transaction<'_>,
    workspace: &WorkspaceId,
    id: &NoteId,
) -> Result<ConversationId, RoutingError> {
    let conversation: String = tx
        .query_opt_cached(
            "DELETE FROM routing.notes WHERE id = $1 AND workspace_id = $2 RETURNING conversation_id",
            &[&id.as_str(), &workspace.as_str()],
        )
        .await?
        .ok_or_else(|| RoutingError::NotFound(format!("note {id}")))?
        .get(0);
    super::stored_id("note conversation_id", &conversation)
}

/// A page of conversation `conversation`'s notes, oldest first.
#[tracing::instrument(skip_all, fields(conversation_id = %conversation))]
pub(crate) async fn list(
    client: &impl GenericClient,
    workspace: &WorkspaceId,
    conversation: &ConversationId,
    after: &After,
    limit: i64,
) -> Result<Page<proto::Note>, RoutingError> {
    let rows = client
        .query_cached(
            &format!(
                "SELECT {NOTE_COLUMNS} FROM routing.notes
                 WHERE conversation_id = $1 AND workspace_id = $2
                   AND ($3::timestamptz IS NULL OR (created_at, id) > ($3, $4))
                 ORDER BY created_at, id LIMIT $5"
            ),
            &[
                &conversation.as_str(),
                &workspace.as_str(),
                &after.at,
                &after.key,
                &limit,
            ],
        )
        .await?;
    page(
        &rows,
        limit,
        |row| Ok(note(row)),
        |last| (last.get(6), last.get(0)),
    )
}
