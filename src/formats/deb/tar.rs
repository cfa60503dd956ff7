//! A streaming walk over the tar members of a `.deb`, with dpkg's rules
//! (`lib/dpkg/tar.c`): v7, GNU and ustar headers, header checksums, octal or
//! base-256 numbers, GNU long names (`L`, `K`), and the entry types dpkg
//! extracts; pax headers are refused as dpkg 1.21 refuses them. Memory stays
//! at one block plus one long name, capped, whatever the input.
//!
//! Why not the `tar` crate: it reads GNU long names and pax headers whole,
//! however large, and it accepts entry types dpkg refuses.

use std::io::{self, Read};

/// Size of a tar block.
const BLOCK: usize = 512;

/// Longest GNU long name or link we read: `PATH_MAX`.
const MAX_LONG_NAME: u64 = 4096;

/// The entry types dpkg extracts.
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

/// One entry, GNU long names already applied.
#[derive(Debug, Clone)]
pub(super) struct Entry {
    pub name: Vec<u8>,
    pub kind: Kind,
    pub size: u64,
}

impl Entry {
    /// The name for messages.
    pub fn display(&self) -> String {
        String::from_utf8_lossy(&self.name).into_owned()
    }

    /// The name without leading `./` (and `/`), as dpkg matches control files.
    pub fn bare_name(&self) -> &[u8] {
        let mut n = &self.name[..];
        while let Some(rest) = n.strip_prefix(b"./") {
            n = rest;
        }
        n
    }
}

/// Why a walk stopped: the source failed (the caller knows why: truncation,
/// a cap, a decoder error), or the tar itself is bad.
#[derive(Debug)]
pub(super) enum Walk {
    Io(io::Error),
    Bad(String),
    /// A cap of [`super::DebLimits`] was reached: what, and the cap.
    Limit(String, u64),
}

impl From<io::Error> for Walk {
    fn from(e: io::Error) -> Self {
        Walk::Io(e)
    }
}

/// Reads entries one by one.
pub(super) struct Walker<R> {
    src: R,
    /// Data (and padding) of the current entry not yet read.
    left: u64,
    pad: u64,
    /// Scratch space for skipping data, allocated on first use.
    buf: Vec<u8>,
}

impl<R: Read> Walker<R> {
    pub fn new(src: R) -> Self {
        Self {
            src,
            left: 0,
            pad: 0,
            buf: Vec::new(),
        }
    }

    /// Fills `buf`; `false` if the input ended before its first byte.
    fn read_block(&mut self, buf: &mut [u8; BLOCK]) -> Result<bool, Walk> {
        let mut got = 0;
        while got < BLOCK {
            let n = self.src.read(&mut buf[got..])?;
            if n == 0 {
                if got == 0 {
                    return Ok(false);
                }
                return Err(Walk::Bad(
                    "the tar stream ends inside a 512-byte header".to_owned(),
                ));
            }
            got += n;
        }
        Ok(true)
    }

    /// Skips what is left of the current entry's data and padding.
    fn skip_rest(&mut self) -> Result<(), Walk> {
        let n = self.left + self.pad;
        if n > 0 {
            if self.buf.is_empty() {
                self.buf = vec![0u8; 64 << 10];
            }
            let copied = skip(&mut self.src, &mut self.buf, n)?;
            if copied < n {
                return Err(Walk::Bad(
                    "the tar stream ends inside an entry's data".to_owned(),
                ));
            }
        }
        self.left = 0;
        self.pad = 0;
        Ok(())
    }

    /// Reads the current entry's data whole (its size was checked by the caller).
    pub fn read_data(&mut self) -> Result<Vec<u8>, Walk> {
        let size = self.left;
        let mut data = Vec::with_capacity(usize::try_from(size).unwrap_or(0).min(1 << 20));
        let copied = (&mut self.src).take(size).read_to_end(&mut data)? as u64;
        if copied < size {
            return Err(Walk::Bad(
                "the tar stream ends inside an entry's data".to_owned(),
            ));
        }
        self.left = 0;
        self.skip_rest()?;
        Ok(data)
    }

