//! The HTTP API of `packages serve`, next to the public tree.
//!
//! - `/api/v1/...`: the API proper ([`v1`]): organizations, distros,
//!   versions, repos, arches, packages, signing keys, tokens.
//! - `/api/...`: the API of the service we replace ([`compat`]).
//! - `/health/ping`, `/health/ready` (also under `/api`, where the old
//!   service had them), `/metrics` ([`metrics`]) and `/api/v1/openapi.json`.
//! - everything else: the public tree ([`crate::serve`]), so `apk` can
//!   install from the same server. No org may be named like the first
//!   segment of a route (`api`, `health`, `metrics`: [`RESERVED_ORG_NAMES`]).
//!
//! The router and the OpenAPI document are built from one source
//! ([`routes()`], utoipa-axum's `OpenApiRouter`): a handler is routed only
//! through its `#[utoipa::path]`, so no route can be missing from the document.
//!
//! Every handler is thin: it authenticates ([`auth`]), parses names into
//! [`crate::repo`] types (which refuse `..`, `/`, control characters and
//! reserved names, whatever their encoding in the URL), checks the token's
//! scope, then calls the same use cases as the CLI ([`Publisher`]). No route
//! reads or writes the private tree except through those use cases.

pub mod auth;
pub mod compat;
pub mod error;
pub mod metrics;
pub mod names;
pub mod tree;
pub mod upload;
pub mod v1;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use tower::{ServiceBuilder, ServiceExt as _};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnFailure, TraceLayer};
use tracing::Level;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::publish::Publisher;
use crate::repo::{Distro, Org, RESERVED_ORG_NAMES, RepoId, Scope, Segment};
use crate::stores::Stores;
use crate::tokens::{DEFAULT_CACHE_TTL, TokenLevel, Tokens};

pub use error::{ApiError, ErrorBody};
pub use metrics::Metrics;

/// Largest JSON request body (everything but uploads).
pub const JSON_BODY_LIMIT: usize = 64 << 10;

/// Default largest request body (uploads).
pub const DEFAULT_MAX_BODY: u64 = 1 << 30;

/// Default time a request may take, upload included.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(600);

/// Limits and settings of the API.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Largest request body, in bytes (an upload's multipart body).
    pub max_body: u64,
    /// Longest time a request may take (status 408 after).
    pub request_timeout: Duration,
    /// How long token look-ups are reused (zero: never); a revocation takes
    /// effect on every instance within this time.
    pub token_cache_ttl: Duration,
    /// Where uploads are staged (default: the system's temporary directory).
    pub upload_dir: Option<PathBuf>,
    /// Whether a proxy in front of the service sets `X-Forwarded-For`: the
    /// audit log then records the address it reports, not the proxy's.
    pub trust_proxy: bool,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            max_body: DEFAULT_MAX_BODY,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            token_cache_ttl: DEFAULT_CACHE_TTL,
            upload_dir: None,
            trust_proxy: false,
        }
    }
}

struct Inner {
    publisher: Publisher,
    tokens: Tokens,
    metrics: Metrics,
    config: ApiConfig,
}

/// What every handler shares.
#[derive(Clone)]
pub struct ApiState(Arc<Inner>);

impl std::fmt::Debug for ApiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiState")
            .field("config", &self.0.config)
            .finish_non_exhaustive()
    }
}

impl ApiState {
    /// State for serving `publisher`'s stores with `config`.
    pub fn new(publisher: Publisher, config: ApiConfig) -> Self {
        let tokens = Tokens::new(publisher.stores().clone(), config.token_cache_ttl);
        Self(Arc::new(Inner {
            publisher,
            tokens,
            metrics: Metrics::new(),
            config,
        }))
    }

    /// The use cases.
    pub fn publisher(&self) -> &Publisher {
        &self.0.publisher
    }

    /// The stores.
    pub fn stores(&self) -> &Stores {
        self.0.publisher.stores()
    }

    /// The tokens.
    pub fn tokens(&self) -> &Tokens {
        &self.0.tokens
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }

    /// The settings.
    pub fn config(&self) -> &ApiConfig {
        &self.0.config
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "packages",
        description = "Publishes signed Alpine package repositories. `/api/v1` is the API proper; `/api/{org}/...` is the API of atlascloud/packages (v2.0.0-beta1), kept for its clients. Errors are always `{\"code\", \"message\"}`."
    ),
    modifiers(&BearerAuth),
    security(("bearerAuth" = [])),
    tags(
        (name = "orgs", description = "Organizations"),
        (name = "repos", description = "Distros, versions, repositories and architectures"),
        (name = "packages", description = "Packages: list, upload, remove, reindex"),
        (name = "keys", description = "Signing keys"),
        (name = "tokens", description = "API tokens"),
        (name = "audit", description = "The audit log: who changed what, when, from where"),
        (name = "compat", description = "The API of the service we replace (atlascloud/packages)"),
        (name = "health", description = "Health, metrics and this document"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearerAuth",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("pkgs_...")
                    .description(Some(
                        "A token from `packages admin init`, `packages token create` or `POST /api/v1/tokens`",
                    ))
                    .build(),
            ),
        );
        openapi.info.version = env!("CARGO_PKG_VERSION").to_owned();
    }
}

/// Every route with its documentation: the one source of both the router and the document.
pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(v1::routes())
        .merge(compat::routes())
        .routes(routes!(health_ping))
        .routes(routes!(health_ready, health_ready_head))
        .routes(routes!(api_health_ping))
        .routes(routes!(api_health_ready, api_health_ready_head))
        .routes(routes!(metrics::metrics))
        .routes(routes!(openapi_json))
}

/// The OpenAPI document of [`routes()`], as served at `/api/v1/openapi.json`.
pub fn openapi() -> serde_json::Value {
    document(routes().into_openapi())
}

/// The document of the routes, finished: the naming rules ([`names`]) put
/// into every parameter and body field that names something.
fn document(doc: utoipa::openapi::OpenApi) -> serde_json::Value {
    let mut doc = serde_json::to_value(&doc).expect("the OpenAPI document serializes");
    names::apply(&mut doc);
    doc
}

#[derive(Clone)]
struct OpenApiJson(Arc<str>);

/// The whole server: the API, and the public tree of the same stores for
/// every other path; with request ids, tracing, metrics, body limit and timeout.
pub fn router(state: ApiState) -> Router {
    let (api, doc) = routes().split_for_parts();
    let doc = OpenApiJson(
        serde_json::to_string_pretty(&document(doc))
            .expect("the OpenAPI document serializes")
            .into(),
    );
    let public = crate::serve::router(state.stores().clone());
    let config = state.config().clone();
    let layers = ServiceBuilder::new()
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                // 5xx are logged once, with their cause, where they happen (`ApiError::internal`).
                .on_failure(DefaultOnFailure::new().level(Level::DEBUG)),
        )
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(middleware::from_fn(json_errors))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            config.request_timeout,
        ))
        // The limit layer answers 413 with a body of its own type.
        .map_response(IntoResponse::into_response)
        .layer(RequestBodyLimitLayer::new(
            usize::try_from(config.max_body).unwrap_or(usize::MAX),
        ))
        .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT));
    api.fallback(move |request: Request| fallback(public.clone(), request))
        .layer(Extension(doc))
        .layer(layers)
        .with_state(state)
}

fn request_span(request: &Request) -> tracing::Span {
    let id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("-", MatchedPath::as_str);
    tracing::info_span!(
        "request",
        id,
        method = %request.method(),
        route,
        path = %request.uri().path(),
        token = tracing::field::Empty,
    )
}

/// Whether a path belongs to the API (errors there are JSON).
fn is_api_path(path: &str) -> bool {
    ["/api", "/health", "/metrics"]
        .iter()
        .any(|p| path == *p || path.starts_with(&format!("{p}/")))
}

async fn fallback(public: Router, request: Request) -> Response {
    if is_api_path(request.uri().path()) {
        return ApiError::not_found(format!(
            "no route for {} {}",
            request.method(),
            request.uri().path().escape_debug()
        ))
        .into_response();
    }
    match public.oneshot(request).await {
        Ok(response) => response,
        Err(infallible) => match infallible {},
    }
}

/// Turns every non-JSON error of an API path (axum's rejections, 405, 408,
/// 413 from the limit layers) into the `{code, message}` body.
async fn json_errors(request: Request, next: Next) -> Response {
    let api = is_api_path(request.uri().path());
    let response = next.run(request).await;
    let status = response.status();
    if !api || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&text).trim().to_owned();
    let message = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "request body too large".to_owned(),
        StatusCode::REQUEST_TIMEOUT => "request took too long".to_owned(),
        StatusCode::METHOD_NOT_ALLOWED => "method not allowed on this route".to_owned(),
        _ if !text.is_empty() => text,
        _ => status
            .canonical_reason()
            .unwrap_or("request failed")
            .to_owned(),
    };
    let mut converted = ApiError::new(status, message).into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            converted.headers_mut().insert(name, value.clone());
        }
    }
    converted
}

