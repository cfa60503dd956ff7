//! RPM benchmark (issue 10): adding one `.rpm` to a 10,000-package repository.
//! Prints figures, asserts nothing about time.
//!
//! `cargo bench --bench rpm`, on the local directory and on Garage when
//! `PACKAGES_TEST_GARAGE_*` is set (e.g. after `eval "$(scripts/test-servers.sh start)"`;
//! public tree in the test bucket, private tree in the private bucket, both
//! under a fresh `bench-rpm-<pid>` prefix):
//! 1. `PACKAGES_BENCH_RPM_N` synthetic `.rpm` files (default 10000) go into
//!    repository `fedora/40/server` of a fresh store in ONE
//!    `Publisher::upload_many` (timed; every file targets `x86_64`, the
//!    `noarch` ones too, since a fresh repository has no arch yet);
//! 2. then `PACKAGES_BENCH_SAMPLES` more (default 20, distinct packages), one
//!    `Publisher::upload` each, signed as published by default: p50 and p90
//!    of the single-add time, and the store requests of one add (counted by a
//!    [`FaultyStore`] wrapped around each store: in process, no added
//!    latency); on the local directory also the files and bytes one add
//!    writes;
//! 3. then as many again through a publisher with package signing off
//!    (`Publisher::with_rpm_signing(false)`, same repository): what signing
//!    each package costs.
//!
//! The packages are the ones `scripts/rpm-baselines.sh` times createrepo_c on:
//! `~/.cache/packages-bench/rpm-N` (`PACKAGES_BENCH_CACHE` for another
//! directory), made by `../shared/bench/gen.py` (`PACKAGES_BENCH_GEN`) when
//! missing (10,000 take ~6 min on 2 cores; the time is printed); the extra
//! packages (`synth-<N+1>`...) go to `rpm-adds-N-<2 x SAMPLES>` beside them.
//! Compare with `scripts/rpm-baselines.sh N` run right after, on the same
//! machine. The repository metadata and the packages are signed with
//! `tests/fixtures/keys/test-signing.pgp.asc` (OpenPGP, RSA); the publisher
//! has a public URL, so each publish also writes the `.repo` file.
//! `PACKAGES_BENCH_TRACE=1` prints the publish spans' times.
//! Run without `--bench` (as `cargo test --all-targets` does) it does nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail, ensure};
use packages::keys::{self, ChangeOptions};
use packages::publish::{Publisher, Upload};
use packages::repo::{Arch, Distro, Org, RepoId, Scope};
use packages::signing::Algorithm;
use packages::storage::{
    FaultHandle, FaultyStore, LocalStore, RequestCounts, S3Settings, S3Store, Storage,
};
use packages::stores::Stores;

const PGP_KEY: &str = include_str!("../tests/fixtures/keys/test-signing.pgp.asc");
const ORG: &str = "bench";
const DISTRO: &str = "fedora";
const VERSION: &str = "40";
const REPO: &str = "server";
const PUBLIC_URL: &str = "https://packages.example.invalid";

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

