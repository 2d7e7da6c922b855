//! Agents, teams and automatic assignment through two routing replicas, and the resumable
//! event stream.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use futures_util::StreamExt;
use switchboard_e2e::webhooks::{WHATSAPP, WebhookSwitchboard, whatsapp_text};
use switchboard_e2e::{Switchboard, authorized};
use switchboard_proto::routing::v1 as routing;
use switchboard_proto::routing::v1::assignment_service_client::AssignmentServiceClient;
use switchboard_proto::routing::v1::routing_service_client::RoutingServiceClient;
use switchboard_proto::tenancy::v1 as tenancy;
use switchboard_testkit::TestDatabase;
use tonic::Code;
use tonic::transport::Channel;

const WORKSPACE: &str = "ws_e2e-hooks";

/// Posts one WhatsApp message from each of `senders`, 32 at a time.
async fn post_messages(hooks: &WebhookSwitchboard, prefix: &str, senders: std::ops::Range<u32>) {
    futures_util::stream::iter(senders)
        .map(|index| async move {
            let body = whatsapp_text(
                &format!("wamid.{prefix}-{index}"),
                &format!("1650{index:07}"),
                "hello",
            );
            let status = hooks.post_whatsapp(&body, None).await.status();
            assert_eq!(status, 200);
        })
        .buffer_unordered(32)
        .collect::<Vec<()>>()
        .await;
}

async fn create_agents(
    api: &mut AssignmentServiceClient<Channel>,
    admin: &str,
    count: usize,
    max_open: i32,
) -> Vec<String> {
    let mut ids = Vec::with_capacity(count);
    for index in 0..count {
        let agent = api
            .create_agent(authorized(
                routing::CreateAgentRequest {
                    name: format!("Agent {index}"),
                    email: format!("agent{index}@acme.test"),
                    max_open,
                    status: routing::AgentStatus::Online as i32,
                },
                admin,
            ))
            .await
            .unwrap()
            .into_inner()
            .agent
            .unwrap();
        ids.push(agent.id);
    }
    ids
}

/// Logs the routing hand-out sweep at debug (a line per finished round), besides the usual info.
const SWEEP_LOGS: (&str, &str) = ("RUST_LOG", "info,switchboard_routing::assignment=debug");

/// Sweeps `switchboard` has finished so far (needs [`SWEEP_LOGS`]), whatever they handed out.
fn sweeps_finished(switchboard: &Switchboard) -> usize {
    switchboard
        .logs()
        .iter()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|line| {
            line["message"] == "assignment sweep found nothing to hand out"
                || line["message"] == "sweep handed out waiting conversations"
        })
        .count()
}

