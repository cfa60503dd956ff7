//! The publish loop: merge pending changes into chunks, write the manifest,
//! publish the root files; repeat until stable.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use super::IndexError;
use super::chunks::{
    Manifest, Retired, delete_chunks, encode_chunk, missing_chunk, read_manifest, shift_usage,
    store_chunk, try_load_chunk, unix_millis, usage_of_records, write_manifest,
};
use super::marker::{Publication, publish_root};
use super::pending::{
    PendingCache, PendingChange, apply_changes, clean_merged, clean_pending, list_pending,
    pending_id, read_listed,
};
use crate::formats::{Format, Part};
use crate::repo::{Key, RootId};
use crate::storage::{ObjectMeta, PutMode, StorageError};
use crate::stores::Stores;

/// A writer that took longer than this since listing pending changes starts
/// over rather than write a state that may miss changes merged meanwhile.
const MAX_ROUND: Duration = Duration::from_secs(45);

/// How many rounds a writer tries before it gives up.
const MAX_ROUNDS: usize = 200;

/// The outcome of a [`reindex`].
#[derive(Debug, Clone)]
pub struct Reindexed {
    /// The generation the published root shows.
    pub generation: u64,
    /// How many records it holds.
    pub packages: usize,
    /// Whether this call wrote the root file (false: it was already up to date).
    pub wrote_index: bool,
}

/// What a caller already knows, to save requests: the pending changes it
/// stored itself (not read back) and the signing key it loaded.
#[derive(Debug, Clone)]
pub struct Known<R, K> {
    /// Pending changes this caller stored for the root.
    pub pending: Vec<PendingChange<R>>,
    /// The root's signing key, loaded for this publish.
    pub key: Option<K>,
}

impl<R, K> Default for Known<R, K> {
    fn default() -> Self {
        Self {
            pending: Vec::new(),
            key: None,
        }
    }
}

/// Merges pending changes of `root` into its records and publishes its
/// files, until they match the latest state. Returns once every change that
/// was pending at the call is in the published root file. Reads and writes
/// only the chunks the changes fall into.
pub async fn reindex<F: Format>(
    stores: &Stores,
    format: &F,
    root: &RootId,
) -> Result<Reindexed, IndexError> {
    reindex_with(stores, format, root, Known::default()).await
}

/// Rewrites and re-signs the files of `root` from its records whatever the
/// marker says (after merging pending changes): for changes outside the
/// records, such as a Debian suite gaining an alias.
pub async fn republish<F: Format>(
    stores: &Stores,
    format: &F,
    root: &RootId,
) -> Result<Reindexed, IndexError> {
    super::marker::forget(stores, root).await?;
    reindex(stores, format, root).await
}

