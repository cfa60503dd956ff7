//! Fuzz loops for every parser that takes untrusted input (the apk reader,
//! the `APKBUILD` reader, the index check, multipart uploads through the
//! router), on the stable toolchain: seeded random mutations of valid inputs,
//! each target for a fixed time, checking properties rather than only "no panic".
//!
//! ```text
//! cargo test --test fuzz                                  # 1 s per target (part of every test run)
//! PACKAGES_FUZZ_SECS=15 cargo test --test fuzz            # the smoke phase of scripts/test
//! PACKAGES_FUZZ_SECS=600 cargo test --release --test fuzz -- --nocapture   # a longer run
//! PACKAGES_FUZZ_SEED=1234 cargo test --test fuzz apk      # replay one seed
//! ```
//!
//! Each target prints its seed and executions. An input that breaks a
//! property is written to `target/fuzz-failures/<target>-<seed>-<n>.bin`
//! before the test fails, so it can be replayed and turned into a unit test.
//! Mutations work both on the raw bytes and on the decompressed structure
//! (gzip members re-compressed after the change), so they get past the gzip
//! CRCs into the tar, `.PKGINFO` and tree checks.

mod apk;
mod apkbuild;
mod index_text;
mod multipart;
mod mutate;

use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{RngCore as _, SeedableRng as _};

/// How long each target runs.
fn duration() -> Duration {
    let secs = std::env::var("PACKAGES_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(1.0);
    Duration::from_secs_f64(secs)
}

/// The seed: `PACKAGES_FUZZ_SEED`, or a fresh one (printed, to replay).
fn seed() -> u64 {
    std::env::var("PACKAGES_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::rngs::OsRng.next_u64())
}

/// Runs `check` on inputs from `generate` until the time is up. `check`
/// returns `Err(why)` when a property does not hold; a panic counts too.
/// Returns the number of executions.
pub fn run(
    target: &str,
    mut generate: impl FnMut(&mut StdRng) -> Vec<u8>,
    check: impl Fn(&[u8]) -> Result<(), String>,
) -> u64 {
    let seed = seed();
    let mut rng = StdRng::seed_from_u64(seed);
    let until = Instant::now() + duration();
    let start = Instant::now();
    let mut execs = 0u64;
    while execs == 0 || Instant::now() < until {
        let input = generate(&mut rng);
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| check(&input)));
        let failure = match outcome {
            Ok(Ok(())) => None,
            Ok(Err(why)) => Some(why),
            Err(panic) => Some(format!(
                "panicked: {}",
                panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("?")
            )),
        };
        if let Some(why) = failure {
            let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
                .parent()
                .unwrap_or(std::path::Path::new("."))
                .join("fuzz-failures");
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join(format!("{target}-{seed}-{execs}.bin"));
            std::fs::write(&path, &input).unwrap();
            panic!(
                "{target}: seed {seed}, execution {execs}: {why}\ninput saved to {}",
                path.display()
            );
        }
        execs += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "fuzz {target}: seed {seed}, {execs} executions in {secs:.1} s ({:.0}/s), no failure",
        execs as f64 / secs
    );
    execs
}
