//! The CLI's remote mode: every command that reads or changes the repository
//! prints through `packages serve` what it prints against the store (text
//! and `--json`); store-only commands and out-of-scope tokens are refused
//! with a clear error; `PACKAGES_SERVER` set never touches a store.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use crate::deb::serve;
use crate::support::{apk_fixture, fixture};

/// A store with an admin token, served by `packages serve`.
struct Setup {
    _dir: tempfile::TempDir,
    store: PathBuf,
    /// Where no store is: remote mode must never create it.
    nowhere: PathBuf,
    server: crate::deb::Serve,
    admin: String,
}

fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_packages"));
    for var in [
        "PACKAGES_STORAGE",
        "PACKAGES_CONFIG_STORAGE",
        "PACKAGES_SERVER",
        "PACKAGES_TOKEN",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("RUST_LOG", "warn");
    cmd
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[track_caller]
fn ok(out: Output, what: &str) -> Output {
    assert!(
        out.status.success(),
        "{what} failed ({:?}): {}",
        out.status,
        stderr(&out)
    );
    out
}

impl Setup {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store");
        let nowhere = dir.path().join("nowhere");
        let init = ok(
            bin()
                .arg("--storage")
                .arg(&store)
                .args(["admin", "init"])
                .output()
                .unwrap(),
            "admin init",
        );
        let admin = stdout(&init).lines().last().unwrap().to_owned();
        let server = serve(&store);
        Self {
            _dir: dir,
            store,
            nowhere,
            server,
            admin,
        }
    }

    /// `packages ARGS` on the store.
    fn direct(&self, args: &[&str]) -> Output {
        bin()
            .arg("--storage")
            .arg(&self.store)
            .args(args)
            .output()
            .unwrap()
    }

    /// `packages ARGS` through the server with `token`; `PACKAGES_STORAGE` names
    /// a directory that must stay absent.
    fn remote_with(&self, token: &str, args: &[&str]) -> Output {
        bin()
            .env("PACKAGES_SERVER", &self.server.1)
            .env("PACKAGES_TOKEN", token)
            .env("PACKAGES_STORAGE", &self.nowhere)
            .args(args)
            .output()
            .unwrap()
    }

    fn remote(&self, args: &[&str]) -> Output {
        self.remote_with(&self.admin, args)
    }

    /// Runs `args` both ways; asserts the same exit status and stdout, text and `--json`.
    #[track_caller]
    fn same(&self, args: &[&str]) {
        for json in [false, true] {
            let mut full: Vec<&str> = if json { vec!["--json"] } else { vec![] };
            full.extend(args);
            let direct = self.direct(&full);
            let remote = self.remote(&full);
            assert_eq!(
                direct.status.code(),
                remote.status.code(),
                "{full:?}: direct {} / remote {}",
                stderr(&direct),
                stderr(&remote)
            );
            assert_eq!(stdout(&direct), stdout(&remote), "{full:?}");
            if json && remote.status.success() {
                serde_json::from_slice::<Value>(&remote.stdout)
                    .unwrap_or_else(|e| panic!("{full:?}: not JSON ({e}): {}", stdout(&remote)));
            }
        }
        assert!(!self.nowhere.exists(), "remote mode created a store");
    }
}

const REPO: [&str; 6] = ["--org", "acme", "--version", "v3.20", "--repo", "main"];

