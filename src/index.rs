//! Index records and the regeneration of one repo arch's signed index.
//!
//! The private tree holds, per repo arch, a [`IndexState`] (`state.json`: every
//! index record, so an index renders from metadata alone, never from the
//! packages) and a small `pending/` folder of immutable [`Change`]s not yet
//! merged. [`reindex`] folds pending changes into the state and writes the
//! signed `APKINDEX.tar.gz`. `docs/publishing.md` explains the protocol and
//! why no acknowledged change is lost, on stores with or without conditional
//! writes.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::formats::apk::ApkRecord;
use crate::formats::apk::index::{assemble_with_spans, build_signed, chunk_segment, sign_unsigned};
use crate::formats::apk::segmented::{TextSegment, chunk_of};
use crate::keys::{self, KeyError};
use crate::repo::{Key, RepoArch, Segment, Tree};
use crate::storage::{ObjectMeta, PutMode, StorageError};
use crate::stores::Stores;

/// How long a merged pending change is kept on stores without conditional
/// writes, so that a writer that read the state before it was merged still
/// sees it when it re-lists (see `docs/publishing.md`).
pub const PENDING_GRACE: Duration = Duration::from_secs(120);

/// A writer that took longer than this since listing pending changes starts
/// over rather than write a state that may miss changes merged meanwhile.
const MAX_ROUND: Duration = Duration::from_secs(45);

/// Why an index could not be regenerated.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// The store failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// No usable signing key.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A stored record is unreadable.
    #[error("corrupt record `{key}`: {message}")]
    Corrupt {
        /// The object key.
        key: String,
        /// What failed.
        message: String,
    },
    /// Too many concurrent writers; gave up.
    #[error("{0}: gave up after too many concurrent updates, try again")]
    Contended(RepoArch),
}

/// One change to a repo arch, stored immutably in its `pending/` folder until merged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// Add (or keep) a package.
    Add(Box<ApkRecord>),
    /// Remove a package by file name.
    Remove {
        /// The `.apk` file name.
        file: String,
    },
}

impl Change {
    /// The `.apk` file name the change is about.
    pub fn file(&self) -> String {
        match self {
            Change::Add(record) => record.file_name(),
            Change::Remove { file } => file.clone(),
        }
    }
}

/// A stored change with its id (time-ordered).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingChange {
    /// Sortable id: zero-padded Unix milliseconds, `-`, random hex.
    pub id: String,
    /// The change.
    pub change: Change,
}

impl PendingChange {
    /// A new change with a fresh time-ordered id.
    pub fn new(change: Change) -> Self {
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        Self {
            id: format!("{millis:016}-{}", crate::storage::random_hex(8)),
            change,
        }
    }

    fn created(&self) -> Option<SystemTime> {
        let millis: u64 = self.id.split('-').next()?.parse().ok()?;
        Some(UNIX_EPOCH + Duration::from_millis(millis))
    }
}

/// Applies changes in id order to a set of records; returns whether the set
/// changed on balance.
fn apply_changes<'a>(
    records: &mut BTreeMap<String, ApkRecord>,
    changes: impl IntoIterator<Item = &'a PendingChange>,
) -> bool {
    let mut before: BTreeMap<String, Option<ApkRecord>> = BTreeMap::new();
    for pending in changes {
        let file = pending.change.file();
        if !before.contains_key(&file) {
            before.insert(file.clone(), records.get(&file).cloned());
        }
        match &pending.change {
            Change::Add(record) => {
                records.insert(file, record.as_ref().clone());
            }
            Change::Remove { .. } => {
                records.remove(&file);
            }
        }
    }
    before
        .iter()
        .any(|(file, old)| records.get(file) != old.as_ref())
}

/// Every record of one repo arch, as one view (read from all its chunks).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexState {
    /// Increases by one on every change.
    pub generation: u64,
    /// Records by `.apk` file name.
    pub records: BTreeMap<String, ApkRecord>,
}

impl IndexState {
    /// Applies changes in id order; returns whether the records changed
    /// (changes that cancel out, such as an add then a remove, change nothing).
    pub fn apply<'a>(&mut self, changes: impl IntoIterator<Item = &'a PendingChange>) -> bool {
        let changed = apply_changes(&mut self.records, changes);
        if changed {
            self.generation += 1;
        }
        changed
    }

    /// A digest of the records, to tell whether an index shows exactly this state.
    pub fn digest(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut hasher = Sha256::new();
        for (file, record) in &self.records {
            hasher.update(file.as_bytes());
            hasher.update([0]);
            hasher.update(record.checksum.as_bytes());
            hasher.update([0]);
            hasher.update(record.arch.as_bytes());
            hasher.update([0]);
        }
        hex::encode(hasher.finalize())
    }

    /// The records in index order.
    pub fn records(&self) -> Vec<ApkRecord> {
        self.records.values().cloned().collect()
    }
}

