//! The public and private trees: one store for both, or one each.
//!
//! Callers name objects with [`Key`]; [`Stores`] picks the store from
//! [`Key::tree`] and sets each object's `Content-Type` and `Cache-Control`.
//!
//! A store is made on purpose (`packages init`): it then holds a marker,
//! [`STORE_MARKER`], in its private tree, and [`Stores::state`] tells a
//! marked store from a new one and from one an earlier version wrote.

use std::sync::Arc;

use bytes::Bytes;

use serde::{Deserialize, Serialize};

use crate::repo::{CONFIG_PREFIX, Key, STATIC_PREFIX, Tree};
use crate::storage::{
    Consistency, ObjectMeta, Payload, PutMode, PutOptions, Storage, StorageError,
};

/// The stores holding the public (`static/`) and private (`config/`) trees.
#[derive(Debug, Clone)]
pub struct Stores {
    public: Arc<Storage>,
    private: Arc<Storage>,
    separate: bool,
}

impl Stores {
    /// Both trees in one store, under `static/` and `config/`.
    pub fn shared(store: Storage) -> Self {
        let store = Arc::new(store);
        Self {
            public: store.clone(),
            private: store,
            separate: false,
        }
    }

    /// Each tree in its own store (needed when the public store is served whole,
    /// as website-mode buckets are).
    pub fn separate(public: Storage, private: Storage) -> Self {
        Self {
            public: Arc::new(public),
            private: Arc::new(private),
            separate: true,
        }
    }

    /// Whether the private tree has a store of its own.
    pub fn is_separate(&self) -> bool {
        self.separate
    }

    /// The store of `tree`.
    pub fn store(&self, tree: Tree) -> &Storage {
        match tree {
            Tree::Public => &self.public,
            Tree::Private => &self.private,
        }
    }

    /// The public store.
    pub fn public(&self) -> &Storage {
        &self.public
    }

    /// The private store.
    pub fn private(&self) -> &Storage {
        &self.private
    }

    /// The weaker of both stores' contracts ([`Storage::consistency`]).
    pub async fn consistency(&self) -> Result<Consistency, StorageError> {
        let public = self.public.consistency().await?;
        let private = self.private.consistency().await?;
        Ok(if public.is_conditional() && private.is_conditional() {
            Consistency::Conditional
        } else {
            Consistency::LastWriterWins
        })
    }

    /// Whether both stores enforce conditional writes ([`Stores::consistency`]).
    pub async fn conditional_writes(&self) -> Result<bool, StorageError> {
        Ok(self.consistency().await?.is_conditional())
    }

    /// The object's metadata, or `None`.
    pub async fn head(&self, key: &Key) -> Result<Option<ObjectMeta>, StorageError> {
        self.store(key.tree()).head(&key.path()).await
    }

    /// The whole object, or `None`.
    pub async fn get_bytes_opt(
        &self,
        key: &Key,
    ) -> Result<Option<(Bytes, ObjectMeta)>, StorageError> {
        self.store(key.tree()).get_bytes_opt(&key.path()).await
    }

    /// Stores an object with the headers its key calls for.
    pub async fn put(
        &self,
        key: &Key,
        payload: Payload,
        mode: PutMode,
    ) -> Result<ObjectMeta, StorageError> {
        let options = options_for(key);
        self.store(key.tree())
            .put(&key.path(), payload, &options, mode)
            .await
    }

    /// Copies `from` to `to` (overwriting `to`): server-side when both are in
    /// one store and call for the same headers (noarch fan-out: the bytes are
    /// not sent again); else read and written with the headers `to` calls for.
    pub async fn copy(&self, from: &Key, to: &Key) -> Result<(), StorageError> {
        let (source, target) = (self.store(from.tree()), self.store(to.tree()));
        if std::ptr::eq(source, target) && options_for(from) == options_for(to) {
            return target.copy(&from.path(), &to.path()).await;
        }
        let (bytes, _) = source.get_bytes(&from.path()).await?;
        self.put(to, Payload::Bytes(bytes), PutMode::Overwrite)
            .await
            .map(|_| ())
    }

