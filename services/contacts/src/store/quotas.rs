//! SQL of monthly quotas of new contacts per channel, and their usage.

use chrono::{DateTime, Utc};
use switchboard_domain::WorkspaceId;
use switchboard_postgres::CachedStatements as _;
use switchboard_postgres::GenericClient;
use switchboard_proto::contacts::v1 as proto;

use crate::ContactsError;

/// Sets (`Some`) or removes (`None`) a channel's monthly quota.
pub(crate) async fn set_quota(
    client: &impl GenericClient,
    workspace: &WorkspaceId,
    channel: switchboard_domain::Channel,
    limit: Option<i64>,
) -> Result<(), ContactsError> {
    match limit {
        Some(limit) => {
            client
                .execute_cached(
                    "INSERT INTO contacts.quotas (workspace_id, channel, monthly_limit) VALUES ($1, $2, $3)
                     ON CONFLICT (workspace_id, channel) DO UPDATE SET monthly_limit = EXCLUDED.monthly_limit",
                    &[&workspace.as_str(), &channel.as_str(), &limit],
                )
                .await?;
        }
        None => {
            client
                .execute_cached(
                    "DELETE FROM contacts.quotas WHERE workspace_id = $1 AND channel = $2",
                    &[&workspace.as_str(), &channel.as_str()],
                )
                .await?;
        }
    }
    Ok(())
}

/// Quotas and this month's usage of every channel that has either.
pub(crate) async fn quota_usage(
    client: &impl GenericClient,
    workspace: &WorkspaceId,
    now: DateTime<Utc>,
) -> Result<Vec<proto::QuotaUsage>, ContactsError> {
    let month = crate::resolve::month_of(now);
    let rows = client
        .query_cached(
            "SELECT coalesce(q.channel, u.channel), q.monthly_limit, coalesce(u.contacts, 0)
             FROM (SELECT channel, monthly_limit FROM contacts.quotas WHERE workspace_id = $1) q
             FULL JOIN (SELECT channel, sum(contacts)::bigint AS contacts FROM contacts.monthly_usage
                        WHERE workspace_id = $1 AND month = $2 GROUP BY channel) u ON u.channel = q.channel
             ORDER BY 1",
            &[&workspace.as_str(), &month],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| {
            let channel: String = row.get(0);
            proto::QuotaUsage {
                channel: switchboard_domain::Channel::proto_value_of(&channel),
                monthly_limit: row.get(1),
                used: row.get(2),
                month: month.format("%Y-%m-%d").to_string(),
            }
        })
        .collect())
}
