//! The publish protocol, once for every format.
//!
//! A *root* ([`RootId`]) is a set of records published as one set of files
//! (apk: one repo arch and its `APKINDEX.tar.gz`). Its private folder holds
//! immutable pending changes (`pending/`), content-named record chunks
//! (`chunks/`), the manifest naming them (`state.json`, replaced
//! conditionally) and the marker saying what the published files show
//! (`index.json`). [`reindex`] folds pending changes into chunks, writes the
//! manifest, then claims the marker, renders, signs and writes the root's
//! files and completes the marker. `docs/publishing.md` explains why no
//! acknowledged change is lost on stores with or without conditional writes.
//!
//! The code here knows no format: records, chunk parts and root files come
//! from a [`Format`](crate::formats::Format).
//!
//! - `pending`: changes, their ids, reading, storing and cleaning them;
//! - `chunks`: the manifest and the record chunks;
//! - `marker`: claim → render → sign → write → complete of the root files;
//! - `reindex`: the loop that ties them together;
//! - `check`: comparing published files with the records, and repair.

use std::time::Duration;

use crate::keys::KeyError;
use crate::repo::RootId;
use crate::storage::StorageError;

mod check;
mod chunks;
mod marker;
mod pending;
mod reindex;

pub use check::{Dropped, Repaired, RootProblem, check, repair};
pub use chunks::{
    ChunkRef, Manifest, Retired, RootState, Usage, live_chunk_keys, read_manifest, read_state,
    record, replace_records, root_usage,
};
pub use pending::{Change, PendingChange, add_pending};
pub use reindex::{Known, Reindexed, reindex, reindex_with, republish};

/// How long a merged pending change is kept on stores without conditional
/// writes, so that a writer that read the state before it was merged still
/// sees it when it re-lists (see `docs/publishing.md`).
pub const PENDING_GRACE: Duration = Duration::from_secs(120);

/// Why a root could not be published.
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
    Contended(RootId),
}

impl IndexError {
    fn corrupt(key: impl Into<String>, message: impl ToString) -> Self {
        IndexError::Corrupt {
            key: key.into(),
            message: message.to_string(),
        }
    }
}
