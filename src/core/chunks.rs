//! The manifest (`state.json`) and the content-named record chunks it names.
//!
//! A root's records are split into chunks by [`Format::chunk_of`] their
//! entry key. A publish reads and rewrites only the chunks its changes fall
//! into; chunk objects are immutable and named by their content, so the
//! manifest is the one object that is replaced.

use std::collections::{BTreeMap, BTreeSet};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::IndexError;
use super::pending::{PendingChange, apply_changes};
use crate::formats::{Format, Part};
use crate::repo::{Key, RootId, Segment};
use crate::storage::{ObjectMeta, PutMode, StorageError};
use crate::stores::Stores;

/// Every record of one root, as one view (read from all its chunks).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootState<R> {
    /// Increases by one on every change.
    pub generation: u64,
    /// Records by entry key.
    pub records: BTreeMap<String, R>,
}

impl<R> Default for RootState<R> {
    fn default() -> Self {
        Self {
            generation: 0,
            records: BTreeMap::new(),
        }
    }
}

impl<R: Clone + PartialEq> RootState<R> {
    /// Applies changes in id order; returns whether the records changed.
    pub fn apply<'a, F: Format<Record = R>>(
        &mut self,
        format: &F,
        changes: impl IntoIterator<Item = &'a PendingChange<R>>,
    ) -> bool
    where
        R: 'a,
    {
        let changed = apply_changes(format, &mut self.records, changes);
        if changed {
            self.generation += 1;
        }
        changed
    }

    /// The records in entry-key order.
    pub fn records(&self) -> Vec<R> {
        self.records.values().cloned().collect()
    }
}

/// `state.json`: which chunk objects make up a root, with a generation number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound(serialize = "M: Serialize", deserialize = "M: DeserializeOwned"))]
pub struct Manifest<M> {
    /// Increases by one on every change.
    pub generation: u64,
    /// The non-empty chunks.
    pub chunks: BTreeMap<u32, ChunkRef<M>>,
    /// Ids of pending changes this state already holds whose objects may still
    /// be listed (kept for the grace period on stores without conditional
    /// writes): a writer skips reading them.
    #[serde(default)]
    pub merged: BTreeSet<String>,
    /// Chunks earlier manifests named and this one does not, with when they
    /// were retired, on stores without conditional writes: a writer deletes
    /// them once they are older than [`PENDING_GRACE`](super::PENDING_GRACE),
    /// when no writer can still write a manifest naming them. (With
    /// conditional writes the writer that replaces a chunk deletes it at once.)
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retired: Vec<Retired>,
    /// What the records count for quotas, by [`Format::usage_of`] group
    /// (Debian: the component; others: `""`), kept up to date by every
    /// write of the manifest. `None` in manifests written before usage was
    /// kept: [`root_usage`] then adds it up from the chunks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<BTreeMap<String, Usage>>,
}

/// Bytes and packages, as quotas count them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Bytes of package files.
    pub bytes: u64,
    /// Packages (records).
    pub packages: u64,
}

impl Usage {
    /// The sum of two usages.
    pub fn plus(self, other: Usage) -> Usage {
        Usage {
            bytes: self.bytes.saturating_add(other.bytes),
            packages: self.packages.saturating_add(other.packages),
        }
    }
}

/// What `records` count for quotas, by group.
pub(super) fn usage_of_records<'a, F: Format>(
    format: &F,
    records: impl IntoIterator<Item = &'a F::Record>,
) -> BTreeMap<String, Usage> {
    let mut usage: BTreeMap<String, Usage> = BTreeMap::new();
    for record in records {
        if let Some((group, bytes)) = format.usage_of(record) {
            let entry = usage.entry(group).or_default();
            *entry = entry.plus(Usage { bytes, packages: 1 });
        }
    }
    usage
}

/// `total - before + after`, group by group (groups at zero are dropped).
pub(super) fn shift_usage(
    total: &mut BTreeMap<String, Usage>,
    before: &BTreeMap<String, Usage>,
    after: &BTreeMap<String, Usage>,
) {
    for (group, used) in before {
        let entry = total.entry(group.clone()).or_default();
        entry.bytes = entry.bytes.saturating_sub(used.bytes);
        entry.packages = entry.packages.saturating_sub(used.packages);
    }
    for (group, used) in after {
        let entry = total.entry(group.clone()).or_default();
        *entry = entry.plus(*used);
    }
    total.retain(|_, used| *used != Usage::default());
}

