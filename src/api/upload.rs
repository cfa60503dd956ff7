//! Receiving a package upload: a `multipart/form-data` body streamed to a
//! temporary file, never held whole in memory.
//!
//! The file part is written chunk by chunk as it arrives (memory stays at
//! a few chunks whatever the size); the request body limit is enforced by
//! the server's limit layer, which ends the stream with 413. The temporary
//! file is deleted when the [`Received`] upload is dropped, whatever happened.

use std::path::Path;

use axum::extract::Multipart;
use axum::extract::multipart::{MultipartError, MultipartRejection};
use axum::http::StatusCode;
use tokio::io::AsyncWriteExt;

use super::ApiState;
use super::error::ApiError;
use crate::repo::Segment;

/// The form field carrying the package file (the name the old service used).
pub const PACKAGE_FIELD: &str = "package";

/// Longest text field accepted.
const MAX_TEXT_FIELD: usize = 256;

/// An upload received to a temporary file.
#[derive(Debug)]
pub struct Received {
    file: tempfile::TempPath,
    /// The file name the client sent (validated), or `package`.
    pub display_name: String,
    /// Bytes received.
    pub size: u64,
    /// The text fields, in order.
    pub fields: Vec<(String, String)>,
}

impl Received {
    /// Where the package is on local disk.
    pub fn path(&self) -> &Path {
        &self.file
    }

    /// The values of text field `name`.
    pub fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.fields
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

fn multipart_error(e: MultipartError) -> ApiError {
    let status = e.status();
    let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
        "request body too large (see `packages serve --max-body`)".to_owned()
    } else {
        format!("invalid multipart body: {}", e.body_text())
    };
    ApiError::new(status, message)
}

fn rejection_error(e: &MultipartRejection) -> ApiError {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        format!(
            "expected a `multipart/form-data` body with the package in a `{PACKAGE_FIELD}` file field (curl -F {PACKAGE_FIELD}=@FILE.apk): {}",
            e.body_text()
        ),
    )
}

/// Reads a multipart upload: the `package` file field to a temporary file,
/// and the text fields named in `text_fields` (any other field is refused).
pub async fn receive(
    state: &ApiState,
    multipart: Result<Multipart, MultipartRejection>,
    text_fields: &[&str],
) -> Result<Received, ApiError> {
    let mut multipart = multipart.map_err(|e| rejection_error(&e))?;
    let mut package: Option<(tempfile::TempPath, String, u64)> = None;
    let mut fields = Vec::new();
    while let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? {
        let name = field.name().unwrap_or_default().to_owned();
        if name == PACKAGE_FIELD {
            if package.is_some() {
                return Err(ApiError::bad_request(format!(
                    "more than one `{PACKAGE_FIELD}` field: upload one package per request"
                )));
            }
            let display_name = match field.file_name() {
                None | Some("") => PACKAGE_FIELD.to_owned(),
                Some(name) => Segment::parse("file name", name)?.to_string(),
            };
            let temp = match &state.config().upload_dir {
                Some(dir) => tempfile::Builder::new()
                    .prefix("upload-")
                    .tempfile_in(dir),
                None => tempfile::Builder::new().prefix("upload-").tempfile(),
            }
            .map_err(|e| ApiError::internal(&format!("cannot create upload file: {e}")))?;
            let (file, path) = temp.into_parts();
            let mut file = tokio::fs::File::from_std(file);
            let mut size = 0u64;
            while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
                size += chunk.len() as u64;
                state.metrics().add_upload_bytes(chunk.len() as u64);
                file.write_all(&chunk)
                    .await
                    .map_err(|e| ApiError::internal(&format!("cannot write upload file: {e}")))?;
            }
            file.flush()
                .await
                .map_err(|e| ApiError::internal(&format!("cannot write upload file: {e}")))?;
            package = Some((path, display_name, size));
        } else if text_fields.contains(&name.as_str()) {
            let mut value = Vec::new();
            while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
                value.extend_from_slice(&chunk);
                if value.len() > MAX_TEXT_FIELD {
                    return Err(ApiError::bad_request(format!(
                        "field `{name}` is longer than {MAX_TEXT_FIELD} bytes"
                    )));
                }
            }
            let value = String::from_utf8(value).map_err(|_| {
                ApiError::bad_request(format!("field `{name}` is not UTF-8 text"))
            })?;
            fields.push((name, value.trim().to_owned()));
        } else {
            let mut known = vec![format!("`{PACKAGE_FIELD}`")];
            known.extend(text_fields.iter().map(|f| format!("`{f}`")));
            return Err(ApiError::bad_request(format!(
                "unknown form field `{}` (expected {})",
                name.escape_debug(),
                known.join(", ")
            )));
        }
    }
    let Some((file, display_name, size)) = package else {
        return Err(ApiError::bad_request(format!(
            "missing the `{PACKAGE_FIELD}` file field (send it as `-F {PACKAGE_FIELD}=@FILE.apk`)"
        )));
    };
    Ok(Received {
        file,
        display_name,
        size,
        fields,
    })
}
