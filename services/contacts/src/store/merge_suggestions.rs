//! SQL of merge suggestions: contacts that share a phone or e-mail with an older one.

use chrono::{DateTime, Utc};
use switchboard_domain::WorkspaceId;
use switchboard_postgres::CachedStatements as _;
use switchboard_postgres::GenericClient;
use switchboard_proto::contacts::v1 as proto;
use switchboard_server::paging;

use crate::ContactsError;
use crate::model::timestamp;

/// One page of merge suggestions, newest first, and the next page's token.
pub(crate) async fn merge_suggestions(
    client: &impl GenericClient,
    workspace: &WorkspaceId,
    after: Option<&(DateTime<Utc>, String)>,
    limit: i64,
) -> Result<(Vec<proto::MergeSuggestion>, String), ContactsError> {
    let (at, key) = after.cloned().unzip();
    let rows = client
        .query_cached(
            "SELECT contact_id, candidate_id, reason, created_at FROM contacts.merge_suggestions
             WHERE workspace_id = $1
               AND ($2::timestamptz IS NULL OR (created_at, contact_id || '/' || candidate_id) < ($2, $3))
             ORDER BY created_at DESC, contact_id || '/' || candidate_id DESC LIMIT $4",
            &[&workspace.as_str(), &at, &key, &limit],
        )
        .await?;
    let mut token = String::new();
    let suggestions: Vec<proto::MergeSuggestion> = rows
        .iter()
        .map(|row| {
            let created_at: DateTime<Utc> = row.get(3);
            let contact_id: String = row.get(0);
            let candidate_id: String = row.get(1);
            token = paging::cursor_token(created_at, &format!("{contact_id}/{candidate_id}"));
            proto::MergeSuggestion {
                contact_id,
                candidate_id,
                reason: row.get(2),
                created_at: Some(timestamp(created_at)),
            }
        })
        .collect();
    if i64::try_from(suggestions.len()).unwrap_or(i64::MAX) < limit {
        token.clear();
    }
    Ok((suggestions, token))
}
