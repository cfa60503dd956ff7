//! RPM binary packages (`.rpm`): reading one and checking it the way `rpm`
//! would, keeping what `createrepo_c` writes into `primary`, `filelists` and
//! `other` metadata.
//!
//! Pure code: bytes in, values out. [`read_rpm`] streams a `.rpm` once: the
//! 96-byte lead, the signature header (and its padding to 8 bytes), the main
//! header, then the payload, which is hashed and discarded, never held. It
//! checks the digests `rpm -K` checks without a key (header SHA-256 and SHA-1,
//! payload digest, MD5 of header and payload) and refuses mismatches. Header
//! sizes, index counts and tag data are capped by [`RpmLimits`] before
//! anything is allocated. Reference: `/work/shared/reference/formats.md`
//! section 3.3-3.6.

mod fields;
mod header;
mod read;
pub mod repo;
pub mod repodata;
pub mod sign;
mod tags;
mod vercmp;

pub use fields::{is_valid_arch, is_valid_name, is_valid_version};
pub use read::read_rpm;
pub use repo::{RpmRecord, RpmRepo};
pub use sign::{SignedRpm, sign_rpm};
pub use vercmp::{compare_evr, rpmvercmp};

use serde::{Deserialize, Serialize};

/// Limits applied while reading an untrusted `.rpm`. The defaults fit every
/// package Fedora ships (its largest main headers, texlive's and the
/// kernel's, are a few MiB).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RpmLimits {
    /// Cap on the signature header's index entries (default 32, rpm's own cap).
    pub max_signature_entries: u32,
    /// Cap on the signature header's data store (default 1 MiB; rpm allows
    /// 64 MiB, real ones are under 8 KiB including the reserved space).
    pub max_signature_store: u32,
    /// Cap on the main header's index entries (default 65,535, rpm's own cap;
    /// real packages carry under 200 tags).
    pub max_header_entries: u32,
    /// Cap on the main header's total size, intro, index and store (default
    /// 64 MiB; rpm allows 256 MiB).
    pub max_header_bytes: u64,
    /// Cap on the data of any one tag (default 32 MiB).
    pub max_tag_bytes: u64,
    /// Cap on the files listed (default 1,000,000).
    pub max_files: u64,
    /// Cap on the bytes of all file paths once directory and base names are
    /// joined (default 256 MiB): a few long directory names shared by many
    /// files would otherwise multiply.
    pub max_path_bytes: u64,
    /// Cap on the payload's (compressed) size (default 16 GiB).
    pub max_payload_bytes: u64,
}

impl Default for RpmLimits {
    fn default() -> Self {
        Self {
            max_signature_entries: 32,
            max_signature_store: 1 << 20,
            max_header_entries: 65_535,
            max_header_bytes: 64 << 20,
            max_tag_bytes: 32 << 20,
            max_files: 1_000_000,
            max_path_bytes: 256 << 20,
            max_payload_bytes: 16 << 30,
        }
    }
}

/// One dependency (requires, provides, conflicts, obsoletes or a weak
/// dependency), as `createrepo_c` writes it in `<rpm:entry>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dependency {
    /// What is required or provided (`libfoo.so.1()(64bit)`, `/bin/sh`).
    pub name: String,
    /// The comparison, `EQ`, `LT`, `GT`, `LE` or `GE`; `None` without one.
    pub flags: Option<String>,
    /// The version's epoch; `Some("0")` when a version is given without one
    /// (createrepo_c writes `epoch="0"`).
    pub epoch: Option<String>,
    /// The version without epoch and release.
    pub version: Option<String>,
    /// The release, if the version has one.
    pub release: Option<String>,
    /// Whether it must be installed before this package's scriptlets run
    /// (requires only: PREREQ, SCRIPT_PRE or SCRIPT_POST; createrepo_c
    /// 0.17's `pre="1"`, which leaves PRETRANS and POSTTRANS out).
    pub pre: bool,
    /// The raw RPMSENSE flags.
    pub sense: u32,
}