/// [`reindex`], with what the caller already knows.
#[tracing::instrument(skip(stores, format, known), fields(root = %root))]
pub async fn reindex_with<F: Format>(
    stores: &Stores,
    format: &F,
    root: &RootId,
    known: Known<F::Record, F::SignKey>,
) -> Result<Reindexed, IndexError> {
    let conditional = stores.conditional_writes().await?;
    let state_key = Key::IndexState(root.clone());
    let mut cache = PendingCache::new();
    for change in known.pending {
        if let Ok(id) = crate::repo::Segment::parse("pending id", &change.id) {
            let key = Key::Pending {
                root: root.clone(),
                id,
            };
            cache.insert(key.path(), change);
        }
    }
    let mut key = known.key;
    let mut wrote_index = false;
    let mut vanished: Option<Option<String>> = None;
    // Set once this writer may have overwritten the companions of another
    // writer's root file: it publishes again until its own root file is out.
    let mut must_publish = false;
    for round in 0..MAX_ROUNDS {
        let started = Instant::now();
        let listed = list_pending(stores, root).await?;
        let (mut manifest, mut state_etag) = read_manifest::<F::PartMeta>(stores, root).await?;
        let seeded = state_etag.is_none()
            && seed_from_root_file(stores, format, root, &mut manifest).await?;
        let already: Vec<ObjectMeta> = listed
            .iter()
            .filter(|o| manifest.merged.contains(pending_id(&o.key)))
            .cloned()
            .collect();
        let pending = read_listed(stores, listed.clone(), &manifest.merged, &mut cache).await?;

        // The chunks the pending changes fall into, changed in memory.
        let mut by_chunk: BTreeMap<u32, Vec<&PendingChange<F::Record>>> = BTreeMap::new();
        for (_, change) in &pending {
            by_chunk
                .entry(format.chunk_of(&change.change.entry(format)))
                .or_default()
                .push(change);
        }
        let mut touched: BTreeMap<u32, BTreeMap<String, F::Record>> = BTreeMap::new();
        let mut fresh: BTreeMap<u32, Part<F::PartMeta>> = BTreeMap::new();
        let mut replaced: Vec<(u32, String)> = Vec::new();
        let mut changed = seeded;
        let mut gone = None;
        for (k, changes) in by_chunk {
            let mut records = match manifest.chunks.get(&k) {
                Some(reference) => match try_load_chunk(stores, root, k, reference).await? {
                    Some(records) => records,
                    None => {
                        gone = Some((k, reference.id.clone()));
                        break;
                    }
                },
                None => BTreeMap::new(),
            };
            let before = usage_of_records(format, records.values());
            if apply_changes(format, &mut records, changes) {
                changed = true;
                if let Some(total) = manifest.usage.as_mut() {
                    shift_usage(total, &before, &usage_of_records(format, records.values()));
                }
                if let Some(old) = manifest.chunks.remove(&k) {
                    replaced.push((k, old.id));
                }
                if !records.is_empty() {
                    let chunk = encode_chunk(format, &records)?;
                    store_chunk(stores, root, k, &chunk).await?;
                    manifest.chunks.insert(k, chunk.reference);
                    fresh.insert(k, chunk.part);
                }
            }
            touched.insert(k, records);
        }
        if let Some((k, id)) = gone {
            // A newer manifest replaced the chunk and its writer deleted it:
            // start over from the newer manifest. Twice with the same
            // manifest means it is really missing.
            if vanished.as_ref() == Some(&state_etag) {
                return Err(missing_chunk(root, k, &id));
            }
            vanished = Some(state_etag);
            delete_chunks(stores, root, &fresh_ids(&manifest, &fresh)).await?;
            continue;
        }
        let mut expired: Vec<(u32, String)> = Vec::new();
        if changed {
            if manifest.usage.is_none() {
                // Written before usage was kept: add it up once, from every chunk.
                manifest.usage = full_usage(stores, format, root, &manifest, &touched).await?;
            }
            if started.elapsed() > MAX_ROUND {
                continue;
            }
            manifest.generation += 1;
            // Remember what this state holds among the changes still listed.
            let still_listed: BTreeSet<&str> = listed.iter().map(|o| pending_id(&o.key)).collect();
            manifest
                .merged
                .retain(|id| still_listed.contains(id.as_str()));
            manifest
                .merged
                .extend(pending.iter().map(|(o, _)| pending_id(&o.key).to_owned()));
            if !conditional {
                // Retire the replaced chunks; delete those retired long enough
                // ago that no writer can still name them (see `Retired`).
                let now = unix_millis();
                let grace = u64::try_from(super::PENDING_GRACE.as_millis()).unwrap_or(u64::MAX);
                manifest
                    .retired
                    .extend(replaced.iter().map(|(chunk, id)| Retired {
                        chunk: *chunk,
                        id: id.clone(),
                        at: now,
                    }));
                let live: BTreeSet<&str> =
                    manifest.chunks.values().map(|c| c.id.as_str()).collect();
                manifest.retired.retain(|r| {
                    let old = now.saturating_sub(r.at) > grace;
                    if old && !live.contains(r.id.as_str()) {
                        expired.push((r.chunk, r.id.clone()));
                    }
                    !old
                });
            }
            let mode = state_etag.map_or(PutMode::Create, PutMode::Update);
            match write_manifest(stores, root, &manifest, mode).await {
                Ok(written) => state_etag = Some(written.etag),
                Err(StorageError::Precondition { .. } | StorageError::AlreadyExists { .. }) => {
                    // Nobody will name the chunks this round stored.
                    delete_chunks(stores, root, &fresh_ids(&manifest, &fresh)).await?;
                    backoff(round).await;
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
            // No later manifest names what this one replaced: with
            // conditional writes, delete it now (a reader that read an
            // older manifest finds it gone and re-reads).
            if conditional {
                delete_chunks(stores, root, &replaced).await?;
            } else {
                delete_chunks(stores, root, &expired).await?;
            }
        }
        match publish_root(
            stores,
            format,
            root,
            &manifest,
            conditional,
            &fresh,
            &mut key,
            must_publish,
        )
        .await?
        {
            Publication::Wrote => {
                wrote_index = true;
                must_publish = false;
            }
            Publication::Current => {}
            Publication::Retry => {
                backoff(round).await;
                continue;
            }
            Publication::Clobbered => {
                must_publish = true;
                backoff(round).await;
                continue;
            }
        }
        clean_pending(stores, format, &touched, &pending, conditional).await?;
        clean_merged(stores, &already, conditional).await?;
        let done = Reindexed {
            generation: manifest.generation,
            packages: manifest.packages(),
            wrote_index,
        };
        // With conditional writes the published root shows this round's
        // manifest or a newer one, and every later manifest keeps what this
        // one holds: every change pending at the call is published. Changes
        // that arrived since are their writers' to wait for.
        if conditional {
            browse_upkeep(stores, root).await;
            return Ok(done);
        }
        // Without conditional writes a writer that read an older state may
        // have replaced ours (dropping changes): stable only when no change
        // arrived that this round did not apply and nobody replaced the
        // state meanwhile; else loop to re-merge.
        let applied: BTreeSet<&str> = pending.iter().map(|(o, _)| pending_id(&o.key)).collect();
        let relisted = list_pending(stores, root).await?;
        let nothing_new = relisted.iter().all(|o| {
            let id = pending_id(&o.key);
            applied.contains(id) || manifest.merged.contains(id)
        });
        let current_etag = stores.head(&state_key).await?.map(|m| m.etag);
        if nothing_new && current_etag == state_etag {
            browse_upkeep(stores, root).await;
            return Ok(done);
        }
        backoff(round).await;
    }
    Err(IndexError::Contended(root.clone()))
}

/// After a commit: the browse pages above `root` name it
/// ([`crate::browse::ensure_listed`]; nothing to do on a warm process). The
/// commit is done and acknowledged whatever happens here: a failure is
/// logged and the next commit of the root tries again.
async fn browse_upkeep(stores: &Stores, root: &RootId) {
    if let Err(e) = crate::browse::ensure_listed(stores, root).await {
        tracing::warn!(root = %root, error = %e, "browse pages not updated");
    }
}

/// A root without a manifest whose root file an older release wrote (settings)
/// starts from the records that file holds: they go into the chunks of the
/// first manifest, so nothing the old file showed is lost. Returns whether
/// it found any.
async fn seed_from_root_file<F: Format>(
    stores: &Stores,
    format: &F,
    root: &RootId,
    manifest: &mut Manifest<F::PartMeta>,
) -> Result<bool, IndexError> {
    if !format.has_legacy_root_files() {
        return Ok(false);
    }
    let Some((bytes, _)) = stores.get_bytes_opt(&format.root_file(root)).await? else {
        return Ok(false);
    };
    let Some(records) = format.base_records(&bytes) else {
        return Ok(false);
    };
    let seeded = !records.is_empty();
    let mut grouped: BTreeMap<u32, BTreeMap<String, F::Record>> = BTreeMap::new();
    for record in records {
        let entry = format.entry_key(&record);
        grouped
            .entry(format.chunk_of(&entry))
            .or_default()
            .insert(entry, record);
    }
    let usage = usage_of_records(format, grouped.values().flat_map(|r| r.values()));
    if let Some(total) = manifest.usage.as_mut() {
        shift_usage(total, &BTreeMap::new(), &usage);
    }
    for (k, records) in grouped {
        let chunk = encode_chunk(format, &records)?;
        store_chunk(stores, root, k, &chunk).await?;
        manifest.chunks.insert(k, chunk.reference);
    }
    Ok(seeded)
}

/// The usage of every record `manifest` names (chunks in `touched` as
/// changed in memory, the others read); `None` if a chunk is gone (a newer
/// manifest replaced it: the usage stays unknown until a later write).
async fn full_usage<F: Format>(
    stores: &Stores,
    format: &F,
    root: &RootId,
    manifest: &Manifest<F::PartMeta>,
    touched: &BTreeMap<u32, BTreeMap<String, F::Record>>,
) -> Result<Option<BTreeMap<String, crate::core::Usage>>, IndexError> {
    let mut total = BTreeMap::new();
    for (k, reference) in &manifest.chunks {
        let records = match touched.get(k) {
            Some(records) => records.clone(),
            None => match try_load_chunk(stores, root, *k, reference).await? {
                Some(records) => records,
                None => return Ok(None),
            },
        };
        shift_usage(
            &mut total,
            &BTreeMap::new(),
            &usage_of_records(format, records.values()),
        );
    }
    Ok(Some(total))
}

/// The `(chunk, id)` of the chunks this round stored.
fn fresh_ids<M, P>(manifest: &Manifest<M>, fresh: &BTreeMap<u32, P>) -> Vec<(u32, String)> {
    fresh
        .keys()
        .filter_map(|k| Some((*k, manifest.chunks.get(k)?.id.clone())))
        .collect()
}

async fn backoff(round: usize) {
    use rand::Rng;
    let cap = 5u64 << round.min(5);
    let millis = rand::thread_rng().gen_range(0..=cap);
    tokio::time::sleep(Duration::from_millis(millis)).await;
}
