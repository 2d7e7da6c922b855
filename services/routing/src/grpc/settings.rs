//! A workspace's routing settings: assignment and closing policy, the bot, business hours and
//! automatic replies.

use switchboard_postgres::CachedStatements as _;
use switchboard_postgres::GenericClient;
use switchboard_proto::routing::v1 as proto;
use tonic::{Request, Status};

use super::{RoutingApi, admin_workspace, workspace};
use crate::business_hours::{Schedule, StoredHours, StoredInterval};
use crate::policy::DEFAULT_BOT_PAUSE_MINUTES;
use crate::{RoutingError, bot};

/// Longest automatic reply, in characters.
const MAX_AUTO_REPLY_CHARS: usize = 1_000;

/// The workspace's routing settings (defaults when never set).
pub(crate) async fn settings(
    client: &impl GenericClient,
    workspace: &str,
) -> Result<proto::RoutingSettings, RoutingError> {
    let row = client
        .query_opt_cached(
            "SELECT unassign_on_close, require_closing_note, bot_enabled, bot_pause_minutes, business_hours,
                    away_message, at_capacity_message
             FROM routing.workspace_settings WHERE workspace_id = $1",
            &[&workspace],
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

fn auto_reply_text(field: &str, text: &str) -> Result<String, RoutingError> {
    let text = text.trim();
    if text.chars().count() > MAX_AUTO_REPLY_CHARS {
        return Err(RoutingError::Invalid(format!(
            "{field}: at most {MAX_AUTO_REPLY_CHARS} characters"
        )));
    }
    Ok(text.to_owned())
}

impl RoutingApi {
    /// Returns the settings.
    pub(crate) async fn get_settings_rpc(
        &self,
        request: Request<proto::GetRoutingSettingsRequest>,
    ) -> Result<proto::RoutingSettings, Status> {
        let workspace = workspace(&request)?;
        let client = self.pool.get().await.map_err(RoutingError::from)?;
        Ok(settings(&client, &workspace).await?)
    }

    /// Replaces the settings (workspace admin keys).
    pub(crate) async fn update_settings_rpc(
        &self,
        request: Request<proto::UpdateRoutingSettingsRequest>,
    ) -> Result<proto::RoutingSettings, Status> {
        let workspace = admin_workspace(&request)?;
        let mut settings = request
            .into_inner()
            .settings
            .ok_or_else(|| Status::invalid_argument("settings: required"))?;
        settings.bot_pause_minutes = match settings.bot_pause_minutes {
            0 => DEFAULT_BOT_PAUSE_MINUTES,
            minutes @ 1..=bot::MAX_PAUSE_MINUTES => minutes,
            _ => {
                return Err(Status::invalid_argument(format!(
                    "settings.bot_pause_minutes: 1 to {} (0 for the default, {DEFAULT_BOT_PAUSE_MINUTES})",
                    bot::MAX_PAUSE_MINUTES
                )));
            }
        };
        let (hours, away, at_capacity) = match settings.business_hours.as_mut() {
            None => (None, String::new(), String::new()),
            Some(business_hours) => {
                let stored = StoredHours {
                    time_zone: business_hours.time_zone.trim().to_owned(),
                    intervals: business_hours
                        .intervals
                        .iter()
                        .map(|interval| StoredInterval {
                            weekday: interval.weekday,
                            opens: interval.opens.trim().to_owned(),
                            closes: interval.closes.trim().to_owned(),
                        })
                        .collect(),
                };
                Schedule::parse(&stored)?;
                business_hours.away_message = auto_reply_text(
                    "settings.business_hours.away_message",
                    &business_hours.away_message,
                )?;
                business_hours.at_capacity_message = auto_reply_text(
                    "settings.business_hours.at_capacity_message",
                    &business_hours.at_capacity_message,
                )?;
                let value = serde_json::to_value(&stored)
                    .map_err(|error| RoutingError::Corrupt(format!("business hours: {error}")))?;
                (
                    Some(value),
                    business_hours.away_message.clone(),
                    business_hours.at_capacity_message.clone(),
                )
            }
        };
        let client = self.pool.get().await.map_err(RoutingError::from)?;
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
                    &workspace,
                    &settings.unassign_on_close,
                    &settings.require_closing_note,
                    &settings.bot_enabled,
                    &settings.bot_pause_minutes,
                    &hours,
                    &away,
                    &at_capacity,
                ],
            )
            .await
            .map_err(RoutingError::from)?;
        Ok(settings)
    }
}
