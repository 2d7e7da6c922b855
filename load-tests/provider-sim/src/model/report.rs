//! What the simulator observed: the call log and the counters.

use serde::{Deserialize, Serialize};

use super::{EffectiveLimits, Provider, SmtpStats};

/// How the simulator answered a recorded call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallOutcome {
    /// Accepted and answered with a message id.
    Accepted,
    /// Accepted (the message was sent) but the response was never given.
    Dropped,
    /// Refused by a rate limit (a violation).
    RateLimited,
    /// Refused by an injected `status`, `rate_limited` or `error` fault.
    Fault,
    /// Refused as invalid (missing parameters, unknown method).
    Rejected,
    /// Refused: unknown account or wrong credential.
    Unauthorized,
}

/// One recorded provider API call (`GET /_sim/calls`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallRecord {
    /// Order of arrival, from 1.
    pub seq: u64,
    /// The provider.
    pub provider: Provider,
    /// The account's external id (phone number id, page id, IG id, bot id, AccountSid).
    pub account: String,
    /// Graph `messages`, the Telegram method name, or `Messages.json`.
    pub method: String,
    /// `to`, `recipient.id`, `chat_id` or `To`.
    pub recipient: Option<String>,
    /// The parsed request body (Twilio's form as an object, `MediaUrl` as an array).
    pub body: serde_json::Value,
    /// The HTTP status answered (`None` when the response was dropped).
    pub status: Option<u16>,
    /// How the call was answered.
    pub outcome: CallOutcome,
    /// The provider's message id when accepted (Telegram: `chat_id:message_id`).
    pub provider_message_id: Option<String>,
    /// The provider error code answered, if any.
    pub error_code: Option<String>,
    /// Milliseconds since the simulator started.
    pub time_ms: u64,
}

/// Filters of `GET /_sim/calls`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallsQuery {
    /// Only this provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<Provider>,
    /// Only this account (external id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// Only calls with `seq` greater than this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<u64>,
}

/// Webhook post counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookStats {
    /// Posts answered 2xx.
    pub ok: u64,
    /// Posts given up after the last retry.
    pub failed: u64,
    /// Attempts that failed and were retried.
    pub retries: u64,
}

/// Rate-limit violations by the limit that refused them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViolationCounts {
    /// `per_second`.
    pub per_second: u64,
    /// `per_recipient_per_second`.
    pub per_recipient_per_second: u64,
    /// `per_recipient_per_minute`.
    pub per_recipient_per_minute: u64,
    /// `per_group_per_minute`.
    pub per_group_per_minute: u64,
}

/// The counters of one account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountStats {
    /// The provider.
    pub provider: Provider,
    /// The account's external id.
    pub account: String,
    /// The limits in force.
    pub limits: EffectiveLimits,
    /// Calls that reached the account (credential checked).
    pub requests: u64,
    /// Sends accepted (including dropped responses).
    pub accepted: u64,
    /// Calls answered with an error (rate limits, faults, invalid requests).
    pub refused: u64,
    /// Calls refused by a rate limit.
    pub violations: u64,
    /// Violations by limit.
    pub violations_by_limit: ViolationCounts,
    /// Calls answered by an injected fault (drop_response included).
    pub faults_injected: u64,
    /// Accepted sends whose response was dropped.
    pub dropped_responses: u64,
    /// Most accepted sends seen in any 1-second sliding window.
    pub max_accepted_in_one_second: u64,
    /// Status webhooks of this account.
    pub webhooks: WebhookStats,
}

/// `GET /_sim/stats`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Milliseconds since the simulator started.
    pub uptime_ms: u64,
    /// Per account, sorted by provider then account.
    pub accounts: Vec<AccountStats>,
    /// All status webhooks.
    pub webhooks: WebhookStats,
    /// Calls for unknown accounts or with a wrong credential.
    pub unauthorized: u64,
    /// Calls held in the call log.
    pub calls_recorded: u64,
    /// Oldest calls discarded because the log was full.
    pub calls_discarded: u64,
    /// The SMTP sink's counters (all zero when it is not listening).
    #[serde(default)]
    pub smtp: SmtpStats,
}

impl Stats {
    /// The counters of `account` on `provider`, if it has any.
    pub fn account(&self, provider: Provider, account: &str) -> Option<&AccountStats> {
        self.accounts
            .iter()
            .find(|stats| stats.provider == provider && stats.account == account)
    }
}
