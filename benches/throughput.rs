//! Upload-service benchmarks: prints figures, asserts nothing about time.
//!
//! `cargo bench --bench throughput` runs real `packages serve` processes (the
//! `packages` binary cargo builds next to this bench, `CARGO_BIN_EXE_packages`)
//! on one shared store: the local directory, and Garage when
//! `PACKAGES_TEST_GARAGE_*` is set (e.g. after
//! `eval "$(scripts/test-servers.sh start)"`). It measures:
//! - packages/s, and p50/p99 latency of one upload, for each number of
//!   concurrent uploaders in `PACKAGES_BENCH_UPLOADERS` (default `1,4,16,50`)
//!   through each number of service instances in `PACKAGES_BENCH_INSTANCES`
//!   (default `1,3`): `PACKAGES_BENCH_UPLOADS` small packages (default 200)
//!   into a fresh repo, uploaded with the v1 route (`PACKAGES_BENCH_ROUTE=compat`:
//!   the compatibility route), round-robin over the instances. A failed
//!   upload is counted (and reported with whether its package was listed
//!   anyway), not retried. Afterwards the repo must list every acknowledged
//!   package;
//! - the peak RSS growth of one service instance receiving one upload of
//!   `PACKAGES_BENCH_BIG_UPLOAD_MIB` MiB (default 1024; 0 skips it): a body
//!   that is not a package, so it is streamed to `--upload-dir` whole and then
//!   refused at parse (422), as in the test `api::a_1_gib_upload_streams_to_disk`.
//!   The peak is `VmHWM` of `/proc/<pid>/status`, reset before the upload
//!   through `/proc/<pid>/clear_refs`.
//!
//! The org, signing key (`tests/fixtures/keys/test-signing.rsa`) and admin
//! token are set up with the CLI (`org create`, `key import`, `admin init`).
//! Run without `--bench` (as `cargo test --all-targets` does) it does nothing.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use packages::formats::apk::builder::ApkBuilder;
use reqwest::header;
use tokio::process::{Child, Command};

#[path = "support/garage.rs"]
mod garage;

use garage::Garage;

/// The `packages` binary, built by cargo for this bench.
const BIN: &str = env!("CARGO_BIN_EXE_packages");
const TEST_KEY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/keys/test-signing.rsa"
);
const ORG: &str = "bench";
const VERSION: &str = "edge";
const ARCH: &str = "x86_64";
const BOUNDARY: &str = "------------------------benchb0undary5a5a";

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

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// A store every process of a run shares: `--storage` and its environment.
struct Place {
    label: &'static str,
    storage: String,
    env: Vec<(&'static str, String)>,
}

impl Place {
    fn command(&self) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.arg("--storage").arg(&self.storage);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd.env("RUST_LOG", "warn").stdin(Stdio::null());
        cmd.kill_on_drop(true);
        cmd
    }

