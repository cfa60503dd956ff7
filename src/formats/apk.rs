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
pub mod segmented;
mod ustar;

pub use alpine::Alpine;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use sha1::{Digest as _, Sha1};
use sha2::Sha256;
use std::io::{BufRead, Read};

/// Limits applied while reading an untrusted `.apk`.
#[derive(Debug, Clone, Copy)]
pub struct ApkLimits {
    /// Hard cap on the inflated size of the data member, whatever `.PKGINFO` says.
    pub max_data_bytes: u64,
    /// Cap on the inflated size of the signature and control members together.
    pub max_control_bytes: u64,
    /// Cap on one `.PKGINFO` line.
    pub max_pkginfo_line: usize,
}

impl Default for ApkLimits {
    fn default() -> Self {
        Self {
            max_data_bytes: 8 << 30,
            max_control_bytes: 16 << 20,
            max_pkginfo_line: 64 << 10,
        }
    }
}

/// One package as it appears in an `APKINDEX`: everything the index needs,
/// so an index can be rendered from records alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
}

/// Extra inflated bytes the data member may have beyond `.PKGINFO` `size`:
/// tar end blocks, GNU tar's padding to 10 KiB records, and slack for long
/// names and pax headers.
pub const DATA_SLACK_BYTES: u64 = 1 << 20;

/// Extra inflated bytes allowed per tar header block read in the data member:
/// a file's header, its pax header (with a few xattrs) and its padding fit
/// in what its two header blocks bring.
pub const DATA_BYTES_PER_HEADER: u64 = 2048;

/// Reads and checks one `.apk`, streaming: splits the gzip members, parses
/// `.PKGINFO`, computes `C:` and the file's SHA-256, verifies the data member
/// against `datahash` and each file's `APK-TOOLS.checksum.SHA1`, and refuses
/// unsafe paths and members that inflate beyond `limits`.
///
/// Memory stays bounded whatever the input: one read buffer, one tar block,
/// one `.PKGINFO` line (at most [`ApkLimits::max_pkginfo_line`]). Inflated
/// sizes are capped while reading: the signature and control members together
/// at [`ApkLimits::max_control_bytes`]; the data member at `.PKGINFO` `size` +
/// [`DATA_SLACK_BYTES`] + [`DATA_BYTES_PER_HEADER`] per tar header, and never
/// beyond [`ApkLimits::max_data_bytes`].
pub fn read_package<R: Read>(reader: R, limits: &ApkLimits) -> Result<ApkPackage, ApkError> {
    let mut stored = StoredBytes::new(reader);

    // 1. Signature member: only `.SIGN.*` entries, tar end blocks cut.
    start_member(&mut stored, Part::Signature)?;
    stored.begin_member(MemberDigest::None);
    let sig_inflated = {
        let budget = Budget::Control(limits.max_control_bytes);
        let mut tar = ustar::Reader::new(
            Member::new(
                &mut stored,
                Part::Signature,
                budget,
                limits.max_control_bytes,
            ),
            Part::Signature.name(),
        );
        read_signature_member(&mut tar)?;
        tar.source_mut().finish()?
    };

    // 2. Control member: `.PKGINFO` and scripts; its stored bytes give `C:`.
    start_member(&mut stored, Part::Control)?;
    stored.begin_member(MemberDigest::Sha1);
    let info = {
        let budget = Budget::Control(limits.max_control_bytes);
        let left = limits.max_control_bytes.saturating_sub(sig_inflated);
        let mut tar = ustar::Reader::new(
            Member::new(&mut stored, Part::Control, budget, left),
            Part::Control.name(),
        );
        let info = read_control_member(&mut tar, limits)?;
        tar.source_mut().finish()?;
        info
    };
    let control_sha1 = std::mem::take(&mut stored.member_sha1).finalize();
    let info = info.validate()?;

    // 3. Data member: checked against `datahash` and per-file SHA-1s.
    start_member(&mut stored, Part::Data)?;
    stored.begin_member(MemberDigest::Sha256);
    {
        let budget = Budget::Data {
            max: limits.max_data_bytes,
            size: info.installed_size,
        };
        let limit = info
            .installed_size
            .saturating_add(DATA_SLACK_BYTES)
            .min(limits.max_data_bytes);
        let mut member = Member::new(&mut stored, Part::Data, budget, limit);
        member.per_header = DATA_BYTES_PER_HEADER;
        let mut tar = ustar::Reader::new(member, Part::Data.name());
        read_data_member(&mut tar)?;
        tar.source_mut().finish()?;
    }
    let data_sha256 = hex::encode(std::mem::take(&mut stored.member_sha256).finalize());
    if data_sha256 != info.datahash {
        return Err(ApkError::Corrupt(format!(
            "the data member does not match .PKGINFO datahash (datahash {}, data member SHA-256 {data_sha256})",
            info.datahash
        )));
    }

    // 4. Nothing after the data member.
    let rest = stored.fill_buf()?;
    if !rest.is_empty() {
        return Err(ApkError::Format(if rest[0] == GZIP_MAGIC[0] {
            "a 4th gzip member follows the data member (an .apk has exactly three)".to_owned()
        } else {
            "trailing bytes after the data member".to_owned()
        }));
    }

    let record = ApkRecord {
        checksum: format!("Q1{}", BASE64.encode(control_sha1)),
        name: info.name,
        version: info.version,
        arch: info.arch,
        file_size: stored.total,
        installed_size: info.installed_size,
        description: info.description,
        url: info.url,
        license: info.license,
        origin: info.origin,
        maintainer: info.maintainer,
        build_time: info.build_time,
        commit: info.commit,
        provider_priority: info.provider_priority,
        depends: info.depends,
        provides: info.provides,
        install_if: info.install_if,
        datahash: info.datahash,
        sha256: hex::encode(stored.file_sha256.finalize()),
    };
    Ok(ApkPackage { record })
}

/// Whether `name` is a valid package name: `[A-Za-z0-9][A-Za-z0-9._+-]*`
/// without `..`, so that `<name>-<version>.apk` is a plain file name.
pub fn is_valid_pkgname(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphanumeric())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'+' | b'-'))
        && !name.contains("..")
}

