//! Outbound delivery statuses as the services store them (text columns), in the order a
//! message moves through them: queued < sending < sent < delivered < read; failed last. Each
//! service decides how `failed` ranks against the others.

use switchboard_proto::common::v1::DeliveryStatus;

/// Stored names in rank order; failed last.
pub const STATUSES: [(DeliveryStatus, &str); 6] = [
    (DeliveryStatus::Queued, "queued"),
    (DeliveryStatus::Sending, "sending"),
    (DeliveryStatus::Sent, "sent"),
    (DeliveryStatus::Delivered, "delivered"),
    (DeliveryStatus::Read, "read"),
    (DeliveryStatus::Failed, "failed"),
];

/// The stored name of a proto status value; `None` for unspecified or unknown values.
pub fn stored(value: i32) -> Option<&'static str> {
    let status = DeliveryStatus::try_from(value).ok()?;
    STATUSES
        .iter()
        .find(|(known, _)| *known == status)
        .map(|(_, name)| *name)
}

/// The proto status of a stored name (unspecified for an unknown one).
pub fn from_stored(name: &str) -> DeliveryStatus {
    STATUSES
        .iter()
        .find(|(_, known)| *known == name)
        .map_or(DeliveryStatus::Unspecified, |(status, _)| *status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for (status, name) in STATUSES {
            assert_eq!(stored(status as i32), Some(name));
            assert_eq!(from_stored(name), status);
        }
        assert_eq!(stored(DeliveryStatus::Unspecified as i32), None);
        assert_eq!(from_stored("unknown"), DeliveryStatus::Unspecified);
    }
}
