//! Stores are made on purpose (`packages init`), locations are parsed
//! strictly, every command names its store, and store failures (S3 ones
//! included) read as plain language: through the real binary.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

use crate::support::{Ctx, ORG, apk_fixture, fixture};

backend_tests!([garage, moto] s3_store_must_be_initialized);
backend_tests!([garage, moto] s3_missing_bucket_is_named);
backend_tests!([garage] s3_wrong_secret_is_plain);
backend_tests!([garage] s3_unknown_key_and_wrong_region_are_plain);
backend_tests!([garage, moto] s3_no_metadata_lookup_with_endpoint_and_keys);

const REPO_ARGS: [&str; 6] = ["--org", ORG, "--version", "v3.20", "--repo", "main"];

/// The binary with no store, server or AWS settings from the environment.
fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_packages"));
    for var in [
        "PACKAGES_STORAGE",
        "PACKAGES_CONFIG_STORAGE",
        "PACKAGES_SERVER",
        "PACKAGES_TOKEN",
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_ENDPOINT_URL",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("RUST_LOG", "warn");
    cmd
}

fn pk(storage: &Path, args: &[&str]) -> Command {
    let mut cmd = bin();
    cmd.arg("--storage").arg(storage).args(args);
    cmd
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run packages")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[track_caller]
fn ok(cmd: &mut Command) -> Output {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({:?}): {}",
        out.status,
        stderr(&out)
    );
    out
}

/// Runs a command that must fail with `code`; returns stderr.
#[track_caller]
fn fails_with(cmd: &mut Command, code: i32) -> String {
    let out = run(cmd);
    assert_eq!(
        out.status.code(),
        Some(code),
        "{cmd:?}: stdout {} stderr {}",
        stdout(&out),
        stderr(&out)
    );
    let err = stderr(&out);
    assert!(err.contains("error:"), "{err}");
    assert!(
        !err.contains("DispatchFailure") && !err.contains(" { "),
        "no debug dumps: {err}"
    );
    err
}

fn file_url(path: &Path) -> String {
    format!("file://{}", path.display())
}

/// Every command that needs a store, with arguments that would otherwise work.
fn store_commands() -> Vec<Vec<String>> {
    let owned = |args: &[&str]| args.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let mut check = owned(&["check", "--file"]);
    check.push(apk_fixture("package-x-1.0.0-r0.apk").display().to_string());
    check.extend(owned(&REPO_ARGS));
    vec![
        owned(&["org", "list"]),
        owned(&["org", "show", ORG]),
        [owned(&["list"]), owned(&REPO_ARGS)].concat(),
        [owned(&["remove"]), owned(&REPO_ARGS), owned(&["package-x"])].concat(),
        owned(&["token", "list"]),
        owned(&["gc"]),
        owned(&["doctor"]),
        owned(&["key", "generate", "--org", ORG]),
        owned(&["serve", "--listen", "127.0.0.1:0"]),
        check,
    ]
}

#[test]
fn a_missing_or_empty_directory_is_an_error_and_stays_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    for args in store_commands() {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let code = if args[0] == "check" { 2 } else { 1 };
        for place in [&missing, &empty] {
            let err = fails_with(&mut pk(place, &args), code);
            let url = file_url(place);
            assert!(
                err.contains(&format!("store: {url}\n")),
                "{args:?}: names the store: {err}"
            );
            assert!(
                err.contains(&format!("no packages store at {url}"))
                    && err.contains(&format!("packages init --storage {url}")),
                "{args:?}: says what is wrong and the fix: {err}"
            );
        }
        assert!(!missing.exists(), "{args:?} created {}", missing.display());
        assert_eq!(
            std::fs::read_dir(&empty).unwrap().count(),
            0,
            "{args:?} wrote into the empty directory"
        );
    }
}

