//! Racing publishers never lose an acknowledged package: many concurrent CLI
//! processes (separate OS processes, as CI jobs are) publish into one repo arch,
//! and into several repos and arches, on every backend. Every package a
//! process reported as published must be in the final signed index (checked
//! with `openssl` and an independent parser), exactly once.
//!
//! The `three_instances_*` tests add the service: three `packages serve`
//! processes on the same store, with `packages upload --server` clients spread
//! over them, racing the direct-to-store CLI processes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use packages::formats::apk::builder::ApkBuilder;
use packages::repo::{Arch, Key, RepoId};

use crate::support::{Ctx, ORG, Place, openssl_verify, parse_index, setup_repo};

/// Packages per run; processes share them out.
const PACKAGES: usize = 200;
/// Concurrent CLI processes.
const PROCESSES: usize = 12;
/// Runs per test.
const ROUNDS: usize = 2;

/// The `packages` command with `--storage` (and S3 credentials) for `place`.
fn cli(ctx: &Ctx, place: &Place) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_packages"));
    match (&place.dir, &place.bucket) {
        (Some(dir), _) => {
            cmd.arg("--storage").arg(dir);
        }
        (None, Some(bucket)) => {
            let env = ctx.s3();
            cmd.arg("--storage")
                .arg(format!("s3://{bucket}/{}", place.prefix));
            cmd.env("AWS_ENDPOINT_URL", &env.endpoint)
                .env("AWS_REGION", &env.region);
            if let Some((id, secret)) = &env.credentials {
                cmd.env("AWS_ACCESS_KEY_ID", id)
                    .env("AWS_SECRET_ACCESS_KEY", secret);
            } else {
                cmd.env("AWS_ACCESS_KEY_ID", "test")
                    .env("AWS_SECRET_ACCESS_KEY", "test");
            }
            if ctx.backend == crate::support::Backend::Moto {
                // moto 5.2.5 is not thread-safe: a LIST racing a DELETE in the
                // same bucket, or two PUTs of one key, answer 500 (`KeyError`,
                // `I/O operation on closed file` in its log). Under this load
                // the SDK's default 3 attempts are sometimes not enough, and a
                // failed upload (nothing acknowledged, nothing lost) would fail
                // the test for the emulator's sake.
                cmd.env("AWS_MAX_ATTEMPTS", "10");
            }
        }
        (None, None) => unreachable!("a place is a directory or a bucket"),
    }
    cmd.env("RUST_LOG", "warn");
    cmd
}

/// A fresh, empty store for one run. On moto, in a bucket of its own: moto
/// answers a LIST by scanning every key of the bucket, and the shared bucket
/// holds every test's objects, so there each LIST gets slower as the suite
/// runs (150 ms at 20,000 objects, several per upload).
async fn fresh_store(ctx: &Ctx) -> (packages::storage::Storage, Place) {
    if ctx.backend != crate::support::Backend::Moto {
        return ctx.open(crate::support::Bucket::Main).await;
    }
    let env = ctx.s3();
    let bucket = format!("race-{:016x}", rand::random::<u64>());
    env.client()
        .await
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("create a bucket on moto");
    let store = packages::storage::S3Store::connect(&bucket, &ctx.base, &env.settings())
        .await
        .expect("connect");
    (
        packages::storage::Storage::s3(store),
        Place {
            bucket: Some(bucket),
            prefix: ctx.base.clone(),
            dir: None,
        },
    )
}

/// Writes `count` distinct packages for `arch` and returns their paths.
fn make_packages(dir: &Path, tag: &str, arch: &str, count: usize) -> Vec<PathBuf> {
    (0..count)
        .map(|i| {
            let builder = ApkBuilder::new(&format!("race-{tag}-{i:04}"), "1.0.0-r0", arch)
                .description("racing upload")
                .file(
                    &format!("usr/share/race/{tag}-{i}"),
                    format!("{tag} {i}\n").as_bytes(),
                );
            let path = dir.join(builder.file_name());
            std::fs::write(&path, builder.build()).expect("write package");
            path
        })
        .collect()
}

/// One upload job: the repo and arch, and its files.
struct Job {
    version: String,
    repo: String,
    files: Vec<PathBuf>,
    /// `Some((url, token))`: through a service instance (`upload --server`);
    /// `None`: straight to the store.
    server: Option<(String, String)>,
}

