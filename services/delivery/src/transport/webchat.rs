//! How delivery reaches web chat: the `ingress-webchat` component's internal API at
//! `delivery.webchat_endpoint`, authenticated with the internal token. Web chat accounts have
//! no provider URL or credential of their own.

use std::collections::BTreeMap;

use secrecy::{ExposeSecret as _, SecretString};
use switchboard_channels::outbound::ProviderAccount;
use switchboard_channels::webchat::INTERNAL_TOKEN_SECRET;
use switchboard_directory::ResolvedAccount;

/// Where web chat's internal API answers, and the token it takes.
#[derive(Clone)]
pub struct WebchatLink {
    endpoint: String,
    secrets: BTreeMap<String, String>,
}

impl WebchatLink {
    /// The API at `endpoint` (e.g. `http://ingress-webchat:8080`) with `internal_token`.
    pub fn new(endpoint: String, internal_token: &SecretString) -> Self {
        Self {
            endpoint,
            secrets: [(
                INTERNAL_TOKEN_SECRET.to_owned(),
                internal_token.expose_secret().to_owned(),
            )]
            .into(),
        }
    }

    /// The provider view of a web chat account: the internal API as base URL, the internal
    /// token as its only secret.
    pub fn provider_account<'a>(&'a self, account: &'a ResolvedAccount) -> ProviderAccount<'a> {
        ProviderAccount {
            id: &account.id,
            channel: account.channel,
            external_id: &account.external_id,
            base_url: Some(&self.endpoint),
            settings: &account.settings,
            secrets: &self.secrets,
        }
    }
}
