//! Contact change events, written to the transactional outbox (`switchboard_outbox`) in the
//! changing transaction.

use switchboard_domain::{ContactId, WorkspaceId};
use switchboard_messaging::Partitions;
use switchboard_postgres::Transaction;
use switchboard_proto::events::v1::{self as events, ContactChange, Envelope, envelope::Payload};

use crate::ContactsError;

/// The contacts schema's outbox, relayed by one replica at a time.
pub(crate) const OUTBOX: switchboard_outbox::Outbox =
    switchboard_outbox::Outbox::new("contacts", 0x636f_6e74_6f75_7462); // "contoutb"

/// A contact change to announce.
pub(crate) struct ChangeEvent<'a> {
    pub(crate) workspace_id: &'a WorkspaceId,
    pub(crate) change: ContactChange,
    pub(crate) contact_id: &'a ContactId,
    pub(crate) contact: Option<switchboard_proto::contacts::v1::Contact>,
    pub(crate) source: &'a str,
    pub(crate) tags_added: Vec<String>,
    pub(crate) tags_removed: Vec<String>,
    pub(crate) other_contact_id: Option<&'a ContactId>,
}

/// The `contact.<change>` event type.
fn event_type(change: ContactChange) -> &'static str {
    match change {
        ContactChange::Unspecified | ContactChange::Updated => "contact.updated",
        ContactChange::Created => "contact.created",
        ContactChange::TagsChanged => "contact.tags_changed",
        ContactChange::Merged => "contact.merged",
        ContactChange::Unmerged => "contact.unmerged",
        ContactChange::Erased => "contact.erased",
        ContactChange::Blocked => "contact.blocked",
        ContactChange::Unblocked => "contact.unblocked",
        ContactChange::ConsentChanged => "contact.consent_changed",
    }
}

/// Writes the event of a change in the changing transaction `tx`.
pub(crate) async fn record(
    tx: &Transaction<'_>,
    partitions: &Partitions,
    event: ChangeEvent<'_>,
) -> Result<(), ContactsError> {
    let event_type = event_type(event.change);
    let envelope = Envelope {
        event_id: switchboard_domain::EventId::generate().into_string(),
        event_type: event_type.to_owned(),
        occurred_at: Some(crate::model::timestamp(chrono::Utc::now())),
        workspace_id: event.workspace_id.to_string(),
        correlation_id: String::new(),
        causation_id: String::new(),
        partition_key: event.contact_id.to_string(),
        payload: Some(Payload::ContactChanged(events::ContactChanged {
            change: event.change as i32,
            contact_id: event.contact_id.to_string(),
            contact: event.contact,
            source: event.source.to_owned(),
            tags_added: event.tags_added,
            tags_removed: event.tags_removed,
            other_contact_id: event
                .other_contact_id
                .map(ToString::to_string)
                .unwrap_or_default(),
        })),
    };
    OUTBOX.record(tx, &envelope, partitions).await?;
    Ok(())
}
