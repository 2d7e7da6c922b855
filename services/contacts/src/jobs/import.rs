//! The CSV import job: rows checked like a manual edit, matched to existing contacts by
//! e-mail or phone, then created or updated a batch per transaction.

use std::collections::{BTreeSet, HashMap};
use switchboard_postgres::CachedStatements as _;

use switchboard_domain::ContactId;
use switchboard_proto::contacts::v1 as proto;
use switchboard_proto::events::v1::ContactChange;

use super::{BATCH, Job, JobRunner, MAX_ERRORS};
use crate::csv_import::{self, Column};
use crate::editable::{Editable, Rules};
use crate::model::Contact;
use crate::settings::Settings;
use crate::{ContactsError, store};
use switchboard_domain::normalize::parse_country;

impl JobRunner {
    /// Imports the job's CSV in batches, from where it stopped; a dry run only counts.
    pub(super) async fn import(&self, mut job: Job) -> Result<(), ContactsError> {
        let mut client = self.pool.get().await?;
        let input: Option<Vec<u8>> = client
            .query_one_cached(
                "SELECT input FROM contacts.jobs WHERE id = $1",
                &[&job.id.as_str()],
            )
            .await?
            .get(0);
        let input = input.ok_or_else(|| ContactsError::invalid("the import's CSV is gone"))?;
        let definitions = store::field_definitions(&client, &job.workspace_id).await?;
        let settings = Settings::load(&client, &job.workspace_id).await?;
        let rules = Rules {
            fields: &definitions,
            country: parse_country(&settings.default_country).ok(),
        };
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .from_reader(input.as_slice());
        let header = reader
            .headers()
            .map_err(|error| ContactsError::invalid(format!("the CSV header cannot be read: {error}")))?
            .clone();
        let columns = csv_import::columns(&header, &definitions).map_err(ContactsError::invalid)?;
        if !columns
            .iter()
            .any(|column| matches!(column, Column::Standard(_) | Column::Custom(_)))
        {
            return Err(ContactsError::invalid("the CSV has no columns"));
        }
        let records: Vec<Result<csv::StringRecord, csv::Error>> = reader.records().collect();
        if records.len() > csv_import::MAX_ROWS {
            return Err(ContactsError::invalid(format!(
                "the CSV has {} rows; import at most {} at a time",
                records.len(),
                csv_import::MAX_ROWS
            )));
        }
        job.total = records.len() as i64;
        let start: usize = job.position.parse().unwrap_or(0);
        // Identifiers seen in this file: a later row with the same e-mail / phone updates
        // the contact an earlier row made (in a dry run, the contact it would have made).
        let mut seen: HashMap<String, ContactId> = HashMap::new();
        let mut index = start;
        while index < records.len() {
            if self.shutdown.is_cancelled() {
                return Ok(());
            }
            let end = (index + BATCH).min(records.len());
            let tx = client.transaction().await?;
            let mut parsed = Vec::with_capacity(end - index);
            for (offset, record) in records[index..end].iter().enumerate() {
                let row = (index + offset + 1) as i64;
                let values = match record {
                    Ok(record) => csv_import::row_values(&columns, record, &definitions),
                    Err(error) => Err(format!("unreadable row: {error}")),
                };
                let checked = values.and_then(|values| {
                    let mut editable = Editable::default();
                    for path in &values.paths {
                        match path.strip_prefix("custom_fields.") {
                            Some(key) => {
                                rules.apply_custom(key, values.contact.custom_fields.get(key), &mut editable)
                            }
                            None => rules.apply(path, &values.contact, &mut editable),
                        }
                        .map_err(|error| error.to_string())?;
                    }
                    if values.paths.is_empty() {
                        return Err("the row is empty".to_owned());
                    }
                    Ok((values.paths, editable))
                });
                match checked {
                    Ok(ok) => parsed.push((row, ok)),
                    Err(message) => {
                        job.failed += 1;
                        if job.errors.len() < MAX_ERRORS {
                            job.errors.push(proto::RowError { row, message });
                        }
                    }
                }
            }
            let emails: Vec<String> = parsed.iter().filter_map(|(_, (_, e))| e.email.clone()).collect();
            let phones: Vec<String> = parsed.iter().filter_map(|(_, (_, e))| e.phone.clone()).collect();
            let existing = store::contacts_with_identifiers(&tx, &job.workspace_id, &emails, &phones).await?;
            let mut by_identifier: HashMap<String, Contact> = HashMap::new();
            for contact in existing {
                for identifier in [contact.email.clone(), contact.phone.clone()]
                    .into_iter()
                    .flatten()
                {
                    by_identifier.entry(identifier).or_insert_with(|| contact.clone());
                }
            }
            for (_, (paths, editable)) in parsed {
                let identifiers: Vec<String> = [editable.email.clone(), editable.phone.clone()]
                    .into_iter()
                    .flatten()
                    .collect();
                let known = identifiers
                    .iter()
                    .find_map(|identifier| by_identifier.get(identifier).map(|contact| contact.id.clone()))
                    .or_else(|| {
                        identifiers
                            .iter()
                            .find_map(|identifier| seen.get(identifier).cloned())
                    });
                match known {
                    Some(contact_id) => {
                        job.updated += 1;
                        if !job.dry_run {
                            let stored =
                                store::find_contact(&tx, &job.workspace_id, &contact_id, true).await?;
                            let mut after = Editable::of(&stored);
                            apply_paths(&mut after, &editable, &paths);
                            if after != Editable::of(&stored) {
                                let updated = store::write_editable(&tx, &contact_id, &after).await?;
                                self.announce(
                                    &tx,
                                    &job.workspace_id,
                                    ContactChange::Updated,
                                    &updated,
                                    "import",
                                    Vec::new(),
                                    Vec::new(),
                                )
                                .await?;
                                for identifier in [updated.email.clone(), updated.phone.clone()]
                                    .into_iter()
                                    .flatten()
                                {
                                    by_identifier.insert(identifier, updated.clone());
                                }
                            }
                        }
                        for identifier in identifiers {
                            seen.entry(identifier).or_insert_with(|| contact_id.clone());
                        }
                    }
                    None => {
                        job.created += 1;
                        let id = ContactId::generate();
                        if !job.dry_run {
                            let created =
                                store::insert_contact(&tx, &job.workspace_id, &id, &editable).await?;
                            self.announce(
                                &tx,
                                &job.workspace_id,
                                ContactChange::Created,
                                &created,
                                "import",
                                created.tags.clone(),
                                Vec::new(),
                            )
                            .await?;
                        }
                        for identifier in identifiers {
                            seen.insert(identifier, id.clone());
                        }
                    }
                }
            }
            job.processed = end as i64;
            job.position = end.to_string();
            let done = end == records.len();
            Self::progress(&tx, &job, done).await?;
            tx.commit().await?;
            self.outbox_wake.notify_one();
            index = end;
        }
        if records.is_empty() {
            let tx = client.transaction().await?;
            Self::progress(&tx, &job, true).await?;
            tx.commit().await?;
        }
        tracing::info!(
            job_id = %job.id, created = job.created, updated = job.updated, failed = job.failed,
            dry_run = job.dry_run, "import done"
        );
        Ok(())
    }
}

/// Copies the fields a row set (`paths`) from `row` onto `into`.
fn apply_paths(into: &mut Editable, row: &Editable, paths: &[String]) {
    for path in paths {
        match path.as_str() {
            "first_name" => into.first_name = row.first_name.clone(),
            "last_name" => into.last_name = row.last_name.clone(),
            "display_name" => into.display_name = row.display_name.clone(),
            "email" => into.email = row.email.clone(),
            "phone" => into.phone = row.phone.clone(),
            "username" => into.username = row.username.clone(),
            "avatar_url" => into.avatar_url = row.avatar_url.clone(),
            "locale" => into.locale = row.locale.clone(),
            "tags" => {
                let mut tags: BTreeSet<String> = into.tags.iter().cloned().collect();
                tags.extend(row.tags.iter().cloned());
                into.tags = tags.into_iter().collect();
            }
            other => {
                if let Some(key) = other.strip_prefix("custom_fields.")
                    && let Some(value) = row.custom_fields.get(key)
                {
                    into.custom_fields.insert(key.to_owned(), value.clone());
                }
            }
        }
    }
}