/// Whether `arch` is a safe architecture token, `[A-Za-z0-9_]+` (`x86_64`, `noarch`, ...).
pub fn is_valid_arch(arch: &str) -> bool {
    !arch.is_empty() && arch.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Whether `version` is a valid apk version, as apk-tools 3 `apk_version_validate`
/// decides: `digits{.digits}*[letter]{_suffix[digits]}*[~hash][-rN]`.
pub fn is_valid_version(version: &str) -> bool {
    // Token kinds in the order they may follow each other.
    #[derive(PartialEq, PartialOrd)]
    enum Token {
        Digit,
        Letter,
        Suffix,
        SuffixNo,
        Hash,
        Revision,
    }
    const SUFFIXES: [&[u8]; 9] = [
        b"alpha", b"beta", b"pre", b"rc", b"cvs", b"svn", b"git", b"hg", b"p",
    ];
    let b = version.as_bytes();
    let span = |from: usize, pred: fn(&u8) -> bool| {
        from + b[from..].iter().take_while(|c| pred(c)).count()
    };
    let mut i = span(0, u8::is_ascii_digit);
    if i == 0 {
        return false;
    }
    let mut token = Token::Digit;
    while i < b.len() {
        match b[i] {
            b'a'..=b'z' if token <= Token::Digit => {
                token = Token::Letter;
                i += 1;
            }
            b'.' if token <= Token::Digit => {
                let end = span(i + 1, u8::is_ascii_digit);
                if end == i + 1 {
                    return false;
                }
                i = end;
            }
            b'0'..=b'9' if token == Token::Suffix => {
                token = Token::SuffixNo;
                i = span(i, u8::is_ascii_digit);
            }
            b'_' if token <= Token::SuffixNo => {
                let end = span(i + 1, u8::is_ascii_lowercase);
                if !SUFFIXES.contains(&&b[i + 1..end]) {
                    return false;
                }
                token = Token::Suffix;
                i = end;
            }
            b'~' if token < Token::Hash => {
                let end = span(i + 1, u8::is_ascii_hexdigit);
                if end == i + 1 {
                    return false;
                }
                token = Token::Hash;
                i = end;
            }
            b'-' if token < Token::Revision && b.get(i + 1) == Some(&b'r') => {
                let end = span(i + 2, u8::is_ascii_digit);
                if end == i + 2 {
                    return false;
                }
                token = Token::Revision;
                i = end;
            }
            _ => return false,
        }
    }
    true
}

// ---- Reading machinery ---------------------------------------------------

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Longest `<name>-<version>.apk`: it is a file name in the repository.
const MAX_FILE_NAME: usize = 255;

/// The three gzip members of an `.apk`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Signature,
    Control,
    Data,
}

impl Part {
    fn name(self) -> &'static str {
        match self {
            Part::Signature => "signature member",
            Part::Control => "control member",
            Part::Data => "data member",
        }
    }
}

/// Checks that another gzip member starts here, with a clear error if not.
fn start_member<R: Read>(stored: &mut StoredBytes<R>, part: Part) -> Result<(), ApkError> {
    let head = stored.fill_buf()?;
    let missing = match part {
        Part::Signature => "the file is empty",
        Part::Control => "truncated: the file ends after the signature member (no control member)",
        Part::Data => "truncated: the file ends after the control member (no data member)",
    };
    if head.is_empty() {
        return Err(ApkError::Format(missing.to_owned()));
    }
    if head[0] != GZIP_MAGIC[0] || head.get(1).is_some_and(|&b| b != GZIP_MAGIC[1]) {
        return Err(ApkError::Format(match part {
            Part::Signature => {
                "not a gzip file (an .apk is three concatenated gzip members)".to_owned()
            }
            _ => format!("the {} is not gzip data", part.name()),
        }));
    }
    Ok(())
}

/// Which digest of the current member's stored (compressed) bytes to keep.
#[derive(Debug, Clone, Copy)]
enum MemberDigest {
    None,
    Sha1,
    Sha256,
}

/// The `.apk` bytes as stored: a buffered reader that hashes exactly the
/// bytes its consumers take, so that gzip member boundaries, found by
/// [`flate2::bufread::GzDecoder`] stopping at the end of one member, split the
/// hashes exactly where the members split.
struct StoredBytes<R> {
    inner: R,
    buf: Box<[u8]>,
    pos: usize,
    filled: usize,
    /// Bytes consumed so far: the file size once everything is read.
    total: u64,
    file_sha256: Sha256,
    member: MemberDigest,
    member_sha1: Sha1,
    member_sha256: Sha256,
    /// Set when `inner` failed, to tell I/O errors from bad gzip data.
    source_failed: bool,
}

impl<R: Read> StoredBytes<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            buf: vec![0; 64 << 10].into_boxed_slice(),
            pos: 0,
            filled: 0,
            total: 0,
            file_sha256: Sha256::new(),
            member: MemberDigest::None,
            member_sha1: Sha1::new(),
            member_sha256: Sha256::new(),
            source_failed: false,
        }
    }

    /// Starts hashing a new member; take the result from `member_sha1` or
    /// `member_sha256` once the member's decoder is done.
    fn begin_member(&mut self, digest: MemberDigest) {
        self.member = digest;
        self.member_sha1 = Sha1::new();
        self.member_sha256 = Sha256::new();
    }
}

impl<R: Read> BufRead for StoredBytes<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        if self.pos == self.filled {
            self.pos = 0;
            self.filled = 0;
            loop {
                match self.inner.read(&mut self.buf) {
                    Ok(n) => {
                        self.filled = n;
                        break;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        self.source_failed = true;
                        return Err(e);
                    }
                }
            }
        }
        Ok(&self.buf[self.pos..self.filled])
    }

    fn consume(&mut self, amt: usize) {
        let amt = amt.min(self.filled - self.pos);
        let chunk = &self.buf[self.pos..self.pos + amt];
        self.file_sha256.update(chunk);
        match self.member {
            MemberDigest::None => {}
            MemberDigest::Sha1 => self.member_sha1.update(chunk),
            MemberDigest::Sha256 => self.member_sha256.update(chunk),
        }
        self.total += amt as u64;
        self.pos += amt;
    }
}

