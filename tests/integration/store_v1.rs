//! A store written by the release before the publish core became generic
//! (main at f76ac22: `packages org create`, `key import` of the test key,
//! `upload` of the six fixtures into `acme/alpine/v3.20/main`, on a local
//! directory; see `tests/fixtures/store-v1/README.md`) keeps working with
//! this code: it lists, checks clean, takes uploads, removes, new arches
//! (its `repo.json` seeds the settings root) and rebuilds, and every index
//! it publishes verifies with `openssl`.

use std::path::Path;

use packages::formats::apk::builder::ApkBuilder;
use packages::publish::Publisher;
use packages::repo::{Arch, RepoId};
use packages::storage::{LocalStore, Storage};
use packages::stores::Stores;

use crate::support::{ORG, REPO, VERSION, openssl_verify, parse_index, write_file};

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/store-v1");

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == "README.md" {
            continue;
        }
        let target = to.join(&name);
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

struct OldStore {
    _dir: tempfile::TempDir,
    stores: Stores,
    publisher: Publisher,
    repo: RepoId,
}

fn open_copy() -> OldStore {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    copy_tree(Path::new(FIXTURE), &root);
    let stores = Stores::shared(Storage::local(LocalStore::open(&root).unwrap()));
    OldStore {
        publisher: Publisher::new(stores.clone()),
        stores,
        repo: RepoId::parse(ORG, "alpine", VERSION, REPO).unwrap(),
        _dir: dir,
    }
}

impl OldStore {
    async fn names(&self, arch: &str) -> Vec<String> {
        let key = format!("static/{ORG}/alpine/{VERSION}/{REPO}/{arch}/APKINDEX.tar.gz");
        let (bytes, _) = self.stores.public().get_bytes(&key).await.unwrap();
        let index = parse_index(&bytes);
        let pem_key = format!("static/{ORG}/alpine/{}", index.key_name());
        let (pem, _) = self.stores.public().get_bytes(&pem_key).await.unwrap();
        let (ok, out) = openssl_verify(&pem, &index.signature, &index.unsigned);
        assert!(ok, "{arch}: openssl does not verify the index: {out}");
        index.names()
    }

    async fn check_clean(&self, arch: &str) {
        let arch = self.repo.arch(Arch::parse(arch).unwrap());
        let problems = packages::index::check(&self.stores, &arch).await.unwrap();
        assert!(problems.is_empty(), "{arch}: {problems:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_from_the_previous_release_keeps_working() {
    let old = open_copy();
    let before_x86 = old.names("x86_64").await;
    assert_eq!(
        before_x86,
        [
            "gitea-noarch",
            "gitea-test",
            "package-x",
            "package-y",
            "pretend-baselayout"
        ]
    );
    assert_eq!(
        old.names("aarch64").await,
        ["alpine-baselayout", "gitea-noarch"]
    );
    // The new code renders exactly the bytes the old release published.
    old.check_clean("x86_64").await;
    old.check_clean("aarch64").await;

    // Upload.
    let dir = tempfile::tempdir().unwrap();
    let z = ApkBuilder::new("package-z", "1.0-r0", "x86_64")
        .file("usr/share/z", b"z")
        .build();
    let path = write_file(dir.path(), "package-z-1.0-r0.apk", &z);
    old.publisher
        .upload(&packages::publish::Upload {
            repo: old.repo.clone(),
            arch: None,
            extra_arches: Vec::new(),
            path,
            display_name: "package-z-1.0-r0.apk".to_owned(),
        })
        .await
        .expect("upload into the old store");
    let names = old.names("x86_64").await;
    assert!(names.contains(&"package-z".to_owned()), "{names:?}");
    assert_eq!(names.len(), 6, "{names:?}");

    // Remove.
    old.publisher
        .remove(&old.repo, None, "package-y")
        .await
        .expect("remove from the old store");
    let names = old.names("x86_64").await;
    assert!(!names.contains(&"package-y".to_owned()), "{names:?}");
    old.check_clean("x86_64").await;

    // A new arch: the old repo.json seeds the settings root, so both old
    // arches stay and the noarch package follows into the new one.
    let armv7 = Arch::parse("armv7").unwrap();
    old.publisher
        .add_arches(&old.repo, std::slice::from_ref(&armv7))
        .await
        .expect("add an arch to the old store");
    let arches: Vec<String> = old
        .publisher
        .arches(&old.repo)
        .await
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(arches, ["aarch64", "armv7", "x86_64"]);
    assert_eq!(old.names("armv7").await, ["gitea-noarch"]);

    // Rebuild from the package files.
    let x86 = old.repo.arch(Arch::parse("x86_64").unwrap());
    old.publisher.rebuild(&x86).await.expect("rebuild");
    let rebuilt = old.names("x86_64").await;
    assert_eq!(rebuilt, names);
    for arch in ["x86_64", "aarch64", "armv7"] {
        old.check_clean(arch).await;
    }
}
