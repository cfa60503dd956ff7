//! Hostile and broken inputs: each must be refused with an error that names
//! the problem, never a panic, and never by allocating what a header claims
//! before checking it against the limits.

use md5::Md5;
use sha1::Sha1;
use sha2::{Digest as _, Sha256};

use super::tests::{fixture_dir, fixtures};
use super::*;

fn tool() -> Vec<u8> {
    std::fs::read(fixture_dir().join("acc-tool-2.0-1.x86_64.rpm")).expect("fixture")
}

fn refuse(bytes: &[u8]) -> RpmError {
    refuse_with(bytes, &RpmLimits::default())
}

fn refuse_with(bytes: &[u8], limits: &RpmLimits) -> RpmError {
    match read_rpm(bytes, limits) {
        Ok(pkg) => panic!("accepted: {}", pkg.file_name()),
        Err(e) => e,
    }
}

fn assert_msg(err: &RpmError, needle: &str) {
    let msg = err.to_string();
    assert!(msg.contains(needle), "{needle:?} not in {msg:?}");
}

fn be32(b: &[u8], at: usize) -> usize {
    u32::from_be_bytes(b[at..at + 4].try_into().expect("4")) as usize
}

fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

/// Where one header's parts sit in the file.
struct Hdr {
    start: usize,
    entries: usize,
    store: usize,
}

impl Hdr {
    fn at(b: &[u8], start: usize) -> Self {
        Self {
            start,
            entries: be32(b, start + 8),
            store: start + 16 + 16 * be32(b, start + 8),
        }
    }
    fn end(&self, b: &[u8]) -> usize {
        self.store + be32(b, self.start + 12)
    }
    /// File offset of entry `i`.
    fn entry(&self, i: usize) -> usize {
        self.start + 16 + 16 * i
    }
    /// Entry index and file offset of the data of `tag`.
    fn find(&self, b: &[u8], tag: u32) -> (usize, usize) {
        (0..self.entries)
            .find(|&i| be32(b, self.entry(i)) == tag as usize)
            .map(|i| (self.entry(i), self.store + be32(b, self.entry(i) + 8)))
            .unwrap_or_else(|| panic!("no tag {tag}"))
    }
}

fn headers(b: &[u8]) -> (Hdr, Hdr) {
    let sig = Hdr::at(b, 96);
    let main_start = sig.end(b).div_ceil(8) * 8;
    let main = Hdr::at(b, main_start);
    (sig, main)
}

/// Where the signature header's digests and the main header sit in a
/// valid file.
struct DigestSpots {
    sha256: usize,
    sha1: usize,
    md5: usize,
    main: (usize, usize),
}

fn digest_spots(b: &[u8]) -> DigestSpots {
    let (sig, main) = headers(b);
    DigestSpots {
        sha256: sig.find(b, 273).1,
        sha1: sig.find(b, 269).1,
        md5: sig.find(b, 1004).1,
        main: (main.start, main.end(b)),
    }
}

/// Recomputes the signature header's digests after the main header or the
/// payload changed, as a forger would, at the places `spots` found in the
/// file before it changed (never panics, whatever the bytes now hold).
fn redigest_at(b: &mut [u8], spots: &DigestSpots) {
    let (start, end) = spots.main;
    if b.len() <= end || spots.md5 + 16 > b.len() {
        return;
    }
    let header = b[start..end].to_vec();
    b[spots.sha256..spots.sha256 + 64]
        .copy_from_slice(hex::encode(Sha256::digest(&header)).as_bytes());
    b[spots.sha1..spots.sha1 + 40].copy_from_slice(hex::encode(Sha1::digest(&header)).as_bytes());
    let md5 = Md5::digest(&b[start..]);
    b[spots.md5..spots.md5 + 16].copy_from_slice(&md5);
}

