//! The HTTP API (`packages serve`), driven in-process through
//! `tower::ServiceExt::oneshot` (no socket) on a local-directory store, plus
//! one end-to-end upload into Garage checked with `openssl`, and the CLI's
//! remote mode against a server on a loopback port.
//!
//! [`TestApp`] is shared with `tokens.rs`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use packages::api::{self, ApiConfig, ApiState};
use packages::formats::apk::builder::ApkBuilder;
use packages::publish::Publisher;
use packages::repo::{Distro, Org, Scope};
use packages::storage::{LocalStore, Storage};
use packages::stores::Stores;
use packages::tokens::{TokenLevel, Tokens};
use serde_json::{Value, json};
use tower::ServiceExt as _;

use crate::support::{
    Backend, Bucket, Ctx, apk_fixture, curl_get, openssl_verify, parse_index, snapshot,
    test_key_pem, url_path,
};

// ---- the test app ----------------------------------------------------------------

/// A server over fresh stores: orgs `acme` and `other`, each with the test
/// signing key for `alpine`, and an admin token.
pub struct TestApp {
    /// The stores.
    pub stores: Stores,
    /// The whole server (API + public tree).
    pub router: Router,
    /// An admin token.
    pub admin: String,
    /// The apk key name of acme's key.
    pub key_name: String,
    _dir: Option<tempfile::TempDir>,
}

/// A response, read whole.
#[derive(Debug)]
pub struct Resp {
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: Bytes,
}

impl Resp {
    /// The body as JSON (panics with the body when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Asserts the status, showing the body when it differs.
    #[track_caller]
    pub fn expect(&self, status: u16) -> &Self {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.text());
        self
    }

    /// Asserts an error response: this status, a JSON `{code, message}` body.
    #[track_caller]
    pub fn expect_error(&self, status: u16) -> String {
        self.expect(status);
        let body = self.json();
        assert_eq!(body["code"], json!(status), "{body}");
        let message = body["message"].as_str().expect("a message").to_owned();
        assert!(!message.is_empty(), "{body}");
        assert_eq!(
            body.as_object().unwrap().len(),
            2,
            "only code and message: {body}"
        );
        message
    }
}

/// One part of a multipart form.
pub enum Part<'a> {
    /// A file field.
    File(&'a str, &'a str, &'a [u8]),
    /// A text field.
    Text(&'a str, &'a str),
}

/// The boundary of the forms built here (what curl sends looks alike).
pub const BOUNDARY: &str = "------------------------a1b2c3d4e5f60718";

