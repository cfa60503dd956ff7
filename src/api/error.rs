//! The one error type of the HTTP API and its JSON body.
//!
//! Every error leaves as `{"code": <status>, "message": "..."}` (the shape of
//! the service we replace). Client mistakes get a 4xx with a message saying
//! what to fix and are not logged as errors; internal failures are logged
//! once, here, with their detail, and the client gets a generic message.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::index::IndexError;
use crate::keys::KeyError;
use crate::publish::PublishError;
use crate::repo::NameError;
use crate::storage::StorageError;
use crate::tokens::TokenError;

pub use crate::wire::ErrorBody;

/// Marks a response caused by a failing store, for the store-error metric.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StoreFailure;

/// An error answered to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    store_failure: bool,
}

impl ApiError {
    /// An error with this status and message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            store_failure: false,
        }
    }

    /// 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 401: no usable token.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }

    /// 403: a valid token that may not do this.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// 500 with a generic message; `detail` is logged (once, here), never sent.
    pub fn internal(detail: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error (logged on the server)",
        )
    }

    fn store(detail: &dyn std::fmt::Display) -> Self {
        let mut error = Self::internal(detail);
        error.store_failure = true;
        error
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.status, self.message)
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            code: self.status.as_u16(),
            message: self.message,
        };
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"packages\""),
            );
        }
        if self.store_failure {
            response.extensions_mut().insert(StoreFailure);
        }
        response
    }
}

impl From<NameError> for ApiError {
    fn from(e: NameError) -> Self {
        ApiError::bad_request(e.to_string())
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        ApiError::store(&e)
    }
}

impl From<PublishError> for ApiError {
    fn from(e: PublishError) -> Self {
        // A key problem met while writing an index is the same key problem
        // (a missing key is 409, not an internal error).
        let e = match e {
            PublishError::Index(IndexError::Key(key)) => PublishError::Key(key),
            other => other,
        };
        let status = match &e {
            PublishError::Storage(_)
            | PublishError::Index(IndexError::Storage(_))
            | PublishError::Key(KeyError::Storage(_)) => return ApiError::store(&e),
            PublishError::Index(IndexError::Contended(_)) => StatusCode::SERVICE_UNAVAILABLE,
            _ if !e.is_client_error() => return ApiError::internal(&e),
            PublishError::QuotaExceeded { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            PublishError::Name(_) | PublishError::Key(KeyError::NeedsDistro) => {
                StatusCode::BAD_REQUEST
            }
            PublishError::OrgNotFound(_) | PublishError::NotFound(_) => StatusCode::NOT_FOUND,
            PublishError::OrgExists(_)
            | PublishError::OrgNotEmpty(_)
            | PublishError::Conflict { .. }
            | PublishError::PoolConflict { .. }
            | PublishError::InvalidAlias(_)
            | PublishError::RecentlyRemoved { .. }
            | PublishError::Key(
                KeyError::Missing { .. }
                | KeyError::Exists { .. }
                | KeyError::WouldChangeSigner { .. }
                | KeyError::Conflict { .. },
            ) => StatusCode::CONFLICT,
            PublishError::Package { .. }
            | PublishError::Deb { .. }
            | PublishError::Rpm { .. }
            | PublishError::ArchMismatch { .. }
            | PublishError::NoArchTargets { .. }
            | PublishError::Key(KeyError::Signing { .. }) => StatusCode::UNPROCESSABLE_ENTITY,
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, e.to_string())
    }
}

impl From<KeyError> for ApiError {
    fn from(e: KeyError) -> Self {
        PublishError::Key(e).into()
    }
}

impl From<IndexError> for ApiError {
    fn from(e: IndexError) -> Self {
        PublishError::Index(e).into()
    }
}

impl From<TokenError> for ApiError {
    fn from(e: TokenError) -> Self {
        let status = match &e {
            TokenError::Storage(_) => return ApiError::store(&e),
            TokenError::Corrupt { .. } => return ApiError::internal(&e),
            TokenError::Malformed | TokenError::Unknown | TokenError::Expired => {
                StatusCode::UNAUTHORIZED
            }
            TokenError::NotFound { .. } | TokenError::OrgNotFound(_) => StatusCode::NOT_FOUND,
            TokenError::Forbidden(_) => StatusCode::FORBIDDEN,
            TokenError::Invalid(_) | TokenError::Name(_) => StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, e.to_string())
    }
}

/// The error responses of the OpenAPI document, one type per status, each
/// with the `{code, message}` body: handlers list in `responses(...)` those
/// their code paths return (a 404 or 409 with its own description is
/// written out where it is declared).
pub mod responses {
    use utoipa::IntoResponses;

