//! Per-workspace identity-resolution settings.

use switchboard_domain::WorkspaceId;
use switchboard_postgres::GenericClient;

use crate::ContactsError;

/// How inbound senders become contacts in one workspace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// ISO 3166-1 alpha-2 country for national phone numbers ('' = none).
    pub default_country: String,
    /// Link a new identity to the contact with the same phone number.
    pub link_by_phone: bool,
    /// Link a new identity to the contact with the same e-mail address.
    pub link_by_email: bool,
    /// Month-end reset deletes contacts with this tag ('' = off).
    pub quota_reset_tag: String,
}

impl Settings {
    /// The workspace's settings (defaults when it never set any).
    pub async fn load(client: &impl GenericClient, workspace: &WorkspaceId) -> Result<Self, ContactsError> {
        let row = client
            .query_opt(
                &client
                    .prepare_cached(
                        "SELECT default_country, link_by_phone, link_by_email, quota_reset_tag
                 FROM contacts.settings WHERE workspace_id = $1",
                    )
                    .await?,
                &[&workspace.as_str()],
            )
            .await?;
        Ok(row.map_or_else(Self::default, |row| Self {
            default_country: row.get(0),
            link_by_phone: row.get(1),
            link_by_email: row.get(2),
            quota_reset_tag: row.get(3),
        }))
    }

    /// Stores the workspace's settings.
    pub async fn save(
        &self,
        client: &impl GenericClient,
        workspace: &WorkspaceId,
    ) -> Result<(), ContactsError> {
        client
            .execute(&client.prepare_cached("INSERT INTO contacts.settings
                     (workspace_id, default_country, link_by_phone, link_by_email, quota_reset_tag, updated_at)
                 VALUES ($1, $2, $3, $4, $5, now())
                 ON CONFLICT (workspace_id) DO UPDATE SET
                     default_country = EXCLUDED.default_country,
                     link_by_phone = EXCLUDED.link_by_phone,
                     link_by_email = EXCLUDED.link_by_email,
                     quota_reset_tag = EXCLUDED.quota_reset_tag,
                     updated_at = now()").await?,
                &[
                    &workspace.as_str(),
                    &self.default_country,
                    &self.link_by_phone,
                    &self.link_by_email,
                    &self.quota_reset_tag,
                ],
            )
            .await?;
        Ok(())
    }
}

impl Settings {
    /// The proto form.
    pub fn to_proto(&self) -> switchboard_proto::contacts::v1::Settings {
        switchboard_proto::contacts::v1::Settings {
            default_country: self.default_country.clone(),
            link_by_phone: self.link_by_phone,
            link_by_email: self.link_by_email,
            quota_reset_tag: self.quota_reset_tag.clone(),
        }
    }

    /// Checks proto settings.
    pub fn from_proto(settings: &switchboard_proto::contacts::v1::Settings) -> Result<Self, ContactsError> {
        let default_country = settings.default_country.trim().to_ascii_uppercase();
        if !default_country.is_empty() {
            switchboard_domain::normalize::parse_country(&default_country)
                .map_err(|error| ContactsError::invalid(format!("default_country: {error}")))?;
        }
        let quota_reset_tag = if settings.quota_reset_tag.trim().is_empty() {
            String::new()
        } else {
            crate::editable::tag(&settings.quota_reset_tag)?
        };
        Ok(Self {
            default_country,
            link_by_phone: settings.link_by_phone,
            link_by_email: settings.link_by_email,
            quota_reset_tag,
        })
    }
}
