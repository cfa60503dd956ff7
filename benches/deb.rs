//! Debian benchmark (issue 9): adding one `.deb` to a 10,000-package suite.
//! Prints figures, asserts nothing about time.
//!
//! `cargo bench --bench deb`, on the local directory and on Garage when
//! `PACKAGES_TEST_GARAGE_*` is set (e.g. after `eval "$(scripts/test-servers.sh start)"`;
//! public tree in the test bucket, private tree in the private bucket, both
//! under a fresh `bench-deb-<pid>` prefix):
//! 1. `PACKAGES_BENCH_DEB_N` synthetic `.deb` files (default 10000) go into
//!    suite `stable`, component `main` of a fresh store in ONE
//!    `Publisher::upload_many` (timed);
//! 2. then `PACKAGES_BENCH_SAMPLES` more (default 20, distinct packages), one
//!    `Publisher::upload` each: p50 and p90 of the single-add time, and the
//!    store requests of one add (counted by a [`FaultyStore`] wrapped around
//!    each store: in process, no added latency); on the local directory also
//!    the files and bytes one add writes.
//!
//! The packages are the ones `scripts/deb-baselines.sh` times reprepro and
//! aptly on: `~/.cache/packages-bench/deb-N` (`PACKAGES_BENCH_CACHE` for
//! another directory), made by `../shared/bench/gen.py` (`PACKAGES_BENCH_GEN`)
//! when missing (10,000 take ~3 min on 2 cores; the time is printed); the
//! extra packages (`synth-<N+1>`...) go to `deb-adds-N-SAMPLES` beside them.
//! Compare with `scripts/deb-baselines.sh N` run right after, on the same
//! machine. The suite is signed with `tests/fixtures/keys/test-signing.pgp.asc`
//! (OpenPGP, RSA). `PACKAGES_BENCH_TRACE=1` prints the publish spans' times.
//! Run without `--bench` (as `cargo test --all-targets` does) it does nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail, ensure};
use packages::keys::{self, ChangeOptions};
use packages::publish::{Publisher, Upload};
use packages::repo::{Distro, Org, RepoId, Scope};
use packages::signing::Algorithm;
use packages::storage::{
    FaultHandle, FaultyStore, LocalStore, RequestCounts, S3Settings, S3Store, Storage,
};
use packages::stores::Stores;

const PGP_KEY: &str = include_str!("../tests/fixtures/keys/test-signing.pgp.asc");
const ORG: &str = "bench";
const DISTRO: &str = "debian";
const SUITE: &str = "stable";
const COMPONENT: &str = "main";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

fn percentile<T: Copy>(sorted: &[T], p: f64) -> T {
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The `.deb` files of `dir`, sorted.
fn debs_in(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("read {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "deb") {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

/// `count` synthetic packages `synth-<start>`... in `dir`, made with gen.py
/// when `dir` is missing (as `scripts/deb-baselines.sh` does).
fn ensure_debs(dir: &Path, count: usize, start: usize) -> anyhow::Result<Vec<PathBuf>> {
    if dir.is_dir() {
        let debs = debs_in(dir)?;
        ensure!(
            debs.len() == count,
            "{} holds {} .debs, not {count}: remove it and run again",
            dir.display(),
            debs.len()
        );
        return Ok(debs);
    }
    let generator = std::env::var("PACKAGES_BENCH_GEN").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/bench/gen.py").to_owned()
    });
    let partial = dir.with_extension("partial");
    let _ = std::fs::remove_dir_all(&partial);
    std::fs::create_dir_all(dir.parent().context("a cache directory")?)?;
    let started = Instant::now();
    let status = std::process::Command::new("python3")
        .arg(&generator)
        .args(["deb", &count.to_string()])
        .arg(&partial)
        .args(["--start", &start.to_string()])
        .status()
        .with_context(|| format!("run python3 {generator}"))?;
    ensure!(status.success(), "{generator} failed ({status})");
    std::fs::rename(&partial, dir)?;
    println!(
        "made {count} synthetic .debs into {} with {generator}: {:.1} s",
        dir.display(),
        started.elapsed().as_secs_f64()
    );
    debs_in(dir)
}

/// One store under test, with the request counters of its trees.
struct Place {
    label: &'static str,
    stores: Stores,
    counters: Vec<FaultHandle>,
    /// The local directory, to measure what one add writes.
    dir: Option<PathBuf>,
}

/// `storage` behind a counting [`FaultyStore`].
fn counted(storage: &Storage, counters: &mut Vec<FaultHandle>) -> Storage {
    let faulty = FaultyStore::new(storage.object_store().clone());
    counters.push(faulty.handle());
    Storage::new(Arc::new(faulty))
}

impl Place {
    fn reset_counts(&self) {
        for c in &self.counters {
            c.reset_counts();
        }
    }

    fn counts(&self) -> RequestCounts {
        let mut sum = RequestCounts::default();
        for c in &self.counters {
            let n = c.counts();
            sum.get += n.get;
            sum.head += n.head;
            sum.put += n.put;
            sum.list += n.list;
            sum.delete += n.delete;
            sum.copy += n.copy;
        }
        sum
    }
}

fn describe(c: &RequestCounts) -> String {
    format!(
        "{} (GET {}, HEAD {}, PUT {}, LIST {}, DELETE {}, COPY {})",
        c.total(),
        c.get,
        c.head,
        c.put,
        c.list,
        c.delete,
        c.copy
    )
}

/// Every file under `dir` with its size and modification time.
fn tree(dir: &Path, out: &mut BTreeMap<PathBuf, (u64, SystemTime)>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        if meta.is_dir() {
            tree(&entry.path(), out)?;
        } else {
            out.insert(entry.path(), (meta.len(), meta.modified()?));
        }
    }
    Ok(())
}