    use super::ErrorBody;

    /// 400.
    #[derive(IntoResponses)]
    #[response(
        status = 400,
        description = "Malformed request: a name in the path, query or body breaks the naming rules (see each parameter's `pattern`), a value is invalid, or the body does not parse"
    )]
    pub struct BadRequest(pub ErrorBody);

    /// 401.
    #[derive(IntoResponses)]
    #[response(
        status = 401,
        description = "No valid token: missing, malformed, unknown, revoked or expired (`WWW-Authenticate: Bearer`)"
    )]
    pub struct Unauthorized(pub ErrorBody);

    /// 403.
    #[derive(IntoResponses)]
    #[response(
        status = 403,
        description = "The token may not do this: out of its scope, or read-only"
    )]
    pub struct Forbidden(pub ErrorBody);

    /// 408.
    #[derive(IntoResponses)]
    #[response(
        status = 408,
        description = "The body stopped arriving, or the request took longer than `--request-timeout-secs`"
    )]
    pub struct Timeout(pub ErrorBody);

    /// 413.
    #[derive(IntoResponses)]
    #[response(
        status = 413,
        description = "Body too large (JSON bodies: 64 KiB; uploads: `--max-body-mib`); for an upload also: over a quota (message `<file>: quota_exceeded: <level> has a limit of …`, nothing stored)"
    )]
    pub struct TooLarge(pub ErrorBody);

    /// 415 of a JSON body.
    #[derive(IntoResponses)]
    #[response(status = 415, description = "The body is not `application/json`")]
    pub struct NotJson(pub ErrorBody);

    /// 415 of an upload.
    #[derive(IntoResponses)]
    #[response(
        status = 415,
        description = "The body is not `multipart/form-data` with a boundary"
    )]
    pub struct NotMultipart(pub ErrorBody);

    /// 422 of a JSON body.
    #[derive(IntoResponses)]
    #[response(
        status = 422,
        description = "The JSON body has a missing, unknown or mistyped field"
    )]
    pub struct BadJsonFields(pub ErrorBody);

    /// 500.
    #[derive(IntoResponses)]
    #[response(
        status = 500,
        description = "Internal error, such as a failing store: a generic message; the cause is logged on the server with the request id"
    )]
    pub struct Internal(pub ErrorBody);

    /// 503 of an operation that writes a signed index.
    #[derive(IntoResponses)]
    #[response(
        status = 503,
        description = "Other publishers kept the index busy for too long: retry"
    )]
    pub struct Busy(pub ErrorBody);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_use_case_errors_to_statuses() {
        let cases: Vec<(PublishError, u16)> = vec![
            (PublishError::OrgNotFound("a".into()), 404),
            (PublishError::NotFound("x".into()), 404),
            (PublishError::OrgExists("a".into()), 409),
            (
                PublishError::Conflict {
                    file: "f".into(),
                    arch: "a".into(),
                },
                409,
            ),
            (
                PublishError::RecentlyRemoved {
                    file: "f".into(),
                    arch: "a".into(),
                    until: 0,
                },
                409,
            ),
            (
                PublishError::ArchMismatch {
                    file: "f".into(),
                    package: "x86_64".into(),
                    target: "aarch64".into(),
                },
                422,
            ),
            (
                PublishError::QuotaExceeded {
                    file: "f".into(),
                    level: "acme/alpine".into(),
                    what: "bytes",
                    used: 9,
                    adding: 2,
                    limit: 10,
                },
                413,
            ),
            (
                PublishError::Storage(StorageError::backend("get", "k", "boom")),
                500,
            ),
            (
                PublishError::Index(IndexError::Key(KeyError::Missing {
                    repo: "acme/debian/bookworm".into(),
                    org: "acme".into(),
                    distro: "debian".into(),
                })),
                409,
            ),
        ];
        for (error, status) in cases {
            let api = ApiError::from(error);
            assert_eq!(api.status().as_u16(), status, "{api}");
            if status == 500 {
                assert!(!api.message().contains("boom"));
            }
        }
    }
}