/// [`redigest_at`] for a file whose layout is still intact.
fn redigest(b: &mut [u8]) {
    let spots = digest_spots(b);
    redigest_at(b, &spots);
}

/// Replaces the string data of main-header `tag` in place (same length),
/// then fixes the digests.
fn set_string(b: &mut [u8], tag: u32, value: &str) {
    let (_, main) = headers(b);
    let (_, at) = main.find(b, tag);
    let old = b[at..].iter().position(|&c| c == 0).expect("NUL");
    assert_eq!(old, value.len(), "same length");
    b[at..at + old].copy_from_slice(value.as_bytes());
    redigest(b);
}

#[test]
fn redigest_alone_keeps_a_fixture_valid() {
    let mut b = tool();
    redigest(&mut b);
    assert_eq!(b, tool());
    read_rpm(&b[..], &RpmLimits::default()).expect("still valid");
}

#[test]
fn truncated_at_every_offset_is_refused() {
    let bytes = tool();
    for cut in 0..bytes.len() {
        let err = refuse(&bytes[..cut]);
        assert!(
            matches!(
                err,
                RpmError::Truncated(_) | RpmError::NotRpm(_) | RpmError::Digest { .. }
            ),
            "cut at {cut}: {err}"
        );
    }
    let (_, main) = headers(&bytes);
    assert_msg(&refuse(&bytes[..main.end(&bytes)]), "payload");
    assert_msg(&refuse(&bytes[..main.start + 3]), "main header");
    assert_msg(&refuse(&bytes[..150]), "signature header");
    assert_msg(&refuse(&bytes[..50]), "the lead");
    assert_msg(&refuse(b""), "empty");
}

#[test]
fn bad_magics_and_lead() {
    let good = tool();
    let (sig, main) = headers(&good);
    let cases: [(usize, u8, &str); 6] = [
        (0, 0xee, "lead magic"),
        (4, 2, "format version 2"),
        (79, 4, "signature type 4"),
        (sig.start, 0x8f, "signature header: bad magic"),
        (main.start + 2, 0, "main header: bad magic"),
        (main.start + 7, 1, "main header: bad magic"),
    ];
    for (at, value, needle) in cases {
        let mut b = good.clone();
        b[at] = value;
        assert_msg(&refuse(&b), needle);
    }
    assert_msg(
        &refuse(b"!<arch>\ndebian-binary   ".repeat(8).as_slice()),
        "not an .rpm",
    );
}

#[test]
fn index_entries_pointing_outside_the_store() {
    let good = tool();
    let (sig, main) = headers(&good);
    let main_dl = be32(&good, main.start + 12) as u32;

    // NAME's data offset past the store.
    let mut b = good.clone();
    let (entry, _) = main.find(&b, 1000);
    put32(&mut b, entry + 8, main_dl + 100);
    assert_msg(&refuse(&b), "outside the");
    // A negative offset.
    put32(&mut b, entry + 8, 0xffff_fff0);
    assert_msg(&refuse(&b), "outside the");
    // Overlapping the previous tag's data.
    let mut b = good.clone();
    put32(&mut b, entry + 8, 0);
    assert_msg(&refuse(&b), "overlaps");
    // The region trailer outside the store.
    let mut b = good.clone();
    put32(&mut b, main.entry(0) + 8, main_dl);
    assert_msg(&refuse(&b), "region trailer");
    // A signature-header entry outside its store.
    let mut b = good.clone();
    let (entry, _) = sig.find(&b, 273);
    put32(&mut b, entry + 8, 1 << 20);
    assert_msg(&refuse(&b), "signature header: tag 273 (entry 2): offset");
    // An INT32 tag misaligned.
    let mut b = good.clone();
    let (entry, _) = main.find(&b, 1006);
    let off = be32(&b, entry + 8) as u32;
    put32(&mut b, entry + 8, off + 1);
    assert_msg(&refuse(&b), "not aligned");
    // An unknown data type, a reserved tag number.
    let mut b = good.clone();
    put32(&mut b, entry + 4, 17);
    assert_msg(&refuse(&b), "unknown data type 17");
    let mut b = good.clone();
    put32(&mut b, entry, 7);
    assert_msg(&refuse(&b), "reserved tag");
    // A duplicated tag.
    let mut b = good.clone();
    put32(&mut b, entry, 1005);
    assert_msg(&refuse(&b), "twice");
}

