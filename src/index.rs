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
use crate::formats::apk::index::build_signed;
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

/// Every record of one repo arch: the source the index is rendered from.
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
        let mut before: BTreeMap<String, Option<ApkRecord>> = BTreeMap::new();
        for pending in changes {
            let file = match &pending.change {
                Change::Add(record) => record.file_name(),
                Change::Remove { file } => file.clone(),
            };
            if !before.contains_key(&file) {
                before.insert(file.clone(), self.records.get(&file).cloned());
            }
            match &pending.change {
                Change::Add(record) => {
                    self.records.insert(file, record.as_ref().clone());
                }
                Change::Remove { .. } => {
                    self.records.remove(&file);
                }
            }
        }
        let changed = before
            .iter()
            .any(|(file, old)| self.records.get(file) != old.as_ref());
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

/// What the published index was rendered from, kept beside the state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct IndexMarker {
    generation: u64,
    state_digest: String,
    index_etag: String,
}

/// The description written into every index (`DESCRIPTION`, at most 160 bytes).
pub fn description(arch: &RepoArch) -> String {
    format!("{} {}/{}", arch.repo.org, arch.repo.version, arch.repo.repo)
}

/// Reads the state of `arch` with its ETag (default state when none).
pub async fn read_state(
    stores: &Stores,
    arch: &RepoArch,
) -> Result<(IndexState, Option<String>), IndexError> {
    let key = Key::IndexState(arch.clone());
    match stores.get_bytes_opt(&key).await? {
        None => Ok((IndexState::default(), None)),
        Some((bytes, meta)) => {
            let state = serde_json::from_slice(&bytes).map_err(|e| IndexError::Corrupt {
                key: key.path(),
                message: e.to_string(),
            })?;
            Ok((state, Some(meta.etag)))
        }
    }
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
    let mut out = Vec::with_capacity(objects.len());
    for object in objects {
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
    /// The state the published index was rendered from.
    pub state: IndexState,
    /// Whether this call wrote the index (false: it was already up to date).
    pub wrote_index: bool,
}

/// Merges pending changes of `arch` into its state and publishes the signed
/// index, until the index matches the latest state. Returns once every
/// change that was pending at the call is in the published index.
#[tracing::instrument(skip(stores), fields(arch = %arch))]
pub async fn reindex(stores: &Stores, arch: &RepoArch) -> Result<Reindexed, IndexError> {
    let conditional = stores.conditional_writes().await?;
    let state_key = Key::IndexState(arch.clone());
    let mut cache = PendingCache::new();
    let mut wrote_index = false;
    for round in 0..200 {
        let started = Instant::now();
        let pending = read_pending(stores, arch, &mut cache).await?;
        let (mut state, mut state_etag) = read_state(stores, arch).await?;
        if state.apply(pending.iter().map(|(_, p)| p)) {
            if started.elapsed() > MAX_ROUND {
                continue;
            }
            let body = serde_json::to_vec(&state).map_err(|e| IndexError::Corrupt {
                key: state_key.path(),
                message: e.to_string(),
            })?;
            let mode = state_etag.map_or(PutMode::Create, PutMode::Update);
            match stores.put(&state_key, body.into(), mode).await {
                Ok(written) => state_etag = Some(written.etag),
                Err(StorageError::Precondition { .. } | StorageError::AlreadyExists { .. }) => {
                    backoff(round).await;
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
        }
        if publish_index(stores, arch, &state, conditional).await? {
            wrote_index = true;
        }
        clean_pending(stores, &state, &pending, conditional).await?;
        // Stable when no change arrived that this round did not apply, and
        // nobody replaced the state meanwhile (on stores without conditional
        // writes that replacement may have dropped changes: loop to re-merge).
        let applied: std::collections::BTreeSet<&str> =
            pending.iter().map(|(o, _)| o.key.as_str()).collect();
        let listed = stores
            .list(Tree::Private, &Key::pending_prefix(arch))
            .await?;
        let nothing_new = listed.iter().all(|o| applied.contains(o.key.as_str()));
        let current_etag = stores.head(&state_key).await?.map(|m| m.etag);
        if nothing_new && current_etag == state_etag {
            return Ok(Reindexed { state, wrote_index });
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

/// Writes the signed index for `state` unless the marker says it is already
/// there; returns whether it wrote. On conditional stores the index only moves forward.
async fn publish_index(
    stores: &Stores,
    arch: &RepoArch,
    state: &IndexState,
    conditional: bool,
) -> Result<bool, IndexError> {
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
    let digest = state.digest();
    if let Some(current) = &current {
        // On conditional stores generations are linear, so a newer marker
        // means a newer index; elsewhere only an exact match counts.
        let newer = conditional && marker.generation > state.generation;
        let same = marker.state_digest == digest && marker.index_etag == current.etag;
        if newer || same {
            return Ok(false);
        }
    }
    let key = keys::signing_key_for(stores, &arch.repo).await?;
    let records = state.records();
    let description = description(arch);
    let bytes = tokio::task::spawn_blocking(move || build_signed(&description, &records, &key))
        .await
        .map_err(|e| StorageError::backend("render index", "", e))?;
    let mode = match (&current, conditional) {
        (_, false) => PutMode::Overwrite,
        (Some(current), true) => PutMode::Update(current.etag.clone()),
        (None, true) => PutMode::Create,
    };
    let written = match stores.put(&index_key, bytes.into(), mode).await {
        Ok(meta) => meta,
        // Someone else published meanwhile; the caller's stability check decides what next.
        Err(StorageError::Precondition { .. } | StorageError::AlreadyExists { .. }) => {
            return Ok(false);
        }
        Err(e) => return Err(e.into()),
    };
    let marker = IndexMarker {
        generation: state.generation,
        state_digest: digest,
        index_etag: written.etag,
    };
    let body = serde_json::to_vec(&marker).map_err(|e| IndexError::Corrupt {
        key: marker_key.path(),
        message: e.to_string(),
    })?;
    let mode = match (marker_etag, conditional) {
        (_, false) => PutMode::Overwrite,
        (Some(etag), true) => PutMode::Update(etag),
        (None, true) => PutMode::Create,
    };
    match stores.put(&marker_key, body.into(), mode).await {
        Ok(_) | Err(StorageError::Precondition { .. } | StorageError::AlreadyExists { .. }) => {
            Ok(true)
        }
        Err(e) => Err(e.into()),
    }
}

/// Removes pending changes that the stored state holds. With conditional
/// writes that is safe at once (no writer can replace the state with one that
/// misses them); without, only after [`PENDING_GRACE`].
async fn clean_pending(
    stores: &Stores,
    state: &IndexState,
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
    for (object, change) in pending {
        let superseded = latest.get(&change.change.file()) != Some(&change.id.as_str());
        let merged = match &change.change {
            Change::Add(record) => state.records.get(&record.file_name()) == Some(record.as_ref()),
            Change::Remove { file } => !state.records.contains_key(file),
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
