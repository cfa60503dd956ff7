//! Every crash point of the publish protocol, deterministically (issue 7
//! item 4): for upload, remove, rebuild, repair and gc, crash at the N-th
//! write of the operation (the write applied or not), then let another
//! writer and the next publish run, and check that
//! - no acknowledged package is lost and the other writer's is published;
//! - a package the published index stopped listing never comes back;
//! - the published index is never unsigned or truncated (it parses, and
//!   `index check` finds nothing once the next publish ran) and never older
//!   than one already shown (it lists every package acknowledged before).
//!
//! On the in-memory store with conditional writes, the in-memory store
//! without them (Garage's behaviour), and the local directory.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use packages::formats::apk::builder::ApkBuilder;
use packages::repo::Arch;
use packages::storage::{
    CrashMode, FaultHandle, FaultyStore, LocalStore, MemoryStore, ObjectStore, Storage,
};
use packages::stores::Stores;

use crate::support::{TestRepo, apk_fixture, parse_index, setup_repo, write_file};

/// The store under test.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Memory,
    MemoryLastWriterWins,
    Local,
}

/// The operation that crashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Upload,
    Remove,
    Rebuild,
    Repair,
    Gc,
}

/// Upper bound on writes an operation makes here (a loop guard).
const MAX_WRITES: u64 = 60;

struct World {
    t: TestRepo,
    faults: FaultHandle,
    /// The same data without faults, to look at it while "crashed".
    clean: Stores,
    dir: tempfile::TempDir,
}

async fn world(kind: Kind, op: Op) -> World {
    let dir = tempfile::tempdir().unwrap();
    let inner: Arc<dyn ObjectStore> = match kind {
        Kind::Memory => Arc::new(MemoryStore::new()),
        Kind::MemoryLastWriterWins => Arc::new(MemoryStore::last_writer_wins()),
        Kind::Local => Arc::new(LocalStore::open(&dir.path().join("store")).unwrap()),
    };
    let faulty = FaultyStore::new(inner.clone());
    let faults = faulty.handle();
    let stores = Stores::shared(Storage::new(Arc::new(faulty)));
    let t = setup_repo(stores).await;
    for file in ["package-x-1.0.0-r0.apk", "package-y-1.0.0-r0.apk"] {
        t.upload(&apk_fixture(file), None)
            .await
            .expect("baseline upload");
    }
    if op == Op::Gc {
        // Something for gc to delete: a removed package's file and tombstone.
        t.publisher
            .remove(&t.repo, None, "package-y")
            .await
            .expect("baseline remove");
    }
    World {
        t,
        faults,
        clean: Stores::shared(Storage::new(inner)),
        dir,
    }
}

fn package(dir: &Path, name: &str) -> std::path::PathBuf {
    let apk = ApkBuilder::new(name, "1.0-r0", "x86_64")
        .file(&format!("usr/share/{name}"), name.as_bytes())
        .build();
    write_file(dir, &format!("{name}-1.0-r0.apk"), &apk)
}

/// The names the published x86_64 index lists, read without faults; the
/// index must parse (signed, whole) whenever it exists.
async fn shown(clean: &Stores, t: &TestRepo) -> BTreeSet<String> {
    let key = t.key("x86_64", "APKINDEX.tar.gz");
    match clean.public().get_bytes_opt(&key).await.unwrap() {
        Some((bytes, _)) => parse_index(&bytes).names().into_iter().collect(),
        None => BTreeSet::new(),
    }
}

/// Runs `op` once; `Ok(true)` when it completed.
async fn run(op: Op, w: &World) -> bool {
    let t = &w.t;
    let arch = t.repo.arch(Arch::parse("x86_64").unwrap());
    let result: Result<(), String> = match op {
        Op::Upload => t
            .upload(&package(w.dir.path(), "crashing"), None)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string()),
        Op::Remove => t
            .publisher
            .remove(&t.repo, None, "package-y")
            .await
            .map(|_| ())
            .map_err(|e| e.to_string()),
        Op::Rebuild => t
            .publisher
            .rebuild(&arch)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string()),
        Op::Repair => packages::index::repair(&t.stores, &arch)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string()),
        Op::Gc => t
            .publisher
            .clone()
            .with_orphan_grace(std::time::Duration::ZERO)
            .with_delete_grace(std::time::Duration::ZERO)
            .gc()
            .await
            .map(|_| ())
            .map_err(|e| e.to_string()),
    };
    match result {
        Ok(()) => true,
        Err(e) => {
            assert!(w.faults.is_crashed(), "{op:?} failed without a crash: {e}");
            false
        }
    }
}

