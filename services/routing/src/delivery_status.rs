//! Outbound delivery statuses as routing stores them: one table for both directions and for
//! the forward-only order (queued < sending < sent < delivered < read; failed is terminal).

use switchboard_proto::common::v1::DeliveryStatus;

/// Stored names, in the order a message moves through them; failed last (terminal).
const STATUSES: [(DeliveryStatus, &str); 6] = [
    (DeliveryStatus::Queued, "queued"),
    (DeliveryStatus::Sending, "sending"),
    (DeliveryStatus::Sent, "sent"),
    (DeliveryStatus::Delivered, "delivered"),
    (DeliveryStatus::Read, "read"),
    (DeliveryStatus::Failed, "failed"),
];

/// The stored name of a proto status value; `None` for unspecified or unknown.
pub fn stored(value: i32) -> Option<&'static str> {
    let status = DeliveryStatus::try_from(value).ok()?;
    STATUSES
        .iter()
        .find(|(known, _)| *known == status)
        .map(|(_, name)| *name)
}

/// The proto status of a stored name (unspecified for none).
pub fn from_stored(name: Option<&str>) -> DeliveryStatus {
    STATUSES
        .iter()
        .find(|(_, known)| Some(*known) == name)
        .map_or(DeliveryStatus::Unspecified, |(status, _)| *status)
}

/// SQL giving the position of the stored status `expression` in [`STATUSES`] (0 for none).
pub fn rank_sql(expression: &str) -> String {
    let arms: String = STATUSES
        .iter()
        .enumerate()
        .map(|(index, (_, name))| format!(" WHEN '{name}' THEN {}", index + 1))
        .collect();
    format!("CASE {expression}{arms} ELSE 0 END")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_rank_in_order() {
        for (status, name) in STATUSES {
            assert_eq!(stored(status as i32), Some(name));
            assert_eq!(from_stored(Some(name)), status);
        }
        assert_eq!(stored(DeliveryStatus::Unspecified as i32), None);
        assert_eq!(from_stored(None), DeliveryStatus::Unspecified);
        assert!(rank_sql("s").starts_with("CASE s WHEN 'queued' THEN 1"));
    }
}
