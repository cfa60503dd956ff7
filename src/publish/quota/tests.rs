//! The accounting: limits, fan-out counting, reservations, and usage kept
//! by the publish core through uploads and removals (in memory).

use std::sync::Arc;

use super::plan::by_level;
use super::*;
use crate::core::Manifest;
use crate::formats::apk::builder::ApkBuilder;
use crate::publish::Upload;
use crate::repo::{Arch, Distro};
use crate::storage::{MemoryStore, Storage};
use crate::stores::Stores;

fn usage(bytes: u64, packages: u64) -> Usage {
    Usage { bytes, packages }
}

#[test]
fn a_limit_is_exceeded_only_by_what_is_added() {
    let limit = Limit {
        max_bytes: Some(100),
        max_packages: Some(3),
    };
    assert_eq!(limit.exceeded(usage(90, 1), usage(10, 1)), None);
    assert_eq!(
        limit.exceeded(usage(90, 1), usage(11, 1)),
        Some(("bytes", 90, 11, 100))
    );
    assert_eq!(
        limit.exceeded(usage(0, 3), usage(1, 1)),
        Some(("packages", 3, 1, 3))
    );
    // Over already (lowered limit, or another process's overshoot): only
    // an upload that adds is refused.
    assert_eq!(limit.exceeded(usage(500, 9), usage(0, 0)), None);
    assert_eq!(Limit::default().exceeded(usage(9, 9), usage(9, 9)), None);
}

fn repo(name: &str) -> RepoId {
    RepoId::parse("acme", "alpine", "edge", name).unwrap()
}

#[test]
fn a_noarch_package_counts_once_per_arch_at_every_level() {
    let arches: Vec<Arch> = ["x86_64", "aarch64", "armv7"]
        .iter()
        .map(|a| Arch::parse(a).unwrap())
        .collect();
    let planned = Planned::per_arch(&repo("main"), &arches, "n-1.apk", "ab", 1000, "n-1.apk");
    let other = Planned::per_arch(&repo("extra"), &arches[..1], "m-1.apk", "cd", 7, "m-1.apk");
    let all: Vec<Planned> = planned.iter().chain(&other).cloned().collect();
    let levels: Vec<Scope> = levels_of(&repo("main"))
        .into_iter()
        .chain(levels_of(&repo("extra")))
        .collect();
    let adding = by_level(&all, levels.iter());
    let at = |path: &str| adding[levels.iter().find(|l| l.to_string() == path).unwrap()];
    assert_eq!(at("acme/alpine/edge/main"), usage(3000, 3));
    assert_eq!(at("acme/alpine/edge/extra"), usage(7, 1));
    assert_eq!(at("acme/alpine/edge"), usage(3007, 4));
    assert_eq!(at("acme"), usage(3007, 4));
}

#[test]
fn a_reservation_is_released_when_dropped() {
    let ledger = Arc::new(Ledger::default());
    lock(&ledger.reserved).insert("acme".into(), usage(10, 2));
    let reservation = Reservation {
        ledger: Some(ledger.clone()),
        held: vec![("acme".into(), usage(4, 1))],
    };
    drop(reservation);
    assert_eq!(ledger.reserved("acme"), usage(6, 1));
    drop(Reservation {
        ledger: Some(ledger.clone()),
        held: vec![("acme".into(), usage(6, 1))],
    });
    assert!(lock(&ledger.reserved).is_empty());
}

