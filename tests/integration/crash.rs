//! Crash recovery: publishers and the store die at random moments, and no
//! acknowledged package is lost.
//!
//! - `kill_cli_mid_publish` (local dir, Garage, moto): concurrent `packages upload`
//!   processes are SIGKILLed at random moments while a watcher fetches the
//!   published index over and over. Every index ever visible must be whole and
//!   signed (`openssl`); on stores with conditional writes it must also list
//!   every package acknowledged before it was fetched (the index never goes
//!   back). Then `index repair` (round 1) or the next plain upload (round 2)
//!   heals the repo: every acknowledged package is in the final,
//!   openssl-verified index, exactly once, with its file.
//! - `acked_stays_in_index` (local dir, moto): the same watcher without any
//!   crash, to tell a race of concurrent publishers from a crash effect.
//! - `restart_store_during_uploads` (a Garage of its own, so the shared one is
//!   left alone): Garage is SIGKILLed while CLI processes upload and restarted on
//!   the same data; after `index repair` every acknowledged package is there.
//!   moto keeps its data in memory (a restart empties it), and for the local
//!   directory killing "the store" is killing the CLI, covered above.
//!
//! A package counts as acknowledged when the CLI printed its whole line
//! `<path> <name> <version> -> <org>/alpine/<version>/<repo>/<arch>`, which it
//! does only once the package is in the signed index.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use packages::formats::apk::builder::ApkBuilder;
use packages::repo::{Arch, RepoId};
use packages::storage::{S3Settings, S3Store, Storage};
use packages::stores::Stores;
use rand::Rng;
use sha2::Digest as _;

use crate::support::{
    Bucket, Ctx, ORG, Place, REPO, TestRepo, VERSION, expected_record, field, openssl_verify,
    parse_index, record_map, setup_repo,
};

/// The arch every package is built for.
const ARCH: &str = "x86_64";
/// Concurrent CLI processes per round.
const PROCESSES: usize = 6;
/// Packages each process uploads.
const PER_PROCESS: usize = 12;
/// Packages each process uploads in the test without crashes.
const NO_CRASH_PER_PROCESS: usize = 8;
/// At most this many distinct index versions are checked with `openssl` per
/// round (every one is parsed).
const MAX_OPENSSL: usize = 400;

/// Package identity as `name-version`.
type Pkg = String;
/// Packages acknowledged so far, by every process of a test.
type Acked = Arc<Mutex<BTreeSet<Pkg>>>;

// ---- the CLI ------------------------------------------------------------------

/// How a CLI process reaches the store under test.
#[derive(Debug, Clone)]
struct Cli {
    storage: String,
    env: Vec<(&'static str, String)>,
}

impl Cli {
    /// The store a test opened with `ctx.open`.
    fn for_place(ctx: &Ctx, place: &Place) -> Self {
        match (&place.dir, &place.bucket) {
            (Some(dir), _) => Self {
                storage: dir.display().to_string(),
                env: Vec::new(),
            },
            (None, Some(bucket)) => {
                let s3 = ctx.s3();
                let (id, secret) = s3
                    .credentials
                    .clone()
                    .unwrap_or_else(|| ("test".into(), "test".into()));
                Self {
                    storage: format!("s3://{bucket}/{}", place.prefix),
                    env: vec![
                        ("AWS_ENDPOINT_URL", s3.endpoint.clone()),
                        ("AWS_REGION", s3.region.clone()),
                        ("AWS_ACCESS_KEY_ID", id),
                        ("AWS_SECRET_ACCESS_KEY", secret),
                    ],
                }
            }
            (None, None) => unreachable!("a place is a directory or a bucket"),
        }
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_packages"));
        cmd.arg("--storage").arg(&self.storage);
        cmd.env_remove("PACKAGES_CONFIG_STORAGE")
            .env_remove("PACKAGES_S3_VIRTUAL_HOSTED")
            .env("RUST_LOG", "warn");
        for (name, value) in &self.env {
            cmd.env(name, value);
        }
        cmd
    }

    /// `packages upload` of `files` (human output).
    fn upload(&self, files: &[PathBuf]) -> Command {
        let mut cmd = self.command();
        cmd.args([
            "upload",
            "--create",
            "--org",
            ORG,
            "--version",
            VERSION,
            "--repo",
            REPO,
        ]);
        cmd.args(files);
        cmd
    }

