//! An in-process store for fast, deterministic tests.
//!
//! Objects live in a `BTreeMap` behind one lock, so a listing is a range scan
//! and tens of thousands of objects cost nothing to speak of. ETags are derived
//! from the bytes (as S3 derives them from the MD5), so the same writes give
//! the same ETags on every run. Built with [`MemoryStore::new`] it honours
//! [`PutMode::Create`] and [`PutMode::Update`] atomically (check and write under
//! the lock); [`MemoryStore::last_writer_wins`] behaves like Garage: it ignores
//! preconditions and every write lands.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use bytes::Bytes;
use sha2::{Digest, Sha256};

use super::{
    Consistency, GetResult, ObjectMeta, ObjectStore, Payload, PutMode, PutOptions, StorageError,
    StoreFuture, check_key,
};

#[derive(Debug, Clone)]
struct Object {
    bytes: Bytes,
    etag: String,
    last_modified: SystemTime,
    options: PutOptions,
}

impl Object {
    fn meta(&self, key: &str) -> ObjectMeta {
        ObjectMeta {
            key: key.to_owned(),
            size: self.bytes.len() as u64,
            etag: self.etag.clone(),
            last_modified: Some(self.last_modified),
        }
    }
}

/// A store in memory. Cloning shares the objects (as two processes share a bucket).
#[derive(Debug, Clone)]
pub struct MemoryStore {
    objects: Arc<Mutex<BTreeMap<String, Object>>>,
    consistency: Consistency,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// An empty store that enforces preconditions ([`Consistency::Conditional`]).
    pub fn new() -> Self {
        Self::with_consistency(Consistency::Conditional)
    }

    /// An empty store that ignores preconditions, like Garage
    /// ([`Consistency::LastWriterWins`]).
    pub fn last_writer_wins() -> Self {
        Self::with_consistency(Consistency::LastWriterWins)
    }

    /// An empty store with the given contract.
    pub fn with_consistency(consistency: Consistency) -> Self {
        Self {
            objects: Arc::new(Mutex::new(BTreeMap::new())),
            consistency,
        }
    }

