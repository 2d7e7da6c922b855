//! Validation of API input; every message names the field and the rule.

use std::collections::BTreeMap;

use crate::TenancyError;

/// Longest display name.
const MAX_NAME_CHARS: usize = 200;
/// Longest provider account id.
const MAX_EXTERNAL_ID_CHARS: usize = 200;
/// Longest setting value.
const MAX_SETTING_BYTES: usize = 4 * 1024;
/// Longest secret value.
const MAX_SECRET_BYTES: usize = 16 * 1024;
/// Most settings or secrets per account.
const MAX_ENTRIES: usize = 50;

pub(crate) fn name(field: &str, value: &str) -> Result<String, TenancyError> {
    let trimmed = value.trim();
    let length = trimmed.chars().count();
    if length == 0 || length > MAX_NAME_CHARS || trimmed.chars().any(char::is_control) {
        return Err(TenancyError::Invalid(format!(
            "{field} must be 1 to {MAX_NAME_CHARS} characters without control characters"
        )));
    }
    Ok(trimmed.to_owned())
}

pub(crate) fn external_id(value: &str) -> Result<String, TenancyError> {
    let length = value.chars().count();
    if length == 0
        || length > MAX_EXTERNAL_ID_CHARS
        || value.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(TenancyError::Invalid(format!(
            "external_id must be 1 to {MAX_EXTERNAL_ID_CHARS} characters without spaces (the provider's id of the account, e.g. the WhatsApp phone_number_id)"
        )));
    }
    Ok(value.to_owned())
}

pub(crate) fn base_url(value: &str) -> Result<String, TenancyError> {
    if value.is_empty() {
        return Ok(String::new());
    }
    let parsed: Result<http::Uri, _> = value.parse();
    let valid = parsed.is_ok_and(|uri| {
        matches!(uri.scheme_str(), Some("http" | "https")) && uri.host().is_some_and(|host| !host.is_empty())
    });
    if !valid || value.len() > 2_000 {
        return Err(TenancyError::Invalid(format!(
            "base_url {value:?} must be an absolute http(s) URL such as https://graph.facebook.com, or empty for the provider's default"
        )));
    }
    Ok(value.trim_end_matches('/').to_owned())
}

fn entry_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

pub(crate) fn settings(values: &BTreeMap<String, String>) -> Result<(), TenancyError> {
    entries("settings", values, MAX_SETTING_BYTES)
}

pub(crate) fn secrets(values: &BTreeMap<String, String>) -> Result<(), TenancyError> {
    entries("secrets", values, MAX_SECRET_BYTES)
}

fn entries(
    field: &str,
    values: &BTreeMap<String, String>,
    max_value_bytes: usize,
) -> Result<(), TenancyError> {
    if values.len() > MAX_ENTRIES {
        return Err(TenancyError::Invalid(format!(
            "{field} may hold at most {MAX_ENTRIES} entries"
        )));
    }
    for (name, value) in values {
        if !entry_name_ok(name) {
            return Err(TenancyError::Invalid(format!(
                "{field} name {:?} must be 1 to 64 of [a-z0-9_]",
                name.chars().take(80).collect::<String>()
            )));
        }
        if value.len() > max_value_bytes {
            return Err(TenancyError::Invalid(format!(
                "{field}.{name} is longer than {max_value_bytes} bytes"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_must_be_absolute_http() {
        assert_eq!(
            base_url("https://graph.facebook.com/").unwrap(),
            "https://graph.facebook.com"
        );
        assert_eq!(base_url("").unwrap(), "");
        assert!(base_url("graph.facebook.com").is_err());
        assert!(base_url("ftp://x").is_err());
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(name("name", "  Main line ").unwrap(), "Main line");
        assert!(name("name", "").is_err());
        assert!(name("name", &"x".repeat(201)).is_err());
        assert!(external_id("106540352242922").is_ok());
        assert!(external_id("has space").is_err());
    }

    #[test]
    fn entry_names_are_restricted() {
        let mut values = BTreeMap::new();
        values.insert("app_secret".to_owned(), "s".to_owned());
        assert!(secrets(&values).is_ok());
        values.insert("Bad-Name".to_owned(), "s".to_owned());
        assert!(secrets(&values).is_err());
    }
}