    /// `packages index <what>` of the test arch, run to completion.
    fn index(&self, what: &str) -> Output {
        self.command()
            .args([
                "index",
                what,
                "--org",
                ORG,
                "--version",
                VERSION,
                "--repo",
                REPO,
                "--arch",
                ARCH,
            ])
            .stdin(Stdio::null())
            .output()
            .expect("run packages index")
    }
}

fn describe(out: &Output) -> String {
    format!(
        "status {}\n--- stdout\n{}--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `index check` right after the crashes: either clean or problems reported
/// (exit 1 with the "needs repair" message); never a failure of the command.
fn check_after_crash(cli: &Cli) -> String {
    let out = cli.index("check");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let target = format!("{}/{ARCH}: ", repo_path());
    if out.status.success() {
        assert!(
            stdout.contains(&format!("{target}ok")),
            "index check: exit 0 without `ok`:\n{}",
            describe(&out)
        );
        "ok".to_owned()
    } else {
        assert_eq!(
            out.status.code(),
            Some(1),
            "index check failed:\n{}",
            describe(&out)
        );
        assert!(
            stderr.contains("need `packages index repair`")
                && stdout.lines().any(|l| l.starts_with(&target)),
            "index check did not report problems but failed:\n{}",
            describe(&out)
        );
        stdout.trim().replace('\n', " | ")
    }
}

/// `index check` must find nothing to repair.
fn assert_check_clean(cli: &Cli, when: &str) {
    let out = cli.index("check");
    assert!(
        out.status.success()
            && String::from_utf8_lossy(&out.stdout)
                .contains(&format!("{}/{ARCH}: ok", repo_path())),
        "index check {when}:\n{}",
        describe(&out)
    );
}

/// `index repair` must succeed.
fn repair(cli: &Cli) {
    let out = cli.index("repair");
    assert!(out.status.success(), "index repair:\n{}", describe(&out));
}

fn repo_path() -> String {
    RepoId::parse(ORG, "alpine", VERSION, REPO)
        .unwrap()
        .to_string()
}

// ---- packages ---------------------------------------------------------------------

/// Writes `count` distinct packages tagged `tag`; records their bytes in `all`.
fn make_packages(
    dir: &Path,
    tag: &str,
    count: usize,
    all: &mut BTreeMap<Pkg, Vec<u8>>,
) -> Vec<PathBuf> {
    (0..count)
        .map(|i| {
            let name = format!("crash-{tag}-{i:03}");
            let builder = ApkBuilder::new(&name, "1.0.0-r0", ARCH)
                .description("crash test upload")
                .file(
                    &format!("usr/share/crash/{tag}-{i}"),
                    &crate::support::noise(2048, (i as u64) << 8 | u64::from(tag.as_bytes()[0])),
                );
            let bytes = builder.build();
            let path = dir.join(builder.file_name());
            std::fs::write(&path, &bytes).expect("write package");
            all.insert(format!("{name}-1.0.0-r0"), bytes);
            path
        })
        .collect()
}

// ---- uploaders ----------------------------------------------------------------

/// One `packages upload` process and the threads reading its output.
struct Uploader {
    child: Child,
    files: usize,
    started: Instant,
    /// When each acknowledgement line was read.
    ack_times: Arc<Mutex<Vec<Instant>>>,
    stdout: JoinHandle<Result<Vec<Pkg>, String>>,
    stderr: JoinHandle<String>,
}

/// How an uploader ended.
#[derive(Debug)]
struct Ended {
    status: ExitStatus,
    /// Whether we killed it while it was still running.
    killed: bool,
    /// After how long.
    after: Duration,
    files: usize,
    acked: Vec<Pkg>,
    stderr: String,
}

impl Ended {
    fn summary(&self) -> String {
        let how = match (self.status.code(), self.status.signal()) {
            (_, Some(9)) if self.killed => "killed".to_owned(),
            (Some(c), _) => format!("exit {c}"),
            (None, Some(s)) => format!("signal {s}"),
            _ => self.status.to_string(),
        };
        format!(
            "{how} after {} ms, {}/{} acked",
            self.after.as_millis(),
            self.acked.len(),
            self.files
        )
    }
}

/// Parses one complete acknowledgement line; `Err` on anything unexpected.
fn parse_ack(line: &str, target: &str) -> Result<Pkg, String> {
    let parts: Vec<&str> = line.split(' ').collect();
    let ok = parts.len() >= 5
        && parts[3] == "->"
        && parts[4] == target
        && (parts.len() == 5 || parts[5..] == ["(already", "published)"]);
    if !ok {
        return Err(format!("unexpected upload output line {line:?}"));
    }
    let (name, version) = (parts[1], parts[2]);
    let file = Path::new(parts[0]).file_name().and_then(|f| f.to_str());
    if file != Some(&format!("{name}-{version}.apk")) {
        return Err(format!("line {line:?} names another file"));
    }
    Ok(format!("{name}-{version}"))
}

/// Starts `packages upload` of `files`; every complete acknowledgement line is
/// added to `acked` as soon as it is read.
fn spawn_uploader(cli: &Cli, files: &[PathBuf], acked: &Acked) -> Uploader {
    let mut child = cli
        .upload(files)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn packages upload");
    let stdout = child.stdout.take().unwrap();
    let acked = Arc::clone(acked);
    let target = format!("{}/{ARCH}", repo_path());
    let ack_times: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let times = Arc::clone(&ack_times);
    let stdout = std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut mine = Vec::new();
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            // A line cut by the kill was never fully printed: not an acknowledgement.
            let Some(complete) = line.strip_suffix(b"\n") else {
                break;
            };
            let text = String::from_utf8_lossy(complete);
            let pkg = parse_ack(&text, &target)?;
            acked.lock().unwrap().insert(pkg.clone());
            times.lock().unwrap().push(Instant::now());
            mine.push(pkg);
        }
        Ok(mine)
    });
    let mut stderr = child.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    Uploader {
        child,
        files: files.len(),
        started: Instant::now(),
        ack_times,
        stdout,
        stderr,
    }
}