#[test]
fn manifests_written_before_usage_was_kept_read_as_unknown() {
    let old: Manifest<serde_json::Value> =
        serde_json::from_str(r#"{"generation":3,"chunks":{}}"#).unwrap();
    assert_eq!(old.usage, None);
    assert_eq!(
        Manifest::<serde_json::Value>::default().usage,
        Some(Default::default())
    );
}

async fn publisher() -> (Publisher, tempfile::TempDir) {
    let stores = Stores::shared(Storage::new(Arc::new(MemoryStore::new())));
    let publisher = Publisher::new(stores);
    let org = Org::parse("acme").unwrap();
    publisher.create_org(&org).await.unwrap();
    let scope = Scope::new(org, Some(Distro::ALPINE), None, None).unwrap();
    publisher
        .generate_key(&scope, Some(2048), false)
        .await
        .unwrap();
    (publisher, tempfile::tempdir().unwrap())
}

fn package(dir: &std::path::Path, name: &str, arch: &str) -> (std::path::PathBuf, u64) {
    let builder = ApkBuilder::new(name, "1.0-r0", arch).file("usr/share/q", name.as_bytes());
    let path = dir.join(builder.file_name());
    let bytes = builder.build();
    std::fs::write(&path, &bytes).unwrap();
    (path, bytes.len() as u64)
}

fn upload(path: &std::path::Path, arch: Option<&str>) -> Upload {
    Upload {
        repo: repo("main"),
        arch: arch.map(|a| Arch::parse(a).unwrap()),
        extra_arches: Vec::new(),
        path: path.to_owned(),
        display_name: path.file_name().unwrap().to_string_lossy().into_owned(),
    }
}

#[tokio::test]
async fn the_core_keeps_usage_through_uploads_fan_out_and_removal() {
    let (publisher, dir) = publisher().await;
    let level = repo("main").scope();
    let (a, a_size) = package(dir.path(), "a", "x86_64");
    let (b, b_size) = package(dir.path(), "b", "aarch64");
    let (n, n_size) = package(dir.path(), "n", "noarch");
    publisher.upload(&upload(&a, None)).await.unwrap();
    publisher.upload(&upload(&b, None)).await.unwrap();
    publisher.upload(&upload(&n, None)).await.unwrap();
    // The noarch package is stored in both arches: it counts twice.
    let want = usage(a_size + b_size + 2 * n_size, 4);
    assert_eq!(publisher.level_usage(&level).await.unwrap(), want);
    let org = Scope::new(level.org.clone(), None, None, None).unwrap();
    assert_eq!(publisher.level_usage(&org).await.unwrap(), want);

    // A quota the next package would pass: refused, nothing stored.
    publisher
        .set_quota(
            &level,
            Limit {
                max_bytes: None,
                max_packages: Some(4),
            },
        )
        .await
        .unwrap();
    let (c, _) = package(dir.path(), "c", "x86_64");
    let before = publisher
        .stores()
        .list(crate::repo::Tree::Public, "")
        .await
        .unwrap();
    let refused = publisher.upload(&upload(&c, None)).await.unwrap_err();
    assert!(
        matches!(
            &refused,
            PublishError::QuotaExceeded { level: l, what: "packages", used: 4, adding: 1, limit: 4, .. }
                if l == "acme/alpine/edge/main"
        ),
        "{refused}"
    );
    let after = publisher
        .stores()
        .list(crate::repo::Tree::Public, "")
        .await
        .unwrap();
    assert_eq!(before.len(), after.len(), "nothing stored");
    // The same bytes again add nothing: accepted at the limit.
    publisher.upload(&upload(&a, None)).await.unwrap();

    // A removal frees its share at once.
    let x86 = Arch::parse("x86_64").unwrap();
    publisher
        .remove(&repo("main"), Some(&x86), "a")
        .await
        .unwrap();
    assert_eq!(
        publisher.level_usage(&level).await.unwrap(),
        usage(b_size + 2 * n_size, 3)
    );
    publisher.upload(&upload(&c, None)).await.unwrap();
    let report = publisher.usage_report(&org).await.unwrap();
    let main = report
        .levels
        .iter()
        .find(|l| l.level == "acme/alpine/edge/main")
        .unwrap();
    assert_eq!(main.packages, 4);
    assert_eq!(main.limit.and_then(|l| l.max_packages), Some(4));
    assert_eq!(report.levels[0].level, "acme");
}