    /// Deletes an object (missing is fine).
    pub async fn delete(&self, key: &Key) -> Result<(), StorageError> {
        self.store(key.tree()).delete(&key.path()).await
    }

    /// Lists a prefix of one tree.
    pub async fn list(&self, tree: Tree, prefix: &str) -> Result<Vec<ObjectMeta>, StorageError> {
        self.store(tree).list(prefix).await
    }
}

/// The object that marks a store as made on purpose (`packages init`, or a
/// first `admin init` / `org create` on a new store), in the private tree.
/// No org name starts with `_`, so it never collides with an org's folder.
pub const STORE_MARKER: &str = "config/_store.json";

/// The store layout this build writes; a store marked with a later one is refused.
pub const STORE_FORMAT: u32 = 1;

/// What [`STORE_MARKER`] holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreMarker {
    /// The store layout version ([`STORE_FORMAT`] when written by this build).
    pub format: u32,
    /// When the store was marked, Unix seconds.
    pub created: u64,
    /// The program that wrote the marker (`packages 0.1.0`).
    pub created_by: String,
}

impl StoreMarker {
    /// A marker for this build, dated now.
    pub fn new() -> Self {
        Self {
            format: STORE_FORMAT,
            created: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs(),
            created_by: format!("packages {}", env!("CARGO_PKG_VERSION")),
        }
    }
}

impl Default for StoreMarker {
    fn default() -> Self {
        Self::new()
    }
}

/// Whether a store was made on purpose ([`Stores::state`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreState {
    /// It holds [`STORE_MARKER`].
    Marked(StoreMarker),
    /// No marker, but objects under `config/`: written by an earlier version
    /// (which made stores implicitly); it is a store.
    Unmarked,
    /// Nothing under `config/` or `static/`: a new (or mistyped) location.
    Empty,
    /// Objects under `static/` but none under `config/`: not a store this
    /// program made (or its private tree is elsewhere).
    PublicOnly,
}

impl Stores {
    /// Whether the stores hold a packages store: reads the marker, and without
    /// one lists `config/` (orgs first: the cheap answer for an earlier
    /// version's store) and `static/`. The first request to fail (no bucket,
    /// refused credentials, unreachable endpoint) is the answer.
    pub async fn state(&self) -> Result<StoreState, StorageError> {
        if let Some((bytes, _)) = self.private.get_bytes_opt(STORE_MARKER).await? {
            let marker = serde_json::from_slice(&bytes)
                .map_err(|e| StorageError::backend("decode", STORE_MARKER, e))?;
            return Ok(StoreState::Marked(marker));
        }
        if !self.private.list(&Key::orgs_prefix()).await?.is_empty()
            || !self.private.list(CONFIG_PREFIX).await?.is_empty()
        {
            return Ok(StoreState::Unmarked);
        }
        if !self.public.list(STATIC_PREFIX).await?.is_empty() {
            return Ok(StoreState::PublicOnly);
        }
        Ok(StoreState::Empty)
    }

    /// Writes [`STORE_MARKER`] unless one is there; returns the marker the
    /// store holds afterwards and whether this call wrote it.
    pub async fn mark(&self) -> Result<(StoreMarker, bool), StorageError> {
        let marker = StoreMarker::new();
        let body = serde_json::to_vec_pretty(&marker)
            .map_err(|e| StorageError::backend("encode", STORE_MARKER, e))?;
        let options = PutOptions {
            content_type: Some("application/json".to_owned()),
            cache_control: Some("private, no-store".to_owned()),
        };
        match self
            .private
            .put(STORE_MARKER, Payload::from(body), &options, PutMode::Create)
            .await
        {
            Ok(_) => Ok((marker, true)),
            Err(StorageError::AlreadyExists { .. }) => match self.state().await? {
                StoreState::Marked(found) => Ok((found, false)),
                _ => Err(StorageError::NotFound {
                    key: STORE_MARKER.to_owned(),
                }),
            },
            Err(e) => Err(e),
        }
    }
}