impl Uploader {
    /// SIGKILLs the process if it still runs; returns whether it did.
    fn kill(&mut self) -> bool {
        match self.child.try_wait() {
            Ok(Some(_)) => false,
            _ => {
                let _ = self.child.kill();
                true
            }
        }
    }

    /// Waits for the process (killing it after `timeout`) and its output.
    fn finish(mut self, killed: bool, timeout: Duration) -> Ended {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let status = self.child.wait().expect("wait");
                let stderr = self.stderr.join().unwrap_or_default();
                panic!("an upload hung for {timeout:?}; killed it ({status}); stderr:\n{stderr}");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let after = self.started.elapsed();
        let acked = self
            .stdout
            .join()
            .expect("stdout reader")
            .unwrap_or_else(|e| panic!("{e}"));
        Ended {
            status,
            killed,
            after,
            files: self.files,
            acked,
            stderr: self.stderr.join().unwrap_or_default(),
        }
    }
}

/// Runs one process per chunk of `files` and SIGKILLs each at a random point
/// of its work: after a random number `k` of its packages were acknowledged,
/// at a random moment of the next one (up to 1.5 times the time the previous
/// one took), or for `k = 0` at 50–800 ms, during start-up or the first
/// publish. Processes that finish first are left alone. Blocking.
fn upload_and_kill(cli: &Cli, files: &[PathBuf], acked: &Acked) -> Vec<Ended> {
    let mut rng = rand::thread_rng();
    let per = files.len().div_ceil(PROCESSES);
    let mut running: Vec<(usize, Option<Instant>, Uploader)> = files
        .chunks(per)
        .map(|chunk| {
            let uploader = spawn_uploader(cli, chunk, acked);
            let k = rng.gen_range(0..chunk.len());
            let at =
                (k == 0).then(|| uploader.started + Duration::from_millis(rng.gen_range(50..800)));
            (k, at, uploader)
        })
        .collect();
    let mut ended = Vec::new();
    while !running.is_empty() {
        let mut still = Vec::new();
        for (k, mut at, mut uploader) in running {
            if let Ok(Some(_)) = uploader.child.try_wait() {
                ended.push(uploader.finish(false, Duration::from_secs(5)));
                continue;
            }
            if uploader.started.elapsed() > Duration::from_secs(90) {
                // Reported as a hung upload.
                ended.push(uploader.finish(false, Duration::ZERO));
                continue;
            }
            if at.is_none() {
                let times = uploader.ack_times.lock().unwrap().clone();
                if times.len() >= k {
                    let previous = if k >= 2 {
                        times[k - 2]
                    } else {
                        uploader.started
                    };
                    let took = times[k - 1] - previous;
                    at = Some(times[k - 1] + took.mul_f64(rng.gen_range(0.0..1.5)));
                }
            }
            match at {
                Some(at) if Instant::now() >= at => {
                    let killed = uploader.kill();
                    ended.push(uploader.finish(killed, Duration::from_secs(30)));
                }
                _ => still.push((k, at, uploader)),
            }
        }
        running = still;
        std::thread::sleep(Duration::from_millis(2));
    }
    ended
}

/// Each process either died of our SIGKILL or published all its files.
fn assert_clean_ends(ended: &[Ended]) {
    for e in ended {
        // (A process may also finish just as the kill is sent.)
        let died_of_kill = e.killed && e.status.signal() == Some(9);
        assert!(
            died_of_kill || (e.status.success() && e.acked.len() == e.files),
            "an upload failed or ended otherwise: {}\n{}",
            e.summary(),
            e.stderr
        );
    }
}

// ---- the index watcher ---------------------------------------------------------

/// What the watcher saw.
#[derive(Debug, Default)]
struct Watched {
    fetches: usize,
    failed_fetches: usize,
    versions: usize,
    verified: usize,
    /// Versions that are not a whole, signed index.
    problems: Vec<String>,
    /// Fetches that missed an acknowledged package (strict mode only).
    regressions: Vec<String>,
}

