//! The fields of a contact a person may write (create, update, import), validated and
//! normalized the same way for every entry point.

use std::collections::{BTreeSet, HashMap};

use phonenumber::country::Id as CountryId;
use switchboard_proto::contacts::v1 as proto;

use crate::ContactsError;
use crate::fields::FieldDefinition;
use crate::model::Contact;
use switchboard_domain::normalize::{PhoneOrigin, normalize_email, normalize_phone};

/// Longest name, in characters.
const MAX_NAME_CHARS: usize = 200;
/// Longest tag, in characters.
const MAX_TAG_CHARS: usize = 64;
/// Most tags on one contact.
pub(crate) const MAX_TAGS: usize = 100;

/// The writable fields of a contact.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Editable {
    /// Given name.
    pub first_name: String,
    /// Family name.
    pub last_name: String,
    /// Display name.
    pub display_name: String,
    /// Canonical e-mail.
    pub email: Option<String>,
    /// E.164 phone.
    pub phone: Option<String>,
    /// Username.
    pub username: Option<String>,
    /// Avatar URL.
    pub avatar_url: Option<String>,
    /// Locale.
    pub locale: Option<String>,
    /// Typed custom field values.
    pub custom_fields: serde_json::Map<String, serde_json::Value>,
    /// Sorted unique tags.
    pub tags: Vec<String>,
}

/// The mask paths of the standard writable fields.
pub(crate) const STANDARD_PATHS: [&str; 9] = [
    "first_name",
    "last_name",
    "display_name",
    "email",
    "phone",
    "username",
    "avatar_url",
    "locale",
    "tags",
];

fn name(field: &str, value: &str) -> Result<String, ContactsError> {
    let value = value.trim();
    if value.chars().count() > MAX_NAME_CHARS || value.chars().any(char::is_control) {
        return Err(ContactsError::invalid(format!(
            "{field}: at most {MAX_NAME_CHARS} characters, no control characters"
        )));
    }
    Ok(value.to_owned())
}

fn optional(value: &str) -> Option<&str> {
    let value = value.trim();
    (!value.is_empty()).then_some(value)
}

/// Checks and normalizes one tag.
pub(crate) fn tag(value: &str) -> Result<String, ContactsError> {
    let value = value.trim();
    if value.is_empty() || value.chars().count() > MAX_TAG_CHARS || value.chars().any(char::is_control) {
        return Err(ContactsError::invalid(format!(
            "tag {value:?}: 1 to {MAX_TAG_CHARS} characters, no control characters"
        )));
    }
    Ok(value.to_owned())
}

/// Checks tags and returns them sorted and unique.
pub(crate) fn tags(values: &[String]) -> Result<Vec<String>, ContactsError> {
    let set: BTreeSet<String> = values.iter().map(|value| tag(value)).collect::<Result<_, _>>()?;
    if set.len() > MAX_TAGS {
        return Err(ContactsError::invalid(format!(
            "tags: at most {MAX_TAGS} per contact"
        )));
    }
    Ok(set.into_iter().collect())
}

/// The context values are checked in.
pub(crate) struct Rules<'a> {
    pub(crate) fields: &'a HashMap<String, FieldDefinition>,
    pub(crate) country: Option<CountryId>,
}

