//! `packages import`: a tree laid out exactly as the old service
//! (atlascloud/packages) writes it (its own key made with `openssl`, its
//! plaintext token files, several orgs, versions and repos, real `.apk`
//! fixtures) is imported; then the index served by our server verifies
//! with the OLD public key file (`packages verify --key`, as apk checks it),
//! and an OLD token uploads through the old API route and through /api/v1.

use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, header};
use packages::api::{self, ApiConfig, ApiState};
use packages::import::{ImportOptions, Kind, Outcome, Report, import};
use packages::publish::Publisher;
use packages::storage::CrashMode;
use packages::stores::Stores;
use packages::tokens::Tokens;
use tower::ServiceExt as _;

use crate::api::{BOUNDARY, Part, multipart, package, run_cli};
use crate::support::{
    Bucket, Ctx, apk_fixture, assert_unchanged, openssl_verify, parse_index, snapshot,
};

backend_tests!([local, garage, moto]
    imports_a_tree_old_clients_and_old_tokens_keep_using,
    refuses_what_it_cannot_import_and_imports_the_rest,
    a_crash_midway_is_completed_by_running_it_again,
);

/// The name `abuild-keygen` would give; clients hold `<it>.pub` in /etc/apk/keys/.
const KEY_FILE: &str = "ops@example.org-65f1e2d3.rsa";
const ACME_TOKEN: &str = "3f9a1c0b7d2e4f6a8b9c0d1e2f3a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c";
const BETA_TOKEN: &str = "c9b1f5e2-7a4d-4e8b-9f3c-2d1a0b9c8e7f";

/// An old service's tree.
struct OldTree {
    root: PathBuf,
    /// The public key, as `openssl rsa -pubout` wrote it.
    public_pem: Vec<u8>,
}

fn openssl(args: &[&str]) {
    let out = std::process::Command::new("openssl")
        .args(args)
        .output()
        .expect("run openssl (is it installed?)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn put(root: &Path, path: &str, bytes: &[u8]) {
    let path = root.join(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(apk_fixture(name)).unwrap()
}

/// Lays out two orgs as the old service does: `static/<org>/<distro>/<version>/<repo>/<arch>/`
/// for packages, `config/<org>/<distro>/<version>/` for versions, `config/<org>/<distro>/*.rsa`
/// (PKCS#1) for the key, `config/<org>/tokens/<file>` for plaintext tokens.
fn old_tree(ctx: &Ctx) -> OldTree {
    let root = ctx.temp_dir().join("srv-packages");
    let key = root.join("config/acme/alpine").join(KEY_FILE);
    std::fs::create_dir_all(key.parent().unwrap()).unwrap();
    let key_path = key.to_str().unwrap();
    openssl(&["genrsa", "-traditional", "-out", key_path, "2048"]);
    let public = root
        .join("static/acme/alpine")
        .join(format!("{KEY_FILE}.pub"));
    std::fs::create_dir_all(public.parent().unwrap()).unwrap();
    openssl(&[
        "rsa",
        "-in",
        key_path,
        "-pubout",
        "-out",
        public.to_str().unwrap(),
    ]);
    // The second org signs with the same key under another name (a copy).
    std::fs::create_dir_all(root.join("config/beta/alpine")).unwrap();
    std::fs::copy(&key, root.join("config/beta/alpine/beta-1.rsa")).unwrap();
    for (path, apk) in [
        (
            "static/acme/alpine/edge/main/x86_64/package-x-1.0.0-r0.apk",
            "package-x-1.0.0-r0.apk",
        ),
        (
            "static/acme/alpine/edge/main/x86_64/package-y-1.0.0-r0.apk",
            "package-y-1.0.0-r0.apk",
        ),
        (
            "static/acme/alpine/edge/main/x86_64/pretend-baselayout-1.0.0-r0.apk",
            "pretend-baselayout-1.0.0-r0.apk",
        ),
        // Uploaded under another file name: the old service kept it.
        (
            "static/acme/alpine/edge/community/x86_64/gitea.apk",
            "gitea-test-1.4.1-r3.apk",
        ),
        (
            "static/acme/alpine/edge/community/x86_64/gitea-noarch-1.4-r0.apk",
            "gitea-noarch-1.4-r0.apk",
        ),
        (
            "static/acme/alpine/v3.19/main/aarch64/alpine-baselayout-3.2.0-r23.apk",
            "alpine-baselayout-3.2.0-r23.apk",
        ),
        (
            "static/beta/alpine/edge/main/x86_64/package-x-1.0.0-r0.apk",
            "package-x-1.0.0-r0.apk",
        ),
    ] {
        put(&root, path, &fixture(apk));
    }
    // The old index (signed by the old service): rebuilt, not copied.
    put(
        &root,
        "static/acme/alpine/edge/main/x86_64/APKINDEX.tar.gz",
        b"old index",
    );
    for version in ["acme/alpine/edge", "acme/alpine/v3.19", "beta/alpine/edge"] {
        std::fs::create_dir_all(root.join("config").join(version)).unwrap();
    }
    put(
        &root,
        "config/acme/tokens/0",
        format!("{ACME_TOKEN}\n").as_bytes(),
    );
    put(&root, "config/beta/tokens/ci", BETA_TOKEN.as_bytes());
    put(&root, "config/beta/tokens/empty", b"  \n");
    OldTree {
        public_pem: std::fs::read(public).unwrap(),
        root,
    }
}

async fn run(stores: &Stores, tree: &OldTree, dry_run: bool) -> Report {
    let publisher = Publisher::new(stores.clone());
    let tokens = Tokens::new(stores.clone(), Duration::ZERO);
    let options = ImportOptions {
        from_dir: tree.root.clone(),
        dry_run,
    };
    import(&publisher, &tokens, &options).await.expect("import")
}

fn count(report: &Report, kind: Kind, outcome: Outcome) -> usize {
    report
        .entries
        .iter()
        .filter(|e| e.kind == kind && e.outcome == outcome)
        .count()
}

fn router(stores: &Stores) -> Router {
    api::router(ApiState::new(
        Publisher::new(stores.clone()),
        ApiConfig::default(),
    ))
}

async fn send(router: &Router, request: Request<Body>) -> (u16, String) {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, String::from_utf8_lossy(&body).into_owned())
}

async fn upload(router: &Router, uri: &str, token: &str, apk: &[u8], file: &str) -> (u16, String) {
    let body = multipart(&[Part::File("package", file, apk)]);
    let request = Request::builder()
        .method(Method::POST)
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(Body::from(body))
        .unwrap();
    send(router, request).await
}

async fn index_bytes(router: &Router, path: &str) -> Vec<u8> {
    let request = Request::builder().uri(path).body(Body::empty()).unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status().as_u16(), 200, "{path}");
    axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap()
        .to_vec()
}

