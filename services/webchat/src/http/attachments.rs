//! Attachments: a visitor uploads a file (refused when executable), then sends its id in a
//! message; anyone with the unguessable URL downloads it.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use sha2::Digest as _;
use switchboard_domain::ChannelAccountId;

use crate::Webchat;
use crate::error::ApiError;
use crate::extract::VisitorSession;
use crate::store::Attachment;

/// The type of an upload that declares none (or an unusable one).
const OCTET_STREAM: &str = "application/octet-stream";

/// The query of `POST attachments`.
#[derive(Debug, Deserialize)]
pub(super) struct UploadQuery {
    #[serde(default)]
    filename: String,
}

/// `POST attachments?filename=…`: the body is the file.
pub(super) async fn upload_attachment(
    State(webchat): State<Arc<Webchat>>,
    VisitorSession { account, visitor }: VisitorSession,
    headers: HeaderMap,
    Query(query): Query<UploadQuery>,
    body: Result<Bytes, BytesRejection>,
) -> Result<impl IntoResponse, ApiError> {
    if webchat.upload_limiter.check_key(&visitor.visitor_id).is_err() {
        return Err(ApiError::UploadRateLimited {
            per_minute: webchat.config.uploads_per_minute,
        });
    }
    let limit = webchat.config.max_attachment_bytes;
    let content = body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::AttachmentTooLarge { limit },
        _ => ApiError::UploadUnreadable(rejection),
    })?;
    if content.len() > limit {
        return Err(ApiError::AttachmentTooLarge { limit });
    }
    if content.is_empty() {
        return Err(ApiError::EmptyUpload);
    }
    let filename = sanitize_filename(&query.filename);
    let mime_type = declared_type(&headers);
    if let Some(reason) = executable(&content, &filename, &mime_type) {
        return Err(ApiError::AttachmentRefused(reason));
    }
    let attachment = Attachment {
        id: format!("att_{}", uuid::Uuid::new_v4().simple()),
        account_id: account.id().clone(),
        visitor_id: visitor.visitor_id.clone(),
        mime_type,
        filename,
        size_bytes: content.len() as i64,
        sha256: hex::encode(sha2::Sha256::digest(&content)),
    };
    webchat.store.insert_attachment(&attachment, &content).await?;
    let body = json!({"attachment": {
        "id": attachment.id,
        "url": webchat.attachment_url(account.id(), &attachment.id),
        "mime_type": attachment.mime_type,
        "filename": attachment.filename,
        "size": attachment.size_bytes,
    }});
    Ok((StatusCode::CREATED, Json(body)))
}

/// The upload's `Content-Type` as it is served back: only a plain `type/subtype` is kept.
fn declared_type(headers: &HeaderMap) -> String {
    let declared = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or(OCTET_STREAM)
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if is_media_type(&declared) {
        declared
    } else {
        OCTET_STREAM.to_owned()
    }
}

/// Why a file is refused as executable (by its first bytes, its name or its declared type).
fn executable(content: &[u8], filename: &str, mime_type: &str) -> Option<&'static str> {
    use switchboard_channels::media::{executable_head, executable_name, executable_type};
    if executable_head(content) {
        Some("its first bytes are an executable's")
    } else if executable_name(filename) {
        Some("an executable file name")
    } else if executable_type(mime_type) {
        Some("an executable content type")
    } else {
        None
    }
}

/// True for a bare `type/subtype` of RFC 6838 name characters.
fn is_media_type(value: &str) -> bool {
    let name = |part: &str| {
        !part.is_empty()
            && part.len() <= 127
            && part
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&byte))
    };
    value
        .split_once('/')
        .is_some_and(|(kind, subtype)| name(kind) && name(subtype))
}

/// A file name without paths or control characters, at most 200 characters.
fn sanitize_filename(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    let clean: String = base
        .chars()
        .filter(|c| !c.is_control() && *c != '"')
        .take(200)
        .collect();
    if clean.trim().is_empty() {
        "attachment".to_owned()
    } else {
        clean
    }
}

/// `GET attachments/{id}`: the file, inline only for raster images, never sniffed.
pub(super) async fn download_attachment(
    State(webchat): State<Arc<Webchat>>,
    Path((account, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let account = ChannelAccountId::parse(&account).map_err(|_| ApiError::AttachmentNotFound)?;
    let (attachment, content) = webchat
        .store
        .attachment(&account, &id)
        .await?
        .ok_or(ApiError::AttachmentNotFound)?;
    // Images are shown inline; anything else downloads (never rendered as a page of ours).
    let inline = attachment.mime_type.starts_with("image/") && attachment.mime_type != "image/svg+xml";
    let disposition = format!(
        "{}; filename=\"{}\"",
        if inline { "inline" } else { "attachment" },
        attachment
            .filename
            .replace(|c: char| !c.is_ascii() || c == '\\', "_")
    );
    let mut response = content.into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&attachment.mime_type) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=86400"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox"),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_media_types_are_kept() {
        assert!(is_media_type("image/png"));
        assert!(is_media_type("application/vnd.ms-excel"));
        assert!(!is_media_type("image/png,text/html"));
        assert!(!is_media_type("text/html\r\nx: y"));
        assert!(!is_media_type("image"));
    }

    #[test]
    fn file_names_lose_their_paths() {
        assert_eq!(sanitize_filename("../../etc/passwd"), "passwd");
        assert_eq!(sanitize_filename("C:\\x\\report.pdf"), "report.pdf");
        assert_eq!(sanitize_filename(""), "attachment");
    }
}
