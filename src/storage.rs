//! The object store: one small interface over a local directory, S3 and memory.
//!
//! Backends implement [`ObjectStore`] (get, head, put, list, delete, copy,
//! describe); every caller goes through the [`Storage`] handle, which adds the
//! conveniences (`get_bytes`, sorted `list`) and the one conditional-write
//! contract ([`Consistency`]). A store is chosen by URL ([`StorageUrl`]):
//! `s3://BUCKET[/PREFIX]`, or a local directory given as a path or `file://`
//! URL. For tests there are [`MemoryStore`] (in-process, either contract) and
//! [`FaultyStore`] (wraps any store: crashes, failures, latency, held puts, request counts).
//!
//! Whether a store enforces [`PutMode::Create`]/[`PutMode::Update`] is known
//! for the local directory and memory, *probed* once for S3 (Garage 2.5, for
//! one, ignores `If-None-Match`/`If-Match` on PUT and overwrites), or
//! configured ([`Storage::with_consistency`], `PACKAGES_CONSISTENCY`).

pub mod faulty;
mod handle;
mod local;
pub mod memory;
mod s3;
mod url;

pub use faulty::{CrashMode, FaultHandle, FaultyStore, HeldPut, RequestCounts};
pub use handle::Storage;
pub use local::LocalStore;
pub use memory::MemoryStore;
pub use s3::{S3Settings, S3Store, problem_code};
pub use url::StorageUrl;
pub(crate) use url::{check_key, random_hex};

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::SystemTime;

use bytes::Bytes;
use futures::future::BoxFuture;
use tokio::io::AsyncRead;

/// What a store guarantees for [`PutMode::Create`] and [`PutMode::Update`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Consistency {
    /// The store checks the precondition and writes in one atomic step:
    /// of racing `Create`s (or `Update`s with one ETag) exactly one wins.
    Conditional,
    /// The store ignores preconditions: every write lands, the last one wins.
    /// [`Storage`] then checks with a HEAD first, which refuses a write the
    /// precondition rules out but leaves a race window (see [`Storage::put`]).
    LastWriterWins,
}

impl Consistency {
    /// The name used in configuration and reports: `conditional` or `last-writer-wins`.
    pub fn as_str(self) -> &'static str {
        match self {
            Consistency::Conditional => "conditional",
            Consistency::LastWriterWins => "last-writer-wins",
        }
    }

    /// Whether preconditions are enforced atomically by the store.
    pub fn is_conditional(self) -> bool {
        self == Consistency::Conditional
    }
}

impl std::fmt::Display for Consistency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Consistency {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "conditional" => Ok(Consistency::Conditional),
            "last-writer-wins" => Ok(Consistency::LastWriterWins),
            other => Err(format!(
                "unknown consistency `{other}` (use `conditional` or `last-writer-wins`)"
            )),
        }
    }
}

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
    /// A setting (environment variable) has a value we do not understand.
    #[error("invalid {name} `{value}`: {reason}")]
    InvalidSetting {
        /// The setting's name.
        name: &'static str,
        /// The value given.
        value: String,
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

/// The future every [`ObjectStore`] method returns.
pub type StoreFuture<'a, T> = BoxFuture<'a, Result<T, StorageError>>;

/// One backend: the few operations a store must offer. Object-safe, so a
/// [`Storage`] holds any of them as `Arc<dyn ObjectStore>`; conveniences live
/// on [`Storage`], not here.
///
/// Keys are relative, `/`-separated, and checked by every backend (an invalid
/// one is [`StorageError::InvalidKey`]). A missing object is
/// [`StorageError::NotFound`] for `get` and `copy`, `None` for `head`, and
/// success for `delete`.
///
/// # Conditional writes
///
/// `put` receives the caller's [`PutMode`]. What a backend does with it is its
/// contract, reported by [`ObjectStore::consistency`]:
/// - [`LocalStore`]: [`Consistency::Conditional`], across processes (check and
///   rename under a per-key `flock`).
/// - [`MemoryStore`]: `Conditional` (check and write under one lock), or
///   `LastWriterWins` when built so (it then ignores the mode, as Garage does).
/// - [`S3Store`]: whatever the server does with `If-None-Match: *` / `If-Match`:
///   AWS S3, MinIO and moto enforce them, Garage 2.5 ignores them. Unknown
///   (`None`) until [`Storage`] probes it.
/// - [`FaultyStore`]: its inner store's, or `LastWriterWins` while it drops
///   preconditions.
///
/// A backend that enforces a precondition answers [`StorageError::AlreadyExists`]
/// (`Create` on an existing key) or [`StorageError::Precondition`] (`Update`
/// with another ETag, or on a missing key).
pub trait ObjectStore: Send + Sync + 'static {
    /// A one-line description, for messages (`local directory /srv/x`, `s3://b/p at URL`).
    fn describe(&self) -> String;

    /// The conditional-write contract, when the backend knows it without asking
    /// the server (`None`: [`Storage`] probes).
    fn consistency(&self) -> Option<Consistency> {
        None
    }

    /// The root directory, for a store in a local directory.
    fn local_root(&self) -> Option<&Path> {
        None
    }

    /// Opens an object for streaming.
    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, GetResult>;

    /// The object's metadata, or `None` when absent.
    fn head<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<ObjectMeta>>;

    /// Stores `payload` under `key` with `options`' headers, honouring `mode`
    /// as the backend's contract says.
    fn put<'a>(
        &'a self,
        key: &'a str,
        payload: Payload,
        options: &'a PutOptions,
        mode: PutMode,
    ) -> StoreFuture<'a, ObjectMeta>;

    /// Every object whose key starts with `prefix` (all pages, any order).
    fn list<'a>(&'a self, prefix: &'a str) -> StoreFuture<'a, Vec<ObjectMeta>>;

    /// Deletes an object; deleting a missing object succeeds.
    fn delete<'a>(&'a self, key: &'a str) -> StoreFuture<'a, ()>;

    /// Copies `from` to `to` inside the store without sending the bytes
    /// through this process where the backend can (S3 `CopyObject`, a hard
    /// link locally). Overwrites `to`; the copy keeps `from`'s headers.
    fn copy<'a>(&'a self, from: &'a str, to: &'a str) -> StoreFuture<'a, ()>;
}
