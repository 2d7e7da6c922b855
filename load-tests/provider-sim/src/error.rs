//! The crate's error type.

use crate::model::Provider;

/// What can go wrong starting, running or talking to the simulator.
#[derive(Debug, thiserror::Error)]
pub enum SimulatorError {
    /// Binding or serving the listener failed.
    #[error("simulator listener failed")]
    Io(#[from] std::io::Error),
    /// A control API request could not be made or its answer read.
    #[error("simulator control request failed")]
    Request(#[from] reqwest::Error),
    /// The control API refused a request.
    #[error("simulator answered {status}: {body}")]
    Status {
        /// HTTP status.
        status: u16,
        /// The answer body.
        body: String,
    },
    /// The base URL is not a URL.
    #[error("invalid simulator base url {0:?}")]
    BaseUrl(String),
    /// An account of an accounts file was refused.
    #[error("invalid account {provider}/{external_id}: {reason}")]
    InvalidAccount {
        /// The provider.
        provider: Provider,
        /// The account's external id.
        external_id: String,
        /// Why.
        reason: String,
    },
    /// An accounts file is not a JSON list of accounts.
    #[error("invalid accounts json")]
    AccountsJson(#[from] serde_json::Error),
    /// The server task panicked or was cancelled.
    #[error("simulator task failed")]
    Join(#[from] tokio::task::JoinError),
    /// The `provider-sim` binary to start is not there.
    #[error("{} not found: build it with `make build` (or `cargo build -p switchboard-provider-sim`)", .0.display())]
    BinaryMissing(std::path::PathBuf),
    /// A started `provider-sim` never answered its health check.
    #[error("provider-sim did not answer at {0}")]
    NotAnswering(String),
}