#[test]
fn near_miss_urls_are_refused_with_the_accepted_forms() {
    let cwd = tempfile::tempdir().unwrap();
    for url in [
        "file:/x", "file:x", "file://x", "s3:/b", "s3:b", "gs://b", "S3://b",
    ] {
        for command in [&["org", "list"][..], &["init"], &["org", "create", ORG]] {
            let mut cmd = bin();
            cmd.current_dir(cwd.path())
                .args(["--storage", url])
                .args(command);
            let err = fails_with(&mut cmd, 1);
            assert!(
                err.contains(&format!("invalid storage URL `{url}`"))
                    && err.contains("s3://BUCKET[/PREFIX]")
                    && err.contains("file:///ABSOLUTE/PATH"),
                "{url}: {err}"
            );
        }
    }
    assert_eq!(
        std::fs::read_dir(cwd.path()).unwrap().count(),
        0,
        "nothing created in the current directory"
    );
    // A plain relative path and `file:///` are fine.
    let out = ok(bin()
        .current_dir(cwd.path())
        .args(["--storage", "./a:b", "init"]));
    assert!(cwd.path().join("a:b/config/_store.json").is_file());
    assert!(stdout(&out).contains("created a new store at file:///"));
    let abs = cwd.path().join("abs");
    ok(bin().args(["--storage", &file_url(&abs), "init"]));
    assert!(abs.join("config/_store.json").is_file());
}

#[test]
fn init_creates_a_store_that_every_command_then_uses() {
    let dir = tempfile::tempdir().unwrap();
    let storage = dir.path().join("store");
    let url = file_url(&storage);
    let out = ok(&mut pk(&storage, &["init"]));
    assert_eq!(
        stdout(&out),
        format!("created a new store at {url} (format 1)\n")
    );
    assert!(stderr(&out).contains(&format!("store: {url}\n")));
    let marker: Value =
        serde_json::from_slice(&std::fs::read(storage.join("config/_store.json")).unwrap())
            .unwrap();
    assert_eq!(marker["format"], 1);

    // Again: nothing changes, it says so.
    let out = ok(&mut pk(&storage, &["--json", "init"]));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["created"], false);
    assert_eq!(report["store"], url.as_str());
    assert!(report["initialized"].as_str().unwrap().ends_with('Z'));

    // Now every command works; --json stdout stays JSON (the store line is on stderr).
    let out = ok(&mut pk(&storage, &["--json", "org", "list"]));
    assert_eq!(
        serde_json::from_slice::<Value>(&out.stdout).unwrap(),
        serde_json::json!([])
    );
    assert!(stderr(&out).contains(&format!("store: {url}")));
    ok(&mut pk(&storage, &["org", "create", ORG]));
    let out = ok(&mut pk(&storage, &["org", "show", ORG]));
    let shown = stdout(&out);
    // `acme (created 2026-11-27T22:30:21Z)`: an RFC 3339 time, not Unix seconds.
    let time = shown
        .trim()
        .strip_prefix(&format!("{ORG} (created "))
        .and_then(|s| s.strip_suffix(')'))
        .unwrap_or_else(|| panic!("{shown}"));
    assert!(
        time.len() == 20 && time.as_bytes()[4] == b'-' && time.as_bytes()[10] == b'T',
        "{shown}"
    );
    ok(&mut pk(&storage, &["token", "list"]));
    ok(&mut pk(&storage, &["gc"]));
}

#[test]
fn admin_init_and_org_create_make_a_new_store_and_say_so() {
    let dir = tempfile::tempdir().unwrap();
    for command in [&["org", "create", ORG][..], &["admin", "init"]] {
        let storage = dir.path().join(command[0]);
        let out = ok(&mut pk(&storage, command));
        let err = stderr(&out);
        assert!(
            err.contains(&format!("created a new store at {}", file_url(&storage))),
            "{command:?}: {err}"
        );
        assert!(storage.join("config/_store.json").is_file());
        // The second time the store exists: no such line.
        let out = run(&mut pk(&storage, command));
        assert!(!stderr(&out).contains("created a new store"), "{command:?}");
    }
    // A directory holding other files is not clearly new: refused, untouched.
    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("notes.txt"), "mine").unwrap();
    let err = fails_with(&mut pk(&other, &["org", "create", ORG]), 1);
    assert!(err.contains("holds other files"), "{err}");
    assert_eq!(std::fs::read_dir(&other).unwrap().count(), 1);
    // `init` there is explicit, so it is done.
    ok(&mut pk(&other, &["init"]));
    ok(&mut pk(&other, &["org", "create", ORG]));
}

