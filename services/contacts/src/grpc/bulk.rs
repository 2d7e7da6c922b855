//! The RPCs that act on many contacts or whole contacts: merge, unmerge, erase, bulk tag
//! and import jobs, export.

use switchboard_domain::{ContactId, JobId, MergeId};
use switchboard_proto::contacts::v1 as proto;
use switchboard_proto::contacts::v1::contacts_service_server::ContactsService;
use switchboard_proto::events::v1::ContactChange;
use tonic::{Request, Response, Status};

use super::{ContactsApi, admin_workspace, contact_id, workspace};
use crate::outbox::{self, ChangeEvent};
use crate::{ContactsError, export, jobs, merge, store};

impl ContactsApi {
    /// Merges the secondary contact into the primary and records `contact.merged`.
    pub(super) async fn merge_contacts_rpc(
        &self,
        request: Request<proto::MergeContactsRequest>,
    ) -> Result<Response<proto::MergeContactsResponse>, Status> {
        let workspace = workspace(&request)?;
        let primary_id = contact_id("primary_id", &request.get_ref().primary_id)?;
        let secondary_id = contact_id("secondary_id", &request.get_ref().secondary_id)?;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(ContactsError::from)?;
        let (primary, _, merge_id) = merge::merge(&tx, &workspace, &primary_id, &secondary_id).await?;
        let rendered = self.render_one(&tx, &workspace, &primary).await?;
        self.announce(
            &tx,
            ContactChange::Merged,
            &primary,
            &rendered,
            "merge",
            Some(&secondary_id),
        )
        .await?;
        tx.commit().await.map_err(ContactsError::from)?;
        self.wake.notify_one();
        tracing::info!(%primary_id, %secondary_id, %merge_id, "contacts merged");
        Ok(Response::new(proto::MergeContactsResponse {
            contact: Some(rendered),
            merge_id: merge_id.into_string(),
        }))
    }

    /// Undoes a merge and records `contact.unmerged` for both contacts.
    pub(super) async fn unmerge_contact_rpc(
        &self,
        request: Request<proto::UnmergeContactRequest>,
    ) -> Result<Response<proto::UnmergeContactResponse>, Status> {
        let workspace = workspace(&request)?;
        let merge_id = MergeId::parse(&request.get_ref().merge_id)
            .map_err(|error| Status::invalid_argument(format!("merge_id: {error}")))?;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(ContactsError::from)?;
        let (primary, secondary) = merge::unmerge(&tx, &workspace, &merge_id).await?;
        let rendered_primary = self.render_one(&tx, &workspace, &primary).await?;
        let rendered_secondary = self.render_one(&tx, &workspace, &secondary).await?;
        self.announce(
            &tx,
            ContactChange::Unmerged,
            &primary,
            &rendered_primary,
            "unmerge",
            Some(&secondary.id),
        )
        .await?;
        self.announce(
            &tx,
            ContactChange::Unmerged,
            &secondary,
            &rendered_secondary,
            "unmerge",
            Some(&primary.id),
        )
        .await?;
        tx.commit().await.map_err(ContactsError::from)?;
        self.wake.notify_one();
        tracing::info!(%merge_id, "merge undone");
        Ok(Response::new(proto::UnmergeContactResponse {
            primary: Some(rendered_primary),
            secondary: Some(rendered_secondary),
        }))
    }

    /// Erases a contact and the contacts merged into it (workspace admin).
    pub(super) async fn erase_contact_rpc(
        &self,
        request: Request<proto::EraseContactRequest>,
    ) -> Result<Response<proto::EraseContactResponse>, Status> {
        let workspace = admin_workspace(&request)?;
        let id = contact_id("contact_id", &request.get_ref().contact_id)?;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(ContactsError::from)?;
        let erased = merge::erase(&tx, &workspace, &id).await?;
        for erased_id in &erased {
            outbox::record(
                &tx,
                &self.partitions,
                ChangeEvent {
                    workspace_id: &workspace,
                    change: ContactChange::Erased,
                    contact_id: erased_id,
                    contact: None,
                    source: "erase",
                    tags_added: Vec::new(),
                    tags_removed: Vec::new(),
                    other_contact_id: None,
                },
            )
            .await?;
        }
        tx.commit().await.map_err(ContactsError::from)?;
        self.wake.notify_one();
        tracing::info!(contact_id = %id, erased = erased.len(), "contact erased");
        Ok(Response::new(proto::EraseContactResponse {
            erased_contact_ids: erased.into_iter().map(ContactId::into_string).collect(),
        }))
    }

