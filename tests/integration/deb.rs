//! Debian suites end to end: the real `.deb` fixtures published through the
//! library, then read by the real `apt-get` (private configuration, signature
//! checking on, any `W:`/`E:` fatal) through `packages serve` on the local dir
//! and through Garage's website endpoint, and checked with `gpgv`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use packages::publish::{PublishError, Publisher, Upload};
use packages::repo::{Arch, Distro, Org, RepoId, Scope, SuiteId};
use packages::stores::Stores;

use crate::apt_client::{AptClient, StaticHttp, flip_byte, gpgv_verify};
use crate::support::{Bucket, Ctx, ORG, curl_get};

backend_tests!([local] apt_installs_through_packages_serve);
backend_tests!([garage] apt_installs_from_the_garage_website);
all_backends!(pool_is_shared_across_suites_and_immutable);

/// The suite the tests publish.
const SUITE: &str = "bookworm";

/// The fixtures and the component each goes to.
const FIXTURES: [(&str, &str); 5] = [
    ("jq_1.6-2.1+deb12u3_amd64.deb", "main"),
    ("libjq1_1.6-2.1+deb12u3_amd64.deb", "main"),
    ("libonig5_6.9.8-1_amd64.deb", "main"),
    ("sensible-utils_0.0.17+nmu1_all.deb", "main"),
    ("hello_2.10-3_amd64.deb", "contrib"),
];

/// A `.deb` fixture of `tests/fixtures/deb`.
pub fn deb_fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/deb")
        .join(name)
}

/// The test OpenPGP key (armored secret key).
pub fn test_pgp_key() -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keys/test-signing.pgp.asc"),
    )
    .expect("read the test OpenPGP key")
}

/// Creates org `acme` with the test OpenPGP key for `acme/debian`.
pub async fn setup_debian(stores: &Stores) -> Publisher {
    let publisher = Publisher::new(stores.clone());
    let org = Org::parse(ORG).unwrap();
    publisher.create_org(&org).await.expect("create org");
    let distro = Distro::parse("debian").unwrap();
    let scope = Scope::new(org, Some(distro), None, None).unwrap();
    packages::keys::import_with(
        stores,
        &scope,
        &test_pgp_key(),
        &packages::keys::ChangeOptions {
            algorithm: packages::signing::Algorithm::OpenPgp,
            ..Default::default()
        },
    )
    .await
    .expect("import the OpenPGP key");
    publisher
}

/// An upload of a fixture into `suite`/`component`.
pub fn deb_upload(suite: &str, component: &str, file: &str) -> Upload {
    Upload {
        repo: RepoId::parse(ORG, "debian", suite, component).unwrap(),
        arch: None,
        extra_arches: Vec::new(),
        path: deb_fixture(file),
        display_name: file.to_owned(),
    }
}

/// Publishes every fixture into [`SUITE`] and points `stable` at it.
async fn publish_all(publisher: &Publisher) {
    for (file, component) in FIXTURES {
        publisher
            .upload(&deb_upload(SUITE, component, file))
            .await
            .unwrap_or_else(|e| panic!("upload {file}: {e}"));
    }
    let suite = SuiteId::new(
        Org::parse(ORG).unwrap(),
        Distro::parse("debian").unwrap(),
        SUITE,
    )
    .unwrap();
    publisher
        .set_alias(&suite, "stable")
        .await
        .expect("alias stable -> bookworm");
}

/// The keyring clients point `signed-by=` at, fetched from `base`.
fn fetch_keyring(base: &str, dir: &Path) -> PathBuf {
    let got = curl_get(&format!("{base}/dists/{SUITE}/archive-keyring.gpg"));
    assert_eq!(got.status, 200, "the suite's keyring is published");
    let path = dir.join("archive-keyring.gpg");
    std::fs::write(&path, &got.body).unwrap();
    path
}