/// The `.rpm` files of `dir`, sorted.
fn rpms_in(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("read {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "rpm") {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

/// `count` synthetic packages `synth-<start>`... in `dir`, made with gen.py
/// when `dir` is missing (as `scripts/rpm-baselines.sh` does).
fn ensure_rpms(dir: &Path, count: usize, start: usize) -> anyhow::Result<Vec<PathBuf>> {
    if dir.is_dir() {
        let rpms = rpms_in(dir)?;
        ensure!(
            rpms.len() == count,
            "{} holds {} .rpms, not {count}: remove it and run again",
            dir.display(),
            rpms.len()
        );
        return Ok(rpms);
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
        .args(["rpm", &count.to_string()])
        .arg(&partial)
        .args(["--start", &start.to_string()])
        .status()
        .with_context(|| format!("run python3 {generator}"))?;
    ensure!(status.success(), "{generator} failed ({status})");
    std::fs::rename(&partial, dir)?;
    println!(
        "made {count} synthetic .rpms into {} with {generator}: {:.1} s",
        dir.display(),
        started.elapsed().as_secs_f64()
    );
    rpms_in(dir)
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

/// What one add wrote to the local directory: files, bytes, the largest.
struct Written {
    files: usize,
    bytes: u64,
    largest: Vec<String>,
}

fn written(dir: &Path, before: &BTreeMap<PathBuf, (u64, SystemTime)>) -> anyhow::Result<Written> {
    let mut after = BTreeMap::new();
    tree(dir, &mut after)?;
    let mut changed: Vec<(&PathBuf, u64)> = after
        .iter()
        .filter(|(p, v)| before.get(*p) != Some(*v))
        .map(|(p, (size, _))| (p, *size))
        .collect();
    changed.sort_by_key(|(_, size)| std::cmp::Reverse(*size));
    let largest = changed
        .iter()
        .take(8)
        .map(|(path, size)| {
            let shown = path.strip_prefix(dir).unwrap_or(path);
            format!("{:.3} MB {}", *size as f64 / 1e6, shown.display())
        })
        .collect();
    Ok(Written {
        files: changed.len(),
        bytes: changed.iter().map(|(_, s)| s).sum(),
        largest,
    })
}

fn upload(repo: &RepoId, arch: Option<&Arch>, path: &Path) -> Upload {
    Upload {
        repo: repo.clone(),
        arch: arch.cloned(),
        extra_arches: Vec::new(),
        path: path.to_owned(),
        display_name: path.display().to_string(),
    }
}

async fn setup(stores: &Stores) -> anyhow::Result<Publisher> {
    let publisher = Publisher::new(stores.clone())
        .with_public_url(Some(PUBLIC_URL.to_owned()))
        .with_rpm_signing(true);
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

/// Adds `adds` one by one with `publisher` into `repo` (holding `held`
/// packages) and prints the times, requests and (local) bytes written.
async fn single_adds(
    place: &Place,
    publisher: &Publisher,
    repo: &RepoId,
    held: usize,
    adds: &[PathBuf],
    what: &str,
) -> anyhow::Result<()> {
    let mut times = Vec::with_capacity(adds.len());
    let mut requests = Vec::with_capacity(adds.len());
    let mut bytes = Vec::with_capacity(adds.len());
    let mut last = None;
    for path in adds {
        let before = match &place.dir {
            Some(dir) => {
                let mut t = BTreeMap::new();
                tree(dir, &mut t)?;
                Some(t)
            }
            None => None,
        };
        place.reset_counts();
        let started = Instant::now();
        publisher.upload(&upload(repo, None, path)).await?;
        times.push(started.elapsed());
        requests.push(place.counts());
        if let (Some(dir), Some(before)) = (&place.dir, before) {
            let w = written(dir, &before)?;
            bytes.push(w.bytes);
            last = Some(w);
        }
    }
    let listed = publisher.list(repo, None).await?.len();
    ensure!(
        listed == held + adds.len(),
        "listed {listed}, not {}",
        held + adds.len()
    );
    let mut sorted = times.clone();
    sorted.sort();
    let samples: Vec<String> = times.iter().map(|t| format!("{:.1}", ms(*t))).collect();
    println!(
        "{:<7} +1 .rpm ({what}) into {held}: p50 {:.1} ms  p90 {:.1} ms  min {:.1} ms  max {:.1} ms  (n={}; samples in order: {})",
        place.label,
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
        "{:<7} store requests of one +1 ({what}): median {} (min {}, max {}); last: {}",
        place.label,
        percentile(&totals, 0.5),
        totals[0],
        totals[totals.len() - 1],
        describe(requests.last().expect("at least one sample"))
    );
    if let Some(w) = last {
        bytes.sort();
        println!(
            "{:<7} bytes written by one +1 ({what}): median {:.3} MB (min {:.3}, max {:.3}); the last wrote {} files, the largest:\n          {}",
            place.label,
            percentile(&bytes, 0.5) as f64 / 1e6,
            bytes[0] as f64 / 1e6,
            bytes[bytes.len() - 1] as f64 / 1e6,
            w.files,
            w.largest.join("\n          ")
        );
    }
    Ok(())
}

/// The benchmark on one store.
async fn bench(place: &Place, base: &[PathBuf], adds: &[PathBuf]) -> anyhow::Result<()> {
    let publisher = setup(&place.stores).await?;
    let repo = RepoId::parse(ORG, DISTRO, VERSION, REPO)?;
    let x86_64 = Arch::parse("x86_64")?;
    let uploads: Vec<Upload> = base
        .iter()
        .map(|p| upload(&repo, Some(&x86_64), p))
        .collect();
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
        "{:<7} {} .rpms (signed) into {DISTRO}/{VERSION}/{REPO} in one upload_many: {:.1} s ({:.0} packages/s)",
        place.label,
        base.len(),
        elapsed.as_secs_f64(),
        base.len() as f64 / elapsed.as_secs_f64()
    );

    let (signed, unsigned) = adds.split_at(adds.len() / 2);
    single_adds(place, &publisher, &repo, base.len(), signed, "signed").await?;
    let plain = Publisher::new(place.stores.clone())
        .with_public_url(Some(PUBLIC_URL.to_owned()))
        .with_rpm_signing(false);
    let held = base.len() + signed.len();
    single_adds(place, &plain, &repo, held, unsigned, "unsigned").await?;
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
    let prefix = format!("bench-rpm-{}", std::process::id());
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
    let n = env_usize("PACKAGES_BENCH_RPM_N", 10_000).max(1);
    let samples = env_usize("PACKAGES_BENCH_SAMPLES", 20).max(1);
    let cache = std::env::var_os("PACKAGES_BENCH_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/packages-bench")))
        .context("no HOME: set PACKAGES_BENCH_CACHE")?;
    let base = ensure_rpms(&cache.join(format!("rpm-{n}")), n, 1)?;
    // Half signed, half with signing off.
    let adds = ensure_rpms(
        &cache.join(format!("rpm-adds-{n}-{}", 2 * samples)),
        2 * samples,
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
