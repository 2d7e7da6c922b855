//! Resolving a partition's prefetched events together: one transaction for all of them (events
//! of different senders pipelined on its connection, each sender's in order), one commit, and
//! their resolved events published pipelined with one confirm round trip. An event that needs
//! a transaction of its own (a new contact over the quota, a race with another consumer) sends
//! the whole batch back to be handled one by one. Status receipts are only counted (delivery
//! applies them).

use std::time::Instant;

use futures_util::future::try_join_all;
use switchboard_messaging::{Batched, HandlerError, groups_by_key};
use tracing::Instrument as _;

use super::{Applied, Decoded, Outcome, RECEIPT, Resolver, apply, forwarded, label};
use crate::ContactsError;

impl Resolver {
    /// Resolves `batch` in one transaction and publishes what it forwards.
    pub(super) async fn resolve_batch(&self, batch: &[Batched]) -> Result<(), HandlerError> {
        let started = Instant::now();
        let mut decoded = Vec::with_capacity(batch.len());
        let mut spans = Vec::with_capacity(batch.len());
        for item in batch {
            let event = Decoded::of(&item.message)?;
            if event.is_receipt() {
                self.metrics
                    .resolved(event.channel, RECEIPT, std::time::Duration::ZERO);
                continue;
            }
            spans.push(item.span.in_scope(|| event.span()));
            decoded.push(event);
        }
        if decoded.is_empty() {
            return Ok(());
        }
        let outcomes = self
            .commit_batch(&decoded, &spans)
            .await
            .map_err(|error| HandlerError::classified(error.failure(), error))?
            .ok_or_else(|| HandlerError::retryable("an event of the batch needs a transaction of its own"))?;
        if !self.topology.is_declared() {
            self.topology.declare().await.map_err(HandlerError::unavailable)?;
        }
        let mut messages = Vec::new();
        for ((event, outcome), span) in decoded.iter().zip(&outcomes).zip(&spans) {
            span.record("outcome", label(outcome));
            if let Outcome::Forward { contact, created, .. } = outcome {
                span.record("contact_id", contact.id.as_str());
                for message in forwarded(
                    &event.envelope,
                    event.event(),
                    contact,
                    *created,
                    &self.partitions,
                ) {
                    messages.push((message, true, span.clone()));
                }
            }
        }
        let (_, failure) = self.publisher.publish_pipelined(messages).await;
        if let Some(error) = failure {
            self.topology.note_publish_error(&error);
            // Committed already: handled one by one, each finds its record and publishes again.
            return Err(HandlerError::classified(error.failure(), error));
        }
        let share = started.elapsed() / u32::try_from(decoded.len().max(1)).unwrap_or(u32::MAX);
        for (event, outcome) in decoded.iter().zip(&outcomes) {
            self.metrics.resolved(event.channel, label(outcome), share);
        }
        Ok(())
    }

    /// Applies every event in one transaction and commits; `None` (rolled back) when one of
    /// them needs a transaction of its own.
    async fn commit_batch(
        &self,
        decoded: &[Decoded],
        spans: &[tracing::Span],
    ) -> Result<Option<Vec<Outcome>>, ContactsError> {
        // Events of one sender in order; different senders side by side.
        let groups = groups_by_key(decoded.iter().enumerate().map(|(index, event)| {
            (
                index,
                (event.account.as_str(), event.sender().channel_user_id.as_str()),
            )
        }));
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let applied = try_join_all(groups.iter().map(|group| {
            let tx = &tx;
            async move {
                let mut applied = Vec::with_capacity(group.len());
                for &index in group {
                    let result = apply(tx, &decoded[index])
                        .instrument(spans[index].clone())
                        .await?;
                    applied.push((index, result));
                }
                Ok::<_, ContactsError>(applied)
            }
        }))
        .await?;
        let mut outcomes: Vec<Option<Outcome>> = decoded.iter().map(|_| None).collect();
        for (index, result) in applied.into_iter().flatten() {
            match result {
                Applied::Done(outcome) => outcomes[index] = Some(outcome),
                // Dropped without commit: rolled back.
                Applied::OverQuota | Applied::Concurrent => return Ok(None),
            }
        }
        tx.commit().await?;
        Ok(outcomes.into_iter().collect())
    }
}