impl<R: Read> Read for StoredBytes<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(out.len());
        out[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

/// What an inflation limit was derived from, for the error message.
#[derive(Debug, Clone, Copy)]
enum Budget {
    Control(u64),
    Data { max: u64, size: u64 },
}

/// One gzip member, inflated under a cap, as a tar [`ustar::Source`].
struct Member<'a, R: Read> {
    gz: flate2::bufread::GzDecoder<&'a mut StoredBytes<R>>,
    part: Part,
    budget: Budget,
    inflated: u64,
    limit: u64,
    /// Added to `limit` for every tar header block (data member only).
    per_header: u64,
}

impl<'a, R: Read> Member<'a, R> {
    fn new(stored: &'a mut StoredBytes<R>, part: Part, budget: Budget, limit: u64) -> Self {
        Self {
            gz: flate2::bufread::GzDecoder::new(stored),
            part,
            budget,
            inflated: 0,
            limit,
            per_header: 0,
        }
    }

    fn error(&self, e: std::io::Error) -> ApkError {
        if self.gz.get_ref().source_failed {
            ApkError::Io(e)
        } else if e.kind() == std::io::ErrorKind::UnexpectedEof {
            ApkError::Format(format!(
                "truncated: the file ends inside the {}",
                self.part.name()
            ))
        } else {
            ApkError::Format(format!("the {} is not valid gzip: {e}", self.part.name()))
        }
    }

    fn too_large(&self) -> ApkError {
        ApkError::TooLarge(match self.budget {
            Budget::Control(max) => {
                format!("the signature and control members inflate to more than {max} bytes")
            }
            Budget::Data { max, .. } if self.limit >= max => {
                format!("the data member inflates to more than {max} bytes")
            }
            Budget::Data { size, .. } => format!(
                "the data member inflates to more than {} bytes, far more than .PKGINFO size {size} \
                 (allowed: size + {DATA_SLACK_BYTES} + {DATA_BYTES_PER_HEADER} per tar header)",
                self.limit
            ),
        })
    }

    /// Reads to the end of the member, so that the gzip trailer is checked and
    /// the next member starts right after it. Returns the inflated size.
    /// Whatever follows the tar must be zeros (GNU tar pads with them).
    fn finish(&mut self) -> Result<u64, ApkError> {
        let mut buf = [0u8; 8192];
        loop {
            let n = ustar::Source::read(self, &mut buf)?;
            if n == 0 {
                return Ok(self.inflated);
            }
            if buf[..n].iter().any(|&b| b != 0) {
                return Err(ApkError::Format(format!(
                    "{}: data after the tar end-of-archive blocks",
                    self.part.name()
                )));
            }
        }
    }
}

impl<R: Read> ustar::Source for Member<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, ApkError> {
        // Ask for at most one byte beyond the limit: enough to detect it, never
        // inflating more than a buffer past it.
        let room = self.limit.saturating_sub(self.inflated).saturating_add(1);
        let want = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        let n = self.gz.read(&mut buf[..want]).map_err(|e| self.error(e))?;
        self.inflated += n as u64;
        if self.inflated > self.limit {
            return Err(self.too_large());
        }
        Ok(n)
    }

    fn on_header(&mut self) {
        if let Budget::Data { max, .. } = self.budget {
            self.limit = self.limit.saturating_add(self.per_header).min(max);
        }
    }
}

fn read_signature_member<S: ustar::Source>(tar: &mut ustar::Reader<S>) -> Result<(), ApkError> {
    let mut signatures = 0;
    loop {
        match tar.next()? {
            ustar::Next::Entry(entry) => {
                if entry.name == b".PKGINFO" {
                    return Err(ApkError::Format(
                        "the first gzip member holds .PKGINFO, not a signature: unsigned packages are not supported"
                            .to_owned(),
                    ));
                }
                if !entry.name.starts_with(b".SIGN.") || entry.kind != ustar::Kind::Regular {
                    return Err(ApkError::Format(format!(
                        "signature member: unexpected entry {:?} (only .SIGN.* files belong there)",
                        entry.display_name()
                    )));
                }
                signatures += 1;
            }
            ustar::Next::ZeroBlock => {
                return Err(ApkError::Format(
                    "signature member: the tar keeps its end-of-archive blocks, so apk would stop \
                     reading there (the tar must be cut)"
                        .to_owned(),
                ));
            }
            ustar::Next::Eof => break,
        }
    }
    if signatures == 0 {
        return Err(ApkError::Format(
            "signature member: no .SIGN.* entry".to_owned(),
        ));
    }
    Ok(())
}

fn read_control_member<S: ustar::Source>(
    tar: &mut ustar::Reader<S>,
    limits: &ApkLimits,
) -> Result<PkgInfo, ApkError> {
    let mut info: Option<PkgInfo> = None;
    loop {
        match tar.next()? {
            ustar::Next::Entry(entry) => {
                let name = entry.display_name();
                if entry.name == b".PKGINFO" {
                    if entry.kind != ustar::Kind::Regular {
                        return Err(ApkError::Format(
                            "control member: .PKGINFO is not a regular file".to_owned(),
                        ));
                    }
                    if info.is_some() {
                        return Err(ApkError::Format(
                            "control member: two .PKGINFO entries".to_owned(),
                        ));
                    }
                    info = Some(parse_pkginfo(tar, limits.max_pkginfo_line)?);
                } else if entry.name == b".INSTALL" {
                    return Err(ApkError::Format(
                        "control member: .INSTALL is an apk v1 script, not supported by apk 2 or 3"
                            .to_owned(),
                    ));
                } else if !entry.name.starts_with(b".") || entry.name.contains(&b'/') {
                    return Err(ApkError::Format(format!(
                        "control member: unexpected entry {name:?} (only .PKGINFO and dot-file scripts belong there)"
                    )));
                }
            }
            ustar::Next::ZeroBlock => {
                return Err(ApkError::Format(
                    "control member: the tar keeps its end-of-archive blocks, so apk would stop \
                     reading before the data (the tar must be cut)"
                        .to_owned(),
                ));
            }
            ustar::Next::Eof => break,
        }
    }
    info.ok_or_else(|| ApkError::Format("control member: no .PKGINFO".to_owned()))
}

