//! The provider API surface: routes a request to its provider by path, runs it through the
//! account's pipeline (credential → fault → rate limit → accept) and answers after the
//! account's latency, posting receipts before or after as configured.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, Method, StatusCode, Uri};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::state::{Answer, SimState};
use crate::wire::{graph, telegram, twilio};

/// Where a path points.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    /// `/{version}/{object_id}/messages`.
    Graph { object_id: String },
    /// `/bot{token}/{method}`.
    Telegram { token: String, method: String },
    /// `/2010-04-01/Accounts/{sid}/Messages.json`.
    Twilio { account_sid: String },
}

fn route(path: &str) -> Option<Route> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        ["2010-04-01", "Accounts", sid, "Messages.json"] => Some(Route::Twilio {
            account_sid: percent_decode(sid),
        }),
        [bot, method] if bot.starts_with("bot") && !method.is_empty() => Some(Route::Telegram {
            token: percent_decode(&bot[3..]),
            method: (*method).to_owned(),
        }),
        [version, object_id, "messages"] if !version.is_empty() && !object_id.is_empty() => {
            Some(Route::Graph {
                object_id: percent_decode(object_id),
            })
        }
        _ => None,
    }
}

/// Decodes `%XX` escapes of a path segment (invalid escapes stay as they are).
fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let escaped = (bytes[index] == b'%')
            .then(|| bytes.get(index + 1..index + 3))
            .flatten()
            .and_then(|pair| std::str::from_utf8(pair).ok())
            .and_then(|pair| u8::from_str_radix(pair, 16).ok());
        match escaped {
            Some(byte) => {
                decoded.push(byte);
                index += 3;
            }
            None => {
                decoded.push(bytes[index]);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

/// Answers every request outside `/_sim/` as the provider its path belongs to.
pub(crate) async fn handle(
    State(state): State<Arc<SimState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(route) = route(uri.path()) else {
        let body = json!({"error": "no simulated provider endpoint at this path", "path": uri.path()});
        return (StatusCode::NOT_FOUND, axum::Json(body)).into_response();
    };
    let query = uri.query();
    let parsed = match route {
        Route::Graph { .. } if method != Method::POST => {
            return graph::provider_error(
                crate::model::Provider::Messenger,
                "100",
                None,
                None,
                Some(&format!(
                    "Unsupported {} request.",
                    method.as_str().to_ascii_lowercase()
                )),
            )
            .into_response();
        }
        Route::Twilio { .. } if method != Method::POST => {
            return twilio::provider_error("20004", Some(405), Some("Method not allowed")).into_response();
        }
        Route::Graph { object_id } => graph::parse(&state, &object_id, query, &headers, &body),
        Route::Telegram { token, method } => telegram::parse(&state, &token, &method, query, &headers, &body),
        Route::Twilio { account_sid } => twilio::parse(&state, &account_sid, &headers, &body),
    };
    let call = match parsed {
        Ok(call) => call,
        Err(refused) => {
            let latency = state.refuse(&refused);
            tokio::time::sleep(latency).await;
            return refused.reply.into_response();
        }
    };
    let decision = state.decide(&call, Instant::now());
    if let Some(job) = &decision.receipts {
        job.post_before_response(&state).await;
    }
    if let Some(job) = decision.receipts {
        job.spawn_rest(Arc::clone(&state));
    }
    tokio::time::sleep(decision.latency).await;
    match decision.answer {
        Answer::Reply(reply) => reply.into_response(),
        Answer::Drop(hold) => hold_then_close(state.epoch(), hold).await,
    }
}

/// Holds the request unanswered for `hold` (or until reset / shutdown), then closes the
/// connection without a response: a body that fails before its first byte makes the server
/// drop the connection before the status line is written.
async fn hold_then_close(epoch: CancellationToken, hold: Duration) -> Response {
    tokio::select! {
        () = epoch.cancelled() => {}
        () = tokio::time::sleep(hold) => {}
    }
    let failing = futures_util::stream::once(async {
        Err::<Bytes, io::Error>(io::Error::other("response dropped by fault injection"))
    });
    Response::new(Body::from_stream(failing))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_route_to_their_provider() {
        assert_eq!(
            route("/v23.0/106540352242922/messages"),
            Some(Route::Graph {
                object_id: "106540352242922".to_owned()
            })
        );
        assert_eq!(
            route("/bot123%3AABC-def/sendMessage"),
            Some(Route::Telegram {
                token: "123:ABC-def".to_owned(),
                method: "sendMessage".to_owned()
            })
        );
        assert_eq!(
            route("/2010-04-01/Accounts/AC123/Messages.json"),
            Some(Route::Twilio {
                account_sid: "AC123".to_owned()
            })
        );
        assert_eq!(route("/v23.0/123/media"), None);
        assert_eq!(route("/"), None);
    }
}
