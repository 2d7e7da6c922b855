//! What web chat does, apart from how it is asked: resolving accounts and sessions, accepting
//! a visitor's message, moving the visitor's marks, publishing typing. The HTTP handlers, the
//! socket and the internal API call these with ids parsed at their edge.

use switchboard_directory::DirectoryError;
use switchboard_domain::{Channel, ChannelAccountId};

use crate::account::WebchatAccount;
use crate::error::{ApiError, SessionError};
use crate::frames::VisitorSend;
use crate::hub::Signal;
use crate::store::{NewMessage, StoredMessage, Visitor, Watermark};
use crate::token::{self, SessionClaims};
use crate::{Webchat, events};

/// Most attachments on one message.
const MAX_ATTACHMENTS: usize = 10;
/// Longest client id.
const MAX_CLIENT_ID: usize = 100;

impl Webchat {
    /// The enabled web chat account `id`.
    pub(crate) async fn account(&self, id: &ChannelAccountId) -> Result<WebchatAccount, ApiError> {
        match self.directory.resolve(id.as_str()).await {
            Ok(resolved) if resolved.channel == Channel::Webchat && resolved.enabled => {
                Ok(WebchatAccount::new(id.clone(), resolved))
            }
            Ok(_) | Err(DirectoryError::NotFound) => Err(ApiError::UnknownAccount),
            Err(error) => Err(ApiError::DirectoryUnavailable(error)),
        }
    }

