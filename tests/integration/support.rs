//! Shared helpers: one fresh, isolated store per test on every backend, fixtures,
//! an independent reader of signed `APKINDEX.tar.gz` files, and small HTTP/`openssl`
//! wrappers.
//!
//! Backends:
//! - `local`: a temporary directory;
//! - `memory` / `memory_lww`: an in-process [`MemoryStore`] that enforces
//!   preconditions, or ignores them like Garage (last writer wins);
//! - `faulty`: a pass-through [`FaultyStore`] around a conditional memory store
//!   (its handles: [`Ctx::fault_handles`]; [`Ctx::open_faulty`] wraps any backend);
//! - `garage` / `moto`: the servers `scripts/test-servers.sh start` runs
//!   (`PACKAGES_TEST_GARAGE_*`, `PACKAGES_TEST_MOTO_*`);
//! - `user_s3`: any S3 the user points at (`PACKAGES_TEST_S3_ENDPOINT`,
//!   `PACKAGES_TEST_S3_BUCKET`, optional `PACKAGES_TEST_S3_PRIVATE_BUCKET`, and the
//!   standard `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` / `AWS_REGION`).
//!
//! An S3 backend whose variables are missing is skipped with a message, unless
//! `PACKAGES_TEST_REQUIRE_S3=1` (then Garage and moto are required; `user_s3` never is).
//! Every store a test opens lives under its own random prefix, so tests never
//! see each other's objects.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::future::Future;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use std::sync::Arc;

use packages::storage::{
    FaultHandle, FaultyStore, LocalStore, MemoryStore, S3Settings, S3Store, Storage,
};
use packages::stores::Stores;

/// Generates one `#[tokio::test]` per backend for each named `async fn NAME(ctx: Ctx)`:
/// `NAME::local`, `NAME::garage`, `NAME::moto`, `NAME::user_s3`. A bracketed list
/// first picks the backends: `backend_tests!([garage, moto] name1, name2);`.
macro_rules! backend_tests {
    (@one [$($backend:ident),+] $name:ident) => {
        mod $name {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $backend() {
                    $crate::support::run_on(stringify!($backend), super::$name).await;
                }
            )+
        }
    };
    ($backends:tt $($name:ident),+ $(,)?) => {
        $( backend_tests!(@one $backends $name); )+
    };
}

macro_rules! all_backends {
    ($($name:ident),+ $(,)?) => {
        backend_tests!([local, garage, moto, user_s3] $($name),+);
    };
}

/// [`all_backends!`] plus the in-process ones: `memory`, `memory_lww`, `faulty`.
macro_rules! every_backend {
    ($($name:ident),+ $(,)?) => {
        backend_tests!([local, garage, moto, user_s3, memory, memory_lww, faulty] $($name),+);
    };
}

// ---- backends -------------------------------------------------------------

/// Where a test's stores live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A temporary directory.
    Local,
    /// Garage 2.5 (real S3, no conditional writes, website endpoint).
    Garage,
    /// moto server (S3 emulator with conditional writes, no auth).
    Moto,
    /// The user's own S3 (`PACKAGES_TEST_S3_*`).
    UserS3,
    /// An in-process store that enforces preconditions.
    Memory,
    /// An in-process store that ignores preconditions (like Garage).
    MemoryLww,
    /// A pass-through [`FaultyStore`] around a conditional memory store.
    Faulty,
}

impl Backend {
    /// From the test-function name the macro generates.
    pub fn parse(name: &str) -> Self {
        match name {
            "local" => Backend::Local,
            "garage" => Backend::Garage,
            "moto" => Backend::Moto,
            "user_s3" => Backend::UserS3,
            "memory" => Backend::Memory,
            "memory_lww" => Backend::MemoryLww,
            "faulty" => Backend::Faulty,
            other => panic!("unknown backend {other}"),
        }
    }

    /// What the conditional-write probe must say, where we know.
    pub fn expected_conditional_writes(self) -> Option<bool> {
        match self {
            Backend::Local | Backend::Moto | Backend::Memory | Backend::Faulty => Some(true),
            Backend::Garage | Backend::MemoryLww => Some(false),
            Backend::UserS3 => None,
        }
    }

    /// Whether this is an S3 backend.
    pub fn is_s3(self) -> bool {
        matches!(self, Backend::Garage | Backend::Moto | Backend::UserS3)
    }

