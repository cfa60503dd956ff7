//! RPM repositories end to end: the real `.rpm` fixtures published through
//! the library into Fedora's layout, the published files checked with
//! independent tools (`gpgv` for `repomd.xml.asc`, `rpmkeys -K` for the
//! signed packages), and idempotence, conflicts, removal and check/repair.

use std::path::{Path, PathBuf};
use std::process::Command;

use packages::publish::{PublishError, Publisher, Upload};
use packages::repo::{Arch, Distro, Org, RepoId, Scope};
use packages::stores::Stores;

use crate::support::{Bucket, Ctx, ORG};

all_backends!(rpm_publish_list_remove);

/// The repository the tests publish.
pub const VERSION: &str = "40";
/// The repo (Fedora's `Server`, lowercase).
pub const REPO: &str = "server";

/// The fixtures, arch-specific ones first (a noarch package goes into the
/// arches the repository has).
pub const FIXTURES: [&str; 4] = [
    "acc-lib-1.2.0-1.x86_64.rpm",
    "acc-tool-2.0-1.x86_64.rpm",
    "acc-hello-1.0.1-1.noarch.rpm",
    "acc-data-0.9-1.noarch.rpm",
];

/// An `.rpm` fixture of `tests/fixtures/rpm`.
pub fn rpm_fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/rpm")
        .join(name)
}

/// Creates org `acme` with the test OpenPGP key for `acme/fedora`.
pub async fn setup_fedora(stores: &Stores) -> Publisher {
    let publisher = Publisher::new(stores.clone()).with_public_url(None);
    let org = Org::parse(ORG).unwrap();
    publisher.create_org(&org).await.expect("create org");
    let distro = Distro::parse("fedora").unwrap();
    let scope = Scope::new(org, Some(distro), None, None).unwrap();
    packages::keys::import_with(
        stores,
        &scope,
        &crate::deb::test_pgp_key(),
        &packages::keys::ChangeOptions {
            algorithm: packages::signing::Algorithm::OpenPgp,
            ..Default::default()
        },
    )
    .await
    .expect("import the OpenPGP key");
    publisher
}

/// The repository of the tests.
pub fn repo() -> RepoId {
    RepoId::parse(ORG, "fedora", VERSION, REPO).unwrap()
}

/// An upload of a fixture (or any file) into [`repo`].
pub fn rpm_upload(path: &Path) -> Upload {
    Upload {
        repo: repo(),
        arch: None,
        extra_arches: Vec::new(),
        path: path.to_owned(),
        display_name: path.file_name().unwrap().to_string_lossy().into_owned(),
    }
}

/// Publishes every fixture.
pub async fn publish_all(publisher: &Publisher) {
    for file in FIXTURES {
        publisher
            .upload(&rpm_upload(&rpm_fixture(file)))
            .await
            .unwrap_or_else(|e| panic!("upload {file}: {e}"));
    }
}

/// The public folder of the x86_64 arch, relative to the public tree.
pub fn arch_dir() -> String {
    format!("{ORG}/fedora/linux/releases/{VERSION}/{REPO}/x86_64/os")
}

/// Writes the binary keyring of an armored key file (for gpgv and rpmkeys).
pub fn dearmor(armored: &[u8], dir: &Path) -> PathBuf {
    let asc = dir.join("key.asc");
    std::fs::write(&asc, armored).unwrap();
    let gpg = dir.join("key.gpg");
    let status = Command::new("gpg")
        .args(["--batch", "--yes", "--dearmor", "--output"])
        .arg(&gpg)
        .arg(&asc)
        .status()
        .expect("run gpg --dearmor (gnupg is installed by scripts/test)");
    assert!(status.success(), "gpg --dearmor");
    gpg
}

