//! Conversation history against real PostgreSQL: replays are one message, concurrent first
//! messages on a closed conversation open exactly one new conversation, erasure purges.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use switchboard_domain::{ContactId, WorkspaceId};
use switchboard_proto::common::v1::{Channel, SenderIdentity};
use switchboard_proto::events::v1::{
    ContactResolvedInbound, Envelope, InboundEvent, InboundMessage, MessageDelete, MessageEdit, Reaction,
    envelope::Payload, inbound_event::Kind,
};
use switchboard_routing::{Appended, Dispatcher, History};
use switchboard_testkit::TestDatabase;

const WORKSPACE: &str = "ws_routing";
const ACCOUNT: &str = "chacc_wa";

async fn history() -> (TestDatabase, switchboard_postgres::Pool, Arc<History>) {
    let database = TestDatabase::create().await.unwrap();
    let pool = switchboard_postgres::connect(&switchboard_postgres::DatabaseConfig {
        max_connections: 24,
        ..database.config()
    })
    .await
    .unwrap();
    switchboard_postgres::migrate(&pool, &switchboard_routing::MIGRATIONS)
        .await
        .unwrap();
    let dispatcher = Dispatcher::new(
        pool.clone(),
        switchboard_messaging::Partitions::uniform(1),
        Arc::new(tokio::sync::Notify::new()),
    );
    let history = Arc::new(History::new(pool.clone(), dispatcher));
    (database, pool, history)
}

fn inbound(contact: &str, provider_message_id: &str, seconds: i64) -> (Envelope, ContactResolvedInbound) {
    let resolved = ContactResolvedInbound {
        event: Some(InboundEvent {
            channel: Channel::Whatsapp as i32,
            channel_account_id: ACCOUNT.to_owned(),
            provider_timestamp: Some(prost_types::Timestamp { seconds, nanos: 0 }),
            sender: Some(SenderIdentity {
                channel_user_id: "16505550100".to_owned(),
                ..SenderIdentity::default()
            }),
            kind: Some(Kind::Message(InboundMessage {
                provider_message_id: provider_message_id.to_owned(),
                ..InboundMessage::default()
            })),
            ..InboundEvent::default()
        }),
        contact_id: contact.to_owned(),
        contact: None,
        new_contact: false,
    };
    let envelope = Envelope {
        event_id: format!("evt_{provider_message_id}"),
        event_type: "contact.inbound.whatsapp.message".to_owned(),
        workspace_id: WORKSPACE.to_owned(),
        partition_key: contact.to_owned(),
        payload: Some(Payload::ContactInbound(resolved.clone())),
        ..Envelope::default()
    };
    (envelope, resolved)
}