fn upload(repo: &RepoId, path: &Path) -> Upload {
    Upload {
        repo: repo.clone(),
        arch: None,
        extra_arches: Vec::new(),
        path: path.to_owned(),
        display_name: path.display().to_string(),
    }
}

async fn setup(stores: &Stores) -> anyhow::Result<Publisher> {
    let publisher = Publisher::new(stores.clone());
    let org = Org::parse(ORG)?;
    publisher.create_org(&org).await?;
    let scope = Scope::new(org, Some(Distro::parse(DISTRO)?), None, None)?;
    keys::import_with(
        stores,
        &scope,
        PGP_KEY,
        &ChangeOptions {
            algorithm: Algorithm::OpenPgp,
            ..Default::default()
        },
    )
    .await
    .context("import the OpenPGP test key")?;
    Ok(publisher)
}

/// The benchmark on one store.
async fn bench(place: &Place, base: &[PathBuf], adds: &[PathBuf]) -> anyhow::Result<()> {
    let publisher = setup(&place.stores).await?;
    let repo = RepoId::parse(ORG, DISTRO, SUITE, COMPONENT)?;
    let uploads: Vec<Upload> = base.iter().map(|p| upload(&repo, p)).collect();
    let started = Instant::now();
    let results = publisher.upload_many(&uploads).await?;
    let elapsed = started.elapsed();
    for (result, u) in results.iter().zip(&uploads) {
        if let Err(e) = result {
            bail!("{}: {e}", u.display_name);
        }
    }
    let listed = publisher.list(&repo, None).await?.len();
    ensure!(listed == base.len(), "listed {listed}, not {}", base.len());
    println!(
        "{:<7} {} .debs into {SUITE}/{COMPONENT} in one upload_many: {:.1} s ({:.0} packages/s)",
        place.label,
        base.len(),
        elapsed.as_secs_f64(),
        base.len() as f64 / elapsed.as_secs_f64()
    );

    let mut times = Vec::with_capacity(adds.len());
    let mut requests = Vec::with_capacity(adds.len());
    let mut written = None;
    for (i, path) in adds.iter().enumerate() {
        let last = i + 1 == adds.len();
        let before = match (&place.dir, last) {
            (Some(dir), true) => {
                let mut t = BTreeMap::new();
                tree(dir, &mut t)?;
                Some(t)
            }
            _ => None,
        };
        place.reset_counts();
        let started = Instant::now();
        publisher.upload(&upload(&repo, path)).await?;
        times.push(started.elapsed());
        requests.push(place.counts());
        if let (Some(dir), Some(before)) = (&place.dir, before) {
            let mut after = BTreeMap::new();
            tree(dir, &mut after)?;
            let changed: Vec<(&PathBuf, u64)> = after
                .iter()
                .filter(|(p, v)| before.get(*p) != Some(*v))
                .map(|(p, (size, _))| (p, *size))
                .collect();
            let mut largest: Vec<String> = Vec::new();
            let mut by_size = changed.clone();
            by_size.sort_by_key(|(_, size)| std::cmp::Reverse(*size));
            for (path, size) in by_size.iter().take(8) {
                let shown = path.strip_prefix(dir).unwrap_or(path);
                largest.push(format!("{:.2} MB {}", *size as f64 / 1e6, shown.display()));
            }
            written = Some((
                changed.len(),
                changed.iter().map(|(_, s)| s).sum::<u64>(),
                largest,
            ));
        }
    }
    let listed = publisher.list(&repo, None).await?.len();
    ensure!(
        listed == base.len() + adds.len(),
        "listed {listed}, not {}",
        base.len() + adds.len()
    );
    let mut sorted = times.clone();
    sorted.sort();
    let samples: Vec<String> = times.iter().map(|t| format!("{:.1}", ms(*t))).collect();
    println!(
        "{:<7} +1 .deb into {}: p50 {:.1} ms  p90 {:.1} ms  min {:.1} ms  max {:.1} ms  (n={}; samples in order: {})",
        place.label,
        base.len(),
        ms(percentile(&sorted, 0.5)),
        ms(percentile(&sorted, 0.9)),
        ms(sorted[0]),
        ms(sorted[sorted.len() - 1]),
        sorted.len(),
        samples.join(" ")
    );
    let mut totals: Vec<u64> = requests.iter().map(RequestCounts::total).collect();
    totals.sort();
    println!(
        "{:<7} store requests of one +1: median {} (min {}, max {}); last: {}",
        place.label,
        percentile(&totals, 0.5),
        totals[0],
        totals[totals.len() - 1],
        describe(requests.last().expect("at least one sample"))
    );
    if let Some((files, bytes, largest)) = written {
        println!(
            "{:<7} files written by the last +1: {files}, {:.2} MB; the largest:\n          {}",
            place.label,
            bytes as f64 / 1e6,
            largest.join("\n          ")
        );
    }
    Ok(())
}

