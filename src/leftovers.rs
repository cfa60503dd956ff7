//! Crash leftovers: what a killed process leaves on local disk, and its clean-up.
//!
//! A process killed mid-request leaves files its destructors would have
//! removed:
//! - staged uploads of `packages serve` ([`crate::api::upload::STAGED_PREFIX`]
//!   files in the upload directory, [`crate::api::upload::clean_staged`]);
//! - writes the local store staged in `<root>/.packages-tmp/` but never moved
//!   into place.
//!
//! [`clean`] deletes both once they are older than [`STALE_AFTER`] (no live
//! write or upload is that old: uploads end at the request timeout, which
//! [`clean`] is given, and a staged store write takes as long as copying one
//! package). `packages serve` runs it at start-up and with every `gc` round;
//! `packages gc` runs it too.
//!
//! Lock files of the local store (`<root>/.packages-locks/`, one per key
//! ever written) are bounded by naming them by [`lock_stripe`], a fixed set
//! of [`LOCK_STRIPES`] names, instead of by key; then [`clean_legacy_locks`]
//! deletes the per-key files of earlier versions. Deleting a lock file that a
//! process may still open is unsafe (two processes could lock two different
//! files of the same name), which is why the legacy files go only once no
//! process uses per-key names any more.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fs4::fs_std::FileExt;
use sha2::{Digest, Sha256};

use crate::stores::Stores;

/// The local store's staging folder (as in [`crate::storage::LocalStore`]).
pub const TMP_DIR: &str = ".packages-tmp";

/// The local store's lock folder (as in [`crate::storage::LocalStore`]).
pub const LOCK_DIR: &str = ".packages-locks";

/// Age past which a staged file is a leftover.
pub const STALE_AFTER: Duration = Duration::from_secs(3600);

/// How many lock files the local store needs at most with [`lock_stripe`].
pub const LOCK_STRIPES: usize = 4096;

/// The lock file name for `key`: three hex digits of its SHA-256, so at
/// most [`LOCK_STRIPES`] lock files exist, however many keys are written.
/// Two keys share a lock once in 4,096 times, which only serialises their
/// writes.
pub fn lock_stripe(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    hex::encode(&digest[..2])[..3].to_owned()
}

/// What [`clean`] deleted.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Cleaned {
    /// Staged uploads deleted.
    pub uploads: Vec<PathBuf>,
    /// Staged local-store writes deleted.
    pub store_temp: Vec<PathBuf>,
}

impl Cleaned {
    /// How many files were deleted.
    pub fn len(&self) -> usize {
        self.uploads.len() + self.store_temp.len()
    }

