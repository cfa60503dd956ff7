//! Pending changes: immutable, time-ordered objects in a root's `pending/`
//! folder, each adding or removing one record, until a publish merges them.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::{IndexError, PENDING_GRACE};
use crate::formats::Format;
use crate::repo::{Key, RootId, Segment, Tree};
use crate::storage::{ObjectMeta, PutMode, StorageError};
use crate::stores::Stores;

/// One change to a root, stored immutably in its `pending/` folder until merged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Change<R> {
    /// Add (or replace) a record.
    Add(Box<R>),
    /// Remove a record by entry key.
    Remove {
        /// The entry key (apk: the `.apk` file name; `file` in stored JSON).
        #[serde(rename = "file")]
        entry: String,
    },
}

impl<R> Change<R> {
    /// The entry key the change is about.
    pub fn entry<F: Format<Record = R>>(&self, format: &F) -> String {
        match self {
            Change::Add(record) => format.entry_key(record),
            Change::Remove { entry } => entry.clone(),
        }
    }
}

/// A stored change with its id (time-ordered).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingChange<R> {
    /// Sortable id: zero-padded Unix milliseconds, `-`, random hex.
    pub id: String,
    /// The change.
    pub change: Change<R>,
}

impl<R> PendingChange<R> {
    /// A new change with a fresh time-ordered id.
    pub fn new(change: Change<R>) -> Self {
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        Self {
            id: format!("{millis:016}-{}", crate::storage::random_hex(8)),
            change,
        }
    }
}

/// When a change (by id or object key) was made, from its id.
fn created(id_or_key: &str) -> Option<SystemTime> {
    let millis: u64 = pending_id(id_or_key).split('-').next()?.parse().ok()?;
    Some(UNIX_EPOCH + Duration::from_millis(millis))
}

/// Whether a change is older than [`PENDING_GRACE`].
fn past_grace(id_or_key: &str, now: SystemTime) -> bool {
    created(id_or_key)
        .and_then(|t| now.duration_since(t).ok())
        .is_some_and(|age| age > PENDING_GRACE)
}

/// Applies changes in id order to a set of records; returns whether the set
/// changed on balance (an add then a remove of the same entry changes nothing).
pub(super) fn apply_changes<'a, F: Format>(
    format: &F,
    records: &mut BTreeMap<String, F::Record>,
    changes: impl IntoIterator<Item = &'a PendingChange<F::Record>>,
) -> bool {
    let mut before: BTreeMap<String, Option<F::Record>> = BTreeMap::new();
    for pending in changes {
        let entry = pending.change.entry(format);
        if !before.contains_key(&entry) {
            before.insert(entry.clone(), records.get(&entry).cloned());
        }
        match &pending.change {
            Change::Add(record) => {
                records.insert(entry, record.as_ref().clone());
            }
            Change::Remove { .. } => {
                records.remove(&entry);
            }
        }
    }
    before
        .iter()
        .any(|(entry, old)| records.get(entry) != old.as_ref())
}

/// Pending changes already read, by object key: they are immutable, so a
/// writer that loops reads each one once.
pub(super) type PendingCache<R> = BTreeMap<String, PendingChange<R>>;

/// The id of a pending change from its object key (`…/pending/<id>.json`).
pub(super) fn pending_id(key: &str) -> &str {
    let name = key.rsplit('/').next().unwrap_or(key);
    name.strip_suffix(".json").unwrap_or(name)
}

/// Lists the pending changes of `root`.
pub(super) async fn list_pending(
    stores: &Stores,
    root: &RootId,
) -> Result<Vec<ObjectMeta>, IndexError> {
    Ok(stores
        .list(Tree::Private, &Key::pending_prefix(root))
        .await?)
}

/// Reads the listed pending changes except those `skip` names, oldest first.
pub(super) async fn read_listed<R>(
    stores: &Stores,
    objects: Vec<ObjectMeta>,
    skip: &BTreeSet<String>,
    cache: &mut PendingCache<R>,
) -> Result<Vec<(ObjectMeta, PendingChange<R>)>, IndexError>
where
    R: Clone + serde::de::DeserializeOwned,
{
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
        let change: PendingChange<R> = serde_json::from_slice(&bytes)
            .map_err(|e| IndexError::corrupt(object.key.clone(), e))?;
        cache.insert(object.key.clone(), change.clone());
        out.push((object, change));
    }
    out.sort_by(|a, b| a.1.id.cmp(&b.1.id));
    Ok(out)
}

/// Stores a change in the pending folder of `root`.
pub async fn add_pending<R: Serialize>(
    stores: &Stores,
    root: &RootId,
    change: Change<R>,
) -> Result<PendingChange<R>, IndexError> {
    let pending = PendingChange::new(change);
    let id = Segment::parse("pending id", &pending.id)
        .map_err(|e| IndexError::corrupt(pending.id.clone(), e))?;
    let key = Key::Pending {
        root: root.clone(),
        id,
    };
    let body = serde_json::to_vec(&pending).map_err(|e| IndexError::corrupt(key.path(), e))?;
    stores.put(&key, body.into(), PutMode::Create).await?;
    Ok(pending)
}

/// Removes pending changes the state already held before this round, once
/// that is safe (at once with conditional writes, else after [`PENDING_GRACE`]).
pub(super) async fn clean_merged(
    stores: &Stores,
    merged: &[ObjectMeta],
    conditional: bool,
) -> Result<(), IndexError> {
    let now = SystemTime::now();
    for object in merged {
        if conditional || past_grace(&object.key, now) {
            stores.private().delete(&object.key).await?;
        }
    }
    Ok(())
}

/// Removes pending changes that are done. With conditional writes that is
/// safe at once (no writer can replace the state with one that misses them);
/// without, only after [`PENDING_GRACE`]. `touched` holds the records of every
/// chunk the changes fall into, as stored.
pub(super) async fn clean_pending<F: Format>(
    stores: &Stores,
    format: &F,
    touched: &BTreeMap<u32, BTreeMap<String, F::Record>>,
    pending: &[(ObjectMeta, PendingChange<F::Record>)],
    conditional: bool,
) -> Result<(), IndexError> {
    let now = SystemTime::now();
    // A change is done once the state reflects it, or once a later change to
    // the same entry supersedes it. Oldest first, so a crash never leaves a
    // superseded change without the one that superseded it.
    let mut latest: BTreeMap<String, &str> = BTreeMap::new();
    for (_, change) in pending {
        latest.insert(change.change.entry(format), change.id.as_str());
    }
    let empty = BTreeMap::new();
    for (object, change) in pending {
        let entry = change.change.entry(format);
        let records = touched.get(&format.chunk_of(&entry)).unwrap_or(&empty);
        let superseded = latest.get(&entry) != Some(&change.id.as_str());
        let merged = match &change.change {
            Change::Add(record) => records.get(&entry) == Some(record.as_ref()),
            Change::Remove { .. } => !records.contains_key(&entry),
        };
        if (merged || superseded) && (conditional || past_grace(&change.id, now)) {
            stores.private().delete(&object.key).await?;
        }
    }
    Ok(())
}
