//! A small streaming ustar reader and writer with the semantics of apk-tools'
//! `src/tar.c`, the reader that matters for everything we publish.
//!
//! Why not the `tar` crate: it buffers pax headers and GNU long names whole
//! (an untrusted package could make them gigabytes), it refuses to *write* the
//! unsafe names our test builder must produce, and apk's rules differ from it
//! in small ways that decide whether a package installs: the `ustar` magic is
//! required, only the `path`, `linkpath` and `APK-TOOLS.checksum.SHA1` pax
//! keys count, `K` (long link name) is ignored, and an entry whose name starts
//! with NUL is an end-of-archive block.

use super::ApkError;

/// Size of a tar block.
pub(super) const BLOCK: usize = 512;

/// Largest pax extended header we read. apk has no limit, but real ones hold a
/// checksum, a path and maybe a few xattrs: a few hundred bytes.
const MAX_PAX_BYTES: u64 = 1 << 20;

/// Largest GNU long name we read; apk rejects names of `PATH_MAX` (4096) and more.
const MAX_LONG_NAME: u64 = 4096;

/// The pax key holding a regular file's SHA-1, as apk's `abuild-tar --hash` writes it.
pub(super) const PAX_SHA1: &str = "APK-TOOLS.checksum.SHA1";

/// Where tar bytes come from. Errors are already [`ApkError`]s with context.
pub(super) trait Source {
    /// Reads up to `buf.len()` bytes (`buf` is never empty); 0 means end of input.
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, ApkError>;

    /// Called once for every 512-byte header block read (size limits grow with it).
    fn on_header(&mut self) {}
}

impl Source for &[u8] {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, ApkError> {
        Ok(std::io::Read::read(self, buf)?)
    }
}

/// The kind of a tar entry, for the types apk knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Regular,
    HardLink,
    Symlink,
    CharDevice,
    BlockDevice,
    Directory,
    Fifo,
}

/// One entry, with the pax and GNU long-name headers before it already applied.
#[derive(Debug, Clone)]
pub(super) struct Entry {
    /// The path as apk sees it (pax `path` > ustar prefix/name > GNU long name > name).
    pub name: Vec<u8>,
    pub kind: Kind,
    pub size: u64,
    /// Link target of hard and symbolic links (pax `linkpath` or the header's).
    pub link: Vec<u8>,
    /// The `APK-TOOLS.checksum.SHA1` pax value, if any.
    pub sha1: Option<[u8; 20]>,
}

impl Entry {
    /// The name for messages.
    pub fn display_name(&self) -> String {
        String::from_utf8_lossy(&self.name).into_owned()
    }
}

/// What [`Reader::next`] found.
#[derive(Debug)]
pub(super) enum Next {
    Entry(Entry),
    /// An all-zero block: the start of the end-of-archive marker.
    ZeroBlock,
    /// The input ended cleanly at a block boundary.
    Eof,
}

#[derive(Debug, Default)]
struct Pax {
    path: Option<Vec<u8>>,
    link: Option<Vec<u8>>,
    sha1: Option<[u8; 20]>,
}

/// Reads tar entries one by one from a [`Source`], never holding more than
/// one block, one pax header and one long name in memory.
pub(super) struct Reader<S> {
    src: S,
    /// Which part of the package this is, for error messages.
    what: &'static str,
    /// Unread data of the current entry, and the padding after it.
    remaining: u64,
    padding: u64,
    current: String,
    pax: Option<Pax>,
    long_name: Option<Vec<u8>>,
}

impl<S: Source> Reader<S> {
    pub fn new(src: S, what: &'static str) -> Self {
        Self {
            src,
            what,
            remaining: 0,
            padding: 0,
            current: String::new(),
            pax: None,
            long_name: None,
        }
    }

    pub fn source_mut(&mut self) -> &mut S {
        &mut self.src
    }

    fn format(&self, msg: impl std::fmt::Display) -> ApkError {
        ApkError::Format(format!("{}: {msg}", self.what))
    }

    /// Fills `buf` completely; `false` if the input ended before its first byte.
    fn read_block(&mut self, buf: &mut [u8; BLOCK]) -> Result<bool, ApkError> {
        let mut got = 0;
        while got < BLOCK {
            let n = self.src.read(&mut buf[got..])?;
            if n == 0 {
                if got == 0 {
                    return Ok(false);
                }
                return Err(self.format("the tar stream ends inside a 512-byte block"));
            }
            got += n;
        }
        Ok(true)
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), ApkError> {
        let mut got = 0;
        while got < buf.len() {
            let n = self.src.read(&mut buf[got..])?;
            if n == 0 {
                return Err(self.format("the tar stream ends inside an entry"));
            }
            got += n;
        }
        Ok(())
    }