fn read_data_member<S: ustar::Source>(tar: &mut ustar::Reader<S>) -> Result<(), ApkError> {
    let mut buf = vec![0u8; 32 << 10];
    loop {
        let entry = match tar.next()? {
            ustar::Next::Entry(entry) => entry,
            ustar::Next::ZeroBlock => {
                // End of archive: a second zero block (or the end) must follow.
                return match tar.next()? {
                    ustar::Next::Entry(entry) => Err(ApkError::Format(format!(
                        "data member: entry {:?} after an end-of-archive block",
                        entry.display_name()
                    ))),
                    ustar::Next::ZeroBlock | ustar::Next::Eof => Ok(()),
                };
            }
            ustar::Next::Eof => return Ok(()),
        };
        let name = entry.display_name();
        if !is_safe_path(&entry.name) {
            return Err(ApkError::UnsafePath(name));
        }
        match entry.kind {
            ustar::Kind::Regular => {
                let Some(expected) = entry.sha1 else {
                    return Err(ApkError::Format(format!(
                        "{name}: regular file without an {} pax header (apk 3 refuses to install it)",
                        ustar::PAX_SHA1
                    )));
                };
                let mut hasher = Sha1::new();
                loop {
                    let n = tar.read_data(&mut buf)?;
                    if n == 0 {
                        break;
                    }
                    hasher.update(&buf[..n]);
                }
                let actual: [u8; 20] = hasher.finalize().into();
                if actual != expected {
                    return Err(ApkError::Corrupt(format!(
                        "{name}: content SHA-1 {} does not match its {} {}",
                        hex::encode(actual),
                        ustar::PAX_SHA1,
                        hex::encode(expected)
                    )));
                }
            }
            // A hard link names another entry of the archive; apk resolves it
            // under the install root, so it must not climb out of it.
            ustar::Kind::HardLink if !is_safe_path(&entry.link) => {
                return Err(ApkError::UnsafePath(format!(
                    "{name} (hard link to {})",
                    String::from_utf8_lossy(&entry.link)
                )));
            }
            // Symlink targets are not checked: absolute targets (`/bin/busybox`)
            // and `..` (`../lib/libfoo.so`) are normal, and they are resolved on
            // the client at run time, not written through.
            _ => {}
        }
    }
}

/// gzip like `gzip -n -9` (what abuild uses): no name, mtime 0, OS byte "Unix".
fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut encoder = flate2::GzBuilder::new()
        .mtime(0)
        .operating_system(3)
        .write(Vec::new(), flate2::Compression::best());
    encoder
        .write_all(data)
        .expect("writing to a Vec cannot fail");
    encoder.finish().expect("writing to a Vec cannot fail")
}

/// A relative path without `..` components (and not empty).
fn is_safe_path(path: &[u8]) -> bool {
    !path.is_empty() && path[0] != b'/' && !path.split(|&b| b == b'/').any(|c| c == b"..")
}

/// `.PKGINFO` as read, before validation.
#[derive(Debug, Default)]
struct PkgInfo {
    pkgname: Option<String>,
    pkgver: Option<String>,
    pkgdesc: Option<String>,
    url: Option<String>,
    size: Option<String>,
    license: Option<String>,
    arch: Option<String>,
    origin: Option<String>,
    maintainer: Option<String>,
    builddate: Option<String>,
    commit: Option<String>,
    provider_priority: Option<String>,
    datahash: Option<String>,
    depends: Vec<String>,
    provides: Vec<String>,
    install_if: Vec<String>,
}

/// `.PKGINFO` after validation.
#[derive(Debug)]
struct ValidPkgInfo {
    name: String,
    version: String,
    arch: String,
    installed_size: u64,
    description: String,
    url: String,
    license: String,
    origin: String,
    maintainer: String,
    build_time: Option<u64>,
    commit: String,
    provider_priority: Option<u64>,
    datahash: String,
    depends: Vec<String>,
    provides: Vec<String>,
    install_if: Vec<String>,
}

/// Streams `.PKGINFO` out of the tar line by line, holding at most one line
/// of `max_line` bytes.
fn parse_pkginfo<S: ustar::Source>(
    tar: &mut ustar::Reader<S>,
    max_line: usize,
) -> Result<PkgInfo, ApkError> {
    let mut info = PkgInfo::default();
    let mut line = Vec::new();
    let mut line_no = 1;
    let mut buf = [0u8; 8192];
    loop {
        let n = tar.read_data(&mut buf)?;
        if n == 0 {
            break;
        }
        let mut chunk = &buf[..n];
        while !chunk.is_empty() {
            let (part, ends_line) = match chunk.iter().position(|&b| b == b'\n') {
                Some(i) => (&chunk[..i], true),
                None => (chunk, false),
            };
            if line.len() + part.len() > max_line {
                return Err(ApkError::PkgInfo(format!(
                    "line {line_no} is longer than {max_line} bytes"
                )));
            }
            line.extend_from_slice(part);
            chunk = &chunk[part.len() + usize::from(ends_line)..];
            if ends_line {
                info.apply_line(line_no, &line)?;
                line.clear();
                line_no += 1;
            }
        }
    }
    if !line.is_empty() {
        info.apply_line(line_no, &line)?;
    }
    Ok(info)
}

impl PkgInfo {
    fn apply_line(&mut self, line_no: usize, line: &[u8]) -> Result<(), ApkError> {
        let err = |msg: &str| ApkError::PkgInfo(format!("line {line_no}: {msg}"));
        let line = std::str::from_utf8(line).map_err(|_| err("not valid UTF-8"))?;
        if line.chars().any(|c| c.is_control() && c != '\t') {
            return Err(err("contains a control character"));
        }
        if line.trim().is_empty() || line.starts_with('#') {
            return Ok(());
        }
        // `key = value`; abuild writes `commit = ` with an empty value, and a
        // trimmed editor may leave `commit =`.
        let (key, value) = line
            .split_once(" = ")
            .or_else(|| line.strip_suffix(" =").map(|k| (k, "")))
            .ok_or_else(|| err("expected `key = value`"))?;
        let slot = match key {
            "pkgname" => &mut self.pkgname,
            "pkgver" => &mut self.pkgver,
            "pkgdesc" => &mut self.pkgdesc,
            "url" => &mut self.url,
            "size" => &mut self.size,
            "license" => &mut self.license,
            "arch" => &mut self.arch,
            "origin" => &mut self.origin,
            "maintainer" => &mut self.maintainer,
            "builddate" => &mut self.builddate,
            "commit" => &mut self.commit,
            "provider_priority" => &mut self.provider_priority,
            "datahash" => &mut self.datahash,
            "depend" | "provides" | "install_if" => {
                let list = match key {
                    "depend" => &mut self.depends,
                    "provides" => &mut self.provides,
                    _ => &mut self.install_if,
                };
                // apk reads several space-separated atoms from one line too.
                list.extend(value.split_whitespace().map(str::to_owned));
                return Ok(());
            }
            // packager, replaces, triggers, ...: not part of the index.
            _ => return Ok(()),
        };
        if slot.is_some() {
            return Err(err(&format!("{key} is given twice")));
        }
        *slot = Some(value.to_owned());
        Ok(())
    }

