//! Status receipts from ingress (`inbound.<channel>.status_received`, on
//! `delivery.receipts.pNN`): each moves its message forward only, whatever order receipts
//! arrive in. Messenger watermarks raise every earlier message to the recipient. A receipt for
//! a provider id no message carries yet is parked and applied when the send records the id
//! (both sides take the same advisory lock, so neither misses the other); parked receipts
//! expire after `parked_receipt_ttl` and are counted. A partition's prefetched receipts are
//! applied in one transaction (one commit per batch, up to `bus.batch_size`).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures_util::future::try_join_all;
use switchboard_domain::time::from_timestamp;
use switchboard_domain::{ChannelAccountId, MessageId};
use switchboard_messaging::{Batched, Handler, HandlerError, Incoming, Partitions, groups_by_key};
use switchboard_postgres::CachedStatements as _;
use switchboard_postgres::{Pool, Transaction};
use switchboard_proto::common::v1::ProviderError;
use switchboard_proto::events::v1::{StatusReceipt, envelope::Payload, inbound_event::Kind};
use tokio::sync::Notify;
use tracing::Instrument as _;

use crate::DeliveryError;
use crate::metrics::{DeliveryMetrics, ReceiptOutcome};
use crate::status;
use crate::store::{self, StatusUpdate};

/// The family and event pattern of the receipts delivery consumes.
pub const RECEIPT_EVENTS: &str = "inbound.*.status_received";
/// The queue family name (`delivery.receipts.pNN`).
pub const RECEIPTS_FAMILY: &str = "receipts";

/// Applies receipts.
pub struct Receipts {
    /// The `delivery` schema.
    pub pool: Pool,
    /// Bus partitions.
    pub partitions: Partitions,
    /// Wakes the outbox relay.
    pub outbox_wake: Arc<Notify>,
    /// Counters.
    pub metrics: Arc<DeliveryMetrics>,
    /// Most receipts of one partition applied in one transaction (`bus.batch_size`).
    pub batch_size: usize,
}

/// A status receipt, decoded: the message it is about was sent through `account` to `recipient`.
struct Receipt {
    account: ChannelAccountId,
    recipient: String,
    receipt: StatusReceipt,
}

impl Receipt {
    /// The receipt `incoming` carries; `None` for any other event (nothing to do).
    fn of(incoming: &Incoming) -> Result<Option<Self>, HandlerError> {
        let envelope = incoming.decode_envelope().map_err(HandlerError::permanent)?;
        let Some(Payload::Inbound(event)) = envelope.payload else {
            return Ok(None);
        };
        let Some(Kind::Status(receipt)) = event.kind else {
            return Ok(None);
        };
        let recipient = event
            .sender
            .as_ref()
            .map(|sender| sender.channel_user_id.clone())
            .unwrap_or_default();
        let account = ChannelAccountId::parse(&event.channel_account_id).map_err(HandlerError::permanent)?;
        Ok(Some(Self {
            account,
            recipient,
            receipt,
        }))
    }
}

impl Handler for Receipts {
    async fn handle(&self, incoming: &Incoming) -> Result<(), HandlerError> {
        let Some(receipt) = Receipt::of(incoming)? else {
            return Ok(());
        };
        self.apply_all(&[receipt], &[tracing::Span::current()])
            .await
            .map_err(|error| HandlerError::classified(error.failure(), error))
    }

    fn max_batch(&self) -> usize {
        self.batch_size
    }

    /// Applies a partition's prefetched receipts in one transaction: one commit for all.
    async fn handle_batch(&self, batch: &[Batched]) -> Result<(), HandlerError> {
        let mut receipts = Vec::with_capacity(batch.len());
        let mut spans = Vec::with_capacity(batch.len());
        for item in batch {
            if let Some(receipt) = Receipt::of(&item.message)? {
                receipts.push(receipt);
                spans.push(item.span.clone());
            }
        }
        self.apply_all(&receipts, &spans)
            .await
            .map_err(|error| HandlerError::classified(error.failure(), error))
    }
}