/// `rpmkeys -Kv` of `rpm` with only the armored `key` imported: its output.
pub fn rpmkeys_check(key_asc: &Path, rpm: &Path) -> (bool, String) {
    let db = tempfile::tempdir().unwrap();
    let import = Command::new("rpmkeys")
        .arg("--dbpath")
        .arg(db.path())
        .arg("--import")
        .arg(key_asc)
        .output()
        .expect("run rpmkeys (rpm is installed by scripts/test)");
    assert!(
        import.status.success(),
        "rpmkeys --import: {}",
        String::from_utf8_lossy(&import.stderr)
    );
    let out = Command::new("rpmkeys")
        .arg("--dbpath")
        .arg(db.path())
        .arg("-Kv")
        .arg(rpm)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

async fn get(stores: &Stores, path: &str) -> Option<Vec<u8>> {
    let tree = if path.starts_with("static/") {
        packages::repo::Tree::Public
    } else {
        packages::repo::Tree::Private
    };
    match stores.store(tree).get_bytes(path).await {
        Ok((bytes, _)) => Some(bytes.to_vec()),
        Err(packages::storage::StorageError::NotFound { .. }) => None,
        Err(e) => panic!("get {path}: {e}"),
    }
}

async fn rpm_publish_list_remove(ctx: Ctx) {
    let (storage, _) = ctx.open(Bucket::Main).await;
    let stores = Stores::shared(storage);
    let publisher = setup_fedora(&stores).await;
    publish_all(&publisher).await;
    let repo = repo();

    // Every package is listed in the x86_64 arch, noarch ones included.
    let listed = publisher.list(&repo, None).await.unwrap();
    let mut files: Vec<&str> = listed.iter().map(|l| l.file.as_str()).collect();
    files.sort_unstable();
    let mut want = FIXTURES.to_vec();
    want.sort_unstable();
    assert_eq!(files, want);
    assert!(listed.iter().all(|l| l.arch == "x86_64"));

    // Fedora's layout; repomd.xml verifies with gpgv against the published key.
    let dir = tempfile::tempdir().unwrap();
    let base = format!("static/{}", arch_dir());
    let repomd = get(&stores, &format!("{base}/repodata/repomd.xml"))
        .await
        .expect("repomd.xml");
    let asc = get(&stores, &format!("{base}/repodata/repomd.xml.asc"))
        .await
        .expect("repomd.xml.asc");
    let key_path = format!(
        "static/{ORG}/fedora/linux/releases/{VERSION}/{REPO}/RPM-GPG-KEY-{ORG}-fedora-{VERSION}-{REPO}.asc"
    );
    let key = get(&stores, &key_path).await.expect("the repository's key");
    let keyring = dearmor(&key, dir.path());
    std::fs::write(dir.path().join("repomd.xml"), &repomd).unwrap();
    std::fs::write(dir.path().join("repomd.xml.asc"), &asc).unwrap();
    crate::apt_client::gpgv_verify(
        &keyring,
        &dir.path().join("repomd.xml.asc"),
        Some(&dir.path().join("repomd.xml")),
    )
    .expect("gpgv verifies repomd.xml.asc");
    let text = String::from_utf8(repomd.clone()).unwrap();
    for kind in ["primary", "filelists", "other"] {
        let href = text
            .split("href=\"")
            .skip(1)
            .filter_map(|s| s.split('"').next())
            .find(|h| h.ends_with(&format!("-{kind}.xml.gz")))
            .unwrap_or_else(|| panic!("repomd.xml names {kind}: {text}"));
        assert!(
            get(&stores, &format!("{base}/{href}")).await.is_some(),
            "{href} is published"
        );
    }

    // Published packages carry our signature: rpmkeys accepts them with the
    // repository's key alone.
    let published = get(
        &stores,
        &format!("{base}/Packages/a/acc-tool-2.0-1.x86_64.rpm"),
    )
    .await
    .expect("the package under Packages/<letter>/");
    let local = dir.path().join("acc-tool.rpm");
    std::fs::write(&local, &published).unwrap();
    let (ok, out) = rpmkeys_check(&dir.path().join("key.asc"), &local);
    assert!(ok, "rpmkeys -K: {out}");

    // The same upload again changes nothing; other bytes under the name are refused.
    let again = publisher
        .upload(&rpm_upload(&rpm_fixture("acc-tool-2.0-1.x86_64.rpm")))
        .await
        .unwrap();
    assert!(again.iter().all(|p| p.unchanged), "{again:?}");
    // The same package signed by someone else is the same package once we
    // sign it (only the signature header differs); published as uploaded
    // (signing off) its bytes differ from ours and are refused.
    let other = rpm_fixture("signed/acc-tool-2.0-1.x86_64.rpm");
    let resigned = publisher.upload(&rpm_upload(&other)).await.unwrap();
    assert!(resigned.iter().all(|p| p.unchanged), "{resigned:?}");
    let as_uploaded = publisher.clone().with_rpm_signing(false);
    match as_uploaded.upload(&rpm_upload(&other)).await {
        Err(PublishError::Conflict { .. }) => {}
        got => panic!("different bytes under a published name: {got:?}"),
    }
    let x86 = repo.arch(Arch::parse("x86_64").unwrap());
    let problems = publisher.check_rpm_arch(&x86).await.unwrap();
    assert!(problems.is_empty(), "check: {problems:?}");

    // Remove by name: gone from the listing, the file stays for the grace period.
    publisher.remove(&repo, None, "acc-data").await.unwrap();
    let listed = publisher.list(&repo, None).await.unwrap();
    assert!(!listed.iter().any(|l| l.record.name == "acc-data"));
    assert_eq!(listed.len(), 3);
    assert!(
        get(
            &stores,
            &format!("{base}/Packages/a/acc-data-0.9-1.noarch.rpm")
        )
        .await
        .is_some()
    );
    let problems = publisher.check_rpm_arch(&x86).await.unwrap();
    assert!(problems.is_empty(), "check after remove: {problems:?}");
    let repaired = publisher.repair_rpm_arch(&x86).await.unwrap();
    assert_eq!(repaired.reindexed.packages, 3);

    // A signature that does not verify is found, and repair re-signs.
    let asc_key = packages::repo::Key::Repodata {
        arch: x86.clone(),
        file: packages::repo::Segment::parse("file name", "repomd.xml.asc").unwrap(),
    };
    let mut broken = asc.clone();
    let middle = broken.len() / 2;
    broken[middle] ^= 0x01;
    stores
        .put(
            &asc_key,
            broken.into(),
            packages::storage::PutMode::Overwrite,
        )
        .await
        .unwrap();
    let problems = publisher.check_rpm_arch(&x86).await.unwrap();
    assert!(
        problems.contains(&packages::core::RootProblem::BadSignature),
        "{problems:?}"
    );
    publisher.repair_rpm_arch(&x86).await.unwrap();
    let problems = publisher.check_rpm_arch(&x86).await.unwrap();
    assert!(problems.is_empty(), "check after repair: {problems:?}");

    // Rebuild from the package files: the removed one stays out, and the
    // original upload is still recognised (signing it again gives the
    // published bytes).
    assert_eq!(publisher.rebuild_rpm_arch(&x86).await.unwrap(), 3);
    let problems = publisher.check_rpm_arch(&x86).await.unwrap();
    assert!(problems.is_empty(), "check after rebuild: {problems:?}");
    let again = publisher
        .upload(&rpm_upload(&rpm_fixture("acc-tool-2.0-1.x86_64.rpm")))
        .await
        .unwrap();
    assert!(again.iter().all(|p| p.unchanged), "{again:?}");
}
