//! RPM repositories everywhere Alpine is: the v1 API and the seed's route
//! shape with scoped tokens and JSON errors, the `packages` binary (key,
//! one-batch upload with noarch, list, check, index check/repair, remove,
//! the published `.repo` file, `PACKAGES_RPM_SIGN=0`). `gc` of RPM
//! repositories is in `rpm_gc.rs`.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

use axum::http::Method;
use serde_json::json;

use packages::repo::{Distro, Org, Scope};

use crate::api::{Part, TestApp};
use crate::rpm::{FIXTURES, REPO, VERSION, arch_dir, rpm_fixture};
use crate::support::{ORG, fixture};

const V1: &str = "/api/v1/orgs/acme/distros/fedora/versions/40/repos";

/// The EVR each fixture is listed with.
const VERSIONS: [(&str, &str); 4] = [
    ("acc-lib", "1.2.0-1"),
    ("acc-tool", "2.0-1"),
    ("acc-hello", "1.0.1-1"),
    ("acc-data", "0.9-1"),
];

async fn app() -> TestApp {
    let app = TestApp::new().await;
    let scope = Scope::new(
        Org::parse("acme").unwrap(),
        Some(Distro::parse("fedora").unwrap()),
        None,
        None,
    )
    .unwrap();
    packages::keys::import_with(
        &app.stores,
        &scope,
        &crate::deb::test_pgp_key(),
        &packages::keys::ChangeOptions {
            algorithm: packages::signing::Algorithm::OpenPgp,
            ..Default::default()
        },
    )
    .await
    .expect("import the OpenPGP key");
    app
}

fn rpm(name: &str) -> Vec<u8> {
    std::fs::read(rpm_fixture(name)).unwrap()
}

