//! How delivery reaches a customer: the providers' HTTP APIs through the adapters of
//! `switchboard-channels`, e-mail over SMTP, and web chat through its internal API. The send
//! worker, `Delete` and `SendAction` all call out through [`Transport`]; attachment URLs from
//! API callers are fetched here too, under the egress policy.

mod attachment;
mod http;
mod smtp;
mod webchat;

use std::time::Duration;

use secrecy::SecretString;
use switchboard_channels::outbound::{self, BuildError, ProviderAccount, SendOutcome};
use switchboard_directory::ResolvedAccount;
use switchboard_domain::Channel;
use switchboard_egress::EgressClient;

use crate::store::MessageRow;

pub use attachment::AttachmentCheck;

/// What one call to a provider (or SMTP server, or web chat) came to.
#[derive(Debug)]
pub enum CallOutcome {
    /// The provider answered; `status` is its HTTP status (SMTP: its reply code).
    Answered {
        /// HTTP status.
        status: u16,
        /// The classified answer.
        outcome: SendOutcome,
    },
    /// The request went out and no answer came in time: maybe sent.
    Unknown(String),
    /// The request never reached the provider (connection refused, DNS).
    NotSent(String),
    /// The message cannot be sent on this channel as it is.
    Unbuildable(BuildError),
}

/// Every way out: provider HTTP APIs, SMTP and web chat's internal API.
pub struct Transport {
    http: reqwest::Client,
    timeout: Duration,
    mailer: smtp::Mailer,
    webchat: webchat::WebchatLink,
}

impl Transport {
    /// Provider calls through `http` and SMTP submissions bounded by `timeout`; e-mail
    /// attachments fetched with `attachments` (egress policy); web chat reached at
    /// `webchat_endpoint` with `internal_token`.
    pub fn new(
        http: reqwest::Client,
        attachments: EgressClient,
        timeout: Duration,
        webchat_endpoint: String,
        internal_token: &SecretString,
    ) -> Self {
        Self {
            http,
            timeout,
            mailer: smtp::Mailer::new(attachments, timeout),
            webchat: webchat::WebchatLink::new(webchat_endpoint, internal_token),
        }
    }

    /// The view of `account` the adapters take: web chat accounts address web chat's internal
    /// API with the internal token; the others their provider with their own secrets.
    pub fn provider_account<'a>(&'a self, account: &'a ResolvedAccount) -> ProviderAccount<'a> {
        if account.channel == Channel::Webchat {
            self.webchat.provider_account(account)
        } else {
            own_provider_account(account)
        }
    }

    /// Sends the stored message `row` through `account`.
    pub async fn send(&self, account: &ResolvedAccount, row: &MessageRow) -> CallOutcome {
        if account.channel == Channel::Email {
            return self.mailer.send(account, row).await;
        }
        let request = match outbound::build_send(&self.provider_account(account), &row.outbound()) {
            Ok(request) => request,
            Err(error) => return CallOutcome::Unbuildable(error),
        };
        let channel = account.channel;
        self.execute(request, |status, headers, body| {
            outbound::classify_send(channel, status, headers, body)
        })
        .await
    }
}

/// The view of a channel account that the adapters take, with the account's own base URL and
/// secrets.
fn own_provider_account(account: &ResolvedAccount) -> ProviderAccount<'_> {
    ProviderAccount {
        id: &account.id,
        channel: account.channel,
        external_id: &account.external_id,
        base_url: (!account.base_url.is_empty()).then_some(account.base_url.as_str()),
        settings: &account.settings,
        secrets: account.secrets(),
    }
}
