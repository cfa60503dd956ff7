//! Quotas (`docs/quotas.md`): set, show and unset through the library, the
//! CLI and the API; token scoping; an upload over a quota refused with
//! nothing stored; removal freeing usage; concurrent uploads from several
//! publishers (as several service instances are) overshooting by no more
//! than the documented bound; the usage report per level.

use std::path::{Path, PathBuf};
use std::process::Command;

use axum::http::Method;
use packages::formats::apk::builder::ApkBuilder;
use packages::publish::quota::Limit;
use packages::publish::{PublishError, Publisher, Upload};
use packages::repo::{Arch, Org, RepoId, Scope, Tree};
use serde_json::json;

use crate::api::{Part, TestApp, package};
use crate::support::{Ctx, ORG, REPO, VERSION, setup_repo};

/// A package of its own name for `arch`, written into `dir`.
fn make(dir: &Path, name: &str, arch: &str) -> PathBuf {
    let builder = ApkBuilder::new(name, "1.0-r0", arch).file("usr/share/q", name.as_bytes());
    let path = dir.join(builder.file_name());
    std::fs::write(&path, builder.build()).expect("write package");
    path
}

fn upload_to(repo: &RepoId, path: &Path) -> Upload {
    Upload {
        repo: repo.clone(),
        arch: None,
        extra_arches: Vec::new(),
        path: path.to_owned(),
        display_name: path.file_name().unwrap().to_string_lossy().into_owned(),
    }
}

fn level(parts: &[&str]) -> Scope {
    let repo = RepoId::parse(ORG, "alpine", VERSION, REPO).unwrap();
    let mut scope = Scope::new(Org::parse(ORG).unwrap(), None, None, None).unwrap();
    if parts.len() > 1 {
        scope.distro = Some(repo.distro);
    }
    if parts.len() > 2 {
        scope.version = Some(repo.version.clone());
    }
    if parts.len() > 3 {
        scope.repo = Some(repo.repo.clone());
    }
    scope
}

/// Package files in the public tree of the repo (what the store holds).
async fn stored_packages(publisher: &Publisher) -> usize {
    let prefix = format!("static/{ORG}/alpine/{VERSION}/{REPO}/");
    publisher
        .stores()
        .list(Tree::Public, &prefix)
        .await
        .expect("list")
        .iter()
        .filter(|o| o.key.ends_with(".apk"))
        .count()
}