/// What every client test checks against a served distro root `base`.
fn apt_checks(base: &str) {
    let dir = tempfile::tempdir().unwrap();
    let key = fetch_keyring(base, dir.path());

    // gpgv verifies both signatures, over what clients fetch.
    for name in ["InRelease", "Release", "Release.gpg"] {
        let got = curl_get(&format!("{base}/dists/{SUITE}/{name}"));
        assert_eq!(got.status, 200, "{name}");
        std::fs::write(dir.path().join(name), &got.body).unwrap();
    }
    gpgv_verify(&key, &dir.path().join("InRelease"), None).expect("gpgv InRelease");
    gpgv_verify(
        &key,
        &dir.path().join("Release.gpg"),
        Some(&dir.path().join("Release")),
    )
    .expect("gpgv Release.gpg");

    // The real apt: update, then the resolver pulls in-repo dependencies.
    let apt = AptClient::new(base, SUITE, &["main", "contrib"], &key);
    apt.update().expect("apt-get update");
    let got = apt.download(&["jq"]).expect("download jq");
    let names: Vec<String> = got
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for want in ["jq_", "libjq1_", "libonig5_"] {
        assert!(
            names.iter().any(|n| n.starts_with(want)),
            "{want} downloaded with jq: {names:?}"
        );
    }
    let got = apt
        .download(&["sensible-utils", "hello"])
        .expect("all + contrib");
    assert!(
        got.iter()
            .any(|p| p.to_string_lossy().contains("sensible-utils_"))
    );
    // Downloaded files are the uploaded bytes.
    for path in apt.archived_debs() {
        let name = path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .replace("%2b", "+");
        let fixture = FIXTURES
            .iter()
            .find(|(f, _)| name.starts_with(f.split('_').next().unwrap()))
            .map(|(f, _)| deb_fixture(f));
        if let Some(fixture) = fixture {
            assert_eq!(
                std::fs::read(&path).unwrap(),
                std::fs::read(fixture).unwrap()
            );
        }
    }

    // Through the alias, without a warning.
    let alias = AptClient::new(base, "stable", &["main"], &key);
    alias.update().expect("apt-get update through the alias");
    alias.download(&["jq"]).expect("download through the alias");
}