/// `state.json`: the records of one repo arch, split into chunks by
/// [`chunk_of`] their file name. A publish reads and rewrites only the chunks
/// its changes fall into; chunk objects are immutable and named by their
/// content, so the manifest is the one object that is replaced.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Increases by one on every change.
    pub generation: u64,
    /// The non-empty chunks.
    pub chunks: BTreeMap<u32, ChunkRef>,
    /// Ids of pending changes this state already holds whose objects may still
    /// be listed (kept for the grace period on stores without conditional
    /// writes): a writer skips reading them.
    #[serde(default)]
    pub merged: std::collections::BTreeSet<String>,
}

/// One chunk as the manifest names it, with what assembling the index needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkRef {
    /// Content id: the first 16 hex of the SHA-256 of the chunk's records (JSON).
    pub id: String,
    /// How many records.
    pub count: usize,
    /// CRC-32 of the chunk's `APKINDEX` text.
    pub crc32: u32,
    /// Length of that text.
    pub text_len: u64,
}

/// Where one chunk's segment sits in the published index's unsigned member,
/// so the next publish copies it instead of fetching it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct SegmentSpan {
    chunk: u32,
    id: String,
    offset: u64,
    len: u64,
}

impl Manifest {
    /// How many packages the arch has.
    pub fn packages(&self) -> usize {
        self.chunks.values().map(|c| c.count).sum()
    }

    /// A digest of the chunk ids, to tell whether an index shows exactly this state.
    pub fn digest(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut hasher = Sha256::new();
        for (k, chunk) in &self.chunks {
            hasher.update(format!("{k}:{};", chunk.id).as_bytes());
        }
        hex::encode(hasher.finalize())
    }
}

fn chunk_name(k: u32, id: &str) -> Segment {
    Segment::parse("chunk", &format!("{k:02}-{id}"))
        .expect("digits, `-` and hex are a valid segment")
}

/// A chunk's records, encoded, with its content id and compressed segment.
struct EncodedChunk {
    json: Vec<u8>,
    reference: ChunkRef,
    segment: TextSegment,
}

fn encode_chunk(records: &BTreeMap<String, ApkRecord>) -> Result<EncodedChunk, IndexError> {
    use sha2::{Digest, Sha256};
    let json = serde_json::to_vec(records).map_err(|e| IndexError::Corrupt {
        key: "chunk".to_owned(),
        message: e.to_string(),
    })?;
    let id = hex::encode(&Sha256::digest(&json)[..8]);
    let list: Vec<ApkRecord> = records.values().cloned().collect();
    let segment = chunk_segment(&list);
    Ok(EncodedChunk {
        reference: ChunkRef {
            id,
            count: records.len(),
            crc32: segment.crc32,
            text_len: segment.text_len,
        },
        json,
        segment,
    })
}