impl Receipts {
    /// Applies `receipts` (each in its span) in one transaction. One recipient's receipts go in
    /// order; different recipients' side by side, pipelined on the transaction's connection
    /// (they touch different messages: a message has one recipient).
    async fn apply_all(&self, receipts: &[Receipt], spans: &[tracing::Span]) -> Result<(), DeliveryError> {
        if receipts.is_empty() {
            return Ok(());
        }
        let groups = groups_by_key(
            receipts
                .iter()
                .enumerate()
                .map(|(index, one)| (index, (one.account.as_str(), one.recipient.as_str()))),
        );
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let outcomes = try_join_all(groups.iter().map(|group| {
            let tx = &tx;
            async move {
                let mut outcomes = Vec::with_capacity(group.len());
                for &index in group {
                    let one = &receipts[index];
                    let outcome = self
                        .apply(tx, &one.account, &one.recipient, &one.receipt)
                        .instrument(spans[index].clone())
                        .await?;
                    outcomes.extend(outcome);
                }
                Ok::<_, DeliveryError>(outcomes)
            }
        }))
        .await?;
        tx.commit().await?;
        self.outbox_wake.notify_one();
        for outcome in outcomes.into_iter().flatten() {
            self.metrics.receipt(outcome);
        }
        Ok(())
    }

    /// Applies one receipt about a message sent through `account` to `recipient` in `tx`;
    /// `None` when its status is not one delivery keeps.
    async fn apply(
        &self,
        tx: &Transaction<'_>,
        account: &ChannelAccountId,
        recipient: &str,
        receipt: &StatusReceipt,
    ) -> Result<Option<ReceiptOutcome>, DeliveryError> {
        let Some(target) = status::stored(receipt.status) else {
            return Ok(None);
        };
        let update = StatusUpdate {
            status: target,
            source: "receipt",
            provider_status: &receipt.provider_status,
            error: receipt.error.as_ref(),
            provider_message_id: None,
        };
        let outcome = if let Some(watermark) = receipt.watermark.as_ref().and_then(from_timestamp) {
            let moved = self.watermark(tx, account, recipient, watermark, &update).await?;
            if moved == 0 {
                ReceiptOutcome::WatermarkNone
            } else {
                ReceiptOutcome::Watermark
            }
        } else if let Some(id) = self
            .by_our_id(tx, account, &receipt.switchboard_message_id)
            .await?
        {
            let update = StatusUpdate {
                provider_message_id: (!receipt.provider_message_id.is_empty())
                    .then_some(receipt.provider_message_id.as_str()),
                ..update.clone()
            };
            store::advance(tx, &self.partitions, &id, &update).await?;
            ReceiptOutcome::Applied
        } else if receipt.provider_message_id.is_empty() {
            ReceiptOutcome::Unidentified
        } else {
            lock_provider_id(tx, account, &receipt.provider_message_id).await?;
            let found = tx
                .query_opt_cached(
                    "SELECT id FROM delivery.messages WHERE channel_account_id = $1 AND provider_message_id = $2",
                    &[&account.as_str(), &receipt.provider_message_id],
                )
                .await?;
            match found {
                Some(row) => {
                    let id: MessageId = store::id_column(&row, 0)?;
                    store::advance(tx, &self.partitions, &id, &update).await?;
                    ReceiptOutcome::Applied
                }
                None => {
                    park(tx, account, &receipt.provider_message_id, &update).await?;
                    ReceiptOutcome::Parked
                }
            }
        };
        Ok(Some(outcome))
    }

    /// The message `id` (as the receipt carries it, possibly empty) sent through `account`.
    async fn by_our_id(
        &self,
        tx: &Transaction<'_>,
        account: &ChannelAccountId,
        id: &str,
    ) -> Result<Option<MessageId>, DeliveryError> {
        let Ok(id) = MessageId::parse(id) else {
            return Ok(None);
        };
        let found = tx
            .query_opt_cached(
                "SELECT 1 FROM delivery.messages WHERE id = $1 AND channel_account_id = $2",
                &[&id.as_str(), &account.as_str()],
            )
            .await?;
        Ok(found.map(|_| id))
    }

