//! gRPC adapter of `ContactsService`: proto in, checked values to the store, proto out.
//! Every call acts in the caller's workspace; changes write their event to the outbox in the
//! same transaction.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use chrono::Utc;
use switchboard_domain::{Channel, ContactId, JobId, MergeId, ViewId};
use switchboard_postgres::{GenericClient, Pool};
use switchboard_proto::contacts::v1 as proto;
use switchboard_proto::contacts::v1::contacts_service_server::{ContactsService, ContactsServiceServer};
use switchboard_proto::events::v1::ContactChange;
use switchboard_server::auth::{Role, principal};
use tokio::sync::Notify;
use tonic::{Request, Response, Status};

use crate::editable::{Editable, Rules, STANDARD_PATHS};
use crate::fields::{FieldDefinition, FieldType};
use crate::filter::Filter;
use crate::model::Contact;
use crate::normalize::parse_country;
use crate::outbox::{self, ChangeEvent};
use crate::settings::Settings;
use crate::{ContactsError, export, filter, filter_proto, jobs, merge, page, store};

/// Fully qualified names of the services this component serves.
pub(crate) const SERVICE_NAMES: [&str; 1] = ["switchboard.contacts.v1.ContactsService"];

/// Builds the service.
pub(crate) fn contacts_server(api: ContactsApi) -> ContactsServiceServer<ContactsApi> {
    ContactsServiceServer::new(api)
}

/// The `ContactsService` implementation.
pub(crate) struct ContactsApi {
    pub(crate) pool: Pool,
    /// Wakes the outbox relay after a commit.
    pub(crate) wake: Arc<Notify>,
    /// Wakes the job runner after a job was started.
    pub(crate) jobs_wake: Arc<Notify>,
    pub(crate) partitions: u16,
}

/// The caller's workspace (platform keys act on no workspace's contacts).
fn workspace<T>(request: &Request<T>) -> Result<String, Status> {
    Ok(principal(request)?.workspace()?.as_str().to_owned())
}

/// The caller's workspace, for calls that need a workspace admin key.
fn admin_workspace<T>(request: &Request<T>) -> Result<String, Status> {
    let caller = principal(request)?;
    let workspace = caller.workspace()?.as_str().to_owned();
    match caller.role {
        Role::WorkspaceAdmin => Ok(workspace),
        _ => Err(Status::permission_denied("this call needs a workspace admin key")),
    }
}

fn contact_id(field: &str, value: &str) -> Result<String, Status> {
    ContactId::parse(value)
        .map(ContactId::into_string)
        .map_err(|error| Status::invalid_argument(format!("{field}: {error}")))
}

fn source(value: &str) -> Result<String, ContactsError> {
    let value = value.trim();
    if value.chars().count() > 100 || value.chars().any(char::is_control) {
        return Err(ContactsError::invalid("source: at most 100 characters"));
    }
    Ok(if value.is_empty() {
        "api".to_owned()
    } else {
        value.to_owned()
    })
}

impl ContactsApi {
    async fn client(&self) -> Result<switchboard_postgres::PooledClient, ContactsError> {
        Ok(self.pool.get().await?)
    }

    /// Renders contacts with their identities and typed custom fields.
    async fn render(
        &self,
        client: &impl GenericClient,
        workspace: &str,
        contacts: &[Contact],
    ) -> Result<Vec<proto::Contact>, ContactsError> {
        let types = store::field_types(&store::field_definitions(client, workspace).await?);
        let ids: Vec<String> = contacts.iter().map(|contact| contact.id.clone()).collect();
        let mut identities = store::identities(client, &ids).await?;
        Ok(contacts
            .iter()
            .map(|contact| contact.to_proto(&types, identities.remove(&contact.id).unwrap_or_default()))
            .collect())
    }

