//! Keeps each contact's assignee in sync from routing's `assignment.changed` events (consumed
//! from `contacts.assignment.pNN`, partitioned by contact), for filters and saved views.
//! Events are applied only when newer than the assignment already stored, so redeliveries and
//! late events never move it backwards.

use switchboard_domain::{ContactId, WorkspaceId};
use switchboard_messaging::{Handler, HandlerError, Incoming};
use switchboard_postgres::CachedStatements as _;
use switchboard_postgres::Pool;
use switchboard_proto::events::v1::envelope::Payload;

use crate::ContactsError;
use crate::model::from_timestamp;

/// The component consuming assignment events, and their family.
pub const ASSIGNMENT_CONSUMER: &str = "contacts";
/// The family of assignment events (`assignment.changed`).
pub const ASSIGNMENT_FAMILY: &str = "assignment";

/// The consumer of `assignment.changed` events.
pub struct AssignmentSync {
    pool: Pool,
}

impl AssignmentSync {
    /// A consumer writing to `pool`.
    pub fn new(pool: Pool) -> Self {
        Self { pool }
    }
}

impl Handler for AssignmentSync {
    async fn handle(&self, message: &Incoming) -> Result<(), HandlerError> {
        let envelope = message.decode_envelope().map_err(HandlerError::permanent)?;
        let Some(Payload::AssignmentChanged(changed)) = &envelope.payload else {
            // Another event of the family: not ours to act on.
            return Ok(());
        };
        let at = envelope
            .occurred_at
            .as_ref()
            .and_then(from_timestamp)
            .ok_or_else(|| HandlerError::permanent("assignment.changed without occurred_at"))?;
        let ids = ContactId::parse(&changed.contact_id)
            .ok()
            .zip(WorkspaceId::parse(&envelope.workspace_id).ok());
        let Some((contact_id, workspace)) = ids else {
            // No stored contact has such an id: there is nothing to update.
            tracing::debug!(contact_id = %changed.contact_id, "assignment of a malformed contact id ignored");
            return Ok(());
        };
        let assignee = (!changed.assignee_id.is_empty()).then_some(changed.assignee_id.as_str());
        let applied = async {
            let client = self.pool.get().await?;
            // A merged-away contact's assignment lands on the contact it was merged into.
            let updated = client
                .execute_cached(
                    "UPDATE contacts.contacts AS c SET assignee_id = $3, assignee_at = $4
                     FROM contacts.contacts AS source
                     WHERE source.id = $1 AND source.workspace_id = $2
                       AND c.id = coalesce(source.merged_into, source.id)
                       AND (c.assignee_at IS NULL OR c.assignee_at <= $4)",
                    &[&contact_id.as_str(), &workspace.as_str(), &assignee, &at],
                )
                .await?;
            Ok::<u64, ContactsError>(updated)
        }
        .await
        .map_err(|error| HandlerError::classified(error.failure(), error))?;
        tracing::debug!(contact_id = %contact_id, applied, "assignment synced");
        Ok(())
    }
}
