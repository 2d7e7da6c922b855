//! `multipart/form-data` (RFC 7578) bodies of parse webhooks, split with the MIME parser
//! (form data is MIME).

use mail_parser::{MessageParser, MimeHeaders};

/// One field of a form post.
pub(crate) struct FormField {
    pub name: String,
    pub filename: Option<String>,
    pub content_type: String,
    pub body: Vec<u8>,
}

/// Splits a `multipart/form-data` body (`content_type` carries the boundary) into its fields,
/// with the MIME parser (form data is MIME).
pub(crate) fn form_fields(content_type: &str, body: &[u8]) -> Option<Vec<FormField>> {
    if !content_type
        .trim_start()
        .to_ascii_lowercase()
        .starts_with("multipart/form-data")
        || !content_type.contains("boundary=")
        || content_type.contains(['\r', '\n'])
    {
        return None;
    }
    let mut document = format!("Content-Type: {content_type}\r\n\r\n").into_bytes();
    document.extend_from_slice(body);
    let message = MessageParser::default().parse(&document)?;
    let fields = message
        .parts
        .iter()
        .skip(1)
        .filter_map(|part| {
            let disposition = part.content_disposition()?;
            let name = disposition.attribute("name")?.to_owned();
            Some(FormField {
                name,
                filename: disposition.attribute("filename").map(str::to_owned),
                content_type: super::mime_type(part).unwrap_or_else(|| "text/plain".to_owned()),
                body: part.contents().to_vec(),
            })
        })
        .collect();
    Some(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_data_needs_a_boundary() {
        assert!(form_fields("multipart/form-data", b"").is_none());
        assert!(form_fields("application/json", b"{}").is_none());
        assert!(form_fields("multipart/form-data; boundary=x\r\nX-Injected: 1", b"").is_none());
    }

    #[test]
    fn fields_and_files_are_split() {
        let body = b"--b\r\nContent-Disposition: form-data; name=\"token\"\r\n\r\nabc\r\n--b\r\nContent-Disposition: form-data; name=\"attachment-1\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b--\r\n";
        let fields = form_fields("multipart/form-data; boundary=b", body).unwrap();
        assert_eq!(fields.len(), 2);
        assert_eq!(
            (fields[0].name.as_str(), fields[0].body.as_slice()),
            ("token", b"abc".as_slice())
        );
        assert_eq!(fields[1].filename.as_deref(), Some("a.txt"));
        assert_eq!(fields[1].content_type, "text/plain");
    }
}
