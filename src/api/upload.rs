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
//!
//! Text fields are the only part held in memory, so they are bounded three
//! ways: [`MAX_TEXT_FIELD`] bytes each, [`MAX_TEXT_FIELDS`] of them and
//! [`MAX_TEXT_BYTES`] in all; past a bound the request is refused (413) at
//! once, without reading the rest of the body. A client that stops sending
//! gets 408 after the server's body read timeout
//! ([`crate::serve::connections::BodyReadTimeout`]).

use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
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

/// The name prefix of staged uploads ([`clean_staged`] removes stale ones).
pub const STAGED_PREFIX: &str = "packages-upload-";

/// Longest text field accepted, in bytes.
pub const MAX_TEXT_FIELD: usize = 256;

/// Most text fields in one upload (an arch list is the longest use).
pub const MAX_TEXT_FIELDS: usize = 64;

/// Most bytes of text fields in one upload, all fields together.
pub const MAX_TEXT_BYTES: usize = 4096;

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

/// Most bytes of a body that are not field data (part headers, preamble,
/// boundaries) that may be buffered: `multer` holds part headers until their
/// end, so a part header that never ends would otherwise fill memory. Room for
/// a read-ahead chunk (hyper reads at most ~400 KiB at once) is included.
pub const MAX_MULTIPART_OVERHEAD: u64 = 1 << 20;

/// The error the body stream gives past [`MAX_MULTIPART_OVERHEAD`].
#[derive(Debug, thiserror::Error)]
#[error("multipart part headers longer than {MAX_MULTIPART_OVERHEAD} bytes")]
struct OverheadExceeded;

/// Hands the inner stream's chunks out one per poll: before each chunk it
/// answers `Pending` once (having woken the task), which ends `multer`'s
/// read-everything-ready loop after a single chunk. It also fails the
/// stream once more than [`MAX_MULTIPART_OVERHEAD`] bytes were handed out
/// beyond the field data read so far (`data`, counted by [`receive`]).
struct OneChunkPerPoll<S> {
    inner: S,
    yielded: bool,
    delivered: u64,
    data: Arc<AtomicU64>,
}

impl<S> Stream for OneChunkPerPoll<S>
where
    S: Stream<Item = Result<axum::body::Bytes, axum::Error>> + Unpin,
{
    type Item = Result<axum::body::Bytes, Box<dyn std::error::Error + Send + Sync>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if !self.yielded {
            self.yielded = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        self.yielded = false;
        let data = self.data.load(Ordering::Relaxed);
        if self.delivered.saturating_sub(data) > MAX_MULTIPART_OVERHEAD {
            return Poll::Ready(Some(Err(Box::new(OverheadExceeded))));
        }
        match self.inner.poll_next_unpin(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                self.delivered += chunk.len() as u64;
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(Box::new(e)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
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
    if let multer::Error::StreamReadFailed(source) = e {
        if source.is::<OverheadExceeded>() {
            return ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, source.to_string());
        }
        if crate::serve::connections::is_body_read_timeout(source.as_ref()) {
            return ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "the request body stopped arriving (see `packages serve --body-read-timeout-secs`)",
            );
        }
    }
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
    let data = Arc::new(AtomicU64::new(0));
    let stream = OneChunkPerPoll {
        inner: request.into_body().into_data_stream(),
        yielded: false,
        delivered: 0,
        data: data.clone(),
    };
    let mut multipart = multer::Multipart::new(stream, boundary);
    let mut package: Option<(tempfile::TempPath, String, u64)> = None;
    let mut fields = Vec::new();
    let mut text_bytes = 0usize;
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
                Some(dir) => tempfile::Builder::new()
                    .prefix(STAGED_PREFIX)
                    .tempfile_in(dir),
                None => tempfile::Builder::new().prefix(STAGED_PREFIX).tempfile(),
            }
            .map_err(|e| ApiError::internal(&format!("cannot create upload file: {e}")))?;
            let (file, path) = temp.into_parts();
            let mut file = tokio::fs::File::from_std(file);
            let mut size = 0u64;
            while let Some(chunk) = field.chunk().await.map_err(|e| multipart_error(&e))? {
                data.fetch_add(chunk.len() as u64, Ordering::Relaxed);
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
            if fields.len() >= MAX_TEXT_FIELDS {
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("more than {MAX_TEXT_FIELDS} text fields in one upload"),
                ));
            }
            let mut value = Vec::new();
            while let Some(chunk) = field.chunk().await.map_err(|e| multipart_error(&e))? {
                data.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                value.extend_from_slice(&chunk);
                if value.len() > MAX_TEXT_FIELD {
                    return Err(ApiError::bad_request(format!(
                        "field `{name}` is longer than {MAX_TEXT_FIELD} bytes"
                    )));
                }
                if text_bytes + value.len() > MAX_TEXT_BYTES {
                    return Err(ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        format!("text fields longer than {MAX_TEXT_BYTES} bytes in all"),
                    ));
                }
            }
            text_bytes += value.len();
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

/// Deletes staged uploads left by a crashed server: files named
/// [`STAGED_PREFIX`]`*` in `dir` (default: the system's temporary directory)
/// last written longer than `older_than` ago. No upload in progress is that
/// old when `older_than` is at least the request timeout, so other servers
/// sharing the directory lose nothing. Returns the paths deleted.
pub fn clean_staged(
    dir: Option<&Path>,
    older_than: std::time::Duration,
) -> std::io::Result<Vec<std::path::PathBuf>> {
    let dir = dir.map_or_else(std::env::temp_dir, Path::to_path_buf);
    let cutoff = std::time::SystemTime::now()
        .checked_sub(older_than)
        .unwrap_or(std::time::UNIX_EPOCH);
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut deleted = Vec::new();
    for entry in entries {
        let entry = entry?;
        let staged = entry
            .file_name()
            .to_str()
            .is_some_and(|name| name.starts_with(STAGED_PREFIX));
        if !staged {
            continue;
        }
        let Ok(meta) = entry.metadata() else {
            continue;
        };
        let stale = meta.is_file() && meta.modified().is_ok_and(|at| at <= cutoff);
        if stale {
            match std::fs::remove_file(entry.path()) {
                Ok(()) => deleted.push(entry.path()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn only_stale_staged_uploads_are_cleaned() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join(format!("{STAGED_PREFIX}old"));
        let fresh = dir.path().join(format!("{STAGED_PREFIX}fresh"));
        let other = dir.path().join("someone-else");
        for path in [&old, &fresh, &other] {
            std::fs::write(path, b"x").unwrap();
        }
        let past = std::time::SystemTime::now() - Duration::from_secs(7200);
        for path in [&old, &other] {
            std::fs::File::options()
                .write(true)
                .open(path)
                .unwrap()
                .set_modified(past)
                .unwrap();
        }
        let deleted = clean_staged(Some(dir.path()), Duration::from_secs(3600)).unwrap();
        assert_eq!(deleted, vec![old.clone()]);
        assert!(!old.exists() && fresh.exists() && other.exists());
    }
}
