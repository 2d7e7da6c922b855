//! `switchboard reply`: answer a conversation as an agent from the command line, through the
//! delivery API (the way an agent desk would). Meant for the demo and for operators.

use std::process::ExitCode;
use std::time::Duration;

use secrecy::ExposeSecret as _;
use switchboard_proto::common::v1::{ContentPart, PageRequest, TextPart, content_part::Part};
use switchboard_proto::delivery::v1 as delivery;
use switchboard_proto::delivery::v1::delivery_service_client::DeliveryServiceClient;
use switchboard_proto::routing::v1 as routing;
use switchboard_proto::routing::v1::assignment_service_client::AssignmentServiceClient;
use switchboard_proto::routing::v1::routing_service_client::RoutingServiceClient;

use crate::Config;

/// What `reply` was asked to do.
#[derive(Debug, Clone)]
pub struct ReplyOrder {
    /// The gRPC endpoint (delivery and routing).
    pub endpoint: String,
    /// An API key of the workspace; without one the internal token acts inside `workspace`.
    pub api_key: Option<String>,
    /// The workspace (needed with the internal token).
    pub workspace: String,
    /// The conversation; unset: the most recently opened one (on `channel` when set).
    pub conversation: Option<String>,
    /// The channel whose latest conversation is answered, when not any.
    pub channel: Option<switchboard_domain::Channel>,
    /// The agent the reply is from.
    pub agent: Author,
    /// The text.
    pub text: String,
}

/// Which agent a reply is from.
#[derive(Debug, Clone)]
pub enum Author {
    /// The agent with this id (`agent_…`).
    Agent(String),
    /// The workspace's agent with this e-mail, created when missing.
    AgentEmail(String),
}

fn authorize<T>(request: &mut tonic::Request<T>, config: &Config, order: &ReplyOrder) -> Result<(), String> {
    let token = match (&order.api_key, &config.auth.internal_token) {
        (Some(key), _) => key.clone(),
        (None, Some(internal)) => internal.expose_secret().to_owned(),
        (None, None) => {
            return Err(
                "give --api-key (or SWITCHBOARD_API_KEY), or set SWITCHBOARD_INTERNAL_TOKEN".to_owned(),
            );
        }
    };
    let value = format!("Bearer {token}")
        .parse()
        .map_err(|_| "the API key is not a valid header value".to_owned())?;
    request.metadata_mut().insert("authorization", value);
    if order.api_key.is_none() {
        let workspace = switchboard_domain::WorkspaceId::parse(&order.workspace)
            .map_err(|error| format!("--workspace: {error}"))?;
        switchboard_server::auth::act_for_workspace(request, &workspace);
    }
    Ok(())
}

async fn reply(config: Config, order: ReplyOrder) -> Result<String, String> {
    let channel = tonic::transport::Endpoint::from_shared(order.endpoint.clone())
        .map_err(|error| format!("--endpoint {}: {error}", order.endpoint))?
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .map_err(|error| format!("cannot reach {}: {error}", order.endpoint))?;
    let conversation = match &order.conversation {
        Some(id) => id.clone(),
        None => {
            let mut request = tonic::Request::new(routing::ListConversationsRequest {
                channel: order.channel.map_or(0, |channel| channel.to_proto() as i32),
                page: Some(PageRequest {
                    page_size: 1,
                    ..PageRequest::default()
                }),
                ..routing::ListConversationsRequest::default()
            });
            authorize(&mut request, &config, &order)?;
            let listed = RoutingServiceClient::new(channel.clone())
                .list_conversations(request)
                .await
                .map_err(|status| format!("cannot list conversations: {}", status.message()))?
                .into_inner();
            listed
                .conversations
                .first()
                .map(|conversation| conversation.id.clone())
                .ok_or_else(|| match order.channel {
                    Some(channel) => format!("no {channel} conversation yet: write on {channel} first"),
                    None => "no conversation yet: send a webhook or write from the widget first".to_owned(),
                })?
        }
    };
    let agent_id = match &order.agent {
        Author::Agent(id) => id.clone(),
        Author::AgentEmail(email) => agent_with_email(&channel, &config, &order, email).await?,
    };
    let mut request = tonic::Request::new(delivery::SendRequest {
        recipient: Some(delivery::Recipient {
            target: Some(delivery::recipient::Target::ConversationId(conversation.clone())),
        }),
        content: Some(delivery::OutboundContent {
            parts: vec![ContentPart {
                part: Some(Part::Text(TextPart {
                    body: order.text.clone(),
                    subject: String::new(),
                })),
            }],
            ..delivery::OutboundContent::default()
        }),
        author_kind: delivery::AuthorKind::Agent as i32,
        author_id: agent_id,
        idempotency_key: uuid::Uuid::new_v4().to_string(),
        ..delivery::SendRequest::default()
    });
    authorize(&mut request, &config, &order)?;
    let sent = DeliveryServiceClient::new(channel)
        .send(request)
        .await
        .map_err(|status| format!("delivery refused the reply: {}", status.message()))?
        .into_inner();
    let id = sent.message.map(|message| message.id).unwrap_or_default();
    Ok(format!("queued {id} in {conversation}"))
}

/// The id of the workspace's agent with `email`, created (named after the address) when the
/// workspace has none.
async fn agent_with_email(
    channel: &tonic::transport::Channel,
    config: &Config,
    order: &ReplyOrder,
    email: &str,
) -> Result<String, String> {
    let mut client = AssignmentServiceClient::new(channel.clone());
    let mut page_token = String::new();
    loop {
        let mut request = tonic::Request::new(routing::ListAgentsRequest {
            page: Some(PageRequest {
                page_size: 200,
                page_token: page_token.clone(),
            }),
            ..routing::ListAgentsRequest::default()
        });
        authorize(&mut request, config, order)?;
        let listed = client
            .list_agents(request)
            .await
            .map_err(|status| format!("cannot list agents: {}", status.message()))?
            .into_inner();
        if let Some(agent) = listed
            .agents
            .iter()
            .find(|agent| agent.email.eq_ignore_ascii_case(email))
        {
            return Ok(agent.id.clone());
        }
        match listed.page.map(|page| page.next_page_token) {
            Some(next) if !next.is_empty() => page_token = next,
            _ => break,
        }
    }
    let name = email.split('@').next().unwrap_or(email).replace('.', " ");
    let mut request = tonic::Request::new(routing::CreateAgentRequest {
        name,
        email: email.to_owned(),
        ..routing::CreateAgentRequest::default()
    });
    authorize(&mut request, config, order)?;
    let created = client
        .create_agent(request)
        .await
        .map_err(|status| format!("cannot create the agent {email}: {}", status.message()))?
        .into_inner();
    created
        .agent
        .map(|agent| agent.id)
        .ok_or_else(|| "routing created the agent but did not return it".to_owned())
}

/// Runs `switchboard reply`.
pub(crate) fn run(config: Config, order: ReplyOrder) -> ExitCode {
    crate::app::block_on(async move {
        match reply(config, order).await {
            Ok(done) => {
                println!("{done}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("switchboard reply: {error}");
                ExitCode::FAILURE
            }
        }
    })
}
