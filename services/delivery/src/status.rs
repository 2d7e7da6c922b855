//! Outbound statuses as delivery stores them, and the forward-only rule: queued < sending <
//! sent < delivered < read; failed is terminal and only overrides a message that has not
//! reached the customer's device (a late `failed` after `delivered` is ignored, as WhatsApp's
//! multi-device receipts require).

use switchboard_domain::delivery_status::STATUSES;
pub use switchboard_domain::delivery_status::{from_stored, stored};

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
    }
}