/// One file of the package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RpmFile {
    /// Absolute path.
    pub path: String,
    /// Unix mode (type and permissions).
    pub mode: u32,
    /// RPMFILE flags (CONFIG 0x01, DOC 0x02, GHOST 0x40...).
    pub flags: u32,
}

impl RpmFile {
    /// Whether it is a directory (createrepo_c's `type="dir"`).
    pub fn is_dir(&self) -> bool {
        self.mode & 0o170000 == 0o040000
    }

    /// Whether it is a `%ghost` file, not in the payload
    /// (createrepo_c's `type="ghost"`, unless it is a directory).
    pub fn is_ghost(&self) -> bool {
        self.flags & 0x40 != 0
    }
}

/// One changelog entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangelogEntry {
    /// Unix time of the entry.
    pub time: u64,
    /// Author line (`Name <mail> - version`).
    pub author: String,
    /// The text.
    pub text: String,
}

/// One binary `.rpm` as read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RpmPackage {
    /// `NAME`.
    pub name: String,
    /// `EPOCH`, 0 when absent (as createrepo_c writes it).
    pub epoch: u32,
    /// `VERSION`.
    pub version: String,
    /// `RELEASE`.
    pub release: String,
    /// `ARCH` (`noarch` for architecture-independent packages).
    pub arch: String,
    /// `SUMMARY`.
    pub summary: String,
    /// `DESCRIPTION`.
    pub description: String,
    /// `URL`, if any.
    pub url: Option<String>,
    /// `LICENSE`.
    pub license: Option<String>,
    /// `VENDOR`, if any.
    pub vendor: Option<String>,
    /// `GROUP`, if any.
    pub group: Option<String>,
    /// `BUILDHOST`, if any.
    pub buildhost: Option<String>,
    /// `SOURCERPM`, the source package it was built from.
    pub sourcerpm: String,
    /// `BUILDTIME`, Unix time.
    pub build_time: u64,
    /// `PACKAGER`, if any.
    pub packager: Option<String>,
    /// Byte offset where the main header starts (createrepo_c's
    /// `rpm:header-range start`).
    pub header_start: u64,
    /// Byte offset where the main header ends and the payload starts
    /// (`rpm:header-range end`).
    pub header_end: u64,
    /// Size of the `.rpm` file.
    pub size_package: u64,
    /// Installed size (`LONGSIZE`, else `SIZE`).
    pub size_installed: u64,
    /// Uncompressed payload size (`LONGARCHIVESIZE`, else `ARCHIVESIZE`,
    /// from either header; 0 if absent).
    pub size_archive: u64,
    /// SHA-256 of the whole file, lowercase hex: createrepo_c's pkgid.
    pub sha256: String,
    /// `PAYLOADCOMPRESSOR` (`gzip`, `xz`, `zstd`...), if given.
    pub payload_compressor: Option<String>,
    /// Whether the signature header carries an OpenPGP signature (not
    /// verified here: that needs the key).
    pub signed: bool,
    /// Requires, unfiltered (`rpmlib(...)` included; see
    /// [`RpmPackage::primary_requires`]).
    pub requires: Vec<Dependency>,
    /// Provides.
    pub provides: Vec<Dependency>,
    /// Conflicts.
    pub conflicts: Vec<Dependency>,
    /// Obsoletes.
    pub obsoletes: Vec<Dependency>,
    /// Recommends.
    pub recommends: Vec<Dependency>,
    /// Suggests.
    pub suggests: Vec<Dependency>,
    /// Supplements.
    pub supplements: Vec<Dependency>,
    /// Enhances.
    pub enhances: Vec<Dependency>,
    /// Every file, in header order.
    pub files: Vec<RpmFile>,
    /// The changelog, newest first as stored.
    pub changelog: Vec<ChangelogEntry>,
}

impl RpmPackage {
    /// The canonical file name, `<name>-<version>-<release>.<arch>.rpm`.
    pub fn file_name(&self) -> String {
        format!(
            "{}-{}-{}.{}.rpm",
            self.name, self.version, self.release, self.arch
        )
    }