/// What the records of `root` count for quotas, by group: from the
/// manifest (one GET), or added up from every chunk when the manifest was
/// written before usage was kept.
pub async fn root_usage<F: Format>(
    stores: &Stores,
    format: &F,
    root: &RootId,
) -> Result<BTreeMap<String, Usage>, IndexError> {
    let (manifest, _) = read_manifest::<F::PartMeta>(stores, root).await?;
    if let Some(usage) = manifest.usage {
        return Ok(usage);
    }
    let (state, _) = read_state(stores, format, root).await?;
    Ok(usage_of_records(format, state.records.values()))
}

/// A chunk no longer named, waiting for its deletion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retired {
    /// The chunk number.
    pub chunk: u32,
    /// Its id.
    pub id: String,
    /// When it was retired, Unix milliseconds.
    pub at: u64,
}

impl<M> Default for Manifest<M> {
    fn default() -> Self {
        Self {
            generation: 0,
            chunks: BTreeMap::new(),
            merged: BTreeSet::new(),
            retired: Vec::new(),
            usage: Some(BTreeMap::new()),
        }
    }
}

impl<M> Manifest<M> {
    /// How many records the root has.
    pub fn packages(&self) -> usize {
        self.chunks.values().map(|c| c.count).sum()
    }

    /// A digest of the chunk ids, to tell whether published files show exactly this state.
    pub fn digest(&self) -> String {
        let mut hasher = Sha256::new();
        for (k, chunk) in &self.chunks {
            hasher.update(format!("{k}:{};", chunk.id).as_bytes());
        }
        hex::encode(hasher.finalize())
    }
}

/// One chunk as the manifest names it, with what assembling the root needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound(serialize = "M: Serialize", deserialize = "M: DeserializeOwned"))]
pub struct ChunkRef<M> {
    /// Object id: 16 hex of the SHA-256 of the chunk's records (JSON) and a
    /// random nonce, so a retired chunk's name is never named again (stores
    /// written before the nonce hold plain content ids; both load the same).
    pub id: String,
    /// How many records.
    pub count: usize,
    /// What the format keeps about the chunk's part (apk: `crc32`, `text_len`).
    #[serde(flatten)]
    pub part: M,
}

pub(super) fn chunk_name(k: u32, id: &str) -> Segment {
    Segment::parse("chunk", &format!("{k:02}-{id}"))
        .expect("digits, `-` and hex are a valid segment")
}

/// A chunk's records, encoded, with its content id and rendered part.
pub(super) struct EncodedChunk<M> {
    json: Vec<u8>,
    pub(super) reference: ChunkRef<M>,
    pub(super) part: Part<M>,
}

pub(super) fn encode_chunk<F: Format>(
    format: &F,
    records: &BTreeMap<String, F::Record>,
) -> Result<EncodedChunk<F::PartMeta>, IndexError> {
    let json = serde_json::to_vec(records).map_err(|e| IndexError::corrupt("chunk", e))?;
    let mut hasher = Sha256::new();
    hasher.update(&json);
    hasher.update(crate::storage::random_hex(8).as_bytes());
    let id = hex::encode(&hasher.finalize()[..8]);
    let list: Vec<&F::Record> = records.values().collect();
    let part = format.render_part(&list);
    Ok(EncodedChunk {
        reference: ChunkRef {
            id,
            count: records.len(),
            part: part.meta.clone(),
        },
        json,
        part,
    })
}

/// Stores a chunk's records (one object, under a name never used before),
/// before any manifest names it. Its rendered part is not stored: the next
/// publish copies it from the published root file (the marker says where),
/// or renders it again from the records.
pub(super) async fn store_chunk<M>(
    stores: &Stores,
    root: &RootId,
    k: u32,
    chunk: &EncodedChunk<M>,
) -> Result<(), IndexError> {
    let records = Key::Chunk {
        root: root.clone(),
        name: chunk_name(k, &chunk.reference.id),
    };
    stores
        .put(&records, chunk.json.clone().into(), PutMode::Overwrite)
        .await?;
    Ok(())
}

