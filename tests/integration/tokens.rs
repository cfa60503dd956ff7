//! API tokens: the scope matrix (every kind of token × every mutating route,
//! exact statuses), storage as hashes at their level, the look-up cache and
//! revocation, the CLI commands, and that no token reaches a log line.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::Method;
use packages::repo::{Key, Segment};
use packages::storage::PutMode;
use packages::tokens::{PlainToken, TokenLevel, TokenRecord, Tokens};
use serde_json::{Value, json};
use sha2::Digest as _;

use crate::api::{Part, Resp, TestApp, fixture_bytes, package, run_cli};
use crate::support::apk_fixture;

/// The kinds of token of the matrix, in column order.
const KINDS: [&str; 11] = [
    "admin",
    "org A",
    "org B",
    "distro",
    "version",
    "repo",
    "read-only",
    "expired",
    "revoked",
    "malformed",
    "missing",
];

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A token whose expiry has passed, written as `token create --expires` would have.
async fn expired_token(app: &TestApp, level: &str) -> String {
    let level = TokenLevel::parse(level).unwrap();
    let token = PlainToken::generate(&level);
    let hash = token.hashed().hex();
    let record = TokenRecord {
        name: "expired".into(),
        level: level.to_string(),
        read_only: false,
        expires: Some(unix_now() - 60),
        created: unix_now() - 3600,
        sha256: hash.clone(),
    };
    app.stores
        .put(
            &Key::Token {
                level: level.scope().cloned(),
                hash: Segment::parse("token id", &hash).unwrap(),
            },
            serde_json::to_vec(&record).unwrap().into(),
            PutMode::Create,
        )
        .await
        .unwrap();
    token.expose().to_owned()
}

/// One token of each kind (`None`: no `Authorization` header).
async fn matrix_tokens(app: &TestApp) -> Vec<Option<String>> {
    let revoked = app.token("acme", false).await;
    Tokens::new(app.stores.clone(), Duration::ZERO)
        .revoke_plain(&revoked)
        .await
        .unwrap();
    vec![
        Some(app.admin.clone()),
        Some(app.token("acme", false).await),
        Some(app.token("other", false).await),
        Some(app.token("acme/alpine", false).await),
        Some(app.token("acme/alpine/edge", false).await),
        Some(app.token("acme/alpine/edge/main", false).await),
        Some(app.token("acme", true).await),
        Some(expired_token(app, "acme").await),
        Some(revoked),
        Some("pkgs_this-is-not-a-token".to_owned()),
        None,
    ]
}

