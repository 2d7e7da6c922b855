//! Appending a partition's prefetched inbound messages together: one transaction for all of
//! them, one event-log write and one commit per batch instead of per message.
//!
//! Each contact's messages are stored in order, different contacts' side by side (pipelined on
//! the transaction's connection); what follows a stored message (routing of a new
//! conversation, the away message, the bot's turn) then runs message by message in queue
//! order, so the event log reads as it would one by one. Duplicates are found before anything
//! is written (replays of stored messages, and a second copy inside the batch); an insert that
//! still meets a stored copy sends the whole batch back to be handled one by one, where such a
//! copy rolls back alone. A batch holding anything but new inbound messages (a reaction, an
//! edit, an erasure, an outbound event) is handled in queue order by `status_runs`: each run of
//! outbound statuses in one transaction, everything else one by one.

use std::collections::{HashMap, HashSet};

use futures_util::future::try_join_all;
use switchboard_domain::WorkspaceId;
use switchboard_messaging::{Batched, HandlerError, groups_by_key};
use switchboard_postgres::CachedStatements as _;
use switchboard_postgres::Transaction;
use switchboard_proto::events::v1::{Envelope, envelope::Payload};
use tracing::Instrument as _;

use super::inbound::{self, Inbound, NewMessage, Stored};
use super::{Appended, History};
use crate::RoutingError;
use crate::changes::Changes;
use crate::event_log;
use crate::policy::WorkspacePolicy;

impl History {
    /// Appends `batch` in one transaction when it holds only inbound messages; else handles
    /// it in queue order, runs of outbound statuses together and the rest one by one.
    pub(super) async fn append_batch(&self, batch: &[Batched]) -> Result<(), HandlerError> {
        let envelopes = batch
            .iter()
            .map(|item| item.message.decode_envelope().map_err(HandlerError::permanent))
            .collect::<Result<Vec<Envelope>, _>>()?;
        if envelopes
            .iter()
            .any(|envelope| !matches!(envelope.payload, Some(Payload::ContactInbound(_))))
        {
            return self.status_runs(batch, &envelopes).await;
        }
        let mut news = Vec::with_capacity(envelopes.len());
        for (index, envelope) in envelopes.iter().enumerate() {
            let Some(Payload::ContactInbound(resolved)) = &envelope.payload else {
                continue;
            };
            let inbound = Inbound::of(envelope, resolved)
                .map_err(|error| HandlerError::classified(error.failure(), error))?;
            match inbound {
                Inbound::Message(new) => news.push((index, new)),
                Inbound::Ignored => {}
                Inbound::Update(..) => return self.status_runs(batch, &envelopes).await,
            }
        }
        if news.is_empty() {
            // Only events routing does not keep (receipts, echoes): nothing to write.
            return Ok(());
        }
        let spans: Vec<tracing::Span> = news.iter().map(|(index, _)| batch[*index].span.clone()).collect();
        let news: Vec<NewMessage<'_>> = news.into_iter().map(|(_, new)| new).collect();
        let appended = self
            .commit_batch(&news, &spans)
            .await
            .map_err(|error| HandlerError::classified(error.failure(), error))?
            .ok_or_else(|| HandlerError::retryable("a message of the batch met a stored copy"))?;
        for ((new, appended), span) in news.iter().zip(&appended).zip(&spans) {
            span.in_scope(|| {
                tracing::debug!(provider_message_id = %new.message.provider_message_id, ?appended, "inbound event appended");
            });
        }
        Ok(())
    }

    /// Writes each workspace's event log in `transaction`, commits, then runs what follows
    /// the commit (outbox relay wake-up, hand-outs).
    pub(super) async fn commit_changes(
        &self,
        transaction: Transaction<'_>,
        changes: WorkspaceChanges<'_>,
    ) -> Result<(), RoutingError> {
        for (workspace, workspace_changes) in &changes.0 {
            event_log::append(
                &transaction,
                workspace,
                &workspace_changes.events,
                self.dispatcher.partitions(),
            )
            .await?;
        }
        transaction.commit().await?;
        for (_, workspace_changes) in &changes.0 {
            self.dispatcher.after_commit(workspace_changes).await;
        }
        Ok(())
    }