    /// Raises every message sent to `recipient` at or before `watermark`.
    async fn watermark(
        &self,
        tx: &Transaction<'_>,
        account: &ChannelAccountId,
        recipient: &str,
        watermark: DateTime<Utc>,
        update: &StatusUpdate<'_>,
    ) -> Result<u64, DeliveryError> {
        let rows = tx
            .query_cached(
                "SELECT id FROM delivery.messages
                 WHERE channel_account_id = $1 AND recipient = $2 AND sent_at IS NOT NULL AND sent_at <= $3
                 ORDER BY sent_at",
                &[&account.as_str(), &recipient, &watermark],
            )
            .await?;
        let mut moved = 0;
        for row in rows {
            let id: MessageId = store::id_column(&row, 0)?;
            if store::advance(tx, &self.partitions, &id, update).await? {
                moved += 1;
            }
        }
        Ok(moved)
    }
}

/// Serializes the send that records `provider_message_id` with receipts for it.
pub async fn lock_provider_id(
    tx: &Transaction<'_>,
    account: &ChannelAccountId,
    provider_message_id: &str,
) -> Result<(), DeliveryError> {
    tx.execute_cached(
        "SELECT pg_advisory_xact_lock(hashtextextended($1 || '/' || $2, 7))",
        &[&account.as_str(), &provider_message_id],
    )
    .await?;
    Ok(())
}

async fn park(
    tx: &Transaction<'_>,
    account: &ChannelAccountId,
    provider_message_id: &str,
    update: &StatusUpdate<'_>,
) -> Result<(), DeliveryError> {
    let empty = ProviderError::default();
    let error = update.error.unwrap_or(&empty);
    tx.execute_cached(
        "INSERT INTO delivery.parked_receipts (channel_account_id, provider_message_id, status, provider_status,
             error_code, error_title, error_message, error_details)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        &[
            &account.as_str(),
            &provider_message_id,
            &update.status,
            &update.provider_status,
            &error.code,
            &error.title,
            &error.message,
            &error.details,
        ],
    )
    .await?;
    Ok(())
}

/// Applies (and removes) the receipts parked for `provider_message_id`, now that message
/// `id` carries it. The caller holds [`lock_provider_id`].
pub async fn apply_parked(
    tx: &Transaction<'_>,
    partitions: &Partitions,
    account: &ChannelAccountId,
    provider_message_id: &str,
    id: &MessageId,
) -> Result<u64, DeliveryError> {
    let parked = tx
        .query_cached(
            "DELETE FROM delivery.parked_receipts WHERE channel_account_id = $1 AND provider_message_id = $2
             RETURNING status, provider_status, error_code, error_title, error_message, error_details, id",
            &[&account.as_str(), &provider_message_id],
        )
        .await?;
    let mut receipts: Vec<(i64, String, String, ProviderError)> = Vec::with_capacity(parked.len());
    for row in parked {
        receipts.push((
            row.try_get(6)?,
            row.try_get(0)?,
            row.try_get(1)?,
            ProviderError {
                code: row.try_get(2)?,
                title: row.try_get(3)?,
                message: row.try_get(4)?,
                details: row.try_get(5)?,
            },
        ));
    }
    receipts.sort_by_key(|(seq, ..)| *seq);
    let mut applied = 0;
    for (_, status, provider_status, error) in &receipts {
        let update = StatusUpdate {
            status,
            source: "receipt",
            provider_status,
            error: (!error.code.is_empty()).then_some(error),
            provider_message_id: None,
        };
        if store::advance(tx, partitions, id, &update).await? {
            applied += 1;
        }
    }
    Ok(applied)
}
