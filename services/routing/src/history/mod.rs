//! The consumer of `routing.contact.pNN`: contacts' resolved inbound events become messages of
//! the contact's open conversation on that channel account (opening one when none is open),
//! exactly once; erasure tombstones purge the contact's history.
//!
//! Exactly once without a separate dedupe table: the message's unique key (channel account,
//! provider message id) decides. A duplicate's transaction is rolled back whole, so a replay
//! never touches or opens a conversation. At most one open conversation per contact and
//! account is a partial unique index, so concurrent first messages agree on one.

mod batch;
mod inbound;
mod outbound;
mod snapshot;
mod status_runs;
mod updates;

use switchboard_domain::{AgentId, ChannelAccountId, ContactId, ConversationId, MessageId, WorkspaceId};
use switchboard_messaging::{Batched, Handler, HandlerError, Incoming};
use switchboard_postgres::CachedStatements as _;
use switchboard_postgres::Pool;
use switchboard_proto::events::v1::{ContactChange, ContactResolvedInbound, Envelope, envelope::Payload};

use crate::RoutingError;
use crate::assignment::Dispatcher;
use crate::changes::Changes;
use crate::error::stored_id;
use crate::policy::WorkspacePolicy;
use inbound::Inbound;

/// The component consuming contacts' events, and their family.
pub const CONTACT_CONSUMER: &str = "routing";
/// The family of contacts' events (`contact.…`).
pub const CONTACT_FAMILY: &str = "contact";
/// The family of delivery's events about outbound messages (`outbound.…`), consumed from
/// `routing.outbound.pNN`.
pub const OUTBOUND_FAMILY: &str = "outbound";

/// What appending one inbound message did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Appended {
    /// A new message in `conversation_id`; `opened` when that conversation was opened for it.
    Added {
        /// The conversation.
        conversation_id: ConversationId,
        /// The message.
        message_id: MessageId,
        /// The conversation was opened by this message.
        opened: bool,
    },
    /// A reaction, edit or delete applied to `message_id`.
    Updated {
        /// The message changed.
        message_id: MessageId,
    },
    /// The same provider message was appended before: nothing changed.
    Duplicate,
    /// Not a message routing keeps (echo, receipt, reaction, …).
    Ignored,
}

/// The ids of a resolved inbound event, parsed where it comes off the bus.
pub(crate) struct InboundIds {
    /// The envelope's workspace.
    pub(crate) workspace: WorkspaceId,
    /// The resolved contact.
    pub(crate) contact: ContactId,
    /// The event's channel account.
    pub(crate) account: ChannelAccountId,
}

impl InboundIds {
    /// Parses the ids of `resolved` (whose event is `event`) in `envelope`.
    pub(crate) fn parse(
        envelope: &Envelope,
        resolved: &ContactResolvedInbound,
        event: &switchboard_proto::events::v1::InboundEvent,
    ) -> Result<Self, RoutingError> {
        Ok(Self {
            workspace: stored_id("event workspace_id", &envelope.workspace_id)?,
            contact: stored_id("event contact_id", &resolved.contact_id)?,
            account: stored_id("event channel_account_id", &event.channel_account_id)?,
        })
    }
}

/// Keeps conversation history from contacts' events.
pub struct History {
    pool: Pool,
    dispatcher: Dispatcher,
    /// Most messages of one partition appended in one transaction.
    batch_size: usize,
}

impl History {
    /// History stored in `pool`; new conversations are routed through `dispatcher`.
    pub fn new(pool: Pool, dispatcher: Dispatcher) -> Self {
        Self {
            pool,
            dispatcher,
            batch_size: 1,
        }
    }

    /// Appends up to `size` prefetched inbound messages of a partition in one transaction
    /// (`bus.batch_size`; 1, the default, appends each in its own).
    #[must_use]
    pub fn with_batch_size(mut self, size: usize) -> Self {
        self.batch_size = size.max(1);
        self
    }

    /// Appends a resolved inbound event of `envelope`'s workspace: a message joins its
    /// conversation; a reaction, edit or delete changes its target message.
    pub async fn append(
        &self,
        envelope: &Envelope,
        resolved: &ContactResolvedInbound,
    ) -> Result<Appended, RoutingError> {
        let new = match Inbound::of(envelope, resolved)? {
            Inbound::Message(new) => new,
            Inbound::Update(event, update) => return self.update(envelope, resolved, event, update).await,
            Inbound::Ignored => return Ok(Appended::Ignored),
        };
        let mut client = self.pool.get().await?;
        // A duplicate is found by the message insert; its transaction is rolled back.
        let tx = client.transaction().await?;
        let policy = WorkspacePolicy::load(&tx, &new.ids.workspace).await?;
        let Some(stored) = inbound::store(&tx, &new, &policy).await? else {
            // A concurrent copy won: nothing of this one may remain.
            tx.rollback().await?;
            return Ok(Appended::Duplicate);
        };
        let mut changes = Changes::default();
        inbound::after_stored(&tx, &self.dispatcher, &new, &stored, &policy, &mut changes).await?;
        changes
            .commit(tx, &new.ids.workspace, self.dispatcher.partitions())
            .await?;
        self.dispatcher.after_commit(&changes).await;
        Ok(Appended::Added {
            conversation_id: stored.conversation.id,
            message_id: stored.message_id,
            opened: stored.conversation.opened,
        })
    }

