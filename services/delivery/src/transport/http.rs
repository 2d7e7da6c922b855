//! Provider calls over HTTP: the built request with the caller's trace context, bounded by
//! the send timeout, and its answer classified by the channel's adapter.

use std::collections::HashMap;

use switchboard_channels::outbound::{self, ProviderRequest, SendOutcome};

use super::{CallOutcome, Transport};

impl Transport {
    /// Sends a built request with the trace context and the send timeout, and classifies the
    /// answer with `classify`.
    pub async fn execute(
        &self,
        request: ProviderRequest,
        classify: impl FnOnce(u16, &http::HeaderMap, &[u8]) -> SendOutcome,
    ) -> CallOutcome {
        let mut headers = request.headers.clone();
        let mut carrier: HashMap<String, String> = HashMap::new();
        switchboard_telemetry::propagation::inject_span(&tracing::Span::current(), &mut carrier);
        for (name, value) in carrier {
            if let (Ok(name), Ok(value)) = (
                http::HeaderName::from_bytes(name.as_bytes()),
                http::HeaderValue::from_str(&value),
            ) {
                headers.insert(name, value);
            }
        }
        let sent = self
            .http
            .request(request.method.clone(), &request.url)
            .headers(headers)
            .body(request.body)
            .timeout(self.timeout)
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(error) if error.is_connect() => {
                return CallOutcome::NotSent(format!(
                    "connection failed to {}",
                    outbound::redact_url(&request.url)
                ));
            }
            Err(error) if error.is_timeout() => {
                return CallOutcome::Unknown("the provider did not answer in time".to_owned());
            }
            Err(_) => return CallOutcome::Unknown("the connection broke before an answer".to_owned()),
        };
        let status = response.status().as_u16();
        let response_headers = response.headers().clone();
        let body = match response.bytes().await {
            Ok(body) => body,
            Err(_) => return CallOutcome::Unknown(format!("the answer (HTTP {status}) broke off")),
        };
        CallOutcome::Answered {
            status,
            outcome: classify(status, &response_headers, &body),
        }
    }
}
