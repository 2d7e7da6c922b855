//! E-mail delivery: the message built by `switchboard_channels::email::build_email`,
//! submitted over SMTP with lettre to the account's server (`smtp_host`, `smtp_port`,
//! `smtp_tls` = `starttls` (default) | `tls` | `none`; secrets `smtp_username` and
//! `smtp_password`). 2xx is `sent` (the next hop took it; there are no read receipts), 4xx is
//! retried, 5xx fails with the SMTP code; bounces arrive later as failed receipts. Media parts
//! are fetched (at most 20 MB, no executables) and attached as MIME parts.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Tokio1Executor};
use switchboard_channels::email::{EmailFile, build_email};
use switchboard_channels::media::{MAX_ATTACHMENT_BYTES, executable_head};
use switchboard_channels::outbound::{BuildError, SendOutcome};
use switchboard_directory::ResolvedAccount;
use switchboard_egress::{EgressClient, EgressError, read_capped};
use switchboard_proto::common::v1::ProviderError;

use super::attachment::{self, FetchError, URL_REFUSED};
use super::{CallOutcome, own_provider_account};
use crate::store::MessageRow;

type Transport = AsyncSmtpTransport<Tokio1Executor>;

/// SMTP transports per account (pooled connections), rebuilt when the settings change.
pub struct Mailer {
    http: EgressClient,
    timeout: Duration,
    transports: Mutex<HashMap<String, (String, Transport)>>,
}

impl Mailer {
    /// A mailer whose SMTP commands and attachment downloads (with `http`, under the egress
    /// policy) time out after `timeout`.
    pub fn new(http: EgressClient, timeout: Duration) -> Self {
        Self {
            http,
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

    /// Downloads the files of the message's media parts. A file over 20 MB or an executable
    /// fails the message; a 4xx fails it too (the file is gone); other failures are retried.
    async fn fetch_files(&self, row: &MessageRow) -> Result<Vec<EmailFile>, CallOutcome> {
        use switchboard_proto::common::v1::content_part::Part;
        let mut files = Vec::new();
        for media in row.content.parts.iter().filter_map(|part| match &part.part {
            Some(Part::Media(media)) if !media.url.is_empty() => Some(media),
            _ => None,
        }) {
            let failed = |code: &str, message: String, retryable: bool| {
                let error = ProviderError {
                    code: code.to_owned(),
                    message,
                    ..ProviderError::default()
                };
                let outcome = if retryable {
                    SendOutcome::Retryable {
                        error,
                        retry_after: None,
                    }
                } else {
                    SendOutcome::Permanent { error }
                };
                CallOutcome::Answered { status: 0, outcome }
            };
            let fetched = attachment::fetch(
                &self.http,
                &media.url,
                reqwest::header::HeaderMap::new(),
                self.timeout,
            )
            .await;
            let mut response = match fetched {
                Ok(response) => response,
                Err(FetchError::Refused(why)) => return Err(failed(URL_REFUSED, why, false)),
                Err(FetchError::Failed(error)) => {
                    return Err(failed(
                        "attachment_fetch",
                        format!("the attachment could not be fetched: {error}"),
                        true,
                    ));
                }
            };
            let status = response.status();
            if !status.is_success() {
                return Err(failed(
                    "attachment_fetch",
                    format!("the attachment URL answered HTTP {}", status.as_u16()),
                    !status.is_client_error(),
                ));
            }
            let content_type = if media.mime_type.is_empty() {
                response
                    .headers()
                    .get(reqwest::header::CONTENT_TYPE)
                    .and_then(|value| value.to_str().ok())
                    .unwrap_or("application/octet-stream")
                    .to_owned()
            } else {
                media.mime_type.clone()
            };
            let bytes = match read_capped(&mut response, MAX_ATTACHMENT_BYTES).await {
                Ok(bytes) => bytes,
                Err(EgressError::TooLarge(_)) => {
                    return Err(failed(
                        "ATTACHMENT_TOO_LARGE",
                        format!("the attachment is over {MAX_ATTACHMENT_BYTES} bytes"),
                        false,
                    ));
                }
                Err(error) => {
                    return Err(failed(
                        "attachment_fetch",
                        format!("the attachment download broke off: {error}"),
                        true,
                    ));
                }
            };
            if executable_head(&bytes) {
                return Err(failed(
                    "EXECUTABLE_ATTACHMENT",
                    "the attachment's first bytes are an executable's".to_owned(),
                    false,
                ));
            }
            files.push(EmailFile {
                url: media.url.clone(),
                content_type,
                bytes,
            });
        }
        Ok(files)
    }

    /// Submits `row` through `account`'s SMTP server.
    pub async fn send(&self, account: &ResolvedAccount, row: &MessageRow) -> CallOutcome {
        let provider_account = own_provider_account(account);
        let message = row.outbound();
        let automated = matches!(row.author_kind.as_str(), "bot" | "workflow");
        let files = match self.fetch_files(row).await {
            Ok(files) => files,
            Err(outcome) => return outcome,
        };
        let (email, message_id) = match build_email(&provider_account, &message, automated, &files) {
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