async fn imports_a_tree_old_clients_and_old_tokens_keep_using(ctx: Ctx) {
    let stores = ctx.shared().await;
    let tree = old_tree(&ctx);

    // A dry run reads everything and writes nothing.
    let before = snapshot(&stores).await;
    let dry = run(&stores, &tree, true).await;
    assert_unchanged(&before, &snapshot(&stores).await, "a dry run");
    assert_eq!(dry.counts.refused, 0, "{dry:#?}");
    assert_eq!(count(&dry, Kind::Package, Outcome::Imported), 7, "{dry:#?}");

    let report = run(&stores, &tree, false).await;
    assert_eq!(report.counts.refused, 0, "{report:#?}");
    assert_eq!(count(&report, Kind::Org, Outcome::Imported), 2);
    assert_eq!(count(&report, Kind::Key, Outcome::Imported), 2);
    assert_eq!(count(&report, Kind::Token, Outcome::Imported), 2);
    assert_eq!(
        count(&report, Kind::Token, Outcome::Skipped),
        1,
        "the empty file"
    );
    assert_eq!(count(&report, Kind::Package, Outcome::Imported), 7);
    let json = serde_json::to_string(&report).unwrap();
    assert!(
        !json.contains(ACME_TOKEN) && !json.contains(BETA_TOKEN),
        "{json}"
    );
    let renamed = report
        .entries
        .iter()
        .find(|e| e.source.ends_with("gitea.apk"))
        .unwrap();
    assert_eq!(
        renamed.target.as_deref(),
        Some("acme/alpine/edge/community/x86_64/gitea-test-1.4.1-r3.apk")
    );

    // The index is signed with the OLD key, under the name clients hold it by.
    let server = router(&stores);
    let key_name = format!("{KEY_FILE}.pub");
    for path in [
        "/acme/alpine/edge/main/x86_64/APKINDEX.tar.gz",
        "/acme/alpine/v3.19/main/aarch64/APKINDEX.tar.gz",
    ] {
        let index = parse_index(&index_bytes(&server, path).await);
        assert_eq!(index.key_name(), key_name, "{path}");
        let (ok, text) = openssl_verify(&tree.public_pem, &index.signature, &index.unsigned);
        assert!(ok, "{path}: {text}");
    }
    let published_key = index_bytes(&server, &format!("/acme/alpine/{key_name}")).await;
    assert_eq!(published_key, tree.public_pem);
    let main =
        parse_index(&index_bytes(&server, "/acme/alpine/edge/main/x86_64/APKINDEX.tar.gz").await);
    assert_eq!(
        main.names(),
        ["package-x", "package-y", "pretend-baselayout"]
    );

    // A client's check over HTTP, trusting only the old key file.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let serving = server.clone();
    tokio::spawn(async move { axum::serve(listener, serving).await.unwrap() });
    let key_file = ctx.temp_dir().join(&key_name);
    std::fs::write(&key_file, &tree.public_pem).unwrap();
    for repo in ["edge/main", "edge/community", "v3.19/main"] {
        let out = run_cli(
            vec![
                "verify".into(),
                format!("{base}/acme/alpine/{repo}/"),
                "--key".into(),
                key_file.display().to_string(),
            ],
            vec![],
        )
        .await;
        assert!(
            out.status.success(),
            "verify {repo}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // The old token uploads through the old route and through /api/v1.
    let (status, body) = upload(
        &server,
        "/api/acme/alpine/edge/main/x86_64/pkgs",
        ACME_TOKEN,
        &package("after-move", "1.0-r0", "x86_64"),
        "after-move-1.0-r0.apk",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = upload(
        &server,
        "/api/v1/orgs/acme/distros/alpine/versions/edge/repos/main/packages",
        ACME_TOKEN,
        &package("after-move-v1", "1.0-r0", "x86_64"),
        "after-move-v1-1.0-r0.apk",
    )
    .await;
    assert!(status == 200 || status == 201, "{status} {body}");
    let main =
        parse_index(&index_bytes(&server, "/acme/alpine/edge/main/x86_64/APKINDEX.tar.gz").await);
    assert!(
        main.names().contains(&"after-move".to_owned()),
        "{:?}",
        main.names()
    );
    assert!(
        main.names().contains(&"after-move-v1".to_owned()),
        "{:?}",
        main.names()
    );
    assert_eq!(main.key_name(), key_name);
    // An org's old token reaches only its org; a wrong secret is refused.
    let beta = "/api/beta/alpine/edge/main/x86_64/pkgs";
    let apk = package("nope", "1.0-r0", "x86_64");
    assert_eq!(
        upload(&server, beta, ACME_TOKEN, &apk, "nope-1.0-r0.apk")
            .await
            .0,
        401
    );
    let wrong = format!("{}x", &ACME_TOKEN[1..]);
    let acme = "/api/acme/alpine/edge/main/x86_64/pkgs";
    assert_eq!(
        upload(&server, acme, &wrong, &apk, "nope-1.0-r0.apk")
            .await
            .0,
        401
    );
    assert_eq!(
        upload(&server, beta, BETA_TOKEN, &apk, "nope-1.0-r0.apk")
            .await
            .0,
        200
    );

    // Running it again changes nothing and skips everything.
    let before = snapshot(&stores).await;
    let again = run(&stores, &tree, false).await;
    assert_unchanged(&before, &snapshot(&stores).await, "a second import");
    assert_eq!(
        (again.counts.imported, again.counts.refused),
        (0, 0),
        "{again:#?}"
    );
    assert_eq!(
        again.counts.skipped,
        report.counts.imported + report.counts.skipped
    );
}

async fn refuses_what_it_cannot_import_and_imports_the_rest(ctx: Ctx) {
    let stores = ctx.shared().await;
    let tree = old_tree(&ctx);
    let mut corrupt = fixture("package-y-1.0.0-r0.apk");
    corrupt.truncate(corrupt.len() / 2);
    put(
        &tree.root,
        "static/acme/alpine/edge/main/x86_64/broken-1.0-r0.apk",
        &corrupt,
    );
    put(&tree.root, "config/acme/tokens/weak", b"password123\n");
    let report = run(&stores, &tree, false).await;
    let refused: Vec<_> = report.with_outcome(Outcome::Refused).collect();
    assert_eq!(refused.len(), 2, "{report:#?}");
    let broken = refused
        .iter()
        .find(|e| e.source.ends_with("broken-1.0-r0.apk"))
        .unwrap();
    assert_eq!(broken.kind, Kind::Package);
    assert!(broken.reason.is_some(), "{broken:?}");
    let weak = refused
        .iter()
        .find(|e| e.source.ends_with("tokens/weak"))
        .unwrap();
    assert!(
        weak.reason.as_ref().unwrap().contains("too short"),
        "{weak:?}"
    );
    assert_eq!(
        count(&report, Kind::Package, Outcome::Imported),
        7,
        "{report:#?}"
    );
    assert_eq!(count(&report, Kind::Token, Outcome::Imported), 2);
    // The weak secret opens nothing.
    let server = router(&stores);
    let apk = package("nope", "1.0-r0", "x86_64");
    let acme = "/api/acme/alpine/edge/main/x86_64/pkgs";
    assert_eq!(
        upload(&server, acme, "password123", &apk, "nope-1.0-r0.apk")
            .await
            .0,
        401
    );

    // The CLI prints the same report, as JSON, and exits 1 (on a local store of its own).
    if ctx.s3.is_none() {
        let dir = ctx.temp_dir().join("cli-store").display().to_string();
        let cli = |args: &[&str]| {
            let mut all = vec!["--storage".to_owned(), dir.clone()];
            all.extend(args.iter().map(|a| (*a).to_owned()));
            run_cli(all, vec![])
        };
        assert!(cli(&["init"]).await.status.success());
        let from = tree.root.display().to_string();
        let out = cli(&["--json", "import", "--from-dir", &from]).await;
        assert_eq!(
            out.status.code(),
            Some(1),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(printed["counts"]["refused"], 2, "{printed}");
        assert_eq!(
            printed["counts"]["imported"], report.counts.imported,
            "{printed}"
        );
        let out = cli(&["import", "--from-dir", &from, "--dry-run"]).await;
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("refused      token   config/acme/tokens/weak"),
            "{text}"
        );
        assert!(text.contains("(dry run: nothing written)"), "{text}");

        // An imported token is revoked by its old secret (here 64 hex
        // digits, like an id) or by the id `token list` shows.
        let listed = |out: std::process::Output| String::from_utf8_lossy(&out.stdout).into_owned();
        let before = listed(cli(&["token", "list", "--org", "acme"]).await);
        assert!(before.contains("imported 0"), "{before}");
        let out = cli(&["token", "revoke", ACME_TOKEN, "--org", "acme"]).await;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(listed(out).contains("imported 0"));
        let after = listed(cli(&["token", "list", "--org", "acme"]).await);
        assert!(!after.contains("imported 0"), "{after}");
        let out = cli(&["token", "revoke", BETA_TOKEN, "--org", "beta"]).await;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = cli(&["token", "revoke", BETA_TOKEN, "--org", "beta"]).await;
        assert!(!out.status.success(), "a second revoke finds nothing");
    }
}

async fn a_crash_midway_is_completed_by_running_it_again(ctx: Ctx) {
    let (storage, faults, _) = ctx.open_faulty(Bucket::Main).await;
    let stores = Stores::shared(storage);
    let tree = old_tree(&ctx);
    faults.crash_at_write(25, CrashMode::AfterWrite);
    let publisher = Publisher::new(stores.clone());
    let tokens = Tokens::new(stores.clone(), Duration::ZERO);
    let options = ImportOptions {
        from_dir: tree.root.clone(),
        dry_run: false,
    };
    let stopped = import(&publisher, &tokens, &options).await;
    assert!(stopped.is_err(), "the crash stops the run: {stopped:?}");
    faults.heal();
    let resumed = run(&stores, &tree, false).await;
    assert_eq!(resumed.counts.refused, 0, "{resumed:#?}");
    assert!(
        count(&resumed, Kind::Package, Outcome::Skipped) < 7,
        "{resumed:#?}"
    );
    let again = run(&stores, &tree, false).await;
    assert_eq!(again.counts.imported, 0, "{again:#?}");
    assert_eq!(count(&again, Kind::Package, Outcome::Skipped), 7);
    let server = router(&stores);
    let main =
        parse_index(&index_bytes(&server, "/acme/alpine/edge/main/x86_64/APKINDEX.tar.gz").await);
    assert_eq!(
        main.names(),
        ["package-x", "package-y", "pretend-baselayout"]
    );
    let (ok, text) = openssl_verify(&tree.public_pem, &main.signature, &main.unsigned);
    assert!(ok, "{text}");
}
