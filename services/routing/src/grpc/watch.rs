//! `WatchEvents`: the workspace's event log from a cursor, then live as changes commit.

use std::pin::Pin;
use std::time::Duration;

use switchboard_domain::time::to_timestamp;
use switchboard_domain::{ConversationId, WorkspaceId};
use switchboard_postgres::{Pool, Wakeup};
use switchboard_proto::routing::v1 as proto;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use tonic::Status;

use super::{RoutingApi, optional_id};
use crate::RoutingError;
use crate::event_log::{self, Cursor, EventFeed, LoggedEvent};

/// The stream `WatchEvents` returns.
pub(crate) type EventStream =
    Pin<Box<dyn futures_util::Stream<Item = Result<proto::ConversationEvent, Status>> + Send>>;

/// Events read per query.
const BATCH: i64 = 500;
/// Events buffered per watcher before it waits for the client.
const BUFFER: usize = 256;
/// A watcher re-reads the log this often even without a wake-up (a safety net only).
const RECHECK: Duration = Duration::from_secs(5);
/// How soon a watcher looks again while committed events wait behind an older transaction.
const HELD_BACK_RECHECK: Duration = Duration::from_millis(20);

/// One watcher.
struct Watch {
    /// Where the log is read from.
    pool: Pool,
    /// Wake-ups when changes commit.
    feed: EventFeed,
    /// Ends the stream when the process stops.
    shutdown: CancellationToken,
    /// Whose log.
    workspace: WorkspaceId,
    /// Only this conversation's events, when given.
    conversation: Option<ConversationId>,
}

impl RoutingApi {
    /// Streams the workspace's event log (of one conversation when named) after a cursor,
    /// then live.
    pub(crate) async fn watch_events(
        &self,
        workspace: &WorkspaceId,
        request: proto::WatchEventsRequest,
    ) -> Result<EventStream, RoutingError> {
        let conversation = optional_id("conversation_id", &request.conversation_id)?;
        start(
            Watch {
                pool: self.pool.clone(),
                feed: self.feed.clone(),
                shutdown: self.shutdown.clone(),
                workspace: workspace.clone(),
                conversation,
            },
            &request.from_cursor,
        )
        .await
    }
}

/// Checks the cursor and starts streaming after it.
async fn start(watch: Watch, from_cursor: &str) -> Result<EventStream, RoutingError> {
    // Subscribed before the first read: a change committed in between wakes us.
    let wakeups = watch.feed.subscribe();
    let client = watch.pool.get().await?;
    let position = event_log::position(&client, &watch.workspace).await?;
    drop(client);
    let after = if from_cursor.is_empty() {
        position.now
    } else {
        let cursor = Cursor::parse(from_cursor).ok_or_else(|| {
            RoutingError::Invalid("from_cursor: not a cursor WatchEvents returned".to_owned())
        })?;
        if cursor.tx > position.newest_tx {
            return Err(RoutingError::Invalid(
                "from_cursor: ahead of the event log (not a cursor WatchEvents returned)".to_owned(),
            ));
        }
        if cursor < position.pruned_through {
            return Err(RoutingError::Refused {
                reason: "CURSOR_EXPIRED",
                message: "from_cursor: older than the event retention; re-read the conversations, then watch from an empty cursor".to_owned(),
                metadata: std::collections::HashMap::new(),
            });
        }
        cursor
    };
    let (sender, receiver) = mpsc::channel(BUFFER);
    tokio::spawn(run(watch, after, wakeups, sender));
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|item| (item, receiver))
    });
    Ok(Box::pin(stream))
}

/// Sends everything after `after`, then waits for wake-ups, until the client goes away or the
/// server shuts down.
async fn run(
    watch: Watch,
    mut after: Cursor,
    mut wakeups: broadcast::Receiver<Wakeup>,
    sender: mpsc::Sender<Result<proto::ConversationEvent, Status>>,
) {
    let mut held_back;
    loop {
        loop {
            let read = match read(&watch, after).await {
                Ok(read) => read,
                Err(error) => {
                    tracing::warn!(error = %error, "reading the event log for a watcher failed");
                    let _ = sender
                        .send(Err(Status::unavailable(
                            "reading the event log failed; reconnect with your last cursor",
                        )))
                        .await;
                    return;
                }
            };
            let full = i64::try_from(read.events.len()).unwrap_or(i64::MAX) >= BATCH;
            held_back = read.held_back;
            for event in read.events {
                after = event.cursor;
                if sender.send(Ok(to_proto(event))).await.is_err() {
                    return;
                }
            }
            if !full {
                break;
            }
        }
        loop {
            tokio::select! {
                () = watch.shutdown.cancelled() => {
                    let _ = sender
                        .send(Err(Status::unavailable("the server is shutting down; reconnect with your last cursor")))
                        .await;
                    return;
                }
                () = sender.closed() => return,
                () = tokio::time::sleep(if held_back { HELD_BACK_RECHECK } else { RECHECK }) => break,
                wakeup = wakeups.recv() => match wakeup {
                    Ok(Wakeup::Notified { payload, .. }) if payload == watch.workspace.as_str() => break,
                    Ok(Wakeup::Notified { .. }) => {}
                    Ok(Wakeup::Resync) | Err(broadcast::error::RecvError::Lagged(_)) => break,
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    }
}

/// The next batch of the log after `after`.
async fn read(watch: &Watch, after: Cursor) -> Result<event_log::Read, RoutingError> {
    let client = watch.pool.get().await?;
    event_log::read_after(
        &client,
        &watch.workspace,
        after,
        watch.conversation.as_ref(),
        BATCH,
    )
    .await
}

/// The API form of a logged event.
fn to_proto(event: LoggedEvent) -> proto::ConversationEvent {
    proto::ConversationEvent {
        cursor: event.cursor.to_string(),
        event_type: event.event_type,
        conversation_id: event.conversation_id.unwrap_or_default(),
        contact_id: event.contact_id.unwrap_or_default(),
        occurred_at: Some(to_timestamp(event.created_at)),
        payload_json: event.payload.to_string(),
    }
}
