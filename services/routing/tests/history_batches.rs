//! A partition's events handled as one batch against real PostgreSQL: inbound messages give the
//! same history, event log and outbox as one by one, replays and copies inside the batch kept
//! once; a batch holding a reaction is handled one by one; outbound statuses apply in runs, in
//! queue order, between outbound messages.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use prost::Message as _;
use switchboard_messaging::lapin::types::FieldTable;
use switchboard_messaging::{Batched, Handler, Incoming};
use switchboard_proto::common::v1::{Channel, DeliveryStatus, SenderIdentity};
use switchboard_proto::events::v1::{
    ContactResolvedInbound, Envelope, InboundEvent, InboundMessage, OutboundMessage, OutboundStatus,
    Reaction, envelope::Payload, inbound_event::Kind,
};
use switchboard_routing::{Dispatcher, History};
use switchboard_testkit::TestDatabase;

const WORKSPACE: &str = "ws_batches";
const ACCOUNT: &str = "chacc_wa";

async fn history() -> (TestDatabase, switchboard_postgres::Pool, History) {
    let database = TestDatabase::create().await.unwrap();
    let pool = switchboard_postgres::connect(&database.config()).await.unwrap();
    switchboard_postgres::migrate(&pool, &switchboard_routing::MIGRATIONS)
        .await
        .unwrap();
    let dispatcher = Dispatcher::new(
        pool.clone(),
        switchboard_messaging::Partitions::uniform(1),
        Arc::new(tokio::sync::Notify::new()),
    );
    let history = History::new(pool.clone(), dispatcher).with_batch_size(64);
    (database, pool, history)
}

fn envelope(contact: &str, kind: Kind, event_id: &str, seconds: i64) -> Envelope {
    let resolved = ContactResolvedInbound {
        event: Some(InboundEvent {
            channel: Channel::Whatsapp as i32,
            channel_account_id: ACCOUNT.to_owned(),
            provider_timestamp: Some(prost_types::Timestamp { seconds, nanos: 0 }),
            sender: Some(SenderIdentity {
                channel_user_id: contact.to_owned(),
                ..SenderIdentity::default()
            }),
            kind: Some(kind),
            ..InboundEvent::default()
        }),
        contact_id: contact.to_owned(),
        contact: None,
        new_contact: false,
    };
    Envelope {
        event_id: format!("evt_{event_id}"),
        event_type: "contact.inbound.whatsapp.message".to_owned(),
        workspace_id: WORKSPACE.to_owned(),
        partition_key: contact.to_owned(),
        payload: Some(Payload::ContactInbound(resolved)),
        ..Envelope::default()
    }
}

fn message(contact: &str, provider_message_id: &str, seconds: i64) -> Envelope {
    let kind = Kind::Message(InboundMessage {
        provider_message_id: provider_message_id.to_owned(),
        ..InboundMessage::default()
    });
    envelope(contact, kind, provider_message_id, seconds)
}

fn batch_of(envelopes: &[Envelope]) -> Vec<Batched> {
    envelopes
        .iter()
        .map(|envelope| Batched {
            message: Incoming {
                queue: "routing.contact.p00".to_owned(),
                routing_key: format!("{}.p00", envelope.event_type),
                payload: envelope.encode_to_vec(),
                message_id: Some(envelope.event_id.clone()),
                message_type: Some(envelope.event_type.clone()),
                headers: FieldTable::default(),
                redelivered: false,
            },
            span: tracing::Span::none(),
        })
        .collect()
}

