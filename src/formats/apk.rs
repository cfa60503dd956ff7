//! Alpine `.apk` v2 packages and `APKINDEX.tar.gz` indexes.
//!
//! Pure code: bytes in, bytes out. [`read_package`] streams an `.apk` once,
//! checking everything a client would check later (and more), and returns the
//! package's index record. [`index`] renders and signs an index from records;
//! [`builder`] makes valid or deliberately broken packages for tests and benchmarks.
//!
//! An `.apk` v2 is three concatenated gzip members: signature, control
//! (`.PKGINFO`, scripts) and data. apk-tools reads them as one tar stream, so
//! the first two tars are "cut" (no end-of-archive blocks). Reference:
//! `/work/shared/reference/formats.md` section 1 and `apk-client.md`.

pub mod alpine;
pub mod builder;
pub mod index;
pub mod limits;
mod names;
mod paths;
mod pkginfo;
mod read;
pub mod segmented;
mod stream;
mod ustar;

pub use alpine::Alpine;
pub use limits::LimitError;
pub use names::{MAX_FILE_NAME, is_valid_arch, is_valid_pkgname, is_valid_version};
pub use read::read_package;

use serde::{Deserialize, Serialize};

/// Limits applied while reading an untrusted `.apk`.
#[derive(Debug, Clone, Copy)]
pub struct ApkLimits {
    /// Hard cap on the inflated size of the data member, whatever `.PKGINFO` says.
    pub max_data_bytes: u64,
    /// Cap on the inflated size of the signature and control members together.
    pub max_control_bytes: u64,
    /// Cap on one `.PKGINFO` line.
    pub max_pkginfo_line: usize,
    /// Cap on the entries (files, directories, links) of the data member.
    pub max_entries: u64,
}

impl Default for ApkLimits {
    fn default() -> Self {
        Self {
            max_data_bytes: 8 << 30,
            max_control_bytes: 16 << 20,
            max_pkginfo_line: 64 << 10,
            max_entries: limits::DEFAULT_MAX_ENTRIES,
        }
    }
}

/// One package as it appears in an `APKINDEX`: everything the index needs,
/// so an index can be rendered from records alone.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApkRecord {
    /// `C:` identity: `Q1` + base64(SHA-1 of the stored control member).
    pub checksum: String,
    /// `P:` package name.
    pub name: String,
    /// `V:` full version, `pkgver` including `-rN`.
    pub version: String,
    /// `A:` architecture as indexed (a `noarch` package gets the arch it is published into).
    pub arch: String,
    /// `S:` size of the `.apk` file in bytes.
    pub file_size: u64,
    /// `I:` installed size.
    pub installed_size: u64,
    /// `T:` description.
    pub description: String,
    /// `U:` project URL.
    pub url: String,
    /// `L:` license.
    pub license: String,
    /// `o:` origin (source package).
    pub origin: String,
    /// `m:` maintainer.
    pub maintainer: String,
    /// `t:` build time, Unix seconds.
    pub build_time: Option<u64>,
    /// `c:` commit.
    pub commit: String,
    /// `k:` provider priority.
    pub provider_priority: Option<u64>,
    /// `D:` dependencies.
    pub depends: Vec<String>,
    /// `p:` provides.
    pub provides: Vec<String>,
    /// `i:` install-if.
    pub install_if: Vec<String>,
    /// `.PKGINFO` `datahash`: lowercase hex SHA-256 of the stored data member.
    pub datahash: String,
    /// Lowercase hex SHA-256 of the whole `.apk` file (for idempotent re-uploads).
    pub sha256: String,
}

impl ApkRecord {
    /// The file name apk requests: `<name>-<version>.apk`.
    pub fn file_name(&self) -> String {
        format!("{}-{}.apk", self.name, self.version)
    }

    /// Whether the package was built as `noarch` is not kept here; see [`ApkPackage::arch`].
    pub fn with_arch(mut self, arch: &str) -> Self {
        self.arch = arch.to_owned();
        self
    }
}

/// An `.apk` that passed every check, as read by [`read_package`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApkPackage {
    /// The index record (with `arch` as written in `.PKGINFO`, possibly `noarch`).
    pub record: ApkRecord,
}

impl ApkPackage {
    /// The architecture from `.PKGINFO` (`noarch` for arch-independent packages).
    pub fn arch(&self) -> &str {
        &self.record.arch
    }

    /// Whether the package is arch-independent.
    pub fn is_noarch(&self) -> bool {
        self.record.arch == "noarch"
    }
}

/// Why an `.apk` was refused.
#[derive(Debug, thiserror::Error)]
pub enum ApkError {
    /// Reading the input failed.
    #[error("read failed: {0}")]
    Io(#[from] std::io::Error),
    /// Not an apk: wrong structure, not gzip, not tar, missing members.
    #[error("not a valid .apk: {0}")]
    Format(String),
    /// A `.PKGINFO` field is missing or invalid.
    #[error("invalid .PKGINFO: {0}")]
    PkgInfo(String),
    /// The data member does not match `datahash` or a per-file checksum.
    #[error("corrupt package: {0}")]
    Corrupt(String),
    /// An entry of the data tar has an unsafe path (absolute, `..`).
    #[error("unsafe path in package data: {0:?}")]
    UnsafePath(String),
    /// A member inflated beyond its cap.
    #[error("package too large: {0}")]
    TooLarge(String),
    /// A field or the data is over one of the limits that keep the index
    /// readable by apk-tools ([`limits`], docs/limits.md).
    #[error("over a limit: {0}")]
    Limit(#[from] LimitError),
    /// apk-tools could not install the package as it is (a file through a
    /// symlink of the package, a device node, ...): refused rather than
    /// published broken.
    #[error("apk cannot install this package: {0}")]
    Uninstallable(String),
}

// Streaming reader: `read`, over `stream` (stored bytes, inflated members),
// with `pkginfo` (fields → record), `paths` (the data tree) and `names`.

/// Extra inflated bytes the data member may have beyond `.PKGINFO` `size`:
/// tar end blocks, GNU tar's padding to 10 KiB records, and slack for long
/// names and pax headers.
pub const DATA_SLACK_BYTES: u64 = 1 << 20;

/// Extra inflated bytes allowed per tar header block read in the data member:
/// a file's header, its pax header (with a few xattrs) and its padding fit
/// in what its two header blocks bring.
pub const DATA_BYTES_PER_HEADER: u64 = 2048;

/// gzip like `gzip -n -9` (what abuild uses): no name, mtime 0, OS byte "Unix".
fn gzip(data: &[u8]) -> Vec<u8> {
    crate::formats::deflate::gzip_best(data)
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_hostile;