    /// Whether this is an in-process backend (`memory`, `memory_lww`, `faulty`).
    pub fn is_memory(self) -> bool {
        matches!(self, Backend::Memory | Backend::MemoryLww | Backend::Faulty)
    }
}

/// The connection data of one S3 backend.
#[derive(Debug, Clone)]
pub struct S3Env {
    /// Endpoint URL.
    pub endpoint: String,
    /// Region.
    pub region: String,
    /// The main (public) bucket.
    pub bucket: String,
    /// The bucket for the private tree, when the backend has one.
    pub private_bucket: Option<String>,
    /// Explicit credentials (else the AWS chain).
    pub credentials: Option<(String, String)>,
    /// Garage's website endpoint of `bucket` (`http://localhost:PORT`).
    pub web: Option<String>,
}

impl S3Env {
    /// The settings [`S3Store::connect`] takes.
    pub fn settings(&self) -> S3Settings {
        S3Settings {
            endpoint: Some(self.endpoint.clone()),
            region: Some(self.region.clone()),
            credentials: self.credentials.clone(),
            ..S3Settings::default()
        }
    }

    /// A raw aws-sdk-s3 client for the same endpoint (for checks behind our back).
    pub async fn client(&self) -> aws_sdk_s3::Client {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(aws_config::Region::new(self.region.clone()));
        if let Some((id, secret)) = &self.credentials {
            loader = loader.credentials_provider(aws_sdk_s3::config::Credentials::new(
                id.clone(),
                secret.clone(),
                None,
                None,
                "integration-tests",
            ));
        }
        let shared = loader.load().await;
        let config = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn require_s3() -> bool {
    env("PACKAGES_TEST_REQUIRE_S3").is_some_and(|v| v == "1")
}

/// The S3 environment of `backend`, or why it is missing.
pub fn s3_env(backend: Backend) -> Result<S3Env, String> {
    let need = |names: &[&str]| -> Result<Vec<String>, String> {
        let missing: Vec<&str> = names.iter().copied().filter(|n| env(n).is_none()).collect();
        if missing.is_empty() {
            Ok(names.iter().map(|n| env(n).unwrap_or_default()).collect())
        } else {
            Err(format!("{} not set", missing.join(", ")))
        }
    };
    match backend {
        Backend::Local => Err("local is not S3".to_owned()),
        Backend::Memory | Backend::MemoryLww | Backend::Faulty => {
            Err(format!("{backend:?} is not S3"))
        }
        Backend::Garage => {
            let v = need(&[
                "PACKAGES_TEST_GARAGE_ENDPOINT",
                "PACKAGES_TEST_GARAGE_BUCKET",
                "PACKAGES_TEST_GARAGE_PRIVATE_BUCKET",
                "PACKAGES_TEST_GARAGE_ACCESS_KEY",
                "PACKAGES_TEST_GARAGE_SECRET_KEY",
            ])?;
            Ok(S3Env {
                endpoint: v[0].clone(),
                region: env("PACKAGES_TEST_GARAGE_REGION").unwrap_or_else(|| "us-east-1".into()),
                bucket: v[1].clone(),
                private_bucket: Some(v[2].clone()),
                credentials: Some((v[3].clone(), v[4].clone())),
                web: env("PACKAGES_TEST_GARAGE_WEB"),
            })
        }
        Backend::Moto => {
            let v = need(&[
                "PACKAGES_TEST_MOTO_ENDPOINT",
                "PACKAGES_TEST_MOTO_BUCKET",
                "PACKAGES_TEST_MOTO_PRIVATE_BUCKET",
            ])?;
            Ok(S3Env {
                endpoint: v[0].clone(),
                region: env("PACKAGES_TEST_MOTO_REGION").unwrap_or_else(|| "us-east-1".into()),
                bucket: v[1].clone(),
                private_bucket: Some(v[2].clone()),
                // moto accepts any credentials.
                credentials: Some(("test".into(), "test".into())),
                web: None,
            })
        }
        Backend::UserS3 => {
            let v = need(&["PACKAGES_TEST_S3_ENDPOINT", "PACKAGES_TEST_S3_BUCKET"])?;
            let credentials = match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
                (Some(id), Some(secret)) => Some((id, secret)),
                _ => None,
            };
            Ok(S3Env {
                endpoint: v[0].clone(),
                region: env("AWS_REGION").unwrap_or_else(|| "us-east-1".into()),
                bucket: v[1].clone(),
                private_bucket: env("PACKAGES_TEST_S3_PRIVATE_BUCKET"),
                credentials,
                web: None,
            })
        }
    }
}

/// The environment of `backend`, or `None` (after a message) when the test must be
/// skipped; panics when the backend is required.
pub fn s3_env_or_skip(backend: Backend) -> Option<S3Env> {
    match s3_env(backend) {
        Ok(env) => Some(env),
        Err(why) => {
            let required = require_s3() && matches!(backend, Backend::Garage | Backend::Moto);
            if required {
                panic!(
                    "PACKAGES_TEST_REQUIRE_S3=1 but {backend:?} is not configured: {why} \
                     (run `eval \"$(scripts/test-servers.sh start)\"`)"
                );
            }
            eprintln!("skipped on {backend:?}: {why}");
            None
        }
    }
}

// ---- per-test context ----------------------------------------------------

/// Which bucket a store goes into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    /// The main (public, website-enabled on Garage) bucket.
    Main,
    /// The private bucket (the main one, other prefix, where there is none).
    Private,
}

