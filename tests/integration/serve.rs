//! `packages serve`: the public tree over HTTP, driven in-process with
//! `tower::ServiceExt::oneshot` (no socket).

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use packages::formats::apk::builder::ApkBuilder;
use tower::ServiceExt as _;

use crate::support::{
    Ctx, Layout, ORG, TestRepo, apk_fixture, openssl_verify, parse_index, setup_repo, write_file,
};

all_backends!(
    serves_indexes_packages_and_keys,
    conditional_get_and_head,
    byte_ranges,
    private_tree_is_unreachable_shared_store,
    private_tree_is_unreachable_separate_stores,
);

struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: header::HeaderName) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().expect("ASCII header").to_owned())
    }
}

async fn send(t: &TestRepo, method: Method, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut request = Request::builder().method(method).uri(path);
    for (n, v) in headers {
        request = request.header(*n, *v);
    }
    let request = request
        .body(Body::empty())
        .unwrap_or_else(|e| panic!("request {path:?}: {e}"));
    let response = packages::serve::router(t.stores.clone())
        .oneshot(request)
        .await
        .expect("infallible router");
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), 64 << 20)
        .await
        .expect("body")
        .to_vec();
    Reply {
        status,
        headers,
        body,
    }
}

async fn get(t: &TestRepo, path: &str) -> Reply {
    send(t, Method::GET, path, &[]).await
}

fn max_age(cache_control: &str) -> Option<u64> {
    cache_control
        .split(',')
        .find_map(|d| d.trim().strip_prefix("max-age="))
        .and_then(|v| v.parse().ok())
}

fn url(t: &TestRepo, arch: &str, file: &str) -> String {
    format!(
        "/{}",
        t.key(arch, file)
            .strip_prefix("static/")
            .expect("public key")
    )
}

async fn published(ctx: &Ctx, layout: Layout) -> TestRepo {
    let t = setup_repo(ctx.stores(layout).await).await;
    t.publish_fixtures().await;
    t
}

async fn serves_indexes_packages_and_keys(ctx: Ctx) {
    let t = published(&ctx, Layout::Shared).await;

    // The index: gzip, short cache, ETag, the stored bytes, and it verifies.
    let index_url = url(&t, "x86_64", "APKINDEX.tar.gz");
    let r = get(&t, &index_url).await;
    assert_eq!(r.status, StatusCode::OK, "{index_url}");
    assert_eq!(
        r.header(header::CONTENT_TYPE).as_deref(),
        Some("application/gzip")
    );
    let cache = r.header(header::CACHE_CONTROL).expect("Cache-Control");
    assert!(
        !cache.contains("immutable") && max_age(&cache).is_some_and(|s| s <= 300),
        "index must be cached briefly: {cache}"
    );
    assert!(r.header(header::ETAG).is_some_and(|e| e.starts_with('"')));
    assert!(r.header(header::LAST_MODIFIED).is_some());
    assert_eq!(
        r.header(header::CONTENT_LENGTH),
        Some(r.body.len().to_string())
    );
    assert_eq!(Some(r.body.clone()), t.index_bytes("x86_64").await);

    // The public key, where the key name says.
    let key = get(&t, &format!("/{ORG}/alpine/{}", t.key_name)).await;
    assert_eq!(key.status, StatusCode::OK);
    assert!(String::from_utf8_lossy(&key.body).contains("BEGIN PUBLIC KEY"));
    let index = parse_index(&r.body);
    let (ok, out) = openssl_verify(&key.body, &index.signature, &index.unsigned);
    assert!(ok, "served index verifies with the served key: {out}");

    // Packages: immutable and long-lived, the exact file.
    for (arch, file) in [
        ("x86_64", "package-x-1.0.0-r0.apk"),
        ("aarch64", "gitea-noarch-1.4-r0.apk"),
        ("aarch64", "alpine-baselayout-3.2.0-r23.apk"),
    ] {
        let r = get(&t, &url(&t, arch, file)).await;
        assert_eq!(r.status, StatusCode::OK, "{file}");
        assert_eq!(r.body, std::fs::read(apk_fixture(file)).unwrap());
        assert_eq!(
            r.header(header::CONTENT_TYPE).as_deref(),
            Some("application/vnd.apk")
        );
        let cache = r.header(header::CACHE_CONTROL).unwrap();
        assert!(
            cache.contains("immutable") && max_age(&cache).is_some_and(|s| s >= 86400),
            "packages are immutable: {cache}"
        );
    }

    // Names with `+`, raw or percent-encoded; an encoded letter decodes.
    let dir = ctx.temp_dir();
    let plus = ApkBuilder::new("lib+plus", "1.0-r0", "x86_64")
        .file("usr/lib/libplus", b"+")
        .build();
    t.upload(&write_file(&dir, "lib+plus-1.0-r0.apk", &plus), None)
        .await
        .unwrap();
    for path in [
        url(&t, "x86_64", "lib+plus-1.0-r0.apk"),
        url(&t, "x86_64", "lib%2Bplus-1.0-r0.apk"),
        url(&t, "x86_64", "lib%2bplus-1.0-r0.apk"),
    ] {
        let r = get(&t, &path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert_eq!(r.body, plus, "{path}");
    }
    let r = get(&t, &url(&t, "x86_64", "%41PKINDEX.tar.gz")).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "percent-decoding of plain letters"
    );

    // Missing things.
    for path in [
        url(&t, "x86_64", "nope-1.0-r0.apk"),
        url(&t, "riscv64", "APKINDEX.tar.gz"),
        format!("/{ORG}/alpine/v3.20/main/riscv64/"),
        "/".to_owned(),
    ] {
        let r = get(&t, &path).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
    }
    // A folder URL serves its browse page; without the `/` it redirects there.
    let folder = format!("/{ORG}/alpine/v3.20/main/x86_64/");
    assert_eq!(get(&t, &folder).await.status, StatusCode::OK, "{folder}");
    let r = get(&t, folder.trim_end_matches('/')).await;
    assert_eq!(r.status, StatusCode::MOVED_PERMANENTLY);
    assert_eq!(r.header(header::LOCATION).as_deref(), Some(folder.as_str()));

    // Only GET and HEAD.
    for method in [Method::POST, Method::PUT, Method::DELETE] {
        let r = send(&t, method.clone(), &index_url, &[]).await;
        assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
        assert!(
            t.index_bytes("x86_64").await.is_some(),
            "{method} did nothing"
        );
    }
}

