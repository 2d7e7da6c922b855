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
use switchboard_proto::tenancy::v1 as tenancy;
use switchboard_proto::tenancy::v1::workspace_admin_service_client::WorkspaceAdminServiceClient;

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
    bearer(request, &token)?;
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
    let client = AssignmentServiceClient::new(channel.clone());
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
            .clone()
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
    let create = |authorization: Option<String>| {
        let mut client = client.clone();
        let (name, email) = (name.clone(), email.to_owned());
        async move {
            let mut request = tonic::Request::new(routing::CreateAgentRequest {
                name,
                email,
                ..routing::CreateAgentRequest::default()
            });
            match authorization {
                Some(token) => bearer(&mut request, &token)?,
                None => authorize(&mut request, config, order)?,
            }
            Ok::<_, String>(client.create_agent(request).await)
        }
    };
    let created = match create(None).await? {
        // The internal token may not administer a workspace: with the bootstrap token, a
        // short-lived workspace admin key creates the agent and is revoked at once.
        Err(status) if status.code() == tonic::Code::PermissionDenied && order.api_key.is_none() => {
            let Some(bootstrap) = &config.auth.bootstrap_token else {
                return Err(format!(
                    "no agent {email} yet, and creating one needs a workspace admin key (--api-key) or SWITCHBOARD_BOOTSTRAP_TOKEN"
                ));
            };
            let admin = AdminKey::create(channel, bootstrap.expose_secret(), &order.workspace).await?;
            let created = create(Some(admin.token.clone())).await?;
            admin.revoke(channel, bootstrap.expose_secret()).await;
            created
        }
        other => other,
    };
    created
        .map_err(|status| format!("cannot create the agent {email}: {}", status.message()))?
        .into_inner()
        .agent
        .map(|agent| agent.id)
        .ok_or_else(|| "routing created the agent but did not return it".to_owned())
}

/// Puts `Bearer <token>` on `request`.
fn bearer<T>(request: &mut tonic::Request<T>, token: &str) -> Result<(), String> {
    let value = format!("Bearer {token}")
        .parse()
        .map_err(|_| "the token is not a valid header value".to_owned())?;
    request.metadata_mut().insert("authorization", value);
    Ok(())
}

/// A workspace admin key made with the bootstrap token for one step of set-up.
struct AdminKey {
    id: String,
    token: String,
}

impl AdminKey {
    async fn create(
        channel: &tonic::transport::Channel,
        bootstrap: &str,
        workspace: &str,
    ) -> Result<Self, String> {
        let mut request = tonic::Request::new(tenancy::CreateApiKeyRequest {
            workspace_id: workspace.to_owned(),
            name: "switchboard reply: create the demo agent".to_owned(),
            role: tenancy::ApiKeyRole::WorkspaceAdmin as i32,
        });
        bearer(&mut request, bootstrap)?;
        let created = WorkspaceAdminServiceClient::new(channel.clone())
            .create_api_key(request)
            .await
            .map_err(|status| format!("cannot create a workspace admin key: {}", status.message()))?
            .into_inner();
        Ok(Self {
            id: created.key.map(|key| key.id).unwrap_or_default(),
            token: created.token,
        })
    }

    async fn revoke(self, channel: &tonic::transport::Channel, bootstrap: &str) {
        let mut request = tonic::Request::new(tenancy::RevokeApiKeyRequest { id: self.id });
        if bearer(&mut request, bootstrap).is_ok()
            && let Err(status) = WorkspaceAdminServiceClient::new(channel.clone())
                .revoke_api_key(request)
                .await
        {
            eprintln!(
                "switchboard reply: could not revoke the set-up key: {}",
                status.message()
            );
        }
    }
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