/// Where an opened store lives.
#[derive(Debug, Clone)]
pub struct Place {
    /// The S3 bucket, or `None` for a local directory.
    pub bucket: Option<String>,
    /// The key prefix inside the bucket (empty for local).
    pub prefix: String,
    /// The local directory.
    pub dir: Option<PathBuf>,
}

/// One test on one backend: opens fresh, isolated stores.
pub struct Ctx {
    /// The backend.
    pub backend: Backend,
    /// Its S3 environment (None for local).
    pub s3: Option<S3Env>,
    /// Prefix of everything this test writes to S3.
    pub base: String,
    counter: AtomicUsize,
    dirs: Mutex<Vec<tempfile::TempDir>>,
    faults: Mutex<Vec<FaultHandle>>,
}

fn random_hex(bytes: usize) -> String {
    (0..bytes)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}

/// Runs `test` on `backend` (a name the macro passes), or skips it.
pub async fn run_on<F, Fut>(backend: &str, test: F)
where
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = ()>,
{
    let backend = Backend::parse(backend);
    let _watchdog = crate::watchdog::arm(std::thread::current().name().unwrap_or("a backend test"));
    let Some(ctx) = Ctx::new(backend) else {
        return;
    };
    let cleanup = (ctx.backend == Backend::UserS3).then(|| (ctx.s3.clone(), ctx.base.clone()));
    test(ctx).await;
    // Tidy the user's own bucket; the test servers are thrown away anyway.
    if let Some((Some(env), base)) = cleanup {
        for bucket in [Some(env.bucket.clone()), env.private_bucket.clone()]
            .into_iter()
            .flatten()
        {
            if let Ok(store) = S3Store::connect(&bucket, &base, &env.settings()).await {
                let store = Storage::s3(store);
                if let Ok(objects) = store.list("").await {
                    for o in objects {
                        let _ = store.delete(&o.key).await;
                    }
                }
            }
        }
    }
}

