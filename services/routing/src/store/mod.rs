//! The SQL of the routing API, one module per entity: one function per query, typed ids in,
//! proto values (or plain rows) out. Handlers in `grpc` parse, authorize and call these.
//!
//! The hand-out and event-log SQL that runs inside conversation changes stays with
//! `assignment`, `changes`, `bot` and `event_log`.

pub(crate) mod agents;
pub(crate) mod conversations;
pub(crate) mod messages;
pub(crate) mod notes;
pub(crate) mod settings;
pub(crate) mod snippets;
pub(crate) mod teams;

use tokio_postgres::error::SqlState;

use crate::RoutingError;

pub(crate) use crate::error::stored_id;

/// Page size when the caller names none.
pub(crate) const DEFAULT_PAGE_SIZE: u32 = 100;

/// Where a keyset page starts: after the row with this (time, id), or at the beginning.
#[derive(Debug, Clone, Default)]
pub(crate) struct After {
    /// The sort time of the last row of the previous page.
    pub(crate) at: Option<chrono::DateTime<chrono::Utc>>,
    /// The tie-breaker of the last row of the previous page.
    pub(crate) key: Option<String>,
}

impl After {
    /// The position a page request names (its token), checked.
    pub(crate) fn of(
        page: Option<&switchboard_proto::common::v1::PageRequest>,
    ) -> Result<Self, RoutingError> {
        let (at, key) = switchboard_server::paging::parse_cursor(page)?.unzip();
        Ok(Self { at, key })
    }
}

/// One page of rows and the token of the next page (empty on the last page).
#[derive(Debug)]
pub(crate) struct Page<T> {
    /// The rows, in order.
    pub(crate) items: Vec<T>,
    /// The token of the next page; empty when this is the last.
    pub(crate) next_page_token: String,
}

impl<T> Page<T> {
    /// The page response of the proto API.
    pub(crate) fn response(&self) -> switchboard_proto::common::v1::PageResponse {
        switchboard_proto::common::v1::PageResponse {
            next_page_token: self.next_page_token.clone(),
        }
    }
}

/// Maps a unique violation to `AlreadyExists` (`what` names the clash), anything else to a
/// store failure.
pub(crate) fn unique_violation(error: tokio_postgres::Error, what: impl FnOnce() -> String) -> RoutingError {
    if error.code() == Some(&SqlState::UNIQUE_VIOLATION) {
        RoutingError::AlreadyExists(what())
    } else {
        RoutingError::from(error)
    }
}

/// Pages through `rows` of a keyset query limited to `limit`: maps each with `map` and takes
/// the next page's (time, id) from the last row with `position`.
pub(crate) fn page<T>(
    rows: &[tokio_postgres::Row],
    limit: i64,
    map: impl FnMut(&tokio_postgres::Row) -> Result<T, RoutingError>,
    position: impl FnOnce(&tokio_postgres::Row) -> (chrono::DateTime<chrono::Utc>, String),
) -> Result<Page<T>, RoutingError> {
    let items = rows.iter().map(map).collect::<Result<Vec<_>, _>>()?;
    let next_page_token = switchboard_server::paging::next_page_token(rows.len(), limit, || {
        rows.last().map(position).unwrap_or_default()
    });
    Ok(Page {
        items,
        next_page_token,
    })
}
