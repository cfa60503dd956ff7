//! The audit log (issue 13 item 4), end to end: changes through the API and
//! the CLI are recorded with who, what and from where; the records never
//! hold a token; org tokens read their own org's log only; concurrent
//! writers (separate publishers, as separate instances) lose no record,
//! on Garage too, which ignores conditional writes.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Method;
use packages::api::ApiConfig;
use packages::audit::{self, AuditEvent, AuditQuery, Target, action};
use packages::publish::Publisher;
use packages::repo::Org;
use packages::stores::Stores;
use serde_json::{Value, json};

use crate::api::{Part, TestApp, package};
use crate::support::{Ctx, apk_fixture};

const V1_REPO: &str = "/api/v1/orgs/acme/distros/alpine/versions/edge/repos/main";

/// Every audit object's text.
async fn audit_objects(stores: &Stores) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for object in stores.private().list(&audit::audit_prefix()).await.unwrap() {
        let (bytes, _) = stores.private().get_bytes(&object.key).await.unwrap();
        out.push((object.key, String::from_utf8(bytes.to_vec()).unwrap()));
    }
    out
}

/// Asserts that no audit object contains any of `secrets`.
async fn assert_no_secret(stores: &Stores, secrets: &[&str]) {
    let objects = audit_objects(stores).await;
    assert!(!objects.is_empty());
    for (key, text) in &objects {
        for secret in secrets {
            assert!(!secret.is_empty());
            // The part after the prefix is the secret proper.
            let tail = &secret[secret.len() - 20..];
            assert!(
                !text.contains(secret) && !text.contains(tail),
                "{key} holds a token secret: {text}"
            );
        }
    }
}