/// A `packages` command that talks to a server only: no store, no credentials.
fn remote_cli(url: &str, token: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_packages"));
    for var in [
        "PACKAGES_STORAGE",
        "PACKAGES_CONFIG_STORAGE",
        "AWS_ENDPOINT_URL",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    ] {
        cmd.env_remove(var);
    }
    // Remote mode never opens a store; should it ever, it finds nothing here.
    cmd.arg("--storage")
        .arg(std::env::temp_dir().join("packages-remote-mode-opens-no-store"))
        .args(["upload", "--create", "--server", url, "--token", token])
        .env("RUST_LOG", "warn");
    cmd
}

/// Runs the jobs as concurrent CLI processes; returns `(repo, file name)` of
/// every package a process acknowledged (a line ending in `-> ORG/...`).
fn run_jobs(ctx: &Ctx, place: &Place, jobs: Vec<Job>) -> BTreeSet<(String, String)> {
    let ran = try_jobs(ctx, place, jobs);
    assert!(
        ran.failures.is_empty(),
        "some uploads failed:\n{}",
        ran.failures.join("\n")
    );
    ran.acked
}

/// What the upload processes of one run did.
struct Ran {
    /// `(repo arch, file name)` of every acknowledged package.
    acked: BTreeSet<(String, String)>,
    /// The failed processes' messages.
    failures: Vec<String>,
    /// How long each process ran, and whether it went through an instance.
    took: Vec<(bool, Duration)>,
}

impl Ran {
    /// The longest run of the remote and of the direct processes.
    fn timings(&self) -> String {
        let longest = |remote: bool| {
            self.took
                .iter()
                .filter(|(r, _)| *r == remote)
                .map(|(_, d)| *d)
                .max()
                .unwrap_or_default()
        };
        format!(
            "slowest process: {:.1?} through an instance, {:.1?} direct",
            longest(true),
            longest(false)
        )
    }
}

/// [`run_jobs`], returning the failed processes' messages instead of panicking.
fn try_jobs(ctx: &Ctx, place: &Place, jobs: Vec<Job>) -> Ran {
    let started = Instant::now();
    let children: Vec<_> = jobs
        .into_iter()
        .map(|job| {
            let mut cmd = match &job.server {
                Some((url, token)) => remote_cli(url, token),
                None => {
                    let mut cmd = cli(ctx, place);
                    cmd.args(["upload", "--create"]);
                    cmd
                }
            };
            cmd.args([
                "--org",
                ORG,
                "--version",
                &job.version,
                "--repo",
                &job.repo,
                "--json",
            ]);
            cmd.args(&job.files);
            let child = cmd
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn packages");
            let via = job.server.map(|(url, _)| url);
            // One thread per process, to time each one.
            let waiter = std::thread::spawn(move || {
                let out = child.wait_with_output().expect("wait for packages");
                (out, started.elapsed())
            });
            (job.version, job.repo, via, waiter)
        })
        .collect();
    let mut ran = Ran {
        acked: BTreeSet::new(),
        failures: Vec::new(),
        took: Vec::new(),
    };
    for (version, repo, via, waiter) in children {
        let (out, took) = waiter.join().expect("waiter thread");
        ran.took.push((via.is_some(), took));
        if !out.status.success() {
            ran.failures.push(format!(
                "[{version}/{repo} via {}] {}",
                via.as_deref().unwrap_or("the store"),
                String::from_utf8_lossy(&out.stderr)
            ));
            continue;
        }
        let published: Vec<serde_json::Value> =
            serde_json::from_slice(&out.stdout).expect("--json output");
        for p in published {
            let file = p["record"]["name"].as_str().unwrap().to_owned()
                + "-"
                + p["record"]["version"].as_str().unwrap()
                + ".apk";
            ran.acked.insert((
                format!("{version}/{repo}/{}", p["arch"].as_str().unwrap()),
                file,
            ));
        }
    }
    ran
}

/// Reads and checks the signed index of each repo arch: signature verified by
/// `openssl`, no duplicates; returns the file names listed, per repo arch.
async fn published(
    repo_arches: &BTreeSet<String>,
    t: &crate::support::TestRepo,
) -> BTreeMap<String, BTreeSet<String>> {
    let key_path = format!("static/{ORG}/alpine/{}", t.key_name);
    let (public_pem, _) = t
        .stores
        .public()
        .get_bytes(&key_path)
        .await
        .expect("public key");
    let mut out = BTreeMap::new();
    for repo_arch in repo_arches {
        let parts: Vec<&str> = repo_arch.split('/').collect();
        let repo = RepoId::parse(ORG, "alpine", parts[0], parts[1]).unwrap();
        let key = Key::Index(repo.arch(Arch::parse(parts[2]).unwrap()));
        let (bytes, _) = t
            .stores
            .public()
            .get_bytes(&key.path())
            .await
            .expect("index");
        let index = parse_index(&bytes);
        let (ok, detail) = openssl_verify(&public_pem, &index.signature, &index.unsigned);
        assert!(ok, "{repo_arch}: openssl rejects the index: {detail}");
        let names = index.names();
        let unique: BTreeSet<String> = names.iter().cloned().collect();
        assert_eq!(
            unique.len(),
            names.len(),
            "{repo_arch}: duplicate records in the index"
        );
        let files = index
            .records
            .iter()
            .map(|r| {
                let get = |f| {
                    r.iter()
                        .find(|(c, _)| *c == f)
                        .map(|(_, v)| v.clone())
                        .unwrap()
                };
                format!("{}-{}.apk", get('P'), get('V'))
            })
            .collect();
        out.insert(repo_arch.clone(), files);
    }
    out
}

