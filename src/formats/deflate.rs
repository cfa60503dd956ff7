//! Deflate and gzip with one fixed encoder, `miniz_oxide`, called directly.
//!
//! Published indexes must come out byte for byte the same from the same
//! records, across releases: `index check` compares them with what the
//! records render to, and `index rebuild` promises the same bytes. `flate2`
//! picks its backend from the features of everything in the build (the `pgp`
//! crate switches it to `zlib-rs`, whose output differs), so the bytes we
//! publish would change with an unrelated dependency. Calling `miniz_oxide`
//! here pins the encoder flate2 used when those indexes were written.

use miniz_oxide::deflate::core::CompressorOxide;
use miniz_oxide::deflate::stream::deflate;
use miniz_oxide::{DataFormat, MZError, MZFlush, MZStatus};

/// `flate2::Compression::default()`.
pub const LEVEL_DEFAULT: u8 = 6;
/// `flate2::Compression::best()` (`gzip -9`).
pub const LEVEL_BEST: u8 = 9;

/// How a raw deflate run ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// A full flush: byte-aligned, not final, no back-references into what
    /// came before, so such runs concatenate into one stream.
    FullFlush,
    /// The final block.
    Finish,
}

/// Raw deflate of `input` at `level`, as flate2's miniz_oxide backend wrote it.
pub fn raw(input: &[u8], level: u8, end: End) -> Vec<u8> {
    let mut compressor: Box<CompressorOxide> = Box::default();
    compressor.set_format_and_level(DataFormat::Raw, level);
    let flush = match end {
        End::FullFlush => MZFlush::Full,
        End::Finish => MZFlush::Finish,
    };
    let mut out = vec![0u8; input.len() / 3 + 4096];
    let (mut consumed, mut written) = (0usize, 0usize);
    loop {
        if out.len() - written < 1024 {
            out.resize(out.len() * 2, 0);
        }
        let result = deflate(
            &mut compressor,
            &input[consumed..],
            &mut out[written..],
            flush,
        );
        consumed += result.bytes_consumed;
        written += result.bytes_written;
        let all_in = consumed == input.len();
        match result.status {
            Ok(MZStatus::StreamEnd) => break,
            // A full flush is complete when all input is in and output room is left over.
            Ok(_) | Err(MZError::Buf) if end == End::FullFlush && all_in && written < out.len() => {
                break;
            }
            Ok(_) | Err(MZError::Buf) => {}
            Err(e) => panic!("deflate of in-memory data failed: {e:?}"),
        }
    }
    out.truncate(written);
    out
}

/// One gzip member like `gzip -n -9`: no name, mtime 0, maximum-compression
/// flag, OS "Unix".
pub fn gzip_best(data: &[u8]) -> Vec<u8> {
    let body = raw(data, LEVEL_BEST, End::Finish);
    let mut out = Vec::with_capacity(body.len() + 18);
    out.extend_from_slice(&[0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x02, 0x03]);
    out.extend_from_slice(&body);
    let mut crc = crc32fast::Hasher::new();
    crc.update(data);
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    // ISIZE is the length modulo 2^32, by the gzip format.
    out.extend_from_slice(&((data.len() as u64 & 0xffff_ffff) as u32).to_le_bytes());
    out
}

/// The gzip header of members assembled from segments: no name, mtime 0,
/// OS Unix (no compression-level flag: segments may differ in level).
const SEGMENTS_GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0x03];

/// Assembles one gzip member from raw deflate segments, each ended by a
/// full flush ([`End::FullFlush`]), given as (bytes, CRC-32, text length):
/// a member assembled this way re-compresses only the segments that changed.
pub fn gzip_from_segments(segments: &[(&[u8], u32, u64)]) -> Vec<u8> {
    let size: usize = segments.iter().map(|(d, _, _)| d.len()).sum();
    let tail = raw(b"", LEVEL_DEFAULT, End::Finish);
    let mut out = Vec::with_capacity(SEGMENTS_GZIP_HEADER.len() + size + tail.len() + 8);
    out.extend_from_slice(&SEGMENTS_GZIP_HEADER);
    let mut crc = crc32fast::Hasher::new();
    let mut total: u64 = 0;
    for (deflate, crc32, len) in segments {
        out.extend_from_slice(deflate);
        crc.combine(&crc32fast::Hasher::new_with_initial_len(*crc32, *len));
        total += len;
    }
    out.extend_from_slice(&tail);
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    // ISIZE is the length modulo 2^32, by the gzip format.
    out.extend_from_slice(&((total & 0xffff_ffff) as u32).to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn gzip_reads_back_and_full_flush_runs_concatenate() {
        let text = "Package: a\nVersion: 1\n\n".repeat(5000);
        let member = gzip_best(text.as_bytes());
        let mut back = String::new();
        flate2::read::GzDecoder::new(member.as_slice())
            .read_to_string(&mut back)
            .unwrap();
        assert_eq!(back, text);
        let mut stream = raw(b"first ", LEVEL_DEFAULT, End::FullFlush);
        stream.extend(raw(text.as_bytes(), LEVEL_DEFAULT, End::FullFlush));
        stream.extend(raw(b"", LEVEL_DEFAULT, End::Finish));
        let mut back = String::new();
        flate2::read::DeflateDecoder::new(stream.as_slice())
            .read_to_string(&mut back)
            .unwrap();
        assert_eq!(back, format!("first {text}"));
    }
}