    fn skip(&mut self, mut n: u64) -> Result<(), ApkError> {
        let mut scratch = [0u8; 8192];
        while n > 0 {
            let want = usize::try_from(n).unwrap_or(usize::MAX).min(scratch.len());
            let got = self.src.read(&mut scratch[..want])?;
            if got == 0 {
                return Err(self.format(format_args!(
                    "the tar stream ends inside entry {}",
                    self.current
                )));
            }
            n -= got as u64;
        }
        Ok(())
    }

    /// Reads the next entry's header (skipping what is left of the previous one).
    pub fn next(&mut self) -> Result<Next, ApkError> {
        let left = self.remaining + self.padding;
        self.skip(left)?;
        self.remaining = 0;
        self.padding = 0;
        loop {
            let mut block = [0u8; BLOCK];
            if !self.read_block(&mut block)? {
                if self.pax.is_some() || self.long_name.is_some() {
                    return Err(self.format("the tar stream ends after an extended header"));
                }
                return Ok(Next::Eof);
            }
            self.src.on_header();
            if block[0] == 0 {
                if block.iter().all(|&b| b == 0) {
                    if self.pax.is_some() || self.long_name.is_some() {
                        return Err(self.format("an extended header is followed by end-of-archive"));
                    }
                    return Ok(Next::ZeroBlock);
                }
                return Err(self.format("tar header with an empty name"));
            }
            if &block[257..262] != b"ustar" {
                return Err(
                    self.format("tar header without `ustar` magic (apk rejects old v7 tar)")
                );
            }
            self.check_checksum(&block)?;
            let size = self.octal(&block[124..136], "size")?;
            // apk parses these too and refuses the package when they are malformed.
            for (range, field) in [
                (100..108, "mode"),
                (108..116, "uid"),
                (116..124, "gid"),
                (136..148, "mtime"),
                (329..337, "devmajor"),
                (337..345, "devminor"),
            ] {
                self.octal(&block[range], field)?;
            }
            let padding = (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64;
            let kind = match block[156] {
                b'x' => {
                    if size > MAX_PAX_BYTES {
                        return Err(self.format(format_args!(
                            "pax header of {size} bytes (at most {MAX_PAX_BYTES} accepted)"
                        )));
                    }
                    let mut data = vec![0u8; size as usize];
                    self.read_exact(&mut data)?;
                    self.skip(padding)?;
                    // Like apk, a second pax header replaces a pending one.
                    self.pax = Some(parse_pax(&data).map_err(|e| self.format(e))?);
                    continue;
                }
                b'L' => {
                    if size > MAX_LONG_NAME {
                        return Err(self.format(format_args!(
                            "GNU long name of {size} bytes (at most {MAX_LONG_NAME} accepted)"
                        )));
                    }
                    let mut data = vec![0u8; size as usize];
                    self.read_exact(&mut data)?;
                    self.skip(padding)?;
                    if let Some(nul) = data.iter().position(|&b| b == 0) {
                        data.truncate(nul);
                    }
                    self.long_name = Some(data);
                    continue;
                }
                // Global pax headers and GNU long link names: apk ignores both.
                b'g' | b'K' => {
                    self.skip(size + padding)?;
                    continue;
                }
                b'0' | b'7' => Kind::Regular,
                b'1' => Kind::HardLink,
                b'2' => Kind::Symlink,
                b'3' => Kind::CharDevice,
                b'4' => Kind::BlockDevice,
                b'5' => Kind::Directory,
                b'6' => Kind::Fifo,
                other => {
                    return Err(self.format(format_args!(
                        "{}: unsupported tar entry type {:?}",
                        String::from_utf8_lossy(cstr(&block[..100])),
                        char::from(other)
                    )));
                }
            };
            let pax = self.pax.take().unwrap_or_default();
            let long_name = self.long_name.take();
            let prefix = cstr(&block[345..500]);
            let name = if let Some(path) = pax.path {
                path
            } else if !prefix.is_empty() {
                let mut joined = prefix.to_vec();
                joined.push(b'/');
                joined.extend_from_slice(cstr(&block[..100]));
                joined
            } else if let Some(long) = long_name {
                long
            } else {
                cstr(&block[..100]).to_vec()
            };
            let link = pax.link.unwrap_or_else(|| cstr(&block[157..257]).to_vec());
            self.remaining = size;
            self.padding = padding;
            self.current = String::from_utf8_lossy(&name).into_owned();
            return Ok(Next::Entry(Entry {
                name,
                kind,
                size,
                link,
                sha1: pax.sha1,
            }));
        }
    }

    /// Reads the current entry's data; 0 once it is all read.
    pub fn read_data(&mut self, buf: &mut [u8]) -> Result<usize, ApkError> {
        if self.remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = usize::try_from(self.remaining)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let n = self.src.read(&mut buf[..want])?;
        if n == 0 {
            return Err(self.format(format_args!(
                "the tar stream ends inside entry {}",
                self.current
            )));
        }
        self.remaining -= n as u64;
        Ok(n)
    }

    fn check_checksum(&self, block: &[u8; BLOCK]) -> Result<(), ApkError> {
        let stored = self.octal(&block[148..156], "checksum")?;
        let mut unsigned: u64 = 0;
        let mut signed: i64 = 0;
        for (i, &b) in block.iter().enumerate() {
            let b = if (148..156).contains(&i) { b' ' } else { b };
            unsigned += u64::from(b);
            signed += i64::from(b as i8);
        }
        if stored != unsigned && i64::try_from(stored).ok() != Some(signed) {
            return Err(self.format(format_args!(
                "tar header checksum mismatch (entry {:?})",
                String::from_utf8_lossy(cstr(&block[..100]))
            )));
        }
        Ok(())
    }

    /// Parses an octal header field the way apk does: digits, then only NUL or space.
    fn octal(&self, field: &[u8], what: &str) -> Result<u64, ApkError> {
        parse_octal(field).ok_or_else(|| {
            self.format(format_args!(
                "malformed tar header field {what}: {:?}",
                String::from_utf8_lossy(field)
            ))
        })
    }
}

/// The bytes of a NUL-padded header field up to the first NUL.
fn cstr(field: &[u8]) -> &[u8] {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    &field[..end]
}

fn parse_octal(field: &[u8]) -> Option<u64> {
    // Leading spaces are tolerated (old writers); apk itself is stricter.
    let start = field.iter().position(|&b| b != b' ').unwrap_or(field.len());
    let digits_end = field[start..]
        .iter()
        .position(|b| !(b'0'..=b'7').contains(b))
        .map_or(field.len(), |p| start + p);
    if field[digits_end..].iter().any(|&b| b != 0 && b != b' ') {
        return None;
    }
    field[start..digits_end].iter().try_fold(0u64, |v, &d| {
        v.checked_mul(8)?.checked_add(u64::from(d - b'0'))
    })
}

fn parse_pax(mut data: &[u8]) -> Result<Pax, String> {
    let mut pax = Pax::default();
    while !data.is_empty() {
        let malformed = || "malformed pax header record".to_owned();
        let space = data.iter().position(|&b| b == b' ').ok_or_else(malformed)?;
        let len: usize = std::str::from_utf8(&data[..space])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(malformed)?;
        if len <= space + 1 || len > data.len() || data[len - 1] != b'\n' {
            return Err(malformed());
        }
        let record = &data[space + 1..len - 1];
        data = &data[len..];
        let eq = record
            .iter()
            .position(|&b| b == b'=')
            .ok_or_else(malformed)?;
        let (key, value) = (&record[..eq], &record[eq + 1..]);
        match key {
            b"path" => pax.path = Some(value.to_vec()),
            b"linkpath" => pax.link = Some(value.to_vec()),
            k if k == PAX_SHA1.as_bytes() => {
                let mut sha1 = [0u8; 20];
                hex::decode_to_slice(value, &mut sha1).map_err(|_| {
                    format!(
                        "malformed {PAX_SHA1} value {:?} (expected 40 hex digits)",
                        String::from_utf8_lossy(value)
                    )
                })?;
                pax.sha1 = Some(sha1);
            }
            _ => {}
        }
    }
    Ok(pax)
}

/// Writes an octal number NUL-terminated into `field`, or GNU base-256 when it
/// does not fit (only for sizes no apk package or index gets near).
fn put_octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    if digits < 22 && value >= 1u64 << (3 * digits) {
        let bytes = value.to_be_bytes();
        field.fill(0);
        let n = field.len();
        field[n - 8..].copy_from_slice(&bytes);
        field[0] |= 0x80;
        return;
    }
    let text = format!("{value:0digits$o}");
    field[..digits].copy_from_slice(text.as_bytes());
    field[digits] = 0;
}

