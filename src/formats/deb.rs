//! Debian binary packages (`.deb`): reading one, checking it the way `dpkg`
//! would, and rendering its entry of a `Packages` index.
//!
//! Pure code: bytes in, values out. [`read_deb`] streams a `.deb` once,
//! hashing every byte (size, MD5, SHA-1, SHA-256, SHA-512 of the file),
//! walking its `ar` members in the order dpkg requires (`debian-binary`,
//! `control.tar[.gz|.xz|.zst]`, `data.tar[.gz|.xz|.zst]`, `_`-prefixed extras
//! skipped), parsing the `control` stanza and walking the data tar's headers
//! without keeping its contents. Every inflated byte is counted against
//! [`DebLimits`], so a decompression bomb costs at most the cap.
//! [`DebPackage::stanza`] renders what `dpkg-scanpackages` writes for the same
//! file. Reference: `/work/shared/reference/formats.md` section 2.2-2.3.

mod ar;
mod control;
mod decompress;
mod names;
mod read;
pub mod release;
mod stanza;
pub mod suite;
mod tar;

pub use control::{MAX_FILE_NAME, parse_control};
pub use names::{
    MAX_ARCH, is_valid_arch, is_valid_package_name, is_valid_version, version_problem,
};
pub use read::read_deb;
pub use suite::{DebRecord, DebSuite};

use serde::{Deserialize, Serialize};

/// Limits applied while reading an untrusted `.deb`. The defaults fit every
/// package Debian ships (its largest data members inflate to a few GiB, its
/// largest `control` files are a few KiB).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DebLimits {
    /// Cap on the inflated size of `control.tar` (default 16 MiB).
    pub max_control_tar_bytes: u64,
    /// Cap on the `control` file itself (default 1 MiB; Debian's largest are
    /// under 64 KiB).
    pub max_control_file: u64,
    /// Cap on the entries of `control.tar` (default 1,000; dpkg knows about a
    /// dozen control files).
    pub max_control_entries: u64,
    /// Cap on the inflated size of `data.tar` (default 16 GiB).
    pub max_data_bytes: u64,
    /// Cap on the entries (files, directories, links) of `data.tar`
    /// (default 500,000).
    pub max_data_entries: u64,
    /// Largest inflated/compressed ratio of a member (default 250; real
    /// packages stay under 20, gzip cannot exceed about 1,030), applied once
    /// a member has inflated past [`DebLimits::ratio_floor`].
    pub max_ratio: u64,
    /// Inflated bytes a member may always reach, whatever its ratio
    /// (default 64 MiB), so tiny members of zeros are not refused.
    pub ratio_floor: u64,
    /// Memory the xz decoder may use (default 256 MiB; `xz -9` needs 65 MiB).
    pub xz_memory: u64,
    /// Largest zstd window (default 128 MiB, libzstd's default limit, which
    /// dpkg inherits).
    pub zstd_window: u64,
}

impl Default for DebLimits {
    fn default() -> Self {
        Self {
            max_control_tar_bytes: 16 << 20,
            max_control_file: 1 << 20,
            max_control_entries: 1_000,
            max_data_bytes: 16 << 30,
            max_data_entries: 500_000,
            max_ratio: 250,
            ratio_floor: 64 << 20,
            xz_memory: 256 << 20,
            zstd_window: 128 << 20,
        }
    }
}

/// One `.deb` as read: its control fields and what a `Packages` entry adds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DebPackage {
    /// The `control` fields in file order, names as written; multi-line
    /// values are joined with `\n`, one logical line each (a ` .` line is an
    /// empty line, leading space and trailing whitespace removed), as dpkg
    /// parses them.
    pub control: Vec<(String, String)>,
    /// `Package`.
    pub package: String,
    /// `Version`, with its epoch if any.
    pub version: String,
    /// `Architecture` (`all` for architecture-independent packages).
    pub architecture: String,
    /// The source package's name (`Source` without its version), or
    /// `Package` when there is no `Source` field.
    pub source: String,
    /// Size of the `.deb` file in bytes.
    pub size: u64,
    /// MD5 of the file, lowercase hex.
    pub md5: String,
    /// SHA-1 of the file, lowercase hex.
    pub sha1: String,
    /// SHA-256 of the file, lowercase hex.
    pub sha256: String,
    /// SHA-512 of the file, lowercase hex.
    pub sha512: String,
}

