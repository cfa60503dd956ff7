//! The object store: one small interface over a local directory and S3.
//!
//! A backend is chosen by URL ([`StorageUrl`]): `s3://BUCKET[/PREFIX]`, or a
//! local directory given as a path or `file://` URL. Every backend offers the
//! same operations, including conditional writes ([`PutMode`]); whether the
//! backend really honours them is *probed*, never assumed
//! ([`Storage::conditional_writes`]): Garage 2.5, for one, ignores
//! `If-None-Match`/`If-Match` on PUT and overwrites.

mod local;
mod s3;

pub use local::LocalStore;
pub use s3::{S3Settings, S3Store};

use std::path::PathBuf;
use std::pin::Pin;
use std::time::SystemTime;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::OnceCell;

/// Metadata of one stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    /// The object's key, relative to the store's root or prefix.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// An opaque version tag: changes whenever the object is replaced.
    pub etag: String,
    /// When the object was last written, if the backend says.
    pub last_modified: Option<SystemTime>,
}

/// How a put treats an existing object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutMode {
    /// Write unconditionally.
    Overwrite,
    /// Write only if no object exists under the key (S3 `If-None-Match: *`).
    Create,
    /// Write only if the object still has this ETag (S3 `If-Match`).
    Update(String),
}

/// HTTP headers stored with an object (S3) or derived at serve time (local).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PutOptions {
    /// `Content-Type` to serve the object with.
    pub content_type: Option<String>,
    /// `Cache-Control` to serve the object with.
    pub cache_control: Option<String>,
}

/// The bytes to store: in memory, or a file streamed from disk.
#[derive(Debug, Clone)]
pub enum Payload {
    /// Bytes held in memory (indexes, records: small).
    Bytes(Bytes),
    /// A file on local disk, streamed (packages: possibly large).
    File(PathBuf),
}

impl From<Vec<u8>> for Payload {
    fn from(value: Vec<u8>) -> Self {
        Payload::Bytes(Bytes::from(value))
    }
}

/// A streaming object body.
pub type ObjectReader = Pin<Box<dyn AsyncRead + Send>>;

/// An object opened for reading.
pub struct GetResult {
    /// The object's metadata.
    pub meta: ObjectMeta,
    /// Its body, streamed.
    pub body: ObjectReader,
}

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// No object under this key.
    #[error("object `{key}` not found")]
    NotFound {
        /// The key asked for.
        key: String,
    },
    /// [`PutMode::Create`] found an existing object.
    #[error("object `{key}` already exists")]
    AlreadyExists {
        /// The key written.
        key: String,
    },
    /// [`PutMode::Update`] found the object changed (or gone).
    #[error("object `{key}` changed since it was read")]
    Precondition {
        /// The key written.
        key: String,
    },
    /// The key cannot be stored (empty segment, `..`, reserved name).
    #[error("invalid object key `{key}`: {reason}")]
    InvalidKey {
        /// The key given.
        key: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The storage URL is not understood.
    #[error("invalid storage URL `{url}`: {reason}")]
    InvalidUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The backend failed (I/O, network, credentials, server error).
    #[error("{op} `{key}` failed: {message}")]
    Backend {
        /// The operation (`get`, `put`, `list`, ...).
        op: &'static str,
        /// The key or prefix involved.
        key: String,
        /// What the backend said.
        message: String,
    },
}

impl StorageError {
    pub(crate) fn backend(op: &'static str, key: &str, message: impl std::fmt::Display) -> Self {
        StorageError::Backend {
            op,
            key: key.to_owned(),
            message: message.to_string(),
        }
    }
}

/// A parsed storage location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageUrl {
    /// A local directory.
    Local(PathBuf),
    /// An S3 bucket and optional key prefix.
    S3 {
        /// Bucket name.
        bucket: String,
        /// Key prefix inside the bucket, without leading or trailing `/` (may be empty).
        prefix: String,
    },
}

