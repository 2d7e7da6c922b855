//! Outbound statuses as delivery stores them, and the forward-only rule: queued < sending <
//! sent < delivered < read; failed is terminal and only overrides a message that has not
//! reached the customer's device (a late `failed` after `delivered` is ignored, as WhatsApp's
//! multi-device receipts require).

use switchboard_proto::common::v1::DeliveryStatus;

/// Stored names in rank order; failed last.
const STATUSES: [(DeliveryStatus, &str); 6] = [
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

/// The proto status of a stored name.
pub fn from_stored(name: &str) -> DeliveryStatus {
    STATUSES
        .iter()
        .find(|(_, known)| *known == name)
        .map_or(DeliveryStatus::Unspecified, |(status, _)| *status)
}

/// SQL that is true when the stored status in `column` may move to the status named by the
/// text parameter `param` (e.g. `$2`).
pub fn advances_sql(column: &str, param: &str) -> String {
    let rank = |expression: &str| {
        let arms: String = STATUSES[..5]
            .iter()
            .enumerate()
            .map(|(index, (_, name))| format!(" WHEN '{name}' THEN {}", index + 1))
            .collect();
        format!("(CASE {expression}{arms} ELSE 99 END)")
    };
    format!(
        "(CASE WHEN {param}::text = 'failed' THEN {column} IN ('queued', 'sending', 'sent')
               ELSE {column} <> 'failed' AND {} < {} END)",
        rank(column),
        rank(&format!("{param}::text"))
    )
}

/// True when `from` may move to `to` (the same rule as [`advances_sql`], for tests and
/// in-memory checks).
pub fn advances(from: &str, to: &str) -> bool {
    let rank = |name: &str| STATUSES[..5].iter().position(|(_, known)| *known == name);
    if to == "failed" {
        return matches!(from, "queued" | "sending" | "sent");
    }
    match (rank(from), rank(to)) {
        (Some(from), Some(to)) => from < to,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_only_move_forward_and_failed_is_terminal() {
        assert!(advances("queued", "sent"));
        assert!(advances("sending", "read"));
        assert!(!advances("read", "delivered"));
        assert!(!advances("delivered", "delivered"));
        assert!(advances("sent", "failed"));
        assert!(
            !advances("delivered", "failed"),
            "a late failure after delivery is ignored"
        );
        assert!(!advances("failed", "read"), "failed is terminal");
        for (status, name) in STATUSES {
            assert_eq!(stored(status as i32), Some(name));
            assert_eq!(from_stored(name), status);
        }
    }
}
