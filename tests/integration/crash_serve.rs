//! A `packages serve` instance is SIGKILLed during uploads and restarted on the
//! same store and port, several times (local dir, Garage, moto).
//!
//! Concurrent remote-mode clients (`packages upload --server --json`, one
//! package per call) upload through the instance; a call that fails (the
//! server died under it, or is not back yet) is retried until it is
//! acknowledged. A package counts as acknowledged when its call exited 0 and
//! named it in its JSON output, which the service answers only once the package
//! is in the signed index.
//!
//! Meanwhile a watcher fetches the published index over and over: every
//! version must be whole and signed (`openssl`), and on stores with
//! conditional writes list every package acknowledged before the fetch. At the
//! end every acknowledged package is in the final, openssl-verified index,
//! exactly once, with its file; `index check` is clean once `index repair` ran
//! (if the last crash left anything to repair).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use packages::formats::apk::builder::ApkBuilder;
use packages::stores::Stores;
use rand::Rng;

use crate::support::{
    Backend, Bucket, Ctx, ORG, Place, REPO, TestRepo, VERSION, expected_record, field,
    openssl_verify, parse_index, record_map, setup_repo,
};

/// The arch every package is built for.
const ARCH: &str = "x86_64";
/// Concurrent upload clients.
const UPLOADERS: usize = 4;
/// Packages each client uploads (one call each).
const PER_UPLOADER: usize = 12;
/// How many times the instance is SIGKILLed.
const KILLS: usize = 5;
/// How long an instance may take to answer `/health/ready`.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the uploads may take in all.
const UPLOAD_DEADLINE: Duration = Duration::from_secs(45);

/// Package identity as `name-version`.
type Pkg = String;
/// Packages acknowledged so far.
type Acked = Arc<Mutex<BTreeSet<Pkg>>>;

// ---- the store and the instance -------------------------------------------------

/// The `packages` command with `--storage` (and S3 credentials) for `place`.
fn cli(ctx: &Ctx, place: &Place) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_packages"));
    cmd.env_remove("PACKAGES_CONFIG_STORAGE")
        .env_remove("PACKAGES_S3_VIRTUAL_HOSTED")
        .env("RUST_LOG", "warn");
    match (&place.dir, &place.bucket) {
        (Some(dir), _) => {
            cmd.arg("--storage").arg(dir);
        }
        (None, Some(bucket)) => {
            let env = ctx.s3();
            let (id, secret) = env
                .credentials
                .clone()
                .unwrap_or_else(|| ("test".into(), "test".into()));
            cmd.arg("--storage")
                .arg(format!("s3://{bucket}/{}", place.prefix))
                .env("AWS_ENDPOINT_URL", &env.endpoint)
                .env("AWS_REGION", &env.region)
                .env("AWS_ACCESS_KEY_ID", id)
                .env("AWS_SECRET_ACCESS_KEY", secret);
            if ctx.backend == Backend::Moto {
                // moto is not thread-safe and answers some racing requests 500;
                // retry those rather than fail for the emulator's sake.
                cmd.env("AWS_MAX_ATTEMPTS", "10");
            }
        }
        (None, None) => unreachable!("a place is a directory or a bucket"),
    }
    cmd
}

/// A fresh store: on moto in a bucket of its own (moto LISTs scan the whole
/// bucket, and the shared one holds every test's objects).
async fn fresh_store(ctx: &Ctx) -> (packages::storage::Storage, Place) {
    if ctx.backend != Backend::Moto {
        return ctx.open(Bucket::Main).await;
    }
    let env = ctx.s3();
    let bucket = format!("killserve-{:016x}", rand::random::<u64>());
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
    let place = Place {
        bucket: Some(bucket),
        prefix: ctx.base.clone(),
        dir: None,
    };
    (packages::storage::Storage::s3(store), place)
}