#[tokio::test]
async fn rpms_upload_over_v1_and_the_seed_route_within_their_token() {
    let app = app().await;
    let server = app.token("acme/fedora/40/server", false).await;
    let upload = |repo: &str, file: &str| {
        let path = format!("{V1}/{repo}/packages");
        let bytes = rpm(file);
        let file = file.to_owned();
        let app = &app;
        let token = server.clone();
        async move {
            app.post_form(&path, Some(&token), &[Part::File("package", &file, &bytes)])
                .await
        }
    };

    // A noarch package into a repository with no arch yet: say to name one.
    let before = app.snapshot().await;
    let got = upload("server", "acc-hello-1.0.1-1.noarch.rpm").await;
    let message = got.expect_error(422);
    assert!(
        message.contains("acc-hello-1.0.1-1.noarch.rpm") && message.contains("--arch"),
        "{message}"
    );
    assert_eq!(
        before,
        app.snapshot().await,
        "a refused upload stores nothing"
    );

    // v1, answered with the published record.
    let got = upload("server", "acc-lib-1.2.0-1.x86_64.rpm").await;
    got.expect(201);
    let body = got.json();
    assert_eq!(body[0]["arch"], json!("x86_64"), "{body}");
    assert_eq!(body[0]["record"]["name"], json!("acc-lib"), "{body}");

    // The seed's route shape, an arch package then a noarch one into that arch.
    for file in ["acc-tool-2.0-1.x86_64.rpm", "acc-data-0.9-1.noarch.rpm"] {
        let bytes = rpm(file);
        let got = app
            .post_form(
                "/api/acme/fedora/40/server/x86_64/pkgs",
                Some(&server),
                &[Part::File("package", file, &bytes)],
            )
            .await;
        got.expect(200);
        let name = &file[..file.find('-').unwrap() + 5];
        assert_eq!(got.json()[0]["name"], json!(name), "{}", got.text());
    }
    // v1 again: a noarch package now goes into the repo's arch.
    let got = upload("server", "acc-hello-1.0.1-1.noarch.rpm").await;
    got.expect(201);
    assert_eq!(got.json()[0]["arch"], json!("x86_64"), "{}", got.text());

    // The listing: 4 packages in x86_64, EVR versions.
    let listed = app
        .get(&format!("{V1}/server/packages"), Some(&server))
        .await;
    listed.expect(200);
    let listed = listed.json();
    let mut got: Vec<(String, String, String)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_owned(),
                p["version"].as_str().unwrap().to_owned(),
                p["arch"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    got.sort();
    let mut want: Vec<(String, String, String)> = VERSIONS
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned(), "x86_64".to_owned()))
        .collect();
    want.sort();
    assert_eq!(got, want, "{listed}");
    let files: BTreeSet<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["file"].as_str().unwrap())
        .collect();
    assert_eq!(files, FIXTURES.iter().copied().collect::<BTreeSet<_>>());
    // The seed route lists the arch too.
    let compat = app
        .get("/api/acme/fedora/40/server/x86_64/pkgs", Some(&server))
        .await;
    compat.expect(200);
    assert_eq!(compat.json().as_array().unwrap().len(), 4);

    // Served from the public tree: the signed repomd.xml and a package.
    let os = format!("/{}", arch_dir());
    app.get(&format!("{os}/repodata/repomd.xml"), None)
        .await
        .expect(200);
    app.get(&format!("{os}/repodata/repomd.xml.asc"), None)
        .await
        .expect(200);
    app.get(&format!("{os}/Packages/a/acc-tool-2.0-1.x86_64.rpm"), None)
        .await
        .expect(200);

    // Regenerating the index republishes the RPM metadata (never an APKINDEX),
    // and so does a rebuild from the package files.
    let before_files = app.snapshot().await;
    let got = app
        .call(
            Method::POST,
            &format!("{V1}/server/arches/x86_64/index"),
            Some(&server),
        )
        .await;
    got.expect(200);
    assert_eq!(got.json()["packages"], json!(4), "{}", got.text());
    let got = app
        .call(
            Method::POST,
            "/api/acme/fedora/40/server/x86_64/index",
            Some(&server),
        )
        .await;
    got.expect(200);
    assert_eq!(got.json()["status"], json!(true), "{}", got.text());
    let keys = |snapshot: Vec<(String, String)>| -> BTreeSet<String> {
        snapshot.into_iter().map(|(k, _)| k).collect()
    };
    let (before_files, after_files) = (keys(before_files), keys(app.snapshot().await));
    assert_eq!(before_files, after_files, "the same files, no APKINDEX");
    // A rebuild from the package files (new metadata: its file times are the files').
    let got = app
        .call(
            Method::POST,
            &format!("{V1}/server/arches/x86_64/index?rebuild=true"),
            Some(&server),
        )
        .await;
    got.expect(200);
    assert_eq!(got.json()["packages"], json!(4), "{}", got.text());
    app.get(&format!("{os}/repodata/repomd.xml"), None)
        .await
        .expect(200);

    // A token for `server` cannot touch `everything`.
    upload("everything", "acc-lib-1.2.0-1.x86_64.rpm")
        .await
        .expect_error(403);
    app.post_form(
        "/api/acme/fedora/40/everything/x86_64/pkgs",
        Some(&server),
        &[Part::File(
            "package",
            "acc-lib-1.2.0-1.x86_64.rpm",
            &rpm("acc-lib-1.2.0-1.x86_64.rpm"),
        )],
    )
    .await
    .expect_error(403);

    // Not an RPM (truncated, a .deb, random bytes): 422 naming the file,
    // nothing stored in either tree.
    let lib = rpm("acc-lib-1.2.0-1.x86_64.rpm");
    let deb = std::fs::read(crate::deb::deb_fixture("hello_2.10-3_amd64.deb")).unwrap();
    let random: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let broken: [(&str, &[u8]); 4] = [
        ("acc-new-1.0-1.x86_64.rpm", &lib[..lib.len() / 2]),
        ("acc-head-1.0-1.x86_64.rpm", &lib[..200]),
        ("hello_2.10-3_amd64.deb", &deb),
        ("noise-1.0-1.x86_64.rpm", &random),
    ];
    let before = app.snapshot().await;
    for (name, bytes) in broken {
        for uri in [
            format!("{V1}/server/packages"),
            "/api/acme/fedora/40/server/x86_64/pkgs".to_owned(),
        ] {
            let got = app
                .post_form(&uri, Some(&server), &[Part::File("package", name, bytes)])
                .await;
            let message = got.expect_error(422);
            assert!(message.contains(name), "{uri} {name}: {message}");
        }
    }
    assert_eq!(
        before,
        app.snapshot().await,
        "a refused upload stores nothing"
    );

    // Remove through v1: gone from the listing and from primary.xml.
    let removed = app
        .call(
            Method::DELETE,
            &format!("{V1}/server/packages/acc-data"),
            Some(&server),
        )
        .await;
    removed.expect(200);
    assert_eq!(
        removed.json()[0]["file"],
        json!("acc-data-0.9-1.noarch.rpm")
    );
    let listed = app
        .get(&format!("{V1}/server/packages"), Some(&server))
        .await;
    listed.expect(200);
    let names: BTreeSet<String> = listed
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        names,
        ["acc-hello", "acc-lib", "acc-tool"]
            .map(str::to_owned)
            .into_iter()
            .collect::<BTreeSet<_>>()
    );
    app.call(
        Method::DELETE,
        &format!("{V1}/server/packages/acc-data"),
        Some(&server),
    )
    .await
    .expect_error(404);
}

