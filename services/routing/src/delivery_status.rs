//! Outbound delivery statuses as routing stores them: one table for both directions and for
//! the forward-only order (queued < sending < sent < delivered < read; failed is terminal).

use switchboard_proto::common::v1::DeliveryStatus;

use switchboard_domain::delivery_status::STATUSES;
pub use switchboard_domain::delivery_status::stored;

/// The proto status of a stored name (unspecified for none).
pub fn from_stored(name: Option<&str>) -> DeliveryStatus {
    name.map_or(
        DeliveryStatus::Unspecified,
        switchboard_domain::delivery_status::from_stored,
    )
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