    /// The key that signs `account`'s session tokens.
    pub(crate) fn session_secret<'a>(&self, account: &'a WebchatAccount) -> Result<&'a [u8], ApiError> {
        account.session_secret().ok_or(ApiError::NotConfigured)
    }

    /// The claims of a session token of `account`.
    pub(crate) fn claims(&self, account: &WebchatAccount, token: &str) -> Result<SessionClaims, ApiError> {
        let secret = self.session_secret(account)?;
        token::verify(
            secret,
            account.id().as_str(),
            token,
            chrono::Utc::now().timestamp(),
        )
        .map_err(|error| ApiError::Session(error.into()))
    }

    /// The visitor a session token stands for (marked seen now).
    pub(crate) async fn visitor(&self, account: &WebchatAccount, token: &str) -> Result<Visitor, ApiError> {
        let claims = self.claims(account, token)?;
        self.store
            .touch_visitor(account.id(), &claims.vis)
            .await?
            .ok_or(ApiError::Session(SessionError::VisitorGone))
    }

    /// Stores a visitor's message (or finds the earlier one with its client id) and wakes
    /// every socket of the visitor. Returns the message and whether it is new.
    pub(crate) async fn accept(
        &self,
        account: &WebchatAccount,
        visitor: &Visitor,
        send: &VisitorSend,
    ) -> Result<(StoredMessage, bool), ApiError> {
        let accepted = self.accept_counted(account, visitor, send).await;
        let outcome = match &accepted {
            Ok((_, true)) => "accepted",
            Ok((_, false)) => "duplicate",
            Err(error) => error.wire_code(),
        };
        self.metrics.message("inbound", outcome);
        accepted
    }

    /// Refuses a message this server never stores, whatever the thread holds.
    fn check_send(&self, send: &VisitorSend) -> Result<(), ApiError> {
        if send.client_id.trim().is_empty() || send.client_id.chars().count() > MAX_CLIENT_ID {
            return Err(ApiError::ClientId { max: MAX_CLIENT_ID });
        }
        let chars = send.text.chars().count();
        if chars > self.config.max_message_chars {
            return Err(ApiError::MessageTooLarge {
                chars,
                limit: self.config.max_message_chars,
            });
        }
        if send.text.trim().is_empty() && send.attachment_ids.is_empty() {
            return Err(ApiError::EmptyMessage);
        }
        if send.attachment_ids.len() > MAX_ATTACHMENTS {
            return Err(ApiError::TooManyAttachments { max: MAX_ATTACHMENTS });
        }
        Ok(())
    }

    async fn accept_counted(
        &self,
        account: &WebchatAccount,
        visitor: &Visitor,
        send: &VisitorSend,
    ) -> Result<(StoredMessage, bool), ApiError> {
        self.check_send(send)?;
        // A resend of an accepted message costs nothing (a reconnecting client resends its
        // pending messages at once).
        if let Some(existing) = self
            .store
            .by_client_id(account.id(), &visitor.visitor_id, &send.client_id)
            .await?
        {
            return Ok((existing, false));
        }
        if let Err(not_until) = self.message_limiter.check_key(&visitor.visitor_id) {
            let wait = not_until.wait_time_from(governor::clock::Clock::now(
                &governor::clock::DefaultClock::default(),
            ));
            return Err(ApiError::MessageRateLimited {
                per_second: self.config.messages_per_second,
                retry_after: wait.as_secs_f64().ceil() as u64,
            });
        }
        let attachments = self
            .attachment_refs(account, visitor, &send.attachment_ids)
            .await?;
        let message = NewMessage {
            author: "visitor",
            author_name: String::new(),
            client_id: Some(send.client_id.clone()),
            outbound_id: None,
            body: send.text.clone(),
            attachments,
            buttons: serde_json::json!([]),
        };
        let resolved = account.resolved.clone();
        let events = move |visitor: &Visitor, stored: &StoredMessage| {
            vec![events::visitor_message(&resolved, visitor, stored)]
        };
        let (stored, created) = self
            .store
            .append(account.id(), &visitor.visitor_id, &message, &events)
            .await?
            .ok_or(ApiError::Session(SessionError::VisitorGone))?;
        if created {
            self.outbox_wake.notify_one();
            self.hub.signal(
                account.id(),
                &visitor.visitor_id,
                Signal::Message { seq: stored.seq },
            );
        }
        Ok((stored, created))
    }

    async fn attachment_refs(
        &self,
        account: &WebchatAccount,
        visitor: &Visitor,
        ids: &[String],
    ) -> Result<serde_json::Value, ApiError> {
        if ids.is_empty() {
            return Ok(serde_json::json!([]));
        }
        let found = self
            .store
            .attachments_of(account.id(), &visitor.visitor_id, ids)
            .await?;
        let mut refs = Vec::with_capacity(ids.len());
        for id in ids {
            let attachment = found
                .iter()
                .find(|attachment| &attachment.id == id)
                .ok_or_else(|| ApiError::UnknownAttachment(id.clone()))?;
            refs.push(serde_json::json!({
                "id": attachment.id,
                "url": self.attachment_url(account.id(), &attachment.id),
                "mime_type": attachment.mime_type,
                "filename": attachment.filename,
                "size": attachment.size_bytes,
                "sha256": attachment.sha256,
            }));
        }
        Ok(serde_json::Value::Array(refs))
    }

    /// Raises the visitor's delivered or read mark and sends receipts for the outbound
    /// messages it passes.
    pub(crate) async fn mark(
        &self,
        account: &WebchatAccount,
        visitor: &Visitor,
        read: bool,
        up_to_seq: i64,
    ) -> Result<(), ApiError> {
        let resolved = account.resolved.clone();
        let receipt = move |visitor: &Visitor, message: &StoredMessage| {
            events::receipt(&resolved, visitor, message, read)
        };
        let watermark = if read {
            Watermark::VisitorRead
        } else {
            Watermark::Delivered
        };
        self.store
            .advance_visitor_watermark(account.id(), &visitor.visitor_id, watermark, up_to_seq, &receipt)
            .await?;
        self.outbox_wake.notify_one();
        Ok(())
    }

    /// Tells subscribers (an agent desk) that the visitor started or stopped typing.
    pub(crate) async fn visitor_typing(&self, account: &WebchatAccount, visitor: &Visitor, on: bool) {
        let envelope = events::visitor_typing(&account.resolved, visitor, on);
        let outgoing =
            switchboard_messaging::Outgoing::envelope(&envelope, self.publisher.bus().partitions());
        if let Err(error) = self.publisher.publish_optional(outgoing).await {
            tracing::debug!(error = %error, "visitor typing not published");
        }
    }

    /// The URL of an uploaded attachment: on `ingress.public_base_url`, else a path.
    pub(crate) fn attachment_url(&self, account: &ChannelAccountId, id: &str) -> String {
        format!(
            "{}/webchat/{account}/attachments/{id}",
            self.public_base_url.as_deref().unwrap_or("")
        )
    }
}