    /// Stores every message in one transaction and commits; `None` (rolled back) when one met
    /// a copy stored since the duplicate check.
    async fn commit_batch(
        &self,
        news: &[NewMessage<'_>],
        spans: &[tracing::Span],
    ) -> Result<Option<Vec<Appended>>, RoutingError> {
        let mut client = self.pool.get().await?;
        let transaction = client.transaction().await?;
        let tx = &transaction;
        let mut policies: HashMap<&WorkspaceId, WorkspacePolicy> = HashMap::new();
        for new in news {
            if !policies.contains_key(&new.ids.workspace) {
                let policy = WorkspacePolicy::load(tx, &new.ids.workspace).await?;
                policies.insert(&new.ids.workspace, policy);
            }
        }
        let fresh = fresh(tx, news).await?;
        // Each contact's messages in order; different contacts side by side.
        let groups = groups_by_key(
            news.iter()
                .enumerate()
                .filter(|(index, _)| fresh[*index])
                .map(|(index, new)| (index, new.ids.contact.as_str())),
        );
        let policies = &policies;
        let stored = try_join_all(groups.iter().map(|group| async move {
            let mut stored = Vec::with_capacity(group.len());
            for &index in group {
                let new = &news[index];
                let policy = &policies[&new.ids.workspace];
                let result = inbound::store(tx, new, policy)
                    .instrument(spans[index].clone())
                    .await?;
                stored.push((index, result));
            }
            Ok::<_, RoutingError>(stored)
        }))
        .await?;
        let mut by_index: Vec<Option<Stored>> = news.iter().map(|_| None).collect();
        for (index, result) in stored.into_iter().flatten() {
            match result {
                Some(stored) => by_index[index] = Some(stored),
                // Dropped without commit: rolled back.
                None => return Ok(None),
            }
        }
        // What follows each message, in queue order; one set of changes per workspace.
        let mut changes = WorkspaceChanges::default();
        for (index, (new, stored)) in news.iter().zip(&by_index).enumerate() {
            let Some(stored) = stored else { continue };
            let policy = &policies[&new.ids.workspace];
            let of_workspace = changes.of(&new.ids.workspace);
            inbound::after_stored(tx, &self.dispatcher, new, stored, policy, of_workspace)
                .instrument(spans[index].clone())
                .await?;
        }
        self.commit_changes(transaction, changes).await?;
        Ok(Some(
            by_index
                .into_iter()
                .map(|stored| match stored {
                    Some(stored) => Appended::Added {
                        conversation_id: stored.conversation.id,
                        message_id: stored.message_id,
                        opened: stored.conversation.opened,
                    },
                    None => Appended::Duplicate,
                })
                .collect(),
        ))
    }
}

/// For each message, whether it is new: not stored before and not an earlier copy's in the
/// batch.
async fn fresh(tx: &Transaction<'_>, news: &[NewMessage<'_>]) -> Result<Vec<bool>, RoutingError> {
    let accounts: Vec<&str> = news.iter().map(|new| new.ids.account.as_str()).collect();
    let provider_ids: Vec<&str> = news
        .iter()
        .map(|new| new.message.provider_message_id.as_str())
        .collect();
    let rows = tx
        .query_cached(
            "SELECT u.account, u.provider_message_id
             FROM unnest($1::text[], $2::text[]) AS u (account, provider_message_id)
             WHERE EXISTS (SELECT 1 FROM routing.messages m
                           WHERE m.channel_account_id = u.account AND m.provider_message_id = u.provider_message_id)",
            &[&accounts, &provider_ids],
        )
        .await?;
    let mut seen: HashSet<(String, String)> = rows.iter().map(|row| (row.get(0), row.get(1))).collect();
    Ok(accounts
        .iter()
        .zip(&provider_ids)
        .map(|(account, id)| seen.insert(((*account).to_owned(), (*id).to_owned())))
        .collect())
}

/// The changes of one batch transaction, per workspace (each workspace has its own event log),
/// in the order the workspaces first appear.
#[derive(Default)]
pub(super) struct WorkspaceChanges<'w>(Vec<(&'w WorkspaceId, Changes)>);

impl<'w> WorkspaceChanges<'w> {
    /// The changes of `workspace`, started empty when it first appears.
    pub(super) fn of(&mut self, workspace: &'w WorkspaceId) -> &mut Changes {
        let position = match self.0.iter().position(|(known, _)| *known == workspace) {
            Some(position) => position,
            None => {
                self.0.push((workspace, Changes::default()));
                self.0.len() - 1
            }
        };
        &mut self.0[position].1
    }
}