/// The headers an object under `key` is stored with.
fn options_for(key: &Key) -> PutOptions {
    match key.tree() {
        Tree::Public => PutOptions {
            content_type: Some(key.content_type().to_owned()),
            cache_control: Some(key.cache_control().to_owned()),
        },
        Tree::Private => PutOptions {
            content_type: Some("application/octet-stream".to_owned()),
            cache_control: Some("private, no-store".to_owned()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::{Arch, RepoId, Segment};
    use crate::storage::{FaultyStore, MemoryStore};

    fn package(arch: &str) -> Key {
        let repo = RepoId::parse("acme", "alpine", "v3.20", "main").unwrap();
        Key::Package {
            arch: repo.arch(Arch::parse(arch).unwrap()),
            file: Segment::parse("file name", "hello-1.0-r0.apk").unwrap(),
        }
    }

    #[tokio::test]
    async fn copy_is_server_side_within_one_store() {
        let faulty = FaultyStore::new(Arc::new(MemoryStore::new()));
        let faults = faulty.handle();
        let stores = Stores::shared(Storage::new(Arc::new(faulty)));
        let (from, to) = (package("x86_64"), package("aarch64"));
        stores
            .put(&from, Payload::from(b"apk".to_vec()), PutMode::Create)
            .await
            .unwrap();
        faults.reset_counts();
        stores.copy(&from, &to).await.unwrap();
        let counts = faults.counts();
        assert_eq!((counts.copy, counts.total()), (1, 1), "{counts}");
        assert_eq!(
            &stores.get_bytes_opt(&to).await.unwrap().unwrap().0[..],
            b"apk"
        );
    }

    #[tokio::test]
    async fn a_store_is_new_marked_or_from_an_earlier_version() {
        let memory = || Storage::new(Arc::new(MemoryStore::new()));
        let stores = Stores::shared(memory());
        assert_eq!(stores.state().await.unwrap(), StoreState::Empty);
        let (marker, wrote) = stores.mark().await.unwrap();
        assert!(wrote && marker.format == STORE_FORMAT);
        assert_eq!(
            stores.state().await.unwrap(),
            StoreState::Marked(marker.clone())
        );
        // Marking again keeps the first marker.
        assert_eq!(stores.mark().await.unwrap(), (marker, false));

        // An earlier version's store: objects under `config/`, no marker.
        let old = Stores::shared(memory());
        old.put(
            &package("x86_64"),
            Payload::from(b"apk".to_vec()),
            PutMode::Create,
        )
        .await
        .unwrap();
        assert_eq!(old.state().await.unwrap(), StoreState::PublicOnly);
        let org = Key::Org(crate::repo::Org::parse("acme").unwrap());
        old.put(&org, Payload::from(b"{}".to_vec()), PutMode::Create)
            .await
            .unwrap();
        assert_eq!(old.state().await.unwrap(), StoreState::Unmarked);

        // Separate trees: the marker lives in the private store.
        let split = Stores::separate(memory(), memory());
        split.mark().await.unwrap();
        assert!(split.private().head(STORE_MARKER).await.unwrap().is_some());
        assert!(split.public().list("").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn consistency_is_the_weaker_of_both_stores() {
        let strict = || Storage::new(Arc::new(MemoryStore::new()));
        let lax = || Storage::new(Arc::new(MemoryStore::last_writer_wins()));
        let both = Stores::separate(strict(), strict());
        assert_eq!(both.consistency().await.unwrap(), Consistency::Conditional);
        let mixed = Stores::separate(strict(), lax());
        assert_eq!(
            mixed.consistency().await.unwrap(),
            Consistency::LastWriterWins
        );
        assert!(!mixed.conditional_writes().await.unwrap());
    }
}