    /// Deletes every conversation and message of an erased contact.
    pub async fn purge(&self, workspace: &WorkspaceId, contact_id: &ContactId) -> Result<u64, RoutingError> {
        let (workspace, contact_id) = (workspace.as_str(), contact_id.as_str());
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        // Their open assigned conversations no longer count against the agents' capacity.
        let freed = tx
            .query_cached(
                "WITH counted AS (
                     SELECT assignee_id, count(*)::int AS n FROM routing.conversations
                     WHERE workspace_id = $1 AND contact_id = $2 AND status = 'open' AND assignee_id IS NOT NULL
                     GROUP BY assignee_id
                 )
                 UPDATE routing.agents a SET open_count = GREATEST(a.open_count - counted.n, 0)
                 FROM counted WHERE a.id = counted.assignee_id
                 RETURNING a.id",
                &[&workspace, &contact_id],
            )
            .await?;
        let removed = tx
            .execute_cached(
                "DELETE FROM routing.conversations WHERE workspace_id = $1 AND contact_id = $2",
                &[&workspace, &contact_id],
            )
            .await?;
        tx.execute_cached(
            "DELETE FROM routing.messages WHERE workspace_id = $1 AND contact_id = $2",
            &[&workspace, &contact_id],
        )
        .await?;
        tx.execute_cached(
            "DELETE FROM routing.event_log WHERE workspace_id = $1 AND contact_id = $2",
            &[&workspace, &contact_id],
        )
        .await?;
        tx.commit().await?;
        // Only a hint for the hand-out (the sweep covers a team it misses): a malformed id is
        // logged, not a failure of the committed purge.
        let freed_agents = freed
            .iter()
            .filter_map(|row| {
                stored_id::<AgentId>("agents id", row.get(0))
                    .inspect_err(|error| tracing::warn!(error = %error, "purge frees a malformed agent id"))
                    .ok()
            })
            .collect();
        let changes = Changes {
            freed_agents,
            ..Changes::default()
        };
        self.dispatcher.after_commit(&changes).await;
        Ok(removed)
    }
}

impl Handler for History {
    async fn handle(&self, message: &Incoming) -> Result<(), HandlerError> {
        let envelope = message.decode_envelope().map_err(HandlerError::permanent)?;
        let classify = |error: RoutingError| HandlerError::classified(error.failure(), error);
        match &envelope.payload {
            Some(Payload::ContactInbound(resolved)) => {
                let appended = self.append(&envelope, resolved).await.map_err(classify)?;
                tracing::debug!(event_id = %envelope.event_id, ?appended, "inbound event appended");
            }
            Some(Payload::OutboundMessage(outbound)) => {
                let recorded = self
                    .record_outbound(&envelope, outbound)
                    .await
                    .map_err(classify)?;
                tracing::debug!(event_id = %envelope.event_id, ?recorded, "outbound message recorded");
            }
            Some(Payload::OutboundStatus(status)) => {
                let recorded = self.record_status(&envelope, status).await.map_err(classify)?;
                tracing::debug!(event_id = %envelope.event_id, ?recorded, "outbound status recorded");
            }
            Some(Payload::ContactChanged(changed)) if changed.change == ContactChange::Erased as i32 => {
                let ids = WorkspaceId::parse(&envelope.workspace_id)
                    .and_then(|workspace| Ok((workspace, ContactId::parse(&changed.contact_id)?)));
                let (workspace, contact) = match ids {
                    Ok(ids) => ids,
                    // Nothing of it can be stored: there is no history to purge.
                    Err(error) => {
                        tracing::warn!(error = %error, contact_id = %changed.contact_id, "erasure with a malformed id; nothing to purge");
                        return Ok(());
                    }
                };
                let removed = self.purge(&workspace, &contact).await.map_err(classify)?;
                tracing::info!(contact_id = %changed.contact_id, conversations = removed, "erased contact's history purged");
            }
            // Other contact events (created, updated, merged, …) need no history change yet.
            _ => {}
        }
        Ok(())
    }

    fn max_batch(&self) -> usize {
        self.batch_size
    }

    async fn handle_batch(&self, batch: &[Batched]) -> Result<(), HandlerError> {
        self.append_batch(batch).await
    }
}