async fn quota_lifecycle(ctx: Ctx) {
    let t = setup_repo(ctx.shared().await).await;
    let dir = ctx.temp_dir();
    let repo_level = level(&["acme", "alpine", "v3.20", "main"]);
    let org_level = level(&["acme"]);
    let p = &t.publisher;

    // Set (merged field by field), show, usage.
    let limit = |b, n| Limit {
        max_bytes: b,
        max_packages: n,
    };
    p.set_quota(&repo_level, limit(None, Some(2)))
        .await
        .unwrap();
    let now = p
        .set_quota(&repo_level, limit(Some(1 << 20), None))
        .await
        .unwrap();
    assert_eq!(now, limit(Some(1 << 20), Some(2)));
    assert_eq!(
        p.quotas(&repo_level.org).await.unwrap().get(&repo_level),
        Some(now)
    );

    let first = make(&dir, "q-one", "x86_64");
    let second = make(&dir, "q-two", "x86_64");
    let third = make(&dir, "q-three", "x86_64");
    p.upload(&upload_to(&t.repo, &first)).await.unwrap();
    p.upload(&upload_to(&t.repo, &second)).await.unwrap();

    // Over the repo's package quota: refused, nothing stored.
    let before = crate::support::snapshot(&t.stores).await;
    let refused = p.upload(&upload_to(&t.repo, &third)).await.unwrap_err();
    let message = refused.to_string();
    assert!(
        matches!(refused, PublishError::QuotaExceeded { .. }),
        "{message}"
    );
    assert!(
        message.contains("quota_exceeded")
            && message.contains("acme/alpine/v3.20/main")
            && message.contains("q-three"),
        "{message}"
    );
    let after = crate::support::snapshot(&t.stores).await;
    crate::support::assert_unchanged(&before, &after, "a refused upload");

    // Removal frees usage at once; then the upload fits.
    let x86 = Arch::parse("x86_64").unwrap();
    p.remove(&t.repo, Some(&x86), "q-one").await.unwrap();
    assert_eq!(p.level_usage(&repo_level).await.unwrap().packages, 1);
    p.upload(&upload_to(&t.repo, &third)).await.unwrap();

    // An org quota on bytes counts every repo of the org.
    let other = RepoId::parse(ORG, "alpine", VERSION, "extra").unwrap();
    let used = p.level_usage(&org_level).await.unwrap();
    p.set_quota(&org_level, limit(Some(used.bytes + 10), None))
        .await
        .unwrap();
    let big = make(&dir, "q-big", "x86_64");
    let refused = p.upload(&upload_to(&other, &big)).await.unwrap_err();
    assert!(
        matches!(&refused, PublishError::QuotaExceeded { level, what: "bytes", .. } if level == "acme"),
        "{refused}"
    );

    // The report: every level, widest first, with its limits.
    let report = p.usage_report(&org_level).await.unwrap();
    let names: Vec<&str> = report.levels.iter().map(|l| l.level.as_str()).collect();
    assert_eq!(
        names,
        [
            "acme",
            "acme/alpine",
            "acme/alpine/v3.20",
            "acme/alpine/v3.20/main"
        ]
    );
    assert_eq!(report.levels[3].packages, 2);
    assert_eq!(report.levels[0].bytes, used.bytes);

    // Unset: the upload goes through.
    p.unset_quota(&org_level).await.unwrap();
    assert!(matches!(
        p.unset_quota(&org_level).await,
        Err(PublishError::NotFound(_))
    ));
    p.upload(&upload_to(&other, &big)).await.unwrap();
}

/// Instances (separate publishers: their own commit gates and reservations,
/// as separate processes have) × concurrent uploads each.
const INSTANCES: usize = 3;
const PER_INSTANCE: usize = 3;
const ATTEMPTS: usize = 3;
const LIMIT: u64 = 6;

async fn concurrent_uploads_overshoot_within_the_bound(ctx: Ctx) {
    let t = setup_repo(ctx.shared().await).await;
    let dir = ctx.temp_dir();
    let repo_level = level(&["acme", "alpine", "v3.20", "main"]);
    t.publisher
        .set_quota(
            &repo_level,
            Limit {
                max_bytes: None,
                max_packages: Some(LIMIT),
            },
        )
        .await
        .unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..INSTANCES {
        let publisher = Publisher::new(t.stores.clone());
        for j in 0..PER_INSTANCE {
            let files: Vec<PathBuf> = (0..ATTEMPTS)
                .map(|k| make(&dir, &format!("race-{i}-{j}-{k}"), "x86_64"))
                .collect();
            let (publisher, repo) = (publisher.clone(), t.repo.clone());
            tasks.spawn(async move {
                let (mut accepted, mut refused) = (0u64, 0u64);
                for file in files {
                    match publisher.upload(&upload_to(&repo, &file)).await {
                        Ok(_) => accepted += 1,
                        Err(PublishError::QuotaExceeded { .. }) => refused += 1,
                        Err(e) => panic!("{}: {e}", file.display()),
                    }
                }
                (accepted, refused)
            });
        }
    }
    let (mut accepted, mut refused) = (0, 0);
    while let Some(done) = tasks.join_next().await {
        let (a, r) = done.expect("task");
        accepted += a;
        refused += r;
    }
    // One process never overshoots with itself; each other process may have
    // PER_INSTANCE uploads checked and not yet in a manifest. Without
    // conditional writes, add one commit round's packages (all in flight).
    let in_flight = (INSTANCES * PER_INSTANCE) as u64;
    let bound = match ctx.backend.expected_conditional_writes() {
        Some(false) => LIMIT + in_flight,
        _ => LIMIT + (INSTANCES as u64 - 1) * PER_INSTANCE as u64,
    };
    let used = t.publisher.level_usage(&repo_level).await.unwrap();
    eprintln!(
        "{:?}: {accepted} accepted, {refused} refused, {} published (limit {LIMIT}, bound {bound})",
        ctx.backend, used.packages
    );
    assert_eq!(
        accepted + refused,
        (INSTANCES * PER_INSTANCE * ATTEMPTS) as u64
    );
    assert_eq!(used.packages, accepted, "usage is what was acknowledged");
    assert!(accepted >= LIMIT, "the quota was reached");
    assert!(accepted <= bound, "{accepted} published, bound {bound}");
    assert!(refused > 0);
    // Nothing of a refused upload was stored.
    assert_eq!(stored_packages(&t.publisher).await as u64, accepted);
}