/// A `multipart/form-data` body shaped like curl's `-F`.
pub fn multipart(parts: &[Part<'_>]) -> Vec<u8> {
    let mut body = Vec::new();
    for part in parts {
        body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        match part {
            Part::File(name, file, bytes) => {
                body.extend_from_slice(
                    format!(
                        "Content-Disposition: form-data; name=\"{name}\"; filename=\"{file}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                    )
                    .as_bytes(),
                );
                body.extend_from_slice(bytes);
            }
            Part::Text(name, value) => {
                body.extend_from_slice(
                    format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}")
                        .as_bytes(),
                );
            }
        }
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

/// A valid package made in memory.
pub fn package(name: &str, version: &str, arch: &str) -> Vec<u8> {
    ApkBuilder::new(name, version, arch)
        .file("usr/share/doc/x", name.as_bytes())
        .build()
}

/// A fixture's bytes.
pub fn fixture_bytes(name: &str) -> Vec<u8> {
    std::fs::read(apk_fixture(name)).expect("fixture")
}

impl TestApp {
    /// Default limits on a local store.
    pub async fn new() -> Self {
        Self::with_config(ApiConfig::default()).await
    }

    /// `config` on a local store.
    pub async fn with_config(config: ApiConfig) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let storage = Storage::local(LocalStore::open(&dir.path().join("store")).unwrap());
        let mut app = Self::on(Stores::shared(storage), config).await;
        app._dir = Some(dir);
        app
    }

    /// `config` on `stores`.
    pub async fn on(stores: Stores, config: ApiConfig) -> Self {
        let publisher = Publisher::new(stores.clone());
        let mut key_name = String::new();
        for name in ["other", "acme"] {
            let org = Org::parse(name).unwrap();
            publisher.create_org(&org).await.expect("create org");
            let scope = Scope::new(org, Some(Distro::ALPINE), None, None).unwrap();
            // The last one, acme's, is kept.
            key_name = packages::keys::import(&stores, &scope, &test_key_pem())
                .await
                .expect("import key")
                .key_name;
        }
        let admin = Tokens::new(stores.clone(), Duration::ZERO)
            .create(&TokenLevel::Admin, "admin", false, None)
            .await
            .expect("admin token")
            .0
            .expose()
            .to_owned();
        let state = ApiState::new(publisher, config);
        Self {
            router: api::router(state),
            stores,
            admin,
            key_name,
            _dir: None,
        }
    }

    /// A token of `level` (`admin` or a scope path).
    pub async fn token(&self, level: &str, read_only: bool) -> String {
        Tokens::new(self.stores.clone(), Duration::ZERO)
            .create(
                &TokenLevel::parse(level).unwrap(),
                &format!("{level} token"),
                read_only,
                None,
            )
            .await
            .expect("create token")
            .0
            .expose()
            .to_owned()
    }

    /// Sends one request through the whole server.
    pub async fn send(&self, request: Request<Body>) -> Resp {
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("read body");
        Resp {
            status,
            headers,
            body,
        }
    }

    /// A request with an optional bearer token.
    pub fn request(method: Method, uri: &str, token: Option<&str>) -> axum::http::request::Builder {
        let mut builder = Request::builder().method(method).uri(uri);
        if let Some(token) = token {
            builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        builder
    }

    /// A request without a body.
    pub async fn call(&self, method: Method, uri: &str, token: Option<&str>) -> Resp {
        self.send(
            Self::request(method, uri, token)
                .body(Body::empty())
                .unwrap(),
        )
        .await
    }

    /// `GET`.
    pub async fn get(&self, uri: &str, token: Option<&str>) -> Resp {
        self.call(Method::GET, uri, token).await
    }

    /// A request with a JSON body.
    pub async fn json(&self, method: Method, uri: &str, token: Option<&str>, body: Value) -> Resp {
        self.send(
            Self::request(method, uri, token)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_string()))
                .unwrap(),
        )
        .await
    }

    /// A multipart `POST`, as `curl -F ... -H "Authorization: Bearer $T"` sends it. An upload
    /// to a v1 `.../packages` URL with no query gets `?create=true` (as `upload --create`):
    /// the tests of uploads to unknown repositories use [`TestApp::send`].
    pub async fn post_form(&self, uri: &str, token: Option<&str>, parts: &[Part<'_>]) -> Resp {
        let uri = if uri.starts_with("/api/v1/") && uri.ends_with("/packages") {
            format!("{uri}?create=true")
        } else {
            uri.to_owned()
        };
        let uri = uri.as_str();
        let body = multipart(parts);
        self.send(
            Self::request(Method::POST, uri, token)
                .header(
                    header::CONTENT_TYPE,
                    format!("multipart/form-data; boundary={BOUNDARY}"),
                )
                .header(header::CONTENT_LENGTH, body.len())
                .body(Body::from(body))
                .unwrap(),
        )
        .await
    }

    /// The signed index of `acme/alpine/<version>/<repo>/<arch>`, through the public tree.
    pub async fn index(
        &self,
        version: &str,
        repo: &str,
        arch: &str,
    ) -> crate::support::ParsedIndex {
        let got = self
            .get(
                &format!("/acme/alpine/{version}/{repo}/{arch}/APKINDEX.tar.gz"),
                None,
            )
            .await;
        got.expect(200);
        parse_index(&got.body)
    }

    /// Every object of the stores (to assert a request changed nothing).
    pub async fn snapshot(&self) -> Vec<(String, String)> {
        snapshot(&self.stores).await
    }
}

const COMPAT_PKGS: &str = "/api/acme/alpine/edge/main/x86_64/pkgs";
const V1_REPO: &str = "/api/v1/orgs/acme/distros/alpine/versions/edge/repos/main";

// ---- health, metrics, request ids --------------------------------------------------

#[tokio::test]
async fn health_metrics_and_request_ids() {
    let app = TestApp::new().await;
    let ping = app.get("/health/ping", None).await;
    ping.expect(200);
    assert_eq!(ping.text(), "pong");
    let ready = app.get("/health/ready", None).await;
    ready.expect(200);
    assert_eq!(ready.text(), "ready");
    let head = app.call(Method::HEAD, "/health/ready", None).await;
    head.expect(200);
    assert!(head.body.is_empty());

    // Every response carries a request id; a client's own is kept.
    let id = ping.headers["x-request-id"].to_str().unwrap();
    assert_eq!(id.len(), 36, "a UUID: {id}");
    let mine = app
        .send(
            Request::get("/health/ping")
                .header("x-request-id", "ci-run-42")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(mine.headers["x-request-id"], "ci-run-42");

    app.post_form(
        COMPAT_PKGS,
        Some(&app.admin),
        &[Part::File(
            "package",
            "gitea-test-1.4.1-r3.apk",
            &fixture_bytes("gitea-test-1.4.1-r3.apk"),
        )],
    )
    .await
    .expect(200);
    app.get("/api/v1/orgs", None).await.expect_error(401);
    let metrics = app.get("/metrics", None).await;
    metrics.expect(200);
    assert!(
        metrics.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = metrics.text();
    for needle in [
        r#"packages_http_requests_total{method="GET",route="/health/ping",status="200"} 2"#,
        r#"packages_http_requests_total{method="POST",route="/api/{org}/{distro}/{version}/{repo}/{arch}/pkgs",status="200"} 1"#,
        r#"packages_http_requests_total{method="GET",route="/api/v1/orgs",status="401"} 1"#,
        "packages_upload_bytes_total 1353",
        "packages_publish_duration_seconds_count 1",
        "packages_index_render_duration_seconds_count 0",
        "packages_store_errors_total 0",
    ] {
        assert!(text.contains(needle), "missing `{needle}` in:\n{text}");
    }
}

#[tokio::test]
async fn ready_fails_when_the_store_is_gone() {
    // An S3 store nothing listens for.
    let settings = packages::storage::S3Settings {
        endpoint: Some("http://127.0.0.1:9".to_owned()),
        region: Some("us-east-1".to_owned()),
        credentials: Some(("id".to_owned(), "secret".to_owned())),
        ..Default::default()
    };
    let store = packages::storage::S3Store::connect("nowhere", "", &settings)
        .await
        .unwrap();
    let state = ApiState::new(
        Publisher::new(Stores::shared(Storage::s3(store))),
        ApiConfig::default(),
    );
    let router = api::router(state);
    let send = |uri: &'static str| {
        router
            .clone()
            .oneshot(Request::get(uri).body(Body::empty()).unwrap())
    };
    let ready = send("/health/ready").await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let ping = send("/health/ping").await.unwrap();
    assert_eq!(ping.status(), StatusCode::OK);
    let metrics = send("/metrics").await.unwrap();
    let text = axum::body::to_bytes(metrics.into_body(), usize::MAX)
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&text);
    assert!(
        text.contains(
            r#"packages_http_requests_total{method="GET",route="/health/ready",status="503"} 1"#
        ),
        "{text}"
    );
}

// ---- the compatibility API ------------------------------------------------------------

/// Every route of the old API, with requests shaped as its clients sent them.
#[tokio::test]
async fn compatibility_routes_work_like_the_old_service() {
    let app = TestApp::new().await;
    let t = app.token("acme", false).await;
    let t = Some(t.as_str());

    // Public, as in the old API.
    let orgs = app.get("/api/orgs", None).await;
    orgs.expect(200);
    assert_eq!(orgs.json(), json!([{"name": "acme"}, {"name": "other"}]));

    // POST /{org}: create a repo (default alpine/edge).
    let created = app
        .json(
            Method::POST,
            "/api/acme",
            t,
            json!({"name": "main", "description": "our packages"}),
        )
        .await;
    created.expect(201);
    let body = created.json();
    assert_eq!(body["name"], "main");
    assert_eq!(body["repo"], "main");
    assert_eq!(body["version"], "edge");
    assert_eq!(body["description"], "our packages");
    app.json(Method::POST, "/api/acme", t, json!({"name": "main"}))
        .await
        .expect(200);
    app.json(
        Method::POST,
        "/api/acme",
        t,
        json!({"name": "main", "distro": "alpine", "version": "v3.20"}),
    )
    .await
    .expect(201);

    let org = app.get("/api/acme", t).await;
    org.expect(200);
    assert_eq!(org.json()["name"], "acme");
    assert_eq!(org.json()["distributions"], json!(["alpine"]));
    assert_eq!(
        app.get("/api/acme/distros", t).await.json(),
        json!(["alpine"])
    );
    let distro = app.get("/api/acme/alpine", t).await;
    distro.expect(200);
    assert_eq!(
        distro.json(),
        json!({"name": "alpine", "versions": ["edge", "v3.20"]})
    );
    assert_eq!(
        app.get("/api/acme/alpine/versions", t).await.json(),
        json!(["edge", "v3.20"])
    );
    let repos = app.get("/api/acme/alpine/edge/repos", t).await;
    repos.expect(200);
    assert_eq!(repos.json()[0]["name"], "main");
    let repo = app.get("/api/acme/alpine/edge/main", t).await;
    repo.expect(200);
    assert_eq!(repo.json()["architectures"], json!([]));
    assert_eq!(
        app.get("/api/acme/alpine/edge/main/architectures", t)
            .await
            .json(),
        json!([])
    );

    // The upload, exactly as `curl -F package=@file.apk -H "Authorization: Bearer $T"`.
    let apk = fixture_bytes("gitea-test-1.4.1-r3.apk");
    let uploaded = app
        .post_form(
            COMPAT_PKGS,
            t,
            &[Part::File("package", "gitea-test-1.4.1-r3.apk", &apk)],
        )
        .await;
    uploaded.expect(200);
    let body = uploaded.json();
    assert_eq!(body[0]["name"], "gitea-test");
    assert_eq!(body[0]["version"], "1.4.1");
    assert_eq!(body[0]["release"], "r3");
    assert_eq!(body[0]["checksum"], "Q1/se1PjO94hYXbfpNR1/61hVORIc=");
    // Answered only once the signed index lists it.
    let index = app.index("edge", "main", "x86_64").await;
    assert_eq!(index.names(), ["gitea-test"]);
    assert_eq!(index.key_name(), app.key_name);

    // With the optional `architecture` field naming the path's arch.
    let other = fixture_bytes("package-x-1.0.0-r0.apk");
    app.post_form(
        COMPAT_PKGS,
        t,
        &[
            Part::Text("architecture", "x86_64"),
            Part::File("package", "package-x-1.0.0-r0.apk", &other),
        ],
    )
    .await
    .expect(200);
    // A new version of an existing org is created by its first upload.
    app.post_form(
        "/api/acme/alpine/v3.21/community/x86_64/pkgs",
        t,
        &[Part::File("package", "package-x-1.0.0-r0.apk", &other)],
    )
    .await
    .expect(200);
    assert_eq!(
        app.get("/api/acme/alpine/versions", t).await.json(),
        json!(["edge", "v3.20", "v3.21"])
    );

    let listed = app.get(COMPAT_PKGS, t).await;
    listed.expect(200);
    let listed = listed.json();
    let names: Vec<(&str, &str, &str)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap(),
                p["version"].as_str().unwrap(),
                p["release"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        names,
        [("gitea-test", "1.4.1", "r3"), ("package-x", "1.0.0", "r0")]
    );
    assert_eq!(
        app.get("/api/acme/alpine/edge/main/architectures", t)
            .await
            .json(),
        json!(["x86_64"])
    );

    let index = app
        .call(Method::POST, "/api/acme/alpine/edge/main/x86_64/index", t)
        .await;
    index.expect(200);
    assert_eq!(index.json()["status"], json!(true));
    assert_eq!(index.json()["packages"], json!(2));

    // Reserved first segments are ours, not orgs.
    for uri in ["/api/v1/nothing", "/api/health", "/api/metrics/alpine"] {
        app.get(uri, t).await.expect_error(404);
    }
}

// ---- the v1 API ------------------------------------------------------------------------

#[tokio::test]
async fn v1_routes() {
    let app = TestApp::new().await;
    let admin = Some(app.admin.as_str());

    // Organizations.
    let created = app
        .json(
            Method::POST,
            "/api/v1/orgs",
            admin,
            json!({"name": "newco"}),
        )
        .await;
    created.expect(201);
    assert_eq!(created.json()["name"], "newco");
    app.json(
        Method::POST,
        "/api/v1/orgs",
        admin,
        json!({"name": "newco"}),
    )
    .await
    .expect_error(409);
    app.json(
        Method::POST,
        "/api/v1/orgs",
        admin,
        json!({"name": "health"}),
    )
    .await
    .expect_error(400);
    let orgs = app.get("/api/v1/orgs", admin).await;
    let orgs = orgs.json();
    let names: Vec<&str> = orgs
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["acme", "newco", "other"]);
    // An org token sees its own org only.
    let acme = app.token("acme", true).await;
    let visible = app.get("/api/v1/orgs", Some(&acme)).await;
    assert_eq!(visible.json().as_array().unwrap().len(), 1);
    assert_eq!(visible.json()[0]["name"], "acme");
    app.get("/api/v1/orgs/newco", admin).await.expect(200);
    app.get("/api/v1/orgs/nope", admin).await.expect_error(404);
    app.call(Method::DELETE, "/api/v1/orgs/newco", admin)
        .await
        .expect(204);
    app.get("/api/v1/orgs/newco", admin).await.expect_error(404);

    // Repositories and arches.
    let put = app
        .json(
            Method::PUT,
            V1_REPO,
            admin,
            json!({"architectures": ["x86_64"]}),
        )
        .await;
    put.expect(201);
    assert_eq!(put.json()["architectures"], json!(["x86_64"]));
    app.json(Method::PUT, V1_REPO, admin, json!({}))
        .await
        .expect(200);
    let arches = app
        .json(
            Method::POST,
            &format!("{V1_REPO}/arches"),
            admin,
            json!({"architectures": ["aarch64"]}),
        )
        .await;
    arches.expect(200);
    assert_eq!(arches.json(), json!(["aarch64", "x86_64"]));
    assert_eq!(
        app.get(&format!("{V1_REPO}/arches"), admin).await.json(),
        json!(["aarch64", "x86_64"])
    );
    assert_eq!(app.get(V1_REPO, admin).await.json()["repo"], "main");
    assert_eq!(
        app.get("/api/v1/orgs/acme/distros", admin).await.json(),
        json!([{"name": "alpine", "versions": ["edge"]}])
    );
    assert_eq!(
        app.get("/api/v1/orgs/acme/distros/alpine", admin)
            .await
            .json(),
        json!({"name": "alpine", "versions": ["edge"]})
    );
    assert_eq!(
        app.get("/api/v1/orgs/acme/distros/alpine/versions", admin)
            .await
            .json(),
        json!(["edge"])
    );
    assert_eq!(
        app.get(
            "/api/v1/orgs/acme/distros/alpine/versions/edge/repos",
            admin
        )
        .await
        .json()[0]["architectures"],
        json!(["aarch64", "x86_64"])
    );
    app.get("/api/v1/orgs/acme/distros/alpine/versions/v9/repos", admin)
        .await
        .expect_error(404);
    assert_eq!(
        app.get("/api/v1/orgs/acme", admin).await.json()["distributions"],
        json!(["alpine"])
    );

    // Packages: the noarch fixture goes into both arches; the response
    // carries the index records, as the CLI's `upload --json` prints them.
    let noarch = fixture_bytes("gitea-noarch-1.4-r0.apk");
    let uploaded = app
        .post_form(
            &format!("{V1_REPO}/packages"),
            admin,
            &[Part::File("package", "gitea-noarch-1.4-r0.apk", &noarch)],
        )
        .await;
    uploaded.expect(201);
    let body = uploaded.json();
    assert_eq!(body.as_array().unwrap().len(), 2);
    assert_eq!(body[0]["arch"], "aarch64");
    assert_eq!(body[0]["record"]["name"], "gitea-noarch");
    assert_eq!(
        body[0]["record"]["checksum"],
        "Q1kbH5WoIPFccQYyATanaKXd2cJcc="
    );
    assert_eq!(body[0]["unchanged"], json!(false));
    for arch in ["aarch64", "x86_64"] {
        let index = app.index("edge", "main", arch).await;
        assert_eq!(index.names(), ["gitea-noarch"]);
    }
    // The same file again: nothing new.
    app.post_form(
        &format!("{V1_REPO}/packages"),
        admin,
        &[Part::File("package", "gitea-noarch-1.4-r0.apk", &noarch)],
    )
    .await
    .expect(200);
    // An `arch` field picks the arch of a noarch package.
    let v320 = "/api/v1/orgs/acme/distros/alpine/versions/v3.20/repos/main";
    let one = app
        .post_form(
            &format!("{v320}/packages"),
            admin,
            &[
                Part::File("package", "gitea-noarch-1.4-r0.apk", &noarch),
                Part::Text("arch", "armv7"),
            ],
        )
        .await;
    one.expect(201);
    assert_eq!(one.json()[0]["arch"], "armv7");

    let gitea = fixture_bytes("gitea-test-1.4.1-r3.apk");
    app.post_form(
        &format!("{V1_REPO}/packages"),
        admin,
        &[Part::File("package", "gitea-test-1.4.1-r3.apk", &gitea)],
    )
    .await
    .expect(201);
    let listed = app.get(&format!("{V1_REPO}/packages"), admin).await;
    listed.expect(200);
    let first = &listed.json()[1];
    assert_eq!(first["name"], "gitea-noarch");
    assert_eq!(first["arch"], "x86_64");
    assert_eq!(first["size"], json!(1325));
    assert_eq!(first["file"], "gitea-noarch-1.4-r0.apk");
    assert_eq!(listed.json().as_array().unwrap().len(), 3);
    let filtered = app
        .get(
            &format!("{V1_REPO}/packages?arch=x86_64&name=gitea-test"),
            admin,
        )
        .await;
    assert_eq!(filtered.json().as_array().unwrap().len(), 1);
    app.get(&format!("{V1_REPO}/packages?arch=s390x"), admin)
        .await
        .expect_error(404);

    // Reindex, and rebuild from the files.
    let reindexed = app
        .call(
            Method::POST,
            &format!("{V1_REPO}/arches/x86_64/index"),
            admin,
        )
        .await;
    reindexed.expect(200);
    assert_eq!(reindexed.json()["packages"], json!(2));
    app.call(
        Method::POST,
        &format!("{V1_REPO}/arches/x86_64/index?rebuild=true"),
        admin,
    )
    .await
    .expect(200);
    app.call(
        Method::POST,
        &format!("{V1_REPO}/arches/s390x/index"),
        admin,
    )
    .await
    .expect_error(404);

    // Remove.
    let removed = app
        .call(
            Method::DELETE,
            &format!("{V1_REPO}/packages/gitea-test?arch=x86_64"),
            admin,
        )
        .await;
    removed.expect(200);
    assert_eq!(removed.json()[0]["file"], "gitea-test-1.4.1-r3.apk");
    assert_eq!(
        app.index("edge", "main", "x86_64").await.names(),
        ["gitea-noarch"]
    );
    app.call(
        Method::DELETE,
        &format!("{V1_REPO}/packages/gitea-test"),
        admin,
    )
    .await
    .expect_error(404);

    // Keys: listed from the public tree; a new one for a repo.
    let keys = app.get("/api/v1/orgs/acme/keys", admin).await;
    keys.expect(200);
    assert_eq!(
        keys.json(),
        json!([{
            "name": app.key_name,
            "level": "acme/alpine",
            "path": format!("acme/alpine/{}", app.key_name),
        }])
    );
    let key = app
        .json(
            Method::POST,
            "/api/v1/orgs/acme/keys",
            admin,
            json!({"version": "edge", "repo": "signed", "bits": 2048, "replace": true}),
        )
        .await;
    key.expect(201);
    let key = key.json();
    assert_eq!(key["level"], "acme/alpine/edge/signed");
    assert!(key["pem"].as_str().unwrap().contains("BEGIN PUBLIC KEY"));
    let served = app
        .get(&format!("/{}", key["path"].as_str().unwrap()), None)
        .await;
    served.expect(200);
    app.json(
        Method::POST,
        "/api/v1/orgs/acme/keys",
        admin,
        json!({"version": "edge", "repo": "signed", "bits": 2048}),
    )
    .await
    .expect_error(409);
    app.json(
        Method::POST,
        "/api/v1/orgs/acme/keys",
        admin,
        json!({"bits": 100000}),
    )
    .await
    .expect_error(400);

    // Tokens.
    let created = app
        .json(
            Method::POST,
            "/api/v1/tokens",
            admin,
            json!({"name": "ci", "org": "acme", "distro": "alpine", "expires_in": "90d"}),
        )
        .await;
    created.expect(201);
    let created = created.json();
    let token = created["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("pkgs_"));
    assert_eq!(created["level"], "acme/alpine");
    assert!(created["expires"].as_u64().unwrap() > created["created"].as_u64().unwrap());
    app.get(V1_REPO, Some(&token)).await.expect(200);
    let listed = app
        .get("/api/v1/tokens?org=acme&distro=alpine", admin)
        .await;
    listed.expect(200);
    assert_eq!(listed.json()[0]["name"], "ci");
    assert!(listed.json()[0].get("token").is_none());
    let id = created["id"].as_str().unwrap();
    app.call(
        Method::DELETE,
        &format!("/api/v1/tokens/{id}?org=acme&distro=alpine"),
        admin,
    )
    .await
    .expect(200);
    app.get(V1_REPO, Some(&token)).await.expect_error(401);
    app.call(
        Method::DELETE,
        &format!("/api/v1/tokens/{id}?org=acme&distro=alpine"),
        admin,
    )
    .await
    .expect_error(404);

    // Deleting a non-empty org needs `force`.
    app.call(Method::DELETE, "/api/v1/orgs/acme", admin)
        .await
        .expect_error(409);
    app.call(Method::DELETE, "/api/v1/orgs/acme?force=true", admin)
        .await
        .expect(204);
    app.get(V1_REPO, admin).await.expect_error(404);
}

// ---- errors ----------------------------------------------------------------------------

#[tokio::test]
async fn errors_are_json_with_the_right_status() {
    let app = TestApp::new().await;
    let admin = Some(app.admin.as_str());
    let missing = app.get("/api/v1/orgs", None).await;
    missing.expect_error(401);
    assert_eq!(
        missing.headers[header::WWW_AUTHENTICATE],
        "Bearer realm=\"packages\""
    );
    app.get("/api/v1/orgs", Some("pkgs_not-a-token"))
        .await
        .expect_error(401);
    let basic = app
        .send(
            Request::get("/api/v1/orgs")
                .header(header::AUTHORIZATION, "Basic YWRtaW46YWRtaW4=")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    basic.expect_error(401);
    app.get("/api/v1/nothing", admin).await.expect_error(404);
    app.get("/api", admin).await.expect_error(404);
    app.get("/api/v1/orgs/acme//keys", admin)
        .await
        .expect_error(404);
    app.call(Method::PATCH, "/api/v1/orgs", admin)
        .await
        .expect_error(405);
    app.call(Method::DELETE, "/health/ping", None)
        .await
        .expect_error(405);
    // Not JSON, bad JSON, missing and unknown fields.
    app.send(
        TestApp::request(Method::POST, "/api/v1/orgs", admin)
            .header(header::CONTENT_TYPE, "text/plain")
            .body(Body::from("name=x"))
            .unwrap(),
    )
    .await
    .expect_error(415);
    app.send(
        TestApp::request(Method::POST, "/api/v1/orgs", admin)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from("{\"name\":"))
            .unwrap(),
    )
    .await
    .expect_error(400);
    let message = app
        .json(Method::POST, "/api/v1/orgs", admin, json!({}))
        .await
        .expect_error(422);
    assert!(message.contains("name"), "{message}");
    app.json(
        Method::POST,
        "/api/v1/orgs",
        admin,
        json!({"name": "x", "extra": 1}),
    )
    .await
    .expect_error(422);
    // A JSON body past the JSON limit.
    let big = json!({"name": "x".repeat(100_000)});
    app.json(Method::POST, "/api/v1/orgs", admin, big)
        .await
        .expect_error(413);
    // The public tree keeps its plain answers.
    let public = app.get("/acme/alpine/nothing", None).await;
    public.expect(404);
    assert_eq!(public.text(), "not found\n");
}

/// Each malformed request gets a 4xx with a clear message and changes nothing.
#[tokio::test]
async fn malformed_requests_leave_the_store_unchanged() {
    let app = TestApp::new().await;
    let admin = Some(app.admin.as_str());
    // Something to change: a repo with a package.
    let gitea = fixture_bytes("gitea-test-1.4.1-r3.apk");
    app.post_form(
        COMPAT_PKGS,
        admin,
        &[Part::File("package", "gitea-test-1.4.1-r3.apk", &gitea)],
    )
    .await
    .expect(200);
    let before = app.snapshot().await;
    let apk = package("fresh", "1.0-r0", "x86_64");
    let v1_packages = format!("{V1_REPO}/packages");

    let mut cases: Vec<(&str, Resp, u16)> = Vec::new();
    cases.push((
        "missing package field",
        app.post_form(COMPAT_PKGS, admin, &[Part::Text("architecture", "x86_64")])
            .await,
        400,
    ));
    cases.push((
        "empty form",
        app.post_form(&v1_packages, admin, &[]).await,
        400,
    ));
    cases.push((
        "unknown field",
        app.post_form(
            COMPAT_PKGS,
            admin,
            &[
                Part::File("package", "fresh-1.0-r0.apk", &apk),
                Part::Text("color", "blue"),
            ],
        )
        .await,
        400,
    ));
    cases.push((
        "two packages",
        app.post_form(
            COMPAT_PKGS,
            admin,
            &[
                Part::File("package", "fresh-1.0-r0.apk", &apk),
                Part::File("package", "fresh-1.0-r0.apk", &apk),
            ],
        )
        .await,
        400,
    ));
    cases.push((
        "JSON instead of multipart",
        app.json(Method::POST, COMPAT_PKGS, admin, json!({"package": "x"}))
            .await,
        415,
    ));
    cases.push((
        "no content type",
        app.send(
            TestApp::request(Method::POST, &v1_packages, admin)
                .body(Body::from(apk.clone()))
                .unwrap(),
        )
        .await,
        415,
    ));
    let form = multipart(&[Part::File("package", "fresh-1.0-r0.apk", &apk)]);
    let truncated = form[..form.len() / 2].to_vec();
    cases.push((
        "truncated multipart",
        app.send(
            TestApp::request(Method::POST, COMPAT_PKGS, admin)
                .header(
                    header::CONTENT_TYPE,
                    format!("multipart/form-data; boundary={BOUNDARY}"),
                )
                .body(Body::from(truncated))
                .unwrap(),
        )
        .await,
        400,
    ));
    cases.push((
        "not a package",
        app.post_form(
            COMPAT_PKGS,
            admin,
            &[Part::File("package", "fresh-1.0-r0.apk", b"not an apk")],
        )
        .await,
        422,
    ));
    cases.push((
        "architecture field differs from the path",
        app.post_form(
            COMPAT_PKGS,
            admin,
            &[
                Part::File("package", "fresh-1.0-r0.apk", &apk),
                Part::Text("architecture", "aarch64"),
            ],
        )
        .await,
        400,
    ));
    cases.push((
        "package for another arch than the path",
        app.post_form(
            "/api/acme/alpine/edge/main/aarch64/pkgs",
            admin,
            &[Part::File("package", "fresh-1.0-r0.apk", &apk)],
        )
        .await,
        422,
    ));
    cases.push((
        "package for another arch than the form field",
        app.post_form(
            &v1_packages,
            admin,
            &[
                Part::File("package", "fresh-1.0-r0.apk", &apk),
                Part::Text("arch", "aarch64"),
            ],
        )
        .await,
        422,
    ));
    cases.push((
        "different bytes under a published name",
        app.post_form(
            COMPAT_PKGS,
            admin,
            &[Part::File(
                "package",
                "gitea-test-1.4.1-r3.apk",
                &ApkBuilder::new("gitea-test", "1.4.1-r3", "x86_64").build(),
            )],
        )
        .await,
        409,
    ));
    for (what, file) in [
        ("traversal in the file name", "../../../config/x.apk"),
        ("backslash in the file name", "..\\x.apk"),
        ("control character in the file name", "a\u{1}b.apk"),
        ("hidden file name", ".x.apk"),
    ] {
        cases.push((
            what,
            app.post_form(COMPAT_PKGS, admin, &[Part::File("package", file, &apk)])
                .await,
            400,
        ));
    }
    for (what, uri, status) in [
        (
            "`..` version",
            "/api/acme/alpine/%2e%2e/main/x86_64/pkgs",
            400,
        ),
        ("`..` org", "/api/%2E%2E/alpine/edge/main/x86_64/pkgs", 400),
        (
            "slash in a repo",
            "/api/acme/alpine/edge/a%2Fb/x86_64/pkgs",
            400,
        ),
        (
            "newline in a repo",
            "/api/acme/alpine/edge/ma%0Ain/x86_64/pkgs",
            400,
        ),
        (
            "NUL in an arch",
            "/api/acme/alpine/edge/main/x86%0064/pkgs",
            400,
        ),
        ("invalid UTF-8", "/api/acme/alpine/edge/main/%FF/pkgs", 400),
        (
            "double slash",
            "/api/acme//alpine/edge/main/x86_64/pkgs",
            404,
        ),
        (
            "unknown org",
            "/api/nobody/alpine/edge/main/x86_64/pkgs",
            404,
        ),
        ("reserved org", "/api/v1/alpine/edge/main/x86_64/pkgs", 404),
        (
            "unknown distro",
            "/api/acme/gentoo/edge/main/x86_64/pkgs",
            400,
        ),
        (
            "noarch is not a target",
            "/api/acme/alpine/edge/main/noarch/pkgs",
            400,
        ),
        (
            "v1 traversal",
            "/api/v1/orgs/acme/distros/alpine/versions/%2e%2e/repos/main/packages",
            400,
        ),
    ] {
        cases.push((
            what,
            app.post_form(
                uri,
                admin,
                &[Part::File("package", "fresh-1.0-r0.apk", &apk)],
            )
            .await,
            status,
        ));
    }
    for (what, method, uri, status) in [
        (
            "index of an unknown version",
            Method::POST,
            "/api/acme/alpine/v9.9/main/x86_64/index",
            404,
        ),
        (
            "index of an unknown arch",
            Method::POST,
            "/api/acme/alpine/edge/main/s390x/index",
            404,
        ),
        (
            "index of an unknown org",
            Method::POST,
            "/api/nobody/alpine/edge/main/x86_64/index",
            404,
        ),
        (
            "remove from an unknown version",
            Method::DELETE,
            "/api/v1/orgs/acme/distros/alpine/versions/v9.9/repos/main/packages/gitea-test",
            404,
        ),
        (
            "remove an unknown package",
            Method::DELETE,
            "/api/v1/orgs/acme/distros/alpine/versions/edge/repos/main/packages/nothing",
            404,
        ),
        (
            "remove with traversal",
            Method::DELETE,
            "/api/v1/orgs/acme/distros/alpine/versions/edge/repos/main/packages/..%2F..%2Fx",
            400,
        ),
        (
            "unknown distro",
            Method::GET,
            "/api/acme/gentoo/versions",
            400,
        ),
        (
            "delete an unknown org",
            Method::DELETE,
            "/api/v1/orgs/nobody",
            404,
        ),
        (
            "revoke an invalid token id",
            Method::DELETE,
            "/api/v1/tokens/..%2F..%2Fconfig",
            400,
        ),
    ] {
        cases.push((what, app.call(method, uri, admin).await, status));
    }
    for (what, uri, body, status) in [
        ("org with `..`", "/api/v1/orgs", json!({"name": ".."}), 400),
        (
            "org with a slash",
            "/api/v1/orgs",
            json!({"name": "a/b"}),
            400,
        ),
        (
            "reserved org",
            "/api/v1/orgs",
            json!({"name": "metrics"}),
            400,
        ),
        (
            "repo with a slash",
            "/api/acme",
            json!({"name": "a/b"}),
            400,
        ),
        (
            "repo with a control character",
            "/api/acme",
            json!({"name": "a\u{7}"}),
            400,
        ),
        (
            "repo in an unknown org",
            "/api/nobody",
            json!({"name": "main"}),
            404,
        ),
        (
            "token for an unknown org",
            "/api/v1/tokens",
            json!({"name": "x", "org": "nobody"}),
            404,
        ),
        (
            "token with a bad expiry",
            "/api/v1/tokens",
            json!({"name": "x", "org": "acme", "expires_in": "soon"}),
            400,
        ),
        (
            "token with an empty name",
            "/api/v1/tokens",
            json!({"name": "", "org": "acme"}),
            400,
        ),
        (
            "token level with a gap",
            "/api/v1/tokens",
            json!({"name": "x", "org": "acme", "version": "edge"}),
            400,
        ),
    ] {
        cases.push((what, app.json(Method::POST, uri, admin, body).await, status));
    }
    for (what, response, status) in &cases {
        assert_eq!(
            response.status.as_u16(),
            *status,
            "{what}: {}",
            response.text()
        );
        let message = response.expect_error(*status);
        assert!(message.len() > 8, "{what}: unclear message {message:?}");
    }
    assert_eq!(
        app.snapshot().await,
        before,
        "a malformed request changed the store"
    );
}

#[tokio::test]
async fn bodies_over_the_limit_are_refused() {
    let app = TestApp::with_config(ApiConfig {
        max_body: 64 << 10,
        ..ApiConfig::default()
    })
    .await;
    let admin = Some(app.admin.as_str());
    let before = app.snapshot().await;
    let big = vec![b'x'; 100 << 10];
    // Announced by Content-Length: refused before reading.
    app.post_form(
        COMPAT_PKGS,
        admin,
        &[Part::File("package", "big-1.0-r0.apk", &big)],
    )
    .await
    .expect_error(413);
    // Streamed without a length: cut when the limit is reached.
    let body = multipart(&[Part::File("package", "big-1.0-r0.apk", &big)]);
    let chunks: Vec<Result<Bytes, std::io::Error>> = body
        .chunks(8192)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let streamed = app
        .send(
            TestApp::request(Method::POST, COMPAT_PKGS, admin)
                .header(
                    header::CONTENT_TYPE,
                    format!("multipart/form-data; boundary={BOUNDARY}"),
                )
                .body(Body::from_stream(futures::stream::iter(chunks)))
                .unwrap(),
        )
        .await;
    streamed.expect_error(413);
    assert_eq!(app.snapshot().await, before);
    // Under the limit is fine.
    app.post_form(
        COMPAT_PKGS,
        admin,
        &[Part::File(
            "package",
            "gitea-test-1.4.1-r3.apk",
            &fixture_bytes("gitea-test-1.4.1-r3.apk"),
        )],
    )
    .await
    .expect(200);
}

#[tokio::test]
async fn slow_requests_time_out() {
    let app = TestApp::with_config(ApiConfig {
        request_timeout: Duration::from_millis(300),
        ..ApiConfig::default()
    })
    .await;
    let before = app.snapshot().await;
    // A body that never finishes.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(1);
    tx.send(Ok(Bytes::from(format!("--{BOUNDARY}\r\n"))))
        .await
        .unwrap();
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let response = app
        .send(
            TestApp::request(Method::POST, COMPAT_PKGS, Some(&app.admin))
                .header(
                    header::CONTENT_TYPE,
                    format!("multipart/form-data; boundary={BOUNDARY}"),
                )
                .body(Body::from_stream(stream))
                .unwrap(),
        )
        .await;
    drop(tx);
    response.expect_error(408);
    assert_eq!(app.snapshot().await, before);
}

/// The private tree is unreachable through every route, whatever the encoding.
#[tokio::test]
async fn config_is_unreachable_whatever_the_encoding() {
    let app = TestApp::new().await;
    let admin = app.admin.clone();
    // The objects to protect exist.
    for key in [
        "config/acme/alpine/signing-key.pem",
        "config/_orgs/acme.json",
    ] {
        assert!(app.stores.private().head(key).await.unwrap().is_some());
    }
    let token_files = app.stores.private().list("config/tokens/").await.unwrap();
    let token_path = token_files[0].key.clone();
    let token_paths = [
        format!("/{token_path}"),
        format!("/static/../{token_path}"),
        format!("/api/v1/{token_path}"),
    ];
    let mut paths: Vec<String> = [
        "/config/acme/alpine/signing-key.pem",
        "/config/_orgs/acme.json",
        "/%63onfig/acme/alpine/signing-key.pem",
        "/%63%6f%6e%66%69%67/acme/alpine/signing-key.pem",
        "/acme/../config/acme/alpine/signing-key.pem",
        "/acme/alpine/../../config/acme/alpine/signing-key.pem",
        "/acme/%2e%2e/config/acme/alpine/signing-key.pem",
        "/acme/%2E%2E/config/acme/alpine/signing-key.pem",
        "/%2e%2e/config/acme/alpine/signing-key.pem",
        "/.%2e/config/acme/alpine/signing-key.pem",
        "/acme/alpine/%2e%2e%2f%2e%2e%2f%2e%2e%2fconfig%2facme%2falpine%2fsigning-key.pem",
        "/acme%2f..%2f..%2fconfig%2facme%2falpine%2fsigning-key.pem",
        "/acme/alpine/..%5c..%5cconfig/acme/alpine/signing-key.pem",
        "//config/acme/alpine/signing-key.pem",
        "///config/acme/alpine/signing-key.pem",
        "/static/../config/acme/alpine/signing-key.pem",
        "/static/%2e%2e/config/acme/alpine/signing-key.pem",
        "/acme/alpine/signing-key.pem",
        "/api/..%2fconfig/acme/alpine/signing-key.pem",
        "/api/%2e%2e/alpine/edge/main/x86_64/pkgs",
        "/api/config/alpine",
        "/api/config/alpine/versions",
        "/api/_orgs/alpine",
        "/api/v1/orgs/config",
        "/api/v1/orgs/config/keys",
        "/api/v1/orgs/..%2fconfig/keys",
        "/api/v1/orgs/%2e%2e/distros",
        "/api/v1/orgs/acme/distros/alpine/versions/%2e%2e/repos",
        "/api/v1/orgs/acme/distros/alpine/versions/..%2F..%2F..%2Fconfig/repos",
        "/api/v1/tokens?org=..",
        "/api/v1/tokens?org=acme%2f..%2f..",
        "/api/v1/tokens?org=config",
        "/api/acme/alpine/edge/..%2F..%2F..%2Fconfig/architectures",
        "/api/acme/alpine/edge/main/..%2F..%2Fconfig/pkgs",
        "/health/../config/acme/alpine/signing-key.pem",
        "/metrics/../config/acme/alpine/signing-key.pem",
    ]
    .iter()
    .map(|p| (*p).to_owned())
    .collect();
    paths.extend(token_paths);
    for path in &paths {
        for token in [None, Some(admin.as_str())] {
            let got = app.get(path, token).await;
            assert!(
                got.status.is_client_error(),
                "{path}: {} {}",
                got.status,
                got.text()
            );
            let text = got.text();
            assert!(
                !text.contains("PRIVATE KEY") && !text.contains("\"created\""),
                "{path} leaked: {text}"
            );
        }
    }
    // The public half is served, so the tree itself works.
    app.get(&format!("/acme/alpine/{}", app.key_name), None)
        .await
        .expect(200);
}

// ---- OpenAPI -----------------------------------------------------------------------------

fn validator() -> Option<PathBuf> {
    let cache = std::env::var_os("PACKAGES_TEST_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/packages-test")))?;
    let path = cache.join("moto-venv/bin/openapi-spec-validator");
    path.is_file().then_some(path)
}

