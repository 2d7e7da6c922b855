//! SQL of a workspace's routing settings.

use switchboard_domain::WorkspaceId;
use switchboard_postgres::{CachedStatements as _, GenericClient};
use switchboard_proto::routing::v1 as proto;

use crate::RoutingError;
use crate::business_hours::StoredHours;
use crate::policy::DEFAULT_BOT_PAUSE_MINUTES;

/// The workspace's routing settings (defaults when never set).
#[tracing::instrument(skip_all, fields(workspace_id = %workspace))]
pub(crate) async fn get(
    client: &impl GenericClient,
    workspace: &WorkspaceId,
) -> Result<proto::RoutingSettings, RoutingError> {
    let row = client
        .query_opt_cached(
            "SELECT unassign_on_close, require_closing_note, bot_enabled, bot_pause_minutes, business_hours,
                    away_message, at_capacity_message
             FROM routing.workspace_settings WHERE workspace_id = $1",
            &[&workspace.as_str()],
        )
        .await?;
    let Some(row) = row else {
        return Ok(proto::RoutingSettings {
            bot_pause_minutes: DEFAULT_BOT_PAUSE_MINUTES,
            ..proto::RoutingSettings::default()
        });
    };
    let business_hours = match StoredHours::from_column(row.get(4))? {
        None => None,
        Some(stored) => Some(proto::BusinessHours {
            time_zone: stored.time_zone,
            intervals: stored
                .intervals
                .into_iter()
                .map(|interval| proto::OpenInterval {
                    weekday: interval.weekday,
                    opens: interval.opens,
                    closes: interval.closes,
                })
                .collect(),
            away_message: row.get(5),
            at_capacity_message: row.get(6),
        }),
    };
    Ok(proto::RoutingSettings {
        unassign_on_close: row.get(0),
        require_closing_note: row.get(1),
        bot_enabled: row.get(2),
        bot_pause_minutes: row.get(3),
        business_hours,
    })
}

/// Replaces the workspace's settings: `settings`' flags, with the business hours as stored
/// (`hours`) and the automatic replies.
#[tracing::instrument(skip_all, fields(workspace_id = %workspace))]
pub(crate) async fn put(
    client: &impl GenericClient,
    workspace: &WorkspaceId,
    settings: &proto::RoutingSettings,
    hours: Option<&serde_json::Value>,
    away: &str,
    at_capacity: &str,
) -> Result<(), RoutingError> {
    client
        .execute_cached(
            "INSERT INTO routing.workspace_settings
                 (workspace_id, unassign_on_close, require_closing_note, bot_enabled, bot_pause_minutes,
                  business_hours, away_message, at_capacity_message)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (workspace_id) DO UPDATE
             SET unassign_on_close = EXCLUDED.unassign_on_close, require_closing_note = EXCLUDED.require_closing_note,
                 bot_enabled = EXCLUDED.bot_enabled, bot_pause_minutes = EXCLUDED.bot_pause_minutes,
                 business_hours = EXCLUDED.business_hours, away_message = EXCLUDED.away_message,
                 at_capacity_message = EXCLUDED.at_capacity_message",
            &[
                &workspace.as_str(),
                &settings.unassign_on_close,
                &settings.require_closing_note,
                &settings.bot_enabled,
                &settings.bot_pause_minutes,
                &hours,
                &away,
                &at_capacity,
            ],
        )
        .await?;
    Ok(())
}
