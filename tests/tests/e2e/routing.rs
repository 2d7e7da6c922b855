//! Routing through the real binary: a webhook's message lands once in its contact's
//! conversation, however often the provider retries it, and an erasure purges the history.

use std::time::Duration;

use switchboard_e2e::authorized;
use switchboard_e2e::webhooks::{WebhookSwitchboard, whatsapp_text};
use switchboard_proto::contacts::v1 as contacts;
use switchboard_proto::contacts::v1::contacts_service_client::ContactsServiceClient;
use switchboard_proto::tenancy::v1 as tenancy;
use switchboard_testkit::TestDatabase;

#[tokio::test]
async fn a_retried_webhook_is_one_message_in_one_conversation_and_erasure_purges_it() {
    let hooks = WebhookSwitchboard::start_targets("all", &[]).await;
    let client = hooks.database.connect().await;
    let first = whatsapp_text("wamid.route-1", "16505550444", "hello");
    for _ in 0..3 {
        assert_eq!(hooks.post_whatsapp(&first, None).await.status(), 200);
    }
    // The second message is also the sentinel: one sender's events are handled in order, so
    // once it is stored every retry before it was handled too.
    let second = whatsapp_text("wamid.route-2", "16505550444", "again");
    assert_eq!(hooks.post_whatsapp(&second, None).await.status(), 200);
    switchboard_testkit::eventually(
        Duration::from_secs(20),
        "the second message in history",
        || async {
            (TestDatabase::count(
                &client,
                "SELECT count(*) FROM routing.messages WHERE provider_message_id = 'wamid.route-2'",
            )
            .await
                == 1)
                .then_some(())
        },
    )
    .await;
    assert_eq!(
        TestDatabase::count(&client, "SELECT count(*) FROM routing.messages").await,
        2
    );
    assert_eq!(
        TestDatabase::count(
            &client,
            "SELECT count(*) FROM routing.conversations WHERE status = 'open'"
        )
        .await,
        1
    );
    let contact: String = client
        .query_one("SELECT DISTINCT contact_id FROM routing.messages", &[])
        .await
        .unwrap()
        .get(0);

    let admin = crate::contacts::key(&hooks, "ws_e2e-hooks", tenancy::ApiKeyRole::WorkspaceAdmin).await;
    let mut api = ContactsServiceClient::new(hooks.switchboard.channel().await);
    api.erase_contact(authorized(
        contacts::EraseContactRequest {
            contact_id: contact.clone(),
        },
        &admin,
    ))
    .await
    .unwrap();
    switchboard_testkit::eventually(
        Duration::from_secs(20),
        "routing to purge the history",
        || async {
            let left = TestDatabase::count(&client, "SELECT count(*) FROM routing.messages").await
                + TestDatabase::count(&client, "SELECT count(*) FROM routing.conversations").await;
            (left == 0).then_some(())
        },
    )
    .await;
    hooks.cleanup().await;
}