fn local_place(root: &Path) -> anyhow::Result<Place> {
    let mut counters = Vec::new();
    let storage = counted(&Storage::local(LocalStore::open(root)?), &mut counters);
    Ok(Place {
        label: "local",
        stores: Stores::shared(storage),
        counters,
        dir: Some(root.to_owned()),
    })
}

/// The Garage place, when the test servers' variables are set.
async fn garage_place() -> anyhow::Result<Option<Place>> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let (Some(endpoint), Some(bucket), Some(private), Some(ak), Some(sk)) = (
        var("PACKAGES_TEST_GARAGE_ENDPOINT"),
        var("PACKAGES_TEST_GARAGE_BUCKET"),
        var("PACKAGES_TEST_GARAGE_PRIVATE_BUCKET"),
        var("PACKAGES_TEST_GARAGE_ACCESS_KEY"),
        var("PACKAGES_TEST_GARAGE_SECRET_KEY"),
    ) else {
        return Ok(None);
    };
    let settings = S3Settings {
        endpoint: Some(endpoint),
        region: Some(var("PACKAGES_TEST_GARAGE_REGION").unwrap_or_else(|| "us-east-1".into())),
        credentials: Some((ak, sk)),
        virtual_hosted: false,
    };
    let prefix = format!("bench-deb-{}", std::process::id());
    let mut counters = Vec::new();
    let public = counted(
        &Storage::s3(S3Store::connect(&bucket, &prefix, &settings).await?),
        &mut counters,
    );
    let private = counted(
        &Storage::s3(S3Store::connect(&private, &prefix, &settings).await?),
        &mut counters,
    );
    Ok(Some(Place {
        label: "garage",
        stores: Stores::separate(public, private),
        counters,
        dir: None,
    }))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if !std::env::args().any(|a| a == "--bench") {
        return Ok(());
    }
    if std::env::var("PACKAGES_BENCH_TRACE").is_ok_and(|v| v == "1") {
        tracing_subscriber::fmt()
            .with_env_filter("packages=debug")
            .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
            .init();
    }
    let n = env_usize("PACKAGES_BENCH_DEB_N", 10_000).max(1);
    let samples = env_usize("PACKAGES_BENCH_SAMPLES", 20).max(1);
    let cache = std::env::var_os("PACKAGES_BENCH_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/packages-bench")))
        .context("no HOME: set PACKAGES_BENCH_CACHE")?;
    let base = ensure_debs(&cache.join(format!("deb-{n}")), n, 1)?;
    let adds = ensure_debs(
        &cache.join(format!("deb-adds-{n}-{samples}")),
        samples,
        n + 1,
    )?;

    let work = tempfile::tempdir()?;
    let mut places = vec![local_place(&work.path().join("store"))?];
    match garage_place().await? {
        Some(place) => places.push(place),
        None => println!(
            "garage  skipped: PACKAGES_TEST_GARAGE_* not set (eval \"$(scripts/test-servers.sh start)\")"
        ),
    }
    for place in &places {
        bench(place, &base, &adds).await?;
    }
    Ok(())
}
