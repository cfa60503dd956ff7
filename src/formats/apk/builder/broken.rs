//! The raw data entries some [`Breakage`]s add (links, devices, FIFOs), written
//! without the parent directories the builder adds for ordinary files.

use sha1::{Digest as _, Sha1};

use super::{ApkBuilder, Breakage, HeaderSpec, ustar};

impl ApkBuilder {
    /// The entries of the breakages that add raw entries to the data tar.
    pub(super) fn append_broken_entries(&self, tar: &mut Vec<u8>, mtime: u64) {
        let special = |tar: &mut Vec<u8>, name: &str, typeflag: u8, link: &str| {
            let spec = HeaderSpec {
                name: name.as_bytes(),
                typeflag,
                size: 0,
                mode: 0o644,
                mtime,
                link: link.as_bytes(),
            };
            ustar::append_entry(tar, &spec, b"", &[]);
        };
        let file = |tar: &mut Vec<u8>, name: &str| {
            let sha1 = hex::encode(Sha1::digest(b"x"));
            let spec = HeaderSpec {
                mtime,
                ..HeaderSpec::file(name.as_bytes(), 1, 0o644)
            };
            ustar::append_entry(tar, &spec, b"x", &[(ustar::PAX_SHA1, sha1.as_bytes())]);
        };
        for breakage in &self.breakages {
            match breakage {
                Breakage::ThroughSymlink => {
                    special(tar, "etc-link", b'2', "/etc");
                    file(tar, "etc-link/passwd");
                }
                Breakage::CharDevice => special(tar, "dev-null", b'3', ""),
                Breakage::BlockDevice => special(tar, "dev-sda", b'4', ""),
                Breakage::Fifo => special(tar, "fifo", b'6', ""),
                Breakage::MissingParentDir => file(tar, "no-dir/file"),
                Breakage::DanglingHardLink => special(tar, "dangling", b'1', "not-in-package"),
                _ => {}
            }
        }
    }
}
