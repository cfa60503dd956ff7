//! `packages import` benchmark: prints figures, asserts nothing about time.
//!
//! `cargo bench --bench import` lays out a tree as the old service
//! (atlascloud/packages) does, with `PACKAGES_BENCH_IMPORT` generated `.apk`
//! files (default 1000) spread over two repos of one org, and times the
//! `packages` binary importing it into an empty store: the first run, and a
//! second run that finds everything imported. On the local directory, and
//! on Garage when `PACKAGES_TEST_GARAGE_*` is set (e.g. after
//! `eval "$(scripts/test-servers.sh start)"`). Run without `--bench` (as
//! `cargo test --all-targets` does) it does nothing.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};
use packages::formats::apk::builder::ApkBuilder;

#[path = "support/garage.rs"]
mod garage;

use garage::Garage;

/// The `packages` binary, built by cargo for this bench.
const BIN: &str = env!("CARGO_BIN_EXE_packages");

fn write(root: &Path, rel: &str, bytes: &[u8]) -> anyhow::Result<()> {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().context("a parent")?)?;
    std::fs::write(&path, bytes).with_context(|| path.display().to_string())
}

/// The old service's layout: the org's key as PKCS#1 (`openssl genrsa
/// -traditional`, as `abuild-keygen` writes it), a plaintext token, and
/// packages under `static/<org>/alpine/<version>/<repo>/<arch>/`.
fn old_tree(root: &Path, count: usize) -> anyhow::Result<()> {
    let key = root.join("config/acme/alpine/ops@example.org-65f1e2d3.rsa");
    std::fs::create_dir_all(key.parent().context("a parent")?)?;
    let status = Command::new("openssl")
        .args(["genrsa", "-traditional", "-out"])
        .arg(&key)
        .arg("2048")
        .stderr(std::process::Stdio::null())
        .status()
        .context("run openssl")?;
    if !status.success() {
        bail!("openssl genrsa failed");
    }
    write(
        root,
        "config/acme/tokens/ci",
        b"3f9a1c0b7d2e4f6a8b9c0d1e2f3a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c\n",
    )?;
    for repo in ["main", "community"] {
        std::fs::create_dir_all(root.join("config/acme/alpine/edge").join(repo))?;
    }
    for i in 0..count {
        let repo = if i % 2 == 0 { "main" } else { "community" };
        let name = format!("bench-import-{i:06}");
        let apk = ApkBuilder::new(&name, "1.0.0-r0", "x86_64")
            .description("a generated package for benchmarks")
            .file(
                &format!("usr/share/bench/{name}"),
                format!("{i}\n").as_bytes(),
            )
            .build();
        write(
            root,
            &format!("static/acme/alpine/edge/{repo}/x86_64/{name}-1.0.0-r0.apk"),
            &apk,
        )?;
    }
    Ok(())
}

/// Where to import: a label, the `--storage` argument, its environment.
type Place = (&'static str, String, Vec<(&'static str, String)>);

/// Runs the binary on `storage`; fails with its output when it fails.
fn packages(storage: &str, env: &[(&str, String)], args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new(BIN)
        .arg("--storage")
        .arg(storage)
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("RUST_LOG", "warn")
        .output()
        .context("run packages")?;
    if !out.status.success() {
        bail!(
            "packages {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    if !std::env::args().any(|a| a == "--bench") {
        return Ok(());
    }
    let count: usize = std::env::var("PACKAGES_BENCH_IMPORT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let work = tempfile::tempdir()?;
    let tree = work.path().join("srv-packages");
    old_tree(&tree, count)?;
    let from = tree.display().to_string();

    let mut places: Vec<Place> = vec![(
        "local",
        work.path().join("store").display().to_string(),
        Vec::new(),
    )];
    if let Some(garage) = Garage::from_env() {
        places.push(("garage", garage.storage("bench-import"), garage.env()));
    }
    for (label, storage, env) in &places {
        packages(storage, env, &["init"])?;
        let started = Instant::now();
        packages(storage, env, &["import", "--from-dir", &from])?;
        let first = started.elapsed();
        let started = Instant::now();
        packages(storage, env, &["import", "--from-dir", &from])?;
        let again = started.elapsed();
        println!(
            "{label:<7} import of {count} packages (2 repos): {:.2} s ({:.1} ms/package); \
             again (all skipped): {:.2} s",
            first.as_secs_f64(),
            first.as_secs_f64() * 1000.0 / count as f64,
            again.as_secs_f64()
        );
    }
    Ok(())
}