impl Rules<'_> {
    /// Checks one standard field of `contact` and writes it into `into`.
    pub(crate) fn apply(
        &self,
        path: &str,
        contact: &proto::Contact,
        into: &mut Editable,
    ) -> Result<(), ContactsError> {
        match path {
            "first_name" => into.first_name = name(path, &contact.first_name)?,
            "last_name" => into.last_name = name(path, &contact.last_name)?,
            "display_name" => into.display_name = name(path, &contact.display_name)?,
            "email" => {
                into.email = optional(&contact.email)
                    .map(|email| {
                        normalize_email(email).map_err(|error| {
                            ContactsError::invalid_as("INVALID_EMAIL", format!("email: {error}"))
                        })
                    })
                    .transpose()?;
            }
            "phone" => {
                into.phone = optional(&contact.phone)
                    .map(|phone| {
                        normalize_phone(phone, PhoneOrigin::Entered, self.country).map_err(|error| {
                            ContactsError::invalid_as("INVALID_PHONE", format!("phone: {error}"))
                        })
                    })
                    .transpose()?;
            }
            "username" => into.username = optional(&name(path, &contact.username)?).map(str::to_owned),
            "avatar_url" => {
                into.avatar_url = optional(&contact.avatar_url)
                    .map(|url| {
                        let valid = (url.starts_with("https://") || url.starts_with("http://"))
                            && url.len() <= 2_048
                            && !url.chars().any(|c| c.is_whitespace() || c.is_control());
                        if valid {
                            Ok(url.to_owned())
                        } else {
                            Err(ContactsError::invalid(
                                "avatar_url: an http(s) URL of at most 2048 bytes",
                            ))
                        }
                    })
                    .transpose()?;
            }
            "locale" => {
                into.locale = optional(&contact.locale)
                    .map(|locale| {
                        let valid = locale.len() <= 35
                            && locale
                                .chars()
                                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
                        if valid {
                            Ok(locale.to_owned())
                        } else {
                            Err(ContactsError::invalid(
                                "locale: a language tag such as en or pt-BR",
                            ))
                        }
                    })
                    .transpose()?;
            }
            "tags" => into.tags = tags(&contact.tags)?,
            other => {
                return Err(ContactsError::invalid_as(
                    "UNKNOWN_FIELD",
                    format!(
                        "update_mask: {other:?} is not a writable field; use {} or custom_fields.<key>",
                        STANDARD_PATHS.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Checks one custom field value (`None` clears it) and writes it into `into`.
    pub(crate) fn apply_custom(
        &self,
        key: &str,
        value: Option<&proto::FieldValue>,
        into: &mut Editable,
    ) -> Result<(), ContactsError> {
        let definition = self.fields.get(key).ok_or_else(|| {
            ContactsError::invalid_as(
                "UNKNOWN_FIELD",
                format!("custom_fields.{key}: no such custom field; define it first (DefineField)"),
            )
        })?;
        match value {
            Some(value) => {
                let stored = definition.check_value(value, self.country)?;
                into.custom_fields.insert(key.to_owned(), stored);
            }
            None => {
                into.custom_fields.remove(key);
            }
        }
        Ok(())
    }

    /// Every writable field of a new contact.
    pub(crate) fn new_contact(&self, contact: &proto::Contact) -> Result<Editable, ContactsError> {
        let mut editable = Editable::default();
        for path in STANDARD_PATHS {
            self.apply(path, contact, &mut editable)?;
        }
        for (key, value) in &contact.custom_fields {
            self.apply_custom(key, Some(value), &mut editable)?;
        }
        Ok(editable)
    }
}

impl Editable {
    /// The writable fields of a stored contact.
    pub(crate) fn of(contact: &Contact) -> Self {
        Self {
            first_name: contact.first_name.clone(),
            last_name: contact.last_name.clone(),
            display_name: contact.display_name.clone(),
            email: contact.email.clone(),
            phone: contact.phone.clone(),
            username: contact.username.clone(),
            avatar_url: contact.avatar_url.clone(),
            locale: contact.locale.clone(),
            custom_fields: contact.custom_fields.clone(),
            tags: contact.tags.clone(),
        }
    }

    /// Returns true when the standard field at `path` differs between the two.
    pub(crate) fn differs(&self, other: &Self, path: &str) -> bool {
        match path {
            "first_name" => self.first_name != other.first_name,
            "last_name" => self.last_name != other.last_name,
            "display_name" => self.display_name != other.display_name,
            "email" => self.email != other.email,
            "phone" => self.phone != other.phone,
            "username" => self.username != other.username,
            "avatar_url" => self.avatar_url != other.avatar_url,
            "locale" => self.locale != other.locale,
            "tags" => self.tags != other.tags,
            _ => false,
        }
    }
}