    /// Runs a CLI command; returns its stdout.
    async fn cli(&self, args: &[&str]) -> Result<String> {
        let out = self
            .command()
            .args(args)
            .output()
            .await
            .with_context(|| format!("cannot run {BIN}"))?;
        if !out.status.success() {
            bail!(
                "`packages {}` failed ({}): {}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Creates the org, imports the signing key; returns a new admin token.
    async fn setup(&self) -> Result<String> {
        self.cli(&["org", "create", ORG]).await?;
        self.cli(&["key", "import", "--org", ORG, "--file", TEST_KEY])
            .await?;
        let out = self.cli(&["admin", "init"]).await?;
        let token = out
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .context("`admin init` printed no token")?;
        Ok(token.trim().to_owned())
    }
}

/// One `packages serve` process.
struct Server {
    child: Child,
    pid: u32,
    base: String,
}

impl Server {
    /// Starts an instance on a free loopback port; waits until it is ready.
    async fn start(place: &Place, work: &Path, name: &str, extra: &[&str]) -> Result<Server> {
        let mut last = None;
        for attempt in 0..3 {
            match Self::try_start(place, work, &format!("{name}-{attempt}"), extra).await {
                Ok(server) => return Ok(server),
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("at least one attempt"))
    }

    async fn try_start(place: &Place, work: &Path, name: &str, extra: &[&str]) -> Result<Server> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let listen = format!("127.0.0.1:{port}");
        let log_path = work.join(format!("serve-{}-{name}.log", place.label));
        let log = std::fs::File::create(&log_path)?;
        let mut child = place
            .command()
            .args(["serve", "--listen", &listen, "--gc-interval-secs", "0"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot run {BIN}"))?;
        let pid = child.id().context("no pid")?;
        let base = format!("http://{listen}");
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = child.try_wait()? {
                bail!(
                    "`packages serve` exited with {status}: {}",
                    std::fs::read_to_string(&log_path).unwrap_or_default()
                );
            }
            if let Ok(r) = client.get(format!("{base}/health/ready")).send().await {
                if r.status().is_success() {
                    return Ok(Server { child, pid, base });
                }
            }
            if Instant::now() > deadline {
                bail!("`packages serve` on {listen} not ready within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn stop(mut self) {
        self.child.kill().await.ok();
    }
}

/// A generated package: its file name and bytes.
struct Package {
    file: String,
    bytes: Bytes,
}

fn packages(count: usize) -> Vec<Package> {
    (0..count)
        .map(|i| {
            let builder = ApkBuilder::new(&format!("tput-{i:06}"), "1.0.0-r0", ARCH)
                .description("a generated package for benchmarks")
                .depend("so:libc.musl-x86_64.so.1")
                .provide(&format!("cmd:tput-{i}=1.0.0-r0"))
                .file(
                    &format!("usr/bin/tput-{i}"),
                    format!("#!/bin/sh\necho {i}\n").as_bytes(),
                );
            Package {
                file: builder.file_name(),
                bytes: Bytes::from(builder.build()),
            }
        })
        .collect()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Route {
    V1,
    Compat,
}

impl Route {
    fn upload_url(self, base: &str, repo: &str) -> String {
        match self {
            Route::V1 => format!(
                "{base}/api/v1/orgs/{ORG}/distros/alpine/versions/{VERSION}/repos/{repo}/packages"
            ),
            Route::Compat => format!("{base}/api/{ORG}/alpine/{VERSION}/{repo}/{ARCH}/pkgs"),
        }
    }
}

fn repo_url(base: &str, repo: &str) -> String {
    format!("{base}/api/v1/orgs/{ORG}/distros/alpine/versions/{VERSION}/repos/{repo}")
}

async fn upload_one(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    package: &Package,
) -> Result<Duration> {
    let part = reqwest::multipart::Part::stream(reqwest::Body::from(package.bytes.clone()))
        .file_name(package.file.clone())
        .mime_str("application/octet-stream")?;
    let form = reqwest::multipart::Form::new().part("package", part);
    let started = Instant::now();
    let response = client
        .post(url)
        .bearer_auth(token)
        .multipart(form)
        .send()
        .await
        .with_context(|| format!("POST {url}"))?;
    let status = response.status();
    let body = response.text().await?;
    let elapsed = started.elapsed();
    if !status.is_success() {
        bail!("upload of {} to {url}: {status}: {body}", package.file);
    }
    Ok(elapsed)
}

/// Uploads every package through `servers` with `uploaders` concurrent tasks;
/// prints packages/s and latency; checks the repo lists them all.
#[allow(clippy::too_many_arguments)]
async fn throughput(
    label: &str,
    servers: &[Server],
    uploaders: usize,
    token: &str,
    route: Route,
    packages: &Arc<Vec<Package>>,
    warmup: &Package,
    client: &reqwest::Client,
) -> Result<()> {
    let repo = format!("t{}x{uploaders}", servers.len());
    let created = client
        .put(repo_url(&servers[0].base, &repo))
        .bearer_auth(token)
        .json(&serde_json::json!({ "architectures": [ARCH] }))
        .send()
        .await?;
    if !created.status().is_success() {
        bail!(
            "create repo {repo}: {}: {}",
            created.status(),
            created.text().await?
        );
    }
    let urls: Arc<Vec<String>> = Arc::new(
        servers
            .iter()
            .map(|s| route.upload_url(&s.base, &repo))
            .collect(),
    );
    // One package through each instance first (connections, token caches), not counted.
    for url in urls.iter() {
        upload_one(client, url, token, warmup).await?;
    }

    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..uploaders {
        let (next, urls, packages) = (next.clone(), urls.clone(), packages.clone());
        let (client, token) = (client.clone(), token.to_owned());
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            let mut failures = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(package) = packages.get(i) else {
                    break;
                };
                let url = &urls[i % urls.len()];
                match upload_one(&client, url, &token, package).await {
                    Ok(latency) => latencies.push(latency),
                    Err(e) => failures.push((i, format!("{e:#}"))),
                }
            }
            (latencies, failures)
        });
    }
    let mut latencies = Vec::with_capacity(packages.len());
    let mut failures = Vec::new();
    while let Some(done) = tasks.join_next().await {
        let (ok, failed) = done?;
        latencies.extend(ok);
        failures.extend(failed);
    }
    if latencies.is_empty() {
        bail!("{label}: every upload failed, e.g. {:?}", failures.first());
    }
    let wall = started.elapsed();
    latencies.sort();
    println!(
        "{label:<8} {} instance{} {uploaders:>2} uploader{}: {:>7.1} packages/s  upload p50 {:>8.1} ms  p99 {:>8.1} ms  (n={}, {:.1} s)  errors {}",
        servers.len(),
        if servers.len() == 1 { " " } else { "s" },
        if uploaders == 1 { " " } else { "s" },
        packages.len() as f64 / wall.as_secs_f64(),
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.99)),
        packages.len(),
        wall.as_secs_f64(),
        failures.len(),
    );

    // Every acknowledged package must be listed (from the signed index).
    let listed: Vec<serde_json::Value> = client
        .get(format!(
            "{}/packages?arch={ARCH}",
            repo_url(&servers[0].base, &repo)
        ))
        .bearer_auth(token)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let listed: std::collections::BTreeSet<&str> =
        listed.iter().filter_map(|p| p["file"].as_str()).collect();
    let failed: std::collections::BTreeSet<usize> = failures.iter().map(|(i, _)| *i).collect();
    if let Some((_, first)) = failures.first() {
        let published_anyway = failed
            .iter()
            .filter(|i| listed.contains(packages[**i].file.as_str()))
            .count();
        println!(
            "{label:<8}   {} failed uploads ({published_anyway} of them listed anyway), e.g. {first}",
            failures.len()
        );
    }
    let missing: Vec<&str> = packages
        .iter()
        .enumerate()
        .filter(|(i, p)| !failed.contains(i) && !listed.contains(p.file.as_str()))
        .map(|(_, p)| p.file.as_str())
        .collect();
    if !missing.is_empty() {
        bail!(
            "{label}: repo {repo}: {} acknowledged packages are not listed, e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(5)]
        );
    }
    Ok(())
}

async fn bench_throughput(
    place: &Place,
    work: &Path,
    packages: &Arc<Vec<Package>>,
    instances: &[usize],
    uploaders: &[usize],
    route: Route,
    token: &str,
) -> Result<()> {
    let upload_dir = work.join(format!("uploads-{}", place.label));
    std::fs::create_dir_all(&upload_dir)?;
    let upload_dir = upload_dir.display().to_string();
    let most = instances.iter().copied().max().unwrap_or(1).max(1);
    let mut servers = Vec::with_capacity(most);
    for n in 0..most {
        servers.push(
            Server::start(
                place,
                work,
                &format!("tput{n}"),
                &["--upload-dir", &upload_dir],
            )
            .await?,
        );
    }
    let warmup = ApkBuilder::new("tput-warmup", "1.0.0-r0", ARCH)
        .file("usr/share/tput-warmup", b"warm\n")
        .build();
    let warmup = Package {
        file: "tput-warmup-1.0.0-r0.apk".to_owned(),
        bytes: Bytes::from(warmup),
    };
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()?;
    let mut result = Ok(());
    'all: for &n in instances {
        for &u in uploaders {
            result = throughput(
                place.label,
                &servers[..n.clamp(1, most)],
                u.max(1),
                token,
                route,
                packages,
                &warmup,
                &client,
            )
            .await;
            if result.is_err() {
                break 'all;
            }
        }
    }
    for server in servers {
        server.stop().await;
    }
    result
}

/// One field of `/proc/<pid>/status` (`VmRSS:`, `VmHWM:`), in bytes.
fn proc_status_bytes(pid: u32, field: &str) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no {field} in /proc/{pid}/status"))?;
    Ok(kib << 10)
}

async fn bench_big_upload(place: &Place, work: &Path, mib: usize, token: &str) -> Result<()> {
    if !Path::new("/proc/self/status").exists() {
        println!("big upload skipped: no /proc");
        return Ok(());
    }
    let upload_dir: PathBuf = work.join("uploads-big");
    std::fs::create_dir_all(&upload_dir)?;
    let max_body = (mib + 64).to_string();
    let server = Server::start(
        place,
        work,
        "big",
        &[
            "--upload-dir",
            &upload_dir.display().to_string(),
            "--max-body-mib",
            &max_body,
            "--request-timeout-secs",
            "3600",
        ],
    )
    .await?;
    let pid = server.pid;
    let url = Route::V1.upload_url(&server.base, "big");

    const CHUNK: usize = 256 << 10;
    let size = mib << 20;
    let head = Bytes::from(format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"package\"; filename=\"huge-1.0-r0.apk\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    ));
    let tail = Bytes::from(format!("\r\n--{BOUNDARY}--\r\n"));
    let length = head.len() + size + tail.len();
    // Bytes that do not repeat with a short period (not a package either way).
    let mut chunk = vec![0u8; CHUNK];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for b in chunk.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let chunk = Bytes::from(chunk);
    let parts = std::iter::once(head)
        .chain(std::iter::repeat_n(chunk, size / CHUNK))
        .chain(std::iter::once(Bytes::from(vec![0x5a; size % CHUNK])))
        .chain(std::iter::once(tail))
        .map(Ok::<_, std::io::Error>);

    let before_hwm = proc_status_bytes(pid, "VmHWM:")?;
    // Reset the peak to the current RSS (5: reset VmHWM), as the test does.
    let reset = std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok();
    let baseline = proc_status_bytes(pid, "VmRSS:")?;
    let sampling = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let sampling = sampling.clone();
        tokio::spawn(async move {
            let mut max = 0;
            while sampling.load(Ordering::Relaxed) {
                if let Ok(rss) = proc_status_bytes(pid, "VmRSS:") {
                    max = max.max(rss);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            max
        })
    };
    let started = Instant::now();
    let response = reqwest::Client::new()
        .post(&url)
        .bearer_auth(token)
        .header(
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .header(header::CONTENT_LENGTH, length)
        .body(reqwest::Body::wrap_stream(futures::stream::iter(parts)))
        .send()
        .await?;
    let status = response.status();
    let body = response.text().await?;
    let elapsed = started.elapsed();
    let peak = proc_status_bytes(pid, "VmHWM:")?;
    sampling.store(false, Ordering::Relaxed);
    let sampled = sampler.await?;
    let left = std::fs::read_dir(&upload_dir)?.count();
    server.stop().await;

    if status != reqwest::StatusCode::UNPROCESSABLE_ENTITY {
        bail!("the {mib} MiB upload answered {status} (expected 422, refused at parse): {body}");
    }
    let growth = if reset {
        peak.saturating_sub(baseline)
    } else {
        peak.saturating_sub(before_hwm)
    };
    println!(
        "{:<8} {mib} MiB upload through 1 instance: peak RSS +{:.1} MiB (VmHWM {:.1} MiB, {} {:.1} MiB; max sampled VmRSS +{:.1} MiB), received in {:.2} s ({:.0} MiB/s), answered {status}, {left} staged files left",
        place.label,
        growth as f64 / f64::from(1 << 20),
        peak as f64 / f64::from(1 << 20),
        if reset {
            "reset to VmRSS"
        } else {
            "no clear_refs; VmHWM before"
        },
        if reset { baseline } else { before_hwm } as f64 / f64::from(1 << 20),
        sampled.saturating_sub(baseline) as f64 / f64::from(1 << 20),
        elapsed.as_secs_f64(),
        mib as f64 / elapsed.as_secs_f64(),
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    if !std::env::args().any(|a| a == "--bench") {
        return Ok(());
    }
    let uploads = env_one("PACKAGES_BENCH_UPLOADS", 200).max(1);
    let instances = env_list("PACKAGES_BENCH_INSTANCES", "1,3");
    let uploaders = env_list("PACKAGES_BENCH_UPLOADERS", "1,4,16,50");
    let big_mib = env_one("PACKAGES_BENCH_BIG_UPLOAD_MIB", 1024);
    let route = match std::env::var("PACKAGES_BENCH_ROUTE").as_deref() {
        Ok("compat") => Route::Compat,
        _ => Route::V1,
    };
    let work = tempfile::tempdir()?;
    let packages = Arc::new(packages(uploads));

    let mut places = vec![Place {
        label: "local",
        storage: work.path().join("store").display().to_string(),
        env: Vec::new(),
    }];
    if let Some(garage) = Garage::from_env() {
        places.push(Place {
            label: "garage",
            storage: garage.storage("bench-tput"),
            env: garage.env(),
        });
    }

    let mut tokens = Vec::with_capacity(places.len());
    for place in &places {
        let token = place.setup().await?;
        bench_throughput(
            place,
            work.path(),
            &packages,
            &instances,
            &uploaders,
            route,
            &token,
        )
        .await?;
        tokens.push(token);
    }
    if big_mib > 0 {
        // The body is refused before anything reaches the store: the local dir suffices.
        bench_big_upload(&places[0], work.path(), big_mib, &tokens[0]).await?;
    }
    Ok(())
}
