//! E-mail delivery: the message built by `switchboard_channels::email::build_email`,
//! submitted over SMTP with lettre to the account's server (`smtp_host`, `smtp_port`,
//! `smtp_tls` = `starttls` (default) | `tls` | `none`; secrets `smtp_username` and
//! `smtp_password`). 2xx is `sent` (the next hop took it; there are no read receipts), 4xx is
//! retried, 5xx fails with the SMTP code; bounces arrive later as failed receipts.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Tokio1Executor};
use switchboard_channels::email::build_email;
use switchboard_channels::outbound::{BuildError, SendOutcome};
use switchboard_directory::ResolvedAccount;
use switchboard_proto::common::v1::ProviderError;

use crate::sender::CallOutcome;
use crate::store::MessageRow;

type Transport = AsyncSmtpTransport<Tokio1Executor>;

/// SMTP transports per account (pooled connections), rebuilt when the settings change.
pub struct Mailer {
    timeout: Duration,
    transports: Mutex<HashMap<String, (String, Transport)>>,
}

impl Mailer {
    /// A mailer whose SMTP commands time out after `timeout`.
    pub fn new(timeout: Duration) -> Self {
        Self {
            timeout,
            transports: Mutex::new(HashMap::new()),
        }
    }

    fn transport(&self, account: &ResolvedAccount) -> Result<Transport, BuildError> {
        let host = account
            .setting("smtp_host")
            .filter(|host| !host.is_empty())
            .ok_or(BuildError::MissingCredential("smtp_host setting"))?;
        let tls = account.setting("smtp_tls").unwrap_or("starttls");
        let default_port = match tls {
            "tls" => 465,
            "none" => 25,
            _ => 587,
        };
        let port = match account.setting("smtp_port") {
            Some(port) => port
                .parse::<u16>()
                .map_err(|_| BuildError::Unsupported(format!("smtp_port {port:?} is not a port")))?,
            None => default_port,
        };
        let user = account
            .secret("smtp_username")
            .map(|user| String::from_utf8_lossy(user).into_owned());
        let fingerprint = format!("{host}:{port}:{tls}:{}", user.as_deref().unwrap_or_default());
        let mut transports = self
            .transports
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((known, transport)) = transports.get(&account.id)
            && *known == fingerprint
        {
            return Ok(transport.clone());
        }
        let builder = match tls {
            "none" => Transport::builder_dangerous(host),
            "tls" => Transport::relay(host)
                .map_err(|error| BuildError::Unsupported(format!("smtp tls: {error}")))?,
            "starttls" => Transport::starttls_relay(host)
                .map_err(|error| BuildError::Unsupported(format!("smtp starttls: {error}")))?,
            other => {
                return Err(BuildError::Unsupported(format!(
                    "smtp_tls {other:?} is not one of starttls, tls, none"
                )));
            }
        };
        let mut builder = builder.port(port).timeout(Some(self.timeout));
        if let Some(user) = user {
            let password = account
                .secret("smtp_password")
                .map(|password| String::from_utf8_lossy(password).into_owned())
                .unwrap_or_default();
            builder = builder.credentials(Credentials::new(user, password));
        }
        let transport = builder.build();
        transports.insert(account.id.clone(), (fingerprint, transport.clone()));
        Ok(transport)
    }

    /// Submits `row` through `account`'s SMTP server.
    pub async fn send(&self, account: &ResolvedAccount, row: &MessageRow) -> CallOutcome {
        let provider_account = crate::store::provider_account(account);
        let message = row.outbound();
        let automated = matches!(row.author_kind.as_str(), "bot" | "workflow");
        let (email, message_id) = match build_email(&provider_account, &message, automated) {
            Ok(built) => built,
            Err(error) => return CallOutcome::Unbuildable(error),
        };
        let transport = match self.transport(account) {
            Ok(transport) => transport,
            Err(error) => return CallOutcome::Unbuildable(error),
        };
        match transport.send(email).await {
            Ok(response) => CallOutcome::Answered {
                status: u16::from(response.code()),
                outcome: SendOutcome::Accepted {
                    provider_message_id: message_id,
                },
            },
            Err(error) => {
                let status = error.status().map_or(0, u16::from);
                let provider_error = ProviderError {
                    code: status.to_string(),
                    title: String::new(),
                    message: error.to_string(),
                    details: String::new(),
                };
                if error.is_permanent() {
                    CallOutcome::Answered {
                        status,
                        outcome: SendOutcome::Permanent {
                            error: provider_error,
                        },
                    }
                } else if error.is_transient() {
                    CallOutcome::Answered {
                        status,
                        outcome: SendOutcome::Retryable {
                            error: provider_error,
                            retry_after: None,
                        },
                    }
                } else if error.is_timeout() {
                    CallOutcome::Unknown("the SMTP server did not answer in time".to_owned())
                } else {
                    CallOutcome::NotSent(format!("smtp: {error}"))
                }
            }
        }
    }
}
