//! The contact as contacts last described it, kept on the conversation for search and for
//! snippet variables (routing never asks contacts synchronously).

use switchboard_proto::contacts::v1::Contact;

/// A conversation's copy of its contact's name, e-mail and phone.
pub(crate) struct ContactSnapshot {
    /// `{"first_name", "last_name", "name", "email", "phone"}`; `{}` when unknown.
    pub(crate) json: serde_json::Value,
    /// Lower-case name, e-mail and phone for trigram search; empty when unknown.
    pub(crate) search_text: String,
}

impl ContactSnapshot {
    /// The snapshot of `contact`, or an empty one (keeps what is stored).
    pub(crate) fn of(contact: Option<&Contact>) -> Self {
        let Some(contact) = contact else {
            return Self {
                json: serde_json::json!({}),
                search_text: String::new(),
            };
        };
        let name = display_name(contact);
        let search_text = [name.as_str(), contact.email.as_str(), contact.phone.as_str()]
            .iter()
            .filter(|part| !part.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase();
        Self {
            json: serde_json::json!({
                "first_name": contact.first_name,
                "last_name": contact.last_name,
                "name": name,
                "email": contact.email,
                "phone": contact.phone,
            }),
            search_text,
        }
    }
}

/// "First Last", else the channel's profile name.
fn display_name(contact: &Contact) -> String {
    let full = format!("{} {}", contact.first_name, contact.last_name);
    let full = full.trim();
    if full.is_empty() {
        contact.display_name.trim().to_owned()
    } else {
        full.to_owned()
    }
}
