//! The HTTP server: `packages serve`, and the public tree it serves.
//!
//! [`router`] serves `static/` of any backend so that `apk` can install from
//! a laptop with no cloud. The private tree is unreachable by construction:
//! every request path is decoded, checked segment by segment, and then
//! prefixed with `static/`; there is no route that names another prefix.
//!
//! A folder URL (`/acme/alpine/`) serves the folder's browse page
//! (`index.html`, [`crate::browse`]); the folder named without its `/`
//! redirects there when it has one.
//!
//! `packages serve` runs [`run_service`]: [`crate::api::router`], the API
//! under `/api`, `/health` and `/metrics`, with this public tree as the
//! fallback for every other path (`/<org>/alpine/...`; no org may be named
//! like those first segments), and garbage collection every so often; or
//! [`run_public`], the public tree alone. Both serve until Ctrl-C or
//! SIGTERM, letting requests in flight finish ([`run`]), within
//! [`ServerLimits`] ([`connections`]). These entry points
//! take plain settings ([`ServiceConfig`]), so the command line needs nothing
//! of [`crate::api`].

pub mod connections;
pub mod range;

use std::path::PathBuf;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use percent_encoding::percent_decode_str;
use tokio_util::io::ReaderStream;

use crate::api::{ApiConfig, ApiState};
use crate::config::ServerLimits;
use crate::publish::Publisher;
use crate::repo::{STATIC_PREFIX, cache_control_for, content_type_for};
use crate::storage::StorageError;
use crate::stores::Stores;

pub use crate::api::{DEFAULT_MAX_BODY, DEFAULT_REQUEST_TIMEOUT};

/// Settings of the service ([`run_service`]).
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// Largest request body, in bytes (an upload's multipart body).
    pub max_body: u64,
    /// Longest time a request may take.
    pub request_timeout: Duration,
    /// How long token look-ups are reused (zero: never).
    pub token_cache_ttl: Duration,
    /// Where uploads are staged (default: the system's temporary directory).
    pub upload_dir: Option<PathBuf>,
    /// How often to delete files of removed packages whose grace period is
    /// over (`None`: never).
    pub gc_interval: Option<Duration>,
    /// Whether to take the client address of the audit log from `X-Forwarded-For`.
    pub trust_proxy: bool,
    /// Days the periodic gc keeps audit records (`None`: for good).
    pub audit_keep_days: Option<u64>,
}

/// Serves the API and the public tree of `stores` on `listener` until Ctrl-C
/// or SIGTERM, collecting garbage every `config.gc_interval`.
pub async fn run_service(
    stores: Stores,
    config: ServiceConfig,
    listener: tokio::net::TcpListener,
    limits: ServerLimits,
) -> std::io::Result<()> {
    let publisher = Publisher::new(stores)
        .with_actor(crate::audit::Actor::service())
        .with_audit_keep_days(config.audit_keep_days);
    if let Some(every) = config.gc_interval {
        spawn_gc(
            publisher.clone(),
            every,
            config.upload_dir.clone(),
            config.request_timeout,
        );
    }
    let api = ApiConfig {
        max_body: config.max_body,
        request_timeout: config.request_timeout,
        token_cache_ttl: config.token_cache_ttl,
        upload_dir: config.upload_dir,
        trust_proxy: config.trust_proxy,
    };
    run(
        crate::api::router(ApiState::new(publisher, api)),
        listener,
        limits,
    )
    .await
}

/// Serves only the public tree of `stores` on `listener`, until Ctrl-C or SIGTERM.
pub async fn run_public(
    stores: Stores,
    listener: tokio::net::TcpListener,
    limits: ServerLimits,
) -> std::io::Result<()> {
    run(router(stores), listener, limits).await
}

/// Deletes expired files and crash leftovers (stale staged uploads, temporary
/// files) now and then every `every`, in the background.
fn spawn_gc(
    publisher: Publisher,
    every: Duration,
    upload_dir: Option<PathBuf>,
    request_timeout: Duration,
) {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        loop {
            ticks.tick().await;
            let stores = publisher.stores().clone();
            let dir = upload_dir.clone();
            let _ = tokio::task::spawn_blocking(move || {
                crate::leftovers::clean_logged(&stores, dir.as_deref(), request_timeout);
            })
            .await;
            match publisher.gc().await {
                Ok(deleted) if !deleted.is_empty() => {
                    tracing::info!(deleted = deleted.len(), "garbage collected");
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "garbage collection failed"),
            }
        }
    });
}