fn actions(records: &Value) -> Vec<String> {
    records
        .as_array()
        .expect("an array")
        .iter()
        .map(|r| r["action"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn api_changes_are_recorded_with_token_and_never_its_secret() {
    let app = TestApp::new().await;
    let acme = app.token("acme", false).await;
    let other = app.token("other", false).await;
    let reader = app.token("acme", true).await;

    // A token made through the API, an upload, a remove, an org, a revoke.
    let created = app
        .json(
            Method::POST,
            "/api/v1/tokens",
            Some(&acme),
            json!({"name": "ci", "org": "acme"}),
        )
        .await;
    created.expect(201);
    let ci = created.json()["token"].as_str().unwrap().to_owned();
    let ci_id = created.json()["id"].as_str().unwrap().to_owned();
    let apk = package("hello", "1.0-r0", "x86_64");
    app.post_form(
        &format!("{V1_REPO}/packages"),
        Some(&ci),
        &[Part::File("package", "hello-1.0-r0.apk", &apk)],
    )
    .await
    .expect(201);
    app.call(
        Method::DELETE,
        &format!("{V1_REPO}/packages/hello"),
        Some(&acme),
    )
    .await
    .expect(200);
    app.json(
        Method::POST,
        "/api/v1/orgs",
        Some(&app.admin),
        json!({"name": "third"}),
    )
    .await
    .expect(201);
    app.call(
        Method::DELETE,
        &format!("/api/v1/tokens/{ci_id}?org=acme"),
        Some(&acme),
    )
    .await
    .expect(200);

    // The admin sees everything, newest first.
    let all = app.get("/api/v1/audit", Some(&app.admin)).await;
    all.expect(200);
    let all = all.json();
    assert_eq!(
        actions(&all),
        [
            "token.revoke",
            "org.create",
            "package.remove",
            "package.publish",
            "token.create",
            // The test app's two orgs, made on the store directly.
            "org.create",
            "org.create"
        ],
        "{all:#}"
    );
    let publish = &all[3];
    assert_eq!(publish["actor"]["kind"], "token");
    assert_eq!(publish["actor"]["token_name"], "ci");
    assert_eq!(publish["actor"]["token_id"], ci_id.as_str());
    assert_eq!(publish["target"]["org"], "acme");
    assert_eq!(publish["target"]["version"], "edge");
    assert_eq!(publish["target"]["package"], "hello");
    assert_eq!(publish["details"]["version"], "1.0-r0");
    assert_eq!(publish["details"]["arches"], json!(["x86_64"]));
    assert_eq!(all[2]["actor"]["token_name"], "acme token");
    assert_eq!(all[2]["details"]["removed"][0]["version"], "1.0-r0");
    assert_eq!(all[1]["actor"]["token_name"], "admin");
    assert_eq!(all[0]["details"]["token_name"], "ci");
    assert_eq!(all[4]["details"]["token_id"], ci_id.as_str());
    assert_eq!(all[6]["actor"]["kind"], "cli");

    // Filters.
    let only = app
        .get("/api/v1/audit?action=package&limit=1", Some(&app.admin))
        .await;
    assert_eq!(actions(&only.json()), ["package.remove"]);
    let by_ci = app.get("/api/v1/audit?token=ci", Some(&app.admin)).await;
    assert_eq!(actions(&by_ci.json()), ["package.publish"]);
    let by_id = app
        .get(
            &format!("/api/v1/audit?token={}", &ci_id[..12]),
            Some(&app.admin),
        )
        .await;
    assert_eq!(by_id.json().as_array().unwrap().len(), 1);
    let third = app.get("/api/v1/audit?org=third", Some(&app.admin)).await;
    assert_eq!(actions(&third.json()), ["org.create"]);
    let future = app
        .get("/api/v1/audit?since=2999-01-01", Some(&app.admin))
        .await;
    assert_eq!(future.json(), json!([]));
    let recent = app.get("/api/v1/audit?since=1h", Some(&app.admin)).await;
    assert_eq!(recent.json().as_array().unwrap().len(), 7);
    let past = app
        .get("/api/v1/audit?until=2020-01-01T00:00:00Z", Some(&app.admin))
        .await;
    assert_eq!(past.json(), json!([]));
    app.get("/api/v1/audit?since=yesterday", Some(&app.admin))
        .await
        .expect_error(400);

    // Org tokens: their own org's log (read-only is enough), nobody else's.
    let own = app.get("/api/v1/orgs/acme/audit", Some(&reader)).await;
    own.expect(200);
    let own = own.json();
    assert_eq!(own.as_array().unwrap().len(), 5, "{own:#}");
    assert!(
        own.as_array()
            .unwrap()
            .iter()
            .all(|r| r["target"]["org"] == "acme")
    );
    app.get("/api/v1/orgs/acme/audit", Some(&other))
        .await
        .expect_error(403);
    app.get("/api/v1/audit", Some(&acme))
        .await
        .expect_error(403);
    app.get("/api/v1/audit?org=acme", Some(&acme))
        .await
        .expect_error(403);
    app.get("/api/v1/orgs/acme/audit", None)
        .await
        .expect_error(401);
    app.get("/api/v1/orgs/nothing/audit", Some(&app.admin))
        .await
        .expect_error(404);
    let repo_token = app.token("acme/alpine/edge/main", false).await;
    app.get("/api/v1/orgs/acme/audit", Some(&repo_token))
        .await
        .expect_error(403);

    assert_no_secret(
        &app.stores,
        &[&app.admin, &acme, &other, &reader, &ci, &repo_token],
    )
    .await;
}

/// A request from `peer` with `X-Forwarded-For: forwarded`.
async fn org_create_from(app: &TestApp, name: &str, peer: &str, forwarded: &str) {
    let mut request = TestApp::request(Method::POST, "/api/v1/orgs", Some(&app.admin))
        .header("content-type", "application/json")
        .header("x-forwarded-for", forwarded)
        .body(Body::from(json!({ "name": name }).to_string()))
        .unwrap();
    let peer: SocketAddr = peer.parse().unwrap();
    request.extensions_mut().insert(ConnectInfo(peer));
    app.send(request).await.expect(201);
}

#[tokio::test]
async fn the_client_address_is_the_peer_unless_a_proxy_is_trusted() {
    let direct = TestApp::new().await;
    org_create_from(&direct, "one", "192.0.2.7:5000", "203.0.113.9").await;
    let behind = TestApp::with_config(ApiConfig {
        trust_proxy: true,
        ..ApiConfig::default()
    })
    .await;
    org_create_from(&behind, "two", "10.0.0.2:5000", "198.51.100.1, 203.0.113.9").await;
    for (app, want) in [(&direct, "192.0.2.7"), (&behind, "203.0.113.9")] {
        let records = audit::list(&app.stores, &AuditQuery::default())
            .await
            .unwrap();
        assert_eq!(records[0].action, action::ORG_CREATE);
        assert_eq!(records[0].actor.client.as_deref(), Some(want));
    }
}

/// Separate publishers (as separate service instances) record at once:
/// every record is kept, each under its own key.
async fn concurrent_events_are_all_recorded(ctx: Ctx) {
    let stores = ctx.shared().await;
    let mut tasks = Vec::new();
    for i in 0..24 {
        let publisher = Publisher::new(stores.clone()).with_actor(audit::Actor::service());
        tasks.push(tokio::spawn(async move {
            let org = Org::parse(&format!("org{}", i % 3)).unwrap();
            let event = AuditEvent::new(action::QUOTA_SET, Target::org(&org)).detail("n", i);
            publisher.audit(event).await;
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let records = audit::list(
        &stores,
        &AuditQuery {
            since: Some(audit::time::now_ns() - 3600 * audit::time::NANOS),
            ..AuditQuery::default()
        },
    )
    .await
    .unwrap();
    let mut seen: Vec<i64> = records
        .iter()
        .map(|r| r.details["n"].as_i64().unwrap())
        .collect();
    seen.sort_unstable();
    assert_eq!(seen, (0..24).collect::<Vec<_>>());
    let org1 = audit::list(
        &stores,
        &AuditQuery {
            org: Some("org1".to_owned()),
            ..AuditQuery::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(org1.len(), 8);
    assert!(
        records.windows(2).all(|w| w[0].time_ns >= w[1].time_ns),
        "newest first"
    );
}

backend_tests!([local, garage, moto] concurrent_events_are_all_recorded);

fn cli(storage: &Path, args: &[&str]) -> std::process::Output {
    let out = Command::new(env!("CARGO_BIN_EXE_packages"))
        .env_remove("PACKAGES_STORAGE")
        .env_remove("PACKAGES_CONFIG_STORAGE")
        .env_remove("PACKAGES_SERVER")
        .env_remove("PACKAGES_TOKEN")
        .env("USER", "alice")
        .env("HOSTNAME", "build1")
        .env("RUST_LOG", "warn")
        .arg("--storage")
        .arg(storage)
        .args(args)
        .output()
        .expect("run packages");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `acme/alpine/edge/main` of the CLI's tests.
const REPO: [&str; 6] = ["--org", "acme", "--version", "edge", "--repo", "main"];

/// Creates org `acme` with a key and publishes package-x into [`REPO`], with the CLI.
fn publish_package_x(storage: &Path) {
    cli(storage, &["org", "create", "acme"]);
    cli(
        storage,
        &[
            "key", "generate", "--org", "acme", "--distro", "alpine", "--bits", "2048",
        ],
    );
    let fixture = apk_fixture("package-x-1.0.0-r0.apk");
    let mut upload = vec!["upload", "--create"];
    upload.extend(REPO);
    upload.push(fixture.to_str().unwrap());
    cli(storage, &upload);
}

#[test]
fn cli_changes_are_recorded_as_the_local_user() {
    let dir = tempfile::tempdir().unwrap();
    let storage = dir.path().join("store");
    let admin = cli(&storage, &["admin", "init"]);
    let admin = String::from_utf8(admin.stdout).unwrap().trim().to_owned();
    publish_package_x(&storage);
    let repo = REPO;
    let token = cli(
        &storage,
        &["token", "create", "--name", "deploy", "--org", "acme"],
    );
    let token = String::from_utf8(token.stdout).unwrap().trim().to_owned();
    let mut remove = vec!["remove"];
    remove.extend(repo);
    remove.push("package-x");
    cli(&storage, &remove);
    cli(&storage, &["token", "revoke", &token]);

    let out = cli(&storage, &["--json", "audit"]);
    let records: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        actions(&records),
        [
            "token.revoke",
            "package.remove",
            "token.create",
            "package.publish",
            "key.generate",
            "org.create",
            "token.create"
        ],
        "{records:#}"
    );
    for r in records.as_array().unwrap() {
        assert_eq!(r["actor"]["kind"], "cli", "{r}");
        assert_eq!(r["actor"]["user"], "alice@build1", "{r}");
    }
    assert_eq!(records[3]["target"]["package"], "package-x");
    assert_eq!(records[4]["target"]["distro"], "alpine");

    let out = cli(
        &storage,
        &[
            "--json", "audit", "--org", "acme", "--action", "token", "--since", "1h",
        ],
    );
    let tokens: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(actions(&tokens), ["token.revoke", "token.create"]);
    let out = cli(&storage, &["audit", "--limit", "2"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(
        text.contains("cli alice@build1\ttoken.revoke\tacme"),
        "{text}"
    );

    // Every object of the log, read raw: no token.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let storage = packages::storage::Storage::local(
            packages::storage::LocalStore::open(&storage).unwrap(),
        );
        assert_no_secret(&Stores::shared(storage), &[&admin, &token]).await;
    });
}

/// `index rebuild` and `index repair` are changes too: each is recorded
/// with what it republished.
#[test]
fn index_rebuild_and_repair_are_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let storage = dir.path().join("store");
    publish_package_x(&storage);
    let repo = REPO;
    let mut rebuild = vec!["index", "rebuild", "--arch", "x86_64"];
    rebuild.extend(repo);
    cli(&storage, &rebuild);
    let mut repair = vec!["index", "repair"];
    repair.extend(repo);
    cli(&storage, &repair);

    let out = cli(&storage, &["--json", "audit", "--action", "index"]);
    let records: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        actions(&records),
        ["index.repair", "index.rebuild"],
        "{records:#}"
    );
    assert_eq!(records[1]["target"]["arch"], "x86_64");
    assert_eq!(records[1]["details"]["packages"], 1);
    assert_eq!(records[0]["target"]["repo"], "main");
    assert_eq!(
        records[0]["details"]["indexes"][0]["arch"], "x86_64",
        "{records:#}"
    );
    assert_eq!(records[0]["actor"]["kind"], "cli");
}