#[test]
fn huge_counts_are_refused_before_allocating() {
    let good = tool();
    let (sig, main) = headers(&good);
    let mut b = good.clone();
    put32(&mut b, sig.start + 8, u32::MAX);
    assert!(matches!(refuse(&b), RpmError::Limit { .. }));
    let mut b = good.clone();
    put32(&mut b, sig.start + 12, u32::MAX);
    assert_msg(&refuse(&b), "data store");
    let mut b = good.clone();
    put32(&mut b, main.start + 8, 1 << 20);
    assert_msg(&refuse(&b), "1048576 index entries");
    let mut b = good.clone();
    put32(&mut b, main.start + 12, 0xffff_fff0);
    assert!(matches!(refuse(&b), RpmError::Limit { .. }));
    let mut b = good.clone();
    put32(&mut b, main.start + 8, 0);
    assert_msg(&refuse(&b), "no index entries");

    // Counts larger than the store.
    for (tag, count, needle) in [
        (1006, 0x4000_0000, "run past the end"),
        (1006, u32::MAX, "run past the end"),
        (1049, 1 << 20, "not all NUL-terminated"),
        (1000, 2, "STRING with count 2"),
        (1000, 0, "count 0"),
    ] {
        let mut b = good.clone();
        let (entry, _) = main.find(&b, tag);
        put32(&mut b, entry + 12, count);
        assert_msg(&refuse(&b), needle);
    }
    // A string running to the end of the store without its NUL: NAME moved
    // to the last byte (the region trailer's count, 16).
    let mut b = good.clone();
    let (entry, _) = main.find(&b, 1000);
    let last = be32(&b, main.start + 12) as u32 - 1;
    put32(&mut b, entry + 8, last);
    assert_msg(&refuse(&b), "NUL-terminated");
}

#[test]
fn digest_mismatches_are_refused() {
    let good = tool();
    let (sig, main) = headers(&good);
    // A payload byte.
    let mut b = good.clone();
    let last = b.len() - 20;
    b[last] ^= 1;
    let err = refuse(&b);
    assert!(matches!(err, RpmError::Digest { .. }), "{err}");
    assert_msg(&err, "payload SHA-256 mismatch");
    // A main-header byte (the description's text).
    let mut b = good.clone();
    let (_, at) = main.find(&b, 1005);
    b[at] ^= 0x20;
    assert_msg(&refuse(&b), "header SHA-256 mismatch");
    // The recorded digests themselves.
    for (tag, needle) in [
        (273, "header SHA-256"),
        (269, "header SHA-1"),
        (1004, "header and payload MD5"),
    ] {
        let mut b = good.clone();
        let (_, at) = sig.find(&b, tag);
        b[at] = if b[at] == b'0' { b'1' } else { b'0' };
        assert_msg(&refuse(&b), needle);
    }
    // A forged header passes the signature-header digests, not the payload's.
    let mut b = good.clone();
    let (_, at) = main.find(&b, 5092);
    b[at] = if b[at] == b'0' { b'1' } else { b'0' };
    redigest(&mut b);
    assert_msg(&refuse(&b), "payload SHA-256 mismatch");
}