/// Stores a chunk's records and segment (content-addressed: writing them
/// again is harmless), before any manifest names them.
async fn store_chunk(
    stores: &Stores,
    arch: &RepoArch,
    k: u32,
    chunk: &EncodedChunk,
) -> Result<(), IndexError> {
    let name = chunk_name(k, &chunk.reference.id);
    for (key, body) in [
        (
            Key::Chunk {
                arch: arch.clone(),
                name: name.clone(),
            },
            chunk.json.clone(),
        ),
        (
            Key::ChunkSegment {
                arch: arch.clone(),
                name: name.clone(),
            },
            chunk.segment.deflate.clone(),
        ),
    ] {
        match stores.put(&key, body.into(), PutMode::Overwrite).await {
            Ok(_) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Reads one chunk's records.
async fn load_chunk(
    stores: &Stores,
    arch: &RepoArch,
    k: u32,
    reference: &ChunkRef,
) -> Result<BTreeMap<String, ApkRecord>, IndexError> {
    let key = Key::Chunk {
        arch: arch.clone(),
        name: chunk_name(k, &reference.id),
    };
    let Some((bytes, _)) = stores.get_bytes_opt(&key).await? else {
        return Err(IndexError::Corrupt {
            key: key.path(),
            message: "named by state.json but missing (run `packages index rebuild`)".to_owned(),
        });
    };
    serde_json::from_slice(&bytes).map_err(|e| IndexError::Corrupt {
        key: key.path(),
        message: e.to_string(),
    })
}

/// Reads one chunk's compressed segment, re-making it from the records if it is gone.
async fn load_segment(
    stores: &Stores,
    arch: &RepoArch,
    k: u32,
    reference: &ChunkRef,
) -> Result<TextSegment, IndexError> {
    let key = Key::ChunkSegment {
        arch: arch.clone(),
        name: chunk_name(k, &reference.id),
    };
    if let Some((bytes, _)) = stores.get_bytes_opt(&key).await? {
        return Ok(TextSegment {
            deflate: bytes.to_vec(),
            crc32: reference.crc32,
            text_len: reference.text_len,
        });
    }
    let records = load_chunk(stores, arch, k, reference).await?;
    Ok(encode_chunk(&records)?.segment)
}

/// Reads the manifest of `arch` with its ETag (empty when none).
pub async fn read_manifest(
    stores: &Stores,
    arch: &RepoArch,
) -> Result<(Manifest, Option<String>), IndexError> {
    let key = Key::IndexState(arch.clone());
    match stores.get_bytes_opt(&key).await? {
        None => Ok((Manifest::default(), None)),
        Some((bytes, meta)) => {
            let manifest = serde_json::from_slice(&bytes).map_err(|e| IndexError::Corrupt {
                key: key.path(),
                message: e.to_string(),
            })?;
            Ok((manifest, Some(meta.etag)))
        }
    }
}

/// The record of one package file, reading only its chunk.
pub async fn record(
    stores: &Stores,
    arch: &RepoArch,
    file: &str,
) -> Result<Option<ApkRecord>, IndexError> {
    let (manifest, _) = read_manifest(stores, arch).await?;
    let k = chunk_of(file);
    let Some(reference) = manifest.chunks.get(&k) else {
        return Ok(None);
    };
    Ok(load_chunk(stores, arch, k, reference).await?.remove(file))
}

/// Reads every record of `arch` (all chunks) with the manifest's ETag.
/// For listing, checking and rebuilding; publishing never needs it.
pub async fn read_state(
    stores: &Stores,
    arch: &RepoArch,
) -> Result<(IndexState, Option<String>), IndexError> {
    use futures::{StreamExt, TryStreamExt};
    let (manifest, etag) = read_manifest(stores, arch).await?;
    let jobs: Vec<(u32, ChunkRef)> = manifest
        .chunks
        .iter()
        .map(|(k, r)| (*k, r.clone()))
        .collect();
    let chunks: Vec<BTreeMap<String, ApkRecord>> = futures::stream::iter(jobs)
        .map(|(k, reference)| async move { load_chunk(stores, arch, k, &reference).await })
        .buffered(16)
        .try_collect()
        .await?;
    let mut state = IndexState {
        generation: manifest.generation,
        records: BTreeMap::new(),
    };
    for chunk in chunks {
        state.records.extend(chunk);
    }
    Ok((state, etag))
}

/// The keys of the chunk objects the current state of `arch` names.
pub async fn live_chunk_keys(
    stores: &Stores,
    arch: &RepoArch,
) -> Result<std::collections::BTreeSet<String>, IndexError> {
    let (manifest, _) = read_manifest(stores, arch).await?;
    let mut live = std::collections::BTreeSet::new();
    for (k, reference) in &manifest.chunks {
        let name = chunk_name(*k, &reference.id);
        live.insert(
            Key::Chunk {
                arch: arch.clone(),
                name: name.clone(),
            }
            .path(),
        );
        live.insert(
            Key::ChunkSegment {
                arch: arch.clone(),
                name,
            }
            .path(),
        );
    }
    Ok(live)
}

/// Replaces every record of `arch` (for `rebuild`): writes all chunks and the manifest.
pub async fn replace_records(
    stores: &Stores,
    arch: &RepoArch,
    records: BTreeMap<String, ApkRecord>,
) -> Result<(), IndexError> {
    let (old, _) = read_manifest(stores, arch).await?;
    let mut grouped: BTreeMap<u32, BTreeMap<String, ApkRecord>> = BTreeMap::new();
    for (file, record) in records {
        grouped
            .entry(chunk_of(&file))
            .or_default()
            .insert(file, record);
    }
    // Pending changes are applied again on top of the rebuilt records.
    let mut manifest = Manifest {
        generation: old.generation,
        chunks: BTreeMap::new(),
        merged: Default::default(),
    };
    for (k, records) in grouped {
        let chunk = encode_chunk(&records)?;
        store_chunk(stores, arch, k, &chunk).await?;
        manifest.chunks.insert(k, chunk.reference);
    }
    if manifest.chunks != old.chunks {
        manifest.generation += 1;
    }
    write_manifest(stores, arch, &manifest, PutMode::Overwrite).await?;
    Ok(())
}

async fn write_manifest(
    stores: &Stores,
    arch: &RepoArch,
    manifest: &Manifest,
    mode: PutMode,
) -> Result<ObjectMeta, StorageError> {
    let key = Key::IndexState(arch.clone());
    let body = serde_json::to_vec(manifest)
        .map_err(|e| StorageError::backend("encode", &key.path(), e))?;
    stores.put(&key, body.into(), mode).await
}

/// What the published index shows, kept beside the state. A writer first
/// *claims* the marker for its generation (`complete: false`, with the index
/// ETag it saw), then replaces the index only if it still has that ETag, then
/// completes the marker. On stores with conditional writes every step is
/// conditional, so an older generation can never replace a newer index.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct IndexMarker {
    generation: u64,
    state_digest: String,
    index_etag: String,
    #[serde(default)]
    complete: bool,
    /// The layout of the index `index_etag` names (complete markers only).
    #[serde(default)]
    layout: Vec<SegmentSpan>,
}

/// What [`publish_index`] achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Publication {
    /// This call wrote the index.
    Wrote,
    /// The index already shows this state (or, with conditional writes, a newer one).
    Current,
    /// Another writer is ahead or raced us: re-read the state and try again.
    Retry,
}

/// The description written into every index (`DESCRIPTION`, at most 160 bytes).
pub fn description(arch: &RepoArch) -> String {
    format!("{} {}/{}", arch.repo.org, arch.repo.version, arch.repo.repo)
}

/// Pending changes already read, by object key: they are immutable, so a
/// writer that loops reads each one once.
type PendingCache = BTreeMap<String, PendingChange>;

/// Lists and reads the pending changes of `arch`, oldest first.
async fn read_pending(
    stores: &Stores,
    arch: &RepoArch,
    cache: &mut PendingCache,
) -> Result<Vec<(ObjectMeta, PendingChange)>, IndexError> {
    let objects = stores
        .list(Tree::Private, &Key::pending_prefix(arch))
        .await?;
    read_listed_pending(stores, objects, &Default::default(), cache).await
}

/// The id of a pending change from its object key (`…/pending/<id>.json`).
fn pending_id(key: &str) -> &str {
    let name = key.rsplit('/').next().unwrap_or(key);
    name.strip_suffix(".json").unwrap_or(name)
}

/// Reads the listed pending changes except those `skip` names, oldest first.
async fn read_listed_pending(
    stores: &Stores,
    objects: Vec<ObjectMeta>,
    skip: &std::collections::BTreeSet<String>,
    cache: &mut PendingCache,
) -> Result<Vec<(ObjectMeta, PendingChange)>, IndexError> {
    let mut out = Vec::with_capacity(objects.len());
    for object in objects {
        if skip.contains(pending_id(&object.key)) {
            continue;
        }
        if let Some(change) = cache.get(&object.key) {
            out.push((object, change.clone()));
            continue;
        }
        let bytes = match stores.private().get_bytes(&object.key).await {
            Ok((bytes, _)) => bytes,
            // Merged and removed by another writer since the listing.
            Err(StorageError::NotFound { .. }) => continue,
            Err(e) => return Err(e.into()),
        };
        let change: PendingChange =
            serde_json::from_slice(&bytes).map_err(|e| IndexError::Corrupt {
                key: object.key.clone(),
                message: e.to_string(),
            })?;
        cache.insert(object.key.clone(), change.clone());
        out.push((object, change));
    }
    out.sort_by(|a, b| a.1.id.cmp(&b.1.id));
    Ok(out)
}

/// Stores a change in the pending folder of `arch`.
pub async fn add_pending(
    stores: &Stores,
    arch: &RepoArch,
    change: Change,
) -> Result<PendingChange, IndexError> {
    let pending = PendingChange::new(change);
    let id = Segment::parse("pending id", &pending.id).map_err(|e| IndexError::Corrupt {
        key: pending.id.clone(),
        message: e.to_string(),
    })?;
    let key = Key::Pending {
        arch: arch.clone(),
        id,
    };
    let body = serde_json::to_vec(&pending).map_err(|e| IndexError::Corrupt {
        key: key.path(),
        message: e.to_string(),
    })?;
    stores.put(&key, body.into(), PutMode::Create).await?;
    Ok(pending)
}

/// The outcome of a [`reindex`].
#[derive(Debug, Clone)]
pub struct Reindexed {
    /// The generation the published index shows.
    pub generation: u64,
    /// How many packages it lists.
    pub packages: usize,
    /// Whether this call wrote the index (false: it was already up to date).
    pub wrote_index: bool,
}

/// Merges pending changes of `arch` into its records and publishes the signed
/// index, until the index matches the latest state. Returns once every
/// change that was pending at the call is in the published index. Reads and
/// writes only the chunks the changes fall into.
#[tracing::instrument(skip(stores), fields(arch = %arch))]
pub async fn reindex(stores: &Stores, arch: &RepoArch) -> Result<Reindexed, IndexError> {
    let conditional = stores.conditional_writes().await?;
    let state_key = Key::IndexState(arch.clone());
    let mut cache = PendingCache::new();
    let mut wrote_index = false;
    for round in 0..200 {
        let started = Instant::now();
        let listed = stores
            .list(Tree::Private, &Key::pending_prefix(arch))
            .await?;
        let (mut manifest, mut state_etag) = read_manifest(stores, arch).await?;
        let already: Vec<ObjectMeta> = listed
            .iter()
            .filter(|o| manifest.merged.contains(pending_id(&o.key)))
            .cloned()
            .collect();
        let pending =
            read_listed_pending(stores, listed.clone(), &manifest.merged, &mut cache).await?;

        // The chunks the pending changes fall into, changed in memory.
        let mut by_chunk: BTreeMap<u32, Vec<&PendingChange>> = BTreeMap::new();
        for (_, change) in &pending {
            by_chunk
                .entry(chunk_of(&change.change.file()))
                .or_default()
                .push(change);
        }
        let mut touched: BTreeMap<u32, BTreeMap<String, ApkRecord>> = BTreeMap::new();
        let mut fresh: BTreeMap<u32, TextSegment> = BTreeMap::new();
        let mut changed = false;
        for (k, changes) in by_chunk {
            let mut records = match manifest.chunks.get(&k) {
                Some(reference) => load_chunk(stores, arch, k, reference).await?,
                None => BTreeMap::new(),
            };
            if apply_changes(&mut records, changes) {
                changed = true;
                if records.is_empty() {
                    manifest.chunks.remove(&k);
                } else {
                    let chunk = encode_chunk(&records)?;
                    store_chunk(stores, arch, k, &chunk).await?;
                    manifest.chunks.insert(k, chunk.reference);
                    fresh.insert(k, chunk.segment);
                }
            }
            touched.insert(k, records);
        }
        if changed {
            if started.elapsed() > MAX_ROUND {
                continue;
            }
            manifest.generation += 1;
            // Remember what this state holds among the changes still listed.
            let still_listed: std::collections::BTreeSet<&str> =
                listed.iter().map(|o| pending_id(&o.key)).collect();
            manifest
                .merged
                .retain(|id| still_listed.contains(id.as_str()));
            manifest
                .merged
                .extend(pending.iter().map(|(o, _)| pending_id(&o.key).to_owned()));
            let mode = state_etag.map_or(PutMode::Create, PutMode::Update);
            match write_manifest(stores, arch, &manifest, mode).await {
                Ok(written) => state_etag = Some(written.etag),
                Err(StorageError::Precondition { .. } | StorageError::AlreadyExists { .. }) => {
                    backoff(round).await;
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
        }
        match publish_index(stores, arch, &manifest, conditional, &fresh).await? {
            Publication::Wrote => wrote_index = true,
            Publication::Current => {}
            Publication::Retry => {
                backoff(round).await;
                continue;
            }
        }
        clean_pending(stores, &touched, &pending, conditional).await?;
        clean_merged(stores, &already, conditional).await?;
        // With conditional writes the published index shows this round's
        // manifest or a newer one, and every later manifest keeps what this
        // one holds: every change pending at the call is published. Changes
        // that arrived since are their writers' to wait for.
        if conditional {
            return Ok(Reindexed {
                generation: manifest.generation,
                packages: manifest.packages(),
                wrote_index,
            });
        }
        // Without conditional writes a writer that read an older state may
        // have replaced ours: stable only when no change arrived that this
        // round did not apply, and
        // nobody replaced the state meanwhile (on stores without conditional
        // writes that replacement may have dropped changes: loop to re-merge).
        let applied: std::collections::BTreeSet<&str> =
            pending.iter().map(|(o, _)| pending_id(&o.key)).collect();
        let relisted = stores
            .list(Tree::Private, &Key::pending_prefix(arch))
            .await?;
        let nothing_new = relisted.iter().all(|o| {
            let id = pending_id(&o.key);
            applied.contains(id) || manifest.merged.contains(id)
        });
        let current_etag = stores.head(&state_key).await?.map(|m| m.etag);
        if nothing_new && current_etag == state_etag {
            return Ok(Reindexed {
                generation: manifest.generation,
                packages: manifest.packages(),
                wrote_index,
            });
        }
        backoff(round).await;
    }
    Err(IndexError::Contended(arch.clone()))
}

async fn backoff(round: usize) {
    use rand::Rng;
    let cap = 5u64 << round.min(5);
    let millis = rand::thread_rng().gen_range(0..=cap);
    tokio::time::sleep(Duration::from_millis(millis)).await;
}

/// Publishes the signed index for `manifest` unless the index already shows
/// it. Segments of chunks this round changed come from `fresh`, the others
/// from the store.
async fn publish_index(
    stores: &Stores,
    arch: &RepoArch,
    manifest: &Manifest,
    conditional: bool,
    fresh: &BTreeMap<u32, TextSegment>,
) -> Result<Publication, IndexError> {
    use futures::{StreamExt, TryStreamExt};
    let marker_key = Key::IndexMarker(arch.clone());
    let index_key = Key::Index(arch.clone());
    let (marker, marker_etag) = match stores.get_bytes_opt(&marker_key).await? {
        Some((bytes, meta)) => (
            serde_json::from_slice::<IndexMarker>(&bytes).unwrap_or_default(),
            Some(meta.etag),
        ),
        None => (IndexMarker::default(), None),
    };
    let current = stores.head(&index_key).await?;
    let digest = manifest.digest();
    let shown = marker.complete
        && current
            .as_ref()
            .is_some_and(|c| c.etag == marker.index_etag);
    if shown
        && (marker.state_digest == digest
            || (conditional && marker.generation > manifest.generation))
    {
        return Ok(Publication::Current);
    }
    if conditional && marker.generation > manifest.generation {
        // A newer state is being published (or its writer died): re-read it.
        return Ok(Publication::Retry);
    }
    let put_marker = |marker: IndexMarker, etag: Option<String>| async move {
        let body = serde_json::to_vec(&marker)
            .map_err(|e| StorageError::backend("encode", "index marker", e))?;
        let mode = match (etag, conditional) {
            (_, false) => PutMode::Overwrite,
            (Some(etag), true) => PutMode::Update(etag),
            (None, true) => PutMode::Create,
        };
        stores
            .put(&Key::IndexMarker(arch.clone()), body.into(), mode)
            .await
    };
    let base_etag = current.as_ref().map(|c| c.etag.clone());
    let claim = IndexMarker {
        generation: manifest.generation,
        state_digest: digest.clone(),
        index_etag: base_etag.clone().unwrap_or_default(),
        complete: false,
        layout: Vec::new(),
    };
    let claimed = match put_marker(claim, marker_etag).await {
        Ok(meta) => meta,
        Err(StorageError::Precondition { .. } | StorageError::AlreadyExists { .. }) => {
            return Ok(Publication::Retry);
        }
        Err(e) => return Err(e.into()),
    };

    let key = keys::signing_key_for(stores, &arch.repo).await?;
    // Unchanged chunks' segments come from the published index when the
    // marker describes it; others from their objects.
    let previous = if shown && !marker.layout.is_empty() {
        previous_unsigned(stores, &index_key, &marker.index_etag).await?
    } else {
        None
    };
    let copied = |k: u32, reference: &ChunkRef| -> Option<TextSegment> {
        let unsigned = previous.as_ref()?;
        let span = marker
            .layout
            .iter()
            .find(|s| s.chunk == k && s.id == reference.id)?;
        let start = usize::try_from(span.offset).ok()?;
        let end = start.checked_add(usize::try_from(span.len).ok()?)?;
        Some(TextSegment {
            deflate: unsigned.get(start..end)?.to_vec(),
            crc32: reference.crc32,
            text_len: reference.text_len,
        })
    };
    let mut segments: Vec<Option<TextSegment>> = manifest
        .chunks
        .iter()
        .map(|(k, reference)| fresh.get(k).cloned().or_else(|| copied(*k, reference)))
        .collect();
    let missing: Vec<(usize, u32, ChunkRef)> = manifest
        .chunks
        .iter()
        .enumerate()
        .filter(|(i, _)| segments[*i].is_none())
        .map(|(i, (k, r))| (i, *k, r.clone()))
        .collect();
    let loaded: Vec<(usize, TextSegment)> = futures::stream::iter(missing)
        .map(|(i, k, reference)| async move {
            Ok::<_, IndexError>((i, load_segment(stores, arch, k, &reference).await?))
        })
        .buffered(16)
        .try_collect()
        .await?;
    for (i, segment) in loaded {
        segments[i] = Some(segment);
    }
    let segments: Vec<TextSegment> = segments.into_iter().flatten().collect();
    let ids: Vec<(u32, String)> = manifest
        .chunks
        .iter()
        .map(|(k, r)| (*k, r.id.clone()))
        .collect();
    let description = description(arch);
    let (bytes, layout) = tokio::task::spawn_blocking(move || {
        let (unsigned, spans) =
            assemble_with_spans(&description, &segments.iter().collect::<Vec<_>>());
        let layout: Vec<SegmentSpan> = ids
            .into_iter()
            .zip(spans)
            .map(|((chunk, id), (offset, len))| SegmentSpan {
                chunk,
                id,
                offset,
                len,
            })
            .collect();
        (sign_unsigned(unsigned, &key), layout)
    })
    .await
    .map_err(|e| StorageError::backend("render index", "", e))?;
    let mode = match (base_etag, conditional) {
        (_, false) => PutMode::Overwrite,
        (Some(etag), true) => PutMode::Update(etag),
        (None, true) => PutMode::Create,
    };
    let written = match stores.put(&index_key, bytes.into(), mode).await {
        Ok(meta) => meta,
        Err(StorageError::Precondition { .. } | StorageError::AlreadyExists { .. }) => {
            return Ok(Publication::Retry);
        }
        Err(e) => return Err(e.into()),
    };
    let done = IndexMarker {
        generation: manifest.generation,
        state_digest: digest,
        index_etag: written.etag,
        complete: true,
        layout,
    };
    match put_marker(done, Some(claimed.etag)).await {
        Ok(_) => Ok(Publication::Wrote),
        // A newer writer claimed the marker meanwhile; it will publish.
        Err(StorageError::Precondition { .. } | StorageError::AlreadyExists { .. }) => {
            Ok(Publication::Retry)
        }
        Err(e) => Err(e.into()),
    }
}

/// The unsigned member of the published index, if it still has `etag`.
async fn previous_unsigned(
    stores: &Stores,
    index_key: &Key,
    etag: &str,
) -> Result<Option<Vec<u8>>, IndexError> {
    let Some((bytes, meta)) = stores.get_bytes_opt(index_key).await? else {
        return Ok(None);
    };
    if meta.etag != etag {
        return Ok(None);
    }
    Ok(crate::formats::apk::index::split_signed(&bytes).map(|(_, _, unsigned)| unsigned))
}

/// Removes pending changes the state already held before this round, once
/// that is safe (at once with conditional writes, else after [`PENDING_GRACE`]).
async fn clean_merged(
    stores: &Stores,
    merged: &[ObjectMeta],
    conditional: bool,
) -> Result<(), IndexError> {
    let now = SystemTime::now();
    for object in merged {
        let created = pending_id(&object.key)
            .split('-')
            .next()
            .and_then(|ms| ms.parse::<u64>().ok())
            .map(|ms| UNIX_EPOCH + Duration::from_millis(ms));
        let old_enough = created
            .and_then(|t| now.duration_since(t).ok())
            .is_some_and(|age| age > PENDING_GRACE);
        if conditional || old_enough {
            stores.private().delete(&object.key).await?;
        }
    }
    Ok(())
}

/// Removes pending changes that are done. With conditional writes that is
/// safe at once (no writer can replace the state with one that misses them);
/// without, only after [`PENDING_GRACE`]. `touched` holds the records of every
/// chunk the changes fall into, as stored.
async fn clean_pending(
    stores: &Stores,
    touched: &BTreeMap<u32, BTreeMap<String, ApkRecord>>,
    pending: &[(ObjectMeta, PendingChange)],
    conditional: bool,
) -> Result<(), IndexError> {
    let now = SystemTime::now();
    // A change is done once the state reflects it, or once a later change to
    // the same file supersedes it. Oldest first, so a crash never leaves a
    // superseded change without the one that superseded it.
    let mut latest: BTreeMap<String, &str> = BTreeMap::new();
    for (_, change) in pending {
        latest.insert(change.change.file(), change.id.as_str());
    }
    let empty = BTreeMap::new();
    for (object, change) in pending {
        let file = change.change.file();
        let records = touched.get(&chunk_of(&file)).unwrap_or(&empty);
        let superseded = latest.get(&file) != Some(&change.id.as_str());
        let merged = match &change.change {
            Change::Add(record) => records.get(&file) == Some(record.as_ref()),
            Change::Remove { file } => !records.contains_key(file),
        };
        let old_enough = change
            .created()
            .and_then(|t| now.duration_since(t).ok())
            .is_some_and(|age| age > PENDING_GRACE);
        if (merged || superseded) && (conditional || old_enough) {
            stores.private().delete(&object.key).await?;
        }
    }
    Ok(())
}

/// Something wrong with a published index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum IndexProblem {
    /// Records exist but no index is published.
    Missing,
    /// The index is not a signed APKINDEX.
    Malformed,
    /// The signature does not verify with the repo's key.
    BadSignature,
    /// The index lists other packages than the records.
    Stale {
        /// Packages (`name-version`) recorded but not in the index.
        missing: Vec<String>,
        /// Packages in the index but not recorded.
        extra: Vec<String>,
    },
    /// The index differs from what the records render to (fields, order, key).
    Differs,
    /// Changes are waiting to be merged.
    Pending {
        /// How many.
        count: usize,
    },
}

/// Compares the published index of `arch` with what its records render to.
/// An empty result means the index is exactly right.
pub async fn check(stores: &Stores, arch: &RepoArch) -> Result<Vec<IndexProblem>, IndexError> {
    let mut problems = Vec::new();
    let pending = read_pending(stores, arch, &mut PendingCache::new()).await?;
    let (state, _) = read_state(stores, arch).await?;
    let mut merged = state.clone();
    if merged.apply(pending.iter().map(|(_, p)| p)) {
        problems.push(IndexProblem::Pending {
            count: pending.len(),
        });
    }
    let Some((published, _)) = stores.get_bytes_opt(&Key::Index(arch.clone())).await? else {
        if !state.records.is_empty() || state.generation > 0 {
            problems.push(IndexProblem::Missing);
        }
        return Ok(problems);
    };
    let key = keys::signing_key_for(stores, &arch.repo).await?;
    let records = state.records();
    let description = description(arch);
    let expected =
        tokio::task::spawn_blocking(move || build_signed(&description, &records, &key).into())
            .await
            .map_err(|e| StorageError::backend("render index", "", e))?;
    let expected: bytes::Bytes = expected;
    if published == expected {
        return Ok(problems);
    }
    let Some((_, signature, unsigned)) = crate::formats::apk::index::split_signed(&published)
    else {
        problems.push(IndexProblem::Malformed);
        return Ok(problems);
    };
    let key = keys::signing_key_for(stores, &arch.repo).await?;
    if !key.verify_sha256(&unsigned, &signature) {
        problems.push(IndexProblem::BadSignature);
    }
    match listed_packages(&unsigned) {
        Some(listed) => {
            let recorded: std::collections::BTreeSet<String> = state
                .records
                .values()
                .map(|r| format!("{}-{}", r.name, r.version))
                .collect();
            let missing: Vec<String> = recorded.difference(&listed).cloned().collect();
            let extra: Vec<String> = listed.difference(&recorded).cloned().collect();
            if missing.is_empty() && extra.is_empty() {
                problems.push(IndexProblem::Differs);
            } else {
                problems.push(IndexProblem::Stale { missing, extra });
            }
        }
        None => problems.push(IndexProblem::Malformed),
    }
    Ok(problems)
}

/// The `name-version` of every record in an unsigned index, or `None` if unreadable.
fn listed_packages(unsigned: &[u8]) -> Option<std::collections::BTreeSet<String>> {
    use std::io::Read;
    let mut archive = tar::Archive::new(flate2::read::MultiGzDecoder::new(unsigned));
    for entry in archive.entries().ok()? {
        let mut entry = entry.ok()?;
        if entry.path().ok()?.to_str()? != "APKINDEX" {
            continue;
        }
        let mut text = String::new();
        entry.read_to_string(&mut text).ok()?;
        let mut out = std::collections::BTreeSet::new();
        for record in text.split("\n\n") {
            let field = |letter: &str| {
                record
                    .lines()
                    .find_map(|l| l.strip_prefix(letter))
                    .map(str::to_owned)
            };
            if let (Some(name), Some(version)) = (field("P:"), field("V:")) {
                out.insert(format!("{name}-{version}"));
            }
        }
        return Some(out);
    }
    None
}

/// Republishes the index of `arch` from its records whatever the marker says
/// (after merging pending changes): the fix for every [`IndexProblem`].
pub async fn repair(stores: &Stores, arch: &RepoArch) -> Result<Reindexed, IndexError> {
    let marker = Key::IndexMarker(arch.clone());
    stores.delete(&marker).await?;
    reindex(stores, arch).await
}
