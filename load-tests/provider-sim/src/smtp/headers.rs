//! A small RFC 5322 header section parser: field names and unfolded values, nothing decoded.

use crate::model::SmtpHeader;

/// Splits `raw` into its header fields and the offset where the body starts.
///
/// The header section ends at the first empty line (the body starts after it), or at the
/// first line that is neither a field nor a continuation (the body starts at that line).
/// A continuation line (leading space or tab) is appended to the previous field with its
/// whitespace kept, which is RFC 5322 unfolding; values are trimmed.
pub(crate) fn parse(raw: &str) -> (Vec<SmtpHeader>, usize) {
    let mut headers: Vec<SmtpHeader> = Vec::new();
    let mut offset = 0;
    let mut body_start = raw.len();
    while offset < raw.len() {
        let end = raw[offset..]
            .find('\n')
            .map_or(raw.len(), |index| offset + index + 1);
        let line = raw[offset..end].strip_suffix('\n').unwrap_or(&raw[offset..end]);
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            body_start = end;
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let Some(last) = headers.last_mut() {
                last.value.push_str(line);
            }
        } else {
            match line.split_once(':') {
                Some((name, value)) if is_field_name(name) => headers.push(SmtpHeader {
                    name: name.to_owned(),
                    value: value.to_owned(),
                }),
                _ => {
                    body_start = offset;
                    break;
                }
            }
        }
        offset = end;
    }
    for header in &mut headers {
        let trimmed = header.value.trim();
        if trimmed.len() != header.value.len() {
            header.value = trimmed.to_owned();
        }
    }
    (headers, body_start)
}

/// Printable US-ASCII except `:` (RFC 5322 §3.6.8 `ftext`).
fn is_field_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|byte| (33..=126).contains(&byte) && byte != b':')
}

/// The first field called `name` (case-insensitive).
pub(crate) fn first(headers: &[SmtpHeader], name: &str) -> Option<String> {
    headers
        .iter()
        .find(|header| header.name.eq_ignore_ascii_case(name))
        .map(|header| header.value.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folded_fields_are_unfolded_and_the_body_follows_the_blank_line() {
        let raw = "Message-ID: <a@x>\r\nReferences: <r1@x>\r\n\t<r2@x>\r\n  <r3@x>\r\nSubject:  hi \r\n\r\nbody\r\n";
        let (headers, body) = parse(raw);
        assert_eq!(headers.len(), 3);
        assert_eq!(first(&headers, "message-id").as_deref(), Some("<a@x>"));
        assert_eq!(
            first(&headers, "REFERENCES").as_deref(),
            Some("<r1@x>\t<r2@x>  <r3@x>")
        );
        assert_eq!(first(&headers, "Subject").as_deref(), Some("hi"));
        assert_eq!(&raw[body..], "body\r\n");
    }

    #[test]
    fn odd_input_never_panics() {
        for raw in [
            "",
            "\r\n",
            " leading continuation\r\n\r\nx",
            "no colon line\r\nA: b",
            "A: b",
            "A: b\n\nbody",
            ": empty name\r\n",
            "Ü: x\r\n",
        ] {
            let (headers, body) = parse(raw);
            assert!(body <= raw.len());
            assert!(headers.len() <= 1, "{raw:?}");
        }
        let (headers, body) = parse("no colon line\r\nA: b");
        assert!(headers.is_empty());
        assert_eq!(body, 0);
    }
}
