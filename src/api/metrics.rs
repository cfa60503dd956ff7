//! Prometheus metrics of the server, served as text at `/metrics`.
//!
//! Requests are labelled by matched route (the template, never the raw
//! path), method and status, each from a closed set so that no client can
//! grow `/metrics`: routes no template matched share [`FALLBACK_ROUTE`],
//! methods outside [`KNOWN_METHODS`] share [`OTHER_METHOD`], and a status is
//! one of at most 500 three-digit codes.

use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry,
    TextEncoder,
};

use super::ApiState;
use super::error::StoreFailure;

/// Label for requests no route matched (the public tree, unknown paths).
const FALLBACK_ROUTE: &str = "fallback";

/// Methods counted under their own name.
const KNOWN_METHODS: &[&str] = &[
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE",
];

/// Label for any other method (clients may send any token as a method).
const OTHER_METHOD: &str = "other";

/// The label of `method`: itself when known, else [`OTHER_METHOD`].
fn method_label(method: &axum::http::Method) -> &'static str {
    KNOWN_METHODS
        .iter()
        .find(|known| **known == method.as_str())
        .copied()
        .unwrap_or(OTHER_METHOD)
}

/// Buckets for request, publish and index latencies, in seconds.
const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

/// The server's metrics, in a registry of their own (one per router).
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    request_seconds: HistogramVec,
    upload_bytes: IntCounter,
    publish_seconds: Histogram,
    index_seconds: Histogram,
    store_errors: IntCounter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric at zero.
    pub fn new() -> Self {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new("packages_http_requests_total", "HTTP requests answered"),
            &["method", "route", "status"],
        )
        .expect("valid metric definition");
        let request_seconds = HistogramVec::new(
            HistogramOpts::new(
                "packages_http_request_duration_seconds",
                "Time to answer an HTTP request (until the response head)",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["method", "route"],
        )
        .expect("valid metric definition");
        let upload_bytes = IntCounter::new(
            "packages_upload_bytes_total",
            "Bytes of package files received by uploads",
        )
        .expect("valid metric definition");
        let publish_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "packages_publish_duration_seconds",
                "Time from a received upload to its package in the signed index",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
        )
        .expect("valid metric definition");
        let index_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "packages_index_render_duration_seconds",
                "Time to regenerate, sign and store one index on request",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
        )
        .expect("valid metric definition");
        let store_errors = IntCounter::new(
            "packages_store_errors_total",
            "Requests that failed because the store failed",
        )
        .expect("valid metric definition");
        for collector in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(request_seconds.clone()),
            Box::new(upload_bytes.clone()),
            Box::new(publish_seconds.clone()),
            Box::new(index_seconds.clone()),
            Box::new(store_errors.clone()),
        ] {
            registry
                .register(collector)
                .expect("metric names are unique");
        }
        Self {
            registry,
            requests,
            request_seconds,
            upload_bytes,
            publish_seconds,
            index_seconds,
            store_errors,
        }
    }

    /// Counts bytes received for an upload.
    pub fn add_upload_bytes(&self, bytes: u64) {
        self.upload_bytes.inc_by(bytes);
    }

    /// Records how long a publish took.
    pub fn observe_publish(&self, took: Duration) {
        self.publish_seconds.observe(took.as_secs_f64());
    }

    /// Records how long an index regeneration took.
    pub fn observe_index(&self, took: Duration) {
        self.index_seconds.observe(took.as_secs_f64());
    }

    /// The metrics in Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("text encoding into a Vec cannot fail");
        String::from_utf8(out).expect("the text format is UTF-8")
    }
}

/// Middleware counting every request by route, method and status.
pub(super) async fn track(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(FALLBACK_ROUTE, MatchedPath::as_str)
        .to_owned();
    let response = next.run(request).await;
    let metrics = state.metrics();
    metrics
        .requests
        .with_label_values(&[method, route.as_str(), response.status().as_str()])
        .inc();
    metrics
        .request_seconds
        .with_label_values(&[method, route.as_str()])
        .observe(started.elapsed().as_secs_f64());
    if response.extensions().get::<StoreFailure>().is_some() {
        metrics.store_errors.inc();
    }
    // The access log, inside the request span (id, route, token id).
    let status = response.status().as_u16();
    let millis = started.elapsed().as_millis();
    if route.starts_with("/health/") || route == "/metrics" {
        tracing::debug!(status, millis, "answered");
    } else {
        tracing::info!(status, millis, "answered");
    }
    response
}

/// `GET /metrics`
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "health",
    security(()),
    responses((status = 200, description = "Metrics in Prometheus text format", body = String, content_type = "text/plain; version=0.0.4"))
)]
pub(super) async fn metrics(State(state): State<ApiState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics().render(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use axum::http::Method;

    use super::*;

    #[test]
    fn unknown_methods_share_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::DELETE), "DELETE");
        for made_up in ["FOO", "get", "XGET12345"] {
            let method = Method::from_bytes(made_up.as_bytes()).unwrap();
            assert_eq!(method_label(&method), OTHER_METHOD);
        }
    }
}
