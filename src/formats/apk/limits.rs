//! Limits on everything that reaches an `APKINDEX`, matched to what the apk
//! clients parse, and a check of rendered index text against them.
//!
//! apk-tools reads the index line by line into one fixed buffer of
//! `apk_io_bufsize = 128*1024` bytes (2.14.10 `src/io.c` line 35, 3.0.6
//! `src/io.c` line 39). A line that does not fit, with its `\n`, fails the
//! read of the *whole* index: 2.14 "No buffer space available"
//! (`apk_istream_get_delim`, `src/io.c` line 171), 3.0 "v2 database format
//! error" (`__apk_istream_fill` returns `APKE_BUFFER_SIZE`, `src/io.c` line 154,
//! and `apk_db_fdb_read` ends in `err_fmt`, `src/database.c` line 1048). 3.0
//! may also keep up to 7 bytes of the buffer for alignment
//! (`APK_ISTREAM_ALIGN_SYNC 8`, `src/io.c` line 37), hence [`CLIENT_MAX_LINE`].
//! Measured with both clients: a 126,500-byte `D:` line reads, a 137,500-byte
//! one breaks the repository.
//!
//! Uploads are held to half that per line ([`MAX_INDEX_LINE`]) and to smaller
//! per-field caps ([`TEXT_FIELDS`]), so no combination of fields can get near
//! the client's buffer. docs/limits.md lists them all with their sources.

use super::ApkRecord;

/// apk-tools' line buffer (`apk_io_bufsize`), the same in 2.14 and 3.x.
pub const CLIENT_LINE_BUFFER: usize = 128 * 1024;

/// Longest index line, without its `\n`, that apk-tools 2.14 and 3.x are both
/// sure to read: the buffer, less 7 bytes of 3.x alignment and the `\n`.
pub const CLIENT_MAX_LINE: usize = CLIENT_LINE_BUFFER - 8;

/// Longest index line, `X:` and value without the `\n`, that an upload may
/// produce: half of what the clients read.
pub const MAX_INDEX_LINE: usize = 64 * 1024;

/// Largest `provider_priority` (`k:`): apk-tools keeps it in an
/// `unsigned short` (2.14 and 3.0 `src/apk_package.h`); a larger one wraps.
pub const MAX_PROVIDER_PRIORITY: u64 = u16::MAX as u64;

/// Largest `builddate` (`t:`): apk-tools 2.14 parses numbers as
/// `unsigned int` (`apk_blob_pull_uint`, `src/blob.c` line 442); year 2106.
pub const MAX_BUILD_TIME: u64 = u32::MAX as u64;

/// Installed-size allowance per data entry, on top of the files' bytes:
/// block rounding (up to 64 KiB blocks) and directory blocks.
pub const INSTALLED_SIZE_PER_ENTRY: u64 = 64 << 10;

/// Installed-size allowance per package, on top of the per-entry one.
pub const INSTALLED_SIZE_SLACK: u64 = 16 << 20;

/// Default cap on the entries of a data member (see `ApkLimits::max_entries`).
pub const DEFAULT_MAX_ENTRIES: u64 = 500_000;

/// A single-valued text field of the index and its cap in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextField {
    /// The index letter (`T` for `T:`).
    pub letter: char,
    /// The `.PKGINFO` key.
    pub key: &'static str,
    /// Longest value, in bytes.
    pub max_bytes: usize,
}

/// The single-valued text fields and their caps. `P:` and `V:` are also held
/// together to 255 bytes as `<name>-<version>.apk`, a file name.
pub const TEXT_FIELDS: [TextField; 9] = [
    TextField {
        letter: 'P',
        key: "pkgname",
        max_bytes: 255,
    },
    TextField {
        letter: 'V',
        key: "pkgver",
        max_bytes: 255,
    },
    TextField {
        letter: 'A',
        key: "arch",
        max_bytes: 64,
    },
    TextField {
        letter: 'T',
        key: "pkgdesc",
        max_bytes: 4096,
    },
    TextField {
        letter: 'U',
        key: "url",
        max_bytes: 4096,
    },
    TextField {
        letter: 'L',
        key: "license",
        max_bytes: 4096,
    },
    TextField {
        letter: 'o',
        key: "origin",
        max_bytes: 255,
    },
    TextField {
        letter: 'm',
        key: "maintainer",
        max_bytes: 1024,
    },
    TextField {
        letter: 'c',
        key: "commit",
        max_bytes: 256,
    },
];

/// The list fields: `.PKGINFO` repeats the key, the index joins the atoms
/// with spaces on one line, held to [`MAX_INDEX_LINE`].
pub const LIST_FIELDS: [(char, &str); 3] =
    [('D', "depend"), ('p', "provides"), ('i', "install_if")];

