//! Publishing benchmarks: prints figures, asserts nothing about time.
//!
//! `cargo bench --bench publish` measures, on the local directory (and on
//! Garage when `PACKAGES_TEST_GARAGE_*` is set, e.g. after
//! `eval "$(scripts/test-servers.sh start)"`):
//! - latency of publishing one package into repos of each size in
//!   `PACKAGES_BENCH_SIZES` (default `10000,50000`), p50 and p99 over
//!   `PACKAGES_BENCH_SAMPLES` publishes (default 20); on Garage also the S3
//!   requests each publish sent (counted by a loopback proxy in front of
//!   Garage, `benches/support/counting_proxy.rs`; SDK retries included);
//! - `index rebuild` time of each repo (every `.apk` re-read);
//! - `PACKAGES_BENCH_BATCH` small packages (default 10000; 0 skips) in ONE
//!   `packages upload` command (the binary cargo builds next to this bench);
//! - on the local directory, the private tree of one repo arch after
//!   `PACKAGES_BENCH_SINGLES` single uploads (default 10000; 0 skips), each
//!   its own publish, with no `gc`: its size against the live records'.
//!
//! Repos are seeded by storing generated packages directly and running one
//! rebuild (that rebuild is the figure reported). Run without `--bench`
//! (as `cargo test --all-targets` does) it does nothing.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use packages::formats::apk::builder::ApkBuilder;
use packages::index;
use packages::keys;
use packages::publish::{Publisher, Upload};
use packages::repo::{Arch, Key, Org, RepoId, Scope, Segment};
use packages::storage::{LocalStore, Payload, PutMode, S3Settings, S3Store, Storage};
use packages::stores::Stores;

#[path = "support/counting_proxy.rs"]
mod counting_proxy;

use counting_proxy::Counts;

const TEST_KEY: &str = include_str!("../tests/fixtures/keys/test-signing.rsa");
/// The `packages` binary, built by cargo for this bench.
const BIN: &str = env!("CARGO_BIN_EXE_packages");