impl Ctx {
    /// A context for `backend`, or `None` when it must be skipped.
    pub fn new(backend: Backend) -> Option<Self> {
        let s3 = if backend.is_s3() {
            Some(s3_env_or_skip(backend)?)
        } else {
            None
        };
        let test = std::thread::current()
            .name()
            .unwrap_or("test")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' {
                    c
                } else {
                    '.'
                }
            })
            .collect::<String>()
            .replace("..", ".");
        Some(Self {
            backend,
            s3,
            base: format!("it/{test}-{}", random_hex(6)),
            counter: AtomicUsize::new(0),
            dirs: Mutex::new(Vec::new()),
            faults: Mutex::new(Vec::new()),
        })
    }

    /// The S3 environment (panics on local).
    pub fn s3(&self) -> &S3Env {
        self.s3.as_ref().expect("an S3 backend")
    }

    /// A fresh temporary directory that lives as long as the context.
    pub fn temp_dir(&self) -> PathBuf {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().to_owned();
        self.dirs.lock().unwrap().push(dir);
        path
    }

    /// A fresh, empty store in `bucket`, with where it lives.
    pub async fn open(&self, bucket: Bucket) -> (Storage, Place) {
        let n = self.counter.fetch_add(1, Ordering::SeqCst);
        if self.backend.is_memory() {
            let place = Place {
                bucket: None,
                prefix: String::new(),
                dir: None,
            };
            let storage = match self.backend {
                Backend::MemoryLww => Storage::new(Arc::new(MemoryStore::last_writer_wins())),
                Backend::Faulty => {
                    let faulty = FaultyStore::new(Arc::new(MemoryStore::new()));
                    self.faults.lock().unwrap().push(faulty.handle());
                    Storage::new(Arc::new(faulty))
                }
                _ => Storage::new(Arc::new(MemoryStore::new())),
            };
            return (storage, place);
        }
        match &self.s3 {
            None => {
                let dir = self.temp_dir().join("store");
                let storage = Storage::local(LocalStore::open(&dir).expect("open local store"));
                (
                    storage,
                    Place {
                        bucket: None,
                        prefix: String::new(),
                        dir: Some(dir),
                    },
                )
            }
            Some(env) => {
                let (name, prefix) = match (bucket, &env.private_bucket) {
                    (Bucket::Main, _) => (env.bucket.clone(), format!("{}/{n}", self.base)),
                    (Bucket::Private, Some(private)) => {
                        (private.clone(), format!("{}/{n}", self.base))
                    }
                    (Bucket::Private, None) => {
                        (env.bucket.clone(), format!("{}/{n}-private", self.base))
                    }
                };
                let store = S3Store::connect(&name, &prefix, &env.settings())
                    .await
                    .expect("connect");
                (
                    Storage::s3(store),
                    Place {
                        bucket: Some(name),
                        prefix,
                        dir: None,
                    },
                )
            }
        }
    }

    /// A fresh store in `bucket` wrapped in a [`FaultyStore`], with its handle
    /// (on any backend).
    pub async fn open_faulty(&self, bucket: Bucket) -> (Storage, FaultHandle, Place) {
        let (storage, place) = self.open(bucket).await;
        let faulty = FaultyStore::new(storage.object_store().clone());
        let handle = faulty.handle();
        self.faults.lock().unwrap().push(handle.clone());
        (Storage::new(Arc::new(faulty)), handle, place)
    }

    /// The handles of every [`FaultyStore`] this context opened, in order.
    pub fn fault_handles(&self) -> Vec<FaultHandle> {
        self.faults.lock().unwrap().clone()
    }

    /// A fresh store in the main bucket.
    pub async fn storage(&self) -> Storage {
        self.open(Bucket::Main).await.0
    }

    /// Both trees in one fresh store.
    pub async fn shared(&self) -> Stores {
        Stores::shared(self.storage().await)
    }

    /// The public tree in the main bucket, the private tree in the private bucket
    /// (local: two directories).
    pub async fn separate(&self) -> Stores {
        let public = self.storage().await;
        let private = self.open(Bucket::Private).await.0;
        Stores::separate(public, private)
    }

    /// Separate public and private stores on Garage, and the URLs its website
    /// endpoint serves them at (the private one must answer nothing).
    pub async fn garage_website(&self) -> Website {
        let web = self
            .s3()
            .web
            .clone()
            .expect("PACKAGES_TEST_GARAGE_WEB is set");
        let (public, place) = self.open(Bucket::Main).await;
        let (private, _) = self.open(Bucket::Private).await;
        let under = |tree: &str| format!("{web}/{}", url_path(&format!("{}/{tree}", place.prefix)));
        Website {
            stores: Stores::separate(public, private),
            base: under("static"),
            private_base: under("config"),
        }
    }

    /// Stores in the given layout.
    pub async fn stores(&self, layout: Layout) -> Stores {
        match layout {
            Layout::Shared => self.shared().await,
            Layout::Separate => self.separate().await,
        }
    }
}

/// How the two trees are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// One store, `static/` and `config/`.
    Shared,
    /// One store per tree.
    Separate,
}

// ---- store snapshots -------------------------------------------------------

/// Every object of both trees as `(tree:key, "etag size mtime")`, to assert that
/// nothing was added, changed or removed.
pub async fn snapshot(stores: &Stores) -> Vec<(String, String)> {
    let trees = if stores.is_separate() {
        vec![("public", stores.public()), ("private", stores.private())]
    } else {
        vec![("store", stores.public())]
    };
    let mut out = Vec::new();
    for (label, store) in trees {
        for o in store.list("").await.expect("list for snapshot") {
            let modified = o
                .last_modified
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_nanos());
            out.push((
                format!("{label}:{}", o.key),
                format!("{} {} {modified:?}", o.etag, o.size),
            ));
        }
    }
    out.sort();
    out
}