/// Every route the router serves, by method and path template.
const ROUTES: &[(&str, &str)] = &[
    ("get", "/api/v1/orgs"),
    ("post", "/api/v1/orgs"),
    ("get", "/api/v1/orgs/{org}"),
    ("delete", "/api/v1/orgs/{org}"),
    ("get", "/api/v1/orgs/{org}/distros"),
    ("get", "/api/v1/orgs/{org}/distros/{distro}"),
    ("get", "/api/v1/orgs/{org}/distros/{distro}/versions"),
    ("get", "/api/v1/orgs/{org}/distros/{distro}/aliases"),
    ("put", "/api/v1/orgs/{org}/distros/{distro}/aliases/{alias}"),
    (
        "delete",
        "/api/v1/orgs/{org}/distros/{distro}/aliases/{alias}",
    ),
    (
        "get",
        "/api/v1/orgs/{org}/distros/{distro}/versions/{version}/repos",
    ),
    (
        "get",
        "/api/v1/orgs/{org}/distros/{distro}/versions/{version}/repos/{repo}",
    ),
    (
        "put",
        "/api/v1/orgs/{org}/distros/{distro}/versions/{version}/repos/{repo}",
    ),
    (
        "get",
        "/api/v1/orgs/{org}/distros/{distro}/versions/{version}/repos/{repo}/arches",
    ),
    (
        "post",
        "/api/v1/orgs/{org}/distros/{distro}/versions/{version}/repos/{repo}/arches",
    ),
    (
        "get",
        "/api/v1/orgs/{org}/distros/{distro}/versions/{version}/repos/{repo}/packages",
    ),
    (
        "post",
        "/api/v1/orgs/{org}/distros/{distro}/versions/{version}/repos/{repo}/packages",
    ),
    (
        "delete",
        "/api/v1/orgs/{org}/distros/{distro}/versions/{version}/repos/{repo}/packages/{package}",
    ),
    (
        "post",
        "/api/v1/orgs/{org}/distros/{distro}/versions/{version}/repos/{repo}/arches/{arch}/index",
    ),
    ("get", "/api/v1/orgs/{org}/keys"),
    ("post", "/api/v1/orgs/{org}/keys"),
    ("post", "/api/v1/orgs/{org}/keys/import"),
    ("get", "/api/v1/orgs/{org}/quotas"),
    ("put", "/api/v1/orgs/{org}/quotas"),
    ("delete", "/api/v1/orgs/{org}/quotas"),
    ("get", "/api/v1/orgs/{org}/usage"),
    (
        "delete",
        "/api/v1/orgs/{org}/distros/{distro}/versions/{version}",
    ),
    (
        "delete",
        "/api/v1/orgs/{org}/distros/{distro}/versions/{version}/repos/{repo}",
    ),
    (
        "delete",
        "/api/v1/orgs/{org}/distros/{distro}/versions/{version}/repos/{repo}/arches/{arch}",
    ),
    (
        "get",
        "/api/v1/orgs/{org}/distros/{distro}/versions/{version}/repos/{repo}/index/check",
    ),
    (
        "post",
        "/api/v1/orgs/{org}/distros/{distro}/versions/{version}/repos/{repo}/index/repair",
    ),
    ("get", "/api/v1/tokens"),
    ("post", "/api/v1/tokens"),
    ("delete", "/api/v1/tokens/{id}"),
    ("get", "/api/v1/openapi.json"),
    ("get", "/api/orgs"),
    ("get", "/api/{org}"),
    ("post", "/api/{org}"),
    ("get", "/api/{org}/distros"),
    ("get", "/api/{org}/{distro}"),
    ("get", "/api/{org}/{distro}/versions"),
    ("get", "/api/{org}/{distro}/{version}/repos"),
    ("get", "/api/{org}/{distro}/{version}/{repo}"),
    ("get", "/api/{org}/{distro}/{version}/{repo}/architectures"),
    ("get", "/api/{org}/{distro}/{version}/{repo}/{arch}/pkgs"),
    ("post", "/api/{org}/{distro}/{version}/{repo}/{arch}/pkgs"),
    ("post", "/api/{org}/{distro}/{version}/{repo}/{arch}/index"),
    ("get", "/health/ping"),
    ("get", "/health/ready"),
    ("head", "/health/ready"),
    ("get", "/api/health/ping"),
    ("get", "/api/health/ready"),
    ("head", "/api/health/ready"),
    ("get", "/metrics"),
];

