//! `switchboard reply`: answer a conversation as an agent from the command line, through the
//! delivery API (the way an agent desk would). Meant for the demo and for operators.

use std::process::ExitCode;
use std::time::Duration;

use secrecy::ExposeSecret as _;
use switchboard_proto::common::v1::{ContentPart, PageRequest, TextPart, content_part::Part};
use switchboard_proto::delivery::v1 as delivery;
use switchboard_proto::delivery::v1::delivery_service_client::DeliveryServiceClient;
use switchboard_proto::routing::v1 as routing;
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
    /// The conversation; unset: the most recently opened one on `channel`.
    pub conversation: Option<String>,
    /// The channel whose latest conversation is answered.
    pub channel: switchboard_domain::Channel,
    /// The agent's id (`agent_…`); unset: sent as an API message, which claims nothing.
    pub agent: Option<String>,
    /// The text.
    pub text: String,
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
                channel: order.channel.to_proto() as i32,
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
                .ok_or_else(|| {
                    format!(
                        "no {} conversation yet: write from the widget first",
                        order.channel
                    )
                })?
        }
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
        author_kind: if order.agent.is_some() {
            delivery::AuthorKind::Agent as i32
        } else {
            delivery::AuthorKind::Api as i32
        },
        author_id: order.agent.clone().unwrap_or_default(),
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