/// Parses and verifies one fetched index; returns its packages.
fn check_index(bytes: &[u8], pem: &[u8], verify: bool) -> Result<BTreeSet<Pkg>, String> {
    let parsed = std::panic::catch_unwind(|| parse_index(bytes)).map_err(|e| {
        let why = e
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_default();
        format!("unparsable index ({} bytes): {why}", bytes.len())
    })?;
    if verify {
        let (ok, detail) = openssl_verify(pem, &parsed.signature, &parsed.unsigned);
        if !ok {
            return Err(format!(
                "index ({} bytes) fails openssl: {detail}",
                bytes.len()
            ));
        }
    }
    let mut out = BTreeSet::new();
    for record in &parsed.records {
        let pkg = format!(
            "{}-{}",
            field(record, 'P').unwrap_or_default(),
            field(record, 'V').unwrap_or_default()
        );
        if !out.insert(pkg.clone()) {
            return Err(format!("{pkg} listed twice in an index"));
        }
    }
    Ok(out)
}

/// Fetches the index of the test arch until `stop`, checking every distinct
/// version. With `strict` (stores with conditional writes), every package
/// acknowledged before a fetch must be in the index fetched.
async fn watch(
    stores: Stores,
    pem: Vec<u8>,
    acked: Acked,
    stop: Arc<AtomicBool>,
    strict: bool,
) -> Watched {
    let key = format!("static/{}/{ARCH}/APKINDEX.tar.gz", repo_path());
    let mut seen: BTreeMap<Vec<u8>, Result<BTreeSet<Pkg>, String>> = BTreeMap::new();
    let mut watched = Watched::default();
    let mut generation = 0;
    loop {
        let last = stop.load(Ordering::SeqCst);
        if strict {
            // State generations form a line on these stores.
            if let Ok(Some(now)) = state_generation(&stores).await {
                if now < generation {
                    watched.regressions.push(format!(
                        "state.json went back from generation {generation} to {now}"
                    ));
                }
                generation = generation.max(now);
            }
        }
        let before = acked.lock().unwrap().clone();
        match stores.public().get_bytes_opt(&key).await {
            Err(_) => watched.failed_fetches += 1,
            Ok(None) => {
                watched.fetches += 1;
                if strict && !before.is_empty() {
                    watched.regressions.push(format!(
                        "no index although {} package(s) were acknowledged",
                        before.len()
                    ));
                }
            }
            Ok(Some((bytes, _))) => {
                watched.fetches += 1;
                let digest = sha2::Sha256::digest(&bytes).to_vec();
                if !seen.contains_key(&digest) {
                    let verify = watched.verified < MAX_OPENSSL;
                    let pem = pem.clone();
                    let result =
                        tokio::task::spawn_blocking(move || check_index(&bytes, &pem, verify))
                            .await
                            .expect("check index");
                    watched.versions += 1;
                    watched.verified += usize::from(verify);
                    if let Err(e) = &result {
                        watched.problems.push(e.clone());
                    }
                    seen.insert(digest.clone(), result);
                }
                if let (true, Ok(listed)) = (strict, &seen[&digest]) {
                    let missing: Vec<&Pkg> = before.difference(listed).collect();
                    if !missing.is_empty() {
                        let (marker, state) = private_view(&stores).await;
                        watched.regressions.push(format!(
                            "an index of {} package(s), fetched after {} acknowledgements, \
                             misses {} of them: {missing:?}; just after: {marker}, {state}",
                            listed.len(),
                            before.len(),
                            missing.len()
                        ));
                    }
                }
            }
        }
        if last {
            return watched;
        }
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
}

/// The marker, then the state's generation and size, read just now (for messages).
async fn private_view(stores: &Stores) -> (String, String) {
    let arch = test_arch();
    let marker = match stores
        .private()
        .get_bytes_opt(&packages::repo::Key::IndexMarker(arch.clone().into()).path())
        .await
    {
        Ok(Some((bytes, _))) => format!("index.json {}", String::from_utf8_lossy(&bytes)),
        Ok(None) => "no index.json".to_owned(),
        Err(e) => format!("index.json unreadable: {e}"),
    };
    let state = match packages::index::read_state(stores, &arch).await {
        Ok((state, _)) => format!(
            "then state.json generation {} with {} records",
            state.generation,
            state.records.len()
        ),
        Err(e) => format!("then state.json unreadable: {e}"),
    };
    (marker, state)
}

/// The `generation` of the stored `state.json`, read raw (`None` when absent).
async fn state_generation(stores: &Stores) -> Result<Option<u64>, String> {
    let key = packages::repo::Key::IndexState(test_arch().into()).path();
    match stores.private().get_bytes_opt(&key).await {
        Ok(None) => Ok(None),
        Ok(Some((bytes, _))) => serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v["generation"].as_u64())
            .map(Some)
            .ok_or_else(|| format!("{key} has no generation")),
        Err(e) => Err(e.to_string()),
    }
}

fn test_arch() -> packages::repo::RepoArch {
    RepoId::parse(ORG, "alpine", VERSION, REPO)
        .unwrap()
        .arch(Arch::parse(ARCH).unwrap())
}

/// A running watcher.
struct Watcher {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Watched>,
}