/// Shared state of the public-tree handler.
#[derive(Debug, Clone)]
pub struct PublicTree {
    stores: Stores,
}

impl PublicTree {
    /// Serves the public tree of `stores`.
    pub fn new(stores: Stores) -> Self {
        Self { stores }
    }
}

/// The router serving the public tree at `/`.
pub fn router(stores: Stores) -> Router {
    Router::new()
        .fallback(serve_public)
        .with_state(PublicTree::new(stores))
}

/// Serves `router` on `listener` (bound by the caller, so that it reports
/// the address only once it is bound) within `limits` until Ctrl-C or SIGTERM.
pub async fn run(
    router: Router,
    listener: tokio::net::TcpListener,
    limits: ServerLimits,
) -> std::io::Result<()> {
    tracing::info!(address = %listener.local_addr()?, "serving");
    connections::serve(listener, router, limits, shutdown_signal()).await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

fn plain(status: StatusCode, text: &'static str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text,
    )
        .into_response()
}

/// Maps a request path to a key of the public tree, or `None` if it is not a
/// plain file path (empty, `.`/`..`, hidden or control characters, `//`).
pub fn public_key_for(path: &str) -> Option<String> {
    let decoded = percent_decode_str(path).decode_utf8().ok()?;
    let relative = decoded.strip_prefix('/')?;
    if relative.is_empty() || relative.ends_with('/') {
        return None;
    }
    for segment in relative.split('/') {
        if segment.is_empty()
            || segment.starts_with('.')
            || segment.chars().any(|c| c.is_control() || c == '\\')
        {
            return None;
        }
    }
    Some(format!("{STATIC_PREFIX}{relative}"))
}

/// Maps a folder URL (`/acme/alpine/`, ending in `/`) to the key of its
/// browse page (`static/acme/alpine/index.html`), under the same rules as
/// [`public_key_for`]; the page is always in the public tree.
pub fn page_key_for(path: &str) -> Option<String> {
    let folder = path.strip_suffix('/')?;
    let key = public_key_for(&format!("{folder}/index.html"))?;
    // Only a folder URL: `/a/index.html/` is not one.
    (!folder.is_empty() && !folder.ends_with("/index.html")).then_some(key)
}

/// A redirect from a folder named without its `/` to the folder URL, so the
/// page's relative links resolve.
fn to_folder(uri: &Uri) -> Response {
    let location = format!("{}/", uri.path());
    match HeaderValue::from_str(&location) {
        Ok(value) => (
            StatusCode::MOVED_PERMANENTLY,
            [(header::LOCATION, value)],
            "moved\n",
        )
            .into_response(),
        Err(_) => plain(StatusCode::NOT_FOUND, "not found\n"),
    }
}

