//! Status webhooks after accepted sends, shaped and signed like each provider's: WhatsApp
//! `statuses[]`, Messenger `delivery`/`read` watermarks, Instagram `read.mid` (all with
//! `X-Hub-Signature-256`), Twilio status callbacks (form, `X-Twilio-Signature` over the
//! callback URL). Telegram has none. Failed posts are retried with a short backoff.

use std::sync::Arc;
use std::time::Duration;

use http::header;
use rand::seq::SliceRandom as _;
use serde_json::{Value, json};

use crate::model::{AccountConfig, Provider, ReceiptStatus};
use crate::sign::{META_SIGNATURE_HEADER, TWILIO_SIGNATURE_HEADER, meta_signature, twilio_signature};
use crate::state::{SimState, WebhookOutcome};
use crate::wire::ReceiptTarget;

/// The receipts of one accepted send, ready to post.
#[derive(Debug, Clone)]
pub(crate) struct ReceiptJob {
    provider: Provider,
    account: String,
    statuses: Vec<ReceiptStatus>,
    delay: Duration,
    before_response: usize,
    url: String,
    /// Where the webhook is posted: `url`, or `url` through `deliver_via`.
    post_url: String,
    secret: Option<String>,
    target: ReceiptTarget,
    business_account_id: String,
    display_phone_number: String,
}

/// Whether `provider` has a webhook for `status`.
fn supports(provider: Provider, status: ReceiptStatus) -> bool {
    use ReceiptStatus::{Delivered, Failed, Played, Read, Sending, Sent, Undelivered};
    match provider {
        Provider::Whatsapp => matches!(status, Sent | Delivered | Read | Played | Failed),
        Provider::Messenger => matches!(status, Delivered | Read),
        Provider::Instagram => matches!(status, Read),
        Provider::Telegram => false,
        Provider::Twilio => matches!(status, Sending | Sent | Delivered | Read | Failed | Undelivered),
    }
}

/// The receipts `config` asks for after a send to `target`; `None` when there are none or
/// nowhere to post them.
pub(crate) fn plan(
    provider: Provider,
    account: &str,
    config: &AccountConfig,
    target: &ReceiptTarget,
) -> Option<ReceiptJob> {
    let mut statuses: Vec<ReceiptStatus> = config
        .receipts
        .iter()
        .copied()
        .filter(|status| supports(provider, *status))
        .collect();
    if statuses.is_empty() {
        return None;
    }
    if config.shuffle_receipts {
        statuses.shuffle(&mut rand::rng());
    }
    let url = match provider {
        // Twilio calls back the send's StatusCallback (else the account's, as a Messaging
        // Service would).
        Provider::Twilio => target
            .status_callback
            .clone()
            .or_else(|| config.webhook_url.clone()),
        _ => config.webhook_url.clone(),
    }?;
    let secret = match provider {
        Provider::Twilio => Some(
            config
                .webhook_secret
                .clone()
                .unwrap_or_else(|| config.credential.clone()),
        ),
        _ => config.webhook_secret.clone(),
    };
    let post_url = match &config.deliver_via {
        Some(origin) => through(origin, &url),
        None => url.clone(),
    };
    Some(ReceiptJob {
        provider,
        account: account.to_owned(),
        statuses,
        delay: Duration::from_millis(config.receipt_delay_ms),
        before_response: usize::from(config.receipts_before_response),
        post_url,
        url,
        secret,
        target: target.clone(),
        business_account_id: config
            .business_account_id
            .clone()
            .unwrap_or_else(|| account.to_owned()),
        display_phone_number: config
            .display_phone_number
            .clone()
            .unwrap_or_else(|| "15550000000".to_owned()),
    })
}

/// `url` with its scheme and host replaced by `origin` (path and query kept).
fn through(origin: &str, url: &str) -> String {
    let after_scheme = url.find("://").map_or(0, |index| index + 3);
    let path = url[after_scheme..]
        .find('/')
        .map_or("", |index| &url[after_scheme + index..]);
    format!("{}{path}", origin.trim_end_matches('/'))
}

impl ReceiptJob {
    /// Posts the receipts due before the answer, waiting for each.
    pub(crate) async fn post_before_response(&self, state: &SimState) {
        let epoch = state.epoch();
        for status in self.statuses.iter().take(self.before_response) {
            tokio::select! {
                () = epoch.cancelled() => return,
                () = self.post(state, *status) => {}
            }
        }
    }

    /// Posts the remaining receipts in the background, `delay` before each.
    pub(crate) fn spawn_rest(self, state: Arc<SimState>) {
        if self.statuses.len() <= self.before_response {
            return;
        }
        let epoch = state.epoch();
        tokio::spawn(async move {
            let rest = async {
                for status in self.statuses.iter().skip(self.before_response) {
                    tokio::time::sleep(self.delay).await;
                    self.post(&state, *status).await;
                }
            };
            tokio::select! {
                () = epoch.cancelled() => {}
                () = rest => {}
            }
        });
    }

