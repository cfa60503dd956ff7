//! [`Storage`]: the handle every caller uses, over any [`ObjectStore`].

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use tokio::io::AsyncReadExt;
use tokio::sync::OnceCell;

use super::{
    Consistency, GetResult, LocalStore, ObjectMeta, ObjectStore, Payload, PutMode, PutOptions,
    S3Settings, S3Store, StorageError, StorageUrl, random_hex,
};

/// An object store: a local directory, an S3 bucket (with prefix), memory, or
/// any other [`ObjectStore`], plus its conditional-write contract.
pub struct Storage {
    store: Arc<dyn ObjectStore>,
    configured: Option<Consistency>,
    probed: OnceCell<Consistency>,
    description: String,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.description)
    }
}

impl Storage {
    /// A handle over any backend.
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        let description = store.describe();
        Self {
            store,
            configured: None,
            probed: OnceCell::new(),
            description,
        }
    }

    /// Opens the store named by `url`; S3 settings come from `s3` (and the AWS environment).
    pub async fn open(url: &StorageUrl, s3: &S3Settings) -> Result<Self, StorageError> {
        match url {
            StorageUrl::Local(path) => Ok(Self::local(LocalStore::open(path)?)),
            StorageUrl::S3 { bucket, prefix } => {
                let store = S3Store::connect(bucket, prefix, s3).await?;
                Ok(Self::s3(store))
            }
        }
    }

    /// Wraps a local directory store.
    pub fn local(store: LocalStore) -> Self {
        Self::new(Arc::new(store))
    }

    /// Wraps an S3 store.
    pub fn s3(store: S3Store) -> Self {
        Self::new(Arc::new(store))
    }

    /// Uses `consistency` instead of what the backend says or a probe finds
    /// (`None`: back to those). Configuring `Conditional` on a store that
    /// ignores preconditions lets `Create`/`Update` overwrite: `packages doctor`
    /// warns about that.
    pub fn with_consistency(mut self, consistency: Option<Consistency>) -> Self {
        self.configured = consistency;
        self
    }

    /// A one-line description of the store, for messages.
    pub fn describe(&self) -> &str {
        &self.description
    }

    /// The backend, e.g. to wrap it in a [`super::FaultyStore`] or to write
    /// past the handle's checks in tests.
    pub fn object_store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The local root directory, if this is a local store.
    pub fn local_root(&self) -> Option<&Path> {
        self.store.local_root()
    }

    /// Opens an object for streaming.
    #[tracing::instrument(level = "debug", skip(self))]
    pub async fn get(&self, key: &str) -> Result<GetResult, StorageError> {
        self.store.get(key).await
    }

    /// Reads a whole (small) object into memory.
    pub async fn get_bytes(&self, key: &str) -> Result<(Bytes, ObjectMeta), StorageError> {
        let GetResult { meta, mut body } = self.get(key).await?;
        let mut buf = Vec::with_capacity(usize::try_from(meta.size).unwrap_or(0).min(64 << 20));
        body.read_to_end(&mut buf)
            .await
            .map_err(|e| StorageError::backend("get", key, e))?;
        Ok((Bytes::from(buf), meta))
    }

    /// Reads a whole object if it exists.
    pub async fn get_bytes_opt(
        &self,
        key: &str,
    ) -> Result<Option<(Bytes, ObjectMeta)>, StorageError> {
        match self.get_bytes(key).await {
            Ok(found) => Ok(Some(found)),
            Err(StorageError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The object's metadata, or `None` when absent.
    #[tracing::instrument(level = "debug", skip(self))]
    pub async fn head(&self, key: &str) -> Result<Option<ObjectMeta>, StorageError> {
        self.store.head(key).await
    }

    /// Stores `payload` under `key`. `Create` and `Update` never silently
    /// overwrite: they answer [`StorageError::AlreadyExists`] /
    /// [`StorageError::Precondition`] when the precondition does not hold.
    ///
    /// On a [`Consistency::LastWriterWins`] store the handle checks with a HEAD
    /// before the PUT. That refuses every write the precondition rules out *at
    /// the time of the HEAD*; a writer that lands between this HEAD and this
    /// PUT is still overwritten (a window of one round trip). Callers on such
    /// stores must tolerate that, as the publish protocol does by re-merging.
    #[tracing::instrument(level = "debug", skip(self, payload, options))]
    pub async fn put(
        &self,
        key: &str,
        payload: Payload,
        options: &PutOptions,
        mode: PutMode,
    ) -> Result<ObjectMeta, StorageError> {
        if mode != PutMode::Overwrite && self.consistency().await? == Consistency::LastWriterWins {
            let current = self.store.head(key).await?;
            match (&mode, current) {
                (PutMode::Create, Some(_)) => {
                    return Err(StorageError::AlreadyExists {
                        key: key.to_owned(),
                    });
                }
                (PutMode::Update(etag), Some(meta)) if &meta.etag != etag => {
                    return Err(StorageError::Precondition {
                        key: key.to_owned(),
                    });
                }
                (PutMode::Update(_), None) => {
                    return Err(StorageError::Precondition {
                        key: key.to_owned(),
                    });
                }
                _ => {}
            }
        }
        self.store.put(key, payload, options, mode).await
    }

    /// Every object whose key starts with `prefix`, sorted by key (all pages).
    #[tracing::instrument(level = "debug", skip(self))]
    pub async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StorageError> {
        let mut objects = self.store.list(prefix).await?;
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(objects)
    }

    /// Deletes an object; deleting a missing object succeeds.
    #[tracing::instrument(level = "debug", skip(self))]
    pub async fn delete(&self, key: &str) -> Result<(), StorageError> {
        self.store.delete(key).await
    }

    /// Copies `from` to `to` inside the store (server-side on S3, a hard link
    /// locally), overwriting `to`; the copy keeps `from`'s headers.
    #[tracing::instrument(level = "debug", skip(self))]
    pub async fn copy(&self, from: &str, to: &str) -> Result<(), StorageError> {
        self.store.copy(from, to).await
    }

    /// The conditional-write contract this handle works under: the configured
    /// one, else the one the backend states, else probed once per handle.
    pub async fn consistency(&self) -> Result<Consistency, StorageError> {
        if let Some(configured) = self.configured {
            return Ok(configured);
        }
        if let Some(known) = self.store.consistency() {
            return Ok(known);
        }
        self.probed
            .get_or_try_init(|| self.probe_consistency())
            .await
            .copied()
    }

    /// The consistency set with [`Storage::with_consistency`], if any.
    pub fn configured_consistency(&self) -> Option<Consistency> {
        self.configured
    }

    /// Whether [`PutMode::Create`] and [`PutMode::Update`] are enforced
    /// atomically by the store ([`Storage::consistency`] is `Conditional`).
    pub async fn conditional_writes(&self) -> Result<bool, StorageError> {
        Ok(self.consistency().await?.is_conditional())
    }

    /// Asks the backend itself, every time, ignoring configuration: write a
    /// random key, write it again with `Create`, then `Update` it with a stale
    /// ETag; a store that lets either through is `LastWriterWins`. Cleans up.
    pub async fn probe_consistency(&self) -> Result<Consistency, StorageError> {
        let key = format!("config/_probe/{}", random_hex(16));
        let options = PutOptions::default();
        let put = |body: &'static [u8], mode| {
            self.store
                .put(&key, Payload::from(body.to_vec()), &options, mode)
        };
        put(b"first", PutMode::Create).await?;
        let result = async {
            match put(b"second", PutMode::Create).await {
                Err(StorageError::AlreadyExists { .. }) => {}
                Ok(_) => return Ok(Consistency::LastWriterWins),
                Err(e) => return Err(e),
            }
            let stale = format!("\"{}\"", random_hex(16));
            match put(b"third", PutMode::Update(stale)).await {
                Err(StorageError::Precondition { .. }) => Ok(Consistency::Conditional),
                Ok(_) => Ok(Consistency::LastWriterWins),
                Err(e) => Err(e),
            }
        }
        .await;
        self.store.delete(&key).await?;
        let consistency = result?;
        tracing::debug!(store = %self.description, %consistency, "probed conditional writes");
        Ok(consistency)
    }
}
