//! `gc` of RPM repositories: the content-named `repodata/` files a
//! replaced `repomd.xml` named stay for the grace period, counted from when
//! `repomd.xml` stopped naming them; then they go, with the files of
//! removed packages, and the current metadata never does.

use std::collections::BTreeSet;
use std::time::Duration;

use packages::publish::Publisher;
use packages::stores::Stores;

use crate::rpm::{arch_dir, rpm_fixture, rpm_upload, setup_fedora};
use crate::support::{Bucket, Ctx};

all_backends!(rpm_gc_keeps_then_deletes_superseded_metadata);
backend_tests!([local] rpm_gc_counts_the_grace_from_when_repomd_stopped_naming_a_file);

/// The `repodata/` files `repomd.xml` names, and every file under `repodata/`.
async fn repodata(stores: &Stores) -> (BTreeSet<String>, BTreeSet<String>) {
    let prefix = format!("static/{}/repodata/", arch_dir());
    let (repomd, _) = stores
        .public()
        .get_bytes(&format!("{prefix}repomd.xml"))
        .await
        .expect("repomd.xml");
    let repomd = String::from_utf8(repomd.to_vec()).unwrap();
    let named: BTreeSet<String> = repomd
        .split("href=\"repodata/")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .map(str::to_owned)
        .collect();
    assert_eq!(named.len(), 3, "{repomd}");
    let all: BTreeSet<String> = stores
        .public()
        .list(&prefix)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|o| o.key.strip_prefix(&prefix).map(str::to_owned))
        .filter(|n| !n.starts_with("repomd.xml"))
        .collect();
    (named, all)
}

async fn rpm_gc_keeps_then_deletes_superseded_metadata(ctx: Ctx) {
    let (storage, _) = ctx.open(Bucket::Main).await;
    let stores = Stores::shared(storage);
    let publisher = setup_fedora(&stores).await;
    let upload = |file: &str| rpm_upload(&rpm_fixture(file));
    publisher
        .upload(&upload("acc-lib-1.2.0-1.x86_64.rpm"))
        .await
        .unwrap();
    let (first, _) = repodata(&stores).await;
    publisher
        .upload(&upload("acc-tool-2.0-1.x86_64.rpm"))
        .await
        .unwrap();
    let (second, all) = repodata(&stores).await;
    assert!(first.is_disjoint(&second), "{first:?} {second:?}");
    // Kept for the grace period: a dnf holding the first repomd.xml still finds them.
    assert!(all.is_superset(&first), "{all:?} lacks some of {first:?}");
    publisher.gc().await.unwrap();
    let (_, all) = repodata(&stores).await;
    assert!(
        all.is_superset(&first),
        "gc within the grace period: {all:?}"
    );

    // Remove a package; with no grace, gc deletes what repomd.xml no longer
    // names and the removed package's file, never the current metadata.
    publisher
        .remove(&crate::rpm::repo(), None, "acc-lib")
        .await
        .unwrap();
    let package = format!(
        "static/{}/Packages/a/acc-lib-1.2.0-1.x86_64.rpm",
        arch_dir()
    );
    assert!(stores.public().get_bytes(&package).await.is_ok());
    let (current, before) = repodata(&stores).await;
    assert!(before.len() >= 9, "{before:?}");
    let gc = Publisher::new(stores.clone())
        .with_public_url(None)
        .with_delete_grace(Duration::ZERO);
    let deleted = gc.gc().await.unwrap();
    let (named, after) = repodata(&stores).await;
    assert_eq!(named, current, "gc does not publish");
    assert_eq!(
        after, current,
        "only the current metadata is left: {deleted:?}"
    );
    for name in before.difference(&current) {
        let key = format!("static/{}/repodata/{name}", arch_dir());
        assert!(deleted.contains(&key), "{key} in {deleted:?}");
    }
    assert!(deleted.contains(&package), "{deleted:?}");
    assert!(stores.public().get_bytes(&package).await.is_err());
    let tool = format!("static/{}/Packages/a/acc-tool-2.0-1.x86_64.rpm", arch_dir());
    assert!(stores.public().get_bytes(&tool).await.is_ok());
    // The repository still checks clean.
    let x86 = crate::rpm::repo().arch(packages::repo::Arch::parse("x86_64").unwrap());
    let problems = publisher.check_rpm_arch(&x86).await.unwrap();
    assert!(problems.is_empty(), "{problems:?}");
}

/// A metadata file written long ago but replaced just now is still in its
/// grace period: the grace counts from when `repomd.xml` stopped naming it,
/// not from when it was written.
async fn rpm_gc_counts_the_grace_from_when_repomd_stopped_naming_a_file(ctx: Ctx) {
    let (storage, _) = ctx.open(Bucket::Main).await;
    let stores = Stores::shared(storage);
    let publisher = setup_fedora(&stores)
        .await
        .with_delete_grace(Duration::from_secs(3));
    publisher
        .upload(&rpm_upload(&rpm_fixture("acc-lib-1.2.0-1.x86_64.rpm")))
        .await
        .unwrap();
    let (first, _) = repodata(&stores).await;
    // The repository sits unchanged for longer than the grace period.
    tokio::time::sleep(Duration::from_secs(4)).await;
    publisher.gc().await.unwrap();
    publisher
        .upload(&rpm_upload(&rpm_fixture("acc-tool-2.0-1.x86_64.rpm")))
        .await
        .unwrap();
    let (second, _) = repodata(&stores).await;
    // A dnf that read the first repomd.xml a moment ago still finds its files.
    publisher.gc().await.unwrap();
    let (_, all) = repodata(&stores).await;
    assert!(all.is_superset(&first), "{all:?} lacks some of {first:?}");
    // Past the grace period from the replacement, they go.
    tokio::time::sleep(Duration::from_secs(4)).await;
    publisher.gc().await.unwrap();
    let (_, all) = repodata(&stores).await;
    assert_eq!(all, second);
}
