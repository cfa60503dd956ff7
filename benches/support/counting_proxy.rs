//! A loopback HTTP proxy in front of an S3 endpoint that counts the requests
//! passing through it, by kind: what a publish costs in S3 requests, SDK
//! retries included. Requests are forwarded unchanged (the `Host` header too,
//! so SigV4 signatures still verify).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use anyhow::Result;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, Method, StatusCode};
use axum::response::Response;

/// Requests seen, by kind (`GET`, `LIST`, `HEAD`, `PUT`, `DELETE`, ...).
#[derive(Debug, Default)]
pub struct Counts(Mutex<BTreeMap<&'static str, u64>>);

impl Counts {
    /// A copy of the counts so far.
    pub fn snapshot(&self) -> BTreeMap<&'static str, u64> {
        self.0.lock().expect("counts").clone()
    }
}

/// The difference `after - before`, with the total.
pub fn delta(
    before: &BTreeMap<&'static str, u64>,
    after: &BTreeMap<&'static str, u64>,
) -> (u64, BTreeMap<&'static str, u64>) {
    let mut out = BTreeMap::new();
    for (kind, n) in after {
        let d = n - before.get(kind).copied().unwrap_or(0);
        if d > 0 {
            out.insert(*kind, d);
        }
    }
    (out.values().sum(), out)
}

struct Proxy {
    upstream: String,
    client: reqwest::Client,
    counts: Arc<Counts>,
}

fn kind(method: &Method, query: Option<&str>) -> &'static str {
    match *method {
        Method::GET if query.is_some_and(|q| q.contains("list-type")) => "LIST",
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::POST => "POST",
        _ => "OTHER",
    }
}

fn hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection" | "transfer-encoding" | "keep-alive" | "upgrade" | "content-length"
    )
}

async fn forward(State(proxy): State<Arc<Proxy>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let kind = kind(&parts.method, parts.uri.query());
    *proxy
        .counts
        .0
        .lock()
        .expect("counts")
        .entry(kind)
        .or_default() += 1;
    let failed = |e: String| {
        Response::builder()
            .status(StatusCode::BAD_GATEWAY)
            .body(Body::from(e))
            .expect("a response")
    };
    let body = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(body) => body,
        Err(e) => return failed(e.to_string()),
    };
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut forwarded = proxy
        .client
        .request(parts.method.clone(), format!("{}{path}", proxy.upstream))
        .body(body);
    for (name, value) in &parts.headers {
        if !hop_by_hop(name) {
            forwarded = forwarded.header(name, value);
        }
    }
    let answer = match forwarded.send().await {
        Ok(answer) => answer,
        Err(e) => return failed(e.to_string()),
    };
    let mut response = Response::builder().status(answer.status());
    for (name, value) in answer.headers() {
        if !hop_by_hop(name) || name.as_str() == "content-length" {
            response = response.header(name, value);
        }
    }
    match answer.bytes().await {
        Ok(bytes) => response.body(Body::from(bytes)).expect("a response"),
        Err(e) => failed(e.to_string()),
    }
}

/// Starts a proxy to `upstream` (`http://host:port`) on a free loopback
/// port; returns its URL and its counters.
pub async fn start(upstream: &str) -> Result<(String, Arc<Counts>)> {
    let counts = Arc::new(Counts::default());
    let proxy = Arc::new(Proxy {
        upstream: upstream.trim_end_matches('/').to_owned(),
        client: reqwest::Client::builder().build()?,
        counts: counts.clone(),
    });
    let app = axum::Router::new().fallback(forward).with_state(proxy);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((url, counts))
}