#[test]
fn a_store_of_an_earlier_version_is_used_and_marked() {
    let dir = tempfile::tempdir().unwrap();
    let storage = dir.path().join("store");
    copy_tree(&fixture("store-v1"), &storage);
    assert!(!storage.join("config/_store.json").exists());
    let out = ok(pk(&storage, &["--json", "list"]).args(REPO_ARGS));
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(!listed.as_array().unwrap().is_empty(), "{listed}");
    assert!(
        storage.join("config/_store.json").is_file(),
        "marked on first use"
    );
    ok(&mut pk(&storage, &["org", "list"]));
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else if entry.file_name() != "README.md" {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn check_exits_0_published_1_not_2_error() {
    let dir = tempfile::tempdir().unwrap();
    let storage = dir.path().join("store");
    ok(&mut pk(&storage, &["org", "create", ORG]));
    ok(pk(&storage, &["key", "import", "--org", ORG, "--file"])
        .arg(fixture("keys/test-signing.rsa")));
    let package = apk_fixture("package-x-1.0.0-r0.apk");
    let check = |file: &Path, storage: &Path| {
        let mut cmd = pk(storage, &["check", "--file"]);
        cmd.arg(file).args(REPO_ARGS);
        cmd
    };
    let out = run(&mut check(&package, &storage));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("not published"));
    ok(pk(&storage, &["upload", "--create"])
        .args(REPO_ARGS)
        .arg(&package));
    let out = ok(&mut check(&package, &storage));
    assert!(stdout(&out).starts_with("published"));
    // Errors: an unreadable package, a missing store.
    fails_with(&mut check(&dir.path().join("nope.apk"), &storage), 2);
    fails_with(&mut check(&package, &dir.path().join("missing")), 2);
}

#[test]
fn json_errors_are_one_object_on_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let out = run(&mut pk(&missing, &["--json", "org", "list"]));
    assert_eq!(out.status.code(), Some(1));
    let error: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(&out)));
    assert_eq!(error["error"]["code"], "store_not_initialized");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("packages init --storage"),
        "{error}"
    );
    assert!(
        !stderr(&out).contains("error:"),
        "said once: {}",
        stderr(&out)
    );
    let out = run(bin().args(["--storage", "file:/x", "--json", "org", "list"]));
    let error: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(error["error"]["code"], "invalid_storage_url");
    ok(&mut pk(&missing, &["init"]));
    let out = run(&mut pk(&missing, &["--json", "org", "show", ORG]));
    let error: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(error["error"]["code"], "not_found", "{error}");
}

