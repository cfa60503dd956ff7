//! Retention rules (issue 13 item 3), end to end: set through the CLI, a dry
//! run that lists what would go and changes nothing, then `packages gc`
//! removing through the normal path (out of the signed index, files kept
//! for the grace period, recorded in the audit log); apk ordering
//! (`1.10` after `1.2`), the age rule (never the newest), and Debian
//! versions in dpkg's order (`~rc` first).

use std::path::Path;
use std::process::{Command, Output};

use packages::audit::{self, AuditQuery};
use packages::formats::apk::builder::ApkBuilder;
use packages::publish::RetentionRule;
use packages::repo::RepoId;
use packages::storage::{LocalStore, Storage};
use packages::stores::Stores;
use serde_json::Value;

use crate::support::{Ctx, parse_index, write_file};

const REPO: [&str; 6] = ["--org", "acme", "--version", "edge", "--repo", "main"];

fn cli(storage: &Path, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_packages"))
        .env_remove("PACKAGES_STORAGE")
        .env_remove("PACKAGES_CONFIG_STORAGE")
        .env_remove("PACKAGES_SERVER")
        .env_remove("PACKAGES_TOKEN")
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

fn with_repo<'a>(head: &[&'a str], tail: &[&'a str]) -> Vec<&'a str> {
    [head, &REPO[..], tail].concat()
}

fn index_versions(storage: &Path) -> Vec<String> {
    let bytes = std::fs::read(storage.join("static/acme/alpine/edge/main/x86_64/APKINDEX.tar.gz"))
        .expect("index");
    let index = parse_index(&bytes);
    let mut out: Vec<String> = index
        .records
        .iter()
        .map(|r| {
            let field = |f| crate::support::field(r, f).unwrap();
            format!("{}-{}", field('P'), field('V'))
        })
        .collect();
    out.sort();
    out
}

#[test]
fn apk_keep_and_max_age_through_the_cli_and_gc() {
    let dir = tempfile::tempdir().unwrap();
    let storage = dir.path().join("store");
    cli(&storage, &["org", "create", "acme"]);
    cli(
        &storage,
        &[
            "key", "generate", "--org", "acme", "--distro", "alpine", "--bits", "2048",
        ],
    );
    let files = dir.path().join("files");
    std::fs::create_dir_all(&files).unwrap();
    let mut paths = Vec::new();
    for (name, version) in [
        ("app", "1.0-r0"),
        ("app", "1.1-r0"),
        ("app", "1.2-r0"),
        ("app", "1.10-r0"),
        ("app", "1.10-r1"),
        ("lib", "2.0-r0"),
    ] {
        let apk = ApkBuilder::new(name, version, "x86_64")
            .file(&format!("usr/share/{name}"), version.as_bytes())
            .build();
        paths.push(write_file(&files, &format!("{name}-{version}.apk"), &apk));
    }
    let paths: Vec<&str> = paths.iter().map(|p| p.to_str().unwrap()).collect();
    cli(&storage, &with_repo(&["upload", "--create"], &paths));

    cli(
        &storage,
        &with_repo(&["retention", "set"], &["--keep", "2"]),
    );
    let shown = cli(&storage, &with_repo(&["--json", "retention", "show"], &[]));
    let rule: Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(rule, serde_json::json!({"keep": 2}));

    // The dry run lists the three oldest versions of app, and removes nothing.
    let before = index_versions(&storage);
    let dry = cli(
        &storage,
        &with_repo(&["--json", "retention", "apply"], &["--dry-run"]),
    );
    let dry: Value = serde_json::from_slice(&dry.stdout).unwrap();
    assert_eq!(dry["dry_run"], true);
    let mut would: Vec<String> = dry["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["file"].as_str().unwrap().to_owned())
        .collect();
    would.sort();
    assert_eq!(
        would,
        ["app-1.0-r0.apk", "app-1.1-r0.apk", "app-1.2-r0.apk"],
        "{dry:#}"
    );
    assert_eq!(index_versions(&storage), before);

    // gc applies the rule through the normal remove path.
    cli(&storage, &["gc"]);
    assert_eq!(
        index_versions(&storage),
        ["app-1.10-r0", "app-1.10-r1", "lib-2.0-r0"]
    );
    let arch_dir = storage.join("static/acme/alpine/edge/main/x86_64");
    assert!(
        arch_dir.join("app-1.0-r0.apk").exists(),
        "the file stays for the grace period"
    );
    assert!(
        storage
            .join("config/acme/alpine/edge/main/x86_64/deleted/app-1.0-r0.apk.json")
            .exists(),
        "a tombstone, as for any remove"
    );

    // The age rule: every file but the newest app is made old; lib, the
    // only (so newest) version of its package, stays however old.
    for file in ["app-1.10-r0.apk", "lib-2.0-r0.apk"] {
        let status = Command::new("touch")
            .args(["-m", "-d", "30 days ago"])
            .arg(arch_dir.join(file))
            .status()
            .unwrap();
        assert!(status.success());
    }
    cli(
        &storage,
        &with_repo(&["retention", "set"], &["--max-age", "7"]),
    );
    let applied = cli(&storage, &with_repo(&["--json", "retention", "apply"], &[]));
    let applied: Value = serde_json::from_slice(&applied.stdout).unwrap();
    assert_eq!(
        applied["removed"][0]["file"], "app-1.10-r0.apk",
        "{applied:#}"
    );
    assert_eq!(applied["removed"][0]["reason"], "max_age");
    assert_eq!(applied["removed"].as_array().unwrap().len(), 1);
    assert_eq!(index_versions(&storage), ["app-1.10-r1", "lib-2.0-r0"]);

    // Clearing the rule; all of it is in the audit log.
    cli(&storage, &with_repo(&["retention", "set"], &[]));
    let shown = cli(&storage, &with_repo(&["retention", "show"], &[]));
    assert!(String::from_utf8_lossy(&shown.stdout).contains("no retention rule"));
    let log = cli(&storage, &["--json", "audit", "--action", "retention"]);
    let log: Value = serde_json::from_slice(&log.stdout).unwrap();
    let actions: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "retention.set",
            "retention.apply",
            "retention.set",
            "retention.apply",
            "retention.set"
        ]
    );
    assert_eq!(log[3]["actor"]["kind"], "cli");
    assert_eq!(log[3]["details"]["removed"].as_array().unwrap().len(), 3);
}