async fn serve_public(
    State(tree): State<PublicTree>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
    }
    let (key, folder) = match public_key_for(uri.path()) {
        Some(key) => (key, false),
        None => match page_key_for(uri.path()) {
            Some(key) => (key, true),
            None => return plain(StatusCode::NOT_FOUND, "not found\n"),
        },
    };
    let store = tree.stores.public();
    let meta = match store.head(&key).await {
        Ok(Some(meta)) => meta,
        Ok(None) | Err(StorageError::InvalidKey { .. }) => {
            // A folder named without its `/` that has a page: send the folder URL.
            let page = format!("{key}/index.html");
            if !folder && matches!(store.head(&page).await, Ok(Some(_))) {
                return to_folder(&uri);
            }
            return plain(StatusCode::NOT_FOUND, "not found\n");
        }
        Err(e) => {
            tracing::error!(error = %e, "public read failed");
            return plain(StatusCode::BAD_GATEWAY, "store unavailable\n");
        }
    };
    let etag = if meta.etag.starts_with('"') {
        meta.etag.clone()
    } else {
        format!("\"{}\"", meta.etag)
    };
    let mut response_headers = HeaderMap::new();
    response_headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type_for(&key)),
    );
    response_headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache_control_for(&key)),
    );
    if let Ok(value) = HeaderValue::from_str(&etag) {
        response_headers.insert(header::ETAG, value);
    }
    if let Some(modified) = meta.last_modified {
        if let Ok(value) = HeaderValue::from_str(&httpdate::fmt_http_date(modified)) {
            response_headers.insert(header::LAST_MODIFIED, value);
        }
    }
    if let Some(inm) = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
    {
        if inm.split(',').any(|t| t.trim() == etag || t.trim() == "*") {
            return (StatusCode::NOT_MODIFIED, response_headers).into_response();
        }
    }
    response_headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    // A range applies unless `If-Range` names another version of the object.
    let if_range_holds = headers
        .get(header::IF_RANGE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.trim() == etag);
    let answer = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        Some(value) if if_range_holds => range::parse(value, meta.size),
        _ => range::RangeAnswer::Whole,
    };
    let (status, start, len) = match answer {
        range::RangeAnswer::Whole => (StatusCode::OK, 0, meta.size),
        range::RangeAnswer::Part { start, len } => {
            let value = format!("bytes {start}-{}/{}", start + len - 1, meta.size);
            if let Ok(value) = HeaderValue::from_str(&value) {
                response_headers.insert(header::CONTENT_RANGE, value);
            }
            (StatusCode::PARTIAL_CONTENT, start, len)
        }
        range::RangeAnswer::Unsatisfiable => {
            if let Ok(value) = HeaderValue::from_str(&format!("bytes */{}", meta.size)) {
                response_headers.insert(header::CONTENT_RANGE, value);
            }
            return (StatusCode::RANGE_NOT_SATISFIABLE, response_headers).into_response();
        }
    };
    response_headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    if method == Method::HEAD {
        return (status, response_headers).into_response();
    }
    match store.get(&key).await {
        Ok(got) => {
            use tokio::io::AsyncReadExt;
            let mut body = got.body;
            if start > 0 {
                // The store streams from the start: skip to the range.
                let skipped =
                    tokio::io::copy(&mut (&mut body).take(start), &mut tokio::io::sink()).await;
                if !matches!(skipped, Ok(n) if n == start) {
                    return plain(StatusCode::BAD_GATEWAY, "store unavailable\n");
                }
            }
            let body = Body::from_stream(ReaderStream::new(body.take(len)));
            (status, response_headers, body).into_response()
        }
        Err(StorageError::NotFound { .. }) => plain(StatusCode::NOT_FOUND, "not found\n"),
        Err(e) => {
            tracing::error!(error = %e, "public read failed");
            plain(StatusCode::BAD_GATEWAY, "store unavailable\n")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::public_key_for;

    #[test]
    fn maps_folder_urls_to_their_page() {
        use super::page_key_for;
        assert_eq!(
            page_key_for("/acme/alpine/").as_deref(),
            Some("static/acme/alpine/index.html")
        );
        assert_eq!(
            page_key_for("/acme/debian/dists/bookworm/").as_deref(),
            Some("static/acme/debian/dists/bookworm/index.html")
        );
        for bad in [
            "/",
            "//",
            "/acme",
            "/../config/",
            "/%2e%2e/config/acme/",
            "/a//",
            "/.git/",
            "/a/index.html/",
        ] {
            assert_eq!(page_key_for(bad), None, "{bad}");
        }
    }

    #[test]
    fn maps_only_plain_paths() {
        assert_eq!(
            public_key_for("/acme/alpine/edge/main/x86_64/APKINDEX.tar.gz").as_deref(),
            Some("static/acme/alpine/edge/main/x86_64/APKINDEX.tar.gz")
        );
        assert_eq!(
            public_key_for("/acme/alpine/edge/main/x86_64/a%2Bb-1.0-r0.apk").as_deref(),
            Some("static/acme/alpine/edge/main/x86_64/a+b-1.0-r0.apk")
        );
        for bad in [
            "/",
            "/../config/x",
            "/%2e%2e/config/x",
            "/a//b",
            "/a/%2e%2e%2fconfig",
            "/a/.x",
            "/a/%00",
            "/a/",
            "/%2E%2E/%2E%2E/config/acme/alpine/signing-key.pem",
        ] {
            assert_eq!(public_key_for(bad), None, "{bad}");
        }
    }
}