async fn rows(pool: &switchboard_postgres::Pool, sql: &str) -> Vec<String> {
    pool.get()
        .await
        .unwrap()
        .query(sql, &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect()
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

/// Each conversation's `message.added` entries, as provider message ids in log order.
const LOGGED_ORDER: &str =
    "SELECT c.contact_id || ':' || string_agg(m.provider_message_id, ',' ORDER BY e.tx, e.seq)
     FROM routing.event_log e
     JOIN routing.messages m ON m.id = e.payload->>'message_id'
     JOIN routing.conversations c ON c.id = e.conversation_id
     WHERE e.event_type = 'message.added'
     GROUP BY c.contact_id ORDER BY c.contact_id";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_appends_as_one_by_one_would_and_keeps_each_copy_once() {
    let (_database, pool, history) = history().await;
    // Ten contacts, three messages each, interleaved as a partition delivers them.
    let mut envelopes = Vec::new();
    for round in 0..3 {
        for contact in 0..10 {
            envelopes.push(message(
                &format!("ct_{contact}"),
                &format!("wamid.{contact}.{round}"),
                1_800_000_000 + round,
            ));
        }
    }
    // A copy of the first message inside the same batch.
    envelopes.push(envelopes[0].clone());
    history.handle_batch(&batch_of(&envelopes)).await.unwrap();
    assert_eq!(count(&pool, "SELECT count(*) FROM routing.messages").await, 30);
    assert_eq!(
        count(&pool, "SELECT count(*) FROM routing.conversations").await,
        10
    );
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM routing.event_log WHERE event_type = 'conversation.opened'"
        )
        .await,
        10
    );
    // Each contact's messages in the log in queue order, once each, and each on the bus
    // through the outbox.
    let expected: Vec<String> = (0..10)
        .map(|contact| format!("ct_{contact}:wamid.{contact}.0,wamid.{contact}.1,wamid.{contact}.2"))
        .collect();
    assert_eq!(rows(&pool, LOGGED_ORDER).await, expected);
    assert_eq!(
        count(&pool, "SELECT count(*) FROM routing.event_log").await,
        count(&pool, "SELECT count(*) FROM routing.outbox").await
    );

    // A replayed batch (the broker redelivers it) and a new message behind the replays: only
    // the new one is added, the conversations are not touched again.
    let revisions = count(&pool, "SELECT sum(revision)::bigint FROM routing.conversations").await;
    let mut replay = envelopes[..5].to_vec();
    replay.push(message("ct_0", "wamid.0.3", 1_800_000_003));
    history.handle_batch(&batch_of(&replay)).await.unwrap();
    assert_eq!(count(&pool, "SELECT count(*) FROM routing.messages").await, 31);
    assert_eq!(
        count(&pool, "SELECT sum(revision)::bigint FROM routing.conversations").await,
        revisions + 1
    );
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM routing.event_log WHERE event_type = 'message.added'"
        )
        .await,
        31
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_with_a_reaction_is_handled_one_by_one_in_order() {
    let (_database, pool, history) = history().await;
    let reaction = Kind::Reaction(Reaction {
        target_provider_message_id: "wamid.r.0".to_owned(),
        emoji: "👍".to_owned(),
        ..Reaction::default()
    });
    let envelopes = vec![
        message("ct_r", "wamid.r.0", 1_800_000_000),
        envelope("ct_r", reaction, "wamid.r.reaction", 1_800_000_001),
        message("ct_r", "wamid.r.1", 1_800_000_002),
    ];
    history.handle_batch(&batch_of(&envelopes)).await.unwrap();
    assert_eq!(count(&pool, "SELECT count(*) FROM routing.messages").await, 2);
    assert_eq!(
        rows(
            &pool,
            "SELECT event_type FROM routing.event_log WHERE event_type <> 'conversation.opened' ORDER BY tx, seq"
        )
        .await,
        ["message.added", "message.updated", "message.added"]
    );
}