#[test]
fn a_reupload_after_remove_is_published_again() {
    let dir = tempfile::tempdir().unwrap();
    let storage = dir.path().join("store");
    ok(&mut pk(&storage, &["org", "create", ORG]));
    ok(pk(&storage, &["key", "import", "--org", ORG, "--file"])
        .arg(fixture("keys/test-signing.rsa")));
    let package = apk_fixture("package-x-1.0.0-r0.apk");
    let upload = || {
        let mut cmd = pk(&storage, &["upload", "--create"]);
        cmd.args(REPO_ARGS).arg(&package);
        cmd
    };
    let first = stdout(&ok(&mut upload()));
    assert!(!first.contains("already published"), "{first}");
    let again = stdout(&ok(&mut upload()));
    assert!(again.contains("(already published)"), "{again}");
    ok(pk(&storage, &["remove"]).args(REPO_ARGS).arg("package-x"));
    let revived = stdout(&ok(&mut upload()));
    assert!(
        !revived.contains("already published") && revived.contains("package-x"),
        "{revived}"
    );
    let out = ok(pk(&storage, &["--json", "list"]).args(REPO_ARGS));
    assert_eq!(
        serde_json::from_slice::<Value>(&out.stdout)
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn serve_says_serving_only_once_listening_and_logs_carry_no_colour() {
    let dir = tempfile::tempdir().unwrap();
    let storage = dir.path().join("store");
    ok(&mut pk(&storage, &["init"]));
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = busy.local_addr().unwrap().to_string();
    let out = run(pk(&storage, &["serve", "--listen", &address]).env("RUST_LOG", "info"));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(!err.contains("serving"), "{err}");
    assert!(
        err.contains(&format!("cannot listen on {address}")),
        "{err}"
    );
    // Logs went to stderr, a pipe here: no ANSI escapes in them.
    assert!(err.contains("INFO"), "{err}");
    assert!(
        !err.contains('\u{1b}'),
        "colour codes in a redirected log: {err:?}"
    );
}

/// No credentials anywhere: a plain message, not the SDK's error dump. No
/// server needed (credentials are looked up before connecting).
#[test]
fn s3_without_credentials_is_plain() {
    let home = tempfile::tempdir().unwrap();
    let out = run(bin()
        .env("HOME", home.path())
        .env("AWS_CONFIG_FILE", home.path().join("none"))
        .env("AWS_SHARED_CREDENTIALS_FILE", home.path().join("none"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
        .args(["--storage", "s3://bucket/prefix", "org", "list"]));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("store s3://bucket/prefix: no S3 credentials found")
            && err.contains("AWS_ACCESS_KEY_ID"),
        "{err}"
    );
}

/// An endpoint nobody listens on: says so, naming it.
#[test]
fn s3_unreachable_endpoint_is_plain() {
    let out = run(s3_env(bin(), "http://127.0.0.1:1", "id", "secret").args([
        "--json",
        "--storage",
        "s3://bucket",
        "org",
        "list",
    ]));
    assert_eq!(out.status.code(), Some(1));
    let error: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(error["error"]["code"], "s3_unreachable", "{error}");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("store s3://bucket: cannot reach the S3 endpoint http://127.0.0.1:1 (connection refused)"),
        "{message}"
    );
}

fn s3_env(mut cmd: Command, endpoint: &str, id: &str, secret: &str) -> Command {
    cmd.env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ACCESS_KEY_ID", id)
        .env("AWS_SECRET_ACCESS_KEY", secret);
    cmd
}

/// The binary set up for the test's S3 server, with `secret` instead of the real one.
fn s3_cli(ctx: &Ctx, secret: Option<&str>) -> Command {
    let env = ctx.s3();
    let (id, real) = env
        .credentials
        .clone()
        .unwrap_or(("test".into(), "test".into()));
    let mut cmd = s3_env(bin(), &env.endpoint, &id, secret.unwrap_or(&real));
    cmd.env("AWS_REGION", &env.region);
    cmd
}

async fn s3_store_must_be_initialized(ctx: Ctx) {
    let url = format!("s3://{}/{}/new", ctx.s3().bucket, ctx.base);
    let err = fails_with(
        s3_cli(&ctx, None).args(["--storage", &url, "org", "list"]),
        1,
    );
    assert!(
        err.contains(&format!(
            "no packages store at {url}: nothing under this bucket and prefix"
        )) && err.contains(&format!("packages init --storage {url}")),
        "{err}"
    );
    let out = ok(s3_cli(&ctx, None).args(["--storage", &url, "init"]));
    assert_eq!(
        stdout(&out),
        format!("created a new store at {url} (format 1)\n")
    );
    ok(s3_cli(&ctx, None).args(["--storage", &url, "org", "create", ORG]));
    let out = ok(s3_cli(&ctx, None).args(["--storage", &url, "org", "list"]));
    assert_eq!(stdout(&out), format!("{ORG}\n"));
    // `org create` on another new prefix creates the store.
    let other = format!("s3://{}/{}/other", ctx.s3().bucket, ctx.base);
    let out = ok(s3_cli(&ctx, None).args(["--storage", &other, "org", "create", ORG]));
    assert!(
        stderr(&out).contains(&format!("created a new store at {other}")),
        "{}",
        stderr(&out)
    );
}

async fn s3_missing_bucket_is_named(ctx: Ctx) {
    let bucket = format!("no-such-bucket-{}", std::process::id());
    let url = format!("s3://{bucket}/x");
    for command in [&["org", "list"][..], &["init"], &["org", "create", ORG]] {
        let err = fails_with(
            s3_cli(&ctx, None).arg("--storage").arg(&url).args(command),
            1,
        );
        assert!(
            err.contains(&format!(
                "store {url}: no such bucket `{bucket}` at {}",
                ctx.s3().endpoint
            )) && err.contains("create the bucket"),
            "{command:?}: {err}"
        );
        assert!(!err.contains("not found"), "{err}");
    }
}

async fn s3_wrong_secret_is_plain(ctx: Ctx) {
    let url = format!("s3://{}/{}", ctx.s3().bucket, ctx.base);
    let out = run(s3_cli(&ctx, Some(&"0".repeat(64))).args(["--json", "--storage", &url, "init"]));
    assert_eq!(out.status.code(), Some(1));
    let error: Value = serde_json::from_slice(&out.stdout).unwrap();
    let message = error["error"]["message"].as_str().unwrap();
    assert!(
        ["s3_wrong_credentials", "s3_access_denied"]
            .contains(&error["error"]["code"].as_str().unwrap()),
        "{error}"
    );
    assert!(
        message.starts_with(&format!("store {url}: ")) && message.contains("AWS_SECRET_ACCESS_KEY"),
        "{message}"
    );
}

/// With an endpoint and static keys (and no region set), nothing asks the
/// cloud metadata service: a stand-in for it sees no connection.
async fn s3_no_metadata_lookup_with_endpoint_and_keys(ctx: Ctx) {
    let imds = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    imds.set_nonblocking(true).unwrap();
    let home = ctx.temp_dir();
    let url = format!("s3://{}/{}/imds", ctx.s3().bucket, ctx.base);
    let mut cmd = s3_cli(&ctx, None);
    cmd.env_remove("AWS_REGION")
        .env("HOME", &home)
        .env("AWS_CONFIG_FILE", home.join("none"))
        .env("AWS_SHARED_CREDENTIALS_FILE", home.join("none"))
        .env(
            "AWS_EC2_METADATA_SERVICE_ENDPOINT",
            format!("http://{}", imds.local_addr().unwrap()),
        )
        .args(["--storage", &url, "init"]);
    if ctx.s3().region != "us-east-1" {
        // The fallback region is us-east-1; another server region needs AWS_REGION.
        cmd.env("AWS_REGION", &ctx.s3().region);
    }
    ok(&mut cmd);
    match imds.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("the metadata service was asked: {other:?}"),
    }
}

async fn s3_unknown_key_and_wrong_region_are_plain(ctx: Ctx) {
    let url = format!("s3://{}/{}", ctx.s3().bucket, ctx.base);
    let mut cmd = s3_cli(&ctx, None);
    cmd.env("AWS_ACCESS_KEY_ID", "GK000000000000000000000000")
        .args(["--storage", &url, "org", "list"]);
    let err = fails_with(&mut cmd, 1);
    assert!(
        err.contains(&format!(
            "store {url}: the S3 server refused the credentials"
        )) && err.contains("check AWS_ACCESS_KEY_ID"),
        "{err}"
    );
    let mut cmd = s3_cli(&ctx, None);
    cmd.env("AWS_REGION", "eu-west-3")
        .args(["--storage", &url, "org", "list"]);
    let err = fails_with(&mut cmd, 1);
    assert!(
        err.contains(&format!("store {url}: wrong S3 region `eu-west-3`"))
            && err.contains("AWS_REGION"),
        "{err}"
    );
}