async fn count(pool: &switchboard_postgres::Pool, sql: &str) -> i64 {
    pool.get()
        .await
        .unwrap()
        .query_one(sql, &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_concurrent_replays_of_one_message_are_one_message() {
    let (_database, pool, history) = history().await;
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let history = history.clone();
        tasks.push(tokio::spawn(async move {
            let (envelope, resolved) = inbound("ct_1", "wamid.same", 1_800_000_000);
            history.append(&envelope, &resolved).await.unwrap()
        }));
    }
    let mut added = 0;
    for task in tasks {
        match task.await.unwrap() {
            Appended::Added { .. } => added += 1,
            Appended::Duplicate => {}
            Appended::Ignored | Appended::Updated { .. } => panic!("a message was not added"),
        }
    }
    assert_eq!(added, 1);
    assert_eq!(count(&pool, "SELECT count(*) FROM routing.messages").await, 1);
    assert_eq!(
        count(&pool, "SELECT count(*) FROM routing.conversations").await,
        1
    );
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM routing.event_log WHERE event_type = 'message.added'"
        )
        .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_messages_on_a_closed_conversation_open_exactly_one() {
    let (_database, pool, history) = history().await;
    let (envelope, resolved) = inbound("ct_2", "wamid.first", 1_800_000_000);
    let Appended::Added {
        conversation_id,
        opened,
        ..
    } = history.append(&envelope, &resolved).await.unwrap()
    else {
        panic!("not added")
    };
    assert!(opened);
    pool.get()
        .await
        .unwrap()
        .execute(
            "UPDATE routing.conversations SET status = 'closed', closed_at = now() WHERE id = $1",
            &[&conversation_id.as_str()],
        )
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for index in 0..20 {
        let history = history.clone();
        tasks.push(tokio::spawn(async move {
            let (envelope, resolved) =
                inbound("ct_2", &format!("wamid.after-{index}"), 1_800_000_100 + index);
            history.append(&envelope, &resolved).await.unwrap()
        }));
    }
    let mut opened_new = 0;
    for task in tasks {
        if let Appended::Added { opened: true, .. } = task.await.unwrap() {
            opened_new += 1;
        }
    }
    assert_eq!(opened_new, 1, "exactly one of them opened the new conversation");
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM routing.conversations WHERE status = 'open'"
        )
        .await,
        1
    );
    assert_eq!(count(&pool, "SELECT count(*) FROM routing.messages").await, 21);
    // A replay of the first message does not touch or reopen anything.
    assert_eq!(
        history.append(&envelope, &resolved).await.unwrap(),
        Appended::Duplicate
    );
    assert_eq!(
        count(&pool, "SELECT count(*) FROM routing.conversations").await,
        2
    );
    // Erasure purges the contact's whole history.
    assert_eq!(
        history
            .purge(
                &WorkspaceId::parse(WORKSPACE).unwrap(),
                &ContactId::parse("ct_2").unwrap()
            )
            .await
            .unwrap(),
        2
    );
    for table in ["conversations", "messages", "event_log"] {
        assert_eq!(
            count(&pool, &format!("SELECT count(*) FROM routing.{table}")).await,
            0,
            "{table}"
        );
    }
}

/// The same event as `inbound`, with another kind (reaction, edit, delete, reply).
fn with_kind(contact: &str, event_id: &str, kind: Kind) -> (Envelope, ContactResolvedInbound) {
    let (mut envelope, mut resolved) = inbound(contact, event_id, 1_800_000_500);
    if let Some(event) = resolved.event.as_mut() {
        event.kind = Some(kind);
    }
    envelope.event_id = format!("evt_{event_id}");
    envelope.payload = Some(Payload::ContactInbound(resolved.clone()));
    (envelope, resolved)
}

fn text(body: &str) -> Vec<switchboard_proto::common::v1::ContentPart> {
    use switchboard_proto::common::v1::{ContentPart, TextPart, content_part::Part};
    vec![ContentPart {
        part: Some(Part::Text(TextPart {
            body: body.to_owned(),
            subject: String::new(),
        })),
    }]
}

