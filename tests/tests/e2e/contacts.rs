//! The contacts component through the real binary: a webhook's sender becomes a contact on the
//! way to routing (one trace), and `ContactsService` serves it, workspace-scoped.

use std::time::Duration;

use switchboard_e2e::webhooks::{WHATSAPP, WebhookSwitchboard, whatsapp_text};
use switchboard_e2e::{BOOTSTRAP_TOKEN, authorized};
use switchboard_proto::contacts::v1 as contacts;
use switchboard_proto::contacts::v1::contacts_service_client::ContactsServiceClient;
use switchboard_proto::events::v1::envelope::Payload;
use switchboard_proto::tenancy::v1 as tenancy;
use switchboard_proto::tenancy::v1::workspace_admin_service_client::WorkspaceAdminServiceClient;
use tonic::Code;
use tonic::transport::Channel;
use tonic_types::StatusExt;

const WORKSPACE: &str = "ws_e2e-hooks";

pub(crate) async fn key(hooks: &WebhookSwitchboard, workspace: &str, role: tenancy::ApiKeyRole) -> String {
    let mut admin = WorkspaceAdminServiceClient::new(hooks.switchboard.channel().await);
    if workspace != WORKSPACE {
        let _ = admin
            .create_workspace(authorized(
                tenancy::CreateWorkspaceRequest {
                    id: workspace.to_owned(),
                    name: workspace.to_owned(),
                },
                BOOTSTRAP_TOKEN,
            ))
            .await;
    }
    admin
        .create_api_key(authorized(
            tenancy::CreateApiKeyRequest {
                workspace_id: workspace.to_owned(),
                name: "contacts test".to_owned(),
                role: role as i32,
            },
            BOOTSTRAP_TOKEN,
        ))
        .await
        .unwrap()
        .into_inner()
        .token
}

fn reason(status: &tonic::Status) -> String {
    status
        .get_details_error_info()
        .map(|info| info.reason)
        .unwrap_or_default()
}

fn text(value: &str) -> contacts::FieldValue {
    contacts::FieldValue {
        value: Some(contacts::field_value::Value::Text(value.to_owned())),
    }
}

fn number(value: f64) -> contacts::FieldValue {
    contacts::FieldValue {
        value: Some(contacts::field_value::Value::Number(value)),
    }
}

fn mask(paths: &[&str]) -> Option<prost_types::FieldMask> {
    Some(prost_types::FieldMask {
        paths: paths.iter().map(|path| (*path).to_owned()).collect(),
    })
}

fn condition(field: &str, op: contacts::Operator, value: contacts::condition::Value) -> contacts::Filter {
    contacts::Filter {
        node: Some(contacts::filter::Node::Condition(contacts::Condition {
            field: field.to_owned(),
            op: op as i32,
            value: Some(value),
        })),
    }
}

