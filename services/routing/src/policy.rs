//! The workspace settings routing's own work depends on (bot, assignment after close, pause,
//! business hours and automatic replies), read once per change in the changing transaction.

use switchboard_domain::WorkspaceId;
use switchboard_postgres::GenericClient;

use crate::RoutingError;
use crate::business_hours::{Schedule, StoredHours};

/// How long an agent's reply pauses the bot unless the workspace says otherwise.
pub const DEFAULT_BOT_PAUSE_MINUTES: i32 = 60;

/// A workspace's routing policy (defaults when it never set one).
#[derive(Debug, Clone)]
pub struct WorkspacePolicy {
    /// New conversations start under the bot.
    pub bot_enabled: bool,
    /// Closing a conversation unassigns it.
    pub unassign_on_close: bool,
    /// How long an agent's reply pauses the bot.
    pub bot_pause_minutes: i32,
    /// Business hours; `None`: always open.
    pub schedule: Option<Schedule>,
    /// Sent when a customer writes while closed; empty: none.
    pub away_message: String,
    /// Sent when a conversation waits while nobody can take it; empty: none.
    pub at_capacity_message: String,
}

impl Default for WorkspacePolicy {
    fn default() -> Self {
        Self {
            bot_enabled: false,
            unassign_on_close: false,
            bot_pause_minutes: DEFAULT_BOT_PAUSE_MINUTES,
            schedule: None,
            away_message: String::new(),
            at_capacity_message: String::new(),
        }
    }
}

impl WorkspacePolicy {
    /// Reads `workspace`'s policy (one prepared statement).
    pub async fn load(client: &impl GenericClient, workspace: &WorkspaceId) -> Result<Self, RoutingError> {
        let statement = client
            .prepare_cached(
                "SELECT bot_enabled, unassign_on_close, bot_pause_minutes, business_hours, away_message,
                        at_capacity_message
                 FROM routing.workspace_settings WHERE workspace_id = $1",
            )
            .await?;
        let Some(row) = client.query_opt(&statement, &[&workspace.as_str()]).await? else {
            return Ok(Self::default());
        };
        let schedule = match StoredHours::from_column(row.get(3))? {
            Some(hours) => Some(Schedule::parse(&hours)?),
            None => None,
        };
        Ok(Self {
            bot_enabled: row.get(0),
            unassign_on_close: row.get(1),
            bot_pause_minutes: row.get(2),
            schedule,
            away_message: row.get(4),
            at_capacity_message: row.get(5),
        })
    }
}