impl StorageUrl {
    /// The default store when none is given: `./packages-data`.
    pub const DEFAULT: &'static str = "./packages-data";

    /// Parses `s3://BUCKET[/PREFIX]`, `file:///path` or a plain path.
    pub fn parse(url: &str) -> Result<Self, StorageError> {
        let invalid = |reason: &str| StorageError::InvalidUrl {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(invalid("missing bucket name"));
            }
            let prefix = prefix.trim_matches('/').to_owned();
            if prefix.split('/').any(|s| s == ".." || s == ".") {
                return Err(invalid("`.` or `..` in the prefix"));
            }
            return Ok(StorageUrl::S3 {
                bucket: bucket.to_owned(),
                prefix,
            });
        }
        if let Some(path) = url.strip_prefix("file://") {
            if path.is_empty() {
                return Err(invalid("missing path"));
            }
            return Ok(StorageUrl::Local(PathBuf::from(path)));
        }
        if url.contains("://") {
            return Err(invalid("unknown scheme (use `s3://`, `file://` or a path)"));
        }
        if url.is_empty() {
            return Err(invalid("empty"));
        }
        Ok(StorageUrl::Local(PathBuf::from(url)))
    }
}

enum Backend {
    Local(LocalStore),
    S3(S3Store),
}

/// An object store: a local directory or an S3 bucket (with prefix).
pub struct Storage {
    backend: Backend,
    conditional: OnceCell<bool>,
    description: String,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.description)
    }
}

impl Storage {
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
        let description = format!("local directory {}", store.root().display());
        Self {
            backend: Backend::Local(store),
            conditional: OnceCell::new(),
            description,
        }
    }

    /// Wraps an S3 store.
    pub fn s3(store: S3Store) -> Self {
        let description = store.describe();
        Self {
            backend: Backend::S3(store),
            conditional: OnceCell::new(),
            description,
        }
    }

    /// A one-line description of the store, for messages.
    pub fn describe(&self) -> &str {
        &self.description
    }

    /// The local root directory, if this is a local store.
    pub fn local_root(&self) -> Option<&std::path::Path> {
        match &self.backend {
            Backend::Local(store) => Some(store.root()),
            Backend::S3(_) => None,
        }
    }

    /// Opens an object for streaming.
    #[tracing::instrument(level = "debug", skip(self))]
    pub async fn get(&self, key: &str) -> Result<GetResult, StorageError> {
        match &self.backend {
            Backend::Local(s) => s.get(key).await,
            Backend::S3(s) => s.get(key).await,
        }
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
        match &self.backend {
            Backend::Local(s) => s.head(key).await,
            Backend::S3(s) => s.head(key).await,
        }
    }

    /// Stores `payload` under `key`, honouring `mode` where the backend can.
    #[tracing::instrument(level = "debug", skip(self, payload, options))]
    pub async fn put(
        &self,
        key: &str,
        payload: Payload,
        options: &PutOptions,
        mode: PutMode,
    ) -> Result<ObjectMeta, StorageError> {
        match &self.backend {
            Backend::Local(s) => s.put(key, payload, mode).await,
            Backend::S3(s) => s.put(key, payload, options, mode).await,
        }
    }

    /// Every object whose key starts with `prefix`, sorted by key (all pages).
    #[tracing::instrument(level = "debug", skip(self))]
    pub async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StorageError> {
        let mut objects = match &self.backend {
            Backend::Local(s) => s.list(prefix).await?,
            Backend::S3(s) => s.list(prefix).await?,
        };
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(objects)
    }

    /// Deletes an object; deleting a missing object succeeds.
    #[tracing::instrument(level = "debug", skip(self))]
    pub async fn delete(&self, key: &str) -> Result<(), StorageError> {
        match &self.backend {
            Backend::Local(s) => s.delete(key).await,
            Backend::S3(s) => s.delete(key).await,
        }
    }

    /// Whether [`PutMode::Create`] and [`PutMode::Update`] are really enforced.
    ///
    /// Probed once per process: write a random key, then write it again with
    /// `Create`; a store that lets the second write through does not honour
    /// conditional writes.
    pub async fn conditional_writes(&self) -> Result<bool, StorageError> {
        self.conditional
            .get_or_try_init(|| async { self.probe_conditional_writes().await })
            .await
            .copied()
    }

    async fn probe_conditional_writes(&self) -> Result<bool, StorageError> {
        let key = format!("config/_probe/{}", random_hex(16));
        let options = PutOptions::default();
        let first = self
            .put(
                &key,
                Payload::from(b"first".to_vec()),
                &options,
                PutMode::Create,
            )
            .await?;
        let second = self
            .put(
                &key,
                Payload::from(b"second".to_vec()),
                &options,
                PutMode::Create,
            )
            .await;
        let mut honoured = matches!(second, Err(StorageError::AlreadyExists { .. }));
        if honoured {
            // Create works; check Update with a stale ETag too.
            let stale = format!("\"{}\"", random_hex(16));
            let update = self
                .put(
                    &key,
                    Payload::from(b"third".to_vec()),
                    &options,
                    PutMode::Update(stale),
                )
                .await;
            honoured = matches!(update, Err(StorageError::Precondition { .. }));
        }
        let _ = first;
        self.delete(&key).await?;
        if let Err(e) = second {
            if !matches!(e, StorageError::AlreadyExists { .. }) {
                return Err(e);
            }
        }
        tracing::debug!(store = %self.description, honoured, "probed conditional writes");
        Ok(honoured)
    }
}