#[tokio::test]
async fn openapi_document_validates_and_lists_every_route() {
    let app = TestApp::new().await;
    let doc = app.get("/api/v1/openapi.json", None).await;
    doc.expect(200);
    assert_eq!(doc.headers[header::CONTENT_TYPE], "application/json");
    let spec = doc.json();
    // The document lists exactly the routes above...
    let mut listed: Vec<(String, String)> = Vec::new();
    for (path, item) in spec["paths"].as_object().expect("paths") {
        for method in item.as_object().unwrap().keys() {
            if ["get", "put", "post", "delete", "head", "patch"].contains(&method.as_str()) {
                listed.push((method.clone(), path.clone()));
            }
        }
    }
    listed.sort();
    let mut expected: Vec<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    expected.sort();
    assert_eq!(listed, expected);
    // ...and the router serves each of them (no route answers "no route").
    for (method, path) in &listed {
        let uri = path
            .replace("{org}", "acme")
            .replace("{distro}", "alpine")
            .replace("{version}", "edge")
            .replace("{repo}", "main")
            .replace("{arch}", "x86_64")
            .replace("{package}", "x")
            .replace("{id}", "0");
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let got = app
            .send(
                TestApp::request(method.clone(), &uri, None)
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Body::from("{}"))
                    .unwrap(),
            )
            .await;
        assert!(
            !got.text().contains("no route") && got.status != StatusCode::METHOD_NOT_ALLOWED,
            "{method} {uri} is documented but not routed: {} {}",
            got.status,
            got.text()
        );
    }
    // Operations that need no token say so; the rest use bearer auth.
    assert_eq!(
        spec["components"]["securitySchemes"]["bearerAuth"]["scheme"],
        "bearer"
    );
    assert_eq!(spec["paths"]["/api/orgs"]["get"]["security"], json!([{}]));
    assert_eq!(
        spec["paths"]["/api/{org}/{distro}/{version}/{repo}/{arch}/pkgs"]["post"]["operationId"],
        "CreatePackage"
    );

    let Some(validator) = validator() else {
        assert!(
            std::env::var("PACKAGES_TEST_REQUIRE_S3").as_deref() != Ok("1"),
            "openapi-spec-validator is missing: run `scripts/test-servers.sh install moto`"
        );
        eprintln!("skipped the OpenAPI validation: openapi-spec-validator is not installed");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, &doc.body).unwrap();
    let out = std::process::Command::new(&validator)
        .arg(&file)
        .output()
        .expect("run openapi-spec-validator");
    assert!(
        out.status.success(),
        "openapi-spec-validator: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---- end to end into Garage ---------------------------------------------------------------

/// An upload through the API into Garage: the index clients fetch from the
/// bucket's website endpoint lists the package and `openssl` verifies its
/// signature (and refuses it after one changed byte).
#[tokio::test]
async fn upload_through_the_api_into_garage_verifies_with_openssl() {
    let Some(ctx) = Ctx::new(Backend::Garage) else {
        return;
    };
    let (public, place) = ctx.open(Bucket::Main).await;
    let (private, _) = ctx.open(Bucket::Private).await;
    let app = TestApp::on(Stores::separate(public, private), ApiConfig::default()).await;
    let token = app.token("acme/alpine/edge/main", false).await;
    let apk = fixture_bytes("gitea-test-1.4.1-r3.apk");
    let uploaded = app
        .post_form(
            COMPAT_PKGS,
            Some(&token),
            &[Part::File("package", "gitea-test-1.4.1-r3.apk", &apk)],
        )
        .await;
    uploaded.expect(200);
    assert_eq!(uploaded.json()[0]["name"], "gitea-test");

    let web = ctx.s3().web.clone().expect("PACKAGES_TEST_GARAGE_WEB");
    let url = |key: &str| format!("{web}/{}", url_path(&format!("{}/{key}", place.prefix)));
    let got = curl_get(&url("static/acme/alpine/edge/main/x86_64/APKINDEX.tar.gz"));
    assert_eq!(got.status, 200, "index from the website endpoint");
    let index = parse_index(&got.body);
    assert_eq!(index.names(), ["gitea-test"]);
    let key = curl_get(&url(&format!("static/acme/alpine/{}", index.key_name())));
    assert_eq!(key.status, 200, "public key from the website endpoint");

    let (ok, out) = openssl_verify(&key.body, &index.signature, &index.unsigned);
    assert!(ok, "openssl must verify the index: {out}");
    let mut changed = index.unsigned.clone();
    let middle = changed.len() / 2;
    changed[middle] ^= 0x01;
    let (ok, out) = openssl_verify(&key.body, &index.signature, &changed);
    assert!(!ok, "openssl must refuse a changed index: {out}");

    // The package clients download is the uploaded file.
    let file = curl_get(&url(
        "static/acme/alpine/edge/main/x86_64/gitea-test-1.4.1-r3.apk",
    ));
    assert_eq!(file.status, 200);
    assert_eq!(file.body, apk);
}

// ---- the CLI's remote mode -------------------------------------------------------------------

/// Serves `app` on a loopback port; returns its base URL.
pub async fn serve_on_loopback(app: &TestApp) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let router = app.router.clone();
    tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    format!("http://{address}")
}