/// The first admin token of the store (`packages admin init`).
fn admin_token(ctx: &Ctx, place: &Place) -> String {
    let out = cli(ctx, place)
        .args(["admin", "init"])
        .output()
        .expect("run packages admin init");
    assert!(out.status.success(), "admin init:\n{}", describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let token = stdout.lines().last().unwrap_or_default().to_owned();
    assert!(token.starts_with("pkgs_"), "admin init printed {token:?}");
    token
}

fn describe(out: &Output) -> String {
    format!(
        "status {}\n--- stdout\n{}--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// One `packages serve` on a fixed port, SIGKILLed and restarted at will;
/// killed (and reaped) on drop.
struct Instance {
    port: u16,
    /// Every start's stderr, appended.
    log: PathBuf,
    child: Option<Child>,
}

impl Instance {
    fn start(ctx: &Ctx, place: &Place) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("bind a free port")
            .port();
        let mut instance = Self {
            port,
            log: ctx.temp_dir().join("serve.log"),
            child: None,
        };
        instance.spawn_and_wait(ctx, place);
        instance
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Spawns the instance on its port and waits for `/health/ready`.
    fn spawn_and_wait(&mut self, ctx: &Ctx, place: &Place) {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.log)
                .expect("open instance log");
            let child = cli(ctx, place)
                .args(["serve", "--listen", &format!("127.0.0.1:{}", self.port)])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("spawn packages serve");
            self.child = Some(child);
            loop {
                let code = crate::support::curl_get(&format!("{}/health/ready", self.url())).status;
                if code == 200 {
                    return;
                }
                let exited = self.child.as_mut().unwrap().try_wait().expect("try_wait");
                assert!(
                    Instant::now() < deadline,
                    "instance not ready after {READY_TIMEOUT:?}:\n{}",
                    self.log_text()
                );
                if exited.is_some() {
                    // The port may be held a moment longer: start it again.
                    std::thread::sleep(Duration::from_millis(200));
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// SIGKILLs the instance and reaps it.
    fn kill(&mut self) {
        let mut child = self.child.take().expect("a running instance");
        child.kill().expect("SIGKILL packages serve");
        let status = child.wait().expect("reap packages serve");
        assert!(
            status.code().is_none(),
            "the instance had exited by itself ({status}):\n{}",
            self.log_text()
        );
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

// ---- packages and uploaders -------------------------------------------------------

/// Writes the packages of uploader `u`; records their bytes in `all`.
fn make_packages(dir: &Path, u: usize, all: &mut BTreeMap<Pkg, Vec<u8>>) -> Vec<PathBuf> {
    (0..PER_UPLOADER)
        .map(|i| {
            let name = format!("killserve-{u}-{i:03}");
            let builder = ApkBuilder::new(&name, "1.0.0-r0", ARCH)
                .description("killed service upload")
                .file(
                    &format!("usr/share/killserve/{u}-{i}"),
                    &crate::support::noise(2048, ((u * 1000 + i) as u64) << 4),
                );
            let bytes = builder.build();
            let path = dir.join(builder.file_name());
            std::fs::write(&path, &bytes).expect("write package");
            all.insert(format!("{name}-1.0.0-r0"), bytes);
            path
        })
        .collect()
}

/// Uploads `files` one call each through `url`, retrying each failed call
/// until it is acknowledged or `deadline` passes. Returns how many calls
/// failed, how many of those the server dropped mid-request (anything but a
/// refused connection), and the packages never acknowledged.
fn upload_all(
    url: String,
    token: String,
    files: Vec<PathBuf>,
    acked: Acked,
    deadline: Instant,
) -> (usize, usize, Vec<Pkg>) {
    let (mut failed_calls, mut interrupted, mut given_up) = (0, 0, Vec::new());
    for file in files {
        let pkg = file.file_stem().unwrap().to_string_lossy().into_owned();
        loop {
            if Instant::now() > deadline {
                given_up.push(pkg);
                break;
            }
            let out = remote_upload(&url, &token, &file);
            if out.status.success() {
                let published: serde_json::Value = serde_json::from_slice(&out.stdout)
                    .unwrap_or_else(|e| panic!("--json output ({e}):\n{}", describe(&out)));
                let record = &published[0]["record"];
                let named = format!("{}-{}", record["name"], record["version"]).replace('"', "");
                let one = published.as_array().map(Vec::len) == Some(1);
                assert!(one && named == pkg, "upload of {pkg} answered {published}");
                acked.lock().unwrap().insert(pkg);
                break;
            }
            failed_calls += 1;
            interrupted +=
                usize::from(!String::from_utf8_lossy(&out.stderr).contains("Connection refused"));
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    (failed_calls, interrupted, given_up)
}

/// One remote-mode `packages upload --json` of `file`: no store, no credentials.
fn remote_upload(url: &str, token: &str, file: &Path) -> Output {
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
    cmd.arg("--storage")
        .arg(std::env::temp_dir().join("packages-remote-mode-opens-no-store"))
        .args(["upload", "--create", "--server", url, "--token", token])
        .args(["--org", ORG, "--version", VERSION, "--repo", REPO, "--json"])
        .arg(file)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .expect("run packages upload --server")
}

// ---- the index ---------------------------------------------------------------------

/// Parses and verifies one fetched index; returns its packages.
fn check_index(bytes: &[u8], pem: &[u8]) -> Result<BTreeSet<Pkg>, String> {
    let parsed = std::panic::catch_unwind(|| parse_index(bytes))
        .map_err(|_| format!("unparsable index ({} bytes)", bytes.len()))?;
    let (ok, detail) = openssl_verify(pem, &parsed.signature, &parsed.unsigned);
    if !ok {
        return Err(format!(
            "index ({} bytes) fails openssl: {detail}",
            bytes.len()
        ));
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

/// What the watcher saw.
#[derive(Debug, Default)]
struct Watched {
    fetches: usize,
    versions: usize,
    /// Versions that are not a whole, signed index.
    problems: Vec<String>,
    /// Fetches that missed an acknowledged package (strict mode only).
    regressions: Vec<String>,
}

/// Fetches the index until `stop`, checking every distinct version; with
/// `strict`, every package acknowledged before a fetch must be in it.
async fn watch(
    stores: Stores,
    key: String,
    pem: Vec<u8>,
    acked: Acked,
    stop: Arc<AtomicBool>,
    strict: bool,
) -> Watched {
    let mut seen: BTreeMap<Vec<u8>, Result<BTreeSet<Pkg>, String>> = BTreeMap::new();
    let mut watched = Watched::default();
    loop {
        let last = stop.load(Ordering::SeqCst);
        let before = acked.lock().unwrap().clone();
        if let Ok(fetched) = stores.public().get_bytes_opt(&key).await {
            watched.fetches += 1;
            match fetched {
                None if strict && !before.is_empty() => watched.regressions.push(format!(
                    "no index although {} package(s) were acknowledged",
                    before.len()
                )),
                None => {}
                Some((bytes, _)) => {
                    let bytes = bytes.to_vec();
                    if !seen.contains_key(&bytes) {
                        let pem = pem.clone();
                        let b = bytes.clone();
                        let result = tokio::task::spawn_blocking(move || check_index(&b, &pem))
                            .await
                            .expect("check index");
                        watched.versions += 1;
                        if let Err(e) = &result {
                            watched.problems.push(e.clone());
                        }
                        seen.insert(bytes.clone(), result);
                    }
                    if let (true, Ok(listed)) = (strict, &seen[&bytes]) {
                        let missing: Vec<&Pkg> = before.difference(listed).collect();
                        if !missing.is_empty() {
                            watched.regressions.push(format!(
                                "an index fetched after {} acknowledgements misses {missing:?}",
                                before.len()
                            ));
                        }
                    }
                }
            }
        }
        if last {
            return watched;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The final index: openssl-verified, every record what its package renders
/// to and its file stored, every acknowledged package in it. Returns how many
/// packages it lists.
async fn verify_final(
    t: &TestRepo,
    pem: &[u8],
    acked: &BTreeSet<Pkg>,
    all: &BTreeMap<Pkg, Vec<u8>>,
    when: &str,
) -> usize {
    let bytes = t
        .index_bytes(ARCH)
        .await
        .unwrap_or_else(|| panic!("{when}: no index"));
    let listed = check_index(&bytes, pem).unwrap_or_else(|e| panic!("{when}: {e}"));
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
    let missing: Vec<&Pkg> = acked.difference(&listed).collect();
    assert!(
        missing.is_empty(),
        "{when}: {} acknowledged package(s) missing from the final index: {missing:?}",
        missing.len()
    );
    listed.len()
}

/// `packages index <what>` of the test arch.
fn index_cmd(ctx: &Ctx, place: &Place, what: &str) -> Output {
    cli(ctx, place)
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

// ---- the test ------------------------------------------------------------------------

/// SIGKILLs the serving instance [`KILLS`] times at random moments while
/// [`UPLOADERS`] clients upload through it; see the module doc.
async fn kill_serve_mid_upload(ctx: Ctx) {
    let started = Instant::now();
    let strict = ctx.backend.expected_conditional_writes() == Some(true);
    let (storage, place) = fresh_store(&ctx).await;
    let t = setup_repo(Stores::shared(storage)).await;
    let pem = t.public_key_pem().await;
    let token = admin_token(&ctx, &place);
    let mut instance = Instance::start(&ctx, &place);

    let dir = ctx.temp_dir();
    let mut all = BTreeMap::new();
    let per_uploader: Vec<Vec<PathBuf>> = (0..UPLOADERS)
        .map(|u| make_packages(&dir, u, &mut all))
        .collect();
    let acked: Acked = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = tokio::spawn(watch(
        t.stores.clone(),
        t.key(ARCH, "APKINDEX.tar.gz"),
        pem.clone(),
        Arc::clone(&acked),
        Arc::clone(&stop),
        strict,
    ));
    let deadline = Instant::now() + UPLOAD_DEADLINE;
    let uploaders: Vec<_> = per_uploader
        .into_iter()
        .map(|files| {
            let (url, token, acked) = (instance.url(), token.clone(), Arc::clone(&acked));
            std::thread::spawn(move || upload_all(url, token, files, acked, deadline))
        })
        .collect();

    // Kill the instance at random moments while uploads run; each kill is
    // followed by a restart on the same store and port.
    let total = UPLOADERS * PER_UPLOADER;
    let mut kills = Vec::new();
    for _ in 0..KILLS {
        // Let the (re)started instance acknowledge something first, so that
        // each kill lands in the middle of the uploads, not before them.
        let before = kills.last().copied().unwrap_or(0);
        while acked.lock().unwrap().len() <= before && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let wait = rand::thread_rng().gen_range(0..400);
        tokio::time::sleep(Duration::from_millis(wait)).await;
        let acked_then = acked.lock().unwrap().len();
        if acked_then >= total {
            break;
        }
        instance.kill();
        kills.push(acked_then);
        let down = rand::thread_rng().gen_range(0..300);
        tokio::time::sleep(Duration::from_millis(down)).await;
        tokio::task::block_in_place(|| instance.spawn_and_wait(&ctx, &place));
    }

    let (mut failed_calls, mut interrupted) = (0, 0);
    let mut given_up = Vec::new();
    for uploader in uploaders {
        let done = tokio::task::block_in_place(|| uploader.join()).expect("uploader thread");
        failed_calls += done.0;
        interrupted += done.1;
        given_up.extend(done.2);
    }
    stop.store(true, Ordering::SeqCst);
    let watched = watcher.await.expect("watcher");
    let acked = acked.lock().unwrap().clone();
    assert!(
        given_up.is_empty(),
        "{} package(s) never acknowledged in {UPLOAD_DEADLINE:?}: {given_up:?}\n{}",
        given_up.len(),
        instance.log_text()
    );
    assert_eq!(acked.len(), total, "every package acknowledged in the end");
    assert!(
        !kills.is_empty(),
        "the instance was never killed mid-upload"
    );
    assert!(
        watched.problems.is_empty(),
        "the watcher saw {} bad index version(s):\n{}",
        watched.problems.len(),
        watched.problems.join("\n")
    );
    assert!(
        watched.regressions.is_empty(),
        "on a store with conditional writes, fetched index(es) missed acknowledged packages:\n{}",
        watched.regressions.join("\n")
    );

    // Right after the uploads, then after `index repair` if `check` found
    // anything left by a crash.
    let listed = verify_final(&t, &pem, &acked, &all, "after the uploads").await;
    let check = index_cmd(&ctx, &place, "check");
    let check_before = if check.status.success() {
        "ok".to_owned()
    } else {
        assert_eq!(
            check.status.code(),
            Some(1),
            "index check failed:\n{}",
            describe(&check)
        );
        let repair = index_cmd(&ctx, &place, "repair");
        assert!(
            repair.status.success(),
            "index repair:\n{}",
            describe(&repair)
        );
        String::from_utf8_lossy(&check.stdout)
            .trim()
            .replace('\n', " | ")
    };
    let check = index_cmd(&ctx, &place, "check");
    assert!(
        check.status.success(),
        "index check after repair:\n{}",
        describe(&check)
    );
    verify_final(&t, &pem, &acked, &all, "after check/repair").await;
    drop(instance);
    eprintln!(
        "kill_serve_mid_upload {:?}: {} kills (at {kills:?} acked), {} acked, {listed} indexed, \
         {failed_calls} failed calls retried ({interrupted} cut mid-request); watcher: {} fetches, {} versions; \
         check before repair: {check_before}; {:.1?}",
        ctx.backend,
        kills.len(),
        acked.len(),
        watched.fetches,
        watched.versions,
        started.elapsed()
    );
}

backend_tests!([local, garage, moto] kill_serve_mid_upload);