    /// How many objects the store holds.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether the store holds no object.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Every key, sorted.
    pub fn keys(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    /// The headers an object was stored with.
    pub fn options(&self, key: &str) -> Option<PutOptions> {
        self.lock().get(key).map(|o| o.options.clone())
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Object>> {
        // A panic while holding the lock cannot leave the map half-changed:
        // every change is one insert or remove.
        self.objects.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn find(&self, key: &str) -> Result<Object, StorageError> {
        check_key(key)?;
        self.lock()
            .get(key)
            .cloned()
            .ok_or_else(|| StorageError::NotFound {
                key: key.to_owned(),
            })
    }

    async fn put_object(
        &self,
        key: &str,
        payload: Payload,
        options: &PutOptions,
        mode: PutMode,
    ) -> Result<ObjectMeta, StorageError> {
        check_key(key)?;
        let bytes = match payload {
            Payload::Bytes(bytes) => bytes,
            Payload::File(path) => tokio::fs::read(&path)
                .await
                .map(Bytes::from)
                .map_err(|e| StorageError::backend("put", key, e))?,
        };
        let object = Object {
            etag: etag_of(&bytes),
            bytes,
            last_modified: SystemTime::now(),
            options: options.clone(),
        };
        let mut objects = self.lock();
        if self.consistency == Consistency::Conditional {
            match (&mode, objects.get(key)) {
                (PutMode::Overwrite, _) | (PutMode::Create, None) => {}
                (PutMode::Create, Some(_)) => {
                    return Err(StorageError::AlreadyExists {
                        key: key.to_owned(),
                    });
                }
                (PutMode::Update(etag), Some(current)) if &current.etag == etag => {}
                (PutMode::Update(_), _) => {
                    return Err(StorageError::Precondition {
                        key: key.to_owned(),
                    });
                }
            }
        }
        let meta = object.meta(key);
        objects.insert(key.to_owned(), object);
        Ok(meta)
    }
}

/// A quoted hex digest of the bytes, like S3's MD5 ETags.
fn etag_of(bytes: &[u8]) -> String {
    format!("\"{}\"", hex::encode(&Sha256::digest(bytes)[..16]))
}

impl ObjectStore for MemoryStore {
    fn describe(&self) -> String {
        format!("memory store ({})", self.consistency)
    }

    fn consistency(&self) -> Option<Consistency> {
        Some(self.consistency)
    }

    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, GetResult> {
        Box::pin(async move {
            let object = self.find(key)?;
            Ok(GetResult {
                meta: object.meta(key),
                body: Box::pin(std::io::Cursor::new(object.bytes)),
            })
        })
    }

    fn head<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<ObjectMeta>> {
        Box::pin(async move {
            check_key(key)?;
            Ok(self.lock().get(key).map(|o| o.meta(key)))
        })
    }

    fn put<'a>(
        &'a self,
        key: &'a str,
        payload: Payload,
        options: &'a PutOptions,
        mode: PutMode,
    ) -> StoreFuture<'a, ObjectMeta> {
        Box::pin(self.put_object(key, payload, options, mode))
    }

    fn list<'a>(&'a self, prefix: &'a str) -> StoreFuture<'a, Vec<ObjectMeta>> {
        Box::pin(async move {
            let objects = self.lock();
            Ok(objects
                .range::<str, _>((
                    std::ops::Bound::Included(prefix),
                    std::ops::Bound::Unbounded,
                ))
                .take_while(|(k, _)| k.starts_with(prefix))
                .map(|(k, o)| o.meta(k))
                .collect())
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            check_key(key)?;
            self.lock().remove(key);
            Ok(())
        })
    }

    fn copy<'a>(&'a self, from: &'a str, to: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            check_key(to)?;
            let mut object = self.find(from)?;
            object.last_modified = SystemTime::now();
            self.lock().insert(to.to_owned(), object);
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Storage;

    fn bytes(data: &str) -> Payload {
        Payload::from(data.as_bytes().to_vec())
    }

    async fn put(
        s: &MemoryStore,
        key: &str,
        data: &str,
        mode: PutMode,
    ) -> Result<ObjectMeta, StorageError> {
        s.put(key, bytes(data), &PutOptions::default(), mode).await
    }

    #[tokio::test]
    async fn conditional_store_enforces_create_and_update() {
        let s = MemoryStore::new();
        let first = put(&s, "k", "one", PutMode::Create).await.unwrap();
        assert!(matches!(
            put(&s, "k", "two", PutMode::Create).await,
            Err(StorageError::AlreadyExists { .. })
        ));
        assert!(matches!(
            put(&s, "k", "two", PutMode::Update("\"x\"".into())).await,
            Err(StorageError::Precondition { .. })
        ));
        assert!(matches!(
            put(&s, "missing", "two", PutMode::Update(first.etag.clone())).await,
            Err(StorageError::Precondition { .. })
        ));
        let second = put(&s, "k", "two", PutMode::Update(first.etag))
            .await
            .unwrap();
        assert_eq!(s.head("k").await.unwrap().unwrap().etag, second.etag);
        assert_eq!(s.keys(), ["k"]);
    }

    #[tokio::test]
    async fn last_writer_wins_store_ignores_preconditions() {
        let s = MemoryStore::last_writer_wins();
        put(&s, "k", "one", PutMode::Create).await.unwrap();
        put(&s, "k", "two", PutMode::Create).await.unwrap();
        put(&s, "k", "three", PutMode::Update("\"stale\"".into()))
            .await
            .unwrap();
        let storage = Storage::new(Arc::new(s.clone()));
        assert_eq!(&storage.get_bytes("k").await.unwrap().0[..], b"three");
        // Through the handle, preconditions are checked with a HEAD first.
        assert!(matches!(
            storage
                .put("k", bytes("four"), &PutOptions::default(), PutMode::Create)
                .await,
            Err(StorageError::AlreadyExists { .. })
        ));
        assert!(!storage.conditional_writes().await.unwrap());
    }

    #[tokio::test]
    async fn etags_are_deterministic_and_follow_content() {
        let (a, b) = (MemoryStore::new(), MemoryStore::new());
        let ea = put(&a, "x", "same", PutMode::Overwrite).await.unwrap().etag;
        let eb = put(&b, "y", "same", PutMode::Overwrite).await.unwrap().etag;
        assert_eq!(ea, eb);
        let other = put(&a, "x", "other", PutMode::Overwrite)
            .await
            .unwrap()
            .etag;
        assert_ne!(ea, other);
    }

    #[tokio::test]
    async fn lists_by_prefix_in_order_and_copies() {
        let s = MemoryStore::new();
        for key in ["a/b", "a/a", "ab", "b", "a/c/d"] {
            put(&s, key, key, PutMode::Overwrite).await.unwrap();
        }
        let keys = |v: Vec<ObjectMeta>| v.into_iter().map(|o| o.key).collect::<Vec<_>>();
        assert_eq!(keys(s.list("a/").await.unwrap()), ["a/a", "a/b", "a/c/d"]);
        assert_eq!(keys(s.list("a").await.unwrap()).len(), 4);
        assert_eq!(keys(s.list("").await.unwrap()).len(), 5);
        let headers = PutOptions {
            content_type: Some("text/plain".into()),
            cache_control: None,
        };
        s.put("a/a", bytes("a/a"), &headers, PutMode::Overwrite)
            .await
            .unwrap();
        s.copy("a/a", "z/copy").await.unwrap();
        assert_eq!(
            s.options("z/copy"),
            Some(headers),
            "a copy keeps the headers"
        );
        assert_eq!(
            s.head("z/copy").await.unwrap().unwrap().etag,
            s.head("a/a").await.unwrap().unwrap().etag
        );
        assert!(
            matches!(s.copy("nope", "z/x").await, Err(StorageError::NotFound { key }) if key == "nope")
        );
    }

    #[tokio::test]
    async fn holds_tens_of_thousands_of_objects() {
        let s = MemoryStore::new();
        let started = std::time::Instant::now();
        for i in 0..20_000 {
            put(
                &s,
                &format!("k/{:03}/{i:06}", i % 500),
                "x",
                PutMode::Create,
            )
            .await
            .unwrap();
        }
        assert_eq!(s.list("k/007/").await.unwrap().len(), 40);
        assert_eq!(s.len(), 20_000);
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
    }
}