backend_tests!(
    [local, garage, moto]
    quota_lifecycle,
    concurrent_uploads_overshoot_within_the_bound
);

fn cli(store: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_packages"));
    cmd.arg("--storage").arg(store).env("RUST_LOG", "warn");
    cmd.env_remove("PACKAGES_SERVER");
    cmd
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run packages");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn cli_sets_shows_unsets_and_reports_usage() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    run_ok(cli(&store).arg("init"));
    run_ok(cli(&store).args(["org", "create", "acme"]));
    run_ok(cli(&store).args(["key", "generate", "--org", "acme", "--distro", "alpine"]));
    let level = [
        "--org",
        "acme",
        "--distro",
        "alpine",
        "--version",
        "edge",
        "--repo",
        "main",
    ];
    let set = run_ok(cli(&store).args(["quota", "set"]).args(level).args([
        "--max-bytes",
        "1M",
        "--max-packages",
        "1",
    ]));
    assert!(set.contains("max bytes 1048576, max packages 1"), "{set}");
    let shown = run_ok(cli(&store).args(["--json", "quota", "show", "--org", "acme"]));
    let shown: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(
        shown["acme/alpine/edge/main"],
        json!({"max_bytes": 1048576, "max_packages": 1})
    );
    let repo_args = ["--org", "acme", "--version", "edge", "--repo", "main"];
    let one = make(dir.path(), "cli-one", "x86_64");
    let two = make(dir.path(), "cli-two", "x86_64");
    run_ok(
        cli(&store)
            .args(["upload", "--create"])
            .args(repo_args)
            .arg(&one),
    );
    // Over the quota: non-zero exit naming the file and the problem.
    let out = cli(&store)
        .arg("upload")
        .args(repo_args)
        .arg(&two)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("cli-two") && stderr.contains("quota_exceeded"),
        "{stderr}"
    );
    let usage = run_ok(cli(&store).args(["--json", "usage", "--org", "acme"]));
    let usage: serde_json::Value = serde_json::from_str(&usage).unwrap();
    let levels = usage["levels"].as_array().unwrap();
    assert_eq!(levels.len(), 4, "{usage}");
    assert_eq!(levels[3]["level"], "acme/alpine/edge/main");
    assert_eq!(levels[3]["packages"], 1);
    assert_eq!(levels[3]["limit"]["max_packages"], 1);
    run_ok(cli(&store).args(["quota", "unset"]).args(level));
    run_ok(cli(&store).arg("upload").args(repo_args).arg(&two));
    let out = cli(&store)
        .args(["quota", "unset"])
        .args(level)
        .output()
        .unwrap();
    assert!(!out.status.success(), "no quota left to remove");
}

