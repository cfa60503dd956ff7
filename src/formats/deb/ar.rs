//! The `ar` container of a `.deb`, read as a stream, and the hashing reader
//! under it that sees every byte of the file exactly once.
//!
//! Format (deb(5), ar(5)): the global magic `!<arch>\n`, then members, each a
//! 60-byte ASCII header — name[16], mtime[12], uid[6], gid[6], mode[8] (octal),
//! size[10] (decimal), `` `\n `` — followed by `size` bytes and one `\n` of
//! padding when `size` is odd. Names are space-padded; GNU ar adds a `/` that
//! dpkg strips, as we do.

use md5::Md5;
use sha1::{Digest as _, Sha1};
use sha2::{Sha256, Sha512};
use std::io::{self, Read};

use super::DebError;

/// The global header of an `ar` archive.
pub(super) const MAGIC: &[u8; 8] = b"!<arch>\n";

/// Size of a member header.
pub(super) const HEADER: usize = 60;

/// Reads the input once, counting and hashing every byte that passes.
pub(super) struct Hashing<R> {
    inner: R,
    pub total: u64,
    md5: Md5,
    sha1: Sha1,
    sha256: Sha256,
    sha512: Sha512,
}

/// The file's size and digests, lowercase hex.
pub(super) struct Digests {
    pub size: u64,
    pub md5: String,
    pub sha1: String,
    pub sha256: String,
    pub sha512: String,
}

impl<R: Read> Hashing<R> {
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            total: 0,
            md5: Md5::new(),
            sha1: Sha1::new(),
            sha256: Sha256::new(),
            sha512: Sha512::new(),
        }
    }

    pub fn finish(self) -> Digests {
        Digests {
            size: self.total,
            md5: hex::encode(self.md5.finalize()),
            sha1: hex::encode(self.sha1.finalize()),
            sha256: hex::encode(self.sha256.finalize()),
            sha512: hex::encode(self.sha512.finalize()),
        }
    }

    /// Reads exactly `buf.len()` bytes; `Ok(false)` if the input ended before
    /// the first, [`DebError::Truncated`] if it ended in the middle.
    pub fn read_full(&mut self, buf: &mut [u8], what: &str) -> Result<bool, DebError> {
        let mut got = 0;
        while got < buf.len() {
            let n = match self.read(&mut buf[got..]) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            };
            if n == 0 {
                if got == 0 {
                    return Ok(false);
                }
                return Err(DebError::Truncated(what.to_owned()));
            }
            got += n;
        }
        Ok(true)
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let data = &buf[..n];
        self.md5.update(data);
        self.sha1.update(data);
        self.sha256.update(data);
        self.sha512.update(data);
        self.total += n as u64;
        Ok(n)
    }
}

/// One member header, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct MemberHeader {
    /// The name, trailing spaces and one trailing `/` removed.
    pub name: String,
    /// Size of the member's data in bytes.
    pub size: u64,
}

/// Parses a member header that starts at `offset` of the file.
pub(super) fn parse_header(h: &[u8; HEADER], offset: u64) -> Result<MemberHeader, DebError> {
    let bad = |problem: String| DebError::Ar { offset, problem };
    if &h[58..60] != b"`\n" {
        return Err(bad(
            "member header does not end with the ar terminator \"`\\n\"".to_owned(),
        ));
    }
    let raw_name = &h[..16];
    let end = raw_name
        .iter()
        .rposition(|&b| b != b' ')
        .map_or(0, |p| p + 1);
    let mut name = &raw_name[..end];
    if let Some(stripped) = name.strip_suffix(b"/") {
        name = stripped;
    }
    if name.is_empty() || !name.iter().all(|b| b.is_ascii_graphic()) {
        return Err(bad(format!(
            "member name {:?} is empty or not printable ASCII",
            String::from_utf8_lossy(raw_name)
        )));
    }
    let name = String::from_utf8(name.to_vec()).expect("checked ASCII");
    let size_field = &h[48..58];
    let digits_end = size_field
        .iter()
        .position(|&b| b == b' ')
        .unwrap_or(size_field.len());
    let (digits, pad) = size_field.split_at(digits_end);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) || pad.iter().any(|&b| b != b' ')
    {
        return Err(bad(format!(
            "member {name:?}: size field {:?} is not a decimal number",
            String::from_utf8_lossy(size_field)
        )));
    }
    let size = std::str::from_utf8(digits)
        .expect("digits")
        .parse::<u64>()
        .expect("at most 10 digits");
    Ok(MemberHeader { name, size })
}

/// The data of one member: reads at most its size from the file, and
/// remembers whether the file ended before that.
pub(super) struct MemberReader<'a, R> {
    inner: &'a mut Hashing<R>,
    left: u64,
    pub truncated: bool,
}

impl<'a, R: Read> MemberReader<'a, R> {
    pub fn new(inner: &'a mut Hashing<R>, size: u64) -> Self {
        Self {
            inner,
            left: size,
            truncated: false,
        }
    }

    /// Reads and discards what is left of the member; `false` if the file
    /// ended first.
    pub fn drain(&mut self) -> io::Result<bool> {
        io::copy(self, &mut io::sink())?;
        Ok(!self.truncated)
    }
}

impl<R: Read> Read for MemberReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            self.truncated = true;
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file ends inside this member",
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}
