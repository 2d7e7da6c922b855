//! Bot or human: who answers a conversation, the controller version that fences bot sends,
//! the stored pause after an agent's reply, and the hand-over of customer messages to the bot
//! runtime's queue (see `BotTurn` in events.proto).

use switchboard_domain::time::to_timestamp;
use switchboard_domain::{ConversationId, WorkspaceId};
use switchboard_messaging::Partitions;
use switchboard_postgres::CachedStatements as _;
use switchboard_postgres::Transaction;
use switchboard_proto::events::v1::{BotTurn, Envelope, envelope::Payload};

use crate::RoutingError;
use crate::outbox::OUTBOX;

/// The bot runtime's queues: `bots.bot.pNN`, partitioned by conversation.
pub const BOT_CONSUMER: &str = "bots";
/// See [`BOT_CONSUMER`].
pub const BOT_FAMILY: &str = "bot";

/// Longest pause a caller may ask for, in minutes (one day).
pub const MAX_PAUSE_MINUTES: i32 = 1_440;

/// Records `turn` for the bot runtime in the transaction that stores its message.
pub async fn hand_over(
    tx: &Transaction<'_>,
    partitions: &Partitions,
    workspace: &WorkspaceId,
    turn: BotTurn,
) -> Result<(), RoutingError> {
    let envelope = Envelope {
        event_id: switchboard_domain::EventId::generate().into_string(),
        event_type: "bot.turn".to_owned(),
        occurred_at: Some(to_timestamp(chrono::Utc::now())),
        workspace_id: workspace.as_str().to_owned(),
        correlation_id: String::new(),
        causation_id: String::new(),
        partition_key: turn.conversation_id.clone(),
        payload: Some(Payload::BotTurn(turn)),
    };
    OUTBOX.record(tx, &envelope, partitions).await?;
    Ok(())
}

/// Sets the controller (bumping the version when it changes, and ending any pause). Returns
/// whether it changed.
pub async fn set_controller(
    tx: &Transaction<'_>,
    conversation_id: &ConversationId,
    controller: &str,
) -> Result<bool, RoutingError> {
    let changed = tx
        .execute_cached(
            "UPDATE routing.conversations
             SET controller = $2, controller_version = controller_version + 1, bot_paused_until = NULL,
                 revision = revision + 1
             WHERE id = $1 AND controller <> $2",
            &[&conversation_id.as_str(), &controller],
        )
        .await?;
    Ok(changed == 1)
}

/// Pauses the bot for `minutes` more: the deadline becomes max(now, deadline) + minutes.
pub async fn pause(
    tx: &Transaction<'_>,
    conversation_id: &ConversationId,
    minutes: i32,
) -> Result<(), RoutingError> {
    tx.execute_cached(
        "UPDATE routing.conversations
         SET bot_paused_until = GREATEST(now(), coalesce(bot_paused_until, now())) + make_interval(mins => $2),
             revision = revision + 1
         WHERE id = $1",
        &[&conversation_id.as_str(), &minutes],
    )
    .await?;
    Ok(())
}

/// After an agent's reply: the bot (if it controls the conversation) stays paused for at least
/// `minutes` from now; a longer pause is kept. Returns the deadline when the bot is paused.
pub async fn pause_at_least(
    tx: &Transaction<'_>,
    conversation_id: &ConversationId,
    minutes: i32,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, RoutingError> {
    let row = tx
        .query_opt_cached(
            "UPDATE routing.conversations
             SET bot_paused_until = GREATEST(coalesce(bot_paused_until, now()), now() + make_interval(mins => $2)),
                 revision = revision + 1
             WHERE id = $1 AND controller = 'bot'
             RETURNING bot_paused_until",
            &[&conversation_id.as_str(), &minutes],
        )
        .await?;
    Ok(row.map(|row| row.get(0)))
}

/// Ends a pause.
pub async fn resume(tx: &Transaction<'_>, conversation_id: &ConversationId) -> Result<(), RoutingError> {
    tx.execute_cached(
        "UPDATE routing.conversations SET bot_paused_until = NULL, revision = revision + 1 WHERE id = $1",
        &[&conversation_id.as_str()],
    )
    .await?;
    Ok(())
}
