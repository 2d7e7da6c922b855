//! Phone numbers to E.164 (libphonenumber's metadata through the `phonenumber` crate) and
//! e-mail addresses to one canonical spelling, so the same person is found however they were
//! written.

use phonenumber::Mode;
/// An ISO 3166-1 alpha-2 country, as libphonenumber knows it (from [`parse_country`]).
pub use phonenumber::country::Id as CountryId;

/// Why a phone number or e-mail address was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NormalizeError {
    /// The text is not a valid phone number.
    #[error("{0:?} is not a valid phone number{1}")]
    Phone(String, &'static str),
    /// The text is not an e-mail address.
    #[error("{0:?} is not an e-mail address")]
    Email(String),
    /// The country code is not an ISO 3166-1 alpha-2 code libphonenumber knows.
    #[error("{0:?} is not a known ISO 3166-1 alpha-2 country code")]
    Country(String),
}

/// Where a phone number came from, which decides how a number without `+` is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhoneOrigin {
    /// From a channel (WhatsApp wa_id, Twilio `From`): always international, `+` optional.
    Channel,
    /// Typed by a person (API, import, pre-chat form): national numbers use the workspace's
    /// default country.
    Entered,
}

/// Parses an ISO 3166-1 alpha-2 country code (any case).
pub fn parse_country(code: &str) -> Result<CountryId, NormalizeError> {
    code.trim()
        .to_ascii_uppercase()
        .parse::<CountryId>()
        .map_err(|_| NormalizeError::Country(code.to_owned()))
}

/// Returns `raw` in E.164 (`+4930123456`), or why it is not a valid number.
///
/// Formatting noise (spaces, dashes, dots, parentheses, a `tel:` prefix, the `00`
/// international prefix of the default country) is accepted.
pub fn normalize_phone(
    raw: &str,
    origin: PhoneOrigin,
    default_country: Option<CountryId>,
) -> Result<String, NormalizeError> {
    let trimmed = raw.trim();
    let text = trimmed.strip_prefix("tel:").unwrap_or(trimmed).trim();
    if text.is_empty() || text.len() > 64 {
        return Err(NormalizeError::Phone(raw.to_owned(), ""));
    }
    let international = text.starts_with('+');
    let digits_only = text.chars().all(|c| c.is_ascii_digit());
    let parsed = if !international && origin == PhoneOrigin::Channel && digits_only {
        // Channels give international numbers without the `+` (WhatsApp wa_id).
        phonenumber::parse(None, format!("+{text}"))
    } else if international {
        phonenumber::parse(None, text)
    } else {
        match default_country {
            Some(country) => phonenumber::parse(Some(country), text),
            None => {
                return Err(NormalizeError::Phone(
                    raw.to_owned(),
                    ": a national number needs the workspace's default_country, or write it with +<country code>",
                ));
            }
        }
    };
    let number = parsed.map_err(|_| NormalizeError::Phone(raw.to_owned(), ""))?;
    if !phonenumber::is_valid(&number) {
        return Err(NormalizeError::Phone(raw.to_owned(), ""));
    }
    Ok(number.format().mode(Mode::E164).to_string())
}

/// Returns the canonical form of an e-mail address: trimmed, `Name <addr>` and `mailto:`
/// unwrapped, lower-cased (providers treat addresses case-insensitively in practice).
pub fn normalize_email(raw: &str) -> Result<String, NormalizeError> {
    let mut text = raw.trim();
    if let (Some(open), true) = (text.rfind('<'), text.ends_with('>')) {
        text = &text[open + 1..text.len() - 1];
    }
    let text = text.strip_prefix("mailto:").unwrap_or(text).trim();
    let invalid = || NormalizeError::Email(raw.to_owned());
    let (local, domain) = text.rsplit_once('@').ok_or_else(invalid)?;
    let bad_char = |c: char| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';');
    if local.is_empty()
        || local.len() > 64
        || domain.len() > 253
        || local.contains('@') && !local.starts_with('"')
        || text.chars().any(bad_char)
        || !domain.contains('.')
        || domain.starts_with('.')
        || domain.ends_with('.')
        || domain.contains("..")
    {
        return Err(invalid());
    }
    Ok(text.to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn de() -> Option<CountryId> {
        Some(parse_country("de").unwrap())
    }

    #[test]
    fn national_numbers_use_the_default_country() {
        assert_eq!(
            normalize_phone("030 12345678", PhoneOrigin::Entered, de()).unwrap(),
            "+493012345678"
        );
        assert_eq!(
            normalize_phone(
                "(650) 253-0000",
                PhoneOrigin::Entered,
                Some(parse_country("US").unwrap())
            )
            .unwrap(),
            "+16502530000"
        );
        let error = normalize_phone("030 12345678", PhoneOrigin::Entered, None).unwrap_err();
        assert!(error.to_string().contains("default_country"), "{error}");
    }

    #[test]
    fn international_numbers_ignore_the_default_country() {
        for raw in [
            "+1 650-253-0000",
            "+1 (650) 253.0000",
            "tel:+16502530000",
            " +16502530000 ",
        ] {
            assert_eq!(
                normalize_phone(raw, PhoneOrigin::Entered, de()).unwrap(),
                "+16502530000",
                "{raw}"
            );
        }
        // The international dialling prefix of the default country.
        assert_eq!(
            normalize_phone("00 1 650 253 0000", PhoneOrigin::Entered, de()).unwrap(),
            "+16502530000"
        );
        assert_eq!(
            normalize_phone("+44 20 7946 0958", PhoneOrigin::Entered, None).unwrap(),
            "+442079460958"
        );
    }

    #[test]
    fn channel_numbers_without_plus_are_international() {
        // WhatsApp wa_id: digits with the country code, no `+`.
        assert_eq!(
            normalize_phone("16502530000", PhoneOrigin::Channel, de()).unwrap(),
            "+16502530000"
        );
        assert_eq!(
            normalize_phone("4915123456789", PhoneOrigin::Channel, None).unwrap(),
            "+4915123456789"
        );
    }

    #[test]
    fn invalid_numbers_are_refused() {
        for raw in [
            "",
            "hello",
            "+1 000",
            "123",
            "+999 1234567",
            "+1650253000012345678",
        ] {
            assert!(normalize_phone(raw, PhoneOrigin::Entered, de()).is_err(), "{raw}");
        }
        assert!(parse_country("XX").is_err());
    }

    #[test]
    fn emails_are_canonical() {
        assert_eq!(
            normalize_email(" Jane.Doe@Example.COM ").unwrap(),
            "jane.doe@example.com"
        );
        assert_eq!(
            normalize_email("Jane Doe <jane@example.com>").unwrap(),
            "jane@example.com"
        );
        assert_eq!(
            normalize_email("mailto:jane@example.com").unwrap(),
            "jane@example.com"
        );
        for raw in [
            "",
            "jane",
            "jane@",
            "@example.com",
            "jane@example",
            "ja ne@example.com",
            "a@b..c",
        ] {
            assert!(normalize_email(raw).is_err(), "{raw}");
        }
    }
}