/// What to put in a tar header; names are raw bytes and are not checked, so
/// tests can write the unsafe ones a reader must refuse.
#[derive(Debug, Clone, Copy)]
pub(super) struct HeaderSpec<'a> {
    pub name: &'a [u8],
    pub typeflag: u8,
    pub size: u64,
    pub mode: u32,
    pub mtime: u64,
    pub link: &'a [u8],
}

impl<'a> HeaderSpec<'a> {
    /// A regular file owned by root.
    pub fn file(name: &'a [u8], size: u64, mode: u32) -> Self {
        Self {
            name,
            typeflag: b'0',
            size,
            mode,
            mtime: 0,
            link: b"",
        }
    }
}

/// A POSIX ustar header block (magic `ustar\0`, version `00`, owner root:root).
/// Names and link targets longer than 100 bytes are cut: pair with a pax header.
pub(super) fn header(spec: &HeaderSpec<'_>) -> [u8; BLOCK] {
    let mut h = [0u8; BLOCK];
    let name = &spec.name[..spec.name.len().min(100)];
    h[..name.len()].copy_from_slice(name);
    put_octal(&mut h[100..108], u64::from(spec.mode & 0o7777));
    put_octal(&mut h[108..116], 0);
    put_octal(&mut h[116..124], 0);
    put_octal(&mut h[124..136], spec.size);
    put_octal(&mut h[136..148], spec.mtime);
    h[156] = spec.typeflag;
    let link = &spec.link[..spec.link.len().min(100)];
    h[157..157 + link.len()].copy_from_slice(link);
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[265..269].copy_from_slice(b"root");
    h[297..301].copy_from_slice(b"root");
    put_octal(&mut h[329..337], 0);
    put_octal(&mut h[337..345], 0);
    h[148..156].fill(b' ');
    let sum: u64 = h.iter().map(|&b| u64::from(b)).sum();
    // Checksum field: six octal digits, NUL, space (what GNU tar writes).
    let text = format!("{sum:06o}");
    h[148..154].copy_from_slice(&text.as_bytes()[text.len() - 6..]);
    h[154] = 0;
    h[155] = b' ';
    h
}

