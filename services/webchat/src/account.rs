//! A web chat channel account as the widget needs it: who may embed it, how it looks, which
//! pre-chat fields it asks for, and its secrets.

use std::sync::Arc;

use serde::Serialize;
use switchboard_directory::ResolvedAccount;
use switchboard_domain::ChannelAccountId;

/// Whether the pre-chat form shows a field and whether it must be filled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldRule {
    /// Shown and required.
    Required,
    /// Shown, may stay empty.
    Optional,
    /// Not shown; a value sent anyway is ignored.
    Hidden,
}

impl FieldRule {
    fn parse(value: Option<&str>, default: Self) -> Self {
        match value.map(str::trim) {
            Some("required") => Self::Required,
            Some("optional") => Self::Optional,
            Some("hidden") => Self::Hidden,
            _ => default,
        }
    }
}

/// The pre-chat form of an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Prechat {
    /// The visitor's name.
    pub name: FieldRule,
    /// The visitor's e-mail address.
    pub email: FieldRule,
    /// The visitor's phone number (E.164).
    pub phone: FieldRule,
}

/// Which origins may embed the widget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedOrigins {
    /// Any origin (`*`; development only).
    Any,
    /// These origins (scheme://host[:port], lowercase).
    Only(Vec<String>),
}

impl AllowedOrigins {
    fn parse(value: Option<&str>) -> Self {
        match value.map(str::trim) {
            Some("*") => Self::Any,
            Some(list) => Self::Only(
                list.split(',')
                    .map(|origin| origin.trim().trim_end_matches('/').to_ascii_lowercase())
                    .filter(|origin| !origin.is_empty())
                    .collect(),
            ),
            None => Self::Only(Vec::new()),
        }
    }

    /// True when a request from `origin` may use the account; `own_origin` is the origin
    /// Switchboard itself is reached at (its demo page is always allowed).
    pub fn allows(&self, origin: &str, own_origin: Option<&str>) -> bool {
        let origin = origin.trim_end_matches('/').to_ascii_lowercase();
        if own_origin.is_some_and(|own| own.eq_ignore_ascii_case(&origin)) {
            return true;
        }
        match self {
            Self::Any => true,
            Self::Only(list) => list.contains(&origin),
        }
    }
}

/// A resolved web chat account.
#[derive(Debug, Clone)]
pub struct WebchatAccount {
    /// The account id, parsed once at the edge.
    id: ChannelAccountId,
    /// The directory's view (ids, workspace, secrets).
    pub resolved: Arc<ResolvedAccount>,
    /// Who may embed the widget.
    pub origins: AllowedOrigins,
    /// The pre-chat form.
    pub prechat: Prechat,
    /// Header text.
    pub title: String,
    /// The widget's first (local) bubble.
    pub greeting: String,
    /// `#rrggbb`.
    pub primary_color: String,
    /// Whether `GET demo` serves the demo page.
    pub demo_page: bool,
}

/// The colour used when an account sets none or an invalid one.
const DEFAULT_COLOR: &str = "#1f6feb";

impl WebchatAccount {
    /// Reads the settings of account `id` (unknown or invalid values fall back to defaults).
    pub fn new(id: ChannelAccountId, resolved: Arc<ResolvedAccount>) -> Self {
        let setting = |name: &str| resolved.setting(name).filter(|value| !value.trim().is_empty());
        let color = setting("primary_color")
            .filter(|color| {
                color.len() == 7
                    && color.starts_with('#')
                    && color[1..].chars().all(|c| c.is_ascii_hexdigit())
            })
            .unwrap_or(DEFAULT_COLOR)
            .to_owned();
        Self {
            id,
            origins: AllowedOrigins::parse(setting("allowed_origins")),
            prechat: Prechat {
                name: FieldRule::parse(setting("prechat_name"), FieldRule::Optional),
                email: FieldRule::parse(setting("prechat_email"), FieldRule::Optional),
                phone: FieldRule::parse(setting("prechat_phone"), FieldRule::Hidden),
            },
            title: setting("title").unwrap_or("Chat with us").to_owned(),
            greeting: setting("greeting")
                .unwrap_or("Hi! How can we help you today?")
                .to_owned(),
            primary_color: color,
            demo_page: setting("demo_page") == Some("true"),
            resolved,
        }
    }

    /// The account id.
    pub fn id(&self) -> &ChannelAccountId {
        &self.id
    }

    /// The key that signs session tokens.
    pub fn session_secret(&self) -> Option<&[u8]> {
        self.resolved.secret("session_secret")
    }

    /// The key of logged-in users' `user_hash`.
    pub fn identity_secret(&self) -> Option<&[u8]> {
        self.resolved.secret("identity_secret")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_compared_without_case_or_trailing_slash() {
        let origins = AllowedOrigins::parse(Some("https://Shop.example.com/, http://localhost:3000"));
        assert!(origins.allows("https://shop.example.com", None));
        assert!(origins.allows("http://localhost:3000/", None));
        assert!(!origins.allows("https://evil.example.com", None));
        assert!(!origins.allows("http://shop.example.com", None));
        assert!(origins.allows("http://127.0.0.1:8080", Some("http://127.0.0.1:8080")));
        assert!(!AllowedOrigins::parse(None).allows("https://shop.example.com", None));
        assert!(AllowedOrigins::parse(Some("*")).allows("https://any.example", None));
    }

    #[test]
    fn field_rules_fall_back_to_their_defaults() {
        assert_eq!(
            FieldRule::parse(Some("required"), FieldRule::Hidden),
            FieldRule::Required
        );
        assert_eq!(
            FieldRule::parse(Some("bogus"), FieldRule::Hidden),
            FieldRule::Hidden
        );
        assert_eq!(FieldRule::parse(None, FieldRule::Optional), FieldRule::Optional);
    }
}
