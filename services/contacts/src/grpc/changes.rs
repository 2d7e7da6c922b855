//! Rendering contacts for replies and recording their changes in the outbox.

use switchboard_domain::{ContactId, WorkspaceId};
use switchboard_postgres::GenericClient;
use switchboard_proto::contacts::v1 as proto;
use switchboard_proto::events::v1::ContactChange;

use super::ContactsApi;
use crate::model::Contact;
use crate::outbox::{self, ChangeEvent};
use crate::{ContactsError, store};

impl ContactsApi {
    /// Renders contacts with their identities and typed custom fields.
    pub(super) async fn render(
        &self,
        client: &impl GenericClient,
        workspace: &WorkspaceId,
        contacts: &[Contact],
    ) -> Result<Vec<proto::Contact>, ContactsError> {
        let ids: Vec<ContactId> = contacts.iter().map(|contact| contact.id.clone()).collect();
        // Independent reads, pipelined on the connection: one round trip for both.
        let (definitions, mut identities) = futures_util::try_join!(
            store::field_definitions(client, workspace),
            store::identities(client, &ids)
        )?;
        let types = store::field_types(&definitions);
        Ok(contacts
            .iter()
            .map(|contact| contact.to_proto(&types, identities.remove(&contact.id).unwrap_or_default()))
            .collect())
    }

    /// Renders one contact.
    pub(super) async fn render_one(
        &self,
        client: &impl GenericClient,
        workspace: &WorkspaceId,
        contact: &Contact,
    ) -> Result<proto::Contact, ContactsError> {
        let mut rendered = self
            .render(client, workspace, std::slice::from_ref(contact))
            .await?;
        rendered
            .pop()
            .ok_or_else(|| ContactsError::Corrupt("rendering lost a contact".to_owned()))
    }

    /// Applies `change` to one locked contact in a transaction, records `event` when the
    /// contact changed, and returns it rendered.
    pub(super) async fn change_contact<F>(
        &self,
        workspace: &WorkspaceId,
        id: &ContactId,
        change: F,
    ) -> Result<proto::Contact, ContactsError>
    where
        F: for<'t> FnOnce(
                &'t switchboard_postgres::Transaction<'t>,
                Contact,
            ) -> std::pin::Pin<
                Box<dyn Future<Output = Result<Option<Changed>, ContactsError>> + Send + 't>,
            > + Send,
    {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let before = store::find_contact(&tx, workspace, id, true).await?;
        let changed = change(&tx, before.clone()).await?;
        let contact = match changed {
            None => before,
            Some(changed) => {
                let rendered = self.render_one(&tx, workspace, &changed.contact).await?;
                outbox::record(
                    &tx,
                    &self.partitions,
                    ChangeEvent {
                        workspace_id: workspace,
                        change: changed.kind,
                        contact_id: id,
                        contact: Some(rendered),
                        source: &changed.source,
                        tags_added: changed.tags_added,
                        tags_removed: changed.tags_removed,
                        other_contact_id: None,
                    },
                )
                .await?;
                changed.contact
            }
        };
        tx.commit().await?;
        self.wake.notify_one();
        self.render_one(&client, workspace, &contact).await
    }

    /// Records a whole-contact event (merge, unmerge) of `contact`, rendered as `rendered`, in
    /// the outbox.
    pub(super) async fn announce(
        &self,
        tx: &switchboard_postgres::Transaction<'_>,
        change: ContactChange,
        contact: &Contact,
        rendered: &proto::Contact,
        source: &str,
        other: Option<&ContactId>,
    ) -> Result<(), ContactsError> {
        outbox::record(
            tx,
            &self.partitions,
            ChangeEvent {
                workspace_id: &contact.workspace_id,
                change,
                contact_id: &contact.id,
                contact: Some(rendered.clone()),
                source,
                tags_added: Vec::new(),
                tags_removed: Vec::new(),
                other_contact_id: other,
            },
        )
        .await
    }
}

/// What a change did, for its event.
pub(crate) struct Changed {
    pub(super) contact: Contact,
    pub(super) kind: ContactChange,
    pub(super) source: String,
    pub(super) tags_added: Vec<String>,
    pub(super) tags_removed: Vec<String>,
}

impl Changed {
    /// A change of `kind` from `source`, with no tags added or removed.
    pub(super) fn new(contact: Contact, kind: ContactChange, source: &str) -> Self {
        Self {
            contact,
            kind,
            source: source.to_owned(),
            tags_added: Vec::new(),
            tags_removed: Vec::new(),
        }
    }
}
