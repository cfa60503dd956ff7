//! Publishing benchmarks: prints figures, asserts nothing about time.
//!
//! `cargo bench --bench publish` measures, on the local directory (and on
//! Garage when `PACKAGES_TEST_GARAGE_*` is set, e.g. after
//! `eval "$(scripts/test-servers.sh start)"`):
//! - latency of publishing one package into repos of each size in
//!   `PACKAGES_BENCH_SIZES` (default `100,1000,10000`), p50 and p99 over
//!   `PACKAGES_BENCH_SAMPLES` publishes (default 20);
//! - `index rebuild` time of the largest repo (every `.apk` re-read).
//!
//! Repos are seeded by storing generated packages directly and running one
//! rebuild (that rebuild is the figure reported). Run without `--bench`
//! (as `cargo test --all-targets` does) it does nothing.

use std::path::Path;
use std::time::{Duration, Instant};

use packages::formats::apk::builder::ApkBuilder;
use packages::keys;
use packages::publish::{Publisher, Upload};
use packages::repo::{Arch, Key, Org, RepoId, Scope, Segment};
use packages::storage::{LocalStore, Payload, PutMode, S3Settings, S3Store, Storage};
use packages::stores::Stores;

const TEST_KEY: &str = include_str!("../tests/fixtures/keys/test-signing.rsa");

fn env_list(name: &str, default: &str) -> Vec<usize> {
    std::env::var(name)
        .unwrap_or_else(|_| default.to_owned())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect()
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

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
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

async fn bench_store(
    label: &str,
    stores: Stores,
    sizes: &[usize],
    samples: usize,
    work: &Path,
) -> anyhow::Result<()> {
    let publisher = Publisher::new(stores.clone());
    let org = Org::parse("bench")?;
    publisher.create_org(&org).await.ok();
    let scope = Scope::new(
        org.clone(),
        Some(packages::repo::Distro::Alpine),
        None,
        None,
    )?;
    keys::import(&stores, &scope, TEST_KEY).await.ok();
    let arch = Arch::parse("x86_64")?;
    for &size in sizes {
        let repo = RepoId::parse("bench", "alpine", "v1", &format!("r{size}"))?;
        publisher
            .add_arches(&repo, std::slice::from_ref(&arch))
            .await?;
        seed(&stores, &repo, &arch, size).await?;
        let started = Instant::now();
        let state = publisher.rebuild(&repo.arch(arch.clone())).await?;
        let rebuild = started.elapsed();
        assert_eq!(state.packages, size);
        let mut latencies = Vec::with_capacity(samples);
        for s in 0..samples {
            let path = work.join(format!("new-{size}-{s}.apk"));
            std::fs::write(&path, package(s, &format!("new{size}")))?;
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
        }
        latencies.sort();
        println!(
            "{label:<8} repo of {size:>6} packages: publish 1 package p50 {:>8.1} ms  p99 {:>8.1} ms  (n={samples}); index rebuild {:>8.1} ms",
            percentile(&latencies, 0.5).as_secs_f64() * 1e3,
            percentile(&latencies, 0.99).as_secs_f64() * 1e3,
            rebuild.as_secs_f64() * 1e3,
        );
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if !std::env::args().any(|a| a == "--bench") {
        return Ok(());
    }
    let sizes = env_list("PACKAGES_BENCH_SIZES", "100,1000,10000");
    let samples = env_list("PACKAGES_BENCH_SAMPLES", "20")
        .first()
        .copied()
        .unwrap_or(20)
        .max(1);
    let work = tempfile::tempdir()?;

    let local_root = work.path().join("store");
    let local = Stores::shared(Storage::local(LocalStore::open(&local_root)?));
    bench_store("local", local, &sizes, samples, work.path()).await?;

    if let (Ok(endpoint), Ok(bucket), Ok(ak), Ok(sk)) = (
        std::env::var("PACKAGES_TEST_GARAGE_ENDPOINT"),
        std::env::var("PACKAGES_TEST_GARAGE_BUCKET"),
        std::env::var("PACKAGES_TEST_GARAGE_ACCESS_KEY"),
        std::env::var("PACKAGES_TEST_GARAGE_SECRET_KEY"),
    ) {
        let settings = S3Settings {
            endpoint: Some(endpoint),
            region: Some("us-east-1".to_owned()),
            credentials: Some((ak, sk)),
            virtual_hosted: false,
        };
        let prefix = format!("bench-{}", std::process::id());
        let store = S3Store::connect(&bucket, &prefix, &settings).await?;
        bench_store(
            "garage",
            Stores::shared(Storage::s3(store)),
            &sizes,
            samples,
            work.path(),
        )
        .await?;
    } else {
        println!(
            "garage   skipped: PACKAGES_TEST_GARAGE_* not set (eval \"$(scripts/test-servers.sh start)\")"
        );
    }
    Ok(())
}
