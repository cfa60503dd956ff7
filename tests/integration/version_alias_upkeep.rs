//! Version aliases stay in step with paths that rewrite an index outside a
//! publish (`index repair` of an RPM arch, with its new `repomd.xml`), and a
//! version an alias points at cannot be deleted (store, API): its clients
//! would be left with an alias to nothing.

use axum::http::Method;
use packages::publish::{PublishError, Upload};
use packages::repo::{Distro, Org, RepoId, Segment};
use packages::stores::Stores;

use crate::api::TestApp;
use crate::support::{Ctx, ORG};

backend_tests!([local, garage, moto] an_rpm_repair_reaches_the_alias);

/// A public text file (`repomd.xml` and its armored signature).
async fn get(stores: &Stores, rel: &str) -> String {
    let bytes = stores
        .public()
        .get_bytes(&format!("static/{rel}"))
        .await
        .unwrap_or_else(|e| panic!("{rel}: {e}"))
        .0;
    String::from_utf8_lossy(&bytes).into_owned()
}

async fn an_rpm_repair_reaches_the_alias(ctx: Ctx) {
    use crate::rpm::{REPO, VERSION, rpm_fixture};
    let stores = ctx.shared().await;
    let publisher = crate::rpm::setup_fedora(&stores).await;
    let fedora = Distro::parse("fedora").unwrap();
    let file = "acc-lib-1.2.0-1.x86_64.rpm";
    publisher
        .upload(&Upload {
            repo: RepoId::parse(ORG, "fedora", VERSION, REPO).unwrap(),
            arch: None,
            extra_arches: Vec::new(),
            path: rpm_fixture(file),
            display_name: file.to_owned(),
        })
        .await
        .unwrap();
    publisher
        .set_version_alias(&Org::parse(ORG).unwrap(), fedora, "current", VERSION)
        .await
        .unwrap();
    let repodata = |version: &str, file: &str| {
        format!("{ORG}/fedora/linux/releases/{version}/{REPO}/x86_64/os/repodata/{file}")
    };
    let before = get(&stores, &repodata(VERSION, "repomd.xml")).await;
    assert_eq!(
        get(&stores, &repodata("current", "repomd.xml")).await,
        before
    );

    // `repomd.xml` carries seconds: the repair writes other bytes.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let arch = RepoId::parse(ORG, "fedora", VERSION, REPO)
        .unwrap()
        .arch(packages::repo::Arch::parse("x86_64").unwrap());
    publisher.repair_rpm_arch(&arch).await.unwrap();
    let after = get(&stores, &repodata(VERSION, "repomd.xml")).await;
    assert_ne!(after, before, "the repair rewrote repomd.xml");
    for file in ["repomd.xml", "repomd.xml.asc"] {
        assert_eq!(
            get(&stores, &repodata("current", file)).await,
            get(&stores, &repodata(VERSION, file)).await,
            "the alias's {file} is the target's"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aliased_version_cannot_be_deleted() {
    let app = TestApp::new().await;
    let publisher = packages::publish::Publisher::new(app.stores.clone());
    let apk = crate::api::package("hello", "1.0-r0", "x86_64");
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &apk).unwrap();
    let repo = RepoId::parse(ORG, "alpine", "v3.20", "main").unwrap();
    publisher.create_repo_explicitly(&repo).await.unwrap();
    publisher
        .upload(&Upload {
            repo: repo.clone(),
            arch: None,
            extra_arches: Vec::new(),
            path: file.path().to_owned(),
            display_name: "hello-1.0-r0.apk".to_owned(),
        })
        .await
        .unwrap();
    let org = Org::parse(ORG).unwrap();
    publisher
        .set_version_alias(&org, Distro::ALPINE, "latest", "v3.20")
        .await
        .unwrap();
    let version = Segment::parse("version", "v3.20").unwrap();

    let refused = publisher
        .delete_version(&org, &Distro::ALPINE, &version)
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, PublishError::InvalidAlias(m) if m.contains("alias latest") && m.contains("nothing was deleted")),
        "{refused}"
    );
    let uri = format!("/api/v1/orgs/{ORG}/distros/alpine/versions/v3.20");
    let message = app
        .call(Method::DELETE, &uri, Some(&app.admin))
        .await
        .expect_error(409);
    assert!(message.contains("alias latest"), "{message}");
    assert_eq!(publisher.list(&repo, None).await.unwrap().len(), 1);

    // Moved away, the version goes.
    publisher
        .unset_version_alias(&org, Distro::ALPINE, "latest")
        .await
        .unwrap();
    app.call(Method::DELETE, &uri, Some(&app.admin))
        .await
        .expect(200);
    assert!(
        publisher
            .list(&repo, None)
            .await
            .map_or(true, |listed| listed.is_empty()),
        "deleted"
    );
}