/// Open conversations per assignee, read from the database (not from the counters).
async fn open_per_agent(client: &tokio_postgres::Client) -> BTreeMap<String, i64> {
    client
        .query(
            "SELECT assignee_id, count(*) FROM routing.conversations
             WHERE status = 'open' AND assignee_id IS NOT NULL GROUP BY assignee_id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect()
}

#[tokio::test]
async fn a_thousand_conversations_are_handed_out_fairly_by_two_replicas_and_wait_in_order_when_nobody_is_free()
 {
    let hooks = WebhookSwitchboard::start_targets("all", &[SWEEP_LOGS]).await;
    let second = hooks.start_component("routing").await;
    let db = hooks.database.connect().await;
    let admin = crate::contacts::key(&hooks, WORKSPACE, tenancy::ApiKeyRole::WorkspaceAdmin).await;
    let member = crate::contacts::key(&hooks, WORKSPACE, tenancy::ApiKeyRole::WorkspaceMember).await;
    let mut first_api = AssignmentServiceClient::new(hooks.switchboard.channel().await);
    let mut second_api = AssignmentServiceClient::new(second.channel().await);

    let agents = create_agents(&mut first_api, &admin, 10, 150).await;
    // A manual team first: everything waits in its queue.
    let team = first_api
        .create_team(authorized(
            routing::CreateTeamRequest {
                name: "Support".to_owned(),
                mode: routing::AssignmentMode::Manual as i32,
                agent_ids: agents.clone(),
                channel_account_ids: vec![WHATSAPP.0.to_owned()],
            },
            &admin,
        ))
        .await
        .unwrap()
        .into_inner()
        .team
        .unwrap();
    let refused = first_api
        .create_team(authorized(
            routing::CreateTeamRequest {
                name: "Other".to_owned(),
                mode: routing::AssignmentMode::RoundRobin as i32,
                agent_ids: vec![],
                channel_account_ids: vec![WHATSAPP.0.to_owned()],
            },
            &admin,
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    let refused = second_api
        .create_agent(authorized(
            routing::CreateAgentRequest {
                name: "Member-made".to_owned(),
                ..Default::default()
            },
            &member,
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);

    post_messages(&hooks, "fair", 0..1_000).await;
    switchboard_testkit::eventually(Duration::from_secs(180), "1,000 conversations queued", || async {
        (TestDatabase::count(
            &db,
            "SELECT count(*) FROM routing.conversations WHERE queued_at IS NOT NULL",
        )
        .await
            == 1_000)
            .then_some(())
    })
    .await;
    assert_eq!(
        TestDatabase::count(
            &db,
            "SELECT count(*) FROM routing.conversations WHERE assignee_id IS NOT NULL"
        )
        .await,
        0
    );

    // Switch to round-robin on one replica while the other drains too (agents report online
    // again there): both hand out the same queue at once.
    let switch = second_api.update_team(authorized(
        routing::UpdateTeamRequest {
            id: team.id.clone(),
            name: team.name.clone(),
            mode: routing::AssignmentMode::RoundRobin as i32,
            agent_ids: agents.clone(),
            channel_account_ids: team.channel_account_ids.clone(),
        },
        &admin,
    ));
    let nudges = futures_util::future::join_all(agents.iter().map(|agent| {
        let mut api = first_api.clone();
        let member = member.clone();
        async move {
            for _ in 0..5 {
                api.set_agent_status(authorized(
                    routing::SetAgentStatusRequest {
                        id: agent.clone(),
                        status: routing::AgentStatus::Online as i32,
                    },
                    &member,
                ))
                .await
                .unwrap();
            }
        }
    }));
    let (switched, _) = tokio::join!(switch, nudges);
    switched.unwrap();
    switchboard_testkit::eventually(Duration::from_secs(180), "the queue handed out", || async {
        (TestDatabase::count(
            &db,
            "SELECT count(*) FROM routing.conversations WHERE queued_at IS NOT NULL",
        )
        .await
            == 0)
            .then_some(())
    })
    .await;
    let spread = open_per_agent(&db).await;
    assert_eq!(spread.len(), 10, "every agent got conversations: {spread:?}");
    let (min, max) = (spread.values().min().unwrap(), spread.values().max().unwrap());
    assert!(max - min <= 1, "round-robin spread {min}..{max}: {spread:?}");
    assert_eq!(spread.values().sum::<i64>(), 1_000);
    // The counters agree with the rows.
    for agent in &agents {
        let stored = second_api
            .get_agent(authorized(
                routing::GetAgentRequest { id: agent.clone() },
                &member,
            ))
            .await
            .unwrap()
            .into_inner()
            .agent
            .unwrap();
        assert_eq!(i64::from(stored.open_count), spread[agent]);
        assert!(stored.open_count <= stored.max_open);
    }
    // Each hand-out was announced on the bus (contacts keeps the contact's assignee).
    switchboard_testkit::eventually(Duration::from_secs(120), "the outbox relayed", || async {
        (TestDatabase::count(&db, "SELECT count(*) FROM routing.outbox").await == 0).then_some(())
    })
    .await;

    // Everybody full: new conversations wait, oldest first.
    for agent in &agents {
        first_api
            .update_agent(authorized(
                routing::UpdateAgentRequest {
                    id: agent.clone(),
                    name: "Agent".to_owned(),
                    email: String::new(),
                    max_open: i32::try_from(spread[agent]).unwrap(),
                },
                &admin,
            ))
            .await
            .unwrap();
    }
    for index in 0..30 {
        post_messages(&hooks, "wait", 1_000 + index..1_001 + index).await;
    }
    switchboard_testkit::eventually(Duration::from_secs(120), "30 conversations waiting", || async {
        (TestDatabase::count(
            &db,
            "SELECT count(*) FROM routing.conversations WHERE queued_at IS NOT NULL",
        )
        .await
            == 30)
            .then_some(())
    })
    .await;
    // Two more finished sweeps on each replica (the first may have begun before the last
    // conversation queued): still nobody above capacity, nothing handed out.
    let swept = [sweeps_finished(&hooks.switchboard), sweeps_finished(&second)];
    switchboard_testkit::eventually(
        Duration::from_secs(30),
        "two more sweeps on each replica",
        || async {
            (sweeps_finished(&hooks.switchboard) >= swept[0] + 2 && sweeps_finished(&second) >= swept[1] + 2)
                .then_some(())
        },
    )
    .await;
    assert_eq!(
        TestDatabase::count(
            &db,
            "SELECT count(*) FROM routing.conversations WHERE queued_at IS NOT NULL"
        )
        .await,
        30
    );
    let oldest: Vec<String> = db
        .query(
            "SELECT id FROM routing.conversations WHERE queued_at IS NOT NULL ORDER BY queued_at, id LIMIT 3",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();

    // Closing three of one agent's conversations (on the other replica) frees three places:
    // the three oldest waiting conversations go to that agent.
    let lucky = agents[3].clone();
    let mine: Vec<String> = db
        .query(
            "SELECT id FROM routing.conversations WHERE assignee_id = $1 AND status = 'open' LIMIT 3",
            &[&lucky],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    let mut conversations = RoutingServiceClient::new(second.channel().await);
    for id in &mine {
        conversations
            .close_conversation(authorized(
                routing::CloseConversationRequest {
                    id: id.clone(),
                    closing_note: None,
                },
                &member,
            ))
            .await
            .unwrap();
    }
    let handed: HashSet<String> = db
        .query(
            "SELECT id FROM routing.conversations WHERE assignee_id = $1 AND status = 'open' AND id = ANY($2)",
            &[&lucky, &oldest],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(
        handed.len(),
        3,
        "the three oldest went to the freed agent: {handed:?}"
    );
    // Closed conversations stay assigned (unassign-on-close is off).
    let closed = conversations
        .get_conversation(authorized(
            routing::GetConversationRequest { id: mine[0].clone() },
            &member,
        ))
        .await
        .unwrap()
        .into_inner()
        .conversation
        .unwrap();
    assert_eq!(closed.assignee_id, lucky);

    // An agent coming online takes from the queue at once; going offline takes nothing.
    let newcomer = create_agents(&mut first_api, &admin, 1, 5).await.remove(0);
    second_api
        .set_agent_status(authorized(
            routing::SetAgentStatusRequest {
                id: newcomer.clone(),
                status: routing::AgentStatus::Offline as i32,
            },
            &member,
        ))
        .await
        .unwrap();
    let mut members = agents.clone();
    members.push(newcomer.clone());
    first_api
        .update_team(authorized(
            routing::UpdateTeamRequest {
                id: team.id.clone(),
                name: team.name.clone(),
                mode: routing::AssignmentMode::LeastOpen as i32,
                agent_ids: members,
                channel_account_ids: team.channel_account_ids.clone(),
            },
            &admin,
        ))
        .await
        .unwrap();
    assert_eq!(open_per_agent(&db).await.get(&newcomer), None);
    let online = second_api
        .set_agent_status(authorized(
            routing::SetAgentStatusRequest {
                id: newcomer.clone(),
                status: routing::AgentStatus::Online as i32,
            },
            &member,
        ))
        .await
        .unwrap()
        .into_inner()
        .agent
        .unwrap();
    assert_eq!(online.open_count, 5, "filled to capacity at once");
    assert_eq!(
        TestDatabase::count(
            &db,
            "SELECT count(*) FROM routing.conversations WHERE queued_at IS NOT NULL"
        )
        .await,
        30 - 3 - 5
    );
    // Nobody waits while an eligible agent is idle; nobody is above capacity.
    let over: i64 = TestDatabase::count(
        &db,
        "SELECT count(*) FROM routing.agents WHERE open_count > max_open
            OR open_count <> (SELECT count(*) FROM routing.conversations c
                              WHERE c.assignee_id = agents.id AND c.status = 'open')",
    )
    .await;
    assert_eq!(over, 0);
    let idle: i64 = TestDatabase::count(
        &db,
        "SELECT count(*) FROM routing.agents WHERE status = 'online' AND open_count < max_open",
    )
    .await;
    assert_eq!(idle, 0);

    // Deleting an agent with open conversations is refused.
    let refused = first_api
        .delete_agent(authorized(
            routing::DeleteAgentRequest { id: lucky.clone() },
            &admin,
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    drop(second);
    hooks.cleanup().await;
}

/// A cursor as the (transaction, number) pair it encodes, to compare order.
fn position(cursor: &str) -> (i64, i64) {
    let (tx, seq) = cursor.split_once('.').expect("a cursor is <tx>.<seq>");
    (tx.parse().unwrap(), seq.parse().unwrap())
}

#[tokio::test]
async fn watch_events_streams_changes_from_any_replica_and_resumes_after_a_cursor_without_gaps() {
    let hooks = WebhookSwitchboard::start_targets("all", &[]).await;
    let second = hooks.start_component("routing").await;
    let member = crate::contacts::key(&hooks, WORKSPACE, tenancy::ApiKeyRole::WorkspaceMember).await;
    let mut watcher = RoutingServiceClient::new(second.channel().await);

    // A long transaction in another database of the same server (another test, another
    // service) must not hold the stream back.
    let server = hooks.database.url.rsplit_once('/').unwrap().0.to_owned();
    let (elsewhere, connection) =
        tokio_postgres::connect(&format!("{server}/postgres"), tokio_postgres::NoTls)
            .await
            .unwrap();
    tokio::spawn(connection);
    elsewhere
        .batch_execute("BEGIN; SELECT pg_current_xact_id();")
        .await
        .unwrap();
    // Every logged change is on the bus too, for any service that binds a queue.
    let subscriber = hooks.subscribe("routing.#").await;
    // Watch "from now" on the second replica; the first replica's consumer makes the changes.
    let mut stream = watcher
        .watch_events(authorized(routing::WatchEventsRequest::default(), &member))
        .await
        .unwrap()
        .into_inner();
    post_messages(&hooks, "watch", 0..3).await;
    let mut seen = Vec::new();
    while seen.len() < 6 {
        let event = tokio::time::timeout(Duration::from_secs(20), stream.next())
            .await
            .expect("an event within 20 s")
            .unwrap()
            .unwrap();
        seen.push(event);
    }
    let types: Vec<&str> = seen.iter().map(|event| event.event_type.as_str()).collect();
    assert_eq!(
        types
            .iter()
            .filter(|kind| **kind == "conversation.opened")
            .count(),
        3,
        "{types:?}"
    );
    assert_eq!(types.iter().filter(|kind| **kind == "message.added").count(), 3);
    let cursors: Vec<(i64, i64)> = seen.iter().map(|event| position(&event.cursor)).collect();
    assert!(cursors.windows(2).all(|pair| pair[0] < pair[1]), "{cursors:?}");
    elsewhere.batch_execute("ROLLBACK").await.unwrap();
    let payload: serde_json::Value = serde_json::from_str(&seen[1].payload_json).unwrap();
    assert!(payload.is_object());
    drop(stream);
    let published = hooks.read_queue(&subscriber, 6, Duration::from_secs(20)).await;
    let mut published_cursors: Vec<(i64, i64)> = published
        .iter()
        .map(|event| match &event.envelope.payload {
            Some(switchboard_proto::events::v1::envelope::Payload::RoutingEvent(logged)) => {
                assert_eq!(event.message_type, format!("routing.{}", logged.event_type));
                position(&logged.cursor)
            }
            other => panic!("not a routing event: {other:?}"),
        })
        .collect();
    published_cursors.sort_unstable();
    assert_eq!(published_cursors, cursors);

    // More changes while nobody watches; resume after the third event: the rest, once each.
    post_messages(&hooks, "watch", 3..5).await;
    let mut resumed = watcher
        .watch_events(authorized(
            routing::WatchEventsRequest {
                from_cursor: seen[2].cursor.clone(),
                conversation_id: String::new(),
            },
            &member,
        ))
        .await
        .unwrap()
        .into_inner();
    let mut after = Vec::new();
    while after.len() < 3 + 4 {
        let event = tokio::time::timeout(Duration::from_secs(20), resumed.next())
            .await
            .expect("an event within 20 s")
            .unwrap()
            .unwrap();
        after.push(position(&event.cursor));
    }
    // The three not yet seen, then the four new ones: in order, each once.
    assert_eq!(after[..3], cursors[3..]);
    assert!(after.windows(2).all(|pair| pair[0] < pair[1]), "{after:?}");
    // Nothing more arrives.
    assert!(
        tokio::time::timeout(Duration::from_millis(500), resumed.next())
            .await
            .is_err()
    );

    // Bad cursors are refused with a reason.
    for (cursor, code) in [
        ("banana", Code::InvalidArgument),
        ("999999", Code::InvalidArgument),
        ("999999999999.1", Code::InvalidArgument),
    ] {
        let error = watcher
            .watch_events(authorized(
                routing::WatchEventsRequest {
                    from_cursor: cursor.to_owned(),
                    conversation_id: String::new(),
                },
                &member,
            ))
            .await
            .unwrap_err();
        assert_eq!(error.code(), code, "{cursor}");
    }
    // Another workspace sees none of it.
    let other = crate::contacts::key(&hooks, "ws_e2e-other", tenancy::ApiKeyRole::WorkspaceMember).await;
    let mut foreign = watcher
        .watch_events(authorized(
            routing::WatchEventsRequest {
                from_cursor: "0".to_owned(),
                conversation_id: String::new(),
            },
            &other,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(
        tokio::time::timeout(Duration::from_millis(500), foreign.next())
            .await
            .is_err()
    );
    drop(second);
    hooks.cleanup().await;
}

#[tokio::test]
async fn an_agents_reply_from_delivery_joins_the_history_claims_the_conversation_and_its_status_moves_forward()
 {
    use switchboard_proto::common::v1::{Channel as ChannelKind, DeliveryStatus};
    use switchboard_proto::events::v1::{Envelope, OutboundMessage, OutboundStatus, envelope::Payload};

    let hooks = WebhookSwitchboard::start_targets("all", &[]).await;
    let admin = crate::contacts::key(&hooks, WORKSPACE, tenancy::ApiKeyRole::WorkspaceAdmin).await;
    let mut agents = AssignmentServiceClient::new(hooks.switchboard.channel().await);
    let mut conversations = RoutingServiceClient::new(hooks.switchboard.channel().await);
    let agent = create_agents(&mut agents, &admin, 1, 10).await.remove(0);
    post_messages(&hooks, "reply", 0..1).await;
    let conversation =
        switchboard_testkit::eventually(Duration::from_secs(20), "the conversation", || async {
            conversations
                .clone()
                .list_conversations(authorized(routing::ListConversationsRequest::default(), &admin))
                .await
                .unwrap()
                .into_inner()
                .conversations
                .into_iter()
                .next()
        })
        .await;
    assert!(conversation.assignee_id.is_empty());
    let envelope = |event_type: &str, payload: Payload| Envelope {
        event_id: format!("evt_{}", switchboard_testkit::unique_token()),
        event_type: event_type.to_owned(),
        workspace_id: WORKSPACE.to_owned(),
        partition_key: conversation.contact_id.clone(),
        payload: Some(payload),
        ..Envelope::default()
    };
    hooks
        .publish(&envelope(
            "outbound.message",
            Payload::OutboundMessage(OutboundMessage {
                message_id: "msg_agentreply1".to_owned(),
                contact_id: conversation.contact_id.clone(),
                channel_account_id: conversation.channel_account_id.clone(),
                channel: ChannelKind::Whatsapp as i32,
                author_kind: "agent".to_owned(),
                author_id: agent.clone(),
                status: DeliveryStatus::Queued as i32,
                ..Default::default()
            }),
        ))
        .await;
    for step in [DeliveryStatus::Delivered, DeliveryStatus::Sent] {
        hooks
            .publish(&envelope(
                "outbound.status",
                Payload::OutboundStatus(OutboundStatus {
                    message_id: "msg_agentreply1".to_owned(),
                    contact_id: conversation.contact_id.clone(),
                    status: step as i32,
                    provider_message_id: "wamid.sent-1".to_owned(),
                    error: None,
                }),
            ))
            .await;
    }
    let reply =
        switchboard_testkit::eventually(Duration::from_secs(20), "the reply in the history", || async {
            let messages = conversations
                .clone()
                .list_messages(authorized(
                    routing::ListMessagesRequest {
                        conversation_id: conversation.id.clone(),
                        page: None,
                    },
                    &admin,
                ))
                .await
                .unwrap()
                .into_inner()
                .messages;
            messages.into_iter().find(|message| {
                message.id == "msg_agentreply1" && message.status == DeliveryStatus::Delivered as i32
            })
        })
        .await;
    assert!(!reply.inbound);
    assert_eq!(reply.author_kind, routing::AuthorKind::Agent as i32);
    assert_eq!(reply.author_id, agent);
    assert_eq!(reply.provider_message_id, "wamid.sent-1");
    // A sentinel behind the late `sent` receipt in the same (single, in-order) queue: an API
    // message, which claims nothing. Once it is in the history, the receipt was handled.
    hooks
        .publish(&envelope(
            "outbound.message",
            Payload::OutboundMessage(OutboundMessage {
                message_id: "msg_sentinel1".to_owned(),
                contact_id: conversation.contact_id.clone(),
                channel_account_id: conversation.channel_account_id.clone(),
                channel: ChannelKind::Whatsapp as i32,
                author_kind: "api".to_owned(),
                status: DeliveryStatus::Queued as i32,
                ..Default::default()
            }),
        ))
        .await;
    let messages =
        switchboard_testkit::eventually(Duration::from_secs(20), "the sentinel in the history", || async {
            let messages = conversations
                .clone()
                .list_messages(authorized(
                    routing::ListMessagesRequest {
                        conversation_id: conversation.id.clone(),
                        page: None,
                    },
                    &admin,
                ))
                .await
                .unwrap()
                .into_inner()
                .messages;
            messages
                .iter()
                .any(|message| message.id == "msg_sentinel1")
                .then_some(messages)
        })
        .await;
    // The late `sent` receipt did not move the reply back; the reply claimed the conversation.
    let reply = messages
        .iter()
        .find(|message| message.id == "msg_agentreply1")
        .unwrap();
    assert_eq!(reply.status, DeliveryStatus::Delivered as i32);
    let claimed = conversations
        .get_conversation(authorized(
            routing::GetConversationRequest {
                id: conversation.id.clone(),
            },
            &admin,
        ))
        .await
        .unwrap()
        .into_inner()
        .conversation
        .unwrap();
    assert_eq!(claimed.assignee_id, agent);
    hooks.cleanup().await;
}

#[tokio::test]
async fn contacts_stay_with_their_agent_after_close_unless_the_workspace_unassigns_and_least_open_picks_the_freest()
 {
    let hooks = WebhookSwitchboard::start_targets("all", &[]).await;
    let db = hooks.database.connect().await;
    let admin = crate::contacts::key(&hooks, WORKSPACE, tenancy::ApiKeyRole::WorkspaceAdmin).await;
    let mut agents = AssignmentServiceClient::new(hooks.switchboard.channel().await);
    let mut conversations = RoutingServiceClient::new(hooks.switchboard.channel().await);
    let ids = create_agents(&mut agents, &admin, 2, 10).await;
    let (busy, free) = (ids[0].clone(), ids[1].clone());
    agents
        .create_team(authorized(
            routing::CreateTeamRequest {
                name: "Least open".to_owned(),
                mode: routing::AssignmentMode::LeastOpen as i32,
                agent_ids: ids.clone(),
                channel_account_ids: vec![WHATSAPP.0.to_owned()],
            },
            &admin,
        ))
        .await
        .unwrap();
    // `busy` already has two conversations (assigned by hand); `free` none.
    post_messages(&hooks, "least", 0..2).await;
    let opened = |expected: i64| {
        let db = &db;
        async move {
            switchboard_testkit::eventually(Duration::from_secs(20), "conversations", || async {
                (TestDatabase::count(
                    db,
                    "SELECT count(*) FROM routing.conversations WHERE status = 'open'",
                )
                .await
                    == expected)
                    .then_some(())
            })
            .await;
        }
    };
    opened(2).await;
    let first_two: Vec<String> = db
        .query("SELECT id FROM routing.conversations", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    for id in &first_two {
        agents
            .assign_conversation(authorized(
                routing::AssignConversationRequest {
                    conversation_id: id.clone(),
                    agent_id: busy.clone(),
                },
                &admin,
            ))
            .await
            .unwrap();
    }
    // Least-open: the next one goes to the agent with fewer open conversations.
    post_messages(&hooks, "least", 2..3).await;
    opened(3).await;
    let third_assignee = switchboard_testkit::eventually(Duration::from_secs(10), "the third assigned", || async {
        db.query_opt(
            "SELECT assignee_id FROM routing.conversations WHERE NOT (id = ANY($1)) AND assignee_id IS NOT NULL",
            &[&first_two],
        )
        .await
        .unwrap()
        .map(|row| row.get::<_, String>(0))
    })
    .await;
    assert_eq!(third_assignee, free);

    // Closed, the contact stays with its agent: its next conversation goes straight to them.
    let sticky = first_two[0].clone();
    conversations
        .close_conversation(authorized(
            routing::CloseConversationRequest {
                id: sticky.clone(),
                closing_note: None,
            },
            &admin,
        ))
        .await
        .unwrap();
    let contact: String = db
        .query_one(
            "SELECT contact_id FROM routing.conversations WHERE id = $1",
            &[&sticky],
        )
        .await
        .unwrap()
        .get(0);
    // The sender of that conversation writes again (its index is in the provider message id).
    let index: u32 = db
        .query_one(
            "SELECT provider_message_id FROM routing.messages WHERE conversation_id = $1 LIMIT 1",
            &[&sticky],
        )
        .await
        .unwrap()
        .get::<_, String>(0)
        .rsplit('-')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let again = whatsapp_text(
        &format!("wamid.again-{index}"),
        &format!("1650{index:07}"),
        "me again",
    );
    assert_eq!(hooks.post_whatsapp(&again, None).await.status(), 200);
    let next_assignee =
        switchboard_testkit::eventually(Duration::from_secs(20), "the next conversation", || async {
            db.query_opt(
                "SELECT assignee_id FROM routing.conversations WHERE contact_id = $1 AND status = 'open'",
                &[&contact],
            )
            .await
            .unwrap()
            .and_then(|row| row.get::<_, Option<String>>(0))
        })
        .await;
    assert_eq!(next_assignee, busy, "the contact stays with its agent");

    // With unassign-on-close, closing hands the conversation back: nobody keeps it.
    conversations
        .update_routing_settings(authorized(
            routing::UpdateRoutingSettingsRequest {
                settings: Some(routing::RoutingSettings {
                    unassign_on_close: true,
                    ..Default::default()
                }),
            },
            &admin,
        ))
        .await
        .unwrap();
    let open_id: String = db
        .query_one(
            "SELECT id FROM routing.conversations WHERE contact_id = $1 AND status = 'open'",
            &[&contact],
        )
        .await
        .unwrap()
        .get(0);
    let closed = conversations
        .close_conversation(authorized(
            routing::CloseConversationRequest {
                id: open_id,
                closing_note: None,
            },
            &admin,
        ))
        .await
        .unwrap()
        .into_inner()
        .conversation
        .unwrap();
    assert!(closed.assignee_id.is_empty());
    let counted: i64 = TestDatabase::count(&db,
        "SELECT count(*) FROM routing.agents WHERE open_count <> (SELECT count(*) FROM routing.conversations c
             WHERE c.assignee_id = agents.id AND c.status = 'open')",
    )
    .await;
    assert_eq!(counted, 0, "capacity counters match the open conversations");
    hooks.cleanup().await;
}
