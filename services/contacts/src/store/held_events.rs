//! SQL of held events: inbound events not passed on (blocked contact, quota exceeded).

use chrono::{DateTime, Utc};
use switchboard_domain::WorkspaceId;
use switchboard_postgres::CachedStatements as _;
use switchboard_postgres::GenericClient;
use switchboard_proto::contacts::v1 as proto;
use switchboard_server::paging;

use crate::ContactsError;
use crate::model::timestamp;

/// One page of held events, newest first, and the next page's token.
pub(crate) async fn held_events(
    client: &impl GenericClient,
    workspace: &WorkspaceId,
    after: Option<&(DateTime<Utc>, String)>,
    limit: i64,
) -> Result<(Vec<proto::HeldEvent>, String), ContactsError> {
    let (at, key) = after.cloned().unzip();
    let rows = client
        .query_cached(
            "SELECT event_id, channel, contact_id, reason, held_at FROM contacts.held_events
             WHERE workspace_id = $1 AND ($2::timestamptz IS NULL OR (held_at, event_id) < ($2, $3))
             ORDER BY held_at DESC, event_id DESC LIMIT $4",
            &[&workspace.as_str(), &at, &key, &limit],
        )
        .await?;
    let mut token = String::new();
    let events: Vec<proto::HeldEvent> = rows
        .iter()
        .map(|row| {
            let event_id: String = row.get(0);
            let channel: String = row.get(1);
            let held_at: DateTime<Utc> = row.get(4);
            token = paging::cursor_token(held_at, &event_id);
            proto::HeldEvent {
                event_id,
                channel: switchboard_domain::Channel::proto_value_of(&channel),
                contact_id: row.get::<_, Option<String>>(2).unwrap_or_default(),
                reason: row.get(3),
                held_at: Some(timestamp(held_at)),
            }
        })
        .collect();
    if i64::try_from(events.len()).unwrap_or(i64::MAX) < limit {
        token.clear();
    }
    Ok((events, token))
}