fn assert_all_present(
    acked: &BTreeSet<(String, String)>,
    listed: &BTreeMap<String, BTreeSet<String>>,
) {
    let mut lost = Vec::new();
    for (repo_arch, file) in acked {
        if !listed
            .get(repo_arch)
            .is_some_and(|files| files.contains(file))
        {
            lost.push(format!("{repo_arch}/{file}"));
        }
    }
    assert!(
        lost.is_empty(),
        "{} acknowledged package(s) missing from the index: {lost:?}",
        lost.len()
    );
    let total: usize = listed.values().map(BTreeSet::len).sum();
    assert_eq!(
        total,
        acked.len(),
        "the indexes list exactly the acknowledged packages"
    );
}

/// ≥ 200 packages into one repo arch at once, from concurrent processes.
async fn one_repo_arch(ctx: Ctx) {
    for round in 0..ROUNDS {
        let (storage, place) = fresh_store(&ctx).await;
        let t = setup_repo(packages::stores::Stores::shared(storage)).await;
        let dir = ctx.temp_dir();
        let files = make_packages(&dir, &format!("r{round}"), "x86_64", PACKAGES);
        let per = files.len().div_ceil(PROCESSES);
        let jobs = files
            .chunks(per)
            .map(|chunk| Job {
                version: crate::support::VERSION.to_owned(),
                repo: crate::support::REPO.to_owned(),
                files: chunk.to_vec(),
                server: None,
            })
            .collect();
        let acked = run_jobs(&ctx, &place, jobs);
        assert_eq!(acked.len(), PACKAGES, "every upload acknowledged");
        let repo_arches = acked.iter().map(|(ra, _)| ra.clone()).collect();
        let listed = published(&repo_arches, &t).await;
        assert_all_present(&acked, &listed);
    }
}

/// The same, spread over several repos and arches at once.
async fn many_repos_and_arches(ctx: Ctx) {
    let (storage, place) = fresh_store(&ctx).await;
    let t = setup_repo(packages::stores::Stores::shared(storage)).await;
    let dir = ctx.temp_dir();
    let mut jobs = Vec::new();
    for (n, (repo, arch)) in [
        ("main", "x86_64"),
        ("main", "aarch64"),
        ("community", "x86_64"),
        ("testing", "armv7"),
    ]
    .into_iter()
    .enumerate()
    {
        let files = make_packages(&dir, &format!("m{n}"), arch, PACKAGES / 4);
        for chunk in files.chunks(PACKAGES / 4 / 3 + 1) {
            jobs.push(Job {
                version: crate::support::VERSION.to_owned(),
                repo: repo.to_owned(),
                files: chunk.to_vec(),
                server: None,
            });
        }
    }
    let acked = run_jobs(&ctx, &place, jobs);
    assert_eq!(acked.len(), PACKAGES / 4 * 4);
    let repo_arches = acked.iter().map(|(ra, _)| ra.clone()).collect();
    let listed = published(&repo_arches, &t).await;
    assert_all_present(&acked, &listed);
}

// ---- through three service instances ----------------------------------------

/// Service instances (`packages serve`) started per round.
const INSTANCES: usize = 3;
/// Of the concurrent upload processes, how many go through the instances
/// (spread evenly over them); the rest write to the store directly.
const REMOTE_PROCESSES: usize = 6;
/// How long an instance may take to answer `/health/ready`.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// `packages serve` processes on one store; killed (and reaped) on drop, so
/// a failing test leaves no process behind.
struct Instances {
    children: Vec<Child>,
    /// `http://127.0.0.1:PORT` of each instance.
    urls: Vec<String>,
    /// Each instance's stderr.
    logs: Vec<PathBuf>,
}

