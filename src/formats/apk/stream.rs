//! The byte streams under the reader: the `.apk` as stored (hashed exactly
//! where its gzip members split) and one member inflated under a size cap.

use sha1::{Digest as _, Sha1};
use sha2::Sha256;
use std::io::{BufRead, Read};

use super::{ApkError, DATA_BYTES_PER_HEADER, DATA_SLACK_BYTES, ustar};

/// The first two bytes of every gzip member.
pub(super) const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The three gzip members of an `.apk`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Part {
    Signature,
    Control,
    Data,
}

impl Part {
    pub(super) fn name(self) -> &'static str {
        match self {
            Part::Signature => "signature member",
            Part::Control => "control member",
            Part::Data => "data member",
        }
    }
}

/// Checks that another gzip member starts here, with a clear error if not.
pub(super) fn start_member<R: Read>(
    stored: &mut StoredBytes<R>,
    part: Part,
) -> Result<(), ApkError> {
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
pub(super) enum MemberDigest {
    None,
    Sha1,
    Sha256,
}

/// The `.apk` bytes as stored: a buffered reader that hashes exactly the
/// bytes its consumers take, so that gzip member boundaries, found by
/// [`flate2::bufread::GzDecoder`] stopping at the end of one member, split the
/// hashes exactly where the members split.
pub(super) struct StoredBytes<R> {
    inner: R,
    buf: Box<[u8]>,
    pos: usize,
    filled: usize,
    /// Bytes consumed so far: the file size once everything is read.
    pub(super) total: u64,
    pub(super) file_sha256: Sha256,
    member: MemberDigest,
    pub(super) member_sha1: Sha1,
    pub(super) member_sha256: Sha256,
    /// Set when `inner` failed, to tell I/O errors from bad gzip data.
    source_failed: bool,
}

impl<R: Read> StoredBytes<R> {
    pub(super) fn new(inner: R) -> Self {
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
    pub(super) fn begin_member(&mut self, digest: MemberDigest) {
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
pub(super) enum Budget {
    Control(u64),
    Data { max: u64, size: u64 },
}

/// One gzip member, inflated under a cap, as a tar [`ustar::Source`].
pub(super) struct Member<'a, R: Read> {
    gz: flate2::bufread::GzDecoder<&'a mut StoredBytes<R>>,
    part: Part,
    budget: Budget,
    inflated: u64,
    limit: u64,
    /// Added to `limit` for every tar header block (data member only).
    pub(super) per_header: u64,
}

impl<'a, R: Read> Member<'a, R> {
    pub(super) fn new(
        stored: &'a mut StoredBytes<R>,
        part: Part,
        budget: Budget,
        limit: u64,
    ) -> Self {
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
    pub(super) fn finish(&mut self) -> Result<u64, ApkError> {
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