/// A package over one of the limits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    /// A text field is longer than its cap.
    #[error(
        "{key} is {actual} bytes, more than the {max} allowed (index field `{letter}:`; see docs/limits.md)"
    )]
    Text {
        /// The `.PKGINFO` key.
        key: &'static str,
        /// The index letter.
        letter: char,
        /// Its length.
        actual: usize,
        /// The cap.
        max: usize,
    },
    /// A list's index line would be longer than [`MAX_INDEX_LINE`].
    #[error(
        "{key}: its index line `{letter}:` would be {actual} bytes or more, more than the {max} \
         allowed (apk-tools reads each index line into a 128 KiB buffer, and one longer line makes \
         the whole repository's index unreadable; see docs/limits.md)"
    )]
    ListLine {
        /// The `.PKGINFO` key.
        key: &'static str,
        /// The index letter.
        letter: char,
        /// The line's length so far.
        actual: usize,
        /// The cap.
        max: usize,
    },
    /// A number is larger than apk-tools holds.
    #[error(
        "{key} {actual} is more than {max} ({why}; index field `{letter}:`; see docs/limits.md)"
    )]
    Number {
        /// The `.PKGINFO` key.
        key: &'static str,
        /// The index letter.
        letter: char,
        /// The value.
        actual: u64,
        /// The cap.
        max: u64,
        /// Why the cap.
        why: &'static str,
    },
    /// `.PKGINFO` `size` is more than the data could take on disk.
    #[error(
        "size {actual} is more than the package's files can take on disk: at most {max} \
         ({content} bytes in {entries} entries, plus 64 KiB per entry and 16 MiB; see docs/limits.md)"
    )]
    InstalledSize {
        /// The declared size.
        actual: u64,
        /// The bound.
        max: u64,
        /// Bytes of the regular files.
        content: u64,
        /// Entries of the data member.
        entries: u64,
    },
    /// The data member has too many entries.
    #[error("the data member has more than {max} entries (see docs/limits.md)")]
    Entries {
        /// The cap.
        max: u64,
    },
}

impl LimitError {
    /// The error for list `key` whose index line reached `actual` bytes.
    pub fn list_line(key: &'static str, actual: usize) -> Self {
        let letter = LIST_FIELDS
            .iter()
            .find(|(_, k)| *k == key)
            .map_or('?', |(l, _)| *l);
        LimitError::ListLine {
            key,
            letter,
            actual,
            max: MAX_INDEX_LINE,
        }
    }
}

/// Checks every field of `record` that comes from `.PKGINFO` against the
/// limits (not `C:`, `S:` or `I:`, which the reader computes or checks
/// against the data). Used by the reader on every upload.
pub fn check_record(record: &ApkRecord) -> Result<(), LimitError> {
    let values = [
        &record.name,
        &record.version,
        &record.arch,
        &record.description,
        &record.url,
        &record.license,
        &record.origin,
        &record.maintainer,
        &record.commit,
    ];
    for (field, value) in TEXT_FIELDS.iter().zip(values) {
        if value.len() > field.max_bytes {
            return Err(LimitError::Text {
                key: field.key,
                letter: field.letter,
                actual: value.len(),
                max: field.max_bytes,
            });
        }
    }
    for ((_, key), list) in
        LIST_FIELDS
            .iter()
            .zip([&record.depends, &record.provides, &record.install_if])
    {
        if list.is_empty() {
            continue;
        }
        let line = 2 + list.iter().map(|a| a.len() + 1).sum::<usize>() - 1;
        if line > MAX_INDEX_LINE {
            return Err(LimitError::list_line(key, line));
        }
    }
    if let Some(k) = record
        .provider_priority
        .filter(|&k| k > MAX_PROVIDER_PRIORITY)
    {
        return Err(LimitError::Number {
            key: "provider_priority",
            letter: 'k',
            actual: k,
            max: MAX_PROVIDER_PRIORITY,
            why: "apk-tools keeps it in 16 bits and a larger one wraps",
        });
    }
    if let Some(t) = record.build_time.filter(|&t| t > MAX_BUILD_TIME) {
        return Err(LimitError::Number {
            key: "builddate",
            letter: 't',
            actual: t,
            max: MAX_BUILD_TIME,
            why: "apk-tools 2.14 reads it as a 32-bit number",
        });
    }
    Ok(())
}

mod text;
pub use text::{LimitProblem, Severity, check_index_text, check_rendered_record};

#[cfg(test)]
mod tests;