/// `n` random bytes as lowercase hex.
pub(crate) fn random_hex(n: usize) -> String {
    use rand::RngCore;
    let mut bytes = vec![0u8; n];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Checks that `key` is a relative `/`-separated key with no empty, `.` or `..` segment.
pub(crate) fn check_key(key: &str) -> Result<(), StorageError> {
    let invalid = |reason| StorageError::InvalidKey {
        key: key.to_owned(),
        reason,
    };
    if key.is_empty() {
        return Err(invalid("empty key"));
    }
    if key.len() > 1024 {
        return Err(invalid("longer than 1024 bytes"));
    }
    for segment in key.split('/') {
        if segment.is_empty() {
            return Err(invalid("empty path segment"));
        }
        if segment == "." || segment == ".." {
            return Err(invalid("`.` or `..` segment"));
        }
        if segment.chars().any(|c| c.is_control() || c == '\\') {
            return Err(invalid("control character or backslash"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_storage_urls() {
        assert_eq!(
            StorageUrl::parse("s3://bucket/some/prefix/").unwrap(),
            StorageUrl::S3 {
                bucket: "bucket".into(),
                prefix: "some/prefix".into()
            }
        );
        assert_eq!(
            StorageUrl::parse("s3://bucket").unwrap(),
            StorageUrl::S3 {
                bucket: "bucket".into(),
                prefix: String::new()
            }
        );
        assert_eq!(
            StorageUrl::parse("file:///tmp/x").unwrap(),
            StorageUrl::Local("/tmp/x".into())
        );
        assert_eq!(
            StorageUrl::parse("data").unwrap(),
            StorageUrl::Local("data".into())
        );
        assert!(StorageUrl::parse("s3://").is_err());
        assert!(StorageUrl::parse("s3://b/../x").is_err());
        assert!(StorageUrl::parse("http://x").is_err());
    }

    #[test]
    fn rejects_bad_keys() {
        for key in ["", "a//b", "../a", "a/./b", "a/\u{7}", "/a", "a/"] {
            assert!(check_key(key).is_err(), "{key:?}");
        }
        check_key("static/o/alpine/v/r/x86_64/a+b~c d é.apk").unwrap();
    }
}