async fn conditional_get_and_head(ctx: Ctx) {
    let t = published(&ctx, Layout::Shared).await;
    for (arch, file) in [
        ("x86_64", "APKINDEX.tar.gz"),
        ("x86_64", "package-y-1.0.0-r0.apk"),
    ] {
        let path = url(&t, arch, file);
        let full = get(&t, &path).await;
        let etag = full.header(header::ETAG).expect("ETag");

        let r = send(&t, Method::GET, &path, &[("if-none-match", &etag)]).await;
        assert_eq!(r.status, StatusCode::NOT_MODIFIED, "{file}");
        assert!(r.body.is_empty());
        assert_eq!(r.header(header::ETAG), Some(etag.clone()));

        let list = format!("\"something-else\", {etag}");
        let r = send(&t, Method::GET, &path, &[("if-none-match", &list)]).await;
        assert_eq!(r.status, StatusCode::NOT_MODIFIED, "ETag in a list");

        let r = send(&t, Method::GET, &path, &[("if-none-match", "\"stale\"")]).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.body, full.body);

        let r = send(&t, Method::HEAD, &path, &[]).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.body.is_empty(), "HEAD has no body");
        assert_eq!(
            r.header(header::CONTENT_LENGTH),
            Some(full.body.len().to_string())
        );
        assert_eq!(r.header(header::ETAG), Some(etag.clone()));
        assert_eq!(
            r.header(header::CONTENT_TYPE),
            full.header(header::CONTENT_TYPE)
        );
    }

    // A new package changes the index and its ETag; the old ETag no longer matches.
    let path = url(&t, "x86_64", "APKINDEX.tar.gz");
    let old = get(&t, &path).await;
    let old_etag = old.header(header::ETAG).unwrap();
    let dir = ctx.temp_dir();
    let z = ApkBuilder::new("package-z", "1.0-r0", "x86_64")
        .file("usr/share/z", b"z")
        .build();
    t.upload(&write_file(&dir, "package-z-1.0-r0.apk", &z), None)
        .await
        .unwrap();
    let r = send(&t, Method::GET, &path, &[("if-none-match", &old_etag)]).await;
    assert_eq!(r.status, StatusCode::OK, "changed index, old ETag");
    assert_ne!(r.header(header::ETAG), Some(old_etag));
    assert!(parse_index(&r.body).record("package-z").is_some());
}

/// Request paths that try to reach the private tree (or step outside `static/`).
fn attacks(t: &TestRepo) -> Vec<String> {
    let key = "config/acme/alpine/signing-key.pem";
    let mut paths = vec![
        format!("/../{key}"),
        format!("/../../{key}"),
        format!("/%2e%2e/{key}"),
        format!("/%2E%2E/{key}"),
        format!("/%2E%2E%2F{}", key.replace('/', "%2F")),
        format!("/%2e%2e%2f%2e%2e%2f{}", key.replace('/', "%2f")),
        format!("/%252e%252e/{key}"),
        format!("//{key}"),
        format!("///{key}"),
        format!("/{key}"),
        "/config/_orgs/acme.json".to_owned(),
        format!("/static/{key}"),
        format!("/static/{ORG}/alpine/{}", t.key_name),
        format!(
            "/static/{}",
            url(t, "x86_64", "APKINDEX.tar.gz").trim_start_matches('/')
        ),
        format!("/./{key}"),
        format!("/%2e/{key}"),
        format!("/{ORG}/alpine/v3.20/main/x86_64/../../../../../{key}"),
        format!("/{ORG}/..%2f..%2f{}", key),
        format!("/{ORG}/%2e%2e/%2e%2e/{key}"),
        format!("/..%5c{}", key.replace('/', "%5c")),
        format!("/%5c..%5c{key}"),
        format!("/{ORG}%5c..%5c..%5c{}", key.replace('/', "%5c")),
        format!("/{ORG}/alpine/%00/../../{key}"),
        format!("/{ORG}/alpine/signing-key.pem%00"),
        format!("/{ORG}/alpine/%00"),
        format!("/{ORG}/alpine/v3.20/main/x86_64/state.json"),
        "/.packages-tmp".to_owned(),
        "/.packages-locks".to_owned(),
        format!("/%c0%ae%c0%ae/{key}"),
        format!("/{ORG}/alpine/..;/..;/{key}"),
        format!("/{key}?x=1"),
    ];
    // Raw backslashes, if the URI parser lets them through at all.
    for raw in [
        format!("/..\\{}", key.replace('/', "\\")),
        format!("/{ORG}\\..\\..\\{key}"),
    ] {
        if raw.parse::<axum::http::Uri>().is_ok() {
            paths.push(raw);
        } else {
            eprintln!("the URI parser refuses {raw:?} itself (covered encoded)");
        }
    }
    paths
}

