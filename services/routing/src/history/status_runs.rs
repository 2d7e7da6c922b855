//! A partition's prefetched outbound events in queue order, with each run of consecutive
//! statuses (delivery's `outbound.status`: sent, delivered, read, failed) applied in one
//! transaction: one event-log write and one commit per run instead of per status. Statuses of
//! one message are applied in order, different messages' pipelined on the connection. Anything
//! else (an outbound message, which may claim the conversation) is handled on its own between
//! the runs, as before.
//!
//! A failure sends the whole batch back to be handled one by one. What an earlier run
//! committed is then met again harmlessly: a status only moves forward, so a replay changes
//! nothing.

use futures_util::future::try_join_all;
use switchboard_messaging::{Batched, Handler as _, HandlerError, groups_by_key};
use switchboard_proto::events::v1::{Envelope, envelope::Payload};
use tracing::Instrument as _;

use super::History;
use super::batch::WorkspaceChanges;
use super::outbound::StatusChange;
use crate::RoutingError;
use crate::event_log::Event;

impl History {
    /// Handles `batch` (decoded as `envelopes`) in queue order: runs of statuses together,
    /// anything else one by one.
    pub(super) async fn status_runs(
        &self,
        batch: &[Batched],
        envelopes: &[Envelope],
    ) -> Result<(), HandlerError> {
        let classify = |error: RoutingError| HandlerError::classified(error.failure(), error);
        let mut run: Vec<(usize, StatusChange<'_>)> = Vec::new();
        for (index, envelope) in envelopes.iter().enumerate() {
            if let Some(Payload::OutboundStatus(status)) = &envelope.payload {
                // A malformed id matches no stored message: nothing to apply.
                if let Some(change) = StatusChange::of(envelope, status).map_err(classify)? {
                    run.push((index, change));
                }
                continue;
            }
            self.apply_run(&run, batch).await.map_err(classify)?;
            run.clear();
            let item = &batch[index];
            self.handle(&item.message).instrument(item.span.clone()).await?;
        }
        self.apply_run(&run, batch).await.map_err(classify)
    }

    /// Applies a run of statuses (each with its position in `batch`) in one transaction.
    async fn apply_run(
        &self,
        run: &[(usize, StatusChange<'_>)],
        batch: &[Batched],
    ) -> Result<(), RoutingError> {
        if run.is_empty() {
            return Ok(());
        }
        let mut client = self.pool.get().await?;
        let transaction = client.transaction().await?;
        let tx = &transaction;
        let groups = groups_by_key(
            run.iter()
                .enumerate()
                .map(|(position, (_, change))| (position, change.message_id.as_str())),
        );
        let applied = try_join_all(groups.iter().map(|group| async move {
            let mut applied = Vec::with_capacity(group.len());
            for &position in group {
                let (index, change) = &run[position];
                let event = change.apply(tx).instrument(batch[*index].span.clone()).await?;
                applied.push((position, event));
            }
            Ok::<_, RoutingError>(applied)
        }))
        .await?;
        let mut events: Vec<Option<Event>> = run.iter().map(|_| None).collect();
        for (position, event) in applied.into_iter().flatten() {
            events[position] = event;
        }
        // Logged in queue order.
        let mut changes = WorkspaceChanges::default();
        for ((_, change), event) in run.iter().zip(events) {
            if let Some(event) = event {
                changes.of(&change.workspace).events.push(event);
            }
        }
        self.commit_changes(transaction, changes).await
    }
}