impl Drop for Instances {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A port nothing listens on right now (an instance that loses it to another
/// process exits at once and is started again on another port).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a free port")
        .port()
}

impl Instances {
    /// Starts `n` instances on `place` and waits until each answers `/health/ready`.
    async fn start(ctx: &Ctx, place: &Place, n: usize) -> Self {
        let dir = ctx.temp_dir();
        let mut instances = Instances {
            children: Vec::new(),
            urls: Vec::new(),
            logs: (0..n).map(|i| dir.join(format!("serve-{i}.log"))).collect(),
        };
        for i in 0..n {
            let (child, url) = spawn_instance(ctx, place, &instances.logs[i]);
            instances.children.push(child);
            instances.urls.push(url);
        }
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        for i in 0..n {
            let mut restarts = 0;
            let deadline = Instant::now() + READY_TIMEOUT;
            loop {
                let ready = client
                    .get(format!("{}/health/ready", instances.urls[i]))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                if ready {
                    break;
                }
                if let Some(status) = instances.children[i].try_wait().expect("try_wait") {
                    // Most likely the port was taken meanwhile: try another one.
                    restarts += 1;
                    assert!(
                        restarts <= 3,
                        "instance {i} exited ({status}):\n{}",
                        instances.log(i)
                    );
                    let (child, url) = spawn_instance(ctx, place, &instances.logs[i]);
                    instances.children[i] = child;
                    instances.urls[i] = url;
                    continue;
                }
                assert!(
                    Instant::now() < deadline,
                    "instance {i} not ready after {READY_TIMEOUT:?}:\n{}",
                    instances.log(i)
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        instances
    }

    /// The stderr of instance `i`.
    fn log(&self, i: usize) -> String {
        std::fs::read_to_string(&self.logs[i]).unwrap_or_default()
    }

    /// Every instance's stderr, for failure messages.
    fn all_logs(&self) -> String {
        (0..self.logs.len())
            .map(|i| format!("--- instance {i} ({}):\n{}", self.urls[i], self.log(i)))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Asserts that no instance has exited.
    fn assert_running(&mut self) {
        for i in 0..self.children.len() {
            let exited = self.children[i].try_wait().expect("try_wait");
            assert!(
                exited.is_none(),
                "instance {i} exited during the run ({}):\n{}",
                exited.unwrap(),
                self.log(i)
            );
        }
    }
}

/// Spawns `packages serve` on a free port, stderr to `log`.
fn spawn_instance(ctx: &Ctx, place: &Place, log: &Path) -> (Child, String) {
    let port = free_port();
    let log = std::fs::File::create(log).expect("create instance log");
    let child = cli(ctx, place)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn packages serve");
    (child, format!("http://127.0.0.1:{port}"))
}

/// The first admin token of the store (`packages admin init`).
fn admin_token(ctx: &Ctx, place: &Place) -> String {
    let out = cli(ctx, place)
        .args(["admin", "init"])
        .output()
        .expect("run packages admin init");
    assert!(
        out.status.success(),
        "admin init: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .to_owned();
    assert!(token.starts_with("pkgs_"), "admin init printed {token:?}");
    token
}

/// A fresh store with the org and its key, [`INSTANCES`] instances serving
/// it, and an admin token.
async fn serviced_store(ctx: &Ctx) -> (crate::support::TestRepo, Place, Instances, String) {
    let (storage, place) = fresh_store(ctx).await;
    let t = setup_repo(packages::stores::Stores::shared(storage)).await;
    let instances = Instances::start(ctx, &place, INSTANCES).await;
    let token = admin_token(ctx, &place);
    (t, place, instances, token)
}

/// Jobs for `(version, repo, files)` groups, in order: every other job goes
/// through an instance (round-robin over them) until [`REMOTE_PROCESSES`]
/// do; all the others go straight to the store.
fn mixed_jobs(
    groups: Vec<(String, String, Vec<Vec<PathBuf>>)>,
    instances: &Instances,
    token: &str,
) -> Vec<Job> {
    let mut jobs = Vec::new();
    let mut remote = 0;
    for (version, repo, chunks) in groups {
        for files in chunks {
            let server = (jobs.len() % 2 == 0 && remote < REMOTE_PROCESSES).then(|| {
                let url = instances.urls[remote % instances.urls.len()].clone();
                remote += 1;
                (url, token.to_owned())
            });
            jobs.push(Job {
                version: version.clone(),
                repo: repo.clone(),
                files,
                server,
            });
        }
    }
    assert_eq!(remote, REMOTE_PROCESSES, "every instance gets uploads");
    jobs
}

/// Runs the jobs and checks the indexes; on any failure, shows the instances' logs.
async fn run_and_verify(
    ctx: &Ctx,
    place: &Place,
    t: &crate::support::TestRepo,
    instances: &mut Instances,
    jobs: Vec<Job>,
    expected: usize,
) -> Ran {
    let ran = try_jobs(ctx, place, jobs);
    assert!(
        ran.failures.is_empty(),
        "some uploads failed:\n{}\n{}",
        ran.failures.join("\n"),
        instances.all_logs()
    );
    instances.assert_running();
    assert_eq!(ran.acked.len(), expected, "every upload acknowledged");
    let repo_arches: BTreeSet<String> = ran.acked.iter().map(|(ra, _)| ra.clone()).collect();
    let listed = published(&repo_arches, t).await;
    assert_all_present(&ran.acked, &listed);
    // The records agree with the indexes too (nothing for `repair` to do).
    for repo_arch in &repo_arches {
        let parts: Vec<&str> = repo_arch.split('/').collect();
        let out = cli(ctx, place)
            .args(["index", "check", "--org", ORG, "--version", parts[0]])
            .args(["--repo", parts[1], "--arch", parts[2]])
            .output()
            .expect("run packages index check");
        assert!(
            out.status.success(),
            "index check {repo_arch}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    ran
}

/// ≥ 200 packages into one repo arch at once: upload processes spread over
/// three service instances (separate OS processes on one store), racing
/// direct-to-store CLI processes.
async fn three_instances_and_cli(ctx: Ctx) {
    for round in 0..ROUNDS {
        let started = Instant::now();
        let (t, place, mut instances, token) = serviced_store(&ctx).await;
        let dir = ctx.temp_dir();
        let files = make_packages(&dir, &format!("s{round}"), "x86_64", PACKAGES);
        let chunks = files
            .chunks(PACKAGES.div_ceil(PROCESSES))
            .map(<[PathBuf]>::to_vec)
            .collect();
        let groups = vec![(
            crate::support::VERSION.to_owned(),
            crate::support::REPO.to_owned(),
            chunks,
        )];
        let jobs = mixed_jobs(groups, &instances, &token);
        let ran = run_and_verify(&ctx, &place, &t, &mut instances, jobs, PACKAGES).await;
        drop(instances);
        eprintln!(
            "three_instances_and_cli round {round}: {PACKAGES} packages in {:.1?} ({})",
            started.elapsed(),
            ran.timings()
        );
    }
}

/// The same, spread over several versions, repos and arches at once (arches
/// of one repo first appear concurrently, through instances and the CLI).
async fn three_instances_many_repos(ctx: Ctx) {
    const TARGETS: [(&str, &str, &str); 5] = [
        ("v3.20", "main", "x86_64"),
        ("v3.20", "main", "aarch64"),
        ("v3.20", "community", "x86_64"),
        ("v3.20", "community", "armv7"),
        ("edge", "testing", "x86_64"),
    ];
    let per_target = PACKAGES / TARGETS.len();
    for round in 0..ROUNDS {
        let started = Instant::now();
        let (t, place, mut instances, token) = serviced_store(&ctx).await;
        let dir = ctx.temp_dir();
        let groups = TARGETS
            .iter()
            .enumerate()
            .map(|(n, (version, repo, arch))| {
                let files = make_packages(&dir, &format!("s{round}m{n}"), arch, per_target);
                let chunks = files
                    .chunks(per_target.div_ceil(3))
                    .map(<[PathBuf]>::to_vec)
                    .collect();
                ((*version).to_owned(), (*repo).to_owned(), chunks)
            })
            .collect();
        let jobs = mixed_jobs(groups, &instances, &token);
        let total = per_target * TARGETS.len();
        let ran = run_and_verify(&ctx, &place, &t, &mut instances, jobs, total).await;
        // Each repo lists every arch it got packages in (these arches were
        // added to the repo's settings by racing first uploads).
        for (version, repo, _) in TARGETS {
            let id = RepoId::parse(ORG, "alpine", version, repo).unwrap();
            let mut have: Vec<String> = t
                .publisher
                .arches(&id)
                .await
                .expect("repo arches")
                .iter()
                .map(ToString::to_string)
                .collect();
            have.sort();
            let mut want: Vec<String> = TARGETS
                .iter()
                .filter(|(v, r, _)| *v == version && *r == repo)
                .map(|(_, _, a)| (*a).to_owned())
                .collect();
            want.sort();
            assert_eq!(have, want, "arches of {version}/{repo}");
        }
        drop(instances);
        eprintln!(
            "three_instances_many_repos round {round}: {total} packages in {:.1?} ({})",
            started.elapsed(),
            ran.timings()
        );
    }
}

backend_tests!([local, garage, moto] one_repo_arch, many_repos_and_arches);
backend_tests!([local, garage, moto] three_instances_and_cli, three_instances_many_repos);
