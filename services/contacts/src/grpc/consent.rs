//! The RPCs that change a contact's tags, block, bot subscription and e-mail state.

use std::collections::BTreeSet;

use switchboard_proto::contacts::v1 as proto;
use switchboard_proto::events::v1::ContactChange;
use tonic::{Request, Response, Status};

use super::changes::Changed;
use super::contacts::tag_diff;
use super::{ContactsApi, contact_id, source, workspace};
use crate::{ContactsError, store};

impl ContactsApi {
    /// Adds (`add`) or removes the request's tags.
    pub(super) async fn change_tags(
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

    /// Blocks or unblocks a contact.
    pub(super) async fn set_blocked(
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

    /// Sets whether the contact receives bot messages, and from which source.
    pub(super) async fn set_bot_subscription_rpc(
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

    /// Records or clears an e-mail fact (verified, opted in, opted out).
    pub(super) async fn set_email_state_rpc(
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
}
