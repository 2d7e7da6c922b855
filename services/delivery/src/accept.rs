//! Accepting a send: find who it goes to, apply the policy and the content rules, and store it
//! as `queued` together with its first send job and its `outbound.message` event, in one
//! transaction. Idempotency keys make a retried Send return the first result.

use std::sync::Arc;
use switchboard_messaging::Partitions;
use switchboard_postgres::CachedStatements as _;

use chrono::Utc;
use prost::Message as _;
use sha2::Digest as _;
use switchboard_directory::ResolvedAccount;
use switchboard_domain::time::from_timestamp;
use switchboard_domain::{Channel, ChannelAccountId, ContactId, ConversationId, MessageId, WorkspaceId};
use switchboard_postgres::Pool;
use switchboard_proto::delivery::v1::{
    AuthorKind, CanSendResponse, OutboundContent, Recipient, recipient::Target,
};
use tokio::sync::Notify;

use crate::content::{self, ContentKind};
use crate::lookup::Lookups;
use crate::policy::{self, Facts};
use crate::store::{self, MESSAGE_COLUMNS, MessageRow};
use crate::transport::AttachmentCheck;
use crate::{DeliveryConfig, DeliveryError};

/// Longest idempotency key.
const MAX_IDEMPOTENCY_KEY: usize = 200;

/// Everything accepting a message needs.
#[derive(Clone)]
pub struct Acceptor {
    /// The `delivery` schema's pool.
    pub pool: Pool,
    /// The other components.
    pub lookups: Lookups,
    /// The `[delivery]` section.
    pub config: Arc<DeliveryConfig>,
    /// Bus partitions.
    pub partitions: Partitions,
    /// Wakes the outbox relay after a commit.
    pub outbox_wake: Arc<Notify>,
    /// Checks attachment bytes.
    pub attachments: AttachmentCheck,
}

/// A send as requested (from the API, a resend or an automatic reply).
#[derive(Debug, Clone)]
pub struct SendOrder {
    /// Where it goes.
    pub recipient: Recipient,
    /// What it says.
    pub content: OutboundContent,
    /// Who wrote it.
    pub author: AuthorKind,
    /// The agent, bot or workflow.
    pub author_id: String,
    /// Optional idempotency key.
    pub idempotency_key: String,
    /// Quoted provider message id.
    pub reply_to_provider_message_id: String,
    /// Bot sends: the controller version decided under.
    pub controller_version: i64,
    /// Messenger / Instagram HUMAN_AGENT tag.
    pub human_agent_tag: bool,
    /// The failed message this one repeats.
    pub resend_of: Option<MessageId>,
}

/// The recipient, resolved.
pub struct Resolved {
    /// The account it goes through.
    pub account: Arc<ResolvedAccount>,
    /// `ct_…`.
    pub contact_id: ContactId,
    /// `conv_…` when named.
    pub conversation_id: Option<ConversationId>,
    /// The channel user id, when the contact has one on the account.
    pub channel_user_id: Option<String>,
    /// The policy's facts.
    pub facts: Facts,
}

