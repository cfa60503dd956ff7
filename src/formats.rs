//! Package formats and the one interface the publish core sees them through.
//!
//! STYLE.md prefers closed enums matched at each use; formats are a trait
//! instead. The publish protocol (`src/core`) is written once and must be
//! instantiated for Alpine now and for Debian and RPM next, each with its own
//! record type, cached chunk part and root files: an enum would thread every
//! format's types through every signature of the protocol, and a trait keeps
//! the protocol free of any format's names (issue 7).
//!
//! Everything a format does here is pure (bytes in, bytes out); the core does
//! the I/O.

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::core::RootProblem;
use crate::keys::{KeyError, KeySet};
use crate::repo::{Key, RootId};

pub mod apk;
pub mod deb;
pub mod deflate;
pub mod rpm;

/// One chunk's cached rendering: the bytes a root file is assembled from and
/// what the format needs to know about them without reading them (kept in
/// the manifest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part<M> {
    /// The rendered bytes (apk: a raw deflate segment).
    pub bytes: Vec<u8>,
    /// What assembling needs besides the bytes (apk: CRC-32 and text length).
    pub meta: M,
}

/// A root's files as rendered from its chunks' parts, before signing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedRoot {
    /// Auxiliary files, content-named or otherwise safe to write before the
    /// root file (Debian's by-hash `Packages`, RPM's `repodata/<sha>-…`).
    pub files: Vec<(Key, Vec<u8>)>,
    /// The body of the root file, to be signed.
    pub body: Vec<u8>,
    /// Where each part sits in `body` (`(offset, length)`, in chunk order),
    /// so the next publish can copy unchanged parts from the published file.
    pub spans: Vec<(u64, u64)>,
}

/// What a real client would make of a published root file, beyond its
/// signature and freshness ([`Format::client_problems`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientReport {
    /// Problems that make a client refuse the file or a package in it: the
    /// check fails and repair must drop the records behind them.
    pub refused: Vec<String>,
    /// Problems a client lives with but an upload like it would be refused
    /// today: reported, not failing.
    pub warnings: Vec<String>,
}

/// A package format as the publish core sees it.
///
/// Records live in *roots* (apk: one repo arch; Debian: one suite covering
/// every component and arch; RPM: one repo arch). Within a root, each record
/// has an entry key (apk: the file name) and falls into one of
/// [`Format::chunks`] chunks; a publish re-renders only the chunks its
/// changes touch and assembles the root's files from every chunk's cached
/// part. The root file ([`Format::root_file`]) is written last: it is the
/// commit point the core's claim/marker protocol guards.
pub trait Format: Clone + Send + Sync + 'static {
    /// One package's entry in a root's index.
    type Record: Clone
        + PartialEq
        + fmt::Debug
        + Serialize
        + DeserializeOwned
        + Send
        + Sync
        + 'static;
    /// What the manifest keeps about each chunk's part (flattened into the
    /// chunk's entry of `state.json`).
    type PartMeta: Clone
        + PartialEq
        + Eq
        + fmt::Debug
        + Serialize
        + DeserializeOwned
        + Send
        + Sync
        + 'static;

    /// What signs a root file, picked from the scope's key set by
    /// [`Format::pick_key`] once per publish (apk: the active RSA key;
    /// Debian: every OpenPGP key of the set).
    type SignKey: Clone + Send + Sync + 'static;

    /// Picks this format's signing key(s) from the key set of the root's scope.
    fn pick_key(&self, set: &KeySet) -> Result<Self::SignKey, KeyError>;

    /// The record's key within its root (apk: the `.apk` file name).
    fn entry_key(&self, record: &Self::Record) -> String;

    /// How many chunks a root's records are split into.
    fn chunks(&self) -> u32;

    /// The chunk an entry key falls into (below [`Format::chunks`]).
    fn chunk_of(&self, entry: &str) -> u32;

    /// Renders one chunk's cached part from its records (in entry-key order).
    fn render_part(&self, records: &[&Self::Record]) -> Part<Self::PartMeta>;

    /// The root file: written last, replaced conditionally.
    fn root_file(&self, root: &RootId) -> Key;

    /// Assembles a root's files from its chunks' parts (in chunk order).
    fn render_root(&self, root: &RootId, parts: &[Part<Self::PartMeta>]) -> RenderedRoot;

    /// The part of a published root file that [`RenderedRoot::spans`] point
    /// into (apk: the signed, unsigned member), if the file is readable.
    fn reusable_body(&self, published: &[u8]) -> Option<Vec<u8>>;

    /// Whether root files are signed (settings roots are not).
    fn signed(&self) -> bool {
        true
    }

    /// Signs a rendered body into the root file's bytes.
    fn sign(&self, body: Vec<u8>, key: &Self::SignKey) -> Result<Vec<u8>, KeyError>;

    /// Signed files other than the root file (Debian: `Release.gpg`, the
    /// `InRelease` of each suite alias), made from the rendered root and
    /// written before the root file. None by default.
    fn signed_files(
        &self,
        _root: &RootId,
        _rendered: &RenderedRoot,
        _key: &Self::SignKey,
    ) -> Result<Vec<(Key, Vec<u8>)>, KeyError> {
        Ok(Vec::new())
    }

    /// The browse page of a root ([`crate::browse`]): rendered from the same
    /// parts as the root file (`ids[i]` names `parts[i]`: the chunk's
    /// content id, so rows read from a part can be kept), written right after
    /// the root file and before the marker completes. `keys` is the key set
    /// the root is signed with, when known. None by default.
    fn browse_page(
        &self,
        _root: &RootId,
        _parts: &[Part<Self::PartMeta>],
        _ids: &[String],
        _keys: Option<&KeySet>,
    ) -> Option<(Key, Vec<u8>)> {
        None
    }

    /// Whether the core keeps every chunk's part in one private object
    /// beside the marker, so a publish copies unchanged parts from it instead
    /// of re-rendering them: for formats whose root file holds no parts
    /// ([`Format::reusable_body`] is `None`: Debian's `InRelease`).
    fn caches_parts(&self) -> bool {
        false
    }

    /// Compares a published root file with the expected one (rendered and
    /// signed from the records); called only when they differ.
    fn verify(
        &self,
        published: &[u8],
        records: &[&Self::Record],
        key: Option<&Self::SignKey>,
    ) -> Vec<RootProblem>;

    /// Reads a published root file the way the format's clients do and
    /// reports what they would refuse (a file written by an older release may
    /// hold records the format's limits refuse today). Empty by default.
    fn client_problems(&self, _published: &[u8]) -> ClientReport {
        ClientReport::default()
    }

    /// Why clients cannot use `record` once rendered (they would refuse it or
    /// the whole root file), or `None` if they can: repair drops such records.
    fn unservable(&self, _record: &Self::Record) -> Option<String> {
        None
    }

    /// Whether root files may exist that were written outside the protocol
    /// (settings written by older releases): then a root without a manifest
    /// starts from [`Format::base_records`] of its root file.
    fn has_legacy_root_files(&self) -> bool {
        false
    }

    /// What a record counts for quotas: its group within the root (Debian:
    /// the component; `""` where a root is one repo arch) and the bytes of
    /// its package file. `None` (the default): not counted (settings).
    fn usage_of(&self, _record: &Self::Record) -> Option<(String, u64)> {
        None
    }

    /// The records a root file written outside the protocol holds; `None`
    /// if unreadable.
    fn base_records(&self, _published: &[u8]) -> Option<Vec<Self::Record>> {
        None
    }
}