    /// Whether the package is `noarch`.
    pub fn is_noarch(&self) -> bool {
        self.arch == "noarch"
    }

    /// Whether createrepo_c lists `path` in `primary.xml`: under `/etc/`,
    /// `/usr/lib/sendmail`, or containing `bin/`.
    pub fn is_primary_file(path: &str) -> bool {
        path.starts_with("/etc/") || path == "/usr/lib/sendmail" || path.contains("bin/")
    }

    /// The requires createrepo_c writes into `primary.xml`: without
    /// `rpmlib(...)`, without requires of its own primary files, without
    /// requires identical to one of its provides (name, comparison and
    /// version), without a repeat of the previous
    /// require of the same name, and only the highest `libc.so.6(...)`
    /// require, moved last.
    pub fn primary_requires(&self) -> Vec<Dependency> {
        fields::primary_requires(self)
    }

    /// The changelog createrepo_c writes into `other.xml`: the newest
    /// `limit` entries (its default is 10), oldest first, authors without
    /// trailing spaces, and entries sharing a time with an older one moved
    /// one second later each (createrepo_c keeps times distinct).
    pub fn other_changelog(&self, limit: usize) -> Vec<ChangelogEntry> {
        fields::other_changelog(self, limit)
    }

    /// Compares this package's epoch, version and release with `other`'s as
    /// rpm does.
    pub fn compare_evr(&self, other: &RpmPackage) -> std::cmp::Ordering {
        compare_evr(
            (self.epoch, &self.version, &self.release),
            (other.epoch, &other.version, &other.release),
        )
    }
}

/// Why a `.rpm` was refused. Messages name the part (lead, signature header,
/// main header, payload), the tag or field, and the problem.
#[derive(Debug, thiserror::Error)]
pub enum RpmError {
    /// Reading the input failed.
    #[error("reading the .rpm failed: {0}")]
    Io(#[from] std::io::Error),
    /// The input is not an RPM v3/v4 package.
    #[error("not an .rpm: {0}")]
    NotRpm(String),
    /// The file ends early.
    #[error("the .rpm is truncated: it ends inside {0}")]
    Truncated(&'static str),
    /// A header's structure is broken.
    #[error("{part}: {problem}")]
    Header {
        /// `signature header` or `main header`.
        part: &'static str,
        /// What is wrong.
        problem: String,
    },
    /// A tag has the wrong type or shape.
    #[error("{part}, tag {tag}: {problem}")]
    Tag {
        /// `signature header` or `main header`.
        part: &'static str,
        /// The tag number.
        tag: u32,
        /// What is wrong.
        problem: String,
    },
    /// A part exceeds one of the [`RpmLimits`].
    #[error("{part}: {problem} (limit {limit})")]
    Limit {
        /// Which part.
        part: &'static str,
        /// Which cap was hit.
        problem: String,
        /// The cap.
        limit: u64,
    },
    /// A digest recorded in the package does not match its bytes.
    #[error("{digest} mismatch: recorded {recorded}, computed {computed}")]
    Digest {
        /// Which digest (`header SHA-256`, `payload SHA-256`...).
        digest: String,
        /// The value in the package.
        recorded: String,
        /// The value of the bytes read.
        computed: String,
    },
    /// A source package (`.src.rpm`), not publishable in a binary repo.
    #[error("a source package (no SOURCERPM tag{0}): only binary packages are accepted")]
    SourcePackage(&'static str),
    /// A header field is missing or invalid.
    #[error("field {field}: {problem}")]
    Field {
        /// The field's name (`NAME`, `VERSION`...).
        field: &'static str,
        /// What is wrong.
        problem: String,
    },
    /// The package cannot be signed (see [`sign_rpm`]).
    #[error("signing the .rpm: {0}")]
    Sign(String),
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_build;
#[cfg(test)]
mod tests_hostile;
#[cfg(test)]
mod tests_sign;
