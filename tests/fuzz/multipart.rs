//! Multipart upload handling, through the whole HTTP router (it has no pure
//! part): mutated forms get a 2xx or a 4xx, never a 5xx or a panic.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, header};
use packages::api::{self, ApiConfig, ApiState};
use packages::formats::apk::builder::ApkBuilder;
use packages::publish::Publisher;
use packages::repo::{Distro, Org, Scope};
use packages::storage::{LocalStore, Storage};
use packages::stores::Stores;
use packages::tokens::{TokenLevel, Tokens};
use rand::Rng as _;
use rand::seq::SliceRandom as _;
use tower::ServiceExt as _;

use crate::mutate;

const BOUNDARY: &str = "------------------------a1b2c3d4e5f60718";
const URI: &str = "/api/v1/orgs/acme/distros/alpine/versions/edge/repos/main/packages";

/// A form like curl's `-F`: `(name, file name, bytes)`; no file name for text fields.
fn form(parts: &[(&str, Option<&str>, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, file, bytes) in parts {
        body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        let disposition = match file {
            Some(file) => format!(
                "Content-Disposition: form-data; name=\"{name}\"; filename=\"{file}\"\r\n\
                 Content-Type: application/octet-stream\r\n\r\n"
            ),
            None => format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n"),
        };
        body.extend_from_slice(disposition.as_bytes());
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

#[test]
fn fuzz_multipart_upload() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let (router, token) = rt.block_on(async {
        let storage = Storage::local(LocalStore::open(&dir.path().join("store")).unwrap());
        let stores = Stores::shared(storage);
        let publisher = Publisher::new(stores.clone());
        let org = Org::parse("acme").unwrap();
        publisher.create_org(&org).await.unwrap();
        let scope = Scope::new(org, Some(Distro::ALPINE), None, None).unwrap();
        let pem = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/keys/test-signing.rsa"),
        )
        .unwrap();
        packages::keys::import(&stores, &scope, &pem).await.unwrap();
        let token = Tokens::new(stores.clone(), Duration::ZERO)
            .create(
                &TokenLevel::parse("acme/alpine/edge/main").unwrap(),
                "fuzz",
                false,
                None,
            )
            .await
            .unwrap()
            .0
            .expose()
            .to_owned();
        let state = ApiState::new(publisher, ApiConfig::default());
        (api::router(state), token)
    });
    let apk = ApkBuilder::new("fuzz", "1.0-r0", "x86_64")
        .file("usr/share/fuzz", b"fuzz")
        .build();
    let noarch = ApkBuilder::new("fuzz-any", "1.0-r0", "noarch")
        .file("usr/share/any", b"any")
        .build();
    let seeds = [
        form(&[("package", Some("fuzz-1.0-r0.apk"), &apk)]),
        form(&[
            ("package", Some("fuzz-any-1.0-r0.apk"), &noarch),
            ("arch", None, b"x86_64"),
        ]),
        form(&[("arch", None, b"aarch64"), ("package", None, &noarch)]),
    ];
    crate::run(
        "multipart",
        |rng| {
            let mut body = seeds.choose(rng).expect("seeds").clone();
            // Mostly the form's syntax (headers, boundaries, field names); the
            // package bytes themselves are the apk target's business.
            let head = rng.gen_range(0..body.len().min(400));
            if rng.gen_bool(0.7) {
                let mut start = body[..head].to_vec();
                mutate::bytes(rng, &mut start);
                start.extend_from_slice(&body[head..]);
                body = start;
            } else {
                mutate::bytes(rng, &mut body);
            }
            body
        },
        |body| {
            let request = Request::post(URI)
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .header(
                    header::CONTENT_TYPE,
                    format!("multipart/form-data; boundary={BOUNDARY}"),
                )
                .body(Body::from(body.to_vec()))
                .expect("request");
            let response = rt
                .block_on(router.clone().oneshot(request))
                .expect("infallible");
            let status = response.status();
            if status.is_server_error() {
                let text = rt
                    .block_on(axum::body::to_bytes(response.into_body(), 1 << 20))
                    .unwrap_or_default();
                return Err(format!("{status}: {}", String::from_utf8_lossy(&text)));
            }
            Ok(())
        },
    );
}
