//! Alpine entry points of the publish core, for the use cases, the API and
//! the CLI: one repo arch is one root ([`RootId::Arch`]) of [`Alpine`].
//!
//! The protocol itself (pending changes, chunks, manifest, marker) lives in
//! [`crate::core`] and knows no format; `docs/publishing.md` explains it.

use std::collections::{BTreeMap, BTreeSet};

use crate::core;
use crate::formats::apk::{Alpine, ApkRecord};
use crate::repo::{RepoArch, RootId};
use crate::stores::Stores;

pub use crate::core::{IndexError, PENDING_GRACE, Reindexed, RootProblem as IndexProblem};
pub use crate::formats::apk::alpine::description;

/// One change to a repo arch's records.
pub type Change = core::Change<ApkRecord>;
/// A stored change with its id.
pub type PendingChange = core::PendingChange<ApkRecord>;
/// A record repair dropped because apk cannot read it.
pub type Dropped = core::Dropped<ApkRecord>;
/// The outcome of [`repair`].
pub type Repaired = core::Repaired<ApkRecord>;
/// Every record of one repo arch.
pub type IndexState = core::RootState<ApkRecord>;

/// The manifest of one repo arch (which record chunks make up its index)
/// with its ETag; empty when the arch has none yet.
pub async fn read_manifest(
    stores: &Stores,
    arch: &RepoArch,
) -> Result<
    (
        core::Manifest<<Alpine as crate::formats::Format>::PartMeta>,
        Option<String>,
    ),
    IndexError,
> {
    core::read_manifest(stores, &RootId::from(arch.clone())).await
}

/// Merges pending changes of `arch` and publishes its signed index; returns
/// once every change pending at the call is in the published index.
pub async fn reindex(stores: &Stores, arch: &RepoArch) -> Result<Reindexed, IndexError> {
    core::reindex(stores, &Alpine, &RootId::from(arch)).await
}

/// Stores a change in the pending folder of `arch`.
pub async fn add_pending(
    stores: &Stores,
    arch: &RepoArch,
    change: Change,
) -> Result<PendingChange, IndexError> {
    core::add_pending(stores, &RootId::from(arch), change).await
}

/// The record of one package file, reading only its chunk.
pub async fn record(
    stores: &Stores,
    arch: &RepoArch,
    file: &str,
) -> Result<Option<ApkRecord>, IndexError> {
    core::record(stores, &Alpine, &RootId::from(arch), file).await
}

/// Every record of `arch` with the manifest's ETag.
pub async fn read_state(
    stores: &Stores,
    arch: &RepoArch,
) -> Result<(IndexState, Option<String>), IndexError> {
    core::read_state(stores, &Alpine, &RootId::from(arch)).await
}

/// The keys of the chunk objects the current state of `arch` names.
pub async fn live_chunk_keys(
    stores: &Stores,
    arch: &RepoArch,
) -> Result<BTreeSet<String>, IndexError> {
    core::live_chunk_keys(stores, &RootId::from(arch)).await
}

/// Replaces every record of `arch` (for `rebuild`).
pub async fn replace_records(
    stores: &Stores,
    arch: &RepoArch,
    records: BTreeMap<String, ApkRecord>,
) -> Result<(), IndexError> {
    core::replace_records(stores, &Alpine, &RootId::from(arch), records).await
}

/// Compares the published index of `arch` with what its records render to,
/// and checks it against what apk clients read (`formats::apk::limits`).
pub async fn check(stores: &Stores, arch: &RepoArch) -> Result<Vec<IndexProblem>, IndexError> {
    core::check(stores, &Alpine, &RootId::from(arch)).await
}

/// Republishes the index of `arch` from its records whatever the marker says,
/// after dropping records apk cannot read (pending removals, no tombstone).
pub async fn repair(stores: &Stores, arch: &RepoArch) -> Result<Repaired, IndexError> {
    core::repair(stores, &Alpine, &RootId::from(arch)).await
}
