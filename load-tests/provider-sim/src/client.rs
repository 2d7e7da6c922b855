//! A typed client of the control API, for tests and load generators.

use reqwest::Url;
use serde::de::DeserializeOwned;

use crate::error::SimulatorError;
use crate::model::{
    AccountConfig, CallRecord, CallsQuery, ConfiguredAccount, Fault, Provider, SmtpFault, SmtpMessage, Stats,
};

/// Talks to a simulator's `/_sim/` API.
#[derive(Debug, Clone)]
pub struct SimulatorClient {
    base_url: String,
    http: reqwest::Client,
}

#[derive(serde::Deserialize)]
struct FaultsQueued {
    faults_queued: u64,
}

impl SimulatorClient {
    /// A client of the simulator at `base_url` (e.g. `http://127.0.0.1:9900`).
    pub fn new(base_url: impl Into<String>) -> Self {
        let base_url = base_url.into().trim_end_matches('/').to_owned();
        Self {
            base_url,
            http: reqwest::Client::new(),
        }
    }

    /// The simulator's base URL.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    fn url(&self, segments: &[&str]) -> Result<Url, SimulatorError> {
        let mut url =
            Url::parse(&self.base_url).map_err(|_| SimulatorError::BaseUrl(self.base_url.clone()))?;
        url.path_segments_mut()
            .map_err(|()| SimulatorError::BaseUrl(self.base_url.clone()))?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    async fn read<T: DeserializeOwned>(response: reqwest::Response) -> Result<T, SimulatorError> {
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(SimulatorError::Status {
                status: status.as_u16(),
                body,
            });
        }
        Ok(response.json().await?)
    }

    /// Creates or replaces an account (its fault queue too); returns the limits in force.
    pub async fn configure_account(
        &self,
        provider: Provider,
        external_id: &str,
        config: &AccountConfig,
    ) -> Result<ConfiguredAccount, SimulatorError> {
        let url = self.url(&["_sim", "accounts", provider.as_str(), external_id])?;
        let response = self.http.put(url).json(config).send().await?;
        Self::read(response).await
    }

    /// Appends faults to an account's queue; returns the sends the queue now covers.
    pub async fn add_faults(
        &self,
        provider: Provider,
        external_id: &str,
        faults: &[Fault],
    ) -> Result<u64, SimulatorError> {
        let url = self.url(&["_sim", "accounts", provider.as_str(), external_id, "faults"])?;
        let response = self.http.post(url).json(faults).send().await?;
        Ok(Self::read::<FaultsQueued>(response).await?.faults_queued)
    }

    /// The recorded calls matching `query`, in order of arrival.
    pub async fn calls(&self, query: &CallsQuery) -> Result<Vec<CallRecord>, SimulatorError> {
        let mut url = self.url(&["_sim", "calls"])?;
        {
            let mut pairs = url.query_pairs_mut();
            if let Some(provider) = query.provider {
                pairs.append_pair("provider", provider.as_str());
            }
            if let Some(account) = &query.account {
                pairs.append_pair("account", account);
            }
            if let Some(since) = query.since {
                pairs.append_pair("since", &since.to_string());
            }
        }
        let response = self.http.get(url).send().await?;
        Self::read(response).await
    }

    /// Appends faults to the SMTP sink's queue (consumed one per transaction at the end of
    /// `DATA`); returns the transactions the queue now covers.
    pub async fn add_smtp_faults(&self, faults: &[SmtpFault]) -> Result<u64, SimulatorError> {
        let url = self.url(&["_sim", "smtp", "faults"])?;
        let response = self.http.post(url).json(faults).send().await?;
        Ok(Self::read::<FaultsQueued>(response).await?.faults_queued)
    }

    /// Every message the SMTP sink accepted, in order.
    pub async fn smtp_messages(&self) -> Result<Vec<SmtpMessage>, SimulatorError> {
        let response = self
            .http
            .get(self.url(&["_sim", "smtp", "messages"])?)
            .send()
            .await?;
        Self::read(response).await
    }

    /// The messages the SMTP sink accepted after message `seq`, in order.
    pub async fn smtp_messages_since(&self, seq: u64) -> Result<Vec<SmtpMessage>, SimulatorError> {
        let mut url = self.url(&["_sim", "smtp", "messages"])?;
        url.query_pairs_mut().append_pair("since", &seq.to_string());
        let response = self.http.get(url).send().await?;
        Self::read(response).await
    }

    /// The counters of every account (and of the SMTP sink).
    pub async fn stats(&self) -> Result<Stats, SimulatorError> {
        let response = self.http.get(self.url(&["_sim", "stats"])?).send().await?;
        Self::read(response).await
    }

    /// Forgets every account, call, SMTP message and fault, and counter.
    pub async fn reset(&self) -> Result<(), SimulatorError> {
        let response = self.http.post(self.url(&["_sim", "reset"])?).send().await?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(SimulatorError::Status {
                status: status.as_u16(),
                body,
            });
        }
        Ok(())
    }
}