    /// Posts one receipt, retrying failures a few times.
    async fn post(&self, state: &SimState, status: ReceiptStatus) {
        let (content_type, body, signature) = self.payload(status);
        let attempts = state.options.webhook_attempts.max(1);
        for attempt in 1..=attempts {
            let mut request = state
                .http
                .post(&self.post_url)
                .header(header::CONTENT_TYPE, content_type)
                .body(body.clone());
            if let Some((name, value)) = &signature {
                request = request.header(*name, value);
            }
            request = request.header(header::USER_AGENT, self.user_agent());
            let outcome = request.send().await;
            let delivered = outcome
                .as_ref()
                .is_ok_and(|response| response.status().is_success());
            if delivered {
                state.note_webhook(self.provider, &self.account, WebhookOutcome::Ok);
                return;
            }
            let reason = match outcome {
                Ok(response) => format!("status {}", response.status()),
                Err(error) => error.to_string(),
            };
            if attempt == attempts {
                tracing::warn!(provider = %self.provider, account = %self.account, %reason, "status webhook failed");
                state.note_webhook(self.provider, &self.account, WebhookOutcome::Failed);
                return;
            }
            tracing::debug!(provider = %self.provider, account = %self.account, %reason, attempt, "status webhook retried");
            state.note_webhook(self.provider, &self.account, WebhookOutcome::Retried);
            tokio::time::sleep(state.options.webhook_backoff * 2u32.saturating_pow(attempt - 1)).await;
        }
    }

    fn user_agent(&self) -> &'static str {
        match self.provider {
            Provider::Twilio => "TwilioProxy/1.1",
            _ => "facebookexternalua",
        }
    }

    /// Content type, exact body bytes, and the signature header.
    fn payload(&self, status: ReceiptStatus) -> (&'static str, Vec<u8>, Option<(&'static str, String)>) {
        if self.provider == Provider::Twilio {
            let params = self.twilio_params(status);
            let mut form = form_urlencoded::Serializer::new(String::new());
            for (name, value) in &params {
                form.append_pair(name, value);
            }
            let signature = self.secret.as_ref().map(|secret| {
                let signature = twilio_signature(secret.as_bytes(), &self.url, &params);
                (TWILIO_SIGNATURE_HEADER, signature)
            });
            return (
                "application/x-www-form-urlencoded",
                form.finish().into_bytes(),
                signature,
            );
        }
        let body = serde_json::to_vec(&self.meta_body(status)).unwrap_or_default();
        let signature = self
            .secret
            .as_ref()
            .map(|secret| (META_SIGNATURE_HEADER, meta_signature(secret.as_bytes(), &body)));
        ("application/json", body, signature)
    }

    fn meta_body(&self, status: ReceiptStatus) -> Value {
        let now = chrono::Utc::now();
        let millis = now.timestamp_millis();
        let account = &self.account;
        let target = &self.target;
        match self.provider {
            Provider::Whatsapp => {
                let wa_id: String = target.recipient.chars().filter(char::is_ascii_digit).collect();
                let mut receipt = json!({
                    "id": target.message_id,
                    "status": status.as_str(),
                    "timestamp": now.timestamp().to_string(),
                    "recipient_id": wa_id,
                });
                if let Some(data) = &target.biz_opaque_callback_data {
                    receipt["biz_opaque_callback_data"] = Value::String(data.clone());
                }
                if status == ReceiptStatus::Failed {
                    receipt["errors"] = json!([{
                        "code": 131026,
                        "title": "Message undeliverable",
                        "message": "Message undeliverable",
                        "error_data": {"details": "Message could not be delivered."},
                        "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/",
                    }]);
                }
                json!({
                    "object": "whatsapp_business_account",
                    "entry": [{"id": self.business_account_id, "changes": [{"field": "messages", "value": {
                        "messaging_product": "whatsapp",
                        "metadata": {"display_phone_number": self.display_phone_number, "phone_number_id": account},
                        "statuses": [receipt],
                    }}]}],
                })
            }
            Provider::Instagram => json!({
                "object": "instagram",
                "entry": [{"id": account, "time": millis, "messaging": [{
                    "sender": {"id": target.recipient}, "recipient": {"id": account},
                    "timestamp": millis, "read": {"mid": target.message_id},
                }]}],
            }),
            _ => {
                let mut event = json!({
                    "sender": {"id": target.recipient}, "recipient": {"id": account}, "timestamp": millis,
                });
                if status == ReceiptStatus::Read {
                    event["read"] = json!({ "watermark": millis });
                } else {
                    event["delivery"] = json!({"mids": [target.message_id], "watermark": millis});
                }
                json!({"object": "page", "entry": [{"id": account, "time": millis, "messaging": [event]}]})
            }
        }
    }

    fn twilio_params(&self, status: ReceiptStatus) -> Vec<(String, String)> {
        let target = &self.target;
        let from = target.from.clone().unwrap_or_else(|| "+15005550006".to_owned());
        let mut params = vec![
            ("MessageSid", target.message_id.clone()),
            ("SmsSid", target.message_id.clone()),
            ("MessageStatus", status.as_str().to_owned()),
            ("SmsStatus", status.as_str().to_owned()),
            ("AccountSid", self.account.clone()),
            ("From", from),
            ("To", target.recipient.clone()),
            ("ApiVersion", "2010-04-01".to_owned()),
        ];
        if let Some(service) = &target.messaging_service_sid {
            params.push(("MessagingServiceSid", service.clone()));
        }
        if matches!(status, ReceiptStatus::Failed | ReceiptStatus::Undelivered) {
            params.push(("ErrorCode", "30003".to_owned()));
        }
        params
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value))
            .collect()
    }
}

#[cfg(test)]
mod through_tests {
    use super::through;

    #[test]
    fn a_proxy_origin_keeps_path_and_query() {
        assert_eq!(
            through(
                "http://127.0.0.1:8080/",
                "https://hooks.example.test/webhooks/sms/a?sb_message_id=msg_1"
            ),
            "http://127.0.0.1:8080/webhooks/sms/a?sb_message_id=msg_1"
        );
        assert_eq!(through("http://h:1", "https://x.test"), "http://h:1");
    }
}
