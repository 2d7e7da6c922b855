//! Workspace isolation on every routing RPC: another workspace's key sees none of a
//! workspace's conversations, agents, teams, notes or snippets, and changes none of them.

use std::time::Duration;

use futures_util::StreamExt;
use switchboard_e2e::authorized;
use switchboard_e2e::webhooks::{WebhookSwitchboard, whatsapp_text};
use switchboard_proto::routing::v1 as routing;
use switchboard_proto::routing::v1::assignment_service_client::AssignmentServiceClient;
use switchboard_proto::routing::v1::notes_service_client::NotesServiceClient;
use switchboard_proto::routing::v1::routing_service_client::RoutingServiceClient;
use switchboard_proto::tenancy::v1 as tenancy;
use tonic::Code;

fn not_found<T: std::fmt::Debug>(call: &str, result: Result<tonic::Response<T>, tonic::Status>) {
    match result {
        Err(status) => assert_eq!(status.code(), Code::NotFound, "{call}: {status:?}"),
        Ok(response) => panic!("{call} reached another workspace's data: {response:?}"),
    }
}

#[tokio::test]
async fn every_routing_rpc_stays_inside_the_callers_workspace() {
    let hooks = WebhookSwitchboard::start_targets("all", &[]).await;
    let owner = crate::contacts::key(&hooks, "ws_e2e-hooks", tenancy::ApiKeyRole::WorkspaceAdmin).await;
    let other = crate::contacts::key(&hooks, "ws_e2e-stranger", tenancy::ApiKeyRole::WorkspaceAdmin).await;
    let channel = hooks.switchboard.channel().await;
    let mut conversations = RoutingServiceClient::new(channel.clone());
    let mut assignment = AssignmentServiceClient::new(channel.clone());
    let mut notes = NotesServiceClient::new(channel);

    // The owner's data: a conversation, an agent, a team, a note, a snippet, settings.
    assert_eq!(
        hooks
            .post_whatsapp(&whatsapp_text("wamid.iso-1", "16505550999", "hi"), None)
            .await
            .status(),
        200
    );
    let id = switchboard_testkit::eventually(Duration::from_secs(20), "the conversation", || async {
        let listed = conversations
            .clone()
            .list_conversations(authorized(routing::ListConversationsRequest::default(), &owner))
            .await
            .unwrap()
            .into_inner()
            .conversations;
        listed.first().map(|conversation| conversation.id.clone())
    })
    .await;
    let agent = assignment
        .create_agent(authorized(
            routing::CreateAgentRequest {
                name: "Owner's agent".to_owned(),
                ..Default::default()
            },
            &owner,
        ))
        .await
        .unwrap()
        .into_inner()
        .agent
        .unwrap()
        .id;
    let team = assignment
        .create_team(authorized(
            routing::CreateTeamRequest {
                name: "Owner's team".to_owned(),
                agent_ids: vec![agent.clone()],
                ..Default::default()
            },
            &owner,
        ))
        .await
        .unwrap()
        .into_inner()
        .team
        .unwrap()
        .id;
    let note = notes
        .add_note(authorized(
            routing::AddNoteRequest {
                conversation_id: id.clone(),
                author_id: agent.clone(),
                body: "private".to_owned(),
                ..Default::default()
            },
            &owner,
        ))
        .await
        .unwrap()
        .into_inner()
        .note
        .unwrap()
        .id;
    let snippet = notes
        .create_snippet(authorized(
            routing::CreateSnippetRequest {
                shortcut: "hello".to_owned(),
                body: "Hello!".to_owned(),
            },
            &owner,
        ))
        .await
        .unwrap()
        .into_inner()
        .snippet
        .unwrap()
        .id;
    conversations
        .update_routing_settings(authorized(
            routing::UpdateRoutingSettingsRequest {
                settings: Some(routing::RoutingSettings {
                    bot_enabled: true,
                    ..Default::default()
                }),
            },
            &owner,
        ))
        .await
        .unwrap();

    let o = &other;
    // RoutingService.
    not_found(
        "GetConversation",
        conversations
            .get_conversation(authorized(routing::GetConversationRequest { id: id.clone() }, o))
            .await,
    );
    let listed = conversations
        .list_conversations(authorized(
            routing::ListConversationsRequest {
                include_archived: true,
                ..Default::default()
            },
            o,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(listed.conversations.is_empty());
    not_found(
        "ListMessages",
        conversations
            .list_messages(authorized(
                routing::ListMessagesRequest {
                    conversation_id: id.clone(),
                    page: None,
                },
                o,
            ))
            .await,
    );
    not_found(
        "CloseConversation",
        conversations
            .close_conversation(authorized(
                routing::CloseConversationRequest {
                    id: id.clone(),
                    closing_note: None,
                },
                o,
            ))
            .await,
    );
    not_found(
        "ReopenConversation",
        conversations
            .reopen_conversation(authorized(
                routing::ReopenConversationRequest { id: id.clone() },
                o,
            ))
            .await,
    );
    not_found(
        "ArchiveConversation",
        conversations
            .archive_conversation(authorized(
                routing::ArchiveConversationRequest { id: id.clone() },
                o,
            ))
            .await,
    );
    not_found(
        "UnarchiveConversation",
        conversations
            .unarchive_conversation(authorized(
                routing::UnarchiveConversationRequest { id: id.clone() },
                o,
            ))
            .await,
    );
    not_found(
        "SetFollowUp",
        conversations
            .set_follow_up(authorized(
                routing::SetFollowUpRequest {
                    id: id.clone(),
                    follow_up: true,
                },
                o,
            ))
            .await,
    );
    not_found(
        "TransferToHuman",
        conversations
            .transfer_to_human(authorized(routing::TransferToHumanRequest { id: id.clone() }, o))
            .await,
    );
    not_found(
        "TransferToBot",
        conversations
            .transfer_to_bot(authorized(routing::TransferToBotRequest { id: id.clone() }, o))
            .await,
    );
    not_found(
        "PauseBot",
        conversations
            .pause_bot(authorized(
                routing::PauseBotRequest {
                    id: id.clone(),
                    minutes: 5,
                },
                o,
            ))
            .await,
    );
    not_found(
        "ResumeBot",
        conversations
            .resume_bot(authorized(routing::ResumeBotRequest { id: id.clone() }, o))
            .await,
    );
    not_found(
        "CheckBotSend",
        conversations
            .check_bot_send(authorized(
                routing::CheckBotSendRequest {
                    conversation_id: id.clone(),
                    controller_version: 1,
                },
                o,
            ))
            .await,
    );
    let settings = conversations
        .get_routing_settings(authorized(routing::GetRoutingSettingsRequest {}, o))
        .await
        .unwrap()
        .into_inner()
        .settings
        .unwrap();
    assert!(!settings.bot_enabled, "settings are per workspace");
    let mut watch = conversations
        .watch_events(authorized(
            routing::WatchEventsRequest {
                from_cursor: "0".to_owned(),
                conversation_id: id.clone(),
            },
            o,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(
        tokio::time::timeout(Duration::from_millis(300), watch.next())
            .await
            .is_err()
    );

    // AssignmentService.
    not_found(
        "GetAgent",
        assignment
            .get_agent(authorized(routing::GetAgentRequest { id: agent.clone() }, o))
            .await,
    );
    let agents = assignment
        .list_agents(authorized(routing::ListAgentsRequest::default(), o))
        .await
        .unwrap()
        .into_inner();
    assert!(agents.agents.is_empty());
    not_found(
        "UpdateAgent",
        assignment
            .update_agent(authorized(
                routing::UpdateAgentRequest {
                    id: agent.clone(),
                    name: "stolen".to_owned(),
                    ..Default::default()
                },
                o,
            ))
            .await,
    );
    not_found(
        "SetAgentStatus",
        assignment
            .set_agent_status(authorized(
                routing::SetAgentStatusRequest {
                    id: agent.clone(),
                    status: routing::AgentStatus::Online as i32,
                },
                o,
            ))
            .await,
    );
    not_found(
        "DeleteAgent",
        assignment
            .delete_agent(authorized(routing::DeleteAgentRequest { id: agent.clone() }, o))
            .await,
    );
    not_found(
        "GetTeam",
        assignment
            .get_team(authorized(routing::GetTeamRequest { id: team.clone() }, o))
            .await,
    );
    let teams = assignment
        .list_teams(authorized(routing::ListTeamsRequest::default(), o))
        .await
        .unwrap()
        .into_inner();
    assert!(teams.teams.is_empty());
    not_found(
        "UpdateTeam",
        assignment
            .update_team(authorized(
                routing::UpdateTeamRequest {
                    id: team.clone(),
                    name: "stolen".to_owned(),
                    ..Default::default()
                },
                o,
            ))
            .await,
    );
    not_found(
        "DeleteTeam",
        assignment
            .delete_team(authorized(routing::DeleteTeamRequest { id: team.clone() }, o))
            .await,
    );
    not_found(
        "CreateTeam with another workspace's agent",
        assignment
            .create_team(authorized(
                routing::CreateTeamRequest {
                    name: "Borrowed".to_owned(),
                    agent_ids: vec![agent.clone()],
                    ..Default::default()
                },
                o,
            ))
            .await,
    );
    not_found(
        "AssignConversation",
        assignment
            .assign_conversation(authorized(
                routing::AssignConversationRequest {
                    conversation_id: id.clone(),
                    agent_id: agent.clone(),
                },
                o,
            ))
            .await,
    );
    not_found(
        "UnassignConversation",
        assignment
            .unassign_conversation(authorized(
                routing::UnassignConversationRequest {
                    conversation_id: id.clone(),
                },
                o,
            ))
            .await,
    );
    not_found(
        "TransferToTeam",
        assignment
            .transfer_to_team(authorized(
                routing::TransferToTeamRequest {
                    conversation_id: id.clone(),
                    team_id: team.clone(),
                },
                o,
            ))
            .await,
    );

    // NotesService.
    not_found(
        "AddNote",
        notes
            .add_note(authorized(
                routing::AddNoteRequest {
                    conversation_id: id.clone(),
                    author_id: agent.clone(),
                    body: "intrusion".to_owned(),
                    ..Default::default()
                },
                o,
            ))
            .await,
    );
    not_found(
        "EditNote",
        notes
            .edit_note(authorized(
                routing::EditNoteRequest {
                    id: note.clone(),
                    body: "changed".to_owned(),
                },
                o,
            ))
            .await,
    );
    not_found(
        "DeleteNote",
        notes
            .delete_note(authorized(routing::DeleteNoteRequest { id: note.clone() }, o))
            .await,
    );
    not_found(
        "ListNotes",
        notes
            .list_notes(authorized(
                routing::ListNotesRequest {
                    conversation_id: id.clone(),
                    page: None,
                },
                o,
            ))
            .await,
    );
    not_found(
        "UpdateSnippet",
        notes
            .update_snippet(authorized(
                routing::UpdateSnippetRequest {
                    id: snippet.clone(),
                    shortcut: "hello".to_owned(),
                    body: "changed".to_owned(),
                },
                o,
            ))
            .await,
    );
    not_found(
        "DeleteSnippet",
        notes
            .delete_snippet(authorized(
                routing::DeleteSnippetRequest { id: snippet.clone() },
                o,
            ))
            .await,
    );
    let snippets = notes
        .list_snippets(authorized(routing::ListSnippetsRequest::default(), o))
        .await
        .unwrap()
        .into_inner();
    assert!(snippets.snippets.is_empty());
    not_found(
        "RenderSnippet",
        notes
            .render_snippet(authorized(
                routing::RenderSnippetRequest {
                    snippet_id: snippet.clone(),
                    conversation_id: id.clone(),
                    agent_id: String::new(),
                },
                o,
            ))
            .await,
    );

    // Nothing of the owner's changed.
    let still = conversations
        .get_conversation(authorized(
            routing::GetConversationRequest { id: id.clone() },
            &owner,
        ))
        .await
        .unwrap()
        .into_inner()
        .conversation
        .unwrap();
    assert_eq!(still.status, routing::ConversationStatus::Open as i32);
    assert!(!still.follow_up && still.archived_at.is_none() && still.assignee_id.is_empty());
    let kept = notes
        .list_notes(authorized(
            routing::ListNotesRequest {
                conversation_id: id,
                page: None,
            },
            &owner,
        ))
        .await
        .unwrap()
        .into_inner()
        .notes;
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].body, "private");
    hooks.cleanup().await;
}