#[tokio::test]
async fn api_quotas_are_set_by_admin_and_org_tokens_only() {
    let app = TestApp::new().await;
    let admin = Some(app.admin.as_str());
    let org_token = app.token("acme", false).await;
    let org_reader = app.token("acme", true).await;
    let repo_token = app.token("acme/alpine/edge/main", false).await;
    let other_org = app.token("other", false).await;
    let quotas = "/api/v1/orgs/acme/quotas?distro=alpine&version=edge&repo=main";
    let body = json!({"max_packages": 1});

    // A repo token may read but never set; neither may a read-only org
    // token or another org's token.
    for token in [&repo_token, &org_reader, &other_org] {
        app.json(Method::PUT, quotas, Some(token), body.clone())
            .await
            .expect_error(403);
    }
    app.json(Method::PUT, quotas, Some(&org_token), body.clone())
        .await
        .expect(200);
    let set = app
        .json(Method::PUT, quotas, admin, json!({"max_bytes": 1000000}))
        .await;
    set.expect(200);
    assert_eq!(
        set.json(),
        json!({"level": "acme/alpine/edge/main", "max_bytes": 1000000, "max_packages": 1})
    );
    let read = app.get("/api/v1/orgs/acme/quotas", Some(&repo_token)).await;
    read.expect(200);
    assert_eq!(read.json()[0]["level"], "acme/alpine/edge/main");
    app.json(Method::PUT, quotas, admin, json!({}))
        .await
        .expect_error(400);
    app.json(Method::PUT, quotas, admin, json!({"max_files": 1}))
        .await
        .expect_error(422);
    app.get("/api/v1/orgs/nope/quotas", admin)
        .await
        .expect_error(404);

    // Uploads: the second is over the quota (413, `quota_exceeded`).
    let packages = "/api/v1/orgs/acme/distros/alpine/versions/edge/repos/main/packages";
    let one = package("api-one", "1.0-r0", "x86_64");
    let two = package("api-two", "1.0-r0", "x86_64");
    let create = format!("{packages}?create=true");
    app.post_form(
        &create,
        Some(&repo_token),
        &[Part::File("package", "api-one.apk", &one)],
    )
    .await
    .expect(201);
    let before = app.snapshot().await;
    let refused = app
        .post_form(
            packages,
            Some(&repo_token),
            &[Part::File("package", "api-two.apk", &two)],
        )
        .await
        .expect_error(413);
    assert!(
        refused.contains("quota_exceeded")
            && refused.contains("acme/alpine/edge/main")
            && refused.contains("limit of 1 packages"),
        "{refused}"
    );
    crate::support::assert_unchanged(&before, &app.snapshot().await, "a refused upload");

    // Usage: by a token covering the level; not by a narrower one.
    let usage = app.get("/api/v1/orgs/acme/usage", Some(&org_reader)).await;
    usage.expect(200);
    let levels = usage.json();
    assert_eq!(levels[0]["level"], "acme");
    assert_eq!(levels[0]["packages"], 1);
    assert_eq!(levels[3]["max_packages"], 1);
    app.get("/api/v1/orgs/acme/usage", Some(&repo_token))
        .await
        .expect_error(403);
    app.get(
        "/api/v1/orgs/acme/usage?distro=alpine&version=edge&repo=main",
        Some(&repo_token),
    )
    .await
    .expect(200);

    // Delete: by the org token; then 404.
    app.call(Method::DELETE, quotas, Some(&repo_token))
        .await
        .expect_error(403);
    app.call(Method::DELETE, quotas, Some(&org_token))
        .await
        .expect(200);
    app.call(Method::DELETE, quotas, Some(&org_token))
        .await
        .expect_error(404);
    app.post_form(
        packages,
        Some(&repo_token),
        &[Part::File("package", "api-two.apk", &two)],
    )
    .await
    .expect(201);
}