/// A `.deb` of `name` at `version`, built with dpkg-deb.
fn build_deb(dir: &Path, name: &str, version: &str) -> std::path::PathBuf {
    let root = dir.join(format!("{name}-{version}"));
    std::fs::create_dir_all(root.join("DEBIAN")).unwrap();
    std::fs::create_dir_all(root.join("usr/share/doc")).unwrap();
    std::fs::write(root.join("usr/share/doc").join(name), version).unwrap();
    std::fs::write(
        root.join("DEBIAN/control"),
        format!(
            "Package: {name}\nVersion: {version}\nArchitecture: amd64\nMaintainer: Test <t@example.com>\nDescription: retention test\n"
        ),
    )
    .unwrap();
    let out = dir.join(format!("{name}_{version}_amd64.deb"));
    let status = Command::new("dpkg-deb")
        .args(["--build", "--root-owner-group", "-Zgzip"])
        .arg(&root)
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("dpkg-deb");
    assert!(status.success());
    out
}

async fn debian_keep_orders_versions_as_dpkg(ctx: Ctx) {
    let stores = ctx.shared().await;
    let publisher = crate::deb::setup_debian(&stores).await;
    let dir = ctx.temp_dir();
    let repo = RepoId::parse("acme", "debian", "bookworm", "main").unwrap();
    for version in ["1.0-1", "1.0~rc1-1", "1.0-2", "0.9-1"] {
        let path = build_deb(&dir, "tool", version);
        publisher
            .upload(&packages::publish::Upload {
                repo: repo.clone(),
                arch: None,
                extra_arches: Vec::new(),
                display_name: path.file_name().unwrap().to_string_lossy().into_owned(),
                path,
            })
            .await
            .expect("upload");
    }
    let rule = RetentionRule {
        keep: Some(1),
        max_age_days: None,
    };
    publisher.set_retention(&repo, &rule).await.unwrap();
    let dry = publisher.apply_retention(&repo, true).await.unwrap();
    assert_eq!(dry.removed.len(), 3);
    assert_eq!(publisher.list(&repo, None).await.unwrap().len(), 4);
    publisher.gc().await.unwrap();
    let left: Vec<String> = publisher
        .list(&repo, None)
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.record.version)
        .collect();
    assert_eq!(left, ["1.0-2"]);
    let log = audit::list(
        &stores,
        &AuditQuery {
            action: Some("retention.apply".to_owned()),
            ..AuditQuery::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(log.len(), 1);
    let mut removed: Vec<&str> = log[0].details["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["version"].as_str().unwrap())
        .collect();
    removed.sort_unstable();
    assert_eq!(removed, ["0.9-1", "1.0-1", "1.0~rc1-1"]);
}

backend_tests!([local, garage] debian_keep_orders_versions_as_dpkg);

#[tokio::test]
async fn a_rule_needs_an_existing_repository_and_keep_of_one_or_more() {
    let dir = tempfile::tempdir().unwrap();
    let stores = Stores::shared(Storage::local(
        LocalStore::open(&dir.path().join("store")).unwrap(),
    ));
    let t = crate::support::setup_repo(stores).await;
    let missing = RepoId::parse("acme", "alpine", "edge", "nothing").unwrap();
    let rule = RetentionRule {
        keep: Some(3),
        max_age_days: None,
    };
    assert!(t.publisher.set_retention(&missing, &rule).await.is_err());
    t.publish_fixtures().await;
    let zero = RetentionRule {
        keep: Some(0),
        max_age_days: None,
    };
    let err = t.publisher.set_retention(&t.repo, &zero).await.unwrap_err();
    assert!(
        err.is_client_error() && err.to_string().contains("at least 1"),
        "{err}"
    );
    t.publisher.set_retention(&t.repo, &rule).await.unwrap();
    assert_eq!(t.publisher.retention(&t.repo).await.unwrap(), rule);
}

#[tokio::test]
async fn the_api_sets_shows_and_applies_rules_within_token_scopes() {
    use axum::http::Method;
    use serde_json::json;

    use crate::api::{Part, TestApp, package};
    const V1_REPO: &str = "/api/v1/orgs/acme/distros/alpine/versions/edge/repos/main";
    let app = TestApp::new().await;
    let acme = app.token("acme", false).await;
    let other = app.token("other", false).await;
    for version in ["1.2-r0", "1.10-r0", "1.9-r0"] {
        let apk = package("app", version, "x86_64");
        app.post_form(
            &format!("{V1_REPO}/packages"),
            Some(&acme),
            &[Part::File("package", &format!("app-{version}.apk"), &apk)],
        )
        .await
        .expect(201);
    }
    let rule = format!("{V1_REPO}/retention");
    app.get(&rule, Some(&acme)).await.expect(200);
    assert_eq!(app.get(&rule, Some(&acme)).await.json(), json!({}));
    app.get(&rule, Some(&other)).await.expect_error(403);
    app.json(Method::PUT, &rule, Some(&other), json!({"keep": 1}))
        .await
        .expect_error(403);
    app.json(Method::PUT, &rule, Some(&acme), json!({"keep_last": 1}))
        .await
        .expect_error(422);
    app.json(Method::PUT, &rule, Some(&acme), json!({"keep": 0}))
        .await
        .expect_error(400);
    app.json(
        Method::PUT,
        "/api/v1/orgs/acme/distros/alpine/versions/edge/repos/nothing/retention",
        Some(&acme),
        json!({"keep": 1}),
    )
    .await
    .expect_error(404);
    app.json(Method::PUT, &rule, Some(&acme), json!({"keep": 1}))
        .await
        .expect(200);
    assert_eq!(app.get(&rule, Some(&acme)).await.json(), json!({"keep": 1}));

    let dry = app
        .call(
            Method::POST,
            &format!("{rule}/apply?dry_run=true"),
            Some(&acme),
        )
        .await;
    dry.expect(200);
    let mut would: Vec<String> = dry.json()["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["version"].as_str().unwrap().to_owned())
        .collect();
    would.sort();
    assert_eq!(would, ["1.2-r0", "1.9-r0"]);
    assert_eq!(app.index("edge", "main", "x86_64").await.names().len(), 3);
    app.call(Method::POST, &format!("{rule}/apply"), Some(&acme))
        .await
        .expect(200);
    let index = app.index("edge", "main", "x86_64").await;
    let versions: Vec<String> = index
        .records
        .iter()
        .map(|r| crate::support::field(r, 'V').unwrap())
        .collect();
    assert_eq!(versions, ["1.10-r0"]);

    let log = audit::list(
        &app.stores,
        &AuditQuery {
            action: Some("retention".to_owned()),
            ..AuditQuery::default()
        },
    )
    .await
    .unwrap();
    let actions: Vec<&str> = log.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(actions, ["retention.apply", "retention.set"]);
    assert!(
        log.iter()
            .all(|r| r.actor.token_name.as_deref() == Some("acme token"))
    );
}