#[test]
fn invalid_fields_are_refused() {
    for (tag, value, needle) in [
        (1000, "acc/tool", "NAME"),
        (1000, "acc tool", "not a valid package name"),
        (1000, "-cc-tool", "NAME"),
        (1001, "-", "VERSION"),
        (1002, "-", "RELEASE"),
        (1022, "x86-64", "ARCH"),
        (1022, "x86/64", "ARCH"),
    ] {
        let mut b = tool();
        let (_, main) = headers(&b);
        let (_, at) = main.find(&b, tag);
        let len = b[at..].iter().position(|&c| c == 0).expect("NUL");
        let padded = format!("{value:x<len$}");
        set_string(&mut b, tag, &padded);
        let err = refuse(&b);
        assert!(matches!(err, RpmError::Field { .. }), "{err}");
        assert_msg(&err, needle);
    }
    // Not UTF-8.
    let mut b = tool();
    let (_, main) = headers(&b);
    let (_, at) = main.find(&b, 1004);
    b[at] = 0xff;
    redigest(&mut b);
    assert_msg(&refuse(&b), "not UTF-8");
}

#[test]
fn source_rpm_markers_are_refused() {
    // SOURCERPM renamed to an unknown tag: no SOURCERPM, a source package.
    let mut b = tool();
    let (_, main) = headers(&b);
    let (entry, _) = main.find(&b, 1044);
    put32(&mut b, entry, 20000);
    redigest(&mut b);
    assert!(matches!(refuse(&b), RpmError::SourcePackage(_)));
}

#[test]
fn small_limits_are_enforced() {
    let b = tool();
    let tight = |f: fn(&mut RpmLimits)| {
        let mut l = RpmLimits::default();
        f(&mut l);
        l
    };
    for (limits, needle) in [
        (tight(|l| l.max_signature_entries = 3), "signature header"),
        (tight(|l| l.max_signature_store = 100), "signature header"),
        (tight(|l| l.max_header_entries = 10), "main header"),
        (tight(|l| l.max_header_bytes = 1000), "main header"),
        (tight(|l| l.max_tag_bytes = 16), "holds"),
        (tight(|l| l.max_files = 0), "1 files"),
        (tight(|l| l.max_path_bytes = 10), "file paths"),
        (tight(|l| l.max_payload_bytes = 10), "payload"),
    ] {
        let err = refuse_with(&b, &limits);
        assert!(matches!(err, RpmError::Limit { .. }), "{err}");
        assert_msg(&err, needle);
    }
}

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn random_mutations_never_panic() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let originals: Vec<Vec<u8>> = fixtures()
        .iter()
        .map(|p| std::fs::read(p).expect("fixture"))
        .collect();
    let mut accepted = 0;
    for round in 0..4000 {
        let mut b = originals[round % originals.len()].clone();
        let spots = digest_spots(&b);
        let (_, main) = headers(&b);
        let main_end = main.end(&b);
        // Mostly inside the headers, where the parsing is.
        let span = if rng.below(4) == 0 { b.len() } else { main_end };
        match rng.below(5) {
            0 => {
                let at = rng.below(span);
                b.truncate(at);
            }
            1 => {
                let at = rng.below(span);
                let n = rng.below(64).min(b.len() - at);
                b.drain(at..at + n);
            }
            2 => {
                // A 32-bit field set to an edge value.
                let at = rng.below(span - 4) & !3;
                let v = [0, 1, 0x7fff_ffff, 0x8000_0000, u32::MAX, 16, 0x1000_0000];
                put32(&mut b, at, v[rng.below(v.len())]);
            }
            _ => {
                for _ in 0..=rng.below(4) {
                    let at = rng.below(span);
                    b[at] ^= 1 << rng.below(8);
                }
            }
        }
        if rng.below(2) == 0 {
            // Let mutations reach the field checks past the digests.
            redigest_at(&mut b, &spots);
        }
        if read_rpm(&b[..], &RpmLimits::default()).is_ok() {
            accepted += 1;
        }
    }
    // Some mutations are harmless (the lead's legacy name, the padding,
    // redigested text); most are refused.
    assert!(accepted < 2000, "{accepted} of 4000 mutations accepted");
}