    async fn render_one(
        &self,
        client: &impl GenericClient,
        workspace: &str,
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
    async fn change_contact<F>(
        &self,
        workspace: &str,
        id: &str,
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
                    self.partitions,
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
}

/// What a change did, for its event.
pub(crate) struct Changed {
    contact: Contact,
    kind: ContactChange,
    source: String,
    tags_added: Vec<String>,
    tags_removed: Vec<String>,
}

impl Changed {
    fn new(contact: Contact, kind: ContactChange, source: &str) -> Self {
        Self {
            contact,
            kind,
            source: source.to_owned(),
            tags_added: Vec::new(),
            tags_removed: Vec::new(),
        }
    }
}

fn tag_diff(before: &[String], after: &[String]) -> (Vec<String>, Vec<String>) {
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

#[tonic::async_trait]
impl ContactsService for ContactsApi {
    async fn create_contact(
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
        let id = ContactId::generate().into_string();
        let created = store::insert_contact(&tx, &workspace, &id, &fields).await?;
        let rendered = self.render_one(&tx, &workspace, &created).await?;
        outbox::record(
            &tx,
            self.partitions,
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

    async fn get_contact(
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

    async fn update_contact(
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
                self.partitions,
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

    async fn list_contacts(
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
        let limit = page::page_size(request.page.as_ref());
        let after = page::parse_token(request.page.as_ref().map_or("", |page| page.page_token.as_str()))?;
        let contacts = store::list_contacts(&client, &query, after.as_ref(), limit).await?;
        let total = if request.include_total {
            store::count_contacts(&client, &query).await?
        } else {
            0
        };
        let next_page_token = match contacts.last() {
            Some(last) if i64::try_from(contacts.len()).unwrap_or(i64::MAX) >= limit => {
                page::token(last.created_at, &last.id)
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

    async fn add_tags(
        &self,
        request: Request<proto::ChangeTagsRequest>,
    ) -> Result<Response<proto::ChangeTagsResponse>, Status> {
        self.change_tags(request, true).await
    }

    async fn remove_tags(
        &self,
        request: Request<proto::ChangeTagsRequest>,
    ) -> Result<Response<proto::ChangeTagsResponse>, Status> {
        self.change_tags(request, false).await
    }

    async fn block_contact(
        &self,
        request: Request<proto::BlockContactRequest>,
    ) -> Result<Response<proto::BlockContactResponse>, Status> {
        self.set_blocked(request, true).await
    }

    async fn unblock_contact(
        &self,
        request: Request<proto::BlockContactRequest>,
    ) -> Result<Response<proto::BlockContactResponse>, Status> {
        self.set_blocked(request, false).await
    }

    async fn set_bot_subscription(
        &self,
        request: Request<proto::SetBotSubscriptionRequest>,
    ) -> Result<Response<proto::SetBotSubscriptionResponse>, Status> {
        let workspace = workspace(&request)?;
        let request = request.into_inner();
        let id = contact_id("contact_id", &request.contact_id)?;
        let source = source(&request.source)?;
        let subscribed = request.subscribed;
        let contact = self
            .change_contact(&workspace, &id, move |tx, before| {
                Box::pin(async move {
                    if before.bot_subscribed == subscribed {
                        return Ok(None);
                    }
                    let contact = store::update_contact(
                        tx,
                        &before.id,
                        "bot_subscribed = $2, bot_subscription_at = now(), bot_subscription_source = $3",
                        &[&subscribed, &source],
                    )
                    .await?;
                    Ok(Some(Changed::new(
                        contact,
                        ContactChange::ConsentChanged,
                        &source,
                    )))
                })
            })
            .await?;
        Ok(Response::new(proto::SetBotSubscriptionResponse {
            contact: Some(contact),
        }))
    }

    async fn set_email_state(
        &self,
        request: Request<proto::SetEmailStateRequest>,
    ) -> Result<Response<proto::SetEmailStateResponse>, Status> {
        let workspace = workspace(&request)?;
        let request = request.into_inner();
        let id = contact_id("contact_id", &request.contact_id)?;
        let source = source(&request.source)?;
        let value = request.value;
        let assignments = match (proto::EmailFact::try_from(request.fact), value) {
            (Ok(proto::EmailFact::Verified), true) => "email_verified_at = now(), email_verified_source = $2",
            (Ok(proto::EmailFact::Verified), false) => "email_verified_at = NULL, email_verified_source = $2",
            (Ok(proto::EmailFact::OptedIn), true) => {
                "email_opt_in_at = now(), email_opt_in_source = $2, email_opt_out_at = NULL, email_opt_out_source = ''"
            }
            (Ok(proto::EmailFact::OptedIn), false) => "email_opt_in_at = NULL, email_opt_in_source = $2",
            (Ok(proto::EmailFact::OptedOut), true) => {
                "email_opt_out_at = now(), email_opt_out_source = $2, email_opt_in_at = NULL, email_opt_in_source = ''"
            }
            (Ok(proto::EmailFact::OptedOut), false) => "email_opt_out_at = NULL, email_opt_out_source = $2",
            (Ok(proto::EmailFact::Unspecified) | Err(_), _) => {
                return Err(Status::invalid_argument(
                    "fact: choose EMAIL_FACT_VERIFIED, EMAIL_FACT_OPTED_IN or EMAIL_FACT_OPTED_OUT",
                ));
            }
        };
        let contact = self
            .change_contact(&workspace, &id, move |tx, before| {
                Box::pin(async move {
                    if value && before.email.is_none() {
                        return Err(ContactsError::invalid_as(
                            "NO_EMAIL",
                            format!("contact {} has no e-mail address to record this for", before.id),
                        ));
                    }
                    let contact = store::update_contact(tx, &before.id, assignments, &[&source]).await?;
                    Ok(Some(Changed::new(
                        contact,
                        ContactChange::ConsentChanged,
                        &source,
                    )))
                })
            })
            .await?;
        Ok(Response::new(proto::SetEmailStateResponse {
            contact: Some(contact),
        }))
    }

    async fn define_field(
        &self,
        request: Request<proto::DefineFieldRequest>,
    ) -> Result<Response<proto::DefineFieldResponse>, Status> {
        let workspace = admin_workspace(&request)?;
        let field = request
            .into_inner()
            .field
            .ok_or_else(|| Status::invalid_argument("field: required"))?;
        let definition = FieldDefinition::from_proto(field)?;
        let client = self.client().await?;
        store::define_field(&client, &workspace, &definition).await?;
        Ok(Response::new(proto::DefineFieldResponse {
            field: Some(definition.to_proto()),
        }))
    }

    async fn list_fields(
        &self,
        request: Request<proto::ListFieldsRequest>,
    ) -> Result<Response<proto::ListFieldsResponse>, Status> {
        let workspace = workspace(&request)?;
        let client = self.client().await?;
        let mut definitions: Vec<FieldDefinition> = store::field_definitions(&client, &workspace)
            .await?
            .into_values()
            .collect();
        definitions.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(Response::new(proto::ListFieldsResponse {
            fields: definitions.iter().map(FieldDefinition::to_proto).collect(),
        }))
    }

    async fn create_view(
        &self,
        request: Request<proto::CreateViewRequest>,
    ) -> Result<Response<proto::CreateViewResponse>, Status> {
        let workspace = workspace(&request)?;
        let request = request.into_inner();
        let client = self.client().await?;
        let (name, filter) = self
            .checked_view(&client, &workspace, &request.name, request.filter.as_ref())
            .await?;
        let id = ViewId::generate().into_string();
        let view = store::insert_view(&client, &workspace, &id, &name, &filter).await?;
        Ok(Response::new(proto::CreateViewResponse {
            view: Some(view.to_proto()),
        }))
    }

    async fn list_views(
        &self,
        request: Request<proto::ListViewsRequest>,
    ) -> Result<Response<proto::ListViewsResponse>, Status> {
        let workspace = workspace(&request)?;
        let client = self.client().await?;
        let views = store::views(&client, &workspace).await?;
        Ok(Response::new(proto::ListViewsResponse {
            views: views.iter().map(store::View::to_proto).collect(),
        }))
    }

    async fn update_view(
        &self,
        request: Request<proto::UpdateViewRequest>,
    ) -> Result<Response<proto::UpdateViewResponse>, Status> {
        let workspace = workspace(&request)?;
        let view = request
            .into_inner()
            .view
            .ok_or_else(|| Status::invalid_argument("view: required"))?;
        let id =
            ViewId::parse(&view.id).map_err(|error| Status::invalid_argument(format!("view.id: {error}")))?;
        let client = self.client().await?;
        let (name, filter) = self
            .checked_view(&client, &workspace, &view.name, view.filter.as_ref())
            .await?;
        let view = store::update_view(&client, &workspace, id.as_str(), &name, &filter).await?;
        Ok(Response::new(proto::UpdateViewResponse {
            view: Some(view.to_proto()),
        }))
    }

    async fn delete_view(
        &self,
        request: Request<proto::DeleteViewRequest>,
    ) -> Result<Response<proto::DeleteViewResponse>, Status> {
        let workspace = workspace(&request)?;
        let id = ViewId::parse(&request.get_ref().id)
            .map_err(|error| Status::invalid_argument(format!("id: {error}")))?;
        let client = self.client().await?;
        store::delete_view(&client, &workspace, id.as_str()).await?;
        Ok(Response::new(proto::DeleteViewResponse {}))
    }

    async fn merge_contacts(
        &self,
        request: Request<proto::MergeContactsRequest>,
    ) -> Result<Response<proto::MergeContactsResponse>, Status> {
        let workspace = workspace(&request)?;
        let primary_id = contact_id("primary_id", &request.get_ref().primary_id)?;
        let secondary_id = contact_id("secondary_id", &request.get_ref().secondary_id)?;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(ContactsError::from)?;
        let (primary, _, merge_id) = merge::merge(&tx, &workspace, &primary_id, &secondary_id).await?;
        let rendered = self.render_one(&tx, &workspace, &primary).await?;
        self.announce(
            &tx,
            &workspace,
            ContactChange::Merged,
            &rendered,
            "merge",
            Some(&secondary_id),
        )
        .await?;
        tx.commit().await.map_err(ContactsError::from)?;
        self.wake.notify_one();
        tracing::info!(primary_id, secondary_id, merge_id, "contacts merged");
        Ok(Response::new(proto::MergeContactsResponse {
            contact: Some(rendered),
            merge_id,
        }))
    }

    async fn unmerge_contact(
        &self,
        request: Request<proto::UnmergeContactRequest>,
    ) -> Result<Response<proto::UnmergeContactResponse>, Status> {
        let workspace = workspace(&request)?;
        let merge_id = MergeId::parse(&request.get_ref().merge_id)
            .map_err(|error| Status::invalid_argument(format!("merge_id: {error}")))?;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(ContactsError::from)?;
        let (primary, secondary) = merge::unmerge(&tx, &workspace, merge_id.as_str()).await?;
        let rendered_primary = self.render_one(&tx, &workspace, &primary).await?;
        let rendered_secondary = self.render_one(&tx, &workspace, &secondary).await?;
        self.announce(
            &tx,
            &workspace,
            ContactChange::Unmerged,
            &rendered_primary,
            "unmerge",
            Some(&secondary.id),
        )
        .await?;
        self.announce(
            &tx,
            &workspace,
            ContactChange::Unmerged,
            &rendered_secondary,
            "unmerge",
            Some(&primary.id),
        )
        .await?;
        tx.commit().await.map_err(ContactsError::from)?;
        self.wake.notify_one();
        tracing::info!(merge_id = merge_id.as_str(), "merge undone");
        Ok(Response::new(proto::UnmergeContactResponse {
            primary: Some(rendered_primary),
            secondary: Some(rendered_secondary),
        }))
    }

    async fn erase_contact(
        &self,
        request: Request<proto::EraseContactRequest>,
    ) -> Result<Response<proto::EraseContactResponse>, Status> {
        let workspace = admin_workspace(&request)?;
        let id = contact_id("contact_id", &request.get_ref().contact_id)?;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(ContactsError::from)?;
        let erased = merge::erase(&tx, &workspace, &id).await?;
        for erased_id in &erased {
            outbox::record(
                &tx,
                self.partitions,
                ChangeEvent {
                    workspace_id: &workspace,
                    change: ContactChange::Erased,
                    contact_id: erased_id,
                    contact: None,
                    source: "erase",
                    tags_added: Vec::new(),
                    tags_removed: Vec::new(),
                    other_contact_id: None,
                },
            )
            .await?;
        }
        tx.commit().await.map_err(ContactsError::from)?;
        self.wake.notify_one();
        tracing::info!(contact_id = %id, erased = erased.len(), "contact erased");
        Ok(Response::new(proto::EraseContactResponse {
            erased_contact_ids: erased,
        }))
    }

    async fn start_bulk_tag_job(
        &self,
        request: Request<proto::StartBulkTagJobRequest>,
    ) -> Result<Response<proto::StartBulkTagJobResponse>, Status> {
        let workspace = workspace(&request)?;
        let request = request.into_inner();
        if request.add_tags.is_empty() && request.remove_tags.is_empty() {
            return Err(Status::invalid_argument(
                "add_tags / remove_tags: name at least one tag",
            ));
        }
        let add = crate::editable::tags(&request.add_tags)?;
        let remove = crate::editable::tags(&request.remove_tags)?;
        let client = self.client().await?;
        let (search, filter, _) = self
            .selection(
                &client,
                &workspace,
                &request.query,
                request.filter.as_ref(),
                &request.view_id,
            )
            .await?;
        let job = jobs::start(
            &client,
            jobs::NewJob {
                workspace_id: &workspace,
                kind: "bulk_tags",
                request_id: request.request_id.trim(),
                dry_run: false,
                params: serde_json::json!({
                    "filter": filter,
                    "query": search,
                    "add": add,
                    "remove": remove,
                }),
                input: None,
            },
        )
        .await?;
        self.jobs_wake.notify_one();
        Ok(Response::new(proto::StartBulkTagJobResponse {
            job: Some(job.to_proto()),
        }))
    }

    async fn import_contacts(
        &self,
        request: Request<proto::ImportContactsRequest>,
    ) -> Result<Response<proto::ImportContactsResponse>, Status> {
        let workspace = workspace(&request)?;
        let request = request.into_inner();
        if request.csv.is_empty() {
            return Err(Status::invalid_argument("csv: the file is empty"));
        }
        if std::str::from_utf8(&request.csv).is_err() {
            return Err(Status::invalid_argument("csv: the file is not UTF-8 text"));
        }
        // The header is checked now, so a wrong file is refused at once.
        let client = self.client().await?;
        let definitions = store::field_definitions(&client, &workspace).await?;
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .from_reader(request.csv.as_slice());
        let header = reader
            .headers()
            .map_err(|error| Status::invalid_argument(format!("csv: the header cannot be read: {error}")))?;
        crate::csv_import::columns(header, &definitions)
            .map_err(|message| Status::invalid_argument(format!("csv: {message}")))?;
        let job = jobs::start(
            &client,
            jobs::NewJob {
                workspace_id: &workspace,
                kind: "import",
                request_id: request.request_id.trim(),
                dry_run: request.dry_run,
                params: serde_json::json!({}),
                input: Some(request.csv),
            },
        )
        .await?;
        self.jobs_wake.notify_one();
        Ok(Response::new(proto::ImportContactsResponse {
            job: Some(job.to_proto()),
        }))
    }

    async fn get_job(
        &self,
        request: Request<proto::GetJobRequest>,
    ) -> Result<Response<proto::GetJobResponse>, Status> {
        let workspace = workspace(&request)?;
        let id = JobId::parse(&request.get_ref().id)
            .map_err(|error| Status::invalid_argument(format!("id: {error}")))?;
        let client = self.client().await?;
        let job = jobs::get(&client, &workspace, id.as_str()).await?;
        Ok(Response::new(proto::GetJobResponse {
            job: Some(job.to_proto()),
        }))
    }

    type ExportContactsStream = std::pin::Pin<
        Box<dyn futures_util::Stream<Item = Result<proto::ExportContactsResponse, Status>> + Send>,
    >;

    async fn export_contacts(
        &self,
        request: Request<proto::ExportContactsRequest>,
    ) -> Result<Response<Self::ExportContactsStream>, Status> {
        let workspace = admin_workspace(&request)?;
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
        let columns = export::columns(&request.columns, &types)?;
        drop(client);
        let (sender, receiver) = tokio::sync::mpsc::channel(4);
        tokio::spawn(
            export::Export {
                pool: self.pool.clone(),
                workspace,
                search,
                filter,
                types,
                columns,
            }
            .run(sender),
        );
        let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
            receiver.recv().await.map(|item| (item, receiver))
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn list_merge_suggestions(
        &self,
        request: Request<proto::ListMergeSuggestionsRequest>,
    ) -> Result<Response<proto::ListMergeSuggestionsResponse>, Status> {
        let workspace = workspace(&request)?;
        let request = request.into_inner();
        let limit = page::page_size(request.page.as_ref());
        let after = page::parse_token(request.page.as_ref().map_or("", |page| page.page_token.as_str()))?;
        let client = self.client().await?;
        let (suggestions, next_page_token) =
            store::merge_suggestions(&client, &workspace, after.as_ref(), limit).await?;
        Ok(Response::new(proto::ListMergeSuggestionsResponse {
            suggestions,
            page: Some(switchboard_proto::common::v1::PageResponse { next_page_token }),
        }))
    }

    async fn list_held_events(
        &self,
        request: Request<proto::ListHeldEventsRequest>,
    ) -> Result<Response<proto::ListHeldEventsResponse>, Status> {
        let workspace = workspace(&request)?;
        let request = request.into_inner();
        let limit = page::page_size(request.page.as_ref());
        let after = page::parse_token(request.page.as_ref().map_or("", |page| page.page_token.as_str()))?;
        let client = self.client().await?;
        let (events, next_page_token) =
            store::held_events(&client, &workspace, after.as_ref(), limit).await?;
        Ok(Response::new(proto::ListHeldEventsResponse {
            events,
            page: Some(switchboard_proto::common::v1::PageResponse { next_page_token }),
        }))
    }

    async fn get_settings(
        &self,
        request: Request<proto::GetSettingsRequest>,
    ) -> Result<Response<proto::GetSettingsResponse>, Status> {
        let workspace = workspace(&request)?;
        let client = self.client().await?;
        let settings = Settings::load(&client, &workspace).await?;
        Ok(Response::new(proto::GetSettingsResponse {
            settings: Some(settings.to_proto()),
        }))
    }

    async fn update_settings(
        &self,
        request: Request<proto::UpdateSettingsRequest>,
    ) -> Result<Response<proto::UpdateSettingsResponse>, Status> {
        let workspace = admin_workspace(&request)?;
        let settings = request
            .into_inner()
            .settings
            .ok_or_else(|| Status::invalid_argument("settings: required"))?;
        let settings = Settings::from_proto(&settings)?;
        let client = self.client().await?;
        settings.save(&client, &workspace).await?;
        Ok(Response::new(proto::UpdateSettingsResponse {
            settings: Some(settings.to_proto()),
        }))
    }

    async fn set_quota(
        &self,
        request: Request<proto::SetQuotaRequest>,
    ) -> Result<Response<proto::SetQuotaResponse>, Status> {
        let workspace = admin_workspace(&request)?;
        let request = request.into_inner();
        let channel = Channel::from_proto(request.channel)
            .map_err(|_| Status::invalid_argument("channel: choose a channel"))?;
        let limit = if request.unlimited {
            None
        } else if request.monthly_limit < 0 {
            return Err(Status::invalid_argument(
                "monthly_limit: 0 or more (or set unlimited)",
            ));
        } else {
            Some(request.monthly_limit)
        };
        let client = self.client().await?;
        store::set_quota(&client, &workspace, channel, limit).await?;
        let quota = store::quota_usage(&client, &workspace, Utc::now())
            .await?
            .into_iter()
            .find(|usage| usage.channel == channel.to_proto() as i32)
            .unwrap_or_else(|| proto::QuotaUsage {
                channel: channel.to_proto() as i32,
                monthly_limit: limit,
                used: 0,
                month: crate::resolve::month_of(Utc::now())
                    .format("%Y-%m-%d")
                    .to_string(),
            });
        Ok(Response::new(proto::SetQuotaResponse { quota: Some(quota) }))
    }

    async fn get_quota_usage(
        &self,
        request: Request<proto::GetQuotaUsageRequest>,
    ) -> Result<Response<proto::GetQuotaUsageResponse>, Status> {
        let workspace = workspace(&request)?;
        let client = self.client().await?;
        let quotas = store::quota_usage(&client, &workspace, Utc::now()).await?;
        Ok(Response::new(proto::GetQuotaUsageResponse { quotas }))
    }
}

impl ContactsApi {
    async fn change_tags(
        &self,
        request: Request<proto::ChangeTagsRequest>,
        add: bool,
    ) -> Result<Response<proto::ChangeTagsResponse>, Status> {
        let workspace = workspace(&request)?;
        let request = request.into_inner();
        let id = contact_id("contact_id", &request.contact_id)?;
        if request.tags.is_empty() {
            return Err(Status::invalid_argument("tags: name at least one tag"));
        }
        let tags = crate::editable::tags(&request.tags)?;
        let contact = self
            .change_contact(&workspace, &id, move |tx, before| {
                Box::pin(async move {
                    let mut after: BTreeSet<String> = before.tags.iter().cloned().collect();
                    for tag in &tags {
                        if add {
                            after.insert(tag.clone());
                        } else {
                            after.remove(tag);
                        }
                    }
                    let after: Vec<String> = after.into_iter().collect();
                    if after == before.tags {
                        return Ok(None);
                    }
                    if after.len() > crate::editable::MAX_TAGS {
                        return Err(ContactsError::invalid(format!(
                            "tags: at most {} per contact",
                            crate::editable::MAX_TAGS
                        )));
                    }
                    let contact = store::update_contact(tx, &before.id, "tags = $2", &[&after]).await?;
                    let (added, removed) = tag_diff(&before.tags, &contact.tags);
                    let mut changed = Changed::new(contact, ContactChange::TagsChanged, "manual");
                    changed.tags_added = added;
                    changed.tags_removed = removed;
                    Ok(Some(changed))
                })
            })
            .await?;
        Ok(Response::new(proto::ChangeTagsResponse {
            contact: Some(contact),
        }))
    }

    async fn set_blocked(
        &self,
        request: Request<proto::BlockContactRequest>,
        blocked: bool,
    ) -> Result<Response<proto::BlockContactResponse>, Status> {
        let workspace = workspace(&request)?;
        let id = contact_id("contact_id", &request.get_ref().contact_id)?;
        let contact = self
            .change_contact(&workspace, &id, move |tx, before| {
                Box::pin(async move {
                    if before.blocked == blocked {
                        return Ok(None);
                    }
                    let contact = store::update_contact(
                        tx,
                        &before.id,
                        "blocked = $2, blocked_at = CASE WHEN $2 THEN now() END",
                        &[&blocked],
                    )
                    .await?;
                    let kind = if blocked {
                        ContactChange::Blocked
                    } else {
                        ContactChange::Unblocked
                    };
                    Ok(Some(Changed::new(contact, kind, "manual")))
                })
            })
            .await?;
        Ok(Response::new(proto::BlockContactResponse {
            contact: Some(contact),
        }))
    }

    /// Which contacts a request means: its search text, its filter and saved view (by AND,
    /// checked against the workspace's fields), and those fields' types.
    async fn selection(
        &self,
        client: &impl GenericClient,
        workspace: &str,
        query: &str,
        filter: Option<&proto::Filter>,
        view_id: &str,
    ) -> Result<(String, Option<Filter>, HashMap<String, FieldType>), ContactsError> {
        let types = store::field_types(&store::field_definitions(client, workspace).await?);
        let mut filters = Vec::new();
        if let Some(filter) = filter {
            filters.push(filter_proto::from_proto(filter)?);
        }
        if !view_id.is_empty() {
            let view_id = ViewId::parse(view_id)
                .map_err(|error| ContactsError::invalid(format!("view_id: {error}")))?;
            filters.push(store::view(client, workspace, view_id.as_str()).await?.filter);
        }
        let filter = match filters.len() {
            0 => None,
            1 => filters.pop(),
            _ => Some(Filter::All(filters)),
        };
        if let Some(filter) = &filter {
            filter::validate(filter, &types)
                .map_err(|error| ContactsError::invalid_as("INVALID_FILTER", error.to_string()))?;
        }
        let query = query.trim();
        if query.chars().count() > 200 {
            return Err(ContactsError::invalid("query: at most 200 characters"));
        }
        Ok((query.to_owned(), filter, types))
    }

    /// Records a whole-contact event (merge, unmerge) in the outbox.
    async fn announce(
        &self,
        tx: &switchboard_postgres::Transaction<'_>,
        workspace: &str,
        change: ContactChange,
        contact: &proto::Contact,
        source: &str,
        other: Option<&str>,
    ) -> Result<(), ContactsError> {
        outbox::record(
            tx,
            self.partitions,
            ChangeEvent {
                workspace_id: workspace,
                change,
                contact_id: &contact.id,
                contact: Some(contact.clone()),
                source,
                tags_added: Vec::new(),
                tags_removed: Vec::new(),
                other_contact_id: other,
            },
        )
        .await
    }

    /// Checks a view's name and filter (against the workspace's fields).
    async fn checked_view(
        &self,
        client: &impl GenericClient,
        workspace: &str,
        name: &str,
        filter: Option<&proto::Filter>,
    ) -> Result<(String, Filter), ContactsError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Err(ContactsError::invalid("name: 1 to 100 characters"));
        }
        let filter = filter.ok_or_else(|| ContactsError::invalid_as("INVALID_FILTER", "filter: required"))?;
        let filter = filter_proto::from_proto(filter)?;
        let types: HashMap<String, FieldType> =
            store::field_types(&store::field_definitions(client, workspace).await?);
        filter::validate(&filter, &types)
            .map_err(|error| ContactsError::invalid_as("INVALID_FILTER", error.to_string()))?;
        Ok((name.to_owned(), filter))
    }
}
