//! The visitor's WebSocket (`GET /webchat/{account}/ws?token=…`): JSON frames both ways,
//! replay after `resume` with no gap and no duplicate, live messages woken by the hub, and
//! clear close codes.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::response::Response;
use futures_util::{SinkExt as _, StreamExt as _};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;

use crate::Webchat;
use crate::account::WebchatAccount;
use crate::error::ApiError;
use crate::extract::Account;
use crate::frames::{ClientFrame, FrameError, Incoming, VisitorSend, close_message, error_frame, frame};
use crate::hub::Signal;
use crate::store::Visitor;

/// Close codes (see PROTOCOL.md).
mod close {
    pub(super) const GOING_AWAY: u16 = 1001;
    pub(super) const TOO_BIG: u16 = 1009;
    pub(super) const SESSION_INVALID: u16 = 4401;
    pub(super) const ACCOUNT_GONE: u16 = 4403;
    pub(super) const IDLE: u16 = 4408;
    pub(super) const RATE_LIMITED: u16 = 4429;
    pub(super) const INTERNAL: u16 = 4500;
}

/// The close reason when storage or the directory fails.
const UNAVAILABLE: &str = "the chat service is unavailable; reconnect later";
/// How often a socket reads its thread while hints between replicas are not flowing.
const POLL_WITHOUT_HINTS: Duration = Duration::from_secs(3);
/// How often it reads it anyway (a hint lost between replicas delays a message at most this).
const POLL_WITH_HINTS: Duration = Duration::from_secs(30);
/// Longest wait for the client to take a frame; a client that stops reading is dropped.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Most messages sent per catch-up step; a longer backlog goes out in steps.
const CATCH_UP_STEP: i64 = 200;
/// Least time between two visitor typing notifications of one socket (the same state is
/// not repeated sooner).
const TYPING_INTERVAL: Duration = Duration::from_secs(2);

/// The query of the upgrade.
#[derive(Debug, Deserialize)]
pub(crate) struct SocketQuery {
    #[serde(default)]
    token: String,
}

/// Accepts the upgrade (the origin was checked by the router's middleware); a bad token is
/// reported with close code 4401 so the widget can tell it from a network failure.
pub(crate) async fn upgrade(
    State(webchat): State<Arc<Webchat>>,
    Query(query): Query<SocketQuery>,
    upgrade: WebSocketUpgrade,
    Account(account): Account,
) -> Response {
    // Frames up to 4× the limit are read whole so the socket can close with 1009 itself.
    let read_limit = webchat.config.max_frame_bytes * 4;
    upgrade
        .max_message_size(read_limit)
        .max_frame_size(read_limit)
        .on_upgrade(move |socket| async move {
            let visitor = webchat.visitor(&account, &query.token).await;
            Connection {
                webchat,
                account,
                last_sent: None,
                behind: false,
                rate_violations: 0,
                delivered: 0,
                read: 0,
                typing: None,
            }
            .run(socket, visitor)
            .await;
        })
}

struct Connection {
    webchat: Arc<Webchat>,
    account: WebchatAccount,
    /// The highest seq sent (None until the client resumed).
    last_sent: Option<i64>,
    /// More of the thread waits to be sent (a catch-up step was full).
    behind: bool,
    rate_violations: u32,
    /// The delivered and read marks this socket already stored.
    delivered: i64,
    read: i64,
    /// The last typing state published, and when.
    typing: Option<(bool, tokio::time::Instant)>,
}

/// Counts an open socket until dropped.
struct SocketCount(Arc<Webchat>);

impl Drop for SocketCount {
    fn drop(&mut self) {
        self.0.metrics.sockets.dec();
    }
}

