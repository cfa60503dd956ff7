//! Every crash point of an RPM upload, deterministically: crash at the N-th
//! write of the upload (the package file, its pending change, the chunk and
//! manifest, the marker, each content-named metadata file, the `.repo` file,
//! the key, `repomd.xml.asc`, `repomd.xml`), the write applied or not; then
//! check that
//! - what the store shows meanwhile never names a missing file: every file
//!   `repomd.xml` names exists, and every package its `primary.xml.gz` lists;
//! - the packages published before are still listed;
//! - a new "process" retrying the same upload succeeds, and afterwards
//!   `check` is clean, `repomd.xml.asc` verifies `repomd.xml`, and every
//!   package is published with the SHA-256 primary lists.
//!
//! On the in-memory store with conditional writes, the in-memory store
//! without them (Garage's behaviour), and the local directory.

use std::io::Read;
use std::sync::Arc;

use packages::publish::Publisher;
use packages::storage::{
    CrashMode, FaultHandle, FaultyStore, LocalStore, MemoryStore, ObjectStore, Storage,
};
use packages::stores::Stores;

use crate::rpm::{arch_dir, setup_fedora};
use crate::rpm_race::{Synth, assert_everything_published, build_rpms, upload_of, x86};

/// The store under test.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Memory,
    MemoryLastWriterWins,
    Local,
}

/// Upper bound on the writes of one upload (a loop guard).
const MAX_WRITES: u64 = 60;

struct World {
    publisher: Publisher,
    faults: FaultHandle,
    /// The same data without faults, to look at it while "crashed".
    clean: Stores,
    _dir: tempfile::TempDir,
}

/// A repository holding `baseline` (an arch package, then a noarch one).
async fn world(kind: Kind, baseline: &[Synth]) -> World {
    let dir = tempfile::tempdir().unwrap();
    let inner: Arc<dyn ObjectStore> = match kind {
        Kind::Memory => Arc::new(MemoryStore::new()),
        Kind::MemoryLastWriterWins => Arc::new(MemoryStore::last_writer_wins()),
        Kind::Local => Arc::new(LocalStore::open(&dir.path().join("store")).unwrap()),
    };
    let faulty = FaultyStore::new(inner.clone());
    let faults = faulty.handle();
    let stores = Stores::shared(Storage::new(Arc::new(faulty)));
    let publisher = setup_fedora(&stores).await;
    for synth in baseline {
        publisher
            .upload(&upload_of(synth))
            .await
            .expect("baseline upload");
    }
    World {
        publisher,
        faults,
        clean: Stores::shared(Storage::new(inner)),
        _dir: dir,
    }
}

async fn get(stores: &Stores, rel: &str) -> Option<Vec<u8>> {
    stores
        .public()
        .get_bytes_opt(&format!("static/{}/{rel}", arch_dir()))
        .await
        .unwrap()
        .map(|(bytes, _)| bytes.to_vec())
}

/// What a client would find now: the names `primary.xml.gz` lists, after
/// checking that every file `repomd.xml` names and every package primary
/// lists exists (the signature is not checked here: a crash between
/// `repomd.xml.asc` and `repomd.xml` leaves the known window open until the
/// next publish).
async fn shown(clean: &Stores, context: &str) -> Vec<String> {
    let Some(repomd) = get(clean, "repodata/repomd.xml").await else {
        return Vec::new();
    };
    let text = String::from_utf8(repomd).unwrap();
    let mut names = Vec::new();
    for href in text
        .split("<location href=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
    {
        let bytes = get(clean, href)
            .await
            .unwrap_or_else(|| panic!("{context}: repomd.xml names a missing {href}"));
        if !href.ends_with("-primary.xml.gz") {
            continue;
        }
        let mut xml = String::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_string(&mut xml)
            .unwrap();
        for package in xml.split("<package ").skip(1) {
            let name = package.split("<name>").nth(1).unwrap();
            names.push(name.split('<').next().unwrap().to_owned());
            let location = package.split("<location href=\"").nth(1).unwrap();
            let location = location.split('"').next().unwrap();
            assert!(
                get(clean, location).await.is_some(),
                "{context}: primary lists a missing {location}"
            );
        }
    }
    names.sort();
    names
}

/// Crashes an upload of a package of the x86_64 arch, or of a `noarch` one.
async fn crash_everywhere(kind: Kind, noarch: bool) {
    let work = tempfile::tempdir().unwrap();
    // Packages 0-2 are x86_64, 3 is noarch.
    let built = build_rpms(work.path(), "crash", 4);
    let (baseline, rest) = built.split_at(2);
    let (crashing, other) = if noarch {
        (&rest[1], &rest[0])
    } else {
        (&rest[0], &rest[1])
    };
    let before_names: Vec<String> = {
        let mut v: Vec<String> = baseline.iter().map(|s| s.name.clone()).collect();
        v.sort();
        v
    };
    for mode in [CrashMode::BeforeWrite, CrashMode::AfterWrite] {
        let mut n = 1;
        loop {
            let w = world(kind, baseline).await;
            let context = format!(
                "{kind:?} upload of {} crash at write {n} ({mode:?})",
                crashing.name
            );
            assert_eq!(shown(&w.clean, &context).await, before_names);
            w.faults.crash_at_write(n, mode);
            let completed = match w.publisher.upload(&upload_of(crashing)).await {
                Ok(_) => true,
                Err(e) => {
                    assert!(
                        w.faults.is_crashed(),
                        "{context}: failed without a crash: {e}"
                    );
                    false
                }
            };
            // Never a name without its file; never older than shown.
            let after = shown(&w.clean, &context).await;
            for name in &before_names {
                assert!(after.contains(name), "{context}: {name} lost: {after:?}");
            }
            w.faults.heal();
            // A new process: the same upload again, and another.
            let publisher = w.publisher.clone();
            publisher
                .upload(&upload_of(crashing))
                .await
                .unwrap_or_else(|e| panic!("{context}: the retry failed: {e}"));
            publisher
                .upload(&upload_of(other))
                .await
                .unwrap_or_else(|e| panic!("{context}: the next upload failed: {e}"));
            assert_everything_published(&publisher, &built, work.path()).await;
            let problems = publisher.check_rpm_arch(&x86()).await.unwrap();
            assert!(problems.is_empty(), "{context}: {problems:?}");
            if completed {
                assert!(n > 5, "{context}: an upload made fewer than 5 writes");
                eprintln!(
                    "{kind:?} {mode:?}: an upload of {} makes {} writes",
                    crashing.arch,
                    n - 1
                );
                break;
            }
            n += 1;
            assert!(n <= MAX_WRITES, "{kind:?}: more than {MAX_WRITES} writes");
        }
    }
}

macro_rules! rpm_crash_tests {
    ($($name:ident: $kind:ident,)+) => {
        $(
            mod $name {
                use super::*;
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn upload() { crash_everywhere(Kind::$kind, false).await }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn noarch() { crash_everywhere(Kind::$kind, true).await }
            }
        )+
    };
}

rpm_crash_tests! {
    memory: Memory,
    memory_last_writer_wins: MemoryLastWriterWins,
    local: Local,
}