// ---- the binary ------------------------------------------------------------------

fn packages(storage: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_packages"));
    cmd.env_remove("PACKAGES_STORAGE")
        .env_remove("PACKAGES_CONFIG_STORAGE")
        .env_remove("PACKAGES_RPM_SIGN")
        .env_remove("PACKAGES_PUBLIC_URL")
        .env("RUST_LOG", "warn")
        .arg("--storage")
        .arg(storage);
    cmd
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[track_caller]
fn ok(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("run packages");
    assert!(
        out.status.success(),
        "{cmd:?} failed ({:?}): {}{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    out
}

#[track_caller]
fn exit_1(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("run packages");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{cmd:?}: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    out
}

const REPO_ARGS: [&str; 8] = [
    "--org",
    ORG,
    "--distro",
    "fedora",
    "--version",
    VERSION,
    "--repo",
    REPO,
];

#[test]
fn rpm_cli_workflow_on_a_local_directory() {
    let dir = tempfile::tempdir().unwrap();
    let storage = dir.path().join("store");
    ok(packages(&storage).args(["org", "create", ORG]));

    // An RPM distro's key is an OpenPGP key.
    let out = ok(packages(&storage).args([
        "key", "generate", "--org", ORG, "--distro", "fedora", "--bits", "2048",
    ]));
    let stdout = text(&out.stdout);
    let public = stdout.lines().nth(1).expect("the public key's path");
    assert!(public.ends_with(".asc"), "{stdout}");
    assert!(
        text(&out.stderr).contains("rpm --import"),
        "{}",
        text(&out.stderr)
    );
    let armored = std::fs::read_to_string(storage.join("static").join(public)).unwrap();
    assert!(
        armored.starts_with("-----BEGIN PGP PUBLIC KEY BLOCK-----"),
        "{armored}"
    );

    // One command, the noarch packages in the batch of the first arch ones.
    let out = ok(packages(&storage)
        .env("PACKAGES_PUBLIC_URL", "http://example.invalid")
        .args(["upload", "--create"])
        .args(REPO_ARGS)
        .args(FIXTURES.map(rpm_fixture)));
    let stdout = text(&out.stdout);
    assert_eq!(stdout.lines().count(), 4, "{stdout}");
    for file in FIXTURES {
        assert!(stdout.contains(file), "{file}: {stdout}");
    }

    // list: arch, name, EVR, size, checksum.
    let out = ok(packages(&storage).arg("list").args(REPO_ARGS));
    let stdout = text(&out.stdout);
    let mut rows: Vec<(String, String, String)> = stdout
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 5, "{l}");
            (f[0].to_owned(), f[1].to_owned(), f[2].to_owned())
        })
        .collect();
    rows.sort();
    let mut want: Vec<(String, String, String)> = VERSIONS
        .iter()
        .map(|(n, v)| ("x86_64".to_owned(), (*n).to_owned(), (*v).to_owned()))
        .collect();
    want.sort();
    assert_eq!(rows, want, "{stdout}");

    // The .repo file for users.
    let repo_dir = format!("static/{ORG}/fedora/linux/releases/{VERSION}/{REPO}");
    let repo_file = std::fs::read_to_string(
        storage
            .join(&repo_dir)
            .join(format!("{ORG}-fedora-{VERSION}-{REPO}.repo")),
    )
    .expect("the .repo file");
    let base = format!("http://example.invalid/{ORG}/fedora/linux/releases/{VERSION}/{REPO}");
    for line in [
        format!("baseurl={base}/$basearch/os/"),
        format!("gpgkey={base}/RPM-GPG-KEY-{ORG}-fedora-{VERSION}-{REPO}.asc"),
        "repo_gpgcheck=1".to_owned(),
        "gpgcheck=1".to_owned(),
    ] {
        assert!(
            repo_file.lines().any(|l| l == line),
            "{line} in {repo_file}"
        );
    }
    assert!(
        storage
            .join(&repo_dir)
            .join(format!("RPM-GPG-KEY-{ORG}-fedora-{VERSION}-{REPO}.asc"))
            .is_file()
    );

    // check --file: 0 when published (arch and noarch), 1 when not.
    for file in ["acc-tool-2.0-1.x86_64.rpm", "acc-data-0.9-1.noarch.rpm"] {
        let out = ok(packages(&storage)
            .arg("check")
            .args(REPO_ARGS)
            .arg("--file")
            .arg(rpm_fixture(file)));
        assert!(
            text(&out.stdout).starts_with("published:"),
            "{}",
            text(&out.stdout)
        );
    }
    let other = [
        "--org",
        ORG,
        "--distro",
        "fedora",
        "--version",
        VERSION,
        "--repo",
        "everything",
    ];
    let out = exit_1(
        packages(&storage)
            .arg("check")
            .args(other)
            .arg("--file")
            .arg(rpm_fixture("acc-tool-2.0-1.x86_64.rpm")),
    );
    assert!(
        text(&out.stdout).starts_with("not published:"),
        "{}",
        text(&out.stdout)
    );
    // Not an .rpm: an error, exit status 2 (1 means "not published").
    let err = packages(&storage)
        .arg("check")
        .args(REPO_ARGS)
        .arg("--file")
        .arg(crate::deb::deb_fixture("hello_2.10-3_amd64.deb"))
        .output()
        .expect("run packages");
    assert_eq!(err.status.code(), Some(2), "{}", text(&err.stderr));
    assert!(
        text(&err.stderr).contains("not a valid .rpm"),
        "{}",
        text(&err.stderr)
    );

    // index check / repair / rebuild.
    let out = ok(packages(&storage).args(["index", "check"]).args(REPO_ARGS));
    assert!(
        text(&out.stdout).contains("x86_64: ok"),
        "{}",
        text(&out.stdout)
    );
    let out = ok(packages(&storage).args(["index", "repair"]).args(REPO_ARGS));
    assert!(
        text(&out.stdout).contains("x86_64: 4 package(s)"),
        "{}",
        text(&out.stdout)
    );
    let out = ok(packages(&storage)
        .args(["index", "rebuild"])
        .args(REPO_ARGS));
    assert!(
        text(&out.stdout).contains("x86_64: 4 package(s)"),
        "{}",
        text(&out.stdout)
    );

    // remove, then check says not published.
    let out = ok(packages(&storage)
        .arg("remove")
        .args(REPO_ARGS)
        .arg("acc-data"));
    assert_eq!(
        text(&out.stdout).trim(),
        format!("removed acc-data-0.9-1.noarch.rpm from {ORG}/fedora/{VERSION}/{REPO}/x86_64")
    );
    exit_1(
        packages(&storage)
            .arg("check")
            .args(REPO_ARGS)
            .arg("--file")
            .arg(rpm_fixture("acc-data-0.9-1.noarch.rpm")),
    );
    let out = ok(packages(&storage).arg("list").args(REPO_ARGS));
    assert_eq!(text(&out.stdout).lines().count(), 3);
    ok(packages(&storage).args(["index", "check"]).args(REPO_ARGS));
}

