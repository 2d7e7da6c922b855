//! A workspace's routing settings: assignment and closing policy, the bot, business hours and
//! automatic replies.

use switchboard_domain::WorkspaceId;
use switchboard_proto::routing::v1 as proto;

use super::RoutingApi;
use crate::business_hours::{Schedule, StoredHours, StoredInterval};
use crate::policy::DEFAULT_BOT_PAUSE_MINUTES;
use crate::{RoutingError, bot, store};

/// Longest automatic reply, in characters.
const MAX_AUTO_REPLY_CHARS: usize = 1_000;

/// An automatic reply's text, trimmed and checked (`field` names it in the error).
fn auto_reply_text(field: &str, text: &str) -> Result<String, RoutingError> {
    let text = text.trim();
    if text.chars().count() > MAX_AUTO_REPLY_CHARS {
        return Err(RoutingError::Invalid(format!(
            "{field}: at most {MAX_AUTO_REPLY_CHARS} characters"
        )));
    }
    Ok(text.to_owned())
}

/// The business hours as stored, and the automatic replies, checked (trimming `business_hours`'
/// texts in place).
fn business_hours(
    business_hours: Option<&mut proto::BusinessHours>,
) -> Result<(Option<serde_json::Value>, String, String), RoutingError> {
    let Some(business_hours) = business_hours else {
        return Ok((None, String::new(), String::new()));
    };
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
    Ok((
        Some(value),
        business_hours.away_message.clone(),
        business_hours.at_capacity_message.clone(),
    ))
}

impl RoutingApi {
    /// Returns the settings.
    pub(crate) async fn get_routing_settings(
        &self,
        workspace: &WorkspaceId,
        _request: proto::GetRoutingSettingsRequest,
    ) -> Result<proto::GetRoutingSettingsResponse, RoutingError> {
        let client = self.pool.get().await?;
        Ok(proto::GetRoutingSettingsResponse {
            settings: Some(store::settings::get(&client, workspace).await?),
        })
    }

    /// Replaces the settings (workspace admin keys).
    pub(crate) async fn update_routing_settings(
        &self,
        workspace: &WorkspaceId,
        request: proto::UpdateRoutingSettingsRequest,
    ) -> Result<proto::UpdateRoutingSettingsResponse, RoutingError> {
        let mut settings = request
            .settings
            .ok_or_else(|| RoutingError::Invalid("settings: required".to_owned()))?;
        settings.bot_pause_minutes = match settings.bot_pause_minutes {
            0 => DEFAULT_BOT_PAUSE_MINUTES,
            minutes @ 1..=bot::MAX_PAUSE_MINUTES => minutes,
            _ => {
                return Err(RoutingError::Invalid(format!(
                    "settings.bot_pause_minutes: 1 to {} (0 for the default, {DEFAULT_BOT_PAUSE_MINUTES})",
                    bot::MAX_PAUSE_MINUTES
                )));
            }
        };
        let (hours, away, at_capacity) = business_hours(settings.business_hours.as_mut())?;
        let client = self.pool.get().await?;
        store::settings::put(&client, workspace, &settings, hours.as_ref(), &away, &at_capacity).await?;
        Ok(proto::UpdateRoutingSettingsResponse {
            settings: Some(settings),
        })
    }
}