async fn crash_everywhere(kind: Kind, op: Op) {
    for mode in [CrashMode::BeforeWrite, CrashMode::AfterWrite] {
        let mut n = 1;
        loop {
            let w = world(kind, op).await;
            let before = shown(&w.clean, &w.t).await;
            assert!(before.contains("package-x"));
            w.faults.crash_at_write(n, mode);
            let completed = run(op, &w).await;
            let context = format!("{kind:?} {op:?} crash at write {n} ({mode:?})");
            // Never older than shown, never unsigned or truncated.
            let after_crash = shown(&w.clean, &w.t).await;
            let mut acked: BTreeSet<String> = before.clone();
            if op == Op::Remove {
                acked.remove("package-y");
            }
            assert!(
                acked.is_subset(&after_crash),
                "{context}: index went back: {after_crash:?} after {before:?}"
            );
            let gone: BTreeSet<String> = before.difference(&after_crash).cloned().collect();
            w.faults.heal();
            // Another writer, then the next publish.
            let other = package(w.dir.path(), "other");
            w.t.upload(&other, None)
                .await
                .unwrap_or_else(|e| panic!("{context}: the next writer failed: {e}"));
            let arch = w.t.repo.arch(Arch::parse("x86_64").unwrap());
            packages::index::reindex(&w.t.stores, &arch)
                .await
                .unwrap_or_else(|e| panic!("{context}: the next publish failed: {e}"));
            let last = shown(&w.clean, &w.t).await;
            assert!(last.contains("other"), "{context}: {last:?}");
            assert!(
                acked.is_subset(&last),
                "{context}: lost: {acked:?} vs {last:?}"
            );
            for name in &gone {
                assert!(!last.contains(name), "{context}: {name} came back");
            }
            if op == Op::Remove && completed {
                assert!(!last.contains("package-y"), "{context}");
            }
            if op == Op::Upload && completed {
                assert!(last.contains("crashing"), "{context}");
            }
            let problems = packages::index::check(&w.t.stores, &arch).await.unwrap();
            assert!(problems.is_empty(), "{context}: {problems:?}");
            if completed {
                assert!(n > 2, "{context}: {op:?} made fewer than 2 writes");
                break;
            }
            n += 1;
            assert!(
                n <= MAX_WRITES,
                "{kind:?} {op:?}: more than {MAX_WRITES} writes"
            );
        }
    }
}

macro_rules! crash_tests {
    ($($name:ident: $kind:ident,)+) => {
        $(
            mod $name {
                use super::*;
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn upload() { crash_everywhere(Kind::$kind, Op::Upload).await }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn remove() { crash_everywhere(Kind::$kind, Op::Remove).await }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn rebuild() { crash_everywhere(Kind::$kind, Op::Rebuild).await }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn repair() { crash_everywhere(Kind::$kind, Op::Repair).await }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn gc() { crash_everywhere(Kind::$kind, Op::Gc).await }
            }
        )+
    };
}

crash_tests! {
    memory: Memory,
    memory_last_writer_wins: MemoryLastWriterWins,
    local: Local,
}

/// Requests one upload into an existing repo arch costs on a warm process
/// (the store's consistency already known), counted in the store wrapper.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_per_single_upload() {
    let w = world(Kind::Memory, Op::Upload).await;
    w.faults.reset_counts();
    w.t.upload(&package(w.dir.path(), "counted"), None)
        .await
        .unwrap();
    let counts = w.faults.counts();
    eprintln!(
        "requests for one upload into an existing arch: {counts:?}, total {}",
        counts.total()
    );
    // Issue 7 targets 15; see the report for what is left.
    assert!(counts.total() <= 20, "{counts:?}");
}
