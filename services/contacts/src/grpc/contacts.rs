//! The contact RPCs: create, get, update (by field mask) and list.

use std::collections::BTreeSet;
use switchboard_server::paging;

use chrono::Utc;
use switchboard_domain::ContactId;
use switchboard_proto::contacts::v1 as proto;
use switchboard_proto::events::v1::ContactChange;
use tonic::{Request, Response, Status};

use super::{ContactsApi, contact_id, workspace};
use crate::editable::{Editable, Rules, STANDARD_PATHS};
use crate::model::Contact;
use crate::outbox::{self, ChangeEvent};
use crate::settings::Settings;
use crate::{ContactsError, store};
use switchboard_domain::normalize::parse_country;

impl ContactsApi {
    /// Creates a contact by hand and records `contact.created`.
    pub(super) async fn create_contact_rpc(
        &self,
        request: Request<proto::CreateContactRequest>,
    ) -> Result<Response<proto::CreateContactResponse>, Status> {
        let workspace = workspace(&request)?;
        let contact = request
            .into_inner()
            .contact
            .ok_or_else(|| Status::invalid_argument("contact: required"))?;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(ContactsError::from)?;
        let settings = Settings::load(&tx, &workspace).await?;
        let definitions = store::field_definitions(&tx, &workspace).await?;
        let rules = Rules {
            fields: &definitions,
            country: parse_country(&settings.default_country).ok(),
        };
        let fields = rules.new_contact(&contact)?;
        let id = ContactId::generate();
        let created = store::insert_contact(&tx, &workspace, &id, &fields).await?;
        let rendered = self.render_one(&tx, &workspace, &created).await?;
        outbox::record(
            &tx,
            &self.partitions,
            ChangeEvent {
                workspace_id: &workspace,
                change: ContactChange::Created,
                contact_id: &id,
                contact: Some(rendered.clone()),
                source: "manual",
                tags_added: created.tags.clone(),
                tags_removed: Vec::new(),
                other_contact_id: None,
            },
        )
        .await?;
        tx.commit().await.map_err(ContactsError::from)?;
        self.wake.notify_one();
        tracing::info!(contact_id = %id, "contact created");
        Ok(Response::new(proto::CreateContactResponse {
            contact: Some(rendered),
        }))
    }

    /// One contact of the caller's workspace.
    pub(super) async fn get_contact_rpc(
        &self,
        request: Request<proto::GetContactRequest>,
    ) -> Result<Response<proto::GetContactResponse>, Status> {
        let workspace = workspace(&request)?;
        let id = contact_id("id", &request.get_ref().id)?;
        let client = self.client().await?;
        let contact = store::find_contact(&client, &workspace, &id, false).await?;
        let rendered = self.render_one(&client, &workspace, &contact).await?;
        Ok(Response::new(proto::GetContactResponse {
            contact: Some(rendered),
        }))
    }

    /// Writes the fields named by the update mask, at the expected revision if one is given.
    pub(super) async fn update_contact_rpc(
        &self,
        request: Request<proto::UpdateContactRequest>,
    ) -> Result<Response<proto::UpdateContactResponse>, Status> {
        let workspace = workspace(&request)?;
        let proto::UpdateContactRequest {
            contact,
            update_mask,
            expected_revision,
        } = request.into_inner();
        let contact = contact.ok_or_else(|| Status::invalid_argument("contact: required"))?;
        let id = contact_id("contact.id", &contact.id)?;
        let paths: Vec<String> = update_mask.map(|mask| mask.paths).unwrap_or_default();
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(ContactsError::from)?;
        let stored = store::find_contact(&tx, &workspace, &id, true).await?;
        if expected_revision != 0 && expected_revision != stored.revision {
            return Err(ContactsError::Aborted(format!(
                "contact {id} is at revision {}, not {expected_revision}; read it again and retry",
                stored.revision
            ))
            .into());
        }
        let settings = Settings::load(&tx, &workspace).await?;
        let definitions = store::field_definitions(&tx, &workspace).await?;
        let rules = Rules {
            fields: &definitions,
            country: parse_country(&settings.default_country).ok(),
        };
        let after = apply_mask(&rules, &stored, &contact, &paths)?;
        let result = if after == Editable::of(&stored) {
            stored
        } else {
            let updated = store::write_editable(&tx, &id, &after).await?;
            let (added, removed) = tag_diff(&stored.tags, &updated.tags);
            let only_tags = Editable {
                tags: stored.tags.clone(),
                ..after.clone()
            } == Editable::of(&stored);
            let rendered = self.render_one(&tx, &workspace, &updated).await?;
            outbox::record(
                &tx,
                &self.partitions,
                ChangeEvent {
                    workspace_id: &workspace,
                    change: if only_tags {
                        ContactChange::TagsChanged
                    } else {
                        ContactChange::Updated
                    },
                    contact_id: &id,
                    contact: Some(rendered),
                    source: "manual",
                    tags_added: added,
                    tags_removed: removed,
                    other_contact_id: None,
                },
            )
            .await?;
            updated
        };
        tx.commit().await.map_err(ContactsError::from)?;
        self.wake.notify_one();
        let rendered = self.render_one(&client, &workspace, &result).await?;
        Ok(Response::new(proto::UpdateContactResponse {
            contact: Some(rendered),
        }))
    }