#[test]
fn rpm_cli_publishes_unsigned_packages_as_uploaded() {
    let dir = tempfile::tempdir().unwrap();
    let storage = dir.path().join("store");
    ok(packages(&storage).args(["org", "create", ORG]));
    ok(packages(&storage)
        .args([
            "key", "import", "--org", ORG, "--distro", "fedora", "--file",
        ])
        .arg(fixture("keys/test-signing.pgp.asc")));
    ok(packages(&storage)
        .env("PACKAGES_RPM_SIGN", "0")
        .env("PACKAGES_PUBLIC_URL", "http://example.invalid")
        .args(["upload", "--create"])
        .args(REPO_ARGS)
        .arg(rpm_fixture("acc-lib-1.2.0-1.x86_64.rpm"))
        .arg(rpm_fixture("acc-data-0.9-1.noarch.rpm")));
    let os = storage.join("static").join(arch_dir()).join("Packages/a");
    for file in ["acc-lib-1.2.0-1.x86_64.rpm", "acc-data-0.9-1.noarch.rpm"] {
        assert_eq!(
            std::fs::read(os.join(file)).unwrap(),
            rpm(file),
            "{file}: published byte for byte"
        );
    }
    let repo_file = std::fs::read_to_string(storage.join(format!(
        "static/{ORG}/fedora/linux/releases/{VERSION}/{REPO}/{ORG}-fedora-{VERSION}-{REPO}.repo"
    )))
    .unwrap();
    assert!(repo_file.lines().any(|l| l == "gpgcheck=0"), "{repo_file}");
    assert!(
        repo_file.lines().any(|l| l == "repo_gpgcheck=1"),
        "{repo_file}"
    );
    ok(packages(&storage)
        .arg("check")
        .args(REPO_ARGS)
        .arg("--file")
        .arg(rpm_fixture("acc-lib-1.2.0-1.x86_64.rpm")));
}