#[tokio::test]
async fn reactions_edits_and_deletes_change_their_target_once_and_keep_revisions_and_replies_link() {
    let (_database, pool, history) = history().await;
    let (envelope, resolved) = inbound("ct_3", "wamid.original", 1_800_000_000);
    let Appended::Added { message_id, .. } = history.append(&envelope, &resolved).await.unwrap() else {
        panic!("not added")
    };
    // A reply links to the message it quotes.
    let (envelope, resolved) = with_kind(
        "ct_3",
        "wamid.reply",
        Kind::Message(InboundMessage {
            provider_message_id: "wamid.reply".to_owned(),
            reply_to_provider_message_id: "wamid.original".to_owned(),
            parts: text("as I said"),
            ..InboundMessage::default()
        }),
    );
    let Appended::Added {
        message_id: reply, ..
    } = history.append(&envelope, &resolved).await.unwrap()
    else {
        panic!("reply not added")
    };
    let linked: Option<String> = pool
        .get()
        .await
        .unwrap()
        .query_one(
            "SELECT reply_to_message_id FROM routing.messages WHERE id = $1",
            &[&reply.as_str()],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(linked.as_deref(), Some(message_id.as_str()));

    let react = |emoji: &str, removed: bool| {
        with_kind(
            "ct_3",
            &format!("react-{emoji}-{removed}"),
            Kind::Reaction(Reaction {
                target_provider_message_id: "wamid.original".to_owned(),
                emoji: emoji.to_owned(),
                removed,
            }),
        )
    };
    let (envelope, resolved) = react("👍", false);
    assert_eq!(
        history.append(&envelope, &resolved).await.unwrap(),
        Appended::Updated {
            message_id: message_id.clone()
        }
    );
    // A redelivered reaction changes nothing.
    assert_eq!(
        history.append(&envelope, &resolved).await.unwrap(),
        Appended::Duplicate
    );
    let emojis = || async {
        let reactions: serde_json::Value = pool
            .get()
            .await
            .unwrap()
            .query_one(
                "SELECT reactions FROM routing.messages WHERE id = $1",
                &[&message_id.as_str()],
            )
            .await
            .unwrap()
            .get(0);
        reactions.as_array().unwrap().len()
    };
    assert_eq!(emojis().await, 1);
    let (envelope, resolved) = react("", true);
    history.append(&envelope, &resolved).await.unwrap();
    assert_eq!(emojis().await, 0);

    let edit = with_kind(
        "ct_3",
        "edit-1",
        Kind::Edit(MessageEdit {
            target_provider_message_id: "wamid.original".to_owned(),
            parts: text("corrected"),
            provider_message_id: String::new(),
        }),
    );
    assert!(matches!(
        history.append(&edit.0, &edit.1).await.unwrap(),
        Appended::Updated { .. }
    ));
    assert_eq!(
        history.append(&edit.0, &edit.1).await.unwrap(),
        Appended::Duplicate
    );
    let delete = with_kind(
        "ct_3",
        "delete-1",
        Kind::Delete(MessageDelete {
            target_provider_message_id: "wamid.original".to_owned(),
        }),
    );
    assert!(matches!(
        history.append(&delete.0, &delete.1).await.unwrap(),
        Appended::Updated { .. }
    ));
    assert_eq!(
        history.append(&delete.0, &delete.1).await.unwrap(),
        Appended::Duplicate
    );
    // Two earlier versions kept: the original and the edit; the message is now empty.
    assert_eq!(
        count(&pool, "SELECT count(*) FROM routing.message_revisions").await,
        2
    );
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM routing.messages WHERE deleted_at IS NOT NULL AND edited_at IS NOT NULL"
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM routing.event_log WHERE event_type = 'message.updated'"
        )
        .await,
        4
    );
    // An update of a message routing never saw is ignored.
    let stray = with_kind(
        "ct_3",
        "react-stray",
        Kind::Reaction(Reaction {
            target_provider_message_id: "wamid.unknown".to_owned(),
            emoji: "🔥".to_owned(),
            removed: false,
        }),
    );
    assert_eq!(
        history.append(&stray.0, &stray.1).await.unwrap(),
        Appended::Ignored
    );
}

fn outbound(
    message_id: &str,
    author_kind: &str,
    author_id: &str,
) -> (Envelope, switchboard_proto::events::v1::OutboundMessage) {
    let outbound = switchboard_proto::events::v1::OutboundMessage {
        message_id: message_id.to_owned(),
        contact_id: "ct_4".to_owned(),
        channel_account_id: ACCOUNT.to_owned(),
        channel: Channel::Whatsapp as i32,
        author_kind: author_kind.to_owned(),
        author_id: author_id.to_owned(),
        parts: text("on it"),
        status: switchboard_proto::common::v1::DeliveryStatus::Queued as i32,
        ..Default::default()
    };
    let envelope = Envelope {
        event_id: format!("evt_{message_id}"),
        event_type: "outbound.message".to_owned(),
        workspace_id: WORKSPACE.to_owned(),
        partition_key: "ct_4".to_owned(),
        payload: Some(Payload::OutboundMessage(outbound.clone())),
        ..Envelope::default()
    };
    (envelope, outbound)
}