impl Watcher {
    fn start(t: &TestRepo, pem: &[u8], acked: &Acked, strict: bool) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(watch(
            t.stores.clone(),
            pem.to_vec(),
            Arc::clone(acked),
            Arc::clone(&stop),
            strict,
        ));
        Self { stop, task }
    }

    /// Stops it (after one more fetch) and asserts that every version it saw
    /// was a whole, signed index (regressions are left to the caller).
    async fn finish(self, what: &str) -> Watched {
        self.stop.store(true, Ordering::SeqCst);
        let watched = self.task.await.expect("watcher");
        assert!(
            watched.problems.is_empty(),
            "{what}: the watcher saw {} bad index version(s) in {} fetches:\n{}",
            watched.problems.len(),
            watched.fetches,
            watched.problems.join("\n")
        );
        assert!(watched.fetches > 0, "{what}: the watcher fetched nothing");
        watched
    }
}

// ---- the final state -------------------------------------------------------------

/// The final index: verified by `openssl`, no duplicates, every record exactly
/// what its (generated) package renders to and its file in the store, and
/// every acknowledged package in it. Returns how many packages it lists.
async fn verify_final(
    t: &TestRepo,
    pem: &[u8],
    acked: &Acked,
    all: &BTreeMap<Pkg, Vec<u8>>,
    when: &str,
) -> usize {
    let bytes = t
        .index_bytes(ARCH)
        .await
        .unwrap_or_else(|| panic!("{when}: no index"));
    let listed = check_index(&bytes, pem, true).unwrap_or_else(|e| panic!("{when}: {e}"));
    let parsed = parse_index(&bytes);
    assert_eq!(
        parsed.key_name(),
        t.key_name,
        "{when}: signed by another key"
    );
    for record in &parsed.records {
        let pkg = format!(
            "{}-{}",
            field(record, 'P').unwrap(),
            field(record, 'V').unwrap()
        );
        let apk = all
            .get(&pkg)
            .unwrap_or_else(|| panic!("{when}: the index lists {pkg}, which no test uploaded"));
        assert_eq!(
            record_map(record),
            expected_record(apk, ARCH),
            "{when}: record of {pkg}"
        );
        let stored = t
            .public_bytes(&t.key(ARCH, &format!("{pkg}.apk")))
            .await
            .unwrap_or_else(|| panic!("{when}: {pkg} is indexed but its file is missing"));
        assert!(stored == *apk, "{when}: the stored {pkg}.apk differs");
    }
    let acked = acked.lock().unwrap().clone();
    let missing: Vec<&Pkg> = acked.difference(&listed).collect();
    if !missing.is_empty() {
        let (state, _) = packages::index::read_state(&t.stores, &test_arch())
            .await
            .expect("read state");
        let in_state: Vec<&&Pkg> = missing
            .iter()
            .filter(|p| state.records.contains_key(&format!("{p}.apk")))
            .collect();
        panic!(
            "{when}: {} acknowledged package(s) missing from the final index: {missing:?} \
             ({} of them are in state.json, generation {})",
            missing.len(),
            in_state.len(),
            state.generation
        );
    }
    listed.len()
}

// ---- test 1: kill CLI processes mid-publish --------------------------------------

/// One line about a round, for the test log.
fn round_summary(acked: &Acked, listed: usize, ended: &[Ended], watched: &Watched) -> String {
    format!(
        "{} acked, {listed} indexed; uploaders: {}; watcher: {} fetches ({} failed), \
         {} index versions ({} checked by openssl), {} regressions",
        acked.lock().unwrap().len(),
        ended
            .iter()
            .map(Ended::summary)
            .collect::<Vec<_>>()
            .join("; "),
        watched.fetches,
        watched.failed_fetches,
        watched.versions,
        watched.verified,
        watched.regressions.len()
    )
}

/// Fails on the regressions the watchers saw (after everything else was checked).
fn assert_no_regressions(regressions: &[String]) {
    assert!(
        regressions.is_empty(),
        "on a store with conditional writes, {} fetched index(es) missed a package \
         acknowledged before the fetch (the index went back):\n{}",
        regressions.len(),
        regressions.join("\n")
    );
}