/// Runs `packages serve` on a local store dir; killed on drop.
pub struct Serve(Child, pub String);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `packages serve` on the local store `dir`, on a free port; waits until it answers.
pub fn serve(dir: &Path) -> Serve {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    // `serve` needs a store: some tests start it before publishing anything
    // (`init` on an existing store only reports it).
    let init = Command::new(env!("CARGO_BIN_EXE_packages"))
        .arg("--storage")
        .arg(dir)
        .arg("init")
        .env("RUST_LOG", "warn")
        .output()
        .expect("run packages init");
    assert!(
        init.status.success(),
        "packages init: {}",
        String::from_utf8_lossy(&init.stderr)
    );
    let child = Command::new(env!("CARGO_BIN_EXE_packages"))
        .arg("--storage")
        .arg(dir)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--gc-interval-secs", "0"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start packages serve");
    let url = format!("http://127.0.0.1:{port}");
    // Killed and waited for on drop, whether it starts or not.
    let server = Serve(child, url.clone());
    for _ in 0..300 {
        if curl_get(&format!("{url}/health/ping")).status == 200 {
            return server;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("packages serve did not start");
}

async fn apt_installs_through_packages_serve(ctx: Ctx) {
    let (storage, place) = ctx.open(Bucket::Main).await;
    let stores = Stores::shared(storage);
    let publisher = setup_debian(&stores).await;
    publish_all(&publisher).await;
    let dir = place.dir.clone().expect("a local store");
    let server = serve(&dir);
    let base = format!("{}/{ORG}/debian", server.1);
    tokio::task::spawn_blocking(move || apt_checks(&base))
        .await
        .unwrap();

    // Index check is clean; tampering is refused by apt (served from a copy).
    let suite = SuiteId::new(
        Org::parse(ORG).unwrap(),
        Distro::parse("debian").unwrap(),
        SUITE,
    )
    .unwrap();
    let problems = publisher.check_suite(&suite).await.unwrap();
    assert!(problems.is_empty(), "index check: {problems:?}");
    tokio::task::spawn_blocking(move || tamper_checks(&dir.join("static")))
        .await
        .unwrap();
}

/// A copy of the public tree, one file broken at a time, served by an
/// independent server: apt must refuse each.
fn tamper_checks(public: &Path) {
    let key_dir = tempfile::tempdir().unwrap();
    for (what, path) in [
        ("Packages", "main/binary-amd64/Packages.gz"),
        ("InRelease", "InRelease"),
    ] {
        let copy = tempfile::tempdir().unwrap();
        copy_tree(public, copy.path());
        let dists = copy.path().join(format!("{ORG}/debian/dists/{SUITE}"));
        let key = key_dir.path().join(format!("{what}.gpg"));
        std::fs::copy(dists.join("archive-keyring.gpg"), &key).unwrap();
        let target = dists.join(path);
        let len = std::fs::metadata(&target).unwrap().len() as usize;
        flip_byte(&target, len / 2);
        if what == "Packages" {
            // apt fetches by hash: break those copies too.
            for entry in std::fs::read_dir(dists.join("main/binary-amd64/by-hash/SHA256")).unwrap()
            {
                let p = entry.unwrap().path();
                let len = std::fs::metadata(&p).unwrap().len() as usize;
                flip_byte(&p, len / 2);
            }
        }
        let http = StaticHttp::start(copy.path());
        let apt = AptClient::new(
            &format!("{}/{ORG}/debian", http.url()),
            SUITE,
            &["main"],
            &key,
        );
        let err = apt.update_expect_failure();
        assert!(!err.is_empty(), "apt must refuse a tampered {what}");
    }
    // A tampered pool file is refused at download.
    let copy = tempfile::tempdir().unwrap();
    copy_tree(public, copy.path());
    let distro = copy.path().join(format!("{ORG}/debian"));
    let key = key_dir.path().join("pool.gpg");
    std::fs::copy(
        distro.join(format!("dists/{SUITE}/archive-keyring.gpg")),
        &key,
    )
    .unwrap();
    let pool_file = distro.join("pool/main/libo/libonig/libonig5_6.9.8-1_amd64.deb");
    flip_byte(&pool_file, 1000);
    let http = StaticHttp::start(copy.path());
    let apt = AptClient::new(
        &format!("{}/{ORG}/debian", http.url()),
        SUITE,
        &["main"],
        &key,
    );
    apt.update().expect("update of the untouched indexes");
    let err = apt.download_expect_failure(&["libonig5"]);
    assert!(!err.is_empty(), "apt must refuse a tampered pool file");
}

fn copy_tree(from: &Path, to: &Path) {
    let status = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", from.display()))
        .arg(to)
        .status()
        .unwrap();
    assert!(status.success());
}

async fn apt_installs_from_the_garage_website(ctx: Ctx) {
    let site = ctx.garage_website().await;
    let stores = site.stores;
    let publisher = setup_debian(&stores).await;
    publish_all(&publisher).await;
    let base = format!("{}/{ORG}/debian", site.base);
    // The private tree is not served from the website bucket.
    let private_key = format!("{}/{ORG}/debian/signing-key.pem", site.private_base);
    assert_eq!(curl_get(&private_key).status, 404);
    tokio::task::spawn_blocking(move || apt_checks(&base))
        .await
        .unwrap();
}

async fn pool_is_shared_across_suites_and_immutable(ctx: Ctx) {
    let stores = ctx.shared().await;
    let publisher = setup_debian(&stores).await;
    let file = "hello_2.10-3_amd64.deb";
    publisher
        .upload(&deb_upload("bookworm", "main", file))
        .await
        .unwrap();
    // The same file into another suite: stored once, listed in both.
    let second = publisher
        .upload(&deb_upload("trixie", "main", file))
        .await
        .unwrap();
    assert!(second[0].unchanged, "the pool already held these bytes");
    for suite in ["bookworm", "trixie"] {
        let repo = RepoId::parse(ORG, "debian", suite, "main").unwrap();
        let listed = publisher.list(&repo, None).await.unwrap();
        assert_eq!(listed.len(), 1, "{suite}");
        assert_eq!(listed[0].file, file);
    }
    // Different bytes under the same pool name: 409 naming the suite.
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join(file);
    let mut bytes = std::fs::read(deb_fixture(file)).unwrap();
    // Another valid .deb with the same name: jq's bytes under hello's name
    // would be read as jq, so change an ignored trailing member instead.
    bytes.extend_from_slice(b"_extra/         0           0     0     644     2         `\nxx");
    std::fs::write(&other, &bytes).unwrap();
    let mut upload = deb_upload("sid", "main", file);
    upload.path = other;
    match publisher.upload(&upload).await {
        Err(e @ PublishError::PoolConflict { .. }) => {
            assert!(e.to_string().contains("bookworm"), "{e}");
        }
        other => panic!("expected a pool conflict, got {other:?}"),
    }
    // Removing from one suite leaves the other.
    let bookworm = RepoId::parse(ORG, "debian", "bookworm", "main").unwrap();
    publisher.remove(&bookworm, None, "hello").await.unwrap();
    assert!(publisher.list(&bookworm, None).await.unwrap().is_empty());
    let trixie = RepoId::parse(ORG, "debian", "trixie", "main").unwrap();
    assert_eq!(publisher.list(&trixie, None).await.unwrap().len(), 1);
    let _ = Arch::parse("amd64");
}
