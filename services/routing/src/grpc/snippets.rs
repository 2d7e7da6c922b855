//! Snippets (canned responses) with checked `{{contact.first_name}}`-style variables
//! (`NotesService` snippet calls).

use std::collections::{BTreeSet, HashMap};

use switchboard_domain::{AgentId, ConversationId, SnippetId, WorkspaceId};
use switchboard_proto::routing::v1 as proto;
use switchboard_server::paging;

use super::notes::NotesApi;
use super::{optional_id, parse_id};
use crate::RoutingError;
use crate::snippet::{self, Template};
use crate::store::{self, After};

impl NotesApi {
    /// Creates a snippet after checking its variables.
    pub(super) async fn create_snippet(
        &self,
        workspace: &WorkspaceId,
        request: proto::CreateSnippetRequest,
    ) -> Result<proto::CreateSnippetResponse, RoutingError> {
        let shortcut = snippet::shortcut(&request.shortcut)?;
        Template::parse(&request.body)?;
        let client = self.pool.get().await?;
        let snippet = store::snippets::insert(&client, workspace, &shortcut, &request.body).await?;
        Ok(proto::CreateSnippetResponse {
            snippet: Some(snippet),
        })
    }

    /// Replaces a snippet's shortcut and body.
    pub(super) async fn update_snippet(
        &self,
        workspace: &WorkspaceId,
        request: proto::UpdateSnippetRequest,
    ) -> Result<proto::UpdateSnippetResponse, RoutingError> {
        let id: SnippetId = parse_id("id", &request.id)?;
        let shortcut = snippet::shortcut(&request.shortcut)?;
        Template::parse(&request.body)?;
        let client = self.pool.get().await?;
        let snippet = store::snippets::update(&client, workspace, &id, &shortcut, &request.body).await?;
        Ok(proto::UpdateSnippetResponse {
            snippet: Some(snippet),
        })
    }

    /// Deletes a snippet.
    pub(super) async fn delete_snippet(
        &self,
        workspace: &WorkspaceId,
        request: proto::DeleteSnippetRequest,
    ) -> Result<proto::DeleteSnippetResponse, RoutingError> {
        let id: SnippetId = parse_id("id", &request.id)?;
        let client = self.pool.get().await?;
        store::snippets::delete(&client, workspace, &id).await?;
        Ok(proto::DeleteSnippetResponse {})
    }

    /// Lists the workspace's snippets, oldest first.
    pub(super) async fn list_snippets(
        &self,
        workspace: &WorkspaceId,
        request: proto::ListSnippetsRequest,
    ) -> Result<proto::ListSnippetsResponse, RoutingError> {
        let limit = paging::page_size(request.page.as_ref(), store::DEFAULT_PAGE_SIZE);
        let after = After::of(request.page.as_ref())?;
        let client = self.pool.get().await?;
        let page = store::snippets::list(&client, workspace, &after, limit).await?;
        Ok(proto::ListSnippetsResponse {
            page: Some(page.response()),
            snippets: page.items,
        })
    }

    /// Fills a snippet's variables for a conversation, or names the missing ones.
    pub(super) async fn render_snippet(
        &self,
        workspace: &WorkspaceId,
        request: proto::RenderSnippetRequest,
    ) -> Result<proto::RenderSnippetResponse, RoutingError> {
        let id: SnippetId = parse_id("snippet_id", &request.snippet_id)?;
        let conversation: ConversationId = parse_id("conversation_id", &request.conversation_id)?;
        let client = self.pool.get().await?;
        let body = store::snippets::body(&client, workspace, &id).await?;
        let snapshot = store::conversations::contact_snapshot(&client, workspace, &conversation).await?;
        let mut values: HashMap<String, String> = HashMap::new();
        for field in snippet::CONTACT_FIELDS {
            if let Some(value) = snapshot[field].as_str().filter(|value| !value.trim().is_empty()) {
                values.insert(format!("contact.{field}"), value.to_owned());
            }
        }
        if let Some(agent) = optional_id::<AgentId>("agent_id", &request.agent_id)? {
            let name = store::agents::name(&client, workspace, &agent).await?;
            values.insert("agent.name".to_owned(), name);
        }
        let template = Template::parse(&body)?;
        match template.render(&values) {
            Ok(text) => Ok(proto::RenderSnippetResponse { text }),
            Err(missing) => {
                let missing: BTreeSet<String> = missing.into_iter().collect();
                let list = missing.into_iter().collect::<Vec<_>>().join(",");
                Err(RoutingError::Refused {
                    reason: "MISSING_VARIABLE",
                    message: format!("the snippet needs values this conversation does not have: {list}"),
                    metadata: HashMap::from([("variables".to_owned(), list)]),
                })
            }
        }
    }
}