/// Why the loop ends.
struct Closing(u16, &'static str);

impl Connection {
    async fn run(mut self, socket: WebSocket, visitor: Result<Visitor, ApiError>) {
        let (mut sink, mut stream) = socket.split();
        let visitor = match visitor {
            Ok(visitor) => visitor,
            Err(error) => {
                error.log();
                let (code, reason) = match error {
                    ApiError::Session(_) => (
                        close::SESSION_INVALID,
                        "session invalid or expired; start a new session",
                    ),
                    _ => (close::INTERNAL, UNAVAILABLE),
                };
                let _ = sink.send(close_message(code, reason)).await;
                return;
            }
        };
        let webchat = self.webchat.clone();
        webchat.metrics.sockets.inc();
        let _open = SocketCount(webchat.clone());
        let mut subscription = webchat.hub.subscribe(self.account.id(), &visitor.visitor_id);
        let mut hints = webchat.hub.receiving_hints();
        let heartbeat = webchat.config.heartbeat;
        let ready = frame(
            "ready",
            json!({
                "visitor_id": visitor.visitor_id,
                "last_seq": visitor.last_seq,
                "agent_read_seq": visitor.agent_read_seq,
                "heartbeat_seconds": heartbeat.as_secs(),
            }),
        );
        if !matches!(
            tokio::time::timeout(SEND_TIMEOUT, sink.send(ready)).await,
            Ok(Ok(()))
        ) {
            return;
        }
        let mut last_frame = tokio::time::Instant::now();
        let mut poll_at = tokio::time::Instant::now() + POLL_WITHOUT_HINTS;
        let closing = loop {
            let poll_every = if *hints.borrow() {
                POLL_WITH_HINTS
            } else {
                POLL_WITHOUT_HINTS
            };
            let outgoing: Result<Vec<Message>, Closing> = tokio::select! {
                () = webchat.shutdown.cancelled() => Err(Closing(close::GOING_AWAY, "server restarting; reconnect")),
                () = tokio::time::sleep_until(last_frame + heartbeat * 3) => {
                    Err(Closing(close::IDLE, "no frame for three heartbeats"))
                }
                incoming = stream.next() => match incoming {
                    None | Some(Err(_)) => break None,
                    Some(Ok(message)) => {
                        last_frame = tokio::time::Instant::now();
                        self.on_message(message, &visitor).await
                    }
                },
                // The rest of a long backlog, a step at a time.
                () = std::future::ready(()), if self.behind => self.catch_up(&visitor).await,
                // Hints (re)connected: anything stored meanwhile.
                Ok(()) = hints.changed() => self.catch_up(&visitor).await,
                signal = subscription.receiver.recv() => match signal {
                    Ok(Signal::Message { .. }) | Err(RecvError::Lagged(_)) => self.catch_up(&visitor).await,
                    Ok(Signal::Typing { on }) => Ok(vec![frame("typing", json!({"who": "agent", "state": if on { "on" } else { "off" }}))]),
                    Ok(Signal::AgentRead { seq }) => Ok(vec![frame("read", json!({"reader": "agent", "up_to_seq": seq}))]),
                    Err(RecvError::Closed) => Err(Closing(close::INTERNAL, "internal error; reconnect")),
                },
                () = tokio::time::sleep_until(poll_at.min(tokio::time::Instant::now() + poll_every)) => {
                    poll_at = tokio::time::Instant::now() + poll_every;
                    match webchat.account(self.account.id()).await {
                        Err(ApiError::UnknownAccount) => {
                            Err(Closing(close::ACCOUNT_GONE, "this chat was switched off"))
                        }
                        _ => self.catch_up(&visitor).await,
                    }
                }
            };
            match outgoing {
                Ok(frames) => {
                    for message in frames {
                        let sent = tokio::time::timeout(SEND_TIMEOUT, sink.send(message)).await;
                        if !matches!(sent, Ok(Ok(()))) {
                            return;
                        }
                    }
                }
                Err(closing) => break Some(closing),
            }
        };
        if let Some(Closing(code, reason)) = closing {
            let _ = tokio::time::timeout(SEND_TIMEOUT, sink.send(close_message(code, reason))).await;
        }
    }

    async fn on_message(&mut self, message: Message, visitor: &Visitor) -> Result<Vec<Message>, Closing> {
        let text = match message {
            Message::Text(text) => text,
            Message::Binary(_) => return Ok(vec![refusal(&FrameError::Binary.into(), None)]),
            Message::Ping(_) | Message::Pong(_) => return Ok(Vec::new()),
            Message::Close(_) => return Err(Closing(1000, "bye")),
        };
        if text.len() > self.webchat.config.max_frame_bytes {
            return Err(Closing(close::TOO_BIG, "frame larger than 64 KiB"));
        }
        match ClientFrame::parse(text.as_str()) {
            Err(error) => Ok(vec![refusal(&error.into(), None)]),
            Ok(Incoming::Ping) => Ok(vec![frame("pong", json!({}))]),
            Ok(Incoming::Resume { last_seq }) => self.resume(visitor, last_seq).await,
            Ok(Incoming::Send(send)) => self.send(visitor, &send).await,
            Ok(Incoming::Typing(on)) => {
                self.typing(visitor, on);
                Ok(Vec::new())
            }
            Ok(Incoming::Mark { read, up_to_seq }) => Ok(self.mark(visitor, read, up_to_seq).await),
        }
    }

    /// Publishes the visitor's typing, unless this socket published the same state just now.
    fn typing(&mut self, visitor: &Visitor, on: bool) {
        let now = tokio::time::Instant::now();
        let repeated = self
            .typing
            .is_some_and(|(last, at)| last == on && now.duration_since(at) < TYPING_INTERVAL);
        if !repeated {
            self.typing = Some((on, now));
            // Published apart from this socket's loop: a slow broker never holds up the
            // visitor's messages.
            let (webchat, account, visitor) = (self.webchat.clone(), self.account.clone(), visitor.clone());
            tokio::spawn(async move { webchat.visitor_typing(&account, &visitor, on).await });
        }
    }

    /// Stores the visitor's delivered or read mark (only up to what this socket sent).
    async fn mark(&mut self, visitor: &Visitor, read: bool, up_to_seq: i64) -> Vec<Message> {
        // Only what this socket sent can have been received or seen.
        let up_to = up_to_seq.min(self.last_sent.unwrap_or(0));
        let known = if read { self.read } else { self.delivered };
        if up_to <= known {
            return Vec::new();
        }
        match self.webchat.mark(&self.account, visitor, read, up_to).await {
            Ok(()) => {
                if read {
                    self.read = up_to;
                }
                self.delivered = self.delivered.max(up_to);
                Vec::new()
            }
            Err(error) => vec![refusal(&error, None)],
        }
    }

    async fn send(&mut self, visitor: &Visitor, send: &VisitorSend) -> Result<Vec<Message>, Closing> {
        let client_id = Some(send.client_id.as_str());
        match self.webchat.accept(&self.account, visitor, send).await {
            Ok((message, _created)) => {
                // The echo comes with the catch-up when the client has resumed.
                let before = self.last_sent;
                let mut frames = self.catch_up(visitor).await?;
                let in_catch_up = before.is_some_and(|before| message.seq > before)
                    && self.last_sent.is_some_and(|last| message.seq <= last);
                // Not resumed yet, or a resend of a message sent before: answer it directly (a
                // new message past a full catch-up step comes with the next step).
                if !in_catch_up && self.last_sent.is_none_or(|last| message.seq <= last) {
                    frames.push(frame("message.created", message.to_wire()));
                }
                Ok(frames)
            }
            Err(error @ ApiError::MessageRateLimited { .. }) => {
                self.rate_violations += 1;
                if self.rate_violations > self.webchat.config.max_rate_violations {
                    return Err(Closing(close::RATE_LIMITED, "too many messages; slow down"));
                }
                Ok(vec![refusal(&error, client_id)])
            }
            Err(ApiError::Session(_)) => Err(Closing(
                close::SESSION_INVALID,
                "session invalid; start a new session",
            )),
            Err(error) => Ok(vec![refusal(&error, client_id)]),
        }
    }

    /// Sends everything after `last_seq`, or `resync_required` when that is too much.
    async fn resume(&mut self, visitor: &Visitor, last_seq: i64) -> Result<Vec<Message>, Closing> {
        let current = match self
            .webchat
            .store
            .visitor(self.account.id(), &visitor.visitor_id)
            .await
        {
            Ok(Some(current)) => current,
            Ok(None) => {
                return Err(Closing(
                    close::SESSION_INVALID,
                    "this visitor no longer exists; start a new session",
                ));
            }
            Err(error) => {
                ApiError::from(error).log();
                return Err(Closing(close::INTERNAL, UNAVAILABLE));
            }
        };
        if current.last_seq - last_seq > self.webchat.config.resume_replay_limit {
            self.last_sent = Some(current.last_seq);
            let mut frames = vec![frame(
                "resync_required",
                json!({"after_seq": last_seq, "up_to_seq": current.last_seq}),
            )];
            frames.extend(self.catch_up(visitor).await?);
            return Ok(frames);
        }
        self.last_sent = Some(last_seq);
        let mut frames = self.catch_up(visitor).await?;
        frames.push(frame(
            "read",
            json!({"reader": "agent", "up_to_seq": current.agent_read_seq}),
        ));
        Ok(frames)
    }

    /// The next messages after the last one sent, at most [`CATCH_UP_STEP`] (the loop asks
    /// again while [`Connection::behind`]); nothing before the client resumed.
    async fn catch_up(&mut self, visitor: &Visitor) -> Result<Vec<Message>, Closing> {
        let Some(last) = self.last_sent else {
            return Ok(Vec::new());
        };
        let batch = self
            .webchat
            .store
            .messages_after(self.account.id(), &visitor.visitor_id, last, CATCH_UP_STEP)
            .await
            .map_err(|error| {
                ApiError::from(error).log();
                Closing(close::INTERNAL, UNAVAILABLE)
            })?;
        self.behind = batch.len() as i64 == CATCH_UP_STEP;
        if let Some(newest) = batch.last() {
            self.last_sent = Some(newest.seq);
        }
        Ok(batch
            .iter()
            .map(|message| frame("message.created", message.to_wire()))
            .collect())
    }
}

/// The `error` frame of a refused frame or message (a server failure is logged here).
fn refusal(error: &ApiError, client_id: Option<&str>) -> Message {
    error.log();
    error_frame(error.wire_code(), &error.to_string(), client_id)
}
