//! Routing through the real binary: a webhook's message lands once in its contact's
//! conversation, however often the provider retries it, and an erasure purges the history.

use std::time::Duration;

use switchboard_e2e::authorized;
use switchboard_e2e::webhooks::{WebhookSwitchboard, whatsapp_text};
use switchboard_proto::contacts::v1 as contacts;
use switchboard_proto::contacts::v1::contacts_service_client::ContactsServiceClient;
use switchboard_proto::tenancy::v1 as tenancy;

async fn count(client: &tokio_postgres::Client, sql: &str) -> i64 {
    client.query_one(sql, &[]).await.unwrap().get(0)
}

#[tokio::test]
async fn a_retried_webhook_is_one_message_in_one_conversation_and_erasure_purges_it() {
    let hooks = WebhookSwitchboard::start_targets("all", &[]).await;
    let (client, connection) = tokio_postgres::connect(&hooks.database.url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let first = whatsapp_text("wamid.route-1", "16505550444", "hello");
    for _ in 0..3 {
        assert_eq!(hooks.post_whatsapp(&first, None).await.status(), 200);
    }
    let second = whatsapp_text("wamid.route-2", "16505550444", "again");
    assert_eq!(hooks.post_whatsapp(&second, None).await.status(), 200);
    switchboard_testkit::eventually(Duration::from_secs(20), "both messages in history", || async {
        (count(&client, "SELECT count(*) FROM routing.messages").await == 2).then_some(())
    })
    .await;
    // The retries are processed too before we look again.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(count(&client, "SELECT count(*) FROM routing.messages").await, 2);
    assert_eq!(
        count(
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
            let left = count(&client, "SELECT count(*) FROM routing.messages").await
                + count(&client, "SELECT count(*) FROM routing.conversations").await;
            (left == 0).then_some(())
        },
    )
    .await;
    hooks.cleanup().await;
}
