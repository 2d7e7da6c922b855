//! SQL of a conversation's message history as `ListMessages` shows it: reactions, earlier
//! versions after edits and deletes, and reply links.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use prost::Message as _;
use switchboard_domain::time::to_timestamp as timestamp;
use switchboard_domain::{ConversationId, WorkspaceId};
use switchboard_postgres::{CachedStatements as _, GenericClient};
use switchboard_proto::events::v1::InboundMessage;
use switchboard_proto::routing::v1 as proto;

use super::Page;
use crate::{RoutingError, delivery_status};

/// Decodes a stored message body.
fn decode(body: &[u8]) -> Result<InboundMessage, RoutingError> {
    InboundMessage::decode(body).map_err(|error| RoutingError::Corrupt(format!("message body: {error}")))
}

/// The API form of a stored author kind.
fn author_kind(stored: &str) -> proto::AuthorKind {
    match stored {
        "customer" => proto::AuthorKind::Customer,
        "agent" => proto::AuthorKind::Agent,
        "bot" => proto::AuthorKind::Bot,
        "workflow" => proto::AuthorKind::Workflow,
        "broadcast" => proto::AuthorKind::Broadcast,
        "api" => proto::AuthorKind::Api,
        _ => proto::AuthorKind::Unspecified,
    }
}

/// The API form of the stored reactions.
fn reactions(stored: &serde_json::Value) -> Vec<proto::MessageReaction> {
    stored
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|item| proto::MessageReaction {
                    emoji: item["emoji"].as_str().unwrap_or_default().to_owned(),
                    reacted_at: item["at"]
                        .as_str()
                        .and_then(|at| DateTime::parse_from_rfc3339(at).ok())
                        .map(|at| timestamp(at.with_timezone(&Utc))),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Earlier versions of `ids`, by message, oldest first.
async fn revisions(
    client: &impl GenericClient,
    ids: &[String],
) -> Result<HashMap<String, Vec<proto::MessageRevision>>, RoutingError> {
    let mut revisions: HashMap<String, Vec<proto::MessageRevision>> = HashMap::new();
    for row in client
        .query_cached(
            "SELECT message_id, body, replaced_at FROM routing.message_revisions
             WHERE message_id = ANY($1) ORDER BY message_id, revision",
            &[&ids],
        )
        .await?
    {
        let body: Vec<u8> = row.get(1);
        revisions
            .entry(row.get(0))
            .or_default()
            .push(proto::MessageRevision {
                content: Some(decode(&body)?),
                replaced_at: Some(timestamp(row.get(2))),
            });
    }
    Ok(revisions)
}

/// A page of conversation `id`'s messages in provider time order, after `after` (sort time,
/// arrival number).
#[tracing::instrument(skip_all, fields(conversation_id = %id))]
pub(crate) async fn list(
    client: &impl GenericClient,
    workspace: &WorkspaceId,
    id: &ConversationId,
    after: Option<(DateTime<Utc>, i64)>,
    limit: i64,
) -> Result<Page<proto::Message>, RoutingError> {
    let (after_at, after_arrival) = after.unzip();
    let rows = client
        .query_cached(
            "SELECT id, direction, author_kind, provider_message_id, body, provider_timestamp, received_at,
                    arrival, coalesce(provider_timestamp, received_at) AS sort_at,
                    reply_to_message_id, reactions, edited_at, deleted_at, status, author_id
             FROM routing.messages
             WHERE conversation_id = $1 AND workspace_id = $2
               AND ($3::timestamptz IS NULL OR (coalesce(provider_timestamp, received_at), arrival) > ($3, $4))
             ORDER BY coalesce(provider_timestamp, received_at), arrival LIMIT $5",
            &[&id.as_str(), &workspace.as_str(), &after_at, &after_arrival, &limit],
        )
        .await?;
    let ids: Vec<String> = rows.iter().map(|row| row.get(0)).collect();
    let mut revisions = revisions(client, &ids).await?;
    super::page(
        &rows,
        limit,
        |row| {
            let id_of_message: String = row.get(0);
            let body: Vec<u8> = row.get(4);
            Ok(proto::Message {
                conversation_id: id.as_str().to_owned(),
                inbound: row.get::<_, String>(1) == "inbound",
                author_kind: author_kind(&row.get::<_, String>(2)) as i32,
                provider_message_id: row.get::<_, Option<String>>(3).unwrap_or_default(),
                content: Some(decode(&body)?),
                provider_timestamp: row.get::<_, Option<DateTime<Utc>>>(5).map(timestamp),
                received_at: Some(timestamp(row.get(6))),
                reply_to_message_id: row.get::<_, Option<String>>(9).unwrap_or_default(),
                reactions: reactions(&row.get(10)),
                revisions: revisions.remove(&id_of_message).unwrap_or_default(),
                edited_at: row.get::<_, Option<DateTime<Utc>>>(11).map(timestamp),
                deleted_at: row.get::<_, Option<DateTime<Utc>>>(12).map(timestamp),
                status: delivery_status::from_stored(row.get::<_, Option<String>>(13).as_deref()) as i32,
                author_id: row.get::<_, Option<String>>(14).unwrap_or_default(),
                id: id_of_message,
            })
        },
        |last| (last.get(8), last.get::<_, i64>(7).to_string()),
    )
}
