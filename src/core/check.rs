//! Checking a published root against its records, and repairing it.

use std::collections::BTreeMap;

use serde::Serialize;

use super::chunks::{encode_chunk, read_state};
use super::pending::{PendingCache, list_pending, read_listed};
use super::{IndexError, Reindexed, marker, reindex};
use crate::formats::{Format, Part};
use crate::keys;
use crate::repo::RootId;
use crate::storage::StorageError;
use crate::stores::Stores;

/// Something wrong with a published root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
}

/// Compares the published root file of `root` with what its records render
/// to. An empty result means it is exactly right.
pub async fn check<F: Format>(
    stores: &Stores,
    format: &F,
    root: &RootId,
) -> Result<Vec<RootProblem>, IndexError> {
    let mut problems = Vec::new();
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
    if merged.apply(format, pending.iter().map(|(_, p)| p)) {
        problems.push(RootProblem::Pending {
            count: pending.len(),
        });
    }
    let Some((published, _)) = stores.get_bytes_opt(&format.root_file(root)).await? else {
        if !state.records.is_empty() || state.generation > 0 {
            problems.push(RootProblem::Missing);
        }
        return Ok(problems);
    };
    let key = if format.signed() {
        Some(keys::signing_key_for(stores, root.repo()).await?)
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
            Some(key) => format_.sign(body, key),
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
pub async fn repair<F: Format>(
    stores: &Stores,
    format: &F,
    root: &RootId,
) -> Result<Reindexed, IndexError> {
    marker::forget(stores, root).await?;
    reindex(stores, format, root).await
}