fn status(
    message_id: &str,
    status: switchboard_proto::common::v1::DeliveryStatus,
) -> (Envelope, switchboard_proto::events::v1::OutboundStatus) {
    let status = switchboard_proto::events::v1::OutboundStatus {
        message_id: message_id.to_owned(),
        contact_id: "ct_4".to_owned(),
        status: status as i32,
        provider_message_id: format!("wamid.out-{message_id}"),
        error: None,
    };
    let envelope = Envelope {
        event_id: format!("evt_status_{}_{}", message_id, status.status),
        event_type: "outbound.status".to_owned(),
        workspace_id: WORKSPACE.to_owned(),
        partition_key: "ct_4".to_owned(),
        payload: Some(Payload::OutboundStatus(status.clone())),
        ..Envelope::default()
    };
    (envelope, status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_agents_replying_at_once_to_an_unassigned_conversation_give_one_assignee_and_both_messages() {
    use switchboard_proto::common::v1::DeliveryStatus;

    let (_database, pool, history) = history().await;
    let (envelope, resolved) = inbound("ct_4", "wamid.question", 1_800_000_000);
    let Appended::Added { conversation_id, .. } = history.append(&envelope, &resolved).await.unwrap() else {
        panic!("not added")
    };
    let client = pool.get().await.unwrap();
    for agent in ["agent_ann", "agent_bob"] {
        client
            .execute(
                "INSERT INTO routing.agents (id, workspace_id, name, status) VALUES ($1, $2, $1, 'online')",
                &[&agent, &WORKSPACE],
            )
            .await
            .unwrap();
    }
    client
        .execute(
            "UPDATE routing.conversations SET controller = 'bot' WHERE id = $1",
            &[&conversation_id.as_str()],
        )
        .await
        .unwrap();
    let replies = [("msg_fromann", "agent_ann"), ("msg_frombob", "agent_bob")].map(|(message, agent)| {
        let history = history.clone();
        tokio::spawn(async move {
            let (envelope, outbound) = outbound(message, "agent", agent);
            history.record_outbound(&envelope, &outbound).await.unwrap()
        })
    });
    for reply in replies {
        assert!(matches!(reply.await.unwrap(), Appended::Added { .. }));
    }
    let row = client
        .query_one(
            "SELECT assignee_id, bot_paused_until > now() + interval '59 minutes',
                    (SELECT count(*) FROM routing.messages WHERE conversation_id = $1 AND direction = 'outbound'),
                    (SELECT open_count FROM routing.agents WHERE id = 'agent_ann')
                      + (SELECT open_count FROM routing.agents WHERE id = 'agent_bob')
             FROM routing.conversations WHERE id = $1",
            &[&conversation_id.as_str()],
        )
        .await
        .unwrap();
    let assignee: Option<String> = row.get(0);
    assert!(
        matches!(assignee.as_deref(), Some("agent_ann" | "agent_bob")),
        "{assignee:?}"
    );
    assert!(
        row.get::<_, bool>(1),
        "an agent's reply pauses the bot for the workspace's 60 minutes"
    );
    assert_eq!(row.get::<_, i64>(2), 2, "both replies kept");
    assert_eq!(row.get::<_, i32>(3), 1, "one conversation counted once");
    // A replayed reply is one message.
    let (envelope, replay) = outbound("msg_fromann", "agent", "agent_ann");
    assert_eq!(
        history.record_outbound(&envelope, &replay).await.unwrap(),
        Appended::Duplicate
    );

    // Statuses only move forward; failed is terminal.
    let steps = [
        (DeliveryStatus::Sent, true),
        (DeliveryStatus::Read, true),
        (DeliveryStatus::Delivered, false),
        (DeliveryStatus::Sent, false),
        (DeliveryStatus::Failed, true),
        (DeliveryStatus::Read, false),
    ];
    for (step, moves) in steps {
        let (envelope, receipt) = status("msg_fromann", step);
        let recorded = history.record_status(&envelope, &receipt).await.unwrap();
        assert_eq!(matches!(recorded, Appended::Updated { .. }), moves, "{step:?}");
    }
    let final_status: String = client
        .query_one(
            "SELECT status FROM routing.messages WHERE id = 'msg_fromann'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(final_status, "failed");
    // A receipt for a message routing never saw changes nothing.
    let (envelope, stray) = status("msg_unknown", DeliveryStatus::Read);
    assert_eq!(
        history.record_status(&envelope, &stray).await.unwrap(),
        Appended::Duplicate
    );
}