/// Runs the `packages` binary (blocking, in a thread) with `args`.
pub async fn run_cli(args: Vec<String>, env: Vec<(&'static str, String)>) -> std::process::Output {
    tokio::task::spawn_blocking(move || {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_packages"));
        command
            .args(&args)
            .env_remove("PACKAGES_SERVER")
            .env_remove("PACKAGES_TOKEN");
        for (name, value) in env {
            command.env(name, value);
        }
        command.output().expect("run packages")
    })
    .await
    .unwrap()
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| (*a).to_owned()).collect()
}

#[tokio::test]
async fn cli_remote_upload_and_check() {
    let app = TestApp::new().await;
    let server = serve_on_loopback(&app).await;
    let token = app.token("acme/alpine/edge", false).await;
    let fixture = apk_fixture("gitea-test-1.4.1-r3.apk");
    let fixture = fixture.to_str().unwrap();
    let remote = vec![
        ("PACKAGES_SERVER", server.clone()),
        ("PACKAGES_TOKEN", token.clone()),
    ];

    // Not yet published: exit status 1, one line.
    let check = run_cli(
        strings(&[
            "check",
            "--file",
            fixture,
            "--org",
            "acme",
            "--version",
            "edge",
            "--repo",
            "main",
        ]),
        remote.clone(),
    )
    .await;
    assert_eq!(check.status.code(), Some(1), "{check:?}");
    assert_eq!(
        String::from_utf8_lossy(&check.stdout),
        "not published: gitea-test-1.4.1-r3.apk in acme/alpine/edge/main/x86_64\n"
    );

    let upload = run_cli(
        strings(&[
            "upload",
            "--create",
            "--org",
            "acme",
            "--version",
            "edge",
            "--repo",
            "main",
            fixture,
        ]),
        remote.clone(),
    )
    .await;
    assert!(upload.status.success(), "{upload:?}");
    assert_eq!(
        String::from_utf8_lossy(&upload.stdout),
        format!("{fixture} gitea-test 1.4.1-r3 -> acme/alpine/edge/main/x86_64\n")
    );
    // `--json`: the shape of the direct mode's output.
    let again = run_cli(
        vec![
            "--json".into(),
            "upload".into(),
            "--create".into(),
            "--org".into(),
            "acme".into(),
            "--version".into(),
            "edge".into(),
            "--repo".into(),
            "main".into(),
            "--server".into(),
            server.clone(),
            "--token".into(),
            token.clone(),
            fixture.into(),
        ],
        vec![],
    )
    .await;
    assert!(again.status.success(), "{again:?}");
    let json: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(json[0]["arch"], "x86_64");
    assert_eq!(json[0]["unchanged"], json!(true));
    assert_eq!(json[0]["record"]["name"], "gitea-test");
    assert_eq!(json[0]["record"]["file_size"], json!(1353));

    // Published now, by file and by APKBUILD, through the server and the store.
    let dir = tempfile::tempdir().unwrap();
    let apkbuild = dir.path().join("APKBUILD");
    std::fs::write(
        &apkbuild,
        "pkgname=gitea-test\n_v=1.4.1\npkgver=$_v\npkgrel=3\narch=\"x86_64\"\n",
    )
    .unwrap();
    let apkbuild = apkbuild.to_str().unwrap();
    for what in [["--file", fixture], ["--apkbuild", apkbuild]] {
        let check = run_cli(
            strings(&[
                "check",
                what[0],
                what[1],
                "--org",
                "acme",
                "--version",
                "edge",
                "--repo",
                "main",
            ]),
            remote.clone(),
        )
        .await;
        assert_eq!(check.status.code(), Some(0), "{check:?}");
        assert_eq!(
            String::from_utf8_lossy(&check.stdout),
            "published: gitea-test-1.4.1-r3.apk in acme/alpine/edge/main/x86_64\n"
        );
    }
    let store = app
        .stores
        .public()
        .local_root()
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let check = run_cli(
        strings(&[
            "--storage",
            &store,
            "check",
            "--apkbuild",
            apkbuild,
            "--org",
            "acme",
            "--version",
            "edge",
            "--repo",
            "main",
        ]),
        vec![],
    )
    .await;
    assert_eq!(check.status.code(), Some(0), "{check:?}");
    std::fs::write(
        dir.path().join("APKBUILD"),
        "pkgname=gitea-test\npkgver=1.4.2\npkgrel=0\n",
    )
    .unwrap();
    let check = run_cli(
        strings(&[
            "--storage",
            &store,
            "check",
            "--apkbuild",
            apkbuild,
            "--org",
            "acme",
            "--version",
            "edge",
            "--repo",
            "main",
        ]),
        vec![],
    )
    .await;
    assert_eq!(check.status.code(), Some(1), "{check:?}");
    assert_eq!(
        String::from_utf8_lossy(&check.stdout),
        "not published: gitea-test-1.4.2-r0.apk in acme/alpine/edge/main\n"
    );

    // Out of scope: the server's message, and a failure.
    let denied = run_cli(
        strings(&[
            "upload",
            "--create",
            "--org",
            "acme",
            "--version",
            "v3.20",
            "--repo",
            "main",
            fixture,
        ]),
        remote.clone(),
    )
    .await;
    assert!(!denied.status.success());
    let stderr = String::from_utf8_lossy(&denied.stderr);
    assert!(
        stderr.contains("403") && stderr.contains("may not publish"),
        "{stderr}"
    );
    assert!(!stderr.contains(&token), "the token must not be printed");
}