async fn kill_cli_mid_publish(ctx: Ctx) {
    let started = Instant::now();
    let (storage, place) = ctx.open(Bucket::Main).await;
    let t = setup_repo(Stores::shared(storage)).await;
    let cli = Cli::for_place(&ctx, &place);
    let pem = t.public_key_pem().await;
    let strict = ctx.backend.expected_conditional_writes() == Some(true);
    let dir = ctx.temp_dir();
    let acked: Acked = Arc::default();
    let mut all = BTreeMap::new();
    let mut regressions = Vec::new();

    // Round 1: kill, then `index check` and `index repair`.
    let files = make_packages(&dir, "a", PROCESSES * PER_PROCESS, &mut all);
    let watcher = Watcher::start(&t, &pem, &acked, strict);
    let ended = {
        let (cli, acked) = (cli.clone(), Arc::clone(&acked));
        tokio::task::spawn_blocking(move || upload_and_kill(&cli, &files, &acked))
            .await
            .expect("uploaders")
    };
    let watched = watcher.finish("round 1").await;
    assert_clean_ends(&ended);
    let check = {
        let cli = cli.clone();
        tokio::task::spawn_blocking(move || {
            let check = check_after_crash(&cli);
            repair(&cli);
            assert_check_clean(&cli, "after repair");
            check
        })
        .await
        .unwrap()
    };
    let listed = verify_final(&t, &pem, &acked, &all, "round 1, after repair").await;
    eprintln!(
        "{:?} round 1: {}; index check after the kills: {check}",
        ctx.backend,
        round_summary(&acked, listed, &ended, &watched)
    );
    regressions.extend(watched.regressions);

    // Round 2: kill, then one plain upload (no repair) heals the repo.
    let files = make_packages(&dir, "b", PROCESSES * PER_PROCESS, &mut all);
    let last = make_packages(&dir, "c", 1, &mut all);
    let watcher = Watcher::start(&t, &pem, &acked, strict);
    let ended = {
        let (cli, acked) = (cli.clone(), Arc::clone(&acked));
        tokio::task::spawn_blocking(move || {
            let mut ended = upload_and_kill(&cli, &files, &acked);
            let plain = spawn_uploader(&cli, &last, &acked).finish(false, Duration::from_secs(60));
            ended.push(plain);
            ended
        })
        .await
        .expect("uploaders")
    };
    let watched = watcher.finish("round 2").await;
    assert_clean_ends(&ended);
    let listed = verify_final(&t, &pem, &acked, &all, "round 2, after one more upload").await;
    {
        let cli = cli.clone();
        tokio::task::spawn_blocking(move || assert_check_clean(&cli, "after one more upload"))
            .await
            .unwrap();
    }
    eprintln!(
        "{:?} round 2: {}; {:.1} s in all",
        ctx.backend,
        round_summary(&acked, listed, &ended, &watched),
        started.elapsed().as_secs_f64()
    );
    regressions.extend(watched.regressions);
    assert_no_regressions(&regressions);
}

/// Without any crash: on stores with conditional writes, an index fetched after
/// an upload was acknowledged lists that package (`docs/publishing.md`: "an
/// index never goes back to an older generation").
async fn acked_stays_in_index(ctx: Ctx) {
    // The race is narrow: several rounds where they are cheap.
    let rounds = if ctx.backend.is_s3() { 1 } else { 3 };
    let mut regressions = Vec::new();
    for round in 1..=rounds {
        let (storage, place) = ctx.open(Bucket::Main).await;
        let t = setup_repo(Stores::shared(storage)).await;
        let cli = Cli::for_place(&ctx, &place);
        let pem = t.public_key_pem().await;
        let dir = ctx.temp_dir();
        let acked: Acked = Arc::default();
        let mut all = BTreeMap::new();
        let files = make_packages(&dir, "n", PROCESSES * NO_CRASH_PER_PROCESS, &mut all);
        let watcher = Watcher::start(&t, &pem, &acked, true);
        let ended = {
            let (cli, acked) = (cli.clone(), Arc::clone(&acked));
            tokio::task::spawn_blocking(move || {
                let uploaders: Vec<Uploader> = files
                    .chunks(NO_CRASH_PER_PROCESS)
                    .map(|chunk| spawn_uploader(&cli, chunk, &acked))
                    .collect();
                uploaders
                    .into_iter()
                    .map(|u| u.finish(false, Duration::from_secs(90)))
                    .collect::<Vec<_>>()
            })
            .await
            .expect("uploaders")
        };
        let watched = watcher.finish("no crash").await;
        assert_clean_ends(&ended);
        let listed = verify_final(&t, &pem, &acked, &all, "no crash").await;
        assert_eq!(listed, PROCESSES * NO_CRASH_PER_PROCESS);
        eprintln!(
            "{:?} no crash, round {round}: {}",
            ctx.backend,
            round_summary(&acked, listed, &ended, &watched)
        );
        regressions.extend(watched.regressions);
    }
    assert_no_regressions(&regressions);
}

backend_tests!([local, moto] acked_stays_in_index);
backend_tests!([local, garage, moto] kill_cli_mid_publish);

// ---- test 2: kill and restart Garage during uploads -------------------------------

/// A Garage server of this test's own (so the shared one stays up), with its
/// data in a temporary directory; killed on drop.
struct OwnGarage {
    bin: PathBuf,
    dir: tempfile::TempDir,
    config: PathBuf,
    s3_port: u16,
    admin_port: u16,
    admin_token: String,
    access_key: String,
    secret_key: String,
    child: Option<Child>,
}

fn random_hex(bytes: usize) -> String {
    (0..bytes)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}

/// `n` distinct free ports on 127.0.0.1 (held open together, so they differ).
fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<_> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

