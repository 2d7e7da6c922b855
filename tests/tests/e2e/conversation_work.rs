//! Working a conversation through the real binary: bot or human control with the version
//! fence and a stored pause that survives a restart, notes and comments with mentions,
//! snippets, archive, follow-up and search.

use std::time::Duration;

use futures_util::StreamExt;
use switchboard_e2e::authorized;
use switchboard_e2e::webhooks::{WebhookSwitchboard, whatsapp_button_reply, whatsapp_text};
use switchboard_proto::events::v1::envelope::Payload;
use switchboard_proto::routing::v1 as routing;
use switchboard_proto::routing::v1::assignment_service_client::AssignmentServiceClient;
use switchboard_proto::routing::v1::notes_service_client::NotesServiceClient;
use switchboard_proto::routing::v1::routing_service_client::RoutingServiceClient;
use switchboard_proto::tenancy::v1 as tenancy;
use tonic::Code;
use tonic_types::StatusExt as _;

const WORKSPACE: &str = "ws_e2e-hooks";
/// Everything but delivery: these tests read what routing asks of delivery and the bot from
/// their queues, so nothing else may consume them.
const ROUTING_TARGETS: &str = "tenancy,contacts,routing,ingress";
const SENDER: &str = "16505550777";

/// Posts a message and waits until routing has stored it.
async fn deliver(hooks: &WebhookSwitchboard, db: &tokio_postgres::Client, body: &[u8], provider_id: &str) {
    assert_eq!(hooks.post_whatsapp(body, None).await.status(), 200);
    switchboard_testkit::eventually(
        Duration::from_secs(20),
        "routing to store the message",
        || async {
            let stored: i64 = db
                .query_one(
                    "SELECT count(*) FROM routing.messages WHERE provider_message_id = $1",
                    &[&provider_id],
                )
                .await
                .unwrap()
                .get(0);
            (stored == 1).then_some(())
        },
    )
    .await;
    // The outbox relay runs right after the commit; give it a moment to publish.
    switchboard_testkit::eventually(Duration::from_secs(10), "the outbox to drain", || async {
        let pending: i64 = db
            .query_one("SELECT count(*) FROM routing.outbox", &[])
            .await
            .unwrap()
            .get(0);
        (pending == 0).then_some(())
    })
    .await;
}

/// Reads one bot turn and returns its controller version.
async fn bot_turn(hooks: &WebhookSwitchboard) -> i64 {
    let events = hooks
        .read_queue(&hooks.bot_queue(), 1, Duration::from_secs(10))
        .await;
    let Some(Payload::BotTurn(turn)) = &events[0].envelope.payload else {
        panic!("not a bot turn: {:?}", events[0].envelope)
    };
    assert_eq!(events[0].message_type, "bot.turn");
    turn.controller_version
}

async fn conversation(
    api: &mut RoutingServiceClient<tonic::transport::Channel>,
    token: &str,
    id: &str,
) -> routing::Conversation {
    api.get_conversation(authorized(
        routing::GetConversationRequest { id: id.to_owned() },
        token,
    ))
    .await
    .unwrap()
    .into_inner()
    .conversation
    .unwrap()
}