impl DebPackage {
    /// The value of control field `name` (case-insensitive), if present.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.control
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The canonical file name, `<package>_<version without epoch>_<arch>.deb`,
    /// as `dpkg-name` and Debian's archive name files.
    pub fn file_name(&self) -> String {
        let version = match self.version.split_once(':') {
            Some((_, rest)) => rest,
            None => &self.version,
        };
        format!("{}_{}_{}.deb", self.package, version, self.architecture)
    }

    /// The pool directory, `pool/<component>/<prefix>/<source>`: prefix is the
    /// source's first letter, or `lib` and the next letter for sources starting
    /// with `lib` (Debian's rule: `pool/main/libo/libonig`).
    pub fn pool_dir(&self, component: &str) -> String {
        let source = &self.source;
        let prefix = if source.len() > 3 && source.starts_with("lib") {
            &source[..4]
        } else {
            &source[..source.len().min(1)]
        };
        format!("pool/{component}/{prefix}/{source}")
    }

    /// Whether the package is `Architecture: all`.
    pub fn is_all(&self) -> bool {
        self.architecture == "all"
    }

    /// The package's `Packages` entry, as `dpkg-scanpackages` writes it, with
    /// `filename` as `Filename`: the control fields in dpkg's order for index
    /// stanzas, `Filename`, `Size`, `MD5sum`, `SHA1`, `SHA256` and `SHA512`
    /// where dpkg puts its checksums. Ends with one `\n`; join stanzas with a
    /// blank line.
    pub fn stanza(&self, filename: &str) -> String {
        stanza::render(self, filename)
    }
}

/// Why a `.deb` was refused. Messages name the member, entry or field.
#[derive(Debug, thiserror::Error)]
pub enum DebError {
    /// Reading the input failed.
    #[error("reading the .deb failed: {0}")]
    Io(#[from] std::io::Error),
    /// The input is not an `ar` archive.
    #[error("not a .deb: {0}")]
    NotDeb(String),
    /// The file ends early.
    #[error("the .deb is truncated: it ends inside {0}")]
    Truncated(String),
    /// The `ar` structure is broken.
    #[error("broken ar archive at byte {offset}: {problem}")]
    Ar {
        /// Offset of the bad header.
        offset: u64,
        /// What is wrong.
        problem: String,
    },
    /// A member is missing, misplaced, unknown or unsupported.
    #[error("member {member:?}: {problem}")]
    Member {
        /// The member's name.
        member: String,
        /// What is wrong.
        problem: String,
    },
    /// A compressed member does not decompress.
    #[error("member {member:?} does not decompress: {problem}")]
    Compression {
        /// The member's name.
        member: String,
        /// The decoder's message.
        problem: String,
    },
    /// A member exceeds one of the [`DebLimits`].
    #[error("member {member:?}: {problem} (limit {limit})")]
    Limit {
        /// The member's name.
        member: String,
        /// Which cap was hit.
        problem: String,
        /// The cap.
        limit: u64,
    },
    /// A tar stream is unreadable, or holds an entry dpkg would refuse.
    #[error("{member}: {problem}")]
    Tar {
        /// The member's name, and the entry if known.
        member: String,
        /// What is wrong.
        problem: String,
    },
    /// The `control` file is not one well-formed deb822 stanza.
    #[error("control file, line {line}: {problem}")]
    Control {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        problem: String,
    },
    /// A control field is missing or its value is invalid.
    #[error("control field {field}: {problem}")]
    Field {
        /// The field's name.
        field: String,
        /// What is wrong.
        problem: String,
    },
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_build;
#[cfg(test)]
mod tests_hostile;