fn outbound_message(contact: &str, message_id: &str) -> Envelope {
    let outbound = OutboundMessage {
        message_id: message_id.to_owned(),
        contact_id: contact.to_owned(),
        channel_account_id: ACCOUNT.to_owned(),
        channel: Channel::Whatsapp as i32,
        author_kind: "api".to_owned(),
        status: DeliveryStatus::Queued as i32,
        ..OutboundMessage::default()
    };
    Envelope {
        event_id: format!("evt_{message_id}"),
        event_type: "outbound.message".to_owned(),
        workspace_id: WORKSPACE.to_owned(),
        partition_key: contact.to_owned(),
        payload: Some(Payload::OutboundMessage(outbound)),
        ..Envelope::default()
    }
}

fn outbound_status(contact: &str, message_id: &str, status: DeliveryStatus) -> Envelope {
    let status = OutboundStatus {
        message_id: message_id.to_owned(),
        contact_id: contact.to_owned(),
        status: status as i32,
        provider_message_id: format!("wamid.out-{message_id}"),
        error: None,
    };
    Envelope {
        event_id: format!("evt_status_{message_id}_{}", status.status),
        event_type: "outbound.status".to_owned(),
        workspace_id: WORKSPACE.to_owned(),
        partition_key: contact.to_owned(),
        payload: Some(Payload::OutboundStatus(status)),
        ..Envelope::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_of_statuses_apply_together_in_queue_order_between_outbound_messages() {
    use DeliveryStatus::{Delivered, Read, Sent};
    let (_database, pool, history) = history().await;
    let inbound: Vec<Envelope> = (0..3)
        .map(|contact| {
            message(
                &format!("ct_s{contact}"),
                &format!("wamid.s{contact}"),
                1_800_000_000,
            )
        })
        .collect();
    history.handle_batch(&batch_of(&inbound)).await.unwrap();
    // As a partition delivers them: a reply, its statuses, a second reply in the middle of a
    // run, a status that comes late (delivered after read), one repeated, one for an unknown
    // message.
    let events = vec![
        outbound_message("ct_s0", "msg_s0"),
        outbound_message("ct_s1", "msg_s1"),
        outbound_status("ct_s0", "msg_s0", Sent),
        outbound_status("ct_s1", "msg_s1", Sent),
        outbound_status("ct_s0", "msg_s0", Read),
        outbound_message("ct_s2", "msg_s2"),
        outbound_status("ct_s0", "msg_s0", Delivered),
        outbound_status("ct_s1", "msg_s1", Delivered),
        outbound_status("ct_s1", "msg_s1", Delivered),
        outbound_status("ct_s2", "msg_s2", Sent),
        outbound_status("ct_s9", "msg_unknown", Read),
    ];
    history.handle_batch(&batch_of(&events)).await.unwrap();
    assert_eq!(
        rows(
            &pool,
            "SELECT id || ':' || status FROM routing.messages WHERE direction = 'outbound' ORDER BY id"
        )
        .await,
        ["msg_s0:read", "msg_s1:delivered", "msg_s2:sent"]
    );
    // Each step forward logged once, in queue order; the late and repeated ones not at all.
    assert_eq!(
        rows(
            &pool,
            "SELECT (payload->>'message_id') || ':' || (payload->>'status') FROM routing.event_log
             WHERE event_type = 'message.status_changed' ORDER BY tx, seq"
        )
        .await,
        [
            "msg_s0:sent",
            "msg_s1:sent",
            "msg_s0:read",
            "msg_s1:delivered",
            "msg_s2:sent"
        ]
    );
    // Two runs, so two transactions: before and after the second reply.
    assert_eq!(
        count(
            &pool,
            "SELECT count(DISTINCT tx) FROM routing.event_log WHERE event_type = 'message.status_changed'"
        )
        .await,
        2
    );
    // The second reply was recorded between the runs: its status found it.
    assert_eq!(
        rows(
            &pool,
            "SELECT event_type FROM routing.event_log WHERE conversation_id =
                 (SELECT conversation_id FROM routing.messages WHERE id = 'msg_s2')
               AND event_type LIKE 'message.%' ORDER BY tx, seq"
        )
        .await,
        ["message.added", "message.added", "message.status_changed"]
    );
}
