//! Version aliases (`docs/aliases.md`): an Alpine alias served through
//! `packages serve` and Garage's website endpoint holds the target's exact
//! signed index and every package it names; moving the alias switches the
//! index, later publishes follow it, publishing to the alias is refused and
//! `gc` deletes what the old target left behind. The real `dnf` installs
//! through an RPM alias (through `packages serve` and from Garage's website
//! endpoint), and a move switches what it installs. On a
//! Debian-style distro the same call makes a suite alias.

use std::time::Duration;

use packages::publish::{PublishError, Publisher, Upload};
use packages::repo::{Distro, Org, RepoId};
use packages::stores::Stores;

use crate::deb::serve;
use crate::support::{
    Bucket, Ctx, ORG, REPO, TestRepo, VERSION, apk_fixture, curl_get, field, parse_index,
    setup_repo,
};

backend_tests!([local] apk_alias_through_packages_serve);
backend_tests!([garage] apk_alias_through_the_garage_website);
backend_tests!([local] dnf_installs_through_an_rpm_alias);
backend_tests!([garage] dnf_installs_through_an_rpm_alias_on_the_garage_website);
backend_tests!([local, memory] a_debian_alias_is_a_suite_alias);

const NEXT: &str = "v3.21";
const ALIAS: &str = "latest";

fn org() -> Org {
    Org::parse(ORG).unwrap()
}

fn upload_to(t: &TestRepo, version: &str, file: &str) -> Upload {
    let mut upload = t.upload_of(&apk_fixture(file), None);
    upload.repo = RepoId::parse(ORG, "alpine", version, REPO).unwrap();
    upload
}

/// The alias checks, with the public tree served at `base`.
async fn apk_checks(t: &TestRepo, base: &str) {
    let fetch = |version: &str, file: &str| {
        let url = format!("{base}/{ORG}/alpine/{version}/{REPO}/x86_64/{file}");
        tokio::task::block_in_place(|| curl_get(&url))
    };
    for file in ["package-x-1.0.0-r0.apk", "package-y-1.0.0-r0.apk"] {
        t.publisher
            .upload(&upload_to(t, VERSION, file))
            .await
            .unwrap();
    }
    t.publisher
        .upload(&upload_to(t, NEXT, "gitea-test-1.4.1-r3.apk"))
        .await
        .unwrap();
    let previous = t
        .publisher
        .set_version_alias(&org(), Distro::ALPINE, ALIAS, VERSION)
        .await
        .expect("set the alias");
    assert_eq!(previous, None);

    // The alias serves the target's signed index, byte for byte, and every
    // package it names.
    let check_serves = |version: &'static str| async move {
        let target = fetch(version, "APKINDEX.tar.gz");
        assert_eq!(target.status, 200);
        let alias = fetch(ALIAS, "APKINDEX.tar.gz");
        assert_eq!(alias.status, 200);
        assert_eq!(alias.body, target.body, "the alias index is the target's");
        let names: Vec<String> = parse_index(&alias.body)
            .records
            .iter()
            .map(|r| format!("{}-{}.apk", field(r, 'P').unwrap(), field(r, 'V').unwrap()))
            .collect();
        assert!(!names.is_empty());
        for name in names {
            let got = fetch(ALIAS, &name);
            assert_eq!(got.status, 200, "{name} under the alias");
            assert_eq!(got.body, std::fs::read(apk_fixture(&name)).unwrap());
        }
    };
    check_serves(VERSION).await;

    // Publishing to the alias is refused, naming the version.
    let refused = t
        .publisher
        .upload(&upload_to(t, ALIAS, "package-x-1.0.0-r0.apk"))
        .await
        .expect_err("an upload to an alias");
    assert!(
        matches!(&refused, PublishError::InvalidAlias(m) if m.contains(VERSION)),
        "{refused}"
    );

    // A later publish to the target reaches the alias.
    t.publisher
        .upload(&upload_to(t, VERSION, "gitea-test-1.4.1-r3.apk"))
        .await
        .unwrap();
    check_serves(VERSION).await;
    assert_eq!(fetch(ALIAS, "gitea-test-1.4.1-r3.apk").status, 200);

    // Moving it switches the index; the old target's files stay until gc.
    let previous = t
        .publisher
        .set_version_alias(&org(), Distro::ALPINE, ALIAS, NEXT)
        .await
        .unwrap();
    assert_eq!(previous.as_deref(), Some(VERSION));
    check_serves(NEXT).await;
    assert_eq!(fetch(ALIAS, "package-x-1.0.0-r0.apk").status, 200);
    let aliases = t
        .publisher
        .list_version_aliases(&org(), Distro::ALPINE)
        .await
        .unwrap();
    assert_eq!(aliases.0.get(ALIAS).map(String::as_str), Some(NEXT));

    // gc (no grace here) deletes what only the old target had.
    let gc = Publisher::new(t.stores.clone()).with_delete_grace(Duration::ZERO);
    let deleted = gc.gc().await.unwrap();
    assert!(
        deleted
            .iter()
            .any(|k| k.ends_with("latest/main/x86_64/package-x-1.0.0-r0.apk")),
        "{deleted:?}"
    );
    assert_eq!(fetch(ALIAS, "package-x-1.0.0-r0.apk").status, 404);
    check_serves(NEXT).await;

    // Unset: the index goes at once.
    let was = t
        .publisher
        .unset_version_alias(&org(), Distro::ALPINE, ALIAS)
        .await
        .unwrap();
    assert_eq!(was, NEXT);
    assert_eq!(fetch(ALIAS, "APKINDEX.tar.gz").status, 404);
    gc.gc().await.unwrap();
    assert_eq!(fetch(ALIAS, "gitea-test-1.4.1-r3.apk").status, 404);
}

