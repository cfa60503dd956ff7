//! Receiving a package upload: a `multipart/form-data` body streamed to a
//! temporary file, never held whole in memory.
//!
//! The body is parsed with `multer` straight from the request stream, and
//! the file part is written chunk by chunk as it arrives. `multer` buffers
//! everything a stream has ready before it parses, so the stream is fed to
//! it one chunk per poll (`OneChunkPerPoll`): memory stays at a chunk or
//! two whatever the upload's size and however fast the client sends. The
//! request body limit is the server's limit layer (413). The temporary file
//! is deleted when the [`Received`] upload is dropped, whatever happened.

use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::http::{StatusCode, header};
use futures::{Stream, StreamExt as _};
use http_body_util::LengthLimitError;
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

/// Hands the inner stream's chunks out one per poll: before each chunk it
/// answers `Pending` once (having woken the task), which ends `multer`'s
/// read-everything-ready loop after a single chunk.
struct OneChunkPerPoll<S> {
    inner: S,
    yielded: bool,
}

impl<S: Stream + Unpin> Stream for OneChunkPerPoll<S> {
    type Item = S::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        if !self.yielded {
            self.yielded = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        self.yielded = false;
        self.inner.poll_next_unpin(cx)
    }
}

fn is_length_limit(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(e) = current {
        if e.is::<LengthLimitError>() {
            return true;
        }
        current = e.source();
    }
    false
}

fn multipart_error(e: &multer::Error) -> ApiError {
    let too_large = match e {
        multer::Error::StreamSizeExceeded { .. } | multer::Error::FieldSizeExceeded { .. } => true,
        multer::Error::StreamReadFailed(source) => is_length_limit(source.as_ref()),
        _ => false,
    };
    if too_large {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request body too large (see `packages serve --max-body-mib`)",
        );
    }
    match e {
        multer::Error::StreamReadFailed(source) => ApiError::bad_request(format!(
            "the request body could not be read: {}",
            source
                .source()
                .map_or_else(|| source.to_string(), ToString::to_string)
        )),
        other => ApiError::bad_request(format!("invalid multipart body: {other}")),
    }
}

fn not_multipart() -> ApiError {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        format!(
            "expected a `multipart/form-data` body with the package in a `{PACKAGE_FIELD}` file field (curl -F {PACKAGE_FIELD}=@FILE.apk)"
        ),
    )
}

/// Reads a multipart upload: the `package` file field to a temporary file,
/// and the text fields named in `text_fields` (any other field is refused).
pub async fn receive(
    state: &ApiState,
    request: Request,
    text_fields: &[&str],
) -> Result<Received, ApiError> {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let is_form = content_type
        .split(';')
        .next()
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("multipart/form-data"));
    if !is_form {
        return Err(not_multipart());
    }
    let boundary = multer::parse_boundary(content_type).map_err(|_| not_multipart())?;
    let stream = OneChunkPerPoll {
        inner: request.into_body().into_data_stream(),
        yielded: false,
    };
    let mut multipart = multer::Multipart::new(stream, boundary);
    let mut package: Option<(tempfile::TempPath, String, u64)> = None;
    let mut fields = Vec::new();
    while let Some(mut field) = multipart
        .next_field()
        .await
        .map_err(|e| multipart_error(&e))?
    {
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
                Some(dir) => tempfile::Builder::new().prefix("upload-").tempfile_in(dir),
                None => tempfile::Builder::new().prefix("upload-").tempfile(),
            }
            .map_err(|e| ApiError::internal(&format!("cannot create upload file: {e}")))?;
            let (file, path) = temp.into_parts();
            let mut file = tokio::fs::File::from_std(file);
            let mut size = 0u64;
            while let Some(chunk) = field.chunk().await.map_err(|e| multipart_error(&e))? {
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
            while let Some(chunk) = field.chunk().await.map_err(|e| multipart_error(&e))? {
                value.extend_from_slice(&chunk);
                if value.len() > MAX_TEXT_FIELD {
                    return Err(ApiError::bad_request(format!(
                        "field `{name}` is longer than {MAX_TEXT_FIELD} bytes"
                    )));
                }
            }
            let value = String::from_utf8(value)
                .map_err(|_| ApiError::bad_request(format!("field `{name}` is not UTF-8 text")))?;
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