#[tokio::test]
async fn a_webhook_sender_becomes_a_contact_on_the_way_to_routing_in_one_trace() {
    let hooks = WebhookSwitchboard::start_targets("tenancy,contacts,ingress", &[]).await;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let body = whatsapp_text("wamid.contact-1", "16505551234", "hello");
    let response = hooks
        .post_whatsapp(&body, Some(&format!("00-{trace_id}-00f067aa0ba902b7-01")))
        .await;
    assert_eq!(response.status(), 200);
    let events = hooks
        .read_queue(&hooks.routing_queue(), 2, Duration::from_secs(20))
        .await;
    assert_eq!(events[0].envelope.event_type, "contact.created");
    assert!(
        events[1]
            .envelope
            .event_type
            .starts_with("contact.inbound.whatsapp."),
        "{}",
        events[1].envelope.event_type
    );
    let Some(Payload::ContactInbound(resolved)) = &events[1].envelope.payload else {
        panic!("not a resolved inbound event: {:?}", events[1].envelope)
    };
    let contact = resolved.contact.as_ref().unwrap();
    assert!(resolved.new_contact);
    assert!(resolved.contact_id.starts_with("ct_"));
    assert_eq!(contact.phone, "+16505551234");
    assert_eq!(events[1].envelope.partition_key, resolved.contact_id);
    assert_eq!(resolved.event.as_ref().unwrap().channel_account_id, WHATSAPP.0);
    for event in &events {
        let traceparent = event.headers.get("traceparent").expect("trace context travels");
        assert!(
            traceparent.contains(trace_id),
            "one trace from the webhook: {traceparent}"
        );
    }

    // The contacts API shows it, with its identity.
    let token = key(&hooks, WORKSPACE, tenancy::ApiKeyRole::WorkspaceMember).await;
    let mut api = ContactsServiceClient::new(hooks.switchboard.channel().await);
    let fetched = api
        .get_contact(authorized(
            contacts::GetContactRequest {
                id: resolved.contact_id.clone(),
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner()
        .contact
        .unwrap();
    assert_eq!(fetched.identities.len(), 1);
    assert_eq!(fetched.identities[0].channel_user_id, "16505551234");
    assert!(fetched.last_inbound_at.is_some());

    // Blocked: the next message goes nowhere, and is listed as held.
    api.block_contact(authorized(
        contacts::BlockContactRequest {
            contact_id: resolved.contact_id.clone(),
        },
        &token,
    ))
    .await
    .unwrap();
    let response = hooks
        .post_whatsapp(&whatsapp_text("wamid.contact-2", "16505551234", "again"), None)
        .await;
    assert_eq!(response.status(), 200);
    let held = switchboard_testkit::eventually(Duration::from_secs(15), "the held event", || {
        let mut api = api.clone();
        let token = token.clone();
        async move {
            let events = api
                .list_held_events(authorized(contacts::ListHeldEventsRequest::default(), &token))
                .await
                .unwrap()
                .into_inner()
                .events;
            (!events.is_empty()).then_some(events)
        }
    })
    .await;
    assert_eq!(held[0].reason, "blocked");
    assert_eq!(held[0].contact_id, resolved.contact_id);
    // What reached routing since: the block event from the outbox, not the message.
    let after = hooks
        .read_queue(&hooks.routing_queue(), 1, Duration::from_secs(10))
        .await;
    assert_eq!(after[0].envelope.event_type, "contact.blocked");
    hooks.cleanup().await;
}

async fn create(
    api: &mut ContactsServiceClient<Channel>,
    token: &str,
    contact: contacts::Contact,
) -> contacts::Contact {
    api.create_contact(authorized(
        contacts::CreateContactRequest {
            contact: Some(contact),
        },
        token,
    ))
    .await
    .unwrap()
    .into_inner()
    .contact
    .unwrap()
}

#[tokio::test]
async fn the_contacts_api_validates_types_and_masks_filters_and_stays_inside_the_workspace() {
    let hooks = WebhookSwitchboard::start_targets("tenancy,contacts,ingress", &[]).await;
    let admin = key(&hooks, WORKSPACE, tenancy::ApiKeyRole::WorkspaceAdmin).await;
    let member = key(&hooks, WORKSPACE, tenancy::ApiKeyRole::WorkspaceMember).await;
    let other = key(&hooks, "ws_e2e-other", tenancy::ApiKeyRole::WorkspaceAdmin).await;
    let mut api = ContactsServiceClient::new(hooks.switchboard.channel().await);

    // Settings and custom fields are admin calls.
    let settings = contacts::Settings {
        default_country: "de".to_owned(),
        ..contacts::Settings::default()
    };
    let error = api
        .update_settings(authorized(
            contacts::UpdateSettingsRequest {
                settings: Some(settings.clone()),
            },
            &member,
        ))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::PermissionDenied);
    let saved = api
        .update_settings(authorized(
            contacts::UpdateSettingsRequest {
                settings: Some(settings),
            },
            &admin,
        ))
        .await
        .unwrap()
        .into_inner()
        .settings
        .unwrap();
    assert_eq!(saved.default_country, "DE");
    for (key, field_type, options) in [
        ("plan", contacts::FieldType::SingleSelect, vec!["free", "pro"]),
        ("score", contacts::FieldType::Number, vec![]),
    ] {
        api.define_field(authorized(
            contacts::DefineFieldRequest {
                field: Some(contacts::FieldDefinition {
                    key: key.to_owned(),
                    label: key.to_owned(),
                    r#type: field_type as i32,
                    options: options.into_iter().map(str::to_owned).collect(),
                }),
            },
            &admin,
        ))
        .await
        .unwrap();
    }

    // Create: national phone numbers use the default country; e-mail is canonical.
    let ada = create(
        &mut api,
        &member,
        contacts::Contact {
            first_name: "Ada".to_owned(),
            phone: "030 12345678".to_owned(),
            email: "Ada@Example.COM".to_owned(),
            tags: vec!["vip".to_owned()],
            custom_fields: [
                ("plan".to_owned(), text("pro")),
                ("score".to_owned(), number(42.0)),
            ]
            .into(),
            ..contacts::Contact::default()
        },
    )
    .await;
    assert_eq!(ada.phone, "+493012345678");
    assert_eq!(ada.email, "ada@example.com");
    let grace = create(
        &mut api,
        &member,
        contacts::Contact {
            first_name: "Grace".to_owned(),
            custom_fields: [("score".to_owned(), number(7.0))].into(),
            ..contacts::Contact::default()
        },
    )
    .await;

    // Typed errors: a wrong type, an unknown field, an invalid phone.
    let error = api
        .create_contact(authorized(
            contacts::CreateContactRequest {
                contact: Some(contacts::Contact {
                    custom_fields: [("score".to_owned(), text("many"))].into(),
                    ..contacts::Contact::default()
                }),
            },
            &member,
        ))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::InvalidArgument);
    assert_eq!(reason(&error), "FIELD_TYPE_MISMATCH");
    assert!(
        error.message().contains("custom_fields.score"),
        "{}",
        error.message()
    );
    for (contact, expected) in [
        (
            contacts::Contact {
                custom_fields: [("nope".to_owned(), text("x"))].into(),
                ..contacts::Contact::default()
            },
            "UNKNOWN_FIELD",
        ),
        (
            contacts::Contact {
                phone: "12".to_owned(),
                ..contacts::Contact::default()
            },
            "INVALID_PHONE",
        ),
    ] {
        let error = api
            .create_contact(authorized(
                contacts::CreateContactRequest {
                    contact: Some(contact),
                },
                &member,
            ))
            .await
            .unwrap_err();
        assert_eq!(reason(&error), expected, "{}", error.message());
    }

    // Update with a mask: a changed value outside the mask is refused, never written.
    let mut changed = ada.clone();
    changed.first_name = "Augusta".to_owned();
    changed.last_name = "King".to_owned();
    let error = api
        .update_contact(authorized(
            contacts::UpdateContactRequest {
                contact: Some(changed.clone()),
                update_mask: mask(&["first_name"]),
                expected_revision: 0,
            },
            &member,
        ))
        .await
        .unwrap_err();
    assert_eq!(reason(&error), "FIELD_OUTSIDE_MASK");
    assert!(error.message().contains("last_name"), "{}", error.message());
    // The whole contact sent back with one masked change works; a custom field is cleared.
    let mut changed = ada.clone();
    changed.first_name = "Augusta".to_owned();
    changed.custom_fields.remove("score");
    let updated = api
        .update_contact(authorized(
            contacts::UpdateContactRequest {
                contact: Some(changed),
                update_mask: mask(&["first_name", "custom_fields.score"]),
                expected_revision: ada.revision,
            },
            &member,
        ))
        .await
        .unwrap()
        .into_inner()
        .contact
        .unwrap();
    assert_eq!(updated.first_name, "Augusta");
    assert!(!updated.custom_fields.contains_key("score"));
    assert_eq!(updated.custom_fields.get("plan"), Some(&text("pro")));
    assert_eq!(updated.revision, ada.revision + 1);
    // A stale revision is ABORTED.
    let error = api
        .update_contact(authorized(
            contacts::UpdateContactRequest {
                contact: Some(updated.clone()),
                update_mask: mask(&["first_name"]),
                expected_revision: ada.revision,
            },
            &member,
        ))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::Aborted);

    // Filters, search, totals, cursors and views.
    let high_score = condition(
        "custom.score",
        contacts::Operator::Gt,
        contacts::condition::Value::Number(5.0),
    );
    let listed = api
        .list_contacts(authorized(
            contacts::ListContactsRequest {
                filter: Some(high_score.clone()),
                include_total: true,
                ..contacts::ListContactsRequest::default()
            },
            &member,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.total, 1);
    assert_eq!(listed.contacts[0].id, grace.id);
    let nested = contacts::Filter {
        node: Some(contacts::filter::Node::Any(contacts::FilterGroup {
            filters: vec![
                high_score,
                condition(
                    "tags",
                    contacts::Operator::HasAny,
                    contacts::condition::Value::List(contacts::StringList {
                        values: vec!["vip".to_owned()],
                    }),
                ),
            ],
        })),
    };
    let view = api
        .create_view(authorized(
            contacts::CreateViewRequest {
                name: "Engaged".to_owned(),
                filter: Some(nested.clone()),
            },
            &member,
        ))
        .await
        .unwrap()
        .into_inner()
        .view
        .unwrap();
    assert_eq!(view.filter.as_ref(), Some(&nested), "the filter round-trips");
    let first_page = api
        .list_contacts(authorized(
            contacts::ListContactsRequest {
                view_id: view.id.clone(),
                page: Some(switchboard_proto::common::v1::PageRequest {
                    page_size: 1,
                    page_token: String::new(),
                }),
                include_total: true,
                ..contacts::ListContactsRequest::default()
            },
            &member,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first_page.total, 2);
    assert_eq!(first_page.contacts.len(), 1);
    let token = first_page.page.unwrap().next_page_token;
    assert!(!token.is_empty());
    let second_page = api
        .list_contacts(authorized(
            contacts::ListContactsRequest {
                view_id: view.id.clone(),
                page: Some(switchboard_proto::common::v1::PageRequest {
                    page_size: 1,
                    page_token: token,
                }),
                ..contacts::ListContactsRequest::default()
            },
            &member,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second_page.contacts.len(), 1);
    assert_ne!(second_page.contacts[0].id, first_page.contacts[0].id);
    let searched = api
        .list_contacts(authorized(
            contacts::ListContactsRequest {
                query: "example.com".to_owned(),
                ..contacts::ListContactsRequest::default()
            },
            &member,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(searched.contacts.len(), 1);
    assert_eq!(searched.contacts[0].id, ada.id);
    let error = api
        .create_view(authorized(
            contacts::CreateViewRequest {
                name: "Broken".to_owned(),
                filter: Some(condition(
                    "custom.plan",
                    contacts::Operator::Gt,
                    contacts::condition::Value::Number(1.0),
                )),
            },
            &member,
        ))
        .await
        .unwrap_err();
    assert_eq!(reason(&error), "INVALID_FILTER");

    // Tags, consent.
    let tagged = api
        .add_tags(authorized(
            contacts::ChangeTagsRequest {
                contact_id: grace.id.clone(),
                tags: vec!["lead".to_owned(), "lead".to_owned()],
            },
            &member,
        ))
        .await
        .unwrap()
        .into_inner()
        .contact
        .unwrap();
    assert_eq!(tagged.tags, vec!["lead".to_owned()]);
    let opted = api
        .set_email_state(authorized(
            contacts::SetEmailStateRequest {
                contact_id: ada.id.clone(),
                fact: contacts::EmailFact::OptedIn as i32,
                value: true,
                source: "signup form".to_owned(),
            },
            &member,
        ))
        .await
        .unwrap()
        .into_inner()
        .contact
        .unwrap();
    let opt_in = opted.email_state.unwrap().opted_in.unwrap();
    assert!(opt_in.value && opt_in.changed_at.is_some());
    assert_eq!(opt_in.source, "signup form");
    let error = api
        .set_email_state(authorized(
            contacts::SetEmailStateRequest {
                contact_id: grace.id.clone(),
                fact: contacts::EmailFact::Verified as i32,
                value: true,
                source: String::new(),
            },
            &member,
        ))
        .await
        .unwrap_err();
    assert_eq!(reason(&error), "NO_EMAIL");

    // Another workspace's key sees none of it, on every call.
    let hidden = |result: Result<tonic::Response<_>, tonic::Status>| match result {
        Err(status) => assert_eq!(status.code(), Code::NotFound, "{status:?}"),
        Ok(_) => panic!("another workspace reached the contact"),
    };
    hidden(
        api.get_contact(authorized(
            contacts::GetContactRequest { id: ada.id.clone() },
            &other,
        ))
        .await
        .map(|_| tonic::Response::new(())),
    );
    hidden(
        api.update_contact(authorized(
            contacts::UpdateContactRequest {
                contact: Some(contacts::Contact {
                    id: ada.id.clone(),
                    first_name: "Mallory".to_owned(),
                    ..contacts::Contact::default()
                }),
                update_mask: mask(&["first_name"]),
                expected_revision: 0,
            },
            &other,
        ))
        .await
        .map(|_| tonic::Response::new(())),
    );
    for call in 0..5 {
        let contact_id = ada.id.clone();
        let result = match call {
            0 => api
                .add_tags(authorized(
                    contacts::ChangeTagsRequest {
                        contact_id,
                        tags: vec!["x".to_owned()],
                    },
                    &other,
                ))
                .await
                .map(|_| ()),
            1 => api
                .remove_tags(authorized(
                    contacts::ChangeTagsRequest {
                        contact_id,
                        tags: vec!["vip".to_owned()],
                    },
                    &other,
                ))
                .await
                .map(|_| ()),
            2 => api
                .block_contact(authorized(contacts::BlockContactRequest { contact_id }, &other))
                .await
                .map(|_| ()),
            3 => api
                .set_bot_subscription(authorized(
                    contacts::SetBotSubscriptionRequest {
                        contact_id,
                        subscribed: false,
                        source: String::new(),
                    },
                    &other,
                ))
                .await
                .map(|_| ()),
            _ => api
                .delete_view(authorized(
                    contacts::DeleteViewRequest { id: view.id.clone() },
                    &other,
                ))
                .await
                .map(|_| ()),
        };
        hidden(result.map(tonic::Response::new));
    }
    let theirs = api
        .list_contacts(authorized(
            contacts::ListContactsRequest {
                include_total: true,
                ..contacts::ListContactsRequest::default()
            },
            &other,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((theirs.total, theirs.contacts.len()), (0, 0));
    assert!(
        api.list_views(authorized(contacts::ListViewsRequest {}, &other))
            .await
            .unwrap()
            .into_inner()
            .views
            .is_empty()
    );
    // Platform keys act on no workspace's contacts.
    let error = api
        .list_contacts(authorized(
            contacts::ListContactsRequest::default(),
            BOOTSTRAP_TOKEN,
        ))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::PermissionDenied);
    // Nothing of ours changed.
    let ada_now = api
        .get_contact(authorized(
            contacts::GetContactRequest { id: ada.id.clone() },
            &member,
        ))
        .await
        .unwrap()
        .into_inner()
        .contact
        .unwrap();
    assert_eq!(ada_now.first_name, "Augusta");
    assert_eq!(ada_now.tags, vec!["vip".to_owned()]);
    assert!(!ada_now.blocked);
    hooks.cleanup().await;
}

/// A contact created by a WhatsApp message from `sender`; returns its id.
async fn contact_from_whatsapp(
    hooks: &WebhookSwitchboard,
    api: &mut ContactsServiceClient<Channel>,
    token: &str,
    sender: &str,
    message_id: &str,
) -> String {
    let response = hooks
        .post_whatsapp(&whatsapp_text(message_id, sender, "hi"), None)
        .await;
    assert_eq!(response.status(), 200);
    switchboard_testkit::eventually(Duration::from_secs(15), "the contact of a webhook", || {
        let mut api = api.clone();
        let query = format!("+{sender}");
        async move {
            let listed = api
                .list_contacts(authorized(
                    contacts::ListContactsRequest {
                        query,
                        ..contacts::ListContactsRequest::default()
                    },
                    token,
                ))
                .await
                .unwrap()
                .into_inner()
                .contacts;
            listed.first().map(|contact| contact.id.clone())
        }
    })
    .await
}

async fn get(
    api: &mut ContactsServiceClient<Channel>,
    token: &str,
    id: &str,
) -> Result<contacts::Contact, tonic::Status> {
    api.get_contact(authorized(
        contacts::GetContactRequest { id: id.to_owned() },
        token,
    ))
    .await
    .map(|response| response.into_inner().contact.unwrap())
}

/// A contact without the fields every change moves on.
fn comparable(mut contact: contacts::Contact) -> contacts::Contact {
    contact.revision = 0;
    contact.updated_at = None;
    contact
}

#[tokio::test]
async fn merge_then_unmerge_restores_both_contacts_exactly_and_later_activity_stays_with_the_primary() {
    let hooks = WebhookSwitchboard::start_targets("tenancy,contacts,ingress", &[]).await;
    let token = key(&hooks, WORKSPACE, tenancy::ApiKeyRole::WorkspaceAdmin).await;
    let mut api = ContactsServiceClient::new(hooks.switchboard.channel().await);
    api.define_field(authorized(
        contacts::DefineFieldRequest {
            field: Some(contacts::FieldDefinition {
                key: "score".to_owned(),
                label: "Score".to_owned(),
                r#type: contacts::FieldType::Number as i32,
                options: Vec::new(),
            }),
        },
        &token,
    ))
    .await
    .unwrap();
    let primary = contact_from_whatsapp(&hooks, &mut api, &token, "16505550101", "wamid.m1").await;
    let secondary = contact_from_whatsapp(&hooks, &mut api, &token, "16505550102", "wamid.m2").await;
    // Give the secondary data the primary lacks, and a tag both have.
    let mut edit = get(&mut api, &token, &secondary).await.unwrap();
    edit.email = "second@example.com".to_owned();
    edit.tags = vec!["lead".to_owned(), "vip".to_owned()];
    edit.custom_fields.insert("score".to_owned(), number(9.0));
    api.update_contact(authorized(
        contacts::UpdateContactRequest {
            contact: Some(edit),
            update_mask: mask(&["email", "tags", "custom_fields.score"]),
            expected_revision: 0,
        },
        &token,
    ))
    .await
    .unwrap();
    api.add_tags(authorized(
        contacts::ChangeTagsRequest {
            contact_id: primary.clone(),
            tags: vec!["vip".to_owned()],
        },
        &token,
    ))
    .await
    .unwrap();
    let primary_before = get(&mut api, &token, &primary).await.unwrap();
    let secondary_before = get(&mut api, &token, &secondary).await.unwrap();

    let merged = api
        .merge_contacts(authorized(
            contacts::MergeContactsRequest {
                primary_id: primary.clone(),
                secondary_id: secondary.clone(),
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    let contact = merged.contact.unwrap();
    assert_eq!(contact.identities.len(), 2, "identities moved to the primary");
    assert_eq!(contact.email, "second@example.com", "empty fields filled");
    assert_eq!(contact.tags, vec!["lead".to_owned(), "vip".to_owned()]);
    assert_eq!(contact.custom_fields.get("score"), Some(&number(9.0)));
    assert_eq!(
        get(&mut api, &token, &secondary).await.unwrap_err().code(),
        Code::NotFound
    );
    let listed = api
        .list_contacts(authorized(
            contacts::ListContactsRequest {
                include_total: true,
                ..contacts::ListContactsRequest::default()
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.total, 1);

    let unmerged = api
        .unmerge_contact(authorized(
            contacts::UnmergeContactRequest {
                merge_id: merged.merge_id.clone(),
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        comparable(unmerged.primary.unwrap()),
        comparable(primary_before.clone())
    );
    assert_eq!(
        comparable(unmerged.secondary.unwrap()),
        comparable(secondary_before.clone())
    );
    assert_eq!(
        comparable(get(&mut api, &token, &primary).await.unwrap()),
        comparable(primary_before)
    );
    assert_eq!(
        comparable(get(&mut api, &token, &secondary).await.unwrap()),
        comparable(secondary_before)
    );
    let error = api
        .unmerge_contact(authorized(
            contacts::UnmergeContactRequest {
                merge_id: merged.merge_id.clone(),
            },
            &token,
        ))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::AlreadyExists);

    // Merge again; the secondary's sender writes; unmerge: that activity stays with the primary.
    let merged = api
        .merge_contacts(authorized(
            contacts::MergeContactsRequest {
                primary_id: primary.clone(),
                secondary_id: secondary.clone(),
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    let seen_before = merged.contact.unwrap().last_inbound_at;
    let later = serde_json::json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": WHATSAPP.2},
            "contacts": [{"profile": {"name": "Sheena Nelson"}, "wa_id": "16505550102"}],
            "messages": [{"from": "16505550102", "id": "wamid.m3", "timestamp": "1893456000",
                          "type": "text", "text": {"body": "later"}}]
        }}]}]
    })
    .to_string();
    assert_eq!(hooks.post_whatsapp(later.as_bytes(), None).await.status(), 200);
    let primary_now =
        switchboard_testkit::eventually(Duration::from_secs(15), "activity on the primary", || {
            let mut api = api.clone();
            let (token, primary, seen_before) = (token.clone(), primary.clone(), seen_before);
            async move {
                let contact = get(&mut api, &token, &primary).await.unwrap();
                (contact.last_inbound_at != seen_before).then_some(contact)
            }
        })
        .await;
    let unmerged = api
        .unmerge_contact(authorized(
            contacts::UnmergeContactRequest {
                merge_id: merged.merge_id,
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    let primary_after = unmerged.primary.unwrap();
    assert_eq!(
        primary_after.last_inbound_at, primary_now.last_inbound_at,
        "activity stays"
    );
    assert_eq!(primary_after.identities.len(), 1);
    assert_eq!(
        unmerged.secondary.unwrap().identities[0].channel_user_id,
        "16505550102"
    );
    hooks.cleanup().await;
}

#[tokio::test]
async fn erasure_leaves_no_personal_data_and_a_retried_old_webhook_does_not_bring_it_back() {
    let hooks = WebhookSwitchboard::start_targets("tenancy,contacts,ingress", &[]).await;
    let admin = key(&hooks, WORKSPACE, tenancy::ApiKeyRole::WorkspaceAdmin).await;
    let member = key(&hooks, WORKSPACE, tenancy::ApiKeyRole::WorkspaceMember).await;
    let mut api = ContactsServiceClient::new(hooks.switchboard.channel().await);
    // Someone typed in with the same number earlier: the webhook's contact gets a suggestion.
    let typed = create(
        &mut api,
        &member,
        contacts::Contact {
            first_name: "Typed".to_owned(),
            phone: "+16505550777".to_owned(),
            ..contacts::Contact::default()
        },
    )
    .await;
    let body = whatsapp_text("wamid.erase-1", "16505550777", "my data");
    assert_eq!(hooks.post_whatsapp(&body, None).await.status(), 200);
    let contact = switchboard_testkit::eventually(Duration::from_secs(15), "the webhook's contact", || {
        let mut api = api.clone();
        let member = member.clone();
        async move {
            let listed = api
                .list_contacts(authorized(
                    contacts::ListContactsRequest {
                        query: "Sheena".to_owned(),
                        ..contacts::ListContactsRequest::default()
                    },
                    &member,
                ))
                .await
                .unwrap()
                .into_inner()
                .contacts;
            listed.first().map(|contact| contact.id.clone())
        }
    })
    .await;
    assert_ne!(contact, typed.id);
    // A blocked message leaves a record.
    api.block_contact(authorized(
        contacts::BlockContactRequest {
            contact_id: contact.clone(),
        },
        &member,
    ))
    .await
    .unwrap();
    hooks
        .post_whatsapp(&whatsapp_text("wamid.erase-2", "16505550777", "blocked"), None)
        .await;
    let client = hooks.database.connect().await;
    switchboard_testkit::eventually(Duration::from_secs(15), "the held record", || async {
        let held: i64 = client
            .query_one("SELECT count(*) FROM contacts.held_events", &[])
            .await
            .unwrap()
            .get(0);
        (held == 1).then_some(())
    })
    .await;

    let error = api
        .erase_contact(authorized(
            contacts::EraseContactRequest {
                contact_id: contact.clone(),
            },
            &member,
        ))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::PermissionDenied, "erasure needs an admin key");
    let erased = api
        .erase_contact(authorized(
            contacts::EraseContactRequest {
                contact_id: contact.clone(),
            },
            &admin,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(erased.erased_contact_ids, vec![contact.clone()]);
    assert_eq!(
        get(&mut api, &member, &contact).await.unwrap_err().code(),
        Code::NotFound
    );

    // Once the tombstone is out, no table of the contacts schema mentions the person.
    switchboard_testkit::eventually(Duration::from_secs(15), "the outbox to drain", || async {
        let waiting: i64 = client
            .query_one("SELECT count(*) FROM contacts.outbox", &[])
            .await
            .unwrap()
            .get(0);
        (waiting == 0).then_some(())
    })
    .await;
    let tables: Vec<String> = client
        .query(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'contacts'",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert!(tables.len() >= 10, "{tables:?}");
    for table in &tables {
        let rows = client
            .query(&format!("SELECT t::text FROM contacts.{table} t"), &[])
            .await
            .unwrap();
        for row in rows {
            let text: String = row.get(0);
            if table == "contacts" && text.contains(&typed.id) {
                continue; // the other contact, typed in by hand, keeps its own number
            }
            for personal in ["16505550777", "Sheena", "Nelson", contact.as_str()] {
                assert!(
                    !text.contains(personal),
                    "{table} still holds {personal:?}: {text}"
                );
            }
        }
    }
    // The routing queue got the tombstone.
    let routed = hooks
        .read_queue(&hooks.routing_queue(), 5, Duration::from_secs(10))
        .await;
    assert!(routed.iter().any(|event| event.envelope.event_type == "contact.erased"
        && matches!(&event.envelope.payload, Some(Payload::ContactChanged(changed)) if changed.contact_id == contact)));

    // WhatsApp retries the first webhook: same event id, so no contact comes back.
    assert_eq!(hooks.post_whatsapp(&body, None).await.status(), 200);
    switchboard_testkit::eventually(Duration::from_secs(15), "the replay to be skipped", || async {
        let erased = hooks
            .metric("switchboard_contacts_resolutions_total{channel=\"whatsapp\",outcome=\"erased\"}")
            .await;
        (erased >= 1.0).then_some(())
    })
    .await;
    let remaining = api
        .list_contacts(authorized(
            contacts::ListContactsRequest {
                include_total: true,
                ..contacts::ListContactsRequest::default()
            },
            &member,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(remaining.total, 1, "only the typed-in contact");
    hooks.cleanup().await;
}

async fn wait_job(api: &mut ContactsServiceClient<Channel>, token: &str, id: &str) -> contacts::Job {
    switchboard_testkit::eventually(Duration::from_secs(120), "the job to finish", || {
        let mut api = api.clone();
        let (token, id) = (token.to_owned(), id.to_owned());
        async move {
            let job = api
                .get_job(authorized(contacts::GetJobRequest { id }, &token))
                .await
                .unwrap()
                .into_inner()
                .job
                .unwrap();
            let finished = job.status == contacts::JobStatus::Done as i32
                || job.status == contacts::JobStatus::Failed as i32;
            finished.then_some(job)
        }
    })
    .await
}

async fn total(
    api: &mut ContactsServiceClient<Channel>,
    token: &str,
    filter: Option<contacts::Filter>,
) -> i64 {
    api.list_contacts(authorized(
        contacts::ListContactsRequest {
            filter,
            include_total: true,
            page: Some(switchboard_proto::common::v1::PageRequest {
                page_size: 1,
                page_token: String::new(),
            }),
            ..contacts::ListContactsRequest::default()
        },
        token,
    ))
    .await
    .unwrap()
    .into_inner()
    .total
}

#[tokio::test]
async fn importing_10000_rows_with_5_bad_ones_then_bulk_tagging_and_exporting_them() {
    let hooks = WebhookSwitchboard::start_targets("tenancy,contacts,ingress", &[]).await;
    let admin = key(&hooks, WORKSPACE, tenancy::ApiKeyRole::WorkspaceAdmin).await;
    let member = key(&hooks, WORKSPACE, tenancy::ApiKeyRole::WorkspaceMember).await;
    let mut api = ContactsServiceClient::new(hooks.switchboard.channel().await);
    for (key, field_type, options) in [
        ("score", contacts::FieldType::Number, vec![]),
        ("plan", contacts::FieldType::SingleSelect, vec!["free", "pro"]),
    ] {
        api.define_field(authorized(
            contacts::DefineFieldRequest {
                field: Some(contacts::FieldDefinition {
                    key: key.to_owned(),
                    label: key.to_owned(),
                    r#type: field_type as i32,
                    options: options.into_iter().map(str::to_owned).collect(),
                }),
            },
            &admin,
        ))
        .await
        .unwrap();
    }
    let bad_rows = [17_usize, 1_000, 4_321, 8_888, 10_000];
    let mut csv = String::from("first_name,email,phone,tags,custom.score,custom.plan\n");
    for row in 1..=10_000_usize {
        let line = match bad_rows.iter().position(|bad| *bad == row) {
            Some(0) => format!("Bad{row},not-an-email,,,1,free"),
            Some(1) => format!("Bad{row},bad{row}@example.com,12,,1,free"),
            Some(2) => format!("Bad{row},bad{row}@example.com,,,lots,free"),
            Some(3) => format!("Bad{row},bad{row}@example.com,,,1,enterprise"),
            Some(_) => format!("Bad{row},bad{row}@example.com"),
            None => format!(
                "Person{row},person{row}@example.com,+1650555{:04},imported;batch{},{},{}",
                row % 10_000,
                row % 3,
                row % 100,
                if row % 2 == 0 { "pro" } else { "free" }
            ),
        };
        csv.push_str(&line);
        csv.push('\n');
    }

    // A wrong header is refused at once.
    let error = api
        .import_contacts(authorized(
            contacts::ImportContactsRequest {
                csv: b"name,mail\nAda,ada@example.com\n".to_vec(),
                dry_run: false,
                request_id: String::new(),
            },
            &member,
        ))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::InvalidArgument);
    assert!(error.message().contains("unknown columns"), "{}", error.message());

    // Dry run: the counts, nothing written.
    let dry = api
        .import_contacts(authorized(
            contacts::ImportContactsRequest {
                csv: csv.clone().into_bytes(),
                dry_run: true,
                request_id: "dry".to_owned(),
            },
            &member,
        ))
        .await
        .unwrap()
        .into_inner()
        .job
        .unwrap();
    let dry = wait_job(&mut api, &member, &dry.id).await;
    assert_eq!(
        (dry.created, dry.updated, dry.failed, dry.total),
        (9_995, 0, 5, 10_000)
    );
    assert_eq!(total(&mut api, &member, None).await, 0);

    let started = api
        .import_contacts(authorized(
            contacts::ImportContactsRequest {
                csv: csv.clone().into_bytes(),
                dry_run: false,
                request_id: "import-1".to_owned(),
            },
            &member,
        ))
        .await
        .unwrap()
        .into_inner()
        .job
        .unwrap();
    let job = wait_job(&mut api, &member, &started.id).await;
    assert_eq!(job.status, contacts::JobStatus::Done as i32, "{job:?}");
    assert_eq!((job.created, job.failed, job.processed), (9_995, 5, 10_000));
    let rows: Vec<i64> = job.errors.iter().map(|error| error.row).collect();
    assert_eq!(rows, bad_rows.iter().map(|row| *row as i64).collect::<Vec<_>>());
    assert!(job.errors[0].message.contains("email"), "{:?}", job.errors[0]);
    assert!(
        job.errors[2].message.contains("custom.score"),
        "{:?}",
        job.errors[2]
    );
    assert_eq!(total(&mut api, &member, None).await, 9_995);
    // The same request id is the same job.
    let again = api
        .import_contacts(authorized(
            contacts::ImportContactsRequest {
                csv: csv.clone().into_bytes(),
                dry_run: false,
                request_id: "import-1".to_owned(),
            },
            &member,
        ))
        .await
        .unwrap()
        .into_inner()
        .job
        .unwrap();
    assert_eq!(again.id, started.id);

    // Bulk tag by filter, as a job; the same change again changes nothing.
    let high = condition(
        "custom.score",
        contacts::Operator::Gte,
        contacts::condition::Value::Number(90.0),
    );
    let matching = total(&mut api, &member, Some(high.clone())).await;
    assert!(matching > 900, "{matching}");
    let bulk = api
        .start_bulk_tag_job(authorized(
            contacts::StartBulkTagJobRequest {
                filter: Some(high.clone()),
                add_tags: vec!["hot".to_owned()],
                request_id: "hot-1".to_owned(),
                ..contacts::StartBulkTagJobRequest::default()
            },
            &member,
        ))
        .await
        .unwrap()
        .into_inner()
        .job
        .unwrap();
    let bulk = wait_job(&mut api, &member, &bulk.id).await;
    assert_eq!(
        (bulk.total, bulk.processed, bulk.created),
        (matching, matching, matching)
    );
    let hot = condition(
        "tags",
        contacts::Operator::HasAll,
        contacts::condition::Value::List(contacts::StringList {
            values: vec!["hot".to_owned()],
        }),
    );
    assert_eq!(total(&mut api, &member, Some(hot)).await, matching);
    let rerun = api
        .start_bulk_tag_job(authorized(
            contacts::StartBulkTagJobRequest {
                filter: Some(high),
                add_tags: vec!["hot".to_owned()],
                request_id: "hot-2".to_owned(),
                ..contacts::StartBulkTagJobRequest::default()
            },
            &member,
        ))
        .await
        .unwrap()
        .into_inner()
        .job
        .unwrap();
    let rerun = wait_job(&mut api, &member, &rerun.id).await;
    assert_eq!((rerun.processed, rerun.created), (matching, 0), "idempotent");

    // Export: admin keys only, streamed in chunks, the chosen columns.
    let error = api
        .export_contacts(authorized(contacts::ExportContactsRequest::default(), &member))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::PermissionDenied);
    let mut stream = api
        .export_contacts(authorized(
            contacts::ExportContactsRequest {
                columns: vec!["email".to_owned(), "tags".to_owned(), "custom.score".to_owned()],
                ..contacts::ExportContactsRequest::default()
            },
            &admin,
        ))
        .await
        .unwrap()
        .into_inner();
    let mut bytes = Vec::new();
    let mut chunks = 0;
    while let Some(chunk) = stream.message().await.unwrap() {
        bytes.extend(chunk.chunk);
        chunks += 1;
    }
    assert!(chunks > 5, "sent in chunks: {chunks}");
    let text = String::from_utf8(bytes).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("email,tags,custom.score"));
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 9_995);
    assert!(
        rows.contains(&"person42@example.com,batch0;imported,42"),
        "{:?}",
        &rows[..3]
    );

    // Importing the same people again updates them instead of duplicating them.
    let second = api
        .import_contacts(authorized(
            contacts::ImportContactsRequest {
                csv: "email,last_name\nperson1@example.com,Lovelace\nPERSON2@example.com,Hopper\n"
                    .as_bytes()
                    .to_vec(),
                dry_run: false,
                request_id: "import-2".to_owned(),
            },
            &member,
        ))
        .await
        .unwrap()
        .into_inner()
        .job
        .unwrap();
    let second = wait_job(&mut api, &member, &second.id).await;
    assert_eq!((second.created, second.updated, second.failed), (0, 2, 0));
    assert_eq!(total(&mut api, &member, None).await, 9_995);
    hooks.cleanup().await;
}

#[tokio::test]
async fn every_contacts_rpc_stays_inside_the_callers_workspace() {
    let hooks = WebhookSwitchboard::start_targets("tenancy,contacts,ingress", &[]).await;
    let ours = key(&hooks, WORKSPACE, tenancy::ApiKeyRole::WorkspaceAdmin).await;
    let theirs = key(&hooks, "ws_e2e-theirs", tenancy::ApiKeyRole::WorkspaceAdmin).await;
    let mut api = ContactsServiceClient::new(hooks.switchboard.channel().await);
    // Our workspace: two contacts (one from a webhook, so it has an identity), a field, a
    // view, a quota, a job, a merge.
    api.define_field(authorized(
        contacts::DefineFieldRequest {
            field: Some(contacts::FieldDefinition {
                key: "secret_plan".to_owned(),
                label: "Plan".to_owned(),
                r#type: contacts::FieldType::Text as i32,
                options: Vec::new(),
            }),
        },
        &ours,
    ))
    .await
    .unwrap();
    api.set_quota(authorized(
        contacts::SetQuotaRequest {
            channel: switchboard_proto::common::v1::Channel::Whatsapp as i32,
            monthly_limit: 1_000,
            unlimited: false,
        },
        &ours,
    ))
    .await
    .unwrap();
    let from_webhook = contact_from_whatsapp(&hooks, &mut api, &ours, "16505550333", "wamid.iso-1").await;
    let typed = create(
        &mut api,
        &ours,
        contacts::Contact {
            first_name: "Ours".to_owned(),
            email: "ours@example.com".to_owned(),
            ..contacts::Contact::default()
        },
    )
    .await;
    let view = api
        .create_view(authorized(
            contacts::CreateViewRequest {
                name: "Ours".to_owned(),
                filter: Some(condition(
                    "first_name",
                    contacts::Operator::Eq,
                    contacts::condition::Value::Text("Ours".to_owned()),
                )),
            },
            &ours,
        ))
        .await
        .unwrap()
        .into_inner()
        .view
        .unwrap();
    let job = api
        .start_bulk_tag_job(authorized(
            contacts::StartBulkTagJobRequest {
                add_tags: vec!["ours".to_owned()],
                ..contacts::StartBulkTagJobRequest::default()
            },
            &ours,
        ))
        .await
        .unwrap()
        .into_inner()
        .job
        .unwrap();
    wait_job(&mut api, &ours, &job.id).await;
    let merge_id = api
        .merge_contacts(authorized(
            contacts::MergeContactsRequest {
                primary_id: from_webhook.clone(),
                secondary_id: typed.id.clone(),
            },
            &ours,
        ))
        .await
        .unwrap()
        .into_inner()
        .merge_id;

    let not_found = |what: &str, result: Result<(), tonic::Status>| match result {
        Err(status) => assert_eq!(status.code(), Code::NotFound, "{what}: {status:?}"),
        Ok(()) => panic!("{what}: another workspace reached our data"),
    };
    let mut other = api.clone();
    not_found(
        "SetEmailState",
        other
            .set_email_state(authorized(
                contacts::SetEmailStateRequest {
                    contact_id: from_webhook.clone(),
                    fact: contacts::EmailFact::OptedOut as i32,
                    value: true,
                    source: String::new(),
                },
                &theirs,
            ))
            .await
            .map(|_| ()),
    );
    not_found(
        "UnblockContact",
        other
            .unblock_contact(authorized(
                contacts::BlockContactRequest {
                    contact_id: from_webhook.clone(),
                },
                &theirs,
            ))
            .await
            .map(|_| ()),
    );
    let their_contact = create(&mut other, &theirs, contacts::Contact::default()).await;
    not_found(
        "MergeContacts",
        other
            .merge_contacts(authorized(
                contacts::MergeContactsRequest {
                    primary_id: their_contact.id.clone(),
                    secondary_id: from_webhook.clone(),
                },
                &theirs,
            ))
            .await
            .map(|_| ()),
    );
    not_found(
        "UnmergeContact",
        other
            .unmerge_contact(authorized(
                contacts::UnmergeContactRequest {
                    merge_id: merge_id.clone(),
                },
                &theirs,
            ))
            .await
            .map(|_| ()),
    );
    not_found(
        "EraseContact",
        other
            .erase_contact(authorized(
                contacts::EraseContactRequest {
                    contact_id: from_webhook.clone(),
                },
                &theirs,
            ))
            .await
            .map(|_| ()),
    );
    not_found(
        "GetJob",
        other
            .get_job(authorized(
                contacts::GetJobRequest { id: job.id.clone() },
                &theirs,
            ))
            .await
            .map(|_| ()),
    );
    not_found(
        "UpdateView",
        other
            .update_view(authorized(
                contacts::UpdateViewRequest {
                    view: Some(contacts::View {
                        name: "Stolen".to_owned(),
                        ..view.clone()
                    }),
                },
                &theirs,
            ))
            .await
            .map(|_| ()),
    );
    not_found(
        "ListContacts with our view",
        other
            .list_contacts(authorized(
                contacts::ListContactsRequest {
                    view_id: view.id.clone(),
                    ..contacts::ListContactsRequest::default()
                },
                &theirs,
            ))
            .await
            .map(|_| ()),
    );
    not_found(
        "StartBulkTagJob with our view",
        other
            .start_bulk_tag_job(authorized(
                contacts::StartBulkTagJobRequest {
                    view_id: view.id.clone(),
                    add_tags: vec!["x".to_owned()],
                    ..contacts::StartBulkTagJobRequest::default()
                },
                &theirs,
            ))
            .await
            .map(|_| ()),
    );
    // Lists show only their own (empty) data.
    let fields = other
        .list_fields(authorized(contacts::ListFieldsRequest {}, &theirs))
        .await
        .unwrap()
        .into_inner()
        .fields;
    assert!(fields.is_empty());
    let quotas = other
        .get_quota_usage(authorized(contacts::GetQuotaUsageRequest {}, &theirs))
        .await
        .unwrap()
        .into_inner()
        .quotas;
    assert!(quotas.is_empty(), "{quotas:?}");
    assert!(
        other
            .list_held_events(authorized(contacts::ListHeldEventsRequest::default(), &theirs))
            .await
            .unwrap()
            .into_inner()
            .events
            .is_empty()
    );
    assert!(
        other
            .list_merge_suggestions(authorized(
                contacts::ListMergeSuggestionsRequest::default(),
                &theirs
            ))
            .await
            .unwrap()
            .into_inner()
            .suggestions
            .is_empty()
    );
    let settings = other
        .get_settings(authorized(contacts::GetSettingsRequest {}, &theirs))
        .await
        .unwrap()
        .into_inner()
        .settings
        .unwrap();
    assert_eq!(settings, contacts::Settings::default());
    let searched = other
        .list_contacts(authorized(
            contacts::ListContactsRequest {
                query: "ours".to_owned(),
                include_total: true,
                ..contacts::ListContactsRequest::default()
            },
            &theirs,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(searched.total, 0);
    let mut stream = other
        .export_contacts(authorized(contacts::ExportContactsRequest::default(), &theirs))
        .await
        .unwrap()
        .into_inner();
    let mut exported = Vec::new();
    while let Some(chunk) = stream.message().await.unwrap() {
        exported.extend(chunk.chunk);
    }
    let exported = String::from_utf8(exported).unwrap();
    assert_eq!(
        exported.lines().count(),
        2,
        "header and their one contact: {exported}"
    );
    assert!(!exported.contains("secret_plan") && !exported.contains(&from_webhook));
    // Our data is intact.
    let mine = get(&mut api, &ours, &from_webhook).await.unwrap();
    assert!(mine.email_state.unwrap().opted_out.is_none());
    assert_eq!(mine.identities.len(), 1);
    assert!(mine.tags.contains(&"ours".to_owned()));
    hooks.cleanup().await;
}

/// Publishes routing's `assignment.changed` for `contact` (one partition in tests).
async fn publish_assignment(
    hooks: &WebhookSwitchboard,
    contact: &str,
    assignee: &str,
    at_seconds: i64,
    id: &str,
) {
    use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
    use prost::Message as _;
    use switchboard_proto::events::v1 as events;
    let envelope = events::Envelope {
        event_id: format!("evt_{id}"),
        event_type: "assignment.changed".to_owned(),
        occurred_at: Some(prost_types::Timestamp {
            seconds: at_seconds,
            nanos: 0,
        }),
        workspace_id: WORKSPACE.to_owned(),
        correlation_id: String::new(),
        causation_id: String::new(),
        partition_key: contact.to_owned(),
        payload: Some(Payload::AssignmentChanged(events::AssignmentChanged {
            contact_id: contact.to_owned(),
            conversation_id: "conv_1".to_owned(),
            assignee_id: assignee.to_owned(),
            team_id: String::new(),
        })),
    };
    let connection = lapin::Connection::connect(
        &switchboard_testkit::amqp_url(),
        lapin::ConnectionProperties::default(),
    )
    .await
    .unwrap();
    let channel = connection.create_channel().await.unwrap();
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    // Routing declares contacts' assignment queue before it publishes; this stand-in does not,
    // so until contacts has bound its queue the broker returns the event (mandatory), delivered
    // to no one, and it is published again.
    let payload = envelope.encode_to_vec();
    switchboard_testkit::eventually(
        Duration::from_secs(20),
        "routed to contacts.assignment",
        || async {
            let confirm = channel
                .basic_publish(
                    format!("{}switchboard.events", hooks.namespace).into(),
                    "assignment.changed.p00".into(),
                    BasicPublishOptions {
                        mandatory: true,
                        ..BasicPublishOptions::default()
                    },
                    &payload,
                    lapin::BasicProperties::default(),
                )
                .await
                .unwrap()
                .await
                .unwrap();
            matches!(confirm, lapin::Confirmation::Ack(None)).then_some(())
        },
    )
    .await;
    let _ = connection.close(200, "done".into()).await;
}

#[tokio::test]
async fn routing_assignments_keep_the_contacts_assignee_for_filters_and_never_go_backwards() {
    let hooks = WebhookSwitchboard::start_targets("tenancy,contacts,ingress", &[]).await;
    let token = key(&hooks, WORKSPACE, tenancy::ApiKeyRole::WorkspaceMember).await;
    let mut api = ContactsServiceClient::new(hooks.switchboard.channel().await);
    let contact = create(
        &mut api,
        &token,
        contacts::Contact {
            first_name: "Assigned".to_owned(),
            ..contacts::Contact::default()
        },
    )
    .await;
    let assignee = |contact: contacts::Contact| contact.assignee_id;
    publish_assignment(&hooks, &contact.id, "agent_ada", 1_800_000_100, "a1").await;
    switchboard_testkit::eventually(Duration::from_secs(15), "the assignee", || {
        let (mut api, token, id) = (api.clone(), token.clone(), contact.id.clone());
        async move { (assignee(get(&mut api, &token, &id).await.unwrap()) == "agent_ada").then_some(()) }
    })
    .await;
    let by_assignee = condition(
        "assignee_id",
        contacts::Operator::Eq,
        contacts::condition::Value::Text("agent_ada".to_owned()),
    );
    assert_eq!(total(&mut api, &token, Some(by_assignee.clone())).await, 1);
    // A late, older assignment is ignored; a newer unassignment applies.
    publish_assignment(&hooks, &contact.id, "agent_old", 1_800_000_000, "a0").await;
    publish_assignment(&hooks, &contact.id, "", 1_800_000_200, "a2").await;
    switchboard_testkit::eventually(Duration::from_secs(15), "the unassignment", || {
        let (mut api, token, id) = (api.clone(), token.clone(), contact.id.clone());
        async move {
            assignee(get(&mut api, &token, &id).await.unwrap())
                .is_empty()
                .then_some(())
        }
    })
    .await;
    assert_eq!(total(&mut api, &token, Some(by_assignee)).await, 0);
    let unassigned = contacts::Filter {
        node: Some(contacts::filter::Node::Condition(contacts::Condition {
            field: "assignee_id".to_owned(),
            op: contacts::Operator::IsNotSet as i32,
            value: None,
        })),
    };
    assert_eq!(total(&mut api, &token, Some(unassigned)).await, 1);
    hooks.cleanup().await;
}

#[tokio::test]
async fn a_nul_character_in_a_name_or_text_is_stored_not_dead_lettered() {
    // JSON may carry U+0000 (`\u0000`); PostgreSQL text and jsonb cannot hold it. A validly
    // signed webhook with one must still become a contact and a message, not a dead letter.
    let hooks = WebhookSwitchboard::start_targets("all", &[]).await;
    let body = serde_json::json!({
        "object": "whatsapp_business_account",
        "entry": [{
            "id": "102290129340398",
            "changes": [{
                "field": "messages",
                "value": {
                    "messaging_product": "whatsapp",
                    "metadata": {"display_phone_number": "15550783881", "phone_number_id": WHATSAPP.2},
                    "contacts": [{"profile": {"name": "Ana\u{0}Maria"}, "wa_id": "16505550199"}],
                    "messages": [{"from": "16505550199", "id": "wamid.nul-1", "timestamp": "1749416383",
                                  "type": "text", "text": {"body": "hi\u{0}there"}}]
                }
            }]
        }]
    })
    .to_string();
    assert!(
        body.contains("\\u0000"),
        "the webhook carries an escaped NUL: {body}"
    );
    assert_eq!(hooks.post_whatsapp(body.as_bytes(), None).await.status(), 200);
    let db = hooks.database.connect().await;
    let stored = switchboard_testkit::eventually(Duration::from_secs(30), "the message stored", || async {
        db.query_opt(
            "SELECT contact_id FROM routing.messages WHERE provider_message_id = 'wamid.nul-1'",
            &[],
        )
        .await
        .ok()
        .flatten()
        .map(|row| row.get::<_, String>(0))
    })
    .await;
    let name: String = db
        .query_one(
            "SELECT display_name FROM contacts.contacts WHERE id = $1",
            &[&stored],
        )
        .await
        .unwrap()
        .get(0);
    assert!(
        name.starts_with("Ana") && name.ends_with("Maria") && !name.contains('\0'),
        "{name:?}"
    );
    hooks.cleanup().await;
}