async fn apk_alias_through_packages_serve(ctx: Ctx) {
    let (storage, place) = ctx.open(Bucket::Main).await;
    let dir = place.dir.clone().expect("a local store");
    let t = setup_repo(Stores::shared(storage)).await;
    let server = serve(&dir);
    apk_checks(&t, &server.1).await;
}

async fn apk_alias_through_the_garage_website(ctx: Ctx) {
    let site = ctx.garage_website().await;
    let t = setup_repo(site.stores).await;
    apk_checks(&t, &site.base).await;
}

async fn dnf_installs_through_an_rpm_alias(ctx: Ctx) {
    let (storage, place) = ctx.open(Bucket::Main).await;
    let dir = place.dir.clone().expect("a local store");
    let server = serve(&dir);
    dnf_checks(Stores::shared(storage), &server.1).await;
}

async fn dnf_installs_through_an_rpm_alias_on_the_garage_website(ctx: Ctx) {
    let site = ctx.garage_website().await;
    dnf_checks(site.stores, &site.base).await;
}

/// dnf installs through the alias of an RPM version served at `base`, and
/// sees the alias move.
async fn dnf_checks(stores: Stores, base: &str) {
    use crate::dnf_client::DnfClient;
    use crate::rpm::{FIXTURES, REPO as RPM_REPO, VERSION as RPM_VERSION, rpm_fixture};
    let publisher = crate::rpm::setup_fedora(&stores)
        .await
        .with_public_url(Some(base.to_owned()));
    let fedora = Distro::parse("fedora").unwrap();
    // Named arch: a new version has no arches yet for noarch packages.
    let upload = |version: &str, file: &str| Upload {
        repo: RepoId::parse(ORG, "fedora", version, RPM_REPO).unwrap(),
        arch: Some(packages::repo::Arch::parse("x86_64").unwrap()),
        extra_arches: Vec::new(),
        path: rpm_fixture(file),
        display_name: file.to_owned(),
    };
    for file in FIXTURES {
        publisher.upload(&upload(RPM_VERSION, file)).await.unwrap();
    }
    // The next version has only the noarch packages.
    for file in &FIXTURES[2..] {
        publisher.upload(&upload("41", file)).await.unwrap();
    }
    publisher
        .set_version_alias(&org(), fedora, "current", RPM_VERSION)
        .await
        .unwrap();
    let repo_url = format!(
        "{base}/{ORG}/fedora/linux/releases/current/{RPM_REPO}/{ORG}-fedora-current-{RPM_REPO}.repo"
    );
    let url = repo_url.clone();
    let installed = tokio::task::spawn_blocking(move || {
        let dnf = DnfClient::from_repo_url(&url);
        let tx = dnf.install(&["acc-tool"]).expect("dnf install acc-tool");
        let mut names = tx.installed_names();
        names.sort();
        names
    })
    .await
    .unwrap();
    assert_eq!(installed, ["acc-data", "acc-hello", "acc-lib", "acc-tool"]);

    // Moved: dnf sees version 41, which has no acc-tool.
    publisher
        .set_version_alias(&org(), fedora, "current", "41")
        .await
        .unwrap();
    tokio::task::spawn_blocking(move || {
        let dnf = DnfClient::from_repo_url(&repo_url);
        let err = dnf.install_expect_failure(&["acc-tool"]);
        assert!(!err.is_empty());
        let dnf = DnfClient::from_repo_url(&repo_url);
        // acc-data has no dependencies (acc-hello needs acc-lib, which 41 lacks).
        let tx = dnf.install(&["acc-data"]).expect("dnf install acc-data");
        assert_eq!(tx.installed_names(), ["acc-data"]);
    })
    .await
    .unwrap();
}

async fn a_debian_alias_is_a_suite_alias(ctx: Ctx) {
    let stores = ctx.shared().await;
    let publisher = crate::deb::setup_debian(&stores).await;
    publisher
        .upload(&crate::deb::deb_upload(
            "bookworm",
            "main",
            "hello_2.10-3_amd64.deb",
        ))
        .await
        .unwrap();
    let debian = Distro::parse("debian").unwrap();
    publisher
        .set_version_alias(&org(), debian, "stable", "bookworm")
        .await
        .unwrap();
    let listed = publisher
        .list_version_aliases(&org(), debian)
        .await
        .unwrap();
    assert_eq!(listed.0.get("stable").map(String::as_str), Some("bookworm"));
    let in_release = format!("static/{ORG}/debian/dists/stable/InRelease");
    let (bytes, _) = stores.public().get_bytes(&in_release).await.unwrap();
    let text = String::from_utf8_lossy(&bytes);
    assert!(
        text.contains("Suite: stable") && text.contains("Codename: bookworm"),
        "{text}"
    );
    publisher
        .unset_version_alias(&org(), debian, "stable")
        .await
        .unwrap();
    assert!(stores.public().head(&in_release).await.unwrap().is_none());
}
