//! Two ingress-webchat processes: the reply finds the visitor's socket wherever it is.

use std::time::Duration;

use serde_json::json;

use super::{Chat, Socket, base_of};

#[tokio::test]
async fn webchat_reply_reaches_the_visitor_on_the_other_replica() {
    // Replica A is the `all` process (delivery sends web chat replies to its HTTP listener);
    // replica B is a second ingress-webchat process.
    let chat = Chat::start(&[]).await;
    let replica_b = chat.hooks.start_component("ingress-webchat").await;
    let base_b = base_of(&replica_b.http);

    // The visitor's session was last seen on replica A: it wrote there, then its socket
    // dropped and it reconnected to replica B.
    let session = chat.visitor("Lin").await;
    let mut on_a = chat.socket(&session).await;
    on_a.send("resume", json!({"last_seq": 0})).await;
    on_a.send("message.send", json!({"client_id": "a-1", "text": "hi from A"}))
        .await;
    let echo = on_a.expect("message.created").await;
    let conversation = chat.conversation_of(echo["data"]["id"].as_str().unwrap()).await;
    drop(on_a);
    let mut on_b = Socket::open(&base_b, &session.token, None)
        .await
        .expect("socket on B");
    on_b.send("resume", json!({"last_seq": 1})).await;
    assert!(
        on_b.drain(Duration::from_millis(300))
            .await
            .iter()
            .all(|f| f["type"] != "message.created")
    );

    // The agent's reply goes through delivery to replica A, which has no socket of this
    // visitor; the hint over RabbitMQ wakes replica B's socket.
    chat.agent_reply(&conversation, "answer via A").await;
    let created = on_b.expect("message.created").await;
    assert_eq!(created["data"]["text"], "answer via A");
    assert_eq!(created["data"]["seq"], 2);

    // And the visitor's next message, sent on B, is an inbound event like the first.
    on_b.send(
        "message.send",
        json!({"client_id": "b-1", "text": "thanks from B"}),
    )
    .await;
    let echo = on_b.expect("message.created").await;
    assert_eq!(echo["data"]["seq"], 3);
    assert_eq!(
        chat.conversation_of(echo["data"]["id"].as_str().unwrap()).await,
        conversation
    );
    drop(replica_b);
    chat.hooks.cleanup().await;
}
