//! SQL of conversations as the API reads and changes them.

use chrono::{DateTime, Utc};
use switchboard_domain::time::to_timestamp as timestamp;
use switchboard_domain::{ConversationId, WorkspaceId};
use switchboard_postgres::{CachedStatements as _, GenericClient, Transaction};
use switchboard_proto::routing::v1 as proto;
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;

use super::{After, Page, page};
use crate::RoutingError;
use crate::changes::Locked;

const CONVERSATION_COLUMNS: &str = "id, contact_id, channel_account_id, channel, status, opened_at, closed_at, \
     last_inbound_at, last_message_at, closing_category, closing_summary, revision, assignee_id, team_id, \
     assigned_at, queued_at, archived_at, follow_up, controller, controller_version, bot_paused_until, \
     contact_snapshot->>'name'";

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
#[tracing::instrument(skip_all, fields(conversation_id = %id))]
pub(crate) async fn find(
    client: &impl GenericClient,
    workspace: &WorkspaceId,
    id: &ConversationId,
) -> Result<proto::Conversation, RoutingError> {
    let row = client
        .query_opt_cached(
            &format!(
                "SELECT {CONVERSATION_COLUMNS} FROM routing.conversations WHERE id = $1 AND workspace_id = $2"
            ),
            &[&id.as_str(), &workspace.as_str()],
        )
        .await?
        .ok_or_else(|| RoutingError::NotFound(format!("conversation {id}")))?;
    Ok(conversation(&row))
}

/// What `ListConversations` selects (every `None` and `false` selects everything).
#[derive(Debug, Default)]
pub(crate) struct Filter<'a> {
    /// Only this contact's.
    pub(crate) contact: Option<&'a str>,
    /// `open` or `closed`.
    pub(crate) status: Option<&'static str>,
    /// Only this agent's.
    pub(crate) assignee: Option<&'a str>,
    /// Only conversations without an agent.
    pub(crate) unassigned: bool,
    /// Only this team's.
    pub(crate) team: Option<&'a str>,
    /// Only this channel's (stored name).
    pub(crate) channel: Option<&'static str>,
    /// Archived ones too.
    pub(crate) include_archived: bool,
    /// Only flagged for follow-up.
    pub(crate) follow_up_only: bool,
    /// Text to find in the search text, LIKE wildcards escaped already.
    pub(crate) query: Option<String>,
}

/// A page of `workspace`'s conversations matching `filter`, newest first.
#[tracing::instrument(skip_all, fields(workspace_id = %workspace))]
pub(crate) async fn list(
    client: &impl GenericClient,
    workspace: &WorkspaceId,
    filter: &Filter<'_>,
    after: &After,
    limit: i64,
) -> Result<Page<proto::Conversation>, RoutingError> {
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
                &workspace.as_str(),
                &filter.contact,
                &filter.status,
                &after.at,
                &after.key,
                &limit,
                &filter.assignee,
                &filter.unassigned,
                &filter.team,
                &filter.channel,
                &filter.include_archived,
                &filter.follow_up_only,
                &filter.query,
            ],
        )
        .await?;
    page(
        &rows,
        limit,
        |row| Ok(conversation(row)),
        |last| (last.get(5), last.get(0)),
    )
}

/// Closes the locked conversation with its closing note.
#[tracing::instrument(skip_all, fields(conversation_id = %conversation.id))]
pub(crate) async fn close(
    tx: &Transaction<'_>,
    conversation: &Locked,
    category: &str,
    summary: &str,
) -> Result<(), RoutingError> {
    tx.execute_cached(
        "UPDATE routing.conversations SET status = 'closed', closed_at = now(), closing_category = $2,
             closing_summary = $3, revision = revision + 1
         WHERE id = $1",
        &[&conversation.id.as_str(), &category, &summary],
    )
    .await?;
    Ok(())
}

