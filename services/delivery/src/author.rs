//! Author kinds as delivery stores them.

use switchboard_proto::delivery::v1::AuthorKind;

const KINDS: [(AuthorKind, &str); 5] = [
    (AuthorKind::Agent, "agent"),
    (AuthorKind::Bot, "bot"),
    (AuthorKind::Workflow, "workflow"),
    (AuthorKind::Broadcast, "broadcast"),
    (AuthorKind::Api, "api"),
];

/// The stored name of a proto author kind; `None` for unspecified or unknown values.
pub fn stored(value: i32) -> Option<&'static str> {
    let kind = AuthorKind::try_from(value).ok()?;
    KINDS
        .iter()
        .find(|(known, _)| *known == kind)
        .map(|(_, name)| *name)
}

/// The proto author kind of a stored name.
pub fn from_stored(name: &str) -> AuthorKind {
    KINDS
        .iter()
        .find(|(_, known)| *known == name)
        .map_or(AuthorKind::Unspecified, |(kind, _)| *kind)
}

/// True for automated senders that need the contact's bot subscription (and e-mail opt-in).
pub fn is_automated_bulk(kind: AuthorKind) -> bool {
    matches!(kind, AuthorKind::Bot | AuthorKind::Broadcast)
}