    /// One page of the contacts a search, filter and view select.
    pub(super) async fn list_contacts_rpc(
        &self,
        request: Request<proto::ListContactsRequest>,
    ) -> Result<Response<proto::ListContactsResponse>, Status> {
        let workspace = workspace(&request)?;
        let request = request.into_inner();
        let client = self.client().await?;
        let (search, filter, types) = self
            .selection(
                &client,
                &workspace,
                &request.query,
                request.filter.as_ref(),
                &request.view_id,
            )
            .await?;
        let query = store::ContactQuery {
            workspace: &workspace,
            search: &search,
            filter: filter.as_ref(),
            types: &types,
            now: Utc::now(),
        };
        let limit = paging::page_size(request.page.as_ref(), 100);
        let after = paging::parse_cursor(request.page.as_ref()).map_err(ContactsError::from)?;
        let contacts = store::list_contacts(&client, &query, after.as_ref(), limit).await?;
        let total = if request.include_total {
            store::count_contacts(&client, &query).await?
        } else {
            0
        };
        let next_page_token = match contacts.last() {
            Some(last) if i64::try_from(contacts.len()).unwrap_or(i64::MAX) >= limit => {
                paging::cursor_token(last.created_at, last.id.as_str())
            }
            _ => String::new(),
        };
        let rendered = self.render(&client, &workspace, &contacts).await?;
        Ok(Response::new(proto::ListContactsResponse {
            contacts: rendered,
            page: Some(switchboard_proto::common::v1::PageResponse { next_page_token }),
            total,
        }))
    }
}

/// The tags `after` adds to and removes from `before`.
pub(super) fn tag_diff(before: &[String], after: &[String]) -> (Vec<String>, Vec<String>) {
    let before: BTreeSet<&String> = before.iter().collect();
    let after: BTreeSet<&String> = after.iter().collect();
    (
        after.difference(&before).map(|tag| (*tag).clone()).collect(),
        before.difference(&after).map(|tag| (*tag).clone()).collect(),
    )
}

/// Checks an update: the mask's fields are written; a value outside the mask that differs
/// from what is stored is refused, so nothing is silently dropped or written.
fn apply_mask(
    rules: &Rules<'_>,
    stored: &Contact,
    contact: &proto::Contact,
    paths: &[String],
) -> Result<Editable, ContactsError> {
    if paths.is_empty() {
        return Err(ContactsError::invalid(
            "update_mask: name the fields to write (e.g. first_name, tags, custom_fields.plan)",
        ));
    }
    let before = Editable::of(stored);
    let mut after = before.clone();
    let whole_custom = paths.iter().any(|path| path == "custom_fields");
    if whole_custom {
        after.custom_fields.clear();
        for (key, value) in &contact.custom_fields {
            rules.apply_custom(key, Some(value), &mut after)?;
        }
    }
    for path in paths {
        if path == "custom_fields" {
            continue;
        }
        match path.strip_prefix("custom_fields.") {
            Some(key) => rules.apply_custom(key, contact.custom_fields.get(key), &mut after)?,
            None => rules.apply(path, contact, &mut after)?,
        }
    }
    let outside = |field: &str| {
        ContactsError::invalid_as(
            "FIELD_OUTSIDE_MASK",
            format!(
                "{field} is set to a new value but is not in update_mask; add it to update_mask or send it unchanged"
            ),
        )
    };
    for path in STANDARD_PATHS {
        if paths.iter().any(|masked| masked == path) {
            continue;
        }
        let mut probe = before.clone();
        if rules.apply(path, contact, &mut probe).is_err() || probe.differs(&before, path) {
            // An empty value outside the mask is "not sent", not "clear it".
            let empty = match path {
                "first_name" => contact.first_name.is_empty(),
                "last_name" => contact.last_name.is_empty(),
                "display_name" => contact.display_name.is_empty(),
                "email" => contact.email.is_empty(),
                "phone" => contact.phone.is_empty(),
                "username" => contact.username.is_empty(),
                "avatar_url" => contact.avatar_url.is_empty(),
                "locale" => contact.locale.is_empty(),
                _ => contact.tags.is_empty(),
            };
            if !empty {
                return Err(outside(path));
            }
        }
    }
    if !whole_custom {
        for (key, value) in &contact.custom_fields {
            let masked = paths
                .iter()
                .any(|path| path.strip_prefix("custom_fields.") == Some(key.as_str()));
            if masked {
                continue;
            }
            let mut probe = before.clone();
            let same = rules.apply_custom(key, Some(value), &mut probe).is_ok()
                && probe.custom_fields.get(key) == before.custom_fields.get(key);
            if !same {
                return Err(outside(&format!("custom_fields.{key}")));
            }
        }
    }
    Ok(after)
}
