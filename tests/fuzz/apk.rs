//! The `.apk` reader: mutated packages are refused cleanly or read into a
//! record that is within every limit and renders into index text apk reads.

use packages::formats::apk::builder::ApkBuilder;
use packages::formats::apk::limits::{self, Severity};
use packages::formats::apk::{ApkError, ApkLimits, read_package};
use rand::Rng as _;
use rand::seq::SliceRandom as _;
use sha2::{Digest as _, Sha256};

use crate::mutate;

/// Valid packages to start from: built ones of several shapes, and the fixtures.
fn seeds() -> Vec<Vec<u8>> {
    let mut seeds = vec![
        ApkBuilder::new("demo", "1.0-r0", "x86_64")
            .file("usr/bin/demo", b"#!/bin/sh\necho demo\n")
            .build(),
        ApkBuilder::new("links", "2.0_rc1-r3", "aarch64")
            .description("links and dirs")
            .depends(["so:libc.musl-aarch64.so.1", "other>=1.0", "!conflict"])
            .provide("cmd:links=2.0_rc1-r3")
            .install_if("links-base")
            .provider_priority(100)
            .dir("etc/links")
            .file_with_mode("usr/bin/links", b"binary", 0o755)
            .hardlink("usr/bin/links2", "usr/bin/links")
            .symlink("usr/bin/links3", "/bin/busybox")
            .script(".post-install", b"#!/bin/sh\nexit 0\n")
            .build(),
        ApkBuilder::new("noarch-data", "0.1-r0", "noarch")
            .file("usr/share/data/a", &[0u8; 3000])
            .file("usr/share/data/b", b"b")
            .build(),
    ];
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/alpine");
    for name in ["package-x-1.0.0-r0.apk", "gitea-test-1.4.1-r3.apk"] {
        seeds.push(std::fs::read(dir.join(name)).expect("fixture"));
    }
    seeds
}

/// Small enough that the loop stays fast, large enough for every seed.
fn limits() -> ApkLimits {
    ApkLimits {
        max_data_bytes: 4 << 20,
        max_control_bytes: 1 << 20,
        ..ApkLimits::default()
    }
}

fn check(input: &[u8]) -> Result<(), String> {
    let first = read_package(input, &limits());
    let second = read_package(input, &limits());
    match (&first, &second) {
        (Ok(a), Ok(b)) if a == b => {}
        (Err(a), Err(b)) if a.to_string() == b.to_string() => {}
        _ => return Err(format!("two reads differ: {first:?} / {second:?}")),
    }
    let package = match first {
        Ok(package) => package,
        Err(ApkError::Io(e)) => return Err(format!("an I/O error from a slice: {e}")),
        Err(e) => {
            let message = e.to_string();
            if message.len() > 4096 {
                return Err(format!("a {}-byte error message", message.len()));
            }
            return Ok(());
        }
    };
    let record = &package.record;
    if record.file_size != input.len() as u64 {
        return Err(format!("S: {} for {} bytes", record.file_size, input.len()));
    }
    if record.sha256 != hex::encode(Sha256::digest(input)) {
        return Err("sha256 is not the file's".to_owned());
    }
    limits::check_record(record).map_err(|e| format!("accepted over a limit: {e}"))?;
    let problems: Vec<_> = limits::check_rendered_record(record)
        .into_iter()
        .filter(|p| p.severity > Severity::Policy)
        .collect();
    if !problems.is_empty() {
        return Err(format!("accepted, but apk would not read it: {problems:?}"));
    }
    Ok(())
}

#[test]
fn fuzz_apk_reader() {
    let seeds = seeds();
    for seed in &seeds {
        check(seed).unwrap();
        assert!(read_package(seed.as_slice(), &limits()).is_ok());
    }
    crate::run(
        "apk",
        |rng| {
            let seed = seeds.choose(rng).expect("seeds");
            let mut input = if rng.gen_bool(0.6) {
                mutate::member(rng, seed)
            } else {
                let mut raw = seed.clone();
                mutate::bytes(rng, &mut raw);
                raw
            };
            // Sometimes stack a second mutation, or splice two seeds.
            match rng.gen_range(0..6) {
                0 => input = mutate::member(rng, &input),
                1 => {
                    let other = seeds.choose(rng).expect("seeds");
                    let cut = rng.gen_range(0..=input.len());
                    let from = rng.gen_range(0..=other.len());
                    input.truncate(cut);
                    input.extend_from_slice(&other[from..]);
                }
                _ => {}
            }
            input
        },
        check,
    );
}