impl Acceptor {
    /// Resolves a recipient and gathers the facts the policy decides on.
    pub async fn resolve(
        &self,
        workspace: &WorkspaceId,
        recipient: &Recipient,
    ) -> Result<Resolved, DeliveryError> {
        let (contact_id, account_id, conversation_id, conversation_inbound) = match &recipient.target {
            Some(Target::ConversationId(id)) => {
                let id = ConversationId::parse(id)
                    .map_err(|error| DeliveryError::Invalid(format!("recipient.conversation_id: {error}")))?;
                let conversation = self.lookups.conversation(workspace, &id).await?;
                let inbound = conversation.last_inbound_at.as_ref().and_then(from_timestamp);
                (
                    conversation.contact_id,
                    conversation.channel_account_id,
                    Some(id),
                    inbound,
                )
            }
            Some(Target::Contact(target)) => {
                if target.contact_id.is_empty() || target.channel_account_id.is_empty() {
                    return Err(DeliveryError::Invalid(
                        "recipient.contact needs contact_id and channel_account_id".to_owned(),
                    ));
                }
                (
                    target.contact_id.clone(),
                    target.channel_account_id.clone(),
                    None,
                    None,
                )
            }
            None => {
                return Err(DeliveryError::Invalid(
                    "recipient needs a conversation_id or a contact with a channel_account_id".to_owned(),
                ));
            }
        };
        // An id that does not parse names nothing that exists.
        let not_found = || DeliveryError::NotFound(format!("channel account {account_id}"));
        let account_id = ChannelAccountId::parse(&account_id).map_err(|_| not_found())?;
        let account = self.lookups.account(&account_id).await?;
        if account.workspace_id != workspace.as_str() {
            return Err(not_found());
        }
        let contact_id = ContactId::parse(&contact_id)
            .map_err(|error| DeliveryError::Invalid(format!("recipient contact: {error}")))?;
        let contact = self.lookups.contact(workspace, &contact_id).await?;
        let identity = contact
            .identities
            .iter()
            .find(|identity| identity.channel_account_id == account.id);
        let identity_inbound =
            identity.and_then(|identity| identity.last_seen_at.as_ref().and_then(from_timestamp));
        let email = contact.email_state.unwrap_or_default();
        let fact =
            |fact: Option<switchboard_proto::contacts::v1::ConsentFact>| fact.is_some_and(|fact| fact.value);
        let facts = Facts {
            channel: account.channel,
            account_enabled: account.enabled,
            has_identity: identity.is_some(),
            blocked: contact.blocked,
            sms_opted_out: contact.sms_opted_out,
            bot_subscribed: contact.bot_subscription.is_none_or(|fact| fact.value),
            email_opted_in: fact(email.opted_in),
            email_opted_out: fact(email.opted_out),
            // The conversation's last customer message when one is named (routing keeps it in
            // provider time); else the identity's last activity.
            last_inbound_at: if conversation_id.is_some() {
                conversation_inbound
            } else {
                identity_inbound
            },
        };
        Ok(Resolved {
            channel_user_id: identity.map(|identity| identity.channel_user_id.clone()),
            account,
            contact_id,
            conversation_id,
            facts,
        })
    }

    /// `CanSend`: the policy's answer for a recipient and author kind.
    pub async fn can_send(
        &self,
        workspace: &WorkspaceId,
        recipient: &Recipient,
        author: AuthorKind,
    ) -> Result<CanSendResponse, DeliveryError> {
        let resolved = self.resolve(workspace, recipient).await?;
        Ok(policy::evaluate(&resolved.facts, author, Utc::now()))
    }

