//! Checking a published root against its records, and repairing it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::chunks::{RootState, encode_chunk, read_state};
use super::pending::{Change, PendingCache, PendingChange, add_pending, list_pending, read_listed};
use super::{IndexError, Known, Reindexed, marker, reindex_with};
use crate::formats::{Format, Part};
use crate::keys;
use crate::repo::RootId;
use crate::storage::StorageError;
use crate::stores::Stores;

/// Something wrong with a published root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum RootProblem {
    /// Records exist but no root file is published.
    Missing,
    /// The root file is not in the format's signed form.
    Malformed,
    /// The signature does not verify with the repo's key.
    BadSignature,
    /// The root file lists other packages than the records.
    Stale {
        /// Packages recorded but not in the root file.
        missing: Vec<String>,
        /// Packages in the root file but not recorded.
        extra: Vec<String>,
    },
    /// The root file differs from what the records render to (fields, order, key).
    Differs,
    /// Changes are waiting to be merged.
    Pending {
        /// How many.
        count: usize,
    },
    /// A real client would refuse the root file or packages in it (found by
    /// [`Format::client_problems`], e.g. an index written by an older release
    /// before the limits). `repair` drops the records behind them.
    ClientLimits {
        /// What a client refuses, for people (the format caps the list).
        problems: Vec<String>,
    },
    /// Clients read the root file, but records in it are over limits an
    /// upload is held to today. A warning: it does not fail the check.
    OverLimits {
        /// What is over which limit, for people.
        warnings: Vec<String>,
    },
}

impl RootProblem {
    /// Whether this is only a warning ([`RootProblem::OverLimits`]): the root
    /// still works for clients and `check` need not fail.
    pub fn is_warning(&self) -> bool {
        matches!(self, RootProblem::OverLimits { .. })
    }
}

/// A record [`repair`] dropped because clients cannot use it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Dropped<R> {
    /// Its entry key (apk: the file name).
    pub entry: String,
    /// Why, from [`Format::unservable`].
    pub reason: String,
    /// The record as it was.
    pub record: R,
}

/// The outcome of a [`repair`].
#[derive(Debug, Clone)]
pub struct Repaired<R> {
    /// The republish.
    pub reindexed: Reindexed,
    /// Records removed because clients cannot use them.
    pub dropped: Vec<Dropped<R>>,
}

/// The records of `root` as stored, the same with its pending changes
/// applied, and how many pending changes changed them (0: none did).
async fn merged_state<F: Format>(
    stores: &Stores,
    format: &F,
    root: &RootId,
) -> Result<(RootState<F::Record>, RootState<F::Record>, usize), IndexError> {
    let listed = list_pending(stores, root).await?;
    let pending = read_listed(
        stores,
        listed,
        &Default::default(),
        &mut PendingCache::new(),
    )
    .await?;
    let (state, _) = read_state(stores, format, root).await?;
    let mut merged = state.clone();
    let count = if merged.apply(format, pending.iter().map(|(_, p)| p)) {
        pending.len()
    } else {
        0
    };
    Ok((state, merged, count))
}

/// Compares the published root file of `root` with what its records render
/// to, and reads it as the format's clients do ([`Format::client_problems`]).
/// An empty result means it is exactly right; only
/// [`RootProblem::is_warning`] ones mean clients use it as it is.
pub async fn check<F: Format>(
    stores: &Stores,
    format: &F,
    root: &RootId,
) -> Result<Vec<RootProblem>, IndexError> {
    let mut problems = Vec::new();
    let (state, _, pending) = merged_state(stores, format, root).await?;
    if pending > 0 {
        problems.push(RootProblem::Pending { count: pending });
    }
    let Some((published, _)) = stores.get_bytes_opt(&format.root_file(root)).await? else {
        if !state.records.is_empty() || state.generation > 0 {
            problems.push(RootProblem::Missing);
        }
        return Ok(problems);
    };
    // Checked whatever the records say: an older release may have published
    // records the clients refuse, and rendering them again gives the same bytes.
    let (format_, published_) = (format.clone(), published.clone());
    let report = tokio::task::spawn_blocking(move || format_.client_problems(&published_))
        .await
        .map_err(|e| StorageError::backend("check", &root.to_string(), e))?;
    if !report.refused.is_empty() {
        problems.push(RootProblem::ClientLimits {
            problems: report.refused,
        });
    }
    if !report.warnings.is_empty() {
        problems.push(RootProblem::OverLimits {
            warnings: report.warnings,
        });
    }
    let key = if format.signed() {
        let set = keys::key_set_for_scope(stores, &root.scope()).await?;
        Some(format.pick_key(&set)?)
    } else {
        None
    };
    let (format_, root_, key_) = (format.clone(), root.clone(), key.clone());
    let records = state.records.clone();
    let expected = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, IndexError> {
        let mut chunks: BTreeMap<u32, BTreeMap<String, F::Record>> = BTreeMap::new();
        for (entry, record) in records {
            chunks
                .entry(format_.chunk_of(&entry))
                .or_default()
                .insert(entry, record);
        }
        let parts: Vec<Part<F::PartMeta>> = chunks
            .values()
            .map(|records| Ok(encode_chunk(&format_, records)?.part))
            .collect::<Result<_, IndexError>>()?;
        let body = format_.render_root(&root_, &parts).body;
        Ok(match &key_ {
            Some(key) => format_.sign(body, key)?,
            None => body,
        })
    })
    .await
    .map_err(|e| StorageError::backend("render", &root.to_string(), e))??;
    if published.as_ref() == expected.as_slice() {
        return Ok(problems);
    }
    let records: Vec<&F::Record> = state.records.values().collect();
    problems.extend(format.verify(&published, &records, key.as_ref()));
    Ok(problems)
}

/// Republishes the root files of `root` from its records whatever the marker
/// says (after merging pending changes): the fix for every [`RootProblem`].
///
/// Records clients cannot use ([`Format::unservable`]) are dropped first, each
/// by a pending removal merged like any other (no tombstone: the core knows
/// none; callers that keep them write their own), and logged with the reason.
pub async fn repair<F: Format>(
    stores: &Stores,
    format: &F,
    root: &RootId,
) -> Result<Repaired<F::Record>, IndexError> {
    let (_, merged, _) = merged_state(stores, format, root).await?;
    let mut dropped = Vec::new();
    let mut removals: Vec<PendingChange<F::Record>> = Vec::new();
    for (entry, record) in merged.records {
        let Some(reason) = format.unservable(&record) else {
            continue;
        };
        tracing::warn!(%root, %entry, %reason, "repair drops a record clients cannot use");
        removals.push(
            add_pending(
                stores,
                root,
                Change::Remove {
                    entry: entry.clone(),
                },
            )
            .await?,
        );
        dropped.push(Dropped {
            entry,
            reason,
            record,
        });
    }
    marker::forget(stores, root).await?;
    let known = Known {
        pending: removals,
        key: None,
    };
    let reindexed = reindex_with(stores, format, root, known).await?;
    Ok(Repaired { reindexed, dropped })
}