#[tokio::test]
async fn conversations_close_reopen_and_page_their_history_inside_the_workspace() {
    use switchboard_proto::routing::v1 as routing;
    use switchboard_proto::routing::v1::routing_service_client::RoutingServiceClient;
    use tonic::Code;

    let hooks = WebhookSwitchboard::start_targets("all", &[]).await;
    let token = crate::contacts::key(&hooks, "ws_e2e-hooks", tenancy::ApiKeyRole::WorkspaceMember).await;
    let other = crate::contacts::key(&hooks, "ws_e2e-elsewhere", tenancy::ApiKeyRole::WorkspaceAdmin).await;
    let mut api = RoutingServiceClient::new(hooks.switchboard.channel().await);
    for id in ["wamid.page-1", "wamid.page-2", "wamid.page-3"] {
        assert_eq!(
            hooks
                .post_whatsapp(&whatsapp_text(id, "16505550555", "hi"), None)
                .await
                .status(),
            200
        );
    }
    let conversation = switchboard_testkit::eventually(Duration::from_secs(20), "the conversation", || {
        let (mut api, token) = (api.clone(), token.clone());
        async move {
            let listed = api
                .list_conversations(authorized(routing::ListConversationsRequest::default(), &token))
                .await
                .unwrap()
                .into_inner()
                .conversations;
            let first = listed.into_iter().next()?;
            let messages = api
                .list_messages(authorized(
                    routing::ListMessagesRequest {
                        conversation_id: first.id.clone(),
                        page: None,
                    },
                    &token,
                ))
                .await
                .unwrap()
                .into_inner()
                .messages;
            (messages.len() == 3).then_some(first)
        }
    })
    .await;
    assert_eq!(conversation.status, routing::ConversationStatus::Open as i32);
    // History pages in provider time order, arrival order on ties (all three share a second).
    let mut seen = Vec::new();
    let mut token_page = String::new();
    loop {
        let page = api
            .list_messages(authorized(
                routing::ListMessagesRequest {
                    conversation_id: conversation.id.clone(),
                    page: Some(switchboard_proto::common::v1::PageRequest {
                        page_size: 1,
                        page_token: token_page.clone(),
                    }),
                },
                &token,
            ))
            .await
            .unwrap()
            .into_inner();
        seen.extend(
            page.messages
                .iter()
                .map(|message| message.provider_message_id.clone()),
        );
        token_page = page.page.unwrap().next_page_token;
        if token_page.is_empty() {
            break;
        }
    }
    assert_eq!(seen, vec!["wamid.page-1", "wamid.page-2", "wamid.page-3"]);

    // Another workspace sees none of it.
    let error = api
        .get_conversation(authorized(
            routing::GetConversationRequest {
                id: conversation.id.clone(),
            },
            &other,
        ))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::NotFound);
    for result in [
        api.list_messages(authorized(
            routing::ListMessagesRequest {
                conversation_id: conversation.id.clone(),
                page: None,
            },
            &other,
        ))
        .await
        .map(|_| ()),
        api.close_conversation(authorized(
            routing::CloseConversationRequest {
                id: conversation.id.clone(),
                closing_note: None,
            },
            &other,
        ))
        .await
        .map(|_| ()),
        api.reopen_conversation(authorized(
            routing::ReopenConversationRequest {
                id: conversation.id.clone(),
            },
            &other,
        ))
        .await
        .map(|_| ()),
    ] {
        assert_eq!(result.unwrap_err().code(), Code::NotFound);
    }
    assert!(
        api.list_conversations(authorized(routing::ListConversationsRequest::default(), &other))
            .await
            .unwrap()
            .into_inner()
            .conversations
            .is_empty()
    );

    // Close with a note (too long a summary is refused); the next message opens a new one.
    let error = api
        .close_conversation(authorized(
            routing::CloseConversationRequest {
                id: conversation.id.clone(),
                closing_note: Some(routing::ClosingNote {
                    category: "resolved".to_owned(),
                    summary: "x".repeat(2_001),
                }),
            },
            &token,
        ))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::InvalidArgument);
    let closed = api
        .close_conversation(authorized(
            routing::CloseConversationRequest {
                id: conversation.id.clone(),
                closing_note: Some(routing::ClosingNote {
                    category: "resolved".to_owned(),
                    summary: "Answered the question".to_owned(),
                }),
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner()
        .conversation
        .unwrap();
    assert_eq!(closed.status, routing::ConversationStatus::Closed as i32);
    assert_eq!(closed.closing_note.unwrap().category, "resolved");
    assert_eq!(
        hooks
            .post_whatsapp(&whatsapp_text("wamid.page-4", "16505550555", "back"), None)
            .await
            .status(),
        200
    );
    let open = switchboard_testkit::eventually(Duration::from_secs(20), "a new open conversation", || {
        let (mut api, token) = (api.clone(), token.clone());
        async move {
            api.list_conversations(authorized(
                routing::ListConversationsRequest {
                    status: routing::ConversationStatus::Open as i32,
                    ..routing::ListConversationsRequest::default()
                },
                &token,
            ))
            .await
            .unwrap()
            .into_inner()
            .conversations
            .into_iter()
            .next()
        }
    })
    .await;
    assert_ne!(open.id, conversation.id);
    // The old one cannot reopen while the new one is open.
    let error = api
        .reopen_conversation(authorized(
            routing::ReopenConversationRequest {
                id: conversation.id.clone(),
            },
            &token,
        ))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::FailedPrecondition);
    api.close_conversation(authorized(
        routing::CloseConversationRequest {
            id: open.id.clone(),
            closing_note: None,
        },
        &token,
    ))
    .await
    .unwrap();
    let reopened = api
        .reopen_conversation(authorized(
            routing::ReopenConversationRequest {
                id: conversation.id.clone(),
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner()
        .conversation
        .unwrap();
    assert_eq!(reopened.status, routing::ConversationStatus::Open as i32);
    assert!(reopened.closing_note.is_none());
    hooks.cleanup().await;
}
