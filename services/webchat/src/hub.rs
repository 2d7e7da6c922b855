//! Where each visitor's sockets are, across replicas.
//!
//! A replica keeps a broadcast channel per visitor with open sockets. A change (a new message
//! in the thread, agent typing, an agent read watermark) is signalled locally and published as
//! a small hint on the events exchange (`webchat.signal.<account>`); every replica consumes the
//! hints from its own exclusive queue and wakes its local sockets of that visitor. Hints carry
//! no content: a woken socket reads the thread from PostgreSQL after the last `seq` it sent, so
//! a lost or repeated hint never loses or repeats a message. While the broker is unreachable
//! sockets fall back to reading the thread every few seconds.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt as _;
use lapin::options::{BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use serde::{Deserialize, Serialize};
use switchboard_domain::ChannelAccountId;
use switchboard_messaging::{Bus, Outgoing, Publisher};
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

/// Something a visitor's sockets must learn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "k", rename_all = "snake_case")]
pub enum Signal {
    /// The thread grew to `seq`.
    Message {
        /// The new last seq.
        seq: i64,
    },
    /// An agent started or stopped typing.
    Typing {
        /// On or off.
        on: bool,
    },
    /// The agent read the visitor's messages up to `seq`.
    AgentRead {
        /// The new watermark.
        seq: i64,
    },
}

#[derive(Debug, Serialize, Deserialize)]
struct Hint {
    a: String,
    v: String,
    #[serde(flatten)]
    signal: Signal,
}

/// The routing-key prefix of hints on the events exchange.
const HINT_PREFIX: &str = "webchat.signal";

/// Local sockets by visitor, and the hint exchange between replicas.
pub struct Hub {
    locals: Mutex<HashMap<(String, String), broadcast::Sender<Signal>>>,
    bus: Bus,
    publisher: Publisher,
    connected: watch::Sender<bool>,
}

/// A socket's (or long poll's) view of its visitor's signals; unsubscribes when dropped.
pub struct Subscription {
    hub: Arc<Hub>,
    key: (String, String),
    /// The signals.
    pub receiver: broadcast::Receiver<Signal>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut locals = self
            .hub
            .locals
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // This receiver still counts while it is being dropped.
        if locals
            .get(&self.key)
            .is_some_and(|sender| sender.receiver_count() <= 1)
        {
            locals.remove(&self.key);
        }
    }
}

impl Hub {
    /// A hub publishing and consuming hints on `bus`.
    pub fn new(bus: Bus) -> Arc<Self> {
        Arc::new(Self {
            locals: Mutex::new(HashMap::new()),
            publisher: bus.publisher(),
            bus,
            connected: watch::Sender::new(false),
        })
    }

    /// Signals from now on for the visitor.
    pub fn subscribe(self: &Arc<Self>, account: &ChannelAccountId, visitor: &str) -> Subscription {
        let key = (account.as_str().to_owned(), visitor.to_owned());
        let mut locals = self
            .locals
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let receiver = locals
            .entry(key.clone())
            .or_insert_with(|| broadcast::channel(64).0)
            .subscribe();
        Subscription {
            hub: self.clone(),
            key,
            receiver,
        }
    }

    /// True while hints from other replicas arrive (sockets need not poll).
    pub fn receiving_hints(&self) -> watch::Receiver<bool> {
        self.connected.subscribe()
    }

    /// Wakes the visitor's sockets here and on every other replica.
    /// The hint is published in the background: the caller (a stored message's answer) never
    /// waits for the broker.
    pub fn signal(&self, account: &ChannelAccountId, visitor: &str, signal: Signal) {
        self.deliver(account.as_str(), visitor, signal);
        let hint = Hint {
            a: account.as_str().to_owned(),
            v: visitor.to_owned(),
            signal,
        };
        let outgoing = Outgoing {
            routing_key: format!("{HINT_PREFIX}.{account}"),
            payload: serde_json::to_vec(&hint).unwrap_or_default(),
            message_id: String::new(),
            message_type: HINT_PREFIX.to_owned(),
            headers: FieldTable::default(),
        };
        let publisher = self.publisher.clone();
        tokio::spawn(async move {
            let published =
                tokio::time::timeout(Duration::from_secs(2), publisher.publish_optional(outgoing)).await;
            if !matches!(published, Ok(Ok(()))) {
                // Other replicas' sockets of this visitor read the thread on their safety poll.
                tracing::debug!("web chat hint not published");
            }
        });
    }

    /// Wakes this replica's sockets of the visitor.
    fn deliver(&self, account: &str, visitor: &str, signal: Signal) {
        let locals = self
            .locals
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(sender) = locals.get(&(account.to_owned(), visitor.to_owned())) {
            let _ = sender.send(signal);
        }
    }

    /// Consumes hints from an exclusive queue until shutdown, reconnecting after broker loss.
    pub async fn run(
        self: Arc<Self>,
        shutdown: CancellationToken,
    ) -> Result<(), switchboard_server::BoxError> {
        let mut backoff = Duration::from_millis(200);
        loop {
            let result = tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                result = self.consume_hints() => result,
            };
            self.connected.send_replace(false);
            if let Err(error) = result {
                tracing::warn!(error = %error, retry_in = ?backoff, "web chat hints paused; sockets poll meanwhile");
            }
            tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }

    async fn consume_hints(&self) -> Result<(), String> {
        let connection = self
            .bus
            .connection(Duration::from_secs(5))
            .await
            .map_err(|error| error.to_string())?;
        let channel = connection
            .create_channel()
            .await
            .map_err(|error| format!("open channel: {error}"))?;
        let exclusive = QueueDeclareOptions {
            exclusive: true,
            auto_delete: true,
            ..QueueDeclareOptions::default()
        };
        let queue = channel
            .queue_declare("".into(), exclusive, FieldTable::default())
            .await
            .map_err(|error| format!("declare hint queue: {error}"))?;
        channel
            .queue_bind(
                queue.name().clone(),
                self.bus.events_exchange().into(),
                format!("{HINT_PREFIX}.#").into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|error| format!("bind hint queue: {error}"))?;
        let no_ack = BasicConsumeOptions {
            no_ack: true,
            ..BasicConsumeOptions::default()
        };
        let mut consumer = channel
            .basic_consume(queue.name().clone(), "".into(), no_ack, FieldTable::default())
            .await
            .map_err(|error| format!("consume hints: {error}"))?;
        self.connected.send_replace(true);
        tracing::info!("web chat hints flowing between replicas");
        while let Some(delivery) = consumer.next().await {
            let delivery = delivery.map_err(|error| format!("hint delivery: {error}"))?;
            match serde_json::from_slice::<Hint>(&delivery.data) {
                Ok(hint) => self.deliver(&hint.a, &hint.v, hint.signal),
                Err(error) => tracing::debug!(error = %error, "ignoring a malformed web chat hint"),
            }
        }
        Err("the hint consumer was cancelled by the broker".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_round_trip_as_small_json() {
        let hint = Hint {
            a: "chacc_web".to_owned(),
            v: "wcv_1".to_owned(),
            signal: Signal::Message { seq: 7 },
        };
        let json = serde_json::to_string(&hint).unwrap_or_default();
        assert_eq!(json, r#"{"a":"chacc_web","v":"wcv_1","k":"message","seq":7}"#);
        let back: Hint = serde_json::from_str(&json).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(back.signal, Signal::Message { seq: 7 });
    }
}