    /// Whether nothing was deleted.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Deletes stale staged uploads in `upload_dir` (`None`: the system's
/// temporary directory) older than both [`STALE_AFTER`] and
/// `request_timeout`, and stale staged writes of every local store of `stores`.
pub fn clean(
    stores: &Stores,
    upload_dir: Option<&Path>,
    request_timeout: Duration,
) -> io::Result<Cleaned> {
    let uploads = crate::api::upload::clean_staged(upload_dir, STALE_AFTER.max(request_timeout))?;
    let mut store_temp = Vec::new();
    let mut roots = vec![stores.public().local_root()];
    if stores.is_separate() {
        roots.push(stores.private().local_root());
    }
    for root in roots.into_iter().flatten() {
        store_temp.extend(clean_old_files(&root.join(TMP_DIR), STALE_AFTER)?);
    }
    Ok(Cleaned {
        uploads,
        store_temp,
    })
}

/// [`clean`], with the outcome logged instead of returned (for the server's
/// start-up and `gc` rounds, which go on whatever happens here).
pub fn clean_logged(stores: &Stores, upload_dir: Option<&Path>, request_timeout: Duration) {
    match clean(stores, upload_dir, request_timeout) {
        Ok(cleaned) if !cleaned.is_empty() => tracing::info!(
            uploads = cleaned.uploads.len(),
            store_temp = cleaned.store_temp.len(),
            "crash leftovers deleted"
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "cannot clean crash leftovers"),
    }
}

/// Deletes the regular files directly in `dir` last written more than
/// `older_than` ago (a missing `dir` has none).
pub fn clean_old_files(dir: &Path, older_than: Duration) -> io::Result<Vec<PathBuf>> {
    let cutoff = SystemTime::now()
        .checked_sub(older_than)
        .unwrap_or(UNIX_EPOCH);
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut deleted = Vec::new();
    for entry in entries {
        let entry = entry?;
        let Ok(meta) = entry.metadata() else {
            continue;
        };
        if meta.is_file() && meta.modified().is_ok_and(|at| at <= cutoff) {
            match std::fs::remove_file(entry.path()) {
                Ok(()) => deleted.push(entry.path()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(deleted)
}

/// Deletes the lock files of `<root>/.packages-locks/` that are not
/// [`lock_stripe`] names and that no process holds. Only safe once every
/// process using the store names its locks by [`lock_stripe`] (see the
/// module documentation).
pub fn clean_legacy_locks(root: &Path) -> io::Result<Vec<PathBuf>> {
    let dir = root.join(LOCK_DIR);
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut deleted = Vec::new();
    for entry in entries {
        let entry = entry?;
        let is_stripe = entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.len() == 3 && n.bytes().all(|b| b.is_ascii_hexdigit()));
        if is_stripe || !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let Ok(file) = std::fs::File::open(entry.path()) else {
            continue;
        };
        // Held by a process of an earlier version: leave it.
        if !file.try_lock_exclusive().unwrap_or(false) {
            continue;
        }
        match std::fs::remove_file(entry.path()) {
            Ok(()) => deleted.push(entry.path()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn age(path: &Path, by: Duration) {
        std::fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(SystemTime::now() - by)
            .unwrap();
    }

    #[test]
    fn lock_stripes_are_bounded() {
        let names: std::collections::BTreeSet<String> = (0..50_000)
            .map(|i| lock_stripe(&format!("static/acme/alpine/edge/main/x86_64/p-{i}.apk")))
            .collect();
        assert!(names.len() <= LOCK_STRIPES);
        assert!(names.len() > LOCK_STRIPES / 2);
        assert_eq!(lock_stripe("a"), lock_stripe("a"));
    }

    #[test]
    fn cleans_stale_store_temp_files_and_legacy_locks() {
        let root = tempfile::tempdir().unwrap();
        let tmp = root.path().join(TMP_DIR);
        let locks = root.path().join(LOCK_DIR);
        std::fs::create_dir_all(&tmp).unwrap();
        std::fs::create_dir_all(&locks).unwrap();
        let stale = tmp.join(".tmpOLD");
        let live = tmp.join(".tmpNEW");
        std::fs::write(&stale, b"x").unwrap();
        std::fs::write(&live, b"x").unwrap();
        age(&stale, 2 * STALE_AFTER);
        let deleted = clean_old_files(&tmp, STALE_AFTER).unwrap();
        assert_eq!(deleted, vec![stale.clone()]);
        assert!(live.exists());

        let legacy = locks.join("ab".repeat(32));
        let held = locks.join("cd".repeat(32));
        let stripe = locks.join(lock_stripe("k"));
        for path in [&legacy, &held, &stripe] {
            std::fs::write(path, b"").unwrap();
        }
        let holder = std::fs::File::open(&held).unwrap();
        holder.lock_exclusive().unwrap();
        let deleted = clean_legacy_locks(root.path()).unwrap();
        assert_eq!(deleted, vec![legacy.clone()]);
        assert!(held.exists() && stripe.exists());
        assert!(
            clean_old_files(&root.path().join("missing"), STALE_AFTER)
                .unwrap()
                .is_empty()
        );
    }
}