/// Reopens the locked conversation; fails when the contact has another one open on the account.
#[tracing::instrument(skip_all, fields(conversation_id = %conversation.id))]
pub(crate) async fn reopen(tx: &Transaction<'_>, conversation: &Locked) -> Result<(), RoutingError> {
    let reopened = tx
        .execute_cached(
            "UPDATE routing.conversations SET status = 'open', closed_at = NULL, closing_category = '',
                 closing_summary = '', revision = revision + 1
             WHERE id = $1",
            &[&conversation.id.as_str()],
        )
        .await;
    match reopened {
        Ok(_) => Ok(()),
        Err(error) if error.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
            Err(RoutingError::FailedPrecondition(format!(
                "contact {} has another open conversation on {}; close it first",
                conversation.contact_id, conversation.channel_account_id
            )))
        }
        Err(error) => Err(error.into()),
    }
}

/// Archives or unarchives the locked conversation; returns whether that changed anything.
#[tracing::instrument(skip_all, fields(conversation_id = %conversation.id))]
pub(crate) async fn set_archived(
    tx: &Transaction<'_>,
    conversation: &Locked,
    archived: bool,
) -> Result<bool, RoutingError> {
    let updated = tx
        .execute_cached(
            "UPDATE routing.conversations
             SET archived_at = CASE WHEN $2 THEN coalesce(archived_at, now()) END, revision = revision + 1
             WHERE id = $1 AND (archived_at IS NOT NULL) <> $2",
            &[&conversation.id.as_str(), &archived],
        )
        .await?;
    Ok(updated == 1)
}

/// Sets or clears the follow-up flag of the locked conversation; returns whether that changed
/// anything.
#[tracing::instrument(skip_all, fields(conversation_id = %conversation.id))]
pub(crate) async fn set_follow_up(
    tx: &Transaction<'_>,
    conversation: &Locked,
    flag: bool,
) -> Result<bool, RoutingError> {
    let updated = tx
        .execute_cached(
            "UPDATE routing.conversations SET follow_up = $2, revision = revision + 1
             WHERE id = $1 AND follow_up <> $2",
            &[&conversation.id.as_str(), &flag],
        )
        .await?;
    Ok(updated == 1)
}

/// What the bot-send fence looks at.
#[derive(Debug)]
pub(crate) struct BotSendState {
    /// `open` or `closed`.
    pub(crate) status: String,
    /// `bot` or `human`.
    pub(crate) controller: String,
    /// Bumped at every hand-over.
    pub(crate) controller_version: i64,
    /// Whether a bot pause is running.
    pub(crate) paused: bool,
}

/// The bot-send state of conversation `id`, in `workspace` when one is given.
#[tracing::instrument(skip_all, fields(conversation_id = %id))]
pub(crate) async fn bot_send_state(
    client: &impl GenericClient,
    workspace: Option<&WorkspaceId>,
    id: &ConversationId,
) -> Result<BotSendState, RoutingError> {
    let row = client
        .query_opt_cached(
            "SELECT status, controller, controller_version, coalesce(bot_paused_until > now(), false)
             FROM routing.conversations WHERE id = $1 AND ($2::text IS NULL OR workspace_id = $2)",
            &[&id.as_str(), &workspace.map(WorkspaceId::as_str)],
        )
        .await?
        .ok_or_else(|| RoutingError::NotFound(format!("conversation {id}")))?;
    Ok(BotSendState {
        status: row.get(0),
        controller: row.get(1),
        controller_version: row.get(2),
        paused: row.get(3),
    })
}

/// The contact snapshot of conversation `id` (what snippets fill their variables from).
#[tracing::instrument(skip_all, fields(conversation_id = %id))]
pub(crate) async fn contact_snapshot(
    client: &impl GenericClient,
    workspace: &WorkspaceId,
    id: &ConversationId,
) -> Result<serde_json::Value, RoutingError> {
    Ok(client
        .query_opt_cached(
            "SELECT contact_snapshot FROM routing.conversations WHERE id = $1 AND workspace_id = $2",
            &[&id.as_str(), &workspace.as_str()],
        )
        .await?
        .ok_or_else(|| RoutingError::NotFound(format!("conversation {id}")))?
        .get(0))
}
