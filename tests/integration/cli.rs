//! The `packages` binary, run as a user would.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use crate::support::{
    Ctx, FIXTURES, ORG, apk_fixture, fixture, openssl_verify, parse_index, write_file,
};

backend_tests!([garage, moto] cli_on_s3_with_a_separate_private_bucket);
backend_tests!([garage] cli_reports_refused_credentials);

const REPO_ARGS: [&str; 6] = ["--org", ORG, "--version", "v3.20", "--repo", "main"];

fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_packages"));
    cmd.env_remove("PACKAGES_STORAGE")
        .env_remove("PACKAGES_CONFIG_STORAGE")
        .env("RUST_LOG", "warn");
    cmd
}

fn packages(storage: &Path) -> Command {
    let mut cmd = bin();
    cmd.arg("--storage").arg(storage);
    cmd
}

/// `packages --storage STORAGE ARGS...` as a value.
fn pk(storage: &Path, args: &[&str]) -> Command {
    let mut cmd = packages(storage);
    cmd.args(args);
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

#[track_caller]
fn fails(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{cmd:?} should fail with exit code 1: stdout {} stderr {}",
        stdout(&out),
        stderr(&out)
    );
    let err = stderr(&out);
    assert!(err.contains("error:"), "{err}");
    err
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("--json output is JSON ({e}): {}", stdout(out)))
}

fn fixture_paths() -> Vec<PathBuf> {
    FIXTURES.iter().map(|(f, _)| apk_fixture(f)).collect()
}