    /// Starts a job that adds and removes tags on every selected contact.
    pub(super) async fn start_bulk_tag_job_rpc(
        &self,
        request: Request<proto::StartBulkTagJobRequest>,
    ) -> Result<Response<proto::StartBulkTagJobResponse>, Status> {
        let workspace = workspace(&request)?;
        let request = request.into_inner();
        if request.add_tags.is_empty() && request.remove_tags.is_empty() {
            return Err(Status::invalid_argument(
                "add_tags / remove_tags: name at least one tag",
            ));
        }
        let add = crate::editable::tags(&request.add_tags)?;
        let remove = crate::editable::tags(&request.remove_tags)?;
        let client = self.client().await?;
        let (search, filter, _) = self
            .selection(
                &client,
                &workspace,
                &request.query,
                request.filter.as_ref(),
                &request.view_id,
            )
            .await?;
        let job = jobs::start(
            &client,
            jobs::NewJob {
                workspace_id: &workspace,
                kind: "bulk_tags",
                request_id: request.request_id.trim(),
                dry_run: false,
                params: serde_json::json!({
                    "filter": filter,
                    "query": search,
                    "add": add,
                    "remove": remove,
                }),
                input: None,
            },
        )
        .await?;
        self.jobs_wake.notify_one();
        Ok(Response::new(proto::StartBulkTagJobResponse {
            job: Some(job.to_proto()),
        }))
    }

    /// Checks a CSV's header and starts the job that imports it.
    pub(super) async fn import_contacts_rpc(
        &self,
        request: Request<proto::ImportContactsRequest>,
    ) -> Result<Response<proto::ImportContactsResponse>, Status> {
        let workspace = workspace(&request)?;
        let request = request.into_inner();
        if request.csv.is_empty() {
            return Err(Status::invalid_argument("csv: the file is empty"));
        }
        if std::str::from_utf8(&request.csv).is_err() {
            return Err(Status::invalid_argument("csv: the file is not UTF-8 text"));
        }
        // The header is checked now, so a wrong file is refused at once.
        let client = self.client().await?;
        let definitions = store::field_definitions(&client, &workspace).await?;
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .from_reader(request.csv.as_slice());
        let header = reader
            .headers()
            .map_err(|error| Status::invalid_argument(format!("csv: the header cannot be read: {error}")))?;
        crate::csv_import::columns(header, &definitions)
            .map_err(|message| Status::invalid_argument(format!("csv: {message}")))?;
        let job = jobs::start(
            &client,
            jobs::NewJob {
                workspace_id: &workspace,
                kind: "import",
                request_id: request.request_id.trim(),
                dry_run: request.dry_run,
                params: serde_json::json!({}),
                input: Some(request.csv),
            },
        )
        .await?;
        self.jobs_wake.notify_one();
        Ok(Response::new(proto::ImportContactsResponse {
            job: Some(job.to_proto()),
        }))
    }

    /// One job of the caller's workspace.
    pub(super) async fn get_job_rpc(
        &self,
        request: Request<proto::GetJobRequest>,
    ) -> Result<Response<proto::GetJobResponse>, Status> {
        let workspace = workspace(&request)?;
        let id = JobId::parse(&request.get_ref().id)
            .map_err(|error| Status::invalid_argument(format!("id: {error}")))?;
        let client = self.client().await?;
        let job = jobs::get(&client, &workspace, &id).await?;
        Ok(Response::new(proto::GetJobResponse {
            job: Some(job.to_proto()),
        }))
    }

    /// Streams the selected contacts as CSV (workspace admin).
    pub(super) async fn export_contacts_rpc(
        &self,
        request: Request<proto::ExportContactsRequest>,
    ) -> Result<Response<<Self as ContactsService>::ExportContactsStream>, Status> {
        let workspace = admin_workspace(&request)?;
        let request = request.into_inner();
        let client = self.client().await?;
        let (search, filter, types) = self
            .selection(
                &client,
                &workspace,
                &request.query,
                request.filter.as_ref(),
                &request.view_id,
            )
            .await?;
        let columns = export::columns(&request.columns, &types)?;
        drop(client);
        let (sender, receiver) = tokio::sync::mpsc::channel(4);
        tokio::spawn(
            export::Export {
                pool: self.pool.clone(),
                workspace,
                search,
                filter,
                types,
                columns,
            }
            .run(sender),
        );
        let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
            receiver.recv().await.map(|item| (item, receiver))
        });
        Ok(Response::new(Box::pin(stream)))
    }
}