// ---- uploads stream to disk --------------------------------------------------------------

/// An upload larger than the JSON body limit goes through with the default limits.
#[tokio::test]
async fn uploads_are_not_held_to_the_json_limit() {
    let app = TestApp::new().await;
    let apk = ApkBuilder::new("big", "1.0-r0", "x86_64")
        .file("usr/share/big", &crate::support::noise(600 << 10, 7))
        .build();
    assert!(apk.len() > 512 << 10);
    app.post_form(
        &format!("{V1_REPO}/packages"),
        Some(&app.admin),
        &[Part::File("package", "big-1.0-r0.apk", &apk)],
    )
    .await
    .expect(201);
}

/// `VmRSS` or `VmHWM` of this process, in bytes.
fn proc_status_bytes(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_else(|| panic!("no {field}"));
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("a number of kB");
    kib << 10
}

const RSS_CHILD: &str = "PACKAGES_TEST_UPLOAD_RSS_CHILD";

/// A 1 GiB upload is streamed to a temporary file: the process's peak RSS
/// grows by less than 64 MiB. Runs in a child process of this test binary so
/// that no other test's memory counts.
#[tokio::test]
async fn a_1_gib_upload_streams_to_disk() {
    if std::env::var_os(RSS_CHILD).is_some() {
        return upload_1_gib_and_report_peak().await;
    }
    if !Path::new("/proc/self/clear_refs").exists() {
        eprintln!("skipped: no /proc/self/clear_refs to reset the peak RSS");
        return;
    }
    let out = tokio::task::spawn_blocking(|| {
        std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "api::a_1_gib_upload_streams_to_disk",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(RSS_CHILD, "1")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let growth: u64 = stdout
        .lines()
        .find_map(|l| Some(l.split_once("peak-rss-growth-bytes=")?.1))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no report from the child: {stdout}"));
    eprintln!("a 1 GiB upload raised the peak RSS by {} KiB", growth >> 10);
    assert!(
        growth < 64 << 20,
        "a 1 GiB upload raised the peak RSS by {} MiB",
        growth >> 20
    );
}

async fn upload_1_gib_and_report_peak() {
    const SIZE: usize = 1 << 30;
    const CHUNK: usize = 256 << 10;
    let upload_dir = tempfile::tempdir().unwrap();
    let app = TestApp::with_config(ApiConfig {
        max_body: 2 << 30,
        upload_dir: Some(upload_dir.path().to_owned()),
        ..ApiConfig::default()
    })
    .await;
    let head = Bytes::from(format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"package\"; filename=\"huge-1.0-r0.apk\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    ));
    let tail = Bytes::from(format!("\r\n--{BOUNDARY}--\r\n"));
    let length = head.len() + SIZE + tail.len();
    let chunk = Bytes::from(vec![0x5a; CHUNK]);
    let parts = std::iter::once(head)
        .chain(std::iter::repeat_n(chunk, SIZE / CHUNK))
        .chain(std::iter::once(tail))
        .map(Ok::<_, std::io::Error>);
    let request = TestApp::request(Method::POST, COMPAT_PKGS, Some(&app.admin))
        .header(
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .header(header::CONTENT_LENGTH, length)
        .body(Body::from_stream(futures::stream::iter(parts)))
        .unwrap();
    // Reset the peak to the current RSS, then upload.
    std::fs::write("/proc/self/clear_refs", "5").expect("reset the peak RSS");
    let baseline = proc_status_bytes("VmRSS:");
    let response = app.send(request).await;
    let peak = proc_status_bytes("VmHWM:");
    // Received whole, then refused: it is not a package.
    response.expect_error(422);
    let left: Vec<_> = std::fs::read_dir(upload_dir.path()).unwrap().collect();
    assert!(
        left.is_empty(),
        "the staged upload was not deleted: {left:?}"
    );
    let metrics = app.get("/metrics", None).await.text();
    assert!(
        metrics.contains(&format!("packages_upload_bytes_total {SIZE}")),
        "{metrics}"
    );
    println!("peak-rss-growth-bytes={}", peak.saturating_sub(baseline));
}
