//! The unsigned index as one gzip member assembled from independently
//! compressed segments, so a change re-compresses only the chunk it touches.
//!
//! apk 3 refuses an index whose signed part is several gzip members (checked
//! with apk-tools 3.0.6: "file format is invalid or inconsistent"; 2.14
//! accepts it), so the chunks cannot be gzip members of their own. Instead
//! each chunk's text is raw deflate ended by a *full flush*: byte-aligned,
//! not final, and with no back-references into earlier data. Such segments
//! concatenate into one valid deflate stream (the technique of `pigz`), and
//! the member's CRC-32 combines from the segments' CRCs without reading them.
//!
//! Member layout: gzip header, header segment (`DESCRIPTION` entry and the
//! `APKINDEX` tar header), one segment per non-empty chunk in chunk order,
//! trailer segment (tar padding and end-of-archive blocks, final block),
//! CRC-32 and size.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::ustar::{self, HeaderSpec};

/// How many chunks a repo arch's records are split into (by file name hash).
pub const CHUNKS: u32 = 64;

/// The gzip header every index member starts with: no name, mtime 0,
/// maximum-compression flag, OS Unix (as `gzip -n -9` on Linux writes).
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x02, 0x03];

/// Which chunk the package with this `.apk` file name belongs to.
pub fn chunk_of(file_name: &str) -> u32 {
    let digest = Sha256::digest(file_name.as_bytes());
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) % CHUNKS
}

/// Raw deflate of some text, ended by a full flush, with its CRC-32 and length.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TextSegment {
    /// The compressed bytes.
    pub deflate: Vec<u8>,
    /// CRC-32 of the uncompressed text.
    pub crc32: u32,
    /// Length of the uncompressed text.
    pub text_len: u64,
}

/// Compresses `text` as a segment; `last` ends the deflate stream instead of flushing.
pub fn compress_segment(text: &[u8], last: bool) -> TextSegment {
    use crate::formats::deflate::{End, LEVEL_DEFAULT, raw};
    let end = if last { End::Finish } else { End::FullFlush };
    let out = raw(text, LEVEL_DEFAULT, end);
    let mut crc = crc32fast::Hasher::new();
    crc.update(text);
    TextSegment {
        deflate: out,
        crc32: crc.finalize(),
        text_len: text.len() as u64,
    }
}

/// Assembles the unsigned index member from the chunks' segments (in chunk
/// order): `DESCRIPTION` (already cut to size) and `APKINDEX`, whose text is
/// the segments' texts one after another.
pub fn assemble_unsigned(description: &str, segments: &[&TextSegment]) -> Vec<u8> {
    assemble_unsigned_with_spans(description, segments).0
}

/// [`assemble_unsigned`], also returning where each segment's deflate bytes
/// sit in the member (`(offset, length)`), so a later update can copy them.
pub fn assemble_unsigned_with_spans(
    description: &str,
    segments: &[&TextSegment],
) -> (Vec<u8>, Vec<(u64, u64)>) {
    let text_len: u64 = segments.iter().map(|s| s.text_len).sum();
    let mut head = Vec::with_capacity(2048);
    ustar::append_entry(
        &mut head,
        &HeaderSpec::file(b"DESCRIPTION", description.len() as u64, 0o644),
        description.as_bytes(),
        &[],
    );
    head.extend_from_slice(&ustar::header(&HeaderSpec::file(
        b"APKINDEX",
        text_len,
        0o644,
    )));
    let head = compress_segment(&head, false);

    let padding = usize::try_from((512 - text_len % 512) % 512).expect("less than a block");
    let tail = compress_segment(&vec![0u8; padding + 1024], true);

    let size: usize = segments.iter().map(|s| s.deflate.len()).sum();
    let mut member =
        Vec::with_capacity(GZIP_HEADER.len() + head.deflate.len() + size + tail.deflate.len() + 8);
    member.extend_from_slice(&GZIP_HEADER);
    let mut crc = crc32fast::Hasher::new_with_initial_len(head.crc32, head.text_len);
    member.extend_from_slice(&head.deflate);
    let mut spans = Vec::with_capacity(segments.len());
    for segment in segments {
        spans.push((member.len() as u64, segment.deflate.len() as u64));
        member.extend_from_slice(&segment.deflate);
        crc.combine(&crc32fast::Hasher::new_with_initial_len(
            segment.crc32,
            segment.text_len,
        ));
    }
    member.extend_from_slice(&tail.deflate);
    crc.combine(&crc32fast::Hasher::new_with_initial_len(
        tail.crc32,
        tail.text_len,
    ));
    let total = head.text_len + text_len + tail.text_len;
    member.extend_from_slice(&crc.finalize().to_le_bytes());
    // ISIZE is the length modulo 2^32, by the gzip format.
    member.extend_from_slice(&((total & 0xffff_ffff) as u32).to_le_bytes());
    (member, spans)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn segments_concatenate_into_one_valid_member() {
        let a = "P:a\nV:1-r0\n\n".repeat(1000);
        let b = "P:b\nV:2-r0\n\n".repeat(3);
        let segments = [
            compress_segment(a.as_bytes(), false),
            compress_segment(b.as_bytes(), false),
        ];
        let member = assemble_unsigned("desc", &segments.iter().collect::<Vec<_>>());
        // One member: a single-member decoder reads it all, and nothing follows.
        let mut decoder = flate2::read::GzDecoder::new(member.as_slice());
        let mut tar = Vec::new();
        decoder.read_to_end(&mut tar).unwrap();
        let mut archive = tar::Archive::new(tar.as_slice());
        let mut entries = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let mut data = String::new();
            entry.read_to_string(&mut data).unwrap();
            entries.push((entry.path().unwrap().display().to_string(), data));
        }
        assert_eq!(entries[0], ("DESCRIPTION".to_owned(), "desc".to_owned()));
        assert_eq!(entries[1], ("APKINDEX".to_owned(), format!("{a}{b}")));
        assert_eq!(entries.len(), 2);
        // gzip -t checks the CRC and size too.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("i.gz");
        std::fs::write(&path, &member).unwrap();
        let status = std::process::Command::new("gzip")
            .arg("-t")
            .arg(&path)
            .status()
            .unwrap();
        assert!(status.success(), "gzip -t rejects the assembled member");
    }

    #[test]
    fn empty_text_and_chunking_are_stable() {
        let member = assemble_unsigned("", &[]);
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(member.as_slice())
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out.len(), 512 * 2 + 1024);
        assert_eq!(chunk_of("a-1.0-r0.apk"), chunk_of("a-1.0-r0.apk"));
        assert!(
            (0..200)
                .map(|i| chunk_of(&format!("p{i}-1-r0.apk")))
                .all(|c| c < CHUNKS)
        );
    }
}
