//! The guarded HTTP client: a resolver that refuses a host when any of its addresses is not
//! allowed, a check of literal-address URLs (which no resolver sees), a redirect policy that
//! checks every hop, and a capped body reader.

use std::error::Error as _;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::HeaderMap;
use reqwest::{Response, Url};

use crate::address::Reserved;
use crate::config::{EgressConfig, EgressPolicy};

/// Why a fetch did not happen or did not finish. Refusals ([`EgressError::is_refusal`]) are
/// the caller's URL's fault and never succeed on retry; the rest may.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EgressError {
    /// Not a URL.
    #[error("the url is not a valid absolute url")]
    InvalidUrl,
    /// A scheme other than http and https.
    #[error("only http and https urls can be fetched, not {0}")]
    Scheme(String),
    /// The host is, or resolves to, an address that may not be reached.
    #[error(
        "{host} is {} ({address}), which Switchboard does not fetch from; an operator can allow it in egress.allow_networks",
        reason.describe()
    )]
    Refused {
        /// The host as the URL names it.
        host: String,
        /// The refused address.
        address: IpAddr,
        /// Why.
        reason: Reserved,
    },
    /// More redirects than `egress.max_redirects`.
    #[error("the url redirects more than {0} times")]
    TooManyRedirects(usize),
    /// The host name has no address.
    #[error("{0} does not resolve")]
    Unresolvable(String),
    /// No answer in time.
    #[error("the fetch timed out")]
    Timeout,
    /// The connection could not be made or broke.
    #[error("the connection failed")]
    Connection,
    /// The body is over the caller's cap.
    #[error("the body is larger than {0} bytes")]
    TooLarge(u64),
}

impl EgressError {
    /// True when the URL itself is refused (a retry cannot help).
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            Self::InvalidUrl | Self::Scheme(_) | Self::Refused { .. } | Self::TooManyRedirects(_)
        )
    }

    /// The egress error behind a reqwest error (a refusal from the resolver or the redirect
    /// policy), or the kind of transport failure. The URL is never part of the message: it
    /// may carry signed tokens.
    fn from_reqwest(error: &reqwest::Error) -> Self {
        let mut source = error.source();
        while let Some(cause) = source {
            if let Some(egress) = cause.downcast_ref::<EgressError>() {
                return egress.clone();
            }
            source = cause.source();
        }
        if error.is_timeout() {
            Self::Timeout
        } else {
            Self::Connection
        }
    }
}

/// An HTTP client for caller-given URLs under an [`EgressPolicy`].
#[derive(Clone)]
pub struct EgressClient {
    client: reqwest::Client,
    policy: Arc<EgressPolicy>,
}

impl EgressClient {
    /// A client following `config`, sending `user_agent`.
    pub fn new(config: &EgressConfig, user_agent: &str) -> Result<Self, String> {
        let policy = Arc::new(config.policy()?);
        let redirects = policy.clone();
        let max_redirects = config.max_redirects;
        let client = reqwest::Client::builder()
            .user_agent(user_agent)
            // A proxy would resolve names itself, past the resolver's check.
            .no_proxy()
            .dns_resolver(Arc::new(CheckedResolver {
                policy: policy.clone(),
            }))
            .connect_timeout(config.connect_timeout)
            .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() > max_redirects {
                    return attempt.error(EgressError::TooManyRedirects(max_redirects));
                }
                match check_url(&redirects, attempt.url()) {
                    Ok(()) => attempt.follow(),
                    Err(error) => attempt.error(error),
                }
            }))
            .build()
            .map_err(|error| format!("cannot build the egress http client: {error}"))?;
        Ok(Self { client, policy })
    }

    /// GETs `url` with `headers`, the whole exchange (redirects included) bounded by
    /// `timeout`. Answers of any status are returned; read the body with [`read_capped`].
    pub async fn get(
        &self,
        url: &str,
        headers: HeaderMap,
        timeout: Duration,
    ) -> Result<Response, EgressError> {
        let url = Url::parse(url).map_err(|_| EgressError::InvalidUrl)?;
        check_url(&self.policy, &url)?;
        self.client
            .get(url)
            .headers(headers)
            .timeout(timeout)
            .send()
            .await
            .map_err(|error| EgressError::from_reqwest(&error))
    }
}

/// Reads `response`'s body, refusing it as soon as it exceeds `max_bytes`.
pub async fn read_capped(response: &mut Response, max_bytes: u64) -> Result<Vec<u8>, EgressError> {
    if response.content_length().is_some_and(|length| length > max_bytes) {
        return Err(EgressError::TooLarge(max_bytes));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|error| EgressError::from_reqwest(&error))?
    {
        body.extend_from_slice(&chunk);
        if body.len() as u64 > max_bytes {
            return Err(EgressError::TooLarge(max_bytes));
        }
    }
    Ok(body)
}

/// Checks a URL's scheme and, when its host is a literal address (no resolver sees those),
/// the address.
fn check_url(policy: &EgressPolicy, url: &Url) -> Result<(), EgressError> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(EgressError::Scheme(url.scheme().to_owned()));
    }
    let host = url.host_str().ok_or(EgressError::InvalidUrl)?;
    let literal = host
        .strip_prefix('[')
        .and_then(|inner| inner.strip_suffix(']'))
        .unwrap_or(host);
    if let Ok(address) = literal.parse::<IpAddr>()
        && let Some(reason) = policy.refusal(address)
    {
        return Err(EgressError::Refused {
            host: host.to_owned(),
            address,
            reason,
        });
    }
    Ok(())
}

/// Resolves with the system resolver and refuses the host when any answer is not allowed;
/// the connection then uses exactly the addresses checked.
struct CheckedResolver {
    policy: Arc<EgressPolicy>,
}

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|_| EgressError::Unresolvable(host.clone()))?
                .collect();
            if addresses.is_empty() {
                return Err(EgressError::Unresolvable(host).into());
            }
            for address in &addresses {
                if let Some(reason) = policy.refusal(address.ip()) {
                    return Err(EgressError::Refused {
                        host,
                        address: address.ip(),
                        reason,
                    }
                    .into());
                }
            }
            Ok(Box::new(addresses.into_iter()) as Addrs)
        })
    }
}