/// One pax record, `"<len> <key>=<value>\n"`, where `<len>` counts itself.
pub(super) fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let body = key.len() + value.len() + 3; // space, '=', '\n'
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    let mut record = format!("{len} {key}=").into_bytes();
    record.extend_from_slice(value);
    record.push(b'\n');
    record
}

/// Appends `data` and the zero padding up to the next block.
pub(super) fn append_data(out: &mut Vec<u8>, data: &[u8]) {
    out.extend_from_slice(data);
    let pad = (BLOCK - data.len() % BLOCK) % BLOCK;
    out.resize(out.len() + pad, 0);
}

/// Appends one entry: a pax header first when `pax` has records or the name or
/// link target needs one, then the header and the padded data.
pub(super) fn append_entry(
    out: &mut Vec<u8>,
    spec: &HeaderSpec<'_>,
    data: &[u8],
    pax: &[(&str, &[u8])],
) {
    let mut records = Vec::new();
    if spec.name.len() > 100 {
        records.extend(pax_record("path", spec.name));
    }
    if spec.link.len() > 100 {
        records.extend(pax_record("linkpath", spec.link));
    }
    for (key, value) in pax {
        records.extend(pax_record(key, value));
    }
    if !records.is_empty() {
        let base = spec.name.rsplit(|&b| b == b'/').next().unwrap_or(spec.name);
        let mut pax_name = b"PaxHeaders/".to_vec();
        pax_name.extend_from_slice(base);
        let pax_spec = HeaderSpec {
            name: &pax_name,
            typeflag: b'x',
            size: records.len() as u64,
            mode: 0o644,
            mtime: spec.mtime,
            link: b"",
        };
        out.extend_from_slice(&header(&pax_spec));
        append_data(out, &records);
    }
    out.extend_from_slice(&header(spec));
    append_data(out, data);
}

/// Appends the end-of-archive marker: two zero blocks.
pub(super) fn append_end(out: &mut Vec<u8>) {
    out.resize(out.len() + 2 * BLOCK, 0);
}

#[cfg(test)]
mod tests;