    fn validate(self) -> Result<ValidPkgInfo, ApkError> {
        let err = |msg: String| ApkError::PkgInfo(msg);
        let required =
            |v: Option<String>, key: &str| v.ok_or_else(|| err(format!("missing {key}")));
        let number = |v: Option<String>, key: &str| -> Result<Option<u64>, ApkError> {
            v.map(|s| {
                s.parse::<u64>()
                    .map_err(|_| err(format!("{key} {s:?} is not a non-negative integer")))
            })
            .transpose()
        };

        let name = required(self.pkgname, "pkgname")?;
        if !is_valid_pkgname(&name) {
            return Err(err(format!(
                "pkgname {name:?} is not a valid package name ([A-Za-z0-9][A-Za-z0-9._+-]*, no `..`)"
            )));
        }
        let version = required(self.pkgver, "pkgver")?;
        if !is_valid_version(&version) {
            return Err(err(format!(
                "pkgver {version:?} is not a valid apk version (like 1.2.3-r0)"
            )));
        }
        let arch = required(self.arch, "arch")?;
        if !is_valid_arch(&arch) {
            return Err(err(format!(
                "arch {arch:?} is not a valid architecture ([A-Za-z0-9_]+)"
            )));
        }
        let installed_size =
            number(Some(required(self.size, "size")?), "size")?.unwrap_or_default();
        let datahash = required(
            self.datahash,
            "datahash (packages without it are not supported by apk 3)",
        )?;
        if datahash.len() != 64 || !datahash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(err(format!("datahash {datahash:?} is not a hex SHA-256")));
        }
        let file_name_len = name.len() + 1 + version.len() + ".apk".len();
        if file_name_len > MAX_FILE_NAME {
            return Err(err(format!(
                "pkgname and pkgver make a file name of {file_name_len} bytes (at most {MAX_FILE_NAME})"
            )));
        }
        Ok(ValidPkgInfo {
            name,
            version,
            arch,
            installed_size,
            description: self.pkgdesc.unwrap_or_default(),
            url: self.url.unwrap_or_default(),
            license: self.license.unwrap_or_default(),
            origin: self.origin.unwrap_or_default(),
            maintainer: self.maintainer.unwrap_or_default(),
            build_time: number(self.builddate, "builddate")?,
            commit: self.commit.unwrap_or_default(),
            provider_priority: number(self.provider_priority, "provider_priority")?,
            datahash: datahash.to_ascii_lowercase(),
            depends: self.depends,
            provides: self.provides,
            install_if: self.install_if,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::builder::{ApkBuilder, Breakage};
    use super::*;
    use std::path::PathBuf;

    fn fixture(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/alpine")
            .join(name)
    }

    fn read_fixture(name: &str) -> ApkRecord {
        let file = std::fs::File::open(fixture(name)).unwrap();
        read_package(file, &ApkLimits::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .record
    }

    fn read(apk: &[u8]) -> Result<ApkPackage, ApkError> {
        read_package(apk, &ApkLimits::default())
    }

    fn base() -> ApkBuilder {
        ApkBuilder::new("demo", "1.0-r0", "x86_64")
            .file("usr/share/demo/readme", b"hello")
            .file("usr/bin/demo", b"#!/bin/sh\necho demo\n")
    }

    /// The gzip members of `apk`, as stored.
    fn stored_members(apk: &[u8]) -> Vec<Vec<u8>> {
        let mut rest = apk;
        let mut out = Vec::new();
        while !rest.is_empty() {
            let mut decoder = flate2::bufread::GzDecoder::new(rest);
            std::io::copy(&mut decoder, &mut std::io::sink()).unwrap();
            let after = decoder.into_inner();
            out.push(rest[..rest.len() - after.len()].to_vec());
            rest = after;
        }
        out
    }

    #[test]
    fn all_fixtures_parse_with_their_file_names_sizes_and_hashes() {
        let readme = std::fs::read_to_string(fixture("README.md")).unwrap();
        let mut seen = 0;
        for entry in std::fs::read_dir(fixture("")).unwrap() {
            let path = entry.unwrap().path();
            let Some(file_name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if !file_name.ends_with(".apk") {
                continue;
            }
            seen += 1;
            let record = read_fixture(file_name);
            assert_eq!(record.file_name(), file_name);
            assert_eq!(record.file_size, std::fs::metadata(&path).unwrap().len());
            assert!(
                readme.contains(&format!("{}  {file_name}", record.sha256)),
                "{file_name}: sha256 {} not in README",
                record.sha256
            );
            assert!(
                record.checksum.starts_with("Q1") && record.checksum.len() == 30,
                "{}",
                record.checksum
            );
            assert_eq!(record.datahash.len(), 64);
        }
        assert_eq!(seen, 6);
    }

    #[test]
    fn checksums_match_what_apk_index_writes() {
        assert_eq!(
            read_fixture("gitea-test-1.4.1-r3.apk").checksum,
            "Q1/se1PjO94hYXbfpNR1/61hVORIc="
        );
        assert_eq!(
            read_fixture("gitea-noarch-1.4-r0.apk").checksum,
            "Q1kbH5WoIPFccQYyATanaKXd2cJcc="
        );
    }

    #[test]
    fn noarch_is_reported() {
        let file = std::fs::File::open(fixture("gitea-noarch-1.4-r0.apk")).unwrap();
        let package = read_package(file, &ApkLimits::default()).unwrap();
        assert!(package.is_noarch());
        assert_eq!(package.arch(), "noarch");
        let file = std::fs::File::open(fixture("gitea-test-1.4.1-r3.apk")).unwrap();
        let package = read_package(file, &ApkLimits::default()).unwrap();
        assert!(!package.is_noarch());
        assert_eq!(package.record.maintainer, "KN4CK3R <kn4ck3r@gitea.io>");
        assert_eq!(package.record.url, "https://gitea.io/");
    }

    #[test]
    fn alpine_baselayout_fields() {
        let r = read_fixture("alpine-baselayout-3.2.0-r23.apk");
        assert_eq!(r.name, "alpine-baselayout");
        assert_eq!(r.version, "3.2.0-r23");
        assert_eq!(r.arch, "aarch64");
        assert_eq!(r.installed_size, 339968);
        assert_eq!(r.description, "Alpine base dir structure and init scripts");
        assert_eq!(r.license, "GPL-2.0-only");
        assert_eq!(r.origin, "alpine-baselayout");
        assert_eq!(r.maintainer, "Natanael Copa <ncopa@alpinelinux.org>");
        assert_eq!(r.build_time, Some(1662926906));
        assert_eq!(r.commit, "348653a9ba0701e8e968b3344e72313a9ef334e4");
        assert_eq!(r.provider_priority, None);
        assert_eq!(
            r.depends,
            [
                "alpine-baselayout-data=3.2.0-r23",
                "/bin/sh",
                "so:libc.musl-aarch64.so.1"
            ]
        );
        assert_eq!(r.provides, ["cmd:mkmntdirs=3.2.0-r23"]);
        assert!(r.install_if.is_empty());
        assert_eq!(
            r.datahash,
            "1a3a8e47d2287da6d505d973412cee1ad64bcc17bc5995069e4e932055ecb0c4"
        );
        assert_eq!(r.file_size, 11012);
    }

    #[test]
    fn melange_fixtures_have_their_dependencies() {
        assert_eq!(
            read_fixture("package-y-1.0.0-r0.apk").depends,
            ["package-x"]
        );
        assert_eq!(
            read_fixture("package-x-1.0.0-r0.apk").depends,
            ["pretend-baselayout"]
        );
        let pretend = read_fixture("pretend-baselayout-1.0.0-r0.apk");
        assert!(pretend.depends.is_empty());
        assert_eq!(pretend.commit, "326e0ed687bdfeadac839dc9b25686e4442c9d04");
    }

    #[test]
    fn checksum_is_sha1_of_the_stored_control_member() {
        let apk = base().build();
        let members = stored_members(&apk);
        assert_eq!(members.len(), 3);
        let record = read(&apk).unwrap().record;
        assert_eq!(
            record.checksum,
            format!("Q1{}", BASE64.encode(Sha1::digest(&members[1])))
        );
        assert_eq!(record.datahash, hex::encode(Sha256::digest(&members[2])));
        assert_eq!(record.sha256, hex::encode(Sha256::digest(&apk)));
        assert_eq!(record.file_size, apk.len() as u64);
        // A different signature member changes neither C: nor datahash.
        let mut resigned = crate::formats::apk::gzip(&{
            let mut tar = Vec::new();
            ustar::append_entry(
                &mut tar,
                &ustar::HeaderSpec::file(b".SIGN.RSA256.other.rsa.pub", 3, 0o644),
                b"sig",
                &[],
            );
            tar
        });
        resigned.extend_from_slice(&members[1]);
        resigned.extend_from_slice(&members[2]);
        let again = read(&resigned).unwrap().record;
        assert_eq!(again.checksum, record.checksum);
        assert_ne!(again.sha256, record.sha256);
    }

    #[test]
    fn data_integrity_breakages_are_corrupt() {
        match read(&base().break_with(Breakage::WrongDatahash).build()) {
            Err(ApkError::Corrupt(msg)) => assert!(msg.contains("datahash"), "{msg}"),
            other => panic!("{other:?}"),
        }
        match read(&base().break_with(Breakage::BadFileChecksum).build()) {
            Err(ApkError::Corrupt(msg)) => {
                assert!(
                    msg.starts_with("usr/share/demo/readme: content SHA-1"),
                    "{msg}"
                )
            }
            other => panic!("{other:?}"),
        }
        match read(&base().break_with(Breakage::MissingFileChecksum).build()) {
            Err(ApkError::Format(msg)) => assert!(msg.contains("APK-TOOLS.checksum.SHA1"), "{msg}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unsafe_paths_are_refused() {
        match read(&base().break_with(Breakage::DotDotPath).build()) {
            Err(ApkError::UnsafePath(path)) => assert_eq!(path, "../x"),
            other => panic!("{other:?}"),
        }
        match read(&base().break_with(Breakage::AbsolutePath).build()) {
            Err(ApkError::UnsafePath(path)) => assert_eq!(path, "/x"),
            other => panic!("{other:?}"),
        }
        for path in ["usr/../../etc/passwd", "usr/..", ".."] {
            let apk = base().file(path, b"x").build();
            assert!(
                matches!(read(&apk), Err(ApkError::UnsafePath(p)) if p == path),
                "{path}"
            );
        }
        let escape = base()
            .hardlink("usr/bin/shadow", "../../etc/shadow")
            .build();
        match read(&escape) {
            Err(ApkError::UnsafePath(msg)) => {
                assert!(msg.contains("hard link to ../../etc/shadow"), "{msg}")
            }
            other => panic!("{other:?}"),
        }
        let absolute = base().hardlink("usr/bin/shadow", "/etc/shadow").build();
        assert!(matches!(read(&absolute), Err(ApkError::UnsafePath(_))));
        // Symlinks may point anywhere: that is resolved on the client.
        let symlinks = base()
            .symlink("usr/bin/sh", "/bin/busybox")
            .symlink("usr/lib/libx.so", "../../lib/libx.so.1")
            .hardlink("usr/bin/demo2", "usr/bin/demo")
            .file("./etc/./demo.conf", b"ok")
            .build();
        read(&symlinks).unwrap();
    }

    #[test]
    fn missing_required_fields_are_refused() {
        for key in ["pkgname", "pkgver", "arch", "size", "datahash"] {
            match read(&base().break_with(Breakage::MissingField(key)).build()) {
                Err(ApkError::PkgInfo(msg)) => {
                    assert!(msg.starts_with(&format!("missing {key}")), "{msg}")
                }
                other => panic!("{key}: {other:?}"),
            }
        }
        // Optional ones are not required.
        for key in ["pkgdesc", "url", "license", "origin", "builddate", "commit"] {
            read(&base().break_with(Breakage::MissingField(key)).build())
                .unwrap_or_else(|e| panic!("{key}: {e}"));
        }
    }

    #[test]
    fn invalid_names_versions_and_arches_are_refused() {
        let cases = [
            ("../evil", "1.0-r0", "x86_64", "pkgname"),
            ("a..b", "1.0-r0", "x86_64", "pkgname"),
            ("-dash", "1.0-r0", "x86_64", "pkgname"),
            ("sp ace", "1.0-r0", "x86_64", "pkgname"),
            ("ok", "1.0-1", "x86_64", "pkgver"),
            ("ok", "1.0/../../x", "x86_64", "pkgver"),
            ("ok", "latest", "x86_64", "pkgver"),
            ("ok", "1.0-r0", "x86/64", "arch"),
            ("ok", "1.0-r0", "x86-64", "arch"),
        ];
        for (name, version, arch, field) in cases {
            let apk = ApkBuilder::new(name, version, arch).build();
            match read(&apk) {
                Err(ApkError::PkgInfo(msg)) => {
                    assert!(msg.starts_with(field), "{name} {version} {arch}: {msg}")
                }
                other => panic!("{name} {version} {arch}: {other:?}"),
            }
        }
        let long = "a".repeat(250);
        assert!(
            matches!(read(&ApkBuilder::new(&long, "1.0-r0", "x86_64").build()), Err(ApkError::PkgInfo(m)) if m.contains("file name"))
        );
    }

    #[test]
    fn malformed_pkginfo_lines_are_refused() {
        match read(&base().break_with(Breakage::NonUtf8Pkginfo).build()) {
            Err(ApkError::PkgInfo(msg)) => assert!(msg.contains("UTF-8"), "{msg}"),
            other => panic!("{other:?}"),
        }
        let bad = [
            ("pkgname = again", "twice"),
            ("no separator", "key = value"),
            ("builddate = yesterday", "builddate"),
            ("provider_priority = -1", "provider_priority"),
            ("packager = a\u{1b}[31m", "control character"),
        ];
        for (line, expect) in bad {
            let apk = if line.starts_with("builddate") {
                base()
                    .break_with(Breakage::MissingField("builddate"))
                    .pkginfo_line(line)
                    .build()
            } else {
                base().pkginfo_line(line).build()
            };
            match read(&apk) {
                Err(ApkError::PkgInfo(msg)) => assert!(msg.contains(expect), "{line}: {msg}"),
                other => panic!("{line}: {other:?}"),
            }
        }
        // Comments, blank lines, unknown keys, `key =` without a value are fine.
        let ok = base()
            .pkginfo_line("# comment = with separator")
            .pkginfo_line("")
            .pkginfo_line("replaces = other")
            .pkginfo_line("triggers = /usr/share/*")
            .break_with(Breakage::MissingField("commit"))
            .pkginfo_line("commit =")
            .pkginfo_line("depend = a b")
            .pkginfo_line("depend = c")
            .build();
        let record = read(&ok).unwrap().record;
        assert_eq!(record.depends, ["a", "b", "c"]);
        assert_eq!(record.commit, "");
    }

    #[test]
    fn a_long_pkginfo_line_is_refused_at_the_limit() {
        let apk = base().break_with(Breakage::HugePkginfoLine(1000)).build();
        let limits = ApkLimits {
            max_pkginfo_line: 999 + "pkgdesc = ".len(),
            ..ApkLimits::default()
        };
        match read_package(apk.as_slice(), &limits) {
            Err(ApkError::PkgInfo(msg)) => assert!(msg.contains("longer than 1009 bytes"), "{msg}"),
            other => panic!("{other:?}"),
        }
        let limits = ApkLimits {
            max_pkginfo_line: 1000 + "pkgdesc = ".len(),
            ..ApkLimits::default()
        };
        read_package(apk.as_slice(), &limits).unwrap();
    }

    /// A reader that counts what was taken from it.
    struct Counting<'a> {
        inner: &'a [u8],
        taken: &'a std::cell::Cell<usize>,
    }

    impl Read for Counting<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.inner.read(buf)?;
            self.taken.set(self.taken.get() + n);
            Ok(n)
        }
    }

    #[test]
    fn a_10_mb_line_is_refused_without_reading_it_all() {
        let apk = base()
            .break_with(Breakage::HugePkginfoLine(10 << 20))
            .build();
        // The line is poorly compressible, so the file itself is big too.
        assert!(apk.len() > 5 << 20, "{}", apk.len());
        let taken = std::cell::Cell::new(0);
        let result = read_package(
            Counting {
                inner: &apk,
                taken: &taken,
            },
            &ApkLimits::default(),
        );
        match result {
            Err(ApkError::PkgInfo(msg)) => assert!(msg.contains("line"), "{msg}"),
            other => panic!("{other:?}"),
        }
        assert!(taken.get() < 512 << 10, "read {} bytes", taken.get());
    }

    #[test]
    fn member_structure_errors_are_format_errors() {
        let cases = [
            (Breakage::ExtraMember, "4th gzip member"),
            (Breakage::TrailingGarbage, "trailing bytes"),
            (Breakage::UncutControl, "end-of-archive"),
            (Breakage::ControlNonDotFile, "usr/bin/early"),
            (Breakage::NoPkginfo, "no .PKGINFO"),
            (Breakage::DataNotGzip, "data member is not gzip"),
        ];
        for (breakage, expect) in cases {
            match read(&base().break_with(breakage.clone()).build()) {
                Err(ApkError::Format(msg)) => assert!(msg.contains(expect), "{breakage:?}: {msg}"),
                other => panic!("{breakage:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn not_gzip_and_unsigned_packages_are_refused() {
        for (input, expect) in [
            (&b""[..], "empty"),
            (&b"hello world"[..], "not a gzip file"),
            (&b"\x1f"[..], "truncated"),
        ] {
            match read(input) {
                Err(ApkError::Format(msg)) => assert!(msg.contains(expect), "{input:?}: {msg}"),
                other => panic!("{input:?}: {other:?}"),
            }
        }
        let members = stored_members(&base().build());
        let unsigned = [members[1].clone(), members[2].clone()].concat();
        match read(&unsigned) {
            Err(ApkError::Format(msg)) => assert!(msg.contains("unsigned"), "{msg}"),
            other => panic!("{other:?}"),
        }
        // A signature tar that keeps its end blocks hides the rest from apk.
        let mut tar = Vec::new();
        ustar::append_entry(
            &mut tar,
            &ustar::HeaderSpec::file(b".SIGN.RSA.k.rsa.pub", 1, 0o644),
            b"s",
            &[],
        );
        ustar::append_end(&mut tar);
        let uncut = [gzip(&tar), members[1].clone(), members[2].clone()].concat();
        match read(&uncut) {
            Err(ApkError::Format(msg)) => assert!(
                msg.contains("signature member") && msg.contains("cut"),
                "{msg}"
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_truncation_is_a_format_error() {
        let apk = base().build();
        for len in 0..apk.len() {
            match read(&apk[..len]) {
                Err(ApkError::Format(_)) => {}
                other => panic!("truncated to {len} of {}: {other:?}", apk.len()),
            }
        }
        read(&apk).unwrap();
    }

    #[test]
    fn corrupt_gzip_is_a_format_error() {
        let apk = base().build();
        let members = stored_members(&apk);
        // Flip a bit of the data member's CRC-32 (its trailer's first byte).
        let crc_at = apk.len() - 8;
        let mut bad = apk.clone();
        bad[crc_at] ^= 1;
        match read(&bad) {
            Err(ApkError::Format(msg)) => {
                assert!(msg.contains("data member is not valid gzip"), "{msg}")
            }
            other => panic!("{other:?}"),
        }
        // Same in the control member's trailer.
        let control_end = members[0].len() + members[1].len();
        let mut bad = apk.clone();
        bad[control_end - 8] ^= 1;
        assert!(matches!(read(&bad), Err(ApkError::Format(m)) if m.contains("control member")));
    }

    #[test]
    fn read_errors_are_io_errors() {
        struct Failing;
        impl Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("disk on fire"))
            }
        }
        let apk = base().build();
        let failing_midway = apk[..apk.len() / 2].chain(Failing);
        match read_package(failing_midway, &ApkLimits::default()) {
            Err(ApkError::Io(e)) => assert_eq!(e.to_string(), "disk on fire"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn inflation_is_capped() {
        // Control: a big script against a small control budget.
        let apk = base().script(".post-install", &vec![b'#'; 100_000]).build();
        let limits = ApkLimits {
            max_control_bytes: 50_000,
            ..ApkLimits::default()
        };
        match read_package(apk.as_slice(), &limits) {
            Err(ApkError::TooLarge(msg)) => assert!(msg.contains("50000"), "{msg}"),
            other => panic!("{other:?}"),
        }
        read(&apk).unwrap();

        // Data: the hard cap, whatever .PKGINFO says.
        let apk = base().file("big", &vec![0u8; 300_000]).build();
        let limits = ApkLimits {
            max_data_bytes: 200_000,
            ..ApkLimits::default()
        };
        match read_package(apk.as_slice(), &limits) {
            Err(ApkError::TooLarge(msg)) => assert!(msg.contains("200000"), "{msg}"),
            other => panic!("{other:?}"),
        }

        // Data: a size far below what the data member inflates to (a zip
        // bomb claims to be small). 8 MiB of zeros compress to a few KiB.
        let bomb = base()
            .installed_size(10)
            .file("zeros", &vec![0u8; 8 << 20])
            .build();
        assert!(bomb.len() < 64 << 10);
        match read(&bomb) {
            Err(ApkError::TooLarge(msg)) => assert!(msg.contains(".PKGINFO size 10"), "{msg}"),
            other => panic!("{other:?}"),
        }
        // Honest sizes pass, as does a size a bit under the content (slack).
        read(&base().file("zeros", &vec![0u8; 8 << 20]).build()).unwrap();
        read(
            &base()
                .installed_size(1)
                .file("f", &vec![1u8; 100_000])
                .build(),
        )
        .unwrap();
    }

    #[test]
    fn many_small_files_fit_the_per_header_allowance() {
        let mut builder = ApkBuilder::new("many", "1.0-r0", "x86_64");
        for i in 0..3000 {
            builder = builder.file(&format!("usr/share/many/{i}"), b"x");
        }
        read(&builder.build()).unwrap();
    }

    #[test]
    fn versions() {
        for v in [
            "1",
            "0",
            "1.0",
            "3.2.0-r23",
            "1.2.3a-r1",
            "2.0_rc1",
            "1.0_alpha2_p3-r4",
            "1.0~abc123-r0",
            "0.1_git20230101",
            "1.0_p",
            "10.20.30z_beta-r100",
            "1.0~DEADbeef",
        ] {
            assert!(is_valid_version(v), "{v} should be valid");
        }
        for v in [
            "",
            "a1",
            "v1.0",
            "1.0-1",
            "1..0",
            "1.",
            ".1",
            "1.0-r",
            "1.0_foo",
            "1.0ab",
            "1.0a1",
            "1/0",
            "1.0-r1-r2",
            "1.0 ",
            "1.0~",
            "1.0_rc1.2",
            "1.0-r1_p1",
            "1.0~ab~cd",
            "1.0A",
            "1.0_",
            "1.0-",
        ] {
            assert!(!is_valid_version(v), "{v} should be invalid");
        }
    }

    #[test]
    fn names_and_arches() {
        for n in ["a", "Zlib", "py3-foo", "gtk+3.0", "lib_x", "a.b", "7zip"] {
            assert!(is_valid_pkgname(n), "{n}");
        }
        for n in ["", "-a", ".a", "_a", "a..b", "a/b", "a b", "ä", "a:b"] {
            assert!(!is_valid_pkgname(n), "{n}");
        }
        for a in ["x86_64", "aarch64", "noarch", "armv7"] {
            assert!(is_valid_arch(a), "{a}");
        }
        for a in ["", "x86-64", "../x", "a b"] {
            assert!(!is_valid_arch(a), "{a}");
        }
    }
}
