//! Cursor pagination shared by every list API: the page size a request may ask for, and keyset
//! cursors (`<micros>.<key>`) naming the last item of the previous page by its sort key.

use chrono::{DateTime, Utc};
use switchboard_proto::common::v1::PageRequest;

/// Largest page any list call returns.
pub const MAX_PAGE_SIZE: u32 = 500;

/// The page size to use: the request's, capped at [`MAX_PAGE_SIZE`], or `default` when it names none.
pub fn page_size(page: Option<&PageRequest>, default: u32) -> i64 {
    let requested = page.map_or(0, |page| page.page_size);
    i64::from(if requested == 0 {
        default
    } else {
        requested.min(MAX_PAGE_SIZE)
    })
}

/// A page token that was not made by [`cursor_token`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("page.page_token: not a token this API returned")]
pub struct InvalidPageToken;

/// The token of a cursor after the item sorted at (`at`, `key`).
pub fn cursor_token(at: DateTime<Utc>, key: &str) -> String {
    format!("{}.{key}", at.timestamp_micros())
}

/// The next page's token: a cursor after `last` when the page came back full (`count` rows
/// for a `limit`), else empty (no more pages). `last` gives the last row's sort time and key.
pub fn next_page_token(count: usize, limit: i64, last: impl FnOnce() -> (DateTime<Utc>, String)) -> String {
    if count > 0 && i64::try_from(count).unwrap_or(i64::MAX) >= limit {
        let (at, key) = last();
        cursor_token(at, &key)
    } else {
        String::new()
    }
}

/// The request's page token as a cursor; `None` for the first page.
pub fn parse_cursor(page: Option<&PageRequest>) -> Result<Option<(DateTime<Utc>, String)>, InvalidPageToken> {
    let token = page.map_or("", |page| page.page_token.as_str());
    if token.is_empty() {
        return Ok(None);
    }
    let (micros, key) = token.split_once('.').ok_or(InvalidPageToken)?;
    let at = micros
        .parse::<i64>()
        .ok()
        .and_then(DateTime::from_timestamp_micros)
        .ok_or(InvalidPageToken)?;
    if key.is_empty() || key.len() > 200 {
        return Err(InvalidPageToken);
    }
    Ok(Some((at, key.to_owned())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(token: &str) -> PageRequest {
        PageRequest {
            page_size: 0,
            page_token: token.to_owned(),
        }
    }

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let at = DateTime::from_timestamp_micros(1_780_000_000_123_456).unwrap();
        let parsed = parse_cursor(Some(&page(&cursor_token(at, "ct_1.x"))))
            .unwrap()
            .unwrap();
        assert_eq!(parsed, (at, "ct_1.x".to_owned()));
        assert!(parse_cursor(None).unwrap().is_none());
        for garbage in ["x", "12", "abc.ct", ".ct"] {
            assert!(parse_cursor(Some(&page(garbage))).is_err(), "{garbage}");
        }
    }

    #[test]
    fn page_sizes_are_capped() {
        let ask = |size| PageRequest {
            page_size: size,
            page_token: String::new(),
        };
        assert_eq!(page_size(None, 100), 100);
        assert_eq!(page_size(Some(&ask(0)), 50), 50);
        assert_eq!(page_size(Some(&ask(7)), 50), 7);
        assert_eq!(page_size(Some(&ask(10_000)), 50), 500);
    }
}