/// Asserts that two snapshots are equal, showing only what differs.
#[track_caller]
pub fn assert_unchanged(before: &[(String, String)], after: &[(String, String)], what: &str) {
    if before == after {
        return;
    }
    let old: BTreeMap<&str, &str> = before
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let new: BTreeMap<&str, &str> = after
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let mut diff = Vec::new();
    for (k, v) in &new {
        match old.get(k) {
            None => diff.push(format!("  added    {k}")),
            Some(o) if o != v => diff.push(format!("  changed  {k}: {o} -> {v}")),
            Some(_) => {}
        }
    }
    for k in old.keys().filter(|k| !new.contains_key(*k)) {
        diff.push(format!("  removed  {k}"));
    }
    panic!("{what}: the stores changed\n{}", diff.join("\n"));
}

/// Asserts that a local store's temporary folder is empty (no-op on S3).
pub fn assert_no_temp_files(storage: &Storage) {
    if let Some(root) = storage.local_root() {
        let tmp = root.join(".packages-tmp");
        let left: Vec<_> = std::fs::read_dir(&tmp)
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "temporary files left behind: {left:?}");
    }
}

// ---- fixtures ----------------------------------------------------------------

/// The real `.apk` fixtures: (file name, arch in `.PKGINFO`).
pub const FIXTURES: [(&str, &str); 6] = [
    ("gitea-test-1.4.1-r3.apk", "x86_64"),
    ("package-x-1.0.0-r0.apk", "x86_64"),
    ("package-y-1.0.0-r0.apk", "x86_64"),
    ("pretend-baselayout-1.0.0-r0.apk", "x86_64"),
    ("alpine-baselayout-3.2.0-r23.apk", "aarch64"),
    ("gitea-noarch-1.4-r0.apk", "noarch"),
];

/// Path of a fixture file.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Path of an Alpine `.apk` fixture.
pub fn apk_fixture(name: &str) -> PathBuf {
    fixture("alpine").join(name)
}

/// The test signing key (2048-bit RSA, PKCS#8 PEM).
pub fn test_key_pem() -> String {
    std::fs::read_to_string(fixture("keys/test-signing.rsa")).expect("test key")
}

// ---- independent readers -------------------------------------------------------

/// Splits concatenated gzip members as stored (compressed bytes of each).
pub fn gzip_members(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut rest = bytes;
    let mut out = Vec::new();
    while !rest.is_empty() {
        let mut decoder = flate2::bufread::GzDecoder::new(rest);
        std::io::copy(&mut decoder, &mut std::io::sink()).expect("valid gzip member");
        let after = decoder.into_inner();
        out.push(rest[..rest.len() - after.len()].to_vec());
        rest = after;
    }
    out
}

/// Inflates one gzip member.
pub fn gunzip(member: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(member)
        .read_to_end(&mut out)
        .expect("gunzip");
    out
}

/// Regular-file entries of a tar stream (cut or not) as `(name, data)`, via the `tar` crate.
pub fn tar_entries(tar_bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut archive = tar::Archive::new(tar_bytes);
    let mut out = Vec::new();
    for entry in archive.entries().expect("tar") {
        let mut entry = entry.expect("tar entry");
        let name = entry.path().expect("path").to_string_lossy().into_owned();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).expect("tar data");
        out.push((name, data));
    }
    out
}

/// The `.PKGINFO` of an `.apk`, from its second gzip member, as `(key, value)` lines.
pub fn pkginfo_of(apk: &[u8]) -> Vec<(String, String)> {
    let members = gzip_members(apk);
    assert_eq!(members.len(), 3, "an .apk has three gzip members");
    let control = gunzip(&members[1]);
    let (_, text) = tar_entries(&control)
        .into_iter()
        .find(|(name, _)| name == ".PKGINFO")
        .expect(".PKGINFO in the control member");
    String::from_utf8(text)
        .expect("UTF-8 .PKGINFO")
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l.split_once('=').expect("key = value");
            (k.trim().to_owned(), v.trim().to_owned())
        })
        .collect()
}