    /// The next entry, or `None` at the end of the archive (a header whose
    /// name starts with NUL, as dpkg decides, or the end of the input).
    pub fn next_entry(&mut self) -> Result<Option<Entry>, Walk> {
        self.skip_rest()?;
        let mut long_name: Option<Vec<u8>> = None;
        let mut long_link: Option<Vec<u8>> = None;
        let mut block = [0u8; BLOCK];
        loop {
            if !self.read_block(&mut block)? {
                if long_name.is_some() || long_link.is_some() {
                    return Err(Walk::Bad(
                        "the tar stream ends after a GNU long-name header".to_owned(),
                    ));
                }
                return Ok(None);
            }
            if block[0] == 0 {
                return Ok(None);
            }
            let h = parse_header(&block)?;
            self.left = h.size;
            self.pad = (BLOCK as u64 - h.size % BLOCK as u64) % BLOCK as u64;
            let kind = match h.typeflag {
                b'0' | 0 if h.name.ends_with(b"/") => Kind::Directory,
                b'0' | 0 => Kind::Regular,
                b'1' => Kind::HardLink,
                b'2' => Kind::Symlink,
                b'3' => Kind::CharDevice,
                b'4' => Kind::BlockDevice,
                b'5' => Kind::Directory,
                b'6' => Kind::Fifo,
                b'L' | b'K' => {
                    if h.size > MAX_LONG_NAME {
                        return Err(Walk::Bad(format!(
                            "a GNU long name of {} bytes (more than {MAX_LONG_NAME})",
                            h.size
                        )));
                    }
                    let mut data = self.read_data()?;
                    while data.last() == Some(&0) {
                        data.pop();
                    }
                    if h.typeflag == b'L' {
                        long_name = Some(data);
                    } else {
                        long_link = Some(data);
                    }
                    continue;
                }
                b'x' | b'g' => {
                    return Err(Walk::Bad(format!(
                        "entry {:?} is a pax extended header (type {:?}), which dpkg 1.21 \
                         refuses (\"unsupported PAX tar header type\"); build with dpkg-deb, \
                         which writes GNU tar",
                        String::from_utf8_lossy(&h.name),
                        char::from(h.typeflag)
                    )));
                }
                other => {
                    return Err(Walk::Bad(format!(
                        "entry {:?} has tar type {:?}, which dpkg does not extract",
                        String::from_utf8_lossy(&h.name),
                        char::from(other)
                    )));
                }
            };
            let name = long_name.take().unwrap_or(h.name);
            check_path(&name, "entry")?;
            let link = long_link.take().unwrap_or(h.link);
            if kind == Kind::HardLink {
                check_path(&link, "hard link target")?;
            }
            return Ok(Some(Entry {
                name,
                kind,
                size: if kind == Kind::Regular { h.size } else { 0 },
            }));
        }
    }
}

/// Reads and discards up to `n` bytes through `buf`; how many were there.
fn skip<R: Read>(src: &mut R, buf: &mut [u8], n: u64) -> io::Result<u64> {
    let mut done = 0;
    while done < n {
        let want = buf
            .len()
            .min(usize::try_from(n - done).unwrap_or(usize::MAX));
        match src.read(&mut buf[..want]) {
            Ok(0) => break,
            Ok(got) => done += got as u64,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

struct Header {
    name: Vec<u8>,
    link: Vec<u8>,
    size: u64,
    typeflag: u8,
}

fn cstr(field: &[u8]) -> &[u8] {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    &field[..end]
}

/// A numeric field: octal (space or NUL terminated, leading spaces allowed)
/// or GNU base-256 (high bit of the first byte set).
fn number(field: &[u8], what: &str) -> Result<u64, Walk> {
    if field[0] & 0x80 != 0 {
        if field[0] & 0x40 != 0 {
            return Err(Walk::Bad(format!("negative base-256 {what}")));
        }
        let mut v: u64 = u64::from(field[0] & 0x3f);
        for &b in &field[1..] {
            v = v
                .checked_mul(256)
                .and_then(|v| v.checked_add(u64::from(b)))
                .ok_or_else(|| Walk::Bad(format!("base-256 {what} overflows")))?;
        }
        return Ok(v);
    }
    let mut v: u64 = 0;
    let mut digits = 0;
    for &b in field {
        match b {
            b' ' if digits == 0 => {}
            b'0'..=b'7' => {
                digits += 1;
                v = v
                    .checked_mul(8)
                    .map(|v| v + u64::from(b - b'0'))
                    .ok_or_else(|| Walk::Bad(format!("octal {what} overflows")))?;
            }
            0 | b' ' => break,
            _ => {
                return Err(Walk::Bad(format!(
                    "{what} field {:?} is not an octal number",
                    String::from_utf8_lossy(field)
                )));
            }
        }
    }
    Ok(v)
}

fn parse_header(b: &[u8; BLOCK]) -> Result<Header, Walk> {
    let stored = number(&b[148..156], "checksum")?;
    let sum: u64 = b
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            if (148..156).contains(&i) {
                u64::from(b' ')
            } else {
                u64::from(c)
            }
        })
        .sum();
    if sum != stored {
        return Err(Walk::Bad(format!(
            "header checksum mismatch (stored {stored}, computed {sum}): not a tar stream, or corrupt"
        )));
    }
    let size = number(&b[124..136], "size")?;
    let mut name = cstr(&b[..100]).to_vec();
    // POSIX ustar (not GNU "ustar  ") splits long names into prefix/name.
    if &b[257..263] == b"ustar\0" {
        let prefix = cstr(&b[345..500]);
        if !prefix.is_empty() {
            let mut full = prefix.to_vec();
            full.push(b'/');
            full.extend_from_slice(&name);
            name = full;
        }
    }
    Ok(Header {
        name,
        link: cstr(&b[157..257]).to_vec(),
        size,
        typeflag: b[156],
    })
}

/// Refuses names dpkg must not extract outside its root: empty, absolute,
/// or with a `..` component.
pub(super) fn check_path(name: &[u8], what: &str) -> Result<(), Walk> {
    let shown = String::from_utf8_lossy(name);
    if name.is_empty() {
        return Err(Walk::Bad(format!("{what} with an empty name")));
    }
    if name.starts_with(b"/") {
        return Err(Walk::Bad(format!(
            "{what} {shown:?} is an absolute path (package paths are relative, `./usr/...`)"
        )));
    }
    if name.split(|&b| b == b'/').any(|c| c == b"..") {
        return Err(Walk::Bad(format!(
            "{what} {shown:?} has a `..` component (it would escape the install root)"
        )));
    }
    Ok(())
}
