//! Trace-context carriers over AMQP header tables.

use lapin::types::{AMQPValue, FieldTable, LongString};
use opentelemetry::propagation::{Extractor, Injector};

/// Writes propagation fields into an AMQP header table.
pub(crate) struct HeaderInjector<'a>(pub &'a mut FieldTable);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0
            .insert(key.into(), AMQPValue::LongString(LongString::from(value)));
    }
}

/// Reads propagation fields from an AMQP header table.
pub(crate) struct HeaderExtractor<'a>(pub &'a FieldTable);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .inner()
            .iter()
            .find(|(name, _)| name.as_str() == key)
            .and_then(|(_, value)| header_str(value))
    }

    fn keys(&self) -> Vec<&str> {
        self.0
            .inner()
            .keys()
            .map(lapin::types::ShortString::as_str)
            .collect()
    }
}

/// Returns a header value as text when it is a string.
pub(crate) fn header_str(value: &AMQPValue) -> Option<&str> {
    match value {
        AMQPValue::LongString(text) => std::str::from_utf8(text.as_bytes()).ok(),
        AMQPValue::ShortString(text) => Some(text.as_str()),
        _ => None,
    }
}

/// Returns a header value as an integer when it is one.
pub(crate) fn header_u64(value: &AMQPValue) -> Option<u64> {
    match value {
        AMQPValue::LongLongInt(number) => u64::try_from(*number).ok(),
        AMQPValue::LongInt(number) => u64::try_from(*number).ok(),
        AMQPValue::LongUInt(number) => Some(u64::from(*number)),
        AMQPValue::ShortInt(number) => u64::try_from(*number).ok(),
        AMQPValue::ShortUInt(number) => Some(u64::from(*number)),
        AMQPValue::ShortShortInt(number) => u64::try_from(*number).ok(),
        AMQPValue::ShortShortUInt(number) => Some(u64::from(*number)),
        _ => None,
    }
}
