//! Checks an attachment's bytes before a message is stored: the first bytes must not be an
//! executable's and the size the server reports must be within 20 MB, whatever the sender
//! declared. One ranged GET per attachment URL.

use std::time::Duration;

use switchboard_channels::media::executable_head;
use switchboard_egress::{EgressClient, EgressError};

use crate::DeliveryError;
use crate::content::{MAX_ATTACHMENT_BYTES, executable, too_large};

/// The reason given for an attachment URL the egress policy refuses.
pub(super) const URL_REFUSED: &str = "ATTACHMENT_URL_REFUSED";

/// Why an attachment URL gave no answer.
pub(super) enum FetchError {
    /// The egress policy refuses the URL (retrying cannot help); the text says why.
    Refused(String),
    /// The URL could not be fetched now.
    Failed(EgressError),
}

/// GETs the attachment at `url` under the egress policy, bounded by `timeout`.
pub(super) async fn fetch(
    client: &EgressClient,
    url: &str,
    headers: reqwest::header::HeaderMap,
    timeout: Duration,
) -> Result<reqwest::Response, FetchError> {
    client
        .get(url, headers, timeout)
        .await
        .map_err(|error| match error {
            refused if refused.is_refusal() => {
                FetchError::Refused(format!("the attachment url cannot be used: {refused}"))
            }
            other => FetchError::Failed(other),
        })
}

/// Bytes read from the start of an attachment.
const HEAD_BYTES: usize = 64;

/// Fetches the start of attachment URLs, only from addresses the egress policy allows.
#[derive(Clone)]
pub struct AttachmentCheck {
    client: EgressClient,
    timeout: Duration,
    enabled: bool,
}

impl AttachmentCheck {
    /// A checker waiting at most `timeout` per attachment; `enabled = false` skips the fetch
    /// (declared name, type and size are still checked).
    pub fn new(client: EgressClient, timeout: Duration, enabled: bool) -> Self {
        Self {
            client,
            timeout,
            enabled,
        }
    }

    /// Refuses `url` when its bytes start like an executable, its size is over the limit, or
    /// it cannot be fetched (the provider could not fetch it either).
    pub async fn check(&self, url: &str) -> Result<(), DeliveryError> {
        if !self.enabled {
            return Ok(());
        }
        let unreachable = |why: String| {
            DeliveryError::content(
                "ATTACHMENT_UNREACHABLE",
                format!("the attachment url could not be fetched ({why}); the provider would fail too"),
            )
        };
        let mut headers = reqwest::header::HeaderMap::new();
        if let Ok(range) = format!("bytes=0-{}", HEAD_BYTES - 1).parse() {
            headers.insert(reqwest::header::RANGE, range);
        }
        let mut response =
            fetch(&self.client, url, headers, self.timeout)
                .await
                .map_err(|error| match error {
                    FetchError::Refused(why) => DeliveryError::content(URL_REFUSED, why),
                    FetchError::Failed(error) => unreachable(error.to_string()),
                })?;
        if !response.status().is_success() {
            return Err(unreachable(format!("HTTP {}", response.status().as_u16())));
        }
        let size = total_size(response.headers(), response.status().as_u16());
        if let Some(size) = size
            && size > MAX_ATTACHMENT_BYTES
        {
            return Err(too_large(size));
        }
        let mut head = Vec::with_capacity(HEAD_BYTES);
        while head.len() < HEAD_BYTES {
            match response.chunk().await {
                Ok(Some(chunk)) => head.extend_from_slice(&chunk),
                Ok(None) => break,
                Err(_) => return Err(unreachable("the download broke off".to_owned())),
            }
        }
        if executable_head(&head) {
            return Err(executable("its content"));
        }
        Ok(())
    }
}

/// The whole file's size: `Content-Range: bytes 0-63/12345` on 206, `Content-Length` on 200.
fn total_size(headers: &reqwest::header::HeaderMap, status: u16) -> Option<u64> {
    if status == 206 {
        let range = headers.get(reqwest::header::CONTENT_RANGE)?.to_str().ok()?;
        return range.rsplit_once('/')?.1.trim().parse().ok();
    }
    headers
        .get(reqwest::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_come_from_the_content_range_or_the_length() {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::CONTENT_RANGE,
            "bytes 0-63/30000000".parse().unwrap(),
        );
        assert_eq!(total_size(&headers, 206), Some(30_000_000));
        headers.insert(reqwest::header::CONTENT_LENGTH, "64".parse().unwrap());
        assert_eq!(total_size(&headers, 200), Some(64));
    }
}
