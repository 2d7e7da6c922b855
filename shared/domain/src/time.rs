//! Times between chrono (storage, arithmetic) and protobuf `Timestamp` (APIs, events).

use chrono::{DateTime, Utc};

/// The protobuf form of a time.
pub fn to_timestamp(at: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

/// The time of a protobuf timestamp, if it is in range.
pub fn from_timestamp(at: &prost_types::Timestamp) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(at.seconds, u32::try_from(at.nanos).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip_and_out_of_range_ones_are_none() {
        let at = DateTime::from_timestamp(1_780_000_000, 123_456_000).unwrap();
        assert_eq!(from_timestamp(&to_timestamp(at)), Some(at));
        let negative_nanos = prost_types::Timestamp {
            seconds: 1,
            nanos: -1,
        };
        assert_eq!(from_timestamp(&negative_nanos), None);
    }
}
