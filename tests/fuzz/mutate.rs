//! Mutations: on raw bytes, and on gzip members through their inflated bytes.

use std::io::{Read as _, Write as _};

use rand::Rng as _;
use rand::rngs::StdRng;
use rand::seq::SliceRandom as _;

/// Bytes that matter to the parsers: tar fields, `.PKGINFO` and index syntax.
const INTERESTING: &[u8] = b"\0 \n\t=:/.-_0123456789x7#$\"'{}()\\`;\xff\x80";

/// Applies 1 to 4 random byte-level mutations to `data`.
pub fn bytes(rng: &mut StdRng, data: &mut Vec<u8>) {
    for _ in 0..rng.gen_range(1..=4) {
        let len = data.len();
        match rng.gen_range(0..9) {
            0 if len > 0 => {
                let i = rng.gen_range(0..len);
                data[i] ^= 1 << rng.gen_range(0..8);
            }
            1 if len > 0 => {
                let i = rng.gen_range(0..len);
                data[i] = *INTERESTING.choose(rng).expect("not empty");
            }
            2 => {
                let i = rng.gen_range(0..=len);
                let n = rng.gen_range(1..=8);
                let fill: Vec<u8> = (0..n)
                    .map(|_| *INTERESTING.choose(rng).expect("not empty"))
                    .collect();
                data.splice(i..i, fill);
            }
            3 if len > 0 => {
                let i = rng.gen_range(0..len);
                let n = rng.gen_range(1..=(len - i).min(64));
                data.drain(i..i + n);
            }
            4 if len > 0 => {
                data.truncate(rng.gen_range(0..len));
            }
            5 if len > 1 => {
                // Copy a run of bytes elsewhere (repeats lines, headers).
                let from = rng.gen_range(0..len);
                let n = rng.gen_range(1..=(len - from).min(600));
                let run = data[from..from + n].to_vec();
                let at = rng.gen_range(0..=len);
                data.splice(at..at, run);
            }
            6 if len > 0 => {
                // A big number in ASCII (sizes, octal fields).
                let i = rng.gen_range(0..len);
                let text = match rng.gen_range(0..3) {
                    0 => u64::MAX.to_string(),
                    1 => "77777777777".to_owned(),
                    _ => rng.r#gen::<u32>().to_string(),
                };
                let end = (i + text.len()).min(len);
                data.splice(i..end, text.into_bytes());
            }
            7 => {
                // A long run of one byte (long lines, long names).
                let i = rng.gen_range(0..=len);
                let n = rng.gen_range(100..=70_000);
                let b = *INTERESTING.choose(rng).expect("not empty");
                data.splice(i..i, std::iter::repeat_n(b, n));
            }
            _ if len > 0 => {
                let i = rng.gen_range(0..len);
                data[i] = rng.r#gen();
            }
            _ => data.push(rng.r#gen()),
        }
    }
}

/// The gzip members of `data` as stored, or `None` when it is not a clean
/// concatenation of members.
pub fn split_members(data: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut rest = data;
    let mut out = Vec::new();
    while !rest.is_empty() {
        let mut decoder = flate2::bufread::GzDecoder::new(rest);
        let mut sink = Vec::new();
        decoder.read_to_end(&mut sink).ok()?;
        let after = decoder.into_inner();
        out.push(rest[..rest.len() - after.len()].to_vec());
        rest = after;
    }
    Some(out)
}

/// Inflates one member.
pub fn inflate(member: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(member)
        .read_to_end(&mut out)
        .expect("split_members checked it");
    out
}

/// Compresses like the package builder (fast level: this is a loop).
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).expect("to a Vec");
    e.finish().expect("to a Vec")
}

/// Mutates the inflated bytes of one gzip member of `apk` and re-compresses
/// it, or mutates the raw bytes when `apk` is not clean gzip.
pub fn member(rng: &mut StdRng, apk: &[u8]) -> Vec<u8> {
    let Some(mut members) = split_members(apk) else {
        let mut out = apk.to_vec();
        bytes(rng, &mut out);
        return out;
    };
    if members.is_empty() {
        return Vec::new();
    }
    let i = rng.gen_range(0..members.len());
    let mut inflated = inflate(&members[i]);
    if rng.gen_bool(0.3) {
        tar_header(rng, &mut inflated);
    } else {
        bytes(rng, &mut inflated);
    }
    members[i] = gzip(&inflated);
    members.concat()
}

/// Changes one field of one tar header block (found by its `ustar` magic),
/// fixing the checksum so the change reaches the reader's logic.
fn tar_header(rng: &mut StdRng, tar: &mut [u8]) {
    let headers: Vec<usize> = (0..tar.len() / 512)
        .map(|b| b * 512)
        .filter(|&at| tar.get(at + 257..at + 262) == Some(b"ustar"))
        .collect();
    let Some(&at) = headers.choose(rng) else {
        return;
    };
    let h = &mut tar[at..at + 512];
    match rng.gen_range(0..4) {
        // Type flag: devices, FIFOs, links, directories, pax, long names.
        0 => h[156] = *b"01234567xgLK".choose(rng).expect("not empty"),
        // Size.
        1 => {
            let size = format!("{:011o}\0", rng.gen_range(0u64..1 << 33));
            h[124..136].copy_from_slice(size.as_bytes());
        }
        // Name: a path apk treats specially.
        2 => {
            let names: [&[u8]; 8] = [
                b"a/../b",
                b"/etc/x",
                b"./x",
                b"link/x",
                b"usr",
                b"usr/bin",
                b".PKGINFO",
                b"x\x01y",
            ];
            let name = names.choose(rng).expect("not empty");
            h[..100].fill(0);
            h[..name.len()].copy_from_slice(name);
        }
        // Link target.
        _ => {
            let targets: [&[u8]; 4] = [b"/etc", b"..", b"usr/bin/x", b"missing"];
            let target = targets.choose(rng).expect("not empty");
            h[157..257].fill(0);
            h[157..157 + target.len()].copy_from_slice(target);
        }
    }
    h[148..156].fill(b' ');
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
}