/// `Q1` + base64(SHA-1 of the stored control member), computed here.
pub fn apk_checksum(apk: &[u8]) -> String {
    use base64::Engine as _;
    use sha1::Digest as _;
    let members = gzip_members(apk);
    let digest = sha1::Sha1::digest(&members[1]);
    format!(
        "Q1{}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// A signed `APKINDEX.tar.gz`, taken apart without the crate's code.
#[derive(Debug, Clone)]
pub struct ParsedIndex {
    /// The signature entry's name (`.SIGN.RSA256.<key name>`).
    pub signature_name: String,
    /// The signature bytes.
    pub signature: Vec<u8>,
    /// The signed bytes: the second gzip member as stored.
    pub unsigned: Vec<u8>,
    /// `DESCRIPTION`.
    pub description: String,
    /// The raw `APKINDEX` text.
    pub text: String,
    /// Records as ordered `(field, value)` lists.
    pub records: Vec<Vec<(char, String)>>,
}

impl ParsedIndex {
    /// The record of package `name`.
    pub fn record(&self, name: &str) -> Option<&Vec<(char, String)>> {
        self.records
            .iter()
            .find(|r| field(r, 'P').as_deref() == Some(name))
    }

    /// The package names, sorted (the index itself orders records by chunk,
    /// then by name; apk does not care about the order).
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .records
            .iter()
            .map(|r| field(r, 'P').expect("P: in every record"))
            .collect();
        names.sort();
        names
    }

    /// The apk key name the signature names.
    pub fn key_name(&self) -> &str {
        self.signature_name
            .strip_prefix(".SIGN.RSA256.")
            .expect(".SIGN.RSA256. prefix")
    }
}

/// The value of `f` in a record.
pub fn field(record: &[(char, String)], f: char) -> Option<String> {
    record.iter().find(|(k, _)| *k == f).map(|(_, v)| v.clone())
}

/// Parses a signed index: splits the signature member by hand (a 512-byte ustar
/// header and the signature), reads the whole file as one tar stream (what apk
/// does) through `MultiGzDecoder` + the `tar` crate, and parses `X:value` records.
pub fn parse_index(bytes: &[u8]) -> ParsedIndex {
    let members = gzip_members(bytes);
    assert_eq!(
        members.len(),
        2,
        "a signed index is two gzip members (signature, index)"
    );
    let sig_tar = gunzip(&members[0]);
    assert!(sig_tar.len() >= 1024, "signature tar too short");
    let header = &sig_tar[..512];
    let name_end = header[..100].iter().position(|&b| b == 0).unwrap_or(100);
    let signature_name = String::from_utf8(header[..name_end].to_vec()).expect("UTF-8 name");
    let size_field = std::str::from_utf8(&header[124..136])
        .expect("size field")
        .trim_matches(|c: char| c == '\0' || c == ' ');
    let size = usize::from_str_radix(size_field, 8).expect("octal size");
    let signature = sig_tar[512..512 + size].to_vec();
    // The signature tar is cut: no end-of-archive blocks (apk would stop there).
    let padded = 512 + size.div_ceil(512) * 512;
    assert_eq!(
        sig_tar.len(),
        padded,
        "signature tar must end right after its entry"
    );

    let mut whole = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes)
        .read_to_end(&mut whole)
        .expect("inflate index");
    let entries = tar_entries(&whole);
    let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [signature_name.as_str(), "DESCRIPTION", "APKINDEX"],
        "entries of the index, as apk reads it"
    );
    let description = String::from_utf8(entries[1].1.clone()).expect("UTF-8 DESCRIPTION");
    let text = String::from_utf8(entries[2].1.clone()).expect("UTF-8 APKINDEX");
    ParsedIndex {
        signature_name,
        signature,
        unsigned: members[1].clone(),
        description,
        records: parse_records(&text),
        text,
    }
}

/// `X:value` blocks separated by empty lines.
pub fn parse_records(text: &str) -> Vec<Vec<(char, String)>> {
    let mut records = Vec::new();
    let mut current = Vec::new();
    for line in text.split('\n') {
        if line.is_empty() {
            if !current.is_empty() {
                records.push(std::mem::take(&mut current));
            }
            continue;
        }
        let mut chars = line.chars();
        let key = chars.next().expect("a field letter");
        assert_eq!(chars.next(), Some(':'), "line {line:?} is not X:value");
        current.push((key, chars.as_str().to_owned()));
    }
    assert!(current.is_empty(), "last record not ended by an empty line");
    records
}

