use lapin::types::{AMQPValue, FieldTable};
use prost::Message as _;
use switchboard_proto::events::v1::Envelope;

use crate::headers::{header_str, header_u64};
use crate::partition::{Partitions, partition_for, partition_suffix};

/// Content type of every Switchboard bus message.
pub const CONTENT_TYPE_PROTOBUF: &str = "application/x-protobuf";

/// A message to publish.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// Routing key on the events exchange (already carrying a partition suffix when partitioned).
    pub routing_key: String,
    /// The encoded body.
    pub payload: Vec<u8>,
    /// AMQP `message_id` (the event id).
    pub message_id: String,
    /// AMQP `type` (the event type).
    pub message_type: String,
    /// Extra AMQP headers; trace context is added by the publisher.
    pub headers: FieldTable,
}

impl Outgoing {
    /// Wraps an envelope: routing key from its event type, plus the partition of
    /// `envelope.partition_key` (among its family's `partitions`) when it is set.
    pub fn envelope(envelope: &Envelope, partitions: &Partitions) -> Self {
        let routing_key = if envelope.partition_key.is_empty() {
            envelope.event_type.clone()
        } else {
            let count = partitions.of_event(&envelope.event_type);
            let partition = partition_for(&envelope.partition_key, count);
            format!("{}.{}", envelope.event_type, partition_suffix(partition))
        };
        Self {
            routing_key,
            payload: envelope.encode_to_vec(),
            message_id: envelope.event_id.clone(),
            message_type: envelope.event_type.clone(),
            headers: FieldTable::default(),
        }
    }
}

/// A delivered message, as handlers see it.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// The queue it was consumed from.
    pub queue: String,
    /// The routing key it was published with.
    pub routing_key: String,
    /// The body.
    pub payload: Vec<u8>,
    /// AMQP `message_id`, if set.
    pub message_id: Option<String>,
    /// AMQP `type`, if set.
    pub message_type: Option<String>,
    /// AMQP headers.
    pub headers: FieldTable,
    /// True when the broker delivered it before (to this or another consumer).
    pub redelivered: bool,
}

impl Incoming {
    /// Decodes the body as a Switchboard envelope.
    pub fn decode_envelope(&self) -> Result<Envelope, prost::DecodeError> {
        Envelope::decode(self.payload.as_slice())
    }

    /// Returns a string header, if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .inner()
            .iter()
            .find(|(key, _)| key.as_str() == name)
            .and_then(|(_, value)| header_str(value))
    }

    /// How many times the broker delivered this message before (quorum queues'
    /// `x-delivery-count`; 0 on the first delivery).
    pub fn previous_deliveries(&self) -> u64 {
        self.headers
            .inner()
            .iter()
            .find(|(key, _)| key.as_str() == "x-delivery-count")
            .and_then(|(_, value)| header_u64(value))
            .unwrap_or(0)
    }

    pub(crate) fn from_delivery(queue: &str, delivery: &lapin::message::Delivery) -> Self {
        let properties = &delivery.properties;
        Self {
            queue: queue.to_owned(),
            routing_key: delivery.routing_key.as_str().to_owned(),
            payload: delivery.data.clone(),
            message_id: properties.message_id().as_ref().map(|id| id.as_str().to_owned()),
            message_type: properties.kind().as_ref().map(|kind| kind.as_str().to_owned()),
            headers: properties.headers().clone().unwrap_or_default(),
            redelivered: delivery.redelivered,
        }
    }
}

/// Builds a header value from text.
pub(crate) fn text_value(text: impl Into<String>) -> AMQPValue {
    AMQPValue::LongString(text.into().into())
}