#[tokio::test]
async fn the_bot_stops_at_a_hand_over_and_a_stored_pause_holds_free_text_across_a_restart() {
    let mut hooks = WebhookSwitchboard::start_targets(ROUTING_TARGETS, &[]).await;
    let db = hooks.database.connect().await;
    let admin = crate::contacts::key(&hooks, WORKSPACE, tenancy::ApiKeyRole::WorkspaceAdmin).await;
    let member = crate::contacts::key(&hooks, WORKSPACE, tenancy::ApiKeyRole::WorkspaceMember).await;
    let mut api = RoutingServiceClient::new(hooks.switchboard.channel().await);
    api.update_routing_settings(authorized(
        routing::UpdateRoutingSettingsRequest {
            settings: Some(routing::RoutingSettings {
                bot_enabled: true,
                ..Default::default()
            }),
        },
        &admin,
    ))
    .await
    .unwrap();
    let refused = api
        .update_routing_settings(authorized(
            routing::UpdateRoutingSettingsRequest {
                settings: Some(routing::RoutingSettings::default()),
            },
            &member,
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);

    // A new conversation starts under the bot, and the message goes to the bot's queue.
    deliver(
        &hooks,
        &db,
        &whatsapp_text("wamid.bot-1", SENDER, "hi"),
        "wamid.bot-1",
    )
    .await;
    assert_eq!(bot_turn(&hooks).await, 1);
    let id: String = db
        .query_one("SELECT id FROM routing.conversations", &[])
        .await
        .unwrap()
        .get(0);
    let current = conversation(&mut api, &member, &id).await;
    assert_eq!(current.controller, routing::Controller::Bot as i32);
    let window = current.window_open_until.unwrap().seconds - current.last_inbound_at.unwrap().seconds;
    assert_eq!(window, 24 * 3600, "WhatsApp's reply window is 24 hours");

    // Paused (the workspace default, 60 minutes), then extended by 60 more.
    let paused = api
        .pause_bot(authorized(
            routing::PauseBotRequest {
                id: id.clone(),
                minutes: 0,
            },
            &member,
        ))
        .await
        .unwrap()
        .into_inner()
        .conversation
        .unwrap();
    let extended = api
        .pause_bot(authorized(
            routing::PauseBotRequest {
                id: id.clone(),
                minutes: 60,
            },
            &member,
        ))
        .await
        .unwrap()
        .into_inner()
        .conversation
        .unwrap();
    let first = paused.bot_paused_until.unwrap().seconds;
    let second = extended.bot_paused_until.unwrap().seconds;
    assert!((second - first - 3600).abs() <= 2, "{first} → {second}");
    let now = chrono::Utc::now().timestamp();
    assert!((first - now - 3600).abs() <= 5);
    let refused = api
        .pause_bot(authorized(
            routing::PauseBotRequest {
                id: id.clone(),
                minutes: 5_000,
            },
            &member,
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);

    // While paused: free text stays away from the bot, a button reply still reaches it.
    deliver(
        &hooks,
        &db,
        &whatsapp_text("wamid.bot-2", SENDER, "still there?"),
        "wamid.bot-2",
    )
    .await;
    assert_eq!(hooks.depth(&hooks.bot_queue()).await, 0);
    deliver(
        &hooks,
        &db,
        &whatsapp_button_reply("wamid.bot-3", SENDER),
        "wamid.bot-3",
    )
    .await;
    assert_eq!(bot_turn(&hooks).await, 1);

    // A fresh 60-minute pause; the deadline is stored, so a restarted process keeps it.
    api.resume_bot(authorized(routing::ResumeBotRequest { id: id.clone() }, &member))
        .await
        .unwrap();
    let paused = api
        .pause_bot(authorized(
            routing::PauseBotRequest {
                id: id.clone(),
                minutes: 0,
            },
            &member,
        ))
        .await
        .unwrap()
        .into_inner()
        .conversation
        .unwrap();
    let deadline = paused.bot_paused_until.unwrap().seconds;
    hooks.restart().await;
    let mut api = RoutingServiceClient::new(hooks.switchboard.channel().await);
    let after_restart = conversation(&mut api, &member, &id).await;
    assert_eq!(after_restart.bot_paused_until.unwrap().seconds, deadline);
    // The clock, controlled by moving the stored deadline back: 59 minutes later the bot is
    // still paused…
    let elapse = |minutes: i32| {
        let db = &db;
        let id = id.clone();
        async move {
            db.execute(
                "UPDATE routing.conversations SET bot_paused_until = bot_paused_until - make_interval(mins => $2)
                 WHERE id = $1",
                &[&id, &minutes],
            )
            .await
            .unwrap();
        }
    };
    elapse(59).await;
    deliver(
        &hooks,
        &db,
        &whatsapp_text("wamid.bot-4", SENDER, "hello?"),
        "wamid.bot-4",
    )
    .await;
    assert_eq!(hooks.depth(&hooks.bot_queue()).await, 0);
    // …and 61 minutes later it answers again.
    elapse(2).await;
    assert!(
        conversation(&mut api, &member, &id)
            .await
            .bot_paused_until
            .is_none()
    );
    deliver(
        &hooks,
        &db,
        &whatsapp_text("wamid.bot-5", SENDER, "anyone?"),
        "wamid.bot-5",
    )
    .await;
    let decided_under = bot_turn(&hooks).await;
    assert_eq!(decided_under, 1);
    let fence = |version: i64| routing::CheckBotSendRequest {
        conversation_id: id.clone(),
        controller_version: version,
    };
    api.check_bot_send(authorized(fence(decided_under), &member))
        .await
        .unwrap();

    // Hand-over to a human: the version moves on and nothing more reaches the bot.
    let human = api
        .transfer_to_human(authorized(
            routing::TransferToHumanRequest { id: id.clone() },
            &member,
        ))
        .await
        .unwrap()
        .into_inner()
        .conversation
        .unwrap();
    assert_eq!(human.controller, routing::Controller::Human as i32);
    assert_eq!(human.controller_version, 2);
    // The bot's send decided before the hand-over is refused after it.
    let refused = api
        .check_bot_send(authorized(fence(decided_under), &member))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert_eq!(
        refused.get_details_error_info().unwrap().reason,
        "CONTROLLER_CHANGED"
    );
    deliver(
        &hooks,
        &db,
        &whatsapp_button_reply("wamid.bot-6", SENDER),
        "wamid.bot-6",
    )
    .await;
    assert_eq!(hooks.depth(&hooks.bot_queue()).await, 0);
    // And back: turns carry the new version.
    let bot = api
        .transfer_to_bot(authorized(
            routing::TransferToBotRequest { id: id.clone() },
            &member,
        ))
        .await
        .unwrap()
        .into_inner()
        .conversation
        .unwrap();
    assert_eq!(bot.controller_version, 3);
    deliver(
        &hooks,
        &db,
        &whatsapp_text("wamid.bot-7", SENDER, "back"),
        "wamid.bot-7",
    )
    .await;
    assert_eq!(bot_turn(&hooks).await, 3);
    // Resume ends a pause early.
    api.pause_bot(authorized(
        routing::PauseBotRequest {
            id: id.clone(),
            minutes: 30,
        },
        &member,
    ))
    .await
    .unwrap();
    let resumed = api
        .resume_bot(authorized(routing::ResumeBotRequest { id: id.clone() }, &member))
        .await
        .unwrap()
        .into_inner()
        .conversation
        .unwrap();
    assert!(resumed.bot_paused_until.is_none());
    api.check_bot_send(authorized(fence(3), &member)).await.unwrap();
    deliver(
        &hooks,
        &db,
        &whatsapp_text("wamid.bot-8", SENDER, "ok"),
        "wamid.bot-8",
    )
    .await;
    assert_eq!(bot_turn(&hooks).await, 3);
    hooks.cleanup().await;
}

#[tokio::test]
async fn notes_mention_agents_once_snippets_fill_variables_and_conversations_are_found_archived_and_flagged()
{
    let hooks = WebhookSwitchboard::start_targets(ROUTING_TARGETS, &[]).await;
    let db = hooks.database.connect().await;
    let admin = crate::contacts::key(&hooks, WORKSPACE, tenancy::ApiKeyRole::WorkspaceAdmin).await;
    let member = crate::contacts::key(&hooks, WORKSPACE, tenancy::ApiKeyRole::WorkspaceMember).await;
    let channel = hooks.switchboard.channel().await;
    let mut conversations = RoutingServiceClient::new(channel.clone());
    let mut notes = NotesServiceClient::new(channel.clone());
    let mut agents = AssignmentServiceClient::new(channel);
    let mut agent_ids = Vec::new();
    for name in ["Ann", "Bob"] {
        agent_ids.push(
            agents
                .create_agent(authorized(
                    routing::CreateAgentRequest {
                        name: name.to_owned(),
                        ..Default::default()
                    },
                    &admin,
                ))
                .await
                .unwrap()
                .into_inner()
                .agent
                .unwrap()
                .id,
        );
    }
    let (ann, bob) = (agent_ids[0].clone(), agent_ids[1].clone());
    deliver(
        &hooks,
        &db,
        &whatsapp_text("wamid.notes-1", SENDER, "hi"),
        "wamid.notes-1",
    )
    .await;
    let id: String = db
        .query_one("SELECT id FROM routing.conversations", &[])
        .await
        .unwrap()
        .get(0);

    // Notes: at most 2,000 characters.
    let added = notes
        .add_note(authorized(
            routing::AddNoteRequest {
                conversation_id: id.clone(),
                kind: routing::NoteKind::Note as i32,
                author_id: ann.clone(),
                body: "Called the customer back.".to_owned(),
            },
            &member,
        ))
        .await
        .unwrap()
        .into_inner()
        .note
        .unwrap();
    assert!(added.mentioned_agent_ids.is_empty());
    let too_long = notes
        .add_note(authorized(
            routing::AddNoteRequest {
                conversation_id: id.clone(),
                kind: routing::NoteKind::Note as i32,
                author_id: ann.clone(),
                body: "x".repeat(2_001),
            },
            &member,
        ))
        .await
        .unwrap_err();
    assert_eq!(too_long.code(), Code::InvalidArgument);
    // A comment mentioning Bob twice notifies Bob once; an edit that adds Ann notifies Ann only.
    let comment = notes
        .add_note(authorized(
            routing::AddNoteRequest {
                conversation_id: id.clone(),
                kind: routing::NoteKind::Comment as i32,
                author_id: ann.clone(),
                body: format!("@{bob} can you check? @{bob}"),
            },
            &member,
        ))
        .await
        .unwrap()
        .into_inner()
        .note
        .unwrap();
    assert_eq!(comment.mentioned_agent_ids, vec![bob.clone()]);
    notes
        .edit_note(authorized(
            routing::EditNoteRequest {
                id: comment.id.clone(),
                body: format!("@{bob} can you check? cc @{ann}"),
            },
            &member,
        ))
        .await
        .unwrap();
    let unknown = notes
        .add_note(authorized(
            routing::AddNoteRequest {
                conversation_id: id.clone(),
                kind: routing::NoteKind::Comment as i32,
                author_id: ann.clone(),
                body: "@agent_nobody hello".to_owned(),
            },
            &member,
        ))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    let mut stream = conversations
        .watch_events(authorized(
            routing::WatchEventsRequest {
                from_cursor: "0".to_owned(),
                conversation_id: id.clone(),
            },
            &member,
        ))
        .await
        .unwrap()
        .into_inner();
    let mut mentioned = Vec::new();
    while let Ok(Some(event)) = tokio::time::timeout(Duration::from_millis(500), stream.next()).await {
        let event = event.unwrap();
        if event.event_type == "agent.mentioned" {
            let payload: serde_json::Value = serde_json::from_str(&event.payload_json).unwrap();
            mentioned.push(payload["agent_id"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(mentioned, vec![bob.clone(), ann.clone()]);
    notes
        .delete_note(authorized(
            routing::DeleteNoteRequest { id: added.id.clone() },
            &member,
        ))
        .await
        .unwrap();
    let listed = notes
        .list_notes(authorized(
            routing::ListNotesRequest {
                conversation_id: id.clone(),
                page: None,
            },
            &member,
        ))
        .await
        .unwrap()
        .into_inner()
        .notes;
    assert_eq!(listed.len(), 1);
    assert!(listed[0].edited_at.is_some());

    // Snippets: variables from the contact and the agent; a missing one is an explicit error.
    let greeting = notes
        .create_snippet(authorized(
            routing::CreateSnippetRequest {
                shortcut: "greeting".to_owned(),
                body: "Hi {{contact.first_name}}, this is {{agent.name}}.".to_owned(),
            },
            &admin,
        ))
        .await
        .unwrap()
        .into_inner()
        .snippet
        .unwrap();
    let rendered = notes
        .render_snippet(authorized(
            routing::RenderSnippetRequest {
                snippet_id: greeting.id.clone(),
                conversation_id: id.clone(),
                agent_id: ann.clone(),
            },
            &member,
        ))
        .await
        .unwrap()
        .into_inner()
        .text;
    assert_eq!(rendered, "Hi Sheena, this is Ann.");
    let needs_email = notes
        .create_snippet(authorized(
            routing::CreateSnippetRequest {
                shortcut: "by-mail".to_owned(),
                body: "We wrote to {{contact.email}}.".to_owned(),
            },
            &admin,
        ))
        .await
        .unwrap()
        .into_inner()
        .snippet
        .unwrap();
    let missing = notes
        .render_snippet(authorized(
            routing::RenderSnippetRequest {
                snippet_id: needs_email.id,
                conversation_id: id.clone(),
                agent_id: String::new(),
            },
            &member,
        ))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::FailedPrecondition);
    let info = missing.get_details_error_info().expect("error info");
    assert_eq!(info.reason, "MISSING_VARIABLE");
    assert_eq!(info.metadata["variables"], "contact.email");
    for (shortcut, body, role_key, code) in [
        ("odd", "Hi {{contact.shoe_size}}", &admin, Code::InvalidArgument),
        ("greeting", "Again", &admin, Code::AlreadyExists),
        ("member-made", "Hi", &member, Code::PermissionDenied),
    ] {
        let error = notes
            .create_snippet(authorized(
                routing::CreateSnippetRequest {
                    shortcut: shortcut.to_owned(),
                    body: body.to_owned(),
                },
                role_key,
            ))
            .await
            .unwrap_err();
        assert_eq!(error.code(), code, "{shortcut}");
    }

    // Search by the contact's name; archive hides, a new message brings it back; follow-up.
    let list =
        |query: &str, include_archived: bool, follow_up_only: bool| routing::ListConversationsRequest {
            query: query.to_owned(),
            include_archived,
            follow_up_only,
            ..Default::default()
        };
    let lister = conversations.clone();
    let found = |request: routing::ListConversationsRequest| {
        let mut api = lister.clone();
        let member = member.clone();
        async move {
            api.list_conversations(authorized(request, &member))
                .await
                .unwrap()
                .into_inner()
                .conversations
                .len()
        }
    };
    assert_eq!(found(list("sheena", false, false)).await, 1);
    assert_eq!(found(list("nobody-here", false, false)).await, 0);
    conversations
        .archive_conversation(authorized(
            routing::ArchiveConversationRequest { id: id.clone() },
            &member,
        ))
        .await
        .unwrap();
    assert_eq!(found(list("", false, false)).await, 0);
    assert_eq!(found(list("", true, false)).await, 1);
    deliver(
        &hooks,
        &db,
        &whatsapp_text("wamid.notes-2", SENDER, "me again"),
        "wamid.notes-2",
    )
    .await;
    assert_eq!(found(list("", false, false)).await, 1, "a new message unarchives");
    assert_eq!(found(list("", false, true)).await, 0);
    conversations
        .set_follow_up(authorized(
            routing::SetFollowUpRequest {
                id: id.clone(),
                follow_up: true,
            },
            &member,
        ))
        .await
        .unwrap();
    assert_eq!(found(list("", false, true)).await, 1);
    let short = conversations
        .list_conversations(authorized(list("ab", false, false), &member))
        .await
        .unwrap_err();
    assert_eq!(short.code(), Code::InvalidArgument);
    let unassigned = routing::ListConversationsRequest {
        assignee_id: "unassigned".to_owned(),
        ..Default::default()
    };
    assert_eq!(found(unassigned).await, 1);
    hooks.cleanup().await;
}

#[tokio::test]
async fn away_and_at_capacity_replies_are_requested_from_delivery_once_per_period() {
    use switchboard_proto::events::v1::AutoReplyRequested;

    // Routing decides business hours on a clock that starts on a Monday at noon (UTC): the
    // "open around the clock" hours below (00:00 to 23:59) are open whenever the test runs.
    let hooks = WebhookSwitchboard::start_targets(
        ROUTING_TARGETS,
        &[("SWITCHBOARD__ROUTING__CLOCK_START", "2025-06-02T12:00:00Z")],
    )
    .await;
    let db = hooks.database.connect().await;
    let admin = crate::contacts::key(&hooks, WORKSPACE, tenancy::ApiKeyRole::WorkspaceAdmin).await;
    let channel = hooks.switchboard.channel().await;
    let mut api = RoutingServiceClient::new(channel.clone());
    let mut assignment = AssignmentServiceClient::new(channel);
    let queue = format!("{}delivery.autoreply.p00", hooks.namespace);
    let settings = |hours: Option<routing::BusinessHours>| routing::UpdateRoutingSettingsRequest {
        settings: Some(routing::RoutingSettings {
            business_hours: hours,
            ..Default::default()
        }),
    };
    let refused = api
        .update_routing_settings(authorized(
            settings(Some(routing::BusinessHours {
                time_zone: "Mars/Olympus_Mons".to_owned(),
                ..Default::default()
            })),
            &admin,
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);

    // Closed all week: the first message gets the away message, the second one nothing more.
    api.update_routing_settings(authorized(
        settings(Some(routing::BusinessHours {
            time_zone: "Europe/Berlin".to_owned(),
            intervals: vec![],
            away_message: "We are closed; we answer on Monday from 9:00.".to_owned(),
            at_capacity_message: String::new(),
        })),
        &admin,
    ))
    .await
    .unwrap();
    deliver(
        &hooks,
        &db,
        &whatsapp_text("wamid.away-1", SENDER, "hello?"),
        "wamid.away-1",
    )
    .await;
    deliver(
        &hooks,
        &db,
        &whatsapp_text("wamid.away-2", SENDER, "anyone?"),
        "wamid.away-2",
    )
    .await;
    let requests = hooks.read_queue(&queue, 1, Duration::from_secs(10)).await;
    let Some(Payload::AutoReplyRequested(AutoReplyRequested { kind, text, .. })) =
        &requests[0].envelope.payload
    else {
        panic!("not an auto reply: {:?}", requests[0].envelope)
    };
    assert_eq!(kind, "away");
    assert!(text.starts_with("We are closed"));
    assert_eq!(hooks.depth(&queue).await, 0, "one away message per closed period");

    // Open around the clock (routing's clock reads Monday midday, never the closed 23:59), but
    // the only agent is offline: a new conversation queued in the team gets the at-capacity
    // message once.
    api.update_routing_settings(authorized(
        settings(Some(routing::BusinessHours {
            time_zone: "UTC".to_owned(),
            intervals: (1..=7)
                .map(|weekday| routing::OpenInterval {
                    weekday,
                    opens: "00:00".to_owned(),
                    closes: "23:59".to_owned(),
                })
                .collect(),
            away_message: "Closed.".to_owned(),
            at_capacity_message: "All our agents are busy; you are in the queue.".to_owned(),
        })),
        &admin,
    ))
    .await
    .unwrap();
    let agent = assignment
        .create_agent(authorized(
            routing::CreateAgentRequest {
                name: "Off duty".to_owned(),
                status: routing::AgentStatus::Offline as i32,
                ..Default::default()
            },
            &admin,
        ))
        .await
        .unwrap()
        .into_inner()
        .agent
        .unwrap();
    assignment
        .create_team(authorized(
            routing::CreateTeamRequest {
                name: "Support".to_owned(),
                mode: routing::AssignmentMode::RoundRobin as i32,
                agent_ids: vec![agent.id],
                channel_account_ids: vec![switchboard_e2e::webhooks::WHATSAPP.0.to_owned()],
            },
            &admin,
        ))
        .await
        .unwrap();
    let other = "16505550888";
    deliver(
        &hooks,
        &db,
        &whatsapp_text("wamid.busy-1", other, "hi"),
        "wamid.busy-1",
    )
    .await;
    deliver(
        &hooks,
        &db,
        &whatsapp_text("wamid.busy-2", other, "hi again"),
        "wamid.busy-2",
    )
    .await;
    let requests = hooks.read_queue(&queue, 1, Duration::from_secs(10)).await;
    let Some(Payload::AutoReplyRequested(AutoReplyRequested { kind, .. })) = &requests[0].envelope.payload
    else {
        panic!("not an auto reply: {:?}", requests[0].envelope)
    };
    assert_eq!(kind, "at_capacity");
    assert_eq!(hooks.depth(&queue).await, 0, "one at-capacity message per wait");
    hooks.cleanup().await;
}