    /// Accepts a send: returns the stored message and whether it replays an earlier Send with
    /// the same idempotency key.
    pub async fn accept(
        &self,
        workspace: &WorkspaceId,
        order: SendOrder,
    ) -> Result<(MessageRow, bool), DeliveryError> {
        let Some(author) = crate::author::stored(order.author as i32) else {
            return Err(DeliveryError::Invalid(
                "author_kind is required: agent, bot, workflow, broadcast or api".to_owned(),
            ));
        };
        if matches!(order.author, AuthorKind::Agent | AuthorKind::Bot) && order.author_id.trim().is_empty() {
            return Err(DeliveryError::Invalid(
                "author_id is required for agent and bot sends".to_owned(),
            ));
        }
        if order.idempotency_key.chars().count() > MAX_IDEMPOTENCY_KEY {
            return Err(DeliveryError::Invalid(format!(
                "idempotency_key has at most {MAX_IDEMPOTENCY_KEY} characters"
            )));
        }
        let hash = payload_hash(&order);
        let key = (!order.idempotency_key.is_empty()).then_some(order.idempotency_key.as_str());
        if let Some(key) = key
            && let Some(existing) = self.by_key(workspace, key).await?
        {
            return replay(existing, &hash, key);
        }
        let resolved = self.resolve(workspace, &order.recipient).await?;
        let channel = resolved.account.channel;
        let kind = content::validate(
            channel,
            order.author,
            &order.content,
            self.config.agent_text_limit,
        )?;
        policy::check_send(
            &resolved.facts,
            order.author,
            kind,
            order.human_agent_tag,
            Utc::now(),
        )?;
        if order.author == AuthorKind::Bot {
            let Some(conversation) = &resolved.conversation_id else {
                return Err(DeliveryError::Invalid(
                    "bot sends name their conversation (recipient.conversation_id) and controller_version"
                        .to_owned(),
                ));
            };
            self.lookups
                .check_bot_send(workspace, conversation, order.controller_version)
                .await?;
        }
        if kind == ContentKind::FreeForm || order.content.template.is_some() {
            for url in content::media_urls(&order.content) {
                self.attachments.check(url).await?;
            }
        }
        let Some(recipient) = resolved.channel_user_id.clone() else {
            return Err(DeliveryError::refused(
                "NO_CHANNEL_IDENTITY",
                "the contact has no identity on this account",
            ));
        };
        let id = MessageId::generate().into_string();
        let priority: i16 = if order.author == AuthorKind::Broadcast {
            1
        } else {
            0
        };
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let inserted = tx
            .query_opt_cached(
                &format!(
                    "WITH inserted AS (
                         INSERT INTO delivery.messages (id, workspace_id, channel_account_id, channel, contact_id,
                             conversation_id, recipient, author_kind, author_id, content, reply_to_provider_message_id,
                             human_agent_tag, priority, idempotency_key, payload_hash, resend_of)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
                         ON CONFLICT (workspace_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
                         RETURNING {MESSAGE_COLUMNS}
                     ), recorded AS (
                         INSERT INTO delivery.status_history (message_id, status, source, provider_status)
                         SELECT id, 'queued', 'accepted', '' FROM inserted
                     )
                     SELECT {MESSAGE_COLUMNS} FROM inserted"
                ),
                &[
                    &id,
                    &workspace.as_str(),
                    &resolved.account.id,
                    &channel.as_str(),
                    &resolved.contact_id.as_str(),
                    &resolved.conversation_id.as_ref().map_or("", ConversationId::as_str),
                    &recipient,
                    &author,
                    &order.author_id,
                    &order.content.encode_to_vec(),
                    &order.reply_to_provider_message_id,
                    &order.human_agent_tag,
                    &priority,
                    &key,
                    &hash,
                    &order.resend_of.as_ref().map(MessageId::as_str),
                ],
            )
            .await?;
        let Some(row) = inserted else {
            // A concurrent Send with the same key won; its row is committed now.
            drop(tx);
            let key = key.unwrap_or_default();
            let existing = self.by_key(workspace, key).await?.ok_or_else(|| {
                DeliveryError::Unavailable("a concurrent send with the same key rolled back".to_owned())
            })?;
            return replay(existing, &hash, key);
        };
        let row = MessageRow::from_row(&row)?;
        // The message and its history entry went in with one statement; its first send job
        // and its `outbound.message` event go in with one more.
        let (job, accepted) = (store::send_job(&row, 1), store::accepted_event(&row));
        store::OUTBOX
            .record_all(&tx, &[&job, &accepted], &self.partitions)
            .await?;
        tx.commit().await?;
        self.outbox_wake.notify_one();
        tracing::info!(message_id = %row.id, channel = channel.as_str(), account = %row.channel_account_id, author, "message accepted");
        Ok((row, false))
    }

    async fn by_key(&self, workspace: &WorkspaceId, key: &str) -> Result<Option<MessageRow>, DeliveryError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt_cached(
                &format!("SELECT {MESSAGE_COLUMNS} FROM delivery.messages WHERE workspace_id = $1 AND idempotency_key = $2"),
                &[&workspace.as_str(), &key],
            )
            .await?;
        row.as_ref().map(MessageRow::from_row).transpose()
    }
}

fn replay(existing: MessageRow, hash: &[u8], key: &str) -> Result<(MessageRow, bool), DeliveryError> {
    if existing.payload_hash.as_deref() == Some(hash) {
        Ok((existing, true))
    } else {
        Err(DeliveryError::KeyReused(key.to_owned()))
    }
}

/// Digest of everything a Send says, so a reused key with another payload is detected.
fn payload_hash(order: &SendOrder) -> Vec<u8> {
    let recipient = order.recipient.encode_to_vec();
    let content = order.content.encode_to_vec();
    let mut digest = sha2::Sha256::new();
    for field in [
        recipient.as_slice(),
        content.as_slice(),
        &(order.author as i32).to_be_bytes(),
        order.author_id.as_bytes(),
        order.reply_to_provider_message_id.as_bytes(),
        &order.controller_version.to_be_bytes(),
        &[u8::from(order.human_agent_tag)],
        order.resend_of.as_ref().map_or("", MessageId::as_str).as_bytes(),
    ] {
        digest.update((field.len() as u64).to_be_bytes());
        digest.update(field);
    }
    digest.finalize().to_vec()
}

/// The channel of a stored message.
pub fn stored_channel(row: &MessageRow) -> Result<Channel, DeliveryError> {
    Channel::from_proto(row.channel_value()).map_err(|error| DeliveryError::Corrupt(error.to_string()))
}