fn with<'a>(head: &[&'a str], tail: &[&'a str]) -> Vec<&'a str> {
    head.iter().chain(tail).copied().collect()
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn reads_print_the_same_remote_and_direct() {
    let s = Setup::new();
    ok(s.direct(&["org", "create", "acme"]), "org create");
    ok(
        s.direct(&["key", "generate", "--org", "acme", "--bits", "2048"]),
        "key generate",
    );
    let files: Vec<PathBuf> = ["gitea-test-1.4.1-r3.apk", "package-x-1.0.0-r0.apk"]
        .iter()
        .map(|f| apk_fixture(f))
        .collect();
    let mut upload = with(&["upload", "--create"], &REPO);
    upload.extend(files.iter().map(|f| path(f)));
    ok(s.direct(&upload), "upload");
    ok(
        s.direct(&["token", "create", "--name", "ci", "--org", "acme"]),
        "token create",
    );

    s.same(&["org", "list"]);
    s.same(&["org", "show", "acme"]);
    s.same(&with(&["list"], &REPO));
    s.same(&with(&["list", "--arch", "x86_64"], &REPO));
    s.same(&with(&["index", "check"], &REPO));
    s.same(&["token", "list"]);
    s.same(&["token", "list", "--org", "acme"]);
    s.same(&["suite", "aliases", "--org", "acme", "--distro", "debian"]);
    let unpublished = apk_fixture("package-y-1.0.0-r0.apk");
    let check = with(&["check", "--file", path(&unpublished)], &REPO);
    s.same(&check);
    // Errors fail both ways.
    s.same(&["org", "show", "nope"]);
}

/// Runs `args` (with `{org}` replaced) against org `ours`; the output with
/// `ours` replaced by `{org}`.
fn normalized(out: &Output, org: &str) -> String {
    stdout(out).replace(org, "{org}")
}

fn args_for<'a>(args: &[&'a str], org: &'a str) -> Vec<&'a str> {
    args.iter()
        .map(|a| if *a == "{org}" { org } else { a })
        .collect()
}

#[test]
fn changes_print_the_same_remote_and_direct() {
    let s = Setup::new();
    let files: Vec<PathBuf> = ["gitea-test-1.4.1-r3.apk", "package-y-1.0.0-r0.apk"]
        .iter()
        .map(|f| apk_fixture(f))
        .collect();
    let key = fixture("keys/test-signing.rsa");
    let repo = ["--org", "{org}", "--version", "v3.20", "--repo", "main"];
    let mut upload = with(&["upload", "--create"], &repo);
    upload.extend(files.iter().map(|f| path(f)));
    let mut upload_json = vec!["--json"];
    upload_json.extend(&upload);
    // The same changes on two orgs, one through the server, one on the store:
    // the same output, but for the org's name.
    let steps: Vec<Vec<&str>> = vec![
        vec!["org", "create", "{org}"],
        vec!["key", "import", "--org", "{org}", "--file", path(&key)],
        upload.clone(),
        upload_json,
        with(&["--json", "list"], &repo),
        with(&["remove"], &with(&repo, &["package-y"])),
        with(&["index", "repair"], &repo),
        with(&["--json", "index", "repair"], &repo),
        with(&["index", "rebuild"], &repo),
        with(&["--json", "index", "rebuild", "--arch", "x86_64"], &repo),
        with(&["--json", "remove"], &with(&repo, &["gitea-test"])),
        with(&["index", "check"], &repo),
        // Refused both ways: the key exists.
        vec!["key", "import", "--org", "{org}", "--file", path(&key)],
        vec!["org", "delete", "{org}"],
        vec!["org", "delete", "{org}", "--force"],
    ];
    for step in &steps {
        let remote = s.remote(&args_for(step, "orgremote"));
        let direct = s.direct(&args_for(step, "orgdirect"));
        assert_eq!(
            remote.status.code(),
            direct.status.code(),
            "{step:?}: remote {} / direct {}",
            stderr(&remote),
            stderr(&direct)
        );
        assert_eq!(
            normalized(&remote, "orgremote"),
            normalized(&direct, "orgdirect"),
            "{step:?}"
        );
    }

    // Generated keys and tokens differ by nature: the same shape.
    ok(s.direct(&["org", "create", "acme"]), "org create");
    let generated = ok(
        s.remote(&[
            "--json",
            "key",
            "generate",
            "--org",
            "acme",
            "--version",
            "edge",
            "--bits",
            "2048",
        ]),
        "remote key generate",
    );
    let generated: Value = serde_json::from_slice(&generated.stdout).unwrap();
    assert!(generated["key_name"].as_str().unwrap().starts_with("acme-"));
    assert!(
        generated["public_pem"]
            .as_str()
            .unwrap()
            .contains("PUBLIC KEY")
    );
    let text = ok(
        s.remote(&[
            "key",
            "generate",
            "--org",
            "acme",
            "--version",
            "edge",
            "--replace",
        ]),
        "remote key generate --replace",
    );
    let lines: Vec<&str> = std::str::from_utf8(&text.stdout).unwrap().lines().collect();
    assert_eq!(lines.len(), 2, "key name and public path: {lines:?}");
    assert!(lines[1].starts_with("acme/alpine/"), "{lines:?}");

    let created = ok(
        s.remote(&[
            "--json",
            "token",
            "create",
            "--name",
            "bot",
            "--org",
            "acme",
            "--read-only",
        ]),
        "remote token create",
    );
    let created: Value = serde_json::from_slice(&created.stdout).unwrap();
    let bot = created["token"].as_str().unwrap().to_owned();
    assert_eq!(created["level"], "acme");
    assert_eq!(created["read_only"], Value::Bool(true));
    let text = ok(
        s.remote(&["token", "create", "--name", "ci", "--org", "acme"]),
        "remote token create",
    );
    let ci = stdout(&text).lines().last().unwrap().to_owned();
    assert!(ci.starts_with("pkgs_"), "the token alone on the last line");
    s.same(&["token", "list", "--org", "acme"]);
    // Revoked by plaintext (only its level and id cross the wire) and by id.
    let revoked = ok(s.remote(&["token", "revoke", &bot]), "revoke by plaintext");
    assert!(stdout(&revoked).starts_with("revoked token `bot` of acme ("));
    let listed = ok(
        s.direct(&["--json", "token", "list", "--org", "acme"]),
        "token list",
    );
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    let id = listed[0]["id"].as_str().unwrap();
    let revoked = ok(
        s.remote(&["--json", "token", "revoke", id, "--org", "acme"]),
        "revoke by id",
    );
    let revoked: Value = serde_json::from_slice(&revoked.stdout).unwrap();
    assert_eq!(revoked["name"], "ci");
    assert!(!s.nowhere.exists(), "remote mode created a store");
}

#[test]
fn remote_mode_refuses_clearly() {
    let s = Setup::new();
    ok(s.direct(&["org", "create", "acme"]), "org create");
    ok(
        s.direct(&["key", "generate", "--org", "acme", "--bits", "2048"]),
        "key generate",
    );
    let made = ok(
        s.direct(&[
            "token",
            "create",
            "--name",
            "repo",
            "--org",
            "acme",
            "--distro",
            "alpine",
            "--version",
            "v3.20",
            "--repo",
            "main",
        ]),
        "token create",
    );
    let scoped = stdout(&made).lines().last().unwrap().to_owned();

    // Store-only commands say where to run them, and never open a store.
    for args in [
        vec!["gc"],
        vec!["doctor"],
        vec!["serve"],
        vec!["admin", "init"],
    ] {
        let out = s.remote(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains("where the store is"), "{args:?}: {err}");
        assert!(err.contains("PACKAGES_SERVER"), "{args:?}: {err}");
    }

    // A repo token: its repo works, anything else is a 403 with the server's reason.
    let fixture = apk_fixture("package-x-1.0.0-r0.apk");
    let out = s.remote_with(
        &scoped,
        &with(&with(&["upload", "--create"], &REPO), &[path(&fixture)]),
    );
    ok(out, "upload with the repo token");
    let out = s.remote_with(&scoped, &with(&["list"], &REPO));
    assert_eq!(ok(out, "list").stdout.split(|b| *b == b'\n').count(), 2);
    let other = ["--org", "acme", "--version", "v3.20", "--repo", "other"];
    for args in [
        vec!["org", "create", "beta"],
        with(&["list"], &other),
        with(&["remove"], &with(&other, &["package-x"])),
        vec!["token", "list", "--org", "acme"],
        vec!["key", "generate", "--org", "acme", "--version", "edge"],
        vec!["org", "delete", "acme", "--force"],
    ] {
        let out = s.remote_with(&scoped, &args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.starts_with("error:"), "{args:?}: {err}");
        assert!(err.contains("403"), "{args:?}: {err}");
        assert!(err.contains("may not"), "{args:?}: {err}");
        assert!(stdout(&out).is_empty(), "{args:?}");
    }

    // A server without a token, and a bad token.
    let out = bin()
        .env("PACKAGES_SERVER", &s.server.1)
        .args(["org", "list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("PACKAGES_TOKEN"), "{}", stderr(&out));
    let out = s.remote_with("pkgs_nope", &["org", "list"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("401"), "{}", stderr(&out));
    assert!(!s.nowhere.exists(), "remote mode created a store");
}

/// `audit` and `retention` through the server: the same output as on the
/// store, the same errors for bad filters, and the API's refusals.
#[test]
fn audit_and_retention_print_the_same_remote_and_direct() {
    let s = Setup::new();
    ok(s.direct(&["org", "create", "acme"]), "org create");
    ok(s.direct(&["org", "create", "beta"]), "org create beta");
    ok(
        s.direct(&["key", "generate", "--org", "acme", "--bits", "2048"]),
        "key generate",
    );
    let files: Vec<PathBuf> = ["1.0-r0", "1.1-r0", "1.2-r0"]
        .iter()
        .map(|v| {
            let file = s.store.with_file_name(format!("hello-{v}.apk"));
            std::fs::write(&file, crate::api::package("hello", v, "x86_64")).unwrap();
            file
        })
        .collect();
    let mut upload = with(&["upload", "--create"], &REPO);
    upload.extend(files.iter().map(|f| path(f)));
    ok(s.direct(&upload), "upload");

    // Retention: set (the same rule twice), show, a dry run.
    s.same(&with(&["retention", "set", "--keep", "2"], &REPO));
    s.same(&with(&["retention", "show"], &REPO));
    s.same(&with(&["retention", "apply", "--dry-run"], &REPO));
    let listed = |out: Output| stdout(&ok(out, "list")).lines().count();
    assert_eq!(listed(s.direct(&with(&["list"], &REPO))), 3);
    // Applied through the server: the oldest version goes.
    let applied = ok(
        s.remote(&with(&["retention", "apply"], &REPO)),
        "retention apply",
    );
    assert_eq!(
        stdout(&applied),
        "removed x86_64/hello-1.0-r0.apk (hello 1.0-r0, keep)\n"
    );
    assert_eq!(listed(s.direct(&with(&["list"], &REPO))), 2);

    // The audit log, whole and filtered, and a bad filter.
    s.same(&["audit"]);
    s.same(&[
        "audit",
        "--org",
        "acme",
        "--action",
        "retention",
        "--since",
        "1h",
    ]);
    s.same(&["audit", "--limit", "2"]);
    s.same(&["audit", "--since", "yesterday-ish"]);
    // `--by-token` filters; the token remote mode sends (`PACKAGES_TOKEN`) never does.
    s.same(&["audit", "--by-token", "admin"]);
    let by_admin = ok(s.remote(&["audit", "--by-token", "admin"]), "audit");
    // Two `set`s (`same` runs text and JSON), the apply and its remove.
    assert_eq!(
        stdout(&by_admin).lines().count(),
        4,
        "{}",
        stdout(&by_admin)
    );
    let records = ok(
        s.remote(&["--json", "audit", "--org", "acme", "--action", "retention"]),
        "audit",
    );
    let records: Value = serde_json::from_slice(&records.stdout).unwrap();
    let actions: Vec<&str> = records
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    // Newest first: the apply, then the `set`s (each run direct, then remote).
    assert_eq!(actions[0], "retention.apply");
    assert_eq!(actions[1..], ["retention.set"; 4]);
    let kinds: Vec<&str> = records.as_array().unwrap()[1..]
        .iter()
        .map(|r| r["actor"]["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["token", "cli", "token", "cli"]);
    assert_eq!(records[0]["actor"]["kind"], "token");
    assert_eq!(
        records[0]["details"]["removed"][0]["file"],
        "hello-1.0-r0.apk"
    );

    // Another org's token reads neither acme's log nor the server's, nor sets acme's rules.
    let made = ok(
        s.direct(&["token", "create", "--name", "b", "--org", "beta"]),
        "token create",
    );
    let beta = stdout(&made).lines().last().unwrap().to_owned();
    for args in [
        vec!["audit", "--org", "acme"],
        vec!["audit"],
        with(&["retention", "set", "--keep", "1"], &REPO),
        with(&["retention", "apply"], &REPO),
    ] {
        let out = s.remote_with(&beta, &args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains("403") && err.contains("may not"),
            "{args:?}: {err}"
        );
        assert!(stdout(&out).is_empty(), "{args:?}");
    }
    ok(
        s.remote_with(&beta, &["audit", "--org", "beta"]),
        "beta's own log",
    );
    assert_eq!(listed(s.direct(&with(&["list"], &REPO))), 2);
}
