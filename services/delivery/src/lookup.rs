//! What delivery asks the other components, over gRPC with the internal token acting inside
//! the sender's workspace: the channel account with its secrets (tenancy), the contact's
//! identities and consent (contacts), the conversation and the bot fence (routing).

use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use switchboard_directory::{AccountDirectory, DirectoryError, ResolvedAccount};
use switchboard_domain::{ChannelAccountId, ContactId, ConversationId, WorkspaceId};
use switchboard_proto::contacts::v1::contacts_service_client::ContactsServiceClient;
use switchboard_proto::contacts::v1::{Contact, GetContactRequest};
use switchboard_proto::routing::v1::routing_service_client::RoutingServiceClient;
use switchboard_proto::routing::v1::{CheckBotSendRequest, Conversation, GetConversationRequest};
use switchboard_server::GrpcClientConfig;
use switchboard_server::auth::{InternalTokenInterceptor, act_for_workspace};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel as GrpcChannel;
use tonic_types::StatusExt as _;

use crate::DeliveryError;

type Intercepted = InterceptedService<GrpcChannel, InternalTokenInterceptor>;

/// How long account lookups are cached (secrets changed in tenancy apply after this).
const ACCOUNT_TTL: Duration = Duration::from_secs(30);

/// The gRPC clients delivery needs.
#[derive(Clone)]
pub struct Lookups {
    directory: Arc<AccountDirectory>,
    contacts: ContactsServiceClient<Intercepted>,
    routing: RoutingServiceClient<Intercepted>,
}

impl Lookups {
    /// Clients (connecting lazily, presenting `internal_token`) of tenancy at
    /// `config.endpoint`, and of contacts and routing at their own endpoints when given.
    pub fn new(
        config: &GrpcClientConfig,
        contacts_endpoint: Option<&str>,
        routing_endpoint: Option<&str>,
        internal_token: &SecretString,
    ) -> Result<Self, String> {
        let at = |endpoint: Option<&str>| {
            let mut config = config.clone();
            if let Some(endpoint) = endpoint {
                config.endpoint = endpoint.to_owned();
            }
            config.lazy_channel()
        };
        let interceptor = InternalTokenInterceptor::new(internal_token)?;
        Ok(Self {
            directory: Arc::new(AccountDirectory::new(config, internal_token, ACCOUNT_TTL)?),
            contacts: ContactsServiceClient::with_interceptor(at(contacts_endpoint)?, interceptor.clone()),
            routing: RoutingServiceClient::with_interceptor(at(routing_endpoint)?, interceptor),
        })
    }

    /// The channel account `id` with its secrets (any workspace: callers check ownership).
    pub async fn account(&self, id: &ChannelAccountId) -> Result<Arc<ResolvedAccount>, DeliveryError> {
        self.directory
            .resolve(id.as_str())
            .await
            .map_err(|error| match error {
                DirectoryError::NotFound => DeliveryError::NotFound(format!("channel account {id}")),
                DirectoryError::Unavailable(reason) => {
                    DeliveryError::Unavailable(format!("tenancy: {reason}"))
                }
            })
    }

    /// The contact `id` of `workspace`.
    pub async fn contact(&self, workspace: &WorkspaceId, id: &ContactId) -> Result<Contact, DeliveryError> {
        let mut request = tonic::Request::new(GetContactRequest { id: id.to_string() });
        act_for_workspace(&mut request, workspace);
        let response = self
            .contacts
            .clone()
            .get_contact(request)
            .await
            .map_err(|status| from_status("contacts", &format!("contact {id}"), status))?;
        response
            .into_inner()
            .contact
            .ok_or_else(|| DeliveryError::Unavailable("contacts answered without a contact".to_owned()))
    }

    /// The conversation `id` of `workspace`.
    pub async fn conversation(
        &self,
        workspace: &WorkspaceId,
        id: &ConversationId,
    ) -> Result<Conversation, DeliveryError> {
        let mut request = tonic::Request::new(GetConversationRequest { id: id.to_string() });
        act_for_workspace(&mut request, workspace);
        let response = self
            .routing
            .clone()
            .get_conversation(request)
            .await
            .map_err(|status| from_status("routing", &format!("conversation {id}"), status))?;
        response
            .into_inner()
            .conversation
            .ok_or_else(|| DeliveryError::Unavailable("routing answered without a conversation".to_owned()))
    }

    /// Routing's fence for bot sends: the conversation is open, under the bot, at `version`,
    /// and the bot is not paused.
    pub async fn check_bot_send(
        &self,
        workspace: &WorkspaceId,
        conversation: &ConversationId,
        version: i64,
    ) -> Result<(), DeliveryError> {
        let mut request = tonic::Request::new(CheckBotSendRequest {
            conversation_id: conversation.to_string(),
            controller_version: version,
        });
        act_for_workspace(&mut request, workspace);
        self.routing
            .clone()
            .check_bot_send(request)
            .await
            .map_err(|status| from_status("routing", &format!("conversation {conversation}"), status))?;
        Ok(())
    }
}

/// Maps another component's answer: NOT_FOUND stays, a refusal keeps its reason, anything else
/// is UNAVAILABLE naming the component.
fn from_status(component: &str, what: &str, status: tonic::Status) -> DeliveryError {
    match status.code() {
        tonic::Code::NotFound => DeliveryError::NotFound(what.to_owned()),
        tonic::Code::FailedPrecondition => {
            let reason = status
                .get_error_details()
                .error_info()
                .map_or_else(|| "FAILED_PRECONDITION".to_owned(), |info| info.reason.clone());
            DeliveryError::refused(reason, status.message().to_owned())
        }
        tonic::Code::InvalidArgument => DeliveryError::Invalid(format!("{component}: {}", status.message())),
        code => DeliveryError::Unavailable(format!("{component} answered {code:?}: {}", status.message())),
    }
}
