//! Tampering with a published apt repository, as an attacker or a broken mirror would, for
//! tests that apt refuses the result.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

/// Changes one byte of `path` in place (the byte at `offset`, XOR 0x01), keeping its size.
pub fn flip_byte(path: &Path, offset: usize) {
    let mut bytes = fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    assert!(
        offset < bytes.len(),
        "{} has no byte {offset}",
        path.display()
    );
    bytes[offset] ^= 0x01;
    overwrite(path, &bytes);
}

/// Replaces the contents of `path` and moves its modification time a minute on: a file
/// changed within the second it was written would otherwise keep its `Last-Modified`, and a
/// server answering `If-Modified-Since` would hide the change from a client behind a 304.
pub fn overwrite(path: &Path, bytes: &[u8]) {
    let old = fs::metadata(path)
        .and_then(|m| m.modified())
        .unwrap_or_else(|e| panic!("stat {}: {e}", path.display()));
    fs::write(path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    let later = std::cmp::max(old, SystemTime::now()) + Duration::from_secs(60);
    fs::File::options()
        .write(true)
        .open(path)
        .and_then(|f| f.set_modified(later))
        .unwrap_or_else(|e| panic!("set mtime of {}: {e}", path.display()));
}

/// Tampers with the `Packages` index of one `binary-<arch>` directory, as an attacker or a
/// broken mirror would: one letter of the first `Description:` changes (same size, still a
/// valid index), and every file under `dir` holding the old `Packages`, `Packages.gz` or
/// `Packages.xz` bytes (by-hash copies included) is replaced by the same kind of file made
/// from the tampered text. Returns the files rewritten.
pub fn tamper_packages(dir: &Path) -> Vec<PathBuf> {
    let plain = read_packages(dir);
    let mut tampered = plain.clone();
    let at = find(&tampered, b"Description: ").expect("a Description field in Packages") + 13;
    tampered[at] ^= 0x20; // flip the letter's case
    let originals = [
        (plain.clone(), tampered.clone()),
        (compress("gzip", &plain), compress("gzip", &tampered)),
        (compress("xz", &plain), compress("xz", &tampered)),
    ];
    let mut changed = Vec::new();
    for path in files_under(dir) {
        let bytes = fs::read(&path).expect("read index file");
        if let Some((_, new)) = originals.iter().find(|(old, _)| *old == bytes) {
            overwrite(&path, new);
            changed.push(path);
        } else if is_compressed_packages(&path) {
            // Compressed with other settings than ours: recognise it by its contents.
            if let Some(kind) = compression_of(&path) {
                if decompress(kind, &bytes) == plain {
                    overwrite(&path, &compress(kind, &tampered));
                    changed.push(path);
                }
            }
        }
    }
    assert!(
        !changed.is_empty(),
        "no Packages file under {}",
        dir.display()
    );
    changed
}

fn read_packages(dir: &Path) -> Vec<u8> {
    if let Ok(bytes) = fs::read(dir.join("Packages")) {
        return bytes;
    }
    for (name, kind) in [("Packages.gz", "gzip"), ("Packages.xz", "xz")] {
        if let Ok(bytes) = fs::read(dir.join(name)) {
            return decompress(kind, &bytes);
        }
    }
    // Only by-hash copies (one generation expected): the first that holds a Packages index.
    let by_hash = dir.join("by-hash");
    let mut candidates = if by_hash.is_dir() {
        files_under(&by_hash)
    } else {
        Vec::new()
    };
    candidates.sort();
    for path in candidates {
        let bytes = fs::read(&path).expect("read by-hash file");
        let plain = match compression_of(&path) {
            Some(kind) => decompress(kind, &bytes),
            None => bytes,
        };
        if plain.starts_with(b"Package: ") {
            return plain;
        }
    }
    panic!(
        "no Packages, Packages.gz, Packages.xz or by-hash copy in {}",
        dir.display()
    );
}

fn is_compressed_packages(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name.starts_with("Packages.") || path.components().any(|c| c.as_os_str() == "by-hash")
}

fn compression_of(path: &Path) -> Option<&'static str> {
    let mut magic = [0u8; 6];
    let mut file = fs::File::open(path).ok()?;
    file.read_exact(&mut magic).ok()?;
    if magic.starts_with(&[0x1f, 0x8b]) {
        Some("gzip")
    } else if magic == [0xfd, b'7', b'z', b'X', b'Z', 0] {
        Some("xz")
    } else {
        None
    }
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap_or_else(|e| panic!("read {}: {e}", d.display())) {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn compress(kind: &str, data: &[u8]) -> Vec<u8> {
    filter(kind, &["-9", "-n", "-c"], data)
}

fn decompress(kind: &str, data: &[u8]) -> Vec<u8> {
    filter(kind, &["-d", "-c"], data)
}

/// Runs `gzip` / `xz` as a filter over `data`.
fn filter(program: &str, args: &[&str], data: &[u8]) -> Vec<u8> {
    // xz has no -n (it stores no name or time): drop it.
    let args: Vec<&str> = args
        .iter()
        .copied()
        .filter(|a| program != "xz" || *a != "-n")
        .collect();
    let mut child = Command::new(program)
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    let mut stdin = child.stdin.take().expect("stdin");
    let input = data.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().expect("wait for compressor");
    writer.join().expect("writer thread");
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}