/// The mutating routes of the matrix.
#[derive(Debug, Clone, Copy)]
enum Route {
    CreateOrg,
    DeleteOrg,
    UploadV1(&'static str, &'static str),
    UploadCompat(&'static str, &'static str),
    DeletePackage,
    ReindexV1,
    ReindexCompat,
    CreateRepoCompat,
    PutRepo,
    AddArches,
    CreateKey,
    CreateToken(&'static str),
    RevokeToken,
}

/// Expected statuses, in [`KINDS`] order.
const MATRIX: &[(Route, [u16; 11])] = &[
    //                                         admin orgA orgB dist vers repo ro   exp  rev  mal  miss
    (
        Route::CreateOrg,
        [201, 403, 403, 403, 403, 403, 403, 401, 401, 401, 401],
    ),
    (
        Route::DeleteOrg,
        [204, 403, 403, 403, 403, 403, 403, 401, 401, 401, 401],
    ),
    (
        Route::UploadV1("edge", "main"),
        [201, 201, 403, 201, 201, 201, 403, 401, 401, 401, 401],
    ),
    (
        Route::UploadV1("edge", "testing"),
        [201, 201, 403, 201, 201, 403, 403, 401, 401, 401, 401],
    ),
    (
        Route::UploadV1("v3.20", "main"),
        [201, 201, 403, 201, 403, 403, 403, 401, 401, 401, 401],
    ),
    (
        Route::UploadCompat("edge", "main"),
        [200, 200, 403, 200, 200, 200, 403, 401, 401, 401, 401],
    ),
    (
        Route::UploadCompat("edge", "testing"),
        [200, 200, 403, 200, 200, 403, 403, 401, 401, 401, 401],
    ),
    (
        Route::UploadCompat("v3.20", "main"),
        [200, 200, 403, 200, 403, 403, 403, 401, 401, 401, 401],
    ),
    (
        Route::DeletePackage,
        [200, 200, 403, 200, 200, 200, 403, 401, 401, 401, 401],
    ),
    (
        Route::ReindexV1,
        [200, 200, 403, 200, 200, 200, 403, 401, 401, 401, 401],
    ),
    (
        Route::ReindexCompat,
        [200, 200, 403, 200, 200, 200, 403, 401, 401, 401, 401],
    ),
    (
        Route::CreateRepoCompat,
        [201, 201, 403, 201, 201, 403, 403, 401, 401, 401, 401],
    ),
    (
        Route::PutRepo,
        [200, 200, 403, 200, 200, 200, 403, 401, 401, 401, 401],
    ),
    (
        Route::AddArches,
        [200, 200, 403, 200, 200, 200, 403, 401, 401, 401, 401],
    ),
    (
        Route::CreateKey,
        [201, 201, 403, 403, 403, 403, 403, 401, 401, 401, 401],
    ),
    (
        Route::CreateToken("repo"),
        [201, 201, 403, 403, 403, 403, 403, 401, 401, 401, 401],
    ),
    (
        Route::CreateToken("admin"),
        [201, 403, 403, 403, 403, 403, 403, 401, 401, 401, 401],
    ),
    (
        Route::RevokeToken,
        [200, 200, 403, 403, 403, 403, 403, 401, 401, 401, 401],
    ),
];

const REPO: &str = "/api/v1/orgs/acme/distros/alpine/versions/edge/repos/main";

/// Tries `route` once with `token`; `n` makes names unique. Checks that a
/// refused attempt left no trace. Returns the status.
async fn attempt(app: &TestApp, route: Route, n: usize, token: Option<&str>) -> Resp {
    let admin = Some(app.admin.as_str());
    match route {
        Route::CreateOrg => {
            let name = format!("new{n}");
            let got = app
                .json(Method::POST, "/api/v1/orgs", token, json!({"name": name}))
                .await;
            if !got.status.is_success() {
                app.get(&format!("/api/v1/orgs/{name}"), admin)
                    .await
                    .expect_error(404);
            }
            got
        }
        Route::DeleteOrg => {
            let name = format!("gone{n}");
            app.json(Method::POST, "/api/v1/orgs", admin, json!({"name": name}))
                .await
                .expect(201);
            let got = app
                .call(Method::DELETE, &format!("/api/v1/orgs/{name}"), token)
                .await;
            if !got.status.is_success() {
                app.get(&format!("/api/v1/orgs/{name}"), admin)
                    .await
                    .expect(200);
            }
            got
        }
        Route::UploadV1(version, repo) | Route::UploadCompat(version, repo) => {
            let v1 = matches!(route, Route::UploadV1(..));
            let name = format!("up{}{n}", if v1 { "v" } else { "c" });
            let apk = package(&name, "1.0-r0", "x86_64");
            let file = format!("{name}-1.0-r0.apk");
            let uri = if v1 {
                format!("/api/v1/orgs/acme/distros/alpine/versions/{version}/repos/{repo}/packages")
            } else {
                format!("/api/acme/alpine/{version}/{repo}/x86_64/pkgs")
            };
            let got = app
                .post_form(&uri, token, &[Part::File("package", &file, &apk)])
                .await;
            let key = format!("static/acme/alpine/{version}/{repo}/x86_64/{file}");
            let stored = app.stores.public().head(&key).await.unwrap().is_some();
            assert_eq!(stored, got.status.is_success(), "{key}: {}", got.text());
            got
        }
        Route::DeletePackage => {
            let name = format!("del{n}");
            let apk = package(&name, "1.0-r0", "x86_64");
            app.post_form(
                &format!("{REPO}/packages"),
                admin,
                &[Part::File("package", &format!("{name}-1.0-r0.apk"), &apk)],
            )
            .await
            .expect(201);
            let got = app
                .call(Method::DELETE, &format!("{REPO}/packages/{name}"), token)
                .await;
            let listed = app
                .get(&format!("{REPO}/packages?name={name}"), admin)
                .await
                .json();
            assert_eq!(
                listed.as_array().unwrap().is_empty(),
                got.status.is_success(),
                "{listed}"
            );
            got
        }
        Route::ReindexV1 => {
            app.call(Method::POST, &format!("{REPO}/arches/x86_64/index"), token)
                .await
        }
        Route::ReindexCompat => {
            app.call(
                Method::POST,
                "/api/acme/alpine/edge/main/x86_64/index",
                token,
            )
            .await
        }
        Route::CreateRepoCompat => {
            let name = format!("r{n}");
            let got = app
                .json(Method::POST, "/api/acme", token, json!({"name": name}))
                .await;
            let exists = app
                .get(&format!("/api/acme/alpine/edge/{name}"), admin)
                .await
                .status
                .is_success();
            assert_eq!(exists, got.status.is_success());
            got
        }
        Route::PutRepo => app.json(Method::PUT, REPO, token, json!({})).await,
        Route::AddArches => {
            let arch = format!("arch{n}");
            let got = app
                .json(
                    Method::POST,
                    &format!("{REPO}/arches"),
                    token,
                    json!({"architectures": [arch]}),
                )
                .await;
            let arches = app.get(&format!("{REPO}/arches"), admin).await.json();
            assert_eq!(
                arches.as_array().unwrap().contains(&json!(arch)),
                got.status.is_success()
            );
            got
        }
        Route::CreateKey => {
            app.json(
                Method::POST,
                "/api/v1/orgs/acme/keys",
                token,
                json!({"version": "edge", "repo": "main", "bits": 2048, "replace": true}),
            )
            .await
        }
        Route::CreateToken(level) => {
            let body = if level == "admin" {
                json!({"name": format!("t{n}")})
            } else {
                json!({"name": format!("t{n}"), "org": "acme", "distro": "alpine", "version": "edge", "repo": "main"})
            };
            let got = app.json(Method::POST, "/api/v1/tokens", token, body).await;
            if got.status.is_success() {
                let created = got.json();
                let new = created["token"].as_str().unwrap();
                app.get(REPO, Some(new)).await.expect(200);
            }
            got
        }
        Route::RevokeToken => {
            let victim = app.token("acme", false).await;
            let id = hex::encode(sha2::Sha256::digest(victim.as_bytes()));
            let got = app
                .call(
                    Method::DELETE,
                    &format!("/api/v1/tokens/{id}?org=acme"),
                    token,
                )
                .await;
            let works = app.get(REPO, Some(&victim)).await.status.is_success();
            assert_eq!(works, !got.status.is_success());
            got
        }
    }
}

/// Every kind of token × every mutating route: the exact status, and a
/// refused request leaves no trace.
#[tokio::test]
async fn scope_matrix() {
    let app = TestApp::new().await;
    let tokens = matrix_tokens(&app).await;
    // Something to reindex, put and remove in.
    app.post_form(
        &format!("{REPO}/packages"),
        Some(&app.admin),
        &[Part::File(
            "package",
            "gitea-test-1.4.1-r3.apk",
            &fixture_bytes("gitea-test-1.4.1-r3.apk"),
        )],
    )
    .await
    .expect(201);

    let mut failures = Vec::new();
    for (route, expected) in MATRIX {
        for (k, kind) in KINDS.iter().enumerate() {
            let got = if matches!(route, Route::CreateKey) {
                // One key per level: a fresh server for each token.
                let fresh = TestApp::new().await;
                let tokens = matrix_tokens(&fresh).await;
                attempt(&fresh, *route, k, tokens[k].as_deref()).await
            } else {
                attempt(&app, *route, k, tokens[k].as_deref()).await
            };
            if got.status.as_u16() != expected[k] {
                failures.push(format!(
                    "{route:?} with {kind} token: {} (expected {}): {}",
                    got.status,
                    expected[k],
                    got.text()
                ));
            } else if !got.status.is_success() {
                got.expect_error(expected[k]);
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// Reads follow the same levels: on the token's path, read-only is enough.
#[tokio::test]
async fn reads_need_a_token_on_the_path() {
    let app = TestApp::new().await;
    let tokens = matrix_tokens(&app).await;
    app.json(Method::PUT, REPO, Some(&app.admin), json!({}))
        .await
        .expect(201);
    let read = |uri: &'static str| uri;
    //                                          admin orgA orgB dist vers repo ro   exp  rev  mal  miss
    let cases: &[(&str, [u16; 11])] = &[
        (
            read(REPO),
            [200, 200, 403, 200, 200, 200, 200, 401, 401, 401, 401],
        ),
        (
            read("/api/acme/alpine/edge/main/x86_64/pkgs"),
            [404, 404, 403, 404, 404, 404, 404, 401, 401, 401, 401],
        ),
        (
            read("/api/acme"),
            [200, 200, 403, 200, 200, 200, 200, 401, 401, 401, 401],
        ),
        (
            read("/api/v1/orgs/acme/distros/alpine/versions/v3.20/repos"),
            [404, 404, 403, 404, 403, 403, 404, 401, 401, 401, 401],
        ),
        (
            read("/api/v1/tokens?org=acme"),
            [200, 200, 403, 403, 403, 403, 200, 401, 401, 401, 401],
        ),
        (
            read("/api/v1/tokens"),
            [200, 403, 403, 403, 403, 403, 403, 401, 401, 401, 401],
        ),
        (
            read("/api/orgs"),
            [200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200],
        ),
    ];
    let mut failures = Vec::new();
    for (uri, expected) in cases {
        for (k, kind) in KINDS.iter().enumerate() {
            let got = app.get(uri, tokens[k].as_deref()).await;
            if got.status.as_u16() != expected[k] {
                failures.push(format!(
                    "GET {uri} with {kind} token: {} (expected {}): {}",
                    got.status,
                    expected[k],
                    got.text()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// Tokens are stored only as the SHA-256 of the token, in the tokens folder of
/// their level, which the token itself names.
#[tokio::test]
async fn tokens_are_stored_as_hashes_at_their_level() {
    let app = TestApp::new().await;
    let admin = Some(app.admin.as_str());
    let mut created = Vec::new();
    for (body, folder) in [
        (json!({"name": "a"}), "config/tokens/"),
        (json!({"name": "b", "org": "acme"}), "config/acme/tokens/"),
        (
            json!({"name": "c", "org": "acme", "distro": "alpine"}),
            "config/acme/alpine/tokens/",
        ),
        (
            json!({"name": "d", "org": "acme", "distro": "alpine", "version": "edge"}),
            "config/acme/alpine/edge/tokens/",
        ),
        (
            json!({"name": "e", "org": "acme", "distro": "alpine", "version": "edge", "repo": "main", "read_only": true}),
            "config/acme/alpine/edge/main/tokens/",
        ),
    ] {
        let got = app.json(Method::POST, "/api/v1/tokens", admin, body).await;
        got.expect(201);
        let token = got.json()["token"].as_str().unwrap().to_owned();
        // ≥ 256 random bits after the fixed prefix (and the level, if any).
        let random = token.rsplit('_').next().unwrap();
        assert!(token.starts_with("pkgs_") && random.len() >= 43, "{token}");
        let hash = hex::encode(sha2::Sha256::digest(token.as_bytes()));
        assert_eq!(got.json()["id"], json!(hash));
        let key = format!("{folder}{hash}.json");
        let (record, _) = app
            .stores
            .private()
            .get_bytes(&key)
            .await
            .unwrap_or_else(|e| panic!("{key}: {e}"));
        let record: Value = serde_json::from_slice(&record).unwrap();
        assert_eq!(record["sha256"], json!(hash));
        created.push(token);
    }
    // The plaintext (or its random part) is nowhere in the store.
    for object in app.stores.private().list("").await.unwrap() {
        let (bytes, _) = app.stores.private().get_bytes(&object.key).await.unwrap();
        let text = String::from_utf8_lossy(&bytes);
        for token in created.iter().chain([&app.admin]) {
            let random = token.rsplit('_').next().unwrap();
            assert!(
                !text.contains(random) && !object.key.contains(random),
                "{} holds a plaintext token",
                object.key
            );
        }
    }
    // Listing shows names and ids, never the token.
    let listed = app
        .get(
            "/api/v1/tokens?org=acme&distro=alpine&version=edge&repo=main",
            admin,
        )
        .await;
    listed.expect(200);
    assert_eq!(listed.json()[0]["name"], "e");
    assert_eq!(listed.json()[0]["read_only"], json!(true));
    assert!(!listed.text().contains(&created[4]));
}

/// Look-ups are cached for the configured time: a revocation made elsewhere
/// (another instance deleting the record) takes effect within it; one made
/// through this instance at once.
#[tokio::test]
async fn revocation_takes_effect_within_the_cache_time() {
    let app = TestApp::with_config(packages::api::ApiConfig {
        token_cache_ttl: Duration::from_millis(700),
        ..packages::api::ApiConfig::default()
    })
    .await;
    let token = app.token("acme", false).await;
    app.get(REPO, Some(&token)).await.expect_error(404);
    // Another instance revokes it.
    Tokens::new(app.stores.clone(), Duration::ZERO)
        .revoke_plain(&token)
        .await
        .unwrap();
    app.get(REPO, Some(&token)).await.expect_error(404);
    tokio::time::sleep(Duration::from_millis(800)).await;
    app.get(REPO, Some(&token)).await.expect_error(401);

    // Revoked through this instance: at once, despite the cache.
    let second = app.token("acme", false).await;
    app.get(REPO, Some(&second)).await.expect_error(404);
    let id = hex::encode(sha2::Sha256::digest(second.as_bytes()));
    app.call(
        Method::DELETE,
        &format!("/api/v1/tokens/{id}?org=acme"),
        Some(&app.admin),
    )
    .await
    .expect(200);
    app.get(REPO, Some(&second)).await.expect_error(401);

    // Deleting an org takes its tokens with it.
    let other = app.token("other", false).await;
    app.call(
        Method::DELETE,
        "/api/v1/orgs/other?force=true",
        Some(&app.admin),
    )
    .await
    .expect(204);
    assert!(
        app.stores
            .private()
            .list("config/other/tokens/")
            .await
            .unwrap()
            .is_empty()
    );
    tokio::time::sleep(Duration::from_millis(800)).await;
    app.get("/api/other", Some(&other)).await.expect_error(401);
}

/// An expired token is refused with a message that says so.
#[tokio::test]
async fn expired_tokens_are_refused() {
    let app = TestApp::new().await;
    let token = expired_token(&app, "acme/alpine").await;
    let message = app.get(REPO, Some(&token)).await.expect_error(401);
    assert!(message.contains("expired"), "{message}");
}

// ---- CLI ----------------------------------------------------------------------------

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test]
async fn cli_admin_init_and_token_commands() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let store = store.to_str().unwrap().to_owned();
    let cli = |args: &[&str]| {
        let mut all = vec!["--storage".to_owned(), store.clone()];
        all.extend(args.iter().map(|a| (*a).to_owned()));
        run_cli(all, vec![])
    };

    let init = cli(&["admin", "init"]).await;
    assert!(init.status.success(), "{init:?}");
    let admin = stdout(&init).lines().last().unwrap().to_owned();
    assert!(admin.starts_with("pkgs_"), "{admin}");
    assert_eq!(
        stdout(&init).lines().count(),
        1,
        "the token alone on stdout"
    );
    let again = cli(&["admin", "init"]).await;
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists already"));

    assert!(cli(&["org", "create", "acme"]).await.status.success());
    let created = cli(&[
        "token",
        "create",
        "--name",
        "ci",
        "--org",
        "acme",
        "--distro",
        "alpine",
        "--version",
        "edge",
        "--read-only",
        "--expires",
        "90d",
    ])
    .await;
    assert!(created.status.success(), "{created:?}");
    let token = stdout(&created).lines().last().unwrap().to_owned();
    let (level, _) = packages::tokens::parse(&token).unwrap();
    assert_eq!(level.to_string(), "acme/alpine/edge");

    let json = cli(&[
        "--json", "token", "create", "--name", "bot", "--org", "acme",
    ])
    .await;
    assert!(json.status.success(), "{json:?}");
    let body: Value = serde_json::from_slice(&json.stdout).unwrap();
    let bot = body["token"].as_str().unwrap().to_owned();
    assert_eq!(body["level"], "acme");

    let listed = cli(&[
        "--json",
        "token",
        "list",
        "--org",
        "acme",
        "--distro",
        "alpine",
        "--version",
        "edge",
    ])
    .await;
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed[0]["name"], "ci");
    assert_eq!(listed[0]["read_only"], json!(true));
    let expires = listed[0]["expires"].as_u64().unwrap();
    assert!(expires.abs_diff(unix_now() + 90 * 86_400) < 60);
    let text = stdout(&cli(&["token", "list"]).await);
    assert!(
        text.contains("\tadmin\tadmin\tread-write\tno expiry"),
        "{text}"
    );
    assert!(!text.contains(&admin));

    // Revoke by id (with its level), and by plaintext.
    let id = listed[0]["id"].as_str().unwrap();
    let revoked = cli(&[
        "token",
        "revoke",
        id,
        "--org",
        "acme",
        "--distro",
        "alpine",
        "--version",
        "edge",
    ])
    .await;
    assert!(revoked.status.success(), "{revoked:?}");
    assert!(stdout(&revoked).contains("revoked token `ci`"));
    let wrong_level = cli(&["token", "revoke", id]).await;
    assert!(!wrong_level.status.success());
    assert!(cli(&["token", "revoke", &bot]).await.status.success());
    let empty = cli(&["--json", "token", "list", "--org", "acme"]).await;
    assert_eq!(
        serde_json::from_slice::<Value>(&empty.stdout).unwrap(),
        json!([])
    );

    // Levels need their parents; `--version` without `--distro` is refused by clap.
    let gap = cli(&[
        "token",
        "create",
        "--name",
        "x",
        "--org",
        "acme",
        "--version",
        "edge",
    ])
    .await;
    assert!(!gap.status.success());
    let nobody = cli(&["token", "create", "--name", "x", "--org", "nobody"]).await;
    assert!(!nobody.status.success());
    assert!(String::from_utf8_lossy(&nobody.stderr).contains("does not exist"));
}

/// `packages serve` never logs a token, valid or not, even at trace level.
#[tokio::test]
async fn tokens_never_reach_the_logs() {
    let app = TestApp::new().await;
    let token = app.token("acme", false).await;
    let store = app.stores.public().local_root().unwrap().to_owned();
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut server = std::process::Command::new(env!("CARGO_BIN_EXE_packages"))
        .arg("--storage")
        .arg(&store)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("RUST_LOG", "trace")
        .stdout(std::process::Stdio::null())
        .stderr(log.reopen().unwrap())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut up = false;
    for _ in 0..100 {
        if client
            .get(format!("{base}/health/ping"))
            .send()
            .await
            .is_ok()
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "server did not start");
    let bad = format!("{}x", &token[..token.len() - 1]);
    for presented in [&token, &bad, &app.admin] {
        client
            .get(format!("{base}/api/v1/orgs/acme"))
            .bearer_auth(presented)
            .send()
            .await
            .unwrap();
    }
    let apk = std::fs::read(apk_fixture("gitea-test-1.4.1-r3.apk")).unwrap();
    let form = reqwest::multipart::Form::new().part(
        "package",
        reqwest::multipart::Part::bytes(apk).file_name("gitea-test-1.4.1-r3.apk"),
    );
    let uploaded = client
        .post(format!("{base}/api/acme/alpine/edge/main/x86_64/pkgs"))
        .bearer_auth(&token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(uploaded.status(), 200);
    server.kill().unwrap();
    server.wait().unwrap();
    let logged = std::fs::read_to_string(log.path()).unwrap();
    assert!(logged.contains("published"), "the server logged: {logged}");
    for secret in [&token, &bad, &app.admin] {
        let random = secret.rsplit('_').next().unwrap();
        assert!(
            !logged.contains(random),
            "a token reached the log:\n{logged}"
        );
    }
}