/// Byte ranges, as a CDN origin must answer them: one range gives 206 with
/// exactly those bytes, a range past the end 416, an `If-Range` naming another
/// version the whole file.
async fn byte_ranges(ctx: Ctx) {
    let t = published(&ctx, Layout::Shared).await;
    let file = "package-x-1.0.0-r0.apk";
    let path = url(&t, "x86_64", file);
    let whole = std::fs::read(apk_fixture(file)).unwrap();
    let size = whole.len();
    let plain = get(&t, &path).await;
    assert_eq!(
        plain.header(header::ACCEPT_RANGES).as_deref(),
        Some("bytes")
    );
    let etag = plain.header(header::ETAG).expect("an ETag");
    for (range, from, to) in [
        ("bytes=0-9", 0, 10),
        ("bytes=100-", 100, size),
        (&*format!("bytes=-{}", 7), size - 7, size),
        ("bytes=5-5", 5, 6),
    ] {
        let r = send(&t, Method::GET, &path, &[("range", range)]).await;
        assert_eq!(r.status, StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(r.body, whole[from..to], "{range}");
        assert_eq!(
            r.header(header::CONTENT_RANGE),
            Some(format!("bytes {from}-{}/{size}", to - 1)),
            "{range}"
        );
        assert_eq!(
            r.header(header::CONTENT_LENGTH),
            Some((to - from).to_string())
        );
    }
    let past = send(
        &t,
        Method::GET,
        &path,
        &[("range", &format!("bytes={size}-"))],
    )
    .await;
    assert_eq!(past.status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(
        past.header(header::CONTENT_RANGE),
        Some(format!("bytes */{size}"))
    );
    let current = send(
        &t,
        Method::GET,
        &path,
        &[("range", "bytes=0-9"), ("if-range", &etag)],
    )
    .await;
    assert_eq!(current.status, StatusCode::PARTIAL_CONTENT);
    let stale = send(
        &t,
        Method::GET,
        &path,
        &[("range", "bytes=0-9"), ("if-range", "\"another\"")],
    )
    .await;
    assert_eq!(stale.status, StatusCode::OK);
    assert_eq!(stale.body, whole);
    // Several ranges: the whole file (allowed by RFC 9110).
    let many = send(&t, Method::GET, &path, &[("range", "bytes=0-1,4-5")]).await;
    assert_eq!(many.status, StatusCode::OK);
    assert_eq!(many.body, whole);
}

async fn private_tree_is_unreachable(ctx: Ctx, layout: Layout) {
    let t = published(&ctx, layout).await;
    let private_key = t
        .stores
        .private()
        .get_bytes("config/acme/alpine/signing-key.pem")
        .await
        .expect("the private key is stored")
        .0;
    assert!(String::from_utf8_lossy(&private_key).contains("PRIVATE KEY"));
    // Positive control: the public key is served.
    let r = get(&t, &format!("/{ORG}/alpine/{}", t.key_name)).await;
    assert_eq!(r.status, StatusCode::OK);

    for path in attacks(&t) {
        for method in [Method::GET, Method::HEAD] {
            let r = send(&t, method.clone(), &path, &[]).await;
            assert!(
                r.status == StatusCode::NOT_FOUND || r.status == StatusCode::BAD_REQUEST,
                "{method} {path}: {} (must be 404)",
                r.status
            );
            let body = String::from_utf8_lossy(&r.body);
            assert!(
                !body.contains("PRIVATE KEY") && !body.contains("\"created\""),
                "{method} {path} leaked: {body}"
            );
            assert!(
                r.header(header::ETAG).is_none(),
                "{method} {path}: a refused path has no ETag"
            );
        }
    }
}

async fn private_tree_is_unreachable_shared_store(ctx: Ctx) {
    private_tree_is_unreachable(ctx, Layout::Shared).await;
}

async fn private_tree_is_unreachable_separate_stores(ctx: Ctx) {
    private_tree_is_unreachable(ctx, Layout::Separate).await;
}