#[test]
fn help_and_usage_errors() {
    let out = ok(bin().arg("--help"));
    for word in ["upload", "org", "key", "serve", "index"] {
        assert!(stdout(&out).contains(word), "{word}");
    }
    // Usage errors are clap's (exit code 2), before touching any store.
    let dir = tempfile::tempdir().unwrap();
    let storage = dir.path().join("store");
    let out = run(packages(&storage)
        .args(["upload", "--create"])
        .args(REPO_ARGS));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = run(packages(&storage).arg("no-such-command"));
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn full_workflow_on_a_local_directory() {
    let dir = tempfile::tempdir().unwrap();
    let storage = dir.path().join("store");

    // org
    let out = ok(packages(&storage).args(["org", "create", ORG]));
    assert!(stdout(&out).contains(&format!("created organization {ORG}")));
    let err = fails(packages(&storage).args(["org", "create", ORG]));
    assert!(err.contains(ORG) && err.contains("already exists"), "{err}");
    let out = ok(packages(&storage).args(["--json", "org", "list"]));
    assert_eq!(json(&out), serde_json::json!([ORG]));

    // key
    let out = ok(packages(&storage).args([
        "key", "generate", "--org", ORG, "--distro", "alpine", "--bits", "2048",
    ]));
    let lines: Vec<String> = stdout(&out).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 2, "key name and public path: {lines:?}");
    let key_name = &lines[0];
    assert!(
        key_name.starts_with(&format!("{ORG}-"))
            && key_name.ends_with(".rsa.pub")
            && key_name.len() == ORG.len() + 1 + 8 + ".rsa.pub".len(),
        "{key_name}"
    );
    assert_eq!(lines[1], format!("{ORG}/alpine/{key_name}"));
    assert!(stderr(&out).contains("/etc/apk/keys/"), "{}", stderr(&out));
    let public_pem =
        std::fs::read(storage.join("static").join(&lines[1])).expect("public key file");
    let err = fails(packages(&storage).args([
        "key", "generate", "--org", ORG, "--distro", "alpine", "--bits", "2048",
    ]));
    assert!(err.contains("already exists"), "{err}");

    // upload, human output
    let out = ok(packages(&storage)
        .args(["upload", "--create"])
        .args(REPO_ARGS)
        .args(fixture_paths()));
    let text = stdout(&out);
    assert_eq!(
        text.lines().count(),
        7,
        "one line per arch published: {text}"
    );
    for (file, _) in FIXTURES {
        assert!(text.contains(file), "{file} in {text}");
    }
    assert!(!text.contains("already published"));
    assert!(
        !stderr(&out).contains('\u{1b}'),
        "no progress bar escapes when not a TTY: {:?}",
        stderr(&out)
    );

    // upload again, --json
    let out = ok(packages(&storage)
        .args(["--json", "upload", "--create"])
        .args(REPO_ARGS)
        .args(fixture_paths()));
    let published = json(&out);
    let published = published.as_array().expect("an array");
    assert_eq!(published.len(), 7);
    for p in published {
        assert_eq!(p["unchanged"], Value::Bool(true), "{p}");
        assert_eq!(p["record"]["arch"], p["arch"], "{p}");
        assert!(p["record"]["checksum"].as_str().unwrap().starts_with("Q1"));
    }
    let human = ok(packages(&storage)
        .args(["upload", "--create"])
        .args(REPO_ARGS)
        .arg(apk_fixture("package-x-1.0.0-r0.apk")));
    assert!(
        stdout(&human).contains("already published"),
        "{}",
        stdout(&human)
    );

    // list
    let out = ok(packages(&storage).args(["--json", "list"]).args(REPO_ARGS));
    let listed = json(&out);
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 7);
    let mut pairs: Vec<(String, String)> = listed
        .iter()
        .map(|l| {
            (
                l["arch"].as_str().unwrap().to_owned(),
                l["file"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    pairs.sort();
    assert_eq!(
        pairs[..2],
        [
            ("aarch64".into(), "alpine-baselayout-3.2.0-r23.apk".into()),
            ("aarch64".into(), "gitea-noarch-1.4-r0.apk".into())
        ]
    );
    let gitea = listed
        .iter()
        .find(|l| l["file"] == "gitea-test-1.4.1-r3.apk")
        .unwrap();
    assert_eq!(
        gitea["record"]["checksum"],
        "Q1/se1PjO94hYXbfpNR1/61hVORIc="
    );
    let out = ok(packages(&storage)
        .args(["--json", "list"])
        .args(REPO_ARGS)
        .args(["--arch", "aarch64"]));
    assert_eq!(json(&out).as_array().unwrap().len(), 2);
    let out = ok(packages(&storage).arg("list").args(REPO_ARGS));
    assert_eq!(stdout(&out).lines().count(), 7);
    assert!(stdout(&out).lines().all(|l| l.split('\t').count() == 5));

    // remove
    let out = ok(packages(&storage)
        .arg("remove")
        .args(REPO_ARGS)
        .arg("package-y"));
    assert_eq!(
        stdout(&out).trim(),
        format!("removed package-y-1.0.0-r0.apk from {ORG}/alpine/v3.20/main/x86_64")
    );
    let out = ok(packages(&storage).args(["--json", "list"]).args(REPO_ARGS));
    assert_eq!(json(&out).as_array().unwrap().len(), 6);
    let err = fails(
        packages(&storage)
            .arg("remove")
            .args(REPO_ARGS)
            .arg("package-y"),
    );
    assert!(err.contains("package-y"), "{err}");
    let index_path = storage.join("static/acme/alpine/v3.20/main/x86_64/APKINDEX.tar.gz");
    let index = std::fs::read(&index_path).unwrap();
    let parsed = parse_index(&index);
    assert!(parsed.record("package-y").is_none());
    assert_eq!(parsed.key_name(), key_name);
    let (verified, out) = openssl_verify(&public_pem, &parsed.signature, &parsed.unsigned);
    assert!(verified, "{out}");

    // index rebuild
    let out = ok(packages(&storage)
        .args(["index", "rebuild"])
        .args(REPO_ARGS));
    let text = stdout(&out);
    assert!(
        text.contains(&format!(
            "rebuilt {ORG}/alpine/v3.20/main/x86_64: 4 package(s)"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "rebuilt {ORG}/alpine/v3.20/main/aarch64: 2 package(s)"
        )),
        "{text}"
    );
    assert_eq!(
        std::fs::read(&index_path).unwrap(),
        index,
        "rebuild: same bytes"
    );
    let out = ok(packages(&storage)
        .args(["--json", "index", "rebuild"])
        .args(REPO_ARGS)
        .args(["--arch", "x86_64"]));
    assert_eq!(
        json(&out),
        serde_json::json!([{"arch": "x86_64", "packages": 4}])
    );
}

#[test]
fn commands_name_a_missing_org() {
    let dir = tempfile::tempdir().unwrap();
    let storage = dir.path().join("store");
    ok(packages(&storage).args(["org", "create", ORG]));
    let file = apk_fixture("package-x-1.0.0-r0.apk");
    let file = file.to_str().unwrap();
    let m = ["--org", "nope", "--version", "v3.20", "--repo", "main"];
    for mut cmd in [
        pk(
            &storage,
            &[&["upload", "--create"][..], &m, &[file]].concat(),
        ),
        pk(&storage, &[&["list"][..], &m].concat()),
        pk(&storage, &[&["remove"][..], &m, &["package-x"]].concat()),
        pk(
            &storage,
            &["key", "generate", "--org", "nope", "--bits", "2048"],
        ),
        pk(&storage, &["org", "show", "nope"]),
    ] {
        let err = fails(&mut cmd);
        assert!(
            err.contains("organization `nope` does not exist"),
            "{cmd:?}: {err}"
        );
    }
    // With the org but no key: the error says how to make one, and nothing is stored.
    let before = std::fs::read_dir(&storage).unwrap().count();
    let err = fails(
        packages(&storage)
            .args(["upload", "--create"])
            .args(REPO_ARGS)
            .arg(file),
    );
    assert!(
        err.contains("no signing key") && err.contains("key generate"),
        "{err}"
    );
    assert!(!storage.join("static").exists(), "nothing published");
    assert_eq!(std::fs::read_dir(&storage).unwrap().count(), before);
    // An invalid org name is refused as such.
    let err = fails(packages(&storage).args(["org", "create", "Not_Lower"]));
    assert!(err.contains("invalid org"), "{err}");
}

#[test]
fn concurrent_org_create_has_one_winner_across_processes() {
    let dir = tempfile::tempdir().unwrap();
    let storage = dir.path().join("store");
    ok(packages(&storage).arg("init"));
    let children: Vec<_> = (0..8)
        .map(|_| {
            packages(&storage)
                .args(["org", "create", "race"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs: Vec<Output> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let winners = outputs.iter().filter(|o| o.status.success()).count();
    assert_eq!(winners, 1, "exactly one process creates the org");
    for o in outputs.iter().filter(|o| !o.status.success()) {
        assert!(stderr(o).contains("already exists"), "{}", stderr(o));
    }
}

#[test]
fn error_messages_say_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let storage = dir.path().join("store");
    ok(packages(&storage).args(["org", "create", ORG]));
    ok(packages(&storage)
        .args(["key", "import", "--org", ORG, "--file"])
        .arg(fixture("keys/test-signing.rsa")));
    let apk = std::fs::read(apk_fixture("package-x-1.0.0-r0.apk")).unwrap();
    let truncated = write_file(dir.path(), "truncated.apk", &apk[..apk.len() - 300]);
    let not_a_key = write_file(dir.path(), "not-a-key.pem", b"hello");
    let truncated = truncated.to_str().unwrap();
    let not_a_key = not_a_key.to_str().unwrap();
    for mut cmd in [
        pk(
            &storage,
            &[&["upload", "--create"][..], &REPO_ARGS, &[truncated]].concat(),
        ),
        pk(
            &storage,
            &[
                "key",
                "import",
                "--org",
                ORG,
                "--version",
                "v1",
                "--file",
                not_a_key,
            ],
        ),
    ] {
        let err = fails(&mut cmd);
        let line = err.lines().find(|l| l.starts_with("error:")).unwrap();
        // "A: B: B" — the cause printed twice.
        let repeated = line.match_indices(": ").any(|(i, _)| {
            let tail = &line[i + 2..];
            tail.len() > 12 && line[..i].ends_with(tail)
        });
        assert!(!repeated, "the cause is repeated: {line}");
    }
}

/// A CLI process configured for an S3 backend through the standard AWS variables.
fn s3_cli(ctx: &Ctx, secret: Option<&str>) -> Command {
    let env = ctx.s3();
    let (access, real_secret) = env.credentials.clone().unwrap();
    let mut cmd = bin();
    cmd.env("AWS_ENDPOINT_URL", &env.endpoint)
        .env("AWS_REGION", &env.region)
        .env("AWS_ACCESS_KEY_ID", access)
        .env("AWS_SECRET_ACCESS_KEY", secret.unwrap_or(&real_secret))
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN");
    cmd
}

async fn cli_on_s3_with_a_separate_private_bucket(ctx: Ctx) {
    let env = ctx.s3().clone();
    let public_url = format!("s3://{}/{}/pub", env.bucket, ctx.base);
    let private_url = format!(
        "s3://{}/{}/priv",
        env.private_bucket.as_deref().unwrap(),
        ctx.base
    );
    let cli = |args: &[&str]| {
        let mut cmd = s3_cli(&ctx, None);
        cmd.args(["--storage", &public_url, "--config-storage", &private_url])
            .args(args);
        cmd
    };
    ok(&mut cli(&["org", "create", ORG]));
    let mut import = cli(&["key", "import", "--org", ORG, "--file"]);
    ok(import.arg(fixture("keys/test-signing.rsa")));
    let mut upload = cli(&["--json", "upload", "--create"]);
    let out = ok(upload
        .args(REPO_ARGS)
        .arg(apk_fixture("package-x-1.0.0-r0.apk"))
        .arg(apk_fixture("pretend-baselayout-1.0.0-r0.apk")));
    assert_eq!(json(&out).as_array().unwrap().len(), 2);
    let mut list = cli(&["--json", "list"]);
    let out = ok(list.args(REPO_ARGS));
    assert_eq!(json(&out).as_array().unwrap().len(), 2);

    // Look behind the CLI: the public prefix holds static/ only.
    let public = packages::storage::Storage::s3(
        packages::storage::S3Store::connect(
            &env.bucket,
            &format!("{}/pub", ctx.base),
            &env.settings(),
        )
        .await
        .unwrap(),
    );
    let keys: Vec<String> = public
        .list("")
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert!(keys.iter().all(|k| k.starts_with("static/")), "{keys:?}");
    assert!(keys.contains(&"static/acme/alpine/v3.20/main/x86_64/APKINDEX.tar.gz".to_owned()));
    let index = public
        .get_bytes("static/acme/alpine/v3.20/main/x86_64/APKINDEX.tar.gz")
        .await
        .unwrap()
        .0;
    assert_eq!(
        parse_index(&index).names(),
        ["package-x", "pretend-baselayout"]
    );
}

async fn cli_reports_refused_credentials(ctx: Ctx) {
    let url = format!("s3://{}/{}", ctx.s3().bucket, ctx.base);
    let mut cmd = s3_cli(&ctx, Some(&"0".repeat(64)));
    let err = fails(cmd.args(["--storage", &url, "org", "create", ORG]));
    assert!(
        err.contains("403") || err.contains("Access") || err.contains("Signature"),
        "the server's refusal is reported: {err}"
    );
    assert!(!err.contains("already exists"), "{err}");
}