/// `GET /health/ping`: the process answers.
#[utoipa::path(
    get,
    path = "/health/ping",
    tag = "health",
    security(()),
    responses((status = 200, description = "Always `pong`", body = String, content_type = "text/plain"))
)]
async fn health_ping() -> &'static str {
    "pong"
}

/// `GET /health/ready`: the stores answer.
#[utoipa::path(
    get,
    path = "/health/ready",
    tag = "health",
    security(()),
    responses(
        (status = 200, description = "`ready`: the stores answer", body = String, content_type = "text/plain"),
        (status = 503, description = "A store does not answer", body = ErrorBody),
    )
)]
async fn health_ready(State(state): State<ApiState>) -> Response {
    if let Err(e) = state.publisher().probe_stores().await {
        tracing::warn!(error = %e, "readiness probe failed");
        return ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "store unavailable").into_response();
    }
    "ready".into_response()
}

/// `HEAD /health/ready` (uptime monitors), as `GET`.
#[utoipa::path(
    head,
    path = "/health/ready",
    tag = "health",
    security(()),
    responses(
        (status = 200, description = "The stores answer"),
        (status = 503, description = "A store does not answer"),
    )
)]
async fn health_ready_head(state: State<ApiState>) -> Response {
    health_ready(state).await
}

/// `GET /api/health/ping`: `/health/ping` where the old service had it.
#[utoipa::path(
    get,
    path = "/api/health/ping",
    tag = "health",
    security(()),
    responses((status = 200, description = "Always `pong`", body = String, content_type = "text/plain"))
)]
async fn api_health_ping() -> &'static str {
    health_ping().await
}

/// `GET /api/health/ready`: `/health/ready` where the old service had it.
#[utoipa::path(
    get,
    path = "/api/health/ready",
    tag = "health",
    security(()),
    responses(
        (status = 200, description = "`ready`: the stores answer", body = String, content_type = "text/plain"),
        (status = 503, description = "A store does not answer", body = ErrorBody),
    )
)]
async fn api_health_ready(state: State<ApiState>) -> Response {
    health_ready(state).await
}

/// `HEAD /api/health/ready`, as `GET`.
#[utoipa::path(
    head,
    path = "/api/health/ready",
    tag = "health",
    security(()),
    responses(
        (status = 200, description = "The stores answer"),
        (status = 503, description = "A store does not answer"),
    )
)]
async fn api_health_ready_head(state: State<ApiState>) -> Response {
    health_ready(state).await
}

/// `GET /api/v1/openapi.json`: this document.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "health",
    security(()),
    responses((status = 200, description = "The OpenAPI 3.1 document of every route", content_type = "application/json"))
)]
async fn openapi_json(Extension(doc): Extension<OpenApiJson>) -> Response {
    let mut response = Response::new(Body::from(doc.0.to_string()));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

// ---- names from paths, and the levels they belong to ----------------------

/// Parses an org from a path, as a 400 on failure.
fn parse_org(org: &str) -> Result<Org, ApiError> {
    Ok(Org::parse(org)?)
}

/// The level of an org.
fn org_level(org: &Org) -> TokenLevel {
    TokenLevel::Scoped(Scope {
        org: org.clone(),
        distro: None,
        version: None,
        repo: None,
    })
}

/// The level of an org's distro.
fn distro_level(org: &Org, distro: Distro) -> TokenLevel {
    TokenLevel::Scoped(Scope {
        org: org.clone(),
        distro: Some(distro),
        version: None,
        repo: None,
    })
}

/// The level of a distro version.
fn version_level(org: &Org, distro: Distro, version: &Segment) -> TokenLevel {
    TokenLevel::Scoped(Scope {
        org: org.clone(),
        distro: Some(distro),
        version: Some(version.clone()),
        repo: None,
    })
}

/// The level of a repository.
fn repo_level(repo: &RepoId) -> TokenLevel {
    TokenLevel::Scoped(repo.scope())
}

/// Whether `name` is one of our reserved first segments (so not an org).
fn is_reserved(name: &str) -> bool {
    RESERVED_ORG_NAMES.contains(&name)
}

/// The JSON body of a request, with a clear 4xx when it does not parse.
pub struct JsonBody<T>(pub T);

impl<S, T> axum::extract::FromRequest<S> for JsonBody<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(JsonBody(value)),
            Err(rejection) => Err(ApiError::new(rejection.status(), rejection.body_text())),
        }
    }
}