/// Deletes chunk objects no manifest names any more (with the part objects
/// stores written by older releases kept beside them).
pub(super) async fn delete_chunks(
    stores: &Stores,
    root: &RootId,
    chunks: &[(u32, String)],
) -> Result<(), IndexError> {
    for (k, id) in chunks {
        let name = chunk_name(*k, id);
        stores
            .delete(&Key::Chunk {
                root: root.clone(),
                name,
            })
            .await?;
    }
    Ok(())
}

/// Reads one chunk's records; `None` when the object is gone (a newer
/// manifest replaced it and its writer deleted it: re-read the manifest).
pub(super) async fn try_load_chunk<R: DeserializeOwned, M>(
    stores: &Stores,
    root: &RootId,
    k: u32,
    reference: &ChunkRef<M>,
) -> Result<Option<BTreeMap<String, R>>, IndexError> {
    let key = Key::Chunk {
        root: root.clone(),
        name: chunk_name(k, &reference.id),
    };
    let Some((bytes, _)) = stores.get_bytes_opt(&key).await? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| IndexError::corrupt(key.path(), e))
}

/// The error for a chunk the current manifest names but the store lacks.
pub(super) fn missing_chunk(root: &RootId, k: u32, id: &str) -> IndexError {
    let key = Key::Chunk {
        root: root.clone(),
        name: chunk_name(k, id),
    };
    IndexError::corrupt(
        key.path(),
        "named by state.json but missing (run `packages index rebuild`)",
    )
}

/// Renders one chunk's part from its records; `None` when the chunk is gone.
pub(super) async fn load_part<F: Format>(
    stores: &Stores,
    format: &F,
    root: &RootId,
    k: u32,
    reference: &ChunkRef<F::PartMeta>,
) -> Result<Option<Part<F::PartMeta>>, IndexError> {
    let Some(records) = try_load_chunk(stores, root, k, reference).await? else {
        return Ok(None);
    };
    Ok(Some(encode_chunk(format, &records)?.part))
}

/// Reads the manifest of `root` with its ETag (empty when none).
pub async fn read_manifest<M: DeserializeOwned>(
    stores: &Stores,
    root: &RootId,
) -> Result<(Manifest<M>, Option<String>), IndexError> {
    let key = Key::IndexState(root.clone());
    match stores.get_bytes_opt(&key).await? {
        None => Ok((Manifest::default(), None)),
        Some((bytes, meta)) => {
            let manifest =
                serde_json::from_slice(&bytes).map_err(|e| IndexError::corrupt(key.path(), e))?;
            Ok((manifest, Some(meta.etag)))
        }
    }
}

/// Writes the manifest of `root`.
pub(super) async fn write_manifest<M: Serialize>(
    stores: &Stores,
    root: &RootId,
    manifest: &Manifest<M>,
    mode: PutMode,
) -> Result<ObjectMeta, StorageError> {
    let key = Key::IndexState(root.clone());
    let body = serde_json::to_vec(manifest)
        .map_err(|e| StorageError::backend("encode", &key.path(), e))?;
    stores.put(&key, body.into(), mode).await
}

/// The record under one entry key, reading only its chunk.
pub async fn record<F: Format>(
    stores: &Stores,
    format: &F,
    root: &RootId,
    entry: &str,
) -> Result<Option<F::Record>, IndexError> {
    let k = format.chunk_of(entry);
    let mut seen = None;
    loop {
        let (manifest, etag) = read_manifest::<F::PartMeta>(stores, root).await?;
        let Some(reference) = manifest.chunks.get(&k) else {
            return Ok(None);
        };
        if let Some(mut records) =
            try_load_chunk::<F::Record, _>(stores, root, k, reference).await?
        {
            return Ok(records.remove(entry));
        }
        // Replaced and deleted since the manifest was read, unless the
        // manifest did not change: then it is really missing.
        if seen == Some(etag.clone()) {
            return Err(missing_chunk(root, k, &reference.id));
        }
        seen = Some(etag);
    }
}