/// The index record `apk index` would write for a package, built from its
/// `.PKGINFO` (read here) and file; empty values left out. `arch` is the arch
/// the package is indexed in.
pub fn expected_record(apk: &[u8], arch: &str) -> BTreeMap<char, String> {
    let info = pkginfo_of(apk);
    let one = |key: &str| {
        info.iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let all = |key: &str| {
        info.iter()
            .filter(|(k, _)| k == key)
            .flat_map(|(_, v)| v.split_whitespace().map(str::to_owned))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut out = BTreeMap::new();
    out.insert('C', apk_checksum(apk));
    out.insert('P', one("pkgname"));
    out.insert('V', one("pkgver"));
    out.insert('A', arch.to_owned());
    out.insert('S', apk.len().to_string());
    out.insert('I', one("size"));
    out.insert('T', one("pkgdesc"));
    out.insert('U', one("url"));
    out.insert('L', one("license"));
    out.insert('o', one("origin"));
    out.insert('m', one("maintainer"));
    out.insert('t', one("builddate"));
    out.insert('c', one("commit"));
    out.insert('k', one("provider_priority"));
    out.insert('D', all("depend"));
    out.insert('p', all("provides"));
    out.insert('i', all("install_if"));
    out.retain(|_, v| !v.is_empty());
    out
}

/// A parsed record as a map, empty values left out; asserts each field appears
/// once and in apk's order (`C P V A S I T U L o m t c k D p i`).
pub fn record_map(record: &[(char, String)]) -> BTreeMap<char, String> {
    const ORDER: &str = "CPVASITULomtckDpi";
    let mut last = 0;
    let mut seen = std::collections::BTreeSet::new();
    let mut out = BTreeMap::new();
    for (k, v) in record {
        let pos = ORDER
            .find(*k)
            .unwrap_or_else(|| panic!("unexpected field {k}: in {record:?}"));
        assert!(
            pos >= last,
            "field {k}: out of order in {record:?} (apk order is {ORDER})"
        );
        last = pos;
        assert!(seen.insert(*k), "field {k}: twice in {record:?}");
        if !v.is_empty() {
            out.insert(*k, v.clone());
        }
    }
    out
}

// ---- external tools ------------------------------------------------------------

/// Verifies `signature` over `data` with `openssl dgst -sha256 -verify` and the
/// PEM public key; returns (success, combined output).
pub fn openssl_verify(public_pem: &[u8], signature: &[u8], data: &[u8]) -> (bool, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let key = dir.path().join("pub.pem");
    let sig = dir.path().join("sig");
    let input = dir.path().join("unsigned.tar.gz");
    std::fs::write(&key, public_pem).unwrap();
    std::fs::write(&sig, signature).unwrap();
    std::fs::write(&input, data).unwrap();
    let out = Command::new("openssl")
        .args(["dgst", "-sha256", "-verify"])
        .arg(&key)
        .arg("-signature")
        .arg(&sig)
        .arg(&input)
        .output()
        .expect("run openssl (is it installed?)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success() && text.contains("Verified OK"), text)
}

/// SHA-256 of a public key's DER form, computed by `openssl pkey`.
pub fn openssl_public_der_sha256(public_pem: &[u8]) -> String {
    use sha2::Digest as _;
    let dir = tempfile::tempdir().expect("temp dir");
    let key = dir.path().join("pub.pem");
    std::fs::write(&key, public_pem).unwrap();
    let out = Command::new("openssl")
        .args(["pkey", "-pubin", "-outform", "DER", "-in"])
        .arg(&key)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl pkey: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    hex::encode(sha2::Sha256::digest(&out.stdout))
}

/// An HTTP response fetched with `curl`.
#[derive(Debug)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Headers, names lowercased.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first header named `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// `GET url` with curl (no redirects followed). `url` must already be encoded.
pub fn curl_get(url: &str) -> HttpResponse {
    let dir = tempfile::tempdir().expect("temp dir");
    let headers = dir.path().join("headers");
    let body = dir.path().join("body");
    let out = Command::new("curl")
        .args(["-s", "-g", "--path-as-is", "--max-time", "20", "-D"])
        .arg(&headers)
        .arg("-o")
        .arg(&body)
        .args(["-w", "%{http_code}", url])
        .output()
        .expect("run curl (is it installed?)");
    let status: u16 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("curl {url}: {}", String::from_utf8_lossy(&out.stderr)));
    let headers = std::fs::read_to_string(&headers)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    HttpResponse {
        status,
        headers,
        body: std::fs::read(&body).unwrap_or_default(),
    }
}

/// Percent-encodes each segment of an object key for a URL path.
pub fn url_path(key: &str) -> String {
    use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
    const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    key.split('/')
        .map(|s| utf8_percent_encode(s, SEGMENT).to_string())
        .collect::<Vec<_>>()
        .join("/")
}

/// `n` bytes of deterministic, poorly compressible data.
pub fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(n);
    out
}

// ---- a repository to publish into ------------------------------------------------

/// The org every publishing test uses.
pub const ORG: &str = "acme";
/// Its distro version and repo.
pub const VERSION: &str = "v3.20";
/// The repository name.
pub const REPO: &str = "main";

/// An org with the test signing key, and a repository of it, ready for uploads.
pub struct TestRepo {
    /// The publisher over `stores`.
    pub publisher: packages::publish::Publisher,
    /// The stores.
    pub stores: Stores,
    /// `acme/alpine/v3.20/main`.
    pub repo: packages::repo::RepoId,
    /// The apk key name of the signing key.
    pub key_name: String,
}

/// Creates the org `acme` and imports the test key for its distro.
pub async fn setup_repo(stores: Stores) -> TestRepo {
    use packages::repo::{Distro, Org, RepoId, Scope};
    let publisher = packages::publish::Publisher::new(stores.clone());
    let org = Org::parse(ORG).unwrap();
    publisher.create_org(&org).await.expect("create org");
    let scope = Scope::new(org, Some(Distro::ALPINE), None, None).unwrap();
    let key = packages::keys::import(&stores, &scope, &test_key_pem())
        .await
        .expect("import key");
    TestRepo {
        publisher,
        stores,
        repo: RepoId::parse(ORG, "alpine", VERSION, REPO).unwrap(),
        key_name: key.key_name,
    }
}

impl TestRepo {
    /// An upload of `path` (shown as its path) with an optional target arch.
    pub fn upload_of(&self, path: &Path, arch: Option<&str>) -> packages::publish::Upload {
        packages::publish::Upload {
            repo: self.repo.clone(),
            arch: arch.map(|a| packages::repo::Arch::parse(a).unwrap()),
            extra_arches: Vec::new(),
            path: path.to_owned(),
            display_name: path.display().to_string(),
        }
    }

    /// Uploads one file.
    pub async fn upload(
        &self,
        path: &Path,
        arch: Option<&str>,
    ) -> Result<Vec<packages::publish::Published>, packages::publish::PublishError> {
        self.publisher.upload(&self.upload_of(path, arch)).await
    }

    /// Uploads the six fixtures (x86_64 ones, then aarch64, then noarch).
    pub async fn publish_fixtures(&self) {
        for (file, _) in FIXTURES {
            self.upload(&apk_fixture(file), None)
                .await
                .unwrap_or_else(|e| panic!("upload {file}: {e}"));
        }
    }

    /// The object key of a file in one arch folder of the repo.
    pub fn key(&self, arch: &str, file: &str) -> String {
        format!("static/{ORG}/alpine/{VERSION}/{REPO}/{arch}/{file}")
    }

    /// The object key of the public signing key.
    pub fn public_key_key(&self) -> String {
        format!("static/{ORG}/alpine/{}", self.key_name)
    }

    /// The raw `APKINDEX.tar.gz` of `arch`, if there is one.
    pub async fn index_bytes(&self, arch: &str) -> Option<Vec<u8>> {
        self.stores
            .public()
            .get_bytes_opt(&self.key(arch, "APKINDEX.tar.gz"))
            .await
            .expect("get index")
            .map(|(b, _)| b.to_vec())
    }

    /// The parsed index of `arch` (panics when missing).
    pub async fn index(&self, arch: &str) -> ParsedIndex {
        let bytes = self
            .index_bytes(arch)
            .await
            .unwrap_or_else(|| panic!("no index for {arch}"));
        parse_index(&bytes)
    }

    /// The public key PEM, read back from the store.
    pub async fn public_key_pem(&self) -> Vec<u8> {
        self.stores
            .public()
            .get_bytes(&self.public_key_key())
            .await
            .expect("public key in the store")
            .0
            .to_vec()
    }

    /// A public object's bytes, if present.
    pub async fn public_bytes(&self, key: &str) -> Option<Vec<u8>> {
        self.stores
            .public()
            .get_bytes_opt(key)
            .await
            .expect("get")
            .map(|(b, _)| b.to_vec())
    }
}

/// Writes `bytes` to `<dir>/<name>` and returns the path.
pub fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Garage's website endpoint in front of a test's stores ([`Ctx::garage_website`]).
pub struct Website {
    /// The public tree in the main bucket, the private tree in the private bucket.
    pub stores: Stores,
    /// The URL of the public tree (`…/static`), no trailing slash.
    pub base: String,
    /// Where the private tree (`…/config`) would be if the website served it.
    pub private_base: String,
}