/// The HTTP status curl gets for `url` (0 when nothing answers).
fn http_code(url: &str, bearer: Option<&str>) -> u16 {
    let mut cmd = Command::new("curl");
    cmd.args([
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--max-time",
        "2",
    ]);
    if let Some(token) = bearer {
        cmd.arg("-H").arg(format!("Authorization: Bearer {token}"));
    }
    let out = cmd.arg(url).output().expect("run curl");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

impl OwnGarage {
    /// Starts a fresh single-node Garage with a key and the bucket `repo`.
    fn start(bin: &Path) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut garage = Self {
            bin: bin.to_owned(),
            config: dir.path().join("garage.toml"),
            dir,
            s3_port: 0,
            admin_port: 0,
            admin_token: random_hex(16),
            access_key: format!("GK{}", random_hex(12)),
            secret_key: random_hex(32),
            child: None,
        };
        for attempt in 1..=3 {
            let ports = free_ports(3);
            garage.s3_port = ports[0];
            garage.admin_port = ports[2];
            let root = garage.dir.path();
            let _ = std::fs::remove_dir_all(root.join("meta"));
            let _ = std::fs::remove_dir_all(root.join("data"));
            std::fs::write(
                &garage.config,
                format!(
                    r#"metadata_dir = "{root}/meta"
data_dir = "{root}/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:{rpc}"
rpc_public_addr = "127.0.0.1:{rpc}"
rpc_secret = "{secret}"

[s3_api]
s3_region = "us-east-1"
api_bind_addr = "127.0.0.1:{s3}"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:{admin}"
admin_token = "{token}"
"#,
                    root = root.display(),
                    rpc = ports[1],
                    s3 = ports[0],
                    admin = ports[2],
                    secret = random_hex(32),
                    token = garage.admin_token,
                ),
            )
            .expect("write garage.toml");
            garage.spawn();
            if garage.wait_ready(Duration::from_secs(30)) {
                return garage;
            }
            garage.kill();
            eprintln!(
                "own Garage: start attempt {attempt} failed:\n{}",
                garage.log_tail()
            );
        }
        panic!("own Garage did not start:\n{}", garage.log_tail());
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("garage.log"))
            .expect("garage log");
        // `--single-node --default-bucket` set up the layout, key and bucket on
        // the first start and are no-ops on a restart over the same data.
        let child = Command::new(&self.bin)
            .arg("-c")
            .arg(&self.config)
            .args(["server", "--single-node", "--default-bucket"])
            .env("RUST_LOG", "garage=info")
            .env("GARAGE_DEFAULT_ACCESS_KEY", &self.access_key)
            .env("GARAGE_DEFAULT_SECRET_KEY", &self.secret_key)
            .env("GARAGE_DEFAULT_BUCKET", "repo")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn garage");
        self.child = Some(child);
    }

    /// Ready = our admin API answers its token and the S3 port answers.
    fn wait_ready(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            match self.child.as_mut().map(|c| c.try_wait()) {
                Some(Ok(None)) => {}
                _ => return false,
            }
            let health = format!("http://127.0.0.1:{}/v2/GetClusterHealth", self.admin_port);
            if http_code(&health, Some(&self.admin_token)) == 200
                && http_code(&self.endpoint(), None) != 0
            {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// SIGKILLs the server and reaps it.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same data and ports.
    fn restart(&mut self) {
        for _ in 0..3 {
            self.spawn();
            if self.wait_ready(Duration::from_secs(30)) {
                return;
            }
            self.kill();
            std::thread::sleep(Duration::from_millis(500));
        }
        panic!("own Garage did not restart:\n{}", self.log_tail());
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.s3_port)
    }

    fn settings(&self) -> S3Settings {
        S3Settings {
            endpoint: Some(self.endpoint()),
            region: Some("us-east-1".into()),
            credentials: Some((self.access_key.clone(), self.secret_key.clone())),
            ..S3Settings::default()
        }
    }

    fn cli(&self, prefix: &str) -> Cli {
        Cli {
            storage: format!("s3://repo/{prefix}"),
            env: vec![
                ("AWS_ENDPOINT_URL", self.endpoint()),
                ("AWS_REGION", "us-east-1".into()),
                ("AWS_ACCESS_KEY_ID", self.access_key.clone()),
                ("AWS_SECRET_ACCESS_KEY", self.secret_key.clone()),
            ],
        }
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("garage.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for OwnGarage {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The Garage binary, or `None` (skip) when `PACKAGES_TEST_GARAGE_BIN` is unset.
fn garage_bin_or_skip() -> Option<PathBuf> {
    match std::env::var("PACKAGES_TEST_GARAGE_BIN") {
        Ok(bin) if !bin.is_empty() => Some(PathBuf::from(bin)),
        _ => {
            assert!(
                std::env::var("PACKAGES_TEST_REQUIRE_S3").as_deref() != Ok("1"),
                "PACKAGES_TEST_REQUIRE_S3=1 but PACKAGES_TEST_GARAGE_BIN is not set \
                 (run `eval \"$(scripts/test-servers.sh start)\"`)"
            );
            eprintln!("skipped: PACKAGES_TEST_GARAGE_BIN not set");
            None
        }
    }
}

/// Kills Garage once `acked` has grown by a random amount (or after a while),
/// waits a random moment, and restarts it. Blocking; returns what happened.
fn kill_and_restart_garage(garage: &mut OwnGarage, acked: &Acked) -> String {
    let mut rng = rand::thread_rng();
    let at_start = acked.lock().unwrap().len();
    let more = rng.gen_range(3..40);
    let wait_until = Instant::now() + Duration::from_secs(15);
    while acked.lock().unwrap().len() < at_start + more && Instant::now() < wait_until {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(rng.gen_range(0..150)));
    let killed_at = acked.lock().unwrap().len() - at_start;
    garage.kill();
    let down = Duration::from_millis(rng.gen_range(200..3000));
    std::thread::sleep(down);
    let restarting = Instant::now();
    garage.restart();
    format!(
        "killed after {killed_at} acks, down {} ms, ready {} ms after restart",
        down.as_millis(),
        restarting.elapsed().as_millis()
    )
}

/// Garage is SIGKILLed while CLI processes upload, and restarted on the same
/// data; some uploads fail, and after `index repair` every acknowledged package
/// is in the openssl-verified index. Twice, on the same data.
async fn restart_garage_during_uploads() {
    let Some(bin) = garage_bin_or_skip() else {
        return;
    };
    let started = Instant::now();
    let mut garage = tokio::task::spawn_blocking(move || OwnGarage::start(&bin))
        .await
        .expect("start garage");
    let prefix = format!("crash-{}", random_hex(4));
    let store = S3Store::connect("repo", &prefix, &garage.settings())
        .await
        .expect("connect to own Garage");
    let t = setup_repo(Stores::shared(Storage::s3(store))).await;
    let pem = t.public_key_pem().await;
    let cli = garage.cli(&prefix);
    let dir = tempfile::tempdir().expect("temp dir");
    let acked: Acked = Arc::default();
    let mut all = BTreeMap::new();

    for round in 1..=2 {
        let files = make_packages(
            dir.path(),
            &format!("g{round}"),
            PROCESSES * PER_PROCESS,
            &mut all,
        );
        let watcher = Watcher::start(&t, &pem, &acked, false);
        let (restart, ended, g) = {
            let (cli, acked) = (cli.clone(), Arc::clone(&acked));
            tokio::task::spawn_blocking(move || {
                let uploaders: Vec<Uploader> = files
                    .chunks(PER_PROCESS)
                    .map(|chunk| spawn_uploader(&cli, chunk, &acked))
                    .collect();
                let restart = kill_and_restart_garage(&mut garage, &acked);
                let ended: Vec<Ended> = uploaders
                    .into_iter()
                    .map(|u| u.finish(false, Duration::from_secs(90)))
                    .collect();
                (restart, ended, garage)
            })
            .await
            .expect("uploaders")
        };
        garage = g;
        let watched = watcher.finish(&format!("round {round}")).await;
        for e in &ended {
            // A failed upload reports the store error; one that succeeded acknowledged everything.
            assert!(
                e.status.signal().is_none(),
                "an upload died of a signal: {}",
                e.summary()
            );
            if e.status.success() {
                assert_eq!(e.acked.len(), e.files, "{}", e.summary());
            } else {
                assert!(
                    e.stderr.contains("error:"),
                    "failed upload without an error message: {}\n{}",
                    e.summary(),
                    e.stderr
                );
            }
        }
        let check = {
            let cli = cli.clone();
            tokio::task::spawn_blocking(move || {
                let check = check_after_crash(&cli);
                repair(&cli);
                assert_check_clean(&cli, "after repair");
                check
            })
            .await
            .unwrap()
        };
        let listed = verify_final(
            &t,
            &pem,
            &acked,
            &all,
            &format!("round {round}, after repair"),
        )
        .await;
        let failed: Vec<String> = ended
            .iter()
            .filter(|e| !e.status.success())
            .map(|e| {
                e.stderr
                    .lines()
                    .rfind(|l| l.starts_with("error:"))
                    .unwrap_or("")
                    .chars()
                    .take(160)
                    .collect()
            })
            .collect();
        eprintln!(
            "own Garage round {round}: {restart}; {} acked, {listed} indexed; uploaders: {}; \
             watcher: {} fetches ({} failed), {} versions; check after restart: {check}; \
             failures: {failed:?}",
            acked.lock().unwrap().len(),
            ended
                .iter()
                .map(Ended::summary)
                .collect::<Vec<_>>()
                .join("; "),
            watched.fetches,
            watched.failed_fetches,
            watched.versions,
        );
    }
    eprintln!(
        "restart_store_during_uploads: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

mod restart_store_during_uploads {
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn garage() {
        super::restart_garage_during_uploads().await;
    }
}