fn env_list(name: &str, default: &str) -> Vec<usize> {
    std::env::var(name)
        .unwrap_or_else(|_| default.to_owned())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

fn env_one(name: &str, default: usize) -> usize {
    env_list(name, &default.to_string())
        .first()
        .copied()
        .unwrap_or(default)
}

fn package(i: usize, tag: &str) -> Vec<u8> {
    ApkBuilder::new(&format!("bench-{tag}-{i:06}"), "1.0.0-r0", "x86_64")
        .description("a generated package for benchmarks")
        .depend("so:libc.musl-x86_64.so.1")
        .provide(&format!("cmd:bench-{i}=1.0.0-r0"))
        .file(
            &format!("usr/bin/bench-{i}"),
            format!("#!/bin/sh\necho {i}\n").as_bytes(),
        )
        .build()
}

fn percentile<T: Copy>(sorted: &[T], p: f64) -> T {
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// One store under test, and how the CLI reaches it.
struct Place {
    label: &'static str,
    stores: Stores,
    /// `--storage` for the CLI.
    storage: String,
    /// Environment for the CLI.
    env: Vec<(&'static str, String)>,
    /// Requests counted on the way to the store (S3 only).
    counts: Option<Arc<Counts>>,
}

impl Place {
    fn cli(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(BIN);
        cmd.arg("--storage").arg(&self.storage);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd.env("RUST_LOG", "warn");
        cmd
    }
}

async fn seed(stores: &Stores, repo: &RepoId, arch: &Arch, size: usize) -> anyhow::Result<()> {
    let repo_arch = repo.arch(arch.clone());
    let mut tasks = tokio::task::JoinSet::new();
    for chunk_start in (0..size).step_by(size.div_ceil(8).max(1)) {
        let stores = stores.clone();
        let repo_arch = repo_arch.clone();
        let end = (chunk_start + size.div_ceil(8).max(1)).min(size);
        tasks.spawn(async move {
            for i in chunk_start..end {
                let bytes = package(i, "seed");
                let file = Segment::parse("file name", &format!("bench-seed-{i:06}-1.0.0-r0.apk"))?;
                let key = Key::Package {
                    arch: repo_arch.clone(),
                    file,
                };
                stores
                    .put(&key, Payload::from(bytes), PutMode::Overwrite)
                    .await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(())
}

async fn setup(place: &Place) -> anyhow::Result<Publisher> {
    let publisher = Publisher::new(place.stores.clone());
    let org = Org::parse("bench")?;
    publisher.create_org(&org).await.ok();
    let scope = Scope::new(
        org.clone(),
        Some(packages::repo::Distro::ALPINE),
        None,
        None,
    )?;
    keys::import(&place.stores, &scope, TEST_KEY).await.ok();
    Ok(publisher)
}

/// Publish latency (and S3 requests) by repo size.
async fn bench_sizes(
    place: &Place,
    publisher: &Publisher,
    sizes: &[usize],
    samples: usize,
    work: &Path,
) -> anyhow::Result<()> {
    let arch = Arch::parse("x86_64")?;
    for &size in sizes {
        let repo = RepoId::parse("bench", "alpine", "v1", &format!("r{size}"))?;
        publisher
            .add_arches(&repo, std::slice::from_ref(&arch))
            .await?;
        seed(&place.stores, &repo, &arch, size).await?;
        let started = Instant::now();
        let state = publisher.rebuild(&repo.arch(arch.clone())).await?;
        let rebuild = started.elapsed();
        assert_eq!(state.packages, size);
        let mut latencies = Vec::with_capacity(samples);
        let mut requests = Vec::with_capacity(samples);
        let mut kinds = std::collections::BTreeMap::new();
        for s in 0..samples {
            let path = work.join(format!("new-{size}-{s}.apk"));
            std::fs::write(&path, package(s, &format!("new{size}")))?;
            let before = place.counts.as_ref().map(|c| c.snapshot());
            let started = Instant::now();
            publisher
                .upload(&Upload {
                    repo: repo.clone(),
                    arch: None,
                    extra_arches: Vec::new(),
                    path: path.clone(),
                    display_name: path.display().to_string(),
                })
                .await?;
            latencies.push(started.elapsed());
            if let (Some(counts), Some(before)) = (&place.counts, before) {
                let (total, by_kind) = counting_proxy::delta(&before, &counts.snapshot());
                requests.push(total);
                kinds = by_kind;
            }
        }
        latencies.sort();
        requests.sort();
        let requests = if requests.is_empty() {
            String::new()
        } else {
            format!(
                "; S3 requests per publish median {} (min {}, max {}; last: {kinds:?})",
                percentile(&requests, 0.5),
                requests[0],
                requests[requests.len() - 1]
            )
        };
        println!(
            "{:<8} repo of {size:>6} packages: publish 1 package p50 {:>8.1} ms  p99 {:>8.1} ms  (n={samples}); index rebuild {:>8.1} ms{requests}",
            place.label,
            ms(percentile(&latencies, 0.5)),
            ms(percentile(&latencies, 0.99)),
            ms(rebuild),
        );
    }
    Ok(())
}

/// `count` small packages in one `packages upload` command.
async fn bench_batch(place: &Place, count: usize, work: &Path) -> anyhow::Result<()> {
    let dir = work.join(format!("batch-{}", place.label));
    std::fs::create_dir_all(&dir)?;
    let mut files = Vec::with_capacity(count);
    for i in 0..count {
        let path = dir.join(format!("bench-batch-{i:06}-1.0.0-r0.apk"));
        std::fs::write(&path, package(i, "batch"))?;
        files.push(path);
    }
    let args = [
        "upload",
        "--org",
        "bench",
        "--version",
        "v1",
        "--repo",
        "batch",
        "--arch",
        "x86_64",
    ];
    let started = Instant::now();
    let out = tokio::task::spawn_blocking({
        let mut cmd = place.cli();
        cmd.args(args).args(&files);
        move || cmd.output()
    })
    .await?
    .with_context(|| format!("cannot run {BIN}"))?;
    let elapsed = started.elapsed();
    if !out.status.success() {
        bail!(
            "`packages upload` of {count} files failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let repo = RepoId::parse("bench", "alpine", "v1", "batch")?;
    let (manifest, _) =
        index::read_manifest(&place.stores, &repo.arch(Arch::parse("x86_64")?)).await?;
    if manifest.packages() != count {
        bail!(
            "after the batch the index lists {} packages, not {count}",
            manifest.packages()
        );
    }
    println!(
        "{:<8} {count} small packages in one `packages upload`: {:.1} s ({:.0} packages/s), {} state generation(s)",
        place.label,
        elapsed.as_secs_f64(),
        count as f64 / elapsed.as_secs_f64(),
        manifest.generation,
    );
    Ok(())
}

/// Sums the sizes of the files under `dir` (recursively); returns (bytes, files).
fn tree_size(dir: &Path) -> std::io::Result<(u64, usize)> {
    let mut total = (0, 0);
    if !dir.exists() {
        return Ok(total);
    }
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        if meta.is_dir() {
            let (bytes, files) = tree_size(&entry.path())?;
            total.0 += bytes;
            total.1 += files;
        } else {
            total.0 += meta.len();
            total.1 += 1;
        }
    }
    Ok(total)
}

/// `count` single uploads, each its own publish, with no `gc`: the size of
/// the repo arch's private tree against the live records' (local only).
async fn bench_private_growth(
    place: &Place,
    publisher: &Publisher,
    root: &Path,
    count: usize,
    work: &Path,
) -> anyhow::Result<()> {
    let repo = RepoId::parse("bench", "alpine", "v1", "singles")?;
    let arch = repo.arch(Arch::parse("x86_64")?);
    let path = work.join("single.apk");
    let started = Instant::now();
    let mut packages_size = 0u64;
    for i in 0..count {
        let bytes = package(i, "single");
        packages_size += bytes.len() as u64;
        std::fs::write(&path, bytes)?;
        publisher
            .upload(&Upload {
                repo: repo.clone(),
                arch: None,
                extra_arches: Vec::new(),
                path: path.clone(),
                display_name: format!("single {i}"),
            })
            .await?;
    }
    let elapsed = started.elapsed();
    let pending = Key::pending_prefix(&packages::repo::RootId::from(arch.clone()));
    let private_dir = root.join(pending.trim_end_matches('/').trim_end_matches("pending"));
    let (private_bytes, private_files) = tree_size(&private_dir)?;
    let mut live_bytes = 0u64;
    let live = index::live_chunk_keys(&place.stores, &arch).await?;
    for key in &live {
        live_bytes += std::fs::metadata(root.join(key))?.len();
    }
    println!(
        "{:<8} after {count} single uploads ({:.1} s, {:.0}/s), no gc: private tree {:.1} MB in {private_files} objects; live records {:.1} MB in {} objects ({:.1}x); packages {:.1} MB",
        place.label,
        elapsed.as_secs_f64(),
        count as f64 / elapsed.as_secs_f64(),
        private_bytes as f64 / 1e6,
        live_bytes as f64 / 1e6,
        live.len(),
        private_bytes as f64 / live_bytes.max(1) as f64,
        packages_size as f64 / 1e6,
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if !std::env::args().any(|a| a == "--bench") {
        return Ok(());
    }
    let sizes = env_list("PACKAGES_BENCH_SIZES", "10000,50000");
    let samples = env_one("PACKAGES_BENCH_SAMPLES", 20).max(1);
    let batch = env_one("PACKAGES_BENCH_BATCH", 10_000);
    let singles = env_one("PACKAGES_BENCH_SINGLES", 10_000);
    let work = tempfile::tempdir()?;

    let local_root = work.path().join("store");
    let local = Place {
        label: "local",
        stores: Stores::shared(Storage::local(LocalStore::open(&local_root)?)),
        storage: local_root.display().to_string(),
        env: Vec::new(),
        counts: None,
    };
    let mut places = vec![local];

    if let (Ok(endpoint), Ok(bucket), Ok(ak), Ok(sk)) = (
        std::env::var("PACKAGES_TEST_GARAGE_ENDPOINT"),
        std::env::var("PACKAGES_TEST_GARAGE_BUCKET"),
        std::env::var("PACKAGES_TEST_GARAGE_ACCESS_KEY"),
        std::env::var("PACKAGES_TEST_GARAGE_SECRET_KEY"),
    ) {
        let region =
            std::env::var("PACKAGES_TEST_GARAGE_REGION").unwrap_or_else(|_| "us-east-1".into());
        let (proxy, counts) = counting_proxy::start(&endpoint).await?;
        let settings = S3Settings {
            endpoint: Some(proxy),
            region: Some(region.clone()),
            credentials: Some((ak.clone(), sk.clone())),
            virtual_hosted: false,
        };
        let prefix = format!("bench-{}", std::process::id());
        let store = S3Store::connect(&bucket, &prefix, &settings).await?;
        places.push(Place {
            label: "garage",
            stores: Stores::shared(Storage::s3(store)),
            storage: format!("s3://{bucket}/{prefix}"),
            env: vec![
                ("AWS_ENDPOINT_URL", endpoint),
                ("AWS_ACCESS_KEY_ID", ak),
                ("AWS_SECRET_ACCESS_KEY", sk),
                ("AWS_REGION", region),
            ],
            counts: Some(counts),
        });
    } else {
        println!(
            "garage   skipped: PACKAGES_TEST_GARAGE_* not set (eval \"$(scripts/test-servers.sh start)\")"
        );
    }

    for place in &places {
        let publisher = setup(place).await?;
        bench_sizes(place, &publisher, &sizes, samples, work.path()).await?;
        if batch > 0 {
            bench_batch(place, batch, work.path()).await?;
        }
        if singles > 0 && place.label == "local" {
            bench_private_growth(place, &publisher, &local_root, singles, work.path()).await?;
        }
    }
    Ok(())
}
