//! A root file's companions (`repomd.xml.asc` beside `repomd.xml`) always
//! end up matching it when two publishers race, deterministically: one
//! publisher's request is held (a slow request) while the other publishes,
//! then let go.
//!
//! - With conditional writes: publisher A's `repomd.xml.asc` lands after B
//!   published a newer state, and A's `repomd.xml` then loses to B's. A must
//!   publish again, or B's `repomd.xml` stays beside A's signature.
//! - Without them (Garage): A's `repomd.xml` is held after its signature was
//!   written; B republishes the same state a second later (another
//!   timestamp, other bytes) and A's `repomd.xml` then lands over B's, beside
//!   B's signature. A sees that and publishes again.
//!
//! - Debian: the same as the first case with `Release.gpg` beside `Release`
//!   (the root file is `InRelease`).
//!
//! Found by `rpm_race::same_file_from_every_instance` on moto, once in
//! about twenty runs: `check` reported `BadSignature`.

use std::sync::Arc;

use packages::publish::Publisher;
use packages::storage::{FaultyStore, LocalStore, MemoryStore, ObjectStore, Storage};
use packages::stores::Stores;

use crate::rpm::setup_fedora;
use crate::rpm_race::{assert_everything_published, build_rpms, upload_of, x86};

/// The store under test.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Memory,
    MemoryLastWriterWins,
    Local,
}

/// Publisher A (through a fault-injecting wrapper) and publisher B, on one
/// store; A sets up org `acme` with a key for `fedora` (or `debian`).
async fn two_publishers(
    kind: Kind,
    dir: &std::path::Path,
) -> (Publisher, packages::storage::FaultHandle, Publisher) {
    two_publishers_of(kind, dir, false).await
}

async fn two_publishers_of(
    kind: Kind,
    dir: &std::path::Path,
    debian: bool,
) -> (Publisher, packages::storage::FaultHandle, Publisher) {
    let inner: Arc<dyn ObjectStore> = match kind {
        Kind::Memory => Arc::new(MemoryStore::new()),
        Kind::MemoryLastWriterWins => Arc::new(MemoryStore::last_writer_wins()),
        Kind::Local => Arc::new(LocalStore::open(&dir.join("store")).unwrap()),
    };
    let faulty = FaultyStore::new(inner.clone());
    let faults = faulty.handle();
    let stores = Stores::shared(Storage::new(Arc::new(faulty)));
    let a = if debian {
        crate::deb::setup_debian(&stores).await
    } else {
        setup_fedora(&stores).await
    };
    let b = Publisher::new(Stores::shared(Storage::new(inner))).with_public_url(None);
    (a, faults, b)
}

async fn assert_signed_and_complete(
    publisher: &Publisher,
    want: &[crate::rpm_race::Synth],
    work: &std::path::Path,
    context: &str,
) {
    let problems = publisher.check_rpm_arch(&x86()).await.unwrap();
    assert!(problems.is_empty(), "{context}: check: {problems:?}");
    assert_everything_published(publisher, want, work).await;
}

/// A's signature lands late and its `repomd.xml` loses (conditional writes).
async fn late_signature_of_the_loser(kind: Kind) {
    let work = tempfile::tempdir().unwrap();
    let built = build_rpms(work.path(), "late", 3);
    let (a, faults, b) = two_publishers(kind, work.path()).await;
    a.upload(&upload_of(&built[0])).await.expect("baseline");

    let held = faults.hold_put("/repodata/repomd.xml.asc");
    let upload = upload_of(&built[1]);
    let a_task = {
        let a = a.clone();
        tokio::spawn(async move { a.upload(&upload).await })
    };
    held.reached().await;
    b.upload(&upload_of(&built[2])).await.expect("B's upload");
    assert_signed_and_complete(&b, &built, work.path(), "B done, A held").await;
    held.release();
    a_task.await.unwrap().expect("A's upload");
    assert_signed_and_complete(&a, &built, work.path(), "A done").await;
}

/// A's `repomd.xml` lands after B's publish of the same state (last writer wins).
async fn late_root_file_over_a_newer_signature(kind: Kind) {
    let work = tempfile::tempdir().unwrap();
    let built = build_rpms(work.path(), "root", 2);
    let (a, faults, b) = two_publishers(kind, work.path()).await;
    a.upload(&upload_of(&built[0])).await.expect("baseline");

    let held = faults.hold_put("/repodata/repomd.xml");
    let upload = upload_of(&built[1]);
    let a_task = {
        let a = a.clone();
        tokio::spawn(async move { a.upload(&upload).await })
    };
    held.reached().await;
    // `repomd.xml` carries seconds: B's renders other bytes.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    b.repair_rpm_arch(&x86()).await.expect("B's publish");
    assert_signed_and_complete(&b, &built, work.path(), "B done, A held").await;
    held.release();
    a_task.await.unwrap().expect("A's upload");
    assert_signed_and_complete(&a, &built, work.path(), "A done").await;
}

/// A's `Release.gpg` lands late and its `InRelease` loses (conditional writes).
async fn late_release_signature_of_the_loser(kind: Kind) {
    use crate::deb::deb_upload;
    let work = tempfile::tempdir().unwrap();
    let (a, faults, b) = two_publishers_of(kind, work.path(), true).await;
    let suite = packages::repo::SuiteId::new(
        packages::repo::Org::parse("acme").unwrap(),
        packages::repo::Distro::parse("debian").unwrap(),
        "bookworm",
    )
    .unwrap();
    a.upload(&deb_upload("bookworm", "main", "hello_2.10-3_amd64.deb"))
        .await
        .expect("baseline");

    let held = faults.hold_put("/dists/bookworm/Release.gpg");
    let upload = deb_upload("bookworm", "main", "libonig5_6.9.8-1_amd64.deb");
    let a_task = {
        let a = a.clone();
        tokio::spawn(async move { a.upload(&upload).await })
    };
    held.reached().await;
    b.upload(&deb_upload(
        "bookworm",
        "main",
        "sensible-utils_0.0.17+nmu1_all.deb",
    ))
    .await
    .expect("B's upload");
    assert_eq!(b.check_suite(&suite).await.unwrap(), [], "B done, A held");
    held.release();
    a_task.await.unwrap().expect("A's upload");
    assert_eq!(a.check_suite(&suite).await.unwrap(), [], "A done");
    let listed = a.list(&suite_repo(), None).await.unwrap();
    assert_eq!(listed.len(), 3, "{listed:?}");
}

fn suite_repo() -> packages::repo::RepoId {
    packages::repo::RepoId::parse("acme", "debian", "bookworm", "main").unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_release_signature_memory() {
    late_release_signature_of_the_loser(Kind::Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_signature_memory() {
    late_signature_of_the_loser(Kind::Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_signature_local() {
    late_signature_of_the_loser(Kind::Local).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_root_file_last_writer_wins() {
    late_root_file_over_a_newer_signature(Kind::MemoryLastWriterWins).await;
}
