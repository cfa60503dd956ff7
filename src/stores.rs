//! The public and private trees: one store for both, or one each.
//!
//! Callers name objects with [`Key`]; [`Stores`] picks the store from
//! [`Key::tree`] and sets each object's `Content-Type` and `Cache-Control`.

use std::sync::Arc;

use bytes::Bytes;

use crate::repo::{Key, Tree};
use crate::storage::{ObjectMeta, Payload, PutMode, PutOptions, Storage, StorageError};

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

    /// Whether both stores enforce conditional writes (probed once per store).
    pub async fn conditional_writes(&self) -> Result<bool, StorageError> {
        Ok(self.public.conditional_writes().await? && self.private.conditional_writes().await?)
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
        let options = match key.tree() {
            Tree::Public => PutOptions {
                content_type: Some(key.content_type().to_owned()),
                cache_control: Some(key.cache_control().to_owned()),
            },
            Tree::Private => PutOptions {
                content_type: Some("application/octet-stream".to_owned()),
                cache_control: Some("private, no-store".to_owned()),
            },
        };
        self.store(key.tree())
            .put(&key.path(), payload, &options, mode)
            .await
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