/// Reads every record of `root` (all chunks) with the manifest's ETag.
/// For listing, checking and rebuilding; publishing never needs it.
pub async fn read_state<F: Format>(
    stores: &Stores,
    _format: &F,
    root: &RootId,
) -> Result<(RootState<F::Record>, Option<String>), IndexError> {
    use futures::{StreamExt, TryStreamExt};
    let mut seen = None;
    loop {
        let (manifest, etag) = read_manifest::<F::PartMeta>(stores, root).await?;
        let jobs: Vec<(u32, ChunkRef<F::PartMeta>)> = manifest
            .chunks
            .iter()
            .map(|(k, r)| (*k, r.clone()))
            .collect();
        let chunks: Vec<Option<BTreeMap<String, F::Record>>> = futures::stream::iter(jobs)
            .map(|(k, reference)| async move { try_load_chunk(stores, root, k, &reference).await })
            .buffered(16)
            .try_collect()
            .await?;
        let mut state = RootState {
            generation: manifest.generation,
            records: BTreeMap::new(),
        };
        let mut missing = None;
        for ((k, reference), chunk) in manifest.chunks.iter().zip(chunks) {
            match chunk {
                Some(records) => state.records.extend(records),
                None => missing = Some((*k, reference.id.clone())),
            }
        }
        let Some((k, id)) = missing else {
            return Ok((state, etag));
        };
        if seen == Some(etag.clone()) {
            return Err(missing_chunk(root, k, &id));
        }
        seen = Some(etag);
    }
}

/// The keys of the chunk objects the current manifest of `root` names.
pub async fn live_chunk_keys(
    stores: &Stores,
    root: &RootId,
) -> Result<BTreeSet<String>, IndexError> {
    let (manifest, _) = read_manifest::<serde_json::Value>(stores, root).await?;
    let mut live = BTreeSet::new();
    for (k, reference) in &manifest.chunks {
        let name = chunk_name(*k, &reference.id);
        live.insert(
            Key::Chunk {
                root: root.clone(),
                name: name.clone(),
            }
            .path(),
        );
        live.insert(
            Key::ChunkSegment {
                root: root.clone(),
                name,
            }
            .path(),
        );
    }
    Ok(live)
}

/// Replaces every record of `root` (for `rebuild`): writes all chunks and the manifest.
pub async fn replace_records<F: Format>(
    stores: &Stores,
    format: &F,
    root: &RootId,
    records: BTreeMap<String, F::Record>,
) -> Result<(), IndexError> {
    let (old, _) = read_manifest::<F::PartMeta>(stores, root).await?;
    let mut grouped: BTreeMap<u32, BTreeMap<String, F::Record>> = BTreeMap::new();
    for (entry, record) in records {
        grouped
            .entry(format.chunk_of(&entry))
            .or_default()
            .insert(entry, record);
    }
    // Pending changes are applied again on top of the rebuilt records.
    let mut manifest = Manifest {
        generation: old.generation,
        chunks: BTreeMap::new(),
        merged: BTreeSet::new(),
        retired: old.retired.clone(),
        usage: Some(usage_of_records(
            format,
            grouped.values().flat_map(|r| r.values()),
        )),
    };
    for (k, records) in grouped {
        let chunk = encode_chunk(format, &records)?;
        store_chunk(stores, root, k, &chunk).await?;
        manifest.chunks.insert(k, chunk.reference);
    }
    if manifest.chunks != old.chunks {
        manifest.generation += 1;
    }
    // The old chunks: deleted at once with conditional writes, else retired.
    let old_chunks: Vec<(u32, String)> =
        old.chunks.iter().map(|(k, r)| (*k, r.id.clone())).collect();
    let conditional = stores.conditional_writes().await?;
    if !conditional {
        let now = unix_millis();
        manifest
            .retired
            .extend(old_chunks.iter().map(|(chunk, id)| Retired {
                chunk: *chunk,
                id: id.clone(),
                at: now,
            }));
    }
    write_manifest(stores, root, &manifest, PutMode::Overwrite).await?;
    if conditional {
        delete_chunks(stores, root, &old_chunks).await?;
    }
    Ok(())
}

/// Now, in Unix milliseconds.
pub(super) fn unix_millis() -> u64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis()
        .try_into()
        .unwrap_or(u64::MAX)
}
