//! Versions and repositories are explicit (issue 12, item 3): an upload to an
//! unknown one is refused with the closest existing name, `repo create` and
//! `upload --create` create them, and versions, repositories and arches can be
//! deleted through the normal remove path (files kept for the grace period).

use std::path::Path;
use std::process::{Command, Output};

use axum::http::Method;
use serde_json::Value;

use crate::api::{Part, TestApp, fixture_bytes, multipart};
use crate::support::{ORG, apk_fixture};

fn packages(storage: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_packages"))
        .env_remove("PACKAGES_STORAGE")
        .env_remove("PACKAGES_CONFIG_STORAGE")
        .env_remove("PACKAGES_SERVER")
        .env("RUST_LOG", "warn")
        .arg("--storage")
        .arg(storage)
        .args(args)
        .output()
        .expect("run packages")
}

#[track_caller]
fn ok(storage: &Path, args: &[&str]) -> String {
    let out = packages(storage, args);
    assert!(
        out.status.success(),
        "packages {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[track_caller]
fn fails(storage: &Path, args: &[&str]) -> String {
    let out = packages(storage, args);
    assert!(
        !out.status.success(),
        "packages {args:?} should fail: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn cli_versions_and_repos_are_explicit() {
    let dir = tempfile::tempdir().unwrap();
    let storage = dir.path().join("store");
    ok(&storage, &["org", "create", ORG]);
    ok(
        &storage,
        &[
            "key", "generate", "--org", ORG, "--distro", "alpine", "--bits", "2048",
        ],
    );
    let x = apk_fixture("package-x-1.0.0-r0.apk");
    let x = x.to_str().unwrap();
    let repo = |v: &'static str, r: &'static str| ["--org", ORG, "--version", v, "--repo", r];

    // An unknown repository: refused, with the fix, and nothing is stored.
    let before = files_under(&storage);
    let err = fails(
        &storage,
        &[&["upload"][..], &repo("edge", "main"), &[x]].concat(),
    );
    assert!(err.contains("does not exist"), "{err}");
    assert!(err.contains("packages repo create"), "{err}");
    assert!(err.contains("--create"), "{err}");
    assert_eq!(
        files_under(&storage),
        before,
        "a refused upload stores nothing"
    );

    // Created explicitly, then uploaded to.
    let out = ok(
        &storage,
        &[&["repo", "create"][..], &repo("edge", "main")].concat(),
    );
    assert!(out.contains("created"), "{out}");
    let out = ok(
        &storage,
        &[&["repo", "create"][..], &repo("edge", "main")].concat(),
    );
    assert!(out.contains("exists already"), "{out}");
    ok(
        &storage,
        &[&["upload"][..], &repo("edge", "main"), &[x]].concat(),
    );
    // Created by the upload itself with --create.
    ok(
        &storage,
        &[&["upload", "--create"][..], &repo("v3.20", "main"), &[x]].concat(),
    );

    // Mistyped names name the closest existing one.
    let err = fails(
        &storage,
        &[&["upload"][..], &repo("edgee", "main"), &[x]].concat(),
    );
    assert!(err.contains("did you mean version `edge`?"), "{err}");
    let err = fails(&storage, &[&["list"][..], &repo("edgee", "main")].concat());
    assert!(err.contains("did you mean version `edge`?"), "{err}");
    let err = fails(&storage, &[&["list"][..], &repo("edge", "mian")].concat());
    assert!(err.contains("did you mean repository `main`?"), "{err}");
    let err = fails(
        &storage,
        &[&["remove"][..], &repo("3.20", "main"), &["package-x"]].concat(),
    );
    assert!(err.contains("did you mean version `v3.20`?"), "{err}");

    // repo list
    let listed = ok(&storage, &["repo", "list", "--org", ORG]);
    assert_eq!(
        listed.lines().collect::<Vec<_>>(),
        [
            format!("{ORG}/alpine/edge/main"),
            format!("{ORG}/alpine/v3.20/main")
        ]
    );

    // Deleting an arch: its packages leave the index, the files stay for the grace period.
    let apk = storage.join(format!(
        "static/{ORG}/alpine/edge/main/x86_64/package-x-1.0.0-r0.apk"
    ));
    assert!(apk.is_file());
    let out = ok(
        &storage,
        &[
            &["--json", "repo", "delete"][..],
            &repo("edge", "main"),
            &["--arch", "x86_64"],
        ]
        .concat(),
    );
    let deleted: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(deleted["removed"].as_array().unwrap().len(), 1, "{deleted}");
    assert!(apk.is_file(), "the file stays for the grace period");
    let arches = ok(
        &storage,
        &[&["--json", "list"][..], &repo("edge", "main")].concat(),
    );
    assert_eq!(arches.trim(), "[]");

    // Deleting a repository: it no longer exists.
    ok(
        &storage,
        &[&["repo", "delete"][..], &repo("edge", "main")].concat(),
    );
    let err = fails(&storage, &[&["list"][..], &repo("edge", "main")].concat());
    assert!(err.contains("does not exist"), "{err}");

    // Deleting a version: every repository of it.
    ok(
        &storage,
        &["repo", "delete", "--org", ORG, "--version", "v3.20"],
    );
    let listed = ok(&storage, &["repo", "list", "--org", ORG]);
    assert_eq!(listed.trim(), "", "{listed}");
    let err = fails(
        &storage,
        &["repo", "delete", "--org", ORG, "--version", "v3.20"],
    );
    assert!(err.contains("has no version `v3.20`"), "{err}");
}

const V1: &str = "/api/v1/orgs/acme/distros/alpine/versions";

#[tokio::test]
async fn api_versions_and_repos_are_explicit() {
    let app = TestApp::new().await;
    let admin = app.token("", false).await;
    let admin = Some(admin.as_str());
    app.json(
        Method::POST,
        "/api/v1/orgs",
        admin,
        serde_json::json!({"name": "acme"}),
    )
    .await
    .expect(201);
    let bytes = fixture_bytes("package-x-1.0.0-r0.apk");
    let upload = |path: String| {
        let body = multipart(&[Part::File("package", "package-x-1.0.0-r0.apk", &bytes)]);
        TestApp::request(Method::POST, &path, admin)
            .header(
                "content-type",
                format!("multipart/form-data; boundary={}", crate::api::BOUNDARY),
            )
            .body(axum::body::Body::from(body))
            .unwrap()
    };

    // Unknown: 404 with the fix; nothing staged.
    let before = app.snapshot().await;
    let refused = app
        .send(upload(format!("{V1}/edge/repos/main/packages")))
        .await;
    let message = refused.expect_error(404);
    assert!(message.contains("does not exist"), "{message}");
    assert_eq!(app.snapshot().await, before, "nothing stored");

    // PUT creates; the upload then works; `create=true` creates on upload.
    app.json(
        Method::PUT,
        &format!("{V1}/edge/repos/main"),
        admin,
        serde_json::json!({}),
    )
    .await
    .expect(201);
    app.send(upload(format!("{V1}/edge/repos/main/packages")))
        .await
        .expect(201);
    app.send(upload(format!(
        "{V1}/v3.20/repos/main/packages?create=true"
    )))
    .await
    .expect(201);
    let refused = app
        .send(upload(format!("{V1}/edgee/repos/main/packages")))
        .await;
    let message = refused.expect_error(404);
    assert!(
        message.contains("did you mean version `edge`?"),
        "{message}"
    );

    // A repo token cannot delete another repository or the version.
    let main = app.token("acme/alpine/edge/main", false).await;
    app.call(
        Method::DELETE,
        &format!("{V1}/v3.20/repos/main"),
        Some(&main),
    )
    .await
    .expect_error(403);
    app.call(Method::DELETE, &format!("{V1}/edge"), Some(&main))
        .await
        .expect_error(403);

    // Arch, repository, version.
    let gone = app
        .call(
            Method::DELETE,
            &format!("{V1}/edge/repos/main/arches/x86_64"),
            Some(&main),
        )
        .await;
    gone.expect(200);
    assert_eq!(gone.json()["removed"].as_array().unwrap().len(), 1);
    app.call(
        Method::DELETE,
        &format!("{V1}/edge/repos/main"),
        Some(&main),
    )
    .await
    .expect(200);
    app.get(&format!("{V1}/edge/repos/main"), admin)
        .await
        .expect_error(404);
    let gone = app
        .call(Method::DELETE, &format!("{V1}/v3.20"), admin)
        .await;
    gone.expect(200);
    assert_eq!(gone.json()["repositories"].as_array().unwrap().len(), 1);
    app.call(Method::DELETE, &format!("{V1}/v3.20"), admin)
        .await
        .expect_error(404);
}
