//! Keyset cursors: a page token names the last item of the previous page by its sort key.

use chrono::{DateTime, Utc};

use crate::ContactsError;

/// Largest page a list call returns.
pub(crate) const MAX_PAGE_SIZE: u32 = 500;
/// Page size when the caller names none.
pub(crate) const DEFAULT_PAGE_SIZE: u32 = 100;

/// The page size to use for a request.
pub(crate) fn page_size(page: Option<&switchboard_proto::common::v1::PageRequest>) -> i64 {
    let requested = page.map_or(0, |page| page.page_size);
    let size = if requested == 0 {
        DEFAULT_PAGE_SIZE
    } else {
        requested.min(MAX_PAGE_SIZE)
    };
    i64::from(size)
}

/// A cursor after the item sorted at (`at`, `id`).
pub(crate) fn token(at: DateTime<Utc>, id: &str) -> String {
    format!("{}.{id}", at.timestamp_micros())
}

/// Parses a token made by [`token`]; `None` for an empty token.
pub(crate) fn parse_token(token: &str) -> Result<Option<(DateTime<Utc>, String)>, ContactsError> {
    if token.is_empty() {
        return Ok(None);
    }
    let invalid = || ContactsError::invalid("page.page_token: not a token this API returned");
    let (micros, id) = token.split_once('.').ok_or_else(invalid)?;
    let micros: i64 = micros.parse().map_err(|_| invalid())?;
    let at = DateTime::from_timestamp_micros(micros).ok_or_else(invalid)?;
    if id.is_empty() || id.len() > 200 {
        return Err(invalid());
    }
    Ok(Some((at, id.to_owned())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_garbage_is_refused() {
        let at = DateTime::from_timestamp_micros(1_780_000_000_123_456).unwrap();
        let parsed = parse_token(&token(at, "ct_1.x")).unwrap().unwrap();
        assert_eq!(parsed, (at, "ct_1.x".to_owned()));
        assert!(parse_token("").unwrap().is_none());
        for garbage in ["x", "12", "abc.ct", ".ct"] {
            assert!(parse_token(garbage).is_err(), "{garbage}");
        }
    }
}
