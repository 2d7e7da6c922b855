//! Per-key order inside one consumer that runs several handlers at once: each delivery of a
//! key waits for the one before it.

use std::collections::HashMap;

use tokio::sync::oneshot;

use crate::{Handler, Incoming};

/// Chains the deliveries of each [`Handler::order_key`]: each waits until the one before it
/// with the same key is done, then is handled if that one was (acked or dead-lettered), or
/// goes back to the queue behind it if that one went back.
#[derive(Default)]
pub(crate) struct KeyedOrder {
    /// Per key, the signal of its latest delivery: closed when that delivery is done.
    last: HashMap<String, oneshot::Receiver<()>>,
}

/// A delivery's place in its key's chain.
pub(crate) struct OrderTurn {
    /// Resolves when the delivery before it with the same key is done: with `()` if it was
    /// handled (acked or dead-lettered), closed if it went back to the queue.
    previous: Option<oneshot::Receiver<()>>,
    /// Tells the next delivery of the key how this one ended.
    done: Option<oneshot::Sender<()>>,
}

impl KeyedOrder {
    /// How many keys are remembered before finished chains are forgotten.
    const PRUNE_ABOVE: usize = 1024;

    /// Places `incoming` behind the latest delivery of its key (call in delivery order).
    pub(crate) fn turn<H: Handler>(&mut self, handler: &H, incoming: &Incoming) -> OrderTurn {
        let Some(key) = handler.order_key(incoming) else {
            return OrderTurn {
                previous: None,
                done: None,
            };
        };
        if self.last.len() > Self::PRUNE_ABOVE {
            // A chain whose latest delivery is done needs no entry.
            self.last
                .retain(|_, latest| matches!(latest.try_recv(), Err(oneshot::error::TryRecvError::Empty)));
        }
        let (done, signal) = oneshot::channel();
        OrderTurn {
            previous: self.last.insert(key, signal),
            done: Some(done),
        }
    }
}

impl OrderTurn {
    /// Waits until the previous delivery of the key is done; true if it was handled (or
    /// there is none), false if it went back to the queue.
    pub(crate) async fn previous_handled(&mut self) -> bool {
        match self.previous.take() {
            Some(previous) => previous.await.is_ok(),
            None => true,
        }
    }

    /// Lets the next delivery of the key go: handled after this one, or back to the queue
    /// behind it when this one went back (or its task died).
    pub(crate) fn finish(mut self, settled: Settled) {
        if let (Some(done), Settled::Handled) = (self.done.take(), settled) {
            let _ = done.send(());
        }
    }
}

/// How the consumer left a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Settled {
    /// Acked (handled) or dead-lettered.
    Handled,
    /// Returned to its queue (shutdown, or a dead letter not confirmed).
    Returned,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::HandlerError;
    use lapin::types::FieldTable;

    /// Orders by the routing key; `-` means no key.
    struct ByRoutingKey;

    impl Handler for ByRoutingKey {
        async fn handle(&self, _message: &Incoming) -> Result<(), HandlerError> {
            Ok(())
        }

        fn order_key(&self, message: &Incoming) -> Option<String> {
            (message.routing_key != "-").then(|| message.routing_key.clone())
        }
    }

    fn message(key: &str) -> Incoming {
        Incoming {
            queue: "q".to_owned(),
            routing_key: key.to_owned(),
            payload: Vec::new(),
            message_id: None,
            message_type: None,
            headers: FieldTable::default(),
            redelivered: false,
        }
    }

    #[tokio::test]
    async fn a_key_waits_for_its_predecessor_and_follows_it_back_to_the_queue() {
        let mut order = KeyedOrder::default();
        let mut first = order.turn(&ByRoutingKey, &message("a"));
        let mut second = order.turn(&ByRoutingKey, &message("a"));
        let mut third = order.turn(&ByRoutingKey, &message("a"));
        let mut other = order.turn(&ByRoutingKey, &message("b"));
        let mut unkeyed = order.turn(&ByRoutingKey, &message("-"));
        assert!(first.previous_handled().await, "first of its key");
        assert!(other.previous_handled().await, "another key does not wait");
        assert!(unkeyed.previous_handled().await, "no key, no wait");

        let waiting = tokio::spawn(async move { second.previous_handled().await.then_some(second) });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "the second waits for the first");
        first.finish(Settled::Handled);
        let second = waiting.await.unwrap().expect("the first was handled");

        second.finish(Settled::Returned);
        assert!(
            !third.previous_handled().await,
            "behind a message that went back to the queue, the next goes back too"
        );
    }
}