/// Debian: an `Architecture: all` package counts once; a suite alias adds
/// nothing; a component (repo) quota counts only its component.
async fn debian_counts_all_packages_and_aliases_once(ctx: Ctx) {
    use crate::deb::{deb_fixture, deb_upload, setup_debian};
    let stores = ctx.shared().await;
    let p = setup_debian(&stores).await;
    let size = |file: &str| std::fs::metadata(deb_fixture(file)).unwrap().len();
    let all = "sensible-utils_0.0.17+nmu1_all.deb";
    let hello = "hello_2.10-3_amd64.deb";
    p.upload(&deb_upload("bookworm", "main", all))
        .await
        .unwrap();
    p.upload(&deb_upload("bookworm", "contrib", hello))
        .await
        .unwrap();
    let suite = packages::repo::SuiteId::new(
        Org::parse(ORG).unwrap(),
        packages::repo::Distro::parse("debian").unwrap(),
        "bookworm",
    )
    .unwrap();
    p.set_alias(&suite, "stable").await.unwrap();

    let debian = RepoId::parse(ORG, "debian", "bookworm", "contrib").unwrap();
    let contrib = debian.scope();
    let report = p
        .usage_report(&contrib.ancestry()[3]) // the org
        .await
        .unwrap();
    let at = |name: &str| {
        report
            .levels
            .iter()
            .find(|l| l.level == name)
            .unwrap_or_else(|| panic!("{name} in {report:?}"))
            .clone()
    };
    assert_eq!(at("acme/debian").packages, 2, "{report:?}");
    assert_eq!(at("acme/debian").bytes, size(all) + size(hello));
    assert_eq!(at("acme/debian/bookworm/main").packages, 1);
    assert_eq!(at("acme/debian/bookworm/contrib").bytes, size(hello));
    assert!(report.levels.iter().all(|l| !l.level.contains("stable")));

    // A quota on the component: full with one package; main is not limited.
    p.set_quota(
        &contrib,
        Limit {
            max_bytes: None,
            max_packages: Some(1),
        },
    )
    .await
    .unwrap();
    let jq = "jq_1.6-2.1+deb12u3_amd64.deb";
    let refused = p
        .upload(&deb_upload("bookworm", "contrib", jq))
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, PublishError::QuotaExceeded { level, .. } if level == "acme/debian/bookworm/contrib"),
        "{refused}"
    );
    assert_eq!(p.level_usage(&contrib).await.unwrap().packages, 1);
    // The same file again adds nothing; main takes the other one.
    p.upload(&deb_upload("bookworm", "contrib", hello))
        .await
        .unwrap();
    p.upload(&deb_upload("bookworm", "main", jq)).await.unwrap();
}

backend_tests!([local, garage, moto] debian_counts_all_packages_and_aliases_once);

#[tokio::test]
async fn cli_remote_mode_goes_through_the_api_and_its_token_rules() {
    use crate::api::{run_cli, serve_on_loopback};
    let app = TestApp::new().await;
    let server = serve_on_loopback(&app).await;
    let org_token = app.token("acme", false).await;
    let repo_token = app.token("acme/alpine/edge/main", false).await;
    let env = |token: &str| {
        vec![
            ("PACKAGES_SERVER", server.clone()),
            ("PACKAGES_TOKEN", token.to_owned()),
        ]
    };
    let args = |list: &[&str]| list.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>();
    let level = [
        "--org",
        "acme",
        "--distro",
        "alpine",
        "--version",
        "edge",
        "--repo",
        "main",
    ];
    let set: Vec<String> = args(&["quota", "set", "--max-packages", "3"])
        .into_iter()
        .chain(args(&level))
        .collect();
    // A repo token is refused (403 from the server), an org token sets.
    let refused = run_cli(set.clone(), env(&repo_token)).await;
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("may not change quotas"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let out = run_cli(set, env(&org_token)).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "acme/alpine/edge/main: max bytes -, max packages 3"
    );
    let shown = run_cli(args(&["quota", "show", "--org", "acme"]), env(&repo_token)).await;
    assert!(String::from_utf8_lossy(&shown.stdout).contains("max packages 3"));
    let usage = run_cli(
        args(&["--json", "usage"])
            .into_iter()
            .chain(args(&level))
            .collect(),
        env(&repo_token),
    )
    .await;
    assert!(
        usage.status.success(),
        "{}",
        String::from_utf8_lossy(&usage.stderr)
    );
    let usage: serde_json::Value = serde_json::from_slice(&usage.stdout).unwrap();
    assert_eq!(usage["levels"][0]["level"], "acme/alpine/edge/main");
    assert_eq!(usage["levels"][0]["limit"]["max_packages"], 3);
    let unset: Vec<String> = args(&["quota", "unset"])
        .into_iter()
        .chain(args(&level))
        .collect();
    assert!(
        run_cli(unset.clone(), env(&org_token))
            .await
            .status
            .success()
    );
    assert!(!run_cli(unset, env(&org_token)).await.status.success());
}
